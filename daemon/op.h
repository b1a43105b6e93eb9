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
 * params, 1 tags, 2 metrics) and the last key sent in that section. */

#define REPLY_PAGE_BYTES (LIMIT_FRAME_BYTES / 4)
#define REPLY_SLACK      64 /* the envelope: request id, result tag, lengths */
#define TOKEN_HEAD       11

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
};

/* What a sub-message of packed size n costs inside a repeated field. */
size_t srv_op_item_cost(size_t n);
/* Decodes page token t into c (all zero for an empty token: the first
 * page); -1 (INVALID_ARGUMENT) for a token this server did not give. */
int srv_op_token_decode(struct srv_call *call, ProtobufCBinaryData t, struct page_cursor *c);
/* Encodes (run_index, pg->section, pg->key) as a page token in the arena. */
int srv_op_token_encode(struct srv_call *call, int64_t run_index, const struct page *pg,
                        ProtobufCBinaryData *t);
/* An empty page of REPLY_PAGE_BYTES, less `used` bytes already in the reply
 * (when they are under half a page). */
struct page srv_op_page_new(size_t used);

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
/* op_feedback.c: scores in batches, their listing and summaries */
int srv_op_feedback_batch(struct srv_call *call);
int srv_op_feedback_list(struct srv_call *call);
int srv_op_feedback_summary(struct srv_call *call);

#endif
