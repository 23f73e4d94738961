/* heartbeat.c - this agent's coordination.k8s.io/v1 Lease: "vmigrated runs on this node and
 * is ready", renewed every 10 s and trusted for 40 s; it also publishes the node's migration
 * address. Target selection only picks nodes whose Lease is fresh. */
#define G_LOG_DOMAIN "vmig-controller"

#include "controller-private.h"

#define CTL_HEARTBEAT_MS 10000

static char *
ctl_micro_time(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    return g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
}

static char *
ctl_my_address(VmigController *ctl)
{
    if (ctl->cfg->migration_address)
        return g_strdup(ctl->cfg->migration_address);
    /* From the Node object; not from our own Lease (that would never change). */
    g_autoptr(JsonNode) n =
        vmig_kube_informer_get(ctl->inf[CTL_INF_NODE], NULL, ctl->cfg->node_name);
    g_autoptr(VmigModelNode) view = n ? vmig_model_node_from_json(n, NULL) : NULL;
    for (guint i = 0; view && view->addresses && i < view->addresses->len; i++) {
        const VmigModelNodeAddress *a = view->addresses->pdata[i];
        if (g_strcmp0(a->type, "InternalIP") == 0)
            return g_strdup(a->address);
    }
    return NULL;
}

static VmigKubeMutateResult
ctl_lease_mutate(JsonObject *object, gpointer data, GError **error)
{
    VmigController *ctl = data;
    g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), object);
    g_autofree char *now = ctl_micro_time();
    g_autofree char *addr = ctl_my_address(ctl);
    if (!vmig_model_json_set_string(root, "spec.holderIdentity", ctl->cfg->node_name, error) ||
        !vmig_model_json_set_string(root, "spec.renewTime", now, error) ||
        !vmig_model_json_set(root, "spec.leaseDurationSeconds",
                             json_node_init_int(json_node_alloc(), VMIG_CTL_LEASE_SECONDS), error))
        return VMIG_KUBE_MUTATE_REFUSE;
    JsonNode *ann = vmig_model_json_get(root, "metadata.annotations");
    if (!ann) {
        vmig_model_json_set(root, "metadata.annotations", vmig_ctl_empty_object(), NULL);
        ann = vmig_model_json_get(root, "metadata.annotations");
    }
    if (addr && JSON_NODE_HOLDS_OBJECT(ann))
        json_object_set_string_member(json_node_get_object(ann), VMIG_CTL_ANN_ADDRESS, addr);
    return VMIG_KUBE_MUTATE_CHANGED;
}

static void
ctl_lease_created(GObject *src, GAsyncResult *res, gpointer data)
{
    VmigController *ctl = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) out = vmig_kube_call_finish(res, NULL, &err);
    ctl->heartbeat_busy = FALSE;
    if (!out)
        g_warning("heartbeat Lease %s/%s%s not created: %s", ctl->lease_namespace,
                  VMIG_CTL_LEASE_PREFIX, ctl->cfg->node_name, err->message);
}

static void
ctl_lease_written(GObject *src, GAsyncResult *res, gpointer data)
{
    VmigController *ctl = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) out = vmig_kube_call_finish(res, NULL, &err);
    if (out || !g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_NOT_FOUND)) {
        ctl->heartbeat_busy = FALSE;
        if (!out)
            g_warning("heartbeat Lease not renewed: %s", err->message);
        return;
    }
    g_autofree char *name = g_strconcat(VMIG_CTL_LEASE_PREFIX, ctl->cfg->node_name, NULL);
    JsonObject *o = vmig_ctl_lease_object(ctl, name);
    json_object_set_object_member(o, "spec", json_object_new());
    ctl_lease_mutate(o, ctl, NULL);
    g_autoptr(JsonNode) body = json_node_init_object(json_node_alloc(), o);
    json_object_unref(o);
    VmigKubeRequest req = {
        .resource = vmig_kube_resource(VMIG_KUBE_LEASE),
        .namespace = ctl->lease_namespace,
        .body = body,
    };
    vmig_kube_call(ctl->kube, VMIG_KUBE_VERB_CREATE, &req, NULL, ctl_lease_created, ctl);
}

JsonObject *
vmig_ctl_lease_object(VmigController *ctl, const char *name)
{
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "apiVersion", "coordination.k8s.io/v1");
    json_object_set_string_member(o, "kind", "Lease");
    JsonObject *meta = json_object_new();
    json_object_set_string_member(meta, "name", name);
    json_object_set_string_member(meta, "namespace", ctl->lease_namespace);
    json_object_set_object_member(o, "metadata", meta);
    return o;
}

static gboolean
ctl_heartbeat(gpointer data)
{
    VmigController *ctl = data;
    if (ctl->heartbeat_busy)
        return G_SOURCE_CONTINUE;
    ctl->heartbeat_busy = TRUE;
    g_autofree char *name = g_strconcat(VMIG_CTL_LEASE_PREFIX, ctl->cfg->node_name, NULL);
    vmig_kube_mutate(ctl->kube, vmig_kube_resource(VMIG_KUBE_LEASE), ctl->lease_namespace, name,
                     FALSE, NULL, 0, ctl_lease_mutate, ctl, NULL, ctl_lease_written, ctl);
    return G_SOURCE_CONTINUE;
}

void
vmig_ctl_heartbeat_start(VmigController *ctl)
{
    if (ctl->heartbeat_id)
        return;
    ctl_heartbeat(ctl);
    ctl->heartbeat_id = g_timeout_add(CTL_HEARTBEAT_MS, ctl_heartbeat, ctl);
}

void
vmig_ctl_heartbeat_stop(VmigController *ctl)
{
    if (ctl->heartbeat_id)
        g_source_remove(ctl->heartbeat_id);
    ctl->heartbeat_id = 0;
}
