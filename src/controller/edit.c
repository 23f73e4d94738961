/* edit.c - precondition-checked edits of live objects (see edit.h). */
#include "edit.h"

#include <string.h>

static void
vmig_ctl_set_free(gpointer data)
{
    VmigCtlSet *s = data;
    g_free(s->path);
    g_free(s->key);
    if (s->value)
        json_node_unref(s->value);
    g_free(s);
}

VmigCtlEdit *
vmig_ctl_edit_new(const char *what)
{
    VmigCtlEdit *e = g_new0(VmigCtlEdit, 1);
    e->what = g_strdup(what);
    e->sets = g_ptr_array_new_with_free_func(vmig_ctl_set_free);
    return e;
}

void
vmig_ctl_edit_free(VmigCtlEdit *e)
{
    if (!e)
        return;
    g_free(e->what);
    g_free(e->require_uid);
    g_free(e->claim_uid);
    g_free(e->require_target);
    g_free(e->now);
    g_free(e->add_finalizer);
    g_free(e->remove_finalizer);
    g_ptr_array_free(e->sets, TRUE);
    g_free(e);
}

void
vmig_ctl_edit_set(VmigCtlEdit *e, const char *path, JsonNode *value)
{
    VmigCtlSet *s = g_new0(VmigCtlSet, 1);
    s->path = g_strdup(path);
    s->value = value;
    g_ptr_array_add(e->sets, s);
}

void
vmig_ctl_edit_set_key(VmigCtlEdit *e, const char *path, const char *key, JsonNode *value)
{
    VmigCtlSet *s = g_new0(VmigCtlSet, 1);
    s->path = g_strdup(path);
    s->key = g_strdup(key);
    s->value = value;
    g_ptr_array_add(e->sets, s);
}

void
vmig_ctl_edit_set_string(VmigCtlEdit *e, const char *path, const char *value)
{
    vmig_ctl_edit_set(e, path, value ? json_node_init_string(json_node_alloc(), value) : NULL);
}

void
vmig_ctl_edit_set_bool(VmigCtlEdit *e, const char *path, gboolean value)
{
    vmig_ctl_edit_set(e, path, json_node_init_boolean(json_node_alloc(), value));
}

void
vmig_ctl_edit_set_int(VmigCtlEdit *e, const char *path, gint64 value)
{
    vmig_ctl_edit_set(e, path, json_node_init_int(json_node_alloc(), value));
}

void
vmig_ctl_edit_from_phases(VmigCtlEdit *e, const VmigModelMigrationPhase *phases, guint n)
{
    for (guint i = 0; i < n; i++)
        e->phase_mask |= 1u << phases[i];
}

JsonNode *
vmig_ctl_empty_object(void)
{
    JsonObject *o = json_object_new();
    JsonNode *n = json_node_init_object(json_node_alloc(), o);
    json_object_unref(o); /* the node holds its own reference */
    return n;
}

char *
vmig_ctl_now_rfc3339(gint64 wall_ms)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(wall_ms / 1000);
    return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

static const char *
vmig_ctl_get_string(JsonNode *root, const char *path)
{
    JsonNode *n = vmig_model_json_get(root, path);
    if (!n || JSON_NODE_TYPE(n) != JSON_NODE_VALUE || json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

static gboolean vmig_ctl_refuse(GError **error, const VmigCtlEdit *e, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static gboolean
vmig_ctl_refuse(GError **error, const VmigCtlEdit *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED, "%s: %s", e->what, msg);
    return FALSE;
}

static gboolean
vmig_ctl_check(JsonNode *root, const VmigCtlEdit *e, GError **error)
{
    const char *uid = vmig_ctl_get_string(root, "metadata.uid");
    if (e->require_uid && g_strcmp0(uid, e->require_uid) != 0)
        return vmig_ctl_refuse(error, e, "object was replaced (uid %s, expected %s)",
                               uid ? uid : "none", e->require_uid);
    if (e->not_deleting && vmig_model_json_get(root, "metadata.deletionTimestamp"))
        return vmig_ctl_refuse(error, e, "object is being deleted");
    if (e->phase_mask) {
        VmigModelMigrationPhase p = VMIG_MODEL_MIGRATION_PHASE_UNSET;
        const char *s = vmig_ctl_get_string(root, "status.phase");
        if (!vmig_model_migration_phase_from_string(s ? s : "", &p) || !(e->phase_mask & (1u << p)))
            return vmig_ctl_refuse(error, e, "status.phase is '%s'", s ? s : "");
    }
    if (e->claim_uid) {
        const char *holder = vmig_ctl_get_string(root, "status.migrationState.migrationUid");
        gboolean mine = g_strcmp0(holder, e->claim_uid) == 0;
        if (!mine) {
            const char *ns = vmig_ctl_get_string(root, "metadata.namespace");
            gboolean free_ = !holder || !*holder ||
                             (e->holder_live && !e->holder_live(ns, holder, e->holder_live_data));
            if (!e->claim_new || !free_)
                return vmig_ctl_refuse(
                    error, e, "status.migrationState.migrationUid is %s (another migration)",
                    holder && *holder ? holder : "empty");
        }
    }
    if (e->require_target) {
        const char *t = vmig_ctl_get_string(root, "status.migrationState.targetNode");
        if (g_strcmp0(t, e->require_target) != 0)
            return vmig_ctl_refuse(error, e, "status.migrationState.targetNode is %s, not %s",
                                   t ? t : "empty", e->require_target);
    }
    return TRUE;
}

static gboolean
vmig_ctl_finalizers(JsonObject *object, const VmigCtlEdit *e)
{
    gboolean changed = FALSE;
    if (!e->add_finalizer && !e->remove_finalizer)
        return FALSE;
    JsonObject *meta = json_object_get_object_member(object, "metadata");
    if (!meta)
        return FALSE;
    JsonArray *old = json_object_has_member(meta, "finalizers")
                         ? json_object_get_array_member(meta, "finalizers")
                         : NULL;
    g_autoptr(JsonArray) fresh = json_array_new();
    gboolean present = FALSE;
    for (guint i = 0; old && i < json_array_get_length(old); i++) {
        const char *f = json_array_get_string_element(old, i);
        if (e->remove_finalizer && g_strcmp0(f, e->remove_finalizer) == 0) {
            changed = TRUE;
            continue;
        }
        if (e->add_finalizer && g_strcmp0(f, e->add_finalizer) == 0)
            present = TRUE;
        json_array_add_element(fresh, json_node_copy(json_array_get_element(old, i)));
    }
    if (e->add_finalizer && !present) {
        json_array_add_string_element(fresh, e->add_finalizer);
        changed = TRUE;
    }
    if (changed && json_array_get_length(fresh) == 0)
        json_object_remove_member(meta, "finalizers");
    else if (changed)
        json_object_set_array_member(meta, "finalizers", json_array_ref(fresh));
    return changed;
}

VmigKubeMutateResult
vmig_ctl_edit_apply(JsonObject *object, gpointer user_data, GError **error)
{
    const VmigCtlEdit *e = user_data;
    g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), object);
    /* json_node_copy() shares the object: compare serialized forms instead. */
    g_autofree char *before = json_to_string(root, FALSE);

    if (!vmig_ctl_check(root, e, error))
        return VMIG_KUBE_MUTATE_REFUSE;

    if (e->reset_migration_state) {
        JsonNode *st = vmig_model_json_get(root, "status.migrationState");
        const char *holder = vmig_ctl_get_string(root, "status.migrationState.migrationUid");
        /* Only a claim by a new migration starts from an empty state; re-applying our own
         * claim after a conflict keeps what we already wrote. */
        if (st && g_strcmp0(holder, e->claim_uid) != 0 &&
            !vmig_model_json_set(root, "status.migrationState", vmig_ctl_empty_object(), error))
            return VMIG_KUBE_MUTATE_REFUSE;
    }
    for (guint i = 0; i < e->sets->len; i++) {
        const VmigCtlSet *s = e->sets->pdata[i];
        if (s->key) {
            JsonNode *parent = vmig_model_json_get(root, s->path);
            if (!parent && s->value &&
                !vmig_model_json_set(root, s->path, vmig_ctl_empty_object(), error))
                return VMIG_KUBE_MUTATE_REFUSE;
            parent = vmig_model_json_get(root, s->path);
            if (!parent)
                continue;
            if (!JSON_NODE_HOLDS_OBJECT(parent)) {
                g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED,
                            "%s: %s is not an object", e->what, s->path);
                return VMIG_KUBE_MUTATE_REFUSE;
            }
            JsonObject *po = json_node_get_object(parent);
            if (s->value)
                json_object_set_member(po, s->key, json_node_copy(s->value));
            else if (json_object_has_member(po, s->key))
                json_object_remove_member(po, s->key);
        } else if (s->value) {
            if (!vmig_model_json_set(root, s->path, json_node_copy(s->value), error))
                return VMIG_KUBE_MUTATE_REFUSE;
        } else {
            /* remove: find the parent object */
            g_autofree char *parent = g_strdup(s->path);
            char *dot = strrchr(parent, '.');
            JsonNode *p = NULL;
            const char *member = s->path;
            if (dot) {
                *dot = '\0';
                member = dot + 1;
                p = vmig_model_json_get(root, parent);
            } else {
                p = root;
            }
            if (p && JSON_NODE_HOLDS_OBJECT(p) &&
                json_object_has_member(json_node_get_object(p), member))
                json_object_remove_member(json_node_get_object(p), member);
        }
    }
    if (e->set_phase && !vmig_model_vmim_set_phase(root, e->phase, e->now, error))
        return VMIG_KUBE_MUTATE_REFUSE;
    vmig_ctl_finalizers(object, e);

    g_autofree char *after = json_to_string(root, FALSE);
    return g_strcmp0(before, after) == 0 ? VMIG_KUBE_MUTATE_UNCHANGED : VMIG_KUBE_MUTATE_CHANGED;
}
