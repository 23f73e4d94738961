/* kube-fake.c - scripted fake API server for the kube tests (see kube-fake.h). */
#include "kube-fake.h"

#include <string.h>

static void
fake_dispatch(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
              gpointer user_data)
{
    FakeServer *fake = user_data;
    GUri *uri = soup_server_message_get_uri(msg);
    const char *q = g_uri_get_query(uri);
    const char *method = soup_server_message_get_method(msg);
    g_ptr_array_add(fake->log,
                    g_strdup_printf("%s %s%s%s", method, path, q ? "?" : "", q ? q : ""));
    fake->handler(fake, msg, method, path, query, fake->user_data);
}

FakeServer *
fake_server_new(FakeHandler handler, gpointer user_data)
{
    FakeServer *fake = g_new0(FakeServer, 1);
    fake->handler = handler;
    fake->user_data = user_data;
    fake->log = g_ptr_array_new_with_free_func(g_free);
    fake->held = g_ptr_array_new_with_free_func(g_object_unref);
    fake->server = soup_server_new(NULL, NULL);
    soup_server_add_handler(fake->server, NULL, fake_dispatch, fake, NULL);
    g_autoptr(GError) err = NULL;
    if (!soup_server_listen_local(fake->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &err))
        g_error("fake server: %s", err->message);
    GSList *uris = soup_server_get_uris(fake->server);
    GUri *u = uris->data;
    fake->url = g_strdup_printf("http://127.0.0.1:%d", g_uri_get_port(u));
    g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
    return fake;
}

void
fake_server_free(FakeServer *fake)
{
    g_clear_pointer(&fake->client, vmig_kube_client_unref);
    for (guint i = 0; i < fake->held->len; i++) {
        SoupServerMessage *m = fake->held->pdata[i];
        soup_message_body_complete(soup_server_message_get_response_body(m));
        soup_server_message_unpause(m);
    }
    fake_drain(50);
    soup_server_disconnect(fake->server);
    fake_drain(20);
    g_object_unref(fake->server);
    g_ptr_array_unref(fake->held);
    g_ptr_array_unref(fake->log);
    g_free(fake->url);
    g_free(fake);
    fake_drain(20);
}

VmigKubeClient *
fake_client(FakeServer *fake)
{
    VmigKubeConfig cfg = {.server = fake->url};
    g_autoptr(GError) err = NULL;
    VmigKubeClient *c = vmig_kube_client_new(&cfg, &err);
    if (!c)
        g_error("client: %s", err->message);
    fake->client = c;
    return c;
}

guint
fake_count(FakeServer *fake, const char *needle)
{
    guint n = 0;
    for (guint i = 0; i < fake->log->len; i++)
        if (strstr(fake->log->pdata[i], needle))
            n++;
    return n;
}

const char *
fake_query(GHashTable *query, const char *key)
{
    return query ? g_hash_table_lookup(query, key) : NULL;
}

char *
fake_body(SoupServerMessage *msg)
{
    SoupMessageBody *b = soup_server_message_get_request_body(msg);
    GBytes *bytes = soup_message_body_flatten(b);
    gsize len = 0;
    const char *d = g_bytes_get_data(bytes, &len);
    char *s = g_strndup(d, len);
    g_bytes_unref(bytes);
    return s;
}

void
fake_reply_json(SoupServerMessage *msg, guint status, const char *json)
{
    soup_server_message_set_status(msg, status, NULL);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, json, strlen(json));
}

void
fake_reply_status(SoupServerMessage *msg, guint code, const char *reason, const char *message)
{
    g_autofree char *j = g_strdup_printf(
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"code\":%u,"
        "\"reason\":\"%s\",\"message\":\"%s\"}",
        code, reason, message);
    fake_reply_json(msg, code, j);
}

void
fake_stream_begin(SoupServerMessage *msg)
{
    soup_server_message_set_status(msg, 200, NULL);
    SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
    soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
    soup_message_headers_set_content_type(h, "application/json", NULL);
}

void
fake_stream_write(SoupServerMessage *msg, const char *data, gsize len)
{
    soup_message_body_append(soup_server_message_get_response_body(msg), SOUP_MEMORY_COPY, data,
                             len);
    soup_server_message_unpause(msg);
}

void
fake_stream_end(SoupServerMessage *msg)
{
    soup_message_body_complete(soup_server_message_get_response_body(msg));
    soup_server_message_unpause(msg);
}

void
fake_hold(FakeServer *fake, SoupServerMessage *msg)
{
    g_ptr_array_add(fake->held, g_object_ref(msg));
}

gboolean
fake_wait(const gboolean *done, guint timeout_ms)
{
    return vmig_kube_wait(done, timeout_ms);
}

void
fake_drain(guint ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
    while (g_get_monotonic_time() < end) {
        if (!g_main_context_iteration(NULL, FALSE))
            g_usleep(1000);
    }
}

JsonNode *
fake_parse(const char *json)
{
    g_autoptr(JsonParser) p = json_parser_new();
    if (!json_parser_load_from_data(p, json, -1, NULL))
        return NULL;
    return json_parser_steal_root(p);
}
