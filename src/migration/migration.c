/* migration.c - the VMIM state machine (see vmig/migration.h). */
#include "vmig/migration.h"

#include <string.h>

static const char *const vmig_migration_action_names[] = {
    [VMIG_MIGRATION_ACTION_NONE] = "none",
    [VMIG_MIGRATION_ACTION_ACCEPT] = "accept",
    [VMIG_MIGRATION_ACTION_WAIT] = "wait",
    [VMIG_MIGRATION_ACTION_FAIL] = "fail",
    [VMIG_MIGRATION_ACTION_CLAIM] = "claim",
    [VMIG_MIGRATION_ACTION_SCHEDULE] = "schedule",
    [VMIG_MIGRATION_ACTION_PREPARE_TARGET] = "prepare-target",
    [VMIG_MIGRATION_ACTION_START] = "start",
    [VMIG_MIGRATION_ACTION_COMPLETE] = "complete",
    [VMIG_MIGRATION_ACTION_ABORT] = "abort",
    [VMIG_MIGRATION_ACTION_REFUSE_ABORT] = "refuse-abort",
    [VMIG_MIGRATION_ACTION_CANCEL] = "cancel",
    [VMIG_MIGRATION_ACTION_RECONCILE] = "reconcile",
    [VMIG_MIGRATION_ACTION_TAKE_OVER] = "take-over",
    [VMIG_MIGRATION_ACTION_RELEASE] = "release",
    [VMIG_MIGRATION_ACTION_RECOVER_POSTCOPY] = "recover-postcopy",
    [VMIG_MIGRATION_ACTION_REOPEN_TARGET] = "reopen-target",
};

static const char *const vmig_migration_role_names[] = {
    [VMIG_MIGRATION_ROLE_NONE] = "none",
    [VMIG_MIGRATION_ROLE_SOURCE] = "source",
    [VMIG_MIGRATION_ROLE_TARGET] = "target",
};

const char *
vmig_migration_action_to_string(VmigMigrationAction action)
{
    if ((gsize)action >= G_N_ELEMENTS(vmig_migration_action_names))
        return "unknown";
    return vmig_migration_action_names[action];
}

const char *
vmig_migration_role_to_string(VmigMigrationRole role)
{
    if ((gsize)role >= G_N_ELEMENTS(vmig_migration_role_names))
        return "unknown";
    return vmig_migration_role_names[role];
}

void
vmig_migration_decision_clear(VmigMigrationDecision *d)
{
    if (d)
        g_clear_pointer(&d->reason, g_free);
}

static gboolean
vmig_migration_eq(const char *a, const char *b)
{
    return a && b && *a && strcmp(a, b) == 0;
}

static void
vmig_migration_set(VmigMigrationDecision *d, VmigMigrationAction action,
                   VmigModelMigrationPhase next, char *reason)
{
    d->action = action;
    d->next_phase = next;
    g_free(d->reason);
    d->reason = reason;
}

/* Our migration call ended: its verdict becomes the VMIM's final phase. */
static void
vmig_migration_complete(const VmigMigrationFacts *f, VmigMigrationDecision *d)
{
    vmig_migration_set(d, VMIG_MIGRATION_ACTION_COMPLETE,
                       f->local_job_ok ? VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED
                                       : VMIG_MODEL_MIGRATION_PHASE_FAILED,
                       g_strdup(f->local_job_reason));
}

guint
vmig_migration_recovery_backoff_ms(guint failed_attempts)
{
    guint ms = 1000;
    for (guint i = 1; i < failed_attempts && ms < 15000; i++)
        ms *= 2;
    return MIN(ms, 15000);
}

/* A post-copy that failed and can be resumed: the guest's memory is split between the
 * nodes, so neither side may give up on it early. One resume attempt at a time; the
 * controller spaces them (its backoff sets recovery_next_ms); at the deadline the VMIM
 * fails with the reason that tells an operator where the guest is paused. */
static void
vmig_migration_recovering(const VmigMigrationFacts *f, VmigMigrationDecision *d)
{
    if (f->local_job)
        return; /* an attempt runs: its end re-queues */
    if (f->now_ms >= f->recovery_deadline_ms ||
        (f->recovery_max_attempts && f->recovery_attempts >= f->recovery_max_attempts)) {
        vmig_migration_set(d, VMIG_MIGRATION_ACTION_COMPLETE, VMIG_MODEL_MIGRATION_PHASE_FAILED,
                           g_strdup(f->recovery_give_up ? f->recovery_give_up
                                                        : "post-copy failed and was not recovered "
                                                          "in time"));
        return;
    }
    if (f->now_ms >= f->recovery_next_ms) {
        vmig_migration_set(d, VMIG_MIGRATION_ACTION_RECOVER_POSTCOPY, f->phase, NULL);
        return;
    }
    d->wake_at_ms = MIN(f->recovery_next_ms, f->recovery_deadline_ms);
}

static VmigMigrationRole
vmig_migration_role(const VmigMigrationFacts *f)
{
    gboolean ours = vmig_migration_eq(f->claim_uid, f->vmim_uid);
    if (ours && vmig_migration_eq(f->target_node, f->node) &&
        !vmig_migration_eq(f->source_node, f->node))
        return VMIG_MIGRATION_ROLE_TARGET;
    if (ours && vmig_migration_eq(f->source_node, f->node))
        return VMIG_MIGRATION_ROLE_SOURCE;
    /* Before the claim the VMI's node is the source. After a successful migration the
     * VMI's node is the target, but by then the claim names sourceNode above. */
    if (f->vmi_exists && vmig_migration_eq(f->vmi_node, f->node) &&
        !(ours && vmig_migration_eq(f->target_node, f->node)))
        return VMIG_MIGRATION_ROLE_SOURCE;
    return VMIG_MIGRATION_ROLE_NONE;
}

static const char *
vmig_migration_key(const VmigMigrationFacts *f)
{
    return f->vmi_key ? f->vmi_key : "the VMI";
}

/* A deleted VMIM that is not final. */
static void
vmig_migration_source_deleting(const VmigMigrationFacts *f, VmigMigrationDecision *d)
{
    if (f->phase != VMIG_MODEL_MIGRATION_PHASE_RUNNING && !f->local_job) {
        vmig_migration_set(d, VMIG_MIGRATION_ACTION_CANCEL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
                           g_strdup("migration deleted before it started; cancelled"));
        return;
    }
    if (f->local_job_done) {
        vmig_migration_set(d, VMIG_MIGRATION_ACTION_COMPLETE,
                           f->local_job_ok ? VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED
                                           : VMIG_MODEL_MIGRATION_PHASE_FAILED,
                           g_strdup(f->local_job_ok
                                        ? NULL
                                        : (f->local_job_reason ? f->local_job_reason : "aborted")));
        return;
    }
    if (f->post_copy) {
        /* QEMU cannot abort post-copy: the guest's memory is split between hosts (B14).
         * A recovery under way goes on: deleting the VMIM cannot bring the guest back. */
        if (!f->abort_requested)
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_REFUSE_ABORT, f->phase,
                               g_strdup("abort not possible during post-copy"));
        else if (f->recovering)
            vmig_migration_recovering(f, d);
        else if (!f->local_job && f->phase == VMIG_MODEL_MIGRATION_PHASE_RUNNING)
            /* we restarted: libvirt says where the guest is (a failed post-copy is resumed) */
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_RECONCILE, f->phase, NULL);
        return;
    }
    if (f->local_job) {
        if (!f->abort_requested)
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_ABORT, f->phase,
                               g_strdup("migration deleted while running; aborting"));
        return;
    }
    vmig_migration_set(d, VMIG_MIGRATION_ACTION_RECONCILE, f->phase, NULL);
}

static void
vmig_migration_source(const VmigMigrationFacts *f, VmigMigrationDecision *d)
{
    gboolean ours = vmig_migration_eq(f->claim_uid, f->vmim_uid);

    if (vmig_model_migration_phase_is_final(f->phase)) {
        if (f->local_job && !f->local_job_done)
            /* Marked final by someone else (e.g. the target failed) while our job runs. */
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_ABORT, f->phase,
                               g_strdup("migration ended by its peer; aborting the local job"));
        else if (f->deleting && f->has_finalizer &&
                 f->phase == VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED &&
                 vmig_migration_eq(f->vmi_node, f->source_node) && f->phase_since_ms > 0 &&
                 f->now_ms < f->phase_since_ms + VMIG_MIGRATION_HANDOVER_GRACE_MS)
            /* The target takes the VMI over when it sees this VMIM Succeeded: a deleted one
             * must not vanish before that, or the guest runs on the target while the VMI
             * names this node (a VMIM deleted during a post-copy recovery that then
             * succeeded did so in CI). Bounded: a dead target cannot hold the deletion. */
            d->wake_at_ms =
                MIN(f->now_ms + 1000, f->phase_since_ms + VMIG_MIGRATION_HANDOVER_GRACE_MS);
        else if (f->has_finalizer || f->local_resources)
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_RELEASE, f->phase, NULL);
        return;
    }
    if (f->deleting) {
        vmig_migration_source_deleting(f, d);
        return;
    }

    switch (f->phase) {
    case VMIG_MODEL_MIGRATION_PHASE_UNSET:
        if (!f->vmi_running)
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
                               g_strdup_printf("VMI %s is not running", vmig_migration_key(f)));
        else
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_ACCEPT, VMIG_MODEL_MIGRATION_PHASE_PENDING,
                               NULL);
        return;
    case VMIG_MODEL_MIGRATION_PHASE_PENDING:
        if (f->claim_uid && *f->claim_uid && !ours && f->claim_holder_live) {
            vmig_migration_set(
                d, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
                g_strdup_printf("another migration in progress for %s", vmig_migration_key(f)));
        } else if (!f->vmi_running) {
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
                               g_strdup_printf("VMI %s is not running", vmig_migration_key(f)));
        } else if (!f->migratable) {
            vmig_migration_set(
                d, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
                g_strdup_printf("VMI %s is not live migratable: %s", vmig_migration_key(f),
                                f->not_migratable ? f->not_migratable : "unknown reason"));
        } else if (!f->slot_free) {
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_WAIT, VMIG_MODEL_MIGRATION_PHASE_PENDING,
                               g_strdup(f->slot_wait_reason ? f->slot_wait_reason
                                                            : "waiting for a migration slot"));
        } else {
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_CLAIM,
                               VMIG_MODEL_MIGRATION_PHASE_SCHEDULING, NULL);
        }
        return;
    case VMIG_MODEL_MIGRATION_PHASE_SCHEDULING:
        if (!ours) {
            vmig_migration_set(
                d, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
                g_strdup_printf("another migration in progress for %s", vmig_migration_key(f)));
        } else if (f->chosen_target) {
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_SCHEDULE,
                               VMIG_MODEL_MIGRATION_PHASE_SCHEDULED, NULL);
        } else {
            vmig_migration_set(
                d, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
                g_strdup(f->no_target_reason ? f->no_target_reason : "no eligible target node"));
        }
        return;
    case VMIG_MODEL_MIGRATION_PHASE_SCHEDULED:
    case VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET: {
        /* The target daemon may be dead or partitioned: this deadline fires from the
         * wake-up timer even if no watch event ever arrives (B15 run C). */
        gint64 since = f->phase_since_ms > 0 ? f->phase_since_ms : f->created_ms;
        /* metav1.Time keeps whole seconds: the phase began somewhere in that second, so
         * count from its end (the deadline may fire up to 1 s late, never early). */
        if (since % 1000 == 0)
            since += 999;
        gint64 deadline = since + f->target_ready_timeout_ms;
        if (f->now_ms >= deadline) {
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
                               g_strdup_printf("target node %s did not become ready within %u s",
                                               f->target_node ? f->target_node : "(none)",
                                               f->target_ready_timeout_ms / 1000));
        } else {
            d->wake_at_ms = deadline;
        }
        return;
    }
    case VMIG_MODEL_MIGRATION_PHASE_TARGET_READY:
        if (f->local_job_done)
            vmig_migration_complete(f, d);
        else if (!f->local_job)
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_START, VMIG_MODEL_MIGRATION_PHASE_RUNNING,
                               NULL);
        return;
    case VMIG_MODEL_MIGRATION_PHASE_RUNNING:
        if (f->local_job_done)
            vmig_migration_complete(f, d);
        else if (f->recovering)
            vmig_migration_recovering(f, d);
        else if (!f->local_job)
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_RECONCILE, f->phase, NULL);
        return;
    case VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED:
    case VMIG_MODEL_MIGRATION_PHASE_FAILED:
        break;
    }
}

static void
vmig_migration_target(const VmigMigrationFacts *f, VmigMigrationDecision *d)
{
    gboolean succeeded = f->phase == VMIG_MODEL_MIGRATION_PHASE_SUCCEEDED ||
                         (f->state_completed && !f->state_failed);

    /* Take over once: only while the VMI still names the source. If it names a third node,
     * someone moved it since (a later migration, an operator): not ours to undo. */
    if (succeeded && vmig_migration_eq(f->vmi_node, f->source_node)) {
        if (f->domain_here) {
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_TAKE_OVER, f->phase, NULL);
        } else {
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_WAIT, f->phase,
                               g_strdup_printf("waiting for the domain of %s to run on %s",
                                               vmig_migration_key(f), f->node));
            d->wake_at_ms = f->now_ms + 1000;
        }
        return;
    }
    if (vmig_model_migration_phase_is_final(f->phase)) {
        if (f->local_resources)
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_RELEASE, f->phase, NULL);
        return;
    }
    if (f->phase == VMIG_MODEL_MIGRATION_PHASE_RUNNING && f->post_copy && !f->local_target) {
        /* We restarted after the switch: our listeners died with us, so the post-copy broke
         * and the source can only resume it through new ones (deleted or not: the guest's
         * memory is split, B14). */
        vmig_migration_set(d, VMIG_MIGRATION_ACTION_REOPEN_TARGET, f->phase, NULL);
        return;
    }
    if (f->deleting) {
        /* While Running the source owns the outcome (it may be in post-copy, where
         * tearing down our side would lose the guest); before that we just leave. */
        if (f->phase != VMIG_MODEL_MIGRATION_PHASE_RUNNING && f->local_resources)
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_RELEASE, f->phase, NULL);
        return;
    }
    switch (f->phase) {
    case VMIG_MODEL_MIGRATION_PHASE_SCHEDULED:
        vmig_migration_set(d, VMIG_MIGRATION_ACTION_PREPARE_TARGET,
                           VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET, NULL);
        return;
    case VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET:
    case VMIG_MODEL_MIGRATION_PHASE_TARGET_READY:
        /* After a restart our listeners are gone: prepare again and republish. */
        if (!f->local_target)
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_PREPARE_TARGET,
                               VMIG_MODEL_MIGRATION_PHASE_PREPARING_TARGET, NULL);
        return;
    default:
        return;
    }
}

static void
vmig_migration_none(const VmigMigrationFacts *f, VmigMigrationDecision *d)
{
    if (f->local_resources && !f->local_job) {
        vmig_migration_set(d, VMIG_MIGRATION_ACTION_RELEASE, f->phase, NULL);
        return;
    }
    if (f->vmi_exists)
        return; /* another node's business */
    if (f->local_job) {
        /* The VMI was deleted under a running migration of ours. */
        vmig_migration_set(d, VMIG_MIGRATION_ACTION_ABORT, f->phase,
                           g_strdup_printf("VMI %s was deleted", vmig_migration_key(f)));
        return;
    }
    if (vmig_model_migration_phase_is_final(f->phase) || f->deleting) {
        if (f->has_finalizer)
            vmig_migration_set(d, VMIG_MIGRATION_ACTION_RELEASE, f->phase, NULL);
        return;
    }
    /* Nobody owns a VMIM whose VMI is gone; every daemon may fail it (the write has a
     * precondition, so they agree), after a grace period for informer lag. */
    gint64 deadline = f->created_ms + f->missing_vmi_grace_ms;
    if (f->now_ms < deadline) {
        d->wake_at_ms = deadline;
        return;
    }
    vmig_migration_set(d, VMIG_MIGRATION_ACTION_FAIL, VMIG_MODEL_MIGRATION_PHASE_FAILED,
                       g_strdup_printf("VMI %s does not exist", vmig_migration_key(f)));
}

void
vmig_migration_decide(const VmigMigrationFacts *f, VmigMigrationDecision *out)
{
    *out = (VmigMigrationDecision){
        .role = vmig_migration_role(f),
        .action = VMIG_MIGRATION_ACTION_NONE,
        .next_phase = f->phase,
    };
    switch (out->role) {
    case VMIG_MIGRATION_ROLE_SOURCE:
        vmig_migration_source(f, out);
        break;
    case VMIG_MIGRATION_ROLE_TARGET:
        vmig_migration_target(f, out);
        break;
    case VMIG_MIGRATION_ROLE_NONE:
        vmig_migration_none(f, out);
        break;
    }
}

/* First selector entry that @labels does not satisfy, or NULL. */
static const char *
vmig_migration_selector_miss(GHashTable *selector, GHashTable *labels, const char **want)
{
    if (!selector)
        return NULL;
    /* Sorted keys so the reason is stable. */
    g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(selector), (GCompareFunc)strcmp);
    for (GList *l = keys; l; l = l->next) {
        const char *have = labels ? g_hash_table_lookup(labels, l->data) : NULL;
        const char *value = g_hash_table_lookup(selector, l->data);
        if (g_strcmp0(have, value) != 0) {
            *want = value;
            return l->data;
        }
    }
    return NULL;
}

static int
vmig_migration_candidate_cmp(const void *a, const void *b)
{
    const VmigMigrationCandidate *x = *(const VmigMigrationCandidate *const *)a;
    const VmigMigrationCandidate *y = *(const VmigMigrationCandidate *const *)b;
    return g_strcmp0(x->name, y->name);
}

const char *
vmig_migration_choose_target(const VmigMigrationCandidate *candidates, guint n_candidates,
                             const char *source, GHashTable *added_selector,
                             GHashTable *vmi_selector, char **reason)
{
    g_autoptr(GPtrArray) sorted = g_ptr_array_new();
    for (guint i = 0; i < n_candidates; i++)
        g_ptr_array_add(sorted, (gpointer)&candidates[i]);
    g_ptr_array_sort(sorted, vmig_migration_candidate_cmp);

    const VmigMigrationCandidate *best = NULL;
    g_autoptr(GString) why = g_string_new(NULL);
    for (guint i = 0; i < sorted->len; i++) {
        const VmigMigrationCandidate *c = sorted->pdata[i];
        const char *want = NULL, *key;
        g_autofree char *excluded = NULL;
        if (vmig_migration_eq(c->name, source))
            continue; /* not worth mentioning */
        if (!c->agent_ready)
            excluded = g_strdup("vmigrated not ready there");
        else if (c->unschedulable)
            excluded = g_strdup("cordoned");
        else if (c->draining)
            excluded = g_strdup("draining");
        else if ((key = vmig_migration_selector_miss(vmi_selector, c->labels, &want)))
            excluded = g_strdup_printf("does not match the VMI's nodeSelector %s=%s", key, want);
        else if ((key = vmig_migration_selector_miss(added_selector, c->labels, &want)))
            excluded = g_strdup_printf("does not match addedNodeSelector %s=%s", key, want);
        else if (c->inbound_limit && c->inbound >= c->inbound_limit)
            excluded = g_strdup_printf("inbound limit %u/%u reached", c->inbound, c->inbound_limit);
        if (excluded) {
            g_string_append_printf(why, "%s%s: %s", why->len ? "; " : "", c->name, excluded);
            continue;
        }
        if (!best || c->inbound < best->inbound)
            best = c;
    }
    if (!best && reason)
        *reason = g_strdup_printf("no eligible target node%s%s", why->len ? ": " : "",
                                  why->len ? why->str : " (no other node runs vmigrated)");
    return best ? best->name : NULL;
}
