/* vmig/slots.h - migration slots: limits that hold under races, the pure part.
 *
 * parallelMigrationsPerCluster, parallelOutboundMigrationsPerNode and the per-node
 * inbound limit are enforced with coordination.k8s.io/v1 Lease objects used as
 * counting semaphores: one Lease per slot, named by kind, node and index
 * (vmigrated-slot-cluster-<i>, vmigrated-slot-out-<node>-<j>, vmigrated-slot-in-<node>-<k>).
 * A migration holds a slot by writing its VMIM UID into spec.holderIdentity with a
 * create (409 = taken by someone else) or an update carrying the resourceVersion read,
 * so two daemons can never both believe they hold the same slot, whatever their caches
 * show. This module decides, from a snapshot of the slot Leases and the VMIM cache,
 * which index to try and how, whether a slot is free, when to renew, how long to back
 * off and what the wait reason says. No I/O; the controller (src/controller/slots.c)
 * reads and writes the Leases.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define VMIG_SLOTS_ERROR (vmig_slots_error_quark())
GQuark vmig_slots_error_quark(void);

typedef enum {
    VMIG_SLOTS_ERROR_INVALID, /* a node name that cannot be part of a Lease name */
} VmigSlotsError;

/* The three limits. */
typedef enum {
    VMIG_SLOTS_KIND_CLUSTER,  /* parallelMigrationsPerCluster */
    VMIG_SLOTS_KIND_OUTBOUND, /* parallelOutboundMigrationsPerNode (source node) */
    VMIG_SLOTS_KIND_INBOUND,  /* --inbound-migrations (target node) */
} VmigSlotsKind;

/* Renewal: the holder renews every VMIG_SLOTS_RENEW_MS; a slot whose holder has not
 * renewed for leaseDurationSeconds is free (the holder's daemon died). */
#define VMIG_SLOTS_LEASE_DURATION_S 40
#define VMIG_SLOTS_RENEW_MS         10000

/* One slot Lease as read from the API server. Strings borrowed. */
typedef struct {
    gboolean exists;      /* the Lease object exists */
    const char *holder;   /* spec.holderIdentity: a VMIM UID; NULL or "" = none */
    gint64 renew_ms;      /* spec.renewTime, ms since the epoch; 0 = unset */
    guint duration_s;     /* spec.leaseDurationSeconds; 0 = unset */
    gboolean holder_live; /* the VMIM named by holder is in the cache and not final */
} VmigSlotsLease;

/* How to take the chosen slot. */
typedef enum {
    VMIG_SLOTS_STEP_HELD,   /* this VMIM already holds it: nothing to write (renew later) */
    VMIG_SLOTS_STEP_CREATE, /* the Lease does not exist: create it (409 = lost the race) */
    VMIG_SLOTS_STEP_UPDATE, /* it exists and is free: update with its resourceVersion */
    VMIG_SLOTS_STEP_FULL,   /* every slot below the limit is busy: wait */
} VmigSlotsStep;

typedef struct {
    VmigSlotsStep step;
    guint index; /* the slot index to hold/create/update (undefined when FULL) */
    guint busy;  /* slots held by others (live holders), for the wait reason */
} VmigSlotsPick;

/**
 * vmig_slots_lease_name:
 * @kind: which limit
 * @node: (nullable): the node for OUTBOUND/INBOUND; ignored for CLUSTER
 * @index: the slot index, 0-based
 * @error: VMIG_SLOTS_ERROR_INVALID when @node is missing or not a DNS-1123 subdomain
 *   short enough for a Lease name (253 characters in total)
 *
 * Returns: (transfer full) (nullable): "vmigrated-slot-cluster-3",
 *   "vmigrated-slot-out-node-a-0", "vmigrated-slot-in-node-b-1"; NULL on error.
 */
char *vmig_slots_lease_name(VmigSlotsKind kind, const char *node, guint index, GError **error);

/**
 * vmig_slots_is_free:
 * @lease: the slot
 * @now_ms: wall clock, ms since the epoch
 *
 * A slot is free when it does not exist, has no holder, its holder stopped renewing
 * (renewTime + leaseDurationSeconds <= now; an unset renewTime counts as expired) or
 * the holder VMIM is final or gone from the cache (@lease->holder_live FALSE).
 */
gboolean vmig_slots_is_free(const VmigSlotsLease *lease, gint64 now_ms);

/**
 * vmig_slots_pick:
 * @leases: (array length=n_leases): the slot Leases of one kind and node, by index;
 *   may be longer than @limit (the limit was lowered: holders above it still count)
 * @n_leases: how many
 * @limit: the limit (slots 0..limit-1 may be taken); 0 = no slot can be taken
 * @uid: the VMIM asking
 * @now_ms: wall clock, ms since the epoch
 * @out: (out caller-allocates): the step
 *
 * Picks the slot for @uid: the one it already holds (any index, also above the limit,
 * so a restart finds its own slot), else - unless live holders already fill @limit -
 * the lowest free index below @limit. Lowest-first makes every daemon contend for the
 * same Lease, so the API server's precondition decides the race and at most @limit
 * live holders exist at any instant. Pure.
 */
void vmig_slots_pick(const VmigSlotsLease *leases, guint n_leases, guint limit, const char *uid,
                     gint64 now_ms, VmigSlotsPick *out);

/**
 * vmig_slots_needs_renew:
 * @lease: a slot held by us
 * @now_ms: wall clock
 *
 * TRUE when the last renewTime is VMIG_SLOTS_RENEW_MS or more ago (or unset).
 */
gboolean vmig_slots_needs_renew(const VmigSlotsLease *lease, gint64 now_ms);

/**
 * vmig_slots_backoff_ms:
 * @attempt: how many times this VMIM already waited for a slot (0 = first wait)
 * @random: a uniformly random 32-bit value (g_random_int() in the controller)
 *
 * The retry delay for a waiting VMIM: 500 ms doubling per attempt up to 4000 ms, plus
 * up to half of that again at random, so daemons draining at once do not retry in
 * lock-step and take turns on freed slots. Pure (the randomness is an argument).
 *
 * Returns: the delay, ms.
 */
guint vmig_slots_backoff_ms(guint attempt, guint32 random);

/**
 * vmig_slots_wait_reason:
 * @kind: the limit that is full
 * @node: (nullable): its node (OUTBOUND/INBOUND)
 * @busy: live holders
 * @limit: the limit
 *
 * Returns: (transfer full): "waiting: cluster limit 5/5",
 *   "waiting: outbound limit 2/2 on node-a", "waiting: inbound limit 2/2 on node-b".
 */
char *vmig_slots_wait_reason(VmigSlotsKind kind, const char *node, guint busy, guint limit);

/* Fairness between nodes (best effort: the Leases alone keep the limits). Before it
 * contends for a free cluster slot, a migration leaves it to another node that holds fewer
 * outbound slots and has a migration waiting (max-min fair shares). A migration defers at
 * most VMIG_SLOTS_DEFER_MAX_MS in a row, then contends anyway, so a dead or misreporting
 * node cannot starve it. */
#define VMIG_SLOTS_DEFER_MAX_MS 10000

/* One node's share of the cluster slots, from the Lease and VMIM caches. Strings borrowed. */
typedef struct {
    const char *node;       /* node name */
    guint held;             /* outbound slots it holds (live holders) */
    guint waiting;          /* its migrations waiting for a slot (Pending, holding none) */
    gint64 oldest_ms;       /* creationTimestamp of its oldest waiting VMIM, ms */
    const char *oldest_key; /* that VMIM's "ns/name", to break ties */
} VmigSlotsShare;

typedef enum {
    VMIG_SLOTS_FAIR_CONTEND, /* this migration's node is due a free slot: contend */
    VMIG_SLOTS_FAIR_DEFER,   /* leave the free slots to other nodes for now */
    VMIG_SLOTS_FAIR_OVERDUE, /* it would defer, but has deferred long enough: contend */
} VmigSlotsFair;

/**
 * vmig_slots_fair:
 * @shares: (array length=n_shares): every node with a migration waiting, this node included
 * @n_shares: how many
 * @self: the index of this node in @shares
 * @rank: how many of this node's waiting migrations come before the asking one (oldest
 *   creationTimestamp first, then ns/name)
 * @free: cluster slots free (parallelMigrationsPerCluster minus live holders)
 * @per_node: parallelOutboundMigrationsPerNode (a node holding that many wants no more)
 * @deferred_ms: how long the asking migration has deferred in a row, ms (0 = not yet)
 * @winner: (out) (optional) (transfer none): on DEFER/OVERDUE, the node the slot is left
 *   to; NULL when this node's share is all its own outbound limit leaves and the migrations
 *   ahead of the asking one fill it (the wait is then the outbound limit's)
 *
 * Hands the @free slots out one by one, each to the node with the fewest outbound slots
 * held plus handed out that still wants one (ties: the oldest waiting VMIM, then its
 * ns/name, then the node name - a total order, so every daemon reading the same caches
 * reaches the same split and exactly one node wins a tie). The asking migration contends
 * when its @rank is below its node's share, or when no other node gets a slot (the order
 * among one node's own migrations is left to the Lease race). Pure.
 *
 * Returns: CONTEND, DEFER, or OVERDUE when it would defer but @deferred_ms reached
 *   VMIG_SLOTS_DEFER_MAX_MS.
 */
VmigSlotsFair vmig_slots_fair(const VmigSlotsShare *shares, guint n_shares, guint self, guint rank,
                              guint free, guint per_node, gint64 deferred_ms, const char **winner);

/**
 * vmig_slots_fair_reason:
 * @busy: live cluster slot holders
 * @limit: parallelMigrationsPerCluster
 * @winner: the node the slot is left to
 *
 * Returns: (transfer full): "waiting: cluster limit 1/2, fair share to node-b".
 */
char *vmig_slots_fair_reason(guint busy, guint limit, const char *winner);

/* "cluster", "outbound", "inbound". (transfer none) */
const char *vmig_slots_kind_to_string(VmigSlotsKind kind);

G_END_DECLS
