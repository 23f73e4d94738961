/* client.c - the HTTP transport (libcurl multi on the GLib main loop) and the REST verbs
 * (vmig/kube.h).
 *
 * curl tells us which sockets to watch and when to wake it (socket and timer callbacks); we
 * turn those into GLib fd sources and one timeout source, so no call ever blocks the loop and
 * every transfer (including long watches) shares the connection cache, HTTP/2 multiplexing
 * included. */
#include "kube-private.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <string.h>

#define VMIG_KUBE_CONNECT_TIMEOUT_MS 10000
#define VMIG_KUBE_REQUEST_TIMEOUT_MS 60000
#define VMIG_KUBE_TOKEN_RELOAD_MS    60000

struct _VmigKubeClient {
    gint refs;
    VmigKubeConfig *config;
    GMainContext *context;
    CURLM *multi;
    GSource *timer;
    char *token;
    gint64 token_read_us;
    guint token_reload_ms;
    char *tmpdir; /* private copies of in-memory PEM blobs */
    char *ca_path;
    char *cert_path;
    char *key_path;
};

/* One watched socket. */
typedef struct {
    VmigKubeClient *client;
    curl_socket_t fd;
    GSource *source;
} VmigKubeSocket;

GMainContext *
vmig_kube_client_context(VmigKubeClient *client)
{
    return client->context;
}

const char *
vmig_kube_client_get_namespace(VmigKubeClient *client)
{
    return client->config->namespace ? client->config->namespace : "default";
}

void
vmig_kube_client_set_token_reload_interval(VmigKubeClient *client, guint interval_ms)
{
    client->token_reload_ms = interval_ms;
}

/* ---- curl <-> GLib ------------------------------------------------------------------------ */

static void vmig_kube_client_check_done(VmigKubeClient *client);

static gboolean
vmig_kube_socket_ready(gint fd, GIOCondition cond, gpointer data)
{
    VmigKubeSocket *s = data;
    VmigKubeClient *client = vmig_kube_client_ref(s->client);
    int mask = 0;
    int running = 0;
    if (cond & G_IO_IN)
        mask |= CURL_CSELECT_IN;
    if (cond & G_IO_OUT)
        mask |= CURL_CSELECT_OUT;
    if (cond & (G_IO_ERR | G_IO_HUP))
        mask |= CURL_CSELECT_ERR;
    curl_multi_socket_action(client->multi, fd, mask, &running);
    vmig_kube_client_check_done(client);
    vmig_kube_client_unref(client);
    return G_SOURCE_CONTINUE;
}

static void
vmig_kube_socket_unwatch(VmigKubeSocket *s)
{
    if (s->source) {
        g_source_destroy(s->source);
        g_source_unref(s->source);
        s->source = NULL;
    }
}

static int
vmig_kube_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    VmigKubeClient *client = userp;
    VmigKubeSocket *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            vmig_kube_socket_unwatch(s);
            curl_multi_assign(client->multi, fd, NULL);
            g_free(s);
        }
        return 0;
    }
    if (!s) {
        s = g_new0(VmigKubeSocket, 1);
        s->client = client;
        s->fd = fd;
        curl_multi_assign(client->multi, fd, s);
    }
    vmig_kube_socket_unwatch(s);
    GIOCondition cond = G_IO_ERR | G_IO_HUP;
    if (what & CURL_POLL_IN)
        cond |= G_IO_IN;
    if (what & CURL_POLL_OUT)
        cond |= G_IO_OUT;
    s->source = g_unix_fd_source_new(fd, cond);
    g_source_set_callback(s->source, G_SOURCE_FUNC(vmig_kube_socket_ready), s, NULL);
    g_source_attach(s->source, client->context);
    return 0;
}

static gboolean
vmig_kube_timer_fired(gpointer data)
{
    VmigKubeClient *client = vmig_kube_client_ref(data);
    int running = 0;
    g_source_unref(client->timer);
    client->timer = NULL; /* curl may set a new one from inside socket_action */
    curl_multi_socket_action(client->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    vmig_kube_client_check_done(client);
    vmig_kube_client_unref(client);
    return G_SOURCE_REMOVE;
}

static int
vmig_kube_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    VmigKubeClient *client = userp;
    if (client->timer) {
        g_source_destroy(client->timer);
        g_source_unref(client->timer);
        client->timer = NULL;
    }
    if (timeout_ms < 0)
        return 0;
    client->timer = g_timeout_source_new((guint)timeout_ms);
    g_source_set_callback(client->timer, vmig_kube_timer_fired, client, NULL);
    g_source_attach(client->timer, client->context);
    return 0;
}

/* ---- token -------------------------------------------------------------------------------- */

/* Re-reads token_file; keeps the old token when the file cannot be read. Returns TRUE when the
 * token changed. */
static gboolean
vmig_kube_client_reload_token(VmigKubeClient *client)
{
    if (!client->config->token_file)
        return FALSE;
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;
    client->token_read_us = g_get_monotonic_time();
    if (!g_file_get_contents(client->config->token_file, &text, NULL, &err)) {
        g_warning("token file %s: %s (keeping the previous token)", client->config->token_file,
                  err->message);
        return FALSE;
    }
    g_strstrip(text);
    if (g_strcmp0(text, client->token) == 0)
        return FALSE;
    g_free(client->token);
    client->token = g_steal_pointer(&text);
    g_debug("token re-read from %s", client->config->token_file);
    return TRUE;
}

/* ---- client ------------------------------------------------------------------------------- */

static char *
vmig_kube_write_blob(const char *dir, const char *name, GBytes *blob, GError **error)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    gsize len = 0;
    const char *data = g_bytes_get_data(blob, &len);
    if (!g_file_set_contents_full(path, data, (gssize)len, G_FILE_SET_CONTENTS_NONE, 0600, error))
        return NULL;
    return g_steal_pointer(&path);
}

static VmigKubeConfig *
vmig_kube_config_copy(const VmigKubeConfig *c)
{
    VmigKubeConfig *n = g_new0(VmigKubeConfig, 1);
    n->server = g_strdup(c->server);
    n->context = g_strdup(c->context);
    n->namespace = g_strdup(c->namespace);
    n->ca_file = g_strdup(c->ca_file);
    n->ca_data = c->ca_data ? g_bytes_ref(c->ca_data) : NULL;
    n->insecure = c->insecure;
    n->token = g_strdup(c->token);
    n->token_file = g_strdup(c->token_file);
    n->cert_file = g_strdup(c->cert_file);
    n->cert_data = c->cert_data ? g_bytes_ref(c->cert_data) : NULL;
    n->key_file = g_strdup(c->key_file);
    n->key_data = c->key_data ? g_bytes_ref(c->key_data) : NULL;
    return n;
}

VmigKubeClient *
vmig_kube_client_new(const VmigKubeConfig *config, GError **error)
{
    static gsize curl_ready = 0;
    if (g_once_init_enter(&curl_ready)) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        g_once_init_leave(&curl_ready, 1);
    }
    if (!config->server || !*config->server) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "no API server address");
        return NULL;
    }
    g_autoptr(VmigKubeClient) client = g_new0(VmigKubeClient, 1);
    client->refs = 1;
    client->config = vmig_kube_config_copy(config);
    /* strip a trailing slash so paths join cleanly */
    gsize sl = strlen(client->config->server);
    while (sl > 1 && client->config->server[sl - 1] == '/')
        client->config->server[--sl] = '\0';
    client->context = g_main_context_ref_thread_default();
    client->token_reload_ms = VMIG_KUBE_TOKEN_RELOAD_MS;
    client->token = g_strdup(config->token);
    if (config->token_file) {
        g_autofree char *text = NULL;
        g_autoptr(GError) err = NULL;
        if (!g_file_get_contents(config->token_file, &text, NULL, &err)) {
            g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "token file %s: %s",
                        config->token_file, err->message);
            return NULL;
        }
        g_free(client->token);
        client->token = g_strdup(g_strstrip(text));
        client->token_read_us = g_get_monotonic_time();
    }
    /* libcurl's GnuTLS backend (Debian's) does not take CA or client-cert blobs
     * (CURLOPT_*_BLOB), so in-memory PEM goes to 0600 files in a private 0700 directory that
     * lives as long as the client. */
    if (config->ca_data || config->cert_data || config->key_data) {
        g_autoptr(GError) err = NULL;
        client->tmpdir = g_dir_make_tmp("vmig-kube-XXXXXX", &err);
        if (!client->tmpdir) {
            g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG,
                        "cannot keep certificate data: %s", err->message);
            return NULL;
        }
        if ((config->ca_data && !(client->ca_path = vmig_kube_write_blob(client->tmpdir, "ca.crt",
                                                                         config->ca_data, &err))) ||
            (config->cert_data && !(client->cert_path = vmig_kube_write_blob(
                                        client->tmpdir, "client.crt", config->cert_data, &err))) ||
            (config->key_data && !(client->key_path = vmig_kube_write_blob(
                                       client->tmpdir, "client.key", config->key_data, &err)))) {
            g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG,
                        "cannot keep certificate data: %s", err->message);
            return NULL;
        }
    }
    if (!client->ca_path)
        client->ca_path = g_strdup(config->ca_file);
    if (!client->cert_path)
        client->cert_path = g_strdup(config->cert_file);
    if (!client->key_path)
        client->key_path = g_strdup(config->key_file);

    client->multi = curl_multi_init();
    if (!client->multi) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "curl_multi_init failed");
        return NULL;
    }
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, vmig_kube_socket_cb);
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, vmig_kube_timer_cb);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);
    curl_multi_setopt(client->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    return g_steal_pointer(&client);
}

VmigKubeClient *
vmig_kube_client_ref(VmigKubeClient *client)
{
    g_atomic_int_inc(&client->refs);
    return client;
}

static void
vmig_kube_rm_private(const char *path)
{
    if (path)
        g_unlink(path);
}

void
vmig_kube_client_unref(VmigKubeClient *client)
{
    if (!client || !g_atomic_int_dec_and_test(&client->refs))
        return;
    /* transfers hold a client reference, so none is running here */
    if (client->multi)
        curl_multi_cleanup(client->multi);
    if (client->timer) {
        g_source_destroy(client->timer);
        g_source_unref(client->timer);
    }
    if (client->tmpdir) {
        if (client->config->ca_data)
            vmig_kube_rm_private(client->ca_path);
        if (client->config->cert_data)
            vmig_kube_rm_private(client->cert_path);
        if (client->config->key_data)
            vmig_kube_rm_private(client->key_path);
        g_rmdir(client->tmpdir);
        g_free(client->tmpdir);
    }
    g_free(client->ca_path);
    g_free(client->cert_path);
    g_free(client->key_path);
    g_free(client->token);
    vmig_kube_config_free(client->config);
    g_main_context_unref(client->context);
    g_free(client);
}

/* ---- transfers ---------------------------------------------------------------------------- */

static size_t
vmig_kube_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    VmigKubeTransfer *t = userdata;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (t->stream && status >= 200 && status < 300) {
        if (!t->data_func(ptr, n, t->user_data)) {
            t->data_aborted = TRUE;
            return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
        }
        return n;
    }
    /* bound what we keep of an error body or a non-streaming answer */
    if (t->response->len + n > 64u * 1024 * 1024)
        return 0;
    g_byte_array_append(t->response, (const guint8 *)ptr, (guint)n);
    return n;
}

static void
vmig_kube_transfer_setup(VmigKubeTransfer *t)
{
    VmigKubeClient *client = t->client;
    VmigKubeConfig *cfg = client->config;
    if (t->easy)
        curl_easy_reset(t->easy);
    else
        t->easy = curl_easy_init();
    if (t->headers) {
        curl_slist_free_all(t->headers);
        t->headers = NULL;
    }
    CURL *e = t->easy;
    t->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, vmig_kube_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* No CURLOPT_PIPEWAIT: twice an agent's nine informers and its Lease write, all started
     * at once against an HTTP/1.1 server, got no answer for a minute (transfers parked to
     * wait for multiplexing on a connection that was then held by a watch). Without it
     * concurrent requests open their own connections; HTTP/2 is still used when offered. */
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)VMIG_KUBE_CONNECT_TIMEOUT_MS);
    if (!t->stream) {
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)VMIG_KUBE_REQUEST_TIMEOUT_MS);
        /* A request that gets no byte for 20 s is given up (and retried by its caller) long
         * before the overall deadline: a stalled connection must not hold an informer's first
         * LIST for a minute. */
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 20L);
    }
    curl_easy_setopt(e, CURLOPT_USERAGENT, "vmigrated/0.1");
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
    if (strcmp(t->method, "GET") != 0 || t->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body ? t->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(t->body ? strlen(t->body) : 0));
    }
    if (client->ca_path) {
        curl_easy_setopt(e, CURLOPT_CAINFO, client->ca_path);
        /* The cluster's CA is the only trust anchor (as kubectl). libcurl-gnutls would also
         * load its built-in CApath, /etc/ssl/certs: ~140 PEM files parsed on the main loop
         * for every new connection, which blocked a daemon for 10 s under a burst of requests
         * (tests/integration/kube-ca-only.sh). */
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    if (cfg->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (client->cert_path) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, client->cert_path);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (client->key_path) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, client->key_path);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    t->headers = curl_slist_append(t->headers, "Accept: application/json");
    if (t->content_type) {
        g_autofree char *h = g_strdup_printf("Content-Type: %s", t->content_type);
        t->headers = curl_slist_append(t->headers, h);
    }
    if (client->token && *client->token) {
        g_autofree char *h = g_strdup_printf("Authorization: Bearer %s", client->token);
        t->headers = curl_slist_append(t->headers, h);
    }
    /* no "Expect: 100-continue" round trip on large bodies */
    t->headers = curl_slist_append(t->headers, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    g_byte_array_set_size(t->response, 0);
    t->http_status = 0;
    t->result = CURLE_OK;
}

static void
vmig_kube_transfer_free(VmigKubeTransfer *t)
{
    if (t->cancel_id)
        g_cancellable_disconnect(t->cancellable, t->cancel_id);
    if (t->cancel_source) {
        g_source_destroy(t->cancel_source);
        g_source_unref(t->cancel_source);
    }
    g_clear_object(&t->cancellable);
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    g_byte_array_unref(t->response);
    g_free(t->method);
    g_free(t->url);
    g_free(t->content_type);
    g_free(t->body);
    vmig_kube_client_unref(t->client);
    g_free(t);
}

static void
vmig_kube_transfer_finish(VmigKubeTransfer *t)
{
    if (t->done_func)
        t->done_func(t, t->user_data);
    vmig_kube_transfer_free(t);
}

static gboolean
vmig_kube_transfer_cancel_idle(gpointer data)
{
    VmigKubeTransfer *t = data;
    g_source_unref(t->cancel_source);
    t->cancel_source = NULL;
    curl_multi_remove_handle(t->client->multi, t->easy);
    t->cancelled = TRUE;
    t->result = CURLE_ABORTED_BY_CALLBACK;
    vmig_kube_transfer_finish(t);
    return G_SOURCE_REMOVE;
}

static void
vmig_kube_transfer_cancelled(GCancellable *cancellable, gpointer data)
{
    VmigKubeTransfer *t = data;
    /* the signal may fire inside a curl callback; abort from a clean stack */
    if (t->cancel_source)
        return;
    t->cancel_source = g_idle_source_new();
    g_source_set_callback(t->cancel_source, vmig_kube_transfer_cancel_idle, t, NULL);
    g_source_attach(t->cancel_source, t->client->context);
}

VmigKubeTransfer *
vmig_kube_transfer_start(VmigKubeClient *client, const char *method, const char *path_query,
                         const char *content_type, const char *body, gboolean stream,
                         VmigKubeDataFunc data_func, VmigKubeDoneFunc done_func, gpointer user_data,
                         GCancellable *cancellable)
{
    VmigKubeTransfer *t = g_new0(VmigKubeTransfer, 1);
    t->client = vmig_kube_client_ref(client);
    t->method = g_strdup(method);
    t->url = g_strconcat(client->config->server, path_query, NULL);
    t->content_type = g_strdup(content_type);
    t->body = g_strdup(body);
    t->stream = stream;
    t->data_func = data_func;
    t->done_func = done_func;
    t->user_data = user_data;
    t->response = g_byte_array_new();
    if (client->config->token_file &&
        g_get_monotonic_time() - client->token_read_us >= (gint64)client->token_reload_ms * 1000)
        vmig_kube_client_reload_token(client);
    vmig_kube_transfer_setup(t);
    if (cancellable) {
        t->cancellable = g_object_ref(cancellable);
        t->cancel_id =
            g_cancellable_connect(cancellable, G_CALLBACK(vmig_kube_transfer_cancelled), t, NULL);
    }
    g_debug("%s %s", method, t->url);
    curl_multi_add_handle(client->multi, t->easy);
    return t;
}

void
vmig_kube_transfer_abort(VmigKubeTransfer *t)
{
    if (!t)
        return;
    curl_multi_remove_handle(t->client->multi, t->easy);
    vmig_kube_transfer_free(t);
}

static void
vmig_kube_client_check_done(VmigKubeClient *client)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(client->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        VmigKubeTransfer *t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t->http_status);
        t->result = result;
        curl_multi_remove_handle(client->multi, easy);
        /* bound service-account tokens rotate: on 401 re-read the file and retry once */
        if (t->http_status == 401 && !t->token_retried && client->config->token_file &&
            vmig_kube_client_reload_token(client)) {
            t->token_retried = TRUE;
            g_message("%s %s: 401, retrying with the re-read token", t->method, t->url);
            vmig_kube_transfer_setup(t);
            curl_multi_add_handle(client->multi, t->easy);
            continue;
        }
        vmig_kube_transfer_finish(t);
    }
}

/* ---- verbs -------------------------------------------------------------------------------- */

typedef struct {
    VmigKubeVerb verb;
    char *what;
    guint http_status;
} VmigKubeCallData;

static void
vmig_kube_call_data_free(gpointer p)
{
    VmigKubeCallData *d = p;
    g_free(d->what);
    g_free(d);
}

static const char *const vmig_kube_verb_methods[] = {
    [VMIG_KUBE_VERB_GET] = "GET",          [VMIG_KUBE_VERB_LIST] = "GET",
    [VMIG_KUBE_VERB_CREATE] = "POST",      [VMIG_KUBE_VERB_UPDATE] = "PUT",
    [VMIG_KUBE_VERB_DELETE] = "DELETE",    [VMIG_KUBE_VERB_MERGE_PATCH] = "PATCH",
    [VMIG_KUBE_VERB_JSON_PATCH] = "PATCH",
};

static void
vmig_kube_query_add(GString *q, const char *key, const char *value)
{
    if (!value || !*value)
        return;
    g_autofree char *esc = g_uri_escape_string(value, NULL, FALSE);
    g_string_append_c(q, q->len ? '&' : '?');
    g_string_append_printf(q, "%s=%s", key, esc);
}

static void
vmig_kube_call_done(VmigKubeTransfer *t, gpointer user_data)
{
    GTask *task = user_data;
    VmigKubeCallData *d = g_task_get_task_data(task);
    d->http_status = (guint)t->http_status;
    if (t->cancelled || t->result != CURLE_OK || t->http_status < 200 || t->http_status >= 300) {
        GError *err = NULL;
        vmig_kube_set_error_from_transfer(t, d->what, &err);
        g_task_return_error(task, err);
        g_object_unref(task);
        return;
    }
    g_autoptr(GError) perr = NULL;
    JsonNode *root = NULL;
    if (t->response->len == 0) {
        JsonObject *empty = json_object_new();
        g_task_return_pointer(task, json_node_init_object(json_node_alloc(), empty),
                              (GDestroyNotify)json_node_unref);
        json_object_unref(empty);
    } else if (!(root = vmig_kube_json_parse((const char *)t->response->data, t->response->len,
                                             &perr)) ||
               !JSON_NODE_HOLDS_OBJECT(root)) {
        g_task_return_new_error(task, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_DECODE,
                                "%s: answer is not a JSON object: %s", d->what,
                                perr ? perr->message : "wrong type");
        if (root)
            json_node_unref(root);
    } else {
        g_task_return_pointer(task, root, (GDestroyNotify)json_node_unref);
    }
    g_object_unref(task);
}

void
vmig_kube_call(VmigKubeClient *client, VmigKubeVerb verb, const VmigKubeRequest *req,
               GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_check_cancellable(task, FALSE);
    g_task_set_source_tag(task, vmig_kube_call);
    VmigKubeCallData *d = g_new0(VmigKubeCallData, 1);
    d->verb = verb;
    d->what =
        vmig_kube_describe(verb, req->resource, req->resource->namespaced ? req->namespace : NULL,
                           req->name, req->status);
    g_task_set_task_data(task, d, vmig_kube_call_data_free);

    gboolean needs_name = verb != VMIG_KUBE_VERB_LIST && verb != VMIG_KUBE_VERB_CREATE;
    gboolean needs_body = verb == VMIG_KUBE_VERB_CREATE || verb == VMIG_KUBE_VERB_UPDATE ||
                          verb == VMIG_KUBE_VERB_MERGE_PATCH || verb == VMIG_KUBE_VERB_JSON_PATCH;
    if ((needs_name && !req->name) || (needs_body && !req->body) ||
        (req->resource->namespaced && !req->namespace && verb != VMIG_KUBE_VERB_LIST)) {
        g_task_return_new_error(task, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_BAD_REQUEST,
                                "%s: missing %s", d->what,
                                needs_name && !req->name   ? "name"
                                : needs_body && !req->body ? "body"
                                                           : "namespace");
        g_object_unref(task);
        return;
    }
    GError *err = NULL;
    g_autofree char *path = vmig_kube_path(
        req->resource, req->namespace,
        verb == VMIG_KUBE_VERB_LIST || verb == VMIG_KUBE_VERB_CREATE ? NULL : req->name,
        req->status, &err);
    if (!path) {
        g_prefix_error(&err, "%s: ", d->what);
        g_task_return_error(task, err);
        g_object_unref(task);
        return;
    }
    g_autoptr(GString) q = g_string_new(NULL);
    if (verb == VMIG_KUBE_VERB_LIST) {
        vmig_kube_query_add(q, "labelSelector", req->label_selector);
        vmig_kube_query_add(q, "fieldSelector", req->field_selector);
        if (req->limit) {
            g_autofree char *l = g_strdup_printf("%u", req->limit);
            vmig_kube_query_add(q, "limit", l);
        }
        vmig_kube_query_add(q, "continue", req->continue_token);
    }
    if (verb == VMIG_KUBE_VERB_LIST || verb == VMIG_KUBE_VERB_GET)
        vmig_kube_query_add(q, "resourceVersion", req->resource_version);

    g_autofree char *body = NULL;
    const char *ctype = NULL;
    if (needs_body) {
        body = json_to_string(req->body, FALSE);
        ctype = verb == VMIG_KUBE_VERB_MERGE_PATCH  ? "application/merge-patch+json"
                : verb == VMIG_KUBE_VERB_JSON_PATCH ? "application/json-patch+json"
                                                    : "application/json";
    } else if (verb == VMIG_KUBE_VERB_DELETE &&
               (req->precondition_uid || req->precondition_rv || req->propagation)) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "kind");
        json_builder_add_string_value(b, "DeleteOptions");
        json_builder_set_member_name(b, "apiVersion");
        json_builder_add_string_value(b, "v1");
        if (req->propagation) {
            json_builder_set_member_name(b, "propagationPolicy");
            json_builder_add_string_value(b, req->propagation);
        }
        if (req->precondition_uid || req->precondition_rv) {
            json_builder_set_member_name(b, "preconditions");
            json_builder_begin_object(b);
            if (req->precondition_uid) {
                json_builder_set_member_name(b, "uid");
                json_builder_add_string_value(b, req->precondition_uid);
            }
            if (req->precondition_rv) {
                json_builder_set_member_name(b, "resourceVersion");
                json_builder_add_string_value(b, req->precondition_rv);
            }
            json_builder_end_object(b);
        }
        json_builder_end_object(b);
        g_autoptr(JsonNode) root = json_builder_get_root(b);
        body = json_to_string(root, FALSE);
        ctype = "application/json";
    }
    g_autofree char *pq = g_strconcat(path, q->str, NULL);
    vmig_kube_transfer_start(client, vmig_kube_verb_methods[verb], pq, ctype, body, FALSE, NULL,
                             vmig_kube_call_done, task, cancellable);
}

JsonNode *
vmig_kube_call_finish(GAsyncResult *result, guint *http_status, GError **error)
{
    GTask *task = G_TASK(result);
    /* list_all and mutate tasks carry their own data; only single calls know one status */
    VmigKubeCallData *d =
        g_task_get_source_tag(task) == vmig_kube_call ? g_task_get_task_data(task) : NULL;
    if (http_status)
        *http_status = d ? d->http_status : 0;
    return g_task_propagate_pointer(task, error);
}

gboolean
vmig_kube_wait(const gboolean *done, guint timeout_ms)
{
    GMainContext *ctx = g_main_context_ref_thread_default();
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    while (!*done && g_get_monotonic_time() < deadline) {
        if (!g_main_context_iteration(ctx, FALSE))
            g_usleep(1000);
    }
    g_main_context_unref(ctx);
    return *done;
}

typedef struct {
    gboolean done;
    GAsyncResult *result;
} VmigKubeSync;

static void
vmig_kube_sync_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
    VmigKubeSync *s = user_data;
    s->result = g_object_ref(result);
    s->done = TRUE;
}

/* Waits without a timeout: every transfer has its own (request timeout, read deadline). */
static void
vmig_kube_sync_wait(VmigKubeSync *s)
{
    GMainContext *ctx = g_main_context_ref_thread_default();
    while (!s->done)
        g_main_context_iteration(ctx, TRUE);
    g_main_context_unref(ctx);
}

JsonNode *
vmig_kube_call_sync(VmigKubeClient *client, VmigKubeVerb verb, const VmigKubeRequest *req,
                    GCancellable *cancellable, GError **error)
{
    VmigKubeSync s = {0};
    vmig_kube_call(client, verb, req, cancellable, vmig_kube_sync_cb, &s);
    vmig_kube_sync_wait(&s);
    JsonNode *n = vmig_kube_call_finish(s.result, NULL, error);
    g_object_unref(s.result);
    return n;
}

JsonNode *
vmig_kube_mutate_sync(VmigKubeClient *client, const VmigKubeResource *resource,
                      const char *namespace, const char *name, gboolean status, JsonNode *cached,
                      guint max_attempts, VmigKubeMutateFunc mutate, gpointer mutate_data,
                      GError **error)
{
    VmigKubeSync s = {0};
    vmig_kube_mutate(client, resource, namespace, name, status, cached, max_attempts, mutate,
                     mutate_data, NULL, vmig_kube_sync_cb, &s);
    vmig_kube_sync_wait(&s);
    JsonNode *n = vmig_kube_call_finish(s.result, NULL, error);
    g_object_unref(s.result);
    return n;
}

/* ---- list with paging ----------------------------------------------------------------------- */

typedef struct {
    VmigKubeClient *client;
    VmigKubeRequest req; /* strings owned below */
    char *namespace, *label_selector, *field_selector, *resource_version, *continue_token;
    JsonArray *items;
    char *list_rv;
    char *kind;
    GCancellable *cancellable;
} VmigKubeListAll;

static void
vmig_kube_list_all_free(gpointer p)
{
    VmigKubeListAll *l = p;
    vmig_kube_client_unref(l->client);
    g_free(l->namespace);
    g_free(l->label_selector);
    g_free(l->field_selector);
    g_free(l->resource_version);
    g_free(l->continue_token);
    g_free(l->list_rv);
    g_free(l->kind);
    json_array_unref(l->items);
    g_clear_object(&l->cancellable);
    g_free(l);
}

static void vmig_kube_list_all_page(GObject *source, GAsyncResult *result, gpointer user_data);

static void
vmig_kube_list_all_next(GTask *task)
{
    VmigKubeListAll *l = g_task_get_task_data(task);
    l->req.continue_token = l->continue_token;
    vmig_kube_call(l->client, VMIG_KUBE_VERB_LIST, &l->req, l->cancellable, vmig_kube_list_all_page,
                   task);
}

static void
vmig_kube_list_all_page(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    VmigKubeListAll *l = g_task_get_task_data(task);
    GError *err = NULL;
    guint status = 0;
    g_autoptr(JsonNode) page = vmig_kube_call_finish(result, &status, &err);
    if (!page) {
        g_task_return_error(task, err);
        g_object_unref(task);
        return;
    }
    JsonObject *po = json_node_get_object(page);
    JsonArray *items = vmig_kube_json_array(po, "items");
    for (guint i = 0; items && i < json_array_get_length(items); i++)
        json_array_add_element(l->items, json_node_copy(json_array_get_element(items, i)));
    const char *rv = NULL, *cont = NULL;
    JsonObject *meta = vmig_kube_json_object(po, "metadata");
    if (meta) {
        rv = json_object_get_string_member_with_default(meta, "resourceVersion", NULL);
        cont = json_object_get_string_member_with_default(meta, "continue", NULL);
    }
    if (!l->list_rv)
        l->list_rv = g_strdup(rv ? rv : "");
    if (!l->kind)
        l->kind = g_strdup(json_object_get_string_member_with_default(po, "kind", "List"));
    g_free(l->continue_token);
    l->continue_token = cont && *cont ? g_strdup(cont) : NULL;
    if (l->continue_token) {
        vmig_kube_list_all_next(task);
        return;
    }
    JsonObject *out = json_object_new();
    json_object_set_string_member(out, "kind", l->kind);
    JsonObject *om = json_object_new();
    json_object_set_string_member(om, "resourceVersion", l->list_rv);
    json_object_set_object_member(out, "metadata", om);
    json_object_set_array_member(out, "items", json_array_ref(l->items));
    g_task_return_pointer(task, json_node_init_object(json_node_alloc(), out),
                          (GDestroyNotify)json_node_unref);
    json_object_unref(out);
    g_object_unref(task);
}

void
vmig_kube_list_all(VmigKubeClient *client, const VmigKubeRequest *req, GCancellable *cancellable,
                   GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_check_cancellable(task, FALSE);
    VmigKubeListAll *l = g_new0(VmigKubeListAll, 1);
    l->client = vmig_kube_client_ref(client);
    l->req = *req;
    l->req.body = NULL;
    l->req.namespace = l->namespace = g_strdup(req->namespace);
    l->req.label_selector = l->label_selector = g_strdup(req->label_selector);
    l->req.field_selector = l->field_selector = g_strdup(req->field_selector);
    l->req.resource_version = l->resource_version = g_strdup(req->resource_version);
    l->continue_token = g_strdup(req->continue_token);
    l->items = json_array_new();
    l->cancellable = cancellable ? g_object_ref(cancellable) : NULL;
    /* the finish function reads VmigKubeCallData; pages carry their own */
    g_task_set_task_data(task, l, vmig_kube_list_all_free);
    vmig_kube_list_all_next(task);
}
