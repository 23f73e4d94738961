/* vmig/virt.h - the libvirt driver: the migration call and its job monitor.
 *
 * The source role hands this module a VM pod's libvirt URI, the VMI's namespace
 * and name (KubeVirt's domain name is "<namespace>_<name>") and the migration
 * settings it resolved; this module builds the flags and typed parameters of
 * virDomainMigrateToURI3 from ONE table, runs the call on a worker thread, and
 * watches the job with virDomainGetJobStats and libvirt's job events. Every
 * decision of the monitor (progress timeout, completion timeout and its action,
 * downtime steps, post-copy rules, error tolerance) is a pure state machine that
 * takes samples and returns actions, so its rules are tested with tables; the
 * runner feeds it from a stats provider interface that tests script without
 * libvirt. The outcome of a migration is derived from the call's return value
 * and the completed-job statistics, never from libvirt's last error text.
 *
 * Threading: every function runs on the thread owning the GLib main context it
 * was given (the default context unless said otherwise); blocking libvirt calls
 * (MigrateToURI3, GetJobStats, AbortJob and the other job calls) run on GTask
 * worker threads and report back on that context.
 */
#pragma once

#include <gio/gio.h>
#include <glib.h>
#include <libvirt/libvirt.h>

G_BEGIN_DECLS

#define VMIG_VIRT_ERROR (vmig_virt_error_quark())
GQuark vmig_virt_error_quark(void);

/* Error codes of VMIG_VIRT_ERROR. */
typedef enum {
    VMIG_VIRT_ERROR_INVALID,   /* bad argument or setting (names the field and value) */
    VMIG_VIRT_ERROR_CONNECT,   /* cannot open the libvirt connection */
    VMIG_VIRT_ERROR_NO_DOMAIN, /* domain not found */
    VMIG_VIRT_ERROR_LIBVIRT,   /* a libvirt call failed (libvirt's message appended) */
    VMIG_VIRT_ERROR_POSTCOPY,  /* refused: abort not possible during post-copy */
    VMIG_VIRT_ERROR_STATE,     /* wrong state (no job running, already finished, ...) */
    VMIG_VIRT_ERROR_TIMEOUT,   /* a bounded wait ran out */
} VmigVirtError;

/* ---------------------------------------------------------------------------
 * Migration parameters (pure; no libvirt connection needed)
 * ------------------------------------------------------------------------- */

/* libvirt's upper limit for the migration bandwidth of the QEMU driver, in MiB/s
 * (QEMU_DOMAIN_MIG_BANDWIDTH_MAX = INT64_MAX / 1 MiB on 64-bit hosts). "Unlimited"
 * is sent as this value, explicitly, so QEMU's own default never applies (B21). */
#define VMIG_VIRT_BANDWIDTH_UNLIMITED ((guint64)(G_MAXINT64 / (1024 * 1024)))

/* Default number of multifd connections with parallel migration (KubeVirt's 8). */
#define VMIG_VIRT_PARALLEL_CONNECTIONS_DEFAULT 8

/* What the source role resolved for one migration. Strings are borrowed. */
typedef struct {
    const char *dconnuri;             /* destination libvirt URI passed to MigrateToURI3, e.g.
                                         "qemu+unix:///system?socket=<proxy>-source.sock" */
    const char *migrate_uri;          /* VIR_MIGRATE_PARAM_URI, "unix://<proxy memory socket>" */
    const char *destination_xml;      /* VIR_MIGRATE_PARAM_DEST_XML (migratable XML); nullable */
    gboolean auto_converge;           /* VIR_MIGRATE_AUTO_CONVERGE */
    gboolean allow_postcopy;          /* VIR_MIGRATE_POSTCOPY (switch is the monitor's decision) */
    gboolean parallel;                /* VIR_MIGRATE_PARALLEL */
    guint parallel_connections;       /* VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS; 0 = 8 */
    const char *const *migrate_disks; /* NULL-terminated target names ("vda"); non-empty
                                         = block migration: VIR_MIGRATE_NON_SHARED_INC */
    const char *disks_uri;            /* VIR_MIGRATE_PARAM_DISKS_URI, "unix://<proxy NBD socket>" */
    gboolean shared_storage_declared; /* VIR_MIGRATE_UNSAFE: disks on storage both nodes see */
    guint64 bandwidth_mibps;          /* VIR_MIGRATE_PARAM_BANDWIDTH in MiB/s; 0 = unlimited */
    gboolean postcopy_resume;         /* VIR_MIGRATE_POSTCOPY_RESUME (libvirt >= 8.5): resume a
                                         migration that failed after the post-copy switch; the
                                         other settings must be the original call's; needs
                                         allow_postcopy */
    guint64 bandwidth_postcopy_mibps; /* VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY in MiB/s; 0 = not
                                         sent (QEMU: post-copy unlimited) */
} VmigVirtMigrateSettings;

/* Type of one typed parameter, mirrors the virTypedParameterType values used. */
typedef enum {
    VMIG_VIRT_PARAM_STRING,
    VMIG_VIRT_PARAM_INT,
    VMIG_VIRT_PARAM_ULLONG,
} VmigVirtParamType;

/* One typed parameter of virDomainMigrateToURI3. */
typedef struct {
    const char *name; /* libvirt's name, e.g. "migrate_uri" (static string) */
    VmigVirtParamType type;
    char *s;    /* STRING value (owned) */
    gint i;     /* INT value */
    guint64 ul; /* ULLONG value */
} VmigVirtParam;

/* The flag set and parameter list of one MigrateToURI3 call. */
typedef struct {
    guint64 flags;                /* VIR_MIGRATE_* bits */
    GArray *params;               /* of VmigVirtParam, in table order */
    char *dconnuri;               /* the call's dconnuri argument */
    gboolean bandwidth_unlimited; /* logged as "unlimited" */
} VmigVirtMigrateCall;

/**
 * vmig_virt_migrate_call_build:
 * @settings: the resolved settings
 * @what: (nullable): object named in errors, e.g. "ns1/vm1"
 * @error: VMIG_VIRT_ERROR_INVALID naming the field and value (dconnuri or migrate_uri
 *   missing or not the expected scheme, disks_uri without migrate_disks, a disk name
 *   with '/' or "..", bandwidth above VMIG_VIRT_BANDWIDTH_UNLIMITED, parallel
 *   connections above 255)
 *
 * Pure: maps @settings through the parameter table (docs/virt.md) to the flags
 * (always LIVE | PEER2PEER | PERSIST_DEST) and typed parameters of
 * virDomainMigrateToURI3.
 *
 * Returns: (transfer full) (nullable): the call; free with vmig_virt_migrate_call_free().
 */
VmigVirtMigrateCall *vmig_virt_migrate_call_build(const VmigVirtMigrateSettings *settings,
                                                  const char *what, GError **error);
void vmig_virt_migrate_call_free(VmigVirtMigrateCall *call);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigVirtMigrateCall, vmig_virt_migrate_call_free)

/**
 * vmig_virt_migrate_call_find:
 * Returns: (transfer none) (nullable): the first parameter called @name, or NULL.
 */
const VmigVirtParam *vmig_virt_migrate_call_find(const VmigVirtMigrateCall *call, const char *name);

/**
 * vmig_virt_migrate_call_describe:
 * Returns: (transfer full): one line for logs: "flags=0x...(LIVE|PEER2PEER|...)
 *   dconnuri=... migrate_uri=... bandwidth=unlimited ..." (destination_xml shown by length).
 */
char *vmig_virt_migrate_call_describe(const VmigVirtMigrateCall *call);

/* ---------------------------------------------------------------------------
 * Job statistics (virDomainGetJobStats)
 * ------------------------------------------------------------------------- */

/* virDomainJobType. */
typedef enum {
    VMIG_VIRT_JOB_NONE,
    VMIG_VIRT_JOB_BOUNDED,
    VMIG_VIRT_JOB_UNBOUNDED,
    VMIG_VIRT_JOB_COMPLETED,
    VMIG_VIRT_JOB_FAILED,
    VMIG_VIRT_JOB_CANCELLED,
} VmigVirtJobType;

/* Returns: (transfer none): "none", "bounded", "unbounded", "completed", "failed", "cancelled". */
const char *vmig_virt_job_type_to_string(VmigVirtJobType type);

/* The fields of virDomainGetJobStats the driver uses. Bytes unless said. A field
 * libvirt did not report is 0 and its has_ flag FALSE. */
typedef struct {
    VmigVirtJobType type;
    guint64 time_elapsed_ms; /* VIR_DOMAIN_JOB_TIME_ELAPSED */
    guint64 downtime_ms;     /* VIR_DOMAIN_JOB_DOWNTIME */
    gboolean has_downtime;
    guint64 data_total, data_processed, data_remaining;
    guint64 mem_total, mem_processed, mem_remaining;
    gboolean has_mem;
    guint64 disk_total, disk_processed, disk_remaining;
    gboolean has_disk;
    guint64 mem_bps;           /* VIR_DOMAIN_JOB_MEMORY_BPS, bytes/s */
    guint64 dirty_rate_bps;    /* MEMORY_DIRTY_RATE (pages/s) x MEMORY_PAGE_SIZE, bytes/s */
    guint64 mem_iteration;     /* VIR_DOMAIN_JOB_MEMORY_ITERATION */
    guint64 postcopy_requests; /* VIR_DOMAIN_JOB_MEMORY_POSTCOPY_REQS */
    char errmsg[256];          /* VIR_DOMAIN_JOB_ERRMSG of a failed job, "" if none */
} VmigVirtJobStats;

/**
 * vmig_virt_job_stats_remaining:
 * Returns: bytes still to move, memory plus disk (data_remaining when libvirt did
 *   not split it), the quantity whose minimum the progress rule watches.
 */
guint64 vmig_virt_job_stats_remaining(const VmigVirtJobStats *stats);

/** vmig_virt_job_stats_processed: Returns: bytes moved so far, memory plus disk. */
guint64 vmig_virt_job_stats_processed(const VmigVirtJobStats *stats);

/** vmig_virt_job_stats_total: Returns: bytes to move, memory plus disk to copy. */
guint64 vmig_virt_job_stats_total(const VmigVirtJobStats *stats);

/* ---------------------------------------------------------------------------
 * Monitor decisions (pure state machine)
 * ------------------------------------------------------------------------- */

/* What happens when the completion deadline passes (exactly once). */
typedef enum {
    VMIG_VIRT_TIMEOUT_ACTION_ABORT,    /* virDomainAbortJob, outcome "completion timeout" */
    VMIG_VIRT_TIMEOUT_ACTION_POSTCOPY, /* virDomainMigrateStartPostCopy (needs allow_postcopy) */
    VMIG_VIRT_TIMEOUT_ACTION_PAUSE,    /* virDomainSuspend; migration completes stopped */
} VmigVirtTimeoutAction;

/* Returns: (transfer none): "abort", "postcopy", "pause". */
const char *vmig_virt_timeout_action_to_string(VmigVirtTimeoutAction action);
/* Returns: TRUE and sets @out when @name names an action. */
gboolean vmig_virt_timeout_action_from_string(const char *name, VmigVirtTimeoutAction *out);

/* Monitor configuration. vmig_virt_monitor_config_init() sets the defaults given. */
typedef struct {
    guint poll_interval_ms;               /* GetJobStats period; default 500, 1..60000 */
    guint progress_timeout_s;             /* KubeVirt progressTimeout; default 150; 0 = off */
    guint completion_timeout_per_gib_s;   /* KubeVirt completionTimeoutPerGiB; default 150;
                                             0 = off; amounts under 1 GiB count as 1 GiB */
    VmigVirtTimeoutAction timeout_action; /* default ABORT */
    gboolean allow_postcopy;              /* the call carries VIR_MIGRATE_POSTCOPY */
    guint max_consecutive_errors;         /* stop polling after this many GetJobStats errors; 3 */
    guint downtime_steps;                 /* 0 = off: max downtime left to libvirt/QEMU */
    guint64 downtime_max_ms;              /* last step's value; steps rise linearly to it */
    guint downtime_step_delay_ms;         /* time between steps */
    gboolean resume_postcopy;             /* the job resumes a failed post-copy
                                             (VIR_MIGRATE_POSTCOPY_RESUME): the decider starts
                                             in post-copy; needs allow_postcopy */
} VmigVirtMonitorConfig;

void vmig_virt_monitor_config_init(VmigVirtMonitorConfig *config);

/**
 * vmig_virt_monitor_config_validate:
 * @error: VMIG_VIRT_ERROR_INVALID naming the field (poll interval out of range,
 *   timeout action "postcopy" or resume_postcopy without allow_postcopy, downtime steps
 *   without a maximum)
 */
gboolean vmig_virt_monitor_config_validate(const VmigVirtMonitorConfig *config, GError **error);

/* Why the monitor (or a user) aborted. */
typedef enum {
    VMIG_VIRT_ABORT_NONE,
    VMIG_VIRT_ABORT_USER,               /* "aborted" (VMIM deleted / abort requested) */
    VMIG_VIRT_ABORT_NO_PROGRESS,        /* "no progress" */
    VMIG_VIRT_ABORT_COMPLETION_TIMEOUT, /* "completion timeout" */
} VmigVirtAbortCause;

/* Returns: (transfer none): "", "aborted", "no progress", "completion timeout". */
const char *vmig_virt_abort_cause_to_string(VmigVirtAbortCause cause);

/* The action one decision asks for. */
typedef enum {
    VMIG_VIRT_ACTION_NONE,
    VMIG_VIRT_ACTION_ABORT,          /* virDomainAbortJob; .cause says why */
    VMIG_VIRT_ACTION_START_POSTCOPY, /* virDomainMigrateStartPostCopy */
    VMIG_VIRT_ACTION_SUSPEND,        /* virDomainSuspend (pause-and-complete) */
    VMIG_VIRT_ACTION_SET_DOWNTIME,   /* virDomainMigrateSetMaxDowntime(.downtime_ms) */
    VMIG_VIRT_ACTION_STOP_POLLING,   /* job over or stats unavailable: stop sampling */
} VmigVirtActionKind;

/* Returns: (transfer none): "none", "abort", "start-postcopy", "suspend", "set-downtime",
 * "stop-polling". */
const char *vmig_virt_action_kind_to_string(VmigVirtActionKind kind);

typedef struct {
    VmigVirtActionKind kind;
    VmigVirtAbortCause cause; /* ABORT only */
    guint64 downtime_ms;      /* SET_DOWNTIME only */
} VmigVirtAction;

/* Monitor phase. */
typedef enum {
    VMIG_VIRT_MONITOR_PRECOPY,
    VMIG_VIRT_MONITOR_POSTCOPY, /* after the switch: no timeouts, no abort */
    VMIG_VIRT_MONITOR_PAUSED,   /* suspended to complete */
    VMIG_VIRT_MONITOR_ABORTING, /* an abort was issued */
    VMIG_VIRT_MONITOR_STOPPED,  /* no more polling */
} VmigVirtMonitorPhase;

/* Returns: (transfer none): "pre-copy", "post-copy", "paused", "aborting", "stopped". */
const char *vmig_virt_monitor_phase_to_string(VmigVirtMonitorPhase phase);

/* Decision state. Plain data: tests build it with vmig_virt_decider_init() and
 * read its fields. */
typedef struct {
    VmigVirtMonitorConfig config;
    VmigVirtMonitorPhase phase;
    gboolean started;
    guint64 start_ms;               /* time of the first sample */
    guint64 last_progress_ms;       /* last time progress was seen */
    guint64 min_remaining;          /* lowest memory+disk remaining so far (iteration minima) */
    guint64 max_processed;          /* highest processed bytes so far */
    guint64 total_bytes;            /* memory + disk to move, from the first sample with a total */
    guint64 completion_deadline_ms; /* 0 = none (yet) */
    gboolean completion_action_taken;
    guint next_downtime_step;
    guint consecutive_errors;
    gboolean seen_active_job;
    gboolean postcopy_started;
    gboolean paused_by_monitor;
    VmigVirtAbortCause abort_cause;
    VmigVirtJobStats last; /* last good sample */
    gboolean has_last;
} VmigVirtDecider;

/** vmig_virt_decider_init: copies @config; phase pre-copy (post-copy with
 * resume_postcopy: the switch happened in the call being resumed), nothing seen yet. */
void vmig_virt_decider_init(VmigVirtDecider *d, const VmigVirtMonitorConfig *config);

/**
 * vmig_virt_decider_on_stats:
 * @now_ms: monotonic time of the sample, ms
 * @stats: an active-job sample
 *
 * Applies, in this order: job over (type none/completed/failed/cancelled after an
 * active job) -> STOP_POLLING; progress timeout (pre-copy only); completion
 * deadline -> the configured action once; the next due downtime step.
 *
 * Returns: the action to carry out (NONE most of the time).
 */
VmigVirtAction vmig_virt_decider_on_stats(VmigVirtDecider *d, guint64 now_ms,
                                          const VmigVirtJobStats *stats);

/**
 * vmig_virt_decider_on_error:
 * A GetJobStats call failed. Returns: NONE (retry next poll) or STOP_POLLING after
 * max_consecutive_errors consecutive failures.
 */
VmigVirtAction vmig_virt_decider_on_error(VmigVirtDecider *d, guint64 now_ms);

/** vmig_virt_decider_on_job_completed: the job-completed event. Returns: STOP_POLLING. */
VmigVirtAction vmig_virt_decider_on_job_completed(VmigVirtDecider *d);

/**
 * vmig_virt_decider_request_abort:
 * A user asks to abort (VMIM deleted). Returns: ABORT (cause USER), or NONE when an
 * abort is already under way; FALSE with VMIG_VIRT_ERROR_POSTCOPY "abort not possible
 * during post-copy" after the switch, VMIG_VIRT_ERROR_STATE when the job is over.
 */
gboolean vmig_virt_decider_request_abort(VmigVirtDecider *d, VmigVirtAction *out, GError **error);

/**
 * vmig_virt_decider_action_done:
 * Reports the result of carrying out @action. A failed START_POSTCOPY or SUSPEND
 * is not retried (the deadline action happens once) but logged by the caller; a
 * failed ABORT leaves the phase so a later request may try again.
 */
void vmig_virt_decider_action_done(VmigVirtDecider *d, const VmigVirtAction *action, gboolean ok);

/**
 * vmig_virt_downtime_step:
 * Pure: value of downtime step @i (0-based) of @steps rising linearly to @max_ms:
 * max_ms x (i + 1) / steps, at least 1 ms.
 */
guint64 vmig_virt_downtime_step(guint i, guint steps, guint64 max_ms);

/* ---------------------------------------------------------------------------
 * Outcome
 * ------------------------------------------------------------------------- */

typedef enum {
    VMIG_VIRT_OUTCOME_SUCCEEDED,
    VMIG_VIRT_OUTCOME_FAILED,
    VMIG_VIRT_OUTCOME_ABORTED,         /* cancelled: by a user or a monitor rule */
    VMIG_VIRT_OUTCOME_POSTCOPY_FAILED, /* failed after the switch; source never resumed */
} VmigVirtOutcomeKind;

/* Returns: (transfer none): "succeeded", "failed", "aborted", "postcopy-failed". */
const char *vmig_virt_outcome_kind_to_string(VmigVirtOutcomeKind kind);

/* Source domain state after the call (virDomainGetState), for the outcome. */
typedef enum {
    VMIG_VIRT_DOMAIN_UNKNOWN,
    VMIG_VIRT_DOMAIN_RUNNING,
    VMIG_VIRT_DOMAIN_PAUSED,
    VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY_FAILED, /* VIR_DOMAIN_PAUSED_POSTCOPY_FAILED */
    VMIG_VIRT_DOMAIN_RUNNING_POSTCOPY_FAILED,
    VMIG_VIRT_DOMAIN_SHUTOFF,
    VMIG_VIRT_DOMAIN_OTHER,
    VMIG_VIRT_DOMAIN_PAUSED_POSTCOPY, /* VIR_DOMAIN_PAUSED_POSTCOPY: the source of a post-copy
                                         migration libvirt still counts as running */
} VmigVirtDomainState;

/* Returns: (transfer none): "unknown", "running", "paused", "paused-postcopy-failed", ... */
const char *vmig_virt_domain_state_to_string(VmigVirtDomainState state);

/* What the outcome is derived from. */
typedef struct {
    int call_rc;                       /* virDomainMigrateToURI3 return */
    const char *call_error;            /* libvirt's last error text; nullable */
    gboolean call_aborted;             /* its error code is VIR_ERR_OPERATION_ABORTED */
    const VmigVirtJobStats *completed; /* GetJobStats(COMPLETED|KEEP_COMPLETED); nullable */
    VmigVirtAbortCause abort_cause;    /* from the decider */
    gboolean postcopy_started;
    gboolean paused_by_monitor;
    VmigVirtDomainState source_state; /* after the call */
} VmigVirtOutcomeInput;

/* The verdict and the final figures written to status. */
typedef struct {
    VmigVirtOutcomeKind kind;
    char *reason; /* "aborted", "no progress", "completion timeout",
                     "migration failed", "post-copy failed" ; "" on success */
    char *detail; /* libvirt's text (may be consequential); nullable */
    gboolean postcopy_used;
    gboolean paused_to_complete;
    gboolean recoverable; /* POSTCOPY_FAILED and the source is paused with reason post-copy
                             failed (or still post-copy: a failed resume can leave it so
                             until QEMU notices): vmig_virt_migration_resume() may finish it */
    VmigVirtDomainState source_state; /* after the call */
    gboolean completed_event;         /* the job-completed event arrived (set by the migration) */
    gboolean has_stats;               /* the figures below come from completed-job stats */
    guint64 downtime_ms, time_elapsed_ms;
    guint64 data_processed, data_total, data_remaining;
    guint64 mem_bps, dirty_rate_bps, iterations;
} VmigVirtOutcome;

/**
 * vmig_virt_outcome_derive:
 * Pure. Succeeded when the call returned 0; otherwise completed-job type CANCELLED,
 * the call's error code VIR_ERR_OPERATION_ABORTED, or an abort we issued (unless the
 * job completed) -> aborted with the cause's reason; a
 * failure after the post-copy switch, or a source paused with reason post-copy
 * failed -> postcopy-failed (recoverable when the source is paused with reason
 * post-copy failed); else failed. The call's error text is kept as detail
 * only. Returns: (transfer full): free with vmig_virt_outcome_free().
 */
VmigVirtOutcome *vmig_virt_outcome_derive(const VmigVirtOutcomeInput *in);
void vmig_virt_outcome_free(VmigVirtOutcome *outcome);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigVirtOutcome, vmig_virt_outcome_free)

/* ---------------------------------------------------------------------------
 * Monitor runner (GLib main loop + a stats provider)
 * ------------------------------------------------------------------------- */

/* Where the runner gets samples and carries out actions. The job calls are made on
 * a worker thread (they may block on libvirt), so they must be thread-safe; now_ms
 * is called on the main context. Each returns TRUE on success or FALSE with @error. */
typedef struct {
    gboolean (*get_stats)(gpointer data, VmigVirtJobStats *out, GError **error);
    gboolean (*abort_job)(gpointer data, GError **error);
    gboolean (*start_postcopy)(gpointer data, GError **error);
    gboolean (*suspend)(gpointer data, GError **error);
    gboolean (*set_max_downtime)(gpointer data, guint64 downtime_ms, GError **error);
    guint64 (*now_ms)(gpointer data); /* NULL = g_get_monotonic_time() / 1000 */
    /* optional: keep @data alive while a call is in flight on a worker thread */
    gpointer (*data_ref)(gpointer data);
    void (*data_unref)(gpointer data);
} VmigVirtStatsProvider;

typedef struct _VmigVirtMonitor VmigVirtMonitor;

/* Called on the main context after each good sample (for status, at most once a
 * second is the caller's business) and after each action carried out. */
typedef void (*VmigVirtMonitorSampleFunc)(VmigVirtMonitor *monitor, const VmigVirtJobStats *stats,
                                          gpointer user_data);
typedef void (*VmigVirtMonitorActionFunc)(VmigVirtMonitor *monitor, const VmigVirtAction *action,
                                          gboolean ok, const char *error_text, gpointer user_data);

/**
 * vmig_virt_monitor_new:
 * @provider: (transfer none): must outlive the monitor
 * @provider_data: passed to every provider function
 * @what: object named in logs, e.g. "ns1/vm1"
 *
 * Returns: (transfer full): a stopped monitor; free with vmig_virt_monitor_free().
 */
VmigVirtMonitor *vmig_virt_monitor_new(const VmigVirtMonitorConfig *config,
                                       const VmigVirtStatsProvider *provider,
                                       gpointer provider_data, const char *what);
void vmig_virt_monitor_free(VmigVirtMonitor *monitor);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigVirtMonitor, vmig_virt_monitor_free)

void vmig_virt_monitor_set_callbacks(VmigVirtMonitor *monitor, VmigVirtMonitorSampleFunc on_sample,
                                     VmigVirtMonitorActionFunc on_action, gpointer user_data);

/** vmig_virt_monitor_start: starts polling every poll_interval_ms on the thread-default context. */
void vmig_virt_monitor_start(VmigVirtMonitor *monitor);

/** vmig_virt_monitor_job_completed: the job-completed event arrived; polling stops now
 * (a poll in flight is discarded). */
void vmig_virt_monitor_job_completed(VmigVirtMonitor *monitor);

/** vmig_virt_monitor_stop: stops polling (idempotent). */
void vmig_virt_monitor_stop(VmigVirtMonitor *monitor);

/**
 * vmig_virt_monitor_request_abort:
 * Issues virDomainAbortJob through the provider (asynchronously; the action callback
 * reports it). Returns: FALSE with VMIG_VIRT_ERROR_POSTCOPY during post-copy
 * ("abort not possible during post-copy") or VMIG_VIRT_ERROR_STATE when over.
 */
gboolean vmig_virt_monitor_request_abort(VmigVirtMonitor *monitor, GError **error);

/** vmig_virt_monitor_is_polling: Returns: TRUE while a poll timer is armed. */
gboolean vmig_virt_monitor_is_polling(const VmigVirtMonitor *monitor);

/** vmig_virt_monitor_get_decider: Returns: (transfer none): the decision state (read only). */
const VmigVirtDecider *vmig_virt_monitor_get_decider(const VmigVirtMonitor *monitor);

/** vmig_virt_monitor_poll_count: Returns: GetJobStats calls made so far. */
guint vmig_virt_monitor_poll_count(const VmigVirtMonitor *monitor);

/* ---------------------------------------------------------------------------
 * libvirt: connection, domain, events
 * ------------------------------------------------------------------------- */

/**
 * vmig_virt_event_loop_start:
 * Registers libvirt's default event implementation and runs it on a dedicated thread
 * (virEventRegisterDefaultImpl + virEventRunDefaultImpl). Idempotent and thread-safe;
 * must run before the first connection whose events are wanted.
 * Returns: FALSE with VMIG_VIRT_ERROR_LIBVIRT when registration failed.
 */
gboolean vmig_virt_event_loop_start(GError **error);

/**
 * vmig_virt_event_loop_register:
 * Registers libvirt's default event implementation (virEventRegisterDefaultImpl) WITHOUT
 * a thread of its own: libvirt's GLib implementation attaches its sources to the default
 * GMainContext, so a program whose main loop runs that context (vmigrated) dispatches
 * them there. Such a program must not call vmig_virt_event_loop_start(): a second thread
 * iterating the default context competes with the main loop for it and can starve it
 * (the daemon then stalled at start-up, its first Kubernetes requests never sent).
 * Idempotent and thread-safe; must run before the first connection whose events are wanted.
 * Returns: FALSE with VMIG_VIRT_ERROR_LIBVIRT when registration failed.
 */
gboolean vmig_virt_event_loop_register(GError **error);

typedef struct _VmigVirtConn VmigVirtConn;
typedef struct _VmigVirtDomain VmigVirtDomain;

/**
 * vmig_virt_conn_open:
 * @uri: a pod's libvirt, e.g.
 * "qemu+unix:///system?socket=/var/run/kubevirt-private/.../libvirt-sock" Returns: (transfer full):
 * the connection (virConnectOpen) or NULL with VMIG_VIRT_ERROR_CONNECT naming the URI.
 */
VmigVirtConn *vmig_virt_conn_open(const char *uri, GError **error);
/**
 * vmig_virt_conn_ptr:
 * Returns: (transfer none): the libvirt connection, for modules that call libvirt
 *   themselves (the capability checks); valid as long as @conn.
 */
virConnectPtr vmig_virt_conn_ptr(VmigVirtConn *conn);
void vmig_virt_conn_free(VmigVirtConn *conn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigVirtConn, vmig_virt_conn_free)

/**
 * vmig_virt_domain_name:
 * Returns: (transfer full): KubeVirt's domain name "<namespace>_<name>", or NULL with
 *   VMIG_VIRT_ERROR_INVALID when a part is empty or contains '/' or "..".
 */
char *vmig_virt_domain_name(const char *namespace_, const char *name, GError **error);

/**
 * vmig_virt_domain_lookup:
 * Returns: (transfer full): the domain of VMI @namespace_/@name (virDomainLookupByName
 *   of "<namespace>_<name>"), or NULL with VMIG_VIRT_ERROR_INVALID / _NO_DOMAIN.
 */
VmigVirtDomain *vmig_virt_domain_lookup(VmigVirtConn *conn, const char *namespace_,
                                        const char *name, GError **error);
/** vmig_virt_domain_ref: Returns: (transfer full): @dom with one more reference. */
/**
 * vmig_virt_domain_lookup_named:
 * @what: the VMI ("ns/name"), for messages
 * @domain_name: the libvirt domain name (the expanded --domain-name template; no '/')
 *
 * Like vmig_virt_domain_lookup() for a domain not named KubeVirt's way.
 * Returns: (transfer full) (nullable): the domain, or NULL with VMIG_VIRT_ERROR_INVALID or
 *   VMIG_VIRT_ERROR_NO_DOMAIN.
 */
VmigVirtDomain *vmig_virt_domain_lookup_named(VmigVirtConn *conn, const char *what,
                                              const char *domain_name, GError **error);
VmigVirtDomain *vmig_virt_domain_ref(VmigVirtDomain *dom);
/** vmig_virt_domain_free: drops one reference (the last one closes nothing but the
 * domain handle and its connection reference). */
void vmig_virt_domain_free(VmigVirtDomain *dom);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigVirtDomain, vmig_virt_domain_free)

/** vmig_virt_domain_what: Returns: (transfer none): "ns/name" for messages. */
const char *vmig_virt_domain_what(const VmigVirtDomain *dom);

/** vmig_virt_domain_migratable_xml: virDomainGetXMLDesc(VIR_DOMAIN_XML_MIGRATABLE).
 * Returns: (transfer full): the XML, or NULL with VMIG_VIRT_ERROR_LIBVIRT. Blocking. */
char *vmig_virt_domain_migratable_xml(VmigVirtDomain *dom, GError **error);

/** vmig_virt_domain_get_state: virDomainGetState. Blocking.
 * Returns: FALSE with VMIG_VIRT_ERROR_LIBVIRT. */
gboolean vmig_virt_domain_get_state(VmigVirtDomain *dom, VmigVirtDomainState *out, GError **error);

/**
 * vmig_virt_domain_job_stats:
 * @completed: FALSE = the active job; TRUE = the last completed job, kept for
 *   other readers (VIR_DOMAIN_JOB_STATS_COMPLETED | KEEP_COMPLETED)
 * Blocking (one libvirt RPC). Returns: FALSE with VMIG_VIRT_ERROR_LIBVIRT.
 */
gboolean vmig_virt_domain_job_stats(VmigVirtDomain *dom, gboolean completed, VmigVirtJobStats *out,
                                    GError **error);

/**
 * vmig_virt_domain_abort_job:
 * virDomainAbortJob, then waits up to @wait_ms for the active job to end. Blocking;
 * call from a worker thread. Returns: FALSE with VMIG_VIRT_ERROR_LIBVIRT,
 * VMIG_VIRT_ERROR_POSTCOPY (the domain is in post-copy: nothing is sent), or
 * VMIG_VIRT_ERROR_TIMEOUT (the abort was sent but the job still runs after @wait_ms).
 */
gboolean vmig_virt_domain_abort_job(VmigVirtDomain *dom, guint wait_ms, GError **error);

/** vmig_virt_domain_set_max_speed: virDomainMigrateSetMaxSpeed on the running job, MiB/s
 * (0 = unlimited, sent as VMIG_VIRT_BANDWIDTH_UNLIMITED). Blocking. */
gboolean vmig_virt_domain_set_max_speed(VmigVirtDomain *dom, guint64 mibps, GError **error);

/** vmig_virt_domain_set_max_postcopy_speed: virDomainMigrateSetMaxSpeed with
 * VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY, MiB/s (0 = unlimited, sent as
 * VMIG_VIRT_BANDWIDTH_UNLIMITED): QEMU's max-postcopy-bandwidth, which takes over from the
 * pre-copy limit at the switch to post-copy and is the only one that acts after it.
 * Blocking. Returns: FALSE with VMIG_VIRT_ERROR_INVALID or _LIBVIRT. */
gboolean vmig_virt_domain_set_max_postcopy_speed(VmigVirtDomain *dom, guint64 mibps,
                                                 GError **error);

/** vmig_virt_domain_set_max_downtime: virDomainMigrateSetMaxDowntime, ms. Blocking. */
gboolean vmig_virt_domain_set_max_downtime(VmigVirtDomain *dom, guint64 downtime_ms,
                                           GError **error);

/** vmig_virt_domain_start_postcopy: virDomainMigrateStartPostCopy. Blocking. */
gboolean vmig_virt_domain_start_postcopy(VmigVirtDomain *dom, GError **error);

/** vmig_virt_domain_suspend: virDomainSuspend. Blocking. */
gboolean vmig_virt_domain_suspend(VmigVirtDomain *dom, GError **error);

/** vmig_virt_domain_resume: virDomainResume. Refused (VMIG_VIRT_ERROR_STATE) when the
 * domain is paused because post-copy failed: resuming it would run a guest whose memory
 * is partly on the target (B14). Blocking. */
gboolean vmig_virt_domain_resume(VmigVirtDomain *dom, GError **error);

/* The libvirt-backed stats provider for a domain (data = the VmigVirtDomain). The
 * provider's abort waits up to 5 s for the job to end. */
extern const VmigVirtStatsProvider vmig_virt_domain_provider;

/* Job events of one domain, delivered on the GLib context given at watch time. */
typedef void (*VmigVirtJobCompletedFunc)(VmigVirtDomain *dom, const VmigVirtJobStats *stats,
                                         gpointer user_data);
typedef void (*VmigVirtIterationFunc)(VmigVirtDomain *dom, guint iteration, gpointer user_data);

/**
 * vmig_virt_domain_watch_jobs:
 * Registers VIR_DOMAIN_EVENT_ID_JOB_COMPLETED and VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION
 * for @dom (vmig_virt_event_loop_start() must have run before the connection was
 * opened); callbacks run on @context (NULL = default) via g_main_context_invoke until
 * vmig_virt_domain_unwatch_jobs() or the domain is freed.
 * Returns: FALSE with VMIG_VIRT_ERROR_LIBVIRT.
 */
gboolean vmig_virt_domain_watch_jobs(VmigVirtDomain *dom, GMainContext *context,
                                     VmigVirtJobCompletedFunc on_completed,
                                     VmigVirtIterationFunc on_iteration, gpointer user_data,
                                     GError **error);
void vmig_virt_domain_unwatch_jobs(VmigVirtDomain *dom);

/* ---------------------------------------------------------------------------
 * One migration: call + monitor + outcome
 * ------------------------------------------------------------------------- */

typedef struct _VmigVirtMigration VmigVirtMigration;

/* Called once on the main context when the migration ended. @outcome is transfer none. */
typedef void (*VmigVirtMigrationDoneFunc)(VmigVirtMigration *migration,
                                          const VmigVirtOutcome *outcome, gpointer user_data);

/**
 * vmig_virt_migration_start:
 * @dom: (transfer none): the source domain; kept referenced
 * @settings: built into the call now (errors: VMIG_VIRT_ERROR_INVALID)
 * @config: the monitor's configuration (validated)
 *
 * Runs virDomainMigrateToURI3 on a worker thread, starts the monitor and the job
 * events, and on the end reads the completed-job stats and the source state and
 * calls @done with the derived outcome on the current thread-default context.
 * Returns: (transfer full) (nullable): the migration; free after @done ran
 *   (freeing earlier does not stop libvirt's job: abort first).
 */
VmigVirtMigration *vmig_virt_migration_start(VmigVirtDomain *dom,
                                             const VmigVirtMigrateSettings *settings,
                                             const VmigVirtMonitorConfig *config,
                                             VmigVirtMigrationDoneFunc done, gpointer user_data,
                                             GError **error);

/**
 * vmig_virt_migration_resume:
 * @dom: (transfer none): the source domain, paused with reason post-copy failed
 * @settings: the ORIGINAL call's settings (libvirt wants the same flags and parameters);
 *   postcopy_resume is added here (errors: VMIG_VIRT_ERROR_INVALID, also when
 *   allow_postcopy is not set)
 * @config: the original monitor configuration; resume_postcopy is added here, so no
 *   timeout, deadline action or abort touches the resumed job
 *
 * Resumes a migration that failed after the post-copy switch (libvirt >= 8.5): the same
 * virDomainMigrateToURI3 call with VIR_MIGRATE_POSTCOPY | VIR_MIGRATE_POSTCOPY_RESUME,
 * run, watched and reported exactly like vmig_virt_migration_start() (a worker thread,
 * @done once on the current thread-default context). It needs the data path (proxy
 * channels) to the destination again; when it fails with the source still paused the
 * outcome is postcopy-failed with recoverable set, and the caller may try again later.
 * Returns: (transfer full) (nullable): the migration; free after @done ran.
 */
VmigVirtMigration *vmig_virt_migration_resume(VmigVirtDomain *dom,
                                              const VmigVirtMigrateSettings *settings,
                                              const VmigVirtMonitorConfig *config,
                                              VmigVirtMigrationDoneFunc done, gpointer user_data,
                                              GError **error);
void vmig_virt_migration_free(VmigVirtMigration *migration);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigVirtMigration, vmig_virt_migration_free)

/** vmig_virt_migration_request_abort: see vmig_virt_monitor_request_abort(). */
gboolean vmig_virt_migration_request_abort(VmigVirtMigration *migration, GError **error);

/**
 * vmig_virt_migration_get_monitor:
 * Progress samples and monitor actions reach the caller through
 * vmig_virt_monitor_set_callbacks() on this monitor (the migration's own bookkeeping
 * does not use those callbacks). Returns: (transfer none): the monitor.
 */
VmigVirtMonitor *vmig_virt_migration_get_monitor(VmigVirtMigration *migration);

G_END_DECLS
