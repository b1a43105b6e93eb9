/*
 * artifact_xfer.c: the byte-moving half of artifacts (artifact.c has the
 * rest: hashing for dedup, begin and commit, directories, paths). Chunks go
 * up and pages come down with several requests in flight, one per extra
 * connection (pipe.c), so trackd writes or reads the next chunks while
 * these travel and this process reads, hashes and writes: an upload's
 * chunk k+1..k+N-1 are on their way while trackd writes chunk k, and a
 * download asks for the next N pages before it writes the first.
 *
 * Order. Request k goes on connection k mod N and its reply is taken before
 * that connection carries request k+N: replies are taken in the order sent,
 * so a download writes and hashes pages in order, and an upload's chunks
 * are at most N apart (far inside trackd's 16 MiB window). Memory: N
 * requests of at most a chunk each in flight, one buffer here.
 *
 * TRACK_TRANSFER_DEPTH (1 to 8, default 4) sets N; 1 is one request at a
 * time, as before (measurements, tests).
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "track_limits.h"

#define DEPTH_DEFAULT 4

int cl_transfer_depth(void)
{
    const char *e = getenv("TRACK_TRANSFER_DEPTH");
    char *end = NULL;
    long n = e && *e ? strtol(e, &end, 10) : DEPTH_DEFAULT;
    if (e && *e && (!end || *end))
        n = DEPTH_DEFAULT;
    return n < 1 ? 1 : n > CL_PIPE_MAX ? CL_PIPE_MAX : (int)n;
}

/* An error worth more than another when several replies fail: one a fresh
 * begin cannot cure (a digest mismatch, a full disk) beats one it can. */
static int worse(int rc, int than)
{
    int cured = rc == TRACK_E_UNAVAILABLE || rc == TRACK_E_NOT_FOUND;
    int than_cured = than == TRACK_E_UNAVAILABLE || than == TRACK_E_NOT_FOUND;
    return !than || (than_cured && !cured);
}

int cl_artifact_send(struct track_client *c, int fd, const char *local, const char *id,
                     int64_t size, int64_t from, uint8_t *buf, size_t chunk,
                     struct cl_send_result *res, struct track_err *err)
{
    size_t sent_n[CL_PIPE_MAX] = {0};
    struct track_err e2 = {0};
    int64_t next = from;
    int n, rc = 0, k = 0, outstanding = 0;

    memset(res, 0, sizeof(*res));
    n = cl_pipe_open(c, cl_transfer_depth(), err);
    if (n < 0)
        return n;
    for (;;) {
        int i = k % n;
        if (c->pipe_busy[i]) {
            Track__V1__Response *rs = NULL;
            /* once everything is out, a reply may wait for the seal (fsync) */
            int r = cl_pipe_recv(c, i, TRACK__V1__RESPONSE__RESULT_ARTIFACT_CHUNK,
                                 next >= size ? CL_LONG_TIMEOUT_MS : CL_OP_TIMEOUT_MS, &rs, &e2);
            outstanding--;
            if (r == 0 && (rs->artifact_chunk->have < 0 || rs->artifact_chunk->have > size))
                r = cl_fail(&e2, TRACK_E_INTERNAL, "malformed reply from server: artifact_chunk");
            if (r == 0) {
                res->sent += (int64_t)sent_n[i];
                if (rs->artifact_chunk->have > res->have)
                    res->have = rs->artifact_chunk->have;
                if (rs->artifact_chunk->have == size)
                    res->sealed = 1;
            } else if (worse(r, rc)) {
                rc = r;
                if (err)
                    *err = e2;
            }
            if (rs)
                track__v1__response__free_unpacked(rs, NULL);
            if (r == TRACK_E_UNAVAILABLE && c->n_pipe == 0)
                return rc; /* the connections are gone, and the replies with them */
        }
        if (rc || next >= size) {
            if (outstanding == 0)
                break;
            k++;
            continue;
        }
        size_t want = size - next < (int64_t)chunk ? (size_t)(size - next) : chunk;
        ssize_t got = pread(fd, buf, want, next);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT, "reading %s: %s", local,
                         got < 0 ? strerror(errno) : "it shrank while being uploaded");
            continue; /* take the replies in flight, then fail */
        }
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ArtifactChunk ch = TRACK__V1__ARTIFACT_CHUNK__INIT;
        ch.upload_id = (char *)id;
        ch.offset = next;
        ch.data.data = buf;
        ch.data.len = (size_t)got;
        rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_CHUNK;
        rq.artifact_chunk = &ch;
        int r = cl_pipe_send(c, i, &rq, CL_OP_TIMEOUT_MS, &e2);
        if (r) {
            if (worse(r, rc)) {
                rc = r;
                if (err)
                    *err = e2;
            }
            if (c->n_pipe == 0)
                return rc;
            continue;
        }
        sent_n[i] = (size_t)got;
        next += got;
        outstanding++;
        k++;
    }
    return rc;
}

/* Asks for the page at `off` on connection i. */
static int ask_page(struct track_client *c, int i, const uint8_t digest[32], int64_t off,
                    size_t page, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactRead q = TRACK__V1__ARTIFACT_READ__INIT;
    q.digest.data = (uint8_t *)digest;
    q.digest.len = 32;
    q.offset = off;
    q.max_bytes = (int32_t)page;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_READ;
    rq.artifact_read = &q;
    return cl_pipe_send(c, i, &rq, CL_OP_TIMEOUT_MS, err);
}

int cl_blob_fetch(struct track_client *c, const uint8_t digest[32], int64_t size, int fd,
                  const char *shown, crypto_generichash_state *h, struct track_err *err)
{
    const size_t page = CL_CHUNK_BYTES;
    int64_t asked = 0, off = 0;
    int n, rc = 0, k_ask = 0, k_take = 0;

    if (size == 0)
        return 0;
    n = cl_pipe_open(c, cl_transfer_depth(), err);
    if (n < 0)
        return n;
    while (off < size) {
        while (asked < size && k_ask - k_take < n) {
            if ((rc = ask_page(c, k_ask % n, digest, asked, page, err)) != 0)
                goto out;
            asked += (int64_t)page;
            k_ask++;
        }
        Track__V1__Response *rs = NULL;
        rc = cl_pipe_recv(c, k_take % n, TRACK__V1__RESPONSE__RESULT_ARTIFACT_READ,
                          CL_OP_TIMEOUT_MS, &rs, err);
        k_take++;
        if (rc)
            goto out;
        Track__V1__ArtifactReadResult *r = rs->artifact_read;
        size_t expect = size - off < (int64_t)page ? (size_t)(size - off) : page;
        if (r->offset != off || r->data.len != expect) {
            rc = cl_fail(err, TRACK_E_INTERNAL,
                         "%s: the daemon sent %zu bytes at offset %lld of a %lld-byte blob", shown,
                         r->data.len, (long long)r->offset, (long long)size);
            track__v1__response__free_unpacked(rs, NULL);
            goto out;
        }
        for (size_t w = 0; w < r->data.len;) {
            ssize_t wn = write(fd, r->data.data + w, r->data.len - w);
            if (wn < 0 && errno == EINTR)
                continue;
            if (wn <= 0) {
                rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "writing %s.tmp: %s", shown,
                             strerror(errno));
                track__v1__response__free_unpacked(rs, NULL);
                goto out;
            }
            w += (size_t)wn;
        }
        crypto_generichash_update(h, r->data.data, r->data.len);
        off += (int64_t)r->data.len;
        track__v1__response__free_unpacked(rs, NULL);
    }
out:
    if (rc && c->n_pipe && k_ask > k_take)
        cl_pipe_close(c); /* replies still on their way belong to nothing now */
    return rc;
}
