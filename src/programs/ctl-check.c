/* ctl-check.c - `vmigratectl check`: is a VMI live-migratable, how, and with which effective
 * configuration? Offline from YAML/JSON files (any mix of VirtualMachineInstance,
 * PersistentVolumeClaim, DataVolume, Node, Namespace, KubeVirt, MigrationPolicy and
 * VirtualMachineInstanceMigration documents, `kind: List` included), or live through the API
 * server (-n NS NAME); with --target-libvirt also the target capability check.
 *
 * Exit status: 0 migratable, 1 not migratable or the target refuses, 2 bad usage, bad input
 * (file and field named), object not found or API/libvirt error (object named).
 *
 * The command is split in three steps so the live mode can reuse the last two:
 *   1. collect: fill CheckInputs (offline: check_collect_files; live: check_collect_live),
 *   2. decide:  vmig_checks_source() + vmig_migconfig_effective() per VMI,
 *   3. report:  check_report().
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "vmig/capability.h"
#include "vmig/checks.h"
#include "vmig/kube.h"
#include "vmig/migconfig.h"
#include "vmig/model.h"
#include "vmig/virt.h"

typedef struct {
    GPtrArray *vmis;     /* VmigModelVmi * */
    GPtrArray *vmims;    /* VmigModelVmim * */
    GPtrArray *pvcs;     /* VmigModelPvc * */
    GPtrArray *dvs;      /* VmigModelDataVolume * */
    GPtrArray *nodes;    /* VmigModelNode * */
    GPtrArray *nss;      /* VmigModelNamespace * */
    GPtrArray *policies; /* VmigModelMigrationPolicy * */
    VmigModelKubevirt *kubevirt;
} CheckInputs;

static void
check_inputs_clear(CheckInputs *in)
{
    g_clear_pointer(&in->vmis, g_ptr_array_unref);
    g_clear_pointer(&in->vmims, g_ptr_array_unref);
    g_clear_pointer(&in->pvcs, g_ptr_array_unref);
    g_clear_pointer(&in->dvs, g_ptr_array_unref);
    g_clear_pointer(&in->nodes, g_ptr_array_unref);
    g_clear_pointer(&in->nss, g_ptr_array_unref);
    g_clear_pointer(&in->policies, g_ptr_array_unref);
    g_clear_pointer(&in->kubevirt, vmig_model_kubevirt_free);
}

static void
check_inputs_init(CheckInputs *in)
{
    in->vmis = g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_vmi_free);
    in->vmims = g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_vmim_free);
    in->pvcs = g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_pvc_free);
    in->dvs = g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_data_volume_free);
    in->nodes = g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_node_free);
    in->nss = g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_namespace_free);
    in->policies = g_ptr_array_new_with_free_func((GDestroyNotify)vmig_model_migration_policy_free);
    in->kubevirt = NULL;
}

/* Parses one document into @in; errors and notes are prefixed with @origin ("FILE: document
 * N" offline, "RESOURCE NS/NAME" live). */
static gboolean
check_add_document(CheckInputs *in, JsonNode *doc, const char *origin, GError **error)
{
    g_autoptr(GError) e = NULL;
    gpointer obj = NULL;
    VmigModelKind kind = vmig_model_kind_of(doc);
    switch (kind) {
    case VMIG_MODEL_KIND_VMI:
        if ((obj = vmig_model_vmi_from_json(doc, &e)))
            g_ptr_array_add(in->vmis, obj);
        break;
    case VMIG_MODEL_KIND_VMIM:
        /* A manifest for `kubectl create` often has only generateName; the server names it. */
        if (!vmig_model_json_get(doc, "metadata.name") &&
            vmig_model_json_get(doc, "metadata.generateName")) {
            g_printerr("vmigratectl check: %s: VirtualMachineInstanceMigration "
                       "with generateName only: not validated\n",
                       origin);
            return TRUE;
        }
        if ((obj = vmig_model_vmim_from_json(doc, &e)))
            g_ptr_array_add(in->vmims, obj);
        break;
    case VMIG_MODEL_KIND_PVC:
        if ((obj = vmig_model_pvc_from_json(doc, &e)))
            g_ptr_array_add(in->pvcs, obj);
        break;
    case VMIG_MODEL_KIND_DATA_VOLUME:
        if ((obj = vmig_model_data_volume_from_json(doc, &e)))
            g_ptr_array_add(in->dvs, obj);
        break;
    case VMIG_MODEL_KIND_NODE:
        if ((obj = vmig_model_node_from_json(doc, &e)))
            g_ptr_array_add(in->nodes, obj);
        break;
    case VMIG_MODEL_KIND_NAMESPACE:
        if ((obj = vmig_model_namespace_from_json(doc, &e)))
            g_ptr_array_add(in->nss, obj);
        break;
    case VMIG_MODEL_KIND_MIGRATION_POLICY:
        if ((obj = vmig_model_migration_policy_from_json(doc, &e)))
            g_ptr_array_add(in->policies, obj);
        break;
    case VMIG_MODEL_KIND_KUBEVIRT:
        if (in->kubevirt) {
            g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_INVALID,
                        "%s: a second KubeVirt CR (only one may configure the cluster)", origin);
            return FALSE;
        }
        in->kubevirt = vmig_model_kubevirt_from_json(doc, &e);
        obj = in->kubevirt;
        break;
    default:
        g_printerr("vmigratectl check: %s: ignoring a document of another kind\n", origin);
        return TRUE;
    }
    if (!obj) {
        g_set_error(error, VMIG_MODEL_ERROR, e->code, "%s: %s", origin, e->message);
        return FALSE;
    }
    return TRUE;
}

static gboolean
check_collect_files(char **files, CheckInputs *in, GError **error)
{
    for (int i = 0; files && files[i]; i++) {
        g_autoptr(GPtrArray) docs = NULL;
        if (!vmig_model_load_file(files[i], &docs, error))
            return FALSE;
        for (guint d = 0; d < docs->len; d++) {
            g_autofree char *origin = g_strdup_printf("%s: document %u", files[i], d + 1);
            if (!check_add_document(in, g_ptr_array_index(docs, d), origin, error))
                return FALSE;
        }
    }
    return TRUE;
}

/* ---- live mode: the same inputs, read through the API server ---------------------------- */

/* Items of a LIST carry no apiVersion/kind (the List does); the model dispatches on them. */
static void
check_set_kind(JsonNode *item, const VmigKubeResource *res)
{
    if (!item || !JSON_NODE_HOLDS_OBJECT(item))
        return;
    JsonObject *o = json_node_get_object(item);
    if (!json_object_has_member(o, "apiVersion")) {
        g_autofree char *av = vmig_kube_resource_api_version(res);
        json_object_set_string_member(o, "apiVersion", av);
    }
    if (!json_object_has_member(o, "kind"))
        json_object_set_string_member(o, "kind", res->kind);
}

typedef struct {
    gboolean done;
    GAsyncResult *result;
} CheckWait;

static void
check_wait_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
    (void)source;
    CheckWait *w = user_data;
    w->result = g_object_ref(result);
    w->done = TRUE;
}

/* GET (@name set) or LIST (every page) of @id in @ns. A 404 sets *@missing and returns NULL
 * without error when @missing is given: a kind the server does not serve (DataVolume without
 * CDI) or an object that is gone. Errors name the object or collection. */
static JsonNode *
check_fetch(VmigKubeClient *client, VmigKubeResourceId id, const char *ns, const char *name,
            gboolean *missing, GError **error)
{
    const VmigKubeResource *res = vmig_kube_resource(id);
    VmigKubeRequest req = {.resource = res, .namespace = ns, .name = name, .limit = 500};
    g_autoptr(GError) e = NULL;
    JsonNode *node = NULL;
    guint http = 0;
    if (name) {
        node = vmig_kube_call_sync(client, VMIG_KUBE_VERB_GET, &req, NULL, &e);
        http = e && g_error_matches(e, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_NOT_FOUND) ? 404 : 0;
    } else {
        /* Transfers carry their own timeouts (request timeout, read deadline). */
        CheckWait w = {0};
        vmig_kube_list_all(client, &req, NULL, check_wait_cb, &w);
        while (!w.done)
            vmig_kube_wait(&w.done, 1000);
        node = vmig_kube_call_finish(w.result, &http, &e);
        g_object_unref(w.result);
    }
    if (node) {
        if (name)
            check_set_kind(node, res);
        return node;
    }
    gboolean not_found =
        http == 404 || g_error_matches(e, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_NOT_FOUND);
    if (not_found && missing) {
        *missing = TRUE;
        return NULL;
    }
    if (name && not_found)
        g_set_error(error, VMIG_KUBE_ERROR, e->code, "%s %s%s%s not found (%s)", res->kind,
                    ns ? ns : "", ns ? "/" : "", name, e->message);
    else if (name)
        g_set_error(error, VMIG_KUBE_ERROR, e->code, "%s %s%s%s: %s", res->kind, ns ? ns : "",
                    ns ? "/" : "", name, e->message);
    else
        g_set_error(error, VMIG_KUBE_ERROR, e->code, "list %s%s%s: %s", res->resource,
                    ns ? " in namespace " : "", ns ? ns : "", e->message);
    return NULL;
}

/* Adds every item of a List to @in, in the server's order. */
static gboolean
check_add_list(CheckInputs *in, JsonNode *list, VmigKubeResourceId id, guint max_items,
               GError **error)
{
    const VmigKubeResource *res = vmig_kube_resource(id);
    JsonNode *items = list && JSON_NODE_HOLDS_OBJECT(list)
                          ? json_object_get_member(json_node_get_object(list), "items")
                          : NULL;
    if (!items || JSON_NODE_HOLDS_NULL(items))
        return TRUE;
    if (!JSON_NODE_HOLDS_ARRAY(items)) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_DECODE,
                    "list %s: items is not an array", res->resource);
        return FALSE;
    }
    JsonArray *a = json_node_get_array(items);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *item = json_array_get_element(a, i);
        check_set_kind(item, res);
        g_autofree char *key = vmig_kube_object_key(item);
        if (max_items && i >= max_items) {
            g_printerr("vmigratectl check: %s %s: ignored (only the first %s configures the "
                       "cluster)\n",
                       res->kind, key, res->kind);
            continue;
        }
        g_autofree char *origin = g_strdup_printf("%s %s", res->kind, key);
        if (!check_add_document(in, item, origin, error))
            return FALSE;
    }
    return TRUE;
}

/* Fills @in like the files would: the VMI, the PVCs and DataVolumes of its namespace, the
 * KubeVirt CR, all MigrationPolicies, its Namespace (labels) and its Node (host-model facts). */
static gboolean
check_collect_live(const char *kubeconfig, const char *ns, const char *name, CheckInputs *in,
                   GError **error)
{
    if (!vmig_model_validate_namespace(ns, "-n", error) ||
        !vmig_model_validate_name(name, "NAME", error))
        return FALSE;
    g_autoptr(VmigKubeConfig) config = vmig_kube_config_load(kubeconfig, error);
    if (!config)
        return FALSE;
    g_autoptr(VmigKubeClient) client = vmig_kube_client_new(config, error);
    if (!client)
        return FALSE;

    g_autoptr(JsonNode) vmi = check_fetch(client, VMIG_KUBE_VMI, ns, name, NULL, error);
    if (!vmi)
        return FALSE;
    g_autofree char *vmi_origin = g_strdup_printf("VirtualMachineInstance %s/%s", ns, name);
    if (!check_add_document(in, vmi, vmi_origin, error))
        return FALSE;

    gboolean missing = FALSE;
    g_autoptr(JsonNode) pvcs = check_fetch(client, VMIG_KUBE_PVC, ns, NULL, NULL, error);
    if (!pvcs || !check_add_list(in, pvcs, VMIG_KUBE_PVC, 0, error))
        return FALSE;
    g_autoptr(JsonNode) dvs = check_fetch(client, VMIG_KUBE_DATAVOLUME, ns, NULL, &missing, error);
    if (!dvs && !missing)
        return FALSE;
    if (!check_add_list(in, dvs, VMIG_KUBE_DATAVOLUME, 0, error))
        return FALSE;
    missing = FALSE;
    g_autoptr(JsonNode) kvs = check_fetch(client, VMIG_KUBE_KUBEVIRT, NULL, NULL, &missing, error);
    if (!kvs && !missing)
        return FALSE;
    if (!check_add_list(in, kvs, VMIG_KUBE_KUBEVIRT, 1, error))
        return FALSE;
    if (!in->kubevirt)
        g_printerr("vmigratectl check: no KubeVirt CR on the server: KubeVirt's defaults apply\n");
    missing = FALSE;
    g_autoptr(JsonNode) mps =
        check_fetch(client, VMIG_KUBE_MIGRATION_POLICY, NULL, NULL, &missing, error);
    if (!mps && !missing)
        return FALSE;
    if (!check_add_list(in, mps, VMIG_KUBE_MIGRATION_POLICY, 0, error))
        return FALSE;

    g_autoptr(JsonNode) nsobj = check_fetch(client, VMIG_KUBE_NAMESPACE, NULL, ns, NULL, error);
    g_autofree char *ns_origin = g_strdup_printf("Namespace %s", ns);
    if (!nsobj || !check_add_document(in, nsobj, ns_origin, error))
        return FALSE;

    const VmigModelVmi *v = g_ptr_array_index(in->vmis, 0);
    if (v->node_name) {
        missing = FALSE;
        g_autoptr(JsonNode) node =
            check_fetch(client, VMIG_KUBE_NODE, NULL, v->node_name, &missing, error);
        if (!node && !missing)
            return FALSE;
        g_autofree char *node_origin = g_strdup_printf("Node %s", v->node_name);
        if (node && !check_add_document(in, node, node_origin, error))
            return FALSE;
    }
    return TRUE;
}

static const VmigModelNode *
find_node(const CheckInputs *in, const char *name)
{
    for (guint i = 0; name && i < in->nodes->len; i++) {
        const VmigModelNode *n = g_ptr_array_index(in->nodes, i);
        if (strcmp(n->meta.name, name) == 0)
            return n;
    }
    return NULL;
}

static GHashTable *
find_namespace_labels(const CheckInputs *in, const char *ns)
{
    for (guint i = 0; i < in->nss->len; i++) {
        const VmigModelNamespace *n = g_ptr_array_index(in->nss, i);
        if (strcmp(n->meta.name, ns) == 0)
            return n->meta.labels;
    }
    return NULL;
}

static const char *
source_of(const VmigMigconfig *c, VmigModelMigrationField bit)
{
    return vmig_migconfig_source_to_string(c->source[g_bit_nth_lsf(bit, -1)]);
}

static void
check_report_config(const VmigMigconfig *c, const VmigModelVmi *vmi, const VmigChecksResult *r)
{
    const char *b = c->allow_post_copy ? "true" : "false";
    printf("effective configuration (MigrationPolicy: %s):\n",
           c->policy_name ? c->policy_name : "none");
    printf("  parallelMigrationsPerCluster: %" G_GINT64_FORMAT " (%s)\n",
           c->parallel_migrations_per_cluster, source_of(c, VMIG_MODEL_MIG_PARALLEL_PER_CLUSTER));
    printf("  parallelOutboundMigrationsPerNode: %" G_GINT64_FORMAT " (%s)\n",
           c->parallel_outbound_migrations_per_node,
           source_of(c, VMIG_MODEL_MIG_PARALLEL_OUTBOUND_PER_NODE));
    if (c->bandwidth_unlimited)
        printf("  bandwidthPerMigration: unlimited (sent to libvirt as %" G_GUINT64_FORMAT
               " MiB/s) (%s)\n",
               c->bandwidth_mibps, source_of(c, VMIG_MODEL_MIG_BANDWIDTH));
    else
        printf("  bandwidthPerMigration: %" G_GUINT64_FORMAT " MiB/s (%s)\n", c->bandwidth_mibps,
               source_of(c, VMIG_MODEL_MIG_BANDWIDTH));
    printf("  completionTimeoutPerGiB: %" G_GINT64_FORMAT " s (%s)\n",
           c->completion_timeout_per_gib, source_of(c, VMIG_MODEL_MIG_COMPLETION_TIMEOUT_PER_GIB));
    printf("  progressTimeout: %" G_GINT64_FORMAT " s (%s)\n", c->progress_timeout,
           source_of(c, VMIG_MODEL_MIG_PROGRESS_TIMEOUT));
    printf("  allowAutoConverge: %s (%s)\n", c->allow_auto_converge ? "true" : "false",
           source_of(c, VMIG_MODEL_MIG_ALLOW_AUTO_CONVERGE));
    printf("  allowPostCopy: %s (%s)\n", b, source_of(c, VMIG_MODEL_MIG_ALLOW_POST_COPY));
    gboolean follows = c->source[g_bit_nth_lsf(VMIG_MODEL_MIG_ALLOW_WORKLOAD_DISRUPTION, -1)] ==
                       VMIG_MIGCONFIG_FROM_DEFAULT;
    printf("  allowWorkloadDisruption: %s (%s)\n", c->allow_workload_disruption ? "true" : "false",
           follows ? "follows allowPostCopy"
                   : source_of(c, VMIG_MODEL_MIG_ALLOW_WORKLOAD_DISRUPTION));
    printf("  disableTLS: %s (%s)\n", c->disable_tls ? "true" : "false",
           source_of(c, VMIG_MODEL_MIG_DISABLE_TLS));
    printf("  nodeDrainTaintKey: %s (%s)\n", c->node_drain_taint_key,
           source_of(c, VMIG_MODEL_MIG_NODE_DRAIN_TAINT_KEY));
    printf("  unsafeMigrationOverride: %s (%s)\n", c->unsafe_migration_override ? "true" : "false",
           source_of(c, VMIG_MODEL_MIG_UNSAFE_OVERRIDE));
    gint64 data = vmi->memory_bytes;
    if (data <= G_MAXINT64 - r->copy_bytes_known)
        data += r->copy_bytes_known;
    printf("  completion budget: %" G_GINT64_FORMAT " s for %" G_GINT64_FORMAT
           " bytes (guest memory %" G_GINT64_FORMAT " + copied disks %" G_GINT64_FORMAT
           " known from the spec)\n",
           vmig_migconfig_completion_timeout(c->completion_timeout_per_gib, data), data,
           vmi->memory_bytes, r->copy_bytes_known);
}

typedef struct {
    char **files;
    char *namespace;
    char *kubeconfig;
    char *target_libvirt;
    char *target_node;
    char *source_libvirt;
    char *domain_xml;
    gboolean allow_host_passthrough;
    gboolean block_migrate_non_shared;
} CheckOptions;

/* ---- target capability check ------------------------------------------------------------ */

static void
check_report_target(const VmigCapabilityResult *r)
{
    g_autofree char *sl = vmig_capability_version_string(r->source_libvirt_version);
    g_autofree char *sq = vmig_capability_version_string(r->source_qemu_version);
    g_autofree char *tl = vmig_capability_version_string(r->target_libvirt_version);
    g_autofree char *tq = vmig_capability_version_string(r->target_qemu_version);
    printf("target verdict: %s on %s\n", r->eligible ? "eligible" : "refused", r->node);
    printf("  machine type: %s; target emulator: %s\n", r->machine ? r->machine : "unknown",
           r->target_emulator ? r->target_emulator : "unknown");
    printf("  libvirt: source %s, target %s; QEMU: source %s, target %s\n", sl, tl, sq, tq);
    printf("  memory: %" G_GUINT64_FORMAT " bytes needed (guest + overhead), %" G_GUINT64_FORMAT
           " bytes free on the target\n",
           r->required_memory_bytes, r->free_memory_bytes);
    if (r->reasons->len) {
        printf("  target reasons:\n");
        for (guint i = 0; i < r->reasons->len; i++)
            printf("    %s\n", (const char *)g_ptr_array_index(r->reasons, i));
    }
    if (r->missing_cpu_features->len) {
        printf("  missing CPU features:");
        for (guint i = 0; i < r->missing_cpu_features->len; i++)
            printf("%s %s", i ? "," : "",
                   (const char *)g_ptr_array_index(r->missing_cpu_features, i));
        printf("\n");
    }
}

/* Asks the target libvirt whether it can take @vmi's running guest. The guest's migratable XML
 * and the source facts come from --source-libvirt (the domain "<namespace>_<name>"), or the XML
 * alone from --domain-xml (source versions, host UUID and host CPU then unknown). Returns 0
 * eligible, 1 refused, 2 when a query failed. */
static int
check_target(const VmigModelVmi *vmi, const CheckOptions *opt)
{
    g_autoptr(GError) e = NULL;
    g_autofree char *xml = NULL;
    g_autoptr(VmigVirtConn) src = NULL;
    g_autoptr(VmigVirtConn) dst = NULL;
    g_autoptr(VmigCapabilityResult) r = NULL;
    VmigCapabilitySource source = {0};
    /* The source node name is what the same-node rule compares; the VMI says where it runs. */
    const char *src_node = vmi->node_name ? vmi->node_name : "unknown";
    char *hostname = NULL;
    int status = 2;
    printf("target capability check against %s:\n", opt->target_libvirt);
    if (opt->source_libvirt) {
        src = vmig_virt_conn_open(opt->source_libvirt, &e);
        g_autoptr(VmigVirtDomain) dom =
            src ? vmig_virt_domain_lookup(src, vmi->meta.namespace, vmi->meta.name, &e) : NULL;
        xml = dom ? vmig_virt_domain_migratable_xml(dom, &e) : NULL;
        if (!xml || !vmig_capability_source_query(vmig_virt_conn_ptr(src), src_node, &source, &e))
            goto out;
        g_autofree char *lv = vmig_capability_version_string(source.libvirt_version);
        g_autofree char *qv = vmig_capability_version_string(source.qemu_version);
        printf("  guest: running domain %s_%s on %s (source %s: libvirt %s, QEMU %s)\n",
               vmi->meta.namespace, vmi->meta.name, opt->source_libvirt, src_node, lv, qv);
    } else {
        if (!g_file_get_contents(opt->domain_xml, &xml, NULL, &e))
            goto out;
        source.node = g_strdup(vmi->node_name);
        printf("  guest: domain XML from %s; source facts unknown (no --source-libvirt): "
               "libvirt/QEMU versions 0 (version rules skipped), host UUID and host CPU not "
               "compared\n",
               opt->domain_xml);
    }
    dst = vmig_virt_conn_open(opt->target_libvirt, &e);
    if (!dst)
        goto out;
    const char *target_node = opt->target_node;
    if (!target_node) {
        hostname = virConnectGetHostname(vmig_virt_conn_ptr(dst));
        target_node = hostname ? hostname : "target";
    }
    VmigCapabilityOptions copts = {
        .allow_host_passthrough = opt->allow_host_passthrough,
        .memory_overhead_bytes = VMIG_CAPABILITY_DEFAULT_MEMORY_OVERHEAD,
    };
    r = vmig_capability_check(vmig_virt_conn_ptr(dst), target_node, xml, &source, &copts, &e);
    if (!r)
        goto out;
    check_report_target(r);
    status = r->eligible ? 0 : 1;
out:
    if (status == 2)
        g_printerr("vmigratectl check: target capability check for %s/%s: %s\n",
                   vmi->meta.namespace, vmi->meta.name, e ? e->message : "failed");
    free(hostname);
    vmig_capability_source_clear(&source);
    return status;
}

/* Decides and reports one VMI. Returns 0 migratable, 1 not, 2 bad configuration. */
static int
check_one(const CheckInputs *in, const VmigModelVmi *vmi, const CheckOptions *opt)
{
    const VmigModelNode *node = find_node(in, vmi->node_name);
    VmigChecksInput ci = {
        .vmi = vmi,
        .pvcs = in->pvcs,
        .data_volumes = in->dvs,
        .cluster_cpu_model = in->kubevirt ? in->kubevirt->cpu_model : NULL,
        .migratable_binding_plugins =
            in->kubevirt ? in->kubevirt->migratable_binding_plugins : NULL,
        .allow_host_passthrough = opt->allow_host_passthrough,
        .block_migrate_non_shared = opt->block_migrate_non_shared,
        .node_facts_known = node != NULL,
        .node_host_model_cpu = node ? vmig_checks_node_host_model(node) : NULL,
    };
    g_autoptr(VmigChecksResult) r = vmig_checks_source(&ci);
    g_autoptr(GError) e = NULL;
    g_autoptr(VmigMigconfig) conf = vmig_migconfig_effective(
        in->kubevirt, in->policies, find_namespace_labels(in, vmi->meta.namespace), vmi, &e);
    if (!conf) {
        g_printerr("vmigratectl check: %s\n", e->message);
        return 2;
    }
    printf("VirtualMachineInstance %s/%s", vmi->meta.namespace, vmi->meta.name);
    if (vmi->node_name)
        printf(" on %s%s", vmi->node_name,
               node ? "" : " (no Node document: host-model not checked)");
    printf("\nverdict: %s\n", r->migratable ? "migratable" : "not migratable");
    printf("method: %s\n", vmig_model_migration_method_to_string(r->method));
    g_autoptr(VmigModelCondition) c = vmig_checks_condition(r);
    printf("condition: %s=%s%s%s\n", c->type, c->status, c->reason ? " reason=" : "",
           c->reason ? c->reason : "");
    if (r->findings->len) {
        printf("reasons:\n");
        for (guint i = 0; i < r->findings->len; i++) {
            const VmigChecksFinding *f = g_ptr_array_index(r->findings, i);
            printf("  %s: %s\n", vmig_checks_reason_to_string(f->reason), f->message);
        }
    }
    if (r->copy_disks->len) {
        printf("copied by block migration (migrate_disks):");
        for (guint i = 0; i < r->copy_disks->len; i++)
            printf(" %s (volume %s)", (char *)g_ptr_array_index(r->copy_disks, i),
                   (char *)g_ptr_array_index(r->copy_volumes, i));
        printf("\n");
    }
    if (vmig_checks_eviction_warns(vmi, conf->eviction_strategy, r))
        printf("warning: evictionStrategy LiveMigrate but the VMI cannot migrate: a node drain "
               "will be blocked by it\n");
    check_report_config(conf, vmi, r);
    return r->migratable ? 0 : 1;
}

int
vmig_ctl_check(int argc, char **argv)
{
    CheckOptions opt = {0};
    GOptionEntry entries[] = {
        {"file", 'f', 0, G_OPTION_ARG_FILENAME_ARRAY, &opt.files,
         "offline: YAML or JSON file with the VMI and its context (repeatable)", "FILE"},
        {"namespace", 'n', 0, G_OPTION_ARG_STRING, &opt.namespace,
         "live: namespace of the VMI NAME (read through the API server)", "NS"},
        {"kubeconfig", 0, 0, G_OPTION_ARG_FILENAME, &opt.kubeconfig,
         "live: kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)", "FILE"},
        {"target-libvirt", 0, 0, G_OPTION_ARG_STRING, &opt.target_libvirt,
         "also run the target capability checks against this libvirt URI", "URI"},
        {"target-node", 0, 0, G_OPTION_ARG_STRING, &opt.target_node,
         "the target's node name (default: the target libvirt's hostname)", "NODE"},
        {"source-libvirt", 0, 0, G_OPTION_ARG_STRING, &opt.source_libvirt,
         "libvirt URI running the guest (domain <namespace>_<name>): its migratable XML and "
         "the source facts",
         "URI"},
        {"domain-xml", 0, 0, G_OPTION_ARG_FILENAME, &opt.domain_xml,
         "the guest's running (migratable) domain XML instead of --source-libvirt", "FILE"},
        {"allow-host-passthrough", 0, 0, G_OPTION_ARG_NONE, &opt.allow_host_passthrough,
         "accept CPU host-passthrough (only safe between identical hosts)", NULL},
        {"block-migrate-non-shared", 0, 0, G_OPTION_ARG_NONE, &opt.block_migrate_non_shared,
         "copy non-shared PVCs and hostDisks by block migration instead of refusing", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("[NAME] - can this VMI live-migrate?");
    g_option_context_set_summary(
        ctx, "Offline: check -f FILE [-f FILE ...]. Live: check -n NS NAME [--kubeconfig F].\n"
             "Exit status: 0 migratable, 1 not migratable (or the target refuses), 2 bad input,\n"
             "object not found or API/libvirt error.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) e = NULL;
    int status = 2;
    CheckInputs in = {0};
    check_inputs_init(&in);
    if (!g_option_context_parse(ctx, &argc, &argv, &e)) {
        g_printerr("vmigratectl check: %s\n", e->message);
        goto out;
    }
    gboolean live = opt.namespace || argc > 1;
    if (live && opt.files) {
        g_printerr("vmigratectl check: give either -f FILE (offline) or -n NS NAME (live)\n");
        goto out;
    }
    if (live && (!opt.namespace || argc != 2)) {
        g_printerr("vmigratectl check: live mode takes -n NS and exactly one VMI NAME\n");
        goto out;
    }
    if (!live && !opt.files) {
        g_printerr("vmigratectl check: give -f FILE (offline) or -n NS NAME (live)\n");
        goto out;
    }
    if (opt.source_libvirt && opt.domain_xml) {
        g_printerr("vmigratectl check: give either --source-libvirt or --domain-xml, not both\n");
        goto out;
    }
    if ((opt.source_libvirt || opt.domain_xml || opt.target_node) && !opt.target_libvirt) {
        g_printerr("vmigratectl check: --source-libvirt, --domain-xml and --target-node go "
                   "with --target-libvirt\n");
        goto out;
    }
    if (opt.target_libvirt && !opt.source_libvirt && !opt.domain_xml) {
        g_printerr("vmigratectl check: --target-libvirt needs the guest's running domain XML: "
                   "give --source-libvirt URI (the libvirt running the guest) or --domain-xml "
                   "FILE (virsh dumpxml --migratable)\n");
        goto out;
    }
    if (live ? !check_collect_live(opt.kubeconfig, opt.namespace, argv[1], &in, &e)
             : !check_collect_files(opt.files, &in, &e)) {
        g_printerr("vmigratectl check: %s\n", e->message);
        goto out;
    }
    if (in.vmis->len == 0) {
        g_printerr("vmigratectl check: no VirtualMachineInstance in the files\n");
        goto out;
    }
    if (opt.domain_xml && in.vmis->len > 1) {
        g_printerr("vmigratectl check: --domain-xml describes one guest but the files hold %u "
                   "VirtualMachineInstances\n",
                   in.vmis->len);
        goto out;
    }
    status = 0;
    for (guint i = 0; i < in.vmis->len; i++) {
        if (i)
            printf("\n");
        const VmigModelVmi *vmi = g_ptr_array_index(in.vmis, i);
        int s = check_one(&in, vmi, &opt);
        status = MAX(status, s);
        if (opt.target_libvirt) {
            fflush(stdout);
            s = check_target(vmi, &opt);
            status = MAX(status, s);
        }
    }
out:
    check_inputs_clear(&in);
    g_strfreev(opt.files);
    g_free(opt.namespace);
    g_free(opt.kubeconfig);
    g_free(opt.target_libvirt);
    g_free(opt.target_node);
    g_free(opt.source_libvirt);
    g_free(opt.domain_xml);
    return status;
}
