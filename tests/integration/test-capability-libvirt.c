/* test-capability-libvirt.c - the capability checks against a real libvirtd (QEMU driver, TCG),
 * started by capability-libvirt.sh: a tiny SeaBIOS-only guest with a host-model CPU is defined
 * and started, its migratable XML is checked against the same daemon (refused: the target is
 * the source), against the same daemon posing as another node (accepted: libvirt's own
 * virConnectCompareHypervisorCPU takes the guest's resolved CPU), and with variants libvirt
 * must refuse (a feature TCG lacks, a machine type this QEMU lacks, too little memory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "vmig/capability.h"

#define VM_NAME "vmig-capvm"

static virConnectPtr conn;
static virDomainPtr dom;
static char *migratable_xml;
static VmigCapabilitySource source;

static const char domain_xml[] = "<domain type='qemu'>\n"
                                 "  <name>" VM_NAME "</name>\n"
                                 "  <memory unit='MiB'>32</memory>\n"
                                 "  <vcpu>1</vcpu>\n"
                                 "  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
                                 "  <cpu mode='host-model'/>\n"
                                 "  <on_poweroff>destroy</on_poweroff>\n"
                                 "  <on_reboot>restart</on_reboot>\n"
                                 "  <on_crash>destroy</on_crash>\n"
                                 "  <devices>\n"
                                 "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
                                 "    <controller type='usb' model='none'/>\n"
                                 "    <memballoon model='none'/>\n"
                                 "  </devices>\n"
                                 "</domain>\n";

static int
setup(void **state)
{
    (void)state;
    const char *uri = g_getenv("VMIG_LIBVIRTD_URI");
    if (!uri) {
        fprintf(stderr, "VMIG_LIBVIRTD_URI not set: run through capability-libvirt.sh\n");
        return -1;
    }
    conn = virConnectOpen(uri);
    if (!conn) {
        fprintf(stderr, "virConnectOpen %s: %s\n", uri, virGetLastErrorMessage());
        return -1;
    }
    /* a left-over from an interrupted run */
    virDomainPtr old = virDomainLookupByName(conn, VM_NAME);
    if (old) {
        virDomainDestroy(old);
        virDomainUndefine(old);
        virDomainFree(old);
    }
    dom = virDomainDefineXML(conn, domain_xml);
    if (!dom || virDomainCreate(dom) < 0) {
        fprintf(stderr, "define/start " VM_NAME ": %s\n", virGetLastErrorMessage());
        return -1;
    }
    migratable_xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_MIGRATABLE);
    if (!migratable_xml) {
        fprintf(stderr, "virDomainGetXMLDesc: %s\n", virGetLastErrorMessage());
        return -1;
    }
    g_autoptr(GError) err = NULL;
    if (!vmig_capability_source_query(conn, "node-a", &source, &err)) {
        fprintf(stderr, "source query: %s\n", err->message);
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    if (dom) {
        virDomainDestroy(dom);
        virDomainUndefine(dom);
        virDomainFree(dom);
    }
    free(migratable_xml);
    vmig_capability_source_clear(&source);
    if (conn)
        virConnectClose(conn);
    return 0;
}

static char *
join(const GPtrArray *a)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; a && i < a->len; i++)
        g_string_append_printf(s, "%s%s", i ? "|" : "", (const char *)g_ptr_array_index(a, i));
    return g_string_free(s, FALSE);
}

/* The running guest's CPU: host-model resolved by libvirt into a custom model with features. */
static void
test_running_xml_and_source_facts(void **state)
{
    (void)state;
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigCapabilityDomain) d = vmig_capability_domain_parse(migratable_xml, &err);
    assert_non_null(d);
    assert_string_equal(d->machine, "pc-i440fx-7.2"); /* "pc" canonicalized at define time */
    assert_string_equal(d->virt_type, "qemu");
    assert_int_equal(d->memory_bytes, 32 * 1024 * 1024);
    assert_non_null(d->cpu);
    assert_int_equal(d->cpu->mode, VMIG_CAPABILITY_CPU_MODE_CUSTOM);
    assert_non_null(d->cpu->model);
    assert_true(d->cpu->required->len > 0);

    assert_string_equal(source.node, "node-a");
    assert_string_equal(source.host_uuid, g_getenv("VMIG_LIBVIRTD_HOST_UUID"));
    assert_true(source.libvirt_version >= 9000000);
    assert_true(source.qemu_version >= 7000000);
    assert_non_null(source.host_cpu);
}

/* libvirt accepts the guest's own resolved CPU on the host it runs on. */
static void
test_compare_accepts_own_cpu(void **state)
{
    (void)state;
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigCapabilityDomain) d = vmig_capability_domain_parse(migratable_xml, &err);
    int rc = virConnectCompareHypervisorCPU(conn, NULL, d->arch, d->machine, d->virt_type,
                                            d->cpu->xml, VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE);
    if (rc != VIR_CPU_COMPARE_IDENTICAL && rc != VIR_CPU_COMPARE_SUPERSET)
        fail_msg("virConnectCompareHypervisorCPU = %d: %s", rc, virGetLastErrorMessage());
}

/* Same daemon as source and target: refused by name and by libvirt host UUID. */
static void
test_target_is_source(void **state)
{
    (void)state;
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigCapabilityResult) r =
        vmig_capability_check(conn, "node-a", migratable_xml, &source, NULL, &err);
    assert_non_null(r);
    g_autofree char *reasons = join(r->reasons);
    assert_false(r->eligible);
    g_autofree char *expected = g_strdup_printf(
        "target is the source: node name node-a is the source node|target is the source: "
        "node-a has the libvirt host UUID %s of the source node node-a",
        source.host_uuid);
    assert_string_equal(reasons, expected);

    /* another name, same libvirt host: still the source */
    g_autoptr(VmigCapabilityResult) r2 =
        vmig_capability_check(conn, "node-b", migratable_xml, &source, NULL, &err);
    g_autofree char *reasons2 = join(r2->reasons);
    g_autofree char *expected2 =
        g_strdup_printf("target is the source: node-b has the libvirt host UUID %s of the "
                        "source node node-a",
                        source.host_uuid);
    assert_string_equal(reasons2, expected2);
    assert_int_equal(r2->target_libvirt_version, source.libvirt_version);
    assert_int_equal(r2->target_qemu_version, source.qemu_version);
}

/* The same daemon posing as another node: every check passes. */
static void
test_other_node_accepted(void **state)
{
    (void)state;
    VmigCapabilitySource other = source;
    other.node = (char *)"node-x";
    other.host_uuid = (char *)"99999999-9999-4999-8999-999999999999";
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigCapabilityResult) r =
        vmig_capability_check(conn, "node-a", migratable_xml, &other, NULL, &err);
    assert_non_null(r);
    g_autofree char *reasons = join(r->reasons);
    if (!r->eligible)
        fail_msg("refused: %s", reasons);
    assert_string_equal(r->target_emulator, "/usr/bin/qemu-system-x86_64");
    assert_string_equal(r->machine, "pc-i440fx-7.2");
    assert_true(r->free_memory_bytes > r->required_memory_bytes);

    g_autofree char *dst =
        vmig_capability_destination_xml(migratable_xml, r->target_emulator, &err);
    assert_string_equal(dst, migratable_xml); /* same emulator: unchanged, byte for byte */
}

static char *
replace(const char *in, const char *from, const char *to)
{
    GString *s = g_string_new(in);
    if (g_string_replace(s, from, to, 1) != 1)
        fail_msg("'%s' not in the migratable XML", from);
    return g_string_free(s, FALSE);
}

/* A feature TCG cannot give: libvirt says incompatible, and the missing feature is derived
 * (virConnectBaselineCPU expansion of both sides) and named. */
static void
test_missing_feature_refused(void **state)
{
    (void)state;
    VmigCapabilitySource other = source;
    other.node = (char *)"node-x";
    other.host_uuid = NULL;
    g_autofree char *xml =
        replace(migratable_xml, "</cpu>",
                "<feature policy='require' name='avx512f'/><feature policy='require' "
                "name='avx512bw'/></cpu>");
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigCapabilityResult) r =
        vmig_capability_check(conn, "node-a", xml, &other, NULL, &err);
    assert_non_null(r);
    assert_false(r->eligible);
    g_autofree char *missing = join(r->missing_cpu_features);
    assert_string_equal(missing, "avx512bw|avx512f");
    g_autofree char *reasons = join(r->reasons);
    assert_non_null(strstr(reasons, "is not provided by node-a: missing features avx512bw, "
                                    "avx512f"));
}

/* A captured running domain from a RHEL node (field case B08) against this upstream QEMU. */
static void
test_captured_b08_domain_refused(void **state)
{
    (void)state;
    const char *root = g_getenv("VMIG_SOURCE_ROOT");
    g_autofree char *path = g_build_filename(root ? root : ".", "tests", "data", "capability",
                                             "b08-vm1-running.xml", NULL);
    g_autofree char *xml = NULL;
    assert_true(g_file_get_contents(path, &xml, NULL, NULL));
    g_autofree char *qemu_xml = replace(xml, "<domain type='kvm'>", "<domain type='qemu'>");
    VmigCapabilitySource other = {
        .node = (char *)"node-x", .libvirt_version = 9000000, .qemu_version = 7002000};
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigCapabilityResult) r =
        vmig_capability_check(conn, "node-a", qemu_xml, &other, NULL, &err);
    assert_non_null(r);
    assert_false(r->eligible);
    g_autofree char *reasons = join(r->reasons);
    fprintf(stderr, "captured B08 guest: %s\n", reasons);
    assert_int_equal(r->reasons->len, 2);
    assert_string_equal(g_ptr_array_index(r->reasons, 0),
                        "machine type pc-q35-rhel8.2.0 not supported on node-a");
    /* the captured guest CPU is an Intel model; TCG's host-model here is AMD EPYC: the reason
     * names the vendor rather than listing a whole model's features */
    const char *cpu_reason = g_ptr_array_index(r->reasons, 1);
    assert_true(g_str_has_prefix(cpu_reason, "guest CPU Skylake-Server-noTSX-IBRS "));
    assert_non_null(strstr(cpu_reason, " is not provided by node-a: "));
    assert_string_equal(r->target_emulator, "/usr/bin/qemu-system-x86_64");
    g_autofree char *dst = vmig_capability_destination_xml(qemu_xml, r->target_emulator, &err);
    assert_non_null(strstr(dst, "<emulator>/usr/bin/qemu-system-x86_64</emulator>"));
    assert_non_null(strstr(dst, "machine='pc-q35-rhel8.2.0'"));
}

/* The captured domain as an "hvf" guest (macOS' accelerator, which libvirt's QEMU driver knows
 * and no Linux host offers): the refusal names the virt type; it is not an I/O error. */
static void
test_captured_unsupported_virt_type_refused(void **state)
{
    (void)state;
    const char *root = g_getenv("VMIG_SOURCE_ROOT");
    g_autofree char *path = g_build_filename(root ? root : ".", "tests", "data", "capability",
                                             "b08-vm1-running.xml", NULL);
    g_autofree char *xml = NULL;
    assert_true(g_file_get_contents(path, &xml, NULL, NULL));
    g_autofree char *hvf_xml = replace(xml, "<domain type='kvm'>", "<domain type='hvf'>");
    VmigCapabilitySource other = {.node = (char *)"node-x"};
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigCapabilityResult) r =
        vmig_capability_check(conn, "node-a", hvf_xml, &other, NULL, &err);
    if (!r)
        fail_msg("error instead of a refusal: %s", err->message);
    g_autofree char *reasons = join(r->reasons);
    fprintf(stderr, "hvf guest: %s\n", reasons);
    assert_false(r->eligible);
    assert_non_null(strstr(reasons, "machine type pc-q35-rhel8.2.0 not supported on node-a"));
    assert_non_null(strstr(reasons, "virt type hvf for arch x86_64 and machine type "
                                    "pc-q35-rhel8.2.0 is not offered on node-a: "));
}

static void
test_memory_and_bad_input(void **state)
{
    (void)state;
    VmigCapabilitySource other = source;
    other.node = (char *)"node-x";
    other.host_uuid = NULL;
    VmigCapabilityOptions huge = {.memory_overhead_bytes = G_GUINT64_CONSTANT(1) << 50};
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigCapabilityResult) r =
        vmig_capability_check(conn, "node-a", migratable_xml, &other, &huge, &err);
    assert_non_null(r);
    assert_false(r->eligible);
    assert_int_equal(r->reasons->len, 1);
    assert_non_null(strstr(g_ptr_array_index(r->reasons, 0), "free memory on node-a is "));

    g_autoptr(VmigCapabilityResult) bad =
        vmig_capability_check(conn, "node-a", "<domain", &other, NULL, &err);
    assert_null(bad);
    assert_true(g_error_matches(err, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML));
    g_clear_error(&err);
    assert_null(vmig_capability_check(NULL, "node-a", migratable_xml, &other, NULL, &err));
    assert_true(g_error_matches(err, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_INVALID));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_running_xml_and_source_facts),
        cmocka_unit_test(test_compare_accepts_own_cpu),
        cmocka_unit_test(test_target_is_source),
        cmocka_unit_test(test_other_node_accepted),
        cmocka_unit_test(test_missing_feature_refused),
        cmocka_unit_test(test_captured_b08_domain_refused),
        cmocka_unit_test(test_captured_unsupported_virt_type_refused),
        cmocka_unit_test(test_memory_and_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
