/*
 * worker.c: the client side of the benchmarks, run as separate processes
 * (`track-bench --worker MODE ARGS...`) so that every nanomsg socket lives in
 * a process that never forks. Each mode prints its measurements as one line
 * of numbers on stdout; the orchestrator (bench.c) turns them into rows.
 *
 *   log URI N FLUSH          B1, B2, B10: start a run, print "ready", wait for
 *                            one byte on stdin, then log points 0..N-1
 *                            (bench_point: two keys, increasing steps, time
 *                            0 = now) with track_log_metric, opts.flush_points
 *                            = FLUSH, then track_flush. Prints "T0 T1 N CPU":
 *                            monotonic ns before the first call and after the
 *                            last flush returned, i.e. after trackd committed
 *                            and acknowledged the last point, and the CPU ns
 *                            this process spent in between.
 *   settag URI N             B3: N synchronous track_set_tag calls (same key,
 *                            a same-length value each time) after 100 warm-up
 *                            calls. Prints "NS N".
 *   echo-server URI          B3 baseline: a cooked nanomsg REP socket that
 *                            sends every frame straight back (zero copy).
 *   echo-client URI N SIZE   B3 baseline: N REQ round trips of SIZE-byte
 *                            frames after 100 warm-up ones. Prints "NS N".
 *   history URI N REPS PAGE  B7: log N points of one key (large batches), then
 *                            REPS times read them all back with
 *                            track_metric_history(max_points PAGE; 0 is the
 *                            server's limit), paging on next_seq. Prints
 *                            "MEDIAN_NS POINTS PAGES", or "refused MESSAGE"
 *                            when trackd answers RESOURCE_EXHAUSTED.
 *   pop-compare URI R K N F  B5 set-up: R runs, each K metrics x N points,
 *                            logged with opts.flush_points F. Prints each
 *                            run's id, then "done".
 *   pop-runs URI R           B6 set-up: R runs with three params and two
 *                            metrics each. Prints "done NS".
 *   run-start URI            B4 set-up: starts a run, prints its id.
 *   mix-http, mix-nn, ingest-http   B11 and B15: b11_worker.c.
 *
 * Clients use no spool (a failure must show, not hide in a spool file) and
 * a long timeout, so a slow moment on a shared machine is not an error.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <nanomsg/nn.h>
#include <time.h>
#include <nanomsg/reqrep.h>
#include <unistd.h>

#include "track.h"
#include "wire.h"

#define WORKER_TIMEOUT_MS 120000

static int wfail(const char *what, const struct track_err *err)
{
    fprintf(stderr, "track-bench worker: %s: %s: %s\n", what, err ? track_code_name(err->code) : "",
            err ? err->msg : "");
    return 1;
}

static int64_t arg_i64(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (*end || v < 0) {
        fprintf(stderr, "track-bench worker: bad number \"%s\"\n", s);
        exit(2);
    }
    return v;
}

/* CPU time of this process, all threads (nanomsg's included). */
static int64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int client_open(const char *uri, int flush, struct track_client **c)
{
    struct track_opts o = {
        .server = uri, .timeout_ms = WORKER_TIMEOUT_MS, .flush_points = flush, .no_spool = 1};
    struct track_err err = {0};

    if (track_client_open(&o, c, &err))
        return wfail("open", &err);
    return 0;
}

static int start_run(struct track_client *c, const char *name, const struct track_kv *params,
                     size_t n_params, char hex[33])
{
    struct track_run_opts ro = {
        .experiment = "bench", .name = name, .params = params, .n_params = n_params};
    struct track_err err = {0};
    track_run_id id;

    if (track_run_start(c, &ro, &id, &err) || err.code == TRACK_E_SPOOLED)
        return wfail("run start", &err);
    if (hex)
        track_run_id_hex(&id, hex);
    return 0;
}

static int flush_all(struct track_client *c)
{
    struct track_err err = {0};

    if (track_flush(c, &err) || err.code == TRACK_E_SPOOLED)
        return wfail("flush", &err);
    return 0;
}

static int mode_log(const char *uri, int64_t n, int flush)
{
    struct track_client *c;
    struct track_err err = {0};
    char go;

    if (client_open(uri, flush, &c) || start_run(c, "ingest", NULL, 0, NULL))
        return 1;
    printf("ready\n");
    fflush(stdout);
    if (read(0, &go, 1) != 1)
        return 1;
    int64_t c0 = cpu_ns(), t0 = bench_now_ns();
    for (int64_t i = 0; i < n; i++) {
        const char *key;
        int64_t step;
        double v;
        bench_point(i, &key, &step, &v);
        if (track_log_metric(c, key, v, step, 0, &err) || err.code == TRACK_E_SPOOLED)
            return wfail("log metric", &err);
    }
    if (flush_all(c))
        return 1;
    int64_t t1 = bench_now_ns();
    printf("%lld %lld %lld %lld\n", (long long)t0, (long long)t1, (long long)n,
           (long long)(cpu_ns() - c0));
    fflush(stdout);
    track_client_close(c);
    return 0;
}

static int mode_settag(const char *uri, int64_t n)
{
    struct track_client *c;
    struct track_err err = {0};
    char val[32];
    int64_t t0 = 0;

    if (client_open(uri, 0, &c) || start_run(c, "settag", NULL, 0, NULL))
        return 1;
    for (int64_t i = -100; i < n; i++) {
        if (i == 0)
            t0 = bench_now_ns();
        snprintf(val, sizeof(val), BENCH_TAG_VALUE, (int)((i + 100) % 1000000));
        if (track_set_tag(c, BENCH_TAG_KEY, val, &err) || err.code == TRACK_E_SPOOLED)
            return wfail("set tag", &err);
    }
    printf("%lld %lld\n", (long long)(bench_now_ns() - t0), (long long)n);
    track_client_close(c);
    return 0;
}

static int nn_fail(const char *what)
{
    fprintf(stderr, "track-bench worker: %s: %s\n", what, nn_strerror(nn_errno()));
    return 1;
}

static int mode_echo_server(const char *uri)
{
    int s = nn_socket(AF_SP, NN_REP);

    if (s < 0 || nn_bind(s, uri) < 0)
        return nn_fail("echo server");
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        void *msg = NULL;
        int n = nn_recv(s, &msg, NN_MSG, 0);
        if (n < 0) {
            if (nn_errno() == EINTR)
                continue;
            return nn_fail("echo recv");
        }
        if (nn_send(s, &msg, NN_MSG, 0) < 0) {
            nn_freemsg(msg);
            return nn_fail("echo send");
        }
    }
}

static int mode_echo_client(const char *uri, int64_t n, size_t size)
{
    int s = nn_socket(AF_SP, NN_REQ), timeout = WORKER_TIMEOUT_MS;
    uint8_t *frame = calloc(1, size ? size : 1);
    int64_t t0 = 0;

    if (!frame)
        return 1;
    if (s < 0 || nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout, sizeof(timeout)) < 0 ||
        nn_connect(s, uri) < 0)
        return nn_fail("echo client");
    for (size_t i = 0; i < size; i++)
        frame[i] = (uint8_t)i;
    for (int64_t i = -100; i < n; i++) {
        void *reply = NULL;
        if (i == 0)
            t0 = bench_now_ns();
        if (nn_send(s, frame, size, 0) < 0)
            return nn_fail("echo send");
        int got = nn_recv(s, &reply, NN_MSG, 0);
        if (got < 0)
            return nn_fail("echo recv");
        if ((size_t)got != size)
            fprintf(stderr, "track-bench worker: echo: %d bytes back, not %zu\n", got, size);
        nn_freemsg(reply);
    }
    printf("%lld %lld\n", (long long)(bench_now_ns() - t0), (long long)n);
    nn_close(s);
    free(frame);
    return 0;
}

static int mode_history(const char *uri, int64_t n, int reps, int64_t page)
{
    struct track_client *c;
    struct track_err err = {0};
    char hex[33];
    double t[64];
    int64_t total = 0, pages = 0;

    if (reps < 1 || reps > 64)
        reps = 3;
    if (client_open(uri, 262144, &c) || start_run(c, "history", NULL, 0, hex))
        return 1;
    for (int64_t i = 0; i < n; i++) {
        const char *key;
        int64_t step;
        double v;
        bench_point(2 * i, &key, &step, &v);
        if (track_log_metric(c, BENCH_KEY_A, v, i, 0, &err) || err.code == TRACK_E_SPOOLED)
            return wfail("log metric", &err);
    }
    if (flush_all(c))
        return 1;
    for (int r = 0; r < reps; r++) {
        int64_t after = 0, t0 = bench_now_ns();
        double check = 0;
        int more = 1;
        total = pages = 0;
        while (more) {
            struct track_result *res = NULL;
            const int64_t *steps, *times;
            const double *values;
            size_t got;
            if (track_metric_history(c, hex, BENCH_KEY_A, after, page, &res, &steps, &times,
                                     &values, &got, &after, &more, &err)) {
                /* trackd refusing the read is a finding, not a broken bench */
                if (err.code == TRACK_E_RESOURCE_EXHAUSTED) {
                    printf("refused %s\n", err.msg);
                    return 0;
                }
                return wfail("metric history", &err);
            }
            /* touch what came back, as a reader would */
            for (size_t k = 0; k < got; k++)
                check += values[k] + (double)steps[k];
            total += (int64_t)got;
            pages++;
            track_result_free(res);
            if (!got && more)
                return wfail("metric history: empty page", NULL);
        }
        t[r] = (double)(bench_now_ns() - t0);
        if (total != n || check == 0) {
            fprintf(stderr, "track-bench worker: history: read %lld points of %lld\n",
                    (long long)total, (long long)n);
            return 1;
        }
    }
    printf("%.0f %lld %lld\n", bench_median(t, reps), (long long)total, (long long)pages);
    track_client_close(c);
    return 0;
}

static int mode_pop_compare(const char *uri, int64_t runs, int64_t keys, int64_t n, int flush)
{
    static const char *const names[] = {"loss",      "val_loss", "accuracy", "lr",
                                        "grad_norm", "val_acc",  "f1",       "throughput"};
    struct track_client *c;
    struct track_err err = {0};
    char hex[33], name[64], lr[32], seed[32];

    if (keys > 8)
        keys = 8;
    if (client_open(uri, flush, &c))
        return 1;
    for (int64_t r = 0; r < runs; r++) {
        snprintf(name, sizeof(name), "compare-%lld", (long long)r);
        snprintf(lr, sizeof(lr), "%g", 0.001 * (double)(r + 1));
        snprintf(seed, sizeof(seed), "%lld", (long long)r);
        struct track_kv params[] = {
            {"lr", lr}, {"optimizer", r % 2 ? "sgd" : "adam"}, {"seed", seed}, {"batch", "64"}};
        if (start_run(c, name, params, 4, hex))
            return 1;
        for (int64_t i = 0; i < n; i++) {
            for (int64_t k = 0; k < keys; k++) {
                double v = exp(-(double)i * 1e-4 * (double)(r + 1)) +
                           0.05 * bench_noise((uint64_t)(i * 8 + k + r * 1000003));
                if (track_log_metric(c, names[k], v, i, 0, &err) || err.code == TRACK_E_SPOOLED)
                    return wfail("log metric", &err);
            }
        }
        if (flush_all(c))
            return 1;
        if (track_run_end(c, TRACK_FINISHED, &err))
            return wfail("run end", &err);
        printf("%s\n", hex);
    }
    printf("done\n");
    track_client_close(c);
    return 0;
}

static int mode_pop_runs(const char *uri, int64_t runs)
{
    static const char *const opt[] = {"adam", "sgd", "rmsprop"};
    struct track_client *c;
    struct track_err err = {0};
    char name[64], lr[32], bs[32];
    int64_t t0 = bench_now_ns();

    if (client_open(uri, 262144, &c))
        return 1;
    for (int64_t r = 0; r < runs; r++) {
        snprintf(name, sizeof(name), "sweep-%lld", (long long)r);
        snprintf(lr, sizeof(lr), "%.6f", 0.0001 + 0.1 * bench_noise((uint64_t)r));
        snprintf(bs, sizeof(bs), "%d", 16 << (r % 4));
        struct track_kv params[] = {{"lr", lr}, {"optimizer", opt[r % 3]}, {"batch_size", bs}};
        if (start_run(c, name, params, 3, NULL))
            return 1;
        double loss = 0.1 + bench_noise((uint64_t)r * 7 + 1);
        if (track_log_metric(c, "loss", loss, 100, 0, &err) ||
            track_log_metric(c, "accuracy", 1.0 - loss / 2, 100, 0, &err))
            return wfail("log metric", &err);
        /* the next run start flushes these */
    }
    if (flush_all(c))
        return 1;
    printf("done %lld\n", (long long)(bench_now_ns() - t0));
    track_client_close(c);
    return 0;
}

static int mode_run_start(const char *uri)
{
    struct track_client *c;
    char hex[33];

    if (client_open(uri, 0, &c) || start_run(c, "cli", NULL, 0, hex))
        return 1;
    printf("%s\n", hex);
    track_client_close(c);
    return 0;
}

size_t bench_settag_frame_size(void)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__LogBatch lb = TRACK__V1__LOG_BATCH__INIT;
    Track__V1__KeyValue kv = TRACK__V1__KEY_VALUE__INIT, *kvp = &kv;
    uint8_t rid[16] = {0};
    char val[32];

    /* what libtrack's track_set_tag packs (client/lib/client.c send_kvs) */
    snprintf(val, sizeof(val), BENCH_TAG_VALUE, 0);
    kv.key = wire_str(BENCH_TAG_KEY);
    kv.value = val;
    lb.run = wire_str("0123456789abcdef0123456789abcdef");
    lb.tags = &kvp;
    lb.n_tags = 1;
    rq.request_id.data = rid;
    rq.request_id.len = sizeof(rid);
    rq.op_case = TRACK__V1__REQUEST__OP_LOG_BATCH;
    rq.log_batch = &lb;
    return track__v1__request__get_packed_size(&rq);
}

int bench_worker_main(int argc, char **argv)
{
    /* argv: track-bench --worker MODE ARGS... */
    if (argc < 4)
        goto usage;
    const char *mode = argv[2], *uri = argv[3];
    if (strcmp(mode, "log") == 0 && argc == 6)
        return mode_log(uri, arg_i64(argv[4]), (int)arg_i64(argv[5]));
    if (strcmp(mode, "settag") == 0 && argc == 5)
        return mode_settag(uri, arg_i64(argv[4]));
    if (strcmp(mode, "echo-server") == 0 && argc == 4)
        return mode_echo_server(uri);
    if (strcmp(mode, "echo-client") == 0 && argc == 6)
        return mode_echo_client(uri, arg_i64(argv[4]), (size_t)arg_i64(argv[5]));
    if (strcmp(mode, "history") == 0 && argc == 7)
        return mode_history(uri, arg_i64(argv[4]), (int)arg_i64(argv[5]), arg_i64(argv[6]));
    if (strcmp(mode, "pop-compare") == 0 && argc == 8)
        return mode_pop_compare(uri, arg_i64(argv[4]), arg_i64(argv[5]), arg_i64(argv[6]),
                                (int)arg_i64(argv[7]));
    if (strcmp(mode, "pop-runs") == 0 && argc == 5)
        return mode_pop_runs(uri, arg_i64(argv[4]));
    if (strcmp(mode, "run-start") == 0 && argc == 4)
        return mode_run_start(uri);
    int rc = bench_b11_worker(argc, argv); /* B11 and B15's modes (b11_worker.c) */
    if (rc >= 0)
        return rc;
    if ((rc = bench_b16_worker(argc, argv)) >= 0) /* B16's (b16.c) */
        return rc;
usage:
    fprintf(stderr, "track-bench: --worker MODE URI ARGS... (see bench/worker.c)\n");
    return 2;
}
