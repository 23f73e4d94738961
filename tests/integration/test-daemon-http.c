/* test-daemon-http.c - vmigrated's HTTP endpoint against the in-memory API server: the
 * daemon starts with --http-address 127.0.0.1:0, says its port, answers /healthz at once,
 * /readyz once its informers synced, and /metrics (strictly checked) shows the VMIM phase
 * gauges of the VMIMs it is source of and nothing of another node's. Prints the daemon's
 * resident set size (VmRSS) once it is ready. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>

#include "apiserver-proc.h"
#include "prom-check.h"

typedef struct {
    ApiserverProc *api;
    GSubprocess *daemon;
    GDataInputStream *err;
    GString *log;
    guint16 port;
    SoupSession *session;
} Fx;

static gboolean
timeout_cb(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

static void
spin_ms(guint ms)
{
    gboolean done = FALSE;
    g_timeout_add(ms, timeout_cb, &done);
    while (!done)
        g_main_context_iteration(NULL, TRUE);
}

typedef struct {
    gboolean done;
    char *line;
} LineRead;

static void
line_done(GObject *src, GAsyncResult *res, gpointer data)
{
    LineRead *r = data;
    r->line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src), res, NULL, NULL);
    r->done = TRUE;
}

/* Reads the daemon's log until a line contains @needle (the API server keeps running on the
 * same loop meanwhile). Returns the line. */
static char *
wait_log(Fx *fx, const char *needle, guint timeout_ms)
{
    gint64 end = g_get_monotonic_time() + timeout_ms * 1000;
    while (g_get_monotonic_time() < end) {
        LineRead r = {0};
        g_data_input_stream_read_line_async(fx->err, G_PRIORITY_DEFAULT, NULL, line_done, &r);
        while (!r.done)
            g_main_context_iteration(NULL, TRUE);
        if (!r.line)
            break;
        g_string_append_printf(fx->log, "%s\n", r.line);
        if (strstr(r.line, needle))
            return r.line;
        g_free(r.line);
    }
    fail_msg("no '%s' in the daemon's log:\n%s", needle, fx->log->str);
    return NULL;
}

typedef struct {
    gboolean done;
    GBytes *body;
    GError *error;
} Fetch;

static void
fetch_done(GObject *src, GAsyncResult *res, gpointer data)
{
    Fetch *f = data;
    f->body = soup_session_send_and_read_finish(SOUP_SESSION(src), res, &f->error);
    f->done = TRUE;
}

static char *
get(Fx *fx, const char *path, guint *status)
{
    g_autofree char *url = g_strdup_printf("http://127.0.0.1:%u%s", fx->port, path);
    g_autoptr(SoupMessage) msg = soup_message_new("GET", url);
    Fetch f = {0};
    soup_session_send_and_read_async(fx->session, msg, G_PRIORITY_DEFAULT, NULL, fetch_done, &f);
    while (!f.done)
        g_main_context_iteration(NULL, TRUE);
    if (f.error)
        fail_msg("GET %s: %s", path, f.error->message);
    *status = soup_message_get_status(msg);
    gsize len;
    const char *d = g_bytes_get_data(f.body, &len);
    char *text = g_strndup(d ? d : "", len);
    g_bytes_unref(f.body);
    return text;
}

static guint64
rss_kib(GSubprocess *p)
{
    g_autofree char *path = g_strdup_printf("/proc/%s/status", g_subprocess_get_identifier(p));
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    const char *l = strstr(text, "VmRSS:");
    return l ? g_ascii_strtoull(l + 6, NULL, 10) : 0;
}

/* a VMI on this node with a finished migration, one on another node with a failed one */
static const char seed_json[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":["
    "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"node-a\"}},"
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstance\","
    "\"metadata\":{\"name\":\"vm1\",\"namespace\":\"ns1\"},\"spec\":{},"
    "\"status\":{\"phase\":\"Running\",\"nodeName\":\"node-a\"}},"
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstance\","
    "\"metadata\":{\"name\":\"vm2\",\"namespace\":\"ns1\"},\"spec\":{},"
    "\"status\":{\"phase\":\"Running\",\"nodeName\":\"node-b\"}},"
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstanceMigration\","
    "\"metadata\":{\"name\":\"mig-old\",\"namespace\":\"ns1\"},"
    "\"spec\":{\"vmiName\":\"vm1\"},\"status\":{\"phase\":\"Succeeded\","
    "\"migrationState\":{\"sourceNode\":\"node-a\",\"targetNode\":\"node-b\","
    "\"completed\":true}}},"
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstanceMigration\","
    "\"metadata\":{\"name\":\"mig-b\",\"namespace\":\"ns1\"},"
    "\"spec\":{\"vmiName\":\"vm2\"},\"status\":{\"phase\":\"Failed\","
    "\"migrationState\":{\"sourceNode\":\"node-b\",\"failed\":true}}}]}";

static int
setup(void **state)
{
    Fx *fx = g_new0(Fx, 1);
    fx->api = apiserver_proc_start(seed_json);
    fx->log = g_string_new(NULL);
    fx->session = soup_session_new();
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    Fx *fx = *state;
    if (fx->daemon) {
        g_subprocess_send_signal(fx->daemon, SIGTERM);
        /* drain the log so the daemon never blocks on a full pipe while stopping */
        while (TRUE) {
            LineRead r = {0};
            g_data_input_stream_read_line_async(fx->err, G_PRIORITY_DEFAULT, NULL, line_done, &r);
            while (!r.done)
                g_main_context_iteration(NULL, TRUE);
            if (!r.line)
                break;
            g_string_append_printf(fx->log, "%s\n", r.line);
            g_free(r.line);
        }
        g_subprocess_wait(fx->daemon, NULL, NULL);
        if (!g_subprocess_get_if_exited(fx->daemon) || g_subprocess_get_exit_status(fx->daemon))
            fail_msg("vmigrated did not stop cleanly:\n%s", fx->log->str);
        g_object_unref(fx->daemon);
        g_object_unref(fx->err);
    }
    g_object_unref(fx->session);
    apiserver_proc_stop(fx->api);
    g_string_free(fx->log, TRUE);
    g_free(fx);
    return 0;
}

/* The value of the series @series (name and labels, e.g. `a{x="1"}`) in @text, -1 when
 * absent. */
static double
metric_value(const char *text, const char *series)
{
    g_autofree char *needle = g_strdup_printf("\n%s ", series);
    const char *p = strstr(text, needle);
    return p ? g_ascii_strtod(p + strlen(needle), NULL) : -1;
}

#define VMIM_RES "{resource=\"virtualmachineinstancemigrations\"}"
#define VMI_RES  "{resource=\"virtualmachineinstances\"}"

/* Scrapes until @series reaches @want (at most 10 s); returns the last value. */
static double
wait_metric(Fx *fx, const char *series, double want)
{
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    double v;
    do {
        guint status = 0;
        g_autofree char *m = get(fx, "/metrics", &status);
        v = metric_value(m, series);
        if (v >= want)
            break;
        spin_ms(50);
    } while (g_get_monotonic_time() < end);
    return v;
}

static guint
open_watches(Fx *fx)
{
    g_autofree char *body = NULL;
    assert_int_equal(apiserver_proc_request(fx->api, "GET", "/_test/stats", NULL, &body), 200);
    g_autoptr(JsonNode) n = json_from_string(body, NULL);
    assert_non_null(n);
    return (guint)json_object_get_int_member(json_node_get_object(n), "openWatches");
}

/* Waits until every informer of the daemon watches again (@want streams). */
static void
wait_watches(Fx *fx, guint want)
{
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (open_watches(fx) < want && g_get_monotonic_time() < end)
        spin_ms(50);
    assert_int_equal(open_watches(fx), want);
}

static void
fault(Fx *fx, const char *json)
{
    assert_int_equal(apiserver_proc_request(fx->api, "POST", "/_test/faults", json, NULL), 200);
}

/* vmigrated_watch_reconnects_total and vmigrated_informer_relists_total count exactly the
 * injected cuts and 410s of the VMIM informer's watch, and nothing for the others. */
static void
check_watch_counters(Fx *fx)
{
    guint status = 0;
    g_autofree char *m0 = get(fx, "/metrics", &status);
    double r0 = metric_value(m0, "vmigrated_watch_reconnects_total" VMIM_RES);
    double l0 = metric_value(m0, "vmigrated_informer_relists_total" VMIM_RES);
    double vmi0 = metric_value(m0, "vmigrated_watch_reconnects_total" VMI_RES);
    assert_true(r0 >= 0 && l0 >= 0 && vmi0 >= 0);
    guint watches = open_watches(fx);
    assert_true(watches >= 2);

    /* three cuts, clean and abrupt, each after the previous watch was opened again */
    static const char *const cuts[] = {
        "{\"action\":\"cut-watches\",\"resource\":\"virtualmachineinstancemigrations\","
        "\"mode\":\"close\"}",
        "{\"action\":\"cut-watches\",\"resource\":\"virtualmachineinstancemigrations\","
        "\"mode\":\"abort\"}",
        "{\"action\":\"cut-watches\",\"resource\":\"virtualmachineinstancemigrations\","
        "\"mode\":\"close\"}",
    };
    for (guint i = 0; i < G_N_ELEMENTS(cuts); i++) {
        fault(fx, cuts[i]);
        assert_true(wait_metric(fx, "vmigrated_watch_reconnects_total" VMIM_RES, r0 + i + 1) ==
                    r0 + i + 1);
        wait_watches(fx, watches);
    }
    /* a 410 on the next watch: one more cut, the 410 answer ends that watch too, one relist */
    fault(fx, "{\"action\":\"expire-next-watch\",\"shape\":\"http\"}");
    fault(fx, cuts[0]);
    assert_true(wait_metric(fx, "vmigrated_informer_relists_total" VMIM_RES, l0 + 1) == l0 + 1);
    wait_watches(fx, watches);
    /* the same in the stream shape (an ERROR event with code 410) */
    fault(fx, "{\"action\":\"expire-next-watch\",\"shape\":\"stream\"}");
    fault(fx, cuts[1]);
    assert_true(wait_metric(fx, "vmigrated_informer_relists_total" VMIM_RES, l0 + 2) == l0 + 2);
    wait_watches(fx, watches);
    spin_ms(300); /* nothing more comes late */
    g_autofree char *m = get(fx, "/metrics", &status);
    g_autofree char *why = prom_check(m);
    if (why)
        fail_msg("/metrics: %s\n%s", why, m);
    print_message("VMIM watch: reconnects %g -> %g, relists %g -> %g\n", r0,
                  metric_value(m, "vmigrated_watch_reconnects_total" VMIM_RES), l0,
                  metric_value(m, "vmigrated_informer_relists_total" VMIM_RES));
    /* 3 cuts + 2 x (cut + 410 answer) */
    assert_true(metric_value(m, "vmigrated_watch_reconnects_total" VMIM_RES) == r0 + 7);
    assert_true(metric_value(m, "vmigrated_informer_relists_total" VMIM_RES) == l0 + 2);
    assert_true(metric_value(m, "vmigrated_watch_reconnects_total" VMI_RES) == vmi0);
    assert_true(metric_value(m, "vmigrated_informer_relists_total" VMI_RES) == 0);
}

static void
test_endpoint(void **state)
{
    Fx *fx = *state;
    g_autofree char *exe =
        g_build_filename(g_getenv("VMIG_BUILD_ROOT"), "src", "programs", "vmigrated", NULL);
    g_autoptr(GError) err = NULL;
    fx->daemon =
        g_subprocess_new(G_SUBPROCESS_FLAGS_STDERR_PIPE, &err, exe, "--kubeconfig",
                         fx->api->kubeconfig, "--node-name", "node-a", "--disable-tls",
                         "--http-address", "127.0.0.1:0", "--lease-namespace", "vmigrated", NULL);
    assert_non_null(fx->daemon);
    fx->err = g_data_input_stream_new(g_subprocess_get_stderr_pipe(fx->daemon));
    g_autofree char *line = wait_log(fx, "serving /healthz", 10000);
    const char *p = strstr(line, "(port ");
    assert_non_null(p);
    fx->port = (guint16)g_ascii_strtoull(p + 6, NULL, 10);
    assert_true(fx->port > 0);

    guint status = 0;
    g_autofree char *h = get(fx, "/healthz", &status);
    assert_int_equal(status, 200);

    /* ready once the informers synced (a few round trips) */
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    do {
        g_autofree char *r = get(fx, "/readyz", &status);
        if (status == 200)
            break;
        assert_int_equal(status, 503);
        spin_ms(50);
    } while (g_get_monotonic_time() < end);
    assert_int_equal(status, 200);

    /* the recount follows VMIM events within a second */
    g_autofree char *m = NULL;
    end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    do {
        g_free(m);
        m = get(fx, "/metrics", &status);
        assert_int_equal(status, 200);
        if (strstr(m, "kubevirt_vmi_migration_succeeded{"))
            break;
        spin_ms(100);
    } while (g_get_monotonic_time() < end);
    g_autofree char *why = prom_check(m);
    if (why)
        fail_msg("/metrics: %s\n%s", why, m);
    assert_non_null(strstr(
        m, "kubevirt_vmi_migration_succeeded{vmi=\"vm1\",vmim=\"mig-old\",namespace=\"ns1\"} 1\n"));
    assert_null(strstr(m, "kubevirt_vmi_migration_failed{")); /* node-b's, not ours */
    assert_non_null(strstr(m, "\nvmigrated_ready 1\n"));
    assert_non_null(strstr(m, "\nkubevirt_vmi_migrations_in_running_phase 0\n"));
    assert_non_null(strstr(
        m, "vmigrated_informer_lists_total{resource=\"virtualmachineinstancemigrations\"} "));

    /* a new VMIM for vm2 (node-b's VMI) stays out of our unset count; one for vm1 counts
     * until this node accepts it */
    guint code = apiserver_proc_request(
        fx->api, "POST", "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations",
        "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstanceMigration\","
        "\"metadata\":{\"name\":\"mig-new-b\",\"namespace\":\"ns1\"},"
        "\"spec\":{\"vmiName\":\"vm2\"}}",
        NULL);
    assert_int_equal(code, 201);
    spin_ms(1300);
    g_free(m);
    m = get(fx, "/metrics", &status);
    assert_non_null(strstr(m, "\nkubevirt_vmi_migrations_in_unset_phase 0\n"));
    assert_non_null(strstr(m, "\nkubevirt_vmi_migrations_in_pending_phase 0\n"));

    check_watch_counters(fx);

    print_message("vmigrated VmRSS after sync (this build, sanitizers included): %" G_GUINT64_FORMAT
                  " KiB\n",
                  rss_kib(fx->daemon));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_endpoint, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
