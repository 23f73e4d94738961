/* virt-migrate-tool.c - drives ONE real migration through the virt module, for
 * the e2e tests: opens the source node's libvirt, looks the VMI's domain up by
 * KubeVirt's name, takes the migratable XML as destination_xml, runs
 * vmig_virt_migration_start() on a GLib main loop and prints the outcome:
 *
 *   OUTCOME kind=succeeded reason="" downtime_ms=.. elapsed_ms=.. data_processed=..
 *           data_total=.. iterations=.. postcopy=0 paused=0 polls=.. samples=.. detail="..."
 *
 * Exit status 0 when the outcome is the one given with --expect (default succeeded).
 * Test helper only: the daemon wires the module itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmig/log.h"
#include "vmig/virt.h"

static char *opt_src_uri, *opt_ns = "e2e", *opt_name = "vm1", *opt_dconnuri, *opt_migrate_uri;
static char *opt_on_postcopy_cmd;
static char *opt_action = "abort", *opt_expect = "succeeded", *opt_reason;
static gint64 opt_bandwidth, opt_progress_s = 150, opt_per_gib_s = 150, opt_abort_after_ms = -1;
static gint64 opt_poll_ms = 200, opt_speed_after_ms = -1, opt_speed_mibps;
static gboolean opt_postcopy, opt_auto_converge, opt_abort_on_postcopy, opt_check_resume;

static GOptionEntry entries[] = {
    {"src-uri", 0, 0, G_OPTION_ARG_STRING, &opt_src_uri, "source libvirt URI", "URI"},
    {"namespace", 0, 0, G_OPTION_ARG_STRING, &opt_ns, "VMI namespace (domain <ns>_<name>)", "NS"},
    {"name", 0, 0, G_OPTION_ARG_STRING, &opt_name, "VMI name", "NAME"},
    {"dconnuri", 0, 0, G_OPTION_ARG_STRING, &opt_dconnuri, "destination libvirt URI", "URI"},
    {"migrate-uri", 0, 0, G_OPTION_ARG_STRING, &opt_migrate_uri, "migration data URI", "URI"},
    {"bandwidth", 0, 0, G_OPTION_ARG_INT64, &opt_bandwidth, "MiB/s, 0 = unlimited", "N"},
    {"progress-timeout", 0, 0, G_OPTION_ARG_INT64, &opt_progress_s, "s, 0 = off", "S"},
    {"completion-per-gib", 0, 0, G_OPTION_ARG_INT64, &opt_per_gib_s, "s per GiB, 0 = off", "S"},
    {"timeout-action", 0, 0, G_OPTION_ARG_STRING, &opt_action, "abort|postcopy|pause", "A"},
    {"postcopy", 0, 0, G_OPTION_ARG_NONE, &opt_postcopy, "allow post-copy", NULL},
    {"auto-converge", 0, 0, G_OPTION_ARG_NONE, &opt_auto_converge, "auto-converge", NULL},
    {"poll-ms", 0, 0, G_OPTION_ARG_INT64, &opt_poll_ms, "GetJobStats period", "MS"},
    {"abort-after-ms", 0, 0, G_OPTION_ARG_INT64, &opt_abort_after_ms, "user abort after MS", "MS"},
    {"abort-on-postcopy", 0, 0, G_OPTION_ARG_NONE, &opt_abort_on_postcopy,
     "request an abort right after the post-copy switch (must be refused)", NULL},
    {"on-postcopy-cmd", 0, 0, G_OPTION_ARG_STRING, &opt_on_postcopy_cmd,
     "run this shell command right after the post-copy switch (e.g. break the link)", "CMD"},
    {"check-resume-refused", 0, 0, G_OPTION_ARG_NONE, &opt_check_resume,
     "after the end, try vmig_virt_domain_resume on the source and print the answer", NULL},
    {"speed-after-ms", 0, 0, G_OPTION_ARG_INT64, &opt_speed_after_ms,
     "set max speed (--speed) after MS", "MS"},
    {"speed", 0, 0, G_OPTION_ARG_INT64, &opt_speed_mibps, "MiB/s for --speed-after-ms", "N"},
    {"expect", 0, 0, G_OPTION_ARG_STRING, &opt_expect, "expected outcome kind", "KIND"},
    {"expect-reason", 0, 0, G_OPTION_ARG_STRING, &opt_reason, "expected reason", "TEXT"},
    {NULL},
};

typedef struct {
    GMainLoop *loop;
    VmigVirtMigration *migration;
    VmigVirtDomain *dom;
    int status;
    guint samples;
    guint64 max_processed;
} Run;

static void
on_progress(VmigVirtMonitor *mon, const VmigVirtJobStats *s, gpointer user_data)
{
    Run *r = user_data;
    r->samples++;
    r->max_processed = MAX(r->max_processed, vmig_virt_job_stats_processed(s));
}

static void
on_done(VmigVirtMigration *m, const VmigVirtOutcome *o, gpointer user_data)
{
    Run *r = user_data;
    printf("OUTCOME kind=%s reason=\"%s\" downtime_ms=%" G_GUINT64_FORMAT
           " elapsed_ms=%" G_GUINT64_FORMAT " data_processed=%" G_GUINT64_FORMAT
           " data_total=%" G_GUINT64_FORMAT " iterations=%" G_GUINT64_FORMAT
           " mem_bps=%" G_GUINT64_FORMAT " postcopy=%d paused=%d has_stats=%d event=%d polls=%u"
           " samples=%u detail=\"%s\"\n",
           vmig_virt_outcome_kind_to_string(o->kind), o->reason, o->downtime_ms, o->time_elapsed_ms,
           o->data_processed, o->data_total, o->iterations, o->mem_bps, o->postcopy_used,
           o->paused_to_complete, o->has_stats, o->completed_event,
           vmig_virt_monitor_poll_count(vmig_virt_migration_get_monitor(m)), r->samples,
           o->detail ? o->detail : "");
    fflush(stdout);
    if (opt_check_resume) {
        /* the daemon never does this; the test proves the driver refuses it */
        g_autoptr(GError) error = NULL;
        if (vmig_virt_domain_resume(r->dom, &error))
            printf("RESUMED\n");
        else
            printf("RESUME_REFUSED state=%d message=\"%s\"\n",
                   g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_STATE), error->message);
        fflush(stdout);
    }
    gboolean ok = g_strcmp0(vmig_virt_outcome_kind_to_string(o->kind), opt_expect) == 0 &&
                  (!opt_reason || g_strcmp0(o->reason, opt_reason) == 0);
    r->status = ok ? 0 : 1;
    g_main_loop_quit(r->loop);
}

static gboolean
abort_now(gpointer user_data)
{
    Run *r = user_data;
    g_autoptr(GError) error = NULL;
    if (vmig_virt_migration_request_abort(r->migration, &error))
        printf("ABORT requested\n");
    else
        printf("ABORT_REFUSED postcopy=%d message=\"%s\"\n",
               g_error_matches(error, VMIG_VIRT_ERROR, VMIG_VIRT_ERROR_POSTCOPY), error->message);
    fflush(stdout);
    return G_SOURCE_REMOVE;
}

static void
on_action(VmigVirtMonitor *mon, const VmigVirtAction *a, gboolean ok, const char *err,
          gpointer user_data)
{
    printf("ACTION %s ok=%d%s%s\n", vmig_virt_action_kind_to_string(a->kind), ok, err ? " " : "",
           err ? err : "");
    fflush(stdout);
    if (ok && a->kind == VMIG_VIRT_ACTION_START_POSTCOPY && opt_on_postcopy_cmd) {
        g_autoptr(GError) error = NULL;
        char *argv[] = {"/bin/sh", "-c", opt_on_postcopy_cmd, NULL};
        if (!g_spawn_async(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, &error))
            g_warning("--on-postcopy-cmd: %s", error->message);
    }
    if (opt_abort_on_postcopy && ok && a->kind == VMIG_VIRT_ACTION_START_POSTCOPY)
        abort_now(user_data);
}

static gboolean
do_abort(gpointer user_data)
{
    Run *r = user_data;
    return abort_now(r);
}

static gpointer
speed_thread(gpointer data)
{
    Run *r = data;
    g_autoptr(GError) error = NULL;
    if (!vmig_virt_domain_set_max_speed(r->dom, (guint64)opt_speed_mibps, &error))
        g_warning("set max speed: %s", error->message);
    else
        g_message("max speed set to %" G_GINT64_FORMAT " MiB/s", opt_speed_mibps);
    return NULL;
}

static gboolean
do_speed(gpointer user_data)
{
    g_thread_unref(g_thread_new("speed", speed_thread, user_data));
    return G_SOURCE_REMOVE;
}

int
main(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new("- one migration through vmig virt");
    g_autoptr(GError) error = NULL;
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "%s\n", error->message);
        return 2;
    }
    vmig_log_setup(VMIG_LOG_FORMAT_TEXT, FALSE);

    VmigVirtMonitorConfig config;
    vmig_virt_monitor_config_init(&config);
    config.poll_interval_ms = (guint)opt_poll_ms;
    config.progress_timeout_s = (guint)opt_progress_s;
    config.completion_timeout_per_gib_s = (guint)opt_per_gib_s;
    config.allow_postcopy = opt_postcopy;
    if (!vmig_virt_timeout_action_from_string(opt_action, &config.timeout_action)) {
        fprintf(stderr, "--timeout-action: unknown \"%s\"\n", opt_action);
        return 2;
    }
    if (!vmig_virt_event_loop_start(&error)) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    g_autoptr(VmigVirtConn) conn = vmig_virt_conn_open(opt_src_uri, &error);
    if (!conn) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    g_autoptr(VmigVirtDomain) dom = vmig_virt_domain_lookup(conn, opt_ns, opt_name, &error);
    if (!dom) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    g_autofree char *xml = vmig_virt_domain_migratable_xml(dom, &error);
    if (!xml) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    VmigVirtMigrateSettings settings = {
        .dconnuri = opt_dconnuri,
        .migrate_uri = opt_migrate_uri,
        .destination_xml = xml,
        .auto_converge = opt_auto_converge,
        .allow_postcopy = opt_postcopy,
        .bandwidth_mibps = (guint64)opt_bandwidth,
    };
    Run r = {.loop = g_main_loop_new(NULL, FALSE), .status = 1, .dom = dom};
    r.migration = vmig_virt_migration_start(dom, &settings, &config, on_done, &r, &error);
    if (!r.migration) {
        fprintf(stderr, "%s\n", error->message);
        g_main_loop_unref(r.loop);
        return 1;
    }
    vmig_virt_monitor_set_callbacks(vmig_virt_migration_get_monitor(r.migration), on_progress,
                                    on_action, &r);
    if (opt_abort_after_ms >= 0)
        g_timeout_add((guint)opt_abort_after_ms, do_abort, &r);
    if (opt_speed_after_ms >= 0)
        g_timeout_add((guint)opt_speed_after_ms, do_speed, &r);
    g_main_loop_run(r.loop);
    vmig_virt_migration_free(r.migration);
    g_main_loop_unref(r.loop);
    return r.status;
}
