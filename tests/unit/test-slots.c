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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
