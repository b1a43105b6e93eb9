/*
 * spool.h: what the spool's two halves share (not installed): the file
 * format (spool_file.c: frames, checksums, damage, the lock) and the policy
 * over it (spool.c: what a full spool drops, delivery, the sync report).
 * What the rest of libtrack calls is in internal.h.
 */
#ifndef TRACK_CLIENT_SPOOL_H
#define TRACK_CLIENT_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

#define SPOOL_MAGIC   "TRKSPOOL"
#define SPOOL_VERSION 2
#define SPOOL_HDR     64
#define REC_MAGIC     "TRKR"
#define REC_HDR       40
#define STATE_LIVE    0u
#define STATE_DONE    0x454e4f44u /* "DONE" */
#define URI_MAX       1099

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

struct walk {
    int fd;
    off_t pos, size;
    struct rbuf b;
    int damaged;           /* damaged stretches met */
    int64_t damaged_bytes; /* and their bytes */
    off_t last_bad;        /* start of the last damaged stretch, -1 if none */
};

/* pread/pwrite of exactly n bytes at off, across EINTR and short counts:
 * 0, or -1 on an error (errno) or the end of the file. */
int cl_spool_full_pread(int fd, void *buf, size_t n, off_t off);
int cl_spool_full_pwrite(int fd, const void *buf, size_t n, off_t off);
/* Grows b to hold at least n bytes: 0, or -1 out of memory (b unchanged). */
int cl_spool_rbuf_fit(struct rbuf *b, size_t n);
/* Builds a whole frame in a malloc'd buffer (caller frees); NULL on OOM. */
uint8_t *cl_spool_frame_new(const char *uri, const uint8_t *payload, size_t len, uint32_t kind,
                            uint32_t points, size_t *total);

/* Starts a walk of fd's records from `from` to size (free w->b.p after). */
void cl_spool_walk_init(struct walk *w, int fd, off_t from, off_t size);
/* The next valid record at or after w->pos: 1 (r filled, w->pos past it),
 * 0 at the end, -1 on an I/O error. Damaged stretches are skipped and
 * counted; one that runs to the end of the file leaves w->last_bad at it. */
int cl_spool_walk_next(struct walk *w, struct rec *r);

/* Writes sp's header (first live, end, generation) at offset 0: 0 or -1. */
int cl_spool_write_header(struct spool *sp);
/* Marks the record at off DONE (its state, written in place): 0 or -1. */
int cl_spool_mark_done(struct spool *sp, off_t off);
/* Opens `<spool>.tmp`, locked, with a fresh header of generation gen: its
 * fd, or -1 (err filled). */
int cl_spool_tmp_open(struct track_client *c, char *tmp, size_t len, uint64_t gen,
                      struct track_err *err);
/* Puts the rewritten file (fd, locked, `used` bytes) in place of the spool
 * and makes sp describe it: 0, or -1 (err filled, fd closed, tmp removed). */
int cl_spool_tmp_commit(struct track_client *c, struct spool *sp, int fd, const char *tmp,
                        off_t used, uint64_t gen, struct track_err *err);

/* Opens and locks the spool (creating it when `create`), waiting for the
 * lock until the call's deadline. 0 with sp filled, 1 when there is no
 * spool (and !create), 2 when another process held the lock all that time
 * (err says so), or a negative code. */
int cl_spool_open(struct track_client *c, int create, struct spool *sp, struct cl_spool_note *note,
                  struct track_err *err);
/* The file does not end where the last append did (a crash mid-append, a
 * lost header update, damage): find the end of the last valid record and
 * cut what follows, so the next record is not appended behind garbage. */
int cl_spool_fix_tail(struct track_client *c, struct spool *sp, struct cl_spool_note *note,
                      struct track_err *err);

#endif
