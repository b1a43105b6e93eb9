/*
 * op.h: what the handlers share (op_util.c) and the handlers themselves
 * (op_<noun>.c, prefix srv_op_), for dispatch.c's table. A handler fills
 * call->rs and returns 0, or fails the call (call->code, call->msg) and
 * returns -1; srv_dispatch turns that into the error response. The backup
 * handlers (op_backup.c) are declared in srv.h.
 */
#ifndef TRACK_OP_H
#define TRACK_OP_H

#include <stddef.h>
#include <stdint.h>

#include "srv.h"
#include "track_limits.h"

/* ---- failing a call (op_util.c) -------------------------------------------- */
/* Sets call->code to `code` and call->msg to the formatted message; -1. */
int srv_op_fail(struct srv_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fails with the wire code of store code `rc` and the store's message; -1. */
int srv_op_fail_store(struct srv_call *call, int rc, const struct store_err *err);
/* Fails with RESOURCE_EXHAUSTED "daemon out of memory"; -1. */
int srv_op_oom(struct srv_call *call);

/* ---- checks and lookups shared by the handlers (op_util.c) ------------------ */
/* Resolves `run` (32 hex or a unique prefix of 4+) named by `field` into
 * id; -1 (call failed: INVALID_ARGUMENT, NOT_FOUND...) otherwise. */
int srv_op_resolve_run(struct srv_call *call, const char *field, const char *run, uint8_t id[16]);
/* Checks n params or tags (`what`) against the count, key and value limits. */
int srv_op_check_kvs(struct srv_call *call, const char *what, Track__V1__KeyValue **kv, size_t n);
/* Stores n params (params != 0) or tags of run; -1 at the first failure. */
int srv_op_put_kvs(struct srv_call *call, const uint8_t run[16], int params,
                   Track__V1__KeyValue **kv, size_t n);
/* Checks metric series as LogBatch takes them (keys, matching lengths, steps
 * and times >= 0, LIMIT_BATCH_SERIES and _POINTS); *total gets the points. */
int srv_op_check_series(struct srv_call *call, Track__V1__MetricSeries *const *metrics, size_t n,
                        size_t *total);
/* Appends checked series to the run (time 0: now). */
int srv_op_put_series(struct srv_call *call, const uint8_t id[16],
                      Track__V1__MetricSeries *const *metrics, size_t n);
/* Makes room for one more pointer in *items (n used of *cap) built in the
 * arena, doubling, so a list of n costs log n allocations; -1 on OOM. */
int srv_op_grow(struct srv_arena *a, void ***items, size_t n, size_t *cap);

/* ---- paged replies ---------------------------------------------------------------
 * A reply that grows with the data (a run's params, tags and metric
 * summaries; a list of runs) is built against a byte budget, measured with
 * protobuf-c's own sizes as each item is added, and stops at the first item
 * that does not fit, with a cursor for the next page. So no reply is ever
 * built past REPLY_PAGE_BYTES, however many keys a run has, and the arena of
 * a page holds a few times that at most. One item (a 64 KiB value and its
 * key) always fits in an empty page, so every page makes progress.
 *
 * The cursor travels as an opaque page token: "P1", the index of the run in
 * the listing (8 bytes, little-endian), the section of its details (0
 * params, 1 tags, 2 metrics) and the last key sent in that section. "P2"
 * is a run list in the default order that also carries where the next
 * page starts (TOKEN_SEEK bytes after the section: the start time and row
 * of a run, 8 bytes each, and 1 when the page starts at that run, 0 after
 * it), so that page reads only its own runs. */

#define REPLY_PAGE_BYTES (LIMIT_FRAME_BYTES / 4)
#define REPLY_SLACK      64 /* the envelope: request id, result tag, lengths */
#define TOKEN_HEAD       11
#define TOKEN_SEEK       17

struct page {
    size_t left; /* bytes this page may still take */
    int full;    /* an item did not fit: stopped at (section, key) */
    int section;
    char key[LIMIT_KEY_BYTES + 1];
};

struct page_cursor {
    int64_t run_index;
    int section;
    char key[LIMIT_KEY_BYTES + 1];
    int seek; /* "P2": the next page starts at or after this run */
    int seek_inclusive;
    int64_t seek_start_ms, seek_row;
};

/* What a sub-message of packed size n costs inside a repeated field. */
size_t srv_op_item_cost(size_t n);
/* Decodes page token t into c (all zero for an empty token: the first
 * page); -1 (INVALID_ARGUMENT) for a token this server did not give. */
int srv_op_token_decode(struct srv_call *call, ProtobufCBinaryData t, struct page_cursor *c);
/* Encodes (run_index, pg->section, pg->key) as a page token in the arena;
 * with seek (may be NULL), a "P2" token carrying its seek fields. */
int srv_op_token_encode(struct srv_call *call, int64_t run_index, const struct page *pg,
                        ProtobufCBinaryData *t);
int srv_op_token_encode_seek(struct srv_call *call, int64_t run_index, const struct page *pg,
                             const struct page_cursor *seek, ProtobufCBinaryData *t);
/* An empty page of REPLY_PAGE_BYTES, less `used` bytes already in the reply
 * (when they are under half a page). */
struct page srv_op_page_new(size_t used);

/* ---- permissions (authz.c) and audit (audit.c) ---------------------------------
 * Each row of dispatch.c's table says what its operation needs, where the
 * experiment it is about comes from, and how it is audited (README "Roles
 * and grants"). dispatch checks the need before the handler runs; handlers
 * only filter lists through srv_viewer. */
enum srv_need {
    NEED_ANY = 0, /* any caller (lists are filtered by their handler) */
    NEED_READ,    /* these three: a level on the subject's experiment */
    NEED_WRITE,
    NEED_MANAGE,
    NEED_WRITER, /* the writer role (or admin), whatever the experiment */
    NEED_ADMIN,  /* the admin role */
};
enum srv_from {
    FROM_NONE = 0,
    FROM_EXPERIMENT,   /* field: an experiment name ("" is "Default"); a new one needs writer */
    FROM_RUN,          /* field: a run id or prefix */
    FROM_RUN_OR_ALL,   /* the same; empty means every run: admin */
    FROM_MODEL_REF,    /* field: NAME/VERSION or NAME@ALIAS: the version's run */
    FROM_MODEL_TARGET, /* field: NAME (its latest version) or a ref */
    FROM_MODEL_ALIAS,  /* ModelAlias: name and version */
    FROM_MODEL_NAME,   /* field: a model, readable when one of its versions is */
    FROM_DIGEST,       /* ArtifactRead: a blob some readable artifact or version names */
    FROM_SCORES,       /* FeedbackBatch: every run its scores name */
    FROM_RUN_OR_EXPERIMENT, /* FeedbackList/Summary: their run, else their experiment */
};
enum srv_audit_mode {
    AUDIT_NONE = 0,
    AUDIT_TXN, /* in the request's own transaction (writes in the loop) */
    AUDIT_OWN, /* a short transaction of its own (gc, backup on a worker) */
};
struct srv_rule {
    int need, from, audit;
    /* the field naming the subject; NULL for FROM_NONE and FROM_MODEL_ALIAS */
    const char *(*field)(const Track__V1__Request *rq);
};
/* The caller as the store's grant functions see it; NULL (sees everything)
 * for the local owner. buf is the storage for the answer. */
const struct store_viewer *srv_viewer(const struct srv_call *call, struct store_viewer *buf);
/* 1 when the caller sees everything (the local owner or an admin). */
int srv_sees_all(const struct srv_call *call);
/* Checks rule against call->caller and fills call->subj; -1 (the call
 * failed: NOT_FOUND for what the caller may not read, PERMISSION_DENIED
 * naming the need) otherwise, with call->audit_refused set when the refusal
 * is one to audit. */
int srv_authz_check(struct srv_call *call, const struct srv_rule *rule);
/* The caller's level on the experiment of run (0: cannot see it or no such run). */
int srv_authz_run_level(struct srv_call *call, const uint8_t run[16], int *level);
/* Appends the call's audit row with wire code `code` to st, in the caller's
 * transaction; a store code on failure (err filled). */
int srv_audit_append(struct srv_call *call, struct store *st, int code, struct store_err *err);
/* The login name of the daemon's owner (the user a local caller is). */
const char *srv_owner_name(void);
/* The same in a short transaction of a handle of its own (workers); logs a failure. */
int srv_audit_own(struct srv_call *call, int code);

/* ---- handlers ----------------------------------------------------------------- */
/* op_server.c */
int srv_op_hello(struct srv_call *call);
int srv_op_status(struct srv_call *call);
/* op_experiment.c */
int srv_op_experiment_create(struct srv_call *call);
int srv_op_experiment_list(struct srv_call *call);
/* op_run.c */
int srv_op_run_start(struct srv_call *call);
int srv_op_run_end(struct srv_call *call);
int srv_op_run_get(struct srv_call *call);
int srv_op_run_resolve(struct srv_call *call);
int srv_op_run_list(struct srv_call *call);
/* op_metric.c */
int srv_op_log_batch(struct srv_call *call);
int srv_op_metric_history(struct srv_call *call);
int srv_op_metric_curve(struct srv_call *call);
/* op_lifecycle.c */
int srv_op_lifecycle_set(struct srv_call *call);
int srv_op_gc(struct srv_call *call);
int srv_op_lineage(struct srv_call *call);
/* op_model.c */
int srv_op_model_register(struct srv_call *call);
int srv_op_model_alias(struct srv_call *call);
int srv_op_model_tag(struct srv_call *call);
int srv_op_artifact_delete(struct srv_call *call);
int srv_op_span_batch(struct srv_call *call);
int srv_op_trace_list(struct srv_call *call);
int srv_op_trace_get(struct srv_call *call);
int srv_op_model_create(struct srv_call *call);
int srv_op_model_list(struct srv_call *call);
int srv_op_model_show(struct srv_call *call);
int srv_op_model_get(struct srv_call *call);
/* op_backup.c: the retired Backup, refused (it wrote where the client said) */
int srv_op_backup(struct srv_call *call);
/* op_artifact.c: uploads (begin, chunk, commit), list, get, read, verify */
int srv_op_artifact_begin(struct srv_call *call);
int srv_op_artifact_chunk(struct srv_call *call);
int srv_op_artifact_commit(struct srv_call *call);
int srv_op_artifact_list(struct srv_call *call);
int srv_op_artifact_get(struct srv_call *call);
int srv_op_artifact_read(struct srv_call *call);
int srv_op_artifact_verify(struct srv_call *call);
/* op_admin.c: users, grants, tokens, audit, whoami */
int srv_op_user_add(struct srv_call *call);
int srv_op_user_list(struct srv_call *call);
int srv_op_user_remove(struct srv_call *call);
int srv_op_user_set_key(struct srv_call *call);
int srv_op_user_set_role(struct srv_call *call);
int srv_op_grant_set(struct srv_call *call);
int srv_op_grant_revoke(struct srv_call *call);
int srv_op_grant_list(struct srv_call *call);
int srv_op_token_create(struct srv_call *call);
int srv_op_token_list(struct srv_call *call);
int srv_op_token_revoke(struct srv_call *call);
int srv_op_audit_list(struct srv_call *call);
int srv_op_audit_prune(struct srv_call *call);
int srv_op_whoami(struct srv_call *call);
/* op_feedback.c: scores in batches, their listing and summaries */
int srv_op_feedback_batch(struct srv_call *call);
int srv_op_feedback_list(struct srv_call *call);
int srv_op_feedback_summary(struct srv_call *call);

#endif
