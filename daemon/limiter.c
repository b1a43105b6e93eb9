/*
 * limiter.c: per-key budgets (limiter.h): token buckets for requests,
 * bytes and run starts, a count of uploads in flight, in a fixed table of
 * users found by open addressing on the user id. See limiter.h for the
 * rules; this file only keeps the arithmetic honest: buckets refill from
 * the monotonic time since their last charge, never beyond their capacity,
 * and a clock that goes backwards (it should not) refills nothing.
 */
#include "limiter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_UPLOADS_TRACKED 64 /* per user: begun-and-not-ended uploads remembered */

struct bucket {
    double level; /* tokens now (bytes may be negative: a debt) */
    int64_t at_ms;
};

struct slot {
    int64_t user; /* 0: empty */
    int64_t seen_ms;
    struct bucket req, bytes, runs;
    int n_uploads;
    int64_t upload_at[MAX_UPLOADS_TRACKED]; /* when each in-flight upload began */
};

struct srv_limiter {
    struct srv_limits_cfg cfg;
    struct slot *slots;
    size_t cap; /* a power of two, at least twice max_keys */
    size_t used;
};

static int check_rate(double r, const char *name, char *msg, size_t cap)
{
    if (!isfinite(r) || r < 0) {
        snprintf(msg, cap, "%s: must be a finite rate >= 0 (0: unlimited)", name);
        return -1;
    }
    return 0;
}

static int set_cfg(struct srv_limiter *l, const struct srv_limits_cfg *cfg, char *msg, size_t cap)
{
    if (check_rate(cfg->requests_per_s, "limit_requests", msg, cap) ||
        check_rate(cfg->bytes_per_s, "limit_bytes", msg, cap) ||
        check_rate(cfg->runs_per_min, "limit_runs", msg, cap))
        return -1;
    if (cfg->uploads < 0 || cfg->uploads > MAX_UPLOADS_TRACKED) {
        snprintf(msg, cap, "limit_uploads: must be 0 (unlimited) to %d", MAX_UPLOADS_TRACKED);
        return -1;
    }
    size_t keys = l->cap ? l->cfg.max_keys : cfg->max_keys;
    int64_t idle = cfg->upload_idle_ms > 0 ? cfg->upload_idle_ms : SRV_LIMIT_UPLOAD_IDLE_MS;
    l->cfg = *cfg;
    l->cfg.max_keys = keys ? keys : SRV_LIMIT_KEYS;
    l->cfg.upload_idle_ms = idle;
    return 0;
}

int srv_limiter_new(const struct srv_limits_cfg *cfg, struct srv_limiter **out, char *msg,
                    size_t cap)
{
    struct srv_limiter *l = calloc(1, sizeof(*l));

    *out = NULL;
    if (!l) {
        snprintf(msg, cap, "out of memory");
        return -2;
    }
    if (set_cfg(l, cfg, msg, cap)) {
        free(l);
        return -1;
    }
    size_t n = 16;
    while (n < 2 * l->cfg.max_keys)
        n <<= 1;
    l->slots = calloc(n, sizeof(*l->slots));
    if (!l->slots) {
        free(l);
        snprintf(msg, cap, "out of memory");
        return -2;
    }
    l->cap = n;
    *out = l;
    return 0;
}

void srv_limiter_free(struct srv_limiter *l)
{
    if (!l)
        return;
    free(l->slots);
    free(l);
}

int srv_limiter_set(struct srv_limiter *l, const struct srv_limits_cfg *cfg, char *msg, size_t cap)
{
    return set_cfg(l, cfg, msg, cap);
}

size_t srv_limiter_tracked(const struct srv_limiter *l)
{
    return l->used;
}

static size_t hash_of(int64_t user, size_t cap)
{
    uint64_t x = (uint64_t)user * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 32) & (cap - 1);
}

/* Removes slot i and moves later entries of its probe chain back (linear
 * probing's deletion), so every entry stays reachable. */
static void slot_remove(struct srv_limiter *l, size_t i)
{
    size_t j = i;

    l->slots[i].user = 0;
    l->used--;
    for (;;) {
        j = (j + 1) & (l->cap - 1);
        if (l->slots[j].user == 0)
            return;
        size_t home = hash_of(l->slots[j].user, l->cap);
        /* may entry j move to the hole at i? yes unless home lies in (i, j] */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        l->slots[i] = l->slots[j];
        l->slots[j].user = 0;
        i = j;
    }
}

static void evict_oldest(struct srv_limiter *l)
{
    size_t best = l->cap;
    for (size_t i = 0; i < l->cap; i++)
        if (l->slots[i].user && (best == l->cap || l->slots[i].seen_ms < l->slots[best].seen_ms))
            best = i;
    if (best < l->cap)
        slot_remove(l, best);
}

/* The slot of user, made (with full buckets) when absent. */
static struct slot *slot_of(struct srv_limiter *l, int64_t user, int64_t now_ms)
{
    size_t i = hash_of(user, l->cap);

    while (l->slots[i].user && l->slots[i].user != user)
        i = (i + 1) & (l->cap - 1);
    if (l->slots[i].user == user)
        return &l->slots[i];
    if (l->used >= l->cfg.max_keys) {
        evict_oldest(l);
        i = hash_of(user, l->cap);
        while (l->slots[i].user)
            i = (i + 1) & (l->cap - 1);
    }
    struct slot *s = &l->slots[i];
    memset(s, 0, sizeof(*s));
    s->user = user;
    s->req = (struct bucket){l->cfg.requests_per_s, now_ms};
    s->bytes = (struct bucket){l->cfg.bytes_per_s, now_ms};
    s->runs = (struct bucket){l->cfg.runs_per_min, now_ms};
    l->used++;
    return s;
}

/* Refills b at `rate` per `per_ms` up to `capacity`. */
static void refill(struct bucket *b, double rate, double per_ms, double capacity, int64_t now_ms)
{
    if (now_ms > b->at_ms) {
        b->level += rate * (double)(now_ms - b->at_ms) / per_ms;
        if (b->level > capacity)
            b->level = capacity;
    }
    b->at_ms = now_ms > b->at_ms ? now_ms : b->at_ms;
}

static void forget_idle_uploads(struct srv_limiter *l, struct slot *s, int64_t now_ms)
{
    int k = 0;
    for (int i = 0; i < s->n_uploads; i++)
        if (now_ms - s->upload_at[i] < l->cfg.upload_idle_ms)
            s->upload_at[k++] = s->upload_at[i];
    s->n_uploads = k;
}

int srv_limiter_charge(struct srv_limiter *l, int64_t user, size_t bytes, int run_start,
                       int upload_begin, int64_t now_ms, char *msg, size_t cap)
{
    const struct srv_limits_cfg *c = &l->cfg;
    struct slot *s = slot_of(l, user, now_ms);

    s->seen_ms = now_ms;
    if (c->requests_per_s > 0) {
        refill(&s->req, c->requests_per_s, 1000.0, c->requests_per_s, now_ms);
        if (s->req.level < 1.0) {
            snprintf(msg, cap,
                     "rate limit: more than %.0f requests a second from this key "
                     "(limit_requests); retry in %.0f ms",
                     c->requests_per_s, ceil((1.0 - s->req.level) * 1000.0 / c->requests_per_s));
            return SRV_LIMIT_REQUESTS;
        }
    }
    if (c->bytes_per_s > 0) {
        refill(&s->bytes, c->bytes_per_s, 1000.0, c->bytes_per_s, now_ms);
        if (s->bytes.level < 0) {
            snprintf(msg, cap,
                     "rate limit: more than %.0f MiB a second of requests from this key "
                     "(limit_bytes); retry in %.0f ms",
                     c->bytes_per_s / 1048576.0, ceil(-s->bytes.level * 1000.0 / c->bytes_per_s));
            return SRV_LIMIT_BYTES;
        }
    }
    if (run_start && c->runs_per_min > 0) {
        refill(&s->runs, c->runs_per_min, 60000.0, c->runs_per_min, now_ms);
        if (s->runs.level < 1.0) {
            snprintf(msg, cap,
                     "rate limit: more than %.0f runs started a minute from this key "
                     "(limit_runs); retry in %.0f ms",
                     c->runs_per_min, ceil((1.0 - s->runs.level) * 60000.0 / c->runs_per_min));
            return SRV_LIMIT_RUNS;
        }
    }
    if (upload_begin) {
        forget_idle_uploads(l, s, now_ms);
        int most = c->uploads > 0 ? c->uploads : MAX_UPLOADS_TRACKED;
        if (s->n_uploads >= most) {
            snprintf(msg, cap,
                     "limit: %d uploads from this key are already in flight (limit_uploads); "
                     "finish one first",
                     s->n_uploads);
            return SRV_LIMIT_UPLOADS;
        }
        s->upload_at[s->n_uploads++] = now_ms;
    }
    if (c->requests_per_s > 0)
        s->req.level -= 1.0;
    if (c->bytes_per_s > 0)
        s->bytes.level -= (double)bytes;
    if (run_start && c->runs_per_min > 0)
        s->runs.level -= 1.0;
    return SRV_LIMIT_OK;
}

void srv_limiter_upload_end(struct srv_limiter *l, int64_t user, int64_t now_ms)
{
    size_t i = hash_of(user, l->cap);

    while (l->slots[i].user && l->slots[i].user != user)
        i = (i + 1) & (l->cap - 1);
    struct slot *s = &l->slots[i];
    if (s->user != user || s->n_uploads == 0)
        return;
    /* the oldest is the one most likely ending; which one does not matter
     * for a count */
    memmove(&s->upload_at[0], &s->upload_at[1], (size_t)(s->n_uploads - 1) * sizeof(int64_t));
    s->n_uploads--;
    s->seen_ms = now_ms;
}
