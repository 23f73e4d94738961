/* metrics.c - what the controller tells the metrics registry (vmig/metrics.h).
 *
 * Kept apart from the decisions: each function here is called from one point of the
 * controller (a progress sample, a start, a completion, a proxy connection's end, a failed
 * write, a VMIM cache change) and does nothing when no registry was set. Phase gauges count
 * the VMIMs this node is the source of (the VMI's node before a claim, migrationState's
 * sourceNode after), so sum() over all nodes gives KubeVirt's cluster-wide figure. */
#define G_LOG_DOMAIN "vmig-controller"

#include "controller-private.h"

#include "vmig/metrics.h"

/* Recount at most this often; VMIM events in between only mark the counts stale. */
#define CTL_METRICS_RECOUNT_MS 1000

static void
ctl_metrics_set(VmigController *ctl, const char *name, const char *const *labels, double v)
{
    g_autoptr(GError) err = NULL;
    if (!vmig_metrics_set(ctl->metrics, name, labels, v, &err))
        g_debug("metrics: %s", err->message);
}

static void
ctl_metrics_add(VmigController *ctl, const char *name, const char *const *labels, double v)
{
    g_autoptr(GError) err = NULL;
    if (!vmig_metrics_add(ctl->metrics, name, labels, v, &err))
        g_debug("metrics: %s", err->message);
}

static const char *const ctl_progress_metrics[] = {
    VMIG_METRICS_DATA_PROCESSED, VMIG_METRICS_DATA_REMAINING, VMIG_METRICS_DATA_TOTAL,
    VMIG_METRICS_DIRTY_RATE,     VMIG_METRICS_TRANSFER_RATE,
};

void
vmig_ctl_metrics_sample(CtlJob *job)
{
    VmigController *ctl = job->ctl;
    if (!ctl->metrics || !job->vmi_name)
        return;
    const char *const labels[] = {job->ns, job->vmi_name, ctl->cfg->node_name, NULL};
    const guint64 values[] = {job->last_processed, job->last_remaining, job->last_total,
                              job->last_dirty_rate, job->last_mem_bps};
    G_STATIC_ASSERT(G_N_ELEMENTS(values) == G_N_ELEMENTS(ctl_progress_metrics));
    for (gsize i = 0; i < G_N_ELEMENTS(values); i++) {
        /* data_bytes_total is a counter in KubeVirt; a new migration of the same VMI
         * may start lower, so the series is dropped at each completion */
        ctl_metrics_set(ctl, ctl_progress_metrics[i], labels, (double)values[i]);
    }
}

void
vmig_ctl_metrics_recovery(CtlJob *job, const char *result)
{
    const char *const labels[] = {result, NULL};
    if (job->ctl->metrics)
        ctl_metrics_add(job->ctl, VMIG_METRICS_POSTCOPY_RECOVERY, labels, 1);
}

void
vmig_ctl_metrics_started(CtlJob *job)
{
    if (job->ctl->metrics)
        ctl_metrics_add(job->ctl, VMIG_METRICS_STARTED, NULL, 1);
}

void
vmig_ctl_metrics_complete(CtlJob *job, gboolean ok)
{
    VmigController *ctl = job->ctl;
    if (!ctl->metrics || !job->vmi_name || job->metrics_completed)
        return;
    job->metrics_completed = TRUE;
    const char *const labels[] = {job->ns, job->vmi_name, ctl->cfg->node_name, NULL};
    for (gsize i = 0; i < G_N_ELEMENTS(ctl_progress_metrics); i++)
        vmig_metrics_remove(ctl->metrics, ctl_progress_metrics[i], labels);
    const VmigVirtOutcome *o = job->outcome;
    if (ok && o && o->has_stats)
        ctl_metrics_set(ctl, VMIG_METRICS_LAST_DOWNTIME, labels, o->downtime_ms / 1000.0);
    ctl_metrics_add(ctl, VMIG_METRICS_COMPLETED,
                    (const char *const[]){ok ? "Succeeded" : "Failed", NULL}, 1);
    /* shown at once; the next recount keeps it while the VMIM exists */
    ctl_metrics_set(ctl, ok ? VMIG_METRICS_SUCCEEDED : VMIG_METRICS_FAILED,
                    (const char *const[]){job->vmi_name, job->name, job->ns, NULL}, 1);
}

void
vmig_ctl_metrics_connection(VmigController *ctl, VmigProxyChannel channel,
                            VmigProxyTransport transport, guint64 forward, guint64 reverse,
                            gboolean ok)
{
    if (!ctl->metrics)
        return;
    const char *ch = vmig_proxy_channel_to_string(channel);
    ctl_metrics_add(ctl, VMIG_METRICS_PROXY_BYTES, (const char *const[]){ch, "forward", NULL},
                    (double)forward);
    ctl_metrics_add(ctl, VMIG_METRICS_PROXY_BYTES, (const char *const[]){ch, "reverse", NULL},
                    (double)reverse);
    ctl_metrics_add(ctl, VMIG_METRICS_PROXY_CONNS,
                    (const char *const[]){ch, ok ? "ok" : "error",
                                          vmig_proxy_transport_to_string(transport), NULL},
                    1);
}

void
vmig_ctl_metrics_api_error(VmigController *ctl, const char *resource)
{
    if (ctl->metrics)
        ctl_metrics_add(ctl, VMIG_METRICS_API_ERRORS, (const char *const[]){resource, NULL}, 1);
}

/* The node a VMIM's source is (or will be): migrationState.sourceNode once claimed, the
 * VMI's node before. */
static char *
ctl_metrics_source_node(VmigController *ctl, const VmigModelVmim *m)
{
    if (m->migration_state && m->migration_state->source_node)
        return g_strdup(m->migration_state->source_node);
    g_autoptr(JsonNode) vmi =
        vmig_kube_informer_get(ctl->inf[CTL_INF_VMI], m->meta.namespace, m->vmi_name);
    JsonNode *node = vmi ? vmig_model_json_get(vmi, "status.nodeName") : NULL;
    return node && JSON_NODE_TYPE(node) == JSON_NODE_VALUE ? g_strdup(json_node_get_string(node))
                                                           : NULL;
}

static void
ctl_metrics_recount(VmigController *ctl)
{
    const char *me = ctl->cfg->node_name;
    guint unset = 0, pending = 0, scheduling = 0, running = 0;
    vmig_metrics_clear(ctl->metrics, VMIG_METRICS_SUCCEEDED);
    vmig_metrics_clear(ctl->metrics, VMIG_METRICS_FAILED);
    g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(ctl->inf[CTL_INF_VMIM]);
    for (guint i = 0; i < keys->len; i++) {
        const char *k = keys->pdata[i];
        const char *slash = strchr(k, '/');
        g_autofree char *ns = g_strndup(k, slash - k);
        g_autoptr(JsonNode) n = vmig_kube_informer_get(ctl->inf[CTL_INF_VMIM], ns, slash + 1);
        g_autoptr(VmigModelVmim) m = n ? vmig_model_vmim_from_json(n, NULL) : NULL;
        if (!m)
            continue;
        g_autofree char *source = ctl_metrics_source_node(ctl, m);
        if (g_strcmp0(source, me) != 0)
            continue;
        const char *const labels[] = {m->vmi_name, m->meta.name, m->meta.namespace, NULL};
        switch (m->phase) {
        case VMIG_MODEL_MIGRATION_PHASE_UNSET:
            unset++;
            break;
        case VMIG_MODEL_MIGRATION_PHASE_PENDING:
            pending++;
            break;
        case VMIG_MODEL_MIGRATION_PHASE_SCHEDULING:
            scheduling++;
            break;
        case VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED:
            ctl_metrics_set(ctl, VMIG_METRICS_SUCCEEDED, labels, 1);
            break;
        case VMIG_MODEL_MIGRATION_PHASE_FAILED:
            ctl_metrics_set(ctl, VMIG_METRICS_FAILED, labels, 1);
            break;
        default: /* Scheduled, PreparingTarget, TargetReady, Running: KubeVirt's "running" */
            running++;
            break;
        }
    }
    ctl_metrics_set(ctl, VMIG_METRICS_IN_UNSET, NULL, unset);
    ctl_metrics_set(ctl, VMIG_METRICS_IN_PENDING, NULL, pending);
    ctl_metrics_set(ctl, VMIG_METRICS_IN_SCHEDULING, NULL, scheduling);
    ctl_metrics_set(ctl, VMIG_METRICS_IN_RUNNING, NULL, running);
    /* the slot Leases of this node that are held (slots.c), not the VMIMs counted above:
     * the Leases are what the limits enforce */
    ctl_metrics_set(ctl, VMIG_METRICS_SLOTS_HELD, (const char *const[]){"outbound", NULL},
                    vmig_ctl_slots_count(ctl, VMIG_SLOTS_KIND_OUTBOUND, me));
    ctl_metrics_set(ctl, VMIG_METRICS_SLOTS_HELD, (const char *const[]){"inbound", NULL},
                    vmig_ctl_slots_count(ctl, VMIG_SLOTS_KIND_INBOUND, me));
}

static gboolean
ctl_metrics_recount_cb(gpointer data)
{
    VmigController *ctl = data;
    ctl->metrics_timer = 0;
    if (ctl->metrics && ctl->inf[CTL_INF_VMIM])
        ctl_metrics_recount(ctl);
    return G_SOURCE_REMOVE;
}

void
vmig_ctl_metrics_dirty(VmigController *ctl)
{
    if (ctl->metrics && !ctl->metrics_timer)
        ctl->metrics_timer = g_timeout_add(CTL_METRICS_RECOUNT_MS, ctl_metrics_recount_cb, ctl);
}

void
vmig_ctl_metrics_stop(VmigController *ctl)
{
    if (ctl->metrics_timer)
        g_source_remove(ctl->metrics_timer);
    ctl->metrics_timer = 0;
}

void
vmig_controller_set_metrics(VmigController *ctl, VmigMetrics *metrics)
{
    ctl->metrics = metrics;
    if (metrics) {
        vmig_metrics_register_vmigrated(metrics);
        vmig_ctl_metrics_dirty(ctl);
    }
}

void
vmig_controller_collect_metrics(VmigController *ctl)
{
    if (!ctl->metrics)
        return;
    ctl_metrics_set(ctl, VMIG_METRICS_READY, NULL, vmig_controller_is_ready(ctl) ? 1 : 0);
    for (guint i = 0; i < CTL_N_INF; i++) {
        if (!ctl->inf[i])
            continue;
        const VmigKubeResource *r = vmig_ctl_informer_resource(i);
        const char *const labels[] = {r->resource, NULL};
        ctl_metrics_set(ctl, VMIG_METRICS_INFORMER_LISTS, labels,
                        vmig_kube_informer_list_count(ctl->inf[i]));
        ctl_metrics_set(ctl, VMIG_METRICS_RELISTS, labels,
                        vmig_kube_informer_relist_count(ctl->inf[i]));
        ctl_metrics_set(ctl, VMIG_METRICS_RECONNECTS, labels,
                        vmig_kube_informer_watch_reconnects(ctl->inf[i]));
    }
    guint active[VMIG_PROXY_N_CHANNELS] = {0};
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, ctl->jobs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CtlJob *job = v;
        VmigProxyStats st;
        if (job->uid && (job->proxy_source || job->proxy_target) &&
            vmig_proxy_get_stats(ctl->proxy, job->uid, &st))
            for (guint c = 0; c < VMIG_PROXY_N_CHANNELS; c++)
                active[c] += st.active[c];
    }
    /* the speed each running outbound migration has now (budget.c), rebuilt at each scrape */
    vmig_metrics_clear(ctl->metrics, VMIG_METRICS_BANDWIDTH_LIMIT);
    ctl_metrics_set(ctl, VMIG_METRICS_BANDWIDTH_BUDGET, NULL,
                    (double)ctl->cfg->migration_bandwidth_budget_mibps * 1048576.0);
    g_hash_table_iter_init(&it, ctl->jobs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CtlJob *job = v;
        if (job->migration && !job->job_done && job->budget_applied_mibps && job->vmi_name)
            ctl_metrics_set(
                ctl, VMIG_METRICS_BANDWIDTH_LIMIT,
                (const char *const[]){job->ns, job->vmi_name, ctl->cfg->node_name, NULL},
                (double)job->budget_applied_mibps * 1048576.0);
    }
    for (guint c = 0; c < VMIG_PROXY_N_CHANNELS; c++)
        ctl_metrics_set(ctl, VMIG_METRICS_PROXY_ACTIVE,
                        (const char *const[]){vmig_proxy_channel_to_string(c), NULL}, active[c]);
}
