/*
 * scale.c: track-scale-bench, B21 of the scale issue: one trackd at a big
 * team's size, measured as it grows.
 *
 * The shape is the one MLflow's users report slow (mlflow#2730): runs in
 * one experiment ("big"), each started with 50 params, then 20 metrics of 3
 * points each (60 points), then ended. Run r's values come from
 * bench_mix(r), so every run of the bench holds the same data:
 *
 *   p0   one of adam, sgd, rmsprop, adagrad (a quarter each)
 *   p1   one of 8 short words          p2  a learning rate, as "%.6g"
 *   p3   an integer 0..99              p4..p49  integers, decimals and
 *                                      words in turn
 *   m0..m19  3 points (steps 0, 1, 2), each last value uniform in [0, 1)
 *
 * The orchestrator starts trackd on a fresh data directory and, for each
 * size of --sizes (default 1000,10000,100000), grows "big" to that many
 * runs with one libtrack client (a worker process: `track-scale-bench
 * --worker create URI EXPERIMENT FIRST COUNT`, timed from its first start
 * to its last acknowledged end), then times with the built `track` CLI,
 * medians of --reps (default 7):
 *
 *   Q1  --filter "params.p0 = 'adam' and metrics.m5 < 0.5 and params.p3 > 50"
 *       --order-by metrics.m7 --limit 100      (3 terms and an order-by)
 *   Q2  --filter "metrics.m5 < 0.001" --order-by metrics.m5 --limit 10
 *   Q3  --filter "params.p0 = 'adam' and params.p1 = 'gamma'" --limit 100
 *   Q4  --filter "params.p0 = 'adam' and metrics.m5 < 0.5" --json (every
 *       match, about an eighth of the runs, paged by the CLI)
 *   C   `track compare --filter "params.p0 = 'adam' and metrics.m0 < X"`,
 *       X chosen from the shape so that exactly 50 runs match
 *
 * then prints trackd's RSS. After the last size, 4 clients at once add
 * --four runs (default a tenth of the last size, at least 400) to another
 * experiment; trackd's RSS is read right then and after 6.5 s idle (it
 * gives its page caches back after 5 s without a request), and the
 * database's bytes per run after trackd's clean stop (its WAL
 * checkpointed into the file). Nothing here is pass or
 * fail; the targets are printed beside the figures.
 *
 *   track-scale-bench [--sizes N,N,...] [--four N] [--reps N] [--smoke]
 *                     [--root DIR] [--keep] [--trackd PATH] [--track PATH]
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "track.h"

#define MAX_SIZES 8
#define MAX_REPS  31
#define N_PARAMS  50
#define N_METRICS 20
#define N_STEPS   3
#define TIMEOUT   120000

#define Q1_FILTER "params.p0 = 'adam' and metrics.m5 < 0.5 and params.p3 > 50"
#define Q1_ORDER  "metrics.m7"
#define Q2_FILTER "metrics.m5 < 0.001"
#define Q2_ORDER  "metrics.m5"
#define Q3_FILTER "params.p0 = 'adam' and params.p1 = 'gamma'"
#define Q4_FILTER "params.p0 = 'adam' and metrics.m5 < 0.5"

/* ---- the shape ------------------------------------------------------------ */

static double unit(uint64_t r, uint64_t salt)
{
    return (double)(bench_mix(r * 1000003u + salt) >> 11) * (1.0 / 9007199254740992.0);
}

/* Param k of run r into buf. */
static const char *param_value(uint64_t r, int k, char *buf, size_t cap)
{
    static const char *const opt[] = {"adam", "sgd", "rmsprop", "adagrad"};
    static const char *const word[] = {"alpha", "beta", "gamma", "delta",
                                       "eps",   "zeta", "eta",   "theta"};
    uint64_t h = bench_mix(r * 131u + (uint64_t)k);
    if (k == 0)
        return opt[h % 4];
    if (k == 1 || k % 3 == 1)
        return word[h % 8];
    if (k == 2 || k % 3 == 2)
        snprintf(buf, cap, "%.6g", 1e-5 + 0.1 * unit(r, (uint64_t)k));
    else
        snprintf(buf, cap, "%d", (int)(h % 100));
    return buf;
}

/* The value of metric m of run r at step s (the last is uniform in [0, 1)). */
static double metric_value(uint64_t r, int m, int s)
{
    double last = unit(r, 1000 + (uint64_t)m);
    return s == N_STEPS - 1 ? last : last + 0.1 * (N_STEPS - 1 - s);
}

/* ---- the worker ------------------------------------------------------------ */

static int wfail(const char *what, const struct track_err *err)
{
    fprintf(stderr, "track-scale-bench worker: %s: %s: %s\n", what, track_code_name(err->code),
            err->msg);
    return 1;
}

/* Creates runs first..first+count-1 of the shape in `experiment`; prints
 * "NS" from before the first start to after the last end returned. */
static int worker_create(const char *uri, const char *experiment, int64_t first, int64_t count)
{
    struct track_opts o = {
        .server = uri, .timeout_ms = TIMEOUT, .flush_points = 8192, .no_spool = 1};
    struct track_err err = {0};
    struct track_client *c;
    struct track_kv kv[N_PARAMS];
    char keys[N_PARAMS][8], vals[N_PARAMS][32], mkeys[N_METRICS][8], name[32];

    for (int k = 0; k < N_PARAMS; k++)
        snprintf(keys[k], sizeof keys[k], "p%d", k);
    for (int m = 0; m < N_METRICS; m++)
        snprintf(mkeys[m], sizeof mkeys[m], "m%d", m);
    if (track_client_open(&o, &c, &err))
        return wfail("open", &err);
    int64_t t0 = bench_now_ns();
    for (int64_t r = first; r < first + count; r++) {
        for (int k = 0; k < N_PARAMS; k++) {
            kv[k].key = keys[k];
            kv[k].value = param_value((uint64_t)r, k, vals[k], sizeof vals[k]);
        }
        snprintf(name, sizeof name, "trial-%lld", (long long)r);
        struct track_run_opts ro = {
            .experiment = experiment, .name = name, .params = kv, .n_params = N_PARAMS};
        track_run_id id;
        if (track_run_start(c, &ro, &id, &err) || err.code == TRACK_E_SPOOLED)
            return wfail("run start", &err);
        for (int s = 0; s < N_STEPS; s++)
            for (int m = 0; m < N_METRICS; m++)
                if (track_log_metric(c, mkeys[m], metric_value((uint64_t)r, m, s), s, 0, &err))
                    return wfail("log metric", &err);
        if (track_run_end(c, TRACK_FINISHED, &err) || err.code == TRACK_E_SPOOLED)
            return wfail("run end", &err);
    }
    printf("%lld\n", (long long)(bench_now_ns() - t0));
    track_client_close(c);
    return 0;
}

/* ---- the orchestrator -------------------------------------------------------- */

static struct {
    char trackd[1024], track[1024], self[1024], root[512];
    int64_t sizes[MAX_SIZES];
    int n_sizes, reps, keep, smoke;
    int64_t four;
} cfg;

/* Starts `count` creating workers at once, each `per` runs from `first`
 * (worker i from first + i * per); *secs: the slowest's time. */
static int create_runs(const char *uri, const char *exp, int64_t first, int64_t per, int workers,
                       double *secs)
{
    struct bench_proc p[4];
    char f[32], n[32], line[64];
    int ok = 1;
    double worst = 0;

    snprintf(n, sizeof n, "%lld", (long long)per);
    for (int i = 0; i < workers; i++) {
        snprintf(f, sizeof f, "%lld", (long long)(first + i * per));
        char *argv[] = {cfg.self,
                        (char *)(uintptr_t) "--worker",
                        (char *)(uintptr_t) "create",
                        (char *)uri,
                        (char *)exp,
                        f,
                        n,
                        NULL};
        if (bench_spawn(&p[i], argv, 0, 1, NULL) < 0) {
            for (int j = 0; j < i; j++)
                bench_kill(&p[j]);
            return -1;
        }
    }
    for (int i = 0; i < workers; i++) {
        int got = bench_read_line(&p[i], line, sizeof line, 3600 * 1000);
        if (bench_wait(&p[i]) != 0 || got <= 0)
            ok = 0;
        else if (strtod(line, NULL) / 1e9 > worst)
            worst = strtod(line, NULL) / 1e9;
    }
    *secs = worst;
    return ok ? 0 : -1;
}

/* Runs argv with stdout discarded and stderr into ROOT/cli.err; its exit
 * status (the file is printed when it failed). */
static int run_cli(char *const argv[])
{
    char path[600];
    struct bench_proc p;
    snprintf(path, sizeof path, "%s/cli.err", cfg.root);
    unlink(path);
    if (bench_spawn(&p, argv, 0, 0, path) < 0)
        return -1;
    int st = bench_wait(&p);
    if (st != 0) {
        FILE *f = fopen(path, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f))
            fprintf(stderr, "track-scale-bench: %s: %s", argv[3], line);
        if (f)
            fclose(f);
    }
    return st;
}

/* The median of reps timings of `track --server URI ARGS...` (output
 * discarded), in ms; -1 when one failed. */
static double cli_ms(const char *uri, const char *const *args)
{
    char *argv[24];
    double t[MAX_REPS];
    int n = 0;

    argv[n++] = cfg.track;
    argv[n++] = (char *)(uintptr_t) "--server";
    argv[n++] = (char *)uri;
    for (int i = 0; args[i] && n < 23; i++)
        argv[n++] = (char *)(uintptr_t)args[i];
    argv[n] = NULL;
    if (run_cli(argv) != 0) /* warm-up, and the check that it works */
        return -1;
    for (int r = 0; r < cfg.reps; r++) {
        int64_t t0 = bench_now_ns();
        if (run_cli(argv) != 0)
            return -1;
        t[r] = (double)(bench_now_ns() - t0) / 1e6;
    }
    return bench_median(t, cfg.reps);
}

struct point {
    int64_t runs;
    double create_rate, q[5]; /* Q1..Q4, C */
    long rss_kb;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The compare filter: p0 = 'adam' and m0 below the mean of the 50th and
 * 51st smallest last m0 of those runs, so that 50 of the first n match. */
static int compare_filter(int64_t n, char *out, size_t cap)
{
    double *v = malloc((size_t)n * sizeof *v);
    char buf[32];
    int64_t k = 0;
    if (!v)
        return -1;
    for (int64_t r = 0; r < n; r++)
        if (strcmp(param_value((uint64_t)r, 0, buf, sizeof buf), "adam") == 0)
            v[k++] = metric_value((uint64_t)r, 0, N_STEPS - 1);
    qsort(v, (size_t)k, sizeof *v, cmp_double);
    double x = k > 50 ? (v[49] + v[50]) / 2 : 2.0;
    snprintf(out, cap, "params.p0 = 'adam' and metrics.m0 < %.17g", x);
    free(v);
    return 0;
}

static int measure(const struct bench_daemon *d, struct point *pt)
{
    char cf[128];
    static const char *const q1[] = {"runs",       "--experiment", "big",     "--filter", Q1_FILTER,
                                     "--order-by", Q1_ORDER,       "--limit", "100",      NULL};
    static const char *const q2[] = {"runs",       "--experiment", "big",     "--filter", Q2_FILTER,
                                     "--order-by", Q2_ORDER,       "--limit", "10",       NULL};
    static const char *const q3[] = {"runs",    "--experiment", "big", "--filter",
                                     Q3_FILTER, "--limit",      "100", NULL};
    static const char *const q4[] = {"runs",    "--experiment", "big", "--filter",
                                     Q4_FILTER, "--json",       NULL};
    const char *const cmp[] = {"compare", "--experiment", "big", "--filter", cf, "--json", NULL};
    const char *const *qs[] = {q1, q2, q3, q4, cmp};

    if (compare_filter(pt->runs, cf, sizeof cf) < 0)
        return -1;
    for (int i = 0; i < 5; i++) {
        pt->q[i] = cli_ms(d->uri, qs[i]);
        if (pt->q[i] < 0) {
            fprintf(stderr, "track-scale-bench: query %d failed at %lld runs\n", i + 1,
                    (long long)pt->runs);
            return -1;
        }
    }
    pt->rss_kb = bench_proc_kb(d->proc.pid, "VmRSS:");
    return 0;
}

static int parse_sizes(const char *s)
{
    cfg.n_sizes = 0;
    while (*s && cfg.n_sizes < MAX_SIZES) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v <= 0)
            return -1;
        if (cfg.n_sizes && v <= cfg.sizes[cfg.n_sizes - 1])
            return -1;
        cfg.sizes[cfg.n_sizes++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return cfg.n_sizes ? 0 : -1;
}

static int usage(void)
{
    fprintf(stderr, "usage: track-scale-bench [--sizes N,N,...] [--four N] [--reps N] [--smoke]\n"
                    "                         [--root DIR] [--keep] [--trackd PATH] [--track "
                    "PATH]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct bench_daemon d;
    struct point pts[MAX_SIZES];
    int64_t have = 0;
    double secs;

    if (argc >= 2 && strcmp(argv[1], "--worker") == 0) {
        if (argc == 7 && strcmp(argv[2], "create") == 0)
            return worker_create(argv[3], argv[4], strtoll(argv[5], NULL, 10),
                                 strtoll(argv[6], NULL, 10));
        return usage();
    }
    bench_sibling(cfg.trackd, sizeof cfg.trackd, "trackd");
    bench_sibling(cfg.track, sizeof cfg.track, "track");
    bench_sibling(cfg.self, sizeof cfg.self, "track-scale-bench");
    snprintf(cfg.root, sizeof cfg.root, "/tmp/track-scale-bench.%d", (int)getpid());
    parse_sizes("1000,10000,100000");
    cfg.reps = 7;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--smoke") == 0) {
            cfg.smoke = 1;
            parse_sizes("20,60");
            cfg.reps = 1;
            cfg.four = 40;
        } else if (strcmp(a, "--keep") == 0) {
            cfg.keep = 1;
        } else if (v && strcmp(a, "--sizes") == 0) {
            if (parse_sizes(v))
                return usage();
            i++;
        } else if (v && strcmp(a, "--four") == 0) {
            cfg.four = strtoll(v, NULL, 10);
            i++;
        } else if (v && strcmp(a, "--reps") == 0) {
            cfg.reps = (int)strtol(v, NULL, 10);
            if (cfg.reps < 1 || cfg.reps > MAX_REPS)
                return usage();
            i++;
        } else if (v && strcmp(a, "--root") == 0) {
            snprintf(cfg.root, sizeof cfg.root, "%s", v);
            i++;
        } else if (v && strcmp(a, "--trackd") == 0) {
            snprintf(cfg.trackd, sizeof cfg.trackd, "%s", v);
            i++;
        } else if (v && strcmp(a, "--track") == 0) {
            snprintf(cfg.track, sizeof cfg.track, "%s", v);
            i++;
        } else {
            return usage();
        }
    }
    if (!cfg.four) {
        cfg.four = cfg.sizes[cfg.n_sizes - 1] / 10;
        if (cfg.four < 400)
            cfg.four = 400;
    }
    cfg.four -= cfg.four % 4;
    if (mkdir(cfg.root, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "track-scale-bench: %s: %s\n", cfg.root, strerror(errno));
        return 1;
    }
    if (bench_daemon_start(&d, cfg.trackd, cfg.root, "b21") < 0) {
        fprintf(stderr, "track-scale-bench: trackd did not start (log %s)\n", d.log);
        return 1;
    }
    printf("B21: %d params, %d metrics x %d points a run; medians of %d; sizes", N_PARAMS,
           N_METRICS, N_STEPS, cfg.reps);
    for (int i = 0; i < cfg.n_sizes; i++)
        printf(" %lld", (long long)cfg.sizes[i]);
    printf("\n");
    fflush(stdout);
    for (int i = 0; i < cfg.n_sizes; i++) {
        struct point *pt = &pts[i];
        int64_t add = cfg.sizes[i] - have;
        memset(pt, 0, sizeof *pt);
        pt->runs = cfg.sizes[i];
        if (create_runs(d.uri, "big", have, add, 1, &secs) < 0) {
            fprintf(stderr, "track-scale-bench: creating runs failed (log %s)\n", d.log);
            goto fail;
        }
        have = cfg.sizes[i];
        pt->create_rate = (double)add / secs;
        if (measure(&d, pt) < 0)
            goto fail;
        printf("  %7lld runs: created %6.0f/s (1 client); Q1 %7.1f ms  Q2 %7.1f ms  Q3 %7.1f ms"
               "  Q4 %7.1f ms  compare %7.1f ms; trackd RSS %.1f MB\n",
               (long long)pt->runs, pt->create_rate, pt->q[0], pt->q[1], pt->q[2], pt->q[3],
               pt->q[4], (double)pt->rss_kb / 1024);
        fflush(stdout);
    }
    if (create_runs(d.uri, "big4", 0, cfg.four / 4, 4, &secs) < 0) {
        fprintf(stderr, "track-scale-bench: 4 clients failed (log %s)\n", d.log);
        goto fail;
    }
    double four_rate = (double)cfg.four / secs;
    long busy_kb = bench_proc_kb(d.proc.pid, "VmRSS:");
    long hwm_kb = bench_proc_kb(d.proc.pid, "VmHWM:");
    /* trackd gives its page caches back after 5 s without a request */
    bench_sleep_ms(cfg.smoke ? 0 : 6500);
    long rss_kb = bench_proc_kb(d.proc.pid, "VmRSS:");
    if (bench_daemon_stop(&d) != 0)
        fprintf(stderr, "track-scale-bench: trackd did not stop cleanly\n");
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", d.db);
    int64_t db = bench_file_size(d.db) + bench_file_size(wal);
    double per_run = (double)db / (double)(have + cfg.four);

    const struct point *last = &pts[cfg.n_sizes - 1];
    printf("\n| id | what | figure | target | met |\n|---|---|---|---|---|\n");
    printf("| B21 | search, 3 terms + order-by, --limit 100, at %lld runs | %.1f ms | <= 100 ms "
           "| %s |\n",
           (long long)last->runs, last->q[0], last->q[0] <= 100 ? "yes" : "no");
    if (cfg.n_sizes >= 2) {
        const struct point *prev = &pts[cfg.n_sizes - 2];
        double g = last->q[0] / prev->q[0];
        printf("| B21g | its growth from %lld to %lld runs (%.0fx the runs) | %.2fx | <= 3x | %s "
               "|\n",
               (long long)prev->runs, (long long)last->runs,
               (double)last->runs / (double)prev->runs, g, g <= 3 ? "yes" : "no");
    }
    printf("| B21b | `metrics.m5 < 0.001` by m5, --limit 10 | %.1f ms | | |\n", last->q[1]);
    printf("| B21c | two param terms, --limit 100 | %.1f ms | | |\n", last->q[2]);
    printf("| B21d | --json of every run matching two terms | %.1f ms | | |\n", last->q[3]);
    printf("| B21e | `track compare` of 50 runs picked by a filter | %.1f ms | <= 200 ms | %s |\n",
           last->q[4], last->q[4] <= 200 ? "yes" : "no");
    printf("| B21f | runs created a second, 1 client (start, 50 params, 60 points, end) | %.0f "
           "| >= 1000 | %s |\n",
           last->create_rate, last->create_rate >= 1000 ? "yes" : "no");
    printf("| B21h | the same from 4 clients at once (%lld runs) | %.0f | >= 3000 | %s |\n",
           (long long)cfg.four, four_rate, four_rate >= 3000 ? "yes" : "no");
    printf("| B21i | database bytes per run (%lld runs) | %.0f B | <= 4096 B | %s |\n",
           (long long)(have + cfg.four), per_run, per_run <= 4096 ? "yes" : "no");
    printf("| B21j | trackd RSS after the load, 6.5 s idle (right after it; peak) | %.1f MB (%.1f; "
           "%.1f MB) | <= 64 MB | %s |\n",
           (double)rss_kb / 1024, (double)busy_kb / 1024, (double)hwm_kb / 1024,
           rss_kb <= 64 * 1024 ? "yes" : "no");
    printf("\ngrowth of Q1:");
    for (int i = 0; i < cfg.n_sizes; i++)
        printf(" %lld runs %.1f ms%s", (long long)pts[i].runs, pts[i].q[0],
               i + 1 < cfg.n_sizes ? "," : "\n");
    if (!cfg.keep)
        bench_rm_rf(cfg.root);
    else
        printf("kept %s\n", cfg.root);
    return 0;
fail:
    bench_daemon_stop(&d);
    if (!cfg.keep)
        bench_rm_rf(cfg.root);
    return 1;
}
