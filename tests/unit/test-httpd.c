/* test-httpd.c - --http-address parsing, and the endpoint on a kernel-chosen loopback port
 * fetched with a libsoup client: /healthz, /readyz (both answers), /metrics (strictly
 * checked), 404 and 405. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <libsoup/soup.h>
#include <string.h>

#include "prom-check.h"
#include "vmig/httpd.h"

static void
test_parse_address(void **state)
{
    static const struct {
        const char *in;
        gboolean ok;
        const char *host;
        guint port;
    } cases[] = {
        {"127.0.0.1:8080", TRUE, "127.0.0.1", 8080},
        {"0.0.0.0:0", TRUE, "0.0.0.0", 0},
        {"[::1]:9090", TRUE, "::1", 9090},
        {"[fd00::1:2]:65535", TRUE, "fd00::1:2", 65535},
        {":8443", TRUE, NULL, 8443},
        {"localhost:1", TRUE, "localhost", 1},
        {"node-a.example:80", TRUE, "node-a.example", 80},
        {"", FALSE, NULL, 0},
        {"127.0.0.1", FALSE, NULL, 0},
        {"127.0.0.1:", FALSE, NULL, 0},
        {"127.0.0.1:65536", FALSE, NULL, 0},
        {"127.0.0.1:-1", FALSE, NULL, 0},
        {"127.0.0.1:80x", FALSE, NULL, 0},
        {"::1:80", FALSE, NULL, 0},
        {"[::1]80", FALSE, NULL, 0},
        {"[::1]", FALSE, NULL, 0},
        {"[127.0.0.1]:80", FALSE, NULL, 0},
        {"[nothex::]:80", FALSE, NULL, 0},
        {"a/b:80", FALSE, NULL, 0},
        {"../x:80", FALSE, NULL, 0},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *host = NULL;
        guint16 port = 1;
        g_autoptr(GError) err = NULL;
        gboolean ok = vmig_httpd_parse_address(cases[i].in, &host, &port, &err);
        if (ok != cases[i].ok)
            fail_msg("'%s': expected %s, got %s", cases[i].in, cases[i].ok ? "ok" : "error",
                     err ? err->message : "ok");
        if (ok) {
            assert_string_equal(host ? host : "(null)", cases[i].host ? cases[i].host : "(null)");
            assert_int_equal(port, cases[i].port);
        } else {
            assert_true(g_error_matches(err, VMIG_HTTPD_ERROR, VMIG_HTTPD_ERROR_ADDRESS));
            assert_non_null(strstr(err->message, "--http-address"));
        }
    }
}

typedef struct {
    gboolean ready;
    guint collects;
    VmigMetrics *metrics;
} Fixture;

static gboolean
fx_ready(gpointer data, char **reason)
{
    Fixture *fx = data;
    if (!fx->ready)
        *reason = g_strdup("informers for VMIMs not synced");
    return fx->ready;
}

static void
fx_collect(gpointer data)
{
    Fixture *fx = data;
    fx->collects++;
    vmig_metrics_set(fx->metrics, VMIG_METRICS_IN_PENDING, NULL, fx->collects, NULL);
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

/* Fetches on the same main context the server runs on (a sync call would block it). */
static char *
fetch(SoupSession *s, const char *method, guint16 port, const char *path, guint *status,
      char **content_type)
{
    g_autofree char *url = g_strdup_printf("http://127.0.0.1:%u%s", port, path);
    g_autoptr(SoupMessage) msg = soup_message_new(method, url);
    Fetch f = {0};
    soup_session_send_and_read_async(s, msg, G_PRIORITY_DEFAULT, NULL, fetch_done, &f);
    while (!f.done)
        g_main_context_iteration(NULL, TRUE);
    if (f.error)
        fail_msg("GET %s: %s", path, f.error->message);
    *status = soup_message_get_status(msg);
    if (content_type)
        *content_type = g_strdup(
            soup_message_headers_get_one(soup_message_get_response_headers(msg), "Content-Type"));
    gsize len;
    const char *data = g_bytes_get_data(f.body, &len);
    char *text = g_strndup(data ? data : "", len);
    g_bytes_unref(f.body);
    return text;
}

static void
test_serve(void **state)
{
    g_autoptr(VmigMetrics) m = vmig_metrics_new();
    vmig_metrics_register_vmigrated(m);
    vmig_metrics_set(m, VMIG_METRICS_DATA_PROCESSED,
                     (const char *const[]){"ns1", "vm\"1", "node-a", NULL}, 123, NULL);
    Fixture fx = {.ready = FALSE, .metrics = m};
    VmigHttpdConfig cfg = {
        .address = "127.0.0.1:0",
        .metrics = m,
        .ready = fx_ready,
        .collect = fx_collect,
        .user_data = &fx,
    };
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigHttpd) h = vmig_httpd_new(&cfg, &err);
    assert_non_null(h);
    guint16 port = vmig_httpd_get_port(h);
    assert_true(port > 0);

    g_autoptr(SoupSession) s = soup_session_new();
    guint status = 0;
    g_autofree char *health = fetch(s, "GET", port, "/healthz", &status, NULL);
    assert_int_equal(status, 200);
    assert_string_equal(health, "ok\n");

    g_autofree char *notready = fetch(s, "GET", port, "/readyz", &status, NULL);
    assert_int_equal(status, 503);
    assert_non_null(strstr(notready, "informers for VMIMs not synced"));
    fx.ready = TRUE;
    g_autofree char *ready = fetch(s, "GET", port, "/readyz", &status, NULL);
    assert_int_equal(status, 200);

    g_autofree char *ctype = NULL;
    g_autofree char *metrics = fetch(s, "GET", port, "/metrics", &status, &ctype);
    assert_int_equal(status, 200);
    assert_string_equal(ctype, VMIG_METRICS_CONTENT_TYPE);
    g_autofree char *why = prom_check(metrics);
    if (why)
        fail_msg("/metrics: %s\n%s", why, metrics);
    assert_int_equal(fx.collects, 1); /* collected right before rendering */
    assert_non_null(strstr(metrics, "\nkubevirt_vmi_migrations_in_pending_phase 1\n"));
    assert_non_null(strstr(metrics, "kubevirt_vmi_migration_data_processed_bytes{namespace=\"ns1\","
                                    "name=\"vm\\\"1\",node=\"node-a\"} 123\n"));

    g_autofree char *nf = fetch(s, "GET", port, "/nope", &status, NULL);
    assert_int_equal(status, 404);
    g_autofree char *post = fetch(s, "POST", port, "/metrics", &status, NULL);
    assert_int_equal(status, 405);
    assert_int_equal(fx.collects, 1);
}

static void
test_listen_errors(void **state)
{
    /* a taken port */
    VmigHttpdConfig cfg = {.address = "127.0.0.1:0"};
    g_autoptr(VmigHttpd) h1 = vmig_httpd_new(&cfg, NULL);
    assert_non_null(h1);
    g_autofree char *addr = g_strdup_printf("127.0.0.1:%u", vmig_httpd_get_port(h1));
    cfg.address = addr;
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigHttpd) h2 = vmig_httpd_new(&cfg, &err);
    assert_null(h2);
    assert_true(g_error_matches(err, VMIG_HTTPD_ERROR, VMIG_HTTPD_ERROR_LISTEN));
    assert_non_null(strstr(err->message, addr));
    g_clear_error(&err);
    /* a malformed address */
    cfg.address = "nowhere";
    assert_null(vmig_httpd_new(&cfg, &err));
    assert_true(g_error_matches(err, VMIG_HTTPD_ERROR, VMIG_HTTPD_ERROR_ADDRESS));
}

static void
test_ipv6_loopback(void **state)
{
    VmigHttpdConfig cfg = {.address = "[::1]:0"};
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigHttpd) h = vmig_httpd_new(&cfg, &err);
    if (!h) {
        /* no IPv6 on this host's loopback: say so rather than pass silently */
        print_message("skipped: [::1] not available: %s\n", err->message);
        skip();
    }
    assert_true(vmig_httpd_get_port(h) > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_address),
        cmocka_unit_test(test_serve),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_ipv6_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
