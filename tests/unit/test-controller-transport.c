/* test-controller-transport.c - the transport a migration's proxies use, read from the source
 * annotation the source node wrote when it scheduled the migration (src/controller/policy.c):
 * KubeVirt's migrations.disableTLS as decided once, so both nodes agree while caches lag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "controller-private.h"

static void
test_source_transport_table(void **state)
{
    static const struct {
        const char *annotation;
        VmigProxyTransport want;
    } cases[] = {
        {"{\"node\":\"node-a\",\"domainXML\":\"<domain/>\",\"disableTLS\":true}",
         VMIG_PROXY_TRANSPORT_PLAIN},
        {"{\"node\":\"node-a\",\"disableTLS\":false}", VMIG_PROXY_TRANSPORT_TLS},
        /* written by an agent that predates the member: each node's own setting */
        {"{\"node\":\"node-a\",\"domainXML\":\"<domain/>\"}", VMIG_PROXY_TRANSPORT_DEFAULT},
        {NULL, VMIG_PROXY_TRANSPORT_DEFAULT},
        {"", VMIG_PROXY_TRANSPORT_DEFAULT},
        {"not json", VMIG_PROXY_TRANSPORT_DEFAULT},
        {"[true]", VMIG_PROXY_TRANSPORT_DEFAULT},
        /* anything but a JSON true is TLS: plain TCP only when asked for exactly */
        {"{\"disableTLS\":\"true\"}", VMIG_PROXY_TRANSPORT_TLS},
        {"{\"disableTLS\":1}", VMIG_PROXY_TRANSPORT_TLS},
        {"{\"disableTLS\":null}", VMIG_PROXY_TRANSPORT_TLS},
        {"{\"disableTLS\":{\"value\":true}}", VMIG_PROXY_TRANSPORT_TLS},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        VmigProxyTransport got = vmig_ctl_source_transport(cases[i].annotation);
        if (got != cases[i].want)
            fail_msg(
                "case %zu (%s): %s, want %s", i, cases[i].annotation ? cases[i].annotation : "NULL",
                vmig_proxy_transport_to_string(got), vmig_proxy_transport_to_string(cases[i].want));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_transport_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
