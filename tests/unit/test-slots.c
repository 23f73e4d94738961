/* test-slots.c - slot accounting (which Lease, free or not), renewal, backoff, reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmig/slots.h"

#define ME    "uid-me"
#define OTHER "uid-other"
#define T0    ((gint64)1800000000000)

/* Shorthands for one Lease. */
#define NONE                                                                                       \
    {                                                                                              \
        .exists = FALSE                                                                            \
    }
#define EMPTY                                                                                      \
    {                                                                                              \
        .exists = TRUE, .holder = ""                                                               \
    }
#define LIVE(h)                                                                                    \
    {                                                                                              \
        .exists = TRUE, .holder = (h), .renew_ms = T0 - 1000, .duration_s = 40,                    \
        .holder_live = TRUE                                                                        \
    }
#define STALE(h)                                                                                   \
    {                                                                                              \
        .exists = TRUE, .holder = (h), .renew_ms = T0 - 40000, .duration_s = 40,                   \
        .holder_live = TRUE                                                                        \
    }
#define FINAL(h)                                                                                   \
    {                                                                                              \
        .exists = TRUE, .holder = (h), .renew_ms = T0 - 1000, .duration_s = 40,                    \
        .holder_live = FALSE                                                                       \
    }

static void
test_is_free(void **state)
{
    (void)state;
    static const struct {
        VmigSlotsLease lease;
        gboolean free;
    } rows[] = {
        {NONE, TRUE},
        {EMPTY, TRUE},
        {{.exists = TRUE, .holder = NULL}, TRUE},
        {LIVE(OTHER), FALSE},
        /* expires exactly at renewTime + leaseDurationSeconds */
        {STALE(OTHER), TRUE},
        {{.exists = TRUE,
          .holder = OTHER,
          .renew_ms = T0 - 39999,
          .duration_s = 40,
          .holder_live = TRUE},
         FALSE},
        /* the holder VMIM is final or gone: its daemon may not have released yet */
        {FINAL(OTHER), TRUE},
        /* written by someone else without times: do not block forever */
        {{.exists = TRUE, .holder = OTHER, .holder_live = TRUE}, TRUE},
        {{.exists = TRUE, .holder = OTHER, .renew_ms = T0, .holder_live = TRUE}, TRUE},
    };
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        if (vmig_slots_is_free(&rows[i].lease, T0) != rows[i].free)
            fail_msg("row %u: expected free=%d", i, rows[i].free);
    }
}

typedef struct {
    const char *name;
    VmigSlotsLease leases[6];
    guint n;
    guint limit;
    VmigSlotsStep step;
    guint index;
    guint busy;
} PickRow;

static void
test_pick(void **state)
{
    (void)state;
    static const PickRow rows[] = {
        {"nothing exists: create index 0", {NONE}, 0, 2, VMIG_SLOTS_STEP_CREATE, 0, 0},
        {"0 held by other: create 1", {LIVE(OTHER)}, 1, 2, VMIG_SLOTS_STEP_CREATE, 1, 1},
        {"0 empty: update 0", {EMPTY, LIVE(OTHER)}, 2, 2, VMIG_SLOTS_STEP_UPDATE, 0, 1},
        {"lowest free first", {LIVE(OTHER), EMPTY, EMPTY}, 3, 3, VMIG_SLOTS_STEP_UPDATE, 1, 1},
        {"full", {LIVE(OTHER), LIVE("uid-3")}, 2, 2, VMIG_SLOTS_STEP_FULL, 0, 2},
        {"stale holder: take it",
         {LIVE(OTHER), STALE("uid-3")},
         2,
         2,
         VMIG_SLOTS_STEP_UPDATE,
         1,
         1},
        {"final holder: take it",
         {FINAL(OTHER), LIVE("uid-3")},
         2,
         2,
         VMIG_SLOTS_STEP_UPDATE,
         0,
         1},
        {"already ours", {LIVE(OTHER), LIVE(ME)}, 2, 2, VMIG_SLOTS_STEP_HELD, 1, 0},
        {"ours even when expired (restart)", {STALE(ME)}, 1, 1, VMIG_SLOTS_STEP_HELD, 0, 0},
        {"ours above a lowered limit",
         {LIVE(OTHER), LIVE("uid-3"), LIVE(ME)},
         3,
         1,
         VMIG_SLOTS_STEP_HELD,
         2,
         0},
        /* limit lowered 3 -> 2: index 0 free, but 1 and 2 still held: 2 live >= 2 */
        {"lowered limit still holds",
         {EMPTY, LIVE(OTHER), LIVE("uid-3")},
         3,
         2,
         VMIG_SLOTS_STEP_FULL,
         0,
         2},
        /* limit lowered 3 -> 2: holder above the limit counts, index 0 free: 1 < 2 */
        {"lowered limit, room below",
         {EMPTY, EMPTY, LIVE("uid-3")},
         3,
         2,
         VMIG_SLOTS_STEP_UPDATE,
         0,
         1},
        {"lowered limit, busy below and above",
         {LIVE(OTHER), EMPTY, LIVE("uid-3")},
         3,
         2,
         VMIG_SLOTS_STEP_FULL,
         0,
         2},
        {"limit 0 never takes", {NONE}, 0, 0, VMIG_SLOTS_STEP_FULL, 0, 0},
        {"gap: missing Lease below the limit",
         {LIVE(OTHER), NONE, LIVE("uid-3")},
         3,
         3,
         VMIG_SLOTS_STEP_CREATE,
         1,
         2},
    };
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        const PickRow *r = &rows[i];
        VmigSlotsPick p;
        vmig_slots_pick(r->leases, r->n, r->limit, ME, T0, &p);
        if (p.step != r->step)
            fail_msg("%s: step %d, expected %d", r->name, p.step, r->step);
        if (r->step != VMIG_SLOTS_STEP_FULL && p.index != r->index)
            fail_msg("%s: index %u, expected %u", r->name, p.index, r->index);
        if (r->step != VMIG_SLOTS_STEP_HELD && p.busy != r->busy)
            fail_msg("%s: busy %u, expected %u", r->name, p.busy, r->busy);
    }
}

/* Whatever the Lease states, a pick never points at a busy slot or an index at or above
 * the limit (unless it is ours), and FULL only when live holders fill the limit. */
static void
test_pick_never_exceeds(void **state)
{
    (void)state;
    const VmigSlotsLease kinds[] = {NONE, EMPTY, LIVE(OTHER), STALE(OTHER), FINAL(OTHER)};
    VmigSlotsLease l[4];
    for (guint code = 0; code < 5 * 5 * 5 * 5; code++) {
        guint c = code, live = 0;
        for (guint i = 0; i < 4; i++, c /= 5) {
            l[i] = kinds[c % 5];
            live += !vmig_slots_is_free(&l[i], T0);
        }
        for (guint limit = 0; limit <= 5; limit++) {
            VmigSlotsPick p;
            vmig_slots_pick(l, 4, limit, ME, T0, &p);
            assert_int_equal(p.busy, live);
            if (p.step == VMIG_SLOTS_STEP_FULL) {
                assert_true(live >= limit);
                continue;
            }
            assert_true(live < limit);
            assert_true(p.index < limit);
            if (p.index < 4)
                assert_true(vmig_slots_is_free(&l[p.index], T0));
            assert_int_equal(p.step == VMIG_SLOTS_STEP_CREATE, p.index >= 4 || !l[p.index].exists);
        }
    }
}

static void
test_lease_name(void **state)
{
    (void)state;
    static const struct {
        VmigSlotsKind kind;
        const char *node;
        guint index;
        const char *name; /* NULL = error */
    } rows[] = {
        {VMIG_SLOTS_KIND_CLUSTER, NULL, 3, "vmigrated-slot-cluster-3"},
        {VMIG_SLOTS_KIND_CLUSTER, "ignored", 0, "vmigrated-slot-cluster-0"},
        {VMIG_SLOTS_KIND_OUTBOUND, "node-a", 0, "vmigrated-slot-out-node-a-0"},
        {VMIG_SLOTS_KIND_INBOUND, "node-b.example", 1, "vmigrated-slot-in-node-b.example-1"},
        {VMIG_SLOTS_KIND_OUTBOUND, NULL, 0, NULL},
        {VMIG_SLOTS_KIND_OUTBOUND, "", 0, NULL},
        {VMIG_SLOTS_KIND_INBOUND, "../etc", 0, NULL},
        {VMIG_SLOTS_KIND_INBOUND, "a/b", 0, NULL},
        {VMIG_SLOTS_KIND_INBOUND, "Node-A", 0, NULL},
        {VMIG_SLOTS_KIND_INBOUND, "-a", 0, NULL},
        {(VmigSlotsKind)7, "a", 0, NULL},
    };
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *name =
            vmig_slots_lease_name(rows[i].kind, rows[i].node, rows[i].index, &error);
        if (rows[i].name) {
            assert_non_null(name);
            assert_string_equal(name, rows[i].name);
        } else {
            assert_null(name);
            assert_true(g_error_matches(error, VMIG_SLOTS_ERROR, VMIG_SLOTS_ERROR_INVALID));
        }
    }
    /* a node name that makes the Lease name longer than 253 characters */
    g_autofree char *longnode = g_strnfill(240, 'a');
    g_autoptr(GError) error = NULL;
    g_autofree char *name = vmig_slots_lease_name(VMIG_SLOTS_KIND_INBOUND, longnode, 0, &error);
    assert_null(name);
    assert_non_null(strstr(error->message, "253"));
}

static void
test_renew(void **state)
{
    (void)state;
    VmigSlotsLease l = LIVE(ME);
    l.renew_ms = T0 - 9999;
    assert_false(vmig_slots_needs_renew(&l, T0));
    l.renew_ms = T0 - 10000;
    assert_true(vmig_slots_needs_renew(&l, T0));
    l.renew_ms = 0;
    assert_true(vmig_slots_needs_renew(&l, T0));
    /* renewing every 10 s keeps a 40 s Lease alive through three missed renewals */
    assert_true(VMIG_SLOTS_LEASE_DURATION_S * 1000 > 3 * VMIG_SLOTS_RENEW_MS);
}

static void
test_backoff(void **state)
{
    (void)state;
    static const struct {
        guint attempt;
        guint32 random;
        guint ms;
    } rows[] = {
        {0, 0, 500},  {0, 250, 750}, {0, 251, 500},   {1, 0, 1000},    {2, 0, 2000},
        {3, 0, 4000}, {4, 0, 4000},  {1000, 0, 4000}, {3, 2000, 6000}, {G_MAXUINT, 7, 4007},
    };
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        guint ms = vmig_slots_backoff_ms(rows[i].attempt, rows[i].random);
        if (ms != rows[i].ms)
            fail_msg("row %u: %u ms, expected %u", i, ms, rows[i].ms);
    }
    /* bounded and jittered: the spread covers half the base for every attempt */
    for (guint a = 0; a < 8; a++) {
        guint lo = G_MAXUINT, hi = 0;
        for (guint32 r = 0; r < 5000; r++) {
            guint ms = vmig_slots_backoff_ms(a, r * 2654435761u);
            lo = MIN(lo, ms);
            hi = MAX(hi, ms);
        }
        assert_true(lo >= 500 && hi <= 6000);
        assert_true(hi - lo >= lo / 2 - 1);
    }
}

static void
test_wait_reason(void **state)
{
    (void)state;
    g_autofree char *a = vmig_slots_wait_reason(VMIG_SLOTS_KIND_OUTBOUND, "node-a", 2, 2);
    assert_string_equal(a, "waiting: outbound limit 2/2 on node-a");
    g_autofree char *b = vmig_slots_wait_reason(VMIG_SLOTS_KIND_CLUSTER, NULL, 5, 5);
    assert_string_equal(b, "waiting: cluster limit 5/5");
    g_autofree char *c = vmig_slots_wait_reason(VMIG_SLOTS_KIND_INBOUND, "node-b", 3, 2);
    assert_string_equal(c, "waiting: inbound limit 3/2 on node-b");
    assert_string_equal(vmig_slots_kind_to_string((VmigSlotsKind)9), "unknown");
}

/* One row: the shares, who asks, and what it should do. */
static void
test_fair(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        VmigSlotsShare shares[3];
        guint n, self, rank, free, per_node;
        gint64 deferred_ms;
        VmigSlotsFair want;
        const char *winner;
    } rows[] = {
        {"alone: contend",
         {{"node-a", 0, 2, 100, "ns/a1"}},
         1,
         0,
         1,
         1,
         2,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
        {"the other holds fewer: defer",
         {{"node-a", 1, 1, 100, "ns/a2"}, {"node-b", 0, 2, 200, "ns/b1"}},
         2,
         0,
         0,
         1,
         2,
         0,
         VMIG_SLOTS_FAIR_DEFER,
         "node-b"},
        {"we hold fewer: contend",
         {{"node-a", 0, 1, 300, "ns/a2"}, {"node-b", 1, 2, 200, "ns/b1"}},
         2,
         0,
         0,
         1,
         2,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
        {"tie, the other's VMIM is older: defer",
         {{"node-a", 1, 1, 300, "ns/a2"}, {"node-b", 1, 1, 200, "ns/b2"}},
         2,
         0,
         0,
         1,
         2,
         0,
         VMIG_SLOTS_FAIR_DEFER,
         "node-b"},
        {"tie, ours is older: contend",
         {{"node-a", 1, 1, 100, "ns/a2"}, {"node-b", 1, 1, 200, "ns/b2"}},
         2,
         0,
         0,
         1,
         2,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
        {"tie on time too, the key decides",
         {{"node-a", 0, 1, 100, "ns/x"}, {"node-b", 0, 1, 100, "ns/w"}},
         2,
         0,
         0,
         1,
         2,
         0,
         VMIG_SLOTS_FAIR_DEFER,
         "node-b"},
        {"the same tie seen from the other node: contend",
         {{"node-a", 0, 1, 100, "ns/x"}, {"node-b", 0, 1, 100, "ns/w"}},
         2,
         1,
         0,
         1,
         2,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
        {"two free slots: one each, our first contends",
         {{"node-a", 0, 2, 300, "ns/a1"}, {"node-b", 0, 2, 200, "ns/b1"}},
         2,
         0,
         0,
         2,
         2,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
        {"two free slots: our second defers",
         {{"node-a", 0, 2, 300, "ns/a1"}, {"node-b", 0, 2, 200, "ns/b1"}},
         2,
         0,
         1,
         2,
         2,
         0,
         VMIG_SLOTS_FAIR_DEFER,
         "node-b"},
        {"plenty of slots: everyone contends",
         {{"node-a", 1, 2, 300, "ns/a1"}, {"node-b", 0, 2, 200, "ns/b1"}},
         2,
         0,
         1,
         5,
         4,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
        {"the other is at its own outbound limit: contend",
         {{"node-a", 1, 1, 300, "ns/a2"}, {"node-b", 0, 3, 200, "ns/b1"}},
         2,
         0,
         0,
         1,
         0,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
        {"the other's outbound limit leaves it one: we get the second",
         {{"node-a", 2, 2, 100, "ns/a3"}, {"node-b", 1, 3, 200, "ns/b2"}},
         2,
         0,
         0,
         2,
         3,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
        {"... unless its VMIM is older: it gets both",
         {{"node-a", 2, 2, 300, "ns/a3"}, {"node-b", 1, 3, 200, "ns/b2"}},
         2,
         0,
         0,
         2,
         3,
         0,
         VMIG_SLOTS_FAIR_DEFER,
         "node-b"},
        {"our own outbound limit binds: contend (the outbound pick says why)",
         {{"node-a", 2, 1, 300, "ns/a3"}, {"node-b", 0, 3, 200, "ns/b1"}},
         2,
         0,
         0,
         1,
         2,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
        {"only our own older migration is ahead: the race decides",
         {{"node-a", 0, 2, 300, "ns/a1"}, {"node-b", 2, 1, 200, "ns/b3"}},
         2,
         0,
         1,
         1,
         4,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
        {"our older migration fills our outbound limit: defer, no winner (outbound reason)",
         {{"node-a", 0, 2, 300, "ns/a1"}, {"node-b", 0, 2, 200, "ns/b1"}},
         2,
         0,
         1,
         4,
         1,
         0,
         VMIG_SLOTS_FAIR_DEFER,
         NULL},
        {"three nodes: the emptiest one first",
         {{"node-a", 1, 1, 100, "ns/a2"},
          {"node-b", 1, 1, 200, "ns/b2"},
          {"node-c", 0, 1, 300, "ns/c1"}},
         3,
         0,
         0,
         1,
         2,
         0,
         VMIG_SLOTS_FAIR_DEFER,
         "node-c"},
        {"deferred long enough: overdue",
         {{"node-a", 1, 1, 300, "ns/a2"}, {"node-b", 0, 2, 200, "ns/b1"}},
         2,
         0,
         0,
         1,
         2,
         VMIG_SLOTS_DEFER_MAX_MS,
         VMIG_SLOTS_FAIR_OVERDUE,
         "node-b"},
        {"just below the bound: still defer",
         {{"node-a", 1, 1, 300, "ns/a2"}, {"node-b", 0, 2, 200, "ns/b1"}},
         2,
         0,
         0,
         1,
         2,
         VMIG_SLOTS_DEFER_MAX_MS - 1,
         VMIG_SLOTS_FAIR_DEFER,
         "node-b"},
        {"no free slot: contend (the pick says full)",
         {{"node-a", 1, 1, 300, "ns/a2"}, {"node-b", 0, 2, 200, "ns/b1"}},
         2,
         0,
         0,
         0,
         2,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
        {"self out of range: contend",
         {{"node-b", 0, 2, 200, "ns/b1"}},
         1,
         3,
         0,
         1,
         2,
         0,
         VMIG_SLOTS_FAIR_CONTEND,
         NULL},
    };
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        const char *winner = "unset";
        VmigSlotsFair got =
            vmig_slots_fair(rows[i].shares, rows[i].n, rows[i].self, rows[i].rank, rows[i].free,
                            rows[i].per_node, rows[i].deferred_ms, &winner);
        if (got != rows[i].want || g_strcmp0(winner, rows[i].winner) != 0)
            fail_msg("row %u (%s): got %d winner %s, want %d winner %s", i, rows[i].what, got,
                     winner ? winner : "(null)", rows[i].want,
                     rows[i].winner ? rows[i].winner : "(null)");
    }
    g_autofree char *r = vmig_slots_fair_reason(1, 2, "node-b");
    assert_string_equal(r, "waiting: cluster limit 1/2, fair share to node-b");
}

/* A multi-node drain simulated in 500 ms ticks. At each tick every node reads the same
 * snapshot (its caches), decides for each of its waiting migrations whether to contend,
 * then the contenders race for the free cluster slots in a fixed order that always favours
 * the lowest node (the fastest daemon); a migration runs for its node's duration and frees
 * its slot. A "mute" node reports waiting migrations but never contends (dead or
 * misreporting). */
#define SIM_NODES 4
#define SIM_MAX   16

typedef struct {
    guint nodes, limit, per_node;
    guint waiting[SIM_NODES];  /* migrations to do */
    guint duration[SIM_NODES]; /* ticks one migration runs */
    gboolean mute[SIM_NODES];
    gboolean fair; /* FALSE: the old behaviour, everyone contends */
} SimSpec;

typedef struct {
    guint done_tick[SIM_NODES]; /* the tick its last migration took a slot */
    guint first_tick[SIM_NODES];
    guint max_gap;    /* the largest held[i] - held[j] while j had a migration waiting */
    guint over_limit; /* ticks with more than the limit running (must stay 0) */
    guint idle;       /* the longest run of ticks with a slot free while a non-mute node
                       * below its outbound limit waited */
    gboolean finished;
} SimResult;

#define SIM_TICK_MS 500

static void
sim_run(const SimSpec *sp, SimResult *res)
{
    guint idle_run = 0;
    guint waiting[SIM_NODES], held[SIM_NODES] = {0}, left[SIM_NODES][SIM_MAX] = {{0}};
    gint64 deferred_since[SIM_NODES][SIM_MAX] = {{0}}; /* by rank: the queue's head first */
    char keys[SIM_NODES][32], names[SIM_NODES][16];
    *res = (SimResult){0};
    for (guint i = 0; i < sp->nodes; i++) {
        waiting[i] = sp->waiting[i];
        g_snprintf(names[i], sizeof names[i], "node-%c", 'a' + i);
        res->first_tick[i] = G_MAXUINT;
    }
    for (guint tick = 0; tick < 400; tick++) {
        gint64 now = (gint64)tick * SIM_TICK_MS;
        /* slots free up */
        for (guint i = 0; i < sp->nodes; i++)
            for (guint r = 0; r < SIM_MAX; r++)
                if (left[i][r] && --left[i][r] == 0)
                    held[i]--;
        guint running = 0, pending = 0;
        for (guint i = 0; i < sp->nodes; i++) {
            running += held[i];
            pending += sp->mute[i] ? 0 : waiting[i];
        }
        if (pending == 0 && running == 0) {
            res->finished = TRUE;
            return;
        }
        /* the snapshot every node decides on */
        VmigSlotsShare shares[SIM_NODES];
        guint n = 0, idx[SIM_NODES];
        for (guint i = 0; i < sp->nodes; i++) {
            if (!waiting[i])
                continue;
            /* a node's oldest waiting VMIM: node i's j-th was created at j*10+i ms */
            guint next = sp->waiting[i] - waiting[i];
            g_snprintf(keys[i], sizeof keys[i], "ns/%c%u", 'a' + i, next);
            idx[i] = n;
            shares[n++] = (VmigSlotsShare){names[i], held[i], waiting[i], next * 10 + i, keys[i]};
        }
        guint free = sp->limit > running ? sp->limit - running : 0;
        guint snapshot_free = free;
        /* decide, then race in node order (node-a always wins) */
        for (guint i = 0; i < sp->nodes; i++) {
            if (sp->mute[i] || !waiting[i])
                continue;
            /* ranks are the snapshot's: a take shows in the caches only next tick */
            guint w = waiting[i];
            gboolean took[SIM_MAX] = {FALSE};
            for (guint rank = 0; rank < w; rank++) {
                gint64 since = deferred_since[i][rank];
                VmigSlotsFair f = VMIG_SLOTS_FAIR_CONTEND;
                if (sp->fair)
                    f = vmig_slots_fair(shares, n, idx[i], rank, snapshot_free, sp->per_node,
                                        since ? now - since : 0, NULL);
                if (f == VMIG_SLOTS_FAIR_DEFER) {
                    if (!since)
                        deferred_since[i][rank] = now;
                    continue;
                }
                if (free == 0 || held[i] >= sp->per_node)
                    continue; /* lost the race, or the outbound limit: retry next tick */
                free--;
                held[i]++;
                took[rank] = TRUE;
                for (guint r = 0; r < SIM_MAX; r++)
                    if (!left[i][r]) {
                        left[i][r] = sp->duration[i];
                        break;
                    }
                if (res->first_tick[i] == G_MAXUINT)
                    res->first_tick[i] = tick;
                res->done_tick[i] = tick;
            }
            /* the queue moves up past the migrations that took a slot */
            guint k = 0;
            for (guint rank = 0; rank < w; rank++)
                if (!took[rank])
                    deferred_since[i][k++] = deferred_since[i][rank];
            for (; k < SIM_MAX; k++)
                deferred_since[i][k] = 0;
            for (guint rank = 0; rank < w; rank++)
                waiting[i] -= took[rank];
        }
        /* the checks, on the state after the race */
        running = 0;
        for (guint i = 0; i < sp->nodes; i++)
            running += held[i];
        if (running > sp->limit)
            res->over_limit++;
        for (guint i = 0; i < sp->nodes; i++)
            for (guint j = 0; j < sp->nodes; j++)
                if (!sp->mute[j] && waiting[j] && held[j] < sp->per_node && held[i] > held[j])
                    res->max_gap = MAX(res->max_gap, held[i] - held[j]);
        gboolean idle = FALSE;
        for (guint j = 0; j < sp->nodes; j++)
            idle |= !sp->mute[j] && waiting[j] && held[j] < sp->per_node && running < sp->limit;
        idle_run = idle ? idle_run + 1 : 0;
        res->idle = MAX(res->idle, idle_run);
    }
}

static void
test_fair_simulation(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        SimSpec spec;
        guint max_gap;     /* at most this unevenness while someone waits */
        guint finish_skew; /* the last takes of equal nodes at most this many ticks apart */
        guint first_by;    /* every non-mute node took its first slot by this tick */
    } rows[] = {
        {"two nodes, 6 each, limits 5/2", {2, 5, 2, {6, 6}, {4, 4}, {0}, TRUE}, 0, 2, 0},
        {"two nodes, 6 each, limits 2/2", {2, 2, 2, {6, 6}, {4, 4}, {0}, TRUE}, 0, 2, 0},
        {"two nodes, 6 each, limits 3/3", {2, 3, 3, {6, 6}, {3, 5}, {0}, TRUE}, 1, 0, 0},
        {"three nodes, 4 each, limits 5/2", {3, 5, 2, {4, 4, 4}, {4, 4, 4}, {0}, TRUE}, 1, 4, 0},
        {"four nodes, uneven work, limits 3/2",
         {4, 3, 2, {1, 6, 3, 6}, {2, 5, 3, 4}, {0}, TRUE},
         1,
         G_MAXUINT,
         2},
        {"a mute node: the others defer at most 10 s, then go",
         {3, 2, 2, {6, 6, 5}, {4, 4, 1}, {FALSE, FALSE, TRUE}, TRUE},
         G_MAXUINT,
         G_MAXUINT,
         0},
    };
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        SimResult r;
        sim_run(&rows[i].spec, &r);
        const SimSpec *sp = &rows[i].spec;
        if (!r.finished || r.over_limit)
            fail_msg("%s: finished %d, %u ticks over the limit", rows[i].what, r.finished,
                     r.over_limit);
        if (rows[i].max_gap != G_MAXUINT && r.max_gap > rows[i].max_gap)
            fail_msg("%s: shares %u apart while a node waited", rows[i].what, r.max_gap);
        if (g_getenv("SIM_TRACE"))
            g_printerr("%s: gap %u idle %u first %u %u %u %u last %u %u %u %u\n", rows[i].what,
                       r.max_gap, r.idle, r.first_tick[0], r.first_tick[1], r.first_tick[2],
                       r.first_tick[3], r.done_tick[0], r.done_tick[1], r.done_tick[2],
                       r.done_tick[3]);
        for (guint a = 0; a < sp->nodes; a++) {
            if (sp->mute[a])
                continue;
            if (r.first_tick[a] > rows[i].first_by)
                fail_msg("%s: node %u first took a slot at tick %u", rows[i].what, a,
                         r.first_tick[a]);
            for (guint b = 0; b < sp->nodes; b++)
                if (!sp->mute[b] && rows[i].finish_skew != G_MAXUINT &&
                    sp->waiting[a] == sp->waiting[b] && sp->duration[a] == sp->duration[b] &&
                    r.done_tick[a] > r.done_tick[b] + rows[i].finish_skew)
                    fail_msg("%s: node %u finished at tick %u, node %u at %u", rows[i].what, a,
                             r.done_tick[a], b, r.done_tick[b]);
        }
        /* a slot never stays free while someone could use it - except while deferring to a
         * mute node, and then for at most VMIG_SLOTS_DEFER_MAX_MS */
        gboolean any_mute = sp->mute[0] || sp->mute[1] || sp->mute[2] || sp->mute[3];
        guint idle_max = any_mute ? VMIG_SLOTS_DEFER_MAX_MS / SIM_TICK_MS + 1 : 0;
        if (r.idle > idle_max || (any_mute && r.idle < idle_max - 1))
            fail_msg("%s: a slot stayed free for %u ticks while a node waited", rows[i].what,
                     r.idle);
    }

    /* The old behaviour fails the same check: the fastest daemon takes both slots. */
    SimSpec naive = {2, 2, 2, {6, 6}, {4, 4}, {0}, FALSE};
    SimResult r;
    sim_run(&naive, &r);
    assert_true(r.finished);
    assert_int_equal(r.over_limit, 0);
    assert_int_equal(r.max_gap, 2);
    assert_true(r.first_tick[1] > r.first_tick[0]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_free),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_pick_never_exceeds),
        cmocka_unit_test(test_lease_name),
        cmocka_unit_test(test_renew),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_wait_reason),
        cmocka_unit_test(test_fair),
        cmocka_unit_test(test_fair_simulation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
