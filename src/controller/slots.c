/* slots.c - the migration limits as slot Leases (vmig/slots.h decides, this file reads and
 * writes): a source takes a cluster and an outbound slot before CLAIM and the target's
 * inbound slot before SCHEDULE; a timer renews the slots this daemon holds and releases
 * those whose VMIM is final or gone. The API server's preconditions (create = 409 when it
 * exists, update = 409 on a stale resourceVersion, the mutation refusing a slot that is not
 * free) make a slot single-holder however stale this daemon's caches are. */
#define G_LOG_DOMAIN "vmig-controller"

#include "controller-private.h"
#include "vmig/slots.h"

#include <string.h>

#define ANN_SLOT_VMIM "vmigrated.kubevirt.io/slot-vmim" /* "ns/name" of the holder VMIM */
#define ANN_SLOT_NODE "vmigrated.kubevirt.io/slot-node" /* the daemon that renews/releases */
#define SLOT_PREFIX   "vmigrated-slot-"
/* Indices above the limit still looked at: a lowered limit keeps counting their holders. */
#define SCAN_EXTRA 8
/* The renew/release pass runs this often; each slot is renewed every VMIG_SLOTS_RENEW_MS. */
#define PASS_MS 5000

static char *
slots_now_text(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    return g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
}

static gint64
slots_time_ms(const char *s)
{
    if (!s)
        return 0;
    g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(s, NULL);
    return t ? g_date_time_to_unix(t) * 1000 + g_date_time_get_microsecond(t) / 1000 : 0;
}

static const char *
slots_annotation(JsonNode *lease, const char *key)
{
    JsonNode *ann = vmig_model_json_get(lease, "metadata.annotations");
    if (!ann || !JSON_NODE_HOLDS_OBJECT(ann))
        return NULL;
    JsonNode *v = json_object_get_member(json_node_get_object(ann), key);
    return v && JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING
               ? json_node_get_string(v)
               : NULL;
}

static const char *
slots_spec_string(JsonNode *lease, const char *field)
{
    JsonNode *v = vmig_model_json_get(lease, field);
    return v && JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING
               ? json_node_get_string(v)
               : NULL;
}

/* The holder VMIM from the cache: 1 live, 0 final/deleting/replaced, -1 not in the cache. */
static int
slots_holder_state(VmigController *ctl, JsonNode *lease, const char *holder)
{
    const char *key = slots_annotation(lease, ANN_SLOT_VMIM);
    const char *slash = key ? strchr(key, '/') : NULL;
    if (!slash)
        return -1;
    g_autofree char *ns = g_strndup(key, slash - key);
    g_autoptr(JsonNode) n = vmig_kube_informer_get(ctl->inf[CTL_INF_VMIM], ns, slash + 1);
    if (!n)
        return -1;
    if (g_strcmp0(vmig_kube_meta_string(n, "uid"), holder) != 0)
        return 0; /* the name was reused: the holder was deleted */
    g_autoptr(VmigModelVmim) m = vmig_model_vmim_from_json(n, NULL);
    return m && !vmig_model_migration_phase_is_final(m->phase) && !m->deleting;
}

/* Reads one slot Lease (cache or live) into the pure view. A holder missing from our VMIM
 * cache counts as live: the cache may lag behind the holder's daemon; the holder's own
 * daemon releases it, or it expires. */
static void
slots_view(VmigController *ctl, JsonNode *lease, VmigSlotsLease *out)
{
    *out = (VmigSlotsLease){.exists = lease != NULL};
    if (!lease)
        return;
    out->holder = slots_spec_string(lease, "spec.holderIdentity");
    out->renew_ms = slots_time_ms(slots_spec_string(lease, "spec.renewTime"));
    JsonNode *d = vmig_model_json_get(lease, "spec.leaseDurationSeconds");
    if (d && JSON_NODE_HOLDS_VALUE(d) && json_node_get_value_type(d) == G_TYPE_INT64)
        out->duration_s = (guint)CLAMP(json_node_get_int(d), 0, G_MAXINT);
    out->holder_live =
        out->holder && *out->holder ? slots_holder_state(ctl, lease, out->holder) != 0 : FALSE;
}

static guint
slots_limit(VmigController *ctl, VmigSlotsKind kind)
{
    guint per_cluster = 5, per_node = 2;
    vmig_ctl_limits(ctl, &per_cluster, &per_node);
    switch (kind) {
    case VMIG_SLOTS_KIND_CLUSTER:
        return per_cluster;
    case VMIG_SLOTS_KIND_OUTBOUND:
        return per_node;
    case VMIG_SLOTS_KIND_INBOUND:
        return ctl->cfg->inbound_migrations ? ctl->cfg->inbound_migrations : 2;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* writes                                                                               */

typedef struct {
    VmigController *ctl;
    char *uid;
    char *vmim_key;
    char *name;
} SlotsWrite;

static void
slots_write_free(SlotsWrite *w)
{
    g_free(w->uid);
    g_free(w->vmim_key);
    g_free(w->name);
    g_free(w);
}

static JsonObject *
slots_spec(JsonObject *object)
{
    if (!json_object_has_member(object, "spec") ||
        !JSON_NODE_HOLDS_OBJECT(json_object_get_member(object, "spec")))
        json_object_set_object_member(object, "spec", json_object_new());
    return json_object_get_object_member(object, "spec");
}

static JsonObject *
slots_annotations(JsonObject *object)
{
    if (!json_object_has_member(object, "metadata"))
        json_object_set_object_member(object, "metadata", json_object_new());
    JsonObject *meta = json_object_get_object_member(object, "metadata");
    if (!json_object_has_member(meta, "annotations") ||
        !JSON_NODE_HOLDS_OBJECT(json_object_get_member(meta, "annotations")))
        json_object_set_object_member(meta, "annotations", json_object_new());
    return json_object_get_object_member(meta, "annotations");
}

static void
slots_set_holder(SlotsWrite *w, JsonObject *object, gboolean acquire)
{
    JsonObject *spec = slots_spec(object);
    g_autofree char *now = slots_now_text();
    json_object_set_string_member(spec, "holderIdentity", w->uid);
    json_object_set_string_member(spec, "renewTime", now);
    json_object_set_int_member(spec, "leaseDurationSeconds", VMIG_SLOTS_LEASE_DURATION_S);
    if (acquire) {
        json_object_set_string_member(spec, "acquireTime", now);
        gint64 t = json_object_has_member(spec, "leaseTransitions")
                       ? json_object_get_int_member(spec, "leaseTransitions")
                       : 0;
        json_object_set_int_member(spec, "leaseTransitions", t + 1);
        JsonObject *ann = slots_annotations(object);
        json_object_set_string_member(ann, ANN_SLOT_VMIM, w->vmim_key);
        json_object_set_string_member(ann, ANN_SLOT_NODE, w->ctl->cfg->node_name);
    }
}

/* Acquire: decided on the LIVE Lease, so a stale cache cannot make us take a busy slot. */
static VmigKubeMutateResult
slots_acquire_mutate(JsonObject *object, gpointer data, GError **error)
{
    SlotsWrite *w = data;
    g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), object);
    VmigSlotsLease v;
    slots_view(w->ctl, root, &v);
    if (v.holder && g_strcmp0(v.holder, w->uid) == 0)
        return VMIG_KUBE_MUTATE_UNCHANGED;
    if (!vmig_slots_is_free(&v, vmig_ctl_wall_ms())) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED, "slot Lease %s is held by %s",
                    w->name, v.holder);
        return VMIG_KUBE_MUTATE_REFUSE;
    }
    slots_set_holder(w, object, TRUE);
    return VMIG_KUBE_MUTATE_CHANGED;
}

static VmigKubeMutateResult
slots_renew_mutate(JsonObject *object, gpointer data, GError **error)
{
    SlotsWrite *w = data;
    g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), object);
    if (g_strcmp0(slots_spec_string(root, "spec.holderIdentity"), w->uid) != 0) {
        g_set_error(error, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED,
                    "slot Lease %s is no longer held by %s", w->name, w->uid);
        return VMIG_KUBE_MUTATE_REFUSE;
    }
    slots_set_holder(w, object, FALSE);
    return VMIG_KUBE_MUTATE_CHANGED;
}

static VmigKubeMutateResult
slots_release_mutate(JsonObject *object, gpointer data, GError **error)
{
    SlotsWrite *w = data;
    (void)error;
    g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), object);
    if (g_strcmp0(slots_spec_string(root, "spec.holderIdentity"), w->uid) != 0)
        return VMIG_KUBE_MUTATE_UNCHANGED; /* someone else's now: not ours to clear */
    json_object_remove_member(slots_spec(object), "holderIdentity");
    JsonObject *ann = slots_annotations(object);
    json_object_remove_member(ann, ANN_SLOT_VMIM);
    json_object_remove_member(ann, ANN_SLOT_NODE);
    return VMIG_KUBE_MUTATE_CHANGED;
}

static void
slots_logged_done(GObject *src, GAsyncResult *res, gpointer data)
{
    SlotsWrite *w = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) out = vmig_kube_call_finish(res, NULL, &err);
    if (!out && !g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_NOT_FOUND))
        g_warning("slot Lease %s (VMIM %s): %s", w->name, w->vmim_key, err->message);
    else if (out)
        g_debug("slot Lease %s written for VMIM %s", w->name, w->vmim_key);
    slots_write_free(w);
}

static SlotsWrite *
slots_write_new(VmigController *ctl, const char *uid, const char *vmim_key, const char *name)
{
    SlotsWrite *w = g_new0(SlotsWrite, 1);
    w->ctl = ctl;
    w->uid = g_strdup(uid);
    w->vmim_key = g_strdup(vmim_key ? vmim_key : "");
    w->name = g_strdup(name);
    return w;
}

/* Fire and forget: a failed release is retried by the next pass (or the Lease expires). */
static void
slots_release_one(VmigController *ctl, const char *name, const char *uid, const char *vmim_key)
{
    SlotsWrite *w = slots_write_new(ctl, uid, vmim_key, name);
    g_message("releasing slot Lease %s of VMIM %s", name, w->vmim_key);
    vmig_kube_mutate(ctl->kube, vmig_kube_resource(VMIG_KUBE_LEASE), ctl->lease_namespace, name,
                     FALSE, NULL, 0, slots_release_mutate, w, NULL, slots_logged_done, w);
}

/* ------------------------------------------------------------------------------------ */
/* acquisition: one kind after the other, index by index                                */

typedef struct {
    CtlJob *job;
    VmigSlotsKind kinds[2];
    char *nodes[2];
    guint n_kinds;
    guint k;
    guint got[2];     /* index + 1 taken in this round; 0 = none */
    GHashTable *lost; /* Lease names found taken in this round (our cache has not seen it) */
    guint writes;
    SlotsWrite *w; /* the write in flight */
    guint index;
} SlotsAcquire;

static void slots_acquire_step(SlotsAcquire *a);

static void
slots_acquire_free(SlotsAcquire *a)
{
    for (guint i = 0; i < a->n_kinds; i++)
        g_free(a->nodes[i]);
    g_hash_table_unref(a->lost);
    g_free(a);
}

static guint *
slots_job_field(CtlJob *job, VmigSlotsKind kind)
{
    switch (kind) {
    case VMIG_SLOTS_KIND_CLUSTER:
        return &job->slot_cluster;
    case VMIG_SLOTS_KIND_OUTBOUND:
        return &job->slot_outbound;
    case VMIG_SLOTS_KIND_INBOUND:
        return &job->slot_inbound;
    }
    g_assert_not_reached();
}

static void
slots_acquire_end(SlotsAcquire *a, char *wait_reason)
{
    CtlJob *job = a->job;
    VmigController *ctl = job->ctl;
    job->slot_claiming = FALSE;
    if (wait_reason) {
        /* All or nothing: holding one slot while waiting for another would let two
         * nodes each hold half and block each other. */
        for (guint i = 0; i < a->n_kinds; i++) {
            if (!a->got[i])
                continue;
            g_autofree char *name =
                vmig_slots_lease_name(a->kinds[i], a->nodes[i], a->got[i] - 1, NULL);
            if (name)
                slots_release_one(ctl, name, job->uid, job->key);
        }
        guint delay = vmig_slots_backoff_ms(job->slot_attempts++, g_random_int());
        if (job->slot_woken)
            delay = 0; /* a slot freed meanwhile: its wake-up found us busy */
        job->slot_woken = FALSE;
        job->slot_retry_at_ms = delay ? vmig_ctl_wall_ms() + delay : 0;
        g_free(job->slot_reason);
        job->slot_reason = wait_reason;
        guint k = MIN(a->k, a->n_kinds - 1);
        job->slot_wait_kind = a->kinds[k];
        g_free(job->slot_wait_node);
        job->slot_wait_node = g_strdup(a->nodes[k]);
        g_message("VMIM %s: %s (retry in %u ms)", job->key, wait_reason, delay);
    } else {
        for (guint i = 0; i < a->n_kinds; i++) {
            if (!a->got[i])
                continue;
            *slots_job_field(job, a->kinds[i]) = a->got[i];
            if (a->kinds[i] == VMIG_SLOTS_KIND_INBOUND) {
                g_free(job->slot_inbound_node);
                job->slot_inbound_node = g_strdup(a->nodes[i]);
            }
        }
        job->slot_attempts = 0;
        job->slot_retry_at_ms = 0;
        job->slot_woken = FALSE;
        job->slot_defer_since_ms = 0;
        g_clear_pointer(&job->slot_reason, g_free);
        g_clear_pointer(&job->slot_wait_node, g_free);
        vmig_ctl_metrics_dirty(ctl);
    }
    slots_acquire_free(a);
    vmig_ctl_job_idle(job);
    vmig_ctl_enqueue(ctl, job->key);
}

static void
slots_acquire_written(GObject *src, GAsyncResult *res, gpointer data)
{
    SlotsAcquire *a = data;
    SlotsWrite *w = g_steal_pointer(&a->w);
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) out = vmig_kube_call_finish(res, NULL, &err);
    if (out) {
        g_message("VMIM %s: took slot Lease %s", a->job->key, w->name);
        a->got[a->k] = a->index + 1;
        a->k++;
    } else if (g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_CONFLICT) ||
               g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_REFUSED) ||
               g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_NOT_FOUND)) {
        /* Lost the race for this index: the next pick skips it. */
        g_debug("VMIM %s: slot Lease %s taken meanwhile: %s", a->job->key, w->name, err->message);
        g_hash_table_add(a->lost, g_strdup(w->name));
    } else {
        char *reason = g_strdup_printf("waiting: slot Lease %s: %s", w->name, err->message);
        slots_write_free(w);
        slots_acquire_end(a, reason);
        return;
    }
    slots_write_free(w);
    slots_acquire_step(a);
}

static void
slots_acquire_step(SlotsAcquire *a)
{
    CtlJob *job = a->job;
    VmigController *ctl = job->ctl;
    gint64 now = vmig_ctl_wall_ms();
    while (a->k < a->n_kinds && *slots_job_field(job, a->kinds[a->k]))
        a->k++;
    if (a->k == a->n_kinds) {
        slots_acquire_end(a, NULL);
        return;
    }
    VmigSlotsKind kind = a->kinds[a->k];
    const char *node = a->nodes[a->k];
    guint limit = slots_limit(ctl, kind);
    guint n = limit + SCAN_EXTRA;
    g_autofree VmigSlotsLease *leases = g_new0(VmigSlotsLease, n);
    g_autoptr(GPtrArray) hold = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
    for (guint i = 0; i < n; i++) {
        g_autoptr(GError) err = NULL;
        g_autofree char *name = vmig_slots_lease_name(kind, node, i, &err);
        if (!name) {
            slots_acquire_end(a, g_strdup_printf("waiting: %s", err->message));
            return;
        }
        if (g_hash_table_contains(a->lost, name)) {
            leases[i] = (VmigSlotsLease){.exists = TRUE,
                                         .holder = "(another migration)",
                                         .renew_ms = now,
                                         .duration_s = 40,
                                         .holder_live = TRUE};
            continue;
        }
        JsonNode *l = vmig_kube_informer_get(ctl->inf[CTL_INF_LEASE], ctl->lease_namespace, name);
        if (l)
            g_ptr_array_add(hold, l);
        slots_view(ctl, l, &leases[i]);
    }
    VmigSlotsPick p;
    vmig_slots_pick(leases, n, limit, job->uid, now, &p);
    if (p.step == VMIG_SLOTS_STEP_FULL || a->writes > 2 * limit + 4) {
        slots_acquire_end(a, vmig_slots_wait_reason(kind, node, MAX(p.busy, 1), limit));
        return;
    }
    if (p.step == VMIG_SLOTS_STEP_HELD) {
        a->got[a->k++] = p.index + 1;
        slots_acquire_step(a);
        return;
    }
    g_autofree char *name = vmig_slots_lease_name(kind, node, p.index, NULL);
    a->index = p.index;
    a->writes++;
    a->w = slots_write_new(ctl, job->uid, job->key, name);
    g_debug("VMIM %s: taking slot Lease %s", job->key, name);
    if (p.step == VMIG_SLOTS_STEP_UPDATE) {
        /* From the cached copy (no GET: a freed slot is taken one round trip sooner); its
         * resourceVersion is the precondition, and after a 409 each attempt decides on the
         * live Lease again, so a stale cache still cannot take a busy slot. A 409 is often
         * the holder's own release racing us: the next attempt then finds it free. */
        g_autoptr(JsonNode) cached =
            vmig_kube_informer_get(ctl->inf[CTL_INF_LEASE], ctl->lease_namespace, name);
        vmig_kube_mutate(ctl->kube, vmig_kube_resource(VMIG_KUBE_LEASE), ctl->lease_namespace, name,
                         FALSE, cached, 3, slots_acquire_mutate, a->w, NULL, slots_acquire_written,
                         a);
        return;
    }
    /* CREATE: a 409 means another daemon created it first. */
    JsonObject *o = vmig_ctl_lease_object(ctl, name);
    slots_set_holder(a->w, o, TRUE);
    g_autoptr(JsonNode) body = json_node_init_object(json_node_alloc(), o);
    json_object_unref(o);
    VmigKubeRequest req = {
        .resource = vmig_kube_resource(VMIG_KUBE_LEASE),
        .namespace = ctl->lease_namespace,
        .body = body,
    };
    vmig_kube_call(ctl->kube, VMIG_KUBE_VERB_CREATE, &req, NULL, slots_acquire_written, a);
}

/* ------------------------------------------------------------------------------------ */
/* fairness between nodes (vmig_slots_fair)                                             */

/* The VMIM's creation time and key order: older first, then ns/name. */
static int
slots_age_cmp(gint64 a_ms, const char *a_key, gint64 b_ms, const char *b_key)
{
    if (a_ms != b_ms)
        return a_ms < b_ms ? -1 : 1;
    return g_strcmp0(a_key, b_key);
}

typedef struct {
    char *node;
    guint waiting;
    gint64 oldest_ms;
    char *oldest_key;
} SlotsNodeWait;

static void
slots_node_wait_free(gpointer p)
{
    SlotsNodeWait *w = p;
    g_free(w->node);
    g_free(w->oldest_key);
    g_free(w);
}

/* The UIDs holding a slot Lease of any kind, from the cache: a VMIM holding one is no
 * longer waiting, even before its phase shows it. (transfer full) */
static GHashTable *
slots_holders(VmigController *ctl, gint64 now)
{
    GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(ctl->inf[CTL_INF_LEASE]);
    for (guint i = 0; i < keys->len; i++) {
        const char *k = keys->pdata[i];
        const char *slash = strchr(k, '/');
        if (!slash || !g_str_has_prefix(slash + 1, SLOT_PREFIX))
            continue;
        g_autofree char *ns = g_strndup(k, slash - k);
        g_autoptr(JsonNode) l = vmig_kube_informer_get(ctl->inf[CTL_INF_LEASE], ns, slash + 1);
        VmigSlotsLease v;
        slots_view(ctl, l, &v);
        if (l && !vmig_slots_is_free(&v, now))
            g_hash_table_add(set, g_strdup(v.holder));
    }
    return set;
}

/* Whether @job should leave the free cluster slots to another node (vmig_slots_fair): the
 * waiting migrations per node come from the VMIM and VMI caches, the outbound slots held from
 * the Lease cache. Returns the wait reason (transfer full), or NULL to contend. */
static char *
slots_fair_defer(CtlJob *job)
{
    VmigController *ctl = job->ctl;
    gint64 now = vmig_ctl_wall_ms();
    guint limit = slots_limit(ctl, VMIG_SLOTS_KIND_CLUSTER);
    guint per_node = slots_limit(ctl, VMIG_SLOTS_KIND_OUTBOUND);
    guint busy = vmig_ctl_slots_count(ctl, VMIG_SLOTS_KIND_CLUSTER, NULL);
    if (busy >= limit) {
        /* full: the pick says so; waiting for a full cluster is no deferral, and the bound
         * counts deferral in a row only */
        job->slot_defer_since_ms = 0;
        return NULL;
    }
    g_autoptr(JsonNode) self_node =
        vmig_kube_informer_get(ctl->inf[CTL_INF_VMIM], job->ns, job->name);
    if (!self_node)
        return NULL;
    gint64 self_ms = vmig_ctl_parse_time_ms(vmig_kube_meta_string(self_node, "creationTimestamp"));
    const char *me = ctl->cfg->node_name;

    g_autoptr(GHashTable) holders = slots_holders(ctl, now);
    g_autoptr(GHashTable) nodes =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, slots_node_wait_free);
    g_autoptr(GHashTable) alive = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    guint rank = 0;
    g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(ctl->inf[CTL_INF_VMIM]);
    for (guint i = 0; i < keys->len; i++) {
        const char *k = keys->pdata[i];
        const char *slash = strchr(k, '/');
        if (!slash || g_strcmp0(k, job->key) == 0)
            continue;
        g_autofree char *ns = g_strndup(k, slash - k);
        g_autoptr(JsonNode) n = vmig_kube_informer_get(ctl->inf[CTL_INF_VMIM], ns, slash + 1);
        g_autoptr(VmigModelVmim) m = n ? vmig_model_vmim_from_json(n, NULL) : NULL;
        if (!m || m->deleting || m->phase > VMIG_MODEL_MIGRATION_PHASE_PENDING ||
            g_hash_table_contains(holders, m->meta.uid))
            continue;
        g_autoptr(JsonNode) vn = vmig_kube_informer_get(ctl->inf[CTL_INF_VMI], ns, m->vmi_name);
        g_autoptr(VmigModelVmi) vmi = vn ? vmig_model_vmi_from_json(vn, NULL) : NULL;
        if (!vmi || vmi->phase != VMIG_MODEL_VMI_PHASE_RUNNING || !vmi->node_name)
            continue;
        gint64 created = vmig_ctl_parse_time_ms(vmig_kube_meta_string(n, "creationTimestamp"));
        if (g_strcmp0(vmi->node_name, me) == 0) {
            rank += slots_age_cmp(created, k, self_ms, job->key) < 0;
        } else {
            /* Another node's VMIM counts from the moment it shows: its daemon sees it on
             * the same watch. One that will never contend (it fails its checks there, or
             * its daemon misbehaves) costs us at most VMIG_SLOTS_DEFER_MAX_MS. */
            gpointer ok;
            if (!g_hash_table_lookup_extended(alive, vmi->node_name, NULL, &ok)) {
                ok = GINT_TO_POINTER(vmig_ctl_node_ready(ctl, vmi->node_name, now));
                g_hash_table_insert(alive, g_strdup(vmi->node_name), ok);
            }
            if (!ok)
                continue; /* a dead daemon does not contend: leave it nothing */
        }
        SlotsNodeWait *w = g_hash_table_lookup(nodes, vmi->node_name);
        if (!w) {
            w = g_new0(SlotsNodeWait, 1);
            w->node = g_strdup(vmi->node_name);
            w->oldest_ms = G_MAXINT64;
            g_hash_table_insert(nodes, w->node, w);
        }
        w->waiting++;
        if (slots_age_cmp(created, k, w->oldest_ms, w->oldest_key) < 0) {
            w->oldest_ms = created;
            g_free(w->oldest_key);
            w->oldest_key = g_strdup(k);
        }
    }
    /* this migration itself */
    SlotsNodeWait *w = g_hash_table_lookup(nodes, me);
    if (!w) {
        w = g_new0(SlotsNodeWait, 1);
        w->node = g_strdup(me);
        w->oldest_ms = G_MAXINT64;
        g_hash_table_insert(nodes, w->node, w);
    }
    w->waiting++;
    if (slots_age_cmp(self_ms, job->key, w->oldest_ms, w->oldest_key) < 0) {
        w->oldest_ms = self_ms;
        g_free(w->oldest_key);
        w->oldest_key = g_strdup(job->key);
    }
    if (g_hash_table_size(nodes) < 2)
        return NULL;

    guint n = 0, self = 0;
    g_autofree VmigSlotsShare *shares = g_new0(VmigSlotsShare, g_hash_table_size(nodes));
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, nodes);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        SlotsNodeWait *nw = v;
        if (g_strcmp0(nw->node, me) == 0)
            self = n;
        shares[n++] = (VmigSlotsShare){
            .node = nw->node,
            .held = vmig_ctl_slots_count(ctl, VMIG_SLOTS_KIND_OUTBOUND, nw->node),
            .waiting = nw->waiting,
            .oldest_ms = nw->oldest_ms,
            .oldest_key = nw->oldest_key,
        };
    }
    const char *winner = NULL;
    gint64 deferred = job->slot_defer_since_ms ? now - job->slot_defer_since_ms : 0;
    switch (vmig_slots_fair(shares, n, self, rank, limit - busy, per_node, deferred, &winner)) {
    case VMIG_SLOTS_FAIR_CONTEND:
        job->slot_defer_since_ms = 0;
        return NULL;
    case VMIG_SLOTS_FAIR_OVERDUE:
        if (winner)
            g_message("VMIM %s: deferred %" G_GINT64_FORMAT " ms to %s; contending anyway",
                      job->key, deferred, winner);
        return NULL;
    case VMIG_SLOTS_FAIR_DEFER:
        break;
    }
    if (!job->slot_defer_since_ms)
        job->slot_defer_since_ms = now;
    if (!winner) /* the older migrations of this node fill its outbound limit */
        return vmig_slots_wait_reason(VMIG_SLOTS_KIND_OUTBOUND, me, per_node, per_node);
    return vmig_slots_fair_reason(busy, limit, winner);
}

/* Only this daemon takes this node's outbound slots, so it knows when they are all taken:
 * the Lease cache, plus takes in flight here that the cache may not show yet. Contending
 * for a cluster slot then would only hold, for a moment, a slot another node could use (in
 * the 2 x 6 drain test four of a node's six VMIMs did so, and the other node waited on
 * "cluster limit 5/5" with four running). Returns the wait reason (transfer full) or NULL.
 * The cache lagging behind our own writes only lets a take through to the race, as before. */
static char *
slots_outbound_full(CtlJob *job)
{
    VmigController *ctl = job->ctl;
    guint per_node = slots_limit(ctl, VMIG_SLOTS_KIND_OUTBOUND);
    guint held = vmig_ctl_slots_count(ctl, VMIG_SLOTS_KIND_OUTBOUND, ctl->cfg->node_name);
    guint claiming = 0;
    GHashTableIter it;
    gpointer p;
    g_hash_table_iter_init(&it, ctl->jobs);
    while (g_hash_table_iter_next(&it, NULL, &p)) {
        CtlJob *other = p;
        claiming += other != job && other->slot_claiming;
    }
    if (held + claiming < per_node)
        return NULL;
    /* a take in flight may already show in the cache: do not report more than it can be */
    return vmig_slots_wait_reason(VMIG_SLOTS_KIND_OUTBOUND, ctl->cfg->node_name,
                                  MAX(held, MIN(held + claiming, per_node)), per_node);
}

/* The job waits for a slot of @kind (on @node) for @why (consumed), logged when it changed;
 * no new attempt before @retry_at_ms (0: on the next wake-up). */
static CtlSlotsGate
slots_wait(CtlJob *job, char *why, VmigSlotsKind kind, const char *node, gint64 retry_at_ms,
           const char **reason)
{
    if (g_strcmp0(why, job->slot_reason) != 0)
        g_message("VMIM %s: %s", job->key, why);
    g_free(job->slot_reason);
    job->slot_reason = why;
    job->slot_wait_kind = kind;
    g_free(job->slot_wait_node);
    job->slot_wait_node = g_strdup(node);
    job->slot_retry_at_ms = retry_at_ms;
    *reason = job->slot_reason;
    return CTL_SLOTS_WAIT;
}

CtlSlotsGate
vmig_ctl_slots_gate(CtlJob *job, VmigMigrationAction action, const char *target,
                    const char **reason)
{
    VmigController *ctl = job->ctl;
    *reason = NULL;
    if (!job->uid)
        return CTL_SLOTS_OK;
    SlotsAcquire *a = NULL;
    if (action == VMIG_MIGRATION_ACTION_CLAIM) {
        if (job->slot_cluster && job->slot_outbound)
            return CTL_SLOTS_OK;
    } else if (action == VMIG_MIGRATION_ACTION_SCHEDULE && target) {
        if (job->slot_inbound && g_strcmp0(job->slot_inbound_node, target) == 0)
            return CTL_SLOTS_OK;
        if (job->slot_inbound) {
            /* the choice moved to another node: give the old one back first */
            g_autofree char *old = vmig_slots_lease_name(
                VMIG_SLOTS_KIND_INBOUND, job->slot_inbound_node, job->slot_inbound - 1, NULL);
            if (old)
                slots_release_one(ctl, old, job->uid, job->key);
            job->slot_inbound = 0;
            g_clear_pointer(&job->slot_inbound_node, g_free);
        }
    } else {
        return CTL_SLOTS_OK;
    }
    if (job->slot_retry_at_ms && vmig_ctl_wall_ms() < job->slot_retry_at_ms) {
        *reason = job->slot_reason;
        return CTL_SLOTS_WAIT;
    }
    guint budget_busy =
        action == VMIG_MIGRATION_ACTION_CLAIM ? vmig_ctl_budget_blocks(ctl, job) : 0;
    if (budget_busy) {
        /* libvirt has no speed below 1 MiB/s: one more migration would exceed the budget */
        guint delay = vmig_slots_backoff_ms(job->slot_attempts++, g_random_int());
        job->slot_retry_at_ms = vmig_ctl_wall_ms() + delay;
        g_free(job->slot_reason);
        job->slot_reason = g_strdup_printf(
            "waiting: bandwidth budget %" G_GUINT64_FORMAT " MiB/s on %s gives its %u "
            "migration%s at least 1 MiB/s each",
            ctl->cfg->migration_bandwidth_budget_mibps, ctl->cfg->node_name, budget_busy,
            budget_busy == 1 ? "" : "s");
        *reason = job->slot_reason;
        return CTL_SLOTS_WAIT;
    }
    if (action == VMIG_MIGRATION_ACTION_CLAIM && !job->slot_cluster && !job->slot_outbound) {
        char *full = slots_outbound_full(job);
        /* a freed outbound slot wakes it (vmig_ctl_slots_lease_changed); the 1 s is the
         * fallback for a take in flight here that ends without one */
        if (full)
            return slots_wait(job, full, VMIG_SLOTS_KIND_OUTBOUND, ctl->cfg->node_name,
                              vmig_ctl_wall_ms() + 1000, reason);
    }
    if (action == VMIG_MIGRATION_ACTION_CLAIM && !job->slot_cluster) {
        char *defer = slots_fair_defer(job);
        /* decided again on every slot change */
        if (defer)
            return slots_wait(job, defer, VMIG_SLOTS_KIND_CLUSTER, NULL, 0, reason);
    }
    a = g_new0(SlotsAcquire, 1);
    a->job = job;
    a->lost = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (action == VMIG_MIGRATION_ACTION_CLAIM) {
        /* Always in this order on every node, so contention is on the same Leases. */
        a->kinds[a->n_kinds] = VMIG_SLOTS_KIND_CLUSTER;
        a->nodes[a->n_kinds++] = NULL;
        a->kinds[a->n_kinds] = VMIG_SLOTS_KIND_OUTBOUND;
        a->nodes[a->n_kinds++] = g_strdup(ctl->cfg->node_name);
    } else {
        a->kinds[a->n_kinds] = VMIG_SLOTS_KIND_INBOUND;
        a->nodes[a->n_kinds++] = g_strdup(target);
    }
    job->busy = TRUE;
    job->slot_claiming = action == VMIG_MIGRATION_ACTION_CLAIM;
    slots_acquire_step(a);
    return CTL_SLOTS_BUSY;
}

guint
vmig_ctl_slots_retry_ms(CtlJob *job)
{
    gint64 now = vmig_ctl_wall_ms();
    if (job->slot_defer_since_ms && (!job->slot_retry_at_ms || job->slot_retry_at_ms <= now))
        return 1000; /* deferring: slot changes re-queue it; this is the fallback */
    if (!job->slot_retry_at_ms || job->slot_retry_at_ms <= now)
        return 5000;
    return (guint)MAX(job->slot_retry_at_ms - now, 1);
}

/* ------------------------------------------------------------------------------------ */
/* renew and release                                                                    */

static gboolean
slots_pass(gpointer data)
{
    VmigController *ctl = data;
    ctl->slots_kick = 0;
    VmigKubeInformer *leases = ctl->inf[CTL_INF_LEASE];
    VmigKubeInformer *vmims = ctl->inf[CTL_INF_VMIM];
    /* Releasing needs a complete VMIM cache: before the first LIST every holder looks gone. */
    if (!leases || !vmims || !vmig_kube_informer_has_synced(leases) ||
        !vmig_kube_informer_has_synced(vmims))
        return G_SOURCE_CONTINUE;
    gint64 now = vmig_ctl_wall_ms();
    g_autoptr(GPtrArray) keys = vmig_kube_informer_keys(leases);
    for (guint i = 0; i < keys->len; i++) {
        const char *k = keys->pdata[i];
        const char *slash = strchr(k, '/');
        if (!slash || !g_str_has_prefix(slash + 1, SLOT_PREFIX))
            continue;
        g_autofree char *ns = g_strndup(k, slash - k);
        if (g_strcmp0(ns, ctl->lease_namespace) != 0)
            continue;
        g_autoptr(JsonNode) l = vmig_kube_informer_get(leases, ns, slash + 1);
        if (!l || g_strcmp0(slots_annotation(l, ANN_SLOT_NODE), ctl->cfg->node_name) != 0)
            continue;
        const char *holder = slots_spec_string(l, "spec.holderIdentity");
        if (!holder || !*holder)
            continue;
        const char *vmim_key = slots_annotation(l, ANN_SLOT_VMIM);
        if (slots_holder_state(ctl, l, holder) != 1) {
            slots_release_one(ctl, slash + 1, holder, vmim_key);
            continue;
        }
        VmigSlotsLease v;
        slots_view(ctl, l, &v);
        if (vmig_slots_needs_renew(&v, now)) {
            SlotsWrite *w = slots_write_new(ctl, holder, vmim_key, slash + 1);
            vmig_kube_mutate(ctl->kube, vmig_kube_resource(VMIG_KUBE_LEASE), ctl->lease_namespace,
                             slash + 1, FALSE, l, 0, slots_renew_mutate, w, NULL, slots_logged_done,
                             w);
        }
    }
    return G_SOURCE_CONTINUE;
}

/* Wake @job for a slot change: through the queue, at once; an acquisition in flight learns
 * of it when it ends (slot_woken). */
static void
slots_wake(CtlJob *job)
{
    job->slot_retry_at_ms = 0;
    if (job->busy)
        job->slot_woken = TRUE;
    vmig_ctl_enqueue(job->ctl, job->key);
}

gboolean
vmig_ctl_slots_lease_changed(VmigController *ctl, JsonNode *lease, gboolean deleted)
{
    const char *name = lease ? vmig_kube_meta_string(lease, "name") : NULL;
    if (!name || !g_str_has_prefix(name, SLOT_PREFIX))
        return FALSE;
    /* kind and node from the name: vmigrated-slot-cluster-<i>, -out-<node>-<j>, -in-<node>-<k> */
    VmigSlotsKind kind;
    const char *rest;
    if (g_str_has_prefix(name, SLOT_PREFIX "cluster-")) {
        kind = VMIG_SLOTS_KIND_CLUSTER;
        rest = NULL;
    } else if (g_str_has_prefix(name, SLOT_PREFIX "out-")) {
        kind = VMIG_SLOTS_KIND_OUTBOUND;
        rest = name + strlen(SLOT_PREFIX "out-");
    } else if (g_str_has_prefix(name, SLOT_PREFIX "in-")) {
        kind = VMIG_SLOTS_KIND_INBOUND;
        rest = name + strlen(SLOT_PREFIX "in-");
    } else {
        return TRUE; /* ours, but not a slot we know: nothing waits for it */
    }
    const char *dash = rest ? strrchr(rest, '-') : NULL;
    g_autofree char *node = dash ? g_strndup(rest, dash - rest) : NULL;
    VmigSlotsLease v;
    slots_view(ctl, deleted ? NULL : lease, &v);
    gboolean freed = vmig_slots_is_free(&v, vmig_ctl_wall_ms());

    GHashTableIter it;
    gpointer p;
    g_hash_table_iter_init(&it, ctl->jobs);
    while (g_hash_table_iter_next(&it, NULL, &p)) {
        CtlJob *job = p;
        if (!job->slot_reason)
            continue;
        gboolean match =
            freed && job->slot_wait_kind == kind &&
            (kind == VMIG_SLOTS_KIND_CLUSTER || g_strcmp0(job->slot_wait_node, node) == 0);
        /* a deferring job's share changes whenever a node takes or returns a slot */
        gboolean share = job->slot_defer_since_ms && kind != VMIG_SLOTS_KIND_INBOUND;
        if (match || share)
            slots_wake(job);
    }
    vmig_ctl_metrics_dirty(ctl);
    return TRUE;
}

static gboolean slots_kick_cb(gpointer data);

static gboolean
slots_vmim_final(JsonNode *vmim)
{
    JsonNode *ph = vmim ? vmig_model_json_get(vmim, "status.phase") : NULL;
    const char *s = ph && JSON_NODE_HOLDS_VALUE(ph) && json_node_get_value_type(ph) == G_TYPE_STRING
                        ? json_node_get_string(ph)
                        : NULL;
    return g_strcmp0(s, "Succeeded") == 0 || g_strcmp0(s, "Failed") == 0;
}

void
vmig_ctl_slots_vmim_changed(VmigController *ctl, JsonNode *old_obj, JsonNode *new_obj)
{
    if (slots_vmim_final(old_obj) || (new_obj && !slots_vmim_final(new_obj)))
        return;
    /* Its slots count as free in our cache now (vmig_slots_is_free: holder final or gone),
     * before its daemon writes the release: the waiters may take them at once. */
    GHashTableIter it;
    gpointer p;
    g_hash_table_iter_init(&it, ctl->jobs);
    while (g_hash_table_iter_next(&it, NULL, &p)) {
        CtlJob *job = p;
        if (job->slot_reason)
            slots_wake(job);
    }
    /* and release the ones this daemon holds for it without the 0.5 s delay: the cache the
     * pass reads already shows it final */
    if (ctl->slots_kick)
        g_source_remove(ctl->slots_kick);
    ctl->slots_kick = g_idle_add(slots_kick_cb, ctl);
}

static gboolean
slots_kick_cb(gpointer data)
{
    slots_pass(data);
    return G_SOURCE_REMOVE;
}

void
vmig_ctl_slots_kick(VmigController *ctl)
{
    /* Soon, not now: the VMIM cache must first show the migration final. */
    if (!ctl->slots_kick)
        ctl->slots_kick = g_timeout_add(500, slots_kick_cb, ctl);
}

void
vmig_ctl_slots_start(VmigController *ctl)
{
    if (!ctl->slots_timer)
        ctl->slots_timer = g_timeout_add(PASS_MS, slots_pass, ctl);
}

void
vmig_ctl_slots_stop(VmigController *ctl)
{
    if (ctl->slots_timer)
        g_source_remove(ctl->slots_timer);
    ctl->slots_timer = 0;
    if (ctl->slots_kick)
        g_source_remove(ctl->slots_kick);
    ctl->slots_kick = 0;
}

guint
vmig_ctl_slots_count(VmigController *ctl, VmigSlotsKind kind, const char *node)
{
    VmigKubeInformer *leases = ctl->inf[CTL_INF_LEASE];
    if (!leases)
        return 0;
    guint limit = slots_limit(ctl, kind), held = 0;
    gint64 now = vmig_ctl_wall_ms();
    for (guint i = 0; i < limit + SCAN_EXTRA; i++) {
        g_autofree char *name = vmig_slots_lease_name(kind, node, i, NULL);
        if (!name)
            return 0;
        g_autoptr(JsonNode) l = vmig_kube_informer_get(leases, ctl->lease_namespace, name);
        VmigSlotsLease v;
        slots_view(ctl, l, &v);
        held += !vmig_slots_is_free(&v, now);
    }
    return held;
}
