/*
 * test_exactly_once.c: the edges of a request's identity and validity,
 * spoken in raw frames (as test_protocol.c does) to a real trackd: a request
 * id survives a wall clock set right after running 30 days behind (the
 * daemon's request-id clock shifted with TRACKD_TEST_CLOCK_SKEW_MS), an id
 * reused with another body is a CONFLICT and applies nothing, a run cannot
 * end before it starts, and a string with a NUL byte is refused naming its
 * field instead of being cut at the NUL.
 *
 * Every test starts its own trackd (fork+exec before any nanomsg socket
 * exists in this process) and prints the daemon's log when it fails.
 */
#include <criterion/criterion.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "track.pb-c.h"
#include "wire.h"

static struct fx_daemon d;
static int passed; /* set by the last line of a test: fini shows the log otherwise */

#define PASS() (passed = 1)

#define DAY_MS (24LL * 3600 * 1000)

static void setup(void)
{
    passed = 0;
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
}

static void teardown(void)
{
    fx_daemon_cleanup(&d, !passed);
}

TestSuite(once, .init = setup, .fini = teardown, .timeout = 60);

/* ---- frames ----------------------------------------------------------------- */

static int sock_open(void)
{
    int s = nn_socket(AF_SP, NN_REQ), tmo = 5000;
    cr_assert_geq(s, 0, "nn_socket: %s", nn_strerror(nn_errno()));
    cr_assert_eq(nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof(int)), 0);
    cr_assert_eq(nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &tmo, sizeof(int)), 0);
    cr_assert_geq(nn_connect(s, d.uri), 0, "nn_connect %s: %s", d.uri, nn_strerror(nn_errno()));
    return s;
}

static void new_rid(uint8_t rid[16])
{
    static uint64_t counter;
    uint64_t a = ((uint64_t)getpid() << 32) ^ (uint64_t)fx_now_ms(), b = ++counter;
    memcpy(rid, &a, 8);
    memcpy(rid + 8, &b, 8);
}

static uint8_t *pack(const Track__V1__Request *rq, size_t *len)
{
    *len = track__v1__request__get_packed_size(rq);
    uint8_t *buf = malloc(*len ? *len : 1);
    cr_assert_not_null(buf);
    cr_assert_eq(track__v1__request__pack(rq, buf), *len);
    return buf;
}

/* Sends one frame, returns its decoded reply (caller frees). */
static Track__V1__Response *xchg(int s, const uint8_t *frame, size_t len)
{
    void *msg = NULL;
    cr_assert_geq(nn_send(s, frame, len, 0), 0, "send: %s", nn_strerror(nn_errno()));
    int n = nn_recv(s, &msg, NN_MSG, 0);
    cr_assert_gt(n, 0, "no reply from trackd: %s", nn_strerror(nn_errno()));
    Track__V1__Response *rs = track__v1__response__unpack(NULL, (size_t)n, msg);
    nn_freemsg(msg);
    cr_assert_not_null(rs, "reply does not decode as track.v1.Response");
    return rs;
}

/* One round trip of rq under a fresh request id. */
static Track__V1__Response *call(int s, Track__V1__Request *rq)
{
    uint8_t rid[16];
    size_t len;
    new_rid(rid);
    rq->request_id.data = rid;
    rq->request_id.len = 16;
    uint8_t *frame = pack(rq, &len);
    rq->request_id.data = NULL;
    rq->request_id.len = 0;
    Track__V1__Response *rs = xchg(s, frame, len);
    free(frame);
    return rs;
}

static int code_of(const Track__V1__Response *rs)
{
    return rs->error ? (int)rs->error->code : 0;
}

static const char *msg_of(const Track__V1__Response *rs)
{
    return rs->error && rs->error->message ? rs->error->message : "";
}

static void expect_ok(Track__V1__Response *rs, const char *what)
{
    cr_assert_eq(code_of(rs), 0, "%s: expected OK, got %s: %s", what, wire_code_name(code_of(rs)),
                 msg_of(rs));
    track__v1__response__free_unpacked(rs, NULL);
}

/* Asserts the code and that the message names each of the needles. */
static void expect_error(Track__V1__Response *rs, int code, const char *what, const char *needle1,
                         const char *needle2)
{
    cr_assert_eq(code_of(rs), code, "%s: expected %s, got %s: \"%s\"", what, wire_code_name(code),
                 wire_code_name(code_of(rs)), msg_of(rs));
    cr_assert(!needle1 || strstr(msg_of(rs), needle1), "%s: \"%s\" does not name \"%s\"", what,
              msg_of(rs), needle1);
    cr_assert(!needle2 || strstr(msg_of(rs), needle2), "%s: \"%s\" does not name \"%s\"", what,
              msg_of(rs), needle2);
    track__v1__response__free_unpacked(rs, NULL);
}

/* ---- requests ------------------------------------------------------------------- */

/* Starts a run at start_ms (0: now) and returns its hex id. */
static void start_run(int s, uint8_t seed, int64_t start_ms, char hex[33])
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunStart r = TRACK__V1__RUN_START__INIT;
    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(seed * 31 + i * 7 + 1);
    r.run_id.data = id;
    r.run_id.len = 16;
    r.experiment = wire_str("once");
    r.start_ms = start_ms;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_START;
    rq.run_start = &r;
    expect_ok(call(s, &rq), "run start");
    wire_hex(id, hex);
}

/* A packed LogBatch of one point (step, value) of run/key under rid. */
static uint8_t *point_frame(const uint8_t rid[16], const char *run, const char *key, int64_t step,
                            double value, size_t *len)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__LogBatch lb = TRACK__V1__LOG_BATCH__INIT;
    Track__V1__MetricSeries ms = TRACK__V1__METRIC_SERIES__INIT;
    Track__V1__MetricSeries *msp[1] = {&ms};
    ms.key = wire_str(key);
    ms.steps = &step;
    ms.n_steps = 1;
    ms.values = &value;
    ms.n_values = 1;
    lb.run = wire_str(run);
    lb.metrics = msp;
    lb.n_metrics = 1;
    rq.request_id.data = (uint8_t *)(uintptr_t)rid;
    rq.request_id.len = 16;
    rq.op_case = TRACK__V1__REQUEST__OP_LOG_BATCH;
    rq.log_batch = &lb;
    return pack(&rq, len);
}

static void log_point(int s, const char *run, const char *key, int64_t step, double value)
{
    uint8_t rid[16];
    size_t len;
    new_rid(rid);
    uint8_t *frame = point_frame(rid, run, key, step, value, &len);
    expect_ok(xchg(s, frame, len), "log a point");
    free(frame);
}

/* The points stored for (run, key) and the sum of their values. */
static int64_t history(int s, const char *run, const char *key, double *sum)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__MetricHistory mh = TRACK__V1__METRIC_HISTORY__INIT;
    mh.run = wire_str(run);
    mh.key = wire_str(key);
    rq.op_case = TRACK__V1__REQUEST__OP_METRIC_HISTORY;
    rq.metric_history = &mh;
    Track__V1__Response *rs = call(s, &rq);
    cr_assert_eq(code_of(rs), 0, "history: %s", msg_of(rs));
    Track__V1__MetricSeries *ser = rs->metric_history->series;
    int64_t n = (int64_t)ser->n_values;
    *sum = 0;
    for (size_t i = 0; i < ser->n_values; i++)
        *sum += ser->values[i];
    track__v1__response__free_unpacked(rs, NULL);
    return n;
}

/* ---- request ids across a clock jump --------------------------------------------- */

Test(once, a_request_id_is_remembered_when_the_clock_is_set_right_after_30_days_behind)
{
    char run[33], skew[64];
    uint8_t rid[16];
    size_t len;
    double sum;

    /* the daemon whose clock runs 30 days behind applies X */
    cr_assert_eq(fx_daemon_stop(&d), 0);
    snprintf(skew, sizeof(skew), "%lld", -30 * DAY_MS);
    setenv("TRACKD_TEST_CLOCK_SKEW_MS", skew, 1);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    unsetenv("TRACKD_TEST_CLOCK_SKEW_MS");
    int s = sock_open();
    start_run(s, 1, 0, run);
    new_rid(rid);
    uint8_t *x = point_frame(rid, run, "loss", 1, 0.5, &len);
    expect_ok(xchg(s, x, len), "X");
    nn_close(s);

    /* the clock set right: X now looks 30 days old */
    cr_assert_eq(fx_daemon_stop(&d), 0);
    long from = fx_log_size(&d);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    s = sock_open();
    /* two small chunks of another key: the next upkeep merges them, and the
     * same pass forgets old request ids, so its log line says it has run */
    log_point(s, run, "tick", 1, 1);
    log_point(s, run, "tick", 2, 1);
    cr_assert(fx_wait_log(&d, from, "compacted chunks=", 15000), "no upkeep ran");

    expect_ok(xchg(s, x, len), "X replayed");
    cr_assert_eq(history(s, run, "loss", &sum), 1, "X was applied twice");
    cr_assert_float_eq(sum, 0.5, 1e-12);
    free(x);
    nn_close(s);
    PASS();
}

/* ---- an id reused for another body ------------------------------------------------ */

Test(once, a_request_id_reused_with_another_body_is_a_conflict_and_applies_nothing)
{
    char run[33];
    uint8_t rid[16];
    size_t l1, l2;
    double sum;
    int s = sock_open();

    start_run(s, 2, 0, run);
    new_rid(rid);
    uint8_t *first = point_frame(rid, run, "loss", 1, 0.25, &l1);
    uint8_t *other = point_frame(rid, run, "loss", 2, 0.75, &l2);
    expect_ok(xchg(s, first, l1), "first");
    expect_error(xchg(s, other, l2), TRACK__V1__CODE__CONFLICT, "same id, another body",
                 "request_id", "reused with a different body");
    /* the same body again is still the replay it always was */
    expect_ok(xchg(s, first, l1), "first replayed");
    cr_assert_eq(history(s, run, "loss", &sum), 1);
    cr_assert_float_eq(sum, 0.25, 1e-12, "the second body was stored");
    free(first);
    free(other);
    nn_close(s);
    PASS();
}

/* ---- run end ------------------------------------------------------------------------ */

Test(once, run_end_before_the_run_started_is_invalid_argument_naming_end_ms)
{
    const int64_t start = 1764000000000LL;
    char run[33];
    int s = sock_open();
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunEnd re = TRACK__V1__RUN_END__INIT;

    start_run(s, 3, start, run);
    re.run = run;
    re.status = TRACK__V1__RUN_STATUS__FINISHED;
    re.end_ms = start - 1;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_END;
    rq.run_end = &re;
    expect_error(call(s, &rq), TRACK__V1__CODE__INVALID_ARGUMENT, "end before start", "end_ms",
                 "before the run's start_ms");
    re.end_ms = start;
    Track__V1__Response *rs = call(s, &rq);
    cr_assert_eq(code_of(rs), 0, "end at the start: %s", msg_of(rs));
    cr_assert_eq(rs->run->end_ms, start);
    cr_assert_eq(rs->run->status, TRACK__V1__RUN_STATUS__FINISHED);
    track__v1__response__free_unpacked(rs, NULL);
    nn_close(s);
    PASS();
}

/* ---- NUL bytes ---------------------------------------------------------------------- */

/* Writes the tag of a length-delimited field and a length under 128. */
static size_t put_head(uint8_t *o, unsigned field, size_t n)
{
    size_t at = 0;
    unsigned tag = field << 3 | 2;
    while (tag >= 0x80) {
        o[at++] = (uint8_t)(tag | 0x80);
        tag >>= 7;
    }
    o[at++] = (uint8_t)tag;
    cr_assert_lt(n, 128);
    o[at++] = (uint8_t)n;
    return at;
}

/* Appends a string (or bytes) field of `n` bytes to a message being built. */
static size_t put_string(uint8_t *o, unsigned field, const char *s, size_t n)
{
    size_t at = put_head(o, field, n);
    memcpy(o + at, s, n);
    return at + n;
}

Test(once, a_key_with_a_nul_byte_is_refused_naming_the_field)
{
    char run[33];
    uint8_t rid[16], frame[256], kv[64], lb[160];
    size_t nkv = 0, nlb = 0, n = 0;
    int s = sock_open();

    start_run(s, 4, 0, run);
    /* LogBatch{run, params: [KeyValue{key "lr\0x", value "1"}]}: built by
     * hand, since protobuf-c packs a char * only up to its NUL */
    nkv += put_string(kv + nkv, 1, "lr\0x", 4);
    nkv += put_string(kv + nkv, 2, "1", 1);
    nlb += put_string(lb + nlb, 1, run, 32);
    nlb += put_string(lb + nlb, 2, (const char *)kv, nkv); /* params = 2 */
    new_rid(rid);
    n += put_string(frame + n, 1, (const char *)rid, 16);
    n += put_string(frame + n, 18, (const char *)lb, nlb); /* log_batch = 18 */
    /* the frame is a valid Request: protobuf-c alone would take "lr" */
    Track__V1__Request *rq = track__v1__request__unpack(NULL, n, frame);
    cr_assert_not_null(rq);
    cr_assert_str_eq(rq->log_batch->params[0]->key, "lr");
    track__v1__request__free_unpacked(rq, NULL);

    expect_error(xchg(s, frame, n), TRACK__V1__CODE__INVALID_ARGUMENT, "key with a NUL",
                 "log_batch.params.key", "NUL");
    /* nothing was stored under the cut key */
    Track__V1__Request get = TRACK__V1__REQUEST__INIT;
    Track__V1__RunGet rg = TRACK__V1__RUN_GET__INIT;
    rg.run = run;
    get.op_case = TRACK__V1__REQUEST__OP_RUN_GET;
    get.run_get = &rg;
    Track__V1__Response *rs = call(s, &get);
    cr_assert_eq(code_of(rs), 0, "%s", msg_of(rs));
    cr_assert_eq(rs->run_get->run->n_params, 0, "a param was stored under the cut key");
    track__v1__response__free_unpacked(rs, NULL);

    /* a NUL in a read's string is refused too (here a run name prefix) */
    uint8_t rg_frame[64];
    size_t m = 0;
    uint8_t inner[40];
    size_t ni = put_string(inner, 1, "abcd\0ef", 7);
    new_rid(rid);
    m += put_string(rg_frame + m, 1, (const char *)rid, 16);
    m += put_string(rg_frame + m, 16, (const char *)inner, ni); /* run_get = 16 */
    expect_error(xchg(s, rg_frame, m), TRACK__V1__CODE__INVALID_ARGUMENT, "run with a NUL",
                 "run_get.run", "NUL");
    nn_close(s);
    PASS();
}
