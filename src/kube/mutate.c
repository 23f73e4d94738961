/* mutate.c - status writes with a precondition and conflict retry (vmig/kube.h).
 *
 * Field case B04: a write based on a stale read must fail (the PUT carries the resourceVersion
 * it was computed from), and after a 409 the change is recomputed from a fresh GET of the
 * server's object, never from the informer cache, so another writer's fields survive and a
 * mutation can see that the live object already belongs to someone else and refuse. */
#include "kube-private.h"

#define VMIG_KUBE_MUTATE_BACKOFF_MS 50

typedef struct {
    VmigKubeClient *client;
    const VmigKubeResource *resource;
    char *namespace;
    char *name;
    gboolean status;
    guint max_attempts;
    guint attempt; /* writes sent */
    VmigKubeMutateFunc mutate;
    gpointer mutate_data;
    GCancellable *cancellable;
    char *what;
} VmigKubeMutate;

static void
vmig_kube_mutate_free(gpointer p)
{
    VmigKubeMutate *m = p;
    vmig_kube_client_unref(m->client);
    g_free(m->namespace);
    g_free(m->name);
    g_free(m->what);
    g_clear_object(&m->cancellable);
    g_free(m);
}

static void vmig_kube_mutate_get(GTask *task);

static gboolean
vmig_kube_mutate_retry(gpointer data)
{
    vmig_kube_mutate_get(data);
    return G_SOURCE_REMOVE;
}

static void
vmig_kube_mutate_put_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    VmigKubeMutate *m = g_task_get_task_data(task);
    GError *err = NULL;
    JsonNode *written = vmig_kube_call_finish(result, NULL, &err);
    if (written) {
        g_task_return_pointer(task, written, (GDestroyNotify)json_node_unref);
        g_object_unref(task);
        return;
    }
    if (g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFLICT) &&
        m->attempt < m->max_attempts) {
        guint delay = VMIG_KUBE_MUTATE_BACKOFF_MS << MIN(m->attempt - 1, 6);
        delay = vmig_kube_jitter_ms(delay / 2) + delay / 2;
        g_debug("%s: conflict (attempt %u of %u); re-reading in %u ms", m->what, m->attempt,
                m->max_attempts, delay);
        g_error_free(err);
        GSource *s = g_timeout_source_new(delay);
        g_source_set_callback(s, vmig_kube_mutate_retry, task, NULL);
        g_source_attach(s, vmig_kube_client_context(m->client));
        g_source_unref(s);
        return;
    }
    if (g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFLICT))
        g_prefix_error(&err, "conflict persisted after %u attempts: ", m->attempt);
    g_task_return_error(task, err);
    g_object_unref(task);
}

/* Applies the mutation to @obj (consumed) and writes it, or finishes. */
static void
vmig_kube_mutate_apply(GTask *task, JsonNode *obj)
{
    VmigKubeMutate *m = g_task_get_task_data(task);
    GError *err = NULL;
    VmigKubeMutateResult r = m->mutate(json_node_get_object(obj), m->mutate_data, &err);
    switch (r) {
    case VMIG_KUBE_MUTATE_UNCHANGED:
        g_task_return_pointer(task, obj, (GDestroyNotify)json_node_unref);
        g_object_unref(task);
        return;
    case VMIG_KUBE_MUTATE_REFUSE:
        if (!err)
            err = g_error_new(VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED, "change refused");
        g_prefix_error(&err, "%s: ", m->what);
        json_node_unref(obj);
        g_task_return_error(task, err);
        g_object_unref(task);
        return;
    case VMIG_KUBE_MUTATE_CHANGED:
        break;
    }
    m->attempt++;
    VmigKubeRequest req = {
        .resource = m->resource,
        .namespace = m->namespace,
        .name = m->name,
        .status = m->status,
        .body = obj,
    };
    /* the body keeps metadata.resourceVersion from the read: that is the precondition */
    vmig_kube_call(m->client, VMIG_KUBE_VERB_UPDATE, &req, m->cancellable,
                   vmig_kube_mutate_put_done, task);
    json_node_unref(obj);
}

static void
vmig_kube_mutate_get_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    GError *err = NULL;
    JsonNode *live = vmig_kube_call_finish(result, NULL, &err);
    if (!live) {
        g_task_return_error(task, err);
        g_object_unref(task);
        return;
    }
    vmig_kube_mutate_apply(task, live);
}

static void
vmig_kube_mutate_get(GTask *task)
{
    VmigKubeMutate *m = g_task_get_task_data(task);
    VmigKubeRequest req = {
        .resource = m->resource,
        .namespace = m->namespace,
        .name = m->name,
    };
    vmig_kube_call(m->client, VMIG_KUBE_VERB_GET, &req, m->cancellable, vmig_kube_mutate_get_done,
                   task);
}

void
vmig_kube_mutate(VmigKubeClient *client, const VmigKubeResource *resource, const char *namespace,
                 const char *name, gboolean status, JsonNode *cached, guint max_attempts,
                 VmigKubeMutateFunc mutate, gpointer mutate_data, GCancellable *cancellable,
                 GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_check_cancellable(task, FALSE);
    VmigKubeMutate *m = g_new0(VmigKubeMutate, 1);
    m->client = vmig_kube_client_ref(client);
    m->resource = resource;
    m->namespace = g_strdup(namespace);
    m->name = g_strdup(name);
    m->status = status;
    m->max_attempts = max_attempts ? max_attempts : VMIG_KUBE_DEFAULT_WRITE_ATTEMPTS;
    m->mutate = mutate;
    m->mutate_data = mutate_data;
    m->cancellable = cancellable ? g_object_ref(cancellable) : NULL;
    m->what = vmig_kube_describe(VMIG_KUBE_VERB_UPDATE, resource, namespace, name, status);
    g_task_set_task_data(task, m, vmig_kube_mutate_free);
    if (cached)
        vmig_kube_mutate_apply(task, json_node_copy(cached));
    else
        vmig_kube_mutate_get(task);
}
