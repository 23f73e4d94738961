/* bench-stream - byte pump for bench/bench-proxy: a sink that accepts N connections and reads
 * each to EOF, and a sender that opens N connections, writes BYTES in total, half-closes and
 * waits for the sink's close. Addresses: unix:PATH or tcp:HOST:PORT (sink: tcp:HOST:0 prints
 * the chosen port).
 *   bench-stream sink ADDR CONNS
 *   bench-stream send ADDR BYTES CONNS      -> prints "<seconds> <MiB/s>"
 *   bench-stream hold ADDR CONNS            -> opens CONNS idle connections until stdin closes
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int
addr_of(const char *a, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (strncmp(a, "unix:", 5) == 0) {
        struct sockaddr_un *su = (struct sockaddr_un *)ss;
        su->sun_family = AF_UNIX;
        snprintf(su->sun_path, sizeof su->sun_path, "%s", a + 5);
        *len = sizeof *su;
        return AF_UNIX;
    }
    if (strncmp(a, "tcp:", 4) == 0) {
        char host[256];
        snprintf(host, sizeof host, "%s", a + 4);
        char *colon = strrchr(host, ':');
        if (!colon)
            return -1;
        *colon = 0;
        struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM}, *res;
        if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
            return -1;
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *len = res->ai_addrlen;
        freeaddrinfo(res);
        return ss->ss_family;
    }
    return -1;
}

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
sink_conn(void *arg)
{
    int fd = (int)(long)arg;
    static char buf[1 << 20];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    close(fd);
    return NULL;
}

static struct sockaddr_storage target;
static socklen_t target_len;
static long long per_conn;

static void *
send_conn(void *arg)
{
    int fd = socket(target.ss_family, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&target, target_len) < 0) {
        perror("connect");
        exit(1);
    }
    static char buf[1 << 20];
    long long left = per_conn;
    while (left > 0) {
        ssize_t n = write(fd, buf, left < (long long)sizeof buf ? left : (long long)sizeof buf);
        if (n <= 0) {
            perror("write");
            exit(1);
        }
        left -= n;
    }
    shutdown(fd, SHUT_WR);
    char c;
    while (read(fd, &c, 1) > 0)
        ;
    close(fd);
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    struct sockaddr_storage ss;
    socklen_t len;
    int fam = addr_of(argv[2], &ss, &len);
    if (fam < 0)
        return 2;
    if (strcmp(argv[1], "sink") == 0) {
        int n = atoi(argv[3]);
        int l = socket(fam, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (fam == AF_UNIX)
            unlink(((struct sockaddr_un *)&ss)->sun_path);
        if (bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 128) < 0) {
            perror("sink");
            return 1;
        }
        if (fam != AF_UNIX) {
            getsockname(l, (struct sockaddr *)&ss, &len);
            printf("%u\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
        } else {
            printf("ready\n");
        }
        fflush(stdout);
        pthread_t t[256];
        for (int i = 0; i < n; i++) {
            int fd = accept(l, NULL, NULL);
            pthread_create(&t[i], NULL, sink_conn, (void *)(long)fd);
        }
        for (int i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        return 0;
    }
    if (strcmp(argv[1], "hold") == 0) {
        int n = atoi(argv[3]);
        for (int i = 0; i < n; i++) {
            int fd = socket(fam, SOCK_STREAM, 0);
            if (connect(fd, (struct sockaddr *)&ss, len) < 0 || write(fd, "x", 1) != 1) {
                perror("hold");
                return 1;
            }
        }
        printf("held\n");
        fflush(stdout);
        char c;
        while (read(0, &c, 1) > 0)
            ;
        return 0;
    }
    if (strcmp(argv[1], "send") == 0 && argc >= 5) {
        target = ss;
        target_len = len;
        long long bytes = atoll(argv[3]);
        int n = atoi(argv[4]);
        per_conn = bytes / n;
        pthread_t t[256];
        double t0 = now();
        for (int i = 0; i < n; i++)
            pthread_create(&t[i], NULL, send_conn, NULL);
        for (int i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        double dt = now() - t0;
        printf("%.3f %.1f\n", dt, (double)per_conn * n / dt / 1048576.0);
        return 0;
    }
    return 2;
}
