/* actions.c - performing the state machine's decisions: writes, libvirt, proxy. */
#define G_LOG_DOMAIN "vmig-controller"

#include "controller-private.h"

#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* sequences of precondition-checked writes                                             */

typedef struct {
    VmigKubeResourceId resource;
    char *ns;
    char *name;
    gboolean status;
    VmigCtlEdit *edit;
    gboolean optional; /* a refusal (precondition) does not fail the chain */
} CtlStep;

typedef void (*CtlChainDone)(CtlJob *job, const GError *error, gpointer data);

typedef struct {
    CtlJob *job;
    GPtrArray *steps;
    guint next;
    CtlChainDone done;
    gpointer data;
    GDestroyNotify data_free;
} CtlChain;

static void
ctl_step_free(gpointer p)
{
    CtlStep *s = p;
    g_free(s->ns);
    g_free(s->name);
    vmig_ctl_edit_free(s->edit);
    g_free(s);
}

static CtlChain *
ctl_chain_new(CtlJob *job)
{
    CtlChain *c = g_new0(CtlChain, 1);
    c->job = job;
    c->steps = g_ptr_array_new_with_free_func(ctl_step_free);
    return c;
}

static void
ctl_chain_free(CtlChain *c)
{
    g_ptr_array_unref(c->steps);
    if (c->data_free)
        c->data_free(c->data);
    g_free(c);
}

static void
ctl_chain_add(CtlChain *c, VmigKubeResourceId res, const char *ns, const char *name,
              gboolean status, VmigCtlEdit *edit, gboolean optional)
{
    CtlStep *s = g_new0(CtlStep, 1);
    s->resource = res;
    s->ns = g_strdup(ns);
    s->name = g_strdup(name);
    s->status = status;
    s->edit = edit;
    s->optional = optional;
    g_ptr_array_add(c->steps, s);
}

static void ctl_chain_step(CtlChain *c);

static void
ctl_chain_step_done(GObject *src, GAsyncResult *res, gpointer data)
{
    CtlChain *c = data;
    CtlStep *s = c->steps->pdata[c->next - 1];
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) out = vmig_kube_call_finish(res, NULL, &err);
    gboolean skippable =
        s->optional && (g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED) ||
                        g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_NOT_FOUND));
    if (!out && !skippable) {
        if (!g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED))
            vmig_ctl_metrics_api_error(c->job->ctl, vmig_kube_resource(s->resource)->resource);
        if (c->done)
            c->done(c->job, err, c->data);
        ctl_chain_free(c);
        return;
    }
    ctl_chain_step(c);
}

static void
ctl_chain_step(CtlChain *c)
{
    if (c->next >= c->steps->len) {
        if (c->done)
            c->done(c->job, NULL, c->data);
        ctl_chain_free(c);
        return;
    }
    CtlStep *s = c->steps->pdata[c->next++];
    vmig_kube_mutate(c->job->ctl->kube, vmig_kube_resource(s->resource), s->ns, s->name, s->status,
                     NULL, 0, vmig_ctl_edit_apply, s->edit, NULL, ctl_chain_step_done, c);
}

/* The usual end of an action: the job is free again and looks at the world anew. A
 * failed write is retried with backoff (a refusal means the world changed: no delay). */
static void
ctl_action_done(CtlJob *job, const GError *error, gpointer data)
{
    vmig_ctl_job_idle(job);
    if (error && !g_error_matches(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED)) {
        job->failures++;
        guint delay = MIN(30000u, 500u << MIN(job->failures, 6u));
        g_warning("VMIM %s: %s (retry in %u ms)", job->key, error->message, delay);
        vmig_ctl_job_retry(job, delay);
        return;
    }
    if (error)
        g_info("VMIM %s: %s", job->key, error->message);
    job->failures = 0;
    /* The writes come back through the informer and re-queue the key at once; this later
     * look is only a safety net, so an action that changes nothing cannot spin. */
    vmig_ctl_job_retry(job, 1000);
}

static void
ctl_chain_run(CtlChain *c, CtlChainDone done, gpointer data, GDestroyNotify data_free)
{
    c->job->busy = TRUE;
    c->done = done ? done : ctl_action_done;
    c->data = data;
    c->data_free = data_free;
    ctl_chain_step(c);
}

/* ------------------------------------------------------------------------------------ */
/* edits                                                                                */

static char *
ctl_what(const char *kind, const char *ns, const char *name)
{
    return g_strdup_printf("%s %s/%s", kind, ns, name);
}

/* An edit of the VMIM (this job's object, same UID). */
static VmigCtlEdit *
ctl_vmim_edit(CtlJob *job)
{
    g_autofree char *what = ctl_what("VirtualMachineInstanceMigration", job->ns, job->name);
    VmigCtlEdit *e = vmig_ctl_edit_new(what);
    e->require_uid = g_strdup(job->uid);
    return e;
}

/* An edit of the VMI's migrationState owned by this migration. */
static VmigCtlEdit *
ctl_vmi_edit(CtlJob *job)
{
    g_autofree char *what = ctl_what("VirtualMachineInstance", job->ns, job->vmi_name);
    VmigCtlEdit *e = vmig_ctl_edit_new(what);
    e->claim_uid = g_strdup(job->uid);
    return e;
}

static void
ctl_vmim_phase(VmigCtlEdit *e, VmigModelMigrationPhase to, const VmigModelMigrationPhase *from,
               guint n_from)
{
    e->set_phase = TRUE;
    e->phase = to;
    e->now = vmig_ctl_now_rfc3339(vmig_ctl_wall_ms());
    vmig_ctl_edit_from_phases(e, from, n_from);
}

static const VmigModelMigrationPhase ctl_non_final[] = {
    VMIG_MODEL_MIGRATION_PHASE_UNSET,
    VMIG_MODEL_MIGRATION_PHASE_PENDING,
    VMIG_MODEL_MIGRATION_PHASE_SCHEDULING,
    VMIG_MODEL_MIGRATION_PHASE_SCHEDULED,
    VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET,
    VMIG_MODEL_MIGRATION_PHASE_TARGET_READY,
    VMIG_MODEL_MIGRATION_PHASE_RUNNING,
};

static void
ctl_event(CtlJob *job, JsonNode *involved, gboolean warning, const char *reason,
          const char *message)
{
    if (involved)
        vmig_kube_recorder_event(job->ctl->recorder, involved, warning, reason, message, NULL,
                                 NULL);
}

/* ------------------------------------------------------------------------------------ */
/* pod paths                                                                            */

typedef struct {
    char *share_dir;   /* host path of the pod's virtShareDir */
    char *libvirt_uri; /* the pod's libvirt */
} CtlPod;

static void
ctl_pod_clear(CtlPod *p)
{
    g_clear_pointer(&p->share_dir, g_free);
    g_clear_pointer(&p->libvirt_uri, g_free);
}

static gboolean
ctl_pod_locate(VmigController *ctl, const char *ns, const char *name, const char *uid, CtlPod *out,
               GError **error)
{
    const VmigAgentConfig *cfg = ctl->cfg;
    gint64 pid = 0;
    if (cfg->pod_pid_file) {
        g_autofree char *pidfile =
            vmig_agentconfig_expand(cfg->pod_pid_file, ns, name, uid, cfg->node_name, 0, error);
        g_autofree char *text = NULL;
        if (!pidfile || !g_file_get_contents(pidfile, &text, NULL, error))
            return FALSE;
        pid = g_ascii_strtoll(g_strstrip(text), NULL, 10);
        if (pid <= 0) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: no launcher PID for %s/%s",
                        pidfile, ns, name);
            return FALSE;
        }
        out->share_dir =
            g_strdup_printf("/proc/%" G_GINT64_FORMAT "/root%s", pid, cfg->pod_share_path);
    } else {
        out->share_dir =
            vmig_agentconfig_expand(cfg->pod_share_dir, ns, name, uid, cfg->node_name, 0, error);
        if (!out->share_dir)
            return FALSE;
    }
    g_autofree char *sock =
        vmig_agentconfig_expand(cfg->libvirt_socket, ns, name, uid, cfg->node_name, pid, error);
    if (!sock) {
        ctl_pod_clear(out);
        return FALSE;
    }
    out->libvirt_uri = g_strdup_printf("qemu+unix:///system?socket=%s", sock);
    return TRUE;
}

/* ------------------------------------------------------------------------------------ */
/* simple actions                                                                       */

static void
ctl_accept(CtlJob *job)
{
    CtlChain *c = ctl_chain_new(job);
    /* bench/bench-migration times VMIM-seen -> accepted -> call from these lines */
    g_message("VMIM %s: accepted (VMI %s)", job->key, job->vmi_name);
    VmigCtlEdit *meta = ctl_vmim_edit(job);
    meta->not_deleting = TRUE;
    meta->add_finalizer = g_strdup(VMIG_CONTROLLER_FINALIZER);
    vmig_ctl_edit_set_key(meta, "metadata.labels", VMIG_CTL_LABEL_VMI_NAME,
                          json_node_init_string(json_node_alloc(), job->vmi_name));
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, FALSE, meta, FALSE);

    VmigCtlEdit *st = ctl_vmim_edit(job);
    static const VmigModelMigrationPhase from[] = {VMIG_MODEL_MIGRATION_PHASE_UNSET};
    ctl_vmim_phase(st, VMIG_MODEL_MIGRATION_PHASE_PENDING, from, 1);
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, TRUE, st, FALSE);
    ctl_chain_run(c, NULL, NULL, NULL);
}

/* Failure: the VMIM becomes Failed; the VMI's migrationState (if ours) says so too. */
static void
ctl_fail(CtlJob *job, VmigModelVmim *vmim, const char *reason, gboolean cancelled)
{
    VmigController *ctl = job->ctl;
    g_autofree char *now = vmig_ctl_now_rfc3339(vmig_ctl_wall_ms());
    CtlChain *c = ctl_chain_new(job);

    VmigCtlEdit *vmi = ctl_vmi_edit(job);
    vmig_ctl_edit_set_bool(vmi, "status.migrationState.completed", TRUE);
    vmig_ctl_edit_set_bool(vmi, "status.migrationState.failed", TRUE);
    vmig_ctl_edit_set_string(vmi, "status.migrationState.failureReason", reason);
    vmig_ctl_edit_set_string(vmi, "status.migrationState.endTimestamp", now);
    if (cancelled) {
        vmig_ctl_edit_set_bool(vmi, "status.migrationState.abortRequested", TRUE);
        vmig_ctl_edit_set_string(vmi, "status.migrationState.abortStatus", "Succeeded");
    }
    ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, TRUE, vmi, TRUE);

    VmigCtlEdit *st = ctl_vmim_edit(job);
    ctl_vmim_phase(st, VMIG_MODEL_MIGRATION_PHASE_FAILED, ctl_non_final,
                   G_N_ELEMENTS(ctl_non_final));
    vmig_ctl_edit_set_bool(st, "status.migrationState.failed", TRUE);
    vmig_ctl_edit_set_bool(st, "status.migrationState.completed", TRUE);
    vmig_ctl_edit_set_string(st, "status.migrationState.failureReason", reason);
    vmig_ctl_edit_set_string(st, "status.migrationState.endTimestamp", now);
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, TRUE, st, FALSE);

    if (cancelled)
        ctl_event(job, vmim->node, FALSE, "SuccessfulAbortMigration", reason);
    else
        ctl_event(job, vmim->node, TRUE, "FailedMigration", reason);
    g_message("VMIM %s: Failed: %s", job->key, reason);
    vmig_ctl_job_release_local(job);
    (void)ctl;
    ctl_chain_run(c, NULL, NULL, NULL);
}

static void
ctl_claim(CtlJob *job)
{
    CtlChain *c = ctl_chain_new(job);
    VmigCtlEdit *vmi = ctl_vmi_edit(job);
    vmi->claim_new = TRUE;
    vmi->holder_live = vmig_ctl_holder_live;
    vmi->holder_live_data = job->ctl;
    vmi->reset_migration_state = TRUE;
    vmig_ctl_edit_set_string(vmi, "status.migrationState.migrationUid", job->uid);
    vmig_ctl_edit_set_string(vmi, "status.migrationState.sourceNode", job->ctl->cfg->node_name);
    ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, TRUE, vmi, FALSE);

    VmigCtlEdit *st = ctl_vmim_edit(job);
    static const VmigModelMigrationPhase from[] = {VMIG_MODEL_MIGRATION_PHASE_PENDING};
    ctl_vmim_phase(st, VMIG_MODEL_MIGRATION_PHASE_SCHEDULING, from, 1);
    vmig_ctl_edit_set_string(st, "status.migrationState.migrationUid", job->uid);
    vmig_ctl_edit_set_string(st, "status.migrationState.sourceNode", job->ctl->cfg->node_name);
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, TRUE, st, FALSE);
    ctl_chain_run(c, NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* libvirt work off the main loop                                                       */

typedef struct {
    VmigController *ctl;
    char *ns;
    char *name;
    char *uid; /* the VMI's UID for path templates */
    char *node;
    /* inputs for the target check */
    char *source_json;
    gboolean allow_host_passthrough;
    gboolean disable_tls; /* SCHEDULE: recorded in the source annotation */
    /* results */
    char *result_json;             /* SCHEDULE: the source annotation */
    VmigCapabilityResult *verdict; /* PREPARE_TARGET */
    VmigVirtConn *conn;            /* START, RECONCILE, probe */
    VmigVirtDomain *dom;
    VmigVirtDomainState state;
    VmigVirtJobStats stats;
    gboolean has_stats;
} CtlWork;

static void
ctl_work_free(gpointer p)
{
    CtlWork *w = p;
    g_free(w->ns);
    g_free(w->name);
    g_free(w->uid);
    g_free(w->node);
    g_free(w->source_json);
    g_free(w->result_json);
    g_clear_pointer(&w->verdict, vmig_capability_result_free);
    g_clear_pointer(&w->dom, vmig_virt_domain_free);
    g_clear_pointer(&w->conn, vmig_virt_conn_free);
    g_free(w);
}

static CtlWork *
ctl_work_new(CtlJob *job, VmigModelVmi *vmi)
{
    CtlWork *w = g_new0(CtlWork, 1);
    w->ctl = job->ctl;
    w->ns = g_strdup(job->ns);
    w->name = g_strdup(job->vmi_name);
    w->uid = g_strdup(vmi ? vmi->meta.uid : NULL);
    w->node = g_strdup(job->ctl->cfg->node_name);
    return w;
}

/* Opens the VMI pod's libvirt and finds the domain (worker thread). */
static gboolean
ctl_work_open(CtlWork *w, GError **error)
{
    CtlPod pod = {0};
    if (!ctl_pod_locate(w->ctl, w->ns, w->name, w->uid, &pod, error))
        return FALSE;
    w->conn = vmig_virt_conn_open(pod.libvirt_uri, error);
    ctl_pod_clear(&pod);
    if (!w->conn)
        return FALSE;
    g_autofree char *dname = vmig_agentconfig_expand(w->ctl->cfg->domain_name, w->ns, w->name,
                                                     w->uid, w->node, 0, error);
    if (!dname)
        return FALSE;
    g_autofree char *what = g_strdup_printf("%s/%s", w->ns, w->name);
    w->dom = vmig_virt_domain_lookup_named(w->conn, what, dname, error);
    return w->dom != NULL;
}

static void
ctl_run_thread(CtlJob *job, CtlWork *w, GTaskThreadFunc func, GAsyncReadyCallback done)
{
    job->busy = TRUE;
    g_autoptr(GTask) task = g_task_new(NULL, NULL, done, job);
    g_task_set_task_data(task, w, ctl_work_free);
    g_task_run_in_thread(task, func);
}

/* ------------------------------------------------------------------------------------ */
/* SCHEDULE: record the source domain for the target's checks, name the target          */

static void
ctl_schedule_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    CtlWork *w = data;
    GError *err = NULL;
    if (!ctl_work_open(w, &err)) {
        g_task_return_error(task, err);
        return;
    }
    g_autofree char *xml = vmig_virt_domain_migratable_xml(w->dom, &err);
    VmigCapabilitySource source = {0};
    if (!xml ||
        !vmig_capability_source_query(vmig_virt_conn_ptr(w->conn), w->node, &source, &err)) {
        g_task_return_error(task, err);
        return;
    }
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "node");
    json_builder_add_string_value(b, w->node);
    json_builder_set_member_name(b, "hostUUID");
    json_builder_add_string_value(b, source.host_uuid);
    json_builder_set_member_name(b, "hostCPU");
    json_builder_add_string_value(b, source.host_cpu ? source.host_cpu->xml : NULL);
    json_builder_set_member_name(b, "libvirtVersion");
    json_builder_add_int_value(b, (gint64)source.libvirt_version);
    json_builder_set_member_name(b, "qemuVersion");
    json_builder_add_int_value(b, (gint64)source.qemu_version);
    json_builder_set_member_name(b, "domainXML");
    json_builder_add_string_value(b, xml);
    json_builder_set_member_name(b, "disableTLS"); /* both proxies follow this, not their caches */
    json_builder_add_boolean_value(b, w->disable_tls);
    json_builder_end_object(b);
    vmig_capability_source_clear(&source);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    w->result_json = json_to_string(root, FALSE);
    g_task_return_boolean(task, TRUE);
}

static void ctl_schedule_done(GObject *src, GAsyncResult *res, gpointer data);

static void
ctl_schedule(CtlJob *job, VmigModelVmim *vmim, VmigModelVmi *vmi, const char *target)
{
    CtlWork *w = ctl_work_new(job, vmi);
    w->source_json = g_strdup(target); /* carried to the completion */
    /* decided once: a repeated SCHEDULE keeps what an earlier one recorded */
    VmigProxyTransport recorded =
        vmig_ctl_source_transport(g_hash_table_lookup(vmim->meta.annotations, VMIG_CTL_ANN_SOURCE));
    w->disable_tls = recorded == VMIG_PROXY_TRANSPORT_DEFAULT
                         ? vmig_ctl_disable_tls(job->ctl)
                         : recorded == VMIG_PROXY_TRANSPORT_PLAIN;
    ctl_run_thread(job, w, ctl_schedule_thread, ctl_schedule_done);
}

static void
ctl_schedule_done(GObject *src, GAsyncResult *res, gpointer data)
{
    CtlJob *job = data;
    CtlWork *w = g_task_get_task_data(G_TASK(res));
    g_autoptr(GError) err = NULL;
    if (!g_task_propagate_boolean(G_TASK(res), &err)) {
        /* Without the running domain there is nothing to migrate: fail, naming why. */
        vmig_ctl_job_idle(job);
        g_autofree char *reason =
            g_strdup_printf("cannot read the source domain: %s", err->message);
        g_autoptr(JsonNode) vmim =
            vmig_kube_informer_get(job->ctl->inf[CTL_INF_VMIM], job->ns, job->name);
        g_autoptr(VmigModelVmim) view = vmim ? vmig_model_vmim_from_json(vmim, NULL) : NULL;
        if (view)
            ctl_fail(job, view, reason, FALSE);
        return;
    }
    const char *target = w->source_json;
    CtlChain *c = ctl_chain_new(job);
    VmigCtlEdit *ann = ctl_vmim_edit(job);
    vmig_ctl_edit_set_key(ann, "metadata.annotations", VMIG_CTL_ANN_SOURCE,
                          json_node_init_string(json_node_alloc(), w->result_json));
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, FALSE, ann, FALSE);

    VmigCtlEdit *vmi = ctl_vmi_edit(job);
    vmig_ctl_edit_set_string(vmi, "status.migrationState.targetNode", target);
    vmig_ctl_edit_set_string(vmi, "status.migrationState.sourceNode", job->ctl->cfg->node_name);
    ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, TRUE, vmi, FALSE);

    VmigCtlEdit *st = ctl_vmim_edit(job);
    static const VmigModelMigrationPhase from[] = {VMIG_MODEL_MIGRATION_PHASE_SCHEDULING};
    ctl_vmim_phase(st, VMIG_MODEL_MIGRATION_PHASE_SCHEDULED, from, 1);
    vmig_ctl_edit_set_string(st, "status.migrationState.targetNode", target);
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, TRUE, st, FALSE);
    g_message("VMIM %s: target node %s, migration data over %s", job->key, target,
              w->disable_tls ? "plain TCP (disableTLS)" : "mutual TLS");
    ctl_chain_run(c, NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* PREPARE_TARGET: capability checks against our libvirt, listeners, TargetReady        */

static void
ctl_prepare_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    CtlWork *w = data;
    GError *err = NULL;
    CtlPod pod = {0};
    if (!ctl_pod_locate(w->ctl, w->ns, w->name, w->uid, &pod, &err)) {
        g_task_return_error(task, err);
        return;
    }
    w->conn = vmig_virt_conn_open(pod.libvirt_uri, &err);
    ctl_pod_clear(&pod);
    if (!w->conn) {
        g_task_return_error(task, err);
        return;
    }
    g_autoptr(JsonParser) p = json_parser_new();
    if (!w->source_json || !json_parser_load_from_data(p, w->source_json, -1, &err)) {
        g_task_return_new_error(task, VMIG_CONTROLLER_ERROR, VMIG_CONTROLLER_ERROR_SETUP,
                                "annotation %s is missing or not JSON%s%s", VMIG_CTL_ANN_SOURCE,
                                err ? ": " : "", err ? err->message : "");
        g_clear_error(&err);
        return;
    }
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    VmigCapabilitySource source = {0};
    source.node = g_strdup(json_object_get_string_member_with_default(o, "node", ""));
    source.host_uuid = g_strdup(json_object_get_string_member_with_default(o, "hostUUID", ""));
    const char *cpu = json_object_get_string_member_with_default(o, "hostCPU", NULL);
    source.host_cpu = cpu ? vmig_capability_cpu_parse(cpu, NULL) : NULL;
    source.libvirt_version =
        (guint64)json_object_get_int_member_with_default(o, "libvirtVersion", 0);
    source.qemu_version = (guint64)json_object_get_int_member_with_default(o, "qemuVersion", 0);
    const char *xml = json_object_get_string_member_with_default(o, "domainXML", NULL);
    VmigCapabilityOptions opts = {
        .allow_host_passthrough = w->allow_host_passthrough,
        .memory_overhead_bytes = VMIG_CAPABILITY_DEFAULT_MEMORY_OVERHEAD,
    };
    w->verdict =
        xml ? vmig_capability_check(vmig_virt_conn_ptr(w->conn), w->node, xml, &source, &opts, &err)
            : NULL;
    vmig_capability_source_clear(&source);
    if (!w->verdict) {
        if (!err)
            err = g_error_new(VMIG_CONTROLLER_ERROR, VMIG_CONTROLLER_ERROR_SETUP,
                              "annotation %s has no domainXML", VMIG_CTL_ANN_SOURCE);
        g_task_return_error(task, err);
        return;
    }
    g_task_return_boolean(task, TRUE);
}

static void ctl_prepare_done(GObject *src, GAsyncResult *res, gpointer data);

/* PreparingTarget is written: now the checks, off the main loop. @data is the work. */
static void
ctl_prepare_chain_done(CtlJob *job, const GError *error, gpointer data)
{
    CtlWork *w = data;
    if (error) {
        ctl_work_free(w);
        ctl_action_done(job, error, NULL);
        return;
    }
    ctl_run_thread(job, w, ctl_prepare_thread, ctl_prepare_done);
}

static void
ctl_prepare(CtlJob *job, VmigModelVmim *vmim, VmigModelVmi *vmi)
{
    /* First say we are at it (precondition: still Scheduled), then check. */
    CtlWork *w = ctl_work_new(job, vmi);
    const char *ann = g_hash_table_lookup(vmim->meta.annotations, VMIG_CTL_ANN_SOURCE);
    w->source_json = g_strdup(ann);
    w->allow_host_passthrough = vmig_ctl_allow_host_passthrough(job->ctl, vmi);
    CtlChain *c = ctl_chain_new(job);
    VmigCtlEdit *st = ctl_vmim_edit(job);
    static const VmigModelMigrationPhase from[] = {VMIG_MODEL_MIGRATION_PHASE_SCHEDULED,
                                                   VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET,
                                                   VMIG_MODEL_MIGRATION_PHASE_TARGET_READY};
    ctl_vmim_phase(st, VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET, from, G_N_ELEMENTS(from));
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, TRUE, st, FALSE);
    /* the copy of the disks list decides whether the NBD channel is served */
    char *reason = NULL;
    g_auto(GStrv) disks = NULL;
    vmig_ctl_check_source(job->ctl, vmi, &reason, &disks);
    g_free(reason);
    job->block_migration = disks && disks[0];
    ctl_chain_run(c, ctl_prepare_chain_done, w, NULL);
}

static char *
ctl_join_reasons(GPtrArray *reasons)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; reasons && i < reasons->len; i++)
        g_string_append_printf(s, "%s%s", i ? "; " : "", (const char *)reasons->pdata[i]);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static void
ctl_prepare_done(GObject *src, GAsyncResult *res, gpointer data)
{
    CtlJob *job = data;
    VmigController *ctl = job->ctl;
    CtlWork *w = g_task_get_task_data(G_TASK(res));
    g_autoptr(GError) err = NULL;
    vmig_ctl_job_idle(job);
    g_autoptr(JsonNode) vmim_node =
        vmig_kube_informer_get(ctl->inf[CTL_INF_VMIM], job->ns, job->name);
    g_autoptr(VmigModelVmim) vmim = vmim_node ? vmig_model_vmim_from_json(vmim_node, NULL) : NULL;
    if (!vmim) {
        vmig_ctl_enqueue(ctl, job->key);
        return;
    }
    if (!g_task_propagate_boolean(G_TASK(res), &err)) {
        g_autofree char *reason = g_strdup_printf("target node %s cannot check the guest: %s",
                                                  ctl->cfg->node_name, err->message);
        ctl_fail(job, vmim, reason, FALSE);
        return;
    }
    if (!w->verdict->eligible) {
        /* Refused before any guest byte moves (B07, B08): the reasons name the node. */
        g_autofree char *reasons = ctl_join_reasons(w->verdict->reasons);
        g_autofree char *reason =
            g_strdup_printf("target node %s refused the guest: %s", ctl->cfg->node_name, reasons);
        ctl_fail(job, vmim, reason, FALSE);
        return;
    }

    /* Listeners bound to this migration and its source node. */
    CtlPod pod = {0};
    g_autoptr(JsonNode) vmi_node =
        vmig_kube_informer_get(ctl->inf[CTL_INF_VMI], job->ns, job->vmi_name);
    const char *vmi_uid = vmi_node ? vmig_kube_meta_string(vmi_node, "uid") : NULL;
    if (!ctl_pod_locate(ctl, job->ns, job->vmi_name, vmi_uid, &pod, &err)) {
        g_autofree char *reason =
            g_strdup_printf("target pod on %s: %s", ctl->cfg->node_name, err->message);
        ctl_fail(job, vmim, reason, FALSE);
        return;
    }
    const char *source_node = vmim->migration_state ? vmim->migration_state->source_node : NULL;
    g_autofree char *source_addr = source_node ? vmig_ctl_node_address(ctl, source_node) : NULL;
    g_autofree char *my_addr = ctl->cfg->migration_address
                                   ? g_strdup(ctl->cfg->migration_address)
                                   : vmig_ctl_node_address(ctl, ctl->cfg->node_name);
    g_autofree char *libvirt_sock =
        g_strdup(pod.libvirt_uri + strlen("qemu+unix:///system?socket="));
    g_autofree char *mem = vmig_proxy_socket_name(job->uid, VMIG_PROXY_CHANNEL_MEMORY);
    g_autofree char *disk = vmig_proxy_socket_name(job->uid, VMIG_PROXY_CHANNEL_DISK);
    g_autofree char *mem_path = g_build_filename(pod.share_dir, "migrationproxy", mem, NULL);
    g_autofree char *disk_path = g_build_filename(pod.share_dir, "migrationproxy", disk, NULL);
    ctl_pod_clear(&pod);
    if (!my_addr) {
        ctl_fail(job, vmim, "target node has no migration address (set --migration-address)",
                 FALSE);
        return;
    }
    VmigProxyTargetSpec spec = {
        .uid = job->uid,
        .listen_address = my_addr,
        .expected_peer_address = source_addr,
        .source_node = source_node,
        .forward_paths = {libvirt_sock, mem_path, job->block_migration ? disk_path : NULL},
        .transport = vmig_ctl_source_transport(
            g_hash_table_lookup(vmim->meta.annotations, VMIG_CTL_ANN_SOURCE)),
    };
    vmig_proxy_stop(ctl->proxy, job->uid); /* idempotent: a re-prepare after a restart */
    if (!vmig_proxy_start_target(ctl->proxy, &spec, &err)) {
        g_autofree char *reason =
            g_strdup_printf("target proxy on %s: %s", ctl->cfg->node_name, err->message);
        ctl_fail(job, vmim, reason, FALSE);
        return;
    }
    job->proxy_target = TRUE;

    CtlChain *c = ctl_chain_new(job);
    VmigCtlEdit *vmi = ctl_vmi_edit(job);
    vmi->require_target = g_strdup(ctl->cfg->node_name);
    vmig_ctl_edit_set_string(vmi, "status.migrationState.targetNodeAddress", my_addr);
    vmig_ctl_edit_set(vmi, "status.migrationState.targetDirectMigrationNodePorts",
                      vmig_proxy_target_port_map(ctl->proxy, job->uid));
    ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, TRUE, vmi, FALSE);

    VmigCtlEdit *ann = ctl_vmim_edit(job);
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "node");
    json_builder_add_string_value(b, ctl->cfg->node_name);
    json_builder_set_member_name(b, "emulator");
    json_builder_add_string_value(b, w->verdict->target_emulator);
    json_builder_end_object(b);
    g_autoptr(JsonNode) tj = json_builder_get_root(b);
    g_autofree char *target_json = json_to_string(tj, FALSE);
    vmig_ctl_edit_set_key(ann, "metadata.annotations", VMIG_CTL_ANN_TARGET,
                          json_node_init_string(json_node_alloc(), target_json));
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, FALSE, ann, FALSE);

    VmigCtlEdit *st = ctl_vmim_edit(job);
    static const VmigModelMigrationPhase from[] = {VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET,
                                                   VMIG_MODEL_MIGRATION_PHASE_TARGET_READY};
    ctl_vmim_phase(st, VMIG_MODEL_MIGRATION_PHASE_TARGET_READY, from, G_N_ELEMENTS(from));
    vmig_ctl_edit_set_string(st, "status.migrationState.targetNodeAddress", my_addr);
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, TRUE, st, FALSE);
    g_message("VMIM %s: target ready on %s", job->key, my_addr);
    ctl_chain_run(c, NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* START: source proxy, Running, virDomainMigrateToURI3                                  */

typedef struct {
    CtlJob *job;
    VmigCtlEdit *edit;
} CtlProgressWrite;

static void
ctl_progress_written(GObject *src, GAsyncResult *res, gpointer data)
{
    CtlProgressWrite *pw = data;
    CtlJob *job = pw->job;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) out = vmig_kube_call_finish(res, NULL, &err);
    vmig_ctl_edit_free(pw->edit);
    g_free(pw);
    job->progress_writing = FALSE;
    if (!out)
        g_debug("VMIM %s: progress not written: %s", job->key, err->message);
}

void
vmig_ctl_migration_uris(CtlJob *job, VmigModelVmim *vmim, char **dconnuri, char **migrate_uri,
                        char **disks_uri, char **dest_xml)
{
    const VmigAgentConfig *cfg = job->ctl->cfg;
    /* What libvirt sees inside the pod: KubeVirt's socket names under virtShareDir. */
    g_autofree char *ctl_sock = vmig_proxy_socket_name(job->uid, VMIG_PROXY_CHANNEL_LIBVIRT);
    g_autofree char *mem_sock = vmig_proxy_socket_name(job->uid, VMIG_PROXY_CHANNEL_MEMORY);
    g_autofree char *disk_sock = vmig_proxy_socket_name(job->uid, VMIG_PROXY_CHANNEL_DISK);
    *dconnuri = g_strdup_printf("qemu+unix:///system?socket=%s/migrationproxy/%s",
                                cfg->pod_share_path, ctl_sock);
    *migrate_uri = g_strdup_printf("unix://%s/migrationproxy/%s", cfg->pod_share_path, mem_sock);
    *disks_uri = g_strdup_printf("unix://%s/migrationproxy/%s", cfg->pod_share_path, disk_sock);

    /* The destination XML: the source's migratable XML with the target's emulator. */
    *dest_xml = NULL;
    const char *src_ann =
        vmim ? g_hash_table_lookup(vmim->meta.annotations, VMIG_CTL_ANN_SOURCE) : NULL;
    const char *tgt_ann =
        vmim ? g_hash_table_lookup(vmim->meta.annotations, VMIG_CTL_ANN_TARGET) : NULL;
    g_autoptr(JsonNode) src_j = src_ann ? json_from_string(src_ann, NULL) : NULL;
    g_autoptr(JsonNode) tgt_j = tgt_ann ? json_from_string(tgt_ann, NULL) : NULL;
    const char *xml = src_j && JSON_NODE_HOLDS_OBJECT(src_j)
                          ? json_object_get_string_member_with_default(json_node_get_object(src_j),
                                                                       "domainXML", NULL)
                          : NULL;
    const char *emulator = tgt_j && JSON_NODE_HOLDS_OBJECT(tgt_j)
                               ? json_object_get_string_member_with_default(
                                     json_node_get_object(tgt_j), "emulator", NULL)
                               : NULL;
    if (xml && emulator)
        *dest_xml = vmig_capability_destination_xml(xml, emulator, NULL);
}

static char *
ctl_progress_json(CtlJob *job, const char *state, const VmigVirtOutcome *o)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
#define ADD_INT(k, v)                                                                              \
    do {                                                                                           \
        json_builder_set_member_name(b, k);                                                        \
        json_builder_add_int_value(b, (gint64)(v));                                                \
    } while (0)
    json_builder_set_member_name(b, "state");
    json_builder_add_string_value(b, state);
    json_builder_set_member_name(b, "mode");
    json_builder_add_string_value(b, job->postcopy ? "PostCopy" : "PreCopy");
    /* libvirt keeps no completed-job stats for a cancelled or failed job: its last sample
     * is then the best account of what moved */
    gboolean final = o && o->has_stats;
    ADD_INT("processedBytes", final ? o->data_processed : job->last_processed);
    ADD_INT("remainingBytes", final ? o->data_remaining : job->last_remaining);
    ADD_INT("totalBytes", final ? o->data_total : job->last_total);
    ADD_INT("dirtyRateBytesPerSecond", final ? o->dirty_rate_bps : job->last_dirty_rate);
    ADD_INT("transferRateBytesPerSecond", final ? o->mem_bps : job->last_mem_bps);
    ADD_INT("iteration", final ? o->iterations : job->last_iteration);
    ADD_INT("elapsedMs", final ? (gint64)o->time_elapsed_ms : vmig_ctl_wall_ms() - job->started_ms);
    if (final)
        ADD_INT("downtimeMs", o->downtime_ms);
    vmig_ctl_recover_progress(job, b);
#undef ADD_INT
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    return json_to_string(root, FALSE);
}

static void
ctl_write_progress(CtlJob *job, const char *state, const VmigVirtOutcome *o)
{
    g_autofree char *json = ctl_progress_json(job, state, o);
    VmigCtlEdit *e = ctl_vmim_edit(job);
    vmig_ctl_edit_set_key(e, "metadata.annotations", VMIG_CTL_ANN_PROGRESS,
                          json_node_init_string(json_node_alloc(), json));
    job->progress_writing = TRUE;
    job->progress_written_ms = vmig_ctl_wall_ms();
    /* the edit lives until the write ends */
    CtlProgressWrite *pw = g_new0(CtlProgressWrite, 1);
    pw->job = job;
    pw->edit = e;
    vmig_kube_mutate(job->ctl->kube, vmig_kube_resource(VMIG_KUBE_VMIM), job->ns, job->name, FALSE,
                     NULL, 0, vmig_ctl_edit_apply, e, NULL, ctl_progress_written, pw);
}

static void
ctl_on_sample(VmigVirtMonitor *m, const VmigVirtJobStats *stats, gpointer data)
{
    CtlJob *job = data;
    /* After a cancel the last poll can find no job at all (all zeros): keep the figures of
     * the last real sample, they are what the summary and the metrics report. */
    if (stats->type != VMIG_VIRT_JOB_BOUNDED && stats->type != VMIG_VIRT_JOB_UNBOUNDED)
        return;
    job->last_processed = vmig_virt_job_stats_processed(stats);
    job->last_remaining = vmig_virt_job_stats_remaining(stats);
    job->last_total = vmig_virt_job_stats_total(stats);
    job->last_dirty_rate = stats->dirty_rate_bps;
    job->last_mem_bps = stats->mem_bps;
    job->last_iteration = stats->mem_iteration;
    vmig_ctl_metrics_sample(job);
    /* At most once per --status-interval-ms, never two writes at once. */
    if (job->progress_writing ||
        vmig_ctl_wall_ms() - job->progress_written_ms < job->ctl->cfg->status_interval_ms)
        return;
    ctl_write_progress(job, job->pc_recovering ? "PostCopyRecovering" : "Running", NULL);
}

static void
ctl_on_action(VmigVirtMonitor *m, const VmigVirtAction *action, gboolean ok, const char *error_text,
              gpointer data)
{
    CtlJob *job = data;
    g_message("VMIM %s: monitor %s%s%s%s", job->key, vmig_virt_action_kind_to_string(action->kind),
              action->kind == VMIG_VIRT_ACTION_ABORT ? " (" : "",
              action->kind == VMIG_VIRT_ACTION_ABORT
                  ? vmig_virt_abort_cause_to_string(action->cause)
                  : "",
              action->kind == VMIG_VIRT_ACTION_ABORT ? ")" : "");
    if (!ok)
        g_warning("VMIM %s: %s failed: %s", job->key, vmig_virt_action_kind_to_string(action->kind),
                  error_text ? error_text : "");
    if (action->kind == VMIG_VIRT_ACTION_START_POSTCOPY && ok) {
        job->postcopy = TRUE;
        VmigCtlEdit *e = ctl_vmi_edit(job);
        vmig_ctl_edit_set_string(e, "status.migrationState.mode", "PostCopy");
        CtlChain *c = ctl_chain_new(job);
        ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, TRUE, e, TRUE);
        ctl_chain_run(c, NULL, NULL, NULL);
    }
}

static void
ctl_migration_done(VmigVirtMigration *mig, const VmigVirtOutcome *outcome, gpointer data)
{
    CtlJob *job = data;
    if (vmig_ctl_recover_on_outcome(job, mig, outcome))
        return; /* post-copy failed but can be resumed: stays Running (recover.c) */
    job->job_done = TRUE;
    job->job_ok = outcome->kind == VMIG_VIRT_OUTCOME_SUCCEEDED;
    vmig_ctl_budget_leave(job); /* the others get its share at once */
    g_free(job->job_reason);
    job->job_reason = job->job_ok
                          ? NULL
                          : (outcome->detail && *outcome->detail
                                 ? g_strdup_printf("%s: %s", outcome->reason, outcome->detail)
                                 : g_strdup(outcome->reason));
    g_clear_pointer(&job->outcome, vmig_virt_outcome_free);
    job->outcome = g_memdup2(outcome, sizeof(*outcome));
    job->outcome->reason = g_strdup(outcome->reason);
    job->outcome->detail = g_strdup(outcome->detail);
    if (job->job_ok)
        /* the call's own wall time next to libvirt's job time: what bench/bench-migration
           compares with a direct migration between the two libvirt daemons */
        g_message("VMIM %s: migration succeeded (call %" G_GINT64_FORMAT
                  " ms, downtime %" G_GUINT64_FORMAT " ms, job %" G_GUINT64_FORMAT
                  " ms, %.1f MiB, %" G_GUINT64_FORMAT " iterations)",
                  job->key, vmig_ctl_wall_ms() - job->started_ms, outcome->downtime_ms,
                  outcome->time_elapsed_ms, outcome->data_processed / 1048576.0,
                  outcome->iterations);
    else
        g_message("VMIM %s: migration call ended: %s: %s", job->key,
                  vmig_virt_outcome_kind_to_string(outcome->kind), job->job_reason);
    vmig_ctl_enqueue(job->ctl, job->key);
}

typedef struct {
    CtlWork *work;
    VmigVirtMigrateSettings settings;
    VmigVirtMonitorConfig monitor;
    char *dconnuri;
    char *migrate_uri;
    char *disks_uri;
    char *dest_xml;
    GStrv disks;
} CtlStart;

static void
ctl_start_free(gpointer p)
{
    CtlStart *s = p;
    if (s->work)
        ctl_work_free(s->work);
    g_free(s->dconnuri);
    g_free(s->migrate_uri);
    g_free(s->disks_uri);
    g_free(s->dest_xml);
    g_strfreev(s->disks);
    g_free(s);
}

static void
ctl_start_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    CtlStart *s = data;
    GError *err = NULL;
    if (!ctl_work_open(s->work, &err))
        g_task_return_error(task, err);
    else
        g_task_return_boolean(task, TRUE);
}

static void
ctl_start_opened(GObject *src, GAsyncResult *res, gpointer data)
{
    CtlJob *job = data;
    CtlStart *s = g_task_get_task_data(G_TASK(res));
    g_autoptr(GError) err = NULL;
    vmig_ctl_job_idle(job);
    if (g_task_propagate_boolean(G_TASK(res), &err)) {
        job->conn = g_steal_pointer(&s->work->conn);
        job->dom = g_steal_pointer(&s->work->dom);
        job->started_ms = vmig_ctl_wall_ms();
        /* its share now, with the node's migrations as they are at this instant */
        s->settings.bandwidth_mibps = vmig_ctl_budget_share(job);
        if (job->budget_member && s->settings.allow_postcopy)
            s->settings.bandwidth_postcopy_mibps = s->settings.bandwidth_mibps;
        job->migration = vmig_virt_migration_start(job->dom, &s->settings, &s->monitor,
                                                   ctl_migration_done, job, &err);
        if (job->migration) {
            VmigVirtMonitor *m = vmig_virt_migration_get_monitor(job->migration);
            vmig_virt_monitor_set_callbacks(m, ctl_on_sample, ctl_on_action, job);
            if (s->settings.bandwidth_mibps)
                g_message(
                    "VMIM %s: virDomainMigrateToURI3 started (%s, bandwidth %" G_GUINT64_FORMAT
                    " MiB/s)",
                    job->key, s->dconnuri, s->settings.bandwidth_mibps);
            else
                g_message("VMIM %s: virDomainMigrateToURI3 started (%s)", job->key, s->dconnuri);
            vmig_ctl_metrics_started(job);
            return;
        }
    }
    /* The guest never left: a failed start is a failed migration. */
    vmig_ctl_budget_leave(job);
    job->job_done = TRUE;
    job->job_ok = FALSE;
    g_free(job->job_reason);
    job->job_reason = g_strdup_printf("migration did not start: %s", err->message);
    vmig_ctl_enqueue(job->ctl, job->key);
}

static void
ctl_start_written(CtlJob *job, const GError *error, gpointer data)
{
    CtlStart *s = data;
    if (error) {
        ctl_start_free(s);
        vmig_ctl_budget_leave(job);
        vmig_ctl_job_release_local(job);
        ctl_action_done(job, error, NULL);
        return;
    }
    job->busy = TRUE;
    g_autoptr(GTask) task = g_task_new(NULL, NULL, ctl_start_opened, job);
    g_task_set_task_data(task, s, ctl_start_free);
    g_task_run_in_thread(task, ctl_start_thread);
}

static void
ctl_start(CtlJob *job, VmigModelVmim *vmim, VmigModelVmi *vmi)
{
    VmigController *ctl = job->ctl;
    const VmigAgentConfig *cfg = ctl->cfg;
    const VmigModelMigrationState *st = vmi->migration_state;
    g_autoptr(GError) err = NULL;

    guint16 ports[VMIG_PROXY_N_CHANNELS] = {0};
    g_autoptr(JsonNode) port_map =
        vmig_model_json_get(vmi->node, "status.migrationState.targetDirectMigrationNodePorts")
            ? json_node_copy(vmig_model_json_get(
                  vmi->node, "status.migrationState.targetDirectMigrationNodePorts"))
            : NULL;
    if (!st || !st->target_node_address || !port_map ||
        !vmig_proxy_port_map_parse(port_map, ports, &err)) {
        g_autofree char *reason =
            g_strdup_printf("target %s published no usable address and ports%s%s",
                            st && st->target_node ? st->target_node : "(none)", err ? ": " : "",
                            err ? err->message : "");
        ctl_fail(job, vmim, reason, FALSE);
        return;
    }
    CtlPod pod = {0};
    if (!ctl_pod_locate(ctl, job->ns, job->vmi_name, vmi->meta.uid, &pod, &err)) {
        g_autofree char *reason = g_strdup_printf("source pod: %s", err->message);
        ctl_fail(job, vmim, reason, FALSE);
        return;
    }
    char *reason = NULL;
    CtlStart *s = g_new0(CtlStart, 1);
    vmig_ctl_check_source(ctl, vmi, &reason, &s->disks);
    g_free(reason);
    gboolean block = s->disks && s->disks[0];
    if (!block)
        ports[VMIG_PROXY_CHANNEL_DISK] = 0;

    VmigProxySourceSpec spec = {
        .uid = job->uid,
        .dir = pod.share_dir,
        .target_address = st->target_node_address,
        .target_node = st->target_node,
        .socket_mode = 0,
        .transport = vmig_ctl_source_transport(
            g_hash_table_lookup(vmim->meta.annotations, VMIG_CTL_ANN_SOURCE)),
    };
    memcpy(spec.target_ports, ports, sizeof(ports));
    vmig_proxy_stop(ctl->proxy, job->uid);
    gboolean started = vmig_proxy_start_source(ctl->proxy, &spec, &err);
    ctl_pod_clear(&pod);
    if (!started) {
        ctl_start_free(s);
        g_autofree char *r = g_strdup_printf("source proxy: %s", err->message);
        ctl_fail(job, vmim, r, FALSE);
        return;
    }
    job->proxy_source = TRUE;
    g_free(job->source_node);
    job->source_node = g_strdup(cfg->node_name);
    g_free(job->target_node);
    job->target_node = g_strdup(st->target_node);

    vmig_ctl_migration_uris(job, vmim, &s->dconnuri, &s->migrate_uri, &s->disks_uri, &s->dest_xml);

    CtlEffective eff;
    vmig_ctl_effective(ctl, vmi, &eff);
    s->settings = (VmigVirtMigrateSettings){
        .dconnuri = s->dconnuri,
        .migrate_uri = s->migrate_uri,
        .destination_xml = s->dest_xml,
        .auto_converge = eff.auto_converge,
        .allow_postcopy = eff.allow_postcopy,
        .migrate_disks = block ? (const char *const *)s->disks : NULL,
        .disks_uri = block ? s->disks_uri : NULL,
        .bandwidth_mibps = eff.bandwidth_mibps, /* the budget's share replaces it at the call */
    };
    vmig_ctl_budget_join(job, eff.bandwidth_mibps, eff.allow_postcopy);
    vmig_virt_monitor_config_init(&s->monitor);
    s->monitor.poll_interval_ms = cfg->job_poll_interval_ms;
    s->monitor.progress_timeout_s = eff.progress_timeout_s;
    s->monitor.completion_timeout_per_gib_s = eff.completion_timeout_per_gib_s;
    s->monitor.allow_postcopy = eff.allow_postcopy;
    s->monitor.timeout_action =
        eff.allow_postcopy ? VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY : VMIG_VIRT_TIMEOUT_ACTION_ABORT;
    s->work = ctl_work_new(job, vmi);

    g_autofree char *now = vmig_ctl_now_rfc3339(vmig_ctl_wall_ms());
    CtlChain *c = ctl_chain_new(job);
    VmigCtlEdit *ve = ctl_vmi_edit(job);
    vmig_ctl_edit_set_string(ve, "status.migrationState.startTimestamp", now);
    vmig_ctl_edit_set_string(ve, "status.migrationState.mode", "PreCopy");
    ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, TRUE, ve, FALSE);
    VmigCtlEdit *me = ctl_vmim_edit(job);
    static const VmigModelMigrationPhase from[] = {VMIG_MODEL_MIGRATION_PHASE_TARGET_READY};
    ctl_vmim_phase(me, VMIG_MODEL_MIGRATION_PHASE_RUNNING, from, 1);
    me->not_deleting = TRUE;
    vmig_ctl_edit_set_string(me, "status.migrationState.startTimestamp", now);
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, TRUE, me, FALSE);
    ctl_chain_run(c, ctl_start_written, s, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* COMPLETE: the call ended; the objects tell the story                                   */

static void
ctl_complete(CtlJob *job, VmigModelVmim *vmim, VmigModelVmi *vmi, gboolean ok, const char *reason)
{
    g_autofree char *now = vmig_ctl_now_rfc3339(vmig_ctl_wall_ms());
    const VmigVirtOutcome *o = job->outcome;
    gboolean aborted = o && o->kind == VMIG_VIRT_OUTCOME_ABORTED;
    gboolean abort_requested = vmi && vmi->migration_state && vmi->migration_state->abort_requested;
    CtlChain *c = ctl_chain_new(job);
    vmig_ctl_metrics_complete(job, ok);

    VmigCtlEdit *ve = ctl_vmi_edit(job);
    vmig_ctl_edit_set_bool(ve, "status.migrationState.completed", TRUE);
    vmig_ctl_edit_set_bool(ve, "status.migrationState.failed", !ok);
    vmig_ctl_edit_set_string(ve, "status.migrationState.endTimestamp", now);
    if (!ok)
        vmig_ctl_edit_set_string(ve, "status.migrationState.failureReason", reason);
    if (abort_requested || aborted)
        vmig_ctl_edit_set_string(ve, "status.migrationState.abortStatus",
                                 aborted ? "Succeeded" : "Failed");
    ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, TRUE, ve, TRUE);

    VmigCtlEdit *me = ctl_vmim_edit(job);
    ctl_vmim_phase(me,
                   ok ? VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED : VMIG_MODEL_MIGRATION_PHASE_FAILED,
                   ctl_non_final, G_N_ELEMENTS(ctl_non_final));
    vmig_ctl_edit_set_bool(me, "status.migrationState.completed", TRUE);
    vmig_ctl_edit_set_bool(me, "status.migrationState.failed", !ok);
    vmig_ctl_edit_set_string(me, "status.migrationState.endTimestamp", now);
    if (!ok)
        vmig_ctl_edit_set_string(me, "status.migrationState.failureReason", reason);
    g_autofree char *progress = ctl_progress_json(job, ok ? "Succeeded" : "Failed", o);
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, TRUE, me, FALSE);
    VmigCtlEdit *ann = ctl_vmim_edit(job);
    vmig_ctl_edit_set_key(ann, "metadata.annotations", VMIG_CTL_ANN_PROGRESS,
                          json_node_init_string(json_node_alloc(), progress));
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, FALSE, ann, TRUE);

    if (ok) {
        g_autofree char *msg =
            g_strdup_printf("migrated %s/%s from %s to %s in %.1f s (downtime %" G_GUINT64_FORMAT
                            " ms, %.1f MiB moved)",
                            job->ns, job->vmi_name, job->source_node ? job->source_node : "?",
                            job->target_node ? job->target_node : "?",
                            o && o->has_stats ? o->time_elapsed_ms / 1000.0
                                              : (vmig_ctl_wall_ms() - job->started_ms) / 1000.0,
                            o && o->has_stats ? o->downtime_ms : 0,
                            o && o->has_stats ? o->data_processed / 1048576.0 : 0.0);
        g_message("VMIM %s: %s", job->key, msg);
        ctl_event(job, vmim->node, FALSE, "SuccessfulMigration", msg);
    } else {
        g_message("VMIM %s: Failed: %s", job->key, reason);
        ctl_event(job, vmim->node, TRUE, "FailedMigration", reason);
        if (aborted)
            ctl_event(job, vmim->node, FALSE, "SuccessfulAbortMigration", reason);
    }
    ctl_chain_run(c, NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* TAKE_OVER: the guest runs here now                                                    */

static void
ctl_take_over(CtlJob *job, VmigModelVmi *vmi)
{
    const char *me = job->ctl->cfg->node_name;
    CtlChain *c = ctl_chain_new(job);
    VmigCtlEdit *st = ctl_vmi_edit(job);
    st->require_target = g_strdup(me);
    vmig_ctl_edit_set_string(st, "status.nodeName", me);
    /* it left the drained node: the evacuation marker has done its job */
    vmig_ctl_edit_set(st, "status.evacuationNodeName", NULL);
    ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, TRUE, st, FALSE);
    VmigCtlEdit *lbl = ctl_vmi_edit(job);
    lbl->require_target = g_strdup(me);
    vmig_ctl_edit_set_key(lbl, "metadata.labels", VMIG_CTL_LABEL_NODE_NAME,
                          json_node_init_string(json_node_alloc(), me));
    ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, FALSE, lbl, FALSE);
    g_autofree char *msg = g_strdup_printf("VMI %s/%s now runs on %s", job->ns, job->vmi_name, me);
    g_message("VMIM %s: %s", job->key, msg);
    ctl_event(job, vmi ? vmi->node : NULL, FALSE, "Migrated", msg);
    ctl_chain_run(c, NULL, NULL, NULL);
}

/* The target confirms the domain runs in its pod before taking over. */
static void
ctl_probe_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    CtlWork *w = data;
    GError *err = NULL;
    if (!ctl_work_open(w, &err) || !vmig_virt_domain_get_state(w->dom, &w->state, &err)) {
        g_task_return_error(task, err);
        return;
    }
    g_task_return_boolean(task, TRUE);
}

static void
ctl_probe_done(GObject *src, GAsyncResult *res, gpointer data)
{
    CtlJob *job = data;
    CtlWork *w = g_task_get_task_data(G_TASK(res));
    g_autoptr(GError) err = NULL;
    vmig_ctl_job_idle(job);
    job->probing = FALSE;
    if (g_task_propagate_boolean(G_TASK(res), &err))
        job->domain_here = w->state == VMIG_VIRT_DOMAIN_RUNNING;
    else
        g_debug("VMIM %s: domain not here yet: %s", job->key, err->message);
    if (job->domain_here)
        vmig_ctl_enqueue(job->ctl, job->key);
}

/* ------------------------------------------------------------------------------------ */
/* RECONCILE: Running, but no call of ours (we restarted): ask libvirt                    */

static void
ctl_reconcile_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    CtlWork *w = data;
    GError *err = NULL;
    if (!ctl_work_open(w, &err)) {
        if (g_error_matches(err, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_NO_DOMAIN)) {
            g_clear_error(&err);
            w->state = VMIG_VIRT_DOMAIN_SHUTOFF;
            g_task_return_boolean(task, TRUE);
            return;
        }
        g_task_return_error(task, err);
        return;
    }
    if (!vmig_virt_domain_get_state(w->dom, &w->state, &err)) {
        g_task_return_error(task, err);
        return;
    }
    w->has_stats = vmig_virt_domain_job_stats(w->dom, FALSE, &w->stats, NULL);
    g_task_return_boolean(task, TRUE);
}

static void
ctl_reconcile_done(GObject *src, GAsyncResult *res, gpointer data)
{
    CtlJob *job = data;
    CtlWork *w = g_task_get_task_data(G_TASK(res));
    g_autoptr(GError) err = NULL;
    vmig_ctl_job_idle(job);
    if (!g_task_propagate_boolean(G_TASK(res), &err)) {
        g_warning("VMIM %s: cannot see the source domain after a restart: %s (retrying)", job->key,
                  err->message);
        vmig_ctl_job_retry(job, 2000);
        return;
    }
    if (w->state == VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY_FAILED) {
        /* libvirt keeps the failed post-copy job for a resume: take the recovery over. */
        if (!job->dom) {
            job->conn = g_steal_pointer(&w->conn);
            job->dom = g_steal_pointer(&w->dom);
        }
        vmig_ctl_recover_adopt(job);
        return;
    }
    gboolean active = w->has_stats && (w->stats.type == VMIG_VIRT_JOB_BOUNDED ||
                                       w->stats.type == VMIG_VIRT_JOB_UNBOUNDED);
    if (active) {
        /* libvirt still runs the job we started before the restart: wait for it. */
        vmig_ctl_job_retry(job, 1000);
        return;
    }
    if (w->state == VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY) {
        /* still in post-copy without a job we can see: libvirt is about to decide */
        vmig_ctl_job_retry(job, 1000);
        return;
    }
    job->job_done = TRUE;
    g_free(job->job_reason);
    job->job_reason = NULL;
    switch (w->state) {
    case VMIG_VIRT_DOMAIN_RUNNING:
        job->job_ok = FALSE;
        job->job_reason = g_strdup_printf(
            "migration interrupted: vmigrated restarted while it ran; the guest keeps "
            "running on %s",
            job->ctl->cfg->node_name);
        break;
    case VMIG_VIRT_DOMAIN_RUNNING_POSTCOPY_FAILED:
        /* Never resumed here: the guest's memory is split between the nodes (B14). */
        job->job_ok = FALSE;
        job->job_reason = g_strdup("post-copy failed; the source domain is left paused");
        break;
    case VMIG_VIRT_DOMAIN_PAUSED:
        job->job_ok = FALSE;
        job->job_reason = g_strdup_printf("migration interrupted: the guest is paused on %s",
                                          job->ctl->cfg->node_name);
        break;
    default:
        /* The source domain is gone: it moved; the target confirms before taking over. */
        job->job_ok = TRUE;
    }
    vmig_ctl_enqueue(job->ctl, job->key);
}

/* ------------------------------------------------------------------------------------ */
/* release, cancel, abort                                                                */

void
vmig_ctl_job_release_local(CtlJob *job)
{
    VmigController *ctl = job->ctl;
    if ((job->proxy_source || job->proxy_target) && job->uid && ctl->proxy)
        vmig_proxy_stop(ctl->proxy, job->uid);
    job->proxy_source = job->proxy_target = FALSE;
    if (job->migration && !job->job_done)
        return; /* never drop a running call: its end releases it */
    vmig_ctl_budget_leave(job);
    g_clear_pointer(&job->migration, vmig_virt_migration_free);
    g_clear_pointer(&job->dom, vmig_virt_domain_free);
    g_clear_pointer(&job->conn, vmig_virt_conn_free);
    g_clear_pointer(&job->outcome, vmig_virt_outcome_free);
    vmig_ctl_recover_clear(job);
}

static void
ctl_release(CtlJob *job, gboolean drop_finalizer)
{
    vmig_ctl_job_release_local(job);
    vmig_ctl_slots_kick(job->ctl);
    if (!drop_finalizer) {
        vmig_ctl_enqueue(job->ctl, job->key);
        return;
    }
    CtlChain *c = ctl_chain_new(job);
    VmigCtlEdit *e = ctl_vmim_edit(job);
    e->remove_finalizer = g_strdup(VMIG_CONTROLLER_FINALIZER);
    ctl_chain_add(c, VMIG_KUBE_VMIM, job->ns, job->name, FALSE, e, FALSE);
    ctl_chain_run(c, NULL, NULL, NULL);
}

static void
ctl_abort(CtlJob *job, VmigModelVmim *vmim, const char *reason)
{
    g_autoptr(GError) err = NULL;
    if (job->migration && !vmig_virt_migration_request_abort(job->migration, &err)) {
        g_warning("VMIM %s: abort refused: %s", job->key, err->message);
        ctl_event(job, vmim ? vmim->node : NULL, TRUE, "FailedAbortMigration", err->message);
    }
    CtlChain *c = ctl_chain_new(job);
    VmigCtlEdit *e = ctl_vmi_edit(job);
    vmig_ctl_edit_set_bool(e, "status.migrationState.abortRequested", TRUE);
    vmig_ctl_edit_set_string(e, "status.migrationState.abortStatus", err ? "Failed" : "Aborting");
    ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, TRUE, e, TRUE);
    g_message("VMIM %s: %s", job->key, reason ? reason : "aborting");
    ctl_chain_run(c, NULL, NULL, NULL);
}

static void
ctl_refuse_abort(CtlJob *job, VmigModelVmim *vmim, const char *reason)
{
    CtlChain *c = ctl_chain_new(job);
    VmigCtlEdit *e = ctl_vmi_edit(job);
    vmig_ctl_edit_set_bool(e, "status.migrationState.abortRequested", TRUE);
    vmig_ctl_edit_set_string(e, "status.migrationState.abortStatus", "Failed");
    ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, TRUE, e, TRUE);
    ctl_event(job, vmim->node, TRUE, "FailedAbortMigration", reason);
    g_warning("VMIM %s: %s", job->key, reason);
    ctl_chain_run(c, NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* dispatch                                                                              */

void
vmig_ctl_perform(CtlJob *job, const VmigMigrationDecision *d, VmigModelVmim *vmim,
                 VmigModelVmi *vmi)
{
    switch (d->action) {
    case VMIG_MIGRATION_ACTION_NONE:
        return;
    case VMIG_MIGRATION_ACTION_ACCEPT:
        ctl_accept(job);
        return;
    case VMIG_MIGRATION_ACTION_WAIT:
        if (d->role == VMIG_MIGRATION_ROLE_TARGET && !job->probing) {
            job->probing = TRUE;
            ctl_run_thread(job, ctl_work_new(job, vmi), ctl_probe_thread, ctl_probe_done);
        } else if (d->role == VMIG_MIGRATION_ROLE_SOURCE) {
            ctl_event(job, vmim->node, FALSE, "MigrationPending", d->reason);
            /* limits free up without an event on this VMIM: retry after the jittered backoff */
            vmig_ctl_job_retry(job, vmig_ctl_slots_retry_ms(job));
        }
        return;
    case VMIG_MIGRATION_ACTION_FAIL:
        ctl_fail(job, vmim, d->reason, FALSE);
        return;
    case VMIG_MIGRATION_ACTION_CLAIM:
        ctl_claim(job);
        return;
    case VMIG_MIGRATION_ACTION_SCHEDULE:
        ctl_schedule(job, vmim, vmi, job->chosen_target);
        return;
    case VMIG_MIGRATION_ACTION_PREPARE_TARGET:
        ctl_prepare(job, vmim, vmi);
        return;
    case VMIG_MIGRATION_ACTION_START:
        ctl_start(job, vmim, vmi);
        return;
    case VMIG_MIGRATION_ACTION_COMPLETE:
        vmig_ctl_recover_gave_up(job);
        ctl_complete(job, vmim, vmi, d->next_phase == VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED,
                     d->reason);
        return;
    case VMIG_MIGRATION_ACTION_ABORT:
        ctl_abort(job, vmim, d->reason);
        return;
    case VMIG_MIGRATION_ACTION_REFUSE_ABORT:
        ctl_refuse_abort(job, vmim, d->reason);
        return;
    case VMIG_MIGRATION_ACTION_CANCEL:
        ctl_fail(job, vmim, d->reason, TRUE);
        return;
    case VMIG_MIGRATION_ACTION_RECONCILE:
        ctl_run_thread(job, ctl_work_new(job, vmi), ctl_reconcile_thread, ctl_reconcile_done);
        return;
    case VMIG_MIGRATION_ACTION_TAKE_OVER:
        ctl_take_over(job, vmi);
        return;
    case VMIG_MIGRATION_ACTION_RELEASE:
        ctl_release(job,
                    d->role != VMIG_MIGRATION_ROLE_TARGET && vmig_ctl_has_finalizer(vmim->node));
        return;
    case VMIG_MIGRATION_ACTION_RECOVER_POSTCOPY:
        vmig_ctl_recover_attempt(job, vmim, vmi);
        return;
    case VMIG_MIGRATION_ACTION_REOPEN_TARGET:
        vmig_ctl_recover_reopen_target(job, vmim, vmi);
        return;
    }
}

/* ------------------------------------------------------------------------------------ */
/* shared with recover.c (post-copy recovery)                                            */

void
vmig_ctl_event(CtlJob *job, JsonNode *involved, gboolean warning, const char *reason,
               const char *message)
{
    ctl_event(job, involved, warning, reason, message);
}

gboolean
vmig_ctl_pod_paths(VmigController *ctl, const char *ns, const char *name, const char *uid,
                   char **share_dir, char **libvirt_uri, GError **error)
{
    CtlPod pod = {0};
    if (!ctl_pod_locate(ctl, ns, name, uid, &pod, error))
        return FALSE;
    *share_dir = g_steal_pointer(&pod.share_dir);
    *libvirt_uri = g_steal_pointer(&pod.libvirt_uri);
    return TRUE;
}

gboolean
vmig_ctl_open_domain(VmigController *ctl, const char *ns, const char *name, const char *uid,
                     VmigVirtConn **conn, VmigVirtDomain **dom, GError **error)
{
    CtlWork w = {.ctl = ctl,
                 .ns = (char *)ns,
                 .name = (char *)name,
                 .uid = (char *)uid,
                 .node = (char *)ctl->cfg->node_name};
    gboolean ok = ctl_work_open(&w, error);
    if (ok) {
        *conn = g_steal_pointer(&w.conn);
        *dom = g_steal_pointer(&w.dom);
    }
    g_clear_pointer(&w.dom, vmig_virt_domain_free);
    g_clear_pointer(&w.conn, vmig_virt_conn_free);
    return ok;
}

void
vmig_ctl_migration_done(VmigVirtMigration *mig, const VmigVirtOutcome *outcome, gpointer data)
{
    ctl_migration_done(mig, outcome, data);
}

void
vmig_ctl_watch_migration(CtlJob *job)
{
    VmigVirtMonitor *m = vmig_virt_migration_get_monitor(job->migration);
    vmig_virt_monitor_set_callbacks(m, ctl_on_sample, ctl_on_action, job);
}

void
vmig_ctl_publish_target(CtlJob *job, const char *address)
{
    VmigController *ctl = job->ctl;
    CtlChain *c = ctl_chain_new(job);
    VmigCtlEdit *vmi = ctl_vmi_edit(job);
    vmi->require_target = g_strdup(ctl->cfg->node_name);
    vmig_ctl_edit_set_string(vmi, "status.migrationState.targetNodeAddress", address);
    vmig_ctl_edit_set(vmi, "status.migrationState.targetDirectMigrationNodePorts",
                      vmig_proxy_target_port_map(ctl->proxy, job->uid));
    ctl_chain_add(c, VMIG_KUBE_VMI, job->ns, job->vmi_name, TRUE, vmi, FALSE);
    ctl_chain_run(c, NULL, NULL, NULL);
}

static void
ctl_mode_written(GObject *src, GAsyncResult *res, gpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) out = vmig_kube_call_finish(res, NULL, &err);
    if (!out)
        g_debug("%s: mode not written: %s", ((VmigCtlEdit *)data)->what, err->message);
    vmig_ctl_edit_free(data);
}

void
vmig_ctl_write_mode_postcopy(CtlJob *job)
{
    /* Not a chain: a chain keeps the job busy, and the API server may be behind the same
     * outage as the migration; resume attempts must not wait for it. */
    VmigCtlEdit *e = ctl_vmi_edit(job);
    vmig_ctl_edit_set_string(e, "status.migrationState.mode", "PostCopy");
    vmig_kube_mutate(job->ctl->kube, vmig_kube_resource(VMIG_KUBE_VMI), job->ns, job->vmi_name,
                     TRUE, NULL, 0, vmig_ctl_edit_apply, e, NULL, ctl_mode_written, e);
}

void
vmig_ctl_write_progress(CtlJob *job, const char *state)
{
    if (!job->progress_writing)
        ctl_write_progress(job, state, NULL);
}
