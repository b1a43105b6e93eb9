/*
 * store_trace.h: the store's LLM traces (store_trace.c; DESIGN.md
 * "Traces"): spans put in batches with their trace's rollups, traces
 * listed by a filter, a trace's spans read in pages, old traces pruned.
 * Split from store.h, which it needs.
 */
#ifndef TRACK_STORE_TRACE_H
#define TRACK_STORE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* ---- traces (store_trace.c; DESIGN.md "Traces") --------------------------------------- */
#define STORE_TRACE_ID_BYTES  16
#define STORE_SPAN_ID_BYTES   8
#define STORE_TRACE_MODEL_MAX 250 /* bytes of a model name */
enum { STORE_SPAN_UNSET = 0, STORE_SPAN_OK = 1, STORE_SPAN_ERROR = 2 };

struct store_span {
    uint8_t trace_id[STORE_TRACE_ID_BYTES];
    uint8_t span_id[STORE_SPAN_ID_BYTES];
    int has_parent;
    uint8_t parent[STORE_SPAN_ID_BYTES];
    const char *name;
    int kind; /* OTLP's SpanKind */
    int64_t start_ns, end_ns;
    int status; /* STORE_SPAN_* */
    const char *status_message;
    const char *model, *operation;
    int64_t tokens_in, tokens_out, tokens_total;
    double cost;
    const char *attributes; /* a JSON object */
};

struct store_trace {
    uint8_t trace_id[STORE_TRACE_ID_BYTES];
    const char *experiment;
    int has_run;
    uint8_t run[16];
    const char *root_name;
    int64_t start_ns, end_ns, spans, errors, tokens_in, tokens_out, tokens_total;
    double cost;
    const char *models; /* comma-separated, most spans first */
};
typedef int (*store_trace_cb)(void *ctx, const struct store_trace *t);
typedef int (*store_span_cb)(void *ctx, const struct store_span *s);

/* Stores n spans (each replacing one of the same ids) and updates their
 * traces' rollups, making a trace in experiment_id (tied to run, may be
 * NULL; NOT_FOUND when there is no such run) when it is new; *new_traces
 * (may be NULL) counts those. Spans of
 * one trace next to each other cost one trace update between them. */
int store_spans_put(struct store *st, int64_t experiment_id, const uint8_t *run,
                    const struct store_span *spans, size_t n, int64_t *new_traces,
                    struct store_err *err);

struct store_trace_query {
    const int64_t *experiment_ids; /* none: every experiment the viewer reads */
    size_t n_experiments;          /* at most 64 */
    const uint8_t *run;            /* only this run's traces; NULL: any */
    int limit;                     /* 0: 100 */
    int64_t before_start_ns;       /* paging: traces started before this; 0: the newest */
    int64_t min_tokens, min_duration_ns;
    int errors_only;
    const char *filter; /* the trace filter language (filter_trace.c); NULL or "": none */
    const struct store_viewer *viewer; /* NULL: the local owner */
};
/* Deletes traces that started before before_ns, oldest first, with their
 * spans: at most about max_spans spans a call (0: 5,000), so the writer is
 * held briefly; a bigger trace goes over several calls. *spans and *traces
 * count what went. */
int store_trace_prune(struct store *st, int64_t before_ns, int max_spans, int64_t *spans,
                      int64_t *traces, struct store_err *err);
/* The experiment (and run, *has_run) a trace belongs to; NOT_FOUND naming it. */
int store_trace_owner(struct store *st, const uint8_t trace_id[16], int64_t *experiment_id,
                      uint8_t run[16], int *has_run, struct store_err *err);
/* Traces newest first; *more when more matched than the limit. */
int store_trace_list(struct store *st, const struct store_trace_query *q, store_trace_cb cb,
                     void *ctx, int *more, struct store_err *err);
/* One trace's rollups; NOT_FOUND naming it (also when v may not read it). */
int store_trace_get(struct store *st, const uint8_t trace_id[16], const struct store_viewer *v,
                    store_trace_cb cb, void *ctx, struct store_err *err);
/* A trace's spans by start time then id, after (after_start_ns,
 * after_span) when after_span is not NULL, at most limit (0: 10,000);
 * *more when there are more. The caller checked the trace is visible. */
int store_trace_spans(struct store *st, const uint8_t trace_id[16], const uint8_t *after_span,
                      int64_t after_start_ns, int limit, store_span_cb cb, void *ctx, int *more,
                      struct store_err *err);

#endif
