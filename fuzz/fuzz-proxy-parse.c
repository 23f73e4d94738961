/* fuzz-proxy-parse - the proxy's parsers of untrusted text: "host:port" (B09) and the
 * targetDirectMigrationNodePorts map read from a VMIM status. First byte picks the parser. */
#include <stddef.h>
#include <stdint.h>

#include "vmig/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    g_autofree char *s = g_strndup((const char *)data + 1, size - 1);
    if (data[0] & 1) {
        g_autofree char *host = NULL;
        guint16 port = 0;
        if (vmig_proxy_parse_host_port(s, &host, &port, NULL)) {
            /* Round trip: formatting what we parsed must parse to the same. */
            g_autofree char *again = vmig_proxy_format_host_port(host, port);
            g_autofree char *host2 = NULL;
            guint16 port2 = 0;
            if (!vmig_proxy_parse_host_port(again, &host2, &port2, NULL) || port2 != port ||
                g_strcmp0(host, host2) != 0)
                __builtin_trap();
        }
    } else {
        g_autoptr(JsonNode) n = json_from_string(s, NULL);
        guint16 ports[VMIG_PROXY_N_CHANNELS];
        if (n)
            (void)vmig_proxy_port_map_parse(n, ports, NULL);
    }
    return 0;
}
