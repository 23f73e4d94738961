/* vmig/evacuation.h - node drain: which VMIs to move, which migrations to take back.
 *
 * When this node is cordoned (spec.unschedulable, as `kubectl cordon`/`drain` do) or carries
 * the drain taint (KubeVirt's nodeDrainTaintKey, default kubevirt.io/drain), every VMI on it
 * is handled by its evictionStrategy (the VMI's, else the cluster default): LiveMigrate gets
 * an evacuation VMIM, or a visible refusal when it cannot move; LiveMigrateIfPossible gets one
 * only when it can move; None and External get nothing. A failed evacuation is retried with
 * backoff (field case B17). When the node is schedulable again, evacuation VMIMs that have not
 * started running are deleted and nothing new is created; running ones finish.
 *
 * Pure: the controller gathers the facts from its caches and performs the actions.
 */
#pragma once

#include <glib.h>

#include "vmig/model.h"

G_BEGIN_DECLS

/* KubeVirt's annotation on an evacuation VMIM (value: the drained node) and its name prefix. */
#define VMIG_EVACUATION_ANNOTATION    "kubevirt.io/evacuationMigration"
#define VMIG_EVACUATION_GENERATE_NAME "kubevirt-evacuation-"

/* Retry backoff after a failed evacuation: 20 s, doubling, capped. */
#define VMIG_EVACUATION_BACKOFF_INITIAL_MS 20000
#define VMIG_EVACUATION_BACKOFF_MAX_MS     300000

/* An evacuation VMIM of one VMI, as seen in the cache. */
typedef struct {
    const char *name;
    VmigModelMigrationPhase phase;
    gint64 ended_ms; /* endTimestamp (or last transition) of a final one; 0 = unknown */
} VmigEvacuationVmim;

/* One VMI on the node. Strings borrowed. */
typedef struct {
    const char *namespace_;
    const char *name;
    VmigModelEvictionStrategy strategy;    /* effective: the VMI's, else the cluster default */
    gboolean migratable;                   /* the LiveMigratable verdict */
    const char *not_migratable;            /* its reason, for the refusal */
    gboolean has_unfinished_vmim;          /* any non-final VMIM for it (evacuation or not) */
    const char *evacuation_node;           /* status.evacuationNodeName */
    const VmigEvacuationVmim *evacuations; /* this node's evacuation VMIMs of the VMI */
    guint n_evacuations;
} VmigEvacuationVmi;

typedef enum {
    VMIG_EVACUATION_ACTION_CREATE,  /* post an evacuation VMIM, set evacuationNodeName */
    VMIG_EVACUATION_ACTION_BLOCKED, /* cannot move: Warning event + visible reason */
    VMIG_EVACUATION_ACTION_BACKOFF, /* a failed evacuation: retry at wake_at_ms */
    VMIG_EVACUATION_ACTION_DELETE,  /* uncordoned: take back a VMIM that is not running */
    VMIG_EVACUATION_ACTION_CLEAR,   /* uncordoned: clear evacuationNodeName */
} VmigEvacuationActionKind;

typedef struct {
    VmigEvacuationActionKind kind;
    const char *namespace_; /* the VMI */
    const char *name;
    const char *vmim;  /* DELETE: the VMIM's name */
    char *reason;      /* BLOCKED / BACKOFF: the message (owned) */
    gint64 wake_at_ms; /* BACKOFF: when to try again */
} VmigEvacuationAction;

/**
 * vmig_evacuation_decide:
 * @node: the drained (or not) node's name
 * @draining: the node is cordoned or carries the drain taint
 * @vmis: (array length=n_vmis): every VMI whose status.nodeName is @node
 * @now_ms: wall clock (ms), for the backoff
 *
 * Returns: (transfer full) (element-type VmigEvacuationAction): the actions, in VMI order;
 *   free with g_ptr_array_unref().
 */
GPtrArray *vmig_evacuation_decide(const char *node, gboolean draining,
                                  const VmigEvacuationVmi *vmis, guint n_vmis, gint64 now_ms);

/**
 * vmig_evacuation_backoff_ms:
 * @failures: consecutive failed evacuations of one VMI (>= 1)
 * Returns: the wait before the next attempt (ms): 20 s, 40 s, 80 s, ... capped at 300 s.
 */
gint64 vmig_evacuation_backoff_ms(guint failures);

/* Names for logs and tests. (transfer none) */
const char *vmig_evacuation_action_to_string(VmigEvacuationActionKind kind);

G_END_DECLS
