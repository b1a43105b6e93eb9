/*
 * dispatch.c: the operation table (operation -> handler, name, kind) and
 * the call around a handler: srv_dispatch checks the request id, finds the
 * handler and turns any failure into an error response; srv_pack_response
 * bounds the reply by the frame limit. A handler gets a decoded Request and
 * a store handle and fills a Response; it never sees a socket, so the
 * nanomsg loop today and an HTTP front later call the same table.
 *
 * The handlers live in op_<noun>.c (op_server, op_experiment, op_run,
 * op_metric, op_backup), what they share in op_util.c (op.h). Every field
 * from the wire is checked there (through limits.h) before it reaches
 * storage, and every failure is answered with a specific code and a
 * message naming the field. Response pieces live in the call's arena.
 */
#include "op.h"

#include <stdio.h>
#include <stdlib.h>

#include "track_limits.h"

typedef int (*srv_handler)(struct srv_call *call);

struct srv_op {
    Track__V1__Request__OpCase op;
    const char *name;
    int kind;
    srv_handler fn;
};

int srv_code_from_store(int c)
{
    switch (c) {
    case STORE_E_INVALID:
    case STORE_E_AMBIGUOUS:
        return TRACK__V1__CODE__INVALID_ARGUMENT;
    case STORE_E_NOT_FOUND:
        return TRACK__V1__CODE__NOT_FOUND;
    case STORE_E_EXISTS:
        return TRACK__V1__CODE__ALREADY_EXISTS;
    case STORE_E_CONFLICT:
        return TRACK__V1__CODE__CONFLICT;
    case STORE_E_FULL:
        return TRACK__V1__CODE__RESOURCE_EXHAUSTED;
    case STORE_E_BUSY:
        return TRACK__V1__CODE__UNAVAILABLE;
    default:
        return TRACK__V1__CODE__INTERNAL;
    }
}

/* ---- the table ---------------------------------------------------------------------- */

#define OP(c, n, k, f)                                                                             \
    {                                                                                              \
        TRACK__V1__REQUEST__OP_##c, n, k, f                                                        \
    }
static const struct srv_op ops[] = {
    OP(HELLO, "hello", SRV_READ, srv_op_hello),
    OP(STATUS, "status", SRV_READ, srv_op_status),
    OP(EXPERIMENT_CREATE, "experiment_create", SRV_WRITE, srv_op_experiment_create),
    OP(EXPERIMENT_LIST, "experiment_list", SRV_READ, srv_op_experiment_list),
    OP(RUN_START, "run_start", SRV_WRITE, srv_op_run_start),
    OP(RUN_END, "run_end", SRV_WRITE, srv_op_run_end),
    OP(RUN_GET, "run_get", SRV_READ, srv_op_run_get),
    OP(RUN_LIST, "run_list", SRV_READ, srv_op_run_list),
    OP(LOG_BATCH, "log_batch", SRV_WRITE, srv_op_log_batch),
    OP(METRIC_HISTORY, "metric_history", SRV_READ, srv_op_metric_history),
    OP(METRIC_CURVE, "metric_curve", SRV_READ, srv_op_metric_curve),
    OP(RUN_RESOLVE, "run_resolve", SRV_READ, srv_op_run_resolve),
    /* a read that makes its own snapshot: not inside the worker's read transaction */
    OP(BACKUP, "backup", SRV_READ | SRV_OWN_TXN, srv_op_backup),
    OP(BACKUP_BEGIN, "backup_begin", SRV_READ | SRV_OWN_TXN, srv_op_backup_begin),
    OP(BACKUP_CHUNK, "backup_chunk", SRV_READ | SRV_OWN_TXN, srv_op_backup_chunk),
    OP(BACKUP_END, "backup_end", SRV_READ | SRV_OWN_TXN, srv_op_backup_end),
    OP(LIFECYCLE_SET, "lifecycle_set", SRV_WRITE, srv_op_lifecycle_set),
    /* a write through a handle of its own, in short transactions, on a
     * worker: never one long transaction in the loop's group commit */
    OP(GC, "gc", SRV_READ | SRV_OWN_TXN, srv_op_gc),
    OP(LINEAGE, "lineage", SRV_READ, srv_op_lineage),
    /* artifacts (op_artifact.c): begin and commit write rows in the group
     * commit; chunks and reads touch blob files only, on a worker */
    OP(ARTIFACT_BEGIN, "artifact_begin", SRV_WRITE, srv_op_artifact_begin),
    OP(ARTIFACT_CHUNK, "artifact_chunk", SRV_READ | SRV_OWN_TXN, srv_op_artifact_chunk),
    OP(ARTIFACT_COMMIT, "artifact_commit", SRV_WRITE, srv_op_artifact_commit),
    OP(ARTIFACT_LIST, "artifact_list", SRV_READ, srv_op_artifact_list),
    OP(ARTIFACT_GET, "artifact_get", SRV_READ, srv_op_artifact_get),
    OP(ARTIFACT_READ, "artifact_read", SRV_READ | SRV_OWN_TXN, srv_op_artifact_read),
    /* minutes on a large store: no read transaction held that long */
    OP(ARTIFACT_VERIFY, "artifact_verify", SRV_READ | SRV_OWN_TXN, srv_op_artifact_verify),
    OP(MODEL_REGISTER, "model_register", SRV_WRITE, srv_op_model_register),
    OP(MODEL_ALIAS, "model_alias", SRV_WRITE, srv_op_model_alias),
    OP(MODEL_TAG, "model_tag", SRV_WRITE, srv_op_model_tag),
    OP(MODEL_LIST, "model_list", SRV_READ, srv_op_model_list),
    OP(MODEL_SHOW, "model_show", SRV_READ, srv_op_model_show),
    OP(MODEL_GET, "model_get", SRV_READ, srv_op_model_get),
    /* feedback (op_feedback.c, branch feedback): a batch of scores is a write
     * on the runs it names; list and summary are reads (permission: write on
     * the runs' experiment, read for the other two) */
    OP(FEEDBACK_BATCH, "feedback_batch", SRV_WRITE, srv_op_feedback_batch),
    OP(FEEDBACK_LIST, "feedback_list", SRV_READ, srv_op_feedback_list),
    OP(FEEDBACK_SUMMARY, "feedback_summary", SRV_READ, srv_op_feedback_summary),
};

static const struct srv_op *find_op(const Track__V1__Request *rq)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (ops[i].op == rq->op_case)
            return &ops[i];
    return NULL;
}

int srv_op_kind(const Track__V1__Request *rq)
{
    const struct srv_op *op = find_op(rq);
    return op ? op->kind & (SRV_READ | SRV_WRITE) : 0;
}

int srv_op_own_txn(const Track__V1__Request *rq)
{
    const struct srv_op *op = find_op(rq);
    return op ? (op->kind & SRV_OWN_TXN) != 0 : 0;
}

const char *srv_op_name(const Track__V1__Request *rq)
{
    const struct srv_op *op = find_op(rq);
    return op ? op->name : "unknown";
}

void srv_error_response(Track__V1__Response *rs, Track__V1__Error *e, int code, const char *msg)
{
    track__v1__error__init(e);
    e->code = (Track__V1__Code)code;
    e->message = wire_str(msg);
    rs->error = e;
    rs->result_case = TRACK__V1__RESPONSE__RESULT__NOT_SET;
}

void srv_dispatch(struct srv_call *call)
{
    const struct srv_op *op = find_op(call->rq);
    Track__V1__Response *rs = call->rs;

    rs->request_id = call->rq->request_id;
    call->code = 0;
    call->msg[0] = '\0';
    if (call->rq->request_id.len != WIRE_ID_BYTES)
        srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                    "request_id: must be %d bytes, got %zu", WIRE_ID_BYTES,
                    call->rq->request_id.len);
    else if (!op)
        srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "unknown operation (field %d)",
                    (int)call->rq->op_case);
    else if (op->fn(call) == 0)
        return;
    if (!call->code)
        srv_op_fail(call, TRACK__V1__CODE__INTERNAL, "operation failed");
    Track__V1__Error *e = srv_alloc(&call->arena, sizeof(*e));
    if (!e) {
        /* in the call, not static: calls run on several threads at once */
        Track__V1__Error *oom_err = &call->oom_err;
        track__v1__error__init(oom_err);
        oom_err->code = TRACK__V1__CODE__RESOURCE_EXHAUSTED;
        oom_err->message = wire_str("daemon out of memory");
        rs->error = oom_err;
        rs->result_case = TRACK__V1__RESPONSE__RESULT__NOT_SET;
        return;
    }
    srv_error_response(rs, e, call->code, call->msg);
}

uint8_t *srv_pack_response(Track__V1__Response *rs, size_t *len)
{
    size_t n = track__v1__response__get_packed_size(rs);
    if (n > LIMIT_FRAME_BYTES) {
        Track__V1__Response small = TRACK__V1__RESPONSE__INIT;
        Track__V1__Error e;
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "reply of %zu bytes exceeds the frame limit of %u bytes; "
                 "ask for less (limit, max_points)",
                 n, LIMIT_FRAME_BYTES);
        small.request_id = rs->request_id;
        srv_error_response(&small, &e, TRACK__V1__CODE__RESOURCE_EXHAUSTED, msg);
        return srv_pack_response(&small, len);
    }
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    *len = track__v1__response__pack(rs, buf);
    return buf;
}
