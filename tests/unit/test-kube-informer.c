/* test-kube-informer.c - list + watch bookkeeping against scripted fake API servers: field
 * case B01 (bookmarks, 410 in both shapes -> exactly one relist), B02's re-watch from the last
 * complete resourceVersion, the read deadline, selectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kube-fake.h"

#define VMIM vmig_kube_resource(VMIG_KUBE_VMIM)

/* What the handlers saw, as "added ns1/mig1 101" lines, and each watch's RV. */
typedef struct {
    GPtrArray *calls;
    GPtrArray *watch_rvs;
    guint synced;
    gboolean stop;         /* set by the script: the test's end state is reached */
    guint calls_at_watch2; /* handler calls when the watch after the bookmark began */
    char *rv_at_watch2;
} Seen;

static void
seen_init(Seen *s)
{
    memset(s, 0, sizeof(*s));
    s->calls = g_ptr_array_new_with_free_func(g_free);
    s->watch_rvs = g_ptr_array_new_with_free_func(g_free);
}

static void
seen_clear(Seen *s)
{
    g_ptr_array_unref(s->calls);
    g_ptr_array_unref(s->watch_rvs);
    g_free(s->rv_at_watch2);
}

static void
note(Seen *s, const char *what, JsonNode *obj)
{
    g_autofree char *key = vmig_kube_object_key(obj);
    g_ptr_array_add(s->calls, g_strdup_printf("%s %s %s", what, key,
                                              vmig_kube_meta_string(obj, "resourceVersion")));
}

static void
on_added(VmigKubeInformer *inf, JsonNode *obj, gpointer ud)
{
    note(ud, "added", obj);
}

static void
on_updated(VmigKubeInformer *inf, JsonNode *old, JsonNode *obj, gpointer ud)
{
    assert_non_null(old);
    note(ud, "updated", obj);
}

static void
on_deleted(VmigKubeInformer *inf, JsonNode *obj, gpointer ud)
{
    note(ud, "deleted", obj);
}

static void
on_synced(VmigKubeInformer *inf, gpointer ud)
{
    ((Seen *)ud)->synced++;
}

static void
on_watching(VmigKubeInformer *inf, const char *rv, gpointer ud)
{
    Seen *s = ud;
    g_ptr_array_add(s->watch_rvs, g_strdup(rv ? rv : ""));
    if (s->watch_rvs->len == 2) {
        s->calls_at_watch2 = s->calls->len;
        s->rv_at_watch2 = g_strdup(vmig_kube_informer_resource_version(inf));
    }
}

static const VmigKubeInformerHandlers handlers = {
    .added = on_added,
    .updated = on_updated,
    .deleted = on_deleted,
    .synced = on_synced,
    .watching = on_watching,
};

static void
stream(SoupServerMessage *msg, const char *text)
{
    fake_stream_write(msg, text, strlen(text));
}

/* ---- B01 ---------------------------------------------------------------------------------- */

typedef struct {
    gboolean in_stream_410; /* variant 3b */
    guint lists, watches;
    Seen *seen;
} B01Script;

static void
b01_handler(FakeServer *fake, SoupServerMessage *msg, const char *method, const char *path,
            GHashTable *query, gpointer user_data)
{
    B01Script *sc = user_data;
    assert_string_equal(path,
                        "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations");
    if (!fake_query(query, "watch")) {
        sc->lists++;
        if (sc->lists == 1) {
            /* the cache before the script: "old" will be missing from the relist */
            fake_reply_json(msg, 200,
                            "{\"kind\":\"VirtualMachineInstanceMigrationList\",\"metadata\":{"
                            "\"resourceVersion\":\"100\"},\"items\":[{\"metadata\":{\"name\":"
                            "\"old\",\"namespace\":\"ns1\",\"uid\":\"u-old\",\"resourceVersion\":"
                            "\"90\"}}]}");
        } else {
            /* step 4 */
            fake_reply_json(
                msg, 200,
                "{\"kind\":\"VirtualMachineInstanceMigrationList\",\"metadata\":{"
                "\"resourceVersion\":\"900\"},\"items\":["
                "{\"metadata\":{\"name\":\"mig1\",\"namespace\":\"ns1\",\"uid\":\"u-mig1\","
                "\"resourceVersion\":\"880\"},\"spec\":{\"vmiName\":\"vm1\"}},"
                "{\"metadata\":{\"name\":\"mig2\",\"namespace\":\"ns1\",\"uid\":\"u-mig2\","
                "\"resourceVersion\":\"890\"},\"spec\":{\"vmiName\":\"vm2\"}}]}");
        }
        return;
    }
    sc->watches++;
    assert_string_equal(fake_query(query, "allowWatchBookmarks"), "true");
    assert_non_null(fake_query(query, "timeoutSeconds"));
    const char *rv = fake_query(query, "resourceVersion");
    if (sc->watches == 1) {
        /* step 1 */
        assert_string_equal(rv, "100");
        fake_stream_begin(msg);
        stream(msg, "{\"type\":\"ADDED\",\"object\":{\"kind\":\"VirtualMachineInstanceMigration\","
                    "\"metadata\":{\"name\":\"mig1\",\"namespace\":\"ns1\",\"uid\":\"u-mig1\","
                    "\"resourceVersion\":\"101\"},\"spec\":{\"vmiName\":\"vm1\"}}}\n");
        stream(msg, "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":"
                    "\"VirtualMachineInstanceMigration\",\"metadata\":{\"resourceVersion\":"
                    "\"250\"}}}\n");
        fake_stream_end(msg);
    } else if (sc->watches == 2) {
        /* step 2: the re-watch carries the bookmark's RV; step 3a / 3b */
        assert_string_equal(rv, "250");
        if (sc->in_stream_410) {
            fake_stream_begin(msg);
            stream(msg, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                        "\"status\":\"Failure\",\"code\":410,\"reason\":\"Expired\",\"message\":"
                        "\"too old resource version: 250 (900)\"}}\n");
            /* the real server closes here; keep it open to prove the client does not wait */
            fake_hold(fake, msg);
        } else {
            fake_reply_status(msg, 410, "Expired", "too old resource version: 250 (900)");
        }
    } else {
        /* after the relist: from 900, and the script is done */
        assert_string_equal(rv, "900");
        fake_stream_begin(msg);
        fake_hold(fake, msg);
        sc->seen->stop = TRUE;
    }
}

static void
run_b01(gboolean in_stream_410)
{
    Seen seen;
    seen_init(&seen);
    B01Script sc = {.in_stream_410 = in_stream_410, .seen = &seen};
    FakeServer *fake = fake_server_new(b01_handler, &sc);
    VmigKubeClient *c = fake_client(fake); /* owned by the fake */
    VmigKubeInformerOptions opt = {.namespace = "ns1", .backoff_initial_ms = 10};
    VmigKubeInformer *inf = vmig_kube_informer_new(c, VMIM, &opt, &handlers, &seen);
    vmig_kube_informer_start(inf);
    assert_true(fake_wait(&seen.stop, 10000));
    fake_drain(50);

    /* after step 1: RV 250 stored, and the BOOKMARK ran no handler */
    assert_string_equal(seen.rv_at_watch2, "250");
    assert_int_equal(seen.calls_at_watch2, 2); /* added old, added mig1 */
    /* exactly one relist; 250 was sent once and never after the 410 */
    assert_int_equal(sc.lists, 2);
    assert_int_equal(vmig_kube_informer_list_count(inf), 2);
    /* the first watch ended, the one from 250 was answered 410; the third is open */
    assert_int_equal(vmig_kube_informer_watch_reconnects(inf), 2);
    assert_int_equal(vmig_kube_informer_relist_count(inf), 1);
    assert_int_equal(fake_count(fake, "resourceVersion=250"), 1);
    assert_int_equal(fake_count(fake, "resourceVersion=900"), 1);
    assert_int_equal(seen.watch_rvs->len, 3);
    assert_string_equal(seen.watch_rvs->pdata[0], "100");
    assert_string_equal(seen.watch_rvs->pdata[1], "250");
    assert_string_equal(seen.watch_rvs->pdata[2], "900");
    /* the relist reconciled the full set */
    const char *expect[] = {
        "added ns1/old 90",   "added ns1/mig1 101", "updated ns1/mig1 880",
        "added ns1/mig2 890", "deleted ns1/old 90",
    };
    assert_int_equal(seen.calls->len, G_N_ELEMENTS(expect));
    for (gsize i = 0; i < G_N_ELEMENTS(expect); i++)
        assert_string_equal(seen.calls->pdata[i], expect[i]);
    assert_int_equal(seen.synced, 1);
    assert_true(vmig_kube_informer_has_synced(inf));
    g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(inf);
    assert_int_equal(keys->len, 2);
    assert_string_equal(keys->pdata[0], "ns1/mig1");
    assert_string_equal(keys->pdata[1], "ns1/mig2");
    g_autoptr(JsonNode) mig2 = vmig_kube_informer_get(inf, "ns1", "mig2");
    assert_string_equal(vmig_kube_meta_string(mig2, "uid"), "u-mig2");
    assert_null(vmig_kube_informer_get(inf, "ns1", "old"));
    assert_string_equal(vmig_kube_informer_resource_version(inf), "900");

    vmig_kube_informer_free(inf);
    fake_server_free(fake);
    seen_clear(&seen);
}

static void
test_b01_http_410(void **state)
{
    run_b01(FALSE);
}

static void
test_b01_in_stream_410(void **state)
{
    run_b01(TRUE);
}

/* ---- B02 at the informer: truncated event at EOF, re-watch from the last complete RV ------ */

typedef struct {
    guint watches;
    Seen *seen;
} TruncScript;

static void
trunc_handler(FakeServer *fake, SoupServerMessage *msg, const char *method, const char *path,
              GHashTable *query, gpointer user_data)
{
    TruncScript *sc = user_data;
    if (!fake_query(query, "watch")) {
        fake_reply_json(msg, 200, "{\"metadata\":{\"resourceVersion\":\"100\"},\"items\":[]}");
        return;
    }
    sc->watches++;
    if (sc->watches == 1) {
        static const char a[] =
            "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"mig1\",\"namespace\":"
            "\"ns1\",\"resourceVersion\":\"101\"},\"spec\":{\"vmiName\":\"vm1\"}}}\n";
        static const char b[] =
            "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"mig1\",\"namespace\":"
            "\"ns1\",\"resourceVersion\":\"102\"},\"status\":{\"phase\":\"Running\"}}}\n";
        static const char cpart[] =
            "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"mig1\",\"namesp";
        fake_stream_begin(msg);
        /* B02's delivery pattern across chunks, then EOF inside C */
        fake_stream_write(msg, a, 37);
        g_autofree char *ab = g_strdup_printf("%s%.5s", a + 37, b);
        stream(msg, ab);
        fake_stream_write(msg, b + 5, strlen(b) - 6);
        stream(msg, "\n");
        stream(msg, cpart);
        fake_stream_end(msg);
        return;
    }
    assert_string_equal(fake_query(query, "resourceVersion"), "102");
    fake_stream_begin(msg);
    fake_hold(fake, msg);
    sc->seen->stop = TRUE;
}

static void
test_truncated_event_rewatch_from_last_complete(void **state)
{
    Seen seen;
    seen_init(&seen);
    TruncScript sc = {.seen = &seen};
    FakeServer *fake = fake_server_new(trunc_handler, &sc);
    VmigKubeClient *c = fake_client(fake); /* owned by the fake */
    VmigKubeInformerOptions opt = {.namespace = "ns1", .backoff_initial_ms = 10};
    VmigKubeInformer *inf = vmig_kube_informer_new(c, VMIM, &opt, &handlers, &seen);
    vmig_kube_informer_start(inf);
    assert_true(fake_wait(&seen.stop, 10000));
    assert_int_equal(seen.calls->len, 2);
    assert_string_equal(seen.calls->pdata[0], "added ns1/mig1 101");
    assert_string_equal(seen.calls->pdata[1], "updated ns1/mig1 102");
    assert_int_equal(vmig_kube_informer_list_count(inf), 1); /* clean close: no relist */
    assert_int_equal(vmig_kube_informer_watch_reconnects(inf), 1);
    assert_int_equal(vmig_kube_informer_relist_count(inf), 0);
    g_autoptr(JsonNode) mig1 = vmig_kube_informer_get(inf, "ns1", "mig1");
    g_autofree char *mig1_json = json_to_string(mig1, FALSE);
    assert_non_null(strstr(mig1_json, "\"phase\":\"Running\""));
    vmig_kube_informer_free(inf);
    fake_server_free(fake);
    seen_clear(&seen);
}

/* ---- read deadline: a silent connection is dropped and the watch resumes ----------------- */

typedef struct {
    guint watches;
    Seen *seen;
    GPtrArray *rvs;
} SilentScript;

static void
silent_handler(FakeServer *fake, SoupServerMessage *msg, const char *method, const char *path,
               GHashTable *query, gpointer user_data)
{
    SilentScript *sc = user_data;
    if (!fake_query(query, "watch")) {
        fake_reply_json(msg, 200, "{\"metadata\":{\"resourceVersion\":\"5\"},\"items\":[]}");
        return;
    }
    sc->watches++;
    g_ptr_array_add(sc->rvs, g_strdup(fake_query(query, "resourceVersion")));
    fake_stream_begin(msg);
    if (sc->watches == 1)
        stream(msg,
               "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"6\"}}}\n");
    /* then silence: headers sent, no more bytes, no close (a dead peer behind a NAT) */
    fake_hold(fake, msg);
    if (sc->watches == 2)
        sc->seen->stop = TRUE;
}

static void
test_read_deadline_drops_silent_watch(void **state)
{
    Seen seen;
    seen_init(&seen);
    SilentScript sc = {.seen = &seen, .rvs = g_ptr_array_new_with_free_func(g_free)};
    FakeServer *fake = fake_server_new(silent_handler, &sc);
    VmigKubeClient *c = fake_client(fake); /* owned by the fake */
    VmigKubeInformerOptions opt = {
        .namespace = "ns1", .read_deadline_ms = 300, .backoff_initial_ms = 10};
    VmigKubeInformer *inf = vmig_kube_informer_new(c, VMIM, &opt, &handlers, &seen);
    gint64 t0 = g_get_monotonic_time();
    vmig_kube_informer_start(inf);
    assert_true(fake_wait(&seen.stop, 10000));
    gint64 elapsed_ms = (g_get_monotonic_time() - t0) / 1000;
    assert_true(elapsed_ms >= 300);
    assert_true(elapsed_ms < 10000);
    assert_int_equal(sc.watches, 2);
    assert_string_equal(sc.rvs->pdata[0], "5");
    assert_string_equal(sc.rvs->pdata[1], "6"); /* resumed from the bookmark, no relist */
    assert_int_equal(vmig_kube_informer_list_count(inf), 1);
    assert_int_equal(vmig_kube_informer_watch_reconnects(inf), 1); /* the deadline's drop */
    assert_int_equal(vmig_kube_informer_relist_count(inf), 0);
    vmig_kube_informer_free(inf);
    fake_server_free(fake);
    g_ptr_array_unref(sc.rvs);
    seen_clear(&seen);
}

/* ---- errors back off; selectors are sent on list and watch -------------------------------- */

typedef struct {
    guint lists, watches;
    gint64 first_us, second_us;
    Seen *seen;
} FlakyScript;

static void
flaky_handler(FakeServer *fake, SoupServerMessage *msg, const char *method, const char *path,
              GHashTable *query, gpointer user_data)
{
    FlakyScript *sc = user_data;
    assert_string_equal(fake_query(query, "labelSelector"), "kubevirt.io/nodeName=node-a");
    assert_string_equal(fake_query(query, "fieldSelector"), "metadata.namespace=ns1");
    assert_string_equal(path, "/apis/kubevirt.io/v1/virtualmachineinstancemigrations");
    if (!fake_query(query, "watch")) {
        sc->lists++;
        if (sc->lists == 1) {
            sc->first_us = g_get_monotonic_time();
            fake_reply_status(msg, 500, "InternalError", "etcd unavailable");
            return;
        }
        sc->second_us = g_get_monotonic_time();
        fake_reply_json(msg, 200, "{\"metadata\":{\"resourceVersion\":\"42\"},\"items\":[]}");
        return;
    }
    sc->watches++;
    if (sc->watches == 1) {
        /* an unknown garbage line closes the watch with a decode error -> back off, same RV */
        fake_stream_begin(msg);
        stream(msg, "<html>proxy error</html>\n");
        fake_stream_end(msg);
        return;
    }
    assert_string_equal(fake_query(query, "resourceVersion"), "42");
    fake_stream_begin(msg);
    fake_hold(fake, msg);
    sc->seen->stop = TRUE;
}

static void
test_errors_back_off_and_selectors(void **state)
{
    Seen seen;
    seen_init(&seen);
    FlakyScript sc = {.seen = &seen};
    FakeServer *fake = fake_server_new(flaky_handler, &sc);
    VmigKubeClient *c = fake_client(fake); /* owned by the fake */
    VmigKubeInformerOptions opt = {.label_selector = "kubevirt.io/nodeName=node-a",
                                   .field_selector = "metadata.namespace=ns1",
                                   .backoff_initial_ms = 100};
    VmigKubeInformer *inf = vmig_kube_informer_new(c, VMIM, &opt, &handlers, &seen);
    vmig_kube_informer_start(inf);
    assert_true(fake_wait(&seen.stop, 10000));
    /* backoff with jitter: between 100 and 200 ms after the failure (first attempt) */
    gint64 gap_ms = (sc.second_us - sc.first_us) / 1000;
    assert_true(gap_ms >= 90);
    assert_true(gap_ms < 3000); /* upper bound only guards against no backoff cap */
    assert_int_equal(sc.lists, 2);
    assert_int_equal(sc.watches, 2);
    assert_int_equal(seen.synced, 1);
    vmig_kube_informer_free(inf);
    fake_server_free(fake);
    seen_clear(&seen);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b01_http_410),
        cmocka_unit_test(test_b01_in_stream_410),
        cmocka_unit_test(test_truncated_event_rewatch_from_last_complete),
        cmocka_unit_test(test_read_deadline_drops_silent_watch),
        cmocka_unit_test(test_errors_back_off_and_selectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
