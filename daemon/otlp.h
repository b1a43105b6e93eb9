/*
 * otlp.h: OTLP trace export's internals, shared by otlp.c (the /v1/traces
 * route: encodings, gzip, sending, answers) and otlp_decode.c (a request's
 * bytes into track Spans, grouped; alone in the fuzz target).
 */
#ifndef TRACK_OTLP_H
#define TRACK_OTLP_H

#include "http.h"

#define OTLP_MAX_BODY    (32u << 20) /* bytes of a request, after decompression */
#define OTLP_MAX_ATTRS   128         /* attributes kept per span */
#define OTLP_MAX_VALUE   8192        /* bytes of one attribute's text */
#define OTLP_MAX_EVENTS  128         /* events kept per span */
#define OTLP_BATCH_SPANS 2000        /* spans per SpanBatch */
#define OTLP_MAX_DEPTH   16          /* nesting of array and kvlist values */

/* One export's spans for one (experiment, run): malloc'd, freed with the export. */
struct otlp_group {
    char experiment[LIMIT_NAME_BYTES + 1];
    char run[33];
    Track__V1__Span **spans;
    size_t n, cap;
};

struct otlp_export {
    struct http_req *r;            /* errors go there */
    const char *header_experiment; /* x-track-experiment, or NULL */
    struct otlp_group *groups;
    size_t n_groups;
    int64_t rejected;
    char why[300]; /* the first rejection */
    int oom;
};

/* Decodes body (proto: application/x-protobuf, else JSON) into x's groups;
 * spans it refuses are counted in x->rejected with the first reason. 0, or
 * -1 with x->r failed (400 for a body that does not decode). */
int otlp_decode(struct otlp_export *x, int proto, const char *body, size_t len);
/* Counts n refused spans; the first reason is kept. */
void otlp_reject(struct otlp_export *x, int64_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void otlp_export_free(struct otlp_export *x);

#endif
