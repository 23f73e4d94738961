/* proxy.c - migrations of the proxy: start/stop, listeners, accepting, counters, shutdown. */
#include "proxy-private.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VMIG_PROXY_ACCEPT_BATCH 32

void
vmig_proxy_log_once(VmigProxyMigration *mig, const char *peer, const char *fmt, ...)
{
    /* One line per migration, peer and reason: a scanner hammering the port must not flood
     * the log (B24). */
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autofree char *key = g_strdup_printf("%s|%s", peer ? peer : "", msg);
    if (g_hash_table_contains(mig->logged, key))
        return;
    g_hash_table_add(mig->logged, g_steal_pointer(&key));
    g_warning("%s", msg);
}

static void
vmig_proxy_listener_close(VmigProxyListener *l)
{
    if (l->watch)
        g_source_remove(l->watch);
    l->watch = 0;
    if (l->rearm)
        g_source_remove(l->rearm);
    l->rearm = 0;
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    /* Closed on purpose: no log above debug (B10). */
    if (l->path)
        (void)unlink(l->path);
    g_clear_pointer(&l->path, g_free);
    l->port = 0;
}

static void
vmig_proxy_migration_free(VmigProxyMigration *mig)
{
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++)
        vmig_proxy_listener_close(&mig->listeners[c]);
    /* Dropping a connection removes it from the set: take them out first. */
    GList *conns = g_hash_table_get_keys(mig->conns);
    for (GList *l = conns; l; l = l->next)
        vmig_proxy_conn_drop(l->data);
    g_list_free(conns);
    g_hash_table_unref(mig->conns);
    g_hash_table_unref(mig->logged);
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++)
        g_free(mig->forward_paths[c]);
    g_free(mig->forward_netns);
    g_free(mig->expected_peer);
    g_free(mig->peer_node);
    g_free(mig->uid);
    g_free(mig);
}

static void vmig_proxy_listener_watch(VmigProxyListener *l);

static gboolean
vmig_proxy_listener_rearm(gpointer data)
{
    VmigProxyListener *l = data;
    l->rearm = 0;
    vmig_proxy_listener_watch(l);
    return G_SOURCE_REMOVE;
}

static gboolean
vmig_proxy_on_accept(int fd, GIOCondition cond, gpointer data)
{
    VmigProxyListener *l = data;
    VmigProxyMigration *mig = l->mig;
    VmigProxy *proxy = mig->proxy;
    g_autofree char *uid = g_strdup(mig->uid);
    for (int i = 0; i < VMIG_PROXY_ACCEPT_BATCH; i++) {
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                break;
            /* EMFILE and friends: the listener stays readable, so pause it instead of
             * spinning; the pending connection waits in the backlog. */
            vmig_proxy_log_once(mig, "", "proxy: migration %s channel %s: accept: %s", mig->uid,
                                vmig_proxy_channel_to_string(l->channel), g_strerror(errno));
            l->watch = 0;
            l->rearm = g_timeout_add(100, vmig_proxy_listener_rearm, l);
            return G_SOURCE_REMOVE;
        }
        vmig_proxy_conn_accepted(mig, l->channel, c);
        /* A connection_done callback may have stopped this migration. */
        if (g_hash_table_lookup(proxy->migrations, uid) != mig || l->fd < 0)
            return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static VmigProxyMigration *
vmig_proxy_migration_new(VmigProxy *proxy, const char *uid, gboolean is_target)
{
    VmigProxyMigration *mig = g_new0(VmigProxyMigration, 1);
    mig->proxy = proxy;
    mig->uid = g_strdup(uid);
    mig->is_target = is_target;
    mig->conns = g_hash_table_new(NULL, NULL);
    mig->logged = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++) {
        mig->listeners[c].mig = mig;
        mig->listeners[c].channel = c;
        mig->listeners[c].fd = -1;
    }
    return mig;
}

static void
vmig_proxy_listener_watch(VmigProxyListener *l)
{
    if (l->fd < 0)
        return;
    l->watch = g_unix_fd_add(l->fd, G_IO_IN, vmig_proxy_on_accept, l);
}

static const char *const vmig_proxy_transport_names[] = {
    [VMIG_PROXY_TRANSPORT_DEFAULT] = "default",
    [VMIG_PROXY_TRANSPORT_TLS] = "tls",
    [VMIG_PROXY_TRANSPORT_PLAIN] = "plain",
};

const char *
vmig_proxy_transport_to_string(VmigProxyTransport transport)
{
    return (gsize)transport < G_N_ELEMENTS(vmig_proxy_transport_names)
               ? vmig_proxy_transport_names[transport]
               : "invalid";
}

/* Common part of both starts: argument checks, the transport, idempotence. Returns TRUE with
 * *existing set when @uid already runs in this role, and *transport resolved (TLS or PLAIN). */
static gboolean
vmig_proxy_check_start(VmigProxy *proxy, const char *uid, gboolean is_target,
                       VmigProxyTransport *transport, gboolean *existing, GError **error)
{
    *existing = FALSE;
    if (!vmig_proxy_uid_is_valid(uid)) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                    "migration uid '%s': not a UUID", uid ? uid : "(null)");
        return FALSE;
    }
    if (proxy->shutting_down) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                    "migration %s: the proxy is shutting down", uid);
        return FALSE;
    }
    VmigProxyMigration *mig = g_hash_table_lookup(proxy->migrations, uid);
    if (mig && mig->is_target != is_target) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_EXISTS,
                    "migration %s: already running as %s", uid,
                    mig->is_target ? "target" : "source");
        return FALSE;
    }
    if (*transport == VMIG_PROXY_TRANSPORT_DEFAULT)
        *transport = proxy->tls_on ? VMIG_PROXY_TRANSPORT_TLS : VMIG_PROXY_TRANSPORT_PLAIN;
    if ((gsize)*transport >= G_N_ELEMENTS(vmig_proxy_transport_names)) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                    "migration %s: transport %d is not a VmigProxyTransport", uid, *transport);
        return FALSE;
    }
    /* Never downgrade: a migration its source runs over TLS cannot be served in plain TCP. */
    if (*transport == VMIG_PROXY_TRANSPORT_TLS && !proxy->tls_on) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TLS,
                    "migration %s: TLS is required (disableTLS is false) but this proxy has no "
                    "TLS credentials (disable_tls, the agent's --disable-tls)",
                    uid);
        return FALSE;
    }
    if (mig && mig->stats.transport != *transport) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_EXISTS,
                    "migration %s: already running with transport %s, not %s", uid,
                    vmig_proxy_transport_to_string(mig->stats.transport),
                    vmig_proxy_transport_to_string(*transport));
        return FALSE;
    }
    *existing = mig != NULL;
    if (*transport == VMIG_PROXY_TRANSPORT_PLAIN && !mig)
        g_warning("proxy: migration %s: disableTLS is set, migration data crosses the network "
                  "unencrypted and unauthenticated (only the peer address is checked)",
                  uid);
    return TRUE;
}

gboolean
vmig_proxy_start_source(VmigProxy *proxy, const VmigProxySourceSpec *spec, GError **error)
{
    gboolean existing;
    VmigProxyTransport transport = spec->transport;
    if (!vmig_proxy_check_start(proxy, spec->uid, FALSE, &transport, &existing, error))
        return FALSE;
    if (existing)
        return TRUE;
    if (!spec->dir || !*spec->dir || !spec->target_address) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                    "migration %s: dir and target address are required", spec->uid);
        return FALSE;
    }
    VmigProxyMigration *mig = vmig_proxy_migration_new(proxy, spec->uid, FALSE);
    mig->stats.transport = transport;
    mig->peer_node = g_strdup(spec->target_node);
    g_autofree char *sockdir = g_build_filename(spec->dir, "migrationproxy", NULL);
    gboolean any = FALSE;
    if (g_mkdir_with_parents(sockdir, 0755) < 0) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_IO, "migration %s: mkdir '%s': %s",
                    spec->uid, sockdir, g_strerror(errno));
        goto fail;
    }
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++) {
        if (spec->target_ports[c] == 0)
            continue;
        any = TRUE;
        if (!vmig_proxy_sock_resolve(spec->target_address, spec->target_ports[c],
                                     &mig->target_sa[c], &mig->target_salen[c], error))
            goto fail;
        g_autofree char *name = vmig_proxy_socket_name(spec->uid, c);
        g_autofree char *path = g_build_filename(sockdir, name, NULL);
        int fd = vmig_proxy_sock_listen_unix(path, spec->socket_uid, spec->socket_gid,
                                             spec->socket_mode ? spec->socket_mode : 0600, error);
        if (fd < 0)
            goto fail;
        mig->listeners[c].fd = fd;
        mig->listeners[c].path = g_steal_pointer(&path);
        vmig_proxy_listener_watch(&mig->listeners[c]);
    }
    if (!any) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                    "migration %s: no channel has a target port", spec->uid);
        goto fail;
    }
    g_hash_table_insert(proxy->migrations, mig->uid, mig);
    g_info("proxy: migration %s: source listening in %s, target %s, transport %s", mig->uid,
           sockdir, spec->target_address, vmig_proxy_transport_to_string(transport));
    return TRUE;
fail:
    vmig_proxy_migration_free(mig);
    return FALSE;
}

gboolean
vmig_proxy_start_target(VmigProxy *proxy, const VmigProxyTargetSpec *spec, GError **error)
{
    gboolean existing;
    VmigProxyTransport transport = spec->transport;
    if (!vmig_proxy_check_start(proxy, spec->uid, TRUE, &transport, &existing, error))
        return FALSE;
    if (existing)
        return TRUE;
    VmigProxyMigration *mig = vmig_proxy_migration_new(proxy, spec->uid, TRUE);
    mig->stats.transport = transport;
    mig->peer_node = g_strdup(spec->source_node);
    mig->forward_netns = g_strdup(spec->forward_netns);
    gboolean any = FALSE;
    if (spec->expected_peer_address && *spec->expected_peer_address) {
        struct sockaddr_storage sa;
        socklen_t len;
        if (!vmig_proxy_sock_resolve(spec->expected_peer_address, 0, &sa, &len, error))
            goto fail;
        mig->expected_peer = vmig_proxy_sock_addr_string(&sa);
    }
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++) {
        if (!spec->forward_paths[c] && !spec->forward_tcp[c])
            continue;
        any = TRUE;
        if (spec->forward_paths[c]) {
            mig->forward_paths[c] = g_strdup(spec->forward_paths[c]);
        } else {
            g_autofree char *host = NULL;
            guint16 port;
            if (!vmig_proxy_parse_host_port(spec->forward_tcp[c], &host, &port, error) ||
                !vmig_proxy_sock_resolve(host, port, &mig->forward_sa[c], &mig->forward_salen[c],
                                         error))
                goto fail;
        }
        int fd = vmig_proxy_sock_listen_tcp(spec->listen_address, &mig->listeners[c].port, error);
        if (fd < 0)
            goto fail;
        mig->listeners[c].fd = fd;
        vmig_proxy_listener_watch(&mig->listeners[c]);
    }
    if (!any) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                    "migration %s: no channel has a forward socket", spec->uid);
        goto fail;
    }
    g_hash_table_insert(proxy->migrations, mig->uid, mig);
    g_info("proxy: migration %s: target listening, expected peer %s, transport %s", mig->uid,
           mig->expected_peer ? mig->expected_peer : "any",
           vmig_proxy_transport_to_string(transport));
    return TRUE;
fail:
    vmig_proxy_migration_free(mig);
    return FALSE;
}

static VmigProxyMigration *
vmig_proxy_lookup_target(VmigProxy *proxy, const char *uid)
{
    VmigProxyMigration *mig = uid ? g_hash_table_lookup(proxy->migrations, uid) : NULL;
    return mig && mig->is_target ? mig : NULL;
}

JsonNode *
vmig_proxy_target_port_map(VmigProxy *proxy, const char *uid)
{
    VmigProxyMigration *mig = vmig_proxy_lookup_target(proxy, uid);
    if (!mig)
        return NULL;
    JsonObject *o = json_object_new();
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++) {
        if (mig->listeners[c].fd < 0)
            continue;
        char port[8];
        g_snprintf(port, sizeof port, "%u", (unsigned)mig->listeners[c].port);
        json_object_set_int_member(o, port, vmig_proxy_channel_key(c));
    }
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(n, o);
    return n;
}

guint16
vmig_proxy_target_port(VmigProxy *proxy, const char *uid, VmigProxyChannel channel)
{
    VmigProxyMigration *mig = vmig_proxy_lookup_target(proxy, uid);
    if (!mig || (gsize)channel >= VMIG_PROXY_N_CHANNELS)
        return 0;
    return mig->listeners[channel].port;
}

gboolean
vmig_proxy_stop(VmigProxy *proxy, const char *uid)
{
    VmigProxyMigration *mig = uid ? g_hash_table_lookup(proxy->migrations, uid) : NULL;
    if (!mig)
        return FALSE;
    g_hash_table_steal(proxy->migrations, uid);
    g_info("proxy: migration %s: stopped", mig->uid);
    vmig_proxy_migration_free(mig);
    return TRUE;
}

gboolean
vmig_proxy_get_stats(VmigProxy *proxy, const char *uid, VmigProxyStats *out)
{
    VmigProxyMigration *mig = uid ? g_hash_table_lookup(proxy->migrations, uid) : NULL;
    if (!mig)
        return FALSE;
    *out = mig->stats;
    return TRUE;
}

guint
vmig_proxy_n_connections(VmigProxy *proxy)
{
    return proxy->n_conns;
}

static void
vmig_proxy_shutdown_done(VmigProxy *proxy)
{
    if (proxy->grace_timer)
        g_source_remove(proxy->grace_timer);
    proxy->grace_timer = 0;
    GSourceFunc done = proxy->done;
    proxy->done = NULL;
    if (done)
        done(proxy->done_data);
}

void
vmig_proxy_conn_gone(VmigProxy *proxy)
{
    proxy->n_conns--;
    if (proxy->shutting_down && proxy->n_conns == 0 && proxy->done)
        vmig_proxy_shutdown_done(proxy);
}

static gboolean
vmig_proxy_grace_over(gpointer data)
{
    VmigProxy *proxy = data;
    proxy->grace_timer = 0;
    if (proxy->n_conns)
        g_message("proxy: shutdown grace period over, closing %u connections", proxy->n_conns);
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, proxy->migrations);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        VmigProxyMigration *mig = v;
        GList *conns = g_hash_table_get_keys(mig->conns);
        for (GList *l = conns; l; l = l->next)
            vmig_proxy_conn_drop(l->data);
        g_list_free(conns);
    }
    vmig_proxy_shutdown_done(proxy);
    return G_SOURCE_REMOVE;
}

void
vmig_proxy_shutdown(VmigProxy *proxy, guint grace_ms, GSourceFunc done, gpointer user_data)
{
    proxy->shutting_down = TRUE;
    proxy->done = done;
    proxy->done_data = user_data;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, proxy->migrations);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++)
            vmig_proxy_listener_close(&((VmigProxyMigration *)v)->listeners[c]);
    }
    if (proxy->n_conns == 0) {
        vmig_proxy_shutdown_done(proxy);
        return;
    }
    if (proxy->grace_timer)
        g_source_remove(proxy->grace_timer);
    proxy->grace_timer = g_timeout_add(grace_ms, vmig_proxy_grace_over, proxy);
}

VmigProxy *
vmig_proxy_new(const VmigProxyConfig *config, GError **error)
{
    VmigProxy *proxy = g_new0(VmigProxy, 1);
    proxy->cfg = *config;
    proxy->cfg.cert_file = proxy->cfg.key_file = proxy->cfg.ca_file = NULL;
    proxy->cfg.tls_priority = NULL;
    if (!proxy->cfg.connect_timeout_ms)
        proxy->cfg.connect_timeout_ms = 10000;
    if (!proxy->cfg.handshake_timeout_ms)
        proxy->cfg.handshake_timeout_ms = 10000;
    if (!proxy->cfg.unix_retry_ms)
        proxy->cfg.unix_retry_ms = 3000;
    if (!proxy->cfg.tcp_user_timeout_ms)
        proxy->cfg.tcp_user_timeout_ms = 30000;
    proxy->migrations = g_hash_table_new(g_str_hash, g_str_equal);
    /* A write to a peer that went away must be an EPIPE we report, not a signal that kills
     * the daemon. */
    signal(SIGPIPE, SIG_IGN);
    if (config->disable_tls) {
        g_warning("proxy: disableTLS is set: migration traffic between nodes is neither "
                  "encrypted nor authenticated; restrict ingress to the migration ports");
    } else {
        if (!vmig_proxy_tls_init(&proxy->tls, config->cert_file, config->key_file, config->ca_file,
                                 config->tls_priority, error)) {
            vmig_proxy_free(proxy);
            return NULL;
        }
        proxy->tls_on = TRUE;
    }
    return proxy;
}

void
vmig_proxy_free(VmigProxy *proxy)
{
    if (!proxy)
        return;
    GList *uids = g_hash_table_get_keys(proxy->migrations);
    for (GList *l = uids; l; l = l->next) {
        VmigProxyMigration *mig = g_hash_table_lookup(proxy->migrations, l->data);
        g_hash_table_steal(proxy->migrations, l->data);
        vmig_proxy_migration_free(mig);
    }
    g_list_free(uids);
    g_hash_table_unref(proxy->migrations);
    if (proxy->grace_timer)
        g_source_remove(proxy->grace_timer);
    if (proxy->tls_on)
        vmig_proxy_tls_clear(&proxy->tls);
    g_free(proxy);
}
