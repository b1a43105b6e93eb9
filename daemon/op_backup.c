/*
 * op_backup.c: online backups streamed to the client. The daemon never
 * writes a file where a client says (the retired Backup operation is
 * refused): BackupBegin makes a consistent snapshot (store_backup, on the
 * worker's read-only handle, so writers go on) in DIR/backups/, opens it,
 * hashes it (BLAKE2b-256) and unlinks it at once, so nothing of it is left
 * on disk if trackd dies; the open descriptor is the snapshot, named by a
 * random 128-bit id. BackupChunk reads it at an offset, at most
 * SRV_BACKUP_CHUNK_BYTES at a time; BackupEnd closes it. A snapshot that no
 * client reads for BACKUP_IDLE_MS is closed by the sweep; at most
 * BACKUP_MAX_SNAPSHOTS are open at once.
 *
 * The table of snapshots is shared by the read workers, under one mutex;
 * a chunk read holds a reference, so a sweep or an End never closes a
 * descriptor under a pread.
 */
#include "op.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKUP_MAX_SNAPSHOTS 4
#define BACKUP_IDLE_MS       (10 * 60 * 1000)

struct snap {
    int used;
    int ready; /* made and open; until then invisible to lookups */
    char id[33];
    int fd;
    int64_t bytes;
    int64_t last_ms; /* monotonic */
    int refs;        /* chunk reads under way */
    int closing;     /* ended or expired: close when refs drops to 0 */
};

static struct snap snaps[BACKUP_MAX_SNAPSHOTS];
static pthread_mutex_t snaps_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((format(printf, 3, 4))) static int bfail(struct srv_call *call, int code,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->msg, sizeof(call->msg), fmt, ap);
    va_end(ap);
    call->code = code;
    return -1;
}

static void backups_dir(const struct srv *srv, char *buf, size_t len)
{
    snprintf(buf, len, "%s/backups", srv->cfg.data_dir);
}

int srv_backup_prepare_dir(const struct srv_config *cfg)
{
    char dir[1200];
    struct stat sb;
    DIR *d;
    struct dirent *e;

    snprintf(dir, sizeof(dir), "%s/backups", cfg->data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        srv_log(SRV_LOG_ERROR, "backup", "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if (lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        srv_log(SRV_LOG_ERROR, "backup", "%s is not a directory", dir);
        return -1;
    }
    if ((sb.st_mode & 077) && chmod(dir, 0700) != 0) {
        srv_log(SRV_LOG_ERROR, "backup", "cannot chmod 0700 %s: %s", dir, strerror(errno));
        return -1;
    }
    /* everything here is a snapshot being made when a trackd died */
    d = opendir(dir);
    while (d && (e = readdir(d)) != NULL) {
        char p[1500];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (unlink(p) == 0)
            srv_log(SRV_LOG_INFO, "backup", "removed a snapshot left by a stopped trackd path=%s",
                    p);
    }
    if (d)
        closedir(d);
    return 0;
}

/* Under snaps_lock. */
static void snap_release(struct snap *s)
{
    if (s->refs == 0 && s->closing) {
        close(s->fd);
        memset(s, 0, sizeof(*s));
    }
}

void srv_backup_sweep(void)
{
    int64_t now = wire_mono_ms();
    pthread_mutex_lock(&snaps_lock);
    for (int i = 0; i < BACKUP_MAX_SNAPSHOTS; i++) {
        struct snap *s = &snaps[i];
        if (s->used && s->ready && !s->closing && now - s->last_ms > BACKUP_IDLE_MS) {
            srv_log(SRV_LOG_INFO, "backup", "snapshot expired unread id=%s", s->id);
            s->closing = 1;
            snap_release(s);
        }
    }
    pthread_mutex_unlock(&snaps_lock);
}

/* Finds id, taking a reference; NULL when unknown. */
static struct snap *snap_get(const char *id)
{
    struct snap *found = NULL;
    pthread_mutex_lock(&snaps_lock);
    for (int i = 0; i < BACKUP_MAX_SNAPSHOTS && id; i++)
        if (snaps[i].used && snaps[i].ready && !snaps[i].closing && strcmp(snaps[i].id, id) == 0) {
            found = &snaps[i];
            found->refs++;
            found->last_ms = wire_mono_ms();
            break;
        }
    pthread_mutex_unlock(&snaps_lock);
    return found;
}

static void snap_put(struct snap *s, int close_it)
{
    pthread_mutex_lock(&snaps_lock);
    s->refs--;
    if (close_it)
        s->closing = 1;
    snap_release(s);
    pthread_mutex_unlock(&snaps_lock);
}

/* Hashes the whole descriptor from offset 0. */
static int digest_fd(int fd, int64_t bytes, uint8_t out[32])
{
    static __thread uint8_t buf[1 << 16];
    crypto_generichash_state h;
    int64_t off = 0;

    crypto_generichash_init(&h, NULL, 0, 32);
    while (off < bytes) {
        ssize_t r = pread(fd, buf, sizeof(buf), (off_t)off);
        if (r <= 0)
            return -1;
        crypto_generichash_update(&h, buf, (unsigned long long)r);
        off += r;
    }
    crypto_generichash_final(&h, out, 32);
    return 0;
}

int srv_op_backup_begin(struct srv_call *call)
{
    struct store_err err = {0};
    struct snap *slot = NULL;
    char dir[1200], path[1300];
    uint8_t rnd[16], *digest;
    struct stat sb;
    int fd = -1, rc;

    srv_backup_sweep();
    pthread_mutex_lock(&snaps_lock);
    for (int i = 0; i < BACKUP_MAX_SNAPSHOTS && !slot; i++)
        if (!snaps[i].used) {
            slot = &snaps[i];
            slot->used = 1;
        }
    pthread_mutex_unlock(&snaps_lock);
    if (!slot)
        return bfail(call, TRACK__V1__CODE__RESOURCE_EXHAUSTED,
                     "backup: %d backups are already being read; end one (or wait %d min)",
                     BACKUP_MAX_SNAPSHOTS, BACKUP_IDLE_MS / 60000);
    randombytes_buf(rnd, sizeof(rnd));
    for (int i = 0; i < 16; i++)
        snprintf(slot->id + 2 * i, 3, "%02x", rnd[i]);
    backups_dir(call->srv, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/snapshot-%s.db", dir, slot->id);
    rc = store_backup(call->st, path, &err);
    if (rc) {
        unlink(path);
        rc = bfail(call, srv_code_from_store(rc), "backup: %s", err.msg);
        goto out;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    unlink(path);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        rc = bfail(call, TRACK__V1__CODE__INTERNAL, "backup: cannot open the snapshot: %s",
                   strerror(errno));
        goto out;
    }
    Track__V1__BackupBeginResult *r = srv_alloc(&call->arena, sizeof(*r));
    digest = srv_alloc(&call->arena, 32);
    if (!r || !digest) {
        rc = bfail(call, TRACK__V1__CODE__RESOURCE_EXHAUSTED, "daemon out of memory");
        goto out;
    }
    if (digest_fd(fd, (int64_t)sb.st_size, digest)) {
        rc = bfail(call, TRACK__V1__CODE__INTERNAL, "backup: cannot read the snapshot back");
        goto out;
    }
    track__v1__backup_begin_result__init(r);
    r->id = srv_strdup(&call->arena, slot->id);
    r->bytes = (int64_t)sb.st_size;
    r->digest.data = digest;
    r->digest.len = 32;
    r->chunk_bytes = SRV_BACKUP_CHUNK_BYTES;
    if (!r->id) {
        rc = bfail(call, TRACK__V1__CODE__RESOURCE_EXHAUSTED, "daemon out of memory");
        goto out;
    }
    pthread_mutex_lock(&snaps_lock);
    slot->fd = fd;
    slot->ready = 1;
    slot->bytes = r->bytes;
    slot->last_ms = wire_mono_ms();
    pthread_mutex_unlock(&snaps_lock);
    fd = -1;
    srv_log(SRV_LOG_INFO, "backup", "snapshot made id=%s bytes=%lld", r->id, (long long)r->bytes);
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_BACKUP_BEGIN;
    call->rs->backup_begin = r;
    rc = 0;
out:
    if (rc) {
        if (fd >= 0)
            close(fd);
        pthread_mutex_lock(&snaps_lock);
        memset(slot, 0, sizeof(*slot));
        pthread_mutex_unlock(&snaps_lock);
    }
    return rc;
}

int srv_op_backup_chunk(struct srv_call *call)
{
    const Track__V1__BackupChunk *q = call->rq->backup_chunk;
    struct snap *s = snap_get(q->id);
    int64_t want, got = 0;
    uint8_t *buf;
    int rc = 0;

    if (!s)
        return bfail(call, TRACK__V1__CODE__NOT_FOUND,
                     "backup id: \"%.40s\" is not a backup being read (ended or expired)",
                     q->id ? q->id : "");
    if (q->offset < 0 || q->offset > s->bytes) {
        rc = bfail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                   "offset: %lld is outside the snapshot of %lld bytes", (long long)q->offset,
                   (long long)s->bytes);
        goto out;
    }
    if (q->max_bytes < 0) {
        rc = bfail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "max_bytes: must not be negative");
        goto out;
    }
    want = q->max_bytes == 0 || q->max_bytes > SRV_BACKUP_CHUNK_BYTES ? SRV_BACKUP_CHUNK_BYTES
                                                                      : q->max_bytes;
    if (want > s->bytes - q->offset)
        want = s->bytes - q->offset;
    Track__V1__BackupChunkResult *r = srv_alloc(&call->arena, sizeof(*r));
    buf = srv_alloc_raw(&call->arena, want ? (size_t)want : 1);
    if (!r || !buf) {
        rc = bfail(call, TRACK__V1__CODE__RESOURCE_EXHAUSTED, "daemon out of memory");
        goto out;
    }
    while (got < want) {
        ssize_t n = pread(s->fd, buf + got, (size_t)(want - got), (off_t)(q->offset + got));
        if (n <= 0) {
            rc = bfail(call, TRACK__V1__CODE__INTERNAL, "backup: reading the snapshot: %s",
                       n < 0 ? strerror(errno) : "short file");
            goto out;
        }
        got += n;
    }
    track__v1__backup_chunk_result__init(r);
    r->offset = q->offset;
    r->data.data = buf;
    r->data.len = (size_t)got;
    r->eof = q->offset + got == s->bytes;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_BACKUP_CHUNK;
    call->rs->backup_chunk = r;
out:
    snap_put(s, 0);
    return rc;
}

int srv_op_backup_end(struct srv_call *call)
{
    struct snap *s = snap_get(call->rq->backup_end->id);
    if (!s)
        return bfail(call, TRACK__V1__CODE__NOT_FOUND,
                     "backup id: \"%.40s\" is not a backup being read (ended or expired)",
                     call->rq->backup_end->id ? call->rq->backup_end->id : "");
    Track__V1__BackupEndResult *r = srv_alloc(&call->arena, sizeof(*r));
    snap_put(s, 1);
    if (!r)
        return bfail(call, TRACK__V1__CODE__RESOURCE_EXHAUSTED, "daemon out of memory");
    track__v1__backup_end_result__init(r);
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_BACKUP_END;
    call->rs->backup_end = r;
    return 0;
}

void srv_backup_close_all(void)
{
    pthread_mutex_lock(&snaps_lock);
    for (int i = 0; i < BACKUP_MAX_SNAPSHOTS; i++)
        if (snaps[i].used && snaps[i].ready && snaps[i].refs == 0) {
            close(snaps[i].fd);
            memset(&snaps[i], 0, sizeof(snaps[i]));
        }
    pthread_mutex_unlock(&snaps_lock);
}

/* The retired request that had the daemon write a file at a client-chosen
 * path (anyone reaching a tcp:// listener could have it overwrite any file
 * trackd's user may write): refused, and nothing is written. */
int srv_op_backup(struct srv_call *call)
{
    return srv_op_fail(
        call, TRACK__V1__CODE__INVALID_ARGUMENT,
        "backup: trackd no longer writes a file at a path the client names; the client "
        "streams the copy (BackupBegin, BackupChunk): use `track backup FILE`");
}
