/*
 * fuzz_batch.c: libFuzzer target for runs/log-batch's two readings of a body:
 * the route as trackd runs it (daemon/mlflow_batch.c's in-place fast path
 * first, jansson and mlflow_run.c's log_batch for what it leaves), against
 * the general path alone (the body parsed first, so the fast path never
 * runs). Whatever the bytes, both must answer alike (status, error code,
 * message) and send the same LogBatch: the same run, series, steps and
 * values bit for bit (the fast path's values come from wire_json_number,
 * the general path's from jansson's strtod, so this is also the number
 * parser against strtod), and the same timestamps (a point without one gets
 * the time it came, so two such are only both recent). The body is an
 * exact-size copy: ASan stops a read past its end.
 *
 * http_call is this file's own: it keeps the LogBatch (packed) instead of
 * sending it to a loop, and answers success; so is http_parse_args, http.c's
 * without a query string (a POST has none), which needs a connection.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What one reading sent: the LogBatch, packed; calls made. */
struct sent {
    int calls;
    uint8_t *packed;
    size_t len;
};

static struct sent got[2], *now_sent;

int http_call(struct http_req *r, Track__V1__Request *rq, Track__V1__Response **rs)
{
    (void)r;
    *rs = NULL;
    if (rq->op_case != TRACK__V1__REQUEST__OP_LOG_BATCH || now_sent->calls++)
        abort(); /* a log-batch is one LogBatch */
    now_sent->len = track__v1__log_batch__get_packed_size(rq->log_batch);
    if (!(now_sent->packed = malloc(now_sent->len ? now_sent->len : 1)))
        abort();
    track__v1__log_batch__pack(rq->log_batch, now_sent->packed);
    return 0;
}

void http_response_free(Track__V1__Response *rs)
{
    if (rs)
        abort();
}

int http_parse_args(struct http_req *r)
{
    if (r->body_len == 0) {
        r->args = json_object();
        return r->args ? 0 : http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    }
    return http_parse_body(r);
}

static const struct http_route *log_batch_route(void)
{
    for (const struct http_route *rt = ml_run_routes; rt->path; rt++)
        if (strcmp(rt->path, "runs/log-batch") == 0)
            return rt;
    abort();
}

/* One reading: the route on a fresh copy of the body, parsed first or not. */
static void reading(const struct http_route *rt, const uint8_t *data, size_t size, int general,
                    struct http_req *r)
{
    memset(r, 0, sizeof(*r));
    r->method = "POST";
    r->body = malloc(size ? size : 1);
    if (!r->body)
        abort();
    memcpy(r->body, data, size);
    r->body_len = size;
    now_sent = &got[general];
    if (!general || http_parse_args(r) == 0)
        rt->fn(r);
}

/* The LogBatch a reading sent. */
static Track__V1__LogBatch *unpacked(const struct sent *s)
{
    Track__V1__LogBatch *q = track__v1__log_batch__unpack(NULL, s->len, s->packed);
    if (!q)
        abort();
    return q;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http_route *rt;
    struct http_req r[2];

    if (!rt)
        rt = log_batch_route();
    if (size > (1u << 20))
        return 0;
    memset(got, 0, sizeof(got));
    int64_t t0 = wire_now_ms();
    reading(rt, data, size, 0, &r[0]);
    reading(rt, data, size, 1, &r[1]);
    int64_t t1 = wire_now_ms();
    if (r[0].status != r[1].status || !same_str(r[0].error_code, r[1].error_code) ||
        strcmp(r[0].message, r[1].message) != 0 || got[0].calls != got[1].calls)
        abort();
    if (got[0].calls) {
        Track__V1__LogBatch *a = unpacked(&got[0]), *b = unpacked(&got[1]);
        if (a->n_metrics != b->n_metrics)
            abort();
        for (size_t i = 0; i < a->n_metrics; i++) {
            Track__V1__MetricSeries *x = a->metrics[i], *y = b->metrics[i];
            if (x->n_times_ms != y->n_times_ms)
                abort();
            for (size_t k = 0; k < x->n_times_ms; k++) {
                int64_t u = x->times_ms[k], v = y->times_ms[k];
                if (u != v && (u < t0 || u > t1 || v < t0 || v > t1))
                    abort(); /* only two points without a timestamp may differ */
                x->times_ms[k] = y->times_ms[k] = 0;
            }
        }
        /* the rest bit for bit: run, series, steps, values, params, tags */
        size_t na = track__v1__log_batch__get_packed_size(a);
        size_t nb = track__v1__log_batch__get_packed_size(b);
        uint8_t *pa = malloc(na ? na : 1), *pb = malloc(nb ? nb : 1);
        if (!pa || !pb)
            abort();
        track__v1__log_batch__pack(a, pa);
        track__v1__log_batch__pack(b, pb);
        if (na != nb || memcmp(pa, pb, na) != 0)
            abort();
        free(pa);
        free(pb);
        track__v1__log_batch__free_unpacked(a, NULL);
        track__v1__log_batch__free_unpacked(b, NULL);
    }
    for (int k = 0; k < 2; k++) {
        json_decref(r[k].args);
        json_decref(r[k].reply);
        free(r[k].body);
        free(got[k].packed);
    }
    return 0;
}
