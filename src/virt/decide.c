/* decide.c - the job monitor's decisions as a pure state machine (see vmig/virt.h).
 *
 * Samples and time come in, one action goes out; nothing here calls libvirt or
 * reads a clock, so every rule is a table test (tests/unit/test-virt-decide.c). */
#include "vmig/virt.h"

#define GIB ((guint64)1 << 30)

static const char *const job_type_names[] = {
    [VMIG_VIRT_JOB_NONE] = "none",           [VMIG_VIRT_JOB_BOUNDED] = "bounded",
    [VMIG_VIRT_JOB_UNBOUNDED] = "unbounded", [VMIG_VIRT_JOB_COMPLETED] = "completed",
    [VMIG_VIRT_JOB_FAILED] = "failed",       [VMIG_VIRT_JOB_CANCELLED] = "cancelled",
};

static const char *const timeout_action_names[] = {
    [VMIG_VIRT_TIMEOUT_ACTION_ABORT] = "abort",
    [VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY] = "postcopy",
    [VMIG_VIRT_TIMEOUT_ACTION_PAUSE] = "pause",
};

static const char *const abort_cause_names[] = {
    [VMIG_VIRT_ABORT_NONE] = "",
    [VMIG_VIRT_ABORT_USER] = "aborted",
    [VMIG_VIRT_ABORT_NO_PROGRESS] = "no progress",
    [VMIG_VIRT_ABORT_COMPLETION_TIMEOUT] = "completion timeout",
};

static const char *const action_kind_names[] = {
    [VMIG_VIRT_ACTION_NONE] = "none",
    [VMIG_VIRT_ACTION_ABORT] = "abort",
    [VMIG_VIRT_ACTION_START_POSTCOPY] = "start-postcopy",
    [VMIG_VIRT_ACTION_SUSPEND] = "suspend",
    [VMIG_VIRT_ACTION_SET_DOWNTIME] = "set-downtime",
    [VMIG_VIRT_ACTION_STOP_POLLING] = "stop-polling",
};

static const char *const monitor_phase_names[] = {
    [VMIG_VIRT_MONITOR_PRECOPY] = "pre-copy", [VMIG_VIRT_MONITOR_POSTCOPY] = "post-copy",
    [VMIG_VIRT_MONITOR_PAUSED] = "paused",    [VMIG_VIRT_MONITOR_ABORTING] = "aborting",
    [VMIG_VIRT_MONITOR_STOPPED] = "stopped",
};

#define NAME_OF(table, v) ((gsize)(v) < G_N_ELEMENTS(table) && table[v] ? table[v] : "unknown")

const char *
vmig_virt_job_type_to_string(VmigVirtJobType type)
{
    return NAME_OF(job_type_names, type);
}

const char *
vmig_virt_timeout_action_to_string(VmigVirtTimeoutAction action)
{
    return NAME_OF(timeout_action_names, action);
}

gboolean
vmig_virt_timeout_action_from_string(const char *name, VmigVirtTimeoutAction *out)
{
    for (gsize i = 0; name && i < G_N_ELEMENTS(timeout_action_names); i++) {
        if (g_strcmp0(name, timeout_action_names[i]) == 0) {
            *out = (VmigVirtTimeoutAction)i;
            return TRUE;
        }
    }
    return FALSE;
}

const char *
vmig_virt_abort_cause_to_string(VmigVirtAbortCause cause)
{
    return NAME_OF(abort_cause_names, cause);
}

const char *
vmig_virt_action_kind_to_string(VmigVirtActionKind kind)
{
    return NAME_OF(action_kind_names, kind);
}

const char *
vmig_virt_monitor_phase_to_string(VmigVirtMonitorPhase phase)
{
    return NAME_OF(monitor_phase_names, phase);
}

guint64
vmig_virt_job_stats_remaining(const VmigVirtJobStats *s)
{
    /* Watching memory alone made block migrations look stalled (B13 S4). */
    if (s->has_mem || s->has_disk)
        return s->mem_remaining + s->disk_remaining;
    return s->data_remaining;
}

guint64
vmig_virt_job_stats_processed(const VmigVirtJobStats *s)
{
    if (s->has_mem || s->has_disk)
        return s->mem_processed + s->disk_processed;
    return s->data_processed;
}

guint64
vmig_virt_job_stats_total(const VmigVirtJobStats *s)
{
    if (s->has_mem || s->has_disk)
        return s->mem_total + s->disk_total;
    return s->data_total;
}

void
vmig_virt_monitor_config_init(VmigVirtMonitorConfig *c)
{
    *c = (VmigVirtMonitorConfig){
        .poll_interval_ms = 500,
        .progress_timeout_s = 150,
        .completion_timeout_per_gib_s = 150,
        .timeout_action = VMIG_VIRT_TIMEOUT_ACTION_ABORT,
        .allow_postcopy = FALSE,
        .max_consecutive_errors = 3,
        .downtime_steps = 0,
        .downtime_max_ms = 0,
        .downtime_step_delay_ms = 0,
    };
}

gboolean
vmig_virt_monitor_config_validate(const VmigVirtMonitorConfig *c, GError **error)
{
    if (c->poll_interval_ms < 1 || c->poll_interval_ms > 60000) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "monitor: poll_interval_ms %u is outside 1..60000", c->poll_interval_ms);
        return FALSE;
    }
    if (c->timeout_action == VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY && !c->allow_postcopy) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "monitor: timeout_action \"postcopy\" needs allow_postcopy");
        return FALSE;
    }
    if ((gsize)c->timeout_action >= G_N_ELEMENTS(timeout_action_names)) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "monitor: timeout_action %d is unknown", (int)c->timeout_action);
        return FALSE;
    }
    if (c->resume_postcopy && !c->allow_postcopy) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "monitor: resume_postcopy needs allow_postcopy");
        return FALSE;
    }
    if (c->max_consecutive_errors < 1) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "monitor: max_consecutive_errors must be at least 1");
        return FALSE;
    }
    if (c->downtime_steps > 0 && c->downtime_max_ms == 0) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "monitor: downtime_steps %u given without downtime_max_ms", c->downtime_steps);
        return FALSE;
    }
    return TRUE;
}

guint64
vmig_virt_downtime_step(guint i, guint steps, guint64 max_ms)
{
    if (steps == 0)
        return max_ms;
    if (i >= steps)
        i = steps - 1;
    guint64 v = max_ms * (i + 1) / steps;
    return v ? v : 1;
}

void
vmig_virt_decider_init(VmigVirtDecider *d, const VmigVirtMonitorConfig *config)
{
    *d = (VmigVirtDecider){.config = *config, .phase = VMIG_VIRT_MONITOR_PRECOPY};
    /* A resumed post-copy is past the switch from its first sample: no timeout, no
     * deadline action, no abort may touch it (B14). */
    if (config->resume_postcopy) {
        d->phase = VMIG_VIRT_MONITOR_POSTCOPY;
        d->postcopy_started = TRUE;
    }
}

static void
note_start(VmigVirtDecider *d, guint64 now_ms)
{
    if (!d->started) {
        d->started = TRUE;
        d->start_ms = now_ms;
        d->last_progress_ms = now_ms;
    }
}

static VmigVirtAction
act(VmigVirtActionKind kind)
{
    return (VmigVirtAction){.kind = kind};
}

static VmigVirtAction
stop(VmigVirtDecider *d)
{
    d->phase = VMIG_VIRT_MONITOR_STOPPED;
    return act(VMIG_VIRT_ACTION_STOP_POLLING);
}

static VmigVirtAction
abort_for(VmigVirtDecider *d, VmigVirtAbortCause cause)
{
    d->phase = VMIG_VIRT_MONITOR_ABORTING;
    d->abort_cause = cause;
    return (VmigVirtAction){.kind = VMIG_VIRT_ACTION_ABORT, .cause = cause};
}

/* The amount the completion deadline scales with; block copies count their disk
 * (B13 S4), and a small guest gets at least one GiB's worth of time. */
static void
update_deadline(VmigVirtDecider *d, const VmigVirtJobStats *s)
{
    guint64 total = vmig_virt_job_stats_total(s);
    if (total <= d->total_bytes)
        return;
    d->total_bytes = total;
    if (d->config.completion_timeout_per_gib_s == 0)
        return;
    guint64 amount = MAX(total, GIB);
    /* per_gib_s * 1000 ms * amount / GiB without overflow for any realistic size */
    d->completion_deadline_ms = d->start_ms + (guint64)d->config.completion_timeout_per_gib_s *
                                                  1000 * (amount / 1024) / (GIB / 1024);
}

/* Progress is what a healthy pre-copy shows even while data_remaining saws up
 * and down: a new minimum of remaining (each iteration's minimum lower than the
 * ones before) or more bytes processed. */
static void
update_progress(VmigVirtDecider *d, guint64 now_ms, const VmigVirtJobStats *s)
{
    guint64 remaining = vmig_virt_job_stats_remaining(s);
    guint64 processed = vmig_virt_job_stats_processed(s);
    if (!d->has_last) {
        d->min_remaining = remaining;
        d->max_processed = processed;
        d->last_progress_ms = now_ms;
        return;
    }
    gboolean progress = FALSE;
    if (remaining < d->min_remaining) {
        d->min_remaining = remaining;
        progress = TRUE;
    }
    if (processed > d->max_processed) {
        d->max_processed = processed;
        progress = TRUE;
    }
    if (progress)
        d->last_progress_ms = now_ms;
}

static VmigVirtAction
completion_action(VmigVirtDecider *d)
{
    d->completion_action_taken = TRUE;
    switch (d->config.timeout_action) {
    case VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY:
        if (d->config.allow_postcopy) {
            d->phase = VMIG_VIRT_MONITOR_POSTCOPY;
            d->postcopy_started = TRUE;
            return act(VMIG_VIRT_ACTION_START_POSTCOPY);
        }
        /* validated away; abort rather than wait forever */
        break;
    case VMIG_VIRT_TIMEOUT_ACTION_PAUSE:
        d->phase = VMIG_VIRT_MONITOR_PAUSED;
        d->paused_by_monitor = TRUE;
        return act(VMIG_VIRT_ACTION_SUSPEND);
    case VMIG_VIRT_TIMEOUT_ACTION_ABORT:
        break;
    }
    return abort_for(d, VMIG_VIRT_ABORT_COMPLETION_TIMEOUT);
}

VmigVirtAction
vmig_virt_decider_on_stats(VmigVirtDecider *d, guint64 now_ms, const VmigVirtJobStats *s)
{
    if (d->phase == VMIG_VIRT_MONITOR_STOPPED)
        return act(VMIG_VIRT_ACTION_NONE);
    note_start(d, now_ms);
    d->consecutive_errors = 0;

    switch (s->type) {
    case VMIG_VIRT_JOB_BOUNDED:
    case VMIG_VIRT_JOB_UNBOUNDED:
        d->seen_active_job = TRUE;
        break;
    case VMIG_VIRT_JOB_NONE:
        /* before the job starts (Begin/Prepare) there is none yet */
        if (!d->seen_active_job)
            return act(VMIG_VIRT_ACTION_NONE);
        return stop(d);
    default:
        return stop(d);
    }

    update_deadline(d, s);
    update_progress(d, now_ms, s);
    d->last = *s;
    d->has_last = TRUE;

    /* After the switch the guest runs on the target with part of its memory still
     * here: no timeout and no abort may touch it (B14). */
    if (d->phase == VMIG_VIRT_MONITOR_POSTCOPY || d->phase == VMIG_VIRT_MONITOR_ABORTING)
        return act(VMIG_VIRT_ACTION_NONE);

    if (d->config.progress_timeout_s &&
        now_ms - d->last_progress_ms >= (guint64)d->config.progress_timeout_s * 1000)
        return abort_for(d, VMIG_VIRT_ABORT_NO_PROGRESS);

    if (d->phase == VMIG_VIRT_MONITOR_PRECOPY && !d->completion_action_taken &&
        d->completion_deadline_ms && now_ms >= d->completion_deadline_ms)
        return completion_action(d);

    if (d->phase == VMIG_VIRT_MONITOR_PRECOPY && d->config.downtime_steps &&
        d->next_downtime_step < d->config.downtime_steps &&
        now_ms - d->start_ms >= (guint64)d->next_downtime_step * d->config.downtime_step_delay_ms) {
        guint i = d->next_downtime_step++;
        return (VmigVirtAction){
            .kind = VMIG_VIRT_ACTION_SET_DOWNTIME,
            .downtime_ms =
                vmig_virt_downtime_step(i, d->config.downtime_steps, d->config.downtime_max_ms),
        };
    }
    return act(VMIG_VIRT_ACTION_NONE);
}

VmigVirtAction
vmig_virt_decider_on_error(VmigVirtDecider *d, guint64 now_ms)
{
    if (d->phase == VMIG_VIRT_MONITOR_STOPPED)
        return act(VMIG_VIRT_ACTION_NONE);
    note_start(d, now_ms);
    /* Job-info queries fail transiently (a QEMU race, B12 run C); only a run of
     * failures means the stats are gone, and then the call's return decides. */
    if (++d->consecutive_errors >= d->config.max_consecutive_errors)
        return stop(d);
    return act(VMIG_VIRT_ACTION_NONE);
}

VmigVirtAction
vmig_virt_decider_on_job_completed(VmigVirtDecider *d)
{
    if (d->phase == VMIG_VIRT_MONITOR_STOPPED)
        return act(VMIG_VIRT_ACTION_NONE);
    return stop(d);
}

gboolean
vmig_virt_decider_request_abort(VmigVirtDecider *d, VmigVirtAction *out, GError **error)
{
    *out = act(VMIG_VIRT_ACTION_NONE);
    if (d->postcopy_started && d->phase != VMIG_VIRT_MONITOR_STOPPED) {
        g_set_error_literal(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_POSTCOPY,
                            "abort not possible during post-copy");
        return FALSE;
    }
    switch (d->phase) {
    case VMIG_VIRT_MONITOR_STOPPED:
        g_set_error_literal(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_STATE,
                            "the migration job is over; nothing to abort");
        return FALSE;
    case VMIG_VIRT_MONITOR_ABORTING:
        return TRUE;
    case VMIG_VIRT_MONITOR_POSTCOPY: /* covered above */
    case VMIG_VIRT_MONITOR_PRECOPY:
    case VMIG_VIRT_MONITOR_PAUSED:
        break;
    }
    *out = abort_for(d, VMIG_VIRT_ABORT_USER);
    return TRUE;
}

void
vmig_virt_decider_action_done(VmigVirtDecider *d, const VmigVirtAction *a, gboolean ok)
{
    if (ok)
        return;
    gboolean stopped = d->phase == VMIG_VIRT_MONITOR_STOPPED;
    switch (a->kind) {
    case VMIG_VIRT_ACTION_ABORT:
        /* the job goes on; a later rule or request may try again */
        d->abort_cause = VMIG_VIRT_ABORT_NONE;
        if (!stopped)
            d->phase = d->paused_by_monitor ? VMIG_VIRT_MONITOR_PAUSED : VMIG_VIRT_MONITOR_PRECOPY;
        break;
    case VMIG_VIRT_ACTION_START_POSTCOPY:
        d->postcopy_started = FALSE;
        if (!stopped)
            d->phase = VMIG_VIRT_MONITOR_PRECOPY;
        break;
    case VMIG_VIRT_ACTION_SUSPEND:
        d->paused_by_monitor = FALSE;
        if (!stopped)
            d->phase = VMIG_VIRT_MONITOR_PRECOPY;
        break;
    default:
        break;
    }
}
