/* drain.c - when this node is drained, move its VMIs away (vmig/evacuation.h decides). */
#define G_LOG_DOMAIN "vmig-controller"

#include "controller-private.h"

#include "vmig/evacuation.h"

#include <string.h>

/* A created evacuation VMIM may take this long to show up in the informer. */
#define CTL_DRAIN_CREATE_GRACE_MS 30000

typedef struct {
    VmigModelVmi *vmi;
    GArray *evacuations; /* VmigEvacuationVmim (names owned by @names) */
    GPtrArray *names;
    gboolean unfinished;
} CtlDrainVmi;

static void
ctl_drain_vmi_clear(gpointer p)
{
    CtlDrainVmi *d = p;
    g_clear_pointer(&d->vmi, vmig_model_vmi_free);
    g_clear_pointer(&d->evacuations, g_array_unref);
    g_clear_pointer(&d->names, g_ptr_array_unref);
}

static gint64
ctl_drain_end_ms(VmigModelVmim *m)
{
    const char *t = m->migration_state ? m->migration_state->end_timestamp : NULL;
    if (!t && m->phase_transitions && m->phase_transitions->len) {
        const VmigModelPhaseTransition *last =
            m->phase_transitions->pdata[m->phase_transitions->len - 1];
        t = last->timestamp;
    }
    return vmig_ctl_parse_time_ms(t);
}

/* The VMIMs of one VMI (from the controller's index): unfinished ones, and this node's
 * evacuation history. */
static void
ctl_drain_vmims(VmigController *ctl, CtlDrainVmi *d)
{
    g_autofree char *vkey = g_strdup_printf("%s/%s", d->vmi->meta.namespace, d->vmi->meta.name);
    GHashTable *set = g_hash_table_lookup(ctl->vmi_index, vkey);
    d->evacuations = g_array_new(FALSE, TRUE, sizeof(VmigEvacuationVmim));
    d->names = g_ptr_array_new_with_free_func(g_free);
    if (!set)
        return;
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, set);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        const char *key = k;
        const char *slash = strchr(key, '/');
        g_autofree char *ns = g_strndup(key, slash - key);
        g_autoptr(JsonNode) n = vmig_kube_informer_get(ctl->inf[CTL_INF_VMIM], ns, slash + 1);
        g_autoptr(VmigModelVmim) m = n ? vmig_model_vmim_from_json(n, NULL) : NULL;
        if (!m)
            continue;
        if (!vmig_model_migration_phase_is_final(m->phase))
            d->unfinished = TRUE;
        const char *ann = g_hash_table_lookup(m->meta.annotations, VMIG_EVACUATION_ANNOTATION);
        if (g_strcmp0(ann, ctl->cfg->node_name) != 0)
            continue;
        char *name = g_strdup(m->meta.name);
        g_ptr_array_add(d->names, name);
        VmigEvacuationVmim e = {
            .name = name,
            .phase = m->phase,
            .ended_ms = vmig_model_migration_phase_is_final(m->phase) ? ctl_drain_end_ms(m) : 0,
        };
        g_array_append_val(d->evacuations, e);
    }
}

static void
ctl_drain_written(GObject *src, GAsyncResult *res, gpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) out = vmig_kube_call_finish(res, NULL, &err);
    if (!out && !g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_NOT_FOUND))
        g_warning("drain: %s", err->message);
}

static void
ctl_drain_edit_done(GObject *src, GAsyncResult *res, gpointer data)
{
    vmig_ctl_edit_free(data);
    ctl_drain_written(src, res, NULL);
}

static void
ctl_drain_set_marker(VmigController *ctl, const char *ns, const char *name, const char *node)
{
    g_autofree char *what = g_strdup_printf("VirtualMachineInstance %s/%s", ns, name);
    VmigCtlEdit *e = vmig_ctl_edit_new(what);
    vmig_ctl_edit_set_string(e, "status.evacuationNodeName", node);
    vmig_kube_mutate(ctl->kube, vmig_kube_resource(VMIG_KUBE_VMI), ns, name, TRUE, NULL, 0,
                     vmig_ctl_edit_apply, e, NULL, ctl_drain_edit_done, e);
}

static void
ctl_drain_create(VmigController *ctl, const VmigEvacuationAction *a, JsonNode *vmi_node)
{
    g_autofree char *vkey = g_strdup_printf("%s/%s", a->namespace_, a->name);
    g_hash_table_replace(ctl->drain_created, g_strdup(vkey),
                         GINT_TO_POINTER((gint)(vmig_ctl_wall_ms() / 1000)));
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "apiVersion", "kubevirt.io/v1");
    json_object_set_string_member(o, "kind", "VirtualMachineInstanceMigration");
    JsonObject *meta = json_object_new();
    json_object_set_string_member(meta, "generateName", VMIG_EVACUATION_GENERATE_NAME);
    json_object_set_string_member(meta, "namespace", a->namespace_);
    JsonObject *ann = json_object_new();
    json_object_set_string_member(ann, VMIG_EVACUATION_ANNOTATION, ctl->cfg->node_name);
    json_object_set_object_member(meta, "annotations", ann);
    JsonObject *labels = json_object_new();
    json_object_set_string_member(labels, VMIG_CTL_LABEL_VMI_NAME, a->name);
    json_object_set_object_member(meta, "labels", labels);
    json_object_set_object_member(o, "metadata", meta);
    JsonObject *spec = json_object_new();
    json_object_set_string_member(spec, "vmiName", a->name);
    json_object_set_object_member(o, "spec", spec);
    g_autoptr(JsonNode) body = json_node_init_object(json_node_alloc(), o);
    json_object_unref(o);
    VmigKubeRequest req = {
        .resource = vmig_kube_resource(VMIG_KUBE_VMIM),
        .namespace = a->namespace_,
        .body = body,
    };
    vmig_kube_call(ctl->kube, VMIG_KUBE_VERB_CREATE, &req, NULL, ctl_drain_written, NULL);
    ctl_drain_set_marker(ctl, a->namespace_, a->name, ctl->cfg->node_name);
    g_autofree char *msg =
        g_strdup_printf("evacuating %s from node %s (drain)", vkey, ctl->cfg->node_name);
    g_message("drain: %s", msg);
    vmig_kube_recorder_event(ctl->recorder, vmi_node, FALSE, "EvacuationStarted", msg, NULL, NULL);
}

static void
ctl_drain_perform(VmigController *ctl, const VmigEvacuationAction *a, JsonNode *vmi_node,
                  gint64 *wake)
{
    switch (a->kind) {
    case VMIG_EVACUATION_ACTION_CREATE:
        ctl_drain_create(ctl, a, vmi_node);
        break;
    case VMIG_EVACUATION_ACTION_BLOCKED:
        /* the recorder folds repeats into one Event with a count: no storm (B17) */
        vmig_kube_recorder_event(ctl->recorder, vmi_node, TRUE, "EvacuationBlocked", a->reason,
                                 NULL, NULL);
        break;
    case VMIG_EVACUATION_ACTION_BACKOFF: {
        g_autofree char *msg = g_strdup_printf("evacuation of %s/%s failed; retrying with backoff",
                                               a->namespace_, a->name);
        vmig_kube_recorder_event(ctl->recorder, vmi_node, TRUE, "EvacuationBackoff", msg, NULL,
                                 NULL);
        if (!*wake || a->wake_at_ms < *wake)
            *wake = a->wake_at_ms;
        break;
    }
    case VMIG_EVACUATION_ACTION_DELETE: {
        g_message("drain: node %s is schedulable again; deleting evacuation %s/%s",
                  ctl->cfg->node_name, a->namespace_, a->vmim);
        VmigKubeRequest req = {
            .resource = vmig_kube_resource(VMIG_KUBE_VMIM),
            .namespace = a->namespace_,
            .name = a->vmim,
        };
        vmig_kube_call(ctl->kube, VMIG_KUBE_VERB_DELETE, &req, NULL, ctl_drain_written, NULL);
        break;
    }
    case VMIG_EVACUATION_ACTION_CLEAR: {
        g_autofree char *what =
            g_strdup_printf("VirtualMachineInstance %s/%s", a->namespace_, a->name);
        VmigCtlEdit *e = vmig_ctl_edit_new(what);
        vmig_ctl_edit_set(e, "status.evacuationNodeName", NULL);
        vmig_kube_mutate(ctl->kube, vmig_kube_resource(VMIG_KUBE_VMI), a->namespace_, a->name, TRUE,
                         NULL, 0, vmig_ctl_edit_apply, e, NULL, ctl_drain_edit_done, e);
        break;
    }
    }
}

static gboolean ctl_drain_wake(gpointer data);

static gboolean
handover_of(const VmigModelVmi *vmi, const char *me)
{
    const VmigModelMigrationState *st = vmi->migration_state;
    return st && st->completed && !st->failed && st->target_node &&
           g_strcmp0(st->target_node, me) != 0;
}

static gboolean
ctl_drain_run(gpointer data)
{
    VmigController *ctl = data;
    ctl->drain_idle = 0;
    if (!vmig_controller_is_ready(ctl) || ctl->shutting_down)
        return G_SOURCE_REMOVE;
    const char *me = ctl->cfg->node_name;
    g_autoptr(JsonNode) node_json = vmig_kube_informer_get(ctl->inf[CTL_INF_NODE], NULL, me);
    g_autoptr(VmigModelNode) node = node_json ? vmig_model_node_from_json(node_json, NULL) : NULL;
    if (!node)
        return G_SOURCE_REMOVE;
    g_autofree char *taint = vmig_ctl_drain_taint_key(ctl);
    gboolean draining = node->unschedulable || vmig_model_node_has_taint(node, taint);
    VmigModelEvictionStrategy cluster = vmig_ctl_cluster_eviction_strategy(ctl);
    gint64 now = vmig_ctl_wall_ms();

    g_autoptr(GArray) rows = g_array_new(FALSE, TRUE, sizeof(CtlDrainVmi));
    g_array_set_clear_func(rows, ctl_drain_vmi_clear);
    g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(ctl->inf[CTL_INF_VMI]);
    for (guint i = 0; i < keys->len; i++) {
        const char *k = keys->pdata[i];
        const char *slash = strchr(k, '/');
        g_autofree char *ns = g_strndup(k, slash - k);
        g_autoptr(JsonNode) n = vmig_kube_informer_get(ctl->inf[CTL_INF_VMI], ns, slash + 1);
        VmigModelVmi *vmi = n ? vmig_model_vmi_from_json(n, NULL) : NULL;
        if (!vmi || g_strcmp0(vmi->node_name, me) != 0) {
            g_clear_pointer(&vmi, vmig_model_vmi_free);
            continue;
        }
        CtlDrainVmi d = {.vmi = vmi};
        ctl_drain_vmims(ctl, &d);
        g_array_append_val(rows, d);
    }

    g_autofree VmigEvacuationVmi *in = g_new0(VmigEvacuationVmi, rows->len + 1);
    g_autoptr(GPtrArray) hold = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < rows->len; i++) {
        CtlDrainVmi *d = &g_array_index(rows, CtlDrainVmi, i);
        g_autofree char *vkey = g_strdup_printf("%s/%s", d->vmi->meta.namespace, d->vmi->meta.name);
        /* a VMIM we just created counts as unfinished until the informer shows it */
        gint created = GPOINTER_TO_INT(g_hash_table_lookup(ctl->drain_created, vkey));
        gboolean pending_create =
            created && now / 1000 - created < CTL_DRAIN_CREATE_GRACE_MS / 1000;
        if (d->unfinished || !pending_create)
            g_hash_table_remove(ctl->drain_created, vkey);
        VmigModelEvictionStrategy s = d->vmi->eviction_strategy != VMIG_MODEL_EVICTION_UNSET
                                          ? d->vmi->eviction_strategy
                                          : cluster;
        char *reason = NULL;
        gboolean migratable = FALSE;
        if (draining && !d->unfinished && !pending_create && !handover_of(d->vmi, me) &&
            (s == VMIG_MODEL_EVICTION_LIVE_MIGRATE ||
             s == VMIG_MODEL_EVICTION_LIVE_MIGRATE_IF_POSSIBLE)) {
            migratable = vmig_ctl_check_source(ctl, d->vmi, &reason, NULL);
            if (migratable) {
                /* B17 vm2: no eligible target (e.g. pinned by its nodeSelector) means no
                 * attempt at all, instead of a VMIM that can only fail */
                g_autofree char *target = vmig_ctl_choose_target(ctl, d->vmi, NULL, NULL, &reason);
                migratable = target != NULL;
            }
        }
        if (reason)
            g_ptr_array_add(hold, reason);
        /* Its migration away has succeeded but the target has not taken it over yet (the
         * VMI still names this node): a second evacuation now would only fail (seen in the
         * drain test: vm1=Succeeded vm1=Failed). */
        gboolean handover = handover_of(d->vmi, me);
        in[i] = (VmigEvacuationVmi){
            .namespace_ = d->vmi->meta.namespace,
            .name = d->vmi->meta.name,
            .strategy = s,
            .migratable = migratable,
            .not_migratable = reason,
            .has_unfinished_vmim = d->unfinished || pending_create || handover,
            .evacuation_node = d->vmi->evacuation_node_name,
            .evacuations = (const VmigEvacuationVmim *)d->evacuations->data,
            .n_evacuations = d->evacuations->len,
        };
    }
    g_autoptr(GPtrArray) actions = vmig_evacuation_decide(me, draining, in, rows->len, now);
    gint64 wake = 0;
    for (guint i = 0; i < actions->len; i++) {
        const VmigEvacuationAction *a = actions->pdata[i];
        for (guint j = 0; j < rows->len; j++) {
            CtlDrainVmi *d = &g_array_index(rows, CtlDrainVmi, j);
            if (in[j].name == a->name && in[j].namespace_ == a->namespace_) {
                ctl_drain_perform(ctl, a, d->vmi->node, &wake);
                break;
            }
        }
    }
    if (wake) {
        if (ctl->drain_wake)
            g_source_remove(ctl->drain_wake);
        ctl->drain_wake =
            g_timeout_add((guint)CLAMP(wake - now + 100, 100, G_MAXINT), ctl_drain_wake, ctl);
    }
    return G_SOURCE_REMOVE;
}

static gboolean
ctl_drain_wake(gpointer data)
{
    VmigController *ctl = data;
    ctl->drain_wake = 0;
    vmig_ctl_drain_schedule(ctl);
    return G_SOURCE_REMOVE;
}

void
vmig_ctl_drain_schedule(VmigController *ctl)
{
    /* coalesce bursts of informer events into one pass */
    if (!ctl->drain_idle && ctl->started)
        ctl->drain_idle = g_timeout_add(200, ctl_drain_run, ctl);
}

void
vmig_ctl_drain_stop(VmigController *ctl)
{
    if (ctl->drain_idle)
        g_source_remove(ctl->drain_idle);
    if (ctl->drain_wake)
        g_source_remove(ctl->drain_wake);
    ctl->drain_idle = ctl->drain_wake = 0;
}
