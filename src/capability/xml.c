/* xml.c - parse libvirt's domain, capabilities, domain-capabilities and CPU XML into the plain
 * structs of vmig/capability.h, and rewrite the emulator of a domain XML (pure, no I/O).
 * libxml2 (already under libvirt) with XPath; network access and entity expansion are off. */
#include "vmig/capability.h"

#include <errno.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

G_DEFINE_QUARK(vmig - capability - error - quark, vmig_capability_error)

static const char *const vmig_capability_cpu_mode_names[] = {
    [VMIG_CAPABILITY_CPU_MODE_NONE] = "none",
    [VMIG_CAPABILITY_CPU_MODE_CUSTOM] = "custom",
    [VMIG_CAPABILITY_CPU_MODE_HOST_MODEL] = "host-model",
    [VMIG_CAPABILITY_CPU_MODE_HOST_PASSTHROUGH] = "host-passthrough",
    [VMIG_CAPABILITY_CPU_MODE_MAXIMUM] = "maximum",
};

const char *
vmig_capability_cpu_mode_to_string(VmigCapabilityCpuMode mode)
{
    if ((gsize)mode >= G_N_ELEMENTS(vmig_capability_cpu_mode_names))
        return "unknown";
    return vmig_capability_cpu_mode_names[mode];
}

gboolean
vmig_capability_cpu_mode_from_string(const char *name, VmigCapabilityCpuMode *out)
{
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_capability_cpu_mode_names); i++) {
        if (name && g_strcmp0(name, vmig_capability_cpu_mode_names[i]) == 0) {
            *out = (VmigCapabilityCpuMode)i;
            return TRUE;
        }
    }
    return FALSE;
}

/* libvirt's <memory unit='...'> scaled units (docs: formatdomain "Memory Allocation"). */
static const struct {
    const char *unit;
    guint64 factor;
} vmig_capability_memory_units[] = {
    {"b", 1},
    {"bytes", 1},
    {"KB", 1000},
    {"k", 1024},
    {"KiB", 1024},
    {"MB", 1000 * 1000},
    {"M", 1024 * 1024},
    {"MiB", 1024 * 1024},
    {"GB", G_GUINT64_CONSTANT(1000) * 1000 * 1000},
    {"G", G_GUINT64_CONSTANT(1024) * 1024 * 1024},
    {"GiB", G_GUINT64_CONSTANT(1024) * 1024 * 1024},
    {"TB", G_GUINT64_CONSTANT(1000) * 1000 * 1000 * 1000},
    {"T", G_GUINT64_CONSTANT(1024) * 1024 * 1024 * 1024},
    {"TiB", G_GUINT64_CONSTANT(1024) * 1024 * 1024 * 1024},
};

/* ---- small libxml2 helpers ------------------------------------------------------------- */

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, xmlXPathFreeContext)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathObject, xmlXPathFreeObject)

static xmlDoc *
vmig_capability_xml_read(const char *xml, const char *what, GError **error)
{
    if (!xml || !*xml) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML, "%s: empty XML", what);
        return NULL;
    }
    size_t len = strlen(xml);
    if (len > G_MAXINT) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "%s: XML of %zu bytes is too large", what, len);
        return NULL;
    }
    /* NOERROR/NOWARNING: libxml2 would print to stderr; the error goes to the GError. */
    xmlDoc *doc = xmlReadMemory(xml, (int)len, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *e = xmlGetLastError();
        g_autofree char *msg = g_strdup(e && e->message ? e->message : "parse error");
        g_strchomp(msg);
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "%s: malformed XML at line %d: %s", what, e ? e->line : 0, msg);
        return NULL;
    }
    return doc;
}

static char *
vmig_capability_xml_prop(xmlNode *node, const char *name)
{
    xmlChar *v = xmlGetProp(node, (const xmlChar *)name);
    if (!v)
        return NULL;
    char *out = g_strdup((const char *)v);
    xmlFree(v);
    return out;
}

static char *
vmig_capability_xml_content(xmlNode *node)
{
    xmlChar *v = xmlNodeGetContent(node);
    if (!v)
        return NULL;
    char *out = g_strstrip(g_strdup((const char *)v));
    xmlFree(v);
    return out;
}

/* The node set of @expr relative to @ctx_node (the caller does not free the nodes). */
static xmlXPathObject *
vmig_capability_xpath(xmlXPathContext *ctx, xmlNode *ctx_node, const char *expr)
{
    ctx->node = ctx_node;
    xmlXPathObject *obj = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    if (obj && obj->type != XPATH_NODESET) {
        xmlXPathFreeObject(obj);
        return NULL;
    }
    return obj;
}

static int
vmig_capability_xpath_count(xmlXPathObject *obj)
{
    return (obj && obj->nodesetval) ? obj->nodesetval->nodeNr : 0;
}

static xmlNode *
vmig_capability_xpath_node(xmlXPathContext *ctx, xmlNode *ctx_node, const char *expr)
{
    g_autoptr(xmlXPathObject) obj = vmig_capability_xpath(ctx, ctx_node, expr);
    if (vmig_capability_xpath_count(obj) == 0)
        return NULL;
    return obj->nodesetval->nodeTab[0];
}

/* Text of the first node @expr selects (an attribute or an element), NULL when none. */
static char *
vmig_capability_xpath_string(xmlXPathContext *ctx, xmlNode *ctx_node, const char *expr)
{
    xmlNode *n = vmig_capability_xpath_node(ctx, ctx_node, expr);
    if (!n)
        return NULL;
    char *s = vmig_capability_xml_content(n);
    if (s && !*s)
        g_clear_pointer(&s, g_free);
    return s;
}

static int
vmig_capability_strcmp_ptr(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and drop duplicates, so feature lists compare and print in a stable order. */
static void
vmig_capability_sort_unique(GPtrArray *names)
{
    g_ptr_array_sort(names, vmig_capability_strcmp_ptr);
    for (guint i = 1; i < names->len;) {
        if (strcmp(g_ptr_array_index(names, i - 1), g_ptr_array_index(names, i)) == 0)
            g_ptr_array_remove_index(names, i);
        else
            i++;
    }
}

/* ---- CPU ------------------------------------------------------------------------------- */

void
vmig_capability_cpu_free(VmigCapabilityCpu *cpu)
{
    if (!cpu)
        return;
    g_free(cpu->arch);
    g_free(cpu->model);
    g_free(cpu->vendor);
    if (cpu->required)
        g_ptr_array_unref(cpu->required);
    if (cpu->disabled)
        g_ptr_array_unref(cpu->disabled);
    g_free(cpu->xml);
    g_free(cpu);
}

/* Feature policies (formatdomain "CPU model and topology"): force and require make the guest
 * need the feature; disable and forbid keep it away; optional is neither. A host CPU's
 * <feature name> has no policy and means "present". */
static const struct {
    const char *policy;
    gboolean required;
    gboolean disabled;
} vmig_capability_feature_policies[] = {
    {"force", TRUE, FALSE},   {"require", TRUE, FALSE}, {"optional", FALSE, FALSE},
    {"disable", FALSE, TRUE}, {"forbid", FALSE, TRUE},
};

/* Parse a <cpu> (or domain-capabilities <mode name='host-model'>) element. @as_cpu_xml tells
 * how to serialize it for libvirt: the element itself, or re-wrapped as <cpu>. */
static VmigCapabilityCpu *
vmig_capability_cpu_from_node(xmlXPathContext *ctx, xmlNode *node, VmigCapabilityCpuMode mode,
                              const char *what, GError **error)
{
    g_autoptr(VmigCapabilityCpu) cpu = g_new0(VmigCapabilityCpu, 1);
    cpu->mode = mode;
    cpu->required = g_ptr_array_new_with_free_func(g_free);
    cpu->disabled = g_ptr_array_new_with_free_func(g_free);
    cpu->arch = vmig_capability_xpath_string(ctx, node, "./arch");
    cpu->model = vmig_capability_xpath_string(ctx, node, "./model");
    cpu->vendor = vmig_capability_xpath_string(ctx, node, "./vendor");

    g_autoptr(xmlXPathObject) feats = vmig_capability_xpath(ctx, node, "./feature");
    for (int i = 0; i < vmig_capability_xpath_count(feats); i++) {
        xmlNode *f = feats->nodesetval->nodeTab[i];
        g_autofree char *name = vmig_capability_xml_prop(f, "name");
        g_autofree char *policy = vmig_capability_xml_prop(f, "policy");
        if (!name || !*name) {
            g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                        "%s: <cpu><feature> without a name", what);
            return NULL;
        }
        gboolean known = FALSE, req = TRUE, dis = FALSE;
        if (!policy) {
            known = TRUE; /* host CPU: present */
        } else {
            for (gsize p = 0; p < G_N_ELEMENTS(vmig_capability_feature_policies); p++) {
                if (strcmp(policy, vmig_capability_feature_policies[p].policy) == 0) {
                    known = TRUE;
                    req = vmig_capability_feature_policies[p].required;
                    dis = vmig_capability_feature_policies[p].disabled;
                }
            }
        }
        if (!known) {
            g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                        "%s: <cpu><feature name='%s'> has unknown policy '%s'", what, name, policy);
            return NULL;
        }
        if (req)
            g_ptr_array_add(cpu->required, g_steal_pointer(&name));
        else if (dis)
            g_ptr_array_add(cpu->disabled, g_steal_pointer(&name));
    }
    vmig_capability_sort_unique(cpu->required);
    vmig_capability_sort_unique(cpu->disabled);

    /* Serialize as a standalone <cpu>: libvirt's CPU APIs take exactly that. The
     * domain-capabilities host-model <mode> carries the same children as a custom <cpu>. */
    xmlBuffer *buf = xmlBufferCreate();
    if (xmlStrcmp(node->name, (const xmlChar *)"cpu") == 0) {
        xmlNodeDump(buf, node->doc, node, 0, 0);
        cpu->xml = g_strdup((const char *)xmlBufferContent(buf));
    } else {
        GString *s = g_string_new("<cpu mode='custom' match='exact'>");
        for (xmlNode *c = node->children; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE)
                continue;
            xmlBufferEmpty(buf);
            xmlNodeDump(buf, node->doc, c, 0, 0);
            g_string_append(s, (const char *)xmlBufferContent(buf));
        }
        g_string_append(s, "</cpu>");
        cpu->xml = g_string_free(s, FALSE);
    }
    xmlBufferFree(buf);
    return g_steal_pointer(&cpu);
}

static gboolean
vmig_capability_cpu_mode_of(xmlNode *node, VmigCapabilityCpuMode *mode, const char *what,
                            GError **error)
{
    g_autofree char *m = vmig_capability_xml_prop(node, "mode");
    if (!m) {
        *mode = VMIG_CAPABILITY_CPU_MODE_CUSTOM; /* libvirt's default */
        return TRUE;
    }
    if (!vmig_capability_cpu_mode_from_string(m, mode) || *mode == VMIG_CAPABILITY_CPU_MODE_NONE) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "%s: <cpu mode='%s'> is not a CPU mode", what, m);
        return FALSE;
    }
    return TRUE;
}

VmigCapabilityCpu *
vmig_capability_cpu_parse(const char *xml, GError **error)
{
    g_autoptr(xmlDoc) doc = vmig_capability_xml_read(xml, "CPU definition", error);
    if (!doc)
        return NULL;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || xmlStrcmp(root->name, (const xmlChar *)"cpu") != 0) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "CPU definition: root element is <%s>, expected <cpu>",
                    root ? (const char *)root->name : "");
        return NULL;
    }
    VmigCapabilityCpuMode mode;
    if (!vmig_capability_cpu_mode_of(root, &mode, "CPU definition", error))
        return NULL;
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    return vmig_capability_cpu_from_node(ctx, root, mode, "CPU definition", error);
}

/* ---- domain ---------------------------------------------------------------------------- */

void
vmig_capability_domain_free(VmigCapabilityDomain *domain)
{
    if (!domain)
        return;
    g_free(domain->name);
    g_free(domain->uuid);
    g_free(domain->virt_type);
    g_free(domain->arch);
    g_free(domain->machine);
    g_free(domain->emulator);
    vmig_capability_cpu_free(domain->cpu);
    g_free(domain);
}

static gboolean
vmig_capability_parse_memory(const char *what, const char *value, const char *unit, guint64 *out,
                             GError **error)
{
    guint64 factor = 0;
    const char *u = unit ? unit : "KiB";
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_capability_memory_units); i++) {
        if (strcmp(u, vmig_capability_memory_units[i].unit) == 0)
            factor = vmig_capability_memory_units[i].factor;
    }
    if (!factor) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "%s: <memory unit='%s'> is not a unit", what, u);
        return FALSE;
    }
    guint64 n = 0;
    g_autoptr(GError) perr = NULL;
    if (!value || !g_ascii_string_to_unsigned(value, 10, 1, G_MAXUINT64, &n, &perr) ||
        n > G_MAXUINT64 / factor) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "%s: <memory> '%s' is not a positive size in %s", what, value ? value : "", u);
        return FALSE;
    }
    *out = n * factor;
    return TRUE;
}

VmigCapabilityDomain *
vmig_capability_domain_parse(const char *xml, GError **error)
{
    g_autoptr(xmlDoc) doc = vmig_capability_xml_read(xml, "domain XML", error);
    if (!doc)
        return NULL;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || xmlStrcmp(root->name, (const xmlChar *)"domain") != 0) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "domain XML: root element is <%s>, expected <domain>",
                    root ? (const char *)root->name : "");
        return NULL;
    }
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autoptr(VmigCapabilityDomain) d = g_new0(VmigCapabilityDomain, 1);
    d->name = vmig_capability_xpath_string(ctx, root, "./name");
    const char *what = d->name ? d->name : "domain XML";
    d->uuid = vmig_capability_xpath_string(ctx, root, "./uuid");
    d->virt_type = vmig_capability_xml_prop(root, "type");
    d->arch = vmig_capability_xpath_string(ctx, root, "./os/type/@arch");
    d->machine = vmig_capability_xpath_string(ctx, root, "./os/type/@machine");
    d->emulator = vmig_capability_xpath_string(ctx, root, "./devices/emulator");
    static const struct {
        const char *element;
        gsize offset;
    } required[] = {
        {"<name>", G_STRUCT_OFFSET(VmigCapabilityDomain, name)},
        {"<domain type>", G_STRUCT_OFFSET(VmigCapabilityDomain, virt_type)},
        {"<os><type arch>", G_STRUCT_OFFSET(VmigCapabilityDomain, arch)},
        {"<os><type machine>", G_STRUCT_OFFSET(VmigCapabilityDomain, machine)},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(required); i++) {
        if (!G_STRUCT_MEMBER(char *, d, required[i].offset)) {
            g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                        "%s: %s is missing", what, required[i].element);
            return NULL;
        }
    }
    xmlNode *mem = vmig_capability_xpath_node(ctx, root, "./memory");
    if (!mem) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "%s: <memory> is missing", what);
        return NULL;
    }
    g_autofree char *mem_value = vmig_capability_xml_content(mem);
    g_autofree char *mem_unit = vmig_capability_xml_prop(mem, "unit");
    if (!vmig_capability_parse_memory(what, mem_value, mem_unit, &d->memory_bytes, error))
        return NULL;

    xmlNode *cpu = vmig_capability_xpath_node(ctx, root, "./cpu");
    if (cpu) {
        VmigCapabilityCpuMode mode;
        if (!vmig_capability_cpu_mode_of(cpu, &mode, what, error))
            return NULL;
        d->cpu = vmig_capability_cpu_from_node(ctx, cpu, mode, what, error);
        if (!d->cpu)
            return NULL;
        /* An unresolved host-model says nothing about the CPU the guest got: the running
         * domain's XML carries the resolved model and features (field case B07). */
        if (mode == VMIG_CAPABILITY_CPU_MODE_HOST_MODEL && !d->cpu->model) {
            g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                        "%s: <cpu mode='host-model'> has no resolved <model>; pass the running "
                        "domain's migratable XML",
                        what);
            return NULL;
        }
    }
    return g_steal_pointer(&d);
}

/* ---- capabilities ---------------------------------------------------------------------- */

static void
vmig_capability_machine_free(gpointer p)
{
    VmigCapabilityMachine *m = p;
    g_free(m->name);
    g_free(m->canonical);
    g_free(m->virt_type);
    g_free(m);
}

static void
vmig_capability_guest_arch_free(gpointer p)
{
    VmigCapabilityGuestArch *g = p;
    g_free(g->arch);
    g_free(g->emulator);
    g_ptr_array_unref(g->machines);
    g_free(g);
}

void
vmig_capability_host_free(VmigCapabilityHost *host)
{
    if (!host)
        return;
    g_free(host->host_uuid);
    vmig_capability_cpu_free(host->host_cpu);
    if (host->guests)
        g_ptr_array_unref(host->guests);
    g_free(host);
}

static void
vmig_capability_add_machines(xmlXPathContext *ctx, xmlNode *parent, const char *virt_type,
                             GPtrArray *out)
{
    g_autoptr(xmlXPathObject) ms = vmig_capability_xpath(ctx, parent, "./machine");
    for (int i = 0; i < vmig_capability_xpath_count(ms); i++) {
        xmlNode *n = ms->nodesetval->nodeTab[i];
        g_autofree char *name = vmig_capability_xml_content(n);
        if (!name || !*name)
            continue;
        VmigCapabilityMachine *m = g_new0(VmigCapabilityMachine, 1);
        m->name = g_steal_pointer(&name);
        m->canonical = vmig_capability_xml_prop(n, "canonical");
        m->virt_type = g_strdup(virt_type);
        g_ptr_array_add(out, m);
    }
}

VmigCapabilityHost *
vmig_capability_host_parse(const char *xml, GError **error)
{
    g_autoptr(xmlDoc) doc = vmig_capability_xml_read(xml, "capabilities XML", error);
    if (!doc)
        return NULL;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || xmlStrcmp(root->name, (const xmlChar *)"capabilities") != 0) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "capabilities XML: root element is <%s>, expected <capabilities>",
                    root ? (const char *)root->name : "");
        return NULL;
    }
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autoptr(VmigCapabilityHost) host = g_new0(VmigCapabilityHost, 1);
    host->guests = g_ptr_array_new_with_free_func(vmig_capability_guest_arch_free);
    host->host_uuid = vmig_capability_xpath_string(ctx, root, "./host/uuid");
    if (!host->host_uuid) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "capabilities XML: <host><uuid> is missing");
        return NULL;
    }
    xmlNode *cpu = vmig_capability_xpath_node(ctx, root, "./host/cpu");
    if (cpu) {
        host->host_cpu = vmig_capability_cpu_from_node(ctx, cpu, VMIG_CAPABILITY_CPU_MODE_CUSTOM,
                                                       "capabilities XML <host>", error);
        if (!host->host_cpu)
            return NULL;
    }
    g_autoptr(xmlXPathObject) archs =
        vmig_capability_xpath(ctx, root, "./guest[os_type='hvm']/arch");
    for (int i = 0; i < vmig_capability_xpath_count(archs); i++) {
        xmlNode *a = archs->nodesetval->nodeTab[i];
        VmigCapabilityGuestArch *g = g_new0(VmigCapabilityGuestArch, 1);
        g->arch = vmig_capability_xml_prop(a, "name");
        g->emulator = vmig_capability_xpath_string(ctx, a, "./emulator");
        g->machines = g_ptr_array_new_with_free_func(vmig_capability_machine_free);
        g_ptr_array_add(host->guests, g);
        if (!g->arch) {
            g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                        "capabilities XML: <guest><arch> without a name");
            return NULL;
        }
        vmig_capability_add_machines(ctx, a, NULL, g->machines);
        /* Machines under <domain type='kvm'> exist only for that domain type. */
        g_autoptr(xmlXPathObject) doms = vmig_capability_xpath(ctx, a, "./domain");
        for (int j = 0; j < vmig_capability_xpath_count(doms); j++) {
            xmlNode *dn = doms->nodesetval->nodeTab[j];
            g_autofree char *type = vmig_capability_xml_prop(dn, "type");
            if (type)
                vmig_capability_add_machines(ctx, dn, type, g->machines);
        }
    }
    return g_steal_pointer(&host);
}

/* ---- domain capabilities ---------------------------------------------------------------- */

void
vmig_capability_domcaps_free(VmigCapabilityDomcaps *domcaps)
{
    if (!domcaps)
        return;
    g_free(domcaps->path);
    g_free(domcaps->virt_type);
    g_free(domcaps->machine);
    g_free(domcaps->arch);
    vmig_capability_cpu_free(domcaps->host_model);
    g_free(domcaps);
}

VmigCapabilityDomcaps *
vmig_capability_domcaps_parse(const char *xml, GError **error)
{
    g_autoptr(xmlDoc) doc = vmig_capability_xml_read(xml, "domain capabilities XML", error);
    if (!doc)
        return NULL;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || xmlStrcmp(root->name, (const xmlChar *)"domainCapabilities") != 0) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "domain capabilities XML: root element is <%s>, expected "
                    "<domainCapabilities>",
                    root ? (const char *)root->name : "");
        return NULL;
    }
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autoptr(VmigCapabilityDomcaps) dc = g_new0(VmigCapabilityDomcaps, 1);
    dc->path = vmig_capability_xpath_string(ctx, root, "./path");
    dc->virt_type = vmig_capability_xpath_string(ctx, root, "./domain");
    dc->machine = vmig_capability_xpath_string(ctx, root, "./machine");
    dc->arch = vmig_capability_xpath_string(ctx, root, "./arch");
    if (!dc->path) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "domain capabilities XML: <path> is missing");
        return NULL;
    }
    g_autofree char *pt =
        vmig_capability_xpath_string(ctx, root, "./cpu/mode[@name='host-passthrough']/@supported");
    dc->host_passthrough_supported = g_strcmp0(pt, "yes") == 0;
    xmlNode *hm =
        vmig_capability_xpath_node(ctx, root, "./cpu/mode[@name='host-model'][@supported='yes']");
    if (hm) {
        dc->host_model = vmig_capability_cpu_from_node(ctx, hm, VMIG_CAPABILITY_CPU_MODE_CUSTOM,
                                                       "domain capabilities host-model", error);
        if (!dc->host_model)
            return NULL;
    }
    return g_steal_pointer(&dc);
}

/* ---- destination XML ---------------------------------------------------------------------- */

/* Only the text of <emulator> changes, byte for byte, so that nothing else in the migratable
 * XML (above all the machine type) can be altered by a serializer round trip. The element is
 * located in the text and the result is re-parsed to prove the edit landed where meant. */
char *
vmig_capability_destination_xml(const char *domain_xml, const char *emulator, GError **error)
{
    if (!emulator || !*emulator || emulator[0] != '/') {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_INVALID,
                    "emulator '%s' is not an absolute path", emulator ? emulator : "");
        return NULL;
    }
    g_autoptr(VmigCapabilityDomain) before = vmig_capability_domain_parse(domain_xml, error);
    if (!before)
        return NULL;
    static const char open_tag[] = "<emulator>", close_tag[] = "</emulator>";
    const char *start = strstr(domain_xml, open_tag);
    if (!start || strstr(start + 1, open_tag)) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "%s: domain XML must have exactly one <emulator> element", before->name);
        return NULL;
    }
    const char *text = start + strlen(open_tag);
    const char *end = strstr(text, close_tag);
    if (!end) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "%s: <emulator> is not closed", before->name);
        return NULL;
    }
    g_autofree char *escaped = g_markup_escape_text(emulator, -1);
    GString *out = g_string_new_len(domain_xml, text - domain_xml);
    g_string_append(out, escaped);
    g_string_append(out, end);
    g_autofree char *result = g_string_free(out, FALSE);

    g_autoptr(VmigCapabilityDomain) after = vmig_capability_domain_parse(result, error);
    if (!after)
        return NULL;
    if (g_strcmp0(after->emulator, emulator) != 0 ||
        g_strcmp0(after->machine, before->machine) != 0) {
        g_set_error(error, VMIG_CAPABILITY_ERROR, VMIG_CAPABILITY_ERROR_XML,
                    "%s: the <emulator> text is not the <devices><emulator> element", before->name);
        return NULL;
    }
    return g_steal_pointer(&result);
}
