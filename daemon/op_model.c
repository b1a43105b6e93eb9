/*
 * op_model.c: the handlers of the model registry: ModelRegister, ModelAlias
 * and ModelTag (writes), ModelList, ModelShow and ModelGet (reads). Names,
 * versions and aliases are checked and resolved by the store
 * (store_model_resolve: "NAME/VERSION" and "NAME@ALIAS"); here the wire's
 * fields are checked against limits.h and replies built in the call's arena.
 * The table is dispatch.c's.
 */
#include "op.h"

#include <stdio.h>
#include <string.h>

#include "track_limits.h"

static int str_limit(struct srv_call *call, const char *field, const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n > max)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s: %zu bytes, limit is %zu",
                           field, n, max);
    return 0;
}

static ProtobufCBinaryData arena_bytes(struct srv_arena *a, const uint8_t *p, size_t n, int *oom)
{
    ProtobufCBinaryData b = {0, NULL};
    uint8_t *d = srv_alloc_raw(a, n);
    if (!d) {
        *oom = 1;
        return b;
    }
    memcpy(d, p, n);
    b.data = d;
    b.len = n;
    return b;
}

/* Makes room in *items (n used of *cap) for one more item and allocates it
 * (size bytes) in arena a; NULL on OOM. The caller fills it and stores it at
 * (*items)[n]. */
static void *new_item(struct srv_arena *a, void ***items, size_t n, size_t *cap, size_t size)
{
    if (srv_op_grow(a, items, n, cap))
        return NULL;
    return srv_alloc(a, size);
}

/* ---- building replies ---------------------------------------------------------- */

struct kv_list {
    struct srv_arena *a;
    Track__V1__KeyValue **items;
    size_t n, cap;
};

static int kv_collect(void *ctx, const char *key, const char *value)
{
    struct kv_list *l = ctx;
    Track__V1__KeyValue *kv = new_item(l->a, (void ***)&l->items, l->n, &l->cap, sizeof(*kv));
    if (!kv)
        return -1;
    track__v1__key_value__init(kv);
    kv->key = srv_strdup(l->a, key);
    kv->value = srv_strdup(l->a, value);
    if (!kv->key || !kv->value)
        return -1;
    l->items[l->n++] = kv;
    return 0;
}

struct alias_list {
    struct srv_arena *a;
    int64_t only; /* 0: every alias */
    Track__V1__ModelAliasMove **moves;
    char **names;
    size_t n, cap;
};

static int move_collect(void *ctx, const struct store_alias_move *x)
{
    struct alias_list *l = ctx;
    Track__V1__ModelAliasMove *m = new_item(l->a, (void ***)&l->moves, l->n, &l->cap, sizeof(*m));
    if (!m)
        return -1;
    track__v1__model_alias_move__init(m);
    m->alias = srv_strdup(l->a, x->alias);
    m->who = srv_strdup(l->a, x->who);
    m->from_version = x->from_version;
    m->to_version = x->to_version;
    m->ms = x->ms;
    m->id = x->id;
    if (!m->alias || !m->who)
        return -1;
    l->moves[l->n++] = m;
    return 0;
}

/* A current alias: its name (l->only: of that version only), or a move to
 * it with no from, who or time. */
static int alias_collect(void *ctx, const char *alias, int64_t version)
{
    struct alias_list *l = ctx;
    if (l->only && version != l->only)
        return 0;
    if (l->only) {
        if (srv_op_grow(l->a, (void ***)&l->names, l->n, &l->cap))
            return -1;
        if (!(l->names[l->n] = srv_strdup(l->a, alias)))
            return -1;
        l->n++;
        return 0;
    }
    struct store_alias_move x = {.alias = alias, .who = "", .to_version = version};
    return move_collect(l, &x);
}

struct version_list {
    struct srv_call *call;
    Track__V1__ModelVersion **items;
    size_t n, cap;
};

/* One version with its tags and the aliases pointing at it. */
static int version_collect(void *ctx, const struct store_model_version *v)
{
    struct version_list *l = ctx;
    struct srv_arena *a = &l->call->arena;
    int oom = 0;

    Track__V1__ModelVersion *m = new_item(a, (void ***)&l->items, l->n, &l->cap, sizeof(*m));
    if (!m)
        return -1;
    track__v1__model_version__init(m);
    m->model = srv_strdup(a, v->model);
    m->version = v->version;
    m->run_id = arena_bytes(a, v->run, 16, &oom);
    m->path = srv_strdup(a, v->path);
    m->digest = arena_bytes(a, v->digest, 32, &oom);
    m->size = v->size;
    m->description = srv_strdup(a, v->description);
    m->user = srv_strdup(a, v->user);
    m->created_ms = v->created_ms;
    if (oom || !m->model || !m->path || !m->description || !m->user)
        return -1;
    l->items[l->n++] = m;
    return 0;
}

/* Fills the tags and aliases of each version in l (after the listing: the
 * store's statements are not nested). */
static int versions_finish(struct srv_call *call, struct version_list *l)
{
    struct store_err err = {0};
    int rc;

    for (size_t i = 0; i < l->n; i++) {
        Track__V1__ModelVersion *m = l->items[i];
        struct kv_list kv = {.a = &call->arena};
        struct alias_list al = {.a = &call->arena, .only = m->version};
        rc = store_model_tags(call->st, m->model, m->version, kv_collect, &kv, &err);
        if (!rc)
            rc = store_model_aliases(call->st, m->model, alias_collect, &al, &err);
        if (rc < 0)
            return err.msg[0] ? srv_op_fail_store(call, rc, &err) : srv_op_oom(call);
        m->tags = kv.items;
        m->n_tags = kv.n;
        m->aliases = al.names;
        m->n_aliases = al.n;
    }
    return 0;
}

/* The version `ref` names, in the arena. */
static Track__V1__ModelVersion *version_of(struct srv_call *call, const char *ref)
{
    struct version_list l = {.call = call};
    struct store_err err = {0};
    int rc = store_model_version_get(call->st, ref, version_collect, &l, &err);

    if (rc < 0) {
        if (err.msg[0])
            srv_op_fail_store(call, rc, &err);
        else
            srv_op_oom(call);
        return NULL;
    }
    if (l.n != 1) {
        srv_op_fail(call, TRACK__V1__CODE__INTERNAL, "model version %.300s: not read back", ref);
        return NULL;
    }
    if (versions_finish(call, &l))
        return NULL;
    return l.items[0];
}

/* ---- writes ------------------------------------------------------------------- */

int srv_op_model_register(struct srv_call *call)
{
    const Track__V1__ModelRegister *q = call->rq->model_register;
    struct store_err err = {0};
    const char **keys, **values;
    char msg[400], ref[LIMIT_NAME_BYTES + 32];
    uint8_t run[16];
    int64_t version = 0;
    int rc;

    if (str_limit(call, "name", q->name, STORE_MODEL_NAME_MAX) ||
        str_limit(call, "path", q->path, 1024) || srv_op_resolve_run(call, "run", q->run, run) ||
        srv_op_check_kvs(call, "tags", q->tags, q->n_tags))
        return -1;
    if (q->description && q->description[0] &&
        limits_check_value("description", q->description, msg, sizeof(msg)))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    keys = srv_alloc(&call->arena, (q->n_tags + 1) * sizeof(*keys));
    values = srv_alloc(&call->arena, (q->n_tags + 1) * sizeof(*values));
    if (!keys || !values)
        return srv_op_oom(call);
    for (size_t i = 0; i < q->n_tags; i++) {
        keys[i] = q->tags[i]->key;
        values[i] = q->tags[i]->value;
    }
    rc = store_model_register(call->st, q->name, run, q->path, q->description, keys, values,
                              q->n_tags, wire_now_ms(), &version, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    snprintf(ref, sizeof(ref), "%s/%lld", q->name, (long long)version);
    Track__V1__ModelRegisterResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__model_register_result__init(r);
    if (!(r->version = version_of(call, ref)))
        return -1;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_MODEL_REGISTER;
    call->rs->model_register = r;
    return 0;
}

/* who removes an alias when the request does not say: the caller */
static const char *call_who(const struct srv_call *call)
{
    return call->caller ? call->caller->name : "";
}

int srv_op_model_alias(struct srv_call *call)
{
    const Track__V1__ModelAlias *q = call->rq->model_alias;
    struct store_err err = {0};
    int64_t from = 0, to = 0, now = wire_now_ms();
    int rc;

    if (str_limit(call, "name", q->name, STORE_MODEL_NAME_MAX) ||
        str_limit(call, "alias", q->alias, STORE_MODEL_NAME_MAX) ||
        str_limit(call, "version", q->version, STORE_MODEL_NAME_MAX) ||
        str_limit(call, "user", q->user, LIMIT_USER_BYTES))
        return -1;
    if (q->remove)
        rc = store_model_alias_delete(call->st, q->name, q->alias,
                                      q->user && q->user[0] ? q->user : call_who(call), now, &from,
                                      &err);
    else
        rc = store_model_alias_set(call->st, q->name, q->alias, q->version,
                                   q->user && q->user[0] ? q->user : NULL, now, &from, &to, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    Track__V1__ModelAliasResult *r = srv_alloc(&call->arena, sizeof(*r));
    Track__V1__ModelAliasMove *m = srv_alloc(&call->arena, sizeof(*m));
    if (!r || !m)
        return srv_op_oom(call);
    track__v1__model_alias_result__init(r);
    track__v1__model_alias_move__init(m);
    m->alias = q->alias;
    m->from_version = from;
    m->to_version = to;
    m->who = q->user ? q->user : wire_str("");
    m->ms = now;
    r->move = m;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_MODEL_ALIAS;
    call->rs->model_alias = r;
    return 0;
}

int srv_op_model_tag(struct srv_call *call)
{
    const Track__V1__ModelTag *q = call->rq->model_tag;
    struct store_err err = {0};
    char msg[400];
    int rc;

    if (str_limit(call, "target", q->target, 2 * STORE_MODEL_NAME_MAX + 1))
        return -1;
    if (limits_check_key("tag key", q->key, msg, sizeof(msg)) ||
        limits_check_value("tag value", q->value, msg, sizeof(msg)))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    rc = store_model_tag_put(call->st, q->target, q->key, q->value, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    Track__V1__ModelTagResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__model_tag_result__init(r);
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_MODEL_TAG;
    call->rs->model_tag = r;
    return 0;
}

int srv_op_model_create(struct srv_call *call)
{
    const Track__V1__ModelCreate *q = call->rq->model_create;
    struct store_err err = {0};
    int64_t now = wire_now_ms();
    int rc;

    if (str_limit(call, "name", q->name, STORE_MODEL_NAME_MAX) ||
        srv_op_check_kvs(call, "tag", q->tags, q->n_tags))
        return -1;
    if ((rc = store_model_create(call->st, q->name, now, &err)))
        return srv_op_fail_store(call, rc, &err);
    for (size_t i = 0; i < q->n_tags; i++)
        if ((rc = store_model_tag_put(call->st, q->name, q->tags[i]->key, q->tags[i]->value, &err)))
            return srv_op_fail_store(call, rc, &err);
    Track__V1__ModelCreateResult *r = srv_alloc(&call->arena, sizeof(*r));
    Track__V1__ModelInfo *m = srv_alloc(&call->arena, sizeof(*m));
    if (!r || !m)
        return srv_op_oom(call);
    track__v1__model_create_result__init(r);
    track__v1__model_info__init(m);
    m->name = srv_strdup(&call->arena, q->name);
    if (!m->name)
        return srv_op_oom(call);
    m->created_ms = now;
    r->model = m;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_MODEL_CREATE;
    call->rs->model_create = r;
    return 0;
}

/* ---- reads ------------------------------------------------------------------------ */

struct model_list {
    struct srv_arena *a;
    Track__V1__ModelInfo **items;
    size_t n, cap;
};

static int model_collect(void *ctx, const struct store_model *x)
{
    struct model_list *l = ctx;
    Track__V1__ModelInfo *m = new_item(l->a, (void ***)&l->items, l->n, &l->cap, sizeof(*m));
    if (!m)
        return -1;
    track__v1__model_info__init(m);
    m->name = srv_strdup(l->a, x->name);
    m->created_ms = x->created_ms;
    m->versions = x->versions;
    m->latest_version = x->latest_version;
    if (!m->name)
        return -1;
    l->items[l->n++] = m;
    return 0;
}

/* The model's tags and current aliases. */
static int model_finish(struct srv_call *call, Track__V1__ModelInfo *m, struct store_err *err)
{
    struct kv_list kv = {.a = &call->arena};
    struct alias_list al = {.a = &call->arena};
    int rc = store_model_tags(call->st, m->name, 0, kv_collect, &kv, err);
    if (!rc)
        rc = store_model_aliases(call->st, m->name, alias_collect, &al, err);
    m->tags = kv.items;
    m->n_tags = kv.n;
    m->aliases = al.moves;
    m->n_aliases = al.n;
    return rc;
}

/* ---- paged listings ------------------------------------------------------------
 * A page takes items while they fit in REPLY_PAGE_BYTES (op.h), at least
 * one, and the store is asked for at most a page's count of rows, so a
 * registry of any size is listed in pages of bounded memory. */
#define MODEL_PAGE_ITEMS   128
#define VERSION_PAGE_ITEMS 128
#define MOVE_PAGE_ITEMS    512

/* How many of the n items (packed sizes through size_of) fit in pg; the
 * first always when `one` (a page must make progress). */
static size_t page_take(struct page *pg, void **items, size_t n, size_t (*size_of)(const void *),
                        int one)
{
    size_t kept = 0;
    for (; kept < n; kept++) {
        size_t c = srv_op_item_cost(size_of(items[kept]));
        if ((kept > 0 || !one) && c > pg->left) {
            pg->full = 1;
            break;
        }
        pg->left -= c < pg->left ? c : pg->left;
    }
    return kept;
}

static size_t info_size(const void *m)
{
    return track__v1__model_info__get_packed_size(m);
}

static size_t version_size(const void *m)
{
    return track__v1__model_version__get_packed_size(m);
}

static size_t move_size(const void *m)
{
    return track__v1__model_alias_move__get_packed_size(m);
}

int srv_op_model_list(struct srv_call *call)
{
    const Track__V1__ModelList *q = call->rq->model_list;
    const char *after = q->after && q->after[0] ? q->after : NULL;
    struct model_list l = {.a = &call->arena};
    struct store_err err = {0};
    struct store_viewer vb;
    const struct store_viewer *v = srv_viewer(call, &vb);
    int rc;

    if (str_limit(call, "after", after, STORE_MODEL_NAME_MAX))
        return -1;
    rc = store_model_list_after(call->st, after, MODEL_PAGE_ITEMS, model_collect, &l, &err);
    /* the page's cursor is what the store gave, before filtering */
    size_t fetched = l.n;
    const char *last_fetched = fetched ? l.items[fetched - 1]->name : NULL;

    /* only the models one of whose versions the caller may read (authz.c) */
    if (rc >= 0 && v) {
        size_t k = 0;
        for (size_t i = 0; rc >= 0 && i < l.n; i++) {
            int visible = 0;
            rc = store_model_visible(call->st, v, l.items[i]->name, &visible, &err);
            if (rc >= 0 && visible)
                l.items[k++] = l.items[i];
        }
        l.n = k;
    }
    for (size_t i = 0; rc >= 0 && i < l.n; i++)
        rc = model_finish(call, l.items[i], &err);
    if (rc < 0)
        return err.msg[0] ? srv_op_fail_store(call, rc, &err) : srv_op_oom(call);
    Track__V1__ModelListResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__model_list_result__init(r);
    struct page pg = srv_op_page_new(0);
    size_t kept = page_take(&pg, (void **)l.items, l.n, info_size, 1);
    r->models = l.items;
    r->n_models = kept;
    if (kept < l.n)
        r->next_after = l.items[kept - 1]->name;
    else if (fetched == MODEL_PAGE_ITEMS)
        r->next_after = (char *)last_fetched;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_MODEL_LIST;
    call->rs->model_list = r;
    return 0;
}

int srv_op_model_show(struct srv_call *call)
{
    const Track__V1__ModelShow *q = call->rq->model_show;
    struct model_list ml = {.a = &call->arena};
    struct version_list vl = {.call = call};
    struct alias_list hl = {.a = &call->arena};
    struct store_err err = {0};
    int rc;

    if (str_limit(call, "name", q->name, STORE_MODEL_NAME_MAX))
        return -1;
    if (q->after_version < 0 || q->after_move < 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "after_version, after_move: must not be negative");
    rc = store_model_get(call->st, q->name, model_collect, &ml, &err);
    if (rc >= 0 && ml.n == 1)
        rc = model_finish(call, ml.items[0], &err);
    if (rc >= 0 && ml.n == 1 && !q->versions_done)
        rc = store_model_versions_after(call->st, q->name, q->after_version, VERSION_PAGE_ITEMS,
                                        version_collect, &vl, &err);
    if (rc < 0)
        return err.msg[0] ? srv_op_fail_store(call, rc, &err) : srv_op_oom(call);
    if (ml.n != 1)
        return srv_op_fail(call, TRACK__V1__CODE__NOT_FOUND, "model \"%.250s\" not found", q->name);
    /* the page's cursor is what the store gave, before filtering */
    size_t fetched = vl.n;
    int64_t last_fetched = fetched ? vl.items[fetched - 1]->version : 0;
    if (!srv_sees_all(call)) { /* versions of runs the caller may not read are left out */
        size_t k = 0;
        for (size_t i = 0; i < vl.n; i++) {
            int level = 0;
            if (vl.items[i]->run_id.len == 16 &&
                srv_authz_run_level(call, vl.items[i]->run_id.data, &level))
                return -1;
            if (level >= STORE_LEVEL_READ)
                vl.items[k++] = vl.items[i];
        }
        vl.n = k;
    }
    if (versions_finish(call, &vl))
        return -1;
    Track__V1__ModelShowResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__model_show_result__init(r);
    r->model = ml.items[0];
    struct page pg = srv_op_page_new(srv_op_item_cost(info_size(r->model)));
    size_t kept = page_take(&pg, (void **)vl.items, vl.n, version_size, 1);
    r->versions = vl.items;
    r->n_versions = kept;
    r->next_after_move = q->after_move;
    if (kept < vl.n || fetched == VERSION_PAGE_ITEMS) {
        /* the history follows once every version was sent */
        r->more = 1;
        r->next_after_version = kept < vl.n ? vl.items[kept - 1]->version : last_fetched;
    } else {
        r->versions_done = 1;
        rc = store_model_history_after(call->st, q->name, q->after_move, MOVE_PAGE_ITEMS,
                                       move_collect, &hl, &err);
        if (rc < 0)
            return err.msg[0] ? srv_op_fail_store(call, rc, &err) : srv_op_oom(call);
        /* with versions in this page, the moves may all wait for the next */
        size_t taken = page_take(&pg, (void **)hl.moves, hl.n, move_size, vl.n == 0);
        r->history = hl.moves;
        r->n_history = taken;
        if (taken < hl.n || hl.n == MOVE_PAGE_ITEMS) {
            r->more = 1;
            r->next_after_move = taken ? hl.moves[taken - 1]->id : q->after_move;
        }
    }
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_MODEL_SHOW;
    call->rs->model_show = r;
    return 0;
}

int srv_op_model_get(struct srv_call *call)
{
    const Track__V1__ModelGet *q = call->rq->model_get;

    if (str_limit(call, "ref", q->ref, 2 * STORE_MODEL_NAME_MAX + 1))
        return -1;
    Track__V1__ModelGetResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__model_get_result__init(r);
    if (!(r->version = version_of(call, q->ref)))
        return -1;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_MODEL_GET;
    call->rs->model_get = r;
    return 0;
}
