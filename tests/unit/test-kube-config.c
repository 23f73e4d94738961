/* test-kube-config.c - kubeconfig and in-cluster configuration (vmig/kube.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib/gstdio.h>
#include <string.h>

#include "vmig/kube.h"

/* base64 of "CA-PEM", "CERT-PEM", "KEY-PEM" */
static const char full[] = "apiVersion: v1\n"
                           "kind: Config\n"
                           "current-context: admin@lab\n"
                           "clusters:\n"
                           "- name: other\n"
                           "  cluster: {server: https://other:6443}\n"
                           "- name: lab\n"
                           "  cluster:\n"
                           "    server: https://10.0.0.1:6443\n"
                           "    certificate-authority-data: Q0EtUEVN\n"
                           "    insecure-skip-tls-verify: false\n"
                           "contexts:\n"
                           "- name: admin@lab\n"
                           "  context: {cluster: lab, user: admin, namespace: ns1}\n"
                           "- name: files\n"
                           "  context: {cluster: filecluster, user: fileuser}\n"
                           "users:\n"
                           "- name: admin\n"
                           "  user:\n"
                           "    token: tok123\n"
                           "    client-certificate-data: Q0VSVC1QRU0=\n"
                           "    client-key-data: S0VZLVBFTQ==\n"
                           "- name: fileuser\n"
                           "  user:\n"
                           "    tokenFile: tokens/t\n"
                           "    client-certificate: certs/c.crt\n"
                           "    client-key: /abs/c.key\n"
                           "clusters2: ignored\n";

static const char files_clusters[] = "- name: filecluster\n"
                                     "  cluster:\n"
                                     "    server: https://lab:6443/\n"
                                     "    certificate-authority: ca.crt\n"
                                     "    insecure-skip-tls-verify: true\n";

static void
assert_bytes(GBytes *b, const char *text)
{
    assert_non_null(b);
    gsize len = 0;
    const char *d = g_bytes_get_data(b, &len);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(d, text, len);
}

static void
test_all_fields_data(void **state)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigKubeConfig) c =
        vmig_kube_config_parse_kubeconfig(full, strlen(full), "/etc/kube", NULL, &err);
    assert_null(err);
    assert_non_null(c);
    assert_string_equal(c->context, "admin@lab");
    assert_string_equal(c->server, "https://10.0.0.1:6443");
    assert_string_equal(c->namespace, "ns1");
    assert_string_equal(c->token, "tok123");
    assert_false(c->insecure);
    assert_null(c->ca_file);
    assert_null(c->token_file);
    assert_bytes(c->ca_data, "CA-PEM");
    assert_bytes(c->cert_data, "CERT-PEM");
    assert_bytes(c->key_data, "KEY-PEM");
}

static void
test_all_fields_files_relative_paths(void **state)
{
    /* insert the file-based cluster into the clusters list */
    g_autofree char *text = g_strdup(full);
    GString *g = g_string_new(NULL);
    const char *at = strstr(text, "- name: lab\n");
    g_string_append_len(g, text, at - text);
    g_string_append(g, files_clusters);
    g_string_append(g, at);
    g_autofree char *doc = g_string_free(g, FALSE);
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigKubeConfig) c =
        vmig_kube_config_parse_kubeconfig(doc, strlen(doc), "/etc/kube", "files", &err);
    assert_null(err);
    assert_string_equal(c->server, "https://lab:6443/");
    assert_true(c->insecure);
    assert_string_equal(c->ca_file, "/etc/kube/ca.crt");
    assert_string_equal(c->token_file, "/etc/kube/tokens/t");
    assert_string_equal(c->cert_file, "/etc/kube/certs/c.crt");
    assert_string_equal(c->key_file, "/abs/c.key");
    assert_null(c->namespace);
    assert_null(c->ca_data);
}

/* Every broken kubeconfig is an error that names the field. */
static void
test_errors_name_the_field(void **state)
{
    static const struct {
        const char *doc;
        const char *needle;
    } cases[] = {
        {"", "not a kubeconfig"},
        {"- a\n- b\n", "not a kubeconfig"},
        {"key: [unclosed\n", "not YAML"},
        {"kind: Config\n", "current-context: missing"},
        {"current-context: [x]\n", "current-context: not a string"},
        {"current-context: c\n", "contexts: missing"},
        {"current-context: c\ncontexts: []\n", "contexts: no entry named 'c'"},
        {"current-context: c\ncontexts: [{name: c}]\n", "contexts[c].context: missing"},
        {"current-context: c\ncontexts: [{name: c, context: {user: u}}]\n",
         "contexts[c].context.cluster: missing"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\nclusters: []\n",
         "clusters: no entry named 'k'"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
         "clusters: [{name: k, cluster: {}}]\n",
         "clusters[k].cluster.server: missing"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
         "clusters: [{name: k, cluster: {server: 10.0.0.1}}]\n",
         "clusters[k].cluster.server: '10.0.0.1' is not an http(s) URL"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://a', certificate-authority-data: "
         "'**not-b64**'}}]\n",
         "clusters[k].cluster.certificate-authority-data: not base64"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://a', insecure-skip-tls-verify: "
         "maybe}}]\n",
         "clusters[k].cluster.insecure-skip-tls-verify: 'maybe' is not true or false"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://a'}}]\nusers: []\n",
         "users: no entry named 'u'"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://a'}}]\n"
         "users: [{name: u, user: {client-key-data: abc}}]\n",
         "users[u].user.client-key-data: not base64 (length 3)"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://a'}}]\n"
         "users: [{name: u, user: {client-certificate: /c}}]\n",
         "users[u].user: client-certificate and client-key must be given together"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://a'}}]\n"
         "users: [{name: u, user: {token: {a: b}}}]\n",
         "users[u].user.token: not a string"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        VmigKubeConfig *c =
            vmig_kube_config_parse_kubeconfig(cases[i].doc, strlen(cases[i].doc), NULL, NULL, &err);
        assert_null(c);
        assert_true(g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFIG));
        if (!strstr(err->message, cases[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err->message, cases[i].needle);
    }
}

static void
test_load_file_and_env(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("kubecfg-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "config", NULL);
    assert_true(g_file_set_contents(path, full, -1, NULL));
    g_autoptr(GError) err = NULL;
    g_autoptr(VmigKubeConfig) c = vmig_kube_config_load(path, &err);
    assert_non_null(c);
    assert_string_equal(c->server, "https://10.0.0.1:6443");

    g_autofree char *list = g_strdup_printf("%s:/nonexistent", path);
    g_setenv("KUBECONFIG", list, TRUE);
    g_autoptr(VmigKubeConfig) c2 = vmig_kube_config_load(NULL, &err);
    assert_non_null(c2);
    assert_string_equal(c2->token, "tok123");

    g_setenv("KUBECONFIG", "/nonexistent/kubeconfig", TRUE);
    VmigKubeConfig *c3 = vmig_kube_config_load(NULL, &err);
    assert_null(c3);
    assert_non_null(strstr(err->message, "kubeconfig /nonexistent/kubeconfig"));
    g_unsetenv("KUBECONFIG");
    g_unlink(path);
    g_rmdir(dir);
}

static void
test_in_cluster(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("sa-XXXXXX", NULL);
    g_autofree char *tok = g_build_filename(dir, "token", NULL);
    g_autofree char *ca = g_build_filename(dir, "ca.crt", NULL);
    g_autofree char *ns = g_build_filename(dir, "namespace", NULL);
    g_autoptr(GError) err = NULL;

    g_unsetenv("KUBERNETES_SERVICE_HOST");
    assert_null(vmig_kube_config_in_cluster(dir, &err));
    assert_non_null(strstr(err->message, "KUBERNETES_SERVICE_HOST"));
    g_clear_error(&err);

    g_setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", TRUE);
    g_setenv("KUBERNETES_SERVICE_PORT", "443", TRUE);
    assert_null(vmig_kube_config_in_cluster(dir, &err));
    assert_non_null(strstr(err->message, "token"));
    g_clear_error(&err);

    assert_true(g_file_set_contents(tok, "sa-token\n", -1, NULL));
    assert_true(g_file_set_contents(ca, "CA", -1, NULL));
    assert_true(g_file_set_contents(ns, "kubevirt\n", -1, NULL));
    g_autoptr(VmigKubeConfig) c = vmig_kube_config_in_cluster(dir, &err);
    assert_non_null(c);
    assert_string_equal(c->server, "https://10.96.0.1:443");
    assert_string_equal(c->token_file, tok);
    assert_string_equal(c->ca_file, ca);
    assert_string_equal(c->namespace, "kubevirt");
    assert_null(c->token); /* read by the client, and again when it rotates */

    g_setenv("KUBERNETES_SERVICE_HOST", "fd00::1", TRUE);
    g_autoptr(VmigKubeConfig) c6 = vmig_kube_config_in_cluster(dir, &err);
    assert_string_equal(c6->server, "https://[fd00::1]:443");
    g_unsetenv("KUBERNETES_SERVICE_HOST");
    g_unsetenv("KUBERNETES_SERVICE_PORT");
    g_unlink(tok);
    g_unlink(ca);
    g_unlink(ns);
    g_rmdir(dir);
}

static void
test_resource_table(void **state)
{
    static const struct {
        const char *name;
        VmigKubeResourceId id;
    } cases[] = {
        {"vmi", VMIG_KUBE_VMI},
        {"VMIs", VMIG_KUBE_VMI},
        {"virtualmachineinstances", VMIG_KUBE_VMI},
        {"VirtualMachineInstanceMigration", VMIG_KUBE_VMIM},
        {"vmim", VMIG_KUBE_VMIM},
        {"migrationpolicies", VMIG_KUBE_MIGRATION_POLICY},
        {"nodes", VMIG_KUBE_NODE},
        {"pod", VMIG_KUBE_POD},
        {"pvc", VMIG_KUBE_PVC},
        {"leases.coordination.k8s.io", VMIG_KUBE_LEASE},
        {"dv", VMIG_KUBE_DATAVOLUME},
        {"kubevirts", VMIG_KUBE_KUBEVIRT},
        {"events", VMIG_KUBE_EVENT},
        {"ns", VMIG_KUBE_NAMESPACE},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        assert_ptr_equal(vmig_kube_resource_lookup(cases[i].name), vmig_kube_resource(cases[i].id));
    assert_null(vmig_kube_resource_lookup("deployments"));
    assert_null(vmig_kube_resource_lookup("leases.apps"));
    assert_null(vmig_kube_resource_lookup(""));
    g_autofree char *av = vmig_kube_resource_api_version(vmig_kube_resource(VMIG_KUBE_POD));
    assert_string_equal(av, "v1");
    g_autofree char *av2 = vmig_kube_resource_api_version(vmig_kube_resource(VMIG_KUBE_VMIM));
    assert_string_equal(av2, "kubevirt.io/v1");
    assert_int_equal(vmig_kube_error_code_from_http(409), VMIG_KUBE_ERROR_CONFLICT);
    assert_int_equal(vmig_kube_error_code_from_http(410), VMIG_KUBE_ERROR_GONE);
    assert_int_equal(vmig_kube_error_code_from_http(418), VMIG_KUBE_ERROR_BAD_REQUEST);
    assert_int_equal(vmig_kube_error_code_from_http(502), VMIG_KUBE_ERROR_SERVER);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_fields_data),
        cmocka_unit_test(test_all_fields_files_relative_paths),
        cmocka_unit_test(test_errors_name_the_field),
        cmocka_unit_test(test_load_file_and_env),
        cmocka_unit_test(test_in_cluster),
        cmocka_unit_test(test_resource_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
