/*
 * artifact.c: files kept with a run (track.h "artifacts"). An upload of a
 * big file first asks whether the daemon holds any blob of its size (a
 * streaming begin, no digest): when none, the file is sent at once and
 * trackd's hash of what arrives names it (one read of the file, one hash
 * pass, in trackd). Otherwise, and for small files, the file is hashed
 * first (BLAKE2b-256) so the daemon can answer that it has the blob
 * already (dedup: no bytes move). Either way it is sent in chunks of at
 * most 1 MiB read from the file at their offsets, several in flight
 * (artifact_xfer.c), resuming from what the daemon reports after a dropped
 * connection or a daemon restart. Downloads read the blob in pages, several
 * asked ahead, into NAME.tmp beside the destination, checking the digest as
 * the bytes arrive; only a whole, matching, fsynced file is renamed into
 * place (fsynced first only when asked: track_artifact_set_fsync). Neither
 * way holds more than a few chunks in memory.
 * track_blob_get downloads by digest alone (a model version's pinned
 * bytes), the same way.
 *
 * Paths on both sides are checked by limits_check_artifact_path; the daemon
 * is authoritative, and a download checks the stored paths again and opens
 * every directory below the destination with O_NOFOLLOW, so no stored path
 * and no symbolic link planted there leads a write outside it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "track_limits.h"

#define CHUNK_BYTES     CL_CHUNK_BYTES
#define OP_TIMEOUT_MS   CL_OP_TIMEOUT_MS
#define LONG_TIMEOUT_MS CL_LONG_TIMEOUT_MS
#define RETRIES         5         /* fresh begins after a failed chunk or commit */
#define WALK_DEPTH      32        /* directory levels followed in an upload */
#define STREAM_MIN      (4 << 20) /* files this big may be sent without hashing first */

/* ---- one request -------------------------------------------------------------- */

/* Sends rq (a fresh request id) with at least `timeout_ms` and checks the
 * reply's result case; *out is the caller's to free. */
static int roundtrip(struct track_client *c, Track__V1__Request *rq, int result, int timeout_ms,
                     Track__V1__Response **out, struct track_err *err)
{
    int saved = c->timeout_ms, rc;

    if (c->timeout_ms < timeout_ms)
        c->timeout_ms = timeout_ms;
    rc = cl_read(c, rq, out, err);
    c->timeout_ms = saved;
    if (rc)
        return rc;
    if ((int)(*out)->result_case != result) {
        track__v1__response__free_unpacked(*out, NULL);
        *out = NULL;
        return cl_fail(err, TRACK_E_INTERNAL, "malformed reply from server: wrong result (%d)",
                       result);
    }
    return 0;
}

int track_artifact_check_path(const char *path, struct track_err *err)
{
    char msg[300];
    if (limits_check_artifact_path("artifact path", path, path ? strlen(path) : 0, msg,
                                   sizeof(msg)))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
    return 0;
}

static void digest_hex(const uint8_t d[32], char hex[65])
{
    static const char x[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = x[d[i] >> 4];
        hex[2 * i + 1] = x[d[i] & 15];
    }
    hex[64] = '\0';
}

/* ---- upload ------------------------------------------------------------------- */

static int hash_fd(int fd, uint8_t *buf, const char *local, int64_t size, uint8_t digest[32],
                   struct track_err *err)
{
    crypto_generichash_state h;
    int64_t off = 0;

    crypto_generichash_init(&h, NULL, 0, 32);
    while (off < size) {
        size_t want = size - off < (int64_t)CHUNK_BYTES ? (size_t)(size - off) : CHUNK_BYTES;
        ssize_t n = pread(fd, buf, want, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "reading %s: %s", local, strerror(errno));
        if (n == 0)
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s shrank while being read", local);
        crypto_generichash_update(&h, buf, (size_t)n);
        off += n;
    }
    crypto_generichash_final(&h, digest, 32);
    return 0;
}

/* TRACK_STREAM_MIN (bytes; tests and measurements) or STREAM_MIN; a file of
 * at least this size tries a streaming begin. */
static int64_t stream_min(void)
{
    const char *e = getenv("TRACK_STREAM_MIN");
    char *end = NULL;
    long long n = e && *e ? strtoll(e, &end, 10) : -1;
    return n < 0 || !end || *end ? STREAM_MIN : n;
}

/* Errors after which a fresh begin may succeed: the daemon went away or
 * restarted (the upload is found again, or the blob is there), or lost
 * the upload. */
static int retryable(int rc)
{
    return rc == TRACK_E_UNAVAILABLE || rc == TRACK_E_NOT_FOUND;
}

static int put_file(struct track_client *c, const char *run, const char *local, const char *apath,
                    uint8_t *buf, struct track_artifact_put_stats *stats, struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    uint8_t digest[32];
    char id[40] = "";
    struct stat sb;
    int fd, rc, attempts = 0, invalid_retried = 0, stream;
    int64_t size, off = 0, prev_have = -1;

    fd = open(local, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot open %s: %s", local, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s is not a regular file", local);
        goto out;
    }
    size = (int64_t)sb.st_size;
    stream = size >= stream_min();
    if (stream)
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    else if ((rc = hash_fd(fd, buf, local, size, digest, err)) != 0)
        goto out;
again:
    if (rs)
        track__v1__response__free_unpacked(rs, NULL);
    rs = NULL;
    if (attempts > 0) {
        /* a daemon restarting, or an upload busy sealing in another
         * thread: give it a moment, more each time */
        int ms = 100 << (attempts < 5 ? attempts : 5);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ArtifactBegin b = TRACK__V1__ARTIFACT_BEGIN__INIT;
        b.run = (char *)run;
        b.path = (char *)apath;
        b.size = size;
        if (stream) {
            b.stream = 1;
            b.resume_upload_id = id; /* "" the first time */
        } else {
            b.digest.data = digest;
            b.digest.len = 32;
        }
        rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_BEGIN;
        rq.artifact_begin = &b;
        rc = roundtrip(c, &rq, TRACK__V1__RESPONSE__RESULT_ARTIFACT_BEGIN, OP_TIMEOUT_MS, &rs, err);
        if (rc == TRACK_E_UNAVAILABLE && ++attempts <= RETRIES)
            goto again;
        /* a trackd from before streaming begins wants a digest; one that
         * may hold a blob of this size wants one too (size_known): hash,
         * and begin as for a small file */
        if (stream &&
            ((rc == TRACK_E_INVALID_ARGUMENT && !id[0] && err && strstr(err->msg, "digest")) ||
             (rc == 0 && rs->artifact_begin->size_known))) {
            stream = 0;
            id[0] = '\0';
            if ((rc = hash_fd(fd, buf, local, size, digest, err)) != 0)
                goto out;
            goto again;
        }
        if (rc)
            goto out;
        Track__V1__ArtifactBeginResult *r = rs->artifact_begin;
        if (r->exists) {
            if (stats) {
                stats->files++;
                stats->bytes += size;
                stats->deduped++;
            }
            goto out;
        }
        if (!r->upload_id || strlen(r->upload_id) >= sizeof(id) || r->have < 0 || r->have > size) {
            rc = cl_fail(err, TRACK_E_INTERNAL, "malformed reply from server: artifact_begin");
            goto out;
        }
        snprintf(id, sizeof(id), "%s", r->upload_id);
        off = r->have;
        /* another refusal is worth a retry as long as the upload moves on
         * (two clients sending the same file take turns) */
        if (off > prev_have)
            invalid_retried = 0;
        prev_have = off;
    }
    if (off < size) {
        struct cl_send_result sr;
        rc = cl_artifact_send(c, fd, local, id, size, off, buf, CHUNK_BYTES, &sr, err);
        if (stats)
            stats->sent += sr.sent;
        if (sr.have > prev_have)
            invalid_retried = 0; /* it moved on: another refusal is worth a retry */
        /* a chunk that arrived although its reply did not is refused on
         * retry (not the next offset): a fresh begin says where to go on */
        if ((retryable(rc) && ++attempts <= RETRIES) ||
            (rc == TRACK_E_INVALID_ARGUMENT && !invalid_retried++))
            goto again;
        if (rc)
            goto out;
    }
    {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ArtifactCommit cm = TRACK__V1__ARTIFACT_COMMIT__INIT;
        cm.upload_id = id;
        cm.run = (char *)run;
        cm.path = (char *)apath;
        rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_COMMIT;
        rq.artifact_commit = &cm;
        track__v1__response__free_unpacked(rs, NULL);
        rs = NULL;
        rc = roundtrip(c, &rq, TRACK__V1__RESPONSE__RESULT_ARTIFACT_COMMIT, LONG_TIMEOUT_MS, &rs,
                       err);
        if (retryable(rc) && ++attempts <= RETRIES)
            goto again;
        if (rc)
            goto out;
    }
    if (stats) {
        stats->files++;
        stats->bytes += size;
    }
out:
    if (rs)
        track__v1__response__free_unpacked(rs, NULL);
    close(fd);
    if (rc && err && err->code == rc && !strstr(err->msg, apath)) {
        size_t used = strlen(err->msg);
        if (used < sizeof(err->msg))
            snprintf(err->msg + used, sizeof(err->msg) - used, " (artifact \"%.200s\")", apath);
    }
    return rc;
}

/* The files of an upload: local path and artifact path, both malloc'd. */
struct put_item {
    char *local, *apath;
};
struct put_list {
    struct put_item *items;
    size_t n, cap;
};

static int list_add(struct put_list *l, const char *local, const char *apath, struct track_err *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        void *p = realloc(l->items, cap * sizeof(*l->items));
        if (!p)
            return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory listing files");
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n].local = strdup(local);
    l->items[l->n].apath = strdup(apath);
    if (!l->items[l->n].local || !l->items[l->n].apath) {
        free(l->items[l->n].local);
        free(l->items[l->n].apath);
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory listing files");
    }
    l->n++;
    return track_artifact_check_path(apath, err);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the files under `dir` (shown as `shown`), whose real path is
 * inside `root` (a realpath), as artifact paths under `prefix`. A symbolic
 * link is followed only when what it points at stays inside root. */
static int walk(const char *root, const char *dir, const char *shown, const char *prefix, int depth,
                struct put_list *l, struct track_err *err)
{
    DIR *d;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (depth > WALK_DEPTH)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "%s: more than %d directory levels (a loop of symbolic links?)", shown,
                       WALK_DEPTH);
    d = opendir(dir);
    if (!d)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot read %s: %s", shown, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            void *p = realloc(names, cap * sizeof(*names));
            if (!p) {
                rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory listing %s", shown);
                goto out;
            }
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory listing %s", shown);
            goto out;
        }
        n++;
    }
    qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n && !rc; i++) {
        char local[PATH_MAX + 256], show[PATH_MAX + 256], apath[LIMIT_ARTIFACT_PATH + 256];
        char real[PATH_MAX];
        struct stat sb;
        if ((size_t)snprintf(local, sizeof(local), "%s/%s", dir, names[i]) >= sizeof(local) ||
            (size_t)snprintf(show, sizeof(show), "%s/%s", shown, names[i]) >= sizeof(show)) {
            rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s/%s: path longer than %d bytes", dir,
                         names[i], PATH_MAX);
            break;
        }
        if ((size_t)snprintf(apath, sizeof(apath), "%s/%s", prefix, names[i]) >= sizeof(apath)) {
            rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                         "%s: its artifact path would be longer than 1024 bytes", show);
            break;
        }
        if (lstat(local, &sb) != 0) {
            rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s: %s", show, strerror(errno));
            break;
        }
        if (S_ISLNK(sb.st_mode)) {
            size_t rl = strlen(root);
            if (!realpath(local, real)) {
                rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                             "%s: symbolic link that leads nowhere (%s); refused", show,
                             strerror(errno));
                break;
            }
            if (strncmp(real, root, rl) != 0 || real[rl] != '/') {
                rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                             "%s: symbolic link to %s, outside the directory uploaded; refused "
                             "(copy the file in to store it)",
                             show, real);
                break;
            }
            if (stat(local, &sb) != 0) {
                rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s: %s", show, strerror(errno));
                break;
            }
        }
        if (S_ISDIR(sb.st_mode))
            rc = walk(root, local, show, apath, depth + 1, l, err);
        else if (S_ISREG(sb.st_mode))
            rc = list_add(l, local, apath, err);
        else
            rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                         "%s: not a regular file or directory; refused", show);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

/* The last segment of a local path, trailing slashes ignored. */
static void base_name(const char *p, char *out, size_t cap)
{
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        len--;
    const char *s = p + len;
    while (s > p && s[-1] != '/')
        s--;
    snprintf(out, cap, "%.*s", (int)(p + len - s), s);
}

int track_artifact_put_ex(struct track_client *c, const char *local_path, const char *artifact_path,
                          struct track_artifact_put_stats *stats, struct track_err *err)
{
    struct put_list l = {0};
    char base[LIMIT_ARTIFACT_PATH + 8];
    struct stat sb;
    uint8_t *buf = NULL;
    int rc;

    if (stats)
        memset(stats, 0, sizeof(*stats));
    if (!c->has_run)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "artifact: no current run (track_run_start or track_run_use first)");
    if (!local_path || !local_path[0])
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "artifact: local path is missing");
    if (artifact_path)
        snprintf(base, sizeof(base), "%s", artifact_path);
    else
        base_name(local_path, base, sizeof(base));
    if ((rc = track_artifact_check_path(base, err)) != 0)
        return rc;
    if (stat(local_path, &sb) != 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot read %s: %s", local_path,
                       strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        char root[PATH_MAX];
        if (!realpath(local_path, root))
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot resolve %s: %s", local_path,
                           strerror(errno));
        rc = walk(root, local_path, local_path, base, 0, &l, err);
    } else {
        rc = list_add(&l, local_path, base, err);
    }
    /* every path is checked before the first byte goes */
    if (rc)
        goto out;
    buf = malloc(CHUNK_BYTES);
    if (!buf) {
        rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < l.n && !rc; i++)
        rc = put_file(c, c->run_hex, l.items[i].local, l.items[i].apath, buf, stats, err);
out:
    for (size_t i = 0; i < l.n; i++) {
        free(l.items[i].local);
        free(l.items[i].apath);
    }
    free(l.items);
    free(buf);
    return rc;
}

int track_artifact_put(struct track_client *c, const char *local_path, const char *artifact_path,
                       struct track_err *err)
{
    return track_artifact_put_ex(c, local_path, artifact_path, NULL, err);
}

/* ---- list ------------------------------------------------------------------------ */

static const char *run_or_current(struct track_client *c, const char *run)
{
    return run && run[0] ? run : c->has_run ? c->run_hex : NULL;
}

int track_artifact_list(struct track_client *c, const char *run, const char *prefix,
                        track_artifact_cb cb, void *ctx, struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    char after[LIMIT_ARTIFACT_PATH + 1] = "";
    int rc = 0, more = 1;

    if (!(run = run_or_current(c, run)))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "artifact: no run given and no current run");
    while (more && !rc) {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ArtifactList q = TRACK__V1__ARTIFACT_LIST__INIT;
        q.run = (char *)run;
        q.prefix = (char *)(prefix ? prefix : "");
        q.after = after;
        rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_LIST;
        rq.artifact_list = &q;
        rc = roundtrip(c, &rq, TRACK__V1__RESPONSE__RESULT_ARTIFACT_LIST, OP_TIMEOUT_MS, &rs, err);
        if (rc)
            break;
        Track__V1__ArtifactListResult *r = rs->artifact_list;
        more = r->more && r->n_artifacts > 0;
        for (size_t i = 0; i < r->n_artifacts && !rc; i++) {
            Track__V1__ArtifactInfo *a = r->artifacts[i];
            struct track_artifact_info info = {0};
            if (!a || !a->path || a->digest.len != 32 || strlen(a->path) > LIMIT_ARTIFACT_PATH) {
                rc = cl_fail(err, TRACK_E_INTERNAL, "malformed reply from server: artifact_list");
                break;
            }
            info.path = a->path;
            memcpy(info.digest, a->digest.data, 32);
            digest_hex(info.digest, info.digest_hex);
            info.size = a->size;
            info.logged_ms = a->logged_ms;
            if (r->run_id.len == 16)
                memcpy(info.run.b, r->run_id.data, 16);
            snprintf(after, sizeof(after), "%s", a->path);
            rc = cb(ctx, &info);
        }
        track__v1__response__free_unpacked(rs, NULL);
        rs = NULL;
    }
    return rc;
}

/* ---- download ---------------------------------------------------------------------- */

/* Opens (creating when missing) each directory of `rel` but its last
 * segment below dirfd, never following a symbolic link: *out is the
 * directory that holds the last segment, *leaf points at it in rel. */
static int open_parent(int dirfd, const char *rel, const char *shown, int *out, const char **leaf,
                       struct track_err *err)
{
    char seg[LIMIT_ARTIFACT_PATH + 1];
    int fd = dup(dirfd);
    const char *p = rel;

    if (fd < 0)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "dup: %s", strerror(errno));
    for (const char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        snprintf(seg, sizeof(seg), "%.*s", (int)(slash - p), p);
        if (mkdirat(fd, seg, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            close(fd);
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot create directory for %s: %s",
                           shown, strerror(e));
        }
        int next = openat(fd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        if (next < 0)
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                           "refusing to write %s: \"%s\" is not a directory (%s); nothing is "
                           "written through a symbolic link",
                           shown, seg, strerror(e));
        fd = next;
    }
    *out = fd;
    *leaf = p;
    return 0;
}

/* Streams blob `digest` (`size` bytes) into `leaf` of directory dirfd:
 * LEAF.tmp first, checked against the digest, fsynced when c asks for it,
 * renamed. */
static int fetch_blob(struct track_client *c, const uint8_t digest[32], int64_t size, int dirfd,
                      const char *leaf, const char *shown, struct track_err *err)
{
    crypto_generichash_state h;
    uint8_t got[32];
    char tmp[LIMIT_ARTIFACT_PATH + 16];
    int64_t off = 0;
    int fd, rc = 0;

    snprintf(tmp, sizeof(tmp), "%s.tmp", leaf);
    unlinkat(dirfd, tmp, 0);
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot create %s.tmp: %s", shown,
                       strerror(errno));
    crypto_generichash_init(&h, NULL, 0, 32);
    rc = cl_blob_fetch(c, digest, size, fd, shown, &h, err);
    if (rc)
        goto out;
    off = size;
    crypto_generichash_final(&h, got, 32);
    if (off != size || sodium_memcmp(got, digest, 32) != 0) {
        char want_hex[65], got_hex[65];
        digest_hex(digest, want_hex);
        digest_hex(got, got_hex);
        rc = cl_fail(err, TRACK_E_INTERNAL,
                     "%s: the bytes received (%lld, digest %s) do not match the artifact (%lld, "
                     "digest %s); nothing kept",
                     shown, (long long)off, got_hex, (long long)size, want_hex);
        goto out;
    }
    if (c->artifact_fsync && fsync(fd) != 0) {
        rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "fsync %s.tmp: %s", shown, strerror(errno));
        goto out;
    }
    if (renameat(dirfd, tmp, dirfd, leaf) != 0) {
        rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot create %s: %s", shown, strerror(errno));
        goto out;
    }
    if (c->artifact_fsync)
        fsync(dirfd);
out:
    close(fd);
    if (rc)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

/* fetch_blob into the file local_path, in a directory that exists. */
static int fetch_to_path(struct track_client *c, const uint8_t digest[32], int64_t size,
                         const char *local_path, struct track_err *err)
{
    char dir[PATH_MAX], leaf[PATH_MAX];
    int dfd, rc;

    base_name(local_path, leaf, sizeof(leaf));
    snprintf(dir, sizeof(dir), "%.*s", (int)(strlen(local_path) - strlen(leaf)), local_path);
    if (!leaf[0] || strcmp(leaf, ".") == 0 || strcmp(leaf, "..") == 0 ||
        local_path[strlen(local_path) - 1] == '/')
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "artifact: %s names a directory, not a file",
                       local_path);
    dfd = open(dir[0] ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot open directory %s: %s",
                       dir[0] ? dir : ".", strerror(errno));
    rc = fetch_blob(c, digest, size, dfd, leaf, local_path, err);
    close(dfd);
    return rc;
}

void track_artifact_set_fsync(struct track_client *c, int on)
{
    c->artifact_fsync = on != 0;
}

int track_blob_get(struct track_client *c, const uint8_t digest[32], int64_t size,
                   const char *local_path, struct track_err *err)
{
    if (!digest)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "blob: digest is missing");
    if (size < 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "blob: size %lld is negative",
                       (long long)size);
    if (!local_path || !local_path[0])
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "blob: local path is missing");
    return fetch_to_path(c, digest, size, local_path, err);
}

struct dir_get {
    struct track_client *c;
    const char *prefix; /* "PATH/" */
    const char *local;
    int rootfd;
    struct track_artifact_get_stats *stats;
    struct track_err *err;
};

static int dir_get_cb(void *ctx, const struct track_artifact_info *a)
{
    struct dir_get *g = ctx;
    const char *rel = a->path + strlen(g->prefix), *leaf = NULL;
    char shown[PATH_MAX + LIMIT_ARTIFACT_PATH + 2];
    int dfd = -1, rc;

    snprintf(shown, sizeof(shown), "%s/%s", g->local, rel);
    /* whatever the daemon says, a path that could climb out is refused */
    if (strncmp(a->path, g->prefix, strlen(g->prefix)) != 0 ||
        track_artifact_check_path(rel, g->err))
        return cl_fail(g->err, TRACK_E_INTERNAL,
                       "the daemon listed \"%s\", which is not a safe path under \"%s\"; refused",
                       a->path, g->prefix);
    if (g->rootfd < 0) {
        /* made at the first file, so a path with nothing under it makes nothing */
        if (mkdir(g->local, 0777) != 0 && errno != EEXIST)
            return cl_fail(g->err, TRACK_E_INVALID_ARGUMENT, "cannot create directory %s: %s",
                           g->local, strerror(errno));
        g->rootfd = open(g->local, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (g->rootfd < 0)
            return cl_fail(g->err, TRACK_E_INVALID_ARGUMENT, "cannot open directory %s: %s",
                           g->local, strerror(errno));
    }
    if ((rc = open_parent(g->rootfd, rel, shown, &dfd, &leaf, g->err)) != 0)
        return rc;
    rc = fetch_blob(g->c, a->digest, a->size, dfd, leaf, shown, g->err);
    close(dfd);
    if (!rc && g->stats) {
        g->stats->files++;
        g->stats->bytes += a->size;
    }
    return rc;
}

int track_artifact_get_ex(struct track_client *c, const char *run, const char *artifact_path,
                          const char *local_path, struct track_artifact_get_stats *stats,
                          struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    char prefix[LIMIT_ARTIFACT_PATH + 2];
    int rc, dfd = -1;

    if (stats)
        memset(stats, 0, sizeof(*stats));
    if (!(run = run_or_current(c, run)))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "artifact: no run given and no current run");
    if ((rc = track_artifact_check_path(artifact_path, err)) != 0)
        return rc;
    if (!local_path || !local_path[0])
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "artifact: local path is missing");
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactGet q = TRACK__V1__ARTIFACT_GET__INIT;
    q.run = (char *)run;
    q.path = (char *)artifact_path;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_GET;
    rq.artifact_get = &q;
    rc = roundtrip(c, &rq, TRACK__V1__RESPONSE__RESULT_ARTIFACT_GET, OP_TIMEOUT_MS, &rs, err);
    if (rc == 0) {
        Track__V1__ArtifactInfo *a = rs->artifact_get->artifact;
        uint8_t digest[32];
        int64_t size;
        if (!a || a->digest.len != 32 || a->size < 0) {
            rc = cl_fail(err, TRACK_E_INTERNAL, "malformed reply from server: artifact_get");
            goto out;
        }
        memcpy(digest, a->digest.data, 32);
        size = a->size;
        track__v1__response__free_unpacked(rs, NULL);
        rs = NULL;
        rc = fetch_to_path(c, digest, size, local_path, err);
        if (!rc && stats) {
            stats->files = 1;
            stats->bytes = size;
        }
        goto out;
    }
    if (rc != TRACK_E_NOT_FOUND)
        goto out;
    /* not a file: a directory, every artifact under PATH/ */
    snprintf(prefix, sizeof(prefix), "%s/", artifact_path);
    struct track_artifact_get_stats mine = {0};
    struct dir_get g = {.c = c,
                        .prefix = prefix,
                        .local = local_path,
                        .rootfd = -1,
                        .stats = stats ? stats : &mine,
                        .err = err};
    rc = track_artifact_list(c, run, prefix, dir_get_cb, &g, err);
    dfd = g.rootfd;
    if (rc == 0 && g.stats->files == 0)
        rc = cl_fail(err, TRACK_E_NOT_FOUND, "run %s has no artifact \"%s\" (nor any under %s)",
                     run, artifact_path, prefix);
out:
    if (rs)
        track__v1__response__free_unpacked(rs, NULL);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

int track_artifact_get(struct track_client *c, const char *run, const char *artifact_path,
                       const char *local_path, struct track_err *err)
{
    return track_artifact_get_ex(c, run, artifact_path, local_path, NULL, err);
}

/* ---- verify ---------------------------------------------------------------------- */

int track_artifact_verify(struct track_client *c, const char *run,
                          struct track_artifact_verify_result *out, track_artifact_problem_cb cb,
                          void *ctx, struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactVerify q = TRACK__V1__ARTIFACT_VERIFY__INIT;
    int rc;

    if (out)
        memset(out, 0, sizeof(*out));
    q.run = (char *)(run ? run : "");
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_VERIFY;
    rq.artifact_verify = &q;
    rc = roundtrip(c, &rq, TRACK__V1__RESPONSE__RESULT_ARTIFACT_VERIFY, LONG_TIMEOUT_MS, &rs, err);
    if (rc)
        return rc;
    Track__V1__ArtifactVerifyResult *r = rs->artifact_verify;
    if (out) {
        out->checked = r->checked;
        out->bytes = r->bytes;
        out->problems = r->problems_total;
    }
    for (size_t i = 0; cb && i < r->n_problems && !rc; i++) {
        Track__V1__ArtifactProblem *p = r->problems[i];
        struct track_artifact_problem pr = {0};
        if (!p || p->digest.len != 32) {
            rc = cl_fail(err, TRACK_E_INTERNAL, "malformed reply from server: artifact_verify");
            break;
        }
        snprintf(pr.run_hex, sizeof(pr.run_hex), "%s", p->run ? p->run : "");
        pr.path = p->path ? p->path : "";
        digest_hex(p->digest.data, pr.digest_hex);
        pr.problem = p->problem ? p->problem : "";
        rc = cb(ctx, &pr);
    }
    track__v1__response__free_unpacked(rs, NULL);
    return rc;
}
