/* test-virt-decide.c - the monitor's pure decisions and the outcome derivation:
 * field cases B13 (S1-S4 with the case's numbers), B14 (steps 2, 3, run B) and
 * B12 (runs A/B/C at the decision and outcome level). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "vmig/virt.h"

#define GIB  ((guint64)1 << 30)
#define MIB  ((guint64)1 << 20)
#define G(x) ((guint64)((x) * (double)GIB))

typedef void (*SampleGen)(guint64 t_s, VmigVirtJobStats *out);

typedef struct {
    guint64 t_ms;
    VmigVirtAction action;
} Taken;

/* Feeds one sample a second from t=0 to @end_s (inclusive) and records every action
 * other than NONE; each action is reported carried out successfully. Stops after
 * STOP_POLLING. */
static GArray *
run(VmigVirtDecider *d, SampleGen gen, guint64 end_s)
{
    GArray *taken = g_array_new(FALSE, TRUE, sizeof(Taken));
    for (guint64 t = 0; t <= end_s; t++) {
        VmigVirtJobStats s = {0};
        gen(t, &s);
        VmigVirtAction a = vmig_virt_decider_on_stats(d, t * 1000, &s);
        if (a.kind == VMIG_VIRT_ACTION_NONE)
            continue;
        Taken tk = {t * 1000, a};
        g_array_append_val(taken, tk);
        vmig_virt_decider_action_done(d, &a, TRUE);
        if (a.kind == VMIG_VIRT_ACTION_STOP_POLLING)
            break;
    }
    return taken;
}

static void
b13_config(VmigVirtMonitorConfig *c)
{
    vmig_virt_monitor_config_init(c);
    c->poll_interval_ms = 1000;
    c->progress_timeout_s = 150;
    c->completion_timeout_per_gib_s = 150;
}

static void
mem_sample(VmigVirtJobStats *s, guint64 total, guint64 remaining, guint64 processed)
{
    s->type = VMIG_VIRT_JOB_UNBOUNDED;
    s->has_mem = TRUE;
    s->mem_total = total;
    s->mem_remaining = remaining;
    s->mem_processed = processed;
    s->data_total = total;
    s->data_remaining = remaining;
    s->data_processed = processed;
}

/* B13 S1: remaining 4.0G,3.0G,2.0G,1.2G,0.2G, then 0.2G forever; processed flat. */
static void
gen_s1(guint64 t, VmigVirtJobStats *s)
{
    static const double rem[] = {4.0, 3.0, 2.0, 1.2, 0.2};
    double r = t < G_N_ELEMENTS(rem) ? rem[t] : 0.2;
    mem_sample(s, G(4), G(r), G(4) - G(r));
}

static void
test_b13_s1_stalled_aborted_after_progress_timeout(void **state)
{
    VmigVirtMonitorConfig c;
    b13_config(&c);
    VmigVirtDecider d;
    vmig_virt_decider_init(&d, &c);
    g_autoptr(GArray) taken = run(&d, gen_s1, 1000);

    /* last progress at t=4 s; 150 s later, one abort "no progress", nothing else */
    assert_int_equal(taken->len, 1);
    Taken *t = &g_array_index(taken, Taken, 0);
    assert_int_equal(t->action.kind, VMIG_VIRT_ACTION_ABORT);
    assert_int_equal(t->action.cause, VMIG_VIRT_ABORT_NO_PROGRESS);
    assert_int_equal(t->t_ms, 154000);
    assert_string_equal(vmig_virt_abort_cause_to_string(d.abort_cause), "no progress");
    assert_int_equal(d.phase, VMIG_VIRT_MONITOR_ABORTING);
    assert_int_equal(d.completion_deadline_ms, 600000); /* 150 s x 4 GiB */
}

/* B13 S2: per-iteration minima 3.0G,1.1G,0.4G,0.15G,0.05G, then COMPLETED; within
 * each 100 s iteration remaining climbs back 0.9G above the last minimum and falls. */
static const double s2_minima[] = {3.0, 1.1, 0.4, 0.15, 0.05};
static gboolean s2_with_processed = TRUE;

static void
gen_s2(guint64 t, VmigVirtJobStats *s)
{
    guint64 k = t / 100;
    if (k >= G_N_ELEMENTS(s2_minima)) {
        s->type = VMIG_VIRT_JOB_COMPLETED;
        return;
    }
    double start = k == 0 ? 4.0 : s2_minima[k - 1] + 0.9;
    double frac = (double)(t % 100) / 99.0;
    double r = start + (s2_minima[k] - start) * frac;
    if (s2_with_processed) {
        mem_sample(s, G(4), G(r), t * 40 * MIB);
    } else {
        /* only data_remaining: the iteration-minimum rule alone must carry it */
        s->type = VMIG_VIRT_JOB_UNBOUNDED;
        s->data_total = G(4);
        s->data_remaining = G(r);
    }
}

static void
test_b13_s2_sawtooth_never_aborted(void **state)
{
    for (int variant = 0; variant < 2; variant++) {
        s2_with_processed = variant == 0;
        VmigVirtMonitorConfig c;
        b13_config(&c);
        VmigVirtDecider d;
        vmig_virt_decider_init(&d, &c);
        g_autoptr(GArray) taken = run(&d, gen_s2, 1000);
        /* the only action is stopping when the job completed at t=500 s */
        assert_int_equal(taken->len, 1);
        Taken *t = &g_array_index(taken, Taken, 0);
        assert_int_equal(t->action.kind, VMIG_VIRT_ACTION_STOP_POLLING);
        assert_int_equal(t->t_ms, 500000);
        assert_int_equal(d.abort_cause, VMIG_VIRT_ABORT_NONE);
        assert_int_equal(d.min_remaining, G(0.05));
    }
    s2_with_processed = TRUE;
}

/* B13 S3: per-iteration minima 1.00G,1.00G,1.05G,0.98G,...; dirty rate 300 MiB/s
 * above the 200 MiB/s link: processed grows, remaining never converges. */
static gboolean s3_flat_after_switch = FALSE;

static void
gen_s3(guint64 t, VmigVirtJobStats *s)
{
    static const double minima[] = {1.00, 1.00, 1.05, 0.98, 1.01, 0.99, 1.02, 1.00};
    guint64 k = t / 20;
    double m = minima[k % G_N_ELEMENTS(minima)];
    double r = m + 0.4 * (1.0 - (double)(t % 20) / 19.0);
    guint64 processed = t * 200 * MIB;
    if (s3_flat_after_switch && t > 600)
        processed = 600 * 200 * MIB; /* post-copy: nothing the progress rule would like */
    mem_sample(s, G(4), G(r), processed);
    s->dirty_rate_bps = 300 * MIB;
    s->mem_iteration = k + 1;
}

static void
test_b13_s3_completion_deadline_one_action(void **state)
{
    static const struct {
        VmigVirtTimeoutAction configured;
        VmigVirtActionKind want;
        VmigVirtMonitorPhase phase_after;
    } cases[] = {
        {VMIG_VIRT_TIMEOUT_ACTION_ABORT, VMIG_VIRT_ACTION_ABORT, VMIG_VIRT_MONITOR_ABORTING},
        {VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY, VMIG_VIRT_ACTION_START_POSTCOPY,
         VMIG_VIRT_MONITOR_POSTCOPY},
        {VMIG_VIRT_TIMEOUT_ACTION_PAUSE, VMIG_VIRT_ACTION_SUSPEND, VMIG_VIRT_MONITOR_PAUSED},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        VmigVirtMonitorConfig c;
        b13_config(&c);
        c.timeout_action = cases[i].configured;
        c.allow_postcopy = TRUE;
        assert_true(vmig_virt_monitor_config_validate(&c, NULL));
        VmigVirtDecider d;
        vmig_virt_decider_init(&d, &c);
        s3_flat_after_switch = cases[i].configured == VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY;
        g_autoptr(GArray) taken = run(&d, gen_s3, 1200);
        /* exactly one action, at the deadline 150 s x 4 GiB = 600 s, none before */
        assert_int_equal(taken->len, 1);
        Taken *t = &g_array_index(taken, Taken, 0);
        assert_int_equal(t->t_ms, 600000);
        assert_int_equal(t->action.kind, cases[i].want);
        assert_int_equal(d.phase, cases[i].phase_after);
        assert_true(d.completion_action_taken);
        if (cases[i].want == VMIG_VIRT_ACTION_ABORT) {
            assert_int_equal(t->action.cause, VMIG_VIRT_ABORT_COMPLETION_TIMEOUT);
        }
        if (cases[i].want == VMIG_VIRT_ACTION_SUSPEND) {
            assert_true(d.paused_by_monitor);
        }
        if (cases[i].want == VMIG_VIRT_ACTION_START_POSTCOPY) {
            assert_true(d.postcopy_started);
        }
    }
    s3_flat_after_switch = FALSE;
}

/* B13 S4: memory remaining 0 for 10 min while disk remaining falls 20G -> 5G
 * (20 GiB disk copied); processed counters flat so only remaining speaks. */
static void
gen_s4(guint64 t, VmigVirtJobStats *s)
{
    s->type = VMIG_VIRT_JOB_UNBOUNDED;
    s->has_mem = TRUE;
    s->has_disk = TRUE;
    s->mem_total = G(4);
    s->mem_processed = G(4);
    s->mem_remaining = 0;
    s->disk_total = G(20);
    s->disk_remaining = G(20) - G(15) * MIN(t, 600) / 600;
    s->data_total = s->mem_total + s->disk_total;
    s->data_remaining = s->disk_remaining;
    s->data_processed = G(4);
}

static void
test_b13_s4_block_copy_is_progress(void **state)
{
    VmigVirtMonitorConfig c;
    b13_config(&c);
    VmigVirtDecider d;
    vmig_virt_decider_init(&d, &c);
    g_autoptr(GArray) taken = run(&d, gen_s4, 600);
    assert_int_equal(taken->len, 0);
    assert_int_equal(d.total_bytes, G(24));
    assert_int_equal(d.completion_deadline_ms, 3600000); /* 24 GiB x 150 s */
    assert_int_equal(d.min_remaining, G(5));
}

/* B14: post-copy switch at t=100 s, abort request at t=105 s, flat progress after. */
static void
test_b14_postcopy_no_abort(void **state)
{
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.progress_timeout_s = 150;
    c.completion_timeout_per_gib_s = 25; /* 4 GiB -> deadline at t=100 s */
    c.timeout_action = VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY;
    c.allow_postcopy = TRUE;
    VmigVirtDecider d;
    vmig_virt_decider_init(&d, &c);

    VmigVirtAction a = {0};
    for (guint64 t = 0; t <= 100; t++) {
        VmigVirtJobStats s = {0};
        mem_sample(&s, G(4), G(1), t * 100 * MIB);
        a = vmig_virt_decider_on_stats(&d, t * 1000, &s);
        if (t < 100)
            assert_int_equal(a.kind, VMIG_VIRT_ACTION_NONE);
    }
    /* step 1 */
    assert_int_equal(a.kind, VMIG_VIRT_ACTION_START_POSTCOPY);
    vmig_virt_decider_action_done(&d, &a, TRUE);
    assert_int_equal(d.phase, VMIG_VIRT_MONITOR_POSTCOPY);

    /* step 2 (t=105 s): the user's abort is refused with a clear reason */
    g_autoptr(GError) error = NULL;
    VmigVirtAction req;
    assert_false(vmig_virt_decider_request_abort(&d, &req, &error));
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_POSTCOPY));
    assert_string_equal(error->message, "abort not possible during post-copy");
    assert_int_equal(req.kind, VMIG_VIRT_ACTION_NONE);

    /* step 3 (t=110 s..): progress flat far longer than progressTimeout: no action */
    for (guint64 t = 110; t <= 1000; t++) {
        VmigVirtJobStats s = {0};
        mem_sample(&s, G(4), G(0.5), G(3));
        a = vmig_virt_decider_on_stats(&d, t * 1000, &s);
        assert_int_equal(a.kind, VMIG_VIRT_ACTION_NONE);
    }
    assert_int_equal(d.abort_cause, VMIG_VIRT_ABORT_NONE);

    /* run B: the job fails in post-copy; the source is paused (post-copy failed) */
    VmigVirtJobStats failed = {.type = VMIG_VIRT_JOB_FAILED};
    VmigVirtOutcomeInput in = {.call_rc = -1,
                               .call_error = "operation failed: migration failed in post-copy",
                               .completed = &failed,
                               .postcopy_started = d.postcopy_started,
                               .source_state = VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY_FAILED};
    g_autoptr(VmigVirtOutcome) o = vmig_virt_outcome_derive(&in);
    assert_int_equal(o->kind, VMIG_VIRT_OUTCOME_POSTCOPY_FAILED);
    assert_string_equal(vmig_virt_outcome_kind_to_string(o->kind), "postcopy-failed");
    assert_non_null(strstr(o->reason, "post-copy"));
    assert_true(o->postcopy_used);
}

/* B14 recovery: a resumed post-copy (VIR_MIGRATE_POSTCOPY_RESUME) is past the switch from
 * its first sample: flat progress and a passed deadline trigger nothing, an abort request is
 * refused, and the job's end is still seen. */
static void
test_resume_starts_in_postcopy(void **state)
{
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.progress_timeout_s = 10;
    c.completion_timeout_per_gib_s = 3;
    c.timeout_action = VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY;
    c.allow_postcopy = TRUE;
    c.resume_postcopy = TRUE;
    assert_true(vmig_virt_monitor_config_validate(&c, NULL));
    VmigVirtDecider d;
    vmig_virt_decider_init(&d, &c);
    assert_int_equal(d.phase, VMIG_VIRT_MONITOR_POSTCOPY);
    assert_true(d.postcopy_started);

    /* before libvirt's job shows (Begin/Prepare of the resume): nothing */
    VmigVirtJobStats none = {.type = VMIG_VIRT_JOB_NONE};
    assert_int_equal(vmig_virt_decider_on_stats(&d, 0, &none).kind, VMIG_VIRT_ACTION_NONE);
    for (guint64 t = 1; t <= 600; t++) {
        VmigVirtJobStats s = {0};
        mem_sample(&s, G(1), G(0.5), G(0.5)); /* flat: no progress at all */
        VmigVirtAction a = vmig_virt_decider_on_stats(&d, t * 1000, &s);
        if (a.kind != VMIG_VIRT_ACTION_NONE)
            fail_msg("t=%" G_GUINT64_FORMAT " s: %s on a resumed post-copy", t,
                     vmig_virt_action_kind_to_string(a.kind));
    }
    g_autoptr(GError) error = NULL;
    VmigVirtAction req;
    assert_false(vmig_virt_decider_request_abort(&d, &req, &error));
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_POSTCOPY));
    assert_int_equal(d.abort_cause, VMIG_VIRT_ABORT_NONE);
    VmigVirtJobStats done = {.type = VMIG_VIRT_JOB_COMPLETED};
    assert_int_equal(vmig_virt_decider_on_stats(&d, 601000, &done).kind,
                     VMIG_VIRT_ACTION_STOP_POLLING);
}

static void
test_postcopy_switch_failed_is_not_retried(void **state)
{
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.completion_timeout_per_gib_s = 10;
    c.timeout_action = VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY;
    c.allow_postcopy = TRUE;
    VmigVirtDecider d;
    vmig_virt_decider_init(&d, &c);
    VmigVirtJobStats s = {0};
    mem_sample(&s, G(1), G(1), 0);
    assert_int_equal(vmig_virt_decider_on_stats(&d, 0, &s).kind, VMIG_VIRT_ACTION_NONE);
    s.mem_processed = 1;
    VmigVirtAction a = vmig_virt_decider_on_stats(&d, 10000, &s);
    assert_int_equal(a.kind, VMIG_VIRT_ACTION_START_POSTCOPY);
    vmig_virt_decider_action_done(&d, &a, FALSE);
    assert_int_equal(d.phase, VMIG_VIRT_MONITOR_PRECOPY);
    assert_false(d.postcopy_started);
    /* still pre-copy: an abort is possible again, the deadline action is not repeated */
    s.mem_processed = 2;
    assert_int_equal(vmig_virt_decider_on_stats(&d, 11000, &s).kind, VMIG_VIRT_ACTION_NONE);
    VmigVirtAction req;
    assert_true(vmig_virt_decider_request_abort(&d, &req, NULL));
    assert_int_equal(req.kind, VMIG_VIRT_ACTION_ABORT);
    assert_int_equal(req.cause, VMIG_VIRT_ABORT_USER);
}

static void
test_small_guest_gets_one_gib_of_time(void **state)
{
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    VmigVirtDecider d;
    vmig_virt_decider_init(&d, &c);
    VmigVirtJobStats s = {0};
    mem_sample(&s, 128 * MIB, 128 * MIB, 0);
    vmig_virt_decider_on_stats(&d, 5000, &s);
    assert_int_equal(d.completion_deadline_ms, 5000 + 150000);
}

static void
test_timeouts_off(void **state)
{
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.progress_timeout_s = 0;
    c.completion_timeout_per_gib_s = 0;
    VmigVirtDecider d;
    vmig_virt_decider_init(&d, &c);
    g_autoptr(GArray) taken = run(&d, gen_s1, 5000);
    assert_int_equal(taken->len, 0);
    assert_int_equal(d.completion_deadline_ms, 0);
}

/* B12 run C: a transient GetJobStats failure is retried; K in a row stop polling. */
static void
test_b12_run_c_errors(void **state)
{
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    VmigVirtDecider d;
    vmig_virt_decider_init(&d, &c);
    VmigVirtJobStats s = {0};
    mem_sample(&s, G(4), G(4), 0);
    vmig_virt_decider_on_stats(&d, 0, &s);
    assert_int_equal(vmig_virt_decider_on_error(&d, 500).kind, VMIG_VIRT_ACTION_NONE);
    s.mem_remaining = G(3);
    assert_int_equal(vmig_virt_decider_on_stats(&d, 1000, &s).kind, VMIG_VIRT_ACTION_NONE);
    assert_int_equal(d.consecutive_errors, 0);
    /* two failures, a success, two failures: never three in a row */
    for (int i = 0; i < 2; i++)
        assert_int_equal(vmig_virt_decider_on_error(&d, 1500).kind, VMIG_VIRT_ACTION_NONE);
    assert_int_equal(vmig_virt_decider_on_stats(&d, 2000, &s).kind, VMIG_VIRT_ACTION_NONE);
    for (int i = 0; i < 2; i++)
        assert_int_equal(vmig_virt_decider_on_error(&d, 2500).kind, VMIG_VIRT_ACTION_NONE);
    assert_int_equal(d.phase, VMIG_VIRT_MONITOR_PRECOPY);
    /* the third consecutive one stops polling; later input changes nothing */
    assert_int_equal(vmig_virt_decider_on_error(&d, 3000).kind, VMIG_VIRT_ACTION_STOP_POLLING);
    assert_int_equal(d.phase, VMIG_VIRT_MONITOR_STOPPED);
    assert_int_equal(vmig_virt_decider_on_error(&d, 3500).kind, VMIG_VIRT_ACTION_NONE);
    assert_int_equal(vmig_virt_decider_on_stats(&d, 900000, &s).kind, VMIG_VIRT_ACTION_NONE);
}

static void
test_job_end_detection(void **state)
{
    static const struct {
        VmigVirtJobType before, after;
        VmigVirtActionKind want;
    } cases[] = {
        /* no job yet (Begin/Prepare): keep polling */
        {VMIG_VIRT_JOB_NONE, VMIG_VIRT_JOB_NONE, VMIG_VIRT_ACTION_NONE},
        {VMIG_VIRT_JOB_NONE, VMIG_VIRT_JOB_UNBOUNDED, VMIG_VIRT_ACTION_NONE},
        {VMIG_VIRT_JOB_UNBOUNDED, VMIG_VIRT_JOB_NONE, VMIG_VIRT_ACTION_STOP_POLLING},
        {VMIG_VIRT_JOB_UNBOUNDED, VMIG_VIRT_JOB_COMPLETED, VMIG_VIRT_ACTION_STOP_POLLING},
        {VMIG_VIRT_JOB_UNBOUNDED, VMIG_VIRT_JOB_CANCELLED, VMIG_VIRT_ACTION_STOP_POLLING},
        {VMIG_VIRT_JOB_BOUNDED, VMIG_VIRT_JOB_FAILED, VMIG_VIRT_ACTION_STOP_POLLING},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        VmigVirtMonitorConfig c;
        vmig_virt_monitor_config_init(&c);
        VmigVirtDecider d;
        vmig_virt_decider_init(&d, &c);
        VmigVirtJobStats s = {.type = cases[i].before};
        assert_int_equal(vmig_virt_decider_on_stats(&d, 0, &s).kind, VMIG_VIRT_ACTION_NONE);
        s.type = cases[i].after;
        VmigVirtAction a = vmig_virt_decider_on_stats(&d, 500, &s);
        if (a.kind != cases[i].want)
            fail_msg("case %zu: %s", i, vmig_virt_action_kind_to_string(a.kind));
    }
}

/* B12 run B at the decision level: the job-completed event stops polling. */
static void
test_b12_job_completed_event(void **state)
{
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    VmigVirtDecider d;
    vmig_virt_decider_init(&d, &c);
    VmigVirtJobStats s = {0};
    mem_sample(&s, G(4), G(2), G(2));
    vmig_virt_decider_on_stats(&d, 0, &s);
    assert_int_equal(vmig_virt_decider_on_job_completed(&d).kind, VMIG_VIRT_ACTION_STOP_POLLING);
    assert_int_equal(d.phase, VMIG_VIRT_MONITOR_STOPPED);
    assert_int_equal(vmig_virt_decider_on_job_completed(&d).kind, VMIG_VIRT_ACTION_NONE);
    g_autoptr(GError) error = NULL;
    VmigVirtAction req;
    assert_false(vmig_virt_decider_request_abort(&d, &req, &error));
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_STATE));
}

static void
test_user_abort(void **state)
{
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    VmigVirtDecider d;
    vmig_virt_decider_init(&d, &c);
    VmigVirtAction req;
    assert_true(vmig_virt_decider_request_abort(&d, &req, NULL));
    assert_int_equal(req.kind, VMIG_VIRT_ACTION_ABORT);
    assert_int_equal(req.cause, VMIG_VIRT_ABORT_USER);
    /* a second request while the first is under way issues nothing new */
    assert_true(vmig_virt_decider_request_abort(&d, &req, NULL));
    assert_int_equal(req.kind, VMIG_VIRT_ACTION_NONE);
    /* a failed abort leaves the job running: the user may try again */
    VmigVirtAction a = {.kind = VMIG_VIRT_ACTION_ABORT, .cause = VMIG_VIRT_ABORT_USER};
    vmig_virt_decider_action_done(&d, &a, FALSE);
    assert_int_equal(d.phase, VMIG_VIRT_MONITOR_PRECOPY);
    assert_true(vmig_virt_decider_request_abort(&d, &req, NULL));
    assert_int_equal(req.kind, VMIG_VIRT_ACTION_ABORT);
}

static void
test_downtime_steps(void **state)
{
    static const struct {
        guint i, steps;
        guint64 max, want;
    } cases[] = {
        {0, 3, 300, 100}, {1, 3, 300, 200}, {2, 3, 300, 300}, {5, 3, 300, 300},
        {0, 1, 500, 500}, {0, 10, 5, 1},    {0, 0, 400, 400},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        assert_int_equal(vmig_virt_downtime_step(cases[i].i, cases[i].steps, cases[i].max),
                         cases[i].want);

    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.downtime_steps = 3;
    c.downtime_max_ms = 300;
    c.downtime_step_delay_ms = 10000;
    VmigVirtDecider d;
    vmig_virt_decider_init(&d, &c);
    g_autoptr(GArray) taken = run(&d, gen_s2, 100);
    assert_int_equal(taken->len, 3);
    static const guint64 at[] = {0, 10000, 20000}, value[] = {100, 200, 300};
    for (guint i = 0; i < 3; i++) {
        Taken *t = &g_array_index(taken, Taken, i);
        assert_int_equal(t->action.kind, VMIG_VIRT_ACTION_SET_DOWNTIME);
        assert_int_equal(t->t_ms, at[i]);
        assert_int_equal(t->action.downtime_ms, value[i]);
    }
}

static void
test_config_validate(void **state)
{
    VmigVirtMonitorConfig ok;
    vmig_virt_monitor_config_init(&ok);
    assert_true(vmig_virt_monitor_config_validate(&ok, NULL));
    assert_int_equal(ok.poll_interval_ms, 500);
    assert_int_equal(ok.progress_timeout_s, 150);
    assert_int_equal(ok.completion_timeout_per_gib_s, 150);
    assert_int_equal(ok.max_consecutive_errors, 3);

    static const struct {
        const char *field;
        int what;
    } cases[] = {{"poll_interval_ms", 0},     {"poll_interval_ms", 1},
                 {"needs allow_postcopy", 2}, {"max_consecutive_errors", 3},
                 {"downtime_max_ms", 4},      {"resume_postcopy needs allow_postcopy", 5}};
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        VmigVirtMonitorConfig c = ok;
        switch (cases[i].what) {
        case 0:
            c.poll_interval_ms = 0;
            break;
        case 1:
            c.poll_interval_ms = 60001;
            break;
        case 2:
            c.timeout_action = VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY;
            break;
        case 3:
            c.max_consecutive_errors = 0;
            break;
        case 4:
            c.downtime_steps = 2;
            break;
        case 5:
            c.resume_postcopy = TRUE;
            break;
        }
        g_autoptr(GError) error = NULL;
        assert_false(vmig_virt_monitor_config_validate(&c, &error));
        assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID));
        assert_non_null(strstr(error->message, cases[i].field));
    }
}

static void
test_enum_tables(void **state)
{
    static const char *const names[] = {"abort", "postcopy", "pause"};
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        VmigVirtTimeoutAction a;
        assert_true(vmig_virt_timeout_action_from_string(names[i], &a));
        assert_string_equal(vmig_virt_timeout_action_to_string(a), names[i]);
    }
    VmigVirtTimeoutAction a = VMIG_VIRT_TIMEOUT_ACTION_PAUSE;
    assert_false(vmig_virt_timeout_action_from_string("resume", &a));
    assert_false(vmig_virt_timeout_action_from_string(NULL, &a));
    assert_int_equal(a, VMIG_VIRT_TIMEOUT_ACTION_PAUSE);
    assert_string_equal(vmig_virt_job_type_to_string(VMIG_VIRT_JOB_CANCELLED), "cancelled");
    assert_string_equal(vmig_virt_job_type_to_string((VmigVirtJobType)99), "unknown");
    assert_string_equal(vmig_virt_monitor_phase_to_string(VMIG_VIRT_MONITOR_POSTCOPY), "post-copy");
    assert_string_equal(vmig_virt_action_kind_to_string(VMIG_VIRT_ACTION_START_POSTCOPY),
                        "start-postcopy");
    assert_string_equal(vmig_virt_domain_state_to_string(VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY_FAILED),
                        "paused-postcopy-failed");
    assert_string_equal(vmig_virt_domain_state_to_string(VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY),
                        "paused-postcopy");
}

/* ---- outcome (B12 runs A/B, B14 run B, pause-and-complete) ---- */

typedef struct {
    const char *name;
    int rc;
    const char *call_error;
    gboolean has_completed;
    VmigVirtJobType completed_type;
    const char *errmsg;
    VmigVirtAbortCause cause;
    gboolean postcopy, paused;
    VmigVirtDomainState state;
    VmigVirtOutcomeKind want;
    const char *reason;
    const char *detail;    /* NULL: none */
    gboolean call_aborted; /* libvirt error code VIR_ERR_OPERATION_ABORTED */
    gboolean recoverable;  /* VIR_MIGRATE_POSTCOPY_RESUME may finish it */
} OutcomeCase;

static const OutcomeCase outcome_cases[] = {
    {"B12 run B: success", 0, NULL, TRUE, VMIG_VIRT_JOB_COMPLETED, NULL, VMIG_VIRT_ABORT_NONE,
     FALSE, FALSE, VMIG_VIRT_DOMAIN_SHUTOFF, VMIG_VIRT_OUTCOME_SUCCEEDED, "", NULL},
    {"B12 run A: cancel whose last error is consequential", -1,
     "operation failed: domain is not running", TRUE, VMIG_VIRT_JOB_CANCELLED, NULL,
     VMIG_VIRT_ABORT_USER, FALSE, FALSE, VMIG_VIRT_DOMAIN_RUNNING, VMIG_VIRT_OUTCOME_ABORTED,
     "aborted", "operation failed: domain is not running"},
    {"cancelled by someone else (virsh domjobabort)", -1,
     "operation aborted: job 'migration out' canceled by client", TRUE, VMIG_VIRT_JOB_CANCELLED,
     NULL, VMIG_VIRT_ABORT_NONE, FALSE, FALSE, VMIG_VIRT_DOMAIN_RUNNING, VMIG_VIRT_OUTCOME_ABORTED,
     "aborted", "operation aborted: job 'migration out' canceled by client"},
    {"no progress", -1, "operation aborted", TRUE, VMIG_VIRT_JOB_CANCELLED, NULL,
     VMIG_VIRT_ABORT_NO_PROGRESS, FALSE, FALSE, VMIG_VIRT_DOMAIN_RUNNING, VMIG_VIRT_OUTCOME_ABORTED,
     "no progress", "operation aborted"},
    {"completion timeout, completed stats unavailable", -1, "domain is not running", FALSE, 0, NULL,
     VMIG_VIRT_ABORT_COMPLETION_TIMEOUT, FALSE, FALSE, VMIG_VIRT_DOMAIN_RUNNING,
     VMIG_VIRT_OUTCOME_ABORTED, "completion timeout", "domain is not running"},
    {"failure with job errmsg", -1, "operation failed: job failed", TRUE, VMIG_VIRT_JOB_FAILED,
     "Unable to write to socket: Broken pipe", VMIG_VIRT_ABORT_NONE, FALSE, FALSE,
     VMIG_VIRT_DOMAIN_RUNNING, VMIG_VIRT_OUTCOME_FAILED, "migration failed",
     "operation failed: job failed (job: Unable to write to socket: Broken pipe)"},
    {"failure before any job", -1, "Cannot recv data: Connection reset by peer", FALSE, 0, NULL,
     VMIG_VIRT_ABORT_NONE, FALSE, FALSE, VMIG_VIRT_DOMAIN_RUNNING, VMIG_VIRT_OUTCOME_FAILED,
     "migration failed", "Cannot recv data: Connection reset by peer"},
    {"B14 run B: failed after the switch", -1, "migration failed in post-copy", TRUE,
     VMIG_VIRT_JOB_FAILED, NULL, VMIG_VIRT_ABORT_NONE, TRUE, FALSE,
     VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY_FAILED, VMIG_VIRT_OUTCOME_POSTCOPY_FAILED, "post-copy failed",
     "migration failed in post-copy", FALSE, TRUE},
    {"paused post-copy failed seen after a daemon restart", -1, NULL, FALSE, 0, NULL,
     VMIG_VIRT_ABORT_NONE, FALSE, FALSE, VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY_FAILED,
     VMIG_VIRT_OUTCOME_POSTCOPY_FAILED, "post-copy failed", NULL, FALSE, TRUE},
    /* real libvirt 9.0 (e2e scenario-postcopy-recovery): the resume while the link is down */
    {"resume attempt with the link still down: recoverable again", -1,
     "internal error: client socket is closed", FALSE, 0, NULL, VMIG_VIRT_ABORT_NONE, TRUE, FALSE,
     VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY_FAILED, VMIG_VIRT_OUTCOME_POSTCOPY_FAILED, "post-copy failed",
     "internal error: client socket is closed", FALSE, TRUE},
    {"resume raced the destination's failure detection: source still post-copy", -1,
     "Requested operation is not valid: domain 'ns1_vm1' is not being migrated", FALSE, 0, NULL,
     VMIG_VIRT_ABORT_NONE, TRUE, FALSE, VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY,
     VMIG_VIRT_OUTCOME_POSTCOPY_FAILED, "post-copy failed",
     "Requested operation is not valid: domain 'ns1_vm1' is not being migrated", FALSE, TRUE},
    {"failed after the switch but the source runs: nothing to resume", -1, "x", FALSE, 0, NULL,
     VMIG_VIRT_ABORT_NONE, TRUE, FALSE, VMIG_VIRT_DOMAIN_RUNNING, VMIG_VIRT_OUTCOME_POSTCOPY_FAILED,
     "post-copy failed", "x", FALSE, FALSE},
    {"failed after the switch, source gone: nothing to resume", -1, "x", FALSE, 0, NULL,
     VMIG_VIRT_ABORT_NONE, TRUE, FALSE, VMIG_VIRT_DOMAIN_SHUTOFF, VMIG_VIRT_OUTCOME_POSTCOPY_FAILED,
     "post-copy failed", "x", FALSE, FALSE},
    {"real libvirt 9.0: user abort, no completed stats kept", -1,
     "operation aborted: job 'migration out' canceled by client", FALSE, 0, NULL,
     VMIG_VIRT_ABORT_USER, FALSE, FALSE, VMIG_VIRT_DOMAIN_RUNNING, VMIG_VIRT_OUTCOME_ABORTED,
     "aborted", "operation aborted: job 'migration out' canceled by client", TRUE},
    {"aborted by someone else, known by the error code only", -1, "any text", FALSE, 0, NULL,
     VMIG_VIRT_ABORT_NONE, FALSE, FALSE, VMIG_VIRT_DOMAIN_RUNNING, VMIG_VIRT_OUTCOME_ABORTED,
     "aborted", "any text", TRUE},
    {"our abort lost the race: the job failed otherwise -> still our cause", -1,
     "Unable to write to socket", TRUE, VMIG_VIRT_JOB_FAILED, NULL, VMIG_VIRT_ABORT_NO_PROGRESS,
     FALSE, FALSE, VMIG_VIRT_DOMAIN_RUNNING, VMIG_VIRT_OUTCOME_ABORTED, "no progress",
     "Unable to write to socket"},
    {"post-copy succeeded", 0, NULL, TRUE, VMIG_VIRT_JOB_COMPLETED, NULL, VMIG_VIRT_ABORT_NONE,
     TRUE, FALSE, VMIG_VIRT_DOMAIN_SHUTOFF, VMIG_VIRT_OUTCOME_SUCCEEDED, "", NULL},
    {"pause-and-complete succeeded", 0, NULL, TRUE, VMIG_VIRT_JOB_COMPLETED, NULL,
     VMIG_VIRT_ABORT_NONE, FALSE, TRUE, VMIG_VIRT_DOMAIN_SHUTOFF, VMIG_VIRT_OUTCOME_SUCCEEDED, "",
     NULL},
};

static void
test_outcome_table(void **state)
{
    for (gsize i = 0; i < G_N_ELEMENTS(outcome_cases); i++) {
        const OutcomeCase *c = &outcome_cases[i];
        VmigVirtJobStats st = {.type = c->completed_type,
                               .downtime_ms = 45,
                               .has_downtime = TRUE,
                               .time_elapsed_ms = 9000,
                               .data_total = G(4.1),
                               .data_processed = G(4.3),
                               .mem_bps = 500 * MIB,
                               .dirty_rate_bps = 20 * MIB,
                               .mem_iteration = 4};
        if (c->errmsg)
            g_strlcpy(st.errmsg, c->errmsg, sizeof(st.errmsg));
        VmigVirtOutcomeInput in = {.call_rc = c->rc,
                                   .call_error = c->call_error,
                                   .call_aborted = c->call_aborted,
                                   .completed = c->has_completed ? &st : NULL,
                                   .abort_cause = c->cause,
                                   .postcopy_started = c->postcopy,
                                   .paused_by_monitor = c->paused,
                                   .source_state = c->state};
        g_autoptr(VmigVirtOutcome) o = vmig_virt_outcome_derive(&in);
        if (o->kind != c->want || g_strcmp0(o->reason, c->reason) != 0 ||
            g_strcmp0(o->detail, c->detail) != 0)
            fail_msg("case \"%s\": %s \"%s\" detail \"%s\"", c->name,
                     vmig_virt_outcome_kind_to_string(o->kind), o->reason,
                     o->detail ? o->detail : "(null)");
        assert_int_equal(o->has_stats, c->has_completed);
        if (c->has_completed) {
            /* final figures come from the completed-job stats */
            assert_int_equal(o->downtime_ms, 45);
            assert_int_equal(o->data_total, G(4.1));
            assert_int_equal(o->data_processed, G(4.3));
            assert_int_equal(o->time_elapsed_ms, 9000);
            assert_int_equal(o->iterations, 4);
            assert_int_equal(o->mem_bps, 500 * MIB);
            assert_int_equal(o->dirty_rate_bps, 20 * MIB);
        }
        assert_int_equal(o->paused_to_complete, c->paused);
        assert_int_equal(o->source_state, c->state);
        if (o->recoverable != c->recoverable)
            fail_msg("case \"%s\": recoverable %d", c->name, o->recoverable);
        assert_int_equal(o->postcopy_used,
                         c->postcopy || c->want == VMIG_VIRT_OUTCOME_POSTCOPY_FAILED);
    }
}

static void
test_stats_sums(void **state)
{
    VmigVirtJobStats only_data = {.data_total = 10, .data_remaining = 4, .data_processed = 6};
    assert_int_equal(vmig_virt_job_stats_remaining(&only_data), 4);
    assert_int_equal(vmig_virt_job_stats_processed(&only_data), 6);
    assert_int_equal(vmig_virt_job_stats_total(&only_data), 10);
    VmigVirtJobStats split = {.has_mem = TRUE,
                              .has_disk = TRUE,
                              .mem_total = 4,
                              .mem_remaining = 0,
                              .mem_processed = 4,
                              .disk_total = 20,
                              .disk_remaining = 15,
                              .disk_processed = 5};
    assert_int_equal(vmig_virt_job_stats_remaining(&split), 15);
    assert_int_equal(vmig_virt_job_stats_processed(&split), 9);
    assert_int_equal(vmig_virt_job_stats_total(&split), 24);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b13_s1_stalled_aborted_after_progress_timeout),
        cmocka_unit_test(test_b13_s2_sawtooth_never_aborted),
        cmocka_unit_test(test_b13_s3_completion_deadline_one_action),
        cmocka_unit_test(test_b13_s4_block_copy_is_progress),
        cmocka_unit_test(test_b14_postcopy_no_abort),
        cmocka_unit_test(test_resume_starts_in_postcopy),
        cmocka_unit_test(test_postcopy_switch_failed_is_not_retried),
        cmocka_unit_test(test_small_guest_gets_one_gib_of_time),
        cmocka_unit_test(test_timeouts_off),
        cmocka_unit_test(test_b12_run_c_errors),
        cmocka_unit_test(test_job_end_detection),
        cmocka_unit_test(test_b12_job_completed_event),
        cmocka_unit_test(test_user_abort),
        cmocka_unit_test(test_downtime_steps),
        cmocka_unit_test(test_config_validate),
        cmocka_unit_test(test_enum_tables),
        cmocka_unit_test(test_outcome_table),
        cmocka_unit_test(test_stats_sums),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
