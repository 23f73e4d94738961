/* main.c - vmig-test-apiserver: the in-memory Kubernetes API server as a program (wiring). */
#include "apiserver.h"

#include <glib-unix.h>
#include <stdio.h>

static gboolean
quit_cb(gpointer loop)
{
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

int
main(int argc, char **argv)
{
    g_autofree char *listen = NULL, *tls_dir = NULL, *token = NULL, *kubeconfig = NULL,
                    *ready_file = NULL;
    g_auto(GStrv) load = NULL;
    gint port = 0, window = 0, bookmark_ms = 0;
    GOptionEntry entries[] = {
        {"listen", 0, 0, G_OPTION_ARG_STRING, &listen, "Address to bind (default 127.0.0.1)",
         "ADDR"},
        {"port", 0, 0, G_OPTION_ARG_INT, &port, "TCP port, 0 = kernel-chosen (default)", "N"},
        {"tls-dir", 0, 0, G_OPTION_ARG_FILENAME, &tls_dir,
         "Serve HTTPS with DIR/apiserver.pem signed by DIR/ca.pem (made if missing)", "DIR"},
        {"token", 0, 0, G_OPTION_ARG_STRING, &token, "Bearer token required (401 otherwise)",
         "TOKEN"},
        {"write-kubeconfig", 0, 0, G_OPTION_ARG_FILENAME, &kubeconfig,
         "Write a kubeconfig for kubectl and vmigrated", "FILE"},
        {"ready-file", 0, 0, G_OPTION_ARG_FILENAME, &ready_file,
         "Write the URL to FILE once listening", "FILE"},
        {"compaction-window", 0, 0, G_OPTION_ARG_INT, &window,
         "Watch events retained before 410 Expired (default 10000)", "N"},
        {"bookmark-interval", 0, 0, G_OPTION_ARG_INT, &bookmark_ms,
         "BOOKMARK period in ms for allowWatchBookmarks (default 1000)", "MS"},
        {"load", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &load,
         "Seed objects from a JSON/YAML file (repeatable)", "FILE"},
        {NULL}};
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("- in-memory Kubernetes API server for tests");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "vmig-test-apiserver: %s\n", error->message);
        return 2;
    }
    if (port < 0 || port > 65535 || window < 0 || bookmark_ms < 0) {
        fprintf(stderr, "vmig-test-apiserver: --port, --compaction-window and "
                        "--bookmark-interval must be non-negative (port <= 65535)\n");
        return 2;
    }
    VmigTestApiserverOptions opts = {
        .listen = listen,
        .port = (guint)port,
        .tls_dir = tls_dir,
        .token = token,
        .compaction_window = (guint)window,
        .bookmark_interval_ms = (guint)bookmark_ms,
    };
    g_autoptr(VmigTestApiserver) server = vmig_test_apiserver_new(&opts, &error);
    if (!server) {
        fprintf(stderr, "vmig-test-apiserver: %s\n", error->message);
        return 1;
    }
    for (char **f = load; f && *f; f++) {
        if (!vmig_test_apiserver_load_file(server, *f, &error)) {
            fprintf(stderr, "vmig-test-apiserver: %s\n", error->message);
            return 1;
        }
    }
    if (kubeconfig && !vmig_test_apiserver_write_kubeconfig(server, kubeconfig, &error)) {
        fprintf(stderr, "vmig-test-apiserver: %s\n", error->message);
        return 1;
    }
    const char *url = vmig_test_apiserver_get_url(server);
    if (ready_file) {
        g_autofree char *line = g_strdup_printf("%s\n", url);
        if (!g_file_set_contents(ready_file, line, -1, &error)) {
            fprintf(stderr, "vmig-test-apiserver: %s\n", error->message);
            return 1;
        }
    }
    fprintf(stderr, "vmig-test-apiserver: serving %s\n", url);
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGINT, quit_cb, loop);
    g_unix_signal_add(SIGTERM, quit_cb, loop);
    g_main_loop_run(loop);
    /* The signal that fired removed its own source; drop the other one. */
    g_source_remove_by_user_data(loop);
    return 0;
}
