/*
 * limiter.h: what one key may cost the daemon (issue 15, "Limits per key";
 * prefix srv_limiter_). Each remote user has its own budget, refilled with
 * time: requests per second, request bytes per second, runs started per
 * minute, and uploads begun and not yet committed. Past a budget a request
 * is answered RESOURCE_EXHAUSTED naming the limit; nothing waits, so one
 * key over its budget never stalls the others. Local callers (ipc, the
 * daemon's owner) are not limited.
 *
 * Budgets are token buckets on the monotonic clock (a wall clock that jumps
 * neither refills nor drains them). The request and run buckets hold one
 * second and one minute of their rate; the byte bucket holds one second of
 * its rate and may go into debt by one frame, so a frame larger than a
 * second's budget still passes once the bucket is full, and the debt is paid
 * before the next. Uploads count begun-and-not-committed ones, each
 * forgotten after `upload_idle_ms` (the daemon's idle expiry of an upload).
 *
 * Memory: at most max_keys users are tracked (the least recently seen is
 * forgotten beyond it, which only ever refills a budget); fixed at creation.
 * A limiter belongs to one thread (the event loop's).
 */
#ifndef TRACK_LIMITER_H
#define TRACK_LIMITER_H

#include <stddef.h>
#include <stdint.h>

/* defaults (trackd.conf: limit_requests, limit_bytes, limit_runs, limit_uploads) */
#define SRV_LIMIT_DEFAULT_REQUESTS 5000
#define SRV_LIMIT_DEFAULT_BYTES    (128.0 * 1024 * 1024)
#define SRV_LIMIT_DEFAULT_RUNS     6000
#define SRV_LIMIT_DEFAULT_UPLOADS  8
#define SRV_LIMIT_KEYS             4096
#define SRV_LIMIT_UPLOAD_IDLE_MS   (10 * 60 * 1000)

struct srv_limits_cfg {
    double requests_per_s;  /* 0: unlimited */
    double bytes_per_s;     /* 0: unlimited */
    double runs_per_min;    /* 0: unlimited */
    int uploads;            /* 0: unlimited */
    size_t max_keys;        /* 0: SRV_LIMIT_KEYS */
    int64_t upload_idle_ms; /* 0: SRV_LIMIT_UPLOAD_IDLE_MS */
};

enum srv_limit_kind {
    SRV_LIMIT_OK = 0,
    SRV_LIMIT_REQUESTS = 1,
    SRV_LIMIT_BYTES = 2,
    SRV_LIMIT_RUNS = 3,
    SRV_LIMIT_UPLOADS = 4,
};

struct srv_limiter;

/* A limiter with cfg (copied; negative or non-finite rates are refused).
 * 0 and *out, or -1 (bad cfg, message in msg) / -2 (out of memory). */
int srv_limiter_new(const struct srv_limits_cfg *cfg, struct srv_limiter **out, char *msg,
                    size_t cap);
void srv_limiter_free(struct srv_limiter *l);
/* Replaces the rates (a reload); budgets in flight keep their level. */
int srv_limiter_set(struct srv_limiter *l, const struct srv_limits_cfg *cfg, char *msg, size_t cap);

/* Charges one request of `bytes` from user at now_ms (monotonic), a run
 * start when run_start, an upload's beginning when upload_begin. 0
 * (charged), or the SRV_LIMIT_* kind refused with msg naming the limit,
 * its value and when to retry; nothing is charged for a refused request. */
int srv_limiter_charge(struct srv_limiter *l, int64_t user, size_t bytes, int run_start,
                       int upload_begin, int64_t now_ms, char *msg, size_t cap);
/* An upload of user committed or abandoned: one fewer in flight. */
void srv_limiter_upload_end(struct srv_limiter *l, int64_t user, int64_t now_ms);
/* Users tracked now (tests). */
size_t srv_limiter_tracked(const struct srv_limiter *l);

#endif
