/* controller.c - informers, the work queue and the facts behind each decision. */
#define G_LOG_DOMAIN "vmig-controller"

#include "controller-private.h"

#include <string.h>

G_DEFINE_QUARK(vmig - controller - error - quark, vmig_controller_error)

/* Informer lag tolerated before a VMIM whose VMI is missing is failed. */
#define CTL_MISSING_VMI_GRACE_MS 10000

static const struct {
    VmigKubeResourceId resource;
    const char *label; /* for logs */
} ctl_informers[CTL_N_INF] = {
    [CTL_INF_VMIM] = {VMIG_KUBE_VMIM, "VMIMs"},
    [CTL_INF_VMI] = {VMIG_KUBE_VMI, "VMIs"},
    [CTL_INF_NODE] = {VMIG_KUBE_NODE, "Nodes"},
    [CTL_INF_LEASE] = {VMIG_KUBE_LEASE, "Leases"},
    [CTL_INF_PVC] = {VMIG_KUBE_PVC, "PVCs"},
    [CTL_INF_DV] = {VMIG_KUBE_DATAVOLUME, "DataVolumes"},
    [CTL_INF_KUBEVIRT] = {VMIG_KUBE_KUBEVIRT, "KubeVirt"},
    [CTL_INF_POLICY] = {VMIG_KUBE_MIGRATION_POLICY, "MigrationPolicies"},
    [CTL_INF_NAMESPACE] = {VMIG_KUBE_NAMESPACE, "Namespaces"},
};

const VmigKubeResource *
vmig_ctl_informer_resource(CtlInformer which)
{
    return vmig_kube_resource(ctl_informers[which].resource);
}

gint64
vmig_ctl_wall_ms(void)
{
    return g_get_real_time() / 1000;
}

/* ------------------------------------------------------------------------------------ */
/* jobs                                                                                 */

static CtlJob *
ctl_job_get(VmigController *ctl, const char *key, gboolean create)
{
    CtlJob *job = g_hash_table_lookup(ctl->jobs, key);
    if (job || !create)
        return job;
    job = g_new0(CtlJob, 1);
    job->ctl = ctl;
    job->key = g_strdup(key);
    const char *slash = strchr(key, '/');
    job->ns = g_strndup(key, slash - key);
    job->name = g_strdup(slash + 1);
    g_hash_table_insert(ctl->jobs, job->key, job);
    return job;
}

static void
ctl_job_free(gpointer data)
{
    CtlJob *job = data;
    if (job->wake_id)
        g_source_remove(job->wake_id);
    vmig_ctl_job_release_local(job);
    g_free(job->ns);
    g_free(job->name);
    g_free(job->uid);
    g_free(job->vmi_name);
    g_free(job->last_reason);
    g_free(job->job_reason);
    g_free(job->chosen_target);
    g_free(job->slot_inbound_node);
    g_free(job->slot_reason);
    g_free(job->slot_wait_node);
    g_free(job->source_node);
    g_free(job->target_node);
    g_free(job->key);
    g_free(job);
}

static gboolean
ctl_job_has_local(const CtlJob *job)
{
    return job->proxy_source || job->proxy_target || job->migration || job->dom;
}

/* ------------------------------------------------------------------------------------ */
/* queue                                                                                */

static void ctl_reconcile(VmigController *ctl, const char *key);

static gboolean
ctl_queue_run(gpointer data)
{
    VmigController *ctl = data;
    ctl->queue_idle = 0;
    g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, ctl->queue);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        CtlJob *job = g_hash_table_lookup(ctl->jobs, k);
        if (job && job->busy)
            continue; /* its completion re-queues it */
        g_ptr_array_add(keys, g_strdup(k));
        g_hash_table_iter_remove(&it);
    }
    for (guint i = 0; i < keys->len; i++)
        ctl_reconcile(ctl, keys->pdata[i]);
    return G_SOURCE_REMOVE;
}

void
vmig_ctl_enqueue(VmigController *ctl, const char *key)
{
    g_hash_table_add(ctl->queue, g_strdup(key));
    if (!ctl->queue_idle && ctl->started)
        ctl->queue_idle = g_idle_add(ctl_queue_run, ctl);
}

static void
ctl_enqueue_all(VmigController *ctl)
{
    if (!ctl->inf[CTL_INF_VMIM])
        return;
    g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(ctl->inf[CTL_INF_VMIM]);
    for (guint i = 0; i < keys->len; i++)
        vmig_ctl_enqueue(ctl, keys->pdata[i]);
}

static gboolean
ctl_job_wake(gpointer data)
{
    CtlJob *job = data;
    job->wake_id = 0;
    job->wake_at_ms = 0;
    vmig_ctl_enqueue(job->ctl, job->key);
    return G_SOURCE_REMOVE;
}

void
vmig_ctl_job_retry(CtlJob *job, guint delay_ms)
{
    if (job->wake_id)
        g_source_remove(job->wake_id);
    job->wake_at_ms = vmig_ctl_wall_ms() + delay_ms;
    job->wake_id = g_timeout_add(delay_ms, ctl_job_wake, job);
}

void
vmig_ctl_job_idle(CtlJob *job)
{
    job->busy = FALSE;
    /* ctl_queue_run leaves the key of a busy job queued but does not come back for it: an
     * event that arrived during the action (e.g. the other node's write that made ours a
     * conflict) would otherwise wait for the job's next wake-up, up to 1 s later */
    if (g_hash_table_contains(job->ctl->queue, job->key))
        vmig_ctl_enqueue(job->ctl, job->key);
}

static void
ctl_job_schedule_wake(CtlJob *job, gint64 at_ms)
{
    if (at_ms <= 0 || (job->wake_id && job->wake_at_ms <= at_ms))
        return;
    if (job->wake_id)
        g_source_remove(job->wake_id);
    gint64 delay = at_ms - vmig_ctl_wall_ms();
    job->wake_at_ms = at_ms;
    job->wake_id = g_timeout_add((guint)CLAMP(delay, 0, G_MAXINT), ctl_job_wake, job);
}

/* ------------------------------------------------------------------------------------ */
/* informer handlers                                                                    */

static void
ctl_index_vmim(VmigController *ctl, JsonNode *obj, gboolean add)
{
    g_autofree char *key = vmig_kube_object_key(obj);
    JsonNode *spec = vmig_model_json_get(obj, "spec.vmiName");
    const char *ns = vmig_kube_meta_string(obj, "namespace");
    if (!spec || JSON_NODE_TYPE(spec) != JSON_NODE_VALUE || !ns)
        return;
    g_autofree char *vkey = g_strdup_printf("%s/%s", ns, json_node_get_string(spec));
    GHashTable *set = g_hash_table_lookup(ctl->vmi_index, vkey);
    if (add) {
        if (!set) {
            set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
            g_hash_table_insert(ctl->vmi_index, g_strdup(vkey), set);
        }
        g_hash_table_add(set, g_strdup(key));
    } else if (set) {
        g_hash_table_remove(set, key);
        if (g_hash_table_size(set) == 0)
            g_hash_table_remove(ctl->vmi_index, vkey);
    }
}

/* A VMIM appeared, changed or went: index it by its VMI and look at everything it touches. */
static void
ctl_vmim_changed(VmigController *ctl, JsonNode *obj, gboolean present)
{
    g_autofree char *key = vmig_kube_object_key(obj);
    ctl_index_vmim(ctl, obj, present);
    vmig_ctl_enqueue(ctl, key);
    vmig_ctl_drain_schedule(ctl);
    vmig_ctl_metrics_dirty(ctl);
}

static void
ctl_vmim_added(VmigKubeInformer *inf, JsonNode *obj, gpointer data)
{
    ctl_vmim_changed(data, obj, TRUE);
}

static void
ctl_vmim_updated(VmigKubeInformer *inf, JsonNode *old_obj, JsonNode *new_obj, gpointer data)
{
    VmigController *ctl = data;
    ctl_index_vmim(ctl, old_obj, FALSE);
    ctl_vmim_added(inf, new_obj, data);
    vmig_ctl_slots_vmim_changed(ctl, old_obj, new_obj);
}

static void
ctl_vmim_deleted(VmigKubeInformer *inf, JsonNode *obj, gpointer data)
{
    ctl_vmim_changed(data, obj, FALSE);
    vmig_ctl_slots_vmim_changed(data, obj, NULL);
}

static void
ctl_vmi_changed(VmigController *ctl, JsonNode *obj)
{
    g_autofree char *vkey = vmig_kube_object_key(obj);
    GHashTable *set = g_hash_table_lookup(ctl->vmi_index, vkey);
    if (!set)
        return;
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, set);
    while (g_hash_table_iter_next(&it, &k, NULL))
        vmig_ctl_enqueue(ctl, k);
}

static void
ctl_vmi_added(VmigKubeInformer *inf, JsonNode *obj, gpointer data)
{
    VmigController *ctl = data;
    ctl_vmi_changed(ctl, obj);
    if (vmig_controller_is_ready(ctl))
        vmig_ctl_vmi_condition(ctl, obj);
    vmig_ctl_drain_schedule(ctl);
}

static void
ctl_vmi_deleted(VmigKubeInformer *inf, JsonNode *obj, gpointer data)
{
    ctl_vmi_changed(data, obj);
}

static void
ctl_vmi_updated(VmigKubeInformer *inf, JsonNode *old_obj, JsonNode *new_obj, gpointer data)
{
    ctl_vmi_added(inf, new_obj, data);
}

/* Nodes, Leases, policies: anything may change eligibility or limits. */
static void
ctl_other_added(VmigKubeInformer *inf, JsonNode *obj, gpointer data)
{
    ctl_enqueue_all(data);
    vmig_ctl_drain_schedule(data);
}

static void
ctl_other_updated(VmigKubeInformer *inf, JsonNode *old_obj, JsonNode *new_obj, gpointer data)
{
    ctl_enqueue_all(data);
    vmig_ctl_drain_schedule(data);
}

/* Slot Leases wake only the jobs waiting for them (slots.c); the others (heartbeats) may
 * change any decision. */
static void
ctl_lease_added(VmigKubeInformer *inf, JsonNode *obj, gpointer data)
{
    if (!vmig_ctl_slots_lease_changed(data, obj, FALSE))
        ctl_other_added(inf, obj, data);
}

static void
ctl_lease_updated(VmigKubeInformer *inf, JsonNode *old_obj, JsonNode *new_obj, gpointer data)
{
    if (!vmig_ctl_slots_lease_changed(data, new_obj, FALSE))
        ctl_other_updated(inf, old_obj, new_obj, data);
}

static void
ctl_lease_deleted(VmigKubeInformer *inf, JsonNode *obj, gpointer data)
{
    if (!vmig_ctl_slots_lease_changed(data, obj, TRUE))
        ctl_other_added(inf, obj, data);
}

static void
ctl_synced(VmigKubeInformer *inf, gpointer data)
{
    VmigController *ctl = data;
    for (guint i = 0; i < CTL_N_INF; i++)
        if (ctl->inf[i] == inf)
            g_info("informer for %s synced (%u objects)", ctl_informers[i].label,
                   vmig_kube_informer_size(inf));
    ctl_enqueue_all(ctl);
    if (!ctl->conditions_written && vmig_controller_is_ready(ctl)) {
        /* The VMIs listed at start-up arrived before the caches were complete, when the
         * checks could not run: write their LiveMigratable condition now, or a VMI that
         * never changes would never get one. */
        ctl->conditions_written = TRUE;
        g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(ctl->inf[CTL_INF_VMI]);
        for (guint i = 0; i < keys->len; i++) {
            g_auto(GStrv) nn = g_strsplit(keys->pdata[i], "/", 2);
            if (!nn[0] || !nn[1])
                continue;
            g_autoptr(JsonNode) vmi = vmig_kube_informer_get(ctl->inf[CTL_INF_VMI], nn[0], nn[1]);
            if (vmi)
                vmig_ctl_vmi_condition(ctl, vmi);
        }
    }
    vmig_ctl_drain_schedule(ctl);
}

gboolean
vmig_controller_is_ready(VmigController *ctl)
{
    for (guint i = 0; i < CTL_N_INF; i++)
        if (i != CTL_INF_DV && ctl->inf[i] && !vmig_kube_informer_has_synced(ctl->inf[i]))
            return FALSE; /* DataVolumes exist only with CDI installed */
    return ctl->started;
}

/* ------------------------------------------------------------------------------------ */
/* node facts                                                                           */

static JsonNode *
ctl_lease(VmigController *ctl, const char *node)
{
    g_autofree char *name = g_strconcat(VMIG_CTL_LEASE_PREFIX, node, NULL);
    return vmig_kube_informer_get(ctl->inf[CTL_INF_LEASE], ctl->lease_namespace, name);
}

gboolean
vmig_ctl_node_ready(VmigController *ctl, const char *node, gint64 now_ms)
{
    g_autoptr(JsonNode) lease = ctl_lease(ctl, node);
    if (!lease)
        return FALSE;
    JsonNode *renew = vmig_model_json_get(lease, "spec.renewTime");
    JsonNode *dur = vmig_model_json_get(lease, "spec.leaseDurationSeconds");
    if (!renew || JSON_NODE_TYPE(renew) != JSON_NODE_VALUE)
        return FALSE;
    g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(json_node_get_string(renew), NULL);
    if (!t)
        return FALSE;
    gint64 seconds = dur && JSON_NODE_TYPE(dur) == JSON_NODE_VALUE ? json_node_get_int(dur)
                                                                   : VMIG_CTL_LEASE_SECONDS;
    return g_date_time_to_unix(t) * 1000 + seconds * 1000 >= now_ms;
}

char *
vmig_ctl_node_address(VmigController *ctl, const char *node)
{
    g_autoptr(JsonNode) lease = ctl_lease(ctl, node);
    if (lease) {
        JsonNode *a = vmig_model_json_get(lease, "metadata.annotations");
        if (a && JSON_NODE_HOLDS_OBJECT(a) &&
            json_object_has_member(json_node_get_object(a), VMIG_CTL_ANN_ADDRESS))
            return g_strdup(
                json_object_get_string_member(json_node_get_object(a), VMIG_CTL_ANN_ADDRESS));
    }
    g_autoptr(JsonNode) n = vmig_kube_informer_get(ctl->inf[CTL_INF_NODE], NULL, node);
    if (!n)
        return NULL;
    g_autoptr(VmigModelNode) view = vmig_model_node_from_json(n, NULL);
    if (!view)
        return NULL;
    for (guint i = 0; view->addresses && i < view->addresses->len; i++) {
        const VmigModelNodeAddress *a = view->addresses->pdata[i];
        if (g_strcmp0(a->type, "InternalIP") == 0)
            return g_strdup(a->address);
    }
    return NULL;
}

/* Unfinished migrations per target node (the ranking of target choice), from the VMIM cache.
 * The limits themselves are held with Lease slots (slots.c). Returns (transfer full). */
static GHashTable *
ctl_inbound_counts(VmigController *ctl, const char *exclude_key)
{
    GHashTable *inbound = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(ctl->inf[CTL_INF_VMIM]);
    for (guint i = 0; i < keys->len; i++) {
        if (g_strcmp0(keys->pdata[i], exclude_key) == 0)
            continue;
        const char *k = keys->pdata[i];
        const char *slash = strchr(k, '/');
        g_autofree char *ns = g_strndup(k, slash - k);
        g_autoptr(JsonNode) n = vmig_kube_informer_get(ctl->inf[CTL_INF_VMIM], ns, slash + 1);
        g_autoptr(VmigModelVmim) m = n ? vmig_model_vmim_from_json(n, NULL) : NULL;
        if (!m || m->phase < VMIG_MODEL_MIGRATION_PHASE_SCHEDULING ||
            vmig_model_migration_phase_is_final(m->phase))
            continue;
        const VmigModelMigrationState *st = m->migration_state;
        if (st && st->target_node) {
            guint c = GPOINTER_TO_UINT(g_hash_table_lookup(inbound, st->target_node));
            g_hash_table_replace(inbound, g_strdup(st->target_node), GUINT_TO_POINTER(c + 1));
        }
    }
    return inbound;
}

/* ------------------------------------------------------------------------------------ */
/* facts and decisions                                                                  */

/* VMIM alive = exists and not final; used by claims (B19 run B). */
gboolean
vmig_ctl_holder_live(const char *ns, const char *uid, gpointer data)
{
    VmigController *ctl = data;
    g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(ctl->inf[CTL_INF_VMIM]);
    for (guint i = 0; i < keys->len; i++) {
        const char *k = keys->pdata[i];
        if (!g_str_has_prefix(k, ns) || k[strlen(ns)] != '/')
            continue;
        g_autoptr(JsonNode) n =
            vmig_kube_informer_get(ctl->inf[CTL_INF_VMIM], ns, k + strlen(ns) + 1);
        if (n && g_strcmp0(vmig_kube_meta_string(n, "uid"), uid) == 0) {
            g_autoptr(VmigModelVmim) m = vmig_model_vmim_from_json(n, NULL);
            return m && !vmig_model_migration_phase_is_final(m->phase) && !m->deleting;
        }
    }
    return FALSE;
}

gboolean
vmig_ctl_has_finalizer(JsonNode *vmim)
{
    JsonNode *fin = vmig_model_json_get(vmim, "metadata.finalizers");
    if (!fin || !JSON_NODE_HOLDS_ARRAY(fin))
        return FALSE;
    JsonArray *a = json_node_get_array(fin);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *e = json_array_get_element(a, i);
        if (JSON_NODE_TYPE(e) == JSON_NODE_VALUE &&
            g_strcmp0(json_node_get_string(e), VMIG_CONTROLLER_FINALIZER) == 0)
            return TRUE;
    }
    return FALSE;
}

gint64
vmig_ctl_parse_time_ms(const char *s)
{
    if (!s)
        return 0;
    g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(s, NULL);
    return t ? g_date_time_to_unix(t) * 1000 + g_date_time_get_microsecond(t) / 1000 : 0;
}

static VmigModelMigrationPhase
ctl_phase(VmigModelMigrationPhase p)
{
    /* The two enums list KubeVirt's phases in the same order. */
    return (VmigModelMigrationPhase)p;
}

/* Source checks, limits and target choice are only worth computing when the
 * decision needs them; strings are kept in @hold. */
static void
ctl_source_facts(VmigController *ctl, CtlJob *job, VmigModelVmim *vmim, VmigModelVmi *vmi,
                 VmigMigrationFacts *f, GPtrArray *hold)
{
    if (f->phase == VMIG_MODEL_MIGRATION_PHASE_PENDING) {
        char *reason = NULL;
        f->migratable = vmig_ctl_check_source(ctl, vmi, &reason, NULL);
        if (reason)
            g_ptr_array_add(hold, reason);
        f->not_migratable = reason;

        /* the limits: slot Leases, taken only when the decision is CLAIM (slots.c) */
    }
    if (f->phase == VMIG_MODEL_MIGRATION_PHASE_SCHEDULING) {
        char *why = NULL;
        g_free(job->chosen_target);
        job->chosen_target =
            vmig_ctl_choose_target(ctl, vmi, vmim->added_node_selector, job->key, &why);
        f->chosen_target = job->chosen_target;
        if (why) {
            g_ptr_array_add(hold, why);
            f->no_target_reason = why;
        }
    }
}

char *
vmig_ctl_choose_target(VmigController *ctl, VmigModelVmi *vmi, GHashTable *added_selector,
                       const char *exclude_key, char **reason)
{
    g_autoptr(GHashTable) inbound = ctl_inbound_counts(ctl, exclude_key);
    g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(ctl->inf[CTL_INF_NODE]);
    g_autofree VmigMigrationCandidate *cands = g_new0(VmigMigrationCandidate, keys->len + 1);
    g_autoptr(GPtrArray) views =
        g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_node_free);
    g_autofree char *taint = vmig_ctl_drain_taint_key(ctl);
    gint64 now = vmig_ctl_wall_ms();
    guint n = 0;
    for (guint i = 0; i < keys->len; i++) {
        g_autoptr(JsonNode) node =
            vmig_kube_informer_get(ctl->inf[CTL_INF_NODE], NULL, keys->pdata[i]);
        VmigModelNode *view = node ? vmig_model_node_from_json(node, NULL) : NULL;
        if (!view)
            continue;
        g_ptr_array_add(views, view);
        cands[n++] = (VmigMigrationCandidate){
            .name = view->meta.name,
            .agent_ready = vmig_ctl_node_ready(ctl, view->meta.name, now),
            .unschedulable = view->unschedulable,
            .draining = vmig_model_node_has_taint(view, taint),
            .labels = view->meta.labels,
            .inbound = GPOINTER_TO_UINT(g_hash_table_lookup(inbound, view->meta.name)),
        };
    }
    char *why = NULL;
    const char *chosen = vmig_migration_choose_target(cands, n, ctl->cfg->node_name, added_selector,
                                                      vmi->node_selector, &why);
    if (why && reason)
        *reason = g_strdup_printf("%s for %s/%s", why, vmi->meta.namespace, vmi->meta.name);
    g_free(why);
    return g_strdup(chosen);
}

static void
ctl_log_decision(CtlJob *job, const VmigMigrationDecision *d)
{
    if (d->action == job->last_action && g_strcmp0(d->reason, job->last_reason) == 0)
        return;
    if (d->action != VMIG_MIGRATION_ACTION_NONE || d->reason)
        g_message("VMIM %s: %s role, %s%s%s", job->key, vmig_migration_role_to_string(d->role),
                  vmig_migration_action_to_string(d->action), d->reason ? ": " : "",
                  d->reason ? d->reason : "");
    job->last_action = d->action;
    g_free(job->last_reason);
    job->last_reason = g_strdup(d->reason);
}

/* The limits hold under races (slots.c): CLAIM needs a cluster and an outbound slot,
 * SCHEDULE the target's inbound slot. Returns FALSE when the decision must not be
 * performed now (an acquisition is in flight, or SCHEDULE waits for an inbound slot). */
static gboolean
ctl_slots_gate(CtlJob *job, VmigMigrationFacts *f, VmigMigrationDecision *d, JsonNode *vmim)
{
    const char *why = NULL;
    switch (vmig_ctl_slots_gate(job, d->action, job->chosen_target, &why)) {
    case CTL_SLOTS_OK:
        return TRUE;
    case CTL_SLOTS_BUSY:
        vmig_migration_decision_clear(d);
        return FALSE;
    case CTL_SLOTS_WAIT:
        break;
    }
    if (d->action == VMIG_MIGRATION_ACTION_CLAIM) {
        /* Pending -> WAIT with the reason (event, retry after the backoff) */
        vmig_migration_decision_clear(d);
        f->slot_free = FALSE;
        f->slot_wait_reason = why;
        vmig_migration_decide(f, d);
        return TRUE;
    }
    /* SCHEDULE: stay Scheduling (holding the cluster and outbound slots) and retry */
    vmig_migration_decision_clear(d);
    if (g_strcmp0(why, job->last_reason) != 0) {
        g_message("VMIM %s: %s", job->key, why);
        vmig_kube_recorder_event(job->ctl->recorder, vmim, FALSE, "MigrationPending", why, NULL,
                                 NULL);
        g_free(job->last_reason);
        job->last_reason = g_strdup(why);
    }
    vmig_ctl_job_retry(job, vmig_ctl_slots_retry_ms(job));
    return FALSE;
}

static void
ctl_reconcile(VmigController *ctl, const char *key)
{
    const char *slash = strchr(key, '/');
    g_autofree char *ns = g_strndup(key, slash - key);
    const char *name = slash + 1;
    g_autoptr(JsonNode) vmim_node = vmig_kube_informer_get(ctl->inf[CTL_INF_VMIM], ns, name);
    CtlJob *job = ctl_job_get(ctl, key, vmim_node != NULL);

    if (!vmim_node) {
        /* Gone (finalizer removed, or force-deleted): nothing may stay behind. */
        if (job && !job->busy) {
            if (job->migration && !job->job_done) {
                g_warning("VMIM %s vanished while its migration runs; aborting it", key);
                vmig_virt_migration_request_abort(job->migration, NULL);
                return; /* the job's end re-queues the key; then the job is dropped */
            }
            g_hash_table_remove(ctl->jobs, key);
        }
        return;
    }
    if (job->busy)
        return;

    g_autoptr(GError) err = NULL;
    g_autoptr(VmigModelVmim) vmim = vmig_model_vmim_from_json(vmim_node, &err);
    if (!vmim) {
        /* A malformed VMIM can never run; say why once. */
        if (!job->last_reason || !strstr(job->last_reason, err->message))
            g_warning("VMIM %s is malformed: %s", key, err->message);
        g_free(job->last_reason);
        job->last_reason = g_strdup(err->message);
        return;
    }
    g_free(job->uid);
    job->uid = g_strdup(vmim->meta.uid);
    g_free(job->vmi_name);
    job->vmi_name = g_strdup(vmim->vmi_name);

    g_autoptr(JsonNode) vmi_node =
        vmig_kube_informer_get(ctl->inf[CTL_INF_VMI], ns, vmim->vmi_name);
    g_autoptr(VmigModelVmi) vmi = vmi_node ? vmig_model_vmi_from_json(vmi_node, &err) : NULL;
    if (vmi_node && !vmi)
        g_warning("VMI %s/%s is malformed: %s", ns, vmim->vmi_name, err->message);

    g_autofree char *vmi_key = g_strdup_printf("%s/%s", ns, vmim->vmi_name);
    const VmigModelMigrationState *st = vmi ? vmi->migration_state : NULL;
    gboolean ours = st && g_strcmp0(st->migration_uid, vmim->meta.uid) == 0;
    gint64 phase_since = 0;
    for (guint i = 0; vmim->phase_transitions && i < vmim->phase_transitions->len; i++) {
        const VmigModelPhaseTransition *t = vmim->phase_transitions->pdata[i];
        if (t->phase == vmim->phase)
            phase_since = vmig_ctl_parse_time_ms(t->timestamp);
    }
    g_autoptr(GPtrArray) hold = g_ptr_array_new_with_free_func(g_free);
    gboolean has_finalizer = vmig_ctl_has_finalizer(vmim_node);

    VmigMigrationFacts f = {
        .node = ctl->cfg->node_name,
        .now_ms = vmig_ctl_wall_ms(),
        .target_ready_timeout_ms = ctl->cfg->target_ready_timeout_ms,
        .missing_vmi_grace_ms = CTL_MISSING_VMI_GRACE_MS,
        .vmim_uid = vmim->meta.uid,
        .phase = ctl_phase(vmim->phase),
        .phase_since_ms = phase_since,
        .created_ms = vmig_ctl_parse_time_ms(vmig_kube_meta_string(vmim_node, "creationTimestamp")),
        .deleting = vmim->deleting,
        .has_finalizer = has_finalizer,
        .vmi_key = vmi_key,
        .vmi_exists = vmi != NULL,
        .vmi_running = vmi && vmi->phase == VMIG_MODEL_VMI_PHASE_RUNNING,
        .vmi_node = vmi ? vmi->node_name : NULL,
        .claim_uid = st ? st->migration_uid : NULL,
        .claim_holder_live = st && st->migration_uid && !ours
                                 ? vmig_ctl_holder_live(ns, st->migration_uid, ctl)
                                 : ours,
        .source_node = ours ? st->source_node : NULL,
        .target_node = ours ? st->target_node : NULL,
        .state_completed = ours && st->completed,
        .state_failed = ours && st->failed,
        .post_copy = ours && g_strcmp0(st->mode, "PostCopy") == 0,
        .abort_requested = ours && st->abort_requested,
        .migratable = TRUE,
        .slot_free = TRUE,
        .local_job = job->migration != NULL,
        .local_job_done = job->job_done,
        .local_job_ok = job->job_ok,
        .local_job_reason = job->job_reason,
        .local_target = job->proxy_target,
        .local_resources = ctl_job_has_local(job),
        .domain_here = job->domain_here,
    };
    vmig_ctl_recover_facts(job, &f);
    if (ctl->shutting_down && f.phase < VMIG_MODEL_MIGRATION_PHASE_SCHEDULING && !f.deleting)
        return; /* accept nothing new while stopping */

    VmigMigrationDecision d;
    if (vmi &&
        (f.phase == VMIG_MODEL_MIGRATION_PHASE_PENDING ||
         f.phase == VMIG_MODEL_MIGRATION_PHASE_SCHEDULING) &&
        g_strcmp0(vmi->node_name, ctl->cfg->node_name) == 0)
        ctl_source_facts(ctl, job, vmim, vmi, &f, hold);
    vmig_migration_decide(&f, &d);
    if (!ctl_slots_gate(job, &f, &d, vmim_node))
        return;
    if (d.action == VMIG_MIGRATION_ACTION_WAIT && d.role == VMIG_MIGRATION_ROLE_SOURCE &&
        job->last_action == d.action && g_strcmp0(d.reason, job->last_reason) == 0 &&
        job->wake_id) {
        /* Woken early by a slot change, still waiting for the same reason: the event was
         * posted and the retry is set; posting again on every Lease change is noise. */
        vmig_migration_decision_clear(&d);
        return;
    }
    ctl_log_decision(job, &d);
    ctl_job_schedule_wake(job, d.wake_at_ms);
    if (d.action != VMIG_MIGRATION_ACTION_NONE)
        vmig_ctl_perform(job, &d, vmim, vmi);
    vmig_migration_decision_clear(&d);
}

/* ------------------------------------------------------------------------------------ */
/* lifecycle                                                                            */

static void
ctl_connection_done(const char *uid, VmigProxyChannel channel, guint64 fwd, guint64 rev,
                    const GError *error, gpointer data)
{
    if (error)
        g_warning("migration %s: proxy %s connection failed after %" G_GUINT64_FORMAT " bytes: %s",
                  uid, vmig_proxy_channel_to_string(channel), fwd + rev, error->message);
    else
        g_debug("migration %s: proxy %s connection done: %" G_GUINT64_FORMAT
                " bytes forward, %" G_GUINT64_FORMAT " back",
                uid, vmig_proxy_channel_to_string(channel), fwd, rev);
    VmigController *ctl = data;
    VmigProxyStats st = {0};
    /* the migration still runs while its connections end: its transport is known */
    if (!vmig_proxy_get_stats(ctl->proxy, uid, &st))
        st.transport = VMIG_PROXY_TRANSPORT_DEFAULT;
    vmig_ctl_metrics_connection(ctl, channel, st.transport, fwd, rev, error == NULL);
}

VmigController *
vmig_controller_new(const VmigAgentConfig *cfg, VmigKubeClient *client, GError **error)
{
    g_autoptr(VmigController) ctl = g_new0(VmigController, 1);
    ctl->cfg = cfg;
    ctl->kube = vmig_kube_client_ref(client);
    ctl->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, ctl_job_free);
    ctl->vmi_index =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_hash_table_unref);
    ctl->queue = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    ctl->lease_namespace = g_strdup(cfg->lease_namespace);
    ctl->drain_created = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    ctl->recorder = vmig_kube_recorder_new(client, "vmigrated", cfg->node_name, 0);

    VmigProxyConfig pc = {
        .cert_file = cfg->tls_cert,
        .key_file = cfg->tls_key,
        .ca_file = cfg->tls_ca,
        .disable_tls = cfg->disable_tls,
        .connection_done = ctl_connection_done,
        .user_data = ctl,
    };
    g_autoptr(GError) perr = NULL;
    ctl->proxy = vmig_proxy_new(&pc, &perr);
    if (!ctl->proxy) {
        g_set_error(error, VMIG_CONTROLLER_ERROR, VMIG_CONTROLLER_ERROR_SETUP,
                    "migration proxy: %s", perr->message);
        return NULL;
    }
    /* The daemon's main loop runs the default GMainContext, where libvirt's event sources
     * live: no second thread may iterate it. */
    if (!vmig_virt_event_loop_register(&perr)) {
        g_set_error(error, VMIG_CONTROLLER_ERROR, VMIG_CONTROLLER_ERROR_SETUP,
                    "libvirt event loop: %s", perr->message);
        return NULL;
    }

    static const VmigKubeInformerHandlers vmim_h = {
        .added = ctl_vmim_added,
        .updated = ctl_vmim_updated,
        .deleted = ctl_vmim_deleted,
        .synced = ctl_synced,
    };
    static const VmigKubeInformerHandlers vmi_h = {
        .added = ctl_vmi_added,
        .updated = ctl_vmi_updated,
        .deleted = ctl_vmi_deleted,
        .synced = ctl_synced,
    };
    static const VmigKubeInformerHandlers lease_h = {
        .added = ctl_lease_added,
        .updated = ctl_lease_updated,
        .deleted = ctl_lease_deleted,
        .synced = ctl_synced,
    };
    static const VmigKubeInformerHandlers other_h = {
        .added = ctl_other_added,
        .updated = ctl_other_updated,
        .deleted = ctl_other_added,
        .synced = ctl_synced,
    };
    for (guint i = 0; i < CTL_N_INF; i++) {
        const VmigKubeInformerHandlers *h = i == CTL_INF_VMIM    ? &vmim_h
                                            : i == CTL_INF_VMI   ? &vmi_h
                                            : i == CTL_INF_LEASE ? &lease_h
                                                                 : &other_h;
        VmigKubeInformerOptions opts = {0};
        if (i == CTL_INF_LEASE)
            opts.namespace = ctl->lease_namespace;
        ctl->inf[i] = vmig_kube_informer_new(client, vmig_kube_resource(ctl_informers[i].resource),
                                             &opts, h, ctl);
    }
    return g_steal_pointer(&ctl);
}

void
vmig_controller_start(VmigController *ctl)
{
    ctl->started = TRUE;
    for (guint i = 0; i < CTL_N_INF; i++)
        vmig_kube_informer_start(ctl->inf[i]);
    vmig_ctl_heartbeat_start(ctl);
    vmig_ctl_slots_start(ctl);
    vmig_ctl_budget_start(ctl);
    g_message("vmigrated controller started on node %s", ctl->cfg->node_name);
}

static gboolean
ctl_shutdown_check(gpointer data)
{
    VmigController *ctl = data;
    gboolean live = FALSE;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, ctl->jobs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CtlJob *job = v;
        if ((job->migration && !job->job_done) || job->busy)
            live = TRUE;
    }
    if (live)
        return G_SOURCE_CONTINUE;
    ctl->shutdown_timer = 0;
    if (ctl->shutdown_deadline)
        g_source_remove(ctl->shutdown_deadline);
    ctl->shutdown_deadline = 0;
    if (ctl->shutdown_done) {
        GSourceFunc done = ctl->shutdown_done;
        ctl->shutdown_done = NULL;
        done(ctl->shutdown_data);
    }
    return G_SOURCE_REMOVE;
}

static gboolean
ctl_shutdown_deadline(gpointer data)
{
    VmigController *ctl = data;
    g_warning("shutdown grace period over; migrations still running are left to libvirt and "
              "reconciled at the next start");
    ctl->shutdown_deadline = 0;
    if (ctl->shutdown_timer)
        g_source_remove(ctl->shutdown_timer);
    ctl->shutdown_timer = 0;
    if (ctl->shutdown_done) {
        GSourceFunc done = ctl->shutdown_done;
        ctl->shutdown_done = NULL;
        done(ctl->shutdown_data);
    }
    return G_SOURCE_REMOVE;
}

void
vmig_controller_shutdown(VmigController *ctl, guint grace_ms, GSourceFunc done, gpointer data)
{
    ctl->shutting_down = TRUE;
    ctl->shutdown_done = done;
    ctl->shutdown_data = data;
    vmig_ctl_heartbeat_stop(ctl);
    vmig_ctl_drain_stop(ctl);
    ctl->shutdown_timer = g_timeout_add(100, ctl_shutdown_check, ctl);
    ctl->shutdown_deadline = g_timeout_add(grace_ms, ctl_shutdown_deadline, ctl);
}

void
vmig_controller_free(VmigController *ctl)
{
    if (!ctl)
        return;
    vmig_ctl_heartbeat_stop(ctl);
    vmig_ctl_slots_stop(ctl);
    vmig_ctl_drain_stop(ctl);
    vmig_ctl_metrics_stop(ctl);
    vmig_ctl_budget_stop(ctl);
    if (ctl->queue_idle)
        g_source_remove(ctl->queue_idle);
    if (ctl->shutdown_timer)
        g_source_remove(ctl->shutdown_timer);
    if (ctl->shutdown_deadline)
        g_source_remove(ctl->shutdown_deadline);
    for (guint i = 0; i < CTL_N_INF; i++)
        g_clear_pointer(&ctl->inf[i], vmig_kube_informer_free);
    g_clear_pointer(&ctl->jobs, g_hash_table_unref);
    g_clear_pointer(&ctl->vmi_index, g_hash_table_unref);
    g_clear_pointer(&ctl->queue, g_hash_table_unref);
    g_clear_pointer(&ctl->drain_created, g_hash_table_unref);
    g_clear_pointer(&ctl->proxy, vmig_proxy_free);
    g_clear_pointer(&ctl->recorder, vmig_kube_recorder_free);
    g_clear_pointer(&ctl->kube, vmig_kube_client_unref);
    g_free(ctl->lease_namespace);
    g_free(ctl);
}
