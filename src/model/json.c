/* json.c - careful readers of untrusted JSON members, shared parts of objects (metadata,
 * conditions, migrationState, migration options) and the in-place status writers. json-glib's
 * typed getters log criticals on a type mismatch, so every reader checks the node type first. */
#include "model-private.h"

#include <string.h>

void
vmig_model_set_error(GError **error, VmigModelError code, const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, VMIG_MODEL_ERROR, code, "%s: %s", what, msg);
}

static const char *
json_type_name(JsonNode *n)
{
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return "null";
    if (JSON_NODE_HOLDS_OBJECT(n))
        return "an object";
    if (JSON_NODE_HOLDS_ARRAY(n))
        return "an array";
    switch (json_node_get_value_type(n)) {
    case G_TYPE_STRING:
        return "a string";
    case G_TYPE_BOOLEAN:
        return "a boolean";
    default:
        return "a number";
    }
}

/* Absent and JSON null are the same for optional members (Kubernetes omits or nulls them). */
static JsonNode *
member(JsonObject *o, const char *name)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;
    return n && JSON_NODE_HOLDS_NULL(n) ? NULL : n;
}

JsonObject *
vmig_model_get_object(JsonObject *o, const char *name, const char *what, const char *path,
                      gboolean required, GError **error)
{
    JsonNode *n = member(o, name);
    if (!n) {
        if (required)
            vmig_model_set_error(error, VMIG_MODEL_ERROR_MISSING, what, "%s is missing", path);
        return NULL;
    }
    if (!JSON_NODE_HOLDS_OBJECT(n)) {
        vmig_model_set_error(error, VMIG_MODEL_ERROR_TYPE, what, "%s must be an object, not %s",
                             path, json_type_name(n));
        return NULL;
    }
    return json_node_get_object(n);
}

JsonArray *
vmig_model_get_array(JsonObject *o, const char *name, const char *what, const char *path,
                     GError **error)
{
    JsonNode *n = member(o, name);
    if (!n)
        return NULL;
    if (!JSON_NODE_HOLDS_ARRAY(n)) {
        vmig_model_set_error(error, VMIG_MODEL_ERROR_TYPE, what, "%s must be an array, not %s",
                             path, json_type_name(n));
        return NULL;
    }
    return json_node_get_array(n);
}

gboolean
vmig_model_get_string(JsonObject *o, const char *name, const char *what, const char *path,
                      gboolean required, char **out, GError **error)
{
    JsonNode *n = member(o, name);
    *out = NULL;
    if (!n) {
        if (required) {
            vmig_model_set_error(error, VMIG_MODEL_ERROR_MISSING, what, "%s is missing", path);
            return FALSE;
        }
        return TRUE;
    }
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
        vmig_model_set_error(error, VMIG_MODEL_ERROR_TYPE, what, "%s must be a string, not %s",
                             path, json_type_name(n));
        return FALSE;
    }
    *out = g_strdup(json_node_get_string(n));
    return TRUE;
}

gboolean
vmig_model_get_bool(JsonObject *o, const char *name, const char *what, const char *path,
                    gboolean *out, GError **error)
{
    JsonNode *n = member(o, name);
    if (!n)
        return TRUE;
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN) {
        vmig_model_set_error(error, VMIG_MODEL_ERROR_TYPE, what, "%s must be a boolean, not %s",
                             path, json_type_name(n));
        return FALSE;
    }
    *out = json_node_get_boolean(n);
    return TRUE;
}

gboolean
vmig_model_get_int(JsonObject *o, const char *name, const char *what, const char *path, gint64 min,
                   gint64 max, gint64 *out, GError **error)
{
    JsonNode *n = member(o, name);
    if (!n)
        return TRUE;
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64) {
        vmig_model_set_error(error, VMIG_MODEL_ERROR_TYPE, what, "%s must be an integer, not %s",
                             path, json_type_name(n));
        return FALSE;
    }
    gint64 v = json_node_get_int(n);
    if (v < min || v > max) {
        vmig_model_set_error(error, VMIG_MODEL_ERROR_RANGE, what,
                             "%s: %" G_GINT64_FORMAT " is out of range [%" G_GINT64_FORMAT
                             ", %" G_GINT64_FORMAT "]",
                             path, v, min, max);
        return FALSE;
    }
    *out = v;
    return TRUE;
}

gboolean
vmig_model_get_string_map(JsonObject *o, const char *name, const char *what, const char *path,
                          GHashTable **out, GError **error)
{
    *out = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    JsonObject *m = vmig_model_get_object(o, name, what, path, FALSE, error);
    if (!m)
        return !(error && *error);
    g_autoptr(GList) keys = json_object_get_members(m);
    for (GList *l = keys; l; l = l->next) {
        JsonNode *v = json_object_get_member(m, l->data);
        if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_STRING) {
            vmig_model_set_error(error, VMIG_MODEL_ERROR_TYPE, what,
                                 "%s.%s must be a string, not %s", path, (const char *)l->data,
                                 json_type_name(v));
            return FALSE;
        }
        g_hash_table_replace(*out, g_strdup(l->data), g_strdup(json_node_get_string(v)));
    }
    return TRUE;
}

gboolean
vmig_model_get_quantity_bytes(JsonObject *o, const char *name, const char *what, const char *path,
                              gint64 *out, GError **error)
{
    JsonNode *n = member(o, name);
    if (!n)
        return TRUE;
    VmigModelQuantity q;
    g_autoptr(GError) e = NULL;
    if (!vmig_model_quantity_from_json(n, path, FALSE, &q, &e)) {
        g_set_error(error, VMIG_MODEL_ERROR, e->code, "%s: %s", what, e->message);
        return FALSE;
    }
    *out = vmig_model_quantity_ceil(&q);
    return TRUE;
}

/* ---- metadata --------------------------------------------------------------------------- */

gboolean
vmig_model_meta_parse(JsonObject *root, const char *kind, gboolean namespaced, VmigModelMeta *meta,
                      char **what, GError **error)
{
    g_autoptr(GError) e = NULL;
    memset(meta, 0, sizeof *meta);
    *what = g_strdup(kind);
    JsonObject *md = vmig_model_get_object(root, "metadata", kind, "metadata", TRUE, error);
    if (!md)
        return FALSE;
    if (!vmig_model_get_string(md, "name", kind, "metadata.name", TRUE, &meta->name, error))
        return FALSE;
    if (!vmig_model_validate_name(meta->name, "metadata.name", &e)) {
        vmig_model_set_error(error, e->code, kind, "%s", e->message);
        return FALSE;
    }
    if (namespaced) {
        if (!vmig_model_get_string(md, "namespace", kind, "metadata.namespace", FALSE,
                                   &meta->namespace, error))
            return FALSE;
        /* Offline manifests often omit the namespace: kubectl's default applies. */
        if (!meta->namespace)
            meta->namespace = g_strdup("default");
        if (!vmig_model_validate_namespace(meta->namespace, "metadata.namespace", &e)) {
            vmig_model_set_error(error, e->code, kind, "%s", e->message);
            return FALSE;
        }
        g_free(*what);
        *what = g_strdup_printf("%s %s/%s", kind, meta->namespace, meta->name);
    } else {
        g_free(*what);
        *what = g_strdup_printf("%s %s", kind, meta->name);
    }
    if (!vmig_model_get_string(md, "uid", *what, "metadata.uid", FALSE, &meta->uid, error))
        return FALSE;
    if (meta->uid && !vmig_model_validate_uid(meta->uid, "metadata.uid", &e)) {
        vmig_model_set_error(error, e->code, *what, "%s", e->message);
        return FALSE;
    }
    if (!vmig_model_get_string(md, "resourceVersion", *what, "metadata.resourceVersion", FALSE,
                               &meta->resource_version, error) ||
        !vmig_model_get_string_map(md, "labels", *what, "metadata.labels", &meta->labels, error) ||
        !vmig_model_get_string_map(md, "annotations", *what, "metadata.annotations",
                                   &meta->annotations, error))
        return FALSE;
    return TRUE;
}

void
vmig_model_meta_clear(VmigModelMeta *meta)
{
    g_clear_pointer(&meta->name, g_free);
    g_clear_pointer(&meta->namespace, g_free);
    g_clear_pointer(&meta->uid, g_free);
    g_clear_pointer(&meta->resource_version, g_free);
    g_clear_pointer(&meta->labels, g_hash_table_unref);
    g_clear_pointer(&meta->annotations, g_hash_table_unref);
}

/* ---- conditions, migrationState ------------------------------------------------------- */

void
vmig_model_condition_free(VmigModelCondition *c)
{
    if (!c)
        return;
    g_free(c->type);
    g_free(c->status);
    g_free(c->reason);
    g_free(c->message);
    g_free(c->last_transition_time);
    g_free(c->last_probe_time);
    g_free(c);
}

gboolean
vmig_model_conditions_parse(JsonObject *status, const char *what, GPtrArray **out, GError **error)
{
    *out = g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_condition_free);
    JsonArray *a = vmig_model_get_array(status, "conditions", what, "status.conditions", error);
    if (!a)
        return !(error && *error);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        g_autofree char *path = g_strdup_printf("status.conditions[%u]", i);
        JsonNode *n = json_array_get_element(a, i);
        if (!JSON_NODE_HOLDS_OBJECT(n)) {
            vmig_model_set_error(error, VMIG_MODEL_ERROR_TYPE, what, "%s must be an object", path);
            return FALSE;
        }
        JsonObject *o = json_node_get_object(n);
        VmigModelCondition *c = g_new0(VmigModelCondition, 1);
        g_ptr_array_add(*out, c);
        g_autofree char *p_type = g_strconcat(path, ".type", NULL);
        g_autofree char *p_status = g_strconcat(path, ".status", NULL);
        g_autofree char *p_reason = g_strconcat(path, ".reason", NULL);
        g_autofree char *p_message = g_strconcat(path, ".message", NULL);
        g_autofree char *p_ltt = g_strconcat(path, ".lastTransitionTime", NULL);
        g_autofree char *p_lpt = g_strconcat(path, ".lastProbeTime", NULL);
        if (!vmig_model_get_string(o, "type", what, p_type, TRUE, &c->type, error) ||
            !vmig_model_get_string(o, "status", what, p_status, TRUE, &c->status, error) ||
            !vmig_model_get_string(o, "reason", what, p_reason, FALSE, &c->reason, error) ||
            !vmig_model_get_string(o, "message", what, p_message, FALSE, &c->message, error) ||
            !vmig_model_get_string(o, "lastTransitionTime", what, p_ltt, FALSE,
                                   &c->last_transition_time, error) ||
            !vmig_model_get_string(o, "lastProbeTime", what, p_lpt, FALSE, &c->last_probe_time,
                                   error))
            return FALSE;
    }
    return TRUE;
}

void
vmig_model_migration_state_free(VmigModelMigrationState *s)
{
    if (!s)
        return;
    g_free(s->migration_uid);
    g_free(s->source_node);
    g_free(s->target_node);
    g_free(s->target_node_address);
    g_free(s->target_pod);
    g_free(s->start_timestamp);
    g_free(s->end_timestamp);
    g_free(s->mode);
    g_free(s->abort_status);
    g_free(s->failure_reason);
    if (s->target_direct_migration_node_ports)
        g_hash_table_unref(s->target_direct_migration_node_ports);
    g_free(s);
}

typedef struct {
    const char *member;
    gsize offset;
} StringField;

gboolean
vmig_model_migration_state_parse(JsonObject *status, const char *what,
                                 VmigModelMigrationState **out, GError **error)
{
    static const StringField strings[] = {
        {"migrationUid", G_STRUCT_OFFSET(VmigModelMigrationState, migration_uid)},
        {"sourceNode", G_STRUCT_OFFSET(VmigModelMigrationState, source_node)},
        {"targetNode", G_STRUCT_OFFSET(VmigModelMigrationState, target_node)},
        {"targetNodeAddress", G_STRUCT_OFFSET(VmigModelMigrationState, target_node_address)},
        {"targetPod", G_STRUCT_OFFSET(VmigModelMigrationState, target_pod)},
        {"startTimestamp", G_STRUCT_OFFSET(VmigModelMigrationState, start_timestamp)},
        {"endTimestamp", G_STRUCT_OFFSET(VmigModelMigrationState, end_timestamp)},
        {"mode", G_STRUCT_OFFSET(VmigModelMigrationState, mode)},
        {"abortStatus", G_STRUCT_OFFSET(VmigModelMigrationState, abort_status)},
        {"failureReason", G_STRUCT_OFFSET(VmigModelMigrationState, failure_reason)},
    };
    *out = NULL;
    JsonObject *ms = vmig_model_get_object(status, "migrationState", what, "status.migrationState",
                                           FALSE, error);
    if (!ms)
        return !(error && *error);
    VmigModelMigrationState *s = g_new0(VmigModelMigrationState, 1);
    s->target_direct_migration_node_ports =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(strings); i++) {
        g_autofree char *path = g_strconcat("status.migrationState.", strings[i].member, NULL);
        char **slot = G_STRUCT_MEMBER_P(s, strings[i].offset);
        if (!vmig_model_get_string(ms, strings[i].member, what, path, FALSE, slot, error))
            goto fail;
    }
    if (s->migration_uid && *s->migration_uid) {
        g_autoptr(GError) e = NULL;
        if (!vmig_model_validate_uid(s->migration_uid, "status.migrationState.migrationUid", &e)) {
            vmig_model_set_error(error, e->code, what, "%s", e->message);
            goto fail;
        }
    }
    if (s->target_node && *s->target_node) {
        g_autoptr(GError) e = NULL;
        if (!vmig_model_validate_name(s->target_node, "status.migrationState.targetNode", &e)) {
            vmig_model_set_error(error, e->code, what, "%s", e->message);
            goto fail;
        }
    }
    if (!vmig_model_get_bool(ms, "completed", what, "status.migrationState.completed",
                             &s->completed, error) ||
        !vmig_model_get_bool(ms, "failed", what, "status.migrationState.failed", &s->failed,
                             error) ||
        !vmig_model_get_bool(ms, "abortRequested", what, "status.migrationState.abortRequested",
                             &s->abort_requested, error))
        goto fail;
    JsonObject *ports =
        vmig_model_get_object(ms, "targetDirectMigrationNodePorts", what,
                              "status.migrationState.targetDirectMigrationNodePorts", FALSE, error);
    if (error && *error)
        goto fail;
    if (ports) {
        g_autoptr(GList) keys = json_object_get_members(ports);
        for (GList *l = keys; l; l = l->next) {
            gint64 port = 0;
            g_autofree char *path = g_strdup_printf(
                "status.migrationState.targetDirectMigrationNodePorts.%s", (char *)l->data);
            if (!vmig_model_get_int(ports, l->data, what, path, 0, 65535, &port, error))
                goto fail;
            g_hash_table_replace(s->target_direct_migration_node_ports, g_strdup(l->data),
                                 GINT_TO_POINTER((int)port));
        }
    }
    *out = s;
    return TRUE;
fail:
    vmig_model_migration_state_free(s);
    return FALSE;
}

/* ---- migration options (KubeVirt CR and MigrationPolicy share the field names) -------- */

typedef enum { OPT_INT, OPT_BOOL, OPT_QUANTITY, OPT_STRING } OptType;

typedef struct {
    const char *member;
    VmigModelMigrationField bit;
    OptType type;
    gsize offset;
    gboolean policy; /* may appear in a MigrationPolicy spec */
} OptionRow;

/* One row per field: add a field, add a row. */
static const OptionRow option_rows[] = {
    {"parallelMigrationsPerCluster", VMIG_MODEL_MIG_PARALLEL_PER_CLUSTER, OPT_INT,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, parallel_migrations_per_cluster), FALSE},
    {"parallelOutboundMigrationsPerNode", VMIG_MODEL_MIG_PARALLEL_OUTBOUND_PER_NODE, OPT_INT,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, parallel_outbound_migrations_per_node), FALSE},
    {"bandwidthPerMigration", VMIG_MODEL_MIG_BANDWIDTH, OPT_QUANTITY,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, bandwidth_per_migration), TRUE},
    {"completionTimeoutPerGiB", VMIG_MODEL_MIG_COMPLETION_TIMEOUT_PER_GIB, OPT_INT,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, completion_timeout_per_gib), TRUE},
    {"progressTimeout", VMIG_MODEL_MIG_PROGRESS_TIMEOUT, OPT_INT,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, progress_timeout), FALSE},
    {"allowAutoConverge", VMIG_MODEL_MIG_ALLOW_AUTO_CONVERGE, OPT_BOOL,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, allow_auto_converge), TRUE},
    {"allowPostCopy", VMIG_MODEL_MIG_ALLOW_POST_COPY, OPT_BOOL,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, allow_post_copy), TRUE},
    {"allowWorkloadDisruption", VMIG_MODEL_MIG_ALLOW_WORKLOAD_DISRUPTION, OPT_BOOL,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, allow_workload_disruption), TRUE},
    {"disableTLS", VMIG_MODEL_MIG_DISABLE_TLS, OPT_BOOL,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, disable_tls), FALSE},
    {"nodeDrainTaintKey", VMIG_MODEL_MIG_NODE_DRAIN_TAINT_KEY, OPT_STRING,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, node_drain_taint_key), FALSE},
    {"unsafeMigrationOverride", VMIG_MODEL_MIG_UNSAFE_OVERRIDE, OPT_BOOL,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, unsafe_migration_override), FALSE},
    {"matchSELinuxLevelOnMigration", VMIG_MODEL_MIG_MATCH_SELINUX_LEVEL, OPT_BOOL,
     G_STRUCT_OFFSET(VmigModelMigrationOptions, match_selinux_level_on_migration), FALSE},
};

gboolean
vmig_model_migration_options_parse(JsonObject *o, const char *what, const char *prefix,
                                   gboolean policy, VmigModelMigrationOptions *out, GError **error)
{
    memset(out, 0, sizeof *out);
    if (!o)
        return TRUE;
    for (gsize i = 0; i < G_N_ELEMENTS(option_rows); i++) {
        const OptionRow *r = &option_rows[i];
        if (policy && !r->policy)
            continue;
        if (!member(o, r->member))
            continue;
        g_autofree char *path = g_strconcat(prefix, ".", r->member, NULL);
        void *slot = G_STRUCT_MEMBER_P(out, r->offset);
        gboolean ok = FALSE;
        switch (r->type) {
        case OPT_INT:
            ok = vmig_model_get_int(o, r->member, what, path, 0, G_MAXINT64, slot, error);
            break;
        case OPT_BOOL:
            ok = vmig_model_get_bool(o, r->member, what, path, slot, error);
            break;
        case OPT_STRING:
            ok = vmig_model_get_string(o, r->member, what, path, FALSE, slot, error);
            break;
        case OPT_QUANTITY: {
            g_autoptr(GError) e = NULL;
            ok = vmig_model_quantity_from_json(member(o, r->member), path, FALSE, slot, &e);
            if (!ok)
                g_set_error(error, VMIG_MODEL_ERROR, e->code, "%s: %s", what, e->message);
            break;
        }
        }
        if (!ok)
            return FALSE;
        out->set |= r->bit;
    }
    return TRUE;
}

void
vmig_model_migration_options_clear(VmigModelMigrationOptions *o)
{
    g_clear_pointer(&o->node_drain_taint_key, g_free);
}

/* ---- write-back ----------------------------------------------------------------------- */

JsonNode *
vmig_model_json_get(JsonNode *root, const char *path)
{
    g_auto(GStrv) parts = g_strsplit(path, ".", -1);
    JsonNode *n = root;
    for (int i = 0; parts[i]; i++) {
        if (!n || !JSON_NODE_HOLDS_OBJECT(n))
            return NULL;
        n = json_object_get_member(json_node_get_object(n), parts[i]);
    }
    return n;
}

gboolean
vmig_model_json_set(JsonNode *root, const char *path, JsonNode *value, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(path, ".", -1);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root) || !parts[0]) {
        json_node_unref(value);
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_TYPE, "%s: root is not an object",
                    path);
        return FALSE;
    }
    /* Sealed (immutable) nodes are shared by design; editing one would be a bug upstream. */
    if (json_node_is_immutable(root)) {
        json_node_unref(value);
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_TYPE,
                    "%s: the object is immutable (sealed); write to a copy", path);
        return FALSE;
    }
    JsonObject *o = json_node_get_object(root);
    for (int i = 0; parts[i + 1]; i++) {
        JsonNode *n = json_object_get_member(o, parts[i]);
        if (!n || JSON_NODE_HOLDS_NULL(n)) {
            JsonObject *fresh = json_object_new();
            json_object_set_object_member(o, parts[i], fresh);
            o = fresh;
        } else if (JSON_NODE_HOLDS_OBJECT(n) && !json_node_is_immutable(n)) {
            o = json_node_get_object(n);
        } else {
            json_node_unref(value);
            g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_TYPE,
                        "%s: member %s exists and is not an object", path, parts[i]);
            return FALSE;
        }
    }
    json_object_set_member(o, parts[g_strv_length(parts) - 1], value);
    return TRUE;
}

gboolean
vmig_model_json_set_string(JsonNode *root, const char *path, const char *value, GError **error)
{
    JsonNode *v = json_node_new(JSON_NODE_NULL);
    if (value) {
        json_node_unref(v);
        v = json_node_new(JSON_NODE_VALUE);
        json_node_set_string(v, value);
    }
    return vmig_model_json_set(root, path, v, error);
}

static const char *
str_member(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

static void
set_or_remove(JsonObject *o, const char *name, const char *value)
{
    if (value && *value)
        json_object_set_string_member(o, name, value);
    else if (json_object_has_member(o, name))
        json_object_remove_member(o, name);
}

static gboolean
writable(JsonNode *n, const char *what, GError **error)
{
    if (n && json_node_is_immutable(n)) {
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_TYPE,
                    "%s: the object is immutable (sealed); write to a copy", what);
        return FALSE;
    }
    return TRUE;
}

gboolean
vmig_model_set_condition(JsonNode *root, const VmigModelCondition *cond, const char *now,
                         GError **error)
{
    if (!writable(root, "status.conditions", error))
        return FALSE;
    JsonNode *list = vmig_model_json_get(root, "status.conditions");
    if (!list || JSON_NODE_HOLDS_NULL(list)) {
        JsonNode *fresh = json_node_new(JSON_NODE_ARRAY);
        json_node_take_array(fresh, json_array_new());
        if (!vmig_model_json_set(root, "status.conditions", fresh, error))
            return FALSE;
        list = vmig_model_json_get(root, "status.conditions");
    }
    if (!JSON_NODE_HOLDS_ARRAY(list)) {
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_TYPE,
                    "status.conditions must be an array");
        return FALSE;
    }
    if (!writable(list, "status.conditions", error))
        return FALSE;
    JsonArray *a = json_node_get_array(list);
    JsonObject *entry = NULL;
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *n = json_array_get_element(a, i);
        if (JSON_NODE_HOLDS_OBJECT(n) &&
            g_strcmp0(str_member(json_node_get_object(n), "type"), cond->type) == 0) {
            if (!writable(n, "status.conditions", error))
                return FALSE;
            entry = json_node_get_object(n);
            break;
        }
    }
    gboolean changed = TRUE;
    if (entry) {
        gboolean status_same = g_strcmp0(str_member(entry, "status"), cond->status) == 0;
        changed = !status_same ||
                  g_strcmp0(str_member(entry, "reason") ? str_member(entry, "reason") : "",
                            cond->reason ? cond->reason : "") != 0 ||
                  g_strcmp0(str_member(entry, "message") ? str_member(entry, "message") : "",
                            cond->message ? cond->message : "") != 0;
        if (!status_same)
            set_or_remove(entry, "lastTransitionTime", now);
    } else {
        entry = json_object_new();
        json_array_add_object_element(a, entry);
        json_object_set_string_member(entry, "type", cond->type);
        /* KubeVirt writes a null lastProbeTime; keep the same shape. */
        json_object_set_null_member(entry, "lastProbeTime");
        set_or_remove(entry, "lastTransitionTime", now);
    }
    json_object_set_string_member(entry, "status", cond->status);
    set_or_remove(entry, "reason", cond->reason);
    set_or_remove(entry, "message", cond->message);
    return changed;
}

gboolean
vmig_model_vmim_set_phase(JsonNode *root, VmigModelMigrationPhase phase, const char *now,
                          GError **error)
{
    const char *name = vmig_model_migration_phase_to_string(phase);
    if (!writable(root, "status.phase", error))
        return FALSE;
    JsonNode *cur = vmig_model_json_get(root, "status.phase");
    gboolean same = cur && JSON_NODE_HOLDS_VALUE(cur) &&
                    json_node_get_value_type(cur) == G_TYPE_STRING &&
                    g_strcmp0(json_node_get_string(cur), name) == 0;
    if (!vmig_model_json_set_string(root, "status.phase", name, error))
        return FALSE;
    if (same)
        return TRUE;
    JsonNode *list = vmig_model_json_get(root, "status.phaseTransitionTimestamps");
    if (!list || !JSON_NODE_HOLDS_ARRAY(list)) {
        JsonNode *fresh = json_node_new(JSON_NODE_ARRAY);
        json_node_take_array(fresh, json_array_new());
        if (!vmig_model_json_set(root, "status.phaseTransitionTimestamps", fresh, error))
            return FALSE;
        list = vmig_model_json_get(root, "status.phaseTransitionTimestamps");
    }
    if (!writable(list, "status.phaseTransitionTimestamps", error))
        return FALSE;
    JsonObject *e = json_object_new();
    json_object_set_string_member(e, "phase", name);
    json_object_set_string_member(e, "phaseTransitionTimestamp", now);
    json_array_add_object_element(json_node_get_array(list), e);
    return TRUE;
}
