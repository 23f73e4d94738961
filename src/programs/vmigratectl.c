/* vmigratectl - command-line companion of vmigrated: dispatch to a subcommand. */
#include <glib.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "vmig/log.h"

int
vmig_ctl_version(int argc, char **argv)
{
    printf("vmigratectl %s\n", VMIG_VERSION);
    return 0;
}

/* One row per subcommand; add a row when adding ctl-<name>.c. */
static const VmigCtlCommand vmig_ctl_commands[] = {
    {"version", "print the version", vmig_ctl_version},
    {"check", "is a VMI live-migratable? verdict, method, reasons, configuration", vmig_ctl_check},
    {"get", "list objects: one line per object (kind, ns/name, resourceVersion, phase)",
     vmig_ctl_get},
    {"watch", "watch objects: one line per event (type, ns/name, resourceVersion, phase)",
     vmig_ctl_watch},
    {"migrate", "live-migrate a VMI (post a VMIM); --wait shows progress", vmig_ctl_migrate},
    {"cancel", "cancel a migration (delete its VMIM)", vmig_ctl_cancel},
    {"proxy", "run one side of the migration-data proxy", vmig_ctl_proxy},
};

static void
vmig_ctl_usage(FILE *out)
{
    fprintf(out, "usage: vmigratectl COMMAND [OPTIONS...]\n\ncommands:\n");
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_ctl_commands); i++)
        fprintf(out, "  %-10s %s\n", vmig_ctl_commands[i].name, vmig_ctl_commands[i].summary);
    fprintf(out, "\n'vmigratectl COMMAND --help' describes a command's options.\n");
}

int
main(int argc, char **argv)
{
    setlocale(LC_ALL, ""); /* GLib's messages (quotes, file names) in the user's charset */
    vmig_log_setup(VMIG_LOG_FORMAT_TEXT, g_getenv("VMIG_DEBUG") != NULL);
    if (argc < 2) {
        vmig_ctl_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        vmig_ctl_usage(stdout);
        return 0;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(vmig_ctl_commands); i++) {
        if (strcmp(argv[1], vmig_ctl_commands[i].name) == 0)
            return vmig_ctl_commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "vmigratectl: unknown command '%s'\n", argv[1]);
    vmig_ctl_usage(stderr);
    return 2;
}
