/*
 * bench.h: what the parts of track-bench share.
 *
 * track-bench is one program in two roles. Run normally it is the
 * orchestrator: it spawns trackd, its own workers and the `track` CLI, times
 * the raw SQLite baseline itself, and prints the table. It never opens a
 * nanomsg socket, so it may fork at any moment (nanomsg's threads do not
 * survive fork). Run as `track-bench --worker MODE ARGS...` it is a worker:
 * a fresh process that talks to trackd through libtrack (or to the echo
 * server through bare nanomsg) and prints its measurements as one line of
 * numbers on stdout.
 *
 *   bench.c     the orchestrator: options, B1-B3 and B7-B10, the table
 *   cli.c       the CLI's benchmarks, B4-B6 (orch.h: what the orchestrator's
 *               files share)
 *   b12.c       B12 and B13, artifacts
 *   b18.c       B18, sealed vs plain tcp://
 *   b11.c       B11 and B15, the MLflow HTTP front against libtrack
 *   b11_worker.c their worker modes (an HTTP client, a libtrack client)
 *   httpc.c     a minimal HTTP/1.1 client over plain sockets
 *   scale.c     track-scale-bench, B21 (its own program)
 *   worker.c    worker modes (everything that uses libtrack or nanomsg)
 *   baseline.c  the raw SQLite baseline of B1 (one row per point)
 *   util.c      clocks, processes, trackd start/stop, /proc, files
 */
#ifndef TRACK_BENCH_H
#define TRACK_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The set-tag request of B3, and the frame the echo baseline sends. */
#define BENCH_TAG_KEY    "bench.tag"
#define BENCH_TAG_VALUE  "value-%06d" /* formatted with a counter: same length */
#define BENCH_TAG_VALLEN 12

/* The keys a B1 client logs, alternately, one step per pair. */
#define BENCH_KEY_A "train/loss"
#define BENCH_KEY_B "train/acc"

/* ---- the points every ingest benchmark logs -------------------------------
 * Point i is key A when i is even, key B when odd, at step i / 2; the value
 * is a smooth training curve plus full-precision noise, as real losses are
 * (so value compression is not flattered). The baseline inserts the same. */
static inline uint64_t bench_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline double bench_noise(uint64_t i)
{
    return (double)(bench_mix(i) >> 11) * (1.0 / 9007199254740992.0);
}

static inline void bench_point(int64_t i, const char **key, int64_t *step, double *value)
{
    int64_t s = i / 2;
    double decay = 1.0 / (1.0 + (double)s * 1e-5); /* cheaper than exp(), as smooth */

    *step = s;
    if ((i & 1) == 0) {
        *key = BENCH_KEY_A;
        *value = 2.0 * decay + 0.05 * bench_noise((uint64_t)i);
    } else {
        *key = BENCH_KEY_B;
        *value = 1.0 - 0.9 * decay - 0.02 * bench_noise((uint64_t)i);
    }
}

/* ---- util.c ----------------------------------------------------------------- */
int64_t bench_now_ns(void); /* CLOCK_MONOTONIC, comparable across processes */
int64_t bench_wall_ms(void);
void bench_sleep_ms(int ms);
double bench_median(double *v, int n); /* sorts v */

/* A child process with optional pipes to its stdin and from its stdout. */
struct bench_proc {
    pid_t pid;
    int in_fd;  /* -1 when not piped */
    int out_fd; /* -1 when not piped */
};

/* Forks and execs argv[0] (a path). The child gets a pipe on stdin when
 * pipe_in, on stdout when pipe_out (else /dev/null), and stderr appended to
 * err_path (NULL: inherited). Returns 0 or -1 with errno. */
int bench_spawn(struct bench_proc *p, char *const argv[], int pipe_in, int pipe_out,
                const char *err_path);
/* Reads one line from the child's stdout within timeout_ms (newline
 * stripped). Returns its length, or -1 on EOF, error or timeout. */
int bench_read_line(struct bench_proc *p, char *buf, size_t cap, int timeout_ms);
/* Writes one byte to the child's stdin ("go"). */
int bench_poke(struct bench_proc *p);
/* Waits for the child; returns its exit status, 128+signal, or -1. Closes
 * the pipes. */
int bench_wait(struct bench_proc *p);
/* SIGKILLs and reaps a child that is still there (cleanup after errors). */
void bench_kill(struct bench_proc *p);

/* fork + exec argv with stdout and stderr on /dev/null, then waitpid: one
 * spawned command, as a shell script would run it. Returns exit status. */
int bench_run_quiet(char *const argv[]);

/* A trackd on its own data directory and ipc:// socket. */
struct bench_daemon {
    struct bench_proc proc;
    char dir[512];
    char uri[600];
    char db[600];
    char log[600];
};

/* Starts `trackd --data-dir ROOT/name --listen ipc://ROOT/name/trackd.sock`
 * and waits until its socket accepts connections. */
int bench_daemon_start(struct bench_daemon *d, const char *trackd, const char *root,
                       const char *name);
/* The same with extra arguments (NULL-ended) after the ipc listener; the
 * data directory is kept as it is when keep_dir, else made afresh. */
int bench_daemon_start_ex(struct bench_daemon *d, const char *trackd, const char *root,
                          const char *name, const char *const *extra, int keep_dir);
/* SIGTERM (trackd drains, checkpoints the WAL and exits); returns its exit
 * status. */
int bench_daemon_stop(struct bench_daemon *d);

/* A "VmRSS:"-style field of /proc/PID/status, in kB; -1 when absent. */
long bench_proc_kb(pid_t pid, const char *field);
/* CPU time of every thread of PID so far (/proc/PID/task/N/schedstat), in
 * ns; threads that already exited are not counted. -1 when gone. */
int64_t bench_proc_cpu_ns(pid_t pid);
/* Size of a file in bytes, 0 when absent. */
int64_t bench_file_size(const char *path);
/* out = the program `name` in this program's directory (bin/), or `name`
 * alone when that cannot be worked out. */
void bench_sibling(char *out, size_t cap, const char *name);
/* Removes a directory tree (best effort). */
void bench_rm_rf(const char *path);

/* ---- b18.c: sealed vs plain tcp:// ---------------------------------------- */
struct bench_b18_cfg {
    const char *trackd, *root;
    int reps, keep;
    int64_t rt_n, ingest_n;
    /* the orchestrator's: a worker's one line, an ingest of n points, a
     * table row (figure a vs baseline b, ratio a / b against goal), a failure */
    int (*worker)(const char *mode, const char *uri, const char *a1, char *line, size_t cap);
    int (*ingest)(struct bench_daemon *d, int64_t n, double *secs, double *cpu);
    void (*row)(const char *id, const char *what, const char *target, double a, double b,
                const char *unit, double goal);
    void (*fail)(const char *id, const char *why);
};
void bench_b18(const struct bench_b18_cfg *c);

/* ---- httpc.c: a minimal HTTP/1.1 client (B11, B15) ----------------------- */
/* One keep-alive connection to ADDR:PORT (IPv4 literal). The last answer's
 * body is in body (NUL-terminated, body_len bytes) until the next request;
 * connects counts the connections made; err says what failed. */
struct bench_http {
    int fd, port, connects;
    char host[64];
    char *buf, *req; /* the answer read, the request written */
    size_t cap, req_cap, have;
    char *body;
    size_t body_len;
    char err[256];
};
/* Connects; 0, or -1 with h->err (release with bench_http_close either way). */
int bench_http_open(struct bench_http *h, const char *hostport);
void bench_http_close(struct bench_http *h);
/* POST path with a JSON body; 0 with *status and h->body, or -1 with
 * h->err. A connection found closed before any answer is made afresh and
 * the request sent once more. */
int bench_http_post(struct bench_http *h, const char *path, const char *body, size_t len,
                    int *status);
/* The same with another Content-Type (B16's application/x-protobuf). */
int bench_http_post_as(struct bench_http *h, const char *path, const char *ctype, const char *body,
                       size_t len, int *status);
/* The string value of the first "field":"..." in body into out; 0 or -1. */
int bench_http_json_str(const char *body, const char *field, char *out, size_t cap);
/* A TCP port on 127.0.0.1 free a moment ago, or -1. */
int bench_free_port(void);

/* ---- b11_worker.c ------------------------------------------------------------ */
/* B11's operations, in this order per timed sample (the latency files'
 * first column). */
enum { B11_OP_LOG = 0, B11_OP_CREATE = 1, B11_OP_SEARCH = 2, B11_N_OPS = 3 };
#define B11_LOGS_PER_ITER 8  /* log-batch requests per iteration, then 1 create, 1 search */
#define B11_BATCH         10 /* metrics per log-batch */
#define B11_SEARCH_MAX    10 /* max_results of the search */
/* The worker modes of B11 and B15: the exit status, or -1 when argv's mode
 * is not one of them. */
int bench_b11_worker(int argc, char **argv);

/* ---- b16.c: OTLP trace ingest --------------------------------------------------- */
#define B16_SPANS_PER_TRACE 100
#define B16_TRACES_PER_POST 5 /* an SDK's batch processor sends up to 512 spans at once */
/* B16's worker mode (otlp-http ADDR:PORT TRACES): the exit status, or -1 when
 * argv's mode is not it. */
int bench_b16_worker(int argc, char **argv);

/* ---- baseline.c ------------------------------------------------------------ */
struct bench_base_result {
    double secs;      /* first BEGIN to last COMMIT */
    double cpu_secs;  /* CPU time of this process meanwhile */
    int64_t db_bytes; /* database file after a truncating checkpoint */
};
/* Inserts points 0..n-1 (bench_point) one row per point into a new
 * database at path, as a naive tracker does; see baseline.c. */
int bench_baseline(const char *path, int64_t n, struct bench_base_result *r, char *msg, size_t cap);
/* Microseconds of storage work per set-tag request, alone (B3's ceiling). */
int bench_tag_commits(const char *path, int64_t n, double *us_each, char *msg, size_t cap);
/* The baseline's schema and statement, printed in the report. */
extern const char *const bench_base_schema;
extern const char *const bench_base_insert;

/* ---- worker.c ------------------------------------------------------------- */
/* `track-bench --worker MODE ...`: returns the process's exit status. */
int bench_worker_main(int argc, char **argv);
/* Packed size of the B3 set-tag request (protobuf-c, no socket). */
size_t bench_settag_frame_size(void);

#endif
