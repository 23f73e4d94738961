/* apiserver-proc.h - the in-memory API server (tests/apiserver) as a child process, for
 * tests that run vmigrated, vmigratectl or kubectl against it. Plain HTTP on a kernel-chosen
 * loopback port. */
#pragma once

#include <gio/gio.h>

typedef struct {
    GSubprocess *proc;
    char *dir;        /* private temporary directory (kubeconfig, ready file, seeds) */
    char *kubeconfig; /* dir/kubeconfig */
    char *url;        /* http://127.0.0.1:PORT */
} ApiserverProc;

/* Starts vmig-test-apiserver seeded with @seed_json (a JSON List or object; NULL = empty)
 * and waits until it listens. Aborts the test on failure. */
ApiserverProc *apiserver_proc_start(const char *seed_json);

/* Sends @json (an object; a merge patch for PATCH) with @method to @path (e.g.
 * /apis/kubevirt.io/v1/namespaces/ns1/...); Returns the HTTP status; *body (transfer full,
 * nullable) the answer. Runs the calling thread's default main context until done. */
guint apiserver_proc_request(ApiserverProc *a, const char *method, const char *path,
                             const char *json, char **body);

/* Stops the server (SIGTERM), removes the directory and frees. */
void apiserver_proc_stop(ApiserverProc *a);
