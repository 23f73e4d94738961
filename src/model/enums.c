/* enums.c - the one string table of each model enum (see vmig/model.h). */
#include "model-private.h"

#include <string.h>

G_DEFINE_QUARK(vmig - model - error - quark, vmig_model_error)

gboolean
vmig_model_table_lookup(const char *const *table, gsize n, const char *s, int *out)
{
    if (!s)
        return FALSE;
    for (gsize i = 0; i < n; i++) {
        if (table[i] && strcmp(table[i], s) == 0) {
            *out = (int)i;
            return TRUE;
        }
    }
    return FALSE;
}

#define VMIG_MODEL_ENUM_IMPL(lower, Type, table)                                                   \
    const char *vmig_model_##lower##_to_string(Type v)                                             \
    {                                                                                              \
        if ((gsize)v >= G_N_ELEMENTS(table))                                                       \
            return "unknown";                                                                      \
        return table[v];                                                                           \
    }                                                                                              \
    gboolean vmig_model_##lower##_from_string(const char *s, Type *out)                            \
    {                                                                                              \
        int i;                                                                                     \
        if (!vmig_model_table_lookup(table, G_N_ELEMENTS(table), s, &i))                           \
            return FALSE;                                                                          \
        *out = (Type)i;                                                                            \
        return TRUE;                                                                               \
    }

static const char *const vmi_phase_names[] = {
    [VMIG_MODEL_VMI_PHASE_UNSET] = "",
    [VMIG_MODEL_VMI_PHASE_PENDING] = "Pending",
    [VMIG_MODEL_VMI_PHASE_SCHEDULING] = "Scheduling",
    [VMIG_MODEL_VMI_PHASE_SCHEDULED] = "Scheduled",
    [VMIG_MODEL_VMI_PHASE_RUNNING] = "Running",
    [VMIG_MODEL_VMI_PHASE_SUCCEEDED] = "Succeeded",
    [VMIG_MODEL_VMI_PHASE_FAILED] = "Failed",
    [VMIG_MODEL_VMI_PHASE_UNKNOWN] = "Unknown",
    [VMIG_MODEL_VMI_PHASE_WAITING_FOR_SYNC] = "WaitingForSync",
};
VMIG_MODEL_ENUM_IMPL(vmi_phase, VmigModelVmiPhase, vmi_phase_names)

static const char *const migration_phase_names[] = {
    [VMIG_MODEL_MIGRATION_PHASE_UNSET] = "",
    [VMIG_MODEL_MIGRATION_PHASE_PENDING] = "Pending",
    [VMIG_MODEL_MIGRATION_PHASE_SCHEDULING] = "Scheduling",
    [VMIG_MODEL_MIGRATION_PHASE_SCHEDULED] = "Scheduled",
    [VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET] = "PreparingTarget",
    [VMIG_MODEL_MIGRATION_PHASE_TARGET_READY] = "TargetReady",
    [VMIG_MODEL_MIGRATION_PHASE_RUNNING] = "Running",
    [VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED] = "Succeeded",
    [VMIG_MODEL_MIGRATION_PHASE_FAILED] = "Failed",
};
VMIG_MODEL_ENUM_IMPL(migration_phase, VmigModelMigrationPhase, migration_phase_names)

static const char *const migration_method_names[] = {
    [VMIG_MODEL_MIGRATION_METHOD_UNSET] = "",
    [VMIG_MODEL_MIGRATION_METHOD_LIVE] = "LiveMigration",
    [VMIG_MODEL_MIGRATION_METHOD_BLOCK] = "BlockMigration",
};
VMIG_MODEL_ENUM_IMPL(migration_method, VmigModelMigrationMethod, migration_method_names)

static const char *const eviction_strategy_names[] = {
    [VMIG_MODEL_EVICTION_UNSET] = "",
    [VMIG_MODEL_EVICTION_NONE] = "None",
    [VMIG_MODEL_EVICTION_LIVE_MIGRATE] = "LiveMigrate",
    [VMIG_MODEL_EVICTION_LIVE_MIGRATE_IF_POSSIBLE] = "LiveMigrateIfPossible",
    [VMIG_MODEL_EVICTION_EXTERNAL] = "External",
};
VMIG_MODEL_ENUM_IMPL(eviction_strategy, VmigModelEvictionStrategy, eviction_strategy_names)

/* The member name of the interface object that selects the binding. */
static const char *const binding_names[] = {
    [VMIG_MODEL_BINDING_BRIDGE] = "bridge",  [VMIG_MODEL_BINDING_MASQUERADE] = "masquerade",
    [VMIG_MODEL_BINDING_PASST] = "passt",    [VMIG_MODEL_BINDING_SRIOV] = "sriov",
    [VMIG_MODEL_BINDING_SLIRP] = "slirp",    [VMIG_MODEL_BINDING_MACVTAP] = "macvtap",
    [VMIG_MODEL_BINDING_PLUGIN] = "binding",
};
VMIG_MODEL_ENUM_IMPL(binding, VmigModelBinding, binding_names)

/* The member name of the volume object that selects the source. */
static const char *const volume_kind_names[] = {
    [VMIG_MODEL_VOLUME_CONTAINER_DISK] = "containerDisk",
    [VMIG_MODEL_VOLUME_PERSISTENT_VOLUME_CLAIM] = "persistentVolumeClaim",
    [VMIG_MODEL_VOLUME_DATA_VOLUME] = "dataVolume",
    [VMIG_MODEL_VOLUME_HOST_DISK] = "hostDisk",
    [VMIG_MODEL_VOLUME_CLOUD_INIT_NO_CLOUD] = "cloudInitNoCloud",
    [VMIG_MODEL_VOLUME_CLOUD_INIT_CONFIG_DRIVE] = "cloudInitConfigDrive",
    [VMIG_MODEL_VOLUME_CONFIG_MAP] = "configMap",
    [VMIG_MODEL_VOLUME_SECRET] = "secret",
    [VMIG_MODEL_VOLUME_SERVICE_ACCOUNT] = "serviceAccount",
    [VMIG_MODEL_VOLUME_DOWNWARD_API] = "downwardAPI",
    [VMIG_MODEL_VOLUME_DOWNWARD_METRICS] = "downwardMetrics",
    [VMIG_MODEL_VOLUME_EMPTY_DISK] = "emptyDisk",
    [VMIG_MODEL_VOLUME_EPHEMERAL] = "ephemeral",
    [VMIG_MODEL_VOLUME_SYSPREP] = "sysprep",
    [VMIG_MODEL_VOLUME_MEMORY_DUMP] = "memoryDump",
};
VMIG_MODEL_ENUM_IMPL(volume_kind, VmigModelVolumeKind, volume_kind_names)

static const char *const launch_security_names[] = {
    [VMIG_MODEL_LAUNCH_SECURITY_NONE] = "none",
    [VMIG_MODEL_LAUNCH_SECURITY_SEV] = "sev",
    [VMIG_MODEL_LAUNCH_SECURITY_SNP] = "snp",
    [VMIG_MODEL_LAUNCH_SECURITY_TDX] = "tdx",
    [VMIG_MODEL_LAUNCH_SECURITY_SECURE_EXECUTION] = "secureExecution",
};

const char *
vmig_model_launch_security_to_string(VmigModelLaunchSecurity v)
{
    if ((gsize)v >= G_N_ELEMENTS(launch_security_names))
        return "unknown";
    return launch_security_names[v];
}

static const char *const kind_names[] = {
    [VMIG_MODEL_KIND_UNKNOWN] = "unknown",
    [VMIG_MODEL_KIND_VMI] = "VirtualMachineInstance",
    [VMIG_MODEL_KIND_VMIM] = "VirtualMachineInstanceMigration",
    [VMIG_MODEL_KIND_PVC] = "PersistentVolumeClaim",
    [VMIG_MODEL_KIND_DATA_VOLUME] = "DataVolume",
    [VMIG_MODEL_KIND_NODE] = "Node",
    [VMIG_MODEL_KIND_NAMESPACE] = "Namespace",
    [VMIG_MODEL_KIND_KUBEVIRT] = "KubeVirt",
    [VMIG_MODEL_KIND_MIGRATION_POLICY] = "MigrationPolicy",
};

const char *
vmig_model_kind_to_string(VmigModelKind v)
{
    if ((gsize)v >= G_N_ELEMENTS(kind_names))
        return "unknown";
    return kind_names[v];
}

/* API group (apiVersion without "/version"; "" for core) of each kind. */
static const char *const kind_groups[] = {
    [VMIG_MODEL_KIND_UNKNOWN] = NULL,
    [VMIG_MODEL_KIND_VMI] = "kubevirt.io",
    [VMIG_MODEL_KIND_VMIM] = "kubevirt.io",
    [VMIG_MODEL_KIND_PVC] = "",
    [VMIG_MODEL_KIND_DATA_VOLUME] = "cdi.kubevirt.io",
    [VMIG_MODEL_KIND_NODE] = "",
    [VMIG_MODEL_KIND_NAMESPACE] = "",
    [VMIG_MODEL_KIND_KUBEVIRT] = "kubevirt.io",
    [VMIG_MODEL_KIND_MIGRATION_POLICY] = "migrations.kubevirt.io",
};

VmigModelKind
vmig_model_kind_of(JsonNode *node)
{
    if (!node || !JSON_NODE_HOLDS_OBJECT(node))
        return VMIG_MODEL_KIND_UNKNOWN;
    JsonObject *o = json_node_get_object(node);
    JsonNode *an = json_object_get_member(o, "apiVersion");
    JsonNode *kn = json_object_get_member(o, "kind");
    /* Untrusted input: only string members count (json-glib's typed getters warn otherwise). */
    if (!an || !kn || json_node_get_value_type(an) != G_TYPE_STRING ||
        json_node_get_value_type(kn) != G_TYPE_STRING)
        return VMIG_MODEL_KIND_UNKNOWN;
    const char *api = json_node_get_string(an);
    const char *kind = json_node_get_string(kn);
    const char *slash = api ? strchr(api, '/') : NULL;
    g_autofree char *group = slash ? g_strndup(api, slash - api) : g_strdup("");
    int k;
    if (!vmig_model_table_lookup(kind_names, G_N_ELEMENTS(kind_names), kind, &k) ||
        k == VMIG_MODEL_KIND_UNKNOWN)
        return VMIG_MODEL_KIND_UNKNOWN;
    if (g_strcmp0(kind_groups[k], group) != 0)
        return VMIG_MODEL_KIND_UNKNOWN;
    return (VmigModelKind)k;
}

gboolean
vmig_model_migration_phase_is_final(VmigModelMigrationPhase phase)
{
    return phase == VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED ||
           phase == VMIG_MODEL_MIGRATION_PHASE_FAILED;
}

gboolean
vmig_model_volume_kind_is_generated(VmigModelVolumeKind kind)
{
    switch (kind) {
    case VMIG_MODEL_VOLUME_PERSISTENT_VOLUME_CLAIM:
    case VMIG_MODEL_VOLUME_DATA_VOLUME:
    case VMIG_MODEL_VOLUME_HOST_DISK:
    case VMIG_MODEL_VOLUME_MEMORY_DUMP:
        return FALSE;
    default:
        return TRUE;
    }
}
