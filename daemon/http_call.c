/*
 * http_call.c: a route's Requests through the loop, and the one table that
 * maps track's wire codes to HTTP statuses and MLflow's error codes.
 *
 * Each connection thread of the front keeps its own nanomsg socket to
 * SRV_HTTP_INPROC (made at its first call, closed by a pthread key
 * destructor when the thread ends), so calls never share a socket and
 * never take a lock. A call packs struct srv_http_head and the Request into
 * one frame and waits for the reply a second at a time: it gives up after
 * HTTP_CALL_MS, or at once when the front is stopping, with 503.
 *
 * The socket is a raw REQ (AF_SP_RAW): the call writes REQ's 4-byte header
 * itself (a request number of this thread, top bit set) and drops a reply
 * whose header is not its own (one to a call that gave up). A cooked REQ
 * would arm its resend timer at each send and hold each reply until that
 * timer is stopped, and nanomsg stops timers on its worker thread: two
 * wake-ups of that thread a call, one of them between the loop's reply and
 * this thread. A raw socket never resends, so a call's frame reaches the
 * loop once: the loop keeps no request ids for the front (loop.c, "once").
 * A write answered 503 may still commit; an HTTP client's retry is a new
 * call (MLflow's params and tags take the same value again; a metric point
 * sent again is a second point, as on MLflow's own server).
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
    int s = nn_socket(AF_SP_RAW, NN_REQ);
    if (s < 0)
        return -1;
    int tick = 1000, max = -1;
    if (nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &tick, sizeof(tick)) < 0 ||
        nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &tick, sizeof(tick)) < 0 ||
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

/* REQ's header: a cmsg of PROTO_SP, SP_HDR holding the header's size and the
 * request number, big-endian with its top bit set. */
struct req_hdr {
    struct nn_cmsghdr c;
    size_t size;
    unsigned char id[4];
};

static void req_hdr_set(struct req_hdr *h, uint32_t id)
{
    memset(h, 0, sizeof(*h));
    h->c.cmsg_len = NN_CMSG_LEN(sizeof(size_t) + 4);
    h->c.cmsg_level = PROTO_SP;
    h->c.cmsg_type = SP_HDR;
    h->size = 4;
    id |= 0x80000000u;
    h->id[0] = (unsigned char)(id >> 24);
    h->id[1] = (unsigned char)(id >> 16);
    h->id[2] = (unsigned char)(id >> 8);
    h->id[3] = (unsigned char)id;
}

/* Whether control (a received message's) carries exactly header `want`. */
static int req_hdr_is(const void *control, size_t len, const struct req_hdr *want)
{
    const struct nn_cmsghdr *c = control;
    size_t n;
    if (len < NN_CMSG_LEN(sizeof(size_t) + 4) || c->cmsg_level != PROTO_SP ||
        c->cmsg_type != SP_HDR || c->cmsg_len < NN_CMSG_LEN(sizeof(size_t) + 4))
        return 0;
    memcpy(&n, NN_CMSG_DATA(c), sizeof(n));
    return n == 4 && memcmp(NN_CMSG_DATA(c) + sizeof(size_t), want->id, 4) == 0;
}

int http_call(struct http_req *r, Track__V1__Request *rq, Track__V1__Response **rs)
{
    static _Thread_local uint32_t next_call;
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
    /* packed straight into nanomsg's message: sent without a copy */
    uint8_t *frame = nn_allocmsg(sizeof(head) + n, 0);
    if (!frame)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "trackd out of memory");
    memcpy(frame, &head, sizeof(head));
    track__v1__request__pack(rq, frame + sizeof(head));
    struct req_hdr hdr;
    req_hdr_set(&hdr, ++next_call);
    struct nn_iovec iov = {&frame, NN_MSG};
    struct nn_msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &hdr, .msg_controllen = sizeof(hdr)};
    int64_t until = wire_mono_ms() + HTTP_CALL_MS;
    /* a raw socket's send waits for its pipe (the loop still reading the
     * frame of a call that gave up): a second at a time, as the reply */
    int sent, e = 0;
    while ((sent = nn_sendmsg(s, &mh, 0)) < 0 && ((e = nn_errno()) == ETIMEDOUT || e == EINTR) &&
           !stopping && wire_mono_ms() < until)
        ;
    if (sent < 0)
        nn_freemsg(frame); /* nanomsg takes the message only when it is sent */
    rq->request_id.data = NULL;
    rq->request_id.len = 0;
    if (sent < 0)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "trackd: cannot reach the loop: %s",
                         nn_strerror(e));
    for (;;) {
        void *buf = NULL;
        char control[128] = {0}; /* no header: not ours */
        struct nn_iovec riov = {&buf, NN_MSG};
        struct nn_msghdr rmh = {.msg_iov = &riov,
                                .msg_iovlen = 1,
                                .msg_control = control,
                                .msg_controllen = sizeof(control)};
        int len = nn_recvmsg(s, &rmh, 0);
        if (len >= 0 && !req_hdr_is(control, sizeof(control), &hdr)) {
            nn_freemsg(buf); /* the late reply to a call that gave up */
            continue;
        }
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
        e = nn_errno();
        if (e == ETIMEDOUT && !stopping && wire_mono_ms() < until)
            continue;
        if (e == EINTR && !stopping)
            continue;
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "trackd %s; retry",
                         stopping ? "is stopping" : "did not answer in time");
    }
}
