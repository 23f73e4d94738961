/* ctl-get.c - `vmigratectl get|watch RESOURCE`: list or watch objects through the kube
 * client, one line per object or event, so the client can be tried against any cluster:
 *
 *   TYPE NAMESPACE/NAME RESOURCEVERSION PHASE
 *
 * TYPE is the kind for get, the event type (ADDED, MODIFIED, DELETED) for watch; PHASE is
 * status.phase or "-". */
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "vmig/kube.h"

typedef struct {
    char *namespace;
    gboolean all_namespaces;
    char *selector;
    char *field_selector;
    char *kubeconfig;
    gint timeout_s;
} VmigCtlGetOptions;

static const char *
vmig_ctl_phase(JsonNode *obj)
{
    JsonObject *o = json_node_get_object(obj);
    JsonNode *st = json_object_get_member(o, "status");
    if (!st || !JSON_NODE_HOLDS_OBJECT(st))
        return "-";
    JsonNode *ph = json_object_get_member(json_node_get_object(st), "phase");
    if (!ph || !JSON_NODE_HOLDS_VALUE(ph) || json_node_get_value_type(ph) != G_TYPE_STRING)
        return "-";
    return json_node_get_string(ph);
}

static void
vmig_ctl_print(const char *type, JsonNode *obj)
{
    g_autofree char *key = vmig_kube_object_key(obj);
    const char *rv = vmig_kube_meta_string(obj, "resourceVersion");
    printf("%s %s %s %s\n", type, key, rv ? rv : "-", vmig_ctl_phase(obj));
    fflush(stdout);
}

/* Parses the shared options; returns the resource or NULL (message printed, exit 2). */
static const VmigKubeResource *
vmig_ctl_get_parse(const char *verb, int argc, char **argv, VmigCtlGetOptions *o,
                   VmigKubeClient **client)
{
    GOptionEntry entries[] = {
        {"namespace", 'n', 0, G_OPTION_ARG_STRING, &o->namespace,
         "namespace (default: the "
         "kubeconfig context's)",
         "NS"},
        {"all-namespaces", 'A', 0, G_OPTION_ARG_NONE, &o->all_namespaces, "all namespaces", NULL},
        {"selector", 'l', 0, G_OPTION_ARG_STRING, &o->selector, "label selector", "SELECTOR"},
        {"field-selector", 0, 0, G_OPTION_ARG_STRING, &o->field_selector, "field selector",
         "SELECTOR"},
        {"kubeconfig", 0, 0, G_OPTION_ARG_FILENAME, &o->kubeconfig,
         "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)", "FILE"},
        {"timeout", 0, 0, G_OPTION_ARG_INT, &o->timeout_s, "watch: stop after SECONDS", "SECONDS"},
        {NULL},
    };
    g_autofree char *summary = g_strdup_printf("RESOURCE - %s objects (vmi, vmim, nodes, pods, "
                                               "pvc, events, leases, migrationpolicies, ...)",
                                               verb);
    g_autoptr(GOptionContext) ctx = g_option_context_new(summary);
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) err = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "vmigratectl %s: %s\n", verb, err->message);
        return NULL;
    }
    if (argc != 2) {
        fprintf(stderr, "vmigratectl %s: exactly one RESOURCE expected\n", verb);
        return NULL;
    }
    if (o->all_namespaces && o->namespace) {
        fprintf(stderr, "vmigratectl %s: -n and -A exclude each other\n", verb);
        return NULL;
    }
    const VmigKubeResource *res = vmig_kube_resource_lookup(argv[1]);
    if (!res) {
        fprintf(stderr, "vmigratectl %s: unknown resource '%s'\n", verb, argv[1]);
        return NULL;
    }
    g_autoptr(VmigKubeConfig) cfg = vmig_kube_config_load(o->kubeconfig, &err);
    if (!cfg) {
        fprintf(stderr, "vmigratectl %s: %s\n", verb, err->message);
        return NULL;
    }
    *client = vmig_kube_client_new(cfg, &err);
    if (!*client) {
        fprintf(stderr, "vmigratectl %s: %s\n", verb, err->message);
        return NULL;
    }
    if (!res->namespaced || o->all_namespaces) {
        g_clear_pointer(&o->namespace, g_free);
    } else if (!o->namespace) {
        o->namespace = g_strdup(vmig_kube_client_get_namespace(*client));
    }
    return res;
}

static void
vmig_ctl_get_options_clear(VmigCtlGetOptions *o)
{
    g_free(o->namespace);
    g_free(o->selector);
    g_free(o->field_selector);
    g_free(o->kubeconfig);
}

typedef struct {
    gboolean done;
    JsonNode *list;
    GError *error;
} VmigCtlListWait;

static void
vmig_ctl_list_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
    VmigCtlListWait *w = user_data;
    w->list = vmig_kube_call_finish(result, NULL, &w->error);
    w->done = TRUE;
}

int
vmig_ctl_get(int argc, char **argv)
{
    VmigCtlGetOptions o = {0};
    g_autoptr(VmigKubeClient) client = NULL;
    const VmigKubeResource *res = vmig_ctl_get_parse("get", argc, argv, &o, &client);
    if (!res) {
        vmig_ctl_get_options_clear(&o);
        return 2;
    }
    VmigKubeRequest req = {
        .resource = res,
        .namespace = o.namespace,
        .label_selector = o.selector,
        .field_selector = o.field_selector,
        .limit = 500,
    };
    VmigCtlListWait w = {0};
    vmig_kube_list_all(client, &req, NULL, vmig_ctl_list_done, &w);
    /* every request has its own timeout; this bound only guards against a bug */
    vmig_kube_wait(&w.done, 10 * 60 * 1000);
    vmig_ctl_get_options_clear(&o);
    if (!w.done || !w.list) {
        fprintf(stderr, "vmigratectl get: %s\n", w.error ? w.error->message : "timed out");
        g_clear_error(&w.error);
        return 1;
    }
    JsonArray *items = json_object_get_array_member(json_node_get_object(w.list), "items");
    for (guint i = 0; i < json_array_get_length(items); i++)
        vmig_ctl_print(res->kind, json_array_get_element(items, i));
    json_node_unref(w.list);
    return 0;
}

static void
vmig_ctl_watch_added(VmigKubeInformer *inf, JsonNode *obj, gpointer user_data)
{
    vmig_ctl_print("ADDED", obj);
}

static void
vmig_ctl_watch_updated(VmigKubeInformer *inf, JsonNode *old_obj, JsonNode *obj, gpointer user_data)
{
    vmig_ctl_print("MODIFIED", obj);
}

static void
vmig_ctl_watch_deleted(VmigKubeInformer *inf, JsonNode *obj, gpointer user_data)
{
    vmig_ctl_print("DELETED", obj);
}

static gboolean
vmig_ctl_watch_stop(gpointer user_data)
{
    g_main_loop_quit(user_data);
    return G_SOURCE_REMOVE;
}

int
vmig_ctl_watch(int argc, char **argv)
{
    VmigCtlGetOptions o = {0};
    g_autoptr(VmigKubeClient) client = NULL;
    const VmigKubeResource *res = vmig_ctl_get_parse("watch", argc, argv, &o, &client);
    if (!res) {
        vmig_ctl_get_options_clear(&o);
        return 2;
    }
    VmigKubeInformerOptions opt = {
        .namespace = o.namespace,
        .label_selector = o.selector,
        .field_selector = o.field_selector,
    };
    static const VmigKubeInformerHandlers handlers = {
        .added = vmig_ctl_watch_added,
        .updated = vmig_ctl_watch_updated,
        .deleted = vmig_ctl_watch_deleted,
    };
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    VmigKubeInformer *inf = vmig_kube_informer_new(client, res, &opt, &handlers, NULL);
    guint sigint = g_unix_signal_add(SIGINT, vmig_ctl_watch_stop, loop);
    guint sigterm = g_unix_signal_add(SIGTERM, vmig_ctl_watch_stop, loop);
    guint timer =
        o.timeout_s > 0 ? g_timeout_add_seconds((guint)o.timeout_s, vmig_ctl_watch_stop, loop) : 0;
    vmig_kube_informer_start(inf);
    g_main_loop_run(loop);
    g_source_remove(sigint);
    g_source_remove(sigterm);
    if (timer && g_main_context_find_source_by_id(NULL, timer))
        g_source_remove(timer);
    vmig_kube_informer_free(inf);
    vmig_ctl_get_options_clear(&o);
    return 0;
}
