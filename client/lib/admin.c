/*
 * admin.c: libtrack's identity calls (track.h "identity"): users, grants,
 * tokens, the audit table and whoami. Each is one round trip, answered or
 * failed, never spooled (an admin wants to know it happened). Keys travel
 * as 32 bytes and are shown as "trk1:..." text (seal_key_to_text); tokens
 * are made here from libsodium's random bytes and only their BLAKE2b-256
 * hash is sent, so no token ever crosses the wire or lies in the server's
 * database. A struct track_admin_result owns the unpacked reply and the
 * arrays presenting it; every field of a reply is checked first.
 */
#include "internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "seal.h"

struct track_admin_result {
    Track__V1__Response *rs;
    void **mem;
    size_t n_mem, cap_mem;
};

void track_admin_result_free(struct track_admin_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_mem; i++)
        free(r->mem[i]);
    free(r->mem);
    if (r->rs)
        track__v1__response__free_unpacked(r->rs, NULL);
    free(r);
}

/* n zeroed bytes freed with r; NULL on OOM. */
static void *keep(struct track_admin_result *r, size_t n)
{
    if (r->n_mem == r->cap_mem) {
        size_t cap = r->cap_mem ? r->cap_mem * 2 : 8;
        void **m = realloc(r->mem, cap * sizeof(*m));
        if (!m)
            return NULL;
        r->mem = m;
        r->cap_mem = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (p)
        r->mem[r->n_mem++] = p;
    return p;
}

static int malformed(struct track_err *err, const char *field)
{
    return cl_fail(err, TRACK_E_INTERNAL, "malformed reply from server: field %s", field);
}

static int oom(struct track_err *err)
{
    return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
}

/* One round trip whose reply must carry `want`; *out owns it. */
static int call(struct track_client *c, Track__V1__Request *rq, int want,
                struct track_admin_result **out, struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    int rc = cl_read_want(c, rq, want, &rs, err);

    *out = NULL;
    if (rc)
        return rc;
    *out = calloc(1, sizeof(**out));
    if (!*out) {
        track__v1__response__free_unpacked(rs, NULL);
        return oom(err);
    }
    (*out)->rs = rs;
    return 0;
}

/* A round trip whose result is only "done". */
static int call_done(struct track_client *c, Track__V1__Request *rq, int want,
                     struct track_err *err)
{
    struct track_admin_result *r = NULL;
    int rc = call(c, rq, want, &r, err);
    track_admin_result_free(r);
    return rc;
}

static int fail_free(struct track_admin_result **res, int rc)
{
    track_admin_result_free(*res);
    *res = NULL;
    return rc;
}

/* "trk1:..." for 32 key bytes, "" for none, kept in r; NULL on a bad length or OOM. */
static const char *key_text(struct track_admin_result *r, ProtobufCBinaryData k, int *bad)
{
    if (k.len == 0)
        return "";
    if (k.len != SEAL_PUBLIC_BYTES) {
        *bad = 1;
        return NULL;
    }
    char *t = keep(r, SEAL_KEY_TEXT_BYTES);
    if (t)
        seal_key_to_text(k.data, t);
    return t;
}

/* Parses "trk1:..." text into out; NULL or "" is no key (*has 0). */
static int key_parse(const char *text, uint8_t out[SEAL_PUBLIC_BYTES], int *has,
                     struct track_err *err)
{
    struct seal_err se = {0};
    *has = 0;
    if (!text || !*text)
        return 0;
    if (seal_key_from_text(text, out, &se) != 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "key: %s", se.msg);
    *has = 1;
    return 0;
}

/* ---- users --------------------------------------------------------------------- */

int track_user_add(struct track_client *c, const char *name, const char *role, const char *key,
                   struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__UserAdd m = TRACK__V1__USER_ADD__INIT;
    uint8_t k[SEAL_PUBLIC_BYTES];
    int has = 0, rc;

    if (!name || !role)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "user name and role are required");
    if ((rc = key_parse(key, k, &has, err)))
        return rc;
    m.name = wire_str(name);
    m.role = wire_str(role);
    if (has) {
        m.key.data = k;
        m.key.len = sizeof k;
    }
    rq.op_case = TRACK__V1__REQUEST__OP_USER_ADD;
    rq.user_add = &m;
    return call_done(c, &rq, TRACK__V1__RESPONSE__RESULT_USER_ADD, err);
}

int track_user_list(struct track_client *c, struct track_admin_result **res,
                    const struct track_user **users, size_t *n, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__UserList m = TRACK__V1__USER_LIST__INIT;
    int rc, bad = 0;

    rq.op_case = TRACK__V1__REQUEST__OP_USER_LIST;
    rq.user_list = &m;
    if ((rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_USER_LIST, res, err)))
        return rc;
    const Track__V1__UserListResult *l = (*res)->rs->user_list;
    if (!l)
        return fail_free(res, malformed(err, "user_list"));
    struct track_user *v = keep(*res, l->n_users * sizeof(*v));
    if (!v)
        return fail_free(res, oom(err));
    for (size_t i = 0; i < l->n_users; i++) {
        const Track__V1__User *u = l->users[i];
        if (!u || !u->name || !u->role)
            return fail_free(res, malformed(err, "user_list.users"));
        v[i].name = u->name;
        v[i].role = u->role;
        v[i].created_ms = u->created_ms;
        if (!(v[i].key = key_text(*res, u->key, &bad)))
            return fail_free(res, bad ? malformed(err, "user_list.users.key") : oom(err));
    }
    *users = v;
    *n = l->n_users;
    return 0;
}

int track_user_remove(struct track_client *c, const char *name, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__UserRemove m = TRACK__V1__USER_REMOVE__INIT;

    if (!name)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "user name is required");
    m.name = wire_str(name);
    rq.op_case = TRACK__V1__REQUEST__OP_USER_REMOVE;
    rq.user_remove = &m;
    return call_done(c, &rq, TRACK__V1__RESPONSE__RESULT_USER_REMOVE, err);
}

int track_user_set_key(struct track_client *c, const char *name, const char *key,
                       struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__UserSetKey m = TRACK__V1__USER_SET_KEY__INIT;
    uint8_t k[SEAL_PUBLIC_BYTES];
    int has = 0, rc;

    if (!name)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "user name is required");
    if ((rc = key_parse(key, k, &has, err)))
        return rc;
    m.name = wire_str(name);
    if (has) {
        m.key.data = k;
        m.key.len = sizeof k;
    }
    rq.op_case = TRACK__V1__REQUEST__OP_USER_SET_KEY;
    rq.user_set_key = &m;
    return call_done(c, &rq, TRACK__V1__RESPONSE__RESULT_USER_SET_KEY, err);
}

int track_user_set_role(struct track_client *c, const char *name, const char *role,
                        struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__UserSetRole m = TRACK__V1__USER_SET_ROLE__INIT;

    if (!name || !role)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "user name and role are required");
    m.name = wire_str(name);
    m.role = wire_str(role);
    rq.op_case = TRACK__V1__REQUEST__OP_USER_SET_ROLE;
    rq.user_set_role = &m;
    return call_done(c, &rq, TRACK__V1__RESPONSE__RESULT_USER_SET_ROLE, err);
}

/* ---- grants -------------------------------------------------------------------- */

int track_grant_set(struct track_client *c, const char *user, const char *experiment,
                    const char *level, int64_t *grantees, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__GrantSet m = TRACK__V1__GRANT_SET__INIT;
    struct track_admin_result *r = NULL;
    int rc;

    if (!user || !experiment || !level)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "user, experiment and level are required");
    m.user = wire_str(user);
    m.experiment = wire_str(experiment);
    m.level = wire_str(level);
    rq.op_case = TRACK__V1__REQUEST__OP_GRANT_SET;
    rq.grant_set = &m;
    if ((rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_GRANT_SET, &r, err)))
        return rc;
    if (!r->rs->grant_set)
        rc = malformed(err, "grant_set");
    else if (grantees)
        *grantees = r->rs->grant_set->grantees;
    track_admin_result_free(r);
    return rc;
}

int track_grant_revoke(struct track_client *c, const char *user, const char *experiment,
                       int *removed, int64_t *grantees, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__GrantRevoke m = TRACK__V1__GRANT_REVOKE__INIT;
    struct track_admin_result *r = NULL;
    int rc;

    if (!user || !experiment)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "user and experiment are required");
    m.user = wire_str(user);
    m.experiment = wire_str(experiment);
    rq.op_case = TRACK__V1__REQUEST__OP_GRANT_REVOKE;
    rq.grant_revoke = &m;
    if ((rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_GRANT_REVOKE, &r, err)))
        return rc;
    if (!r->rs->grant_revoke) {
        rc = malformed(err, "grant_revoke");
    } else {
        if (removed)
            *removed = r->rs->grant_revoke->removed;
        if (grantees)
            *grantees = r->rs->grant_revoke->grantees;
    }
    track_admin_result_free(r);
    return rc;
}

int track_grant_list(struct track_client *c, const char *user, const char *experiment,
                     struct track_admin_result **res, const struct track_grant **grants, size_t *n,
                     struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__GrantList m = TRACK__V1__GRANT_LIST__INIT;
    int rc;

    m.user = wire_str(user ? user : "");
    m.experiment = wire_str(experiment ? experiment : "");
    rq.op_case = TRACK__V1__REQUEST__OP_GRANT_LIST;
    rq.grant_list = &m;
    if ((rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_GRANT_LIST, res, err)))
        return rc;
    const Track__V1__GrantListResult *l = (*res)->rs->grant_list;
    if (!l)
        return fail_free(res, malformed(err, "grant_list"));
    struct track_grant *v = keep(*res, l->n_grants * sizeof(*v));
    if (!v)
        return fail_free(res, oom(err));
    for (size_t i = 0; i < l->n_grants; i++) {
        const Track__V1__Grant *g = l->grants[i];
        if (!g || !g->user || !g->experiment || !g->level)
            return fail_free(res, malformed(err, "grant_list.grants"));
        v[i].user = g->user;
        v[i].experiment = g->experiment;
        v[i].level = g->level;
    }
    *grants = v;
    *n = l->n_grants;
    return 0;
}

/* ---- tokens -------------------------------------------------------------------- */

int track_token_create(struct track_client *c, const char *user, int64_t expires_ms,
                       char token[TRACK_TOKEN_TEXT_BYTES], int64_t *id, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__TokenCreate m = TRACK__V1__TOKEN_CREATE__INIT;
    struct track_admin_result *r = NULL;
    uint8_t raw[32], hash[32];
    int rc;

    token[0] = '\0';
    if (!user)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "user name is required");
    if (sodium_init() < 0)
        return cl_fail(err, TRACK_E_INTERNAL, "libsodium could not start");
    randombytes_buf(raw, sizeof raw);
    memcpy(token, "trkt_", 5);
    sodium_bin2base64(token + 5, TRACK_TOKEN_TEXT_BYTES - 5, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    crypto_generichash(hash, sizeof hash, (const unsigned char *)token, strlen(token), NULL, 0);
    m.user = wire_str(user);
    m.hash.data = hash;
    m.hash.len = sizeof hash;
    m.expires_ms = expires_ms;
    rq.op_case = TRACK__V1__REQUEST__OP_TOKEN_CREATE;
    rq.token_create = &m;
    rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_TOKEN_CREATE, &r, err);
    if (rc == 0 && (!r->rs->token_create || !r->rs->token_create->token))
        rc = malformed(err, "token_create.token");
    if (rc == 0 && id)
        *id = r->rs->token_create->token->id;
    track_admin_result_free(r);
    if (rc)
        sodium_memzero(token, TRACK_TOKEN_TEXT_BYTES);
    return rc;
}

int track_token_list(struct track_client *c, const char *user, struct track_admin_result **res,
                     const struct track_token **tokens, size_t *n, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__TokenList m = TRACK__V1__TOKEN_LIST__INIT;
    int rc;

    if (!user)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "user name is required");
    m.user = wire_str(user);
    rq.op_case = TRACK__V1__REQUEST__OP_TOKEN_LIST;
    rq.token_list = &m;
    if ((rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_TOKEN_LIST, res, err)))
        return rc;
    const Track__V1__TokenListResult *l = (*res)->rs->token_list;
    if (!l)
        return fail_free(res, malformed(err, "token_list"));
    struct track_token *v = keep(*res, l->n_tokens * sizeof(*v));
    if (!v)
        return fail_free(res, oom(err));
    for (size_t i = 0; i < l->n_tokens; i++) {
        const Track__V1__Token *t = l->tokens[i];
        if (!t || !t->user)
            return fail_free(res, malformed(err, "token_list.tokens"));
        v[i].id = t->id;
        v[i].user = t->user;
        v[i].created_ms = t->created_ms;
        v[i].expires_ms = t->expires_ms;
    }
    *tokens = v;
    *n = l->n_tokens;
    return 0;
}

int track_token_revoke(struct track_client *c, int64_t id, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__TokenRevoke m = TRACK__V1__TOKEN_REVOKE__INIT;

    m.id = id;
    rq.op_case = TRACK__V1__REQUEST__OP_TOKEN_REVOKE;
    rq.token_revoke = &m;
    return call_done(c, &rq, TRACK__V1__RESPONSE__RESULT_TOKEN_REVOKE, err);
}

/* ---- audit --------------------------------------------------------------------- */

int track_audit_list(struct track_client *c, const struct track_audit_query *q,
                     struct track_admin_result **res, const struct track_audit_entry **entries,
                     size_t *n, int64_t *next_before_id, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__AuditList m = TRACK__V1__AUDIT_LIST__INIT;
    int rc, bad = 0;

    if (q) {
        m.user = wire_str(q->user ? q->user : "");
        m.experiment = wire_str(q->experiment ? q->experiment : "");
        m.since_ms = q->since_ms;
        m.before_id = q->before_id;
        m.limit = q->limit;
    }
    rq.op_case = TRACK__V1__REQUEST__OP_AUDIT_LIST;
    rq.audit_list = &m;
    if ((rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_AUDIT_LIST, res, err)))
        return rc;
    const Track__V1__AuditListResult *l = (*res)->rs->audit_list;
    if (!l)
        return fail_free(res, malformed(err, "audit_list"));
    struct track_audit_entry *v = keep(*res, l->n_entries * sizeof(*v));
    if (!v)
        return fail_free(res, oom(err));
    for (size_t i = 0; i < l->n_entries; i++) {
        const Track__V1__AuditEntry *e = l->entries[i];
        if (!e || !e->user || !e->op || !e->experiment || !e->detail ||
            (e->run_id.len != 0 && e->run_id.len != 16))
            return fail_free(res, malformed(err, "audit_list.entries"));
        v[i].id = e->id;
        v[i].ms = e->ms;
        v[i].user = e->user;
        v[i].op = e->op;
        v[i].experiment = e->experiment;
        v[i].detail = e->detail;
        v[i].code = track_code_name(-(int)e->code);
        if (e->run_id.len == 16) {
            v[i].has_run = 1;
            memcpy(v[i].run.b, e->run_id.data, 16);
        }
        if (!(v[i].key = key_text(*res, e->key, &bad)))
            return fail_free(res, bad ? malformed(err, "audit_list.entries.key") : oom(err));
    }
    *entries = v;
    *n = l->n_entries;
    if (next_before_id)
        *next_before_id = l->next_before_id;
    return 0;
}

int track_audit_prune(struct track_client *c, int64_t before_ms, int64_t *removed,
                      struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__AuditPrune m = TRACK__V1__AUDIT_PRUNE__INIT;
    struct track_admin_result *r = NULL;
    int rc;

    m.before_ms = before_ms;
    rq.op_case = TRACK__V1__REQUEST__OP_AUDIT_PRUNE;
    rq.audit_prune = &m;
    if ((rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_AUDIT_PRUNE, &r, err)))
        return rc;
    if (!r->rs->audit_prune)
        rc = malformed(err, "audit_prune");
    else if (removed)
        *removed = r->rs->audit_prune->removed;
    track_admin_result_free(r);
    return rc;
}

/* ---- whoami -------------------------------------------------------------------- */

int track_whoami(struct track_client *c, struct track_admin_result **res,
                 const struct track_whoami **who, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Whoami m = TRACK__V1__WHOAMI__INIT;
    int rc, bad = 0;

    rq.op_case = TRACK__V1__REQUEST__OP_WHOAMI;
    rq.whoami = &m;
    if ((rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_WHOAMI, res, err)))
        return rc;
    const Track__V1__WhoamiResult *w = (*res)->rs->whoami;
    if (!w || !w->name || !w->role)
        return fail_free(res, malformed(err, "whoami"));
    struct track_whoami *out = keep(*res, sizeof(*out));
    struct track_access *v = keep(*res, w->n_experiments * sizeof(*v));
    if (!out || !v)
        return fail_free(res, oom(err));
    for (size_t i = 0; i < w->n_experiments; i++) {
        const Track__V1__ExperimentAccess *e = w->experiments[i];
        if (!e || !e->experiment || !e->level)
            return fail_free(res, malformed(err, "whoami.experiments"));
        v[i].experiment = e->experiment;
        v[i].level = e->level;
    }
    out->name = w->name;
    out->role = w->role;
    out->local = w->local;
    if (!(out->key = key_text(*res, w->key, &bad)))
        return fail_free(res, bad ? malformed(err, "whoami.key") : oom(err));
    out->experiments = v;
    out->n_experiments = w->n_experiments;
    *who = out;
    return 0;
}
