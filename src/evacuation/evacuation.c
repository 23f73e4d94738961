/* evacuation.c - node drain decisions (see vmig/evacuation.h). */
#include "vmig/evacuation.h"

static const char *const vmig_evacuation_action_names[] = {
    [VMIG_EVACUATION_ACTION_CREATE] = "create",   [VMIG_EVACUATION_ACTION_BLOCKED] = "blocked",
    [VMIG_EVACUATION_ACTION_BACKOFF] = "backoff", [VMIG_EVACUATION_ACTION_DELETE] = "delete",
    [VMIG_EVACUATION_ACTION_CLEAR] = "clear",
};

const char *
vmig_evacuation_action_to_string(VmigEvacuationActionKind kind)
{
    if ((gsize)kind >= G_N_ELEMENTS(vmig_evacuation_action_names))
        return "unknown";
    return vmig_evacuation_action_names[kind];
}

gint64
vmig_evacuation_backoff_ms(guint failures)
{
    gint64 ms = VMIG_EVACUATION_BACKOFF_INITIAL_MS;
    for (guint i = 1; i < failures && ms < VMIG_EVACUATION_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return MIN(ms, VMIG_EVACUATION_BACKOFF_MAX_MS);
}

static void
vmig_evacuation_action_free(gpointer p)
{
    VmigEvacuationAction *a = p;
    g_free(a->reason);
    g_free(a);
}

static VmigEvacuationAction *
vmig_evacuation_add(GPtrArray *out, VmigEvacuationActionKind kind, const VmigEvacuationVmi *v)
{
    VmigEvacuationAction *a = g_new0(VmigEvacuationAction, 1);
    a->kind = kind;
    a->namespace_ = v->namespace_;
    a->name = v->name;
    g_ptr_array_add(out, a);
    return a;
}

/* Consecutive failed evacuations at the end of the history (newest last by end time), and
 * the end time of the newest. */
static guint
vmig_evacuation_failures(const VmigEvacuationVmi *v, gint64 *last_end)
{
    guint failures = 0;
    gint64 newest_success = 0;
    *last_end = 0;
    for (guint i = 0; i < v->n_evacuations; i++) {
        const VmigEvacuationVmim *m = &v->evacuations[i];
        if (m->phase == VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED)
            newest_success = MAX(newest_success, m->ended_ms);
    }
    for (guint i = 0; i < v->n_evacuations; i++) {
        const VmigEvacuationVmim *m = &v->evacuations[i];
        if (m->phase == VMIG_MODEL_MIGRATION_PHASE_FAILED && m->ended_ms >= newest_success) {
            failures++;
            *last_end = MAX(*last_end, m->ended_ms);
        }
    }
    return failures;
}

static void
vmig_evacuation_draining(const char *node, const VmigEvacuationVmi *v, gint64 now_ms,
                         GPtrArray *out)
{
    switch (v->strategy) {
    case VMIG_MODEL_EVICTION_LIVE_MIGRATE:
        if (!v->migratable) {
            VmigEvacuationAction *a = vmig_evacuation_add(out, VMIG_EVACUATION_ACTION_BLOCKED, v);
            a->reason =
                g_strdup_printf("cannot evacuate %s/%s from %s: %s", v->namespace_, v->name, node,
                                v->not_migratable ? v->not_migratable : "not migratable");
            return;
        }
        break;
    case VMIG_MODEL_EVICTION_LIVE_MIGRATE_IF_POSSIBLE:
        if (!v->migratable)
            return; /* like None: no migration, no warning */
        break;
    default:
        return; /* None, External, unset without a cluster default */
    }
    if (v->has_unfinished_vmim)
        return; /* never two unfinished VMIMs for one VMI */
    gint64 last_end = 0;
    guint failures = vmig_evacuation_failures(v, &last_end);
    if (failures > 0) {
        gint64 wake = last_end + vmig_evacuation_backoff_ms(failures);
        if (now_ms < wake) {
            VmigEvacuationAction *a = vmig_evacuation_add(out, VMIG_EVACUATION_ACTION_BACKOFF, v);
            a->wake_at_ms = wake;
            a->reason = g_strdup_printf(
                "evacuation of %s/%s failed %u time%s; next try in %" G_GINT64_FORMAT " s",
                v->namespace_, v->name, failures, failures == 1 ? "" : "s",
                (wake - now_ms + 999) / 1000);
            return;
        }
    }
    vmig_evacuation_add(out, VMIG_EVACUATION_ACTION_CREATE, v);
}

static void
vmig_evacuation_undrained(const char *node, const VmigEvacuationVmi *v, GPtrArray *out)
{
    for (guint i = 0; i < v->n_evacuations; i++) {
        const VmigEvacuationVmim *m = &v->evacuations[i];
        /* Running ones finish: aborting a half-copied guest gains nothing. */
        if (m->phase < VMIG_MODEL_MIGRATION_PHASE_RUNNING) {
            VmigEvacuationAction *a = vmig_evacuation_add(out, VMIG_EVACUATION_ACTION_DELETE, v);
            a->vmim = m->name;
        }
    }
    if (v->evacuation_node && g_strcmp0(v->evacuation_node, node) == 0)
        vmig_evacuation_add(out, VMIG_EVACUATION_ACTION_CLEAR, v);
}

GPtrArray *
vmig_evacuation_decide(const char *node, gboolean draining, const VmigEvacuationVmi *vmis,
                       guint n_vmis, gint64 now_ms)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(vmig_evacuation_action_free);
    for (guint i = 0; i < n_vmis; i++) {
        if (draining)
            vmig_evacuation_draining(node, &vmis[i], now_ms, out);
        else
            vmig_evacuation_undrained(node, &vmis[i], out);
    }
    return out;
}
