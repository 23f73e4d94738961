/* test-agentconfig.c - option sources, precedence, validation and path templates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib/gstdio.h>
#include <string.h>

#include "vmig/agentconfig.h"

static VmigAgentConfig *
load(const char *const *args, const char *const *env, GError **error)
{
    g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(a, g_strdup("vmigrated"));
    for (const char *const *p = args; p && *p; p++)
        g_ptr_array_add(a, g_strdup(*p));
    g_ptr_array_add(a, NULL);
    int argc = (int)a->len - 1;
    /* GOption rearranges argv; keep our own copy of the pointers to free them. */
    g_autofree char **argv = g_memdup2(a->pdata, sizeof(char *) * a->len);
    char **argvp = argv;
    return vmig_agentconfig_load(&argc, &argvp, (char **)(env ? env : (const char *const[]){NULL}),
                                 error);
}

static void
test_defaults_and_downward_api(void **state)
{
    g_autoptr(GError) err = NULL;
    const char *env[] = {"NODE_NAME=node-a", NULL};
    g_autoptr(VmigAgentConfig) c = load(NULL, env, &err);
    assert_null(err);
    assert_non_null(c);
    assert_string_equal(c->node_name, "node-a");
    assert_null(c->kubeconfig);
    assert_int_equal(c->target_ready_timeout_ms, 150000);
    assert_int_equal(c->job_poll_interval_ms, 500);
    assert_int_equal(c->inbound_migrations, 2);
    assert_string_equal(c->domain_name, "{namespace}_{name}");
    assert_false(c->disable_tls);
    assert_string_equal(c->migration_bandwidth_budget, "0");
    assert_int_equal(c->migration_bandwidth_budget_mibps, 0); /* off */
}

/* --migration-bandwidth-budget: Kubernetes quantities in bytes/s, rounded down to MiB/s;
 * bad values are refused naming the option and where the value came from. */
static void
test_bandwidth_budget(void **state)
{
    const struct {
        const char *value;
        guint64 mibps; /* G_MAXUINT64: refused */
        const char *needle;
    } cases[] = {
        {"0", 0, NULL},
        {"100Mi", 100, NULL},
        {"16Mi", 16, NULL},
        {"1Mi", 1, NULL},
        {"1.5Mi", 1, NULL}, /* rounded down: the budget is never exceeded by rounding */
        {"1Gi", 1024, NULL},
        {"125M", 119, NULL},                       /* 125e6 B/s = 119.2 MiB/s */
        {"1048576", 1, NULL},                      /* plain bytes/s */
        {"8Ei", G_MAXINT64 / (1024 * 1024), NULL}, /* saturates at libvirt's maximum */
        {"-1Mi", G_MAXUINT64, "cannot be negative"},
        {"abc", G_MAXUINT64, "'abc' is not a bandwidth"},
        {"1Ki", G_MAXUINT64, "below 1Mi"},
        {"1048575", G_MAXUINT64, "below 1Mi"},
        {"", G_MAXUINT64, "is not a bandwidth"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *args[] = {"--node-name", "a", "--migration-bandwidth-budget", cases[i].value,
                              NULL};
        g_autoptr(GError) err = NULL;
        g_autoptr(VmigAgentConfig) c = load(args, NULL, &err);
        if (cases[i].mibps == G_MAXUINT64) {
            if (c || !err || err->code != VMIG_AGENTCONFIG_ERROR_INVALID ||
                !strstr(err->message, "--migration-bandwidth-budget (command line)") ||
                !strstr(err->message, cases[i].needle))
                fail_msg("case %zu '%s': %s", i, cases[i].value, err ? err->message : "accepted");
            continue;
        }
        if (!c)
            fail_msg("case %zu '%s' refused: %s", i, cases[i].value, err->message);
        if (c->migration_bandwidth_budget_mibps != cases[i].mibps)
            fail_msg("case %zu '%s': %" G_GUINT64_FORMAT " MiB/s", i, cases[i].value,
                     c->migration_bandwidth_budget_mibps);
        g_autofree char *kf = vmig_agentconfig_to_keyfile(c);
        g_autofree char *line = g_strdup_printf("migration-bandwidth-budget=%s\n", cases[i].value);
        assert_non_null(strstr(kf, line));
    }

    /* the environment and the key file are named as sources too */
    g_autoptr(GError) err = NULL;
    const char *env[] = {"VMIGRATED_MIGRATION_BANDWIDTH_BUDGET=-1Mi", NULL};
    g_autoptr(VmigAgentConfig) c = load((const char *const[]){"--node-name", "a", NULL}, env, &err);
    assert_null(c);
    assert_non_null(strstr(err->message, "--migration-bandwidth-budget (environment "
                                         "VMIGRATED_MIGRATION_BANDWIDTH_BUDGET): '-1Mi'"));
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp("vmig-cfg-XXXXXX.ini", &path, NULL);
    assert_true(fd >= 0);
    close(fd);
    assert_true(
        g_file_set_contents(path, "[vmigrated]\nmigration-bandwidth-budget=fast\n", -1, NULL));
    g_autofree char *cfgarg = g_strdup_printf("--config=%s", path);
    g_autoptr(GError) ferr = NULL;
    g_autoptr(VmigAgentConfig) fc =
        load((const char *const[]){cfgarg, "--node-name", "a", NULL}, NULL, &ferr);
    assert_null(fc);
    g_autofree char *want =
        g_strdup_printf("--migration-bandwidth-budget (config file %s): 'fast'", path);
    assert_non_null(strstr(ferr->message, want));
    g_unlink(path);
}

static void
test_precedence_flag_env_file(void **state)
{
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp("vmig-cfg-XXXXXX.ini", &path, NULL);
    assert_true(fd >= 0);
    close(fd);
    assert_true(g_file_set_contents(path,
                                    "[vmigrated]\nnode-name=node-file\njob-poll-interval-ms=700\n"
                                    "status-interval-ms=2000\nlog-format=json\n",
                                    -1, NULL));
    g_autofree char *cfgarg = g_strdup_printf("--config=%s", path);
    const char *args[] = {
        cfgarg, "--job-poll-interval-ms", "250", "--disable-tls", "--inbound-migrations", "3",
        NULL};
    const char *env[] = {"NODE_NAME=node-down", "VMIGRATED_STATUS_INTERVAL_MS=1500", NULL};
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigAgentConfig) c = load(args, env, &err);
    assert_null(err);
    assert_non_null(c);
    assert_string_equal(c->node_name, "node-down"); /* env beats file */
    assert_int_equal(c->job_poll_interval_ms, 250); /* flag beats file */
    assert_int_equal(c->status_interval_ms, 1500);  /* env beats file */
    assert_string_equal(c->log_format, "json");     /* file beats default */
    assert_true(c->disable_tls);
    g_autofree char *kf = vmig_agentconfig_to_keyfile(c);
    assert_non_null(strstr(kf, "job-poll-interval-ms=250\n"));
    assert_int_equal(c->inbound_migrations, 3);
    assert_non_null(strstr(kf, "inbound-migrations=3\n"));
    g_unlink(path);
}

typedef struct {
    const char *args[4];
    const char *env[3];
    int code;
    const char *needle; /* must appear in the message */
} BadCase;

static void
test_bad_values_name_the_option(void **state)
{
    static const BadCase cases[] = {
        {{NULL}, {NULL}, VMIG_AGENTCONFIG_ERROR_MISSING, "--node-name"},
        {{"--node-name", "Node_A", NULL}, {NULL}, VMIG_AGENTCONFIG_ERROR_INVALID, "Node_A"},
        {{"--node-name", "a", "--job-poll-interval-ms", "fast"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--job-poll-interval-ms (command line): 'fast'"},
        {{"--node-name", "a", NULL},
         {"VMIGRATED_ABORT_WAIT_MS=-5", NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "environment VMIGRATED_ABORT_WAIT_MS"},
        {{"--node-name", "a", "--log-format", "xml"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--log-format"},
        {{"--node-name", "a", "--migration-address", "node-b"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--migration-address"},
        {{"--node-name", "a", "--pod-share-dir", "/x/{nmespace}"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "unknown placeholder {nmespace}"},
        {{"--node-name", "a", "--libvirt-socket", "rel/{name}"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--libvirt-socket"},
        {{"--node-name", "a", "--inbound-migrations", "0"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--inbound-migrations (command line): '0' is not a whole number between 1 and 1000"},
        {{"--node-name", "a", NULL},
         {"VMIGRATED_INBOUND_MIGRATIONS=1001", NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "environment VMIGRATED_INBOUND_MIGRATIONS"},
        {{"--node-name", "a", "--bogus"}, {NULL}, VMIG_AGENTCONFIG_ERROR_USAGE, "--bogus"},
        {{"--node-name", "a", "--http-address", "foo"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--http-address (command line): 'foo'"},
        {{"--node-name", "a", "--http-address", "[::1:80"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--http-address"},
        {{"--node-name", "a", "stray"}, {NULL}, VMIG_AGENTCONFIG_ERROR_USAGE, "stray"},
        {{"--node-name", "a", "--postcopy-recovery-attempts", "0"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--postcopy-recovery-attempts (command line): '0' is not a whole number between 1"},
        {{"--node-name", "a", "--job-poll-interval-ms", "0"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "between 1 and"},
        /* checks that look at the final value still say where it came from */
        {{NULL},
         {"NODE_NAME=Node_B", NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--node-name (environment NODE_NAME): 'Node_B'"},
        {{NULL},
         {"VMIGRATED_NODE_NAME=a", "VMIGRATED_LOG_FORMAT=yaml", NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--log-format (environment VMIGRATED_LOG_FORMAT): 'yaml'"},
        {{"--node-name", "a", "--log-format", "xml"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--log-format (command line): 'xml'"},
        {{"--node-name", "a", "--lease-namespace", "A/B"},
         {NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "(command line)"},
        {{"--node-name", "a", NULL},
         {"VMIGRATED_POD_SHARE_PATH=rel", NULL},
         VMIG_AGENTCONFIG_ERROR_INVALID,
         "--pod-share-path (environment VMIGRATED_POD_SHARE_PATH): 'rel'"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(VmigAgentConfig) c = load(cases[i].args, cases[i].env, &err);
        assert_null(c);
        assert_non_null(err);
        if (err->code != cases[i].code || !strstr(err->message, cases[i].needle))
            fail_msg("case %zu: code %d message '%s'", i, err->code, err->message);
    }
}

/* A value from the key file that only the final check refuses still names the file. */
/* --postcopy-recovery-timeout-ms 0 is documented as "no recovery": it must parse (it was
 * refused like the other millisecond options). */
static void
test_zero_turns_recovery_off(void **state)
{
    const char *args[] = {"--node-name", "a", "--postcopy-recovery-timeout-ms", "0", NULL};
    const char *env[] = {NULL};
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigAgentConfig) c = load(args, env, &err);
    assert_null(err);
    assert_non_null(c);
    assert_int_equal(c->postcopy_recovery_timeout_ms, 0);
    assert_int_equal(c->postcopy_recovery_attempts, 30);
}

static void
test_bad_file_value_names_the_file(void **state)
{
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp("vmig-cfg-XXXXXX.ini", &path, NULL);
    assert_true(fd >= 0);
    close(fd);
    assert_true(g_file_set_contents(path, "[vmigrated]\nnode-name=a\nlog-format=xml\n", -1, NULL));
    g_autofree char *cfgarg = g_strdup_printf("--config=%s", path);
    const char *args[] = {cfgarg, NULL};
    const char *env[] = {NULL};
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigAgentConfig) c = load(args, env, &err);
    assert_null(c);
    assert_non_null(err);
    g_autofree char *want = g_strdup_printf("--log-format (config file %s): 'xml'", path);
    if (!strstr(err->message, want))
        fail_msg("message '%s' lacks '%s'", err->message, want);
    g_unlink(path);
}

static void
test_template_refuses_unsafe_values(void **state)
{
    static const struct {
        const char *ns, *name, *uid;
        const char *want; /* NULL = refused */
    } cases[] = {
        {"ns1", "vm1", "5b2a7c1e-0d1f-4c55-9a77-0000000000aa",
         "/p/ns1_vm1/5b2a7c1e-0d1f-4c55-9a77-0000000000aa"},
        {"ns1", "vm.with.dots", "5b2a7c1e-0d1f-4c55-9a77-0000000000aa",
         "/p/ns1_vm.with.dots/5b2a7c1e-0d1f-4c55-9a77-0000000000aa"},
        {"ns1", "../etc", "5b2a7c1e-0d1f-4c55-9a77-0000000000aa", NULL},
        {"ns1", "a/b", "5b2a7c1e-0d1f-4c55-9a77-0000000000aa", NULL},
        {"ns1", "a..b", "5b2a7c1e-0d1f-4c55-9a77-0000000000aa", NULL},
        {"n/s", "vm1", "5b2a7c1e-0d1f-4c55-9a77-0000000000aa", NULL},
        {"ns.1", "vm1", "5b2a7c1e-0d1f-4c55-9a77-0000000000aa", NULL}, /* namespace is a label */
        {"ns1", "vm1", "../../x", NULL},
        {"ns1", "", "5b2a7c1e-0d1f-4c55-9a77-0000000000aa", NULL},
        {"ns1", "VM1", "5b2a7c1e-0d1f-4c55-9a77-0000000000aa", NULL},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        g_autofree char *s = vmig_agentconfig_expand("/p/{namespace}_{name}/{uid}", cases[i].ns,
                                                     cases[i].name, cases[i].uid, NULL, 0, &err);
        if (cases[i].want) {
            assert_non_null(s);
            assert_string_equal(s, cases[i].want);
        } else {
            assert_null(s);
            assert_int_equal(err->code, VMIG_AGENTCONFIG_ERROR_INVALID);
        }
    }
    g_autoptr(GError) err = NULL;
    g_autofree char *p = vmig_agentconfig_expand("/proc/{pid}/root", "a", "b", NULL, NULL, 0, &err);
    assert_null(p); /* unknown PID */
    g_autofree char *q =
        vmig_agentconfig_expand("/proc/{pid}/root", "a", "b", NULL, NULL, 42, NULL);
    assert_string_equal(q, "/proc/42/root");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_downward_api),
        cmocka_unit_test(test_bandwidth_budget),
        cmocka_unit_test(test_precedence_flag_env_file),
        cmocka_unit_test(test_bad_values_name_the_option),
        cmocka_unit_test(test_bad_file_value_names_the_file),
        cmocka_unit_test(test_zero_turns_recovery_off),
        cmocka_unit_test(test_template_refuses_unsafe_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
