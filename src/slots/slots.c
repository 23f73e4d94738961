/* slots.c - which slot Lease to take, whether it is free, backoff and wait reasons. */
#include "vmig/slots.h"

#include <string.h>

G_DEFINE_QUARK(vmig - slots - error - quark, vmig_slots_error)

/* Kubernetes object names are at most 253 characters (DNS-1123 subdomain). */
#define NAME_MAX_LEN 253

static const struct {
    const char *name;   /* for reasons and logs */
    const char *prefix; /* Lease name prefix */
} kind_table[] = {
    [VMIG_SLOTS_KIND_CLUSTER] = {"cluster", "vmigrated-slot-cluster-"},
    [VMIG_SLOTS_KIND_OUTBOUND] = {"outbound", "vmigrated-slot-out-"},
    [VMIG_SLOTS_KIND_INBOUND] = {"inbound", "vmigrated-slot-in-"},
};

const char *
vmig_slots_kind_to_string(VmigSlotsKind kind)
{
    if ((guint)kind >= G_N_ELEMENTS(kind_table))
        return "unknown";
    return kind_table[kind].name;
}

/* Node names are DNS-1123 subdomains: lower-case alphanumerics, '-' and '.'. */
static gboolean
node_name_ok(const char *node)
{
    if (!node || !*node)
        return FALSE;
    for (const char *p = node; *p; p++) {
        if (!(g_ascii_islower(*p) || g_ascii_isdigit(*p) || *p == '-' || *p == '.'))
            return FALSE;
    }
    return g_ascii_isalnum(node[0]) && g_ascii_isalnum(node[strlen(node) - 1]);
}

char *
vmig_slots_lease_name(VmigSlotsKind kind, const char *node, guint index, GError **error)
{
    if ((guint)kind >= G_N_ELEMENTS(kind_table)) {
        g_set_error(error, VMIG_SLOTS_ERROR, VMIG_SLOTS_ERROR_INVALID, "slot kind %d unknown",
                    (int)kind);
        return NULL;
    }
    g_autofree char *name = NULL;
    if (kind == VMIG_SLOTS_KIND_CLUSTER) {
        name = g_strdup_printf("%s%u", kind_table[kind].prefix, index);
    } else {
        if (!node_name_ok(node)) {
            g_set_error(error, VMIG_SLOTS_ERROR, VMIG_SLOTS_ERROR_INVALID,
                        "%s slot: node name '%s' is not a DNS-1123 subdomain",
                        kind_table[kind].name, node ? node : "(null)");
            return NULL;
        }
        name = g_strdup_printf("%s%s-%u", kind_table[kind].prefix, node, index);
    }
    if (strlen(name) > NAME_MAX_LEN) {
        g_set_error(error, VMIG_SLOTS_ERROR, VMIG_SLOTS_ERROR_INVALID,
                    "%s slot: Lease name for node '%s' is longer than %d characters",
                    kind_table[kind].name, node, NAME_MAX_LEN);
        return NULL;
    }
    return g_steal_pointer(&name);
}

static gboolean
has_holder(const VmigSlotsLease *lease)
{
    return lease->exists && lease->holder && *lease->holder;
}

gboolean
vmig_slots_is_free(const VmigSlotsLease *lease, gint64 now_ms)
{
    if (!has_holder(lease))
        return TRUE;
    if (!lease->holder_live)
        return TRUE;
    /* Unset renewTime or duration: the writer was not one of us; treat as expired
     * rather than block a slot forever. */
    if (lease->renew_ms <= 0 || lease->duration_s == 0)
        return TRUE;
    return lease->renew_ms + (gint64)lease->duration_s * 1000 <= now_ms;
}

void
vmig_slots_pick(const VmigSlotsLease *leases, guint n_leases, guint limit, const char *uid,
                gint64 now_ms, VmigSlotsPick *out)
{
    *out = (VmigSlotsPick){.step = VMIG_SLOTS_STEP_FULL};

    /* Ours first, wherever it is: a restart or a lowered limit must not make us take a
     * second slot. Even an expired one: nobody else holds it, so updating it is safe. */
    for (guint i = 0; uid && i < n_leases; i++) {
        if (has_holder(&leases[i]) && strcmp(leases[i].holder, uid) == 0) {
            out->step = VMIG_SLOTS_STEP_HELD;
            out->index = i;
            return;
        }
    }

    guint busy = 0;
    for (guint i = 0; i < n_leases; i++) {
        if (!vmig_slots_is_free(&leases[i], now_ms))
            busy++;
    }
    out->busy = busy;
    if (busy >= limit)
        return;

    for (guint i = 0; i < limit; i++) {
        if (i >= n_leases || !leases[i].exists) {
            out->step = VMIG_SLOTS_STEP_CREATE;
            out->index = i;
            return;
        }
        if (vmig_slots_is_free(&leases[i], now_ms)) {
            out->step = VMIG_SLOTS_STEP_UPDATE;
            out->index = i;
            return;
        }
    }
    /* Busy holders above the limit left fewer than busy < limit slots below it: the
     * lowered limit still holds, so wait. */
}

gboolean
vmig_slots_needs_renew(const VmigSlotsLease *lease, gint64 now_ms)
{
    return lease->renew_ms <= 0 || now_ms - lease->renew_ms >= VMIG_SLOTS_RENEW_MS;
}

#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS  4000

guint
vmig_slots_backoff_ms(guint attempt, guint32 random)
{
    guint delay = BACKOFF_BASE_MS;
    for (guint i = 0; i < attempt && delay < BACKOFF_MAX_MS; i++)
        delay *= 2;
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    return delay + random % (delay / 2 + 1);
}

char *
vmig_slots_wait_reason(VmigSlotsKind kind, const char *node, guint busy, guint limit)
{
    if (kind == VMIG_SLOTS_KIND_CLUSTER || !node)
        return g_strdup_printf("waiting: %s limit %u/%u", vmig_slots_kind_to_string(kind), busy,
                               limit);
    return g_strdup_printf("waiting: %s limit %u/%u on %s", vmig_slots_kind_to_string(kind), busy,
                           limit, node);
}

/* The order in which nodes get the next slot: fewest held (plus handed out) first, then the
 * oldest waiting VMIM, its key, the node name. Negative when @a goes first. */
static int
fair_cmp(const VmigSlotsShare *a, guint a_got, const VmigSlotsShare *b, guint b_got)
{
    guint ha = a->held + a_got, hb = b->held + b_got;
    if (ha != hb)
        return ha < hb ? -1 : 1;
    if (a->oldest_ms != b->oldest_ms)
        return a->oldest_ms < b->oldest_ms ? -1 : 1;
    int c = g_strcmp0(a->oldest_key, b->oldest_key);
    return c ? c : g_strcmp0(a->node, b->node);
}

VmigSlotsFair
vmig_slots_fair(const VmigSlotsShare *shares, guint n_shares, guint self, guint rank, guint free,
                guint per_node, gint64 deferred_ms, const char **winner)
{
    if (winner)
        *winner = NULL;
    /* our own outbound limit binds first: let the outbound pick say so */
    if (self >= n_shares || shares[self].held >= per_node)
        return VMIG_SLOTS_FAIR_CONTEND;
    g_autofree guint *got = g_new0(guint, n_shares);
    const char *first_other = NULL;
    for (guint s = 0; s < free; s++) {
        gint best = -1;
        for (guint i = 0; i < n_shares; i++) {
            const VmigSlotsShare *n = &shares[i];
            if (got[i] >= n->waiting || n->held + got[i] >= per_node)
                continue; /* wants no more, or its own outbound limit binds */
            if (best < 0 || fair_cmp(n, got[i], &shares[best], got[best]) < 0)
                best = (gint)i;
        }
        if (best < 0)
            break;
        got[best]++;
        if ((guint)best != self && !first_other)
            first_other = shares[best].node;
    }
    if (rank < got[self] || !first_other)
        return VMIG_SLOTS_FAIR_CONTEND;
    /* Our share is all our own outbound limit leaves: the migrations ahead of this one fill
     * it, so the outbound limit (not another node) holds it back: no winner to name. */
    if (winner)
        *winner = shares[self].held + got[self] >= per_node ? NULL : first_other;
    return deferred_ms >= VMIG_SLOTS_DEFER_MAX_MS ? VMIG_SLOTS_FAIR_OVERDUE : VMIG_SLOTS_FAIR_DEFER;
}

char *
vmig_slots_fair_reason(guint busy, guint limit, const char *winner)
{
    return g_strdup_printf("waiting: cluster limit %u/%u, fair share to %s", busy, limit,
                           winner ? winner : "another node");
}
