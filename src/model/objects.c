/* objects.c - the typed views: VMI, VMIM, PVC, DataVolume, Node, Namespace, KubeVirt CR,
 * MigrationPolicy. Each parser validates what later code relies on and keeps a reference to the
 * JsonNode so write-back preserves unknown fields. */
#include "model-private.h"

#include <string.h>

/* The object must be of @want when it says what it is (items of a list response may not). */
static gboolean
check_kind(JsonNode *node, VmigModelKind want, GError **error)
{
    if (!node || !JSON_NODE_HOLDS_OBJECT(node)) {
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_TYPE, "%s: not a JSON object",
                    vmig_model_kind_to_string(want));
        return FALSE;
    }
    JsonObject *o = json_node_get_object(node);
    if (!json_object_has_member(o, "kind"))
        return TRUE;
    if (vmig_model_kind_of(node) != want) {
        JsonNode *k = json_object_get_member(o, "kind");
        JsonNode *a = json_object_get_member(o, "apiVersion");
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_KIND,
                    "expected %s, got apiVersion %s kind %s", vmig_model_kind_to_string(want),
                    a && JSON_NODE_HOLDS_VALUE(a) && json_node_get_value_type(a) == G_TYPE_STRING
                        ? json_node_get_string(a)
                        : "?",
                    k && JSON_NODE_HOLDS_VALUE(k) && json_node_get_value_type(k) == G_TYPE_STRING
                        ? json_node_get_string(k)
                        : "?");
        return FALSE;
    }
    return TRUE;
}

/* Re-wraps a name/uid validation error with the object. */
static gboolean
name_ok(const char *value, const char *field, const char *what, GError **error)
{
    g_autoptr(GError) e = NULL;
    if (vmig_model_validate_name(value, field, &e))
        return TRUE;
    vmig_model_set_error(error, e->code, what, "%s", e->message);
    return FALSE;
}

static gboolean
enum_bad(GError **error, const char *what, const char *path, const char *value)
{
    g_autofree char *cut = g_strndup(value, 64);
    g_autofree char *esc = g_strescape(cut, NULL);
    vmig_model_set_error(error, VMIG_MODEL_ERROR_INVALID, what, "%s: unknown value \"%s\"", path,
                         esc);
    return FALSE;
}

/* Element @i of @a as an object, or an error naming "@path[i]". */
static JsonObject *
array_object(JsonArray *a, guint i, const char *what, const char *path, GError **error)
{
    JsonNode *n = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_OBJECT(n)) {
        vmig_model_set_error(error, VMIG_MODEL_ERROR_TYPE, what, "%s[%u] must be an object", path,
                             i);
        return NULL;
    }
    return json_node_get_object(n);
}

static gboolean
has_member(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);
    return n && !JSON_NODE_HOLDS_NULL(n);
}

/* ---- VMI ------------------------------------------------------------------------------ */

static void
interface_free(VmigModelInterface *i)
{
    g_free(i->name);
    g_free(i->binding_plugin);
    g_free(i);
}

static void
network_free(VmigModelNetwork *n)
{
    g_free(n->name);
    g_free(n->multus_network_name);
    g_free(n);
}

static void
disk_free(VmigModelDisk *d)
{
    g_free(d->name);
    g_free(d->device);
    g_free(d->bus);
    g_free(d);
}

static void
volume_free(VmigModelVolume *v)
{
    g_free(v->name);
    g_free(v->claim_name);
    g_free(v->host_disk_path);
    g_free(v);
}

void
vmig_model_vmi_free(VmigModelVmi *vmi)
{
    if (!vmi)
        return;
    if (vmi->node)
        json_node_unref(vmi->node);
    vmig_model_meta_clear(&vmi->meta);
    g_free(vmi->cpu_model);
    g_clear_pointer(&vmi->cpu_features, g_ptr_array_unref);
    g_clear_pointer(&vmi->interfaces, g_ptr_array_unref);
    g_clear_pointer(&vmi->networks, g_ptr_array_unref);
    g_clear_pointer(&vmi->disks, g_ptr_array_unref);
    g_clear_pointer(&vmi->volumes, g_ptr_array_unref);
    g_clear_pointer(&vmi->host_devices, g_ptr_array_unref);
    g_clear_pointer(&vmi->gpus, g_ptr_array_unref);
    g_clear_pointer(&vmi->node_selector, g_hash_table_unref);
    g_free(vmi->node_name);
    g_clear_pointer(&vmi->conditions, g_ptr_array_unref);
    g_free(vmi->evacuation_node_name);
    vmig_model_migration_state_free(vmi->migration_state);
    g_free(vmi);
}

/* Names of the entries of an array of {name: ...} objects (hostDevices, gpus, features). */
static gboolean
parse_named_list(JsonObject *parent, const char *member, const char *what, const char *path,
                 GPtrArray *out, GError **error)
{
    JsonArray *a = vmig_model_get_array(parent, member, what, path, error);
    if (!a)
        return !(error && *error);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *o = array_object(a, i, what, path, error);
        if (!o)
            return FALSE;
        g_autofree char *p = g_strdup_printf("%s[%u].name", path, i);
        char *name = NULL;
        if (!vmig_model_get_string(o, "name", what, p, TRUE, &name, error))
            return FALSE;
        g_ptr_array_add(out, name);
    }
    return TRUE;
}

static gboolean
parse_interfaces(VmigModelVmi *vmi, JsonObject *devices, const char *what, GError **error)
{
    const char *path = "spec.domain.devices.interfaces";
    JsonArray *a = vmig_model_get_array(devices, "interfaces", what, path, error);
    if (!a)
        return !(error && *error);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *o = array_object(a, i, what, path, error);
        if (!o)
            return FALSE;
        VmigModelInterface *itf = g_new0(VmigModelInterface, 1);
        g_ptr_array_add(vmi->interfaces, itf);
        g_autofree char *p = g_strdup_printf("%s[%u]", path, i);
        g_autofree char *pn = g_strconcat(p, ".name", NULL);
        if (!vmig_model_get_string(o, "name", what, pn, TRUE, &itf->name, error))
            return FALSE;
        /* KubeVirt admits exactly one binding member; with none, its default
         * (defaultNetworkInterface) is bridge, the conservative reading for migration. */
        int found = 0;
        for (int b = VMIG_MODEL_BINDING_BRIDGE; b <= VMIG_MODEL_BINDING_PLUGIN; b++) {
            if (has_member(o, vmig_model_binding_to_string(b))) {
                if (found++) {
                    vmig_model_set_error(error, VMIG_MODEL_ERROR_INVALID, what,
                                         "%s: more than one binding (%s and %s)", p,
                                         vmig_model_binding_to_string(itf->binding),
                                         vmig_model_binding_to_string(b));
                    return FALSE;
                }
                itf->binding = b;
            }
        }
        if (itf->binding == VMIG_MODEL_BINDING_PLUGIN) {
            g_autofree char *pb = g_strconcat(p, ".binding", NULL);
            JsonObject *bo = vmig_model_get_object(o, "binding", what, pb, TRUE, error);
            g_autofree char *pbn = g_strconcat(p, ".binding.name", NULL);
            if (!bo ||
                !vmig_model_get_string(bo, "name", what, pbn, TRUE, &itf->binding_plugin, error))
                return FALSE;
        }
    }
    return TRUE;
}

static gboolean
parse_disks(VmigModelVmi *vmi, JsonObject *devices, const char *what, GError **error)
{
    static const char *const device_members[] = {"disk", "cdrom", "lun"};
    const char *path = "spec.domain.devices.disks";
    JsonArray *a = vmig_model_get_array(devices, "disks", what, path, error);
    if (!a)
        return !(error && *error);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *o = array_object(a, i, what, path, error);
        if (!o)
            return FALSE;
        VmigModelDisk *d = g_new0(VmigModelDisk, 1);
        g_ptr_array_add(vmi->disks, d);
        g_autofree char *p = g_strdup_printf("%s[%u]", path, i);
        g_autofree char *pn = g_strconcat(p, ".name", NULL);
        if (!vmig_model_get_string(o, "name", what, pn, TRUE, &d->name, error))
            return FALSE;
        d->device = g_strdup("disk");
        for (gsize m = 0; m < G_N_ELEMENTS(device_members); m++) {
            g_autofree char *pm = g_strconcat(p, ".", device_members[m], NULL);
            JsonObject *dev = vmig_model_get_object(o, device_members[m], what, pm, FALSE, error);
            if (error && *error)
                return FALSE;
            if (!dev)
                continue;
            g_free(d->device);
            d->device = g_strdup(device_members[m]);
            g_autofree char *pb = g_strconcat(pm, ".bus", NULL);
            g_autofree char *pr = g_strconcat(pm, ".readonly", NULL);
            d->read_only = m == 1; /* a cdrom is read-only unless it says otherwise */
            if (!vmig_model_get_string(dev, "bus", what, pb, FALSE, &d->bus, error) ||
                !vmig_model_get_bool(dev, "readonly", what, pr, &d->read_only, error))
                return FALSE;
            break;
        }
    }
    return TRUE;
}

static gboolean
parse_volumes(VmigModelVmi *vmi, JsonObject *spec, const char *what, GError **error)
{
    const char *path = "spec.volumes";
    JsonArray *a = vmig_model_get_array(spec, "volumes", what, path, error);
    if (!a)
        return !(error && *error);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *o = array_object(a, i, what, path, error);
        if (!o)
            return FALSE;
        VmigModelVolume *v = g_new0(VmigModelVolume, 1);
        g_ptr_array_add(vmi->volumes, v);
        g_autofree char *p = g_strdup_printf("%s[%u]", path, i);
        g_autofree char *pn = g_strconcat(p, ".name", NULL);
        if (!vmig_model_get_string(o, "name", what, pn, TRUE, &v->name, error))
            return FALSE;
        int found = -1;
        for (int k = VMIG_MODEL_VOLUME_CONTAINER_DISK; k <= VMIG_MODEL_VOLUME_MEMORY_DUMP; k++) {
            if (has_member(o, vmig_model_volume_kind_to_string(k))) {
                if (found >= 0) {
                    vmig_model_set_error(error, VMIG_MODEL_ERROR_INVALID, what,
                                         "%s (%s): more than one volume source (%s and %s)", p,
                                         v->name, vmig_model_volume_kind_to_string(found),
                                         vmig_model_volume_kind_to_string(k));
                    return FALSE;
                }
                found = k;
            }
        }
        if (found < 0) {
            vmig_model_set_error(error, VMIG_MODEL_ERROR_INVALID, what,
                                 "%s (%s): no volume source this version knows", p, v->name);
            return FALSE;
        }
        v->kind = found;
        const char *kname = vmig_model_volume_kind_to_string(found);
        g_autofree char *pk = g_strconcat(p, ".", kname, NULL);
        JsonObject *src = vmig_model_get_object(o, kname, what, pk, TRUE, error);
        if (!src)
            return FALSE;
        const char *claim_member = NULL;
        JsonObject *claim_obj = src;
        g_autofree char *pc = NULL;
        switch (v->kind) {
        case VMIG_MODEL_VOLUME_PERSISTENT_VOLUME_CLAIM:
        case VMIG_MODEL_VOLUME_MEMORY_DUMP:
            claim_member = "claimName";
            break;
        case VMIG_MODEL_VOLUME_DATA_VOLUME:
            claim_member = "name";
            break;
        case VMIG_MODEL_VOLUME_EPHEMERAL: {
            g_autofree char *pe = g_strconcat(pk, ".persistentVolumeClaim", NULL);
            claim_obj = vmig_model_get_object(src, "persistentVolumeClaim", what, pe, TRUE, error);
            if (!claim_obj)
                return FALSE;
            pk = (g_free(pk), g_strdup(pe));
            claim_member = "claimName";
            break;
        }
        case VMIG_MODEL_VOLUME_HOST_DISK: {
            g_autofree char *pp = g_strconcat(pk, ".path", NULL);
            g_autofree char *ps = g_strconcat(pk, ".shared", NULL);
            g_autofree char *pcap = g_strconcat(pk, ".capacity", NULL);
            if (!vmig_model_get_string(src, "path", what, pp, TRUE, &v->host_disk_path, error) ||
                !vmig_model_get_bool(src, "shared", what, ps, &v->host_disk_shared, error) ||
                !vmig_model_get_quantity_bytes(src, "capacity", what, pcap, &v->capacity_bytes,
                                               error))
                return FALSE;
            break;
        }
        case VMIG_MODEL_VOLUME_EMPTY_DISK: {
            g_autofree char *pcap = g_strconcat(pk, ".capacity", NULL);
            if (!vmig_model_get_quantity_bytes(src, "capacity", what, pcap, &v->capacity_bytes,
                                               error))
                return FALSE;
            break;
        }
        default:
            break;
        }
        if (claim_member) {
            pc = g_strconcat(pk, ".", claim_member, NULL);
            if (!vmig_model_get_string(claim_obj, claim_member, what, pc, TRUE, &v->claim_name,
                                       error) ||
                !name_ok(v->claim_name, pc, what, error))
                return FALSE;
        }
    }
    return TRUE;
}

static gboolean
parse_networks(VmigModelVmi *vmi, JsonObject *spec, const char *what, GError **error)
{
    const char *path = "spec.networks";
    JsonArray *a = vmig_model_get_array(spec, "networks", what, path, error);
    if (!a)
        return !(error && *error);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *o = array_object(a, i, what, path, error);
        if (!o)
            return FALSE;
        VmigModelNetwork *n = g_new0(VmigModelNetwork, 1);
        g_ptr_array_add(vmi->networks, n);
        g_autofree char *p = g_strdup_printf("%s[%u]", path, i);
        g_autofree char *pn = g_strconcat(p, ".name", NULL);
        g_autofree char *pm = g_strconcat(p, ".multus", NULL);
        g_autofree char *pmn = g_strconcat(p, ".multus.networkName", NULL);
        if (!vmig_model_get_string(o, "name", what, pn, TRUE, &n->name, error))
            return FALSE;
        n->pod = has_member(o, "pod");
        JsonObject *m = vmig_model_get_object(o, "multus", what, pm, FALSE, error);
        if (error && *error)
            return FALSE;
        if (m && !vmig_model_get_string(m, "networkName", what, pmn, FALSE, &n->multus_network_name,
                                        error))
            return FALSE;
    }
    return TRUE;
}

static gboolean
parse_vmi_spec(VmigModelVmi *vmi, JsonObject *root, const char *what, GError **error)
{
    JsonObject *spec = vmig_model_get_object(root, "spec", what, "spec", TRUE, error);
    if (!spec)
        return FALSE;
    JsonObject *domain = vmig_model_get_object(spec, "domain", what, "spec.domain", TRUE, error);
    if (!domain)
        return FALSE;
    JsonObject *cpu = vmig_model_get_object(domain, "cpu", what, "spec.domain.cpu", FALSE, error);
    if (error && *error)
        return FALSE;
    if (cpu && (!vmig_model_get_string(cpu, "model", what, "spec.domain.cpu.model", FALSE,
                                       &vmi->cpu_model, error) ||
                !parse_named_list(cpu, "features", what, "spec.domain.cpu.features",
                                  vmi->cpu_features, error)))
        return FALSE;

    /* Guest memory: memory.guest wins, then the resource request, then the limit. */
    JsonObject *mem =
        vmig_model_get_object(domain, "memory", what, "spec.domain.memory", FALSE, error);
    if (error && *error)
        return FALSE;
    JsonObject *res =
        vmig_model_get_object(domain, "resources", what, "spec.domain.resources", FALSE, error);
    if (error && *error)
        return FALSE;
    JsonObject *req = vmig_model_get_object(res, "requests", what, "spec.domain.resources.requests",
                                            FALSE, error);
    if (error && *error)
        return FALSE;
    JsonObject *lim =
        vmig_model_get_object(res, "limits", what, "spec.domain.resources.limits", FALSE, error);
    if (error && *error)
        return FALSE;
    if (!vmig_model_get_quantity_bytes(lim, "memory", what, "spec.domain.resources.limits.memory",
                                       &vmi->memory_bytes, error) ||
        !vmig_model_get_quantity_bytes(req, "memory", what, "spec.domain.resources.requests.memory",
                                       &vmi->memory_bytes, error) ||
        !vmig_model_get_quantity_bytes(mem, "guest", what, "spec.domain.memory.guest",
                                       &vmi->memory_bytes, error))
        return FALSE;

    JsonObject *devices =
        vmig_model_get_object(domain, "devices", what, "spec.domain.devices", FALSE, error);
    if (error && *error)
        return FALSE;
    if (!parse_interfaces(vmi, devices, what, error) || !parse_disks(vmi, devices, what, error) ||
        !parse_named_list(devices, "hostDevices", what, "spec.domain.devices.hostDevices",
                          vmi->host_devices, error) ||
        !parse_named_list(devices, "gpus", what, "spec.domain.devices.gpus", vmi->gpus, error))
        return FALSE;

    JsonObject *ls = vmig_model_get_object(domain, "launchSecurity", what,
                                           "spec.domain.launchSecurity", FALSE, error);
    if (error && *error)
        return FALSE;
    if (ls) {
        if (has_member(ls, "sev"))
            vmi->launch_security = VMIG_MODEL_LAUNCH_SECURITY_SEV;
        else if (has_member(ls, "snp"))
            vmi->launch_security = VMIG_MODEL_LAUNCH_SECURITY_SNP;
        else if (has_member(ls, "tdx"))
            vmi->launch_security = VMIG_MODEL_LAUNCH_SECURITY_TDX;
        else /* an empty launchSecurity asks for IBM Z Secure Execution */
            vmi->launch_security = VMIG_MODEL_LAUNCH_SECURITY_SECURE_EXECUTION;
    }
    JsonObject *features =
        vmig_model_get_object(domain, "features", what, "spec.domain.features", FALSE, error);
    if (error && *error)
        return FALSE;
    JsonObject *hvp = vmig_model_get_object(features, "hypervPassthrough", what,
                                            "spec.domain.features.hypervPassthrough", FALSE, error);
    if (error && *error)
        return FALSE;
    if (hvp &&
        !vmig_model_get_bool(hvp, "enabled", what, "spec.domain.features.hypervPassthrough.enabled",
                             &vmi->hyperv_passthrough, error))
        return FALSE;

    g_autofree char *es = NULL;
    if (!vmig_model_get_string(spec, "evictionStrategy", what, "spec.evictionStrategy", FALSE, &es,
                               error))
        return FALSE;
    if (es && !vmig_model_eviction_strategy_from_string(es, &vmi->eviction_strategy))
        return enum_bad(error, what, "spec.evictionStrategy", es);
    g_clear_pointer(&vmi->node_selector, g_hash_table_unref);
    return parse_networks(vmi, spec, what, error) && parse_volumes(vmi, spec, what, error) &&
           vmig_model_get_string_map(spec, "nodeSelector", what, "spec.nodeSelector",
                                     &vmi->node_selector, error);
}

static gboolean
parse_vmi_status(VmigModelVmi *vmi, JsonObject *root, const char *what, GError **error)
{
    JsonObject *status = vmig_model_get_object(root, "status", what, "status", FALSE, error);
    if (error && *error)
        return FALSE;
    g_autofree char *phase = NULL, *method = NULL;
    if (!vmig_model_get_string(status, "nodeName", what, "status.nodeName", FALSE, &vmi->node_name,
                               error) ||
        (vmi->node_name && *vmi->node_name &&
         !name_ok(vmi->node_name, "status.nodeName", what, error)) ||
        !vmig_model_get_string(status, "phase", what, "status.phase", FALSE, &phase, error) ||
        !vmig_model_get_string(status, "migrationMethod", what, "status.migrationMethod", FALSE,
                               &method, error) ||
        !vmig_model_get_string(status, "evacuationNodeName", what, "status.evacuationNodeName",
                               FALSE, &vmi->evacuation_node_name, error))
        return FALSE;
    if (phase && !vmig_model_vmi_phase_from_string(phase, &vmi->phase))
        return enum_bad(error, what, "status.phase", phase);
    if (method && !vmig_model_migration_method_from_string(method, &vmi->migration_method))
        return enum_bad(error, what, "status.migrationMethod", method);
    g_clear_pointer(&vmi->conditions, g_ptr_array_unref);
    return vmig_model_conditions_parse(status, what, &vmi->conditions, error) &&
           vmig_model_migration_state_parse(status, what, &vmi->migration_state, error);
}

VmigModelVmi *
vmig_model_vmi_from_json(JsonNode *node, GError **error)
{
    if (!check_kind(node, VMIG_MODEL_KIND_VMI, error))
        return NULL;
    g_autoptr(VmigModelVmi) vmi = g_new0(VmigModelVmi, 1);
    vmi->node = json_node_ref(node);
    vmi->cpu_features = g_ptr_array_new_with_free_func(g_free);
    vmi->interfaces = g_ptr_array_new_with_free_func((GDestroyNotify)interface_free);
    vmi->networks = g_ptr_array_new_with_free_func((GDestroyNotify)network_free);
    vmi->disks = g_ptr_array_new_with_free_func((GDestroyNotify)disk_free);
    vmi->volumes = g_ptr_array_new_with_free_func((GDestroyNotify)volume_free);
    vmi->host_devices = g_ptr_array_new_with_free_func(g_free);
    vmi->gpus = g_ptr_array_new_with_free_func(g_free);
    JsonObject *root = json_node_get_object(node);
    g_autofree char *what = NULL;
    if (!vmig_model_meta_parse(root, "VirtualMachineInstance", TRUE, &vmi->meta, &what, error) ||
        !parse_vmi_spec(vmi, root, what, error) || !parse_vmi_status(vmi, root, what, error))
        return NULL;
    return g_steal_pointer(&vmi);
}

const VmigModelCondition *
vmig_model_vmi_find_condition(const VmigModelVmi *vmi, const char *type)
{
    for (guint i = 0; vmi->conditions && i < vmi->conditions->len; i++) {
        const VmigModelCondition *c = g_ptr_array_index(vmi->conditions, i);
        if (g_strcmp0(c->type, type) == 0)
            return c;
    }
    return NULL;
}

const VmigModelVolume *
vmig_model_vmi_find_volume(const VmigModelVmi *vmi, const char *name)
{
    for (guint i = 0; i < vmi->volumes->len; i++) {
        const VmigModelVolume *v = g_ptr_array_index(vmi->volumes, i);
        if (g_strcmp0(v->name, name) == 0)
            return v;
    }
    return NULL;
}

const VmigModelDisk *
vmig_model_vmi_find_disk(const VmigModelVmi *vmi, const char *name)
{
    for (guint i = 0; i < vmi->disks->len; i++) {
        const VmigModelDisk *d = g_ptr_array_index(vmi->disks, i);
        if (g_strcmp0(d->name, name) == 0)
            return d;
    }
    return NULL;
}

/* ---- VMIM ----------------------------------------------------------------------------- */

static void
phase_transition_free(VmigModelPhaseTransition *t)
{
    g_free(t->timestamp);
    g_free(t);
}

void
vmig_model_vmim_free(VmigModelVmim *vmim)
{
    if (!vmim)
        return;
    if (vmim->node)
        json_node_unref(vmim->node);
    vmig_model_meta_clear(&vmim->meta);
    g_free(vmim->vmi_name);
    g_clear_pointer(&vmim->added_node_selector, g_hash_table_unref);
    g_clear_pointer(&vmim->phase_transitions, g_ptr_array_unref);
    vmig_model_migration_state_free(vmim->migration_state);
    g_clear_pointer(&vmim->conditions, g_ptr_array_unref);
    g_free(vmim);
}

VmigModelVmim *
vmig_model_vmim_from_json(JsonNode *node, GError **error)
{
    if (!check_kind(node, VMIG_MODEL_KIND_VMIM, error))
        return NULL;
    g_autoptr(VmigModelVmim) m = g_new0(VmigModelVmim, 1);
    m->node = json_node_ref(node);
    m->phase_transitions = g_ptr_array_new_with_free_func((GDestroyNotify)phase_transition_free);
    JsonObject *root = json_node_get_object(node);
    g_autofree char *what = NULL;
    if (!vmig_model_meta_parse(root, "VirtualMachineInstanceMigration", TRUE, &m->meta, &what,
                               error))
        return NULL;
    JsonObject *md = json_node_get_object(json_object_get_member(root, "metadata"));
    m->deleting = has_member(md, "deletionTimestamp");
    JsonObject *spec = vmig_model_get_object(root, "spec", what, "spec", TRUE, error);
    if (!spec ||
        !vmig_model_get_string(spec, "vmiName", what, "spec.vmiName", TRUE, &m->vmi_name, error) ||
        !name_ok(m->vmi_name, "spec.vmiName", what, error) ||
        !vmig_model_get_string_map(spec, "addedNodeSelector", what, "spec.addedNodeSelector",
                                   &m->added_node_selector, error))
        return NULL;
    JsonObject *status = vmig_model_get_object(root, "status", what, "status", FALSE, error);
    if (error && *error)
        return NULL;
    g_autofree char *phase = NULL;
    if (!vmig_model_get_string(status, "phase", what, "status.phase", FALSE, &phase, error))
        return NULL;
    if (phase && !vmig_model_migration_phase_from_string(phase, &m->phase)) {
        enum_bad(error, what, "status.phase", phase);
        return NULL;
    }
    JsonArray *pt = vmig_model_get_array(status, "phaseTransitionTimestamps", what,
                                         "status.phaseTransitionTimestamps", error);
    if (error && *error)
        return NULL;
    for (guint i = 0; pt && i < json_array_get_length(pt); i++) {
        JsonObject *o = array_object(pt, i, what, "status.phaseTransitionTimestamps", error);
        if (!o)
            return NULL;
        g_autofree char *pp = g_strdup_printf("status.phaseTransitionTimestamps[%u].phase", i);
        g_autofree char *pts =
            g_strdup_printf("status.phaseTransitionTimestamps[%u].phaseTransitionTimestamp", i);
        g_autofree char *ph = NULL;
        VmigModelPhaseTransition *t = g_new0(VmigModelPhaseTransition, 1);
        g_ptr_array_add(m->phase_transitions, t);
        if (!vmig_model_get_string(o, "phase", what, pp, TRUE, &ph, error) ||
            !vmig_model_get_string(o, "phaseTransitionTimestamp", what, pts, FALSE, &t->timestamp,
                                   error))
            return NULL;
        if (!vmig_model_migration_phase_from_string(ph, &t->phase)) {
            enum_bad(error, what, pp, ph);
            return NULL;
        }
    }
    if (!vmig_model_conditions_parse(status, what, &m->conditions, error) ||
        !vmig_model_migration_state_parse(status, what, &m->migration_state, error))
        return NULL;
    return g_steal_pointer(&m);
}

/* ---- PVC, DataVolume ------------------------------------------------------------------ */

static const char *const access_mode_names[] = {"ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany",
                                                "ReadWriteOncePod"};

static gboolean
parse_access_modes(JsonObject *o, const char *what, const char *path, guint *out, GError **error)
{
    JsonArray *a = vmig_model_get_array(o, "accessModes", what, path, error);
    if (!a)
        return !(error && *error);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *n = json_array_get_element(a, i);
        int idx;
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
            vmig_model_set_error(error, VMIG_MODEL_ERROR_TYPE, what, "%s[%u] must be a string",
                                 path, i);
            return FALSE;
        }
        if (!vmig_model_table_lookup(access_mode_names, G_N_ELEMENTS(access_mode_names),
                                     json_node_get_string(n), &idx)) {
            g_autofree char *p = g_strdup_printf("%s[%u]", path, i);
            return enum_bad(error, what, p, json_node_get_string(n));
        }
        *out |= 1u << idx;
    }
    return TRUE;
}

void
vmig_model_pvc_free(VmigModelPvc *pvc)
{
    if (!pvc)
        return;
    if (pvc->node)
        json_node_unref(pvc->node);
    vmig_model_meta_clear(&pvc->meta);
    g_free(pvc->phase);
    g_free(pvc->volume_mode);
    g_free(pvc->volume_name);
    g_free(pvc);
}

VmigModelPvc *
vmig_model_pvc_from_json(JsonNode *node, GError **error)
{
    if (!check_kind(node, VMIG_MODEL_KIND_PVC, error))
        return NULL;
    g_autoptr(VmigModelPvc) p = g_new0(VmigModelPvc, 1);
    p->node = json_node_ref(node);
    JsonObject *root = json_node_get_object(node);
    g_autofree char *what = NULL;
    if (!vmig_model_meta_parse(root, "PersistentVolumeClaim", TRUE, &p->meta, &what, error))
        return NULL;
    JsonObject *spec = vmig_model_get_object(root, "spec", what, "spec", FALSE, error);
    if (error && *error)
        return NULL;
    JsonObject *status = vmig_model_get_object(root, "status", what, "status", FALSE, error);
    if (error && *error)
        return NULL;
    JsonObject *cap =
        vmig_model_get_object(status, "capacity", what, "status.capacity", FALSE, error);
    if (error && *error)
        return NULL;
    if (!parse_access_modes(spec, what, "spec.accessModes", &p->spec_access_modes, error) ||
        !parse_access_modes(status, what, "status.accessModes", &p->status_access_modes, error) ||
        !vmig_model_get_string(status, "phase", what, "status.phase", FALSE, &p->phase, error) ||
        !vmig_model_get_string(spec, "volumeMode", what, "spec.volumeMode", FALSE, &p->volume_mode,
                               error) ||
        !vmig_model_get_string(spec, "volumeName", what, "spec.volumeName", FALSE, &p->volume_name,
                               error) ||
        !vmig_model_get_quantity_bytes(cap, "storage", what, "status.capacity.storage",
                                       &p->capacity_bytes, error))
        return NULL;
    return g_steal_pointer(&p);
}

gboolean
vmig_model_pvc_is_shared(const VmigModelPvc *pvc)
{
    return g_strcmp0(pvc->phase, "Bound") == 0 &&
           (pvc->status_access_modes & VMIG_MODEL_ACCESS_RWX);
}

void
vmig_model_data_volume_free(VmigModelDataVolume *dv)
{
    if (!dv)
        return;
    if (dv->node)
        json_node_unref(dv->node);
    vmig_model_meta_clear(&dv->meta);
    g_free(dv->claim_name);
    g_free(dv->phase);
    g_free(dv);
}

VmigModelDataVolume *
vmig_model_data_volume_from_json(JsonNode *node, GError **error)
{
    if (!check_kind(node, VMIG_MODEL_KIND_DATA_VOLUME, error))
        return NULL;
    g_autoptr(VmigModelDataVolume) dv = g_new0(VmigModelDataVolume, 1);
    dv->node = json_node_ref(node);
    JsonObject *root = json_node_get_object(node);
    g_autofree char *what = NULL;
    if (!vmig_model_meta_parse(root, "DataVolume", TRUE, &dv->meta, &what, error))
        return NULL;
    JsonObject *status = vmig_model_get_object(root, "status", what, "status", FALSE, error);
    if (error && *error)
        return NULL;
    if (!vmig_model_get_string(status, "claimName", what, "status.claimName", FALSE,
                               &dv->claim_name, error) ||
        !vmig_model_get_string(status, "phase", what, "status.phase", FALSE, &dv->phase, error))
        return NULL;
    if (!dv->claim_name || !*dv->claim_name) {
        g_free(dv->claim_name);
        dv->claim_name = g_strdup(dv->meta.name);
    } else if (!name_ok(dv->claim_name, "status.claimName", what, error)) {
        return NULL;
    }
    return g_steal_pointer(&dv);
}

/* ---- Node, Namespace ------------------------------------------------------------------ */

static void
taint_free(VmigModelTaint *t)
{
    g_free(t->key);
    g_free(t->value);
    g_free(t->effect);
    g_free(t);
}

static void
address_free(VmigModelNodeAddress *a)
{
    g_free(a->type);
    g_free(a->address);
    g_free(a);
}

void
vmig_model_node_free(VmigModelNode *n)
{
    if (!n)
        return;
    if (n->node)
        json_node_unref(n->node);
    vmig_model_meta_clear(&n->meta);
    g_clear_pointer(&n->taints, g_ptr_array_unref);
    g_clear_pointer(&n->addresses, g_ptr_array_unref);
    g_clear_pointer(&n->allocatable, g_hash_table_unref);
    g_free(n);
}

VmigModelNode *
vmig_model_node_from_json(JsonNode *node, GError **error)
{
    if (!check_kind(node, VMIG_MODEL_KIND_NODE, error))
        return NULL;
    g_autoptr(VmigModelNode) n = g_new0(VmigModelNode, 1);
    n->node = json_node_ref(node);
    n->taints = g_ptr_array_new_with_free_func((GDestroyNotify)taint_free);
    n->addresses = g_ptr_array_new_with_free_func((GDestroyNotify)address_free);
    JsonObject *root = json_node_get_object(node);
    g_autofree char *what = NULL;
    if (!vmig_model_meta_parse(root, "Node", FALSE, &n->meta, &what, error))
        return NULL;
    JsonObject *spec = vmig_model_get_object(root, "spec", what, "spec", FALSE, error);
    if (error && *error)
        return NULL;
    JsonObject *status = vmig_model_get_object(root, "status", what, "status", FALSE, error);
    if (error && *error)
        return NULL;
    if (!vmig_model_get_bool(spec, "unschedulable", what, "spec.unschedulable", &n->unschedulable,
                             error))
        return NULL;
    JsonArray *ta = vmig_model_get_array(spec, "taints", what, "spec.taints", error);
    if (error && *error)
        return NULL;
    for (guint i = 0; ta && i < json_array_get_length(ta); i++) {
        JsonObject *o = array_object(ta, i, what, "spec.taints", error);
        if (!o)
            return NULL;
        VmigModelTaint *t = g_new0(VmigModelTaint, 1);
        g_ptr_array_add(n->taints, t);
        g_autofree char *pk = g_strdup_printf("spec.taints[%u].key", i);
        g_autofree char *pv = g_strdup_printf("spec.taints[%u].value", i);
        g_autofree char *pe = g_strdup_printf("spec.taints[%u].effect", i);
        if (!vmig_model_get_string(o, "key", what, pk, TRUE, &t->key, error) ||
            !vmig_model_get_string(o, "value", what, pv, FALSE, &t->value, error) ||
            !vmig_model_get_string(o, "effect", what, pe, FALSE, &t->effect, error))
            return NULL;
    }
    JsonArray *aa = vmig_model_get_array(status, "addresses", what, "status.addresses", error);
    if (error && *error)
        return NULL;
    for (guint i = 0; aa && i < json_array_get_length(aa); i++) {
        JsonObject *o = array_object(aa, i, what, "status.addresses", error);
        if (!o)
            return NULL;
        VmigModelNodeAddress *a = g_new0(VmigModelNodeAddress, 1);
        g_ptr_array_add(n->addresses, a);
        g_autofree char *pt = g_strdup_printf("status.addresses[%u].type", i);
        g_autofree char *pa = g_strdup_printf("status.addresses[%u].address", i);
        if (!vmig_model_get_string(o, "type", what, pt, TRUE, &a->type, error) ||
            !vmig_model_get_string(o, "address", what, pa, TRUE, &a->address, error))
            return NULL;
    }
    if (!vmig_model_get_string_map(status, "allocatable", what, "status.allocatable",
                                   &n->allocatable, error))
        return NULL;
    JsonObject *alloc =
        vmig_model_get_object(status, "allocatable", what, "status.allocatable", FALSE, error);
    if (!vmig_model_get_quantity_bytes(alloc, "memory", what, "status.allocatable.memory",
                                       &n->allocatable_memory_bytes, error))
        return NULL;
    return g_steal_pointer(&n);
}

gboolean
vmig_model_node_has_taint(const VmigModelNode *n, const char *key)
{
    for (guint i = 0; i < n->taints->len; i++) {
        const VmigModelTaint *t = g_ptr_array_index(n->taints, i);
        if (g_strcmp0(t->key, key) == 0)
            return TRUE;
    }
    return FALSE;
}

void
vmig_model_namespace_free(VmigModelNamespace *ns)
{
    if (!ns)
        return;
    if (ns->node)
        json_node_unref(ns->node);
    vmig_model_meta_clear(&ns->meta);
    g_free(ns);
}

VmigModelNamespace *
vmig_model_namespace_from_json(JsonNode *node, GError **error)
{
    if (!check_kind(node, VMIG_MODEL_KIND_NAMESPACE, error))
        return NULL;
    g_autoptr(VmigModelNamespace) ns = g_new0(VmigModelNamespace, 1);
    ns->node = json_node_ref(node);
    g_autofree char *what = NULL;
    if (!vmig_model_meta_parse(json_node_get_object(node), "Namespace", FALSE, &ns->meta, &what,
                               error))
        return NULL;
    g_autoptr(GError) e = NULL;
    if (!vmig_model_validate_namespace(ns->meta.name, "metadata.name", &e)) {
        vmig_model_set_error(error, e->code, what, "%s", e->message);
        return NULL;
    }
    return g_steal_pointer(&ns);
}

/* ---- KubeVirt CR, MigrationPolicy ----------------------------------------------------- */

void
vmig_model_kubevirt_free(VmigModelKubevirt *kv)
{
    if (!kv)
        return;
    if (kv->node)
        json_node_unref(kv->node);
    vmig_model_meta_clear(&kv->meta);
    vmig_model_migration_options_clear(&kv->migrations);
    g_free(kv->cpu_model);
    g_clear_pointer(&kv->migratable_binding_plugins, g_ptr_array_unref);
    g_free(kv);
}

VmigModelKubevirt *
vmig_model_kubevirt_from_json(JsonNode *node, GError **error)
{
    if (!check_kind(node, VMIG_MODEL_KIND_KUBEVIRT, error))
        return NULL;
    g_autoptr(VmigModelKubevirt) kv = g_new0(VmigModelKubevirt, 1);
    kv->node = json_node_ref(node);
    kv->migratable_binding_plugins = g_ptr_array_new_with_free_func(g_free);
    JsonObject *root = json_node_get_object(node);
    g_autofree char *what = NULL;
    if (!vmig_model_meta_parse(root, "KubeVirt", TRUE, &kv->meta, &what, error))
        return NULL;
    JsonObject *spec = vmig_model_get_object(root, "spec", what, "spec", FALSE, error);
    if (error && *error)
        return NULL;
    JsonObject *conf =
        vmig_model_get_object(spec, "configuration", what, "spec.configuration", FALSE, error);
    if (error && *error)
        return NULL;
    JsonObject *mig = vmig_model_get_object(conf, "migrations", what,
                                            "spec.configuration.migrations", FALSE, error);
    if (error && *error)
        return NULL;
    if (!vmig_model_migration_options_parse(mig, what, "spec.configuration.migrations", FALSE,
                                            &kv->migrations, error))
        return NULL;
    g_autofree char *es = NULL;
    if (!vmig_model_get_string(conf, "evictionStrategy", what,
                               "spec.configuration.evictionStrategy", FALSE, &es, error) ||
        !vmig_model_get_string(conf, "cpuModel", what, "spec.configuration.cpuModel", FALSE,
                               &kv->cpu_model, error))
        return NULL;
    if (es && !vmig_model_eviction_strategy_from_string(es, &kv->eviction_strategy)) {
        enum_bad(error, what, "spec.configuration.evictionStrategy", es);
        return NULL;
    }
    JsonObject *net =
        vmig_model_get_object(conf, "network", what, "spec.configuration.network", FALSE, error);
    if (error && *error)
        return NULL;
    JsonObject *bind = vmig_model_get_object(net, "binding", what,
                                             "spec.configuration.network.binding", FALSE, error);
    if (error && *error)
        return NULL;
    if (bind) {
        g_autoptr(GList) keys = json_object_get_members(bind);
        for (GList *l = keys; l; l = l->next) {
            JsonNode *b = json_object_get_member(bind, l->data);
            if (JSON_NODE_HOLDS_OBJECT(b) && has_member(json_node_get_object(b), "migration"))
                g_ptr_array_add(kv->migratable_binding_plugins, g_strdup(l->data));
        }
    }
    return g_steal_pointer(&kv);
}

void
vmig_model_migration_policy_free(VmigModelMigrationPolicy *p)
{
    if (!p)
        return;
    if (p->node)
        json_node_unref(p->node);
    vmig_model_meta_clear(&p->meta);
    g_clear_pointer(&p->namespace_selector, g_hash_table_unref);
    g_clear_pointer(&p->vmi_selector, g_hash_table_unref);
    vmig_model_migration_options_clear(&p->options);
    g_free(p);
}

VmigModelMigrationPolicy *
vmig_model_migration_policy_from_json(JsonNode *node, GError **error)
{
    if (!check_kind(node, VMIG_MODEL_KIND_MIGRATION_POLICY, error))
        return NULL;
    g_autoptr(VmigModelMigrationPolicy) p = g_new0(VmigModelMigrationPolicy, 1);
    p->node = json_node_ref(node);
    JsonObject *root = json_node_get_object(node);
    g_autofree char *what = NULL;
    if (!vmig_model_meta_parse(root, "MigrationPolicy", FALSE, &p->meta, &what, error))
        return NULL;
    JsonObject *spec = vmig_model_get_object(root, "spec", what, "spec", TRUE, error);
    if (!spec)
        return NULL;
    JsonObject *sel =
        vmig_model_get_object(spec, "selectors", what, "spec.selectors", FALSE, error);
    if (error && *error)
        return NULL;
    if (!vmig_model_get_string_map(sel, "namespaceSelector", what,
                                   "spec.selectors.namespaceSelector", &p->namespace_selector,
                                   error) ||
        !vmig_model_get_string_map(sel, "virtualMachineInstanceSelector", what,
                                   "spec.selectors.virtualMachineInstanceSelector",
                                   &p->vmi_selector, error) ||
        !vmig_model_migration_options_parse(spec, what, "spec", TRUE, &p->options, error))
        return NULL;
    return g_steal_pointer(&p);
}
