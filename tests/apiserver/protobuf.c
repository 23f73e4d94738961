/* protobuf.c - just enough of Kubernetes' protobuf encoding to accept what typed clients
 * (kubectl create namespace) POST: the "k8s\0" envelope, TypeMeta and the ObjectMeta fields
 * name, generateName, namespace, labels, annotations and finalizers. Spec and status of such
 * requests are dropped (documented in docs/test-apiserver.md). */
#include "apiserver-private.h"

#include <string.h>

typedef struct {
    const guint8 *p, *end;
} Buf;

static gboolean
read_varint(Buf *b, guint64 *out)
{
    guint64 v = 0;
    for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
        guint8 c = *b->p++;
        v |= (guint64)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return TRUE;
        }
    }
    return FALSE;
}

/* Reads one field: its number and, for length-delimited fields, the bytes. */
static gboolean
read_field(Buf *b, guint *field, Buf *bytes, guint64 *varint)
{
    guint64 key;
    if (!read_varint(b, &key))
        return FALSE;
    *field = (guint)(key >> 3);
    switch (key & 7) {
    case 0:
        return read_varint(b, varint);
    case 2: {
        guint64 len;
        if (!read_varint(b, &len) || len > (guint64)(b->end - b->p))
            return FALSE;
        bytes->p = b->p;
        bytes->end = b->p + len;
        b->p += len;
        return TRUE;
    }
    case 1:
        if (b->end - b->p < 8)
            return FALSE;
        b->p += 8;
        return TRUE;
    case 5:
        if (b->end - b->p < 4)
            return FALSE;
        b->p += 4;
        return TRUE;
    default:
        return FALSE;
    }
}

static char *
buf_str(Buf *b)
{
    return g_strndup((const char *)b->p, b->end - b->p);
}

static gboolean
read_map_entry(Buf *b, JsonObject *into)
{
    g_autofree char *k = NULL, *v = NULL;
    while (b->p < b->end) {
        guint f;
        Buf s = {0};
        guint64 x;
        if (!read_field(b, &f, &s, &x))
            return FALSE;
        if (f == 1 && s.p)
            k = buf_str(&s);
        else if (f == 2 && s.p)
            v = buf_str(&s);
    }
    if (k)
        json_object_set_string_member(into, k, v ? v : "");
    return TRUE;
}

static JsonObject *
read_object_meta(Buf *b)
{
    g_autoptr(JsonObject) md = json_object_new();
    JsonObject *labels = json_object_new(), *annotations = json_object_new();
    JsonArray *finalizers = json_array_new();
    json_object_set_object_member(md, "labels", labels);
    json_object_set_object_member(md, "annotations", annotations);
    json_object_set_array_member(md, "finalizers", finalizers);
    static const char *const strings[] = {
        [1] = "name", [2] = "generateName", [3] = "namespace", [6] = "resourceVersion"};
    while (b->p < b->end) {
        guint f;
        Buf s = {0};
        guint64 x;
        if (!read_field(b, &f, &s, &x))
            return NULL;
        if (!s.p)
            continue;
        if (f < G_N_ELEMENTS(strings) && strings[f] && s.end > s.p) {
            g_autofree char *v = buf_str(&s);
            json_object_set_string_member(md, strings[f], v);
        } else if (f == 11 || f == 12) {
            if (!read_map_entry(&s, f == 11 ? labels : annotations))
                return NULL;
        } else if (f == 14) {
            g_autofree char *v = buf_str(&s);
            json_array_add_string_element(finalizers, v);
        }
    }
    if (json_object_get_size(labels) == 0)
        json_object_remove_member(md, "labels");
    if (json_object_get_size(annotations) == 0)
        json_object_remove_member(md, "annotations");
    if (json_array_get_length(finalizers) == 0)
        json_object_remove_member(md, "finalizers");
    return g_steal_pointer(&md);
}

JsonNode *
vmig_test_apiserver_protobuf_decode(const guint8 *data, gsize len, char **error_message)
{
    if (len < 4 || memcmp(data, "k8s\0", 4) != 0) {
        *error_message = g_strdup("protobuf body without the k8s envelope");
        return NULL;
    }
    Buf b = {data + 4, data + len};
    g_autofree char *api_version = NULL, *kind = NULL;
    Buf raw = {0};
    while (b.p < b.end) {
        guint f;
        Buf s = {0};
        guint64 x;
        if (!read_field(&b, &f, &s, &x))
            goto bad;
        if (f == 1 && s.p) {
            while (s.p < s.end) {
                guint tf;
                Buf ts = {0};
                if (!read_field(&s, &tf, &ts, &x))
                    goto bad;
                if (tf == 1 && ts.p)
                    api_version = buf_str(&ts);
                else if (tf == 2 && ts.p)
                    kind = buf_str(&ts);
            }
        } else if (f == 2 && s.p) {
            raw = s;
        }
    }
    JsonObject *o = json_object_new();
    if (api_version)
        json_object_set_string_member(o, "apiVersion", api_version);
    if (kind)
        json_object_set_string_member(o, "kind", kind);
    while (raw.p && raw.p < raw.end) {
        guint f;
        Buf s = {0};
        guint64 x;
        if (!read_field(&raw, &f, &s, &x)) {
            json_object_unref(o);
            goto bad;
        }
        if (f == 1 && s.p) {
            JsonObject *md = read_object_meta(&s);
            if (!md) {
                json_object_unref(o);
                goto bad;
            }
            json_object_set_object_member(o, "metadata", md);
        }
    }
    return vmig_test_apiserver_node_take_object(o);
bad:
    *error_message = g_strdup("malformed protobuf body");
    return NULL;
}
