/* metrics.c - the registry and its text exposition (vmig/metrics.h).
 *
 * A series is keyed by its rendered label set (`{namespace="ns1",name="vm1"}`): escaping is
 * one-to-one, so the key identifies the values, and sorting keys sorts series the same way
 * on every render. */
#include "vmig/metrics.h"

#include <math.h>
#include <string.h>

G_DEFINE_QUARK(vmig - metrics - error - quark, vmig_metrics_error)

static const char *const vmig_metrics_type_names[] = {
    [VMIG_METRICS_COUNTER] = "counter",
    [VMIG_METRICS_GAUGE] = "gauge",
};

typedef struct {
    char *name;
    char *help;
    VmigMetricsType type;
    GStrv labels;
    guint n_labels;
    GHashTable *series; /* rendered label set ("" without labels) -> double* */
} VmigMetricsFamily;

struct _VmigMetrics {
    GMutex lock;
    GHashTable *families; /* name -> VmigMetricsFamily* */
};

const char *
vmig_metrics_type_to_string(VmigMetricsType type)
{
    if ((gsize)type >= G_N_ELEMENTS(vmig_metrics_type_names))
        return "untyped";
    return vmig_metrics_type_names[type];
}

static void
vmig_metrics_family_free(gpointer p)
{
    VmigMetricsFamily *f = p;
    g_free(f->name);
    g_free(f->help);
    g_strfreev(f->labels);
    g_hash_table_unref(f->series);
    g_free(f);
}

VmigMetrics *
vmig_metrics_new(void)
{
    VmigMetrics *m = g_new0(VmigMetrics, 1);
    g_mutex_init(&m->lock);
    m->families = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, vmig_metrics_family_free);
    return m;
}

void
vmig_metrics_free(VmigMetrics *m)
{
    if (!m)
        return;
    g_hash_table_unref(m->families);
    g_mutex_clear(&m->lock);
    g_free(m);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; no ':' for label names. */
static gboolean
vmig_metrics_name_valid(const char *s, gboolean label)
{
    if (!s || !*s)
        return FALSE;
    if (label && g_str_has_prefix(s, "__"))
        return FALSE; /* reserved for Prometheus itself */
    for (const char *p = s; *p; p++) {
        gboolean ok = g_ascii_isalpha(*p) || *p == '_' || (!label && *p == ':') ||
                      (p != s && g_ascii_isdigit(*p));
        if (!ok)
            return FALSE;
    }
    return TRUE;
}

static void
vmig_metrics_escape(GString *out, const char *s, gboolean quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            g_string_append(out, "\\\\");
        else if (*p == '\n')
            g_string_append(out, "\\n");
        else if (quote && *p == '"')
            g_string_append(out, "\\\"");
        else
            g_string_append_c(out, *p);
    }
}

static gboolean
vmig_metrics_strv_equal(const char *const *a, const char *const *b)
{
    gsize na = a ? g_strv_length((char **)a) : 0, nb = b ? g_strv_length((char **)b) : 0;
    if (na != nb)
        return FALSE;
    for (gsize i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return FALSE;
    return TRUE;
}

static double *
vmig_metrics_value_new(double v)
{
    double *d = g_new(double, 1);
    *d = v;
    return d;
}

gboolean
vmig_metrics_register(VmigMetrics *m, const char *name, VmigMetricsType type, const char *help,
                      const char *const *label_names, GError **error)
{
    if (!vmig_metrics_name_valid(name, FALSE)) {
        g_set_error(error, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_INVALID_NAME,
                    "metric name '%s' is not [a-zA-Z_:][a-zA-Z0-9_:]*", name ? name : "");
        return FALSE;
    }
    for (const char *const *l = label_names; l && *l; l++) {
        if (!vmig_metrics_name_valid(*l, TRUE) || strcmp(*l, "le") == 0 ||
            strcmp(*l, "quantile") == 0) {
            g_set_error(error, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_INVALID_NAME,
                        "metric %s: label name '%s' is not [a-zA-Z_][a-zA-Z0-9_]* (or is "
                        "reserved)",
                        name, *l);
            return FALSE;
        }
        for (const char *const *k = label_names; k < l; k++)
            if (strcmp(*k, *l) == 0) {
                g_set_error(error, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_INVALID_NAME,
                            "metric %s: label '%s' given twice", name, *l);
                return FALSE;
            }
    }
    g_mutex_lock(&m->lock);
    VmigMetricsFamily *f = g_hash_table_lookup(m->families, name);
    gboolean ok = TRUE;
    if (f) {
        ok = f->type == type && g_strcmp0(f->help, help ? help : "") == 0 &&
             vmig_metrics_strv_equal((const char *const *)f->labels, label_names);
        if (!ok)
            g_set_error(error, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_EXISTS,
                        "metric %s is already registered with another type, help or labels", name);
    } else {
        f = g_new0(VmigMetricsFamily, 1);
        f->name = g_strdup(name);
        f->help = g_strdup(help ? help : "");
        f->type = type;
        f->labels = g_strdupv((char **)(label_names ? label_names : (const char *const[]){NULL}));
        f->n_labels = g_strv_length(f->labels);
        f->series = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        if (f->n_labels == 0)
            g_hash_table_insert(f->series, g_strdup(""), vmig_metrics_value_new(0));
        g_hash_table_insert(m->families, f->name, f);
    }
    g_mutex_unlock(&m->lock);
    return ok;
}

/* Called with the lock held. */
static VmigMetricsFamily *
vmig_metrics_lookup(VmigMetrics *m, const char *name, const char *const *values, char **key,
                    GError **error)
{
    VmigMetricsFamily *f = name ? g_hash_table_lookup(m->families, name) : NULL;
    if (!f) {
        g_set_error(error, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_UNKNOWN, "no metric named '%s'",
                    name ? name : "");
        return NULL;
    }
    if (f->n_labels == 0) {
        *key = g_strdup("");
        return f;
    }
    GString *k = g_string_new("{");
    for (guint i = 0; i < f->n_labels; i++) {
        if (!values || !values[i]) {
            g_set_error(error, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_LABELS,
                        "metric %s: no value for label '%s'", name, f->labels[i]);
            g_string_free(k, TRUE);
            return NULL;
        }
        g_string_append_printf(k, "%s%s=\"", i ? "," : "", f->labels[i]);
        vmig_metrics_escape(k, values[i], TRUE);
        g_string_append_c(k, '"');
    }
    g_string_append_c(k, '}');
    *key = g_string_free(k, FALSE);
    return f;
}

static gboolean
vmig_metrics_update(VmigMetrics *m, const char *name, const char *const *values, double v,
                    gboolean add, GError **error)
{
    g_autofree char *key = NULL;
    gboolean ok = FALSE;
    g_mutex_lock(&m->lock);
    VmigMetricsFamily *f = vmig_metrics_lookup(m, name, values, &key, error);
    if (!f)
        goto out;
    double *cur = g_hash_table_lookup(f->series, key);
    double next = add ? (cur ? *cur : 0) + v : v;
    if (isnan(v) && (add || f->type == VMIG_METRICS_COUNTER)) {
        g_set_error(error, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_INVALID_VALUE,
                    "metric %s%s: NaN is not a count", name, key);
        goto out;
    }
    if (f->type == VMIG_METRICS_COUNTER && (next < (cur ? *cur : 0) || next < 0)) {
        g_set_error(error, VMIG_METRICS_ERROR, VMIG_METRICS_ERROR_INVALID_VALUE,
                    "metric %s%s: a counter cannot go from %g to %g", name, key, cur ? *cur : 0,
                    next);
        goto out;
    }
    if (cur)
        *cur = next;
    else
        g_hash_table_insert(f->series, g_steal_pointer(&key), vmig_metrics_value_new(next));
    ok = TRUE;
out:
    g_mutex_unlock(&m->lock);
    return ok;
}

gboolean
vmig_metrics_set(VmigMetrics *m, const char *name, const char *const *values, double value,
                 GError **error)
{
    return vmig_metrics_update(m, name, values, value, FALSE, error);
}

gboolean
vmig_metrics_add(VmigMetrics *m, const char *name, const char *const *values, double delta,
                 GError **error)
{
    return vmig_metrics_update(m, name, values, delta, TRUE, error);
}

gboolean
vmig_metrics_get(VmigMetrics *m, const char *name, const char *const *values, double *out)
{
    g_autofree char *key = NULL;
    g_mutex_lock(&m->lock);
    VmigMetricsFamily *f = vmig_metrics_lookup(m, name, values, &key, NULL);
    double *cur = f ? g_hash_table_lookup(f->series, key) : NULL;
    if (cur && out)
        *out = *cur;
    g_mutex_unlock(&m->lock);
    return cur != NULL;
}

gboolean
vmig_metrics_remove(VmigMetrics *m, const char *name, const char *const *values)
{
    g_autofree char *key = NULL;
    g_mutex_lock(&m->lock);
    VmigMetricsFamily *f = vmig_metrics_lookup(m, name, values, &key, NULL);
    gboolean found = f && f->n_labels > 0 && g_hash_table_remove(f->series, key);
    g_mutex_unlock(&m->lock);
    return found;
}

void
vmig_metrics_clear(VmigMetrics *m, const char *name)
{
    g_mutex_lock(&m->lock);
    VmigMetricsFamily *f = name ? g_hash_table_lookup(m->families, name) : NULL;
    if (f) {
        g_hash_table_remove_all(f->series);
        if (f->n_labels == 0)
            g_hash_table_insert(f->series, g_strdup(""), vmig_metrics_value_new(0));
    }
    g_mutex_unlock(&m->lock);
}

static void
vmig_metrics_format_value(GString *out, double v)
{
    if (isnan(v))
        g_string_append(out, "NaN");
    else if (isinf(v))
        g_string_append(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0) /* 2^53: exact as an integer */
        g_string_append_printf(out, "%.0f", v);
    else {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        /* locale-independent: a decimal comma would break every parser */
        g_string_append(out, g_ascii_formatd(buf, sizeof buf, "%.17g", v));
    }
}

static gint
vmig_metrics_strcmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static GPtrArray *
vmig_metrics_sorted_keys(GHashTable *t)
{
    GPtrArray *keys = g_ptr_array_new();
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, t);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_ptr_array_add(keys, k);
    g_ptr_array_sort(keys, vmig_metrics_strcmp);
    return keys;
}

char *
vmig_metrics_render(VmigMetrics *m)
{
    GString *out = g_string_new(NULL);
    g_mutex_lock(&m->lock);
    g_autoptr(GPtrArray) names = vmig_metrics_sorted_keys(m->families);
    for (guint i = 0; i < names->len; i++) {
        VmigMetricsFamily *f = g_hash_table_lookup(m->families, names->pdata[i]);
        if (g_hash_table_size(f->series) == 0)
            continue;
        g_string_append_printf(out, "# HELP %s ", f->name);
        vmig_metrics_escape(out, f->help, FALSE);
        g_string_append_printf(out, "\n# TYPE %s %s\n", f->name,
                               vmig_metrics_type_to_string(f->type));
        g_autoptr(GPtrArray) keys = vmig_metrics_sorted_keys(f->series);
        for (guint j = 0; j < keys->len; j++) {
            double *v = g_hash_table_lookup(f->series, keys->pdata[j]);
            g_string_append_printf(out, "%s%s ", f->name, (const char *)keys->pdata[j]);
            vmig_metrics_format_value(out, *v);
            g_string_append_c(out, '\n');
        }
    }
    g_mutex_unlock(&m->lock);
    return g_string_free(out, FALSE);
}

/* ------------------------------------------------------------------------------------ */
/* vmigrated's catalogue: one row per metric                                            */

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static const struct {
    const char *name;
    VmigMetricsType type;
    const char *help;
    const char *const *labels;
} vmig_metrics_catalogue[] = {
    /* virt-handler's migration job statistics, for the migrations this node is source of */
    {VMIG_METRICS_DATA_PROCESSED, VMIG_METRICS_GAUGE,
     "The total Guest OS data processed and migrated to the new VM.",
     L("namespace", "name", "node")},
    {VMIG_METRICS_DATA_REMAINING, VMIG_METRICS_GAUGE,
     "The remaining guest OS data to be migrated to the new VM.", L("namespace", "name", "node")},
    {VMIG_METRICS_DATA_TOTAL, VMIG_METRICS_COUNTER,
     "The total Guest OS data to be migrated to the new VM.", L("namespace", "name", "node")},
    {VMIG_METRICS_DIRTY_RATE, VMIG_METRICS_GAUGE, "The rate of memory being dirty in the Guest OS.",
     L("namespace", "name", "node")},
    {VMIG_METRICS_TRANSFER_RATE, VMIG_METRICS_GAUGE,
     "The rate at which the memory is being transferred.", L("namespace", "name", "node")},
    {VMIG_METRICS_LAST_DOWNTIME, VMIG_METRICS_GAUGE,
     "Time, in seconds, the guest was paused during the cut-over of its last successful live "
     "migration.",
     L("namespace", "name", "node")},
    /* virt-controller's VMIM gauges, counted over the VMIMs this node is source of */
    {VMIG_METRICS_SUCCEEDED, VMIG_METRICS_GAUGE, "Indicates if the VMI migration succeeded.",
     L("vmi", "vmim", "namespace")},
    {VMIG_METRICS_FAILED, VMIG_METRICS_GAUGE, "Indicates if the VMI migration failed.",
     L("vmi", "vmim", "namespace")},
    {VMIG_METRICS_IN_UNSET, VMIG_METRICS_GAUGE,
     "Number of current unset migrations (not yet accepted by the source node's vmigrated).", NULL},
    {VMIG_METRICS_IN_PENDING, VMIG_METRICS_GAUGE, "Number of current pending migrations.", NULL},
    {VMIG_METRICS_IN_SCHEDULING, VMIG_METRICS_GAUGE, "Number of current scheduling migrations.",
     NULL},
    {VMIG_METRICS_IN_RUNNING, VMIG_METRICS_GAUGE,
     "Number of current running migrations (Scheduled, PreparingTarget, TargetReady, Running).",
     NULL},
    /* ours */
    {VMIG_METRICS_STARTED, VMIG_METRICS_COUNTER,
     "Migrations whose virDomainMigrateToURI3 call this node started.", NULL},
    {VMIG_METRICS_COMPLETED, VMIG_METRICS_COUNTER,
     "Migrations this node completed as source, by result (Succeeded, Failed).", L("result")},
    {VMIG_METRICS_PROXY_BYTES, VMIG_METRICS_COUNTER,
     "Bytes relayed by the migration proxy over finished connections, by channel (libvirt, "
     "memory, disk) and direction (forward: source to target; reverse).",
     L("channel", "direction")},
    {VMIG_METRICS_PROXY_CONNS, VMIG_METRICS_COUNTER,
     "Finished migration proxy connections, by channel, result (ok, error) and transport (tls, "
     "plain: KubeVirt's migrations.disableTLS as the source decided it).",
     L("channel", "result", "transport")},
    {VMIG_METRICS_PROXY_ACTIVE, VMIG_METRICS_GAUGE, "Open migration proxy connections, by channel.",
     L("channel")},
    {VMIG_METRICS_SLOTS_HELD, VMIG_METRICS_GAUGE,
     "Migration slots this node holds, by direction (outbound: as source; inbound: as target).",
     L("direction")},
    {VMIG_METRICS_INFORMER_LISTS, VMIG_METRICS_COUNTER,
     "LIST requests of an informer (the initial list and every relist after 410 Expired).",
     L("resource")},
    {VMIG_METRICS_RELISTS, VMIG_METRICS_COUNTER,
     "Relists of an informer because its watch answered 410 Expired (resourceVersion too old).",
     L("resource")},
    {VMIG_METRICS_RECONNECTS, VMIG_METRICS_COUNTER,
     "Watch streams of an informer that ended and were opened again (server close, error, read "
     "deadline, 410 Expired).",
     L("resource")},
    {VMIG_METRICS_API_ERRORS, VMIG_METRICS_COUNTER,
     "Kubernetes API writes that failed after their retries, by resource.", L("resource")},
    {VMIG_METRICS_POSTCOPY_RECOVERY, VMIG_METRICS_COUNTER,
     "Post-copy failure recovery as source, by result (failed: a resumable post-copy failure; "
     "attempt: a resume call started; recovered; gave_up: the recovery deadline passed).",
     L("result")},
    {VMIG_METRICS_READY, VMIG_METRICS_GAUGE,
     "1 when informers have synced and the node agent accepts migrations, else 0.", NULL},
    {VMIG_METRICS_BANDWIDTH_LIMIT, VMIG_METRICS_GAUGE,
     "Speed limit in bytes per second that libvirt applies to a running outbound migration of "
     "this node (its share of the node's bandwidth budget, else its bandwidthPerMigration); "
     "no series while unlimited.",
     L("namespace", "name", "node")},
    {VMIG_METRICS_BANDWIDTH_BUDGET, VMIG_METRICS_GAUGE,
     "This node's migration bandwidth budget in bytes per second, shared by its running "
     "outbound migrations (--migration-bandwidth-budget); 0 when off.",
     NULL},
};

#undef L

void
vmig_metrics_register_vmigrated(VmigMetrics *m)
{
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_metrics_catalogue); i++) {
        g_autoptr(GError) err = NULL;
        if (!vmig_metrics_register(m, vmig_metrics_catalogue[i].name,
                                   vmig_metrics_catalogue[i].type, vmig_metrics_catalogue[i].help,
                                   vmig_metrics_catalogue[i].labels, &err))
            g_warning("metrics: %s", err->message);
    }
}
