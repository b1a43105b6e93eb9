/*
 * blob.c: the content-addressed blob store (blob.h says what and why: the
 * layout, uploads, resume, the gc race rule). This file is only the
 * mechanics.
 *
 * State in memory: one `struct upload` slot per upload in flight (the tmp
 * file's name, the announced size and digest, the bytes so far, the open fd
 * and the running BLAKE2b state), a small array of pinned digests with
 * counts, and the set of digests a running gc epoch must keep (open
 * addressing, never deleted from until the epoch ends). One mutex guards
 * them. A slot being worked on is marked BUSY and its file I/O runs outside
 * the mutex, so uploads do not wait for each other's disk writes.
 *
 * Every file and directory is reached through the descriptors of blobs/ and
 * blobs/tmp/ opened once (openat and friends, O_NOFOLLOW), so a path is
 * never rebuilt from the root and a symlink planted in the store is not
 * followed for a final component.
 */
#include "blob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HASH_BUF      (64 * 1024)
#define TOUCHED_SLOTS (2 * BLOB_TOUCHED_MAX) /* a power of two */
#define TMP_NAME_MAX  (BLOB_UPLOAD_ID_HEX + 1 + 20 + 1 + BLOB_DIGEST_HEX + 1)

enum { SLOT_FREE = 0, SLOT_IDLE, SLOT_BUSY };

struct upload {
    crypto_generichash_state h; /* valid once fd >= 0 */
    int state;
    int fd; /* -1 until loaded (after a restart: on first use) */
    char id[BLOB_UPLOAD_ID_HEX + 1];
    char name[TMP_NAME_MAX];
    uint64_t size;
    uint64_t have;
    uint8_t digest[BLOB_DIGEST_BYTES];
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
};

/* ---- errors ------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int fail(struct store_err *err, int code,
                                                      const char *fmt, ...)
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

static void err_clear(struct store_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

/* An errno from a file call: ENOSPC and EDQUOT say the disk is full (FULL),
 * ENOENT is NOT_FOUND, anything else IO; `what` names the file or step. */
static int io_fail(struct store_err *err, int e, const char *what)
{
    if (e == ENOSPC || e == EDQUOT)
        return fail(err, STORE_E_FULL, "%s: disk full (%s)", what, strerror(e));
    if (e == ENOENT)
        return fail(err, STORE_E_NOT_FOUND, "%s: %s", what, strerror(e));
    return fail(err, STORE_E_IO, "%s: %s", what, strerror(e));
}

/* ---- names --------------------------------------------------------------------- */

static const char hexdig[] = "0123456789abcdef";

static void hex_encode(const uint8_t *b, size_t n, char *out)
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
static int hex_decode(const char *s, size_t n, uint8_t *b)
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
    hex_encode(digest, BLOB_DIGEST_BYTES, hex);
}

int blob_digest_parse(const char *hex, uint8_t digest[BLOB_DIGEST_BYTES], struct store_err *err)
{
    size_t n = hex ? strnlen(hex, BLOB_DIGEST_HEX + 1) : 0;

    if (hex == NULL || n != BLOB_DIGEST_HEX || hex_decode(hex, BLOB_DIGEST_BYTES, digest) != 0)
        return fail(err, STORE_E_INVALID,
                    "digest: expected exactly %d lowercase hex characters (BLAKE2b-256)",
                    BLOB_DIGEST_HEX);
    return 0;
}

static int upload_id_check(const char *id, struct store_err *err)
{
    size_t n = id ? strnlen(id, BLOB_UPLOAD_ID_HEX + 1) : 0;

    if (id == NULL || n != BLOB_UPLOAD_ID_HEX || hex_decode(id, BLOB_UPLOAD_ID_HEX / 2, NULL) != 0)
        return fail(err, STORE_E_INVALID, "upload id: expected exactly %d lowercase hex characters",
                    BLOB_UPLOAD_ID_HEX);
    return 0;
}

/* "ab/cdef..." for a blob, relative to blobs/. */
static void blob_rel(const uint8_t digest[BLOB_DIGEST_BYTES], char rel[BLOB_DIGEST_HEX + 2])
{
    char hex[BLOB_DIGEST_HEX + 1];

    blob_digest_hex(digest, hex);
    rel[0] = hex[0];
    rel[1] = hex[1];
    rel[2] = '/';
    memcpy(rel + 3, hex + 2, BLOB_DIGEST_HEX - 2 + 1);
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
    if (hex_decode(p, BLOB_UPLOAD_ID_HEX / 2, NULL) != 0 || p[BLOB_UPLOAD_ID_HEX] != '-')
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
    if (strlen(p) != BLOB_DIGEST_HEX || hex_decode(p, BLOB_DIGEST_BYTES, digest) != 0)
        return -1;
    *size = v;
    return 0;
}

static int64_t mtime_ms_of(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

static int pin_take(struct blob_store *bs, const uint8_t d[BLOB_DIGEST_BYTES],
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
            return fail(err, STORE_E_FULL, "pins: %d digests pinned already (the limit)",
                        BLOB_PINS_MAX);
        memcpy(p->digest, d, BLOB_DIGEST_BYTES);
        p->count = 0;
    }
    p->count++;
    if (bs->gc_active)
        touched_add(bs, d);
    return 0;
}

static int pin_release(struct blob_store *bs, const uint8_t d[BLOB_DIGEST_BYTES])
{
    struct pin *p = pin_find(bs, d);

    if (p == NULL)
        return STORE_E_NOT_FOUND;
    p->count--;
    while (bs->pins_hi > 0 && bs->pins[bs->pins_hi - 1].count == 0)
        bs->pins_hi--;
    return 0;
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
    pin_release(bs, u->digest);
    sodium_memzero(&u->h, sizeof u->h);
    u->id[0] = '\0';
    u->name[0] = '\0';
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
        rc = io_fail(err, errno, "upload: opening its tmp file");
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = io_fail(err, errno, "upload: fstat of its tmp file");
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > u->size) {
        *fatal = 1;
        rc = fail(err, STORE_E_CORRUPT,
                  "upload %s: tmp file holds %jd bytes of %" PRIu64 " announced", u->id,
                  (intmax_t)st.st_size, u->size);
        goto out;
    }
    buf = malloc(HASH_BUF);
    if (buf == NULL) {
        rc = fail(err, STORE_E_INTERNAL, "upload: out of memory");
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
            rc = n < 0 ? io_fail(err, errno, "upload: rehashing its tmp file")
                       : fail(err, STORE_E_IO, "upload %s: tmp file shrank while rehashed", u->id);
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
        return fail(err, STORE_E_NOT_FOUND, "upload id %s: no such upload in flight", id);
    }
    if (u->state == SLOT_BUSY) {
        pthread_mutex_unlock(&bs->mu);
        return fail(err, STORE_E_BUSY, "upload id %s: in use by another request", id);
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

/* ---- open and close ---------------------------------------------------------------- */

static int dir_open(int at, const char *name, int *fd, int *created, struct store_err *err)
{
    *created = 0;
    /* mkdir's mode passes through the umask (0777 would leave us a 0000 directory that a
     * non-root daemon cannot open): set it by name first, then on the descriptor */
    if (mkdirat(at, name, 0700) == 0) {
        *created = 1;
        if (fchmodat(at, name, 0700, 0) != 0)
            return io_fail(err, errno, name);
    } else if (errno != EEXIST) {
        return io_fail(err, errno, name);
    }
    *fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0)
        return io_fail(err, errno, name);
    if (fchmod(*fd, 0700) != 0)
        return io_fail(err, errno, name);
    return 0;
}

/* Finds the uploads of a previous run in blobs/tmp/ and gives each a slot. */
static int tmp_scan(struct blob_store *bs, struct store_err *err)
{
    int fd = openat(bs->tfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
    DIR *d;
    struct dirent *e;

    if (fd < 0)
        return io_fail(err, errno, "blobs/tmp");
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return io_fail(err, errno, "blobs/tmp");
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
        if (pin_take(bs, u->digest, err) != 0) {
            u->state = SLOT_FREE;
            continue;
        }
        n++;
    }
    closedir(d);
    return 0;
}

int blob_store_open(const char *root, struct blob_store **out, struct store_err *err)
{
    struct blob_store *bs = NULL;
    int rootfd = -1, created = 0, created_tmp = 0, rc = 0;
    size_t sz = (sizeof *bs + 63) / 64 * 64;

    err_clear(err);
    *out = NULL;
    if (sodium_init() < 0)
        return fail(err, STORE_E_INTERNAL, "libsodium failed to initialise");
    if (root == NULL || root[0] == '\0')
        return fail(err, STORE_E_INVALID, "root: a data directory is needed");
    bs = aligned_alloc(64, sz);
    if (bs == NULL)
        return fail(err, STORE_E_INTERNAL, "blob store: out of memory");
    memset(bs, 0, sz);
    bs->dfd = bs->tfd = -1;
    for (int i = 0; i < BLOB_UPLOADS_MAX; i++)
        bs->up[i].fd = -1;
    pthread_mutex_init(&bs->mu, NULL);
    rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        rc = fail(err, errno == ENOENT ? STORE_E_NOT_FOUND : STORE_E_IO, "root %s: %s", root,
                  strerror(errno));
        goto out;
    }
    rc = dir_open(rootfd, "blobs", &bs->dfd, &created, err);
    if (rc == 0)
        rc = dir_open(bs->dfd, "tmp", &bs->tfd, &created_tmp, err);
    if (rc != 0)
        goto out;
    if ((created && fsync(rootfd) != 0) || (created_tmp && fsync(bs->dfd) != 0)) {
        rc = io_fail(err, errno, "blobs: fsync of the directory");
        goto out;
    }
    rc = tmp_scan(bs, err);
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
static int blob_stat(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES],
                     struct stat *st, struct store_err *err)
{
    char rel[BLOB_DIGEST_HEX + 2];

    blob_rel(digest, rel);
    if (fstatat(bs->dfd, rel, st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return io_fail(err, errno, "blob: stat");
    }
    if (!S_ISREG(st->st_mode))
        return fail(err, STORE_E_CORRUPT, "blob %s: not a regular file", rel);
    return 1;
}

int blob_exists(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES],
                struct store_err *err)
{
    struct stat st;

    return blob_stat(bs, digest, &st, err);
}

int blob_size(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES], uint64_t *size,
              struct store_err *err)
{
    struct stat st;
    char hex[BLOB_DIGEST_HEX + 1];
    int rc = blob_stat(bs, digest, &st, err);

    if (rc < 0)
        return rc;
    if (rc == 0) {
        blob_digest_hex(digest, hex);
        return fail(err, STORE_E_NOT_FOUND, "digest %s: no such blob", hex);
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

/* ---- uploads ------------------------------------------------------------------------- */

int blob_upload_begin(struct blob_store *bs, uint64_t size, const uint8_t digest[BLOB_DIGEST_BYTES],
                      char id_out[BLOB_UPLOAD_ID_HEX + 1], int *exists, struct store_err *err)
{
    struct upload *u = NULL;
    struct stat st;
    uint8_t rnd[BLOB_UPLOAD_ID_HEX / 2];
    char hex[BLOB_DIGEST_HEX + 1];
    int rc, fd;

    err_clear(err);
    id_out[0] = '\0';
    *exists = 0;
    if (size > (uint64_t)INT64_MAX)
        return fail(err, STORE_E_INVALID, "size: %" PRIu64 " is beyond the largest file (%jd)",
                    size, (intmax_t)INT64_MAX);
    pthread_mutex_lock(&bs->mu);
    rc = pin_take(bs, digest, err);
    if (rc != 0)
        goto unlock;
    /* under the mutex, so that blob_remove cannot slip between this check and the pin */
    rc = blob_stat(bs, digest, &st, err);
    if (rc == 1) {
        *exists = 1;
        rc = 0;
        goto unlock;
    }
    if (rc < 0) {
        pin_release(bs, digest);
        goto unlock;
    }
    for (int i = 0; i < BLOB_UPLOADS_MAX && u == NULL; i++)
        if (bs->up[i].state == SLOT_FREE)
            u = &bs->up[i];
    if (u == NULL) {
        pin_release(bs, digest);
        rc = fail(err, STORE_E_FULL, "uploads: %d in flight already (the limit)", BLOB_UPLOADS_MAX);
        goto unlock;
    }
    randombytes_buf(rnd, sizeof rnd);
    hex_encode(rnd, sizeof rnd, u->id);
    blob_digest_hex(digest, hex);
    snprintf(u->name, sizeof u->name, "%s-%" PRIu64 "-%s", u->id, size, hex);
    memcpy(u->digest, digest, BLOB_DIGEST_BYTES);
    u->size = size;
    u->have = 0;
    u->fd = -1;
    u->state = SLOT_BUSY;
    pthread_mutex_unlock(&bs->mu);

    fd = openat(bs->tfd, u->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* not ours to unlink: the name may be another's (EEXIST) */
        rc = io_fail(err, errno, "upload: creating its tmp file");
        u->name[0] = '\0';
        slot_drop(bs, u);
        return rc;
    }
    if (fchmod(fd, 0600) != 0) {
        rc = io_fail(err, errno, "upload: setting its tmp file's mode");
        u->fd = fd;
        slot_drop(bs, u);
        return rc;
    }
    u->fd = fd;
    crypto_generichash_init(&u->h, NULL, 0, BLOB_DIGEST_BYTES);
    memcpy(id_out, u->id, BLOB_UPLOAD_ID_HEX + 1);
    slot_put(bs, u);
    return 0;
unlock:
    pthread_mutex_unlock(&bs->mu);
    return rc;
}

int blob_upload_find(struct blob_store *bs, uint64_t size, const uint8_t digest[BLOB_DIGEST_BYTES],
                     char id_out[BLOB_UPLOAD_ID_HEX + 1], struct store_err *err)
{
    char hex[BLOB_DIGEST_HEX + 1];

    err_clear(err);
    pthread_mutex_lock(&bs->mu);
    for (int i = 0; i < BLOB_UPLOADS_MAX; i++) {
        struct upload *u = &bs->up[i];
        if (u->state != SLOT_FREE && u->size == size &&
            memcmp(u->digest, digest, BLOB_DIGEST_BYTES) == 0) {
            memcpy(id_out, u->id, BLOB_UPLOAD_ID_HEX + 1);
            pthread_mutex_unlock(&bs->mu);
            return 0;
        }
    }
    pthread_mutex_unlock(&bs->mu);
    blob_digest_hex(digest, hex);
    return fail(err, STORE_E_NOT_FOUND, "digest %s: no upload of %" PRIu64 " bytes in flight", hex,
                size);
}

int blob_upload_status(struct blob_store *bs, const char *id, uint64_t *have, uint64_t *size,
                       uint8_t digest[BLOB_DIGEST_BYTES], struct store_err *err)
{
    struct upload *u;
    int rc;

    err_clear(err);
    rc = slot_get(bs, id, &u, err);
    if (rc != 0)
        return rc;
    *have = u->have;
    if (size)
        *size = u->size;
    if (digest)
        memcpy(digest, u->digest, BLOB_DIGEST_BYTES);
    slot_put(bs, u);
    return 0;
}

int blob_upload_write(struct blob_store *bs, const char *id, uint64_t offset, const void *buf,
                      size_t len, struct store_err *err)
{
    struct upload *u;
    const uint8_t *p = buf;
    size_t done = 0;
    int rc;

    err_clear(err);
    if (len > BLOB_WRITE_MAX)
        return fail(err, STORE_E_INVALID, "chunk: %zu bytes, beyond the %u a write may carry", len,
                    BLOB_WRITE_MAX);
    rc = slot_get(bs, id, &u, err);
    if (rc != 0)
        return rc;
    if (offset != u->have) {
        rc = fail(err, STORE_E_INVALID,
                  "offset: %" PRIu64 " is not the next byte of upload %s (expected %" PRIu64 ")",
                  offset, id, u->have);
        goto put;
    }
    if (len > u->size - u->have) {
        rc = fail(err, STORE_E_INVALID,
                  "chunk: %zu bytes at offset %" PRIu64 " end past the announced size %" PRIu64,
                  len, offset, u->size);
        goto put;
    }
    while (done < len) {
        ssize_t n = pwrite(u->fd, p + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            rc = io_fail(err, e, "upload: writing its tmp file");
            if (rc == STORE_E_FULL || ftruncate(u->fd, (off_t)u->have) != 0) {
                slot_drop(bs, u);
                return rc;
            }
            goto put;
        }
        done += (size_t)n;
    }
    crypto_generichash_update(&u->h, p, (unsigned long long)len);
    u->have += len;
put:
    slot_put(bs, u);
    return rc;
}

int blob_upload_commit(struct blob_store *bs, const char *id, struct store_err *err)
{
    struct upload *u;
    uint8_t got[BLOB_DIGEST_BYTES];
    char hex[BLOB_DIGEST_HEX + 1], want[BLOB_DIGEST_HEX + 1], rel[BLOB_DIGEST_HEX + 2];
    struct stat st;
    int rc, abfd = -1;

    err_clear(err);
    rc = slot_get(bs, id, &u, err);
    if (rc != 0)
        return rc;
    if (u->have != u->size) {
        rc = fail(err, STORE_E_INVALID,
                  "size: upload %s received %" PRIu64 " of the %" PRIu64 " bytes announced", id,
                  u->have, u->size);
        goto drop;
    }
    crypto_generichash_final(&u->h, got, sizeof got);
    if (sodium_memcmp(got, u->digest, sizeof got) != 0) {
        blob_digest_hex(got, hex);
        blob_digest_hex(u->digest, want);
        rc = fail(err, STORE_E_INVALID,
                  "digest: the bytes received hash to %s, not to the announced %s", hex, want);
        goto drop;
    }
    if (fsync(u->fd) != 0) {
        rc = io_fail(err, errno, "upload: fsync of its tmp file");
        goto drop;
    }
    close(u->fd);
    u->fd = -1;
    blob_rel(u->digest, rel);
    rel[2] = '\0'; /* rel is "ab", rel + 3 the rest of the name */
    if (mkdirat(bs->dfd, rel, 0700) == 0) {
        if (fchmodat(bs->dfd, rel, 0700, 0) != 0 || fsync(bs->dfd) != 0) {
            rc = io_fail(err, errno, "blobs: creating a digest directory");
            goto drop;
        }
    } else if (errno != EEXIST) {
        rc = io_fail(err, errno, "blobs: creating a digest directory");
        goto drop;
    }
    abfd = openat(bs->dfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (abfd < 0) {
        rc = io_fail(err, errno, "blobs: opening a digest directory");
        goto drop;
    }
    /* pinned by this upload, so gc cannot remove it between the check and our drop */
    if (fstatat(abfd, rel + 3, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
        rc = 0;
        goto drop_keep_pin;
    }
    if (renameat(bs->tfd, u->name, abfd, rel + 3) != 0) {
        rc = io_fail(err, errno, "upload: renaming into place");
        goto drop;
    }
    if (fsync(abfd) != 0 || fsync(bs->dfd) != 0) {
        /* the blob is complete and named but maybe not durable: the caller must not
         * reference it, so it is left to gc as garbage */
        rc = io_fail(err, errno, "blobs: fsync of the directory");
        goto drop;
    }
drop_keep_pin:
    /* the pin passes to the caller: take one more for it, the drop releases the upload's */
    pthread_mutex_lock(&bs->mu);
    pin_take(bs, u->digest, NULL);
    pthread_mutex_unlock(&bs->mu);
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

    err_clear(err);
    rc = upload_id_check(id, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&bs->mu);
    u = slot_find(bs, id);
    if (u == NULL || u->state == SLOT_BUSY) {
        pthread_mutex_unlock(&bs->mu);
        return u ? fail(err, STORE_E_BUSY, "upload id %s: in use by another request", id)
                 : fail(err, STORE_E_NOT_FOUND, "upload id %s: no such upload in flight", id);
    }
    u->state = SLOT_BUSY;
    pthread_mutex_unlock(&bs->mu);
    slot_drop(bs, u);
    return 0;
}

/* ---- reads ---------------------------------------------------------------------------- */

int blob_open_read(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES], int *fd,
                   uint64_t *size, struct store_err *err)
{
    char rel[BLOB_DIGEST_HEX + 2], hex[BLOB_DIGEST_HEX + 1];
    struct stat st;
    int f;

    err_clear(err);
    *fd = -1;
    blob_rel(digest, rel);
    f = openat(bs->dfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0) {
        blob_digest_hex(digest, hex);
        if (errno == ENOENT || errno == ENOTDIR)
            return fail(err, STORE_E_NOT_FOUND, "digest %s: no such blob", hex);
        return io_fail(err, errno, "blob: open");
    }
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return io_fail(err, e, "blob: fstat");
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return fail(err, STORE_E_CORRUPT, "blob %s: not a regular file", rel);
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

int blob_read_at(int fd, uint64_t offset, void *buf, size_t len, size_t *got, struct store_err *err)
{
    uint8_t *p = buf;
    size_t done = 0;

    err_clear(err);
    *got = 0;
    if (offset > (uint64_t)INT64_MAX)
        return fail(err, STORE_E_INVALID, "offset: %" PRIu64 " is beyond the largest file", offset);
    while (done < len) {
        ssize_t n = pread(fd, p + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return io_fail(err, errno, "blob: read");
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
        rc = fail(err, STORE_E_INTERNAL, "verify: out of memory");
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
        rc =
            fail(err, STORE_E_CORRUPT, "blob %s: its %" PRIu64 " bytes hash to %s", want, off, hex);
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

    err_clear(err);
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
            return io_fail(err, errno, "blobs: opening a digest directory");
        }
        d = fdopendir(fd);
        if (d == NULL) {
            close(fd);
            return io_fail(err, errno, "blobs: reading a digest directory");
        }
        while (rc == 0 && (e = readdir(d)) != NULL) {
            struct blob_info b;
            struct stat st;

            if (strlen(e->d_name) != BLOB_DIGEST_HEX - 2)
                continue;
            memcpy(hex, sub, 2);
            memcpy(hex + 2, e->d_name, BLOB_DIGEST_HEX - 2 + 1);
            if (hex_decode(hex, BLOB_DIGEST_BYTES, b.digest) != 0)
                continue;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
                continue;
            b.size = (uint64_t)st.st_size;
            b.mtime_ms = mtime_ms_of(&st);
            rc = cb(ctx, &b);
        }
        closedir(d);
    }
    if (rc < 0 && err && err->code != rc)
        fail(err, rc, "stopped by the callback (%d)", rc);
    return rc;
}

int blob_pin(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES], struct store_err *err)
{
    int rc;

    err_clear(err);
    pthread_mutex_lock(&bs->mu);
    rc = pin_take(bs, digest, err);
    pthread_mutex_unlock(&bs->mu);
    return rc;
}

int blob_unpin(struct blob_store *bs, const uint8_t digest[BLOB_DIGEST_BYTES],
               struct store_err *err)
{
    char hex[BLOB_DIGEST_HEX + 1];
    int rc;

    err_clear(err);
    pthread_mutex_lock(&bs->mu);
    rc = pin_release(bs, digest);
    pthread_mutex_unlock(&bs->mu);
    if (rc != 0) {
        blob_digest_hex(digest, hex);
        return fail(err, rc, "digest %s: not pinned", hex);
    }
    return 0;
}

int blob_gc_begin(struct blob_store *bs, struct store_err *err)
{
    err_clear(err);
    pthread_mutex_lock(&bs->mu);
    if (bs->gc_active) {
        pthread_mutex_unlock(&bs->mu);
        return fail(err, STORE_E_BUSY, "gc: an epoch is running already");
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

    err_clear(err);
    blob_rel(digest, rel);
    pthread_mutex_lock(&bs->mu);
    if (pin_find(bs, digest) != NULL ||
        (bs->gc_active && (bs->gc_overflow || touched_has(bs, digest)))) {
        rc = 1;
    } else if (unlinkat(bs->dfd, rel, 0) != 0) {
        blob_digest_hex(digest, hex);
        rc = errno == ENOENT || errno == ENOTDIR
                 ? fail(err, STORE_E_NOT_FOUND, "digest %s: no such blob", hex)
                 : io_fail(err, errno, "blob: remove");
    }
    pthread_mutex_unlock(&bs->mu);
    return rc;
}

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
        return io_fail(err, errno, "blobs/tmp");
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return io_fail(err, errno, "blobs/tmp");
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct blob_tmp_info t;
        struct stat st;

        if (fstatat(bs->tfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        memset(&t, 0, sizeof t);
        t.name = e->d_name;
        t.have = (uint64_t)st.st_size;
        t.mtime_ms = mtime_ms_of(&st);
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

    err_clear(err);
    rc = tmp_walk(bs, each_one, &c, err);
    if (rc < 0 && err && err->code != rc)
        fail(err, rc, "stopped by the callback (%d)", rc);
    return rc;
}

struct cleanup_ctx {
    int64_t before_ms; /* INT64_MAX: everything */
    int removed;
};

static int cleanup_one(struct blob_store *bs, void *ctx, const struct blob_tmp_info *t)
{
    struct cleanup_ctx *c = ctx;
    struct upload *u = NULL;

    if (t->mtime_ms >= c->before_ms)
        return 0;
    if (t->resumable) {
        pthread_mutex_lock(&bs->mu);
        u = slot_find(bs, t->id);
        if (u == NULL || u->state == SLOT_BUSY) {
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
    struct cleanup_ctx c = {older_than_ms <= 0 ? INT64_MAX : now_ms() - older_than_ms, 0};
    int rc;

    err_clear(err);
    rc = tmp_walk(bs, cleanup_one, &c, err);
    if (removed)
        *removed = c.removed;
    return rc;
}
