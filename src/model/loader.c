/* loader.c - YAML (libyaml) and JSON documents to JsonNodes, for offline files and tests.
 * Both readers refuse nesting deeper than VMIG_MODEL_MAX_DEPTH so hostile input cannot exhaust
 * the stack of json-glib's recursive parser or of the code walking the result. */
#include "model-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define VMIG_MODEL_MAX_DEPTH 64

/* Bracket depth outside strings; the JSON grammar itself is json-glib's business. */
static gboolean
json_depth_ok(const char *data, gsize len)
{
    int depth = 0;
    gboolean in_string = FALSE;
    for (gsize i = 0; i < len; i++) {
        char c = data[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = FALSE;
        } else if (c == '"') {
            in_string = TRUE;
        } else if (c == '{' || c == '[') {
            if (++depth > VMIG_MODEL_MAX_DEPTH)
                return FALSE;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return TRUE;
}

JsonNode *
vmig_model_parse_json(const char *data, gssize len, GError **error)
{
    gsize n = len < 0 ? strlen(data) : (gsize)len;
    if (!json_depth_ok(data, n)) {
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_RANGE,
                    "JSON nested deeper than %d levels", VMIG_MODEL_MAX_DEPTH);
        return NULL;
    }
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) e = NULL;
    if (!json_parser_load_from_data(p, data, (gssize)n, &e)) {
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_PARSE, "%s", e->message);
        return NULL;
    }
    /* Mutable nodes, owned by the caller: the status writers edit them in place. */
    JsonNode *root = json_parser_steal_root(p);
    if (!root) {
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_PARSE, "empty JSON document");
        return NULL;
    }
    return root;
}

/* ---- YAML ----------------------------------------------------------------------------- */

typedef struct {
    yaml_parser_t parser;
    const char *origin;
} YamlCtx;

static gboolean
yaml_fail(YamlCtx *c, GError **error, gsize line, const char *msg)
{
    g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_PARSE, "%s:%zu: %s", c->origin, line + 1,
                msg);
    return FALSE;
}

static gboolean
next_event(YamlCtx *c, yaml_event_t *ev, GError **error)
{
    if (!yaml_parser_parse(&c->parser, ev)) {
        g_autofree char *msg = g_strdup_printf(
            "YAML syntax error: %s%s%s", c->parser.problem ? c->parser.problem : "unknown",
            c->parser.context ? " " : "", c->parser.context ? c->parser.context : "");
        return yaml_fail(c, error, c->parser.problem_mark.line, msg);
    }
    return TRUE;
}

static gboolean
is_int(const char *s)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (!*p)
        return FALSE;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return FALSE;
    }
    return TRUE;
}

/* YAML 1.2 core schema for plain scalars; anything else is a string. */
static JsonNode *
scalar_node(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    JsonNode *n = json_node_new(JSON_NODE_VALUE);
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag) {
        if (!*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
            strcmp(v, "NULL") == 0) {
            json_node_unref(n);
            return json_node_new(JSON_NODE_NULL);
        }
        if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0) {
            json_node_set_boolean(n, TRUE);
            return n;
        }
        if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0) {
            json_node_set_boolean(n, FALSE);
            return n;
        }
        if (is_int(v)) {
            errno = 0;
            char *end = NULL;
            gint64 i = g_ascii_strtoll(v, &end, 10);
            if (errno == 0 && end && !*end) {
                json_node_set_int(n, i);
                return n;
            }
        }
        static GRegex *float_re = NULL;
        if (g_once_init_enter(&float_re)) {
            GRegex *re = g_regex_new("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$",
                                     G_REGEX_OPTIMIZE, 0, NULL);
            g_once_init_leave(&float_re, re);
        }
        if (g_regex_match(float_re, v, 0, NULL)) {
            json_node_set_double(n, g_ascii_strtod(v, NULL));
            return n;
        }
    }
    json_node_set_string(n, v);
    return n;
}

static gboolean parse_value(YamlCtx *c, yaml_event_t *first, int depth, JsonNode **out,
                            GError **error);

static gboolean
parse_mapping(YamlCtx *c, int depth, JsonNode **out, GError **error)
{
    JsonObject *obj = json_object_new();
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(node, obj);
    for (;;) {
        yaml_event_t ev;
        if (!next_event(c, &ev, error))
            goto fail;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            gsize line = ev.start_mark.line;
            yaml_event_delete(&ev);
            yaml_fail(c, error, line, "mapping keys must be scalars");
            goto fail;
        }
        g_autofree char *key = g_strdup((const char *)ev.data.scalar.value);
        gsize line = ev.start_mark.line;
        yaml_event_delete(&ev);
        yaml_event_t vev;
        if (!next_event(c, &vev, error))
            goto fail;
        JsonNode *val = NULL;
        if (!parse_value(c, &vev, depth + 1, &val, error))
            goto fail;
        if (json_object_has_member(obj, key)) {
            json_node_unref(val);
            g_autofree char *msg = g_strdup_printf("duplicate key \"%s\"", key);
            yaml_fail(c, error, line, msg);
            goto fail;
        }
        json_object_set_member(obj, key, val);
    }
    *out = node;
    return TRUE;
fail:
    json_node_unref(node);
    return FALSE;
}

static gboolean
parse_sequence(YamlCtx *c, int depth, JsonNode **out, GError **error)
{
    JsonArray *arr = json_array_new();
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(node, arr);
    for (;;) {
        yaml_event_t ev;
        if (!next_event(c, &ev, error))
            goto fail;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        JsonNode *val = NULL;
        if (!parse_value(c, &ev, depth + 1, &val, error))
            goto fail;
        json_array_add_element(arr, val);
    }
    *out = node;
    return TRUE;
fail:
    json_node_unref(node);
    return FALSE;
}

/* Consumes @first (deleting it) and the events of its value. */
static gboolean
parse_value(YamlCtx *c, yaml_event_t *first, int depth, JsonNode **out, GError **error)
{
    gsize line = first->start_mark.line;
    if (depth > VMIG_MODEL_MAX_DEPTH) {
        yaml_event_delete(first);
        return yaml_fail(c, error, line, "nested deeper than 64 levels");
    }
    yaml_event_type_t type = first->type;
    gboolean anchored = (type == YAML_SCALAR_EVENT && first->data.scalar.anchor) ||
                        (type == YAML_MAPPING_START_EVENT && first->data.mapping_start.anchor) ||
                        (type == YAML_SEQUENCE_START_EVENT && first->data.sequence_start.anchor);
    if (type == YAML_ALIAS_EVENT || anchored) {
        yaml_event_delete(first);
        return yaml_fail(c, error, line, "YAML anchors and aliases are not supported");
    }
    switch (type) {
    case YAML_SCALAR_EVENT:
        *out = scalar_node(first);
        yaml_event_delete(first);
        return TRUE;
    case YAML_MAPPING_START_EVENT:
        yaml_event_delete(first);
        return parse_mapping(c, depth, out, error);
    case YAML_SEQUENCE_START_EVENT:
        yaml_event_delete(first);
        return parse_sequence(c, depth, out, error);
    default:
        yaml_event_delete(first);
        return yaml_fail(c, error, line, "unexpected YAML event");
    }
}

/* Appends @doc, or the items of a List document, to @docs. */
static void
add_document(GPtrArray *docs, JsonNode *doc)
{
    if (JSON_NODE_HOLDS_NULL(doc)) {
        json_node_unref(doc);
        return;
    }
    if (JSON_NODE_HOLDS_OBJECT(doc)) {
        JsonObject *o = json_node_get_object(doc);
        JsonNode *kind = json_object_get_member(o, "kind");
        JsonNode *items = json_object_get_member(o, "items");
        if (kind && JSON_NODE_HOLDS_VALUE(kind) &&
            json_node_get_value_type(kind) == G_TYPE_STRING &&
            g_str_has_suffix(json_node_get_string(kind), "List") && items &&
            JSON_NODE_HOLDS_ARRAY(items)) {
            JsonArray *a = json_node_get_array(items);
            for (guint i = 0; i < json_array_get_length(a); i++)
                g_ptr_array_add(docs, json_node_copy(json_array_get_element(a, i)));
            json_node_unref(doc);
            return;
        }
    }
    g_ptr_array_add(docs, doc);
}

gboolean
vmig_model_load_documents(const char *data, gssize len, const char *origin, GPtrArray **docs,
                          GError **error)
{
    gsize n = len < 0 ? strlen(data) : (gsize)len;
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
    origin = origin ? origin : "<input>";

    /* Skip leading whitespace: a JSON document goes to json-glib, which reports JSON errors
     * in JSON terms. */
    gsize i = 0;
    while (i < n && g_ascii_isspace(data[i]))
        i++;
    if (i < n && (data[i] == '{' || data[i] == '[')) {
        g_autoptr(GError) e = NULL;
        JsonNode *root = vmig_model_parse_json(data, (gssize)n, &e);
        if (!root) {
            g_set_error(error, VMIG_MODEL_ERROR, e->code, "%s: %s", origin, e->message);
            return FALSE;
        }
        add_document(out, root);
        *docs = g_steal_pointer(&out);
        return TRUE;
    }

    YamlCtx c = {.origin = origin};
    if (!yaml_parser_initialize(&c.parser)) {
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_PARSE, "%s: libyaml init failed",
                    origin);
        return FALSE;
    }
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)data, n);
    gboolean ok = TRUE;
    for (gboolean done = FALSE; ok && !done;) {
        yaml_event_t ev;
        if (!next_event(&c, &ev, error)) {
            ok = FALSE;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = TRUE;
            yaml_event_delete(&ev);
            break;
        case YAML_DOCUMENT_START_EVENT: {
            yaml_event_delete(&ev);
            yaml_event_t first;
            JsonNode *doc = NULL;
            if (!next_event(&c, &first, error) || !parse_value(&c, &first, 0, &doc, error)) {
                ok = FALSE;
                break;
            }
            add_document(out, doc);
            yaml_event_t end;
            if (!next_event(&c, &end, error)) {
                ok = FALSE;
                break;
            }
            yaml_event_delete(&end);
            break;
        }
        default:
            yaml_event_delete(&ev);
            break;
        }
    }
    yaml_parser_delete(&c.parser);
    if (!ok)
        return FALSE;
    *docs = g_steal_pointer(&out);
    return TRUE;
}

gboolean
vmig_model_load_file(const char *path, GPtrArray **docs, GError **error)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    g_autoptr(GError) e = NULL;
    if (!g_file_get_contents(path, &data, &len, &e)) {
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_IO, "%s", e->message);
        return FALSE;
    }
    return vmig_model_load_documents(data, (gssize)len, path, docs, error);
}
