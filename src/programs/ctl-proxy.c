/* ctl-proxy.c - `vmigratectl proxy source|target`: one side of the migration-data proxy from
 * the command line, with the daemon's code (tests, benchmarks, debugging in the field). */
#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "vmig/proxy.h"

typedef struct {
    char *uid, *dir, *target, *ports, *listen, *expected_peer, *peer_name, *netns;
    char **forward;
    char *cert, *key, *ca, *owner;
    int mode, grace_ms;
    gboolean disable_tls;
} CtlProxyOpts;

static GMainLoop *ctl_proxy_loop;
static guint ctl_proxy_grace_ms;

static gboolean
ctl_proxy_stopped(gpointer data)
{
    g_main_loop_quit(ctl_proxy_loop);
    return G_SOURCE_REMOVE;
}

static gboolean
ctl_proxy_on_signal(gpointer data)
{
    VmigProxy *proxy = data;
    /* Stop accepting now; let live connections finish within the grace period. */
    vmig_proxy_shutdown(proxy, ctl_proxy_grace_ms, ctl_proxy_stopped, NULL);
    return G_SOURCE_REMOVE;
}

/* "--ports": KubeVirt's port map as JSON, or "key=port,..." ("0=34567,49152=34568"). */
static gboolean
ctl_proxy_parse_ports(const char *s, guint16 ports[VMIG_PROXY_N_CHANNELS], GError **error)
{
    if (s[0] == '{') {
        g_autoptr(JsonNode) n = json_from_string(s, error);
        return n && vmig_proxy_port_map_parse(n, ports, error);
    }
    memset(ports, 0, sizeof(guint16) * VMIG_PROXY_N_CHANNELS);
    if (*s == '\0') {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID, "--ports: empty");
        return FALSE;
    }
    g_auto(GStrv) items = g_strsplit(s, ",", -1);
    for (int i = 0; items[i]; i++) {
        int key = -1, port = -1;
        VmigProxyChannel ch;
        if (sscanf(items[i], "%d=%d", &key, &port) != 2 || port <= 0 || port > 65535 ||
            !vmig_proxy_channel_from_key(key, &ch)) {
            g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                        "--ports: '%s' is not KEY=PORT with KEY 0, 49152 or 49153", items[i]);
            return FALSE;
        }
        ports[ch] = (guint16)port;
    }
    return TRUE;
}

static int
ctl_proxy_run(VmigProxy *proxy, CtlProxyOpts *o, gboolean target)
{
    g_autoptr(GError) err = NULL;
    if (target) {
        VmigProxyTargetSpec ts = {.uid = o->uid,
                                  .listen_address = o->listen,
                                  .expected_peer_address = o->expected_peer,
                                  .source_node = o->peer_name,
                                  .forward_netns = o->netns};
        for (int i = 0; o->forward && o->forward[i]; i++) {
            const char *eq = strchr(o->forward[i], '=');
            VmigProxyChannel ch;
            if (!eq || !vmig_proxy_channel_from_key(atoi(o->forward[i]), &ch) ||
                eq == o->forward[i]) {
                fprintf(stderr,
                        "vmigratectl proxy: --forward '%s': expected KEY=PATH or "
                        "KEY=tcp:HOST:PORT (KEY 0, 49152, 49153)\n",
                        o->forward[i]);
                return 2;
            }
            if (g_str_has_prefix(eq + 1, "tcp:"))
                ts.forward_tcp[ch] = eq + 5;
            else
                ts.forward_paths[ch] = eq + 1;
        }
        if (!vmig_proxy_start_target(proxy, &ts, &err)) {
            fprintf(stderr, "vmigratectl proxy target: %s\n", err->message);
            return err->code == VMIG_PROXY_ERROR_INVALID ? 2 : 1;
        }
        g_autoptr(JsonNode) map = vmig_proxy_target_port_map(proxy, o->uid);
        g_autofree char *json = json_to_string(map, FALSE);
        printf("%s\n", json);
        fflush(stdout);
    } else {
        VmigProxySourceSpec ss = {.uid = o->uid,
                                  .dir = o->dir,
                                  .target_node = o->peer_name,
                                  .socket_uid = getuid(),
                                  .socket_gid = getgid(),
                                  .socket_mode = (guint)o->mode};
        g_autofree char *host = NULL;
        if (!o->target || !o->ports) {
            fprintf(stderr, "vmigratectl proxy source: --target and --ports are required\n");
            return 2;
        }
        /* Accept "[v6]" and bare literals alike. */
        host = o->target[0] == '[' ? g_strndup(o->target + 1, strcspn(o->target + 1, "]"))
                                   : g_strdup(o->target);
        ss.target_address = host;
        if (o->owner) {
            unsigned u, g;
            if (sscanf(o->owner, "%u:%u", &u, &g) != 2) {
                fprintf(stderr, "vmigratectl proxy: --socket-owner '%s': expected UID:GID\n",
                        o->owner);
                return 2;
            }
            ss.socket_uid = u;
            ss.socket_gid = g;
        }
        if (!ctl_proxy_parse_ports(o->ports, ss.target_ports, &err) ||
            !vmig_proxy_start_source(proxy, &ss, &err)) {
            fprintf(stderr, "vmigratectl proxy source: %s\n", err->message);
            return err->code == VMIG_PROXY_ERROR_INVALID ? 2 : 1;
        }
    }
    ctl_proxy_loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGINT, ctl_proxy_on_signal, proxy);
    g_unix_signal_add(SIGTERM, ctl_proxy_on_signal, proxy);
    g_main_loop_run(ctl_proxy_loop);
    g_main_loop_unref(ctl_proxy_loop);
    return 0;
}

int
vmig_ctl_proxy(int argc, char **argv)
{
    CtlProxyOpts o = {.mode = 0600, .grace_ms = 5000};
    GOptionEntry entries[] = {
        {"uid", 0, 0, G_OPTION_ARG_STRING, &o.uid, "migration UID (VMIM metadata.uid)", "UUID"},
        {"dir", 0, 0, G_OPTION_ARG_FILENAME, &o.dir,
         "source: pod's share dir; sockets go to DIR/migrationproxy/", "DIR"},
        {"target", 0, 0, G_OPTION_ARG_STRING, &o.target, "source: target node address", "ADDR"},
        {"ports", 0, 0, G_OPTION_ARG_STRING, &o.ports,
         "source: target port map (JSON as printed by the target, or 0=P,49152=P,49153=P)", "MAP"},
        {"socket-owner", 0, 0, G_OPTION_ARG_STRING, &o.owner,
         "source: owner of the socket files (the pod's QEMU user)", "UID:GID"},
        {"socket-mode", 0, 0, G_OPTION_ARG_INT, &o.mode, "source: socket file mode (0600)", "MODE"},
        {"listen", 0, 0, G_OPTION_ARG_STRING, &o.listen,
         "target: node migration address (default: any)", "ADDR"},
        {"forward", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.forward,
         "target: KEY=UNIXPATH or KEY=tcp:HOST:PORT, KEY 0/49152/49153 (repeat)", "KEY=PATH"},
        {"netns", 0, 0, G_OPTION_ARG_FILENAME, &o.netns,
         "target: network namespace for tcp: forwards (/proc/PID/ns/net)", "PATH"},
        {"expected-peer", 0, 0, G_OPTION_ARG_STRING, &o.expected_peer,
         "target: the only source address accepted", "ADDR"},
        {"peer-name", 0, 0, G_OPTION_ARG_STRING, &o.peer_name,
         "the other node's name, pinned in its certificate (SAN dNSName/CN)", "NODE"},
        {"cert", 0, 0, G_OPTION_ARG_FILENAME, &o.cert, "this node's certificate (PEM)", "FILE"},
        {"key", 0, 0, G_OPTION_ARG_FILENAME, &o.key, "its private key (PEM)", "FILE"},
        {"ca", 0, 0, G_OPTION_ARG_FILENAME, &o.ca, "CA bundle verifying peers (PEM)", "FILE"},
        {"disable-tls", 0, 0, G_OPTION_ARG_NONE, &o.disable_tls,
         "plain TCP between nodes (KubeVirt disableTLS)", NULL},
        {"grace-ms", 0, 0, G_OPTION_ARG_INT, &o.grace_ms,
         "on SIGINT/SIGTERM, how long live connections may finish (ms)", "MS"},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("source|target - run one side of the "
                                                         "migration-data proxy");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_description(
        ctx, "The target prints its port map (targetDirectMigrationNodePorts) as JSON on stdout;\n"
             "pass it to the source with --ports. Both stop on SIGINT/SIGTERM.\n");
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigProxy) proxy = NULL;
    int rc = 2;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "vmigratectl proxy: %s\n", err->message);
        goto out;
    }
    if (argc != 2 || (strcmp(argv[1], "source") != 0 && strcmp(argv[1], "target") != 0) || !o.uid) {
        fprintf(stderr, "usage: vmigratectl proxy source|target --uid UUID ... (see --help)\n");
        goto out;
    }
    VmigProxyConfig cfg = {
        .cert_file = o.cert, .key_file = o.key, .ca_file = o.ca, .disable_tls = o.disable_tls};
    proxy = vmig_proxy_new(&cfg, &err);
    if (!proxy) {
        fprintf(stderr, "vmigratectl proxy: %s\n", err->message);
        rc = 2;
        goto out;
    }
    ctl_proxy_grace_ms = o.grace_ms > 0 ? (guint)o.grace_ms : 0;
    rc = ctl_proxy_run(proxy, &o, strcmp(argv[1], "target") == 0);
out:
    g_free(o.uid);
    g_free(o.dir);
    g_free(o.target);
    g_free(o.ports);
    g_free(o.listen);
    g_free(o.expected_peer);
    g_free(o.peer_name);
    g_free(o.netns);
    g_strfreev(o.forward);
    g_free(o.cert);
    g_free(o.key);
    g_free(o.ca);
    g_free(o.owner);
    return rc;
}
