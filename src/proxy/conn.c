/* conn.c - one proxied connection: dial or forward, TLS handshake, then the relay.
 *
 * Leg 0 is the accepted connection, leg 1 the one we open; direction 0 (leg 0 -> leg 1) is
 * source -> target on both nodes. One GSource per connection watches both descriptors; the
 * relay moves at most a bounded amount per dispatch so no callback runs long. */
#include "proxy-private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define VMIG_PROXY_PIPE_SIZE (1024 * 1024)
#define VMIG_PROXY_TLS_BUF   (256 * 1024)
#define VMIG_PROXY_TLS_RA    (128 * 1024)      /* TLS read-ahead per relaying connection */
#define VMIG_PROXY_BUDGET    (8 * 1024 * 1024) /* bytes per direction per dispatch */
#define VMIG_PROXY_RETRY_MS  50

typedef enum {
    VMIG_PROXY_CONN_CONNECTING, /* leg 1 connect in progress */
    VMIG_PROXY_CONN_RETRY,      /* target: pod socket not there yet, retry later */
    VMIG_PROXY_CONN_HANDSHAKE,  /* TLS handshake on the node-to-node leg */
    VMIG_PROXY_CONN_RELAY,
} VmigProxyConnState;

typedef enum {
    VMIG_PROXY_WANT_NONE,
    VMIG_PROXY_WANT_READ,  /* waiting for the source leg to be readable */
    VMIG_PROXY_WANT_WRITE, /* waiting for the destination leg to be writable */
} VmigProxyWant;

typedef struct {
    int fd;
    gnutls_session_t tls;
    gboolean rd_eof;
    gpointer tag;
    /* TLS read-ahead while relaying: GnuTLS asks the transport for a record's 5-byte header,
     * then its body, two recv(2) per record of at most 16 KiB; one large recv serves many. */
    char *ra;
    size_t ra_off, ra_len;
} VmigProxyLeg;

typedef struct {
    int pipe[2];
    size_t in_pipe;
    char *buf;
    size_t off, len;
    gboolean shut_pending; /* TLS close_notify not yet fully sent */
    gboolean done;
    VmigProxyWant want;
    guint64 bytes;
} VmigProxyDir;

typedef struct {
    GSource base;
    VmigProxyConn *conn;
} VmigProxyConnSource;

struct _VmigProxyConn {
    VmigProxyMigration *mig;
    VmigProxyChannel channel;
    VmigProxyConnState state;
    VmigProxyLeg leg[2];
    VmigProxyDir dir[2];
    int tls_leg; /* index of the TLS leg, -1: plain */
    VmigProxyCreds *creds;
    GSource *source;
    gint64 deadline; /* monotonic us for connect/handshake/retry, 0: none */
    gint64 retry_at;
    char *peer;     /* peer address for logs */
    gboolean sniff; /* plain target: the source's first byte is not yet seen */
};

static gboolean vmig_proxy_conn_dispatch(GSource *source, GSourceFunc cb, gpointer data);

static GSourceFuncs vmig_proxy_conn_funcs = {
    .dispatch = vmig_proxy_conn_dispatch,
};

static void
vmig_proxy_conn_free(VmigProxyConn *conn)
{
    VmigProxyMigration *mig = conn->mig;
    g_hash_table_remove(mig->conns, conn);
    mig->stats.active[conn->channel]--;
    if (conn->source) {
        g_source_destroy(conn->source);
        g_source_unref(conn->source);
    }
    for (int i = 0; i < 2; i++) {
        if (conn->leg[i].tls)
            gnutls_deinit(conn->leg[i].tls);
        if (conn->leg[i].fd >= 0)
            close(conn->leg[i].fd);
        for (int j = 0; j < 2; j++) {
            if (conn->dir[i].pipe[j] >= 0)
                close(conn->dir[i].pipe[j]);
        }
        g_free(conn->dir[i].buf);
        g_free(conn->leg[i].ra);
    }
    vmig_proxy_creds_unref(conn->creds);
    g_free(conn->peer);
    VmigProxy *proxy = mig->proxy;
    g_free(conn);
    vmig_proxy_conn_gone(proxy);
}

void
vmig_proxy_conn_drop(VmigProxyConn *conn)
{
    vmig_proxy_conn_free(conn);
}

/* The end of a connection: free it first, then tell the owner (who may stop the migration
 * from the callback). */
static void
vmig_proxy_conn_finish(VmigProxyConn *conn, GError *error)
{
    VmigProxy *proxy = conn->mig->proxy;
    g_autofree char *uid = g_strdup(conn->mig->uid);
    VmigProxyChannel ch = conn->channel;
    guint64 fwd = conn->dir[0].bytes, rev = conn->dir[1].bytes;
    if (error)
        g_warning("proxy: migration %s channel %s peer %s: %s", uid,
                  vmig_proxy_channel_to_string(ch), conn->peer, error->message);
    else
        g_debug("proxy: migration %s channel %s peer %s: done, %" G_GUINT64_FORMAT
                " bytes forward, %" G_GUINT64_FORMAT " reverse",
                uid, vmig_proxy_channel_to_string(ch), conn->peer, fwd, rev);
    vmig_proxy_conn_free(conn);
    if (proxy->cfg.connection_done)
        proxy->cfg.connection_done(uid, ch, fwd, rev, error, proxy->cfg.user_data);
    g_clear_error(&error);
}

/* A refused peer: closed, counted and logged once per reason and address. */
static void
vmig_proxy_conn_refuse(VmigProxyConn *conn, const char *reason)
{
    VmigProxyMigration *mig = conn->mig;
    mig->stats.refused++;
    vmig_proxy_log_once(mig, conn->peer, "proxy: migration %s channel %s: refused peer %s: %s",
                        mig->uid, vmig_proxy_channel_to_string(conn->channel), conn->peer, reason);
    vmig_proxy_conn_free(conn);
}

static GError *
vmig_proxy_errno_error(VmigProxyConn *conn, int leg, const char *what, int e)
{
    return g_error_new(VMIG_PROXY_ERROR,
                       e == ECONNRESET || e == EPIPE ? VMIG_PROXY_ERROR_RESET : VMIG_PROXY_ERROR_IO,
                       "%s on %s leg: %s", what, leg == 0 ? "accepted" : "outgoing", g_strerror(e));
}

/* Direction @d with splice(2): socket -> pipe -> socket, no copy through user space. */
static GError *
vmig_proxy_pump_splice(VmigProxyConn *conn, int d)
{
    VmigProxyLeg *src = &conn->leg[d], *dst = &conn->leg[!d];
    VmigProxyDir *dr = &conn->dir[d];
    size_t moved = 0;
    while (!dr->done) {
        if (dr->in_pipe > 0) {
            ssize_t n = splice(dr->pipe[0], NULL, dst->fd, NULL, dr->in_pipe,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN) {
                    dr->want = VMIG_PROXY_WANT_WRITE;
                    return NULL;
                }
                return vmig_proxy_errno_error(conn, !d, "write", errno);
            }
            dr->in_pipe -= n;
            dr->bytes += n;
            (d == 0 ? conn->mig->stats.bytes_forward
                    : conn->mig->stats.bytes_reverse)[conn->channel] += n;
            moved += n;
            if (moved >= VMIG_PROXY_BUDGET) {
                /* Level-triggered poll brings us back at once if there is more. */
                dr->want = dr->in_pipe ? VMIG_PROXY_WANT_WRITE : VMIG_PROXY_WANT_READ;
                return NULL;
            }
            continue;
        }
        if (src->rd_eof) {
            /* Half-close: the other direction keeps running (B10 a). */
            if (shutdown(dst->fd, SHUT_WR) < 0 && errno != ENOTCONN)
                return vmig_proxy_errno_error(conn, !d, "shutdown", errno);
            dr->done = TRUE;
            dr->want = VMIG_PROXY_WANT_NONE;
            break;
        }
        ssize_t n = splice(src->fd, NULL, dr->pipe[1], NULL, VMIG_PROXY_PIPE_SIZE,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n == 0) {
            src->rd_eof = TRUE;
            continue;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                dr->want = VMIG_PROXY_WANT_READ;
                return NULL;
            }
            return vmig_proxy_errno_error(conn, d, "read", errno);
        }
        dr->in_pipe += n;
    }
    return NULL;
}

/* Read into @buf from a leg. Returns bytes, 0 at EOF, -1 with errno EAGAIN, or -2 (error set). */
static ssize_t
vmig_proxy_leg_read(VmigProxyConn *conn, int l, char *buf, size_t len, GError **error)
{
    VmigProxyLeg *leg = &conn->leg[l];
    if (leg->tls) {
        ssize_t n = gnutls_record_recv(leg->tls, buf, len);
        if (n >= 0)
            return n;
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            errno = EAGAIN;
            return -1;
        }
        /* A peer's FIN without close_notify could be a truncation attack: fail. */
        int e = errno;
        if (n == GNUTLS_E_FATAL_ALERT_RECEIVED)
            *error = g_error_new(VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TLS,
                                 "TLS read: peer sent alert '%s' (it refused us)",
                                 gnutls_alert_get_name(gnutls_alert_get(leg->tls)));
        else
            *error = g_error_new(VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_RESET, "TLS read: %s%s%s",
                                 gnutls_strerror((int)n), n == GNUTLS_E_PULL_ERROR ? ": " : "",
                                 n == GNUTLS_E_PULL_ERROR ? g_strerror(e) : "");
        return -2;
    }
    ssize_t n = read(leg->fd, buf, len);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EINTR) {
        errno = EAGAIN;
        return -1;
    }
    *error = vmig_proxy_errno_error(conn, l, "read", errno);
    return -2;
}

static ssize_t
vmig_proxy_leg_write(VmigProxyConn *conn, int l, const char *buf, size_t len, GError **error)
{
    VmigProxyLeg *leg = &conn->leg[l];
    if (leg->tls) {
        ssize_t n = gnutls_record_send(leg->tls, buf, len);
        if (n >= 0)
            return n;
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            errno = EAGAIN;
            return -1;
        }
        *error = g_error_new(VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_RESET, "TLS write: %s",
                             gnutls_strerror((int)n));
        return -2;
    }
    ssize_t n = send(leg->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EINTR) {
        errno = EAGAIN;
        return -1;
    }
    *error = vmig_proxy_errno_error(conn, l, "write", errno);
    return -2;
}

/* Direction @d through a user-space buffer: one of the legs is TLS, so splice cannot be used.
 * Records are at most 16 KiB; the buffer gathers many before writing. */
static GError *
vmig_proxy_pump_copy(VmigProxyConn *conn, int d)
{
    VmigProxyLeg *src = &conn->leg[d], *dst = &conn->leg[!d];
    VmigProxyDir *dr = &conn->dir[d];
    GError *error = NULL;
    size_t moved = 0;
    while (!dr->done) {
        if (dr->len > dr->off) {
            ssize_t n =
                vmig_proxy_leg_write(conn, !d, dr->buf + dr->off, dr->len - dr->off, &error);
            if (n == -2)
                return error;
            if (n < 0) {
                dr->want = VMIG_PROXY_WANT_WRITE;
                return NULL;
            }
            dr->off += n;
            dr->bytes += n;
            (d == 0 ? conn->mig->stats.bytes_forward
                    : conn->mig->stats.bytes_reverse)[conn->channel] += n;
            moved += n;
            if (dr->off == dr->len)
                dr->off = dr->len = 0;
            if (moved >= VMIG_PROXY_BUDGET) {
                dr->want = VMIG_PROXY_WANT_NONE; /* come back through ready_time */
                g_source_set_ready_time(conn->source, 0);
                return NULL;
            }
            continue;
        }
        if (src->rd_eof) {
            if (dst->tls) {
                int rc = gnutls_bye(dst->tls, GNUTLS_SHUT_WR);
                if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
                    dr->want = VMIG_PROXY_WANT_WRITE;
                    return NULL;
                }
            }
            if (shutdown(dst->fd, SHUT_WR) < 0 && errno != ENOTCONN)
                return vmig_proxy_errno_error(conn, !d, "shutdown", errno);
            dr->done = TRUE;
            dr->want = VMIG_PROXY_WANT_NONE;
            break;
        }
        /* Fill the buffer as far as the source has data, then write it in one go. */
        while (dr->len < VMIG_PROXY_TLS_BUF) {
            ssize_t n = vmig_proxy_leg_read(conn, d, dr->buf + dr->len,
                                            VMIG_PROXY_TLS_BUF - dr->len, &error);
            if (n == -2)
                return error;
            if (n == 0) {
                src->rd_eof = TRUE;
                break;
            }
            if (n < 0)
                break;
            dr->len += n;
        }
        if (dr->len == 0 && !src->rd_eof) {
            dr->want = VMIG_PROXY_WANT_READ;
            return NULL;
        }
    }
    return NULL;
}

static void
vmig_proxy_conn_watch(VmigProxyConn *conn, int l, GIOCondition cond)
{
    VmigProxyLeg *leg = &conn->leg[l];
    if (leg->fd < 0)
        return;
    if (leg->tag == NULL)
        leg->tag = g_source_add_unix_fd(conn->source, leg->fd, cond);
    else
        g_source_modify_unix_fd(conn->source, leg->tag, cond);
}

/* Poll interest from what each direction waits for; an fd nobody waits on is not polled at
 * all (a half-closed peer would otherwise report HUP forever). */
static void
vmig_proxy_conn_update_watch(VmigProxyConn *conn)
{
    GIOCondition cond[2] = {0, 0};
    for (int d = 0; d < 2; d++) {
        if (conn->dir[d].want == VMIG_PROXY_WANT_READ)
            cond[d] |= G_IO_IN;
        else if (conn->dir[d].want == VMIG_PROXY_WANT_WRITE)
            cond[!d] |= G_IO_OUT;
    }
    for (int l = 0; l < 2; l++) {
        /* A leg whose peer already sent EOF is still watched for a full close or reset: a
         * unix peer that went away for good (HUP) can never take the other direction's bytes,
         * so the connection ends instead of lingering until the far side closes. */
        if (cond[l] == 0 && conn->dir[l].done && !conn->dir[!l].done)
            cond[l] = G_IO_HUP | G_IO_ERR;
        vmig_proxy_conn_watch(conn, l, cond[l]);
    }
}

/* Checks the legs watched only for HUP/ERR (see above). Returns TRUE when the connection ended
 * (it is freed then). */
static gboolean
vmig_proxy_conn_check_hangup(VmigProxyConn *conn)
{
    for (int l = 0; l < 2; l++) {
        VmigProxyLeg *leg = &conn->leg[l];
        if (!leg->tag || !conn->dir[l].done || conn->dir[!l].done)
            continue;
        GIOCondition rev = g_source_query_unix_fd(conn->source, leg->tag);
        if (rev & G_IO_ERR) {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(leg->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
                err = ECONNRESET;
            vmig_proxy_conn_finish(conn, vmig_proxy_errno_error(conn, l, "peer", err));
            return TRUE;
        }
        if (rev & G_IO_HUP) {
            VmigProxyDir *back = &conn->dir[!l];
            size_t pending = back->in_pipe + (back->len - back->off);
            if (pending > 0) {
                vmig_proxy_conn_finish(
                    conn, g_error_new(VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_RESET,
                                      "%s leg closed with %zu bytes not delivered to it",
                                      l == 0 ? "accepted" : "outgoing", pending));
            } else {
                vmig_proxy_conn_finish(conn, NULL);
            }
            return TRUE;
        }
    }
    return FALSE;
}

/* TLS records start with their content type; a handshake is 22 (RFC 8446 5.1). libvirt's
 * RPC (a big-endian length), QEMU's stream ("QEVM") and an NBD client (flags) never start so. */
#define VMIG_PROXY_TLS_HANDSHAKE_RECORD 0x16

/* Plain target: a source that opens with a TLS handshake thinks this migration is TLS. Relaying
 * its ClientHello to the pod would only fail later and less clearly; refuse it instead (no
 * downgrade either way). Returns TRUE when the connection was refused (and freed). */
static gboolean
vmig_proxy_conn_sniff(VmigProxyConn *conn)
{
    guchar b;
    ssize_t n = recv(conn->leg[0].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return FALSE; /* nothing yet: direction 0 waits (see the relay) */
    conn->sniff = FALSE;
    if (n == 1 && b == VMIG_PROXY_TLS_HANDSHAKE_RECORD) {
        vmig_proxy_conn_refuse(conn, "the peer speaks TLS but this migration is plain TCP "
                                     "(disableTLS): the two nodes disagree");
        return TRUE;
    }
    return FALSE; /* data, EOF or an error: the relay handles them */
}

static GError *
vmig_proxy_conn_relay(VmigProxyConn *conn)
{
    for (int d = 0; d < 2; d++) {
        if (d == 0 && conn->sniff) {
            /* not one byte of the source's may be consumed before it was looked at */
            conn->dir[0].want = VMIG_PROXY_WANT_READ;
            continue;
        }
        GError *e =
            conn->tls_leg >= 0 ? vmig_proxy_pump_copy(conn, d) : vmig_proxy_pump_splice(conn, d);
        if (e)
            return e;
    }
    /* GnuTLS may hold decrypted bytes the kernel no longer signals. */
    if (conn->tls_leg >= 0) {
        VmigProxyDir *dr = &conn->dir[conn->tls_leg];
        if (!dr->done && dr->want == VMIG_PROXY_WANT_READ &&
            gnutls_record_check_pending(conn->leg[conn->tls_leg].tls) > 0)
            g_source_set_ready_time(conn->source, 0);
    }
    vmig_proxy_conn_update_watch(conn);
    return NULL;
}

/* The TLS leg's transport while relaying (gnutls_transport_set_*_function): reads come
 * from the read-ahead buffer, refilled with one recv of up to VMIG_PROXY_TLS_RA bytes;
 * writes go straight out with one sendmsg per record (header and body together). Data in
 * the buffer is always consumed before the pump waits for the socket: it reads until
 * GnuTLS says EAGAIN, which it only says once buffer and socket are both empty. */
static ssize_t
vmig_proxy_leg_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
    VmigProxyLeg *leg = ptr;
    if (leg->ra_off == leg->ra_len) {
        ssize_t n = recv(leg->fd, leg->ra, VMIG_PROXY_TLS_RA, 0);
        if (n <= 0) {
            if (n < 0)
                gnutls_transport_set_errno(leg->tls, errno);
            return n;
        }
        leg->ra_off = 0;
        leg->ra_len = (size_t)n;
    }
    size_t k = MIN(len, leg->ra_len - leg->ra_off);
    memcpy(data, leg->ra + leg->ra_off, k);
    leg->ra_off += k;
    return (ssize_t)k;
}

static int
vmig_proxy_leg_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
    VmigProxyLeg *leg = ptr;
    if (leg->ra_off < leg->ra_len)
        return 1;
    struct pollfd pfd = {.fd = leg->fd, .events = POLLIN};
    int rc = poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
    if (rc < 0)
        gnutls_transport_set_errno(leg->tls, errno);
    return rc;
}

static ssize_t
vmig_proxy_leg_vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
    VmigProxyLeg *leg = ptr;
    /* giovec_t has struct iovec's layout (gnutls.h) */
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t n = sendmsg(leg->fd, &msg, MSG_NOSIGNAL);
    if (n < 0)
        gnutls_transport_set_errno(leg->tls, errno);
    return n;
}

static void
vmig_proxy_conn_start_relay(VmigProxyConn *conn)
{
    conn->state = VMIG_PROXY_CONN_RELAY;
    conn->deadline = 0;
    g_source_set_ready_time(conn->source, 0); /* first pump at once */
    for (int d = 0; d < 2; d++) {
        VmigProxyDir *dr = &conn->dir[d];
        if (conn->tls_leg >= 0) {
            dr->buf = g_malloc(VMIG_PROXY_TLS_BUF);
            VmigProxyLeg *leg = &conn->leg[conn->tls_leg];
            if (!leg->ra) {
                leg->ra = g_malloc(VMIG_PROXY_TLS_RA);
                gnutls_transport_set_ptr(leg->tls, leg);
                gnutls_transport_set_pull_function(leg->tls, vmig_proxy_leg_pull);
                gnutls_transport_set_pull_timeout_function(leg->tls, vmig_proxy_leg_pull_timeout);
                gnutls_transport_set_vec_push_function(leg->tls, vmig_proxy_leg_vec_push);
            }
        } else if (pipe2(dr->pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
            /* Bigger pipe, fewer wakeups; not fatal when pipe-max-size forbids it. */
            (void)fcntl(dr->pipe[0], F_SETPIPE_SZ, VMIG_PROXY_PIPE_SIZE);
        }
    }
}

static void
vmig_proxy_conn_begin_handshake(VmigProxyConn *conn, int l)
{
    VmigProxy *proxy = conn->mig->proxy;
    GError *err = NULL;
    conn->creds = vmig_proxy_tls_get_creds(&proxy->tls);
    gboolean server = conn->mig->is_target;
    conn->leg[l].tls =
        vmig_proxy_tls_session_new(&proxy->tls, conn->creds, server, conn->leg[l].fd,
                                   conn->mig->peer_node, server ? NULL : conn->mig->uid, &err);
    if (!conn->leg[l].tls) {
        vmig_proxy_conn_finish(conn, err);
        return;
    }
    conn->tls_leg = l;
    conn->state = VMIG_PROXY_CONN_HANDSHAKE;
    conn->deadline =
        g_get_monotonic_time() + (gint64)proxy->cfg.handshake_timeout_ms * G_TIME_SPAN_MILLISECOND;
    g_source_set_ready_time(conn->source, 0);
}

/* Target: open leg 1 to the pod's socket. Returns FALSE when the connection was freed. */
static gboolean
vmig_proxy_conn_connect_forward(VmigProxyConn *conn)
{
    VmigProxyMigration *mig = conn->mig;
    VmigProxyChannel ch = conn->channel;
    int fd = -1;
    if (mig->forward_paths[ch]) {
        struct sockaddr_un su;
        int dirfd = vmig_proxy_sock_unix_addr(mig->forward_paths[ch], &su, NULL);
        int e = dirfd == -2 && errno ? errno : ENAMETOOLONG;
        if (dirfd != -2) {
            fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            int rc = fd >= 0 ? connect(fd, (struct sockaddr *)&su, sizeof su) : -1;
            e = errno;
            if (dirfd >= 0)
                close(dirfd);
            if (rc == 0) {
                conn->leg[1].fd = fd;
                vmig_proxy_conn_start_relay(conn);
                return TRUE;
            }
        }
        if (fd >= 0)
            close(fd);
        /* QEMU creates its socket only after libvirt's Prepare: wait a little for it. */
        if ((e == ENOENT || e == ECONNREFUSED || e == EAGAIN) &&
            g_get_monotonic_time() < conn->deadline) {
            conn->state = VMIG_PROXY_CONN_RETRY;
            conn->retry_at = g_get_monotonic_time() + VMIG_PROXY_RETRY_MS * 1000;
            g_source_set_ready_time(conn->source, conn->retry_at);
            vmig_proxy_conn_watch(conn, 0, 0);
            return TRUE;
        }
        vmig_proxy_conn_finish(conn, g_error_new(VMIG_PROXY_ERROR,
                                                 e == ENOENT || e == ECONNREFUSED
                                                     ? VMIG_PROXY_ERROR_TIMEOUT
                                                     : VMIG_PROXY_ERROR_IO,
                                                 "connect to pod socket '%s': %s",
                                                 mig->forward_paths[ch], g_strerror(e)));
        return FALSE;
    }
    /* TCP inside the launcher's network namespace. */
    g_autoptr(GError) err = NULL;
    int family = mig->forward_sa[ch].ss_family;
    fd = mig->forward_netns ? vmig_proxy_sock_in_netns(mig->forward_netns, family, &err)
                            : socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vmig_proxy_conn_finish(conn, err ? g_steal_pointer(&err)
                                         : vmig_proxy_errno_error(conn, 1, "socket", errno));
        return FALSE;
    }
    conn->leg[1].fd = fd;
    if (connect(fd, (struct sockaddr *)&mig->forward_sa[ch], mig->forward_salen[ch]) < 0 &&
        errno != EINPROGRESS) {
        vmig_proxy_conn_finish(conn, vmig_proxy_errno_error(conn, 1, "connect", errno));
        return FALSE;
    }
    conn->state = VMIG_PROXY_CONN_CONNECTING;
    vmig_proxy_conn_watch(conn, 0, 0);
    vmig_proxy_conn_watch(conn, 1, G_IO_OUT);
    return TRUE;
}

static void
vmig_proxy_conn_after_handshake(VmigProxyConn *conn)
{
    VmigProxyMigration *mig = conn->mig;
    if (mig->is_target) {
        /* The port belongs to one migration: the source names it in SNI (B24 case 5). */
        char name[256];
        size_t len = sizeof name - 1;
        unsigned int type = 0;
        if (gnutls_server_name_get(conn->leg[0].tls, name, &len, &type, 0) < 0 ||
            type != GNUTLS_NAME_DNS || len != strlen(mig->uid) ||
            g_ascii_strncasecmp(name, mig->uid, len) != 0) {
            (void)gnutls_alert_send(conn->leg[0].tls, GNUTLS_AL_FATAL, GNUTLS_A_ACCESS_DENIED);
            vmig_proxy_conn_refuse(conn, "TLS server name is not this port's migration UID");
            return;
        }
        conn->deadline = g_get_monotonic_time() +
                         (gint64)mig->proxy->cfg.unix_retry_ms * G_TIME_SPAN_MILLISECOND;
        vmig_proxy_conn_connect_forward(conn);
        return;
    }
    vmig_proxy_conn_start_relay(conn);
}

static void
vmig_proxy_conn_handshake(VmigProxyConn *conn)
{
    int l = conn->tls_leg;
    int rc = gnutls_handshake(conn->leg[l].tls);
    if (rc == GNUTLS_E_SUCCESS) {
        vmig_proxy_conn_watch(conn, l, 0);
        g_autofree char *desc = gnutls_session_get_desc(conn->leg[l].tls);
        g_debug("proxy: migration %s peer %s: %s", conn->mig->uid, conn->peer, desc);
        vmig_proxy_conn_after_handshake(conn);
        return;
    }
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
        vmig_proxy_conn_watch(conn, l,
                              gnutls_record_get_direction(conn->leg[l].tls) ? G_IO_OUT : G_IO_IN);
        return;
    }
    g_autofree char *reason = NULL;
    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
        unsigned int status = gnutls_session_get_verify_cert_status(conn->leg[l].tls);
        gnutls_datum_t out = {0};
        if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
            reason = g_strdup_printf("TLS handshake: peer certificate rejected: %s", out.data);
            gnutls_free(out.data);
        }
    }
    if (!reason)
        reason = g_strdup_printf("TLS handshake: %s", gnutls_strerror(rc));
    /* Best effort (non-blocking): tells the peer why, so its log names the reason. */
    (void)gnutls_alert_send_appropriate(conn->leg[l].tls, rc);
    if (conn->mig->is_target)
        vmig_proxy_conn_refuse(conn, reason);
    else
        vmig_proxy_conn_finish(conn, g_error_new(VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TLS,
                                                 "to target %s: %s", conn->peer, reason));
}

static void
vmig_proxy_conn_connected(VmigProxyConn *conn)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(conn->leg[1].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == EINPROGRESS || err == EALREADY)
        return;
    if (err != 0) {
        vmig_proxy_conn_finish(
            conn, g_error_new(VMIG_PROXY_ERROR,
                              err == ECONNREFUSED ? VMIG_PROXY_ERROR_REFUSED : VMIG_PROXY_ERROR_IO,
                              "connect to %s: %s", conn->peer, g_strerror(err)));
        return;
    }
    vmig_proxy_conn_watch(conn, 1, 0);
    if (!conn->mig->is_target && conn->mig->stats.transport == VMIG_PROXY_TRANSPORT_TLS)
        vmig_proxy_conn_begin_handshake(conn, 1);
    else
        vmig_proxy_conn_start_relay(conn);
}

static gboolean
vmig_proxy_conn_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    VmigProxyConn *conn = ((VmigProxyConnSource *)source)->conn;
    gint64 now = g_get_monotonic_time();
    g_source_set_ready_time(source, -1);
    switch (conn->state) {
    case VMIG_PROXY_CONN_CONNECTING:
        if (conn->deadline && now >= conn->deadline) {
            vmig_proxy_conn_finish(conn, g_error_new(VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TIMEOUT,
                                                     "connect to %s: timed out", conn->peer));
            return G_SOURCE_REMOVE;
        }
        if (conn->leg[1].tag && g_source_query_unix_fd(source, conn->leg[1].tag))
            vmig_proxy_conn_connected(conn);
        else if (conn->deadline)
            g_source_set_ready_time(source, conn->deadline);
        break;
    case VMIG_PROXY_CONN_RETRY:
        if (now < conn->retry_at) {
            g_source_set_ready_time(source, conn->retry_at);
            break;
        }
        vmig_proxy_conn_connect_forward(conn);
        break;
    case VMIG_PROXY_CONN_HANDSHAKE:
        if (now >= conn->deadline) {
            if (conn->mig->is_target)
                vmig_proxy_conn_refuse(conn, "TLS handshake timed out");
            else
                vmig_proxy_conn_finish(conn,
                                       g_error_new(VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TIMEOUT,
                                                   "TLS handshake with %s timed out", conn->peer));
            return G_SOURCE_REMOVE;
        }
        vmig_proxy_conn_handshake(conn);
        /* still alive? the state tells: handshake may have freed conn */
        break;
    case VMIG_PROXY_CONN_RELAY: {
        if (conn->sniff && vmig_proxy_conn_sniff(conn))
            return G_SOURCE_REMOVE;
        if (vmig_proxy_conn_check_hangup(conn))
            return G_SOURCE_REMOVE;
        GError *e = vmig_proxy_conn_relay(conn);
        if (e) {
            vmig_proxy_conn_finish(conn, e);
            return G_SOURCE_REMOVE;
        }
        if (conn->dir[0].done && conn->dir[1].done) {
            vmig_proxy_conn_finish(conn, NULL);
            return G_SOURCE_REMOVE;
        }
        break;
    }
    }
    return G_SOURCE_CONTINUE;
}

void
vmig_proxy_conn_accepted(VmigProxyMigration *mig, VmigProxyChannel channel, int fd)
{
    VmigProxy *proxy = mig->proxy;
    VmigProxyConn *conn = g_new0(VmigProxyConn, 1);
    conn->mig = mig;
    conn->channel = channel;
    conn->tls_leg = -1;
    conn->leg[0].fd = fd;
    conn->leg[1].fd = -1;
    for (int d = 0; d < 2; d++)
        conn->dir[d].pipe[0] = conn->dir[d].pipe[1] = -1;
    conn->source = g_source_new(&vmig_proxy_conn_funcs, sizeof(VmigProxyConnSource));
    ((VmigProxyConnSource *)conn->source)->conn = conn;
    g_source_set_static_name(conn->source, "vmig-proxy-conn");
    g_source_attach(conn->source, NULL);
    g_hash_table_add(mig->conns, conn);
    proxy->n_conns++;
    mig->stats.connections[channel]++;
    mig->stats.active[channel]++;

    if (mig->is_target) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0)
            memset(&sa, 0, sizeof sa);
        conn->peer = vmig_proxy_sock_addr_string(&sa);
        vmig_proxy_sock_tune_tcp(fd, proxy->cfg.tcp_user_timeout_ms);
        if (mig->expected_peer && g_strcmp0(mig->expected_peer, conn->peer) != 0) {
            vmig_proxy_conn_refuse(conn, "not the expected source node address");
            return;
        }
        if (mig->stats.transport == VMIG_PROXY_TRANSPORT_TLS) {
            vmig_proxy_conn_begin_handshake(conn, 0);
            return;
        }
        /* Plain: the source's first byte is checked before anything goes to the pod. */
        conn->sniff = TRUE;
        conn->deadline =
            g_get_monotonic_time() + (gint64)proxy->cfg.unix_retry_ms * G_TIME_SPAN_MILLISECOND;
        vmig_proxy_conn_connect_forward(conn);
        return;
    }

    /* Source: dial the target node for this channel. */
    conn->peer = vmig_proxy_sock_addr_string(&mig->target_sa[channel]);
    int out =
        socket(mig->target_sa[channel].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (out < 0) {
        vmig_proxy_conn_finish(conn, vmig_proxy_errno_error(conn, 1, "socket", errno));
        return;
    }
    conn->leg[1].fd = out;
    vmig_proxy_sock_tune_tcp(out, proxy->cfg.tcp_user_timeout_ms);
    if (connect(out, (struct sockaddr *)&mig->target_sa[channel], mig->target_salen[channel]) < 0 &&
        errno != EINPROGRESS) {
        vmig_proxy_conn_finish(conn, vmig_proxy_errno_error(conn, 1, "connect", errno));
        return;
    }
    conn->state = VMIG_PROXY_CONN_CONNECTING;
    conn->deadline =
        g_get_monotonic_time() + (gint64)proxy->cfg.connect_timeout_ms * G_TIME_SPAN_MILLISECOND;
    g_source_set_ready_time(conn->source, conn->deadline);
    vmig_proxy_conn_watch(conn, 1, G_IO_OUT);
}
