/* test-kube-client.c - verbs, errors, paging, token reload, the status-write helper (field
 * case B04) and the event recorder, against scripted fake API servers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "kube-fake.h"

#define VMIM vmig_kube_resource(VMIG_KUBE_VMIM)
#define VMI  vmig_kube_resource(VMIG_KUBE_VMI)

/* ---- verbs: paths, query, bodies, errors --------------------------------------------------- */

static void
verbs_handler(FakeServer *fake, SoupServerMessage *msg, const char *method, const char *path,
              GHashTable *query, gpointer user_data)
{
    GHashTable *bodies = user_data;
    g_autofree char *body = fake_body(msg);
    const char *ctype =
        soup_message_headers_get_content_type(soup_server_message_get_request_headers(msg), NULL);
    g_hash_table_insert(bodies, g_strdup_printf("%s %s", method, path),
                        g_strdup_printf("%s|%s", ctype ? ctype : "", body));
    if (strstr(path, "/missing")) {
        fake_reply_status(msg, 404, "NotFound",
                          "virtualmachineinstancemigrations.kubevirt.io \\\"missing\\\" not found");
    } else if (strcmp(method, "PUT") == 0 && strstr(path, "/mig1")) {
        fake_reply_status(msg, 409, "Conflict",
                          "the object has been modified; please apply your changes to the latest "
                          "version and try again");
    } else if (strstr(path, "/broken")) {
        fake_reply_json(msg, 200, "{not json");
    } else if (strstr(path, "/teapot")) {
        soup_server_message_set_status(msg, 503, NULL);
    } else {
        fake_reply_json(msg, strcmp(method, "POST") == 0 ? 201 : 200,
                        "{\"kind\":\"VirtualMachineInstanceMigration\",\"metadata\":{\"name\":"
                        "\"x\",\"resourceVersion\":\"7\"}}");
    }
}

static JsonNode *
call(VmigKubeClient *c, VmigKubeVerb verb, const VmigKubeRequest *req, GError **err)
{
    return vmig_kube_call_sync(c, verb, req, NULL, err);
}

static void
test_verbs_paths_and_bodies(void **state)
{
    g_autoptr(GHashTable) bodies = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    FakeServer *fake = fake_server_new(verbs_handler, bodies);
    VmigKubeClient *c = fake_client(fake); /* owned by the fake */
    g_autoptr(JsonNode) obj =
        fake_parse("{\"metadata\":{\"name\":\"m2\",\"resourceVersion\":\"5\"}}");
    g_autoptr(JsonNode) patch = fake_parse("[{\"op\":\"test\",\"path\":\"/status/migrationState/"
                                           "migrationUid\",\"value\":\"m-1\"}]");
    g_autoptr(GError) err = NULL;
    JsonNode *r;

    VmigKubeRequest get = {.resource = VMIM, .namespace = "ns1", .name = "m2"};
    r = call(c, VMIG_KUBE_VERB_GET, &get, &err);
    assert_non_null(r);
    assert_string_equal(vmig_kube_meta_string(r, "resourceVersion"), "7");
    json_node_unref(r);

    VmigKubeRequest list = {.resource = VMIM,
                            .label_selector = "kubevirt.io/vmi=vm1,app in (a,b)",
                            .field_selector = "metadata.name=m2",
                            .limit = 50};
    json_node_unref(call(c, VMIG_KUBE_VERB_LIST, &list, &err));
    VmigKubeRequest create = {.resource = VMIM, .namespace = "ns1", .body = obj};
    json_node_unref(call(c, VMIG_KUBE_VERB_CREATE, &create, &err));
    VmigKubeRequest upd = {
        .resource = VMIM, .namespace = "ns1", .name = "m2", .status = TRUE, .body = obj};
    json_node_unref(call(c, VMIG_KUBE_VERB_UPDATE, &upd, &err));
    VmigKubeRequest mp = {.resource = VMIM, .namespace = "ns1", .name = "m2", .body = obj};
    json_node_unref(call(c, VMIG_KUBE_VERB_MERGE_PATCH, &mp, &err));
    VmigKubeRequest jp = {
        .resource = VMI, .namespace = "ns1", .name = "vm1", .status = TRUE, .body = patch};
    json_node_unref(call(c, VMIG_KUBE_VERB_JSON_PATCH, &jp, &err));
    VmigKubeRequest del = {.resource = VMIM,
                           .namespace = "ns1",
                           .name = "m2",
                           .precondition_uid = "u-1",
                           .precondition_rv = "5",
                           .propagation = "Foreground"};
    json_node_unref(call(c, VMIG_KUBE_VERB_DELETE, &del, &err));
    VmigKubeRequest node = {.resource = vmig_kube_resource(VMIG_KUBE_NODE), .name = "node-a"};
    json_node_unref(call(c, VMIG_KUBE_VERB_GET, &node, &err));
    VmigKubeRequest lease = {.resource = vmig_kube_resource(VMIG_KUBE_LEASE),
                             .namespace = "kubevirt",
                             .name = "vmigrated-node-a"};
    json_node_unref(call(c, VMIG_KUBE_VERB_GET, &lease, &err));
    assert_null(err);

    const char *expect[] = {
        "GET /apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations/m2",
        "GET /apis/kubevirt.io/v1/virtualmachineinstancemigrations?labelSelector=kubevirt.io%2Fvmi%"
        "3Dvm1%2Capp%20in%20%28a%2Cb%29&fieldSelector=metadata.name%3Dm2&limit=50",
        "POST /apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations",
        "PUT /apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations/m2/status",
        "PATCH /apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations/m2",
        "PATCH /apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstances/vm1/status",
        "DELETE /apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations/m2",
        "GET /api/v1/nodes/node-a",
        "GET /apis/coordination.k8s.io/v1/namespaces/kubevirt/leases/vmigrated-node-a",
    };
    assert_int_equal(fake->log->len, G_N_ELEMENTS(expect));
    for (gsize i = 0; i < G_N_ELEMENTS(expect); i++)
        assert_string_equal(fake->log->pdata[i], expect[i]);
    assert_string_equal(
        g_hash_table_lookup(
            bodies, "PATCH /apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstances/vm1/status"),
        "application/json-patch+json|[{\"op\":\"test\",\"path\":\"/status/migrationState/"
        "migrationUid\",\"value\":\"m-1\"}]");
    assert_true(g_str_has_prefix(
        g_hash_table_lookup(
            bodies,
            "PATCH /apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations/m2"),
        "application/merge-patch+json|"));
    assert_string_equal(
        g_hash_table_lookup(
            bodies,
            "DELETE /apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations/m2"),
        "application/json|{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"propagationPolicy\":"
        "\"Foreground\",\"preconditions\":{\"uid\":\"u-1\",\"resourceVersion\":\"5\"}}");
    fake_server_free(fake);
}

static void
test_errors_carry_code_reason_object(void **state)
{
    g_autoptr(GHashTable) bodies = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    FakeServer *fake = fake_server_new(verbs_handler, bodies);
    VmigKubeClient *c = fake_client(fake); /* owned by the fake */
    g_autoptr(JsonNode) obj =
        fake_parse("{\"metadata\":{\"name\":\"mig1\",\"resourceVersion\":\"5\"}}");
    static const struct {
        VmigKubeVerb verb;
        const char *name;
        VmigKubeErrorCode code;
        const char *message;
    } cases[] = {
        {VMIG_KUBE_VERB_UPDATE, "mig1", VMIG_KUBE_ERROR_CONFLICT,
         "update virtualmachineinstancemigrations ns1/mig1: 409 Conflict: the object has been "
         "modified; please apply your changes to the latest version and try again"},
        {VMIG_KUBE_VERB_GET, "missing", VMIG_KUBE_ERROR_NOT_FOUND,
         "get virtualmachineinstancemigrations ns1/missing: 404 NotFound: "
         "virtualmachineinstancemigrations.kubevirt.io \"missing\" not found"},
        {VMIG_KUBE_VERB_GET, "teapot", VMIG_KUBE_ERROR_SERVER,
         "get virtualmachineinstancemigrations ns1/teapot: 503 ServiceUnavailable"},
        {VMIG_KUBE_VERB_GET, "broken", VMIG_KUBE_ERROR_DECODE,
         "get virtualmachineinstancemigrations ns1/broken: answer is not a JSON object"},
        {VMIG_KUBE_VERB_GET, "a/b", VMIG_KUBE_ERROR_BAD_REQUEST,
         "get virtualmachineinstancemigrations ns1/a/b: name 'a/b' is not a valid path segment"},
        {VMIG_KUBE_VERB_DELETE, "..", VMIG_KUBE_ERROR_BAD_REQUEST, "name '..'"},
        {VMIG_KUBE_VERB_UPDATE, NULL, VMIG_KUBE_ERROR_BAD_REQUEST, "missing name"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        VmigKubeRequest req = {
            .resource = VMIM, .namespace = "ns1", .name = cases[i].name, .body = obj};
        assert_null(call(c, cases[i].verb, &req, &err));
        assert_non_null(err);
        if (err->domain != VMIG_KUBE_ERROR || err->code != (int)cases[i].code ||
            !strstr(err->message, cases[i].message))
            fail_msg("case %zu: code %d '%s'", i, err->code, err->message);
    }
    /* nothing was sent for the invalid names */
    assert_int_equal(fake_count(fake, "a/b"), 0);
    assert_int_equal(fake_count(fake, ".."), 0);
    fake_server_free(fake);
}

static void
test_transport_error(void **state)
{
    /* a port nobody listens on: take one from a server, then close it */
    FakeServer *fake = fake_server_new(verbs_handler, NULL);
    g_autofree char *url = g_strdup(fake->url);
    VmigKubeConfig cfg = {.server = url};
    fake_server_free(fake);
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigKubeClient) c = vmig_kube_client_new(&cfg, &err);
    VmigKubeRequest req = {.resource = VMI, .namespace = "ns1", .name = "vm1"};
    assert_null(call(c, VMIG_KUBE_VERB_GET, &req, &err));
    assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_TRANSPORT));
    assert_true(g_str_has_prefix(err->message, "get virtualmachineinstances ns1/vm1: "));
}

static void
hold_handler(FakeServer *fake, SoupServerMessage *msg, const char *method, const char *path,
             GHashTable *query, gpointer user_data)
{
    soup_server_message_pause(msg);
    fake_hold(fake, msg);
}

static gboolean
cancel_later(gpointer data)
{
    g_cancellable_cancel(data);
    return G_SOURCE_REMOVE;
}

static void
test_cancel(void **state)
{
    FakeServer *fake = fake_server_new(hold_handler, NULL);
    VmigKubeClient *c = fake_client(fake); /* owned by the fake */
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_timeout_add(100, cancel_later, cancel);
    g_autoptr(GError) err = NULL;
    VmigKubeRequest req = {.resource = VMI, .namespace = "ns1", .name = "vm1"};
    gint64 t0 = g_get_monotonic_time();
    assert_null(vmig_kube_call_sync(c, VMIG_KUBE_VERB_GET, &req, cancel, &err));
    assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CANCELLED));
    assert_true(g_get_monotonic_time() - t0 < 5 * G_USEC_PER_SEC);
    fake_server_free(fake);
}

/* ---- paging ------------------------------------------------------------------------------- */

static void
paging_handler(FakeServer *fake, SoupServerMessage *msg, const char *method, const char *path,
               GHashTable *query, gpointer user_data)
{
    const char *cont = fake_query(query, "continue");
    const char *limit = fake_query(query, "limit");
    assert_string_equal(limit ? limit : "", "2");
    const char *items = "{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns1\"}},"
                        "{\"metadata\":{\"name\":\"b\",\"namespace\":\"ns1\"}}";
    const char *next = "c1", *rv = "10";
    if (g_strcmp0(cont, "c1") == 0) {
        items = "{\"metadata\":{\"name\":\"c\",\"namespace\":\"ns1\"}},"
                "{\"metadata\":{\"name\":\"d\",\"namespace\":\"ns1\"}}";
        next = "c2";
        rv = "11"; /* later pages may show a newer RV; the snapshot is the first page's */
    } else if (g_strcmp0(cont, "c2") == 0) {
        items = "{\"metadata\":{\"name\":\"e\",\"namespace\":\"ns1\"}}";
        next = "";
        rv = "12";
    } else if (g_strcmp0(cont, "expired") == 0) {
        fake_reply_status(msg, 410, "Expired",
                          "The provided continue parameter is too old to display a consistent "
                          "list result.");
        return;
    }
    g_autofree char *j = g_strdup_printf(
        "{\"kind\":\"VirtualMachineInstanceMigrationList\",\"metadata\":{\"resourceVersion\":"
        "\"%s\",\"continue\":\"%s\"},\"items\":[%s]}",
        rv, next, items);
    fake_reply_json(msg, 200, j);
}

typedef struct {
    gboolean done;
    JsonNode *result;
    GError *error;
} Result;

static void
result_cb(GObject *src, GAsyncResult *res, gpointer user_data)
{
    Result *r = user_data;
    r->result = vmig_kube_call_finish(res, NULL, &r->error);
    r->done = TRUE;
}

static void
test_list_paging_with_continue(void **state)
{
    FakeServer *fake = fake_server_new(paging_handler, NULL);
    VmigKubeClient *c = fake_client(fake); /* owned by the fake */
    VmigKubeRequest req = {.resource = VMIM, .namespace = "ns1", .limit = 2};
    Result r = {0};
    vmig_kube_list_all(c, &req, NULL, result_cb, &r);
    assert_true(fake_wait(&r.done, 10000));
    assert_null(r.error);
    JsonObject *lo = json_node_get_object(r.result);
    JsonArray *items = json_object_get_array_member(lo, "items");
    assert_int_equal(json_array_get_length(items), 5);
    assert_string_equal(vmig_kube_meta_string(json_array_get_element(items, 4), "name"), "e");
    assert_string_equal(vmig_kube_meta_string(r.result, "resourceVersion"), "10");
    assert_string_equal(json_object_get_string_member(lo, "kind"),
                        "VirtualMachineInstanceMigrationList");
    assert_int_equal(fake->log->len, 3);
    assert_int_equal(fake_count(fake, "continue=c1"), 1);
    assert_int_equal(fake_count(fake, "continue=c2"), 1);
    json_node_unref(r.result);

    /* an expired continue token is GONE: the caller lists again from scratch */
    Result r2 = {0};
    req.continue_token = "expired";
    vmig_kube_list_all(c, &req, NULL, result_cb, &r2);
    assert_true(fake_wait(&r2.done, 10000));
    assert_true(g_error_matches(r2.error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_GONE));
    assert_null(r2.result);
    g_error_free(r2.error);
    fake_server_free(fake);
}

/* ---- token reload ------------------------------------------------------------------------- */

typedef struct {
    const char *valid;
    GPtrArray *seen;
} TokenState;

static void
token_handler(FakeServer *fake, SoupServerMessage *msg, const char *method, const char *path,
              GHashTable *query, gpointer user_data)
{
    TokenState *ts = user_data;
    const char *auth =
        soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
    g_ptr_array_add(ts->seen, g_strdup(auth ? auth : ""));
    g_autofree char *want = g_strdup_printf("Bearer %s", ts->valid);
    if (g_strcmp0(auth, want) != 0) {
        fake_reply_status(msg, 401, "Unauthorized", "Unauthorized");
        return;
    }
    fake_reply_json(msg, 200, "{\"metadata\":{\"name\":\"node-a\"}}");
}

static void
test_token_reload_on_401_and_periodic(void **state)
{
    TokenState ts = {.valid = "new-token", .seen = g_ptr_array_new_with_free_func(g_free)};
    FakeServer *fake = fake_server_new(token_handler, &ts);
    g_autofree char *dir = g_dir_make_tmp("tok-XXXXXX", NULL);
    g_autofree char *tok = g_build_filename(dir, "token", NULL);
    assert_true(g_file_set_contents(tok, "old-token\n", -1, NULL));
    VmigKubeConfig cfg = {.server = fake->url, .token_file = tok};
    g_autoptr(GError) err = NULL;
    VmigKubeClient *c = vmig_kube_client_new(&cfg, &err);
    assert_non_null(c);
    fake->client = c;
    VmigKubeRequest req = {.resource = vmig_kube_resource(VMIG_KUBE_NODE), .name = "node-a"};

    /* the token rotated on disk; the first request still carries the old one -> 401 ->
     * re-read -> retried once with the new one */
    assert_true(g_file_set_contents(tok, "new-token\n", -1, NULL));
    g_autoptr(JsonNode) n = call(c, VMIG_KUBE_VERB_GET, &req, &err);
    assert_non_null(n);
    assert_int_equal(ts.seen->len, 2);
    assert_string_equal(ts.seen->pdata[0], "Bearer old-token");
    assert_string_equal(ts.seen->pdata[1], "Bearer new-token");

    /* a 401 with an unchanged token file is an error, not a retry loop */
    ts.valid = "third-token";
    assert_null(call(c, VMIG_KUBE_VERB_GET, &req, &err));
    assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_UNAUTHORIZED));
    assert_non_null(strstr(err->message, "get nodes node-a: 401 Unauthorized"));
    g_clear_error(&err);
    assert_int_equal(ts.seen->len, 3);

    /* periodic re-read: with interval 0 every request reads the file first, no 401 needed */
    vmig_kube_client_set_token_reload_interval(c, 0);
    assert_true(g_file_set_contents(tok, "third-token", -1, NULL));
    g_autoptr(JsonNode) n2 = call(c, VMIG_KUBE_VERB_GET, &req, &err);
    assert_non_null(n2);
    assert_int_equal(ts.seen->len, 4);
    assert_string_equal(ts.seen->pdata[3], "Bearer third-token");

    g_unlink(tok);
    g_rmdir(dir);
    g_ptr_array_unref(ts.seen);
    fake_server_free(fake);
}

/* ---- B04: status writes with preconditions ------------------------------------------------- */

/* One live VMI; PUT /status honours the resourceVersion precondition and the status
 * subresource (only .status of the body is taken). */
typedef struct {
    JsonNode *live;
    guint rv;
    guint puts;
    guint gets;
    gboolean other_writer_before_first_put; /* step 3 of B04 */
    gboolean other_writer_always;
} VmiStore;

static void
store_bump(VmiStore *s)
{
    s->rv++;
    g_autofree char *rv = g_strdup_printf("%u", s->rv);
    JsonObject *meta = json_object_get_object_member(json_node_get_object(s->live), "metadata");
    json_object_set_string_member(meta, "resourceVersion", rv);
}

static void
other_writer_adds_condition(VmiStore *s)
{
    JsonObject *st = json_object_get_object_member(json_node_get_object(s->live), "status");
    if (!json_object_has_member(st, "conditions"))
        json_object_set_array_member(st, "conditions", json_array_new());
    JsonObject *cond = json_object_new();
    json_object_set_string_member(cond, "type", "AgentConnected");
    json_object_set_string_member(cond, "status", "True");
    json_array_add_object_element(json_object_get_array_member(st, "conditions"), cond);
    store_bump(s);
}

static void
store_handler(FakeServer *fake, SoupServerMessage *msg, const char *method, const char *path,
              GHashTable *query, gpointer user_data)
{
    VmiStore *s = user_data;
    if (strcmp(method, "GET") == 0) {
        s->gets++;
        g_autofree char *j = json_to_string(s->live, FALSE);
        fake_reply_json(msg, 200, j);
        return;
    }
    assert_string_equal(method, "PUT");
    assert_true(g_str_has_suffix(path, "/virtualmachineinstances/vm1/status"));
    s->puts++;
    if ((s->other_writer_before_first_put && s->puts == 1) || s->other_writer_always)
        other_writer_adds_condition(s);
    g_autofree char *body = fake_body(msg);
    g_autoptr(JsonNode) obj = fake_parse(body);
    const char *rv = vmig_kube_meta_string(obj, "resourceVersion");
    g_autofree char *cur = g_strdup_printf("%u", s->rv);
    if (g_strcmp0(rv, cur) != 0) {
        fake_reply_status(msg, 409, "Conflict",
                          "Operation cannot be fulfilled on virtualmachineinstances.kubevirt.io "
                          "\\\"vm1\\\": the object has been modified; please apply your changes "
                          "to the latest version and try again");
        return;
    }
    JsonObject *st = json_object_get_object_member(json_node_get_object(obj), "status");
    json_object_set_object_member(json_node_get_object(s->live), "status", json_object_ref(st));
    store_bump(s);
    g_autofree char *j = json_to_string(s->live, FALSE);
    fake_reply_json(msg, 200, j);
}

typedef struct {
    const char *migration_uid;
    guint calls;
} Progress;

/* Our own fields only: migrationState.migrationUid (claimed if free) and the progress. Refuses
 * when the live object already belongs to another migration (B04 step 5). */
static VmigKubeMutateResult
set_progress(JsonObject *vmi, gpointer user_data, GError **error)
{
    Progress *p = user_data;
    p->calls++;
    JsonObject *st = json_object_get_object_member(vmi, "status");
    JsonObject *ms = json_object_has_member(st, "migrationState")
                         ? json_object_get_object_member(st, "migrationState")
                         : NULL;
    const char *uid = ms ? json_object_get_string_member_with_default(ms, "migrationUid", "") : "";
    if (*uid && strcmp(uid, p->migration_uid) != 0) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED,
                    "status.migrationState.migrationUid is '%s', not ours ('%s')", uid,
                    p->migration_uid);
        return VMIG_KUBE_MUTATE_REFUSE;
    }
    if (!ms) {
        ms = json_object_new();
        json_object_set_object_member(st, "migrationState", ms);
    }
    json_object_set_string_member(ms, "migrationUid", p->migration_uid);
    json_object_set_int_member(ms, "progressPercent", 40);
    return VMIG_KUBE_MUTATE_CHANGED;
}

static const char vmi_500[] =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstance\",\"metadata\":{"
    "\"name\":\"vm1\",\"namespace\":\"ns1\",\"uid\":\"u-vm1\",\"resourceVersion\":\"500\"},"
    "\"status\":{\"nodeName\":\"node-a\",\"migrationState\":{\"migrationUid\":\"m-1\","
    "\"targetNode\":\"node-b\",\"startTimestamp\":\"2026-11-29T19:00:00Z\"}}}";

static void
test_b04_conflict_regets_and_keeps_other_writer(void **state)
{
    VmiStore s = {.live = fake_parse(vmi_500), .rv = 500, .other_writer_before_first_put = TRUE};
    FakeServer *fake = fake_server_new(store_handler, &s);
    VmigKubeClient *c = fake_client(fake);            /* owned by the fake */
    g_autoptr(JsonNode) cached = fake_parse(vmi_500); /* step 1: the cache at rv 500 */
    Progress p = {.migration_uid = "m-1"};
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) written =
        vmig_kube_mutate_sync(c, VMI, "ns1", "vm1", TRUE, cached, 0, set_progress, &p, &err);
    assert_null(err);
    assert_non_null(written);
    /* PUT rv=500 -> 409; GET from the server (not the cache); PUT rv=501 -> 200 */
    assert_int_equal(fake->log->len, 3);
    assert_true(g_str_has_prefix(fake->log->pdata[0], "PUT "));
    assert_true(g_str_has_prefix(fake->log->pdata[1], "GET "));
    assert_true(g_str_has_prefix(fake->log->pdata[2], "PUT "));
    assert_int_equal(p.calls, 2);
    /* both writers' changes are in the final object */
    g_autofree char *final = json_to_string(s.live, FALSE);
    assert_non_null(strstr(final, "\"type\":\"AgentConnected\""));
    assert_non_null(strstr(final, "\"progressPercent\":40"));
    assert_non_null(strstr(final, "\"targetNode\":\"node-b\""));
    assert_string_equal(vmig_kube_meta_string(written, "resourceVersion"), "502");
    json_node_unref(s.live);
    fake_server_free(fake);
}

static void
test_b04_stale_cache_write_fails_and_mutation_refuses(void **state)
{
    /* step 5: the cache shows no migrationState; live rv 510 already carries m-1 */
    VmiStore s = {.live = fake_parse(vmi_500), .rv = 510};
    json_object_set_string_member(
        json_object_get_object_member(json_node_get_object(s.live), "metadata"), "resourceVersion",
        "510");
    g_autofree char *before = json_to_string(s.live, FALSE);
    FakeServer *fake = fake_server_new(store_handler, &s);
    VmigKubeClient *c = fake_client(fake); /* owned by the fake */
    g_autoptr(JsonNode) cached = fake_parse(
        "{\"metadata\":{\"name\":\"vm1\",\"namespace\":\"ns1\",\"resourceVersion\":\"500\"},"
        "\"status\":{\"nodeName\":\"node-a\"}}");
    Progress p = {.migration_uid = "m-2"};
    g_autoptr(GError) err = NULL;
    JsonNode *w =
        vmig_kube_mutate_sync(c, VMI, "ns1", "vm1", TRUE, cached, 0, set_progress, &p, &err);
    assert_null(w);
    assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED));
    assert_non_null(strstr(err->message, "update virtualmachineinstances/status ns1/vm1: "
                                         "status.migrationState.migrationUid is 'm-1'"));
    /* the stale write (rv 500) was rejected by its precondition, nothing was overwritten */
    assert_int_equal(s.puts, 1);
    assert_int_equal(s.gets, 1);
    g_autofree char *after = json_to_string(s.live, FALSE);
    assert_string_equal(before, after);

    /* without a cache copy: GET live first, the mutation refuses, no write at all */
    g_clear_error(&err);
    assert_null(vmig_kube_mutate_sync(c, VMI, "ns1", "vm1", TRUE, NULL, 0, set_progress, &p, &err));
    assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED));
    assert_int_equal(s.puts, 1);
    json_node_unref(s.live);
    fake_server_free(fake);
}

static void
test_b04_bounded_attempts(void **state)
{
    VmiStore s = {.live = fake_parse(vmi_500), .rv = 500, .other_writer_always = TRUE};
    FakeServer *fake = fake_server_new(store_handler, &s);
    VmigKubeClient *c = fake_client(fake); /* owned by the fake */
    Progress p = {.migration_uid = "m-1"};
    g_autoptr(GError) err = NULL;
    assert_null(vmig_kube_mutate_sync(c, VMI, "ns1", "vm1", TRUE, NULL, 0, set_progress, &p, &err));
    assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFLICT));
    assert_non_null(strstr(err->message, "conflict persisted after 5 attempts"));
    assert_non_null(strstr(err->message, "409 Conflict"));
    assert_int_equal(s.puts, VMIG_KUBE_DEFAULT_WRITE_ATTEMPTS);
    assert_int_equal(s.gets, VMIG_KUBE_DEFAULT_WRITE_ATTEMPTS);
    json_node_unref(s.live);
    fake_server_free(fake);
}

/* ---- events ------------------------------------------------------------------------------- */

typedef struct {
    guint posts, patches;
    gboolean patch_404;
    GPtrArray *bodies;
} EventStore;

static void
event_handler(FakeServer *fake, SoupServerMessage *msg, const char *method, const char *path,
              GHashTable *query, gpointer user_data)
{
    EventStore *es = user_data;
    g_autofree char *body = fake_body(msg);
    g_ptr_array_add(es->bodies, g_strdup_printf("%s %s", method, body));
    if (strcmp(method, "POST") == 0) {
        assert_string_equal(path, "/api/v1/namespaces/ns1/events");
        es->posts++;
        fake_reply_json(msg, 201, body);
    } else {
        es->patches++;
        if (es->patch_404) {
            fake_reply_status(msg, 404, "NotFound", "events not found");
            return;
        }
        fake_reply_json(msg, 200, body);
    }
}

static void
test_events_aggregate_repeats(void **state)
{
    EventStore es = {.bodies = g_ptr_array_new_with_free_func(g_free)};
    FakeServer *fake = fake_server_new(event_handler, &es);
    VmigKubeClient *c = fake_client(fake); /* owned by the fake */
    VmigKubeRecorder *rec = vmig_kube_recorder_new(c, "vmigrated", "node-a", 0);
    g_autoptr(JsonNode) vmim = fake_parse(
        "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstanceMigration\","
        "\"metadata\":{\"name\":\"mig1\",\"namespace\":\"ns1\",\"uid\":\"u-mig1\","
        "\"resourceVersion\":\"9\"}}");
    Result r[4] = {0};
    vmig_kube_recorder_event(rec, vmim, TRUE, "MigrationFailed", "target refused", result_cb,
                             &r[0]);
    assert_true(fake_wait(&r[0].done, 5000));
    vmig_kube_recorder_event(rec, vmim, TRUE, "MigrationFailed", "target refused", result_cb,
                             &r[1]);
    assert_true(fake_wait(&r[1].done, 5000));
    vmig_kube_recorder_event(rec, vmim, FALSE, "Migrated", "done", result_cb, &r[2]);
    assert_true(fake_wait(&r[2].done, 5000));
    assert_int_equal(es.posts, 2);
    assert_int_equal(es.patches, 1);
    JsonObject *ev = json_node_get_object(r[0].result);
    assert_string_equal(json_object_get_string_member(ev, "type"), "Warning");
    assert_string_equal(json_object_get_string_member(ev, "reason"), "MigrationFailed");
    assert_int_equal(json_object_get_int_member(ev, "count"), 1);
    JsonObject *inv = json_object_get_object_member(ev, "involvedObject");
    assert_string_equal(json_object_get_string_member(inv, "uid"), "u-mig1");
    assert_string_equal(json_object_get_string_member(inv, "kind"),
                        "VirtualMachineInstanceMigration");
    JsonObject *src = json_object_get_object_member(ev, "source");
    assert_string_equal(json_object_get_string_member(src, "component"), "vmigrated");
    assert_string_equal(json_object_get_string_member(src, "host"), "node-a");
    assert_true(json_object_has_member(ev, "firstTimestamp"));
    /* the repeat was a merge patch of count and lastTimestamp only */
    assert_true(g_str_has_prefix(es.bodies->pdata[1], "PATCH {\"count\":2,\"lastTimestamp\":"));
    assert_string_equal(json_object_get_string_member(json_node_get_object(r[2].result), "type"),
                        "Normal");

    /* the aggregated Event vanished (TTL): the repeat creates a new one */
    es.patch_404 = TRUE;
    vmig_kube_recorder_event(rec, vmim, TRUE, "MigrationFailed", "target refused", result_cb,
                             &r[3]);
    assert_true(fake_wait(&r[3].done, 5000));
    assert_null(r[3].error);
    assert_int_equal(es.posts, 3);
    assert_int_equal(json_object_get_int_member(json_node_get_object(r[3].result), "count"), 1);
    for (int i = 0; i < 4; i++)
        json_node_unref(r[i].result);
    vmig_kube_recorder_free(rec);
    g_ptr_array_unref(es.bodies);
    fake_server_free(fake);
}

/* ---- TLS: CA and client certificate from kubeconfig data ------------------------------- */

/* gnutls-serv (GnuTLS's test server, package gnutls-bin) demands a client certificate; it
 * answers HTTP with an HTML page, so a request that got through TLS fails with DECODE and one
 * refused in the handshake with TRANSPORT. (libsoup's server cannot ask for client
 * certificates with Debian 12's glib-networking: the handshake is reset.) */
typedef struct {
    GSubprocess *proc;
    char *url;
} TlsPeer;

static guint
free_port(void)
{
    g_autoptr(GSocket) s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) a = g_inet_socket_address_new(lo, 0);
    g_socket_bind(s, a, TRUE, NULL);
    g_autoptr(GSocketAddress) b = g_socket_get_local_address(s, NULL);
    return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(b));
}

static gboolean
tls_peer_start(TlsPeer *p, const char *dir)
{
    g_autofree char *prog = g_find_program_in_path("gnutls-serv");
    if (!prog)
        return FALSE;
    for (int attempt = 0; attempt < 3; attempt++) {
        guint port = free_port(); /* kernel-chosen, then handed to gnutls-serv */
        g_autofree char *ports = g_strdup_printf("%u", port);
        g_autofree char *ca = g_build_filename(dir, "ca.pem", NULL);
        g_autofree char *crt = g_build_filename(dir, "server.pem", NULL);
        g_autofree char *key = g_build_filename(dir, "server-key.pem", NULL);
        const char *argv[] = {prog,
                              "--http",
                              "--require-client-cert",
                              "--x509cafile",
                              ca,
                              "--x509certfile",
                              crt,
                              "--x509keyfile",
                              key,
                              "-p",
                              ports,
                              NULL};
        p->proc = g_subprocess_newv(
            argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, NULL);
        if (!p->proc)
            return FALSE;
        for (int i = 0; i < 100; i++) {
            g_autoptr(GSocketClient) sc = g_socket_client_new();
            g_autoptr(GSocketConnection) c =
                g_socket_client_connect_to_host(sc, "127.0.0.1", (guint16)port, NULL, NULL);
            if (c) {
                p->url = g_strdup_printf("https://127.0.0.1:%u", port);
                return TRUE;
            }
            g_usleep(20000);
        }
        g_subprocess_force_exit(p->proc);
        g_subprocess_wait(p->proc, NULL, NULL);
        g_clear_object(&p->proc);
    }
    return FALSE;
}

static void
tls_peer_stop(TlsPeer *p)
{
    if (p->proc) {
        g_subprocess_send_signal(p->proc, SIGTERM);
        g_subprocess_wait(p->proc, NULL, NULL);
        g_clear_object(&p->proc);
    }
    g_free(p->url);
}

static char *
b64_file(const char *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autofree char *data = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_base64_encode((const guchar *)data, len);
}

static VmigKubeClient *
tls_client(const char *url, const char *dir, gboolean with_ca, gboolean with_client_cert,
           gboolean insecure)
{
    g_autofree char *ca = b64_file(dir, "ca.pem");
    g_autofree char *crt = b64_file(dir, "client.pem");
    g_autofree char *key = b64_file(dir, "client-key.pem");
    g_autofree char *doc = g_strdup_printf(
        "current-context: c\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
        "clusters: [{name: k, cluster: {server: '%s', insecure-skip-tls-verify: %s%s%s}}]\n"
        "users: [{name: u, user: {%s%s%s%s}}]\n",
        url, insecure ? "true" : "false", with_ca ? ", certificate-authority-data: " : "",
        with_ca ? ca : "", with_client_cert ? "client-certificate-data: " : "",
        with_client_cert ? crt : "", with_client_cert ? ", client-key-data: " : "",
        with_client_cert ? key : "");
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigKubeConfig) cfg =
        vmig_kube_config_parse_kubeconfig(doc, strlen(doc), NULL, NULL, &err);
    if (!cfg)
        fail_msg("kubeconfig: %s\n%s", err->message, doc);
    VmigKubeClient *c = vmig_kube_client_new(cfg, &err);
    assert_non_null(c);
    return c;
}

static void
tls_expect(VmigKubeClient *c, VmigKubeErrorCode code, const char *what)
{
    VmigKubeRequest req = {.resource = vmig_kube_resource(VMIG_KUBE_NODE), .name = "node-a"};
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) n = vmig_kube_call_sync(c, VMIG_KUBE_VERB_GET, &req, NULL, &err);
    assert_null(n);
    if (!g_error_matches(err, VMIG_KUBE_ERROR, (gint)code))
        fail_msg("%s: expected code %d, got %d: %s", what, code, err->code, err->message);
    vmig_kube_client_unref(c);
}

static void
test_tls_ca_and_client_cert_data(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("kube-tls-XXXXXX", NULL);
    g_autofree char *gen =
        g_build_filename(g_getenv("VMIG_SOURCE_ROOT") ? g_getenv("VMIG_SOURCE_ROOT") : ".",
                         "scripts", "gen-certs", NULL);
    g_autofree char *cmd1 = g_strdup_printf("'%s' '%s' server 127.0.0.1 >/dev/null 2>&1", gen, dir);
    g_autofree char *cmd2 = g_strdup_printf("'%s' '%s' client >/dev/null 2>&1", gen, dir);
    g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir);
    TlsPeer peer = {0};
    if (system(cmd1) != 0 || system(cmd2) != 0 || !tls_peer_start(&peer, dir)) {
        assert_int_equal(system(rm), 0);
        skip(); /* gnutls-bin (certtool, gnutls-serv) missing */
    }
    /* CA and client certificate from kubeconfig data: the handshake succeeds */
    tls_expect(tls_client(peer.url, dir, TRUE, TRUE, FALSE), VMIG_KUBE_ERROR_DECODE,
               "ca + client cert");
    /* without the CA the server is not trusted */
    tls_expect(tls_client(peer.url, dir, FALSE, TRUE, FALSE), VMIG_KUBE_ERROR_TRANSPORT, "no ca");
    /* insecure-skip-tls-verify accepts it anyway */
    tls_expect(tls_client(peer.url, dir, FALSE, TRUE, TRUE), VMIG_KUBE_ERROR_DECODE, "insecure");
    /* without a client certificate the server refuses the handshake */
    tls_expect(tls_client(peer.url, dir, TRUE, FALSE, FALSE), VMIG_KUBE_ERROR_TRANSPORT,
               "no client cert");
    tls_peer_stop(&peer);
    assert_int_equal(system(rm), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verbs_paths_and_bodies),
        cmocka_unit_test(test_errors_carry_code_reason_object),
        cmocka_unit_test(test_transport_error),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_list_paging_with_continue),
        cmocka_unit_test(test_token_reload_on_401_and_periodic),
        cmocka_unit_test(test_b04_conflict_regets_and_keeps_other_writer),
        cmocka_unit_test(test_b04_stale_cache_write_fails_and_mutation_refuses),
        cmocka_unit_test(test_b04_bounded_attempts),
        cmocka_unit_test(test_events_aggregate_repeats),
        cmocka_unit_test(test_tls_ca_and_client_cert_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
