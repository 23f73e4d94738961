/* test-kube-decoder.c - the watch-stream decoder against every way the bytes can be split
 * (field case B02). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmig/kube.h"

#define EV_A                                                                                       \
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"VirtualMachineInstanceMigration\","                \
    "\"metadata\":{\"name\":\"mig1\",\"namespace\":\"ns1\",\"resourceVersion\":\"101\"},"          \
    "\"spec\":{\"vmiName\":\"vm1\"}}}\n"
#define EV_B                                                                                       \
    "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"VirtualMachineInstanceMigration\","             \
    "\"metadata\":{\"name\":\"mig1\",\"namespace\":\"ns1\",\"resourceVersion\":\"102\"},"          \
    "\"spec\":{\"vmiName\":\"vm1\"},\"status\":{\"phase\":\"Running\"}}}\n"
#define EV_C                                                                                       \
    "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"VirtualMachineInstanceMigration\","             \
    "\"metadata\":{\"name\":\"mig1\",\"namespace\":\"ns1\",\"resourceVersion\":\"103\"},"          \
    "\"status\":{\"phase\":\"Succeeded\"}}}\n"

/* What the handler saw: "TYPE compact-object" per event. */
typedef struct {
    GPtrArray *events;
    char *last_rv;
} Seen;

static gboolean
record(VmigKubeEventType type, JsonNode *object, gpointer user_data)
{
    Seen *s = user_data;
    g_autofree char *j = json_to_string(object, FALSE);
    g_ptr_array_add(s->events, g_strdup_printf("%s %s", vmig_kube_event_type_to_string(type), j));
    g_free(s->last_rv);
    s->last_rv = g_strdup(vmig_kube_meta_string(object, "resourceVersion"));
    return TRUE;
}

static void
seen_init(Seen *s)
{
    s->events = g_ptr_array_new_with_free_func(g_free);
    s->last_rv = NULL;
}

static void
seen_clear(Seen *s)
{
    g_ptr_array_unref(s->events);
    g_free(s->last_rv);
}

/* Feeds @stream cut at @cuts (offsets, ascending); asserts no error. */
static void
feed_cuts(VmigKubeDecoder *d, const char *stream, const gsize *cuts, gsize ncuts, Seen *s)
{
    gsize len = strlen(stream), pos = 0;
    for (gsize i = 0; i <= ncuts; i++) {
        gsize end = i < ncuts ? cuts[i] : len;
        g_autoptr(GError) err = NULL;
        assert_true(vmig_kube_decoder_feed(d, stream + pos, end - pos, record, s, &err));
        assert_null(err);
        pos = end;
    }
}

static void
assert_same_events(Seen *a, Seen *b)
{
    assert_int_equal(a->events->len, b->events->len);
    for (guint i = 0; i < a->events->len; i++)
        assert_string_equal(a->events->pdata[i], b->events->pdata[i]);
}

/* B02's deliveries: [A[0:37]] [A[37:] + B[0:5]] [B[5:len-1]] ["\n"] */
static void
test_b02_deliveries(void **state)
{
    const char *stream = EV_A EV_B;
    gsize la = strlen(EV_A), lb = strlen(EV_B);
    const gsize cuts[] = {37, la + 5, la + lb - 1};
    Seen whole, split;
    seen_init(&whole);
    seen_init(&split);
    g_autoptr(VmigKubeDecoder) d1 = vmig_kube_decoder_new(0);
    g_autoptr(VmigKubeDecoder) d2 = vmig_kube_decoder_new(0);
    feed_cuts(d1, stream, NULL, 0, &whole);
    feed_cuts(d2, stream, cuts, G_N_ELEMENTS(cuts), &split);
    assert_int_equal(split.events->len, 2);
    assert_true(g_str_has_prefix(split.events->pdata[0], "ADDED "));
    assert_true(g_str_has_prefix(split.events->pdata[1], "MODIFIED "));
    assert_non_null(strstr(split.events->pdata[1], "\"phase\":\"Running\""));
    assert_string_equal(split.last_rv, "102");
    assert_same_events(&whole, &split);
    assert_int_equal(vmig_kube_decoder_pending(d2), 0);
    seen_clear(&whole);
    seen_clear(&split);
}

/* Every single cut point and 1-byte reads give the same events as one read. */
static void
test_every_split_and_one_byte_reads(void **state)
{
    const char *stream = EV_A EV_B EV_C;
    gsize len = strlen(stream);
    Seen whole;
    seen_init(&whole);
    g_autoptr(VmigKubeDecoder) d = vmig_kube_decoder_new(0);
    feed_cuts(d, stream, NULL, 0, &whole);
    assert_int_equal(whole.events->len, 3);
    for (gsize cut = 1; cut < len; cut++) {
        Seen s;
        seen_init(&s);
        g_autoptr(VmigKubeDecoder) d2 = vmig_kube_decoder_new(0);
        feed_cuts(d2, stream, &cut, 1, &s);
        assert_same_events(&whole, &s);
        seen_clear(&s);
    }
    Seen ones;
    seen_init(&ones);
    g_autoptr(VmigKubeDecoder) d3 = vmig_kube_decoder_new(0);
    for (gsize i = 0; i < len; i++)
        assert_true(vmig_kube_decoder_feed(d3, stream + i, 1, record, &ones, NULL));
    assert_same_events(&whole, &ones);
    seen_clear(&ones);
    seen_clear(&whole);
}

static void
test_two_events_in_one_read_without_newlines(void **state)
{
    /* kube-apiserver writes a newline after each event; a stream without them still frames */
    const char *stream =
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}"
        "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"resourceVersion\":\"2\"}}}";
    Seen s;
    seen_init(&s);
    g_autoptr(VmigKubeDecoder) d = vmig_kube_decoder_new(0);
    feed_cuts(d, stream, NULL, 0, &s);
    assert_int_equal(s.events->len, 2);
    assert_true(g_str_has_prefix(s.events->pdata[1], "DELETED "));
    assert_string_equal(s.last_rv, "2");
    seen_clear(&s);
}

/* Braces, brackets, quotes and backslashes inside strings do not move the framing, whatever
 * the split (a cut right after a backslash included). */
static void
test_structure_inside_strings(void **state)
{
    const char *stream =
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\","
        "\"annotations\":{\"x\":\"}}]]{{ \\\" \\\\\\\" \\\\\"}}}}\n";
    Seen whole;
    seen_init(&whole);
    g_autoptr(VmigKubeDecoder) d = vmig_kube_decoder_new(0);
    feed_cuts(d, stream, NULL, 0, &whole);
    assert_int_equal(whole.events->len, 1);
    for (gsize cut = 1; cut < strlen(stream); cut++) {
        Seen s;
        seen_init(&s);
        g_autoptr(VmigKubeDecoder) d2 = vmig_kube_decoder_new(0);
        feed_cuts(d2, stream, &cut, 1, &s);
        assert_same_events(&whole, &s);
        seen_clear(&s);
    }
    seen_clear(&whole);
}

static void
test_utf8_character_split(void **state)
{
    /* "Überprüfung €" : cut inside the 3-byte euro sign and inside a 2-byte umlaut */
    const char *stream = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"5\"},"
                         "\"message\":\"\xc3\x9c"
                         "berpr\xc3\xbc"
                         "fung \xe2\x82\xac\"}}\n";
    const char *euro = strstr(stream, "\xe2\x82\xac");
    const char *uml = strstr(stream, "\xc3\xbc");
    gsize cuts[] = {(gsize)(uml - stream) + 1, (gsize)(euro - stream) + 1,
                    (gsize)(euro - stream) + 2};
    Seen s;
    seen_init(&s);
    g_autoptr(VmigKubeDecoder) d = vmig_kube_decoder_new(0);
    feed_cuts(d, stream, cuts, G_N_ELEMENTS(cuts), &s);
    assert_int_equal(s.events->len, 1);
    assert_non_null(strstr(s.events->pdata[0], "\xc3\x9c"
                                               "berpr\xc3\xbc"
                                               "fung \xe2\x82\xac"));
    seen_clear(&s);
}

static char *
big_event(gsize payload)
{
    GString *g = g_string_new("{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"big\","
                              "\"resourceVersion\":\"900\",\"annotations\":{\"blob\":\"");
    for (gsize i = 0; i < payload; i++)
        g_string_append_c(g, (char)('a' + i % 26));
    g_string_append(g, "\"}}}}\n");
    return g_string_free(g, FALSE);
}

static void
test_256k_event(void **state)
{
    g_autofree char *ev = big_event(256 * 1024);
    gsize len = strlen(ev);
    Seen s;
    seen_init(&s);
    g_autoptr(VmigKubeDecoder) d = vmig_kube_decoder_new(0);
    /* 4 KiB reads, like a socket would give */
    for (gsize pos = 0; pos < len; pos += 4096) {
        assert_int_equal(s.events->len, 0);
        assert_true(vmig_kube_decoder_feed(d, ev + pos, MIN(4096, len - pos), record, &s, NULL));
    }
    assert_int_equal(s.events->len, 1);
    assert_string_equal(s.last_rv, "900");
    assert_true(strlen(s.events->pdata[0]) > 256 * 1024);
    seen_clear(&s);
}

/* An event over the limit is an error (bounded memory), events before it still arrive. */
static void
test_over_limit_event(void **state)
{
    g_autofree char *ev = big_event(4096);
    g_autofree char *stream = g_strconcat(EV_A, ev, NULL);
    Seen s;
    seen_init(&s);
    g_autoptr(VmigKubeDecoder) d = vmig_kube_decoder_new(1024);
    g_autoptr(GError) err = NULL;
    /* byte-by-byte: the limit must hold while the event is still incomplete */
    gboolean ok = TRUE;
    gsize fed = 0;
    for (; fed < strlen(stream) && ok; fed++)
        ok = vmig_kube_decoder_feed(d, stream + fed, 1, record, &s, &err);
    assert_false(ok);
    assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_TOO_LARGE));
    assert_true(fed <= strlen(EV_A) + 1025);
    assert_int_equal(s.events->len, 1);
    assert_int_equal(vmig_kube_decoder_pending(d), 0);
    /* whole-read shape too */
    g_autoptr(VmigKubeDecoder) d2 = vmig_kube_decoder_new(1024);
    g_clear_error(&err);
    assert_false(vmig_kube_decoder_feed(d2, ev, strlen(ev), record, &s, &err));
    assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_TOO_LARGE));
    seen_clear(&s);
}

/* EOF in the middle of C: A and B delivered, C never parsed, the fragment is reported. */
static void
test_eof_mid_event(void **state)
{
    g_autofree char *stream = g_strndup(EV_A EV_B EV_C, strlen(EV_A EV_B) + strlen(EV_C) / 2);
    Seen s;
    seen_init(&s);
    g_autoptr(VmigKubeDecoder) d = vmig_kube_decoder_new(0);
    feed_cuts(d, stream, NULL, 0, &s);
    assert_int_equal(s.events->len, 2);
    assert_string_equal(s.last_rv, "102");
    assert_int_equal(vmig_kube_decoder_pending(d), strlen(EV_C) / 2);
    vmig_kube_decoder_reset(d);
    assert_int_equal(vmig_kube_decoder_pending(d), 0);
    /* a new stream after the reset decodes normally */
    feed_cuts(d, EV_C, NULL, 0, &s);
    assert_string_equal(s.last_rv, "103");
    seen_clear(&s);
}

/* Malformed input: an error naming what is wrong, never a crash. */
static void
test_malformed(void **state)
{
    static const struct {
        const char *stream;
        const char *needle;
    } cases[] = {
        {"garbage\n", "unexpected byte"},
        {"{\"type\":\"ADDED\",\"object\":{}\"x\"}\n", "not JSON"},
        {"{\"object\":{}}\n", "'type'"},
        {"{\"type\":7,\"object\":{}}\n", "'type'"},
        {"{\"type\":\"RENAMED\",\"object\":{}}\n", "unknown type 'RENAMED'"},
        {"{\"type\":\"ADDED\"}\n", "'object'"},
        {"{\"type\":\"ADDED\",\"object\":[1]}\n", "'object'"},
        {"[1,2]\n", "unexpected byte"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        Seen s;
        seen_init(&s);
        g_autoptr(VmigKubeDecoder) d = vmig_kube_decoder_new(0);
        g_autoptr(GError) err = NULL;
        assert_false(
            vmig_kube_decoder_feed(d, cases[i].stream, strlen(cases[i].stream), record, &s, &err));
        assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_DECODE));
        if (!strstr(err->message, cases[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err->message, cases[i].needle);
        assert_int_equal(s.events->len, 0);
        seen_clear(&s);
    }
}

static gboolean
stop_after_first(VmigKubeEventType type, JsonNode *object, gpointer user_data)
{
    (*(int *)user_data)++;
    return FALSE;
}

static void
test_handler_stops_feed(void **state)
{
    int n = 0;
    g_autoptr(VmigKubeDecoder) d = vmig_kube_decoder_new(0);
    g_autoptr(GError) err = NULL;
    assert_false(
        vmig_kube_decoder_feed(d, EV_A EV_B, strlen(EV_A EV_B), stop_after_first, &n, &err));
    assert_null(err);
    assert_int_equal(n, 1);
}

static void
test_event_type_table(void **state)
{
    VmigKubeEventType t;
    for (int i = VMIG_KUBE_EVENT_ADDED; i <= VMIG_KUBE_EVENT_ERROR; i++) {
        assert_true(vmig_kube_event_type_from_string(vmig_kube_event_type_to_string(i), &t));
        assert_int_equal(t, i);
    }
    assert_false(vmig_kube_event_type_from_string("added", &t));
    assert_false(vmig_kube_event_type_from_string(NULL, &t));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b02_deliveries),
        cmocka_unit_test(test_every_split_and_one_byte_reads),
        cmocka_unit_test(test_two_events_in_one_read_without_newlines),
        cmocka_unit_test(test_structure_inside_strings),
        cmocka_unit_test(test_utf8_character_split),
        cmocka_unit_test(test_256k_event),
        cmocka_unit_test(test_over_limit_event),
        cmocka_unit_test(test_eof_mid_event),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_handler_stops_feed),
        cmocka_unit_test(test_event_type_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
