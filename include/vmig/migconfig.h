/* vmig/migconfig.h - the effective migration configuration of one VMI.
 *
 * Pure: KubeVirt's MigrationConfiguration defaults, overridden by the KubeVirt CR's
 * spec.configuration.migrations, overridden per VMI by the MigrationPolicy that matches it
 * (migrations.kubevirt.io/v1alpha1). Also the unit conversions the migration call needs:
 * bandwidthPerMigration (bytes/s quantity) to libvirt's MiB/s, and the completion budget
 * (completionTimeoutPerGiB x data to move), and the split of a node's migration bandwidth
 * budget among its running migrations. No I/O.
 *
 * Place in the flow: model -> migconfig -> migration state machine / virt driver.
 */
#pragma once

#include <glib.h>

#include "vmig/model.h"

G_BEGIN_DECLS

#define VMIG_MIGCONFIG_ERROR vmig_migconfig_error_quark()
GQuark vmig_migconfig_error_quark(void);

typedef enum {
    VMIG_MIGCONFIG_ERROR_INVALID, /* a value cannot be used (negative bandwidth, ...) */
} VmigMigconfigError;

/* Hypervisor maximum for libvirt's migration bandwidth (MiB/s): QEMU's limit INT64_MAX bytes/s
 * expressed in MiB/s. "Unlimited" is sent as this value, explicitly, so QEMU's own default
 * (which is a limit) never applies silently. */
#define VMIG_MIGCONFIG_BANDWIDTH_MAX_MIBPS ((guint64)(G_MAXINT64 / (1024 * 1024)))

/* KubeVirt's defaults. */
#define VMIG_MIGCONFIG_DEFAULT_PARALLEL_PER_CLUSTER       5
#define VMIG_MIGCONFIG_DEFAULT_PARALLEL_OUTBOUND_PER_NODE 2
#define VMIG_MIGCONFIG_DEFAULT_COMPLETION_TIMEOUT_PER_GIB 150
#define VMIG_MIGCONFIG_DEFAULT_PROGRESS_TIMEOUT           150
#define VMIG_MIGCONFIG_DEFAULT_NODE_DRAIN_TAINT_KEY       "kubevirt.io/drain"

/* Where a value came from (for `vmigratectl check` and logs). */
typedef enum {
    VMIG_MIGCONFIG_FROM_DEFAULT,
    VMIG_MIGCONFIG_FROM_KUBEVIRT, /* KubeVirt CR spec.configuration.migrations */
    VMIG_MIGCONFIG_FROM_POLICY,   /* the matching MigrationPolicy */
} VmigMigconfigSource;

const char *vmig_migconfig_source_to_string(VmigMigconfigSource s);

typedef struct {
    gint64 parallel_migrations_per_cluster;
    gint64 parallel_outbound_migrations_per_node;
    VmigModelQuantity bandwidth_per_migration; /* bytes/s as given; 0 = unlimited */
    gboolean bandwidth_unlimited;
    guint64 bandwidth_mibps;           /* what libvirt gets (MiB/s); MAX when unlimited */
    gint64 completion_timeout_per_gib; /* seconds */
    gint64 progress_timeout;           /* seconds */
    gboolean allow_auto_converge;
    gboolean allow_post_copy;
    gboolean allow_workload_disruption; /* follows allow_post_copy unless set explicitly */
    gboolean disable_tls;
    char *node_drain_taint_key;
    gboolean unsafe_migration_override;
    gboolean match_selinux_level_on_migration;
    VmigModelEvictionStrategy eviction_strategy; /* cluster default (KubeVirt CR) */
    char *policy_name;                           /* matched MigrationPolicy, NULL when none */
    /* Source of each field, indexed by the bit position of VmigModelMigrationField. */
    VmigMigconfigSource source[VMIG_MODEL_MIG_N_FIELDS];
} VmigMigconfig;

/**
 * vmig_migconfig_new_defaults:
 * Returns: (transfer full): KubeVirt's defaults (see the VMIG_MIGCONFIG_DEFAULT_* values;
 * bandwidth unlimited, all booleans false).
 */
VmigMigconfig *vmig_migconfig_new_defaults(void);
void vmig_migconfig_free(VmigMigconfig *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigMigconfig, vmig_migconfig_free)

/**
 * vmig_migconfig_apply:
 * @c: configuration to override in place
 * @opts: fields that were set (opts->set) override @c; allowWorkloadDisruption, when not set
 *   at this or an earlier level, follows allowPostCopy
 * @from: recorded as the source of every field applied
 * @what: object name for messages ("KubeVirt kubevirt/kubevirt")
 *
 * Returns: TRUE, or FALSE with VMIG_MIGCONFIG_ERROR_INVALID naming @what and the field when
 * the bandwidth cannot be converted.
 */
gboolean vmig_migconfig_apply(VmigMigconfig *c, const VmigModelMigrationOptions *opts,
                              VmigMigconfigSource from, const char *what, GError **error);

/**
 * vmig_migconfig_match_policy:
 * @policies: VmigModelMigrationPolicy *
 * @namespace_labels: (nullable): labels of the VMI's namespace
 * @vmi_labels: (nullable): labels of the VMI
 *
 * A policy matches when every key/value of its namespaceSelector is in @namespace_labels and
 * every key/value of its virtualMachineInstanceSelector is in @vmi_labels (an empty selector
 * matches all). Among matches, the one with most selector labels wins; ties go to the name
 * that sorts first (strcmp).
 *
 * Returns: (transfer none) (nullable): the winning policy.
 */
const VmigModelMigrationPolicy *vmig_migconfig_match_policy(GPtrArray *policies,
                                                            GHashTable *namespace_labels,
                                                            GHashTable *vmi_labels);

/**
 * vmig_migconfig_effective:
 * @kubevirt: (nullable): the KubeVirt CR
 * @policies: (nullable): MigrationPolicy views
 * @namespace_labels: (nullable): labels of the VMI's namespace
 * @vmi: (nullable): the VMI (its labels select the policy)
 *
 * Defaults, then @kubevirt, then the matching policy.
 * Returns: (transfer full) (nullable): the configuration, or NULL with VMIG_MIGCONFIG_ERROR.
 */
VmigMigconfig *vmig_migconfig_effective(const VmigModelKubevirt *kubevirt, GPtrArray *policies,
                                        GHashTable *namespace_labels, const VmigModelVmi *vmi,
                                        GError **error);

/**
 * vmig_migconfig_bandwidth_mibps:
 * @q: bandwidthPerMigration in bytes per second
 * @field: field path for messages
 * @unlimited: (out): TRUE when @q is 0 (KubeVirt: unlimited)
 *
 * Converts to libvirt's MiB/s (virDomainMigrateSetMaxSpeed / VIR_MIGRATE_PARAM_BANDWIDTH):
 * rounded to the nearest MiB/s, halves up ("1536Ki" -> 2, "5.9999Mi" -> 6); any positive value
 * below 1 MiB/s gives 1, never 0 (which would mean unlimited); 0 gives
 * VMIG_MIGCONFIG_BANDWIDTH_MAX_MIBPS with @unlimited set; values above the maximum are capped.
 *
 * Returns: the MiB/s, or 0 with VMIG_MIGCONFIG_ERROR_INVALID for a negative quantity.
 */
guint64 vmig_migconfig_bandwidth_mibps(const VmigModelQuantity *q, const char *field,
                                       gboolean *unlimited, GError **error);

/**
 * vmig_migconfig_bandwidth_parse:
 * Parses the quantity text then converts it as above; "fast" and "-1Mi" are errors naming
 * @field.
 */
guint64 vmig_migconfig_bandwidth_parse(const char *text, const char *field, gboolean *unlimited,
                                       GError **error);

/**
 * vmig_migconfig_completion_timeout:
 * @per_gib: completionTimeoutPerGiB (seconds per GiB)
 * @data_bytes: guest memory plus the bytes of copied disks
 *
 * Returns: the completion budget in seconds: ceil(@per_gib x @data_bytes / 2^30), computed in
 * 128-bit integers (no floating point), at least 1 when both inputs are positive, saturating
 * at G_MAXINT64; 0 when either input is 0 or negative (no budget).
 */
gint64 vmig_migconfig_completion_timeout(gint64 per_gib, gint64 data_bytes);

/* One running outbound migration, as the node's bandwidth budget split sees it. */
typedef struct {
    guint64 cap_mibps;   /* its own limit in MiB/s (bandwidthPerMigration / MigrationPolicy);
                            0 = none */
    guint64 share_mibps; /* (out) the speed it gets, MiB/s */
} VmigMigconfigShare;

/**
 * vmig_migconfig_budget_split:
 * @budget_mibps: the node's budget (vmigrated --migration-bandwidth-budget) in MiB/s; 0 = off
 * @shares: (inout) (array length=n): the running migrations, in a stable order (the
 *   controller sorts them by VMIM key); cap_mibps in, share_mibps out
 * @n: how many
 *
 * Max-min fair split (water-filling): every migration gets the same share unless its own cap
 * is lower, in which case it keeps its cap and what it leaves is shared among the others.
 * Whole MiB/s only (libvirt's unit for virDomainMigrateSetMaxSpeed): the MiB/s that do not
 * divide evenly go one each to the first migrations in @shares order, so the shares add up to
 * exactly @budget_mibps unless every migration is held by its cap (then to the sum of caps).
 * They never add up to more than the budget, with one exception: libvirt has no speed below
 * 1 MiB/s (0 means unlimited), so when @budget_mibps < @n every migration gets 1 MiB/s and the
 * budget is exceeded; the controller avoids this by not starting a migration that would make
 * @n exceed the budget in MiB/s.
 * With the budget off every share is the migration's cap (0 = unlimited, as today).
 *
 * Returns: TRUE when the shares fit within the budget (always when it is off or @n is 0);
 *   FALSE when @budget_mibps < @n and the 1 MiB/s floor exceeds it.
 */
gboolean vmig_migconfig_budget_split(guint64 budget_mibps, VmigMigconfigShare *shares, gsize n);

G_END_DECLS
