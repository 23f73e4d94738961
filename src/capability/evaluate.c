/* evaluate.c - the pure target capability decision (see vmig/capability.h and
 * docs/capability.md): target != source, version table, machine type, CPU, memory. */
#include "vmig/capability.h"

#include <string.h>

/* ---- version table --------------------------------------------------------------------- */

typedef enum {
    VMIG_CAPABILITY_COMPONENT_LIBVIRT,
    VMIG_CAPABILITY_COMPONENT_QEMU,
} VmigCapabilityComponent;

static const char *const vmig_capability_component_names[] = {
    [VMIG_CAPABILITY_COMPONENT_LIBVIRT] = "libvirt",
    [VMIG_CAPABILITY_COMPONENT_QEMU] = "QEMU",
};

typedef enum {
    VMIG_CAPABILITY_RELATION_ANY,                /* the ranges alone decide */
    VMIG_CAPABILITY_RELATION_TARGET_OLDER_MAJOR, /* and the target's major < the source's */
} VmigCapabilityRelation;

#define VMIG_V(major, minor, micro)                                                                \
    ((guint64)(major)*1000000 + (guint64)(minor)*1000 + (guint64)(micro))
#define VMIG_V_ANY_LO 0
#define VMIG_V_ANY_HI G_MAXUINT64

/* Pairs known not to work (docs/capability.md explains each row). The QEMU rule is our
 * conservative choice: forward migration is what QEMU and the distributions support, backward
 * across a major release is best effort. libvirt 6.8.0 added migration over UNIX sockets.
 * A row matches when the source version is in [src_lo, src_hi), the
 * target version in [dst_lo, dst_hi) and the relation holds. Add a pair: add a row. */
static const struct {
    VmigCapabilityComponent component;
    guint64 src_lo, src_hi;
    guint64 dst_lo, dst_hi;
    VmigCapabilityRelation relation;
    const char *requirement;
} vmig_capability_version_rules[] = {
    {VMIG_CAPABILITY_COMPONENT_QEMU, VMIG_V_ANY_LO, VMIG_V_ANY_HI, VMIG_V_ANY_LO, VMIG_V_ANY_HI,
     VMIG_CAPABILITY_RELATION_TARGET_OLDER_MAJOR,
     "the target's QEMU major release must not be older than the source's (an older QEMU is "
     "not guaranteed to load a newer release's device state)"},
    {VMIG_CAPABILITY_COMPONENT_LIBVIRT, VMIG_V_ANY_LO, VMIG_V_ANY_HI, VMIG_V_ANY_LO,
     VMIG_V(6, 8, 0), VMIG_CAPABILITY_RELATION_ANY,
     "the target's libvirt must be 6.8.0 or newer (unix:// migration URIs, which the migration "
     "proxy uses)"},
    {VMIG_CAPABILITY_COMPONENT_LIBVIRT, VMIG_V_ANY_LO, VMIG_V(6, 8, 0), VMIG_V_ANY_LO,
     VMIG_V_ANY_HI, VMIG_CAPABILITY_RELATION_ANY,
     "the source's libvirt must be 6.8.0 or newer (unix:// migration URIs, which the migration "
     "proxy uses)"},
};

char *
vmig_capability_version_string(guint64 version)
{
    if (version == 0)
        return g_strdup("unknown");
    return g_strdup_printf("%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT,
                           version / 1000000, (version / 1000) % 1000, version % 1000);
}

GPtrArray *
vmig_capability_version_refusals(const char *source_node, const char *target_node,
                                 guint64 src_libvirt, guint64 src_qemu, guint64 dst_libvirt,
                                 guint64 dst_qemu)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_capability_version_rules); i++) {
        const __typeof__(vmig_capability_version_rules[0]) *r = &vmig_capability_version_rules[i];
        guint64 src = r->component == VMIG_CAPABILITY_COMPONENT_QEMU ? src_qemu : src_libvirt;
        guint64 dst = r->component == VMIG_CAPABILITY_COMPONENT_QEMU ? dst_qemu : dst_libvirt;
        if (src == 0 || dst == 0)
            continue; /* unknown: the rule cannot be applied */
        if (src < r->src_lo || src >= r->src_hi || dst < r->dst_lo || dst >= r->dst_hi)
            continue;
        if (r->relation == VMIG_CAPABILITY_RELATION_TARGET_OLDER_MAJOR &&
            dst / 1000000 >= src / 1000000)
            continue;
        g_autofree char *s = vmig_capability_version_string(src);
        g_autofree char *d = vmig_capability_version_string(dst);
        const char *name = vmig_capability_component_names[r->component];
        g_ptr_array_add(out, g_strdup_printf("%s %s on %s cannot take a guest from %s %s on %s: %s",
                                             name, d, target_node, name, s, source_node,
                                             r->requirement));
    }
    return out;
}

/* ---- CPU -------------------------------------------------------------------------------- */

static gboolean
vmig_capability_has(const GPtrArray *names, const char *name)
{
    for (guint i = 0; names && i < names->len; i++) {
        if (strcmp(g_ptr_array_index(names, i), name) == 0)
            return TRUE;
    }
    return FALSE;
}

static int
vmig_capability_strcmp_ptr(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

GPtrArray *
vmig_capability_cpu_missing_features(const VmigCapabilityCpu *guest,
                                     const VmigCapabilityCpu *target)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    if (!guest || !target)
        return out;
    for (guint i = 0; guest->required && i < guest->required->len; i++) {
        const char *f = g_ptr_array_index(guest->required, i);
        if (!vmig_capability_has(target->required, f))
            g_ptr_array_add(out, g_strdup(f));
    }
    /* Same model: the guest has every model feature it does not disable, so a model feature the
     * target's host disables is missing. */
    if (guest->model && g_strcmp0(guest->model, target->model) == 0) {
        for (guint i = 0; target->disabled && i < target->disabled->len; i++) {
            const char *f = g_ptr_array_index(target->disabled, i);
            if (!vmig_capability_has(guest->disabled, f) &&
                !vmig_capability_has(guest->required, f))
                g_ptr_array_add(out, g_strdup(f));
        }
    }
    g_ptr_array_sort(out, vmig_capability_strcmp_ptr);
    return out;
}

static char *
vmig_capability_join(const GPtrArray *names)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; names && i < names->len; i++) {
        if (i)
            g_string_append(s, ", ");
        g_string_append(s, g_ptr_array_index(names, i));
    }
    return g_string_free(s, FALSE);
}

/* Host CPUs are identical when model, vendor and feature sets match; the differences are
 * described for the refusal (NULL when identical). */
static char *
vmig_capability_host_cpu_difference(const VmigCapabilityCpu *src, const VmigCapabilityCpu *dst)
{
    GString *d = g_string_new(NULL);
    if (g_strcmp0(src->model, dst->model) != 0)
        g_string_append_printf(d, "%smodel %s instead of %s", d->len ? "; " : "",
                               dst->model ? dst->model : "(none)",
                               src->model ? src->model : "(none)");
    if (g_strcmp0(src->vendor, dst->vendor) != 0)
        g_string_append_printf(d, "%svendor %s instead of %s", d->len ? "; " : "",
                               dst->vendor ? dst->vendor : "(none)",
                               src->vendor ? src->vendor : "(none)");
    g_autoptr(GPtrArray) missing = g_ptr_array_new();
    g_autoptr(GPtrArray) extra = g_ptr_array_new();
    for (guint i = 0; i < src->required->len; i++) {
        if (!vmig_capability_has(dst->required, g_ptr_array_index(src->required, i)))
            g_ptr_array_add(missing, g_ptr_array_index(src->required, i));
    }
    for (guint i = 0; i < dst->required->len; i++) {
        if (!vmig_capability_has(src->required, g_ptr_array_index(dst->required, i)))
            g_ptr_array_add(extra, g_ptr_array_index(dst->required, i));
    }
    if (missing->len) {
        g_autofree char *j = vmig_capability_join(missing);
        g_string_append_printf(d, "%smissing features %s", d->len ? "; " : "", j);
    }
    if (extra->len) {
        g_autofree char *j = vmig_capability_join(extra);
        g_string_append_printf(d, "%sextra features %s", d->len ? "; " : "", j);
    }
    if (d->len == 0) {
        g_string_free(d, TRUE);
        return NULL;
    }
    return g_string_free(d, FALSE);
}

static void
vmig_capability_check_passthrough(const VmigCapabilityDomain *guest,
                                  const VmigCapabilitySource *source,
                                  const VmigCapabilityTarget *target,
                                  const VmigCapabilityOptions *options, GPtrArray *reasons)
{
    const char *mode = vmig_capability_cpu_mode_to_string(guest->cpu->mode);
    if (!options->allow_host_passthrough) {
        g_ptr_array_add(reasons,
                        g_strdup_printf("guest CPU mode %s cannot migrate to %s: %s migration is "
                                        "not enabled (it is safe only between identical host "
                                        "CPUs)",
                                        mode, target->node, mode));
        return;
    }
    if (guest->cpu->mode == VMIG_CAPABILITY_CPU_MODE_HOST_PASSTHROUGH && target->domcaps &&
        !target->domcaps->host_passthrough_supported) {
        g_ptr_array_add(reasons,
                        g_strdup_printf("guest CPU mode host-passthrough is not supported by "
                                        "the hypervisor on %s (%s, virt type %s)",
                                        target->node, target->domcaps->path,
                                        target->domcaps->virt_type ? target->domcaps->virt_type
                                                                   : guest->virt_type));
        return;
    }
    const VmigCapabilityCpu *dst = target->caps ? target->caps->host_cpu : NULL;
    if (!source->host_cpu || !dst) {
        g_ptr_array_add(reasons,
                        g_strdup_printf("guest CPU mode %s needs identical host CPUs, but the "
                                        "host CPU of %s is unknown",
                                        mode, !source->host_cpu ? source->node : target->node));
        return;
    }
    g_autofree char *diff = vmig_capability_host_cpu_difference(source->host_cpu, dst);
    if (diff)
        g_ptr_array_add(reasons,
                        g_strdup_printf("guest CPU mode %s needs identical host CPUs, but the "
                                        "host CPU of %s differs from %s's: %s",
                                        mode, target->node, source->node, diff));
}

static void
vmig_capability_check_cpu(const VmigCapabilityDomain *guest, const VmigCapabilitySource *source,
                          const VmigCapabilityTarget *target, const VmigCapabilityOptions *options,
                          VmigCapabilityResult *result)
{
    const VmigCapabilityCpu *cpu = guest->cpu;
    if (!cpu || cpu->mode == VMIG_CAPABILITY_CPU_MODE_NONE)
        return; /* the hypervisor's default CPU: machine type and QEMU version decide */
    if (cpu->mode == VMIG_CAPABILITY_CPU_MODE_HOST_PASSTHROUGH ||
        cpu->mode == VMIG_CAPABILITY_CPU_MODE_MAXIMUM) {
        vmig_capability_check_passthrough(guest, source, target, options, result->reasons);
        return;
    }

    const VmigCapabilityCpu *g = target->guest_cpu_expanded ? target->guest_cpu_expanded : cpu;
    const VmigCapabilityCpu *t = target->target_cpu_expanded ? target->target_cpu_expanded
                                 : target->domcaps           ? target->domcaps->host_model
                                                             : NULL;
    g_autoptr(GPtrArray) missing = vmig_capability_cpu_missing_features(g, t);
    const char *model = cpu->model ? cpu->model : "(no model)";
    gboolean libvirt_refused = target->cpu_compare == VMIG_CAPABILITY_CPU_COMPARE_INCOMPATIBLE;
    if (target->cpu_compare == VMIG_CAPABILITY_CPU_COMPARE_IDENTICAL ||
        target->cpu_compare == VMIG_CAPABILITY_CPU_COMPARE_SUPERSET)
        return; /* libvirt's own comparison is authoritative */
    if (!t && !libvirt_refused) {
        g_ptr_array_add(result->reasons,
                        g_strdup_printf("guest CPU %s cannot be checked on %s: the target "
                                        "reports no host-model CPU",
                                        model, target->node));
        return;
    }
    /* Another vendor: a feature list would only list the other vendor's whole model. */
    if (t && cpu->vendor && t->vendor && strcmp(cpu->vendor, t->vendor) != 0) {
        g_ptr_array_add(result->reasons,
                        g_strdup_printf("guest CPU %s of vendor %s is not provided by %s: "
                                        "its host CPU vendor is %s",
                                        model, cpu->vendor, target->node, t->vendor));
        return;
    }
    if (!libvirt_refused && missing->len == 0)
        return;
    if (missing->len) {
        g_autofree char *list = vmig_capability_join(missing);
        g_ptr_array_add(result->reasons,
                        g_strdup_printf("guest CPU %s is not provided by %s: missing features %s",
                                        model, target->node, list));
        for (guint i = 0; i < missing->len; i++)
            g_ptr_array_add(result->missing_cpu_features, g_strdup(g_ptr_array_index(missing, i)));
    } else {
        g_ptr_array_add(result->reasons,
                        g_strdup_printf("guest CPU %s is not provided by %s: %s", model,
                                        target->node,
                                        target->cpu_compare_message
                                            ? target->cpu_compare_message
                                            : "the hypervisor reports it incompatible"));
    }
}

/* ---- machine type ------------------------------------------------------------------------ */

const VmigCapabilityMachine *
vmig_capability_host_find_machine(const VmigCapabilityHost *host, const char *arch,
                                  const char *virt_type, const char *machine)
{
    for (guint i = 0; host && host->guests && i < host->guests->len; i++) {
        const VmigCapabilityGuestArch *g = g_ptr_array_index(host->guests, i);
        if (g_strcmp0(g->arch, arch) != 0)
            continue;
        for (guint j = 0; j < g->machines->len; j++) {
            const VmigCapabilityMachine *m = g_ptr_array_index(g->machines, j);
            if (g_strcmp0(m->name, machine) == 0 &&
                (!m->virt_type || g_strcmp0(m->virt_type, virt_type) == 0))
                return m;
        }
    }
    return NULL;
}

const char *
vmig_capability_host_emulator(const VmigCapabilityHost *host, const char *arch)
{
    for (guint i = 0; host && host->guests && i < host->guests->len; i++) {
        const VmigCapabilityGuestArch *g = g_ptr_array_index(host->guests, i);
        if (g_strcmp0(g->arch, arch) == 0)
            return g->emulator;
    }
    return NULL;
}

static void
vmig_capability_check_machine(const VmigCapabilityDomain *guest, const VmigCapabilityTarget *target,
                              VmigCapabilityResult *result)
{
    const VmigCapabilityMachine *m = vmig_capability_host_find_machine(
        target->caps, guest->arch, guest->virt_type, guest->machine);
    if (!m) {
        g_ptr_array_add(result->reasons, g_strdup_printf("machine type %s not supported on %s",
                                                         guest->machine, target->node));
    } else if (m->canonical && strcmp(m->canonical, guest->machine) != 0) {
        /* An alias names a different versioned machine on each QEMU release. */
        g_ptr_array_add(result->reasons,
                        g_strdup_printf("machine type %s is an alias for %s on %s; the running "
                                        "guest needs its exact versioned machine type",
                                        guest->machine, m->canonical, target->node));
    }
    const char *emulator = target->domcaps && target->domcaps->path
                               ? target->domcaps->path
                               : vmig_capability_host_emulator(target->caps, guest->arch);
    if (!emulator)
        g_ptr_array_add(result->reasons, g_strdup_printf("no emulator for arch %s on %s",
                                                         guest->arch, target->node));
    result->target_emulator = g_strdup(emulator);
}

/* ---- the decision ----------------------------------------------------------------------- */

static gboolean
vmig_capability_same_uuid(const char *a, const char *b)
{
    if (!a || !b)
        return FALSE;
    g_autoptr(GString) x = g_string_new(NULL), y = g_string_new(NULL);
    for (const char *p = a; *p; p++)
        if (*p != '-')
            g_string_append_c(x, g_ascii_tolower(*p));
    for (const char *p = b; *p; p++)
        if (*p != '-')
            g_string_append_c(y, g_ascii_tolower(*p));
    return x->len > 0 && g_string_equal(x, y);
}

/* "100.0 MiB": one unit everywhere, ASCII only (g_format_size uses a no-break space). */
static char *
vmig_capability_mib(guint64 bytes)
{
    return g_strdup_printf("%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

void
vmig_capability_result_free(VmigCapabilityResult *result)
{
    if (!result)
        return;
    g_free(result->node);
    g_ptr_array_unref(result->reasons);
    g_ptr_array_unref(result->missing_cpu_features);
    g_free(result->target_emulator);
    g_free(result->machine);
    g_free(result);
}

VmigCapabilityResult *
vmig_capability_evaluate(const VmigCapabilityDomain *guest, const VmigCapabilitySource *source,
                         const VmigCapabilityTarget *target, const VmigCapabilityOptions *options)
{
    static const VmigCapabilityOptions defaults = {
        .allow_host_passthrough = FALSE,
        .memory_overhead_bytes = VMIG_CAPABILITY_DEFAULT_MEMORY_OVERHEAD,
    };
    if (!options)
        options = &defaults;
    VmigCapabilityResult *r = g_new0(VmigCapabilityResult, 1);
    r->node = g_strdup(target->node);
    r->reasons = g_ptr_array_new_with_free_func(g_free);
    r->missing_cpu_features = g_ptr_array_new_with_free_func(g_free);
    r->machine = g_strdup(guest->machine);
    r->source_libvirt_version = source->libvirt_version;
    r->source_qemu_version = source->qemu_version;
    r->target_libvirt_version = target->libvirt_version;
    r->target_qemu_version = target->qemu_version;
    r->free_memory_bytes = target->free_memory_bytes;
    r->required_memory_bytes = guest->memory_bytes > G_MAXUINT64 - options->memory_overhead_bytes
                                   ? G_MAXUINT64
                                   : guest->memory_bytes + options->memory_overhead_bytes;

    /* 1. target != source: by node name and by libvirt host UUID (two names can share a host;
     * libvirt itself refuses "Attempt to migrate guest to the same host"). */
    if (source->node && g_strcmp0(source->node, target->node) == 0)
        g_ptr_array_add(
            r->reasons,
            g_strdup_printf("target is the source: node name %s is the source node", target->node));
    const char *dst_uuid = target->caps ? target->caps->host_uuid : NULL;
    if (vmig_capability_same_uuid(source->host_uuid, dst_uuid))
        g_ptr_array_add(r->reasons,
                        g_strdup_printf("target is the source: %s has the libvirt host UUID %s "
                                        "of the source node %s",
                                        target->node, dst_uuid, source->node));

    /* 2. version pairs known not to work */
    g_autoptr(GPtrArray) v = vmig_capability_version_refusals(
        source->node, target->node, source->libvirt_version, source->qemu_version,
        target->libvirt_version, target->qemu_version);
    for (guint i = 0; i < v->len; i++)
        g_ptr_array_add(r->reasons, g_strdup(g_ptr_array_index(v, i)));

    /* 3. exact machine type and the target's emulator */
    vmig_capability_check_machine(guest, target, r);

    /* 4. the hypervisor (virt type) itself, then the CPU */
    if (target->domcaps_refusal)
        g_ptr_array_add(r->reasons,
                        g_strdup_printf("virt type %s for arch %s and machine type %s is not "
                                        "offered on %s: %s",
                                        guest->virt_type, guest->arch, guest->machine, target->node,
                                        target->domcaps_refusal));
    else
        vmig_capability_check_cpu(guest, source, target, options, r);

    /* 5. memory */
    if (target->free_memory_bytes < r->required_memory_bytes) {
        g_autofree char *free_s = vmig_capability_mib(target->free_memory_bytes);
        g_autofree char *mem_s = vmig_capability_mib(guest->memory_bytes);
        g_autofree char *ovh_s = vmig_capability_mib(options->memory_overhead_bytes);
        g_ptr_array_add(r->reasons,
                        g_strdup_printf("free memory on %s is %s (%" G_GUINT64_FORMAT
                                        " bytes), less than the guest memory %s plus overhead "
                                        "%s (%" G_GUINT64_FORMAT " bytes)",
                                        target->node, free_s, target->free_memory_bytes, mem_s,
                                        ovh_s, r->required_memory_bytes));
    }
    r->eligible = r->reasons->len == 0;
    return r;
}

const VmigCapabilityResult *
vmig_capability_select(VmigCapabilityResult *const *results, gsize n_results, char **refusal)
{
    for (gsize i = 0; i < n_results; i++) {
        if (results[i] && results[i]->eligible)
            return results[i];
    }
    if (refusal) {
        GString *s = g_string_new("no target node can take the guest: ");
        gboolean any = FALSE;
        for (gsize i = 0; i < n_results; i++) {
            for (guint j = 0; results[i] && j < results[i]->reasons->len; j++) {
                g_string_append_printf(s, "%s%s", any ? "; " : "",
                                       (const char *)g_ptr_array_index(results[i]->reasons, j));
                any = TRUE;
            }
        }
        if (!any)
            g_string_append(s, "no candidate node");
        *refusal = g_string_free(s, FALSE);
    }
    return NULL;
}
