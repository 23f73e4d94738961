/* apiserver-private.h - shared between the test API server's source files only. */
#pragma once

#include "apiserver.h"

/* json_node_init_object/_array take a reference of their own: these hand a freshly made
 * container's only reference to the new node, so it is freed with the node. */
static inline JsonNode *
vmig_test_apiserver_node_take_object(JsonObject *o)
{
    JsonNode *n = json_node_init_object(json_node_alloc(), o);
    json_object_unref(o);
    return n;
}

static inline JsonNode *
vmig_test_apiserver_node_take_array(JsonArray *a)
{
    JsonNode *n = json_node_init_array(json_node_alloc(), a);
    json_array_unref(a);
    return n;
}

/* One served resource: the discovery entry, its storage rules and its selectors. */
typedef struct {
    const char *group; /* "" for the core group */
    const char *version;
    const char *plural;
    const char *singular;
    const char *kind;
    gboolean namespaced;
    gboolean has_status; /* a /status subresource exists */
    gboolean is_crd;     /* custom resource: CRD rules (no SMP, RV required on update) */
    gboolean keep_status_on_create;
    const char *short_names;         /* comma-separated, may be NULL */
    const char *const *field_labels; /* besides metadata.name/namespace; NULL-terminated */
    gboolean phase_column;           /* Table gets a PHASE column from status.phase */
} VmigTestApiserverResource;

/* resources.c */
const VmigTestApiserverResource *
vmig_test_apiserver_resource_find(const char *group, const char *version, const char *plural);
const VmigTestApiserverResource *vmig_test_apiserver_resource_by_kind(const char *api_version,
                                                                      const char *kind);
/* Name used in kube messages: "pods" or "virtualmachineinstances.kubevirt.io". */
char *vmig_test_apiserver_resource_qualified(const VmigTestApiserverResource *r);
char *vmig_test_apiserver_resource_api_version(const VmigTestApiserverResource *r);
/* Discovery documents for a path, or NULL when the path is no discovery path. */
JsonNode *vmig_test_apiserver_discovery(const char *path, const char *server_url);
JsonNode *vmig_test_apiserver_openapi(const char *path);
/* Table row cells for an object (NAME, [PHASE], AGE) and the column definitions. */
JsonNode *vmig_test_apiserver_table_columns(const VmigTestApiserverResource *r);
JsonNode *vmig_test_apiserver_table_cells(const VmigTestApiserverResource *r, JsonObject *obj);

/* patch.c */
JsonNode *vmig_test_apiserver_json_deep_copy(JsonNode *node);
/* Both return a new node, or NULL with a message in *error_message. */
JsonNode *vmig_test_apiserver_merge_patch(JsonNode *target, JsonNode *patch);
JsonNode *vmig_test_apiserver_json_patch(JsonNode *target, JsonNode *patch, gboolean *test_failed,
                                         char **error_message);
/* Drop strategic-merge directives ("$patch", "$setElementOrder/...") from a patch. */
void vmig_test_apiserver_strip_directives(JsonNode *patch);

/* selector.c */
typedef struct _VmigTestApiserverSelector VmigTestApiserverSelector;
VmigTestApiserverSelector *vmig_test_apiserver_label_selector_parse(const char *text,
                                                                    char **error_message);
VmigTestApiserverSelector *
vmig_test_apiserver_field_selector_parse(const VmigTestApiserverResource *r, const char *text,
                                         char **error_message);
gboolean vmig_test_apiserver_selector_matches_labels(const VmigTestApiserverSelector *s,
                                                     JsonObject *obj);
gboolean vmig_test_apiserver_selector_matches_fields(const VmigTestApiserverSelector *s,
                                                     JsonObject *obj);
void vmig_test_apiserver_selector_free(VmigTestApiserverSelector *s);

/* yaml.c: every document of @text as a JsonNode (transfer full), or NULL with @error. */
GPtrArray *vmig_test_apiserver_parse_documents(const char *text, gsize len, GError **error);

/* Small JSON helpers. */
const char *vmig_test_apiserver_json_str(JsonObject *o, const char *member);
JsonObject *vmig_test_apiserver_json_obj(JsonObject *o, const char *member);

/* protobuf.c: the metadata of a protobuf-encoded object as JSON (transfer full), or NULL. */
JsonNode *vmig_test_apiserver_protobuf_decode(const guint8 *data, gsize len, char **error_message);

