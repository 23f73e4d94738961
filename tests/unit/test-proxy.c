/* test-proxy.c - the proxy's pure helpers (B09 table) and its plain-TCP data path and lifecycle
 * on real unix and TCP sockets over loopback (B10, multifd, expected peer, shutdown). */
#include "proxy-test-util.h"

#include <json-glib/json-glib.h>
#include <netdb.h>
#include <net/if.h>
#include <sched.h>
#include <sys/wait.h>

/* ---------------------------------------------------------------- pure helpers */

static void
test_format_host_port_b09(void **state)
{
    static const struct {
        const char *host;
        const char *want;
    } cases[] = {
        {"10.77.0.12", "10.77.0.12:4135"},
        {"fd00:77::12", "[fd00:77::12]:4135"},
        {"::1", "[::1]:4135"},
        {"::ffff:10.77.0.12", "[::ffff:10.77.0.12]:4135"},
        {"fe80::1%eth0", "[fe80::1%eth0]:4135"},
        {"fe80::1%1", "[fe80::1%1]:4135"},
        {"node-b.example", "node-b.example:4135"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *s = vmig_proxy_format_host_port(cases[i].host, 4135);
        assert_string_equal(s, cases[i].want);
        /* Our own parser gives the same host and port back. */
        g_autofree char *host = NULL;
        guint16 port = 0;
        assert_true(vmig_proxy_parse_host_port(s, &host, &port, NULL));
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, 4135);
        /* And so does getaddrinfo, for the literals (a zone needs an existing interface). */
        const char *pct = strchr(cases[i].host, '%');
        if (strchr(cases[i].host, '.') && !strchr(cases[i].host, ':') &&
            g_ascii_isalpha(cases[i].host[0]))
            continue;
        if (pct && !g_ascii_isdigit(pct[1]) && if_nametoindex(pct + 1) == 0)
            continue;
        struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        char ps[8];
        g_snprintf(ps, sizeof ps, "%u", port);
        assert_int_equal(getaddrinfo(host, ps, &hints, &res), 0);
        char h[NI_MAXHOST], p[NI_MAXSERV];
        assert_int_equal(getnameinfo(res->ai_addr, res->ai_addrlen, h, sizeof h, p, sizeof p,
                                     NI_NUMERICHOST | NI_NUMERICSERV),
                         0);
        assert_string_equal(p, "4135");
        if (!pct)
            assert_string_equal(h, cases[i].host);
        freeaddrinfo(res);
    }
}

static void
test_parse_host_port_rejects(void **state)
{
    static const char *bad[] = {"",       "fd00::1:4135", "[fd00::1]", "[fd00::1]4135",
                                "host:0", "host:65536",   "host:",     ":80",
                                "[]:80",  "host:80x",     "[::1:80",   "[[::1]:80",
                                "a]b:80"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        g_autofree char *host = NULL;
        guint16 port;
        assert_false(vmig_proxy_parse_host_port(bad[i], &host, &port, &err));
        assert_true(g_error_matches(err, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID));
        assert_non_null(strstr(err->message, bad[i]));
    }
}

static void
test_uid_names_keys(void **state)
{
    assert_true(vmig_proxy_uid_is_valid(TEST_UID));
    static const char *bad[] = {NULL,
                                "",
                                "../../etc",
                                "5b2a7c1e-0d1f-4c55-9a77-0000000000a",
                                "5b2a7c1e/0d1f-4c55-9a77-0000000000aa",
                                "vm1"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
        assert_false(vmig_proxy_uid_is_valid(bad[i]));
    static const struct {
        VmigProxyChannel ch;
        int key;
        const char *name, *sock;
    } rows[] = {
        {VMIG_PROXY_CHANNEL_LIBVIRT, 0, "libvirt", TEST_UID "-source.sock"},
        {VMIG_PROXY_CHANNEL_MEMORY, 49152, "memory", TEST_UID "-49152-source.sock"},
        {VMIG_PROXY_CHANNEL_DISK, 49153, "disk", TEST_UID "-49153-source.sock"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
        VmigProxyChannel ch;
        assert_int_equal(vmig_proxy_channel_key(rows[i].ch), rows[i].key);
        assert_true(vmig_proxy_channel_from_key(rows[i].key, &ch));
        assert_int_equal(ch, rows[i].ch);
        assert_string_equal(vmig_proxy_channel_to_string(rows[i].ch), rows[i].name);
        g_autofree char *s = vmig_proxy_socket_name(TEST_UID, rows[i].ch);
        assert_string_equal(s, rows[i].sock);
    }
    VmigProxyChannel ch;
    assert_false(vmig_proxy_channel_from_key(22222, &ch));
    assert_int_equal(vmig_proxy_channel_key(VMIG_PROXY_N_CHANNELS), -1);
}

static void
test_port_map_parse(void **state)
{
    static const struct {
        const char *json;
        gboolean ok;
        guint16 ports[3];
    } cases[] = {
        {"{\"34567\": 0, \"34568\": 49152}", TRUE, {34567, 34568, 0}},
        {"{\"1\": 49153, \"2\": 0, \"3\": 49152}", TRUE, {2, 3, 1}},
        {"{}", TRUE, {0, 0, 0}},
        {"{\"34567\": 1}", FALSE, {0}},
        {"{\"0\": 0}", FALSE, {0}},
        {"{\"70000\": 0}", FALSE, {0}},
        {"{\"x\": 0}", FALSE, {0}},
        {"{\"1\": \"0\"}", FALSE, {0}},
        {"{\"1\": 0, \"2\": 0}", FALSE, {0}},
        {"[1]", FALSE, {0}},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(JsonNode) n = json_from_string(cases[i].json, NULL);
        guint16 ports[3];
        g_autoptr(GError) err = NULL;
        gboolean ok = vmig_proxy_port_map_parse(n, ports, &err);
        assert_int_equal(ok, cases[i].ok);
        if (ok)
            assert_memory_equal(ports, cases[i].ports, sizeof ports);
        else
            assert_non_null(strstr(err->message, "targetDirectMigrationNodePorts"));
    }
}

/* ---------------------------------------------------------------- proxy pair fixture */

typedef struct {
    char *tmp;
    char *pod_path[VMIG_PROXY_N_CHANNELS]; /* target pod sockets (fake libvirt/QEMU) */
    int pod_fd[VMIG_PROXY_N_CHANNELS];
    char *src_path[VMIG_PROXY_N_CHANNELS]; /* source pod sockets created by the proxy */
    VmigProxy *src, *tgt;
    GPtrArray *done_errors; /* connection_done errors (messages), "" for clean ends */
} Pair;

static void
pair_done(const char *uid, VmigProxyChannel ch, guint64 fwd, guint64 rev, const GError *error,
          gpointer data)
{
    Pair *p = data;
    g_ptr_array_add(p->done_errors, g_strdup(error ? error->message : ""));
}

static int
pair_setup(void **state)
{
    Pair *p = g_new0(Pair, 1);
    p->tmp = g_dir_make_tmp("vmig-proxy-XXXXXX", NULL);
    p->done_errors = g_ptr_array_new_with_free_func(g_free);
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++) {
        p->pod_path[c] = g_strdup_printf("%s/pod-%d.sock", p->tmp, c);
        p->pod_fd[c] = test_unix_listen(p->pod_path[c]);
    }
    VmigProxyConfig cfg = {
        .disable_tls = TRUE, .connection_done = pair_done, .user_data = p, .unix_retry_ms = 1000};
    test_logs_reset();
    p->src = vmig_proxy_new(&cfg, NULL);
    p->tgt = vmig_proxy_new(&cfg, NULL);
    assert_non_null(p->src);
    assert_non_null(p->tgt);
    *state = p;
    return 0;
}

static int
pair_teardown(void **state)
{
    Pair *p = *state;
    vmig_proxy_free(p->src);
    vmig_proxy_free(p->tgt);
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++) {
        close(p->pod_fd[c]);
        unlink(p->pod_path[c]);
        g_free(p->pod_path[c]);
        g_free(p->src_path[c]);
    }
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", p->tmp);
    assert_int_equal(system(cmd), 0);
    g_free(p->tmp);
    g_ptr_array_unref(p->done_errors);
    g_free(p);
    return 0;
}

/* Starts target then source for @uid, all three channels. */
static void
pair_start(Pair *p, const char *uid, const char *expected_peer)
{
    VmigProxyTargetSpec ts = {
        .uid = uid, .listen_address = "127.0.0.1", .expected_peer_address = expected_peer};
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++)
        ts.forward_paths[c] = p->pod_path[c];
    g_autoptr(GError) err = NULL;
    assert_true(vmig_proxy_start_target(p->tgt, &ts, &err));
    g_autoptr(JsonNode) map = vmig_proxy_target_port_map(p->tgt, uid);
    VmigProxySourceSpec ss = {.uid = uid,
                              .dir = p->tmp,
                              .target_address = "127.0.0.1",
                              .socket_uid = getuid(),
                              .socket_gid = getgid()};
    assert_true(vmig_proxy_port_map_parse(map, ss.target_ports, &err));
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++) {
        assert_int_equal(ss.target_ports[c], vmig_proxy_target_port(p->tgt, uid, c));
        assert_int_not_equal(ss.target_ports[c], 0);
    }
    assert_true(vmig_proxy_start_source(p->src, &ss, &err));
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++) {
        g_autofree char *name = vmig_proxy_socket_name(uid, c);
        g_free(p->src_path[c]);
        p->src_path[c] = g_build_filename(p->tmp, "migrationproxy", name, NULL);
        struct stat st;
        assert_int_equal(stat(p->src_path[c], &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0600);
    }
}

static gboolean
stats_idle(gpointer data)
{
    Pair *p = data;
    VmigProxyStats s;
    return vmig_proxy_n_connections(p->src) == 0 && vmig_proxy_n_connections(p->tgt) == 0 &&
           vmig_proxy_get_stats(p->src, TEST_UID, &s);
}

/* B10 a): 10 MiB, SHUT_WR, 1 KiB reply; both legs close afterwards. */
static void
test_b10_half_close(void **state)
{
    Pair *p = *state;
    pair_start(p, TEST_UID, "127.0.0.1");
    TestPeer sink = {.listen_fd = p->pod_fd[VMIG_PROXY_CHANNEL_MEMORY], .send_bytes = 1024};
    TestPeer client = {.path = p->src_path[VMIG_PROXY_CHANNEL_MEMORY], .send_bytes = 10 << 20};
    GThread *t1 = g_thread_new("sink", test_sink_thread, &sink);
    GThread *t2 = g_thread_new("client", test_client_thread, &client);
    TestPeer *both[] = {&sink, &client, NULL};
    assert_true(test_run_until(test_peers_done, both, 20000));
    g_thread_join(t1);
    g_thread_join(t2);
    assert_int_equal(sink.got, 10 << 20); /* EOF seen: FIN propagated as SHUT_WR */
    assert_int_equal(sink.err, 0);
    assert_int_equal(client.got, 1024); /* reply relayed after the half-close */
    assert_int_equal(client.err, 0);
    assert_true(test_run_until(stats_idle, p, 2000));
    VmigProxyStats s;
    assert_true(vmig_proxy_get_stats(p->src, TEST_UID, &s));
    assert_int_equal(s.bytes_forward[VMIG_PROXY_CHANNEL_MEMORY], 10 << 20);
    assert_int_equal(s.bytes_reverse[VMIG_PROXY_CHANNEL_MEMORY], 1024);
    assert_int_equal(s.connections[VMIG_PROXY_CHANNEL_MEMORY], 1);
    assert_int_equal(s.active[VMIG_PROXY_CHANNEL_MEMORY], 0);
    assert_true(vmig_proxy_get_stats(p->tgt, TEST_UID, &s));
    assert_int_equal(s.bytes_forward[VMIG_PROXY_CHANNEL_MEMORY], 10 << 20);
    assert_int_equal(s.bytes_reverse[VMIG_PROXY_CHANNEL_MEMORY], 1024);
    /* Two clean ends (one per proxy), no error. */
    assert_int_equal(p->done_errors->len, 2);
    assert_string_equal(p->done_errors->pdata[0], "");
    assert_string_equal(p->done_errors->pdata[1], "");
    assert_int_equal(test_logs_count(NULL), 0);
}

typedef struct {
    int fd;
    gint done;
    int err;
    gint64 done_at;
} Writer;

static gpointer
writer_thread(gpointer data)
{
    /* Writes until the proxy closes the connection under it. */
    Writer *w = data;
    char buf[65536] = {0};
    for (;;) {
        ssize_t n = send(w->fd, buf, sizeof buf, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR) {
            w->err = errno;
            break;
        }
    }
    w->done_at = g_get_monotonic_time();
    g_atomic_int_set(&w->done, 1);
    return NULL;
}

static gboolean
writer_done(gpointer data)
{
    return g_atomic_int_get(&((Writer *)data)->done) != 0;
}

static gboolean
has_errors(gpointer data)
{
    return ((Pair *)data)->done_errors->len >= 2;
}

/* B10 b): the target pod's peer resets while the source writes: both legs on both proxies
 * close within a second and the migration sees errors. */
static void
test_b10_reset_mid_write(void **state)
{
    Pair *p = *state;
    pair_start(p, TEST_UID, "127.0.0.1");
    Writer w = {.fd = test_unix_connect(p->src_path[VMIG_PROXY_CHANNEL_MEMORY])};
    assert_true(w.fd >= 0);
    GThread *t = g_thread_new("writer", writer_thread, &w);
    /* Let data flow, then the pod side aborts with unread data (ECONNRESET for its peer). */
    int pod = -1;
    for (int i = 0; i < 400 && pod < 0; i++) {
        test_run_for(5);
        if (test_has_pending(p->pod_fd[VMIG_PROXY_CHANNEL_MEMORY]))
            pod = test_accept_wait(p->pod_fd[VMIG_PROXY_CHANNEL_MEMORY], 5000);
    }
    assert_true(pod >= 0);
    char buf[4096];
    assert_true(test_read_wait(pod, buf, sizeof buf, 5000) > 0);
    test_run_for(50);
    gint64 t0 = g_get_monotonic_time();
    close(pod);
    assert_true(test_run_until(writer_done, &w, 1000));
    g_thread_join(t);
    assert_true(w.done_at - t0 < G_USEC_PER_SEC);
    assert_true(w.err == EPIPE || w.err == ECONNRESET);
    assert_true(test_run_until(has_errors, p, 1000));
    assert_true(g_get_monotonic_time() - t0 < G_USEC_PER_SEC + 200000);
    for (guint i = 0; i < p->done_errors->len; i++)
        assert_string_not_equal(p->done_errors->pdata[i], "");
    assert_int_equal(vmig_proxy_n_connections(p->src), 0);
    assert_int_equal(vmig_proxy_n_connections(p->tgt), 0);
    close(w.fd);
}

/* B10 b) at the TCP level: a target that sends RST to the source proxy. */
static void
test_b10_tcp_rst(void **state)
{
    Pair *p = *state;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    VmigProxySourceSpec ss = {.uid = TEST_UID,
                              .dir = p->tmp,
                              .target_address = "127.0.0.1",
                              .target_ports = {0, ntohs(sa.sin_port), 0},
                              .socket_uid = getuid(),
                              .socket_gid = getgid()};
    assert_true(vmig_proxy_start_source(p->src, &ss, NULL));
    g_autofree char *path =
        g_strdup_printf("%s/migrationproxy/%s-49152-source.sock", p->tmp, TEST_UID);
    Writer w = {.fd = test_unix_connect(path)};
    GThread *t = g_thread_new("writer", writer_thread, &w);
    int peer = -1;
    for (int i = 0; i < 400 && peer < 0; i++) {
        test_run_for(5);
        if (test_has_pending(lfd))
            peer = test_accept_wait(lfd, 5000);
    }
    assert_true(peer >= 0);
    test_run_for(50);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    gint64 t0 = g_get_monotonic_time();
    close(peer); /* RST */
    assert_true(test_run_until(writer_done, &w, 1000));
    g_thread_join(t);
    assert_true(w.done_at - t0 < G_USEC_PER_SEC);
    assert_int_equal(p->done_errors->len, 1);
    assert_non_null(strstr(p->done_errors->pdata[0], "reset"));
    close(w.fd);
    close(lfd);
}

static gboolean
has_pending_pod(gpointer data)
{
    Pair *p = data;
    for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++) {
        if (!test_has_pending(p->pod_fd[c]))
            return FALSE;
    }
    return TRUE;
}

/* B10, generic relay bug: QEMU writes, then closes for good; the pod side reads everything but
 * never writes nor closes. The source proxy must not hold the connection forever. */
static void
test_b10_full_close_other_side_silent(void **state)
{
    Pair *p = *state;
    pair_start(p, TEST_UID, "127.0.0.1");
    int c = test_unix_connect(p->src_path[VMIG_PROXY_CHANNEL_MEMORY]);
    assert_int_equal(test_write_all(c, "0123456789", 10), 10);
    int pod = test_accept_wait(p->pod_fd[VMIG_PROXY_CHANNEL_MEMORY], 5000);
    assert_true(pod >= 0);
    char buf[16];
    assert_int_equal(test_read_n(pod, buf, 10, 5000), 10);
    close(c);
    assert_int_equal(test_read_wait(pod, buf, 1, 5000), 0); /* EOF propagated */
    VmigProxyStats s;
    for (int i = 0; i < 200; i++) {
        vmig_proxy_get_stats(p->src, TEST_UID, &s);
        if (s.active[VMIG_PROXY_CHANNEL_MEMORY] == 0)
            break;
        test_run_for(5);
    }
    assert_int_equal(s.active[VMIG_PROXY_CHANNEL_MEMORY], 0);
    assert_true(p->done_errors->len >= 1);
    assert_string_equal(p->done_errors->pdata[0], "");
    close(pod);
}

/* B10 c, d): 20 migrations aborted with live connections on every channel; descriptors and
 * listening ports return to baseline each time, no error log; the 21st works. */
static void
test_b10_abort_cycles(void **state)
{
    Pair *p = *state;
    int fds0 = test_count_fds(), listen0 = test_count_listening();
    guint16 old_ports[VMIG_PROXY_N_CHANNELS] = {0};
    for (int cycle = 0; cycle < 20; cycle++) {
        pair_start(p, TEST_UID, "127.0.0.1");
        int clients[VMIG_PROXY_N_CHANNELS];
        for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++) {
            old_ports[c] = vmig_proxy_target_port(p->tgt, TEST_UID, c);
            clients[c] = test_unix_connect(p->src_path[c]);
            assert_true(clients[c] >= 0);
            assert_int_equal(write(clients[c], "x", 1), 1);
        }
        assert_true(test_run_until(has_pending_pod, p, 2000));
        int pods[VMIG_PROXY_N_CHANNELS];
        for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++)
            pods[c] = test_accept_wait(p->pod_fd[c], 5000);
        test_run_for(10);
        assert_int_equal(test_count_listening(), listen0 + 3);
        /* Abort: the source goes first, then the VMI is gone and the target is stopped. */
        assert_true(vmig_proxy_stop(p->src, TEST_UID));
        assert_true(vmig_proxy_stop(p->tgt, TEST_UID));
        assert_false(vmig_proxy_stop(p->tgt, TEST_UID)); /* idempotent */
        for (int c = 0; c < VMIG_PROXY_N_CHANNELS; c++) {
            close(clients[c]);
            close(pods[c]);
            assert_true(access(p->src_path[c], F_OK) < 0);
            assert_true(test_tcp_connect("127.0.0.1", old_ports[c], NULL) < 0);
        }
        assert_int_equal(test_count_fds(), fds0);
        assert_int_equal(test_count_listening(), listen0);
    }
    assert_int_equal(test_logs_count(NULL), 0);
    assert_int_equal(p->done_errors->len, 0);
    /* The 21st migration gets its ports and carries data. */
    pair_start(p, TEST_UID_2, "127.0.0.1");
    TestPeer sink = {.listen_fd = p->pod_fd[VMIG_PROXY_CHANNEL_LIBVIRT], .send_bytes = 10};
    TestPeer client = {.path = p->src_path[VMIG_PROXY_CHANNEL_LIBVIRT], .send_bytes = 100000};
    GThread *t1 = g_thread_new("sink", test_sink_thread, &sink);
    GThread *t2 = g_thread_new("client", test_client_thread, &client);
    TestPeer *both[] = {&sink, &client, NULL};
    assert_true(test_run_until(test_peers_done, both, 10000));
    g_thread_join(t1);
    g_thread_join(t2);
    assert_int_equal(sink.got, 100000);
    assert_int_equal(client.got, 10);
    assert_true(vmig_proxy_stop(p->src, TEST_UID_2));
    assert_true(vmig_proxy_stop(p->tgt, TEST_UID_2));
    assert_int_equal(test_count_fds(), fds0);
}

/* multifd: 8 parallel connections on the memory channel, each its own node-to-node leg. */
static void
test_multifd_counts(void **state)
{
    Pair *p = *state;
    pair_start(p, TEST_UID, "127.0.0.1");
    enum { N = 8 };
    TestPeer sinks[N], clients[N];
    GThread *threads[2 * N];
    TestPeer *all[2 * N + 1];
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        sinks[i] = (TestPeer){.listen_fd = p->pod_fd[VMIG_PROXY_CHANNEL_MEMORY], .send_bytes = 100};
        clients[i] = (TestPeer){.path = p->src_path[VMIG_PROXY_CHANNEL_MEMORY],
                                .send_bytes = (size_t)(i + 1) << 20};
        total += clients[i].send_bytes;
        threads[i] = g_thread_new("sink", test_sink_thread, &sinks[i]);
        threads[N + i] = g_thread_new("client", test_client_thread, &clients[i]);
        all[i] = &sinks[i];
        all[N + i] = &clients[i];
    }
    all[2 * N] = NULL;
    assert_true(test_run_until(test_peers_done, all, 30000));
    size_t got = 0;
    for (int i = 0; i < 2 * N; i++)
        g_thread_join(threads[i]);
    for (int i = 0; i < N; i++) {
        got += sinks[i].got;
        assert_int_equal(clients[i].got, 100);
    }
    assert_int_equal(got, total);
    assert_true(test_run_until(stats_idle, p, 2000));
    VmigProxyStats s;
    assert_true(vmig_proxy_get_stats(p->tgt, TEST_UID, &s));
    assert_int_equal(s.connections[VMIG_PROXY_CHANNEL_MEMORY], N);
    assert_int_equal(s.bytes_forward[VMIG_PROXY_CHANNEL_MEMORY], total);
    assert_int_equal(s.bytes_reverse[VMIG_PROXY_CHANNEL_MEMORY], 100 * N);
    assert_int_equal(s.bytes_forward[VMIG_PROXY_CHANNEL_LIBVIRT], 0);
}

/* A target port accepts only its expected source address; others are refused, logged once,
 * and never reach the pod's socket. */
static void
test_expected_peer(void **state)
{
    Pair *p = *state;
    VmigProxyTargetSpec ts = {.uid = TEST_UID,
                              .listen_address = "127.0.0.1",
                              .expected_peer_address = "127.0.0.2",
                              .forward_paths = {p->pod_path[0], NULL, NULL}};
    assert_true(vmig_proxy_start_target(p->tgt, &ts, NULL));
    guint16 port = vmig_proxy_target_port(p->tgt, TEST_UID, VMIG_PROXY_CHANNEL_LIBVIRT);
    assert_int_equal(vmig_proxy_target_port(p->tgt, TEST_UID, VMIG_PROXY_CHANNEL_MEMORY), 0);
    for (int i = 0; i < 3; i++) {
        int fd = test_tcp_connect("127.0.0.1", port, "127.0.0.1");
        assert_true(fd >= 0);
        (void)write(fd, "hello", 5);
        test_run_for(30);
        char c;
        ssize_t r = test_read_wait(fd, &c, 1, 5000);
        assert_true(r == 0 || r == -1); /* closed by the proxy (FIN or RST) */
        close(fd);
    }
    assert_false(test_has_pending(p->pod_fd[0]));
    assert_int_equal(test_logs_count("refused peer 127.0.0.1"), 1);
    VmigProxyStats s;
    assert_true(vmig_proxy_get_stats(p->tgt, TEST_UID, &s));
    assert_int_equal(s.refused, 3);
    /* The expected peer gets through. */
    int fd = test_tcp_connect("127.0.0.1", port, "127.0.0.2");
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    for (int i = 0; i < 100 && !test_has_pending(p->pod_fd[0]); i++)
        test_run_for(10);
    int pod = test_accept_wait(p->pod_fd[0], 5000);
    assert_true(pod >= 0);
    char buf[8];
    test_run_for(20);
    assert_int_equal(test_read_n(pod, buf, 5, 5000), 5);
    close(pod);
    close(fd);
}

/* The QEMU socket appears only after libvirt's Prepare: connect lazily, retry shortly. */
static void
test_lazy_pod_socket(void **state)
{
    Pair *p = *state;
    g_autofree char *late = g_strdup_printf("%s/late.sock", p->tmp);
    VmigProxyTargetSpec ts = {
        .uid = TEST_UID, .listen_address = "127.0.0.1", .forward_paths = {NULL, late, NULL}};
    assert_true(vmig_proxy_start_target(p->tgt, &ts, NULL));
    guint16 port = vmig_proxy_target_port(p->tgt, TEST_UID, VMIG_PROXY_CHANNEL_MEMORY);
    int fd = test_tcp_connect("127.0.0.1", port, NULL);
    assert_int_equal(write(fd, "data", 4), 4);
    test_run_for(200);
    int l = test_unix_listen(late);
    for (int i = 0; i < 100 && !test_has_pending(l); i++)
        test_run_for(10);
    int pod = test_accept_wait(l, 5000);
    assert_true(pod >= 0);
    test_run_for(20);
    char buf[8];
    assert_int_equal(test_read_n(pod, buf, 4, 5000), 4);
    close(pod);
    close(l);
    close(fd);
    test_run_for(20);
    assert_int_equal(test_logs_count(NULL), 0);
}

/* B09: an IPv6-only pair: target listening on ::1, expected peer ::1, the source dialling the
 * bare literal; the address is published and parsed back through the port map. */
static void
test_ipv6_pair(void **state)
{
    Pair *p = *state;
    int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    gboolean have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&lo6, sizeof lo6) == 0;
    if (probe >= 0)
        close(probe);
    if (!have_v6) {
        skip();
        return;
    }
    VmigProxyTargetSpec ts = {.uid = TEST_UID,
                              .listen_address = "::1",
                              .expected_peer_address = "::1",
                              .forward_paths = {NULL, p->pod_path[1], NULL}};
    g_autoptr(GError) err = NULL;
    assert_true(vmig_proxy_start_target(p->tgt, &ts, &err));
    g_autoptr(JsonNode) map = vmig_proxy_target_port_map(p->tgt, TEST_UID);
    VmigProxySourceSpec ss = {.uid = TEST_UID,
                              .dir = p->tmp,
                              .target_address = "::1",
                              .socket_uid = getuid(),
                              .socket_gid = getgid()};
    assert_true(vmig_proxy_port_map_parse(map, ss.target_ports, &err));
    assert_true(vmig_proxy_start_source(p->src, &ss, &err));
    g_autofree char *path =
        g_strdup_printf("%s/migrationproxy/%s-49152-source.sock", p->tmp, TEST_UID);
    TestPeer sink = {.listen_fd = p->pod_fd[1], .send_bytes = 3};
    TestPeer client = {.path = path, .send_bytes = 1 << 20};
    GThread *t1 = g_thread_new("sink", test_sink_thread, &sink);
    GThread *t2 = g_thread_new("client", test_client_thread, &client);
    TestPeer *both[] = {&sink, &client, NULL};
    assert_true(test_run_until(test_peers_done, both, 10000));
    g_thread_join(t1);
    g_thread_join(t2);
    assert_int_equal(sink.got, 1 << 20);
    assert_int_equal(client.got, 3);
    assert_int_equal(test_logs_count(NULL), 0);
}

/* A launcher listening on TCP inside its own network namespace: the socket is made in that
 * namespace (here our own, through the same setns helper thread) and forwarded to. */
static void
test_forward_tcp_in_netns(void **state)
{
    Pair *p = *state;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    g_autofree char *fwd = g_strdup_printf("127.0.0.1:%u", ntohs(sa.sin_port));
    VmigProxyTargetSpec ts = {.uid = TEST_UID,
                              .listen_address = "127.0.0.1",
                              .forward_tcp = {fwd},
                              .forward_netns = "/proc/self/ns/net"};
    g_autoptr(GError) err = NULL;
    assert_true(vmig_proxy_start_target(p->tgt, &ts, &err));
    int c = test_tcp_connect("127.0.0.1", vmig_proxy_target_port(p->tgt, TEST_UID, 0), NULL);
    assert_int_equal(write(c, "tcp!", 4), 4);
    for (int i = 0; i < 100 && !test_has_pending(lfd); i++)
        test_run_for(10);
    int in = test_accept_wait(lfd, 5000);
    assert_true(in >= 0);
    test_run_for(30);
    char buf[8];
    assert_int_equal(test_read_n(in, buf, 4, 5000), 4);
    assert_memory_equal(buf, "tcp!", 4);
    close(in);
    close(c);
    close(lfd);
    /* A namespace path that does not exist fails the connection with an error naming it. */
    assert_true(vmig_proxy_stop(p->tgt, TEST_UID));
    ts.forward_netns = "/nonexistent/ns/net";
    assert_true(vmig_proxy_start_target(p->tgt, &ts, NULL));
    c = test_tcp_connect("127.0.0.1", vmig_proxy_target_port(p->tgt, TEST_UID, 0), NULL);
    for (int i = 0; i < 100 && p->done_errors->len == 0; i++)
        test_run_for(10);
    assert_int_equal(p->done_errors->len, 1);
    assert_non_null(strstr(p->done_errors->pdata[0], "/nonexistent/ns/net"));
    close(c);
}

static void
test_start_stop_idempotent(void **state)
{
    Pair *p = *state;
    pair_start(p, TEST_UID, NULL);
    guint16 port = vmig_proxy_target_port(p->tgt, TEST_UID, 0);
    VmigProxyTargetSpec ts = {.uid = TEST_UID, .forward_paths = {"/nonexistent"}};
    assert_true(vmig_proxy_start_target(p->tgt, &ts, NULL)); /* already running: no change */
    assert_int_equal(vmig_proxy_target_port(p->tgt, TEST_UID, 0), port);
    VmigProxySourceSpec ss = {
        .uid = TEST_UID, .dir = p->tmp, .target_address = "127.0.0.1", .target_ports = {1, 0, 0}};
    g_autoptr(GError) err = NULL;
    assert_false(vmig_proxy_start_source(p->tgt, &ss, &err));
    assert_true(g_error_matches(err, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_EXISTS));
    g_clear_error(&err);
    ss.uid = "../x";
    assert_false(vmig_proxy_start_source(p->src, &ss, &err));
    assert_true(g_error_matches(err, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID));
    g_clear_error(&err);
    ss.uid = TEST_UID_2;
    ss.target_address = "node-b"; /* not a literal */
    assert_false(vmig_proxy_start_source(p->src, &ss, &err));
    assert_non_null(strstr(err->message, "node-b"));
    g_clear_error(&err);
    /* A directory that cannot exist (a 300-byte name) is refused and leaves nothing behind;
     * merely long paths work (test_long_socket_paths). */
    g_autofree char *deep = g_strdup_printf("%s/%0300d", p->tmp, 0);
    ss.dir = deep;
    ss.target_address = "127.0.0.1";
    assert_false(vmig_proxy_start_source(p->src, &ss, &err));
    assert_non_null(err);
    VmigProxyStats s;
    assert_false(vmig_proxy_get_stats(p->src, TEST_UID_2, &s));
    assert_true(vmig_proxy_stop(p->src, TEST_UID));
    assert_false(vmig_proxy_stop(p->src, TEST_UID));
    assert_null(vmig_proxy_target_port_map(p->src, TEST_UID));
}

static gboolean
shutdown_done_cb(gpointer data)
{
    (*(int *)data)++;
    return G_SOURCE_REMOVE;
}

static gboolean
int_set(gpointer data)
{
    return *(int *)data != 0;
}

/* Daemon shutdown: nothing new is accepted, live connections go on until the grace period. */
static void
test_shutdown_grace(void **state)
{
    Pair *p = *state;
    pair_start(p, TEST_UID, NULL);
    int c = test_unix_connect(p->src_path[0]);
    assert_int_equal(write(c, "a", 1), 1);
    for (int i = 0; i < 100 && !test_has_pending(p->pod_fd[0]); i++)
        test_run_for(10);
    int pod = test_accept_wait(p->pod_fd[0], 5000);
    int done = 0;
    vmig_proxy_shutdown(p->src, 300, shutdown_done_cb, &done);
    assert_true(access(p->src_path[0], F_OK) < 0); /* listener gone */
    assert_true(test_unix_connect(p->src_path[1]) < 0);
    /* The live connection still relays. */
    assert_int_equal(write(c, "b", 1), 1);
    test_run_for(50);
    char buf[4];
    assert_int_equal(test_read_n(pod, buf, 2, 5000), 2);
    assert_int_equal(done, 0);
    assert_true(test_run_until(int_set, &done, 2000));
    assert_int_equal(done, 1);
    assert_int_equal(vmig_proxy_n_connections(p->src), 0);
    assert_int_equal(test_read_wait(c, buf, 1, 5000), 0);
    close(c);
    close(pod);
    g_autoptr(GError) err = NULL;
    VmigProxySourceSpec ss = {
        .uid = TEST_UID_2, .dir = p->tmp, .target_address = "127.0.0.1", .target_ports = {1, 0, 0}};
    assert_false(vmig_proxy_start_source(p->src, &ss, &err));
}

/* Daemon shutdown where the live connection ends by itself before the grace period: done
 * comes as soon as it ends, not at the end of the grace period. */
static void
test_shutdown_connections_end(void **state)
{
    Pair *p = *state;
    pair_start(p, TEST_UID, NULL);
    int c = test_unix_connect(p->src_path[0]);
    assert_int_equal(write(c, "a", 1), 1);
    int pod = test_accept_wait(p->pod_fd[0], 5000);
    assert_true(pod >= 0);
    int done = 0;
    vmig_proxy_shutdown(p->src, 60000, shutdown_done_cb, &done);
    vmig_proxy_shutdown(p->tgt, 60000, NULL, NULL);
    test_run_for(50);
    assert_int_equal(done, 0);
    gint64 t0 = g_get_monotonic_time();
    close(c); /* QEMU finishes: EOF travels to the pod, which closes too */
    char buf[4];
    assert_int_equal(test_read_n(pod, buf, 1, 5000), 1);
    assert_int_equal(test_read_wait(pod, buf, 1, 5000), 0);
    close(pod);
    assert_true(test_run_until(int_set, &done, 5000));
    assert_true(g_get_monotonic_time() - t0 < 2 * G_USEC_PER_SEC);
    assert_int_equal(vmig_proxy_n_connections(p->src), 0);
    for (int i = 0; i < 200 && vmig_proxy_n_connections(p->tgt) > 0; i++)
        test_run_for(5);
    assert_int_equal(p->done_errors->len, 2); /* both ends clean */
    assert_string_equal(p->done_errors->pdata[1], "");
    assert_string_equal(p->done_errors->pdata[0], "");
}

/* ---------------------------------------------------------------- B09 bind in three settings */

static int
bind_in_netns(const char *sysctl_path, const char *value)
{
    /* Child process: a private network namespace, loopback up, the sysctl, then a target
     * listener on "any" must bind and carry a connection over IPv4 (and IPv6 if enabled). */
    if (unshare(CLONE_NEWNET) < 0)
        return 77;
    if (system("ip link set lo up") != 0)
        return 77;
    if (sysctl_path && !test_write_sysctl(sysctl_path, value))
        return 77;
    g_autofree char *tmp = g_dir_make_tmp("vmig-proxy-ns-XXXXXX", NULL);
    g_autofree char *path = g_strdup_printf("%s/pod.sock", tmp);
    int l = test_unix_listen(path);
    VmigProxyConfig cfg = {.disable_tls = TRUE};
    VmigProxy *proxy = vmig_proxy_new(&cfg, NULL);
    VmigProxyTargetSpec ts = {.uid = TEST_UID, .listen_address = NULL, .forward_paths = {path}};
    g_autoptr(GError) err = NULL;
    if (!vmig_proxy_start_target(proxy, &ts, &err)) {
        fprintf(stderr, "start_target: %s\n", err->message);
        return 1;
    }
    guint16 port = vmig_proxy_target_port(proxy, TEST_UID, 0);
    int fd = test_tcp_connect("127.0.0.1", port, NULL);
    if (fd < 0)
        return 2;
    (void)write(fd, "v4", 2);
    for (int i = 0; i < 100 && !test_has_pending(l); i++)
        test_run_for(10);
    if (!test_has_pending(l))
        return 3;
    close(fd);
    vmig_proxy_free(proxy);
    close(l);
    unlink(path);
    rmdir(tmp);
    return 0;
}

static void
test_b09_bind_three_settings(void **state)
{
    static const struct {
        const char *path, *value;
    } settings[] = {
        {NULL, NULL},
        {"/proc/sys/net/ipv6/bindv6only", "1"},
        {"/proc/sys/net/ipv6/conf/all/disable_ipv6", "1"},
    };
    if (geteuid() != 0) {
        skip();
        return;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(settings); i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(bind_in_netns(settings[i].path, settings[i].value));
        int status = 0;
        waitpid(pid, &status, 0);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77) {
            fprintf(stderr, "skipping %s: cannot make a network namespace here\n",
                    settings[i].path ? settings[i].path : "default");
            continue;
        }
        assert_int_equal(WEXITSTATUS(status), 0);
    }
}

/* Socket paths longer than sun_path (107 bytes): pod directories seen from the host often are
 * (hostPaths, /proc/<pid>/root/...). Both the source listeners and the target's pod sockets
 * must work there (the demo's first run failed on a 108-byte path). The test reaches its own
 * sockets by relative names after chdir(). */
static int
rel_socket(const char *dir, const char *name, gboolean listen_)
{
    g_autofree char *cwd = g_get_current_dir();
    assert_int_equal(chdir(dir), 0);
    int fd = listen_ ? test_unix_listen(name) : test_unix_connect(name);
    assert_int_equal(chdir(cwd), 0);
    return fd;
}

static void
test_long_socket_paths(void **state)
{
    Pair *p = *state;
    g_autofree char *deep = g_strdup_printf(
        "%s/a-rather-long-host-path-to-a-pods-virt-share-dir/namespace-with-a-long-name_vm1",
        p->tmp);
    assert_int_equal(g_mkdir_with_parents(deep, 0700), 0);
    g_autofree char *pod = g_build_filename(deep, "pod-memory.sock", NULL);
    int pod_l = rel_socket(deep, "pod-memory.sock", TRUE);
    VmigProxyTargetSpec ts = {
        .uid = TEST_UID, .listen_address = "127.0.0.1", .forward_paths = {NULL, pod, NULL}};
    g_autoptr(GError) err = NULL;
    assert_true(vmig_proxy_start_target(p->tgt, &ts, &err));
    VmigProxySourceSpec ss = {.uid = TEST_UID,
                              .dir = deep,
                              .target_address = "127.0.0.1",
                              .socket_uid = getuid(),
                              .socket_gid = getgid()};
    ss.target_ports[VMIG_PROXY_CHANNEL_MEMORY] =
        vmig_proxy_target_port(p->tgt, TEST_UID, VMIG_PROXY_CHANNEL_MEMORY);
    assert_true(vmig_proxy_start_source(p->src, &ss, &err));
    g_autofree char *name = vmig_proxy_socket_name(TEST_UID, VMIG_PROXY_CHANNEL_MEMORY);
    g_autofree char *src = g_build_filename(deep, "migrationproxy", name, NULL);
    assert_true(strlen(src) > 107);
    assert_true(strlen(pod) > 107 || strlen(src) > 107);
    g_autofree char *mp = g_build_filename(deep, "migrationproxy", NULL);
    int c = rel_socket(mp, name, FALSE);
    assert_true(c >= 0);
    assert_int_equal(write(c, "long-path", 9), 9);
    int pod_c = test_accept_wait(pod_l, 5000);
    assert_true(pod_c >= 0);
    char buf[16];
    assert_int_equal(test_read_n(pod_c, buf, 9, 5000), 9);
    assert_memory_equal(buf, "long-path", 9);
    close(pod_c);
    close(c);
    close(pod_l);
    assert_true(vmig_proxy_stop(p->src, TEST_UID));
    assert_true(vmig_proxy_stop(p->tgt, TEST_UID));
    struct stat st;
    assert_int_equal(stat(src, &st), -1); /* stop removes the socket file */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_host_port_b09),
        cmocka_unit_test(test_parse_host_port_rejects),
        cmocka_unit_test(test_uid_names_keys),
        cmocka_unit_test(test_port_map_parse),
        cmocka_unit_test(test_b09_bind_three_settings),
        cmocka_unit_test_setup_teardown(test_b10_half_close, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_b10_reset_mid_write, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_b10_tcp_rst, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_b10_full_close_other_side_silent, pair_setup,
                                        pair_teardown),
        cmocka_unit_test_setup_teardown(test_b10_abort_cycles, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_multifd_counts, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_expected_peer, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_lazy_pod_socket, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_long_socket_paths, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_pair, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_forward_tcp_in_netns, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_start_stop_idempotent, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_grace, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_connections_end, pair_setup, pair_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
