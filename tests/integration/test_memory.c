/*
 * test_memory.c: what a client can make trackd hold, in bytes and in
 * descriptors, measured from /proc/PID/status (VmRSS, VmHWM) and
 * /proc/PID/stat (CPU time) of a real trackd.
 *
 * The hostile clients here are plain sockets speaking nanomsg's wire format
 * by hand (the SP header, then 8-byte big-endian frame lengths), so a test
 * can do what nanomsg never would: ask and not read, stop in the middle of
 * a frame, hold hundreds of idle connections. The good client is libtrack.
 *
 * Bounds are stated for the test build (ASan): trackd runs with a 16 MiB
 * ASan quarantine (the default 256 MiB keeps freed memory resident and
 * would measure ASan, not trackd). Without the bounds in srv.h the first
 * test holds K x 8.5 MB (over 400 MB), the second test's 15 MiB frames are
 * taken over tcp, the third queues 450 MB of requests, and the descriptor
 * test finds a thread spinning at 100%.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"
#include "track.pb-c.h"
#include "wire.h"

static struct fx_daemon d;
static int passed; /* set by the last line of a test: fini shows the log otherwise */

#define PASS() (passed = 1)
#define MIB    (1024L * 1024)

static void teardown(void)
{
    fx_daemon_cleanup(&d, !passed);
}

TestSuite(memory, .fini = teardown, .timeout = 90);

/* Starts trackd with a small ASan quarantine (see the file comment). */
static void start(const char *const *extra)
{
    const char *old = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=16", old ? old : "", old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    passed = 0;
    int rc = fx_daemon_start(&d, extra);
    if (old)
        setenv("ASAN_OPTIONS", old, 1);
    else
        unsetenv("ASAN_OPTIONS");
    cr_assert_eq(rc, 0, "trackd did not start");
}

/* ---- /proc ------------------------------------------------------------------ */

/* A "Name:   N kB" line of /proc/PID/status, in bytes; -1 if absent. */
static long status_bytes(pid_t pid, const char *name)
{
    char path[64], line[256];
    long v = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ':') {
            v = strtol(line + strlen(name) + 1, NULL, 10) * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

static long rss(void)
{
    return status_bytes(d.pid, "VmRSS");
}

/* utime + stime of every thread, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    cr_assert_not_null(p);
    long ut = 0, st = 0;
    /* after ") ": state is field 3; utime and stime are fields 14 and 15 */
    cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st), 2);
    return ut + st;
}

/* Waits (up to ms) until trackd's RSS is at most `bytes`; returns the last
 * value seen. */
static long wait_rss_below(long bytes, long ms)
{
    long long end = fx_now_ms() + ms;
    long v = rss();
    while (v > bytes && fx_now_ms() < end) {
        fx_sleep_ms(50);
        v = rss();
    }
    return v;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int count_in(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Stops trackd and asserts it exited 0 without a sanitizer report. */
static void stop_clean(void)
{
    int st = fx_daemon_stop(&d);
    char *log = slurp(d.log);
    cr_assert_not_null(log);
    cr_assert_eq(st, 0, "trackd exited with %d", st);
    cr_assert_null(strstr(log, "Sanitizer"), "sanitizer report in trackd's log");
    cr_assert_null(strstr(log, "runtime error"), "UBSan report in trackd's log");
    free(log);
}

/* ---- raw nanomsg over plain sockets -------------------------------------------- */

/* SP header of a REQ peer: "\0SP\0", protocol 48 (NN_REQ), reserved. */
static const unsigned char sp_req[8] = {0, 'S', 'P', 0, 0, 48, 0, 0};

/* ipc frames start with a type byte (1: a message) before the length */
static unsigned char fd_is_ipc[65536];

/* Connects to an ipc:// URI, trying `tries` times 10 ms apart. */
static int raw_connect_ipc_tries(const char *uri, int tries)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(uri + 6);
    cr_assert_lt(n, sizeof(sa.sun_path), "socket path too long: %s", uri);
    memcpy(sa.sun_path, uri + 6, n + 1);
    for (int i = 0; i < tries; i++) {
        /* non-blocking: a blocking connect waits while the backlog is full */
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        cr_assert_geq(fd, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            cr_assert_eq(fcntl(fd, F_SETFL, 0), 0);
            cr_assert_eq(write(fd, sp_req, 8), 8);
            cr_assert_lt(fd, 65536);
            fd_is_ipc[fd] = 1;
            return fd;
        }
        close(fd);
        if (errno != EAGAIN && errno != ECONNREFUSED && errno != ENOENT)
            break;
        fx_sleep_ms(10); /* the listen backlog is full: nanomsg accepts one by one */
    }
    return -1;
}

static int raw_connect_ipc(const char *uri)
{
    return raw_connect_ipc_tries(uri, 200);
}

static int raw_connect_tcp(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
                 strerror(errno));
    cr_assert_eq(write(fd, sp_req, 8), 8);
    cr_assert_lt(fd, 65536);
    fd_is_ipc[fd] = 0;
    return fd;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        cr_assert_gt(n, 0, "write: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static int read_all(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    long long end = fx_now_ms() + timeout_ms;
    while (len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)(end - fx_now_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            return -1;
        ssize_t n = read(fd, p, len);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Sends the head of a frame for a request body of `len` bytes on fd: (on
 * ipc the type byte,) the length, then REQ's 4-byte request id with its
 * top bit set. */
static void frame_head(int fd, size_t len, uint32_t id)
{
    unsigned char head[13], *p = head;
    if (fd_is_ipc[fd])
        *p++ = 1;
    put_be64(p, len + 4);
    p[8] = (unsigned char)(0x80 | (id >> 24));
    p[9] = (unsigned char)(id >> 16);
    p[10] = (unsigned char)(id >> 8);
    p[11] = (unsigned char)id;
    write_all(fd, head, (size_t)(p + 12 - head));
}

static void raw_send(int fd, uint32_t id, const uint8_t *body, size_t len)
{
    frame_head(fd, len, id);
    write_all(fd, body, len);
}

/* Reads the server's SP header (8 bytes). */
static void raw_hello_back(int fd)
{
    unsigned char h[8];
    cr_assert_eq(read_all(fd, h, 8, 10000), 0, "no SP header from trackd");
    cr_assert_eq(memcmp(h, "\0SP\0", 4), 0);
}

/* Reads one reply frame (after the SP header), unpacked; NULL if the
 * connection closed or nothing came in time. */
static Track__V1__Response *raw_reply(int fd, int timeout_ms)
{
    unsigned char h[9];
    size_t hl = fd_is_ipc[fd] ? 9 : 8;
    if (read_all(fd, h, hl, timeout_ms))
        return NULL;
    uint64_t n = get_be64(h + hl - 8);
    cr_assert(n >= 4 && n < 64 * MIB, "reply frame of %llu bytes", (unsigned long long)n);
    uint8_t *buf = malloc(n);
    cr_assert_eq(read_all(fd, buf, n, timeout_ms), 0, "reply cut short");
    Track__V1__Response *rs = track__v1__response__unpack(NULL, n - 4, buf + 4);
    free(buf);
    cr_assert_not_null(rs);
    return rs;
}

static uint8_t *pack(Track__V1__Request *rq, size_t *len)
{
    static uint64_t counter;
    uint8_t rid[16] = {0};
    uint64_t c = ++counter;
    memcpy(rid, &c, 8);
    rq->request_id.data = rid;
    rq->request_id.len = 16;
    *len = track__v1__request__get_packed_size(rq);
    uint8_t *buf = malloc(*len);
    cr_assert_eq(track__v1__request__pack(rq, buf), *len);
    rq->request_id.data = NULL;
    rq->request_id.len = 0;
    return buf;
}

#define HISTORY_POINTS 500000 /* the largest history page: a reply of about 8.5 MB */

static uint8_t *history_request(const char *run, size_t *len)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__MetricHistory h = TRACK__V1__METRIC_HISTORY__INIT;
    h.run = (char *)(uintptr_t)run;
    h.key = (char *)(uintptr_t) "loss";
    h.max_points = HISTORY_POINTS;
    rq.op_case = TRACK__V1__REQUEST__OP_METRIC_HISTORY;
    rq.metric_history = &h;
    return pack(&rq, len);
}

/* A curve of 1,000 buckets: reads every point, answers a small reply. */
static uint8_t *curve_request(const char *run, size_t *len)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__MetricCurve c = TRACK__V1__METRIC_CURVE__INIT;
    c.run = (char *)(uintptr_t)run;
    c.key = (char *)(uintptr_t) "loss";
    c.buckets = 1000;
    rq.op_case = TRACK__V1__REQUEST__OP_METRIC_CURVE;
    rq.metric_curve = &c;
    return pack(&rq, len);
}

static uint8_t *hello_request(size_t *len)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Hello h = TRACK__V1__HELLO__INIT;
    h.client_version = (char *)(uintptr_t) "test";
    rq.op_case = TRACK__V1__REQUEST__OP_HELLO;
    rq.hello = &h;
    return pack(&rq, len);
}

/* A Status request padded with an unknown field of `pad` bytes (field
 * 1000, bytes): a legal read whose request is as big as a frame. */
static uint8_t *padded_status_request(size_t pad, size_t *len)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Status s = TRACK__V1__STATUS__INIT;
    rq.op_case = TRACK__V1__REQUEST__OP_STATUS;
    rq.status = &s;
    size_t n;
    uint8_t *base = pack(&rq, &n);
    uint8_t *buf = malloc(n + 16 + pad);
    memcpy(buf, base, n);
    free(base);
    size_t at = n;
    uint64_t tag = (1000u << 3) | 2, v = pad;
    do {
        buf[at++] = (uint8_t)((tag & 0x7f) | (tag > 0x7f ? 0x80 : 0));
        tag >>= 7;
    } while (tag);
    do {
        buf[at++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    memset(buf + at, 'x', pad);
    *len = at + pad;
    return buf;
}

/* ---- the good client ------------------------------------------------------------ */

static struct track_client *client(int timeout_ms)
{
    struct track_opts o = {
        .server = d.uri, .timeout_ms = timeout_ms, .no_spool = 1, .flush_points = 65536};
    struct track_client *c = NULL;
    struct track_err err = {0};
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "open: %s", err.msg);
    return c;
}

/* A run with `points` points of "loss"; its hex id in hex. */
static void make_history(int points, char hex[33])
{
    struct track_client *c = client(20000);
    struct track_err err = {0};
    track_run_id id;
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "run start: %s", err.msg);
    track_run_id_hex(&id, hex);
    for (int i = 0; i < points; i++)
        cr_assert_eq(track_log_metric(c, "loss", 1.0 / (i + 1), i, 0, &err), 0, "log: %s", err.msg);
    cr_assert_eq(track_flush(c, &err), 0, "flush: %s", err.msg);
    track_client_close(c);
}

/* A status read and a write, each answered within `ms`. */
static void good_client_is_served(int ms, const char *when)
{
    struct track_client *c = client(ms);
    struct track_err err = {0};
    struct track_result *res = NULL;
    struct track_server_status st;
    track_run_id id;
    long long t0 = fx_now_ms();
    cr_assert_eq(track_status(c, &res, &st, &err), 0, "%s: status: %s", when, err.msg);
    track_result_free(res);
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s: run start: %s", when, err.msg);
    cr_assert_eq(track_log_metric(c, "ok", 1, 0, 0, &err), 0);
    cr_assert_eq(track_flush(c, &err), 0, "%s: flush: %s", when, err.msg);
    cr_assert_eq(err.code, 0, "%s: the write was not acknowledged: %s", when, err.msg);
    cr_assert_lt(fx_now_ms() - t0, ms, "%s: the good client waited %lld ms", when,
                 fx_now_ms() - t0);
    track_client_close(c);
}

static long history_points(int timeout_ms, const char *run, struct track_err *err)
{
    struct track_client *c = client(timeout_ms);
    struct track_result *res = NULL;
    const int64_t *steps, *times;
    const double *values;
    size_t n = 0;
    int64_t next;
    int more;
    int rc = track_metric_history(c, run, "loss", 0, HISTORY_POINTS, &res, &steps, &times, &values,
                                  &n, &next, &more, err);
    track_result_free(res);
    track_client_close(c);
    return rc ? rc : (long)n;
}

/* ---- replies nobody reads ------------------------------------------------------- */

#define NON_READERS 48 /* unbounded, they would hold 48 x 8.5 MB = 408 MB */

Test(memory, clients_that_never_read_big_replies_hold_a_bounded_amount)
{
    char run[33];
    size_t len;
    int fds[NON_READERS];

    start(NULL);
    make_history(HISTORY_POINTS, run);
    uint8_t *rq = history_request(run, &len);
    long rss0 = rss();

    for (int i = 0; i < NON_READERS; i++) {
        fds[i] = raw_connect_ipc(d.uri);
        cr_assert_geq(fds[i], 0, "connection %d refused", i);
        raw_hello_back(fds[i]);
        raw_send(fds[i], (uint32_t)i, rq, len);
    }
    free(rq);
    /* every request is answered: a big reply starts to arrive (and stops:
     * nobody reads it) or a small refusal arrives whole */
    int big = 0, refused = 0;
    for (int i = 0; i < NON_READERS; i++) {
        unsigned char h[9];
        struct pollfd pfd = {.fd = fds[i], .events = POLLIN};
        cr_assert_eq(poll(&pfd, 1, 30000), 1, "request %d got no answer in 30 s", i);
        cr_assert_eq(recv(fds[i], h, 9, MSG_PEEK | MSG_WAITALL), 9);
        if (get_be64(h + 1) > MIB) {
            if (!big)
                cr_log_info("a history reply of %llu bytes", (unsigned long long)get_be64(h + 1));
            big++;
            continue;
        }
        Track__V1__Response *rs = raw_reply(fds[i], 5000);
        cr_assert_not_null(rs);
        cr_assert_not_null(rs->error, "a small reply that is not an error");
        cr_assert_eq(rs->error->code, TRACK__V1__CODE__RESOURCE_EXHAUSTED, "%s",
                     rs->error->message);
        cr_assert_not_null(strstr(rs->error->message, "limit 128 MiB"), "message \"%s\"",
                           rs->error->message);
        track__v1__response__free_unpacked(rs, NULL);
        refused++;
    }
    long held = rss(), hwm = status_bytes(d.pid, "VmHWM");
    cr_log_info("non-readers: %d big replies sent, %d refused; RSS %ld MB before, %ld MB with "
                "them, peak %ld MB",
                big, refused, rss0 / MIB, held / MIB, hwm / MIB);
    cr_assert_gt(big, 0);
    cr_assert_gt(refused, 0, "all %d big replies were sent: nothing bounds them", big);
    /* 128 MiB of held replies + two replies being built + ASan's overhead */
    cr_assert_lt(held - rss0, 250 * MIB, "RSS grew by %ld MB", (held - rss0) / MIB);
    cr_assert_lt(hwm, 400 * MIB, "peak RSS %ld MB", hwm / MIB);

    /* meanwhile small reads and writes go on */
    good_client_is_served(5000, "with non-readers holding replies");

    for (int i = 0; i < NON_READERS; i++)
        close(fds[i]);
    long after = wait_rss_below(rss0 + 64 * MIB, 10000);
    cr_log_info("non-readers gone: RSS %ld MB", after / MIB);
    cr_assert_lt(after, rss0 + 64 * MIB, "RSS stayed at %ld MB after the clients left (was %ld)",
                 after / MIB, rss0 / MIB);
    /* and the budget came back with them: a big read is served again */
    struct track_err err = {0};
    cr_assert_eq(history_points(20000, run, &err), HISTORY_POINTS, "big read after: %s", err.msg);
    stop_clean();
    PASS();
}

/* ---- frames cut short ------------------------------------------------------------- */

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static uint64_t hello_frame_limit(int fd)
{
    size_t len;
    uint8_t *rq = hello_request(&len);
    raw_send(fd, 1, rq, len);
    free(rq);
    Track__V1__Response *rs = raw_reply(fd, 10000);
    cr_assert_not_null(rs, "no Hello reply");
    cr_assert_eq(rs->result_case, TRACK__V1__RESPONSE__RESULT_HELLO);
    uint64_t v = rs->hello->max_frame_bytes;
    track__v1__response__free_unpacked(rs, NULL);
    return v;
}

/* 1 when trackd closed the connection within ms. */
static int closed_by_peer(int fd, int ms)
{
    long long end = fx_now_ms() + ms;
    char buf[4096];
    while (fx_now_ms() < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) == 1) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n == 0 || (n < 0 && errno == ECONNRESET))
                return 1;
        }
    }
    return 0;
}

#define STALLERS 20

Test(memory, tcp_takes_frames_only_as_big_as_a_batch_and_stalled_frames_cost_what_they_sent)
{
    char listen[64];
    int port = free_port(), tcp[STALLERS], ipc[STALLERS];
    snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", port);
    /* plain frames (the raw Hello below); the limits are the listener's,
     * sealed or not (test_seal_tcp.c checks them on a sealed one) */
    const char *extra[] = {"--listen", listen, "--plain-tcp", NULL};
    start(extra);
    setenv("TRACK_TEST_PLAIN_TCP", "1", 1);

    /* Hello says each listener's limit */
    int t = raw_connect_tcp(port), u = raw_connect_ipc(d.uri);
    raw_hello_back(t);
    raw_hello_back(u);
    cr_assert_eq(hello_frame_limit(t), 8u << 20, "tcp frame limit");
    cr_assert_eq(hello_frame_limit(u), 16u << 20, "ipc frame limit");
    close(t);
    close(u);

    /* and a full batch (max_batch_points, 262,144 points) fits it */
    struct track_opts o = {.server = listen,
                           .timeout_ms = 20000,
                           .no_spool = 1,
                           .flush_points = 262144,
                           .flush_interval_ms = 600000};
    struct track_client *c = NULL;
    struct track_err err = {0};
    track_run_id id;
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "open: %s", err.msg);
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "run start over tcp: %s", err.msg);
    for (int i = 0; i < 262144; i++)
        cr_assert_eq(track_log_metric(c, "loss", i * 0.5, i, 0, &err), 0, "log: %s", err.msg);
    cr_assert_eq(track_flush(c, &err), 0, "a full batch over tcp: %s", err.msg);
    cr_assert_eq(err.code, 0, "a full batch over tcp: %s", err.msg);
    track_client_close(c);

    long rss0 = rss();
    char *chunk = calloc(1, MIB);
    /* over tcp a frame declared past 8 MiB is refused at its header: the
     * connection is closed before any of it is kept */
    for (int i = 0; i < STALLERS; i++) {
        tcp[i] = raw_connect_tcp(port);
        raw_hello_back(tcp[i]);
        frame_head(tcp[i], 15 * MIB, 7);
        (void)!write(tcp[i], chunk, MIB); /* may fail once trackd has closed it */
    }
    for (int i = 0; i < STALLERS; i++) {
        cr_assert(closed_by_peer(tcp[i], 5000), "tcp connection %d declaring 15 MiB still open", i);
        close(tcp[i]);
    }
    /* over ipc (the owner only) frames up to 16 MiB are taken; one cut
     * short costs what was sent of it, not what it declared */
    for (int i = 0; i < STALLERS; i++) {
        ipc[i] = raw_connect_ipc(d.uri);
        cr_assert_geq(ipc[i], 0);
        raw_hello_back(ipc[i]);
        frame_head(ipc[i], 16 * MIB - 8, 9);
        for (int k = 0; k < 2; k++)
            write_all(ipc[i], chunk, MIB);
    }
    free(chunk);
    fx_sleep_ms(300); /* nothing to wait for: the bytes are in; let nanomsg copy them */
    long stalled = rss();
    cr_log_info("stalled frames: RSS %ld MB before, %ld MB with %d tcp refused and %d ipc "
                "frames of 16 MiB cut at 2 MiB",
                rss0 / MIB, stalled / MIB, STALLERS, STALLERS);
    /* 20 x 2 MiB sent; declared, they would be 20 x 16 MiB = 320 MiB */
    cr_assert_lt(stalled - rss0, (STALLERS * 2 + 40) * MIB, "RSS grew by %ld MB",
                 (stalled - rss0) / MIB);
    good_client_is_served(5000, "with frames stalled");
    for (int i = 0; i < STALLERS; i++)
        close(ipc[i]);
    long after = wait_rss_below(rss0 + 16 * MIB, 10000);
    cr_assert_lt(after, rss0 + 16 * MIB, "RSS stayed at %ld MB after (was %ld)", after / MIB,
                 rss0 / MIB);
    stop_clean();
    PASS();
}

/* ---- reads queued behind slow reads ------------------------------------------------ */

#define SLOW_READS 80 /* curves over 500,000 points: seconds of work for one worker */
#define FAT_CONNS  3
#define FAT_EACH   10 /* 30 reads of 15 MiB: 450 MiB if they all waited in the queue */

Test(memory, reads_queued_behind_slow_reads_are_bounded_in_bytes)
{
    char run[33];
    size_t hlen, flen;
    int slow[SLOW_READS], fat[FAT_CONNS];
    const char *extra[] = {"--workers", "1", NULL};

    start(extra);
    make_history(HISTORY_POINTS, run);
    uint8_t *hrq = curve_request(run, &hlen);
    uint8_t *frq = padded_status_request(15 * MIB, &flen);
    cr_assert_lt(flen, 16 * MIB);
    long rss0 = rss();

    /* the one worker is kept busy by slow reads with small replies */
    for (int i = 0; i < SLOW_READS; i++) {
        slow[i] = raw_connect_ipc(d.uri);
        cr_assert_geq(slow[i], 0);
        raw_hello_back(slow[i]);
        raw_send(slow[i], (uint32_t)i, hrq, hlen);
    }
    /* a raw peer may send requests back to back on one connection; a few
     * connections keep nanomsg's own intake (a frame each) small */
    for (int i = 0; i < FAT_CONNS; i++) {
        fat[i] = raw_connect_ipc(d.uri);
        cr_assert_geq(fat[i], 0);
        raw_hello_back(fat[i]);
    }
    for (int k = 0; k < FAT_EACH; k++)
        for (int i = 0; i < FAT_CONNS; i++)
            raw_send(fat[i], (uint32_t)k, frq, flen);
    free(hrq);
    free(frq);
    long sent = rss();
    int served = 0, refused = 0;
    for (int i = 0; i < FAT_CONNS; i++) {
        for (int k = 0; k < FAT_EACH; k++) {
            Track__V1__Response *rs = raw_reply(fat[i], 60000);
            cr_assert_not_null(rs, "padded read %d on connection %d got no answer", k, i);
            if (rs->error) {
                cr_assert_eq(rs->error->code, TRACK__V1__CODE__RESOURCE_EXHAUSTED, "%s",
                             rs->error->message);
                cr_assert_not_null(strstr(rs->error->message, "64 MiB"), "message \"%s\"",
                                   rs->error->message);
                refused++;
            } else {
                served++;
            }
            track__v1__response__free_unpacked(rs, NULL);
        }
    }
    for (int i = 0; i < SLOW_READS; i++) {
        Track__V1__Response *rs = raw_reply(slow[i], 60000);
        cr_assert_not_null(rs, "curve read %d got no answer", i);
        cr_assert_null(rs->error, "curve read %d: %s", i, rs->error->message);
        track__v1__response__free_unpacked(rs, NULL);
        close(slow[i]);
    }
    long hwm = status_bytes(d.pid, "VmHWM");
    cr_log_info("fat reads: %d served, %d refused; RSS %ld MB before, %ld MB once sent, "
                "peak %ld MB",
                served, refused, rss0 / MIB, sent / MIB, hwm / MIB);
    cr_assert_gt(served, 0);
    cr_assert_gt(refused, 0, "all %d padded reads were queued", FAT_CONNS * FAT_EACH);
    /* 64 MiB of queued requests, up to 64 MiB more being drained (one
     * wake-up's worth, DRAIN_BYTES), a frame per connection inside nanomsg
     * (3 x 15 MiB) and ASan's overhead; unbounded it is over 450 MiB */
    cr_assert_lt(hwm - rss0, 260 * MIB, "peak grew by %ld MB", (hwm - rss0) / MIB);
    for (int i = 0; i < FAT_CONNS; i++)
        close(fat[i]);
    long after = wait_rss_below(rss0 + 64 * MIB, 10000);
    cr_log_info("after the burst: RSS %ld MB", after / MIB);
    cr_assert_lt(after, rss0 + 64 * MIB, "RSS stayed at %ld MB after the burst (was %ld)",
                 after / MIB, rss0 / MIB);
    good_client_is_served(5000, "after the burst");
    stop_clean();
    PASS();
}

/* ---- descriptors ------------------------------------------------------------------- */

Test(memory, soft_descriptor_limit_is_raised_to_the_hard_one)
{
    struct rlimit old, low;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    cr_assert_gt(old.rlim_max, 200, "hard limit %llu too low for this test",
                 (unsigned long long)old.rlim_max);
    low = old;
    low.rlim_cur = 200;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    passed = 0;
    int rc = fx_daemon_start(&d, NULL);
    setrlimit(RLIMIT_NOFILE, &old);
    cr_assert_eq(rc, 0, "trackd did not start");

    struct rlimit now;
    cr_assert_eq(prlimit(d.pid, RLIMIT_NOFILE, NULL, &now), 0);
    cr_assert_eq(now.rlim_cur, old.rlim_max, "soft limit %llu, hard %llu",
                 (unsigned long long)now.rlim_cur, (unsigned long long)old.rlim_max);
    char *log = slurp(d.log);
    cr_assert_not_null(strstr(log, "descriptor limit raised from 200"), "log:\n%s", log);
    free(log);
    stop_clean();
    PASS();
}

#define FD_LIMIT 256
#define IDLE     300 /* more idle connections than trackd has descriptors */

Test(memory, out_of_descriptors_trackd_does_not_spin_and_serves_again)
{
    int fds[IDLE], n = 0;
    struct rlimit lim = {FD_LIMIT, FD_LIMIT};

    start(NULL);
    cr_assert_eq(prlimit(d.pid, RLIMIT_NOFILE, &lim, NULL), 0, "prlimit: %s", strerror(errno));
    for (int i = 0; i < IDLE; i++) {
        int fd = raw_connect_ipc_tries(d.uri, 5);
        if (fd >= 0)
            fds[n++] = fd;
    }
    cr_assert_gt(n, FD_LIMIT - 64, "only %d connections were made", n);
    fx_sleep_ms(1500); /* trackd counts its descriptors once a second */
    long c0 = cpu_ticks(d.pid);
    long long t0 = fx_now_ms();
    fx_sleep_ms(2000);
    long used = cpu_ticks(d.pid) - c0;
    long ms = used * 1000 / sysconf(_SC_CLK_TCK);
    long long wall = fx_now_ms() - t0;
    cr_log_info("out of descriptors: %d connections, %ld ms of CPU in %lld ms", n, ms, wall);
    /* spinning, one thread alone takes all of it (about 2,000 ms) */
    cr_assert_lt(ms, 300, "trackd used %ld ms of CPU in %lld ms while out of descriptors", ms,
                 wall);

    for (int i = 0; i < n; i++)
        close(fds[i]);
    /* served again, once its listener is back (a pause of 1 s at first) */
    long long end = fx_now_ms() + 10000;
    struct track_err err = {0};
    int ok = 0;
    while (!ok && fx_now_ms() < end) {
        struct track_client *c = client(2000);
        struct track_result *res = NULL;
        struct track_server_status st;
        ok = track_status(c, &res, &st, &err) == 0;
        track_result_free(res);
        track_client_close(c);
        if (!ok)
            fx_sleep_ms(100);
    }
    cr_assert(ok, "no new client served after the connections closed: %s", err.msg);
    char *log = slurp(d.log);
    int warned = count_in(log, "(RLIMIT_NOFILE, 90% or more)");
    cr_assert(warned >= 1 && warned <= 3, "warned %d times; log:\n%s", warned, log);
    cr_assert_geq(count_in(log, "out of descriptors:"), 1, "log:\n%s", log);
    free(log);
    stop_clean();
    PASS();
}
