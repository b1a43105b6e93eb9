/*
 * b11.c: B11 and B15 of track-bench, trackd's MLflow HTTP front (`--http`)
 * against libtrack over nanomsg, both on one trackd in one run, alternating
 * per repetition (which goes first alternates too):
 *
 *   B11  the mixed load of mlflow-go's published benchmark: cfg.b11_clients
 *        (20) client processes at once, each doing cfg.b11_iters iterations
 *        of 8 log-batches of 10 metrics, 1 run created and 1 search of the
 *        experiment (max_results 10), every operation timed alone
 *        (b11_worker.c). p50 and p99 of each operation over all clients'
 *        samples, the HTTP figure against the nanomsg one; the ratio column
 *        is HTTP / nanomsg (lower is better). The goal is a p50 of at most
 *        1 ms for log-batch through HTTP (published for PostgreSQL: MLflow
 *        58 ms, mlflow-go 18 ms). B11g is the load's aggregate operations
 *        per second. Each path has its own experiment (b11-http, b11-nn),
 *        so both search as many runs at the same repetition.
 *   B15  one client logging B1's points (bench_point) in log-batch requests
 *        of 1000 metrics through HTTP (MLflow's most a request), points/s,
 *        against libtrack with flush_points 1000 (worker.c's `log` mode: one
 *        LogBatch of 1000 points a round trip); goal >= 0.5. B15b is the same
 *        per CPU second of client and trackd, which other load on a shared
 *        machine disturbs far less.
 *
 * Both paths end in the same loop and group commit (daemon/http.h: the
 * front sends track's own Requests in-process), so the gap is the front's:
 * HTTP parsing, JSON both ways, a thread per connection and the in-process
 * hop. A line per repetition gives trackd's CPU per operation on each path
 * (schedstat of its threads; the HTTP workers keep their connections, and
 * so the front's thread for each, until the CPU time has been read).
 * The orchestrator speaks HTTP itself (httpc.c, plain sockets) only to make
 * the experiments; every client is a worker process.
 */
#include "bench.h"
#include "orch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B11_MAX_CLIENTS 64
#define B15_BATCH       "1000"

static const char *const op_name[B11_N_OPS] = {"log-batch of 10", "create run",
                                               "search runs (max 10)"};

/* ---- a trackd with the HTTP front ----------------------------------------------------- */

/* `trackd ... --http 127.0.0.1:PORT` on a fresh directory, up on both
 * listeners; hp gets ADDR:PORT. */
int bench_start_http_daemon(const char *name, struct bench_daemon *d, char *hp, size_t cap)
{
    int port = bench_free_port();
    if (port < 0)
        return -1;
    snprintf(hp, cap, "127.0.0.1:%d", port);
    const char *extra[] = {"--http", hp, NULL};
    if (bench_daemon_start_ex(d, cfg.trackd, cfg.root, name, extra, 0) < 0)
        return -1;
    /* the front listens once the loop runs, just after the ipc listener */
    for (int i = 0; i < 200; i++) {
        struct bench_http h;
        int ok = bench_http_open(&h, hp) == 0;
        bench_http_close(&h);
        if (ok)
            return 0;
        bench_sleep_ms(50);
    }
    bench_daemon_stop(d);
    return -1;
}

/* experiments/create through the front; id gets MLflow's experiment id. */
static int http_experiment(const char *hp, const char *name, char *id, size_t cap)
{
    struct bench_http h;
    char body[300];
    int status = 0, n = snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    int rc = bench_http_open(&h, hp);

    if (rc == 0)
        rc = bench_http_post(&h, "/api/2.0/mlflow/experiments/create", body, (size_t)n, &status);
    if (rc == 0 && (status != 200 || bench_http_json_str(h.body, "experiment_id", id, cap) < 0))
        rc = -1;
    if (rc < 0)
        note("  experiments/create %s: %s", name, status ? h.body : h.err);
    bench_http_close(&h);
    return rc;
}

/* ---- B11 --------------------------------------------------------------------------------- */

struct mix {
    double p50[B11_N_OPS], p99[B11_N_OPS]; /* ms */
    double ops_s;                          /* all clients' operations / (last end - first start) */
    double cpu_us;                         /* trackd's CPU per operation */
    int connects;                          /* TCP connections the clients made */
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least q of them at or below. */
static double pct_ms(const int64_t *v, size_t n, double q)
{
    size_t k = (size_t)ceil(q * (double)n);
    return n ? (double)v[k ? k - 1 : 0] / 1e6 : 0;
}

/* Every client's latency file into per-operation arrays, then p50 and p99. */
static int mix_stats(char (*path)[700], int clients, struct mix *m)
{
    size_t cap = (size_t)clients * (size_t)cfg.b11_iters * B11_LOGS_PER_ITER, n[B11_N_OPS] = {0};
    int64_t *v[B11_N_OPS];
    int rc = -1;

    for (int o = 0; o < B11_N_OPS; o++)
        v[o] = malloc((cap ? cap : 1) * sizeof(int64_t));
    for (int o = 0; o < B11_N_OPS; o++)
        if (!v[o])
            goto out;
    for (int i = 0; i < clients; i++) {
        FILE *f = fopen(path[i], "r");
        int op;
        long long ns;
        if (!f)
            goto out;
        while (fscanf(f, "%d %lld", &op, &ns) == 2)
            if (op >= 0 && op < B11_N_OPS && n[op] < cap)
                v[op][n[op]++] = ns;
        fclose(f);
        if (!cfg.keep)
            remove(path[i]);
    }
    for (int o = 0; o < B11_N_OPS; o++) {
        if (!n[o])
            goto out;
        qsort(v[o], n[o], sizeof(int64_t), cmp_i64);
        m->p50[o] = pct_ms(v[o], n[o], 0.50);
        m->p99[o] = pct_ms(v[o], n[o], 0.99);
    }
    rc = 0;
out:
    for (int o = 0; o < B11_N_OPS; o++)
        free(v[o]);
    return rc;
}

/* One phase: cfg.b11_clients workers of `mode` at once against target. */
static int mix_phase(struct bench_daemon *d, const char *mode, const char *target, const char *exp,
                     int rep, struct mix *m)
{
    static char path[B11_MAX_CLIENTS][700];
    struct bench_proc p[B11_MAX_CLIENTS];
    char iters[32], line[256];
    int n = cfg.b11_clients, ok = 1, started = 0;
    int64_t t0 = INT64_MAX, t1 = 0, cpu0, cpu1;

    snprintf(iters, sizeof(iters), "%lld", (long long)cfg.b11_iters);
    for (int i = 0; i < n && ok; i++) {
        snprintf(path[i], sizeof(path[i]), "%s/b11-%s-%d-%d.lat", cfg.root, mode, rep, i);
        ok = worker_spawn4(&p[i], mode, target, exp, iters, path[i], NULL) == 0;
        started += ok;
    }
    for (int i = 0; i < started && ok; i++)
        ok = bench_read_line(&p[i], line, sizeof(line), 120000) >= 0 && strcmp(line, "ready") == 0;
    cpu0 = bench_proc_cpu_ns(d->proc.pid);
    for (int i = 0; i < started && ok; i++)
        ok = bench_poke(&p[i]) == 0;
    m->connects = 0;
    for (int i = 0; i < started && ok; i++) {
        long long a, b, c, cpu;
        ok = bench_read_line(&p[i], line, sizeof(line), 1800 * 1000) > 0 &&
             sscanf(line, "%lld %lld %lld %lld", &a, &b, &c, &cpu) == 4;
        if (ok) {
            t0 = a < t0 ? a : t0;
            t1 = b > t1 ? b : t1;
            m->connects += (int)c;
        }
    }
    cpu1 = bench_proc_cpu_ns(d->proc.pid);
    for (int i = 0; i < started; i++) {
        if (!ok)
            bench_kill(&p[i]);
        else if (bench_wait(&p[i]) != 0)
            ok = 0;
    }
    if (!ok || mix_stats(path, n, m) < 0)
        return -1;
    double ops = (double)n * (double)cfg.b11_iters * (B11_LOGS_PER_ITER + 2);
    m->ops_s = ops * 1e9 / (double)(t1 - t0);
    m->cpu_us = (double)(cpu1 - cpu0) / 1e3 / ops;
    return 0;
}

static void ms_text(char *buf, size_t cap, double ms)
{
    snprintf(buf, cap, ms < 10 ? "%.3f ms" : "%.1f ms", ms);
}

static void lat_row(const char *id, int op, const char *q, double h, double nn, int goal)
{
    char what[80];
    snprintf(what, sizeof(what), "%s, %s, HTTP vs nanomsg (%d clients, mixed)", op_name[op], q,
             cfg.b11_clients);
    struct row *r = row_add(id, what, goal ? "HTTP <= 1 ms" : "-");
    ms_text(r->fig, sizeof(r->fig), h);
    ms_text(r->base, sizeof(r->base), nn);
    snprintf(r->ratio, sizeof(r->ratio), "%.2f", h / nn);
    r->met = goal ? yes_no(h <= 1.0) : "-";
}

void bench_b11(void)
{
    struct bench_daemon d;
    struct mix ht[MAX_REPS], nn[MAX_REPS];
    char hp[64], eid[32];
    int reps = cfg.reps;

    if (cfg.b11_clients > B11_MAX_CLIENTS)
        cfg.b11_clients = B11_MAX_CLIENTS;
    if (bench_start_http_daemon("b11", &d, hp, sizeof(hp)) < 0) {
        fail_section("B11", "trackd with --http did not start");
        return;
    }
    if (http_experiment(hp, "b11-http", eid, sizeof(eid)) < 0) {
        fail_section("B11", "experiments/create failed");
        goto out;
    }
    for (int r = 0; r < reps; r++) {
        /* who goes first alternates: the database grows under both alike */
        for (int k = 0; k < 2; k++) {
            int http = (k + r) % 2;
            int rc = http ? mix_phase(&d, "mix-http", hp, eid, r, &ht[r])
                          : mix_phase(&d, "mix-nn", d.uri, "b11-nn", r, &nn[r]);
            if (rc < 0) {
                fail_section("B11", "a mixed-load worker failed (see workers.log)");
                goto out;
            }
        }
        note("  B11 rep %d p50/p99 ms, HTTP | nanomsg: log-batch %.3f/%.3f | %.3f/%.3f, "
             "create %.3f/%.3f | %.3f/%.3f, search %.3f/%.3f | %.3f/%.3f",
             r + 1, ht[r].p50[0], ht[r].p99[0], nn[r].p50[0], nn[r].p99[0], ht[r].p50[1],
             ht[r].p99[1], nn[r].p50[1], nn[r].p99[1], ht[r].p50[2], ht[r].p99[2], nn[r].p50[2],
             nn[r].p99[2]);
        note("  B11 rep %d: %.0f ops/s HTTP (%d connections by %d clients), %.0f ops/s nanomsg; "
             "trackd CPU %.1f us/op HTTP, %.1f us/op nanomsg",
             r + 1, ht[r].ops_s, ht[r].connects, cfg.b11_clients, nn[r].ops_s, ht[r].cpu_us,
             nn[r].cpu_us);
    }
    static const char *const ids[B11_N_OPS][2] = {
        {"B11a", "B11b"}, {"B11c", "B11d"}, {"B11e", "B11f"}};
    double a[MAX_REPS], b[MAX_REPS], q50[MAX_REPS], q99[MAX_REPS];
    for (int o = 0; o < B11_N_OPS; o++) {
        for (int r = 0; r < reps; r++) {
            a[r] = ht[r].p50[o], b[r] = nn[r].p50[o];
            q50[r] = ht[r].p50[o] / nn[r].p50[o];
            q99[r] = ht[r].p99[o] / nn[r].p99[o];
        }
        lat_row(ids[o][0], o, "p50", bench_median(a, reps), bench_median(b, reps), o == 0);
        for (int r = 0; r < reps; r++)
            a[r] = ht[r].p99[o], b[r] = nn[r].p99[o];
        lat_row(ids[o][1], o, "p99", bench_median(a, reps), bench_median(b, reps), 0);
        note("  B11 %s paired (median of the per-repetition HTTP/nanomsg ratios): p50 %.2f, "
             "p99 %.2f",
             op_name[o], bench_median(q50, reps), bench_median(q99, reps));
    }
    double cu[MAX_REPS], cn[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        a[r] = ht[r].ops_s, b[r] = nn[r].ops_s;
        cu[r] = ht[r].cpu_us, cn[r] = nn[r].cpu_us;
    }
    struct row *row = row_add("B11g", "mixed load, all operations, HTTP vs nanomsg", "-");
    double x = bench_median(a, reps), y = bench_median(b, reps);
    fmt_rate(row->fig, sizeof(row->fig), x, "ops");
    fmt_rate(row->base, sizeof(row->base), y, "ops");
    snprintf(row->ratio, sizeof(row->ratio), "%.2f", x / y);
    note("  B11 trackd CPU per operation (medians): %.1f us HTTP, %.1f us nanomsg",
         bench_median(cu, reps), bench_median(cn, reps));
out:
    bench_daemon_stop(&d);
    if (!cfg.keep)
        bench_rm_rf(d.dir);
}

/* ---- B15 --------------------------------------------------------------------------------- */

int bench_worker_rate(struct bench_daemon *d, const char *mode, const char *target, const char *a1,
                      const char *a2, const char *a3, int64_t want, struct bench_rate *out)
{
    struct bench_proc p;
    char line[256];
    long long t0, t1, n, cpu;

    if (worker_spawn4(&p, mode, target, a1, a2, a3, NULL) < 0)
        return -1;
    if (bench_read_line(&p, line, sizeof(line), 120000) < 0 || strcmp(line, "ready") != 0) {
        bench_kill(&p);
        return -1;
    }
    int64_t c0 = bench_proc_cpu_ns(d->proc.pid);
    if (bench_poke(&p) < 0 || bench_read_line(&p, line, sizeof(line), 1800 * 1000) <= 0 ||
        sscanf(line, "%lld %lld %lld %lld", &t0, &t1, &n, &cpu) != 4 || n != want) {
        bench_kill(&p);
        return -1;
    }
    int64_t c1 = bench_proc_cpu_ns(d->proc.pid);
    if (bench_wait(&p) != 0)
        return -1;
    out->rate = (double)n * 1e9 / (double)(t1 - t0);
    out->cpu_rate = (double)n * 1e9 / (double)(cpu + c1 - c0);
    out->client_ns = (double)cpu / (double)n;
    out->daemon_ns = (double)(c1 - c0) / (double)n;
    return 0;
}

void bench_b15(void)
{
    struct bench_daemon d;
    double h[MAX_REPS], nn[MAX_REPS], hc[MAX_REPS], nc[MAX_REPS], q[MAX_REPS], qc[MAX_REPS];
    double split[2][2] = {{0, 0}, {0, 0}}; /* [http][client, trackd] CPU ns/pt, last rep */
    char hp[64], eid[32], ns[32];
    int reps = cfg.reps;

    if (bench_start_http_daemon("b15", &d, hp, sizeof(hp)) < 0) {
        fail_section("B15", "trackd with --http did not start");
        return;
    }
    if (http_experiment(hp, "b15-http", eid, sizeof(eid)) < 0) {
        fail_section("B15", "experiments/create failed");
        goto out;
    }
    snprintf(ns, sizeof(ns), "%lld", (long long)cfg.b15_n);
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            int http = (k + r) % 2;
            struct bench_rate m;
            int rc =
                http ? bench_worker_rate(&d, "ingest-http", hp, eid, ns, B15_BATCH, cfg.b15_n, &m)
                     : bench_worker_rate(&d, "log", d.uri, ns, B15_BATCH, NULL, cfg.b15_n, &m);
            if (rc < 0) {
                fail_section("B15", "an ingest worker failed (see workers.log)");
                goto out;
            }
            (http ? h : nn)[r] = m.rate;
            (http ? hc : nc)[r] = m.cpu_rate;
            split[http][0] = m.client_ns;
            split[http][1] = m.daemon_ns;
        }
        q[r] = h[r] / nn[r];
        qc[r] = hc[r] / nc[r];
        note("  B15 rep %d: HTTP %.0f pts/s (%.0f pts/CPU s), nanomsg %.0f pts/s (%.0f pts/CPU s); "
             "CPU ns/pt client + trackd: HTTP %.0f + %.0f, nanomsg %.0f + %.0f",
             r + 1, h[r], hc[r], nn[r], nc[r], split[1][0], split[1][1], split[0][0], split[0][1]);
    }
    note("  B15 paired (median of the per-repetition ratios): %.2f, per CPU second %.2f",
         bench_median(q, reps), bench_median(qc, reps));
    double a = bench_median(h, reps), b = bench_median(nn, reps);
    struct row *row =
        row_add("B15", "log-batch of 1000 pts a request, HTTP vs nanomsg (flush 1000)", ">= 0.5");
    fmt_rate(row->fig, sizeof(row->fig), a, "pts");
    fmt_rate(row->base, sizeof(row->base), b, "pts");
    snprintf(row->ratio, sizeof(row->ratio), "%.2f", a / b);
    row->met = yes_no(a / b >= 0.5);
    a = bench_median(hc, reps);
    b = bench_median(nc, reps);
    row = row_add("B15b", "B15 per CPU second (client + trackd)", ">= 0.5");
    fmt_rate(row->fig, sizeof(row->fig), a, "pts/cpu");
    fmt_rate(row->base, sizeof(row->base), b, "pts/cpu");
    snprintf(row->ratio, sizeof(row->ratio), "%.2f", a / b);
    row->met = yes_no(a / b >= 0.5);
out:
    bench_daemon_stop(&d);
    if (!cfg.keep)
        bench_rm_rf(d.dir);
}
