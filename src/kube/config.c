/* config.c - kubeconfig and in-cluster configuration (vmig/kube.h).
 *
 * The kubeconfig parser is pure (text in, VmigKubeConfig out) so it can be fuzzed; file
 * reading and environment lookups sit in thin wrappers around it. Field names and the
 * resolution of relative paths against the kubeconfig's directory follow kubectl. */
#include "kube-private.h"

#include <string.h>
#include <yaml.h>

#define VMIG_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

void
vmig_kube_config_free(VmigKubeConfig *c)
{
    if (!c)
        return;
    g_free(c->server);
    g_free(c->context);
    g_free(c->namespace);
    g_free(c->ca_file);
    g_clear_pointer(&c->ca_data, g_bytes_unref);
    g_free(c->token);
    g_free(c->token_file);
    g_free(c->cert_file);
    g_clear_pointer(&c->cert_data, g_bytes_unref);
    g_free(c->key_file);
    g_clear_pointer(&c->key_data, g_bytes_unref);
    g_free(c);
}

/* ---- YAML document navigation ------------------------------------------------------------- */

static yaml_node_t *
vmig_kube_yaml_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strlen(key) == k->data.scalar.length &&
            memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

/* A scalar member as a string; NULL when absent. Sets @error (naming @where.@key) when
 * present but not a scalar. */
static gboolean
vmig_kube_yaml_scalar(yaml_document_t *doc, yaml_node_t *map, const char *where, const char *key,
                      char **out, GError **error)
{
    *out = NULL;
    yaml_node_t *n = vmig_kube_yaml_get(doc, map, key);
    if (!n)
        return TRUE;
    if (n->type != YAML_SCALAR_NODE) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "%s.%s: not a string", where,
                    key);
        return FALSE;
    }
    const char *v = (const char *)n->data.scalar.value;
    gsize len = n->data.scalar.length;
    if (memchr(v, '\0', len)) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "%s.%s: contains a NUL byte",
                    where, key);
        return FALSE;
    }
    *out = g_strndup(v, len);
    return TRUE;
}

/* The entry of a named list ("clusters", "users", "contexts") called @name; its inner
 * mapping under @inner. */
static yaml_node_t *
vmig_kube_yaml_named(yaml_document_t *doc, yaml_node_t *root, const char *list, const char *inner,
                     const char *name, GError **error)
{
    yaml_node_t *seq = vmig_kube_yaml_get(doc, root, list);
    if (!seq || seq->type != YAML_SEQUENCE_NODE) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "%s: missing or not a list",
                    list);
        return NULL;
    }
    for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
         i++) {
        yaml_node_t *entry = yaml_document_get_node(doc, *i);
        yaml_node_t *n = vmig_kube_yaml_get(doc, entry, "name");
        if (n && n->type == YAML_SCALAR_NODE && strlen(name) == n->data.scalar.length &&
            memcmp(n->data.scalar.value, name, n->data.scalar.length) == 0) {
            yaml_node_t *in = vmig_kube_yaml_get(doc, entry, inner);
            if (!in || in->type != YAML_MAPPING_NODE) {
                g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG,
                            "%s[%s].%s: missing or not a mapping", list, name, inner);
                return NULL;
            }
            return in;
        }
    }
    g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "%s: no entry named '%s'", list,
                name);
    return NULL;
}

static gboolean
vmig_kube_base64_field(const char *where, const char *field, const char *text, GBytes **out,
                       GError **error)
{
    if (!text)
        return TRUE;
    /* g_base64_decode accepts anything; check the alphabet so garbage is named, not used */
    gsize n = 0;
    for (const char *p = text; *p; p++) {
        if (g_ascii_isalnum(*p) || *p == '+' || *p == '/' || *p == '=') {
            n++;
            continue;
        }
        if (g_ascii_isspace(*p))
            continue;
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "%s.%s: not base64", where,
                    field);
        return FALSE;
    }
    if (n == 0 || n % 4 != 0) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG,
                    "%s.%s: not base64 (length %zu)", where, field, n);
        return FALSE;
    }
    gsize len = 0;
    guchar *raw = g_base64_decode(text, &len);
    *out = g_bytes_new_take(raw, len);
    return TRUE;
}

static char *
vmig_kube_resolve(const char *base_dir, char *path)
{
    if (!path || !base_dir || g_path_is_absolute(path))
        return path;
    char *abs = g_build_filename(base_dir, path, NULL);
    g_free(path);
    return abs;
}

VmigKubeConfig *
vmig_kube_config_parse_kubeconfig(const char *data, gsize len, const char *base_dir,
                                  const char *context, GError **error)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "yaml parser init failed");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG,
                    "not YAML: %s at line %zu column %zu",
                    parser.problem ? parser.problem : "error", parser.problem_mark.line + 1,
                    parser.problem_mark.column + 1);
        yaml_parser_delete(&parser);
        return NULL;
    }
    yaml_parser_delete(&parser);

    g_autoptr(VmigKubeConfig) cfg = g_new0(VmigKubeConfig, 1);
    gboolean ok = FALSE;
    g_autofree char *ctx_name = NULL, *cluster_name = NULL, *user_name = NULL;
    g_autofree char *insecure = NULL, *ca_data = NULL, *cert_data = NULL, *key_data = NULL;
    g_autofree char *cluster_where = NULL, *user_where = NULL, *ctx_where = NULL;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *ctx, *cluster, *user;

    if (!root || root->type != YAML_MAPPING_NODE) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "not a kubeconfig mapping");
        goto out;
    }
    if (context)
        ctx_name = g_strdup(context);
    else if (!vmig_kube_yaml_scalar(&doc, root, "kubeconfig", "current-context", &ctx_name, error))
        goto out;
    if (!ctx_name || !*ctx_name) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG,
                    "current-context: missing or empty");
        goto out;
    }
    if (!(ctx = vmig_kube_yaml_named(&doc, root, "contexts", "context", ctx_name, error)))
        goto out;
    ctx_where = g_strdup_printf("contexts[%s].context", ctx_name);
    if (!vmig_kube_yaml_scalar(&doc, ctx, ctx_where, "cluster", &cluster_name, error) ||
        !vmig_kube_yaml_scalar(&doc, ctx, ctx_where, "user", &user_name, error) ||
        !vmig_kube_yaml_scalar(&doc, ctx, ctx_where, "namespace", &cfg->namespace, error))
        goto out;
    if (!cluster_name) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "%s.cluster: missing",
                    ctx_where);
        goto out;
    }
    if (!(cluster = vmig_kube_yaml_named(&doc, root, "clusters", "cluster", cluster_name, error)))
        goto out;
    cluster_where = g_strdup_printf("clusters[%s].cluster", cluster_name);
    if (!vmig_kube_yaml_scalar(&doc, cluster, cluster_where, "server", &cfg->server, error) ||
        !vmig_kube_yaml_scalar(&doc, cluster, cluster_where, "certificate-authority", &cfg->ca_file,
                               error) ||
        !vmig_kube_yaml_scalar(&doc, cluster, cluster_where, "certificate-authority-data", &ca_data,
                               error) ||
        !vmig_kube_yaml_scalar(&doc, cluster, cluster_where, "insecure-skip-tls-verify", &insecure,
                               error))
        goto out;
    if (!cfg->server || !*cfg->server) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "%s.server: missing",
                    cluster_where);
        goto out;
    }
    if (!g_str_has_prefix(cfg->server, "https://") && !g_str_has_prefix(cfg->server, "http://")) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG,
                    "%s.server: '%s' is not an http(s) URL", cluster_where, cfg->server);
        goto out;
    }
    if (insecure) {
        if (g_ascii_strcasecmp(insecure, "true") == 0)
            cfg->insecure = TRUE;
        else if (g_ascii_strcasecmp(insecure, "false") != 0) {
            g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG,
                        "%s.insecure-skip-tls-verify: '%s' is not true or false", cluster_where,
                        insecure);
            goto out;
        }
    }
    if (!vmig_kube_base64_field(cluster_where, "certificate-authority-data", ca_data, &cfg->ca_data,
                                error))
        goto out;
    if (user_name) {
        if (!(user = vmig_kube_yaml_named(&doc, root, "users", "user", user_name, error)))
            goto out;
        user_where = g_strdup_printf("users[%s].user", user_name);
        if (!vmig_kube_yaml_scalar(&doc, user, user_where, "token", &cfg->token, error) ||
            !vmig_kube_yaml_scalar(&doc, user, user_where, "tokenFile", &cfg->token_file, error) ||
            !vmig_kube_yaml_scalar(&doc, user, user_where, "client-certificate", &cfg->cert_file,
                                   error) ||
            !vmig_kube_yaml_scalar(&doc, user, user_where, "client-certificate-data", &cert_data,
                                   error) ||
            !vmig_kube_yaml_scalar(&doc, user, user_where, "client-key", &cfg->key_file, error) ||
            !vmig_kube_yaml_scalar(&doc, user, user_where, "client-key-data", &key_data, error))
            goto out;
        if (!vmig_kube_base64_field(user_where, "client-certificate-data", cert_data,
                                    &cfg->cert_data, error) ||
            !vmig_kube_base64_field(user_where, "client-key-data", key_data, &cfg->key_data, error))
            goto out;
        if ((cfg->cert_file || cfg->cert_data) != (cfg->key_file || cfg->key_data)) {
            g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG,
                        "%s: client-certificate and client-key must be given together", user_where);
            goto out;
        }
    }
    cfg->ca_file = vmig_kube_resolve(base_dir, cfg->ca_file);
    cfg->cert_file = vmig_kube_resolve(base_dir, cfg->cert_file);
    cfg->key_file = vmig_kube_resolve(base_dir, cfg->key_file);
    cfg->token_file = vmig_kube_resolve(base_dir, cfg->token_file);
    cfg->context = g_strdup(ctx_name);
    ok = TRUE;
out:
    yaml_document_delete(&doc);
    return ok ? g_steal_pointer(&cfg) : NULL;
}

VmigKubeConfig *
vmig_kube_config_load_kubeconfig(const char *path, const char *context, GError **error)
{
    g_autofree char *chosen = NULL;
    if (path) {
        chosen = g_strdup(path);
    } else if (g_getenv("KUBECONFIG") && *g_getenv("KUBECONFIG")) {
        /* a list like kubectl's; we take the first entry (no merging) */
        g_auto(GStrv) parts = g_strsplit(g_getenv("KUBECONFIG"), ":", 2);
        chosen = g_strdup(parts[0]);
    } else {
        chosen = g_build_filename(g_get_home_dir(), ".kube", "config", NULL);
    }
    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) err = NULL;
    if (!g_file_get_contents(chosen, &text, &len, &err)) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "kubeconfig %s: %s", chosen,
                    err->message);
        return NULL;
    }
    g_autofree char *dir = g_path_get_dirname(chosen);
    VmigKubeConfig *cfg = vmig_kube_config_parse_kubeconfig(text, len, dir, context, &err);
    if (!cfg) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "kubeconfig %s: %s", chosen,
                    err->message);
        return NULL;
    }
    return cfg;
}

VmigKubeConfig *
vmig_kube_config_in_cluster(const char *sa_dir, GError **error)
{
    const char *host = g_getenv("KUBERNETES_SERVICE_HOST");
    const char *port = g_getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG,
                    "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
        return NULL;
    }
    const char *dir = sa_dir ? sa_dir : VMIG_KUBE_SA_DIR;
    g_autoptr(VmigKubeConfig) cfg = g_new0(VmigKubeConfig, 1);
    /* an IPv6 service address needs brackets in a URL */
    if (strchr(host, ':'))
        cfg->server = g_strdup_printf("https://[%s]:%s", host, port);
    else
        cfg->server = g_strdup_printf("https://%s:%s", host, port);
    cfg->token_file = g_build_filename(dir, "token", NULL);
    cfg->ca_file = g_build_filename(dir, "ca.crt", NULL);
    g_autofree char *ns_file = g_build_filename(dir, "namespace", NULL);
    if (!g_file_test(cfg->token_file, G_FILE_TEST_IS_REGULAR) ||
        !g_file_test(cfg->ca_file, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG, "in-cluster: %s or %s missing",
                    cfg->token_file, cfg->ca_file);
        return NULL;
    }
    g_autofree char *ns = NULL;
    if (g_file_get_contents(ns_file, &ns, NULL, NULL))
        cfg->namespace = g_strdup(g_strstrip(ns));
    return g_steal_pointer(&cfg);
}

VmigKubeConfig *
vmig_kube_config_load(const char *kubeconfig, GError **error)
{
    if (kubeconfig || (g_getenv("KUBECONFIG") && *g_getenv("KUBECONFIG")))
        return vmig_kube_config_load_kubeconfig(kubeconfig, NULL, error);
    if (g_getenv("KUBERNETES_SERVICE_HOST"))
        return vmig_kube_config_in_cluster(NULL, error);
    return vmig_kube_config_load_kubeconfig(NULL, NULL, error);
}
