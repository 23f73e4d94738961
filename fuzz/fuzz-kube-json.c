/* fuzz-kube-json.c - the client's JSON parser on arbitrary bytes: no crash, and whatever it
 * accepts survives a round trip through json-glib's generator unchanged; the raw event scan
 * and the tree parse agree on what is valid. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmig/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gboolean
ignore(const VmigKubeRawEvent *ev, gpointer user_data)
{
    return TRUE;
}

static gboolean
ignore_tree(VmigKubeEventType type, JsonNode *object, gpointer user_data)
{
    return TRUE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *err = NULL;
    JsonNode *n = vmig_kube_parse_json((const char *)data, size, &err);
    if (n) {
        char *s1 = json_to_string(n, FALSE);
        JsonNode *m = vmig_kube_parse_json(s1, strlen(s1), NULL);
        if (!m)
            abort(); /* we could not read what we accepted, once written back */
        char *s2 = json_to_string(m, FALSE);
        if (strcmp(s1, s2) != 0)
            abort();
        g_free(s2);
        json_node_unref(m);
        g_free(s1);
        json_node_unref(n);
    }
    g_clear_error(&err);

    /* the same bytes as one watch event: raw scan and tree decode must agree */
    VmigKubeDecoder *a = vmig_kube_decoder_new(0), *b = vmig_kube_decoder_new(0);
    gboolean ra = vmig_kube_decoder_feed_raw(a, (const char *)data, size, ignore, NULL, &err);
    g_clear_error(&err);
    gboolean rb = vmig_kube_decoder_feed(b, (const char *)data, size, ignore_tree, NULL, &err);
    g_clear_error(&err);
    if (ra != rb)
        abort();
    vmig_kube_decoder_free(a);
    vmig_kube_decoder_free(b);
    return 0;
}
