/* yaml.c - documents posted to or loaded by the test server: the project's own loader
 * (vmig_model_load_documents: JSON or multi-document YAML, Lists flattened), objects only. */
#include "apiserver-private.h"

#include "vmig/model.h"

GPtrArray *
vmig_test_apiserver_parse_documents(const char *text, gsize len, GError **error)
{
    GPtrArray *all = NULL;
    g_autoptr(GError) err = NULL;
    if (!vmig_model_load_documents(text, (gssize)len, "request body", &all, &err)) {
        g_set_error(error, VMIG_TEST_APISERVER_ERROR, VMIG_TEST_APISERVER_ERROR_INVALID, "%s",
                    err->message);
        return NULL;
    }
    GPtrArray *docs = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
    for (guint i = 0; i < all->len; i++) {
        JsonNode *n = all->pdata[i];
        if (JSON_NODE_HOLDS_OBJECT(n))
            g_ptr_array_add(docs, json_node_ref(n));
    }
    g_ptr_array_unref(all);
    return docs;
}
