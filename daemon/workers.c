/*
 * workers.c: a few threads that serve reads, each with its own read-only
 * store handle (WAL lets them read beside the writer), so one slow query
 * never stalls logging. The loop submits decoded requests; a worker packs
 * the response, puts the job on the done list and wakes the loop through
 * an eventfd. Replies are sent by the loop's thread only.
 *
 * Memory: the bytes of requests queued or running are bounded
 * (SRV_MAX_READ_BYTES, checked at submit), and so are the bytes of replies
 * built and not yet taken by the loop (SRV_MAX_DONE_BYTES): past it a worker
 * waits before starting the next read, so a loop held up by a long group
 * commit never finds thousands of finished replies piled up.
 */
#include "srv.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct srv_workers {
    struct srv *srv;
    int efd;
    int n, n_stores;
    pthread_t *threads;
    struct store **stores;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct srv_job *queue, *queue_tail;
    int queued;        /* jobs submitted and not yet finished */
    size_t read_bytes; /* their request bytes */
    size_t done_bytes; /* reply bytes on the done list */
    struct srv_job *done;
    int stopping;
    unsigned release_gen; /* srv_workers_release_memory asks: each worker
                           * releases its own handle (NOMUTEX: only its
                           * thread may touch it) */
};

struct worker_arg {
    struct srv_workers *w;
    int index;
};

static void serve(struct srv_workers *w, struct store *st, struct srv_job *job)
{
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    struct srv_call call = {.caller = &job->caller,
                            .srv = w->srv,
                            .st = st,
                            .rq = job->rq,
                            .rs = &rs,
                            .frame_limit = job->frame_limit};

    struct store_err err = {0};
    /* one read transaction per request: a consistent view, and one lock
     * taken instead of one per statement (a run list with details runs
     * several statements per run) */
    int in_txn = !srv_op_own_txn(job->rq) && store_begin(st, &err) == 0;
    srv_dispatch(&call);
    if (in_txn)
        store_rollback(st);
    if (rs.error)
        srv_log(SRV_LOG_DEBUG, "worker", "%s failed code=%s msg=\"%s\"", srv_op_name(job->rq),
                wire_code_name(rs.error->code), rs.error->message);
    job->reply = srv_pack_response(&rs, &job->reply_len);
    srv_arena_free(&call.arena);
    track__v1__request__free_unpacked(job->rq, NULL);
    job->rq = NULL;
}

static void *worker_main(void *p)
{
    struct worker_arg *arg = p;
    struct srv_workers *w = arg->w;
    struct store *st = w->stores[arg->index];
    unsigned released = 0;
    free(arg);

    for (;;) {
        pthread_mutex_lock(&w->lock);
        /* cond is signalled on submit, when the loop takes the done list
         * and when the caches are to be given back */
        while (!w->stopping && released == w->release_gen &&
               (!w->queue || w->done_bytes >= SRV_MAX_DONE_BYTES))
            pthread_cond_wait(&w->cond, &w->lock);
        if (released != w->release_gen) {
            released = w->release_gen;
            pthread_mutex_unlock(&w->lock);
            store_release_memory(st);
            malloc_trim(0);
            continue;
        }
        if (!w->queue && w->stopping) {
            pthread_mutex_unlock(&w->lock);
            return NULL;
        }
        struct srv_job *job = w->queue;
        w->queue = job->next;
        if (!w->queue)
            w->queue_tail = NULL;
        pthread_mutex_unlock(&w->lock);

        serve(w, st, job);

        pthread_mutex_lock(&w->lock);
        job->next = w->done;
        w->done = job;
        w->queued--;
        w->read_bytes -= job->rq_bytes;
        w->done_bytes += job->reply_len;
        pthread_mutex_unlock(&w->lock);
        uint64_t one = 1;
        ssize_t r = write(w->efd, &one, sizeof(one));
        (void)r; /* the counter only saturates; the loop drains it anyway */
    }
}

void srv_workers_release_memory(struct srv_workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->release_gen++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int srv_workers_start(struct srv *srv, int n, int efd, struct srv_workers **out)
{
    struct srv_workers *w = calloc(1, sizeof(*w));
    struct store_opts so = {.readonly = 1};
    struct store_err err = {0};

    if (!w)
        return -1;
    w->srv = srv;
    w->efd = efd;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->threads = calloc((size_t)n, sizeof(*w->threads));
    w->stores = calloc((size_t)n, sizeof(*w->stores));
    if (!w->threads || !w->stores)
        goto fail;
    for (int i = 0; i < n; i++) {
        if (store_open(srv->cfg.db_path, &so, &w->stores[i], &err)) {
            srv_log(SRV_LOG_ERROR, "worker", "cannot open read handle: %s", err.msg);
            goto fail;
        }
        w->n_stores++;
    }
    for (int i = 0; i < n; i++) {
        struct worker_arg *arg = malloc(sizeof(*arg));
        if (!arg)
            goto fail;
        arg->w = w;
        arg->index = i;
        if (pthread_create(&w->threads[i], NULL, worker_main, arg)) {
            free(arg);
            goto fail;
        }
        w->n++;
    }
    *out = w;
    return 0;
fail:
    srv_workers_stop(w);
    srv_workers_free(w);
    return -1;
}

int srv_workers_submit(struct srv_workers *w, struct srv_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->queued >= SRV_MAX_QUEUED_READS) {
        pthread_mutex_unlock(&w->lock);
        return -1;
    }
    /* one request alone is always taken (it is within the frame limit) */
    if (w->read_bytes && w->read_bytes + job->rq_bytes > SRV_MAX_READ_BYTES) {
        pthread_mutex_unlock(&w->lock);
        return -2;
    }
    w->queued++;
    w->read_bytes += job->rq_bytes;
    if (w->queue_tail)
        w->queue_tail->next = job;
    else
        w->queue = job;
    w->queue_tail = job;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

struct srv_job *srv_workers_done(struct srv_workers *w)
{
    pthread_mutex_lock(&w->lock);
    struct srv_job *d = w->done;
    w->done = NULL;
    if (w->done_bytes >= SRV_MAX_DONE_BYTES)
        pthread_cond_broadcast(&w->cond);
    w->done_bytes = 0;
    pthread_mutex_unlock(&w->lock);
    return d;
}

/* Finishes queued jobs and joins the threads. Finished jobs stay on the
 * done list for the caller to take before srv_workers_free. */
void srv_workers_stop(struct srv_workers *w)
{
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->n; i++)
        pthread_join(w->threads[i], NULL);
    w->n = 0;
}

void srv_workers_free(struct srv_workers *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n_stores; i++)
        store_close(w->stores[i]);
    free(w->threads);
    free(w->stores);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}
