/*
 * spool.c: the spool, where writes go while trackd cannot be reached: its
 * policy. What a full spool drops, the append, delivery of each record to
 * its own server, what a reply means for the record, and the sync report.
 * The bytes on disk (frames, checksums, damage, the lock) are spool_file.c's.
 *
 * Delivery walks the records in order and sends each to its own server.
 * Applied: DONE. Refused for good by the server (INVALID_ARGUMENT, NOT_FOUND,
 * CONFLICT, ALREADY_EXISTS, PERMISSION_DENIED, UNAUTHENTICATED): the record
 * goes to `<spool>.rejected` (one line: time, server, code, reason, the
 * request in base64) and is DONE. Refused for now (RESOURCE_EXHAUSTED,
 * UNAVAILABLE, INTERNAL), the server unreachable, or this client unable to
 * seal for it (no key, no pinned server key, a server key mismatch: fixed
 * on this side, then synced): that record and every later one of the same
 * server stay, in order, for a later sync.
 *
 * Records hold the plaintext request, never a sealed frame (its timestamp
 * would go stale): delivery to a tcp:// server seals it then, with a fresh
 * nonce, and the server's request-id digest of the plaintext still knows a
 * record it applied before.
 *
 * The spool is bounded (spool_max_bytes). When a record does not fit, the
 * file is rewritten without its DONE records and damaged stretches; if that
 * is not enough, metric batches go first, oldest first, and only then other
 * records (run starts and ends, params, tags), so a run's points never
 * outlive its start.
 */
#include "internal.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLICE_MS    200 /* longest hold of the lock while delivering */
#define MAX_SERVERS 32  /* servers one delivery keeps apart */

/* ---- a full spool ----------------------------------------------------------- */

struct live {
    off_t off, len;
    uint32_t kind, points;
    int drop;
};

/* Rewrites the spool with its live records only, dropping metric batches
 * first (oldest first), then other records, until `extra` more bytes fit;
 * then appends `frame` (may be NULL). */
static int rewrite(struct track_client *c, struct spool *sp, const uint8_t *frame, size_t flen,
                   struct cl_spool_note *note, struct track_err *err)
{
    struct live *lv = NULL;
    size_t n = 0, cap = 0;
    struct walk w;
    struct rec r;
    char tmp[1200];
    int rc = 0, fd = -1;
    int64_t total = SPOOL_HDR + (int64_t)flen;

    cl_spool_walk_init(&w, sp->fd, (off_t)sp->first_live, sp->size);
    while ((rc = cl_spool_walk_next(&w, &r)) == 1) {
        if (r.state == STATE_DONE)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            struct live *p = realloc(lv, nc * sizeof(*p));
            if (!p) {
                rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
                goto out;
            }
            lv = p;
            cap = nc;
        }
        lv[n] = (struct live){r.off, r.next - r.off, r.kind, r.points, 0};
        total += lv[n].len;
        n++;
    }
    if (rc < 0) {
        rc = cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path, strerror(errno));
        goto out;
    }
    for (int pass = 0; pass < 2 && total > c->spool_max; pass++) {
        for (size_t i = 0; i < n && total > c->spool_max; i++) {
            if (lv[i].drop || (pass == 0) != (lv[i].kind == KIND_METRICS))
                continue;
            lv[i].drop = 1;
            total -= lv[i].len;
            if (note && lv[i].kind == KIND_METRICS) {
                note->dropped_batches++;
                note->dropped_points += lv[i].points;
            } else if (note) {
                note->dropped_other++;
            }
        }
    }
    fd = cl_spool_tmp_open(c, tmp, sizeof(tmp), sp->gen + 1, err);
    if (fd < 0) {
        rc = err ? err->code : TRACK_E_UNAVAILABLE;
        goto out;
    }
    off_t used = SPOOL_HDR;
    for (size_t i = 0; i < n; i++) {
        if (lv[i].drop)
            continue;
        if (cl_spool_rbuf_fit(&w.b, (size_t)lv[i].len) < 0 ||
            cl_spool_full_pread(sp->fd, w.b.p, (size_t)lv[i].len, lv[i].off) < 0 ||
            cl_spool_full_pwrite(fd, w.b.p, (size_t)lv[i].len, used) < 0)
            goto io;
        used += lv[i].len;
    }
    if (frame) {
        if (cl_spool_full_pwrite(fd, frame, flen, used) < 0)
            goto io;
        used += (off_t)flen;
    }
    rc = cl_spool_tmp_commit(c, sp, fd, tmp, used, sp->gen + 1, err);
    fd = -1;
    goto out;
io:
    rc = cl_fail(err, TRACK_E_UNAVAILABLE, "cannot rewrite spool %s: %s", c->spool_path,
                 strerror(errno));
    close(fd);
    unlink(tmp);
out:
    free(w.b.p);
    free(lv);
    return rc;
}

/* What a packed request is, for the full spool's choice of what to drop. */
static void classify(const uint8_t *req, size_t len, uint32_t *kind, uint32_t *points)
{
    Track__V1__Request *rq = track__v1__request__unpack(NULL, len, req);
    *kind = KIND_OTHER;
    *points = 0;
    if (!rq)
        return;
    if (rq->op_case == TRACK__V1__REQUEST__OP_RUN_START)
        *kind = KIND_RUN_START;
    else if (rq->op_case == TRACK__V1__REQUEST__OP_RUN_END)
        *kind = KIND_RUN_END;
    else if (rq->op_case == TRACK__V1__REQUEST__OP_LOG_BATCH && rq->log_batch->n_metrics &&
             !rq->log_batch->n_params && !rq->log_batch->n_tags) {
        uint64_t p = 0;
        *kind = KIND_METRICS;
        for (size_t i = 0; i < rq->log_batch->n_metrics; i++)
            p += rq->log_batch->metrics[i]->n_values;
        *points = p > UINT32_MAX ? UINT32_MAX : (uint32_t)p;
    }
    track__v1__request__free_unpacked(rq, NULL);
}

int cl_spool_append(struct track_client *c, const uint8_t *req, size_t len,
                    struct cl_spool_note *note, struct track_err *err)
{
    struct spool sp;
    uint32_t kind, points;
    size_t flen;
    int rc;

    if (note)
        memset(note, 0, sizeof(*note));
    if (strlen(c->server) > URI_MAX)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "server: longer than %d bytes", URI_MAX);
    if ((int64_t)(len + REC_HDR + strlen(c->server) + SPOOL_HDR) > c->spool_max)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED,
                       "request of %zu bytes is larger than the whole spool (%lld bytes)", len,
                       (long long)c->spool_max);
    classify(req, len, &kind, &points);
    uint8_t *frame = cl_spool_frame_new(c->server, req, len, kind, points, &flen);
    if (!frame)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    rc = cl_spool_open(c, 1, &sp, note, err);
    if (rc) {
        free(frame);
        return rc < 0 ? rc : TRACK_E_UNAVAILABLE; /* the lock stayed held */
    }
    if ((off_t)sp.end != sp.size && (rc = cl_spool_fix_tail(c, &sp, note, err)))
        goto out;
    if (sp.size + (int64_t)flen > c->spool_max) {
        rc = rewrite(c, &sp, frame, flen, note, err);
        goto out;
    }
    if (cl_spool_full_pwrite(sp.fd, frame, flen, sp.size) < 0 || fdatasync(sp.fd) < 0) {
        rc = cl_fail(err, TRACK_E_UNAVAILABLE, "cannot write spool %s: %s", c->spool_path,
                     strerror(errno));
        goto out;
    }
    sp.end = (uint64_t)(sp.size + (off_t)flen);
    /* a lost header update costs a scan of the tail next time, nothing more */
    cl_spool_write_header(&sp);
out:
    free(frame);
    if (sp.fd >= 0)
        close(sp.fd);
    return rc;
}

/* ---- delivery ------------------------------------------------------------------ */

struct target {
    char uri[URI_MAX + 1];
    struct track_client *cl; /* NULL: not opened yet, or c itself */
    int blocked;             /* unreachable or refused for now: keep the rest */
};

struct delivery {
    struct track_client *c;
    int all;
    int64_t deadline;
    struct track_sync_report *r; /* never NULL inside */
    struct target t[MAX_SERVERS];
    int n;
    int own_kept; /* records of c's server left */
    struct track_err own_err;
    /* where the walk stands between slices */
    ino_t ino;
    uint64_t gen;
    off_t pos, first_keep;
    int any_live, damaged_seen, walking;
};

static int permanent(int code)
{
    return code == TRACK_E_INVALID_ARGUMENT || code == TRACK_E_NOT_FOUND ||
           code == TRACK_E_CONFLICT || code == TRACK_E_ALREADY_EXISTS ||
           code == TRACK_E_PERMISSION_DENIED || code == TRACK_E_UNAUTHENTICATED;
}

/* Appends "URI: CODE: message" to a report's list, cut to its size. */
static void add_reason(char (*list)[300], int *n, int max, const char *uri, const char *code,
                       const char *msg)
{
    char buf[URI_MAX + 1 + 64 + sizeof(((struct track_err *)0)->msg) + 8];
    if (*n >= max)
        return;
    snprintf(buf, sizeof(buf), "%s: %s%s%s", uri, code, *code ? ": " : "", msg);
    size_t len = strlen(buf) < sizeof(list[0]) ? strlen(buf) : sizeof(list[0]) - 1;
    memcpy(list[*n], buf, len);
    list[*n][len] = '\0';
    (*n)++;
}

static struct target *target_for(struct delivery *d, const struct rec *r)
{
    for (int i = 0; i < d->n; i++)
        if (strlen(d->t[i].uri) == r->uri_len && memcmp(d->t[i].uri, r->uri, r->uri_len) == 0)
            return &d->t[i];
    if (d->n == MAX_SERVERS)
        return NULL;
    struct target *t = &d->t[d->n++];
    memset(t, 0, sizeof(*t));
    memcpy(t->uri, r->uri, r->uri_len);
    t->uri[r->uri_len] = '\0';
    return t;
}

/* One line per rejected request: time, server, code, reason, request. */
static int reject(struct delivery *d, const struct rec *r, const char *uri,
                  const struct track_err *why)
{
    char path[1200], *b64 = NULL, reason[512];
    size_t b64len = sodium_base64_encoded_len(r->len, sodium_base64_VARIANT_ORIGINAL);
    int fd, rc = -1;

    snprintf(path, sizeof(path), "%s.rejected", d->c->spool_path);
    snprintf(reason, sizeof(reason), "%s", why->msg);
    for (char *p = reason; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    b64 = malloc(b64len);
    if (!b64)
        return -1;
    sodium_bin2base64(b64, b64len, r->payload, r->len, sodium_base64_VARIANT_ORIGINAL);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        fchmod(fd, 0600);
        FILE *f = fdopen(fd, "a");
        if (!f) {
            close(fd);
        } else {
            fprintf(f, "%lld\t%s\t%s\t%s\t%s\n", (long long)wire_now_ms(), uri,
                    track_code_name(why->code), reason, b64);
            rc = fflush(f) == 0 && fdatasync(fd) == 0 ? 0 : -1;
            fclose(f);
        }
    }
    free(b64);
    if (rc == 0)
        snprintf(d->r->rejected_path, sizeof(d->r->rejected_path), "%s", path);
    return rc;
}

/* Sends one record to its server. 0 delivered or rejected (the record is
 * done), 1 kept, 2 no time left. */
static int send_one(struct delivery *d, struct target *t, const struct rec *r)
{
    struct track_client *c = d->c, *cl = c;
    Track__V1__Response *rs = NULL;
    struct track_err e = {0};
    int own = strcmp(t->uri, c->server) == 0, rc;

    if (wire_mono_ms() >= d->deadline)
        return 2;
    if (!own) {
        if (!t->cl) {
            struct track_opts o = {.server = t->uri,
                                   .timeout_ms = c->timeout_ms,
                                   .spool_path = c->spool_path,
                                   .no_spool = 1};
            if (track_client_open(&o, &t->cl, &e)) {
                t->blocked = 1;
                add_reason(d->r->kept_reasons, &d->r->n_kept_reasons, 4, t->uri, "", e.msg);
                return 1;
            }
        }
        cl = t->cl;
    }
    int64_t saved = cl->deadline_ms;
    cl->deadline_ms = d->deadline;
    rc = cl_roundtrip(cl, r->payload, r->len, &rs, &e);
    cl->deadline_ms = saved;
    if (rc == 0)
        rc = cl_response_error(rs, &e);
    if (rs)
        track__v1__response__free_unpacked(rs, NULL);
    if (rc == 0) {
        d->r->delivered++;
        return 0;
    }
    if (permanent(rc) && !cl->seal_fault && reject(d, r, t->uri, &e) == 0) {
        if (!d->r->rejected++)
            d->r->rejected_code = rc;
        add_reason(d->r->rejected_reasons, &d->r->n_rejected_reasons, 3, t->uri,
                   track_code_name(rc), e.msg);
        return 0;
    }
    /* refused for now, or the server away: the rest of its records wait */
    t->blocked = 1;
    if (own)
        d->own_err = e;
    add_reason(d->r->kept_reasons, &d->r->n_kept_reasons, 4, t->uri, track_code_name(rc), e.msg);
    return 1;
}

/* One slice under the lock: 0 walked to the end, 1 time is up, or an
 * error. */
static int deliver_slice(struct delivery *d, int64_t slice, struct track_err *err)
{
    struct track_client *c = d->c;
    struct spool sp;
    struct walk w;
    struct rec r;
    int rc, done = 0, at_end = 0;

    struct cl_spool_note note = {0};
    rc = cl_spool_open(c, 0, &sp, &note, err);
    if (note.moved[0]) {
        snprintf(d->r->moved, sizeof(d->r->moved), "%s", note.moved);
        d->r->salvaged = note.salvaged;
    }
    if (rc == 1)
        return 0;
    if (rc)
        return rc; /* 2: the lock stayed held */
    if (!d->walking || sp.ino != d->ino || sp.gen != d->gen) {
        /* a fresh walk: the file was rewritten since the last slice */
        d->pos = d->first_keep = (off_t)sp.first_live;
        d->any_live = 0;
        d->walking = 1;
    }
    cl_spool_walk_init(&w, sp.fd, d->pos, sp.size);
    for (;;) {
        if (wire_mono_ms() >= slice) {
            rc = 1;
            break;
        }
        int got = cl_spool_walk_next(&w, &r);
        if (got < 0) {
            rc = cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path, strerror(errno));
            break;
        }
        if (w.damaged) {
            d->damaged_seen = 1;
            d->r->damaged += w.damaged;
            d->r->damaged_bytes += w.damaged_bytes;
            w.damaged = 0;
            w.damaged_bytes = 0;
        }
        if (!got) {
            if (w.last_bad >= 0 && ftruncate(sp.fd, w.last_bad) == 0) {
                /* a torn tail: counted as damaged above */
                sp.size = w.last_bad;
            }
            done = at_end = 1;
            break;
        }
        if (r.state == STATE_DONE) {
            if (!d->any_live)
                d->first_keep = r.next;
            continue;
        }
        struct target *t = target_for(d, &r);
        int own = t && strcmp(t->uri, c->server) == 0;
        int sent = 1;
        if (t && (d->all || own) && !t->blocked) {
            sent = send_one(d, t, &r);
            if (sent == 2) {
                w.pos = r.off;
                rc = 1;
                break;
            }
        } else if (!t) {
            add_reason(d->r->kept_reasons, &d->r->n_kept_reasons, 4, "(others)", "",
                       "records of more than 32 servers: run track sync again");
        }
        if (sent == 0) {
            if (cl_spool_mark_done(&sp, r.off) < 0) {
                rc = cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path,
                             strerror(errno));
                break;
            }
            if (!d->any_live)
                d->first_keep = r.next;
            continue;
        }
        if (!d->any_live)
            d->first_keep = r.off;
        d->any_live = 1;
        if (d->all || own)
            d->r->kept++;
        else
            d->r->other_servers++;
        if (own) {
            d->own_kept++;
            /* this client's records wait behind this one; the others' are
             * not its business */
            if (!d->all) {
                done = 1;
                break;
            }
        }
    }
    free(w.b.p);
    d->pos = w.pos;
    if (rc >= 0 && done && !d->any_live) {
        /* nothing left for anyone: start over with an empty spool */
        if (ftruncate(sp.fd, SPOOL_HDR) == 0) {
            sp.first_live = sp.end = SPOOL_HDR;
            sp.gen++;
            cl_spool_write_header(&sp);
        }
        d->walking = 0;
    } else if (rc >= 0 && done && d->damaged_seen) {
        /* keep what is live, lose the damage so it is counted once */
        struct track_err e2 = {0};
        if (rewrite(c, &sp, NULL, 0, NULL, &e2) == 0)
            d->walking = 0;
    } else if (rc >= 0) {
        int tail_checked = at_end && sp.end != (uint64_t)sp.size;
        if ((uint64_t)d->first_keep > sp.first_live || tail_checked) {
            if ((uint64_t)d->first_keep > sp.first_live)
                sp.first_live = (uint64_t)d->first_keep;
            if (tail_checked)
                sp.end = (uint64_t)sp.size; /* walked to here: it ends well */
            cl_spool_write_header(&sp);
        }
        if (done)
            d->walking = 0;
    }
    d->ino = sp.ino;
    d->gen = sp.gen;
    close(sp.fd);
    return rc < 0 ? rc : done ? 0 : 1;
}

int cl_spool_deliver(struct track_client *c, int budget_ms, int all, struct track_sync_report *r,
                     struct track_err *err)
{
    struct track_sync_report local;
    struct delivery *d;
    int rc = 0;

    if (!r)
        r = &local;
    memset(r, 0, sizeof(*r));
    d = calloc(1, sizeof(*d));
    if (!d)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    d->c = c;
    d->all = all;
    d->r = r;
    d->deadline = wire_mono_ms() + budget_ms;
    if (c->deadline_ms && c->deadline_ms < d->deadline)
        d->deadline = c->deadline_ms;
    /* in slices, letting go of the lock between them, so that a long
     * delivery (track sync) never holds up another process's write for
     * longer than a slice */
    for (;;) {
        int64_t now = wire_mono_ms(), slice = now + SLICE_MS;
        if (now >= d->deadline) {
            rc = 1;
            break;
        }
        rc = deliver_slice(d, slice < d->deadline ? slice : d->deadline, err);
        if (rc == 2) {
            /* not the server's fault: the spool is busy; err says why */
            rc = 1;
            break;
        }
        if (rc != 1)
            break;
    }
    for (int i = 0; i < d->n; i++)
        if (d->t[i].cl)
            track_client_close(d->t[i].cl);
    if (rc == 0 && (d->own_kept || (all && r->kept))) {
        if (d->own_err.code == TRACK_E_UNAVAILABLE && !all)
            rc = cl_fail(err, TRACK_E_UNAVAILABLE, "%s", d->own_err.msg);
        else if (d->own_err.code && !all)
            rc = cl_fail(err, TRACK_E_UNAVAILABLE, "%s refused a spooled request for now: %s: %s",
                         c->server, track_code_name(d->own_err.code), d->own_err.msg);
        else
            rc = cl_fail(err, TRACK_E_UNAVAILABLE, "%d spooled requests kept: %s", r->kept,
                         r->n_kept_reasons ? r->kept_reasons[0] : "");
    }
    free(d);
    return rc;
}
