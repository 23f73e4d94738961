/* vmig/kube.h - the Kubernetes API client every other module talks to the cluster through.
 *
 * It is the first stage of the data flow: configuration (kubeconfig or in-cluster service
 * account), an asynchronous HTTP transport (libcurl's multi interface driven by the GLib main
 * loop, HTTP/2 when the server offers it, connection reuse, TCP keepalive), the REST verbs on
 * group/version/resource paths (main resource and `/status`), a pure watch-stream decoder, an
 * informer (list + watch into a cache, with client-go's resourceVersion bookkeeping: bookmarks,
 * exactly one relist on 410 Expired, resume without relist on a clean close, a read deadline,
 * backoff with jitter), a conflict-retrying status-write helper that re-reads the live object,
 * and a core/v1 Event recorder that aggregates repeats. Objects are json-glib object nodes.
 * Nothing here blocks the main loop; the *_sync wrappers iterate the thread-default main
 * context and are meant for tests and the CLI. See docs/kube.md for retries and defaults.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */

#define VMIG_KUBE_ERROR (vmig_kube_error_quark())
GQuark vmig_kube_error_quark(void);

/* Error codes; HTTP answers map by status class (see vmig_kube_error_code_from_http()). */
typedef enum {
    VMIG_KUBE_ERROR_CONFIG,       /* kubeconfig / in-cluster configuration unusable */
    VMIG_KUBE_ERROR_TRANSPORT,    /* connect, TLS, reset, read deadline (no HTTP answer) */
    VMIG_KUBE_ERROR_BAD_REQUEST,  /* 400 */
    VMIG_KUBE_ERROR_UNAUTHORIZED, /* 401 (after one token re-read) */
    VMIG_KUBE_ERROR_FORBIDDEN,    /* 403 */
    VMIG_KUBE_ERROR_NOT_FOUND,    /* 404 */
    VMIG_KUBE_ERROR_CONFLICT,     /* 409: stale resourceVersion or already exists */
    VMIG_KUBE_ERROR_GONE,         /* 410 Gone / Expired resourceVersion */
    VMIG_KUBE_ERROR_INVALID,      /* 422 (also a failed JSON-patch `test`) */
    VMIG_KUBE_ERROR_TOO_MANY,     /* 429 */
    VMIG_KUBE_ERROR_SERVER,       /* 5xx and any other unexpected status */
    VMIG_KUBE_ERROR_DECODE,       /* a body or watch event that is not the JSON we expect */
    VMIG_KUBE_ERROR_TOO_LARGE,    /* a watch event above the decoder's limit */
    VMIG_KUBE_ERROR_REFUSED,      /* a status-write mutation declined to change the object */
    VMIG_KUBE_ERROR_CANCELLED,    /* the caller's GCancellable fired */
} VmigKubeErrorCode;

/**
 * vmig_kube_error_code_from_http:
 * @http_status: an HTTP status code (>= 300)
 *
 * Returns: the error code for that status (404 -> NOT_FOUND, 409 -> CONFLICT, 410 -> GONE, ...).
 */
VmigKubeErrorCode vmig_kube_error_code_from_http(guint http_status);

/* ------------------------------------------------------------------------------------------ */
/* Resources                                                                                  */

/* A REST resource: where its objects live. Rows of the built-in table are static. */
typedef struct {
    const char *group;     /* "" for the core group */
    const char *version;   /* "v1", "v1alpha1", ... */
    const char *resource;  /* plural, lower case: "virtualmachineinstances" */
    const char *kind;      /* "VirtualMachineInstance" */
    const char *shortname; /* "vmi"; NULL when none */
    gboolean namespaced;
} VmigKubeResource;

/* The kinds vmigrated uses (index into the built-in table). */
typedef enum {
    VMIG_KUBE_VMI,
    VMIG_KUBE_VMIM,
    VMIG_KUBE_KUBEVIRT,
    VMIG_KUBE_MIGRATION_POLICY,
    VMIG_KUBE_NODE,
    VMIG_KUBE_POD,
    VMIG_KUBE_PVC,
    VMIG_KUBE_EVENT,
    VMIG_KUBE_NAMESPACE,
    VMIG_KUBE_DATAVOLUME,
    VMIG_KUBE_LEASE,
    VMIG_KUBE_N_RESOURCES,
} VmigKubeResourceId;

/**
 * vmig_kube_resource:
 * Returns: (transfer none): the static table row for @id.
 */
const VmigKubeResource *vmig_kube_resource(VmigKubeResourceId id);

/**
 * vmig_kube_resource_lookup:
 * @name: plural ("virtualmachineinstances"), singular/kind in any case ("vmi", "VMIM",
 *        "VirtualMachineInstance", "pods", "pod") or "plural.group" ("leases.coordination.k8s.io")
 *
 * Returns: (transfer none) (nullable): the table row, NULL when unknown.
 */
const VmigKubeResource *vmig_kube_resource_lookup(const char *name);

/**
 * vmig_kube_resource_api_version:
 * Returns: (transfer full): "group/version", or "v1" for the core group.
 */
char *vmig_kube_resource_api_version(const VmigKubeResource *res);

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                              */

/* Where and how to reach the API server. Byte fields hold PEM; the *_file fields paths. */
typedef struct {
    char *server;      /* "https://10.0.0.1:6443" */
    char *context;     /* kubeconfig context used; NULL in-cluster */
    char *namespace;   /* default namespace ("default" when unset) */
    char *ca_file;     /* certificate-authority */
    GBytes *ca_data;   /* certificate-authority-data (decoded) */
    gboolean insecure; /* insecure-skip-tls-verify */
    char *token;       /* static bearer token */
    char *token_file;  /* tokenFile / service-account token: re-read periodically and on 401 */
    char *cert_file;   /* client-certificate */
    GBytes *cert_data; /* client-certificate-data (decoded) */
    char *key_file;    /* client-key */
    GBytes *key_data;  /* client-key-data (decoded) */
} VmigKubeConfig;

/**
 * vmig_kube_config_parse_kubeconfig:
 * @data: kubeconfig YAML text
 * @len: bytes in @data
 * @base_dir: (nullable): directory relative file paths are resolved against (the
 *            kubeconfig's own directory, as kubectl does)
 * @context: (nullable): context to use; NULL for current-context
 * @error: VMIG_KUBE_ERROR_CONFIG naming the field ("users[admin].client-key-data: not base64")
 *
 * Pure parser (no file is read). Mirrors kubectl's clientcmd fields listed in VmigKubeConfig.
 *
 * Returns: (transfer full) (nullable): the configuration.
 */
VmigKubeConfig *vmig_kube_config_parse_kubeconfig(const char *data, gsize len, const char *base_dir,
                                                  const char *context, GError **error);

/**
 * vmig_kube_config_load_kubeconfig:
 * @path: (nullable): the file; NULL for $KUBECONFIG (first entry) or ~/.kube/config
 * @context: (nullable): context; NULL for current-context
 * @error: VMIG_KUBE_ERROR_CONFIG naming the file and the field
 *
 * Returns: (transfer full) (nullable): the configuration.
 */
VmigKubeConfig *vmig_kube_config_load_kubeconfig(const char *path, const char *context,
                                                 GError **error);

/**
 * vmig_kube_config_in_cluster:
 * @sa_dir: (nullable): service-account directory; NULL for
 *          /var/run/secrets/kubernetes.io/serviceaccount (token, ca.crt, namespace)
 * @error: VMIG_KUBE_ERROR_CONFIG when KUBERNETES_SERVICE_HOST/PORT are unset or a file is
 *         missing
 *
 * The token is referenced as token_file so that rotated (bound) tokens are picked up.
 *
 * Returns: (transfer full) (nullable): the configuration.
 */
VmigKubeConfig *vmig_kube_config_in_cluster(const char *sa_dir, GError **error);

/**
 * vmig_kube_config_load:
 * @kubeconfig: (nullable): explicit kubeconfig path (--kubeconfig)
 * @error: VMIG_KUBE_ERROR_CONFIG
 *
 * kubectl's order: @kubeconfig, then $KUBECONFIG, then in-cluster when
 * KUBERNETES_SERVICE_HOST is set, then ~/.kube/config.
 *
 * Returns: (transfer full) (nullable): the configuration.
 */
VmigKubeConfig *vmig_kube_config_load(const char *kubeconfig, GError **error);

void vmig_kube_config_free(VmigKubeConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigKubeConfig, vmig_kube_config_free)

/* ------------------------------------------------------------------------------------------ */
/* Client and verbs                                                                           */

typedef struct _VmigKubeClient VmigKubeClient;

/**
 * vmig_kube_client_new:
 * @config: (transfer none): copied
 * @error: VMIG_KUBE_ERROR_CONFIG (no server, unreadable token file, curl init failure)
 *
 * The client attaches its libcurl sockets and timers to the thread-default main context at
 * the time of the call; all callbacks run there.
 *
 * Returns: (transfer full) (nullable): a client; vmig_kube_client_unref() when done.
 */
VmigKubeClient *vmig_kube_client_new(const VmigKubeConfig *config, GError **error);
VmigKubeClient *vmig_kube_client_ref(VmigKubeClient *client);
void vmig_kube_client_unref(VmigKubeClient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigKubeClient, vmig_kube_client_unref)

/**
 * vmig_kube_client_set_token_reload_interval:
 * @interval_ms: how old (ms) a token read from token_file may get before the next request
 *               re-reads it (default 60000; 0 = every request)
 */
void vmig_kube_client_set_token_reload_interval(VmigKubeClient *client, guint interval_ms);

/**
 * vmig_kube_client_get_namespace:
 * Returns: (transfer none): the configured default namespace.
 */
const char *vmig_kube_client_get_namespace(VmigKubeClient *client);

typedef enum {
    VMIG_KUBE_VERB_GET,
    VMIG_KUBE_VERB_LIST,
    VMIG_KUBE_VERB_CREATE,
    VMIG_KUBE_VERB_UPDATE, /* PUT; the body carries metadata.resourceVersion */
    VMIG_KUBE_VERB_DELETE,
    VMIG_KUBE_VERB_MERGE_PATCH, /* application/merge-patch+json (RFC 7386) */
    VMIG_KUBE_VERB_JSON_PATCH,  /* application/json-patch+json (RFC 6902) */
} VmigKubeVerb;

/**
 * vmig_kube_verb_to_string:
 * Returns: (transfer none): "get", "list", "create", "update", "delete", "patch", "patch".
 */
const char *vmig_kube_verb_to_string(VmigKubeVerb verb);

/* One request. Unset (NULL / 0) fields are left out of the URL. */
typedef struct {
    const VmigKubeResource *resource;
    const char *namespace;        /* NULL: all namespaces (list) or cluster-scoped */
    const char *name;             /* required except for LIST and CREATE */
    gboolean status;              /* the /status subresource */
    JsonNode *body;               /* CREATE/UPDATE object, PATCH document (transfer none) */
    const char *label_selector;   /* LIST */
    const char *field_selector;   /* LIST */
    guint limit;                  /* LIST page size */
    const char *continue_token;   /* LIST: metadata.continue of the previous page */
    const char *resource_version; /* GET/LIST: resourceVersion= */
    const char *precondition_uid; /* DELETE preconditions.uid */
    const char *precondition_rv;  /* DELETE preconditions.resourceVersion */
    const char *propagation;      /* DELETE propagationPolicy: Foreground|Background|Orphan */
} VmigKubeRequest;

/**
 * vmig_kube_call:
 * @client: the client
 * @verb: what to do
 * @req: (transfer none): copied before return
 * @cancellable: (nullable): cancels the transfer (VMIG_KUBE_ERROR_CANCELLED)
 * @callback: runs on the client's main context
 *
 * Starts one REST call. A 401 makes the client re-read its token file and retry once.
 */
void vmig_kube_call(VmigKubeClient *client, VmigKubeVerb verb, const VmigKubeRequest *req,
                    GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);

/**
 * vmig_kube_call_finish:
 * @error: VMIG_KUBE_ERROR_* with the HTTP code ("update virtualmachineinstancemigrations
 *         ns1/mig1: 409 Conflict: the object has been modified")
 * @http_status: (out) (optional): the HTTP status (0 without an answer, and for
 *               vmig_kube_list_all() / vmig_kube_mutate() results)
 *
 * Returns: (transfer full) (nullable): the answer's JSON (the object, the List, or the
 *          Status for DELETE).
 */
JsonNode *vmig_kube_call_finish(GAsyncResult *result, guint *http_status, GError **error);

/**
 * vmig_kube_call_sync:
 *
 * vmig_kube_call() then iterates the thread-default main context until it finishes. For
 * tests and the CLI; never from a main-loop callback of the daemon.
 *
 * Returns: (transfer full) (nullable): as vmig_kube_call_finish().
 */
JsonNode *vmig_kube_call_sync(VmigKubeClient *client, VmigKubeVerb verb, const VmigKubeRequest *req,
                              GCancellable *cancellable, GError **error);

/**
 * vmig_kube_list_all:
 * @req: a LIST request; limit is the page size (0 = server default, one page)
 *
 * Lists following metadata.continue until the last page. A 410 on a continue token (the
 * snapshot expired) fails with VMIG_KUBE_ERROR_GONE; the caller lists again.
 * vmig_kube_call_finish() returns one List object whose items hold every page and whose
 * metadata.resourceVersion is the first page's (the snapshot's).
 */
void vmig_kube_list_all(VmigKubeClient *client, const VmigKubeRequest *req,
                        GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data);

/* vmig_kube_wait:
 * Iterates the thread-default main context until *@done is TRUE or @timeout_ms passes.
 * Returns: TRUE if *@done became TRUE. For tests and the CLI. */
gboolean vmig_kube_wait(const gboolean *done, guint timeout_ms);

/* ------------------------------------------------------------------------------------------ */
/* Watch stream decoder (pure)                                                                */

typedef enum {
    VMIG_KUBE_EVENT_ADDED,
    VMIG_KUBE_EVENT_MODIFIED,
    VMIG_KUBE_EVENT_DELETED,
    VMIG_KUBE_EVENT_BOOKMARK,
    VMIG_KUBE_EVENT_ERROR,
} VmigKubeEventType;

/**
 * vmig_kube_event_type_to_string / _from_string: the watch event "type" names
 * ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR").
 */
const char *vmig_kube_event_type_to_string(VmigKubeEventType type);
gboolean vmig_kube_event_type_from_string(const char *name, VmigKubeEventType *out);

/* Called once per complete event; @object (transfer none) is valid during the call. Return
 * FALSE to stop decoding the rest of the current feed. */
typedef gboolean (*VmigKubeEventFunc)(VmigKubeEventType type, JsonNode *object, gpointer user_data);

typedef struct _VmigKubeDecoder VmigKubeDecoder;

/* One event as the stream carries it, before any tree is built: the object's JSON text and
 * the metadata fields the watch bookkeeping needs. Strings are NULL when absent; everything
 * is valid only during the callback. */
typedef struct {
    VmigKubeEventType type;
    const char *object;           /* JSON text of "object" (validated) */
    gsize object_len;             /* bytes */
    const char *name;             /* object.metadata.name */
    const char *namespace;        /* object.metadata.namespace */
    const char *uid;              /* object.metadata.uid */
    const char *resource_version; /* object.metadata.resourceVersion */
    const char *type_name;        /* internal */
} VmigKubeRawEvent;

/* Return FALSE to stop decoding the rest of the current feed. */
typedef gboolean (*VmigKubeRawEventFunc)(const VmigKubeRawEvent *event, gpointer user_data);

#define VMIG_KUBE_DEFAULT_MAX_EVENT_BYTES (8u * 1024 * 1024)

/**
 * vmig_kube_decoder_new:
 * @max_event_bytes: largest event accepted (bytes); 0 for VMIG_KUBE_DEFAULT_MAX_EVENT_BYTES
 *
 * A decoder for a watch response body: a sequence of JSON objects (newline-separated or
 * not). It frames by JSON structure, so how the bytes are split across feeds never matters.
 *
 * Returns: (transfer full): the decoder.
 */
VmigKubeDecoder *vmig_kube_decoder_new(gsize max_event_bytes);
void vmig_kube_decoder_free(VmigKubeDecoder *decoder);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigKubeDecoder, vmig_kube_decoder_free)

/**
 * vmig_kube_decoder_feed:
 * @data: the next bytes of the stream (any split)
 * @len: bytes in @data
 * @func: called for each event completed by these bytes, in order
 * @error: VMIG_KUBE_ERROR_DECODE (not JSON, no "type"/"object", unknown type) or
 *         VMIG_KUBE_ERROR_TOO_LARGE (an event grew above the limit); the stream is then
 *         unusable and the decoder must be reset
 *
 * Returns: FALSE on error. Also FALSE, without error, when @func returned FALSE.
 */
gboolean vmig_kube_decoder_feed(VmigKubeDecoder *decoder, const char *data, gsize len,
                                VmigKubeEventFunc func, gpointer user_data, GError **error);

/**
 * vmig_kube_decoder_feed_raw:
 *
 * As vmig_kube_decoder_feed() (same framing, same validation, same errors) but hands over
 * the object's text and metadata instead of a json-glib tree: a BOOKMARK or an event nobody
 * reads costs no tree. vmig_kube_decoder_feed() is this plus vmig_kube_parse_json().
 */
gboolean vmig_kube_decoder_feed_raw(VmigKubeDecoder *decoder, const char *data, gsize len,
                                    VmigKubeRawEventFunc func, gpointer user_data, GError **error);

/**
 * vmig_kube_parse_json:
 * @data: JSON text (RFC 8259, strict)
 * @len: bytes
 * @error: VMIG_KUBE_ERROR_DECODE naming what is wrong and the byte offset
 *
 * The client's JSON parser: builds the same trees as JsonParser, several times faster.
 *
 * Returns: (transfer full) (nullable): the root node.
 */
JsonNode *vmig_kube_parse_json(const char *data, gsize len, GError **error);

/**
 * vmig_kube_decoder_pending:
 * Returns: bytes of an incomplete event held (0 between events). A non-zero value at EOF
 *          is a truncated event: it is discarded, never parsed.
 */
gsize vmig_kube_decoder_pending(const VmigKubeDecoder *decoder);

/* vmig_kube_decoder_reset: drop any partial event (new stream). */
void vmig_kube_decoder_reset(VmigKubeDecoder *decoder);

/**
 * vmig_kube_status_from_node:
 * @node: a watch ERROR object or a response body
 * @code: (out) (optional): Status.code (0 when absent)
 * @reason: (out) (optional) (transfer none): Status.reason
 * @message: (out) (optional) (transfer none): Status.message
 *
 * Returns: TRUE when @node is a meta/v1 Status (kind "Status").
 */
gboolean vmig_kube_status_from_node(JsonNode *node, gint64 *code, const char **reason,
                                    const char **message);

/* ------------------------------------------------------------------------------------------ */
/* Informer                                                                                   */

typedef struct _VmigKubeInformer VmigKubeInformer;

/* Handlers; any may be NULL. Objects are transfer none, valid during the call. */
typedef struct {
    void (*added)(VmigKubeInformer *inf, JsonNode *obj, gpointer user_data);
    void (*updated)(VmigKubeInformer *inf, JsonNode *old_obj, JsonNode *new_obj,
                    gpointer user_data);
    void (*deleted)(VmigKubeInformer *inf, JsonNode *obj, gpointer user_data);
    /* the first complete LIST is in the cache (once per informer) */
    void (*synced)(VmigKubeInformer *inf, gpointer user_data);
    /* each watch request about to be sent, with the resourceVersion it carries (tests, logs) */
    void (*watching)(VmigKubeInformer *inf, const char *resource_version, gpointer user_data);
} VmigKubeInformerHandlers;

typedef struct {
    const char *namespace;        /* NULL: all namespaces (or cluster-scoped kind) */
    const char *label_selector;   /* NULL: none */
    const char *field_selector;   /* NULL: none */
    guint page_size;              /* LIST limit; default 100 (one page tree alive at a time) */
    guint timeout_seconds;        /* watch timeoutSeconds; default 300..600 (jittered) */
    guint read_deadline_ms;       /* no byte for this long -> drop + re-watch; default 60000 */
    gsize max_event_bytes;        /* decoder limit; default VMIG_KUBE_DEFAULT_MAX_EVENT_BYTES */
    guint backoff_initial_ms;     /* first retry delay after an error; default 800 */
    guint backoff_max_ms;         /* cap; default 30000 */
    gboolean keep_managed_fields; /* default FALSE: metadata.managedFields is dropped */
} VmigKubeInformerOptions;

/**
 * vmig_kube_informer_new:
 * @client: (transfer none): referenced
 * @resource: the kind to mirror
 * @options: (nullable): copied; NULL for defaults
 * @handlers: (nullable): copied
 *
 * Does nothing until vmig_kube_informer_start(). Handlers run on the client's main context;
 * an informer must not be freed from inside its own handlers (free it from an idle source).
 *
 * Returns: (transfer full): the informer; vmig_kube_informer_free() stops it.
 */
VmigKubeInformer *vmig_kube_informer_new(VmigKubeClient *client, const VmigKubeResource *resource,
                                         const VmigKubeInformerOptions *options,
                                         const VmigKubeInformerHandlers *handlers,
                                         gpointer user_data);
void vmig_kube_informer_start(VmigKubeInformer *inf);
void vmig_kube_informer_free(VmigKubeInformer *inf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigKubeInformer, vmig_kube_informer_free)

gboolean vmig_kube_informer_has_synced(VmigKubeInformer *inf);

/**
 * vmig_kube_informer_get:
 * @namespace: (nullable): NULL for cluster-scoped kinds
 *
 * Returns: (transfer full) (nullable): a copy of the cached object (parsed from the compact
 *          form the cache keeps), NULL when absent.
 */
JsonNode *vmig_kube_informer_get(VmigKubeInformer *inf, const char *namespace, const char *name);

/* Returns: the number of cached objects. */
guint vmig_kube_informer_size(VmigKubeInformer *inf);

/* Returns: (transfer full): "namespace/name" keys of the cache, sorted. */
GPtrArray *vmig_kube_informer_keys(VmigKubeInformer *inf);

/* Returns: (transfer none) (nullable): the last resourceVersion seen (list, event, bookmark). */
const char *vmig_kube_informer_resource_version(VmigKubeInformer *inf);

/* Returns: how many LISTs this informer has issued (initial + relists). */
guint vmig_kube_informer_list_count(VmigKubeInformer *inf);

/**
 * vmig_kube_informer_relist_count:
 * Returns: how many times a watch ended with 410 Expired (an HTTP 410 answer or an in-stream
 * ERROR event with code 410) and the informer relisted, as client-go's reflector does. A LIST
 * retried after a failed LIST or restarted after its paged snapshot expired is not counted
 * here (vmig_kube_informer_list_count() counts every LIST).
 */
guint vmig_kube_informer_relist_count(VmigKubeInformer *inf);

/**
 * vmig_kube_informer_watch_reconnects:
 * Returns: how many watch streams ended and were (or are about to be) opened again, whatever
 * the cause: a clean close by the server (timeoutSeconds, restart, a cut), a transport or
 * decode error, an HTTP error status, the read deadline (no byte for read_deadline_ms), or
 * 410 Expired (then after a relist). The first watch is not counted, nor the end of the
 * watch by vmig_kube_informer_free(). Counts since vmig_kube_informer_new(); never decreases.
 */
guint vmig_kube_informer_watch_reconnects(VmigKubeInformer *inf);

/* ------------------------------------------------------------------------------------------ */
/* Status writes with preconditions                                                           */

typedef enum {
    VMIG_KUBE_MUTATE_CHANGED,   /* write the object */
    VMIG_KUBE_MUTATE_UNCHANGED, /* nothing to do; the live object is the result */
    VMIG_KUBE_MUTATE_REFUSE,    /* the live object forbids this change; @error is set */
} VmigKubeMutateResult;

/* Applies the caller's change to @object, the LIVE object just read from the server (never
 * the cache). Called again after each conflict, so it must set only the fields the caller
 * owns and must decide from @object (e.g. refuse when status.migrationState.migrationUid is
 * already another migration's). */
typedef VmigKubeMutateResult (*VmigKubeMutateFunc)(JsonObject *object, gpointer user_data,
                                                   GError **error);

#define VMIG_KUBE_DEFAULT_WRITE_ATTEMPTS 5

/**
 * vmig_kube_mutate:
 * @status: write the /status subresource (else the main resource)
 * @cached: (nullable) (transfer none): the caller's cached copy; when given, the first
 *          attempt mutates it and writes with its resourceVersion (no GET); a 409 then
 *          switches to live reads
 * @max_attempts: writes tried before giving up (0 = VMIG_KUBE_DEFAULT_WRITE_ATTEMPTS)
 *
 * GET the live object (or start from @cached), apply @mutate, PUT it back with its resourceVersion
 * (the precondition: a write based on a stale read fails with 409 instead of overwriting). On 409:
 * re-GET and re-apply after a backoff (50 ms doubling, jittered). vmig_kube_call_finish()
 * returns the written object; errors: VMIG_KUBE_ERROR_CONFLICT after @max_attempts
 * ("... conflict persisted after 5 attempts"), VMIG_KUBE_ERROR_REFUSED from @mutate, or
 * the GET/PUT error.
 */
void vmig_kube_mutate(VmigKubeClient *client, const VmigKubeResource *resource,
                      const char *namespace, const char *name, gboolean status, JsonNode *cached,
                      guint max_attempts, VmigKubeMutateFunc mutate, gpointer mutate_data,
                      GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);

/* vmig_kube_mutate_sync: vmig_kube_mutate() waited for (tests, CLI). */
JsonNode *vmig_kube_mutate_sync(VmigKubeClient *client, const VmigKubeResource *resource,
                                const char *namespace, const char *name, gboolean status,
                                JsonNode *cached, guint max_attempts, VmigKubeMutateFunc mutate,
                                gpointer mutate_data, GError **error);

/* ------------------------------------------------------------------------------------------ */
/* Events                                                                                     */

typedef struct _VmigKubeRecorder VmigKubeRecorder;

/**
 * vmig_kube_recorder_new:
 * @component: source.component ("vmigrated")
 * @host: (nullable): source.host (the node name)
 * @window_ms: repeats of one (object, type, reason, message) within this window are
 *             aggregated by PATCHing count and lastTimestamp (default 600000 when 0)
 *
 * Returns: (transfer full): the recorder.
 */
VmigKubeRecorder *vmig_kube_recorder_new(VmigKubeClient *client, const char *component,
                                         const char *host, guint window_ms);
void vmig_kube_recorder_free(VmigKubeRecorder *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigKubeRecorder, vmig_kube_recorder_free)

/**
 * vmig_kube_recorder_event:
 * @involved: (transfer none): the object the event is about (apiVersion, kind, metadata)
 * @warning: type Warning (else Normal)
 * @reason: KubeVirt's reason spelling ("Migrated", "MigrationFailed")
 *
 * Fire and forget: creates a core/v1 Event in the object's namespace, or PATCHes the count
 * of the earlier one. Failures are logged, never fatal. @callback (nullable) reports the
 * result (the Event written) for tests.
 */
void vmig_kube_recorder_event(VmigKubeRecorder *rec, JsonNode *involved, gboolean warning,
                              const char *reason, const char *message, GAsyncReadyCallback callback,
                              gpointer user_data);

/* ------------------------------------------------------------------------------------------ */
/* Small JSON helpers shared by callers                                                       */

/* Returns: (transfer none) (nullable): metadata.<field> as a string. */
const char *vmig_kube_meta_string(JsonNode *obj, const char *field);

/* Returns: (transfer full): "namespace/name", or "name" when cluster-scoped. */
char *vmig_kube_object_key(JsonNode *obj);

G_END_DECLS
