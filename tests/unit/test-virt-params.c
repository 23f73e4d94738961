/* test-virt-params.c - the MigrateToURI3 parameter table (B21 for bandwidth) and
 * KubeVirt domain names. Pure: no libvirt daemon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <libvirt/libvirt.h>

#include "vmig/virt.h"

#define DCONN      "qemu+unix:///system?socket=/run/kubevirt/migrationproxy/u1-source.sock"
#define MURI       "unix:///run/kubevirt/migrationproxy/u1-49152-source.sock"
#define DURI       "unix:///run/kubevirt/migrationproxy/u1-49153-source.sock"
#define BASE_FLAGS (VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST)
#define UNLIM      "8796093022207"

static const char *const disks_vda[] = {"vda", NULL};
static const char *const disks_two[] = {"vda", "vdb", NULL};
static const char *const disks_empty[] = {NULL};
static const char *const disks_bad[] = {"../vda", NULL};
static const char *const disks_slash[] = {"a/b", NULL};

/* Renders the parameter list as "name=value;..." in table order. */
static char *
render(const VmigVirtMigrateCall *call)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < call->params->len; i++) {
        const VmigVirtParam *p = &g_array_index(call->params, VmigVirtParam, i);
        switch (p->type) {
        case VMIG_VIRT_PARAM_STRING:
            g_string_append_printf(s, "%s=%s;", p->name, p->s);
            break;
        case VMIG_VIRT_PARAM_INT:
            g_string_append_printf(s, "%s=i%d;", p->name, p->i);
            break;
        case VMIG_VIRT_PARAM_ULLONG:
            g_string_append_printf(s, "%s=u%" G_GUINT64_FORMAT ";", p->name, p->ul);
            break;
        }
    }
    return g_string_free(s, FALSE);
}

typedef struct {
    const char *name;
    VmigVirtMigrateSettings settings;
    guint64 flags;
    const char *params;
} BuildCase;

static const BuildCase build_cases[] = {
    {"minimal: KubeVirt's proxy call, unlimited bandwidth sent explicitly",
     {.dconnuri = DCONN, .migrate_uri = MURI},
     BASE_FLAGS,
     "migrate_uri=" MURI ";bandwidth=u" UNLIM ";"},
    {"auto-converge",
     {.dconnuri = DCONN, .migrate_uri = MURI, .auto_converge = TRUE},
     BASE_FLAGS | VIR_MIGRATE_AUTO_CONVERGE,
     "migrate_uri=" MURI ";bandwidth=u" UNLIM ";"},
    {"post-copy allowed (flag only; the switch is the monitor's)",
     {.dconnuri = DCONN, .migrate_uri = MURI, .allow_postcopy = TRUE},
     BASE_FLAGS | VIR_MIGRATE_POSTCOPY,
     "migrate_uri=" MURI ";bandwidth=u" UNLIM ";"},
    {"post-copy resume (B14 recovery): the original flags + POSTCOPY_RESUME",
     {.dconnuri = DCONN, .migrate_uri = MURI, .allow_postcopy = TRUE, .postcopy_resume = TRUE},
     BASE_FLAGS | VIR_MIGRATE_POSTCOPY | VIR_MIGRATE_POSTCOPY_RESUME,
     "migrate_uri=" MURI ";bandwidth=u" UNLIM ";"},
    {"block migration: NON_SHARED_INC + migrate_disks + disks_uri",
     {.dconnuri = DCONN, .migrate_uri = MURI, .migrate_disks = disks_vda, .disks_uri = DURI},
     BASE_FLAGS | VIR_MIGRATE_NON_SHARED_INC,
     "migrate_uri=" MURI ";migrate_disks=vda;disks_uri=" DURI ";bandwidth=u" UNLIM ";"},
    {"block migration of two disks: one migrate_disks entry each",
     {.dconnuri = DCONN, .migrate_uri = MURI, .migrate_disks = disks_two, .disks_uri = DURI},
     BASE_FLAGS | VIR_MIGRATE_NON_SHARED_INC,
     "migrate_uri=" MURI ";migrate_disks=vda;migrate_disks=vdb;disks_uri=" DURI ";bandwidth=u" UNLIM
     ";"},
    {"empty disk list: no block migration",
     {.dconnuri = DCONN, .migrate_uri = MURI, .migrate_disks = disks_empty},
     BASE_FLAGS,
     "migrate_uri=" MURI ";bandwidth=u" UNLIM ";"},
    {"parallel: default 8 connections",
     {.dconnuri = DCONN, .migrate_uri = MURI, .parallel = TRUE},
     BASE_FLAGS | VIR_MIGRATE_PARALLEL,
     "parallel.connections=i8;migrate_uri=" MURI ";bandwidth=u" UNLIM ";"},
    {"parallel: explicit 4 connections",
     {.dconnuri = DCONN, .migrate_uri = MURI, .parallel = TRUE, .parallel_connections = 4},
     BASE_FLAGS | VIR_MIGRATE_PARALLEL,
     "parallel.connections=i4;migrate_uri=" MURI ";bandwidth=u" UNLIM ";"},
    {"connections without parallel: nothing",
     {.dconnuri = DCONN, .migrate_uri = MURI, .parallel_connections = 4},
     BASE_FLAGS,
     "migrate_uri=" MURI ";bandwidth=u" UNLIM ";"},
    {"UNSAFE only when shared storage is declared",
     {.dconnuri = DCONN, .migrate_uri = MURI, .shared_storage_declared = TRUE},
     BASE_FLAGS | VIR_MIGRATE_UNSAFE,
     "migrate_uri=" MURI ";bandwidth=u" UNLIM ";"},
    {"bandwidth 64 MiB/s",
     {.dconnuri = DCONN, .migrate_uri = MURI, .bandwidth_mibps = 64},
     BASE_FLAGS,
     "migrate_uri=" MURI ";bandwidth=u64;"},
    {"bandwidth 1 MiB/s (smallest limit, never 0)",
     {.dconnuri = DCONN, .migrate_uri = MURI, .bandwidth_mibps = 1},
     BASE_FLAGS,
     "migrate_uri=" MURI ";bandwidth=u1;"},
    {"bandwidth at libvirt's maximum",
     {.dconnuri = DCONN, .migrate_uri = MURI, .bandwidth_mibps = VMIG_VIRT_BANDWIDTH_UNLIMITED},
     BASE_FLAGS,
     "migrate_uri=" MURI ";bandwidth=u" UNLIM ";"},
    {"post-copy bandwidth: sent only when set (the node's budget)",
     {.dconnuri = DCONN,
      .migrate_uri = MURI,
      .allow_postcopy = TRUE,
      .bandwidth_mibps = 8,
      .bandwidth_postcopy_mibps = 8},
     BASE_FLAGS | VIR_MIGRATE_POSTCOPY,
     "migrate_uri=" MURI ";bandwidth=u8;bandwidth.postcopy=u8;"},
    {"destination XML",
     {.dconnuri = DCONN, .migrate_uri = MURI, .destination_xml = "<domain/>"},
     BASE_FLAGS,
     "migrate_uri=" MURI ";bandwidth=u" UNLIM ";destination_xml=<domain/>;"},
    {"direct mode URIs (baseline)",
     {.dconnuri = "qemu+tcp://10.77.0.2/system", .migrate_uri = "tcp://10.77.0.2:49252"},
     BASE_FLAGS,
     "migrate_uri=tcp://10.77.0.2:49252;bandwidth=u" UNLIM ";"},
    {"everything",
     {.dconnuri = DCONN,
      .migrate_uri = MURI,
      .destination_xml = "<domain/>",
      .auto_converge = TRUE,
      .allow_postcopy = TRUE,
      .parallel = TRUE,
      .migrate_disks = disks_vda,
      .disks_uri = DURI,
      .shared_storage_declared = FALSE,
      .bandwidth_mibps = 2048},
     BASE_FLAGS | VIR_MIGRATE_AUTO_CONVERGE | VIR_MIGRATE_POSTCOPY | VIR_MIGRATE_PARALLEL |
         VIR_MIGRATE_NON_SHARED_INC,
     "parallel.connections=i8;migrate_uri=" MURI ";migrate_disks=vda;disks_uri=" DURI
     ";bandwidth=u2048;destination_xml=<domain/>;"},
};

static void
test_build_table(void **state)
{
    for (gsize i = 0; i < G_N_ELEMENTS(build_cases); i++) {
        const BuildCase *c = &build_cases[i];
        g_autoptr(GError) error = NULL;
        g_autoptr(VmigVirtMigrateCall) call =
            vmig_virt_migrate_call_build(&c->settings, "ns1/vm1", &error);
        if (!call)
            fail_msg("case \"%s\": %s", c->name, error->message);
        g_autofree char *got = render(call);
        if (call->flags != c->flags || g_strcmp0(got, c->params) != 0)
            fail_msg("case \"%s\": flags 0x%" G_GINT64_MODIFIER "x (want 0x%" G_GINT64_MODIFIER
                     "x), params %s (want %s)",
                     c->name, call->flags, c->flags, got, c->params);
        assert_string_equal(call->dconnuri, c->settings.dconnuri);
    }
}

typedef struct {
    const char *name;
    VmigVirtMigrateSettings settings;
    const char *message_part;
} BadCase;

static const BadCase bad_cases[] = {
    {"no dconnuri", {.migrate_uri = MURI}, "ns1/vm1: dconnuri is required"},
    {"dconnuri not libvirt",
     {.dconnuri = "http://x", .migrate_uri = MURI},
     "dconnuri \"http://x\""},
    {"scheme only", {.dconnuri = "qemu+unix://", .migrate_uri = MURI}, "dconnuri"},
    {"no migrate_uri", {.dconnuri = DCONN}, "migrate_uri is required"},
    {"resume of a migration that had no post-copy",
     {.dconnuri = DCONN, .migrate_uri = MURI, .postcopy_resume = TRUE},
     "ns1/vm1: postcopy_resume needs allow_postcopy"},
    {"migrate_uri not unix/tcp",
     {.dconnuri = DCONN, .migrate_uri = "/run/x.sock"},
     "migrate_uri \"/run/x.sock\""},
    {"disks_uri without disks",
     {.dconnuri = DCONN, .migrate_uri = MURI, .disks_uri = DURI},
     "disks_uri \"" DURI "\" given without migrate_disks"},
    {"disks_uri bad scheme",
     {.dconnuri = DCONN, .migrate_uri = MURI, .migrate_disks = disks_vda, .disks_uri = "nbd:x"},
     "disks_uri \"nbd:x\""},
    {"disk name with ..",
     {.dconnuri = DCONN, .migrate_uri = MURI, .migrate_disks = disks_bad},
     "migrate_disks[0] \"../vda\""},
    {"disk name with /",
     {.dconnuri = DCONN, .migrate_uri = MURI, .migrate_disks = disks_slash},
     "migrate_disks[0] \"a/b\""},
    {"bandwidth above maximum",
     {.dconnuri = DCONN, .migrate_uri = MURI, .bandwidth_mibps = VMIG_VIRT_BANDWIDTH_UNLIMITED + 1},
     "bandwidth_mibps 8796093022208"},
    {"post-copy bandwidth above maximum",
     {.dconnuri = DCONN,
      .migrate_uri = MURI,
      .bandwidth_postcopy_mibps = VMIG_VIRT_BANDWIDTH_UNLIMITED + 1},
     "bandwidth_postcopy_mibps 8796093022208"},
    {"too many connections",
     {.dconnuri = DCONN, .migrate_uri = MURI, .parallel = TRUE, .parallel_connections = 256},
     "parallel_connections 256"},
};

static void
test_build_refused(void **state)
{
    for (gsize i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        const BadCase *c = &bad_cases[i];
        g_autoptr(GError) error = NULL;
        g_autoptr(VmigVirtMigrateCall) call =
            vmig_virt_migrate_call_build(&c->settings, "ns1/vm1", &error);
        if (call)
            fail_msg("case \"%s\": accepted", c->name);
        assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID));
        if (!strstr(error->message, c->message_part))
            fail_msg("case \"%s\": message \"%s\" lacks \"%s\"", c->name, error->message,
                     c->message_part);
    }
}

static void
test_describe(void **state)
{
    VmigVirtMigrateSettings s = {.dconnuri = DCONN,
                                 .migrate_uri = MURI,
                                 .auto_converge = TRUE,
                                 .destination_xml = "<domain>12345</domain>"};
    g_autoptr(VmigVirtMigrateCall) call = vmig_virt_migrate_call_build(&s, NULL, NULL);
    assert_non_null(call);
    g_autofree char *d = vmig_virt_migrate_call_describe(call);
    assert_non_null(strstr(d, "flags=0x200b(LIVE|PEER2PEER|PERSIST_DEST|AUTO_CONVERGE)"));
    assert_non_null(strstr(d, "bandwidth=unlimited"));
    assert_non_null(strstr(d, "destination_xml=<22 bytes>"));
    assert_non_null(strstr(d, "dconnuri=" DCONN));
    assert_true(call->bandwidth_unlimited);

    const VmigVirtParam *p = vmig_virt_migrate_call_find(call, VIR_MIGRATE_PARAM_URI);
    assert_non_null(p);
    assert_string_equal(p->s, MURI);
    assert_null(vmig_virt_migrate_call_find(call, VIR_MIGRATE_PARAM_DISKS_URI));
}

static void
test_unlimited_is_libvirt_max(void **state)
{
    /* QEMU_DOMAIN_MIG_BANDWIDTH_MAX on 64-bit hosts */
    assert_int_equal(VMIG_VIRT_BANDWIDTH_UNLIMITED, G_MAXINT64 / (1024 * 1024));
    assert_int_equal(VMIG_VIRT_BANDWIDTH_UNLIMITED, 8796093022207ULL);
}

typedef struct {
    const char *ns, *name, *want;
} NameCase;

static void
test_domain_name(void **state)
{
    static const NameCase cases[] = {
        {"ns1", "vm1", "ns1_vm1"}, {"kube-system", "my.vm-2", "kube-system_my.vm-2"},
        {"ns1", "a/b", NULL},      {"a/b", "vm1", NULL},
        {"..", "vm1", NULL},       {"ns1", "x..y", NULL},
        {"", "vm1", NULL},         {"ns1", "", NULL},
        {NULL, "vm1", NULL},       {"ns1", NULL, NULL},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *got = vmig_virt_domain_name(cases[i].ns, cases[i].name, &error);
        if (cases[i].want) {
            assert_non_null(got);
            assert_string_equal(got, cases[i].want);
        } else {
            if (got)
                fail_msg("case %zu: accepted \"%s\"", i, got);
            assert_true(g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID));
            assert_non_null(strstr(error->message, "VMI "));
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_table), cmocka_unit_test(test_build_refused),
        cmocka_unit_test(test_describe),    cmocka_unit_test(test_unlimited_is_libvirt_max),
        cmocka_unit_test(test_domain_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
