/* addr.c - pure helpers of the proxy: channel keys, UIDs, socket names, host:port, port map. */
#include "vmig/proxy.h"

#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK(vmig - proxy - error - quark, vmig_proxy_error)

/* One row per channel: KubeVirt's key and our name. */
static const struct {
    int key;
    const char *name;
} vmig_proxy_channels[] = {
    [VMIG_PROXY_CHANNEL_LIBVIRT] = {0, "libvirt"},
    [VMIG_PROXY_CHANNEL_MEMORY] = {49152, "memory"},
    [VMIG_PROXY_CHANNEL_DISK] = {49153, "disk"},
};

int
vmig_proxy_channel_key(VmigProxyChannel channel)
{
    if ((gsize)channel >= G_N_ELEMENTS(vmig_proxy_channels))
        return -1;
    return vmig_proxy_channels[channel].key;
}

gboolean
vmig_proxy_channel_from_key(int key, VmigProxyChannel *out)
{
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_proxy_channels); i++) {
        if (vmig_proxy_channels[i].key == key) {
            *out = (VmigProxyChannel)i;
            return TRUE;
        }
    }
    return FALSE;
}

const char *
vmig_proxy_channel_to_string(VmigProxyChannel channel)
{
    if ((gsize)channel >= G_N_ELEMENTS(vmig_proxy_channels))
        return "unknown";
    return vmig_proxy_channels[channel].name;
}

gboolean
vmig_proxy_uid_is_valid(const char *uid)
{
    /* g_uuid_string_is_valid accepts exactly the 8-4-4-4-12 hex form, which is also what keeps
     * '/' and '..' out of socket file names. */
    return uid != NULL && g_uuid_string_is_valid(uid);
}

char *
vmig_proxy_socket_name(const char *uid, VmigProxyChannel channel)
{
    if (channel == VMIG_PROXY_CHANNEL_LIBVIRT)
        return g_strdup_printf("%s-source.sock", uid);
    return g_strdup_printf("%s-%d-source.sock", uid, vmig_proxy_channel_key(channel));
}

char *
vmig_proxy_format_host_port(const char *host, guint16 port)
{
    /* Any ':' means an IPv6 literal (with or without zone): host names and IPv4 never hold one,
     * and a bare v6 literal followed by ":port" is ambiguous (B09). */
    if (strchr(host, ':') != NULL)
        return g_strdup_printf("[%s]:%u", host, (unsigned)port);
    return g_strdup_printf("%s:%u", host, (unsigned)port);
}

gboolean
vmig_proxy_parse_host_port(const char *s, char **host, guint16 *port, GError **error)
{
    const char *colon;
    g_autofree char *h = NULL;
    if (s == NULL || *s == '\0')
        goto bad;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':' || end == s + 1)
            goto bad;
        h = g_strndup(s + 1, end - s - 1);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || colon == s || memchr(s, ':', colon - s) != NULL)
            goto bad; /* unbracketed IPv6 literal: refuse rather than guess (B09) */
        h = g_strndup(s, colon - s);
    }
    if (strpbrk(h, "[]") != NULL)
        goto bad;
    char *endp = NULL;
    guint64 p = g_ascii_strtoull(colon + 1, &endp, 10);
    if (colon[1] == '\0' || *endp != '\0' || p == 0 || p > 65535)
        goto bad;
    *host = g_steal_pointer(&h);
    *port = (guint16)p;
    return TRUE;
bad:
    g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                "address '%s': expected host:port or [ipv6]:port with port 1-65535",
                s ? s : "(null)");
    return FALSE;
}

gboolean
vmig_proxy_port_map_parse(JsonNode *map, guint16 ports[VMIG_PROXY_N_CHANNELS], GError **error)
{
    memset(ports, 0, sizeof(guint16) * VMIG_PROXY_N_CHANNELS);
    if (map == NULL || !JSON_NODE_HOLDS_OBJECT(map)) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                    "targetDirectMigrationNodePorts: expected an object {\"port\": key}");
        return FALSE;
    }
    JsonObject *o = json_node_get_object(map);
    g_autoptr(GList) members = json_object_get_members(o);
    for (GList *l = members; l; l = l->next) {
        const char *name = l->data;
        JsonNode *v = json_object_get_member(o, name);
        char *endp = NULL;
        guint64 port = g_ascii_strtoull(name, &endp, 10);
        VmigProxyChannel ch;
        if (*name == '\0' || *endp != '\0' || port == 0 || port > 65535) {
            g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                        "targetDirectMigrationNodePorts: key '%s' is not a port 1-65535", name);
            return FALSE;
        }
        if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_INT64 ||
            !vmig_proxy_channel_from_key((int)json_node_get_int(v), &ch)) {
            g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                        "targetDirectMigrationNodePorts[\"%s\"]: value must be 0, 49152 or 49153",
                        name);
            return FALSE;
        }
        if (ports[ch] != 0) {
            g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_INVALID,
                        "targetDirectMigrationNodePorts: key %d listed twice",
                        vmig_proxy_channel_key(ch));
            return FALSE;
        }
        ports[ch] = (guint16)port;
    }
    return TRUE;
}
