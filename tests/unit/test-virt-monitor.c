/* test-virt-monitor.c - the monitor runner on a real GLib main loop with a
 * scripted stats provider (no libvirt): B12 runs A/B/C, B13 S1 end to end, B14
 * steps 1-3, and freeing while a poll is in flight. Scripted time: each
 * GetJobStats call is one second of fake time, polled every few real ms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "vmig/virt.h"
#include "../../src/virt/virt-private.h"

#define GIB  ((guint64)1 << 30)
#define MIB  ((guint64)1 << 20)
#define G(x) ((guint64)((x) * (double)GIB))

typedef struct Fake Fake;
/* Fills the sample of call @k (fake time k s) or fails. */
typedef gboolean (*FakeGen)(Fake *f, guint k, VmigVirtJobStats *out, GError **error);

struct Fake {
    GMutex lock;
    FakeGen gen;
    guint calls;    /* GetJobStats calls */
    guint64 now_ms; /* fake clock: time of the last sample */
    gint aborts, postcopies, suspends, downtimes;
    gint inflight;
    guint sleep_ms;           /* make get_stats slow */
    gboolean abort_times_out; /* abort sent, but the job outlives the bounded wait */
    guint aborted_at;
    /* scenario state */
    gboolean aborted;
    gboolean error_mode;
    guint event_at; /* B12 run B: deliver the job-completed event at this sample */
    guint calls_at_event;
    VmigVirtMonitor *monitor;
    guint actions_ok, actions_failed;
    VmigVirtActionKind last_action;
};

static gboolean
fake_get_stats(gpointer data, VmigVirtJobStats *out, GError **error)
{
    Fake *f = data;
    g_atomic_int_inc(&f->inflight);
    if (f->sleep_ms)
        g_usleep(f->sleep_ms * 1000);
    g_mutex_lock(&f->lock);
    guint k = f->calls++;
    f->now_ms = (guint64)k * 1000;
    memset(out, 0, sizeof(*out));
    gboolean ok = f->gen(f, k, out, error);
    g_mutex_unlock(&f->lock);
    g_atomic_int_dec_and_test(&f->inflight);
    return ok;
}

static gboolean
fake_abort(gpointer data, GError **error)
{
    Fake *f = data;
    g_mutex_lock(&f->lock);
    f->aborts++;
    f->aborted = TRUE;
    f->aborted_at = f->calls;
    gboolean times_out = f->abort_times_out;
    g_mutex_unlock(&f->lock);
    if (times_out) {
        g_set_error_literal(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_TIMEOUT,
                            "ns1/vm1: migration job still running 5000 ms after virDomainAbortJob");
        return FALSE;
    }
    return TRUE;
}

static gboolean
fake_postcopy(gpointer data, GError **error)
{
    Fake *f = data;
    g_atomic_int_inc(&f->postcopies);
    return TRUE;
}

static gboolean
fake_suspend(gpointer data, GError **error)
{
    Fake *f = data;
    g_atomic_int_inc(&f->suspends);
    return TRUE;
}

static gboolean
fake_downtime(gpointer data, guint64 ms, GError **error)
{
    Fake *f = data;
    g_atomic_int_inc(&f->downtimes);
    return TRUE;
}

static guint64
fake_now(gpointer data)
{
    Fake *f = data;
    g_mutex_lock(&f->lock);
    guint64 t = f->now_ms;
    g_mutex_unlock(&f->lock);
    return t;
}

static const VmigVirtStatsProvider fake_provider = {
    .get_stats = fake_get_stats,
    .abort_job = fake_abort,
    .start_postcopy = fake_postcopy,
    .suspend = fake_suspend,
    .set_max_downtime = fake_downtime,
    .now_ms = fake_now,
};

static void
on_action(VmigVirtMonitor *m, const VmigVirtAction *a, gboolean ok, const char *err, gpointer ud)
{
    Fake *f = ud;
    if (ok)
        f->actions_ok++;
    else
        f->actions_failed++;
    f->last_action = a->kind;
}

static void
on_sample(VmigVirtMonitor *m, const VmigVirtJobStats *s, gpointer ud)
{
    Fake *f = ud;
    if (f->event_at && f->calls == f->event_at && !f->calls_at_event) {
        /* the job-completed event arrives (before MigrateToURI3 returns) */
        f->calls_at_event = f->calls;
        vmig_virt_monitor_job_completed(m);
    }
}

typedef gboolean (*Cond)(Fake *f);

static gboolean
timed_out(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Iterates the default context until @cond holds or @limit_ms real time passed. */
static gboolean
run_until(Fake *f, Cond cond, guint limit_ms)
{
    gboolean out = FALSE;
    guint id = g_timeout_add(limit_ms, timed_out, &out);
    while (!out && !(cond && cond(f)))
        g_main_context_iteration(NULL, TRUE);
    if (!out)
        g_source_remove(id);
    return !out;
}

static gboolean
idle_and_quiet(Fake *f)
{
    return g_atomic_int_get(&f->inflight) == 0;
}

static void
drain(Fake *f)
{
    /* let worker threads hand back their results before the fake goes away */
    run_until(f, idle_and_quiet, 2000);
    for (int i = 0; i < 50; i++) {
        g_usleep(1000);
        while (g_main_context_iteration(NULL, FALSE))
            ;
    }
}

static Fake *
fake_new(FakeGen gen)
{
    Fake *f = g_new0(Fake, 1);
    g_mutex_init(&f->lock);
    f->gen = gen;
    return f;
}

static void
fake_free(Fake *f)
{
    g_mutex_clear(&f->lock);
    g_free(f);
}

static VmigVirtMonitor *
monitor_for(Fake *f, VmigVirtMonitorConfig *c)
{
    VmigVirtMonitor *m = vmig_virt_monitor_new(c, &fake_provider, f, "ns1/vm1");
    vmig_virt_monitor_set_callbacks(m, on_sample, on_action, f);
    f->monitor = m;
    return m;
}

static void
mem_sample(VmigVirtJobStats *s, guint64 total, guint64 remaining, guint64 processed)
{
    s->type = VMIG_VIRT_JOB_UNBOUNDED;
    s->has_mem = TRUE;
    s->mem_total = total;
    s->mem_remaining = remaining;
    s->mem_processed = processed;
}

/* ---- B13 S1 end to end: stalled job aborted once, "no progress" ---- */

static gboolean
gen_s1(Fake *f, guint k, VmigVirtJobStats *s, GError **error)
{
    static const double rem[] = {4.0, 3.0, 2.0, 1.2, 0.2};
    if (f->aborted) {
        s->type = VMIG_VIRT_JOB_CANCELLED;
        return TRUE;
    }
    double r = k < G_N_ELEMENTS(rem) ? rem[k] : 0.2;
    mem_sample(s, G(4), G(r), G(4) - G(r));
    return TRUE;
}

static gboolean
stopped(Fake *f)
{
    return !vmig_virt_monitor_is_polling(f->monitor) && g_atomic_int_get(&f->inflight) == 0 &&
           vmig_virt_monitor_get_decider(f->monitor)->phase == VMIG_VIRT_MONITOR_STOPPED;
}

static void
test_b13_s1_runner(void **state)
{
    Fake *f = fake_new(gen_s1);
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.poll_interval_ms = 1;
    VmigVirtMonitor *m = monitor_for(f, &c);
    vmig_virt_monitor_start(m);
    assert_true(vmig_virt_monitor_is_polling(m));
    assert_true(run_until(f, stopped, 20000));

    assert_int_equal(f->aborts, 1);
    const VmigVirtDecider *d = vmig_virt_monitor_get_decider(m);
    assert_int_equal(d->abort_cause, VMIG_VIRT_ABORT_NO_PROGRESS);
    /* abort decided on the sample at t=154 s (call 155); a later sample saw the
     * cancelled job (the abort runs concurrently with the next poll) */
    assert_in_range(f->calls, 156, 157);
    assert_int_equal(vmig_virt_monitor_poll_count(m), f->calls);
    vmig_virt_monitor_free(m);
    drain(f);
    fake_free(f);
}

/* ---- B15: the abort's bounded wait runs out: no second abort, cause kept ---- */

static gboolean
gen_slow_cancel(Fake *f, guint k, VmigVirtJobStats *s, GError **error)
{
    if (f->aborted && k >= f->aborted_at + 30) {
        s->type = VMIG_VIRT_JOB_CANCELLED;
        return TRUE;
    }
    mem_sample(s, G(4), G(1), G(3)); /* stalled from the start */
    return TRUE;
}

static void
test_abort_wait_times_out(void **state)
{
    Fake *f = fake_new(gen_slow_cancel);
    f->abort_times_out = TRUE;
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.poll_interval_ms = 1;
    c.progress_timeout_s = 10;
    VmigVirtMonitor *m = monitor_for(f, &c);
    vmig_virt_monitor_start(m);
    assert_true(run_until(f, stopped, 20000));
    /* 30 more stalled samples after the abort: still exactly one abort */
    assert_int_equal(f->aborts, 1);
    assert_int_equal(f->actions_failed, 1); /* the wait's timeout is reported */
    const VmigVirtDecider *d = vmig_virt_monitor_get_decider(m);
    assert_int_equal(d->abort_cause, VMIG_VIRT_ABORT_NO_PROGRESS);
    vmig_virt_monitor_free(m);
    drain(f);
    fake_free(f);
}

/* ---- B12 run B: the job-completed event stops polling at once; no CPU after ---- */

static gboolean
gen_b12_b(Fake *f, guint k, VmigVirtJobStats *s, GError **error)
{
    if (f->calls_at_event) {
        g_set_error_literal(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_LIBVIRT,
                            "Requested operation is not valid: domain is not running");
        return FALSE;
    }
    mem_sample(s, G(4.1), G(4.1) - k * G(0.5), k * G(0.5));
    return TRUE;
}

static void
test_b12_run_b_event_stops_polling(void **state)
{
    Fake *f = fake_new(gen_b12_b);
    f->event_at = 5;
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.poll_interval_ms = 5;
    VmigVirtMonitor *m = monitor_for(f, &c);
    vmig_virt_monitor_start(m);
    assert_true(run_until(f, stopped, 5000));
    assert_int_equal(f->calls_at_event, 5);
    assert_int_equal(f->last_action, VMIG_VIRT_ACTION_STOP_POLLING);

    /* 40 poll intervals later: not one more GetJobStats call, no timer armed */
    run_until(f, NULL, 200);
    assert_int_equal(f->calls, 5);
    assert_int_equal(vmig_virt_monitor_poll_count(m), 5);
    assert_false(vmig_virt_monitor_is_polling(m));
    assert_int_equal(f->aborts, 0);
    vmig_virt_monitor_free(m);
    drain(f);
    fake_free(f);
}

/* ---- B12 run C: one transient failure retried; 3 in a row stop polling ---- */

static gboolean
gen_b12_c(Fake *f, guint k, VmigVirtJobStats *s, GError **error)
{
    if (k == 2 || f->error_mode) {
        g_set_error_literal(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_LIBVIRT,
                            "internal error: unable to execute QEMU command 'query-migrate'");
        return FALSE;
    }
    mem_sample(s, G(4), G(4) - k * MIB, k * MIB);
    return TRUE;
}

static gboolean
ten_calls(Fake *f)
{
    return f->calls >= 10 && g_atomic_int_get(&f->inflight) == 0;
}

static void
test_b12_run_c_transient_errors(void **state)
{
    Fake *f = fake_new(gen_b12_c);
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.poll_interval_ms = 2;
    VmigVirtMonitor *m = monitor_for(f, &c);
    vmig_virt_monitor_start(m);
    assert_true(run_until(f, ten_calls, 5000));
    /* the failure at call 2 was retried: still polling, no failure recorded */
    assert_true(vmig_virt_monitor_is_polling(m));
    const VmigVirtDecider *d = vmig_virt_monitor_get_decider(m);
    assert_int_equal(d->phase, VMIG_VIRT_MONITOR_PRECOPY);
    assert_int_equal(d->consecutive_errors, 0);

    g_mutex_lock(&f->lock);
    f->error_mode = TRUE;
    guint base = f->calls;
    g_mutex_unlock(&f->lock);
    assert_true(run_until(f, stopped, 5000));
    assert_int_equal(f->calls - base, 3);
    assert_int_equal(d->phase, VMIG_VIRT_MONITOR_STOPPED);
    assert_int_equal(f->aborts, 0);
    vmig_virt_monitor_free(m);
    drain(f);
    fake_free(f);
}

/* ---- B12 run A: user abort; the job reports cancelled ---- */

static gboolean
gen_b12_a(Fake *f, guint k, VmigVirtJobStats *s, GError **error)
{
    if (f->aborted) {
        s->type = VMIG_VIRT_JOB_CANCELLED;
        return TRUE;
    }
    mem_sample(s, G(4), G(4) - k * G(0.1), k * G(0.1));
    return TRUE;
}

static gboolean
three_calls(Fake *f)
{
    return f->calls >= 3;
}

static void
test_b12_run_a_user_abort(void **state)
{
    Fake *f = fake_new(gen_b12_a);
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.poll_interval_ms = 2;
    VmigVirtMonitor *m = monitor_for(f, &c);
    vmig_virt_monitor_start(m);
    assert_true(run_until(f, three_calls, 5000));
    g_autoptr(GError) error = NULL;
    assert_true(vmig_virt_monitor_request_abort(m, &error));
    assert_true(run_until(f, stopped, 5000));
    assert_int_equal(f->aborts, 1);
    const VmigVirtDecider *d = vmig_virt_monitor_get_decider(m);
    assert_int_equal(d->abort_cause, VMIG_VIRT_ABORT_USER);
    /* over: a second request is refused as such */
    assert_false(vmig_virt_monitor_request_abort(m, &error));
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_STATE));

    /* the verdict: the call's consequential error is detail, the reason is "aborted" */
    VmigVirtJobStats cancelled = {.type = VMIG_VIRT_JOB_CANCELLED};
    VmigVirtOutcomeInput in = {.call_rc = -1,
                               .call_error = "operation failed: domain is not running",
                               .completed = &cancelled,
                               .abort_cause = d->abort_cause,
                               .source_state = VMIG_VIRT_DOMAIN_RUNNING};
    g_autoptr(VmigVirtOutcome) o = vmig_virt_outcome_derive(&in);
    assert_int_equal(o->kind, VMIG_VIRT_OUTCOME_ABORTED);
    assert_string_equal(o->reason, "aborted");
    assert_string_equal(o->detail, "operation failed: domain is not running");
    vmig_virt_monitor_free(m);
    drain(f);
    fake_free(f);
}

/* ---- B14 through the runner: switch, refused abort, flat progress, no cancel ---- */

static gboolean
gen_b14(Fake *f, guint k, VmigVirtJobStats *s, GError **error)
{
    if (k >= 400) {
        s->type = VMIG_VIRT_JOB_COMPLETED;
        return TRUE;
    }
    /* progressing until the switch at t=100 s, flat afterwards */
    guint64 p = MIN(k, 100) * 10 * MIB;
    mem_sample(s, G(4), G(1), p);
    return TRUE;
}

static gboolean
postcopy_switched(Fake *f)
{
    return f->actions_ok >= 1 && f->last_action == VMIG_VIRT_ACTION_START_POSTCOPY;
}

static void
test_b14_runner(void **state)
{
    Fake *f = fake_new(gen_b14);
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.poll_interval_ms = 1;
    c.completion_timeout_per_gib_s = 25; /* 4 GiB: deadline t=100 s */
    c.timeout_action = VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY;
    c.allow_postcopy = TRUE;
    VmigVirtMonitor *m = monitor_for(f, &c);
    vmig_virt_monitor_start(m);
    assert_true(run_until(f, postcopy_switched, 10000));
    assert_int_equal(f->postcopies, 1);

    g_autoptr(GError) error = NULL;
    assert_false(vmig_virt_monitor_request_abort(m, &error));
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_POSTCOPY));
    assert_string_equal(error->message, "abort not possible during post-copy");

    assert_true(run_until(f, stopped, 20000));
    /* 300 s of flat progress after the switch: never a cancel */
    assert_int_equal(f->aborts, 0);
    assert_int_equal(f->postcopies, 1);
    assert_int_equal(f->suspends, 0);
    assert_true(vmig_virt_monitor_get_decider(m)->postcopy_started);
    vmig_virt_monitor_free(m);
    drain(f);
    fake_free(f);
}

/* ---- B14 recovery: a resumed post-copy through the runner ---- */

static gboolean
gen_resume(Fake *f, guint k, VmigVirtJobStats *s, GError **error)
{
    if (k < 3) { /* Begin/Prepare of the resume: no job yet */
        s->type = VMIG_VIRT_JOB_NONE;
        return TRUE;
    }
    if (k >= 300) {
        s->type = VMIG_VIRT_JOB_COMPLETED;
        return TRUE;
    }
    mem_sample(s, G(1), G(0.5), G(0.5)); /* stalled: a slow page-request path */
    return TRUE;
}

static void
test_resume_runner(void **state)
{
    Fake *f = fake_new(gen_resume);
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.poll_interval_ms = 1;
    c.progress_timeout_s = 10;
    c.completion_timeout_per_gib_s = 3;
    c.timeout_action = VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY;
    c.allow_postcopy = TRUE;
    c.resume_postcopy = TRUE;
    VmigVirtMonitor *m = monitor_for(f, &c);
    vmig_virt_monitor_start(m);
    g_autoptr(GError) error = NULL;
    assert_false(vmig_virt_monitor_request_abort(m, &error));
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_POSTCOPY));
    assert_true(run_until(f, stopped, 20000));
    /* 300 s stalled, deadline long passed: no abort, no second switch, no pause */
    assert_int_equal(f->aborts, 0);
    assert_int_equal(f->postcopies, 0);
    assert_int_equal(f->suspends, 0);
    /* the only action reported is the end of polling */
    assert_int_equal(f->actions_failed, 0);
    assert_int_equal(f->actions_ok, 1);
    assert_int_equal(f->last_action, VMIG_VIRT_ACTION_STOP_POLLING);
    assert_int_equal(vmig_virt_monitor_get_decider(m)->phase, VMIG_VIRT_MONITOR_STOPPED);
    vmig_virt_monitor_free(m);
    drain(f);
    fake_free(f);
}

/* ---- the migration's owner hook sees actions whatever callbacks a caller set ---- */

static void
owner_hook(VmigVirtMonitor *m, const VmigVirtAction *a, gboolean ok, const char *err, gpointer ud)
{
    if (ok && a->kind == VMIG_VIRT_ACTION_ABORT)
        (*(int *)ud)++;
}

static gboolean
one_action(Fake *f)
{
    return f->actions_ok >= 1;
}

static void
test_owner_hook_survives_set_callbacks(void **state)
{
    Fake *f = fake_new(gen_b12_a);
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.poll_interval_ms = 2;
    int owner_saw = 0;
    VmigVirtMonitor *m = vmig_virt_monitor_new(&c, &fake_provider, f, "ns1/vm1");
    vmig_virt_monitor_set_owner_hook(m, owner_hook, &owner_saw);
    /* a caller (the controller) replaces the public callbacks afterwards */
    vmig_virt_monitor_set_callbacks(m, on_sample, on_action, f);
    f->monitor = m;
    vmig_virt_monitor_start(m);
    assert_true(run_until(f, three_calls, 5000));
    assert_true(vmig_virt_monitor_request_abort(m, NULL));
    assert_true(run_until(f, one_action, 5000));
    assert_int_equal(owner_saw, 1);
    assert_int_equal(f->last_action, VMIG_VIRT_ACTION_ABORT);
    vmig_virt_monitor_free(m);
    drain(f);
    fake_free(f);
}

/* ---- freeing while a poll runs on a worker thread ---- */

static gboolean
one_inflight(Fake *f)
{
    return g_atomic_int_get(&f->inflight) > 0;
}

static void
test_free_with_poll_in_flight(void **state)
{
    Fake *f = fake_new(gen_b12_a);
    f->sleep_ms = 100;
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.poll_interval_ms = 1;
    VmigVirtMonitor *m = monitor_for(f, &c);
    vmig_virt_monitor_start(m);
    assert_true(run_until(f, one_inflight, 5000));
    vmig_virt_monitor_free(m);
    drain(f);
    assert_int_equal(f->calls, 1);
    fake_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b13_s1_runner),
        cmocka_unit_test(test_b12_run_b_event_stops_polling),
        cmocka_unit_test(test_abort_wait_times_out),
        cmocka_unit_test(test_b12_run_c_transient_errors),
        cmocka_unit_test(test_b12_run_a_user_abort),
        cmocka_unit_test(test_b14_runner),
        cmocka_unit_test(test_resume_runner),
        cmocka_unit_test(test_owner_hook_survives_set_callbacks),
        cmocka_unit_test(test_free_with_poll_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
