/* prom-check.c - strict check of the Prometheus text format 0.0.4 (see prom-check.h). */
#include "prom-check.h"

#include <string.h>

static gboolean
name_ok(const char *s, gsize n, gboolean label)
{
    if (n == 0)
        return FALSE;
    for (gsize i = 0; i < n; i++) {
        char c = s[i];
        if (!(g_ascii_isalpha(c) || c == '_' || (!label && c == ':') ||
              (i > 0 && g_ascii_isdigit(c))))
            return FALSE;
    }
    return TRUE;
}

static gboolean
value_ok(const char *s, double *out)
{
    if (strcmp(s, "NaN") == 0 || strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0) {
        *out = s[0] == 'N' ? 0.0 / 0.0 : s[0] == '+' ? 1.0 / 0.0 : -1.0 / 0.0;
        return TRUE;
    }
    if (!*s || g_ascii_isspace(*s))
        return FALSE;
    char *end = NULL;
    *out = g_ascii_strtod(s, &end);
    return end && *end == '\0';
}

/* Escapes allowed: \\ and \n (and \" in label values). */
static gboolean
escapes_ok(const char *s, gsize n, gboolean quote)
{
    for (gsize i = 0; i < n; i++) {
        if (s[i] == '\n')
            return FALSE;
        if (s[i] == '\\') {
            if (i + 1 >= n)
                return FALSE;
            char e = s[++i];
            if (e != '\\' && e != 'n' && !(quote && e == '"'))
                return FALSE;
        }
    }
    return TRUE;
}

#define FAIL(fmt, ...)                                                                             \
    do {                                                                                           \
        err = g_strdup_printf("line %u: " fmt, lineno, __VA_ARGS__);                               \
        goto out;                                                                                  \
    } while (0)

char *
prom_check(const char *text)
{
    char *err = NULL;
    guint lineno = 0;
    g_autoptr(GHashTable) typed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GHashTable) helped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GHashTable) closed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GHashTable) series = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *current = NULL; /* family whose lines we are in */
    if (!text || !*text)
        return NULL; /* an empty exposition is valid */
    if (text[strlen(text) - 1] != '\n')
        return g_strdup("the text does not end with a newline");
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    guint n = g_strv_length(lines) - 1; /* the last element is after the final newline */
    for (guint i = 0; i < n; i++) {
        const char *l = lines[i];
        lineno = i + 1;
        if (!*l)
            FAIL("%s", "blank line");
        const char *fam_name;
        gsize fam_len;
        if (l[0] == '#') {
            gboolean help = g_str_has_prefix(l, "# HELP ");
            gboolean type = g_str_has_prefix(l, "# TYPE ");
            if (!help && !type)
                continue; /* plain comment */
            const char *nm = l + 7;
            const char *sp = strchr(nm, ' ');
            if (!sp)
                FAIL("%s without text", help ? "HELP" : "TYPE");
            if (!name_ok(nm, sp - nm, FALSE))
                FAIL("bad metric name in %s", help ? "HELP" : "TYPE");
            g_autofree char *name = g_strndup(nm, sp - nm);
            if (help) {
                if (!escapes_ok(sp + 1, strlen(sp + 1), FALSE))
                    FAIL("bad escape in HELP of %s", name);
                if (!g_hash_table_add(helped, g_strdup(name)))
                    FAIL("second HELP for %s", name);
            } else {
                static const char *const types[] = {"counter", "gauge", "histogram", "summary",
                                                    "untyped"};
                gboolean known = FALSE;
                for (gsize t = 0; t < G_N_ELEMENTS(types); t++)
                    known |= strcmp(sp + 1, types[t]) == 0;
                if (!known)
                    FAIL("unknown type '%s'", sp + 1);
                if (g_hash_table_contains(typed, name))
                    FAIL("second TYPE for %s", name);
                if (g_hash_table_contains(series, name) || g_hash_table_contains(closed, name))
                    FAIL("TYPE for %s after its samples", name);
                g_hash_table_insert(typed, g_strdup(name), g_strdup(sp + 1));
            }
            fam_name = nm;
            fam_len = sp - nm;
        } else {
            /* sample: name{labels} value [timestamp] */
            const char *p = l;
            while (*p && (g_ascii_isalnum(*p) || *p == '_' || *p == ':'))
                p++;
            if (!name_ok(l, p - l, FALSE))
                FAIL("%s", "bad metric name");
            g_autofree char *name = g_strndup(l, p - l);
            g_autoptr(GHashTable) lnames = g_hash_table_new(g_str_hash, g_str_equal);
            g_autoptr(GPtrArray) hold = g_ptr_array_new_with_free_func(g_free);
            if (*p == '{') {
                p++;
                while (*p != '}') {
                    const char *ln = p;
                    while (*p && (g_ascii_isalnum(*p) || *p == '_'))
                        p++;
                    if (!name_ok(ln, p - ln, TRUE))
                        FAIL("bad label name in %s", name);
                    char *lname = g_strndup(ln, p - ln);
                    g_ptr_array_add(hold, lname);
                    if (!g_hash_table_add(lnames, lname))
                        FAIL("label %s twice in %s", lname, name);
                    if (p[0] != '=' || p[1] != '"')
                        FAIL("label %s of %s: expected =\"", lname, name);
                    p += 2;
                    const char *vs = p;
                    while (*p && *p != '"') {
                        if (*p == '\\' && p[1])
                            p++;
                        p++;
                    }
                    if (*p != '"')
                        FAIL("unterminated label value in %s", name);
                    if (!escapes_ok(vs, p - vs, TRUE))
                        FAIL("bad escape in label %s of %s", lname, name);
                    p++;
                    if (*p == ',')
                        p++;
                    else if (*p != '}')
                        FAIL("expected , or } in labels of %s", name);
                }
                p++;
            }
            g_autofree char *key = g_strndup(l, p - l);
            if (*p != ' ')
                FAIL("expected one space before the value of %s", name);
            p++;
            g_auto(GStrv) rest = g_strsplit(p, " ", -1);
            guint nr = g_strv_length(rest);
            double v;
            if (nr < 1 || nr > 2 || !value_ok(rest[0], &v))
                FAIL("value '%s' of %s is not a float [timestamp]", p, name);
            if (nr == 2) {
                gint64 ts;
                if (!g_ascii_string_to_signed(rest[1], 10, G_MININT64, G_MAXINT64, &ts, NULL))
                    FAIL("timestamp '%s' of %s is not an integer", rest[1], name);
            }
            const char *type = g_hash_table_lookup(typed, name);
            if (type && strcmp(type, "counter") == 0 && !(v >= 0))
                FAIL("counter %s is %s", name, rest[0]);
            if (!g_hash_table_add(series, g_steal_pointer(&key)))
                FAIL("duplicate series in %s", name);
            g_hash_table_add(series, g_strdup(name));
            fam_name = l;
            fam_len = strlen(name);
        }
        /* a family's lines are contiguous */
        g_autofree char *fam = g_strndup(fam_name, fam_len);
        if (g_strcmp0(fam, current) != 0) {
            if (g_hash_table_contains(closed, fam))
                FAIL("lines of %s are not contiguous", fam);
            if (current)
                g_hash_table_add(closed, g_strdup(current));
            g_free(current);
            current = g_strdup(fam);
        }
    }
out:
    return err;
}
