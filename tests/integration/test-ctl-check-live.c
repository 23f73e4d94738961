/* test-ctl-check-live.c - `vmigratectl check -n NS NAME` against the in-memory API server
 * (tests/apiserver, in-process on this thread's main loop) seeded with
 * tests/data/check-live/cluster.yaml: verdicts, reasons and effective configuration equal the
 * offline mode's on the same objects, exit statuses 0 / 1 / 2, and a missing VMI or an
 * unreachable server is named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "apiserver.h"

typedef struct {
    VmigTestApiserver *server;
    char *dir;
    char *kubeconfig;
    char *cluster; /* the seed file, also the offline input */
} Fixture;

typedef struct {
    char *out;
    char *err;
    int status;
} Run;

typedef struct {
    gboolean done;
    GAsyncResult *result;
} Wait;

static void
wait_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
    (void)source;
    Wait *w = user_data;
    w->result = g_object_ref(result);
    w->done = TRUE;
}

/* Runs vmigratectl with @args (NULL-terminated) while this thread's main loop keeps serving
 * the in-process API server. */
static Run
run(const char *const *args)
{
    const char *build = g_getenv("VMIG_BUILD_ROOT");
    assert_non_null(build);
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(argv, g_build_filename(build, "src", "programs", "vmigratectl", NULL));
    for (int i = 0; args[i]; i++)
        g_ptr_array_add(argv, g_strdup(args[i]));
    g_ptr_array_add(argv, NULL);
    g_autoptr(GError) e = NULL;
    g_autoptr(GSubprocess) p =
        g_subprocess_newv((const char *const *)argv->pdata,
                          G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &e);
    if (!p)
        fail_msg("spawn: %s", e->message);
    Wait w = {0};
    g_subprocess_communicate_utf8_async(p, NULL, NULL, wait_cb, &w);
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    while (!w.done && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    if (!w.done)
        fail_msg("vmigratectl did not finish within 60 s");
    Run r = {0};
    gboolean ok = g_subprocess_communicate_utf8_finish(p, w.result, &r.out, &r.err, &e);
    g_object_unref(w.result);
    if (!ok)
        fail_msg("communicate: %s", e->message);
    r.status = g_subprocess_get_if_exited(p) ? g_subprocess_get_exit_status(p) : -1;
    return r;
}

static void
run_clear(Run *r)
{
    g_free(r->out);
    g_free(r->err);
}

static void
expect(const Run *r, int status, const char *needle_out, const char *needle_err)
{
    if (r->status != status)
        fail_msg("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r->status, status, r->out, r->err);
    if (needle_out && !strstr(r->out, needle_out))
        fail_msg("stdout lacks \"%s\":\n%s", needle_out, r->out);
    if (needle_err && !strstr(r->err, needle_err))
        fail_msg("stderr lacks \"%s\":\n%s", needle_err, r->err);
}

static Run
run_live(Fixture *f, const char *name)
{
    const char *args[] = {"check", "-n", "ns1", name, "--kubeconfig", f->kubeconfig, NULL};
    return run(args);
}

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    g_autoptr(GError) e = NULL;
    VmigTestApiserverOptions opts = {0};
    f->server = vmig_test_apiserver_new(&opts, &e);
    assert_non_null(f->server);
    f->cluster = g_build_filename(g_getenv("VMIG_SOURCE_ROOT"), "tests", "data", "check-live",
                                  "cluster.yaml", NULL);
    if (!vmig_test_apiserver_load_file(f->server, f->cluster, &e))
        fail_msg("%s", e->message);
    f->dir = g_dir_make_tmp("vmig-check-live-XXXXXX", &e);
    assert_non_null(f->dir);
    f->kubeconfig = g_build_filename(f->dir, "kubeconfig", NULL);
    if (!vmig_test_apiserver_write_kubeconfig(f->server, f->kubeconfig, &e))
        fail_msg("%s", e->message);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fixture *f = *state;
    vmig_test_apiserver_free(f->server);
    g_unlink(f->kubeconfig);
    g_rmdir(f->dir);
    g_free(f->kubeconfig);
    g_free(f->dir);
    g_free(f->cluster);
    g_free(f);
    return 0;
}

/* The VMI, its namespace's PVCs and DataVolumes, the KubeVirt CR, the MigrationPolicies, the
 * Namespace (labels: the policy matches) and the Node (host-model facts) all come from the
 * server. */
static void
test_migratable(void **state)
{
    Fixture *f = *state;
    vmig_test_apiserver_reset(f->server);
    Run r = run_live(f, "web");
    expect(&r, 0, "VirtualMachineInstance ns1/web on node-a\nverdict: migratable\n", NULL);
    expect(&r, 0, "method: BlockMigration", NULL);
    /* data is the DataVolume dv-rwx whose PVC is ReadWriteMany: shared, not copied */
    expect(&r, 0, "(migrate_disks): vda (volume root) vdc (volume cidata)\n", NULL);
    expect(&r, 0, "effective configuration (MigrationPolicy: web-fast)", NULL);
    expect(&r, 0, "bandwidthPerMigration: 1024 MiB/s (MigrationPolicy)", NULL);
    expect(&r, 0, "completionTimeoutPerGiB: 800 s (KubeVirt CR)", NULL);
    assert_null(strstr(r.out, "no Node document"));
    run_clear(&r);
    assert_int_equal(
        vmig_test_apiserver_count_requests(f->server, "get", "virtualmachineinstances"), 1);
    assert_int_equal(
        vmig_test_apiserver_count_requests(f->server, "list", "persistentvolumeclaims"), 1);
    assert_int_equal(vmig_test_apiserver_count_requests(f->server, "list", "datavolumes"), 1);
    assert_int_equal(vmig_test_apiserver_count_requests(f->server, "list", "kubevirts"), 1);
    assert_int_equal(vmig_test_apiserver_count_requests(f->server, "list", "migrationpolicies"), 1);
    assert_int_equal(vmig_test_apiserver_count_requests(f->server, "get", "namespaces"), 1);
    assert_int_equal(vmig_test_apiserver_count_requests(f->server, "get", "nodes"), 1);
    /* read-only: nothing written */
    assert_int_equal(vmig_test_apiserver_count_requests(f->server, "create", NULL) +
                         vmig_test_apiserver_count_requests(f->server, "update", NULL) +
                         vmig_test_apiserver_count_requests(f->server, "patch", NULL),
                     0);
}

static void
test_bridge_binding(void **state)
{
    Run r = run_live(*state, "bridged");
    expect(&r, 1, "verdict: not migratable\n", NULL);
    expect(&r, 1, "condition: LiveMigratable=False reason=InterfaceNotLiveMigratable", NULL);
    expect(&r, 1, "interface default connects to the pod network with bridge binding", NULL);
    run_clear(&r);
}

static void
test_rwo_pvc(void **state)
{
    Run r = run_live(*state, "rwo");
    expect(&r, 1, "condition: LiveMigratable=False reason=DisksNotLiveMigratable", NULL);
    expect(&r, 1, "PVC data-rwo (volume data) is not shared", NULL);
    run_clear(&r);
}

/* Live and offline read the same objects, so they print the same report. */
static void
test_same_as_offline(void **state)
{
    Fixture *f = *state;
    const char *args[] = {"check", "-f", f->cluster, NULL};
    Run off = run(args);
    assert_int_equal(off.status, 1);
    g_autoptr(GString) live = g_string_new(NULL);
    const char *names[] = {"web", "bridged", "rwo"};
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        Run r = run_live(f, names[i]);
        g_string_append_printf(live, "%s%s", i ? "\n" : "", r.out);
        run_clear(&r);
    }
    assert_string_equal(live->str, off.out);
    run_clear(&off);
}

static void
test_missing_vmi(void **state)
{
    Run r = run_live(*state, "nope");
    expect(&r, 2, NULL, "VirtualMachineInstance ns1/nope not found");
    assert_string_equal(r.out, "");
    run_clear(&r);
}

static void
test_unreachable_server(void **state)
{
    Fixture *f = *state;
    /* A port that was just free: connection refused. */
    g_autoptr(GSocketListener) l = g_socket_listener_new();
    guint16 port = g_socket_listener_add_any_inet_port(l, NULL, NULL);
    g_socket_listener_close(l);
    g_autofree char *kc = g_build_filename(f->dir, "down", NULL);
    g_autofree char *text = g_strdup_printf(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: "
        "http://127.0.0.1:%u\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: x\n  context:\n"
        "    cluster: c\n    user: u\ncurrent-context: x\n",
        port);
    assert_true(g_file_set_contents(kc, text, -1, NULL));
    const char *args[] = {"check", "-n", "ns1", "web", "--kubeconfig", kc, NULL};
    Run r = run(args);
    expect(&r, 2, NULL, "VirtualMachineInstance ns1/web: ");
    run_clear(&r);
    g_unlink(kc);
}

static void
test_usage(void **state)
{
    Fixture *f = *state;
    const char *a1[] = {"check", "-n", "ns1", NULL};
    Run r = run(a1);
    expect(&r, 2, NULL, "exactly one VMI NAME");
    run_clear(&r);
    const char *a2[] = {"check", "-n", "ns1", "a/../b", "--kubeconfig", f->kubeconfig, NULL};
    r = run(a2);
    expect(&r, 2, NULL, "NAME");
    run_clear(&r);
    const char *a3[] = {
        "check",           "-n", "ns1", "web", "--kubeconfig", f->kubeconfig, "--target-libvirt",
        "test:///default", NULL};
    r = run(a3);
    expect(&r, 2, NULL, "give --source-libvirt URI");
    run_clear(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migratable),  cmocka_unit_test(test_bridge_binding),
        cmocka_unit_test(test_rwo_pvc),     cmocka_unit_test(test_same_as_offline),
        cmocka_unit_test(test_missing_vmi), cmocka_unit_test(test_unreachable_server),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
