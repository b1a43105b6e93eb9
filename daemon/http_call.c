/*
 * http_call.c: a route's Requests through the loop, and the one table that
 * maps track's wire codes to HTTP statuses and MLflow's error codes.
 *
 * Each connection thread of the front keeps its own nanomsg REQ socket to
 * SRV_HTTP_INPROC (made at its first call, closed by a pthread key
 * destructor when the thread ends), so calls never share a socket and
 * never take a lock. A call packs struct srv_http_head and the Request into
 * one frame and waits for the reply a second at a time: it gives up after
 * HTTP_CALL_MS, or at once when the front is stopping, with 503. REQ's own
 * resend is pushed out past that wait, and a call that gives up closes its
 * socket, so a call's frame reaches the loop once: the loop keeps no
 * request ids for the front (loop.c, "once"). A write answered 503 may
 * still commit; an HTTP client's retry is a new call (MLflow's params and
 * tags take the same value again; a metric point sent again is a second
 * point, as on MLflow's own server).
 */
#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static pthread_key_t sock_key;
static pthread_once_t sock_once = PTHREAD_ONCE_INIT;
static _Atomic int stopping;

static void sock_close(void *p)
{
    nn_close((int)(intptr_t)p - 1);
}

static void make_key(void)
{
    pthread_key_create(&sock_key, sock_close);
}

void http_call_set_stopping(int on)
{
    stopping = on;
}

void http_call_thread_end(void)
{
    pthread_once(&sock_once, make_key);
    void *p = pthread_getspecific(sock_key);
    if (p) {
        sock_close(p);
        pthread_setspecific(sock_key, NULL);
    }
}

/* This thread's socket to the loop, or -1. */
static int thread_sock(void)
{
    pthread_once(&sock_once, make_key);
    void *p = pthread_getspecific(sock_key);
    if (p)
        return (int)(intptr_t)p - 1;
    int s = nn_socket(AF_SP, NN_REQ);
    if (s < 0)
        return -1;
    int resend = 10 * HTTP_CALL_MS, tick = 1000, max = -1;
    if (nn_setsockopt(s, NN_REQ, NN_REQ_RESEND_IVL, &resend, sizeof(resend)) < 0 ||
        nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &tick, sizeof(tick)) < 0 ||
        nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max, sizeof(max)) < 0 ||
        nn_connect(s, SRV_HTTP_INPROC) < 0 ||
        pthread_setspecific(sock_key, (void *)(intptr_t)(s + 1))) {
        nn_close(s);
        return -1;
    }
    return s;
}

/* ---- the one table: wire code -> HTTP status, MLflow's error_code ------------------ */
static const struct {
    int code;
    int status;
    const char *name;
} codes[] = {
    {TRACK__V1__CODE__INVALID_ARGUMENT, 400, "INVALID_PARAMETER_VALUE"},
    {TRACK__V1__CODE__NOT_FOUND, 404, "RESOURCE_DOES_NOT_EXIST"},
    {TRACK__V1__CODE__ALREADY_EXISTS, 400, "RESOURCE_ALREADY_EXISTS"},
    /* a param logged again with another value is MLflow's INVALID_PARAMETER_VALUE */
    {TRACK__V1__CODE__CONFLICT, 400, "INVALID_PARAMETER_VALUE"},
    {TRACK__V1__CODE__UNAUTHENTICATED, 401, "UNAUTHENTICATED"},
    {TRACK__V1__CODE__PERMISSION_DENIED, 403, "PERMISSION_DENIED"},
    /* busy (a budget, a queue): the client backs off and retries 429 */
    {TRACK__V1__CODE__RESOURCE_EXHAUSTED, 429, "REQUEST_LIMIT_EXCEEDED"},
    {TRACK__V1__CODE__UNAVAILABLE, 503, "TEMPORARILY_UNAVAILABLE"},
    {TRACK__V1__CODE__INTERNAL, 500, "INTERNAL_ERROR"},
};

int http_status_of(int wire_code, const char **error_code)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i].code == wire_code) {
            *error_code = codes[i].name;
            return codes[i].status;
        }
    *error_code = "INTERNAL_ERROR";
    return 500;
}

int http_fail_wire(struct http_req *r, int wire_code, const char *msg)
{
    const char *name;
    int status = http_status_of(wire_code, &name);
    return http_fail(r, status, name, "%s", msg);
}

void http_response_free(Track__V1__Response *rs)
{
    if (rs)
        track__v1__response__free_unpacked(rs, NULL);
}

int http_call(struct http_req *r, Track__V1__Request *rq, Track__V1__Response **rs)
{
    uint8_t id[WIRE_ID_BYTES];
    struct srv_http_head head = {.magic = SRV_HTTP_MAGIC, .caller = r->caller};
    int s = thread_sock();

    *rs = NULL;
    if (s < 0)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "trackd: no channel to the loop: %s",
                         nn_strerror(nn_errno()));
    randombytes_buf(id, sizeof(id));
    rq->request_id.data = id;
    rq->request_id.len = sizeof(id);
    size_t n = track__v1__request__get_packed_size(rq);
    if (n > LIMIT_FRAME_BYTES)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "request of %zu bytes exceeds the frame limit of %u bytes", n,
                         (unsigned)LIMIT_FRAME_BYTES);
    uint8_t *frame = malloc(sizeof(head) + n);
    if (!frame)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "trackd out of memory");
    memcpy(frame, &head, sizeof(head));
    track__v1__request__pack(rq, frame + sizeof(head));
    int sent = nn_send(s, frame, sizeof(head) + n, 0);
    free(frame);
    rq->request_id.data = NULL;
    rq->request_id.len = 0;
    if (sent < 0)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "trackd: cannot reach the loop: %s",
                         nn_strerror(nn_errno()));
    int64_t until = wire_mono_ms() + HTTP_CALL_MS;
    for (;;) {
        void *buf = NULL;
        int len = nn_recv(s, &buf, NN_MSG, 0);
        if (len >= 0) {
            Track__V1__Response *got = track__v1__response__unpack(NULL, (size_t)len, buf);
            nn_freemsg(buf);
            if (!got)
                return http_fail(r, 500, "INTERNAL_ERROR", "trackd: a reply that does not unpack");
            if (got->error) {
                http_fail_wire(r, got->error->code, got->error->message);
                track__v1__response__free_unpacked(got, NULL);
                return -1;
            }
            *rs = got;
            return 0;
        }
        int e = nn_errno();
        if (e == ETIMEDOUT && !stopping && wire_mono_ms() < until)
            continue;
        if (e == EINTR && !stopping)
            continue;
        /* the request may still be in the loop: this socket goes, so REQ
         * can never resend it (the loop keeps no id of the front's calls,
         * loop.c "once"), and its late reply has nobody to reach */
        http_call_thread_end();
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "trackd %s; retry",
                         stopping ? "is stopping" : "did not answer in time");
    }
}
