/* ctl.h - vmigratectl subcommands. Each lives in ctl-<name>.c, parses its own
 * options (GOption) and calls library modules; vmigratectl.c only dispatches.
 * Exit status convention: 0 success, 1 the operation said no / failed,
 * 2 bad usage or bad input (the file and field are named on stderr). */
#pragma once

typedef int (*VmigCtlCommandFunc)(int argc, char **argv);

typedef struct {
    const char *name;
    const char *summary;
    VmigCtlCommandFunc run;
} VmigCtlCommand;

/* Subcommand entry points (argv[0] is the subcommand name). */
int vmig_ctl_version(int argc, char **argv);
int vmig_ctl_check(int argc, char **argv);
int vmig_ctl_get(int argc, char **argv);
int vmig_ctl_watch(int argc, char **argv);
int vmig_ctl_proxy(int argc, char **argv);
int vmig_ctl_migrate(int argc, char **argv);
int vmig_ctl_cancel(int argc, char **argv);
