/* source.c - source limitation checks (see vmig/checks.h). One function per reason, run from a
 * table in KubeVirt's order: add a limitation, add a row. */
#include "vmig/checks.h"

#include <string.h>

static const char *const reason_names[] = {
    [VMIG_CHECKS_REASON_INTERFACE] = "InterfaceNotLiveMigratable",
    [VMIG_CHECKS_REASON_CPU_MODE] = "CPUModeLiveMigratable",
    [VMIG_CHECKS_REASON_HOST_DEVICE] = "HostDeviceNotLiveMigratable",
    [VMIG_CHECKS_REASON_SEV] = "SEVNotLiveMigratable",
    [VMIG_CHECKS_REASON_TDX] = "TDXNotLiveMigratable",
    [VMIG_CHECKS_REASON_SECURE_EXECUTION] = "SecureExecutionNotLiveMigratable",
    [VMIG_CHECKS_REASON_HYPERV_PASSTHROUGH] = "HypervPassthroughNotLiveMigratable",
    [VMIG_CHECKS_REASON_DISKS] = "DisksNotLiveMigratable",
};

const char *
vmig_checks_reason_to_string(VmigChecksReason reason)
{
    if ((gsize)reason >= G_N_ELEMENTS(reason_names))
        return "unknown";
    return reason_names[reason];
}

gboolean
vmig_checks_reason_from_string(const char *s, VmigChecksReason *out)
{
    for (gsize i = 0; s && i < G_N_ELEMENTS(reason_names); i++) {
        if (strcmp(reason_names[i], s) == 0) {
            *out = (VmigChecksReason)i;
            return TRUE;
        }
    }
    return FALSE;
}

static void
finding_free(VmigChecksFinding *f)
{
    g_free(f->subject);
    g_free(f->message);
    g_free(f);
}

static void add_finding(VmigChecksResult *r, VmigChecksReason reason, const char *subject,
                        const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static void
add_finding(VmigChecksResult *r, VmigChecksReason reason, const char *subject, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    VmigChecksFinding *f = g_new0(VmigChecksFinding, 1);
    f->reason = reason;
    f->subject = g_strdup(subject);
    f->message = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_ptr_array_add(r->findings, f);
}

/* ---- interfaces ----------------------------------------------------------------------- */

static const VmigModelInterface *
find_interface(const VmigModelVmi *vmi, const char *name)
{
    for (guint i = 0; i < vmi->interfaces->len; i++) {
        const VmigModelInterface *itf = g_ptr_array_index(vmi->interfaces, i);
        if (g_strcmp0(itf->name, name) == 0)
            return itf;
    }
    return NULL;
}

static gboolean
str_in(GPtrArray *a, const char *s)
{
    for (guint i = 0; a && i < a->len; i++) {
        if (g_strcmp0(g_ptr_array_index(a, i), s) == 0)
            return TRUE;
    }
    return FALSE;
}

static void
check_interfaces(const VmigChecksInput *in, VmigChecksResult *r)
{
    const VmigModelVmi *vmi = in->vmi;
    /* The pod network cannot follow the VMI to another node unless the guest is behind NAT
     * (masquerade, passt) or a plugin that declares migration support: the CNI address is the
     * pod's, not the guest's. */
    for (guint i = 0; i < vmi->networks->len; i++) {
        const VmigModelNetwork *net = g_ptr_array_index(vmi->networks, i);
        if (!net->pod)
            continue;
        const VmigModelInterface *itf = find_interface(vmi, net->name);
        if (!itf)
            continue;
        gboolean ok = FALSE;
        switch (itf->binding) {
        case VMIG_MODEL_BINDING_MASQUERADE:
        case VMIG_MODEL_BINDING_PASST:
            ok = TRUE;
            break;
        case VMIG_MODEL_BINDING_BRIDGE:
            ok = g_hash_table_contains(vmi->meta.annotations,
                                       VMIG_CHECKS_ALLOW_POD_BRIDGE_ANNOTATION);
            break;
        case VMIG_MODEL_BINDING_PLUGIN:
            ok = str_in(in->migratable_binding_plugins, itf->binding_plugin);
            break;
        default:
            ok = FALSE;
        }
        if (!ok) {
            add_finding(r, VMIG_CHECKS_REASON_INTERFACE, itf->name,
                        "cannot migrate VMI: interface %s connects to the pod network with %s%s%s "
                        "binding; live migration needs masquerade, passt, a binding plugin with "
                        "migration support, or bridge with the %s annotation",
                        itf->name, vmig_model_binding_to_string(itf->binding),
                        itf->binding_plugin ? " " : "",
                        itf->binding_plugin ? itf->binding_plugin : "",
                        VMIG_CHECKS_ALLOW_POD_BRIDGE_ANNOTATION);
        }
    }
    /* vmigrated does not detach SR-IOV VFs before migration and re-attach after, so a VF
     * would reach libvirt as a <hostdev> it cannot migrate: refuse up front. */
    for (guint i = 0; i < vmi->interfaces->len; i++) {
        const VmigModelInterface *itf = g_ptr_array_index(vmi->interfaces, i);
        if (itf->binding == VMIG_MODEL_BINDING_SRIOV)
            add_finding(r, VMIG_CHECKS_REASON_INTERFACE, itf->name,
                        "cannot migrate VMI: interface %s uses an SR-IOV VF, which vmigrated "
                        "cannot detach and re-attach around a migration",
                        itf->name);
    }
}

/* ---- CPU ------------------------------------------------------------------------------ */

static void
check_cpu(const VmigChecksInput *in, VmigChecksResult *r)
{
    const VmigModelVmi *vmi = in->vmi;
    const char *model = vmi->cpu_model && *vmi->cpu_model                 ? vmi->cpu_model
                        : in->cluster_cpu_model && *in->cluster_cpu_model ? in->cluster_cpu_model
                                                                          : "host-model";
    if (strcmp(model, "host-passthrough") == 0 && !in->allow_host_passthrough) {
        add_finding(r, VMIG_CHECKS_REASON_CPU_MODE, model,
                    "cannot migrate VMI: CPU model host-passthrough exposes the exact host CPU and "
                    "is only safe between identical hosts; host-passthrough migration is not "
                    "enabled in the vmigrated configuration");
    } else if (strcmp(model, "host-model") == 0 && in->node_facts_known &&
               !in->node_host_model_cpu) {
        add_finding(r, VMIG_CHECKS_REASON_CPU_MODE, model,
                    "the node \"%s\" does not allow migration with host-model",
                    vmi->node_name ? vmi->node_name : "");
    }
}

/* ---- host devices, launch security, Hyper-V ------------------------------------------- */

static void
check_host_devices(const VmigChecksInput *in, VmigChecksResult *r)
{
    const VmigModelVmi *vmi = in->vmi;
    GPtrArray *lists[] = {vmi->host_devices, vmi->gpus};
    const char *kinds[] = {"host device", "GPU"};
    for (gsize l = 0; l < G_N_ELEMENTS(lists); l++) {
        for (guint i = 0; i < lists[l]->len; i++) {
            const char *name = g_ptr_array_index(lists[l], i);
            add_finding(r, VMIG_CHECKS_REASON_HOST_DEVICE, name,
                        "cannot migrate VMI: it uses the PCI %s %s, which libvirt cannot migrate",
                        kinds[l], name);
        }
    }
}

static void
check_launch_security(const VmigChecksInput *in, VmigChecksResult *r)
{
    switch (in->vmi->launch_security) {
    case VMIG_MODEL_LAUNCH_SECURITY_SEV:
        add_finding(r, VMIG_CHECKS_REASON_SEV, "sev", "VMI uses SEV");
        break;
    case VMIG_MODEL_LAUNCH_SECURITY_SNP:
        add_finding(r, VMIG_CHECKS_REASON_SEV, "snp", "VMI uses SEV-SNP");
        break;
    case VMIG_MODEL_LAUNCH_SECURITY_TDX:
        add_finding(r, VMIG_CHECKS_REASON_TDX, "tdx", "VMI uses TDX");
        break;
    case VMIG_MODEL_LAUNCH_SECURITY_SECURE_EXECUTION:
        add_finding(r, VMIG_CHECKS_REASON_SECURE_EXECUTION, "launchSecurity",
                    "VMI uses Secure Execution");
        break;
    default:
        break;
    }
}

static void
check_hyperv(const VmigChecksInput *in, VmigChecksResult *r)
{
    if (in->vmi->hyperv_passthrough)
        add_finding(r, VMIG_CHECKS_REASON_HYPERV_PASSTHROUGH, "hypervPassthrough",
                    "VMI uses hyperv passthrough");
}

/* ---- volumes -------------------------------------------------------------------------- */

static const VmigModelPvc *
find_pvc(const VmigChecksInput *in, const char *claim)
{
    for (guint i = 0; in->pvcs && i < in->pvcs->len; i++) {
        const VmigModelPvc *p = g_ptr_array_index(in->pvcs, i);
        if (g_strcmp0(p->meta.name, claim) == 0 &&
            g_strcmp0(p->meta.namespace, in->vmi->meta.namespace) == 0)
            return p;
    }
    return NULL;
}

/* The PVC behind a dataVolume volume: the DataVolume's claim, else a PVC of the same name
 * (CDI names it after the DataVolume). */
static const char *
data_volume_claim(const VmigChecksInput *in, const char *dv_name)
{
    for (guint i = 0; in->data_volumes && i < in->data_volumes->len; i++) {
        const VmigModelDataVolume *dv = g_ptr_array_index(in->data_volumes, i);
        if (g_strcmp0(dv->meta.name, dv_name) == 0 &&
            g_strcmp0(dv->meta.namespace, in->vmi->meta.namespace) == 0)
            return dv->claim_name;
    }
    return dv_name;
}

static void
add_copy(const VmigChecksInput *in, VmigChecksResult *r, const VmigModelVolume *v)
{
    g_autofree char *target = vmig_checks_disk_target(in->vmi, v->name);
    if (!target)
        return; /* no disk: a filesystem (virtiofs) shared by the pod, nothing to copy */
    g_ptr_array_add(r->copy_volumes, g_strdup(v->name));
    g_ptr_array_add(r->copy_disks, g_steal_pointer(&target));
    if (r->copy_bytes_known <= G_MAXINT64 - v->capacity_bytes)
        r->copy_bytes_known += v->capacity_bytes;
}

static void
check_volumes(const VmigChecksInput *in, VmigChecksResult *r)
{
    const VmigModelVmi *vmi = in->vmi;
    g_autoptr(GPtrArray) shared = g_ptr_array_new();
    g_autoptr(GPtrArray) local = g_ptr_array_new(); /* non-shared but copyable */
    gboolean refused = FALSE;

    for (guint i = 0; i < vmi->volumes->len; i++) {
        const VmigModelVolume *v = g_ptr_array_index(vmi->volumes, i);
        switch (v->kind) {
        case VMIG_MODEL_VOLUME_PERSISTENT_VOLUME_CLAIM:
        case VMIG_MODEL_VOLUME_DATA_VOLUME:
        case VMIG_MODEL_VOLUME_MEMORY_DUMP: {
            const char *claim = v->kind == VMIG_MODEL_VOLUME_DATA_VOLUME
                                    ? data_volume_claim(in, v->claim_name)
                                    : v->claim_name;
            const VmigModelPvc *pvc = find_pvc(in, claim);
            if (!pvc || g_strcmp0(pvc->phase, "Bound") != 0) {
                add_finding(r, VMIG_CHECKS_REASON_DISKS, v->name,
                            "cannot migrate VMI: Unable to determine if PVC %s (volume %s) is "
                            "shared: %s; live migration requires that all PVCs must be shared "
                            "(using ReadWriteMany access mode)",
                            claim, v->name, pvc ? "it is not Bound" : "it was not found");
                refused = TRUE;
            } else if (vmig_model_pvc_is_shared(pvc)) {
                g_ptr_array_add(shared, (gpointer)v);
            } else {
                g_ptr_array_add(local, (gpointer)v);
                if (!in->block_migrate_non_shared)
                    add_finding(r, VMIG_CHECKS_REASON_DISKS, v->name,
                                "cannot migrate VMI: PVC %s (volume %s) is not shared, live "
                                "migration requires that all PVCs must be shared (using "
                                "ReadWriteMany access mode)",
                                claim, v->name);
            }
            break;
        }
        case VMIG_MODEL_VOLUME_HOST_DISK:
            if (v->host_disk_shared) {
                g_ptr_array_add(shared, (gpointer)v);
            } else {
                g_ptr_array_add(local, (gpointer)v);
                if (!in->block_migrate_non_shared)
                    add_finding(r, VMIG_CHECKS_REASON_DISKS, v->name,
                                "cannot migrate VMI with non-shared HostDisk %s (path %s)", v->name,
                                v->host_disk_path);
            }
            break;
        default: {
            /* Generated and ephemeral disks live on the node: block migration copies them,
             * unless the guest only reads them from a CD-ROM (they are regenerated). */
            const VmigModelDisk *d = vmig_model_vmi_find_disk(vmi, v->name);
            if (d && d->read_only && g_strcmp0(d->device, "cdrom") == 0)
                break;
            add_copy(in, r, v);
            break;
        }
        }
    }
    if (local->len && in->block_migrate_non_shared) {
        if (shared->len) {
            g_autoptr(GString) s = g_string_new(NULL);
            g_autoptr(GString) l = g_string_new(NULL);
            for (guint i = 0; i < shared->len; i++)
                g_string_append_printf(s, "%s%s", i ? ", " : "",
                                       ((VmigModelVolume *)g_ptr_array_index(shared, i))->name);
            for (guint i = 0; i < local->len; i++)
                g_string_append_printf(l, "%s%s", i ? ", " : "",
                                       ((VmigModelVolume *)g_ptr_array_index(local, i))->name);
            add_finding(r, VMIG_CHECKS_REASON_DISKS, ((VmigModelVolume *)local->pdata[0])->name,
                        "cannot migrate VMI with mixes shared and non-shared volumes (shared: "
                        "%s; not shared: %s)",
                        s->str, l->str);
        } else if (!refused) {
            for (guint i = 0; i < local->len; i++) {
                const VmigModelVolume *v = g_ptr_array_index(local, i);
                /* Block migration copies disks; a non-shared volume the guest does not see as
                 * a disk (a filesystem) would be left behind. */
                if (!vmig_model_vmi_find_disk(vmi, v->name))
                    add_finding(r, VMIG_CHECKS_REASON_DISKS, v->name,
                                "cannot migrate VMI: non-shared volume %s is not a disk, so block "
                                "migration cannot copy it",
                                v->name);
                else
                    add_copy(in, r, v);
            }
        }
    } else if (local->len) {
        /* Refused; the method still says what a copy would have needed (KubeVirt does too). */
        r->method = VMIG_MODEL_MIGRATION_METHOD_BLOCK;
    }
}

/* ---- the table ------------------------------------------------------------------------ */

typedef void (*CheckFunc)(const VmigChecksInput *in, VmigChecksResult *r);

/* KubeVirt's order: interfaces, CPU mode, host devices, launch security, Hyper-V
 * passthrough, then volumes. */
static const CheckFunc check_table[] = {
    check_interfaces,      check_cpu,    check_host_devices,
    check_launch_security, check_hyperv, check_volumes,
};

VmigChecksResult *
vmig_checks_source(const VmigChecksInput *in)
{
    VmigChecksResult *r = g_new0(VmigChecksResult, 1);
    r->findings = g_ptr_array_new_with_free_func((GDestroyNotify)finding_free);
    r->copy_volumes = g_ptr_array_new_with_free_func(g_free);
    r->copy_disks = g_ptr_array_new_with_free_func(g_free);
    r->method = VMIG_MODEL_MIGRATION_METHOD_LIVE;
    for (gsize i = 0; i < G_N_ELEMENTS(check_table); i++)
        check_table[i](in, r);
    if (r->copy_disks->len)
        r->method = VMIG_MODEL_MIGRATION_METHOD_BLOCK;
    r->migratable = r->findings->len == 0;
    return r;
}

void
vmig_checks_result_free(VmigChecksResult *r)
{
    if (!r)
        return;
    g_ptr_array_unref(r->findings);
    g_ptr_array_unref(r->copy_volumes);
    g_ptr_array_unref(r->copy_disks);
    g_free(r);
}

/* ---- disk targets, node facts --------------------------------------------------------- */

typedef struct {
    const char *bus;
    const char *prefix;
} BusPrefix;

static const BusPrefix bus_prefixes[] = {
    {"virtio", "vd"}, {"sata", "sd"}, {"scsi", "sd"}, {"usb", "sd"}, {"ide", "hd"},
};

static const char *
disk_prefix(const VmigModelDisk *d)
{
    /* KubeVirt's default bus: virtio for disks, sata for CD-ROMs, scsi for LUNs. */
    const char *bus = d->bus;
    if (!bus)
        bus = g_strcmp0(d->device, "cdrom") == 0 ? "sata"
              : g_strcmp0(d->device, "lun") == 0 ? "scsi"
                                                 : "virtio";
    for (gsize i = 0; i < G_N_ELEMENTS(bus_prefixes); i++) {
        if (strcmp(bus_prefixes[i].bus, bus) == 0)
            return bus_prefixes[i].prefix;
    }
    return "vd";
}

/* 0 -> "a", 25 -> "z", 26 -> "aa" (libvirt's device name suffixes). */
static void
append_index(GString *s, guint idx)
{
    char buf[16];
    int n = 0;
    guint v = idx + 1;
    while (v > 0 && n < (int)sizeof buf) {
        v--;
        buf[n++] = (char)('a' + v % 26);
        v /= 26;
    }
    while (n > 0)
        g_string_append_c(s, buf[--n]);
}

char *
vmig_checks_disk_target(const VmigModelVmi *vmi, const char *disk_name)
{
    g_autoptr(GHashTable) counts = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < vmi->disks->len; i++) {
        const VmigModelDisk *d = g_ptr_array_index(vmi->disks, i);
        const char *prefix = disk_prefix(d);
        guint idx = GPOINTER_TO_UINT(g_hash_table_lookup(counts, prefix));
        g_hash_table_insert(counts, (gpointer)prefix, GUINT_TO_POINTER(idx + 1));
        if (g_strcmp0(d->name, disk_name) == 0) {
            GString *s = g_string_new(prefix);
            append_index(s, idx);
            return g_string_free(s, FALSE);
        }
    }
    return NULL;
}

const char *
vmig_checks_node_host_model(const VmigModelNode *node)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, node->meta.labels);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        if (g_str_has_prefix(k, VMIG_CHECKS_HOST_MODEL_LABEL_PREFIX) && g_strcmp0(v, "true") == 0 &&
            strlen(k) > strlen(VMIG_CHECKS_HOST_MODEL_LABEL_PREFIX))
            return (const char *)k + strlen(VMIG_CHECKS_HOST_MODEL_LABEL_PREFIX);
    }
    return NULL;
}

gboolean
vmig_checks_eviction_warns(const VmigModelVmi *vmi, VmigModelEvictionStrategy cluster_default,
                           const VmigChecksResult *r)
{
    VmigModelEvictionStrategy s = vmi->eviction_strategy != VMIG_MODEL_EVICTION_UNSET
                                      ? vmi->eviction_strategy
                                      : cluster_default;
    return s == VMIG_MODEL_EVICTION_LIVE_MIGRATE && !r->migratable;
}
