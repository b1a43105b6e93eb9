/*
 * blob.h: the content-addressed blob store. Files (artifacts, model weights)
 * are kept once each under their BLAKE2b-256 digest (libsodium
 * crypto_generichash, 32 bytes), immutable once in place. This module owns the
 * files under `<root>/blobs/` and nothing else: which runs or model versions
 * point at a blob lives in the SQLite store, written by others; what is live
 * is decided by the caller (gc), this module only enforces the race rule
 * below. It knows no SQLite, no protobuf, no sockets, and never logs: every
 * function returns 0 or a negative STORE_E_* code (store.h) with a message
 * naming the field or limit in a `struct store_err` (which may be NULL).
 *
 * Layout under the root (the daemon's data directory):
 *
 *   blobs/                    0700
 *   blobs/ab/                 0700, the first 2 hex characters of a digest
 *   blobs/ab/cdef...          0600, the other 62: a complete blob (synced: see Uploads)
 *   blobs/tmp/                0700, uploads in flight
 *   blobs/tmp/ID-SIZE-DIGEST  0600, the bytes received so far, in order
 *
 * Modes are set explicitly (fchmod, chmod) whatever the umask. ID is 32
 * lowercase hex (16 random bytes), SIZE the announced size in decimal,
 * DIGEST the announced digest in hex. The name is the upload's whole record:
 * it is created with the file (O_CREAT|O_EXCL|O_NOFOLLOW), so there is no
 * sidecar to get out of step with the data.
 *
 * Uploads. blob_upload_begin announces (size, digest). A digest already stored
 * answers exists=1 and no upload (dedup). Otherwise a tmp file is created and
 * written at offsets: a write may start anywhere from the bytes received in
 * order so far (`have`) to BLOB_WINDOW_BYTES past them, so several writes of
 * one upload run at once (pwrite at their offsets, outside the mutex) and may
 * finish in any order. The hash is fed strictly in order: whichever write
 * extends the in-order prefix feeds it (from its own buffer, and the pieces
 * that arrived ahead of it read back from the file), one thread at a time;
 * the hash state lives in memory, one slot per upload, about 1 KiB, and
 * nothing buffers a file. A write below `have`, past the window, past the
 * announced size, or over bytes another thread is writing or hashing is
 * refused. blob_upload_commit
 * checks size and digest (a mismatch removes the tmp file: nothing is kept)
 * and renames the file into place; with the store's sync on
 * (blob_store_set_sync: trackd's --durability full) it fsyncs the file
 * before and the directories after. A blob is thus visible only complete,
 * and synced when sync is on; with sync off (durability normal) a crash of
 * the process loses nothing (the bytes are in the page cache), a power loss
 * may garble a blob, which blob_verify then reports.
 *
 * Streaming uploads. blob_upload_begin_stream announces a size and no
 * digest: the tmp file is named with the all-zero digest, nothing is pinned,
 * and the seal takes the digest the bytes hash to (pinning it then). When a
 * blob of that digest is stored already, the tmp file is dropped and the
 * stored blob is the answer (dedup at the end instead of at the begin).
 * blob_upload_find never finds a streaming upload (it has no digest to be
 * found by): only its id resumes it, from blob_upload_status. A caller
 * decides whether to stream with blob_size_seen, a filter of the sizes of
 * the blobs stored (filled at open, added to at each seal; never cleared,
 * so it may say "seen" for a size no blob has any more, never the reverse
 * for a blob this handle has seen).
 *
 * Resume. After a client drop, blob_upload_status says how many bytes arrived;
 * the client continues from there. After a daemon restart, blob_store_open
 * finds the tmp files again from their names, and the first status or write
 * on one rehashes its bytes once, up to the file's first hole (SEEK_HOLE):
 * pieces written ahead of a gap are dropped and sent again. The tmp file's
 * creation is not fsynced: a
 * power loss may lose an upload in flight (the client then starts again), and
 * bytes that a power loss garbled are caught by the digest check at commit.
 *
 * Bounds: at most BLOB_UPLOADS_MAX uploads in flight (tmp files known to the
 * store, resumable ones included; one more begin answers STORE_E_FULL) and at
 * most BLOB_WRITE_MAX bytes per write. Tmp files found at open beyond the
 * limit, or with names not of the form above, are not resumable;
 * blob_tmp_cleanup removes them with the other abandoned ones once old enough.
 *
 * Errors map onto the protocol's codes as store codes do (srv_code_from_store):
 * STORE_E_INVALID (INVALID_ARGUMENT: bad digest or upload id hex, an offset
 * that is not the next byte, a write past the announced size, a size or digest
 * mismatch at commit), STORE_E_NOT_FOUND (no such blob or upload),
 * STORE_E_FULL (RESOURCE_EXHAUSTED: ENOSPC or EDQUOT, the message says the disk
 * is full and the upload's tmp file is removed; also the in-flight and pin
 * limits), STORE_E_BUSY (the same upload used by two threads at once, or a
 * second gc epoch), STORE_E_CORRUPT (blob_verify: the bytes do not hash to
 * their name), STORE_E_IO (any other I/O error, INTERNAL on the wire).
 *
 * GC and the race rule. The caller marks what is live from its database and
 * removes the rest with blob_remove. The danger is a reference made while gc
 * runs: an upload committed (or a dedup begin answered) after gc read the
 * database, whose (run, path) row is committed just after. Two mechanisms
 * close it:
 *
 *  - Pins. blob_upload_begin pins the announced digest, for dedup (exists=1)
 *    and for an upload alike (a streaming upload: its digest, at its seal,
 *    before it looks for a blob of that digest). The pin lasts through the upload; a failed or
 *    aborted upload drops it, a successful commit hands it to the caller, who
 *    calls blob_unpin once its reference row is durable (or it gave up).
 *    blob_pin takes an extra one (e.g. while a download streams). A pinned
 *    blob is never removed. Tmp files found at open are pinned likewise.
 *
 *  - The gc epoch. gc calls blob_gc_begin BEFORE it reads the database, then
 *    blob_remove for each unreferenced blob, then blob_gc_end. Every digest
 *    pinned at blob_gc_begin or at any moment after it, until blob_gc_end,
 *    is kept by blob_remove (answer 1), even if unpinned meanwhile. So a
 *    reference committed after gc's database read always comes from a pin
 *    taken after blob_gc_begin or held across it, and its blob survives.
 *    The set of such digests is bounded (BLOB_TOUCHED_MAX); beyond it the
 *    epoch keeps every blob (removal is only ever skipped, never forced).
 *
 * A grace period on top (mtime older than N days) is the caller's business:
 * blob_each reports each blob's mtime.
 *
 * Threads: a `struct blob_store` may be used by several threads at once; one
 * mutex guards its tables, file I/O runs outside it except for the existence
 * check in begin and the unlink in blob_remove, which must not interleave.
 * One upload is used by one thread at a time (else STORE_E_BUSY).
 */
#ifndef TRACK_BLOB_H
#define TRACK_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define BLOB_DIGEST_BYTES  32
#define BLOB_DIGEST_HEX    64          /* characters, without the NUL */
#define BLOB_UPLOAD_ID_HEX 32          /* characters, without the NUL */
#define BLOB_UPLOADS_MAX   64          /* uploads in flight */
#define BLOB_WRITE_MAX     (16u << 20) /* bytes in one blob_upload_write */
#define BLOB_WINDOW_BYTES  (16u << 20) /* how far past `have` a write may end */
#define BLOB_PINS_MAX      1024        /* distinct pinned digests */
#define BLOB_TOUCHED_MAX   4096        /* digests one gc epoch remembers */

struct blob_store;

/* Opens the store under `root` (an existing directory), creating blobs/ and
 * blobs/tmp/ (0700) when missing and setting their modes to 0700. Finds the
 * tmp files of uploads in flight (see Resume) and pins their digests. Removes
 * nothing. On success *out is a new handle for blob_store_close. */
int blob_store_open(const char *root, struct blob_store **out, struct store_err *err);
/* Closes the handle (NULL is fine). Uploads in flight stay on disk,
 * resumable by the next open; pins are forgotten. */
void blob_store_close(struct blob_store *bs);

/* full = 1 (the default): seals fsync the tmp file before the rename and the
 * directories after it; 0: they do not (see Uploads). */
void blob_store_set_sync(struct blob_store *bs, int full);
/* 0 when no blob of `size` bytes is stored (as far as this handle has
 * seen: those found at open and those it sealed) and no upload begun with
 * a digest has that size; 1 when one may be. */
int blob_size_seen(struct blob_store *bs, uint64_t size);

/* Writes the 64 lowercase hex characters of `digest` and a NUL into `hex`. */
void blob_digest_hex(const uint8_t digest[BLOB_DIGEST_BYTES], char hex[BLOB_DIGEST_HEX + 1]);
/* Parses exactly 64 lowercase hex characters (nothing before, after or in
 * between) into `digest`. STORE_E_INVALID naming the digest otherwise; `hex`
 * may be NULL (also INVALID). */
int blob_digest_parse(const char *hex, uint8_t digest[BLOB_DIGEST_BYTES], struct store_err *err);

/* 1 when a complete blob of `digest` is stored, 0 when not, a negative code
 * on an I/O error. */
int blob_exists(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES],
                struct store_err *err);
/* The size in bytes of a stored blob; STORE_E_NOT_FOUND when there is none. */
int blob_size(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES], uint64_t *size,
              struct store_err *err);

/* ---- uploads --------------------------------------------------------------
 * An upload id is the NUL-terminated string of BLOB_UPLOAD_ID_HEX lowercase
 * hex characters that begin wrote; every other call takes it back and answers
 * STORE_E_INVALID for a malformed one, STORE_E_NOT_FOUND for an unknown one. */

/* Announces an upload of `size` bytes (at most INT64_MAX) hashing to `digest`
 * and pins `digest` (see GC and the race rule). When a complete blob of that
 * digest is stored already, *exists = 1, id_out is "" and no upload is made:
 * the caller holds the pin and releases it with blob_unpin. Otherwise
 * *exists = 0 and id_out gets the new upload's id. STORE_E_FULL when
 * BLOB_UPLOADS_MAX uploads are in flight or BLOB_PINS_MAX digests pinned, or
 * the disk is full. */
int blob_upload_begin(struct blob_store *bs, uint64_t size, const uint8_t digest[BLOB_DIGEST_BYTES],
                      char id_out[BLOB_UPLOAD_ID_HEX + 1], int *exists, struct store_err *err);
/* Announces a streaming upload of `size` bytes, its digest unknown (see
 * Streaming uploads): id_out gets the new upload's id; nothing is pinned
 * until its seal. Errors as blob_upload_begin's. */
int blob_upload_begin_stream(struct blob_store *bs, uint64_t size,
                             char id_out[BLOB_UPLOAD_ID_HEX + 1], struct store_err *err);
/* How many bytes of upload `id` arrived in order (written and hashed): where
 * a client resumes. `size` and `digest` (each may be NULL) get what begin
 * announced (all zero bytes for a streaming upload).
 * After a restart the first call rehashes the bytes on disk once. */
int blob_upload_status(struct blob_store *bs, const char *id, uint64_t *have, uint64_t *size,
                       uint8_t digest[BLOB_DIGEST_BYTES], struct store_err *err);
/* Writes `len` bytes (at most BLOB_WRITE_MAX) at `offset`, which must be at
 * or past the bytes received in order so far and end within
 * BLOB_WINDOW_BYTES of them and within the announced size (STORE_E_INVALID
 * naming the expected range otherwise, nothing written). Bytes another
 * thread is writing or hashing at that moment: STORE_E_BUSY, nothing
 * written. May be called by several threads at once for one upload. On
 * STORE_E_FULL, or an error reading back what it hashes, the upload is
 * dropped (tmp file removed, pin released) once no other write of it runs;
 * on another write error the piece is simply not counted, and a retry of
 * the same piece can follow. */
int blob_upload_write(struct blob_store *bs, const char *id, uint64_t offset, const void *buf,
                      size_t len, struct store_err *err);
/* What blob_upload_put saw: the bytes hashed in order after it (`have`),
 * the upload's size and digest, and sealed = 1 when this call completed
 * and sealed the upload (see below). */
struct blob_put_result {
    uint64_t have, size;
    uint8_t digest[BLOB_DIGEST_BYTES];
    int sealed;
};
/* blob_upload_write, and *r (may be NULL) filled. When `seal` is set and
 * this call's hashing reaches the announced size, it goes on as
 * blob_upload_commit does (digest check, fsync, rename; the pin passes to
 * the caller) and sets r->sealed: exactly one write of an upload does so;
 * its error, if the seal fails, is the call's (the upload is then gone). */
int blob_upload_put(struct blob_store *bs, const char *id, uint64_t offset, const void *buf,
                    size_t len, int seal, struct blob_put_result *r, struct store_err *err);
/* Finishes upload `id`: all announced bytes must have arrived and hash to the
 * announced digest, else STORE_E_INVALID and the upload is dropped (nothing
 * kept). Then fsync, rename into blobs/ab/, fsync of blobs/ab/ and blobs/.
 * When the blob appeared meanwhile (another upload of the same bytes), the
 * tmp file is dropped and the answer is 0 all the same. On success the pin
 * passes to the caller (blob_unpin once the reference is durable); on failure
 * the upload's pin is released. */
int blob_upload_commit(struct blob_store *bs, const char *id, struct store_err *err);
/* blob_upload_commit, and `digest` (may be NULL) gets the blob's digest: the
 * one the bytes hashed to, for a streaming upload. */
int blob_upload_commit_ex(struct blob_store *bs, const char *id, uint8_t digest[BLOB_DIGEST_BYTES],
                          struct store_err *err);
/* Drops upload `id`: removes its tmp file and releases its pin. */
int blob_upload_abort(struct blob_store *bs, const char *id, struct store_err *err);
/* Finds an upload in flight announced with (size, digest), for a client that
 * lost its upload id (crashed, or the daemon restarted under it): 0 and its
 * id in id_out, STORE_E_NOT_FOUND when there is none. */
int blob_upload_find(struct blob_store *bs, uint64_t size, const uint8_t digest[BLOB_DIGEST_BYTES],
                     char id_out[BLOB_UPLOAD_ID_HEX + 1], struct store_err *err);

/* ---- reads ----------------------------------------------------------------- */

/* Opens the blob of `digest` read-only: *fd (the caller closes it) and *size.
 * STORE_E_NOT_FOUND when it is not stored. The file is immutable; an fd stays
 * readable even if gc removes the name meanwhile. */
int blob_open_read(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES], int *fd,
                   uint64_t *size, struct store_err *err);
/* Reads up to `len` bytes at `offset` of a blob opened by blob_open_read;
 * *got gets how many (fewer only at the end, 0 at or past it). */
int blob_read_at(int fd, uint64_t offset, void *buf, size_t len, size_t *got,
                 struct store_err *err);
/* Rehashes the stored blob of `digest` (streaming, 64 KiB at a time): 0 when
 * its bytes hash to its name, STORE_E_CORRUPT naming both digests when not,
 * STORE_E_NOT_FOUND when it is not stored. */
int blob_verify(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES],
                struct store_err *err);

/* ---- gc support --------------------------------------------------------------- */

struct blob_info {
    uint8_t digest[BLOB_DIGEST_BYTES];
    uint64_t size;
    int64_t mtime_ms;
};
/* Calls `cb` for every complete blob (files under blobs/ab/ whose names are
 * digests; anything else there is skipped), in no particular order. A
 * non-zero answer from cb stops the walk and is returned. cb may call
 * blob_remove on the blob it is given. */
typedef int (*blob_each_cb)(void *ctx, const struct blob_info *b);
int blob_each(struct blob_store *bs, blob_each_cb cb, void *ctx, struct store_err *err);

/* Takes (blob_pin) or releases (blob_unpin) one pin on `digest`; pins
 * count. A digest need not be stored to be pinned. blob_pin answers
 * STORE_E_FULL beyond BLOB_PINS_MAX digests; blob_unpin of a digest not
 * pinned answers STORE_E_NOT_FOUND. */
int blob_pin(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES], struct store_err *err);
int blob_unpin(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES],
               struct store_err *err);

/* Starts a gc epoch (see GC and the race rule): call it before reading the
 * database for live references. STORE_E_BUSY when an epoch is running. */
int blob_gc_begin(struct blob_store *bs, struct store_err *err);
/* Ends the epoch; blobs it protected become removable again. */
void blob_gc_end(struct blob_store *bs);
/* Removes the blob of `digest`, unless it is pinned or was pinned during the
 * running gc epoch: 0 removed, 1 kept for that reason, STORE_E_NOT_FOUND when
 * not stored. The caller decides that nothing live references it. */
int blob_remove(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES],
                struct store_err *err);

struct blob_tmp_info {
    const char *name; /* the tmp file's name, valid during the callback only */
    int resumable;    /* 1: a known upload (id, size, digest below are set) */
    char id[BLOB_UPLOAD_ID_HEX + 1];
    uint64_t size; /* announced */
    uint8_t digest[BLOB_DIGEST_BYTES];
    uint64_t have;    /* bytes on disk */
    int64_t mtime_ms; /* last write */
};
/* Calls `cb` for every file in blobs/tmp/; a non-zero answer stops the walk
 * and is returned. */
typedef int (*blob_tmp_cb)(void *ctx, const struct blob_tmp_info *t);
int blob_tmp_each(struct blob_store *bs, blob_tmp_cb cb, void *ctx, struct store_err *err);
/* Removes every file in blobs/tmp/ last written more than `older_than_ms`
 * ago (0: all of them, resumable or not), except uploads busy in another
 * thread at that moment; removed uploads are forgotten and their pins
 * released. *removed (may be NULL) gets how many files went. */
int blob_tmp_cleanup(struct blob_store *bs, int64_t older_than_ms, int *removed,
                     struct store_err *err);
/* Drops the streaming uploads last written more than `idle_ms` ago (> 0),
 * except those busy in another thread: nobody but the client that began one
 * can resume it (blob_upload_find does not find it), so one whose client
 * died is abandoned for good. *removed (may be NULL) gets how many went. */
int blob_stream_expire(struct blob_store *bs, int64_t idle_ms, int *removed, struct store_err *err);

#endif
