/*
 * b11_worker.c: the worker modes of B11 and B15 (b11.c), each a separate
 * process (bench.h: only workers talk to trackd). The same operations two
 * ways: through trackd's MLflow HTTP front with httpc.c, and through
 * libtrack over nanomsg.
 *
 *   mix-http ADDR:PORT EXP_ID ITERS OUT   B11 through HTTP: runs/create a run
 *   mix-nn   URI EXP_NAME ITERS OUT       B11 through libtrack
 *       then one untimed warm-up iteration, print "ready", wait for one byte
 *       on stdin, then ITERS iterations of: B11_LOGS_PER_ITER log-batches of
 *       B11_BATCH metrics (keys m0..m9 at one step), one run created (later
 *       batches go to it), one search of the experiment (max_results
 *       B11_SEARCH_MAX, no filter, the default order). Each operation is timed
 *       alone; the file OUT gets one line "OP NS" per operation (bench.h's
 *       B11_OP_*). Prints "T0 T1 CONNECTS CPU": monotonic ns around the
 *       iterations, TCP connections made (HTTP; 1 means keep-alive held) and
 *       this process's CPU ns; an HTTP worker then keeps its connection
 *       until its stdin closes (so trackd's CPU can be read per thread).
 *       libtrack's log-batch is B11_BATCH track_log_metric calls and a
 *       track_flush (one LogBatch round trip, as the HTTP one is); its run is
 *       track_run_start, its search track_run_list with details (the HTTP
 *       route asks the same: params, tags, metric summaries).
 *   ingest-http ADDR:PORT EXP_ID N BATCH  B15: runs/create a run, print "ready",
 *       wait for one byte, then log points 0..N-1 (bench_point, B1's) in
 *       log-batch requests of BATCH metrics, one after another. Prints "T0 T1 N
 *       CPU" as worker.c's `log` mode does, which is B15's libtrack side
 *       (flush_points BATCH).
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "track.h"

#define WORKER_TIMEOUT_MS 120000
#define MIX_BODY_CAP      4096

static int64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t num(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (*end || v < 0) {
        fprintf(stderr, "track-bench worker: bad number \"%s\"\n", s);
        exit(2);
    }
    return v;
}

static int hfail(const char *what, const struct bench_http *h, int status)
{
    if (status)
        fprintf(stderr, "track-bench worker: %s: HTTP %d: %.300s\n", what, status, h->body);
    else
        fprintf(stderr, "track-bench worker: %s: %s\n", what, h->err);
    return 1;
}

static int tfail(const char *what, const struct track_err *err)
{
    fprintf(stderr, "track-bench worker: %s: %s: %s\n", what, track_code_name(err->code), err->msg);
    return 1;
}

/* The value of metric k at step s: full precision, as B1's points are. */
static double mix_value(int64_t s, int k)
{
    return 1.0 / (1.0 + (double)s * 1e-3) + 0.05 * bench_noise((uint64_t)(s * 16 + k));
}

/* Latencies, by operation, written to OUT at the end. */
struct lat {
    int64_t *ns;
    unsigned char *op;
    size_t n, cap;
};

static int lat_add(struct lat *l, int op, int64_t ns)
{
    if (l->n == l->cap)
        return -1;
    l->op[l->n] = (unsigned char)op;
    l->ns[l->n++] = ns;
    return 0;
}

static int lat_write(const struct lat *l, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < l->n; i++)
        fprintf(f, "%d %lld\n", l->op[i], (long long)l->ns[i]);
    return fclose(f);
}

static int lat_init(struct lat *l, int64_t iters)
{
    l->cap = (size_t)iters * (B11_LOGS_PER_ITER + 2);
    l->n = 0;
    l->ns = malloc((l->cap ? l->cap : 1) * sizeof(*l->ns));
    l->op = malloc(l->cap ? l->cap : 1);
    return l->ns && l->op ? 0 : -1;
}

static int wait_go(void)
{
    char go;

    printf("ready\n");
    fflush(stdout);
    return read(0, &go, 1) == 1 ? 0 : -1;
}

/* After the figures: stay (connected) until the orchestrator closes our
 * stdin, so trackd's thread for this connection is still there when its
 * CPU time is read (per-thread schedstat forgets threads that exited). */
static void wait_eof(void)
{
    char c;

    while (read(0, &c, 1) > 0)
        ;
}

/* ---- through HTTP -------------------------------------------------------------------- */

/* POST and expect 200; -1 after saying why. */
static int post_ok(struct bench_http *h, const char *what, const char *path, const char *body,
                   size_t len)
{
    int status = 0;
    if (bench_http_post(h, path, body, len, &status) < 0 || status != 200) {
        hfail(what, h, status);
        return -1;
    }
    return 0;
}

static int http_create_run(struct bench_http *h, const char *exp, const char *name, char run[40])
{
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "{\"experiment_id\":\"%s\",\"start_time\":%lld,\"user_id\":\"bench\","
                     "\"run_name\":\"%s\"}",
                     exp, (long long)bench_wall_ms(), name);
    if (post_ok(h, "runs/create", "/api/2.0/mlflow/runs/create", body, (size_t)n) < 0)
        return -1;
    if (bench_http_json_str(h->body, "run_id", run, 40) < 0) {
        fprintf(stderr, "track-bench worker: runs/create: no run_id in %.200s\n", h->body);
        return -1;
    }
    return 0;
}

/* One iteration; latencies into l when l is not NULL. */
static int http_iter(struct bench_http *h, const char *exp, char run[40], int64_t it, int64_t *step,
                     struct lat *l)
{
    char body[MIX_BODY_CAP], name[64];
    int64_t t;

    for (int b = 0; b < B11_LOGS_PER_ITER; b++) {
        int64_t s = (*step)++, ms = bench_wall_ms();
        int n = snprintf(body, sizeof(body), "{\"run_id\":\"%s\",\"metrics\":[", run);
        for (int k = 0; k < B11_BATCH; k++)
            n += snprintf(body + n, sizeof(body) - (size_t)n,
                          "%s{\"key\":\"m%d\",\"value\":%.17g,\"timestamp\":%lld,\"step\":%lld}",
                          k ? "," : "", k, mix_value(s, k), (long long)ms, (long long)s);
        n += snprintf(body + n, sizeof(body) - (size_t)n, "]}");
        t = bench_now_ns();
        if (post_ok(h, "runs/log-batch", "/api/2.0/mlflow/runs/log-batch", body, (size_t)n) < 0)
            return -1;
        if (l)
            lat_add(l, B11_OP_LOG, bench_now_ns() - t);
    }
    snprintf(name, sizeof(name), "mix-%d-%lld", (int)getpid(), (long long)it);
    t = bench_now_ns();
    if (http_create_run(h, exp, name, run) < 0)
        return -1;
    if (l)
        lat_add(l, B11_OP_CREATE, bench_now_ns() - t);
    int n = snprintf(body, sizeof(body), "{\"experiment_ids\":[\"%s\"],\"max_results\":%d}", exp,
                     B11_SEARCH_MAX);
    t = bench_now_ns();
    if (post_ok(h, "runs/search", "/api/2.0/mlflow/runs/search", body, (size_t)n) < 0)
        return -1;
    if (l)
        lat_add(l, B11_OP_SEARCH, bench_now_ns() - t);
    if (!strstr(h->body, "\"runs\"")) {
        fprintf(stderr, "track-bench worker: runs/search found nothing: %.200s\n", h->body);
        return -1;
    }
    return 0;
}

static int mode_mix_http(const char *hp, const char *exp, int64_t iters, const char *out)
{
    struct bench_http h;
    struct lat l = {0};
    char run[40];
    int64_t step = 0;
    int rc = 1;

    if (bench_http_open(&h, hp) < 0) {
        hfail("connect", &h, 0);
        goto out;
    }
    if (lat_init(&l, iters) < 0 || http_create_run(&h, exp, "mix-first", run) < 0 ||
        http_iter(&h, exp, run, -1, &step, NULL) < 0 || wait_go() < 0)
        goto out;
    int64_t c0 = cpu_ns(), t0 = bench_now_ns();
    for (int64_t it = 0; it < iters; it++)
        if (http_iter(&h, exp, run, it, &step, &l) < 0)
            goto out;
    int64_t t1 = bench_now_ns();
    if (lat_write(&l, out) < 0)
        goto out;
    printf("%lld %lld %d %lld\n", (long long)t0, (long long)t1, h.connects,
           (long long)(cpu_ns() - c0));
    fflush(stdout);
    wait_eof();
    rc = 0;
out:
    bench_http_close(&h);
    free(l.ns);
    free(l.op);
    return rc;
}

static int mode_ingest_http(const char *hp, const char *exp, int64_t n, int64_t batch)
{
    struct bench_http h;
    char run[40], *body = NULL;
    size_t cap = (size_t)batch * 128 + 256;
    int rc = 1;

    if (batch < 1 || batch > 1000) {
        fprintf(stderr, "track-bench worker: ingest-http: batch of 1 to 1000 metrics\n");
        return 2;
    }
    if (bench_http_open(&h, hp) < 0) {
        hfail("connect", &h, 0);
        goto out;
    }
    if (!(body = malloc(cap)) || http_create_run(&h, exp, "ingest-http", run) < 0 || wait_go() < 0)
        goto out;
    int64_t c0 = cpu_ns(), t0 = bench_now_ns();
    for (int64_t i = 0; i < n;) {
        int64_t ms = bench_wall_ms();
        size_t len = (size_t)snprintf(body, cap, "{\"run_id\":\"%s\",\"metrics\":[", run);
        for (int64_t k = 0; k < batch && i < n; k++, i++) {
            const char *key;
            int64_t step;
            double v;
            bench_point(i, &key, &step, &v);
            len += (size_t)snprintf(body + len, cap - len,
                                    "%s{\"key\":\"%s\",\"value\":%.17g,\"timestamp\":%lld,"
                                    "\"step\":%lld}",
                                    k ? "," : "", key, v, (long long)ms, (long long)step);
        }
        len += (size_t)snprintf(body + len, cap - len, "]}");
        if (post_ok(&h, "runs/log-batch", "/api/2.0/mlflow/runs/log-batch", body, len) < 0)
            goto out;
    }
    int64_t t1 = bench_now_ns();
    printf("%lld %lld %lld %lld\n", (long long)t0, (long long)t1, (long long)n,
           (long long)(cpu_ns() - c0));
    fflush(stdout);
    if (h.connects != 1)
        fprintf(stderr, "track-bench worker: ingest-http: %d connections for one client\n",
                h.connects);
    wait_eof();
    rc = 0;
out:
    free(body);
    bench_http_close(&h);
    return rc;
}

/* ---- through libtrack ------------------------------------------------------------------ */

static int nn_start(struct track_client *c, const char *exp, const char *name)
{
    struct track_run_opts ro = {.experiment = exp, .name = name};
    struct track_err err = {0};
    track_run_id id;

    if (track_run_start(c, &ro, &id, &err) || err.code == TRACK_E_SPOOLED)
        return tfail("run start", &err);
    return 0;
}

static int nn_iter(struct track_client *c, const char *exp, int64_t it, int64_t *step,
                   struct lat *l)
{
    static const char *const keys[B11_BATCH] = {"m0", "m1", "m2", "m3", "m4",
                                                "m5", "m6", "m7", "m8", "m9"};
    struct track_err err = {0};
    char name[64];
    int64_t t;

    for (int b = 0; b < B11_LOGS_PER_ITER; b++) {
        int64_t s = (*step)++, ms = bench_wall_ms();
        t = bench_now_ns();
        for (int k = 0; k < B11_BATCH; k++)
            if (track_log_metric(c, keys[k], mix_value(s, k), s, ms, &err))
                return tfail("log metric", &err);
        if (track_flush(c, &err) || err.code == TRACK_E_SPOOLED)
            return tfail("flush", &err);
        if (l)
            lat_add(l, B11_OP_LOG, bench_now_ns() - t);
    }
    snprintf(name, sizeof(name), "mix-%d-%lld", (int)getpid(), (long long)it);
    t = bench_now_ns();
    if (nn_start(c, exp, name))
        return 1;
    if (l)
        lat_add(l, B11_OP_CREATE, bench_now_ns() - t);
    const char *exps[] = {exp, NULL};
    struct track_run_query q = {.experiments = exps, .limit = B11_SEARCH_MAX, .with_details = 1};
    struct track_result *res = NULL;
    struct track_run_info *runs;
    size_t n = 0;
    t = bench_now_ns();
    if (track_run_list(c, &q, &res, &runs, &n, &err))
        return tfail("run list", &err);
    if (l)
        lat_add(l, B11_OP_SEARCH, bench_now_ns() - t);
    track_result_free(res);
    if (!n) {
        fprintf(stderr, "track-bench worker: run list found nothing\n");
        return 1;
    }
    return 0;
}

static int mode_mix_nn(const char *uri, const char *exp, int64_t iters, const char *out)
{
    /* no flush but ours: by size or by age, a flush would land in a later
     * sample than the batch it belongs to */
    struct track_opts o = {.server = uri,
                           .timeout_ms = WORKER_TIMEOUT_MS,
                           .flush_points = 1 << 20,
                           .flush_interval_ms = 1 << 30,
                           .no_spool = 1};
    struct track_client *c = NULL;
    struct track_err err = {0};
    struct lat l = {0};
    int64_t step = 0;
    int rc = 1;

    if (track_client_open(&o, &c, &err)) {
        tfail("open", &err);
        return 1;
    }
    if (lat_init(&l, iters) < 0 || nn_start(c, exp, "mix-first") ||
        nn_iter(c, exp, -1, &step, NULL) || wait_go() < 0)
        goto out;
    int64_t c0 = cpu_ns(), t0 = bench_now_ns();
    for (int64_t it = 0; it < iters; it++)
        if (nn_iter(c, exp, it, &step, &l))
            goto out;
    int64_t t1 = bench_now_ns();
    if (lat_write(&l, out) < 0)
        goto out;
    printf("%lld %lld 1 %lld\n", (long long)t0, (long long)t1, (long long)(cpu_ns() - c0));
    fflush(stdout);
    rc = 0;
out:
    track_client_close(c);
    free(l.ns);
    free(l.op);
    return rc;
}

int bench_b11_worker(int argc, char **argv)
{
    /* argv: track-bench --worker MODE ARGS... */
    const char *mode = argv[2];
    if (strcmp(mode, "mix-http") == 0 && argc == 7)
        return mode_mix_http(argv[3], argv[4], num(argv[5]), argv[6]);
    if (strcmp(mode, "mix-nn") == 0 && argc == 7)
        return mode_mix_nn(argv[3], argv[4], num(argv[5]), argv[6]);
    if (strcmp(mode, "ingest-http") == 0 && argc == 7)
        return mode_ingest_http(argv[3], argv[4], num(argv[5]), num(argv[6]));
    return -1;
}
