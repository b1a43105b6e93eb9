/*
 * authz.c: dispatch's permission check (DESIGN.md "Identity", README "Roles
 * and grants"). Before a handler runs, srv_authz_check finds what the
 * request is about from the field its table row names (an experiment, a
 * run, a model version, a blob) and compares the caller's level there with
 * the row's need. The level itself is store_grant.c's rule, read from the
 * tables on every request, so a grant or a revocation counts from the next
 * one. No handler checks permissions; list handlers only pass srv_viewer on
 * to the store, which leaves out what the caller may not read.
 *
 * What the caller may not read does not exist for it: a run, experiment or
 * model it cannot see is answered NOT_FOUND in the words the store uses for
 * one that is missing, and an ambiguous run prefix is answered without its
 * candidates. A visible subject the caller may not change is
 * PERMISSION_DENIED naming the user, their level and the need.
 *
 * The local owner (caller NULL or local) passes every check; the subject is
 * still found for the audit row when the operation is audited.
 */
#include "op.h"

#include <stdio.h>
#include <string.h>

static int is_local(const struct srv_call *call)
{
    return !call->caller || call->caller->local;
}

int srv_sees_all(const struct srv_call *call)
{
    return is_local(call) || call->caller->role >= STORE_ROLE_ADMIN;
}

const struct store_viewer *srv_viewer(const struct srv_call *call, struct store_viewer *buf)
{
    if (srv_sees_all(call))
        return NULL;
    memset(buf, 0, sizeof *buf);
    buf->user_id = call->caller->user_id;
    buf->role = call->caller->role;
    return buf;
}

static const char *who(const struct srv_call *call)
{
    return call->caller && call->caller->name[0] ? call->caller->name : "(unnamed)";
}

static const char *need_level_name(int need)
{
    return need == NEED_MANAGE ? "manage" : need == NEED_WRITE ? "write" : "read";
}

static int need_level(int need)
{
    return need == NEED_MANAGE  ? STORE_LEVEL_MANAGE
           : need == NEED_WRITE ? STORE_LEVEL_WRITE
                                : STORE_LEVEL_READ;
}

/* A refusal: audited when the operation is. */
static int refuse(struct srv_call *call, const struct srv_rule *rule, int code, const char *msg)
{
    call->audit_refused = rule->audit != AUDIT_NONE;
    return srv_op_fail(call, code, "%s", msg);
}

static int deny_role(struct srv_call *call, const struct srv_rule *rule, const char *role_needed)
{
    char msg[300];
    snprintf(msg, sizeof msg, "permission denied: user %s has role %s; %s needs the %s role",
             who(call), store_role_name(call->caller->role), srv_op_name(call->rq), role_needed);
    return refuse(call, rule, TRACK__V1__CODE__PERMISSION_DENIED, msg);
}

/* Compares level (on subj.experiment) with the rule's need. */
static int judge(struct srv_call *call, const struct srv_rule *rule, int level,
                 const char *not_found)
{
    char msg[600];

    if (level < STORE_LEVEL_READ)
        return refuse(call, rule, TRACK__V1__CODE__NOT_FOUND, not_found);
    if (level >= need_level(rule->need))
        return 0;
    snprintf(msg, sizeof msg,
             "permission denied: user %s has %s on experiment \"%.250s\"; %s needs %s", who(call),
             store_level_name(level), call->subj.experiment, srv_op_name(call->rq),
             need_level_name(rule->need));
    return refuse(call, rule, TRACK__V1__CODE__PERMISSION_DENIED, msg);
}

/* Finds the run `run` names (as srv_op_resolve_run does) and its experiment.
 * 1: found (call->subj filled, *eid set); 0: not resolvable here (the
 * handler will say why); -1: the call failed. */
static int find_run(struct srv_call *call, const char *run, int64_t *eid)
{
    struct store_err err = {0};
    uint8_t id[16];
    int rc;

    if (!run || !wire_is_run_prefix(run))
        return 0;
    if (strlen(run) == 32) {
        if (wire_unhex(run, id))
            return 0;
    } else {
        rc = store_run_resolve(call->st, run, id, &err);
        if (rc == STORE_E_AMBIGUOUS && !srv_sees_all(call))
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                               "run id \"%.32s\" is ambiguous; give more of its characters", run);
        if (rc)
            return 0;
    }
    rc = store_run_experiment(call->st, id, eid, call->subj.experiment,
                              sizeof call->subj.experiment, &err);
    if (rc == STORE_E_NOT_FOUND)
        return 0;
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    memcpy(call->subj.run, id, 16);
    call->subj.has_run = 1;
    return 1;
}

static int run_not_found_msg(const char *run, char *buf, size_t cap)
{
    char hex[33];
    if (strlen(run) == 32) {
        snprintf(hex, sizeof hex, "%s", run);
        for (char *p = hex; *p; p++)
            if (*p >= 'A' && *p <= 'F')
                *p = (char)(*p - 'A' + 'a');
        return snprintf(buf, cap, "run %s not found", hex);
    }
    return snprintf(buf, cap, "no run id starts with \"%.32s\"", run);
}

static int check_run(struct srv_call *call, const struct srv_rule *rule, const char *run)
{
    struct store_viewer vb;
    const struct store_viewer *v = srv_viewer(call, &vb);
    struct store_err err = {0};
    char nf[100];
    int64_t eid = 0;
    int level = 0, rc;

    if (is_local(call) && rule->audit == AUDIT_NONE)
        return 0;
    rc = find_run(call, run, &eid);
    if (rc <= 0 || is_local(call))
        return rc < 0 ? -1 : 0;
    if ((rc = store_grant_level(call->st, v, eid, &level, &err)))
        return srv_op_fail_store(call, rc, &err);
    run_not_found_msg(run, nf, sizeof nf);
    return judge(call, rule, level, nf);
}

struct ref_run {
    int found;
    uint8_t run[16];
    int64_t latest;
};

static int ref_run_cb(void *ctx, const struct store_model_version *mv)
{
    struct ref_run *r = ctx;
    memcpy(r->run, mv->run, 16);
    r->found = 1;
    return 0;
}

static int latest_cb(void *ctx, const struct store_model *m)
{
    ((struct ref_run *)ctx)->latest = m->latest_version;
    return 0;
}

/* The run of the model version `ref` names; the model's name for messages
 * is what precedes '/' or '@'. */
static int check_model_ref(struct srv_call *call, const struct srv_rule *rule, const char *ref)
{
    struct store_viewer vb;
    const struct store_viewer *v = srv_viewer(call, &vb);
    struct store_err err = {0};
    struct ref_run r = {0};
    char name[STORE_MODEL_NAME_MAX + 1], nf[STORE_MODEL_NAME_MAX + 40];
    int64_t eid = 0;
    int level = 0, rc;

    if (is_local(call) && rule->audit == AUDIT_NONE)
        return 0;
    if (!ref || strlen(ref) > 2 * STORE_MODEL_NAME_MAX + 1)
        return 0;
    snprintf(name, sizeof name, "%.*s", (int)strcspn(ref, "/@"), ref);
    if (store_model_version_get(call->st, ref, ref_run_cb, &r, &err) || !r.found)
        return 0; /* the handler says what is missing */
    rc = store_run_experiment(call->st, r.run, &eid, call->subj.experiment,
                              sizeof call->subj.experiment, &err);
    if (rc == 0) {
        memcpy(call->subj.run, r.run, 16);
        call->subj.has_run = 1;
    }
    if (is_local(call))
        return 0;
    if (rc == 0 && (rc = store_grant_level(call->st, v, eid, &level, &err)))
        return srv_op_fail_store(call, rc, &err);
    snprintf(nf, sizeof nf, "model \"%s\" not found", name);
    return judge(call, rule, rc ? 0 : level, nf);
}

static int check_model_target(struct srv_call *call, const struct srv_rule *rule,
                              const char *target)
{
    struct store_err err = {0};
    struct ref_run r = {0};
    char ref[STORE_MODEL_NAME_MAX + 32];

    if (!target || strpbrk(target, "/@"))
        return check_model_ref(call, rule, target);
    /* a model's own tag: judged on its latest version's experiment */
    if (strlen(target) > STORE_MODEL_NAME_MAX ||
        store_model_get(call->st, target, latest_cb, &r, &err))
        return 0;
    snprintf(ref, sizeof ref, "%s/%lld", target, (long long)r.latest);
    return check_model_ref(call, rule, ref);
}

static int check_model_alias(struct srv_call *call, const struct srv_rule *rule)
{
    const Track__V1__ModelAlias *q = call->rq->model_alias;
    char ref[2 * STORE_MODEL_NAME_MAX + 2];
    const char *ver;

    if (!q || !q->name || !q->version || strlen(q->name) > STORE_MODEL_NAME_MAX ||
        strlen(q->version) > STORE_MODEL_NAME_MAX)
        return 0;
    /* a removal is about the version the alias points at now */
    ver = q->remove && q->alias && strlen(q->alias) <= STORE_MODEL_NAME_MAX ? q->alias : q->version;
    snprintf(ref, sizeof ref, "%s%c%s", q->name,
             ver[0] && strspn(ver, "0123456789") == strlen(ver) ? '/' : '@', ver);
    return check_model_ref(call, rule, ref);
}

static int check_experiment(struct srv_call *call, const struct srv_rule *rule, const char *name)
{
    struct store_viewer vb;
    const struct store_viewer *v = srv_viewer(call, &vb);
    struct store_err err = {0};
    char nf[LIMIT_NAME_BYTES + 40];
    int64_t eid = 0;
    int level = 0, rc;

    if (!name || !*name)
        name = "Default";
    if (strlen(name) > LIMIT_NAME_BYTES)
        return 0; /* the handler refuses it */
    snprintf(call->subj.experiment, sizeof call->subj.experiment, "%s", name);
    if (is_local(call))
        return 0;
    rc = store_experiment_id(call->st, name, &eid, &err);
    if (rc == STORE_E_NOT_FOUND) /* it would be made: the writer role */
        return call->caller->role >= STORE_ROLE_WRITER ? 0 : deny_role(call, rule, "writer");
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    if ((rc = store_grant_level(call->st, v, eid, &level, &err)))
        return srv_op_fail_store(call, rc, &err);
    snprintf(nf, sizeof nf, "experiment \"%s\" not found", name);
    return judge(call, rule, level, nf);
}

static int check_model_name(struct srv_call *call, const struct srv_rule *rule, const char *name)
{
    struct store_viewer vb;
    const struct store_viewer *v = srv_viewer(call, &vb);
    struct store_err err = {0};
    char nf[STORE_MODEL_NAME_MAX + 40];
    int visible = 0, rc;

    if (!v || !name || strlen(name) > STORE_MODEL_NAME_MAX)
        return 0;
    if ((rc = store_model_visible(call->st, v, name, &visible, &err)))
        return srv_op_fail_store(call, rc, &err);
    snprintf(nf, sizeof nf, "model \"%s\" not found", name);
    return visible ? 0 : refuse(call, rule, TRACK__V1__CODE__NOT_FOUND, nf);
}

static int check_digest(struct srv_call *call, const struct srv_rule *rule)
{
    struct store_viewer vb;
    const struct store_viewer *v = srv_viewer(call, &vb);
    const Track__V1__ArtifactRead *q = call->rq->artifact_read;
    struct store_err err = {0};
    int visible = 0, rc;

    if (!v || !q || q->digest.len != 32)
        return 0;
    if ((rc = store_digest_visible(call->st, v, q->digest.data, &visible, &err)))
        return srv_op_fail_store(call, rc, &err);
    return visible ? 0 : refuse(call, rule, TRACK__V1__CODE__NOT_FOUND, "blob not found");
}

/* FeedbackBatch: the need on each distinct run its scores name (a batch
 * of an LLM judge names one run a thousand times: checked once). */
/* A score of a trace: the caller's level on the trace's experiment. */
static int check_trace(struct srv_call *call, const struct srv_rule *rule, const uint8_t id[16])
{
    struct store_viewer vb;
    const struct store_viewer *v = srv_viewer(call, &vb);
    struct store_err err = {0};
    uint8_t run[16];
    int64_t eid = 0;
    int has_run = 0, level = 0, rc;
    char nf[64], hex[33];

    if (is_local(call))
        return 0; /* the handler says NOT_FOUND for a trace that is not there */
    rc = store_trace_owner(call->st, id, &eid, run, &has_run, &err);
    wire_hex(id, hex);
    snprintf(nf, sizeof nf, "no trace %s", hex);
    if (rc == STORE_E_NOT_FOUND)
        return srv_op_fail(call, TRACK__V1__CODE__NOT_FOUND, "%s", nf);
    if (rc || (rc = store_grant_level(call->st, v, eid, &level, &err)))
        return srv_op_fail_store(call, rc, &err);
    return judge(call, rule, level, nf);
}

static int check_scores(struct srv_call *call, const struct srv_rule *rule)
{
    const Track__V1__FeedbackBatch *q = call->rq->feedback_batch;
    const char **done = NULL; /* the distinct runs checked so far */
    size_t n_done = 0;
    int rc = 0;

    if (!q || q->n_scores == 0)
        return 0;
    if (!(done = malloc(q->n_scores * sizeof(*done))))
        return srv_op_oom(call);
    for (size_t i = 0; i < q->n_scores && !rc; i++) {
        const char *run = q->scores[i] ? q->scores[i]->run : NULL;
        size_t j = n_done;
        if ((!run || !*run) && q->scores[i] && q->scores[i]->trace_id.len == 16) {
            rc = check_trace(call, rule, q->scores[i]->trace_id.data);
            continue; /* a trace's score: on the trace's experiment */
        }
        if (!run || !*run)
            continue; /* the handler refuses it, naming scores[i] */
        /* newest first: a batch mostly repeats the run it just named */
        while (j > 0 && strcmp(done[j - 1], run) != 0)
            j--;
        if (j > 0)
            continue;
        rc = check_run(call, rule, run);
        done[n_done++] = run;
    }
    free(done);
    return rc ? -1 : 0;
}

/* FeedbackList and FeedbackSummary: their run, else their experiment (one
 * that does not exist is left to the handler's NOT_FOUND). */
static int check_run_or_experiment(struct srv_call *call, const struct srv_rule *rule)
{
    const char *run = NULL, *exp = NULL;
    if (call->rq->op_case == TRACK__V1__REQUEST__OP_FEEDBACK_LIST && call->rq->feedback_list) {
        /* a trace's scores: the caller's level on the trace's experiment */
        if (call->rq->feedback_list->trace_id.len == 16)
            return check_trace(call, rule, call->rq->feedback_list->trace_id.data) ? -1 : 0;
        run = call->rq->feedback_list->run;
        exp = call->rq->feedback_list->experiment;
    } else if (call->rq->feedback_summary) {
        run = call->rq->feedback_summary->run;
        exp = call->rq->feedback_summary->experiment;
    }
    if (run && *run)
        return check_run(call, rule, run);
    if (!exp || !*exp || is_local(call) || strlen(exp) > LIMIT_NAME_BYTES)
        return 0;
    struct store_viewer vb;
    const struct store_viewer *v = srv_viewer(call, &vb);
    struct store_err err = {0};
    char nf[LIMIT_NAME_BYTES + 40];
    int64_t eid = 0;
    int level = 0, rc = store_experiment_id(call->st, exp, &eid, &err);
    if (rc == STORE_E_NOT_FOUND)
        return 0;
    if (rc || (rc = store_grant_level(call->st, v, eid, &level, &err)))
        return srv_op_fail_store(call, rc, &err);
    snprintf(call->subj.experiment, sizeof call->subj.experiment, "%s", exp);
    snprintf(nf, sizeof nf, "experiment \"%s\" not found", exp);
    return judge(call, rule, level, nf);
}

int srv_authz_check(struct srv_call *call, const struct srv_rule *rule)
{
    const char *field = rule->field ? rule->field(call->rq) : NULL;
    int local = is_local(call);

    switch (rule->need) {
    case NEED_WRITER:
        return local || call->caller->role >= STORE_ROLE_WRITER ? 0
                                                                : deny_role(call, rule, "writer");
    case NEED_ADMIN:
        return local || call->caller->role >= STORE_ROLE_ADMIN ? 0 : deny_role(call, rule, "admin");
    case NEED_ANY:
        return 0;
    default:
        break;
    }
    switch (rule->from) {
    case FROM_EXPERIMENT:
        return check_experiment(call, rule, field);
    case FROM_RUN:
        return check_run(call, rule, field);
    case FROM_RUN_OR_ALL:
        if (!field || !*field)
            return local || call->caller->role >= STORE_ROLE_ADMIN ? 0
                                                                   : deny_role(call, rule, "admin");
        return check_run(call, rule, field);
    case FROM_MODEL_REF:
        return check_model_ref(call, rule, field);
    case FROM_MODEL_TARGET:
        return check_model_target(call, rule, field);
    case FROM_MODEL_ALIAS:
        return check_model_alias(call, rule);
    case FROM_MODEL_NAME:
        return check_model_name(call, rule, field);
    case FROM_DIGEST:
        return check_digest(call, rule);
    case FROM_SCORES:
        return check_scores(call, rule);
    case FROM_RUN_OR_EXPERIMENT:
        return check_run_or_experiment(call, rule);
    default:
        return 0;
    }
}

int srv_authz_run_level(struct srv_call *call, const uint8_t run[16], int *level)
{
    struct store_viewer vb;
    const struct store_viewer *v = srv_viewer(call, &vb);
    struct store_err err = {0};
    int rc;

    if (!v) {
        *level = STORE_LEVEL_MANAGE;
        return 0;
    }
    rc = store_grant_run_level(call->st, v, run, level, &err);
    return rc ? srv_op_fail_store(call, rc, &err) : 0;
}
