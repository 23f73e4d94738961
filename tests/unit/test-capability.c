/* test-capability.c - the pure target capability checks over captured libvirt XML, including
 * field cases B07 (CPU model/features, host-model, host-passthrough) and B08 (machine type,
 * emulator). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "vmig/capability.h"

#define GIB (G_GUINT64_CONSTANT(1024) * 1024 * 1024)
#define MIB (G_GUINT64_CONSTANT(1024) * 1024)

static char *
load(const char *name)
{
    const char *root = g_getenv("VMIG_SOURCE_ROOT");
    g_autofree char *path =
        g_build_filename(root ? root : ".", "tests", "data", "capability", name, NULL);
    char *text = NULL;
    g_autoptr(GError) err = NULL;
    if (!g_file_get_contents(path, &text, NULL, &err))
        fail_msg("cannot read %s: %s", path, err->message);
    return text;
}

static VmigCapabilityDomain *
load_domain(const char *name)
{
    g_autofree char *xml = load(name);
    g_autoptr(GError) err = NULL;
    VmigCapabilityDomain *d = vmig_capability_domain_parse(xml, &err);
    if (!d)
        fail_msg("%s: %s", name, err->message);
    return d;
}

static VmigCapabilityHost *
load_caps(const char *name)
{
    g_autofree char *xml = load(name);
    g_autoptr(GError) err = NULL;
    VmigCapabilityHost *h = vmig_capability_host_parse(xml, &err);
    if (!h)
        fail_msg("%s: %s", name, err->message);
    return h;
}

static VmigCapabilityDomcaps *
load_domcaps(const char *name)
{
    g_autofree char *xml = load(name);
    g_autoptr(GError) err = NULL;
    VmigCapabilityDomcaps *d = vmig_capability_domcaps_parse(xml, &err);
    if (!d)
        fail_msg("%s: %s", name, err->message);
    return d;
}

static char *
join(const GPtrArray *a)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; a && i < a->len; i++)
        g_string_append_printf(s, "%s%s", i ? "|" : "", (const char *)g_ptr_array_index(a, i));
    return g_string_free(s, FALSE);
}

/* Evaluate @domain_file on a target described by captured files; versions 9.0.0 / 7.2.0 on
 * both sides and 64 GiB free unless the test changes them. */
typedef struct {
    const char *domain_file;
    const char *source_node;
    const char *source_caps; /* for host UUID and host CPU; NULL: none */
    const char *target_node;
    const char *target_caps;
    const char *target_domcaps;
    gboolean allow_passthrough;
} Scenario;

static VmigCapabilityResult *
run(const Scenario *s)
{
    g_autoptr(VmigCapabilityDomain) guest = load_domain(s->domain_file);
    g_autoptr(VmigCapabilityHost) src_caps = s->source_caps ? load_caps(s->source_caps) : NULL;
    g_autoptr(VmigCapabilityHost) caps = load_caps(s->target_caps);
    g_autoptr(VmigCapabilityDomcaps) domcaps =
        s->target_domcaps ? load_domcaps(s->target_domcaps) : NULL;
    VmigCapabilitySource src = {
        .node = (char *)s->source_node,
        .host_uuid = src_caps ? src_caps->host_uuid : NULL,
        .host_cpu = src_caps ? src_caps->host_cpu : NULL,
        .libvirt_version = 9000000,
        .qemu_version = 7002000,
    };
    VmigCapabilityTarget t = {
        .node = s->target_node,
        .caps = caps,
        .domcaps = domcaps,
        .libvirt_version = 9000000,
        .qemu_version = 7002000,
        .free_memory_bytes = 64 * GIB,
    };
    VmigCapabilityOptions o = {.allow_host_passthrough = s->allow_passthrough,
                               .memory_overhead_bytes = VMIG_CAPABILITY_DEFAULT_MEMORY_OVERHEAD};
    return vmig_capability_evaluate(guest, &src, &t, &o);
}

/* ---- enum table ----------------------------------------------------------------------- */

static void
test_cpu_mode_table(void **state)
{
    (void)state;
    for (int m = VMIG_CAPABILITY_CPU_MODE_NONE; m <= VMIG_CAPABILITY_CPU_MODE_MAXIMUM; m++) {
        VmigCapabilityCpuMode back;
        assert_true(
            vmig_capability_cpu_mode_from_string(vmig_capability_cpu_mode_to_string(m), &back));
        assert_int_equal(back, m);
    }
    VmigCapabilityCpuMode x = VMIG_CAPABILITY_CPU_MODE_CUSTOM;
    assert_false(vmig_capability_cpu_mode_from_string("host_model", &x));
    assert_false(vmig_capability_cpu_mode_from_string(NULL, &x));
    assert_int_equal(x, VMIG_CAPABILITY_CPU_MODE_CUSTOM);
    assert_string_equal(vmig_capability_cpu_mode_to_string(99), "unknown");
}

/* ---- parsing -------------------------------------------------------------------------- */

static void
test_parse_tcg_captured(void **state)
{
    (void)state;
    g_autoptr(VmigCapabilityDomain) d = load_domain("tcg-domain-hostmodel-migratable.xml");
    assert_string_equal(d->name, "capvm");
    assert_string_equal(d->virt_type, "qemu");
    assert_string_equal(d->arch, "x86_64");
    assert_string_equal(d->machine, "pc-i440fx-7.2");
    assert_string_equal(d->emulator, "/usr/bin/qemu-system-x86_64");
    assert_int_equal(d->memory_bytes, 64 * MIB);
    assert_non_null(d->cpu);
    /* a running host-model guest shows its resolved CPU as mode custom */
    assert_int_equal(d->cpu->mode, VMIG_CAPABILITY_CPU_MODE_CUSTOM);
    assert_string_equal(d->cpu->model, "EPYC");
    assert_string_equal(d->cpu->vendor, "AMD");
    assert_int_equal(d->cpu->required->len, 18);
    assert_int_equal(d->cpu->disabled->len, 10);
    assert_string_equal(g_ptr_array_index(d->cpu->required, 0), "3dnow"); /* sorted */
    assert_non_null(strstr(d->cpu->xml, "<cpu mode=\"custom\""));
    g_autoptr(VmigCapabilityCpu) again = NULL;
    g_autoptr(GError) err = NULL;
    again = vmig_capability_cpu_parse(d->cpu->xml, &err);
    assert_non_null(again);
    assert_int_equal(again->required->len, 18);

    g_autoptr(VmigCapabilityHost) caps = load_caps("tcg-caps.xml");
    assert_string_equal(caps->host_uuid, "11111111-aaaa-4aaa-8aaa-00000000000a");
    assert_string_equal(vmig_capability_host_emulator(caps, "x86_64"),
                        "/usr/bin/qemu-system-x86_64");
    assert_string_equal(vmig_capability_host_emulator(caps, "i686"), "/usr/bin/qemu-system-i386");
    assert_null(vmig_capability_host_emulator(caps, "aarch64"));
    const VmigCapabilityMachine *m =
        vmig_capability_host_find_machine(caps, "x86_64", "qemu", "pc-i440fx-7.2");
    assert_non_null(m);
    assert_null(m->canonical);
    m = vmig_capability_host_find_machine(caps, "x86_64", "qemu", "pc");
    assert_non_null(m);
    assert_string_equal(m->canonical, "pc-i440fx-7.2");
    assert_null(vmig_capability_host_find_machine(caps, "x86_64", "qemu", "pc-q35-rhel8.2.0"));
    assert_null(vmig_capability_host_find_machine(caps, "aarch64", "qemu", "pc-i440fx-7.2"));

    g_autoptr(VmigCapabilityDomcaps) dc = load_domcaps("tcg-domcaps.xml");
    assert_string_equal(dc->path, "/usr/bin/qemu-system-x86_64");
    assert_string_equal(dc->virt_type, "qemu");
    assert_string_equal(dc->machine, "pc-i440fx-7.2");
    assert_false(dc->host_passthrough_supported); /* TCG */
    assert_non_null(dc->host_model);
    assert_string_equal(dc->host_model->model, "EPYC");
    assert_non_null(strstr(dc->host_model->xml, "<cpu mode='custom' match='exact'><model"));

    /* the running guest against its own host's host-model: nothing missing */
    g_autoptr(GPtrArray) missing = vmig_capability_cpu_missing_features(d->cpu, dc->host_model);
    assert_int_equal(missing->len, 0);
}

static void
test_parse_machines_per_domain_type(void **state)
{
    (void)state;
    static const char caps[] =
        "<capabilities><host><uuid>0f0e0d0c-0b0a-4909-8807-060504030201</uuid></host>"
        "<guest><os_type>hvm</os_type><arch name='x86_64'><emulator>/e</emulator>"
        "<machine>pc-q35-7.2</machine><domain type='qemu'/>"
        "<domain type='kvm'><machine>pc-q35-kvm-only</machine></domain></arch></guest>"
        "<guest><os_type>xen</os_type><arch name='x86_64'><machine>xenpv</machine></arch></guest>"
        "</capabilities>";
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigCapabilityHost) h = vmig_capability_host_parse(caps, &err);
    assert_non_null(h);
    assert_null(h->host_cpu);
    assert_non_null(vmig_capability_host_find_machine(h, "x86_64", "kvm", "pc-q35-kvm-only"));
    assert_null(vmig_capability_host_find_machine(h, "x86_64", "qemu", "pc-q35-kvm-only"));
    assert_non_null(vmig_capability_host_find_machine(h, "x86_64", "qemu", "pc-q35-7.2"));
    assert_null(vmig_capability_host_find_machine(h, "x86_64", "qemu", "xenpv")); /* not hvm */
}

static const struct {
    const char *unit;
    const char *value;
    guint64 bytes;
} memory_cases[] = {
    {NULL, "131072", 128 * MIB},
    {"KiB", "131072", 128 * MIB},
    {"k", "1", 1024},
    {"b", "4096", 4096},
    {"bytes", "1", 1},
    {"KB", "1", 1000},
    {"MiB", "128", 128 * MIB},
    {"M", "2", 2 * MIB},
    {"MB", "1", 1000000},
    {"GiB", "2", 2 * GIB},
    {"G", "1", GIB},
    {"GB", "1", 1000000000},
    {"TiB", "1", 1024 * GIB},
};

static void
test_parse_memory_units(void **state)
{
    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(memory_cases); i++) {
        g_autofree char *unit = memory_cases[i].unit
                                    ? g_strdup_printf(" unit='%s'", memory_cases[i].unit)
                                    : g_strdup("");
        g_autofree char *xml =
            g_strdup_printf("<domain type='kvm'><name>vm</name><memory%s>%s</memory><os>"
                            "<type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os></domain>",
                            unit, memory_cases[i].value);
        g_autoptr(GError) err = NULL;
        g_autoptr(VmigCapabilityDomain) d = vmig_capability_domain_parse(xml, &err);
        if (!d)
            fail_msg("case %zu: %s", i, err->message);
        assert_int_equal(d->memory_bytes, memory_cases[i].bytes);
        assert_null(d->cpu);
        assert_null(d->emulator);
    }
}

/* Malformed input: an error naming the domain and the element, never a crash. */
static const struct {
    const char *xml;
    const char *message_part;
} bad_domains[] = {
    {"", "empty XML"},
    {"not xml", "malformed XML"},
    {"<domain type='kvm'><name>vm</name>", "malformed XML"},
    {"<cpu/>", "expected <domain>"},
    {"<domain><name>vm</name><memory>1</memory><os><type arch='x86_64' "
     "machine='pc'>hvm</type></os></domain>",
     "vm: <domain type> is missing"},
    {"<domain type='kvm'><name>vm</name><memory>1</memory><os><type "
     "arch='x86_64'>hvm</type></os></domain>",
     "vm: <os><type machine> is missing"},
    {"<domain type='kvm'><name>vm</name><memory>1</memory><os><type "
     "machine='pc'>hvm</type></os></domain>",
     "vm: <os><type arch> is missing"},
    {"<domain type='kvm'><memory>1</memory><os><type arch='x86_64' "
     "machine='pc'>hvm</type></os></domain>",
     "<name> is missing"},
    {"<domain type='kvm'><name>vm</name><os><type arch='x86_64' "
     "machine='pc'>hvm</type></os></domain>",
     "vm: <memory> is missing"},
    {"<domain type='kvm'><name>vm</name><memory>-1</memory><os><type arch='x86_64' "
     "machine='pc'>hvm</type></os></domain>",
     "vm: <memory> '-1' is not a positive size in KiB"},
    {"<domain type='kvm'><name>vm</name><memory>0</memory><os><type arch='x86_64' "
     "machine='pc'>hvm</type></os></domain>",
     "'0' is not a positive size"},
    {"<domain type='kvm'><name>vm</name><memory>99999999999999999999</memory><os><type "
     "arch='x86_64' machine='pc'>hvm</type></os></domain>",
     "is not a positive size"},
    {"<domain type='kvm'><name>vm</name><memory unit='EiB'>99999</memory><os><type "
     "arch='x86_64' machine='pc'>hvm</type></os></domain>",
     "vm: <memory unit='EiB'> is not a unit"},
    {"<domain type='kvm'><name>vm</name><memory unit='GiB'>99999999999</memory><os><type "
     "arch='x86_64' machine='pc'>hvm</type></os></domain>",
     "is not a positive size in GiB"},
    {"<domain type='kvm'><name>vm</name><memory>1</memory><os><type arch='x86_64' "
     "machine='pc'>hvm</type></os><cpu mode='host-mdl'/></domain>",
     "vm: <cpu mode='host-mdl'> is not a CPU mode"},
    {"<domain type='kvm'><name>vm</name><memory>1</memory><os><type arch='x86_64' "
     "machine='pc'>hvm</type></os><cpu><model>EPYC</model><feature policy='maybe' "
     "name='x'/></cpu></domain>",
     "vm: <cpu><feature name='x'> has unknown policy 'maybe'"},
    {"<domain type='kvm'><name>vm</name><memory>1</memory><os><type arch='x86_64' "
     "machine='pc'>hvm</type></os><cpu><model>EPYC</model><feature policy='require'/></cpu>"
     "</domain>",
     "vm: <cpu><feature> without a name"},
};

static void
test_parse_bad_domains(void **state)
{
    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(bad_domains); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(VmigCapabilityDomain) d = vmig_capability_domain_parse(bad_domains[i].xml, &err);
        assert_null(d);
        assert_non_null(err);
        assert_true(g_error_matches(err, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML));
        if (!strstr(err->message, bad_domains[i].message_part))
            fail_msg("case %zu: '%s' lacks '%s'", i, err->message, bad_domains[i].message_part);
    }
    g_autoptr(GError) err = NULL;
    assert_null(vmig_capability_domain_parse(NULL, &err));
    assert_true(g_error_matches(err, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML));
}

/* B07: the inactive definition of a host-model guest says nothing about the CPU it got. */
static void
test_parse_unresolved_host_model_refused(void **state)
{
    (void)state;
    g_autofree char *xml = load("b07-vm1-hostmodel-inactive.xml");
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigCapabilityDomain) d = vmig_capability_domain_parse(xml, &err);
    assert_null(d);
    assert_string_equal(err->message,
                        "ns1_vm1: <cpu mode='host-model'> has no resolved <model>; pass the "
                        "running domain's migratable XML");
}

static void
test_parse_bad_capabilities(void **state)
{
    (void)state;
    static const struct {
        gboolean domcaps;
        const char *xml;
        const char *part;
    } cases[] = {
        {FALSE, "<capabilities><host/></capabilities>", "<host><uuid> is missing"},
        {FALSE, "<domainCapabilities/>", "expected <capabilities>"},
        {FALSE,
         "<capabilities><host><uuid>u</uuid></host><guest><os_type>hvm</os_type><arch>"
         "</arch></guest></capabilities>",
         "<guest><arch> without a name"},
        {FALSE, "<capabilities", "malformed XML"},
        {TRUE, "<domainCapabilities><domain>kvm</domain></domainCapabilities>",
         "<path> is missing"},
        {TRUE, "<capabilities/>", "expected <domainCapabilities>"},
        {TRUE, "", "empty XML"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        if (cases[i].domcaps) {
            g_autoptr(VmigCapabilityDomcaps) d = vmig_capability_domcaps_parse(cases[i].xml, &err);
            assert_null(d);
        } else {
            g_autoptr(VmigCapabilityHost) h = vmig_capability_host_parse(cases[i].xml, &err);
            assert_null(h);
        }
        assert_true(g_error_matches(err, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML));
        if (!strstr(err->message, cases[i].part))
            fail_msg("case %zu: '%s' lacks '%s'", i, err->message, cases[i].part);
    }
    g_autoptr(GError) err = NULL;
    assert_null(vmig_capability_cpu_parse("<domain/>", &err));
    assert_non_null(strstr(err->message, "expected <cpu>"));
}

/* ---- missing features ------------------------------------------------------------------ */

static VmigCapabilityCpu *
cpu(const char *xml)
{
    g_autoptr(GError) err = NULL;
    VmigCapabilityCpu *c = vmig_capability_cpu_parse(xml, &err);
    if (!c)
        fail_msg("%s", err->message);
    return c;
}

static void
test_missing_features_table(void **state)
{
    (void)state;
    static const struct {
        const char *guest, *target, *missing;
    } cases[] = {
        /* explicit features, sorted and unique */
        {"<cpu><model>M</model><feature policy='require' name='z'/><feature policy='force' "
         "name='a'/><feature policy='require' name='z'/></cpu>",
         "<cpu><model>M</model></cpu>", "a|z"},
        /* optional features are not needed; host CPU features (no policy) are present */
        {"<cpu><model>M</model><feature policy='optional' name='o'/></cpu>",
         "<cpu><model>M</model></cpu>", ""},
        {"<cpu><model>M</model><feature policy='require' name='x'/></cpu>",
         "<cpu><arch>x86_64</arch><model>M</model><feature name='x'/></cpu>", ""},
        /* same model: a model feature the target disables is missing unless the guest
         * disables it too */
        {"<cpu><model>M</model></cpu>",
         "<cpu><model>M</model><feature policy='disable' name='hle'/></cpu>", "hle"},
        {"<cpu><model>M</model><feature policy='disable' name='hle'/></cpu>",
         "<cpu><model>M</model><feature policy='disable' name='hle'/></cpu>", ""},
        {"<cpu><model>M</model><feature policy='forbid' name='hle'/></cpu>",
         "<cpu><model>M</model><feature policy='disable' name='hle'/></cpu>", ""},
        /* different models: the disable rule does not apply (expanded lists decide) */
        {"<cpu><model>M</model></cpu>",
         "<cpu><model>N</model><feature policy='disable' name='hle'/></cpu>", ""},
        /* a feature both required by the guest and disabled by the target is listed once */
        {"<cpu><model>M</model><feature policy='require' name='hle'/></cpu>",
         "<cpu><model>M</model><feature policy='disable' name='hle'/></cpu>", "hle"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(VmigCapabilityCpu) g = cpu(cases[i].guest);
        g_autoptr(VmigCapabilityCpu) t = cpu(cases[i].target);
        g_autoptr(GPtrArray) m = vmig_capability_cpu_missing_features(g, t);
        g_autofree char *got = join(m);
        if (strcmp(got, cases[i].missing) != 0)
            fail_msg("case %zu: missing '%s', expected '%s'", i, got, cases[i].missing);
    }
    g_autoptr(GPtrArray) none = vmig_capability_cpu_missing_features(NULL, NULL);
    assert_int_equal(none->len, 0);
}

/* ---- field case B07 ------------------------------------------------------------------- */

/* Case 1 (host-model): node-b lacks vmx-vmfunc and fsrm -> refused, features sorted; node-c
 * (strict superset) and node-d (identical) accepted. */
static void
test_b07_host_model(void **state)
{
    (void)state;
    static const struct {
        const char *node, *caps, *domcaps;
        gboolean eligible;
        const char *missing;
        const char *reason;
    } cases[] = {
        {"node-b", "b07-node-b-caps.xml", "b07-node-b-domcaps.xml", FALSE, "fsrm|vmx-vmfunc",
         "guest CPU Cascadelake-Server-noTSX is not provided by node-b: missing features fsrm, "
         "vmx-vmfunc"},
        {"node-c", "b07-node-c-caps.xml", "b07-node-c-domcaps.xml", TRUE, "", NULL},
        {"node-d", "b07-node-d-caps.xml", "b07-node-d-domcaps.xml", TRUE, "", NULL},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        Scenario s = {.domain_file = "b07-vm1-hostmodel-running.xml",
                      .source_node = "node-a",
                      .source_caps = "b07-node-a-caps.xml",
                      .target_node = cases[i].node,
                      .target_caps = cases[i].caps,
                      .target_domcaps = cases[i].domcaps};
        g_autoptr(VmigCapabilityResult) r = run(&s);
        g_autofree char *reasons = join(r->reasons);
        g_autofree char *missing = join(r->missing_cpu_features);
        if (r->eligible != cases[i].eligible)
            fail_msg("%s: eligible %d, reasons '%s'", cases[i].node, r->eligible, reasons);
        assert_string_equal(missing, cases[i].missing);
        if (cases[i].reason)
            assert_string_equal(reasons, cases[i].reason);
        else
            assert_string_equal(reasons, "");
        assert_string_equal(r->node, cases[i].node);
    }
}

/* Case 1, later: vm1 now runs on node-c with the CPU definition it started with on node-a;
 * node-c -> node-a is accepted because the requirement is the running definition, while
 * recomputing it from node-c's host-model (the bug) would wrongly refuse. */
static void
test_b07_back_to_older_node(void **state)
{
    (void)state;
    Scenario s = {.domain_file = "b07-vm1-hostmodel-running.xml",
                  .source_node = "node-c",
                  .source_caps = "b07-node-c-caps.xml",
                  .target_node = "node-a",
                  .target_caps = "b07-node-a-caps.xml",
                  .target_domcaps = "b07-node-a-domcaps.xml"};
    g_autoptr(VmigCapabilityResult) r = run(&s);
    g_autofree char *reasons = join(r->reasons);
    if (!r->eligible)
        fail_msg("node-c -> node-a refused: %s", reasons);

    g_autoptr(VmigCapabilityDomcaps) c = load_domcaps("b07-node-c-domcaps.xml");
    g_autoptr(VmigCapabilityDomcaps) a = load_domcaps("b07-node-a-domcaps.xml");
    g_autoptr(GPtrArray) wrong = vmig_capability_cpu_missing_features(c->host_model, a->host_model);
    g_autofree char *w = join(wrong);
    assert_string_equal(w, "avx512ifma|gfni|movdiri");
}

/* libvirt's own answer wins over the derived list; with no derivable feature its message is
 * the reason. */
static void
test_b07_libvirt_compare_authoritative(void **state)
{
    (void)state;
    g_autoptr(VmigCapabilityDomain) guest = load_domain("b07-vm1-hostmodel-running.xml");
    g_autoptr(VmigCapabilityHost) caps = load_caps("b07-node-b-caps.xml");
    g_autoptr(VmigCapabilityDomcaps) dc = load_domcaps("b07-node-b-domcaps.xml");
    g_autoptr(VmigCapabilityDomcaps) dd = load_domcaps("b07-node-d-domcaps.xml");
    VmigCapabilitySource src = {.node = (char *)"node-a"};
    VmigCapabilityTarget t = {.node = "node-b",
                              .caps = caps,
                              .domcaps = dc,
                              .free_memory_bytes = 64 * GIB,
                              .cpu_compare = VMIG_CAPABILITY_CPU_COMPARE_SUPERSET};
    g_autoptr(VmigCapabilityResult) ok = vmig_capability_evaluate(guest, &src, &t, NULL);
    assert_true(ok->eligible);
    assert_int_equal(ok->missing_cpu_features->len, 0);

    t.cpu_compare = VMIG_CAPABILITY_CPU_COMPARE_INCOMPATIBLE;
    t.cpu_compare_message = "the CPU is incompatible with host CPU: Host CPU does not provide "
                            "required features: fsrm, vmx-vmfunc";
    g_autoptr(VmigCapabilityResult) no = vmig_capability_evaluate(guest, &src, &t, NULL);
    assert_false(no->eligible);
    g_autofree char *m = join(no->missing_cpu_features);
    assert_string_equal(m, "fsrm|vmx-vmfunc");

    t.domcaps = dd; /* nothing derivable: libvirt's words */
    g_autoptr(VmigCapabilityResult) msg = vmig_capability_evaluate(guest, &src, &t, NULL);
    assert_false(msg->eligible);
    assert_string_equal(g_ptr_array_index(msg->reasons, 0),
                        "guest CPU Cascadelake-Server-noTSX is not provided by node-b: the CPU is "
                        "incompatible with host CPU: Host CPU does not provide required features: "
                        "fsrm, vmx-vmfunc");

    /* expanded definitions, when given, are what is compared */
    g_autoptr(VmigCapabilityCpu) ge =
        cpu("<cpu><model>M</model><feature policy='require' name='sse4.2'/>"
            "<feature policy='require' name='avx2'/></cpu>");
    g_autoptr(VmigCapabilityCpu) te =
        cpu("<cpu><model>M</model><feature policy='require' name='sse4.2'/></cpu>");
    t.guest_cpu_expanded = ge;
    t.target_cpu_expanded = te;
    t.cpu_compare = VMIG_CAPABILITY_CPU_COMPARE_NOT_RUN;
    g_autoptr(VmigCapabilityResult) ex = vmig_capability_evaluate(guest, &src, &t, NULL);
    g_autofree char *exm = join(ex->missing_cpu_features);
    assert_string_equal(exm, "avx2");

    /* vendor mismatch with nothing else to go on */
    g_autoptr(VmigCapabilityCpu) amd = cpu("<cpu><model>Cascadelake-Server-noTSX</model>"
                                           "<vendor>AMD</vendor></cpu>");
    t.guest_cpu_expanded = NULL;
    t.target_cpu_expanded = amd;
    g_autoptr(VmigCapabilityResult) v = vmig_capability_evaluate(guest, &src, &t, NULL);
    assert_false(v->eligible);
    assert_non_null(strstr(g_ptr_array_index(v->reasons, 0), "vendor Intel is not provided by "
                                                             "node-b: its host CPU vendor is AMD"));

    /* the same when libvirt said incompatible: the vendor, not the other vendor's features */
    t.cpu_compare = VMIG_CAPABILITY_CPU_COMPARE_INCOMPATIBLE;
    g_autoptr(VmigCapabilityResult) vi = vmig_capability_evaluate(guest, &src, &t, NULL);
    assert_string_equal(g_ptr_array_index(vi->reasons, 0),
                        "guest CPU Cascadelake-Server-noTSX of vendor Intel is not provided by "
                        "node-b: its host CPU vendor is AMD");
    assert_int_equal(vi->missing_cpu_features->len, 0);
    t.cpu_compare = VMIG_CAPABILITY_CPU_COMPARE_NOT_RUN;

    /* no host-model on the target and no libvirt answer: cannot be checked, refused */
    t.target_cpu_expanded = NULL;
    t.domcaps = NULL;
    g_autoptr(VmigCapabilityResult) u = vmig_capability_evaluate(guest, &src, &t, NULL);
    assert_false(u->eligible);
    assert_non_null(strstr(g_ptr_array_index(u->reasons, 0), "cannot be checked on node-b"));
}

/* Case 2 (host-passthrough): refused for node-b and node-c; node-d (identical CPU) accepted
 * only when host-passthrough migration is enabled. */
static void
test_b07_host_passthrough(void **state)
{
    (void)state;
    static const struct {
        const char *node;
        gboolean allow;
        gboolean eligible;
        const char *reason;
    } cases[] = {
        {"node-b", FALSE, FALSE,
         "guest CPU mode host-passthrough cannot migrate to node-b: host-passthrough migration "
         "is not enabled (it is safe only between identical host CPUs)"},
        {"node-c", FALSE, FALSE,
         "guest CPU mode host-passthrough cannot migrate to node-c: host-passthrough migration "
         "is not enabled (it is safe only between identical host CPUs)"},
        {"node-d", FALSE, FALSE,
         "guest CPU mode host-passthrough cannot migrate to node-d: host-passthrough migration "
         "is not enabled (it is safe only between identical host CPUs)"},
        {"node-b", TRUE, FALSE,
         "guest CPU mode host-passthrough needs identical host CPUs, but the host CPU of node-b "
         "differs from node-a's: missing features fsrm, vmx-vmfunc"},
        {"node-c", TRUE, FALSE,
         "guest CPU mode host-passthrough needs identical host CPUs, but the host CPU of node-c "
         "differs from node-a's: extra features avx512ifma, gfni, movdiri"},
        {"node-d", TRUE, TRUE, ""},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *caps = g_strdup_printf("b07-%s-caps.xml", cases[i].node);
        g_autofree char *domcaps = g_strdup_printf("b07-%s-domcaps.xml", cases[i].node);
        Scenario s = {.domain_file = "b07-vm1-passthrough-running.xml",
                      .source_node = "node-a",
                      .source_caps = "b07-node-a-caps.xml",
                      .target_node = cases[i].node,
                      .target_caps = caps,
                      .target_domcaps = domcaps,
                      .allow_passthrough = cases[i].allow};
        g_autoptr(VmigCapabilityResult) r = run(&s);
        g_autofree char *reasons = join(r->reasons);
        if (r->eligible != cases[i].eligible || strcmp(reasons, cases[i].reason) != 0)
            fail_msg("%s allow=%d: eligible %d, reasons '%s'", cases[i].node, cases[i].allow,
                     r->eligible, reasons);
    }
}

static void
test_passthrough_needs_facts(void **state)
{
    (void)state;
    /* no source host CPU known: cannot prove identity */
    Scenario s = {.domain_file = "b07-vm1-passthrough-running.xml",
                  .source_node = "node-a",
                  .target_node = "node-d",
                  .target_caps = "b07-node-d-caps.xml",
                  .target_domcaps = "b07-node-d-domcaps.xml",
                  .allow_passthrough = TRUE};
    g_autoptr(VmigCapabilityResult) r = run(&s);
    assert_false(r->eligible);
    assert_string_equal(g_ptr_array_index(r->reasons, 0),
                        "guest CPU mode host-passthrough needs identical host CPUs, but the host "
                        "CPU of node-a is unknown");
    /* the hypervisor cannot do host-passthrough at all (TCG) */
    Scenario t = {.domain_file = "b07-vm1-passthrough-running.xml",
                  .source_node = "node-a",
                  .source_caps = "b07-node-a-caps.xml",
                  .target_node = "node-t",
                  .target_caps = "b07-node-d-caps.xml",
                  .target_domcaps = "tcg-domcaps.xml",
                  .allow_passthrough = TRUE};
    g_autoptr(VmigCapabilityResult) r2 = run(&t);
    assert_false(r2->eligible);
    assert_string_equal(g_ptr_array_index(r2->reasons, 0),
                        "guest CPU mode host-passthrough is not supported by the hypervisor on "
                        "node-t (/usr/bin/qemu-system-x86_64, virt type qemu)");
}

/* ---- field case B08 ------------------------------------------------------------------- */

static void
test_b08_machine_type_selection(void **state)
{
    (void)state;
    Scenario sb = {.domain_file = "b08-vm1-running.xml",
                   .source_node = "node-a",
                   .target_node = "node-b",
                   .target_caps = "b08-node-b-caps.xml",
                   .target_domcaps = "b08-node-b-domcaps.xml"};
    Scenario sc = sb;
    sc.target_node = "node-c";
    sc.target_caps = "b08-node-c-caps.xml";
    sc.target_domcaps = "b08-node-c-domcaps.xml";
    g_autoptr(VmigCapabilityResult) rb = run(&sb);
    g_autoptr(VmigCapabilityResult) rc = run(&sc);
    assert_false(rb->eligible);
    assert_int_equal(rb->reasons->len, 1);
    assert_string_equal(g_ptr_array_index(rb->reasons, 0),
                        "machine type pc-q35-rhel8.2.0 not supported on node-b");
    g_autofree char *rc_reasons = join(rc->reasons);
    assert_string_equal(rc_reasons, "");
    assert_true(rc->eligible);
    assert_string_equal(rc->machine, "pc-q35-rhel8.2.0");
    assert_string_equal(rc->target_emulator, "/usr/libexec/qemu-kvm");
    assert_string_equal(rb->target_emulator, "/usr/bin/qemu-system-x86_64");

    VmigCapabilityResult *both[] = {rb, rc};
    g_autofree char *refusal = NULL;
    const VmigCapabilityResult *chosen = vmig_capability_select(both, 2, &refusal);
    assert_ptr_equal(chosen, rc);
    assert_null(refusal);

    /* no node qualifies: fail at once with every reason */
    VmigCapabilityResult *only_b[] = {rb};
    assert_null(vmig_capability_select(only_b, 1, &refusal));
    assert_string_equal(refusal, "no target node can take the guest: machine type "
                                 "pc-q35-rhel8.2.0 not supported on node-b");
    g_clear_pointer(&refusal, g_free);
    assert_null(vmig_capability_select(NULL, 0, &refusal));
    assert_string_equal(refusal, "no target node can take the guest: no candidate node");
}

/* The destination XML: only the <emulator> text changes; the machine type never does. */
static void
test_b08_destination_xml(void **state)
{
    (void)state;
    g_autofree char *src = load("b08-vm1-running.xml");
    g_autoptr(GError) err = NULL;
    g_autofree char *dst =
        vmig_capability_destination_xml(src, "/usr/bin/qemu-system-x86_64", &err);
    assert_non_null(dst);
    g_autofree char *expected = NULL;
    {
        const char *old = "<emulator>/usr/libexec/qemu-kvm</emulator>";
        const char *at = strstr(src, old);
        assert_non_null(at);
        expected = g_strdup_printf("%.*s<emulator>/usr/bin/qemu-system-x86_64</emulator>%s",
                                   (int)(at - src), src, at + strlen(old));
    }
    assert_string_equal(dst, expected);
    assert_non_null(strstr(dst, "machine='pc-q35-rhel8.2.0'"));

    /* same emulator: byte-identical; special characters are escaped */
    g_autofree char *same = vmig_capability_destination_xml(src, "/usr/libexec/qemu-kvm", &err);
    assert_string_equal(same, src);
    g_autofree char *amp = vmig_capability_destination_xml(src, "/opt/q&a/qemu", &err);
    assert_non_null(strstr(amp, "<emulator>/opt/q&amp;a/qemu</emulator>"));
    g_autoptr(VmigCapabilityDomain) back = vmig_capability_domain_parse(amp, &err);
    assert_string_equal(back->emulator, "/opt/q&a/qemu");
}

static void
test_destination_xml_errors(void **state)
{
    (void)state;
    static const struct {
        const char *xml, *emulator, *part;
        int code;
    } cases[] = {
        {"<domain type='kvm'><name>vm</name><memory>1</memory><os><type arch='x86_64' "
         "machine='pc'>hvm</type></os></domain>",
         "/usr/bin/qemu", "vm: domain XML must have exactly one <emulator> element",
         VMIG_CAPABILITY_ERROR_XML},
        {"<domain type='kvm'><name>vm</name><memory>1</memory><os><type arch='x86_64' "
         "machine='pc'>hvm</type></os><devices><emulator>/a</emulator><emulator>/b</emulator>"
         "</devices></domain>",
         "/usr/bin/qemu", "exactly one <emulator>", VMIG_CAPABILITY_ERROR_XML},
        /* the first "<emulator>" text is not the element: refused, never a wrong edit */
        {"<domain type='kvm'><name>vm</name><!-- <emulator>x</emulator> --><memory>1</memory>"
         "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>",
         "/usr/bin/qemu", "is not the <devices><emulator> element", VMIG_CAPABILITY_ERROR_XML},
        {"<domain type='kvm'/>", "/usr/bin/qemu", "<name> is missing", VMIG_CAPABILITY_ERROR_XML},
        {"<domain/>", "qemu-kvm", "is not an absolute path", VMIG_CAPABILITY_ERROR_INVALID},
        {"<domain/>", NULL, "is not an absolute path", VMIG_CAPABILITY_ERROR_INVALID},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        g_autofree char *out =
            vmig_capability_destination_xml(cases[i].xml, cases[i].emulator, &err);
        assert_null(out);
        assert_true(g_error_matches(err, VMIG_CAPABILITY_ERROR, cases[i].code));
        if (!strstr(err->message, cases[i].part))
            fail_msg("case %zu: '%s' lacks '%s'", i, err->message, cases[i].part);
    }
}

/* An alias names a different machine on each QEMU release: never accepted as the running
 * machine type; an unknown arch is not offered either. */
static void
test_machine_alias_and_arch(void **state)
{
    (void)state;
    g_autofree char *xml = load("b08-vm1-running.xml");
    g_autoptr(GString) s = g_string_new(xml);
    g_string_replace(s, "machine='pc-q35-rhel8.2.0'", "machine='q35'", 1);
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigCapabilityDomain) guest = vmig_capability_domain_parse(s->str, &err);
    g_autoptr(VmigCapabilityHost) caps = load_caps("b08-node-c-caps.xml");
    VmigCapabilitySource src = {.node = (char *)"node-a"};
    VmigCapabilityTarget t = {.node = "node-c", .caps = caps, .free_memory_bytes = 64 * GIB};
    g_autoptr(VmigCapabilityResult) r = vmig_capability_evaluate(guest, &src, &t, NULL);
    assert_false(r->eligible);
    assert_string_equal(g_ptr_array_index(r->reasons, 0),
                        "machine type q35 is an alias for pc-q35-rhel8.4.0 on node-c; the "
                        "running guest needs its exact versioned machine type");

    g_string_replace(s, "arch='x86_64'", "arch='aarch64'", 1);
    g_autoptr(VmigCapabilityDomain) arm = vmig_capability_domain_parse(s->str, &err);
    g_autoptr(VmigCapabilityResult) r2 = vmig_capability_evaluate(arm, &src, &t, NULL);
    g_autofree char *reasons = join(r2->reasons);
    assert_string_equal(reasons,
                        "machine type q35 not supported on node-c|no emulator for arch aarch64 on "
                        "node-c|guest CPU Skylake-Server-noTSX-IBRS cannot be checked on node-c: "
                        "the target reports no host-model CPU");
}

/* ---- versions, identity, memory -------------------------------------------------------- */

/* The target hypervisor offers nothing for the guest's virt type (e.g. kvm without KVM). */
static void
test_domcaps_refusal(void **state)
{
    (void)state;
    g_autoptr(VmigCapabilityDomain) guest = load_domain("b08-vm1-running.xml");
    g_autoptr(VmigCapabilityHost) caps = load_caps("b08-node-c-caps.xml");
    VmigCapabilitySource src = {.node = (char *)"node-a"};
    VmigCapabilityTarget t = {.node = "node-c",
                              .caps = caps,
                              .free_memory_bytes = 64 * GIB,
                              .domcaps_refusal = "unsupported configuration: KVM is not "
                                                 "supported on this host"};
    g_autoptr(VmigCapabilityResult) r = vmig_capability_evaluate(guest, &src, &t, NULL);
    g_autofree char *reasons = join(r->reasons);
    /* one reason: the CPU is not checked against a hypervisor that cannot run the guest */
    assert_string_equal(reasons, "virt type kvm for arch x86_64 and machine type pc-q35-rhel8.2.0 "
                                 "is not offered on node-c: unsupported configuration: KVM is not "
                                 "supported on this host");
    assert_string_equal(r->target_emulator, "/usr/libexec/qemu-kvm"); /* from capabilities */
}

static void
test_version_table(void **state)
{
    (void)state;
    static const struct {
        guint64 src_lv, src_q, dst_lv, dst_q;
        const char *reasons;
    } cases[] = {
        {9000000, 7002000, 9000000, 7002000, ""},
        {9000000, 7002000, 9000000, 7001000, ""},  /* older minor: same major, allowed */
        {9000000, 7002000, 9000000, 8000000, ""},  /* newer major: allowed */
        {9000000, 6002000, 10000000, 8002000, ""}, /* newer everything */
        {9000000, 7002000, 9000000, 6002000,
         "QEMU 6.2.0 on node-b cannot take a guest from QEMU 7.2.0 on node-a: the target's "
         "QEMU major release must not be older than the source's (an older QEMU is not "
         "guaranteed to load a newer release's device state)"},
        {9000000, 7002000, 6007000, 7002000,
         "libvirt 6.7.0 on node-b cannot take a guest from libvirt 9.0.0 on node-a: the "
         "target's libvirt must be 6.8.0 or newer (unix:// migration URIs, which the migration "
         "proxy uses)"},
        {6008000, 7002000, 6008000, 7002000, ""}, /* 6.8.0 is the first good one */
        {6000000, 5002000, 9000000, 7002000,
         "libvirt 9.0.0 on node-b cannot take a guest from libvirt 6.0.0 on node-a: the "
         "source's libvirt must be 6.8.0 or newer (unix:// migration URIs, which the migration "
         "proxy uses)"},
        {9000000, 8000000, 6000000, 5002000,
         "QEMU 5.2.0 on node-b cannot take a guest from QEMU 8.0.0 on node-a: the target's "
         "QEMU major release must not be older than the source's (an older QEMU is not "
         "guaranteed to load a newer release's device state)|libvirt 6.0.0 on node-b cannot "
         "take a guest from libvirt 9.0.0 on node-a: the target's libvirt must be 6.8.0 or "
         "newer (unix:// migration URIs, which the migration proxy uses)"},
        {0, 0, 9000000, 6002000, ""}, /* unknown source: rules skipped */
        {9000000, 7002000, 0, 0, ""},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GPtrArray) r = vmig_capability_version_refusals(
            "node-a", "node-b", cases[i].src_lv, cases[i].src_q, cases[i].dst_lv, cases[i].dst_q);
        g_autofree char *got = join(r);
        if (strcmp(got, cases[i].reasons) != 0)
            fail_msg("case %zu: '%s'", i, got);
    }
    g_autofree char *v = vmig_capability_version_string(9000000);
    assert_string_equal(v, "9.0.0");
    g_autofree char *v2 = vmig_capability_version_string(7002022);
    assert_string_equal(v2, "7.2.22");
    g_autofree char *v0 = vmig_capability_version_string(0);
    assert_string_equal(v0, "unknown");
}

static void
test_target_is_source(void **state)
{
    (void)state;
    g_autoptr(VmigCapabilityDomain) guest = load_domain("tcg-domain-hostmodel-migratable.xml");
    g_autoptr(VmigCapabilityHost) caps = load_caps("tcg-caps.xml");
    g_autoptr(VmigCapabilityDomcaps) dc = load_domcaps("tcg-domcaps.xml");
    static const struct {
        const char *src_node, *src_uuid, *dst_node;
        const char *reasons;
    } cases[] = {
        {"node-a", "22222222-bbbb-4bbb-8bbb-00000000000b", "node-b", ""},
        {"node-a", NULL, "node-b", ""},
        {"node-a", "22222222-bbbb-4bbb-8bbb-00000000000b", "node-a",
         "target is the source: node name node-a is the source node"},
        {"node-a", "11111111-AAAA-4AAA-8AAA-00000000000A", "node-b",
         "target is the source: node-b has the libvirt host UUID "
         "11111111-aaaa-4aaa-8aaa-00000000000a of the source node node-a"},
        {"node-a", "11111111aaaa4aaa8aaa00000000000a", "node-a",
         "target is the source: node name node-a is the source node|target is the source: "
         "node-a has the libvirt host UUID 11111111-aaaa-4aaa-8aaa-00000000000a of the source "
         "node node-a"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        VmigCapabilitySource src = {.node = (char *)cases[i].src_node,
                                    .host_uuid = (char *)cases[i].src_uuid,
                                    .libvirt_version = 9000000,
                                    .qemu_version = 7002022};
        VmigCapabilityTarget t = {.node = cases[i].dst_node,
                                  .caps = caps,
                                  .domcaps = dc,
                                  .libvirt_version = 9000000,
                                  .qemu_version = 7002022,
                                  .free_memory_bytes = 8 * GIB};
        g_autoptr(VmigCapabilityResult) r = vmig_capability_evaluate(guest, &src, &t, NULL);
        g_autofree char *got = join(r->reasons);
        if (strcmp(got, cases[i].reasons) != 0)
            fail_msg("case %zu: '%s'", i, got);
        assert_int_equal(r->eligible, cases[i].reasons[0] == '\0');
        assert_int_equal(r->target_qemu_version, 7002022);
        assert_int_equal(r->source_libvirt_version, 9000000);
    }
}

static void
test_free_memory(void **state)
{
    (void)state;
    g_autoptr(VmigCapabilityDomain) guest = load_domain("tcg-domain-hostmodel-migratable.xml");
    g_autoptr(VmigCapabilityHost) caps = load_caps("tcg-caps.xml");
    g_autoptr(VmigCapabilityDomcaps) dc = load_domcaps("tcg-domcaps.xml");
    static const struct {
        guint64 free_bytes, overhead;
        gboolean eligible;
    } cases[] = {
        {64 * MIB + 64 * MIB, 64 * MIB, TRUE}, /* exactly enough */
        {64 * MIB + 64 * MIB - 1, 64 * MIB, FALSE}, {64 * MIB, 0, TRUE}, {0, 0, FALSE},
        {G_MAXUINT64 - 1, G_MAXUINT64, FALSE}, /* saturating, never wraps */
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        VmigCapabilitySource src = {.node = (char *)"node-a"};
        VmigCapabilityTarget t = {.node = "node-b",
                                  .caps = caps,
                                  .domcaps = dc,
                                  .free_memory_bytes = cases[i].free_bytes};
        VmigCapabilityOptions o = {.memory_overhead_bytes = cases[i].overhead};
        g_autoptr(VmigCapabilityResult) r = vmig_capability_evaluate(guest, &src, &t, &o);
        g_autofree char *got = join(r->reasons);
        if (r->eligible != cases[i].eligible)
            fail_msg("case %zu: eligible %d '%s'", i, r->eligible, got);
    }
    VmigCapabilitySource src = {.node = (char *)"node-a"};
    VmigCapabilityTarget t = {
        .node = "node-b", .caps = caps, .domcaps = dc, .free_memory_bytes = 100 * MIB};
    g_autoptr(VmigCapabilityResult) r = vmig_capability_evaluate(guest, &src, &t, NULL);
    assert_string_equal(g_ptr_array_index(r->reasons, 0),
                        "free memory on node-b is 100.0 MiB (104857600 bytes), less than the "
                        "guest memory 64.0 MiB plus overhead 64.0 MiB (134217728 bytes)");
    assert_int_equal(r->required_memory_bytes, 128 * MIB);
    assert_int_equal(r->free_memory_bytes, 100 * MIB);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_mode_table),
        cmocka_unit_test(test_parse_tcg_captured),
        cmocka_unit_test(test_parse_machines_per_domain_type),
        cmocka_unit_test(test_parse_memory_units),
        cmocka_unit_test(test_parse_bad_domains),
        cmocka_unit_test(test_parse_unresolved_host_model_refused),
        cmocka_unit_test(test_parse_bad_capabilities),
        cmocka_unit_test(test_missing_features_table),
        cmocka_unit_test(test_b07_host_model),
        cmocka_unit_test(test_b07_back_to_older_node),
        cmocka_unit_test(test_b07_libvirt_compare_authoritative),
        cmocka_unit_test(test_b07_host_passthrough),
        cmocka_unit_test(test_passthrough_needs_facts),
        cmocka_unit_test(test_b08_machine_type_selection),
        cmocka_unit_test(test_b08_destination_xml),
        cmocka_unit_test(test_destination_xml_errors),
        cmocka_unit_test(test_machine_alias_and_arch),
        cmocka_unit_test(test_domcaps_refusal),
        cmocka_unit_test(test_version_table),
        cmocka_unit_test(test_target_is_source),
        cmocka_unit_test(test_free_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
