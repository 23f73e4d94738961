/* log.c - the GLib log writer for vmigrated programs (see vmig/log.h). */
#include "vmig/log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const vmig_log_format_names[] = {
    [VMIG_LOG_FORMAT_TEXT] = "text",
    [VMIG_LOG_FORMAT_JSON] = "json",
};

static VmigLogFormat vmig_log_current_format = VMIG_LOG_FORMAT_TEXT;
static gboolean vmig_log_verbose = FALSE;

gboolean
vmig_log_format_from_string(const char *name, VmigLogFormat *out)
{
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_log_format_names); i++) {
        if (name && g_strcmp0(name, vmig_log_format_names[i]) == 0) {
            *out = (VmigLogFormat)i;
            return TRUE;
        }
    }
    return FALSE;
}

const char *
vmig_log_format_to_string(VmigLogFormat format)
{
    if ((gsize)format >= G_N_ELEMENTS(vmig_log_format_names))
        return "unknown";
    return vmig_log_format_names[format];
}

static const char *
vmig_log_level_name(GLogLevelFlags level)
{
    if (level & G_LOG_LEVEL_ERROR)
        return "error";
    if (level & G_LOG_LEVEL_CRITICAL)
        return "critical";
    if (level & G_LOG_LEVEL_WARNING)
        return "warning";
    if (level & G_LOG_LEVEL_MESSAGE)
        return "notice";
    if (level & G_LOG_LEVEL_INFO)
        return "info";
    return "debug";
}

/* JSON string escaping per RFC 8259; invalid UTF-8 bytes become \u00XX so the
 * line always parses. */
static void
vmig_log_append_json_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    const char *p = s ? s : "";
    while (*p) {
        gunichar c = g_utf8_get_char_validated(p, -1);
        if (c == (gunichar)-1 || c == (gunichar)-2) {
            g_string_append_printf(out, "\\u%04x", (unsigned char)*p);
            p++;
            continue;
        }
        const char *next = g_utf8_next_char(p);
        switch (c) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (c < 0x20)
                g_string_append_printf(out, "\\u%04x", c);
            else
                g_string_append_len(out, p, next - p);
        }
        p = next;
    }
    g_string_append_c(out, '"');
}

char *
vmig_log_format_line(VmigLogFormat format, GLogLevelFlags level, const char *domain,
                     const char *message, gint64 timestamp_us)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(timestamp_us / G_USEC_PER_SEC);
    g_autofree char *base = dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S") : g_strdup("?");
    g_autofree char *ts =
        g_strdup_printf("%s.%03dZ", base, (int)((timestamp_us % G_USEC_PER_SEC) / 1000));
    GString *out = g_string_new(NULL);

    if (format == VMIG_LOG_FORMAT_JSON) {
        g_string_append(out, "{\"ts\":");
        vmig_log_append_json_string(out, ts);
        g_string_append(out, ",\"level\":");
        vmig_log_append_json_string(out, vmig_log_level_name(level));
        g_string_append(out, ",\"domain\":");
        vmig_log_append_json_string(out, domain ? domain : "");
        g_string_append(out, ",\"msg\":");
        vmig_log_append_json_string(out, message);
        g_string_append_c(out, '}');
    } else {
        g_string_append_printf(out, "%s %s %s: %s", ts, vmig_log_level_name(level),
                               domain ? domain : "vmig", message ? message : "");
    }
    return g_string_free(out, FALSE);
}

static GLogWriterOutput
vmig_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
    const char *domain = NULL;
    const char *message = NULL;

    if (!vmig_log_verbose && (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) &&
        !(level &
          ~(G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION)))
        return G_LOG_WRITER_HANDLED;

    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0)
            domain = fields[i].value;
        else if (strcmp(fields[i].key, "MESSAGE") == 0)
            message = fields[i].value;
    }
    g_autofree char *line =
        vmig_log_format_line(vmig_log_current_format, level, domain, message, g_get_real_time());
    /* One write per line so lines from threads never interleave. */
    g_autofree char *with_nl = g_strconcat(line, "\n", NULL);
    gsize len = strlen(with_nl);
    gssize w = write(STDERR_FILENO, with_nl, len);
    return w == (gssize)len ? G_LOG_WRITER_HANDLED : G_LOG_WRITER_UNHANDLED;
}

void
vmig_log_setup(VmigLogFormat format, gboolean verbose)
{
    vmig_log_current_format = format;
    vmig_log_verbose = verbose;
    g_log_set_writer_func(vmig_log_writer, NULL, NULL);
}
