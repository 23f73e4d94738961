/* test-kube-pack.c - the informer cache's packed object text (src/kube/pack.c, internal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kube-private.h"

static const char *vmi_a =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstance\",\"metadata\":{"
    "\"name\":\"vm-1\",\"namespace\":\"tenant-1\",\"uid\":\"5b2a7c1e-0d1f-4c55-9a77-0000000000aa\","
    "\"resourceVersion\":\"101\",\"labels\":{\"kubevirt.io/nodeName\":\"node-a\"}},\"spec\":{"
    "\"domain\":{\"cpu\":{\"model\":\"host-model\"},\"resources\":{\"requests\":{\"memory\":"
    "\"1Gi\"}}},\"evictionStrategy\":\"LiveMigrate\"},\"status\":{\"phase\":\"Running\","
    "\"nodeName\":\"node-a\"}}";

static char *
unpack_text(VmigKubePack *p, const guint8 *b, guint32 n, gsize len)
{
    return vmig_kube_unpack(p, b, n, (guint32)len);
}

/* Round trips, and objects like the first (the dictionary) pack to a fraction of their size. */
static void
test_round_trip_and_dictionary(void **state)
{
    VmigKubePack *p = vmig_kube_pack_new();
    guint32 n1 = 0, n2 = 0;
    g_autofree guint8 *b1 = vmig_kube_pack(p, vmi_a, strlen(vmi_a), &n1);
    g_autofree char *other = g_strdup(vmi_a);
    memcpy(strstr(other, "vm-1"), "vm-7", 4);
    memcpy(strstr(other, "\"101\""), "\"977\"", 5);
    g_autofree guint8 *b2 = vmig_kube_pack(p, other, strlen(other), &n2);
    g_autofree char *t1 = unpack_text(p, b1, n1, strlen(vmi_a));
    g_autofree char *t2 = unpack_text(p, b2, n2, strlen(other));
    assert_string_equal(t1, vmi_a);
    assert_string_equal(t2, other);
    if (n2 * 5 > strlen(other))
        fail_msg("a near-copy of the dictionary packed to %u of %zu bytes", n2, strlen(other));
    vmig_kube_pack_free(p);
}

/* Empty text, text far longer than the window, and binary-looking UTF-8 all round trip. */
static void
test_edges(void **state)
{
    VmigKubePack *p = vmig_kube_pack_new();
    guint32 n = 0;
    g_autofree guint8 *e = vmig_kube_pack(p, "", 0, &n);
    g_autofree char *et = unpack_text(p, e, n, 0);
    assert_string_equal(et, "");

    GString *big = g_string_new("{\"items\":[");
    for (guint i = 0; i < 20000; i++)
        g_string_append_printf(big, "%s{\"n\":%u,\"s\":\"\xc3\xa9\xe2\x82\xac %x\"}", i ? "," : "",
                               i, i * 2654435761u);
    g_string_append(big, "]}");
    g_autofree guint8 *b = vmig_kube_pack(p, big->str, big->len, &n);
    g_autofree char *bt = unpack_text(p, b, n, big->len);
    assert_non_null(bt);
    assert_memory_equal(bt, big->str, big->len);
    g_string_free(big, TRUE);
    vmig_kube_pack_free(p);
}

/* Damaged bytes or a wrong length give NULL (and a critical), never garbage. */
static void
test_damage_is_refused(void **state)
{
    VmigKubePack *p = vmig_kube_pack_new();
    guint32 n = 0;
    g_autofree guint8 *b = vmig_kube_pack(p, vmi_a, strlen(vmi_a), &n);
    GLogLevelFlags old = g_log_set_always_fatal(G_LOG_FATAL_MASK);
    g_log_set_fatal_mask("vmig-kube", G_LOG_FATAL_MASK);
    char *t = unpack_text(p, b, n, strlen(vmi_a) + 1); /* longer than it is */
    assert_null(t);
    t = unpack_text(p, b, n / 2, strlen(vmi_a)); /* cut short */
    assert_null(t);
    g_log_set_always_fatal(old);
    vmig_kube_pack_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_dictionary),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_damage_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
