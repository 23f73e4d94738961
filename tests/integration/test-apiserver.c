/* test-apiserver.c - the test API server against a libsoup client on the same main loop:
 * resourceVersion, conflicts, status semantics, patches, watches (from RV, bookmarks, 410 in
 * both shapes, faults), selectors, finalizers, generateName, paging and authentication. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>

#include "apiserver.h"

#define TOKEN "test-token"
#define VMIS  "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstances"

typedef struct {
    VmigTestApiserver *server;
    SoupSession *session;
    char *dir;
} Fx;

static Fx *
fx_new(guint window, guint bookmark_ms)
{
    Fx *fx = g_new0(Fx, 1);
    g_autoptr(GError) error = NULL;
    fx->dir = g_dir_make_tmp("vmig-apiserver-XXXXXX", &error);
    assert_non_null(fx->dir);
    g_autofree char *tls = g_build_filename(fx->dir, "tls", NULL);
    VmigTestApiserverOptions opts = {.tls_dir = tls,
                                     .token = TOKEN,
                                     .compaction_window = window,
                                     .bookmark_interval_ms = bookmark_ms};
    fx->server = vmig_test_apiserver_new(&opts, &error);
    if (!fx->server)
        fail_msg("server: %s", error->message);
    const char *ca = vmig_test_apiserver_get_ca_file(fx->server);
    g_autoptr(GTlsDatabase) db = ca ? g_tls_file_database_new(ca, &error) : NULL;
    assert_true(!ca || db);
    fx->session = db ? soup_session_new_with_options("tls-database", db, "timeout", 10, NULL)
                     : soup_session_new_with_options("timeout", 10, NULL);
    return fx;
}

static void
fx_free(Fx *fx)
{
    g_object_unref(fx->session);
    vmig_test_apiserver_free(fx->server);
    /* Let libsoup and glib-networking finish closing connections (TLS close runs in worker
     * threads) before the next test, so nothing is in flight at exit. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_autofree char *tls = g_build_filename(fx->dir, "tls", NULL);
    g_autoptr(GDir) d = g_dir_open(tls, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(tls, n, NULL);
        g_unlink(p);
    }
    g_rmdir(tls);
    g_rmdir(fx->dir);
    g_free(fx->dir);
    g_free(fx);
}

typedef struct {
    guint status;
    JsonNode *body;
    gboolean done;
} Resp;

static void
resp_free(Resp *r)
{
    if (r->body)
        json_node_unref(r->body);
    g_free(r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Resp, resp_free)

static void
read_done(GObject *src, GAsyncResult *res, gpointer data)
{
    Resp *r = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = soup_session_send_and_read_finish(SOUP_SESSION(src), res, &error);
    if (!bytes)
        fail_msg("request: %s", error->message);
    gsize len;
    const char *data_ = g_bytes_get_data(bytes, &len);
    if (len > 0) {
        g_autoptr(JsonParser) p = json_parser_new();
        if (json_parser_load_from_data(p, data_, (gssize)len, NULL))
            r->body = json_parser_steal_root(p);
    }
    r->done = TRUE;
}

static SoupMessage *
make_msg(Fx *fx, const char *method, const char *path, const char *ctype, const char *body,
         const char *token)
{
    g_autofree char *url = g_strconcat(vmig_test_apiserver_get_url(fx->server), path, NULL);
    SoupMessage *m = soup_message_new(method, url);
    assert_non_null(m);
    if (token) {
        g_autofree char *auth = g_strdup_printf("Bearer %s", token);
        soup_message_headers_replace(soup_message_get_request_headers(m), "Authorization", auth);
    }
    if (body) {
        g_autoptr(GBytes) b = g_bytes_new(body, strlen(body));
        soup_message_set_request_body_from_bytes(m, ctype ? ctype : "application/json", b);
    }
    return m;
}

static Resp *
http_token(Fx *fx, const char *method, const char *path, const char *ctype, const char *body,
           const char *token)
{
    g_autoptr(SoupMessage) m = make_msg(fx, method, path, ctype, body, token);
    Resp *r = g_new0(Resp, 1);
    soup_session_send_and_read_async(fx->session, m, G_PRIORITY_DEFAULT, NULL, read_done, r);
    while (!r->done)
        g_main_context_iteration(NULL, TRUE);
    r->status = soup_message_get_status(m);
    return r;
}

static Resp *
http(Fx *fx, const char *method, const char *path, const char *ctype, const char *body)
{
    return http_token(fx, method, path, ctype, body, TOKEN);
}

static const char *
jstr(JsonNode *n, const char *path)
{
    g_autoptr(JsonPath) p = json_path_new();
    g_autofree char *expr = g_strdup_printf("$.%s", path);
    assert_true(json_path_compile(p, expr, NULL));
    g_autoptr(JsonNode) res = json_path_match(p, n);
    JsonArray *a = json_node_get_array(res);
    if (json_array_get_length(a) != 1)
        return NULL;
    JsonNode *v = json_array_get_element(a, 0);
    if (!JSON_NODE_HOLDS_VALUE(v))
        return NULL;
    /* Interned so the caller need not free: tests are short. */
    if (json_node_get_value_type(v) == G_TYPE_STRING)
        return g_intern_string(json_node_get_string(v));
    g_autofree char *s = g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(v));
    return g_intern_string(s);
}

static guint64
rv_of(JsonNode *n)
{
    const char *s = jstr(n, "metadata.resourceVersion");
    assert_non_null(s);
    return g_ascii_strtoull(s, NULL, 10);
}

static Resp *
create_vmi(Fx *fx, const char *name, const char *labels)
{
    g_autofree char *body = g_strdup_printf(
        "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstance\",\"metadata\":"
        "{\"name\":\"%s\",\"labels\":{%s}},\"spec\":{\"domain\":{\"memory\":\"64Mi\"}},"
        "\"status\":{\"phase\":\"Running\"}}",
        name, labels ? labels : "");
    Resp *r = http(fx, "POST", VMIS, NULL, body);
    assert_int_equal(r->status, 201);
    return r;
}

/* ---------- watch client ---------- */

typedef struct {
    SoupMessage *msg;
    GInputStream *stream;
    GDataInputStream *data;
    GCancellable *cancel;
    GPtrArray *events; /* JsonNode */
    guint status;
    gboolean closed, error;
    GString *partial;
} W;

static void read_line(W *w);

static void
line_done(GObject *src, GAsyncResult *res, gpointer data)
{
    W *w = data;
    g_autoptr(GError) error = NULL;
    gsize len;
    g_autofree char *line =
        g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(src), res, &len, &error);
    if (!line) {
        if (error && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            w->error = TRUE;
        w->closed = TRUE;
        return;
    }
    g_autoptr(JsonParser) p = json_parser_new();
    if (!json_parser_load_from_data(p, line, (gssize)len, NULL))
        fail_msg("watch line is not JSON: %s", line);
    g_ptr_array_add(w->events, json_parser_steal_root(p));
    read_line(w);
}

static void
read_line(W *w)
{
    g_data_input_stream_read_line_async(w->data, G_PRIORITY_DEFAULT, w->cancel, line_done, w);
}

static void
send_done(GObject *src, GAsyncResult *res, gpointer data)
{
    W *w = data;
    g_autoptr(GError) error = NULL;
    w->stream = soup_session_send_finish(SOUP_SESSION(src), res, &error);
    w->status = soup_message_get_status(w->msg);
    if (!w->stream) {
        w->closed = TRUE;
        w->error = TRUE;
        return;
    }
    w->data = g_data_input_stream_new(w->stream);
    read_line(w);
}

static W *
watch_start(Fx *fx, const char *path_and_query)
{
    W *w = g_new0(W, 1);
    w->events = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
    w->cancel = g_cancellable_new();
    w->msg = make_msg(fx, "GET", path_and_query, NULL, NULL, TOKEN);
    soup_session_send_async(fx->session, w->msg, G_PRIORITY_DEFAULT, w->cancel, send_done, w);
    while (!w->status && !w->closed)
        g_main_context_iteration(NULL, TRUE);
    return w;
}

static gboolean
timeout_cb(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Runs the loop until @n events arrived, the stream closed, or @ms passed. */
static void
watch_wait(W *w, guint n, guint ms)
{
    gboolean expired = FALSE;
    guint id = g_timeout_add(ms, timeout_cb, &expired);
    while (w->events->len < n && !w->closed && !expired)
        g_main_context_iteration(NULL, TRUE);
    if (!expired)
        g_source_remove(id);
}

static void
watch_free_(W *w)
{
    g_cancellable_cancel(w->cancel);
    while (!w->closed && w->data)
        g_main_context_iteration(NULL, TRUE);
    g_clear_object(&w->data);
    if (w->stream)
        g_input_stream_close(w->stream, NULL, NULL);
    g_clear_object(&w->stream);
    g_object_unref(w->msg);
    g_object_unref(w->cancel);
    g_ptr_array_unref(w->events);
    g_free(w);
}

static const char *
ev_type(W *w, guint i)
{
    return jstr(g_ptr_array_index(w->events, i), "type");
}

static const char *
ev_name(W *w, guint i)
{
    return jstr(g_ptr_array_index(w->events, i), "object.metadata.name");
}

/* ---------- tests ---------- */

static void
test_resource_version_monotonic(void **state)
{
    Fx *fx = fx_new(0, 0);
    guint64 last = 0;
    for (int i = 0; i < 5; i++) {
        g_autofree char *name = g_strdup_printf("vm%d", i);
        g_autoptr(Resp) r = create_vmi(fx, name, NULL);
        guint64 rv = rv_of(r->body);
        assert_true(rv > last);
        last = rv;
        assert_non_null(jstr(r->body, "metadata.uid"));
        assert_non_null(jstr(r->body, "metadata.creationTimestamp"));
        assert_string_equal(jstr(r->body, "metadata.generation"), "1");
    }
    /* A write to another kind shares the same counter. */
    g_autoptr(Resp) n = http(fx, "POST", "/api/v1/nodes", NULL,
                             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":"
                             "\"node-a\"},\"status\":{\"phase\":\"Running\"}}");
    assert_int_equal(n->status, 201);
    assert_true(rv_of(n->body) == last + 1);
    /* Node keeps status on create like kube-apiserver. */
    assert_string_equal(jstr(n->body, "status.phase"), "Running");
    g_autoptr(Resp) l = http(fx, "GET", VMIS, NULL, NULL);
    assert_int_equal(l->status, 200);
    assert_string_equal(jstr(l->body, "kind"), "VirtualMachineInstanceList");
    assert_true(rv_of(l->body) == last + 1);
    assert_int_equal(vmig_test_apiserver_get_resource_version(fx->server), last + 1);
    fx_free(fx);
}

static void
test_conflict_409(void **state)
{
    Fx *fx = fx_new(0, 0);
    g_autoptr(Resp) c = create_vmi(fx, "vm1", NULL);
    g_autofree char *stale = json_to_string(c->body, FALSE);
    g_autoptr(Resp) p = http(fx, "PATCH", VMIS "/vm1", "application/merge-patch+json",
                             "{\"metadata\":{\"labels\":{\"a\":\"b\"}}}");
    assert_int_equal(p->status, 200);
    assert_true(rv_of(p->body) > rv_of(c->body));
    g_autoptr(Resp) u = http(fx, "PUT", VMIS "/vm1", NULL, stale);
    assert_int_equal(u->status, 409);
    assert_string_equal(jstr(u->body, "kind"), "Status");
    assert_string_equal(jstr(u->body, "status"), "Failure");
    assert_string_equal(jstr(u->body, "reason"), "Conflict");
    assert_string_equal(jstr(u->body, "code"), "409");
    assert_string_equal(
        jstr(u->body, "message"),
        "Operation cannot be fulfilled on virtualmachineinstances.kubevirt.io \"vm1\": the "
        "object has been modified; please apply your changes to the latest version and try "
        "again");
    assert_string_equal(jstr(u->body, "details.name"), "vm1");
    assert_string_equal(jstr(u->body, "details.group"), "kubevirt.io");
    assert_string_equal(jstr(u->body, "details.kind"), "virtualmachineinstances");
    /* CRD updates need a resourceVersion. */
    g_autoptr(Resp) nr = http(fx, "PUT", VMIS "/vm1", NULL,
                              "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":"
                              "\"VirtualMachineInstance\",\"metadata\":{\"name\":\"vm1\"}}");
    assert_int_equal(nr->status, 422);
    g_autoptr(Resp) dup = http(fx, "POST", VMIS, NULL,
                               "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":"
                               "\"VirtualMachineInstance\",\"metadata\":{\"name\":\"vm1\"}}");
    assert_int_equal(dup->status, 409);
    assert_string_equal(jstr(dup->body, "reason"), "AlreadyExists");
    g_autoptr(Resp) nf = http(fx, "GET", VMIS "/nope", NULL, NULL);
    assert_int_equal(nf->status, 404);
    assert_string_equal(jstr(nf->body, "message"),
                        "virtualmachineinstances.kubevirt.io \"nope\" not found");
    fx_free(fx);
}

static void
test_status_semantics(void **state)
{
    Fx *fx = fx_new(0, 0);
    g_autoptr(Resp) c = create_vmi(fx, "vm1", "\"app\":\"a\"");
    /* Create drops status for a kind with a status subresource. */
    assert_null(jstr(c->body, "status.phase"));
    g_autoptr(Resp) s = http(fx, "PATCH", VMIS "/vm1/status", "application/merge-patch+json",
                             "{\"status\":{\"phase\":\"Scheduled\"},\"spec\":{\"domain\":"
                             "{\"memory\":\"1Gi\"}},\"metadata\":{\"labels\":{\"app\":\"b\"}}}");
    assert_int_equal(s->status, 200);
    assert_string_equal(jstr(s->body, "status.phase"), "Scheduled");
    assert_string_equal(jstr(s->body, "spec.domain.memory"), "64Mi");
    assert_string_equal(jstr(s->body, "metadata.labels.app"), "a");
    assert_string_equal(jstr(s->body, "metadata.generation"), "1");
    /* A main-resource write ignores status and bumps generation on spec changes only. */
    g_autoptr(Resp) m = http(fx, "PATCH", VMIS "/vm1", "application/merge-patch+json",
                             "{\"status\":{\"phase\":\"Failed\"},\"spec\":{\"domain\":"
                             "{\"memory\":\"2Gi\"}}}");
    assert_int_equal(m->status, 200);
    assert_string_equal(jstr(m->body, "status.phase"), "Scheduled");
    assert_string_equal(jstr(m->body, "spec.domain.memory"), "2Gi");
    assert_string_equal(jstr(m->body, "metadata.generation"), "2");
    g_autoptr(Resp) l = http(fx, "PATCH", VMIS "/vm1", "application/merge-patch+json",
                             "{\"metadata\":{\"labels\":{\"x\":\"y\"}}}");
    assert_string_equal(jstr(l->body, "metadata.generation"), "2");
    /* A no-op write keeps the resourceVersion. */
    g_autoptr(Resp) n = http(fx, "PATCH", VMIS "/vm1", "application/merge-patch+json",
                             "{\"metadata\":{\"labels\":{\"x\":\"y\"}}}");
    assert_int_equal(rv_of(n->body), rv_of(l->body));
    /* PUT on /status with a stale resourceVersion is a conflict too. */
    g_autofree char *stale = json_to_string(s->body, FALSE);
    g_autoptr(Resp) ps = http(fx, "PUT", VMIS "/vm1/status", NULL, stale);
    assert_int_equal(ps->status, 409);
    fx_free(fx);
}

static void
test_patches(void **state)
{
    Fx *fx = fx_new(0, 0);
    g_autoptr(Resp) c = create_vmi(fx, "vm1", "\"a\":\"1\",\"b\":\"2\"");
    g_autoptr(Resp) m = http(fx, "PATCH", VMIS "/vm1", "application/merge-patch+json",
                             "{\"metadata\":{\"labels\":{\"a\":null,\"c\":\"3\"}}}");
    assert_int_equal(m->status, 200);
    assert_null(jstr(m->body, "metadata.labels.a"));
    assert_string_equal(jstr(m->body, "metadata.labels.b"), "2");
    assert_string_equal(jstr(m->body, "metadata.labels.c"), "3");
    g_autoptr(Resp) j = http(
        fx, "PATCH", VMIS "/vm1", "application/json-patch+json",
        "[{\"op\":\"test\",\"path\":\"/metadata/labels/b\",\"value\":\"2\"},"
        "{\"op\":\"replace\",\"path\":\"/metadata/labels/b\",\"value\":\"20\"},"
        "{\"op\":\"add\",\"path\":\"/metadata/finalizers\",\"value\":[\"x/y\"]},"
        "{\"op\":\"add\",\"path\":\"/metadata/finalizers/-\",\"value\":\"z\"},"
        "{\"op\":\"add\",\"path\":\"/metadata/finalizers/0\",\"value\":\"first\"},"
        "{\"op\":\"remove\",\"path\":\"/metadata/labels/c\"},"
        "{\"op\":\"copy\",\"from\":\"/metadata/name\",\"path\":\"/metadata/labels/n\"},"
        "{\"op\":\"move\",\"from\":\"/metadata/labels/n\",\"path\":\"/metadata/labels/m~1x\"}]");
    assert_int_equal(j->status, 200);
    assert_string_equal(jstr(j->body, "metadata.labels.b"), "20");
    assert_null(jstr(j->body, "metadata.labels.c"));
    assert_string_equal(jstr(j->body, "metadata.finalizers[0]"), "first");
    assert_string_equal(jstr(j->body, "metadata.finalizers[1]"), "x/y");
    assert_string_equal(jstr(j->body, "metadata.finalizers[2]"), "z");
    assert_string_equal(jstr(j->body, "metadata.labels['m/x']"), "vm1");
    guint64 rv = rv_of(j->body);
    /* A failed test changes nothing and is 422 Invalid. */
    g_autoptr(Resp) t = http(fx, "PATCH", VMIS "/vm1", "application/json-patch+json",
                             "[{\"op\":\"test\",\"path\":\"/metadata/labels/b\",\"value\":\"2\"},"
                             "{\"op\":\"replace\",\"path\":\"/metadata/labels/b\",\"value\":"
                             "\"x\"}]");
    assert_int_equal(t->status, 422);
    assert_string_equal(jstr(t->body, "reason"), "Invalid");
    g_autoptr(Resp) g = http(fx, "GET", VMIS "/vm1", NULL, NULL);
    assert_int_equal(rv_of(g->body), rv);
    assert_string_equal(jstr(g->body, "metadata.labels.b"), "20");
    /* A JSON-patch test on resourceVersion is a precondition. */
    g_autofree char *pre = g_strdup_printf(
        "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"%" G_GUINT64_FORMAT
        "\"},{\"op\":\"replace\",\"path\":\"/metadata/labels/b\",\"value\":\"21\"}]",
        rv - 1);
    g_autoptr(Resp) pr = http(fx, "PATCH", VMIS "/vm1", "application/json-patch+json", pre);
    assert_int_equal(pr->status, 422);
    /* Merge patch carrying a stale resourceVersion: 409. */
    g_autoptr(Resp) mr =
        http(fx, "PATCH", VMIS "/vm1", "application/merge-patch+json",
             "{\"metadata\":{\"resourceVersion\":\"1\",\"labels\":{\"q\":\"1\"}}}");
    assert_int_equal(mr->status, 409);
    /* Strategic merge patch: 415 for custom resources (as kube-apiserver), merge for core. */
    g_autoptr(Resp) smp = http(fx, "PATCH", VMIS "/vm1", "application/strategic-merge-patch+json",
                               "{\"metadata\":{\"labels\":{\"q\":\"1\"}}}");
    assert_int_equal(smp->status, 415);
    g_autoptr(Resp) pod = http(fx, "POST", "/api/v1/namespaces/ns1/pods", NULL,
                               "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                               "\"p1\"},\"spec\":{\"nodeName\":\"node-a\"}}");
    assert_int_equal(pod->status, 201);
    g_autoptr(Resp) psmp = http(
        fx, "PATCH", "/api/v1/namespaces/ns1/pods/p1", "application/strategic-merge-patch+json",
        "{\"$setElementOrder/containers\":[],\"metadata\":{\"labels\":{\"q\":\"1\"}}}");
    assert_int_equal(psmp->status, 200);
    assert_string_equal(jstr(psmp->body, "metadata.labels.q"), "1");
    assert_null(jstr(psmp->body, "$setElementOrder/containers"));
    fx_free(fx);
}

static void
test_watch_from_rv(void **state)
{
    Fx *fx = fx_new(0, 0);
    g_autoptr(Resp) a = create_vmi(fx, "a", NULL);
    g_autoptr(Resp) b = create_vmi(fx, "b", NULL);
    guint64 rv = rv_of(b->body);
    g_autoptr(Resp) m = http(fx, "PATCH", VMIS "/a", "application/merge-patch+json",
                             "{\"metadata\":{\"labels\":{\"x\":\"1\"}}}");
    g_autofree char *path = g_strdup_printf(VMIS "?watch=1&resourceVersion=%" G_GUINT64_FORMAT, rv);
    W *w = watch_start(fx, path);
    assert_int_equal(w->status, 200);
    watch_wait(w, 1, 5000);
    assert_int_equal(w->events->len, 1);
    assert_string_equal(ev_type(w, 0), "MODIFIED");
    assert_string_equal(ev_name(w, 0), "a");
    /* Live events follow, in order, DELETED carrying the deletion resourceVersion. */
    g_autoptr(Resp) d = http(fx, "DELETE", VMIS "/b", NULL, NULL);
    assert_int_equal(d->status, 200);
    watch_wait(w, 2, 5000);
    assert_string_equal(ev_type(w, 1), "DELETED");
    assert_string_equal(ev_name(w, 1), "b");
    assert_true(rv_of(json_object_get_member(json_node_get_object(g_ptr_array_index(w->events, 1)),
                                             "object")) > rv_of(m->body));
    assert_int_equal(vmig_test_apiserver_count_open_watches(fx->server), 1);
    watch_free_(w);
    /* Without a resourceVersion: ADDED for what exists now. */
    W *w0 = watch_start(fx, VMIS "?watch=true");
    watch_wait(w0, 1, 5000);
    assert_int_equal(w0->events->len, 1);
    assert_string_equal(ev_type(w0, 0), "ADDED");
    assert_string_equal(ev_name(w0, 0), "a");
    watch_free_(w0);
    /* timeoutSeconds ends the stream cleanly. */
    W *wt = watch_start(fx, VMIS "?watch=1&timeoutSeconds=1&resourceVersion=1");
    watch_wait(wt, 100, 5000);
    assert_true(wt->closed);
    assert_false(wt->error);
    watch_free_(wt);
    fx_free(fx);
}

static void
test_bookmarks(void **state)
{
    Fx *fx = fx_new(0, 50);
    g_autoptr(Resp) a = create_vmi(fx, "a", NULL);
    W *w = watch_start(fx, VMIS "?watch=1&allowWatchBookmarks=true&resourceVersion=1");
    watch_wait(w, 2, 5000);
    assert_true(w->events->len >= 2);
    assert_string_equal(ev_type(w, 1), "BOOKMARK");
    JsonNode *ev = g_ptr_array_index(w->events, 1);
    assert_string_equal(jstr(ev, "object.kind"), "VirtualMachineInstance");
    assert_string_equal(jstr(ev, "object.apiVersion"), "kubevirt.io/v1");
    assert_int_equal(g_ascii_strtoull(jstr(ev, "object.metadata.resourceVersion"), NULL, 10),
                     vmig_test_apiserver_get_resource_version(fx->server));
    watch_free_(w);
    /* No bookmarks unless asked. */
    W *n = watch_start(fx, VMIS "?watch=1&resourceVersion=1");
    watch_wait(n, 5, 300);
    assert_int_equal(n->events->len, 0);
    watch_free_(n);
    fx_free(fx);
}

static void
test_expired_410(void **state)
{
    Fx *fx = fx_new(3, 0);
    for (int i = 0; i < 6; i++) {
        g_autofree char *name = g_strdup_printf("vm%d", i);
        g_autoptr(Resp) r = create_vmi(fx, name, NULL);
    }
    /* Shape 1: the HTTP status of the watch request. */
    g_autoptr(Resp) h = http(fx, "GET", VMIS "?watch=1&resourceVersion=1", NULL, NULL);
    assert_int_equal(h->status, 410);
    assert_string_equal(jstr(h->body, "reason"), "Expired");
    assert_string_equal(jstr(h->body, "code"), "410");
    /* Inside the window it works. */
    W *ok = watch_start(fx, VMIS "?watch=1&resourceVersion=3");
    watch_wait(ok, 3, 5000);
    assert_int_equal(ok->events->len, 3);
    watch_free_(ok);
    /* Shape 2: an ERROR event in a 200 stream. */
    vmig_test_apiserver_expire_next_watch(fx->server, VMIG_TEST_APISERVER_EXPIRE_STREAM, 1);
    W *s = watch_start(fx, VMIS "?watch=1&resourceVersion=5");
    assert_int_equal(s->status, 200);
    watch_wait(s, 1, 5000);
    assert_string_equal(ev_type(s, 0), "ERROR");
    JsonNode *e = g_ptr_array_index(s->events, 0);
    assert_string_equal(jstr(e, "object.code"), "410");
    assert_string_equal(jstr(e, "object.reason"), "Expired");
    watch_free_(s);
    /* The fault is used up; compaction now expires every older resourceVersion. */
    vmig_test_apiserver_compact(fx->server);
    g_autoptr(Resp) h2 = http(fx, "GET", VMIS "?watch=1&resourceVersion=5", NULL, NULL);
    assert_int_equal(h2->status, 410);
    vmig_test_apiserver_expire_next_watch(fx->server, VMIG_TEST_APISERVER_EXPIRE_HTTP, 1);
    g_autoptr(Resp) h3 = http(fx, "GET", VMIS "?watch=1&resourceVersion=6", NULL, NULL);
    assert_int_equal(h3->status, 410);
    fx_free(fx);
}

static void
test_selectors(void **state)
{
    Fx *fx = fx_new(0, 0);
    g_autoptr(Resp) a = create_vmi(fx, "a", "\"env\":\"prod\",\"tier\":\"web\"");
    g_autoptr(Resp) b = create_vmi(fx, "b", "\"env\":\"dev\"");
    g_autoptr(Resp) c = create_vmi(fx, "c", NULL);
    static const struct {
        const char *selector;
        const char *names;
    } cases[] = {
        {"env%3Dprod", "a"},
        {"env%3D%3Ddev", "b"},
        {"env!%3Dprod", "b,c"},
        {"env%20in%20(prod,dev)", "a,b"},
        {"env%20notin%20(prod)", "b,c"},
        {"env", "a,b"},
        {"!env", "c"},
        {"env,tier%3Dweb", "a"},
        {"", "a,b,c"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf(VMIS "?labelSelector=%s", cases[i].selector);
        g_autoptr(Resp) r = http(fx, "GET", path, NULL, NULL);
        assert_int_equal(r->status, 200);
        JsonArray *items = json_object_get_array_member(json_node_get_object(r->body), "items");
        g_autoptr(GString) got = g_string_new(NULL);
        for (guint k = 0; k < json_array_get_length(items); k++)
            g_string_append_printf(got, "%s%s", k ? "," : "",
                                   jstr(json_array_get_element(items, k), "metadata.name"));
        if (!g_str_equal(got->str, cases[i].names))
            fail_msg("selector %s: got %s want %s", cases[i].selector, got->str, cases[i].names);
    }
    g_autoptr(Resp) bad = http(fx, "GET", VMIS "?labelSelector=a%20in%20b", NULL, NULL);
    assert_int_equal(bad->status, 400);
    /* Field selectors: custom resources only metadata.name/namespace, else 400. */
    g_autoptr(Resp) f1 = http(fx, "GET", VMIS "?fieldSelector=metadata.name%3Db", NULL, NULL);
    assert_int_equal(f1->status, 200);
    assert_int_equal(json_array_get_length(
                         json_object_get_array_member(json_node_get_object(f1->body), "items")),
                     1);
    g_autoptr(Resp) f2 = http(fx, "GET", VMIS "?fieldSelector=status.phase%3DRunning", NULL, NULL);
    assert_int_equal(f2->status, 400);
    assert_string_equal(jstr(f2->body, "reason"), "BadRequest");
    assert_string_equal(jstr(f2->body, "message"), "field label not supported: status.phase");
    g_autoptr(Resp) f3 = http(fx, "GET",
                              "/apis/kubevirt.io/v1/virtualmachineinstances?watch=1&"
                              "fieldSelector=status.nodeName%3Dx",
                              NULL, NULL);
    assert_int_equal(f3->status, 400);
    /* Core kinds: the fields kube indexes. */
    g_autoptr(Resp) p1 = http(fx, "POST", "/api/v1/namespaces/ns1/pods", NULL,
                              "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                              "\"p1\"},\"spec\":{\"nodeName\":\"node-a\"}}");
    g_autoptr(Resp) p2 = http(fx, "POST", "/api/v1/namespaces/ns2/pods", NULL,
                              "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                              "\"p2\"},\"spec\":{\"nodeName\":\"node-b\"}}");
    g_autoptr(Resp) pf =
        http(fx, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-b", NULL, NULL);
    assert_int_equal(pf->status, 200);
    assert_string_equal(jstr(pf->body, "items[0].metadata.name"), "p2");
    assert_int_equal(json_array_get_length(
                         json_object_get_array_member(json_node_get_object(pf->body), "items")),
                     1);
    g_autoptr(Resp) nf =
        http(fx, "GET", "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse", NULL, NULL);
    assert_int_equal(nf->status, 200);
    g_autoptr(Resp) ef = http(
        fx, "GET", "/api/v1/events?fieldSelector=involvedObject.name%3Dvm1,reason%3DX", NULL, NULL);
    assert_int_equal(ef->status, 200);
    g_autoptr(Resp) pbad =
        http(fx, "GET", "/api/v1/pods?fieldSelector=spec.hostname%3Dx", NULL, NULL);
    assert_int_equal(pbad->status, 400);
    /* A watch with a selector sees an object leave it as DELETED. */
    W *w = watch_start(fx, VMIS "?watch=1&labelSelector=env%3Dprod");
    watch_wait(w, 1, 5000);
    g_autoptr(Resp) mv = http(fx, "PATCH", VMIS "/a", "application/merge-patch+json",
                              "{\"metadata\":{\"labels\":{\"env\":\"dev\"}}}");
    watch_wait(w, 2, 5000);
    assert_string_equal(ev_type(w, 1), "DELETED");
    watch_free_(w);
    fx_free(fx);
}

static void
test_finalizers_and_preconditions(void **state)
{
    Fx *fx = fx_new(0, 0);
    g_autoptr(Resp) c = http(fx, "POST", VMIS, NULL,
                             "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":"
                             "\"VirtualMachineInstance\",\"metadata\":{\"name\":\"vm1\","
                             "\"finalizers\":[\"vmig.io/test\"]}}");
    assert_int_equal(c->status, 201);
    W *w = watch_start(fx, VMIS "?watch=1&resourceVersion=1");
    /* Preconditions. */
    g_autoptr(Resp) pu =
        http(fx, "DELETE", VMIS "/vm1", NULL,
             "{\"preconditions\":{\"uid\":\"00000000-0000-0000-0000-000000000000\"}}");
    assert_int_equal(pu->status, 409);
    assert_non_null(strstr(jstr(pu->body, "message"), "Precondition failed: UID in precondition"));
    g_autoptr(Resp) pr =
        http(fx, "DELETE", VMIS "/vm1", NULL, "{\"preconditions\":{\"resourceVersion\":\"999\"}}");
    assert_int_equal(pr->status, 409);
    g_autofree char *good =
        g_strdup_printf("{\"preconditions\":{\"uid\":\"%s\"}}", jstr(c->body, "metadata.uid"));
    g_autoptr(Resp) d = http(fx, "DELETE", VMIS "/vm1", NULL, good);
    assert_int_equal(d->status, 200);
    assert_non_null(jstr(d->body, "metadata.deletionTimestamp"));
    g_autoptr(Resp) still = http(fx, "GET", VMIS "/vm1", NULL, NULL);
    assert_int_equal(still->status, 200);
    watch_wait(w, 1, 5000);
    assert_string_equal(ev_type(w, 0), "MODIFIED");
    g_autoptr(Resp) f = http(fx, "PATCH", VMIS "/vm1", "application/merge-patch+json",
                             "{\"metadata\":{\"finalizers\":null}}");
    assert_int_equal(f->status, 200);
    watch_wait(w, 2, 5000);
    assert_string_equal(ev_type(w, 1), "DELETED");
    g_autoptr(Resp) gone = http(fx, "GET", VMIS "/vm1", NULL, NULL);
    assert_int_equal(gone->status, 404);
    watch_free_(w);
    fx_free(fx);
}

static void
test_generate_name_and_paging(void **state)
{
    Fx *fx = fx_new(0, 0);
    for (int i = 0; i < 5; i++) {
        g_autoptr(Resp) r = http(fx, "POST",
                                 "/apis/kubevirt.io/v1/namespaces/ns1/"
                                 "virtualmachineinstancemigrations",
                                 NULL,
                                 "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":"
                                 "\"VirtualMachineInstanceMigration\",\"metadata\":"
                                 "{\"generateName\":\"mig-\"},\"spec\":{\"vmiName\":\"vm1\"}}");
        assert_int_equal(r->status, 201);
        const char *name = jstr(r->body, "metadata.name");
        assert_true(g_str_has_prefix(name, "mig-"));
        assert_int_equal(strlen(name), 9);
    }
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *cont = NULL;
    guint pages = 0;
    guint64 first_rv = 0;
    do {
        g_autofree char *path = g_strdup_printf(
            "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations?limit=2%s%s",
            cont ? "&continue=" : "", cont ? cont : "");
        g_autoptr(Resp) r = http(fx, "GET", path, NULL, NULL);
        assert_int_equal(r->status, 200);
        if (!first_rv)
            first_rv = rv_of(r->body);
        assert_int_equal(rv_of(r->body), first_rv);
        JsonArray *items = json_object_get_array_member(json_node_get_object(r->body), "items");
        assert_true(json_array_get_length(items) <= 2);
        for (guint k = 0; k < json_array_get_length(items); k++)
            assert_true(g_hash_table_add(
                seen, g_strdup(jstr(json_array_get_element(items, k), "metadata.name"))));
        g_free(cont);
        const char *c = jstr(r->body, "metadata.continue");
        cont = c ? g_uri_escape_string(c, NULL, TRUE) : NULL;
        pages++;
    } while (cont);
    assert_int_equal(pages, 3);
    assert_int_equal(g_hash_table_size(seen), 5);
    fx_free(fx);
}

static void
test_auth_401(void **state)
{
    Fx *fx = fx_new(0, 0);
    g_autoptr(Resp) none = http_token(fx, "GET", VMIS, NULL, NULL, NULL);
    assert_int_equal(none->status, 401);
    assert_string_equal(jstr(none->body, "reason"), "Unauthorized");
    assert_string_equal(jstr(none->body, "kind"), "Status");
    g_autoptr(Resp) bad = http_token(fx, "GET", "/api", NULL, NULL, "wrong");
    assert_int_equal(bad->status, 401);
    g_autoptr(Resp) ok = http(fx, "GET", "/api", NULL, NULL);
    assert_int_equal(ok->status, 200);
    g_autoptr(Resp) ctl = http_token(fx, "GET", "/_test/stats", NULL, NULL, "wrong");
    assert_int_equal(ctl->status, 401);
    fx_free(fx);
}

static void
test_discovery(void **state)
{
    Fx *fx = fx_new(0, 0);
    g_autoptr(Resp) v = http(fx, "GET", "/version", NULL, NULL);
    assert_string_equal(jstr(v->body, "major"), "1");
    g_autoptr(Resp) g = http(fx, "GET", "/apis", NULL, NULL);
    assert_string_equal(jstr(g->body, "kind"), "APIGroupList");
    g_autoptr(Resp) r = http(fx, "GET", "/apis/kubevirt.io/v1", NULL, NULL);
    assert_string_equal(jstr(r->body, "kind"), "APIResourceList");
    JsonArray *res = json_object_get_array_member(json_node_get_object(r->body), "resources");
    gboolean status_sub = FALSE, short_names = FALSE;
    for (guint i = 0; i < json_array_get_length(res); i++) {
        JsonObject *e = json_array_get_object_element(res, i);
        const char *name = json_object_get_string_member(e, "name");
        if (g_str_equal(name, "virtualmachineinstances/status"))
            status_sub =
                g_str_equal(json_object_get_string_member(e, "kind"), "VirtualMachineInstance");
        if (g_str_equal(name, "virtualmachineinstancemigrations"))
            short_names = g_str_equal(
                json_array_get_string_element(json_object_get_array_member(e, "shortNames"), 0),
                "vmim");
    }
    assert_true(status_sub);
    assert_true(short_names);
    g_autoptr(Resp) core = http(fx, "GET", "/api/v1", NULL, NULL);
    assert_int_equal(core->status, 200);
    g_autoptr(Resp) mp = http(fx, "GET", "/apis/migrations.kubevirt.io/v1alpha1", NULL, NULL);
    assert_string_equal(jstr(mp->body, "resources[0].name"), "migrationpolicies");
    assert_string_equal(jstr(mp->body, "groupVersion"), "migrations.kubevirt.io/v1alpha1");
    fx_free(fx);
}

static void
test_faults(void **state)
{
    Fx *fx = fx_new(0, 0);
    g_autoptr(Resp) a = create_vmi(fx, "a", NULL);
    /* Failed writes: matching ones fail, the rest go through. */
    vmig_test_apiserver_fail_next_writes(fx->server, 1, 500, "patch",
                                         "virtualmachineinstances/status", "a");
    g_autoptr(Resp) p1 = http(fx, "PATCH", VMIS "/a", "application/merge-patch+json",
                              "{\"metadata\":{\"labels\":{\"x\":\"1\"}}}");
    assert_int_equal(p1->status, 200);
    g_autoptr(Resp) p2 = http(fx, "PATCH", VMIS "/a/status", "application/merge-patch+json",
                              "{\"status\":{\"phase\":\"X\"}}");
    assert_int_equal(p2->status, 500);
    assert_string_equal(jstr(p2->body, "reason"), "InternalError");
    g_autoptr(Resp) p3 = http(fx, "PATCH", VMIS "/a/status", "application/merge-patch+json",
                              "{\"status\":{\"phase\":\"X\"}}");
    assert_int_equal(p3->status, 200);
    g_autoptr(Resp) f = http(fx, "POST", "/_test/faults", NULL,
                             "{\"action\":\"fail-writes\",\"count\":2,\"code\":409}");
    assert_int_equal(f->status, 200);
    for (int i = 0; i < 3; i++) {
        g_autoptr(Resp) r = http(fx, "PATCH", VMIS "/a", "application/merge-patch+json",
                                 "{\"metadata\":{\"labels\":{\"y\":\"1\"}}}");
        assert_int_equal(r->status, i < 2 ? 409 : 200);
    }
    /* Split stream writes: events still arrive whole to a line reader. */
    vmig_test_apiserver_split_writes(fx->server, 1, 7);
    W *w = watch_start(fx, VMIS "?watch=1");
    watch_wait(w, 1, 5000);
    assert_string_equal(ev_name(w, 0), "a");
    /* Stall: nothing more arrives, but the connection stays. */
    vmig_test_apiserver_stall_watches(fx->server, NULL, 0);
    g_autoptr(Resp) b = create_vmi(fx, "b", NULL);
    watch_wait(w, 2, 300);
    assert_int_equal(w->events->len, 1);
    assert_false(w->closed);
    /* Cut: the stream ends with an error. */
    vmig_test_apiserver_cut_watches(fx->server, NULL, TRUE);
    watch_wait(w, 2, 5000);
    assert_true(w->closed);
    assert_int_equal(vmig_test_apiserver_count_open_watches(fx->server), 0);
    watch_free_(w);
    vmig_test_apiserver_split_writes(fx->server, 0, 0);
    /* Clean close over HTTP. */
    W *w2 = watch_start(fx, VMIS "?watch=1&resourceVersion=1");
    watch_wait(w2, 1, 5000);
    g_autoptr(Resp) cut =
        http(fx, "POST", "/_test/faults", NULL, "{\"action\":\"cut-watches\",\"mode\":\"close\"}");
    assert_int_equal(cut->status, 200);
    watch_wait(w2, 100, 5000);
    assert_true(w2->closed);
    assert_false(w2->error);
    watch_free_(w2);
    /* Counters and the request log. */
    assert_int_equal(
        vmig_test_apiserver_count_requests(fx->server, "watch", "virtualmachineinstances"), 2);
    /* 1 + 2 (one failed by the fault) + 3 (two failed) patches, failures counted too. */
    assert_int_equal(vmig_test_apiserver_count_requests(fx->server, "patch", NULL), 6);
    g_auto(GStrv) recent = vmig_test_apiserver_get_recent_requests(fx->server);
    gboolean found = FALSE;
    for (char **r = recent; *r; r++)
        found |= g_str_equal(*r, "GET " VMIS "?watch=1&resourceVersion=1");
    assert_true(found);
    g_autoptr(Resp) st = http(fx, "GET", "/_test/stats", NULL, NULL);
    assert_string_equal(jstr(st->body, "requests['watch virtualmachineinstances']"), "2");
    g_autoptr(Resp) bad = http(fx, "POST", "/_test/faults", NULL, "{\"action\":\"nope\"}");
    assert_int_equal(bad->status, 400);
    fx_free(fx);
}

static void
test_many_objects_watch(void **state)
{
    Fx *fx = fx_new(0, 0);
    for (int i = 0; i < 1000; i++) {
        g_autofree char *obj = g_strdup_printf(
            "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstance\",\"metadata\":"
            "{\"name\":\"vm%04d\",\"namespace\":\"ns1\"},\"status\":{\"phase\":\"Running\"}}",
            i);
        g_autoptr(JsonNode) n = json_from_string(obj, NULL);
        assert_true(vmig_test_apiserver_put_object(fx->server, n, NULL) > 0);
    }
    W *w = watch_start(fx, VMIS "?watch=1");
    watch_wait(w, 1000, 20000);
    assert_int_equal(w->events->len, 1000);
    assert_string_equal(ev_name(w, 999), "vm0999");
    assert_string_equal(jstr(g_ptr_array_index(w->events, 5), "object.status.phase"), "Running");
    W *w2 = watch_start(fx, VMIS "?watch=1&resourceVersion=1");
    watch_wait(w2, 999, 20000);
    assert_int_equal(w2->events->len, 999);
    watch_free_(w2);
    watch_free_(w);
    fx_free(fx);
}

static void
test_every_kind_and_seeding(void **state)
{
    Fx *fx = fx_new(0, 0);
    static const struct {
        const char *collection, *api_version, *kind;
    } kinds[] = {
        {"/api/v1/namespaces", "v1", "Namespace"},
        {"/api/v1/nodes", "v1", "Node"},
        {"/api/v1/namespaces/ns1/pods", "v1", "Pod"},
        {"/api/v1/namespaces/ns1/persistentvolumeclaims", "v1", "PersistentVolumeClaim"},
        {"/api/v1/namespaces/ns1/events", "v1", "Event"},
        {"/apis/coordination.k8s.io/v1/namespaces/ns1/leases", "coordination.k8s.io/v1", "Lease"},
        {"/apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstances", "kubevirt.io/v1",
         "VirtualMachineInstance"},
        {"/apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations", "kubevirt.io/v1",
         "VirtualMachineInstanceMigration"},
        {"/apis/kubevirt.io/v1/namespaces/kubevirt/kubevirts", "kubevirt.io/v1", "KubeVirt"},
        {"/apis/migrations.kubevirt.io/v1alpha1/migrationpolicies",
         "migrations.kubevirt.io/v1alpha1", "MigrationPolicy"},
        {"/apis/cdi.kubevirt.io/v1beta1/namespaces/ns1/datavolumes", "cdi.kubevirt.io/v1beta1",
         "DataVolume"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(kinds); i++) {
        g_autofree char *body = g_strdup_printf(
            "{\"apiVersion\":\"%s\",\"kind\":\"%s\",\"metadata\":{\"name\":\"x%zu\"}}",
            kinds[i].api_version, kinds[i].kind, i);
        g_autoptr(Resp) c = http(fx, "POST", kinds[i].collection, NULL, body);
        if (c->status != 201)
            fail_msg("create %s: %u", kinds[i].kind, c->status);
        g_autofree char *item = g_strdup_printf("%s/x%zu", kinds[i].collection, i);
        g_autoptr(Resp) g = http(fx, "GET", item, NULL, NULL);
        assert_int_equal(g->status, 200);
        assert_string_equal(jstr(g->body, "kind"), kinds[i].kind);
        g_autoptr(Resp) d = http(fx, "DELETE", item, NULL, NULL);
        assert_int_equal(d->status, 200);
    }
    /* A kind in the body that does not match the URL is refused. */
    g_autoptr(Resp) wrong = http(fx, "POST", VMIS, NULL,
                                 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":"
                                 "{\"name\":\"p\"}}");
    assert_int_equal(wrong->status, 400);
    g_autoptr(Resp) bad_name = http(fx, "POST", VMIS, NULL, "{\"metadata\":{\"name\":\"../x\"}}");
    assert_int_equal(bad_name->status, 422);
    /* Seeding keeps status: a YAML file with two documents and a List. */
    g_autofree char *path = g_build_filename(fx->dir, "seed.yaml", NULL);
    const char *yaml = "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\n"
                       "metadata: {name: seeded, namespace: ns1}\n"
                       "status: {phase: Running, nodeName: node-a}\n---\n"
                       "apiVersion: v1\nkind: List\nitems:\n"
                       "- apiVersion: v1\n  kind: Node\n  metadata: {name: node-a}\n"
                       "  spec: {unschedulable: true}\n";
    assert_true(g_file_set_contents(path, yaml, -1, NULL));
    g_autoptr(GError) error = NULL;
    assert_true(vmig_test_apiserver_load_file(fx->server, path, &error));
    g_unlink(path);
    g_autoptr(JsonNode) vmi =
        vmig_test_apiserver_get_object(fx->server, "virtualmachineinstances", "ns1", "seeded");
    assert_non_null(vmi);
    assert_string_equal(jstr(vmi, "status.nodeName"), "node-a");
    g_autoptr(Resp) nf =
        http(fx, "GET", "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue", NULL, NULL);
    assert_string_equal(jstr(nf->body, "items[0].metadata.name"), "node-a");
    /* Over HTTP too, and bad input names the problem. */
    g_autoptr(Resp) so = http(fx, "POST", "/_test/objects", NULL,
                              "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":"
                              "\"VirtualMachineInstance\",\"metadata\":{\"name\":\"s2\","
                              "\"namespace\":\"ns1\"},\"status\":{\"phase\":\"Failed\"}}");
    assert_int_equal(so->status, 200);
    g_autoptr(Resp) s2 = http(fx, "GET", VMIS "/s2", NULL, NULL);
    assert_string_equal(jstr(s2->body, "status.phase"), "Failed");
    g_autoptr(Resp) sbad = http(fx, "POST", "/_test/objects", NULL,
                                "{\"apiVersion\":\"x/v1\",\"kind\":\"Nope\",\"metadata\":"
                                "{\"name\":\"a\"}}");
    assert_int_equal(sbad->status, 400);
    assert_non_null(strstr(jstr(sbad->body, "message"), "not served"));
    fx_free(fx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resource_version_monotonic),
        cmocka_unit_test(test_conflict_409),
        cmocka_unit_test(test_status_semantics),
        cmocka_unit_test(test_patches),
        cmocka_unit_test(test_watch_from_rv),
        cmocka_unit_test(test_bookmarks),
        cmocka_unit_test(test_expired_410),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_finalizers_and_preconditions),
        cmocka_unit_test(test_generate_name_and_paging),
        cmocka_unit_test(test_auth_401),
        cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_every_kind_and_seeding),
        cmocka_unit_test(test_many_objects_watch),
    };
    /* VMIG_TEST_FILTER=test_faults runs one case (cmocka's glob filter). */
    if (g_getenv("VMIG_TEST_FILTER"))
        cmocka_set_test_filter(g_getenv("VMIG_TEST_FILTER"));
    if (g_getenv("VMIG_TEST_SKIP"))
        cmocka_set_skip_filter(g_getenv("VMIG_TEST_SKIP"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
