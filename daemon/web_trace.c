/*
 * web_trace.c: the dashboard's API for LLM traces (README "Traces",
 * "Dashboard"): the trace list with the trace filter language, and one
 * trace's spans without their attributes (what a tree with a timeline
 * needs), in the shapes of `track traces --json` and `track trace show
 * --json`. A trace's spans are read in the daemon's pages up to
 * WEB_SPANS_MAX; past that the reply says more (the page folds the rest).
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "http.h"

#define WEB_TRACES_MAX 10000
#define WEB_SPANS_MAX  20000

static json_t *trace_json(const Track__V1__TraceInfo *t)
{
    char id[33] = "", run[33] = "";
    if (t->trace_id.len == 16)
        web_hex(t->trace_id.data, 16, id);
    if (t->run_id.len == 16)
        web_hex(t->run_id.data, 16, run);
    json_t *models = json_array();
    for (size_t i = 0; models && i < t->n_models; i++)
        json_array_append_new(models, http_json_str(t->models[i]));
    return json_pack("{s:s, s:o, s:o, s:o, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
                     "trace_id", id, "experiment", http_json_str(t->experiment), "run_id",
                     run[0] ? json_string(run) : json_null(), "root", http_json_str(t->root_name),
                     "start_ns", (json_int_t)t->start_ns, "end_ns", (json_int_t)t->end_ns,
                     "duration_ms", (double)(t->end_ns - t->start_ns) / 1e6, "spans",
                     (json_int_t)t->spans, "errors", (json_int_t)t->errors, "tokens_in",
                     (json_int_t)t->tokens_in, "tokens_out", (json_int_t)t->tokens_out,
                     "tokens_total", (json_int_t)t->tokens_total, "cost", http_json_double(t->cost),
                     "models", models);
}

static json_t *span_json(const Track__V1__Span *s)
{
    char id[17] = "", parent[17] = "";
    if (s->span_id.len == 8)
        web_hex(s->span_id.data, 8, id);
    if (s->parent_span_id.len == 8)
        web_hex(s->parent_span_id.data, 8, parent);
    return json_pack("{s:s, s:o, s:o, s:i, s:I, s:I, s:s, s:o, s:o, s:o, s:I, s:I, s:I, s:o}",
                     "span_id", id, "parent_span_id", parent[0] ? json_string(parent) : json_null(),
                     "name", http_json_str(s->name), "kind", s->kind, "start_ns",
                     (json_int_t)s->start_ns, "end_ns", (json_int_t)s->end_ns, "status",
                     s->status == 2   ? "error"
                     : s->status == 1 ? "ok"
                                      : "unset",
                     "status_message", http_json_str(s->status_message), "model",
                     http_json_str(s->model), "operation", http_json_str(s->operation), "tokens_in",
                     (json_int_t)s->tokens_in, "tokens_out", (json_int_t)s->tokens_out,
                     "tokens_total", (json_int_t)s->tokens_total, "cost",
                     http_json_double(s->cost));
}

/* traces?experiment=&run=&filter=&limit= */
static int traces(struct http_req *r)
{
    const char *exp, *run, *filter;
    int64_t limit;
    char *names[1];
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__TraceList q = TRACK__V1__TRACE_LIST__INIT;
    Track__V1__Response *rs;

    if (http_arg_str(r, "experiment", 0, &exp) || http_arg_str(r, "run", 0, &run) ||
        http_arg_str(r, "filter", 0, &filter) ||
        web_arg_limit(r, "limit", 200, WEB_TRACES_MAX, &limit))
        return -1;
    if (exp && exp[0]) {
        names[0] = (char *)exp;
        q.experiments = names;
        q.n_experiments = 1;
    }
    q.run = (char *)(run ? run : "");
    q.filter = (char *)(filter ? filter : "");
    q.limit = (int32_t)limit;
    rq.op_case = TRACK__V1__REQUEST__OP_TRACE_LIST;
    rq.trace_list = &q;
    if (http_call(r, &rq, &rs))
        return web_fail_filter(r, "filter");
    json_t *list = json_array();
    for (size_t i = 0; list && i < rs->trace_list->n_traces; i++)
        json_array_append_new(list, trace_json(rs->trace_list->traces[i]));
    int more = rs->trace_list->more;
    http_response_free(rs);
    return http_ok(r, list ? json_pack("{s:o, s:b}", "traces", list, "more", more) : NULL);
}

/* traces/TRACE: the trace and its spans in start order */
static int trace_get(struct http_req *r)
{
    uint8_t id[16], cursor[16];
    size_t cl = 0;
    json_t *o = NULL, *spans = json_array();
    int more = 0;

    if (!spans)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    size_t idl = strcspn(r->path, "/");
    if (idl != 32 || sodium_hex2bin(id, 16, r->path, 32, NULL, NULL, NULL) != 0) {
        json_decref(spans);
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "trace: '%.40s' is not a trace id (32 hex digits)", r->path);
    }
    if (r->path[32]) {
        json_decref(spans);
        if (strcmp(r->path + 32, "/feedback") == 0)
            return web_trace_feedback(r, id);
        return http_fail(r, 404, "ENDPOINT_NOT_FOUND", "no endpoint GET /api/track/v1/traces/%s",
                         r->path);
    }
    do {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__TraceGet q = TRACK__V1__TRACE_GET__INIT;
        Track__V1__Response *rs;
        q.trace_id.data = id;
        q.trace_id.len = 16;
        q.after_span.data = cursor;
        q.after_span.len = cl;
        q.without_attributes = 1;
        rq.op_case = TRACK__V1__REQUEST__OP_TRACE_GET;
        rq.trace_get = &q;
        if (http_call(r, &rq, &rs)) {
            json_decref(o);
            json_decref(spans);
            return -1;
        }
        const Track__V1__TraceGetResult *t = rs->trace_get;
        if (!o && t->trace)
            o = trace_json(t->trace);
        for (size_t i = 0; i < t->n_spans; i++)
            json_array_append_new(spans, span_json(t->spans[i]));
        more = t->more && t->n_spans && t->spans[t->n_spans - 1]->span_id.len == 8;
        if (more) {
            /* the cursor: the last span's start (8 bytes, little-endian) and id */
            const Track__V1__Span *last = t->spans[t->n_spans - 1];
            uint64_t st = (uint64_t)last->start_ns;
            for (int b = 0; b < 8; b++)
                cursor[b] = (uint8_t)(st >> (8 * b));
            memcpy(cursor + 8, last->span_id.data, 8);
            cl = 16;
        }
        http_response_free(rs);
    } while (more && json_array_size(spans) < WEB_SPANS_MAX);
    if (!o) {
        json_decref(spans);
        return http_fail(r, 404, "RESOURCE_DOES_NOT_EXIST", "trace %s: no such trace", r->path);
    }
    json_object_set_new(o, "span_list", spans);
    json_object_set_new(o, "more", json_boolean(more));
    return http_ok(r, o);
}

const struct http_route web_trace_routes[] = {
    {"GET", "traces", traces, NULL, 0, 0, 0},
    {"GET", "traces/", trace_get, NULL, 0, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};
