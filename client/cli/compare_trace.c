/*
 * compare_trace.c: the trace rows of `track compare` (compare.h): for each
 * compared run, the LLM traces tied to it (`track.run_id`, README
 * "Traces") rolled up on the client from track_trace_list's pages: how many,
 * the p50 and p95 of their durations (end_ns - start_ns), their input,
 * output and total tokens and their cost summed, and the error rate (the
 * traces with an error span over all of them); one row per rollup, a cell
 * per run, and the same per run for --json.
 *
 * The percentiles are exact, by nearest rank: of n durations sorted
 * ascending, the p-th percentile is the one at rank ceil(p * n / 100)
 * (1-based), a duration that occurred, never an interpolation between two.
 * That needs every duration of the run at once: 8 bytes a trace, in one
 * array reused run after run, grown as pages come up to CMP_TRACE_KEEP
 * (1,000,000 traces, 8 MB). A run with more has its percentiles taken over
 * its newest CMP_TRACE_KEEP traces, and a warning says so; the count, the
 * sums and the error rate stay exact.
 *
 * Paging: track_trace_each (libtrack) lists a run's traces newest first,
 * each once, also where traces share a start time across a page's end;
 * more than a page of them in one nanosecond is an error, rather than a
 * loop or a silent undercount.
 */
#include "compare.h"
#include "render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 10000 /* traces a request: trackd's most */

static const struct {
    const char *label, *csv;
    int turned; /* also a column of the turned table */
} rows[CMP_TRACE_ROWS] = {
    {"traces", "traces.count", 1},
    {"latency p50", "traces.latency_p50_ms", 1},
    {"latency p95", "traces.latency_p95_ms", 1},
    {"tokens in", "traces.tokens_in", 0},
    {"tokens out", "traces.tokens_out", 0},
    {"tokens total", "traces.tokens_total", 1},
    {"cost", "traces.cost", 1},
    {"error rate", "traces.error_rate", 1},
};

/* One run's rollup as pages come. */
struct tally {
    struct cmp_trace_cell *cell;
    int64_t *dur; /* durations kept, the caller's array */
    size_t n_dur, cap_dur;
    double cost_c; /* the running compensation of the cost's sum (Neumaier) */
    struct track_err *err;
};

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t s;
    if (!__builtin_add_overflow(a, b, &s))
        return s;
    return b > 0 ? INT64_MAX : INT64_MIN;
}

/* Neumaier's compensated sum: the cost of 10^5 traces adds up as exactly
 * as the doubles allow, whatever the order pages bring them in. */
static void add_cost(struct tally *t, double v)
{
    double s = t->cell->cost + v;
    if (fabs(t->cell->cost) >= fabs(v))
        t->cost_c += (t->cell->cost - s) + v;
    else
        t->cost_c += (v - s) + t->cell->cost;
    t->cell->cost = s;
}

static int take(struct tally *t, const struct track_trace_info *ti, struct track_err *err)
{
    struct cmp_trace_cell *c = t->cell;
    int64_t d;

    c->count++;
    c->errors += ti->errors > 0;
    c->tokens_in = sat_add(c->tokens_in, ti->tokens_in);
    c->tokens_out = sat_add(c->tokens_out, ti->tokens_out);
    c->tokens_total = sat_add(c->tokens_total, ti->tokens_total);
    add_cost(t, ti->cost);
    if (__builtin_sub_overflow(ti->end_ns, ti->start_ns, &d))
        d = ti->end_ns > ti->start_ns ? INT64_MAX : INT64_MIN;
    if (t->n_dur == CMP_TRACE_KEEP)
        return 0; /* the newest CMP_TRACE_KEEP only; the caller warns */
    if (t->n_dur == t->cap_dur) {
        size_t cap = t->cap_dur ? t->cap_dur * 2 : 4096;
        cap = cap > CMP_TRACE_KEEP ? CMP_TRACE_KEEP : cap;
        int64_t *p = realloc(t->dur, cap * sizeof(*p));
        if (!p) {
            err->code = TRACK_E_RESOURCE_EXHAUSTED;
            snprintf(err->msg, sizeof err->msg, "out of memory for %zu trace durations", cap);
            return err->code;
        }
        t->dur = p;
        t->cap_dur = cap;
    }
    t->dur[t->n_dur++] = d;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (0 < p <= 100) of v[0..n), sorted, n > 0: nearest rank. */
static int64_t nearest_rank(const int64_t *v, size_t n, unsigned p)
{
    size_t rank = (p * n + 99) / 100;
    return v[(rank ? rank : 1) - 1];
}

static int take_cb(void *ctx, const struct track_trace_info *ti)
{
    struct tally *t = ctx;
    return take(t, ti, t->err);
}

/* The traces of run `hex` into t->cell, each once (track_trace_each pages
 * them safely across traces that share a start time). */
static int load_run(struct track_client *c, const char *hex, struct tally *t, struct track_err *err)
{
    struct track_trace_query q = {.run = hex, .limit = PAGE};
    t->err = err;
    int rc = track_trace_each(c, &q, take_cb, t, err);
    if (rc) { /* which run's traces it was */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        snprintf(err->msg, sizeof err->msg, "run %.8s: %.400s", hex, msg);
    }
    return rc;
}

int cmp_trace_load(struct track_client *c, const char (*hex)[33], size_t n, struct cmp_traces *tr,
                   struct track_err *err)
{
    struct tally t = {0};
    int rc = 0;

    memset(tr, 0, sizeof *tr);
    for (size_t i = 0; i < n && i < CMP_MAX_RUNS && rc == 0; i++) {
        struct cmp_trace_cell *cell = &tr->cells[i];
        t.cell = cell;
        t.n_dur = 0;
        t.cost_c = 0;
        if ((rc = load_run(c, hex[i], &t, err)))
            break;
        cell->cost += t.cost_c;
        if (!cell->count)
            continue;
        tr->any = 1;
        qsort(t.dur, t.n_dur, sizeof(*t.dur), cmp_i64);
        cell->kept = (int64_t)t.n_dur;
        cell->p50_ns = nearest_rank(t.dur, t.n_dur, 50);
        cell->p95_ns = nearest_rank(t.dur, t.n_dur, 95);
        if (cell->kept < cell->count)
            cli_warn("run %.8s has %lld traces; its latency p50 and p95 are over its newest %lld",
                     hex[i], (long long)cell->count, (long long)cell->kept);
    }
    free(t.dur);
    return rc;
}

const char *cmp_trace_label(size_t k, int machine)
{
    return machine ? rows[k].csv : rows[k].label;
}

int cmp_trace_turned(const char *label)
{
    for (size_t k = 0; k < CMP_TRACE_ROWS; k++)
        if (strcmp(label, rows[k].label) == 0)
            return rows[k].turned;
    return 0;
}

/* "250ms", "0.21ms", "12.5s": the duration row's units, 6 significant
 * digits as every number of the table. */
static void latency_text(int64_t ns, char *buf, size_t len)
{
    char v[64];
    double ms = (double)ns / 1e6;
    if (ms < 1000 && ms > -1000) {
        render_num(ms, v, sizeof v);
        snprintf(buf, len, "%sms", v);
    } else {
        render_num(ms / 1000, v, sizeof v);
        snprintf(buf, len, "%ss", v);
    }
}

void cmp_trace_cell(const struct cmp_traces *tr, size_t k, size_t run, int machine, char *buf,
                    size_t len)
{
    const struct cmp_trace_cell *c = &tr->cells[run];
    int64_t ns = k == 1 ? c->p50_ns : c->p95_ns;

    if (!c->count) {
        snprintf(buf, len, machine ? "" : "-");
        return;
    }
    switch (k) {
    case 0:
        snprintf(buf, len, "%lld", (long long)c->count);
        break;
    case 1:
    case 2:
        if (machine)
            render_double((double)ns / 1e6, buf, len);
        else
            latency_text(ns, buf, len);
        break;
    case 3:
    case 4:
    case 5:
        snprintf(buf, len, "%lld",
                 (long long)(k == 3   ? c->tokens_in
                             : k == 4 ? c->tokens_out
                                      : c->tokens_total));
        break;
    case 6:
        if (machine)
            render_double(c->cost, buf, len);
        else
            render_num(c->cost, buf, len);
        break;
    default: {
        double rate = (double)c->errors / (double)c->count;
        if (machine)
            render_double(rate, buf, len);
        else
            snprintf(buf, len, "%.3g%% (%lld/%lld)", rate * 100, (long long)c->errors,
                     (long long)c->count);
    }
    }
}

json_t *cmp_trace_json(const struct cmp_traces *tr, size_t run)
{
    const struct cmp_trace_cell *c = &tr->cells[run];

    if (!c->count)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer(c->count));
    json_object_set_new(o, "latency_p50_ms", cli_json_double((double)c->p50_ns / 1e6));
    json_object_set_new(o, "latency_p95_ms", cli_json_double((double)c->p95_ns / 1e6));
    json_object_set_new(o, "tokens_in", json_integer(c->tokens_in));
    json_object_set_new(o, "tokens_out", json_integer(c->tokens_out));
    json_object_set_new(o, "tokens_total", json_integer(c->tokens_total));
    json_object_set_new(o, "cost", cli_json_double(c->cost));
    json_object_set_new(o, "errors", json_integer(c->errors));
    json_object_set_new(o, "error_rate", cli_json_double((double)c->errors / (double)c->count));
    return o;
}
