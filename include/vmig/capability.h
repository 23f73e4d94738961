/* vmig/capability.h - target capability checks: can this node take this running guest?
 *
 * Before a single guest byte moves, the target daemon asks its own libvirt whether it can run
 * the guest exactly as it runs on the source: the running guest's resolved CPU definition is
 * accepted by the target hypervisor (virConnectCompareHypervisorCPU), the exact machine type is
 * offered by the target emulator, the libvirt/QEMU version pair is not a known-bad one, the
 * target has the free memory, and the target is not the source itself. Every refusal is a
 * reason string naming the node, the value and the requirement.
 *
 * The module has two layers. Pure functions parse XML strings (domain, capabilities, domain
 * capabilities, CPU definitions) into plain structs and decide (vmig_capability_evaluate) with
 * no I/O; they are tested with captured XML of hosts one machine cannot be. A thin I/O layer
 * (vmig_capability_check) queries a libvirt connection and feeds the pure layer. It sits after
 * the source limitation checks and before the migration call (see docs/capability.md).
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

G_BEGIN_DECLS

#define VMIG_CAPABILITY_ERROR (vmig_capability_error_quark())
GQuark vmig_capability_error_quark(void);

typedef enum {
    VMIG_CAPABILITY_ERROR_XML,     /* malformed or incomplete XML (names the element) */
    VMIG_CAPABILITY_ERROR_LIBVIRT, /* a libvirt call failed (names the call and the node) */
    VMIG_CAPABILITY_ERROR_INVALID, /* bad argument */
} VmigCapabilityError;

/* <cpu mode='...'> of a domain; NONE when the domain has no <cpu> element. */
typedef enum {
    VMIG_CAPABILITY_CPU_MODE_NONE,
    VMIG_CAPABILITY_CPU_MODE_CUSTOM,
    VMIG_CAPABILITY_CPU_MODE_HOST_MODEL,
    VMIG_CAPABILITY_CPU_MODE_HOST_PASSTHROUGH,
    VMIG_CAPABILITY_CPU_MODE_MAXIMUM,
} VmigCapabilityCpuMode;

/* Result of virConnectCompareHypervisorCPU as the pure layer sees it. */
typedef enum {
    VMIG_CAPABILITY_CPU_COMPARE_NOT_RUN, /* no libvirt answer (captured XML): derive from features
                                          */
    VMIG_CAPABILITY_CPU_COMPARE_INCOMPATIBLE, /* VIR_CPU_COMPARE_INCOMPATIBLE */
    VMIG_CAPABILITY_CPU_COMPARE_IDENTICAL,    /* VIR_CPU_COMPARE_IDENTICAL */
    VMIG_CAPABILITY_CPU_COMPARE_SUPERSET,     /* VIR_CPU_COMPARE_SUPERSET */
} VmigCapabilityCpuCompare;

/**
 * VmigCapabilityCpu:
 * A CPU definition: a domain's <cpu>, a host's <cpu> from capabilities, the host-model <mode>
 * of domain capabilities, or libvirt's baseline output.
 * @mode: the mode (host CPUs and domain-capabilities host-model are CUSTOM)
 * @arch: (nullable): <arch> of a host CPU
 * @model: (nullable): <model>
 * @vendor: (nullable): <vendor>
 * @required: sorted, unique feature names with policy require/force (or no policy: host CPUs)
 * @disabled: sorted, unique feature names with policy disable/forbid
 * @xml: the definition as a standalone <cpu> element, for libvirt's CPU APIs
 */
typedef struct {
    VmigCapabilityCpuMode mode;
    char *arch;
    char *model;
    char *vendor;
    GPtrArray *required;
    GPtrArray *disabled;
    char *xml;
} VmigCapabilityCpu;

/**
 * VmigCapabilityDomain:
 * What the checks need from a domain XML (virDomainGetXMLDesc with VIR_DOMAIN_XML_MIGRATABLE).
 * @name, @uuid: <name>, <uuid>
 * @virt_type: <domain type='...'> (qemu, kvm)
 * @arch, @machine: <os><type arch='...' machine='...'>
 * @emulator: (nullable): <devices><emulator>
 * @memory_bytes: <memory> (the maximum guest memory) in bytes
 * @cpu: (nullable): the guest CPU; NULL when the domain has no <cpu> (hypervisor default)
 */
typedef struct {
    char *name;
    char *uuid;
    char *virt_type;
    char *arch;
    char *machine;
    char *emulator;
    guint64 memory_bytes;
    VmigCapabilityCpu *cpu;
} VmigCapabilityDomain;

/**
 * VmigCapabilityMachine:
 * One <machine> of a capabilities <guest><arch>.
 * @name: the machine type name
 * @canonical: (nullable): set when @name is an alias (e.g. "pc" -> "pc-i440fx-7.2")
 * @virt_type: (nullable): the <domain type> it is listed under; NULL for all domain types
 */
typedef struct {
    char *name;
    char *canonical;
    char *virt_type;
} VmigCapabilityMachine;

/**
 * VmigCapabilityGuestArch:
 * One <guest><arch> of the capabilities XML: @arch, its default @emulator and @machines
 * (VmigCapabilityMachine*).
 */
typedef struct {
    char *arch;
    char *emulator;
    GPtrArray *machines;
} VmigCapabilityGuestArch;

/**
 * VmigCapabilityHost:
 * What the checks need from virConnectGetCapabilities: @host_uuid (<host><uuid>), @host_cpu
 * (nullable, <host><cpu>) and @guests (VmigCapabilityGuestArch*, hvm guests only).
 */
typedef struct {
    char *host_uuid;
    VmigCapabilityCpu *host_cpu;
    GPtrArray *guests;
} VmigCapabilityHost;

/**
 * VmigCapabilityDomcaps:
 * What the checks need from virConnectGetDomainCapabilities: @path (the emulator), @virt_type,
 * @machine (canonical), @arch, whether host-passthrough is supported, and the host-model CPU
 * (nullable when host-model is not supported).
 */
typedef struct {
    char *path;
    char *virt_type;
    char *machine;
    char *arch;
    gboolean host_passthrough_supported;
    VmigCapabilityCpu *host_model;
} VmigCapabilityDomcaps;

/**
 * VmigCapabilityOptions:
 * @allow_host_passthrough: let a host-passthrough (or maximum) guest migrate to a node whose
 *   host CPU is identical to the source's (KubeVirt: off unless explicitly enabled)
 * @memory_overhead_bytes: memory the target needs beyond the guest's <memory> (QEMU itself,
 *   page tables, device buffers); VMIG_CAPABILITY_DEFAULT_MEMORY_OVERHEAD by default
 */
typedef struct {
    gboolean allow_host_passthrough;
    guint64 memory_overhead_bytes;
} VmigCapabilityOptions;

#define VMIG_CAPABILITY_DEFAULT_MEMORY_OVERHEAD (G_GUINT64_CONSTANT(64) * 1024 * 1024)

/**
 * VmigCapabilitySource:
 * Facts about the source side, given by the caller (the source daemon sends them). The fields
 * are owned (free with vmig_capability_source_clear) when vmig_capability_source_query filled
 * them; a caller that fills the struct itself keeps ownership of what it put in.
 * @node: the source node name (Kubernetes Node name)
 * @host_uuid: (nullable): the source libvirt's host UUID (capabilities <host><uuid>)
 * @host_cpu: (nullable): the source host CPU (capabilities <host><cpu>); needed only for
 *   host-passthrough guests, which may move only between identical host CPUs
 * @libvirt_version, @qemu_version: virConnectGetLibVersion / virConnectGetVersion of the
 *   source (major * 1000000 + minor * 1000 + micro); 0 = unknown (version rules skipped)
 */
typedef struct {
    char *node;
    char *host_uuid;
    VmigCapabilityCpu *host_cpu;
    guint64 libvirt_version;
    guint64 qemu_version;
} VmigCapabilitySource;

/**
 * VmigCapabilityTarget:
 * Everything the pure decision knows about the target node (transfer none: borrowed).
 * @node: the target node name
 * @caps: the target's capabilities
 * @domcaps: (nullable): the target's domain capabilities for the guest's arch and virt type
 * @libvirt_version, @qemu_version: as in VmigCapabilitySource
 * @free_memory_bytes: virNodeGetFreeMemory of the target
 * @cpu_compare: the answer of virConnectCompareHypervisorCPU, or NOT_RUN
 * @cpu_compare_message: (nullable): libvirt's message when INCOMPATIBLE
 * @domcaps_refusal: (nullable): why the target hypervisor offers no domain capabilities for
 *   the guest's arch, virt type and machine (libvirt's message; e.g. KVM absent); when set it is
 *   a refusal and the CPU is not checked
 * @guest_cpu_expanded, @target_cpu_expanded: (nullable): the guest CPU and the target's
 *   host-model CPU with every feature of their models listed (virConnectBaselineCPU with
 *   VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES); when NULL the unexpanded definitions are used
 */
typedef struct {
    const char *node;
    const VmigCapabilityHost *caps;
    const VmigCapabilityDomcaps *domcaps;
    guint64 libvirt_version;
    guint64 qemu_version;
    guint64 free_memory_bytes;
    VmigCapabilityCpuCompare cpu_compare;
    const char *cpu_compare_message;
    const char *domcaps_refusal;
    const VmigCapabilityCpu *guest_cpu_expanded;
    const VmigCapabilityCpu *target_cpu_expanded;
} VmigCapabilityTarget;

/**
 * VmigCapabilityResult:
 * The verdict for one target node.
 * @node: the target node name
 * @eligible: TRUE when @reasons is empty
 * @reasons: (element-type utf8): refusals in check order (target is the source, versions,
 *   machine type, CPU, memory); each names the node, the value and the requirement
 * @missing_cpu_features: (element-type utf8): sorted features the guest CPU needs and the
 *   target lacks (empty when none or not a CPU refusal)
 * @target_emulator: (nullable): the emulator the destination XML gets
 * @machine: the guest's machine type (never changed)
 * @source_libvirt_version, @source_qemu_version, @target_libvirt_version,
 *   @target_qemu_version: the recorded versions (libvirt encoding; 0 unknown)
 * @required_memory_bytes: guest memory plus overhead; @free_memory_bytes: target free memory
 */
typedef struct {
    char *node;
    gboolean eligible;
    GPtrArray *reasons;
    GPtrArray *missing_cpu_features;
    char *target_emulator;
    char *machine;
    guint64 source_libvirt_version;
    guint64 source_qemu_version;
    guint64 target_libvirt_version;
    guint64 target_qemu_version;
    guint64 required_memory_bytes;
    guint64 free_memory_bytes;
} VmigCapabilityResult;

/* ---- enum tables ---------------------------------------------------------------------- */

/**
 * vmig_capability_cpu_mode_to_string:
 * Returns: (transfer none): libvirt's name of @mode ("custom", "host-model", ...; "none").
 */
const char *vmig_capability_cpu_mode_to_string(VmigCapabilityCpuMode mode);

/**
 * vmig_capability_cpu_mode_from_string:
 * @name: a libvirt <cpu mode> value
 * Returns: TRUE and sets @out when @name is a mode; FALSE otherwise.
 */
gboolean vmig_capability_cpu_mode_from_string(const char *name, VmigCapabilityCpuMode *out);

/* ---- parsing (pure) ------------------------------------------------------------------- */

/**
 * vmig_capability_cpu_parse:
 * @xml: a document whose root is a <cpu> element (domain CPU, host CPU, baseline output)
 * Returns: (transfer full) (nullable): the CPU, or NULL with VMIG_CAPABILITY_ERROR_XML.
 */
VmigCapabilityCpu *vmig_capability_cpu_parse(const char *xml, GError **error);
void vmig_capability_cpu_free(VmigCapabilityCpu *cpu);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigCapabilityCpu, vmig_capability_cpu_free)

/**
 * vmig_capability_domain_parse:
 * @xml: the running domain's migratable XML (virDomainGetXMLDesc, VIR_DOMAIN_XML_MIGRATABLE)
 *
 * A <cpu mode='host-model'> without a resolved <model> is refused: only a running domain
 * shows the CPU the guest actually got (field case B07).
 *
 * Returns: (transfer full) (nullable): the domain, or NULL with VMIG_CAPABILITY_ERROR_XML
 *   naming the element (missing <os><type machine>, bad <memory>, ...).
 */
VmigCapabilityDomain *vmig_capability_domain_parse(const char *xml, GError **error);
void vmig_capability_domain_free(VmigCapabilityDomain *domain);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigCapabilityDomain, vmig_capability_domain_free)

/**
 * vmig_capability_host_parse:
 * @xml: capabilities XML (virConnectGetCapabilities)
 * Returns: (transfer full) (nullable): the host, or NULL with VMIG_CAPABILITY_ERROR_XML.
 */
VmigCapabilityHost *vmig_capability_host_parse(const char *xml, GError **error);
void vmig_capability_host_free(VmigCapabilityHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigCapabilityHost, vmig_capability_host_free)

/**
 * vmig_capability_domcaps_parse:
 * @xml: domain capabilities XML (virConnectGetDomainCapabilities)
 * Returns: (transfer full) (nullable): the parsed view, or NULL with VMIG_CAPABILITY_ERROR_XML.
 */
VmigCapabilityDomcaps *vmig_capability_domcaps_parse(const char *xml, GError **error);
void vmig_capability_domcaps_free(VmigCapabilityDomcaps *domcaps);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigCapabilityDomcaps, vmig_capability_domcaps_free)

/* ---- decisions (pure) ----------------------------------------------------------------- */

/**
 * vmig_capability_host_find_machine:
 * @host: target capabilities
 * @arch, @virt_type: the guest's <os><type arch> and <domain type>
 * @machine: the guest's machine type, compared exactly
 *
 * Returns: (transfer none) (nullable): the <machine> entry named @machine for @arch that is
 *   listed for all domain types or for @virt_type; NULL when the target does not offer it.
 *   An alias entry (canonical set) is returned as such: the caller decides.
 */
const VmigCapabilityMachine *vmig_capability_host_find_machine(const VmigCapabilityHost *host,
                                                               const char *arch,
                                                               const char *virt_type,
                                                               const char *machine);

/**
 * vmig_capability_host_emulator:
 * Returns: (transfer none) (nullable): the target's emulator for hvm guests of @arch.
 */
const char *vmig_capability_host_emulator(const VmigCapabilityHost *host, const char *arch);

/**
 * vmig_capability_cpu_missing_features:
 * @guest: the guest's running CPU definition
 * @target: what the target can provide (its domain-capabilities host-model CPU)
 *
 * Features the guest needs that the target does not provide: every required feature of
 * @guest absent from @target's required list, plus, when both name the same model, the
 * features @target disables that @guest does not disable (the guest gets them from the model).
 * When the models differ, pass expanded definitions (every model feature listed, see
 * VmigCapabilityTarget), otherwise model-implied features cannot be seen.
 *
 * Returns: (transfer full) (element-type utf8): sorted feature names (strcmp order).
 */
GPtrArray *vmig_capability_cpu_missing_features(const VmigCapabilityCpu *guest,
                                                const VmigCapabilityCpu *target);

/**
 * vmig_capability_version_string:
 * @version: libvirt's encoding (major * 1000000 + minor * 1000 + micro)
 * Returns: (transfer full): "major.minor.micro"; "unknown" for 0.
 */
char *vmig_capability_version_string(guint64 version);

/**
 * vmig_capability_version_refusals:
 * @source_node, @target_node: node names for the messages
 * @src_libvirt, @src_qemu, @dst_libvirt, @dst_qemu: versions (libvirt encoding; 0 unknown)
 *
 * Applies the table of version pairs known not to work (docs/capability.md). A rule that
 * needs an unknown version is skipped.
 *
 * Returns: (transfer full) (element-type utf8): one reason per matching rule, table order.
 */
GPtrArray *vmig_capability_version_refusals(const char *source_node, const char *target_node,
                                            guint64 src_libvirt, guint64 src_qemu,
                                            guint64 dst_libvirt, guint64 dst_qemu);

/**
 * vmig_capability_evaluate:
 * @guest: the running guest (from its migratable XML)
 * @source: facts about the source
 * @target: facts about the target
 * @options: (nullable): NULL for the defaults (no host-passthrough, default overhead)
 *
 * The pure decision: target is not the source (node name, libvirt host UUID), version table,
 * exact machine type offered, the guest's virt type offered (@target's domcaps_refusal), CPU
 * accepted (the libvirt comparison when run, else the derived
 * missing features; host-passthrough only when allowed and the host CPUs are identical), free
 * memory covers guest memory plus overhead.
 *
 * Returns: (transfer full): the verdict (never NULL).
 */
VmigCapabilityResult *vmig_capability_evaluate(const VmigCapabilityDomain *guest,
                                               const VmigCapabilitySource *source,
                                               const VmigCapabilityTarget *target,
                                               const VmigCapabilityOptions *options);
void vmig_capability_result_free(VmigCapabilityResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigCapabilityResult, vmig_capability_result_free)

/**
 * vmig_capability_select:
 * @results: (array length=n_results): verdicts for the candidate nodes, in preference order
 * @refusal: (out) (optional) (transfer full): when nothing is eligible, every reason of every
 *   candidate joined as "no target node can take the guest: <reason>; <reason>"
 *
 * Returns: (transfer none) (nullable): the first eligible result, or NULL.
 */
const VmigCapabilityResult *vmig_capability_select(VmigCapabilityResult *const *results,
                                                   gsize n_results, char **refusal);

/**
 * vmig_capability_destination_xml:
 * @domain_xml: the source's migratable domain XML
 * @emulator: the target's emulator path
 *
 * Returns the XML to hand to the destination (VIR_MIGRATE_PARAM_DEST_XML) with only the text
 * of <devices><emulator> replaced, byte for byte; the machine type and everything else stay
 * as they are. The domain must have exactly one <emulator> element.
 *
 * Returns: (transfer full) (nullable): the new XML, or NULL with VMIG_CAPABILITY_ERROR_XML.
 */
char *vmig_capability_destination_xml(const char *domain_xml, const char *emulator, GError **error);

/* ---- I/O against libvirt --------------------------------------------------------------- */

/**
 * vmig_capability_source_query:
 * @conn: a connection to the source node's libvirt
 * @node: the source node name
 * @out: (out caller-allocates): filled (clear with vmig_capability_source_clear)
 *
 * Records the source's host UUID, host CPU, libvirt and QEMU versions (virConnectGetCapabilities,
 * virConnectGetLibVersion, virConnectGetVersion).
 *
 * Returns: FALSE with VMIG_CAPABILITY_ERROR_LIBVIRT or _XML on failure.
 */
gboolean vmig_capability_source_query(virConnectPtr conn, const char *node,
                                      VmigCapabilitySource *out, GError **error);
void vmig_capability_source_clear(VmigCapabilitySource *source);

/**
 * vmig_capability_check:
 * @target_conn: a connection to the target node's libvirt
 * @target_node: the target node name
 * @domain_xml: the running source domain's migratable XML
 * @source: facts about the source (vmig_capability_source_query or sent by the source daemon)
 * @options: (nullable): NULL for the defaults
 *
 * Queries the target (capabilities, domain capabilities, versions, free memory,
 * virConnectCompareHypervisorCPU with the guest's arch, machine and virt type and the target's
 * own emulator; on incompatibility virConnectBaselineCPU to expand both CPUs' features) and
 * evaluates. A refusal is a result, not an error.
 *
 * Returns: (transfer full) (nullable): the verdict, or NULL with VMIG_CAPABILITY_ERROR_XML (bad
 *   domain or capabilities XML), VMIG_CAPABILITY_ERROR_LIBVIRT (a query failed; names call and
 *   node) or VMIG_CAPABILITY_ERROR_INVALID (NULL connection, node or source).
 */
VmigCapabilityResult *vmig_capability_check(virConnectPtr target_conn, const char *target_node,
                                            const char *domain_xml,
                                            const VmigCapabilitySource *source,
                                            const VmigCapabilityOptions *options, GError **error);

G_END_DECLS
