/* vmig/proxy.h - the migration-data proxy that carries libvirt and QEMU bytes between nodes.
 *
 * A VM pod has no route to other nodes: its libvirt and QEMU only see unix sockets that
 * vmigrated creates inside the pod's directory. Per migration (identified by the VMIM UID) the
 * proxy serves up to three channels, named by KubeVirt's keys: the libvirt control connection
 * (key 0), the memory stream (49152) and the disk/NBD stream (49153). On the source node each
 * channel is a unix listener at `<dir>/migrationproxy/<uid>[-<key>]-source.sock` whose
 * connections are dialled to the target node; on the target node each channel is a TCP listener
 * on a kernel-chosen port (published as `targetDirectMigrationNodePorts`) whose connections are
 * forwarded to the matching unix socket inside the target pod. Every accepted connection gets
 * its own node-to-node connection (multifd). Plain TCP is relayed zero-copy with splice(2);
 * node-to-node traffic is mutual TLS (GnuTLS) unless disableTLS is set. Everything runs on the
 * thread-default GLib main context; no thread per connection. It sits after the migration state
 * machine, which starts and stops it per migration.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

#define VMIG_PROXY_ERROR (vmig_proxy_error_quark())
GQuark vmig_proxy_error_quark(void);

typedef enum {
    VMIG_PROXY_ERROR_INVALID,   /* bad argument: UID, address, port map, path */
    VMIG_PROXY_ERROR_EXISTS,    /* the UID already runs with another role */
    VMIG_PROXY_ERROR_NOT_FOUND, /* no such migration */
    VMIG_PROXY_ERROR_IO,        /* socket or file operation failed (errno text in message) */
    VMIG_PROXY_ERROR_TLS,       /* credentials, handshake or peer verification failed */
    VMIG_PROXY_ERROR_REFUSED,   /* peer is not the expected one */
    VMIG_PROXY_ERROR_RESET,     /* a leg was reset or failed while relaying */
    VMIG_PROXY_ERROR_TIMEOUT,   /* connect or handshake deadline passed */
} VmigProxyErrorCode;

/* The three channels of a migration, in KubeVirt's key order. */
typedef enum {
    VMIG_PROXY_CHANNEL_LIBVIRT, /* key 0: libvirt control connection (dconnuri) */
    VMIG_PROXY_CHANNEL_MEMORY,  /* key 49152: QEMU migration stream (migrate_uri) */
    VMIG_PROXY_CHANNEL_DISK,    /* key 49153: NBD block migration (disks_uri) */
    VMIG_PROXY_N_CHANNELS,
} VmigProxyChannel;

/**
 * vmig_proxy_channel_key:
 * Returns: KubeVirt's key of @channel (0, 49152, 49153), or -1 for an invalid channel.
 */
int vmig_proxy_channel_key(VmigProxyChannel channel);

/**
 * vmig_proxy_channel_from_key:
 * @key: KubeVirt key (0, 49152, 49153) as found in targetDirectMigrationNodePorts values
 * Returns: TRUE and sets @out when @key names a channel.
 */
gboolean vmig_proxy_channel_from_key(int key, VmigProxyChannel *out);

/** vmig_proxy_channel_to_string: Returns: (transfer none): "libvirt", "memory", "disk". */
const char *vmig_proxy_channel_to_string(VmigProxyChannel channel);

/**
 * vmig_proxy_uid_is_valid:
 * Returns: TRUE when @uid is a UUID in canonical 8-4-4-4-12 hex form (a Kubernetes
 * metadata.uid), so it is safe inside a socket file name.
 */
gboolean vmig_proxy_uid_is_valid(const char *uid);

/**
 * vmig_proxy_socket_name:
 * Returns: (transfer full): KubeVirt's source socket file name for @channel of migration @uid:
 * `<uid>-source.sock`, `<uid>-49152-source.sock`, `<uid>-49153-source.sock`.
 */
char *vmig_proxy_socket_name(const char *uid, VmigProxyChannel channel);

/**
 * vmig_proxy_format_host_port:
 * @host: IPv4 or IPv6 literal (zone allowed: "fe80::1%eth0") or host name
 * @port: TCP port
 *
 * Joins @host and @port the way dialers parse them back (field case B09): IPv6 literals get
 * brackets ("[fd00:77::12]:4135"), everything else does not. Pure function.
 * Returns: (transfer full): the string.
 */
char *vmig_proxy_format_host_port(const char *host, guint16 port);

/**
 * vmig_proxy_parse_host_port:
 * @s: "host:port" or "[v6]:port"
 * @host: (out) (transfer full): the host without brackets
 * @port: (out): the port
 * Returns: FALSE with VMIG_PROXY_ERROR_INVALID naming @s when it does not parse.
 */
gboolean vmig_proxy_parse_host_port(const char *s, char **host, guint16 *port, GError **error);

/**
 * vmig_proxy_port_map_parse:
 * @map: a JSON object in the shape of KubeVirt's `status.migrationState.
 *       targetDirectMigrationNodePorts` ({"34567": 0, "34568": 49152})
 * @ports: (out caller-allocates) (array fixed-size=3): port per channel, 0 when absent
 * Returns: FALSE with VMIG_PROXY_ERROR_INVALID naming the bad member.
 */
gboolean vmig_proxy_port_map_parse(JsonNode *map, guint16 ports[VMIG_PROXY_N_CHANNELS],
                                   GError **error);

/* How the node-to-node legs of one migration are carried: KubeVirt's
 * spec.configuration.migrations.disableTLS, decided once per migration by the source node and
 * followed by the target, so both ends agree even while their caches of the KubeVirt CR lag. */
typedef enum {
    VMIG_PROXY_TRANSPORT_DEFAULT, /* the proxy's setting: TLS unless VmigProxyConfig.disable_tls */
    VMIG_PROXY_TRANSPORT_TLS,     /* mutual TLS (disableTLS false or absent) */
    VMIG_PROXY_TRANSPORT_PLAIN,   /* plain TCP (disableTLS true) */
} VmigProxyTransport;

/** vmig_proxy_transport_to_string: Returns: (transfer none): "default", "tls", "plain". */
const char *vmig_proxy_transport_to_string(VmigProxyTransport transport);

/* Daemon-wide settings (KubeVirt MigrationConfiguration and the node's TLS Secret). */
typedef struct {
    /* Mutual TLS between nodes; files of a mounted Secret, re-read when they change. */
    const char *cert_file;      /* PEM leaf certificate of this node (SAN dNSName = node name) */
    const char *key_file;       /* PEM private key */
    const char *ca_file;        /* PEM CA bundle used to verify peers */
    gboolean disable_tls;       /* no TLS credentials: every migration is plain TCP (warned
                                   about); a migration asking for TLS is refused at start */
    const char *tls_priority;   /* NULL: TLS 1.3 preferred, TLS 1.2 minimum */
    guint connect_timeout_ms;   /* node-to-node connect deadline; 0: 10000 ms */
    guint handshake_timeout_ms; /* TLS handshake deadline; 0: 10000 ms */
    guint unix_retry_ms;        /* target: how long to wait for the pod's socket; 0: 3000 ms */
    guint tcp_user_timeout_ms;  /* TCP_USER_TIMEOUT and keepalive budget; 0: 30000 ms */
    /* Called on the main context when a connection ends: bytes forward (source -> target)
     * and reverse; @error NULL for a clean end; not called for connections closed by
     * vmig_proxy_stop() or the shutdown grace period, nor for refused peers (those are counted
     * in VmigProxyStats.refused and logged once). The callback may call vmig_proxy_stop(). */
    void (*connection_done)(const char *uid, VmigProxyChannel channel, guint64 bytes_forward,
                            guint64 bytes_reverse, const GError *error, gpointer user_data);
    gpointer user_data;
} VmigProxyConfig;

typedef struct _VmigProxy VmigProxy;

/**
 * vmig_proxy_new:
 * @config: settings (copied)
 *
 * Loads the TLS credentials (unless disable_tls) and ignores SIGPIPE process-wide (writes to a
 * closed peer must fail with EPIPE, not kill the daemon). Logs a warning when TLS is disabled.
 * Returns: (transfer full): the proxy, or NULL with VMIG_PROXY_ERROR_TLS.
 */
VmigProxy *vmig_proxy_new(const VmigProxyConfig *config, GError **error);

/** vmig_proxy_free: closes everything at once (no grace period). */
void vmig_proxy_free(VmigProxy *proxy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigProxy, vmig_proxy_free)

/* Source side of one migration. */
typedef struct {
    const char *uid;            /* VMIM metadata.uid */
    const char *dir;            /* pod's virtShareDir seen from the host; sockets go into
                                   <dir>/migrationproxy/ (created 0755 if missing) */
    const char *target_address; /* VMIM status.migrationState.targetNodeAddress */
    guint16 target_ports[VMIG_PROXY_N_CHANNELS]; /* 0: channel not served */
    const char *target_node; /* expected certificate identity of the target (TLS) */
    uid_t socket_uid;        /* owner of the socket files (the pod's QEMU user) */
    gid_t socket_gid;
    guint socket_mode; /* 0: 0600 */
    /* TLS or plain dialling (the source's disableTLS decision); DEFAULT: the proxy's */
    VmigProxyTransport transport;
} VmigProxySourceSpec;

/* Target side of one migration. */
typedef struct {
    const char *uid;
    const char *listen_address; /* node's migration address; NULL or "": any (IPv6 dual stack,
                                   falling back to 0.0.0.0) */
    const char *expected_peer_address; /* source node's address; NULL: any address */
    const char *source_node;           /* expected certificate identity of the source (TLS) */
    /* Unix socket per channel inside the target pod (libvirt's socket for LIBVIRT, the socket
     * QEMU creates after Prepare for MEMORY/DISK); NULL: channel not served. */
    const char *forward_paths[VMIG_PROXY_N_CHANNELS];
    /* Optional: instead of a unix path, a TCP "host:port" reached from inside the network
     * namespace @forward_netns (e.g. /proc/<pid>/ns/net); NULL: unused. */
    const char *forward_tcp[VMIG_PROXY_N_CHANNELS];
    const char *forward_netns;
    /* what the listeners accept, as the source decided (its annotation); DEFAULT: the proxy's.
     * A TLS listener refuses a plain peer and a plain listener refuses a peer that opens
     * with a TLS handshake record: a mismatch fails, it never downgrades. */
    VmigProxyTransport transport;
} VmigProxyTargetSpec;

/**
 * vmig_proxy_start_source:
 * Creates the unix listeners of migration @spec->uid; each connection dials the target with
 * @spec->transport (logged once per migration; plain TCP as a warning). Idempotent: starting
 * a UID that already runs as source with the same transport returns TRUE and changes nothing.
 * Returns: FALSE with VMIG_PROXY_ERROR_INVALID (UID, path too long, no channel),
 * VMIG_PROXY_ERROR_EXISTS (UID runs as target, or with the other transport),
 * VMIG_PROXY_ERROR_TLS (TLS asked of a proxy made with disable_tls) or VMIG_PROXY_ERROR_IO
 * (mkdir, bind, chown); nothing is left behind on failure.
 */
gboolean vmig_proxy_start_source(VmigProxy *proxy, const VmigProxySourceSpec *spec, GError **error);

/**
 * vmig_proxy_start_target:
 * Binds one TCP listener per served channel on a kernel-chosen port, accepting
 * @spec->transport only. Idempotent like vmig_proxy_start_source().
 * Returns: FALSE with VMIG_PROXY_ERROR_INVALID, _EXISTS, _TLS or _IO.
 */
gboolean vmig_proxy_start_target(VmigProxy *proxy, const VmigProxyTargetSpec *spec, GError **error);

/**
 * vmig_proxy_target_port_map:
 * Returns: (transfer full) (nullable): targetDirectMigrationNodePorts of target migration @uid
 * as a JSON object {"<port>": key, ...}, or NULL when @uid is not a running target.
 */
JsonNode *vmig_proxy_target_port_map(VmigProxy *proxy, const char *uid);

/**
 * vmig_proxy_target_port:
 * Returns: the TCP port of @channel of target migration @uid, 0 when not served.
 */
guint16 vmig_proxy_target_port(VmigProxy *proxy, const char *uid, VmigProxyChannel channel);

/**
 * vmig_proxy_stop:
 * Closes the listeners (unlinks socket files, releases ports) and every connection of @uid
 * without error logs or connection_done calls. Idempotent.
 * Returns: TRUE when something was running.
 */
gboolean vmig_proxy_stop(VmigProxy *proxy, const char *uid);

/* Byte and connection counters of one migration. */
typedef struct {
    guint64 bytes_forward[VMIG_PROXY_N_CHANNELS]; /* bytes, source -> target */
    guint64 bytes_reverse[VMIG_PROXY_N_CHANNELS]; /* bytes, target -> source */
    guint connections[VMIG_PROXY_N_CHANNELS];     /* accepted since start */
    guint active[VMIG_PROXY_N_CHANNELS];          /* open now */
    guint refused;                                /* refused peers (address, TLS, UID) */
    VmigProxyTransport transport;                 /* TLS or PLAIN, never DEFAULT */
} VmigProxyStats;

/**
 * vmig_proxy_get_stats:
 * Returns: TRUE and fills @out when @uid runs; FALSE otherwise.
 */
gboolean vmig_proxy_get_stats(VmigProxy *proxy, const char *uid, VmigProxyStats *out);

/**
 * vmig_proxy_shutdown:
 * @grace_ms: how long live connections may keep running, in ms
 * @done: (nullable): called once when the last connection ended or the grace period passed
 *
 * Daemon shutdown: closes every listener at once (nothing new is accepted) and keeps relaying
 * live connections until they end or @grace_ms passes, then closes them.
 */
void vmig_proxy_shutdown(VmigProxy *proxy, guint grace_ms, GSourceFunc done, gpointer user_data);

/**
 * vmig_proxy_n_connections:
 * Returns: open connections over all migrations.
 */
guint vmig_proxy_n_connections(VmigProxy *proxy);

G_END_DECLS
