/* yaml.c - read seed files: one JSON document, or YAML documents (libyaml) as JSON nodes. */
#include "apiserver-private.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static JsonNode *
scalar_node(yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    JsonNode *j = json_node_alloc();
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        json_node_init_string(j, v);
        return j;
    }
    if (g_str_equal(v, "null") || g_str_equal(v, "~") || !*v)
        return json_node_init_null(j);
    if (g_str_equal(v, "true") || g_str_equal(v, "True"))
        return json_node_init_boolean(j, TRUE);
    if (g_str_equal(v, "false") || g_str_equal(v, "False"))
        return json_node_init_boolean(j, FALSE);
    char *end;
    gint64 i = g_ascii_strtoll(v, &end, 10);
    if (*end == '\0' && (g_ascii_isdigit(v[0]) || v[0] == '-'))
        return json_node_init_int(j, i);
    double d = g_ascii_strtod(v, &end);
    if (*end == '\0' && (g_ascii_isdigit(v[0]) || v[0] == '-' || v[0] == '.'))
        return json_node_init_double(j, d);
    return json_node_init_string(j, v);
}

static JsonNode *
convert(yaml_document_t *doc, yaml_node_t *n, int depth)
{
    if (!n || depth > 64)
        return json_node_init_null(json_node_alloc());
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return scalar_node(n);
    case YAML_SEQUENCE_NODE: {
        JsonArray *a = json_array_new();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++)
            json_array_add_element(a, convert(doc, yaml_document_get_node(doc, *it), depth + 1));
        return vmig_test_apiserver_node_take_array(a);
    }
    case YAML_MAPPING_NODE: {
        JsonObject *o = json_object_new();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            if (!k || k->type != YAML_SCALAR_NODE)
                continue;
            json_object_set_member(o, (const char *)k->data.scalar.value,
                                   convert(doc, yaml_document_get_node(doc, p->value), depth + 1));
        }
        return vmig_test_apiserver_node_take_object(o);
    }
    default:
        return json_node_init_null(json_node_alloc());
    }
}

GPtrArray *
vmig_test_apiserver_parse_documents(const char *text, gsize len, GError **error)
{
    g_autoptr(GPtrArray) docs = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
    g_autoptr(JsonParser) jp = json_parser_new();
    if (json_parser_load_from_data(jp, text, (gssize)len, NULL)) {
        g_ptr_array_add(docs, json_parser_steal_root(jp));
        return g_steal_pointer(&docs);
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        g_set_error(error, VMIG_TEST_APISERVER_ERROR, VMIG_TEST_APISERVER_ERROR_INVALID,
                    "cannot initialise the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            g_set_error(error, VMIG_TEST_APISERVER_ERROR, VMIG_TEST_APISERVER_ERROR_INVALID,
                        "YAML line %zu: %s", parser.problem_mark.line + 1,
                        parser.problem ? parser.problem : "parse error");
            yaml_parser_delete(&parser);
            return NULL;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            yaml_document_delete(&doc);
            break;
        }
        JsonNode *j = convert(&doc, root, 0);
        if (JSON_NODE_HOLDS_OBJECT(j))
            g_ptr_array_add(docs, j);
        else
            json_node_unref(j);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    return g_steal_pointer(&docs);
}
