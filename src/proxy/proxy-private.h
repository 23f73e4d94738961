/* proxy-private.h - internals shared by the proxy's source files (not installed). */
#pragma once

#include <sys/un.h>

#include "vmig/proxy.h"

#include <gnutls/gnutls.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* TLS credentials loaded from one generation of the Secret's files; sessions hold a reference
 * so a reload never frees credentials under a live session. */
typedef struct {
    gint ref;
    gnutls_certificate_credentials_t cred;
} VmigProxyCreds;

typedef struct {
    char *cert_file, *key_file, *ca_file;
    struct stat st[3]; /* cert, key, CA as last loaded (or last failed to load) */
    VmigProxyCreds *current;
    gnutls_priority_t priority;
} VmigProxyTls;

gboolean vmig_proxy_tls_init(VmigProxyTls *tls, const char *cert, const char *key, const char *ca,
                             const char *priority, GError **error);
void vmig_proxy_tls_clear(VmigProxyTls *tls);
/* Current credentials, re-read first if a file changed (transfer full: unref when done). */
VmigProxyCreds *vmig_proxy_tls_get_creds(VmigProxyTls *tls);
void vmig_proxy_creds_unref(VmigProxyCreds *creds);
/* A non-blocking session on @fd; @expected_name pins the peer certificate identity (may be
 * NULL: chain only); the client sends @sni (the migration UID) so the server can check it. */
gnutls_session_t vmig_proxy_tls_session_new(VmigProxyTls *tls, VmigProxyCreds *creds,
                                            gboolean server, int fd, const char *expected_name,
                                            const char *sni, GError **error);

/* Sockets (sock.c). */
void vmig_proxy_sock_tune_tcp(int fd, guint user_timeout_ms);
gboolean vmig_proxy_sock_resolve(const char *host, guint16 port, struct sockaddr_storage *sa,
                                 socklen_t *len, GError **error);
int vmig_proxy_sock_listen_tcp(const char *address, guint16 *port_out, GError **error);
int vmig_proxy_sock_listen_unix(const char *path, uid_t uid, gid_t gid, guint mode, GError **error);
/* Fills @su for @path. Returns -1 when the path fits sun_path; a directory descriptor to close
 * after bind()/connect() when @su names it as /proc/self/fd/N/<name>; -2 on error. */
int vmig_proxy_sock_unix_addr(const char *path, struct sockaddr_un *su, GError **error);
int vmig_proxy_sock_in_netns(const char *netns_path, int family, GError **error);
/* Address of @sa without port, IPv4-mapped IPv6 turned into IPv4 (for comparisons/logs). */
char *vmig_proxy_sock_addr_string(const struct sockaddr_storage *sa);

typedef struct _VmigProxyMigration VmigProxyMigration;
typedef struct _VmigProxyConn VmigProxyConn;

typedef struct {
    VmigProxyMigration *mig;
    VmigProxyChannel channel;
    int fd; /* -1: channel not served */
    guint watch;
    guint rearm;  /* timer re-enabling accept after EMFILE */
    char *path;   /* source: unix socket file to unlink */
    guint16 port; /* target: bound port */
} VmigProxyListener;

struct _VmigProxyMigration {
    VmigProxy *proxy;
    char *uid;
    gboolean is_target;
    VmigProxyListener listeners[VMIG_PROXY_N_CHANNELS];
    /* source: where each channel dials */
    struct sockaddr_storage target_sa[VMIG_PROXY_N_CHANNELS];
    socklen_t target_salen[VMIG_PROXY_N_CHANNELS];
    char *peer_node; /* expected certificate identity of the other node */
    /* target: expected source address and where each channel forwards */
    char *expected_peer; /* normalized address string, NULL: any */
    char *forward_paths[VMIG_PROXY_N_CHANNELS];
    struct sockaddr_storage forward_sa[VMIG_PROXY_N_CHANNELS];
    socklen_t forward_salen[VMIG_PROXY_N_CHANNELS];
    char *forward_netns;
    GHashTable *conns;  /* set of VmigProxyConn */
    GHashTable *logged; /* "reason|peer" already logged once */
    VmigProxyStats stats;
};

struct _VmigProxy {
    VmigProxyConfig cfg;
    gboolean tls_on;
    VmigProxyTls tls;
    GHashTable *migrations; /* uid -> VmigProxyMigration */
    guint n_conns;
    gboolean shutting_down;
    guint grace_timer;
    GSourceFunc done;
    gpointer done_data;
};

/* conn.c */
void vmig_proxy_conn_accepted(VmigProxyMigration *mig, VmigProxyChannel channel, int fd);
/* Closes without callbacks or logs (stop/shutdown). */
void vmig_proxy_conn_drop(VmigProxyConn *conn);
/* proxy.c */
void vmig_proxy_log_once(VmigProxyMigration *mig, const char *peer, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
void vmig_proxy_conn_gone(VmigProxy *proxy);
