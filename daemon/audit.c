/*
 * audit.c: the daemon's side of the audit table (store_audit.c). dispatch
 * appends one row for every write and admin action its table marks, in the
 * request's own transaction, so a write and its row commit or vanish
 * together; a row that cannot be written fails the write. A write refused
 * for permission rolls back with its savepoint, so its row is appended
 * afterwards (srv_audit_refusal, called by the loop). Operations a worker
 * runs (gc, backup) append theirs in a short transaction of a handle of
 * their own.
 *
 * A row names who (the user, or the owner's login name for a local caller,
 * and the sealed key when there is one), the operation, the experiment and
 * run dispatch's check found, a short detail made here from the request
 * (and the reply, for what only the reply knows) and the wire code.
 */
#include "op.h"

#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char owner[STORE_USER_NAME_MAX + 1];
static pthread_once_t owner_once = PTHREAD_ONCE_INIT;

static void owner_init(void)
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res) == 0 && res && res->pw_name)
        snprintf(owner, sizeof owner, "%s", res->pw_name);
    else
        snprintf(owner, sizeof owner, "uid%u", (unsigned)geteuid());
}

const char *srv_owner_name(void)
{
    pthread_once(&owner_once, owner_init);
    return owner;
}

static const char *str(const char *s)
{
    return s ? s : "";
}

/* The detail of a row: what the operation changed, in a few words. */
static void detail_of(const struct srv_call *call, char *d, size_t cap)
{
    const Track__V1__Request *rq = call->rq;
    const Track__V1__Response *rs = call->rs;

    d[0] = '\0';
    switch (rq->op_case) {
    case TRACK__V1__REQUEST__OP_EXPERIMENT_CREATE:
        snprintf(d, cap, "experiment %.100s", str(rq->experiment_create->name));
        break;
    case TRACK__V1__REQUEST__OP_RUN_START:
        snprintf(d, cap, "run start name=%.100s", str(rq->run_start->name));
        break;
    case TRACK__V1__REQUEST__OP_RUN_END:
        if (rq->run_end->n_metrics) {
            size_t points = 0;
            for (size_t i = 0; i < rq->run_end->n_metrics; i++)
                points += rq->run_end->metrics[i]->n_values;
            snprintf(d, cap, "run end status=%d series=%zu points=%zu", (int)rq->run_end->status,
                     rq->run_end->n_metrics, points);
        } else {
            snprintf(d, cap, "run end status=%d", (int)rq->run_end->status);
        }
        break;
    case TRACK__V1__REQUEST__OP_LOG_BATCH: {
        size_t points = 0;
        for (size_t i = 0; i < rq->log_batch->n_metrics; i++)
            if (rq->log_batch->metrics[i])
                points += rq->log_batch->metrics[i]->n_values;
        snprintf(d, cap, "params=%zu tags=%zu series=%zu points=%zu", rq->log_batch->n_params,
                 rq->log_batch->n_tags, rq->log_batch->n_metrics, points);
        break;
    }
    case TRACK__V1__REQUEST__OP_LIFECYCLE_SET:
        snprintf(d, cap, "run %s", rq->lifecycle_set->deleted ? "delete" : "restore");
        break;
    case TRACK__V1__REQUEST__OP_GC:
        if (rs->result_case == TRACK__V1__RESPONSE__RESULT_GC && rs->gc)
            snprintf(d, cap, "gc%s grace_ms=%lld runs=%lld rows=%lld blobs=%lld",
                     rq->gc->dry_run ? " dry-run" : "", (long long)rq->gc->grace_ms,
                     (long long)rs->gc->runs_count, (long long)rs->gc->rows_removed,
                     (long long)rs->gc->blobs_count);
        else
            snprintf(d, cap, "gc%s grace_ms=%lld", rq->gc->dry_run ? " dry-run" : "",
                     (long long)rq->gc->grace_ms);
        break;
    case TRACK__V1__REQUEST__OP_BACKUP_BEGIN:
        if (rs->result_case == TRACK__V1__RESPONSE__RESULT_BACKUP_BEGIN && rs->backup_begin)
            snprintf(d, cap, "backup snapshot bytes=%lld", (long long)rs->backup_begin->bytes);
        else
            snprintf(d, cap, "backup");
        break;
    case TRACK__V1__REQUEST__OP_ARTIFACT_BEGIN:
        snprintf(d, cap, "artifact %.200s size=%lld", str(rq->artifact_begin->path),
                 (long long)rq->artifact_begin->size);
        break;
    case TRACK__V1__REQUEST__OP_ARTIFACT_COMMIT:
        snprintf(d, cap, "artifact %.200s", str(rq->artifact_commit->path));
        break;
    case TRACK__V1__REQUEST__OP_MODEL_REGISTER:
        if (rs->result_case == TRACK__V1__RESPONSE__RESULT_MODEL_REGISTER && rs->model_register &&
            rs->model_register->version)
            snprintf(d, cap, "model %.100s version %lld from %.100s", str(rq->model_register->name),
                     (long long)rs->model_register->version->version,
                     str(rq->model_register->path));
        else
            snprintf(d, cap, "model %.100s from %.100s", str(rq->model_register->name),
                     str(rq->model_register->path));
        break;
    case TRACK__V1__REQUEST__OP_MODEL_ALIAS:
        if (rs->result_case == TRACK__V1__RESPONSE__RESULT_MODEL_ALIAS && rs->model_alias &&
            rs->model_alias->move)
            snprintf(d, cap, "model %.100s alias %.100s -> %lld", str(rq->model_alias->name),
                     str(rq->model_alias->alias), (long long)rs->model_alias->move->to_version);
        else
            snprintf(d, cap, "model %.100s alias %.100s -> %.100s", str(rq->model_alias->name),
                     str(rq->model_alias->alias), str(rq->model_alias->version));
        break;
    case TRACK__V1__REQUEST__OP_MODEL_TAG:
        snprintf(d, cap, "model tag %.100s %.60s", str(rq->model_tag->target),
                 str(rq->model_tag->key));
        break;
    case TRACK__V1__REQUEST__OP_USER_ADD:
        snprintf(d, cap, "user add %.64s role=%.10s%s", str(rq->user_add->name),
                 str(rq->user_add->role), rq->user_add->key.len ? " key" : "");
        break;
    case TRACK__V1__REQUEST__OP_USER_REMOVE:
        snprintf(d, cap, "user remove %.64s", str(rq->user_remove->name));
        break;
    case TRACK__V1__REQUEST__OP_USER_SET_KEY:
        snprintf(d, cap, "user set-key %.64s%s", str(rq->user_set_key->name),
                 rq->user_set_key->key.len ? "" : " (removed)");
        break;
    case TRACK__V1__REQUEST__OP_USER_SET_ROLE:
        snprintf(d, cap, "user set-role %.64s %.10s", str(rq->user_set_role->name),
                 str(rq->user_set_role->role));
        break;
    case TRACK__V1__REQUEST__OP_GRANT_SET:
        snprintf(d, cap, "grant %.64s %.10s", str(rq->grant_set->user), str(rq->grant_set->level));
        break;
    case TRACK__V1__REQUEST__OP_GRANT_REVOKE:
        snprintf(d, cap, "revoke %.64s", str(rq->grant_revoke->user));
        break;
    case TRACK__V1__REQUEST__OP_TOKEN_CREATE:
        if (rs->result_case == TRACK__V1__RESPONSE__RESULT_TOKEN_CREATE && rs->token_create &&
            rs->token_create->token)
            snprintf(d, cap, "token create %.64s id=%lld expires_ms=%lld",
                     str(rq->token_create->user), (long long)rs->token_create->token->id,
                     (long long)rq->token_create->expires_ms);
        else
            snprintf(d, cap, "token create %.64s", str(rq->token_create->user));
        break;
    case TRACK__V1__REQUEST__OP_TOKEN_REVOKE:
        snprintf(d, cap, "token revoke %lld", (long long)rq->token_revoke->id);
        break;
    case TRACK__V1__REQUEST__OP_AUDIT_PRUNE:
        if (rs->result_case == TRACK__V1__RESPONSE__RESULT_AUDIT_PRUNE && rs->audit_prune)
            snprintf(d, cap, "audit prune before_ms=%lld removed=%lld",
                     (long long)rq->audit_prune->before_ms, (long long)rs->audit_prune->removed);
        else
            snprintf(d, cap, "audit prune before_ms=%lld", (long long)rq->audit_prune->before_ms);
        break;
    default:
        break;
    }
}

/* The experiment of a row: the check's subject, or the grant's experiment. */
static const char *experiment_of(const struct srv_call *call)
{
    const Track__V1__Request *rq = call->rq;
    if (call->subj.experiment[0])
        return call->subj.experiment;
    if (rq->op_case == TRACK__V1__REQUEST__OP_GRANT_SET)
        return rq->grant_set->experiment;
    if (rq->op_case == TRACK__V1__REQUEST__OP_GRANT_REVOKE)
        return rq->grant_revoke->experiment;
    if (rq->op_case == TRACK__V1__REQUEST__OP_EXPERIMENT_CREATE)
        return rq->experiment_create->name;
    return NULL;
}

int srv_audit_append(struct srv_call *call, struct store *st, int code, struct store_err *err)
{
    char detail[STORE_AUDIT_DETAIL_MAX];
    const struct srv_caller *c = call->caller;
    const char *exp = experiment_of(call);
    char expbuf[LIMIT_NAME_BYTES + 1];
    struct store_audit a = {
        .ms = wire_now_ms(),
        .user = c && !c->local && c->name[0] ? c->name : srv_owner_name(),
        .op = srv_op_name(call->rq),
        .has_run = call->subj.has_run,
        .detail = detail,
        .code = code,
    };

    detail_of(call, detail, sizeof detail);
    snprintf(expbuf, sizeof expbuf, "%s", exp ? exp : ""); /* bounded: names come from the wire */
    a.experiment = expbuf;
    if (c && !c->local && c->has_key) {
        a.has_key = 1;
        memcpy(a.key, c->key, STORE_KEY_BYTES);
    }
    memcpy(a.run, call->subj.run, 16);
    if (call->rq->op_case == TRACK__V1__REQUEST__OP_RUN_START &&
        call->rq->run_start->run_id.len == 16) {
        a.has_run = 1; /* the run it makes, named by the client */
        memcpy(a.run, call->rq->run_start->run_id.data, 16);
    }
    return store_audit_add(st, &a, err);
}

int srv_audit_own(struct srv_call *call, int code)
{
    struct store_opts so = {0};
    struct store_err err = {0};
    struct store *w = NULL;
    int rc;

    if (!call->srv) /* a store opened by a tool: nothing to write to beside it */
        return 0;
    so.durability = call->srv->cfg.durability;
    rc = store_open(call->srv->cfg.db_path, &so, &w, &err);
    if (rc == 0)
        rc = store_begin(w, &err);
    if (rc == 0) {
        rc = srv_audit_append(call, w, code, &err);
        rc = rc ? rc : store_commit(w, &err);
        if (rc)
            store_rollback(w);
    }
    store_close(w);
    if (rc)
        srv_log(SRV_LOG_ERROR, "audit", "%s: cannot append its audit row: %s",
                srv_op_name(call->rq), err.msg);
    return rc;
}

void srv_audit_refusal(struct srv_call *call, int in_txn)
{
    struct store_err err = {0};
    int rc = 0;

    if (!call->audit_refused)
        return;
    if (!in_txn)
        rc = store_begin(call->st, &err);
    if (rc == 0)
        rc = srv_audit_append(call, call->st, call->code, &err);
    if (!in_txn) {
        if (rc == 0)
            rc = store_commit(call->st, &err);
        if (rc)
            store_rollback(call->st);
    }
    if (rc)
        srv_log(SRV_LOG_WARN, "audit", "%s refused: cannot append its audit row: %s",
                srv_op_name(call->rq), err.msg);
}
