/* test-ctl-migrate.c - `vmigratectl migrate` and `cancel` against the in-memory API server,
 * with the migration's progress faked by the test: the VMIM is posted with generateName
 * <vmi>-migration-, --wait prints one line per change when stdout is not a terminal (phase,
 * MiB moved/remaining, dirty rate, ETA) and exits 0 on Succeeded, 1 on Failed (with the
 * failureReason) or timeout, 2 on bad usage; cancel deletes and --wait sees it gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <gio/gio.h>
#include <string.h>

#include "apiserver-proc.h"

#define VMIMS "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations"

static const char seed_json[] =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstance\","
    "\"metadata\":{\"name\":\"vm1\",\"namespace\":\"ns1\"},\"spec\":{},"
    "\"status\":{\"phase\":\"Running\",\"nodeName\":\"node-a\"}}";

typedef struct {
    ApiserverProc *api;
    GSubprocess *ctl;
    GString *out, *err;
} Fx;

static int
setup(void **state)
{
    Fx *fx = g_new0(Fx, 1);
    fx->api = apiserver_proc_start(seed_json);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    Fx *fx = *state;
    apiserver_proc_stop(fx->api);
    g_free(fx);
    return 0;
}

static GSubprocess *
ctl_spawn(Fx *fx, const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, (gpointer)g_getenv("VMIG_CTL"));
    for (const char *const *a = args; *a; a++)
        g_ptr_array_add(argv, (gpointer)*a);
    g_ptr_array_add(argv, "--kubeconfig");
    g_ptr_array_add(argv, fx->api->kubeconfig);
    g_ptr_array_add(argv, NULL);
    g_autoptr(GError) err = NULL;
    GSubprocess *p =
        g_subprocess_newv((const char *const *)argv->pdata,
                          G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &err);
    g_assert_no_error(err);
    return p;
}

typedef struct {
    gboolean done;
    char *out, *err;
} Comm;

static void
comm_done(GObject *src, GAsyncResult *res, gpointer data)
{
    Comm *c = data;
    g_subprocess_communicate_utf8_finish(G_SUBPROCESS(src), res, &c->out, &c->err, NULL);
    c->done = TRUE;
}

/* Waits for the child on this main context; returns its exit status. */
static int
ctl_finish(GSubprocess *p, char **out, char **err)
{
    Comm c = {0};
    g_subprocess_communicate_utf8_async(p, NULL, NULL, comm_done, &c);
    while (!c.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_true(g_subprocess_get_if_exited(p));
    *out = c.out ? c.out : g_strdup("");
    *err = c.err ? c.err : g_strdup("");
    return g_subprocess_get_exit_status(p);
}

static int
ctl_run(Fx *fx, const char *const *args, char **out, char **err)
{
    g_autoptr(GSubprocess) p = ctl_spawn(fx, args);
    return ctl_finish(p, out, err);
}

static gboolean
spin_cb(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

static void
spin_ms(guint ms)
{
    gboolean done = FALSE;
    g_timeout_add(ms, spin_cb, &done);
    while (!done)
        g_main_context_iteration(NULL, TRUE);
}

/* The name of the one VMIM in ns1, once it exists. */
static char *
wait_vmim_name(Fx *fx)
{
    for (int i = 0; i < 100; i++) {
        g_autofree char *body = NULL;
        assert_int_equal(apiserver_proc_request(fx->api, "GET", VMIMS, NULL, &body), 200);
        const char *p = strstr(body, "\"name\":\"vm1-migration-");
        if (p) {
            p += strlen("\"name\":\"");
            return g_strndup(p, strchr(p, '"') - p);
        }
        spin_ms(50);
    }
    fail_msg("no VMIM was posted");
    return NULL;
}

static void
fake(Fx *fx, const char *name, gboolean status, const char *patch)
{
    g_autofree char *path = g_strdup_printf("%s/%s%s", VMIMS, name, status ? "/status" : "");
    g_autofree char *body = NULL;
    guint code = apiserver_proc_request(fx->api, "PATCH", path, patch, &body);
    if (code != 200)
        fail_msg("PATCH %s: %u %s", path, code, body);
    spin_ms(700); /* the CLI polls every 500 ms: let it see each step */
}

#define PROGRESS(processed, remaining)                                                             \
    "{\"metadata\":{\"annotations\":{\"vmigrated.kubevirt.io/progress\":\"{\\\"state\\\":"         \
    "\\\"Running\\\",\\\"mode\\\":\\\"PreCopy\\\",\\\"processedBytes\\\":" #processed              \
    ",\\\"remainingBytes\\\":" #remaining ",\\\"totalBytes\\\":1073741824,"                        \
    "\\\"dirtyRateBytesPerSecond\\\":10485760,\\\"transferRateBytesPerSecond\\\":"                 \
    "115343360,\\\"iteration\\\":1,\\\"elapsedMs\\\":1500}\"}}}"

static void
test_migrate_succeeded(void **state)
{
    Fx *fx = *state;
    g_autoptr(GSubprocess) p =
        ctl_spawn(fx, (const char *const[]){"migrate", "-n", "ns1", "vm1", "--wait", "--timeout",
                                            "30", NULL});
    g_autofree char *name = wait_vmim_name(fx);
    spin_ms(700);
    fake(fx, name, TRUE, "{\"status\":{\"phase\":\"Scheduling\"}}");
    fake(fx, name, TRUE, "{\"status\":{\"phase\":\"Running\"}}");
    /* 256 MiB moved, 768 MiB left at 110 MiB/s - 10 MiB/s dirty: ETA 7.68 s -> 0:08 */
    fake(fx, name, FALSE, PROGRESS(268435456, 805306368));
    fake(fx, name, TRUE,
         "{\"status\":{\"phase\":\"Succeeded\",\"migrationState\":{\"completed\":true}}}");
    g_autofree char *out = NULL, *err = NULL;
    int rc = ctl_finish(p, &out, &err);
    if (rc != 0)
        fail_msg("exit %d\nstdout:\n%s\nstderr:\n%s", rc, out, err);
    g_autofree char *created =
        g_strdup_printf("virtualmachineinstancemigration ns1/%s created\n", name);
    assert_true(g_str_has_prefix(out, created));
    assert_non_null(strstr(out, "phase=Scheduling\n"));
    assert_non_null(strstr(out, "phase=Running mode=PreCopy moved=256.0MiB remaining=768.0MiB "
                                "dirty=10.0MiB/s rate=110.0MiB/s iteration=1 eta=0:08\n"));
    g_autofree char *done =
        g_strdup_printf("VMIM ns1/%s Succeeded (256.0 MiB moved in 1.5 s)\n", name);
    assert_non_null(strstr(out, done));
    /* the posted object */
    g_autofree char *path = g_strdup_printf("%s/%s", VMIMS, name);
    g_autofree char *obj = NULL;
    assert_int_equal(apiserver_proc_request(fx->api, "GET", path, NULL, &obj), 200);
    assert_non_null(strstr(obj, "\"vmiName\":\"vm1\""));
    assert_non_null(strstr(obj, "\"generateName\":\"vm1-migration-\""));
}

static void
test_migrate_failed(void **state)
{
    Fx *fx = *state;
    g_autoptr(GSubprocess) p =
        ctl_spawn(fx, (const char *const[]){"migrate", "-n", "ns1", "vm1", "--wait", NULL});
    g_autofree char *name = wait_vmim_name(fx);
    fake(fx, name, TRUE,
         "{\"status\":{\"phase\":\"Failed\",\"migrationState\":{\"failed\":true,"
         "\"failureReason\":\"target node-b: CPU feature avx512f missing\"}}}");
    g_autofree char *out = NULL, *err = NULL;
    assert_int_equal(ctl_finish(p, &out, &err), 1);
    assert_non_null(strstr(err, "Failed: target node-b: CPU feature avx512f missing\n"));
}

static void
test_migrate_timeout(void **state)
{
    Fx *fx = *state;
    g_autofree char *out = NULL, *err = NULL;
    int rc = ctl_run(
        fx, (const char *const[]){"migrate", "-n", "ns1", "vm1", "--wait", "--timeout", "1", NULL},
        &out, &err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "not finished after 1 s"));
}

static void
test_cancel(void **state)
{
    Fx *fx = *state;
    g_autofree char *out = NULL, *err = NULL;
    assert_int_equal(
        ctl_run(fx, (const char *const[]){"migrate", "-n", "ns1", "vm1", NULL}, &out, &err), 0);
    g_autofree char *name = wait_vmim_name(fx);
    g_autofree char *out2 = NULL, *err2 = NULL;
    int rc = ctl_run(
        fx, (const char *const[]){"cancel", "-n", "ns1", name, "--wait", "--timeout", "10", NULL},
        &out2, &err2);
    if (rc != 0)
        fail_msg("cancel: exit %d: %s", rc, err2);
    assert_non_null(strstr(out2, "deleted\n"));
    assert_non_null(strstr(out2, "gone\n"));
    g_autofree char *path = g_strdup_printf("%s/%s", VMIMS, name);
    assert_int_equal(apiserver_proc_request(fx->api, "GET", path, NULL, NULL), 404);
    /* cancelling it again: the API says not found, exit 1 */
    g_autofree char *out3 = NULL, *err3 = NULL;
    assert_int_equal(
        ctl_run(fx, (const char *const[]){"cancel", "-n", "ns1", name, NULL}, &out3, &err3), 1);
    assert_non_null(strstr(err3, "404"));
}

static void
test_usage(void **state)
{
    Fx *fx = *state;
    const char *const *cases[] = {
        (const char *const[]){"migrate", NULL},
        (const char *const[]){"migrate", "-n", "ns1", "vm1", "vm2", NULL},
        (const char *const[]){"migrate", "-n", "ns1", "../vm1", NULL},
        (const char *const[]){"migrate", "-n", "NS_1", "vm1", NULL},
        (const char *const[]){"migrate", "--timeout", "-3", "-n", "ns1", "vm1", NULL},
        (const char *const[]){"cancel", NULL},
        (const char *const[]){"cancel", "--bogus", "x", NULL},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *out = NULL, *err = NULL;
        int rc = ctl_run(fx, cases[i], &out, &err);
        if (rc != 2)
            fail_msg("case %zu: exit %d (want 2): %s", i, rc, err);
        assert_true(strlen(err) > 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_succeeded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
