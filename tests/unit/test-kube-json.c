/* test-kube-json.c - the client's JSON parser (same trees as json-glib's JsonParser, strict
 * RFC 8259) and the raw watch-event scan (metadata without a tree). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmig/kube.h"

static JsonNode *
glib_parse(const char *text)
{
    g_autoptr(JsonParser) p = json_parser_new();
    if (!json_parser_load_from_data(p, text, -1, NULL))
        return NULL;
    return json_parser_steal_root(p);
}

/* Valid documents: our tree equals JsonParser's. */
static void
test_same_trees_as_json_glib(void **state)
{
    static const char *const docs[] = {
        "{}",
        "[]",
        " {\"a\" : 1 , \"b\":[true,false,null], \"c\":{\"d\":\"e\"}} ",
        "{\"int\":-9223372036854775808,\"f\":-1.5e-3,\"z\":0,\"e\":1E+2}",
        "{\"s\":\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00 \\u20ac\"}",
        "{\"utf8\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
        "{\"dup\":1,\"dup\":2}",
        "[[[[[[[[[[1]]]]]]]]]]",
        "\"top-level string\"",
        "42",
        "{\"metadata\":{\"name\":\"vm1\",\"labels\":{\"kubevirt.io/nodeName\":\"node-a\"}},"
        "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
        "\"lastProbeTime\":null}]}}",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(docs); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonNode) ours = vmig_kube_parse_json(docs[i], strlen(docs[i]), &err);
        g_autoptr(JsonNode) theirs = glib_parse(docs[i]);
        if (!ours)
            fail_msg("doc %zu: %s", i, err->message);
        assert_non_null(theirs);
        g_autofree char *a = json_to_string(ours, FALSE);
        g_autofree char *b = json_to_string(theirs, FALSE);
        if (strcmp(a, b) != 0)
            fail_msg("doc %zu: %s != %s", i, a, b);
    }
}

/* An integer beyond gint64 becomes a double (JsonParser wraps it to a negative number). */
static void
test_big_integer(void **state)
{
    g_autoptr(JsonNode) n = vmig_kube_parse_json("9223372036854775808", 19, NULL);
    assert_int_equal(json_node_get_value_type(n), G_TYPE_DOUBLE);
    assert_true(json_node_get_double(n) > 9.2e18);
    /* json-glib 1.6 writes 1e17 as "1e+17.0": what the cache stored must read back */
    g_autoptr(JsonNode) d = json_node_init_double(json_node_alloc(), 1e17);
    g_autofree char *text = json_to_string(d, FALSE);
    g_autoptr(JsonNode) back = vmig_kube_parse_json(text, strlen(text), NULL);
    assert_non_null(back);
    assert_true(json_node_get_double(back) == 1e17);
    /* out of range has no JSON spelling */
    g_autoptr(GError) err = NULL;
    assert_null(vmig_kube_parse_json("1e999", 5, &err));
    assert_non_null(strstr(err->message, "number out of range"));
}

/* Invalid documents: an error naming the problem and the byte, never a crash. */
static void
test_strict_errors(void **state)
{
    static const struct {
        const char *doc;
        const char *needle;
    } cases[] = {
        {"", "unexpected end at byte 0"},
        {"{", "expected a member name"},
        {"{\"a\":1,}", "expected a member name"},
        {"[1,]", "bad number"},
        {"{\"a\" 1}", "expected ':'"},
        {"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
        {"[1 2]", "expected ',' or ']'"},
        {"\"abc", "unterminated string"},
        {"\"a\tb\"", "control character"},
        {"\"\\x\"", "bad escape"},
        {"\"\\u12\"", "bad \\u escape"},
        {"\"\\ud800\"", "unpaired surrogate"},
        {"\"\\udc00\"", "unpaired surrogate"},
        {"\"\\u0000\"", "NUL character"},
        {"\"\xff\"", "invalid UTF-8"},
        {"01", "trailing data"},
        {"-", "bad number"},
        {"1.", "bad number"},
        {"1e", "bad number"},
        {"tru", "unexpected character"},
        {"{} {}", "trailing data"},
        {"// comment\n{}", "bad number"},
        {"{'a':1}", "expected a member name"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        JsonNode *n = vmig_kube_parse_json(cases[i].doc, strlen(cases[i].doc), &err);
        assert_null(n);
        assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_DECODE));
        if (!strstr(err->message, cases[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err->message, cases[i].needle);
    }
    /* nesting is bounded */
    GString *deep = g_string_new(NULL);
    for (int i = 0; i < 10000; i++)
        g_string_append_c(deep, '[');
    g_autoptr(GError) err = NULL;
    assert_null(vmig_kube_parse_json(deep->str, deep->len, &err));
    assert_non_null(strstr(err->message, "nested too deeply"));
    g_string_free(deep, TRUE);
}

typedef struct {
    GPtrArray *seen;
} Raw;

static gboolean
raw_cb(const VmigKubeRawEvent *ev, gpointer user_data)
{
    Raw *r = user_data;
    g_autofree char *obj = g_strndup(ev->object, ev->object_len);
    g_ptr_array_add(r->seen,
                    g_strdup_printf("%s ns=%s name=%s uid=%s rv=%s obj=%s",
                                    vmig_kube_event_type_to_string(ev->type),
                                    ev->namespace ? ev->namespace : "(null)",
                                    ev->name ? ev->name : "(null)", ev->uid ? ev->uid : "(null)",
                                    ev->resource_version ? ev->resource_version : "(null)", obj));
    return TRUE;
}

/* The raw scan finds the object's own metadata whatever the member order, escapes or nested
 * look-alikes, and hands over the object's exact text. */
static void
test_raw_event_metadata(void **state)
{
    static const struct {
        const char *event;
        const char *expect;
    } cases[] = {
        {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns1\","
         "\"uid\":\"u1\",\"resourceVersion\":\"7\"}}}",
         "ADDED ns=ns1 name=a uid=u1 rv=7 obj={\"metadata\":{\"name\":\"a\",\"namespace\":"
         "\"ns1\",\"uid\":\"u1\",\"resourceVersion\":\"7\"}}"},
        /* object before type; spec carries its own "metadata" and "name" that must not win */
        {"{\"object\":{\"spec\":{\"template\":{\"metadata\":{\"name\":\"inner\"}},\"name\":\"x\"},"
         "\"metadata\":{\"resourceVersion\":\"9\",\"name\":\"outer\"}}, \"type\":\"MODIFIED\"}",
         "MODIFIED ns=(null) name=outer uid=(null) rv=9 obj={\"spec\":{\"template\":{"
         "\"metadata\":{\"name\":\"inner\"}},\"name\":\"x\"},\"metadata\":{\"resourceVersion\":"
         "\"9\",\"name\":\"outer\"}}"},
        /* escaped values are decoded */
        {"{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\\u00e9\\\"b\"}}}",
         "DELETED ns=(null) name=a\xc3\xa9\"b uid=(null) rv=(null) obj={\"metadata\":{\"name\":"
         "\"a\\u00e9\\\"b\"}}"},
        /* a bookmark: only the RV */
        {"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"X\",\"metadata\":{\"resourceVersion\":"
         "\"250\"}}}",
         "BOOKMARK ns=(null) name=(null) uid=(null) rv=250 obj={\"kind\":\"X\",\"metadata\":{"
         "\"resourceVersion\":\"250\"}}"},
        /* metadata not an object, rv not a string: absent, not a crash */
        {"{\"type\":\"ADDED\",\"object\":{\"metadata\":[1],\"x\":{\"metadata\":{\"name\":\"n\"}}}}",
         "ADDED ns=(null) name=(null) uid=(null) rv=(null) obj={\"metadata\":[1],\"x\":{"
         "\"metadata\":{\"name\":\"n\"}}}"},
        {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":12}}}",
         "ADDED ns=(null) name=(null) uid=(null) rv=(null) obj={\"metadata\":{"
         "\"resourceVersion\":12}}"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        Raw r = {g_ptr_array_new_with_free_func(g_free)};
        g_autoptr(VmigKubeDecoder) d = vmig_kube_decoder_new(0);
        g_autoptr(GError) err = NULL;
        if (!vmig_kube_decoder_feed_raw(d, cases[i].event, strlen(cases[i].event), raw_cb, &r,
                                        &err))
            fail_msg("case %zu: %s", i, err ? err->message : "stopped");
        assert_int_equal(r.seen->len, 1);
        assert_string_equal(r.seen->pdata[0], cases[i].expect);
        g_ptr_array_unref(r.seen);
    }
    /* the raw path validates the whole event, not just the fields it reads */
    const char *bad = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{},\"spec\":{\"a\":tru}}}";
    Raw r = {g_ptr_array_new_with_free_func(g_free)};
    g_autoptr(VmigKubeDecoder) d = vmig_kube_decoder_new(0);
    g_autoptr(GError) err = NULL;
    assert_false(vmig_kube_decoder_feed_raw(d, bad, strlen(bad), raw_cb, &r, &err));
    assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_DECODE));
    assert_int_equal(r.seen->len, 0);
    g_ptr_array_unref(r.seen);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_trees_as_json_glib),
        cmocka_unit_test(test_big_integer),
        cmocka_unit_test(test_strict_errors),
        cmocka_unit_test(test_raw_event_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
