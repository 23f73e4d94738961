/* test-migconfig.c - effective migration configuration (vmig/migconfig.h): KubeVirt defaults,
 * KubeVirt CR and MigrationPolicy precedence, policy matching and ties, field case B21
 * (bandwidth to MiB/s), completion budget arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmig/migconfig.h"

static JsonNode *
load_one(const char *yaml)
{
    g_autoptr(GPtrArray) docs = NULL;
    g_autoptr(GError) e = NULL;
    if (!vmig_model_load_documents(yaml, -1, "test.yaml", &docs, &e))
        fail_msg("%s", e->message);
    return json_node_ref(g_ptr_array_index(docs, 0));
}

static VmigModelKubevirt *
kubevirt(const char *migrations)
{
    g_autofree char *y = g_strdup_printf("apiVersion: kubevirt.io/v1\nkind: KubeVirt\nmetadata: "
                                         "{name: kubevirt, namespace: kubevirt}\nspec: "
                                         "{configuration: {evictionStrategy: LiveMigrate, "
                                         "migrations: %s}}\n",
                                         migrations);
    g_autoptr(JsonNode) n = load_one(y);
    g_autoptr(GError) e = NULL;
    VmigModelKubevirt *kv = vmig_model_kubevirt_from_json(n, &e);
    if (!kv)
        fail_msg("%s", e->message);
    return kv;
}

static VmigModelMigrationPolicy *
policy(const char *name, const char *ns_sel, const char *vmi_sel, const char *fields)
{
    g_autofree char *y = g_strdup_printf(
        "apiVersion: migrations.kubevirt.io/v1alpha1\nkind: MigrationPolicy\nmetadata: {name: "
        "%s}\nspec: {selectors: {namespaceSelector: %s, virtualMachineInstanceSelector: %s}%s%s}\n",
        name, ns_sel, vmi_sel, *fields ? ", " : "", fields);
    g_autoptr(JsonNode) n = load_one(y);
    g_autoptr(GError) e = NULL;
    VmigModelMigrationPolicy *p = vmig_model_migration_policy_from_json(n, &e);
    if (!p)
        fail_msg("%s", e->message);
    return p;
}

static GHashTable *
labels(const char *k1, const char *v1, const char *k2, const char *v2)
{
    GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (k1)
        g_hash_table_insert(h, g_strdup(k1), g_strdup(v1));
    if (k2)
        g_hash_table_insert(h, g_strdup(k2), g_strdup(v2));
    return h;
}

static void
test_defaults(void **state)
{
    g_autoptr(VmigMigconfig) c = vmig_migconfig_effective(NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(c->parallel_migrations_per_cluster, 5);
    assert_int_equal(c->parallel_outbound_migrations_per_node, 2);
    assert_true(c->bandwidth_unlimited);
    assert_true(c->bandwidth_mibps == VMIG_MIGCONFIG_BANDWIDTH_MAX_MIBPS);
    assert_int_equal(c->completion_timeout_per_gib, 150);
    assert_int_equal(c->progress_timeout, 150);
    assert_false(c->allow_auto_converge);
    assert_false(c->allow_post_copy);
    assert_false(c->allow_workload_disruption);
    assert_false(c->disable_tls);
    assert_false(c->unsafe_migration_override);
    assert_string_equal(c->node_drain_taint_key, "kubevirt.io/drain");
    assert_null(c->policy_name);
    assert_int_equal(c->source[0], VMIG_MIGCONFIG_FROM_DEFAULT);
}

static void
test_kubevirt_cr_overrides(void **state)
{
    g_autoptr(VmigModelKubevirt) kv =
        kubevirt("{parallelMigrationsPerCluster: 10, parallelOutboundMigrationsPerNode: 4, "
                 "bandwidthPerMigration: 64Mi, completionTimeoutPerGiB: 800, progressTimeout: 300, "
                 "allowAutoConverge: true, allowPostCopy: true, disableTLS: true, "
                 "nodeDrainTaintKey: example.com/drain, unsafeMigrationOverride: true}");
    g_autoptr(VmigMigconfig) c = vmig_migconfig_effective(kv, NULL, NULL, NULL, NULL);
    assert_int_equal(c->parallel_migrations_per_cluster, 10);
    assert_int_equal(c->parallel_outbound_migrations_per_node, 4);
    assert_false(c->bandwidth_unlimited);
    assert_int_equal(c->bandwidth_mibps, 64);
    assert_int_equal(c->completion_timeout_per_gib, 800);
    assert_int_equal(c->progress_timeout, 300);
    assert_true(c->allow_auto_converge);
    assert_true(c->allow_post_copy);
    assert_true(c->allow_workload_disruption); /* follows allowPostCopy */
    assert_true(c->disable_tls);
    assert_true(c->unsafe_migration_override);
    assert_string_equal(c->node_drain_taint_key, "example.com/drain");
    assert_int_equal(c->eviction_strategy, VMIG_MODEL_EVICTION_LIVE_MIGRATE);
    assert_int_equal(c->source[g_bit_nth_lsf(VMIG_MODEL_MIG_BANDWIDTH, -1)],
                     VMIG_MIGCONFIG_FROM_KUBEVIRT);

    /* Explicit allowWorkloadDisruption wins over the follow rule. */
    g_autoptr(VmigModelKubevirt) kv2 =
        kubevirt("{allowPostCopy: true, allowWorkloadDisruption: false}");
    g_autoptr(VmigMigconfig) c2 = vmig_migconfig_effective(kv2, NULL, NULL, NULL, NULL);
    assert_true(c2->allow_post_copy);
    assert_false(c2->allow_workload_disruption);
}

static void
test_policy_overrides_cr(void **state)
{
    g_autoptr(VmigModelKubevirt) kv =
        kubevirt("{bandwidthPerMigration: 64Mi, completionTimeoutPerGiB: 800, allowPostCopy: "
                 "true, parallelMigrationsPerCluster: 10}");
    g_autoptr(GPtrArray) pols =
        g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_migration_policy_free);
    g_ptr_array_add(pols, policy("slow", "{team: a}", "{app: db}",
                                 "bandwidthPerMigration: 1Gi, allowPostCopy: false, "
                                 "allowAutoConverge: true"));
    g_autoptr(GHashTable) ns = labels("team", "a", NULL, NULL);
    g_autoptr(JsonNode) vn = load_one("apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\n"
                                      "metadata: {name: vm1, namespace: ns1, labels: {app: db}}\n"
                                      "spec: {domain: {}}\n");
    g_autoptr(VmigModelVmi) vmi = vmig_model_vmi_from_json(vn, NULL);
    g_autoptr(VmigMigconfig) c = vmig_migconfig_effective(kv, pols, ns, vmi, NULL);
    assert_string_equal(c->policy_name, "slow");
    assert_int_equal(c->bandwidth_mibps, 1024);
    assert_false(c->allow_post_copy);
    assert_false(c->allow_workload_disruption); /* follows the policy's allowPostCopy */
    assert_true(c->allow_auto_converge);
    assert_int_equal(c->completion_timeout_per_gib, 800); /* not in the policy: CR value */
    assert_int_equal(c->parallel_migrations_per_cluster, 10);
    assert_int_equal(c->source[g_bit_nth_lsf(VMIG_MODEL_MIG_BANDWIDTH, -1)],
                     VMIG_MIGCONFIG_FROM_POLICY);
    assert_int_equal(c->source[g_bit_nth_lsf(VMIG_MODEL_MIG_COMPLETION_TIMEOUT_PER_GIB, -1)],
                     VMIG_MIGCONFIG_FROM_KUBEVIRT);

    /* VMI labels not matching: the CR applies. */
    g_autoptr(GHashTable) ns2 = labels("team", "b", NULL, NULL);
    g_autoptr(VmigMigconfig) c2 = vmig_migconfig_effective(kv, pols, ns2, vmi, NULL);
    assert_null(c2->policy_name);
    assert_int_equal(c2->bandwidth_mibps, 64);
}

typedef struct {
    const char *ns_k, *ns_v, *vm_k, *vm_v, *vm_k2, *vm_v2;
    const char *want; /* winning policy or NULL */
} MatchCase;

static void
test_policy_matching_table(void **state)
{
    g_autoptr(GPtrArray) pols =
        g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_migration_policy_free);
    g_ptr_array_add(pols, policy("p-ns", "{team: a}", "{}", ""));
    g_ptr_array_add(pols, policy("p-both", "{team: a}", "{app: web}", ""));
    g_ptr_array_add(pols, policy("p-two-vm", "{}", "{app: web, tier: front}", ""));
    g_ptr_array_add(pols, policy("b-tie", "{}", "{app: db}", ""));
    g_ptr_array_add(pols, policy("a-tie", "{}", "{app: db}", ""));
    g_ptr_array_add(pols, policy("p-other", "{team: z}", "{}", ""));
    const MatchCase cases[] = {
        {NULL, NULL, NULL, NULL, NULL, NULL, NULL},              /* nothing matches everything */
        {"team", "a", NULL, NULL, NULL, NULL, "p-ns"},           /* ns only */
        {"team", "a", "app", "web", NULL, NULL, "p-both"},       /* 2 labels beat 1 */
        {"team", "a", "app", "web", "tier", "front", "p-both"},  /* 2 vs 2: p-both < p-two-vm */
        {NULL, NULL, "app", "web", "tier", "front", "p-two-vm"}, /* partial selectors fail */
        {NULL, NULL, "app", "web", NULL, NULL, NULL},            /* p-two-vm needs both labels */
        {NULL, NULL, "app", "db", NULL, NULL, "a-tie"},          /* tie broken by name */
        {"team", "b", "app", "db", NULL, NULL, "a-tie"},
        {"team", "z", NULL, NULL, NULL, NULL, "p-other"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GHashTable) ns = labels(cases[i].ns_k, cases[i].ns_v, NULL, NULL);
        g_autoptr(GHashTable) vm =
            labels(cases[i].vm_k, cases[i].vm_v, cases[i].vm_k2, cases[i].vm_v2);
        const VmigModelMigrationPolicy *p = vmig_migconfig_match_policy(pols, ns, vm);
        const char *got = p ? p->meta.name : NULL;
        if (g_strcmp0(got, cases[i].want) != 0)
            fail_msg("match case %zu: got %s want %s", i, got ? got : "(none)",
                     cases[i].want ? cases[i].want : "(none)");
    }
    /* An empty-selector policy matches any VMI (and loses to any more specific match). */
    g_ptr_array_add(pols, policy("catch-all", "{}", "{}", ""));
    g_autoptr(GHashTable) none = labels(NULL, NULL, NULL, NULL);
    const VmigModelMigrationPolicy *p = vmig_migconfig_match_policy(pols, none, none);
    assert_string_equal(p->meta.name, "catch-all");
    assert_null(vmig_migconfig_match_policy(NULL, none, none));
}

/* Field case B21: every value, exactly. */
typedef struct {
    const char *in;
    gboolean ok;
    gboolean unlimited;
    guint64 mibps;
} BwCase;

static void
test_b21_bandwidth(void **state)
{
    const BwCase cases[] = {
        {"0", TRUE, TRUE, VMIG_MIGCONFIG_BANDWIDTH_MAX_MIBPS},
        {"1m", TRUE, FALSE, 1},
        {"1", TRUE, FALSE, 1},
        {"512Ki", TRUE, FALSE, 1},
        {"1Mi", TRUE, FALSE, 1},
        {"1536Ki", TRUE, FALSE, 2},
        {"5.9999Mi", TRUE, FALSE, 6},
        {"64Mi", TRUE, FALSE, 64},
        {"2Gi", TRUE, FALSE, 2048},
        {"-1Mi", FALSE, FALSE, 0},
        {"fast", FALSE, FALSE, 0},
        /* around the edges */
        {"1535Ki", TRUE, FALSE, 1}, /* 1.499 MiB: rounds down */
        {"1.5Mi", TRUE, FALSE, 2},  /* exactly half: up */
        {"1n", TRUE, FALSE, 1},
        {"1M", TRUE, FALSE, 1}, /* 0.95 MiB */
        {"8Ei", TRUE, FALSE, VMIG_MIGCONFIG_BANDWIDTH_MAX_MIBPS},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        gboolean unlimited = TRUE;
        g_autoptr(GError) e = NULL;
        guint64 v = vmig_migconfig_bandwidth_parse(
            cases[i].in, "spec.configuration.migrations.bandwidthPerMigration", &unlimited, &e);
        if (cases[i].ok) {
            if (e || v != cases[i].mibps || unlimited != cases[i].unlimited)
                fail_msg("B21 \"%s\": got %" G_GUINT64_FORMAT " unlimited=%d (%s)", cases[i].in, v,
                         unlimited, e ? e->message : "");
        } else {
            if (!e)
                fail_msg("B21 \"%s\" accepted", cases[i].in);
            assert_non_null(strstr(e->message, "bandwidthPerMigration"));
            assert_int_equal(v, 0);
        }
    }
    /* A negative bandwidth in a KubeVirt CR never reaches the config: refused at parse time. */
    g_autofree char *y = g_strdup("apiVersion: kubevirt.io/v1\nkind: KubeVirt\nmetadata: {name: "
                                  "kv, namespace: kubevirt}\nspec: {configuration: {migrations: "
                                  "{bandwidthPerMigration: -1Mi}}}\n");
    g_autoptr(JsonNode) n = load_one(y);
    g_autoptr(GError) e = NULL;
    assert_null(vmig_model_kubevirt_from_json(n, &e));
    assert_non_null(strstr(e->message, "bandwidthPerMigration"));
}

static void
test_completion_timeout(void **state)
{
    const struct {
        gint64 per_gib, bytes, want;
    } cases[] = {
        {150, 1LL << 30, 150},                    /* 1 GiB */
        {150, 2LL << 30, 300},                    /* 2 GiB */
        {150, (1LL << 30) + 1, 151},              /* a byte over: rounded up */
        {150, 1, 1},                              /* tiny data: at least 1 s */
        {150, 512LL << 20, 75},                   /* half a GiB */
        {800, (4LL << 30) + (100LL << 20), 3279}, /* 4 GiB guest + 100 MiB disk: ceil(3278.125) */
        {0, 1LL << 30, 0},
        {150, 0, 0},
        {-1, 1LL << 30, 0},
        {G_MAXINT64, G_MAXINT64, G_MAXINT64}, /* saturates */
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        gint64 got = vmig_migconfig_completion_timeout(cases[i].per_gib, cases[i].bytes);
        if (got != cases[i].want)
            fail_msg("completion case %zu: got %" G_GINT64_FORMAT, i, got);
    }
}

/* The node's bandwidth budget split: a table of budgets and caps with the shares wanted. */
#define BIG VMIG_MIGCONFIG_BANDWIDTH_MAX_MIBPS
static void
test_budget_split(void **state)
{
    const struct {
        const char *what;
        guint64 budget;
        gsize n;
        guint64 caps[6];
        guint64 want[6];
        gboolean fits;
    } cases[] = {
        {"off: each keeps its cap (0 = unlimited)", 0, 3, {0, 5, 0}, {0, 5, 0}, TRUE},
        {"no migrations", 100, 0, {0}, {0}, TRUE},
        {"one migration takes it all", 100, 1, {0}, {100}, TRUE},
        {"one migration capped below the budget", 100, 1, {30}, {30}, TRUE},
        {"one migration capped above the budget", 100, 1, {500}, {100}, TRUE},
        {"two equal", 100, 2, {0, 0}, {50, 50}, TRUE},
        {"odd MiB/s to the first in order", 100, 3, {0, 0, 0}, {34, 33, 33}, TRUE},
        {"one capped below its equal share, the rest shared",
         100,
         3,
         {10, 0, 0},
         {10, 45, 45},
         TRUE},
        {"cap exactly the equal share", 90, 3, {30, 0, 0}, {30, 30, 30}, TRUE},
        {"cascade: a second cap binds after the first", 100, 3, {10, 40, 0}, {10, 40, 50}, TRUE},
        {"a cap just above the level", 100, 3, {34, 0, 0}, {34, 33, 33}, TRUE},
        {"cap above the level, remainder first", 100, 3, {0, 0, 34}, {34, 33, 33}, TRUE},
        {"all capped below: sum of caps", 100, 3, {10, 20, 5}, {10, 20, 5}, TRUE},
        {"all capped above: equal", 99, 3, {50, 60, 70}, {33, 33, 33}, TRUE},
        {"budget equals n: 1 each", 4, 4, {0, 0, 0, 0}, {1, 1, 1, 1}, TRUE},
        {"budget below n: 1 each, exceeded", 3, 5, {0, 0, 0, 0, 0}, {1, 1, 1, 1, 1}, FALSE},
        {"budget 1, two migrations", 1, 2, {0, 7}, {1, 1}, FALSE},
        {"huge budget, unlimited", BIG, 2, {0, 0}, {BIG / 2 + 1, BIG / 2}, TRUE},
        {"huge budget, huge caps", BIG, 3, {BIG, BIG, 1}, {BIG / 2, BIG / 2, 1}, TRUE},
        {"six with mixed caps",
         1000,
         6,
         {100, 0, 250, 0, 1, 300},
         {100, 225, 225, 225, 1, 224},
         TRUE},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        VmigMigconfigShare shares[6] = {0};
        for (gsize j = 0; j < cases[i].n; j++) {
            shares[j].cap_mibps = cases[i].caps[j];
            shares[j].share_mibps = 12345; /* must be overwritten */
        }
        gboolean fits = vmig_migconfig_budget_split(cases[i].budget, shares, cases[i].n);
        if (fits != cases[i].fits)
            fail_msg("budget case %zu (%s): fits %d", i, cases[i].what, fits);
        guint64 sum = 0;
        for (gsize j = 0; j < cases[i].n; j++) {
            if (shares[j].share_mibps != cases[i].want[j])
                fail_msg("budget case %zu (%s): share %zu is %" G_GUINT64_FORMAT
                         ", want %" G_GUINT64_FORMAT,
                         i, cases[i].what, j, shares[j].share_mibps, cases[i].want[j]);
            sum += shares[j].share_mibps;
        }
        if (cases[i].budget && fits && sum > cases[i].budget)
            fail_msg("budget case %zu (%s): shares add up to %" G_GUINT64_FORMAT, i, cases[i].what,
                     sum);
    }
}

/* Rounding never exceeds the budget; nobody gets 0 or more than its cap; the split is
 * max-min fair: an uncapped migration never gets less than any other. Swept over budgets,
 * counts and cap patterns. */
static void
test_budget_split_properties(void **state)
{
    static const guint64 cap_pattern[] = {0, 1, 7, 0, 33, 100, 0, 2, 64, 5};
    for (guint64 budget = 1; budget <= 300; budget += 7) {
        for (gsize n = 1; n <= G_N_ELEMENTS(cap_pattern); n++) {
            VmigMigconfigShare shares[G_N_ELEMENTS(cap_pattern)];
            for (gsize j = 0; j < n; j++)
                shares[j] = (VmigMigconfigShare){.cap_mibps = cap_pattern[(j + budget) % 10]};
            gboolean fits = vmig_migconfig_budget_split(budget, shares, n);
            assert_int_equal(fits, budget >= n);
            guint64 sum = 0, max_share = 0, min_uncapped = G_MAXUINT64;
            gboolean all_capped = TRUE;
            for (gsize j = 0; j < n; j++) {
                guint64 s = shares[j].share_mibps, cap = shares[j].cap_mibps;
                assert_true(s >= 1);
                if (fits && cap)
                    assert_true(s <= cap);
                sum += s;
                max_share = MAX(max_share, s);
                if (!cap || s < cap) {
                    all_capped = FALSE;
                    min_uncapped = MIN(min_uncapped, s);
                }
            }
            if (!fits)
                continue;
            assert_true(sum <= budget);
            if (!all_capped) {
                /* the budget is used up, and no one held below its cap gets less than
                 * another migration's share minus the one odd MiB/s */
                assert_int_equal(sum, budget);
                assert_true(min_uncapped + 1 >= max_share);
            }
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_kubevirt_cr_overrides),
        cmocka_unit_test(test_policy_overrides_cr),
        cmocka_unit_test(test_policy_matching_table),
        cmocka_unit_test(test_b21_bandwidth),
        cmocka_unit_test(test_completion_timeout),
        cmocka_unit_test(test_budget_split),
        cmocka_unit_test(test_budget_split_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
