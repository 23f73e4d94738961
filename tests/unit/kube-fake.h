/* kube-fake.h - a scripted fake Kubernetes API server for the kube client tests (libsoup).
 * Each test answers requests from its own handler; the fake logs every request line, keeps
 * paused (held) watch responses for cleanup and gives a client pointed at it. Loopback only,
 * kernel-chosen port. */
#pragma once

#include <libsoup/soup.h>

#include "vmig/kube.h"

typedef struct _FakeServer FakeServer;
typedef void (*FakeHandler)(FakeServer *fake, SoupServerMessage *msg, const char *method,
                            const char *path, GHashTable *query, gpointer user_data);

struct _FakeServer {
    SoupServer *server;
    char *url;      /* "http://127.0.0.1:PORT" */
    GPtrArray *log; /* "GET /apis/...?query" per request, in order */
    GPtrArray *held;
    FakeHandler handler;
    gpointer user_data;
    VmigKubeClient *client; /* from fake_client(); unreffed first when the fake is freed */
};

FakeServer *fake_server_new(FakeHandler handler, gpointer user_data);
void fake_server_free(FakeServer *fake);
/* A client for the fake, owned by it: its connections close before the server goes. */
VmigKubeClient *fake_client(FakeServer *fake);
/* Requests in the log whose line contains @needle. */
guint fake_count(FakeServer *fake, const char *needle);

const char *fake_query(GHashTable *query, const char *key);
char *fake_body(SoupServerMessage *msg);
void fake_reply_json(SoupServerMessage *msg, guint status, const char *json);
void fake_reply_status(SoupServerMessage *msg, guint code, const char *reason, const char *message);
/* Streaming (chunked) answer: begin, write pieces, end (clean close) or hold forever. */
void fake_stream_begin(SoupServerMessage *msg);
void fake_stream_write(SoupServerMessage *msg, const char *data, gsize len);
void fake_stream_end(SoupServerMessage *msg);
void fake_hold(FakeServer *fake, SoupServerMessage *msg);

/* Iterate the default main context until *@done or @timeout_ms; then drain pending sources. */
gboolean fake_wait(const gboolean *done, guint timeout_ms);
void fake_drain(guint ms);
JsonNode *fake_parse(const char *json);
