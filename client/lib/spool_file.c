/*
 * spool_file.c: the spool's file format, the bytes on disk and nothing of
 * what they mean to a server (spool.c decides what to keep, drop and send).
 * It owns the header, the record frames and their checksums, reading with
 * resynchronisation past damage, the cut of a torn tail, writing a record,
 * the rewrite's new file, moving a damaged spool aside, and the lock.
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
 * Rewrites (and the move of a bad header) build a new file beside the spool,
 * lock it, and rename it over the spool; a process that waited on the old
 * file's lock sees that the path names another file and opens it again.
 *
 * Every wait for the lock ends at the call's deadline (c->deadline_ms), the
 * same one its round trips use, so one libtrack call never takes longer than
 * its timeout however many times it touches the spool.
 */
#include "internal.h"
#include "spool.h"

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

int cl_spool_full_pread(int fd, void *buf, size_t n, off_t off)
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

int cl_spool_full_pwrite(int fd, const void *buf, size_t n, off_t off)
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

int cl_spool_rbuf_fit(struct rbuf *b, size_t n)
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

uint8_t *cl_spool_frame_new(const char *uri, const uint8_t *payload, size_t len, uint32_t kind,
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
    if (cl_spool_full_pread(fd, h, REC_HDR, off) < 0)
        return -1;
    uint32_t ul = get_u32(h + 8), len = get_u32(h + 12), kind = get_u32(h + 16);
    if (memcmp(h, REC_MAGIC, 4) != 0 || ul == 0 || ul > URI_MAX || len == 0 ||
        len > LIMIT_FRAME_BYTES || kind < KIND_RUN_START || kind > KIND_OTHER ||
        off + REC_HDR + (off_t)ul + (off_t)len > size)
        return 0;
    if (cl_spool_rbuf_fit(b, (size_t)ul + len) < 0)
        return -1;
    if (cl_spool_full_pread(fd, b->p, (size_t)ul + len, off + REC_HDR) < 0)
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
        if (cl_spool_full_pread(fd, chunk, n, pos) < 0)
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

int cl_spool_walk_next(struct walk *w, struct rec *r)
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

void cl_spool_walk_init(struct walk *w, int fd, off_t from, off_t size)
{
    memset(w, 0, sizeof(*w));
    w->fd = fd;
    w->pos = from;
    w->size = size;
    w->last_bad = -1;
}

/* ---- opening, locking, rewriting --------------------------------------------- */

int cl_spool_write_header(struct spool *sp)
{
    uint8_t h[SPOOL_HDR];
    hdr_pack(h, sp->first_live, sp->end, sp->gen);
    return cl_spool_full_pwrite(sp->fd, h, SPOOL_HDR, 0);
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

int cl_spool_tmp_open(struct track_client *c, char *tmp, size_t len, uint64_t gen,
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
    if (cl_spool_full_pwrite(fd, h, SPOOL_HDR, 0) < 0) {
        cl_fail(err, TRACK_E_UNAVAILABLE, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    return fd;
}

int cl_spool_tmp_commit(struct track_client *c, struct spool *sp, int fd, const char *tmp,
                        off_t used, uint64_t gen, struct track_err *err)
{
    struct stat sb;
    uint8_t h[SPOOL_HDR];
    hdr_pack(h, SPOOL_HDR, (uint64_t)used, gen);
    if (cl_spool_full_pwrite(fd, h, SPOOL_HDR, 0) < 0 || fdatasync(fd) < 0 || fstat(fd, &sb) < 0 ||
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

    fd = cl_spool_tmp_open(c, tmp, sizeof(tmp), (uint64_t)wire_now_ms(), err);
    if (fd < 0)
        return -1;
    cl_spool_walk_init(&w, sp->fd, 0, sp->size);
    while ((rc = cl_spool_walk_next(&w, &r)) == 1) {
        if (r.state == STATE_DONE || used + (r.next - r.off) > c->spool_max)
            continue;
        uint8_t h[REC_HDR];
        if (cl_spool_full_pread(sp->fd, h, REC_HDR, r.off) < 0 ||
            cl_spool_full_pwrite(fd, h, REC_HDR, used) < 0 ||
            cl_spool_full_pwrite(fd, w.b.p, (size_t)r.uri_len + r.len, used + REC_HDR) < 0) {
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
    if (cl_spool_tmp_commit(c, sp, fd, tmp, used, (uint64_t)wire_now_ms(), err) < 0)
        return -1;
    if (note) {
        snprintf(note->moved, sizeof(note->moved), "%s", moved);
        note->salvaged = salvaged;
    }
    return 0;
}

int cl_spool_open(struct track_client *c, int create, struct spool *sp, struct cl_spool_note *note,
                  struct track_err *err)
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
        if (cl_spool_write_header(sp) < 0)
            goto io;
        sp->size = SPOOL_HDR;
        return 0;
    }
    if (sp->size < SPOOL_HDR || cl_spool_full_pread(sp->fd, hdr, SPOOL_HDR, 0) < 0 ||
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

int cl_spool_fix_tail(struct track_client *c, struct spool *sp, struct cl_spool_note *note,
                      struct track_err *err)
{
    struct walk w;
    struct rec r;
    int rc;

    /* from the first live record, not from the recorded end: bytes may have
     * moved, and a valid record straddling that end must not be cut */
    cl_spool_walk_init(&w, sp->fd, (off_t)sp->first_live, sp->size);
    while ((rc = cl_spool_walk_next(&w, &r)) == 1)
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

int cl_spool_mark_done(struct spool *sp, off_t off)
{
    uint8_t s[4];
    put_u32(s, STATE_DONE);
    return cl_spool_full_pwrite(sp->fd, s, 4, off + 4);
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
    int rc = cl_spool_open(c, 0, &sp, &note, err), got;

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
    cl_spool_walk_init(&w, sp.fd, (off_t)sp.first_live, sp.size);
    while ((got = cl_spool_walk_next(&w, &rec)) == 1) {
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
