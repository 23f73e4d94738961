/* prom-check.h - a strict checker of the Prometheus text exposition format 0.0.4 for tests.
 *
 * Debian's prometheus package (promtool) is ~100 MB with a web UI; this checker enforces the
 * format's rules instead: HELP/TYPE syntax and escapes, TYPE before the family's samples and
 * at most once, families not interleaved, metric and label name syntax, label value escapes,
 * no duplicate label names or series, values that parse as floats, counters >= 0, a final
 * newline and no blank lines. */
#pragma once

#include <glib.h>

/* Returns: (transfer full) (nullable): NULL when @text is valid, else "line N: what". */
char *prom_check(const char *text);
