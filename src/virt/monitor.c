/* monitor.c - runs the decider on the GLib main loop: a timer starts one
 * GetJobStats poll at a time on a worker thread, feeds the answer to the decider
 * and carries out the action it returns (see vmig/virt.h).
 *
 * The monitor is reference counted internally so that a poll or an action still
 * running on a worker thread when the owner frees it finds valid memory; its
 * results are then discarded. */
#define G_LOG_DOMAIN "vmig-virt"
#include "virt-private.h"

struct _VmigVirtMonitor {
    gint ref;
    VmigVirtDecider decider;
    const VmigVirtStatsProvider *provider;
    gpointer provider_data;
    char *what;
    GMainContext *context;
    GSource *timer;
    gboolean poll_in_flight;
    guint generation; /* bumped on stop: results of older polls are discarded */
    gboolean freed;
    guint polls;
    VmigVirtMonitorSampleFunc on_sample;
    VmigVirtMonitorActionFunc on_action;
    gpointer user_data;
    VmigVirtMonitorActionFunc owner_hook;
    gpointer owner_data;
};

typedef struct {
    VmigVirtMonitor *monitor; /* ref held */
    gpointer data;            /* provider data, ref held when the provider can */
    guint generation;
    VmigVirtAction action;  /* action tasks */
    VmigVirtJobStats stats; /* poll tasks */
} TaskData;

static VmigVirtMonitor *
monitor_ref(VmigVirtMonitor *m)
{
    g_atomic_int_inc(&m->ref);
    return m;
}

static void
monitor_unref(VmigVirtMonitor *m)
{
    if (!g_atomic_int_dec_and_test(&m->ref))
        return;
    g_free(m->what);
    if (m->context)
        g_main_context_unref(m->context);
    g_free(m);
}

static TaskData *
task_data_new(VmigVirtMonitor *m)
{
    TaskData *t = g_new0(TaskData, 1);
    t->monitor = monitor_ref(m);
    t->data = m->provider->data_ref ? m->provider->data_ref(m->provider_data) : m->provider_data;
    t->generation = m->generation;
    return t;
}

static void
task_data_free(gpointer p)
{
    TaskData *t = p;
    if (t->monitor->provider->data_unref)
        t->monitor->provider->data_unref(t->data);
    monitor_unref(t->monitor);
    g_free(t);
}

static guint64
monitor_now(VmigVirtMonitor *m)
{
    if (m->provider->now_ms)
        return m->provider->now_ms(m->provider_data);
    return (guint64)(g_get_monotonic_time() / 1000);
}

static void
disarm_timer(VmigVirtMonitor *m)
{
    if (m->timer) {
        g_source_destroy(m->timer);
        g_source_unref(m->timer);
        m->timer = NULL;
    }
}

/* Runs an action's libvirt call on a worker thread. */
static void
action_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
    TaskData *t = task_data;
    const VmigVirtStatsProvider *p = t->monitor->provider;
    GError *error = NULL;
    gboolean ok = FALSE;

    switch (t->action.kind) {
    case VMIG_VIRT_ACTION_ABORT:
        ok = p->abort_job(t->data, &error);
        break;
    case VMIG_VIRT_ACTION_START_POSTCOPY:
        ok = p->start_postcopy(t->data, &error);
        break;
    case VMIG_VIRT_ACTION_SUSPEND:
        ok = p->suspend(t->data, &error);
        break;
    case VMIG_VIRT_ACTION_SET_DOWNTIME:
        ok = p->set_max_downtime(t->data, t->action.downtime_ms, &error);
        break;
    default:
        ok = TRUE;
        break;
    }
    if (ok)
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_error(task, error);
}

static void
action_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = G_TASK(res);
    TaskData *t = g_task_get_task_data(task);
    VmigVirtMonitor *m = t->monitor;
    g_autoptr(GError) error = NULL;
    gboolean ok = g_task_propagate_boolean(task, &error);

    if (m->freed)
        return;
    /* An abort whose bounded wait ran out was still issued: the job is being
     * cancelled, so the cause stays and no second abort follows (B15). */
    gboolean issued = ok || (t->action.kind == VMIG_VIRT_ACTION_ABORT &&
                             g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_TIMEOUT));
    vmig_virt_decider_action_done(&m->decider, &t->action, issued);
    if (ok)
        g_message("%s: monitor action %s done", m->what,
                  vmig_virt_action_kind_to_string(t->action.kind));
    else
        g_warning("%s: monitor action %s failed: %s", m->what,
                  vmig_virt_action_kind_to_string(t->action.kind), error->message);
    if (m->owner_hook)
        m->owner_hook(m, &t->action, ok, error ? error->message : NULL, m->owner_data);
    if (m->on_action)
        m->on_action(m, &t->action, ok, error ? error->message : NULL, m->user_data);
}

static void
carry_out(VmigVirtMonitor *m, VmigVirtAction action)
{
    switch (action.kind) {
    case VMIG_VIRT_ACTION_NONE:
        return;
    case VMIG_VIRT_ACTION_STOP_POLLING:
        g_debug("%s: monitor stops polling (%s)", m->what,
                vmig_virt_monitor_phase_to_string(m->decider.phase));
        disarm_timer(m);
        m->generation++;
        if (m->on_action)
            m->on_action(m, &action, TRUE, NULL, m->user_data);
        return;
    default:
        break;
    }
    if (action.kind == VMIG_VIRT_ACTION_ABORT)
        g_message("%s: aborting the migration job (%s)", m->what,
                  vmig_virt_abort_cause_to_string(action.cause));
    else if (action.kind == VMIG_VIRT_ACTION_SET_DOWNTIME)
        g_message("%s: max downtime -> %" G_GUINT64_FORMAT " ms", m->what, action.downtime_ms);
    else
        g_message("%s: completion deadline passed: %s", m->what,
                  vmig_virt_action_kind_to_string(action.kind));

    TaskData *t = task_data_new(m);
    t->action = action;
    GTask *task = g_task_new(NULL, NULL, action_done, NULL);
    g_task_set_task_data(task, t, task_data_free);
    g_task_run_in_thread(task, action_thread);
    g_object_unref(task);
}

static void
poll_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
    TaskData *t = task_data;
    GError *error = NULL;
    if (t->monitor->provider->get_stats(t->data, &t->stats, &error))
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_error(task, error);
}

static void
poll_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = G_TASK(res);
    TaskData *t = g_task_get_task_data(task);
    VmigVirtMonitor *m = t->monitor;
    g_autoptr(GError) error = NULL;
    gboolean ok = g_task_propagate_boolean(task, &error);

    if (m->freed || t->generation != m->generation)
        return; /* stopped meanwhile (job-completed event, stop, free) */
    m->poll_in_flight = FALSE;

    guint64 now = monitor_now(m);
    VmigVirtAction action;
    if (ok) {
        action = vmig_virt_decider_on_stats(&m->decider, now, &t->stats);
        if (m->on_sample)
            m->on_sample(m, &t->stats, m->user_data);
    } else {
        g_info("%s: GetJobStats failed (%u in a row): %s", m->what,
               m->decider.consecutive_errors + 1, error->message);
        action = vmig_virt_decider_on_error(&m->decider, now);
    }
    carry_out(m, action);
}

static gboolean
on_timer(gpointer user_data)
{
    VmigVirtMonitor *m = user_data;
    /* One poll at a time: a slow libvirtd skips ticks instead of piling up calls. */
    if (m->poll_in_flight)
        return G_SOURCE_CONTINUE;
    m->poll_in_flight = TRUE;
    m->polls++;
    TaskData *t = task_data_new(m);
    GTask *task = g_task_new(NULL, NULL, poll_done, NULL);
    g_task_set_task_data(task, t, task_data_free);
    g_task_run_in_thread(task, poll_thread);
    g_object_unref(task);
    return G_SOURCE_CONTINUE;
}

VmigVirtMonitor *
vmig_virt_monitor_new(const VmigVirtMonitorConfig *config, const VmigVirtStatsProvider *provider,
                      gpointer provider_data, const char *what)
{
    VmigVirtMonitor *m = g_new0(VmigVirtMonitor, 1);
    m->ref = 1;
    vmig_virt_decider_init(&m->decider, config);
    m->provider = provider;
    m->provider_data = provider_data;
    m->what = g_strdup(what ? what : "migration");
    return m;
}

void
vmig_virt_monitor_free(VmigVirtMonitor *m)
{
    if (!m)
        return;
    disarm_timer(m);
    m->freed = TRUE;
    m->generation++;
    monitor_unref(m);
}

void
vmig_virt_monitor_set_callbacks(VmigVirtMonitor *m, VmigVirtMonitorSampleFunc on_sample,
                                VmigVirtMonitorActionFunc on_action, gpointer user_data)
{
    m->on_sample = on_sample;
    m->on_action = on_action;
    m->user_data = user_data;
}

void
vmig_virt_monitor_set_owner_hook(VmigVirtMonitor *m, VmigVirtMonitorActionFunc hook, gpointer data)
{
    m->owner_hook = hook;
    m->owner_data = data;
}

void
vmig_virt_monitor_start(VmigVirtMonitor *m)
{
    if (m->timer || m->decider.phase == VMIG_VIRT_MONITOR_STOPPED)
        return;
    if (!m->context)
        m->context = g_main_context_ref_thread_default();
    m->timer = g_timeout_source_new(m->decider.config.poll_interval_ms);
    g_source_set_callback(m->timer, on_timer, m, NULL);
    g_source_set_name(m->timer, "vmig-virt-monitor");
    g_source_attach(m->timer, m->context);
}

void
vmig_virt_monitor_job_completed(VmigVirtMonitor *m)
{
    carry_out(m, vmig_virt_decider_on_job_completed(&m->decider));
    /* also when the decider had already stopped: no poll result is wanted now */
    disarm_timer(m);
    m->generation++;
}

void
vmig_virt_monitor_stop(VmigVirtMonitor *m)
{
    disarm_timer(m);
    m->generation++;
    m->poll_in_flight = FALSE;
    m->decider.phase = VMIG_VIRT_MONITOR_STOPPED;
}

gboolean
vmig_virt_monitor_request_abort(VmigVirtMonitor *m, GError **error)
{
    VmigVirtAction action;
    GError *local = NULL;
    if (!vmig_virt_decider_request_abort(&m->decider, &action, &local)) {
        g_message("%s: abort refused: %s", m->what, local->message);
        g_propagate_error(error, local);
        return FALSE;
    }
    carry_out(m, action);
    return TRUE;
}

gboolean
vmig_virt_monitor_is_polling(const VmigVirtMonitor *m)
{
    return m->timer != NULL;
}

const VmigVirtDecider *
vmig_virt_monitor_get_decider(const VmigVirtMonitor *m)
{
    return &m->decider;
}

guint
vmig_virt_monitor_poll_count(const VmigVirtMonitor *m)
{
    return m->polls;
}
