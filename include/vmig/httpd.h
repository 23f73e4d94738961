/* vmig/httpd.h - the node agent's HTTP endpoint: /healthz, /readyz, /metrics.
 *
 * A libsoup-3.0 SoupServer on the thread-default GLib main context, the same loop that runs
 * the controller, so an answer to /healthz proves that loop turns (a blocked loop answers
 * nothing and the kubelet's liveness probe times out). /readyz asks a callback (informers
 * synced); /metrics renders a registry (vmig/metrics.h) after an optional collect callback
 * refreshed it. Bound to `--http-address` (HOST:PORT, IPv6 in brackets; port 0 = kernel
 * chosen, for tests). Plain HTTP: it carries no secrets, and the kubelet probes over HTTP.
 */
#pragma once

#include <gio/gio.h>

#include "vmig/metrics.h"

G_BEGIN_DECLS

#define VMIG_HTTPD_ERROR (vmig_httpd_error_quark())
GQuark vmig_httpd_error_quark(void);

typedef enum {
    VMIG_HTTPD_ERROR_ADDRESS, /* HOST:PORT malformed (no port, port > 65535, bad host) */
    VMIG_HTTPD_ERROR_LISTEN,  /* the address could not be bound */
} VmigHttpdError;

/* /readyz: TRUE when ready; otherwise *reason (transfer full, nullable) says why. */
typedef gboolean (*VmigHttpdReadyFunc)(gpointer user_data, char **reason);
/* /metrics: refresh values computed on demand before the registry is rendered. */
typedef void (*VmigHttpdCollectFunc)(gpointer user_data);

typedef struct {
    const char *address;          /* HOST:PORT, [V6]:PORT or :PORT (all addresses) */
    VmigMetrics *metrics;         /* (nullable): /metrics answers 404 without it */
    VmigHttpdReadyFunc ready;     /* (nullable): always ready without it */
    VmigHttpdCollectFunc collect; /* (nullable) */
    gpointer user_data;           /* for ready and collect */
} VmigHttpdConfig;

typedef struct _VmigHttpd VmigHttpd;

/**
 * vmig_httpd_parse_address:
 * @address: "127.0.0.1:8080", "[::1]:0", ":8080", "0.0.0.0:9000", "localhost:8080"
 * @host: (out) (transfer full) (nullable): the host without brackets; NULL for ":PORT"
 * @port: (out): 0..65535
 * @error: VMIG_HTTPD_ERROR_ADDRESS naming the value
 *
 * Pure parsing of `--http-address`; an IPv6 address must be in brackets (its colons would
 * otherwise be ambiguous with the port's).
 */
gboolean vmig_httpd_parse_address(const char *address, char **host, guint16 *port, GError **error);

/**
 * vmig_httpd_new:
 * @config: (transfer none): copied; metrics and user_data must outlive the server
 * @error: VMIG_HTTPD_ERROR_ADDRESS, VMIG_HTTPD_ERROR_LISTEN
 *
 * Binds and starts serving on the thread-default main context. A host name is resolved
 * (first address); an empty host listens on every address (IPv4 and IPv6).
 *
 * Returns: (transfer full) (nullable): the server.
 */
VmigHttpd *vmig_httpd_new(const VmigHttpdConfig *config, GError **error);

/* Returns: the bound TCP port (the kernel's choice when the address said 0). */
guint16 vmig_httpd_get_port(VmigHttpd *httpd);

/* Stops listening, closes connections and frees. */
void vmig_httpd_free(VmigHttpd *httpd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigHttpd, vmig_httpd_free)

G_END_DECLS
