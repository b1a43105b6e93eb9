/*
 * bench.c: track-bench, the benchmark of track (README "Performance"). It
 * measures B1..B10 of the performance issue (and B12, B13 of the artifacts
 * issue) end to end, against the built
 * binaries, and prints one table: id, what, figure, baseline, ratio, target,
 * met?. Figures that depend on the machine are paired with a baseline
 * measured by this program in the same run; "met?" is information only and
 * the exit status never depends on it (1 only when a benchmark could not
 * run at all).
 *
 * How: this process is the orchestrator and never opens a nanomsg socket,
 * so it may fork whenever it likes; everything that speaks to trackd runs in
 * a worker process (worker.c) or in the `track` CLI. Each benchmark gets a
 * fresh trackd on a temporary data directory (bin/trackd --data-dir DIR
 * --listen ipc://DIR/trackd.sock). Repeated measurements alternate with
 * their baseline (baseline, subject, baseline, subject, ...) and the median
 * of each is reported, so a burst of load from elsewhere hits both.
 *
 *   B1  one client logs N points (bench_point: 2 keys, increasing steps) with
 *       track_log_metric and flush_points 8192 (libtrack's default), then
 *       track_flush; timed until that flush returns, i.e. trackd committed
 *       and acknowledged the last point. Baseline: baseline.c, raw SQLite,
 *       one row per point. Also reported with flush_points 65536.
 *   B2  four such clients at once, separate processes started together
 *       (aggregate points / (last end - first start)). Baseline: B1's, since
 *       SQLite has one writer whatever the number of clients.
 *   B3  synchronous track_set_tag round trips per second; baseline a bare
 *       nanomsg REQ/REP echo (cooked sockets, ipc://) of a frame the size of
 *       the packed set-tag request.
 *   B4  `track --server URI log-metric loss 0.5 --step I` spawned with
 *       fork/exec/waitpid, TRACK_RUN_ID set; baseline /bin/true the same way.
 *   B5  `track compare` of 10 runs (4 metrics x 1e5 points each), median of 5
 *       after one warm-up; the runs logged with flush_points 8192 (B5) and
 *       262144 (B5b), which gives each series many or few chunks.
 *   B6  `track runs --filter A and B --order-by metrics.loss` over 1e4 runs
 *       (three params and two metrics each), median of 5 after a warm-up.
 *   B7  track_metric_history paging through 1e6 points of one key, with
 *       max_points 0 (trackd's limit, B7) and 262144 (B7b).
 *   B8  trackd VmRSS when idle after start, VmHWM after B2.
 *   B9  database bytes per point after B1 (trackd stopped with SIGTERM, so
 *       the WAL is checkpointed); baseline: the raw SQLite table's bytes/row.
 *   B10 B1 at 1e4, 1e5, 1e6, 1e7 points (1e7 skipped with --quick). Besides
 *       points/s, CPU ns per point (client + trackd, from CLOCK_PROCESS_
 *       CPUTIME_ID and /proc/PID/task/N/schedstat), which other load on a
 *       shared machine disturbs far less than wall-clock rates.
 *
 *   B12 a file of 1 GiB (256 MiB with --quick, 8 MiB with --smoke) of random
 *       bytes stored with `track artifact put` and fetched back with `track
 *       artifact get`, each in MB/s against `cp` of the same file on the same
 *       disk (none fsyncs: trackd runs with --durability normal, get without
 *       --fsync); the client's peak RSS (wait4) and trackd's VmHWM beside.
 *       One measurement each way. The put streams (no blob of its size is
 *       stored yet): trackd hashes the bytes as they arrive, the client not.
 *   B12c B12's ceiling: the same file hashed with BLAKE2b-256 in this
 *       process once, the one pass each way needs (put: trackd on arrival;
 *       get: the client while writing), as MB/s against the same cp.
 *   B13 the same file put again into another run (dedup: hashed locally,
 *       no bytes sent) against `b2sum` of it.
 *   B18 sealed tcp:// vs plain tcp:// (--plain-tcp), loopback, in one run:
 *       set-tag round trips and B1's ingest (b18.c).
 *   B11 20 clients of mlflow-go's mixed load (log-batch of 10, create run,
 *       search) through trackd's MLflow HTTP front vs libtrack: p50, p99.
 *   B15 log-batch of 1000 points a request through HTTP vs libtrack (b11.c).
 *   B16 OTLP protobuf trace ingest (100-span traces) through /v1/traces, spans/s,
 *       against metric ingest points/s on the same trackd (b16.c).
 *   B17 `track trace show` of a 50,001-span trace and `track traces --filter`
 *       over 10^5 traces (b16.c).
 *
 * Process creation on a VM can be slow enough to dominate B4-B6; B4's
 * /bin/true baseline shows how much.
 *
 * Usage: track-bench [--smoke | --quick] [--only B1,B3,...] [--reps N]
 *        [--dir DIR] [--keep] [--clients N] [--trackd PATH] [--track PATH]
 */
#include "bench.h"
#include "orch.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <unistd.h>

#define MAX_ROWS    40
#define MAX_CLIENTS 8
#define B2_CLIENTS  4
#define BIG_FLUSH   65536
#define B7_PAGE     262144 /* an explicit page size that fits a frame */

static struct row rows[MAX_ROWS];
static int n_rows, n_failed;
struct bench_cfg cfg;

/* ---- output ------------------------------------------------------------------ */

__attribute__((format(printf, 1, 2))) void note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void fail_section(const char *id, const char *why)
{
    note("track-bench: %s could not run: %s", id, why);
    n_failed++;
}

struct row *row_add(const char *id, const char *what, const char *target)
{
    struct row *r;

    if (n_rows == MAX_ROWS)
        n_rows--;
    r = &rows[n_rows++];
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    snprintf(r->what, sizeof(r->what), "%s", what);
    snprintf(r->target, sizeof(r->target), "%s", target);
    snprintf(r->fig, sizeof(r->fig), "n/a");
    snprintf(r->base, sizeof(r->base), "-");
    snprintf(r->ratio, sizeof(r->ratio), "-");
    r->met = "-";
    return r;
}

void fmt_rate(char *buf, size_t cap, double per_s, const char *unit)
{
    if (per_s >= 1e6)
        snprintf(buf, cap, "%.2f M %s/s", per_s / 1e6, unit);
    else if (per_s >= 1e3)
        snprintf(buf, cap, "%.1f k %s/s", per_s / 1e3, unit);
    else
        snprintf(buf, cap, "%.1f %s/s", per_s, unit);
}

const char *yes_no(int ok)
{
    return ok ? "yes" : "no";
}

static void print_table(void)
{
    int w[6] = {2, 4, 6, 8, 5, 6};

    for (int i = 0; i < n_rows; i++) {
        const struct row *r = &rows[i];
        const char *f[6] = {r->id, r->what, r->fig, r->base, r->ratio, r->target};
        for (int k = 0; k < 6; k++)
            if ((int)strlen(f[k]) > w[k])
                w[k] = (int)strlen(f[k]);
    }
    printf("| %-*s | %-*s | %-*s | %-*s | %-*s | %-*s | met? |\n", w[0], "id", w[1], "what", w[2],
           "figure", w[3], "baseline", w[4], "ratio", w[5], "target");
    printf("|");
    for (int k = 0; k < 6; k++) {
        for (int j = 0; j < w[k] + 2; j++)
            putchar('-');
        printf("|");
    }
    printf("------|\n");
    for (int i = 0; i < n_rows; i++) {
        const struct row *r = &rows[i];
        printf("| %-*s | %-*s | %-*s | %-*s | %-*s | %-*s | %-4s |\n", w[0], r->id, w[1], r->what,
               w[2], r->fig, w[3], r->base, w[4], r->ratio, w[5], r->target, r->met);
    }
}

static int wanted(const char *id)
{
    const char *p;
    size_t n = strlen(id);

    if (!cfg.only)
        return 1;
    for (p = cfg.only; (p = strcasestr(p, id)) != NULL; p += n)
        if ((p == cfg.only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

/* ---- workers ------------------------------------------------------------------- */

static char worker_log[600];

/* Spawns `self --worker MODE URI ARGS...` (up to four ARGS, the list ends
 * at the first NULL) with its stdin and stdout piped to us. */
int worker_spawn4(struct bench_proc *p, const char *mode, const char *uri, const char *a1,
                  const char *a2, const char *a3, const char *a4)
{
    char *argv[] = {cfg.self,
                    (char *)(uintptr_t) "--worker",
                    (char *)(uintptr_t)mode,
                    (char *)(uintptr_t)uri,
                    (char *)(uintptr_t)a1,
                    (char *)(uintptr_t)(a1 ? a2 : NULL),
                    (char *)(uintptr_t)(a1 && a2 ? a3 : NULL),
                    (char *)(uintptr_t)(a1 && a2 && a3 ? a4 : NULL),
                    NULL};
    return bench_spawn(p, argv, 1, 1, worker_log);
}

static int worker_spawn(struct bench_proc *p, const char *mode, const char *uri, const char *a1,
                        const char *a2, const char *a3)
{
    return worker_spawn4(p, mode, uri, a1, a2, a3, NULL);
}

/* Runs `nclients` log workers of n points each against d, started
 * together; *secs is from the first client's first point to the last
 * client's last acknowledged flush, *cpu the CPU seconds the clients and
 * trackd spent meanwhile (insensitive to other load on the machine). */
static int log_clients(struct bench_daemon *d, int nclients, int64_t n, int flush, double *secs,
                       double *cpu)
{
    struct bench_proc p[MAX_CLIENTS];
    char ns[32], fl[32], line[256];
    int64_t t0 = INT64_MAX, t1 = 0, cpu_clients = 0, cpu_d0, cpu_d1;
    int ok = 1;

    snprintf(ns, sizeof(ns), "%lld", (long long)n);
    snprintf(fl, sizeof(fl), "%d", flush);
    for (int i = 0; i < nclients; i++) {
        if (worker_spawn(&p[i], "log", d->uri, ns, fl, NULL) < 0) {
            for (int k = 0; k < i; k++)
                bench_kill(&p[k]);
            return -1;
        }
    }
    for (int i = 0; i < nclients && ok; i++)
        ok = bench_read_line(&p[i], line, sizeof(line), 60000) >= 0 && strcmp(line, "ready") == 0;
    cpu_d0 = bench_proc_cpu_ns(d->proc.pid);
    for (int i = 0; i < nclients && ok; i++)
        ok = bench_poke(&p[i]) == 0;
    for (int i = 0; i < nclients && ok; i++) {
        long long a, b, m, c;
        ok = bench_read_line(&p[i], line, sizeof(line), 1800 * 1000) > 0 &&
             sscanf(line, "%lld %lld %lld %lld", &a, &b, &m, &c) == 4 && m == n;
        if (ok) {
            t0 = a < t0 ? a : t0;
            t1 = b > t1 ? b : t1;
            cpu_clients += c;
        }
    }
    cpu_d1 = bench_proc_cpu_ns(d->proc.pid);
    for (int i = 0; i < nclients; i++) {
        if (!ok)
            bench_kill(&p[i]);
        else if (bench_wait(&p[i]) != 0)
            ok = 0;
    }
    if (!ok)
        return -1;
    *secs = (double)(t1 - t0) / 1e9;
    *cpu = (double)(cpu_clients + cpu_d1 - cpu_d0) / 1e9;
    return 0;
}

/* One worker whose whole output is one line of numbers. */
int worker_line(const char *mode, const char *uri, const char *a1, const char *a2, const char *a3,
                char *line, size_t cap)
{
    struct bench_proc p;

    if (worker_spawn(&p, mode, uri, a1, a2, a3) < 0)
        return -1;
    if (bench_read_line(&p, line, cap, 1800 * 1000) < 0) {
        bench_kill(&p);
        return -1;
    }
    return bench_wait(&p) == 0 ? 0 : -1;
}

/* ---- what b18.c calls back --------------------------------------------------- */
static int b18_worker(const char *mode, const char *uri, const char *a1, char *line, size_t cap)
{
    return worker_line(mode, uri, a1, NULL, NULL, line, cap);
}

static int b18_ingest(struct bench_daemon *d, int64_t n, double *secs, double *cpu)
{
    return log_clients(d, 1, n, 8192, secs, cpu);
}

static void b18_row(const char *id, const char *what, const char *target, double a, double b,
                    const char *unit, double goal)
{
    struct row *row = row_add(id, what, target);
    fmt_rate(row->fig, sizeof(row->fig), a, unit);
    fmt_rate(row->base, sizeof(row->base), b, unit);
    snprintf(row->ratio, sizeof(row->ratio), "%.2f", a / b);
    row->met = yes_no(a / b >= goal);
}

/* ---- B1, B9, B10 -------------------------------------------------------------- */

/* Fresh trackd, `nclients` x n points, stop it. *rate is points/s, *cpu_pt
 * CPU ns per point (clients + trackd). */
static int ingest_once(const char *name, int nclients, int64_t n, int flush, double *rate,
                       double *cpu_pt, double *bytes_per_point, long *hwm_kb, long *idle_kb)
{
    struct bench_daemon d;
    double secs = 0, cpu = 0;
    int rc;

    if (bench_daemon_start(&d, cfg.trackd, cfg.root, name) < 0) {
        note("trackd did not start: %s (log %s)", strerror(errno), d.log);
        return -1;
    }
    if (idle_kb) {
        bench_sleep_ms(cfg.smoke ? 200 : 1000);
        *idle_kb = bench_proc_kb(d.proc.pid, "VmRSS:");
    }
    rc = log_clients(&d, nclients, n, flush, &secs, &cpu);
    if (hwm_kb)
        *hwm_kb = bench_proc_kb(d.proc.pid, "VmHWM:");
    int st = bench_daemon_stop(&d);
    if (rc < 0 || st != 0) {
        note("%s: clients %s, trackd exit %d (logs %s, %s)", name, rc < 0 ? "failed" : "ok", st,
             worker_log, d.log);
        return -1;
    }
    *rate = (double)n * nclients / secs;
    *cpu_pt = cpu * 1e9 / ((double)n * nclients);
    if (bytes_per_point) {
        char wal[700];
        snprintf(wal, sizeof(wal), "%s-wal", d.db);
        *bytes_per_point =
            (double)(bench_file_size(d.db) + bench_file_size(wal)) / ((double)n * nclients);
    }
    if (!cfg.keep)
        bench_rm_rf(d.dir);
    return 0;
}

static double base_rate;   /* B1's baseline, points/s; 0 when not measured */
static double base_cpu_pt; /* its CPU ns per row */

/* B1, B1b (larger batches) and B9, each repetition alternating with the
 * baseline. *b1_rate and *b1_cpu (ns/pt) are kept for B10. */
static void bench_b1(double *b1_rate, double *b1_cpu)
{
    double base[MAX_REPS], bcpu[MAX_REPS], b1[MAX_REPS], c1[MAX_REPS], big[MAX_REPS],
        cbig[MAX_REPS], base_bytes = 0, b9 = 0;
    struct bench_base_result br;
    char path[700], msg[512];
    int reps = cfg.reps;

    snprintf(path, sizeof(path), "%s/baseline.db", cfg.root);
    for (int r = 0; r < reps; r++) {
        if (bench_baseline(path, cfg.b1_n, &br, msg, sizeof(msg)) < 0) {
            fail_section("B1", msg);
            return;
        }
        base[r] = (double)cfg.b1_n / br.secs;
        bcpu[r] = br.cpu_secs * 1e9 / (double)cfg.b1_n;
        base_bytes = (double)br.db_bytes / (double)cfg.b1_n;
        unlink(path);
        if (ingest_once("b1", 1, cfg.b1_n, 8192, &b1[r], &c1[r], &b9, NULL, NULL) < 0) {
            fail_section("B1", "ingest failed");
            return;
        }
        if (ingest_once("b1big", 1, cfg.b1_n, BIG_FLUSH, &big[r], &cbig[r], NULL, NULL, NULL) < 0) {
            fail_section("B1", "ingest (large batches) failed");
            return;
        }
        note("  B1 rep %d: baseline %.0f pts/s (%.0f CPU ns/row); track flush 8192 %.0f pts/s "
             "(%.0f CPU ns/pt), flush %d %.0f pts/s (%.0f CPU ns/pt)",
             r + 1, base[r], bcpu[r], b1[r], c1[r], BIG_FLUSH, big[r], cbig[r]);
    }
    base_rate = bench_median(base, reps);
    base_cpu_pt = bench_median(bcpu, reps);
    *b1_rate = bench_median(b1, reps);
    *b1_cpu = bench_median(c1, reps);
    double big_rate = bench_median(big, reps), big_cpu = bench_median(cbig, reps);
    note("  B1 CPU per point: baseline %.0f ns, track %.0f ns (flush 8192), %.0f ns (flush %d): "
         "CPU ratios %.2f and %.2f",
         base_cpu_pt, *b1_cpu, big_cpu, BIG_FLUSH, base_cpu_pt / *b1_cpu, base_cpu_pt / big_cpu);

    char what[80], bfig[40];
    struct row *row;
    fmt_rate(bfig, sizeof(bfig), base_rate, "pts");
    snprintf(what, sizeof(what), "1 client, %.0e pts, flush_points 8192 (default)",
             (double)cfg.b1_n);
    row = row_add("B1", what, "ratio >= 0.7");
    fmt_rate(row->fig, sizeof(row->fig), *b1_rate, "pts");
    snprintf(row->base, sizeof(row->base), "%s", bfig);
    snprintf(row->ratio, sizeof(row->ratio), "%.2f", *b1_rate / base_rate);
    row->met = yes_no(*b1_rate / base_rate >= 0.7);

    snprintf(what, sizeof(what), "1 client, %.0e pts, flush_points %d", (double)cfg.b1_n,
             BIG_FLUSH);
    row = row_add("B1b", what, "ratio >= 0.7");
    fmt_rate(row->fig, sizeof(row->fig), big_rate, "pts");
    snprintf(row->base, sizeof(row->base), "%s", bfig);
    snprintf(row->ratio, sizeof(row->ratio), "%.2f", big_rate / base_rate);
    row->met = yes_no(big_rate / base_rate >= 0.7);

    row = row_add("B9", "database bytes per point after B1", "<= 40 B");
    snprintf(row->fig, sizeof(row->fig), "%.2f B/pt", b9);
    snprintf(row->base, sizeof(row->base), "%.2f B/row", base_bytes);
    snprintf(row->ratio, sizeof(row->ratio), "%.3f", b9 / base_bytes);
    row->met = yes_no(b9 <= 40);
}

/* B1 at each size of cfg.b10, fresh trackd each time. Wall-clock rates
 * move with whatever else the machine runs; CPU per point does not, so
 * both spreads are reported. */
static void bench_b10(double b1_rate, double b1_cpu)
{
    double rate[4], cpu[4], lo = INFINITY, hi = 0, clo = INFINITY, chi = 0;
    int have = 0;

    for (int s = 0; s < cfg.n_b10; s++) {
        int64_t n = cfg.b10[s];
        double r[MAX_REPS], c[MAX_REPS];
        int reps = n >= 10000000 ? 1 : cfg.reps;
        char name[32];

        if (n == cfg.b1_n && b1_rate > 0) {
            rate[s] = b1_rate;
            cpu[s] = b1_cpu;
        } else {
            snprintf(name, sizeof(name), "b10-%lld", (long long)n);
            for (int k = 0; k < reps; k++) {
                if (ingest_once(name, 1, n, 8192, &r[k], &c[k], NULL, NULL, NULL) < 0) {
                    fail_section("B10", "ingest failed");
                    return;
                }
            }
            rate[s] = bench_median(r, reps);
            cpu[s] = bench_median(c, reps);
        }
        note("  B10 %.0e points: %.0f pts/s, %.0f CPU ns/pt", (double)n, rate[s], cpu[s]);
        lo = rate[s] < lo ? rate[s] : lo;
        hi = rate[s] > hi ? rate[s] : hi;
        clo = cpu[s] < clo ? cpu[s] : clo;
        chi = cpu[s] > chi ? cpu[s] : chi;
        have++;
    }
    for (int s = 0; s < have; s++) {
        char what[80];
        snprintf(what, sizeof(what), "B1 at %.0e points (%.0f CPU ns/pt)", (double)cfg.b10[s],
                 cpu[s]);
        struct row *row = row_add("B10", what, "-");
        fmt_rate(row->fig, sizeof(row->fig), rate[s], "pts");
        if (base_rate > 0) {
            fmt_rate(row->base, sizeof(row->base), base_rate, "pts");
            snprintf(row->ratio, sizeof(row->ratio), "%.2f", rate[s] / base_rate);
        }
    }
    struct row *row = row_add("B10", "spread (max-min)/max of those rates", "<= 20 %");
    snprintf(row->fig, sizeof(row->fig), "%.0f %%", 100 * (hi - lo) / hi);
    row->met = yes_no((hi - lo) / hi <= 0.2);
    if (cfg.quick)
        snprintf(row->base, sizeof(row->base), "1e7 skipped");
    row = row_add("B10", "spread (max-min)/max of CPU ns per point", "<= 20 %");
    snprintf(row->fig, sizeof(row->fig), "%.0f %%", 100 * (chi - clo) / chi);
    row->met = yes_no((chi - clo) / chi <= 0.2);
}

/* ---- B2, B8 --------------------------------------------------------------------- */

static void bench_b2(void)
{
    double agg[MAX_REPS], cpu[MAX_REPS];
    long idle_kb = -1, hwm = 0;

    for (int r = 0; r < cfg.reps; r++) {
        long h = -1, *idle = r == 0 ? &idle_kb : NULL;
        if (ingest_once("b2", B2_CLIENTS, cfg.b2_n, 8192, &agg[r], &cpu[r], NULL, &h, idle) < 0) {
            fail_section("B2", "ingest failed");
            return;
        }
        hwm = h > hwm ? h : hwm;
        note("  B2 rep %d: %.0f pts/s aggregate (%.0f CPU ns/pt), trackd VmHWM %ld kB", r + 1,
             agg[r], cpu[r], h);
    }
    double rate = bench_median(agg, cfg.reps);
    char what[80];
    snprintf(what, sizeof(what), "%d clients at once, %.0e pts each", B2_CLIENTS, (double)cfg.b2_n);
    struct row *row = row_add("B2", what, "ratio >= 0.7");
    fmt_rate(row->fig, sizeof(row->fig), rate, "pts");
    if (base_rate > 0) {
        fmt_rate(row->base, sizeof(row->base), base_rate, "pts");
        snprintf(row->ratio, sizeof(row->ratio), "%.2f", rate / base_rate);
        row->met = yes_no(rate / base_rate >= 0.7);
    } else {
        snprintf(row->base, sizeof(row->base), "(run B1)");
    }

    row = row_add("B8", "trackd RSS idle after start", "<= 16 MB");
    snprintf(row->fig, sizeof(row->fig), "%.1f MB", (double)idle_kb / 1024);
    row->met = yes_no(idle_kb >= 0 && idle_kb <= 16 * 1024);
    row = row_add("B8", "trackd peak RSS (VmHWM) under B2", "<= 64 MB");
    snprintf(row->fig, sizeof(row->fig), "%.1f MB", (double)hwm / 1024);
    row->met = yes_no(hwm > 0 && hwm <= 64 * 1024);
}

/* ---- B3 -------------------------------------------------------------------------- */

static void bench_b3(void)
{
    struct bench_daemon d;
    struct bench_proc echo;
    char uri[700], ns[32], size[32], line[256];
    double tag[MAX_REPS], bare[MAX_REPS];
    size_t frame = bench_settag_frame_size();

    snprintf(uri, sizeof(uri), "ipc://%s/echo.sock", cfg.root);
    snprintf(ns, sizeof(ns), "%lld", (long long)cfg.b3_n);
    snprintf(size, sizeof(size), "%zu", frame);
    if (bench_daemon_start(&d, cfg.trackd, cfg.root, "b3") < 0) {
        fail_section("B3", "trackd did not start");
        return;
    }
    if (worker_spawn(&echo, "echo-server", uri, NULL, NULL, NULL) < 0 ||
        bench_read_line(&echo, line, sizeof(line), 30000) < 0) {
        bench_kill(&echo);
        bench_daemon_stop(&d);
        fail_section("B3", "echo server did not start");
        return;
    }
    for (int r = 0; r < cfg.reps; r++) {
        long long t, n;
        if (worker_line("echo-client", uri, ns, size, NULL, line, sizeof(line)) < 0 ||
            sscanf(line, "%lld %lld", &t, &n) != 2) {
            fail_section("B3", "echo client failed");
            goto out;
        }
        bare[r] = (double)n * 1e9 / (double)t;
        if (worker_line("settag", d.uri, ns, NULL, NULL, line, sizeof(line)) < 0 ||
            sscanf(line, "%lld %lld", &t, &n) != 2) {
            fail_section("B3", "set-tag client failed");
            goto out;
        }
        tag[r] = (double)n * 1e9 / (double)t;
        note("  B3 rep %d: echo %.0f rt/s, set tag %.0f rt/s (frame %zu B)", r + 1, bare[r], tag[r],
             frame);
    }
    double t = bench_median(tag, cfg.reps), b = bench_median(bare, cfg.reps);
    char what[80];
    snprintf(what, sizeof(what), "set-tag round trips, 1 client (%zu B frame)", frame);
    struct row *row = row_add("B3", what, "ratio >= 0.8");
    fmt_rate(row->fig, sizeof(row->fig), t, "rt");
    fmt_rate(row->base, sizeof(row->base), b, "rt");
    snprintf(row->ratio, sizeof(row->ratio), "%.2f", t / b);
    row->met = yes_no(t / b >= 0.8);

    /* the ceiling: a round trip can cost no less than the echo's plus the
     * storage work of the request itself, measured alone on the same disk */
    char db[800], msg[300];
    double us = 0;
    snprintf(db, sizeof(db), "%s/b3-storage.db", cfg.root);
    if (bench_tag_commits(db, cfg.b3_n, &us, msg, sizeof(msg)) == 0) {
        double ceiling = (1e6 / b) / (1e6 / b + us);
        struct row *c = row_add("B3c", "ceiling: echo + the same storage work alone", "-");
        snprintf(c->fig, sizeof(c->fig), "%.1f us/commit", us);
        snprintf(c->base, sizeof(c->base), "%.1f us/echo", 1e6 / b);
        snprintf(c->ratio, sizeof(c->ratio), "%.2f", ceiling);
        c->met = "-";
        note("  B3 ceiling: storage alone %.1f us per set-tag commit, echo %.1f us: ratio at most "
             "%.2f",
             us, 1e6 / b, ceiling);
    } else {
        note("  B3 ceiling not measured: %s", msg);
    }
out:
    bench_kill(&echo);
    bench_daemon_stop(&d);
}

/* ---- B7 ------------------------------------------------------------------------------ */

/* One B7 read: a row for reads of `page` points at a time (0: trackd's
 * limit). */
static void b7_row(struct bench_daemon *d, const char *id, int64_t page)
{
    char n[32], reps[32], pg[32], line[600], what[80];
    double med;
    long long pts, pages;

    snprintf(n, sizeof(n), "%lld", (long long)cfg.b7_n);
    snprintf(reps, sizeof(reps), "%d", cfg.reps < 3 ? 3 : cfg.reps);
    snprintf(pg, sizeof(pg), "%lld", (long long)page);
    if (page)
        snprintf(what, sizeof(what), "metric history, %.0e pts of 1 key, max_points %lld",
                 (double)cfg.b7_n, (long long)page);
    else
        snprintf(what, sizeof(what), "metric history, %.0e pts of 1 key, max_points 0",
                 (double)cfg.b7_n);
    if (worker_line("history", d->uri, n, reps, pg, line, sizeof(line)) < 0) {
        fail_section(id, "history worker failed");
        return;
    }
    struct row *row = row_add(id, what, ">= 5 M pts/s");
    if (strncmp(line, "refused ", 8) == 0) {
        note("  %s max_points %lld: trackd refused the read: %s", id, (long long)page, line + 8);
        snprintf(row->fig, sizeof(row->fig), "refused (frame limit)");
        row->met = "no";
        return;
    }
    if (sscanf(line, "%lf %lld %lld", &med, &pts, &pages) != 3) {
        fail_section(id, "history worker said something else");
        return;
    }
    note("  %s max_points %lld: %lld points in %lld page(s), median %.1f ms", id, (long long)page,
         pts, pages, med / 1e6);
    double rate = (double)pts * 1e9 / med;
    fmt_rate(row->fig, sizeof(row->fig), rate, "pts");
    row->met = yes_no(rate >= 5e6);
}

static void bench_b7(void)
{
    struct bench_daemon d;

    if (bench_daemon_start(&d, cfg.trackd, cfg.root, "b7") < 0) {
        fail_section("B7", "trackd did not start");
        return;
    }
    b7_row(&d, "B7", 0);
    b7_row(&d, "B7b", B7_PAGE);
    bench_daemon_stop(&d);
}

/* ---- set-up ---------------------------------------------------------------------------- */

static void machine(void)
{
    char line[512], model[256] = "unknown";
    long mem_kb = 0;
    struct utsname u;
    FILE *f = fopen("/proc/cpuinfo", "r");

    if (f) {
        while (fgets(line, sizeof(line), f)) {
            char *c = strchr(line, ':');
            if (strncmp(line, "model name", 10) == 0 && c) {
                snprintf(model, sizeof(model), "%s", c + 2);
                model[strcspn(model, "\n")] = '\0';
                break;
            }
        }
        fclose(f);
    }
    f = fopen("/proc/meminfo", "r");
    if (f) {
        while (fgets(line, sizeof(line), f))
            if (strncmp(line, "MemTotal:", 9) == 0)
                mem_kb = strtol(line + 9, NULL, 10);
        fclose(f);
    }
    uname(&u);
    printf("machine: %s, %ld cores online, %.1f GiB RAM, Linux %s; SQLite %s\n", model,
           sysconf(_SC_NPROCESSORS_ONLN), (double)mem_kb / 1048576, u.release,
           sqlite3_libversion());
    printf("data: %s\n", cfg.root);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: track-bench [--smoke | --quick] [--only B1,B3,...] [--reps N] [--dir DIR]\n"
               "                   [--keep] [--clients N] [--trackd PATH] [--track PATH]\n"
               "  --smoke   tiny sizes, a few seconds (CI keeps it compiling and running)\n"
               "  --quick   full sizes but B10 skips 1e7 points\n"
               "  --only    run only these benchmarks (B8 comes with B2, B9 with B1)\n"
               "  --reps N  repetitions of each timed figure (median reported; default 3)\n"
               "  --dir D   parent of the temporary data directory (default $TMPDIR or /tmp)\n"
               "  --keep    keep the temporary data\n"
               "  --clients N  B11's concurrent clients (default 20; at most 64)\n"
               "Prints figures, never pass/fail: exit 0 unless a benchmark could not run.\n");
}

static int64_t opt_i64(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (*end || v < 1) {
        fprintf(stderr, "track-bench: expected a positive number, got \"%s\"\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"smoke", no_argument, NULL, 's'},
        {"quick", no_argument, NULL, 'q'},
        {"only", required_argument, NULL, 'o'},
        {"reps", required_argument, NULL, 'r'},
        {"dir", required_argument, NULL, 'd'},
        {"keep", no_argument, NULL, 'k'},
        {"trackd", required_argument, NULL, 'T'},
        {"track", required_argument, NULL, 't'},
        {"clients", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *parent = getenv("TMPDIR"), *trackd = NULL, *track = NULL;
    int opt, reps = 0, clients = 0;

    if (argc > 1 && strcmp(argv[1], "--worker") == 0)
        return bench_worker_main(argc, argv);
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            cfg.smoke = 1;
            break;
        case 'q':
            cfg.quick = 1;
            break;
        case 'o':
            cfg.only = optarg;
            break;
        case 'r':
            reps = (int)opt_i64(optarg);
            break;
        case 'd':
            parent = optarg;
            break;
        case 'k':
            cfg.keep = 1;
            break;
        case 'c':
            clients = (int)opt_i64(optarg);
            break;
        case 'T':
            trackd = optarg;
            break;
        case 't':
            track = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    bench_sibling(cfg.self, sizeof(cfg.self), "track-bench");
    if (trackd)
        snprintf(cfg.trackd, sizeof(cfg.trackd), "%s", trackd);
    else
        bench_sibling(cfg.trackd, sizeof(cfg.trackd), "trackd");
    if (track)
        snprintf(cfg.track, sizeof(cfg.track), "%s", track);
    else
        bench_sibling(cfg.track, sizeof(cfg.track), "track");
    if (access(cfg.trackd, X_OK) != 0) {
        fprintf(stderr, "track-bench: no trackd at %s (--trackd PATH)\n", cfg.trackd);
        return 1;
    }

    if (cfg.smoke) {
        cfg.reps = 1;
        cfg.b1_n = 10000;
        cfg.b2_n = 10000;
        cfg.b3_n = 300;
        cfg.b4_n = 10;
        cfg.b5_runs = 3;
        cfg.b5_keys = 4;
        cfg.b5_n = 1000;
        cfg.b6_runs = 100;
        cfg.b7_n = 10000;
        cfg.b10[cfg.n_b10++] = 1000;
        cfg.b10[cfg.n_b10++] = 10000;
        cfg.b12_bytes = 8 << 20;
        cfg.b11_clients = 2;
        cfg.b11_iters = 3;
        cfg.b15_n = 10000;
    } else {
        cfg.b12_bytes = cfg.quick ? 256LL << 20 : 1LL << 30;
        cfg.reps = 3;
        cfg.b1_n = 1000000;
        cfg.b2_n = 1000000;
        cfg.b3_n = 20000;
        cfg.b4_n = 200;
        cfg.b5_runs = 10;
        cfg.b5_keys = 4;
        cfg.b5_n = 100000;
        cfg.b6_runs = 10000;
        cfg.b7_n = 1000000;
        cfg.b11_clients = 20;
        cfg.b11_iters = 100;
        cfg.b15_n = 1000000;
        cfg.b10[cfg.n_b10++] = 10000;
        cfg.b10[cfg.n_b10++] = 100000;
        cfg.b10[cfg.n_b10++] = 1000000;
        if (!cfg.quick)
            cfg.b10[cfg.n_b10++] = 10000000;
    }
    if (reps)
        cfg.reps = reps > MAX_REPS ? MAX_REPS : reps;
    if (clients)
        cfg.b11_clients = clients;

    snprintf(cfg.root, sizeof(cfg.root), "%s/track-bench.XXXXXX",
             parent && *parent ? parent : "/tmp");
    if (!mkdtemp(cfg.root)) {
        fprintf(stderr, "track-bench: cannot create %s: %s\n", cfg.root, strerror(errno));
        return 1;
    }
    snprintf(worker_log, sizeof(worker_log), "%s/workers.log", cfg.root);

    printf("track-bench (%s mode)\n", cfg.smoke ? "smoke" : cfg.quick ? "quick" : "full");
    machine();
    printf("B1/B2/B10 baseline: raw SQLite, one row per point (what a naive tracker does):\n"
           "  %s;\n"
           "  %s, prepared once, one transaction per 1000 rows, trackd's pragmas\n"
           "  (WAL, synchronous=NORMAL, cache_size=-32768, temp_store=MEMORY).\n"
           "  B2 is compared with the same single-writer rate: SQLite has one writer.\n"
           "B3 baseline: bare nanomsg REQ/REP echo (ipc://) of a frame the size of the set-tag\n"
           "  request. B4 baseline: /bin/true spawned the same way. Medians of %d reps.\n\n",
           bench_base_schema, bench_base_insert, cfg.reps);
    fflush(stdout);

    double b1_rate = 0, b1_cpu = 0;
    if (wanted("B1") || wanted("B9")) {
        note("B1: 1 client ingest vs raw SQLite (and B9)");
        bench_b1(&b1_rate, &b1_cpu);
    }
    if (wanted("B2") || wanted("B8")) {
        note("B2: %d clients (and B8)", B2_CLIENTS);
        bench_b2();
    }
    if (wanted("B3")) {
        note("B3: set-tag round trips vs nanomsg echo");
        bench_b3();
    }
    if (wanted("B4")) {
        note("B4: track log-metric per process");
        bench_b4();
    }
    if (wanted("B5")) {
        note("B5: track compare");
        bench_b5();
    }
    if (wanted("B6")) {
        note("B6: track runs --filter");
        bench_b6();
    }
    if (wanted("B7")) {
        note("B7: metric history read");
        bench_b7();
    }
    if (wanted("B10")) {
        note("B10: ingest scaling");
        bench_b10(b1_rate, b1_cpu);
    }
    if (wanted("B18")) {
        note("B18: sealed vs plain tcp:// (loopback)");
        struct bench_b18_cfg b18 = {.trackd = cfg.trackd,
                                    .root = cfg.root,
                                    .reps = cfg.reps,
                                    .keep = cfg.keep,
                                    .rt_n = cfg.b3_n,
                                    .ingest_n = cfg.b1_n,
                                    .worker = b18_worker,
                                    .ingest = b18_ingest,
                                    .row = b18_row,
                                    .fail = fail_section};
        bench_b18(&b18);
    }
    if (wanted("B11")) {
        note("B11: mixed load through the MLflow HTTP front vs nanomsg (%d clients)",
             cfg.b11_clients);
        bench_b11();
    }
    if (wanted("B16")) {
        note("B16: OTLP trace ingest through the HTTP front vs metric ingest");
        bench_b16();
    }
    if (wanted("B17")) {
        note("B17: trace show of a 50,000-span trace, trace search over 10^5 traces");
        bench_b17();
    }
    if (wanted("B15")) {
        note("B15: log-batch of 1000 points through HTTP vs nanomsg");
        bench_b15();
    }
    if (wanted("B12") || wanted("B13")) {
        note("B12/B13: artifact upload, download and dedup");
        bench_b12();
    }

    printf("\n");
    print_table();
    printf("\nB6 filter: %s, order by %s. \"met?\" is information, not a verdict.\n", B6_FILTER,
           B6_ORDER);
    if (wanted("B11"))
        printf("B11's ratios are HTTP / nanomsg latency (lower is better); mlflow-go publishes\n"
               "  18 ms and MLflow 58 ms for a log-batch of 10 on PostgreSQL.\n");
    if (n_failed)
        printf("%d benchmark(s) could not run; see the messages above.\n", n_failed);
    if (!cfg.keep)
        bench_rm_rf(cfg.root);
    else
        printf("kept %s\n", cfg.root);
    return n_failed ? 1 : 0;
}
