/* test-migration.c - the VMIM state machine, one table row per rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmig/migration.h"

#define UID   "5b2a7c1e-0d1f-4c55-9a77-0000000000aa"
#define OTHER "5b2a7c1e-0d1f-4c55-9a77-0000000000bb"
#define T0    1000000

/* A VMI running on node-a, a fresh VMIM, this daemon on node-a, every check passing. */
static VmigMigrationFacts
base(void)
{
    return (VmigMigrationFacts){
        .node = "node-a",
        .now_ms = T0,
        .target_ready_timeout_ms = 150000,
        .missing_vmi_grace_ms = 5000,
        .vmim_uid = UID,
        .phase = VMIG_MODEL_MIGRATION_PHASE_UNSET,
        .created_ms = T0 - 100,
        .has_finalizer = TRUE,
        .vmi_key = "ns1/vm1",
        .vmi_exists = TRUE,
        .vmi_running = TRUE,
        .vmi_node = "node-a",
        .migratable = TRUE,
        .slot_free = TRUE,
    };
}

/* Claimed by this VMIM, target chosen. */
static VmigMigrationFacts
claimed(VmigModelMigrationPhase phase, const char *me)
{
    VmigMigrationFacts f = base();
    f.node = me;
    f.phase = phase;
    f.phase_since_ms = T0 - 1000;
    f.claim_uid = UID;
    f.claim_holder_live = TRUE;
    f.source_node = "node-a";
    f.target_node = "node-b";
    return f;
}

typedef struct {
    const char *what;
    VmigMigrationFacts facts;
    VmigMigrationRole role;
    VmigMigrationAction action;
    VmigModelMigrationPhase next;
    const char *reason; /* substring, or NULL for "no reason" */
    gint64 wake;        /* -1 = do not check */
} Case;

static void
run(const Case *c)
{
    VmigMigrationDecision d;
    vmig_migration_decide(&c->facts, &d);
    gboolean ok = d.role == c->role && d.action == c->action && d.next_phase == c->next &&
                  (c->reason ? (d.reason && strstr(d.reason, c->reason)) : d.reason == NULL) &&
                  (c->wake < 0 || d.wake_at_ms == c->wake);
    if (!ok)
        fail_msg("%s: got role=%s action=%s next=%s reason='%s' wake=%" G_GINT64_FORMAT, c->what,
                 vmig_migration_role_to_string(d.role), vmig_migration_action_to_string(d.action),
                 vmig_model_migration_phase_to_string(d.next_phase), d.reason ? d.reason : "(null)",
                 d.wake_at_ms);
    vmig_migration_decision_clear(&d);
}

static void
test_source_happy_path(void **state)
{
    Case cases[] = {
        {"new VMIM is accepted", base(), VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_ACCEPT,
         VMIG_MODEL_MIGRATION_PHASE_PENDING, NULL, -1},
        {"pending with a slot claims", ({
             VmigMigrationFacts f = base();
             f.phase = VMIG_MODEL_MIGRATION_PHASE_PENDING;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_CLAIM,
         VMIG_MODEL_MIGRATION_PHASE_SCHEDULING, NULL, -1},
        {"scheduling with a target schedules", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SCHEDULING, "node-a");
             f.target_node = NULL;
             f.chosen_target = "node-b";
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_SCHEDULE,
         VMIG_MODEL_MIGRATION_PHASE_SCHEDULED, NULL, -1},
        {"scheduled waits for the target with a deadline",
         claimed(VMIG_MODEL_MIGRATION_PHASE_SCHEDULED, "node-a"), VMIG_MIGRATION_ROLE_SOURCE,
         VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_SCHEDULED, NULL,
         T0 - 1000 + 999 + 150000},
        /* a whole-second timestamp (metav1.Time) may be up to 999 ms before the real entry:
         * the deadline counts from the end of that second, so it never fires early */
        {"whole-second phase time: not failed at exactly the timeout", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET, "node-a");
             f.now_ms = f.phase_since_ms + 150000;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE,
         VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET, NULL, T0 - 1000 + 999 + 150000},
        {"millisecond phase time: the deadline is exact", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SCHEDULED, "node-a");
             f.phase_since_ms = T0 - 1234;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE,
         VMIG_MODEL_MIGRATION_PHASE_SCHEDULED, NULL, T0 - 1234 + 150000},
        {"target ready starts the migration",
         claimed(VMIG_MODEL_MIGRATION_PHASE_TARGET_READY, "node-a"), VMIG_MIGRATION_ROLE_SOURCE,
         VMIG_MIGRATION_ACTION_START, VMIG_MODEL_MIGRATION_PHASE_RUNNING, NULL, -1},
        {"running with our job in flight does nothing", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a");
             f.local_job = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
         NULL, 0},
        {"job done ok completes as Succeeded", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a");
             f.local_job = f.local_job_done = f.local_job_ok = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_COMPLETE,
         VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, NULL, -1},
        {"job failed completes as Failed with its reason", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a");
             f.local_job = f.local_job_done = TRUE;
             f.local_job_reason = "no progress for 150 s";
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_COMPLETE,
         VMIG_MODEL_MIGRATION_PHASE_FAILED, "no progress", -1},
        {"final VMIM releases resources and the finalizer",
         claimed(VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, "node-a"), VMIG_MIGRATION_ROLE_SOURCE,
         VMIG_MIGRATION_ACTION_RELEASE, VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, NULL, -1},
        {"after success the source is still the source (VMI moved)", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, "node-a");
             f.vmi_node = "node-b";
             f.has_finalizer = FALSE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE,
         VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, NULL, -1},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        run(&cases[i]);
}

static void
test_source_refusals(void **state)
{
    Case cases[] = {
        {"VMI not running", ({
             VmigMigrationFacts f = base();
             f.vmi_running = FALSE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
         "VMI ns1/vm1 is not running", -1},
        /* B19: a second VMIM for a claimed VMI fails and opens nothing. */
        {"B19 loser fails while the other claim is live", ({
             VmigMigrationFacts f = base();
             f.phase = VMIG_MODEL_MIGRATION_PHASE_PENDING;
             f.claim_uid = OTHER;
             f.claim_holder_live = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
         "another migration in progress for ns1/vm1", -1},
        /* B19 run B: a final or deleted holder's claim is released. */
        {"B19 stale claim of a final VMIM does not block", ({
             VmigMigrationFacts f = base();
             f.phase = VMIG_MODEL_MIGRATION_PHASE_PENDING;
             f.claim_uid = OTHER;
             f.claim_holder_live = FALSE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_CLAIM,
         VMIG_MODEL_MIGRATION_PHASE_SCHEDULING, NULL, -1},
        {"B19 claim lost between Pending and Scheduling", ({
             VmigMigrationFacts f = base();
             f.phase = VMIG_MODEL_MIGRATION_PHASE_SCHEDULING;
             f.claim_uid = OTHER;
             f.chosen_target = "node-b";
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
         "another migration in progress", -1},
        /* B05: refused before any target work. */
        {"B05 not migratable fails before the claim", ({
             VmigMigrationFacts f = base();
             f.phase = VMIG_MODEL_MIGRATION_PHASE_PENDING;
             f.migratable = FALSE;
             f.not_migratable = "InterfaceNotLiveMigratable: interface default uses bridge";
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
         "InterfaceNotLiveMigratable", -1},
        {"limits hold it Pending with the reason", ({
             VmigMigrationFacts f = base();
             f.phase = VMIG_MODEL_MIGRATION_PHASE_PENDING;
             f.slot_free = FALSE;
             f.slot_wait_reason = "waiting: outbound limit 2/2 on node-a";
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_WAIT, VMIG_MODEL_MIGRATION_PHASE_PENDING,
         "outbound limit 2/2", -1},
        {"no eligible target fails at once with the reason", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SCHEDULING, "node-a");
             f.target_node = NULL;
             f.no_target_reason = "no eligible target: node-b: machine type pc-q35-rhel8.2.0 "
                                  "not supported on node-b";
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
         "machine type pc-q35-rhel8.2.0 not supported on node-b", -1},
        /* B15 run C: the target daemon died before TargetReady. */
        {"B15 target deadline passes: Failed naming node-b", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET, "node-a");
             f.now_ms = f.phase_since_ms + 999 + 150000;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
         "target node node-b did not become ready within 150 s", -1},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        run(&cases[i]);
}

static void
test_source_delete_and_abort(void **state)
{
    Case cases[] = {
        /* A deleted VMIM that Succeeded (a post-copy recovery that ended after the delete):
         * the finalizer stays until the target took the VMI over, so the target sees it. */
        {"deleted and Succeeded, VMI still on the source: keep the finalizer", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, "node-a");
             f.deleting = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE,
         VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, NULL, T0 + 1000},
        {"deleted and Succeeded, the target took over: release", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, "node-a");
             f.deleting = TRUE;
             f.vmi_node = "node-b";
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_RELEASE,
         VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, NULL, -1},
        {"deleted and Succeeded, no take-over within the grace: release anyway", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, "node-a");
             f.deleting = TRUE;
             f.now_ms = f.phase_since_ms + VMIG_MIGRATION_HANDOVER_GRACE_MS;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_RELEASE,
         VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, NULL, -1},
        {"deleted and Failed: release at once", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_FAILED, "node-a");
             f.deleting = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_RELEASE,
         VMIG_MODEL_MIGRATION_PHASE_FAILED, NULL, -1},
        /* B15 run A: deleted before Running: cancelled cleanly. */
        {"B15 deleted while Scheduled cancels", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SCHEDULED, "node-a");
             f.deleting = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_CANCEL,
         VMIG_MODEL_MIGRATION_PHASE_FAILED, "cancelled", -1},
        {"deleted while Pending cancels", ({
             VmigMigrationFacts f = base();
             f.phase = VMIG_MODEL_MIGRATION_PHASE_PENDING;
             f.deleting = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_CANCEL,
         VMIG_MODEL_MIGRATION_PHASE_FAILED, "cancelled", -1},
        {"deleted while Running aborts the job once", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a");
             f.deleting = f.local_job = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_ABORT,
         VMIG_MODEL_MIGRATION_PHASE_RUNNING, "aborting", -1},
        {"abort already requested: wait for the job", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a");
             f.deleting = f.local_job = f.abort_requested = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
         NULL, -1},
        {"aborted job completes as Failed 'aborted'", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a");
             f.deleting = f.local_job = f.abort_requested = f.local_job_done = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_COMPLETE,
         VMIG_MODEL_MIGRATION_PHASE_FAILED, "aborted", -1},
        /* B14 step 2: never a plain abort in post-copy. */
        {"B14 delete during post-copy is refused", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a");
             f.deleting = f.local_job = f.post_copy = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_REFUSE_ABORT,
         VMIG_MODEL_MIGRATION_PHASE_RUNNING, "abort not possible during post-copy", -1},
        {"B14 refusal is said once", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a");
             f.deleting = f.local_job = f.post_copy = f.abort_requested = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
         NULL, -1},
        {"restart while Running reconciles from libvirt",
         claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a"), VMIG_MIGRATION_ROLE_SOURCE,
         VMIG_MIGRATION_ACTION_RECONCILE, VMIG_MODEL_MIGRATION_PHASE_RUNNING, NULL, -1},
        {"peer marked it Failed while our job runs: abort", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_FAILED, "node-a");
             f.local_job = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_ABORT, VMIG_MODEL_MIGRATION_PHASE_FAILED,
         "aborting the local job", -1},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        run(&cases[i]);
}

static void
test_target(void **state)
{
    Case cases[] = {
        {"scheduled to us: prepare", claimed(VMIG_MODEL_MIGRATION_PHASE_SCHEDULED, "node-b"),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_PREPARE_TARGET,
         VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET, NULL, -1},
        {"prepared: nothing to do", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_TARGET_READY, "node-b");
             f.local_target = f.local_resources = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_NONE,
         VMIG_MODEL_MIGRATION_PHASE_TARGET_READY, NULL, -1},
        {"restarted after TargetReady: prepare again",
         claimed(VMIG_MODEL_MIGRATION_PHASE_TARGET_READY, "node-b"), VMIG_MIGRATION_ROLE_TARGET,
         VMIG_MIGRATION_ACTION_PREPARE_TARGET, VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET, NULL,
         -1},
        {"success and the domain runs here: take over", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, "node-b");
             f.domain_here = f.local_resources = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_TAKE_OVER,
         VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, NULL, -1},
        {"success but no domain yet: wait and look again", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, "node-b");
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_WAIT,
         VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, "waiting for the domain", T0 + 1000},
        /* Regression (bench): a VMI moved on after this migration must not be pulled back. */
        {"succeeded long ago, VMI now elsewhere: no take-over", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, "node-b");
             f.vmi_node = "node-c";
             f.domain_here = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_NONE,
         VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, NULL, -1},
        {"taken over: release", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, "node-b");
             f.vmi_node = "node-b";
             f.local_resources = f.domain_here = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_RELEASE,
         VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, NULL, -1},
        {"failed: tear down", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_FAILED, "node-b");
             f.local_resources = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_RELEASE,
         VMIG_MODEL_MIGRATION_PHASE_FAILED, NULL, -1},
        {"deleted before Running: tear down", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_TARGET_READY, "node-b");
             f.deleting = f.local_resources = f.local_target = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_RELEASE,
         VMIG_MODEL_MIGRATION_PHASE_TARGET_READY, NULL, -1},
        /* B14: the target keeps its side while the source decides (maybe post-copy). */
        {"deleted while Running: the target keeps its listeners", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-b");
             f.deleting = f.local_resources = f.local_target = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
         NULL, -1},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        run(&cases[i]);
}

/* A post-copy that failed and can be resumed (B14 with recovery): Running while the source
 * retries; Failed with the operator's hint only at the deadline. */
static VmigMigrationFacts
recovering(gint64 next_ms, gint64 deadline_ms)
{
    VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a");
    f.post_copy = f.recovering = f.local_resources = TRUE;
    f.recovery_next_ms = next_ms;
    f.recovery_deadline_ms = deadline_ms;
    f.recovery_give_up = "post-copy failed and was not recovered within 300 s: ns1/vm1 is "
                         "paused on node-a and node-b; resume it with virsh migrate "
                         "--postcopy --postcopy-resume";
    return f;
}

static void
test_source_postcopy_recovery(void **state)
{
    Case cases[] = {
        {"attempt due: resume the post-copy, stay Running", recovering(T0, T0 + 300000),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_RECOVER_POSTCOPY,
         VMIG_MODEL_MIGRATION_PHASE_RUNNING, NULL, 0},
        {"backoff: wait for the next attempt, not Failed, no reconcile",
         recovering(T0 + 4000, T0 + 300000), VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE,
         VMIG_MODEL_MIGRATION_PHASE_RUNNING, NULL, T0 + 4000},
        {"next attempt after the deadline: wake at the deadline", recovering(T0 + 9000, T0 + 5000),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
         NULL, T0 + 5000},
        {"an attempt runs: nothing new", ({
             VmigMigrationFacts f = recovering(T0, T0 + 300000);
             f.local_job = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
         NULL, 0},
        {"an attempt runs past the deadline: it is never cut short", ({
             VmigMigrationFacts f = recovering(T0 - 1000, T0 - 1);
             f.local_job = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
         NULL, 0},
        {"deadline passed: Failed, saying where the guest is paused and how to resume",
         recovering(T0 - 1000, T0), VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_COMPLETE,
         VMIG_MODEL_MIGRATION_PHASE_FAILED, "--postcopy-resume", -1},
        /* B14: "tried at most N times (configurable)", besides the deadline */
        {"N attempts made and failed: Failed before the deadline", ({
             VmigMigrationFacts f = recovering(T0, T0 + 300000);
             f.recovery_attempts = 30;
             f.recovery_max_attempts = 30;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_COMPLETE,
         VMIG_MODEL_MIGRATION_PHASE_FAILED, "--postcopy-resume", -1},
        {"fewer than N attempts: the next one", ({
             VmigMigrationFacts f = recovering(T0, T0 + 300000);
             f.recovery_attempts = 29;
             f.recovery_max_attempts = 30;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_RECOVER_POSTCOPY,
         VMIG_MODEL_MIGRATION_PHASE_RUNNING, NULL, 0},
        {"the Nth attempt still runs: never cut short", ({
             VmigMigrationFacts f = recovering(T0, T0 + 300000);
             f.recovery_attempts = 30;
             f.recovery_max_attempts = 30;
             f.local_job = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
         NULL, 0},
        {"deadline without a text still says post-copy", ({
             VmigMigrationFacts f = recovering(T0 - 1000, T0);
             f.recovery_give_up = NULL;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_COMPLETE,
         VMIG_MODEL_MIGRATION_PHASE_FAILED, "post-copy failed", -1},
        {"the resume succeeded: Succeeded", ({
             VmigMigrationFacts f = recovering(T0, T0 + 300000);
             f.local_job = f.local_job_done = f.local_job_ok = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_COMPLETE,
         VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, NULL, -1},
        {"deleted while recovering: abort refused (said once)", ({
             VmigMigrationFacts f = recovering(T0, T0 + 300000);
             f.deleting = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_REFUSE_ABORT,
         VMIG_MODEL_MIGRATION_PHASE_RUNNING, "abort not possible during post-copy", -1},
        {"deleted while recovering, refusal said: the recovery goes on", ({
             VmigMigrationFacts f = recovering(T0, T0 + 300000);
             f.deleting = f.abort_requested = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_RECOVER_POSTCOPY,
         VMIG_MODEL_MIGRATION_PHASE_RUNNING, NULL, -1},
        {"deleted during post-copy, then we restarted: ask libvirt", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a");
             f.deleting = f.post_copy = f.abort_requested = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_RECONCILE,
         VMIG_MODEL_MIGRATION_PHASE_RUNNING, NULL, -1},
        {"deleted, recovery deadline passed: Failed with the hint", ({
             VmigMigrationFacts f = recovering(T0 - 1000, T0);
             f.deleting = f.abort_requested = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_SOURCE, VMIG_MIGRATION_ACTION_COMPLETE,
         VMIG_MODEL_MIGRATION_PHASE_FAILED, "paused on node-a and node-b", -1},
        {"target restarted during post-copy: listeners again", ({
             VmigMigrationFacts f = recovering(T0, T0 + 300000);
             f.node = "node-b";
             f.recovering = f.local_resources = FALSE;
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_REOPEN_TARGET,
         VMIG_MODEL_MIGRATION_PHASE_RUNNING, NULL, -1},
        {"target restarted during post-copy of a deleted VMIM: listeners again", ({
             VmigMigrationFacts f = recovering(T0, T0 + 300000);
             f.node = "node-b";
             f.recovering = f.local_resources = FALSE;
             f.deleting = f.abort_requested = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_REOPEN_TARGET,
         VMIG_MODEL_MIGRATION_PHASE_RUNNING, NULL, -1},
        {"target restarted during pre-copy: nothing to serve", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-b");
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
         NULL, -1},
        {"target keeps its side while the source recovers", ({
             VmigMigrationFacts f = recovering(T0, T0 + 300000);
             f.node = "node-b";
             f.recovering = FALSE; /* the target does not know */
             f.local_target = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_TARGET, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
         NULL, -1},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        run(&cases[i]);
    assert_string_equal(vmig_migration_action_to_string(VMIG_MIGRATION_ACTION_RECOVER_POSTCOPY),
                        "recover-postcopy");
    assert_string_equal(vmig_migration_action_to_string(VMIG_MIGRATION_ACTION_REOPEN_TARGET),
                        "reopen-target");
    static const struct {
        guint failed;
        guint ms;
    } backoff[] = {{0, 1000}, {1, 1000},  {2, 2000},  {3, 4000},
                   {4, 8000}, {5, 15000}, {6, 15000}, {G_MAXUINT, 15000}};
    for (gsize i = 0; i < G_N_ELEMENTS(backoff); i++)
        if (vmig_migration_recovery_backoff_ms(backoff[i].failed) != backoff[i].ms)
            fail_msg("backoff after %u failed attempts: %u ms, want %u", backoff[i].failed,
                     vmig_migration_recovery_backoff_ms(backoff[i].failed), backoff[i].ms);
}

static void
test_bystanders(void **state)
{
    Case cases[] = {
        {"VMI on another node: not our business", ({
             VmigMigrationFacts f = base();
             f.vmi_node = "node-c";
             f;
         }),
         VMIG_MIGRATION_ROLE_NONE, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_UNSET,
         NULL, 0},
        {"missing VMI within the grace: wake at its end", ({
             VmigMigrationFacts f = base();
             f.vmi_exists = FALSE;
             f.vmi_node = NULL;
             f;
         }),
         VMIG_MIGRATION_ROLE_NONE, VMIG_MIGRATION_ACTION_NONE, VMIG_MODEL_MIGRATION_PHASE_UNSET,
         NULL, T0 - 100 + 5000},
        {"missing VMI after the grace: Failed", ({
             VmigMigrationFacts f = base();
             f.vmi_exists = FALSE;
             f.vmi_node = NULL;
             f.now_ms = T0 + 10000;
             f;
         }),
         VMIG_MIGRATION_ROLE_NONE, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
         "VMI ns1/vm1 does not exist", -1},
        {"VMI deleted under our running job: abort", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_RUNNING, "node-a");
             f.vmi_exists = FALSE;
             f.claim_uid = NULL;
             f.vmi_node = NULL;
             f.local_job = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_NONE, VMIG_MIGRATION_ACTION_ABORT, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
         "was deleted", -1},
        {"leftover listeners of a claim we lost: release", ({
             VmigMigrationFacts f = claimed(VMIG_MODEL_MIGRATION_PHASE_TARGET_READY, "node-c");
             f.local_resources = TRUE;
             f;
         }),
         VMIG_MIGRATION_ROLE_NONE, VMIG_MIGRATION_ACTION_RELEASE,
         VMIG_MODEL_MIGRATION_PHASE_TARGET_READY, NULL, -1},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        run(&cases[i]);
}

static GHashTable *
labels(const char *k1, const char *v1, const char *k2, const char *v2)
{
    GHashTable *h = g_hash_table_new(g_str_hash, g_str_equal);
    if (k1)
        g_hash_table_insert(h, (gpointer)k1, (gpointer)v1);
    if (k2)
        g_hash_table_insert(h, (gpointer)k2, (gpointer)v2);
    return h;
}

static void
test_choose_target(void **state)
{
    g_autoptr(GHashTable) la = labels("kubernetes.io/hostname", "node-a", NULL, NULL);
    g_autoptr(GHashTable) lb = labels("kubernetes.io/hostname", "node-b", "zone", "z1");
    g_autoptr(GHashTable) lc = labels("kubernetes.io/hostname", "node-c", "zone", "z2");
    g_autoptr(GHashTable) ld = labels("kubernetes.io/hostname", "node-d", "zone", "z2");
    VmigMigrationCandidate nodes[] = {
        {.name = "node-d", .agent_ready = TRUE, .labels = ld, .inbound = 1},
        {.name = "node-a", .agent_ready = TRUE, .labels = la},
        {.name = "node-c", .agent_ready = TRUE, .labels = lc, .inbound = 1},
        {.name = "node-b", .agent_ready = TRUE, .labels = lb, .inbound = 0},
    };
    char *why = NULL;
    /* Fewest inbound wins; the source is never chosen. */
    assert_string_equal(vmig_migration_choose_target(nodes, 4, "node-a", NULL, NULL, &why),
                        "node-b");
    assert_null(why);
    /* Tie on inbound: by name. */
    g_autoptr(GHashTable) z2 = labels("zone", "z2", NULL, NULL);
    assert_string_equal(vmig_migration_choose_target(nodes, 4, "node-a", z2, NULL, &why), "node-c");
    /* Cordoned, draining, agent down and the inbound limit exclude, with reasons. */
    nodes[0].unschedulable = TRUE;
    nodes[2].draining = TRUE;
    nodes[3].agent_ready = FALSE;
    assert_null(vmig_migration_choose_target(nodes, 4, "node-a", NULL, NULL, &why));
    assert_string_equal(why, "no eligible target node: node-b: vmigrated not ready there; "
                             "node-c: draining; node-d: cordoned");
    g_clear_pointer(&why, g_free);
    nodes[0].unschedulable = nodes[2].draining = FALSE;
    nodes[3].agent_ready = TRUE;
    nodes[3].inbound = 2;
    nodes[3].inbound_limit = 2;
    nodes[2].inbound_limit = 2;
    assert_string_equal(vmig_migration_choose_target(nodes, 4, "node-a", NULL, NULL, &why),
                        "node-c");
    /* B17 vm2: pinned to its node by its own nodeSelector: nothing qualifies. */
    g_autoptr(GHashTable) pin = labels("kubernetes.io/hostname", "node-a", NULL, NULL);
    assert_null(vmig_migration_choose_target(nodes, 4, "node-a", NULL, pin, &why));
    assert_non_null(strstr(why, "node-b: does not match the VMI's nodeSelector "
                                "kubernetes.io/hostname=node-a"));
    g_clear_pointer(&why, g_free);
    /* Alone in the cluster. */
    assert_null(vmig_migration_choose_target(nodes + 1, 1, "node-a", NULL, NULL, &why));
    assert_string_equal(why, "no eligible target node (no other node runs vmigrated)");
    g_free(why);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_happy_path),
        cmocka_unit_test(test_source_refusals),
        cmocka_unit_test(test_source_delete_and_abort),
        cmocka_unit_test(test_source_postcopy_recovery),
        cmocka_unit_test(test_target),
        cmocka_unit_test(test_bystanders),

        cmocka_unit_test(test_choose_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
