/*
 * cli.c: track-bench's benchmarks of the `track` CLI: B4 (one process per
 * `log-metric` against /bin/true), B5 (`compare` of 10 runs x 4 metrics x
 * 10^5 points) and B6 (`runs --filter` over 10^4 runs). Moved out of
 * bench.c as it was; orch.h is what they share.
 */
#include "bench.h"
#include "orch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- B4, B5, B6: the CLI ---------------------------------------------------------- */

int have_cli(const char *id)
{
    if (access(cfg.track, X_OK) == 0)
        return 1;
    char why[1200];
    snprintf(why, sizeof(why), "no `track` CLI at %s", cfg.track);
    fail_section(id, why);
    return 0;
}

/* Mean ms of `count` spawns of argv; -1 when one fails. When vary_step is
 * not 0, argv[vary_step] is a caller's buffer of STEP_CAP bytes that gets
 * the call's number (so each `log-metric --step` is a new step). */
#define STEP_CAP 32
static double spawn_ms(char *const argv[], int count, int vary_step)
{
    int64_t t0 = bench_now_ns();

    for (int i = 0; i < count; i++) {
        if (vary_step)
            snprintf(argv[vary_step], STEP_CAP, "%d", i);
        int st = bench_run_quiet(argv);
        if (st != 0) {
            note("  `%s %s ...` exited %d", argv[0], argv[1] ? argv[1] : "", st);
            return -1;
        }
    }
    return (double)(bench_now_ns() - t0) / 1e6 / count;
}

void bench_b4(void)
{
    struct bench_daemon d;
    char line[256], steps[STEP_CAP] = "0";
    double t_track[MAX_REPS], t_true[MAX_REPS];
    int n = (int)cfg.b4_n;

    if (!have_cli("B4"))
        return;
    if (bench_daemon_start(&d, cfg.trackd, cfg.root, "b4") < 0) {
        fail_section("B4", "trackd did not start");
        return;
    }
    if (worker_line("run-start", d.uri, NULL, NULL, NULL, line, sizeof(line)) < 0 ||
        strlen(line) != 32) {
        fail_section("B4", "run start failed");
        goto out;
    }
    setenv("TRACK_RUN_ID", line, 1);
    setenv("TRACK_NO_AUTOSTART", "1", 1);
    char *cli[] = {cfg.track,
                   (char *)(uintptr_t) "--server",
                   d.uri,
                   (char *)(uintptr_t) "log-metric",
                   (char *)(uintptr_t) "loss",
                   (char *)(uintptr_t) "0.5",
                   (char *)(uintptr_t) "--step",
                   steps,
                   NULL};
    char *tru[] = {(char *)(uintptr_t) "/bin/true", NULL};
    if (spawn_ms(cli, 5, 7) < 0) {
        fail_section("B4", "track log-metric failed");
        goto out;
    }
    for (int r = 0; r < cfg.reps; r++) {
        t_true[r] = spawn_ms(tru, n, 0);
        t_track[r] = spawn_ms(cli, n, 7);
        if (t_true[r] < 0 || t_track[r] < 0) {
            fail_section("B4", "a spawned command failed");
            goto out;
        }
        note("  B4 rep %d: track log-metric %.3f ms/call, /bin/true %.3f ms/call", r + 1,
             t_track[r], t_true[r]);
    }
    double a = bench_median(t_track, cfg.reps), b = bench_median(t_true, cfg.reps);
    char what[80];
    snprintf(what, sizeof(what), "`track log-metric`, one process per call (%d calls)", n);
    struct row *row = row_add("B4", what, "<= 3 ms");
    snprintf(row->fig, sizeof(row->fig), "%.2f ms/call", a);
    snprintf(row->base, sizeof(row->base), "%.2f ms/call", b);
    snprintf(row->ratio, sizeof(row->ratio), "%.1f", a / b);
    row->met = yes_no(a <= 3.0);
out:
    unsetenv("TRACK_RUN_ID");
    unsetenv("TRACK_NO_AUTOSTART");
    bench_daemon_stop(&d);
}

/* Median ms of CLI_REPS runs of argv after one warm-up run. */
double cli_median_ms(char *const argv[])
{
    double t[CLI_REPS];

    if (spawn_ms(argv, 1, 0) < 0)
        return -1;
    for (int i = 0; i < CLI_REPS; i++)
        if ((t[i] = spawn_ms(argv, 1, 0)) < 0)
            return -1;
    return bench_median(t, CLI_REPS);
}

/* B5 on a fresh trackd whose runs were logged with opts.flush_points
 * `flush`: how the points were batched decides how many chunks each series
 * has, and so which path trackd's curve downsampling takes. */
static void b5_once(const char *id, int flush)
{
    struct bench_daemon d;
    struct bench_proc p;
    char r[32], k[32], n[32], fl[32], line[256], name[16];
    char hex[16][33];
    int nh = 0;

    snprintf(name, sizeof(name), "%s", id);
    for (char *c = name; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    if (bench_daemon_start(&d, cfg.trackd, cfg.root, name) < 0) {
        fail_section(id, "trackd did not start");
        return;
    }
    snprintf(r, sizeof(r), "%lld", (long long)cfg.b5_runs);
    snprintf(k, sizeof(k), "%lld", (long long)cfg.b5_keys);
    snprintf(n, sizeof(n), "%lld", (long long)cfg.b5_n);
    snprintf(fl, sizeof(fl), "%d", flush);
    int64_t t0 = bench_now_ns();
    if (worker_spawn4(&p, "pop-compare", d.uri, r, k, n, fl) < 0) {
        fail_section(id, "cannot start the populating worker");
        goto out;
    }
    while (bench_read_line(&p, line, sizeof(line), 1800 * 1000) >= 0 && strcmp(line, "done")) {
        if (strlen(line) == 32 && nh < 16)
            memcpy(hex[nh++], line, 33);
    }
    if (bench_wait(&p) != 0 || nh != cfg.b5_runs) {
        fail_section(id, "populating failed");
        goto out;
    }
    note("  %s populated %d runs x %lld metrics x %lld points (flush_points %d) in %.1f s", id, nh,
         (long long)cfg.b5_keys, (long long)cfg.b5_n, flush, (double)(bench_now_ns() - t0) / 1e9);
    char *argv[24];
    int a = 0;
    argv[a++] = cfg.track;
    argv[a++] = (char *)(uintptr_t) "--server";
    argv[a++] = d.uri;
    argv[a++] = (char *)(uintptr_t) "compare";
    for (int i = 0; i < nh; i++)
        argv[a++] = hex[i];
    argv[a] = NULL;
    double ms = cli_median_ms(argv);
    if (ms < 0) {
        fail_section(id, "track compare failed");
        goto out;
    }
    char what[80];
    snprintf(what, sizeof(what), "`track compare` %lldx%lldx%.0e pts, logged flush %d",
             (long long)cfg.b5_runs, (long long)cfg.b5_keys, (double)cfg.b5_n, flush);
    struct row *row = row_add(id, what, "<= 50 ms");
    snprintf(row->fig, sizeof(row->fig), "%.1f ms", ms);
    row->met = yes_no(ms <= 50);
out:
    bench_daemon_stop(&d);
}

void bench_b5(void)
{
    if (!have_cli("B5"))
        return;
    b5_once("B5", 8192);
    b5_once("B5b", 262144);
}

void bench_b6(void)
{
    struct bench_daemon d;
    char r[32], line[256];

    if (!have_cli("B6"))
        return;
    if (bench_daemon_start(&d, cfg.trackd, cfg.root, "b6") < 0) {
        fail_section("B6", "trackd did not start");
        return;
    }
    snprintf(r, sizeof(r), "%lld", (long long)cfg.b6_runs);
    if (worker_line("pop-runs", d.uri, r, NULL, NULL, line, sizeof(line)) < 0 ||
        strncmp(line, "done ", 5) != 0) {
        fail_section("B6", "populating failed");
        goto out;
    }
    note("  B6 populated %lld runs in %.1f s", (long long)cfg.b6_runs,
         strtod(line + 5, NULL) / 1e9);
    char *argv[] = {cfg.track,
                    (char *)(uintptr_t) "--server",
                    d.uri,
                    (char *)(uintptr_t) "runs",
                    (char *)(uintptr_t) "--filter",
                    (char *)(uintptr_t)B6_FILTER,
                    (char *)(uintptr_t) "--order-by",
                    (char *)(uintptr_t)B6_ORDER,
                    NULL};
    double ms = cli_median_ms(argv);
    if (ms < 0) {
        fail_section("B6", "track runs failed");
        goto out;
    }
    char what[80];
    snprintf(what, sizeof(what), "`track runs --filter` (2 terms, by a metric) over %.0e runs",
             (double)cfg.b6_runs);
    struct row *row = row_add("B6", what, "<= 50 ms");
    snprintf(row->fig, sizeof(row->fig), "%.1f ms", ms);
    row->met = yes_no(ms <= 50);
out:
    bench_daemon_stop(&d);
}
