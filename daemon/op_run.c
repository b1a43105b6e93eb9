/*
 * op_run.c: the handlers of runs: RunStart (with its params and tags),
 * RunEnd, RunGet, RunResolve and RunList, and the building of a run's
 * reply (header, params, tags, metric summaries), paged by the reply's
 * byte budget (op.h). Metric points are op_metric.c's; the table is
 * dispatch.c's.
 */
#include "op.h"

#include <stdio.h>
#include <string.h>

#include "track_limits.h"

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

    if (srv_op_grow(a, (void ***)&l->items, l->n, &l->cap))
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

    if (srv_op_grow(a, (void ***)&l->items, l->n, &l->cap))
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
    m->deleted = r->deleted;
    m->deleted_ms = r->deleted_ms;
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

struct detail_page {
    struct page *pg;
    struct kv_list *kv;
    struct summary_list *sums;
};

/* Takes the item when it fits (then remembers its key), else stops. */
static int page_take(struct page *pg, size_t packed, const char *key)
{
    size_t cost = srv_op_item_cost(packed);
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
            return err.msg[0] ? srv_op_fail_store(call, rc, &err) : srv_op_oom(call);
    }
    m->params = params.items;
    m->n_params = params.n;
    m->tags = tags.items;
    m->n_tags = tags.n;
    m->metrics = sums.items;
    m->n_metrics = sums.n;
    return 0;
}

/* The run's header alone (id, name, experiment, status, times, user,
 * parent): the reply to RunStart and RunEnd. Its params, tags and metrics
 * are RunGet's: a start or end reads none of them back, and the reply kept
 * for an exactly-once retry stays ~100 bytes however many params the run
 * has (a 10^5-run sweep keeps 3 of them a run). */
static int load_run(struct srv_call *call, const uint8_t id[16], Track__V1__Run **out)
{
    struct store_err err = {0};
    struct one_run o = {.call = call};
    int rc = store_run_get(call->st, id, one_run_cb, &o, &err);
    if (rc)
        return err.msg[0] ? srv_op_fail_store(call, rc, &err) : srv_op_oom(call);
    *out = o.run;
    return 0;
}

int srv_op_run_start(struct srv_call *call)
{
    const Track__V1__RunStart *q = call->rq->run_start;
    struct store_run_start rs = {0};
    struct store_err err = {0};
    const char *exp = (q->experiment && *q->experiment) ? q->experiment : "Default";
    char msg[400];
    Track__V1__Run *run = NULL;
    int rc;

    if (q->run_id.len != 16)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "run_id: must be 16 bytes, got %zu", q->run_id.len);
    if (limits_check_name("experiment name", exp, 0, msg, sizeof(msg)) ||
        limits_check_name("run name", q->name, 1, msg, sizeof(msg)) ||
        limits_check_name("user", q->user, 1, msg, sizeof(msg)))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    if (srv_op_check_kvs(call, "param", q->params, q->n_params) ||
        srv_op_check_kvs(call, "tag", q->tags, q->n_tags))
        return -1;
    if (q->start_ms < 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "start_ms: must not be negative");
    memcpy(rs.id, q->run_id.data, 16);
    if (q->parent && *q->parent) {
        if (srv_op_resolve_run(call, "parent", q->parent, rs.parent))
            return -1;
        rs.has_parent = 1;
    }
    rc = store_experiment_ensure(call->st, exp, wire_now_ms(), &rs.experiment_id, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    rs.name = q->name;
    rs.start_ms = q->start_ms ? q->start_ms : wire_now_ms();
    rs.user = q->user;
    rc = store_run_start(call->st, &rs, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    if (srv_op_put_kvs(call, rs.id, 1, q->params, q->n_params) ||
        srv_op_put_kvs(call, rs.id, 0, q->tags, q->n_tags))
        return -1;
    if (load_run(call, rs.id, &run))
        return -1;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_RUN;
    call->rs->run = run;
    return 0;
}

int srv_op_run_end(struct srv_call *call)
{
    const Track__V1__RunEnd *q = call->rq->run_end;
    struct store_err err = {0};
    uint8_t id[16];
    Track__V1__Run *run = NULL;
    int rc;

    if (q->status < TRACK__V1__RUN_STATUS__FINISHED || q->status > TRACK__V1__RUN_STATUS__KILLED)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "status: must be FINISHED, FAILED or KILLED");
    if (q->end_ms < 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "end_ms: must not be negative");
    size_t points = 0;
    if (srv_op_check_series(call, q->metrics, q->n_metrics, &points))
        return -1;
    if (srv_op_resolve_run(call, "run", q->run, id))
        return -1;
    /* the last points first: a refused end undoes them with it (the
     * request's savepoint) */
    if (srv_op_put_series(call, id, q->metrics, q->n_metrics))
        return -1;
    /* end_ms 0: the store takes now, never before the run's start */
    rc = store_run_end(call->st, id, (int)q->status, q->end_ms, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    if (load_run(call, id, &run))
        return -1;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_RUN;
    call->rs->run = run;
    return 0;
}

int srv_op_run_get(struct srv_call *call)
{
    const Track__V1__RunGet *q = call->rq->run_get;
    struct store_err err = {0};
    struct one_run o = {.call = call};
    struct page_cursor cur;
    uint8_t id[16];
    int rc;

    if (srv_op_token_decode(call, q->page_token, &cur) ||
        srv_op_resolve_run(call, "run", q->run, id))
        return -1;
    rc = store_run_get(call->st, id, one_run_cb, &o, &err);
    if (rc)
        return err.msg[0] ? srv_op_fail_store(call, rc, &err) : srv_op_oom(call);
    rc = store_artifact_count(call->st, id, &o.run->artifacts, &o.run->artifact_bytes, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    struct page pg = srv_op_page_new(track__v1__run__get_packed_size(o.run));
    if (run_details_page(call, o.run, cur.section, cur.key, &pg))
        return -1;
    Track__V1__RunGetResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__run_get_result__init(r);
    r->run = o.run;
    if (pg.full && srv_op_token_encode(call, 0, &pg, &r->next_page_token))
        return -1;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_RUN_GET;
    call->rs->run_get = r;
    return 0;
}

int srv_op_run_resolve(struct srv_call *call)
{
    uint8_t id[16];
    struct store_err err = {0};
    const char *run = call->rq->run_resolve->run;
    int rc;

    if (srv_op_resolve_run(call, "run", run, id))
        return -1;
    if (strlen(run) == 32) {
        struct one_run o = {.call = call};
        rc = store_run_get(call->st, id, one_run_cb, &o, &err);
        if (rc)
            return err.msg[0] ? srv_op_fail_store(call, rc, &err) : srv_op_oom(call);
    }
    Track__V1__RunResolveResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__run_resolve_result__init(r);
    r->run_id.data = srv_alloc(&call->arena, 16);
    if (!r->run_id.data)
        return srv_op_oom(call);
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
    int64_t *rows; /* each item's store row (when its pages seek) */
    size_t rows_cap;
};

struct run_page {
    struct run_list *l;
    struct page *pg;
    int64_t skip, seen; /* runs of earlier pages, runs listed */
    int seeking;        /* the default order: pages seek (op.h "P2") */
};

/* Skips the runs of earlier pages; takes run headers while they fit. */
static int run_collect_paged(void *ctx, const struct store_run *r)
{
    struct run_page *p = ctx;
    struct run_list *l = p->l;
    struct srv_arena *a = &l->call->arena;

    if (p->seen++ < p->skip)
        return 0;
    if (srv_op_grow(a, (void ***)&l->items, l->n, &l->cap))
        return -1;
    Track__V1__Run *m = run_from_store(a, r);
    if (!m)
        return -1;
    /* 4 bytes beyond the header's own length: room for its details' growth */
    size_t cost = srv_op_item_cost(track__v1__run__get_packed_size(m)) + 4;
    if (cost > p->pg->left) {
        p->pg->full = 1;
        return 1;
    }
    p->pg->left -= cost;
    if (p->seeking) {
        if (l->n == l->rows_cap) {
            size_t ncap = l->rows_cap ? l->rows_cap * 2 : 64;
            int64_t *bigger = srv_alloc(a, ncap * sizeof(*bigger));
            if (!bigger)
                return -1;
            if (l->n)
                memcpy(bigger, l->rows, l->n * sizeof(*bigger));
            l->rows = bigger;
            l->rows_cap = ncap;
        }
        l->rows[l->n] = r->row;
    }
    l->items[l->n++] = m;
    return 0;
}

int srv_op_run_list(struct srv_call *call)
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
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "experiments: more than 1000");
    if (q->filter && strlen(q->filter) > LIMIT_FILTER_BYTES)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "filter: longer than %d bytes",
                           LIMIT_FILTER_BYTES);
    if (q->order_by && strlen(q->order_by) > LIMIT_FILTER_BYTES)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "order_by: longer than %d bytes", LIMIT_FILTER_BYTES);
    if (q->limit < 0 || q->limit > LIMIT_RUN_LIST)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "limit: must be 0..%d",
                           LIMIT_RUN_LIST);
    if (q->n_experiments) {
        exps = srv_alloc(&call->arena, (q->n_experiments + 1) * sizeof(*exps));
        if (!exps)
            return srv_op_oom(call);
        for (size_t i = 0; i < q->n_experiments; i++) {
            if (limits_check_name("experiments", q->experiments[i], 0, msg, sizeof(msg)))
                return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
            exps[i] = q->experiments[i];
        }
    }
    if (srv_op_token_decode(call, q->page_token, &cur))
        return -1;
    sq.experiments = exps;
    sq.filter = q->filter;
    sq.order_by = q->order_by;
    sq.limit = q->limit ? q->limit : LIMIT_RUN_LIST;
    /* with details, headers take half a page at most: the rest is for the
     * details, so the first run of a page always gets some */
    struct page pg = srv_op_page_new(0), hpg = pg;
    if (q->with_details)
        hpg.left /= 2;
    size_t header_budget = hpg.left;
    struct run_page rp = {.l = &l, .pg = &hpg, .skip = cur.run_index};
    /* newest first: a later page seeks to where the last one stopped, so it
     * reads its own runs only (op.h "P2"); other orders skip what earlier
     * pages sent */
    rp.seeking = !q->order_by || !*q->order_by;
    if (rp.seeking && cur.seek) {
        sq.seek = 1;
        sq.seek_inclusive = cur.seek_inclusive;
        sq.seek_start_ms = cur.seek_start_ms;
        sq.seek_row = cur.seek_row;
        rp.skip = 0;
        /* what is left of the limit: the runs before this page's first */
        sq.limit = sq.limit > cur.run_index ? sq.limit - (int)cur.run_index : 1;
    }
    struct store_viewer vb; /* only what the caller may read (authz.c) */
    sq.viewer = srv_viewer(call, &vb);
    rc = store_run_list(call->st, &sq, run_collect_paged, &rp, &err);
    if (rc < 0)
        return err.msg[0] ? srv_op_fail_store(call, rc, &err) : srv_op_oom(call);
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
        return srv_op_oom(call);
    track__v1__run_list_result__init(r);
    r->runs = l.items;
    r->n_runs = l.n;
    if (pg.full && rp.seeking && l.n > 0) {
        /* the next page starts at the run whose details continue, or
         * after the last one sent whole */
        struct page_cursor seek = {.seek = 1};
        size_t at = next == cur.run_index + (int64_t)l.n ? l.n - 1 : (size_t)(next - cur.run_index);
        seek.seek_inclusive = next != cur.run_index + (int64_t)l.n;
        seek.seek_start_ms = l.items[at]->start_ms;
        seek.seek_row = l.rows[at];
        if (srv_op_token_encode_seek(call, next, &pg, &seek, &r->next_page_token))
            return -1;
    } else if (pg.full && srv_op_token_encode(call, next, &pg, &r->next_page_token)) {
        return -1;
    }
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_RUN_LIST;
    call->rs->run_list = r;
    return 0;
}
