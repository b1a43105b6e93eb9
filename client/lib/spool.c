/*
 * spool.c: the spool, where writes go while trackd cannot be reached.
 *
 * One file per user (default $XDG_STATE_HOME/track/spool-<uid>.bin), shared
 * by every process of that user under flock(2). Layout:
 *
 *   header  "TRKSPOOL" | u32 version | u32 0 | u64 delivered offset | u64 0
 *   record  u32 length | 16-byte BLAKE2b of the payload | payload
 *
 * A payload is a packed track.v1.Request with its request id, so delivering
 * it twice (a crash between the daemon's reply and the offset update) is
 * harmless: the daemon answers a repeated id without applying it again.
 * Records are appended with one write(2) and fdatasync'd; a torn record at
 * the tail (a crash mid-append) fails its digest and is cut off.
 *
 * The spool is bounded (spool_max_bytes): when a new record does not fit,
 * the oldest undelivered records are dropped first and the caller is told
 * how many, so a long outage costs the oldest points, never the process.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "track_limits.h"
#include "paths.h"

#define SPOOL_MAGIC   "TRKSPOOL"
#define SPOOL_VERSION 1
#define SPOOL_HDR     32
#define REC_HDR       20
#define SLICE_MS      200 /* longest hold of the lock while delivering */

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

/* Opens and locks the spool; writes the header of a new one. *delivered is
 * the offset of the first undelivered record. Returns the fd or -1. */
static int spool_open(struct track_client *c, int create, uint64_t *delivered, off_t *size,
                      struct track_err *err)
{
    char dir[1100];
    struct stat sb;
    uint8_t hdr[SPOOL_HDR];
    int fd;

    snprintf(dir, sizeof(dir), "%s", c->spool_path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (create && paths_mkdirs(dir, 0700)) {
            cl_fail(err, TRACK_E_UNAVAILABLE, "cannot create spool directory %s: %s", dir,
                    strerror(errno));
            return -1;
        }
    }
    fd = open(c->spool_path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd < 0) {
        if (!create && errno == ENOENT)
            return -2;
        cl_fail(err, TRACK_E_UNAVAILABLE, "cannot open spool %s: %s", c->spool_path,
                strerror(errno));
        return -1;
    }
    /* wait for the lock no longer than a call may take: a delivering
     * process lets go between slices of SLICE_MS */
    int64_t give_up = wire_mono_ms() + c->timeout_ms;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            goto io;
        if (wire_mono_ms() >= give_up) {
            cl_fail(err, TRACK_E_UNAVAILABLE,
                    "spool %s is held by another process for longer than %d ms", c->spool_path,
                    c->timeout_ms);
            close(fd);
            return -1;
        }
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (fstat(fd, &sb) < 0)
        goto io;
    if (sb.st_size < SPOOL_HDR) {
        memset(hdr, 0, sizeof(hdr));
        memcpy(hdr, SPOOL_MAGIC, 8);
        put_u32(hdr + 8, SPOOL_VERSION);
        put_u64(hdr + 16, SPOOL_HDR);
        if (ftruncate(fd, 0) < 0 || full_pwrite(fd, hdr, sizeof(hdr), 0) < 0)
            goto io;
        *delivered = SPOOL_HDR;
        *size = SPOOL_HDR;
        return fd;
    }
    if (full_pread(fd, hdr, sizeof(hdr), 0) < 0)
        goto io;
    if (memcmp(hdr, SPOOL_MAGIC, 8) != 0 || get_u32(hdr + 8) != SPOOL_VERSION) {
        cl_fail(err, TRACK_E_INTERNAL, "%s is not a track spool file (version %u)", c->spool_path,
                get_u32(hdr + 8));
        close(fd);
        return -1;
    }
    *delivered = get_u64(hdr + 16);
    *size = sb.st_size;
    if (*delivered < SPOOL_HDR || *delivered > (uint64_t)sb.st_size)
        *delivered = SPOOL_HDR;
    return fd;
io:
    cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path, strerror(errno));
    close(fd);
    return -1;
}

/* Makes room for `need` more bytes within c->spool_max by dropping the
 * oldest undelivered records, then moves what is left to the front of the
 * file (in place, under the lock). *dropped counts the records dropped. */
static int make_room(struct track_client *c, int fd, uint64_t *delivered, off_t *size, size_t need,
                     int *dropped, struct track_err *err)
{
    uint8_t rh[REC_HDR], hdr8[8], buf[1 << 16];
    uint64_t off = *delivered;

    while ((int64_t)(*size - (off_t)off) + SPOOL_HDR + (int64_t)need > c->spool_max &&
           (off_t)off < *size) {
        if (full_pread(fd, rh, REC_HDR, (off_t)off) < 0)
            break;
        off += REC_HDR + get_u32(rh);
        (*dropped)++;
    }
    if ((off_t)off > *size)
        off = (uint64_t)*size;
    /* move the live records [off, size) to the front */
    off_t live = *size - (off_t)off, moved = 0;
    while (moved < live) {
        size_t n = (size_t)(live - moved) < sizeof(buf) ? (size_t)(live - moved) : sizeof(buf);
        if (full_pread(fd, buf, n, (off_t)off + moved) < 0 ||
            full_pwrite(fd, buf, n, SPOOL_HDR + moved) < 0)
            return cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path,
                           strerror(errno));
        moved += (off_t)n;
    }
    put_u64(hdr8, SPOOL_HDR);
    if (ftruncate(fd, SPOOL_HDR + live) < 0 || full_pwrite(fd, hdr8, 8, 16) < 0 ||
        fdatasync(fd) < 0)
        return cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path, strerror(errno));
    *delivered = SPOOL_HDR;
    *size = SPOOL_HDR + live;
    return 0;
}

int cl_spool_append(struct track_client *c, const uint8_t *req, size_t len, int *dropped,
                    struct track_err *err)
{
    uint64_t delivered;
    off_t size;
    int fd, rc = 0;

    *dropped = 0;
    if ((int64_t)(len + REC_HDR + SPOOL_HDR) > c->spool_max)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED,
                       "request of %zu bytes is larger than the whole spool (%lld bytes)", len,
                       (long long)c->spool_max);
    fd = spool_open(c, 1, &delivered, &size, err);
    if (fd < 0)
        return err ? err->code : TRACK_E_UNAVAILABLE;
    if ((int64_t)size + REC_HDR + (int64_t)len > c->spool_max) {
        rc = make_room(c, fd, &delivered, &size, REC_HDR + len, dropped, err);
        if (rc)
            goto out;
    }
    uint8_t *rec = malloc(REC_HDR + len);
    if (!rec) {
        rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    put_u32(rec, (uint32_t)len);
    crypto_generichash(rec + 4, 16, req, len, NULL, 0);
    memcpy(rec + REC_HDR, req, len);
    if (full_pwrite(fd, rec, REC_HDR + len, size) < 0 || fdatasync(fd) < 0)
        rc = cl_fail(err, TRACK_E_UNAVAILABLE, "cannot write spool %s: %s", c->spool_path,
                     strerror(errno));
    free(rec);
out:
    close(fd);
    return rc;
}

/* Delivers records under the lock until the spool is empty (0), `slice`
 * passes with records left (1), or an error. Round trips are bounded by
 * `deadline`, the whole delivery's. */
static int deliver_slice(struct track_client *c, int64_t slice, int64_t deadline, int *sent,
                         struct track_err *err)
{
    uint64_t off;
    off_t size;
    int64_t saved_deadline = c->deadline_ms;
    uint8_t *buf = NULL, rh[REC_HDR], digest[16], hdr8[8];
    size_t cap = 0;
    int fd, rc = 0;

    fd = spool_open(c, 0, &off, &size, err);
    if (fd == -2)
        return 0;
    if (fd < 0)
        return err ? err->code : TRACK_E_UNAVAILABLE;
    while ((off_t)off < size) {
        if (wire_mono_ms() >= slice) {
            rc = 1; /* more next time */
            break;
        }
        uint32_t len;
        if ((off_t)(off + REC_HDR) > size || full_pread(fd, rh, REC_HDR, (off_t)off) < 0 ||
            (len = get_u32(rh)) > LIMIT_FRAME_BYTES || (off_t)(off + REC_HDR + len) > size) {
            size = (off_t)off; /* torn tail: cut it off */
            break;
        }
        if (len > cap) {
            uint8_t *nb = realloc(buf, len);
            if (!nb) {
                rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
                break;
            }
            buf = nb;
            cap = len;
        }
        if (full_pread(fd, buf, len, (off_t)(off + REC_HDR)) < 0) {
            size = (off_t)off;
            break;
        }
        crypto_generichash(digest, 16, buf, len, NULL, 0);
        if (sodium_memcmp(digest, rh + 4, 16) != 0) {
            size = (off_t)off;
            break;
        }
        Track__V1__Response *rs = NULL;
        struct track_err e2 = {0};
        if (!c->deadline_ms || c->deadline_ms > deadline)
            c->deadline_ms = deadline;
        rc = cl_roundtrip(c, buf, len, &rs, &e2);
        c->deadline_ms = saved_deadline;
        if (rc) {
            if (err)
                *err = e2;
            break;
        }
        /* a request the daemon refuses (say, a param conflict) is dropped:
         * sending it again would be refused again */
        track__v1__response__free_unpacked(rs, NULL);
        off += REC_HDR + len;
        put_u64(hdr8, off);
        if (full_pwrite(fd, hdr8, 8, 16) < 0) {
            rc = cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path, strerror(errno));
            break;
        }
        if (sent)
            (*sent)++;
    }
    if (!rc && (off_t)off >= size) {
        /* all delivered: start over with an empty spool */
        put_u64(hdr8, SPOOL_HDR);
        if (ftruncate(fd, SPOOL_HDR) < 0 || full_pwrite(fd, hdr8, 8, 16) < 0)
            rc = cl_fail(err, TRACK_E_UNAVAILABLE, "spool %s: %s", c->spool_path, strerror(errno));
    }
    free(buf);
    close(fd);
    return rc;
}

int cl_spool_deliver(struct track_client *c, int budget_ms, int *sent, struct track_err *err)
{
    int64_t deadline = wire_mono_ms() + budget_ms;
    int rc;

    if (sent)
        *sent = 0;
    /* in slices, letting go of the lock between them, so that a long
     * delivery (track sync) never holds up another process's write for
     * longer than a slice */
    for (;;) {
        int64_t now = wire_mono_ms(), slice = now + SLICE_MS;
        if (now >= deadline)
            return 1;
        rc = deliver_slice(c, slice < deadline ? slice : deadline, deadline, sent, err);
        if (rc != 1)
            return rc;
    }
}

int cl_spool_stat(struct track_client *c, int64_t *requests, int64_t *bytes, struct track_err *err)
{
    uint64_t off;
    off_t size;
    uint8_t rh[REC_HDR];
    int fd = spool_open(c, 0, &off, &size, err);

    *requests = 0;
    *bytes = 0;
    if (fd == -2)
        return 0;
    if (fd < 0)
        return err ? err->code : TRACK_E_UNAVAILABLE;
    *bytes = (int64_t)size - (int64_t)off;
    while ((off_t)(off + REC_HDR) <= size && full_pread(fd, rh, REC_HDR, (off_t)off) == 0) {
        off += REC_HDR + get_u32(rh);
        if ((off_t)off > size)
            break;
        (*requests)++;
    }
    close(fd);
    return 0;
}
