/*
 * dispatch.c: the operation table and its handlers. A handler gets a decoded
 * Request and a store handle and fills a Response; it never sees a socket,
 * so the nanomsg loop today and an HTTP front later call the same table.
 *
 * Every field from the wire is checked here (through limits.h) before it
 * reaches storage, and every failure is answered with a specific code and a
 * message naming the field. Response pieces live in the call's arena.
 */
#include "srv.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "track_limits.h"

/* Points in a history reply when the client leaves the page size to us:
 * large enough to amortise a round trip; larger pages were slower per point
 * (bench B7: 17-23 M points/s with 262144-point pages, 3-7 M with 500000,
 * from zeroing, copying and page faults on multi-megabyte buffers). */
#define HISTORY_PAGE_POINTS 262144

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

__attribute__((format(printf, 3, 4))) static int fail(struct srv_call *call, int code,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->msg, sizeof(call->msg), fmt, ap);
    va_end(ap);
    call->code = code;
    return -1;
}

static int fail_store(struct srv_call *call, int rc, const struct store_err *err)
{
    return fail(call, srv_code_from_store(rc), "%s", err->msg[0] ? err->msg : "storage error");
}

static int oom(struct srv_call *call)
{
    return fail(call, TRACK__V1__CODE__RESOURCE_EXHAUSTED, "daemon out of memory");
}

/* Resolves `run` (32 hex or a unique prefix of 4+) named by `field`. */
static int resolve_run(struct srv_call *call, const char *field, const char *run, uint8_t id[16])
{
    struct store_err err = {0};
    int rc;

    if (!run || !*run)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s: required", field);
    if (!wire_is_run_prefix(run))
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                    "%s: \"%.40s\" is not a run id (4 to 32 hex characters)", field, run);
    if (strlen(run) == 32 && wire_unhex(run, id) == 0)
        return 0;
    rc = store_run_resolve(call->st, run, id, &err);
    if (rc)
        return fail_store(call, rc, &err);
    return 0;
}

static int check_kvs(struct srv_call *call, const char *what, Track__V1__KeyValue **kv, size_t n)
{
    char field[64], msg[400];

    if (n > LIMIT_BATCH_KV)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s: %zu entries, limit is %d", what,
                    n, LIMIT_BATCH_KV);
    for (size_t i = 0; i < n; i++) {
        snprintf(field, sizeof(field), "%s key", what);
        if (limits_check_key(field, kv[i]->key, msg, sizeof(msg)))
            return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
        snprintf(field, sizeof(field), "%s \"%s\" value", what, kv[i]->key);
        if (limits_check_value(field, kv[i]->value, msg, sizeof(msg)))
            return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    }
    return 0;
}

static int put_kvs(struct srv_call *call, const uint8_t run[16], int params,
                   Track__V1__KeyValue **kv, size_t n)
{
    struct store_err err = {0};
    for (size_t i = 0; i < n; i++) {
        int rc = params ? store_param_put(call->st, run, kv[i]->key, kv[i]->value, &err)
                        : store_tag_put(call->st, run, kv[i]->key, kv[i]->value, &err);
        if (rc)
            return fail_store(call, rc, &err);
    }
    return 0;
}

/* Makes room for one more pointer in a list built in the arena (doubling,
 * so a list of n costs log n allocations). */
static int grow(struct srv_arena *a, void ***items, size_t n, size_t *cap)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void **bigger = srv_alloc(a, ncap * sizeof(*bigger));
    if (!bigger)
        return -1;
    if (n)
        memcpy(bigger, *items, n * sizeof(*bigger));
    *items = bigger;
    *cap = ncap;
    return 0;
}

/* ---- building responses ---------------------------------------------------- */

struct kv_list {
    struct srv_call *call;
    Track__V1__KeyValue **items;
    size_t n, cap;
};

static int kv_collect(void *ctx, const char *key, const char *value)
{
    struct kv_list *l = ctx;
    struct srv_arena *a = &l->call->arena;

    if (grow(a, (void ***)&l->items, l->n, &l->cap))
        return -1;
    Track__V1__KeyValue *kv = srv_alloc(a, sizeof(*kv));
    if (!kv)
        return -1;
    track__v1__key_value__init(kv);
    kv->key = srv_strdup(a, key);
    kv->value = srv_strdup(a, value);
    if (!kv->key || !kv->value)
        return -1;
    l->items[l->n++] = kv;
    return 0;
}

struct summary_list {
    struct srv_call *call;
    Track__V1__MetricSummary **items;
    size_t n, cap;
};

static int summary_collect(void *ctx, const struct store_metric_summary *s)
{
    struct summary_list *l = ctx;
    struct srv_arena *a = &l->call->arena;

    if (grow(a, (void ***)&l->items, l->n, &l->cap))
        return -1;
    Track__V1__MetricSummary *m = srv_alloc(a, sizeof(*m));
    if (!m)
        return -1;
    track__v1__metric_summary__init(m);
    m->key = srv_strdup(a, s->key);
    if (!m->key)
        return -1;
    m->last = s->last;
    m->min = s->min;
    m->max = s->max;
    m->count = s->count;
    m->last_step = s->last_step;
    m->last_ms = s->last_ms;
    l->items[l->n++] = m;
    return 0;
}

static Track__V1__Run *run_from_store(struct srv_arena *a, const struct store_run *r)
{
    Track__V1__Run *m = srv_alloc(a, sizeof(*m));
    if (!m)
        return NULL;
    track__v1__run__init(m);
    m->run_id.data = srv_alloc(a, 16);
    m->name = srv_strdup(a, r->name ? r->name : "");
    m->experiment = srv_strdup(a, r->experiment ? r->experiment : "");
    m->user = srv_strdup(a, r->user ? r->user : "");
    if (!m->run_id.data || !m->name || !m->experiment || !m->user)
        return NULL;
    memcpy(m->run_id.data, r->id, 16);
    m->run_id.len = 16;
    m->status = (Track__V1__RunStatus)r->status;
    m->start_ms = r->start_ms;
    m->end_ms = r->end_ms;
    if (r->has_parent) {
        m->parent_id.data = srv_alloc(a, 16);
        if (!m->parent_id.data)
            return NULL;
        memcpy(m->parent_id.data, r->parent, 16);
        m->parent_id.len = 16;
    }
    return m;
}

struct one_run {
    struct srv_call *call;
    Track__V1__Run *run;
};

static int one_run_cb(void *ctx, const struct store_run *r)
{
    struct one_run *o = ctx;
    o->run = run_from_store(&o->call->arena, r);
    return o->run ? 0 : -1;
}

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

static size_t varint_len(size_t n)
{
    size_t len = 1;
    while (n >= 0x80) {
        n >>= 7;
        len++;
    }
    return len;
}

/* What a sub-message of packed size n costs inside a repeated field. */
static size_t item_cost(size_t n)
{
    return 1 + varint_len(n) + n;
}

static int token_decode(struct srv_call *call, ProtobufCBinaryData t, struct page_cursor *c)
{
    memset(c, 0, sizeof(*c));
    if (t.len == 0)
        return 0;
    if (t.len < TOKEN_HEAD || t.len > TOKEN_HEAD + LIMIT_KEY_BYTES || t.data[0] != 'P' ||
        t.data[1] != '1' || t.data[10] > 2 || memchr(t.data + TOKEN_HEAD, 0, t.len - TOKEN_HEAD))
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                    "page_token: not a token this server gave (%zu bytes)", t.len);
    uint64_t idx = 0;
    for (int i = 0; i < 8; i++)
        idx |= (uint64_t)t.data[2 + i] << (8 * i);
    if (idx > (uint64_t)INT32_MAX)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                    "page_token: run index %llu out of range", (unsigned long long)idx);
    c->run_index = (int64_t)idx;
    c->section = t.data[10];
    memcpy(c->key, t.data + TOKEN_HEAD, t.len - TOKEN_HEAD);
    c->key[t.len - TOKEN_HEAD] = '\0';
    return 0;
}

static int token_encode(struct srv_call *call, int64_t run_index, const struct page *pg,
                        ProtobufCBinaryData *t)
{
    size_t klen = strlen(pg->key);
    uint8_t *p = srv_alloc(&call->arena, TOKEN_HEAD + klen);
    if (!p)
        return oom(call);
    p[0] = 'P';
    p[1] = '1';
    for (int i = 0; i < 8; i++)
        p[2 + i] = (uint8_t)((uint64_t)run_index >> (8 * i));
    p[10] = (uint8_t)pg->section;
    memcpy(p + TOKEN_HEAD, pg->key, klen);
    t->data = p;
    t->len = TOKEN_HEAD + klen;
    return 0;
}

struct detail_page {
    struct page *pg;
    struct kv_list *kv;
    struct summary_list *sums;
};

/* Takes the item when it fits (then remembers its key), else stops. */
static int page_take(struct page *pg, size_t packed, const char *key)
{
    size_t cost = item_cost(packed);
    if (cost > pg->left) {
        pg->full = 1;
        return 1;
    }
    pg->left -= cost;
    size_t klen = strlen(key);
    if (klen > LIMIT_KEY_BYTES)
        klen = LIMIT_KEY_BYTES;
    memcpy(pg->key, key, klen);
    pg->key[klen] = '\0';
    return 0;
}

static int kv_collect_paged(void *ctx, const char *key, const char *value)
{
    struct detail_page *d = ctx;
    Track__V1__KeyValue kv = TRACK__V1__KEY_VALUE__INIT;

    kv.key = wire_str(key);
    kv.value = wire_str(value);
    if (page_take(d->pg, track__v1__key_value__get_packed_size(&kv), key))
        return 1;
    return kv_collect(d->kv, key, value);
}

static int summary_collect_paged(void *ctx, const struct store_metric_summary *s)
{
    struct detail_page *d = ctx;
    Track__V1__MetricSummary m = TRACK__V1__METRIC_SUMMARY__INIT;

    m.key = wire_str(s->key);
    m.last = s->last;
    m.min = s->min;
    m.max = s->max;
    m.count = s->count;
    m.last_step = s->last_step;
    m.last_ms = s->last_ms;
    if (page_take(d->pg, track__v1__metric_summary__get_packed_size(&m), s->key))
        return 1;
    return summary_collect(d->sums, s);
}

/* Adds to run `m` its details from (section, after) on, while they fit in
 * pg; pg->full then says where it stopped. */
static int run_details_page(struct srv_call *call, Track__V1__Run *m, int section,
                            const char *after, struct page *pg)
{
    struct store_err err = {0};
    struct kv_list params = {.call = call}, tags = {.call = call};
    struct summary_list sums = {.call = call};
    struct detail_page d = {.pg = pg, .kv = &params, .sums = &sums};
    int rc = 0;

    for (int sec = section; sec <= 2 && !pg->full; sec++) {
        const char *from = sec == section ? after : "";
        /* each item costs 5 bytes at least: no page holds more rows */
        int limit = (int)(pg->left / 5 + 1);
        snprintf(pg->key, sizeof(pg->key), "%s", from);
        pg->section = sec;
        if (sec == 0)
            rc = store_param_list_after(call->st, m->run_id.data, from, limit, kv_collect_paged, &d,
                                        &err);
        else if (sec == 1) {
            d.kv = &tags;
            rc = store_tag_list_after(call->st, m->run_id.data, from, limit, kv_collect_paged, &d,
                                      &err);
        } else
            rc = store_metric_summaries_after(call->st, m->run_id.data, from, limit,
                                              summary_collect_paged, &d, &err);
        if (rc < 0)
            return err.msg[0] ? fail_store(call, rc, &err) : oom(call);
    }
    m->params = params.items;
    m->n_params = params.n;
    m->tags = tags.items;
    m->n_tags = tags.n;
    m->metrics = sums.items;
    m->n_metrics = sums.n;
    return 0;
}

static struct page page_new(size_t used)
{
    struct page pg = {0};
    pg.left = REPLY_PAGE_BYTES - REPLY_SLACK - (used < REPLY_PAGE_BYTES / 2 ? used : 0);
    return pg;
}

/* The run's header and the first page of its details (a write's reply:
 * the client reads the rest with RunGet). */
static int load_run(struct srv_call *call, const uint8_t id[16], Track__V1__Run **out)
{
    struct store_err err = {0};
    struct one_run o = {.call = call};
    int rc = store_run_get(call->st, id, one_run_cb, &o, &err);
    if (rc)
        return err.msg[0] ? fail_store(call, rc, &err) : oom(call);
    struct page pg = page_new(track__v1__run__get_packed_size(o.run));
    if (run_details_page(call, o.run, 0, "", &pg))
        return -1;
    *out = o.run;
    return 0;
}

/* ---- handlers -------------------------------------------------------------------- */

static int op_hello(struct srv_call *call)
{
    Track__V1__HelloResult *h = srv_alloc(&call->arena, sizeof(*h));
    if (!h)
        return oom(call);
    track__v1__hello_result__init(h);
    h->server_version = wire_str(TRACKD_VERSION);
    h->protocol = WIRE_PROTOCOL;
    h->max_frame_bytes = call->frame_limit ? call->frame_limit : LIMIT_FRAME_BYTES;
    h->max_batch_points = LIMIT_BATCH_POINTS;
    h->max_key_bytes = LIMIT_KEY_BYTES;
    h->max_value_bytes = LIMIT_VALUE_BYTES;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_HELLO;
    call->rs->hello = h;
    return 0;
}

static int op_status(struct srv_call *call)
{
    struct store_counts c = {0};
    struct store_err err = {0};
    struct srv *srv = call->srv;
    Track__V1__StatusResult *s;
    int rc = store_counts(call->st, &c, &err);

    if (rc)
        return fail_store(call, rc, &err);
    s = srv_alloc(&call->arena, sizeof(*s));
    if (!s)
        return oom(call);
    track__v1__status_result__init(s);
    s->server_version = wire_str(TRACKD_VERSION);
    s->uptime_ms = wire_now_ms() - srv->started_ms;
    s->data_dir = srv->cfg.data_dir;
    s->experiments = c.experiments;
    s->runs = c.runs;
    s->metric_points = c.metric_points;
    s->db_bytes = c.db_bytes;
    s->listen = (char **)(uintptr_t)srv->cfg.listen;
    s->n_listen = (size_t)srv->cfg.n_listen;
    pthread_mutex_lock(&srv->stats_lock);
    s->requests = srv->requests;
    pthread_mutex_unlock(&srv->stats_lock);
    s->pid = (int64_t)getpid();
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_STATUS;
    call->rs->status = s;
    return 0;
}

static int op_experiment_create(struct srv_call *call)
{
    const Track__V1__ExperimentCreate *q = call->rq->experiment_create;
    struct store_err err = {0};
    char msg[400];
    int64_t id;
    int rc;

    if (limits_check_name("experiment name", q->name, 0, msg, sizeof(msg)))
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    rc = store_experiment_create(call->st, q->name, wire_now_ms(), &id, &err);
    if (rc)
        return fail_store(call, rc, &err);
    Track__V1__Experiment *e = srv_alloc(&call->arena, sizeof(*e));
    if (!e)
        return oom(call);
    track__v1__experiment__init(e);
    e->id = id;
    e->name = q->name;
    e->created_ms = wire_now_ms();
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_EXPERIMENT;
    call->rs->experiment = e;
    return 0;
}

struct exp_list {
    struct srv_call *call;
    Track__V1__Experiment **items;
    size_t n, cap;
    struct page *pg; /* NULL: no bound */
    int64_t skip, seen;
};

static int exp_collect(void *ctx, const struct store_experiment *x)
{
    struct exp_list *l = ctx;
    struct srv_arena *a = &l->call->arena;

    if (l->seen++ < l->skip)
        return 0;
    if (grow(a, (void ***)&l->items, l->n, &l->cap))
        return -1;
    Track__V1__Experiment *e = srv_alloc(a, sizeof(*e));
    if (!e)
        return -1;
    track__v1__experiment__init(e);
    e->id = x->id;
    e->name = srv_strdup(a, x->name);
    if (!e->name)
        return -1;
    e->archived = x->archived != 0;
    e->created_ms = x->created_ms;
    e->run_count = x->run_count;
    if (l->pg) {
        size_t cost = item_cost(track__v1__experiment__get_packed_size(e));
        if (cost > l->pg->left) {
            l->pg->full = 1;
            return 1;
        }
        l->pg->left -= cost;
    }
    l->items[l->n++] = e;
    return 0;
}

static int op_experiment_list(struct srv_call *call)
{
    struct page_cursor cur;
    struct page pg = page_new(0);
    struct exp_list l = {.call = call, .pg = &pg};
    struct store_err err = {0};

    if (token_decode(call, call->rq->experiment_list->page_token, &cur))
        return -1;
    l.skip = cur.run_index; /* experiments of earlier pages */
    int rc = store_experiment_list(call->st, exp_collect, &l, &err);
    if (rc < 0)
        return err.msg[0] ? fail_store(call, rc, &err) : oom(call);
    Track__V1__ExperimentListResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return oom(call);
    track__v1__experiment_list_result__init(r);
    r->experiments = l.items;
    r->n_experiments = l.n;
    pg.section = 0;
    pg.key[0] = '\0';
    if (pg.full && token_encode(call, cur.run_index + (int64_t)l.n, &pg, &r->next_page_token))
        return -1;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_EXPERIMENT_LIST;
    call->rs->experiment_list = r;
    return 0;
}

static int op_run_start(struct srv_call *call)
{
    const Track__V1__RunStart *q = call->rq->run_start;
    struct store_run_start rs = {0};
    struct store_err err = {0};
    const char *exp = (q->experiment && *q->experiment) ? q->experiment : "Default";
    char msg[400];
    Track__V1__Run *run;
    int rc;

    if (q->run_id.len != 16)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "run_id: must be 16 bytes, got %zu",
                    q->run_id.len);
    if (limits_check_name("experiment name", exp, 0, msg, sizeof(msg)) ||
        limits_check_name("run name", q->name, 1, msg, sizeof(msg)) ||
        limits_check_name("user", q->user, 1, msg, sizeof(msg)))
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    if (check_kvs(call, "param", q->params, q->n_params) ||
        check_kvs(call, "tag", q->tags, q->n_tags))
        return -1;
    if (q->start_ms < 0)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "start_ms: must not be negative");
    memcpy(rs.id, q->run_id.data, 16);
    if (q->parent && *q->parent) {
        if (resolve_run(call, "parent", q->parent, rs.parent))
            return -1;
        rs.has_parent = 1;
    }
    rc = store_experiment_ensure(call->st, exp, wire_now_ms(), &rs.experiment_id, &err);
    if (rc)
        return fail_store(call, rc, &err);
    rs.name = q->name;
    rs.start_ms = q->start_ms ? q->start_ms : wire_now_ms();
    rs.user = q->user;
    rc = store_run_start(call->st, &rs, &err);
    if (rc)
        return fail_store(call, rc, &err);
    if (put_kvs(call, rs.id, 1, q->params, q->n_params) ||
        put_kvs(call, rs.id, 0, q->tags, q->n_tags))
        return -1;
    if (load_run(call, rs.id, &run))
        return -1;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_RUN;
    call->rs->run = run;
    return 0;
}

static int op_run_end(struct srv_call *call)
{
    const Track__V1__RunEnd *q = call->rq->run_end;
    struct store_err err = {0};
    uint8_t id[16];
    Track__V1__Run *run;
    int rc;

    if (q->status < TRACK__V1__RUN_STATUS__FINISHED || q->status > TRACK__V1__RUN_STATUS__KILLED)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                    "status: must be FINISHED, FAILED or KILLED");
    if (q->end_ms < 0)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "end_ms: must not be negative");
    if (resolve_run(call, "run", q->run, id))
        return -1;
    /* end_ms 0: the store takes now, never before the run's start */
    rc = store_run_end(call->st, id, (int)q->status, q->end_ms, &err);
    if (rc)
        return fail_store(call, rc, &err);
    if (load_run(call, id, &run))
        return -1;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_RUN;
    call->rs->run = run;
    return 0;
}

static int op_run_get(struct srv_call *call)
{
    const Track__V1__RunGet *q = call->rq->run_get;
    struct store_err err = {0};
    struct one_run o = {.call = call};
    struct page_cursor cur;
    uint8_t id[16];
    int rc;

    if (token_decode(call, q->page_token, &cur) || resolve_run(call, "run", q->run, id))
        return -1;
    rc = store_run_get(call->st, id, one_run_cb, &o, &err);
    if (rc)
        return err.msg[0] ? fail_store(call, rc, &err) : oom(call);
    struct page pg = page_new(track__v1__run__get_packed_size(o.run));
    if (run_details_page(call, o.run, cur.section, cur.key, &pg))
        return -1;
    Track__V1__RunGetResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return oom(call);
    track__v1__run_get_result__init(r);
    r->run = o.run;
    if (pg.full && token_encode(call, 0, &pg, &r->next_page_token))
        return -1;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_RUN_GET;
    call->rs->run_get = r;
    return 0;
}

static int op_run_resolve(struct srv_call *call)
{
    uint8_t id[16];
    struct store_err err = {0};
    const char *run = call->rq->run_resolve->run;
    int rc;

    if (resolve_run(call, "run", run, id))
        return -1;
    if (strlen(run) == 32) {
        struct one_run o = {.call = call};
        rc = store_run_get(call->st, id, one_run_cb, &o, &err);
        if (rc)
            return err.msg[0] ? fail_store(call, rc, &err) : oom(call);
    }
    Track__V1__RunResolveResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return oom(call);
    track__v1__run_resolve_result__init(r);
    r->run_id.data = srv_alloc(&call->arena, 16);
    if (!r->run_id.data)
        return oom(call);
    memcpy(r->run_id.data, id, 16);
    r->run_id.len = 16;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_RUN_RESOLVE;
    call->rs->run_resolve = r;
    return 0;
}

struct run_list {
    struct srv_call *call;
    Track__V1__Run **items;
    size_t n, cap;
};

struct run_page {
    struct run_list *l;
    struct page *pg;
    int64_t skip, seen; /* runs of earlier pages, runs listed */
};

/* Skips the runs of earlier pages; takes run headers while they fit. */
static int run_collect_paged(void *ctx, const struct store_run *r)
{
    struct run_page *p = ctx;
    struct run_list *l = p->l;
    struct srv_arena *a = &l->call->arena;

    if (p->seen++ < p->skip)
        return 0;
    if (grow(a, (void ***)&l->items, l->n, &l->cap))
        return -1;
    Track__V1__Run *m = run_from_store(a, r);
    if (!m)
        return -1;
    /* 4 bytes beyond the header's own length: room for its details' growth */
    size_t cost = item_cost(track__v1__run__get_packed_size(m)) + 4;
    if (cost > p->pg->left) {
        p->pg->full = 1;
        return 1;
    }
    p->pg->left -= cost;
    l->items[l->n++] = m;
    return 0;
}

static int op_run_list(struct srv_call *call)
{
    const Track__V1__RunList *q = call->rq->run_list;
    struct store_run_query sq = {0};
    struct run_list l = {.call = call};
    struct store_err err = {0};
    struct page_cursor cur;
    const char **exps = NULL;
    char msg[400];
    int rc;

    if (q->n_experiments > 1000)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "experiments: more than 1000");
    if (q->filter && strlen(q->filter) > LIMIT_FILTER_BYTES)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "filter: longer than %d bytes",
                    LIMIT_FILTER_BYTES);
    if (q->order_by && strlen(q->order_by) > LIMIT_FILTER_BYTES)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "order_by: longer than %d bytes",
                    LIMIT_FILTER_BYTES);
    if (q->limit < 0 || q->limit > LIMIT_RUN_LIST)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "limit: must be 0..%d",
                    LIMIT_RUN_LIST);
    if (q->n_experiments) {
        exps = srv_alloc(&call->arena, (q->n_experiments + 1) * sizeof(*exps));
        if (!exps)
            return oom(call);
        for (size_t i = 0; i < q->n_experiments; i++) {
            if (limits_check_name("experiments", q->experiments[i], 0, msg, sizeof(msg)))
                return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
            exps[i] = q->experiments[i];
        }
    }
    if (token_decode(call, q->page_token, &cur))
        return -1;
    sq.experiments = exps;
    sq.filter = q->filter;
    sq.order_by = q->order_by;
    sq.limit = q->limit ? q->limit : LIMIT_RUN_LIST;
    /* with details, headers take half a page at most: the rest is for the
     * details, so the first run of a page always gets some */
    struct page pg = page_new(0), hpg = pg;
    if (q->with_details)
        hpg.left /= 2;
    size_t header_budget = hpg.left;
    struct run_page rp = {.l = &l, .pg = &hpg, .skip = cur.run_index};
    rc = store_run_list(call->st, &sq, run_collect_paged, &rp, &err);
    if (rc < 0)
        return err.msg[0] ? fail_store(call, rc, &err) : oom(call);
    pg.left -= header_budget - hpg.left;
    pg.full = hpg.full;
    int64_t next = cur.run_index + (int64_t)l.n;
    if (q->with_details) {
        for (size_t i = 0; i < l.n; i++) {
            struct page dpg = pg;
            dpg.full = 0;
            if (run_details_page(call, l.items[i], i ? 0 : cur.section, i ? "" : cur.key, &dpg))
                return -1;
            pg.left = dpg.left;
            if (dpg.full) {
                pg = dpg;
                l.n = i + 1;
                next = cur.run_index + (int64_t)i;
                break;
            }
        }
    }
    if (pg.full && next == cur.run_index + (int64_t)l.n) {
        pg.section = 0; /* stopped between runs: the next one from its start */
        pg.key[0] = '\0';
    }
    Track__V1__RunListResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return oom(call);
    track__v1__run_list_result__init(r);
    r->runs = l.items;
    r->n_runs = l.n;
    if (pg.full && token_encode(call, next, &pg, &r->next_page_token))
        return -1;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_RUN_LIST;
    call->rs->run_list = r;
    return 0;
}

static int check_series(struct srv_call *call, const Track__V1__MetricSeries *m, size_t *total)
{
    char msg[400];

    if (limits_check_key("metric key", m->key, msg, sizeof(msg)))
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    if (m->n_values != m->n_steps || (m->n_times_ms && m->n_times_ms != m->n_values))
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                    "metric \"%s\": %zu values, %zu steps and %zu times do not match", m->key,
                    m->n_values, m->n_steps, m->n_times_ms);
    if (m->n_values == 0)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "metric \"%s\": no points", m->key);
    *total += m->n_values;
    if (*total > LIMIT_BATCH_POINTS)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                    "metrics: more than %d points in one batch", LIMIT_BATCH_POINTS);
    for (size_t i = 0; i < m->n_steps; i++)
        if (m->steps[i] < 0)
            return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                        "metric \"%s\": step %lld is negative (point %zu)", m->key,
                        (long long)m->steps[i], i);
    for (size_t i = 0; i < m->n_times_ms; i++)
        if (m->times_ms[i] < 0)
            return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                        "metric \"%s\": time %lld is negative (point %zu)", m->key,
                        (long long)m->times_ms[i], i);
    return 0;
}

static int op_log_batch(struct srv_call *call)
{
    const Track__V1__LogBatch *q = call->rq->log_batch;
    struct store_err err = {0};
    size_t total = 0;
    uint8_t id[16];
    int rc;

    if (q->n_metrics > LIMIT_BATCH_SERIES)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "metrics: more than %d series",
                    LIMIT_BATCH_SERIES);
    if (check_kvs(call, "param", q->params, q->n_params) ||
        check_kvs(call, "tag", q->tags, q->n_tags))
        return -1;
    for (size_t i = 0; i < q->n_metrics; i++)
        if (check_series(call, q->metrics[i], &total))
            return -1;
    if (resolve_run(call, "run", q->run, id))
        return -1;
    if (put_kvs(call, id, 1, q->params, q->n_params) || put_kvs(call, id, 0, q->tags, q->n_tags))
        return -1;
    for (size_t i = 0; i < q->n_metrics; i++) {
        const Track__V1__MetricSeries *m = q->metrics[i];
        const int64_t *times = m->times_ms;
        if (!m->n_times_ms) {
            int64_t now = wire_now_ms(), *t = srv_alloc(&call->arena, m->n_values * sizeof(*t));
            if (!t)
                return oom(call);
            for (size_t k = 0; k < m->n_values; k++)
                t[k] = now;
            times = t;
        }
        rc = store_metric_append(call->st, id, m->key, m->steps, times, m->values, m->n_values,
                                 &err);
        if (rc)
            return fail_store(call, rc, &err);
    }
    Track__V1__LogBatchResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return oom(call);
    track__v1__log_batch_result__init(r);
    r->points = (int64_t)total;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_LOG_BATCH;
    call->rs->log_batch = r;
    return 0;
}

struct hist {
    int64_t *steps, *times;
    double *values;
    size_t n, cap;
};

static int hist_collect(void *ctx, const int64_t *steps, const int64_t *times, const double *values,
                        size_t n)
{
    struct hist *h = ctx;
    if (n > h->cap - h->n)
        n = h->cap - h->n;
    memcpy(h->steps + h->n, steps, n * sizeof(*steps));
    memcpy(h->times + h->n, times, n * sizeof(*times));
    memcpy(h->values + h->n, values, n * sizeof(*values));
    h->n += n;
    return 0;
}

static int op_metric_history(struct srv_call *call)
{
    const Track__V1__MetricHistory *q = call->rq->metric_history;
    struct store_err err = {0};
    struct srv_arena *a = &call->arena;
    struct hist h = {0};
    int64_t max = q->max_points, next = 0;
    char msg[400];
    uint8_t id[16];
    int rc;

    if (limits_check_key("metric key", q->key, msg, sizeof(msg)))
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    if (q->after_seq < 0 || max < 0)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                    "after_seq and max_points: must not be negative");
    if (max == 0)
        max = HISTORY_PAGE_POINTS;
    if (max > LIMIT_HISTORY_POINTS)
        max = LIMIT_HISTORY_POINTS;
    if (resolve_run(call, "run", q->run, id))
        return -1;
    /* size the reply from the summary so the arrays are allocated once */
    int64_t count = 0;
    rc = store_metric_count(call->st, id, q->key, &count, &err);
    if (rc)
        return fail_store(call, rc, &err);
    int64_t avail = count - q->after_seq;
    h.cap = (size_t)(avail < 0 ? 0 : avail < max ? avail : max);
    if (h.cap) {
        /* filled whole by the store: no need to zero them first */
        h.steps = srv_alloc_raw(a, h.cap * sizeof(int64_t));
        h.times = srv_alloc_raw(a, h.cap * sizeof(int64_t));
        h.values = srv_alloc_raw(a, h.cap * sizeof(double));
        if (!h.steps || !h.times || !h.values)
            return oom(call);
    }
    rc = store_metric_history(call->st, id, q->key, q->after_seq, (int64_t)h.cap, hist_collect, &h,
                              &next, &err);
    if (rc)
        return fail_store(call, rc, &err);
    /* the summary promised points the chunks do not hold: answer what
     * there is, and say so when nothing is left, rather than a page that
     * is empty yet "more" (which a reader would ask for again forever) */
    if (h.cap && h.n == 0) {
        char hex[33];
        wire_hex(id, hex);
        return fail(call, TRACK__V1__CODE__INTERNAL,
                    "metric \"%s\" of run %s: the summary counts %lld points but the store has "
                    "none after seq %lld; the data is inconsistent (run trackd --check)",
                    q->key, hex, (long long)count, (long long)q->after_seq);
    }
    Track__V1__MetricHistoryResult *r = srv_alloc(a, sizeof(*r));
    Track__V1__MetricSeries *s = srv_alloc(a, sizeof(*s));
    if (!r || !s)
        return oom(call);
    track__v1__metric_history_result__init(r);
    track__v1__metric_series__init(s);
    s->key = q->key;
    s->steps = h.steps;
    s->n_steps = h.n;
    s->times_ms = h.times;
    s->n_times_ms = h.n;
    s->values = h.values;
    s->n_values = h.n;
    r->series = s;
    r->next_seq = q->after_seq + (int64_t)h.n;
    r->more = r->next_seq < count;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_METRIC_HISTORY;
    call->rs->metric_history = r;
    return 0;
}

static int op_metric_curve(struct srv_call *call)
{
    const Track__V1__MetricCurve *q = call->rq->metric_curve;
    struct store_err err = {0};
    struct srv_arena *a = &call->arena;
    char msg[400];
    uint8_t id[16];
    int n = 0, rc;
    int64_t count = 0;

    if (limits_check_key("metric key", q->key, msg, sizeof(msg)))
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    if (q->buckets < 1 || q->buckets > LIMIT_CURVE_BUCKETS)
        return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "buckets: must be 1..%d",
                    LIMIT_CURVE_BUCKETS);
    if (resolve_run(call, "run", q->run, id))
        return -1;
    Track__V1__MetricCurveResult *r = srv_alloc(a, sizeof(*r));
    if (!r)
        return oom(call);
    track__v1__metric_curve_result__init(r);
    size_t nb = (size_t)q->buckets, d8 = nb * sizeof(double), i8 = nb * sizeof(int64_t);
    struct store_bucket *b = srv_alloc(a, nb * sizeof(*b));
    r->steps = srv_alloc(a, i8);
    r->mins = srv_alloc(a, d8);
    r->maxs = srv_alloc(a, d8);
    r->lasts = srv_alloc(a, d8);
    r->firsts = srv_alloc(a, d8);
    r->first_steps = srv_alloc(a, i8);
    r->min_steps = srv_alloc(a, i8);
    r->max_steps = srv_alloc(a, i8);
    r->last_steps = srv_alloc(a, i8);
    r->first_times = srv_alloc(a, i8);
    r->min_times = srv_alloc(a, i8);
    r->max_times = srv_alloc(a, i8);
    r->last_times = srv_alloc(a, i8);
    if (!b || !r->steps || !r->mins || !r->maxs || !r->lasts || !r->firsts || !r->first_steps ||
        !r->min_steps || !r->max_steps || !r->last_steps || !r->first_times || !r->min_times ||
        !r->max_times || !r->last_times)
        return oom(call);
    rc = store_metric_m4(call->st, id, q->key, q->buckets, b, &n, &count, &err);
    if (rc)
        return fail_store(call, rc, &err);
    for (int i = 0; i < n; i++) {
        r->steps[i] = b[i].lo_step;
        r->firsts[i] = b[i].first.value;
        r->mins[i] = b[i].min.value;
        r->maxs[i] = b[i].max.value;
        r->lasts[i] = b[i].last.value;
        r->first_steps[i] = b[i].first.step;
        r->min_steps[i] = b[i].min.step;
        r->max_steps[i] = b[i].max.step;
        r->last_steps[i] = b[i].last.step;
        r->first_times[i] = b[i].first.time_ms;
        r->min_times[i] = b[i].min.time_ms;
        r->max_times[i] = b[i].max.time_ms;
        r->last_times[i] = b[i].last.time_ms;
    }
    r->n_steps = r->n_mins = r->n_maxs = r->n_lasts = r->n_firsts = (size_t)n;
    r->n_first_steps = r->n_min_steps = r->n_max_steps = r->n_last_steps = (size_t)n;
    r->n_first_times = r->n_min_times = r->n_max_times = r->n_last_times = (size_t)n;
    r->count = count;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_METRIC_CURVE;
    call->rs->metric_curve = r;
    return 0;
}

/* The retired request that had the daemon write a file at a client-chosen
 * path (anyone reaching a tcp:// listener could have it overwrite any file
 * trackd's user may write): refused, and nothing is written. */
static int op_backup(struct srv_call *call)
{
    return fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                "backup: trackd no longer writes a file at a path the client names; the client "
                "streams the copy (BackupBegin, BackupChunk): use `track backup FILE`");
}

/* ---- the table ---------------------------------------------------------------------- */

#define OP(c, n, k, f)                                                                             \
    {                                                                                              \
        TRACK__V1__REQUEST__OP_##c, n, k, f                                                        \
    }
static const struct srv_op ops[] = {
    OP(HELLO, "hello", SRV_READ, op_hello),
    OP(STATUS, "status", SRV_READ, op_status),
    OP(EXPERIMENT_CREATE, "experiment_create", SRV_WRITE, op_experiment_create),
    OP(EXPERIMENT_LIST, "experiment_list", SRV_READ, op_experiment_list),
    OP(RUN_START, "run_start", SRV_WRITE, op_run_start),
    OP(RUN_END, "run_end", SRV_WRITE, op_run_end),
    OP(RUN_GET, "run_get", SRV_READ, op_run_get),
    OP(RUN_LIST, "run_list", SRV_READ, op_run_list),
    OP(LOG_BATCH, "log_batch", SRV_WRITE, op_log_batch),
    OP(METRIC_HISTORY, "metric_history", SRV_READ, op_metric_history),
    OP(METRIC_CURVE, "metric_curve", SRV_READ, op_metric_curve),
    OP(RUN_RESOLVE, "run_resolve", SRV_READ, op_run_resolve),
    /* a read that makes its own snapshot: not inside the worker's read transaction */
    OP(BACKUP, "backup", SRV_READ | SRV_OWN_TXN, op_backup),
    OP(BACKUP_BEGIN, "backup_begin", SRV_READ | SRV_OWN_TXN, srv_op_backup_begin),
    OP(BACKUP_CHUNK, "backup_chunk", SRV_READ | SRV_OWN_TXN, srv_op_backup_chunk),
    OP(BACKUP_END, "backup_end", SRV_READ | SRV_OWN_TXN, srv_op_backup_end),
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
        fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "request_id: must be %d bytes, got %zu",
             WIRE_ID_BYTES, call->rq->request_id.len);
    else if (!op)
        fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "unknown operation (field %d)",
             (int)call->rq->op_case);
    else if (op->fn(call) == 0)
        return;
    if (!call->code)
        fail(call, TRACK__V1__CODE__INTERNAL, "operation failed");
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
