/* fuzz-kube-watch.c - the watch-stream decoder on arbitrary bytes, fed in pieces whose sizes
 * come from the input itself, with a small event limit so the bound is exercised too. */
#include <stddef.h>
#include <stdint.h>

#include "vmig/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gboolean
count(VmigKubeEventType type, JsonNode *object, gpointer user_data)
{
    /* touch what a real handler reads */
    (void)vmig_kube_meta_string(object, "resourceVersion");
    g_free(vmig_kube_object_key(object));
    (*(guint *)user_data)++;
    return TRUE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* first byte: piece size (1..256) */
    size_t piece = (size_t)data[0] + 1;
    data++;
    size--;
    VmigKubeDecoder *d = vmig_kube_decoder_new(4096);
    guint n = 0;
    for (size_t pos = 0; pos < size; pos += piece) {
        GError *err = NULL;
        size_t len = size - pos < piece ? size - pos : piece;
        if (!vmig_kube_decoder_feed(d, (const char *)data + pos, len, count, &n, &err)) {
            g_clear_error(&err);
            vmig_kube_decoder_reset(d);
        }
    }
    (void)vmig_kube_decoder_pending(d);
    vmig_kube_decoder_free(d);
    return 0;
}
