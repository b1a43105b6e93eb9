/*
 * blob_upload.c: the blob store's uploads (blob.h, Uploads and Resume):
 * begin (with a digest, or streaming without one), find, status, write with
 * incremental hashing, commit (fsync when the store syncs, rename into
 * place, fsync of the directories), abort; the slots of uploads in
 * flight, found again from the tmp files' names after a restart
 * (blob_i_tmp_scan, called by blob_store_open); and the walks of blobs/tmp/
 * (blob_tmp_each, blob_tmp_cleanup). The store itself (open, reads, pins,
 * gc, remove) is blob.c's.
 *
 * State in memory: one `struct upload` slot per upload in flight (the tmp
 * file's name, the announced size and digest, the bytes so far, the open fd
 * and the running BLAKE2b state), guarded by the store's one mutex. A slot
 * being worked on is marked BUSY and its file I/O runs outside the mutex, so
 * uploads do not wait for each other's disk writes.
 *
 * Every file is reached through the descriptors of blobs/ and blobs/tmp/
 * (openat and friends, O_NOFOLLOW), as in blob.c.
 */
#include "blob_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- names ---------------------------------------------------------------------- */

static int upload_id_check(const char *id, struct store_err *err)
{
    size_t n = id ? strnlen(id, BLOB_UPLOAD_ID_HEX + 1) : 0;

    if (id == NULL || n != BLOB_UPLOAD_ID_HEX ||
        blob_i_hex_decode(id, BLOB_UPLOAD_ID_HEX / 2, NULL) != 0)
        return blob_i_fail(err, STORE_E_INVALID,
                           "upload id: expected exactly %d lowercase hex characters",
                           BLOB_UPLOAD_ID_HEX);
    return 0;
}

/* Parses a tmp file's name ID-SIZE-DIGEST; 0 when it is one. */
static int tmp_name_parse(const char *name, char id[BLOB_UPLOAD_ID_HEX + 1], uint64_t *size,
                          uint8_t digest[BLOB_DIGEST_BYTES])
{
    const char *p = name;
    uint64_t v = 0;
    int digits = 0;

    if (strnlen(name, TMP_NAME_MAX) >= TMP_NAME_MAX)
        return -1;
    if (blob_i_hex_decode(p, BLOB_UPLOAD_ID_HEX / 2, NULL) != 0 || p[BLOB_UPLOAD_ID_HEX] != '-')
        return -1;
    memcpy(id, p, BLOB_UPLOAD_ID_HEX);
    id[BLOB_UPLOAD_ID_HEX] = '\0';
    p += BLOB_UPLOAD_ID_HEX + 1;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (digits > 0 && v == 0)
            return -1; /* a leading zero: not a name we made */
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (digits == 0 || *p != '-')
        return -1;
    p++;
    if (strlen(p) != BLOB_DIGEST_HEX || blob_i_hex_decode(p, BLOB_DIGEST_BYTES, digest) != 0)
        return -1;
    *size = v;
    return 0;
}

static const uint8_t zero_digest[BLOB_DIGEST_BYTES];

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- upload slots ------------------------------------------------------------------ */

static struct upload *slot_find(struct blob_store *bs, const char *id)
{
    for (int i = 0; i < BLOB_UPLOADS_MAX; i++)
        if (bs->up[i].state != SLOT_FREE && strcmp(bs->up[i].id, id) == 0)
            return &bs->up[i];
    return NULL;
}

static void slot_put(struct blob_store *bs, struct upload *u)
{
    pthread_mutex_lock(&bs->mu);
    u->state = SLOT_IDLE;
    pthread_mutex_unlock(&bs->mu);
}

/* Forgets upload u (BUSY, owned by the caller): closes and removes its tmp
 * file and releases its pin. */
static void slot_drop(struct blob_store *bs, struct upload *u)
{
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (u->name[0] != '\0')
        unlinkat(bs->tfd, u->name, 0);
    pthread_mutex_lock(&bs->mu);
    if (!u->streaming)
        blob_i_pin_release(bs, u->digest);
    u->streaming = 0;
    sodium_memzero(&u->h, sizeof u->h);
    u->id[0] = '\0';
    u->name[0] = '\0';
    u->writers = u->hashing = u->failed = u->n_done = u->n_busy = 0;
    u->hash_end = 0;
    u->state = SLOT_FREE;
    pthread_mutex_unlock(&bs->mu);
}

/* Opens a slot found at blob_store_open on its first use and rehashes the
 * bytes on disk. *fatal = 1 when the upload cannot go on (file gone or
 * longer than announced): the caller drops it. */
static int slot_load(struct blob_store *bs, struct upload *u, int *fatal, struct store_err *err)
{
    struct stat st;
    uint8_t *buf = NULL;
    uint64_t off = 0;
    int fd = -1, rc = 0;

    *fatal = 0;
    if (u->fd >= 0)
        return 0;
    fd = openat(bs->tfd, u->name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        *fatal = errno == ENOENT;
        rc = blob_i_io_fail(err, errno, "upload: opening its tmp file");
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = blob_i_io_fail(err, errno, "upload: fstat of its tmp file");
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > u->size) {
        *fatal = 1;
        rc = blob_i_fail(err, STORE_E_CORRUPT,
                         "upload %s: tmp file holds %jd bytes of %" PRIu64 " announced", u->id,
                         (intmax_t)st.st_size, u->size);
        goto out;
    }
    /* pieces written ahead of the in-order bytes may have left a gap: only
     * what precedes the first hole is known to be written (a filesystem
     * without SEEK_HOLE says none; the digest check at commit still holds) */
    if (st.st_size > 0) {
        off_t hole = lseek(fd, 0, SEEK_HOLE);
        if (hole >= 0 && hole < st.st_size) {
            if (ftruncate(fd, hole) != 0) {
                rc = blob_i_io_fail(err, errno, "upload: cutting its tmp file at a gap");
                goto out;
            }
            st.st_size = hole;
        }
    }
    buf = malloc(HASH_BUF);
    if (buf == NULL) {
        rc = blob_i_fail(err, STORE_E_INTERNAL, "upload: out of memory");
        goto out;
    }
    crypto_generichash_init(&u->h, NULL, 0, BLOB_DIGEST_BYTES);
    while (off < (uint64_t)st.st_size) {
        size_t want =
            (uint64_t)st.st_size - off < HASH_BUF ? (size_t)((uint64_t)st.st_size - off) : HASH_BUF;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? blob_i_io_fail(err, errno, "upload: rehashing its tmp file")
                       : blob_i_fail(err, STORE_E_IO, "upload %s: tmp file shrank while rehashed",
                                     u->id);
            goto out;
        }
        crypto_generichash_update(&u->h, buf, (unsigned long long)n);
        off += (uint64_t)n;
    }
    u->have = off;
    u->fd = fd;
    fd = -1;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Looks up upload `id`, marks it BUSY for the caller and loads it. */
static int slot_get(struct blob_store *bs, const char *id, struct upload **out,
                    struct store_err *err)
{
    struct upload *u;
    int rc, fatal;

    rc = upload_id_check(id, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&bs->mu);
    u = slot_find(bs, id);
    if (u == NULL) {
        pthread_mutex_unlock(&bs->mu);
        return blob_i_fail(err, STORE_E_NOT_FOUND, "upload id %s: no such upload in flight", id);
    }
    if (u->state == SLOT_BUSY || u->writers || u->hashing) {
        pthread_mutex_unlock(&bs->mu);
        return blob_i_fail(err, STORE_E_BUSY, "upload id %s: in use by another request", id);
    }
    u->state = SLOT_BUSY;
    pthread_mutex_unlock(&bs->mu);
    rc = slot_load(bs, u, &fatal, err);
    if (rc != 0) {
        if (fatal)
            slot_drop(bs, u);
        else
            slot_put(bs, u);
        return rc;
    }
    *out = u;
    return 0;
}

/* Looks up upload `id`, loads it if needed, and returns with bs->mu held and
 * the slot not exclusive: for status and writes, which may run beside
 * writes of the same upload. */
static int slot_shared(struct blob_store *bs, const char *id, struct upload **out,
                       struct store_err *err)
{
    struct upload *u;
    int rc;

    rc = upload_id_check(id, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&bs->mu);
    u = slot_find(bs, id);
    if (u != NULL && u->state != SLOT_BUSY && u->fd >= 0) {
        *out = u;
        return 0;
    }
    pthread_mutex_unlock(&bs->mu);
    if (u == NULL)
        return blob_i_fail(err, STORE_E_NOT_FOUND, "upload id %s: no such upload in flight", id);
    /* not loaded yet (after a restart), or exclusive right now */
    rc = slot_get(bs, id, &u, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&bs->mu);
    u->state = SLOT_IDLE;
    *out = u;
    return 0;
}

/* ---- resume after a restart ---------------------------------------------------- */

/* Finds the uploads of a previous run in blobs/tmp/ and gives each a slot. */
int blob_i_tmp_scan(struct blob_store *bs, struct store_err *err)
{
    int fd = openat(bs->tfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
    DIR *d;
    struct dirent *e;

    if (fd < 0)
        return blob_i_io_fail(err, errno, "blobs/tmp");
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return blob_i_io_fail(err, errno, "blobs/tmp");
    }
    while ((e = readdir(d)) != NULL && n < BLOB_UPLOADS_MAX) {
        struct upload *u = &bs->up[n];
        struct stat st;

        if (tmp_name_parse(e->d_name, u->id, &u->size, u->digest) != 0)
            continue;
        if (fstatat(bs->tfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        memcpy(u->name, e->d_name, strlen(e->d_name) + 1); /* parsed: it fits */
        u->have = (uint64_t)st.st_size;
        u->fd = -1;
        u->state = SLOT_IDLE;
        u->streaming = memcmp(u->digest, zero_digest, BLOB_DIGEST_BYTES) == 0;
        if (!u->streaming && blob_i_pin_take(bs, u->digest, err) != 0) {
            u->state = SLOT_FREE;
            continue;
        }
        n++;
    }
    closedir(d);
    return 0;
}

/* ---- uploads ------------------------------------------------------------------------- */

/* Takes a free slot for an upload of `size` bytes announced with `digest`
 * (NULL: a streaming upload) and creates its tmp file. Called with bs->mu
 * held (and the digest pinned, when there is one); returns with it released.
 * On failure the pin is released. */
static int slot_create(struct blob_store *bs, uint64_t size, const uint8_t *digest,
                       char id_out[BLOB_UPLOAD_ID_HEX + 1], struct store_err *err)
{
    struct upload *u = NULL;
    uint8_t rnd[BLOB_UPLOAD_ID_HEX / 2];
    char hex[BLOB_DIGEST_HEX + 1];
    int rc, fd;

    for (int i = 0; i < BLOB_UPLOADS_MAX && u == NULL; i++)
        if (bs->up[i].state == SLOT_FREE)
            u = &bs->up[i];
    if (u == NULL) {
        if (digest)
            blob_i_pin_release(bs, digest);
        pthread_mutex_unlock(&bs->mu);
        return blob_i_fail(err, STORE_E_FULL, "uploads: %d in flight already (the limit)",
                           BLOB_UPLOADS_MAX);
    }
    randombytes_buf(rnd, sizeof rnd);
    blob_i_hex_encode(rnd, sizeof rnd, u->id);
    memcpy(u->digest, digest ? digest : zero_digest, BLOB_DIGEST_BYTES);
    blob_digest_hex(u->digest, hex);
    snprintf(u->name, sizeof u->name, "%s-%" PRIu64 "-%s", u->id, size, hex);
    u->streaming = digest == NULL;
    u->size = size;
    u->have = 0;
    u->hash_end = 0;
    u->writers = u->hashing = u->failed = u->n_done = u->n_busy = 0;
    u->fd = -1;
    u->state = SLOT_BUSY;
    pthread_mutex_unlock(&bs->mu);

    fd = openat(bs->tfd, u->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* not ours to unlink: the name may be another's (EEXIST) */
        rc = blob_i_io_fail(err, errno, "upload: creating its tmp file");
        u->name[0] = '\0';
        slot_drop(bs, u);
        return rc;
    }
    if (fchmod(fd, 0600) != 0) {
        rc = blob_i_io_fail(err, errno, "upload: setting its tmp file's mode");
        u->fd = fd;
        slot_drop(bs, u);
        return rc;
    }
    u->fd = fd;
    crypto_generichash_init(&u->h, NULL, 0, BLOB_DIGEST_BYTES);
    memcpy(id_out, u->id, BLOB_UPLOAD_ID_HEX + 1);
    slot_put(bs, u);
    return 0;
}

static int size_check(uint64_t size, struct store_err *err)
{
    if (size > (uint64_t)INT64_MAX)
        return blob_i_fail(err, STORE_E_INVALID,
                           "size: %" PRIu64 " is beyond the largest file (%jd)", size,
                           (intmax_t)INT64_MAX);
    return 0;
}

int blob_upload_begin(struct blob_store *bs, uint64_t size, const uint8_t digest[BLOB_DIGEST_BYTES],
                      char id_out[BLOB_UPLOAD_ID_HEX + 1], int *exists, struct store_err *err)
{
    struct stat st;
    int rc;

    blob_i_err_clear(err);
    id_out[0] = '\0';
    *exists = 0;
    if ((rc = size_check(size, err)) != 0)
        return rc;
    /* the all-zero digest names a streaming upload's tmp file */
    if (memcmp(digest, zero_digest, BLOB_DIGEST_BYTES) == 0)
        return blob_i_fail(err, STORE_E_INVALID,
                           "digest: all zero bytes is no BLAKE2b-256 digest of any file");
    pthread_mutex_lock(&bs->mu);
    rc = blob_i_pin_take(bs, digest, err);
    if (rc != 0)
        goto unlock;
    /* under the mutex, so that blob_remove cannot slip between this check and the pin */
    rc = blob_i_stat(bs, digest, &st, err);
    if (rc == 1) {
        *exists = 1;
        rc = 0;
        goto unlock;
    }
    if (rc < 0) {
        blob_i_pin_release(bs, digest);
        goto unlock;
    }
    return slot_create(bs, size, digest, id_out, err);
unlock:
    pthread_mutex_unlock(&bs->mu);
    return rc;
}

int blob_upload_begin_stream(struct blob_store *bs, uint64_t size,
                             char id_out[BLOB_UPLOAD_ID_HEX + 1], struct store_err *err)
{
    int rc;

    blob_i_err_clear(err);
    id_out[0] = '\0';
    if ((rc = size_check(size, err)) != 0)
        return rc;
    pthread_mutex_lock(&bs->mu);
    return slot_create(bs, size, NULL, id_out, err);
}

int blob_upload_find(struct blob_store *bs, uint64_t size, const uint8_t digest[BLOB_DIGEST_BYTES],
                     char id_out[BLOB_UPLOAD_ID_HEX + 1], struct store_err *err)
{
    char hex[BLOB_DIGEST_HEX + 1];

    blob_i_err_clear(err);
    pthread_mutex_lock(&bs->mu);
    for (int i = 0; i < BLOB_UPLOADS_MAX; i++) {
        struct upload *u = &bs->up[i];
        if (u->state != SLOT_FREE && !u->streaming && u->size == size &&
            memcmp(u->digest, digest, BLOB_DIGEST_BYTES) == 0) {
            memcpy(id_out, u->id, BLOB_UPLOAD_ID_HEX + 1);
            pthread_mutex_unlock(&bs->mu);
            return 0;
        }
    }
    pthread_mutex_unlock(&bs->mu);
    blob_digest_hex(digest, hex);
    return blob_i_fail(err, STORE_E_NOT_FOUND,
                       "digest %s: no upload of %" PRIu64 " bytes in flight", hex, size);
}

int blob_upload_status(struct blob_store *bs, const char *id, uint64_t *have, uint64_t *size,
                       uint8_t digest[BLOB_DIGEST_BYTES], struct store_err *err)
{
    struct upload *u;
    int rc;

    blob_i_err_clear(err);
    rc = slot_shared(bs, id, &u, err);
    if (rc != 0)
        return rc;
    *have = u->have;
    if (size)
        *size = u->size;
    if (digest)
        memcpy(digest, u->digest, BLOB_DIGEST_BYTES);
    pthread_mutex_unlock(&bs->mu);
    return 0;
}

/* ---- writes: the window and the in-order hash ---------------------------------- */

static int overlaps(const struct range *r, int n, uint64_t off, uint64_t end)
{
    for (int i = 0; i < n; i++)
        if (off < r[i].end && r[i].off < end)
            return 1;
    return 0;
}

/* Adds [off, end) to u->done (sorted, disjoint), merging what it touches;
 * -1 when that would take more than UPLOAD_RANGES entries. */
static int done_add(struct upload *u, uint64_t off, uint64_t end)
{
    struct range *r = u->done;
    int n = u->n_done, i = 0, j;

    while (i < n && r[i].end < off)
        i++;
    for (j = i; j < n && r[j].off <= end; j++) {
        if (r[j].off < off)
            off = r[j].off;
        if (r[j].end > end)
            end = r[j].end;
    }
    if (i == j) {
        if (n == UPLOAD_RANGES)
            return -1;
        memmove(&r[i + 1], &r[i], (size_t)(n - i) * sizeof *r);
        n++;
    } else {
        memmove(&r[i + 1], &r[j], (size_t)(n - j) * sizeof *r);
        n -= j - i - 1;
    }
    r[i].off = off;
    r[i].end = end;
    u->n_done = n;
    return 0;
}

static void busy_remove(struct upload *u, uint64_t off, uint64_t end)
{
    for (int i = 0; i < u->n_busy; i++)
        if (u->busy[i].off == off && u->busy[i].end == end) {
            u->busy[i] = u->busy[--u->n_busy];
            return;
        }
}

/* Feeds bytes [from, to) of u to its hash: from `p` (the caller's piece at
 * `off`, `len` bytes) where it covers them, else read back from the file.
 * Called by the one hashing thread, without the mutex. 0 or an errno. */
static int hash_span(struct upload *u, uint64_t from, uint64_t to, uint64_t off, const uint8_t *p,
                     size_t len, uint8_t **scratch)
{
    while (from < to) {
        if (from >= off && from < off + len) {
            uint64_t stop = to < off + len ? to : off + len;
            crypto_generichash_update(&u->h, p + (from - off), (unsigned long long)(stop - from));
            from = stop;
            continue;
        }
        if (*scratch == NULL && (*scratch = malloc(HASH_BUF)) == NULL)
            return ENOMEM;
        size_t want = to - from < HASH_BUF ? (size_t)(to - from) : HASH_BUF;
        if (from < off && off - from < want)
            want = (size_t)(off - from);
        ssize_t n = pread(u->fd, *scratch, want, (off_t)from);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EIO;
        crypto_generichash_update(&u->h, *scratch, (unsigned long long)n);
        from += (uint64_t)n;
    }
    return 0;
}

static int seal_upload(struct blob_store *bs, struct upload *u, uint8_t digest_out[32],
                       struct store_err *err);

int blob_upload_put(struct blob_store *bs, const char *id, uint64_t offset, const void *buf,
                    size_t len, int seal, struct blob_put_result *r, struct store_err *err)
{
    struct upload *u;
    const uint8_t *p = buf;
    uint8_t *scratch = NULL;
    uint64_t end = offset + len;
    size_t done = 0;
    int rc = 0, e = 0;

    blob_i_err_clear(err);
    if (r)
        memset(r, 0, sizeof *r);
    if (len > BLOB_WRITE_MAX)
        return blob_i_fail(err, STORE_E_INVALID,
                           "chunk: %zu bytes, beyond the %u a write may carry", len,
                           BLOB_WRITE_MAX);
    rc = slot_shared(bs, id, &u, err);
    if (rc != 0)
        return rc;
    /* from here on bs->mu is held, except around the write and the hashing */
    if (u->failed) {
        rc = blob_i_fail(err, STORE_E_NOT_FOUND, "upload id %s: dropped after a failed write", id);
        goto out;
    }
    if (offset < u->have || offset > u->size) {
        rc = blob_i_fail(err, STORE_E_INVALID,
                         "offset: %" PRIu64 " is not the next byte of upload %s (expected %" PRIu64
                         " to %" PRIu64 ")",
                         offset, id, u->have, u->have + BLOB_WINDOW_BYTES);
        goto out;
    }
    if (len > u->size - offset) {
        rc = blob_i_fail(err, STORE_E_INVALID,
                         "chunk: %zu bytes at offset %" PRIu64
                         " end past the announced size %" PRIu64,
                         len, offset, u->size);
        goto out;
    }
    if (end > u->have + BLOB_WINDOW_BYTES) {
        rc = blob_i_fail(err, STORE_E_INVALID,
                         "offset: %zu bytes at %" PRIu64 " end past the window of upload %s "
                         "(expected %" PRIu64 " to %" PRIu64 ")",
                         len, offset, id, u->have, u->have + BLOB_WINDOW_BYTES);
        goto out;
    }
    if (len == 0)
        goto out;
    if ((u->hashing && offset < u->hash_end) || overlaps(u->busy, u->n_busy, offset, end) ||
        u->n_busy == UPLOAD_RANGES) {
        rc = blob_i_fail(err, STORE_E_BUSY,
                         "upload id %s: bytes %" PRIu64 " to %" PRIu64
                         " are being written or hashed by another request",
                         id, offset, end);
        goto out;
    }
    u->busy[u->n_busy++] = (struct range){offset, end};
    u->writers++;
    pthread_mutex_unlock(&bs->mu);

    while (done < len) {
        ssize_t n = pwrite(u->fd, p + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            break;
        }
        done += (size_t)n;
    }
#ifdef SYNC_FILE_RANGE_WRITE
    /* start writing the piece to disk now, so the fsync of the seal waits
     * for the last pieces only instead of the whole file (advice: an error
     * here is the seal's fsync's to report) */
    if (!e && bs->sync_data)
        (void)sync_file_range(u->fd, (off64_t)offset, (off64_t)len, SYNC_FILE_RANGE_WRITE);
#endif

    pthread_mutex_lock(&bs->mu);
    busy_remove(u, offset, end);
    u->writers--;
    if (e) {
        rc = blob_i_io_fail(err, e, "upload: writing its tmp file");
        if (rc == STORE_E_FULL)
            u->failed = rc;
    } else if (done_add(u, offset, end) != 0) {
        rc = blob_i_fail(err, STORE_E_BUSY,
                         "upload id %s: more than %d pieces ahead of byte %" PRIu64
                         "; send the missing ones first",
                         id, UPLOAD_RANGES, u->have);
    }
    /* feed the hash in order, one thread at a time, never over bytes a
     * write is still changing */
    if (!u->hashing) {
        u->hashing = 1;
        while (!u->failed && u->n_done > 0 && u->done[0].off <= u->have &&
               !overlaps(u->busy, u->n_busy, u->done[0].off, u->done[0].end)) {
            uint64_t from = u->have, to = u->done[0].end;
            memmove(&u->done[0], &u->done[1], (size_t)(u->n_done - 1) * sizeof *u->done);
            u->n_done--;
            if (to <= from)
                continue;
            u->hash_end = to;
            pthread_mutex_unlock(&bs->mu);
            int he = hash_span(u, from, to, offset, p, e ? 0 : len, &scratch);
            pthread_mutex_lock(&bs->mu);
            if (he) {
                /* the hash state is past recovery: the upload goes */
                rc = blob_i_io_fail(err, he, "upload: reading back its tmp file to hash it");
                u->failed = rc == STORE_E_FULL ? rc : STORE_E_IO;
                break;
            }
            u->have = to;
        }
        u->hash_end = u->have;
        u->hashing = 0;
    }
out:
    if (r) {
        r->have = u->have;
        r->size = u->size;
        memcpy(r->digest, u->digest, BLOB_DIGEST_BYTES);
    }
    if (u->failed && !u->writers && !u->hashing && u->state != SLOT_BUSY) {
        u->state = SLOT_BUSY;
        pthread_mutex_unlock(&bs->mu);
        slot_drop(bs, u);
        free(scratch);
        return rc ? rc : blob_i_fail(err, STORE_E_NOT_FOUND, "upload id %s: dropped", id);
    }
    if (seal && rc == 0 && u->have == u->size && !u->writers && !u->hashing &&
        u->state != SLOT_BUSY) {
        u->state = SLOT_BUSY;
        pthread_mutex_unlock(&bs->mu);
        free(scratch);
        rc = seal_upload(bs, u, r ? r->digest : NULL, err);
        if (rc == 0 && r)
            r->sealed = 1;
        return rc;
    }
    pthread_mutex_unlock(&bs->mu);
    free(scratch);
    return rc;
}

int blob_upload_write(struct blob_store *bs, const char *id, uint64_t offset, const void *buf,
                      size_t len, struct store_err *err)
{
    return blob_upload_put(bs, id, offset, buf, len, 0, NULL, err);
}

int blob_upload_commit_ex(struct blob_store *bs, const char *id, uint8_t digest[BLOB_DIGEST_BYTES],
                          struct store_err *err)
{
    struct upload *u;
    int rc;

    blob_i_err_clear(err);
    rc = slot_get(bs, id, &u, err);
    if (rc != 0)
        return rc;
    return seal_upload(bs, u, digest, err);
}

int blob_upload_commit(struct blob_store *bs, const char *id, struct store_err *err)
{
    return blob_upload_commit_ex(bs, id, NULL, err);
}

/* The body of blob_upload_commit, on slot u (exclusive, loaded); drops the
 * slot in every case. A streaming upload takes the digest its bytes hash to
 * (and pins it) here. digest_out (may be NULL) gets the blob's digest on
 * success. */
static int seal_upload(struct blob_store *bs, struct upload *u, uint8_t digest_out[32],
                       struct store_err *err)
{
    uint8_t got[BLOB_DIGEST_BYTES];
    char hex[BLOB_DIGEST_HEX + 1], want[BLOB_DIGEST_HEX + 1], rel[BLOB_DIGEST_HEX + 2];
    struct stat st;
    int rc = 0, abfd = -1;

    if (u->have != u->size) {
        rc = blob_i_fail(err, STORE_E_INVALID,
                         "size: upload %s received %" PRIu64 " of the %" PRIu64 " bytes announced",
                         u->id, u->have, u->size);
        goto drop;
    }
    crypto_generichash_final(&u->h, got, sizeof got);
    if (u->streaming) {
        /* the pin before the existence check, as begin does: blob_remove
         * cannot take a blob of this digest from under us after it */
        pthread_mutex_lock(&bs->mu);
        rc = blob_i_pin_take(bs, got, err);
        if (rc == 0) {
            memcpy(u->digest, got, sizeof got);
            u->streaming = 0; /* from here the slot holds a pin like any other */
        }
        pthread_mutex_unlock(&bs->mu);
        if (rc != 0)
            goto drop;
    } else if (sodium_memcmp(got, u->digest, sizeof got) != 0) {
        blob_digest_hex(got, hex);
        blob_digest_hex(u->digest, want);
        rc = blob_i_fail(err, STORE_E_INVALID,
                         "digest: the bytes received hash to %s, not to the announced %s", hex,
                         want);
        goto drop;
    }
    /* durability normal: no fsync; a crash of the process loses nothing the
     * page cache holds, and verify finds what a power loss garbled */
    if (bs->sync_data && fsync(u->fd) != 0) {
        rc = blob_i_io_fail(err, errno, "upload: fsync of its tmp file");
        goto drop;
    }
    close(u->fd);
    u->fd = -1;
    blob_i_rel(u->digest, rel);
    rel[2] = '\0'; /* rel is "ab", rel + 3 the rest of the name */
    if (mkdirat(bs->dfd, rel, 0700) == 0) {
        if (fchmodat(bs->dfd, rel, 0700, 0) != 0 || fsync(bs->dfd) != 0) {
            rc = blob_i_io_fail(err, errno, "blobs: creating a digest directory");
            goto drop;
        }
    } else if (errno != EEXIST) {
        rc = blob_i_io_fail(err, errno, "blobs: creating a digest directory");
        goto drop;
    }
    abfd = openat(bs->dfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (abfd < 0) {
        rc = blob_i_io_fail(err, errno, "blobs: opening a digest directory");
        goto drop;
    }
    /* pinned by this upload, so gc cannot remove it between the check and our drop */
    if (fstatat(abfd, rel + 3, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
        rc = 0;
        goto drop_keep_pin;
    }
    if (renameat(bs->tfd, u->name, abfd, rel + 3) != 0) {
        rc = blob_i_io_fail(err, errno, "upload: renaming into place");
        goto drop;
    }
    pthread_mutex_lock(&bs->mu);
    blob_i_size_add(bs, u->size);
    pthread_mutex_unlock(&bs->mu);
    if (bs->sync_data && (fsync(abfd) != 0 || fsync(bs->dfd) != 0)) {
        /* the blob is complete and named but maybe not durable: the caller must not
         * reference it, so it is left to gc as garbage */
        rc = blob_i_io_fail(err, errno, "blobs: fsync of the directory");
        goto drop;
    }
drop_keep_pin:
    /* the pin passes to the caller: take one more for it, the drop releases the upload's */
    pthread_mutex_lock(&bs->mu);
    blob_i_pin_take(bs, u->digest, NULL);
    pthread_mutex_unlock(&bs->mu);
    if (digest_out)
        memcpy(digest_out, u->digest, BLOB_DIGEST_BYTES);
drop:
    slot_drop(bs, u);
    if (abfd >= 0)
        close(abfd);
    return rc;
}

int blob_upload_abort(struct blob_store *bs, const char *id, struct store_err *err)
{
    struct upload *u;
    int rc;

    blob_i_err_clear(err);
    rc = upload_id_check(id, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&bs->mu);
    u = slot_find(bs, id);
    if (u == NULL || u->state == SLOT_BUSY || u->writers || u->hashing) {
        pthread_mutex_unlock(&bs->mu);
        return u ? blob_i_fail(err, STORE_E_BUSY, "upload id %s: in use by another request", id)
                 : blob_i_fail(err, STORE_E_NOT_FOUND, "upload id %s: no such upload in flight",
                               id);
    }
    u->state = SLOT_BUSY;
    pthread_mutex_unlock(&bs->mu);
    slot_drop(bs, u);
    return 0;
}

/* ---- blobs/tmp/: listing and cleanup --------------------------------------------- */

/* Walks blobs/tmp/; `cb` gets each regular file with what its name and the
 * slot table say. */
static int tmp_walk(struct blob_store *bs,
                    int (*cb)(struct blob_store *, void *, const struct blob_tmp_info *), void *ctx,
                    struct store_err *err)
{
    int fd = openat(bs->tfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
    DIR *d;
    struct dirent *e;

    if (fd < 0)
        return blob_i_io_fail(err, errno, "blobs/tmp");
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return blob_i_io_fail(err, errno, "blobs/tmp");
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct blob_tmp_info t;
        struct stat st;

        if (fstatat(bs->tfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        memset(&t, 0, sizeof t);
        t.name = e->d_name;
        t.have = (uint64_t)st.st_size;
        t.mtime_ms = blob_i_mtime_ms_of(&st);
        if (tmp_name_parse(e->d_name, t.id, &t.size, t.digest) == 0) {
            pthread_mutex_lock(&bs->mu);
            struct upload *u = slot_find(bs, t.id);
            t.resumable = u != NULL && strcmp(u->name, e->d_name) == 0;
            pthread_mutex_unlock(&bs->mu);
        }
        if (!t.resumable) {
            t.id[0] = '\0';
            t.size = 0;
            memset(t.digest, 0, sizeof t.digest);
        }
        rc = cb(bs, ctx, &t);
    }
    closedir(d);
    return rc;
}

struct each_ctx {
    blob_tmp_cb cb;
    void *ctx;
};

static int each_one(struct blob_store *bs, void *ctx, const struct blob_tmp_info *t)
{
    struct each_ctx *c = ctx;

    (void)bs;
    return c->cb(c->ctx, t);
}

int blob_tmp_each(struct blob_store *bs, blob_tmp_cb cb, void *ctx, struct store_err *err)
{
    struct each_ctx c = {cb, ctx};
    int rc;

    blob_i_err_clear(err);
    rc = tmp_walk(bs, each_one, &c, err);
    if (rc < 0 && err && err->code != rc)
        blob_i_fail(err, rc, "stopped by the callback (%d)", rc);
    return rc;
}

struct cleanup_ctx {
    int64_t before_ms; /* INT64_MAX: everything */
    int removed;
    int streaming_only;
};

static int cleanup_one(struct blob_store *bs, void *ctx, const struct blob_tmp_info *t)
{
    struct cleanup_ctx *c = ctx;
    struct upload *u = NULL;

    if (t->mtime_ms >= c->before_ms)
        return 0;
    if (c->streaming_only && (!t->resumable || memcmp(t->digest, zero_digest, sizeof t->digest)))
        return 0;
    if (t->resumable) {
        pthread_mutex_lock(&bs->mu);
        u = slot_find(bs, t->id);
        if (u == NULL || u->state == SLOT_BUSY || u->writers || u->hashing ||
            (c->streaming_only && !u->streaming)) {
            pthread_mutex_unlock(&bs->mu);
            return 0; /* gone meanwhile, or being written to: not abandoned */
        }
        u->state = SLOT_BUSY;
        pthread_mutex_unlock(&bs->mu);
        slot_drop(bs, u);
        c->removed++;
        return 0;
    }
    if (unlinkat(bs->tfd, t->name, 0) == 0)
        c->removed++;
    return 0;
}

int blob_tmp_cleanup(struct blob_store *bs, int64_t older_than_ms, int *removed,
                     struct store_err *err)
{
    struct cleanup_ctx c = {older_than_ms <= 0 ? INT64_MAX : now_ms() - older_than_ms, 0, 0};
    int rc;

    blob_i_err_clear(err);
    rc = tmp_walk(bs, cleanup_one, &c, err);
    if (removed)
        *removed = c.removed;
    return rc;
}

int blob_stream_expire(struct blob_store *bs, int64_t idle_ms, int *removed, struct store_err *err)
{
    struct cleanup_ctx c = {now_ms() - (idle_ms > 0 ? idle_ms : 1), 0, 1};
    int rc;

    blob_i_err_clear(err);
    rc = tmp_walk(bs, cleanup_one, &c, err);
    if (removed)
        *removed = c.removed;
    return rc;
}
