/* test-virt-conn.c - the libvirt layer against libvirt's own test driver
 * (test:///<file>, in process, no daemon): connection, KubeVirt domain lookup,
 * migratable XML, state, suspend/resume, errors of unsupported job calls turned
 * into GErrors, job events registration, and a whole migration object whose
 * MigrateToURI3 fails, ending in a "failed" outcome on the main loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "vmig/virt.h"

static char *
node_uri(void)
{
    const char *root = g_getenv("VMIG_SOURCE_ROOT");
    g_autofree char *path =
        g_build_filename(root ? root : ".", "tests", "unit", "data", "virt-node.xml", NULL);
    return g_strdup_printf("test://%s", path);
}

static VmigVirtConn *
open_node(void)
{
    g_autofree char *uri = node_uri();
    g_autoptr(GError) error = NULL;
    VmigVirtConn *conn = vmig_virt_conn_open(uri, &error);
    if (!conn)
        fail_msg("%s", error->message);
    return conn;
}

static void
test_open_refused(void **state)
{
    g_autoptr(GError) error = NULL;
    VmigVirtConn *conn =
        vmig_virt_conn_open("qemu+unix:///system?socket=/nonexistent/libvirt-sock", &error);
    assert_null(conn);
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_CONNECT));
    assert_non_null(strstr(error->message, "/nonexistent/libvirt-sock"));
    g_clear_error(&error);
    assert_null(vmig_virt_conn_open("", &error));
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID));
}

static void
test_lookup(void **state)
{
    g_autoptr(VmigVirtConn) conn = open_node();
    g_autoptr(GError) error = NULL;
    g_autoptr(VmigVirtDomain) dom = vmig_virt_domain_lookup(conn, "ns1", "vm1", &error);
    assert_non_null(dom);
    assert_string_equal(vmig_virt_domain_what(dom), "ns1/vm1");

    VmigVirtDomain *none = vmig_virt_domain_lookup(conn, "ns1", "vm2", &error);
    assert_null(none);
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_NO_DOMAIN));
    assert_non_null(strstr(error->message, "ns1_vm2"));
    g_clear_error(&error);

    none = vmig_virt_domain_lookup(conn, "ns1", "../vm1", &error);
    assert_null(none);
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID));
}

static void
test_xml_and_state(void **state)
{
    g_autoptr(VmigVirtConn) conn = open_node();
    g_autoptr(VmigVirtDomain) dom = vmig_virt_domain_lookup(conn, "ns1", "vm1", NULL);
    assert_non_null(dom);
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = vmig_virt_domain_migratable_xml(dom, &error);
    assert_non_null(xml);
    assert_non_null(strstr(xml, "<name>ns1_vm1</name>"));

    VmigVirtDomainState st = VMIG_VIRT_DOMAIN_UNKNOWN;
    assert_true(vmig_virt_domain_get_state(dom, &st, &error));
    assert_int_equal(st, VMIG_VIRT_DOMAIN_RUNNING);
    assert_true(vmig_virt_domain_suspend(dom, &error));
    assert_true(vmig_virt_domain_get_state(dom, &st, &error));
    assert_int_equal(st, VMIG_VIRT_DOMAIN_PAUSED);
    /* paused by the user, not by post-copy: resuming is allowed */
    assert_true(vmig_virt_domain_resume(dom, &error));
    assert_true(vmig_virt_domain_get_state(dom, &st, &error));
    assert_int_equal(st, VMIG_VIRT_DOMAIN_RUNNING);
}

static void
test_job_calls_errors(void **state)
{
    g_autoptr(VmigVirtConn) conn = open_node();
    g_autoptr(VmigVirtDomain) dom = vmig_virt_domain_lookup(conn, "ns1", "vm1", NULL);
    g_autoptr(GError) error = NULL;
    VmigVirtJobStats s;

    /* the test driver has no job API: each call reports libvirt's reason, naming the VMI */
    assert_false(vmig_virt_domain_job_stats(dom, FALSE, &s, &error));
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_LIBVIRT));
    assert_non_null(strstr(error->message, "ns1/vm1: virDomainGetJobStats"));
    assert_non_null(strstr(error->message, "not supported"));
    g_clear_error(&error);
    assert_false(vmig_virt_domain_job_stats(dom, TRUE, &s, &error));
    assert_non_null(strstr(error->message, "virDomainGetJobStats(completed)"));
    g_clear_error(&error);
    assert_false(vmig_virt_domain_abort_job(dom, 100, &error));
    assert_non_null(strstr(error->message, "virDomainAbortJob"));
    g_clear_error(&error);
    assert_false(vmig_virt_domain_set_max_speed(dom, 64, &error));
    assert_non_null(strstr(error->message, "virDomainMigrateSetMaxSpeed"));
    g_clear_error(&error);
    assert_false(vmig_virt_domain_set_max_speed(dom, VMIG_VIRT_BANDWIDTH_UNLIMITED + 1, &error));
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID));
    g_clear_error(&error);
    assert_false(vmig_virt_domain_set_max_postcopy_speed(dom, 64, &error));
    assert_non_null(strstr(error->message, "ns1/vm1: virDomainMigrateSetMaxSpeed(POSTCOPY)"));
    g_clear_error(&error);
    assert_false(vmig_virt_domain_set_max_downtime(dom, 300, &error));
    assert_non_null(strstr(error->message, "virDomainMigrateSetMaxDowntime"));
    g_clear_error(&error);
    assert_false(vmig_virt_domain_start_postcopy(dom, &error));
    assert_non_null(strstr(error->message, "virDomainMigrateStartPostCopy"));
}

static void
test_events(void **state)
{
    g_autoptr(GError) error = NULL;
    assert_true(vmig_virt_event_loop_start(&error));
    assert_true(vmig_virt_event_loop_start(&error)); /* idempotent */
    g_autoptr(VmigVirtConn) conn = open_node();
    g_autoptr(VmigVirtDomain) dom = vmig_virt_domain_lookup(conn, "ns1", "vm1", NULL);
    assert_true(vmig_virt_domain_watch_jobs(dom, NULL, NULL, NULL, NULL, &error));
    vmig_virt_domain_unwatch_jobs(dom);
    vmig_virt_domain_unwatch_jobs(dom);
}

typedef struct {
    gboolean done;
    VmigVirtOutcomeKind kind;
    char *reason;
    char *detail;
} DoneData;

static void
on_done(VmigVirtMigration *m, const VmigVirtOutcome *o, gpointer user_data)
{
    DoneData *d = user_data;
    d->done = TRUE;
    d->kind = o->kind;
    d->reason = g_strdup(o->reason);
    d->detail = g_strdup(o->detail);
}

static void
test_migration_call_fails(void **state)
{
    assert_true(vmig_virt_event_loop_start(NULL));
    g_autoptr(VmigVirtConn) conn = open_node();
    g_autoptr(VmigVirtDomain) dom = vmig_virt_domain_lookup(conn, "ns1", "vm1", NULL);
    VmigVirtMigrateSettings s = {.dconnuri = "qemu+unix:///system?socket=/nonexistent/sock",
                                 .migrate_uri = "unix:///nonexistent/mem.sock"};
    VmigVirtMonitorConfig c;
    vmig_virt_monitor_config_init(&c);
    c.poll_interval_ms = 10;
    DoneData d = {0};
    g_autoptr(GError) error = NULL;

    /* bad settings are refused before any call */
    VmigVirtMigrateSettings bad = s;
    bad.migrate_uri = NULL;
    assert_null(vmig_virt_migration_start(dom, &bad, &c, on_done, &d, &error));
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID));
    g_clear_error(&error);

    VmigVirtMigration *m = vmig_virt_migration_start(dom, &s, &c, on_done, &d, &error);
    assert_non_null(m);
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!d.done && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    assert_true(d.done);
    assert_int_equal(d.kind, VMIG_VIRT_OUTCOME_FAILED);
    assert_string_equal(d.reason, "migration failed");
    assert_non_null(d.detail);
    assert_non_null(strstr(d.detail, "p2p migration is not supported"));
    assert_false(vmig_virt_monitor_is_polling(vmig_virt_migration_get_monitor(m)));
    assert_false(vmig_virt_migration_request_abort(m, &error));
    assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_STATE));
    vmig_virt_migration_free(m);
    /* let a poll that was still in flight hand back */
    for (int i = 0; i < 50; i++) {
        g_usleep(2000);
        while (g_main_context_iteration(NULL, FALSE))
            ;
    }
    g_free(d.reason);
    g_free(d.detail);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_refused),  cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_xml_and_state), cmocka_unit_test(test_job_calls_errors),
        cmocka_unit_test(test_events),        cmocka_unit_test(test_migration_call_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
