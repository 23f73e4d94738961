/* vmig/checks.h - source limitation checks: is this VMI live-migratable, and how?
 *
 * Pure and table-driven: from a VMI view (vmig/model.h), the PVCs and DataVolumes of its
 * namespace, a few cluster settings and facts about the node it runs on, compute what
 * KubeVirt's virt-handler puts in the VMI's `LiveMigratable` condition and
 * `status.migrationMethod`, with KubeVirt's reason strings in KubeVirt's order, plus every
 * other reason found (for `vmigratectl check`) and the disks a block migration must copy
 * (libvirt's `migrate_disks`). No I/O: the daemon feeds it from its informer caches and writes
 * the condition only when vmig_checks_status_changed() says so.
 *
 * Place in the flow: model -> checks -> migration state machine (a VMIM for a VMI whose
 * condition is False fails before any target work). Target-side capability checks against the
 * target's libvirt live in the capability module.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "vmig/model.h"

G_BEGIN_DECLS

/* The VMI condition type the checks produce. */
#define VMIG_CHECKS_CONDITION_TYPE "LiveMigratable"
/* VMI annotation that allows bridge binding on the pod network to migrate (KubeVirt's). */
#define VMIG_CHECKS_ALLOW_POD_BRIDGE_ANNOTATION                                                    \
    "kubevirt.io/allow-pod-bridge-network-live-migration"
/* Node label prefix set by KubeVirt's node labeller for the host-model CPU a node offers. */
#define VMIG_CHECKS_HOST_MODEL_LABEL_PREFIX "host-model-cpu.node.kubevirt.io/"

/* Reasons, in the order KubeVirt evaluates them (the first one found is the condition's). */
typedef enum {
    VMIG_CHECKS_REASON_INTERFACE,          /* InterfaceNotLiveMigratable */
    VMIG_CHECKS_REASON_CPU_MODE,           /* CPUModeLiveMigratable (KubeVirt's spelling) */
    VMIG_CHECKS_REASON_HOST_DEVICE,        /* HostDeviceNotLiveMigratable */
    VMIG_CHECKS_REASON_SEV,                /* SEVNotLiveMigratable (SEV and SEV-SNP) */
    VMIG_CHECKS_REASON_TDX,                /* TDXNotLiveMigratable */
    VMIG_CHECKS_REASON_SECURE_EXECUTION,   /* SecureExecutionNotLiveMigratable */
    VMIG_CHECKS_REASON_HYPERV_PASSTHROUGH, /* HypervPassthroughNotLiveMigratable */
    VMIG_CHECKS_REASON_DISKS,              /* DisksNotLiveMigratable */
} VmigChecksReason;

/**
 * vmig_checks_reason_to_string:
 * Returns: (transfer none): KubeVirt's reason string ("InterfaceNotLiveMigratable", ...).
 */
const char *vmig_checks_reason_to_string(VmigChecksReason reason);
gboolean vmig_checks_reason_from_string(const char *s, VmigChecksReason *out);

/* What the checks need besides the VMI. Pointers are borrowed. */
typedef struct {
    const VmigModelVmi *vmi;
    GPtrArray *pvcs;         /* (nullable) VmigModelPvc * of the VMI's namespace */
    GPtrArray *data_volumes; /* (nullable) VmigModelDataVolume * of the VMI's namespace */
    /* KubeVirt CR spec.configuration.cpuModel: the model of VMIs that name none
     * (NULL: KubeVirt's default, host-model). */
    const char *cluster_cpu_model;
    /* Network binding plugins declared with a `migration` member in the KubeVirt CR. */
    GPtrArray *migratable_binding_plugins; /* (nullable) char * */
    /* vmigrated configuration (not KubeVirt API): host-passthrough VMIs are refused unless this
     * is set, because the guest sees the exact host CPU and only identical hosts can take it. */
    gboolean allow_host_passthrough;
    /* vmigrated configuration: copy non-shared PVCs and hostDisks by block migration instead of
     * refusing (a VMI mixing shared and non-shared volumes is refused either way). */
    gboolean block_migrate_non_shared;
    /* Node facts: whether they are known (a Node object was available) and the host-model CPU
     * the node offers (NULL: the node cannot guarantee host-model). Unknown facts refuse
     * nothing; the target capability check still compares CPUs. */
    gboolean node_facts_known;
    const char *node_host_model_cpu;
} VmigChecksInput;

typedef struct {
    VmigChecksReason reason;
    char *subject; /* the offending interface, volume or device ("default", "root"), or NULL */
    char *message; /* KubeVirt-style "cannot migrate VMI: ..." naming the subject */
} VmigChecksFinding;

typedef struct {
    gboolean migratable;
    VmigModelMigrationMethod method; /* LIVE or BLOCK, computed even when not migratable */
    GPtrArray *findings;             /* VmigChecksFinding *, KubeVirt order */
    GPtrArray *copy_volumes;         /* char *: volumes a block migration copies */
    GPtrArray *copy_disks;           /* char *: their disk targets ("vdb"), for migrate_disks */
    gint64 copy_bytes_known;         /* sum of the sizes the spec states (emptyDisk/hostDisk
                                        capacity); other sizes come from libvirt at run time */
} VmigChecksResult;

/**
 * vmig_checks_source:
 * @in: the VMI and its context
 *
 * Runs every source limitation check (KubeVirt: virt-handler calculateLiveMigrationCondition,
 * checkNetworkInterfacesForMigration, checkVolumesForMigration). Disk targets follow KubeVirt's
 * naming: per bus prefix (virtio "vd", sata/scsi/usb "sd"), numbered in
 * spec.domain.devices.disks order; the daemon may replace them with the names from the running
 * domain XML.
 *
 * Returns: (transfer full): the result; never NULL.
 */
VmigChecksResult *vmig_checks_source(const VmigChecksInput *in);
void vmig_checks_result_free(VmigChecksResult *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigChecksResult, vmig_checks_result_free)

/**
 * vmig_checks_condition:
 * Returns: (transfer full): the LiveMigratable condition KubeVirt would write: status "True"
 * with no reason, or "False" with the first finding's reason and message. Times are unset.
 */
VmigModelCondition *vmig_checks_condition(const VmigChecksResult *r);

/**
 * vmig_checks_condition_to_json:
 * @now: (nullable): RFC 3339 time for lastTransitionTime (JSON null when NULL)
 * Returns: (transfer full): {"type":"LiveMigratable","status":...,"reason":...,"message":...,
 * "lastProbeTime":null,"lastTransitionTime":...} as KubeVirt writes it.
 */
JsonNode *vmig_checks_condition_to_json(const VmigChecksResult *r, const char *now);

/**
 * vmig_checks_status_changed:
 * Returns: TRUE when @vmi's LiveMigratable condition (status, reason, message) or
 * status.migrationMethod differ from @r, i.e. the daemon has something to write.
 */
gboolean vmig_checks_status_changed(const VmigModelVmi *vmi, const VmigChecksResult *r);

/**
 * vmig_checks_write_status:
 * @vmi_node: the VMI object node, edited in place (other fields untouched)
 * Sets the LiveMigratable condition and status.migrationMethod.
 * Returns: TRUE on success; FALSE with VMIG_MODEL_ERROR_TYPE when status is malformed.
 */
gboolean vmig_checks_write_status(JsonNode *vmi_node, const VmigChecksResult *r, const char *now,
                                  GError **error);

/**
 * vmig_checks_disk_target:
 * Returns: (transfer full) (nullable): KubeVirt's target device name ("vda", "sdb") of the disk
 * named @disk_name, NULL when the VMI has no such disk.
 */
char *vmig_checks_disk_target(const VmigModelVmi *vmi, const char *disk_name);

/**
 * vmig_checks_node_host_model:
 * Returns: (transfer none) (nullable): the host-model CPU @node advertises through its
 * host-model-cpu.node.kubevirt.io/<model>=true label.
 */
const char *vmig_checks_node_host_model(const VmigModelNode *node);

/**
 * vmig_checks_eviction_warns:
 * @cluster_default: KubeVirt CR spec.configuration.evictionStrategy
 * Returns: TRUE when a Warning event is due: the VMI's effective evictionStrategy is
 * LiveMigrate and it is not migratable (LiveMigrateIfPossible and None never warn).
 */
gboolean vmig_checks_eviction_warns(const VmigModelVmi *vmi,
                                    VmigModelEvictionStrategy cluster_default,
                                    const VmigChecksResult *r);

G_END_DECLS
