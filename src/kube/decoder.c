/* decoder.c - the watch-stream decoder: bytes in, events out, split-agnostic (vmig/kube.h).
 *
 * Frames by JSON structure (brace depth outside strings), not by newlines or reads, so an
 * event may arrive one byte at a time, several per read, or with a UTF-8 character cut in two;
 * each byte is scanned exactly once. Only a complete top-level object is ever parsed. */
#include "kube-private.h"

#include <string.h>

struct _VmigKubeDecoder {
    GString *buf;    /* bytes of the event in progress that came in earlier feeds */
    gsize max_bytes; /* limit for one event */
    guint depth;     /* nesting depth; 0 = between events */
    gboolean in_string;
    gboolean escape;
};

static const char *const vmig_kube_event_type_names[] = {
    [VMIG_KUBE_EVENT_ADDED] = "ADDED",     [VMIG_KUBE_EVENT_MODIFIED] = "MODIFIED",
    [VMIG_KUBE_EVENT_DELETED] = "DELETED", [VMIG_KUBE_EVENT_BOOKMARK] = "BOOKMARK",
    [VMIG_KUBE_EVENT_ERROR] = "ERROR",
};

const char *
vmig_kube_event_type_to_string(VmigKubeEventType type)
{
    if ((gsize)type >= G_N_ELEMENTS(vmig_kube_event_type_names))
        return "UNKNOWN";
    return vmig_kube_event_type_names[type];
}

gboolean
vmig_kube_event_type_from_string(const char *name, VmigKubeEventType *out)
{
    for (gsize i = 0; name && i < G_N_ELEMENTS(vmig_kube_event_type_names); i++) {
        if (strcmp(name, vmig_kube_event_type_names[i]) == 0) {
            *out = (VmigKubeEventType)i;
            return TRUE;
        }
    }
    return FALSE;
}

VmigKubeDecoder *
vmig_kube_decoder_new(gsize max_event_bytes)
{
    VmigKubeDecoder *d = g_new0(VmigKubeDecoder, 1);
    d->buf = g_string_new(NULL);
    d->max_bytes = max_event_bytes ? max_event_bytes : VMIG_KUBE_DEFAULT_MAX_EVENT_BYTES;
    return d;
}

void
vmig_kube_decoder_free(VmigKubeDecoder *d)
{
    if (!d)
        return;
    g_string_free(d->buf, TRUE);
    g_free(d);
}

void
vmig_kube_decoder_reset(VmigKubeDecoder *d)
{
    g_string_truncate(d->buf, 0);
    d->depth = 0;
    d->in_string = FALSE;
    d->escape = FALSE;
}

gsize
vmig_kube_decoder_pending(const VmigKubeDecoder *d)
{
    return d->depth ? d->buf->len : 0;
}

/* Validates one complete event and hands it over. */
static gboolean
vmig_kube_decoder_emit(VmigKubeDecoder *d, const char *text, gsize len, VmigKubeRawEventFunc func,
                       gpointer user_data, gboolean *stop, GError **error)
{
    g_autoptr(GError) perr = NULL;
    VmigKubeRawEvent ev = {0};
    gboolean ok = FALSE;
    if (!vmig_kube_json_scan_event(text, len, &ev, &perr)) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_DECODE,
                    "watch event (%zu bytes) is not JSON: %s", len, perr->message);
        goto out;
    }
    if (!ev.type_name) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_DECODE,
                    "watch event: field 'type' missing or not a string");
        goto out;
    }
    if (!vmig_kube_event_type_from_string(ev.type_name, &ev.type)) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_DECODE,
                    "watch event: unknown type '%s'", ev.type_name);
        goto out;
    }
    if (!ev.object) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_DECODE,
                    "watch event %s: field 'object' missing or not an object", ev.type_name);
        goto out;
    }
    if (!func(&ev, user_data))
        *stop = TRUE;
    ok = TRUE;
out:
    vmig_kube_raw_event_clear(&ev);
    return ok;
}

typedef struct {
    VmigKubeEventFunc func;
    gpointer user_data;
    GError **error;
    gboolean failed;
} VmigKubeTreeAdapter;

static gboolean
vmig_kube_decoder_tree(const VmigKubeRawEvent *ev, gpointer data)
{
    VmigKubeTreeAdapter *a = data;
    /* already validated by the scan, so this cannot fail */
    g_autoptr(JsonNode) obj = vmig_kube_json_parse(ev->object, ev->object_len, a->error);
    if (!obj) {
        a->failed = TRUE;
        return FALSE;
    }
    return a->func(ev->type, obj, a->user_data);
}

gboolean
vmig_kube_decoder_feed(VmigKubeDecoder *d, const char *data, gsize len, VmigKubeEventFunc func,
                       gpointer user_data, GError **error)
{
    VmigKubeTreeAdapter a = {func, user_data, error, FALSE};
    return vmig_kube_decoder_feed_raw(d, data, len, vmig_kube_decoder_tree, &a, error) && !a.failed;
}

gboolean
vmig_kube_decoder_feed_raw(VmigKubeDecoder *d, const char *data, gsize len,
                           VmigKubeRawEventFunc func, gpointer user_data, GError **error)
{
    gsize start = 0; /* where the current event begins in @data (when it began in this feed) */
    gboolean stop = FALSE;

    for (gsize i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (d->depth == 0) {
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
                continue;
            if (c != '{') {
                g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_DECODE,
                            "watch stream: unexpected byte 0x%02x between events", c);
                return FALSE;
            }
            d->depth = 1;
            start = i;
            continue;
        }
        if (d->in_string) {
            if (d->escape)
                d->escape = FALSE;
            else if (c == '\\')
                d->escape = TRUE;
            else if (c == '"')
                d->in_string = FALSE;
            continue;
        }
        switch (c) {
        case '"':
            d->in_string = TRUE;
            break;
        case '{':
        case '[':
            d->depth++;
            break;
        case '}':
        case ']':
            if (--d->depth == 0) {
                gboolean ok;
                gsize n = i + 1 - start;
                if (d->buf->len == 0) {
                    /* the whole event is in this feed: parse in place, no copy */
                    if (n > d->max_bytes)
                        goto too_large;
                    ok = vmig_kube_decoder_emit(d, data + start, n, func, user_data, &stop, error);
                } else {
                    if (d->buf->len + n > d->max_bytes)
                        goto too_large;
                    g_string_append_len(d->buf, data + start, (gssize)n);
                    ok = vmig_kube_decoder_emit(d, d->buf->str, d->buf->len, func, user_data, &stop,
                                                error);
                    g_string_truncate(d->buf, 0);
                }
                if (!ok)
                    return FALSE;
                if (stop)
                    return FALSE;
            }
            break;
        default:
            break;
        }
    }
    if (d->depth > 0) {
        gsize n = len - start;
        if (d->buf->len + n > d->max_bytes)
            goto too_large;
        g_string_append_len(d->buf, data + start, (gssize)n);
    }
    return TRUE;

too_large:
    g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_TOO_LARGE,
                "watch event larger than the limit of %zu bytes", d->max_bytes);
    vmig_kube_decoder_reset(d);
    return FALSE;
}
