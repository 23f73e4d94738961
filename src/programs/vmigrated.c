/* vmigrated - the node agent: configuration, logging, signals; the work is the controller's. */
#define G_LOG_DOMAIN "vmigrated"

#include <glib-unix.h>
#include <glib.h>
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmig/agentconfig.h"
#include "vmig/controller.h"
#include "vmig/httpd.h"
#include "vmig/kube.h"
#include "vmig/log.h"
#include "vmig/metrics.h"

typedef struct {
    GMainLoop *loop;
    VmigController *ctl;
    const VmigAgentConfig *cfg;
    guint signals;
    gboolean stopping;
    VmigHttpd *httpd;
} Daemon;

/* The HTTP server is freed from a callback of the loop, i.e. by the thread that owns GLib's
 * default context: libvirt's event thread, when a program starts one (vmig_virt_event_loop_start),
 * iterates that context too (libvirt >= 6.2), and after the loop ended it would go on dispatching
 * the server's sources while main() freed them (seen as a crash in libsoup at exit). */
static void
daemon_stop_http(Daemon *d)
{
    g_clear_pointer(&d->httpd, vmig_httpd_free);
}

/* /readyz: the caches are complete (every informer synced) and we are not stopping. libvirt
 * is per VM pod here, so there is no node-wide libvirt to ask; a pod's libvirt that cannot
 * be reached fails that migration, not the agent. */
static gboolean
daemon_ready(gpointer data, char **reason)
{
    Daemon *d = data;
    if (d->stopping) {
        *reason = g_strdup("shutting down");
        return FALSE;
    }
    if (!vmig_controller_is_ready(d->ctl)) {
        *reason = g_strdup("informers not synced yet");
        return FALSE;
    }
    return TRUE;
}

static void
daemon_collect(gpointer data)
{
    Daemon *d = data;
    vmig_controller_collect_metrics(d->ctl);
}

static gboolean
daemon_stopped(gpointer data)
{
    Daemon *d = data;
    g_message("stopped");
    daemon_stop_http(d);
    g_main_loop_quit(d->loop);
    return G_SOURCE_REMOVE;
}

static gboolean
daemon_on_signal(gpointer data)
{
    Daemon *d = data;
    if (d->signals++ > 0) {
        g_warning("second signal: stopping now; running migrations are left to libvirt");
        daemon_stop_http(d);
        g_main_loop_quit(d->loop);
        return G_SOURCE_CONTINUE;
    }
    d->stopping = TRUE;
    g_message("stopping: no new migrations; live ones get %u ms to finish",
              d->cfg->shutdown_grace_ms);
    vmig_controller_shutdown(d->ctl, d->cfg->shutdown_grace_ms, daemon_stopped, d);
    return G_SOURCE_CONTINUE;
}

int
main(int argc, char **argv)
{
    /* GLib 2.74's slice allocator keeps freed JSON nodes in magazines forever (an informer
     * relist of 1,000 VMIs left 38 MiB in use instead of 10), and it reads G_SLICE when
     * the libraries' constructors first allocate, before main: setting it here is too late
     * (measured: 18.4 vs 13.9 MiB RSS with 2,000 cached objects), so start again with it. */
    if (!getenv("G_SLICE")) {
        setenv("G_SLICE", "always-malloc", 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "vmigrated: warning: cannot re-exec with G_SLICE=always-malloc: %s\n",
                strerror(errno));
    }
    setlocale(LC_ALL, ""); /* GLib's messages (quotes, file names) in the user's charset */
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigAgentConfig) cfg = vmig_agentconfig_load(&argc, &argv, NULL, &err);
    if (!cfg) {
        if (!err)
            return 0; /* --help or --print-config */
        fprintf(stderr, "vmigrated: %s\n", err->message);
        return 2;
    }
    VmigLogFormat fmt = VMIG_LOG_FORMAT_TEXT;
    vmig_log_format_from_string(cfg->log_format, &fmt);
    vmig_log_setup(fmt, cfg->verbose);

    g_autoptr(VmigKubeConfig) kc = cfg->kubeconfig ? vmig_kube_config_load(cfg->kubeconfig, &err)
                                                   : vmig_kube_config_in_cluster(NULL, &err);
    if (!kc) {
        g_critical("Kubernetes API configuration: %s", err->message);
        return 1;
    }
    g_autoptr(VmigKubeClient) client = vmig_kube_client_new(kc, &err);
    if (!client) {
        g_critical("Kubernetes API client: %s", err->message);
        return 1;
    }
    if (cfg->disable_tls)
        g_warning("migration traffic between nodes is NOT encrypted (--disable-tls)");

    Daemon d = {.cfg = cfg};
    d.loop = g_main_loop_new(NULL, FALSE);
    d.ctl = vmig_controller_new(cfg, client, &err);
    if (!d.ctl) {
        g_critical("%s", err->message);
        g_main_loop_unref(d.loop);
        return 1;
    }
    g_autoptr(VmigMetrics) metrics = vmig_metrics_new();
    vmig_controller_set_metrics(d.ctl, metrics);
    if (cfg->http_address && *cfg->http_address) {
        VmigHttpdConfig hc = {
            .address = cfg->http_address,
            .metrics = metrics,
            .ready = daemon_ready,
            .collect = daemon_collect,
            .user_data = &d,
        };
        d.httpd = vmig_httpd_new(&hc, &err);
        if (!d.httpd) {
            g_critical("%s", err->message);
            vmig_controller_free(d.ctl);
            g_main_loop_unref(d.loop);
            return 1;
        }
        g_message("serving /healthz /readyz /metrics on %s (port %u)", cfg->http_address,
                  vmig_httpd_get_port(d.httpd));
    }
    guint s1 = g_unix_signal_add(SIGTERM, daemon_on_signal, &d);
    guint s2 = g_unix_signal_add(SIGINT, daemon_on_signal, &d);
    vmig_controller_start(d.ctl);
    g_message("vmigrated %s on node %s (API %s)", VMIG_VERSION, cfg->node_name, kc->server);
    g_main_loop_run(d.loop);

    g_source_remove(s1);
    g_source_remove(s2);
    daemon_stop_http(&d);
    vmig_controller_free(d.ctl);
    g_main_loop_unref(d.loop);
    return 0;
}
