/* conn.c - libvirt connection, domain handle, job statistics, job calls and job
 * events (see vmig/virt.h). These are thin: each function is one libvirt call
 * plus the translation of its result or error. */
#define G_LOG_DOMAIN "vmig-virt"
#include "virt-private.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>

struct _VmigVirtConn {
    virConnectPtr conn;
    char *uri;
};

typedef struct JobWatch JobWatch;

struct _VmigVirtDomain {
    gint ref;
    virConnectPtr conn; /* referenced */
    virDomainPtr dom;
    char *what; /* "ns/name" */
    JobWatch *watch;
};

/* libvirt's default error handler prints every error to stderr; ours are
 * reported through GError with libvirt's message instead. */
static void
quiet_error(void *data, virErrorPtr err)
{
}

static void
libvirt_init_once(void)
{
    static gsize done = 0;
    if (g_once_init_enter(&done)) {
        virInitialize();
        virSetErrorFunc(NULL, quiet_error);
        g_once_init_leave(&done, 1);
    }
}

static gpointer
event_loop_thread(gpointer data)
{
    for (;;) {
        if (virEventRunDefaultImpl() < 0)
            g_warning("libvirt event loop: %s", virGetLastErrorMessage());
    }
    return NULL;
}

/* libvirt's GLib event implementation attaches its sources to the default GMainContext;
 * registering it twice is harmless but a second thread iterating that context is not. */
static int
register_once(void)
{
    static gsize registered = 0;
    static int rc = 0;
    libvirt_init_once();
    if (g_once_init_enter(&registered)) {
        rc = virEventRegisterDefaultImpl();
        g_once_init_leave(&registered, 1);
    }
    return rc;
}

gboolean
vmig_virt_event_loop_register(GError **error)
{
    if (register_once() < 0) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_LIBVIRT,
                    "cannot register libvirt's event loop");
        return FALSE;
    }
    return TRUE;
}

gboolean
vmig_virt_event_loop_start(GError **error)
{
    static gsize started = 0;
    static int rc = 0;
    libvirt_init_once();
    if (g_once_init_enter(&started)) {
        rc = register_once();
        if (rc == 0) {
            /* lives as long as the process: libvirt's loop has no clean stop */
            GThread *t = g_thread_new("vmig-virt-events", event_loop_thread, NULL);
            g_thread_unref(t);
        }
        g_once_init_leave(&started, 1);
    }
    if (rc < 0) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_LIBVIRT,
                    "cannot register libvirt's event loop");
        return FALSE;
    }
    return TRUE;
}

static gboolean
libvirt_fail(GError **error, VmigVirtError code, const char *what, const char *call)
{
    g_set_error(error, VMIG_VIRT_ERROR, code, "%s: %s: %s", what, call, virGetLastErrorMessage());
    return FALSE;
}

VmigVirtConn *
vmig_virt_conn_open(const char *uri, GError **error)
{
    libvirt_init_once();
    if (!uri || !*uri) {
        g_set_error_literal(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                            "libvirt URI is empty");
        return NULL;
    }
    virConnectPtr c = virConnectOpen(uri);
    if (!c) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_CONNECT, "cannot connect to %s: %s",
                    uri, virGetLastErrorMessage());
        return NULL;
    }
    VmigVirtConn *conn = g_new0(VmigVirtConn, 1);
    conn->conn = c;
    conn->uri = g_strdup(uri);
    return conn;
}

virConnectPtr
vmig_virt_conn_ptr(VmigVirtConn *conn)
{
    return conn->conn;
}

void
vmig_virt_conn_free(VmigVirtConn *conn)
{
    if (!conn)
        return;
    virConnectClose(conn->conn);
    g_free(conn->uri);
    g_free(conn);
}

static gboolean
name_part_ok(const char *s)
{
    return s && *s && !strchr(s, '/') && !strstr(s, "..");
}

char *
vmig_virt_domain_name(const char *namespace_, const char *name, GError **error)
{
    if (!name_part_ok(namespace_)) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "VMI %s/%s: namespace \"%s\" cannot name a domain (empty, '/' or '..')",
                    namespace_ ? namespace_ : "", name ? name : "", namespace_ ? namespace_ : "");
        return NULL;
    }
    if (!name_part_ok(name)) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "VMI %s/%s: name \"%s\" cannot name a domain (empty, '/' or '..')", namespace_,
                    name ? name : "", name ? name : "");
        return NULL;
    }
    return g_strdup_printf("%s_%s", namespace_, name);
}

VmigVirtDomain *
vmig_virt_domain_lookup(VmigVirtConn *conn, const char *namespace_, const char *name,
                        GError **error)
{
    g_autofree char *dname = vmig_virt_domain_name(namespace_, name, error);
    if (!dname)
        return NULL;
    g_autofree char *what = g_strdup_printf("%s/%s", namespace_, name);
    return vmig_virt_domain_lookup_named(conn, what, dname, error);
}

VmigVirtDomain *
vmig_virt_domain_lookup_named(VmigVirtConn *conn, const char *what, const char *domain_name,
                              GError **error)
{
    if (!domain_name || !*domain_name || strchr(domain_name, '/')) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "VMI %s: domain name '%s' is not valid", what, domain_name ? domain_name : "");
        return NULL;
    }
    virDomainPtr d = virDomainLookupByName(conn->conn, domain_name);
    if (!d) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_NO_DOMAIN,
                    "VMI %s: no domain %s on %s: %s", what, domain_name, conn->uri,
                    virGetLastErrorMessage());
        return NULL;
    }
    VmigVirtDomain *dom = g_new0(VmigVirtDomain, 1);
    dom->ref = 1;
    dom->conn = conn->conn;
    virConnectRef(dom->conn);
    dom->dom = d;
    dom->what = g_strdup(what);
    return dom;
}

VmigVirtDomain *
vmig_virt_domain_ref(VmigVirtDomain *dom)
{
    g_atomic_int_inc(&dom->ref);
    return dom;
}

void
vmig_virt_domain_free(VmigVirtDomain *dom)
{
    if (!dom || !g_atomic_int_dec_and_test(&dom->ref))
        return;
    vmig_virt_domain_unwatch_jobs(dom);
    virDomainFree(dom->dom);
    virConnectClose(dom->conn);
    g_free(dom->what);
    g_free(dom);
}

virDomainPtr
vmig_virt_domain_get_ptr(VmigVirtDomain *dom)
{
    return dom->dom;
}

const char *
vmig_virt_domain_what(const VmigVirtDomain *dom)
{
    return dom->what;
}

char *
vmig_virt_domain_migratable_xml(VmigVirtDomain *dom, GError **error)
{
    char *xml = virDomainGetXMLDesc(dom->dom, VIR_DOMAIN_XML_MIGRATABLE);
    if (!xml) {
        libvirt_fail(error, VMIG_VIRT_ERROR_LIBVIRT, dom->what, "virDomainGetXMLDesc");
        return NULL;
    }
    /* libvirt's allocator is malloc; hand out a GLib string */
    char *out = g_strdup(xml);
    free(xml);
    return out;
}

static VmigVirtDomainState
map_state(int state, int reason)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
        return reason == VIR_DOMAIN_RUNNING_POSTCOPY_FAILED
                   ? VMIG_VIRT_DOMAIN_RUNNING_POSTCOPY_FAILED
                   : VMIG_VIRT_DOMAIN_RUNNING;
    case VIR_DOMAIN_PAUSED:
        if (reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED)
            return VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY_FAILED;
        return reason == VIR_DOMAIN_PAUSED_POSTCOPY ? VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY
                                                    : VMIG_VIRT_DOMAIN_PAUSED;
    case VIR_DOMAIN_SHUTOFF:
        return VMIG_VIRT_DOMAIN_SHUTOFF;
    default:
        return VMIG_VIRT_DOMAIN_OTHER;
    }
}

static gboolean
get_state_raw(VmigVirtDomain *dom, int *state, int *reason, GError **error)
{
    if (virDomainGetState(dom->dom, state, reason, 0) < 0)
        return libvirt_fail(error, VMIG_VIRT_ERROR_LIBVIRT, dom->what, "virDomainGetState");
    return TRUE;
}

gboolean
vmig_virt_domain_get_state(VmigVirtDomain *dom, VmigVirtDomainState *out, GError **error)
{
    int state = 0, reason = 0;
    if (!get_state_raw(dom, &state, &reason, error))
        return FALSE;
    *out = map_state(state, reason);
    return TRUE;
}

static VmigVirtJobType
map_job_type(int type)
{
    switch (type) {
    case VIR_DOMAIN_JOB_BOUNDED:
        return VMIG_VIRT_JOB_BOUNDED;
    case VIR_DOMAIN_JOB_UNBOUNDED:
        return VMIG_VIRT_JOB_UNBOUNDED;
    case VIR_DOMAIN_JOB_COMPLETED:
        return VMIG_VIRT_JOB_COMPLETED;
    case VIR_DOMAIN_JOB_FAILED:
        return VMIG_VIRT_JOB_FAILED;
    case VIR_DOMAIN_JOB_CANCELLED:
        return VMIG_VIRT_JOB_CANCELLED;
    default:
        return VMIG_VIRT_JOB_NONE;
    }
}

/* One table: libvirt field -> our struct (ULLONG fields). */
static const struct {
    const char *field;
    gsize offset;
    gsize has_offset; /* of a gboolean set when present, or 0 */
} ullong_fields[] = {
#define F(name, member)                                                                            \
    {                                                                                              \
        name, G_STRUCT_OFFSET(VmigVirtJobStats, member), 0                                         \
    }
#define FH(name, member, has)                                                                      \
    {                                                                                              \
        name, G_STRUCT_OFFSET(VmigVirtJobStats, member), G_STRUCT_OFFSET(VmigVirtJobStats, has)    \
    }
    F(VIR_DOMAIN_JOB_TIME_ELAPSED, time_elapsed_ms),
    FH(VIR_DOMAIN_JOB_DOWNTIME, downtime_ms, has_downtime),
    F(VIR_DOMAIN_JOB_DATA_TOTAL, data_total),
    F(VIR_DOMAIN_JOB_DATA_PROCESSED, data_processed),
    F(VIR_DOMAIN_JOB_DATA_REMAINING, data_remaining),
    FH(VIR_DOMAIN_JOB_MEMORY_TOTAL, mem_total, has_mem),
    FH(VIR_DOMAIN_JOB_MEMORY_PROCESSED, mem_processed, has_mem),
    FH(VIR_DOMAIN_JOB_MEMORY_REMAINING, mem_remaining, has_mem),
    FH(VIR_DOMAIN_JOB_DISK_TOTAL, disk_total, has_disk),
    FH(VIR_DOMAIN_JOB_DISK_PROCESSED, disk_processed, has_disk),
    FH(VIR_DOMAIN_JOB_DISK_REMAINING, disk_remaining, has_disk),
    F(VIR_DOMAIN_JOB_MEMORY_BPS, mem_bps),
    F(VIR_DOMAIN_JOB_MEMORY_ITERATION, mem_iteration),
    F(VIR_DOMAIN_JOB_MEMORY_POSTCOPY_REQS, postcopy_requests),
#undef F
#undef FH
};

static void
stats_from_params(int type, virTypedParameterPtr params, int n, VmigVirtJobStats *out)
{
    memset(out, 0, sizeof(*out));
    out->type = map_job_type(type);
    for (gsize i = 0; i < G_N_ELEMENTS(ullong_fields); i++) {
        unsigned long long v;
        if (virTypedParamsGetULLong(params, n, ullong_fields[i].field, &v) == 1) {
            *(guint64 *)((char *)out + ullong_fields[i].offset) = v;
            if (ullong_fields[i].has_offset)
                *(gboolean *)((char *)out + ullong_fields[i].has_offset) = TRUE;
        }
    }
    unsigned long long rate = 0, page = 0;
    if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, &rate) == 1) {
        if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE, &page) != 1)
            page = 4096;
        out->dirty_rate_bps = rate * page;
    }
    const char *msg = NULL;
    if (virTypedParamsGetString(params, n, VIR_DOMAIN_JOB_ERRMSG, &msg) == 1 && msg)
        g_strlcpy(out->errmsg, msg, sizeof(out->errmsg));
}

gboolean
vmig_virt_domain_job_stats(VmigVirtDomain *dom, gboolean completed, VmigVirtJobStats *out,
                           GError **error)
{
    int type = 0, n = 0;
    virTypedParameterPtr params = NULL;
    /* KEEP_COMPLETED: otherwise the first reader consumes the final figures */
    unsigned int flags =
        completed ? VIR_DOMAIN_JOB_STATS_COMPLETED | VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED : 0;
    if (virDomainGetJobStats(dom->dom, &type, &params, &n, flags) < 0)
        return libvirt_fail(error, VMIG_VIRT_ERROR_LIBVIRT, dom->what,
                            completed ? "virDomainGetJobStats(completed)" : "virDomainGetJobStats");
    stats_from_params(type, params, n, out);
    virTypedParamsFree(params, n);
    return TRUE;
}

gboolean
vmig_virt_domain_abort_job(VmigVirtDomain *dom, guint wait_ms, GError **error)
{
    int state = 0, reason = 0;
    /* After the switch the guest's memory is split between the nodes: a cancel
     * would lose it (B14). libvirt refuses too, but do not even ask. */
    if (virDomainGetState(dom->dom, &state, &reason, 0) == 0 &&
        ((state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_POSTCOPY) ||
         (state == VIR_DOMAIN_RUNNING && reason == VIR_DOMAIN_RUNNING_POSTCOPY))) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_POSTCOPY,
                    "%s: abort not possible during post-copy", dom->what);
        return FALSE;
    }
    if (virDomainAbortJob(dom->dom) < 0)
        return libvirt_fail(error, VMIG_VIRT_ERROR_LIBVIRT, dom->what, "virDomainAbortJob");
    gint64 deadline = g_get_monotonic_time() + (gint64)wait_ms * 1000;
    for (;;) {
        VmigVirtJobStats s;
        /* an error here means the domain or its job is gone: the job ended */
        if (!vmig_virt_domain_job_stats(dom, FALSE, &s, NULL) || s.type == VMIG_VIRT_JOB_NONE ||
            s.type >= VMIG_VIRT_JOB_COMPLETED)
            return TRUE;
        if (g_get_monotonic_time() >= deadline)
            break;
        g_usleep(50 * 1000);
    }
    g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_TIMEOUT,
                "%s: migration job still running %u ms after virDomainAbortJob", dom->what,
                wait_ms);
    return FALSE;
}

static gboolean
set_max_speed(VmigVirtDomain *dom, guint64 mibps, unsigned int flags, GError **error)
{
    guint64 v = mibps ? mibps : VMIG_VIRT_BANDWIDTH_UNLIMITED;
    if (v > VMIG_VIRT_BANDWIDTH_UNLIMITED || v > G_MAXULONG) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_INVALID,
                    "%s: bandwidth %" G_GUINT64_FORMAT " MiB/s is above libvirt's maximum",
                    dom->what, mibps);
        return FALSE;
    }
    if (virDomainMigrateSetMaxSpeed(dom->dom, (unsigned long)v, flags) < 0)
        return libvirt_fail(error, VMIG_VIRT_ERROR_LIBVIRT, dom->what,
                            flags ? "virDomainMigrateSetMaxSpeed(POSTCOPY)"
                                  : "virDomainMigrateSetMaxSpeed");
    return TRUE;
}

gboolean
vmig_virt_domain_set_max_speed(VmigVirtDomain *dom, guint64 mibps, GError **error)
{
    return set_max_speed(dom, mibps, 0, error);
}

gboolean
vmig_virt_domain_set_max_postcopy_speed(VmigVirtDomain *dom, guint64 mibps, GError **error)
{
    return set_max_speed(dom, mibps, VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY, error);
}

gboolean
vmig_virt_domain_set_max_downtime(VmigVirtDomain *dom, guint64 downtime_ms, GError **error)
{
    if (virDomainMigrateSetMaxDowntime(dom->dom, downtime_ms, 0) < 0)
        return libvirt_fail(error, VMIG_VIRT_ERROR_LIBVIRT, dom->what,
                            "virDomainMigrateSetMaxDowntime");
    return TRUE;
}

gboolean
vmig_virt_domain_start_postcopy(VmigVirtDomain *dom, GError **error)
{
    if (virDomainMigrateStartPostCopy(dom->dom, 0) < 0)
        return libvirt_fail(error, VMIG_VIRT_ERROR_LIBVIRT, dom->what,
                            "virDomainMigrateStartPostCopy");
    return TRUE;
}

gboolean
vmig_virt_domain_suspend(VmigVirtDomain *dom, GError **error)
{
    if (virDomainSuspend(dom->dom) < 0)
        return libvirt_fail(error, VMIG_VIRT_ERROR_LIBVIRT, dom->what, "virDomainSuspend");
    return TRUE;
}

gboolean
vmig_virt_domain_resume(VmigVirtDomain *dom, GError **error)
{
    int state = 0, reason = 0;
    if (!get_state_raw(dom, &state, &reason, error))
        return FALSE;
    if (state == VIR_DOMAIN_PAUSED &&
        (reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED || reason == VIR_DOMAIN_PAUSED_POSTCOPY)) {
        g_set_error(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_STATE,
                    "%s: refusing to resume a domain paused by post-copy", dom->what);
        return FALSE;
    }
    if (virDomainResume(dom->dom) < 0)
        return libvirt_fail(error, VMIG_VIRT_ERROR_LIBVIRT, dom->what, "virDomainResume");
    return TRUE;
}

/* ---- stats provider backed by a domain ---- */

static gboolean
prov_get_stats(gpointer data, VmigVirtJobStats *out, GError **error)
{
    return vmig_virt_domain_job_stats(data, FALSE, out, error);
}

static gboolean
prov_abort(gpointer data, GError **error)
{
    return vmig_virt_domain_abort_job(data, 5000, error);
}

static gboolean
prov_postcopy(gpointer data, GError **error)
{
    return vmig_virt_domain_start_postcopy(data, error);
}

static gboolean
prov_suspend(gpointer data, GError **error)
{
    return vmig_virt_domain_suspend(data, error);
}

static gboolean
prov_downtime(gpointer data, guint64 ms, GError **error)
{
    return vmig_virt_domain_set_max_downtime(data, ms, error);
}

static gpointer
prov_ref(gpointer data)
{
    return vmig_virt_domain_ref(data);
}

static void
prov_unref(gpointer data)
{
    vmig_virt_domain_free(data);
}

const VmigVirtStatsProvider vmig_virt_domain_provider = {
    .get_stats = prov_get_stats,
    .abort_job = prov_abort,
    .start_postcopy = prov_postcopy,
    .suspend = prov_suspend,
    .set_max_downtime = prov_downtime,
    .now_ms = NULL,
    .data_ref = prov_ref,
    .data_unref = prov_unref,
};

/* ---- job events ---- */

struct JobWatch {
    gint ref;
    gint active;
    VmigVirtDomain *dom; /* not referenced: the domain owns the watch */
    GMainContext *context;
    VmigVirtJobCompletedFunc on_completed;
    VmigVirtIterationFunc on_iteration;
    gpointer user_data;
    int completed_id, iteration_id;
};

typedef struct {
    JobWatch *watch;
    gboolean completed;
    VmigVirtJobStats stats;
    guint iteration;
} JobEvent;

static JobWatch *
watch_ref(JobWatch *w)
{
    g_atomic_int_inc(&w->ref);
    return w;
}

static void
watch_unref(gpointer p)
{
    JobWatch *w = p;
    if (!g_atomic_int_dec_and_test(&w->ref))
        return;
    if (w->context)
        g_main_context_unref(w->context);
    g_free(w);
}

static gboolean
deliver_event(gpointer p)
{
    JobEvent *ev = p;
    JobWatch *w = ev->watch;
    if (!g_atomic_int_get(&w->active))
        return G_SOURCE_REMOVE;
    if (ev->completed && w->on_completed)
        w->on_completed(w->dom, &ev->stats, w->user_data);
    else if (!ev->completed && w->on_iteration)
        w->on_iteration(w->dom, ev->iteration, w->user_data);
    return G_SOURCE_REMOVE;
}

static void
job_event_free(gpointer p)
{
    JobEvent *ev = p;
    watch_unref(ev->watch);
    g_free(ev);
}

/* libvirt calls these on its event-loop thread; the work happens on the owner's
 * GLib context. */
static void
on_job_completed(virConnectPtr conn, virDomainPtr d, virTypedParameterPtr params, int n,
                 void *opaque)
{
    JobWatch *w = opaque;
    JobEvent *ev = g_new0(JobEvent, 1);
    ev->watch = watch_ref(w);
    ev->completed = TRUE;
    /* the event carries the finished job's statistics; "success" tells which end */
    int ok = 1;
    if (virTypedParamsGetBoolean(params, n, VIR_DOMAIN_JOB_SUCCESS, &ok) != 1)
        ok = 1;
    stats_from_params(ok ? VIR_DOMAIN_JOB_COMPLETED : VIR_DOMAIN_JOB_FAILED, params, n, &ev->stats);
    g_main_context_invoke_full(w->context, G_PRIORITY_DEFAULT, deliver_event, ev, job_event_free);
}

static void
on_iteration(virConnectPtr conn, virDomainPtr d, int iteration, void *opaque)
{
    JobWatch *w = opaque;
    JobEvent *ev = g_new0(JobEvent, 1);
    ev->watch = watch_ref(w);
    ev->iteration = iteration > 0 ? (guint)iteration : 0;
    g_main_context_invoke_full(w->context, G_PRIORITY_DEFAULT, deliver_event, ev, job_event_free);
}

gboolean
vmig_virt_domain_watch_jobs(VmigVirtDomain *dom, GMainContext *context,
                            VmigVirtJobCompletedFunc on_completed, VmigVirtIterationFunc on_iter,
                            gpointer user_data, GError **error)
{
    vmig_virt_domain_unwatch_jobs(dom);
    JobWatch *w = g_new0(JobWatch, 1);
    w->ref = 1;
    w->active = 1;
    w->dom = dom;
    w->context =
        context ? g_main_context_ref(context) : g_main_context_ref(g_main_context_default());
    w->on_completed = on_completed;
    w->on_iteration = on_iter;
    w->user_data = user_data;
    w->completed_id = virConnectDomainEventRegisterAny(
        dom->conn, dom->dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
        VIR_DOMAIN_EVENT_CALLBACK(on_job_completed), watch_ref(w), watch_unref);
    if (w->completed_id < 0) {
        watch_unref(w); /* the callback's reference */
        watch_unref(w);
        return libvirt_fail(error, VMIG_VIRT_ERROR_LIBVIRT, dom->what,
                            "virConnectDomainEventRegisterAny(job-completed)");
    }
    w->iteration_id = virConnectDomainEventRegisterAny(
        dom->conn, dom->dom, VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
        VIR_DOMAIN_EVENT_CALLBACK(on_iteration), watch_ref(w), watch_unref);
    if (w->iteration_id < 0) {
        watch_unref(w);
        g_warning("%s: no migration-iteration events: %s", dom->what, virGetLastErrorMessage());
    }
    dom->watch = w;
    return TRUE;
}

void
vmig_virt_domain_unwatch_jobs(VmigVirtDomain *dom)
{
    JobWatch *w = dom->watch;
    if (!w)
        return;
    dom->watch = NULL;
    g_atomic_int_set(&w->active, 0);
    if (w->completed_id >= 0)
        virConnectDomainEventDeregisterAny(dom->conn, w->completed_id);
    if (w->iteration_id >= 0)
        virConnectDomainEventDeregisterAny(dom->conn, w->iteration_id);
    watch_unref(w);
}
