/* ctl-check.c - `vmigratectl check`: is a VMI live-migratable, how, and with which effective
 * configuration? Offline from YAML/JSON files (any mix of VirtualMachineInstance,
 * PersistentVolumeClaim, DataVolume, Node, Namespace, KubeVirt, MigrationPolicy and
 * VirtualMachineInstanceMigration documents, `kind: List` included).
 *
 * Exit status: 0 migratable, 1 not migratable, 2 bad usage or bad input (file and field named).
 *
 * The command is split in three steps so the live mode can reuse the last two:
 *   1. collect: fill CheckInputs (offline: check_collect_files; live: TODO below),
 *   2. decide:  vmig_checks_source() + vmig_migconfig_effective() per VMI,
 *   3. report:  check_report().
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "vmig/checks.h"
#include "vmig/migconfig.h"
#include "vmig/model.h"

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

/* Parses one document into @in; errors are prefixed with the file and document number. */
static gboolean
check_add_document(CheckInputs *in, JsonNode *doc, const char *file, guint index, GError **error)
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
            g_printerr("vmigratectl check: %s: document %u: VirtualMachineInstanceMigration "
                       "with generateName only: not validated\n",
                       file, index + 1);
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
                        "%s: document %u: a second KubeVirt CR (only one may configure the "
                        "cluster)",
                        file, index + 1);
            return FALSE;
        }
        in->kubevirt = vmig_model_kubevirt_from_json(doc, &e);
        obj = in->kubevirt;
        break;
    default:
        g_printerr("vmigratectl check: %s: document %u: ignoring a document of another kind\n",
                   file, index + 1);
        return TRUE;
    }
    if (!obj) {
        g_set_error(error, VMIG_MODEL_ERROR, e->code, "%s: document %u: %s", file, index + 1,
                    e->message);
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
            if (!check_add_document(in, g_ptr_array_index(docs, d), files[i], d, error))
                return FALSE;
        }
    }
    return TRUE;
}

/* TODO(live mode, lead): `-n NS NAME` fills CheckInputs through the Kubernetes client
 * (vmig/kube.h): GET the VMI, the PVCs and DataVolumes its volumes name, its Node (for
 * host-model facts), its Namespace (labels), the KubeVirt CR and all MigrationPolicies; then the
 * decide and report steps below run unchanged. */

/* TODO(target capability, lead): `--target-libvirt URI` runs the capability module against the
 * URI with the running domain's migratable XML and appends its verdict to the report; a
 * refusal there also makes the exit status 1. */

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
    char *target_libvirt;
    gboolean allow_host_passthrough;
    gboolean block_migrate_non_shared;
} CheckOptions;

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
         "YAML or JSON file with the VMI and its context (repeatable)", "FILE"},
        {"namespace", 'n', 0, G_OPTION_ARG_STRING, &opt.namespace,
         "live mode: namespace of the VMI NAME (through the API server)", "NS"},
        {"target-libvirt", 0, 0, G_OPTION_ARG_STRING, &opt.target_libvirt,
         "also run the target capability checks against this libvirt URI", "URI"},
        {"allow-host-passthrough", 0, 0, G_OPTION_ARG_NONE, &opt.allow_host_passthrough,
         "accept CPU host-passthrough (only safe between identical hosts)", NULL},
        {"block-migrate-non-shared", 0, 0, G_OPTION_ARG_NONE, &opt.block_migrate_non_shared,
         "copy non-shared PVCs and hostDisks by block migration instead of refusing", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("[NAME] - can this VMI live-migrate?");
    g_option_context_set_summary(ctx, "Exit status: 0 migratable, 1 not migratable, 2 bad input.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) e = NULL;
    int status = 2;
    CheckInputs in = {0};
    check_inputs_init(&in);
    if (!g_option_context_parse(ctx, &argc, &argv, &e)) {
        g_printerr("vmigratectl check: %s\n", e->message);
        goto out;
    }
    if (opt.namespace || argc > 1) {
        /* TODO(live mode): see check_collect_files' sibling above. */
        g_printerr("vmigratectl check: live mode (-n NS NAME) is not wired yet; use -f FILE\n");
        goto out;
    }
    if (opt.target_libvirt) {
        g_printerr("vmigratectl check: --target-libvirt is not wired yet\n");
        goto out;
    }
    if (!opt.files) {
        g_printerr("vmigratectl check: give at least one -f FILE\n");
        goto out;
    }
    if (!check_collect_files(opt.files, &in, &e)) {
        g_printerr("vmigratectl check: %s\n", e->message);
        goto out;
    }
    if (in.vmis->len == 0) {
        g_printerr("vmigratectl check: no VirtualMachineInstance in the files\n");
        goto out;
    }
    status = 0;
    for (guint i = 0; i < in.vmis->len; i++) {
        if (i)
            printf("\n");
        int s = check_one(&in, g_ptr_array_index(in.vmis, i), &opt);
        status = MAX(status, s);
    }
out:
    check_inputs_clear(&in);
    g_strfreev(opt.files);
    g_free(opt.namespace);
    g_free(opt.target_libvirt);
    return status;
}
