/*
 * blob.c: the content-addressed blob store (blob.h says what and why: the
 * layout, uploads, resume, the gc race rule). This file is the store itself:
 * open and close (blobs/ and blobs/tmp/), the error and digest helpers, blob
 * lookups and reads, verify, blob_each, pins and the gc epoch rule, and
 * blob_remove. Uploads in flight, their resume after a restart and the
 * cleanup of blobs/tmp/ are blob_upload.c's; what both share (struct
 * blob_store, the blob_i_* helpers) is in blob_internal.h.
 *
 * State in memory: a small array of pinned digests with counts, and the set
 * of digests a running gc epoch must keep (open addressing, never deleted
 * from until the epoch ends), guarded by the store's one mutex.
 *
 * Every file and directory is reached through the descriptors of blobs/ and
 * blobs/tmp/ opened once (openat and friends, O_NOFOLLOW), so a path is
 * never rebuilt from the root and a symlink planted in the store is not
 * followed for a final component.
 */
#include "blob_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------------ */

int blob_i_fail(struct store_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void blob_i_err_clear(struct store_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

/* An errno from a file call: ENOSPC and EDQUOT say the disk is full (FULL),
 * ENOENT is NOT_FOUND, anything else IO; `what` names the file or step. */
int blob_i_io_fail(struct store_err *err, int e, const char *what)
{
    if (e == ENOSPC || e == EDQUOT)
        return blob_i_fail(err, STORE_E_FULL, "%s: disk full (%s)", what, strerror(e));
    if (e == ENOENT)
        return blob_i_fail(err, STORE_E_NOT_FOUND, "%s: %s", what, strerror(e));
    return blob_i_fail(err, STORE_E_IO, "%s: %s", what, strerror(e));
}

/* ---- names --------------------------------------------------------------------- */

static const char hexdig[] = "0123456789abcdef";

void blob_i_hex_encode(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[b[i] >> 4];
        out[2 * i + 1] = hexdig[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* 0 when s[0..2n) is lowercase hex (decoded into b, which may be NULL). */
int blob_i_hex_decode(const char *s, size_t n, uint8_t *b)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_val(s[2 * i]), lo = hi < 0 ? -1 : hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        if (b)
            b[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void blob_digest_hex(const uint8_t digest[BLOB_DIGEST_BYTES], char hex[BLOB_DIGEST_HEX + 1])
{
    blob_i_hex_encode(digest, BLOB_DIGEST_BYTES, hex);
}

int blob_digest_parse(const char *hex, uint8_t digest[BLOB_DIGEST_BYTES], struct store_err *err)
{
    size_t n = hex ? strnlen(hex, BLOB_DIGEST_HEX + 1) : 0;

    if (hex == NULL || n != BLOB_DIGEST_HEX ||
        blob_i_hex_decode(hex, BLOB_DIGEST_BYTES, digest) != 0)
        return blob_i_fail(err, STORE_E_INVALID,
                           "digest: expected exactly %d lowercase hex characters (BLAKE2b-256)",
                           BLOB_DIGEST_HEX);
    return 0;
}

/* "ab/cdef..." for a blob, relative to blobs/. */
void blob_i_rel(const uint8_t digest[BLOB_DIGEST_BYTES], char rel[BLOB_DIGEST_HEX + 2])
{
    char hex[BLOB_DIGEST_HEX + 1];

    blob_digest_hex(digest, hex);
    rel[0] = hex[0];
    rel[1] = hex[1];
    rel[2] = '/';
    memcpy(rel + 3, hex + 2, BLOB_DIGEST_HEX - 2 + 1);
}

int64_t blob_i_mtime_ms_of(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/* ---- the filter of stored sizes ---------------------------------------------------- */

static size_t size_bit(uint64_t size)
{
    return (size_t)((size * 0x9E3779B97F4A7C15ull) >> (64 - 20)); /* log2(SIZE_BITS) = 20 */
}

void blob_i_size_add(struct blob_store *bs, uint64_t size)
{
    size_t b = size_bit(size);
    bs->sizes[b / 64] |= 1ull << (b % 64);
}

int blob_size_seen(struct blob_store *bs, uint64_t size)
{
    size_t b = size_bit(size);
    int seen;

    pthread_mutex_lock(&bs->mu);
    seen = (bs->sizes[b / 64] >> (b % 64)) & 1;
    /* an upload begun with a digest resumes by that digest only: a file of
     * its size had better be hashed, in case it is the same one */
    for (int i = 0; i < BLOB_UPLOADS_MAX && !seen; i++)
        seen = bs->up[i].state != SLOT_FREE && !bs->up[i].streaming && bs->up[i].size == size;
    pthread_mutex_unlock(&bs->mu);
    return seen;
}

static int size_fill_cb(void *ctx, const struct blob_info *b)
{
    blob_i_size_add(ctx, b->size); /* before the handle is shared: no lock */
    return 0;
}

void blob_store_set_sync(struct blob_store *bs, int full)
{
    pthread_mutex_lock(&bs->mu);
    bs->sync_data = full != 0;
    pthread_mutex_unlock(&bs->mu);
}

/* ---- pins and the gc epoch (called with bs->mu held) ----------------------------- */

static uint64_t digest_key(const uint8_t d[BLOB_DIGEST_BYTES])
{
    uint64_t k;

    memcpy(&k, d, sizeof k); /* the digest is uniform: its first bytes are a hash */
    return k;
}

static void touched_add(struct blob_store *bs, const uint8_t d[BLOB_DIGEST_BYTES])
{
    size_t i = (size_t)(digest_key(d) & (TOUCHED_SLOTS - 1));

    for (;; i = (i + 1) & (TOUCHED_SLOTS - 1)) {
        if (!bs->touched[i].used)
            break;
        if (memcmp(bs->touched[i].digest, d, BLOB_DIGEST_BYTES) == 0)
            return;
    }
    if (bs->n_touched >= BLOB_TOUCHED_MAX) {
        bs->gc_overflow = 1;
        return;
    }
    bs->touched[i].used = 1;
    memcpy(bs->touched[i].digest, d, BLOB_DIGEST_BYTES);
    bs->n_touched++;
}

static int touched_has(const struct blob_store *bs, const uint8_t d[BLOB_DIGEST_BYTES])
{
    size_t i = (size_t)(digest_key(d) & (TOUCHED_SLOTS - 1));

    for (; bs->touched[i].used; i = (i + 1) & (TOUCHED_SLOTS - 1))
        if (memcmp(bs->touched[i].digest, d, BLOB_DIGEST_BYTES) == 0)
            return 1;
    return 0;
}

static struct pin *pin_find(struct blob_store *bs, const uint8_t d[BLOB_DIGEST_BYTES])
{
    for (int i = 0; i < bs->pins_hi; i++)
        if (bs->pins[i].count > 0 && memcmp(bs->pins[i].digest, d, BLOB_DIGEST_BYTES) == 0)
            return &bs->pins[i];
    return NULL;
}

int blob_i_pin_take(struct blob_store *bs, const uint8_t d[BLOB_DIGEST_BYTES],
                    struct store_err *err)
{
    struct pin *p = pin_find(bs, d);

    if (p == NULL) {
        for (int i = 0; i < bs->pins_hi && p == NULL; i++)
            if (bs->pins[i].count == 0)
                p = &bs->pins[i];
        if (p == NULL && bs->pins_hi < BLOB_PINS_MAX)
            p = &bs->pins[bs->pins_hi++];
        if (p == NULL)
            return blob_i_fail(err, STORE_E_FULL, "pins: %d digests pinned already (the limit)",
                               BLOB_PINS_MAX);
        memcpy(p->digest, d, BLOB_DIGEST_BYTES);
        p->count = 0;
    }
    p->count++;
    if (bs->gc_active)
        touched_add(bs, d);
    return 0;
}

int blob_i_pin_release(struct blob_store *bs, const uint8_t d[BLOB_DIGEST_BYTES])
{
    struct pin *p = pin_find(bs, d);

    if (p == NULL)
        return STORE_E_NOT_FOUND;
    p->count--;
    while (bs->pins_hi > 0 && bs->pins[bs->pins_hi - 1].count == 0)
        bs->pins_hi--;
    return 0;
}

/* ---- open and close ---------------------------------------------------------------- */

static int dir_open(int at, const char *name, int *fd, int *created, struct store_err *err)
{
    *created = 0;
    /* mkdir's mode passes through the umask (0777 would leave us a 0000 directory that a
     * non-root daemon cannot open): set it by name first, then on the descriptor */
    if (mkdirat(at, name, 0700) == 0) {
        *created = 1;
        if (fchmodat(at, name, 0700, 0) != 0)
            return blob_i_io_fail(err, errno, name);
    } else if (errno != EEXIST) {
        return blob_i_io_fail(err, errno, name);
    }
    *fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0)
        return blob_i_io_fail(err, errno, name);
    if (fchmod(*fd, 0700) != 0)
        return blob_i_io_fail(err, errno, name);
    return 0;
}

int blob_store_open(const char *root, struct blob_store **out, struct store_err *err)
{
    struct blob_store *bs = NULL;
    int rootfd = -1, created = 0, created_tmp = 0, rc = 0;
    size_t sz = (sizeof *bs + 63) / 64 * 64;

    blob_i_err_clear(err);
    *out = NULL;
    if (sodium_init() < 0)
        return blob_i_fail(err, STORE_E_INTERNAL, "libsodium failed to initialise");
    if (root == NULL || root[0] == '\0')
        return blob_i_fail(err, STORE_E_INVALID, "root: a data directory is needed");
    bs = aligned_alloc(64, sz);
    if (bs == NULL)
        return blob_i_fail(err, STORE_E_INTERNAL, "blob store: out of memory");
    memset(bs, 0, sz);
    bs->dfd = bs->tfd = -1;
    bs->sync_data = 1;
    for (int i = 0; i < BLOB_UPLOADS_MAX; i++)
        bs->up[i].fd = -1;
    pthread_mutex_init(&bs->mu, NULL);
    rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        rc = blob_i_fail(err, errno == ENOENT ? STORE_E_NOT_FOUND : STORE_E_IO, "root %s: %s", root,
                         strerror(errno));
        goto out;
    }
    rc = dir_open(rootfd, "blobs", &bs->dfd, &created, err);
    if (rc == 0)
        rc = dir_open(bs->dfd, "tmp", &bs->tfd, &created_tmp, err);
    if (rc != 0)
        goto out;
    if ((created && fsync(rootfd) != 0) || (created_tmp && fsync(bs->dfd) != 0)) {
        rc = blob_i_io_fail(err, errno, "blobs: fsync of the directory");
        goto out;
    }
    rc = blob_i_tmp_scan(bs, err);
    if (rc == 0)
        rc = blob_each(bs, size_fill_cb, bs, err);
out:
    if (rootfd >= 0)
        close(rootfd);
    if (rc != 0) {
        blob_store_close(bs);
        return rc;
    }
    *out = bs;
    return 0;
}

void blob_store_close(struct blob_store *bs)
{
    if (bs == NULL)
        return;
    for (int i = 0; i < BLOB_UPLOADS_MAX; i++)
        if (bs->up[i].fd >= 0)
            close(bs->up[i].fd);
    if (bs->dfd >= 0)
        close(bs->dfd);
    if (bs->tfd >= 0)
        close(bs->tfd);
    pthread_mutex_destroy(&bs->mu);
    sodium_memzero(bs, sizeof *bs);
    free(bs);
}

/* ---- lookups ------------------------------------------------------------------------- */

/* fstatat of the blob's file: 1 found (a regular file), 0 missing, or a code. */
int blob_i_stat(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES], struct stat *st,
                struct store_err *err)
{
    char rel[BLOB_DIGEST_HEX + 2];

    blob_i_rel(digest, rel);
    if (fstatat(bs->dfd, rel, st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return blob_i_io_fail(err, errno, "blob: stat");
    }
    if (!S_ISREG(st->st_mode))
        return blob_i_fail(err, STORE_E_CORRUPT, "blob %s: not a regular file", rel);
    return 1;
}

int blob_exists(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES],
                struct store_err *err)
{
    struct stat st;

    return blob_i_stat(bs, digest, &st, err);
}

int blob_size(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES], uint64_t *size,
              struct store_err *err)
{
    struct stat st;
    char hex[BLOB_DIGEST_HEX + 1];
    int rc = blob_i_stat(bs, digest, &st, err);

    if (rc < 0)
        return rc;
    if (rc == 0) {
        blob_digest_hex(digest, hex);
        return blob_i_fail(err, STORE_E_NOT_FOUND, "digest %s: no such blob", hex);
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

/* ---- reads ---------------------------------------------------------------------------- */

int blob_open_read(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES], int *fd,
                   uint64_t *size, struct store_err *err)
{
    char rel[BLOB_DIGEST_HEX + 2], hex[BLOB_DIGEST_HEX + 1];
    struct stat st;
    int f;

    blob_i_err_clear(err);
    *fd = -1;
    blob_i_rel(digest, rel);
    f = openat(bs->dfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0) {
        blob_digest_hex(digest, hex);
        if (errno == ENOENT || errno == ENOTDIR)
            return blob_i_fail(err, STORE_E_NOT_FOUND, "digest %s: no such blob", hex);
        return blob_i_io_fail(err, errno, "blob: open");
    }
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return blob_i_io_fail(err, e, "blob: fstat");
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return blob_i_fail(err, STORE_E_CORRUPT, "blob %s: not a regular file", rel);
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

int blob_read_at(int fd, uint64_t offset, void *buf, size_t len, size_t *got, struct store_err *err)
{
    uint8_t *p = buf;
    size_t done = 0;

    blob_i_err_clear(err);
    *got = 0;
    if (offset > (uint64_t)INT64_MAX)
        return blob_i_fail(err, STORE_E_INVALID, "offset: %" PRIu64 " is beyond the largest file",
                           offset);
    while (done < len) {
        ssize_t n = pread(fd, p + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return blob_i_io_fail(err, errno, "blob: read");
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

int blob_verify(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES],
                struct store_err *err)
{
    crypto_generichash_state *h = NULL;
    uint8_t *buf = NULL, got[BLOB_DIGEST_BYTES];
    char hex[BLOB_DIGEST_HEX + 1], want[BLOB_DIGEST_HEX + 1];
    uint64_t size, off = 0;
    int fd = -1, rc;

    rc = blob_open_read(bs, digest, &fd, &size, err);
    if (rc != 0)
        return rc;
    buf = malloc(HASH_BUF);
    h = aligned_alloc(64, (sizeof *h + 63) / 64 * 64);
    if (buf == NULL || h == NULL) {
        rc = blob_i_fail(err, STORE_E_INTERNAL, "verify: out of memory");
        goto out;
    }
    crypto_generichash_init(h, NULL, 0, BLOB_DIGEST_BYTES);
    for (;;) {
        size_t n;
        rc = blob_read_at(fd, off, buf, HASH_BUF, &n, err);
        if (rc != 0)
            goto out;
        if (n == 0)
            break;
        crypto_generichash_update(h, buf, n);
        off += n;
    }
    crypto_generichash_final(h, got, sizeof got);
    if (sodium_memcmp(got, digest, sizeof got) != 0) {
        blob_digest_hex(got, hex);
        blob_digest_hex(digest, want);
        rc = blob_i_fail(err, STORE_E_CORRUPT, "blob %s: its %" PRIu64 " bytes hash to %s", want,
                         off, hex);
    }
out:
    free(buf);
    free(h);
    close(fd);
    return rc;
}

/* ---- gc support ------------------------------------------------------------------------ */

int blob_each(struct blob_store *bs, blob_each_cb cb, void *ctx, struct store_err *err)
{
    char sub[3], hex[BLOB_DIGEST_HEX + 1];
    int rc = 0;

    blob_i_err_clear(err);
    for (int i = 0; i < 256 && rc == 0; i++) {
        int fd;
        DIR *d;
        struct dirent *e;

        sub[0] = hexdig[i >> 4];
        sub[1] = hexdig[i & 15];
        sub[2] = '\0';
        fd = openat(bs->dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            return blob_i_io_fail(err, errno, "blobs: opening a digest directory");
        }
        d = fdopendir(fd);
        if (d == NULL) {
            close(fd);
            return blob_i_io_fail(err, errno, "blobs: reading a digest directory");
        }
        while (rc == 0 && (e = readdir(d)) != NULL) {
            struct blob_info b;
            struct stat st;

            if (strlen(e->d_name) != BLOB_DIGEST_HEX - 2)
                continue;
            memcpy(hex, sub, 2);
            memcpy(hex + 2, e->d_name, BLOB_DIGEST_HEX - 2 + 1);
            if (blob_i_hex_decode(hex, BLOB_DIGEST_BYTES, b.digest) != 0)
                continue;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
                continue;
            b.size = (uint64_t)st.st_size;
            b.mtime_ms = blob_i_mtime_ms_of(&st);
            rc = cb(ctx, &b);
        }
        closedir(d);
    }
    if (rc < 0 && err && err->code != rc)
        blob_i_fail(err, rc, "stopped by the callback (%d)", rc);
    return rc;
}

int blob_pin(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES], struct store_err *err)
{
    int rc;

    blob_i_err_clear(err);
    pthread_mutex_lock(&bs->mu);
    rc = blob_i_pin_take(bs, digest, err);
    pthread_mutex_unlock(&bs->mu);
    return rc;
}

int blob_unpin(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES],
               struct store_err *err)
{
    char hex[BLOB_DIGEST_HEX + 1];
    int rc;

    blob_i_err_clear(err);
    pthread_mutex_lock(&bs->mu);
    rc = blob_i_pin_release(bs, digest);
    pthread_mutex_unlock(&bs->mu);
    if (rc != 0) {
        blob_digest_hex(digest, hex);
        return blob_i_fail(err, rc, "digest %s: not pinned", hex);
    }
    return 0;
}

int blob_gc_begin(struct blob_store *bs, struct store_err *err)
{
    blob_i_err_clear(err);
    pthread_mutex_lock(&bs->mu);
    if (bs->gc_active) {
        pthread_mutex_unlock(&bs->mu);
        return blob_i_fail(err, STORE_E_BUSY, "gc: an epoch is running already");
    }
    memset(bs->touched, 0, sizeof bs->touched);
    bs->n_touched = 0;
    bs->gc_overflow = 0;
    bs->gc_active = 1;
    for (int i = 0; i < bs->pins_hi; i++)
        if (bs->pins[i].count > 0)
            touched_add(bs, bs->pins[i].digest);
    pthread_mutex_unlock(&bs->mu);
    return 0;
}

void blob_gc_end(struct blob_store *bs)
{
    pthread_mutex_lock(&bs->mu);
    bs->gc_active = 0;
    bs->n_touched = 0;
    bs->gc_overflow = 0;
    pthread_mutex_unlock(&bs->mu);
}

int blob_remove(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES],
                struct store_err *err)
{
    char rel[BLOB_DIGEST_HEX + 2], hex[BLOB_DIGEST_HEX + 1];
    int rc = 0;

    blob_i_err_clear(err);
    blob_i_rel(digest, rel);
    pthread_mutex_lock(&bs->mu);
    if (pin_find(bs, digest) != NULL ||
        (bs->gc_active && (bs->gc_overflow || touched_has(bs, digest)))) {
        rc = 1;
    } else if (unlinkat(bs->dfd, rel, 0) != 0) {
        blob_digest_hex(digest, hex);
        rc = errno == ENOENT || errno == ENOTDIR
                 ? blob_i_fail(err, STORE_E_NOT_FOUND, "digest %s: no such blob", hex)
                 : blob_i_io_fail(err, errno, "blob: remove");
    }
    pthread_mutex_unlock(&bs->mu);
    return rc;
}
