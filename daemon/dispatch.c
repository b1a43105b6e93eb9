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
#include <string.h>

#include "track_limits.h"

typedef int (*srv_handler)(struct srv_call *call);

struct srv_op {
    Track__V1__Request__OpCase op;
    const char *name;
    int kind;
    srv_handler fn;
    struct srv_rule rule; /* what it needs, on what, and its audit (op.h) */
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

/* ---- the subject fields -------------------------------------------------------------- */
#define FIELD(msg, f)                                                                              \
    static const char *f_##msg##_##f(const Track__V1__Request *rq)                                 \
    {                                                                                              \
        return rq->msg ? rq->msg->f : NULL;                                                        \
    }
FIELD(run_start, experiment)
FIELD(run_end, run)
FIELD(run_get, run)
FIELD(log_batch, run)
FIELD(metric_history, run)
FIELD(metric_curve, run)
FIELD(run_resolve, run)
FIELD(lifecycle_set, run)
FIELD(lineage, run)
FIELD(artifact_begin, run)
FIELD(artifact_commit, run)
FIELD(artifact_list, run)
FIELD(artifact_get, run)
FIELD(artifact_verify, run)
FIELD(artifact_delete, run)
FIELD(span_batch, experiment)
FIELD(model_register, run)
FIELD(model_tag, target)
FIELD(model_show, name)
FIELD(model_get, ref)

/* ---- the table ---------------------------------------------------------------------- */

/* a rule: need, where the subject comes from (with its field), audit */
#define ANY                                                                                        \
    {                                                                                              \
        NEED_ANY, FROM_NONE, AUDIT_NONE, NULL                                                      \
    }
#define ON(need, from, f, a)                                                                       \
    {                                                                                              \
        need, from, a, f                                                                           \
    }
#define ROLE(need, a)                                                                              \
    {                                                                                              \
        need, FROM_NONE, a, NULL                                                                   \
    }
#define OP(c, n, k, f, r)                                                                          \
    {                                                                                              \
        TRACK__V1__REQUEST__OP_##c, n, k, f, r                                                     \
    }
static const struct srv_op ops[] = {
    OP(HELLO, "hello", SRV_READ, srv_op_hello, ANY),
    OP(STATUS, "status", SRV_READ, srv_op_status, ANY),
    OP(EXPERIMENT_CREATE, "experiment_create", SRV_WRITE, srv_op_experiment_create,
       ROLE(NEED_WRITER, AUDIT_TXN)),
    OP(EXPERIMENT_LIST, "experiment_list", SRV_READ, srv_op_experiment_list, ANY),
    OP(RUN_START, "run_start", SRV_WRITE, srv_op_run_start,
       ON(NEED_WRITE, FROM_EXPERIMENT, f_run_start_experiment, AUDIT_TXN)),
    OP(RUN_END, "run_end", SRV_WRITE, srv_op_run_end,
       ON(NEED_WRITE, FROM_RUN, f_run_end_run, AUDIT_TXN)),
    OP(RUN_GET, "run_get", SRV_READ, srv_op_run_get,
       ON(NEED_READ, FROM_RUN, f_run_get_run, AUDIT_NONE)),
    OP(RUN_LIST, "run_list", SRV_READ, srv_op_run_list, ANY),
    OP(LOG_BATCH, "log_batch", SRV_WRITE, srv_op_log_batch,
       ON(NEED_WRITE, FROM_RUN, f_log_batch_run, AUDIT_TXN)),
    OP(METRIC_HISTORY, "metric_history", SRV_READ, srv_op_metric_history,
       ON(NEED_READ, FROM_RUN, f_metric_history_run, AUDIT_NONE)),
    OP(METRIC_CURVE, "metric_curve", SRV_READ, srv_op_metric_curve,
       ON(NEED_READ, FROM_RUN, f_metric_curve_run, AUDIT_NONE)),
    OP(RUN_RESOLVE, "run_resolve", SRV_READ, srv_op_run_resolve,
       ON(NEED_READ, FROM_RUN, f_run_resolve_run, AUDIT_NONE)),
    /* a read that makes its own snapshot: not inside the worker's read transaction */
    OP(BACKUP, "backup", SRV_READ | SRV_OWN_TXN, srv_op_backup, ROLE(NEED_ADMIN, AUDIT_NONE)),
    OP(BACKUP_BEGIN, "backup_begin", SRV_READ | SRV_OWN_TXN, srv_op_backup_begin,
       ROLE(NEED_ADMIN, AUDIT_OWN)),
    OP(BACKUP_CHUNK, "backup_chunk", SRV_READ | SRV_OWN_TXN, srv_op_backup_chunk,
       ROLE(NEED_ADMIN, AUDIT_NONE)),
    OP(BACKUP_END, "backup_end", SRV_READ | SRV_OWN_TXN, srv_op_backup_end,
       ROLE(NEED_ADMIN, AUDIT_NONE)),
    OP(LIFECYCLE_SET, "lifecycle_set", SRV_WRITE, srv_op_lifecycle_set,
       ON(NEED_MANAGE, FROM_RUN, f_lifecycle_set_run, AUDIT_TXN)),
    /* a write through a handle of its own, in short transactions, on a
     * worker: never one long transaction in the loop's group commit */
    OP(GC, "gc", SRV_READ | SRV_OWN_TXN, srv_op_gc, ROLE(NEED_ADMIN, AUDIT_OWN)),
    OP(LINEAGE, "lineage", SRV_READ, srv_op_lineage,
       ON(NEED_READ, FROM_RUN, f_lineage_run, AUDIT_NONE)),
    /* artifacts (op_artifact.c): begin and commit write rows in the group
     * commit; chunks and reads touch blob files only, on a worker. A chunk
     * names only its upload (a random id its begin, checked for write on
     * the run, handed out): the writer role is asked */
    OP(ARTIFACT_BEGIN, "artifact_begin", SRV_WRITE, srv_op_artifact_begin,
       ON(NEED_WRITE, FROM_RUN, f_artifact_begin_run, AUDIT_TXN)),
    OP(ARTIFACT_CHUNK, "artifact_chunk", SRV_READ | SRV_OWN_TXN, srv_op_artifact_chunk,
       ROLE(NEED_WRITER, AUDIT_NONE)),
    OP(ARTIFACT_COMMIT, "artifact_commit", SRV_WRITE, srv_op_artifact_commit,
       ON(NEED_WRITE, FROM_RUN, f_artifact_commit_run, AUDIT_TXN)),
    OP(ARTIFACT_DELETE, "artifact_delete", SRV_WRITE, srv_op_artifact_delete,
       ON(NEED_WRITE, FROM_RUN, f_artifact_delete_run, AUDIT_TXN)),
    OP(ARTIFACT_LIST, "artifact_list", SRV_READ, srv_op_artifact_list,
       ON(NEED_READ, FROM_RUN, f_artifact_list_run, AUDIT_NONE)),
    OP(ARTIFACT_GET, "artifact_get", SRV_READ, srv_op_artifact_get,
       ON(NEED_READ, FROM_RUN, f_artifact_get_run, AUDIT_NONE)),
    OP(ARTIFACT_READ, "artifact_read", SRV_READ | SRV_OWN_TXN, srv_op_artifact_read,
       ON(NEED_READ, FROM_DIGEST, NULL, AUDIT_NONE)),
    /* minutes on a large store: no read transaction held that long */
    OP(ARTIFACT_VERIFY, "artifact_verify", SRV_READ | SRV_OWN_TXN, srv_op_artifact_verify,
       ON(NEED_READ, FROM_RUN_OR_ALL, f_artifact_verify_run, AUDIT_NONE)),
    OP(MODEL_REGISTER, "model_register", SRV_WRITE, srv_op_model_register,
       ON(NEED_WRITE, FROM_RUN, f_model_register_run, AUDIT_TXN)),
    OP(MODEL_ALIAS, "model_alias", SRV_WRITE, srv_op_model_alias,
       ON(NEED_WRITE, FROM_MODEL_ALIAS, NULL, AUDIT_TXN)),
    OP(MODEL_TAG, "model_tag", SRV_WRITE, srv_op_model_tag,
       ON(NEED_WRITE, FROM_MODEL_TARGET, f_model_tag_target, AUDIT_TXN)),
    OP(MODEL_CREATE, "model_create", SRV_WRITE, srv_op_model_create, ROLE(NEED_WRITER, AUDIT_TXN)),
    OP(MODEL_LIST, "model_list", SRV_READ, srv_op_model_list, ANY),
    OP(MODEL_SHOW, "model_show", SRV_READ, srv_op_model_show,
       ON(NEED_READ, FROM_MODEL_NAME, f_model_show_name, AUDIT_NONE)),
    OP(MODEL_GET, "model_get", SRV_READ, srv_op_model_get,
       ON(NEED_READ, FROM_MODEL_REF, f_model_get_ref, AUDIT_NONE)),
    /* traces (op_trace.c): a batch writes into its experiment; reads are
     * filtered by the caller's grants */
    OP(SPAN_BATCH, "span_batch", SRV_WRITE, srv_op_span_batch,
       ON(NEED_WRITE, FROM_EXPERIMENT, f_span_batch_experiment, AUDIT_NONE)),
    OP(TRACE_LIST, "trace_list", SRV_READ, srv_op_trace_list, ANY),
    OP(TRACE_GET, "trace_get", SRV_READ, srv_op_trace_get, ANY),
    /* identity (op_admin.c): the admin role; changes audited */
    OP(USER_ADD, "user_add", SRV_WRITE, srv_op_user_add, ROLE(NEED_ADMIN, AUDIT_TXN)),
    OP(USER_LIST, "user_list", SRV_READ, srv_op_user_list, ROLE(NEED_ADMIN, AUDIT_NONE)),
    OP(USER_REMOVE, "user_remove", SRV_WRITE, srv_op_user_remove, ROLE(NEED_ADMIN, AUDIT_TXN)),
    OP(USER_SET_KEY, "user_set_key", SRV_WRITE, srv_op_user_set_key, ROLE(NEED_ADMIN, AUDIT_TXN)),
    OP(USER_SET_ROLE, "user_set_role", SRV_WRITE, srv_op_user_set_role,
       ROLE(NEED_ADMIN, AUDIT_TXN)),
    OP(GRANT_SET, "grant_set", SRV_WRITE, srv_op_grant_set, ROLE(NEED_ADMIN, AUDIT_TXN)),
    OP(GRANT_REVOKE, "grant_revoke", SRV_WRITE, srv_op_grant_revoke, ROLE(NEED_ADMIN, AUDIT_TXN)),
    OP(GRANT_LIST, "grant_list", SRV_READ, srv_op_grant_list, ROLE(NEED_ADMIN, AUDIT_NONE)),
    OP(TOKEN_CREATE, "token_create", SRV_WRITE, srv_op_token_create, ROLE(NEED_ADMIN, AUDIT_TXN)),
    OP(TOKEN_LIST, "token_list", SRV_READ, srv_op_token_list, ROLE(NEED_ADMIN, AUDIT_NONE)),
    OP(TOKEN_REVOKE, "token_revoke", SRV_WRITE, srv_op_token_revoke, ROLE(NEED_ADMIN, AUDIT_TXN)),
    OP(AUDIT_LIST, "audit_list", SRV_READ, srv_op_audit_list, ROLE(NEED_ADMIN, AUDIT_NONE)),
    OP(AUDIT_PRUNE, "audit_prune", SRV_WRITE, srv_op_audit_prune, ROLE(NEED_ADMIN, AUDIT_TXN)),
    OP(WHOAMI, "whoami", SRV_READ, srv_op_whoami, ANY),
    /* feedback (op_feedback.c): a batch needs write on every run it names;
     * list and summary read on their run or experiment */
    OP(FEEDBACK_BATCH, "feedback_batch", SRV_WRITE, srv_op_feedback_batch,
       ON(NEED_WRITE, FROM_SCORES, NULL, AUDIT_TXN)),
    OP(FEEDBACK_LIST, "feedback_list", SRV_READ, srv_op_feedback_list,
       ON(NEED_READ, FROM_RUN_OR_EXPERIMENT, NULL, AUDIT_NONE)),
    OP(FEEDBACK_SUMMARY, "feedback_summary", SRV_READ, srv_op_feedback_summary,
       ON(NEED_READ, FROM_RUN_OR_EXPERIMENT, NULL, AUDIT_NONE)),
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

/* Appends the audit row of a handler that succeeded; -1 (call failed, so
 * that the write is rolled back with its missing row) when it cannot. */
static int audit_done(struct srv_call *call, const struct srv_op *op)
{
    struct store_err err = {0};

    switch (op->rule.audit) {
    case AUDIT_TXN:
        if (srv_audit_append(call, call->st, 0, &err) == 0)
            return 0;
        call->rs->result_case = TRACK__V1__RESPONSE__RESULT__NOT_SET;
        return srv_op_fail(call, srv_code_from_store(err.code), "audit: %s", err.msg);
    case AUDIT_OWN:
        srv_audit_own(call, 0); /* the work is done already: a failure is logged */
        return 0;
    default:
        return 0;
    }
}

void srv_dispatch(struct srv_call *call)
{
    const struct srv_op *op = find_op(call->rq);
    Track__V1__Response *rs = call->rs;
    char why[400];

    rs->request_id = call->rq->request_id;
    call->audit_refused = 0;
    memset(&call->subj, 0, sizeof call->subj);
    call->code = 0;
    call->msg[0] = '\0';
    if (call->rq->request_id.len != WIRE_ID_BYTES)
        srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                    "request_id: must be %d bytes, got %zu", WIRE_ID_BYTES,
                    call->rq->request_id.len);
    else if (!op)
        srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "unknown operation (field %d)",
                    (int)call->rq->op_case);
    else if ((op->kind & SRV_WRITE) && srv_check_failed(call->srv, why, sizeof why))
        srv_op_fail(call, TRACK__V1__CODE__UNAVAILABLE,
                    "writes are refused: the database failed its integrity check (%.300s); "
                    "stop trackd and run trackd --check",
                    why);
    else if (srv_authz_check(call, &op->rule) != 0) {
        /* a refused write is audited after its rollback (srv_audit_refusal,
         * from the loop); a worker's refusal at once */
        if (call->audit_refused && op->rule.audit == AUDIT_OWN)
            srv_audit_own(call, call->code);
    } else if (op->fn(call) == 0 && audit_done(call, op) == 0)
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
