/*
 * loop.c: trackd's event loop. One thread polls every listening nanomsg
 * socket's NN_RCVFD, an eventfd that read workers signal, and a signalfd.
 * The listeners themselves (binding, the socket files, the descriptor
 * watch) are listen.c's; their state and the loop's share struct loop
 * (loop.h).
 *
 * Sockets are raw REP (AF_SP_RAW), so the loop holds many requests at once:
 * each received frame keeps its nanomsg header (the control part), which is
 * handed back with the reply to route it. Per wake-up the loop drains what
 * is waiting (up to a budget), sends reads to the workers, and applies all
 * writes in one transaction, each inside its own savepoint: one group
 * commit, then every write's reply. A write is therefore acknowledged only
 * after its data is committed, and a failing write undoes only itself.
 *
 * Sealed tcp:// listeners (loop.h sealed[]): each frame is opened first
 * (seal_srv.c, in this thread) into its plaintext, its sender (struct
 * seal_peer) and its caller (the store's user of that key); a frame that
 * does not open is answered plain with the refusal. Everything after sees
 * the plaintext, the request-id digest included, and every reply to a
 * sealed request, errors too, is sealed for its peer in send_reply just
 * before nn_sendmsg. ipc (and --plain-tcp) requests get the local caller.
 * The caller rides with the request to the group commit (struct pending)
 * and to the read workers (struct srv_job), as srv_call.caller.
 *
 * Exactly once: each applied write's request id is stored with its packed
 * response and a BLAKE2b digest of its frame without the id, in the same
 * transaction; a repeated id with the same body gets that response again,
 * with another body a CONFLICT. Ids are forgotten only when they are both
 * older than REQUEST_KEEP_MS by the wall clock and outside the newest
 * REQUEST_KEEP_COUNT applied (a count no clock can move), so a clock set
 * forward never makes a recent retry apply twice. The HTTP front's
 * in-process frames are the exception: each call sends its frame once
 * (http_call.c), so their ids are not kept (pending.once).
 *
 * TRACKD_TEST_CLOCK_SKEW_MS (tests only) shifts the wall clock used for
 * request ids by that many milliseconds; it is read once, at start.
 *
 * Memory (the bounds are in srv.h). nanomsg keeps a reply it could not yet
 * write to its connection, one per connection: raw REP drops a reply to a
 * connection still busy with the previous one, and NN_SNDBUF sizes only
 * the kernel's buffer, not that message. A client that asks for a big
 * history and never reads therefore pins the whole reply, and nothing in
 * nanomsg's API says when it is gone. The loop keeps an estimate: each
 * read reply of SRV_HELD_MIN_BYTES or more is counted against its
 * connection (the pipe key in the nanomsg header) until that connection
 * sends its next request (a REQ client reads its reply first), until there
 * are more counted replies than open connections on the listener (the
 * oldest go: their clients have left), or for SRV_HELD_KEEP_MS at most.
 * Past SRV_MAX_HELD_BYTES new reads are answered RESOURCE_EXHAUSTED.
 * Big buffers are mmap'd (a fixed M_MMAP_THRESHOLD) so freeing them gives
 * the memory back, and malloc_trim runs after big replies were freed.
 */
#include "loop.h"

#include "http.h"

#include <errno.h>
#include <malloc.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define DRAIN_BUDGET         512         /* frames per wake-up */
#define DRAIN_BYTES          (64u << 20) /* bytes per wake-up */
#define REQUEST_KEEP_MS      (7LL * 24 * 3600 * 1000)
#define REQUEST_KEEP_COUNT   100000 /* newest ids kept whatever their age */
#define WAL_CHECKPOINT_PAGES 4096   /* 16 MiB of WAL: checkpoint even when busy */
#define HELD_MAX             (SRV_MAX_HELD_BYTES / SRV_HELD_MIN_BYTES) /* tracked replies */
#define MMAP_THRESHOLD       (1 << 20)   /* allocations this big are mmap'd, freed at once */
#define TRIM_AFTER_BYTES     (16u << 20) /* malloc_trim once this much big memory was freed */
#define TRIM_THRESHOLD       (32 << 20)  /* free memory a heap keeps between those trims */
#define CACHE_IDLE_MS        5000        /* idle this long: the page caches are given back */

struct pending {
    int sock;
    int upload_charged;   /* an ArtifactBegin counted in its caller's uploads */
    uint32_t frame_limit; /* of its listener */
    size_t bytes;         /* the request frame's size */
    void *control;        /* nanomsg header, NN_MSG-owned */
    Track__V1__Request *rq;
    uint8_t *reply; /* malloc'd packed response */
    size_t reply_len;
    int applied;                        /* a write that succeeded inside the transaction */
    int replayed;                       /* answered from the request table */
    uint8_t digest[STORE_DIGEST_BYTES]; /* of a write's frame (frame_digest) */
    int once;                           /* its id is kept, so a retry is answered, not applied */
    struct srv_caller caller;           /* who asks */
    int sealed;                         /* came sealed: the reply is sealed for peer */
    struct seal_peer peer;
};

/* a read reply counted as still held by nanomsg for its connection */
struct held {
    int sock;
    uint32_t pipe;
    size_t bytes;
    int64_t at_ms;
};

/* Milliseconds added to the wall clock of request ids (tests only). */
static int64_t clock_skew_ms;

static int64_t ids_now_ms(void)
{
    return wire_now_ms() + clock_skew_ms;
}

/* BLAKE2b-256 of the frame without its request_id field(s): the request a
 * retry must repeat byte for byte (libtrack, its spool and nanomsg's REQ
 * resend the very frame). Hashes the bytes as received, at about 1.6 ms
 * per MB, rather than packing the decoded request again (twice that). */
static void frame_digest(const uint8_t *buf, size_t len, uint8_t out[STORE_DIGEST_BYTES])
{
    crypto_generichash_state h;
    const uint8_t *p = buf, *end = buf + len, *from = buf;
    uint64_t tag, n;

    crypto_generichash_init(&h, NULL, 0, STORE_DIGEST_BYTES);
    while (p < end) {
        const uint8_t *field = p;
        if (wire_varint(&p, end, &tag))
            break;
        int ok = 0;
        switch (tag & 7) {
        case 0:
            ok = wire_varint(&p, end, &n) == 0;
            break;
        case 1:
        case 5:
            n = (tag & 7) == 1 ? 8 : 4;
            ok = n <= (uint64_t)(end - p);
            break;
        case 2:
            ok = wire_varint(&p, end, &n) == 0 && n <= (uint64_t)(end - p);
            break;
        }
        if (!ok)
            break; /* unpacking accepted the frame, so never here; hash the rest */
        if ((tag & 7) != 0)
            p += n;
        if (tag >> 3 == 1) {
            crypto_generichash_update(&h, from, (size_t)(field - from));
            from = p;
        }
    }
    crypto_generichash_update(&h, from, (size_t)(end - from));
    crypto_generichash_final(&h, out, STORE_DIGEST_BYTES);
}

static void free_control(void *control)
{
    if (control)
        nn_freemsg(control);
}

static void reply_error(struct loop *l, int sock, void *control, const struct seal_peer *peer,
                        const ProtobufCBinaryData *rid, int code, const char *msg);

/* Sends `buf` as the reply addressed by `control`, sealed for `peer` when
 * not NULL (a sealed request's reply: sealed here, in the loop's thread,
 * just before it goes). Takes `control` in every case; `buf` stays the
 * caller's. */
static void send_reply(struct loop *l, int sock, void *control, const struct seal_peer *peer,
                       const uint8_t *buf, size_t len)
{
    uint8_t *sealed = NULL;
    if (peer) {
        size_t slen;
        if (srv_sealer_seal(l->sealer, peer, buf, len, &sealed, &slen)) {
            /* too large to seal (or no memory): a small sealed error instead
             * (which itself is small enough that it cannot recurse again) */
            if (len > 4096)
                reply_error(l, sock, control, peer, NULL, TRACK__V1__CODE__RESOURCE_EXHAUSTED,
                            "reply too large to seal for this listener's frame limit");
            else
                free_control(control);
            return;
        }
        buf = sealed;
        len = slen;
    }
    void *msg = nn_allocmsg(len ? len : 1, 0);
    if (!msg) {
        free(sealed);
        free_control(control);
        return;
    }
    memcpy(msg, buf, len);
    free(sealed);
    struct nn_iovec iov = {.iov_base = &msg, .iov_len = NN_MSG};
    struct nn_msghdr hdr = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = NN_MSG};
    if (nn_sendmsg(sock, &hdr, NN_DONTWAIT) < 0) {
        srv_log(SRV_LOG_WARN, "loop", "reply dropped: %s", nn_strerror(nn_errno()));
        nn_freemsg(msg);
        free_control(control);
    }
}

static void reply_error(struct loop *l, int sock, void *control, const struct seal_peer *peer,
                        const ProtobufCBinaryData *rid, int code, const char *msg)
{
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    Track__V1__Error e;
    size_t len;

    if (rid)
        rs.request_id = *rid;
    srv_error_response(&rs, &e, code, msg);
    uint8_t *buf = srv_pack_response(&rs, &len);
    if (buf) {
        send_reply(l, sock, control, peer, buf, len);
        free(buf);
    } else {
        free_control(control);
    }
}

static void count_request(struct srv *srv)
{
    pthread_mutex_lock(&srv->stats_lock);
    srv->requests++;
    pthread_mutex_unlock(&srv->stats_lock);
}

/* ---- replies held by nanomsg -------------------------------------------------- */

/* The connection a request came on: the pipe key raw REP puts first in the
 * SP header of the control message (a cmsg: length, level, type, then the
 * header's size and the header). 0 when there is none. */
static uint32_t pipe_key(const void *control)
{
    const struct nn_cmsghdr *c = control;
    const unsigned char *p;
    size_t n;

    if (!c || c->cmsg_level != PROTO_SP || c->cmsg_type != SP_HDR ||
        c->cmsg_len < NN_CMSG_LEN(sizeof(size_t) + 4))
        return 0;
    p = NN_CMSG_DATA(c);
    memcpy(&n, p, sizeof(n));
    if (n < 4)
        return 0;
    p += sizeof(size_t);
    return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) |
           0x80000000u; /* never 0 */
}

static void held_forget(struct loop *l, int i)
{
    l->held_bytes -= l->held[i].bytes;
    l->freed_big += l->held[i].bytes;
    memmove(&l->held[i], &l->held[i + 1], (size_t)(l->n_held - i - 1) * sizeof(*l->held));
    l->n_held--;
}

/* A request arrived on (sock, pipe): its client has read its last reply. */
static void held_read(struct loop *l, int sock, uint32_t pipe)
{
    for (int i = 0; pipe && i < l->n_held; i++) {
        if (l->held[i].sock == sock && l->held[i].pipe == pipe) {
            held_forget(l, i);
            return;
        }
    }
}

static void held_add(struct loop *l, int sock, uint32_t pipe, size_t bytes)
{
    if (!pipe || bytes < SRV_HELD_MIN_BYTES)
        return;
    held_read(l, sock, pipe); /* raw REP drops a second reply: one per pipe */
    if (l->n_held == (int)HELD_MAX)
        held_forget(l, 0);
    l->held[l->n_held++] = (struct held){sock, pipe, bytes, wire_mono_ms()};
    l->held_bytes += bytes;
}

/* Forgets replies past SRV_HELD_KEEP_MS, and the oldest of a listener that
 * counts more of them than it has connections. */
static void held_expire(struct loop *l)
{
    int64_t cutoff = wire_mono_ms() - SRV_HELD_KEEP_MS;
    while (l->n_held && l->held[0].at_ms < cutoff)
        held_forget(l, 0);
    for (int s = 0; s < l->n_socks && l->n_held; s++) {
        uint64_t conns = nn_get_statistic(l->socks[s], NN_STAT_CURRENT_CONNECTIONS);
        uint64_t count = 0;
        if (conns == (uint64_t)-1)
            continue;
        for (int i = 0; i < l->n_held; i++)
            count += l->held[i].sock == l->socks[s];
        for (int i = 0; i < l->n_held && count > conns;) {
            if (l->held[i].sock == l->socks[s]) {
                held_forget(l, i);
                count--;
            } else {
                i++;
            }
        }
    }
}

/* Gives freed memory back to the system once enough big buffers went, at
 * most once a second (a trim walks every arena). */
static void trim_memory(struct loop *l)
{
    int64_t now = wire_mono_ms();
    if (l->freed_big < TRIM_AFTER_BYTES || now - l->trimmed_ms < IDLE_TICK_MS)
        return;
    l->freed_big = 0;
    l->trimmed_ms = now;
    malloc_trim(0);
}

/* 1 when a warning of this kind was not logged in the last minute: a
 * fault that lasts (a full disk) is one line a minute, not one a second. */
static int warn_due(int64_t *last_ms, int *suppressed)
{
    int64_t now = wire_mono_ms();
    if (*last_ms && now - *last_ms < 60000) {
        (*suppressed)++;
        return 0;
    }
    *last_ms = now;
    return 1;
}

static void checkpoint(struct loop *l)
{
    static int64_t last_warn;
    static int suppressed;
    struct store_err err = {0};
    if (store_checkpoint(l->srv->wst, &err) == 0)
        return;
    if (err.code == STORE_E_FULL)
        srv_reserve_on_full(l->srv);
    else if (warn_due(&last_warn, &suppressed)) {
        srv_log(SRV_LOG_WARN, "store", "checkpoint failed: %s (%d more since the last warning)",
                err.msg, suppressed);
        suppressed = 0;
    }
}

/* An ArtifactBegin counted as an upload in flight that will have no
 * chunks: the blob existed, a streaming begin met a known size, the begin
 * failed, or it was a replay. */
static void upload_settled(struct loop *l, const struct pending *p, const Track__V1__Response *rs)
{
    if (!p->upload_charged || !l->limiter)
        return;
    if (rs && !rs->error &&
        !(rs->artifact_begin && (rs->artifact_begin->exists || rs->artifact_begin->size_known)))
        return;
    srv_limiter_upload_end(l->limiter, p->caller.user_id, wire_mono_ms());
}

/* Logs a refusal by a per-key limit, at most once a minute per kind. */
static void limit_refused(struct loop *l, int kind, const struct srv_caller *c)
{
    static int64_t last[5];
    static int suppressed[5];
    (void)l;
    if (kind < 1 || kind > 4)
        return;
    if (warn_due(&last[kind], &suppressed[kind])) {
        srv_log(SRV_LOG_WARN, "limits",
                "user %s over the %s limit: refused with RESOURCE_EXHAUSTED (%d more since)",
                c->name,
                kind == SRV_LIMIT_REQUESTS ? "request"
                : kind == SRV_LIMIT_BYTES  ? "byte"
                : kind == SRV_LIMIT_RUNS   ? "run-start"
                                           : "upload",
                suppressed[kind]);
        suppressed[kind] = 0;
    }
}

/* Applies the writes of one wake-up in one transaction. */
static void apply_writes(struct loop *l, struct pending *w, int n)
{
    struct store *st = l->srv->wst;
    struct store_err err = {0};
    /* a lone write needs no savepoint: if it fails, the whole transaction
     * is its own to roll back (two statements fewer per small request) */
    int solo = n == 1, rolled_back = 0;
    int rc;

    rc = store_begin(st, &err);
    if (rc) {
        for (int i = 0; i < n; i++) {
            reply_error(l, w[i].sock, w[i].control, w[i].sealed ? &w[i].peer : NULL,
                        &w[i].rq->request_id, srv_code_from_store(rc), err.msg);
            w[i].control = NULL;
        }
        return;
    }
    for (int i = 0; i < n; i++) {
        struct pending *p = &w[i];
        const uint8_t *digest = p->digest;
        uint8_t *prev = NULL;
        size_t prev_len = 0;
        int known = 0;

        if (p->once && p->rq->request_id.len == WIRE_ID_BYTES)
            known =
                store_request_lookup(st, p->rq->request_id.data, digest, &prev, &prev_len, &err);
        if (known == 1) {
            p->reply = prev;
            p->reply_len = prev_len;
            p->replayed = 1;
            upload_settled(l, p, NULL);
            continue;
        }
        Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
        if (known == STORE_E_CONFLICT) {
            Track__V1__Error e;
            srv_error_response(&rs, &e, TRACK__V1__CODE__CONFLICT, err.msg);
            rs.request_id = p->rq->request_id;
            p->reply = srv_pack_response(&rs, &p->reply_len);
            srv_log(SRV_LOG_DEBUG, "loop", "%s refused: %s", srv_op_name(p->rq), err.msg);
            continue;
        }
        struct srv_call call = {
            .caller = &p->caller, .srv = l->srv, .st = st, .rq = p->rq, .rs = &rs};
        if (!solo && store_save(st, &err)) {
            Track__V1__Error e;
            srv_error_response(&rs, &e, srv_code_from_store(err.code), err.msg);
            rs.request_id = p->rq->request_id;
            p->reply = srv_pack_response(&rs, &p->reply_len);
            continue;
        }
        srv_dispatch(&call);
        upload_settled(l, p, &rs);
        p->reply = srv_pack_response(&rs, &p->reply_len);
        if (!rs.error && p->reply &&
            (!p->once || store_request_put(st, p->rq->request_id.data, digest, p->reply,
                                           p->reply_len, ids_now_ms(), &err) == 0)) {
            p->applied = 1;
            if (!solo)
                store_release(st);
        } else {
            if (rs.error)
                srv_log(SRV_LOG_DEBUG, "loop", "%s failed code=%s msg=\"%s\"", srv_op_name(p->rq),
                        wire_code_name(rs.error->code), rs.error->message);
            else if (p->reply) {
                /* the write worked but its id could not be kept: undo it
                 * rather than acknowledge something a retry would double */
                free(p->reply);
                Track__V1__Response er = TRACK__V1__RESPONSE__INIT;
                Track__V1__Error e;
                er.request_id = p->rq->request_id;
                srv_error_response(&er, &e, srv_code_from_store(err.code), err.msg);
                p->reply = srv_pack_response(&er, &p->reply_len);
            }
            if (solo) {
                store_rollback(st);
                rolled_back = 1;
                srv_audit_refusal(&call, 0); /* a refused write is audited all the same */
            } else {
                store_rollback_to(st); /* also releases the savepoint */
                srv_audit_refusal(&call, 1);
            }
        }
        srv_arena_free(&call.arena);
    }
    if (rolled_back)
        return;
    rc = store_commit(st, &err);
    if (rc) {
        static int64_t last_full;
        static int suppressed;
        /* a full disk fails every commit until space comes: one line a minute */
        if (rc != STORE_E_FULL || warn_due(&last_full, &suppressed)) {
            srv_log(SRV_LOG_ERROR, "store", "group commit failed: %s (%d more since)", err.msg,
                    suppressed);
            suppressed = 0;
        }
        store_rollback(st);
        for (int i = 0; i < n; i++) {
            if (!w[i].applied)
                continue;
            free(w[i].reply);
            Track__V1__Response er = TRACK__V1__RESPONSE__INIT;
            Track__V1__Error e;
            er.request_id = w[i].rq->request_id;
            srv_error_response(&er, &e, srv_code_from_store(rc), err.msg);
            w[i].reply = srv_pack_response(&er, &w[i].reply_len);
        }
    }
}

static void handle_batch(struct loop *l, int n)
{
    struct pending *b = l->batch;
    int n_writes = 0;

    /* reads go to the workers at once; writes are gathered to the front */
    for (int i = 0; i < n; i++) {
        int kind = srv_op_kind(b[i].rq);
        count_request(l->srv);
        if (kind == SRV_WRITE) {
            b[n_writes++] = b[i];
            continue;
        }
        struct srv_job *job = calloc(1, sizeof(*job));
        if (!job) {
            reply_error(l, b[i].sock, b[i].control, b[i].sealed ? &b[i].peer : NULL,
                        &b[i].rq->request_id, TRACK__V1__CODE__RESOURCE_EXHAUSTED,
                        "daemon out of memory");
            track__v1__request__free_unpacked(b[i].rq, NULL);
            continue;
        }
        job->tag = b[i].control;
        job->sock = b[i].sock;
        job->rq = b[i].rq;
        job->rq_bytes = b[i].bytes;
        memcpy(job->request_id, b[i].rq->request_id.data, WIRE_ID_BYTES);
        job->frame_limit = b[i].frame_limit;
        job->caller = b[i].caller;
        job->sealed = b[i].sealed;
        job->peer = b[i].peer;
        int rc = srv_workers_submit(l->workers, job);
        if (rc < 0) {
            char msg[200];
            if (rc == -1)
                snprintf(msg, sizeof(msg), "trackd is busy: %d reads in flight (the limit); retry",
                         SRV_MAX_QUEUED_READS);
            else
                snprintf(msg, sizeof(msg),
                         "trackd is busy: reads in flight hold %u MiB of requests "
                         "(the limit); retry",
                         SRV_MAX_READ_BYTES >> 20);
            reply_error(l, b[i].sock, b[i].control, b[i].sealed ? &b[i].peer : NULL,
                        &b[i].rq->request_id, TRACK__V1__CODE__RESOURCE_EXHAUSTED, msg);
            track__v1__request__free_unpacked(b[i].rq, NULL);
            free(job);
        }
    }
    if (!n_writes)
        return;
    apply_writes(l, b, n_writes);
    srv_artifact_after_commit(l->srv); /* pins of rows now durable (or rolled back) */
    for (int i = 0; i < n_writes; i++) {
        if (b[i].control) {
            const struct seal_peer *peer = b[i].sealed ? &b[i].peer : NULL;
            if (b[i].reply)
                send_reply(l, b[i].sock, b[i].control, peer, b[i].reply, b[i].reply_len);
            else
                reply_error(l, b[i].sock, b[i].control, peer, &b[i].rq->request_id,
                            TRACK__V1__CODE__RESOURCE_EXHAUSTED, "daemon out of memory");
        }
        if (b[i].bytes >= SRV_HELD_MIN_BYTES)
            l->freed_big += b[i].bytes;
        free(b[i].reply);
        track__v1__request__free_unpacked(b[i].rq, NULL);
    }
    /* after the replies are out, so no request waits for it */
    if (store_wal_pages(l->srv->wst) >= WAL_CHECKPOINT_PAGES)
        checkpoint(l);
}

/* Receives what is waiting on every socket, up to the budget. */
static int drain(struct loop *l)
{
    size_t bytes = 0;
    int n = 0, progress = 1;

    while (progress && n < DRAIN_BUDGET && bytes < DRAIN_BYTES) {
        progress = 0;
        for (int s = 0; s < l->n_socks && n < DRAIN_BUDGET; s++) {
            void *body = NULL, *control = NULL;
            struct nn_iovec iov = {.iov_base = &body, .iov_len = NN_MSG};
            struct nn_msghdr hdr = {.msg_iov = &iov,
                                    .msg_iovlen = 1,
                                    .msg_control = &control,
                                    .msg_controllen = NN_MSG};
            int len = nn_recvmsg(l->socks[s], &hdr, NN_DONTWAIT);
            if (len < 0) {
                int e = nn_errno();
                if (e != EAGAIN && e != EINTR)
                    srv_log(SRV_LOG_WARN, "loop", "receive failed: %s", nn_strerror(e));
                continue;
            }
            progress = 1;
            bytes += (size_t)len;
            if (l->n_held)
                held_read(l, l->socks[s], pipe_key(control));
            /* a sealed listener: open the envelope first; everything below
             * (the digest included) sees the plaintext, so a retry sealed
             * again with a fresh nonce is still the same request */
            const uint8_t *frame = body;
            size_t flen = (size_t)len;
            struct seal_peer peer = {0};
            struct srv_caller caller = l->local;
            int sealed = l->sealed[s];
            if (l->internal[s]) { /* the HTTP front: its head names the caller */
                struct srv_http_head head = {0};
                if (flen >= sizeof(head))
                    memcpy(&head, frame, sizeof(head));
                if (head.magic != SRV_HTTP_MAGIC) {
                    nn_freemsg(body);
                    reply_error(l, l->socks[s], control, NULL, NULL,
                                TRACK__V1__CODE__INVALID_ARGUMENT, "in-process frame without head");
                    continue;
                }
                caller = head.caller;
                frame += sizeof(head);
                flen -= sizeof(head);
            }
            if (sealed) { /* opened in place: frame points into body */
                char msg[600];
                int code = srv_sealer_open(l->sealer, body, (size_t)len, &peer, &caller, &frame,
                                           &flen, msg, sizeof(msg));
                if (code) {
                    nn_freemsg(body);
                    reply_error(l, l->socks[s], control, NULL, NULL, code, msg);
                    continue;
                }
            }
            const struct seal_peer *rpeer = sealed ? &peer : NULL;
            Track__V1__Request *rq = track__v1__request__unpack(NULL, flen, frame);
            char nul_field[120];
            /* unpacking cut such a string at its NUL: refuse, never store a
             * shorter key than the one sent */
            int has_nul = rq && wire_find_nul_string(&track__v1__request__descriptor, frame, flen,
                                                     nul_field, sizeof(nul_field));
            uint8_t digest[STORE_DIGEST_BYTES] = {0};
            /* The HTTP front's calls never come twice: each is its own id,
             * made for that call (http_call), whose REQ socket never resends
             * within the call's wait, and an HTTP client's retry is a new
             * call. So their ids are not kept (no digest, no row): only a
             * client that may resend the very frame (libtrack, its spool,
             * nanomsg's REQ) needs the request table. */
            int once = !l->internal[s];
            if (once && rq && !has_nul && srv_op_kind(rq) == SRV_WRITE)
                frame_digest(frame, flen, digest);
            int misplaced = !rq && !sealed && seal_frame_kind(frame, flen) == SEAL_KIND_REQUEST;
            nn_freemsg(body);
            if (has_nul) {
                char msg[200];
                snprintf(msg, sizeof(msg),
                         "%s: contains a NUL byte, which no key, name or value may hold",
                         nul_field);
                reply_error(l, l->socks[s], control, rpeer, &rq->request_id,
                            TRACK__V1__CODE__INVALID_ARGUMENT, msg);
                track__v1__request__free_unpacked(rq, NULL);
                continue;
            }
            if (!rq) {
                srv_log(SRV_LOG_INFO, "loop", "bad frame bytes=%d", len);
                reply_error(l, l->socks[s], control, rpeer, NULL, TRACK__V1__CODE__INVALID_ARGUMENT,
                            sealed      ? "sealed frame's content is not a valid track.v1.Request "
                                          "message"
                            : misplaced ? "a sealed frame on a listener that takes plain frames "
                                          "(ipc:// or --plain-tcp)"
                                        : "frame is not a valid track.v1.Request message");
                continue;
            }
            if (!srv_op_kind(rq) || rq->request_id.len != WIRE_ID_BYTES) {
                char msg[120];
                if (rq->request_id.len != WIRE_ID_BYTES)
                    snprintf(msg, sizeof(msg), "request_id: must be %d bytes, got %zu",
                             WIRE_ID_BYTES, rq->request_id.len);
                else
                    snprintf(msg, sizeof(msg), "unknown operation (field %d)", (int)rq->op_case);
                reply_error(l, l->socks[s], control, rpeer, &rq->request_id,
                            TRACK__V1__CODE__INVALID_ARGUMENT, msg);
                track__v1__request__free_unpacked(rq, NULL);
                continue;
            }
            /* a sealed caller's budgets (limiter.h): refused now, never queued */
            int upload_charged = 0;
            if (!caller.local && l->limiter) {
                char msg[300];
                int begin = rq->op_case == TRACK__V1__REQUEST__OP_ARTIFACT_BEGIN;
                int kind = srv_limiter_charge(l->limiter, caller.user_id, (size_t)len,
                                              rq->op_case == TRACK__V1__REQUEST__OP_RUN_START,
                                              begin, wire_mono_ms(), msg, sizeof(msg));
                if (kind) {
                    limit_refused(l, kind, &caller);
                    reply_error(l, l->socks[s], control, rpeer, &rq->request_id,
                                TRACK__V1__CODE__RESOURCE_EXHAUSTED, msg);
                    track__v1__request__free_unpacked(rq, NULL);
                    continue;
                }
                upload_charged = begin;
                if (rq->op_case == TRACK__V1__REQUEST__OP_ARTIFACT_COMMIT)
                    srv_limiter_upload_end(l->limiter, caller.user_id, wire_mono_ms());
            }
            l->batch[n] = (struct pending){.sock = l->socks[s],
                                           .upload_charged = upload_charged,
                                           .frame_limit = l->frame_limit[s],
                                           .bytes = (size_t)len,
                                           .control = control,
                                           .rq = rq,
                                           .once = once,
                                           .caller = caller,
                                           .sealed = sealed,
                                           .peer = peer};
            memcpy(l->batch[n].digest, digest, sizeof(digest));
            n++;
        }
    }
    return n;
}

static void reply_done(struct loop *l)
{
    struct srv_job *j = srv_workers_done(l->workers);
    while (j) {
        struct srv_job *next = j->next;
        ProtobufCBinaryData rid = {.len = WIRE_ID_BYTES, .data = j->request_id};
        const struct seal_peer *peer = j->sealed ? &j->peer : NULL;
        if (j->reply_len >= SRV_HELD_MIN_BYTES || j->rq_bytes >= SRV_HELD_MIN_BYTES)
            l->freed_big += j->reply_len + j->rq_bytes;
        if (j->reply && j->reply_len >= SRV_HELD_MIN_BYTES &&
            l->held_bytes + j->reply_len > SRV_MAX_HELD_BYTES)
            held_expire(l);
        if (j->reply && j->reply_len >= SRV_HELD_MIN_BYTES &&
            l->held_bytes + j->reply_len > SRV_MAX_HELD_BYTES) {
            /* small replies still go out: only a big one is refused */
            char msg[200];
            snprintf(msg, sizeof(msg),
                     "trackd is busy: replies not yet read by their clients hold %zu MiB "
                     "(limit %u MiB); retry",
                     l->held_bytes >> 20, SRV_MAX_HELD_BYTES >> 20);
            reply_error(l, j->sock, j->tag, peer, &rid, TRACK__V1__CODE__RESOURCE_EXHAUSTED, msg);
        } else if (j->reply) {
            uint32_t pipe = pipe_key(j->tag);
            send_reply(l, j->sock, j->tag, peer, j->reply, j->reply_len);
            held_add(l, j->sock, pipe, j->reply_len);
        } else
            reply_error(l, j->sock, j->tag, peer, &rid, TRACK__V1__CODE__RESOURCE_EXHAUSTED,
                        "daemon out of memory");
        free(j->reply);
        free(j);
        j = next;
    }
}

/* Background upkeep while idle: merge small metric chunks, forget old ids. */
static void maintain(struct loop *l)
{
    static int64_t last_warn;
    static int suppressed;
    struct store *st = l->srv->wst;
    struct store_err err = {0};
    int merged = 0, pruned = 0;

    srv_backup_sweep();
    srv_reserve_tick(l->srv);
    if (store_begin(st, &err))
        goto failed;
    if (store_metric_compact(st, 256, 64, &merged, &err) ||
        store_request_prune(st, ids_now_ms() - REQUEST_KEEP_MS, REQUEST_KEEP_COUNT, 10000, &pruned,
                            &err) ||
        store_commit(st, &err)) {
        store_rollback(st);
        goto failed;
    }
    if (l->srv->cfg.trace_retention_days > 0) {
        int64_t spans = 0, traces = 0;
        int64_t cutoff =
            (wire_now_ms() - (int64_t)l->srv->cfg.trace_retention_days * 86400000) * 1000000;
        if (store_begin(st, &err) == 0) {
            if (store_trace_prune(st, cutoff, 5000, &spans, &traces, &err) == 0 &&
                store_commit(st, &err) == 0) {
                if (spans || traces)
                    srv_log(SRV_LOG_INFO, "store",
                            "trace retention: deleted traces=%lld spans=%lld (older than %d "
                            "days)",
                            (long long)traces, (long long)spans, l->srv->cfg.trace_retention_days);
            } else
                store_rollback(st);
        }
    }
    if (merged)
        srv_log(SRV_LOG_DEBUG, "store", "compacted chunks=%d", merged);
    if (pruned)
        srv_log(SRV_LOG_DEBUG, "store", "forgot request ids=%d", pruned);
    if (store_wal_pages(st) > 0)
        checkpoint(l);
    return;
failed:
    if (warn_due(&last_warn, &suppressed)) {
        srv_log(SRV_LOG_WARN, "store", "upkeep failed: %s (%d more since the last warning)",
                err.msg, suppressed);
        suppressed = 0;
    }
    /* on a full disk, the checkpoint is what frees the way for writes */
    if (err.code == STORE_E_FULL || store_wal_pages(st) > 0)
        checkpoint(l);
}

static void on_signal(struct loop *l)
{
    struct signalfd_siginfo si;
    while (read(l->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            srv_log(SRV_LOG_INFO, "main", "SIGHUP: reloading configuration");
            srv_reload_config(l->srv);
            char msg[200];
            if (l->limiter && srv_limiter_set(l->limiter, &l->srv->cfg.limits, msg, sizeof(msg)))
                srv_log(SRV_LOG_WARN, "limits", "kept the old limits: %s", msg);
        } else {
            srv_log(SRV_LOG_INFO, "main", "signal %u: draining and stopping", si.ssi_signo);
            l->stop = 1;
        }
    }
}

int srv_loop_run(struct srv *srv)
{
    struct loop l = {.srv = srv, .efd = -1, .sfd = -1};
    sigset_t mask;
    int status = 1;

    const char *skew = getenv("TRACKD_TEST_CLOCK_SKEW_MS");
    if (skew && *skew) {
        clock_skew_ms = strtoll(skew, NULL, 10);
        srv_log(SRV_LOG_WARN, "loop", "test clock: request ids use the wall clock %+lld ms",
                (long long)clock_skew_ms);
    }
    if (sodium_init() < 0) {
        srv_log(SRV_LOG_ERROR, "loop", "libsodium failed to initialise");
        goto out;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    l.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    l.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l.batch = calloc(DRAIN_BUDGET, sizeof(*l.batch));
    l.held = calloc(HELD_MAX, sizeof(*l.held));
    for (int i = 0; i < SRV_MAX_LISTEN; i++)
        l.eids[i] = -1;
    /* a fixed threshold (glibc's own grows to 32 MiB after the first big
     * free) keeps replies and frames mmap'd: freeing one gives it back */
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    /* and frames below it (artifact chunks) reuse the memory of the ones
     * before instead of faulting in fresh pages each time: the heaps are
     * trimmed by trim_memory, at most once a second */
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    if (l.sfd < 0 || l.efd < 0 || !l.batch || !l.held) {
        srv_log(SRV_LOG_ERROR, "loop", "cannot set up: %s", strerror(errno));
        goto out;
    }
    if (srv_workers_start(srv, srv->cfg.workers, l.efd, &l.workers)) {
        srv_log(SRV_LOG_ERROR, "loop", "cannot start read workers");
        goto out;
    }
    srv_local_caller(&l.local);
    if (srv_open_sockets(&l))
        goto out;
    for (int i = 0; i < l.n_socks && !l.sealer; i++)
        if (l.sealed[i] && srv_sealer_new(srv, &l.sealer))
            goto out;
    if (srv->cfg.http[0] && srv_http_start(srv, &l.http))
        goto out;
    if (l.sealer || l.http) {
        char msg[200];
        if (srv_limiter_new(&srv->cfg.limits, &l.limiter, msg, sizeof(msg))) {
            srv_log(SRV_LOG_ERROR, "limits", "%s", msg);
            goto out;
        }
    }
    int nfd = l.n_socks;
    l.pfd[nfd++] = (struct pollfd){.fd = l.efd, .events = POLLIN};
    l.pfd[nfd++] = (struct pollfd){.fd = l.sfd, .events = POLLIN};
    srv_log(SRV_LOG_INFO, "main", "ready pid=%d data_dir=%s", (int)getpid(), srv->cfg.data_dir);
    l.last_maint = wire_mono_ms();

    while (!l.stop) {
        int rc = poll(l.pfd, (nfds_t)nfd, l.fd_busy ? FD_CHECK_MS : IDLE_TICK_MS);
        if (rc < 0 && errno != EINTR) {
            srv_log(SRV_LOG_ERROR, "loop", "poll: %s", strerror(errno));
            goto out;
        }
        if (l.pfd[nfd - 1].revents)
            on_signal(&l);
        if (l.pfd[nfd - 2].revents) {
            uint64_t v;
            ssize_t r = read(l.efd, &v, sizeof(v));
            (void)r;
            reply_done(&l);
        }
        int n = drain(&l);
        if (n) {
            handle_batch(&l, n);
            l.served_since_trim = 1;
            l.last_request_ms = wire_mono_ms();
            l.released = 0;
        }
        if (n == 0 && wire_mono_ms() - l.last_maint >= IDLE_TICK_MS) {
            maintain(&l);
            held_expire(&l);
            l.last_maint = wire_mono_ms();
            /* idle after work: what the replies freed goes back to the
             * system; after CACHE_IDLE_MS without a request the page
             * caches too (each read worker gives back and trims its own),
             * to fill again with the next queries */
            if (!l.released && wire_mono_ms() - l.last_request_ms >= CACHE_IDLE_MS) {
                store_release_memory(l.srv->wst);
                srv_workers_release_memory(l.workers);
                l.released = 1;
                l.served_since_trim = 1;
            }
            if (l.served_since_trim) {
                malloc_trim(0);
                l.served_since_trim = 0;
                l.trimmed_ms = wire_mono_ms();
            }
        }
        srv_search_index_tick(&l, wire_mono_ms());
        trim_memory(&l);
        srv_watch_fds(&l);
    }
    /* the HTTP front first: no new connections, and the requests in
     * progress answered (their threads wait on this loop) for a while */
    if (l.http) {
        int64_t until = wire_mono_ms() + 5000;
        srv_http_quiesce(l.http);
        while (srv_http_busy(l.http) && wire_mono_ms() < until) {
            if (poll(l.pfd, (nfds_t)nfd, 50) > 0 && l.pfd[nfd - 2].revents) {
                uint64_t v;
                ssize_t r = read(l.efd, &v, sizeof(v));
                (void)r;
                reply_done(&l);
            }
            int n = drain(&l);
            if (n)
                handle_batch(&l, n);
        }
        srv_http_stop(l.http);
        l.http = NULL;
    }
    /* drain: finish what the workers hold, answer it, then close */
    srv_workers_stop(l.workers);
    reply_done(&l);
    status = 0;
out:
    if (l.http)
        srv_http_stop(l.http); /* before the loop's sockets, which its threads use */
    if (l.workers) {
        srv_workers_stop(l.workers);
        reply_done(&l);
        srv_workers_free(l.workers);
    }
    srv_close_sockets(&l);
    srv_sealer_free(l.sealer);
    srv_limiter_free(l.limiter);
    if (l.sfd >= 0)
        close(l.sfd);
    if (l.efd >= 0)
        close(l.efd);
    free(l.batch);
    free(l.held);
    return status;
}
