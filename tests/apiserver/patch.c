/* patch.c - JSON merge patch (RFC 7386) and JSON patch (RFC 6902) on json-glib nodes. */
#include "apiserver-private.h"

#include <stdlib.h>
#include <string.h>

/* json_node_copy() shares objects and arrays; stored objects must never be changed in place,
 * so every edit starts from a deep copy. */
JsonNode *
vmig_test_apiserver_json_deep_copy(JsonNode *node)
{
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObject *o = json_object_new();
        JsonObjectIter it;
        const char *name;
        JsonNode *value;
        json_object_iter_init_ordered(&it, json_node_get_object(node));
        while (json_object_iter_next_ordered(&it, &name, &value))
            json_object_set_member(o, name, vmig_test_apiserver_json_deep_copy(value));
        return vmig_test_apiserver_node_take_object(o);
    }
    if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *src = json_node_get_array(node);
        JsonArray *a = json_array_sized_new(json_array_get_length(src));
        for (guint i = 0; i < json_array_get_length(src); i++)
            json_array_add_element(
                a, vmig_test_apiserver_json_deep_copy(json_array_get_element(src, i)));
        return vmig_test_apiserver_node_take_array(a);
    }
    return json_node_copy(node);
}

JsonNode *
vmig_test_apiserver_merge_patch(JsonNode *target, JsonNode *patch)
{
    if (!JSON_NODE_HOLDS_OBJECT(patch))
        return vmig_test_apiserver_json_deep_copy(patch);
    JsonNode *result = (target && JSON_NODE_HOLDS_OBJECT(target))
                           ? vmig_test_apiserver_json_deep_copy(target)
                           : vmig_test_apiserver_node_take_object(json_object_new());
    JsonObject *ro = json_node_get_object(result);
    JsonObjectIter it;
    const char *name;
    JsonNode *value;
    json_object_iter_init(&it, json_node_get_object(patch));
    while (json_object_iter_next(&it, &name, &value)) {
        if (JSON_NODE_HOLDS_NULL(value)) {
            json_object_remove_member(ro, name);
            continue;
        }
        JsonNode *old = json_object_has_member(ro, name) ? json_object_get_member(ro, name) : NULL;
        json_object_set_member(ro, name, vmig_test_apiserver_merge_patch(old, value));
    }
    return result;
}

void
vmig_test_apiserver_strip_directives(JsonNode *patch)
{
    if (JSON_NODE_HOLDS_ARRAY(patch)) {
        JsonArray *a = json_node_get_array(patch);
        for (guint i = 0; i < json_array_get_length(a); i++)
            vmig_test_apiserver_strip_directives(json_array_get_element(a, i));
        return;
    }
    if (!JSON_NODE_HOLDS_OBJECT(patch))
        return;
    JsonObject *o = json_node_get_object(patch);
    g_autoptr(GList) members = json_object_get_members(o);
    for (GList *l = members; l; l = l->next) {
        const char *m = l->data;
        if (m[0] == '$')
            json_object_remove_member(o, m);
        else
            vmig_test_apiserver_strip_directives(json_object_get_member(o, m));
    }
}

/* A parsed JSON pointer: the unescaped reference tokens. */
static GStrv
pointer_parse(const char *pointer, char **error_message)
{
    if (pointer[0] == '\0')
        return g_new0(char *, 1);
    if (pointer[0] != '/') {
        *error_message = g_strdup_printf("invalid JSON pointer '%s'", pointer);
        return NULL;
    }
    GStrv tokens = g_strsplit(pointer + 1, "/", -1);
    for (char **t = tokens; *t; t++) {
        GString *s = g_string_new(NULL);
        for (const char *p = *t; *p; p++) {
            if (p[0] == '~' && p[1] == '0') {
                g_string_append_c(s, '~');
                p++;
            } else if (p[0] == '~' && p[1] == '1') {
                g_string_append_c(s, '/');
                p++;
            } else {
                g_string_append_c(s, *p);
            }
        }
        g_free(*t);
        *t = g_string_free(s, FALSE);
    }
    return tokens;
}

static gboolean
array_index(const char *token, guint len, gboolean allow_end, guint *out)
{
    if (allow_end && g_str_equal(token, "-")) {
        *out = len;
        return TRUE;
    }
    if (!token[0] || (token[0] == '0' && token[1]))
        return FALSE;
    for (const char *p = token; *p; p++)
        if (!g_ascii_isdigit(*p))
            return FALSE;
    guint64 v = g_ascii_strtoull(token, NULL, 10);
    if (v > (allow_end ? len : (len ? len - 1 : 0)) || (!allow_end && len == 0))
        return FALSE;
    *out = (guint)v;
    return TRUE;
}

/* Walks to the node the pointer names (all tokens), or NULL. */
static JsonNode *
pointer_get(JsonNode *root, GStrv tokens)
{
    JsonNode *n = root;
    for (char **t = tokens; *t && n; t++) {
        if (JSON_NODE_HOLDS_OBJECT(n)) {
            JsonObject *o = json_node_get_object(n);
            n = json_object_has_member(o, *t) ? json_object_get_member(o, *t) : NULL;
        } else if (JSON_NODE_HOLDS_ARRAY(n)) {
            JsonArray *a = json_node_get_array(n);
            guint i;
            n = array_index(*t, json_array_get_length(a), FALSE, &i) ? json_array_get_element(a, i)
                                                                     : NULL;
        } else {
            n = NULL;
        }
    }
    return n;
}

/* Removes and returns (transfer full) the value at the pointer, or NULL. */
static JsonNode *
pointer_remove(JsonNode *root, GStrv tokens)
{
    guint n = g_strv_length(tokens);
    if (n == 0)
        return NULL;
    char *last = tokens[n - 1];
    tokens[n - 1] = NULL;
    JsonNode *parent = pointer_get(root, tokens);
    tokens[n - 1] = last;
    if (!parent)
        return NULL;
    if (JSON_NODE_HOLDS_OBJECT(parent)) {
        JsonObject *o = json_node_get_object(parent);
        if (!json_object_has_member(o, last))
            return NULL;
        JsonNode *v = json_object_dup_member(o, last);
        json_object_remove_member(o, last);
        return v;
    }
    if (JSON_NODE_HOLDS_ARRAY(parent)) {
        JsonArray *a = json_node_get_array(parent);
        guint i;
        if (!array_index(last, json_array_get_length(a), FALSE, &i))
            return NULL;
        JsonNode *v = json_array_dup_element(a, i);
        json_array_remove_element(a, i);
        return v;
    }
    return NULL;
}

/* Adds @value (transfer full) at the pointer: object member set, array insert. */
static gboolean
pointer_add(JsonNode **root, GStrv tokens, JsonNode *value, gboolean replace)
{
    guint n = g_strv_length(tokens);
    if (n == 0) {
        json_node_unref(*root);
        *root = value;
        return TRUE;
    }
    char *last = tokens[n - 1];
    tokens[n - 1] = NULL;
    JsonNode *parent = pointer_get(*root, tokens);
    tokens[n - 1] = last;
    if (parent && JSON_NODE_HOLDS_OBJECT(parent)) {
        JsonObject *o = json_node_get_object(parent);
        if (replace && !json_object_has_member(o, last))
            goto fail;
        json_object_set_member(o, last, value);
        return TRUE;
    }
    if (parent && JSON_NODE_HOLDS_ARRAY(parent)) {
        JsonArray *a = json_node_get_array(parent);
        guint len = json_array_get_length(a), i;
        if (!array_index(last, len, !replace, &i))
            goto fail;
        /* json-glib has no insert: rebuild the tail. */
        g_autoptr(GPtrArray) tail = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
        for (guint k = i; k < len; k++)
            g_ptr_array_add(tail, json_array_dup_element(a, k));
        for (guint k = len; k > i; k--)
            json_array_remove_element(a, k - 1);
        json_array_add_element(a, value);
        for (guint k = replace ? 1 : 0; k < tail->len; k++)
            json_array_add_element(a, json_node_ref(g_ptr_array_index(tail, k)));
        return TRUE;
    }
fail:
    json_node_unref(value);
    return FALSE;
}

JsonNode *
vmig_test_apiserver_json_patch(JsonNode *target, JsonNode *patch, gboolean *test_failed,
                               char **error_message)
{
    *test_failed = FALSE;
    if (!JSON_NODE_HOLDS_ARRAY(patch)) {
        *error_message = g_strdup("a JSON patch must be an array of operations");
        return NULL;
    }
    JsonNode *doc = vmig_test_apiserver_json_deep_copy(target);
    JsonArray *ops = json_node_get_array(patch);
    for (guint i = 0; i < json_array_get_length(ops); i++) {
        JsonNode *opn = json_array_get_element(ops, i);
        JsonObject *op = JSON_NODE_HOLDS_OBJECT(opn) ? json_node_get_object(opn) : NULL;
        const char *kind = vmig_test_apiserver_json_str(op, "op");
        const char *path = vmig_test_apiserver_json_str(op, "path");
        if (!kind || !path) {
            *error_message = g_strdup_printf("operation %u: missing op or path", i);
            goto fail;
        }
        g_auto(GStrv) tokens = pointer_parse(path, error_message);
        if (!tokens)
            goto fail;
        gboolean needs_value =
            g_str_equal(kind, "add") || g_str_equal(kind, "replace") || g_str_equal(kind, "test");
        if (needs_value && !json_object_has_member(op, "value")) {
            *error_message = g_strdup_printf("operation %u (%s %s): missing value", i, kind, path);
            goto fail;
        }
        gboolean ok;
        if (g_str_equal(kind, "add")) {
            ok = pointer_add(
                &doc, tokens,
                vmig_test_apiserver_json_deep_copy(json_object_get_member(op, "value")), FALSE);
        } else if (g_str_equal(kind, "replace")) {
            ok = pointer_add(
                &doc, tokens,
                vmig_test_apiserver_json_deep_copy(json_object_get_member(op, "value")), TRUE);
        } else if (g_str_equal(kind, "remove")) {
            JsonNode *v = pointer_remove(doc, tokens);
            ok = v != NULL;
            if (v)
                json_node_unref(v);
        } else if (g_str_equal(kind, "test")) {
            JsonNode *v = pointer_get(doc, tokens);
            ok = v && json_node_equal(v, json_object_get_member(op, "value"));
            if (!ok) {
                *test_failed = TRUE;
                *error_message = g_strdup_printf("testing value %s failed: test failed", path);
                goto fail;
            }
        } else if (g_str_equal(kind, "move") || g_str_equal(kind, "copy")) {
            const char *from = vmig_test_apiserver_json_str(op, "from");
            g_auto(GStrv) ftokens = from ? pointer_parse(from, error_message) : NULL;
            if (!ftokens) {
                if (!*error_message)
                    *error_message = g_strdup_printf("operation %u: missing from", i);
                goto fail;
            }
            JsonNode *v = g_str_equal(kind, "move") ? pointer_remove(doc, ftokens)
                                                    : pointer_get(doc, ftokens);
            if (v && g_str_equal(kind, "copy"))
                v = vmig_test_apiserver_json_deep_copy(v);
            ok = v && pointer_add(&doc, tokens, v, FALSE);
        } else {
            *error_message = g_strdup_printf("operation %u: unknown op '%s'", i, kind);
            goto fail;
        }
        if (!ok) {
            *error_message =
                g_strdup_printf("the server rejected our request due to an error in our request: "
                                "%s operation does not apply: doc is missing path: \"%s\"",
                                kind, path);
            goto fail;
        }
    }
    return doc;
fail:
    json_node_unref(doc);
    return NULL;
}
