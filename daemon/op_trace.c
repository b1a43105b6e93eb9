/*
 * op_trace.c: the handlers of traces (DESIGN.md "Traces"): SpanBatch (the
 * spans of an OTLP export, decoded by the HTTP front's /v1/traces,
 * otlp.c), TraceList and TraceGet. Each span is checked against the caps
 * (README "Traces") before anything is stored, so a batch is stored whole
 * or not at all; reads are filtered by the caller's grants.
 */
#include "op.h"

#include <stdio.h>
#include <string.h>

#include "track_limits.h"

#define SPAN_BATCH_MAX   50000      /* spans in one SpanBatch */
#define SPAN_ATTRS_BYTES (64 << 10) /* a span's attributes as JSON */
#define TRACE_LIST_MAX   10000
#define TRACE_SPANS_PAGE 20000

static int check_span(struct srv_call *call, size_t i, const Track__V1__Span *s)
{
    if (s->trace_id.len != STORE_TRACE_ID_BYTES || s->span_id.len != STORE_SPAN_ID_BYTES)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "spans[%zu]: trace_id must be 16 bytes and span_id 8 (got %zu, %zu)", i,
                           s->trace_id.len, s->span_id.len);
    if (s->parent_span_id.len && s->parent_span_id.len != STORE_SPAN_ID_BYTES)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "spans[%zu]: parent_span_id must be 8 bytes or empty (got %zu)", i,
                           s->parent_span_id.len);
    if (s->end_ns < s->start_ns || s->start_ns < 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "spans[%zu]: times must be >= 0 and end at or after the start", i);
    if (strlen(s->name) > LIMIT_VALUE_BYTES || strlen(s->status_message) > LIMIT_VALUE_BYTES ||
        strlen(s->model) > STORE_TRACE_MODEL_MAX || strlen(s->operation) > LIMIT_KEY_BYTES)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "spans[%zu]: name or status message over %d bytes, model over %d or "
                           "operation over %d",
                           i, LIMIT_VALUE_BYTES, STORE_TRACE_MODEL_MAX, LIMIT_KEY_BYTES);
    if (strlen(s->attributes) > SPAN_ATTRS_BYTES)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "spans[%zu]: attributes of %zu bytes, at most %d", i,
                           strlen(s->attributes), SPAN_ATTRS_BYTES);
    if (s->tokens_in < 0 || s->tokens_out < 0 || s->tokens_total < 0 || !(s->cost >= 0) ||
        s->cost > 1e12)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "spans[%zu]: token counts and cost must be finite and >= 0", i);
    if (s->status < 0 || s->status > 2)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "spans[%zu]: status %d (0 unset, 1 ok, 2 error)", i, s->status);
    return 0;
}

int srv_op_span_batch(struct srv_call *call)
{
    const Track__V1__SpanBatch *q = call->rq->span_batch;
    struct store_err err = {0};
    const char *exp = q->experiment[0] ? q->experiment : "Default";
    int64_t eid = 0, traces = 0;
    uint8_t run[16];
    char msg[400];
    int rc = 0;

    if (q->n_spans > SPAN_BATCH_MAX)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "spans: %zu in one batch, at most %d", q->n_spans, SPAN_BATCH_MAX);
    if (limits_check_name("experiment", exp, 0, msg, sizeof(msg)))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    for (size_t i = 0; i < q->n_spans; i++)
        if (check_span(call, i, q->spans[i]))
            return -1;
    /* a full id that names no run: store_spans_put says NOT_FOUND */
    if (q->run[0] && srv_op_resolve_run(call, "run", q->run, run))
        return -1;
    if ((rc = store_experiment_ensure(call->st, exp, wire_now_ms(), &eid, &err)))
        return srv_op_fail_store(call, rc, &err);
    struct store_span *sp = srv_alloc_raw(&call->arena, (q->n_spans + 1) * sizeof(*sp));
    if (!sp)
        return srv_op_oom(call);
    for (size_t i = 0; i < q->n_spans; i++) {
        const Track__V1__Span *s = q->spans[i];
        sp[i] = (struct store_span){
            .has_parent = s->parent_span_id.len == STORE_SPAN_ID_BYTES,
            .name = s->name,
            .kind = s->kind,
            .start_ns = s->start_ns,
            .end_ns = s->end_ns,
            .status = s->status,
            .status_message = s->status_message,
            .model = s->model,
            .operation = s->operation,
            .tokens_in = s->tokens_in,
            .tokens_out = s->tokens_out,
            .tokens_total = s->tokens_total,
            .cost = s->cost,
            .attributes = s->attributes[0] ? s->attributes : "{}",
        };
        memcpy(sp[i].trace_id, s->trace_id.data, STORE_TRACE_ID_BYTES);
        memcpy(sp[i].span_id, s->span_id.data, STORE_SPAN_ID_BYTES);
        if (sp[i].has_parent)
            memcpy(sp[i].parent, s->parent_span_id.data, STORE_SPAN_ID_BYTES);
    }
    if ((rc =
             store_spans_put(call->st, eid, q->run[0] ? run : NULL, sp, q->n_spans, &traces, &err)))
        return srv_op_fail_store(call, rc, &err);
    Track__V1__SpanBatchResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__span_batch_result__init(r);
    r->accepted = (int64_t)q->n_spans;
    r->traces = traces;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_SPAN_BATCH;
    call->rs->span_batch = r;
    return 0;
}

/* ---- reads ------------------------------------------------------------------------ */
static Track__V1__TraceInfo *trace_info(struct srv_arena *a, const struct store_trace *t)
{
    Track__V1__TraceInfo *i = srv_alloc(a, sizeof(*i));
    if (!i)
        return NULL;
    track__v1__trace_info__init(i);
    uint8_t *id = srv_alloc_raw(a, STORE_TRACE_ID_BYTES + 16);
    i->experiment = srv_strdup(a, t->experiment);
    i->root_name = srv_strdup(a, t->root_name);
    if (!id || !i->experiment || !i->root_name)
        return NULL;
    memcpy(id, t->trace_id, STORE_TRACE_ID_BYTES);
    i->trace_id.data = id;
    i->trace_id.len = STORE_TRACE_ID_BYTES;
    if (t->has_run) {
        memcpy(id + STORE_TRACE_ID_BYTES, t->run, 16);
        i->run_id.data = id + STORE_TRACE_ID_BYTES;
        i->run_id.len = 16;
    }
    i->start_ns = t->start_ns;
    i->end_ns = t->end_ns;
    i->spans = t->spans;
    i->errors = t->errors;
    i->tokens_in = t->tokens_in;
    i->tokens_out = t->tokens_out;
    i->tokens_total = t->tokens_total;
    i->cost = t->cost;
    /* models: the comma list, split in place in the arena's copy */
    if (t->models[0]) {
        char *m = srv_strdup(a, t->models);
        size_t n = 1;
        if (!m)
            return NULL;
        for (const char *c = m; *c; c++)
            n += *c == ',';
        i->models = srv_alloc(a, n * sizeof(char *));
        if (!i->models)
            return NULL;
        for (char *c = m, *start = m;; c++)
            if (*c == ',' || !*c) {
                int end = !*c;
                *c = '\0';
                i->models[i->n_models++] = start;
                start = c + 1;
                if (end)
                    break;
            }
    }
    return i;
}

struct trace_list {
    struct srv_arena *a;
    Track__V1__TraceInfo **items;
    size_t n, cap;
    int oom;
};

static int list_cb(void *ctx, const struct store_trace *t)
{
    struct trace_list *l = ctx;
    if (srv_op_grow(l->a, (void ***)&l->items, l->n, &l->cap) ||
        !(l->items[l->n] = trace_info(l->a, t))) {
        l->oom = 1;
        return 1; /* stops the listing; answered as out of memory */
    }
    l->n++;
    return 0;
}

int srv_op_trace_list(struct srv_call *call)
{
    const Track__V1__TraceList *q = call->rq->trace_list;
    struct store_err err = {0};
    struct store_viewer vb;
    struct store_trace_query tq = {0};
    struct trace_list l = {.a = &call->arena};
    int64_t ids[64];
    uint8_t run[16];
    int more = 0, rc;

    if (q->n_experiments > 64)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "experiments: at most 64, got %zu", q->n_experiments);
    for (size_t i = 0; i < q->n_experiments; i++)
        if ((rc = store_experiment_id(call->st, q->experiments[i], &ids[i], &err)))
            return srv_op_fail_store(call, rc, &err);
    if (q->limit < 0 || q->limit > TRACE_LIST_MAX)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "limit: 0 to %d, got %d",
                           TRACE_LIST_MAX, q->limit);
    if (q->run[0]) {
        if (srv_op_resolve_run(call, "run", q->run, run))
            return -1;
        tq.run = run;
    }
    tq.experiment_ids = ids;
    tq.n_experiments = q->n_experiments;
    tq.limit = q->limit;
    tq.before_start_ns = q->before_start_ns;
    tq.min_tokens = q->min_tokens;
    tq.min_duration_ns = q->min_duration_ns;
    tq.errors_only = q->errors_only;
    tq.filter = q->filter;
    tq.viewer = srv_viewer(call, &vb);
    rc = store_trace_list(call->st, &tq, list_cb, &l, &more, &err);
    if (l.oom)
        return srv_op_oom(call);
    if (rc < 0)
        return srv_op_fail_store(call, rc, &err);
    Track__V1__TraceListResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__trace_list_result__init(r);
    r->traces = l.items;
    r->n_traces = l.n;
    r->more = more;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_TRACE_LIST;
    call->rs->trace_list = r;
    return 0;
}

struct span_list {
    struct srv_arena *a;
    int without_attributes;
    Track__V1__Span **items;
    size_t n, cap;
    size_t bytes; /* the reply's size so far, against REPLY_PAGE_BYTES */
    int full, oom;
};

static char *dup_or_empty(struct srv_arena *a, const char *s)
{
    return srv_strdup(a, s ? s : "");
}

static int span_cb(void *ctx, const struct store_span *s)
{
    struct span_list *l = ctx;
    if (l->bytes > REPLY_PAGE_BYTES / 2) {
        l->full = 1;
        return 1;
    }
    Track__V1__Span *p = srv_alloc(l->a, sizeof(*p));
    uint8_t *ids = srv_alloc_raw(l->a, STORE_TRACE_ID_BYTES + 2 * STORE_SPAN_ID_BYTES);
    if (!p || !ids || srv_op_grow(l->a, (void ***)&l->items, l->n, &l->cap)) {
        l->oom = 1;
        return 1;
    }
    track__v1__span__init(p);
    memcpy(ids, s->trace_id, STORE_TRACE_ID_BYTES);
    memcpy(ids + 16, s->span_id, STORE_SPAN_ID_BYTES);
    p->trace_id = (ProtobufCBinaryData){.len = 16, .data = ids};
    p->span_id = (ProtobufCBinaryData){.len = 8, .data = ids + 16};
    if (s->has_parent) {
        memcpy(ids + 24, s->parent, STORE_SPAN_ID_BYTES);
        p->parent_span_id = (ProtobufCBinaryData){.len = 8, .data = ids + 24};
    }
    p->name = dup_or_empty(l->a, s->name);
    p->status_message = dup_or_empty(l->a, s->status_message);
    p->model = dup_or_empty(l->a, s->model);
    p->operation = dup_or_empty(l->a, s->operation);
    p->attributes = dup_or_empty(l->a, l->without_attributes ? "" : s->attributes);
    if (!p->name || !p->status_message || !p->model || !p->operation || !p->attributes) {
        l->oom = 1;
        return 1;
    }
    p->kind = s->kind;
    p->start_ns = s->start_ns;
    p->end_ns = s->end_ns;
    p->status = s->status;
    p->tokens_in = s->tokens_in;
    p->tokens_out = s->tokens_out;
    p->tokens_total = s->tokens_total;
    p->cost = s->cost;
    l->bytes += srv_op_item_cost(track__v1__span__get_packed_size(p));
    l->items[l->n++] = p;
    return 0;
}

static int info_cb(void *ctx, const struct store_trace *t)
{
    struct srv_call *call = ctx;
    call->rs->trace_get->trace = trace_info(&call->arena, t);
    return 0; /* NULL: answered as out of memory */
}

int srv_op_trace_get(struct srv_call *call)
{
    const Track__V1__TraceGet *q = call->rq->trace_get;
    struct store_err err = {0};
    struct store_viewer vb;
    struct span_list l = {.a = &call->arena, .without_attributes = q->without_attributes};
    int more = 0, rc;

    if (q->trace_id.len != STORE_TRACE_ID_BYTES)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "trace_id: must be 16 bytes, got %zu", q->trace_id.len);
    if (q->after_span.len && q->after_span.len != STORE_SPAN_ID_BYTES + 8)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "after_span: not a cursor this server gave");
    if (q->limit < 0 || q->limit > TRACE_SPANS_PAGE)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "limit: 0 to %d, got %d",
                           TRACE_SPANS_PAGE, q->limit);
    Track__V1__TraceGetResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__trace_get_result__init(r);
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_TRACE_GET;
    call->rs->trace_get = r;
    if ((rc = store_trace_get(call->st, q->trace_id.data, srv_viewer(call, &vb), info_cb, call,
                              &err)))
        return srv_op_fail_store(call, rc, &err);
    if (!r->trace)
        return srv_op_oom(call);
    /* the cursor: the last span's start (8 bytes, little-endian) and id */
    int64_t after_start = 0;
    const uint8_t *after = NULL;
    if (q->after_span.len) {
        for (int b = 7; b >= 0; b--)
            after_start = (int64_t)((uint64_t)after_start << 8 | q->after_span.data[b]);
        after = q->after_span.data + 8;
    }
    rc = store_trace_spans(call->st, q->trace_id.data, after, after_start,
                           q->limit ? q->limit : TRACE_SPANS_PAGE, span_cb, &l, &more, &err);
    if (l.oom)
        return srv_op_oom(call);
    if (rc < 0)
        return srv_op_fail_store(call, rc, &err);
    r->spans = l.items;
    r->n_spans = l.n;
    r->more = more || l.full;
    return 0;
}
