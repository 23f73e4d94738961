/* fuzz-metrics.c - whatever a label value or HELP text holds (and whatever --http-address
 * says), the exposition stays valid Prometheus text: the strict checker of the tests must
 * accept every render, and the address parser must never crash.
 * Input: HELP \0 label value \0 address. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit/prom-check.h"
#include "vmig/httpd.h"
#include "vmig/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *buf = g_strndup((const char *)data, size);
    const char *help = buf;
    const char *value = help + strlen(help) + 1 <= buf + size ? help + strlen(help) + 1 : "";
    const char *addr =
        value > buf && value + strlen(value) + 1 <= buf + size ? value + strlen(value) + 1 : "";
    g_autoptr(VmigMetrics) m = vmig_metrics_new();
    if (!vmig_metrics_register(m, "fuzz_bytes", VMIG_METRICS_GAUGE, help,
                               (const char *const[]){"namespace", "name", NULL}, NULL))
        abort();
    vmig_metrics_set(m, "fuzz_bytes", (const char *const[]){value, "vm1", NULL}, 1.5, NULL);
    vmig_metrics_set(m, "fuzz_bytes", (const char *const[]){"ns1", value, NULL}, 2, NULL);
    g_autofree char *text = vmig_metrics_render(m);
    g_autofree char *why = prom_check(text);
    if (why) {
        fprintf(stderr, "invalid exposition: %s\n%s", why, text);
        abort();
    }
    g_autofree char *host = NULL;
    guint16 port;
    vmig_httpd_parse_address(addr, &host, &port, NULL);
    return 0;
}
