/* fuzz-quantity.c - libFuzzer target: the resource.Quantity parser and the bandwidth and
 * completion-budget arithmetic on whatever it accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmig/migconfig.h"
#include "vmig/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    g_autofree char *text = g_strndup((const char *)data, size);
    VmigModelQuantity q;
    g_autoptr(GError) e = NULL;
    if (!vmig_model_quantity_parse(text, "fuzz", &q, &e)) {
        if (!e || !e->message)
            abort();
        return 0;
    }
    if (q.units < 0 || q.nanos >= 1000000000u)
        abort();
    gboolean unlimited;
    g_autoptr(GError) e2 = NULL;
    guint64 mibps = vmig_migconfig_bandwidth_mibps(&q, "fuzz", &unlimited, &e2);
    /* A positive limit never turns into 0 = unlimited. */
    if (!q.negative && !vmig_model_quantity_is_zero(&q) && (mibps == 0 || unlimited))
        abort();
    (void)vmig_migconfig_completion_timeout(150, vmig_model_quantity_ceil(&q));
    return 0;
}
