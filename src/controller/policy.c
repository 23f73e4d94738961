/* policy.c - the controller's view of the source checks and the migration settings:
 * gathers the objects the pure checks and migconfig modules need from the caches. */
#define G_LOG_DOMAIN "vmig-controller"

#include "controller-private.h"

#include "vmig/checks.h"
#include "vmig/migconfig.h"

#include <string.h>

typedef gpointer (*CtlParseFunc)(JsonNode *node, GError **error);

/* Views of every cached object of one informer in @ns (all when NULL). */
static GPtrArray *
ctl_views(VmigController *ctl, CtlInformer which, const char *ns, CtlParseFunc parse,
          GDestroyNotify free_func)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(free_func);
    g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(ctl->inf[which]);
    for (guint i = 0; i < keys->len; i++) {
        const char *k = keys->pdata[i];
        const char *slash = strchr(k, '/');
        g_autofree char *kns = slash ? g_strndup(k, slash - k) : NULL;
        if (ns && g_strcmp0(kns, ns) != 0)
            continue;
        g_autoptr(JsonNode) n = vmig_kube_informer_get(ctl->inf[which], kns, slash ? slash + 1 : k);
        gpointer view = n ? parse(n, NULL) : NULL;
        if (view)
            g_ptr_array_add(out, view);
    }
    return out;
}

static VmigModelKubevirt *
ctl_kubevirt(VmigController *ctl)
{
    g_autoptr(GPtrArray) all =
        ctl_views(ctl, CTL_INF_KUBEVIRT, NULL, (CtlParseFunc)vmig_model_kubevirt_from_json,
                  (GDestroyNotify)vmig_model_kubevirt_free);
    /* One KubeVirt CR per cluster; the first by key if an operator left two. */
    return all->len ? g_ptr_array_steal_index(all, 0) : NULL;
}

static VmigMigconfig *
ctl_migconfig(VmigController *ctl, VmigModelVmi *vmi)
{
    g_autoptr(VmigModelKubevirt) kv = ctl_kubevirt(ctl);
    g_autoptr(GPtrArray) policies =
        ctl_views(ctl, CTL_INF_POLICY, NULL, (CtlParseFunc)vmig_model_migration_policy_from_json,
                  (GDestroyNotify)vmig_model_migration_policy_free);
    g_autoptr(VmigModelNamespace) ns = NULL;
    if (vmi) {
        g_autoptr(JsonNode) n =
            vmig_kube_informer_get(ctl->inf[CTL_INF_NAMESPACE], NULL, vmi->meta.namespace);
        ns = n ? vmig_model_namespace_from_json(n, NULL) : NULL;
    }
    g_autoptr(GError) err = NULL;
    VmigMigconfig *c =
        vmig_migconfig_effective(kv, policies, ns ? ns->meta.labels : NULL, vmi, &err);
    if (!c) {
        /* A bad value in the CR or a policy: say so, and use KubeVirt's defaults. */
        g_warning("migration configuration for %s/%s: %s; using the defaults",
                  vmi ? vmi->meta.namespace : "-", vmi ? vmi->meta.name : "-", err->message);
        c = vmig_migconfig_new_defaults();
    }
    return c;
}

gboolean
vmig_ctl_allow_host_passthrough(VmigController *ctl, VmigModelVmi *vmi)
{
    /* Not a KubeVirt setting: only identical hosts can take such a guest, so vmigrated
     * refuses it unless the operator opts in on the VMI. */
    return vmi && g_strcmp0(g_hash_table_lookup(vmi->meta.annotations,
                                                "vmigrated.kubevirt.io/allow-host-passthrough"),
                            "true") == 0;
}

static VmigChecksResult *
ctl_checks(VmigController *ctl, VmigModelVmi *vmi)
{
    g_autoptr(GPtrArray) pvcs =
        ctl_views(ctl, CTL_INF_PVC, vmi->meta.namespace, (CtlParseFunc)vmig_model_pvc_from_json,
                  (GDestroyNotify)vmig_model_pvc_free);
    g_autoptr(GPtrArray) dvs = ctl_views(ctl, CTL_INF_DV, vmi->meta.namespace,
                                         (CtlParseFunc)vmig_model_data_volume_from_json,
                                         (GDestroyNotify)vmig_model_data_volume_free);
    g_autoptr(VmigModelKubevirt) kv = ctl_kubevirt(ctl);
    g_autoptr(VmigModelNode) node = NULL;
    if (vmi->node_name) {
        g_autoptr(JsonNode) n =
            vmig_kube_informer_get(ctl->inf[CTL_INF_NODE], NULL, vmi->node_name);
        node = n ? vmig_model_node_from_json(n, NULL) : NULL;
    }
    VmigChecksInput in = {
        .vmi = vmi,
        .pvcs = pvcs,
        .data_volumes = dvs,
        .cluster_cpu_model = kv ? kv->cpu_model : NULL,
        .migratable_binding_plugins = kv ? kv->migratable_binding_plugins : NULL,
        .allow_host_passthrough = vmig_ctl_allow_host_passthrough(ctl, vmi),
        .node_facts_known = node != NULL,
        .node_host_model_cpu = node ? vmig_checks_node_host_model(node) : NULL,
    };
    return vmig_checks_source(&in);
}

gboolean
vmig_ctl_check_source(VmigController *ctl, VmigModelVmi *vmi, char **reason, GStrv *copy_disks)
{
    g_autoptr(VmigChecksResult) r = ctl_checks(ctl, vmi);
    if (reason && !r->migratable && r->findings->len) {
        const VmigChecksFinding *f = r->findings->pdata[0];
        *reason = g_strdup_printf("%s: %s", vmig_checks_reason_to_string(f->reason), f->message);
    }
    if (copy_disks) {
        GStrvBuilder *b = g_strv_builder_new();
        for (guint i = 0; r->copy_disks && i < r->copy_disks->len; i++)
            g_strv_builder_add(b, r->copy_disks->pdata[i]);
        *copy_disks = g_strv_builder_end(b);
        g_strv_builder_unref(b);
    }
    return r->migratable;
}

void
vmig_ctl_limits(VmigController *ctl, guint *per_cluster, guint *per_node)
{
    g_autoptr(VmigMigconfig) c = ctl_migconfig(ctl, NULL);
    *per_cluster = (guint)CLAMP(c->parallel_migrations_per_cluster, 1, G_MAXINT);
    *per_node = (guint)CLAMP(c->parallel_outbound_migrations_per_node, 1, G_MAXINT);
}

gboolean
vmig_ctl_disable_tls(VmigController *ctl)
{
    /* --disable-tls: this node has no TLS credentials, so it can only run plain migrations */
    if (ctl->cfg->disable_tls)
        return TRUE;
    g_autoptr(VmigMigconfig) c = ctl_migconfig(ctl, NULL);
    return c->disable_tls;
}

VmigProxyTransport
vmig_ctl_source_transport(const char *source_annotation)
{
    g_autoptr(JsonNode) n = source_annotation ? json_from_string(source_annotation, NULL) : NULL;
    if (!n || !JSON_NODE_HOLDS_OBJECT(n))
        return VMIG_PROXY_TRANSPORT_DEFAULT;
    JsonNode *m = json_object_get_member(json_node_get_object(n), "disableTLS");
    if (!m)
        return VMIG_PROXY_TRANSPORT_DEFAULT;
    gboolean plain = JSON_NODE_HOLDS_VALUE(m) && json_node_get_value_type(m) == G_TYPE_BOOLEAN &&
                     json_node_get_boolean(m);
    return plain ? VMIG_PROXY_TRANSPORT_PLAIN : VMIG_PROXY_TRANSPORT_TLS;
}

void
vmig_ctl_effective(VmigController *ctl, VmigModelVmi *vmi, CtlEffective *out)
{
    g_autoptr(VmigMigconfig) c = ctl_migconfig(ctl, vmi);
    *out = (CtlEffective){
        .bandwidth_mibps = c->bandwidth_unlimited ? 0 : c->bandwidth_mibps,
        .auto_converge = c->allow_auto_converge,
        .allow_postcopy = c->allow_post_copy,
        .completion_timeout_per_gib_s = (guint)CLAMP(c->completion_timeout_per_gib, 0, G_MAXINT),
        .progress_timeout_s = (guint)CLAMP(c->progress_timeout, 0, G_MAXINT),
    };
}

/* The VMI's LiveMigratable condition and migrationMethod, written when they change, for
 * VMIs on this node; a Warning when evictionStrategy LiveMigrate cannot be honoured. */
typedef struct {
    VmigController *ctl;
    VmigChecksResult *result;
    char *now;
} CtlConditionWrite;

static VmigKubeMutateResult
ctl_condition_mutate(JsonObject *object, gpointer data, GError **error)
{
    CtlConditionWrite *w = data;
    g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), object);
    g_autoptr(VmigModelVmi) live = vmig_model_vmi_from_json(root, error);
    if (!live)
        return VMIG_KUBE_MUTATE_REFUSE;
    if (!vmig_checks_status_changed(live, w->result))
        return VMIG_KUBE_MUTATE_UNCHANGED;
    return vmig_checks_write_status(root, w->result, w->now, error) ? VMIG_KUBE_MUTATE_CHANGED
                                                                    : VMIG_KUBE_MUTATE_REFUSE;
}

static void
ctl_condition_written(GObject *src, GAsyncResult *res, gpointer data)
{
    CtlConditionWrite *w = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) out = vmig_kube_call_finish(res, NULL, &err);
    if (!out)
        g_info("LiveMigratable condition not written: %s", err->message);
    vmig_checks_result_free(w->result);
    g_free(w->now);
    g_free(w);
}

void
vmig_ctl_vmi_condition(VmigController *ctl, JsonNode *vmi_node)
{
    g_autoptr(VmigModelVmi) vmi = vmig_model_vmi_from_json(vmi_node, NULL);
    if (!vmi || g_strcmp0(vmi->node_name, ctl->cfg->node_name) != 0)
        return;
    VmigChecksResult *r = ctl_checks(ctl, vmi);
    if (!vmig_checks_status_changed(vmi, r)) {
        vmig_checks_result_free(r);
        return;
    }
    g_autoptr(VmigModelKubevirt) kv = ctl_kubevirt(ctl);
    if (vmig_checks_eviction_warns(vmi, kv ? kv->eviction_strategy : VMIG_MODEL_EVICTION_NONE, r) &&
        r->findings->len) {
        const VmigChecksFinding *f = r->findings->pdata[0];
        vmig_kube_recorder_event(ctl->recorder, vmi_node, TRUE,
                                 vmig_checks_reason_to_string(f->reason), f->message, NULL, NULL);
    }
    CtlConditionWrite *w = g_new0(CtlConditionWrite, 1);
    w->ctl = ctl;
    w->result = r;
    w->now = vmig_ctl_now_rfc3339(vmig_ctl_wall_ms());
    vmig_kube_mutate(ctl->kube, vmig_kube_resource(VMIG_KUBE_VMI), vmi->meta.namespace,
                     vmi->meta.name, TRUE, NULL, 0, ctl_condition_mutate, w, NULL,
                     ctl_condition_written, w);
}

char *
vmig_ctl_drain_taint_key(VmigController *ctl)
{
    g_autoptr(VmigMigconfig) c = ctl_migconfig(ctl, NULL);
    return g_strdup(c->node_drain_taint_key && *c->node_drain_taint_key
                        ? c->node_drain_taint_key
                        : VMIG_MIGCONFIG_DEFAULT_NODE_DRAIN_TAINT_KEY);
}

VmigModelEvictionStrategy
vmig_ctl_cluster_eviction_strategy(VmigController *ctl)
{
    g_autoptr(VmigModelKubevirt) kv = ctl_kubevirt(ctl);
    return kv ? kv->eviction_strategy : VMIG_MODEL_EVICTION_UNSET;
}
