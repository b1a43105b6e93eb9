/*
 * http.h: the HTTP front's internals (DESIGN.md "HTTP front"), shared by
 * http.c (libmicrohttpd: connections, bodies, identity, the route table),
 * http_call.c (a route's Requests through the loop), http_json.c (fields
 * and replies in JSON) and the MLflow routes (mlflow_run.c, mlflow_model.c,
 * mlflow_artifact.c).
 *
 * One dispatch. A route never touches the store: it translates its call
 * into the same track.v1.Requests the nanomsg listeners carry and sends
 * them, with the caller its transport resolved, to the loop over an
 * in-process nanomsg socket (SRV_HTTP_INPROC). The loop treats that socket
 * as one more listener whose frames start with a struct srv_http_head: so
 * writes go through the group commit (one writer, acknowledged only once
 * committed; each call's frame sent once, http_call.c), reads go to the read
 * workers, permissions are dispatch's, and the loop never waits on an HTTP
 * client. libmicrohttpd runs a thread per connection (at most
 * HTTP_MAX_CONNECTIONS); a connection's thread blocks on its own reply,
 * never the loop.
 */
#ifndef TRACK_HTTP_H
#define TRACK_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "srv.h"

#define SRV_HTTP_INPROC "inproc://trackd-http"
#define SRV_HTTP_MAGIC  0x48545450u /* "HTTP": the head of an in-process frame */

/* What precedes each Request on SRV_HTTP_INPROC: the caller, resolved by
 * http.c (the local owner on a loopback bind, a token's user otherwise).
 * Only this process can reach an inproc socket, so the loop trusts it. */
struct srv_http_head {
    uint32_t magic;
    uint32_t reserved;
    struct srv_caller caller;
};

/* ---- bounds (README "HTTP front") ------------------------------------------------ */
#define HTTP_MAX_CONNECTIONS 64          /* at once; past it new ones are refused */
#define HTTP_MAX_PER_IP      32          /* of those, from one address */
#define HTTP_IDLE_SECONDS    30          /* a connection silent this long is closed */
#define HTTP_REQUEST_SECONDS 120         /* a request body must arrive within this */
#define HTTP_MAX_BODY        (16u << 20) /* bytes of a JSON body */
#define HTTP_MAX_ARGS        1000        /* fields of a query string */
#define HTTP_CALL_MS         60000       /* longest wait for the loop's answer */

/* ---- the front (http.c), started and stopped by the loop ------------------------- */
struct srv_http;
/* Checks cfg.http (ADDR:PORT; a non-loopback address needs users in the
 * store) and starts serving it. 0, or -1 logged. */
int srv_http_start(struct srv *srv, struct srv_http **out);
/* Stops taking connections (at SIGTERM), while the loop still answers. */
void srv_http_quiesce(struct srv_http *h);
/* Requests in progress (the loop keeps serving until this is 0). */
int srv_http_busy(const struct srv_http *h);
/* Closes every connection and frees the front. */
void srv_http_stop(struct srv_http *h);

/* ---- a request being answered --------------------------------------------------- */
struct http_req {
    struct srv *srv;
    struct srv_caller caller;
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* the URL's path after the route's prefix, decoded */
    json_t *args;       /* the fields: the JSON body, or the query string of a GET */
    struct MHD_Connection *conn;
    /* the answer: a JSON object (status 200), or an error */
    int status;
    json_t *reply;
    const char *error_code; /* MLflow's, e.g. "INVALID_PARAMETER_VALUE" */
    char message[700];
    /* a route that answers with a raw body instead (artifact download) */
    struct MHD_Response *raw;
    int raw_status; /* its status; 0: 200 */
    /* a route that takes its body as a stream (artifact upload) */
    void *stream;
    /* the body as it came (a raw_body route may write into it) */
    char *body;
    size_t body_len;
    /* the dashboard's API (web_*.c): an error's field and column (a filter's
     * syntax error, shown where the user typed it), the token this caller's
     * writes must echo in X-Track-CSRF, and a cookie to set or clear */
    const char *err_field;
    int err_column;
    int web;
    char csrf[65];
    char set_cookie[800];
};

/* Fails the request with an HTTP status, MLflow's error code and a
 * message; -1. */
int http_fail(struct http_req *r, int status, const char *error_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Fails it with the status and code of a track wire code (the one table of
 * http_call.c) and the daemon's message; -1. */
int http_fail_wire(struct http_req *r, int wire_code, const char *msg);
/* r->args from the body (a JSON object), or from the query string of a GET
 * or an empty body; -1 with r failed (400 BAD_REQUEST naming the error). */
int http_parse_args(struct http_req *r);
/* (http_json.c) r->args from a non-empty body, which must be one JSON object;
 * -1 with r failed (400 BAD_REQUEST naming the error). */
int http_parse_body(struct http_req *r);
/* Sets the 200 reply (takes the reference); 0, or -1 on OOM. */
int http_ok(struct http_req *r, json_t *reply);
/* The caller a token names (as an Authorization header would): 0 with
 * *out, -1 with r failed (401 when the token is not valid). http.c. */
int http_token_caller(struct http_req *r, const char *token, struct srv_caller *out);
/* This request's CSRF token (hex, 64) for a credential `seed` (a token, or
 * "" for the loopback owner): a keyed hash under a key made at start, so a
 * page can echo it and another site cannot know it. http.c. */
void http_csrf_of(const char *seed, char out[65]);

/* ---- calls through the loop (http_call.c) ---------------------------------------- */
/* Sends rq (its request_id is made here) for r's caller and waits for the
 * answer. 0 with *rs the response (free with http_response_free); -1 with
 * r failed: a transport failure (503), or the response's error mapped
 * through http_fail_wire. */
int http_call(struct http_req *r, Track__V1__Request *rq, Track__V1__Response **rs);
void http_response_free(Track__V1__Response *rs);
/* Makes every waiting call give up (503) at its next tick: the front stops. */
void http_call_set_stopping(int on);
/* The status and MLflow error code of a track wire code. */
int http_status_of(int wire_code, const char **error_code);
/* Closes this thread's socket to the loop (at the thread's end: a pthread
 * key destructor does it; exposed for the tests' threads). */
void http_call_thread_end(void);

/* ---- fields and replies (http_json.c) -------------------------------------------- */
/* A string field: 0 with *out (NULL when absent and not required; points
 * into r->args), or -1 with r failed naming the field. */
int http_arg_str(struct http_req *r, const char *field, int required, const char **out);
/* An integer field, a JSON number or a string of digits (GET and MLflow's
 * int64 as text alike); *out keeps dflt when absent. */
int http_arg_i64(struct http_req *r, const char *field, int required, int64_t dflt, int64_t *out);
/* A double: a number, or "NaN", "Infinity", "-Infinity" or a numeric string. */
int http_arg_double(struct http_req *r, const char *field, int required, double *out);
/* A list field (an array in JSON; a repeated key in a query string); NULL
 * when absent. -1 with r failed when present and not an array. */
int http_arg_array(struct http_req *r, const char *field, json_t **out);
/* A double as MLflow writes it: a number, or "NaN", "Infinity", "-Infinity". */
json_t *http_json_double(double v);
/* A string that may not be valid UTF-8 (bytes replaced): never NULL on
 * success, NULL on OOM only. */
json_t *http_json_str(const char *s);
/* A run status's name as MLflow and the CLI write it: RUNNING, FINISHED,
 * FAILED, KILLED (UNKNOWN for none of them). */
const char *http_status_name(int status);
/* Reads an int64 out of a JSON value (number or digit string); -1 if not. */
int http_json_i64(const json_t *v, int64_t *out);

/* A search filter on names, the one MLflow's experiment and model searches
 * mostly send: empty (*op 0), or name =, !=, LIKE, ILIKE 'X' (% and _
 * wildcards, case folded for ILIKE); the value into pat (cap bytes). */
enum { HTTP_NAME_EQ = 1, HTTP_NAME_NE, HTTP_NAME_LIKE, HTTP_NAME_ILIKE };
int http_name_filter(struct http_req *r, const char *f, int *op, char *pat, size_t cap);
/* 1 when name passes the filter (op 0: always). */
int http_name_match(int op, const char *name, const char *pat);
/* SQL's LIKE: % any run, _ one byte; fold: ASCII case-insensitive. */
int http_like(const char *s, const char *p, int fold);

/* ---- routes --------------------------------------------------------------------- */
typedef int (*http_handler)(struct http_req *r);
/* A streamed body: begin before the first byte (the headers known), data
 * as it arrives (r failed: the rest is discarded and the error answered),
 * end after the last. */
struct http_stream_ops {
    int (*begin)(struct http_req *r);
    int (*data)(struct http_req *r, const char *buf, size_t n);
    int (*end)(struct http_req *r);
    void (*free)(struct http_req *r); /* always called, also after a failure */
};

struct http_route {
    const char *method;
    const char *path; /* exact; or a prefix when it ends in '/' (but "/" itself) */
    http_handler fn;
    const struct http_stream_ops *stream; /* non-NULL: the body is streamed */
    int write;                            /* 1: refused to readers before the call */
    int open;                             /* 1: answered without credentials */
    int raw_body;                         /* 1: r->body as sent, no JSON fields */
};

/* The MLflow routes (tables in each file, NULL-path ended). */
extern const struct http_route ml_experiment_routes[];
extern const struct http_route ml_run_routes[];
extern const struct http_route ml_model_routes[];
extern const struct http_route ml_artifact_routes[];
/* OTLP/HTTP's trace export (otlp.c). */
extern const struct http_route otlp_routes[];
/* The dashboard (web.c: the page, its assets, the session; web_run.c,
 * web_model.c, web_trace.c, web_feedback.c: its JSON API under
 * /api/track/v1/, README "Dashboard"). */
extern const struct http_route web_page_routes[];
extern const struct http_route web_session_routes[];
extern const struct http_route web_run_routes[];
extern const struct http_route web_model_routes[];
extern const struct http_route web_trace_routes[];
extern const struct http_route web_feedback_routes[];
/* Adds the page's security headers (CSP, nosniff, no framing, no referrer)
 * to rs; and r's cookie when it sets one. */
void web_headers(struct MHD_Response *rs, const struct http_req *r);
/* A JSON answer of n bytes gzipped (zlib level 1) when it is worth it: the
 * client takes gzip, the answer is over WEB_GZIP_MIN bytes, and the peer is
 * not on loopback (where the bytes cost nothing and the 30 ms of a 7 MB
 * list would). The compressed bytes (malloc'd) and *out_n, or NULL: send
 * text as it is. web.c. */
#define WEB_GZIP_MIN (64u << 10)
char *web_gzip(const struct http_req *r, const char *text, size_t n, size_t *out_n);
/* Shared by the web routes (web_run.c): a time in ms as JSON (null for 0),
 * and a 32-hex id of 16 bytes (or "" when not 16). */
json_t *web_json_time(int64_t ms);
void web_hex(const uint8_t *b, size_t n, char *out);
/* A reply's next_page_token into tok (cap bytes) for the next request:
 * 1 when there is a next page, 0 at the end (or a token past cap). web.c. */
int web_next_token(const ProtobufCBinaryData *next, uint8_t *tok, size_t cap, size_t *len);
/* Calls fn on each artifact of run under prefix ("" all), in path order,
 * following the daemon's pages until the end or, once at least cap were
 * seen, the end of that page: 0 (all seen), 1 (more follow), -1 with r
 * failed (or fn's non-zero, r failed by fn). web_run.c. */
int web_each_artifact(struct http_req *r, const char *run, const char *prefix, size_t cap,
                      int (*fn)(void *ctx, const Track__V1__ArtifactInfo *a), void *ctx);
/* A field capped at `max`, default dflt (1..max), -1 with r failed. */
int web_arg_limit(struct http_req *r, const char *field, int64_t dflt, int64_t max, int64_t *out);
/* Fails r with a store filter error: 400 naming `field` and, when the
 * message says "...: column N: ...", that column. -1. */
int web_fail_filter(struct http_req *r, const char *field);
/* (web_feedback.c) runs/RUN/feedback: the run's scores, as `track feedback
 * list --json`. */
int web_run_feedback(struct http_req *r, const char *run);
/* traces/TRACE/feedback: the trace's scores and its spans', with or
 * without a run. */
int web_trace_feedback(struct http_req *r, const uint8_t trace[16]);
/* (mlflow_artifact.c) Answers the bytes of run's artifact at path, read
 * through the loop as the client takes them; attachment: a
 * Content-Disposition naming the file. 0, or -1 with r failed. */
int ml_artifact_send(struct http_req *r, const char *run, const char *path, int attachment);
/* The same for a blob by its digest and size (a model version's pinned
 * file); name: the attachment's file name, or NULL for none. */
int ml_blob_send(struct http_req *r, const uint8_t digest[32], int64_t size, const char *name);

/* Shared by the MLflow routes (mlflow_experiment.c). */
struct ml_experiment {
    int64_t id;
    char name[LIMIT_NAME_BYTES + 1];
    int archived;
    int64_t created_ms;
};
/* The experiment of MLflow id `id` ("0": Default, made at its first run if
 * it does not exist yet); -1 with r failed (404 when none). */
int ml_experiment_by_id(struct http_req *r, const char *id, struct ml_experiment *x);
/* Its MLflow id. */
void ml_experiment_mlflow_id(const struct ml_experiment *x, char out[24]);
/* The MLflow id ("0" for Default, else digits) of an experiment name, into
 * out; -1 with r failed. */
int ml_experiment_id(struct http_req *r, const char *name, char out[24]);
/* The experiment name of an MLflow id; -1 with r failed (404 when none). */
int ml_experiment_name(struct http_req *r, const char *id, char *out, size_t cap);
/* (mlflow_run.c) run_id (or run_uuid) of the request, checked as 32 hex. */
int ml_arg_run(struct http_req *r, const char **run);
/* MLflow's key rule (250 characters of [/\w.\- :], a normal relative
 * path); -1 with r failed naming `what`. */
int ml_check_key(struct http_req *r, const char *what, const char *k);

/* (mlflow_batch.c) one metric point of a log-batch */
struct ml_point {
    const char *key;
    double value;
    int64_t ts, step; /* ts 0: now */
};
/* Sends n points (grouped into one series per key, in order) with params,
 * tags, a tag to delete (may be NULL) and a new name ("" none) as one
 * LogBatch; -1 with r failed. */
int ml_send_batch(struct http_req *r, const char *run, const struct ml_point *pts, size_t n,
                  Track__V1__KeyValue **params, size_t np, Track__V1__KeyValue **tags, size_t nt,
                  const char *delete_tag, const char *rename);
/* runs/log-batch read in place, without a JSON tree, when its body is the
 * shape high-volume loggers send: run_id (or run_uuid) and metrics only.
 * 1: handled (r answered or failed); 0: another shape, parse it as JSON. */
int ml_log_batch_fast(struct http_req *r);
#define ML_BATCH_METRICS 1000

#endif
