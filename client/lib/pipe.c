/*
 * pipe.c: extra connections to the server, so a transfer (artifact chunks
 * up, blob pages down) keeps several requests in flight. A cooked REQ
 * socket carries one request at a time, and trackd's raw REP socket keeps
 * one reply at a time per connection, so "several in flight" means several
 * connections, each with at most one: trackd's workers then write (or
 * read) several chunks at once while the next ones travel. They are opened
 * on first use, after c's own socket reached the server (so autostart and
 * the liveness checks stay conn.c's), and closed with it (cl_disconnect).
 *
 * A request is packed straight into a nanomsg message and handed over
 * (NN_MSG), so a 1 MiB chunk is not copied once more on its way out. On a
 * sealed tcp:// server (c->seal) each request is sealed, with its own
 * ticket per connection, and each reply opened, as conn.c does.
 */
#include <errno.h>
#include <nanomsg/nn.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int cl_pipe_open(struct track_client *c, int n, struct track_err *err)
{
    if (n > CL_PIPE_MAX)
        n = CL_PIPE_MAX;
    if (n < 1)
        n = 1;
    if (c->sock < 0) {
        /* reach the server the usual way first (autostart, liveness) */
        (void)cl_frame_limit(c);
        if (c->sock < 0)
            return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot reach trackd at %s", c->server);
    }
    while (c->n_pipe < n) {
        int s, rc = cl_sock_new(c, c->timeout_ms, &s, err);
        if (rc) {
            if (c->n_pipe > 0)
                break; /* fewer connections still work */
            return rc;
        }
        c->pipe_busy[c->n_pipe] = 0;
        c->pipe[c->n_pipe++] = s;
    }
    return c->n_pipe < n ? c->n_pipe : n;
}

void cl_pipe_close(struct track_client *c)
{
    for (int i = 0; i < c->n_pipe; i++)
        nn_close(c->pipe[i]);
    c->n_pipe = 0;
}

static void set_timeout(int s, int timeout_ms)
{
    nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &timeout_ms, sizeof(int));
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout_ms, sizeof(int));
}

int cl_pipe_send(struct track_client *c, int i, Track__V1__Request *rq, int timeout_ms,
                 struct track_err *err)
{
    uint8_t rid[16];
    size_t len;
    void *msg;
    int rc;

    if (i < 0 || i >= c->n_pipe || c->pipe_busy[i])
        return cl_fail(err, TRACK_E_INTERNAL, "transfer connection %d is not idle", i);
    randombytes_buf(rid, sizeof(rid));
    rq->request_id.data = rid;
    rq->request_id.len = sizeof(rid);
    len = track__v1__request__get_packed_size(rq);
    if ((rc = cl_frame_check(c, len, err)) != 0)
        return rc;
    if (c->seal) {
        uint8_t *plain = malloc(len ? len : 1), *sealed = NULL;
        size_t slen = 0;
        struct seal_err se = {0};
        if (!plain)
            return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory for a %zu-byte request",
                           len);
        track__v1__request__pack(rq, plain);
        rc = seal_client_seal(c->seal, plain, len, &sealed, &slen, &c->pipe_ticket[i], &se);
        sodium_memzero(plain, len);
        free(plain);
        if (rc)
            return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "cannot seal the request: %s", se.msg);
        msg = nn_allocmsg(slen, 0);
        if (msg)
            memcpy(msg, sealed, slen);
        free(sealed);
        len = slen;
    } else {
        msg = nn_allocmsg(len ? len : 1, 0);
        if (msg)
            track__v1__request__pack(rq, msg);
    }
    if (!msg)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory for a %zu-byte request",
                       len);
    set_timeout(c->pipe[i], timeout_ms);
    if (nn_send(c->pipe[i], &msg, NN_MSG, 0) < 0) {
        int e = nn_errno();
        nn_freemsg(msg); /* still ours when the send failed */
        cl_pipe_close(c);
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot reach trackd at %s: %s", c->server,
                       e == ETIMEDOUT ? "timed out sending" : nn_strerror(e));
    }
    c->pipe_busy[i] = 1;
    return 0;
}

int cl_pipe_recv(struct track_client *c, int i, int want, int timeout_ms, Track__V1__Response **out,
                 struct track_err *err)
{
    void *buf = NULL;
    int n, rc;

    *out = NULL;
    if (i < 0 || i >= c->n_pipe || !c->pipe_busy[i])
        return cl_fail(err, TRACK_E_INTERNAL, "transfer connection %d has no request", i);
    set_timeout(c->pipe[i], timeout_ms);
    n = nn_recv(c->pipe[i], &buf, NN_MSG, 0);
    c->pipe_busy[i] = 0;
    if (n < 0) {
        int e = nn_errno();
        cl_pipe_close(c);
        if (e == ETIMEDOUT)
            return cl_fail(err, TRACK_E_UNAVAILABLE,
                           "cannot reach trackd at %s: no reply within %d ms", c->server,
                           timeout_ms);
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot reach trackd at %s: %s", c->server,
                       nn_strerror(e));
    }
    Track__V1__Response *rs = NULL;
    if (c->seal) {
        if ((rc = cl_open_reply(c, &c->pipe_ticket[i], buf, (size_t)n, &rs, err)) != 0) {
            cl_pipe_close(c);
            return rc;
        }
    } else {
        rs = track__v1__response__unpack(NULL, (size_t)n, buf);
        nn_freemsg(buf);
    }
    if (!rs)
        return cl_fail(err, TRACK_E_INTERNAL, "trackd at %s sent a reply that does not decode",
                       c->server);
    if ((rc = cl_response_error(rs, err)) != 0) {
        track__v1__response__free_unpacked(rs, NULL);
        return rc;
    }
    if ((int)rs->result_case != want) {
        track__v1__response__free_unpacked(rs, NULL);
        return cl_fail(err, TRACK_E_INTERNAL, "malformed reply from server: wrong result (%d)",
                       want);
    }
    *out = rs;
    return 0;
}
