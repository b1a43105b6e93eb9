/*
 * blob_internal.h: what blob.c (the store) and blob_upload.c (uploads) share
 * and nothing outside them sees: the handle (struct blob_store) with its
 * upload slots, pins and gc set, and the helpers blob.c defines for both
 * (prefix blob_i_). The public contract is blob.h.
 */
#ifndef TRACK_BLOB_INTERNAL_H
#define TRACK_BLOB_INTERNAL_H

#include <pthread.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "blob.h"

#define HASH_BUF      (64 * 1024)
#define TOUCHED_SLOTS (2 * BLOB_TOUCHED_MAX) /* a power of two */
#define TMP_NAME_MAX  (BLOB_UPLOAD_ID_HEX + 1 + 20 + 1 + BLOB_DIGEST_HEX + 1)

#define SIZE_BITS (1u << 20) /* the filter of stored sizes: 128 KiB */

enum { SLOT_FREE = 0, SLOT_IDLE, SLOT_BUSY };

#define UPLOAD_RANGES 16 /* pieces written ahead of the hash, and writes at once */

/* Bytes [off, end) of an upload. */
struct range {
    uint64_t off, end;
};

/* One upload in flight. `have` bytes from 0 are written and hashed, in
 * order; writes may land ahead of it within BLOB_WINDOW_BYTES (blob.h,
 * Uploads): `done` lists those written and not yet hashed (sorted,
 * disjoint), `busy` those being written by some thread right now. One
 * thread at a time (`hashing`) feeds the hash from `have` on, covering
 * [have, hash_end). A slot is exclusive (SLOT_BUSY) for status loads,
 * commit, abort and cleanup, which wait for no writer and no hasher. */
struct upload {
    crypto_generichash_state h; /* valid once fd >= 0 */
    int state;
    int fd; /* -1 until loaded (after a restart: on first use) */
    char id[BLOB_UPLOAD_ID_HEX + 1];
    char name[TMP_NAME_MAX];
    uint64_t size;
    uint64_t have;
    uint8_t digest[BLOB_DIGEST_BYTES];
    int writers;   /* writes running outside the mutex */
    int hashing;   /* a thread feeds the hash */
    int failed;    /* a write or the hash failed: dropped when the last one leaves */
    int streaming; /* begun without a digest (all-zero `digest`, no pin until the seal) */
    uint64_t hash_end;
    struct range done[UPLOAD_RANGES];
    int n_done;
    struct range busy[UPLOAD_RANGES];
    int n_busy;
};

struct pin {
    uint8_t digest[BLOB_DIGEST_BYTES];
    int count; /* 0: a free entry */
};

struct touched {
    uint8_t used;
    uint8_t digest[BLOB_DIGEST_BYTES];
};

struct blob_store {
    /* first: crypto_generichash_state wants 64-byte alignment */
    struct upload up[BLOB_UPLOADS_MAX];
    pthread_mutex_t mu;
    int dfd; /* blobs/ */
    int tfd; /* blobs/tmp/ */
    struct pin pins[BLOB_PINS_MAX];
    int pins_hi; /* entries at or above this index are free */
    int gc_active;
    int gc_overflow; /* more digests touched than the set holds: keep everything */
    int n_touched;
    struct touched touched[TOUCHED_SLOTS];
    int sync_data; /* 1: seals fsync the file and the directories (durability full) */
    uint64_t sizes[SIZE_BITS / 64]; /* a bit per hashed size of a blob stored (blob_i_size_add) */
};

/* ---- blob.c: errors ------------------------------------------------------------ */

/* Fills `err` (which may be NULL) with `code` and the message; returns code. */
__attribute__((format(printf, 3, 4))) int blob_i_fail(struct store_err *err, int code,
                                                      const char *fmt, ...);
/* Clears `err` (which may be NULL). */
void blob_i_err_clear(struct store_err *err);
/* An errno from a file call: ENOSPC and EDQUOT say the disk is full (FULL),
 * ENOENT is NOT_FOUND, anything else IO; `what` names the file or step. */
int blob_i_io_fail(struct store_err *err, int e, const char *what);

/* ---- blob.c: names ------------------------------------------------------------- */

/* Writes the 2n lowercase hex characters of b[0..n) and a NUL into `out`. */
void blob_i_hex_encode(const uint8_t *b, size_t n, char *out);
/* 0 when s[0..2n) is lowercase hex (decoded into b, which may be NULL). */
int blob_i_hex_decode(const char *s, size_t n, uint8_t *b);
/* "ab/cdef..." for a blob, relative to blobs/. */
void blob_i_rel(const uint8_t digest[BLOB_DIGEST_BYTES], char rel[BLOB_DIGEST_HEX + 2]);
/* A file's mtime in milliseconds since the epoch. */
int64_t blob_i_mtime_ms_of(const struct stat *st);
/* fstatat of the blob's file: 1 found (a regular file), 0 missing, or a code. */
int blob_i_stat(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES], struct stat *st,
                struct store_err *err);

/* ---- blob.c: pins (called with bs->mu held) -------------------------------------- */

/* Takes one pin on `d` (and records it in a running gc epoch); STORE_E_FULL
 * when BLOB_PINS_MAX digests are pinned already. */
int blob_i_pin_take(struct blob_store *bs, const uint8_t d[BLOB_DIGEST_BYTES],
                    struct store_err *err);
/* Releases one pin on `d`; STORE_E_NOT_FOUND when it holds none. */
int blob_i_pin_release(struct blob_store *bs, const uint8_t d[BLOB_DIGEST_BYTES]);

/* ---- blob.c: the filter of stored sizes (called with bs->mu held) ----------------- */

/* Records that a blob of `size` bytes is stored. */
void blob_i_size_add(struct blob_store *bs, uint64_t size);

/* ---- blob_upload.c: resume ------------------------------------------------------- */

/* Finds the uploads of a previous run in blobs/tmp/ and gives each a slot
 * (at blob_store_open, before the handle is shared). */
int blob_i_tmp_scan(struct blob_store *bs, struct store_err *err);

#endif
