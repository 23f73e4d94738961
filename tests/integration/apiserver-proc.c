/* apiserver-proc.c - vmig-test-apiserver as a child process (see apiserver-proc.h). */
#include "apiserver-proc.h"

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>

ApiserverProc *
apiserver_proc_start(const char *seed_json)
{
    ApiserverProc *a = g_new0(ApiserverProc, 1);
    g_autoptr(GError) err = NULL;
    a->dir = g_dir_make_tmp("vmig-apiserver-XXXXXX", &err);
    g_assert_no_error(err);
    a->kubeconfig = g_build_filename(a->dir, "kubeconfig", NULL);
    g_autofree char *ready = g_build_filename(a->dir, "ready", NULL);
    g_autofree char *seed = g_build_filename(a->dir, "seed.json", NULL);
    g_autofree char *exe = g_build_filename(g_getenv("VMIG_BUILD_ROOT"), "tests", "apiserver",
                                            "vmig-test-apiserver", NULL);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, exe);
    g_ptr_array_add(argv, "--write-kubeconfig");
    g_ptr_array_add(argv, a->kubeconfig);
    g_ptr_array_add(argv, "--ready-file");
    g_ptr_array_add(argv, ready);
    if (seed_json) {
        g_assert_true(g_file_set_contents(seed, seed_json, -1, &err));
        g_ptr_array_add(argv, "--load");
        g_ptr_array_add(argv, seed);
    }
    g_ptr_array_add(argv, NULL);
    /* its own leak report (it is built with the sanitizers too) is not this test's business */
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_SILENCE);
    g_subprocess_launcher_setenv(l, "ASAN_OPTIONS", "detect_leaks=0", TRUE);
    a->proc = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &err);
    g_assert_no_error(err);
    for (int i = 0; i < 200 && !a->url; i++) {
        g_autofree char *text = NULL;
        if (g_file_get_contents(ready, &text, NULL, NULL) && strchr(text, '\n'))
            a->url = g_strstrip(g_strdup(text));
        else
            g_usleep(25000);
    }
    g_assert_nonnull(a->url);
    g_unlink(seed);
    return a;
}

typedef struct {
    gboolean done;
    GBytes *body;
    GError *error;
} Req;

static void
req_done(GObject *src, GAsyncResult *res, gpointer data)
{
    Req *r = data;
    r->body = soup_session_send_and_read_finish(SOUP_SESSION(src), res, &r->error);
    r->done = TRUE;
}

guint
apiserver_proc_request(ApiserverProc *a, const char *method, const char *path, const char *json,
                       char **body)
{
    g_autoptr(SoupSession) s = soup_session_new();
    g_autofree char *url = g_strconcat(a->url, path, NULL);
    g_autoptr(SoupMessage) msg = soup_message_new(method, url);
    if (json) {
        g_autoptr(GBytes) b = g_bytes_new(json, strlen(json));
        soup_message_set_request_body_from_bytes(
            msg, strcmp(method, "PATCH") == 0 ? "application/merge-patch+json" : "application/json",
            b);
    }
    Req r = {0};
    soup_session_send_and_read_async(s, msg, G_PRIORITY_DEFAULT, NULL, req_done, &r);
    while (!r.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_no_error(r.error);
    if (body) {
        gsize len;
        const char *d = g_bytes_get_data(r.body, &len);
        *body = g_strndup(d ? d : "", len);
    }
    g_bytes_unref(r.body);
    return soup_message_get_status(msg);
}

void
apiserver_proc_stop(ApiserverProc *a)
{
    if (!a)
        return;
    g_subprocess_send_signal(a->proc, SIGTERM);
    g_subprocess_wait(a->proc, NULL, NULL);
    g_object_unref(a->proc);
    g_autofree char *ready = g_build_filename(a->dir, "ready", NULL);
    g_unlink(ready);
    g_unlink(a->kubeconfig);
    g_rmdir(a->dir);
    g_free(a->dir);
    g_free(a->kubeconfig);
    g_free(a->url);
    g_free(a);
}
