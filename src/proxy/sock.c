/* sock.c - socket setup for the proxy: TCP tuning, listeners, connecting from another netns. */
#include "proxy-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

void
vmig_proxy_sock_tune_tcp(int fd, guint user_timeout_ms)
{
    /* A dead peer (node crash, cable pull) must fail the migration in about user_timeout_ms
     * instead of hanging until the kernel's default of ~15 minutes. */
    int one = 1;
    int idle = MAX(1, (int)user_timeout_ms / 3000);
    int intvl = MAX(1, (int)user_timeout_ms / 6000);
    int cnt = 3;
    unsigned int uto = user_timeout_ms;
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof uto);
    /* libvirt's RPC on the control channel is latency bound; bulk streams write large chunks
     * anyway. Buffer sizes are left to the kernel's autotuning (fixing them disables it). */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

gboolean
vmig_proxy_sock_resolve(const char *host, guint16 port, struct sockaddr_storage *sa, socklen_t *len,
                        GError **error)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char ps[8];
    g_snprintf(ps, sizeof ps, "%u", (unsigned)port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                    "address '%s': not an IPv4/IPv6 literal (%s)", host, gai_strerror(rc));
        return FALSE;
    }
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return TRUE;
}

static int
vmig_proxy_sock_bind_listen(int family, const struct sockaddr *sa, socklen_t len,
                            gboolean dual_stack, guint16 *port_out)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* With net.ipv6.bindv6only=1 a "::" socket would refuse IPv4 peers (B09): ask for dual
     * stack explicitly. */
    if (dual_stack && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)
        goto fail;
    if (bind(fd, sa, len) < 0 || listen(fd, 64) < 0)
        goto fail;
    struct sockaddr_storage got;
    socklen_t glen = sizeof got;
    if (getsockname(fd, (struct sockaddr *)&got, &glen) < 0)
        goto fail;
    *port_out = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                : ((struct sockaddr_in *)&got)->sin_port);
    return fd;
fail : {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}
}

int
vmig_proxy_sock_listen_tcp(const char *address, guint16 *port_out, GError **error)
{
    int fd;
    if (address == NULL || *address == '\0' || g_strcmp0(address, "::") == 0) {
        /* Any address: IPv6 dual stack first; hosts with IPv6 disabled or absent get
         * 0.0.0.0. */
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
        fd = vmig_proxy_sock_bind_listen(AF_INET6, (struct sockaddr *)&s6, sizeof s6, TRUE,
                                         port_out);
        if (fd >= 0)
            return fd;
        g_debug("proxy: dual-stack listener unavailable (%s), using 0.0.0.0", g_strerror(errno));
        struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
        fd = vmig_proxy_sock_bind_listen(AF_INET, (struct sockaddr *)&s4, sizeof s4, FALSE,
                                         port_out);
    } else {
        struct sockaddr_storage sa;
        socklen_t len;
        if (!vmig_proxy_sock_resolve(address, 0, &sa, &len, error))
            return -1;
        fd =
            vmig_proxy_sock_bind_listen(sa.ss_family, (struct sockaddr *)&sa, len, FALSE, port_out);
    }
    if (fd < 0)
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_IO, "listen on '%s' port 0: %s",
                    address && *address ? address : "any", g_strerror(errno));
    return fd;
}

int
vmig_proxy_sock_unix_addr(const char *path, struct sockaddr_un *su, GError **error)
{
    *su = (struct sockaddr_un){.sun_family = AF_UNIX};
    if (strlen(path) < sizeof su->sun_path) {
        strcpy(su->sun_path, path);
        return -1;
    }
    /* sun_path holds 107 bytes; pod directories seen from the host (hostPaths, /proc/<pid>/
     * root/...) plus KubeVirt's UID-based names often need more. Reach the directory through
     * a descriptor instead: /proc/self/fd/<dirfd>/<name> is short and names the same file. */
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_IO, "socket directory '%s': %s", dir,
                    g_strerror(errno));
        return -2;
    }
    int n = g_snprintf(su->sun_path, sizeof su->sun_path, "/proc/self/fd/%d/%s", dirfd, base);
    if (n < 0 || (gsize)n >= sizeof su->sun_path) {
        close(dirfd);
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                    "socket name '%s': longer than %zu bytes", base, sizeof su->sun_path - 20);
        return -2;
    }
    return dirfd;
}

int
vmig_proxy_sock_listen_unix(const char *path, uid_t uid, gid_t gid, guint mode, GError **error)
{
    struct sockaddr_un su;
    int dirfd = vmig_proxy_sock_unix_addr(path, &su, error);
    if (dirfd == -2)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    /* A stale file from a crashed run would make bind fail; the name is ours (UID based). */
    (void)unlink(path);
    /* Bind with a restrictive umask equivalent: chmod right after, before listen(), so no
     * one can connect in between. */
    if (bind(fd, (struct sockaddr *)&su, sizeof su) < 0)
        goto fail;
    if (chmod(path, mode) < 0 || chown(path, uid, gid) < 0 || listen(fd, 64) < 0) {
        int e = errno;
        (void)unlink(path);
        errno = e;
        goto fail;
    }
    if (dirfd >= 0)
        close(dirfd);
    return fd;
fail : {
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_IO, "unix listener '%s': %s", path,
                g_strerror(e));
    return -1;
}
}

typedef struct {
    const char *path;
    int family;
    int fd;
    int err;
} VmigProxyNetnsJob;

static gpointer
vmig_proxy_netns_thread(gpointer data)
{
    /* setns() changes only this thread; the socket keeps the namespace it was created in, and
     * the thread ends right after, so the main loop never runs in a foreign namespace. */
    VmigProxyNetnsJob *job = data;
    int nsfd = open(job->path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
        job->err = errno;
        if (nsfd >= 0)
            close(nsfd);
        return NULL;
    }
    close(nsfd);
    job->fd = socket(job->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    job->err = job->fd < 0 ? errno : 0;
    return NULL;
}

int
vmig_proxy_sock_in_netns(const char *netns_path, int family, GError **error)
{
    VmigProxyNetnsJob job = {.path = netns_path, .family = family, .fd = -1};
    GThread *t = g_thread_new("vmig-netns", vmig_proxy_netns_thread, &job);
    g_thread_join(t);
    if (job.fd < 0)
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_IO,
                    "socket in network namespace '%s': %s", netns_path, g_strerror(job.err));
    return job.fd;
}

char *
vmig_proxy_sock_addr_string(const struct sockaddr_storage *sa)
{
    char buf[INET6_ADDRSTRLEN] = "?";
    if (sa->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, sizeof buf);
    } else if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], buf, sizeof buf);
        else
            inet_ntop(AF_INET6, a, buf, sizeof buf);
    } else if (sa->ss_family == AF_UNIX) {
        return g_strdup("unix");
    }
    return g_strdup(buf);
}
