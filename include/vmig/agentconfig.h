/* vmig/agentconfig.h - the node agent's own configuration (not the cluster's).
 *
 * vmigrated reads its settings from, in increasing precedence: built-in defaults,
 * an optional key file (--config, group [vmigrated], keys named like the long
 * options), environment variables (VMIGRATED_<OPTION>, plus the Downward-API
 * NODE_NAME), and command-line flags. One table declares every option with its
 * type, default, environment name and help text, so --help, the key file and the
 * validation can never disagree. Bad values are refused at start with the option
 * and where it came from named.
 *
 * It also expands the path templates that locate a VMI's pod on this node
 * ({namespace}, {name}, {uid}, {node}); every value is validated before it can
 * reach a file path, so a name with '/' or '..' never becomes one.
 *
 * The cluster-wide migration settings (KubeVirt CR, MigrationPolicy) are not
 * here: see vmig/migconfig.h.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define VMIG_AGENTCONFIG_ERROR (vmig_agentconfig_error_quark())
GQuark vmig_agentconfig_error_quark(void);

typedef enum {
    VMIG_AGENTCONFIG_ERROR_INVALID, /* a value that does not parse or is out of range */
    VMIG_AGENTCONFIG_ERROR_MISSING, /* a required option has no value from any source */
    VMIG_AGENTCONFIG_ERROR_FILE,    /* the key file cannot be read or parsed */
    VMIG_AGENTCONFIG_ERROR_USAGE,   /* unknown flag, stray argument */
} VmigAgentConfigError;

/* Where a value came from, for error messages and `--print-config`. */
typedef enum {
    VMIG_AGENTCONFIG_SOURCE_DEFAULT,
    VMIG_AGENTCONFIG_SOURCE_FILE,
    VMIG_AGENTCONFIG_SOURCE_ENV,
    VMIG_AGENTCONFIG_SOURCE_FLAG,
} VmigAgentConfigSource;

typedef struct {
    /* identity */
    char *node_name;       /* --node-name / NODE_NAME (Downward API); required, DNS-1123 */
    char *kubeconfig;      /* --kubeconfig / KUBECONFIG; NULL = in-cluster service account */
    char *lease_namespace; /* namespace of the agents' heartbeat Leases */

    /* migration network and TLS */
    char *migration_address; /* IP the target proxy binds and publishes as targetNodeAddress;
                                NULL = the Node's InternalIP */
    char *tls_cert;          /* PEM files of the mounted Secret */
    char *tls_key;
    char *tls_ca;
    gboolean disable_tls; /* no TLS credentials: migrations this node is source of are plain
                             TCP, TLS ones toward it fail (the KubeVirt CR's
                             migrations.disableTLS decides otherwise; docs/daemon.md) */

    /* locating a VMI's pod on this node */
    char *pod_share_dir;  /* host path of the pod's virtShareDir, template */
    char *pod_pid_file;   /* optional template: file holding the launcher's PID; when set
                             the share dir is /proc/<pid>/root + pod_share_path */
    char *pod_share_path; /* virtShareDir as seen inside the pod (migrate_uri paths) */
    char *libvirt_socket; /* host path of the pod's libvirt socket, template */
    char *domain_name;    /* libvirt domain name, template; KubeVirt: {namespace}_{name} */

    /* timing, all in milliseconds */
    guint shutdown_grace_ms;            /* finish or hand over live migrations on SIGTERM */
    guint target_ready_timeout_ms;      /* Scheduled/PreparingTarget deadline (B15) */
    guint job_poll_interval_ms;         /* virDomainGetJobStats sampling */
    guint status_interval_ms;           /* progress written to status at most this often */
    guint abort_wait_ms;                /* bounded wait after virDomainAbortJob */
    guint postcopy_recovery_timeout_ms; /* retry VIR_MIGRATE_POSTCOPY_RESUME this long (B14);
                                           0 = no recovery, fail at once */
    guint postcopy_recovery_attempts;   /* ... at most this many times (B14's N), 1..1000 */

    /* limits */
    guint inbound_migrations;         /* migrations this node receives at once (inbound slots) */
    char *migration_bandwidth_budget; /* bytes/s as a Kubernetes quantity ("100Mi"),
                                         as given; "0" = off */
    guint64 migration_bandwidth_budget_mibps; /* the same in MiB/s, rounded down; 0 = off */

    /* serving */
    char *http_address; /* /healthz, /readyz, /metrics; "" = off */

    /* logging */
    char *log_format; /* "text" or "json" */
    gboolean verbose;
} VmigAgentConfig;

/**
 * vmig_agentconfig_load:
 * @argc: (inout): argument count; flags are removed
 * @argv: (inout): arguments
 * @envp: (nullable): environment (g_get_environ() style); NULL reads the process's
 * @error: VMIG_AGENTCONFIG_ERROR_USAGE, _INVALID, _MISSING or _FILE
 *
 * Parses flags, the --config key file and the environment over the defaults and
 * validates the result. Messages name the option and its source, e.g.
 * "--job-poll-interval-ms (environment VMIGRATED_JOB_POLL_INTERVAL_MS): 'fast' is
 * not a whole number of milliseconds".
 *
 * Returns: (transfer full) (nullable): the configuration; free with
 *   vmig_agentconfig_free(). NULL when --help was shown (with no error) or on error.
 */
VmigAgentConfig *vmig_agentconfig_load(int *argc, char ***argv, char **envp, GError **error);

/**
 * vmig_agentconfig_to_keyfile:
 * Returns: (transfer full): the effective configuration as key-file text, each key
 *   with a comment naming its source; used by `vmigrated --print-config` and as the
 *   ConfigMap template.
 */
char *vmig_agentconfig_to_keyfile(const VmigAgentConfig *cfg);

/**
 * vmig_agentconfig_expand:
 * @template: a path template with {namespace}, {name}, {uid}, {node}, {pid}
 * @ns: the VMI's namespace (DNS-1123 label)
 * @name: the VMI's name (DNS-1123 subdomain)
 * @uid: (nullable): the VMI's UID (UUID), needed only when the template uses {uid}
 * @node: (nullable): node name, needed only for {node}
 * @pid: launcher PID, needed only for {pid} (0 = not known)
 * @error: VMIG_AGENTCONFIG_ERROR_INVALID naming the bad value or placeholder
 *
 * Expands a template. Each value is validated first, so the result can never
 * climb out of the intended directory.
 *
 * Returns: (transfer full) (nullable): the expanded string.
 */
char *vmig_agentconfig_expand(const char *template_str, const char *ns, const char *name,
                              const char *uid, const char *node, gint64 pid, GError **error);

/* Frees a configuration; NULL is accepted. */
void vmig_agentconfig_free(VmigAgentConfig *cfg);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigAgentConfig, vmig_agentconfig_free)

G_END_DECLS
