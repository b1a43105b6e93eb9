/*
 * web_feedback.c: people's ratings from the dashboard (README "Feedback",
 * "Dashboard"): a run's scores, one score added from the page, and the
 * rating queue. A score from the page is always source "human" with the
 * caller's own name as who (the page cannot claim another); it goes
 * through FeedbackBatch like every other score, so its checks and caps
 * are the daemon's.
 *
 * The queue is the samples of a run (its artifacts under a prefix,
 * "samples/" by default: what `track eval` and the examples log) that no
 * score of NAME targets yet, each with the first WEB_SAMPLE_TEXT bytes of
 * its text, so a person can rate a few hundred answers in a row. The scores
 * read to know what is rated stop at WEB_QUEUE_SCORES; past that the queue
 * may show a rated sample again (stated, never silent: `rated_capped`).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define WEB_SCORES_MAX   10000
#define WEB_QUEUE_SCORES 100000
#define WEB_QUEUE_ITEMS  10000
#define WEB_QUEUE_TEXT   100 /* samples whose text one reply carries, at most */
#define WEB_SAMPLE_TEXT  4096

static const char *kind_name(int k)
{
    return k == 1 ? "number" : k == 2 ? "boolean" : k == 3 ? "label" : "none";
}

static const char *source_name(int s)
{
    return s == 2 ? "llm_judge" : s == 3 ? "code" : "human";
}

static json_t *score_json(const Track__V1__Score *s)
{
    json_t *v = s->kind == 1   ? http_json_double(s->number)
                : s->kind == 2 ? json_boolean(s->boolean)
                : s->kind == 3 ? http_json_str(s->label)
                               : json_null();
    json_t *o = json_pack(
        "{s:I, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:s, s:o, s:o}", "id", (json_int_t)s->id,
        "run_id", s->run && *s->run ? http_json_str(s->run) : json_null(), "target",
        http_json_str(s->target), "name", http_json_str(s->name), "kind", kind_name(s->kind),
        "value", v, "comment", s->comment && *s->comment ? http_json_str(s->comment) : json_null(),
        "rationale", s->rationale && *s->rationale ? http_json_str(s->rationale) : json_null(),
        "source", source_name(s->source), "source_id", http_json_str(s->source_id), "time",
        web_json_time(s->time_ms));
    char hex[33];
    if (o && s->trace_id.len == 16) {
        web_hex(s->trace_id.data, 16, hex);
        json_object_set_new(o, "trace_id", json_string(hex));
    }
    if (o && s->span_id.len == 8) {
        web_hex(s->span_id.data, 8, hex);
        json_object_set_new(o, "span_id", json_string(hex));
    }
    return o;
}

/* Calls fn on each score of run (name: only those; NULL all), up to cap;
 * 0, 1 when it stopped at cap, or -1 with r failed. */
static int each_score(struct http_req *r, const char *run, const uint8_t *trace, const char *name,
                      size_t cap, int (*fn)(void *, const Track__V1__Score *), void *ctx)
{
    uint8_t tok[512];
    size_t tl = 0, seen = 0;
    int more;

    do {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__FeedbackList q = TRACK__V1__FEEDBACK_LIST__INIT;
        Track__V1__Response *rs;
        q.run = (char *)(run ? run : "");
        q.name = (char *)(name ? name : "");
        if (trace) {
            q.trace_id.data = (uint8_t *)trace;
            q.trace_id.len = 16;
        }
        q.page_token.data = tok;
        q.page_token.len = tl;
        rq.op_case = TRACK__V1__REQUEST__OP_FEEDBACK_LIST;
        rq.feedback_list = &q;
        if (http_call(r, &rq, &rs))
            return -1;
        const Track__V1__FeedbackListResult *l = rs->feedback_list;
        for (size_t i = 0; i < l->n_scores; i++)
            if (fn(ctx, l->scores[i])) {
                http_response_free(rs);
                return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
            }
        seen += l->n_scores;
        more = web_next_token(&l->next_page_token, tok, sizeof(tok), &tl);
        http_response_free(rs);
    } while (more && seen < cap);
    return more ? 1 : 0;
}

static int add_score(void *ctx, const Track__V1__Score *s)
{
    return json_array_append_new(ctx, score_json(s));
}

/* {"scores", "more"}: the scores of run, or of trace */
static int scores_reply(struct http_req *r, const char *run, const uint8_t *trace)
{
    json_t *list = json_array();
    if (!list)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    int rc = each_score(r, run, trace, NULL, WEB_SCORES_MAX, add_score, list);
    if (rc < 0) {
        json_decref(list);
        return -1;
    }
    return http_ok(r, json_pack("{s:o, s:b}", "scores", list, "more", rc == 1));
}

int web_trace_feedback(struct http_req *r, const uint8_t trace[16])
{
    return scores_reply(r, NULL, trace);
}

int web_run_feedback(struct http_req *r, const char *run)
{
    return scores_reply(r, run, NULL);
}

/* ---- a score from the page ------------------------------------------------------- */
static int hex_field(struct http_req *r, const char *field, size_t bytes, uint8_t *out, int *has)
{
    const char *h;
    *has = 0;
    if (http_arg_str(r, field, 0, &h))
        return -1;
    if (!h || !*h)
        return 0;
    if (strlen(h) != 2 * bytes || sodium_hex2bin(out, bytes, h, 2 * bytes, NULL, NULL, NULL))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "%s: expected %zu hex digits", field,
                         2 * bytes);
    *has = 1;
    return 0;
}

static int feedback_add(struct http_req *r)
{
    const char *run, *target, *name, *comment;
    uint8_t trace[16], span[8];
    int has_trace, has_span;
    Track__V1__Score s = TRACK__V1__SCORE__INIT, *sp = &s;
    Track__V1__FeedbackBatch q = TRACK__V1__FEEDBACK_BATCH__INIT;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Response *rs;

    if (http_arg_str(r, "run", 0, &run) || http_arg_str(r, "target", 0, &target) ||
        http_arg_str(r, "name", 1, &name) || http_arg_str(r, "comment", 0, &comment) ||
        hex_field(r, "trace_id", 16, trace, &has_trace) ||
        hex_field(r, "span_id", 8, span, &has_span))
        return -1;
    if (has_span && !has_trace)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "span_id: needs its trace_id");
    json_t *v = json_object_get(r->args, "value");
    if (!v || json_is_null(v))
        s.kind = 0;
    else if (json_is_boolean(v)) {
        s.kind = 2;
        s.boolean = json_is_true(v);
    } else if (json_is_number(v)) {
        s.kind = 1;
        s.number = json_number_value(v);
    } else if (json_is_string(v)) {
        s.kind = 3;
        s.label = (char *)json_string_value(v);
    } else
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "value: a number, true or false, a label (a string), or null");
    s.run = (char *)(run ? run : "");
    s.target = (char *)(target ? target : "");
    s.target_kind = has_span ? 3 : has_trace ? 2 : target && *target ? 1 : 0;
    if (has_trace) {
        s.trace_id.data = trace;
        s.trace_id.len = 16;
    }
    if (has_span) {
        s.span_id.data = span;
        s.span_id.len = 8;
    }
    s.name = (char *)name;
    s.comment = (char *)(comment ? comment : "");
    s.source = 1; /* human: the person at the page */
    s.source_id = r->caller.name;
    q.scores = &sp;
    q.n_scores = 1;
    rq.op_case = TRACK__V1__REQUEST__OP_FEEDBACK_BATCH;
    rq.feedback_batch = &q;
    if (http_call(r, &rq, &rs))
        return -1;
    json_t *o = json_pack("{s:I}", "added", (json_int_t)rs->feedback_batch->added);
    http_response_free(rs);
    return http_ok(r, o);
}

/* ---- the rating queue ------------------------------------------------------------ */
struct rated {
    char **targets;
    size_t n, cap;
};

static int add_rated(void *ctx, const Track__V1__Score *s)
{
    struct rated *d = ctx;
    if (!s->target || !*s->target)
        return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        char **t = realloc(d->targets, cap * sizeof(*t));
        if (!t)
            return -1;
        d->targets = t;
        d->cap = cap;
    }
    if (!(d->targets[d->n] = strdup(s->target)))
        return -1;
    d->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_rated(const struct rated *d, const char *target)
{
    return d->n && bsearch(&target, d->targets, d->n, sizeof(char *), cmp_str) != NULL;
}

/* The first WEB_SAMPLE_TEXT bytes of the blob `digest` as text (invalid
 * UTF-8 replaced). */
static json_t *sample_text(struct http_req *r, const ProtobufCBinaryData *digest, int64_t size)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactRead q = TRACK__V1__ARTIFACT_READ__INIT;
    Track__V1__Response *rs;
    char buf[WEB_SAMPLE_TEXT + 1];

    q.digest = *digest;
    q.max_bytes = WEB_SAMPLE_TEXT;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_READ;
    rq.artifact_read = &q;
    if (size == 0 || http_call(r, &rq, &rs))
        return json_string("");
    size_t n = rs->artifact_read->data.len < WEB_SAMPLE_TEXT ? rs->artifact_read->data.len
                                                             : WEB_SAMPLE_TEXT;
    memcpy(buf, rs->artifact_read->data.data, n);
    buf[n] = '\0';
    http_response_free(rs);
    /* a text cut at the cap may end inside a UTF-8 sequence: drop that tail */
    if ((int64_t)n < size)
        while (n && ((unsigned char)buf[n - 1] & 0xC0) == 0x80)
            buf[--n] = '\0';
    if (n && (unsigned char)buf[n - 1] >= 0xC0 && (int64_t)n < size)
        buf[--n] = '\0';
    return http_json_str(buf);
}

/* One sample of the queue's walk: counted, and kept with its text while
 * fewer than limit unrated ones are. */
struct queue_walk {
    struct http_req *r;
    const struct rated *rated_set;
    json_t *items;
    int64_t limit, total, rated;
};

static int queue_take(void *ctx, const Track__V1__ArtifactInfo *a)
{
    struct queue_walk *w = ctx;
    w->total++;
    if (is_rated(w->rated_set, a->path)) {
        w->rated++;
        return 0;
    }
    if ((int64_t)json_array_size(w->items) < w->limit)
        json_array_append_new(
            w->items, json_pack("{s:o, s:I, s:o, s:b}", "target", http_json_str(a->path), "size",
                                (json_int_t)a->size, "text", sample_text(w->r, &a->digest, a->size),
                                "text_truncated", a->size > WEB_SAMPLE_TEXT));
    return 0;
}

/* queue?run=RUN&name=NAME&prefix=samples/&limit=N */
static int queue(struct http_req *r)
{
    const char *run, *name, *prefix;
    int64_t limit;
    struct rated d = {0};
    json_t *items = NULL;
    int64_t total = 0, rated = 0;
    int more, ret = -1;

    if (http_arg_str(r, "run", 1, &run) || http_arg_str(r, "name", 1, &name) ||
        http_arg_str(r, "prefix", 0, &prefix) ||
        web_arg_limit(r, "limit", 20, WEB_QUEUE_TEXT, &limit))
        return -1;
    if (!prefix)
        prefix = "samples/";
    if (strlen(prefix) > LIMIT_ARTIFACT_PATH)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "prefix: longer than %d bytes",
                         LIMIT_ARTIFACT_PATH);
    int capped = each_score(r, run, NULL, name, WEB_QUEUE_SCORES, add_rated, &d);
    if (capped < 0)
        goto out;
    if (d.n)
        qsort(d.targets, d.n, sizeof(char *), cmp_str);
    if (!(items = json_array())) {
        http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
        goto out;
    }
    struct queue_walk w = {.r = r, .rated_set = &d, .items = items, .limit = limit};
    if ((more = web_each_artifact(r, run, prefix, WEB_QUEUE_ITEMS, queue_take, &w)) < 0)
        goto out;
    total = w.total;
    rated = w.rated;
    ret = http_ok(r, json_pack("{s:o, s:o, s:o, s:I, s:I, s:b, s:b, s:O}", "run_id",
                               http_json_str(run), "name", http_json_str(name), "prefix",
                               http_json_str(prefix), "total", (json_int_t)total, "rated",
                               (json_int_t)rated, "more", more, "rated_capped", capped == 1,
                               "items", items));
out:
    json_decref(items);
    for (size_t i = 0; i < d.n; i++)
        free(d.targets[i]);
    free(d.targets);
    return ret;
}

const struct http_route web_feedback_routes[] = {
    {"POST", "feedback", feedback_add, NULL, 1, 0, 0},
    {"GET", "queue", queue, NULL, 0, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};
