/* informer.c - list + watch into a cache (vmig/kube.h).
 *
 * The resourceVersion bookkeeping follows client-go's reflector (field case B01): a BOOKMARK
 * only advances the stored RV; an expired RV (HTTP 410 on the watch request, or an in-stream
 * ERROR event with code 410) clears it and triggers exactly one LIST, whose result replaces
 * the cache (objects missing from it are reported deleted); a clean server close re-watches
 * from the last RV without listing; errors back off with jitter. A read deadline drops a
 * connection that went silent (no bytes, not even a bookmark) so a dead peer is noticed.
 *
 * The cache keeps each object as compact JSON text rather than a json-glib tree: a tree costs
 * several times the text's size, and the node agent keeps thousands of VMIs and VMIMs. */
#include "kube-private.h"

#include <string.h>

typedef struct {
    guint8 *packed; /* compact text of the object, packed (pack.c) */
    guint32 packed_len;
    guint32 text_len;
    char *uid;
    char *rv;
} VmigKubeCacheEntry;

/* One listed object, already in cache form. */
typedef struct {
    char *key;
    VmigKubeCacheEntry *entry;
} VmigKubePending;

static void
vmig_kube_pending_free(gpointer p)
{
    VmigKubePending *pe = p;
    g_free(pe->key);
    if (pe->entry) {
        g_free(pe->entry->packed);
        g_free(pe->entry->uid);
        g_free(pe->entry->rv);
        g_free(pe->entry);
    }
    g_free(pe);
}

typedef enum {
    VMIG_KUBE_WATCH_END_CLOSED,  /* clean close by the server (timeoutSeconds, restart) */
    VMIG_KUBE_WATCH_END_EXPIRED, /* 410: relist */
    VMIG_KUBE_WATCH_END_ERROR,   /* transport, deadline, decode, other HTTP status: back off */
} VmigKubeWatchEnd;

struct _VmigKubeInformer {
    VmigKubeClient *client;
    const VmigKubeResource *resource;
    VmigKubeInformerOptions opt;
    char *namespace, *label_selector, *field_selector;
    VmigKubeInformerHandlers handlers;
    gpointer user_data;

    GHashTable *cache;  /* "ns/name" -> VmigKubeCacheEntry */
    VmigKubePack *pack; /* the entries' dictionary */
    char *rv;
    gboolean synced;
    gboolean started;
    guint lists;
    guint failures; /* consecutive, for backoff */

    GCancellable *list_cancel;
    GPtrArray *pending; /* VmigKubePending of the LIST in progress, in list order */
    char *pending_rv;   /* the first page's resourceVersion (the snapshot) */
    char *pending_continue;
    VmigKubeTransfer *watch;
    VmigKubeDecoder *decoder;
    gboolean watch_expired;
    gboolean watch_failed;
    guint watch_events;
    gint64 watch_started_us;
    gint64 last_byte_us;
    GSource *deadline_source;
    GSource *retry_source;
};

static void vmig_kube_informer_list(VmigKubeInformer *inf);
static void vmig_kube_informer_watch(VmigKubeInformer *inf);

static void
vmig_kube_cache_entry_free(gpointer p)
{
    VmigKubeCacheEntry *e = p;
    g_free(e->packed);
    g_free(e->uid);
    g_free(e->rv);
    g_free(e);
}

/* The cached object as a fresh tree (transfer full). */
static JsonNode *
vmig_kube_parse(VmigKubeInformer *inf, const VmigKubeCacheEntry *e)
{
    g_autofree char *json = vmig_kube_unpack(inf->pack, e->packed, e->packed_len, e->text_len);
    return json ? vmig_kube_json_parse(json, e->text_len, NULL) : NULL;
}

static void
vmig_kube_source_clear(GSource **s)
{
    if (*s) {
        g_source_destroy(*s);
        g_source_unref(*s);
        *s = NULL;
    }
}

VmigKubeInformer *
vmig_kube_informer_new(VmigKubeClient *client, const VmigKubeResource *resource,
                       const VmigKubeInformerOptions *options,
                       const VmigKubeInformerHandlers *handlers, gpointer user_data)
{
    VmigKubeInformer *inf = g_new0(VmigKubeInformer, 1);
    inf->client = vmig_kube_client_ref(client);
    inf->resource = resource;
    if (options)
        inf->opt = *options;
    inf->namespace = g_strdup(inf->opt.namespace);
    inf->label_selector = g_strdup(inf->opt.label_selector);
    inf->field_selector = g_strdup(inf->opt.field_selector);
    if (!inf->opt.page_size)
        inf->opt.page_size = 100;
    if (!inf->opt.read_deadline_ms)
        inf->opt.read_deadline_ms = 60000;
    if (!inf->opt.backoff_initial_ms)
        inf->opt.backoff_initial_ms = 800;
    if (!inf->opt.backoff_max_ms)
        inf->opt.backoff_max_ms = 30000;
    if (handlers)
        inf->handlers = *handlers;
    inf->user_data = user_data;
    inf->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, vmig_kube_cache_entry_free);
    inf->decoder = vmig_kube_decoder_new(inf->opt.max_event_bytes);
    inf->pack = vmig_kube_pack_new();
    return inf;
}

void
vmig_kube_informer_free(VmigKubeInformer *inf)
{
    if (!inf)
        return;
    if (inf->list_cancel) {
        /* the pending LIST callback sees the cancel and must not touch the freed informer */
        g_object_set_data(G_OBJECT(inf->list_cancel), "vmig-informer-gone", GINT_TO_POINTER(1));
        g_cancellable_cancel(inf->list_cancel);
        g_clear_object(&inf->list_cancel);
    }
    vmig_kube_transfer_abort(inf->watch);
    vmig_kube_source_clear(&inf->deadline_source);
    vmig_kube_source_clear(&inf->retry_source);
    vmig_kube_decoder_free(inf->decoder);
    g_clear_pointer(&inf->pending, g_ptr_array_unref);
    g_free(inf->pending_rv);
    g_free(inf->pending_continue);
    g_hash_table_unref(inf->cache);
    vmig_kube_pack_free(inf->pack);
    g_free(inf->rv);
    g_free(inf->namespace);
    g_free(inf->label_selector);
    g_free(inf->field_selector);
    vmig_kube_client_unref(inf->client);
    g_free(inf);
}

gboolean
vmig_kube_informer_has_synced(VmigKubeInformer *inf)
{
    return inf->synced;
}

guint
vmig_kube_informer_size(VmigKubeInformer *inf)
{
    return g_hash_table_size(inf->cache);
}

const char *
vmig_kube_informer_resource_version(VmigKubeInformer *inf)
{
    return inf->rv;
}

guint
vmig_kube_informer_list_count(VmigKubeInformer *inf)
{
    return inf->lists;
}

JsonNode *
vmig_kube_informer_get(VmigKubeInformer *inf, const char *ns, const char *name)
{
    g_autofree char *key = ns && *ns ? g_strdup_printf("%s/%s", ns, name) : g_strdup(name);
    VmigKubeCacheEntry *e = g_hash_table_lookup(inf->cache, key);
    return e ? vmig_kube_parse(inf, e) : NULL;
}

static gint
vmig_kube_strcmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

GPtrArray *
vmig_kube_informer_keys(VmigKubeInformer *inf)
{
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, inf->cache);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_ptr_array_add(keys, g_strdup(k));
    g_ptr_array_sort(keys, vmig_kube_strcmp);
    return keys;
}

static void
vmig_kube_informer_set_rv(VmigKubeInformer *inf, const char *rv)
{
    if (rv && *rv && g_strcmp0(rv, inf->rv) != 0) {
        g_free(inf->rv);
        inf->rv = g_strdup(rv);
    }
}

/* Strips what we never read (managedFields can be half of an object's size). */
static void
vmig_kube_informer_transform(VmigKubeInformer *inf, JsonNode *obj)
{
    if (inf->opt.keep_managed_fields)
        return;
    JsonObject *meta = vmig_kube_json_object(json_node_get_object(obj), "metadata");
    if (meta && json_object_has_member(meta, "managedFields"))
        json_object_remove_member(meta, "managedFields");
}

/* Compact text of a listed or watched object, after the transform (*@len bytes). */
static char *
vmig_kube_informer_text(VmigKubeInformer *inf, JsonNode *obj, gsize *len)
{
    vmig_kube_informer_transform(inf, obj);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    json_generator_set_root(gen, obj);
    return json_generator_to_data(gen, len);
}

/* Stores @e under @key (both consumed); reports added or updated, parsing the text only when
 * a handler wants a tree. @obj: (nullable): the tree when the caller has one. */
static void
vmig_kube_informer_store(VmigKubeInformer *inf, char *key, VmigKubeCacheEntry *e, JsonNode *obj)
{
    VmigKubeCacheEntry *old = g_hash_table_lookup(inf->cache, key);
    gboolean existed = old != NULL;
    JsonNode *old_obj = NULL;
    if (old && inf->handlers.updated)
        old_obj = vmig_kube_parse(inf, old);
    g_hash_table_replace(inf->cache, key, e); /* frees @old */
    gboolean wants = existed ? inf->handlers.updated != NULL : inf->handlers.added != NULL;
    if (wants) {
        g_autoptr(JsonNode) parsed = obj ? NULL : vmig_kube_parse(inf, e);
        JsonNode *n = obj ? obj : parsed;
        if (!existed)
            inf->handlers.added(inf, n, inf->user_data);
        else
            inf->handlers.updated(inf, old_obj, n, inf->user_data);
    }
    if (old_obj)
        json_node_unref(old_obj);
}

/* @json of @len bytes is packed and freed. */
static VmigKubeCacheEntry *
vmig_kube_cache_entry_new(VmigKubeInformer *inf, char *json, gsize len, const char *uid,
                          const char *rv)
{
    VmigKubeCacheEntry *e = g_new0(VmigKubeCacheEntry, 1);
    e->packed = vmig_kube_pack(inf->pack, json, len, &e->packed_len);
    e->text_len = (guint32)len;
    g_free(json);
    e->uid = g_strdup(uid);
    e->rv = g_strdup(rv);
    return e;
}

static void
vmig_kube_informer_remove(VmigKubeInformer *inf, const char *key, JsonNode *last)
{
    VmigKubeCacheEntry *e = g_hash_table_lookup(inf->cache, key);
    if (!e)
        return;
    g_autoptr(JsonNode) cached = last || !inf->handlers.deleted ? NULL : vmig_kube_parse(inf, e);
    g_autofree char *k = g_strdup(key); /* @key may be the table's own key */
    g_hash_table_remove(inf->cache, k);
    if (inf->handlers.deleted)
        inf->handlers.deleted(inf, last ? last : cached, inf->user_data);
}

/* ---- retry scheduling --------------------------------------------------------------------- */

static gboolean
vmig_kube_informer_retry_fired(gpointer data)
{
    VmigKubeInformer *inf = data;
    g_source_unref(inf->retry_source);
    inf->retry_source = NULL;
    if (inf->rv)
        vmig_kube_informer_watch(inf);
    else
        vmig_kube_informer_list(inf);
    return G_SOURCE_REMOVE;
}

/* Next attempt (watch from inf->rv, or list when it is unset) after @delay_ms. */
static void
vmig_kube_informer_schedule(VmigKubeInformer *inf, guint delay_ms)
{
    vmig_kube_source_clear(&inf->retry_source);
    inf->retry_source = delay_ms ? g_timeout_source_new(delay_ms) : g_idle_source_new();
    g_source_set_callback(inf->retry_source, vmig_kube_informer_retry_fired, inf, NULL);
    g_source_attach(inf->retry_source, vmig_kube_client_context(inf->client));
}

static guint
vmig_kube_informer_backoff_ms(VmigKubeInformer *inf)
{
    guint d = inf->opt.backoff_initial_ms;
    for (guint i = 1; i < inf->failures && d < inf->opt.backoff_max_ms; i++)
        d *= 2;
    d = MIN(d, inf->opt.backoff_max_ms);
    /* jitter: spread reconnects of many nodes after an API server restart */
    return MIN(vmig_kube_jitter_ms(d / 2) + d / 2, inf->opt.backoff_max_ms + d / 2);
}

/* ---- LIST ------------------------------------------------------------------------------- */

static void vmig_kube_informer_list_page(VmigKubeInformer *inf);

/* Replace: the cache becomes the listed set; what the list lacks was deleted while we were
 * not watching. */
static void
vmig_kube_informer_replace(VmigKubeInformer *inf)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < inf->pending->len; i++) {
        VmigKubePending *pe = inf->pending->pdata[i];
        g_hash_table_add(seen, pe->key);
    }
    g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, inf->cache);
    while (g_hash_table_iter_next(&it, &k, NULL))
        if (!g_hash_table_contains(seen, k))
            g_ptr_array_add(gone, g_strdup(k));
    for (guint i = 0; i < inf->pending->len; i++) {
        VmigKubePending *pe = inf->pending->pdata[i];
        VmigKubeCacheEntry *old = g_hash_table_lookup(inf->cache, pe->key);
        /* unchanged objects are not reported again */
        if (old && g_strcmp0(old->rv, pe->entry->rv) == 0 &&
            g_strcmp0(old->uid, pe->entry->uid) == 0)
            continue;
        if (old && g_strcmp0(old->uid, pe->entry->uid) != 0) /* deleted and recreated */
            vmig_kube_informer_remove(inf, pe->key, NULL);
        vmig_kube_informer_store(inf, g_steal_pointer(&pe->key), g_steal_pointer(&pe->entry), NULL);
    }
    for (guint i = 0; i < gone->len; i++)
        vmig_kube_informer_remove(inf, gone->pdata[i], NULL);
}

static void
vmig_kube_informer_page_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GCancellable *cancel = g_task_get_cancellable(G_TASK(result));
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) page = vmig_kube_call_finish(result, NULL, &err);
    if (cancel && g_object_get_data(G_OBJECT(cancel), "vmig-informer-gone"))
        return;
    VmigKubeInformer *inf = user_data;
    g_clear_object(&inf->list_cancel);
    if (!page) {
        g_clear_pointer(&inf->pending, g_ptr_array_unref);
        if (g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_GONE) && inf->pending_continue) {
            /* the paged snapshot expired between pages: start over at once */
            g_message("informer %s: %s; listing from the start", inf->resource->resource,
                      err->message);
            vmig_kube_informer_schedule(inf, 0);
            return;
        }
        inf->failures++;
        guint delay = vmig_kube_informer_backoff_ms(inf);
        g_warning("informer %s: %s; listing again in %u ms", inf->resource->resource, err->message,
                  delay);
        vmig_kube_informer_schedule(inf, delay);
        return;
    }
    /* convert this page to cache form now, so only one page's tree is ever alive */
    JsonObject *po = json_node_get_object(page);
    JsonArray *items = vmig_kube_json_array(po, "items");
    guint n_items = items ? json_array_get_length(items) : 0;
    for (guint i = 0; i < n_items; i++) {
        JsonNode *obj = json_array_get_element(items, i);
        if (!JSON_NODE_HOLDS_OBJECT(obj))
            continue;
        VmigKubePending *pe = g_new0(VmigKubePending, 1);
        pe->key = vmig_kube_object_key(obj);
        gsize len = 0;
        char *text = vmig_kube_informer_text(inf, obj, &len);
        pe->entry = vmig_kube_cache_entry_new(inf, text, len, vmig_kube_meta_string(obj, "uid"),
                                              vmig_kube_meta_string(obj, "resourceVersion"));
        g_ptr_array_add(inf->pending, pe);
    }
    JsonObject *meta = vmig_kube_json_object(po, "metadata");
    const char *rv =
        meta ? json_object_get_string_member_with_default(meta, "resourceVersion", NULL) : NULL;
    const char *cont =
        meta ? json_object_get_string_member_with_default(meta, "continue", NULL) : NULL;
    if (!inf->pending_rv)
        inf->pending_rv = g_strdup(rv && *rv ? rv : "0");
    g_free(inf->pending_continue);
    inf->pending_continue = cont && *cont ? g_strdup(cont) : NULL;
    if (inf->pending_continue) {
        vmig_kube_informer_list_page(inf);
        return;
    }
    inf->failures = 0;
    vmig_kube_informer_replace(inf);
    g_clear_pointer(&inf->pending, g_ptr_array_unref);
    g_free(inf->rv);
    inf->rv = g_steal_pointer(&inf->pending_rv);
    if (!inf->synced) {
        inf->synced = TRUE;
        if (inf->handlers.synced)
            inf->handlers.synced(inf, inf->user_data);
    }
    vmig_kube_informer_watch(inf);
}

static void
vmig_kube_informer_list_page(VmigKubeInformer *inf)
{
    VmigKubeRequest req = {
        .resource = inf->resource,
        .namespace = inf->namespace,
        .label_selector = inf->label_selector,
        .field_selector = inf->field_selector,
        .limit = inf->opt.page_size,
        .continue_token = inf->pending_continue,
    };
    inf->list_cancel = g_cancellable_new();
    vmig_kube_call(inf->client, VMIG_KUBE_VERB_LIST, &req, inf->list_cancel,
                   vmig_kube_informer_page_done, inf);
}

static void
vmig_kube_informer_list(VmigKubeInformer *inf)
{
    inf->lists++;
    g_free(inf->rv);
    inf->rv = NULL;
    g_clear_pointer(&inf->pending, g_ptr_array_unref);
    inf->pending = g_ptr_array_new_with_free_func(vmig_kube_pending_free);
    g_clear_pointer(&inf->pending_rv, g_free);
    g_clear_pointer(&inf->pending_continue, g_free);
    vmig_kube_informer_list_page(inf);
}

/* ---- WATCH -------------------------------------------------------------------------------- */

static gboolean
vmig_kube_informer_event(const VmigKubeRawEvent *ev, gpointer user_data)
{
    VmigKubeInformer *inf = user_data;
    switch (ev->type) {
    case VMIG_KUBE_EVENT_ADDED:
    case VMIG_KUBE_EVENT_MODIFIED: {
        if (!ev->name) {
            g_warning("informer %s: %s event without metadata.name ignored",
                      inf->resource->resource, vmig_kube_event_type_to_string(ev->type));
            break;
        }
        char *key = ev->namespace && *ev->namespace
                        ? g_strdup_printf("%s/%s", ev->namespace, ev->name)
                        : g_strdup(ev->name);
        g_autoptr(JsonNode) obj = NULL;
        char *text;
        gsize len;
        if (!inf->opt.keep_managed_fields &&
            memmem(ev->object, ev->object_len, "\"managedFields\"", 15)) {
            obj = vmig_kube_json_parse(ev->object, ev->object_len, NULL);
            text = vmig_kube_informer_text(inf, obj, &len);
        } else {
            /* the stream's own text is the compact form: no tree, no re-serialisation */
            text = g_strndup(ev->object, ev->object_len);
            len = ev->object_len;
        }
        vmig_kube_informer_store(
            inf, key, vmig_kube_cache_entry_new(inf, text, len, ev->uid, ev->resource_version),
            obj);
        break;
    }
    case VMIG_KUBE_EVENT_DELETED: {
        g_autofree char *key = ev->namespace && *ev->namespace
                                   ? g_strdup_printf("%s/%s", ev->namespace, ev->name)
                                   : g_strdup(ev->name ? ev->name : "");
        g_autoptr(JsonNode) obj = NULL;
        if (inf->handlers.deleted) {
            obj = vmig_kube_json_parse(ev->object, ev->object_len, NULL);
            vmig_kube_informer_transform(inf, obj);
        }
        vmig_kube_informer_remove(inf, key, obj);
        break;
    }
    case VMIG_KUBE_EVENT_BOOKMARK:
        /* only metadata.resourceVersion is meaningful; no handler runs */
        break;
    case VMIG_KUBE_EVENT_ERROR: {
        g_autoptr(JsonNode) obj = vmig_kube_json_parse(ev->object, ev->object_len, NULL);
        gint64 code = 0;
        const char *reason = NULL, *message = NULL;
        vmig_kube_status_from_node(obj, &code, &reason, &message);
        if (code == 410) {
            g_message("informer %s: watch from resourceVersion %s expired (%s: %s); listing",
                      inf->resource->resource, inf->rv, reason ? reason : "",
                      message ? message : "");
            inf->watch_expired = TRUE;
        } else {
            g_warning("informer %s: watch error %" G_GINT64_FORMAT " %s: %s",
                      inf->resource->resource, code, reason ? reason : "", message ? message : "");
            inf->watch_failed = TRUE;
        }
        return FALSE; /* the server closes after an ERROR; do not wait for it */
    }
    }
    inf->watch_events++;
    inf->failures = 0;
    vmig_kube_informer_set_rv(inf, ev->resource_version);
    return TRUE;
}

static gboolean
vmig_kube_informer_data(const char *data, gsize len, gpointer user_data)
{
    VmigKubeInformer *inf = user_data;
    g_autoptr(GError) err = NULL;
    inf->last_byte_us = g_get_monotonic_time();
    if (!vmig_kube_decoder_feed_raw(inf->decoder, data, len, vmig_kube_informer_event, inf, &err)) {
        if (err) {
            g_warning("informer %s: %s; closing the watch", inf->resource->resource, err->message);
            inf->watch_failed = TRUE;
        }
        return FALSE;
    }
    return TRUE;
}

static void
vmig_kube_informer_watch_ended(VmigKubeInformer *inf, VmigKubeWatchEnd end)
{
    vmig_kube_source_clear(&inf->deadline_source);
    if (vmig_kube_decoder_pending(inf->decoder))
        g_debug("informer %s: discarding %zu bytes of a truncated event", inf->resource->resource,
                vmig_kube_decoder_pending(inf->decoder));
    vmig_kube_decoder_reset(inf->decoder);
    switch (end) {
    case VMIG_KUBE_WATCH_END_EXPIRED:
        /* the stored RV is dead: never send it again, relist exactly once */
        g_free(inf->rv);
        inf->rv = NULL;
        vmig_kube_informer_list(inf);
        break;
    case VMIG_KUBE_WATCH_END_CLOSED:
        /* resume from the last RV; back off only if the server closes at once, repeatedly */
        if (inf->watch_events == 0 &&
            g_get_monotonic_time() - inf->watch_started_us < G_USEC_PER_SEC) {
            inf->failures++;
            vmig_kube_informer_schedule(inf, vmig_kube_informer_backoff_ms(inf));
        } else {
            vmig_kube_informer_watch(inf);
        }
        break;
    case VMIG_KUBE_WATCH_END_ERROR:
        inf->failures++;
        vmig_kube_informer_schedule(inf, vmig_kube_informer_backoff_ms(inf));
        break;
    }
}

static void
vmig_kube_informer_watch_done(VmigKubeTransfer *t, gpointer user_data)
{
    VmigKubeInformer *inf = user_data;
    inf->watch = NULL;
    VmigKubeWatchEnd end;
    if (inf->watch_expired || t->http_status == 410) {
        if (t->http_status == 410)
            g_message("informer %s: watch from resourceVersion %s: 410 Gone; listing",
                      inf->resource->resource, inf->rv);
        end = VMIG_KUBE_WATCH_END_EXPIRED;
    } else if (inf->watch_failed || t->data_aborted) {
        end = VMIG_KUBE_WATCH_END_ERROR;
    } else if (t->result != CURLE_OK || t->http_status < 200 || t->http_status >= 300) {
        g_autofree char *what = g_strdup_printf("watch %s", inf->resource->resource);
        g_autoptr(GError) err = NULL;
        vmig_kube_set_error_from_transfer(t, what, &err);
        g_warning("informer %s: %s", inf->resource->resource, err->message);
        end = VMIG_KUBE_WATCH_END_ERROR;
    } else {
        end = VMIG_KUBE_WATCH_END_CLOSED;
    }
    vmig_kube_informer_watch_ended(inf, end);
}

static gboolean
vmig_kube_informer_deadline_check(gpointer data)
{
    VmigKubeInformer *inf = data;
    gint64 idle_us = g_get_monotonic_time() - inf->last_byte_us;
    if (idle_us < (gint64)inf->opt.read_deadline_ms * 1000)
        return G_SOURCE_CONTINUE;
    g_warning("informer %s: no bytes for %u ms on the watch; dropping the connection",
              inf->resource->resource, inf->opt.read_deadline_ms);
    vmig_kube_transfer_abort(inf->watch);
    inf->watch = NULL;
    g_source_unref(inf->deadline_source);
    inf->deadline_source = NULL;
    inf->failures++;
    vmig_kube_decoder_reset(inf->decoder);
    vmig_kube_informer_schedule(inf, vmig_kube_informer_backoff_ms(inf));
    return G_SOURCE_REMOVE;
}

static void
vmig_kube_informer_watch(VmigKubeInformer *inf)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *path = vmig_kube_path(inf->resource, inf->namespace, NULL, FALSE, &err);
    if (!path) {
        g_warning("informer %s: %s", inf->resource->resource, err->message);
        return;
    }
    guint timeout = inf->opt.timeout_seconds;
    if (!timeout) /* client-go: 5 to 10 minutes, so watches do not all end together */
        timeout = 300 + (guint)g_random_int_range(0, 300);
    g_autoptr(GString) q = g_string_new(path);
    g_string_append_printf(q, "?watch=1&allowWatchBookmarks=true&timeoutSeconds=%u", timeout);
    if (inf->rv)
        g_string_append_printf(q, "&resourceVersion=%s", inf->rv);
    if (inf->label_selector) {
        g_autofree char *e = g_uri_escape_string(inf->label_selector, NULL, FALSE);
        g_string_append_printf(q, "&labelSelector=%s", e);
    }
    if (inf->field_selector) {
        g_autofree char *e = g_uri_escape_string(inf->field_selector, NULL, FALSE);
        g_string_append_printf(q, "&fieldSelector=%s", e);
    }
    if (inf->handlers.watching)
        inf->handlers.watching(inf, inf->rv, inf->user_data);
    inf->watch_expired = FALSE;
    inf->watch_failed = FALSE;
    inf->watch_events = 0;
    inf->watch_started_us = inf->last_byte_us = g_get_monotonic_time();
    vmig_kube_decoder_reset(inf->decoder);
    inf->watch =
        vmig_kube_transfer_start(inf->client, "GET", q->str, NULL, NULL, TRUE,
                                 vmig_kube_informer_data, vmig_kube_informer_watch_done, inf, NULL);
    vmig_kube_source_clear(&inf->deadline_source);
    inf->deadline_source = g_timeout_source_new(MAX(inf->opt.read_deadline_ms / 4, 10));
    g_source_set_callback(inf->deadline_source, vmig_kube_informer_deadline_check, inf, NULL);
    g_source_attach(inf->deadline_source, vmig_kube_client_context(inf->client));
}

void
vmig_kube_informer_start(VmigKubeInformer *inf)
{
    if (inf->started)
        return;
    inf->started = TRUE;
    vmig_kube_informer_list(inf);
}
