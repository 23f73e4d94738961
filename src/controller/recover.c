/* recover.c - post-copy failure recovery, source role (B14; docs/daemon.md).
 *
 * After the switch to post-copy the guest runs on the target while part of its memory is
 * still on the source: if the data path breaks then, neither copy can run alone. libvirt
 * >= 8.5 keeps both domains paused with reason "post-copy failed" and can resume the
 * migration (virDomainMigrateToURI3 with VIR_MIGRATE_POSTCOPY_RESUME) once the nodes can
 * talk again. So a resumable failure does not fail the VMIM: it stays Running (mode
 * PostCopy, event PostCopyRecovering, progress state PostCopyRecovering), the source proxy
 * is brought up again and the resume is retried with backoff until it succeeds or
 * --postcopy-recovery-timeout-ms passes. Then the VMIM fails with a reason saying where the
 * guest is paused and how an operator resumes it; it is never silently lost. A restarted
 * daemon that finds its source domain in that state takes the recovery over.
 *
 * The state machine decides when (RECOVER_POSTCOPY, give-up at the deadline); this file
 * keeps the recovery's state and performs the attempts. KubeVirt does not try: virt-handler
 * marks such a VMI "irrecoverable due to failed post-copy migration". */
#define G_LOG_DOMAIN "vmig-controller"
#include <string.h>

#include "controller-private.h"

/* Attempts are spaced by vmig_migration_recovery_backoff_ms(): 1, 2, 4, 8, then 15 s. */
#define ctl_recover_backoff_ms vmig_migration_recovery_backoff_ms

static JsonNode *
ctl_recover_vmim_node(CtlJob *job)
{
    return vmig_kube_informer_get(job->ctl->inf[CTL_INF_VMIM], job->ns, job->name);
}

static void
ctl_recover_event(CtlJob *job, gboolean warning, const char *reason, const char *message)
{
    g_autoptr(JsonNode) vmim = ctl_recover_vmim_node(job);
    vmig_ctl_event(job, vmim, warning, reason, message);
}

static void
ctl_recover_start(CtlJob *job, const char *why)
{
    gint64 now = vmig_ctl_wall_ms();
    guint timeout_ms = job->ctl->cfg->postcopy_recovery_timeout_ms;
    job->postcopy = TRUE;
    job->pc_recovering = TRUE;
    job->pc_gave_up = FALSE;
    job->pc_since_ms = now;
    job->pc_deadline_ms = now + timeout_ms;
    job->pc_attempts = 0;
    g_autofree char *msg = g_strdup_printf(
        "post-copy migration of %s/%s failed (%s); the guest is paused on %s and %s with its "
        "memory split between them: resuming the migration when the data path works again "
        "(for up to %u s)",
        job->ns, job->vmi_name, why, job->ctl->cfg->node_name,
        job->target_node ? job->target_node : "the target", timeout_ms / 1000);
    g_warning("VMIM %s: %s", job->key, msg);
    vmig_ctl_metrics_recovery(job, "failed");
    g_free(job->pc_event);
    job->pc_event = g_steal_pointer(&msg);
    ctl_recover_event(job, TRUE, "PostCopyRecovering", job->pc_event);
    vmig_ctl_write_progress(job, "PostCopyRecovering");
    vmig_ctl_write_mode_postcopy(job);
}

/* Every attempt repeats the event (the recorder counts repeats): the first one is often
 * lost with the link that broke the migration, and a successful attempt can only start once
 * the nodes reach each other, the API server usually too. Failed attempts rewrite the
 * progress annotation with their figures. */
static void
ctl_recover_still(CtlJob *job, gboolean attempt_started)
{
    if (attempt_started && job->pc_event)
        ctl_recover_event(job, TRUE, "PostCopyRecovering", job->pc_event);
    if (attempt_started && job->pc_attempts == 1)
        vmig_ctl_write_mode_postcopy(job); /* again: the first write may have met the outage */
    vmig_ctl_write_progress(job, "PostCopyRecovering");
}

gboolean
vmig_ctl_recover_on_outcome(CtlJob *job, VmigVirtMigration *mig, const VmigVirtOutcome *o)
{
    if (o->kind == VMIG_VIRT_OUTCOME_SUCCEEDED) {
        if (job->pc_recovering) {
            g_autofree char *msg = g_strdup_printf(
                "post-copy migration of %s/%s resumed and completed: %u attempt(s), %.1f s "
                "after the failure",
                job->ns, job->vmi_name, job->pc_attempts,
                (vmig_ctl_wall_ms() - job->pc_since_ms) / 1000.0);
            g_message("VMIM %s: %s", job->key, msg);
            ctl_recover_event(job, FALSE, "PostCopyRecovered", msg);
            vmig_ctl_metrics_recovery(job, "recovered");
            job->pc_recovering = FALSE;
        }
        return FALSE;
    }
    if (o->kind != VMIG_VIRT_OUTCOME_POSTCOPY_FAILED ||
        job->ctl->cfg->postcopy_recovery_timeout_ms == 0)
        return FALSE;
    if (!o->recoverable && !job->pc_recovering)
        return FALSE; /* nothing was left to resume: Failed, as before */
    if (!o->recoverable && o->source_state == VMIG_VIRT_DOMAIN_SHUTOFF) {
        /* A resume that reported an error but moved the guest (or the source was destroyed):
         * like a restart finding no source domain, the target confirms the domain runs
         * before it takes over. */
        g_message("VMIM %s: resume attempt %u reported %s but the source domain is shut off: "
                  "the guest left",
                  job->key, job->pc_attempts, o->detail ? o->detail : o->reason);
        /* an earlier attempt's resume finished in QEMU after libvirt had reported it failed:
         * the recovery worked, and says so like any other */
        g_autofree char *msg = g_strdup_printf(
            "post-copy migration of %s/%s resumed and completed (the source domain shut off "
            "after attempt %u reported an error), %.1f s after the failure",
            job->ns, job->vmi_name, job->pc_attempts,
            (vmig_ctl_wall_ms() - job->pc_since_ms) / 1000.0);
        ctl_recover_event(job, FALSE, "PostCopyRecovered", msg);
        vmig_ctl_metrics_recovery(job, "recovered");
        if (job->pc_ended != mig)
            g_clear_pointer(&job->pc_ended, vmig_virt_migration_free);
        job->pc_ended = mig;
        if (job->migration == mig)
            job->migration = NULL;
        job->pc_recovering = FALSE;
        job->job_done = TRUE;
        job->job_ok = TRUE;
        vmig_ctl_enqueue(job->ctl, job->key);
        return TRUE;
    }
    /* Recoverable, or a state in flux after a failed attempt (paused, running, unknown: a
     * resume racing the destination's own failure detection): try again until the deadline. */

    /* The call is over (its thread handed over); it is freed before the next one, not
     * inside its own done callback. */
    if (job->pc_ended != mig)
        g_clear_pointer(&job->pc_ended, vmig_virt_migration_free);
    job->pc_ended = mig;
    if (job->migration == mig)
        job->migration = NULL;
    vmig_ctl_budget_leave(job); /* nothing moves until the next attempt joins again */
    g_free(job->pc_error);
    job->pc_error = o->detail && *o->detail ? g_strdup_printf("%s: %s", o->reason, o->detail)
                                            : g_strdup(o->reason);
    if (!job->pc_recovering) {
        ctl_recover_start(job, job->pc_error);
    } else {
        g_message("VMIM %s: post-copy resume attempt %u failed: %s", job->key, job->pc_attempts,
                  job->pc_error);
        ctl_recover_still(job, FALSE);
    }
    guint delay = ctl_recover_backoff_ms(MAX(job->pc_attempts, 1));
    job->pc_next_ms = vmig_ctl_wall_ms() + delay;
    g_message("VMIM %s: next post-copy resume attempt in %u ms", job->key, delay);
    vmig_ctl_enqueue(job->ctl, job->key);
    return TRUE;
}

void
vmig_ctl_recover_adopt(CtlJob *job)
{
    if (job->ctl->cfg->postcopy_recovery_timeout_ms == 0) {
        /* recovery switched off: the earlier behaviour, said plainly */
        job->job_done = TRUE;
        job->job_ok = FALSE;
        g_free(job->job_reason);
        job->job_reason = g_strdup_printf(
            "post-copy failed; the guest is paused on %s (post-copy failed) and on the target; "
            "resume it with virsh migrate --postcopy --postcopy-resume",
            job->ctl->cfg->node_name);
        vmig_ctl_enqueue(job->ctl, job->key);
        return;
    }
    ctl_recover_start(job, "found paused (post-copy failed) after vmigrated restarted");
    job->pc_next_ms = vmig_ctl_wall_ms();
    vmig_ctl_enqueue(job->ctl, job->key);
}

void
vmig_ctl_recover_facts(CtlJob *job, VmigMigrationFacts *f)
{
    if (!job->pc_recovering)
        return;
    f->recovering = TRUE;
    f->post_copy = TRUE; /* even if the VMI's mode was never written (the API was away too) */
    f->recovery_next_ms = job->pc_next_ms;
    f->recovery_deadline_ms = job->pc_deadline_ms;
    f->recovery_attempts = job->pc_attempts;
    f->recovery_max_attempts = job->ctl->cfg->postcopy_recovery_attempts;
    g_free(job->pc_give_up);
    job->pc_give_up = g_strdup_printf(
        "post-copy failed and could not be resumed within %u s and %u attempts (%u made; "
        "last: %s): the "
        "guest of %s/%s is paused on both %s (source) and %s (target) with its memory split "
        "between them, so neither copy may be restarted alone; once the nodes reach each other "
        "again, resume it from the source pod's libvirt with `virsh migrate --live --p2p "
        "--persistent --postcopy --postcopy-resume <domain> <target libvirt URI> --migrateuri "
        "<target migration URI>` (docs/operations.md)",
        job->ctl->cfg->postcopy_recovery_timeout_ms / 1000,
        job->ctl->cfg->postcopy_recovery_attempts, job->pc_attempts,
        job->pc_error ? job->pc_error : "none", job->ns, job->vmi_name, job->ctl->cfg->node_name,
        job->target_node ? job->target_node : "the target");
    f->recovery_give_up = job->pc_give_up;
}

void
vmig_ctl_recover_progress(CtlJob *job, JsonBuilder *b)
{
    if (!job->pc_recovering)
        return;
    g_autofree char *since = vmig_ctl_now_rfc3339(job->pc_since_ms);
    g_autofree char *deadline = vmig_ctl_now_rfc3339(job->pc_deadline_ms);
    json_builder_set_member_name(b, "postCopyFailedAt");
    json_builder_add_string_value(b, since);
    json_builder_set_member_name(b, "recoveryDeadline");
    json_builder_add_string_value(b, deadline);
    json_builder_set_member_name(b, "recoveryAttempts");
    json_builder_add_int_value(b, job->pc_attempts);
    if (job->pc_error) {
        json_builder_set_member_name(b, "lastRecoveryError");
        json_builder_add_string_value(b, job->pc_error);
    }
}

void
vmig_ctl_recover_gave_up(CtlJob *job)
{
    if (!job->pc_recovering || job->job_done || job->pc_gave_up)
        return;
    g_warning("VMIM %s: giving up the post-copy recovery after %u attempts: the guest stays "
              "paused on %s and %s",
              job->key, job->pc_attempts, job->ctl->cfg->node_name,
              job->target_node ? job->target_node : "the target");
    vmig_ctl_metrics_recovery(job, "gave_up");
    /* still "recovering" for the state machine: the Failed write is repeated until it lands
     * (the API server may be behind the same outage) */
    job->pc_gave_up = TRUE;
}

void
vmig_ctl_recover_clear(CtlJob *job)
{
    g_clear_pointer(&job->pc_event, g_free);
    g_clear_pointer(&job->pc_ended, vmig_virt_migration_free);
    g_clear_pointer(&job->pc_error, g_free);
    g_clear_pointer(&job->pc_give_up, g_free);
    job->pc_recovering = FALSE;
    job->pc_gave_up = FALSE;
}

/* ------------------------------------------------------------------------------------ */
/* one attempt                                                                           */

/* The original call, rebuilt from the objects (the same as the start; a restarted daemon
 * has nothing else), with its owned strings. */
typedef struct {
    CtlJob *job;
    VmigVirtMigrateSettings settings;
    VmigVirtMonitorConfig monitor;
    char *dconnuri, *migrate_uri, *disks_uri, *dest_xml;
    GStrv disks;
    char *ns, *name, *vmi_uid;
    VmigVirtConn *conn; /* opened by the worker when the job had no domain */
    VmigVirtDomain *dom;
} CtlRecoverCall;

static void
ctl_recover_call_free(gpointer p)
{
    CtlRecoverCall *r = p;
    g_free(r->dconnuri);
    g_free(r->migrate_uri);
    g_free(r->disks_uri);
    g_free(r->dest_xml);
    g_strfreev(r->disks);
    g_free(r->ns);
    g_free(r->name);
    g_free(r->vmi_uid);
    g_clear_pointer(&r->dom, vmig_virt_domain_free);
    g_clear_pointer(&r->conn, vmig_virt_conn_free);
    g_free(r);
}

/* An attempt that could not even start counts as a failed one. */
static void
ctl_recover_attempt_failed(CtlJob *job, const char *error)
{
    job->pc_attempts++;
    g_free(job->pc_error);
    job->pc_error = g_strdup(error);
    guint delay = ctl_recover_backoff_ms(job->pc_attempts);
    job->pc_next_ms = vmig_ctl_wall_ms() + delay;
    g_message("VMIM %s: post-copy resume attempt %u not started: %s; next in %u ms", job->key,
              job->pc_attempts, error, delay);
    ctl_recover_still(job, FALSE);
    vmig_ctl_enqueue(job->ctl, job->key);
}

/* The source proxy, restarted on every attempt so it dials the ports the target publishes
 * now and no half-dead connection of the failed call is reused. */
static gboolean
ctl_recover_proxy(CtlJob *job, VmigModelVmi *vmi, gboolean block, GError **error)
{
    VmigController *ctl = job->ctl;
    const VmigModelMigrationState *st = vmi->migration_state;
    JsonNode *map =
        vmig_model_json_get(vmi->node, "status.migrationState.targetDirectMigrationNodePorts");
    guint16 ports[VMIG_PROXY_N_CHANNELS] = {0};
    if (!st || !st->target_node_address || !map) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                    "VMI %s/%s: no targetNodeAddress or targetDirectMigrationNodePorts", job->ns,
                    job->vmi_name);
        return FALSE;
    }
    g_autoptr(JsonNode) map_copy = json_node_copy(map);
    if (!vmig_proxy_port_map_parse(map_copy, ports, error))
        return FALSE;
    if (!block)
        ports[VMIG_PROXY_CHANNEL_DISK] = 0;
    g_autofree char *share_dir = NULL, *uri = NULL;
    if (!vmig_ctl_pod_paths(ctl, job->ns, job->vmi_name, vmi->meta.uid, &share_dir, &uri, error))
        return FALSE;
    VmigProxySourceSpec spec = {
        .uid = job->uid,
        .dir = share_dir,
        .target_address = st->target_node_address,
        .target_node = st->target_node,
    };
    memcpy(spec.target_ports, ports, sizeof(ports));
    vmig_proxy_stop(ctl->proxy, job->uid);
    job->proxy_source = FALSE;
    if (!vmig_proxy_start_source(ctl->proxy, &spec, error))
        return FALSE;
    job->proxy_source = TRUE;
    if (!job->target_node)
        job->target_node = g_strdup(st->target_node);
    return TRUE;
}

static void
ctl_recover_build(CtlRecoverCall *r, CtlJob *job, VmigModelVmim *vmim, VmigModelVmi *vmi)
{
    VmigController *ctl = job->ctl;
    const VmigAgentConfig *cfg = ctl->cfg;
    char *reason = NULL;
    vmig_ctl_check_source(ctl, vmi, &reason, &r->disks);
    g_free(reason);
    gboolean block = r->disks && r->disks[0];

    vmig_ctl_migration_uris(job, vmim, &r->dconnuri, &r->migrate_uri, &r->disks_uri, &r->dest_xml);

    CtlEffective eff;
    vmig_ctl_effective(ctl, vmi, &eff);
    r->settings = (VmigVirtMigrateSettings){
        .dconnuri = r->dconnuri,
        .migrate_uri = r->migrate_uri,
        .destination_xml = r->dest_xml,
        .auto_converge = eff.auto_converge,
        /* the failed call ran with it, whatever the policy says now */
        .allow_postcopy = TRUE,
        .migrate_disks = block ? (const char *const *)r->disks : NULL,
        .disks_uri = block ? r->disks_uri : NULL,
        .bandwidth_mibps = eff.bandwidth_mibps,
    };
    vmig_virt_monitor_config_init(&r->monitor);
    r->monitor.poll_interval_ms = cfg->job_poll_interval_ms;
    r->monitor.progress_timeout_s = eff.progress_timeout_s;
    r->monitor.completion_timeout_per_gib_s = eff.completion_timeout_per_gib_s;
    r->monitor.allow_postcopy = TRUE;
    r->monitor.timeout_action = VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY;
}

static void
ctl_recover_go(CtlJob *job, CtlRecoverCall *r)
{
    g_autoptr(GError) err = NULL;
    /* The node's bandwidth budget (budget.c) counts the resumed call like the first one; a
     * restarted daemon joins it here. Its share is the call's speed in pre- and post-copy. */
    if (!job->budget_member)
        vmig_ctl_budget_join(job, r->settings.bandwidth_mibps, TRUE);
    r->settings.bandwidth_mibps = vmig_ctl_budget_share(job);
    if (job->budget_member)
        r->settings.bandwidth_postcopy_mibps = r->settings.bandwidth_mibps;
    job->pc_attempts++;
    job->migration = vmig_virt_migration_resume(job->dom, &r->settings, &r->monitor,
                                                vmig_ctl_migration_done, job, &err);
    if (!job->migration) {
        job->pc_attempts--;
        vmig_ctl_budget_leave(job);
        ctl_recover_attempt_failed(job, err->message);
        return;
    }
    vmig_ctl_watch_migration(job);
    vmig_ctl_metrics_recovery(job, "attempt");
    g_message("VMIM %s: post-copy resume attempt %u (%.1f s after the failure)", job->key,
              job->pc_attempts, (vmig_ctl_wall_ms() - job->pc_since_ms) / 1000.0);
    ctl_recover_still(job, TRUE);
}

static void
ctl_recover_open_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    CtlRecoverCall *r = data;
    GError *err = NULL;
    if (!vmig_ctl_open_domain(r->job->ctl, r->ns, r->name, r->vmi_uid, &r->conn, &r->dom, &err))
        g_task_return_error(task, err);
    else
        g_task_return_boolean(task, TRUE);
}

static void
ctl_recover_opened(GObject *src, GAsyncResult *res, gpointer data)
{
    CtlJob *job = data;
    CtlRecoverCall *r = g_task_get_task_data(G_TASK(res));
    g_autoptr(GError) err = NULL;
    vmig_ctl_job_idle(job);
    if (!g_task_propagate_boolean(G_TASK(res), &err)) {
        g_autofree char *msg = g_strdup_printf("source domain: %s", err->message);
        ctl_recover_attempt_failed(job, msg);
        return;
    }
    job->conn = g_steal_pointer(&r->conn);
    job->dom = g_steal_pointer(&r->dom);
    ctl_recover_go(job, r);
}

void
vmig_ctl_recover_attempt(CtlJob *job, VmigModelVmim *vmim, VmigModelVmi *vmi)
{
    g_autoptr(GError) err = NULL;
    g_clear_pointer(&job->pc_ended, vmig_virt_migration_free);
    if (!vmi) {
        ctl_recover_attempt_failed(job, "the VMI is not in the cache");
        return;
    }
    CtlRecoverCall *r = g_new0(CtlRecoverCall, 1);
    r->job = job;
    ctl_recover_build(r, job, vmim, vmi);
    if (!ctl_recover_proxy(job, vmi, r->settings.migrate_disks != NULL, &err)) {
        g_autofree char *msg = g_strdup_printf("source proxy: %s", err->message);
        ctl_recover_call_free(r);
        ctl_recover_attempt_failed(job, msg);
        return;
    }
    if (job->dom) {
        ctl_recover_go(job, r);
        ctl_recover_call_free(r);
        return;
    }
    r->ns = g_strdup(job->ns);
    r->name = g_strdup(job->vmi_name);
    r->vmi_uid = g_strdup(vmi->meta.uid);
    job->busy = TRUE;
    g_autoptr(GTask) task = g_task_new(NULL, NULL, ctl_recover_opened, job);
    g_task_set_task_data(task, r, ctl_recover_call_free);
    g_task_run_in_thread(task, ctl_recover_open_thread);
}

/* ------------------------------------------------------------------------------------ */
/* target side                                                                           */

/* The target daemon restarted after the switch: its listeners died with it (which broke
 * the post-copy). Open them again on new kernel-chosen ports and publish those; the source
 * restarts its proxy from the VMI's ports before every resume attempt. No checks: the
 * domain is already here, paused with reason post-copy failed. */
void
vmig_ctl_recover_reopen_target(CtlJob *job, VmigModelVmim *vmim, VmigModelVmi *vmi)
{
    VmigController *ctl = job->ctl;
    g_autoptr(GError) err = NULL;
    if (!vmim || !vmi) {
        vmig_ctl_job_retry(job, 2000);
        return;
    }
    g_autofree char *share_dir = NULL, *uri = NULL;
    if (!vmig_ctl_pod_paths(ctl, job->ns, job->vmi_name, vmi->meta.uid, &share_dir, &uri, &err)) {
        g_warning("VMIM %s: cannot reopen the target listeners: pod: %s (retrying)", job->key,
                  err->message);
        vmig_ctl_job_retry(job, 2000);
        return;
    }
    const char *source_node = vmim->migration_state ? vmim->migration_state->source_node : NULL;
    g_autofree char *source_addr = source_node ? vmig_ctl_node_address(ctl, source_node) : NULL;
    g_autofree char *my_addr = ctl->cfg->migration_address
                                   ? g_strdup(ctl->cfg->migration_address)
                                   : vmig_ctl_node_address(ctl, ctl->cfg->node_name);
    /* the disk channel was served if the first prepare published it */
    JsonNode *map =
        vmig_model_json_get(vmi->node, "status.migrationState.targetDirectMigrationNodePorts");
    guint16 ports[VMIG_PROXY_N_CHANNELS] = {0};
    g_autoptr(JsonNode) map_copy = map ? json_node_copy(map) : NULL;
    gboolean block = map_copy && vmig_proxy_port_map_parse(map_copy, ports, NULL) &&
                     ports[VMIG_PROXY_CHANNEL_DISK] != 0;
    const char *prefix = "qemu+unix:///system?socket=";
    const char *libvirt_sock = g_str_has_prefix(uri, prefix) ? uri + strlen(prefix) : uri;
    g_autofree char *mem = vmig_proxy_socket_name(job->uid, VMIG_PROXY_CHANNEL_MEMORY);
    g_autofree char *disk = vmig_proxy_socket_name(job->uid, VMIG_PROXY_CHANNEL_DISK);
    g_autofree char *mem_path = g_build_filename(share_dir, "migrationproxy", mem, NULL);
    g_autofree char *disk_path = g_build_filename(share_dir, "migrationproxy", disk, NULL);
    if (!my_addr) {
        g_warning("VMIM %s: cannot reopen the target listeners: no migration address", job->key);
        vmig_ctl_job_retry(job, 5000);
        return;
    }
    VmigProxyTargetSpec spec = {
        .uid = job->uid,
        .listen_address = my_addr,
        .expected_peer_address = source_addr,
        .source_node = source_node,
        .forward_paths = {libvirt_sock, mem_path, block ? disk_path : NULL},
    };
    vmig_proxy_stop(ctl->proxy, job->uid);
    if (!vmig_proxy_start_target(ctl->proxy, &spec, &err)) {
        g_warning("VMIM %s: cannot reopen the target listeners: %s (retrying)", job->key,
                  err->message);
        vmig_ctl_job_retry(job, 2000);
        return;
    }
    job->proxy_target = TRUE;
    job->block_migration = block;
    g_autofree char *msg = g_strdup_printf(
        "%s restarted during post-copy: migration listeners open again on %s for the resume",
        ctl->cfg->node_name, my_addr);
    g_message("VMIM %s: %s", job->key, msg);
    ctl_recover_event(job, FALSE, "PostCopyTargetReopened", msg);
    vmig_ctl_publish_target(job, my_addr);
}
