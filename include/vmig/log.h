/* vmig/log.h - structured logging for every vmigrated program.
 *
 * Modules log through GLib (g_message, g_warning, g_info, g_debug with their own
 * G_LOG_DOMAIN, e.g. "vmig-kube") and name the object they talk about
 * ("ns1/vm1", "node-a") in the message. This module installs the writer that
 * turns those records into one line each on stderr, as text or as JSON, so a
 * node agent's log can be read by people and by log collectors alike.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Output format of log lines. */
typedef enum {
    VMIG_LOG_FORMAT_TEXT, /* "2026-11-29T19:03:02.123Z warning vmig-kube: message" */
    VMIG_LOG_FORMAT_JSON, /* {"ts":"...","level":"warning","domain":"vmig-kube","msg":"..."} */
} VmigLogFormat;

/**
 * vmig_log_format_from_string:
 * @name: "text" or "json"
 * @out: (out): the format
 *
 * Returns: TRUE when @name names a format; FALSE (and @out untouched) otherwise.
 */
gboolean vmig_log_format_from_string(const char *name, VmigLogFormat *out);

/**
 * vmig_log_format_to_string:
 * Returns: (transfer none): the name of @format ("text", "json").
 */
const char *vmig_log_format_to_string(VmigLogFormat format);

/**
 * vmig_log_setup:
 * @format: how lines are written
 * @verbose: also write debug and info records (otherwise message and above)
 *
 * Installs the process-wide GLib log writer (g_log_set_writer_func). Call once,
 * from main(), before the first log record.
 */
void vmig_log_setup(VmigLogFormat format, gboolean verbose);

/**
 * vmig_log_format_line:
 * @format: text or JSON
 * @level: GLib level of the record
 * @domain: (nullable): the log domain
 * @message: the message (UTF-8; invalid bytes are escaped in JSON)
 * @timestamp_us: wall-clock time in microseconds since the epoch
 *
 * Formats one log line without the trailing newline; the writer uses it and
 * tests call it directly.
 *
 * Returns: (transfer full): the line; free with g_free().
 */
char *vmig_log_format_line(VmigLogFormat format, GLogLevelFlags level, const char *domain,
                           const char *message, gint64 timestamp_us);

G_END_DECLS
