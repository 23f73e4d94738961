/* ctl-migrate.c - `vmigratectl migrate -n NS VMI [--wait]` posts a VMIM and follows it;
 * `vmigratectl cancel -n NS VMIM [--wait]` deletes one.
 *
 * Progress comes from the VMIM's annotation vmigrated.kubevirt.io/progress (JSON written by
 * the source node's vmigrated: processedBytes, remainingBytes, totalBytes,
 * dirtyRateBytesPerSecond, transferRateBytesPerSecond, iteration, mode, elapsedMs,
 * downtimeMs) and status.phase. On a terminal the line is redrawn in place; otherwise one
 * line is printed per change, for logs and scripts. Exit status: 0 Succeeded (or deleted),
 * 1 Failed (failureReason on stderr), timeout or API error, 2 usage. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "vmig/kube.h"
#include "vmig/model.h"

#define CTL_MIGRATE_POLL_MS   500
#define CTL_MIGRATE_ANN       "vmigrated.kubevirt.io/progress"
#define CTL_MIGRATE_BAR_WIDTH 20

typedef struct {
    char *namespace;
    char *kubeconfig;
    gboolean wait;
    gint timeout_s;
} CtlMigrateOptions;

static void
ctl_migrate_options_clear(CtlMigrateOptions *o)
{
    g_free(o->namespace);
    g_free(o->kubeconfig);
}

/* Parses options and makes the client; returns 2 on bad usage (message printed), else 0. */
static int
ctl_migrate_parse(const char *verb, const char *what, int *argc, char ***argv, CtlMigrateOptions *o,
                  VmigKubeClient **client)
{
    GOptionEntry entries[] = {
        {"namespace", 'n', 0, G_OPTION_ARG_STRING, &o->namespace,
         "namespace (default: the kubeconfig context's)", "NS"},
        {"wait", 'w', 0, G_OPTION_ARG_NONE, &o->wait,
         verb[0] == 'm' ? "follow the migration until it ends (progress on a terminal)"
                        : "wait until the VMIM is gone",
         NULL},
        {"timeout", 0, 0, G_OPTION_ARG_INT, &o->timeout_s, "with --wait: give up after SECONDS",
         "SECONDS"},
        {"kubeconfig", 0, 0, G_OPTION_ARG_FILENAME, &o->kubeconfig,
         "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)", "FILE"},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(what);
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) err = NULL;
    if (!g_option_context_parse(ctx, argc, argv, &err)) {
        fprintf(stderr, "vmigratectl %s: %s\n", verb, err->message);
        return 2;
    }
    if (*argc != 2) {
        fprintf(stderr, "vmigratectl %s: exactly one %s expected\n", verb,
                verb[0] == 'm' ? "VMI name" : "VMIM name");
        return 2;
    }
    if (o->timeout_s < 0) {
        fprintf(stderr, "vmigratectl %s: --timeout %d: not a number of seconds >= 0\n", verb,
                o->timeout_s);
        return 2;
    }
    if (!vmig_model_validate_name((*argv)[1], verb[0] == 'm' ? "VMI" : "VMIM", &err) ||
        (o->namespace && !vmig_model_validate_namespace(o->namespace, "--namespace", &err))) {
        fprintf(stderr, "vmigratectl %s: %s\n", verb, err->message);
        return 2;
    }
    g_autoptr(VmigKubeConfig) cfg = vmig_kube_config_load(o->kubeconfig, &err);
    if (cfg)
        *client = vmig_kube_client_new(cfg, &err);
    if (!cfg || !*client) {
        fprintf(stderr, "vmigratectl %s: %s\n", verb, err->message);
        return 2;
    }
    if (!o->namespace)
        o->namespace = g_strdup(vmig_kube_client_get_namespace(*client));
    return 0;
}

static const char *
ctl_json_str(JsonNode *obj, const char *path)
{
    JsonNode *n = vmig_model_json_get(obj, path);
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
               ? json_node_get_string(n)
               : NULL;
}

/* The figures of the progress annotation (zero when absent or malformed). */
typedef struct {
    double processed, remaining, total, dirty_bps, transfer_bps;
    gint64 iteration, elapsed_ms;
    char mode[16];
} CtlProgress;

static gboolean
ctl_progress_parse(const char *json, CtlProgress *p)
{
    memset(p, 0, sizeof *p);
    g_autoptr(JsonParser) parser = json_parser_new();
    if (!json || !json_parser_load_from_data(parser, json, -1, NULL))
        return FALSE;
    JsonNode *root = json_parser_get_root(parser);
    if (!JSON_NODE_HOLDS_OBJECT(root))
        return FALSE;
    JsonObject *o = json_node_get_object(root);
#define NUM(k) (json_object_has_member(o, k) ? json_object_get_double_member(o, k) : 0)
    p->processed = NUM("processedBytes");
    p->remaining = NUM("remainingBytes");
    p->total = NUM("totalBytes");
    p->dirty_bps = NUM("dirtyRateBytesPerSecond");
    p->transfer_bps = NUM("transferRateBytesPerSecond");
    p->iteration = (gint64)NUM("iteration");
    p->elapsed_ms = (gint64)NUM("elapsedMs");
#undef NUM
    const char *mode =
        json_object_has_member(o, "mode") ? json_object_get_string_member(o, "mode") : NULL;
    g_strlcpy(p->mode, mode ? mode : "", sizeof p->mode);
    return TRUE;
}

/* "1:05", "12:00:03", or "-" when it cannot be estimated. */
static char *
ctl_eta(const CtlProgress *p)
{
    /* remaining bytes drain at the transfer rate minus what the guest dirties meanwhile */
    double net = p->transfer_bps - p->dirty_bps;
    if (p->remaining <= 0 || p->transfer_bps <= 0 || net <= p->transfer_bps * 0.05)
        return g_strdup(p->remaining <= 0 && p->transfer_bps > 0 ? "0:00" : "-");
    guint64 s = (guint64)ceil(p->remaining / net);
    if (s >= 3600)
        return g_strdup_printf("%" G_GUINT64_FORMAT ":%02u:%02u", s / 3600, (guint)(s / 60 % 60),
                               (guint)(s % 60));
    return g_strdup_printf("%u:%02u", (guint)(s / 60), (guint)(s % 60));
}

static char *
ctl_progress_line(const char *phase, const CtlProgress *p, gboolean have, gboolean tty)
{
    const double mib = 1048576.0;
    if (!have)
        return g_strdup_printf("%s%s", tty ? "" : "phase=", phase);
    g_autofree char *eta = ctl_eta(p);
    if (!tty)
        return g_strdup_printf(
            "phase=%s mode=%s moved=%.1fMiB remaining=%.1fMiB "
            "dirty=%.1fMiB/s rate=%.1fMiB/s iteration=%" G_GINT64_FORMAT " eta=%s",
            phase, p->mode[0] ? p->mode : "-", p->processed / mib, p->remaining / mib,
            p->dirty_bps / mib, p->transfer_bps / mib, p->iteration, eta);
    double frac = p->total > 0 ? CLAMP(1.0 - p->remaining / p->total, 0.0, 1.0) : 0.0;
    int filled = (int)(frac * CTL_MIGRATE_BAR_WIDTH + 0.5);
    char bar[CTL_MIGRATE_BAR_WIDTH + 1];
    for (int i = 0; i < CTL_MIGRATE_BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[CTL_MIGRATE_BAR_WIDTH] = '\0';
    return g_strdup_printf("[%s] %3.0f%% %-10s %8.1f MiB moved %8.1f MiB left  dirty %6.1f "
                           "MiB/s  ETA %s",
                           bar, frac * 100, phase, p->processed / mib, p->remaining / mib,
                           p->dirty_bps / mib, eta);
}

static gboolean
ctl_sleep_cb(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

static void
ctl_sleep(guint ms)
{
    gboolean done = FALSE;
    g_timeout_add(ms, ctl_sleep_cb, &done);
    vmig_kube_wait(&done, ms + 1000);
}

static JsonNode *
ctl_get_vmim(VmigKubeClient *client, const char *ns, const char *name, GError **error)
{
    VmigKubeRequest req = {
        .resource = vmig_kube_resource(VMIG_KUBE_VMIM),
        .namespace = ns,
        .name = name,
    };
    return vmig_kube_call_sync(client, VMIG_KUBE_VERB_GET, &req, NULL, error);
}

/* Follows VMIM @ns/@name until a final phase; returns the exit status. */
static int
ctl_migrate_follow(VmigKubeClient *client, const char *ns, const char *name, gint timeout_s)
{
    gboolean tty = isatty(STDOUT_FILENO);
    gint64 deadline = timeout_s > 0 ? g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC : 0;
    g_autofree char *last = NULL;
    guint api_failures = 0;
    while (TRUE) {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonNode) vmim = ctl_get_vmim(client, ns, name, &err);
        if (!vmim) {
            if (g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_NOT_FOUND)) {
                fprintf(stderr, "%svmigratectl migrate: VMIM %s/%s was deleted before it ended\n",
                        tty && last ? "\n" : "", ns, name);
                return 1;
            }
            /* a blip of the API server is not the migration's end */
            if (++api_failures >= 10) {
                fprintf(stderr, "%svmigratectl migrate: %s\n", tty && last ? "\n" : "",
                        err->message);
                return 1;
            }
        } else {
            api_failures = 0;
            const char *phase = ctl_json_str(vmim, "status.phase");
            phase = phase && *phase ? phase : "(new)";
            CtlProgress p;
            JsonNode *ann = vmig_model_json_get(vmim, "metadata.annotations");
            const char *pj =
                ann && JSON_NODE_HOLDS_OBJECT(ann) &&
                        json_object_has_member(json_node_get_object(ann), CTL_MIGRATE_ANN)
                    ? json_object_get_string_member(json_node_get_object(ann), CTL_MIGRATE_ANN)
                    : NULL;
            gboolean have = ctl_progress_parse(pj, &p);
            g_autofree char *line = ctl_progress_line(phase, &p, have, tty);
            if (g_strcmp0(line, last) != 0) {
                if (tty)
                    printf("\r%s\033[K", line);
                else
                    printf("%s\n", line);
                fflush(stdout);
                g_free(last);
                last = g_steal_pointer(&line);
            }
            gboolean ok = g_strcmp0(phase, "Succeeded") == 0;
            if (ok || g_strcmp0(phase, "Failed") == 0) {
                if (tty)
                    printf("\n");
                const char *why = ctl_json_str(vmim, "status.migrationState.failureReason");
                if (ok)
                    printf("VMIM %s/%s Succeeded", ns, name);
                else
                    fprintf(stderr, "VMIM %s/%s Failed: %s\n", ns, name,
                            why ? why : "(no failureReason)");
                if (ok && have)
                    printf(" (%.1f MiB moved in %.1f s)", p.processed / 1048576.0,
                           p.elapsed_ms / 1000.0);
                if (ok)
                    printf("\n");
                return ok ? 0 : 1;
            }
        }
        if (deadline && g_get_monotonic_time() >= deadline) {
            fprintf(stderr, "%svmigratectl migrate: VMIM %s/%s not finished after %d s\n",
                    tty && last ? "\n" : "", ns, name, timeout_s);
            return 1;
        }
        ctl_sleep(CTL_MIGRATE_POLL_MS);
    }
}

int
vmig_ctl_migrate(int argc, char **argv)
{
    CtlMigrateOptions o = {0};
    g_autoptr(VmigKubeClient) client = NULL;
    int rc = ctl_migrate_parse("migrate", "VMI - live-migrate a VMI (post a VMIM)", &argc, &argv,
                               &o, &client);
    if (rc) {
        ctl_migrate_options_clear(&o);
        return rc;
    }
    const char *vmi = argv[1];
    g_autofree char *generate = g_strdup_printf("%s-migration-", vmi);
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "apiVersion");
    json_builder_add_string_value(b, "kubevirt.io/v1");
    json_builder_set_member_name(b, "kind");
    json_builder_add_string_value(b, "VirtualMachineInstanceMigration");
    json_builder_set_member_name(b, "metadata");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "generateName");
    json_builder_add_string_value(b, generate);
    json_builder_set_member_name(b, "namespace");
    json_builder_add_string_value(b, o.namespace);
    json_builder_end_object(b);
    json_builder_set_member_name(b, "spec");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "vmiName");
    json_builder_add_string_value(b, vmi);
    json_builder_end_object(b);
    json_builder_end_object(b);
    g_autoptr(JsonNode) body = json_builder_get_root(b);
    VmigKubeRequest req = {
        .resource = vmig_kube_resource(VMIG_KUBE_VMIM),
        .namespace = o.namespace,
        .body = body,
    };
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) created =
        vmig_kube_call_sync(client, VMIG_KUBE_VERB_CREATE, &req, NULL, &err);
    if (!created) {
        fprintf(stderr, "vmigratectl migrate: VMI %s/%s: %s\n", o.namespace, vmi, err->message);
        ctl_migrate_options_clear(&o);
        return 1;
    }
    g_autofree char *name = g_strdup(vmig_kube_meta_string(created, "name"));
    printf("virtualmachineinstancemigration %s/%s created\n", o.namespace, name);
    fflush(stdout);
    rc = o.wait ? ctl_migrate_follow(client, o.namespace, name, o.timeout_s) : 0;
    ctl_migrate_options_clear(&o);
    return rc;
}

int
vmig_ctl_cancel(int argc, char **argv)
{
    CtlMigrateOptions o = {0};
    g_autoptr(VmigKubeClient) client = NULL;
    int rc = ctl_migrate_parse("cancel", "VMIM - cancel a migration (delete its VMIM)", &argc,
                               &argv, &o, &client);
    if (rc) {
        ctl_migrate_options_clear(&o);
        return rc;
    }
    const char *name = argv[1];
    VmigKubeRequest req = {
        .resource = vmig_kube_resource(VMIG_KUBE_VMIM),
        .namespace = o.namespace,
        .name = name,
    };
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) out = vmig_kube_call_sync(client, VMIG_KUBE_VERB_DELETE, &req, NULL, &err);
    if (!out) {
        fprintf(stderr, "vmigratectl cancel: %s\n", err->message);
        ctl_migrate_options_clear(&o);
        return 1;
    }
    printf("virtualmachineinstancemigration %s/%s deleted\n", o.namespace, name);
    fflush(stdout);
    /* the VMIM stays while its finalizer is held: the source aborts the migration first */
    gint64 deadline = o.timeout_s > 0 ? g_get_monotonic_time() + o.timeout_s * G_USEC_PER_SEC : 0;
    while (o.wait) {
        g_clear_error(&err);
        g_autoptr(JsonNode) left = ctl_get_vmim(client, o.namespace, name, &err);
        if (!left && g_error_matches(err, VMIG_KUBE_ERROR, VMIG_KUBE_ERROR_NOT_FOUND)) {
            printf("virtualmachineinstancemigration %s/%s gone\n", o.namespace, name);
            break;
        }
        if (deadline && g_get_monotonic_time() >= deadline) {
            const char *phase = left ? ctl_json_str(left, "status.phase") : NULL;
            fprintf(stderr, "vmigratectl cancel: VMIM %s/%s still there after %d s (phase %s)\n",
                    o.namespace, name, o.timeout_s, phase && *phase ? phase : "-");
            rc = 1;
            break;
        }
        ctl_sleep(CTL_MIGRATE_POLL_MS);
    }
    ctl_migrate_options_clear(&o);
    return rc;
}
