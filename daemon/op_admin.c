/*
 * op_admin.c: the handlers of identity (README "Roles and grants"): users
 * (add, list, remove, set key, set role), grants (set, revoke, list),
 * tokens (create from a client-made hash, list, revoke), the audit table
 * (list, paged newest first; prune) and whoami. dispatch.c's table asks
 * the admin role for all but whoami and audits every change; the rows
 * themselves are store_user.c's, store_grant.c's, store_token.c's and
 * store_audit.c's. Every field from the wire is checked here first.
 */
#include "op.h"

#include <string.h>

#define AUDIT_LIST_DEFAULT 100
#define AUDIT_LIST_MAX     10000
#define ADMIN_LIST_MAX     100000 /* users, grants or tokens in one reply */

static int check_user(struct srv_call *call, const char *name)
{
    struct store_err err = {0};
    int rc = store_user_check_name(name, &err);
    return rc ? srv_op_fail_store(call, rc, &err) : 0;
}

static int parse_role(struct srv_call *call, const char *s, int *role)
{
    *role = store_role_parse(s);
    if (!*role)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "role \"%.20s\": must be reader, writer or admin", s ? s : "");
    return 0;
}

static int parse_key(struct srv_call *call, ProtobufCBinaryData k, const uint8_t **key)
{
    *key = NULL;
    if (k.len == 0)
        return 0;
    if (k.len != STORE_KEY_BYTES)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "key: %zu bytes; a public key is %d bytes", k.len, STORE_KEY_BYTES);
    *key = k.data;
    return 0;
}

static int check_experiment_name(struct srv_call *call, const char *name)
{
    char msg[400];
    if (limits_check_name("experiment", name, 0, msg, sizeof msg))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    return 0;
}

static int store_failed(struct srv_call *call, int rc, const struct store_err *err)
{
    return err->msg[0] ? srv_op_fail_store(call, rc, err) : srv_op_oom(call);
}

/* ---- users ---------------------------------------------------------------------- */

static Track__V1__User *user_msg(struct srv_arena *a, const struct store_user *u)
{
    Track__V1__User *m = srv_alloc(a, sizeof(*m));
    if (!m)
        return NULL;
    track__v1__user__init(m);
    m->name = srv_strdup(a, u->name);
    m->role = (char *)store_role_name(u->role);
    m->created_ms = u->created_ms;
    if (u->has_key) {
        m->key.data = srv_alloc_raw(a, STORE_KEY_BYTES);
        if (!m->key.data)
            return NULL;
        memcpy(m->key.data, u->key, STORE_KEY_BYTES);
        m->key.len = STORE_KEY_BYTES;
    }
    return m->name ? m : NULL;
}

int srv_op_user_add(struct srv_call *call)
{
    const Track__V1__UserAdd *q = call->rq->user_add;
    struct store_err err = {0};
    struct store_user u;
    const uint8_t *key;
    int role, rc;

    if (check_user(call, q->name) || parse_role(call, q->role, &role) ||
        parse_key(call, q->key, &key))
        return -1;
    rc = store_user_add(call->st, q->name, role, key, wire_now_ms(), NULL, &err);
    if (rc == 0)
        rc = store_user_by_name(call->st, q->name, &u, &err);
    if (rc)
        return store_failed(call, rc, &err);
    Track__V1__UserAddResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__user_add_result__init(r);
    if (!(r->user = user_msg(&call->arena, &u)))
        return srv_op_oom(call);
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_USER_ADD;
    call->rs->user_add = r;
    return 0;
}

struct user_list {
    struct srv_arena *a;
    Track__V1__User **items;
    size_t n, cap;
};

static int user_cb(void *ctx, const struct store_user *u)
{
    struct user_list *l = ctx;
    if (l->n >= ADMIN_LIST_MAX)
        return 1;
    if (srv_op_grow(l->a, (void ***)&l->items, l->n, &l->cap) ||
        !(l->items[l->n] = user_msg(l->a, u)))
        return -1;
    l->n++;
    return 0;
}

int srv_op_user_list(struct srv_call *call)
{
    struct user_list l = {.a = &call->arena};
    struct store_err err = {0};
    int rc = store_user_list(call->st, user_cb, &l, &err);

    if (rc < 0)
        return store_failed(call, rc, &err);
    Track__V1__UserListResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__user_list_result__init(r);
    r->users = l.items;
    r->n_users = l.n;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_USER_LIST;
    call->rs->user_list = r;
    return 0;
}

/* Sets an empty result of case `rc_case` at *slot. */
#define EMPTY_RESULT(call, type, init, field, rcase)                                               \
    do {                                                                                           \
        type *r_ = srv_alloc(&(call)->arena, sizeof(*r_));                                         \
        if (!r_)                                                                                   \
            return srv_op_oom(call);                                                               \
        init(r_);                                                                                  \
        (call)->rs->result_case = rcase;                                                           \
        (call)->rs->field = r_;                                                                    \
    } while (0)

int srv_op_user_remove(struct srv_call *call)
{
    const Track__V1__UserRemove *q = call->rq->user_remove;
    struct store_err err = {0};
    int rc;

    if (check_user(call, q->name))
        return -1;
    if ((rc = store_user_remove(call->st, q->name, &err)))
        return store_failed(call, rc, &err);
    EMPTY_RESULT(call, Track__V1__UserRemoveResult, track__v1__user_remove_result__init,
                 user_remove, TRACK__V1__RESPONSE__RESULT_USER_REMOVE);
    return 0;
}

int srv_op_user_set_key(struct srv_call *call)
{
    const Track__V1__UserSetKey *q = call->rq->user_set_key;
    struct store_err err = {0};
    const uint8_t *key;
    int rc;

    if (check_user(call, q->name) || parse_key(call, q->key, &key))
        return -1;
    if ((rc = store_user_set_key(call->st, q->name, key, &err)))
        return store_failed(call, rc, &err);
    EMPTY_RESULT(call, Track__V1__UserSetKeyResult, track__v1__user_set_key_result__init,
                 user_set_key, TRACK__V1__RESPONSE__RESULT_USER_SET_KEY);
    return 0;
}

int srv_op_user_set_role(struct srv_call *call)
{
    const Track__V1__UserSetRole *q = call->rq->user_set_role;
    struct store_err err = {0};
    int role, rc;

    if (check_user(call, q->name) || parse_role(call, q->role, &role))
        return -1;
    if ((rc = store_user_set_role(call->st, q->name, role, &err)))
        return store_failed(call, rc, &err);
    EMPTY_RESULT(call, Track__V1__UserSetRoleResult, track__v1__user_set_role_result__init,
                 user_set_role, TRACK__V1__RESPONSE__RESULT_USER_SET_ROLE);
    return 0;
}

/* ---- grants ------------------------------------------------------------------------ */

static Track__V1__Grant *grant_msg(struct srv_arena *a, const char *user, const char *exp,
                                   int level)
{
    Track__V1__Grant *g = srv_alloc(a, sizeof(*g));
    if (!g)
        return NULL;
    track__v1__grant__init(g);
    g->user = srv_strdup(a, user);
    g->experiment = srv_strdup(a, exp);
    g->level = (char *)store_level_name(level);
    return g->user && g->experiment ? g : NULL;
}

int srv_op_grant_set(struct srv_call *call)
{
    const Track__V1__GrantSet *q = call->rq->grant_set;
    struct store_err err = {0};
    int64_t grantees = 0;
    int level, rc;

    if (check_user(call, q->user) || check_experiment_name(call, q->experiment))
        return -1;
    if (!(level = store_level_parse(q->level)))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "level \"%.20s\": must be read, write or manage",
                           q->level ? q->level : "");
    if ((rc = store_grant_set(call->st, q->user, q->experiment, level, &grantees, &err)))
        return store_failed(call, rc, &err);
    Track__V1__GrantSetResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__grant_set_result__init(r);
    if (!(r->grant = grant_msg(&call->arena, q->user, q->experiment, level)))
        return srv_op_oom(call);
    r->grantees = grantees;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_GRANT_SET;
    call->rs->grant_set = r;
    return 0;
}

int srv_op_grant_revoke(struct srv_call *call)
{
    const Track__V1__GrantRevoke *q = call->rq->grant_revoke;
    struct store_err err = {0};
    int64_t grantees = 0;
    int removed = 0, rc;

    if (check_user(call, q->user) || check_experiment_name(call, q->experiment))
        return -1;
    rc = store_grant_revoke(call->st, q->user, q->experiment, &removed, &grantees, &err);
    if (rc)
        return store_failed(call, rc, &err);
    Track__V1__GrantRevokeResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__grant_revoke_result__init(r);
    r->removed = removed != 0;
    r->grantees = grantees;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_GRANT_REVOKE;
    call->rs->grant_revoke = r;
    return 0;
}

struct grant_list {
    struct srv_arena *a;
    Track__V1__Grant **items;
    size_t n, cap;
};

static int grant_cb(void *ctx, const struct store_grant *g)
{
    struct grant_list *l = ctx;
    if (l->n >= ADMIN_LIST_MAX)
        return 1;
    if (srv_op_grow(l->a, (void ***)&l->items, l->n, &l->cap) ||
        !(l->items[l->n] = grant_msg(l->a, g->user, g->experiment, g->level)))
        return -1;
    l->n++;
    return 0;
}

int srv_op_grant_list(struct srv_call *call)
{
    const Track__V1__GrantList *q = call->rq->grant_list;
    struct grant_list l = {.a = &call->arena};
    struct store_err err = {0};
    int rc;

    if ((q->user && *q->user && check_user(call, q->user)) ||
        (q->experiment && *q->experiment && check_experiment_name(call, q->experiment)))
        return -1;
    rc = store_grant_list(call->st, q->user, q->experiment, grant_cb, &l, &err);
    if (rc < 0)
        return store_failed(call, rc, &err);
    Track__V1__GrantListResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__grant_list_result__init(r);
    r->grants = l.items;
    r->n_grants = l.n;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_GRANT_LIST;
    call->rs->grant_list = r;
    return 0;
}

/* ---- tokens ------------------------------------------------------------------------ */

static Track__V1__Token *token_msg(struct srv_arena *a, const struct store_token *t)
{
    Track__V1__Token *m = srv_alloc(a, sizeof(*m));
    if (!m)
        return NULL;
    track__v1__token__init(m);
    m->id = t->id;
    m->user = srv_strdup(a, t->user);
    m->created_ms = t->created_ms;
    m->expires_ms = t->expires_ms;
    return m->user ? m : NULL;
}

int srv_op_token_create(struct srv_call *call)
{
    const Track__V1__TokenCreate *q = call->rq->token_create;
    struct store_err err = {0};
    struct store_token t = {.user = q->user, .created_ms = wire_now_ms()};
    int rc;

    if (check_user(call, q->user))
        return -1;
    if (q->hash.len != STORE_TOKEN_HASH_BYTES)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "hash: %zu bytes; a token's BLAKE2b-256 hash is %d bytes", q->hash.len,
                           STORE_TOKEN_HASH_BYTES);
    if (q->expires_ms < 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "expires_ms: %lld is negative; 0 never expires",
                           (long long)q->expires_ms);
    t.expires_ms = q->expires_ms;
    rc = store_token_add(call->st, q->user, q->hash.data, t.created_ms, q->expires_ms, &t.id, &err);
    if (rc)
        return store_failed(call, rc, &err);
    Track__V1__TokenCreateResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__token_create_result__init(r);
    if (!(r->token = token_msg(&call->arena, &t)))
        return srv_op_oom(call);
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_TOKEN_CREATE;
    call->rs->token_create = r;
    return 0;
}

struct token_list {
    struct srv_arena *a;
    Track__V1__Token **items;
    size_t n, cap;
};

static int token_cb(void *ctx, const struct store_token *t)
{
    struct token_list *l = ctx;
    if (l->n >= ADMIN_LIST_MAX)
        return 1;
    if (srv_op_grow(l->a, (void ***)&l->items, l->n, &l->cap) ||
        !(l->items[l->n] = token_msg(l->a, t)))
        return -1;
    l->n++;
    return 0;
}

int srv_op_token_list(struct srv_call *call)
{
    const Track__V1__TokenList *q = call->rq->token_list;
    struct token_list l = {.a = &call->arena};
    struct store_err err = {0};
    int rc;

    if (check_user(call, q->user))
        return -1;
    rc = store_token_list(call->st, q->user, token_cb, &l, &err);
    if (rc < 0)
        return store_failed(call, rc, &err);
    Track__V1__TokenListResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__token_list_result__init(r);
    r->tokens = l.items;
    r->n_tokens = l.n;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_TOKEN_LIST;
    call->rs->token_list = r;
    return 0;
}

int srv_op_token_revoke(struct srv_call *call)
{
    const Track__V1__TokenRevoke *q = call->rq->token_revoke;
    struct store_err err = {0};
    int rc;

    if (q->id <= 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "id: %lld is not a token id",
                           (long long)q->id);
    if ((rc = store_token_revoke(call->st, q->id, &err)))
        return store_failed(call, rc, &err);
    EMPTY_RESULT(call, Track__V1__TokenRevokeResult, track__v1__token_revoke_result__init,
                 token_revoke, TRACK__V1__RESPONSE__RESULT_TOKEN_REVOKE);
    return 0;
}

/* ---- audit ------------------------------------------------------------------------- */

struct audit_page {
    struct srv_arena *a;
    Track__V1__AuditEntry **items;
    size_t n, cap;
    size_t left; /* bytes the reply may still take */
    int64_t last_id;
    int full;
};

static int audit_cb(void *ctx, const struct store_audit *x)
{
    struct audit_page *p = ctx;
    struct srv_arena *a = p->a;
    Track__V1__AuditEntry *e = srv_alloc(a, sizeof(*e));

    if (!e)
        return -1;
    track__v1__audit_entry__init(e);
    e->id = x->id;
    e->ms = x->ms;
    e->user = srv_strdup(a, x->user ? x->user : "");
    e->op = srv_strdup(a, x->op ? x->op : "");
    e->experiment = srv_strdup(a, x->experiment ? x->experiment : "");
    e->detail = srv_strdup(a, x->detail ? x->detail : "");
    e->code = (Track__V1__Code)x->code;
    if (!e->user || !e->op || !e->experiment || !e->detail)
        return -1;
    if (x->has_key) {
        if (!(e->key.data = srv_alloc_raw(a, STORE_KEY_BYTES)))
            return -1;
        memcpy(e->key.data, x->key, STORE_KEY_BYTES);
        e->key.len = STORE_KEY_BYTES;
    }
    if (x->has_run) {
        if (!(e->run_id.data = srv_alloc_raw(a, 16)))
            return -1;
        memcpy(e->run_id.data, x->run, 16);
        e->run_id.len = 16;
    }
    size_t cost = srv_op_item_cost(track__v1__audit_entry__get_packed_size(e));
    if (cost > p->left) {
        p->full = 1;
        return 1;
    }
    p->left -= cost;
    if (srv_op_grow(a, (void ***)&p->items, p->n, &p->cap))
        return -1;
    p->items[p->n++] = e;
    p->last_id = x->id;
    return 0;
}

int srv_op_audit_list(struct srv_call *call)
{
    const Track__V1__AuditList *q = call->rq->audit_list;
    struct audit_page p = {.a = &call->arena, .left = REPLY_PAGE_BYTES - REPLY_SLACK};
    struct store_audit_query aq = {
        .user = q->user,
        .experiment = q->experiment,
        .since_ms = q->since_ms,
        .before_id = q->before_id,
    };
    struct store_err err = {0};
    int rc;

    if (q->limit < 0 || q->limit > AUDIT_LIST_MAX)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "limit: %d is outside 0..%d",
                           (int)q->limit, AUDIT_LIST_MAX);
    if (q->before_id < 0 || q->since_ms < 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "before_id and since_ms must not be negative");
    if ((q->user && strlen(q->user) > STORE_USER_NAME_MAX) ||
        (q->experiment && strlen(q->experiment) > LIMIT_NAME_BYTES))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "user or experiment: longer than a name may be");
    /* one more than asked, to know whether more follow */
    int want = q->limit ? q->limit : AUDIT_LIST_DEFAULT;
    aq.limit = want + 1;
    rc = store_audit_list(call->st, &aq, audit_cb, &p, &err);
    if (rc < 0)
        return store_failed(call, rc, &err);
    Track__V1__AuditListResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__audit_list_result__init(r);
    if (!p.full && p.n > (size_t)want) { /* the extra row only says more follow */
        p.n = (size_t)want;
        p.last_id = p.items[p.n - 1]->id;
        p.full = 1;
    }
    r->entries = p.items;
    r->n_entries = p.n;
    r->next_before_id = p.full && p.n ? p.last_id : 0;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_AUDIT_LIST;
    call->rs->audit_list = r;
    return 0;
}

int srv_op_audit_prune(struct srv_call *call)
{
    const Track__V1__AuditPrune *q = call->rq->audit_prune;
    struct store_err err = {0};
    int64_t removed = 0;
    int rc;

    if (q->before_ms <= 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "before_ms: %lld; give a time (ms since the epoch)",
                           (long long)q->before_ms);
    if ((rc = store_audit_prune(call->st, q->before_ms, &removed, &err)))
        return store_failed(call, rc, &err);
    Track__V1__AuditPruneResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__audit_prune_result__init(r);
    r->removed = removed;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_AUDIT_PRUNE;
    call->rs->audit_prune = r;
    return 0;
}

/* ---- whoami ------------------------------------------------------------------------ */

struct access_list {
    struct srv_arena *a;
    Track__V1__ExperimentAccess **items;
    size_t n, cap;
    size_t left;
};

static int access_cb(void *ctx, const char *exp, int level)
{
    struct access_list *l = ctx;
    Track__V1__ExperimentAccess *e = srv_alloc(l->a, sizeof(*e));
    if (!e)
        return -1;
    track__v1__experiment_access__init(e);
    e->experiment = srv_strdup(l->a, exp);
    e->level = (char *)store_level_name(level);
    if (!e->experiment)
        return -1;
    size_t cost = srv_op_item_cost(track__v1__experiment_access__get_packed_size(e));
    if (cost > l->left)
        return 1; /* more experiments than a reply holds: the first ones */
    l->left -= cost;
    if (srv_op_grow(l->a, (void ***)&l->items, l->n, &l->cap))
        return -1;
    l->items[l->n++] = e;
    return 0;
}

int srv_op_whoami(struct srv_call *call)
{
    const struct srv_caller *c = call->caller;
    struct access_list l = {.a = &call->arena, .left = REPLY_PAGE_BYTES - 1024};
    struct store_viewer vb;
    struct store_err err = {0};
    int rc = store_grant_visible(call->st, srv_viewer(call, &vb), access_cb, &l, &err);

    if (rc < 0)
        return store_failed(call, rc, &err);
    Track__V1__WhoamiResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__whoami_result__init(r);
    if (!c || c->local) {
        r->local = 1;
        r->role = (char *)store_role_name(STORE_ROLE_ADMIN);
        r->name = srv_strdup(&call->arena, srv_owner_name());
    } else {
        r->role = (char *)store_role_name(c->role);
        r->name = srv_strdup(&call->arena, c->name);
        if (c->has_key) {
            if (!(r->key.data = srv_alloc_raw(&call->arena, STORE_KEY_BYTES)))
                return srv_op_oom(call);
            memcpy(r->key.data, c->key, STORE_KEY_BYTES);
            r->key.len = STORE_KEY_BYTES;
        }
    }
    if (!r->name)
        return srv_op_oom(call);
    r->experiments = l.items;
    r->n_experiments = l.n;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_WHOAMI;
    call->rs->whoami = r;
    return 0;
}
