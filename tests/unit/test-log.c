/* test-log.c - the log line formats (vmig/log.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-glib/json-glib.h>

#include "vmig/log.h"

/* 2026-11-29T19:03:02.123Z */
static const gint64 T = 1795978982123000;

static void
test_text_line(void **state)
{
    g_autofree char *line = vmig_log_format_line(VMIG_LOG_FORMAT_TEXT, G_LOG_LEVEL_WARNING,
                                                 "vmig-kube", "ns1/vm1: x", T);
    assert_string_equal(line, "2026-11-29T19:03:02.123Z warning vmig-kube: ns1/vm1: x");
}

static void
test_json_line_escapes_and_parses(void **state)
{
    const char *msg = "quote\" back\\ nl\n ctl\x01 bad\xff ok\xc3\xa9";
    g_autofree char *line =
        vmig_log_format_line(VMIG_LOG_FORMAT_JSON, G_LOG_LEVEL_MESSAGE, "d", msg, T);
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) err = NULL;
    assert_true(json_parser_load_from_data(p, line, -1, &err));
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    assert_string_equal(json_object_get_string_member(o, "level"), "notice");
    assert_string_equal(json_object_get_string_member(o, "ts"), "2026-11-29T19:03:02.123Z");
    assert_string_equal(json_object_get_string_member(o, "msg"),
                        "quote\" back\\ nl\n ctl\x01 bad\xc3\xbf ok\xc3\xa9");
}

static void
test_format_table(void **state)
{
    VmigLogFormat f = VMIG_LOG_FORMAT_TEXT;
    assert_true(vmig_log_format_from_string("json", &f));
    assert_int_equal(f, VMIG_LOG_FORMAT_JSON);
    assert_false(vmig_log_format_from_string("xml", &f));
    assert_false(vmig_log_format_from_string(NULL, &f));
    assert_int_equal(f, VMIG_LOG_FORMAT_JSON);
    assert_string_equal(vmig_log_format_to_string(VMIG_LOG_FORMAT_TEXT), "text");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_line),
        cmocka_unit_test(test_json_line_escapes_and_parses),
        cmocka_unit_test(test_format_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
