/*
 * op_feedback.c: the handlers of feedback scores (DESIGN.md "Feedback"):
 * FeedbackBatch (many scores in one request, checked whole against
 * track_limits.h before any is stored, then applied in the call's
 * savepoint: all or none), FeedbackList (scores in (run, target, id)
 * order, paged by a keyset token and REPLY_PAGE_BYTES) and FeedbackSummary
 * (per name, or per (run, target, name), paged by a keyset token too). The store's
 * half is store_feedback.c; the table is dispatch.c's.
 */
#include "op.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "track_limits.h"

#define LIST_TOKEN_HEAD 18 /* "F1", after_run (8 bytes LE), after_id (8), then the target */
/* "S3", the last item's run and name cursors (8 bytes LE each), its target,
 * a NUL, its name */
#define SUM_TOKEN_HEAD 18
#define SUM_PAGE_ITEMS 1000 /* summary items in one reply: each costs a few queries */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- FeedbackBatch ------------------------------------------------------------------ */

static int fail_score(struct srv_call *call, size_t i, const char *msg)
{
    return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "scores[%zu]: %s", i, msg);
}

/* Checks score i whole, as a client checks it before sending. */
static int check_score(struct srv_call *call, size_t i, const Track__V1__Score *s)
{
    char msg[400];

    if (limits_check_key("feedback name", s->name, msg, sizeof msg))
        return fail_score(call, i, msg);
    if (s->kind < 0 || s->kind > 3)
        return fail_score(call, i, "kind: must be 0 (none), 1 (number), 2 (boolean) or 3 (label)");
    if (s->kind == 1 && !isfinite(s->number)) {
        snprintf(msg, sizeof msg, "feedback value: %s is not a finite number (a judgement is one)",
                 isnan(s->number) ? "NaN"
                 : s->number > 0  ? "Infinity"
                                  : "-Infinity");
        return fail_score(call, i, msg);
    }
    if (s->kind == 3 && limits_check_label("feedback label", s->label, msg, sizeof msg))
        return fail_score(call, i, msg);
    if (limits_check_feedback_text("comment", s->comment, msg, sizeof msg) ||
        limits_check_feedback_text("rationale", s->rationale, msg, sizeof msg))
        return fail_score(call, i, msg);
    if (s->kind == 0 && !(s->comment && *s->comment))
        return fail_score(call, i, "neither a value nor a comment");
    if (s->source < 0 || s->source > 3)
        return fail_score(call, i, "source: must be 1 (human), 2 (llm_judge) or 3 (code)");
    if (s->source_id && *s->source_id &&
        limits_check_name("source id", s->source_id, 0, msg, sizeof msg))
        return fail_score(call, i, msg);
    if (s->time_ms < 0)
        return fail_score(call, i, "time_ms: negative");
    switch (s->target_kind) {
    case 0:
        if (s->target && *s->target)
            return fail_score(call, i, "target: must be empty for a score on the run itself");
        break;
    case 1:
        if (limits_check_target("target", s->target, msg, sizeof msg))
            return fail_score(call, i, msg);
        break;
    case 2:
    case 3:
        if (s->trace_id.len != 16 || (s->target_kind == 3 && s->span_id.len != 8))
            return fail_score(call, i, "trace_id (16 bytes) and span_id (8 bytes) required");
        break;
    default:
        return fail_score(call, i, "target_kind: must be 0 (run), 1 (id), 2 (trace) or 3 (span)");
    }
    if (s->target_kind < 2 && !(s->run && *s->run))
        return fail_score(call, i, "run: required");
    return 0;
}

int srv_op_feedback_batch(struct srv_call *call)
{
    const Track__V1__FeedbackBatch *q = call->rq->feedback_batch;
    struct store_err err = {0};
    const char *last_run = NULL;
    uint8_t id[16];
    int64_t now = wire_now_ms();
    int rc;

    if (q->n_scores == 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "scores: none given");
    if (q->n_scores > LIMIT_FEEDBACK_BATCH)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "scores: %zu in one batch, limit is %d", q->n_scores,
                           LIMIT_FEEDBACK_BATCH);
    for (size_t i = 0; i < q->n_scores; i++)
        if (check_score(call, i, q->scores[i]))
            return -1;
    for (size_t i = 0; i < q->n_scores; i++) {
        const Track__V1__Score *s = q->scores[i];
        struct store_score sc = {
            .target_kind = s->target_kind,
            .target = s->target,
            .name = s->name,
            .kind = s->kind,
            .number = s->number,
            .boolean = s->boolean,
            .label = s->label,
            .comment = s->comment,
            .rationale = s->rationale,
            .source = s->source ? s->source : STORE_FB_HUMAN,
            .source_id = s->source_id,
            .time_ms = s->time_ms ? s->time_ms : now,
        };
        if (s->run && *s->run) {
            /* a judge's batch names one run 10^4 times: resolve it once */
            if (!last_run || strcmp(last_run, s->run) != 0) {
                if (srv_op_resolve_run(call, "run", s->run, id))
                    return -1;
                last_run = s->run;
            }
            sc.has_run = 1;
            memcpy(sc.run, id, 16);
        }
        if (s->trace_id.len == 16) {
            int64_t eid;
            int has_run = 0;
            uint8_t trun[16];
            sc.has_trace = 1;
            memcpy(sc.trace, s->trace_id.data, 16);
            /* the trace must exist; its run, when it has one, holds the score */
            if ((rc = store_trace_owner(call->st, sc.trace, &eid, trun, &has_run, &err)))
                return q->n_scores > 1 ? srv_op_fail(call, srv_code_from_store(rc),
                                                     "scores[%zu]: %s", i, err.msg)
                                       : srv_op_fail_store(call, rc, &err);
            if (has_run && !sc.has_run) {
                sc.has_run = 1;
                memcpy(sc.run, trun, 16);
            }
        }
        if (s->span_id.len == 8) {
            sc.has_span = 1;
            memcpy(sc.span, s->span_id.data, 8);
        }
        rc = store_feedback_add(call->st, &sc, NULL, &err);
        if (rc) {
            if (q->n_scores > 1)
                return srv_op_fail(call, srv_code_from_store(rc), "scores[%zu]: %s", i, err.msg);
            return srv_op_fail_store(call, rc, &err);
        }
    }
    Track__V1__FeedbackBatchResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__feedback_batch_result__init(r);
    r->added = (int64_t)q->n_scores;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_FEEDBACK_BATCH;
    call->rs->feedback_batch = r;
    return 0;
}

/* ---- FeedbackList ---------------------------------------------------------------------- */

struct list_ctx {
    struct srv_call *call;
    struct page pg;
    Track__V1__Score **items;
    size_t n, cap, max;
    int64_t last_run, last_id;
    const char *last_target;
    int stopped; /* a full page: a token follows */
    int oom;
};

static char *dup_or_empty(struct srv_arena *a, const char *s)
{
    return srv_strdup(a, s ? s : "");
}

static int list_take(void *ctx, const struct store_score *s, int64_t run_row)
{
    struct list_ctx *l = ctx;
    struct srv_arena *a = &l->call->arena;
    char hex[33] = "";

    if (l->n >= l->max) {
        l->stopped = 1;
        return 1;
    }
    Track__V1__Score *o = srv_alloc(a, sizeof(*o));
    if (!o)
        return -1;
    track__v1__score__init(o);
    if (s->has_run)
        wire_hex(s->run, hex);
    o->run = srv_strdup(a, hex);
    o->target_kind = s->target_kind;
    o->target = dup_or_empty(a, s->target);
    o->name = dup_or_empty(a, s->name);
    o->kind = s->kind;
    o->number = s->kind == STORE_FB_NUMBER ? s->number : 0;
    o->boolean = s->boolean;
    o->label = dup_or_empty(a, s->kind == STORE_FB_LABEL ? s->label : "");
    o->comment = dup_or_empty(a, s->comment);
    o->rationale = dup_or_empty(a, s->rationale);
    o->source = s->source;
    o->source_id = dup_or_empty(a, s->source_id);
    o->time_ms = s->time_ms;
    o->id = s->id;
    if (!o->run || !o->target || !o->name || !o->label || !o->comment || !o->rationale ||
        !o->source_id)
        return -1;
    if (s->has_trace) {
        uint8_t *t = srv_alloc(a, 16);
        if (!t)
            return -1;
        memcpy(t, s->trace, 16);
        o->trace_id.data = t;
        o->trace_id.len = 16;
    }
    if (s->has_span) {
        uint8_t *t = srv_alloc(a, 8);
        if (!t)
            return -1;
        memcpy(t, s->span, 8);
        o->span_id.data = t;
        o->span_id.len = 8;
    }
    size_t cost = srv_op_item_cost(track__v1__score__get_packed_size(o));
    if (cost > l->pg.left && l->n > 0) {
        l->stopped = 1;
        return 1;
    }
    l->pg.left -= cost < l->pg.left ? cost : l->pg.left;
    if (srv_op_grow(a, (void ***)&l->items, l->n, &l->cap))
        return -1;
    l->items[l->n++] = o;
    l->last_run = run_row;
    l->last_id = s->id;
    l->last_target = o->target;
    return 0;
}

static int list_collect(void *ctx, const struct store_score *s, int64_t run_row)
{
    int r = list_take(ctx, s, run_row);
    if (r < 0)
        ((struct list_ctx *)ctx)->oom = 1;
    return r;
}

int srv_op_feedback_list(struct srv_call *call)
{
    const Track__V1__FeedbackList *q = call->rq->feedback_list;
    struct list_ctx l = {.call = call, .pg = srv_op_page_new(0)};
    struct store_feedback_query sq = {0};
    struct store_err err = {0};
    char msg[400], target[LIMIT_FEEDBACK_TARGET + 1];
    int rc;

    if (q->limit < 0 || q->limit > LIMIT_FEEDBACK_PAGE)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "limit: 0..%d",
                           LIMIT_FEEDBACK_PAGE);
    l.max = q->limit ? (size_t)q->limit : LIMIT_FEEDBACK_PAGE;
    if (q->trace_id.len) {
        if (q->trace_id.len != 16)
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                               "trace_id: must be 16 bytes, got %zu", q->trace_id.len);
        if ((q->run && *q->run) || (q->experiment && *q->experiment))
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                               "trace_id: a trace's scores, without a run or an experiment");
        memcpy(sq.trace, q->trace_id.data, 16);
        sq.has_trace = 1;
        int64_t eid;
        uint8_t trun[16];
        int has_run = 0;
        if ((rc = store_trace_owner(call->st, sq.trace, &eid, trun, &has_run, &err)))
            return srv_op_fail_store(call, rc, &err);
    } else if (q->run && *q->run) {
        if (srv_op_resolve_run(call, "run", q->run, sq.run))
            return -1;
        sq.has_run = 1;
    } else if (q->experiment && *q->experiment) {
        if (limits_check_name("experiment", q->experiment, 0, msg, sizeof msg))
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
        sq.experiment = q->experiment;
    } else {
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "run, experiment or trace_id: one is required");
    }
    if (q->has_target) {
        if (q->target && *q->target && limits_check_target("target", q->target, msg, sizeof msg))
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
        sq.target = q->target ? q->target : "";
    }
    if (q->name && *q->name) {
        if (limits_check_key("feedback name", q->name, msg, sizeof msg))
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
        sq.name = q->name;
    }
    if (q->page_token.len) {
        const uint8_t *t = q->page_token.data;
        size_t tl = q->page_token.len;
        if (tl < LIST_TOKEN_HEAD || tl > LIST_TOKEN_HEAD + LIMIT_FEEDBACK_TARGET || t[0] != 'F' ||
            t[1] != '1' || memchr(t + LIST_TOKEN_HEAD, 0, tl - LIST_TOKEN_HEAD))
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                               "page_token: not a token this server gave (%zu bytes)", tl);
        sq.after_run = (int64_t)(get_u64(t + 2) & INT64_MAX);
        sq.after_id = (int64_t)(get_u64(t + 10) & INT64_MAX);
        memcpy(target, t + LIST_TOKEN_HEAD, tl - LIST_TOKEN_HEAD);
        target[tl - LIST_TOKEN_HEAD] = '\0';
        sq.after_target = target;
    }
    sq.limit = (int)l.max + 1;
    rc = store_feedback_list(call->st, &sq, list_collect, &l, &err);
    if (l.oom)
        return srv_op_oom(call);
    if (rc < 0)
        return srv_op_fail_store(call, rc, &err);
    Track__V1__FeedbackListResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__feedback_list_result__init(r);
    r->scores = l.items;
    r->n_scores = l.n;
    if (l.stopped && l.n) {
        size_t tl = strlen(l.last_target);
        uint8_t *p = srv_alloc(&call->arena, LIST_TOKEN_HEAD + tl);
        if (!p)
            return srv_op_oom(call);
        p[0] = 'F';
        p[1] = '1';
        put_u64(p + 2, (uint64_t)l.last_run);
        put_u64(p + 10, (uint64_t)l.last_id);
        memcpy(p + LIST_TOKEN_HEAD, l.last_target, tl);
        r->next_page_token.data = p;
        r->next_page_token.len = LIST_TOKEN_HEAD + tl;
    }
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_FEEDBACK_LIST;
    call->rs->feedback_list = r;
    return 0;
}

/* ---- FeedbackSummary ----------------------------------------------------------------- */

struct sum_ctx {
    struct srv_call *call;
    struct page pg;
    Track__V1__FeedbackSummaryItem **items;
    size_t n, cap;
    int stopped, by_target;
    int oom;
    int64_t last_run, last_name_id; /* the cursor: the last item in the page */
    const char *last_target, *last_name;
};

static int sum_take(void *ctx, const struct store_feedback_summary *s)
{
    struct sum_ctx *l = ctx;
    struct srv_arena *a = &l->call->arena;
    char hex[33] = "";

    if (l->n >= SUM_PAGE_ITEMS) {
        l->stopped = 1;
        return 1;
    }
    Track__V1__FeedbackSummaryItem *o = srv_alloc(a, sizeof(*o));
    if (!o)
        return -1;
    track__v1__feedback_summary_item__init(o);
    if (s->has_run)
        wire_hex(s->run, hex);
    o->run = srv_strdup(a, hex);
    o->target = dup_or_empty(a, s->target);
    o->by_target = l->by_target;
    o->name = dup_or_empty(a, s->name);
    if (!o->run || !o->target || !o->name)
        return -1;
    o->kind = s->kind;
    o->count = s->count;
    o->comments = s->comments;
    o->sum = s->sum;
    o->min = s->min;
    o->max = s->max;
    o->true_count = s->true_count;
    o->other_labels = s->other_labels;
    o->dist_binned = s->dist_binned;
    if (s->n_labels) {
        o->labels = srv_alloc(a, s->n_labels * sizeof(char *));
        o->label_counts = srv_alloc(a, s->n_labels * sizeof(int64_t));
        if (!o->labels || !o->label_counts)
            return -1;
        for (size_t i = 0; i < s->n_labels; i++) {
            if (!(o->labels[i] = srv_strdup(a, s->labels[i])))
                return -1;
            o->label_counts[i] = s->label_counts[i];
        }
        o->n_labels = o->n_label_counts = s->n_labels;
    }
    if (s->n_dist) {
        o->dist_values = srv_alloc(a, s->n_dist * sizeof(double));
        o->dist_counts = srv_alloc(a, s->n_dist * sizeof(int64_t));
        if (!o->dist_values || !o->dist_counts)
            return -1;
        memcpy(o->dist_values, s->dist_values, s->n_dist * sizeof(double));
        memcpy(o->dist_counts, s->dist_counts, s->n_dist * sizeof(int64_t));
        o->n_dist_values = o->n_dist_counts = s->n_dist;
    }
    size_t cost = srv_op_item_cost(track__v1__feedback_summary_item__get_packed_size(o));
    if (cost > l->pg.left && l->n > 0) {
        l->stopped = 1;
        return 1;
    }
    l->pg.left -= cost < l->pg.left ? cost : l->pg.left;
    if (srv_op_grow(a, (void ***)&l->items, l->n, &l->cap))
        return -1;
    l->items[l->n++] = o;
    l->last_run = s->cursor_run;
    l->last_name_id = s->cursor_name;
    l->last_target = o->target;
    l->last_name = o->name;
    return 0;
}

static int sum_collect(void *ctx, const struct store_feedback_summary *s)
{
    int r = sum_take(ctx, s);
    if (r < 0)
        ((struct sum_ctx *)ctx)->oom = 1;
    return r;
}

int srv_op_feedback_summary(struct srv_call *call)
{
    const Track__V1__FeedbackSummary *q = call->rq->feedback_summary;
    struct sum_ctx l = {.call = call, .pg = srv_op_page_new(0), .by_target = q->by_target};
    struct store_err err = {0};
    struct store_feedback_after after;
    char target[LIMIT_FEEDBACK_TARGET + 1], name[LIMIT_KEY_BYTES + 1];
    uint8_t id[16];
    char msg[400];
    int rc, have_run = 0;

    memset(&after, 0, sizeof after);
    if (q->run && *q->run) {
        if (srv_op_resolve_run(call, "run", q->run, id))
            return -1;
        have_run = 1;
    } else if (q->experiment && *q->experiment) {
        if (limits_check_name("experiment", q->experiment, 0, msg, sizeof msg))
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    } else {
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "run or experiment: one is required");
    }
    if (q->page_token.len) {
        const uint8_t *t = q->page_token.data;
        size_t tl = q->page_token.len;
        const uint8_t *nul =
            tl > SUM_TOKEN_HEAD ? memchr(t + SUM_TOKEN_HEAD, 0, tl - SUM_TOKEN_HEAD) : NULL;
        size_t t_len = nul ? (size_t)(nul - (t + SUM_TOKEN_HEAD)) : 0;
        size_t n_len = nul ? tl - SUM_TOKEN_HEAD - t_len - 1 : 0;
        if (tl < SUM_TOKEN_HEAD || t[0] != 'S' || t[1] != '3' || !nul ||
            t_len > LIMIT_FEEDBACK_TARGET || n_len > LIMIT_KEY_BYTES || memchr(nul + 1, 0, n_len))
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                               "page_token: not a token this server gave (%zu bytes)", tl);
        after.run_row = (int64_t)(get_u64(t + 2) & INT64_MAX);
        after.name_id = (int64_t)(get_u64(t + 10) & INT64_MAX);
        memcpy(target, t + SUM_TOKEN_HEAD, t_len);
        target[t_len] = '\0';
        memcpy(name, nul + 1, n_len);
        name[n_len] = '\0';
        after.target = target;
        after.name = name;
    }
    rc = store_feedback_summaries(call->st, have_run ? id : NULL, have_run ? NULL : q->experiment,
                                  q->by_target, q->page_token.len ? &after : NULL,
                                  SUM_PAGE_ITEMS + 1, sum_collect, &l, &err);
    if (l.oom)
        return srv_op_oom(call);
    if (rc < 0)
        return srv_op_fail_store(call, rc, &err);
    Track__V1__FeedbackSummaryResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__feedback_summary_result__init(r);
    r->items = l.items;
    r->n_items = l.n;
    if (l.stopped && l.n) {
        size_t t_len = strlen(l.last_target), n_len = strlen(l.last_name);
        uint8_t *p = srv_alloc(&call->arena, SUM_TOKEN_HEAD + t_len + 1 + n_len);
        if (!p)
            return srv_op_oom(call);
        p[0] = 'S';
        p[1] = '3';
        put_u64(p + 2, (uint64_t)l.last_run);
        put_u64(p + 10, (uint64_t)l.last_name_id);
        memcpy(p + SUM_TOKEN_HEAD, l.last_target, t_len);
        p[SUM_TOKEN_HEAD + t_len] = 0;
        memcpy(p + SUM_TOKEN_HEAD + t_len + 1, l.last_name, n_len);
        r->next_page_token.data = p;
        r->next_page_token.len = SUM_TOKEN_HEAD + t_len + 1 + n_len;
    }
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_FEEDBACK_SUMMARY;
    call->rs->feedback_summary = r;
    return 0;
}
