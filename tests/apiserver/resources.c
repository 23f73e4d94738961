/* resources.c - the served kinds, discovery, a minimal OpenAPI v3 and Table columns. */
#include "apiserver-private.h"

#include <string.h>

static const char *const pod_fields[] = {"spec.nodeName",
                                         "spec.restartPolicy",
                                         "spec.schedulerName",
                                         "spec.serviceAccountName",
                                         "spec.hostNetwork",
                                         "status.phase",
                                         "status.podIP",
                                         "status.nominatedNodeName",
                                         NULL};
static const char *const event_fields[] = {"involvedObject.kind",
                                           "involvedObject.namespace",
                                           "involvedObject.name",
                                           "involvedObject.uid",
                                           "involvedObject.apiVersion",
                                           "involvedObject.resourceVersion",
                                           "involvedObject.fieldPath",
                                           "reason",
                                           "reportingComponent",
                                           "source",
                                           "type",
                                           NULL};
static const char *const node_fields[] = {"spec.unschedulable", NULL};
static const char *const namespace_fields[] = {"status.phase", NULL};

/* The table of everything served; add a kind, add a row. */
static const VmigTestApiserverResource resources[] = {
    {"", "v1", "namespaces", "namespace", "Namespace", FALSE, TRUE, FALSE, FALSE, "ns",
     namespace_fields, TRUE},
    {"", "v1", "nodes", "node", "Node", FALSE, TRUE, FALSE, TRUE, "no", node_fields, FALSE},
    {"", "v1", "pods", "pod", "Pod", TRUE, TRUE, FALSE, FALSE, "po", pod_fields, TRUE},
    {"", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", TRUE,
     TRUE, FALSE, FALSE, "pvc", NULL, TRUE},
    {"", "v1", "events", "event", "Event", TRUE, FALSE, FALSE, TRUE, "ev", event_fields, FALSE},
    {"coordination.k8s.io", "v1", "leases", "lease", "Lease", TRUE, FALSE, FALSE, TRUE, NULL, NULL,
     FALSE},
    {"kubevirt.io", "v1", "virtualmachineinstances", "virtualmachineinstance",
     "VirtualMachineInstance", TRUE, TRUE, TRUE, FALSE, "vmi,vmis", NULL, TRUE},
    {"kubevirt.io", "v1", "virtualmachineinstancemigrations", "virtualmachineinstancemigration",
     "VirtualMachineInstanceMigration", TRUE, TRUE, TRUE, FALSE, "vmim,vmims", NULL, TRUE},
    {"kubevirt.io", "v1", "kubevirts", "kubevirt", "KubeVirt", TRUE, TRUE, TRUE, FALSE, "kv,kvs",
     NULL, TRUE},
    {"migrations.kubevirt.io", "v1alpha1", "migrationpolicies", "migrationpolicy",
     "MigrationPolicy", FALSE, TRUE, TRUE, FALSE, NULL, NULL, FALSE},
    {"cdi.kubevirt.io", "v1beta1", "datavolumes", "datavolume", "DataVolume", TRUE, TRUE, TRUE,
     FALSE, "dv,dvs", NULL, TRUE},
    /* what the deployment manifests (data/deploy, data/crds) are made of, so kubectl can apply
     * them here */
    {"", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", TRUE, FALSE, FALSE, FALSE,
     "sa", NULL, FALSE},
    {"", "v1", "configmaps", "configmap", "ConfigMap", TRUE, FALSE, FALSE, FALSE, "cm", NULL,
     FALSE},
    {"", "v1", "secrets", "secret", "Secret", TRUE, FALSE, FALSE, FALSE, NULL, NULL, FALSE},
    {"apps", "v1", "daemonsets", "daemonset", "DaemonSet", TRUE, TRUE, FALSE, FALSE, "ds", NULL,
     FALSE},
    {"rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", FALSE, FALSE,
     FALSE, FALSE, NULL, NULL, FALSE},
    {"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
     "ClusterRoleBinding", FALSE, FALSE, FALSE, FALSE, NULL, NULL, FALSE},
    {"rbac.authorization.k8s.io", "v1", "roles", "role", "Role", TRUE, FALSE, FALSE, FALSE, NULL,
     NULL, FALSE},
    {"rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", TRUE, FALSE,
     FALSE, FALSE, NULL, NULL, FALSE},
    {"apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
     "CustomResourceDefinition", FALSE, TRUE, FALSE, FALSE, "crd,crds", NULL, FALSE},
};

const char *
vmig_test_apiserver_json_str(JsonObject *o, const char *member)
{
    if (!o || !json_object_has_member(o, member))
        return NULL;
    JsonNode *n = json_object_get_member(o, member);
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

JsonObject *
vmig_test_apiserver_json_obj(JsonObject *o, const char *member)
{
    if (!o || !json_object_has_member(o, member))
        return NULL;
    JsonNode *n = json_object_get_member(o, member);
    return JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

const VmigTestApiserverResource *
vmig_test_apiserver_resource_find(const char *group, const char *version, const char *plural)
{
    for (gsize i = 0; i < G_N_ELEMENTS(resources); i++) {
        const VmigTestApiserverResource *r = &resources[i];
        if (g_str_equal(r->group, group) && g_str_equal(r->version, version) &&
            g_str_equal(r->plural, plural))
            return r;
    }
    return NULL;
}

char *
vmig_test_apiserver_resource_api_version(const VmigTestApiserverResource *r)
{
    return r->group[0] ? g_strdup_printf("%s/%s", r->group, r->version) : g_strdup(r->version);
}

const VmigTestApiserverResource *
vmig_test_apiserver_resource_by_kind(const char *api_version, const char *kind)
{
    if (!api_version || !kind)
        return NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(resources); i++) {
        g_autofree char *av = vmig_test_apiserver_resource_api_version(&resources[i]);
        if (g_str_equal(av, api_version) && g_str_equal(resources[i].kind, kind))
            return &resources[i];
    }
    return NULL;
}

char *
vmig_test_apiserver_resource_qualified(const VmigTestApiserverResource *r)
{
    return r->group[0] ? g_strdup_printf("%s.%s", r->plural, r->group) : g_strdup(r->plural);
}

static void
add_strings(JsonBuilder *b, const char *member, const char *comma_list)
{
    json_builder_set_member_name(b, member);
    json_builder_begin_array(b);
    g_auto(GStrv) parts = g_strsplit(comma_list, ",", -1);
    for (char **p = parts; *p; p++)
        json_builder_add_string_value(b, *p);
    json_builder_end_array(b);
}

static void
add_resource_entry(JsonBuilder *b, const VmigTestApiserverResource *r, const char *sub)
{
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    if (sub) {
        g_autofree char *name = g_strdup_printf("%s/%s", r->plural, sub);
        json_builder_add_string_value(b, name);
        json_builder_set_member_name(b, "singularName");
        json_builder_add_string_value(b, "");
    } else {
        json_builder_add_string_value(b, r->plural);
        json_builder_set_member_name(b, "singularName");
        json_builder_add_string_value(b, r->singular);
    }
    json_builder_set_member_name(b, "namespaced");
    json_builder_add_boolean_value(b, r->namespaced);
    json_builder_set_member_name(b, "kind");
    json_builder_add_string_value(b, r->kind);
    add_strings(b, "verbs",
                sub ? "get,patch,update"
                    : "create,delete,deletecollection,get,list,patch,update,watch");
    if (!sub && r->short_names)
        add_strings(b, "shortNames", r->short_names);
    if (!sub && r->is_crd)
        add_strings(b, "categories", "all");
    json_builder_end_object(b);
}

static JsonNode *
resource_list(const char *group, const char *version)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    gboolean any = FALSE;
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "kind");
    json_builder_add_string_value(b, "APIResourceList");
    json_builder_set_member_name(b, "apiVersion");
    json_builder_add_string_value(b, "v1");
    json_builder_set_member_name(b, "groupVersion");
    g_autofree char *gv = group[0] ? g_strdup_printf("%s/%s", group, version) : g_strdup(version);
    json_builder_add_string_value(b, gv);
    json_builder_set_member_name(b, "resources");
    json_builder_begin_array(b);
    for (gsize i = 0; i < G_N_ELEMENTS(resources); i++) {
        const VmigTestApiserverResource *r = &resources[i];
        if (!g_str_equal(r->group, group) || !g_str_equal(r->version, version))
            continue;
        any = TRUE;
        add_resource_entry(b, r, NULL);
        if (r->has_status)
            add_resource_entry(b, r, "status");
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    return any ? json_builder_get_root(b) : NULL;
}

static JsonNode *
group_list(void)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "kind");
    json_builder_add_string_value(b, "APIGroupList");
    json_builder_set_member_name(b, "apiVersion");
    json_builder_add_string_value(b, "v1");
    json_builder_set_member_name(b, "groups");
    json_builder_begin_array(b);
    const char *seen[G_N_ELEMENTS(resources)] = {0};
    gsize n_seen = 0;
    for (gsize i = 0; i < G_N_ELEMENTS(resources); i++) {
        const VmigTestApiserverResource *r = &resources[i];
        gboolean dup = !r->group[0];
        for (gsize j = 0; j < n_seen && !dup; j++)
            dup = g_str_equal(seen[j], r->group);
        if (dup)
            continue;
        seen[n_seen++] = r->group;
        g_autofree char *gv = g_strdup_printf("%s/%s", r->group, r->version);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, r->group);
        json_builder_set_member_name(b, "versions");
        json_builder_begin_array(b);
        for (int k = 0; k < 2; k++) {
            if (k == 0)
                json_builder_begin_object(b);
            else {
                json_builder_end_array(b);
                json_builder_set_member_name(b, "preferredVersion");
                json_builder_begin_object(b);
            }
            json_builder_set_member_name(b, "groupVersion");
            json_builder_add_string_value(b, gv);
            json_builder_set_member_name(b, "version");
            json_builder_add_string_value(b, r->version);
            json_builder_end_object(b);
        }
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

JsonNode *
vmig_test_apiserver_discovery(const char *path, const char *server_url)
{
    if (g_str_equal(path, "/version") || g_str_equal(path, "/version/")) {
        return json_from_string(
            "{\"major\":\"1\",\"minor\":\"32\",\"gitVersion\":\"v1.32.0-vmig-test\","
            "\"gitCommit\":\"0000000000000000000000000000000000000000\",\"gitTreeState\":"
            "\"clean\",\"buildDate\":\"2026-01-01T00:00:00Z\",\"goVersion\":\"go1.23\","
            "\"compiler\":\"gc\",\"platform\":\"linux/amd64\"}",
            NULL);
    }
    if (g_str_equal(path, "/api") || g_str_equal(path, "/api/")) {
        g_autofree char *host = g_strdup(strstr(server_url, "://") + 3);
        g_autofree char *s = g_strdup_printf(
            "{\"kind\":\"APIVersions\",\"versions\":[\"v1\"],\"serverAddressByClientCIDRs\":"
            "[{\"clientCIDR\":\"0.0.0.0/0\",\"serverAddress\":\"%s\"}]}",
            host);
        return json_from_string(s, NULL);
    }
    if (g_str_equal(path, "/apis") || g_str_equal(path, "/apis/"))
        return group_list();
    if (g_str_equal(path, "/api/v1") || g_str_equal(path, "/api/v1/"))
        return resource_list("", "v1");
    if (g_str_has_prefix(path, "/apis/")) {
        g_auto(GStrv) parts = g_strsplit(path + strlen("/apis/"), "/", -1);
        guint n = g_strv_length(parts);
        if (n > 0 && parts[n - 1][0] == '\0')
            n--;
        if (n == 2)
            return resource_list(parts[0], parts[1]);
        if (n == 1) {
            for (gsize i = 0; i < G_N_ELEMENTS(resources); i++) {
                if (!g_str_equal(resources[i].group, parts[0]))
                    continue;
                g_autofree char *s = g_strdup_printf(
                    "{\"kind\":\"APIGroup\",\"apiVersion\":\"v1\",\"name\":\"%s\",\"versions\":"
                    "[{\"groupVersion\":\"%s/%s\",\"version\":\"%s\"}],\"preferredVersion\":"
                    "{\"groupVersion\":\"%s/%s\",\"version\":\"%s\"}}",
                    parts[0], parts[0], resources[i].version, resources[i].version, parts[0],
                    resources[i].version, resources[i].version);
                return json_from_string(s, NULL);
            }
        }
    }
    return NULL;
}

/* OpenAPI v3 just rich enough for kubectl: every kind is an object that preserves unknown
 * fields (so client-side validation accepts anything) and every write declares the
 * fieldValidation parameter (so kubectl leaves validation to the server). */
static void
openapi_operation(JsonBuilder *b, const char *verb, const VmigTestApiserverResource *r)
{
    json_builder_set_member_name(b, verb);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "parameters");
    json_builder_begin_array(b);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, "fieldValidation");
    json_builder_set_member_name(b, "in");
    json_builder_add_string_value(b, "query");
    json_builder_set_member_name(b, "schema");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "string");
    json_builder_end_object(b);
    json_builder_end_object(b);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "x-kubernetes-action");
    json_builder_add_string_value(b, g_str_equal(verb, "post") ? "post" : verb);
    json_builder_set_member_name(b, "x-kubernetes-group-version-kind");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "group");
    json_builder_add_string_value(b, r->group);
    json_builder_set_member_name(b, "version");
    json_builder_add_string_value(b, r->version);
    json_builder_set_member_name(b, "kind");
    json_builder_add_string_value(b, r->kind);
    json_builder_end_object(b);
    json_builder_end_object(b);
}

static char *
openapi_gv_path(const VmigTestApiserverResource *r)
{
    return r->group[0] ? g_strdup_printf("apis/%s/%s", r->group, r->version)
                       : g_strdup_printf("api/%s", r->version);
}

JsonNode *
vmig_test_apiserver_openapi(const char *path)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    if (g_str_equal(path, "/openapi/v3") || g_str_equal(path, "/openapi/v3/")) {
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "paths");
        json_builder_begin_object(b);
        for (gsize i = 0; i < G_N_ELEMENTS(resources); i++) {
            g_autofree char *gv = openapi_gv_path(&resources[i]);
            g_autofree char *url = g_strdup_printf("/openapi/v3/%s?hash=0", gv);
            json_builder_set_member_name(b, gv);
            json_builder_begin_object(b);
            json_builder_set_member_name(b, "serverRelativeURL");
            json_builder_add_string_value(b, url);
            json_builder_end_object(b);
        }
        json_builder_end_object(b);
        json_builder_end_object(b);
        return json_builder_get_root(b);
    }
    if (!g_str_has_prefix(path, "/openapi/v3/"))
        return NULL;
    const char *gv = path + strlen("/openapi/v3/");
    gboolean any = FALSE;
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "openapi");
    json_builder_add_string_value(b, "3.0.0");
    json_builder_set_member_name(b, "info");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "title");
    json_builder_add_string_value(b, "vmig-test-apiserver");
    json_builder_set_member_name(b, "version");
    json_builder_add_string_value(b, "v1.32.0");
    json_builder_end_object(b);
    json_builder_set_member_name(b, "paths");
    json_builder_begin_object(b);
    for (gsize i = 0; i < G_N_ELEMENTS(resources); i++) {
        const VmigTestApiserverResource *r = &resources[i];
        g_autofree char *this_gv = openapi_gv_path(r);
        if (!g_str_equal(this_gv, gv))
            continue;
        any = TRUE;
        g_autofree char *coll =
            r->namespaced ? g_strdup_printf("/%s/namespaces/{namespace}/%s", gv, r->plural)
                          : g_strdup_printf("/%s/%s", gv, r->plural);
        g_autofree char *item = g_strdup_printf("%s/{name}", coll);
        json_builder_set_member_name(b, coll);
        json_builder_begin_object(b);
        openapi_operation(b, "post", r);
        json_builder_end_object(b);
        json_builder_set_member_name(b, item);
        json_builder_begin_object(b);
        openapi_operation(b, "put", r);
        openapi_operation(b, "patch", r);
        json_builder_end_object(b);
    }
    json_builder_end_object(b);
    json_builder_set_member_name(b, "components");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "schemas");
    json_builder_begin_object(b);
    for (gsize i = 0; i < G_N_ELEMENTS(resources); i++) {
        const VmigTestApiserverResource *r = &resources[i];
        g_autofree char *this_gv = openapi_gv_path(r);
        if (!g_str_equal(this_gv, gv))
            continue;
        g_autofree char *name = g_strdup_printf(
            "%s.%s.%s", r->group[0] ? r->group : "io.k8s.api.core", r->version, r->kind);
        json_builder_set_member_name(b, name);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "type");
        json_builder_add_string_value(b, "object");
        json_builder_set_member_name(b, "x-kubernetes-preserve-unknown-fields");
        json_builder_add_boolean_value(b, TRUE);
        json_builder_set_member_name(b, "x-kubernetes-group-version-kind");
        json_builder_begin_array(b);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "group");
        json_builder_add_string_value(b, r->group);
        json_builder_set_member_name(b, "version");
        json_builder_add_string_value(b, r->version);
        json_builder_set_member_name(b, "kind");
        json_builder_add_string_value(b, r->kind);
        json_builder_end_object(b);
        json_builder_end_array(b);
        json_builder_end_object(b);
    }
    json_builder_end_object(b);
    json_builder_end_object(b);
    json_builder_end_object(b);
    return any ? json_builder_get_root(b) : NULL;
}

static void
add_column(JsonBuilder *b, const char *name, const char *type, const char *format,
           const char *description)
{
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, name);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, type);
    json_builder_set_member_name(b, "format");
    json_builder_add_string_value(b, format);
    json_builder_set_member_name(b, "description");
    json_builder_add_string_value(b, description);
    json_builder_set_member_name(b, "priority");
    json_builder_add_int_value(b, 0);
    json_builder_end_object(b);
}

JsonNode *
vmig_test_apiserver_table_columns(const VmigTestApiserverResource *r)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_array(b);
    add_column(b, "Name", "string", "name", "Name must be unique within a namespace.");
    if (r->phase_column)
        add_column(b, "Phase", "string", "", "status.phase");
    add_column(b, "Age", "string", "", "Time since creationTimestamp.");
    json_builder_end_array(b);
    return json_builder_get_root(b);
}

static char *
format_age(const char *timestamp)
{
    g_autoptr(GDateTime) then = timestamp ? g_date_time_new_from_iso8601(timestamp, NULL) : NULL;
    if (!then)
        return g_strdup("<unknown>");
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    gint64 s = g_date_time_difference(now, then) / G_TIME_SPAN_SECOND;
    if (s < 0)
        s = 0;
    if (s < 120)
        return g_strdup_printf("%" G_GINT64_FORMAT "s", s);
    if (s < 7200)
        return g_strdup_printf("%" G_GINT64_FORMAT "m", s / 60);
    if (s < 48 * 3600)
        return g_strdup_printf("%" G_GINT64_FORMAT "h", s / 3600);
    return g_strdup_printf("%" G_GINT64_FORMAT "d", s / 86400);
}

JsonNode *
vmig_test_apiserver_table_cells(const VmigTestApiserverResource *r, JsonObject *obj)
{
    JsonObject *md = vmig_test_apiserver_json_obj(obj, "metadata");
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_array(b);
    json_builder_add_string_value(b, vmig_test_apiserver_json_str(md, "name"));
    if (r->phase_column) {
        const char *phase =
            vmig_test_apiserver_json_str(vmig_test_apiserver_json_obj(obj, "status"), "phase");
        json_builder_add_string_value(b, phase ? phase : "");
    }
    g_autofree char *age = format_age(vmig_test_apiserver_json_str(md, "creationTimestamp"));
    json_builder_add_string_value(b, age);
    json_builder_end_array(b);
    return json_builder_get_root(b);
}
