/* names.c - DNS-1123 names and UUIDs: the strings that may end up in file paths, socket names
 * and libvirt calls are checked here first. */
#include "model-private.h"

#include <string.h>

static gboolean
is_alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One DNS-1123 label of @len bytes at @s. */
static gboolean
label_ok(const char *s, gsize len)
{
    if (len == 0 || len > 63)
        return FALSE;
    if (!is_alnum_lower(s[0]) || !is_alnum_lower(s[len - 1]))
        return FALSE;
    for (gsize i = 1; i + 1 < len; i++) {
        if (!is_alnum_lower(s[i]) && s[i] != '-')
            return FALSE;
    }
    return TRUE;
}

/* Printable rendering of a refused value (it may hold control bytes or be huge). */
static char *
shown(const char *value)
{
    gsize len = strlen(value);
    g_autofree char *cut = g_strndup(value, MIN(len, 80));
    char *esc = g_strescape(cut, NULL);
    if (len > 80) {
        char *more = g_strdup_printf("%s...(%zu bytes)", esc, len);
        g_free(esc);
        return more;
    }
    return esc;
}

gboolean
vmig_model_validate_name(const char *value, const char *field, GError **error)
{
    if (!value || !*value) {
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_INVALID, "%s: empty name", field);
        return FALSE;
    }
    gsize len = strlen(value);
    gboolean ok = len <= 253;
    const char *p = value;
    while (ok) {
        const char *dot = strchr(p, '.');
        gsize l = dot ? (gsize)(dot - p) : strlen(p);
        ok = label_ok(p, l);
        if (!dot)
            break;
        p = dot + 1;
    }
    if (!ok) {
        g_autofree char *v = shown(value);
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_INVALID,
                    "%s: \"%s\" is not a DNS-1123 subdomain (lowercase letters, digits, '-' and "
                    "'.', at most 253 characters, starting and ending with a letter or digit)",
                    field, v);
    }
    return ok;
}

gboolean
vmig_model_validate_namespace(const char *value, const char *field, GError **error)
{
    if (!value || !*value) {
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_INVALID, "%s: empty namespace",
                    field);
        return FALSE;
    }
    if (!label_ok(value, strlen(value))) {
        g_autofree char *v = shown(value);
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_INVALID,
                    "%s: \"%s\" is not a DNS-1123 label (lowercase letters, digits and '-', at "
                    "most 63 characters, starting and ending with a letter or digit)",
                    field, v);
        return FALSE;
    }
    return TRUE;
}

gboolean
vmig_model_validate_uid(const char *value, const char *field, GError **error)
{
    static const int groups[] = {8, 4, 4, 4, 12};
    gboolean ok = value != NULL && strlen(value) == 36;
    const char *p = value;
    for (gsize g = 0; ok && g < G_N_ELEMENTS(groups); g++) {
        for (int i = 0; i < groups[g]; i++, p++) {
            if (!g_ascii_isxdigit(*p)) {
                ok = FALSE;
                break;
            }
        }
        if (ok && g + 1 < G_N_ELEMENTS(groups)) {
            if (*p != '-')
                ok = FALSE;
            p++;
        }
    }
    if (!ok) {
        g_autofree char *v = shown(value ? value : "");
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_INVALID,
                    "%s: \"%s\" is not a UUID (8-4-4-4-12 hex digits)", field, v);
    }
    return ok;
}
