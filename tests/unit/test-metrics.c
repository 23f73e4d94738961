/* test-metrics.c - the metrics registry and its Prometheus text exposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "prom-check.h"
#include "vmig/metrics.h"

#include <gio/gio.h>

#define V(...) ((const char *const[]){__VA_ARGS__, NULL})
#define assert_error(err, domain, code)                                                            \
    do {                                                                                           \
        assert_non_null(err);                                                                      \
        assert_true(g_error_matches(err, domain, code));                                           \
    } while (0)

static void
assert_valid(const char *text)
{
    g_autofree char *why = prom_check(text);
    if (why)
        fail_msg("invalid exposition: %s\n---\n%s---", why, text);
}

static void
test_render_exact(void **state)
{
    g_autoptr(VmigMetrics) m = vmig_metrics_new();
    assert_true(vmig_metrics_register(m, "b_bytes", VMIG_METRICS_GAUGE, "Bytes.",
                                      V("namespace", "name"), NULL));
    assert_true(vmig_metrics_register(m, "a_total", VMIG_METRICS_COUNTER, "A count.", NULL, NULL));
    assert_true(vmig_metrics_set(m, "b_bytes", V("ns2", "vm1"), 1048576, NULL));
    assert_true(vmig_metrics_set(m, "b_bytes", V("ns1", "vm2"), 0.5, NULL));
    assert_true(vmig_metrics_set(m, "b_bytes", V("ns1", "vm1"), -3, NULL));
    assert_true(vmig_metrics_add(m, "a_total", NULL, 2, NULL));
    assert_true(vmig_metrics_add(m, "a_total", NULL, 3, NULL));
    g_autofree char *out = vmig_metrics_render(m);
    assert_string_equal(out, "# HELP a_total A count.\n"
                             "# TYPE a_total counter\n"
                             "a_total 5\n"
                             "# HELP b_bytes Bytes.\n"
                             "# TYPE b_bytes gauge\n"
                             "b_bytes{namespace=\"ns1\",name=\"vm1\"} -3\n"
                             "b_bytes{namespace=\"ns1\",name=\"vm2\"} 0.5\n"
                             "b_bytes{namespace=\"ns2\",name=\"vm1\"} 1048576\n");
    assert_valid(out);
    /* stable: the same state renders the same bytes */
    g_autofree char *again = vmig_metrics_render(m);
    assert_string_equal(out, again);
}

static void
test_escaping(void **state)
{
    g_autoptr(VmigMetrics) m = vmig_metrics_new();
    assert_true(vmig_metrics_register(m, "x", VMIG_METRICS_GAUGE, "Help with \\ and\nnewline.",
                                      V("l"), NULL));
    assert_true(vmig_metrics_set(m, "x", V("a\"b\\c\nd"), 1, NULL));
    g_autofree char *out = vmig_metrics_render(m);
    assert_string_equal(out, "# HELP x Help with \\\\ and\\nnewline.\n"
                             "# TYPE x gauge\n"
                             "x{l=\"a\\\"b\\\\c\\nd\"} 1\n");
    assert_valid(out);
}

static void
test_values(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {-0.0, "-0"},
        {42, "42"},
        {9007199254740991.0, "9007199254740991"},
        {1e20, "1e+20"},
        {0.1, "0.10000000000000001"},
        {1.0 / 0.0, "+Inf"},
        {-1.0 / 0.0, "-Inf"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(VmigMetrics) m = vmig_metrics_new();
        vmig_metrics_register(m, "g", VMIG_METRICS_GAUGE, "G.", NULL, NULL);
        assert_true(vmig_metrics_set(m, "g", NULL, cases[i].v, NULL));
        g_autofree char *out = vmig_metrics_render(m);
        g_autofree char *want =
            g_strdup_printf("# HELP g G.\n# TYPE g gauge\ng %s\n", cases[i].text);
        if (strcmp(cases[i].text, "-0") == 0)
            assert_true(strcmp(out, want) == 0 ||
                        strcmp(out, "# HELP g G.\n# TYPE g gauge\ng 0\n") == 0);
        else
            assert_string_equal(out, want);
        assert_valid(out);
    }
    g_autoptr(VmigMetrics) m = vmig_metrics_new();
    vmig_metrics_register(m, "g", VMIG_METRICS_GAUGE, "G.", NULL, NULL);
    assert_true(vmig_metrics_set(m, "g", NULL, NAN, NULL));
    g_autofree char *out = vmig_metrics_render(m);
    assert_non_null(strstr(out, "\ng NaN\n"));
    assert_valid(out);
}

static void
test_errors(void **state)
{
    g_autoptr(VmigMetrics) m = vmig_metrics_new();
    const struct {
        const char *name;
        const char *const *labels;
    } bad[] = {
        {"", NULL},       {"1abc", NULL},  {"a-b", NULL},       {NULL, NULL},   {"ok", V("a:b")},
        {"ok", V("__x")}, {"ok", V("le")}, {"ok", V("a", "a")}, {"ok", V("9")}, {"a b", NULL},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        assert_false(
            vmig_metrics_register(m, bad[i].name, VMIG_METRICS_GAUGE, "h", bad[i].labels, &err));
        assert_error(err, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_INVALID_NAME);
    }
    g_autoptr(GError) err = NULL;
    assert_true(vmig_metrics_register(m, "c_total", VMIG_METRICS_COUNTER, "C.", V("x"), NULL));
    /* same definition again: fine; another one: EXISTS */
    assert_true(vmig_metrics_register(m, "c_total", VMIG_METRICS_COUNTER, "C.", V("x"), NULL));
    assert_false(vmig_metrics_register(m, "c_total", VMIG_METRICS_GAUGE, "C.", V("x"), &err));
    assert_error(err, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_EXISTS);
    g_clear_error(&err);
    assert_false(vmig_metrics_register(m, "c_total", VMIG_METRICS_COUNTER, "C.", V("y"), &err));
    assert_error(err, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_EXISTS);
    g_clear_error(&err);
    /* unknown family, missing label values */
    assert_false(vmig_metrics_set(m, "nope", NULL, 1, &err));
    assert_error(err, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_UNKNOWN);
    g_clear_error(&err);
    assert_false(vmig_metrics_add(m, "c_total", NULL, 1, &err));
    assert_error(err, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_LABELS);
    assert_non_null(strstr(err->message, "'x'"));
    g_clear_error(&err);
    /* a counter never goes down, never takes NaN */
    assert_true(vmig_metrics_add(m, "c_total", V("a"), 5, NULL));
    assert_false(vmig_metrics_add(m, "c_total", V("a"), -1, &err));
    assert_error(err, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_INVALID_VALUE);
    g_clear_error(&err);
    assert_false(vmig_metrics_set(m, "c_total", V("a"), 4, &err));
    assert_error(err, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_INVALID_VALUE);
    g_clear_error(&err);
    assert_false(vmig_metrics_add(m, "c_total", V("a"), NAN, &err));
    assert_error(err, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_INVALID_VALUE);
    double v = 0;
    assert_true(vmig_metrics_get(m, "c_total", V("a"), &v));
    assert_true(v == 5);
    assert_true(vmig_metrics_set(m, "c_total", V("a"), 7, NULL)); /* up is fine */
}

static void
test_remove_clear(void **state)
{
    g_autoptr(VmigMetrics) m = vmig_metrics_new();
    vmig_metrics_register(m, "g", VMIG_METRICS_GAUGE, "G.", V("k"), NULL);
    vmig_metrics_register(m, "p", VMIG_METRICS_GAUGE, "P.", NULL, NULL);
    /* a labelled family without series is not rendered; a label-less one is, at 0 */
    g_autofree char *empty = vmig_metrics_render(m);
    assert_string_equal(empty, "# HELP p P.\n# TYPE p gauge\np 0\n");
    vmig_metrics_set(m, "g", V("a"), 1, NULL);
    vmig_metrics_set(m, "g", V("b"), 2, NULL);
    vmig_metrics_set(m, "p", NULL, 3, NULL);
    assert_true(vmig_metrics_remove(m, "g", V("a")));
    assert_false(vmig_metrics_remove(m, "g", V("a")));
    assert_false(vmig_metrics_get(m, "g", V("a"), NULL));
    assert_true(vmig_metrics_get(m, "g", V("b"), NULL));
    vmig_metrics_clear(m, "g");
    vmig_metrics_clear(m, "p");
    double v = -1;
    assert_false(vmig_metrics_get(m, "g", V("b"), NULL));
    assert_true(vmig_metrics_get(m, "p", NULL, &v));
    assert_true(v == 0);
    g_autofree char *out = vmig_metrics_render(m);
    assert_string_equal(out, empty);
}

/* The catalogue: KubeVirt's names and label sets, and a valid exposition when filled. */
static void
test_catalogue(void **state)
{
    g_autoptr(VmigMetrics) m = vmig_metrics_new();
    vmig_metrics_register_vmigrated(m);
    vmig_metrics_register_vmigrated(m); /* idempotent */
    static const char *const progress[] = {VMIG_METRICS_DATA_PROCESSED, VMIG_METRICS_DATA_REMAINING,
                                           VMIG_METRICS_DATA_TOTAL, VMIG_METRICS_DIRTY_RATE,
                                           VMIG_METRICS_TRANSFER_RATE};
    for (gsize i = 0; i < G_N_ELEMENTS(progress); i++)
        assert_true(
            vmig_metrics_set(m, progress[i], V("ns1", "vm1", "node-a"), 1024 * (i + 1), NULL));
    assert_true(vmig_metrics_set(m, VMIG_METRICS_SUCCEEDED, V("vm1", "mig1", "ns1"), 1, NULL));
    assert_true(vmig_metrics_set(m, VMIG_METRICS_IN_RUNNING, NULL, 2, NULL));
    assert_true(vmig_metrics_add(m, VMIG_METRICS_PROXY_BYTES, V("memory", "forward"), 4096, NULL));
    assert_true(
        vmig_metrics_add(m, VMIG_METRICS_API_ERRORS, V("virtualmachineinstances"), 1, NULL));
    /* counters set from the informers' totals: a reconnect is counted once, and a total
     * below the last one (impossible from an informer) is refused, never a reset */
    assert_true(vmig_metrics_set(m, VMIG_METRICS_RECONNECTS, V("virtualmachineinstancemigrations"),
                                 2, NULL));
    assert_true(vmig_metrics_set(m, VMIG_METRICS_RECONNECTS, V("virtualmachineinstancemigrations"),
                                 3, NULL));
    assert_false(vmig_metrics_set(m, VMIG_METRICS_RECONNECTS, V("virtualmachineinstancemigrations"),
                                  1, NULL));
    assert_true(vmig_metrics_set(m, VMIG_METRICS_RELISTS, V("kubevirts"), 1, NULL));
    /* the bandwidth budget: per running migration (VMI labels like the progress gauges) and
     * the node's budget, both bytes per second */
    assert_true(vmig_metrics_set(m, VMIG_METRICS_BANDWIDTH_LIMIT, V("ns1", "vm1", "node-a"),
                                 8.0 * 1048576, NULL));
    assert_true(vmig_metrics_set(m, VMIG_METRICS_BANDWIDTH_LIMIT, V("ns1", "vm2", "node-a"),
                                 8.0 * 1048576, NULL));
    assert_true(vmig_metrics_set(m, VMIG_METRICS_BANDWIDTH_BUDGET, NULL, 16.0 * 1048576, NULL));
    assert_false(vmig_metrics_set(m, VMIG_METRICS_BANDWIDTH_LIMIT, V("ns1", "vm1"), 1, NULL));
    /* post-copy recovery, by result */
    assert_true(vmig_metrics_add(m, VMIG_METRICS_POSTCOPY_RECOVERY, V("attempt"), 3, NULL));
    assert_false(vmig_metrics_add(m, VMIG_METRICS_POSTCOPY_RECOVERY, NULL, 1, NULL));
    g_autofree char *out = vmig_metrics_render(m);
    assert_valid(out);
    assert_non_null(strstr(out, "# HELP vmigrated_watch_reconnects_total Watch streams"));
    assert_non_null(strstr(out, "# TYPE vmigrated_watch_reconnects_total counter\n"
                                "vmigrated_watch_reconnects_total{resource="
                                "\"virtualmachineinstancemigrations\"} 3\n"));
    assert_non_null(strstr(out, "# TYPE vmigrated_informer_relists_total counter\n"
                                "vmigrated_informer_relists_total{resource=\"kubevirts\"} 1\n"));
    assert_non_null(strstr(out, "# TYPE kubevirt_vmi_migration_data_bytes_total counter\n"
                                "kubevirt_vmi_migration_data_bytes_total{namespace=\"ns1\","
                                "name=\"vm1\",node=\"node-a\"} 3072\n"));
    assert_non_null(strstr(out, "kubevirt_vmi_migration_succeeded{vmi=\"vm1\",vmim=\"mig1\","
                                "namespace=\"ns1\"} 1\n"));
    assert_non_null(strstr(out, "\nkubevirt_vmi_migrations_in_pending_phase 0\n"));
    assert_non_null(strstr(out, "\nkubevirt_vmi_migrations_in_running_phase 2\n"));
    assert_non_null(strstr(out, "\nkubevirt_vmi_migrations_in_scheduling_phase 0\n"));
    assert_non_null(strstr(out, "\nkubevirt_vmi_migrations_in_unset_phase 0\n"));
    assert_non_null(strstr(
        out, "vmigrated_proxy_bytes_total{channel=\"memory\",direction=\"forward\"} 4096\n"));
    assert_non_null(strstr(out, "# TYPE vmigrated_migration_bandwidth_limit_bytes gauge\n"
                                "vmigrated_migration_bandwidth_limit_bytes{namespace=\"ns1\","
                                "name=\"vm1\",node=\"node-a\"} 8388608\n"
                                "vmigrated_migration_bandwidth_limit_bytes{namespace=\"ns1\","
                                "name=\"vm2\",node=\"node-a\"} 8388608\n"));
    assert_non_null(strstr(out, "# TYPE vmigrated_postcopy_recovery_total counter\n"
                                "vmigrated_postcopy_recovery_total{result=\"attempt\"} 3\n"));
    assert_non_null(strstr(out, "# TYPE vmigrated_migration_bandwidth_budget_bytes gauge\n"
                                "vmigrated_migration_bandwidth_budget_bytes 16777216\n"));
    /* a finished migration's series goes away */
    assert_true(vmig_metrics_remove(m, VMIG_METRICS_BANDWIDTH_LIMIT, V("ns1", "vm1", "node-a")));
    g_autofree char *after = vmig_metrics_render(m);
    assert_valid(after);
    assert_null(strstr(after, "name=\"vm1\",node=\"node-a\"} 8388608"));
    assert_non_null(strstr(after, "name=\"vm2\",node=\"node-a\"} 8388608"));
    /* counters of ours end in _total (Prometheus naming) */
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
    for (char **l = lines; *l; l++)
        if (g_str_has_prefix(*l, "# TYPE vmigrated_") && g_str_has_suffix(*l, " counter")) {
            g_auto(GStrv) w = g_strsplit(*l, " ", -1);
            assert_true(g_str_has_suffix(w[2], "_total"));
        }
}

/* The checker itself must reject what Prometheus rejects, or the tests above prove nothing. */
static void
test_checker(void **state)
{
    static const char *const bad[] = {
        "a 1",                                   /* no final newline */
        "a 1\n\nb 2\n",                          /* blank line */
        "# TYPE a gauge\n# TYPE a gauge\na 1\n", /* TYPE twice */
        "a 1\n# TYPE a gauge\n",                 /* TYPE after samples */
        "# TYPE a blah\na 1\n",                  /* unknown type */
        "a{x=\"1\"} 1\nb 1\na{x=\"2\"} 1\n",     /* interleaved */
        "a{x=\"1\"} 1\na{x=\"1\"} 2\n",          /* duplicate series */
        "a{x=\"1\",x=\"2\"} 1\n",                /* label twice */
        "a{x=1} 1\n",                            /* unquoted */
        "a{x=\"\\t\"} 1\n",                      /* bad escape */
        "a{x=\"1\"  1\n",                        /* unterminated labels */
        "a one\n",                               /* not a float */
        "a 1 2 3\n",                             /* too many fields */
        "a  1\n",                                /* two spaces */
        "1a 1\n",                                /* bad name */
        "a{1x=\"\"} 1\n",                        /* bad label name */
        "# TYPE c counter\nc -1\n",              /* negative counter */
        "# HELP a bad \\t escape\na 1\n",        /* bad HELP escape */
        "a 1.5.2\n",                             /* not a float */
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *why = prom_check(bad[i]);
        if (!why)
            fail_msg("checker accepted case %zu: %s", i, bad[i]);
    }
    static const char *const good[] = {
        "",
        "a 1\n",
        "# just a comment\na{x=\"\\\\\\n\\\"\"} +Inf 1700000000000\n",
        "# HELP a h\n# TYPE a gauge\na{x=\"1\",} 1e-3\na{x=\"2\"} NaN\n",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autofree char *why = prom_check(good[i]);
        if (why)
            fail_msg("checker rejected case %zu: %s (%s)", i, why, good[i]);
    }
}

/* The real parser, when installed: Debian's prometheus package ships promtool (not in
 * scripts/deps: ~100 MB with a web UI); `promtool check metrics` parses the exposition and
 * lints names, types and help texts. Skipped, saying so, when absent. */
static void
test_promtool(void **state)
{
    g_autofree char *promtool = g_find_program_in_path("promtool");
    if (!promtool) {
        print_message("skipped: promtool not installed (apt-get install prometheus)\n");
        skip();
    }
    g_autoptr(VmigMetrics) m = vmig_metrics_new();
    vmig_metrics_register_vmigrated(m);
    static const char *const progress[] = {VMIG_METRICS_DATA_PROCESSED, VMIG_METRICS_DATA_REMAINING,
                                           VMIG_METRICS_DATA_TOTAL,     VMIG_METRICS_DIRTY_RATE,
                                           VMIG_METRICS_TRANSFER_RATE,  VMIG_METRICS_LAST_DOWNTIME};
    for (gsize i = 0; i < G_N_ELEMENTS(progress); i++)
        vmig_metrics_set(m, progress[i], V("ns1", "vm \"quoted\" \\ back\nslash", "node-a"),
                         0.25 + i, NULL);
    vmig_metrics_set(m, VMIG_METRICS_SUCCEEDED, V("vm1", "mig1", "ns1"), 1, NULL);
    vmig_metrics_set(m, VMIG_METRICS_FAILED, V("vm2", "mig2", "ns1"), 1, NULL);
    vmig_metrics_add(m, VMIG_METRICS_STARTED, NULL, 3, NULL);
    vmig_metrics_add(m, VMIG_METRICS_COMPLETED, V("Succeeded"), 2, NULL);
    vmig_metrics_add(m, VMIG_METRICS_PROXY_BYTES, V("memory", "forward"), 1e12, NULL);
    vmig_metrics_add(m, VMIG_METRICS_PROXY_CONNS, V("libvirt", "error", "tls"), 1, NULL);
    vmig_metrics_add(m, VMIG_METRICS_PROXY_CONNS, V("memory", "ok", "plain"), 4, NULL);
    vmig_metrics_set(m, VMIG_METRICS_PROXY_ACTIVE, V("disk"), 4, NULL);
    vmig_metrics_set(m, VMIG_METRICS_SLOTS_HELD, V("outbound"), 2, NULL);
    vmig_metrics_set(m, VMIG_METRICS_INFORMER_LISTS, V("virtualmachineinstances"), 2, NULL);
    vmig_metrics_set(m, VMIG_METRICS_RELISTS, V("virtualmachineinstances"), 1, NULL);
    vmig_metrics_set(m, VMIG_METRICS_RECONNECTS, V("virtualmachineinstancemigrations"), 3, NULL);
    vmig_metrics_add(m, VMIG_METRICS_API_ERRORS, V("virtualmachineinstances"), 1, NULL);
    vmig_metrics_set(m, VMIG_METRICS_BANDWIDTH_LIMIT, V("ns1", "vm1", "node-a"), 8388608, NULL);
    vmig_metrics_set(m, VMIG_METRICS_BANDWIDTH_BUDGET, NULL, 16777216, NULL);
    g_autofree char *text = vmig_metrics_render(m);
    assert_valid(text);

    g_autoptr(GError) err = NULL;
    g_autoptr(GSubprocess) p =
        g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                             G_SUBPROCESS_FLAGS_STDERR_MERGE,
                         &err, promtool, "check", "metrics", NULL);
    assert_non_null(p);
    g_autofree char *out = NULL;
    assert_true(g_subprocess_communicate_utf8(p, text, NULL, &out, NULL, &err));
    if (!g_subprocess_get_successful(p))
        fail_msg("promtool check metrics: %s\n---\n%s", out, text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_exact), cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_values),       cmocka_unit_test(test_errors),
        cmocka_unit_test(test_remove_clear), cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_checker),      cmocka_unit_test(test_promtool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
