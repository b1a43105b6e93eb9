/*
 * test_protocol.c: trackd spoken to in raw frames. A cooked NN_REQ socket
 * sends requests packed with the generated protobuf-c code, exactly as any
 * client in any language would, so these tests pin down the wire contract
 * of DESIGN.md ("Wire protocol") without libtrack in between: Hello's
 * limits, exactly-once application of a repeated request_id (also across a
 * daemon crash), specific error codes naming the field for bad input, the
 * frame size limit, and run-start replays.
 *
 * Every test starts its own trackd (fork+exec before any nanomsg socket
 * exists in this process) and prints the daemon's log when it fails.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "track.pb-c.h"
#include "wire.h"

static struct fx_daemon d;
static int passed; /* set by the last line of a test: fini shows the log otherwise */

#define PASS() (passed = 1)

static void setup(void)
{
    passed = 0;
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
}

static void teardown(void)
{
    fx_daemon_cleanup(&d, !passed);
}

TestSuite(protocol, .init = setup, .fini = teardown, .timeout = 60);

/* ---- frames ----------------------------------------------------------------- */

static int px_socket(int rcv_timeout_ms)
{
    int s = nn_socket(AF_SP, NN_REQ), snd = 5000, unlimited = -1;
    cr_assert_geq(s, 0, "nn_socket: %s", nn_strerror(nn_errno()));
    cr_assert_eq(nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &rcv_timeout_ms, sizeof(int)), 0);
    cr_assert_eq(nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &snd, sizeof(int)), 0);
    cr_assert_eq(nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &unlimited, sizeof(int)), 0);
    cr_assert_geq(nn_connect(s, d.uri), 0, "nn_connect %s: %s", d.uri, nn_strerror(nn_errno()));
    return s;
}

/* Sends one frame and waits for its reply (malloc'd into *reply). Returns 0
 * or the nanomsg errno of the failure (ETIMEDOUT when no reply came). */
static int px_xchg(int s, const void *buf, size_t len, uint8_t **reply, size_t *rlen)
{
    void *msg = NULL;
    *reply = NULL;
    *rlen = 0;
    if (nn_send(s, buf, len, 0) < 0)
        return nn_errno();
    int n = nn_recv(s, &msg, NN_MSG, 0);
    if (n < 0)
        return nn_errno();
    *reply = malloc((size_t)n + 1);
    memcpy(*reply, msg, (size_t)n);
    *rlen = (size_t)n;
    nn_freemsg(msg);
    return 0;
}

/* A request id no other request of this process uses. */
static void px_rid(uint8_t rid[16])
{
    static uint64_t counter;
    uint64_t a = ((uint64_t)getpid() << 32) ^ (uint64_t)fx_now_ms(), b = ++counter;
    memcpy(rid, &a, 8);
    memcpy(rid + 8, &b, 8);
}

/* Packs rq into a malloc'd buffer. */
static uint8_t *px_pack(const Track__V1__Request *rq, size_t *len)
{
    *len = track__v1__request__get_packed_size(rq);
    uint8_t *buf = malloc(*len ? *len : 1);
    cr_assert_not_null(buf);
    cr_assert_eq(track__v1__request__pack(rq, buf), *len);
    return buf;
}

static Track__V1__Response *px_unpack(const uint8_t *buf, size_t len)
{
    Track__V1__Response *rs = track__v1__response__unpack(NULL, len, buf);
    cr_assert_not_null(rs, "reply of %zu bytes does not decode as track.v1.Response", len);
    return rs;
}

/* One round trip of rq; gives rq a fresh request id unless it has one. */
static Track__V1__Response *px_call(int s, Track__V1__Request *rq)
{
    uint8_t rid[16], *buf, *reply;
    size_t len, rlen;

    if (rq->request_id.len == 0) {
        px_rid(rid);
        rq->request_id.data = rid;
        rq->request_id.len = 16;
    }
    buf = px_pack(rq, &len);
    int e = px_xchg(s, buf, len, &reply, &rlen);
    free(buf);
    if (rq->request_id.data == rid) {
        rq->request_id.data = NULL;
        rq->request_id.len = 0;
    }
    cr_assert_eq(e, 0, "no reply from trackd: %s", nn_strerror(e));
    Track__V1__Response *rs = px_unpack(reply, rlen);
    free(reply);
    return rs;
}

static int px_code(const Track__V1__Response *rs)
{
    return rs->error ? (int)rs->error->code : 0;
}

static const char *px_msg(const Track__V1__Response *rs)
{
    return rs->error && rs->error->message ? rs->error->message : "";
}

static void expect_ok(const Track__V1__Response *rs, const char *what)
{
    cr_assert_eq(px_code(rs), 0, "%s: expected OK, got %s: %s", what, wire_code_name(px_code(rs)),
                 px_msg(rs));
}

/* Asserts the code and that the message mentions `needle`; frees rs. */
static void expect_error(Track__V1__Response *rs, int code, const char *needle, const char *what)
{
    cr_assert_eq(px_code(rs), code, "%s: expected %s, got %s: \"%s\"", what, wire_code_name(code),
                 wire_code_name(px_code(rs)), px_msg(rs));
    if (needle)
        cr_assert_not_null(strstr(px_msg(rs), needle), "%s: message \"%s\" does not name \"%s\"",
                           what, px_msg(rs), needle);
    track__v1__response__free_unpacked(rs, NULL);
}

static void hello_ok(int s, const char *after)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Hello h = TRACK__V1__HELLO__INIT;
    h.client_version = wire_str("test");
    rq.op_case = TRACK__V1__REQUEST__OP_HELLO;
    rq.hello = &h;
    Track__V1__Response *rs = px_call(s, &rq);
    expect_ok(rs, after);
    cr_assert_eq(rs->result_case, TRACK__V1__RESPONSE__RESULT_HELLO, "after %s", after);
    track__v1__response__free_unpacked(rs, NULL);
}

static int daemon_alive(void)
{
    int st;
    return d.pid > 0 && waitpid(d.pid, &st, WNOHANG) == 0 && kill(d.pid, 0) == 0;
}

/* ---- building requests -------------------------------------------------------- */

static void make_run_id(uint8_t id[16], uint8_t seed)
{
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(seed * 17 + i * 29 + 3);
}

static Track__V1__Response *run_start(int s, const uint8_t id[16], const char *experiment)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunStart r = TRACK__V1__RUN_START__INIT;
    r.run_id.data = (uint8_t *)(uintptr_t)id;
    r.run_id.len = 16;
    r.experiment = wire_str(experiment);
    r.name = wire_str("proto-run");
    r.user = wire_str("tester");
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_START;
    rq.run_start = &r;
    return px_call(s, &rq);
}

/* Starts a run in experiment "proto" and returns its hex id. */
static void new_run(int s, uint8_t seed, char hex[33])
{
    uint8_t id[16];
    make_run_id(id, seed);
    Track__V1__Response *rs = run_start(s, id, "proto");
    expect_ok(rs, "run start");
    track__v1__response__free_unpacked(rs, NULL);
    wire_hex(id, hex);
}

/* A LogBatch of one metric series; the caller's arrays. */
struct batch {
    Track__V1__Request rq;
    Track__V1__LogBatch lb;
    Track__V1__MetricSeries ms;
    Track__V1__MetricSeries *msp[1];
    Track__V1__KeyValue kv;
    Track__V1__KeyValue *kvp[1];
};

static void batch_init(struct batch *b, const char *run)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__LogBatch lb = TRACK__V1__LOG_BATCH__INIT;
    b->rq = rq;
    b->lb = lb;
    b->lb.run = wire_str(run);
    b->rq.op_case = TRACK__V1__REQUEST__OP_LOG_BATCH;
    b->rq.log_batch = &b->lb;
}

static void batch_metric(struct batch *b, const char *key, int64_t *steps, size_t n_steps,
                         double *values, size_t n_values)
{
    track__v1__metric_series__init(&b->ms);
    b->ms.key = wire_str(key);
    b->ms.steps = steps;
    b->ms.n_steps = n_steps;
    b->ms.values = values;
    b->ms.n_values = n_values;
    b->msp[0] = &b->ms;
    b->lb.metrics = b->msp;
    b->lb.n_metrics = 1;
}

static void batch_kv(struct batch *b, int param, const char *key, const char *value)
{
    track__v1__key_value__init(&b->kv);
    b->kv.key = wire_str(key);
    b->kv.value = wire_str(value);
    b->kvp[0] = &b->kv;
    if (param) {
        b->lb.params = b->kvp;
        b->lb.n_params = 1;
    } else {
        b->lb.tags = b->kvp;
        b->lb.n_tags = 1;
    }
}

/* Points stored for (run, key), through MetricHistory; -1 when NOT_FOUND. */
static int64_t history_count(int s, const char *run, const char *key, double *sum)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__MetricHistory mh = TRACK__V1__METRIC_HISTORY__INIT;
    mh.run = wire_str(run);
    mh.key = wire_str(key);
    rq.op_case = TRACK__V1__REQUEST__OP_METRIC_HISTORY;
    rq.metric_history = &mh;
    Track__V1__Response *rs = px_call(s, &rq);
    if (px_code(rs) == TRACK__V1__CODE__NOT_FOUND) {
        track__v1__response__free_unpacked(rs, NULL);
        return -1;
    }
    expect_ok(rs, "metric history");
    cr_assert_eq(rs->result_case, TRACK__V1__RESPONSE__RESULT_METRIC_HISTORY);
    cr_assert_not(rs->metric_history->more, "history of a few points came in pieces");
    int64_t n = (int64_t)rs->metric_history->series->n_values;
    if (sum) {
        *sum = 0;
        for (size_t i = 0; i < rs->metric_history->series->n_values; i++)
            *sum += rs->metric_history->series->values[i];
    }
    track__v1__response__free_unpacked(rs, NULL);
    return n;
}

/* The summary count of (run, key) from RunGet; -1 when the run has none. */
static int64_t summary_count(int s, const char *run, const char *key)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunGet rg = TRACK__V1__RUN_GET__INIT;
    int64_t count = -1;
    rg.run = wire_str(run);
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_GET;
    rq.run_get = &rg;
    Track__V1__Response *rs = px_call(s, &rq);
    expect_ok(rs, "run get");
    Track__V1__Run *r = rs->run_get->run;
    for (size_t i = 0; i < r->n_metrics; i++)
        if (strcmp(r->metrics[i]->key, key) == 0)
            count = r->metrics[i]->count;
    track__v1__response__free_unpacked(rs, NULL);
    return count;
}

/* ---- Hello ------------------------------------------------------------------------ */

Test(protocol, hello_returns_version_and_limits)
{
    int s = px_socket(5000);
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Hello h = TRACK__V1__HELLO__INIT;
    h.client_version = wire_str("proto-test 1");
    rq.op_case = TRACK__V1__REQUEST__OP_HELLO;
    rq.hello = &h;
    uint8_t rid[16];
    px_rid(rid);
    rq.request_id.data = rid;
    rq.request_id.len = 16;
    Track__V1__Response *rs = px_call(s, &rq);
    expect_ok(rs, "hello");
    cr_assert_eq(rs->result_case, TRACK__V1__RESPONSE__RESULT_HELLO);
    cr_assert_eq(rs->request_id.len, 16, "the reply carries the request id");
    cr_assert_eq(memcmp(rs->request_id.data, rid, 16), 0);
    Track__V1__HelloResult *r = rs->hello;
    cr_assert(r->server_version && *r->server_version, "server_version empty");
    cr_assert_eq(r->protocol, WIRE_PROTOCOL);
    cr_assert_eq(r->max_frame_bytes, 16u << 20, "max_frame_bytes %llu",
                 (unsigned long long)r->max_frame_bytes);
    cr_assert_gt(r->max_batch_points, 0);
    cr_assert_eq(r->max_batch_points, 262144u);
    cr_assert_eq(r->max_key_bytes, 250u);
    cr_assert_eq(r->max_value_bytes, 65536u);
    track__v1__response__free_unpacked(rs, NULL);
    nn_close(s);
    PASS();
}

/* ---- exactly once ------------------------------------------------------------------ */

Test(protocol, repeated_request_id_is_applied_once_and_answered_the_same)
{
    int s = px_socket(5000);
    char run[33];
    new_run(s, 1, run);

    int64_t steps[50];
    double values[50];
    for (int i = 0; i < 50; i++) {
        steps[i] = i;
        values[i] = i * 0.5;
    }
    struct batch b;
    batch_init(&b, run);
    batch_metric(&b, "loss", steps, 50, values, 50);
    uint8_t rid[16];
    px_rid(rid);
    b.rq.request_id.data = rid;
    b.rq.request_id.len = 16;
    size_t len, r1len, r2len, r3len;
    uint8_t *frame = px_pack(&b.rq, &len), *r1, *r2, *r3;

    cr_assert_eq(px_xchg(s, frame, len, &r1, &r1len), 0);
    cr_assert_eq(px_xchg(s, frame, len, &r2, &r2len), 0);
    Track__V1__Response *rs = px_unpack(r1, r1len);
    expect_ok(rs, "first log batch");
    cr_assert_eq(rs->result_case, TRACK__V1__RESPONSE__RESULT_LOG_BATCH);
    cr_assert_eq(rs->log_batch->points, 50);
    track__v1__response__free_unpacked(rs, NULL);
    cr_assert_eq(r1len, r2len, "the repeat got a different answer (%zu vs %zu bytes)", r1len,
                 r2len);
    cr_assert_eq(memcmp(r1, r2, r1len), 0, "the repeat got a different answer");

    /* on a second connection too: ids are the daemon's, not a socket's */
    int s2 = px_socket(5000);
    cr_assert_eq(px_xchg(s2, frame, len, &r3, &r3len), 0);
    cr_assert_eq(r3len, r1len);
    cr_assert_eq(memcmp(r1, r3, r1len), 0);
    nn_close(s2);

    double sum;
    cr_assert_eq(history_count(s, run, "loss", &sum), 50, "points applied more than once");
    cr_assert_float_eq(sum, 0.5 * (49 * 50 / 2), 1e-9);
    cr_assert_eq(summary_count(s, run, "loss"), 50);
    free(frame);
    free(r1);
    free(r2);
    free(r3);
    nn_close(s);
    PASS();
}

Test(protocol, same_request_id_sent_concurrently_on_two_sockets_is_applied_once)
{
    int s = px_socket(5000);
    char run[33];
    new_run(s, 2, run);

    int64_t steps[10];
    double values[10];
    for (int i = 0; i < 10; i++) {
        steps[i] = i;
        values[i] = 1.0;
    }
    for (int round = 0; round < 20; round++) {
        struct batch b;
        char key[32];
        snprintf(key, sizeof(key), "k%d", round);
        batch_init(&b, run);
        batch_metric(&b, key, steps, 10, values, 10);
        uint8_t rid[16];
        px_rid(rid);
        b.rq.request_id.data = rid;
        b.rq.request_id.len = 16;
        size_t len;
        uint8_t *frame = px_pack(&b.rq, &len);
        int a = px_socket(5000), c = px_socket(5000);
        /* both sent before either answer is read: they may share a batch */
        cr_assert_geq(nn_send(a, frame, len, 0), 0);
        cr_assert_geq(nn_send(c, frame, len, 0), 0);
        void *m1 = NULL, *m2 = NULL;
        int n1 = nn_recv(a, &m1, NN_MSG, 0), n2 = nn_recv(c, &m2, NN_MSG, 0);
        cr_assert_gt(n1, 0, "no reply: %s", nn_strerror(nn_errno()));
        cr_assert_gt(n2, 0, "no reply: %s", nn_strerror(nn_errno()));
        cr_assert_eq(n1, n2);
        cr_assert_eq(memcmp(m1, m2, (size_t)n1), 0, "round %d: answers differ", round);
        Track__V1__Response *rs = px_unpack(m1, (size_t)n1);
        expect_ok(rs, "concurrent log batch");
        track__v1__response__free_unpacked(rs, NULL);
        nn_freemsg(m1);
        nn_freemsg(m2);
        nn_close(a);
        nn_close(c);
        free(frame);
        cr_assert_eq(history_count(s, run, key, NULL), 10, "round %d: applied twice", round);
    }
    nn_close(s);
    PASS();
}

Test(protocol, repeated_request_id_is_not_applied_again_after_a_crash_and_restart)
{
    int s = px_socket(5000);
    char run[33];
    new_run(s, 3, run);

    int64_t steps[7] = {0, 1, 2, 3, 4, 5, 6};
    double values[7] = {1, 2, 3, 4, 5, 6, 7};
    struct batch b;
    batch_init(&b, run);
    batch_metric(&b, "acc", steps, 7, values, 7);
    batch_kv(&b, 1, "lr", "0.01");
    uint8_t rid[16];
    px_rid(rid);
    b.rq.request_id.data = rid;
    b.rq.request_id.len = 16;
    size_t len, r1len, r2len;
    uint8_t *frame = px_pack(&b.rq, &len), *r1, *r2;
    cr_assert_eq(px_xchg(s, frame, len, &r1, &r1len), 0);
    Track__V1__Response *rs = px_unpack(r1, r1len);
    expect_ok(rs, "log batch before the crash");
    track__v1__response__free_unpacked(rs, NULL);
    nn_close(s);

    /* acknowledged means committed: SIGKILL right after the ack */
    fx_daemon_kill(&d);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "trackd did not restart");

    s = px_socket(5000);
    cr_assert_eq(px_xchg(s, frame, len, &r2, &r2len), 0);
    cr_assert_eq(r1len, r2len);
    cr_assert_eq(memcmp(r1, r2, r1len), 0, "the replay after restart got a different answer");
    cr_assert_eq(history_count(s, run, "acc", NULL), 7, "replayed batch applied again");
    cr_assert_eq(summary_count(s, run, "acc"), 7);
    free(frame);
    free(r1);
    free(r2);
    nn_close(s);
    PASS();
}

/* ---- bad input ------------------------------------------------------------------------ */

Test(protocol, garbage_frame_is_invalid_argument_and_the_next_request_works)
{
    int s = px_socket(5000);
    static const uint8_t garbage[][12] = {
        {0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
        {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 'n', 'o', 't', ' ', 'p', 'b'},
        {0x0a, 0x10, 'a', 'b', 'c', 0, 0, 0, 0, 0, 0, 0}, /* truncated request_id */
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        uint8_t *reply;
        size_t rlen;
        cr_assert_eq(px_xchg(s, garbage[i], sizeof(garbage[i]), &reply, &rlen), 0,
                     "garbage %zu: no reply", i);
        Track__V1__Response *rs = px_unpack(reply, rlen);
        free(reply);
        expect_error(rs, TRACK__V1__CODE__INVALID_ARGUMENT, NULL, "garbage frame");
        hello_ok(s, "a garbage frame");
    }
    /* a frame of 8 MiB below the limit is still answered, not dropped */
    size_t big = 8u << 20;
    uint8_t *junk = malloc(big), *reply;
    size_t rlen;
    memset(junk, 0xff, big);
    junk[0] = 0x0f;
    cr_assert_eq(px_xchg(s, junk, big, &reply, &rlen), 0);
    free(junk);
    Track__V1__Response *rs = px_unpack(reply, rlen);
    free(reply);
    expect_error(rs, TRACK__V1__CODE__INVALID_ARGUMENT, NULL, "8 MiB of garbage");
    hello_ok(s, "8 MiB of garbage");
    nn_close(s);
    PASS();
}

Test(protocol, request_id_of_wrong_length_is_invalid_argument_naming_request_id)
{
    int s = px_socket(5000);
    static const size_t lens[] = {0, 8, 15, 17, 32};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t rid[32] = {1, 2, 3};
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__Hello h = TRACK__V1__HELLO__INIT;
        rq.op_case = TRACK__V1__REQUEST__OP_HELLO;
        rq.hello = &h;
        rq.request_id.data = rid;
        rq.request_id.len = lens[i];
        size_t len, rlen;
        uint8_t *frame = px_pack(&rq, &len), *reply;
        cr_assert_eq(px_xchg(s, frame, len, &reply, &rlen), 0);
        free(frame);
        Track__V1__Response *rs = px_unpack(reply, rlen);
        free(reply);
        expect_error(rs, TRACK__V1__CODE__INVALID_ARGUMENT, "request_id", "short request id");
        hello_ok(s, "a bad request id");
    }
    /* a write with a bad id is refused too (it could not be deduplicated) */
    char run[33];
    new_run(s, 4, run);
    int64_t steps[1] = {0};
    double values[1] = {1};
    struct batch b;
    batch_init(&b, run);
    batch_metric(&b, "m", steps, 1, values, 1);
    uint8_t rid[8] = {9};
    b.rq.request_id.data = rid;
    b.rq.request_id.len = 8;
    size_t len, rlen;
    uint8_t *frame = px_pack(&b.rq, &len), *reply;
    cr_assert_eq(px_xchg(s, frame, len, &reply, &rlen), 0);
    free(frame);
    Track__V1__Response *rs = px_unpack(reply, rlen);
    free(reply);
    expect_error(rs, TRACK__V1__CODE__INVALID_ARGUMENT, "request_id", "write with short id");
    cr_assert_eq(history_count(s, run, "m", NULL), -1, "a write with a bad id was applied");
    nn_close(s);
    PASS();
}

Test(protocol, request_without_operation_is_invalid_argument)
{
    int s = px_socket(5000);
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    expect_error(px_call(s, &rq), TRACK__V1__CODE__INVALID_ARGUMENT, "operation", "no op");
    hello_ok(s, "a request without operation");
    nn_close(s);
    PASS();
}

static void log_metric_key_rejected(int s, const char *run, const char *key, const char *needle)
{
    int64_t steps[1] = {0};
    double values[1] = {1.0};
    struct batch b;
    batch_init(&b, run);
    batch_metric(&b, key, steps, 1, values, 1);
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__INVALID_ARGUMENT, needle, key);
    hello_ok(s, key);
}

static void log_kv_rejected(int s, const char *run, int param, const char *key, const char *value,
                            const char *needle)
{
    struct batch b;
    batch_init(&b, run);
    batch_kv(&b, param, key, value);
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__INVALID_ARGUMENT, needle, key);
    hello_ok(s, key);
}

Test(protocol, bad_keys_are_invalid_argument_naming_the_field)
{
    int s = px_socket(5000);
    char run[33], k251[252], k250[251];
    new_run(s, 5, run);
    memset(k251, 'k', 251);
    k251[251] = '\0';
    memset(k250, 'k', 250);
    k250[250] = '\0';

    log_metric_key_rejected(s, run, "", "metric key");
    log_metric_key_rejected(s, run, k251, "metric key");
    log_metric_key_rejected(s, run, k251, "250");
    log_metric_key_rejected(s, run, "loss*2", "metric key");
    log_metric_key_rejected(s, run, "loss\"x", "metric key");
    log_metric_key_rejected(s, run, "a/../b", "metric key");
    log_metric_key_rejected(s, run, "..", "..");
    log_metric_key_rejected(s, run, "a/..", "metric key");
    log_metric_key_rejected(s, run, "/abs", "metric key");
    log_kv_rejected(s, run, 1, "", "v", "param key");
    log_kv_rejected(s, run, 1, k251, "v", "param key");
    log_kv_rejected(s, run, 1, "p$", "v", "param key");
    log_kv_rejected(s, run, 1, "x/../y", "v", "param key");
    log_kv_rejected(s, run, 0, "t\tab", "v", "tag key");
    log_kv_rejected(s, run, 0, "../t", "v", "tag key");

    /* the edges that are fine: 250 bytes, and the whole allowed set */
    int64_t steps[1] = {0};
    double values[1] = {2.0};
    static const char *const good[] = {"x", "a..b", "a/..b/c", "train/loss: top-1_acc. v2"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]) + 1; i++) {
        const char *key = i < sizeof(good) / sizeof(good[0]) ? good[i] : k250;
        struct batch b;
        batch_init(&b, run);
        batch_metric(&b, key, steps, 1, values, 1);
        Track__V1__Response *rs = px_call(s, &b.rq);
        expect_ok(rs, key);
        track__v1__response__free_unpacked(rs, NULL);
        cr_assert_eq(history_count(s, run, key, NULL), 1, "key \"%s\"", key);
    }
    nn_close(s);
    PASS();
}

Test(protocol, oversized_and_non_utf8_values_are_invalid_argument)
{
    int s = px_socket(5000);
    char run[33];
    new_run(s, 6, run);

    char *big = malloc(70001);
    memset(big, 'v', 70000);
    big[70000] = '\0';
    log_kv_rejected(s, run, 1, "big", big, "param \"big\" value");
    log_kv_rejected(s, run, 1, "big", big, "65536");
    log_kv_rejected(s, run, 0, "big", big, "tag \"big\" value");
    /* exactly the limit is fine */
    big[65536] = '\0';
    struct batch b;
    batch_init(&b, run);
    batch_kv(&b, 1, "edge", big);
    Track__V1__Response *rs = px_call(s, &b.rq);
    expect_ok(rs, "a 65536-byte param");
    track__v1__response__free_unpacked(rs, NULL);
    free(big);

    static const char *const bad_utf8[] = {
        "\xc3\x28",         /* bad continuation */
        "abc\xff",          /* never valid */
        "\xe2\x82",         /* truncated at the end */
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
    };
    for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++)
        log_kv_rejected(s, run, 0, "note", bad_utf8[i], "UTF-8");
    log_kv_rejected(s, run, 1, "pnote", "\xc3\x28", "param \"pnote\" value");

    /* valid multi-byte text is kept byte for byte */
    const char *text = "na\xc3\xafve \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80";
    batch_init(&b, run);
    batch_kv(&b, 0, "note", text);
    rs = px_call(s, &b.rq);
    expect_ok(rs, "utf-8 tag");
    track__v1__response__free_unpacked(rs, NULL);

    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunGet rg = TRACK__V1__RUN_GET__INIT;
    rg.run = run;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_GET;
    rq.run_get = &rg;
    rs = px_call(s, &rq);
    expect_ok(rs, "run get");
    const char *got = NULL;
    for (size_t i = 0; i < rs->run_get->run->n_tags; i++)
        if (strcmp(rs->run_get->run->tags[i]->key, "note") == 0)
            got = rs->run_get->run->tags[i]->value;
    cr_assert_not_null(got, "tag note missing");
    cr_assert_str_eq(got, text);
    int has_edge = 0;
    for (size_t i = 0; i < rs->run_get->run->n_params; i++)
        if (strcmp(rs->run_get->run->params[i]->key, "edge") == 0)
            has_edge = strlen(rs->run_get->run->params[i]->value) == 65536;
    cr_assert(has_edge, "the 65536-byte param was not kept whole");
    track__v1__response__free_unpacked(rs, NULL);
    nn_close(s);
    PASS();
}

Test(protocol, bad_metric_columns_are_invalid_argument)
{
    int s = px_socket(5000);
    char run[33];
    new_run(s, 7, run);

    int64_t neg[3] = {0, -1, 2}, steps[3] = {0, 1, 2};
    double values[3] = {1, 2, 3};
    struct batch b;
    batch_init(&b, run);
    batch_metric(&b, "loss", neg, 3, values, 3);
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__INVALID_ARGUMENT, "step", "negative step");
    hello_ok(s, "a negative step");

    batch_init(&b, run);
    batch_metric(&b, "loss", steps, 3, values, 2);
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__INVALID_ARGUMENT, "loss", "3 steps, 2 values");
    hello_ok(s, "mismatched columns");

    int64_t times[2] = {1, 2};
    batch_init(&b, run);
    batch_metric(&b, "loss", steps, 3, values, 3);
    b.ms.times_ms = times;
    b.ms.n_times_ms = 2;
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__INVALID_ARGUMENT, "loss", "2 times");

    int64_t negt[3] = {1, -5, 3};
    batch_init(&b, run);
    batch_metric(&b, "loss", steps, 3, values, 3);
    b.ms.times_ms = negt;
    b.ms.n_times_ms = 3;
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__INVALID_ARGUMENT, "time", "negative time");

    batch_init(&b, run);
    batch_metric(&b, "loss", steps, 0, values, 0);
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__INVALID_ARGUMENT, "loss", "no points");
    hello_ok(s, "an empty series");

    /* a rejected batch leaves nothing behind, not even its good part */
    batch_init(&b, run);
    batch_metric(&b, "loss", neg, 3, values, 3);
    batch_kv(&b, 1, "should_not_exist", "1");
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__INVALID_ARGUMENT, "step", "mixed batch");
    cr_assert_eq(history_count(s, run, "loss", NULL), -1);
    nn_close(s);
    PASS();
}

static Track__V1__Response *run_get(int s, const char *run)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunGet rg = TRACK__V1__RUN_GET__INIT;
    rg.run = wire_str(run);
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_GET;
    rq.run_get = &rg;
    return px_call(s, &rq);
}

Test(protocol, malformed_run_ids_are_invalid_argument_and_unknown_ones_not_found)
{
    int s = px_socket(5000);
    char run[33];
    new_run(s, 8, run);

    static const char *const bad[] = {
        "zz", "abc", "", "a", "xyzw", "0123456789abcdef0123456789abcdef0", "0123-567"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_error(run_get(s, bad[i]), TRACK__V1__CODE__INVALID_ARGUMENT, "run", bad[i]);
        hello_ok(s, bad[i]);
    }
    const char *unknown = "ffffffffffffffffffffffffffffffff";
    if (strcmp(run, unknown) == 0)
        unknown = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    expect_error(run_get(s, unknown), TRACK__V1__CODE__NOT_FOUND, NULL, "unknown run get");

    /* writes to an unknown run, metric or param */
    int64_t steps[1] = {0};
    double values[1] = {1};
    struct batch b;
    batch_init(&b, unknown);
    batch_metric(&b, "loss", steps, 1, values, 1);
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__NOT_FOUND, NULL, "metric to unknown run");
    batch_init(&b, unknown);
    batch_kv(&b, 1, "lr", "1");
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__NOT_FOUND, NULL, "param to unknown run");
    batch_init(&b, "zz");
    batch_kv(&b, 0, "t", "1");
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__INVALID_ARGUMENT, "run", "tag to run zz");

    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunEnd re = TRACK__V1__RUN_END__INIT;
    re.run = wire_str(unknown);
    re.status = TRACK__V1__RUN_STATUS__FINISHED;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_END;
    rq.run_end = &re;
    expect_error(px_call(s, &rq), TRACK__V1__CODE__NOT_FOUND, NULL, "end unknown run");

    /* an unknown prefix is NOT_FOUND; the real one's prefix, upper case too, resolves */
    char prefix[9];
    memcpy(prefix, run, 8);
    prefix[8] = '\0';
    for (int i = 0; i < 8; i++)
        if (prefix[i] >= 'a' && prefix[i] <= 'f')
            prefix[i] = (char)(prefix[i] - 'a' + 'A');
    Track__V1__Response *rs = run_get(s, prefix);
    expect_ok(rs, "run get by upper-case prefix");
    char hex[33];
    cr_assert_eq(rs->run_get->run->run_id.len, 16);
    wire_hex(rs->run_get->run->run_id.data, hex);
    cr_assert_str_eq(hex, run);
    track__v1__response__free_unpacked(rs, NULL);
    nn_close(s);
    PASS();
}

Test(protocol, frame_over_16_mib_is_dropped_and_the_daemon_keeps_serving)
{
    int s = px_socket(1000);
    size_t big = (16u << 20) + 4096;
    uint8_t *junk = malloc(big), *reply = NULL;
    size_t rlen;
    memset(junk, 0x0f, big);
    long long t0 = fx_now_ms();
    int e = px_xchg(s, junk, big, &reply, &rlen);
    free(junk);
    free(reply);
    cr_assert_eq(e, ETIMEDOUT, "expected the oversized frame to go unanswered, got %s",
                 e ? nn_strerror(e) : "a reply");
    cr_assert_lt(fx_now_ms() - t0, 5000);
    nn_close(s);

    cr_assert(daemon_alive(), "trackd died on an oversized frame");
    s = px_socket(5000);
    hello_ok(s, "an oversized frame on another connection");
    char run[33];
    new_run(s, 9, run);
    cr_assert_eq(history_count(s, run, "none", NULL), -1);
    nn_close(s);
    cr_assert(daemon_alive(), "trackd died");
    cr_assert_eq(fx_daemon_stop(&d), 0, "trackd did not exit cleanly on SIGTERM");
    PASS();
}

/* ---- run start replays ------------------------------------------------------------------ */

Test(protocol, run_start_replayed_with_a_new_request_id_is_accepted_in_the_same_experiment)
{
    int s = px_socket(5000);
    uint8_t id[16];
    char hex[33];
    make_run_id(id, 10);
    wire_hex(id, hex);

    Track__V1__Response *rs = run_start(s, id, "replays");
    expect_ok(rs, "first run start");
    cr_assert_eq(rs->result_case, TRACK__V1__RESPONSE__RESULT_RUN);
    cr_assert_str_eq(rs->run->experiment, "replays");
    cr_assert_eq(rs->run->status, TRACK__V1__RUN_STATUS__RUNNING);
    int64_t start = rs->run->start_ms;
    track__v1__response__free_unpacked(rs, NULL);

    rs = run_start(s, id, "replays");
    expect_ok(rs, "replayed run start, same experiment");
    cr_assert_eq(rs->run->start_ms, start, "a replay changed the run");
    track__v1__response__free_unpacked(rs, NULL);

    expect_error(run_start(s, id, "elsewhere"), TRACK__V1__CODE__ALREADY_EXISTS, hex,
                 "same run id in another experiment");

    /* exactly one run in the experiment */
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunList rl = TRACK__V1__RUN_LIST__INIT;
    char *exps[1] = {wire_str("replays")};
    rl.experiments = exps;
    rl.n_experiments = 1;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_LIST;
    rq.run_list = &rl;
    rs = px_call(s, &rq);
    expect_ok(rs, "run list");
    cr_assert_eq(rs->run_list->n_runs, 1);
    track__v1__response__free_unpacked(rs, NULL);

    /* a run id that is not 16 bytes */
    Track__V1__RunStart r = TRACK__V1__RUN_START__INIT;
    Track__V1__Request rq2 = TRACK__V1__REQUEST__INIT;
    r.run_id.data = id;
    r.run_id.len = 15;
    rq2.op_case = TRACK__V1__REQUEST__OP_RUN_START;
    rq2.run_start = &r;
    expect_error(px_call(s, &rq2), TRACK__V1__CODE__INVALID_ARGUMENT, "run_id", "15-byte run id");
    nn_close(s);
    PASS();
}

Test(protocol, batches_are_held_to_the_limits_that_hello_announces)
{
    int s = px_socket(10000);
    char run[33];
    new_run(s, 11, run);

    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Hello h = TRACK__V1__HELLO__INIT;
    rq.op_case = TRACK__V1__REQUEST__OP_HELLO;
    rq.hello = &h;
    Track__V1__Response *rs = px_call(s, &rq);
    expect_ok(rs, "hello");
    size_t max = rs->hello->max_batch_points;
    track__v1__response__free_unpacked(rs, NULL);

    int64_t *steps = malloc((max + 1) * sizeof(*steps));
    double *values = malloc((max + 1) * sizeof(*values));
    for (size_t i = 0; i <= max; i++) {
        steps[i] = (int64_t)i;
        values[i] = (double)i;
    }
    struct batch b;
    batch_init(&b, run);
    batch_metric(&b, "big", steps, max + 1, values, max + 1);
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__INVALID_ARGUMENT, "points",
                 "one point over max_batch_points");
    cr_assert_eq(history_count(s, run, "big", NULL), -1, "an over-limit batch was applied");

    batch_init(&b, run);
    batch_metric(&b, "big", steps, max, values, max);
    rs = px_call(s, &b.rq);
    expect_ok(rs, "exactly max_batch_points");
    cr_assert_eq(rs->log_batch->points, (int64_t)max);
    track__v1__response__free_unpacked(rs, NULL);
    free(steps);
    free(values);

    /* history arguments */
    Track__V1__Request hq = TRACK__V1__REQUEST__INIT;
    Track__V1__MetricHistory mh = TRACK__V1__METRIC_HISTORY__INIT;
    mh.run = run;
    mh.key = wire_str("big");
    mh.after_seq = -1;
    hq.op_case = TRACK__V1__REQUEST__OP_METRIC_HISTORY;
    hq.metric_history = &mh;
    expect_error(px_call(s, &hq), TRACK__V1__CODE__INVALID_ARGUMENT, "after_seq",
                 "negative cursor");
    mh.after_seq = 0;
    mh.max_points = -5;
    expect_error(px_call(s, &hq), TRACK__V1__CODE__INVALID_ARGUMENT, "max_points",
                 "negative max_points");
    mh.max_points = 1000;
    mh.after_seq = (int64_t)max - 10;
    rs = px_call(s, &hq);
    expect_ok(rs, "history tail");
    cr_assert_eq(rs->metric_history->series->n_values, 10);
    cr_assert_eq(rs->metric_history->series->steps[0], (int64_t)max - 10);
    cr_assert_eq(rs->metric_history->next_seq, (int64_t)max);
    cr_assert_not(rs->metric_history->more);
    track__v1__response__free_unpacked(rs, NULL);
    nn_close(s);
    PASS();
}

Test(protocol, param_conflict_from_two_clients_at_once_lets_exactly_one_win)
{
    int s = px_socket(5000);
    char run[33];
    new_run(s, 7, run);

    for (int round = 0; round < 10; round++) {
        char key[16], va[16], vb[16];
        snprintf(key, sizeof(key), "p%d", round);
        snprintf(va, sizeof(va), "a%d", round);
        snprintf(vb, sizeof(vb), "b%d", round);
        struct batch ba, bb;
        uint8_t ra[16], rb[16];
        size_t la, lb;
        batch_init(&ba, run);
        batch_kv(&ba, 1, key, va);
        batch_init(&bb, run);
        batch_kv(&bb, 1, key, vb);
        px_rid(ra);
        px_rid(rb);
        ba.rq.request_id = (ProtobufCBinaryData){16, ra};
        bb.rq.request_id = (ProtobufCBinaryData){16, rb};
        uint8_t *fa = px_pack(&ba.rq, &la), *fb = px_pack(&bb.rq, &lb);
        int a = px_socket(5000), c = px_socket(5000);
        /* both in flight before either answer is read */
        cr_assert_geq(nn_send(a, fa, la, 0), 0);
        cr_assert_geq(nn_send(c, fb, lb, 0), 0);
        void *m1 = NULL, *m2 = NULL;
        int n1 = nn_recv(a, &m1, NN_MSG, 0), n2 = nn_recv(c, &m2, NN_MSG, 0);
        cr_assert(n1 > 0 && n2 > 0, "no reply");
        Track__V1__Response *r1 = px_unpack(m1, (size_t)n1), *r2 = px_unpack(m2, (size_t)n2);
        int ok1 = px_code(r1) == 0, ok2 = px_code(r2) == 0;
        cr_assert(ok1 != ok2, "round %d: exactly one of two conflicting params must win (%d %d)",
                  round, px_code(r1), px_code(r2));
        Track__V1__Response *loser = ok1 ? r2 : r1;
        cr_assert_eq(px_code(loser), TRACK__V1__CODE__CONFLICT);
        cr_assert(strstr(px_msg(loser), va) && strstr(px_msg(loser), vb),
                  "the conflict names both values: %s", px_msg(loser));
        track__v1__response__free_unpacked(r1, NULL);
        track__v1__response__free_unpacked(r2, NULL);
        nn_freemsg(m1);
        nn_freemsg(m2);
        nn_close(a);
        nn_close(c);
        free(fa);
        free(fb);
    }
    hello_ok(s, "after the conflicts");
    nn_close(s);
    PASS();
}

Test(protocol, sql_looking_strings_are_stored_verbatim)
{
    static const char *const evil[] = {
        "'; DROP TABLE runs; --",
        "x' OR '1'='1",
        "\" OR \"\"=\"",
        "1; DELETE FROM metric_chunks",
        "Robert'); DROP TABLE params;--",
    };
    int s = px_socket(5000);
    char run[33];
    new_run(s, 8, run);
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        struct batch b;
        char key[16];
        snprintf(key, sizeof(key), "evil%zu", i);
        batch_init(&b, run);
        batch_kv(&b, 0, key, evil[i]);
        Track__V1__Response *rs = px_call(s, &b.rq);
        expect_ok(rs, "tag with an SQL-looking value");
        track__v1__response__free_unpacked(rs, NULL);
    }
    /* an SQL-looking run reference is just a malformed run id */
    struct batch b;
    batch_init(&b, "abcd' OR 1=1 --");
    batch_kv(&b, 0, "k", "v");
    expect_error(px_call(s, &b.rq), TRACK__V1__CODE__INVALID_ARGUMENT, "run", "SQL as run id");

    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunGet rg = TRACK__V1__RUN_GET__INIT;
    rg.run = wire_str(run);
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_GET;
    rq.run_get = &rg;
    Track__V1__Response *rs = px_call(s, &rq);
    expect_ok(rs, "run get");
    size_t found = 0;
    for (size_t i = 0; i < rs->run_get->run->n_tags; i++) {
        Track__V1__KeyValue *t = rs->run_get->run->tags[i];
        if (strncmp(t->key, "evil", 4) == 0) {
            size_t k = strtoul(t->key + 4, NULL, 10);
            cr_assert_str_eq(t->value, evil[k], "tag %s changed on the way", t->key);
            found++;
        }
    }
    cr_assert_eq(found, sizeof(evil) / sizeof(evil[0]));
    track__v1__response__free_unpacked(rs, NULL);
    /* and the tables are all still there */
    cr_assert_eq(summary_count(s, run, "nothing"), -1);
    hello_ok(s, "after SQL-looking strings");
    nn_close(s);
    PASS();
}

/* RunEnd may carry the run's last points: stored with the end in one
 * commit; a bad series is refused naming it, and then neither the points
 * nor the end are stored; an end refused for its status takes its points
 * back with it. */
Test(protocol, an_end_with_its_last_points_stores_both_or_neither)
{
    int s = px_socket(5000);
    char run[33];
    new_run(s, 61, run);

    int64_t steps[] = {0, 1, 2}, bad_steps[] = {0, -1};
    double vals[] = {1, 2, 3};
    Track__V1__MetricSeries ms = TRACK__V1__METRIC_SERIES__INIT, *msp[] = {&ms};
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunEnd re = TRACK__V1__RUN_END__INIT;
    ms.key = wire_str("last");
    ms.steps = bad_steps;
    ms.n_steps = 2;
    ms.values = vals;
    ms.n_values = 2;
    re.run = wire_str(run);
    re.status = TRACK__V1__RUN_STATUS__FINISHED;
    re.metrics = msp;
    re.n_metrics = 1;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_END;
    rq.run_end = &re;
    expect_error(px_call(s, &rq), TRACK__V1__CODE__INVALID_ARGUMENT, "metric \"last\": step -1",
                 "an end whose points are bad");
    Track__V1__Response *rs = run_get(s, run);
    expect_ok(rs, "run get");
    cr_assert_eq(rs->run_get->run->status, TRACK__V1__RUN_STATUS__RUNNING, "the end was stored");
    track__v1__response__free_unpacked(rs, NULL);
    cr_assert_eq(history_count(s, run, "last", NULL), -1, "points of a refused end were stored");

    ms.steps = steps;
    ms.n_steps = 3;
    ms.n_values = 3;
    expect_ok(rs = px_call(s, &rq), "an end with 3 points");
    track__v1__response__free_unpacked(rs, NULL);
    double sum = 0;
    cr_assert_eq(history_count(s, run, "last", &sum), 3);
    cr_assert_eq(sum, 6.0);
    rs = run_get(s, run);
    cr_assert_eq(rs->run_get->run->status, TRACK__V1__RUN_STATUS__FINISHED);
    track__v1__response__free_unpacked(rs, NULL);

    /* ended FINISHED: an end as FAILED is a CONFLICT, and its points go with it */
    re.status = TRACK__V1__RUN_STATUS__FAILED;
    ms.key = wire_str("late");
    expect_error(px_call(s, &rq), TRACK__V1__CODE__CONFLICT, "already ended", "end it again");
    cr_assert_eq(history_count(s, run, "late", NULL), -1, "points of a refused end were stored");
    nn_close(s);
    PASS();
}
