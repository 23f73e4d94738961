/* apiserver.h - an in-memory Kubernetes API server for tests, the demo and kubectl.
 *
 * It serves the slice of kube-apiserver that vmigrated and kubectl use: discovery, a minimal
 * OpenAPI v3, list/watch with one global resourceVersion and a compaction window, create,
 * get, update, delete (finalizers, preconditions), merge and JSON patch, the status
 * subresource, label and field selectors, Table output and bearer-token authentication over
 * HTTPS. Objects are kept as json-glib nodes. Tests drive faults (cut or stall watches, 410s,
 * failed writes, tiny stream chunks) through the C functions below or over HTTP under
 * /_test/ (see docs/test-apiserver.md). It runs on the thread-default GLib main context, so
 * a C test can run it in-process next to the client under test.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define VMIG_TEST_APISERVER_ERROR (vmig_test_apiserver_error_quark())
GQuark vmig_test_apiserver_error_quark(void);

typedef enum {
    VMIG_TEST_APISERVER_ERROR_LISTEN,  /* could not bind or start TLS */
    VMIG_TEST_APISERVER_ERROR_TLS,     /* certificates could not be made or loaded */
    VMIG_TEST_APISERVER_ERROR_INVALID, /* a seeded object or file is malformed */
    VMIG_TEST_APISERVER_ERROR_IO,      /* a file could not be read or written */
} VmigTestApiserverError;

typedef struct _VmigTestApiserver VmigTestApiserver;

/* Options for vmig_test_apiserver_new(); zero-initialise and set what you need. */
typedef struct {
    const char *listen;         /* address to bind, NULL = 127.0.0.1 */
    guint port;                 /* 0 = kernel-chosen */
    const char *tls_dir;        /* CA + server cert dir (created with scripts/gen-certs
                                   when missing); NULL = plain HTTP */
    const char *token;          /* bearer token required on every request; NULL = none */
    guint compaction_window;    /* watch events retained, 0 = 10000 */
    guint bookmark_interval_ms; /* BOOKMARK period for allowWatchBookmarks, 0 = 1000 ms */
} VmigTestApiserverOptions;

/* How an expired resourceVersion is reported to the next watch. */
typedef enum {
    VMIG_TEST_APISERVER_EXPIRE_HTTP,   /* HTTP status 410 with a Status body */
    VMIG_TEST_APISERVER_EXPIRE_STREAM, /* HTTP 200, then an ERROR event with code 410 */
} VmigTestApiserverExpireShape;

/* vmig_test_apiserver_new: start listening (HTTPS when opts->tls_dir is set) on the
 * thread-default main context. Returns (transfer full) the server, or NULL with
 * VMIG_TEST_APISERVER_ERROR_LISTEN / _TLS. */
VmigTestApiserver *vmig_test_apiserver_new(const VmigTestApiserverOptions *opts, GError **error);

/* vmig_test_apiserver_free: close every watch, stop listening and free all objects. */
void vmig_test_apiserver_free(VmigTestApiserver *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigTestApiserver, vmig_test_apiserver_free)

/* vmig_test_apiserver_get_url: base URL, e.g. "https://127.0.0.1:40123" (transfer none). */
const char *vmig_test_apiserver_get_url(VmigTestApiserver *self);

/* vmig_test_apiserver_get_ca_file: path of the CA certificate clients must trust, or NULL for
 * plain HTTP (transfer none). */
const char *vmig_test_apiserver_get_ca_file(VmigTestApiserver *self);

/* vmig_test_apiserver_write_kubeconfig: write a kubeconfig (server, certificate-authority,
 * token, context "vmig-test", namespace "default") that kubectl and vmigrated accept.
 * Returns FALSE with VMIG_TEST_APISERVER_ERROR_IO. */
gboolean vmig_test_apiserver_write_kubeconfig(VmigTestApiserver *self, const char *path,
                                              GError **error);

/* vmig_test_apiserver_put_object: store @object (a full Kubernetes object with apiVersion,
 * kind, metadata.name) as a seed: created or replaced, status kept, uid/resourceVersion/
 * creationTimestamp filled in, ADDED or MODIFIED delivered to watches. @object is not taken
 * (transfer none). Returns the new resourceVersion, or 0 with
 * VMIG_TEST_APISERVER_ERROR_INVALID naming the field. */
guint64 vmig_test_apiserver_put_object(VmigTestApiserver *self, JsonNode *object, GError **error);

/* vmig_test_apiserver_load_file: seed every object of a JSON or YAML file (several YAML
 * documents, or a List with items). Returns FALSE with _IO or _INVALID naming the file. */
gboolean vmig_test_apiserver_load_file(VmigTestApiserver *self, const char *path, GError **error);

/* vmig_test_apiserver_get_object: the stored object @resource (plural, e.g.
 * "virtualmachineinstances") @namespace (NULL for cluster-scoped) / @name, or NULL.
 * Returns (transfer full) a copy. */
JsonNode *vmig_test_apiserver_get_object(VmigTestApiserver *self, const char *resource,
                                         const char *namespace_, const char *name);

/* vmig_test_apiserver_get_resource_version: the current global resourceVersion. */
guint64 vmig_test_apiserver_get_resource_version(VmigTestApiserver *self);

/* --- fault injection (also reachable as POST /_test/faults) --- */

/* vmig_test_apiserver_cut_watches: end every open watch of @resource (NULL = all). @abort
 * TRUE drops the connection without the final chunk; FALSE ends the response cleanly. */
void vmig_test_apiserver_cut_watches(VmigTestApiserver *self, const char *resource, gboolean abort);

/* vmig_test_apiserver_stall_watches: open watches of @resource (NULL = all) stop sending
 * anything (events, bookmarks, timeout end) but stay connected; @next_count more watches
 * opened later stall from their start. */
void vmig_test_apiserver_stall_watches(VmigTestApiserver *self, const char *resource,
                                       guint next_count);

/* vmig_test_apiserver_expire_next_watch: the next @count watches (any resourceVersion) are
 * answered with 410 Expired in @shape. */
void vmig_test_apiserver_expire_next_watch(VmigTestApiserver *self,
                                           VmigTestApiserverExpireShape shape, guint count);

/* vmig_test_apiserver_fail_next_writes: the next @count writes matching @verb ("create",
 * "update", "patch", "delete"; NULL = any), @resource (plural, "x/status" for the
 * subresource; NULL = any) and @name (NULL = any) fail with HTTP @code (409 Conflict or 500
 * InternalError Status) without changing anything. */
void vmig_test_apiserver_fail_next_writes(VmigTestApiserver *self, guint count, guint code,
                                          const char *verb, const char *resource, const char *name);

/* vmig_test_apiserver_split_writes: watch stream bytes are sent in chunks of @min..@max
 * bytes (random); 0 restores whole events. */
void vmig_test_apiserver_split_writes(VmigTestApiserver *self, guint min, guint max);

/* vmig_test_apiserver_compact: drop every retained watch event, so a watch from any older
 * resourceVersion gets 410. */
void vmig_test_apiserver_compact(VmigTestApiserver *self);

/* vmig_test_apiserver_send_bookmarks: send a BOOKMARK now on every watch that asked for
 * them. */
void vmig_test_apiserver_send_bookmarks(VmigTestApiserver *self);

/* vmig_test_apiserver_count_requests: requests served with @verb ("get", "list", "watch",
 * "create", "update", "patch", "delete", "deletecollection"; NULL = any) on @resource
 * (plural or "plural/status"; NULL = any) since start or the last reset. */
guint vmig_test_apiserver_count_requests(VmigTestApiserver *self, const char *verb,
                                         const char *resource);

/* vmig_test_apiserver_get_recent_requests: the last requests (at most 1000, oldest first) as
 * "METHOD /path?query" strings. Returns (transfer full) a NULL-terminated vector. */
char **vmig_test_apiserver_get_recent_requests(VmigTestApiserver *self);

/* vmig_test_apiserver_count_open_watches: watches currently connected. */
guint vmig_test_apiserver_count_open_watches(VmigTestApiserver *self);

/* vmig_test_apiserver_reset: clear every pending fault, counter and the request log. */
void vmig_test_apiserver_reset(VmigTestApiserver *self);

G_END_DECLS
