/*
 * loop.c: trackd's event loop. One thread polls every listening nanomsg
 * socket's NN_RCVFD, an eventfd that read workers signal, and a signalfd.
 *
 * Sockets are raw REP (AF_SP_RAW), so the loop holds many requests at once:
 * each received frame keeps its nanomsg header (the control part), which is
 * handed back with the reply to route it. Per wake-up the loop drains what
 * is waiting (up to a budget), sends reads to the workers, and applies all
 * writes in one transaction, each inside its own savepoint: one group
 * commit, then every write's reply. A write is therefore acknowledged only
 * after its data is committed, and a failing write undoes only itself.
 *
 * Exactly once: each applied write's request id is stored with its packed
 * response in the same transaction; a repeated id gets that response again.
 */
#include "srv.h"

#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "track_limits.h"

#define DRAIN_BUDGET         512         /* frames per wake-up */
#define DRAIN_BYTES          (64u << 20) /* bytes per wake-up */
#define IDLE_TICK_MS         1000
#define REQUEST_KEEP_MS      (7LL * 24 * 3600 * 1000)
#define WAL_CHECKPOINT_PAGES 4096 /* 16 MiB of WAL: checkpoint even when busy */

struct pending {
    int sock;
    void *control; /* nanomsg header, NN_MSG-owned */
    Track__V1__Request *rq;
    uint8_t *reply; /* malloc'd packed response */
    size_t reply_len;
    int applied;  /* a write that succeeded inside the transaction */
    int replayed; /* answered from the request table */
};

struct loop {
    struct srv *srv;
    int socks[SRV_MAX_LISTEN];
    int n_socks;
    struct pollfd pfd[SRV_MAX_LISTEN + 2];
    int efd, sfd;
    struct srv_workers *workers;
    struct pending *batch;
    int64_t last_maint;
    int stop;
};

static void free_control(void *control)
{
    if (control)
        nn_freemsg(control);
}

/* Sends `buf` as the reply addressed by `control`. Takes `control` in every
 * case; `buf` stays the caller's. */
static void send_reply(int sock, void *control, const uint8_t *buf, size_t len)
{
    void *msg = nn_allocmsg(len ? len : 1, 0);
    if (!msg) {
        free_control(control);
        return;
    }
    memcpy(msg, buf, len);
    struct nn_iovec iov = {.iov_base = &msg, .iov_len = NN_MSG};
    struct nn_msghdr hdr = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = NN_MSG};
    if (nn_sendmsg(sock, &hdr, NN_DONTWAIT) < 0) {
        srv_log(SRV_LOG_WARN, "loop", "reply dropped: %s", nn_strerror(nn_errno()));
        nn_freemsg(msg);
        free_control(control);
    }
}

static void reply_error(int sock, void *control, const ProtobufCBinaryData *rid, int code,
                        const char *msg)
{
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    Track__V1__Error e;
    size_t len;

    if (rid)
        rs.request_id = *rid;
    srv_error_response(&rs, &e, code, msg);
    uint8_t *buf = srv_pack_response(&rs, &len);
    if (buf) {
        send_reply(sock, control, buf, len);
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
            reply_error(w[i].sock, w[i].control, &w[i].rq->request_id, srv_code_from_store(rc),
                        err.msg);
            w[i].control = NULL;
        }
        return;
    }
    for (int i = 0; i < n; i++) {
        struct pending *p = &w[i];
        uint8_t *prev = NULL;
        size_t prev_len = 0;

        if (p->rq->request_id.len == WIRE_ID_BYTES &&
            store_request_lookup(st, p->rq->request_id.data, &prev, &prev_len, &err) == 1) {
            p->reply = prev;
            p->reply_len = prev_len;
            p->replayed = 1;
            continue;
        }
        Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
        struct srv_call call = {.srv = l->srv, .st = st, .rq = p->rq, .rs = &rs};
        if (!solo && store_save(st, &err)) {
            Track__V1__Error e;
            srv_error_response(&rs, &e, srv_code_from_store(err.code), err.msg);
            rs.request_id = p->rq->request_id;
            p->reply = srv_pack_response(&rs, &p->reply_len);
            continue;
        }
        srv_dispatch(&call);
        p->reply = srv_pack_response(&rs, &p->reply_len);
        if (!rs.error && p->reply &&
            store_request_put(st, p->rq->request_id.data, p->reply, p->reply_len, wire_now_ms(),
                              &err) == 0) {
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
            } else {
                store_rollback_to(st); /* also releases the savepoint */
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
            reply_error(b[i].sock, b[i].control, &b[i].rq->request_id,
                        TRACK__V1__CODE__RESOURCE_EXHAUSTED, "daemon out of memory");
            track__v1__request__free_unpacked(b[i].rq, NULL);
            continue;
        }
        job->tag = b[i].control;
        job->sock = b[i].sock;
        job->rq = b[i].rq;
        if (srv_workers_submit(l->workers, job) < 0) {
            reply_error(b[i].sock, b[i].control, &b[i].rq->request_id,
                        TRACK__V1__CODE__RESOURCE_EXHAUSTED,
                        "trackd is busy: too many reads in flight; retry");
            track__v1__request__free_unpacked(b[i].rq, NULL);
            free(job);
        }
    }
    if (!n_writes)
        return;
    apply_writes(l, b, n_writes);
    for (int i = 0; i < n_writes; i++) {
        if (b[i].control) {
            if (b[i].reply)
                send_reply(b[i].sock, b[i].control, b[i].reply, b[i].reply_len);
            else
                reply_error(b[i].sock, b[i].control, &b[i].rq->request_id,
                            TRACK__V1__CODE__RESOURCE_EXHAUSTED, "daemon out of memory");
        }
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
            Track__V1__Request *rq = track__v1__request__unpack(NULL, (size_t)len, body);
            nn_freemsg(body);
            if (!rq) {
                srv_log(SRV_LOG_INFO, "loop", "bad frame bytes=%d", len);
                reply_error(l->socks[s], control, NULL, TRACK__V1__CODE__INVALID_ARGUMENT,
                            "frame is not a valid track.v1.Request message");
                continue;
            }
            if (!srv_op_kind(rq) || rq->request_id.len != WIRE_ID_BYTES) {
                char msg[120];
                if (rq->request_id.len != WIRE_ID_BYTES)
                    snprintf(msg, sizeof(msg), "request_id: must be %d bytes, got %zu",
                             WIRE_ID_BYTES, rq->request_id.len);
                else
                    snprintf(msg, sizeof(msg), "unknown operation (field %d)", (int)rq->op_case);
                reply_error(l->socks[s], control, &rq->request_id,
                            TRACK__V1__CODE__INVALID_ARGUMENT, msg);
                track__v1__request__free_unpacked(rq, NULL);
                continue;
            }
            l->batch[n] = (struct pending){.sock = l->socks[s], .control = control, .rq = rq};
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
        if (j->reply)
            send_reply(j->sock, j->tag, j->reply, j->reply_len);
        else
            reply_error(j->sock, j->tag, NULL, TRACK__V1__CODE__RESOURCE_EXHAUSTED,
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
    int merged = 0;

    srv_backup_sweep();
    srv_reserve_tick(l->srv);
    if (store_begin(st, &err))
        goto failed;
    if (store_metric_compact(st, 256, 64, &merged, &err) ||
        store_request_prune(st, wire_now_ms() - REQUEST_KEEP_MS, 10000, &err) ||
        store_commit(st, &err)) {
        store_rollback(st);
        goto failed;
    }
    if (merged)
        srv_log(SRV_LOG_DEBUG, "store", "compacted chunks=%d", merged);
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

static int prepare_ipc_dir(const char *uri)
{
    char path[1024], *slash;
    if (strncmp(uri, "ipc://", 6) != 0)
        return 0;
    snprintf(path, sizeof(path), "%s", uri + 6);
    slash = strrchr(path, '/');
    if (slash && slash != path) {
        *slash = '\0';
        if (mkdir(path, 0700) && errno != EEXIST) {
            srv_log(SRV_LOG_ERROR, "loop", "cannot create socket directory %s: %s", path,
                    strerror(errno));
            return -1;
        }
    }
    /* a stale socket from a crashed daemon would make bind fail */
    unlink(uri + 6);
    return 0;
}

static int open_sockets(struct loop *l)
{
    int maxsize = (int)LIMIT_FRAME_BYTES;

    for (int i = 0; i < l->srv->cfg.n_listen; i++) {
        const char *uri = l->srv->cfg.listen[i];
        int s = nn_socket(AF_SP_RAW, NN_REP);
        int fd;
        size_t fdsz = sizeof(fd);

        if (s < 0) {
            srv_log(SRV_LOG_ERROR, "loop", "nn_socket: %s", nn_strerror(nn_errno()));
            return -1;
        }
        l->socks[l->n_socks++] = s;
        if (nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsize, sizeof(maxsize)) < 0 ||
            prepare_ipc_dir(uri) < 0 || nn_bind(s, uri) < 0 ||
            nn_getsockopt(s, NN_SOL_SOCKET, NN_RCVFD, &fd, &fdsz) < 0) {
            srv_log(SRV_LOG_ERROR, "loop", "cannot listen uri=%s: %s", uri,
                    nn_strerror(nn_errno()));
            return -1;
        }
        if (strncmp(uri, "ipc://", 6) == 0)
            chmod(uri + 6, 0600);
        l->pfd[i] = (struct pollfd){.fd = fd, .events = POLLIN};
        srv_log(SRV_LOG_INFO, "loop", "listening uri=%s", uri);
    }
    return 0;
}

static void close_sockets(struct loop *l)
{
    for (int i = 0; i < l->n_socks; i++) {
        const char *uri = l->srv->cfg.listen[i];
        nn_close(l->socks[i]);
        if (strncmp(uri, "ipc://", 6) == 0)
            unlink(uri + 6);
    }
}

static void on_signal(struct loop *l)
{
    struct signalfd_siginfo si;
    while (read(l->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            srv_log(SRV_LOG_INFO, "main", "SIGHUP: reloading configuration");
            srv_reload_config(l->srv);
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

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    l.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    l.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l.batch = calloc(DRAIN_BUDGET, sizeof(*l.batch));
    if (l.sfd < 0 || l.efd < 0 || !l.batch) {
        srv_log(SRV_LOG_ERROR, "loop", "cannot set up: %s", strerror(errno));
        goto out;
    }
    if (srv_workers_start(srv, srv->cfg.workers, l.efd, &l.workers)) {
        srv_log(SRV_LOG_ERROR, "loop", "cannot start read workers");
        goto out;
    }
    if (open_sockets(&l))
        goto out;
    int nfd = l.n_socks;
    l.pfd[nfd++] = (struct pollfd){.fd = l.efd, .events = POLLIN};
    l.pfd[nfd++] = (struct pollfd){.fd = l.sfd, .events = POLLIN};
    srv_log(SRV_LOG_INFO, "main", "ready pid=%d data_dir=%s", (int)getpid(), srv->cfg.data_dir);
    l.last_maint = wire_mono_ms();

    while (!l.stop) {
        int rc = poll(l.pfd, (nfds_t)nfd, IDLE_TICK_MS);
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
        if (n)
            handle_batch(&l, n);
        if (n == 0 && wire_mono_ms() - l.last_maint >= IDLE_TICK_MS) {
            maintain(&l);
            l.last_maint = wire_mono_ms();
        }
    }
    /* drain: finish what the workers hold, answer it, then close */
    srv_workers_stop(l.workers);
    reply_done(&l);
    status = 0;
out:
    if (l.workers) {
        srv_workers_stop(l.workers);
        reply_done(&l);
        srv_workers_free(l.workers);
    }
    close_sockets(&l);
    if (l.sfd >= 0)
        close(l.sfd);
    if (l.efd >= 0)
        close(l.efd);
    free(l.batch);
    return status;
}
