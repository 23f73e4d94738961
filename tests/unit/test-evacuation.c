/* test-evacuation.c - node drain decisions (vmig/evacuation.h), field case B17. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmig/evacuation.h"

#define T0 1000000000

static GPtrArray *
decide(gboolean draining, const VmigEvacuationVmi *v, guint n, gint64 now)
{
    return vmig_evacuation_decide("node-a", draining, v, n, now);
}

static const VmigEvacuationAction *
at(GPtrArray *a, guint i)
{
    assert_true(i < a->len);
    return a->pdata[i];
}

/* B17: vm1 migratable (LiveMigrate), vm2 pinned (LiveMigrate, not migratable), vm3 hostDisk
 * (LiveMigrateIfPossible, not migratable), vm4 None. */
static void
test_b17_drain(void **state)
{
    VmigEvacuationVmi vmis[] = {
        {"ns1", "vm1", VMIG_MODEL_EVICTION_LIVE_MIGRATE, TRUE},
        {"ns1", "vm2", VMIG_MODEL_EVICTION_LIVE_MIGRATE, FALSE,
         "no eligible target node: node-b: does not match the VMI's nodeSelector"},
        {"ns1", "vm3", VMIG_MODEL_EVICTION_LIVE_MIGRATE_IF_POSSIBLE, FALSE,
         "DisksNotLiveMigratable: volume scratch"},
        {"ns1", "vm4", VMIG_MODEL_EVICTION_NONE, TRUE},
        {"ns1", "vm5", VMIG_MODEL_EVICTION_EXTERNAL, TRUE},
    };
    g_autoptr(GPtrArray) a = decide(TRUE, vmis, G_N_ELEMENTS(vmis), T0);
    assert_int_equal(a->len, 2);
    assert_int_equal(at(a, 0)->kind, VMIG_EVACUATION_ACTION_CREATE);
    assert_string_equal(at(a, 0)->name, "vm1");
    assert_int_equal(at(a, 1)->kind, VMIG_EVACUATION_ACTION_BLOCKED);
    assert_string_equal(at(a, 1)->name, "vm2");
    assert_non_null(strstr(at(a, 1)->reason, "cannot evacuate ns1/vm2 from node-a"));
    assert_non_null(strstr(at(a, 1)->reason, "nodeSelector"));
}

static void
test_one_unfinished_vmim_per_vmi(void **state)
{
    VmigEvacuationVmi v = {"ns1", "vm1", VMIG_MODEL_EVICTION_LIVE_MIGRATE, TRUE};
    v.has_unfinished_vmim = TRUE;
    g_autoptr(GPtrArray) a = decide(TRUE, &v, 1, T0);
    assert_int_equal(a->len, 0);
}

static void
test_backoff(void **state)
{
    assert_int_equal(vmig_evacuation_backoff_ms(1), 20000);
    assert_int_equal(vmig_evacuation_backoff_ms(2), 40000);
    assert_int_equal(vmig_evacuation_backoff_ms(3), 80000);
    assert_int_equal(vmig_evacuation_backoff_ms(5), 300000);
    assert_int_equal(vmig_evacuation_backoff_ms(50), 300000);

    /* two failures, the newest ended 30 s ago: wait 40 s after it */
    VmigEvacuationVmim hist[] = {
        {"kubevirt-evacuation-a", VMIG_MODEL_MIGRATION_PHASE_FAILED, T0 - 100000},
        {"kubevirt-evacuation-b", VMIG_MODEL_MIGRATION_PHASE_FAILED, T0 - 30000},
    };
    VmigEvacuationVmi v = {"ns1", "vm1", VMIG_MODEL_EVICTION_LIVE_MIGRATE, TRUE};
    v.evacuations = hist;
    v.n_evacuations = 2;
    g_autoptr(GPtrArray) a = decide(TRUE, &v, 1, T0);
    assert_int_equal(a->len, 1);
    assert_int_equal(at(a, 0)->kind, VMIG_EVACUATION_ACTION_BACKOFF);
    assert_int_equal(at(a, 0)->wake_at_ms, T0 - 30000 + 40000);
    assert_non_null(strstr(at(a, 0)->reason, "failed 2 times; next try in 10 s"));
    g_autoptr(GPtrArray) b = decide(TRUE, &v, 1, T0 + 10000);
    assert_int_equal(b->len, 1);
    assert_int_equal(at(b, 0)->kind, VMIG_EVACUATION_ACTION_CREATE);
    /* a success after the failures resets the count */
    VmigEvacuationVmim hist2[] = {
        {"kubevirt-evacuation-a", VMIG_MODEL_MIGRATION_PHASE_FAILED, T0 - 100000},
        {"kubevirt-evacuation-c", VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED, T0 - 50000},
    };
    v.evacuations = hist2;
    g_autoptr(GPtrArray) c = decide(TRUE, &v, 1, T0);
    assert_int_equal(at(c, 0)->kind, VMIG_EVACUATION_ACTION_CREATE);
}

/* B17 after uncordon: pending evacuations are taken back, running ones finish, the marker
 * goes, nothing new is created. */
static void
test_uncordon(void **state)
{
    VmigEvacuationVmim hist[] = {
        {"kubevirt-evacuation-p", VMIG_MODEL_MIGRATION_PHASE_PENDING, 0},
        {"kubevirt-evacuation-r", VMIG_MODEL_MIGRATION_PHASE_RUNNING, 0},
        {"kubevirt-evacuation-f", VMIG_MODEL_MIGRATION_PHASE_FAILED, T0},
    };
    VmigEvacuationVmi vmis[] = {
        {"ns1", "vm1", VMIG_MODEL_EVICTION_LIVE_MIGRATE, TRUE},
        {"ns1", "vm2", VMIG_MODEL_EVICTION_LIVE_MIGRATE, FALSE},
    };
    vmis[0].evacuations = hist;
    vmis[0].n_evacuations = 3;
    vmis[0].evacuation_node = "node-a";
    vmis[1].evacuation_node = "node-z"; /* another node's marker is not ours to clear */
    g_autoptr(GPtrArray) a = decide(FALSE, vmis, 2, T0);
    assert_int_equal(a->len, 2);
    assert_int_equal(at(a, 0)->kind, VMIG_EVACUATION_ACTION_DELETE);
    assert_string_equal(at(a, 0)->vmim, "kubevirt-evacuation-p");
    assert_int_equal(at(a, 1)->kind, VMIG_EVACUATION_ACTION_CLEAR);
    assert_string_equal(at(a, 1)->name, "vm1");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b17_drain),
        cmocka_unit_test(test_one_unfinished_vmim_per_vmi),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_uncordon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
