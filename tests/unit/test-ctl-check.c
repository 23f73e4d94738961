/* test-ctl-check.c - `vmigratectl check` end to end on the example manifests: verdict, method,
 * reasons, configuration, and the exit status contract (0 / 1 / 2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>

typedef struct {
    char *out;
    char *err;
    int status;
} Run;

/* Runs vmigratectl with @args (NULL-terminated, paths relative to the source root). */
static Run
run(const char *const *args)
{
    const char *build = g_getenv("VMIG_BUILD_ROOT");
    const char *src = g_getenv("VMIG_SOURCE_ROOT");
    assert_non_null(build);
    assert_non_null(src);
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(argv, g_build_filename(build, "src", "programs", "vmigratectl", NULL));
    for (int i = 0; args[i]; i++)
        g_ptr_array_add(argv,
                        g_str_has_prefix(args[i], "data/") || g_str_has_prefix(args[i], "tests/")
                            ? g_build_filename(src, args[i], NULL)
                            : g_strdup(args[i]));
    g_ptr_array_add(argv, NULL);
    Run r = {0};
    int wait = 0;
    g_autoptr(GError) e = NULL;
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &r.out, &r.err,
                      &wait, &e))
        fail_msg("spawn: %s", e->message);
    r.status = WIFEXITED(wait) ? WEXITSTATUS(wait) : -1;
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

static void
test_migratable_with_policy(void **state)
{
    const char *args[] = {"check",
                          "-f",
                          "data/examples/vmi-masquerade-containerdisk.yaml",
                          "-f",
                          "data/examples/vmim.yaml",
                          "-f",
                          "data/examples/kubevirt-migrations.yaml",
                          NULL};
    Run r = run(args);
    expect(&r, 0, "verdict: migratable", NULL);
    expect(&r, 0, "method: BlockMigration", NULL);
    expect(&r, 0, "vda (volume root) vdb (volume cidata)", NULL);
    expect(&r, 0, "MigrationPolicy: web-fast", NULL);
    expect(&r, 0, "bandwidthPerMigration: 1024 MiB/s (MigrationPolicy)", NULL);
    expect(&r, 0, "completionTimeoutPerGiB: 800 s (KubeVirt CR)", NULL);
    expect(&r, 0, "completion budget: 800 s", NULL);
    run_clear(&r);
}

static void
test_b05_not_migratable(void **state)
{
    const char *args[] = {"check", "-f", "data/examples/b05-bridge-hostdevice.yaml", NULL};
    Run r = run(args);
    expect(&r, 1, "verdict: not migratable", NULL);
    expect(&r, 1, "condition: LiveMigratable=False reason=InterfaceNotLiveMigratable", NULL);
    expect(&r, 1,
           "HostDeviceNotLiveMigratable: cannot migrate VMI: it uses the PCI host device gpu1",
           NULL);
    run_clear(&r);
}

static void
test_b06_block_copy_of_cidata_only(void **state)
{
    const char *args[] = {"check", "-f", "data/examples/b06-volumes.yaml", NULL};
    Run r = run(args);
    expect(&r, 0, "copied by block migration (migrate_disks): vdb (volume cidata)\n", NULL);
    run_clear(&r);
}

/* A VMI as the API server returns it (managedFields, volumeStatus, migrationState, null
 * times), with its DataVolume -> PVC and its Node: migratable, cloud-init copied, the rest shared.
 */
static void
test_realistic_running_vmi(void **state)
{
    const char *args[] = {"check",
                          "-f",
                          "data/examples/vmi-running.json",
                          "-f",
                          "data/examples/vmi-running-context.yaml",
                          NULL};
    Run r = run(args);
    expect(&r, 0, "VirtualMachineInstance ns1/vm1 on node-a\nverdict: migratable\n", NULL);
    expect(&r, 0, "copied by block migration (migrate_disks): vdb (volume cloudinitdisk)\n", NULL);
    expect(&r, 0, "completion budget: 300 s for 2147483648 bytes", NULL);
    run_clear(&r);
}

static void
test_bad_input(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("vmig-ctl-XXXXXX", NULL);
    g_autofree char *bad = g_build_filename(dir, "bad.yaml", NULL);
    g_autofree char *syntax = g_build_filename(dir, "syntax.yaml", NULL);
    g_assert_true(g_file_set_contents(
        bad,
        "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: vm1}\n"
        "spec: {domain: {}}\n---\napiVersion: kubevirt.io/v1\nkind: KubeVirt\nmetadata: {name: "
        "kv, namespace: kubevirt}\nspec: {configuration: {migrations: {bandwidthPerMigration: "
        "fast}}}\n",
        -1, NULL));
    g_assert_true(g_file_set_contents(syntax, "a: 1\nb: [\n", -1, NULL));
    const char *a1[] = {"check", "-f", bad, NULL};
    Run r = run(a1);
    expect(&r, 2, NULL,
           "bad.yaml: document 2: KubeVirt kubevirt/kv: "
           "spec.configuration.migrations.bandwidthPerMigration");
    run_clear(&r);
    const char *a2[] = {"check", "-f", syntax, NULL};
    r = run(a2);
    expect(&r, 2, NULL, "syntax.yaml:");
    run_clear(&r);
    const char *a3[] = {"check", NULL};
    r = run(a3);
    expect(&r, 2, NULL, "-f FILE");
    run_clear(&r);
    const char *a4[] = {"check", "-n", "ns1", NULL};
    r = run(a4);
    expect(&r, 2, NULL, "live mode");
    run_clear(&r);
    g_unlink(bad);
    g_unlink(syntax);
    g_rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migratable_with_policy),
        cmocka_unit_test(test_b05_not_migratable),
        cmocka_unit_test(test_b06_block_copy_of_cidata_only),
        cmocka_unit_test(test_realistic_running_vmi),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
