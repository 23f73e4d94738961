/* controller-private.h - shared by the controller's files (not installed). */
#pragma once

#include "vmig/capability.h"
#include "vmig/controller.h"
#include "vmig/kube.h"
#include "vmig/metrics.h"
#include "vmig/migration.h"
#include "vmig/model.h"
#include "vmig/proxy.h"
#include "vmig/slots.h"
#include "vmig/virt.h"

#include "edit.h"

G_BEGIN_DECLS

/* Annotations vmigrated keeps on a VMIM (they survive CRD pruning, unlike unknown
 * status fields). */
#define VMIG_CTL_ANN_SOURCE   "vmigrated.kubevirt.io/source"   /* JSON: domain XML, host facts */
#define VMIG_CTL_ANN_TARGET   "vmigrated.kubevirt.io/target"   /* JSON: target emulator */
#define VMIG_CTL_ANN_PROGRESS "vmigrated.kubevirt.io/progress" /* JSON: job figures */
/* Heartbeat Lease annotations. */
#define VMIG_CTL_ANN_ADDRESS     "vmigrated.kubevirt.io/migration-address"
#define VMIG_CTL_LEASE_PREFIX    "vmigrated-"
#define VMIG_CTL_LEASE_SECONDS   40
#define VMIG_CTL_LABEL_VMI_NAME  "kubevirt.io/vmi-name"
#define VMIG_CTL_LABEL_NODE_NAME "kubevirt.io/nodeName"

typedef enum {
    CTL_INF_VMIM,
    CTL_INF_VMI,
    CTL_INF_NODE,
    CTL_INF_LEASE,
    CTL_INF_PVC,
    CTL_INF_DV,
    CTL_INF_KUBEVIRT,
    CTL_INF_POLICY,
    CTL_INF_NAMESPACE,
    CTL_N_INF,
} CtlInformer;

typedef struct _CtlJob CtlJob;
typedef struct _CtlBudget CtlBudget;

/* Local runtime of one VMIM on this node. */
struct _CtlJob {
    VmigController *ctl;
    char *key; /* "ns/name" of the VMIM */
    char *ns;
    char *name;
    char *uid;
    char *vmi_name;
    gboolean busy; /* an action is in flight; its completion re-queues the key */
    guint wake_id; /* timer for the decision's wake_at */
    gint64 wake_at_ms;
    VmigMigrationAction last_action;
    char *last_reason;
    guint failures;      /* consecutive action errors, for backoff */
    char *chosen_target; /* the target selection behind a SCHEDULE decision */

    /* source */
    gboolean proxy_source;
    VmigVirtConn *conn;
    VmigVirtDomain *dom;
    VmigVirtMigration *migration;
    gboolean job_done;
    gboolean job_ok;
    char *job_reason;
    VmigVirtOutcome *outcome;
    gboolean progress_writing;
    gint64 progress_written_ms;
    gint64 started_ms;
    char *source_node; /* for the completion message */
    char *target_node;
    guint64 last_processed; /* progress figures for status and metrics */
    guint64 last_remaining;
    guint64 last_total;
    guint64 last_dirty_rate;
    guint64 last_mem_bps;
    guint64 last_iteration;
    gboolean postcopy;
    gboolean metrics_completed; /* counted once, however often the completion is retried */

    /* recover.c: a post-copy that failed is being resumed (B14) */
    gboolean pc_recovering;
    gint64 pc_since_ms;    /* the failure was seen (wall ms) */
    gint64 pc_deadline_ms; /* give up then */
    gint64 pc_next_ms;     /* next resume attempt not before */
    gboolean pc_gave_up;   /* the deadline passed: Failed is being written */
    guint pc_attempts;
    char *pc_error;   /* the last attempt's failure */
    char *pc_give_up; /* the Failed reason at the deadline */
    char *pc_event;   /* the PostCopyRecovering message, repeated per failed attempt (the first
                         may be lost with the link) */
    VmigVirtMigration *pc_ended; /* the call that failed; freed before the next one */
    /* budget.c: this node's bandwidth budget; MiB/s, 0 = none */
    gboolean budget_member;       /* counted in the split: from START until the call ended */
    gboolean budget_postcopy;     /* the call allows post-copy: set its post-copy speed too */
    guint64 budget_cap_mibps;     /* its own limit (bandwidthPerMigration) */
    guint64 budget_share_mibps;   /* its share at the last split */
    guint64 budget_applied_mibps; /* the speed libvirt has (0: unlimited or not known) */

    /* target */
    gboolean proxy_target;
    gboolean block_migration; /* the NBD channel is served */
    gboolean domain_here;
    gboolean probing;

    /* slots.c: the limits' slot Leases this VMIM holds (index + 1; 0 = none) */
    guint slot_cluster;
    guint slot_outbound;
    guint slot_inbound;
    char *slot_inbound_node;
    guint slot_attempts;          /* waits so far, for the backoff */
    gint64 slot_retry_at_ms;      /* no new attempt before (wall ms) */
    char *slot_reason;            /* the last wait reason; set while waiting for a slot */
    VmigSlotsKind slot_wait_kind; /* what it waits for (while slot_reason is set) */
    char *slot_wait_node;         /* its node (OUTBOUND/INBOUND) */
    gboolean slot_woken;          /* a slot freed while an acquisition was in flight */
    gint64 slot_defer_since_ms;   /* leaving free cluster slots to other nodes since (wall ms) */
    gboolean slot_claiming;       /* the cluster + outbound acquisition is in flight */
};

struct _VmigController {
    const VmigAgentConfig *cfg;
    VmigKubeClient *kube;
    VmigKubeRecorder *recorder;
    VmigKubeInformer *inf[CTL_N_INF];
    gboolean started;
    gboolean conditions_written; /* the start-up pass of vmig_ctl_vmi_condition ran */
    GHashTable *jobs;            /* VMIM key -> CtlJob* */
    GHashTable *vmi_index;       /* "ns/vmi" -> GHashTable set of VMIM keys */
    GHashTable *queue;           /* VMIM keys to reconcile */
    guint queue_idle;
    VmigProxy *proxy;
    guint heartbeat_id;
    gboolean heartbeat_busy;
    char *lease_namespace;
    gboolean shutting_down;
    GSourceFunc shutdown_done;
    gpointer shutdown_data;
    guint shutdown_timer;
    guint shutdown_deadline;
    guint drain_idle;          /* a drain pass is queued */
    guint drain_wake;          /* backoff timer */
    gboolean drain_busy;       /* a drain pass's writes are in flight */
    GHashTable *drain_created; /* "ns/vmi" -> creation time (ms), until the informer shows it */
    VmigMetrics *metrics;      /* (nullable): fed by metrics.c */
    guint metrics_timer;       /* pending recount of the VMIM-derived gauges */
    guint slots_timer;         /* slots.c: renew/release pass */
    guint slots_kick;          /* slots.c: an early pass after a migration ended */
    CtlBudget *budget;         /* budget.c */
};

/* controller.c */
void vmig_ctl_enqueue(VmigController *ctl, const char *key);
/* Re-queue the job after @delay_ms (replaces an earlier wake-up). */
void vmig_ctl_job_retry(CtlJob *job, guint delay_ms);
/* The job's action is over (busy = FALSE); a key queued meanwhile is reconciled now. */
void vmig_ctl_job_idle(CtlJob *job);
gint64 vmig_ctl_wall_ms(void);
/* An RFC 3339 time (metav1.Time) in ms since the epoch; 0 for NULL or unparsable. */
gint64 vmig_ctl_parse_time_ms(const char *s);
char *vmig_ctl_node_address(VmigController *ctl, const char *node);
gboolean vmig_ctl_node_ready(VmigController *ctl, const char *node, gint64 now_ms);
gboolean vmig_ctl_holder_live(const char *namespace_, const char *uid, gpointer ctl);
gboolean vmig_ctl_has_finalizer(JsonNode *vmim);
/* The target the scheduler would pick for @vmi now (transfer full), or NULL with @reason
 * (transfer full) naming every node's exclusion; @exclude_key: a VMIM not to count. */
char *vmig_ctl_choose_target(VmigController *ctl, VmigModelVmi *vmi, GHashTable *added_selector,
                             const char *exclude_key, char **reason);

/* policy.c */
char *vmig_ctl_drain_taint_key(VmigController *ctl);
VmigModelEvictionStrategy vmig_ctl_cluster_eviction_strategy(VmigController *ctl);

/* drain.c: node drain -> evacuation VMIMs (vmig/evacuation.h) */
void vmig_ctl_drain_schedule(VmigController *ctl);
void vmig_ctl_drain_stop(VmigController *ctl);

/* policy.c: source checks and limits from the checks and migconfig modules */
/* LiveMigratable for @vmi; @reason (transfer full) says why not; @copy_disks (transfer full)
 * lists the disk targets a block migration copies (NULL or empty: none). */
gboolean vmig_ctl_check_source(VmigController *ctl, VmigModelVmi *vmi, char **reason,
                               GStrv *copy_disks);
gboolean vmig_ctl_allow_host_passthrough(VmigController *ctl, VmigModelVmi *vmi);

/* The migration settings in force for one VMI (KubeVirt CR, then MigrationPolicy). */
typedef struct {
    guint64 bandwidth_mibps; /* 0 = unlimited */
    gboolean auto_converge;
    gboolean allow_postcopy;
    guint completion_timeout_per_gib_s;
    guint progress_timeout_s;
} CtlEffective;
void vmig_ctl_effective(VmigController *ctl, VmigModelVmi *vmi, CtlEffective *out);
/* Recompute and write the LiveMigratable condition of a VMI on this node (when changed). */
void vmig_ctl_vmi_condition(VmigController *ctl, JsonNode *vmi_node);
void vmig_ctl_limits(VmigController *ctl, guint *per_cluster, guint *per_node);
/* The source's choice for a migration it schedules now: plain TCP when the KubeVirt CR's
 * spec.configuration.migrations.disableTLS is true or this agent runs with --disable-tls. */
gboolean vmig_ctl_disable_tls(VmigController *ctl);
/* The transport recorded in the source annotation (VMIG_CTL_ANN_SOURCE, member "disableTLS"):
 * true -> PLAIN; any other value -> TLS (never plain by accident); member absent or the
 * annotation missing or not a JSON object (written by an agent that predates the member) ->
 * DEFAULT, the node's own setting. Pure. */
VmigProxyTransport vmig_ctl_source_transport(const char *source_annotation);

/* actions.c: perform a decision; the job is busy until its completion re-queues it */
void vmig_ctl_perform(CtlJob *job, const VmigMigrationDecision *d, VmigModelVmim *vmim,
                      VmigModelVmi *vmi);
void vmig_ctl_job_release_local(CtlJob *job);
/* The pod-side URIs of the migration's proxy sockets (dconnuri, migrate_uri, the NBD
 * disks URI; KubeVirt's names under virtShareDir) and the destination XML built from the
 * VMIM's source and target annotations (NULL when either is missing); all transfer full.
 * @vmim: (nullable). */
void vmig_ctl_migration_uris(CtlJob *job, VmigModelVmim *vmim, char **dconnuri, char **migrate_uri,
                             char **disks_uri, char **dest_xml);

/* actions.c: shared with recover.c */
void vmig_ctl_event(CtlJob *job, JsonNode *involved, gboolean warning, const char *reason,
                    const char *message);
/* The pod of @ns/@name: its share dir on this host and its libvirt URI (transfer full). */
gboolean vmig_ctl_pod_paths(VmigController *ctl, const char *ns, const char *name, const char *uid,
                            char **share_dir, char **libvirt_uri, GError **error);
/* Opens the VMI pod's libvirt and finds the domain. Blocking: worker threads only. */
gboolean vmig_ctl_open_domain(VmigController *ctl, const char *ns, const char *name,
                              const char *uid, VmigVirtConn **conn, VmigVirtDomain **dom,
                              GError **error);
/* The done callback of every migration call of a job (data = the CtlJob). */
void vmig_ctl_migration_done(VmigVirtMigration *mig, const VmigVirtOutcome *outcome, gpointer data);
/* Progress samples and monitor actions of job->migration reach status and metrics. */
void vmig_ctl_watch_migration(CtlJob *job);
/* Target: the VMI's targetNodeAddress and targetDirectMigrationNodePorts from our proxy. */
void vmig_ctl_publish_target(CtlJob *job, const char *address);
/* The VMI's migrationState.mode = PostCopy (the target reopens its listeners by it). */
void vmig_ctl_write_mode_postcopy(CtlJob *job);
/* The progress annotation now, with @state ("Running", "PostCopyRecovering", ...). */
void vmig_ctl_write_progress(CtlJob *job, const char *state);
/* recover.c: post-copy failure recovery, source role (B14) */
/* From the done callback: TRUE when @outcome is a resumable post-copy failure and the job
 * stays Running to resume it (the caller does nothing more); FALSE otherwise. */
gboolean vmig_ctl_recover_on_outcome(CtlJob *job, VmigVirtMigration *mig,
                                     const VmigVirtOutcome *outcome);
/* A restarted daemon found the source domain paused with reason post-copy failed. */
void vmig_ctl_recover_adopt(CtlJob *job);
/* RECOVER_POSTCOPY: source proxy up again, then virDomainMigrateToURI3 + POSTCOPY_RESUME. */
void vmig_ctl_recover_attempt(CtlJob *job, VmigModelVmim *vmim, VmigModelVmi *vmi);
/* REOPEN_TARGET: the target restarted during post-copy: listeners again, ports published. */
void vmig_ctl_recover_reopen_target(CtlJob *job, VmigModelVmim *vmim, VmigModelVmi *vmi);
/* COMPLETE while recovering: the deadline passed (logged and counted once). */
void vmig_ctl_recover_gave_up(CtlJob *job);
/* The recovery facts of the state machine. */
void vmig_ctl_recover_facts(CtlJob *job, VmigMigrationFacts *f);
/* The recovery's figures in the progress annotation (attempts, deadline, last error). */
void vmig_ctl_recover_progress(CtlJob *job, JsonBuilder *b);
/* Frees the recovery state (release, job free). */
void vmig_ctl_recover_clear(CtlJob *job);
/* controller.c: the resource an informer mirrors */
const VmigKubeResource *vmig_ctl_informer_resource(CtlInformer which);

/* metrics.c: each called from one point; no-ops without a registry */
void vmig_ctl_metrics_sample(CtlJob *job);  /* ctl_on_sample */
void vmig_ctl_metrics_started(CtlJob *job); /* virDomainMigrateToURI3 started */
/* recover.c: "failed", "attempt", "recovered", "gave_up" */
void vmig_ctl_metrics_recovery(CtlJob *job, const char *result);
void vmig_ctl_metrics_complete(CtlJob *job, gboolean ok); /* ctl_complete */
void vmig_ctl_metrics_connection(VmigController *ctl, VmigProxyChannel channel,
                                 VmigProxyTransport transport, guint64 forward, guint64 reverse,
                                 gboolean ok); /* proxy connection ended */
void vmig_ctl_metrics_api_error(VmigController *ctl, const char *resource); /* write failed */
void vmig_ctl_metrics_dirty(VmigController *ctl);                           /* VMIM cache changed */
void vmig_ctl_metrics_stop(VmigController *ctl);

/* slots.c: the migration limits as slot Leases (vmig/slots.h) */
typedef enum {
    CTL_SLOTS_OK,   /* the slots the action needs are held: go on */
    CTL_SLOTS_BUSY, /* an acquisition started (job busy); its end re-queues the key */
    CTL_SLOTS_WAIT, /* a limit is full: *reason says which; retry after the backoff */
} CtlSlotsGate;
/* Before CLAIM (cluster + outbound slots) and SCHEDULE (@target's inbound slot); OK for any
 * other action. @reason (transfer none) lives until the next call. */
CtlSlotsGate vmig_ctl_slots_gate(CtlJob *job, VmigMigrationAction action, const char *target,
                                 const char **reason);
/* The delay before the job's next slot attempt, ms (its jittered backoff). */
guint vmig_ctl_slots_retry_ms(CtlJob *job);
/* A migration ended: release its slots soon (the periodic pass would within 5 s). */
void vmig_ctl_slots_kick(VmigController *ctl);
/* Lease informer: @lease added or updated, or (@deleted) its last state. For a slot Lease that
 * is free now, re-queue at once the jobs of this node waiting for that kind (and node);
 * re-queue the jobs deferring to other nodes on any cluster or outbound slot change.
 * Returns FALSE for a Lease that is no slot. */
gboolean vmig_ctl_slots_lease_changed(VmigController *ctl, JsonNode *lease, gboolean deleted);
/* VMIM informer: a VMIM turned final or went (@new_obj NULL): its slots are free in our cache
 * now (the holder's daemon releases them): wake this node's slot waiters and release ours. */
void vmig_ctl_slots_vmim_changed(VmigController *ctl, JsonNode *old_obj, JsonNode *new_obj);
void vmig_ctl_slots_start(VmigController *ctl);
void vmig_ctl_slots_stop(VmigController *ctl);
/* Slots of @kind on @node (NULL for the cluster) held right now, from the Lease cache. */
guint vmig_ctl_slots_count(VmigController *ctl, VmigSlotsKind kind, const char *node);

/* budget.c: the node's migration bandwidth budget (--migration-bandwidth-budget) */
/* START: the job will run a migration capped at @cap_mibps (0 = none); with the budget on it
 * joins the split now, so the others slow down before it starts. */
void vmig_ctl_budget_join(CtlJob *job, guint64 cap_mibps, gboolean allow_postcopy);
/* The bandwidth for its virDomainMigrateToURI3 call (MiB/s, 0 = unlimited): its share with
 * the budget on, else its cap; recorded as applied. */
guint64 vmig_ctl_budget_share(CtlJob *job);
/* The call ended or never started: the others get its share (idempotent). */
void vmig_ctl_budget_leave(CtlJob *job);
/* CLAIM gate: with the budget on, the number of other migrations of this node when they
 * already take every MiB/s of it (each needs 1 MiB/s), else 0. */
guint vmig_ctl_budget_blocks(VmigController *ctl, CtlJob *job);
void vmig_ctl_budget_start(VmigController *ctl);
void vmig_ctl_budget_stop(VmigController *ctl);

/* heartbeat.c */
/* A new coordination.k8s.io/v1 Lease @name in the agents' lease namespace: apiVersion,
 * kind and metadata only (transfer full; json_object_unref). Heartbeat and slot Leases. */
JsonObject *vmig_ctl_lease_object(VmigController *ctl, const char *name);
void vmig_ctl_heartbeat_start(VmigController *ctl);
void vmig_ctl_heartbeat_stop(VmigController *ctl);

G_END_DECLS
