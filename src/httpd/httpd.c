/* httpd.c - /healthz, /readyz and /metrics on a SoupServer (vmig/httpd.h). */
#define G_LOG_DOMAIN "vmig-httpd"

#include "vmig/httpd.h"

#include <libsoup/soup.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK(vmig - httpd - error - quark, vmig_httpd_error)

struct _VmigHttpd {
    SoupServer *server;
    VmigHttpdConfig cfg;
    guint16 port;
};

gboolean
vmig_httpd_parse_address(const char *address, char **host, guint16 *port, GError **error)
{
    const char *a = address ? address : "";
    g_autofree char *h = NULL;
    const char *port_str;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (!close || close[1] != ':') {
            g_set_error(error, VMIG_HTTPD_ERROR, VMIG_HTTPD_ERROR_ADDRESS,
                        "--http-address '%s': an IPv6 address is written [ADDR]:PORT", a);
            return FALSE;
        }
        h = g_strndup(a + 1, close - a - 1);
        port_str = close + 2;
        if (!g_hostname_is_ip_address(h) || !strchr(h, ':')) {
            g_set_error(error, VMIG_HTTPD_ERROR, VMIG_HTTPD_ERROR_ADDRESS,
                        "--http-address '%s': '%s' is not an IPv6 address", a, h);
            return FALSE;
        }
    } else {
        const char *colon = strrchr(a, ':');
        if (!colon || strchr(a, ':') != colon) {
            g_set_error(error, VMIG_HTTPD_ERROR, VMIG_HTTPD_ERROR_ADDRESS,
                        "--http-address '%s': expected HOST:PORT (IPv6 as [ADDR]:PORT)", a);
            return FALSE;
        }
        if (colon > a) {
            h = g_strndup(a, colon - a);
            for (const char *p = h; *p; p++)
                if (!g_ascii_isalnum(*p) && *p != '.' && *p != '-') {
                    g_set_error(error, VMIG_HTTPD_ERROR, VMIG_HTTPD_ERROR_ADDRESS,
                                "--http-address '%s': '%s' is not a host name or IPv4 address", a,
                                h);
                    return FALSE;
                }
        }
        port_str = colon + 1;
    }
    guint64 p = 0;
    if (!g_ascii_string_to_unsigned(port_str, 10, 0, 65535, &p, NULL)) {
        g_set_error(error, VMIG_HTTPD_ERROR, VMIG_HTTPD_ERROR_ADDRESS,
                    "--http-address '%s': port '%s' is not a number from 0 to 65535", a, port_str);
        return FALSE;
    }
    if (host)
        *host = g_steal_pointer(&h);
    if (port)
        *port = (guint16)p;
    return TRUE;
}

static void
vmig_httpd_reply(SoupServerMessage *msg, guint status, const char *type, char *body)
{
    soup_server_message_set_status(msg, status, NULL);
    soup_server_message_set_response(msg, type, SOUP_MEMORY_TAKE, body, strlen(body));
}

/* Probes and scrapers only read; anything else is a client mistake worth a clear answer. */
static gboolean
vmig_httpd_method_ok(SoupServerMessage *msg)
{
    const char *m = soup_server_message_get_method(msg);
    if (m == SOUP_METHOD_GET || m == SOUP_METHOD_HEAD)
        return TRUE;
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow",
                                 "GET, HEAD");
    vmig_httpd_reply(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "text/plain",
                     g_strdup("method not allowed\n"));
    return FALSE;
}

static void
vmig_httpd_healthz(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                   gpointer data)
{
    if (vmig_httpd_method_ok(msg))
        vmig_httpd_reply(msg, SOUP_STATUS_OK, "text/plain", g_strdup("ok\n"));
}

static void
vmig_httpd_readyz(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                  gpointer data)
{
    VmigHttpd *h = data;
    if (!vmig_httpd_method_ok(msg))
        return;
    g_autofree char *reason = NULL;
    if (!h->cfg.ready || h->cfg.ready(h->cfg.user_data, &reason))
        vmig_httpd_reply(msg, SOUP_STATUS_OK, "text/plain", g_strdup("ok\n"));
    else
        vmig_httpd_reply(msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "text/plain",
                         g_strdup_printf("not ready: %s\n", reason ? reason : "starting"));
}

static void
vmig_httpd_metrics(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                   gpointer data)
{
    VmigHttpd *h = data;
    if (!vmig_httpd_method_ok(msg))
        return;
    if (!h->cfg.metrics) {
        vmig_httpd_reply(msg, SOUP_STATUS_NOT_FOUND, "text/plain", g_strdup("no metrics\n"));
        return;
    }
    if (h->cfg.collect)
        h->cfg.collect(h->cfg.user_data);
    vmig_httpd_reply(msg, SOUP_STATUS_OK, VMIG_METRICS_CONTENT_TYPE,
                     vmig_metrics_render(h->cfg.metrics));
}

static void
vmig_httpd_default(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                   gpointer data)
{
    vmig_httpd_reply(msg, SOUP_STATUS_NOT_FOUND, "text/plain",
                     g_strdup("not found; try /healthz, /readyz or /metrics\n"));
}

static GSocketAddress *
vmig_httpd_resolve(const char *host, guint16 port, GError **error)
{
    if (g_hostname_is_ip_address(host))
        return g_inet_socket_address_new_from_string(host, port);
    g_autoptr(GResolver) r = g_resolver_get_default();
    GList *addrs = g_resolver_lookup_by_name(r, host, NULL, error);
    if (!addrs)
        return NULL;
    GSocketAddress *sa = g_inet_socket_address_new(addrs->data, port);
    g_resolver_free_addresses(addrs);
    return sa;
}

VmigHttpd *
vmig_httpd_new(const VmigHttpdConfig *config, GError **error)
{
    g_autofree char *host = NULL;
    guint16 port = 0;
    if (!vmig_httpd_parse_address(config->address, &host, &port, error))
        return NULL;
    VmigHttpd *h = g_new0(VmigHttpd, 1);
    h->cfg = *config;
    h->cfg.address = NULL; /* not kept */
    h->server = soup_server_new("server-header", "vmigrated", NULL);
    soup_server_add_handler(h->server, "/healthz", vmig_httpd_healthz, h, NULL);
    soup_server_add_handler(h->server, "/readyz", vmig_httpd_readyz, h, NULL);
    soup_server_add_handler(h->server, "/metrics", vmig_httpd_metrics, h, NULL);
    soup_server_add_handler(h->server, NULL, vmig_httpd_default, h, NULL);

    g_autoptr(GError) err = NULL;
    gboolean ok;
    if (!host) {
        ok = soup_server_listen_all(h->server, port, 0, &err);
    } else {
        g_autoptr(GSocketAddress) sa = vmig_httpd_resolve(host, port, &err);
        ok = sa && soup_server_listen(h->server, sa, 0, &err);
    }
    if (!ok) {
        g_set_error(error, VMIG_HTTPD_ERROR, VMIG_HTTPD_ERROR_LISTEN,
                    "--http-address '%s': cannot listen: %s", config->address, err->message);
        vmig_httpd_free(h);
        return NULL;
    }
    /* soup_server_get_uris() leaks an address per listener in libsoup 3.2; ask the socket */
    GSList *socks = soup_server_get_listeners(h->server);
    g_autoptr(GSocketAddress) local = socks ? g_socket_get_local_address(socks->data, NULL) : NULL;
    if (local && G_IS_INET_SOCKET_ADDRESS(local))
        h->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
    g_slist_free(socks);
    g_info("HTTP endpoint on %s (port %u): /healthz /readyz /metrics", config->address, h->port);
    return h;
}

guint16
vmig_httpd_get_port(VmigHttpd *h)
{
    return h->port;
}

void
vmig_httpd_free(VmigHttpd *h)
{
    if (!h)
        return;
    soup_server_disconnect(h->server);
    g_object_unref(h->server);
    g_free(h);
}
