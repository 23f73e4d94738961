/* selector.c - label selectors (=, ==, !=, in, notin, exists, !key) and field selectors
 * limited, per kind, to the fields kube-apiserver indexes. */
#include "apiserver-private.h"

#include <string.h>

typedef enum { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOT_EXISTS } Op;

typedef struct {
    char *key;
    Op op;
    GStrv values;
} Requirement;

struct _VmigTestApiserverSelector {
    GArray *reqs; /* Requirement */
};

static void
requirement_clear(gpointer p)
{
    Requirement *r = p;
    g_free(r->key);
    g_strfreev(r->values);
}

static VmigTestApiserverSelector *
selector_new(void)
{
    VmigTestApiserverSelector *s = g_new0(VmigTestApiserverSelector, 1);
    s->reqs = g_array_new(FALSE, TRUE, sizeof(Requirement));
    g_array_set_clear_func(s->reqs, requirement_clear);
    return s;
}

void
vmig_test_apiserver_selector_free(VmigTestApiserverSelector *s)
{
    if (!s)
        return;
    g_array_unref(s->reqs);
    g_free(s);
}

static gboolean
valid_label_part(const char *s, gboolean allow_empty)
{
    if (!*s)
        return allow_empty;
    if (strlen(s) > 253)
        return FALSE;
    for (const char *p = s; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.' && *p != '/')
            return FALSE;
    return TRUE;
}

/* Splits at commas that are not inside parentheses. */
static GPtrArray *
split_terms(const char *text)
{
    GPtrArray *terms = g_ptr_array_new_with_free_func(g_free);
    int depth = 0;
    const char *start = text;
    for (const char *p = text;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        if (*p == '\0' || (*p == ',' && depth == 0)) {
            g_ptr_array_add(terms, g_strstrip(g_strndup(start, p - start)));
            if (!*p)
                break;
            start = p + 1;
        }
    }
    return terms;
}

VmigTestApiserverSelector *
vmig_test_apiserver_label_selector_parse(const char *text, char **error_message)
{
    g_autoptr(GPtrArray) terms = split_terms(text ? text : "");
    VmigTestApiserverSelector *s = selector_new();
    for (guint i = 0; i < terms->len; i++) {
        char *t = g_ptr_array_index(terms, i);
        if (!*t) {
            if (terms->len == 1)
                break;
            goto bad;
        }
        Requirement r = {0};
        char *sp;
        if (t[0] == '!') {
            r.key = g_strstrip(g_strdup(t + 1));
            r.op = OP_NOT_EXISTS;
        } else if ((sp = strstr(t, "!="))) {
            r.key = g_strstrip(g_strndup(t, sp - t));
            r.op = OP_NE;
            r.values = g_new0(char *, 2);
            r.values[0] = g_strstrip(g_strdup(sp + 2));
        } else if ((sp = strchr(t, '='))) {
            r.key = g_strstrip(g_strndup(t, sp - t));
            r.op = OP_EQ;
            r.values = g_new0(char *, 2);
            r.values[0] = g_strstrip(g_strdup(sp + (sp[1] == '=' ? 2 : 1)));
        } else if ((sp = strchr(t, '('))) {
            g_auto(GStrv) words = g_strsplit_set(t, " \t", -1);
            char *key = NULL, *verb = NULL;
            for (char **w = words; *w; w++) {
                if (!**w)
                    continue;
                if (!key)
                    key = *w;
                else if (!verb)
                    verb = *w;
            }
            const char *close = strrchr(t, ')');
            if (!key || !verb || !close || close[1] ||
                (!g_str_has_prefix(verb, "in") && !g_str_has_prefix(verb, "notin")))
                goto bad_req;
            r.op = g_str_has_prefix(verb, "notin") ? OP_NOTIN : OP_IN;
            r.key = g_strdup(key);
            g_autofree char *inner = g_strndup(sp + 1, close - sp - 1);
            r.values = g_strsplit(inner, ",", -1);
            for (char **v = r.values; *v; v++) {
                g_strstrip(*v);
                if (!valid_label_part(*v, TRUE))
                    goto bad_req;
            }
        } else {
            r.key = g_strdup(t);
            r.op = OP_EXISTS;
        }
        if (!valid_label_part(r.key, FALSE) ||
            (r.values && r.values[0] && r.op != OP_IN && r.op != OP_NOTIN &&
             !valid_label_part(r.values[0], TRUE)))
            goto bad_req;
        g_array_append_val(s->reqs, r);
        continue;
    bad_req:
        requirement_clear(&r);
    bad:
        *error_message = g_strdup_printf("unable to parse requirement: found '%s', expected: "
                                         "identifier, !=, ==, =, in, notin",
                                         t);
        vmig_test_apiserver_selector_free(s);
        return NULL;
    }
    return s;
}

static gboolean
requirement_matches(const Requirement *r, const char *value)
{
    switch (r->op) {
    case OP_EXISTS:
        return value != NULL;
    case OP_NOT_EXISTS:
        return value == NULL;
    case OP_EQ:
        return value && g_str_equal(value, r->values[0]);
    case OP_NE:
        return !value || !g_str_equal(value, r->values[0]);
    case OP_IN:
        return value && g_strv_contains((const char *const *)r->values, value);
    case OP_NOTIN:
        return !value || !g_strv_contains((const char *const *)r->values, value);
    }
    return FALSE;
}

gboolean
vmig_test_apiserver_selector_matches_labels(const VmigTestApiserverSelector *s, JsonObject *obj)
{
    if (!s)
        return TRUE;
    JsonObject *labels =
        vmig_test_apiserver_json_obj(vmig_test_apiserver_json_obj(obj, "metadata"), "labels");
    for (guint i = 0; i < s->reqs->len; i++) {
        const Requirement *r = &g_array_index(s->reqs, Requirement, i);
        if (!requirement_matches(r, vmig_test_apiserver_json_str(labels, r->key)))
            return FALSE;
    }
    return TRUE;
}

VmigTestApiserverSelector *
vmig_test_apiserver_field_selector_parse(const VmigTestApiserverResource *res, const char *text,
                                         char **error_message)
{
    g_autoptr(GPtrArray) terms = split_terms(text ? text : "");
    VmigTestApiserverSelector *s = selector_new();
    for (guint i = 0; i < terms->len; i++) {
        char *t = g_ptr_array_index(terms, i);
        if (!*t && terms->len == 1)
            break;
        Requirement r = {0};
        char *sp;
        if ((sp = strstr(t, "!="))) {
            r.op = OP_NE;
            r.key = g_strstrip(g_strndup(t, sp - t));
            sp += 2;
        } else if ((sp = strchr(t, '='))) {
            r.op = OP_EQ;
            r.key = g_strstrip(g_strndup(t, sp - t));
            sp += sp[1] == '=' ? 2 : 1;
        } else {
            *error_message =
                g_strdup_printf("invalid selector: '%s'; can't understand '%s'", text, t);
            vmig_test_apiserver_selector_free(s);
            return NULL;
        }
        r.values = g_new0(char *, 2);
        r.values[0] = g_strstrip(g_strdup(sp));
        gboolean known =
            g_str_equal(r.key, "metadata.name") || g_str_equal(r.key, "metadata.namespace") ||
            (res->field_labels && g_strv_contains((const char *const *)res->field_labels, r.key));
        if (!known) {
            *error_message = g_strdup_printf("field label not supported: %s", r.key);
            requirement_clear(&r);
            vmig_test_apiserver_selector_free(s);
            return NULL;
        }
        g_array_append_val(s->reqs, r);
    }
    return s;
}

/* The string kube-apiserver indexes for a field: booleans as "true"/"false", absent as "". */
static char *
field_value(JsonObject *obj, const char *key)
{
    if (g_str_equal(key, "source"))
        key = "source.component";
    g_auto(GStrv) parts = g_strsplit(key, ".", -1);
    JsonObject *o = obj;
    for (guint i = 0; parts[i]; i++) {
        if (!o || !json_object_has_member(o, parts[i]))
            break;
        JsonNode *n = json_object_get_member(o, parts[i]);
        if (parts[i + 1]) {
            o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
            continue;
        }
        if (!JSON_NODE_HOLDS_VALUE(n))
            break;
        if (json_node_get_value_type(n) == G_TYPE_BOOLEAN)
            return g_strdup(json_node_get_boolean(n) ? "true" : "false");
        if (json_node_get_value_type(n) == G_TYPE_STRING)
            return g_strdup(json_node_get_string(n));
        if (json_node_get_value_type(n) == G_TYPE_INT64)
            return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(n));
        break;
    }
    if (g_str_equal(key, "spec.unschedulable") || g_str_equal(key, "spec.hostNetwork"))
        return g_strdup("false");
    return g_strdup("");
}

gboolean
vmig_test_apiserver_selector_matches_fields(const VmigTestApiserverSelector *s, JsonObject *obj)
{
    if (!s)
        return TRUE;
    for (guint i = 0; i < s->reqs->len; i++) {
        const Requirement *r = &g_array_index(s->reqs, Requirement, i);
        g_autofree char *v = field_value(obj, r->key);
        if (!requirement_matches(r, v))
            return FALSE;
    }
    return TRUE;
}
