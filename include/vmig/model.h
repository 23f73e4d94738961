/* vmig/model.h - typed, validated views of the KubeVirt and Kubernetes objects vmigrated reads.
 *
 * The Kubernetes client (vmig/kube.h) hands over objects as json-glib JsonNodes; this module
 * turns them into C structs with the KubeVirt field names (spec.vmiName, status.migrationState,
 * ...), checks what must never reach a file path or a libvirt call (DNS-1123 names, UUIDs,
 * Kubernetes quantities parsed like apimachinery's resource.Quantity) and reports bad input as a
 * GError in VMIG_MODEL_ERROR naming the object, the field and the value. Every view keeps a
 * reference to the JsonNode it came from, so the status writers below change only the fields
 * vmigrated owns and an object written back keeps every field we do not know.
 *
 * Place in the flow: kube -> model -> checks / migconfig -> migration state machine. Also used
 * offline by `vmigratectl check -f` through the YAML/JSON loader at the end of this header.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define VMIG_MODEL_ERROR vmig_model_error_quark()
GQuark vmig_model_error_quark(void);

typedef enum {
    VMIG_MODEL_ERROR_MISSING, /* a required field is absent */
    VMIG_MODEL_ERROR_TYPE,    /* a field has the wrong JSON type */
    VMIG_MODEL_ERROR_INVALID, /* a value is malformed: name, UID, enum string, quantity */
    VMIG_MODEL_ERROR_RANGE,   /* a value is out of range: negative, overflow, too deep */
    VMIG_MODEL_ERROR_KIND,    /* the object is not of the expected apiVersion/kind */
    VMIG_MODEL_ERROR_PARSE,   /* YAML/JSON syntax error (loader) */
    VMIG_MODEL_ERROR_IO,      /* a file could not be read (loader) */
} VmigModelError;

/* ---- enums: each has ONE string table in src/model/enums.c ---------------------------- */

/* VMI status.phase (KubeVirt VirtualMachineInstancePhase). */
typedef enum {
    VMIG_MODEL_VMI_PHASE_UNSET, /* "" */
    VMIG_MODEL_VMI_PHASE_PENDING,
    VMIG_MODEL_VMI_PHASE_SCHEDULING,
    VMIG_MODEL_VMI_PHASE_SCHEDULED,
    VMIG_MODEL_VMI_PHASE_RUNNING,
    VMIG_MODEL_VMI_PHASE_SUCCEEDED,
    VMIG_MODEL_VMI_PHASE_FAILED,
    VMIG_MODEL_VMI_PHASE_UNKNOWN,
    VMIG_MODEL_VMI_PHASE_WAITING_FOR_SYNC,
} VmigModelVmiPhase;

/* VMIM status.phase (KubeVirt VirtualMachineInstanceMigrationPhase). */
typedef enum {
    VMIG_MODEL_MIGRATION_PHASE_UNSET, /* "" */
    VMIG_MODEL_MIGRATION_PHASE_PENDING,
    VMIG_MODEL_MIGRATION_PHASE_SCHEDULING,
    VMIG_MODEL_MIGRATION_PHASE_SCHEDULED,
    VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET,
    VMIG_MODEL_MIGRATION_PHASE_TARGET_READY,
    VMIG_MODEL_MIGRATION_PHASE_RUNNING,
    VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED,
    VMIG_MODEL_MIGRATION_PHASE_FAILED,
} VmigModelMigrationPhase;

/* VMI status.migrationMethod. */
typedef enum {
    VMIG_MODEL_MIGRATION_METHOD_UNSET, /* "" */
    VMIG_MODEL_MIGRATION_METHOD_LIVE,  /* "LiveMigration": disks are shared, nothing copied */
    VMIG_MODEL_MIGRATION_METHOD_BLOCK, /* "BlockMigration": local disks copied (NBD) */
} VmigModelMigrationMethod;

/* spec.evictionStrategy of a VMI, and the cluster default in the KubeVirt CR. */
typedef enum {
    VMIG_MODEL_EVICTION_UNSET, /* "": the cluster default applies */
    VMIG_MODEL_EVICTION_NONE,
    VMIG_MODEL_EVICTION_LIVE_MIGRATE,
    VMIG_MODEL_EVICTION_LIVE_MIGRATE_IF_POSSIBLE,
    VMIG_MODEL_EVICTION_EXTERNAL,
} VmigModelEvictionStrategy;

/* How an interface of spec.domain.devices.interfaces is bound (the member naming it). */
typedef enum {
    VMIG_MODEL_BINDING_BRIDGE,     /* bridge: {} (also the default when no member is given) */
    VMIG_MODEL_BINDING_MASQUERADE, /* masquerade: {} */
    VMIG_MODEL_BINDING_PASST,      /* passt: {} (core binding of older KubeVirt) */
    VMIG_MODEL_BINDING_SRIOV,      /* sriov: {} */
    VMIG_MODEL_BINDING_SLIRP,      /* slirp: {} */
    VMIG_MODEL_BINDING_MACVTAP,    /* macvtap: {} */
    VMIG_MODEL_BINDING_PLUGIN,     /* binding: {name: ...} (network binding plugin) */
} VmigModelBinding;

/* The volume source member of a spec.volumes entry. */
typedef enum {
    VMIG_MODEL_VOLUME_CONTAINER_DISK,
    VMIG_MODEL_VOLUME_PERSISTENT_VOLUME_CLAIM,
    VMIG_MODEL_VOLUME_DATA_VOLUME,
    VMIG_MODEL_VOLUME_HOST_DISK,
    VMIG_MODEL_VOLUME_CLOUD_INIT_NO_CLOUD,
    VMIG_MODEL_VOLUME_CLOUD_INIT_CONFIG_DRIVE,
    VMIG_MODEL_VOLUME_CONFIG_MAP,
    VMIG_MODEL_VOLUME_SECRET,
    VMIG_MODEL_VOLUME_SERVICE_ACCOUNT,
    VMIG_MODEL_VOLUME_DOWNWARD_API,
    VMIG_MODEL_VOLUME_DOWNWARD_METRICS,
    VMIG_MODEL_VOLUME_EMPTY_DISK,
    VMIG_MODEL_VOLUME_EPHEMERAL,
    VMIG_MODEL_VOLUME_SYSPREP,
    VMIG_MODEL_VOLUME_MEMORY_DUMP,
} VmigModelVolumeKind;

/* spec.domain.launchSecurity. */
typedef enum {
    VMIG_MODEL_LAUNCH_SECURITY_NONE,
    VMIG_MODEL_LAUNCH_SECURITY_SEV,              /* launchSecurity.sev */
    VMIG_MODEL_LAUNCH_SECURITY_SNP,              /* launchSecurity.snp */
    VMIG_MODEL_LAUNCH_SECURITY_TDX,              /* launchSecurity.tdx */
    VMIG_MODEL_LAUNCH_SECURITY_SECURE_EXECUTION, /* launchSecurity: {} (IBM Z Secure Execution) */
} VmigModelLaunchSecurity;

/* PVC access modes as a bit set. */
typedef enum {
    VMIG_MODEL_ACCESS_RWO = 1 << 0,  /* ReadWriteOnce */
    VMIG_MODEL_ACCESS_ROX = 1 << 1,  /* ReadOnlyMany */
    VMIG_MODEL_ACCESS_RWX = 1 << 2,  /* ReadWriteMany */
    VMIG_MODEL_ACCESS_RWOP = 1 << 3, /* ReadWriteOncePod */
} VmigModelAccessMode;

/* Kind of a loaded document, from apiVersion (group) + kind. */
typedef enum {
    VMIG_MODEL_KIND_UNKNOWN,
    VMIG_MODEL_KIND_VMI,              /* kubevirt.io VirtualMachineInstance */
    VMIG_MODEL_KIND_VMIM,             /* kubevirt.io VirtualMachineInstanceMigration */
    VMIG_MODEL_KIND_PVC,              /* v1 PersistentVolumeClaim */
    VMIG_MODEL_KIND_DATA_VOLUME,      /* cdi.kubevirt.io DataVolume */
    VMIG_MODEL_KIND_NODE,             /* v1 Node */
    VMIG_MODEL_KIND_NAMESPACE,        /* v1 Namespace */
    VMIG_MODEL_KIND_KUBEVIRT,         /* kubevirt.io KubeVirt */
    VMIG_MODEL_KIND_MIGRATION_POLICY, /* migrations.kubevirt.io MigrationPolicy */
} VmigModelKind;

/* Conversions. to_string returns a static string ("" for UNSET values, "unknown" when out of
 * range); from_string returns FALSE (and leaves @out alone) for names not in the table. */
const char *vmig_model_vmi_phase_to_string(VmigModelVmiPhase v);
gboolean vmig_model_vmi_phase_from_string(const char *s, VmigModelVmiPhase *out);
const char *vmig_model_migration_phase_to_string(VmigModelMigrationPhase v);
gboolean vmig_model_migration_phase_from_string(const char *s, VmigModelMigrationPhase *out);
const char *vmig_model_migration_method_to_string(VmigModelMigrationMethod v);
gboolean vmig_model_migration_method_from_string(const char *s, VmigModelMigrationMethod *out);
const char *vmig_model_eviction_strategy_to_string(VmigModelEvictionStrategy v);
gboolean vmig_model_eviction_strategy_from_string(const char *s, VmigModelEvictionStrategy *out);
const char *vmig_model_binding_to_string(VmigModelBinding v);
gboolean vmig_model_binding_from_string(const char *s, VmigModelBinding *out);
const char *vmig_model_volume_kind_to_string(VmigModelVolumeKind v);
gboolean vmig_model_volume_kind_from_string(const char *s, VmigModelVolumeKind *out);
const char *vmig_model_launch_security_to_string(VmigModelLaunchSecurity v);
const char *vmig_model_kind_to_string(VmigModelKind v);

/**
 * vmig_model_migration_phase_is_final:
 * Returns: TRUE for Succeeded and Failed (KubeVirt IsFinal()).
 */
gboolean vmig_model_migration_phase_is_final(VmigModelMigrationPhase phase);

/**
 * vmig_model_volume_kind_is_generated:
 * Returns: TRUE for volumes that live on the node and are copied by block migration
 * (containerDisk, cloud-init, configMap, secret, serviceAccount, downwardAPI,
 * downwardMetrics, emptyDisk, ephemeral, sysprep); FALSE for PVC, DataVolume, hostDisk and
 * memoryDump, whose sharing is decided by their storage.
 */
gboolean vmig_model_volume_kind_is_generated(VmigModelVolumeKind kind);

/* ---- names and UIDs ------------------------------------------------------------------- */

/**
 * vmig_model_validate_name:
 * @value: (nullable): an object name (metadata.name, spec.vmiName, claimName, node name)
 * @field: field path used in the message ("metadata.name")
 *
 * Checks a DNS-1123 subdomain: 1..253 characters of [a-z0-9.-], each dot-separated label
 * starting and ending with [a-z0-9]. So "/", "..", NUL (impossible in a C string, refused by
 * the JSON layer), uppercase and empty names are refused before they can reach a file path.
 *
 * Returns: TRUE when valid; FALSE with VMIG_MODEL_ERROR_INVALID naming @field and the value.
 */
gboolean vmig_model_validate_name(const char *value, const char *field, GError **error);

/**
 * vmig_model_validate_namespace:
 * Like vmig_model_validate_name() for a DNS-1123 label (namespaces): 1..63 characters of
 * [a-z0-9-], starting and ending with [a-z0-9]; no dots.
 */
gboolean vmig_model_validate_namespace(const char *value, const char *field, GError **error);

/**
 * vmig_model_validate_uid:
 * Checks an RFC 4122 textual UUID (8-4-4-4-12 hex digits, either case), the form of
 * metadata.uid and status.migrationState.migrationUid.
 * Returns: TRUE when valid; FALSE with VMIG_MODEL_ERROR_INVALID.
 */
gboolean vmig_model_validate_uid(const char *value, const char *field, GError **error);

/* ---- quantities ----------------------------------------------------------------------- */

/* Suffix family of a quantity, as apimachinery's resource.Format. */
typedef enum {
    VMIG_MODEL_QUANTITY_DECIMAL_SI,       /* "", n, u, m, k, M, G, T, P, E */
    VMIG_MODEL_QUANTITY_BINARY_SI,        /* Ki, Mi, Gi, Ti, Pi, Ei */
    VMIG_MODEL_QUANTITY_DECIMAL_EXPONENT, /* e3, E-6 */
} VmigModelQuantityFormat;

/* An exact Kubernetes quantity: |value| = units + nanos / 10^9. As in apimachinery, values
 * more precise than 10^-9 are rounded up (away from zero) to the next nano, and BinarySI values
 * above 2^63-1 saturate at 2^63-1. Any other value above 2^63-1 units is refused (apimachinery
 * would keep it as an arbitrary-precision decimal; no field vmigrated reads can use one). */
typedef struct {
    gboolean negative;
    gint64 units;  /* 0 .. G_MAXINT64 */
    guint32 nanos; /* 0 .. 999999999 */
    VmigModelQuantityFormat format;
} VmigModelQuantity;

/**
 * vmig_model_quantity_parse:
 * @text: the quantity string ("64Mi", "1.5Gi", "500m", "1e3", "-1")
 * @field: (nullable): field path for messages, e.g.
 * "spec.configuration.migrations.bandwidthPerMigration"
 * @out: (out): the value
 *
 * Parses exactly the grammar of k8s.io/apimachinery resource.ParseQuantity: optional sign,
 * digits with an optional decimal fraction (".5" and "1." are accepted), then one suffix:
 * decimal SI (n u m "" k M G T P E), binary SI (Ki Mi Gi Ti Pi Ei) or a decimal exponent
 * (e/E followed by a signed integer). Integer arithmetic only (128-bit), no floating point.
 *
 * Returns: TRUE on success; FALSE with VMIG_MODEL_ERROR_INVALID (malformed, unknown suffix)
 * or VMIG_MODEL_ERROR_RANGE (too large), the message naming @field and @text.
 */
gboolean vmig_model_quantity_parse(const char *text, const char *field, VmigModelQuantity *out,
                                   GError **error);

/**
 * vmig_model_quantity_from_json:
 * @node: (nullable): a JSON string ("1Gi", surrounding white space trimmed as
 *   Quantity.UnmarshalJSON does) or number (1073741824); numbers with a fraction
 *   are formatted with 17 significant digits and parsed as a string
 * @field: field path for messages
 * @allow_negative: FALSE refuses values below zero (VMIG_MODEL_ERROR_RANGE)
 *
 * Returns: TRUE on success; FALSE with VMIG_MODEL_ERROR_TYPE/INVALID/RANGE naming @field.
 */
gboolean vmig_model_quantity_from_json(JsonNode *node, const char *field, gboolean allow_negative,
                                       VmigModelQuantity *out, GError **error);

/**
 * vmig_model_quantity_ceil:
 * Returns: the value rounded up to an integer (apimachinery Quantity.Value()), negative for
 * negative quantities; saturates at G_MAXINT64.
 */
gint64 vmig_model_quantity_ceil(const VmigModelQuantity *q);

/**
 * vmig_model_quantity_is_zero:
 * Returns: TRUE when the value is exactly 0.
 */
gboolean vmig_model_quantity_is_zero(const VmigModelQuantity *q);

/* ---- shared pieces -------------------------------------------------------------------- */

/* metadata of any object. Strings are owned copies; labels/annotations map string -> string
 * (never NULL, possibly empty). namespace is NULL for cluster-scoped objects. */
typedef struct {
    char *name;
    char *namespace;
    char *uid;              /* NULL when absent */
    char *resource_version; /* NULL when absent */
    GHashTable *labels;
    GHashTable *annotations;
} VmigModelMeta;

/* One entry of status.conditions (VMI or VMIM). */
typedef struct {
    char *type;
    char *status; /* "True", "False", "Unknown" */
    char *reason; /* NULL when absent */
    char *message;
    char *last_transition_time;
    char *last_probe_time;
} VmigModelCondition;

/* Frees a condition and its strings (NULL-safe). */
void vmig_model_condition_free(VmigModelCondition *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigModelCondition, vmig_model_condition_free)

/* status.migrationState of a VMI, and of a VMIM (same KubeVirt type). */
typedef struct {
    char *migration_uid; /* migrationUid */
    char *source_node;   /* sourceNode */
    char *target_node;   /* targetNode */
    char *target_node_address;
    char *target_pod;
    char *start_timestamp;
    char *end_timestamp;
    char *mode;         /* "PreCopy", "PostCopy", NULL */
    char *abort_status; /* "Succeeded", "Failed", "Aborting", NULL */
    char *failure_reason;
    gboolean completed;
    gboolean failed;
    gboolean abort_requested;
    GHashTable *target_direct_migration_node_ports; /* string port key -> GINT_TO_POINTER(port) */
} VmigModelMigrationState;

/* Frees a migration state (NULL-safe). */
void vmig_model_migration_state_free(VmigModelMigrationState *s);

/* ---- VirtualMachineInstance ----------------------------------------------------------- */

typedef struct {
    char *name;
    VmigModelBinding binding;
    char *binding_plugin; /* binding.name when binding == PLUGIN */
} VmigModelInterface;

typedef struct {
    char *name;
    gboolean pod;              /* pod: {} */
    char *multus_network_name; /* multus.networkName, NULL otherwise */
} VmigModelNetwork;

typedef struct {
    char *name;
    char *device;       /* "disk", "cdrom", "lun" */
    char *bus;          /* as written, or NULL: KubeVirt's default for the device */
    gboolean read_only; /* a cdrom is read-only unless readonly: false */
} VmigModelDisk;

typedef struct {
    char *name;
    VmigModelVolumeKind kind;
    char *claim_name;          /* persistentVolumeClaim.claimName, dataVolume.name,
                                  ephemeral.persistentVolumeClaim.claimName, memoryDump.claimName */
    char *host_disk_path;      /* hostDisk.path */
    gboolean host_disk_shared; /* hostDisk.shared */
    gint64 capacity_bytes;     /* emptyDisk.capacity / hostDisk.capacity, 0 when unknown */
} VmigModelVolume;

typedef struct {
    JsonNode *node; /* the object as received (a reference; write-back edits it in place) */
    VmigModelMeta meta;
    /* spec */
    char *cpu_model;         /* spec.domain.cpu.model, NULL when absent */
    GPtrArray *cpu_features; /* spec.domain.cpu.features[].name (char *) */
    gint64 memory_bytes;     /* spec.domain.memory.guest, else resources.requests.memory,
                                else resources.limits.memory; 0 when none is given */
    GPtrArray *interfaces;   /* VmigModelInterface * */
    GPtrArray *networks;     /* VmigModelNetwork * */
    GPtrArray *disks;        /* VmigModelDisk *, spec.domain.devices.disks order */
    GPtrArray *volumes;      /* VmigModelVolume *, spec.volumes order */
    GPtrArray *host_devices; /* spec.domain.devices.hostDevices[].name (char *) */
    GPtrArray *gpus;         /* spec.domain.devices.gpus[].name (char *) */
    VmigModelLaunchSecurity launch_security;
    gboolean hyperv_passthrough; /* spec.domain.features.hypervPassthrough.enabled */
    VmigModelEvictionStrategy eviction_strategy;
    GHashTable *node_selector; /* spec.nodeSelector */
    /* status */
    char *node_name;
    VmigModelVmiPhase phase;
    GPtrArray *conditions; /* VmigModelCondition * */
    VmigModelMigrationMethod migration_method;
    char *evacuation_node_name;
    VmigModelMigrationState *migration_state; /* NULL when absent */
} VmigModelVmi;

/**
 * vmig_model_vmi_from_json:
 * @node: (transfer none): a kubevirt.io/v1 VirtualMachineInstance; a reference is taken
 *
 * Returns: (transfer full) (nullable): the view, or NULL with a VMIG_MODEL_ERROR naming
 * "VirtualMachineInstance ns/name", the field path and the value.
 */
VmigModelVmi *vmig_model_vmi_from_json(JsonNode *node, GError **error);
void vmig_model_vmi_free(VmigModelVmi *vmi);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigModelVmi, vmig_model_vmi_free)

/**
 * vmig_model_vmi_find_condition:
 * Returns: (transfer none) (nullable): the status.conditions entry of @type.
 */
const VmigModelCondition *vmig_model_vmi_find_condition(const VmigModelVmi *vmi, const char *type);

/**
 * vmig_model_vmi_find_volume / vmig_model_vmi_find_disk:
 * Returns: (transfer none) (nullable): the entry named @name.
 */
const VmigModelVolume *vmig_model_vmi_find_volume(const VmigModelVmi *vmi, const char *name);
const VmigModelDisk *vmig_model_vmi_find_disk(const VmigModelVmi *vmi, const char *name);

/* ---- VirtualMachineInstanceMigration -------------------------------------------------- */

typedef struct {
    VmigModelMigrationPhase phase;
    char *timestamp; /* phaseTransitionTimestamp */
} VmigModelPhaseTransition;

typedef struct {
    JsonNode *node;
    VmigModelMeta meta;
    char *vmi_name;                  /* spec.vmiName */
    GHashTable *added_node_selector; /* spec.addedNodeSelector, never NULL */
    VmigModelMigrationPhase phase;   /* status.phase */
    GPtrArray *phase_transitions; /* VmigModelPhaseTransition *, status.phaseTransitionTimestamps */
    VmigModelMigrationState *migration_state; /* status.migrationState, NULL when absent */
    GPtrArray *conditions;                    /* VmigModelCondition * */
    gboolean deleting;                        /* metadata.deletionTimestamp set */
} VmigModelVmim;

/**
 * vmig_model_vmim_from_json:
 * @node: (transfer none): a kubevirt.io/v1 VirtualMachineInstanceMigration; a reference is taken
 * Returns: (transfer full) (nullable): the view, or NULL with a VMIG_MODEL_ERROR.
 */
VmigModelVmim *vmig_model_vmim_from_json(JsonNode *node, GError **error);
void vmig_model_vmim_free(VmigModelVmim *vmim);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigModelVmim, vmig_model_vmim_free)

/* ---- PersistentVolumeClaim, DataVolume ------------------------------------------------ */

typedef struct {
    JsonNode *node;
    VmigModelMeta meta;
    guint spec_access_modes;   /* VmigModelAccessMode bits of spec.accessModes */
    guint status_access_modes; /* ... of status.accessModes (what the bound volume grants) */
    char *phase;               /* status.phase: "Pending", "Bound", "Lost", NULL */
    char *volume_mode;         /* spec.volumeMode: "Filesystem", "Block", NULL */
    char *volume_name;         /* spec.volumeName */
    gint64 capacity_bytes;     /* status.capacity.storage, 0 when absent */
} VmigModelPvc;

/**
 * vmig_model_pvc_from_json:
 * @node: (transfer none): a v1 PersistentVolumeClaim; a reference is taken
 * Returns: (transfer full) (nullable): the view, or NULL with a VMIG_MODEL_ERROR naming
 * "PersistentVolumeClaim ns/name" and the field (access modes must be Kubernetes' names).
 */
VmigModelPvc *vmig_model_pvc_from_json(JsonNode *node, GError **error);
void vmig_model_pvc_free(VmigModelPvc *pvc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigModelPvc, vmig_model_pvc_free)

/**
 * vmig_model_pvc_is_shared:
 * Returns: TRUE when the PVC is Bound and its status.accessModes contain ReadWriteMany (the
 * KubeVirt rule for a live-migratable PVC).
 */
gboolean vmig_model_pvc_is_shared(const VmigModelPvc *pvc);

typedef struct {
    JsonNode *node;
    VmigModelMeta meta;
    char *claim_name; /* status.claimName when set, else metadata.name (CDI names the PVC after the
                         DV) */
    char *phase;      /* status.phase */
} VmigModelDataVolume;

/**
 * vmig_model_data_volume_from_json:
 * @node: (transfer none): a cdi.kubevirt.io DataVolume; a reference is taken
 * Returns: (transfer full) (nullable): the view (claim_name resolved), or NULL with a
 * VMIG_MODEL_ERROR.
 */
VmigModelDataVolume *vmig_model_data_volume_from_json(JsonNode *node, GError **error);
void vmig_model_data_volume_free(VmigModelDataVolume *dv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigModelDataVolume, vmig_model_data_volume_free)

/* ---- Node, Namespace ------------------------------------------------------------------ */

typedef struct {
    char *key;
    char *value; /* NULL when absent */
    char *effect;
} VmigModelTaint;

typedef struct {
    char *type; /* "InternalIP", "Hostname", ... */
    char *address;
} VmigModelNodeAddress;

typedef struct {
    JsonNode *node;
    VmigModelMeta meta;
    gboolean unschedulable;          /* spec.unschedulable */
    GPtrArray *taints;               /* VmigModelTaint * */
    GPtrArray *addresses;            /* VmigModelNodeAddress * */
    GHashTable *allocatable;         /* status.allocatable: resource -> raw quantity string */
    gint64 allocatable_memory_bytes; /* status.allocatable.memory, 0 when absent */
} VmigModelNode;

/**
 * vmig_model_node_from_json:
 * @node: (transfer none): a v1 Node; a reference is taken
 * Returns: (transfer full) (nullable): the view, or NULL with a VMIG_MODEL_ERROR naming
 * "Node name" and the field (status.allocatable.memory must be a quantity).
 */
VmigModelNode *vmig_model_node_from_json(JsonNode *node, GError **error);
void vmig_model_node_free(VmigModelNode *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigModelNode, vmig_model_node_free)

/**
 * vmig_model_node_has_taint:
 * Returns: TRUE when @n has a taint with @key (any value and effect).
 */
gboolean vmig_model_node_has_taint(const VmigModelNode *n, const char *key);

typedef struct {
    JsonNode *node;
    VmigModelMeta meta; /* the labels feed MigrationPolicy namespaceSelector */
} VmigModelNamespace;

/**
 * vmig_model_namespace_from_json:
 * @node: (transfer none): a v1 Namespace; a reference is taken
 * Returns: (transfer full) (nullable): the view (name checked as a DNS-1123 label), or NULL
 * with a VMIG_MODEL_ERROR.
 */
VmigModelNamespace *vmig_model_namespace_from_json(JsonNode *node, GError **error);
void vmig_model_namespace_free(VmigModelNamespace *ns);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigModelNamespace, vmig_model_namespace_free)

/* ---- migration options: KubeVirt CR spec.configuration.migrations and MigrationPolicy ---- */

/* Which fields of VmigModelMigrationOptions were present (bit set). */
typedef enum {
    VMIG_MODEL_MIG_PARALLEL_PER_CLUSTER = 1 << 0,       /* parallelMigrationsPerCluster */
    VMIG_MODEL_MIG_PARALLEL_OUTBOUND_PER_NODE = 1 << 1, /* parallelOutboundMigrationsPerNode */
    VMIG_MODEL_MIG_BANDWIDTH = 1 << 2,                  /* bandwidthPerMigration */
    VMIG_MODEL_MIG_COMPLETION_TIMEOUT_PER_GIB = 1 << 3, /* completionTimeoutPerGiB */
    VMIG_MODEL_MIG_PROGRESS_TIMEOUT = 1 << 4,           /* progressTimeout */
    VMIG_MODEL_MIG_ALLOW_AUTO_CONVERGE = 1 << 5,        /* allowAutoConverge */
    VMIG_MODEL_MIG_ALLOW_POST_COPY = 1 << 6,            /* allowPostCopy */
    VMIG_MODEL_MIG_ALLOW_WORKLOAD_DISRUPTION = 1 << 7,  /* allowWorkloadDisruption */
    VMIG_MODEL_MIG_DISABLE_TLS = 1 << 8,                /* disableTLS */
    VMIG_MODEL_MIG_NODE_DRAIN_TAINT_KEY = 1 << 9,       /* nodeDrainTaintKey */
    VMIG_MODEL_MIG_UNSAFE_OVERRIDE = 1 << 10,           /* unsafeMigrationOverride */
    VMIG_MODEL_MIG_MATCH_SELINUX_LEVEL = 1 << 11,       /* matchSELinuxLevelOnMigration */
} VmigModelMigrationField;

/* Number of VmigModelMigrationField bits. */
#define VMIG_MODEL_MIG_N_FIELDS 12

typedef struct {
    guint set; /* VmigModelMigrationField bits */
    gint64 parallel_migrations_per_cluster;
    gint64 parallel_outbound_migrations_per_node;
    VmigModelQuantity bandwidth_per_migration; /* bytes per second */
    gint64 completion_timeout_per_gib;         /* seconds */
    gint64 progress_timeout;                   /* seconds */
    gboolean allow_auto_converge;
    gboolean allow_post_copy;
    gboolean allow_workload_disruption;
    gboolean disable_tls;
    char *node_drain_taint_key;
    gboolean unsafe_migration_override;
    gboolean match_selinux_level_on_migration;
} VmigModelMigrationOptions;

typedef struct {
    JsonNode *node;
    VmigModelMeta meta;
    VmigModelMigrationOptions migrations;        /* spec.configuration.migrations */
    VmigModelEvictionStrategy eviction_strategy; /* spec.configuration.evictionStrategy */
    char *cpu_model;                             /* spec.configuration.cpuModel */
    GPtrArray *migratable_binding_plugins;       /* names in spec.configuration.network.binding
                                                    whose entry has a "migration" member */
} VmigModelKubevirt;

/**
 * vmig_model_kubevirt_from_json:
 * @node: (transfer none): a kubevirt.io KubeVirt CR; a reference is taken
 * Reads spec.configuration.migrations (every MigrationConfiguration field listed in
 * VmigModelMigrationField; integers must be >= 0, bandwidthPerMigration a non-negative
 * quantity), evictionStrategy, cpuModel and network.binding.
 * Returns: (transfer full) (nullable): the view, or NULL with a VMIG_MODEL_ERROR naming
 * "KubeVirt ns/name" and the field.
 */
VmigModelKubevirt *vmig_model_kubevirt_from_json(JsonNode *node, GError **error);
void vmig_model_kubevirt_free(VmigModelKubevirt *kv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigModelKubevirt, vmig_model_kubevirt_free)

typedef struct {
    JsonNode *node;
    VmigModelMeta meta;                /* cluster-scoped: namespace NULL */
    GHashTable *namespace_selector;    /* spec.selectors.namespaceSelector (never NULL) */
    GHashTable *vmi_selector;          /* spec.selectors.virtualMachineInstanceSelector */
    VmigModelMigrationOptions options; /* only the fields a policy may set */
} VmigModelMigrationPolicy;

/**
 * vmig_model_migration_policy_from_json:
 * @node: (transfer none): a migrations.kubevirt.io/v1alpha1 MigrationPolicy; a reference is taken
 * Reads spec.selectors and the fields a policy may set (allowAutoConverge,
 * bandwidthPerMigration, completionTimeoutPerGiB, allowPostCopy, allowWorkloadDisruption);
 * other members are ignored.
 * Returns: (transfer full) (nullable): the view, or NULL with a VMIG_MODEL_ERROR.
 */
VmigModelMigrationPolicy *vmig_model_migration_policy_from_json(JsonNode *node, GError **error);
void vmig_model_migration_policy_free(VmigModelMigrationPolicy *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigModelMigrationPolicy, vmig_model_migration_policy_free)

/* ---- write-back: edit only the fields vmigrated owns, in place ------------------------ */

/**
 * vmig_model_json_set:
 * @root: (transfer none): an object node
 * @path: dotted member path ("status.migrationState.targetNode"); intermediate objects are
 *   created; an intermediate member that exists with another type is an error
 * @value: (transfer full): the new value
 *
 * Every other member of every object on the path is kept.
 * Returns: TRUE, or FALSE with VMIG_MODEL_ERROR_TYPE (and @value freed).
 */
gboolean vmig_model_json_set(JsonNode *root, const char *path, JsonNode *value, GError **error);

/**
 * vmig_model_json_set_string:
 * Like vmig_model_json_set() with a string value (NULL sets JSON null).
 */
gboolean vmig_model_json_set_string(JsonNode *root, const char *path, const char *value,
                                    GError **error);

/**
 * vmig_model_json_get:
 * Returns: (transfer none) (nullable): the node at dotted @path, NULL when a member is absent
 * or a step is not an object.
 */
JsonNode *vmig_model_json_get(JsonNode *root, const char *path);

/**
 * vmig_model_set_condition:
 * @root: a VMI or VMIM object node
 * @cond: the condition; last_transition_time is kept from the existing entry when the status
 *   did not change, set to @now otherwise
 * @now: RFC 3339 time ("2026-11-29T19:03:02Z")
 *
 * Replaces the status.conditions entry of @cond->type (or appends one), leaving the others and
 * any unknown members of the entry untouched.
 * Returns: TRUE when the stored condition changed (type, status, reason or message).
 */
gboolean vmig_model_set_condition(JsonNode *root, const VmigModelCondition *cond, const char *now,
                                  GError **error);

/**
 * vmig_model_vmim_set_phase:
 * Sets status.phase of a VMIM and appends {phase, phaseTransitionTimestamp: @now} to
 * status.phaseTransitionTimestamps (not when the phase is unchanged).
 */
gboolean vmig_model_vmim_set_phase(JsonNode *root, VmigModelMigrationPhase phase, const char *now,
                                   GError **error);

/* ---- documents: YAML/JSON loader ------------------------------------------------------ */

/**
 * vmig_model_parse_json:
 * @data: JSON text; @len: its length, or -1 when NUL-terminated
 *
 * Parses with json-glib after refusing nesting deeper than 64 levels (so hostile input
 * cannot exhaust the stack).
 * Returns: (transfer full) (nullable): the root, or NULL with VMIG_MODEL_ERROR_PARSE/RANGE.
 */
JsonNode *vmig_model_parse_json(const char *data, gssize len, GError **error);

/**
 * vmig_model_load_documents:
 * @data: YAML (one or more `---`-separated documents) or JSON text; @len or -1
 * @origin: name used in messages (a file name)
 * @docs: (out) (transfer full): JsonNode * of each non-empty document, in order; items of a
 *   `kind: List` / `*List` document are flattened into the array
 *
 * YAML plain scalars follow the YAML 1.2 core schema (null/~, true/false, integers, floats),
 * quoted scalars are strings. Anchors and aliases are refused, nesting deeper than 64 is
 * refused. Errors name @origin and the line.
 * Returns: TRUE, or FALSE with VMIG_MODEL_ERROR_PARSE/RANGE.
 */
gboolean vmig_model_load_documents(const char *data, gssize len, const char *origin,
                                   GPtrArray **docs, GError **error);

/**
 * vmig_model_load_file:
 * Reads @path and calls vmig_model_load_documents(). VMIG_MODEL_ERROR_IO when unreadable.
 */
gboolean vmig_model_load_file(const char *path, GPtrArray **docs, GError **error);

/**
 * vmig_model_kind_of:
 * Returns: the kind of @node from its apiVersion group and kind (UNKNOWN for others).
 */
VmigModelKind vmig_model_kind_of(JsonNode *node);

G_END_DECLS
