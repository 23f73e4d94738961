/* apiserver.c - the store (objects, resourceVersion, event log), the HTTP handlers and the
 * watch streams of the test API server (see apiserver.h). */
#include "apiserver-private.h"

#include <gio/gio.h>
#include <libsoup/soup.h>
#include <string.h>

G_DEFINE_QUARK(vmig - test - apiserver - error - quark, vmig_test_apiserver_error)

#define RECENT_MAX 1000

typedef struct {
    guint64 rv;
    const char *type; /* ADDED, MODIFIED, DELETED */
    const VmigTestApiserverResource *res;
    JsonNode *object; /* immutable */
    JsonNode *old;    /* immutable, NULL for ADDED */
} Event;

typedef struct {
    guint remaining;
    guint code;
    char *verb, *resource, *name;
} WriteFault;

typedef struct {
    VmigTestApiserver *server;
    SoupServerMessage *msg;
    const VmigTestApiserverResource *res;
    char *namespace_;
    VmigTestApiserverSelector *labels, *fields;
    gboolean bookmarks, table, table_full, headers_sent;
    gboolean stalled, dead, ending;
    guint bookmark_source, timeout_source, free_source;
    gulong finished_id, disconnected_id;
} Watch;

struct _VmigTestApiserver {
    SoupServer *soup;
    char *url, *ca_file, *token;
    GHashTable *collections; /* resource -> GHashTable(key -> JsonNode) */
    guint64 rv;
    GQueue events;
    guint compaction_window;
    guint64 compacted_rv;
    guint bookmark_interval_ms;
    GPtrArray *watches; /* live Watch */
    GPtrArray *dead;    /* Watch waiting for their idle free */
    guint stall_next;
    guint expire_next;
    VmigTestApiserverExpireShape expire_shape;
    GQueue write_faults;
    guint split_min, split_max;
    GHashTable *counters; /* "verb resource" -> count */
    GQueue recent;
};

/* ---------- small helpers ---------- */

static JsonObject *
metadata_of(JsonNode *n)
{
    return vmig_test_apiserver_json_obj(json_node_get_object(n), "metadata");
}

static const char *
md_str(JsonNode *n, const char *member)
{
    return vmig_test_apiserver_json_str(metadata_of(n), member);
}

static char *
now_rfc3339(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    return g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
}

static char *
object_key(const VmigTestApiserverResource *r, const char *ns, const char *name)
{
    return r->namespaced ? g_strdup_printf("%s/%s", ns ? ns : "", name) : g_strdup(name);
}

static GHashTable *
collection(VmigTestApiserver *self, const VmigTestApiserverResource *r)
{
    GHashTable *c = g_hash_table_lookup(self->collections, r);
    if (!c) {
        c = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)json_node_unref);
        g_hash_table_insert(self->collections, (gpointer)r, c);
    }
    return c;
}

static void
event_free(Event *e)
{
    json_node_unref(e->object);
    if (e->old)
        json_node_unref(e->old);
    g_free(e);
}

static void
write_fault_free(WriteFault *f)
{
    g_free(f->verb);
    g_free(f->resource);
    g_free(f->name);
    g_free(f);
}

static gboolean
valid_name(const char *name)
{
    gsize len = strlen(name);
    if (len == 0 || len > 253 || !g_ascii_isalnum(name[0]) || !g_ascii_isalnum(name[len - 1]))
        return FALSE;
    for (const char *p = name; *p; p++)
        if (!(g_ascii_islower(*p) || g_ascii_isdigit(*p) || *p == '-' || *p == '.'))
            return FALSE;
    return TRUE;
}

/* ---------- responses ---------- */

static void
respond_json(SoupServerMessage *msg, guint code, JsonNode *node)
{
    gsize len;
    char *s = json_to_string(node, FALSE);
    len = strlen(s);
    soup_server_message_set_status(msg, code, NULL);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, s, len);
}

static const char *
reason_for(guint code)
{
    static const struct {
        guint code;
        const char *reason;
    } table[] = {
        {400, "BadRequest"}, {401, "Unauthorized"},     {403, "Forbidden"},
        {404, "NotFound"},   {405, "MethodNotAllowed"}, {406, "NotAcceptable"},
        {409, "Conflict"},   {410, "Expired"},          {415, "UnsupportedMediaType"},
        {422, "Invalid"},    {500, "InternalError"},    {504, "Timeout"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(table); i++)
        if (table[i].code == code)
            return table[i].reason;
    return "Unknown";
}

static JsonNode *
status_node_causes(guint code, const char *reason, const char *message,
                   const VmigTestApiserverResource *r, const char *name, const char *cause_field)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "kind");
    json_builder_add_string_value(b, "Status");
    json_builder_set_member_name(b, "apiVersion");
    json_builder_add_string_value(b, "v1");
    json_builder_set_member_name(b, "metadata");
    json_builder_begin_object(b);
    json_builder_end_object(b);
    json_builder_set_member_name(b, "status");
    json_builder_add_string_value(b, "Failure");
    json_builder_set_member_name(b, "message");
    json_builder_add_string_value(b, message);
    json_builder_set_member_name(b, "reason");
    json_builder_add_string_value(b, reason ? reason : reason_for(code));
    if (r || name) {
        json_builder_set_member_name(b, "details");
        json_builder_begin_object(b);
        if (name) {
            json_builder_set_member_name(b, "name");
            json_builder_add_string_value(b, name);
        }
        if (r) {
            json_builder_set_member_name(b, "group");
            json_builder_add_string_value(b, r->group);
            json_builder_set_member_name(b, "kind");
            json_builder_add_string_value(b, r->plural);
        }
        if (cause_field) {
            json_builder_set_member_name(b, "causes");
            json_builder_begin_array(b);
            json_builder_begin_object(b);
            json_builder_set_member_name(b, "reason");
            json_builder_add_string_value(b, "FieldValueInvalid");
            json_builder_set_member_name(b, "message");
            json_builder_add_string_value(b, message);
            json_builder_set_member_name(b, "field");
            json_builder_add_string_value(b, cause_field);
            json_builder_end_object(b);
            json_builder_end_array(b);
        }
        json_builder_end_object(b);
    }
    json_builder_set_member_name(b, "code");
    json_builder_add_int_value(b, code);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

static JsonNode *
status_node(guint code, const char *reason, const char *message, const VmigTestApiserverResource *r,
            const char *name)
{
    return status_node_causes(code, reason, message, r, name, NULL);
}

static void respond_status(SoupServerMessage *msg, guint code, const char *reason,
                           const VmigTestApiserverResource *r, const char *name, const char *fmt,
                           ...) G_GNUC_PRINTF(6, 7);

static void
respond_status(SoupServerMessage *msg, guint code, const char *reason,
               const VmigTestApiserverResource *r, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *message = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autoptr(JsonNode) n = status_node(code, reason, message, r, name);
    respond_json(msg, code, n);
}

static void
respond_conflict(SoupServerMessage *msg, const VmigTestApiserverResource *r, const char *name)
{
    g_autofree char *q = vmig_test_apiserver_resource_qualified(r);
    respond_status(msg, 409, "Conflict", r, name,
                   "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                   "please apply your changes to the latest version and try again",
                   q, name);
}

static void
respond_not_found(SoupServerMessage *msg, const VmigTestApiserverResource *r, const char *name)
{
    g_autofree char *q = vmig_test_apiserver_resource_qualified(r);
    respond_status(msg, 404, "NotFound", r, name, "%s \"%s\" not found", q, name);
}

/* ---------- watches ---------- */

static void watch_finish(Watch *w, gboolean abort);

static void
watch_write(Watch *w, const char *data, gsize len)
{
    SoupMessageBody *body = soup_server_message_get_response_body(w->msg);
    VmigTestApiserver *self = w->server;
    if (self->split_max == 0) {
        soup_message_body_append(body, SOUP_MEMORY_COPY, data, len);
    } else {
        gsize off = 0;
        while (off < len) {
            gsize piece =
                (gsize)g_random_int_range((gint32)self->split_min, (gint32)self->split_max + 1);
            piece = MIN(MAX(piece, 1), len - off);
            soup_message_body_append(body, SOUP_MEMORY_COPY, data + off, piece);
            off += piece;
        }
    }
    soup_server_message_unpause(w->msg);
}

static JsonNode *
table_for(const VmigTestApiserverResource *r, JsonNode **objects, guint n, gboolean full,
          gboolean with_columns, guint64 rv, const char *cont)
{
    JsonObject *t = json_object_new();
    json_object_set_string_member(t, "kind", "Table");
    json_object_set_string_member(t, "apiVersion", "meta.k8s.io/v1");
    JsonObject *md = json_object_new();
    if (rv) {
        g_autofree char *s = g_strdup_printf("%" G_GUINT64_FORMAT, rv);
        json_object_set_string_member(md, "resourceVersion", s);
    }
    if (cont)
        json_object_set_string_member(md, "continue", cont);
    json_object_set_object_member(t, "metadata", md);
    if (with_columns)
        json_object_set_member(t, "columnDefinitions", vmig_test_apiserver_table_columns(r));
    JsonArray *rows = json_array_new();
    for (guint i = 0; i < n; i++) {
        JsonObject *row = json_object_new();
        json_object_set_member(
            row, "cells", vmig_test_apiserver_table_cells(r, json_node_get_object(objects[i])));
        if (full) {
            json_object_set_member(row, "object", json_node_ref(objects[i]));
        } else {
            JsonObject *pom = json_object_new();
            json_object_set_string_member(pom, "kind", "PartialObjectMetadata");
            json_object_set_string_member(pom, "apiVersion", "meta.k8s.io/v1");
            json_object_set_member(
                pom, "metadata",
                json_object_dup_member(json_node_get_object(objects[i]), "metadata"));
            json_object_set_object_member(row, "object", pom);
        }
        json_array_add_object_element(rows, row);
    }
    json_object_set_array_member(t, "rows", rows);
    return vmig_test_apiserver_node_take_object(t);
}

static void
watch_send(Watch *w, const char *type, JsonNode *object)
{
    g_autofree char *obj = NULL;
    if (w->table && !g_str_equal(type, "BOOKMARK") && !g_str_equal(type, "ERROR")) {
        g_autoptr(JsonNode) t =
            table_for(w->res, &object, 1, w->table_full, !w->headers_sent, 0, NULL);
        w->headers_sent = TRUE;
        obj = json_to_string(t, FALSE);
    } else {
        obj = json_to_string(object, FALSE);
    }
    g_autofree char *line = g_strdup_printf("{\"type\":\"%s\",\"object\":%s}\n", type, obj);
    watch_write(w, line, strlen(line));
}

static gboolean
watch_selects(Watch *w, JsonNode *object)
{
    if (!object)
        return FALSE;
    if (w->namespace_ && g_strcmp0(md_str(object, "namespace"), w->namespace_) != 0)
        return FALSE;
    JsonObject *o = json_node_get_object(object);
    return vmig_test_apiserver_selector_matches_labels(w->labels, o) &&
           vmig_test_apiserver_selector_matches_fields(w->fields, o);
}

/* Delivers one stored event; a MODIFIED that moves the object into or out of the watch's
 * selectors becomes ADDED or DELETED, as kube-apiserver's watch cache does. */
static void
watch_deliver(Watch *w, const Event *e)
{
    if (w->dead || w->ending || w->stalled || w->res != e->res)
        return;
    gboolean now = watch_selects(w, e->object);
    gboolean before = e->old && watch_selects(w, e->old);
    const char *type = e->type;
    if (g_str_equal(type, "MODIFIED")) {
        if (now && !before)
            type = "ADDED";
        else if (!now && before)
            type = "DELETED";
        else if (!now)
            return;
    } else if (!now) {
        return;
    }
    watch_send(w, type, e->object);
}

static void
watch_send_bookmark(Watch *w, gboolean initial_end)
{
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "kind", w->res->kind);
    g_autofree char *av = vmig_test_apiserver_resource_api_version(w->res);
    json_object_set_string_member(o, "apiVersion", av);
    JsonObject *md = json_object_new();
    g_autofree char *rv = g_strdup_printf("%" G_GUINT64_FORMAT, w->server->rv);
    json_object_set_string_member(md, "resourceVersion", rv);
    if (initial_end) {
        JsonObject *ann = json_object_new();
        json_object_set_string_member(ann, "k8s.io/initial-events-end", "true");
        json_object_set_object_member(md, "annotations", ann);
    }
    json_object_set_object_member(o, "metadata", md);
    g_autoptr(JsonNode) n = vmig_test_apiserver_node_take_object(o);
    watch_send(w, "BOOKMARK", n);
}

static gboolean
watch_bookmark_cb(gpointer data)
{
    Watch *w = data;
    if (!w->dead && !w->ending && !w->stalled)
        watch_send_bookmark(w, FALSE);
    return G_SOURCE_CONTINUE;
}

static gboolean
watch_timeout_cb(gpointer data)
{
    Watch *w = data;
    w->timeout_source = 0;
    if (!w->stalled)
        watch_finish(w, FALSE);
    return G_SOURCE_REMOVE;
}

static void
watch_free(Watch *w)
{
    if (w->bookmark_source)
        g_source_remove(w->bookmark_source);
    if (w->timeout_source)
        g_source_remove(w->timeout_source);
    if (w->free_source)
        g_source_remove(w->free_source);
    if (w->finished_id)
        g_signal_handler_disconnect(w->msg, w->finished_id);
    if (w->disconnected_id)
        g_signal_handler_disconnect(w->msg, w->disconnected_id);
    g_object_unref(w->msg);
    g_free(w->namespace_);
    vmig_test_apiserver_selector_free(w->labels);
    vmig_test_apiserver_selector_free(w->fields);
    g_free(w);
}

static gboolean
watch_free_idle(gpointer data)
{
    Watch *w = data;
    w->free_source = 0;
    g_ptr_array_remove(w->server->dead, w);
    watch_free(w);
    return G_SOURCE_REMOVE;
}

/* The connection is gone (or ending): stop timers and forget the watch; the memory goes on
 * an idle so it is not freed inside the message's own signal emission. */
static void
watch_forget(Watch *w)
{
    if (w->dead)
        return;
    w->dead = TRUE;
    if (w->bookmark_source) {
        g_source_remove(w->bookmark_source);
        w->bookmark_source = 0;
    }
    if (w->timeout_source) {
        g_source_remove(w->timeout_source);
        w->timeout_source = 0;
    }
    g_ptr_array_remove(w->server->watches, w);
    g_ptr_array_add(w->server->dead, w);
    w->free_source = g_idle_add(watch_free_idle, w);
}

static void
watch_finished_cb(SoupServerMessage *msg, gpointer data)
{
    watch_forget(data);
}

static void
watch_finish(Watch *w, gboolean abort)
{
    if (w->dead || w->ending)
        return;
    SoupServerMessage *msg = w->msg;
    if (abort) {
        GSocket *sock = soup_server_message_get_socket(msg);
        if (sock)
            g_socket_shutdown(sock, TRUE, TRUE, NULL);
    }
    /* Stop delivering now; a clean end keeps the watch until libsoup reports the message
     * finished (forgetting it earlier leaks the connection in libsoup 3.2). */
    w->ending = TRUE;
    if (abort)
        watch_forget(w);
    soup_message_body_complete(soup_server_message_get_response_body(msg));
    soup_server_message_unpause(msg);
}

/* ---------- store ---------- */

static void
dispatch(VmigTestApiserver *self, Event *e)
{
    g_queue_push_tail(&self->events, e);
    /* Copy: a delivery can end a watch and change the array. */
    g_autoptr(GPtrArray) ws = g_ptr_array_copy(self->watches, NULL, NULL);
    for (guint i = 0; i < ws->len; i++)
        watch_deliver(g_ptr_array_index(ws, i), e);
    while (self->events.length > self->compaction_window) {
        Event *old = g_queue_pop_head(&self->events);
        self->compacted_rv = old->rv;
        event_free(old);
    }
}

static void
set_rv(JsonNode *obj, guint64 rv)
{
    g_autofree char *s = g_strdup_printf("%" G_GUINT64_FORMAT, rv);
    json_object_set_string_member(metadata_of(obj), "resourceVersion", s);
}

/* Stores @obj (transfer full; becomes immutable) under @key with a new resourceVersion, or
 * removes @key when @obj is NULL; records and delivers the event. Returns the stored (or
 * deleted) object (transfer none). */
static JsonNode *
commit(VmigTestApiserver *self, const VmigTestApiserverResource *r, const char *key, JsonNode *obj)
{
    GHashTable *c = collection(self, r);
    JsonNode *old = g_hash_table_lookup(c, key);
    Event *e = g_new0(Event, 1);
    e->rv = ++self->rv;
    e->res = r;
    if (old)
        e->old = json_node_ref(old);
    if (obj) {
        set_rv(obj, e->rv);
        e->type = old ? "MODIFIED" : "ADDED";
        e->object = json_node_ref(obj);
        g_hash_table_replace(c, g_strdup(key), obj);
    } else {
        JsonNode *gone = vmig_test_apiserver_json_deep_copy(old);
        set_rv(gone, e->rv);
        e->type = "DELETED";
        e->object = gone;
        g_hash_table_remove(c, key);
    }
    dispatch(self, e);
    return e->object;
}

static char *
random_suffix(void)
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    char s[6];
    for (int i = 0; i < 5; i++)
        s[i] = alphabet[g_random_int_range(0, sizeof alphabet - 1)];
    s[5] = '\0';
    return g_strdup(s);
}

/* Everything but metadata and status: a change here bumps metadata.generation. */
static gboolean
spec_equal(JsonNode *a, JsonNode *b)
{
    g_autoptr(JsonNode) ca = vmig_test_apiserver_json_deep_copy(a);
    g_autoptr(JsonNode) cb = vmig_test_apiserver_json_deep_copy(b);
    const char *skip[] = {"metadata", "status", "kind", "apiVersion"};
    for (gsize i = 0; i < G_N_ELEMENTS(skip); i++) {
        json_object_remove_member(json_node_get_object(ca), skip[i]);
        json_object_remove_member(json_node_get_object(cb), skip[i]);
    }
    return json_node_equal(ca, cb);
}

static gboolean
has_finalizers(JsonNode *obj)
{
    JsonObject *md = metadata_of(obj);
    if (!md || !json_object_has_member(md, "finalizers"))
        return FALSE;
    JsonNode *f = json_object_get_member(md, "finalizers");
    return JSON_NODE_HOLDS_ARRAY(f) && json_array_get_length(json_node_get_array(f)) > 0;
}

static void
copy_member(JsonObject *to, JsonObject *from, const char *member)
{
    if (from && json_object_has_member(from, member))
        json_object_set_member(to, member, json_object_dup_member(from, member));
    else
        json_object_remove_member(to, member);
}

/* ---------- request context ---------- */

typedef struct {
    VmigTestApiserver *self;
    SoupServerMessage *msg;
    GHashTable *query;
    const VmigTestApiserverResource *res;
    char *ns;   /* NULL when not in the path */
    char *name; /* NULL for collections */
    char *sub;  /* "status" or NULL */
    const char *verb;
} Req;

static const char *
q(Req *req, const char *key)
{
    return req->query ? g_hash_table_lookup(req->query, key) : NULL;
}

static gboolean
q_true(Req *req, const char *key)
{
    const char *v = q(req, key);
    return v && (g_str_equal(v, "1") || g_str_equal(v, "true"));
}

static gboolean
wants_table(Req *req)
{
    const char *accept =
        soup_message_headers_get_one(soup_server_message_get_request_headers(req->msg), "Accept");
    return accept && strstr(accept, "as=Table") != NULL;
}

static JsonNode *
parse_body(Req *req)
{
    SoupMessageBody *body = soup_server_message_get_request_body(req->msg);
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) err = NULL;
    const char *ct = soup_message_headers_get_content_type(
        soup_server_message_get_request_headers(req->msg), NULL);
    if (ct && strstr(ct, "protobuf") && body->data) {
        g_autofree char *msg = NULL;
        JsonNode *n = vmig_test_apiserver_protobuf_decode((const guint8 *)body->data,
                                                          (gsize)body->length, &msg);
        if (!n)
            respond_status(req->msg, 400, "BadRequest", NULL, NULL, "%s", msg);
        return n;
    }
    if (!body->data || body->length == 0) {
        respond_status(req->msg, 400, "BadRequest", NULL, NULL, "the request body is empty");
        return NULL;
    }
    if (!json_parser_load_from_data(p, body->data, (gssize)body->length, &err)) {
        respond_status(req->msg, 400, "BadRequest", NULL, NULL,
                       "the request body is not valid JSON: %s", err->message);
        return NULL;
    }
    return json_parser_steal_root(p);
}

static gboolean
injected_fault(Req *req)
{
    VmigTestApiserver *self = req->self;
    g_autofree char *resource = req->sub ? g_strdup_printf("%s/%s", req->res->plural, req->sub)
                                         : g_strdup(req->res->plural);
    for (GList *l = self->write_faults.head; l; l = l->next) {
        WriteFault *f = l->data;
        if ((f->verb && !g_str_equal(f->verb, req->verb)) ||
            (f->resource && !g_str_equal(f->resource, resource)) ||
            (f->name && g_strcmp0(f->name, req->name) != 0))
            continue;
        guint code = f->code;
        if (--f->remaining == 0) {
            g_queue_delete_link(&self->write_faults, l);
            write_fault_free(f);
        }
        if (code == 409)
            respond_conflict(req->msg, req->res, req->name ? req->name : "");
        else
            respond_status(req->msg, code, NULL, req->res, req->name,
                           "Internal error occurred: injected fault (vmig-test-apiserver)");
        return TRUE;
    }
    return FALSE;
}

/* Checks apiVersion/kind/namespace of a body against the URL. */
static gboolean
check_body_identity(Req *req, JsonNode *body)
{
    if (!JSON_NODE_HOLDS_OBJECT(body)) {
        respond_status(req->msg, 400, "BadRequest", req->res, req->name,
                       "the body of the request must be a JSON object");
        return FALSE;
    }
    JsonObject *o = json_node_get_object(body);
    const char *kind = vmig_test_apiserver_json_str(o, "kind");
    const char *av = vmig_test_apiserver_json_str(o, "apiVersion");
    g_autofree char *want_av = vmig_test_apiserver_resource_api_version(req->res);
    if ((kind && !g_str_equal(kind, req->res->kind)) || (av && !g_str_equal(av, want_av))) {
        respond_status(req->msg, 400, "BadRequest", req->res, req->name,
                       "the API version in the data (%s) does not match the expected API "
                       "version (%s) or kind %s is not %s",
                       av ? av : "", want_av, kind ? kind : "", req->res->kind);
        return FALSE;
    }
    json_object_set_string_member(o, "kind", req->res->kind);
    json_object_set_string_member(o, "apiVersion", want_av);
    if (!vmig_test_apiserver_json_obj(o, "metadata"))
        json_object_set_object_member(o, "metadata", json_object_new());
    JsonObject *md = metadata_of(body);
    const char *ns = vmig_test_apiserver_json_str(md, "namespace");
    if (req->res->namespaced) {
        if (ns && ns[0] && g_strcmp0(ns, req->ns) != 0) {
            respond_status(req->msg, 400, "BadRequest", req->res, req->name,
                           "the namespace of the provided object does not match the namespace "
                           "sent on the request");
            return FALSE;
        }
        json_object_set_string_member(md, "namespace", req->ns);
    } else {
        json_object_remove_member(md, "namespace");
    }
    return TRUE;
}

/* ---------- verbs ---------- */

static gboolean
list_item_selected(Req *req, JsonNode *obj, VmigTestApiserverSelector *labels,
                   VmigTestApiserverSelector *fields)
{
    if (req->ns && g_strcmp0(md_str(obj, "namespace"), req->ns) != 0)
        return FALSE;
    JsonObject *o = json_node_get_object(obj);
    return vmig_test_apiserver_selector_matches_labels(labels, o) &&
           vmig_test_apiserver_selector_matches_fields(fields, o);
}

static gboolean
parse_selectors(Req *req, VmigTestApiserverSelector **labels, VmigTestApiserverSelector **fields)
{
    g_autofree char *err = NULL;
    *labels = vmig_test_apiserver_label_selector_parse(q(req, "labelSelector"), &err);
    if (!*labels) {
        respond_status(req->msg, 400, "BadRequest", NULL, NULL, "%s", err);
        return FALSE;
    }
    *fields = vmig_test_apiserver_field_selector_parse(req->res, q(req, "fieldSelector"), &err);
    if (!*fields) {
        vmig_test_apiserver_selector_free(*labels);
        *labels = NULL;
        respond_status(req->msg, 400, "BadRequest", NULL, NULL, "%s", err);
        return FALSE;
    }
    return TRUE;
}

static gint
compare_keys(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
list_selected(Req *req, VmigTestApiserverSelector *labels, VmigTestApiserverSelector *fields)
{
    VmigTestApiserver *self = req->self;
    guint64 list_rv = self->rv;
    g_autofree char *start_after = NULL;
    const char *cont = q(req, "continue");
    if (cont && cont[0]) {
        gsize len = 0;
        g_autofree guchar *raw = g_base64_decode(cont, &len);
        g_autofree char *text = g_strndup((const char *)raw, len);
        char *nl = strchr(text, '\n');
        if (!nl) {
            respond_status(req->msg, 400, "BadRequest", NULL, NULL, "continue key is not valid");
            return;
        }
        *nl = '\0';
        list_rv = g_ascii_strtoull(text, NULL, 10);
        start_after = g_strdup(nl + 1);
        if (list_rv < self->compacted_rv) {
            respond_status(req->msg, 410, "Expired", NULL, NULL,
                           "The provided continue parameter is too old to display a consistent "
                           "list result. You can start a new list without the continue "
                           "parameter.");
            return;
        }
    }
    guint64 limit = q(req, "limit") ? g_ascii_strtoull(q(req, "limit"), NULL, 10) : 0;
    GHashTable *c = collection(self, req->res);
    guint nkeys = 0;
    g_autofree gpointer *keys = g_hash_table_get_keys_as_array(c, &nkeys);
    qsort(keys, nkeys, sizeof(gpointer), compare_keys);
    g_autoptr(GPtrArray) items = g_ptr_array_new();
    const char *last_key = NULL;
    gboolean more = FALSE;
    guint remaining = 0;
    for (guint i = 0; i < nkeys; i++) {
        if (start_after && strcmp(keys[i], start_after) <= 0)
            continue;
        JsonNode *obj = g_hash_table_lookup(c, keys[i]);
        if (!list_item_selected(req, obj, labels, fields))
            continue;
        if (limit && items->len >= limit) {
            more = TRUE;
            remaining++;
            continue;
        }
        g_ptr_array_add(items, obj);
        last_key = keys[i];
    }
    g_autofree char *next = NULL;
    if (more) {
        g_autofree char *raw = g_strdup_printf("%" G_GUINT64_FORMAT "\n%s", list_rv, last_key);
        next = g_base64_encode((const guchar *)raw, strlen(raw));
    }
    if (wants_table(req)) {
        const char *inc = q(req, "includeObject");
        g_autoptr(JsonNode) t = table_for(req->res, (JsonNode **)items->pdata, items->len,
                                          inc && g_str_equal(inc, "Object"), TRUE, list_rv, next);
        respond_json(req->msg, 200, t);
        return;
    }
    JsonObject *l = json_object_new();
    g_autofree char *list_kind = g_strdup_printf("%sList", req->res->kind);
    g_autofree char *av = vmig_test_apiserver_resource_api_version(req->res);
    json_object_set_string_member(l, "kind", list_kind);
    json_object_set_string_member(l, "apiVersion", av);
    JsonObject *md = json_object_new();
    g_autofree char *rvs = g_strdup_printf("%" G_GUINT64_FORMAT, list_rv);
    json_object_set_string_member(md, "resourceVersion", rvs);
    if (next) {
        json_object_set_string_member(md, "continue", next);
        json_object_set_int_member(md, "remainingItemCount", remaining);
    }
    json_object_set_object_member(l, "metadata", md);
    JsonArray *a = json_array_sized_new(items->len);
    for (guint i = 0; i < items->len; i++)
        json_array_add_element(a, json_node_ref(g_ptr_array_index(items, i)));
    json_object_set_array_member(l, "items", a);
    g_autoptr(JsonNode) n = vmig_test_apiserver_node_take_object(l);
    respond_json(req->msg, 200, n);
}

static void
do_list(Req *req)
{
    VmigTestApiserverSelector *labels, *fields;
    if (!parse_selectors(req, &labels, &fields))
        return;
    list_selected(req, labels, fields);
    vmig_test_apiserver_selector_free(labels);
    vmig_test_apiserver_selector_free(fields);
}

static void
respond_expired_stream(SoupServerMessage *msg, guint64 rv, guint64 oldest)
{
    SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
    soup_server_message_set_status(msg, 200, NULL);
    soup_message_headers_set_content_type(h, "application/json", NULL);
    g_autofree char *m = g_strdup_printf(
        "too old resource version: %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT ")", rv, oldest);
    g_autoptr(JsonNode) st = status_node(410, "Expired", m, NULL, NULL);
    g_autofree char *s = json_to_string(st, FALSE);
    g_autofree char *line = g_strdup_printf("{\"type\":\"ERROR\",\"object\":%s}\n", s);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, line, strlen(line));
}

static void
do_watch(Req *req)
{
    VmigTestApiserver *self = req->self;
    const char *rvs = q(req, "resourceVersion");
    guint64 rv = 0;
    if (rvs && rvs[0]) {
        char *end;
        rv = g_ascii_strtoull(rvs, &end, 10);
        if (*end) {
            respond_status(req->msg, 400, "BadRequest", NULL, NULL,
                           "invalid resource version \"%s\"", rvs);
            return;
        }
    }
    if (self->expire_next > 0 || (rv && rv < self->compacted_rv)) {
        gboolean stream = FALSE;
        if (self->expire_next > 0) {
            self->expire_next--;
            stream = self->expire_shape == VMIG_TEST_APISERVER_EXPIRE_STREAM;
        }
        if (stream) {
            respond_expired_stream(req->msg, rv, self->compacted_rv + 1);
        } else {
            respond_status(req->msg, 410, "Expired", NULL, NULL,
                           "too old resource version: %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT
                           ")",
                           rv, self->compacted_rv + 1);
        }
        return;
    }
    VmigTestApiserverSelector *labels, *fields;
    if (!parse_selectors(req, &labels, &fields))
        return;
    Watch *w = g_new0(Watch, 1);
    w->server = self;
    w->msg = g_object_ref(req->msg);
    w->res = req->res;
    w->namespace_ = g_strdup(req->ns);
    w->labels = labels;
    w->fields = fields;
    w->bookmarks = q_true(req, "allowWatchBookmarks");
    w->table = wants_table(req);
    w->table_full = g_strcmp0(q(req, "includeObject"), "Object") == 0;
    if (self->stall_next > 0) {
        self->stall_next--;
        w->stalled = TRUE;
    }
    SoupMessageHeaders *h = soup_server_message_get_response_headers(req->msg);
    soup_server_message_set_status(req->msg, 200, NULL);
    soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
    soup_message_headers_set_content_type(h, "application/json", NULL);
    w->finished_id = g_signal_connect(req->msg, "finished", G_CALLBACK(watch_finished_cb), w);
    w->disconnected_id =
        g_signal_connect(req->msg, "disconnected", G_CALLBACK(watch_finished_cb), w);
    g_ptr_array_add(self->watches, w);
    soup_server_message_pause(req->msg);

    if (!w->stalled) {
        if (rv == 0) {
            GHashTable *c = collection(self, req->res);
            guint n = 0;
            g_autofree gpointer *keys = g_hash_table_get_keys_as_array(c, &n);
            qsort(keys, n, sizeof(gpointer), compare_keys);
            for (guint i = 0; i < n; i++) {
                JsonNode *obj = g_hash_table_lookup(c, keys[i]);
                if (watch_selects(w, obj))
                    watch_send(w, "ADDED", obj);
            }
            if (q_true(req, "sendInitialEvents") && w->bookmarks)
                watch_send_bookmark(w, TRUE);
        } else {
            for (GList *l = self->events.head; l; l = l->next) {
                Event *e = l->data;
                if (e->rv > rv)
                    watch_deliver(w, e);
            }
        }
    }
    if (w->bookmarks)
        w->bookmark_source = g_timeout_add(self->bookmark_interval_ms, watch_bookmark_cb, w);
    const char *ts = q(req, "timeoutSeconds");
    guint64 timeout = ts ? g_ascii_strtoull(ts, NULL, 10) : 0;
    if (timeout > 0)
        w->timeout_source = g_timeout_add_seconds((guint)MIN(timeout, 86400), watch_timeout_cb, w);
    /* Send the status line and headers now, so a client sees the watch is open. */
    soup_server_message_unpause(req->msg);
}

static void
respond_object(Req *req, guint code, JsonNode *obj)
{
    if (wants_table(req)) {
        g_autoptr(JsonNode) t = table_for(
            req->res, &obj, 1, g_strcmp0(q(req, "includeObject"), "Object") == 0, TRUE, 0, NULL);
        respond_json(req->msg, code, t);
        return;
    }
    respond_json(req->msg, code, obj);
}

static void
do_get(Req *req)
{
    g_autofree char *key = object_key(req->res, req->ns, req->name);
    JsonNode *obj = g_hash_table_lookup(collection(req->self, req->res), key);
    if (!obj) {
        respond_not_found(req->msg, req->res, req->name);
        return;
    }
    respond_object(req, 200, obj);
}

static void
do_create(Req *req)
{
    VmigTestApiserver *self = req->self;
    g_autoptr(JsonNode) body = parse_body(req);
    if (!body || !check_body_identity(req, body))
        return;
    JsonObject *md = metadata_of(body);
    const char *name = vmig_test_apiserver_json_str(md, "name");
    const char *gen = vmig_test_apiserver_json_str(md, "generateName");
    g_autofree char *generated = NULL;
    GHashTable *c = collection(self, req->res);
    if ((!name || !name[0]) && gen && gen[0]) {
        for (int tries = 0; tries < 8; tries++) {
            g_autofree char *suffix = random_suffix();
            g_free(generated);
            generated = g_strdup_printf("%s%s", gen, suffix);
            g_autofree char *k = object_key(req->res, req->ns, generated);
            if (!g_hash_table_contains(c, k))
                break;
        }
        json_object_set_string_member(md, "name", generated);
        name = generated;
    }
    if (!name || !name[0]) {
        respond_status(req->msg, 422, "Invalid", req->res, NULL,
                       "%s \"\" is invalid: metadata.name: Required value: name or "
                       "generateName is required",
                       req->res->kind);
        return;
    }
    if (!valid_name(name)) {
        respond_status(req->msg, 422, "Invalid", req->res, name,
                       "%s \"%s\" is invalid: metadata.name: Invalid value: \"%s\": a lowercase "
                       "RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                       "'-' or '.', and must start and end with an alphanumeric character",
                       req->res->kind, name, name);
        return;
    }
    g_free(req->name);
    req->name = g_strdup(name);
    if (injected_fault(req))
        return;
    g_autofree char *key = object_key(req->res, req->ns, name);
    if (g_hash_table_contains(c, key)) {
        g_autofree char *qn = vmig_test_apiserver_resource_qualified(req->res);
        respond_status(req->msg, 409, "AlreadyExists", req->res, name, "%s \"%s\" already exists",
                       qn, name);
        return;
    }
    g_autofree char *uid = g_uuid_string_random();
    g_autofree char *now = now_rfc3339();
    json_object_set_string_member(md, "uid", uid);
    json_object_set_string_member(md, "creationTimestamp", now);
    json_object_set_int_member(md, "generation", 1);
    json_object_remove_member(md, "deletionTimestamp");
    json_object_remove_member(md, "deletionGracePeriodSeconds");
    json_object_remove_member(md, "managedFields");
    JsonObject *o = json_node_get_object(body);
    if (req->res->has_status && !req->res->keep_status_on_create)
        json_object_remove_member(o, "status");
    if (g_str_equal(req->res->kind, "Namespace")) {
        JsonObject *st = json_object_new();
        json_object_set_string_member(st, "phase", "Active");
        json_object_set_object_member(o, "status", st);
    }
    if (q(req, "dryRun")) {
        respond_object(req, 201, body);
        return;
    }
    JsonNode *stored = commit(self, req->res, key, g_steal_pointer(&body));
    respond_object(req, 201, stored);
}

/* The common end of PUT and PATCH: @proposed (transfer none) is the whole new object as the
 * client wants it; status semantics, preconditions and generation are applied here. */
static void
apply_update(Req *req, JsonNode *old, JsonNode *proposed)
{
    VmigTestApiserver *self = req->self;
    if (!check_body_identity(req, proposed))
        return;
    JsonObject *pmd = metadata_of(proposed);
    const char *pname = vmig_test_apiserver_json_str(pmd, "name");
    if (g_strcmp0(pname, req->name) != 0) {
        respond_status(req->msg, 400, "BadRequest", req->res, req->name,
                       "the name of the object (%s) does not match the name on the URL (%s)",
                       pname ? pname : "", req->name);
        return;
    }
    const char *prv = vmig_test_apiserver_json_str(pmd, "resourceVersion");
    if (prv && prv[0] && g_strcmp0(prv, md_str(old, "resourceVersion")) != 0) {
        respond_conflict(req->msg, req->res, req->name);
        return;
    }
    if ((!prv || !prv[0]) && req->res->is_crd) {
        respond_status(req->msg, 422, "Invalid", req->res, req->name,
                       "%s.%s \"%s\" is invalid: metadata.resourceVersion: Invalid value: 0x0: "
                       "must be specified for an update",
                       req->res->kind, req->res->group, req->name);
        return;
    }
    const char *puid = vmig_test_apiserver_json_str(pmd, "uid");
    if (puid && puid[0] && g_strcmp0(puid, md_str(old, "uid")) != 0) {
        g_autofree char *qn = vmig_test_apiserver_resource_qualified(req->res);
        respond_status(req->msg, 409, "Conflict", req->res, req->name,
                       "Operation cannot be fulfilled on %s \"%s\": Precondition failed: UID in "
                       "precondition: %s, UID in object meta: %s",
                       qn, req->name, puid, md_str(old, "uid"));
        return;
    }
    JsonNode *result;
    if (req->sub) {
        /* A status write keeps everything but status from the stored object. */
        result = vmig_test_apiserver_json_deep_copy(old);
        copy_member(json_node_get_object(result), json_node_get_object(proposed), "status");
    } else {
        result = vmig_test_apiserver_json_deep_copy(proposed);
        JsonObject *rmd = metadata_of(result);
        JsonObject *omd = metadata_of(old);
        const char *keep[] = {
            "uid",        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
            "generation", "namespace"};
        for (gsize i = 0; i < G_N_ELEMENTS(keep); i++)
            copy_member(rmd, omd, keep[i]);
        json_object_remove_member(rmd, "managedFields");
        if (req->res->has_status)
            copy_member(json_node_get_object(result), json_node_get_object(old), "status");
        if (!spec_equal(result, old)) {
            gint64 g = json_object_get_int_member_with_default(omd, "generation", 1);
            json_object_set_int_member(rmd, "generation", g + 1);
        }
    }
    set_rv(result, g_ascii_strtoull(md_str(old, "resourceVersion"), NULL, 10));
    g_autofree char *key = object_key(req->res, req->ns, req->name);
    if (json_node_equal(result, old)) {
        /* kube-apiserver skips no-op writes: same resourceVersion, no event. */
        json_node_unref(result);
        respond_object(req, 200, old);
        return;
    }
    if (q(req, "dryRun")) {
        respond_object(req, 200, result);
        json_node_unref(result);
        return;
    }
    if (md_str(old, "deletionTimestamp") && !has_finalizers(result)) {
        json_node_unref(result);
        JsonNode *gone = commit(self, req->res, key, NULL);
        respond_object(req, 200, gone);
        return;
    }
    JsonNode *stored = commit(self, req->res, key, result);
    respond_object(req, 200, stored);
}

static JsonNode *
lookup_or_404(Req *req)
{
    g_autofree char *key = object_key(req->res, req->ns, req->name);
    JsonNode *old = g_hash_table_lookup(collection(req->self, req->res), key);
    if (!old)
        respond_not_found(req->msg, req->res, req->name);
    return old;
}

static void
do_update(Req *req)
{
    g_autoptr(JsonNode) body = parse_body(req);
    if (!body)
        return;
    JsonNode *old = lookup_or_404(req);
    if (!old || injected_fault(req))
        return;
    apply_update(req, old, body);
}

static void
do_patch(Req *req)
{
    g_autoptr(JsonNode) patch = parse_body(req);
    if (!patch)
        return;
    const char *ct = soup_message_headers_get_content_type(
        soup_server_message_get_request_headers(req->msg), NULL);
    gboolean json_patch = g_strcmp0(ct, "application/json-patch+json") == 0;
    gboolean merge = g_strcmp0(ct, "application/merge-patch+json") == 0;
    gboolean strategic = g_strcmp0(ct, "application/strategic-merge-patch+json") == 0;
    if (!json_patch && !merge && !(strategic && !req->res->is_crd)) {
        respond_status(req->msg, 415, "UnsupportedMediaType", NULL, NULL,
                       "the body of the request was in an unknown format - accepted media types "
                       "include: application/json-patch+json, application/merge-patch+json%s",
                       req->res->is_crd ? "" : ", application/strategic-merge-patch+json");
        return;
    }
    JsonNode *old = lookup_or_404(req);
    if (!old || injected_fault(req))
        return;
    g_autoptr(JsonNode) proposed = NULL;
    if (json_patch) {
        gboolean test_failed;
        g_autofree char *err = NULL;
        proposed = vmig_test_apiserver_json_patch(old, patch, &test_failed, &err);
        if (!proposed) {
            /* kube-apiserver answers any JSON patch that does not apply with 422 Invalid. */
            g_autoptr(JsonNode) st =
                status_node_causes(422, "Invalid", err, req->res, req->name, "patch");
            respond_json(req->msg, 422, st);
            return;
        }
    } else {
        if (strategic)
            vmig_test_apiserver_strip_directives(patch);
        proposed = vmig_test_apiserver_merge_patch(old, patch);
    }
    if (!JSON_NODE_HOLDS_OBJECT(proposed)) {
        respond_status(req->msg, 422, "Invalid", req->res, req->name,
                       "the patch does not result in an object");
        return;
    }
    /* A patch that leaves metadata.resourceVersion alone is unconditional. */
    JsonObject *md = metadata_of(proposed);
    if (md && !vmig_test_apiserver_json_str(md, "resourceVersion"))
        json_object_set_string_member(md, "resourceVersion", md_str(old, "resourceVersion"));
    apply_update(req, old, proposed);
}

/* Deletes one object honouring preconditions and finalizers; responds unless @quiet. */
static void
delete_one(Req *req, const char *key, JsonNode *old, JsonObject *opts, gboolean quiet)
{
    VmigTestApiserver *self = req->self;
    JsonObject *pre = vmig_test_apiserver_json_obj(opts, "preconditions");
    const char *puid = vmig_test_apiserver_json_str(pre, "uid");
    const char *prv = vmig_test_apiserver_json_str(pre, "resourceVersion");
    const char *name = md_str(old, "name");
    if (puid && g_strcmp0(puid, md_str(old, "uid")) != 0) {
        g_autofree char *qn = vmig_test_apiserver_resource_qualified(req->res);
        respond_status(req->msg, 409, "Conflict", req->res, name,
                       "Operation cannot be fulfilled on %s \"%s\": Precondition failed: UID in "
                       "precondition: %s, UID in object meta: %s",
                       qn, name, puid, md_str(old, "uid"));
        return;
    }
    if (prv && g_strcmp0(prv, md_str(old, "resourceVersion")) != 0) {
        g_autofree char *qn = vmig_test_apiserver_resource_qualified(req->res);
        respond_status(req->msg, 409, "Conflict", req->res, name,
                       "Operation cannot be fulfilled on %s \"%s\": Precondition failed: "
                       "ResourceVersion in precondition: %s, ResourceVersion in object meta: %s",
                       qn, name, prv, md_str(old, "resourceVersion"));
        return;
    }
    JsonNode *result;
    if (has_finalizers(old)) {
        if (md_str(old, "deletionTimestamp")) {
            result = old;
        } else {
            JsonNode *marked = vmig_test_apiserver_json_deep_copy(old);
            g_autofree char *now = now_rfc3339();
            json_object_set_string_member(metadata_of(marked), "deletionTimestamp", now);
            json_object_set_int_member(metadata_of(marked), "deletionGracePeriodSeconds", 0);
            result = commit(self, req->res, key, marked);
        }
    } else {
        result = commit(self, req->res, key, NULL);
    }
    if (!quiet)
        respond_object(req, 200, result);
}

static JsonObject *
delete_options(Req *req, JsonNode **holder)
{
    SoupMessageBody *body = soup_server_message_get_request_body(req->msg);
    if (!body->data || body->length == 0)
        return NULL;
    *holder = json_from_string(body->data, NULL);
    return *holder && JSON_NODE_HOLDS_OBJECT(*holder) ? json_node_get_object(*holder) : NULL;
}

static void
do_delete(Req *req)
{
    JsonNode *old = lookup_or_404(req);
    if (!old || injected_fault(req))
        return;
    g_autoptr(JsonNode) holder = NULL;
    JsonObject *opts = delete_options(req, &holder);
    g_autofree char *key = object_key(req->res, req->ns, req->name);
    delete_one(req, key, old, opts, FALSE);
}

static void
do_deletecollection(Req *req)
{
    VmigTestApiserverSelector *labels, *fields;
    if (injected_fault(req) || !parse_selectors(req, &labels, &fields))
        return;
    GHashTable *c = collection(req->self, req->res);
    guint n = 0;
    g_autofree gpointer *keys = g_hash_table_get_keys_as_array(c, &n);
    g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < n; i++)
        g_ptr_array_add(owned, g_strdup(keys[i]));
    for (guint i = 0; i < owned->len; i++) {
        const char *key = g_ptr_array_index(owned, i);
        JsonNode *obj = g_hash_table_lookup(c, key);
        if (obj && list_item_selected(req, obj, labels, fields))
            delete_one(req, key, obj, NULL, TRUE);
    }
    vmig_test_apiserver_selector_free(labels);
    vmig_test_apiserver_selector_free(fields);
    g_autoptr(JsonNode) st = json_from_string(
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Success\"}", NULL);
    respond_json(req->msg, 200, st);
}

/* ---------- routing ---------- */

/* Splits the path after /api/v1/ or /apis/<g>/<v>/ into namespace, resource, name, sub. */
static gboolean
route(Req *req, const char *path)
{
    const char *group, *version;
    g_auto(GStrv) parts = NULL;
    g_autofree char *g = NULL, *v = NULL;
    if (g_str_has_prefix(path, "/api/v1/")) {
        group = "";
        version = "v1";
        parts = g_strsplit(path + strlen("/api/v1/"), "/", -1);
    } else if (g_str_has_prefix(path, "/apis/")) {
        g_auto(GStrv) all = g_strsplit(path + strlen("/apis/"), "/", 3);
        if (g_strv_length(all) < 3)
            return FALSE;
        g = g_strdup(all[0]);
        v = g_strdup(all[1]);
        group = g;
        version = v;
        parts = g_strsplit(all[2], "/", -1);
    } else {
        return FALSE;
    }
    guint n = g_strv_length(parts);
    if (n > 0 && parts[n - 1][0] == '\0')
        g_clear_pointer(&parts[--n], g_free);
    guint i = 0;
    if (n >= 3 && g_str_equal(parts[0], "namespaces") &&
        vmig_test_apiserver_resource_find(group, version, parts[2]) &&
        vmig_test_apiserver_resource_find(group, version, parts[2])->namespaced) {
        req->ns = g_strdup(parts[1]);
        i = 2;
    }
    if (i >= n)
        return FALSE;
    req->res = vmig_test_apiserver_resource_find(group, version, parts[i]);
    if (!req->res || (req->ns && !req->res->namespaced))
        return FALSE;
    if (i + 1 < n)
        req->name = g_strdup(parts[i + 1]);
    if (i + 2 < n) {
        if (!g_str_equal(parts[i + 2], "status") || !req->res->has_status || i + 3 < n)
            return FALSE;
        req->sub = g_strdup("status");
    }
    return TRUE;
}

static void
count(VmigTestApiserver *self, const char *verb, const char *resource)
{
    g_autofree char *k = g_strdup_printf("%s %s", verb, resource);
    guint c = GPOINTER_TO_UINT(g_hash_table_lookup(self->counters, k));
    g_hash_table_replace(self->counters, g_steal_pointer(&k), GUINT_TO_POINTER(c + 1));
}

static void handle_control(VmigTestApiserver *self, SoupServerMessage *msg, const char *path);

static void
handle_resource(VmigTestApiserver *self, SoupServerMessage *msg, const char *path,
                GHashTable *query)
{
    Req req = {.self = self, .msg = msg, .query = query};
    const char *method = soup_server_message_get_method(msg);
    g_autofree char *counted = NULL;
    if (!route(&req, path)) {
        respond_status(msg, 404, "NotFound", NULL, NULL,
                       "the server could not find the "
                       "requested resource");
        goto out;
    }
    if (req.res->namespaced && req.name && !req.ns) {
        respond_status(msg, 404, "NotFound", NULL, NULL,
                       "the server could not find the requested resource");
        goto out;
    }
    if (g_str_equal(method, "GET"))
        req.verb = req.name ? "get" : (q_true(&req, "watch") ? "watch" : "list");
    else if (g_str_equal(method, "POST") && !req.name)
        req.verb = "create";
    else if (g_str_equal(method, "PUT") && req.name)
        req.verb = "update";
    else if (g_str_equal(method, "PATCH") && req.name)
        req.verb = "patch";
    else if (g_str_equal(method, "DELETE"))
        req.verb = req.name ? "delete" : "deletecollection";
    if (!req.verb || (req.sub && g_str_equal(req.verb, "delete"))) {
        respond_status(msg, 405, "MethodNotAllowed", req.res, req.name,
                       "the server does not allow this method on the requested resource");
        goto out;
    }
    counted =
        req.sub ? g_strdup_printf("%s/%s", req.res->plural, req.sub) : g_strdup(req.res->plural);
    count(self, req.verb, counted);
    if (g_str_equal(req.verb, "get"))
        do_get(&req);
    else if (g_str_equal(req.verb, "list"))
        do_list(&req);
    else if (g_str_equal(req.verb, "watch"))
        do_watch(&req);
    else if (g_str_equal(req.verb, "create"))
        do_create(&req);
    else if (g_str_equal(req.verb, "update"))
        do_update(&req);
    else if (g_str_equal(req.verb, "patch"))
        do_patch(&req);
    else if (g_str_equal(req.verb, "delete"))
        do_delete(&req);
    else
        do_deletecollection(&req);
out:
    g_free(req.ns);
    g_free(req.name);
    g_free(req.sub);
}

static void
server_callback(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                gpointer data)
{
    VmigTestApiserver *self = data;
    GUri *uri = soup_server_message_get_uri(msg);
    const char *raw_query = g_uri_get_query(uri);
    g_queue_push_tail(&self->recent,
                      g_strdup_printf("%s %s%s%s", soup_server_message_get_method(msg), path,
                                      raw_query ? "?" : "", raw_query ? raw_query : ""));
    while (self->recent.length > RECENT_MAX)
        g_free(g_queue_pop_head(&self->recent));

    if (self->token) {
        const char *auth = soup_message_headers_get_one(
            soup_server_message_get_request_headers(msg), "Authorization");
        if (!auth || !g_str_has_prefix(auth, "Bearer ") ||
            !g_str_equal(auth + strlen("Bearer "), self->token)) {
            respond_status(msg, 401, "Unauthorized", NULL, NULL, "Unauthorized");
            return;
        }
    }
    if (g_str_has_prefix(path, "/_test/")) {
        handle_control(self, msg, path);
        return;
    }
    if (g_str_equal(path, "/healthz") || g_str_equal(path, "/readyz") ||
        g_str_equal(path, "/livez")) {
        soup_server_message_set_status(msg, 200, NULL);
        soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_STATIC, "ok", 2);
        return;
    }
    g_autoptr(JsonNode) doc = vmig_test_apiserver_discovery(path, self->url);
    if (!doc)
        doc = vmig_test_apiserver_openapi(path);
    if (doc) {
        if (!g_str_equal(soup_server_message_get_method(msg), "GET")) {
            respond_status(msg, 405, "MethodNotAllowed", NULL, NULL,
                           "the server does not allow this method on the requested resource");
            return;
        }
        respond_json(msg, 200, doc);
        return;
    }
    handle_resource(self, msg, path, query);
}

/* ---------- control API (/_test/) ---------- */

static JsonNode *
stats_node(VmigTestApiserver *self)
{
    JsonObject *o = json_object_new();
    JsonObject *counts = json_object_new();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, self->counters);
    while (g_hash_table_iter_next(&it, &k, &v))
        json_object_set_int_member(counts, k, GPOINTER_TO_UINT(v));
    json_object_set_object_member(o, "requests", counts);
    JsonArray *recent = json_array_new();
    for (GList *l = self->recent.head; l; l = l->next)
        json_array_add_string_element(recent, l->data);
    json_object_set_array_member(o, "recent", recent);
    json_object_set_int_member(o, "openWatches", self->watches->len);
    g_autofree char *rv = g_strdup_printf("%" G_GUINT64_FORMAT, self->rv);
    json_object_set_string_member(o, "resourceVersion", rv);
    g_autofree char *crv = g_strdup_printf("%" G_GUINT64_FORMAT, self->compacted_rv);
    json_object_set_string_member(o, "compactedResourceVersion", crv);
    return vmig_test_apiserver_node_take_object(o);
}

static gboolean
apply_fault(VmigTestApiserver *self, JsonObject *f, char **error_message)
{
    const char *action = vmig_test_apiserver_json_str(f, "action");
    const char *resource = vmig_test_apiserver_json_str(f, "resource");
    guint count_ = (guint)json_object_get_int_member_with_default(f, "count", 1);
    if (!action) {
        *error_message = g_strdup("missing \"action\"");
        return FALSE;
    }
    if (g_str_equal(action, "cut-watches")) {
        const char *mode = vmig_test_apiserver_json_str(f, "mode");
        vmig_test_apiserver_cut_watches(self, resource, g_strcmp0(mode, "close") != 0);
    } else if (g_str_equal(action, "stall-watches")) {
        vmig_test_apiserver_stall_watches(
            self, resource, (guint)json_object_get_int_member_with_default(f, "next", 0));
    } else if (g_str_equal(action, "expire-next-watch")) {
        const char *shape = vmig_test_apiserver_json_str(f, "shape");
        vmig_test_apiserver_expire_next_watch(self,
                                              g_strcmp0(shape, "stream") == 0
                                                  ? VMIG_TEST_APISERVER_EXPIRE_STREAM
                                                  : VMIG_TEST_APISERVER_EXPIRE_HTTP,
                                              count_);
    } else if (g_str_equal(action, "fail-writes")) {
        guint code = (guint)json_object_get_int_member_with_default(f, "code", 500);
        if (code != 409 && code != 500) {
            *error_message = g_strdup_printf("\"code\" must be 409 or 500, not %u", code);
            return FALSE;
        }
        vmig_test_apiserver_fail_next_writes(self, count_, code,
                                             vmig_test_apiserver_json_str(f, "verb"), resource,
                                             vmig_test_apiserver_json_str(f, "name"));
    } else if (g_str_equal(action, "split-writes")) {
        vmig_test_apiserver_split_writes(
            self, (guint)json_object_get_int_member_with_default(f, "min", 1),
            (guint)json_object_get_int_member_with_default(f, "max", 7));
    } else if (g_str_equal(action, "compact")) {
        vmig_test_apiserver_compact(self);
    } else if (g_str_equal(action, "bookmark")) {
        vmig_test_apiserver_send_bookmarks(self);
    } else if (g_str_equal(action, "reset")) {
        vmig_test_apiserver_reset(self);
    } else {
        *error_message = g_strdup_printf("unknown action \"%s\"", action);
        return FALSE;
    }
    return TRUE;
}

static void
handle_control(VmigTestApiserver *self, SoupServerMessage *msg, const char *path)
{
    const char *method = soup_server_message_get_method(msg);
    SoupMessageBody *body = soup_server_message_get_request_body(msg);
    if (g_str_equal(path, "/_test/stats") && g_str_equal(method, "GET")) {
        g_autoptr(JsonNode) n = stats_node(self);
        respond_json(msg, 200, n);
        return;
    }
    if ((g_str_equal(path, "/_test/faults") || g_str_equal(path, "/_test/objects")) &&
        g_str_equal(method, "POST")) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GPtrArray) docs = vmig_test_apiserver_parse_documents(
            body->data ? body->data : "", body->data ? body->length : 0, &err);
        if (!docs) {
            respond_status(msg, 400, "BadRequest", NULL, NULL, "%s", err->message);
            return;
        }
        for (guint i = 0; i < docs->len; i++) {
            JsonNode *d = g_ptr_array_index(docs, i);
            g_autofree char *m = NULL;
            if (g_str_equal(path, "/_test/objects")) {
                if (!vmig_test_apiserver_put_object(self, d, &err)) {
                    respond_status(msg, 400, "BadRequest", NULL, NULL, "%s", err->message);
                    return;
                }
            } else if (!apply_fault(self, json_node_get_object(d), &m)) {
                respond_status(msg, 400, "BadRequest", NULL, NULL, "%s", m);
                return;
            }
        }
        g_autoptr(JsonNode) n = stats_node(self);
        respond_json(msg, 200, n);
        return;
    }
    respond_status(msg, 404, "NotFound", NULL, NULL, "unknown test control path %s %s", method,
                   path);
}

/* ---------- public API ---------- */

static gboolean
ensure_certs(const char *dir, const char *listen, GError **error)
{
    g_autofree char *cert = g_build_filename(dir, "apiserver.pem", NULL);
    g_autofree char *key = g_build_filename(dir, "apiserver-key.pem", NULL);
    if (g_file_test(cert, G_FILE_TEST_EXISTS) && g_file_test(key, G_FILE_TEST_EXISTS))
        return TRUE;
    const char *script = g_getenv("VMIG_GEN_CERTS");
    if (!script)
        script = VMIG_GEN_CERTS;
    const char *argv[] = {script, dir, "apiserver", "localhost", "127.0.0.1", "::1", listen, NULL};
    if (g_str_equal(listen, "127.0.0.1") || g_str_equal(listen, "0.0.0.0") ||
        g_str_equal(listen, "::"))
        argv[6] = NULL;
    gint status = 0;
    g_autofree char *err_out = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                      &err_out, &status, error))
        return FALSE;
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(error, VMIG_TEST_APISERVER_ERROR, VMIG_TEST_APISERVER_ERROR_TLS,
                    "%s %s failed: %s", script, dir, err_out ? err_out : "");
        return FALSE;
    }
    return TRUE;
}

VmigTestApiserver *
vmig_test_apiserver_new(const VmigTestApiserverOptions *opts, GError **error)
{
    VmigTestApiserverOptions defaults = {0};
    if (!opts)
        opts = &defaults;
    const char *listen = opts->listen ? opts->listen : "127.0.0.1";
    g_autoptr(GTlsCertificate) cert = NULL;
    g_autofree char *ca_file = NULL;
    if (opts->tls_dir) {
        if (!ensure_certs(opts->tls_dir, listen, error))
            return NULL;
        g_autofree char *cf = g_build_filename(opts->tls_dir, "apiserver.pem", NULL);
        g_autofree char *kf = g_build_filename(opts->tls_dir, "apiserver-key.pem", NULL);
        cert = g_tls_certificate_new_from_files(cf, kf, error);
        if (!cert) {
            g_prefix_error(error, "%s: ", cf);
            return NULL;
        }
        ca_file = g_build_filename(opts->tls_dir, "ca.pem", NULL);
    }
    g_autoptr(GInetAddress) ia = g_inet_address_new_from_string(listen);
    if (!ia) {
        g_set_error(error, VMIG_TEST_APISERVER_ERROR, VMIG_TEST_APISERVER_ERROR_LISTEN,
                    "listen address '%s' is not an IP address", listen);
        return NULL;
    }
    SoupServer *soup = cert ? soup_server_new("tls-certificate", cert, "server-header",
                                              "vmig-test-apiserver", NULL)
                            : soup_server_new("server-header", "vmig-test-apiserver", NULL);
    g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(ia, (guint16)opts->port);
    if (!soup_server_listen(soup, sa, cert ? SOUP_SERVER_LISTEN_HTTPS : 0, error)) {
        g_prefix_error(error, "listening on %s port %u: ", listen, opts->port);
        g_object_unref(soup);
        return NULL;
    }
    /* Not soup_server_get_uris(): libsoup 3.2 leaks the address it looks up there. */
    GSList *listeners = soup_server_get_listeners(soup);
    gint port = (gint)opts->port;
    if (listeners) {
        g_autoptr(GSocketAddress) local = g_socket_get_local_address(listeners->data, NULL);
        if (local)
            port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
    }
    g_slist_free(listeners);

    VmigTestApiserver *self = g_new0(VmigTestApiserver, 1);
    self->soup = soup;
    self->url =
        g_strdup_printf("%s://%s%s%s:%d", cert ? "https" : "http", strchr(listen, ':') ? "[" : "",
                        listen, strchr(listen, ':') ? "]" : "", port);
    self->ca_file = g_steal_pointer(&ca_file);
    self->token = g_strdup(opts->token);
    self->collections = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                              (GDestroyNotify)g_hash_table_unref);
    g_queue_init(&self->events);
    self->compaction_window = opts->compaction_window ? opts->compaction_window : 10000;
    self->bookmark_interval_ms = opts->bookmark_interval_ms ? opts->bookmark_interval_ms : 1000;
    self->watches = g_ptr_array_new();
    self->dead = g_ptr_array_new();
    self->counters = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    soup_server_add_handler(soup, NULL, server_callback, self, NULL);
    return self;
}

void
vmig_test_apiserver_free(VmigTestApiserver *self)
{
    if (!self)
        return;
    while (self->watches->len > 0) {
        Watch *w = g_ptr_array_index(self->watches, 0);
        watch_finish(w, FALSE);
        watch_forget(w);
    }
    soup_server_disconnect(self->soup);
    while (self->dead->len > 0) {
        Watch *w = g_ptr_array_steal_index(self->dead, 0);
        watch_free(w);
    }
    g_object_unref(self->soup);
    g_ptr_array_unref(self->watches);
    g_ptr_array_unref(self->dead);
    g_hash_table_unref(self->collections);
    g_queue_clear_full(&self->events, (GDestroyNotify)event_free);
    g_queue_clear_full(&self->write_faults, (GDestroyNotify)write_fault_free);
    g_queue_clear_full(&self->recent, g_free);
    g_hash_table_unref(self->counters);
    g_free(self->url);
    g_free(self->ca_file);
    g_free(self->token);
    g_free(self);
}

const char *
vmig_test_apiserver_get_url(VmigTestApiserver *self)
{
    return self->url;
}

const char *
vmig_test_apiserver_get_ca_file(VmigTestApiserver *self)
{
    return self->ca_file;
}

gboolean
vmig_test_apiserver_write_kubeconfig(VmigTestApiserver *self, const char *path, GError **error)
{
    g_autoptr(GString) s = g_string_new("apiVersion: v1\nkind: Config\nclusters:\n"
                                        "- name: vmig-test\n  cluster:\n");
    g_string_append_printf(s, "    server: %s\n", self->url);
    if (self->ca_file) {
        g_autofree char *abs = g_canonicalize_filename(self->ca_file, NULL);
        g_string_append_printf(s, "    certificate-authority: %s\n", abs);
    }
    g_string_append(s, "users:\n- name: vmig-test\n  user:\n");
    /* Without a configured token any token is accepted; writing one keeps kubectl from
     * prompting for a username. */
    g_string_append_printf(s, "    token: %s\n", self->token ? self->token : "unused");
    g_string_append(s, "contexts:\n- name: vmig-test\n  context:\n    cluster: vmig-test\n"
                       "    user: vmig-test\n    namespace: default\n"
                       "current-context: vmig-test\n");
    if (!g_file_set_contents_full(path, s->str, (gssize)s->len, G_FILE_SET_CONTENTS_CONSISTENT,
                                  0600, error)) {
        if (error && *error)
            (*error)->domain = VMIG_TEST_APISERVER_ERROR,
            (*error)->code = VMIG_TEST_APISERVER_ERROR_IO;
        return FALSE;
    }
    return TRUE;
}

guint64
vmig_test_apiserver_put_object(VmigTestApiserver *self, JsonNode *object, GError **error)
{
    JsonObject *o = JSON_NODE_HOLDS_OBJECT(object) ? json_node_get_object(object) : NULL;
    const char *av = vmig_test_apiserver_json_str(o, "apiVersion");
    const char *kind = vmig_test_apiserver_json_str(o, "kind");
    const VmigTestApiserverResource *r = vmig_test_apiserver_resource_by_kind(av, kind);
    JsonObject *md = vmig_test_apiserver_json_obj(o, "metadata");
    const char *name = vmig_test_apiserver_json_str(md, "name");
    const char *ns = vmig_test_apiserver_json_str(md, "namespace");
    if (!r) {
        g_set_error(error, VMIG_TEST_APISERVER_ERROR, VMIG_TEST_APISERVER_ERROR_INVALID,
                    "object %s: apiVersion '%s' kind '%s' is not served", name ? name : "?",
                    av ? av : "", kind ? kind : "");
        return 0;
    }
    if (!name || !valid_name(name)) {
        g_set_error(error, VMIG_TEST_APISERVER_ERROR, VMIG_TEST_APISERVER_ERROR_INVALID,
                    "%s: metadata.name '%s' is missing or not a DNS subdomain", kind,
                    name ? name : "");
        return 0;
    }
    if (r->namespaced && (!ns || !ns[0]))
        ns = "default";
    g_autofree char *key = object_key(r, ns, name);
    JsonNode *old = g_hash_table_lookup(collection(self, r), key);
    JsonNode *copy = vmig_test_apiserver_json_deep_copy(object);
    JsonObject *cmd = metadata_of(copy);
    if (r->namespaced)
        json_object_set_string_member(cmd, "namespace", ns);
    else
        json_object_remove_member(cmd, "namespace");
    if (old) {
        copy_member(cmd, metadata_of(old), "uid");
        copy_member(cmd, metadata_of(old), "creationTimestamp");
    }
    if (!vmig_test_apiserver_json_str(cmd, "uid")) {
        g_autofree char *uid = g_uuid_string_random();
        json_object_set_string_member(cmd, "uid", uid);
    }
    if (!vmig_test_apiserver_json_str(cmd, "creationTimestamp")) {
        g_autofree char *now = now_rfc3339();
        json_object_set_string_member(cmd, "creationTimestamp", now);
    }
    if (!json_object_has_member(cmd, "generation"))
        json_object_set_int_member(cmd, "generation", 1);
    commit(self, r, key, copy);
    return self->rv;
}

gboolean
vmig_test_apiserver_load_file(VmigTestApiserver *self, const char *path, GError **error)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &text, &len, error))
        return FALSE;
    g_autoptr(GPtrArray) docs = vmig_test_apiserver_parse_documents(text, len, error);
    if (!docs) {
        g_prefix_error(error, "%s: ", path);
        return FALSE;
    }
    for (guint i = 0; i < docs->len; i++) {
        JsonObject *o = json_node_get_object(g_ptr_array_index(docs, i));
        JsonArray *items =
            json_object_has_member(o, "items") ? json_object_get_array_member(o, "items") : NULL;
        guint n = items ? json_array_get_length(items) : 1;
        for (guint k = 0; k < n; k++) {
            JsonNode *obj = items ? json_array_get_element(items, k) : g_ptr_array_index(docs, i);
            if (!vmig_test_apiserver_put_object(self, obj, error)) {
                g_prefix_error(error, "%s: ", path);
                return FALSE;
            }
        }
    }
    return TRUE;
}

JsonNode *
vmig_test_apiserver_get_object(VmigTestApiserver *self, const char *resource,
                               const char *namespace_, const char *name)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, self->collections);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const VmigTestApiserverResource *r = k;
        if (!g_str_equal(r->plural, resource))
            continue;
        g_autofree char *key = object_key(r, namespace_, name);
        JsonNode *obj = g_hash_table_lookup(v, key);
        return obj ? vmig_test_apiserver_json_deep_copy(obj) : NULL;
    }
    return NULL;
}

guint64
vmig_test_apiserver_get_resource_version(VmigTestApiserver *self)
{
    return self->rv;
}

void
vmig_test_apiserver_cut_watches(VmigTestApiserver *self, const char *resource, gboolean abort)
{
    g_autoptr(GPtrArray) ws = g_ptr_array_copy(self->watches, NULL, NULL);
    for (guint i = 0; i < ws->len; i++) {
        Watch *w = g_ptr_array_index(ws, i);
        if (!resource || g_str_equal(resource, w->res->plural))
            watch_finish(w, abort);
    }
}

void
vmig_test_apiserver_stall_watches(VmigTestApiserver *self, const char *resource, guint next_count)
{
    for (guint i = 0; i < self->watches->len; i++) {
        Watch *w = g_ptr_array_index(self->watches, i);
        if (!resource || g_str_equal(resource, w->res->plural))
            w->stalled = TRUE;
    }
    self->stall_next = next_count;
}

void
vmig_test_apiserver_expire_next_watch(VmigTestApiserver *self, VmigTestApiserverExpireShape shape,
                                      guint count_)
{
    self->expire_next = count_;
    self->expire_shape = shape;
}

void
vmig_test_apiserver_fail_next_writes(VmigTestApiserver *self, guint count_, guint code,
                                     const char *verb, const char *resource, const char *name)
{
    if (count_ == 0)
        return;
    WriteFault *f = g_new0(WriteFault, 1);
    f->remaining = count_;
    f->code = code;
    f->verb = g_strdup(verb);
    f->resource = g_strdup(resource);
    f->name = g_strdup(name);
    g_queue_push_tail(&self->write_faults, f);
}

void
vmig_test_apiserver_split_writes(VmigTestApiserver *self, guint min, guint max)
{
    self->split_min = MAX(min, 1);
    self->split_max = max >= self->split_min ? max : (max ? self->split_min : 0);
}

void
vmig_test_apiserver_compact(VmigTestApiserver *self)
{
    g_queue_clear_full(&self->events, (GDestroyNotify)event_free);
    g_queue_init(&self->events);
    self->compacted_rv = self->rv;
}

void
vmig_test_apiserver_send_bookmarks(VmigTestApiserver *self)
{
    for (guint i = 0; i < self->watches->len; i++) {
        Watch *w = g_ptr_array_index(self->watches, i);
        if (w->bookmarks && !w->stalled && !w->ending)
            watch_send_bookmark(w, FALSE);
    }
}

guint
vmig_test_apiserver_count_requests(VmigTestApiserver *self, const char *verb, const char *resource)
{
    guint total = 0;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, self->counters);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *key = k;
        const char *sp = strchr(key, ' ');
        if (verb && (strlen(verb) != (gsize)(sp - key) || strncmp(key, verb, sp - key) != 0))
            continue;
        if (resource && !g_str_equal(sp + 1, resource))
            continue;
        total += GPOINTER_TO_UINT(v);
    }
    return total;
}

char **
vmig_test_apiserver_get_recent_requests(VmigTestApiserver *self)
{
    char **v = g_new0(char *, self->recent.length + 1);
    guint i = 0;
    for (GList *l = self->recent.head; l; l = l->next)
        v[i++] = g_strdup(l->data);
    return v;
}

guint
vmig_test_apiserver_count_open_watches(VmigTestApiserver *self)
{
    return self->watches->len;
}

void
vmig_test_apiserver_reset(VmigTestApiserver *self)
{
    self->stall_next = 0;
    self->expire_next = 0;
    self->split_min = self->split_max = 0;
    g_queue_clear_full(&self->write_faults, (GDestroyNotify)write_fault_free);
    g_queue_init(&self->write_faults);
    g_hash_table_remove_all(self->counters);
    g_queue_clear_full(&self->recent, g_free);
    g_queue_init(&self->recent);
}
