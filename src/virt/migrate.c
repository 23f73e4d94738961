/* migrate.c - one migration: virDomainMigrateToURI3 on its own thread (it blocks
 * for the whole migration, so not in GTask's shared pool), the monitor and the
 * job events on the main loop, and the outcome derived when the call returns
 * (see vmig/virt.h). */
#define G_LOG_DOMAIN "vmig-virt"
#include "virt-private.h"

#include <libvirt/virterror.h>

struct _VmigVirtMigration {
    VmigVirtDomain *dom; /* referenced */
    VmigVirtMigrateCall *call;
    VmigVirtMonitor *monitor;
    GMainContext *context;
    VmigVirtMigrationDoneFunc done;
    gpointer user_data;
    GThread *thread;
    /* set on the main thread when the monitor's action succeeded, read by the
     * worker after the call returned */
    gint paused_by_monitor;
    gint postcopy_started;
    /* results of the worker, read on the main thread after it handed over */
    int call_rc;
    char *call_error;
    gboolean call_aborted;
    gboolean have_completed;
    VmigVirtJobStats completed;
    VmigVirtDomainState source_state;
    char *resume_note;
    /* the job-completed event's copy of the final figures */
    gboolean have_event_stats;
    VmigVirtJobStats event_stats;
    gint64 call_us;
    gboolean finished;
};

static virTypedParameterPtr
to_typed_params(const VmigVirtMigrateCall *call, int *nparams)
{
    virTypedParameterPtr params = NULL;
    int n = 0, max = 0;
    for (guint i = 0; i < call->params->len; i++) {
        const VmigVirtParam *p = &g_array_index(call->params, VmigVirtParam, i);
        int rc = 0;
        switch (p->type) {
        case VMIG_VIRT_PARAM_STRING:
            rc = virTypedParamsAddString(&params, &n, &max, p->name, p->s);
            break;
        case VMIG_VIRT_PARAM_INT:
            rc = virTypedParamsAddInt(&params, &n, &max, p->name, p->i);
            break;
        case VMIG_VIRT_PARAM_ULLONG:
            rc = virTypedParamsAddULLong(&params, &n, &max, p->name, p->ul);
            break;
        }
        if (rc < 0) {
            virTypedParamsFree(params, n);
            return NULL;
        }
    }
    *nparams = n;
    return params;
}

static gboolean finish_on_main(gpointer data);

static gpointer
migrate_thread(gpointer data)
{
    VmigVirtMigration *m = data;
    virDomainPtr dom = vmig_virt_domain_get_ptr(m->dom);
    int n = 0;
    virTypedParameterPtr params = to_typed_params(m->call, &n);
    gint64 t0 = g_get_monotonic_time();

    if (!params && m->call->params->len) {
        m->call_rc = -1;
        m->call_error = g_strdup(virGetLastErrorMessage());
    } else {
        m->call_rc =
            virDomainMigrateToURI3(dom, m->call->dconnuri, params, n, (unsigned int)m->call->flags);
        if (m->call_rc < 0) {
            virErrorPtr err = virGetLastError();
            m->call_error = g_strdup(virGetLastErrorMessage());
            m->call_aborted = err && err->code == VIR_ERR_OPERATION_ABORTED;
        }
    }
    m->call_us = g_get_monotonic_time() - t0;
    virTypedParamsFree(params, n);

    g_autoptr(GError) error = NULL;
    m->have_completed = vmig_virt_domain_job_stats(m->dom, TRUE, &m->completed, &error);
    if (!m->have_completed)
        g_info("%s: no completed-job stats: %s", vmig_virt_domain_what(m->dom), error->message);
    else if (m->completed.type == VMIG_VIRT_JOB_NONE)
        m->have_completed = FALSE; /* none kept (libvirt keeps none after a cancel) */
    g_clear_error(&error);
    if (!vmig_virt_domain_get_state(m->dom, &m->source_state, &error)) {
        m->source_state = VMIG_VIRT_DOMAIN_UNKNOWN;
        g_clear_error(&error);
    }
    /* A pre-copy that we paused to complete and that then failed or was aborted
     * leaves the only copy of the guest stopped here: run it again. Never after
     * post-copy (vmig_virt_domain_resume refuses that too). */
    if (m->call_rc < 0 && g_atomic_int_get(&m->paused_by_monitor) &&
        !g_atomic_int_get(&m->postcopy_started) && m->source_state == VMIG_VIRT_DOMAIN_PAUSED) {
        if (vmig_virt_domain_resume(m->dom, &error))
            m->resume_note = g_strdup("source resumed after the paused migration ended");
        else
            m->resume_note = g_strdup_printf("source left paused: %s", error->message);
    }
    g_main_context_invoke_full(m->context, G_PRIORITY_DEFAULT, finish_on_main, m, NULL);
    return NULL;
}

static gboolean
finish_on_main(gpointer data)
{
    VmigVirtMigration *m = data;
    const VmigVirtDecider *d = vmig_virt_monitor_get_decider(m->monitor);

    vmig_virt_monitor_stop(m->monitor);
    vmig_virt_domain_unwatch_jobs(m->dom);
    m->finished = TRUE;

    VmigVirtOutcomeInput in = {
        .call_rc = m->call_rc,
        .call_error = m->call_error,
        .call_aborted = m->call_aborted,
        .completed =
            m->have_completed ? &m->completed : (m->have_event_stats ? &m->event_stats : NULL),
        .abort_cause = d->abort_cause,
        .postcopy_started = d->postcopy_started,
        .paused_by_monitor = d->paused_by_monitor,
        .source_state = m->source_state,
    };
    g_autoptr(VmigVirtOutcome) o = vmig_virt_outcome_derive(&in);
    o->completed_event = m->have_event_stats;
    if (m->resume_note) {
        char *detail = o->detail ? g_strdup_printf("%s; %s", o->detail, m->resume_note)
                                 : g_strdup(m->resume_note);
        g_free(o->detail);
        o->detail = detail;
    }
    g_message("%s: migration %s%s%s (call %" G_GINT64_FORMAT " ms, downtime %" G_GUINT64_FORMAT
              " ms, %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " iterations%s%s)",
              vmig_virt_domain_what(m->dom), vmig_virt_outcome_kind_to_string(o->kind),
              o->reason[0] ? ": " : "", o->reason, m->call_us / 1000, o->downtime_ms,
              o->data_processed, o->iterations, o->postcopy_used ? ", post-copy" : "",
              o->paused_to_complete ? ", paused" : "");
    if (o->detail)
        g_message("%s: detail: %s", vmig_virt_domain_what(m->dom), o->detail);
    if (m->done)
        m->done(m, o, m->user_data);
    return G_SOURCE_REMOVE;
}

static void
on_monitor_action(VmigVirtMonitor *mon, const VmigVirtAction *action, gboolean ok,
                  const char *error_text, gpointer user_data)
{
    VmigVirtMigration *m = user_data;
    if (ok && action->kind == VMIG_VIRT_ACTION_START_POSTCOPY)
        g_atomic_int_set(&m->postcopy_started, 1);
    else if (ok && action->kind == VMIG_VIRT_ACTION_SUSPEND)
        g_atomic_int_set(&m->paused_by_monitor, 1);
}

static void
on_job_completed(VmigVirtDomain *dom, const VmigVirtJobStats *stats, gpointer user_data)
{
    VmigVirtMigration *m = user_data;
    m->event_stats = *stats;
    m->have_event_stats = TRUE;
    g_debug("%s: job-completed event", vmig_virt_domain_what(dom));
    vmig_virt_monitor_job_completed(m->monitor);
}

static void
on_iteration(VmigVirtDomain *dom, guint iteration, gpointer user_data)
{
    g_debug("%s: migration iteration %u", vmig_virt_domain_what(dom), iteration);
}

VmigVirtMigration *
vmig_virt_migration_start(VmigVirtDomain *dom, const VmigVirtMigrateSettings *settings,
                          const VmigVirtMonitorConfig *config, VmigVirtMigrationDoneFunc done,
                          gpointer user_data, GError **error)
{
    if (!vmig_virt_monitor_config_validate(config, error))
        return NULL;
    g_autoptr(VmigVirtMigrateCall) call =
        vmig_virt_migrate_call_build(settings, vmig_virt_domain_what(dom), error);
    if (!call)
        return NULL;

    VmigVirtMigration *m = g_new0(VmigVirtMigration, 1);
    m->dom = vmig_virt_domain_ref(dom);
    m->call = g_steal_pointer(&call);
    m->context = g_main_context_ref_thread_default();
    m->done = done;
    m->user_data = user_data;
    m->monitor = vmig_virt_monitor_new(config, &vmig_virt_domain_provider, m->dom,
                                       vmig_virt_domain_what(dom));
    vmig_virt_monitor_set_owner_hook(m->monitor, on_monitor_action, m);

    g_autoptr(GError) werr = NULL;
    if (!vmig_virt_domain_watch_jobs(m->dom, m->context, on_job_completed, on_iteration, m, &werr))
        g_warning("%s: polling only: %s", vmig_virt_domain_what(dom), werr->message);

    g_autofree char *desc = vmig_virt_migrate_call_describe(m->call);
    g_message("%s: virDomainMigrateToURI3 %s", vmig_virt_domain_what(dom), desc);

    m->thread = g_thread_try_new("vmig-migrate", migrate_thread, m, error);
    if (!m->thread) {
        vmig_virt_migration_free(m);
        return NULL;
    }
    vmig_virt_monitor_start(m->monitor);
    return m;
}

VmigVirtMigration *
vmig_virt_migration_resume(VmigVirtDomain *dom, const VmigVirtMigrateSettings *settings,
                           const VmigVirtMonitorConfig *config, VmigVirtMigrationDoneFunc done,
                           gpointer user_data, GError **error)
{
    VmigVirtMigrateSettings s = *settings;
    VmigVirtMonitorConfig c = *config;
    s.postcopy_resume = TRUE;
    c.resume_postcopy = TRUE;
    VmigVirtMigration *m = vmig_virt_migration_start(dom, &s, &c, done, user_data, error);
    if (m) /* the outcome of a failed resume is post-copy failed, never an abort */
        g_atomic_int_set(&m->postcopy_started, 1);
    return m;
}

void
vmig_virt_migration_free(VmigVirtMigration *m)
{
    if (!m)
        return;
    if (m->thread)
        g_thread_join(m->thread); /* documented: only after done */
    vmig_virt_monitor_free(m->monitor);
    vmig_virt_domain_unwatch_jobs(m->dom);
    vmig_virt_domain_free(m->dom);
    vmig_virt_migrate_call_free(m->call);
    g_main_context_unref(m->context);
    g_free(m->call_error);
    g_free(m->resume_note);
    g_free(m);
}

gboolean
vmig_virt_migration_request_abort(VmigVirtMigration *m, GError **error)
{
    if (m->finished) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_STATE,
                    "%s: the migration is over; nothing to abort", vmig_virt_domain_what(m->dom));
        return FALSE;
    }
    return vmig_virt_monitor_request_abort(m->monitor, error);
}

VmigVirtMonitor *
vmig_virt_migration_get_monitor(VmigVirtMigration *m)
{
    return m->monitor;
}
