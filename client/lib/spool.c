/*
 * spool.c: the spool, where writes go while trackd cannot be reached.
 *
 * One file per user (default $XDG_STATE_HOME/track/spool-<uid>.bin), shared
 * by every process of that user under flock(2); records of every server the
 * user writes to live in it, each naming its server. Layout (little endian):
 *
 *   header  "TRKSPOOL" | u32 version 2 | u32 0 | u64 first live offset |
 *           u64 end of the last append | u64 generation | 16-byte BLAKE2b of
 *           the 40 bytes before it | 8 bytes 0                 (64 bytes)
 *   record  "TRKR" | u32 state | u32 uri length | u32 payload length |
 *           u32 kind | u32 points | 16-byte BLAKE2b | uri | payload
 *
 * The record's digest covers every byte of it but its state, so damage stays
 * local: a reader that meets bytes that are not a valid frame skips them,
 * counts them as one damaged stretch, and scans on for the next magic whose
 * frame checks out; a torn tail (a crash mid-append) is a damaged stretch at
 * the end and is cut off before the next append, so a new record is never
 * buried behind garbage. The state is the one field written in place: DONE
 * once delivered (or moved to the rejected file); any other value reads as
 * live, so a damaged state at worst sends a record again, which is harmless:
 * a payload is a packed track.v1.Request with its request id, and the daemon
 * answers a repeated id without applying it twice.
 *
 * A header that does not check out (a crash mid-write, someone else's file)
 * is moved aside under a name given in the warning, and a new spool starts
 * with every valid record salvaged from it.
 *
 * Delivery walks the records in order and sends each to its own server.
 * Applied: DONE. Refused for good (INVALID_ARGUMENT, NOT_FOUND, CONFLICT,
 * ALREADY_EXISTS, PERMISSION_DENIED): the record goes to `<spool>.rejected`
 * (one line: time, server, code, reason, the request in base64) and is DONE.
 * Refused for now (RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL,
 * UNAUTHENTICATED) or the server unreachable: that record and every later
 * one of the same server stay, in order, for a later sync.
 *
 * The spool is bounded (spool_max_bytes). When a record does not fit, the
 * file is rewritten without its DONE records and damaged stretches; if that
 * is not enough, metric batches go first, oldest first, and only then other
 * records (run starts and ends, params, tags), so a run's points never
 * outlive its start. Rewrites (and the move of a bad header) build a new file
 * beside the spool, lock it, and rename it over the spool; a process that
 * waited on the old file's lock sees that the path names another file and
 * opens it again.
 *
 * Every wait for the lock ends at the call's deadline (c->deadline_ms), the
 * same one its round trips use, so one libtrack call never takes longer than
 * its timeout however many times it touches the spool.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "paths.h"
#include "track_limits.h"

#define SPOOL_MAGIC   "TRKSPOOL"
#define SPOOL_VERSION 2
#define SPOOL_HDR     64
#define REC_MAGIC     "TRKR"
#define REC_HDR       40
#define STATE_LIVE    0u
#define STATE_DONE    0x454e4f44u /* "DONE" */
#define URI_MAX       1099
#define SLICE_MS      200 /* longest hold of the lock while delivering */
#define MAX_SERVERS   32  /* servers one delivery keeps apart */

enum { KIND_RUN_START = 1, KIND_RUN_END = 2, KIND_METRICS = 3, KIND_OTHER = 4 };

struct spool {
    int fd;
    uint64_t first_live, end, gen;
    off_t size;
    ino_t ino;
};

struct rec {
    off_t off, next;
    uint32_t state, uri_len, len, kind, points;
    const uint8_t *uri, *payload; /* into the reader's buffer */
};

struct rbuf {
    uint8_t *p;
    size_t cap;
};

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int full_pread(int fd, void *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

static int full_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(fd, (const char *)buf + done, n - done, off + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

static int rbuf_fit(struct rbuf *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    uint8_t *p = realloc(b->p, n);
    if (!p)
        return -1;
    b->p = p;
    b->cap = n;
    return 0;
}

/* ---- frames ---------------------------------------------------------------- */

static void hdr_pack(uint8_t h[SPOOL_HDR], uint64_t first_live, uint64_t end, uint64_t gen)
{
    memset(h, 0, SPOOL_HDR);
    memcpy(h, SPOOL_MAGIC, 8);
    put_u32(h + 8, SPOOL_VERSION);
    put_u64(h + 16, first_live);
    put_u64(h + 24, end);
    put_u64(h + 32, gen);
    crypto_generichash(h + 40, 16, h, 40, NULL, 0);
}

static int hdr_unpack(const uint8_t h[SPOOL_HDR], struct spool *sp)
{
    uint8_t sum[16];
    if (memcmp(h, SPOOL_MAGIC, 8) != 0 || get_u32(h + 8) != SPOOL_VERSION)
        return -1;
    crypto_generichash(sum, 16, h, 40, NULL, 0);
    if (sodium_memcmp(sum, h + 40, 16) != 0)
        return -1;
    sp->first_live = get_u64(h + 16);
    sp->end = get_u64(h + 24);
    sp->gen = get_u64(h + 32);
    return 0;
}

static void rec_digest(uint8_t out[16], const uint8_t *hdr, const uint8_t *uri, size_t uri_len,
                       const uint8_t *payload, size_t len)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 16);
    crypto_generichash_update(&st, hdr, 4); /* the state (bytes 4..8) is left out */
    crypto_generichash_update(&st, hdr + 8, 16);
    crypto_generichash_update(&st, uri, uri_len);
    crypto_generichash_update(&st, payload, len);
    crypto_generichash_final(&st, out, 16);
}

/* Builds a whole frame in a malloc'd buffer (caller frees); NULL on OOM. */
static uint8_t *frame_new(const char *uri, const uint8_t *payload, size_t len, uint32_t kind,
                          uint32_t points, size_t *total)
{
    size_t ul = strlen(uri);
    uint8_t *f = malloc(REC_HDR + ul + len);
    if (!f)
        return NULL;
    memcpy(f, REC_MAGIC, 4);
    put_u32(f + 4, STATE_LIVE);
    put_u32(f + 8, (uint32_t)ul);
    put_u32(f + 12, (uint32_t)len);
    put_u32(f + 16, kind);
    put_u32(f + 20, points);
    memcpy(f + REC_HDR, uri, ul);
    memcpy(f + REC_HDR + ul, payload, len);
    rec_digest(f + 24, f, f + REC_HDR, ul, f + REC_HDR + ul, len);
    *total = REC_HDR + ul + len;
    return f;
}

/* 1 when a valid frame starts at off (r filled, its bytes in b), 0 when
 * not, -1 on an I/O error or out of memory. */
static int read_frame(int fd, off_t off, off_t size, struct rec *r, struct rbuf *b)
{
    uint8_t h[REC_HDR], sum[16];

    if (off + REC_HDR > size)
        return 0;
    if (full_pread(fd, h, REC_HDR, off) < 0)
        return -1;
    uint32_t ul = get_u32(h + 8), len = get_u32(h + 12), kind = get_u32(h + 16);
    if (memcmp(h, REC_MAGIC, 4) != 0 || ul == 0 || ul > URI_MAX || len == 0 ||
        len > LIMIT_FRAME_BYTES || kind < KIND_RUN_START || kind > KIND_OTHER ||
        off + REC_HDR + (off_t)ul + (off_t)len > size)
        return 0;
    if (rbuf_fit(b, (size_t)ul + len) < 0)
        return -1;
    if (full_pread(fd, b->p, (size_t)ul + len, off + REC_HDR) < 0)
        return -1;
    rec_digest(sum, h, b->p, ul, b->p + ul, len);
    if (sodium_memcmp(sum, h + 24, 16) != 0)
        return 0;
    r->off = off;
    r->next = off + REC_HDR + (off_t)ul + (off_t)len;
    r->state = get_u32(h + 4);
    r->uri_len = ul;
    r->len = len;
    r->kind = kind;
    r->points = get_u32(h + 20);
    r->uri = b->p;
    r->payload = b->p + ul;
    return 1;
}

/* The offset of the first valid frame after `from` (or size), -1 on error;
 * the frame is left in r and b. */
static off_t resync(int fd, off_t from, off_t size, struct rec *r, struct rbuf *b)
{
    uint8_t chunk[1 << 16];

    for (off_t pos = from; pos + REC_HDR <= size;) {
        size_t n = (size_t)(size - pos) < sizeof(chunk) ? (size_t)(size - pos) : sizeof(chunk);
        if (full_pread(fd, chunk, n, pos) < 0)
            return -1;
        for (size_t i = 0; i + 4 <= n; i++) {
            if (chunk[i] != 'T' || memcmp(chunk + i, REC_MAGIC, 4) != 0)
                continue;
            int ok = read_frame(fd, pos + (off_t)i, size, r, b);
            if (ok)
                return ok < 0 ? -1 : pos + (off_t)i;
        }
        pos += (off_t)(n > 3 ? n - 3 : n); /* a magic may straddle two chunks */
    }
    return size;
}

struct walk {
    int fd;
    off_t pos, size;
    struct rbuf b;
    int damaged;           /* damaged stretches met */
    int64_t damaged_bytes; /* and their bytes */
    off_t last_bad;        /* start of the last damaged stretch, -1 if none */
};

/* The next valid record at or after w->pos: 1 (r filled, w->pos past it),
 * 0 at the end, -1 on an I/O error. Damaged stretches are skipped and
 * counted; one that runs to the end of the file leaves w->last_bad at it. */
static int walk_next(struct walk *w, struct rec *r)
{
    if (w->pos >= w->size)
        return 0;
    int ok = read_frame(w->fd, w->pos, w->size, r, &w->b);
    if (ok < 0)
        return -1;
    if (!ok) {
        off_t next = resync(w->fd, w->pos + 1, w->size, r, &w->b);
        if (next < 0)
            return -1;
        w->damaged++;
        w->damaged_bytes += next - w->pos;
        w->last_bad = w->pos;
        w->pos = next;
        if (next >= w->size)
            return 0;
    }
    w->last_bad = -1;
    w->pos = r->next;
    return 1;
}

static void walk_init(struct walk *w, int fd, off_t from, off_t size)
{
    memset(w, 0, sizeof(*w));
    w->fd = fd;
    w->pos = from;
    w->size = size;
    w->last_bad = -1;
}

/* ---- opening, locking, rewriting --------------------------------------------- */

static int write_header(struct spool *sp)
{
    uint8_t h[SPOOL_HDR];
    hdr_pack(h, sp->first_live, sp->end, sp->gen);
    return full_pwrite(sp->fd, h, SPOOL_HDR, 0);
}

static void parent_dir(const char *path, char *dir, size_t len)
{
    snprintf(dir, len, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    else
        snprintf(dir, len, "%s", slash ? "/" : ".");
}

static void fsync_dir(const char *path)
{
    char dir[1100];
    parent_dir(path, dir, sizeof(dir));
    int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) {
        fsync(d);
        close(d);
    }
}

/* Opens `<spool>.tmp`, locked, with a fresh header of generation gen. */
static int tmp_open(struct track_client *c, char *tmp, size_t len, uint64_t gen,
                    struct track_err *err)
{
    uint8_t h[SPOOL_HDR];
    snprintf(tmp, len, "%s.tmp", c->spool_path);
    /* only the holder of the spool's lock writes this name, so what is
     * there is a crashed rewrite's leftover */
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0 || fchmod(fd, 0600) < 0) {
        cl_fail(err, TRACK_E_UNAVAILABLE, "cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    hdr_pack(h, SPOOL_HDR, SPOOL_HDR, gen);
    if (full_pwrite(fd, h, SPOOL_HDR, 0) < 0) {
        cl_fail(err, TRACK_E_UNAVAILABLE, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    return fd;
}

/* Puts the rewritten file (fd, locked, `used` bytes) in place of the spool. */
static int tmp_commit(struct track_client *c, struct spool *sp, int fd, const char *tmp, off_t used,
                      uint64_t gen, struct track_err *err)
{
    struct stat sb;
    uint8_t h[SPOOL_HDR];
    hdr_pack(h, SPOOL_HDR, (uint64_t)used, gen);
    if (full_pwrite(fd, h, SPOOL_HDR, 0) < 0 || fdatasync(fd) < 0 || fstat(fd, &sb) < 0 ||
        rename(tmp, c->spool_path) < 0) {
        cl_fail(err, TRACK_E_UNAVAILABLE, "cannot replace spool %s: %s", c->spool_path,
                strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    fsync_dir(c->spool_path);
    if (sp->fd >= 0)
        close(sp->fd);
    sp->fd = fd;
    sp->first_live = SPOOL_HDR;
    sp->end = (uint64_t)used;
    sp->gen = gen;
    sp->size = used;
    sp->ino = sb.st_ino;
    return 0;
}

/* The header does not check out: keep the file under another name, start a
 * new spool with every valid live record found in it. */
static int move_aside(struct track_client *c, struct spool *sp, struct cl_spool_note *note,
                      struct track_err *err)
{
    char tmp[1200], moved[1200];
    struct walk w;
    struct rec r;
    off_t used = SPOOL_HDR;
    int salvaged = 0, fd, rc = 0;

    fd = tmp_open(c, tmp, sizeof(tmp), (uint64_t)wire_now_ms(), err);
    if (fd < 0)
        return -1;
    walk_init(&w, sp->fd, 0, sp->size);
    while ((rc = walk_next(&w, &r)) == 1) {
        if (r.state == STATE_DONE || used + (r.next - r.off) > c->spool_max)
            continue;
        uint8_t h[REC_HDR];
        if (full_pread(sp->fd, h, REC_HDR, r.off) < 0 || full_pwrite(fd, h, REC_HDR, used) < 0 ||
            full_pwrite(fd, w.b.p, (size_t)r.uri_len + r.len, used + REC_HDR) < 0) {
            rc = -1;
            break;
        }
        used += r.next - r.off;
        salvaged++;
    }
    free(w.b.p);
    /* the old file stays reachable under its new name: a hard link, so the
     * spool's path never names nothing */
    for (int i = 0; rc == 0 && i < 100; i++) {
        snprintf(moved, sizeof(moved), "%s.damaged-%lld%s%.0d", c->spool_path,
                 (long long)wire_now_ms(), i ? "-" : "", i);
        if (link(c->spool_path, moved) == 0)
            break;
        if (errno != EEXIST || i == 99)
            rc = -1;
    }
    if (rc) {
        cl_fail(err, TRACK_E_UNAVAILABLE,
                "spool %s has a damaged header and cannot be moved aside: %s", c->spool_path,
                strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (tmp_commit(c, sp, fd, tmp, used, (uint64_t)wire_now_ms(), err) < 0)
        return -1;
    if (note) {
        snprintf(note->moved, sizeof(note->moved), "%s", moved);
        note->salvaged = salvaged;
    }
    return 0;
}

/* Opens and locks the spool (creating it when `create`), waiting for the
 * lock until the call's deadline. 0 with sp filled, 1 when there is no
 * spool (and !create), 2 when another process held the lock all that time
 * (err says so), or a negative code. */
static int spool_open(struct track_client *c, int create, struct spool *sp,
                      struct cl_spool_note *note, struct track_err *err)
{
    char dir[1100];
    struct stat sb, pb;
    uint8_t hdr[SPOOL_HDR];
    int64_t give_up = wire_mono_ms() + c->timeout_ms;
    if (c->deadline_ms && c->deadline_ms < give_up)
        give_up = c->deadline_ms;

    sp->fd = -1;
    parent_dir(c->spool_path, dir, sizeof(dir));
    if (create && paths_mkdirs(dir, 0700))
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot create spool directory %s: %s", dir,
                       strerror(errno));
    for (int tries = 0;; tries++) {
        int fd =
            open(c->spool_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
        if (fd < 0) {
            if (!create && errno == ENOENT)
                return 1;
            return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot open spool %s: %s", c->spool_path,
                           strerror(errno));
        }
        /* one try at least, then no longer than the call may take: a
         * delivering process lets go between slices of SLICE_MS */
        while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            if (errno != EWOULDBLOCK && errno != EINTR) {
                close(fd);
                return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot lock spool %s: %s", c->spool_path,
                               strerror(errno));
            }
            if (wire_mono_ms() >= give_up) {
                close(fd);
                cl_fail(err, TRACK_E_UNAVAILABLE,
                        "spool %s is held by another process for longer than this call's %d ms",
                        c->spool_path, c->timeout_ms);
                return 2;
            }
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        /* a rewrite renamed another file over the path while we waited */
        if (fstat(fd, &sb) < 0 || stat(c->spool_path, &pb) < 0 || sb.st_ino != pb.st_ino ||
            sb.st_dev != pb.st_dev) {
            close(fd);
            if (tries < 20)
                continue;
            return cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s keeps being replaced",
                           c->spool_path);
        }
        sp->fd = fd;
        break;
    }
    sp->size = sb.st_size;
    sp->ino = sb.st_ino;
    if ((sb.st_mode & 077) && sb.st_uid == getuid())
        fchmod(sp->fd, 0600);
    if (sp->size == 0) {
        if (!create) {
            close(sp->fd);
            sp->fd = -1;
            return 1;
        }
        sp->first_live = sp->end = SPOOL_HDR;
        sp->gen = (uint64_t)wire_now_ms();
        if (write_header(sp) < 0)
            goto io;
        sp->size = SPOOL_HDR;
        return 0;
    }
    if (sp->size < SPOOL_HDR || full_pread(sp->fd, hdr, SPOOL_HDR, 0) < 0 ||
        hdr_unpack(hdr, sp) < 0) {
        int rc = move_aside(c, sp, note, err);
        if (rc < 0) {
            close(sp->fd);
            sp->fd = -1;
            return err ? err->code : TRACK_E_UNAVAILABLE;
        }
        return 0;
    }
    if (sp->first_live < SPOOL_HDR || sp->first_live > (uint64_t)sp->size)
        sp->first_live = SPOOL_HDR;
    return 0;
io:
    cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path, strerror(errno));
    close(sp->fd);
    sp->fd = -1;
    return TRACK_E_UNAVAILABLE;
}

/* The file does not end where the last append did (a crash mid-append, a
 * lost header update, damage): find the end of the last valid record and
 * cut what follows, so the next record is not appended behind garbage. */
static int fix_tail(struct track_client *c, struct spool *sp, struct cl_spool_note *note,
                    struct track_err *err)
{
    struct walk w;
    struct rec r;
    int rc;

    /* from the first live record, not from the recorded end: bytes may have
     * moved, and a valid record straddling that end must not be cut */
    walk_init(&w, sp->fd, (off_t)sp->first_live, sp->size);
    while ((rc = walk_next(&w, &r)) == 1)
        ;
    free(w.b.p);
    if (rc < 0)
        return cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path, strerror(errno));
    if (w.last_bad >= 0) {
        if (ftruncate(sp->fd, w.last_bad) < 0)
            return cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path,
                           strerror(errno));
        if (note)
            note->cut_bytes += sp->size - w.last_bad;
        sp->size = w.last_bad;
    }
    sp->end = (uint64_t)sp->size;
    if (sp->first_live > sp->end)
        sp->first_live = sp->end;
    return 0;
}

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

    walk_init(&w, sp->fd, (off_t)sp->first_live, sp->size);
    while ((rc = walk_next(&w, &r)) == 1) {
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
    fd = tmp_open(c, tmp, sizeof(tmp), sp->gen + 1, err);
    if (fd < 0) {
        rc = err ? err->code : TRACK_E_UNAVAILABLE;
        goto out;
    }
    off_t used = SPOOL_HDR;
    for (size_t i = 0; i < n; i++) {
        if (lv[i].drop)
            continue;
        if (rbuf_fit(&w.b, (size_t)lv[i].len) < 0 ||
            full_pread(sp->fd, w.b.p, (size_t)lv[i].len, lv[i].off) < 0 ||
            full_pwrite(fd, w.b.p, (size_t)lv[i].len, used) < 0)
            goto io;
        used += lv[i].len;
    }
    if (frame) {
        if (full_pwrite(fd, frame, flen, used) < 0)
            goto io;
        used += (off_t)flen;
    }
    rc = tmp_commit(c, sp, fd, tmp, used, sp->gen + 1, err);
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
    uint8_t *frame = frame_new(c->server, req, len, kind, points, &flen);
    if (!frame)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    rc = spool_open(c, 1, &sp, note, err);
    if (rc) {
        free(frame);
        return rc < 0 ? rc : TRACK_E_UNAVAILABLE; /* the lock stayed held */
    }
    if ((off_t)sp.end != sp.size && (rc = fix_tail(c, &sp, note, err)))
        goto out;
    if (sp.size + (int64_t)flen > c->spool_max) {
        rc = rewrite(c, &sp, frame, flen, note, err);
        goto out;
    }
    if (full_pwrite(sp.fd, frame, flen, sp.size) < 0 || fdatasync(sp.fd) < 0) {
        rc = cl_fail(err, TRACK_E_UNAVAILABLE, "cannot write spool %s: %s", c->spool_path,
                     strerror(errno));
        goto out;
    }
    sp.end = (uint64_t)(sp.size + (off_t)flen);
    /* a lost header update costs a scan of the tail next time, nothing more */
    write_header(&sp);
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
           code == TRACK_E_PERMISSION_DENIED;
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
    if (permanent(rc) && reject(d, r, t->uri, &e) == 0) {
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

static int mark_done(struct spool *sp, off_t off)
{
    uint8_t s[4];
    put_u32(s, STATE_DONE);
    return full_pwrite(sp->fd, s, 4, off + 4);
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
    rc = spool_open(c, 0, &sp, &note, err);
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
    walk_init(&w, sp.fd, d->pos, sp.size);
    for (;;) {
        if (wire_mono_ms() >= slice) {
            rc = 1;
            break;
        }
        int got = walk_next(&w, &r);
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
            if (mark_done(&sp, r.off) < 0) {
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
            write_header(&sp);
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
            write_header(&sp);
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

/* ---- reading without delivering ---------------------------------------------- */

int cl_spool_walk(struct track_client *c,
                  int (*fn)(void *arg, const char *uri, const uint8_t *req, size_t len), void *arg,
                  struct track_sync_report *r, struct track_err *err)
{
    struct spool sp;
    struct walk w;
    struct rec rec;
    char uri[URI_MAX + 1];
    struct cl_spool_note note = {0};
    int rc = spool_open(c, 0, &sp, &note, err), got;

    if (note.moved[0] && r) {
        snprintf(r->moved, sizeof(r->moved), "%s", note.moved);
        r->salvaged = note.salvaged;
    } else if (note.moved[0]) {
        fprintf(stderr,
                "track: warning: spool %s had a damaged header: moved it to %s, kept the %d "
                "valid records found in it\n",
                c->spool_path, note.moved, note.salvaged);
    }
    if (rc == 1)
        return 0;
    if (rc)
        return rc < 0 ? rc : TRACK_E_UNAVAILABLE;
    walk_init(&w, sp.fd, (off_t)sp.first_live, sp.size);
    while ((got = walk_next(&w, &rec)) == 1) {
        if (rec.state == STATE_DONE)
            continue;
        memcpy(uri, rec.uri, rec.uri_len);
        uri[rec.uri_len] = '\0';
        if (fn && fn(arg, uri, rec.payload, rec.len))
            break;
    }
    if (r) {
        r->damaged += w.damaged;
        r->damaged_bytes += w.damaged_bytes;
    }
    if (got < 0)
        rc = cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path, strerror(errno));
    free(w.b.p);
    close(sp.fd);
    return rc;
}

struct stat_acc {
    int64_t requests, bytes;
};

static int stat_one(void *arg, const char *uri, const uint8_t *req, size_t len)
{
    struct stat_acc *a = arg;
    (void)req;
    a->requests++;
    a->bytes += (int64_t)(REC_HDR + strlen(uri) + len);
    return 0;
}

int cl_spool_stat(struct track_client *c, int64_t *requests, int64_t *bytes, struct track_err *err)
{
    struct stat_acc a = {0, 0};
    int rc = cl_spool_walk(c, stat_one, &a, NULL, err);
    *requests = a.requests;
    *bytes = a.bytes;
    return rc;
}
