/*
 * trace.c: libtrack's reads of traces (TraceList, TraceGet): the traces an
 * OTLP exporter sent to trackd's /v1/traces, with their rollups, and one
 * trace's spans, every page of them, in one result the caller frees with
 * track_trace_result_free.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct track_trace_result {
    Track__V1__Response **pages;
    size_t n_pages, cap;
    struct track_trace_info *traces;
    struct track_span_info *spans;
    const char **models; /* every trace's model names, end to end */
};

void track_trace_result_free(struct track_trace_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_pages; i++)
        track__v1__response__free_unpacked(r->pages[i], NULL);
    free(r->pages);
    free(r->traces);
    free(r->spans);
    free(r->models);
    free(r);
}

int track_trace_id_parse(const char *hex, uint8_t id[16])
{
    track_run_id r;
    if (track_run_id_parse(hex, &r))
        return -1;
    memcpy(id, r.b, 16);
    return 0;
}

static int page(struct track_client *c, Track__V1__Request *rq, int want,
                struct track_trace_result *r, Track__V1__Response **out, struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    int rc = cl_read_want(c, rq, want, &rs, err);
    if (rc)
        return rc;
    if ((rc = cl_check_reply(rs, err))) {
        track__v1__response__free_unpacked(rs, NULL);
        return rc;
    }
    if (r->n_pages == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        Track__V1__Response **p = realloc(r->pages, cap * sizeof(*p));
        if (!p) {
            track__v1__response__free_unpacked(rs, NULL);
            return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        }
        r->pages = p;
        r->cap = cap;
    }
    r->pages[r->n_pages++] = rs;
    *out = rs;
    return 0;
}

static void info_of(const Track__V1__TraceInfo *t, struct track_trace_info *o, const char **models)
{
    memset(o, 0, sizeof(*o));
    if (t->trace_id.len == 16)
        memcpy(o->trace_id, t->trace_id.data, 16);
    o->experiment = t->experiment;
    if (t->run_id.len == 16) {
        o->has_run = 1;
        memcpy(o->run.b, t->run_id.data, 16);
    }
    o->root_name = t->root_name;
    o->start_ns = t->start_ns;
    o->end_ns = t->end_ns;
    o->spans = t->spans;
    o->errors = t->errors;
    o->tokens_in = t->tokens_in;
    o->tokens_out = t->tokens_out;
    o->tokens_total = t->tokens_total;
    o->cost = t->cost;
    for (size_t i = 0; i < t->n_models; i++)
        models[i] = t->models[i];
    o->models = models;
    o->n_models = t->n_models;
}

int track_trace_list(struct track_client *c, const struct track_trace_query *q,
                     struct track_trace_result **res, const struct track_trace_info **traces,
                     size_t *n, int *more, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__TraceList tl = TRACK__V1__TRACE_LIST__INIT;
    Track__V1__Response *rs;
    size_t ne = 0;
    int rc;

    *res = calloc(1, sizeof(**res));
    *traces = NULL;
    *n = 0;
    if (!*res)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    while (q->experiments && q->experiments[ne])
        ne++;
    tl.experiments = (char **)q->experiments;
    tl.n_experiments = ne;
    tl.run = (char *)(q->run ? q->run : "");
    tl.limit = q->limit;
    tl.before_start_ns = q->before_start_ns;
    tl.min_tokens = q->min_tokens;
    tl.min_duration_ns = q->min_duration_ns;
    tl.errors_only = q->errors_only;
    tl.filter = (char *)(q->filter ? q->filter : "");
    rq.op_case = TRACK__V1__REQUEST__OP_TRACE_LIST;
    rq.trace_list = &tl;
    if ((rc = page(c, &rq, TRACK__V1__RESPONSE__RESULT_TRACE_LIST, *res, &rs, err)))
        goto fail;
    const Track__V1__TraceListResult *l = rs->trace_list;
    size_t models = 0;
    for (size_t i = 0; i < l->n_traces; i++)
        models += l->traces[i]->n_models;
    (*res)->traces = calloc(l->n_traces + 1, sizeof(*(*res)->traces));
    (*res)->models = calloc(models + 1, sizeof(char *));
    if (!(*res)->traces || !(*res)->models) {
        rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    for (size_t i = 0, m = 0; i < l->n_traces; i++) {
        info_of(l->traces[i], &(*res)->traces[i], (*res)->models + m);
        m += l->traces[i]->n_models;
    }
    *traces = (*res)->traces;
    *n = l->n_traces;
    if (more)
        *more = l->more;
    return 0;
fail:
    track_trace_result_free(*res);
    *res = NULL;
    return rc;
}

static int cmp_trace_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

int track_trace_each(struct track_client *c, const struct track_trace_query *q0, track_trace_cb cb,
                     void *ctx, struct track_err *err)
{
    struct track_trace_query q = *q0;
    int page_max = q.limit > 0 && q.limit <= 10000 ? q.limit : 10000;
    /* ids[0..n_ids): the traces seen that started at `edge`, sorted */
    uint8_t(*ids)[16] = malloc((size_t)page_max * sizeof(*ids));
    size_t n_ids = 0;
    int64_t edge = 0;
    int have_edge = 0, rc = 0, more = 1;

    if (!ids)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    q.limit = page_max;
    while (more && rc == 0) {
        struct track_trace_result *res = NULL;
        const struct track_trace_info *tr = NULL;
        size_t n = 0, fresh = 0;
        if ((rc = track_trace_list(c, &q, &res, &tr, &n, &more, err)))
            break;
        for (size_t i = 0; i < n && rc == 0; i++) {
            /* pages overlap at the edge: what started after it, or at it
             * with an id seen, came on an earlier page */
            if (have_edge && (tr[i].start_ns > edge ||
                              (tr[i].start_ns == edge &&
                               bsearch(tr[i].trace_id, ids, n_ids, sizeof(*ids), cmp_trace_id))))
                continue;
            fresh++;
            rc = cb(ctx, &tr[i]);
        }
        if (rc == 0 && more && fresh == 0)
            rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED,
                         "more than %d traces start in the same nanosecond: they cannot be paged",
                         page_max);
        if (rc == 0 && more && n) {
            int64_t last = tr[n - 1].start_ns;
            size_t old = have_edge && last == edge ? n_ids : 0; /* still at the edge */
            n_ids = old;
            for (size_t i = 0; i < n && n_ids < (size_t)page_max; i++)
                if (tr[i].start_ns == last &&
                    !bsearch(tr[i].trace_id, ids, old, sizeof(*ids), cmp_trace_id))
                    memcpy(ids[n_ids++], tr[i].trace_id, 16);
            qsort(ids, n_ids, sizeof(*ids), cmp_trace_id);
            edge = last;
            have_edge = 1;
            /* "before 0" is no bound, which is right past INT64_MAX; at -1
             * (a start only a native client can send: OTLP's are unsigned)
             * it lists the newest again, all seen, and ends in the error
             * above rather than give a trace twice */
            q.before_start_ns = last == INT64_MAX ? 0 : last + 1;
        } else if (!n)
            more = 0;
        track_trace_result_free(res);
    }
    free(ids);
    return rc;
}

int track_trace_get(struct track_client *c, const char *trace_hex, int without_attributes,
                    struct track_trace_result **res, const struct track_trace_info **trace,
                    const struct track_span_info **spans, size_t *n, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__TraceGet tg = TRACK__V1__TRACE_GET__INIT;
    Track__V1__Response *rs = NULL;
    uint8_t id[16], cursor[16];
    size_t total = 0;
    int rc;

    *res = NULL;
    *n = 0;
    if (!trace_hex || track_trace_id_parse(trace_hex, id))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "trace: expected 32 hex digits, got \"%.40s\"", trace_hex ? trace_hex : "");
    if (!(*res = calloc(1, sizeof(**res))))
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    tg.trace_id.data = id;
    tg.trace_id.len = 16;
    tg.without_attributes = without_attributes;
    rq.op_case = TRACK__V1__REQUEST__OP_TRACE_GET;
    rq.trace_get = &tg;
    for (;;) {
        if ((rc = page(c, &rq, TRACK__V1__RESPONSE__RESULT_TRACE_GET, *res, &rs, err)))
            goto fail;
        const Track__V1__TraceGetResult *g = rs->trace_get;
        total += g->n_spans;
        if (!g->more)
            break;
        if (!g->n_spans) {
            rc =
                cl_fail(err, TRACK_E_INTERNAL, "malformed reply: a page of no spans promises more");
            goto fail;
        }
        const Track__V1__Span *last = g->spans[g->n_spans - 1];
        uint64_t st = (uint64_t)last->start_ns;
        for (int b = 0; b < 8; b++)
            cursor[b] = (uint8_t)(st >> (8 * b));
        if (last->span_id.len != 8) {
            rc = cl_fail(err, TRACK_E_INTERNAL, "malformed reply: a span id of %zu bytes",
                         last->span_id.len);
            goto fail;
        }
        memcpy(cursor + 8, last->span_id.data, 8);
        tg.after_span.data = cursor;
        tg.after_span.len = 16;
    }
    const Track__V1__TraceInfo *t = (*res)->pages[0]->trace_get->trace;
    if (!t) {
        rc = cl_fail(err, TRACK_E_INTERNAL, "malformed reply: no trace");
        goto fail;
    }
    (*res)->traces = calloc(1, sizeof(*(*res)->traces));
    (*res)->models = calloc(t->n_models + 1, sizeof(char *));
    (*res)->spans = calloc(total + 1, sizeof(*(*res)->spans));
    if (!(*res)->traces || !(*res)->models || !(*res)->spans) {
        rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    info_of(t, (*res)->traces, (*res)->models);
    size_t at = 0;
    for (size_t p = 0; p < (*res)->n_pages; p++) {
        const Track__V1__TraceGetResult *g = (*res)->pages[p]->trace_get;
        for (size_t i = 0; i < g->n_spans; i++, at++) {
            const Track__V1__Span *s = g->spans[i];
            struct track_span_info *o = &(*res)->spans[at];
            if (s->span_id.len == 8)
                memcpy(o->span_id, s->span_id.data, 8);
            if (s->parent_span_id.len == 8) {
                o->has_parent = 1;
                memcpy(o->parent, s->parent_span_id.data, 8);
            }
            o->name = s->name;
            o->kind = s->kind;
            o->start_ns = s->start_ns;
            o->end_ns = s->end_ns;
            o->status = s->status;
            o->status_message = s->status_message;
            o->model = s->model;
            o->operation = s->operation;
            o->tokens_in = s->tokens_in;
            o->tokens_out = s->tokens_out;
            o->tokens_total = s->tokens_total;
            o->cost = s->cost;
            o->attributes = s->attributes;
        }
    }
    *trace = (*res)->traces;
    *spans = (*res)->spans;
    *n = total;
    return 0;
fail:
    track_trace_result_free(*res);
    *res = NULL;
    return rc;
}
