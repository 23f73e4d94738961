/* test-proxy-tls.c - mutual TLS between proxies: the B24 refusal matrix, disableTLS (run B),
 * data and half-close over TLS, and certificate files reloaded without restart. The test CA
 * is made by scripts/gen-certs in a temporary directory. */
#include "proxy-test-util.h"

#include <gnutls/gnutls.h>
#include <json-glib/json-glib.h>

typedef struct {
    char *tmp;
    char *pod_path;
    int pod_fd;
    VmigProxy *tgt;
    guint16 ports[VMIG_PROXY_N_CHANNELS];
    GPtrArray *errors;
} Tls;

static char *certs; /* directory with ca1/ ca2/ exp/ reload/ */

static void
on_done(const char *uid, VmigProxyChannel ch, guint64 fwd, guint64 rev, const GError *error,
        gpointer data)
{
    Tls *t = data;
    if (t)
        g_ptr_array_add(t->errors, g_strdup(error ? error->message : ""));
}

static char *
cpath(const char *dir, const char *file)
{
    return g_strdup_printf("%s/%s/%s", certs, dir, file);
}

static void
gen(const char *dir, const char *name, gboolean expired)
{
    g_autofree char *cmd = g_strdup_printf("%s%s/scripts/gen-certs '%s/%s' %s",
                                           expired ? "GEN_CERTS_NOT_BEFORE_EXPIRED=1 " : "",
                                           g_getenv("VMIG_SOURCE_ROOT"), certs, dir, name);
    assert_int_equal(system(cmd), 0);
}

static int
group_setup(void **state)
{
    if (!g_getenv("VMIG_SOURCE_ROOT"))
        return -1;
    certs = g_dir_make_tmp("vmig-proxy-certs-XXXXXX", NULL);
    gen("ca1", "node-a", FALSE);
    gen("ca1", "node-b", FALSE);
    gen("ca1", "node-c", FALSE);
    gen("ca2", "node-a", FALSE);
    /* An expired node-a certificate from the right CA. */
    g_autofree char *cmd = g_strdup_printf("mkdir -p %s/exp && cp %s/ca1/ca.pem %s/ca1/ca-key.pem "
                                           "%s/exp/",
                                           certs, certs, certs, certs);
    assert_int_equal(system(cmd), 0);
    gen("exp", "node-a", TRUE);
    return 0;
}

static int
group_teardown(void **state)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", certs);
    assert_int_equal(system(cmd), 0);
    g_free(certs);
    return 0;
}

static VmigProxy *
make_proxy(const char *dir, const char *node, const char *ca_dir, Tls *t)
{
    g_autofree char *cert = g_strdup_printf("%s/%s/%s.pem", certs, dir, node);
    g_autofree char *key = g_strdup_printf("%s/%s/%s-key.pem", certs, dir, node);
    g_autofree char *ca = cpath(ca_dir, "ca.pem");
    VmigProxyConfig cfg = {.cert_file = cert,
                           .key_file = key,
                           .ca_file = ca,
                           .connection_done = on_done,
                           .user_data = t,
                           .handshake_timeout_ms = 2000,
                           .unix_retry_ms = 500};
    g_autoptr(GError) err = NULL;
    VmigProxy *p = vmig_proxy_new(&cfg, &err);
    if (!p)
        fail_msg("%s", err->message);
    return p;
}

static void
start_target(Tls *t, const char *uid)
{
    VmigProxyTargetSpec ts = {.uid = uid,
                              .listen_address = "127.0.0.1",
                              .expected_peer_address = "127.0.0.1",
                              .source_node = "node-a",
                              .forward_paths = {t->pod_path, t->pod_path, NULL}};
    g_autoptr(GError) err = NULL;
    assert_true(vmig_proxy_start_target(t->tgt, &ts, &err));
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++)
        t->ports[c] = vmig_proxy_target_port(t->tgt, uid, c);
}

static int
setup(void **state)
{
    Tls *t = g_new0(Tls, 1);
    t->tmp = g_dir_make_tmp("vmig-proxy-tls-XXXXXX", NULL);
    t->pod_path = g_strdup_printf("%s/pod.sock", t->tmp);
    t->pod_fd = test_unix_listen(t->pod_path);
    t->errors = g_ptr_array_new_with_free_func(g_free);
    test_logs_reset();
    t->tgt = make_proxy("ca1", "node-b", "ca1", t);
    start_target(t, TEST_UID);
    *state = t;
    return 0;
}

static int
teardown(void **state)
{
    Tls *t = *state;
    vmig_proxy_free(t->tgt);
    close(t->pod_fd);
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", t->tmp);
    assert_int_equal(system(cmd), 0);
    g_free(t->tmp);
    g_free(t->pod_path);
    g_ptr_array_unref(t->errors);
    g_free(t);
    return 0;
}

/* A source proxy for @uid dialling @ports; returns its memory-channel socket path. */
static char *
start_source(Tls *t, VmigProxy *src, const char *uid, const guint16 *ports)
{
    VmigProxySourceSpec ss = {.uid = uid,
                              .dir = t->tmp,
                              .target_address = "127.0.0.1",
                              .target_node = "node-b",
                              .socket_uid = getuid(),
                              .socket_gid = getgid()};
    memcpy(ss.target_ports, ports, sizeof ss.target_ports);
    g_autoptr(GError) err = NULL;
    assert_true(vmig_proxy_start_source(src, &ss, &err));
    return g_strdup_printf("%s/migrationproxy/%s-49152-source.sock", t->tmp, uid);
}

typedef struct {
    Tls *t;
    guint want;
} RefusedWait;

static gboolean
refused_reached(gpointer data)
{
    RefusedWait *w = data;
    VmigProxyStats s;
    vmig_proxy_get_stats(w->t->tgt, TEST_UID, &s);
    return s.refused >= w->want;
}

static guint
refused(Tls *t)
{
    VmigProxyStats s;
    assert_true(vmig_proxy_get_stats(t->tgt, TEST_UID, &s));
    return s.refused;
}

/* Sends through a source proxy built from (dir, node) and expects the target to refuse it
 * without touching the pod socket. */
static void
expect_refused_via_source(Tls *t, const char *dir, const char *node, const char *uid,
                          const char *log_needle)
{
    guint before = refused(t);
    VmigProxy *src = make_proxy(dir, node, "ca1", NULL);
    g_autofree char *path = start_source(t, src, uid, t->ports);
    int c = test_unix_connect(path);
    assert_true(c >= 0);
    (void)test_write_all(c, "secret-memory-page", 18);
    RefusedWait w = {t, before + 1};
    assert_true(test_run_until(refused_reached, &w, 5000));
    test_run_for(50);
    assert_false(test_has_pending(t->pod_fd));
    char b;
    ssize_t r = test_read_wait(c, &b, 1, 5000);
    assert_true(r == 0 || r == -1);
    close(c);
    vmig_proxy_free(src);
    if (log_needle)
        assert_int_equal(test_logs_count(log_needle), 1);
}

static gboolean
pod_pending(gpointer data)
{
    return test_has_pending(((Tls *)data)->pod_fd);
}

/* B24 1): a node certificate signed by the migration CA, right node name -> forwarded. */
static void
test_valid_peer_forwarded(void **state)
{
    Tls *t = *state;
    VmigProxy *src = make_proxy("ca1", "node-a", "ca1", t);
    g_autofree char *path = start_source(t, src, TEST_UID, t->ports);
    TestPeer sink = {.listen_fd = t->pod_fd, .send_bytes = 1024};
    TestPeer client = {.path = path, .send_bytes = 8 << 20};
    GThread *t1 = g_thread_new("sink", test_sink_thread, &sink);
    GThread *t2 = g_thread_new("client", test_client_thread, &client);
    TestPeer *both[] = {&sink, &client, NULL};
    assert_true(test_run_until(test_peers_done, both, 30000));
    g_thread_join(t1);
    g_thread_join(t2);
    /* All bytes, FIN carried as close_notify + SHUT_WR, then the reply. */
    assert_int_equal(sink.got, 8 << 20);
    assert_int_equal(client.got, 1024);
    assert_int_equal(client.err, 0);
    test_run_for(50);
    VmigProxyStats s;
    assert_true(vmig_proxy_get_stats(t->tgt, TEST_UID, &s));
    assert_int_equal(s.bytes_forward[VMIG_PROXY_CHANNEL_MEMORY], 8 << 20);
    assert_int_equal(s.bytes_reverse[VMIG_PROXY_CHANNEL_MEMORY], 1024);
    assert_int_equal(s.refused, 0);
    assert_int_equal(test_logs_count(NULL), 0);
    vmig_proxy_free(src);
}

typedef struct {
    guint16 port;
    gboolean with_tls;
    const char *payload;
    size_t payload_len;
    gint done;
} RawClient;

static gpointer
raw_client_thread(gpointer data)
{
    RawClient *r = data;
    int fd = test_tcp_connect("127.0.0.1", r->port, NULL);
    if (fd >= 0 && r->with_tls) {
        /* 2) TLS, trusting the right CA, but no client certificate. */
        gnutls_certificate_credentials_t cred;
        gnutls_session_t s;
        gnutls_certificate_allocate_credentials(&cred);
        g_autofree char *ca = cpath("ca1", "ca.pem");
        gnutls_certificate_set_x509_trust_file(cred, ca, GNUTLS_X509_FMT_PEM);
        gnutls_init(&s, GNUTLS_CLIENT);
        gnutls_set_default_priority(s);
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
        gnutls_server_name_set(s, GNUTLS_NAME_DNS, TEST_UID, strlen(TEST_UID));
        gnutls_transport_set_int(s, fd);
        if (gnutls_handshake(s) == 0) {
            gnutls_record_send(s, "secret", 6);
            char b[16];
            gnutls_record_recv(s, b, sizeof b);
        }
        gnutls_deinit(s);
        gnutls_certificate_free_credentials(cred);
    } else if (fd >= 0) {
        test_write_all(fd, r->payload, r->payload_len);
        char b[16];
        (void)read(fd, b, sizeof b);
    }
    if (fd >= 0)
        close(fd);
    g_atomic_int_set(&r->done, 1);
    return NULL;
}

static gboolean
raw_done(gpointer data)
{
    return g_atomic_int_get(&((RawClient *)data)->done) != 0;
}

static void
expect_refused_raw(Tls *t, RawClient *r)
{
    guint before = refused(t);
    r->port = t->ports[VMIG_PROXY_CHANNEL_MEMORY];
    GThread *th = g_thread_new("raw", raw_client_thread, r);
    RefusedWait w = {t, before + 1};
    assert_true(test_run_until(refused_reached, &w, 5000));
    assert_true(test_run_until(raw_done, r, 5000));
    g_thread_join(th);
    test_run_for(20);
    assert_false(test_has_pending(t->pod_fd));
}

/* B24 2)-8): no client cert, other CA, expired, wrong node, plain TCP, garbage, other
 * migration's UID: refused during the handshake, nothing reaches the pod socket, one log line
 * per peer and reason. */
static void
test_refusal_matrix(void **state)
{
    Tls *t = *state;
    RawClient notls = {.with_tls = TRUE};
    expect_refused_raw(t, &notls);
    expect_refused_via_source(t, "ca2", "node-a", TEST_UID, NULL);
    expect_refused_via_source(t, "exp", "node-a", TEST_UID, "expired");
    expect_refused_via_source(t, "ca1", "node-c", TEST_UID, NULL);
    static const char plain[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    RawClient p1 = {.payload = plain, .payload_len = sizeof plain - 1};
    expect_refused_raw(t, &p1);
    RawClient p2 = {.payload = plain, .payload_len = sizeof plain - 1};
    expect_refused_raw(t, &p2); /* same peer, same reason: no second log line */
    char garbage[4096];
    for (gsize i = 0; i < sizeof garbage; i++)
        garbage[i] = (char)g_random_int();
    garbage[0] = 0x16; /* looks like a handshake record, then nonsense */
    RawClient g = {.payload = garbage, .payload_len = sizeof garbage};
    expect_refused_raw(t, &g);
    /* 5) a valid node-a certificate naming another migration in SNI. */
    expect_refused_via_source(t, "ca1", "node-a", TEST_UID_2, "migration UID");
    assert_int_equal(refused(t), 8);
    guint lines = test_logs_count("refused peer 127.0.0.1");
    assert_true(lines >= 5 && lines <= 7); /* one per distinct reason, not per connection */
    VmigProxyStats s;
    assert_true(vmig_proxy_get_stats(t->tgt, TEST_UID, &s));
    assert_int_equal(s.bytes_forward[VMIG_PROXY_CHANNEL_MEMORY], 0);
    assert_int_equal(s.active[VMIG_PROXY_CHANNEL_MEMORY], 0);
}

typedef struct {
    guint16 port;
    const char *priority;
    int rc;
    gnutls_protocol_t version;
    gint done;
} VersionClient;

static gpointer
version_client_thread(gpointer data)
{
    /* A peer with node-a's valid certificate that speaks only the given TLS versions. */
    VersionClient *v = data;
    int fd = test_tcp_connect("127.0.0.1", v->port, NULL);
    gnutls_certificate_credentials_t cred;
    gnutls_session_t s;
    g_autofree char *ca = cpath("ca1", "ca.pem");
    g_autofree char *crt = cpath("ca1", "node-a.pem");
    g_autofree char *key = cpath("ca1", "node-a-key.pem");
    gnutls_certificate_allocate_credentials(&cred);
    gnutls_certificate_set_x509_trust_file(cred, ca, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_set_x509_key_file(cred, crt, key, GNUTLS_X509_FMT_PEM);
    gnutls_init(&s, GNUTLS_CLIENT);
    gnutls_priority_set_direct(s, v->priority, NULL);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_server_name_set(s, GNUTLS_NAME_DNS, TEST_UID, strlen(TEST_UID));
    gnutls_session_set_verify_cert(s, "node-b", 0);
    gnutls_transport_set_int(s, fd);
    v->rc = gnutls_handshake(s);
    if (v->rc == 0) {
        v->version = gnutls_protocol_get_version(s);
        gnutls_record_send(s, "v12!", 4);
        gnutls_bye(s, GNUTLS_SHUT_WR);
        char b[16];
        gnutls_record_recv(s, b, sizeof b);
    }
    gnutls_deinit(s);
    gnutls_certificate_free_credentials(cred);
    close(fd);
    g_atomic_int_set(&v->done, 1);
    return NULL;
}

static gboolean
version_done(gpointer data)
{
    return g_atomic_int_get(&((VersionClient *)data)->done) != 0;
}

/* TLS 1.2 is the minimum (accepted), 1.3 preferred (the proxies negotiate it, see
 * test_valid_peer_forwarded's debug log); a TLS 1.1-only peer is refused. */
static void
test_tls_versions(void **state)
{
    Tls *t = *state;
    VersionClient v12 = {.port = t->ports[VMIG_PROXY_CHANNEL_MEMORY],
                         .priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2"};
    GThread *th = g_thread_new("v12", version_client_thread, &v12);
    assert_true(test_run_until(pod_pending, t, 5000));
    int pod = test_accept_wait(t->pod_fd, 5000);
    char buf[8];
    assert_int_equal(test_read_n(pod, buf, 4, 5000), 4);
    assert_memory_equal(buf, "v12!", 4);
    close(pod);
    assert_true(test_run_until(version_done, &v12, 5000));
    g_thread_join(th);
    assert_int_equal(v12.rc, 0);
    assert_int_equal(v12.version, GNUTLS_TLS1_2);

    VersionClient v11 = {.port = t->ports[VMIG_PROXY_CHANNEL_MEMORY],
                         .priority = "NORMAL:-VERS-ALL:+VERS-TLS1.1"};
    guint before = refused(t);
    th = g_thread_new("v11", version_client_thread, &v11);
    RefusedWait w = {t, before + 1};
    assert_true(test_run_until(refused_reached, &w, 5000));
    assert_true(test_run_until(version_done, &v11, 5000));
    g_thread_join(th);
    assert_true(v11.rc < 0);
    assert_false(test_has_pending(t->pod_fd));
}

/* Changed certificate files are used for new connections without a restart. */
static void
test_cert_reload(void **state)
{
    Tls *t = *state;
    g_autofree char *dir = g_strdup_printf("%s/secret", t->tmp);
    g_mkdir(dir, 0700);
    g_autofree char *cmd =
        g_strdup_printf("cp %s/ca1/node-b.pem %s/tls.crt && cp %s/ca1/node-b-key.pem %s/tls.key && "
                        "cp %s/ca2/ca.pem %s/ca.crt",
                        certs, dir, certs, dir, certs, dir);
    assert_int_equal(system(cmd), 0);
    g_autofree char *crt = g_strdup_printf("%s/tls.crt", dir);
    g_autofree char *key = g_strdup_printf("%s/tls.key", dir);
    g_autofree char *ca = g_strdup_printf("%s/ca.crt", dir);
    VmigProxyConfig cfg = {
        .cert_file = crt, .key_file = key, .ca_file = ca, .handshake_timeout_ms = 2000};
    vmig_proxy_free(t->tgt);
    t->tgt = vmig_proxy_new(&cfg, NULL);
    start_target(t, TEST_UID);
    /* The target trusts only CA 2 now: node-a of CA 1 is refused. */
    expect_refused_via_source(t, "ca1", "node-a", TEST_UID, NULL);
    /* The Secret is updated (new file swapped in): the next connection passes. */
    g_autofree char *swap = g_strdup_printf("cp %s/ca1/ca.pem %s/ca.new && mv %s/ca.new %s/ca.crt",
                                            certs, dir, dir, dir);
    assert_int_equal(system(swap), 0);
    VmigProxy *src = make_proxy("ca1", "node-a", "ca1", NULL);
    g_autofree char *path = start_source(t, src, TEST_UID, t->ports);
    int c = test_unix_connect(path);
    assert_int_equal(test_write_all(c, "hello", 5), 5);
    assert_true(test_run_until(pod_pending, t, 5000));
    int pod = test_accept_wait(t->pod_fd, 5000);
    test_run_for(50);
    char buf[8];
    assert_int_equal(test_read_n(pod, buf, 5, 5000), 5);
    assert_int_equal(test_logs_count("TLS certificate files changed"), 0); /* message level */
    close(pod);
    close(c);
    vmig_proxy_free(src);
}

/* ---- stream integrity: content, not byte counts ----
 * QEMU has no checksum on page payloads, so a relay that loses, repeats or swaps bytes while
 * keeping the length right yields a guest with corrupted memory and a "successful" migration.
 * Each 4 KiB block of a test stream carries its block number and pseudo-random bytes derived
 * from (seed, block), so the reader can check every byte where it lands. */
#define STREAM_BLOCK 4096

typedef struct {
    int fd;
    guint64 seed;
    size_t size;       /* bytes to write, or bytes expected */
    gboolean slow;     /* reader: small bursty reads with pauses (a busy QEMU) */
    size_t got;        /* reader: bytes read until EOF */
    size_t bad_blocks; /* reader: blocks with at least one wrong byte */
    gint64 first_bad;  /* reader: stream offset of the first wrong byte, -1: none */
    int err;
    gint done;
} StreamEnd;

static void
stream_block(guint64 seed, guint64 block, guint8 out[STREAM_BLOCK])
{
    guint64 x = (seed ^ (block * 0x9e3779b97f4a7c15ULL)) | 1;
    memcpy(out, &block, sizeof block);
    for (size_t i = 8; i < STREAM_BLOCK; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(out + i, &x, 8);
    }
}

/* Fast writer: random chunk sizes (1 byte .. 256 KiB), blocking socket, then SHUT_WR. */
static gpointer
stream_writer_thread(gpointer data)
{
    StreamEnd *e = data;
    GRand *r = g_rand_new_with_seed((guint32)e->seed);
    size_t chunk_max = 256 * 1024;
    guint8 *buf = g_malloc(chunk_max + STREAM_BLOCK);
    size_t off = 0;
    while (off < e->size) {
        size_t want = (size_t)g_rand_int_range(r, 1, (gint32)chunk_max + 1);
        want = MIN(want, e->size - off); /* MIN evaluates its arguments twice */
        /* Fill [off, off+want) from the blocks it spans. */
        size_t b0 = off / STREAM_BLOCK, skip = off % STREAM_BLOCK, filled = 0;
        for (size_t b = b0; filled < want; b++) {
            guint8 blk[STREAM_BLOCK];
            stream_block(e->seed, b, blk);
            size_t from = b == b0 ? skip : 0;
            size_t n = MIN(STREAM_BLOCK - from, want - filled);
            memcpy(buf + filled, blk + from, n);
            filled += n;
        }
        if (test_write_all(e->fd, buf, want) != want) {
            e->err = errno ? errno : EIO;
            break;
        }
        off += want;
    }
    shutdown(e->fd, SHUT_WR);
    g_free(buf);
    g_rand_free(r);
    g_atomic_int_set(&e->done, 1);
    return NULL;
}

/* Reader that checks every byte; slow mode reads 1 byte .. 64 KiB and pauses now and then so
 * the proxy's writes to it hit EAGAIN and partial writes. */
static gpointer
stream_reader_thread(gpointer data)
{
    StreamEnd *e = data;
    GRand *r = g_rand_new_with_seed((guint32)(e->seed >> 7));
    guint8 *buf = g_malloc(256 * 1024);
    guint8 blk[STREAM_BLOCK];
    guint64 cur = G_MAXUINT64;
    guint64 last_bad = G_MAXUINT64;
    e->first_bad = -1;
    for (;;) {
        size_t want = e->slow ? (size_t)g_rand_int_range(r, 1, 64 * 1024 + 1) : 256 * 1024;
        ssize_t n = read(e->fd, buf, want);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            e->err = errno;
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            size_t pos = e->got + i;
            guint64 b = pos / STREAM_BLOCK;
            if (b != cur) {
                stream_block(e->seed, b, blk);
                cur = b;
            }
            if (buf[i] != blk[pos % STREAM_BLOCK]) {
                if (e->first_bad < 0)
                    e->first_bad = (gint64)pos;
                if (b != last_bad)
                    e->bad_blocks++;
                last_bad = b;
            }
        }
        e->got += n;
        if (e->slow && g_rand_int_range(r, 0, 8) == 0)
            g_usleep(g_rand_int_range(r, 100, 2000));
    }
    g_free(buf);
    g_rand_free(r);
    g_atomic_int_set(&e->done, 1);
    return NULL;
}

static void
stream_set_bufs(int fd, int bytes)
{
    if (bytes > 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    }
}

typedef struct {
    StreamEnd *ends[5];
} StreamWait;

static gboolean
streams_done(gpointer data)
{
    StreamWait *w = data;
    for (int i = 0; w->ends[i]; i++) {
        if (!g_atomic_int_get(&w->ends[i]->done))
            return FALSE;
    }
    return TRUE;
}

static void
stream_assert_intact(const char *what, const StreamEnd *e)
{
    if (e->err || e->got != e->size || e->bad_blocks)
        fail_msg("%s: read %zu of %zu bytes, %zu corrupted 4 KiB blocks, first wrong byte at "
                 "offset %" G_GINT64_FORMAT ", errno %d",
                 what, e->got, e->size, e->bad_blocks, e->first_bad, e->err);
}

/* One connection through a TLS source+target proxy pair, both directions at once: a fast
 * writer against a slow, bursty reader on the far unix side (the proxy's unix writes hit
 * EAGAIN while its TLS leg keeps delivering), optionally with tiny socket buffers on the unix
 * ends for partial writes. Every byte is checked. */
static void
stream_through_tls(Tls *t, size_t fwd, size_t rev, int sockbuf)
{
    VmigProxy *src = make_proxy("ca1", "node-a", "ca1", t);
    g_autofree char *path = start_source(t, src, TEST_UID, t->ports);
    int c = test_unix_connect(path);
    assert_true(c >= 0);
    stream_set_bufs(c, sockbuf);
    assert_true(test_run_until(pod_pending, t, 5000));
    int pod = accept4(t->pod_fd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(pod >= 0);
    stream_set_bufs(pod, sockbuf);

    StreamEnd qemu_out = {.fd = c, .seed = 0x5eed0001, .size = fwd};
    StreamEnd pod_in = {.fd = pod, .seed = 0x5eed0001, .size = fwd, .slow = TRUE};
    StreamEnd pod_out = {.fd = pod, .seed = 0x5eed0002, .size = rev};
    StreamEnd qemu_in = {.fd = c, .seed = 0x5eed0002, .size = rev, .slow = TRUE};
    GThread *th[4] = {
        g_thread_new("qemu-out", stream_writer_thread, &qemu_out),
        g_thread_new("pod-in", stream_reader_thread, &pod_in),
        g_thread_new("pod-out", stream_writer_thread, &pod_out),
        g_thread_new("qemu-in", stream_reader_thread, &qemu_in),
    };
    StreamWait w = {{&qemu_out, &pod_in, &pod_out, &qemu_in, NULL}};
    gboolean finished = test_run_until(streams_done, &w, 120000);
    if (!finished) {
        /* Unblock the threads before failing so the test does not hang. */
        shutdown(c, SHUT_RDWR);
        shutdown(pod, SHUT_RDWR);
    }
    for (int i = 0; i < 4; i++)
        g_thread_join(th[i]);
    close(c);
    close(pod);
    test_run_for(20);
    vmig_proxy_free(src);
    assert_true(finished);
    assert_int_equal(qemu_out.err, 0);
    assert_int_equal(pod_out.err, 0);
    stream_assert_intact("source -> target", &pod_in);
    stream_assert_intact("target -> source", &qemu_in);
    assert_int_equal(test_logs_count(NULL), 0);
}

/* The migration stream's shape: a lot forward, a little back, default buffers. */
static void
test_stream_integrity(void **state)
{
    stream_through_tls(*state, 256u << 20, 16u << 20, 0);
}

/* Both directions heavy, tiny unix socket buffers: partial writes everywhere. */
static void
test_stream_integrity_small_buffers(void **state)
{
    stream_through_tls(*state, 64u << 20, 64u << 20, 4096);
}

/* Run B: disableTLS warns at start and per migration; only the expected address passes. */
static void
test_disable_tls_run_b(void **state)
{
    Tls *t = *state;
    test_logs_reset();
    VmigProxyConfig cfg = {.disable_tls = TRUE};
    VmigProxy *p = vmig_proxy_new(&cfg, NULL);
    assert_int_equal(test_logs_count("disableTLS"), 1);
    VmigProxyTargetSpec ts = {.uid = TEST_UID_2,
                              .listen_address = "127.0.0.1",
                              .expected_peer_address = "127.0.0.11",
                              .forward_paths = {t->pod_path}};
    assert_true(vmig_proxy_start_target(p, &ts, NULL));
    assert_int_equal(test_logs_count("disableTLS"), 2);
    guint16 port = vmig_proxy_target_port(p, TEST_UID_2, 0);
    int bad = test_tcp_connect("127.0.0.1", port, "127.0.0.99");
    (void)write(bad, "x", 1);
    test_run_for(50);
    assert_false(test_has_pending(t->pod_fd));
    assert_int_equal(test_logs_count("refused peer 127.0.0.99"), 1);
    int good = test_tcp_connect("127.0.0.1", port, "127.0.0.11");
    assert_int_equal(write(good, "y", 1), 1);
    assert_true(test_run_until(pod_pending, t, 2000));
    int pod = test_accept_wait(t->pod_fd, 5000);
    close(pod);
    close(good);
    close(bad);
    vmig_proxy_free(p);
}

/* ---- the per-migration transport (KubeVirt migrations.disableTLS decided by the source) ---- */

typedef struct {
    VmigProxy *proxy;
    const char *uid;
    guint want;
} UidRefused;

static gboolean
uid_refused_reached(gpointer data)
{
    UidRefused *w = data;
    VmigProxyStats s;
    return vmig_proxy_get_stats(w->proxy, w->uid, &s) && s.refused >= w->want;
}

/* A source proxy for @uid with @transport dialling @ports; returns its memory socket path. */
static char *
start_source_transport(Tls *t, VmigProxy *src, const char *uid, const guint16 *ports,
                       VmigProxyTransport transport)
{
    VmigProxySourceSpec ss = {.uid = uid,
                              .dir = t->tmp,
                              .target_address = "127.0.0.1",
                              .target_node = "node-b",
                              .socket_uid = getuid(),
                              .socket_gid = getgid(),
                              .transport = transport};
    memcpy(ss.target_ports, ports, sizeof ss.target_ports);
    g_autoptr(GError) err = NULL;
    if (!vmig_proxy_start_source(src, &ss, &err))
        fail_msg("%s", err->message);
    return g_strdup_printf("%s/migrationproxy/%s-49152-source.sock", t->tmp, uid);
}

/* A plain target for TEST_UID_2 on the TLS-capable proxy of setup (node-b). */
static void
start_plain_target(Tls *t, guint16 *ports)
{
    VmigProxyTargetSpec ts = {.uid = TEST_UID_2,
                              .listen_address = "127.0.0.1",
                              .expected_peer_address = "127.0.0.1",
                              .source_node = "node-a",
                              .forward_paths = {t->pod_path, t->pod_path, NULL},
                              .transport = VMIG_PROXY_TRANSPORT_PLAIN};
    g_autoptr(GError) err = NULL;
    if (!vmig_proxy_start_target(t->tgt, &ts, &err))
        fail_msg("%s", err->message);
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++)
        ports[c] = vmig_proxy_target_port(t->tgt, TEST_UID_2, c);
}

/* Sends @msg through the memory socket at @path and expects it whole at the pod socket. */
static void
expect_relayed(Tls *t, const char *path, const char *msg)
{
    int c = test_unix_connect(path);
    assert_true(c >= 0);
    assert_int_equal(test_write_all(c, msg, strlen(msg)), strlen(msg));
    int pod = test_accept_wait(t->pod_fd, 5000);
    assert_true(pod >= 0);
    char buf[64] = {0};
    assert_int_equal(test_read_n(pod, buf, strlen(msg), 5000), strlen(msg));
    assert_string_equal(buf, msg);
    close(pod);
    close(c);
    test_run_for(50);
}

/* One TLS-capable proxy pair serves a TLS and a plain migration side by side: each
 * migration's transport is its own, whatever the other does. */
static void
test_transport_per_migration(void **state)
{
    Tls *t = *state;
    guint16 plain_ports[VMIG_PROXY_N_CHANNELS];
    start_plain_target(t, plain_ports);
    assert_int_equal(test_logs_count("disableTLS"), 1); /* the plain one is warned about */
    VmigProxy *src = make_proxy("ca1", "node-a", "ca1", NULL);
    g_autofree char *tls_path =
        start_source_transport(t, src, TEST_UID, t->ports, VMIG_PROXY_TRANSPORT_DEFAULT);
    g_autofree char *plain_path =
        start_source_transport(t, src, TEST_UID_2, plain_ports, VMIG_PROXY_TRANSPORT_PLAIN);
    assert_int_equal(test_logs_count("disableTLS"), 2);
    expect_relayed(t, tls_path, "over-tls");
    expect_relayed(t, plain_path, "over-plain-tcp");
    VmigProxyStats s1, s2, d1, d2;
    assert_true(vmig_proxy_get_stats(t->tgt, TEST_UID, &s1));
    assert_true(vmig_proxy_get_stats(t->tgt, TEST_UID_2, &s2));
    assert_true(vmig_proxy_get_stats(src, TEST_UID, &d1));
    assert_true(vmig_proxy_get_stats(src, TEST_UID_2, &d2));
    assert_int_equal(s1.transport, VMIG_PROXY_TRANSPORT_TLS);
    assert_int_equal(d1.transport, VMIG_PROXY_TRANSPORT_TLS);
    assert_int_equal(s2.transport, VMIG_PROXY_TRANSPORT_PLAIN);
    assert_int_equal(d2.transport, VMIG_PROXY_TRANSPORT_PLAIN);
    assert_int_equal(s1.bytes_forward[VMIG_PROXY_CHANNEL_MEMORY], 8);
    assert_int_equal(s2.bytes_forward[VMIG_PROXY_CHANNEL_MEMORY], 14);
    assert_int_equal(s1.refused + s2.refused, 0);
    assert_string_equal(vmig_proxy_transport_to_string(s2.transport), "plain");
    vmig_proxy_free(src);
}

/* A TLS migration's listener refuses a source that dials it in plain TCP (the two nodes
 * disagree on disableTLS): refused in the handshake, not one byte reaches the pod. */
static void
test_transport_tls_refuses_plain_source(void **state)
{
    Tls *t = *state;
    guint before = refused(t);
    VmigProxy *src = make_proxy("ca1", "node-a", "ca1", NULL);
    g_autofree char *path =
        start_source_transport(t, src, TEST_UID, t->ports, VMIG_PROXY_TRANSPORT_PLAIN);
    int c = test_unix_connect(path);
    assert_true(c >= 0);
    (void)test_write_all(c, "secret-memory-page", 18);
    RefusedWait w = {t, before + 1};
    assert_true(test_run_until(refused_reached, &w, 5000));
    test_run_for(50);
    assert_false(test_has_pending(t->pod_fd));
    /* the client gets at most the target's TLS alert record (content type 21), then EOF */
    char b[64];
    size_t got = test_read_n(c, b, sizeof b, 5000);
    assert_true(got == 0 || b[0] == 0x15);
    close(c);
    VmigProxyStats s;
    assert_true(vmig_proxy_get_stats(t->tgt, TEST_UID, &s));
    assert_int_equal(s.bytes_forward[VMIG_PROXY_CHANNEL_MEMORY], 0);
    assert_int_equal(test_logs_count("refused peer 127.0.0.1: TLS handshake"), 1);
    vmig_proxy_free(src);
}

/* A plain migration's listener refuses a source that opens with a TLS handshake: the
 * ClientHello is never relayed to the pod, and the source's TLS session fails. */
static void
test_transport_plain_refuses_tls_source(void **state)
{
    Tls *t = *state;
    guint16 plain_ports[VMIG_PROXY_N_CHANNELS];
    start_plain_target(t, plain_ports);
    GPtrArray *src_errors = g_ptr_array_new_with_free_func(g_free);
    Tls src_t = {.errors = src_errors};
    VmigProxy *src = make_proxy("ca1", "node-a", "ca1", &src_t);
    g_autofree char *path =
        start_source_transport(t, src, TEST_UID_2, plain_ports, VMIG_PROXY_TRANSPORT_TLS);
    int c = test_unix_connect(path);
    assert_true(c >= 0);
    (void)test_write_all(c, "secret-memory-page", 18);
    UidRefused w = {t->tgt, TEST_UID_2, 1};
    assert_true(test_run_until(uid_refused_reached, &w, 5000));
    test_run_for(50);
    /* the plain listener had opened the pod leg (NBD servers speak first), but not one byte
     * of the handshake went through it */
    int pod = test_accept_wait(t->pod_fd, 100);
    if (pod >= 0) {
        char b;
        assert_int_equal(test_read_wait(pod, &b, 1, 2000), 0);
        close(pod);
    }
    VmigProxyStats s;
    assert_true(vmig_proxy_get_stats(t->tgt, TEST_UID_2, &s));
    assert_int_equal(s.bytes_forward[VMIG_PROXY_CHANNEL_MEMORY], 0);
    assert_int_equal(test_logs_count("speaks TLS but this migration is plain TCP"), 1);
    char b;
    ssize_t r = test_read_wait(c, &b, 1, 5000);
    assert_true(r == 0 || r == -1);
    close(c);
    test_run_for(100);
    assert_true(src_errors->len >= 1); /* the source saw its handshake fail */
    assert_non_null(strstr(src_errors->pdata[0], "TLS"));
    vmig_proxy_free(src);
    g_ptr_array_unref(src_errors);
}

/* TLS asked of a proxy without credentials fails at start (never a silent plain
 * fallback); a UID cannot be restarted with the other transport without a stop. */
static void
test_transport_start_errors(void **state)
{
    Tls *t = *state;
    VmigProxyConfig cfg = {.disable_tls = TRUE};
    VmigProxy *p = vmig_proxy_new(&cfg, NULL);
    VmigProxyTargetSpec ts = {.uid = TEST_UID_2,
                              .listen_address = "127.0.0.1",
                              .forward_paths = {t->pod_path},
                              .transport = VMIG_PROXY_TRANSPORT_TLS};
    g_autoptr(GError) err = NULL;
    assert_false(vmig_proxy_start_target(p, &ts, &err));
    assert_true(g_error_matches(err, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TLS));
    assert_non_null(strstr(err->message, TEST_UID_2));
    assert_int_equal(vmig_proxy_target_port(p, TEST_UID_2, 0), 0);
    VmigProxySourceSpec ss = {.uid = TEST_UID_2,
                              .dir = t->tmp,
                              .target_address = "127.0.0.1",
                              .target_ports = {4000},
                              .transport = VMIG_PROXY_TRANSPORT_TLS};
    g_clear_error(&err);
    assert_false(vmig_proxy_start_source(p, &ss, &err));
    assert_true(g_error_matches(err, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TLS));
    VmigProxyStats s;
    assert_false(vmig_proxy_get_stats(p, TEST_UID_2, &s));
    /* plain explicitly, or by default, is what such a proxy does */
    ts.transport = VMIG_PROXY_TRANSPORT_PLAIN;
    assert_true(vmig_proxy_start_target(p, &ts, NULL));
    assert_true(vmig_proxy_start_target(p, &ts, NULL)); /* idempotent */
    ts.transport = VMIG_PROXY_TRANSPORT_DEFAULT;
    assert_true(vmig_proxy_start_target(p, &ts, NULL)); /* the same: plain */
    vmig_proxy_free(p);

    /* setup's target runs TEST_UID with TLS: the same UID in plain is another migration */
    VmigProxyTargetSpec again = {.uid = TEST_UID,
                                 .listen_address = "127.0.0.1",
                                 .forward_paths = {t->pod_path},
                                 .transport = VMIG_PROXY_TRANSPORT_PLAIN};
    g_clear_error(&err);
    assert_false(vmig_proxy_start_target(t->tgt, &again, &err));
    assert_true(g_error_matches(err, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_EXISTS));
    again.transport = VMIG_PROXY_TRANSPORT_TLS;
    assert_true(vmig_proxy_start_target(t->tgt, &again, NULL));
    again.transport = (VmigProxyTransport)7;
    g_clear_error(&err);
    assert_false(vmig_proxy_start_target(t->tgt, &again, &err));
    assert_true(g_error_matches(err, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_peer_forwarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_matrix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_tls_run_b, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_per_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_tls_refuses_plain_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_plain_refuses_tls_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_integrity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_integrity_small_buffers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
