/* pack.c - the informer cache keeps each object's JSON text deflated (zlib, raw) against a
 * preset dictionary: the first object the informer stored. Objects of one resource share
 * most of their text (field names, label keys, common values), so a VMI of 4 KiB packs to
 * a few hundred bytes; the text is inflated again on every read. Streams are set up per
 * call with a small window so an idle informer holds no zlib state at all. */
#include "kube-private.h"

#include <string.h>
#include <zlib.h>

/* 8 KiB window (the dictionary's useful length) and a small hash table: about 64 KiB of
 * zlib state during one call, nothing between calls. */
#define PACK_WINDOW_BITS 13
#define PACK_MEM_LEVEL   6
#define PACK_DICT_MAX    ((1u << PACK_WINDOW_BITS) - 262u)

struct _VmigKubePack {
    guint8 *dict;
    guint dict_len;
};

VmigKubePack *
vmig_kube_pack_new(void)
{
    return g_new0(VmigKubePack, 1);
}

void
vmig_kube_pack_free(VmigKubePack *p)
{
    if (!p)
        return;
    g_free(p->dict);
    g_free(p);
}

guint8 *
vmig_kube_pack(VmigKubePack *p, const char *text, gsize len, guint32 *packed_len)
{
    g_return_val_if_fail(len <= G_MAXUINT32, NULL);
    if (!p->dict && len > 0) {
        /* zlib matches best near the dictionary's end: keep the object's last bytes */
        p->dict_len = (guint)MIN(len, PACK_DICT_MAX);
        p->dict = g_memdup2(text + len - p->dict_len, p->dict_len);
    }
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, -PACK_WINDOW_BITS, PACK_MEM_LEVEL, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        g_error("zlib: deflateInit2 failed (out of memory)");
    if (p->dict_len)
        deflateSetDictionary(&z, p->dict, p->dict_len);
    uLong bound = deflateBound(&z, (uLong)len);
    guint8 *out = g_malloc(bound);
    z.next_in = (Bytef *)text;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    g_assert(rc == Z_STREAM_END); /* deflateBound guarantees room */
    *packed_len = (guint32)z.total_out;
    deflateEnd(&z);
    /* an exact-size copy: the bound is well above what text of this kind packs to */
    guint8 *exact = g_memdup2(out, *packed_len);
    g_free(out);
    return exact;
}

char *
vmig_kube_unpack(VmigKubePack *p, const guint8 *packed, guint32 packed_len, guint32 text_len)
{
    z_stream z = {0};
    if (inflateInit2(&z, -PACK_WINDOW_BITS) != Z_OK)
        g_error("zlib: inflateInit2 failed (out of memory)");
    if (p->dict_len)
        inflateSetDictionary(&z, p->dict, p->dict_len);
    char *text = g_malloc((gsize)text_len + 1);
    z.next_in = (Bytef *)packed;
    z.avail_in = packed_len;
    z.next_out = (Bytef *)text;
    z.avail_out = text_len;
    int rc = inflate(&z, Z_FINISH);
    gboolean ok = rc == Z_STREAM_END && z.total_out == text_len;
    inflateEnd(&z);
    if (!ok) {
        /* our own bytes, written by vmig_kube_pack: this is memory corruption */
        g_critical("informer cache: a packed object does not unpack (zlib %d)", rc);
        g_free(text);
        return NULL;
    }
    text[text_len] = '\0';
    return text;
}
