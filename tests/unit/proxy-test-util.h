/* proxy-test-util.h - helpers shared by the proxy's socket-level tests: fake peers on threads
 * (the test's QEMU/libvirt stand-ins), main-loop stepping, log capture, descriptor counts. */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "vmig/proxy.h"

#define TEST_UID   "5b2a7c1e-0d1f-4c55-9a77-0000000000aa"
#define TEST_UID_2 "5b2a7c1e-0d1f-4c55-9a77-0000000000bb"

/* ---- log capture: warnings and above from vmig-proxy ---- */
static GPtrArray *test_logs;

static G_GNUC_UNUSED void
test_log_handler(const char *domain, GLogLevelFlags level, const char *msg, gpointer data)
{
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) {
        g_ptr_array_add(test_logs, g_strdup(msg));
        if (g_getenv("TEST_VERBOSE"))
            fprintf(stderr, "[captured] %s\n", msg);
    }
}

static inline void
test_logs_reset(void)
{
    if (!test_logs) {
        test_logs = g_ptr_array_new_with_free_func(g_free);
        g_log_set_handler("vmig-proxy", G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION,
                          test_log_handler, NULL);
    }
    g_ptr_array_set_size(test_logs, 0);
}

static inline guint
test_logs_count(const char *needle)
{
    guint n = 0;
    for (guint i = 0; test_logs && i < test_logs->len; i++)
        n += needle ? strstr(test_logs->pdata[i], needle) != NULL
                    : strstr(test_logs->pdata[i], "disableTLS") == NULL;
    return n;
}

/* Writes a /proc/sys file in place (g_file_set_contents would rename into /proc). */
static G_GNUC_UNUSED gboolean
test_write_sysctl(const char *path, const char *value)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return FALSE;
    gboolean ok = fputs(value, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* ---- main loop ---- */
static G_GNUC_UNUSED gboolean
test_tick(gpointer data)
{
    return G_SOURCE_CONTINUE;
}

/* Runs the default main context until @cond(data) or @timeout_ms; returns cond's value. */
static inline gboolean
test_run_until(gboolean (*cond)(gpointer), gpointer data, int timeout_ms)
{
    guint tick = g_timeout_add(5, test_tick, NULL);
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    gboolean ok;
    while (!(ok = cond(data)) && g_get_monotonic_time() < end)
        g_main_context_iteration(NULL, TRUE);
    g_source_remove(tick);
    return ok;
}

static G_GNUC_UNUSED gboolean
test_never(gpointer data)
{
    return FALSE;
}

static inline void
test_run_for(int ms)
{
    test_run_until(test_never, NULL, ms);
}

/* ---- sockets ---- */
/* read() for the main thread: keeps the main loop (the proxy) running while waiting, so a slow
 * machine cannot deadlock the test; returns what read() returned, or -2 after @timeout_ms. */
static G_GNUC_UNUSED ssize_t
test_read_wait(int fd, void *buf, size_t len, int timeout_ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    while (g_get_monotonic_time() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1)
            return read(fd, buf, len);
        test_run_for(5);
    }
    return -2;
}

/* accept() for the main thread (see test_read_wait); -1 after @timeout_ms. */
static G_GNUC_UNUSED int
test_accept_wait(int fd, int timeout_ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    while (g_get_monotonic_time() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1)
            return accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        test_run_for(5);
    }
    return -1;
}

/* Reads exactly @len bytes (or until EOF/error/timeout); returns bytes read. */
static G_GNUC_UNUSED size_t
test_read_n(int fd, void *buf, size_t len, int timeout_ms)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = test_read_wait(fd, (char *)buf + got, len - got, timeout_ms);
        if (n <= 0)
            break;
        got += n;
    }
    return got;
}

static inline int
test_unix_listen(const char *path)
{
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    g_strlcpy(su.sun_path, path, sizeof su.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(bind(fd, (struct sockaddr *)&su, sizeof su), 0);
    assert_int_equal(listen(fd, 64), 0);
    return fd;
}

static inline int
test_unix_connect(const char *path)
{
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    g_strlcpy(su.sun_path, path, sizeof su.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&su, sizeof su) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* TCP connect to @addr:@port from @bind_addr (NULL: any). */
static inline int
test_tcp_connect(const char *addr, guint16 port, const char *bind_addr)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, addr, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind_addr) {
        struct sockaddr_in b = {.sin_family = AF_INET};
        inet_pton(AF_INET, bind_addr, &b.sin_addr);
        assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof b), 0);
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* TRUE when a connection is waiting on listening @fd (nothing accepted, nothing consumed). */
static inline gboolean
test_has_pending(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static inline size_t
test_write_all(int fd, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        done += n;
    }
    return done;
}

/* Reads to EOF; returns bytes, sets *err to errno on error. */
static inline size_t
test_read_all(int fd, int *err)
{
    char buf[65536];
    size_t total = 0;
    *err = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *err = errno;
            break;
        }
        total += n;
    }
    return total;
}

/* ---- fake peers on threads ---- */
typedef struct {
    int listen_fd;     /* sink: accept from this */
    const char *path;  /* client: connect here */
    size_t send_bytes; /* bytes to write (then SHUT_WR for the client, close for the sink) */
    size_t got;        /* bytes read until EOF */
    int err;           /* errno of the read, 0 at clean EOF */
    gint done;         /* atomic */
    gint64 done_at;    /* monotonic us */
} TestPeer;

static G_GNUC_UNUSED gpointer
test_sink_thread(gpointer data)
{
    /* The pod side on the target: read all, reply, close. */
    TestPeer *p = data;
    int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
        p->got = test_read_all(fd, &p->err);
        g_autofree char *reply = g_malloc0(p->send_bytes + 1);
        test_write_all(fd, reply, p->send_bytes);
        close(fd);
    } else {
        p->err = errno;
    }
    p->done_at = g_get_monotonic_time();
    g_atomic_int_set(&p->done, 1);
    return NULL;
}

static G_GNUC_UNUSED gpointer
test_client_thread(gpointer data)
{
    /* QEMU on the source: write, half-close, read the reply to EOF. */
    TestPeer *p = data;
    int fd = test_unix_connect(p->path);
    if (fd >= 0) {
        char *buf = g_malloc(1 << 20);
        memset(buf, 0x5a, 1 << 20);
        size_t left = p->send_bytes;
        while (left > 0) {
            size_t chunk = MIN(left, (size_t)(1 << 20));
            if (test_write_all(fd, buf, chunk) != chunk)
                break;
            left -= chunk;
        }
        g_free(buf);
        shutdown(fd, SHUT_WR);
        p->got = test_read_all(fd, &p->err);
        close(fd);
    } else {
        p->err = errno;
    }
    p->done_at = g_get_monotonic_time();
    g_atomic_int_set(&p->done, 1);
    return NULL;
}

static G_GNUC_UNUSED gboolean
test_peer_done(gpointer data)
{
    return g_atomic_int_get(&((TestPeer *)data)->done) != 0;
}

static G_GNUC_UNUSED gboolean
test_peers_done(gpointer data)
{
    TestPeer **p = data;
    for (; *p; p++) {
        if (!g_atomic_int_get(&(*p)->done))
            return FALSE;
    }
    return TRUE;
}

/* ---- descriptor accounting (B10) ---- */
static inline int
test_count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the DIR's own descriptor */
}

/* Listening TCP sockets that belong to this process (inode match against /proc/net/tcp*). */
static inline int
test_count_listening(void)
{
    g_autoptr(GHashTable) inodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d))) {
        char link[64], target[64];
        g_snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 9 && strncmp(target, "socket:[", 8) == 0) {
            target[n - 1] = '\0';
            g_hash_table_add(inodes, g_strdup(target + 8));
        }
    }
    closedir(d);
    int count = 0;
    const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (int f = 0; f < 2; f++) {
        g_autofree char *text = NULL;
        if (!g_file_get_contents(files[f], &text, NULL, NULL))
            continue;
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (int i = 1; lines[i]; i++) {
            g_auto(GStrv) col = g_strsplit_set(g_strstrip(lines[i]), " ", -1);
            /* columns with empty strings from repeated spaces: collect non-empty ones */
            const char *v[12] = {0};
            int k = 0;
            for (int j = 0; col[j] && k < 12; j++) {
                if (*col[j])
                    v[k++] = col[j];
            }
            if (k >= 10 && strcmp(v[3], "0A") == 0 && g_hash_table_contains(inodes, v[9]))
                count++;
        }
    }
    return count;
}
