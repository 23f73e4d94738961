/* outcome.c - the verdict of a migration, derived from virDomainMigrateToURI3's
 * return and the completed-job statistics (see vmig/virt.h). Pure.
 *
 * libvirt keeps only the last error of a call, and after a cancel that is often a
 * consequence ("domain is not running"), so the text is only ever detail (B12). */
#include "vmig/virt.h"

static const char *const outcome_kind_names[] = {
    [VMIG_VIRT_OUTCOME_SUCCEEDED] = "succeeded",
    [VMIG_VIRT_OUTCOME_FAILED] = "failed",
    [VMIG_VIRT_OUTCOME_ABORTED] = "aborted",
    [VMIG_VIRT_OUTCOME_POSTCOPY_FAILED] = "postcopy-failed",
};

static const char *const domain_state_names[] = {
    [VMIG_VIRT_DOMAIN_UNKNOWN] = "unknown",
    [VMIG_VIRT_DOMAIN_RUNNING] = "running",
    [VMIG_VIRT_DOMAIN_PAUSED] = "paused",
    [VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY_FAILED] = "paused-postcopy-failed",
    [VMIG_VIRT_DOMAIN_RUNNING_POSTCOPY_FAILED] = "running-postcopy-failed",
    [VMIG_VIRT_DOMAIN_SHUTOFF] = "shutoff",
    [VMIG_VIRT_DOMAIN_OTHER] = "other",
    [VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY] = "paused-postcopy",
};

const char *
vmig_virt_outcome_kind_to_string(VmigVirtOutcomeKind kind)
{
    if ((gsize)kind >= G_N_ELEMENTS(outcome_kind_names))
        return "unknown";
    return outcome_kind_names[kind];
}

const char *
vmig_virt_domain_state_to_string(VmigVirtDomainState state)
{
    if ((gsize)state >= G_N_ELEMENTS(domain_state_names))
        return "unknown";
    return domain_state_names[state];
}

static char *
detail_of(const VmigVirtOutcomeInput *in)
{
    const char *job = in->completed && in->completed->errmsg[0] ? in->completed->errmsg : NULL;
    const char *call = in->call_error && *in->call_error ? in->call_error : NULL;
    if (call && job && g_strcmp0(call, job) != 0)
        return g_strdup_printf("%s (job: %s)", call, job);
    return g_strdup(call ? call : job);
}

VmigVirtOutcome *
vmig_virt_outcome_derive(const VmigVirtOutcomeInput *in)
{
    VmigVirtOutcome *o = g_new0(VmigVirtOutcome, 1);
    const VmigVirtJobStats *c = in->completed;
    gboolean postcopy_failed_state = in->source_state == VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY_FAILED ||
                                     in->source_state == VMIG_VIRT_DOMAIN_RUNNING_POSTCOPY_FAILED;

    o->postcopy_used = in->postcopy_started;
    o->source_state = in->source_state;
    o->paused_to_complete = in->paused_by_monitor;

    if (in->call_rc == 0) {
        o->kind = VMIG_VIRT_OUTCOME_SUCCEEDED;
        o->reason = g_strdup("");
    } else if (in->postcopy_started || postcopy_failed_state) {
        /* The guest's memory is split between the nodes: never resumed here, and
         * reported apart from an ordinary failure so restart policies apply (B14). */
        o->kind = VMIG_VIRT_OUTCOME_POSTCOPY_FAILED;
        o->postcopy_used = TRUE;
        o->reason = g_strdup("post-copy failed");
        /* libvirt >= 8.5 keeps both domains paused for VIR_MIGRATE_POSTCOPY_RESUME; a source
         * still running (or gone) has nothing left to resume. */
        o->recoverable = in->source_state == VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY_FAILED ||
                         in->source_state == VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY;
    } else if ((c && c->type == VMIG_VIRT_JOB_CANCELLED) || in->call_aborted ||
               (in->abort_cause != VMIG_VIRT_ABORT_NONE &&
                (!c || c->type != VMIG_VIRT_JOB_COMPLETED))) {
        /* libvirt 9.0 keeps no completed-job stats for a cancelled migration: the
         * error code (not its text) and our own abort tell it apart */
        o->kind = VMIG_VIRT_OUTCOME_ABORTED;
        o->reason = g_strdup(in->abort_cause != VMIG_VIRT_ABORT_NONE
                                 ? vmig_virt_abort_cause_to_string(in->abort_cause)
                                 : vmig_virt_abort_cause_to_string(VMIG_VIRT_ABORT_USER));
    } else {
        o->kind = VMIG_VIRT_OUTCOME_FAILED;
        o->reason = g_strdup("migration failed");
    }
    if (o->kind != VMIG_VIRT_OUTCOME_SUCCEEDED)
        o->detail = detail_of(in);

    if (c) {
        o->has_stats = TRUE;
        o->downtime_ms = c->downtime_ms;
        o->time_elapsed_ms = c->time_elapsed_ms;
        o->data_processed = c->data_processed;
        o->data_total = c->data_total;
        o->data_remaining = c->data_remaining;
        o->mem_bps = c->mem_bps;
        o->dirty_rate_bps = c->dirty_rate_bps;
        o->iterations = c->mem_iteration;
    }
    return o;
}

void
vmig_virt_outcome_free(VmigVirtOutcome *o)
{
    if (!o)
        return;
    g_free(o->reason);
    g_free(o->detail);
    g_free(o);
}
