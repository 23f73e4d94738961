/* budget.c - the node's migration bandwidth budget (--migration-bandwidth-budget).
 *
 * The budget is split among this node's running outbound migrations by
 * vmig_migconfig_budget_split() (max-min fair, each migration's own bandwidthPerMigration as
 * its cap) and applied with virDomainMigrateSetMaxSpeed whenever a migration joins (START,
 * before its virDomainMigrateToURI3 call, so the others slow down first) or leaves (its call
 * ended: success, failure, abort; or its start failed). A migration that may switch to
 * post-copy also gets the same share as its post-copy speed
 * (VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY): QEMU applies max-postcopy-bandwidth at the switch, and
 * only that limit acts afterwards.
 *
 * The libvirt calls run on a worker thread, one pass at a time; a change during a pass runs
 * another pass after it. A speed is only set once the migration's data moves: before QEMU's
 * migration starts, libvirt has still to apply the call's own bandwidth parameter and would
 * overwrite it (seen in the e2e test: a migration lowered 10 ms after its call began ran at
 * its starting share); such a migration is tried again every CTL_BUDGET_EARLY_RETRY_MS (for
 * a second, then every CTL_BUDGET_EARLY_SLOW_MS). A speed
 * that could not be set is logged and left "not applied", so the next pass retries it; it never
 * fails the migration. With the budget off nothing here runs except the per-migration limit gauge:
 * the migration keeps its own cap, as before.
 *
 * Lifetime: the pass's task holds a reference on CtlBudget, not on the controller; the
 * controller clears budget->ctl when it is freed, so a late completion touches nothing. */
#define G_LOG_DOMAIN "vmig-controller"

#include "controller-private.h"

#include "vmig/migconfig.h"

#include <string.h>

/* How soon a speed is tried again on a migration whose QEMU side has not started yet (the
 * time the budget may be exceeded when two migrations start together); after
 * CTL_BUDGET_EARLY_FAST tries in a row (a second) a stuck Prepare is asked less often. */
#define CTL_BUDGET_EARLY_RETRY_MS 50
#define CTL_BUDGET_EARLY_SLOW_MS  500
#define CTL_BUDGET_EARLY_FAST     20

struct _CtlBudget {
    gint ref;
    VmigController *ctl; /* NULL once the controller is gone */
    guint idle;          /* a pass is queued */
    guint retry;         /* a pass after a migration whose data did not move yet */
    guint early_tries;   /* such passes in a row */
    gboolean running;    /* a pass's libvirt calls are in flight */
    gboolean again;      /* something changed during the pass */
    char *last_split;    /* the split last logged, to log changes only */
};

static CtlBudget *
budget_ref(CtlBudget *b)
{
    g_atomic_int_inc(&b->ref);
    return b;
}

static void
budget_unref(gpointer p)
{
    CtlBudget *b = p;
    if (!g_atomic_int_dec_and_test(&b->ref))
        return;
    g_free(b->last_split);
    g_free(b);
}

static gboolean
budget_on(VmigController *ctl)
{
    return ctl->cfg->migration_bandwidth_budget_mibps > 0;
}

/* One speed to set. */
typedef struct {
    char *key;
    VmigVirtDomain *dom;
    guint64 mibps;
    gboolean precopy;  /* set the pre-copy speed (not after the switch to post-copy) */
    gboolean postcopy; /* set the post-copy speed (the migration may switch, or did) */
    gboolean early;    /* (out) QEMU's migration has not started yet: not set, try again soon */
    char *error;       /* (out) NULL when set */
} BudgetItem;

static void
budget_item_free(gpointer p)
{
    BudgetItem *it = p;
    g_free(it->key);
    g_clear_pointer(&it->dom, vmig_virt_domain_free);
    g_free(it->error);
    g_free(it);
}

typedef struct {
    CtlBudget *budget;
    GPtrArray *items;
} BudgetPass;

static void
budget_pass_free(gpointer p)
{
    BudgetPass *bp = p;
    budget_unref(bp->budget);
    g_ptr_array_unref(bp->items);
    g_free(bp);
}

static gint
budget_cmp_key(gconstpointer a, gconstpointer b)
{
    const CtlJob *ja = *(CtlJob *const *)a, *jb = *(CtlJob *const *)b;
    return strcmp(ja->key, jb->key);
}

/* The members in a stable order (VMIM key), their shares computed into job->budget_share. */
static GPtrArray *
budget_split(VmigController *ctl, gboolean *fits)
{
    GPtrArray *members = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, ctl->jobs);
    while (g_hash_table_iter_next(&it, NULL, &v))
        if (((CtlJob *)v)->budget_member)
            g_ptr_array_add(members, v);
    g_ptr_array_sort(members, budget_cmp_key);
    g_autofree VmigMigconfigShare *shares = g_new0(VmigMigconfigShare, MAX(members->len, 1));
    for (guint i = 0; i < members->len; i++)
        shares[i].cap_mibps = ((CtlJob *)members->pdata[i])->budget_cap_mibps;
    *fits = vmig_migconfig_budget_split(ctl->cfg->migration_bandwidth_budget_mibps, shares,
                                        members->len);
    for (guint i = 0; i < members->len; i++)
        ((CtlJob *)members->pdata[i])->budget_share_mibps = shares[i].share_mibps;
    return members;
}

/* "bandwidth budget 100 MiB/s over 2 migrations: ns1/a 50 MiB/s, ns1/b 50 MiB/s", logged
 * when it differs from the last one. */
static void
budget_log(VmigController *ctl, GPtrArray *members, gboolean fits)
{
    CtlBudget *b = ctl->budget;
    guint64 budget = ctl->cfg->migration_bandwidth_budget_mibps;
    g_autoptr(GString) s = g_string_new(NULL);
    g_string_append_printf(s, "bandwidth budget %" G_GUINT64_FORMAT " MiB/s over %u migration%s",
                           budget, members->len, members->len == 1 ? "" : "s");
    for (guint i = 0; i < members->len; i++) {
        const CtlJob *job = members->pdata[i];
        g_string_append_printf(s, "%s%s/%s %" G_GUINT64_FORMAT " MiB/s%s", i ? ", " : ": ", job->ns,
                               job->vmi_name ? job->vmi_name : job->name, job->budget_share_mibps,
                               job->budget_cap_mibps &&
                                       job->budget_share_mibps == job->budget_cap_mibps
                                   ? " (its own limit)"
                                   : "");
    }
    if (g_strcmp0(s->str, b->last_split) == 0)
        return;
    g_free(b->last_split);
    b->last_split = g_strdup(s->str);
    if (fits)
        g_message("%s", s->str);
    else
        g_warning("%s: exceeded, libvirt has no speed below 1 MiB/s per migration", s->str);
}

static void
budget_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    BudgetPass *bp = data;
    for (guint i = 0; i < bp->items->len; i++) {
        BudgetItem *it = bp->items->pdata[i];
        g_autoptr(GError) err = NULL;
        /* Until QEMU's migration runs, libvirt is still to apply the call's own bandwidth
         * parameter, which would silently undo a speed set now: wait for data to move. */
        VmigVirtJobStats st;
        if (!vmig_virt_domain_job_stats(it->dom, FALSE, &st, NULL) ||
            (st.type != VMIG_VIRT_JOB_BOUNDED && st.type != VMIG_VIRT_JOB_UNBOUNDED) ||
            vmig_virt_job_stats_processed(&st) == 0) {
            it->early = TRUE;
            continue;
        }
        if ((it->precopy && !vmig_virt_domain_set_max_speed(it->dom, it->mibps, &err)) ||
            (it->postcopy && !vmig_virt_domain_set_max_postcopy_speed(it->dom, it->mibps, &err)))
            it->error = g_strdup(err->message);
    }
    g_task_return_boolean(task, TRUE);
}

static void budget_schedule(CtlBudget *b);

static gboolean
budget_retry(gpointer data)
{
    CtlBudget *b = data;
    b->retry = 0;
    budget_schedule(b);
    return G_SOURCE_REMOVE;
}

static void
budget_done(GObject *src, GAsyncResult *res, gpointer data)
{
    BudgetPass *bp = g_task_get_task_data(G_TASK(res));
    CtlBudget *b = bp->budget;
    VmigController *ctl = b->ctl;
    gboolean early = FALSE;
    b->running = FALSE;
    if (!ctl)
        return;
    for (guint i = 0; i < bp->items->len; i++) {
        BudgetItem *it = bp->items->pdata[i];
        CtlJob *job = g_hash_table_lookup(ctl->jobs, it->key);
        if (!job || !job->budget_member || job->dom != it->dom)
            continue; /* it ended meanwhile */
        if (it->early) {
            early = TRUE;
            continue;
        }
        if (it->error) {
            /* not applied: the next pass (any start or end on this node) tries again */
            g_warning("VMIM %s: cannot set the migration speed to %" G_GUINT64_FORMAT
                      " MiB/s: %s (retried at the next change; the migration goes on)",
                      it->key, it->mibps, it->error);
            continue;
        }
        job->budget_applied_mibps = it->mibps;
        g_info("VMIM %s: migration speed %" G_GUINT64_FORMAT " MiB/s%s", it->key, it->mibps,
               it->precopy ? "" : " (post-copy)");
    }
    if (b->again) {
        b->again = FALSE;
        budget_schedule(b);
    } else if (early && !b->retry) {
        b->retry =
            g_timeout_add(b->early_tries++ < CTL_BUDGET_EARLY_FAST ? CTL_BUDGET_EARLY_RETRY_MS
                                                                   : CTL_BUDGET_EARLY_SLOW_MS,
                          budget_retry, b);
    }
    if (!early)
        b->early_tries = 0;
}

static gboolean
budget_pass(gpointer data)
{
    CtlBudget *b = data;
    VmigController *ctl = b->ctl;
    b->idle = 0;
    if (b->running) {
        b->again = TRUE;
        return G_SOURCE_REMOVE;
    }
    gboolean fits = TRUE;
    g_autoptr(GPtrArray) members = budget_split(ctl, &fits);
    budget_log(ctl, members, fits);
    BudgetPass *bp = g_new0(BudgetPass, 1);
    bp->budget = budget_ref(b);
    bp->items = g_ptr_array_new_with_free_func(budget_item_free);
    for (guint i = 0; i < members->len; i++) {
        CtlJob *job = members->pdata[i];
        /* not started yet: its virDomainMigrateToURI3 call carries the share */
        if (!job->dom || !job->migration || job->job_done)
            continue;
        if (job->budget_share_mibps == job->budget_applied_mibps)
            continue;
        BudgetItem *it = g_new0(BudgetItem, 1);
        it->key = g_strdup(job->key);
        it->dom = vmig_virt_domain_ref(job->dom);
        it->mibps = job->budget_share_mibps;
        it->precopy = !job->postcopy;
        it->postcopy = job->budget_postcopy || job->postcopy;
        g_ptr_array_add(bp->items, it);
    }
    if (bp->items->len == 0) {
        budget_pass_free(bp);
        return G_SOURCE_REMOVE;
    }
    b->running = TRUE;
    g_autoptr(GTask) task = g_task_new(NULL, NULL, budget_done, NULL);
    g_task_set_task_data(task, bp, budget_pass_free);
    g_task_run_in_thread(task, budget_thread);
    return G_SOURCE_REMOVE;
}

static void
budget_schedule(CtlBudget *b)
{
    if (!b || !b->ctl || b->idle)
        return;
    if (b->running) {
        b->again = TRUE;
        return;
    }
    b->idle = g_idle_add(budget_pass, b);
}

void
vmig_ctl_budget_join(CtlJob *job, guint64 cap_mibps, gboolean allow_postcopy)
{
    job->budget_cap_mibps = cap_mibps;
    job->budget_postcopy = allow_postcopy;
    job->budget_applied_mibps = 0;
    if (!budget_on(job->ctl))
        return;
    job->budget_member = TRUE;
    budget_schedule(job->ctl->budget);
}

guint64
vmig_ctl_budget_share(CtlJob *job)
{
    if (!job->budget_member) {
        job->budget_applied_mibps = job->budget_cap_mibps;
        return job->budget_cap_mibps;
    }
    gboolean fits = TRUE;
    g_autoptr(GPtrArray) members = budget_split(job->ctl, &fits);
    budget_log(job->ctl, members, fits);
    /* the call carries it: applied from the start */
    job->budget_applied_mibps = job->budget_share_mibps;
    return job->budget_share_mibps;
}

void
vmig_ctl_budget_leave(CtlJob *job)
{
    gboolean was = job->budget_member;
    job->budget_member = FALSE;
    job->budget_applied_mibps = 0;
    job->budget_share_mibps = 0;
    if (was && job->ctl->budget)
        budget_schedule(job->ctl->budget);
}

guint
vmig_ctl_budget_blocks(VmigController *ctl, CtlJob *job)
{
    guint64 budget = ctl->cfg->migration_bandwidth_budget_mibps;
    if (!budget)
        return 0;
    /* every migration needs at least 1 MiB/s: count the ones that hold (or are taking) this
     * node's outbound slots or run here, this one aside */
    guint n = 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, ctl->jobs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CtlJob *other = v;
        if (other != job && (other->slot_outbound || other->slot_claiming || other->budget_member))
            n++;
    }
    return n >= budget ? n : 0;
}

void
vmig_ctl_budget_start(VmigController *ctl)
{
    if (ctl->budget)
        return;
    ctl->budget = g_new0(CtlBudget, 1);
    ctl->budget->ref = 1;
    ctl->budget->ctl = ctl;
    if (budget_on(ctl))
        g_message("migration bandwidth budget %s (%" G_GUINT64_FORMAT
                  " MiB/s) shared by this node's outbound migrations",
                  ctl->cfg->migration_bandwidth_budget, ctl->cfg->migration_bandwidth_budget_mibps);
}

void
vmig_ctl_budget_stop(VmigController *ctl)
{
    CtlBudget *b = ctl->budget;
    if (!b)
        return;
    if (b->idle)
        g_source_remove(b->idle);
    if (b->retry)
        g_source_remove(b->retry);
    b->idle = b->retry = 0;
    b->ctl = NULL;
    ctl->budget = NULL;
    budget_unref(b);
}
