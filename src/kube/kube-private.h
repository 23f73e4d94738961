/* kube-private.h - what the kube sources share and nobody else sees. */
#pragma once

#define G_LOG_DOMAIN "vmig-kube"

#include "vmig/kube.h"

#include <curl/curl.h>

/* One HTTP exchange on the client's curl multi handle. */
typedef struct _VmigKubeTransfer VmigKubeTransfer;

/* Streaming body bytes of a 2xx answer; return FALSE to abort the transfer. */
typedef gboolean (*VmigKubeDataFunc)(const char *data, gsize len, gpointer user_data);
/* The transfer ended (not called after vmig_kube_transfer_abort()). */
typedef void (*VmigKubeDoneFunc)(VmigKubeTransfer *t, gpointer user_data);

struct _VmigKubeTransfer {
    VmigKubeClient *client;
    CURL *easy;
    struct curl_slist *headers;
    char *method;
    char *url;
    char *content_type;
    char *body;
    gboolean stream; /* no total timeout; 2xx body goes to data_func */
    VmigKubeDataFunc data_func;
    VmigKubeDoneFunc done_func;
    gpointer user_data;
    GByteArray *response; /* body of a non-streaming or non-2xx answer */
    CURLcode result;
    long http_status;
    gboolean data_aborted; /* data_func said stop */
    gboolean cancelled;
    gboolean token_retried;
    char errbuf[CURL_ERROR_SIZE];
    GCancellable *cancellable;
    gulong cancel_id;
    GSource *cancel_source;
};

/* Starts @method @path_query (relative to the server). @body: (nullable) copied. */
VmigKubeTransfer *vmig_kube_transfer_start(VmigKubeClient *client, const char *method,
                                           const char *path_query, const char *content_type,
                                           const char *body, gboolean stream,
                                           VmigKubeDataFunc data_func, VmigKubeDoneFunc done_func,
                                           gpointer user_data, GCancellable *cancellable);
/* Stops a running transfer without calling done_func; frees it. */
void vmig_kube_transfer_abort(VmigKubeTransfer *t);

GMainContext *vmig_kube_client_context(VmigKubeClient *client);

/* "/api/v1/namespaces/ns1/pods/p1/status" (no query). Validates namespace and name. */
char *vmig_kube_path(const VmigKubeResource *res, const char *namespace, const char *name,
                     gboolean status, GError **error);

/* "update virtualmachineinstancemigrations/status ns1/mig1" for messages. */
char *vmig_kube_describe(VmigKubeVerb verb, const VmigKubeResource *res, const char *namespace,
                         const char *name, gboolean status);

/* Fills @error from a finished transfer that was not a 2xx; @what from vmig_kube_describe. */
void vmig_kube_set_error_from_transfer(VmigKubeTransfer *t, const char *what, GError **error);

/* Milliseconds @base..2*@base, random (jitter for backoff). */
guint vmig_kube_jitter_ms(guint base_ms);

/* RFC 3339 UTC with seconds: "2026-11-29T19:03:02Z". */
char *vmig_kube_now_rfc3339(void);

/* json-glib 1.6 lacks json_object_get_{object,array}_member_with_default. */
JsonObject *vmig_kube_json_object(JsonObject *o, const char *member);
JsonArray *vmig_kube_json_array(JsonObject *o, const char *member);

/* Strict JSON text -> json-glib tree, several times faster than JsonParser (json.c).
 * Returns: (transfer full) (nullable): the root; VMIG_KUBE_ERROR_DECODE naming the byte. */
JsonNode *vmig_kube_json_parse(const char *data, gsize len, GError **error);

/* Validates one watch event and fills @ev (type_name, object span, metadata; strings owned
 * by @ev, free with vmig_kube_raw_event_clear). */
gboolean vmig_kube_json_scan_event(const char *data, gsize len, VmigKubeRawEvent *ev,
                                   GError **error);
void vmig_kube_raw_event_clear(VmigKubeRawEvent *ev);

/* pack.c: the informer cache's object text, deflated against a per-informer dictionary
 * (the first object stored). */
typedef struct _VmigKubePack VmigKubePack;
VmigKubePack *vmig_kube_pack_new(void);
void vmig_kube_pack_free(VmigKubePack *p);
/* @text of @len bytes, packed (transfer full, *@packed_len bytes); the first call fixes the
 * dictionary. */
guint8 *vmig_kube_pack(VmigKubePack *p, const char *text, gsize len, guint32 *packed_len);
/* The NUL-terminated text (transfer full) of @text_len bytes; NULL (and a critical) if the
 * bytes do not unpack, which only memory corruption can cause. */
char *vmig_kube_unpack(VmigKubePack *p, const guint8 *packed, guint32 packed_len, guint32 text_len);
