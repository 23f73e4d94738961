/* recorder.c - core/v1 Events with aggregation of repeats (vmig/kube.h).
 *
 * Like client-go's EventRecorder: one Event object per (object, type, reason, message) within
 * a window; repeats PATCH its count and lastTimestamp instead of creating new objects, so a
 * flapping condition cannot flood etcd. */
#include "kube-private.h"

#include <string.h>

struct _VmigKubeRecorder {
    VmigKubeClient *client;
    char *component;
    char *host;
    guint window_ms;
    GHashTable *seen; /* aggregation key -> VmigKubeSeenEvent */
};

typedef struct {
    char *name; /* Event object name */
    char *namespace;
    guint count;
    gint64 last_us; /* monotonic */
} VmigKubeSeenEvent;

static void
vmig_kube_seen_free(gpointer p)
{
    VmigKubeSeenEvent *s = p;
    g_free(s->name);
    g_free(s->namespace);
    g_free(s);
}

VmigKubeRecorder *
vmig_kube_recorder_new(VmigKubeClient *client, const char *component, const char *host,
                       guint window_ms)
{
    VmigKubeRecorder *rec = g_new0(VmigKubeRecorder, 1);
    rec->client = vmig_kube_client_ref(client);
    rec->component = g_strdup(component ? component : "vmigrated");
    rec->host = g_strdup(host);
    rec->window_ms = window_ms ? window_ms : 600000;
    rec->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, vmig_kube_seen_free);
    return rec;
}

void
vmig_kube_recorder_free(VmigKubeRecorder *rec)
{
    if (!rec)
        return;
    g_hash_table_unref(rec->seen);
    vmig_kube_client_unref(rec->client);
    g_free(rec->component);
    g_free(rec->host);
    g_free(rec);
}

typedef struct {
    VmigKubeRecorder *rec; /* not owned: the recorder outlives its events in practice */
    char *key;
    JsonNode *create_body; /* for a PATCH that finds the Event gone */
    char *namespace;
    GTask *task; /* nullable: the caller's callback */
} VmigKubeEmit;

static void
vmig_kube_emit_free(VmigKubeEmit *e)
{
    g_free(e->key);
    g_free(e->namespace);
    if (e->create_body)
        json_node_unref(e->create_body);
    g_free(e);
}

static void
vmig_kube_emit_finish(VmigKubeEmit *e, JsonNode *written, GError *err)
{
    if (err)
        g_warning("event %s: %s", e->key, err->message);
    if (e->task) {
        if (err)
            g_task_return_error(e->task, err);
        else
            g_task_return_pointer(e->task, json_node_ref(written), (GDestroyNotify)json_node_unref);
        g_object_unref(e->task);
    } else if (err) {
        g_error_free(err);
    }
    vmig_kube_emit_free(e);
}

static void
vmig_kube_emit_created(GObject *source, GAsyncResult *result, gpointer user_data)
{
    VmigKubeEmit *e = user_data;
    GError *err = NULL;
    g_autoptr(JsonNode) written = vmig_kube_call_finish(result, NULL, &err);
    vmig_kube_emit_finish(e, written, err);
}

static void
vmig_kube_emit_create(VmigKubeEmit *e)
{
    VmigKubeRequest req = {
        .resource = vmig_kube_resource(VMIG_KUBE_EVENT),
        .namespace = e->namespace,
        .body = e->create_body,
    };
    vmig_kube_call(e->rec->client, VMIG_KUBE_VERB_CREATE, &req, NULL, vmig_kube_emit_created, e);
}

static void
vmig_kube_emit_patched(GObject *source, GAsyncResult *result, gpointer user_data)
{
    VmigKubeEmit *e = user_data;
    GError *err = NULL;
    g_autoptr(JsonNode) written = vmig_kube_call_finish(result, NULL, &err);
    if (g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_NOT_FOUND)) {
        /* the Event expired (TTL) or was deleted: start a new one */
        g_error_free(err);
        VmigKubeSeenEvent *s = g_hash_table_lookup(e->rec->seen, e->key);
        if (s) {
            s->count = 1;
            g_free(s->name);
            s->name = g_strdup(vmig_kube_meta_string(e->create_body, "name"));
        }
        vmig_kube_emit_create(e);
        return;
    }
    vmig_kube_emit_finish(e, written, err);
}

static void
vmig_kube_set_str(JsonObject *o, const char *k, const char *v)
{
    if (v)
        json_object_set_string_member(o, k, v);
}

static char *
vmig_kube_event_name(const char *name)
{
    /* kubectl's naming: <object>.<unique hex> */
    return g_strdup_printf("%s.%" G_GINT64_MODIFIER "x%04x", name ? name : "unknown",
                           g_get_real_time() * 1000, (guint)g_random_int_range(0, 0xffff));
}

static JsonNode *
vmig_kube_event_body(VmigKubeRecorder *rec, JsonNode *involved, const char *event_ns,
                     const char *evname, const char *type, const char *reason, const char *message,
                     const char *now)
{
    JsonObject *io = json_node_get_object(involved);
    const char *ns = vmig_kube_meta_string(involved, "namespace");
    const char *name = vmig_kube_meta_string(involved, "name");
    const char *uid = vmig_kube_meta_string(involved, "uid");
    JsonObject *ev = json_object_new();
    json_object_set_string_member(ev, "apiVersion", "v1");
    json_object_set_string_member(ev, "kind", "Event");
    JsonObject *meta = json_object_new();
    json_object_set_string_member(meta, "name", evname);
    json_object_set_string_member(meta, "namespace", event_ns);
    json_object_set_object_member(ev, "metadata", meta);
    JsonObject *inv = json_object_new();
    vmig_kube_set_str(inv, "apiVersion",
                      json_object_get_string_member_with_default(io, "apiVersion", NULL));
    vmig_kube_set_str(inv, "kind", json_object_get_string_member_with_default(io, "kind", NULL));
    vmig_kube_set_str(inv, "namespace", ns);
    vmig_kube_set_str(inv, "name", name);
    vmig_kube_set_str(inv, "uid", uid);
    vmig_kube_set_str(inv, "resourceVersion", vmig_kube_meta_string(involved, "resourceVersion"));
    json_object_set_object_member(ev, "involvedObject", inv);
    json_object_set_string_member(ev, "reason", reason);
    json_object_set_string_member(ev, "message", message);
    json_object_set_string_member(ev, "type", type);
    JsonObject *src = json_object_new();
    json_object_set_string_member(src, "component", rec->component);
    vmig_kube_set_str(src, "host", rec->host);
    json_object_set_object_member(ev, "source", src);
    json_object_set_string_member(ev, "reportingComponent", rec->component);
    vmig_kube_set_str(ev, "reportingInstance", rec->host);
    json_object_set_int_member(ev, "count", 1);
    json_object_set_string_member(ev, "firstTimestamp", now);
    json_object_set_string_member(ev, "lastTimestamp", now);
    JsonNode *n = json_node_init_object(json_node_alloc(), ev);
    json_object_unref(ev);
    return n;
}

void
vmig_kube_recorder_event(VmigKubeRecorder *rec, JsonNode *involved, gboolean warning,
                         const char *reason, const char *message, GAsyncReadyCallback callback,
                         gpointer user_data)
{
    const char *ns = vmig_kube_meta_string(involved, "namespace");
    const char *name = vmig_kube_meta_string(involved, "name");
    const char *uid = vmig_kube_meta_string(involved, "uid");
    const char *type = warning ? "Warning" : "Normal";
    /* cluster-scoped objects (nodes) get their events in "default", as kubectl shows them */
    const char *event_ns = ns && *ns ? ns : "default";
    VmigKubeEmit *e = g_new0(VmigKubeEmit, 1);
    e->rec = rec;
    e->namespace = g_strdup(event_ns);
    e->key = g_strdup_printf("%s/%s/%s/%s/%s/%s", event_ns, name ? name : "", uid ? uid : "", type,
                             reason, message);
    if (callback)
        e->task = g_task_new(NULL, NULL, callback, user_data);
    g_autofree char *now = vmig_kube_now_rfc3339();
    gint64 now_us = g_get_monotonic_time();

    VmigKubeSeenEvent *s = g_hash_table_lookup(rec->seen, e->key);
    if (s && now_us - s->last_us < (gint64)rec->window_ms * 1000) {
        s->count++;
        s->last_us = now_us;
        JsonObject *patch = json_object_new();
        json_object_set_int_member(patch, "count", s->count);
        json_object_set_string_member(patch, "lastTimestamp", now);
        g_autoptr(JsonNode) pn = json_node_init_object(json_node_alloc(), patch);
        json_object_unref(patch);
        VmigKubeRequest req = {
            .resource = vmig_kube_resource(VMIG_KUBE_EVENT),
            .namespace = event_ns,
            .name = s->name,
            .body = pn,
        };
        /* kept to recreate the Event should the PATCH find it gone */
        g_autofree char *fresh = vmig_kube_event_name(name);
        e->create_body =
            vmig_kube_event_body(rec, involved, event_ns, fresh, type, reason, message, now);
        vmig_kube_call(rec->client, VMIG_KUBE_VERB_MERGE_PATCH, &req, NULL, vmig_kube_emit_patched,
                       e);
        return;
    }
    if (!s) {
        s = g_new0(VmigKubeSeenEvent, 1);
        g_hash_table_insert(rec->seen, g_strdup(e->key), s);
    }
    g_free(s->name);
    s->name = vmig_kube_event_name(name);
    g_free(s->namespace);
    s->namespace = g_strdup(event_ns);
    s->count = 1;
    s->last_us = now_us;

    e->create_body =
        vmig_kube_event_body(rec, involved, event_ns, s->name, type, reason, message, now);
    vmig_kube_emit_create(e);
}
