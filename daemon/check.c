/*
 * check.c: the integrity check at start (store_check: SQLite's integrity
 * check, every chunk decoded, summaries against chunks).
 *
 * It reads the whole database, ~40 s for the 1 GB of 10^5 runs, so only a
 * database of at most CHECK_INLINE_BYTES is checked before trackd serves
 * (and refused on failure unless --force). A bigger one is checked in the
 * background on its own read handle while trackd serves; if that check
 * fails, trackd logs it and from then on refuses every write with
 * UNAVAILABLE naming the failure (reads go on, for a backup or an export),
 * until it is restarted. `trackd --check` is the same check, in the
 * foreground, always whole. TRACKD_TEST_CHECK_INLINE_BYTES (tests only)
 * sets the size up to which the check is inline.
 */
#include "srv.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHECK_INLINE_BYTES (64LL << 20)

struct srv_check {
    pthread_t thread;
    pthread_mutex_t lock; /* over st: the thread closes it when done */
    struct store *st;     /* the background check's read handle */
    int running;
    atomic_int failed;
    char msg[sizeof(((struct store_err *)0)->msg)];
};

static void *check_main(void *arg)
{
    struct srv_check *c = arg;
    struct store_err err = {0};
    int64_t t0 = wire_now_ms();
    int rc = store_check(c->st, &err);

    if (rc == 0) {
        srv_log(SRV_LOG_INFO, "store", "integrity check passed (%lld ms, in the background)",
                (long long)(wire_now_ms() - t0));
    } else if (strstr(err.msg, "interrupt")) {
        srv_log(SRV_LOG_INFO, "store", "integrity check stopped at shutdown");
    } else {
        snprintf(c->msg, sizeof c->msg, "%s", err.msg);
        atomic_store(&c->failed, 1);
        srv_log(SRV_LOG_ERROR, "store",
                "integrity check failed: %s; writes are refused from now on (stop trackd, run "
                "trackd --check, restore a backup)",
                err.msg);
    }
    /* its cache and decode buffers are not trackd's to keep */
    pthread_mutex_lock(&c->lock);
    store_close(c->st);
    c->st = NULL;
    pthread_mutex_unlock(&c->lock);
    malloc_trim(0);
    return NULL;
}

int srv_check_start(struct srv *srv, int force)
{
    struct store_err err = {0};
    struct stat sb;
    struct srv_check *c = calloc(1, sizeof *c);

    if (!c) {
        srv_log(SRV_LOG_ERROR, "store", "out of memory");
        return -1;
    }
    srv->check = c;
    pthread_mutex_init(&c->lock, NULL);
    long long inline_bytes = CHECK_INLINE_BYTES;
    const char *t = getenv("TRACKD_TEST_CHECK_INLINE_BYTES");
    if (t && *t)
        inline_bytes = strtoll(t, NULL, 10);
    if (stat(srv->cfg.db_path, &sb) != 0 || sb.st_size <= inline_bytes) {
        if (store_check(srv->wst, &err) == 0)
            return 0;
        srv_log(force ? SRV_LOG_WARN : SRV_LOG_ERROR, "store", "integrity check failed: %s%s",
                err.msg,
                force ? " (starting anyway: --force)"
                      : "; refusing to start "
                        "(--force overrides)");
        return force ? 0 : -1;
    }
    /* it reads everything once: a cache would only hold what it passed */
    struct store_opts so = {.readonly = 1, .cache_kib = 2048};
    if (store_open(srv->cfg.db_path, &so, &c->st, &err)) {
        srv_log(SRV_LOG_ERROR, "store", "integrity check: cannot open a read handle: %s", err.msg);
        return -1;
    }
    if (pthread_create(&c->thread, NULL, check_main, c) != 0) {
        srv_log(SRV_LOG_ERROR, "store", "integrity check: cannot start its thread");
        store_close(c->st);
        c->st = NULL;
        return -1;
    }
    c->running = 1;
    srv_log(SRV_LOG_INFO, "store",
            "integrity check of %lld MB runs in the background (trackd --check runs it whole "
            "before serving)",
            (long long)(sb.st_size >> 20));
    return 0;
}

void srv_check_stop(struct srv *srv)
{
    struct srv_check *c = srv->check;
    if (!c)
        return;
    if (c->running) {
        pthread_mutex_lock(&c->lock);
        store_interrupt(c->st);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
    }
    store_close(c->st);
    pthread_mutex_destroy(&c->lock);
    free(c);
    srv->check = NULL;
}

int srv_check_failed(const struct srv *srv, char *msg, size_t cap)
{
    const struct srv_check *c = srv ? srv->check : NULL;
    if (!c || !atomic_load(&c->failed))
        return 0;
    snprintf(msg, cap, "%s", c->msg);
    return 1;
}
