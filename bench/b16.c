/*
 * b16.c: B16, OTLP trace ingest through the HTTP front (`/v1/traces`),
 * spans a second, against metric ingest through libtrack (points a second,
 * the `log` worker with batches of 1,000) on the same trackd, alternating,
 * median of the repetitions.
 *
 * The worker (otlp-http ADDR:PORT TRACES) builds ExportTraceServiceRequests
 * in protobuf by hand from OTLP's field numbers (the same ones
 * proto/otlp/otlp_trace.proto has), B16_TRACES_PER_POST traces of
 * B16_SPANS_PER_TRACE spans each a request: a root and its children, each
 * child an LLM call with GenAI's model and token attributes, as an
 * instrumented application sends them. It prints "t0 t1 spans cpu_ns".
 * Each worker sends traces of its own (their ids salted by its pid and
 * clock), so every repetition measures new spans on a store that grows,
 * never the re-sent spans of the one before (which are replaced, a slower
 * path: until 2026-12-04 repetitions 2 and on measured that).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "orch.h"

/* ---- protobuf, by hand ---------------------------------------------------------------- */
struct pb {
    uint8_t *p;
    size_t n, cap;
};

static void put(struct pb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            fprintf(stderr, "track-bench worker: out of memory\n");
            exit(1);
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void varint(struct pb *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(b, t, n);
}

static void ld(struct pb *b, int field, const struct pb *m)
{
    varint(b, (uint64_t)field << 3 | 2);
    varint(b, m->n);
    put(b, m->p, m->n);
}

static void ld_raw(struct pb *b, int field, const void *d, size_t n)
{
    varint(b, (uint64_t)field << 3 | 2);
    varint(b, n);
    put(b, d, n);
}

static void fixed64(struct pb *b, int field, uint64_t v)
{
    varint(b, (uint64_t)field << 3 | 1);
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    put(b, t, 8);
}

/* KeyValue{key, AnyValue{string_value | int_value}} */
static void kv(struct pb *b, const char *key, const char *s, int64_t i)
{
    struct pb any = {0}, pair = {0};
    if (s)
        ld_raw(&any, 1, s, strlen(s));
    else {
        varint(&any, 3 << 3);
        varint(&any, (uint64_t)i);
    }
    ld_raw(&pair, 1, key, strlen(key));
    ld(&pair, 2, &any);
    ld(b, 9, &pair); /* Span.attributes */
    free(any.p);
    free(pair.p);
}

static void span(struct pb *scope, const uint8_t tid[16], uint64_t sid, uint64_t parent,
                 const char *name, uint64_t start, uint64_t end, int llm, int64_t n)
{
    struct pb s = {0};
    uint8_t id[8], pid[8];
    for (int i = 0; i < 8; i++) {
        id[i] = (uint8_t)(sid >> (56 - 8 * i));
        pid[i] = (uint8_t)(parent >> (56 - 8 * i));
    }
    ld_raw(&s, 1, tid, 16);
    ld_raw(&s, 2, id, 8);
    if (parent)
        ld_raw(&s, 4, pid, 8);
    ld_raw(&s, 5, name, strlen(name));
    varint(&s, 6 << 3);
    varint(&s, llm ? 3 : 1);
    fixed64(&s, 7, start);
    fixed64(&s, 8, end);
    if (llm) {
        kv(&s, "gen_ai.operation.name", "chat", 0);
        kv(&s, "gen_ai.request.model", "gpt-4o-mini", 0);
        kv(&s, "gen_ai.usage.input_tokens", NULL, 100 + n % 50);
        kv(&s, "gen_ai.usage.output_tokens", NULL, 20 + n % 7);
    }
    ld(scope, 2, &s); /* ScopeSpans.spans */
    free(s.p);
}

/* One request: traces [first, first + per_post) of `spans` spans each (a
 * trace of more than one request's worth: part `part` of it, its root in
 * part 0). */
static void export_request(struct pb *out, int64_t first, int per_post, int spans, int part,
                           uint32_t salt)
{
    struct pb res = {0}, scope = {0}, rs = {0}, attr = {0}, any = {0};
    uint64_t t0 = (uint64_t)1700000000 * 1000000000ull;

    out->n = 0;
    ld_raw(&any, 1, "b16-app", 7);
    ld_raw(&attr, 1, "service.name", 12);
    ld(&attr, 2, &any);
    ld(&res, 1, &attr); /* Resource.attributes */
    ld_raw(&scope, 1,
           "\n\x05"
           "bench",
           7); /* ScopeSpans.scope: InstrumentationScope{name} */
    for (int64_t t = first; t < first + per_post; t++) {
        uint8_t tid[16] = {0};
        for (int i = 0; i < 8; i++)
            tid[8 + i] = (uint8_t)((uint64_t)(t + 1) >> (56 - 8 * i));
        tid[0] = 0xb1;
        /* each worker's own traces: a repetition that sent the last one's
         * again would measure re-sent spans (replaced), not new ones */
        for (int i = 0; i < 4; i++)
            tid[1 + i] = (uint8_t)(salt >> (8 * i));
        uint64_t start = t0 + (uint64_t)t * 1000000;
        int64_t from = (int64_t)part * spans;
        if (from == 0)
            span(&scope, tid, 1, 0, "answer-question", start, start + 900000, 0, t);
        for (int64_t k = from ? from : 1; k < from + spans; k++)
            span(&scope, tid, (uint64_t)k + 1, 1, "chat gpt-4o-mini", start + (uint64_t)k * 8,
                 start + (uint64_t)k * 8 + 7, 1, t * spans + k);
    }
    ld(&rs, 1, &res);   /* ResourceSpans.resource */
    ld(&rs, 2, &scope); /* ResourceSpans.scope_spans */
    ld(out, 1, &rs);    /* ExportTraceServiceRequest.resource_spans */
    free(res.p), free(scope.p), free(rs.p), free(attr.p), free(any.p);
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* TRACES traces of SPANS spans, PER_POST a request; a trace bigger than a
 * request (PER_POST 0) goes in parts of 5,000 spans. */
static int mode_otlp_http(const char *hp, int64_t traces, int spans, int per_post, int salted)
{
    struct bench_http h;
    struct pb body = {0};
    char go;
    int status = 0, rc = 1, parts = per_post ? 1 : (spans + 4999) / 5000;

    if (bench_http_open(&h, hp) < 0) {
        fprintf(stderr, "track-bench worker: otlp-http: %s\n", h.err);
        goto out;
    }
    printf("ready\n");
    fflush(stdout);
    if (read(0, &go, 1) != 1)
        goto out;
    uint32_t salt = salted ? (uint32_t)getpid() ^ (uint32_t)bench_now_ns() : 0;
    int64_t c0 = cpu_ns(), t0 = bench_now_ns();
    for (int64_t t = 0; t < traces; t += per_post ? per_post : 1)
        for (int part = 0; part < parts; part++) {
            export_request(&body, t, per_post ? per_post : 1, per_post ? spans : 5000, part, salt);
            if (bench_http_post_as(&h, "/v1/traces", "application/x-protobuf", (const char *)body.p,
                                   body.n, &status) < 0 ||
                status != 200 || h.body_len != 0) {
                fprintf(stderr, "track-bench worker: otlp-http: HTTP %d %s (%zu bytes back)\n",
                        status, status ? "" : h.err, h.body_len);
                goto out;
            }
        }
    int64_t t1 = bench_now_ns();
    printf("%lld %lld %lld %lld\n", (long long)t0, (long long)t1,
           (long long)(traces * (per_post ? spans : parts * 5000)), (long long)(cpu_ns() - c0));
    fflush(stdout);
    while (read(0, &go, 1) > 0)
        ;
    rc = 0;
out:
    free(body.p);
    bench_http_close(&h);
    return rc;
}

int bench_b16_worker(int argc, char **argv)
{
    /* otlp-http ADDR:PORT TRACES [SPANS PER_POST] */
    if (strcmp(argv[2], "otlp-http") != 0 || (argc != 5 && argc != 7))
        return -1;
    char *end;
    long long n = strtoll(argv[4], &end, 10);
    long long spans = argc == 7 ? strtoll(argv[5], NULL, 10) : B16_SPANS_PER_TRACE;
    long long per = argc == 7 ? strtoll(argv[6], NULL, 10) : B16_TRACES_PER_POST;
    if (*end || n < 1 || spans < 1 || spans > 1000000 || per < 0 || (per && n % per)) {
        fprintf(stderr, "track-bench worker: otlp-http ADDR TRACES [SPANS PER_POST]: TRACES a "
                        "multiple of PER_POST (0: one trace in parts)\n");
        return 2;
    }
    /* B16's shape (no SPANS PER_POST given) takes new trace ids each run;
     * B17's keeps them known (it shows the first trace by its id) */
    return mode_otlp_http(argv[3], n, (int)spans, (int)per, argc == 5);
}

/* ---- the orchestrator ---------------------------------------------------------------- */
void bench_b16(void)
{
    struct bench_daemon d;
    double sp[MAX_REPS], pt[MAX_REPS], sc[MAX_REPS], pc[MAX_REPS];
    int64_t traces = cfg.smoke ? 50 : 20000, points = cfg.smoke ? 10000 : 2000000;
    char hp[64], tn[32], pn[32];
    int reps = cfg.reps;

    if (bench_start_http_daemon("b16", &d, hp, sizeof(hp)) < 0) {
        fail_section("B16", "trackd with --http did not start");
        return;
    }
    snprintf(tn, sizeof(tn), "%lld", (long long)traces);
    snprintf(pn, sizeof(pn), "%lld", (long long)points);
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            int otlp = (k + r) % 2;
            struct bench_rate m;
            int rc = otlp ? bench_worker_rate(&d, "otlp-http", hp, tn, NULL, NULL,
                                              traces * B16_SPANS_PER_TRACE, &m)
                          : bench_worker_rate(&d, "log", d.uri, pn, "1000", NULL, points, &m);
            if (rc < 0) {
                fail_section("B16", "a worker failed (see workers.log)");
                goto out;
            }
            (otlp ? sp : pt)[r] = m.rate;
            (otlp ? sc : pc)[r] = m.daemon_ns;
        }
        note("  B16 rep %d: OTLP %.0f spans/s (trackd %.0f CPU ns a span), metrics %.0f pts/s "
             "(trackd %.0f CPU ns a point)",
             r + 1, sp[r], sc[r], pt[r], pc[r]);
    }
    double a = bench_median(sp, reps), b = bench_median(pt, reps);
    struct row *row = row_add(
        "B16", "OTLP protobuf ingest, 100-span traces, 5 a request, vs metric log-batch points",
        ">= 100 k spans/s");
    fmt_rate(row->fig, sizeof(row->fig), a, "spans");
    fmt_rate(row->base, sizeof(row->base), b, "pts");
    snprintf(row->ratio, sizeof(row->ratio), "%.3f", a / b);
    row->met = yes_no(a >= 100000);
out:
    bench_daemon_stop(&d);
    if (!cfg.keep)
        bench_rm_rf(d.dir);
}

/* ---- B17: reading traces at scale ------------------------------------------------------ */
void bench_b17(void)
{
    struct bench_daemon d;
    int64_t traces = cfg.smoke ? 200 : 100000, big = cfg.smoke ? 5000 : 50000;
    char hp[64], tn[32], bn[32];
    struct bench_rate m;

    if (bench_start_http_daemon("b17", &d, hp, sizeof(hp)) < 0) {
        fail_section("B17", "trackd with --http did not start");
        return;
    }
    snprintf(tn, sizeof(tn), "%lld", (long long)traces);
    snprintf(bn, sizeof(bn), "%lld", (long long)big);
    /* 10^5 small traces (a root and one LLM call), 100 a request; then one of 50,000 spans */
    if (bench_worker_rate(&d, "otlp-http", hp, tn, "2", "100", traces * 2, &m) < 0 ||
        bench_worker_rate(&d, "otlp-http", hp, "1", bn, "0", ((big + 4999) / 5000) * 5000, &m) <
            0) {
        fail_section("B17", "loading the traces failed (see workers.log)");
        goto out;
    }
    note("  B17 loaded %lld traces and one of %lld spans", (long long)traces, (long long)big);
    /* the big trace's id: the worker's first trace, 0xb1 then zeros then 1 */
    char *show[] = {cfg.track,
                    (char *)(uintptr_t) "--server",
                    d.uri,
                    (char *)(uintptr_t) "trace",
                    (char *)(uintptr_t) "show",
                    (char *)(uintptr_t) "b1000000000000000000000000000001",
                    NULL};
    char *filt[] = {cfg.track,
                    (char *)(uintptr_t) "--server",
                    d.uri,
                    (char *)(uintptr_t) "traces",
                    (char *)(uintptr_t) "--filter",
                    (char *)(uintptr_t) "tokens.total > 1000",
                    NULL};
    double a = cli_median_ms(show), b = cli_median_ms(filt);
    if (a < 0 || b < 0) {
        fail_section("B17", "track trace show or track traces failed");
        goto out;
    }
    char what[120];
    snprintf(what, sizeof(what), "`track trace show` of a %lld-span trace", (long long)big + 1);
    struct row *row = row_add("B17a", what, "<= 200 ms");
    snprintf(row->fig, sizeof(row->fig), "%.1f ms", a);
    row->met = yes_no(a <= 200);
    snprintf(what, sizeof(what), "`track traces --filter \"tokens.total > 1000\"` over %.0e traces",
             (double)traces);
    row = row_add("B17b", what, "<= 200 ms");
    snprintf(row->fig, sizeof(row->fig), "%.1f ms", b);
    row->met = yes_no(b <= 200);
out:
    bench_daemon_stop(&d);
    if (!cfg.keep)
        bench_rm_rf(d.dir);
}
