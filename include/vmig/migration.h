/* vmig/migration.h - the migration state machine: what to do next for one VMIM.
 *
 * vmigrated has no central controller: the daemon on the VMI's node (source role)
 * and the daemon on the chosen node (target role) move a
 * VirtualMachineInstanceMigration through KubeVirt's phases by writing the objects
 * with preconditions (see ../shared/DESIGN.md §2). This module is the pure part of
 * that: given a snapshot of the facts (the VMIM, its VMI, what this daemon is
 * doing locally, the clock), it decides this daemon's role and the single next
 * action. The controller gathers the facts from informer caches and libvirt,
 * performs the action (I/O), and asks again when anything changes or when the
 * decision's wake-up time passes. No I/O here, so every rule is a table test.
 */
#pragma once

#include <glib.h>

#include "vmig/model.h"

G_BEGIN_DECLS

/* How long the source keeps the finalizer of a deleted, Succeeded VMIM while the VMI still
 * names the source, so that the target sees it and takes the VMI over (ms). */
#define VMIG_MIGRATION_HANDOVER_GRACE_MS 60000

/* Which part this daemon plays for a VMIM. */
typedef enum {
    VMIG_MIGRATION_ROLE_NONE,
    VMIG_MIGRATION_ROLE_SOURCE, /* the VMI runs here (or ran here when the VMIM started) */
    VMIG_MIGRATION_ROLE_TARGET, /* migrationState.targetNode is this node */
} VmigMigrationRole;

/* The next action. Each has one performer in the controller. */
typedef enum {
    VMIG_MIGRATION_ACTION_NONE,             /* nothing to do now (maybe wake later) */
    VMIG_MIGRATION_ACTION_ACCEPT,           /* add finalizer, phase Pending */
    VMIG_MIGRATION_ACTION_WAIT,             /* stay; the reason is shown (limits, peer) */
    VMIG_MIGRATION_ACTION_FAIL,             /* phase Failed with the reason; release */
    VMIG_MIGRATION_ACTION_CLAIM,            /* set VMI migrationState.migrationUid (precondition),
                                               phase Scheduling */
    VMIG_MIGRATION_ACTION_SCHEDULE,         /* write targetNode/sourceNode, phase Scheduled */
    VMIG_MIGRATION_ACTION_PREPARE_TARGET,   /* target checks + listeners, PreparingTarget ->
                                               TargetReady with address and ports */
    VMIG_MIGRATION_ACTION_START,            /* source proxy + virDomainMigrateToURI3, Running */
    VMIG_MIGRATION_ACTION_COMPLETE,         /* local job ended: Succeeded or Failed */
    VMIG_MIGRATION_ACTION_ABORT,            /* VMIM deleted while Running: virDomainAbortJob */
    VMIG_MIGRATION_ACTION_REFUSE_ABORT,     /* deleted during post-copy: event, keep running */
    VMIG_MIGRATION_ACTION_CANCEL,           /* deleted before Running: release the claim,
                                               abortStatus Succeeded, drop finalizer */
    VMIG_MIGRATION_ACTION_RECONCILE,        /* Running but no local job (daemon restarted):
                                               ask libvirt what happened */
    VMIG_MIGRATION_ACTION_TAKE_OVER,        /* target after success: VMI status.nodeName = us */
    VMIG_MIGRATION_ACTION_RELEASE,          /* final: free local resources, drop finalizer */
    VMIG_MIGRATION_ACTION_RECOVER_POSTCOPY, /* source: a post-copy that failed is resumable:
                                               proxy up, virDomainMigrateToURI3 again with
                                               VIR_MIGRATE_POSTCOPY_RESUME */
    VMIG_MIGRATION_ACTION_REOPEN_TARGET,    /* target restarted during post-copy: listeners
                                               again, new ports published (phase unchanged) so
                                               the source can resume */
} VmigMigrationAction;

/* A snapshot of everything one decision needs. Strings are borrowed. Times are
 * milliseconds on one clock (the controller uses wall time, as the objects do). */
typedef struct {
    /* this daemon */
    const char *node;
    gint64 now_ms;
    guint target_ready_timeout_ms; /* Scheduled/PreparingTarget deadline */
    guint missing_vmi_grace_ms;    /* informer lag tolerated before "VMI does not exist" */

    /* the VMIM */
    const char *vmim_uid;
    VmigModelMigrationPhase phase;
    gint64 phase_since_ms; /* entry into the current phase; 0 = unknown */
    gint64 created_ms;
    gboolean deleting; /* metadata.deletionTimestamp set */
    gboolean has_finalizer;

    /* the VMI */
    const char *vmi_key; /* "ns1/vm1", for reasons */
    gboolean vmi_exists;
    gboolean vmi_running;       /* status.phase Running */
    const char *vmi_node;       /* status.nodeName */
    const char *claim_uid;      /* status.migrationState.migrationUid */
    gboolean claim_holder_live; /* the VMIM named by claim_uid exists and is not final */
    const char *source_node;    /* migrationState.sourceNode (for this VMIM's claim) */
    const char *target_node;    /* migrationState.targetNode (for this VMIM's claim) */
    gboolean state_completed;   /* migrationState.completed */
    gboolean state_failed;      /* migrationState.failed */
    gboolean post_copy;         /* migrationState.mode == PostCopy */
    gboolean abort_requested;   /* migrationState.abortRequested */

    /* source-side decisions made by other modules */
    gboolean migratable;          /* checks: LiveMigratable */
    const char *not_migratable;   /* its reason and message */
    gboolean slot_free;           /* limits allow one more outbound migration */
    const char *slot_wait_reason; /* e.g. "waiting: outbound limit 2/2 on node-a" */
    const char *chosen_target;    /* target selection result, or NULL */
    const char *no_target_reason; /* why no node qualifies */

    /* local runtime */
    gboolean local_job;           /* source: a migration call of ours is in flight */
    gboolean local_job_done;      /* source: it ended ... */
    gboolean local_job_ok;        /* ... successfully */
    const char *local_job_reason; /* ... or with this reason */
    gboolean local_target;        /* target: our listeners for this VMIM are up */
    gboolean local_resources;     /* any proxy/listener/job state of ours exists */
    gboolean domain_here;         /* target: the domain runs in the local pod's libvirt */

    /* source: post-copy recovery (the call failed after the switch; both domains are paused
     * with reason post-copy failed and libvirt can resume the migration) */
    gboolean recovering;          /* the VMIM stays Running while we try to resume */
    gint64 recovery_next_ms;      /* no resume attempt before this time */
    gint64 recovery_deadline_ms;  /* give up (Failed) at this time */
    guint recovery_attempts;      /* resume attempts made so far */
    guint recovery_max_attempts;  /* give up after this many; 0 = no bound */
    const char *recovery_give_up; /* the Failed reason then: where the guest is paused and
                                     how an operator resumes it */
} VmigMigrationFacts;

typedef struct {
    VmigMigrationRole role;
    VmigMigrationAction action;
    VmigModelMigrationPhase next_phase; /* the phase the action writes (or the current one) */
    char *reason;                       /* (nullable) human reason: failure, wait, event text */
    gint64 wake_at_ms;                  /* re-decide at this time even without news; 0 = never */
} VmigMigrationDecision;

/**
 * vmig_migration_decide:
 * @facts: the snapshot
 * @out: (out caller-allocates): the decision; free its reason with
 *   vmig_migration_decision_clear()
 *
 * Decides this daemon's role for the VMIM and its next action. Pure: same facts,
 * same decision. Mirrors the split of KubeVirt's migration controller and
 * virt-handler (source and target), with deadlines on every waiting phase
 * (field case B15) and one owner per VMI (B19). A post-copy that failed is never
 * Failed at once while it can be resumed: the VMIM stays Running and the source
 * retries RECOVER_POSTCOPY until the recovery deadline (B14).
 */
void vmig_migration_decide(const VmigMigrationFacts *facts, VmigMigrationDecision *out);

/**
 * vmig_migration_recovery_backoff_ms:
 * @failed_attempts: resume attempts of a failed post-copy that failed so far (0 counts as 1)
 *
 * Pure. A broken link usually comes back within seconds, and a failing attempt costs one
 * libvirt connection through the proxy: attempts are spaced 1, 2, 4, 8 s, then every 15 s.
 * Returns: ms before the next attempt (RECOVER_POSTCOPY's recovery_next_ms).
 */
guint vmig_migration_recovery_backoff_ms(guint failed_attempts);

/* Frees the decision's reason; the struct itself is the caller's. */
void vmig_migration_decision_clear(VmigMigrationDecision *d);

/* A node that could receive the VMI, as seen from the caches. Strings borrowed. */
typedef struct {
    const char *name;
    gboolean agent_ready;   /* vmigrated runs there and its heartbeat Lease is fresh */
    gboolean unschedulable; /* spec.unschedulable (cordoned) */
    gboolean draining;      /* carries the drain taint (nodeDrainTaintKey) */
    GHashTable *labels;     /* metadata.labels (char * -> char *); nullable */
    guint inbound;          /* migrations currently targeting it */
    guint inbound_limit;    /* its inbound limit; 0 = none */
} VmigMigrationCandidate;

/**
 * vmig_migration_choose_target:
 * @candidates: (array length=n_candidates): every node known
 * @source: the source node (never chosen)
 * @added_selector: (nullable): the VMIM's spec.addedNodeSelector (all must match)
 * @vmi_selector: (nullable): the VMI's spec.nodeSelector (it still has to hold on the target)
 * @reason: (out) (transfer full) (optional): when nothing qualifies, why, node by node in
 *   name order ("no eligible target node: node-b: cordoned; node-c: agent not ready")
 *
 * Filters and ranks the targets the way KubeVirt's scheduler would see them for a migration
 * target pod (selectors, schedulable, not draining) plus what only vmigrated knows (agent
 * ready, inbound limit), then prefers the node with the fewest inbound migrations, ties by
 * name, so the choice is deterministic. Pure.
 *
 * Returns: (transfer none) (nullable): the chosen candidate's name.
 */
const char *vmig_migration_choose_target(const VmigMigrationCandidate *candidates,
                                         guint n_candidates, const char *source,
                                         GHashTable *added_selector, GHashTable *vmi_selector,
                                         char **reason);

/* Names for logs and tests. (transfer none) */
const char *vmig_migration_action_to_string(VmigMigrationAction action);
const char *vmig_migration_role_to_string(VmigMigrationRole role);

G_END_DECLS
