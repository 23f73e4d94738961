/* query.c - the thin I/O layer: ask a libvirt connection what the pure decision needs. */
#define G_LOG_DOMAIN "vmig-capability"
#include "vmig/capability.h"

#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

static void
vmig_capability_set_libvirt_error(GError **error, const char *call, const char *node)
{
    const char *msg = virGetLastErrorMessage();
    g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_LIBVIRT, "%s on %s: %s", call,
                node ? node : "(unknown node)", msg ? msg : "unknown libvirt error");
}

/* libvirt hands out malloc()ed strings. */
static void
vmig_capability_free_libvirt_string(char *s)
{
    free(s);
}

typedef char VmigLibvirtString;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigLibvirtString, vmig_capability_free_libvirt_string)

/* libvirt errors that mean "this host cannot do that" (a refusal) rather than a failed query.
 * One table, so a newly seen code is one row. */
static const int vmig_capability_refusal_codes[] = {
    VIR_ERR_CONFIG_UNSUPPORTED,
    VIR_ERR_OPERATION_UNSUPPORTED,
    VIR_ERR_NO_SUPPORT,
    VIR_ERR_INVALID_ARG,
};

static gboolean
vmig_capability_is_refusal(int code)
{
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_capability_refusal_codes); i++) {
        if (vmig_capability_refusal_codes[i] == code)
            return TRUE;
    }
    return FALSE;
}

static VmigCapabilityHost *
vmig_capability_query_host(virConnectPtr conn, const char *node, GError **error)
{
    g_autoptr(VmigLibvirtString) xml = virConnectGetCapabilities(conn);
    if (!xml) {
        vmig_capability_set_libvirt_error(error, "virConnectGetCapabilities", node);
        return NULL;
    }
    return vmig_capability_host_parse(xml, error);
}

static gboolean
vmig_capability_query_versions(virConnectPtr conn, const char *node, guint64 *libvirt,
                               guint64 *qemu, GError **error)
{
    unsigned long lib = 0, hv = 0;
    if (virConnectGetLibVersion(conn, &lib) < 0) {
        vmig_capability_set_libvirt_error(error, "virConnectGetLibVersion", node);
        return FALSE;
    }
    if (virConnectGetVersion(conn, &hv) < 0) {
        vmig_capability_set_libvirt_error(error, "virConnectGetVersion", node);
        return FALSE;
    }
    *libvirt = lib;
    *qemu = hv;
    return TRUE;
}

void
vmig_capability_source_clear(VmigCapabilitySource *source)
{
    if (!source)
        return;
    g_clear_pointer(&source->node, g_free);
    g_clear_pointer(&source->host_uuid, g_free);
    g_clear_pointer(&source->host_cpu, vmig_capability_cpu_free);
    source->libvirt_version = 0;
    source->qemu_version = 0;
}

gboolean
vmig_capability_source_query(virConnectPtr conn, const char *node, VmigCapabilitySource *out,
                             GError **error)
{
    memset(out, 0, sizeof(*out));
    if (!conn || !node) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_INVALID,
                    "source query needs a connection and a node name");
        return FALSE;
    }
    g_autoptr(VmigCapabilityHost) host = vmig_capability_query_host(conn, node, error);
    if (!host)
        return FALSE;
    out->node = g_strdup(node);
    out->host_uuid = g_steal_pointer(&host->host_uuid);
    out->host_cpu = g_steal_pointer(&host->host_cpu);
    if (!vmig_capability_query_versions(conn, node, &out->libvirt_version, &out->qemu_version,
                                        error)) {
        vmig_capability_source_clear(out);
        return FALSE;
    }
    return TRUE;
}

/* Every feature of @cpu's model listed explicitly: virConnectBaselineCPU with
 * VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES works from libvirt's own CPU map and, unlike
 * virConnectBaselineHypervisorCPU, does not drop what the hypervisor lacks - which is exactly
 * what we want to see. Features @cpu disables stay disabled. NULL when libvirt cannot (an
 * unknown model, a non-x86 arch): the caller then compares unexpanded definitions. */
static VmigCapabilityCpu *
vmig_capability_expand(virConnectPtr conn, const char *arch, const VmigCapabilityCpu *cpu)
{
    if (!cpu || !cpu->model)
        return NULL;
    g_autoptr(GString) x = g_string_new("<cpu>");
    g_autofree char *a = g_markup_escape_text(arch, -1);
    g_autofree char *m = g_markup_escape_text(cpu->model, -1);
    g_string_append_printf(x, "<arch>%s</arch><model>%s</model>", a, m);
    if (cpu->vendor) {
        g_autofree char *v = g_markup_escape_text(cpu->vendor, -1);
        g_string_append_printf(x, "<vendor>%s</vendor>", v);
    }
    for (guint i = 0; i < cpu->required->len; i++) {
        g_autofree char *f = g_markup_escape_text(g_ptr_array_index(cpu->required, i), -1);
        g_string_append_printf(x, "<feature name='%s'/>", f);
    }
    g_string_append(x, "</cpu>");
    const char *xmls[] = {x->str};
    g_autoptr(VmigLibvirtString) out =
        virConnectBaselineCPU(conn, xmls, 1, VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES);
    if (!out) {
        g_debug("virConnectBaselineCPU cannot expand CPU model %s: %s", cpu->model,
                virGetLastErrorMessage());
        return NULL;
    }
    g_autoptr(GError) err = NULL;
    VmigCapabilityCpu *e = vmig_capability_cpu_parse(out, &err);
    if (!e) {
        g_debug("expanded CPU model %s: %s", cpu->model, err->message);
        return NULL;
    }
    for (guint i = 0; i < cpu->disabled->len; i++) {
        const char *f = g_ptr_array_index(cpu->disabled, i);
        for (guint j = 0; j < e->required->len; j++) {
            if (strcmp(g_ptr_array_index(e->required, j), f) == 0) {
                g_ptr_array_remove_index(e->required, j);
                break;
            }
        }
    }
    return e;
}

VmigCapabilityResult *
vmig_capability_check(virConnectPtr target_conn, const char *target_node, const char *domain_xml,
                      const VmigCapabilitySource *source, const VmigCapabilityOptions *options,
                      GError **error)
{
    if (!target_conn || !target_node || !source) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_INVALID,
                    "capability check needs a target connection, node name and source facts");
        return NULL;
    }
    g_autoptr(VmigCapabilityDomain) guest = vmig_capability_domain_parse(domain_xml, error);
    if (!guest)
        return NULL;
    g_autoptr(VmigCapabilityHost) host =
        vmig_capability_query_host(target_conn, target_node, error);
    if (!host)
        return NULL;
    VmigCapabilityTarget t = {.node = target_node, .caps = host};
    if (!vmig_capability_query_versions(target_conn, target_node, &t.libvirt_version,
                                        &t.qemu_version, error))
        return NULL;
    unsigned long long free_bytes = virNodeGetFreeMemory(target_conn);
    if (free_bytes == 0 && virGetLastError()) {
        vmig_capability_set_libvirt_error(error, "virNodeGetFreeMemory", target_node);
        return NULL;
    }
    t.free_memory_bytes = free_bytes;

    /* Ask for the guest's machine only when the target offers it: libvirt refuses domain
     * capabilities and CPU comparison for an unknown machine, and that refusal is ours to word. */
    const VmigCapabilityMachine *m =
        vmig_capability_host_find_machine(host, guest->arch, guest->virt_type, guest->machine);
    const char *machine = (m && !m->canonical) ? guest->machine : NULL;

    g_autoptr(VmigCapabilityDomcaps) domcaps = NULL;
    g_autofree char *domcaps_refusal = NULL;
    g_autoptr(VmigLibvirtString) dc_xml = virConnectGetDomainCapabilities(
        target_conn, NULL, guest->arch, machine, guest->virt_type, 0);
    if (dc_xml) {
        domcaps = vmig_capability_domcaps_parse(dc_xml, error);
        if (!domcaps)
            return NULL;
    } else if (vmig_capability_is_refusal(virGetLastErrorCode())) {
        /* e.g. a kvm guest and a target without KVM: the target cannot take it */
        domcaps_refusal = g_strdup(virGetLastErrorMessage());
        t.domcaps_refusal = domcaps_refusal;
    } else {
        vmig_capability_set_libvirt_error(error, "virConnectGetDomainCapabilities", target_node);
        return NULL;
    }
    t.domcaps = domcaps;

    /* The running guest's own CPU definition against what this hypervisor can give, with the
     * target's emulator (NULL: libvirt's default for the arch) - the source's path may not
     * exist here (field case B08). */
    g_autofree char *compare_msg = NULL;
    g_autoptr(VmigCapabilityCpu) guest_e = NULL;
    g_autoptr(VmigCapabilityCpu) target_e = NULL;
    const VmigCapabilityCpu *cpu = guest->cpu;
    if (!domcaps_refusal && cpu && cpu->model &&
        (cpu->mode == VMIG_CAPABILITY_CPU_MODE_CUSTOM ||
         cpu->mode == VMIG_CAPABILITY_CPU_MODE_HOST_MODEL)) {
        int rc = virConnectCompareHypervisorCPU(target_conn, NULL, guest->arch, machine,
                                                guest->virt_type, cpu->xml,
                                                VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE);
        if (rc < 0 && virGetLastErrorCode() != VIR_ERR_CPU_INCOMPATIBLE) {
            vmig_capability_set_libvirt_error(error, "virConnectCompareHypervisorCPU", target_node);
            return NULL;
        }
        switch (rc) {
        case VIR_CPU_COMPARE_IDENTICAL:
            t.cpu_compare = VMIG_CAPABILITY_CPU_COMPARE_IDENTICAL;
            break;
        case VIR_CPU_COMPARE_SUPERSET:
            t.cpu_compare = VMIG_CAPABILITY_CPU_COMPARE_SUPERSET;
            break;
        default:
            t.cpu_compare = VMIG_CAPABILITY_CPU_COMPARE_INCOMPATIBLE;
            compare_msg = g_strdup(virGetLastErrorMessage());
            t.cpu_compare_message = compare_msg;
            guest_e = vmig_capability_expand(target_conn, guest->arch, cpu);
            if (domcaps && domcaps->host_model)
                target_e = vmig_capability_expand(target_conn, guest->arch, domcaps->host_model);
            /* Use expansions only as a pair: one expanded side against an unexpanded one
             * would report every model feature as missing. */
            if (guest_e && target_e) {
                t.guest_cpu_expanded = guest_e;
                t.target_cpu_expanded = target_e;
            }
            break;
        }
        virResetLastError();
    }
    return vmig_capability_evaluate(guest, source, &t, options);
}
