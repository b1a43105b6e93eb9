/*
 * fixture.h: shared test fixtures. A real trackd on a temporary data
 * directory and ipc socket, started as a separate process (fork+exec before
 * the test opens any nanomsg socket), stopped with SIGTERM, its log printed
 * when a test fails; a runner for the built `track` binary; libtrack
 * clients on such a daemon; local files; a small tmpfs for full-disk tests.
 * The helpers that take no status back fail the running Criterion test
 * (cr_assert) naming what went wrong.
 */
#ifndef TRACK_FIXTURE_H
#define TRACK_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct track_client;
struct track_err;

struct fx_daemon {
    pid_t pid;
    char dir[256]; /* temporary data directory (also holds socket and log) */
    char uri[320]; /* ipc://DIR/trackd.sock */
    char log[320];
    char spool[320]; /* a spool path inside dir for clients */
    int bad_stop;    /* first status other than 0 of a stop (-1: would not stop) */
    int no_log_flag; /* set before a (re)start: no --log-level debug, the
                      * config file decides */
};

/* Makes a temp dir and starts trackd on it with extra args (NULL-terminated
 * list, may be NULL). Waits until the socket accepts. 0 or -1. */
int fx_daemon_start(struct fx_daemon *d, const char *const *extra);
/* Starts trackd again on the same dir (after a kill). */
int fx_daemon_restart(struct fx_daemon *d, const char *const *extra);
/* SIGTERM and wait; returns the exit status (or -1 when it had to be
 * killed after 10 s). Keeps the dir. A status other than 0 is remembered
 * (bad_stop) and fails the test at fx_daemon_cleanup. */
int fx_daemon_stop(struct fx_daemon *d);
/* SIGKILL and wait: on purpose, so its exit status is not checked. */
void fx_daemon_kill(struct fx_daemon *d);
/* Stops the daemon if it runs (SIGTERM, as fx_daemon_stop), then checks
 * that every stop of it exited 0 and that its log holds no sanitizer report
 * ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"). When
 * that check fails it prints why and the log, keeps the directory and
 * aborts the test process: Criterion 2.4 does not count an assertion in a
 * .fini, but reports a crash there and exits 1. Otherwise prints the log
 * when `show_log` (keeping the directory then too) or removes the dir. */
void fx_daemon_cleanup(struct fx_daemon *d, int show_log);
/* The check fx_daemon_cleanup makes, without aborting: stops the daemon
 * if it runs, then 0 when every stop exited 0 and the log holds no
 * sanitizer report, else -1 with the reason in `why`. */
int fx_daemon_verdict(struct fx_daemon *d, char *why, size_t cap);
/* 1 when a unix socket at `path` (a file path, no "ipc://") accepts a
 * connection now, else 0. */
int fx_sock_alive(const char *path);
/* Bytes in the daemon's log now: an offset for fx_wait_log. */
long fx_log_size(struct fx_daemon *d);
/* Waits up to timeout_ms for `needle` in the daemon's log after byte
 * `from`; 1 when it appeared, 0 when not in time. */
int fx_wait_log(struct fx_daemon *d, long from, const char *needle, int timeout_ms);

/* Runs argv (argv[0] a path) with extra environment entries "K=V" (NULL-
 * terminated, may be NULL), feeding `in` (may be NULL) to stdin. Captures
 * stdout/stderr into malloc'd strings (caller frees). Returns the exit
 * status (0..255), 128+N for a signal, or -1. */
int fx_run(const char *const *argv, const char *const *env, const char *in, char **out, char **err);

/* Runs the built `track` CLI against daemon d: `track --server URI args...`
 * with TRACK_NO_AUTOSTART=1 and the spool inside the daemon's dir. */
int fx_track(struct fx_daemon *d, const char *const *env, const char *in, char **out, char **err,
             ...) __attribute__((sentinel));

/* Starts a daemon on a temp dir as fx_daemon_start with no extra args and
 * opens a client on it as fx_client_open(d, timeout_ms) into *c: the usual
 * .init of a suite. Fails the test ("trackd did not start") when it cannot. */
void fx_daemon_client_start(struct fx_daemon *d, struct track_client **c, int timeout_ms);
/* The matching .fini: closes *c when open (and clears it), then
 * fx_daemon_cleanup(d, 0). */
void fx_daemon_client_cleanup(struct fx_daemon *d, struct track_client **c);
/* Opens a libtrack client on daemon d (server d->uri, spool path d->spool,
 * spooling off) with timeout_ms (0: libtrack's default) and the default
 * flush policy. Fails the test with libtrack's message when it cannot. */
struct track_client *fx_client_open(struct fx_daemon *d, int timeout_ms);
/* Opens a libtrack client on `uri` with spool file `spool`, timeout_ms and
 * no_spool as given, that flushes only when told (interval one hour). Fails
 * the test with "open: MSG" when it cannot. */
struct track_client *fx_client_for(const char *uri, const char *spool, int timeout_ms,
                                   int no_spool);
/* Every step of RUN's metric KEY on daemon d, in logged order, read page by
 * page with a client of its own: up to max into out; returns the count (0
 * when the run or key is unknown). Fails the test on any other error. */
size_t fx_metric_steps(struct fx_daemon *d, const char *run, const char *key, int64_t *out,
                       size_t max);

/* Writes n bytes from p to path (created or truncated); fails the test on
 * an error. */
void fx_write_file(const char *path, const void *p, size_t n);
/* Writes a file of n pseudo-random bytes (xorshift from seed), in 64 KiB
 * pieces; fails the test on an error. */
void fx_write_random(const char *path, size_t n, uint64_t seed);
/* 1 when both files exist and hold the same bytes, else 0. */
int fx_same_file(const char *a, const char *b);

/* The whole file at path as a malloc'd string (caller frees); fails the
 * test when it cannot be opened or read. */
char *fx_slurp(const char *path);
/* Up to 1 MiB - 1 bytes of the file at path as a malloc'd string (caller
 * frees): "" when the file does not exist (yet). */
char *fx_read_text(const char *path);
/* How many times needle occurs in hay, not overlapping. */
size_t fx_count_of(const char *hay, const char *needle);
/* Sleeps ms milliseconds (again after a signal): only for a pause that is
 * itself the test's subject or paces a loop bounded by a deadline. */
void fx_sleep_ms(long ms);

/* For a full-disk test: makes the temp dir `dir` (a mkdtemp template,
 * replaced in place) and mounts a tmpfs with mount options `opts` (e.g.
 * "size=3m") on DIR/data, whose path goes to data (cap bytes). When it
 * cannot mount (not root) it removes dir and skips the test. The caller
 * unmounts data and removes dir. */
void fx_tmpfs(char *dir, char *data, size_t cap, const char *opts);
/* Starts trackd with its data directory `data` and its socket and log in
 * `sockdir` (which must be outside a small tmpfs): d is reset first, its
 * spool set to SOCKDIR/spool.bin. Fails the test ("trackd did not start on
 * the tmpfs") when it cannot. */
void fx_daemon_start_on(struct fx_daemon *d, const char *data, const char *sockdir);
/* Logs 20000 points of metric "noise" (xorshift64 values from state *x, that
 * do not compress; a NaN bit pattern logged as 0.5) at steps from *step into
 * the current run of c, then flushes; again until a flush fails or after
 * 200 flushes. Returns the last flush's status; *batches counts the flushes
 * and err holds the last error. */
int fx_log_noise_until_refused(struct track_client *c, uint64_t *x, long *step, int *batches,
                               struct track_err *err);

/* Removes a directory tree. */
void fx_rmtree(const char *path);
/* Milliseconds, monotonic. */
long long fx_now_ms(void);
/* A loopback TCP port free a moment ago (bound, read back, closed); fails
 * the test when no socket can be made. */
int fx_free_port(void);

#endif
