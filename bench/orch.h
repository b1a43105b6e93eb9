/*
 * orch.h: what track-bench's orchestrator files share (bench.c: options,
 * the table, workers, B1-B3, B7-B10; cli.c: B4-B6, the CLI's benchmarks;
 * b12.c: B12 and B13, artifacts; b11.c: B11 and B15, the HTTP front). Only the orchestrating
 * process includes it; bench.h is what it shares with the workers.
 */
#ifndef TRACK_BENCH_ORCH_H
#define TRACK_BENCH_ORCH_H

#include <stdint.h>
#include <stddef.h>

#define MAX_REPS 15
#define CLI_REPS 5

struct bench_cfg {
    int smoke, quick, reps, keep;
    const char *only;
    char self[1100], trackd[1100], track[1100];
    char root[512];
    int64_t b1_n, b2_n, b3_n, b4_n, b5_runs, b5_keys, b5_n, b6_runs, b7_n;
    int64_t b10[4];
    int n_b10;
    int64_t b12_bytes;
    int b11_clients;
    int64_t b11_iters, b15_n;
};

/* One line of the table. */
struct row {
    char id[8], what[72], fig[40], base[40], ratio[16], target[24];
    const char *met;
};

extern struct bench_cfg cfg;

/* bench.c: progress on stderr, a section that could not run, a new row,
 * a rate with its unit, "yes"/"no", and one worker's one line of output */
__attribute__((format(printf, 1, 2))) void note(const char *fmt, ...);
void fail_section(const char *id, const char *why);
struct row *row_add(const char *id, const char *what, const char *target);
void fmt_rate(char *buf, size_t cap, double per_s, const char *unit);
const char *yes_no(int ok);
int worker_line(const char *mode, const char *uri, const char *a1, const char *a2, const char *a3,
                char *line, size_t cap);
struct bench_proc;
/* `self --worker MODE URI ARGS...` (up to four, ending at the first NULL),
 * stdin and stdout piped */
int worker_spawn4(struct bench_proc *p, const char *mode, const char *uri, const char *a1,
                  const char *a2, const char *a3, const char *a4);

/* cli.c; B6's search, printed under the table */
#define B6_FILTER "params.optimizer = 'adam' and metrics.loss < 0.5"
#define B6_ORDER  "metrics.loss"
int have_cli(const char *id); /* 0 (and the section failed) without `track` */
double cli_median_ms(char *const argv[]);
void bench_b4(void);
void bench_b5(void);
void bench_b6(void);

/* b12.c */
void bench_b12(void);

/* b11.c: the MLflow HTTP front against libtrack */
void bench_b11(void);
void bench_b15(void);
/* One worker's timed run ("ready", a poke, "t0 t1 n cpu_ns"), n checked
 * against want: units a second, per CPU second of the worker and trackd,
 * and CPU ns a unit of each. 0, or -1 (the worker killed). */
struct bench_rate {
    double rate, cpu_rate, client_ns, daemon_ns;
};
int bench_worker_rate(struct bench_daemon *d, const char *mode, const char *target, const char *a1,
                      const char *a2, const char *a3, int64_t want, struct bench_rate *out);
/* Starts trackd with --http on a free loopback port (hp: ADDR:PORT) and
 * waits for the front; 0 or -1. */
int bench_start_http_daemon(const char *name, struct bench_daemon *d, char *hp, size_t cap);
/* b16.c: OTLP ingest through the HTTP front against metric ingest */
void bench_b16(void);
/* b16.c: trace show and trace search at 10^5 traces */
void bench_b17(void);

#endif
