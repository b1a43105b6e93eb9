/*
 * op_metric.c: the handlers of metric points: LogBatch (points with the
 * params and tags of the same batch), MetricHistory (raw points, paged by
 * sequence) and MetricCurve (M4 buckets for a plot). Metric summaries in a
 * run's reply are op_run.c's; the table is dispatch.c's.
 */
#include "op.h"

#include <string.h>

#include "track_limits.h"

/* Points in a history reply when the client leaves the page size to us:
 * large enough to amortise a round trip; larger pages were slower per point
 * (bench B7: 17-23 M points/s with 262144-point pages, 3-7 M with 500000,
 * from zeroing, copying and page faults on multi-megabyte buffers). */
#define HISTORY_PAGE_POINTS 262144

static int check_series(struct srv_call *call, const Track__V1__MetricSeries *m, size_t *total)
{
    char msg[400];

    if (limits_check_key("metric key", m->key, msg, sizeof(msg)))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    if (m->n_values != m->n_steps || (m->n_times_ms && m->n_times_ms != m->n_values))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "metric \"%s\": %zu values, %zu steps and %zu times do not match",
                           m->key, m->n_values, m->n_steps, m->n_times_ms);
    if (m->n_values == 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "metric \"%s\": no points",
                           m->key);
    *total += m->n_values;
    if (*total > LIMIT_BATCH_POINTS)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "metrics: more than %d points in one batch", LIMIT_BATCH_POINTS);
    for (size_t i = 0; i < m->n_steps; i++)
        if (m->steps[i] < 0)
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                               "metric \"%s\": step %lld is negative (point %zu)", m->key,
                               (long long)m->steps[i], i);
    for (size_t i = 0; i < m->n_times_ms; i++)
        if (m->times_ms[i] < 0)
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                               "metric \"%s\": time %lld is negative (point %zu)", m->key,
                               (long long)m->times_ms[i], i);
    return 0;
}

int srv_op_check_series(struct srv_call *call, Track__V1__MetricSeries *const *metrics, size_t n,
                        size_t *total)
{
    *total = 0;
    if (n > LIMIT_BATCH_SERIES)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "metrics: more than %d series",
                           LIMIT_BATCH_SERIES);
    for (size_t i = 0; i < n; i++)
        if (check_series(call, metrics[i], total))
            return -1;
    return 0;
}

int srv_op_put_series(struct srv_call *call, const uint8_t id[16],
                      Track__V1__MetricSeries *const *metrics, size_t n)
{
    struct store_err err = {0};
    int rc;

    for (size_t i = 0; i < n; i++) {
        const Track__V1__MetricSeries *m = metrics[i];
        const int64_t *times = m->times_ms;
        if (!m->n_times_ms) {
            int64_t now = wire_now_ms(), *t = srv_alloc(&call->arena, m->n_values * sizeof(*t));
            if (!t)
                return srv_op_oom(call);
            for (size_t k = 0; k < m->n_values; k++)
                t[k] = now;
            times = t;
        }
        rc = store_metric_append(call->st, id, m->key, m->steps, times, m->values, m->n_values,
                                 &err);
        if (rc)
            return srv_op_fail_store(call, rc, &err);
    }
    return 0;
}

int srv_op_log_batch(struct srv_call *call)
{
    const Track__V1__LogBatch *q = call->rq->log_batch;
    struct store_err err = {0};
    size_t total = 0;
    char msg[400];
    uint8_t id[16];
    int rc;

    if (srv_op_check_series(call, q->metrics, q->n_metrics, &total) ||
        srv_op_check_kvs(call, "param", q->params, q->n_params) ||
        srv_op_check_kvs(call, "tag", q->tags, q->n_tags))
        return -1;
    if (srv_op_resolve_run(call, "run", q->run, id))
        return -1;
    if (q->n_delete_tags > LIMIT_BATCH_KV)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "delete_tags: %zu keys, at most %d", q->n_delete_tags, LIMIT_BATCH_KV);
    for (size_t i = 0; i < q->n_delete_tags; i++)
        if (limits_check_key("delete_tags", q->delete_tags[i], msg, sizeof(msg)))
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    if (q->rename[0] && limits_check_name("rename", q->rename, 0, msg, sizeof(msg)))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    if (srv_op_put_kvs(call, id, 1, q->params, q->n_params) ||
        srv_op_put_kvs(call, id, 0, q->tags, q->n_tags) ||
        srv_op_put_series(call, id, q->metrics, q->n_metrics))
        return -1;
    for (size_t i = 0; i < q->n_delete_tags; i++)
        if ((rc = store_tag_delete(call->st, id, q->delete_tags[i], &err)))
            return srv_op_fail_store(call, rc, &err);
    if (q->rename[0] && (rc = store_run_rename(call->st, id, q->rename, &err)))
        return srv_op_fail_store(call, rc, &err);
    Track__V1__LogBatchResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
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

int srv_op_metric_history(struct srv_call *call)
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
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    if (q->after_seq < 0 || max < 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "after_seq and max_points: must not be negative");
    if (max == 0)
        max = HISTORY_PAGE_POINTS;
    if (max > LIMIT_HISTORY_POINTS)
        max = LIMIT_HISTORY_POINTS;
    if (srv_op_resolve_run(call, "run", q->run, id))
        return -1;
    /* size the reply from the summary so the arrays are allocated once */
    int64_t count = 0;
    rc = store_metric_count(call->st, id, q->key, &count, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    int64_t avail = count - q->after_seq;
    h.cap = (size_t)(avail < 0 ? 0 : avail < max ? avail : max);
    if (h.cap) {
        /* filled whole by the store: no need to zero them first */
        h.steps = srv_alloc_raw(a, h.cap * sizeof(int64_t));
        h.times = srv_alloc_raw(a, h.cap * sizeof(int64_t));
        h.values = srv_alloc_raw(a, h.cap * sizeof(double));
        if (!h.steps || !h.times || !h.values)
            return srv_op_oom(call);
    }
    rc = store_metric_history(call->st, id, q->key, q->after_seq, (int64_t)h.cap, hist_collect, &h,
                              &next, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    /* the summary promised points the chunks do not hold: answer what
     * there is, and say so when nothing is left, rather than a page that
     * is empty yet "more" (which a reader would ask for again forever) */
    if (h.cap && h.n == 0) {
        char hex[33];
        wire_hex(id, hex);
        return srv_op_fail(
            call, TRACK__V1__CODE__INTERNAL,
            "metric \"%s\" of run %s: the summary counts %lld points but the store has "
            "none after seq %lld; the data is inconsistent (run trackd --check)",
            q->key, hex, (long long)count, (long long)q->after_seq);
    }
    Track__V1__MetricHistoryResult *r = srv_alloc(a, sizeof(*r));
    Track__V1__MetricSeries *s = srv_alloc(a, sizeof(*s));
    if (!r || !s)
        return srv_op_oom(call);
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

int srv_op_metric_curve(struct srv_call *call)
{
    const Track__V1__MetricCurve *q = call->rq->metric_curve;
    struct store_err err = {0};
    struct srv_arena *a = &call->arena;
    char msg[400];
    uint8_t id[16];
    int n = 0, rc;
    int64_t count = 0;

    if (limits_check_key("metric key", q->key, msg, sizeof(msg)))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    if (q->buckets < 1 || q->buckets > LIMIT_CURVE_BUCKETS)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "buckets: must be 1..%d",
                           LIMIT_CURVE_BUCKETS);
    if (srv_op_resolve_run(call, "run", q->run, id))
        return -1;
    Track__V1__MetricCurveResult *r = srv_alloc(a, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
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
        return srv_op_oom(call);
    rc = store_metric_m4(call->st, id, q->key, q->buckets, b, &n, &count, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
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
