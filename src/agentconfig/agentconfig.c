/* agentconfig.c - vmigrated's option table, sources and path templates. */
#include "vmig/agentconfig.h"
#include "vmig/model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK(vmig - agentconfig - error - quark, vmig_agentconfig_error)

typedef enum {
    OPT_STRING,
    OPT_BOOL,
    OPT_MS,        /* a whole number of milliseconds */
    OPT_MS0,       /* the same, where 0 turns the thing off */
    OPT_COUNT,     /* a whole number of things, 1..1000 */
    OPT_BANDWIDTH, /* bytes/s as a Kubernetes quantity, 0 or at least 1Mi (kept as text) */
} OptType;

typedef struct {
    const char *name; /* long flag and key-file key */
    OptType type;
    const char *def; /* default as text; NULL = unset */
    const char *env; /* extra environment name besides VMIGRATED_<NAME>; NULL = none */
    gsize offset;    /* into VmigAgentConfig */
    const char *arg; /* argument description for --help */
    const char *help;
} OptSpec;

#define F(field) G_STRUCT_OFFSET(VmigAgentConfig, field)

/* The one table of options. Keep defaults in step with docs/daemon.md. */
static const OptSpec vmig_agentconfig_options[] = {
    {"node-name", OPT_STRING, NULL, "NODE_NAME", F(node_name), "NAME",
     "this node's name (default: $NODE_NAME from the Downward API)"},
    {"kubeconfig", OPT_STRING, NULL, "KUBECONFIG", F(kubeconfig), "FILE",
     "kubeconfig file (default: in-cluster service account)"},
    {"lease-namespace", OPT_STRING, "vmigrated", "POD_NAMESPACE", F(lease_namespace), "NS",
     "namespace of the agents' heartbeat Leases (default: the pod's namespace)"},
    {"migration-address", OPT_STRING, NULL, NULL, F(migration_address), "IP",
     "address for incoming migration connections (default: the Node's InternalIP)"},
    {"tls-cert", OPT_STRING, "/etc/vmigrated/tls/tls.crt", NULL, F(tls_cert), "FILE",
     "this node's migration certificate (PEM)"},
    {"tls-key", OPT_STRING, "/etc/vmigrated/tls/tls.key", NULL, F(tls_key), "FILE",
     "its private key (PEM)"},
    {"tls-ca", OPT_STRING, "/etc/vmigrated/tls/ca.crt", NULL, F(tls_ca), "FILE",
     "CA bundle that signs every node's migration certificate (PEM)"},
    {"disable-tls", OPT_BOOL, "false", NULL, F(disable_tls), NULL,
     "no TLS credentials: migrations from this node are plain TCP, TLS ones toward it fail "
     "(prefer the KubeVirt CR's migrations.disableTLS)"},
    {"pod-share-dir", OPT_STRING, "/var/run/kubevirt-pods/{namespace}_{name}", NULL,
     F(pod_share_dir), "TEMPLATE",
     "host path of a VMI pod's virtShareDir; {namespace} {name} {uid} {node} {pid}"},
    {"pod-pid-file", OPT_STRING, NULL, NULL, F(pod_pid_file), "TEMPLATE",
     "file with the launcher's PID; when set the share dir is /proc/<pid>/root<pod-share-path>"},
    {"pod-share-path", OPT_STRING, "/var/run/kubevirt", NULL, F(pod_share_path), "PATH",
     "the virtShareDir as seen inside the pod (used in migrate_uri)"},
    {"libvirt-socket", OPT_STRING, "/var/run/kubevirt-pods/{namespace}_{name}/libvirt/libvirt-sock",
     NULL, F(libvirt_socket), "TEMPLATE", "host path of a VMI pod's libvirt socket"},
    {"domain-name", OPT_STRING, "{namespace}_{name}", NULL, F(domain_name), "TEMPLATE",
     "libvirt domain name of a VMI (KubeVirt: {namespace}_{name})"},
    {"shutdown-grace-ms", OPT_MS, "30000", NULL, F(shutdown_grace_ms), "MS",
     "on SIGTERM, time to let live migrations finish"},
    {"target-ready-timeout-ms", OPT_MS, "150000", NULL, F(target_ready_timeout_ms), "MS",
     "deadline for the target node to report TargetReady"},
    {"job-poll-interval-ms", OPT_MS, "500", NULL, F(job_poll_interval_ms), "MS",
     "how often the libvirt job statistics are sampled"},
    {"status-interval-ms", OPT_MS, "1000", NULL, F(status_interval_ms), "MS",
     "progress is written to the objects at most this often"},
    {"abort-wait-ms", OPT_MS, "30000", NULL, F(abort_wait_ms), "MS",
     "bounded wait for an aborted libvirt job to end"},
    {"postcopy-recovery-timeout-ms", OPT_MS0, "300000", NULL, F(postcopy_recovery_timeout_ms), "MS",
     "how long to retry resuming a post-copy migration whose data path broke; 0 = fail at once"},
    {"postcopy-recovery-attempts", OPT_COUNT, "30", NULL, F(postcopy_recovery_attempts), "N",
     "resume attempts before a broken post-copy migration is declared failed"},
    {"inbound-migrations", OPT_COUNT, "2", NULL, F(inbound_migrations), "N",
     "migrations this node receives at once (its inbound slot Leases)"},
    {"migration-bandwidth-budget", OPT_BANDWIDTH, "0", NULL, F(migration_bandwidth_budget),
     "QUANTITY",
     "bytes/s shared by this node's outbound migrations, e.g. 100Mi (0: off; at least 1Mi)"},
    {"http-address", OPT_STRING, "", NULL, F(http_address), "HOST:PORT",
     "serve /healthz, /readyz and /metrics here (empty: off)"},
    {"log-format", OPT_STRING, "text", NULL, F(log_format), "text|json", "log line format"},
    {"verbose", OPT_BOOL, "false", NULL, F(verbose), NULL, "log debug and info records"},
};

typedef struct {
    GHashTable *flags; /* name -> value text */
} ParseState;

static const OptSpec *
vmig_agentconfig_find(const char *name)
{
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_agentconfig_options); i++)
        if (strcmp(vmig_agentconfig_options[i].name, name) == 0)
            return &vmig_agentconfig_options[i];
    return NULL;
}

static gboolean
vmig_agentconfig_flag_cb(const char *option_name, const char *value, gpointer data, GError **error)
{
    ParseState *st = data;
    const char *name = option_name + 2; /* strip "--" */
    g_hash_table_replace(st->flags, g_strdup(name), g_strdup(value ? value : "true"));
    return TRUE;
}

static char *
vmig_agentconfig_env_name(const char *name)
{
    g_autofree char *up = g_ascii_strup(name, -1);
    g_strdelimit(up, "-", '_');
    return g_strconcat("VMIGRATED_", up, NULL);
}

/* A bandwidth quantity in MiB/s, rounded down so the budget is never exceeded by rounding;
 * refuses negative values and positive ones below 1 MiB/s (libvirt's unit: 0 would mean
 * unlimited). */
static gboolean
vmig_agentconfig_bandwidth(const char *text, guint64 *mibps, GError **error)
{
    VmigModelQuantity q;
    if (!vmig_model_quantity_parse(text, "bytes/s", &q, error))
        return FALSE;
    if (q.negative && !vmig_model_quantity_is_zero(&q)) {
        g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                    "a bandwidth cannot be negative");
        return FALSE;
    }
    /* units + nanos/1e9 with nanos < 1e9: the fraction never reaches a whole MiB */
    guint64 v = (guint64)q.units / (1024 * 1024);
    if (v == 0 && !vmig_model_quantity_is_zero(&q)) {
        g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                    "below 1Mi (libvirt limits migrations in whole MiB/s; 0 turns the budget "
                    "off)");
        return FALSE;
    }
    *mibps = MIN(v, (guint64)(G_MAXINT64 / (1024 * 1024)));
    return TRUE;
}

static const char *
vmig_agentconfig_source_name(VmigAgentConfigSource s)
{
    static const char *const names[] = {
        [VMIG_AGENTCONFIG_SOURCE_DEFAULT] = "default",
        [VMIG_AGENTCONFIG_SOURCE_FILE] = "config file",
        [VMIG_AGENTCONFIG_SOURCE_ENV] = "environment",
        [VMIG_AGENTCONFIG_SOURCE_FLAG] = "command line",
    };
    return names[s];
}

static gboolean
vmig_agentconfig_set(VmigAgentConfig *cfg, const OptSpec *o, const char *value,
                     VmigAgentConfigSource src, const char *where, GError **error)
{
    char *field = (char *)cfg + o->offset;
    switch (o->type) {
    case OPT_STRING: {
        char **p = (char **)field;
        g_free(*p);
        *p = value ? g_strdup(value) : NULL;
        return TRUE;
    }
    case OPT_BANDWIDTH: {
        guint64 mibps = 0;
        g_autoptr(GError) perr = NULL;
        if (!vmig_agentconfig_bandwidth(value, &mibps, &perr)) {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                        "--%s (%s%s%s): '%s' is not a bandwidth in bytes/s like 100Mi: %s", o->name,
                        vmig_agentconfig_source_name(src), where ? " " : "", where ? where : "",
                        value, perr->message);
            return FALSE;
        }
        char **p = (char **)field;
        g_free(*p);
        *p = g_strdup(value);
        return TRUE;
    }
    case OPT_BOOL: {
        gboolean *p = (gboolean *)field;
        if (g_ascii_strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0)
            *p = TRUE;
        else if (g_ascii_strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0)
            *p = FALSE;
        else {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                        "--%s (%s%s%s): '%s' is not true or false", o->name,
                        vmig_agentconfig_source_name(src), where ? " " : "", where ? where : "",
                        value);
            return FALSE;
        }
        return TRUE;
    }
    case OPT_MS:
    case OPT_MS0: {
        guint64 v = 0, min = o->type == OPT_MS0 ? 0 : 1;
        g_autoptr(GError) perr = NULL;
        if (!g_ascii_string_to_unsigned(value, 10, min, G_MAXUINT32 / 2, &v, &perr)) {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                        "--%s (%s%s%s): '%s' is not a whole number of milliseconds between %u "
                        "and %u",
                        o->name, vmig_agentconfig_source_name(src), where ? " " : "",
                        where ? where : "", value, (guint)min, G_MAXUINT32 / 2);
            return FALSE;
        }
        *(guint *)field = (guint)v;
        return TRUE;
    }
    case OPT_COUNT: {
        guint64 v = 0;
        g_autoptr(GError) perr = NULL;
        if (!g_ascii_string_to_unsigned(value, 10, 1, 1000, &v, &perr)) {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                        "--%s (%s%s%s): '%s' is not a whole number between 1 and 1000", o->name,
                        vmig_agentconfig_source_name(src), where ? " " : "", where ? where : "",
                        value);
            return FALSE;
        }
        *(guint *)field = (guint)v;
        return TRUE;
    }
    }
    g_assert_not_reached();
}

void
vmig_agentconfig_free(VmigAgentConfig *cfg)
{
    if (!cfg)
        return;
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_agentconfig_options); i++) {
        const OptSpec *o = &vmig_agentconfig_options[i];
        if (o->type == OPT_STRING || o->type == OPT_BANDWIDTH)
            g_free(*(char **)((char *)cfg + o->offset));
    }
    g_free(cfg);
}

/* "command line", "environment NODE_NAME", "config file /etc/x.conf" or "default": where
 * the value of option @name came from, for messages of checks that span options. */
static const char *
vmig_agentconfig_origin(GHashTable *origins, const char *name)
{
    const char *o = g_hash_table_lookup(origins, name);
    return o ? o : "default";
}

static gboolean
vmig_agentconfig_validate(VmigAgentConfig *cfg, GHashTable *origins, GError **error)
{
#define ORIGIN(opt) vmig_agentconfig_origin(origins, opt)
    if (!cfg->node_name || !*cfg->node_name) {
        g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_MISSING,
                    "--node-name: no value (set the flag, VMIGRATED_NODE_NAME, or NODE_NAME "
                    "from the Downward API)");
        return FALSE;
    }
    if (!vmig_model_validate_name(cfg->node_name, "--node-name", NULL)) {
        g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                    "--node-name (%s): '%s' is not a DNS-1123 subdomain", ORIGIN("node-name"),
                    cfg->node_name);
        return FALSE;
    }
    g_autoptr(GError) nerr = NULL;
    if (!vmig_model_validate_namespace(cfg->lease_namespace, "--lease-namespace", &nerr)) {
        g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID, "%s (%s)",
                    nerr->message, ORIGIN("lease-namespace"));
        return FALSE;
    }
    if (strcmp(cfg->log_format, "text") != 0 && strcmp(cfg->log_format, "json") != 0) {
        g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                    "--log-format (%s): '%s' is not text or json", ORIGIN("log-format"),
                    cfg->log_format);
        return FALSE;
    }
    if (cfg->migration_address && *cfg->migration_address &&
        !g_hostname_is_ip_address(cfg->migration_address)) {
        g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                    "--migration-address (%s): '%s' is not an IPv4 or IPv6 address",
                    ORIGIN("migration-address"), cfg->migration_address);
        return FALSE;
    }
    if (cfg->http_address && *cfg->http_address) {
        /* HOST:PORT, [V6]:PORT or :PORT, port 0-65535 (0: kernel-chosen) */
        const char *colon = strrchr(cfg->http_address, ':');
        guint64 port = 0;
        gboolean bracket_ok = cfg->http_address[0] != '[' || (colon && colon[-1] == ']');
        if (!colon || !bracket_ok ||
            !g_ascii_string_to_unsigned(colon + 1, 10, 0, 65535, &port, NULL)) {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                        "--http-address (%s): '%s' is not HOST:PORT, [IPV6]:PORT or :PORT",
                        ORIGIN("http-address"), cfg->http_address);
            return FALSE;
        }
    }
    if (!g_path_is_absolute(cfg->pod_share_path)) {
        g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                    "--pod-share-path (%s): '%s' is not an absolute path", ORIGIN("pod-share-path"),
                    cfg->pod_share_path);
        return FALSE;
    }
    /* Check each template once with sample values so a typo fails at start, not at the
     * first migration. */
    const struct {
        const char *opt;
        const char *tmpl;
    } templates[] = {
        {"pod-share-dir", cfg->pod_share_dir},
        {"pod-pid-file", cfg->pod_pid_file},
        {"libvirt-socket", cfg->libvirt_socket},
        {"domain-name", cfg->domain_name},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(templates); i++) {
        if (!templates[i].tmpl)
            continue;
        g_autoptr(GError) terr = NULL;
        g_autofree char *s =
            vmig_agentconfig_expand(templates[i].tmpl, "ns", "name",
                                    "00000000-0000-4000-8000-000000000000", "node", 1, &terr);
        if (!s) {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                        "--%s (%s): %s", templates[i].opt, ORIGIN(templates[i].opt), terr->message);
            return FALSE;
        }
        if (i != 3 && !g_path_is_absolute(s)) {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                        "--%s (%s): '%s' is not an absolute path", templates[i].opt,
                        ORIGIN(templates[i].opt), templates[i].tmpl);
            return FALSE;
        }
    }
    return TRUE;
#undef ORIGIN
}

VmigAgentConfig *
vmig_agentconfig_load(int *argc, char ***argv, char **envp, GError **error)
{
    g_autoptr(VmigAgentConfig) cfg = g_new0(VmigAgentConfig, 1);
    g_auto(GStrv) own_env = envp ? NULL : g_get_environ();
    char **env = envp ? envp : own_env;
    ParseState st = {.flags = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free)};
    g_autoptr(GHashTable) flags = st.flags;
    g_autofree char *config_file = NULL;
    gboolean print_config = FALSE;
    g_autoptr(GHashTable) origins = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);

    /* Flags: every table row becomes a callback option so we know which were given. */
    gsize n = G_N_ELEMENTS(vmig_agentconfig_options);
    g_autofree GOptionEntry *entries = g_new0(GOptionEntry, n + 3);
    for (gsize i = 0; i < n; i++) {
        const OptSpec *o = &vmig_agentconfig_options[i];
        entries[i] = (GOptionEntry){o->name,
                                    0,
                                    o->type == OPT_BOOL ? G_OPTION_FLAG_NO_ARG : 0,
                                    G_OPTION_ARG_CALLBACK,
                                    (gpointer)vmig_agentconfig_flag_cb,
                                    o->help,
                                    o->arg};
    }
    entries[n] = (GOptionEntry){"config",
                                'c',
                                0,
                                G_OPTION_ARG_FILENAME,
                                &config_file,
                                "key file with options (group [vmigrated])",
                                "FILE"};
    entries[n + 1] = (GOptionEntry){"print-config",
                                    0,
                                    0,
                                    G_OPTION_ARG_NONE,
                                    &print_config,
                                    "print the effective configuration and exit",
                                    NULL};

    g_autoptr(GOptionContext) ctx = g_option_context_new("- live-migration node agent");
    g_option_context_set_summary(
        ctx, "Every option can also be set in the key file (same name, group [vmigrated]) or\n"
             "as environment variable VMIGRATED_<OPTION> (upper case, '-' -> '_').\n"
             "Precedence: flag > environment > key file > default.");
    GOptionGroup *group = g_option_group_new(NULL, NULL, NULL, &st, NULL);
    g_option_group_add_entries(group, entries);
    g_option_context_set_main_group(ctx, group);
    g_autoptr(GError) perr = NULL;
    if (!g_option_context_parse(ctx, argc, argv, &perr)) {
        g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_USAGE, "%s",
                    perr->message);
        return NULL;
    }
    if (*argc > 1) {
        g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_USAGE,
                    "unexpected argument '%s'", (*argv)[1]);
        return NULL;
    }

    g_autoptr(GKeyFile) kf = NULL;
    if (config_file) {
        kf = g_key_file_new();
        g_autoptr(GError) kerr = NULL;
        if (!g_key_file_load_from_file(kf, config_file, G_KEY_FILE_NONE, &kerr)) {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_FILE,
                        "--config %s: %s", config_file, kerr->message);
            return NULL;
        }
        if (!g_key_file_has_group(kf, "vmigrated")) {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_FILE,
                        "--config %s: no group [vmigrated] (the options go under that group)",
                        config_file);
            return NULL;
        }
        g_auto(GStrv) keys = g_key_file_get_keys(kf, "vmigrated", NULL, NULL);
        for (char **k = keys; k && *k; k++) {
            if (!vmig_agentconfig_find(*k)) {
                g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_FILE,
                            "--config %s: unknown key '%s' in group [vmigrated]", config_file, *k);
                return NULL;
            }
        }
    }

    for (gsize i = 0; i < n; i++) {
        const OptSpec *o = &vmig_agentconfig_options[i];
        g_autofree char *env_name = vmig_agentconfig_env_name(o->name);
        g_autofree char *file_value = NULL;
        g_autofree char *where = NULL;
        const char *value = o->def;
        VmigAgentConfigSource src = VMIG_AGENTCONFIG_SOURCE_DEFAULT;

        if (kf && g_key_file_has_key(kf, "vmigrated", o->name, NULL)) {
            file_value = g_key_file_get_string(kf, "vmigrated", o->name, NULL);
            value = file_value;
            src = VMIG_AGENTCONFIG_SOURCE_FILE;
            where = g_strdup(config_file);
        }
        const char *ev = o->env ? g_environ_getenv(env, o->env) : NULL;
        const char *ev2 = g_environ_getenv(env, env_name);
        if (ev2 || (ev && *ev)) {
            value = ev2 ? ev2 : ev;
            src = VMIG_AGENTCONFIG_SOURCE_ENV;
            g_free(where);
            where = g_strdup(ev2 ? env_name : o->env);
        }
        const char *fv = g_hash_table_lookup(flags, o->name);
        if (fv) {
            value = fv;
            src = VMIG_AGENTCONFIG_SOURCE_FLAG;
            g_clear_pointer(&where, g_free);
        }
        if (value && !vmig_agentconfig_set(cfg, o, value, src, where, error))
            return NULL;
        g_hash_table_insert(origins, (gpointer)o->name,
                            g_strdup_printf("%s%s%s", vmig_agentconfig_source_name(src),
                                            where ? " " : "", where ? where : ""));
    }
    if (cfg->kubeconfig && !*cfg->kubeconfig)
        g_clear_pointer(&cfg->kubeconfig, g_free);
    if (cfg->pod_pid_file && !*cfg->pod_pid_file)
        g_clear_pointer(&cfg->pod_pid_file, g_free);
    /* checked when set: cannot fail here */
    if (!vmig_agentconfig_bandwidth(cfg->migration_bandwidth_budget,
                                    &cfg->migration_bandwidth_budget_mibps, error))
        return NULL;

    if (!vmig_agentconfig_validate(cfg, origins, error))
        return NULL;
    if (print_config) {
        g_autofree char *text = vmig_agentconfig_to_keyfile(cfg);
        fputs(text, stdout);
        return NULL;
    }
    return g_steal_pointer(&cfg);
}

char *
vmig_agentconfig_to_keyfile(const VmigAgentConfig *cfg)
{
    GString *out = g_string_new("[vmigrated]\n");
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_agentconfig_options); i++) {
        const OptSpec *o = &vmig_agentconfig_options[i];
        const char *field = (const char *)cfg + o->offset;
        g_string_append_printf(out, "# %s\n", o->help);
        switch (o->type) {
        case OPT_STRING:
        case OPT_BANDWIDTH: {
            const char *v = *(char *const *)field;
            g_string_append_printf(out, "%s%s=%s\n", v ? "" : "#", o->name, v ? v : "");
            break;
        }
        case OPT_BOOL:
            g_string_append_printf(out, "%s=%s\n", o->name,
                                   *(const gboolean *)field ? "true" : "false");
            break;
        case OPT_MS:
        case OPT_MS0:
        case OPT_COUNT:
            g_string_append_printf(out, "%s=%u\n", o->name, *(const guint *)field);
            break;
        }
    }
    return g_string_free(out, FALSE);
}

char *
vmig_agentconfig_expand(const char *template_str, const char *ns, const char *name, const char *uid,
                        const char *node, gint64 pid, GError **error)
{
    GString *out = g_string_new(NULL);
    const char *p = template_str;
    while (*p) {
        if (*p != '{') {
            g_string_append_c(out, *p++);
            continue;
        }
        const char *end = strchr(p, '}');
        if (!end) {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                        "template '%s': unclosed '{'", template_str);
            g_string_free(out, TRUE);
            return NULL;
        }
        g_autofree char *key = g_strndup(p + 1, end - p - 1);
        const char *val = NULL;
        gboolean ok = FALSE;
        g_autofree char *pidtext = NULL;
        if (strcmp(key, "namespace") == 0) {
            val = ns;
            ok = vmig_model_validate_namespace(ns, key, NULL);
        } else if (strcmp(key, "name") == 0) {
            val = name;
            ok = vmig_model_validate_name(name, key, NULL);
        } else if (strcmp(key, "uid") == 0) {
            val = uid;
            ok = vmig_model_validate_uid(uid, key, NULL);
        } else if (strcmp(key, "node") == 0) {
            val = node;
            ok = vmig_model_validate_name(node, key, NULL);
        } else if (strcmp(key, "pid") == 0) {
            pidtext = g_strdup_printf("%" G_GINT64_FORMAT, pid);
            val = pidtext;
            ok = pid > 0;
        } else {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                        "template '%s': unknown placeholder {%s} (known: {namespace} {name} "
                        "{uid} {node} {pid})",
                        template_str, key);
            g_string_free(out, TRUE);
            return NULL;
        }
        if (!ok) {
            g_set_error(error, VMIG_AGENTCONFIG_ERROR, VMIG_AGENTCONFIG_ERROR_INVALID,
                        "template '%s': {%s} value '%s' is not valid there", template_str, key,
                        val ? val : "(none)");
            g_string_free(out, TRUE);
            return NULL;
        }
        g_string_append(out, val);
        p = end + 1;
    }
    return g_string_free(out, FALSE);
}
