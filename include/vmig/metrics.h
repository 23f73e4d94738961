/* vmig/metrics.h - counters and gauges, rendered in the Prometheus text format.
 *
 * The registry holds metric families (a name, HELP text, a type and the names of its labels)
 * and, per family, series keyed by their label values. The controller sets values as
 * migrations progress and end; the httpd module (vmig/httpd.h) renders the registry for
 * /metrics in text exposition format 0.0.4, families sorted by name and series by label
 * values, so two scrapes of the same state are byte-identical. Names follow KubeVirt where it
 * has the metric (virt-handler's kubevirt_vmi_migration_* progress gauges labelled
 * namespace/name/node, virt-controller's phase gauges) and use vmigrated_* otherwise; the
 * whole catalogue is registered by vmig_metrics_register_vmigrated(). Every call takes the
 * registry's lock, so worker threads may set values too.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define VMIG_METRICS_ERROR (vmig_metrics_error_quark())
GQuark vmig_metrics_error_quark(void);

typedef enum {
    VMIG_METRICS_ERROR_INVALID_NAME,  /* metric or label name outside [a-zA-Z_:][a-zA-Z0-9_:]* */
    VMIG_METRICS_ERROR_EXISTS,        /* registered again with another type, help or labels */
    VMIG_METRICS_ERROR_UNKNOWN,       /* no family of that name */
    VMIG_METRICS_ERROR_LABELS,        /* label values missing or NULL */
    VMIG_METRICS_ERROR_INVALID_VALUE, /* counter decreased, NaN added */
} VmigMetricsError;

/* Metric types (the `# TYPE` word). */
typedef enum {
    VMIG_METRICS_COUNTER, /* only goes up; "counter" */
    VMIG_METRICS_GAUGE,   /* any value; "gauge" */
} VmigMetricsType;

/* The HTTP Content-Type of vmig_metrics_render()'s output. */
#define VMIG_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* KubeVirt's names (virt-handler migration job statistics: labels namespace, name, node). */
#define VMIG_METRICS_DATA_PROCESSED "kubevirt_vmi_migration_data_processed_bytes"
#define VMIG_METRICS_DATA_REMAINING "kubevirt_vmi_migration_data_remaining_bytes"
#define VMIG_METRICS_DATA_TOTAL     "kubevirt_vmi_migration_data_bytes_total"
#define VMIG_METRICS_DIRTY_RATE     "kubevirt_vmi_migration_dirty_memory_rate_bytes"
#define VMIG_METRICS_TRANSFER_RATE  "kubevirt_vmi_migration_memory_transfer_rate_bytes"
#define VMIG_METRICS_LAST_DOWNTIME  "kubevirt_vmi_migration_last_downtime_seconds"
/* KubeVirt's names (virt-controller, from the VMIM cache; labels vmi, vmim, namespace). */
#define VMIG_METRICS_SUCCEEDED     "kubevirt_vmi_migration_succeeded"
#define VMIG_METRICS_FAILED        "kubevirt_vmi_migration_failed"
#define VMIG_METRICS_IN_UNSET      "kubevirt_vmi_migrations_in_unset_phase"
#define VMIG_METRICS_IN_PENDING    "kubevirt_vmi_migrations_in_pending_phase"
#define VMIG_METRICS_IN_SCHEDULING "kubevirt_vmi_migrations_in_scheduling_phase"
#define VMIG_METRICS_IN_RUNNING    "kubevirt_vmi_migrations_in_running_phase"
/* Ours. */
#define VMIG_METRICS_STARTED        "vmigrated_migrations_started_total"
#define VMIG_METRICS_COMPLETED      "vmigrated_migrations_completed_total" /* result */
#define VMIG_METRICS_PROXY_BYTES    "vmigrated_proxy_bytes_total"          /* channel, direction */
#define VMIG_METRICS_PROXY_CONNS    "vmigrated_proxy_connections_total"    /* ch/result/transport */
#define VMIG_METRICS_PROXY_ACTIVE   "vmigrated_proxy_connections_active"   /* channel */
#define VMIG_METRICS_SLOTS_HELD     "vmigrated_migration_slots_held"       /* direction */
#define VMIG_METRICS_INFORMER_LISTS "vmigrated_informer_lists_total"       /* resource */
#define VMIG_METRICS_RELISTS        "vmigrated_informer_relists_total"     /* resource */
#define VMIG_METRICS_RECONNECTS     "vmigrated_watch_reconnects_total"     /* resource */
#define VMIG_METRICS_API_ERRORS     "vmigrated_api_errors_total"           /* resource */
#define VMIG_METRICS_READY          "vmigrated_ready"
/* post-copy failure recovery (B14): result = failed (a resumable post-copy failure began a
 * recovery), attempt (a resume call started), recovered, gave_up */
#define VMIG_METRICS_POSTCOPY_RECOVERY "vmigrated_postcopy_recovery_total"
/* bytes/s: the speed limit libvirt applies to each running outbound migration (its share of
 * the node's budget, or its own bandwidthPerMigration); the node's budget, 0 = off */
#define VMIG_METRICS_BANDWIDTH_LIMIT                                                               \
    "vmigrated_migration_bandwidth_limit_bytes" /* ns, name, node */
#define VMIG_METRICS_BANDWIDTH_BUDGET "vmigrated_migration_bandwidth_budget_bytes"

typedef struct _VmigMetrics VmigMetrics;

/**
 * vmig_metrics_new:
 * Returns: (transfer full): an empty registry; free with vmig_metrics_free().
 */
VmigMetrics *vmig_metrics_new(void);

void vmig_metrics_free(VmigMetrics *metrics);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigMetrics, vmig_metrics_free)

/**
 * vmig_metrics_register:
 * @name: family name, [a-zA-Z_:][a-zA-Z0-9_:]*
 * @type: counter or gauge
 * @help: the `# HELP` text (any UTF-8; escaped when rendered)
 * @label_names: (nullable) (array zero-terminated=1): label names, [a-zA-Z_][a-zA-Z0-9_]*,
 *               not starting with "__"; NULL or empty for none
 * @error: VMIG_METRICS_ERROR_INVALID_NAME, VMIG_METRICS_ERROR_EXISTS
 *
 * Declares a family. Registering the same definition twice is a no-op. A family without
 * labels starts with one series at 0, so a gauge such as "migrations in Pending" shows 0
 * rather than nothing; labelled families have no series until a value is set.
 *
 * Returns: TRUE when the family is (already) registered as given.
 */
gboolean vmig_metrics_register(VmigMetrics *metrics, const char *name, VmigMetricsType type,
                               const char *help, const char *const *label_names, GError **error);

/**
 * vmig_metrics_set:
 * @label_values: (array): one value per label name of the family, in order (any UTF-8;
 *                escaped when rendered); NULL for a family without labels
 * @value: the new value (bytes, bytes/s, seconds or a count, as the name says)
 * @error: VMIG_METRICS_ERROR_UNKNOWN, _LABELS, _INVALID_VALUE (a counter set below its value)
 *
 * Sets one series, creating it when absent.
 */
gboolean vmig_metrics_set(VmigMetrics *metrics, const char *name, const char *const *label_values,
                          double value, GError **error);

/**
 * vmig_metrics_add:
 * @delta: added to the series (created at 0 when absent); a counter takes only delta >= 0
 * @error: VMIG_METRICS_ERROR_UNKNOWN, _LABELS, _INVALID_VALUE
 */
gboolean vmig_metrics_add(VmigMetrics *metrics, const char *name, const char *const *label_values,
                          double delta, GError **error);

/**
 * vmig_metrics_get:
 * @out: (out): the value
 * Returns: TRUE when the series exists.
 */
gboolean vmig_metrics_get(VmigMetrics *metrics, const char *name, const char *const *label_values,
                          double *out);

/**
 * vmig_metrics_remove:
 * Drops one series (e.g. a VMI's progress gauges once its migration ended).
 * Returns: TRUE when it existed.
 */
gboolean vmig_metrics_remove(VmigMetrics *metrics, const char *name,
                             const char *const *label_values);

/**
 * vmig_metrics_clear:
 * Drops every series of family @name (a family rebuilt from a cache on each recount).
 * A family without labels is reset to one series at 0.
 */
void vmig_metrics_clear(VmigMetrics *metrics, const char *name);

/**
 * vmig_metrics_render:
 * Renders every family that has a series in Prometheus text exposition format 0.0.4:
 * `# HELP`, `# TYPE`, then one line per series; families sorted by name, series by label
 * values; HELP text escapes `\` and newline, label values `\`, `"` and newline; values are
 * integers when whole and below 2^53, else `%.17g`, `NaN`, `+Inf`, `-Inf`.
 *
 * Returns: (transfer full): the text, ending with a newline (empty when nothing is set).
 */
char *vmig_metrics_render(VmigMetrics *metrics);

/**
 * vmig_metrics_register_vmigrated:
 * Registers vmigrated's catalogue (the VMIG_METRICS_* names above, with KubeVirt's HELP
 * texts and labels where KubeVirt has the metric). Cannot fail on a fresh registry.
 */
void vmig_metrics_register_vmigrated(VmigMetrics *metrics);

/* Returns: (transfer none): "counter" or "gauge". */
const char *vmig_metrics_type_to_string(VmigMetricsType type);

G_END_DECLS
