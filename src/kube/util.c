/* util.c - error domain, the resource table, paths and small JSON helpers (vmig/kube.h). */
#include "kube-private.h"

#include <string.h>

G_DEFINE_QUARK(vmig - kube - error - quark, vmig_kube_error)

/* HTTP status -> error code; the rest of a class falls back to the class row. */
static const struct {
    guint status;
    VmigKubeErrorCode code;
    const char *reason; /* used when the body carries no Status.reason */
} vmig_kube_http_codes[] = {
    {400, VMIG_KUBE_ERROR_BAD_REQUEST, "BadRequest"},
    {401, VMIG_KUBE_ERROR_UNAUTHORIZED, "Unauthorized"},
    {403, VMIG_KUBE_ERROR_FORBIDDEN, "Forbidden"},
    {404, VMIG_KUBE_ERROR_NOT_FOUND, "NotFound"},
    {405, VMIG_KUBE_ERROR_BAD_REQUEST, "MethodNotAllowed"},
    {409, VMIG_KUBE_ERROR_CONFLICT, "Conflict"},
    {410, VMIG_KUBE_ERROR_GONE, "Expired"},
    {415, VMIG_KUBE_ERROR_BAD_REQUEST, "UnsupportedMediaType"},
    {422, VMIG_KUBE_ERROR_INVALID, "Invalid"},
    {429, VMIG_KUBE_ERROR_TOO_MANY, "TooManyRequests"},
    {500, VMIG_KUBE_ERROR_SERVER, "InternalError"},
    {503, VMIG_KUBE_ERROR_SERVER, "ServiceUnavailable"},
    {504, VMIG_KUBE_ERROR_SERVER, "Timeout"},
};

static const char *
vmig_kube_http_reason(guint status)
{
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_kube_http_codes); i++)
        if (vmig_kube_http_codes[i].status == status)
            return vmig_kube_http_codes[i].reason;
    return status >= 500 ? "InternalError" : "Unknown";
}

VmigKubeErrorCode
vmig_kube_error_code_from_http(guint status)
{
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_kube_http_codes); i++)
        if (vmig_kube_http_codes[i].status == status)
            return vmig_kube_http_codes[i].code;
    if (status >= 400 && status < 500)
        return VMIG_KUBE_ERROR_BAD_REQUEST;
    return VMIG_KUBE_ERROR_SERVER;
}

static const VmigKubeResource vmig_kube_resources[] = {
    [VMIG_KUBE_VMI] = {"kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance",
                       "vmi", TRUE},
    [VMIG_KUBE_VMIM] = {"kubevirt.io", "v1", "virtualmachineinstancemigrations",
                        "VirtualMachineInstanceMigration", "vmim", TRUE},
    [VMIG_KUBE_KUBEVIRT] = {"kubevirt.io", "v1", "kubevirts", "KubeVirt", "kv", TRUE},
    [VMIG_KUBE_MIGRATION_POLICY] = {"migrations.kubevirt.io", "v1alpha1", "migrationpolicies",
                                    "MigrationPolicy", NULL, FALSE},
    [VMIG_KUBE_NODE] = {"", "v1", "nodes", "Node", "no", FALSE},
    [VMIG_KUBE_POD] = {"", "v1", "pods", "Pod", "po", TRUE},
    [VMIG_KUBE_PVC] = {"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", "pvc", TRUE},
    [VMIG_KUBE_EVENT] = {"", "v1", "events", "Event", "ev", TRUE},
    [VMIG_KUBE_NAMESPACE] = {"", "v1", "namespaces", "Namespace", "ns", FALSE},
    [VMIG_KUBE_DATAVOLUME] = {"cdi.kubevirt.io", "v1beta1", "datavolumes", "DataVolume", "dv",
                              TRUE},
    [VMIG_KUBE_LEASE] = {"coordination.k8s.io", "v1", "leases", "Lease", NULL, TRUE},
};

const VmigKubeResource *
vmig_kube_resource(VmigKubeResourceId id)
{
    g_return_val_if_fail((gsize)id < G_N_ELEMENTS(vmig_kube_resources), NULL);
    return &vmig_kube_resources[id];
}

const VmigKubeResource *
vmig_kube_resource_lookup(const char *name)
{
    if (!name || !*name)
        return NULL;
    g_autofree char *lower = g_ascii_strdown(name, -1);
    const char *dot = strchr(lower, '.');
    g_autofree char *base = dot ? g_strndup(lower, (gsize)(dot - lower)) : g_strdup(lower);
    const char *group = dot ? dot + 1 : NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_kube_resources); i++) {
        const VmigKubeResource *r = &vmig_kube_resources[i];
        g_autofree char *kind = g_ascii_strdown(r->kind, -1);
        if (group && strcmp(group, r->group) != 0)
            continue;
        if (strcmp(base, r->resource) == 0 || strcmp(base, kind) == 0 ||
            (r->shortname && strcmp(base, r->shortname) == 0))
            return r;
        /* plural of a short name: "vmis", "vmims", "pvcs" */
        if (r->shortname && g_str_has_suffix(base, "s") &&
            strlen(base) == strlen(r->shortname) + 1 &&
            strncmp(base, r->shortname, strlen(r->shortname)) == 0)
            return r;
    }
    return NULL;
}

char *
vmig_kube_resource_api_version(const VmigKubeResource *res)
{
    if (!res->group[0])
        return g_strdup(res->version);
    return g_strdup_printf("%s/%s", res->group, res->version);
}

/* A namespace or name must be one path segment: no '/', no '.' or '..', not empty. */
static gboolean
vmig_kube_check_segment(const char *what, const char *value, GError **error)
{
    if (!*value || strchr(value, '/') || strcmp(value, ".") == 0 || strcmp(value, "..") == 0 ||
        strchr(value, '?') || strchr(value, '#') || strchr(value, '%')) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_BAD_REQUEST,
                    "%s '%s' is not a valid path segment", what, value);
        return FALSE;
    }
    return TRUE;
}

char *
vmig_kube_path(const VmigKubeResource *res, const char *ns, const char *name, gboolean status,
               GError **error)
{
    if (ns && !vmig_kube_check_segment("namespace", ns, error))
        return NULL;
    if (name && !vmig_kube_check_segment("name", name, error))
        return NULL;
    GString *p = g_string_new(NULL);
    if (res->group[0])
        g_string_append_printf(p, "/apis/%s/%s", res->group, res->version);
    else
        g_string_append_printf(p, "/api/%s", res->version);
    if (ns && res->namespaced)
        g_string_append_printf(p, "/namespaces/%s", ns);
    g_string_append_printf(p, "/%s", res->resource);
    if (name)
        g_string_append_printf(p, "/%s", name);
    if (status)
        g_string_append(p, "/status");
    return g_string_free(p, FALSE);
}

static const char *const vmig_kube_verb_names[] = {
    [VMIG_KUBE_VERB_GET] = "get",          [VMIG_KUBE_VERB_LIST] = "list",
    [VMIG_KUBE_VERB_CREATE] = "create",    [VMIG_KUBE_VERB_UPDATE] = "update",
    [VMIG_KUBE_VERB_DELETE] = "delete",    [VMIG_KUBE_VERB_MERGE_PATCH] = "patch",
    [VMIG_KUBE_VERB_JSON_PATCH] = "patch",
};

const char *
vmig_kube_verb_to_string(VmigKubeVerb verb)
{
    if ((gsize)verb >= G_N_ELEMENTS(vmig_kube_verb_names))
        return "unknown";
    return vmig_kube_verb_names[verb];
}

char *
vmig_kube_describe(VmigKubeVerb verb, const VmigKubeResource *res, const char *ns, const char *name,
                   gboolean status)
{
    const char *sub = status ? "/status" : "";
    if (name)
        return g_strdup_printf("%s %s%s %s%s%s", vmig_kube_verb_to_string(verb), res->resource, sub,
                               ns ? ns : "", ns ? "/" : "", name);
    if (ns)
        return g_strdup_printf("%s %s%s in %s", vmig_kube_verb_to_string(verb), res->resource, sub,
                               ns);
    return g_strdup_printf("%s %s%s%s", vmig_kube_verb_to_string(verb), res->resource, sub,
                           res->namespaced ? " in all namespaces" : "");
}

gboolean
vmig_kube_status_from_node(JsonNode *node, gint64 *code, const char **reason, const char **message)
{
    if (!node || !JSON_NODE_HOLDS_OBJECT(node))
        return FALSE;
    JsonObject *o = json_node_get_object(node);
    if (g_strcmp0(json_object_get_string_member_with_default(o, "kind", ""), "Status") != 0)
        return FALSE;
    if (code)
        *code = json_object_get_int_member_with_default(o, "code", 0);
    if (reason)
        *reason = json_object_get_string_member_with_default(o, "reason", "");
    if (message)
        *message = json_object_get_string_member_with_default(o, "message", "");
    return TRUE;
}

void
vmig_kube_set_error_from_transfer(VmigKubeTransfer *t, const char *what, GError **error)
{
    if (t->cancelled) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CANCELLED, "%s: cancelled", what);
        return;
    }
    if (t->result != CURLE_OK || t->http_status == 0) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_TRANSPORT, "%s: %s: %s", what,
                    curl_easy_strerror(t->result), t->errbuf[0] ? t->errbuf : "no answer");
        return;
    }
    guint status = (guint)t->http_status;
    const char *reason = NULL, *message = NULL;
    g_autoptr(JsonParser) p = json_parser_new();
    if (t->response && t->response->len &&
        json_parser_load_from_data(p, (const char *)t->response->data, (gssize)t->response->len,
                                   NULL))
        vmig_kube_status_from_node(json_parser_get_root(p), NULL, &reason, &message);
    if (!reason || !*reason)
        reason = vmig_kube_http_reason(status);
    g_set_error(error, VMIG_KUBE_ERROR, vmig_kube_error_code_from_http(status), "%s: %u %s%s%s",
                what, status, reason, message && *message ? ": " : "", message ? message : "");
}

guint
vmig_kube_jitter_ms(guint base_ms)
{
    return base_ms +
           (base_ms ? (guint)g_random_int_range(0, (gint32)MIN(base_ms, G_MAXINT32 - 1) + 1) : 0);
}

char *
vmig_kube_now_rfc3339(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    return g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
}

const char *
vmig_kube_meta_string(JsonNode *obj, const char *field)
{
    if (!obj || !JSON_NODE_HOLDS_OBJECT(obj))
        return NULL;
    JsonObject *o = json_node_get_object(obj);
    JsonNode *m = json_object_get_member(o, "metadata");
    if (!m || !JSON_NODE_HOLDS_OBJECT(m))
        return NULL;
    JsonNode *v = json_object_get_member(json_node_get_object(m), field);
    if (!v || !JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(v);
}

char *
vmig_kube_object_key(JsonNode *obj)
{
    const char *ns = vmig_kube_meta_string(obj, "namespace");
    const char *name = vmig_kube_meta_string(obj, "name");
    if (ns && *ns)
        return g_strdup_printf("%s/%s", ns, name ? name : "");
    return g_strdup(name ? name : "");
}

JsonObject *
vmig_kube_json_object(JsonObject *o, const char *member)
{
    JsonNode *n = o ? json_object_get_member(o, member) : NULL;
    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

JsonArray *
vmig_kube_json_array(JsonObject *o, const char *member)
{
    JsonNode *n = o ? json_object_get_member(o, member) : NULL;
    return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}
