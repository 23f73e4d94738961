/* migconfig.c - effective migration configuration (see vmig/migconfig.h). */
#include "vmig/migconfig.h"

#include <string.h>

G_DEFINE_QUARK(vmig - migconfig - error - quark, vmig_migconfig_error)

typedef unsigned __int128 vmig_u128;

static const char *const source_names[] = {
    [VMIG_MIGCONFIG_FROM_DEFAULT] = "default",
    [VMIG_MIGCONFIG_FROM_KUBEVIRT] = "KubeVirt CR",
    [VMIG_MIGCONFIG_FROM_POLICY] = "MigrationPolicy",
};

const char *
vmig_migconfig_source_to_string(VmigMigconfigSource s)
{
    if ((gsize)s >= G_N_ELEMENTS(source_names))
        return "unknown";
    return source_names[s];
}

VmigMigconfig *
vmig_migconfig_new_defaults(void)
{
    VmigMigconfig *c = g_new0(VmigMigconfig, 1);
    c->parallel_migrations_per_cluster = VMIG_MIGCONFIG_DEFAULT_PARALLEL_PER_CLUSTER;
    c->parallel_outbound_migrations_per_node = VMIG_MIGCONFIG_DEFAULT_PARALLEL_OUTBOUND_PER_NODE;
    c->bandwidth_unlimited = TRUE;
    c->bandwidth_mibps = VMIG_MIGCONFIG_BANDWIDTH_MAX_MIBPS;
    c->completion_timeout_per_gib = VMIG_MIGCONFIG_DEFAULT_COMPLETION_TIMEOUT_PER_GIB;
    c->progress_timeout = VMIG_MIGCONFIG_DEFAULT_PROGRESS_TIMEOUT;
    c->node_drain_taint_key = g_strdup(VMIG_MIGCONFIG_DEFAULT_NODE_DRAIN_TAINT_KEY);
    return c;
}

void
vmig_migconfig_free(VmigMigconfig *c)
{
    if (!c)
        return;
    g_free(c->node_drain_taint_key);
    g_free(c->policy_name);
    g_free(c);
}

guint64
vmig_migconfig_bandwidth_mibps(const VmigModelQuantity *q, const char *field, gboolean *unlimited,
                               GError **error)
{
    *unlimited = FALSE;
    if (q->negative) {
        g_set_error(error, VMIG_MIGCONFIG_ERROR, VMIG_MIGCONFIG_ERROR_INVALID,
                    "%s: bandwidth must not be negative", field);
        return 0;
    }
    if (vmig_model_quantity_is_zero(q)) {
        *unlimited = TRUE;
        return VMIG_MIGCONFIG_BANDWIDTH_MAX_MIBPS;
    }
    /* Exact: value in nanos, then round to nearest MiB with halves up. */
    const vmig_u128 mib_nanos = (vmig_u128)(1024 * 1024) * 1000000000u;
    vmig_u128 nanos = (vmig_u128)q->units * 1000000000u + q->nanos;
    vmig_u128 mib = (nanos + mib_nanos / 2) / mib_nanos;
    if (mib == 0)
        mib = 1; /* a positive limit must never become 0 = unlimited */
    if (mib > VMIG_MIGCONFIG_BANDWIDTH_MAX_MIBPS)
        mib = VMIG_MIGCONFIG_BANDWIDTH_MAX_MIBPS;
    return (guint64)mib;
}

guint64
vmig_migconfig_bandwidth_parse(const char *text, const char *field, gboolean *unlimited,
                               GError **error)
{
    VmigModelQuantity q;
    g_autoptr(GError) e = NULL;
    *unlimited = FALSE;
    if (!vmig_model_quantity_parse(text, field, &q, &e)) {
        g_set_error(error, VMIG_MIGCONFIG_ERROR, VMIG_MIGCONFIG_ERROR_INVALID, "%s", e->message);
        return 0;
    }
    return vmig_migconfig_bandwidth_mibps(&q, field, unlimited, error);
}

gint64
vmig_migconfig_completion_timeout(gint64 per_gib, gint64 data_bytes)
{
    if (per_gib <= 0 || data_bytes <= 0)
        return 0;
    const vmig_u128 gib = (vmig_u128)1 << 30;
    vmig_u128 s = ((vmig_u128)per_gib * (vmig_u128)data_bytes + gib - 1) / gib;
    if (s > (vmig_u128)G_MAXINT64)
        return G_MAXINT64;
    return (gint64)s;
}

static int
bit_index(guint bit)
{
    return g_bit_nth_lsf(bit, -1);
}

gboolean
vmig_migconfig_apply(VmigMigconfig *c, const VmigModelMigrationOptions *o, VmigMigconfigSource from,
                     const char *what, GError **error)
{
    if (!o)
        return TRUE;
#define APPLIED(bit) (c->source[bit_index(bit)] = from)
    if (o->set & VMIG_MODEL_MIG_BANDWIDTH) {
        g_autofree char *field = g_strdup_printf("%s: bandwidthPerMigration", what);
        gboolean unlimited;
        g_autoptr(GError) e = NULL;
        guint64 mibps =
            vmig_migconfig_bandwidth_mibps(&o->bandwidth_per_migration, field, &unlimited, &e);
        if (e) {
            g_propagate_error(error, g_steal_pointer(&e));
            return FALSE;
        }
        c->bandwidth_per_migration = o->bandwidth_per_migration;
        c->bandwidth_mibps = mibps;
        c->bandwidth_unlimited = unlimited;
        APPLIED(VMIG_MODEL_MIG_BANDWIDTH);
    }
    if (o->set & VMIG_MODEL_MIG_PARALLEL_PER_CLUSTER) {
        c->parallel_migrations_per_cluster = o->parallel_migrations_per_cluster;
        APPLIED(VMIG_MODEL_MIG_PARALLEL_PER_CLUSTER);
    }
    if (o->set & VMIG_MODEL_MIG_PARALLEL_OUTBOUND_PER_NODE) {
        c->parallel_outbound_migrations_per_node = o->parallel_outbound_migrations_per_node;
        APPLIED(VMIG_MODEL_MIG_PARALLEL_OUTBOUND_PER_NODE);
    }
    if (o->set & VMIG_MODEL_MIG_COMPLETION_TIMEOUT_PER_GIB) {
        c->completion_timeout_per_gib = o->completion_timeout_per_gib;
        APPLIED(VMIG_MODEL_MIG_COMPLETION_TIMEOUT_PER_GIB);
    }
    if (o->set & VMIG_MODEL_MIG_PROGRESS_TIMEOUT) {
        c->progress_timeout = o->progress_timeout;
        APPLIED(VMIG_MODEL_MIG_PROGRESS_TIMEOUT);
    }
    if (o->set & VMIG_MODEL_MIG_ALLOW_AUTO_CONVERGE) {
        c->allow_auto_converge = o->allow_auto_converge;
        APPLIED(VMIG_MODEL_MIG_ALLOW_AUTO_CONVERGE);
    }
    if (o->set & VMIG_MODEL_MIG_ALLOW_POST_COPY) {
        c->allow_post_copy = o->allow_post_copy;
        APPLIED(VMIG_MODEL_MIG_ALLOW_POST_COPY);
    }
    if (o->set & VMIG_MODEL_MIG_ALLOW_WORKLOAD_DISRUPTION) {
        c->allow_workload_disruption = o->allow_workload_disruption;
        APPLIED(VMIG_MODEL_MIG_ALLOW_WORKLOAD_DISRUPTION);
    } else if (c->source[bit_index(VMIG_MODEL_MIG_ALLOW_WORKLOAD_DISRUPTION)] ==
               VMIG_MIGCONFIG_FROM_DEFAULT) {
        /* Never set explicitly: KubeVirt lets it follow allowPostCopy. */
        c->allow_workload_disruption = c->allow_post_copy;
    }
    if (o->set & VMIG_MODEL_MIG_DISABLE_TLS) {
        c->disable_tls = o->disable_tls;
        APPLIED(VMIG_MODEL_MIG_DISABLE_TLS);
    }
    if ((o->set & VMIG_MODEL_MIG_NODE_DRAIN_TAINT_KEY) && o->node_drain_taint_key &&
        *o->node_drain_taint_key) {
        g_free(c->node_drain_taint_key);
        c->node_drain_taint_key = g_strdup(o->node_drain_taint_key);
        APPLIED(VMIG_MODEL_MIG_NODE_DRAIN_TAINT_KEY);
    }
    if (o->set & VMIG_MODEL_MIG_UNSAFE_OVERRIDE) {
        c->unsafe_migration_override = o->unsafe_migration_override;
        APPLIED(VMIG_MODEL_MIG_UNSAFE_OVERRIDE);
    }
    if (o->set & VMIG_MODEL_MIG_MATCH_SELINUX_LEVEL) {
        c->match_selinux_level_on_migration = o->match_selinux_level_on_migration;
        APPLIED(VMIG_MODEL_MIG_MATCH_SELINUX_LEVEL);
    }
#undef APPLIED
    return TRUE;
}

/* Number of selector labels matched, or -1 when some label does not match. */
static int
selector_matches(GHashTable *selector, GHashTable *labels)
{
    GHashTableIter it;
    gpointer k, v;
    int n = 0;
    if (!selector)
        return 0;
    g_hash_table_iter_init(&it, selector);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *have = labels ? g_hash_table_lookup(labels, k) : NULL;
        if (!have || strcmp(have, v) != 0)
            return -1;
        n++;
    }
    return n;
}

const VmigModelMigrationPolicy *
vmig_migconfig_match_policy(GPtrArray *policies, GHashTable *namespace_labels,
                            GHashTable *vmi_labels)
{
    const VmigModelMigrationPolicy *best = NULL;
    int best_score = -1;
    for (guint i = 0; policies && i < policies->len; i++) {
        const VmigModelMigrationPolicy *p = g_ptr_array_index(policies, i);
        int ns = selector_matches(p->namespace_selector, namespace_labels);
        int vm = selector_matches(p->vmi_selector, vmi_labels);
        if (ns < 0 || vm < 0)
            continue;
        int score = ns + vm;
        if (score > best_score ||
            (score == best_score && strcmp(p->meta.name, best->meta.name) < 0)) {
            best = p;
            best_score = score;
        }
    }
    return best;
}

VmigMigconfig *
vmig_migconfig_effective(const VmigModelKubevirt *kubevirt, GPtrArray *policies,
                         GHashTable *namespace_labels, const VmigModelVmi *vmi, GError **error)
{
    g_autoptr(VmigMigconfig) c = vmig_migconfig_new_defaults();
    if (kubevirt) {
        g_autofree char *what = g_strdup_printf("KubeVirt %s/%s spec.configuration.migrations",
                                                kubevirt->meta.namespace, kubevirt->meta.name);
        if (!vmig_migconfig_apply(c, &kubevirt->migrations, VMIG_MIGCONFIG_FROM_KUBEVIRT, what,
                                  error))
            return NULL;
        c->eviction_strategy = kubevirt->eviction_strategy;
    }
    const VmigModelMigrationPolicy *p =
        vmig_migconfig_match_policy(policies, namespace_labels, vmi ? vmi->meta.labels : NULL);
    if (p) {
        g_autofree char *what = g_strdup_printf("MigrationPolicy %s spec", p->meta.name);
        if (!vmig_migconfig_apply(c, &p->options, VMIG_MIGCONFIG_FROM_POLICY, what, error))
            return NULL;
        c->policy_name = g_strdup(p->meta.name);
    }
    return g_steal_pointer(&c);
}

gboolean
vmig_migconfig_budget_split(guint64 budget_mibps, VmigMigconfigShare *shares, gsize n)
{
    if (budget_mibps == 0) {
        for (gsize i = 0; i < n; i++)
            shares[i].share_mibps = shares[i].cap_mibps;
        return TRUE;
    }
    if (budget_mibps < n) {
        for (gsize i = 0; i < n; i++)
            shares[i].share_mibps = 1;
        return FALSE;
    }
    /* Water-filling: settle every migration whose cap is at or below the current equal
     * level, then level again over the rest, until no cap binds. Invariant: the level is at
     * least 1, because a settled cap is at most the level, so the others' average never falls. */
    g_autofree gboolean *settled = g_new0(gboolean, n);
    guint64 remaining = budget_mibps;
    gsize left = n;
    gboolean changed = TRUE;
    while (left > 0 && changed) {
        changed = FALSE;
        guint64 level = remaining / left;
        for (gsize i = 0; i < n; i++) {
            if (settled[i] || shares[i].cap_mibps == 0 || shares[i].cap_mibps > level)
                continue;
            shares[i].share_mibps = shares[i].cap_mibps;
            settled[i] = TRUE;
            remaining -= shares[i].cap_mibps;
            left--;
            changed = TRUE;
        }
    }
    if (left == 0)
        return TRUE;
    /* Nobody left is capped at or below base; caps above base are at least base + 1, so the
     * odd MiB/s never push a migration over its cap. */
    guint64 base = remaining / left, extra = remaining % left;
    for (gsize i = 0; i < n; i++) {
        if (settled[i])
            continue;
        shares[i].share_mibps = base + (extra > 0 ? 1 : 0);
        if (extra > 0)
            extra--;
    }
    return TRUE;
}
