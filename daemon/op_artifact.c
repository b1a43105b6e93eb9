/*
 * op_artifact.c: the handlers of artifacts, files kept with a run in the
 * blob store (storage/blob.h) and named in the artifacts table (store.h).
 *
 * Upload. ArtifactBegin (a write, in the loop's group commit) checks the
 * path and the run, then: a blob of that digest stored already answers
 * exists and commits the (run, path) row at once (dedup: no bytes move); an
 * upload in flight with that (size, digest) is resumed (its id and the
 * bytes it has); else a new upload begins. A streaming begin (no digest:
 * the client did not hash the file) answers size_known when a blob of that
 * size may be stored (blob_size_seen), so the client hashes and begins with
 * the digest, and otherwise begins an upload that the seal names by what
 * its bytes hash to (dedup at the seal instead); only its own client
 * resumes one (resume_upload_id), and gc drops those idle for an hour.
 * ArtifactChunk runs on a read
 * worker and touches files only (no transaction), so a big upload never
 * holds the loop that answers other clients' writes: the write of each
 * chunk, and when a chunk completes the upload, its seal (digest check,
 * fsync in --durability full, rename: blob_upload_put) happen there. A client keeps several
 * chunks in flight (on several connections); the workers write them at
 * their offsets at once, within the store's window, and the hash follows
 * in order (blob.h, Uploads); a chunk's reply says how many bytes are
 * hashed in order so far, the upload's size once sealed. A sealed upload waits in
 * a small table (its pin held) for ArtifactCommit, a write in the loop,
 * which commits the row. A pin is released only after the group commit
 * that made its row durable (srv_artifact_after_commit), so gc, which
 * keeps every blob pinned during its epoch, never removes a blob a row is
 * about to point at. A sealed upload whose commit never comes is unpinned
 * after SEAL_KEEP_MS; its blob is then unreferenced, for gc to judge. After
 * a restart the table is empty: the client's commit answers NOT_FOUND and
 * its retry begins again, which finds the blob (exists).
 *
 * Download. ArtifactGet (a read) answers a row's digest and size;
 * ArtifactRead (a worker, files only) answers up to 1 MiB of a blob at an
 * offset; the client checks the digest. ArtifactVerify re-hashes blobs on
 * a worker and names the rows whose blob is missing or corrupt.
 *
 * srv->blobs may be NULL (a harness without a data directory): every
 * handler then answers UNAVAILABLE.
 */
#include "op.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "track_limits.h"

#define SEAL_SLOTS      BLOB_UPLOADS_MAX
#define SEAL_KEEP_MS    (10 * 60 * 1000)
#define VERIFY_PROBLEMS 100  /* named in one reply */
#define LIST_PAGE_ROWS  2000 /* rows in one ArtifactList reply (under 3 MiB) */

/* ---- sealed uploads waiting for their commit (any thread) ------------------ */

struct sealed {
    int used;
    char id[BLOB_UPLOAD_ID_HEX + 1];
    uint8_t digest[BLOB_DIGEST_BYTES];
    uint64_t size;
    int64_t at_ms;
};

static pthread_mutex_t seal_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sealed seals[SEAL_SLOTS];

/* Unpins sealed uploads older than SEAL_KEEP_MS (their commit never came).
 * With seal_lock held. */
static void seal_expire(struct blob_store *bs, int64_t now)
{
    for (int i = 0; i < SEAL_SLOTS; i++)
        if (seals[i].used && now - seals[i].at_ms > SEAL_KEEP_MS) {
            blob_unpin(bs, seals[i].digest, NULL);
            seals[i].used = 0;
        }
}

/* Keeps a sealed upload (and the pin commit handed over) for its commit; a
 * full table gives up its oldest entry. */
static void seal_add(struct blob_store *bs, const char *id, const uint8_t digest[32], uint64_t size)
{
    int64_t now = wire_now_ms();
    int slot = -1, oldest = 0;

    pthread_mutex_lock(&seal_lock);
    seal_expire(bs, now);
    for (int i = 0; i < SEAL_SLOTS && slot < 0; i++)
        if (!seals[i].used)
            slot = i;
    if (slot < 0) {
        for (int i = 1; i < SEAL_SLOTS; i++)
            if (seals[i].at_ms < seals[oldest].at_ms)
                oldest = i;
        blob_unpin(bs, seals[oldest].digest, NULL);
        slot = oldest;
    }
    seals[slot].used = 1;
    memcpy(seals[slot].id, id, sizeof(seals[slot].id));
    memcpy(seals[slot].digest, digest, BLOB_DIGEST_BYTES);
    seals[slot].size = size;
    seals[slot].at_ms = now;
    pthread_mutex_unlock(&seal_lock);
}

/* 1 when upload `id` is sealed and waits for its commit (*size set). */
static int seal_has(struct blob_store *bs, const char *id, uint64_t *size)
{
    int found = 0;

    pthread_mutex_lock(&seal_lock);
    seal_expire(bs, wire_now_ms());
    for (int i = 0; i < SEAL_SLOTS && !found; i++)
        if (seals[i].used && strcmp(seals[i].id, id) == 0) {
            *size = seals[i].size;
            found = 1;
        }
    pthread_mutex_unlock(&seal_lock);
    return found;
}

/* Takes the sealed upload `id` out of the table: 1 (digest, size and its
 * pin now the caller's), 0 when it is not there. */
static int seal_take(struct blob_store *bs, const char *id, uint8_t digest[32], uint64_t *size)
{
    int found = 0;

    pthread_mutex_lock(&seal_lock);
    seal_expire(bs, wire_now_ms());
    for (int i = 0; i < SEAL_SLOTS && !found; i++)
        if (seals[i].used && strcmp(seals[i].id, id) == 0) {
            memcpy(digest, seals[i].digest, BLOB_DIGEST_BYTES);
            *size = seals[i].size;
            seals[i].used = 0;
            found = 1;
        }
    pthread_mutex_unlock(&seal_lock);
    return found;
}

/* ---- pins released after the group commit (the loop's thread) ---------------- */

static uint8_t (*deferred)[BLOB_DIGEST_BYTES];
static size_t n_deferred, cap_deferred;

/* Releases `digest`'s pin once the transaction of this call has committed
 * (or rolled back): srv_artifact_after_commit. */
static void unpin_after_commit(struct blob_store *bs, const uint8_t digest[32])
{
    if (n_deferred == cap_deferred) {
        size_t cap = cap_deferred ? cap_deferred * 2 : 64;
        void *p = realloc(deferred, cap * BLOB_DIGEST_BYTES);
        if (!p) {
            /* out of memory: keeping the pin forever is the safe side */
            return;
        }
        deferred = p;
        cap_deferred = cap;
    }
    memcpy(deferred[n_deferred++], digest, BLOB_DIGEST_BYTES);
    (void)bs;
}

void srv_artifact_after_commit(struct srv *srv)
{
    for (size_t i = 0; i < n_deferred; i++)
        if (srv->blobs)
            blob_unpin(srv->blobs, deferred[i], NULL);
    n_deferred = 0;
}

/* ---- checks ---------------------------------------------------------------------- */

static struct blob_store *blobs_of(struct srv_call *call)
{
    if (!call->srv || !call->srv->blobs) {
        srv_op_fail(call, TRACK__V1__CODE__UNAVAILABLE, "this trackd has no blob store");
        return NULL;
    }
    return call->srv->blobs;
}

static int check_path(struct srv_call *call, const char *field, const char *path)
{
    char msg[300];
    if (limits_check_artifact_path(field, path, path ? strlen(path) : 0, msg, sizeof(msg)))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    return 0;
}

static int check_digest(struct srv_call *call, const char *field, ProtobufCBinaryData d)
{
    if (d.len != BLOB_DIGEST_BYTES)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "%s: must be %d bytes (BLAKE2b-256), got %zu", field, BLOB_DIGEST_BYTES,
                           d.len);
    return 0;
}

static int check_upload_id(struct srv_call *call, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    int ok = n == BLOB_UPLOAD_ID_HEX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
    if (!ok)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "upload_id: \"%.40s\" is not an upload id (%d lowercase hex)",
                           id ? id : "", BLOB_UPLOAD_ID_HEX);
    return 0;
}

static ProtobufCBinaryData arena_bytes(struct srv_call *call, const void *p, size_t n)
{
    ProtobufCBinaryData b = {0};
    b.data = srv_alloc_raw(&call->arena, n ? n : 1);
    if (b.data) {
        memcpy(b.data, p, n);
        b.len = n;
    }
    return b;
}

/* Commits the (run, path) row of a stored blob and releases its pin after
 * the group commit, whatever happens. */
static int put_row(struct srv_call *call, struct blob_store *bs, const uint8_t run[16],
                   const char *path, const uint8_t digest[32], uint64_t size)
{
    struct store_err err = {0};
    int rc = store_artifact_put(call->st, run, path, digest, (int64_t)size, wire_now_ms(), &err);
    unpin_after_commit(bs, digest);
    return rc ? srv_op_fail_store(call, rc, &err) : 0;
}

/* ---- upload ---------------------------------------------------------------------- */

static const uint8_t zero_digest[BLOB_DIGEST_BYTES];

/* The streaming half of ArtifactBegin (stream set, no digest): resumes the
 * client's own upload, or answers size_known when a blob of that size may
 * be stored (the client hashes and begins with the digest), or begins a
 * streaming upload. *known, id and *have for the reply. */
static int begin_stream(struct srv_call *call, struct blob_store *bs, const char *resume,
                        uint64_t size, int *known, char id[BLOB_UPLOAD_ID_HEX + 1], uint64_t *have)
{
    struct store_err err = {0};
    uint8_t digest[BLOB_DIGEST_BYTES];
    uint64_t usize = 0;
    int rc;

    if (resume && resume[0]) {
        if (check_upload_id(call, resume))
            return -1;
        if (seal_has(bs, resume, &usize)) {
            rc = 0; /* sealed; the chunk's reply was lost: only the commit is missing */
            *have = usize;
        } else {
            rc = blob_upload_status(bs, resume, have, &usize, digest, &err);
            if (rc == STORE_E_NOT_FOUND)
                goto fresh; /* dropped or expired: begin again */
            if (rc)
                return srv_op_fail_store(call, rc, &err);
            if (memcmp(digest, zero_digest, BLOB_DIGEST_BYTES) != 0)
                return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                                   "resume_upload_id: upload %s was begun with a digest, not "
                                   "streaming; begin with that digest to resume it",
                                   resume);
        }
        if (usize != size)
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                               "size: %llu, but streaming upload %s was begun with %llu bytes",
                               (unsigned long long)size, resume, (unsigned long long)usize);
        memcpy(id, resume, BLOB_UPLOAD_ID_HEX + 1);
        return 0;
    }
fresh:
    *have = 0;
    if (blob_size_seen(bs, size)) {
        *known = 1;
        return 0;
    }
    rc = blob_upload_begin_stream(bs, size, id, &err);
    return rc ? srv_op_fail_store(call, rc, &err) : 0;
}

int srv_op_artifact_begin(struct srv_call *call)
{
    const Track__V1__ArtifactBegin *q = call->rq->artifact_begin;
    struct blob_store *bs = blobs_of(call);
    struct store_err err = {0};
    char id[BLOB_UPLOAD_ID_HEX + 1] = "";
    uint64_t have = 0, stored = 0;
    uint8_t run[16];
    int exists = 0, known = 0, rc;

    if (!bs || check_path(call, "path", q->path))
        return -1;
    if (q->stream && q->digest.len != 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "digest: a streaming begin (stream set) carries none, got %zu bytes",
                           q->digest.len);
    if (!q->stream && q->resume_upload_id && q->resume_upload_id[0])
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "resume_upload_id: only a streaming begin (stream set) takes one");
    if (!q->stream && check_digest(call, "digest", q->digest))
        return -1;
    if (q->size < 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "size: %lld is negative",
                           (long long)q->size);
    if (srv_op_resolve_run(call, "run", q->run, run))
        return -1;
    if (q->stream) {
        if (begin_stream(call, bs, q->resume_upload_id, (uint64_t)q->size, &known, id, &have))
            return -1;
        goto reply;
    }
    if (memcmp(q->digest.data, zero_digest, BLOB_DIGEST_BYTES) == 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "digest: all zero bytes is no BLAKE2b-256 digest of any file");
    rc = blob_upload_find(bs, (uint64_t)q->size, q->digest.data, id, &err);
    if (rc == 0) {
        rc = blob_upload_status(bs, id, &have, NULL, NULL, &err);
        if (rc)
            return srv_op_fail_store(call, rc, &err);
    } else if (rc == STORE_E_NOT_FOUND) {
        rc = blob_upload_begin(bs, (uint64_t)q->size, q->digest.data, id, &exists, &err);
        if (rc)
            return srv_op_fail_store(call, rc, &err);
    } else {
        return srv_op_fail_store(call, rc, &err);
    }
    if (exists) {
        rc = blob_size(bs, q->digest.data, &stored, &err);
        if (rc == 0 && stored != (uint64_t)q->size) {
            unpin_after_commit(bs, q->digest.data);
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                               "size: %lld, but the blob of that digest has %llu bytes",
                               (long long)q->size, (unsigned long long)stored);
        }
        if (rc) {
            unpin_after_commit(bs, q->digest.data);
            return srv_op_fail_store(call, rc, &err);
        }
        if (put_row(call, bs, run, q->path, q->digest.data, stored))
            return -1;
    }
reply:;
    Track__V1__ArtifactBeginResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__artifact_begin_result__init(r);
    r->exists = exists;
    r->size_known = known;
    r->upload_id = srv_strdup(&call->arena, id);
    if (!r->upload_id)
        return srv_op_oom(call);
    r->have = (int64_t)have;
    r->chunk_bytes = (int32_t)LIMIT_ARTIFACT_CHUNK;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_ARTIFACT_BEGIN;
    call->rs->artifact_begin = r;
    return 0;
}

int srv_op_artifact_chunk(struct srv_call *call)
{
    const Track__V1__ArtifactChunk *q = call->rq->artifact_chunk;
    struct blob_store *bs = blobs_of(call);
    struct store_err err = {0};
    struct blob_put_result pr;
    int rc;

    if (!bs || check_upload_id(call, q->upload_id))
        return -1;
    if (q->data.len == 0 || q->data.len > LIMIT_ARTIFACT_CHUNK)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "data: %zu bytes; a chunk holds 1 to %u bytes", q->data.len,
                           LIMIT_ARTIFACT_CHUNK);
    if (q->offset < 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "offset: %lld is negative",
                           (long long)q->offset);
    /* chunks of one upload may be written by several workers at once, in
     * any order within the window; the one whose hashing reaches the last
     * byte seals here, on the worker (hash check, fsync when full, rename) */
    rc = blob_upload_put(bs, q->upload_id, (uint64_t)q->offset, q->data.data, q->data.len, 1, &pr,
                         &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    if (pr.sealed)
        seal_add(bs, q->upload_id, pr.digest, pr.size);
    Track__V1__ArtifactChunkResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__artifact_chunk_result__init(r);
    r->have = (int64_t)pr.have;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_ARTIFACT_CHUNK;
    call->rs->artifact_chunk = r;
    return 0;
}

int srv_op_artifact_commit(struct srv_call *call)
{
    const Track__V1__ArtifactCommit *q = call->rq->artifact_commit;
    struct blob_store *bs = blobs_of(call);
    struct store_err err = {0};
    uint8_t run[16], digest[BLOB_DIGEST_BYTES];
    uint64_t size = 0, have = 0;
    int rc;

    if (!bs || check_upload_id(call, q->upload_id) || check_path(call, "path", q->path) ||
        srv_op_resolve_run(call, "run", q->run, run))
        return -1;
    if (!seal_take(bs, q->upload_id, digest, &size)) {
        rc = blob_upload_status(bs, q->upload_id, &have, &size, digest, &err);
        if (rc == STORE_E_NOT_FOUND)
            return srv_op_fail(call, TRACK__V1__CODE__NOT_FOUND,
                               "upload %s is not in flight (committed already, dropped, or "
                               "trackd restarted); begin again",
                               q->upload_id);
        if (rc)
            return srv_op_fail_store(call, rc, &err);
        if (have != size)
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                               "upload %s has %llu of %llu bytes; send the rest from offset %llu",
                               q->upload_id, (unsigned long long)have, (unsigned long long)size,
                               (unsigned long long)have);
        /* nothing to seal on a worker (an empty file, or a seal that failed
         * on an I/O error): the bytes are few or already synced */
        rc = blob_upload_commit_ex(bs, q->upload_id, digest, &err);
        if (rc)
            return srv_op_fail_store(call, rc, &err);
    }
    if (put_row(call, bs, run, q->path, digest, size))
        return -1;
    Track__V1__ArtifactCommitResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__artifact_commit_result__init(r);
    r->digest = arena_bytes(call, digest, BLOB_DIGEST_BYTES);
    if (!r->digest.data)
        return srv_op_oom(call);
    r->size = (int64_t)size;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_ARTIFACT_COMMIT;
    call->rs->artifact_commit = r;
    return 0;
}

/* ---- reads ----------------------------------------------------------------------- */

static Track__V1__ArtifactInfo *info_of(struct srv_call *call, const struct store_artifact *a)
{
    Track__V1__ArtifactInfo *i = srv_alloc(&call->arena, sizeof(*i));
    if (!i)
        return NULL;
    track__v1__artifact_info__init(i);
    i->path = srv_strdup(&call->arena, a->path);
    i->digest = arena_bytes(call, a->digest, BLOB_DIGEST_BYTES);
    i->size = a->size;
    i->logged_ms = a->logged_ms;
    return i->path && i->digest.data ? i : NULL;
}

struct list_ctx {
    struct srv_call *call;
    Track__V1__ArtifactListResult *r;
    size_t cap;
    int oom;
};

static int list_cb(void *ctx, const struct store_artifact *a)
{
    struct list_ctx *l = ctx;
    Track__V1__ArtifactInfo *i = info_of(l->call, a);
    if (!i ||
        srv_op_grow(&l->call->arena, (void ***)&l->r->artifacts, l->r->n_artifacts, &l->cap)) {
        l->oom = 1;
        return STORE_E_INTERNAL;
    }
    l->r->artifacts[l->r->n_artifacts++] = i;
    return 0;
}

int srv_op_artifact_list(struct srv_call *call)
{
    const Track__V1__ArtifactList *q = call->rq->artifact_list;
    struct store_err err = {0};
    uint8_t run[16];
    int rc;

    if (srv_op_resolve_run(call, "run", q->run, run))
        return -1;
    Track__V1__ArtifactListResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__artifact_list_result__init(r);
    struct list_ctx l = {.call = call, .r = r};
    rc = store_artifact_list_after(call->st, run, q->prefix,
                                   q->after && q->after[0] ? q->after : NULL, LIST_PAGE_ROWS + 1,
                                   list_cb, &l, &err);
    if (l.oom)
        return srv_op_oom(call);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    if (r->n_artifacts > LIST_PAGE_ROWS) {
        r->n_artifacts = LIST_PAGE_ROWS;
        r->more = 1;
    }
    r->run_id = arena_bytes(call, run, 16);
    if (!r->run_id.data)
        return srv_op_oom(call);
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_ARTIFACT_LIST;
    call->rs->artifact_list = r;
    return 0;
}

int srv_op_artifact_get(struct srv_call *call)
{
    const Track__V1__ArtifactGet *q = call->rq->artifact_get;
    struct store_err err = {0};
    struct store_artifact a = {.path = q->path};
    uint8_t run[16];
    int rc;

    if (check_path(call, "path", q->path) || srv_op_resolve_run(call, "run", q->run, run))
        return -1;
    rc = store_artifact_get(call->st, run, q->path, a.digest, &a.size, &a.logged_ms, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    Track__V1__ArtifactGetResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__artifact_get_result__init(r);
    r->artifact = info_of(call, &a);
    if (!r->artifact)
        return srv_op_oom(call);
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_ARTIFACT_GET;
    call->rs->artifact_get = r;
    return 0;
}

int srv_op_artifact_read(struct srv_call *call)
{
    const Track__V1__ArtifactRead *q = call->rq->artifact_read;
    struct blob_store *bs = blobs_of(call);
    struct store_err err = {0};
    uint64_t size = 0;
    size_t want, got = 0;
    int fd = -1, rc;

    if (!bs || check_digest(call, "digest", q->digest))
        return -1;
    if (q->offset < 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "offset: %lld is negative",
                           (long long)q->offset);
    want = q->max_bytes > 0 && (uint32_t)q->max_bytes < LIMIT_ARTIFACT_CHUNK ? (size_t)q->max_bytes
                                                                             : LIMIT_ARTIFACT_CHUNK;
    rc = blob_open_read(bs, q->digest.data, &fd, &size, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    Track__V1__ArtifactReadResult *r = srv_alloc(&call->arena, sizeof(*r));
    uint8_t *buf = r ? srv_alloc_raw(&call->arena, want) : NULL;
    if (!buf) {
        close(fd);
        return srv_op_oom(call);
    }
    track__v1__artifact_read_result__init(r);
    if ((uint64_t)q->offset < size)
        rc = blob_read_at(fd, (uint64_t)q->offset, buf, want, &got, &err);
    close(fd);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    r->offset = q->offset;
    r->data.data = buf;
    r->data.len = got;
    r->eof = (uint64_t)q->offset + got >= size;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_ARTIFACT_READ;
    call->rs->artifact_read = r;
    return 0;
}

/* ---- verify ---------------------------------------------------------------------- */

struct digests {
    uint8_t (*d)[BLOB_DIGEST_BYTES];
    size_t n, cap;
    int oom;
};

static void digests_add(struct digests *s, const uint8_t digest[32])
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        void *p = realloc(s->d, cap * BLOB_DIGEST_BYTES);
        if (!p) {
            s->oom = 1;
            return;
        }
        s->d = p;
        s->cap = cap;
    }
    memcpy(s->d[s->n++], digest, BLOB_DIGEST_BYTES);
}

static int digest_cmp(const void *a, const void *b)
{
    return memcmp(a, b, BLOB_DIGEST_BYTES);
}

struct bad {
    uint8_t digest[BLOB_DIGEST_BYTES];
    int corrupt; /* 0: missing */
};

struct verify_ctx {
    struct srv_call *call;
    const uint8_t *run; /* NULL: every run */
    struct digests all;
    struct bad *bad;
    size_t n_bad;
    Track__V1__ArtifactVerifyResult *r;
    size_t cap;
};

static int bad_cmp(const void *a, const void *b)
{
    return memcmp(a, b, BLOB_DIGEST_BYTES);
}

static int collect_cb(void *ctx, const struct store_artifact *a)
{
    struct verify_ctx *v = ctx;
    digests_add(&v->all, a->digest);
    return v->all.oom ? STORE_E_INTERNAL : 0;
}

static void collect_digest_cb(void *ctx, const uint8_t digest[32])
{
    digests_add(&((struct verify_ctx *)ctx)->all, digest);
}

/* Names a row whose blob is bad (at most VERIFY_PROBLEMS named). */
static int name_row(struct verify_ctx *v, const uint8_t run[16], const struct store_artifact *a)
{
    struct bad *b = bsearch(a->digest, v->bad, v->n_bad, sizeof(*b), bad_cmp);
    if (!b)
        return 0;
    v->r->problems_total++;
    if (v->r->n_problems >= VERIFY_PROBLEMS)
        return 0;
    struct srv_arena *ar = &v->call->arena;
    Track__V1__ArtifactProblem *p = srv_alloc(ar, sizeof(*p));
    char *hex = srv_alloc(ar, 33);
    if (!p || !hex || srv_op_grow(ar, (void ***)&v->r->problems, v->r->n_problems, &v->cap))
        return STORE_E_INTERNAL;
    track__v1__artifact_problem__init(p);
    wire_hex(run, hex);
    p->run = hex;
    p->path = srv_strdup(ar, a->path);
    p->digest = arena_bytes(v->call, a->digest, BLOB_DIGEST_BYTES);
    p->problem = wire_str(b->corrupt ? "corrupt" : "missing");
    if (!p->path || !p->digest.data)
        return STORE_E_INTERNAL;
    v->r->problems[v->r->n_problems++] = p;
    return 0;
}

static int name_run_cb(void *ctx, const struct store_artifact *a)
{
    struct verify_ctx *v = ctx;
    return name_row(v, v->run, a);
}

static int name_all_cb(void *ctx, const uint8_t run[16], const struct store_artifact *a)
{
    return name_row(ctx, run, a);
}

int srv_op_artifact_verify(struct srv_call *call)
{
    const Track__V1__ArtifactVerify *q = call->rq->artifact_verify;
    struct blob_store *bs = blobs_of(call);
    struct store_err err = {0};
    struct verify_ctx v = {.call = call};
    uint8_t run[16];
    int rc, ret = -1;

    if (!bs)
        return -1;
    if (q->run && q->run[0]) {
        if (srv_op_resolve_run(call, "run", q->run, run))
            return -1;
        v.run = run;
    }
    v.r = srv_alloc(&call->arena, sizeof(*v.r));
    if (!v.r)
        return srv_op_oom(call);
    track__v1__artifact_verify_result__init(v.r);
    rc = v.run ? store_artifact_list(call->st, v.run, NULL, collect_cb, &v, &err)
               : store_artifact_each_digest(call->st, collect_digest_cb, &v, &err);
    if (v.all.oom) {
        ret = srv_op_oom(call);
        goto out;
    }
    if (rc) {
        ret = srv_op_fail_store(call, rc, &err);
        goto out;
    }
    if (v.all.n) /* v.all.d is NULL for a run without artifacts: not for qsort */
        qsort(v.all.d, v.all.n, BLOB_DIGEST_BYTES, digest_cmp);
    v.bad = v.all.n ? calloc(v.all.n, sizeof(*v.bad)) : NULL;
    if (v.all.n && !v.bad) {
        ret = srv_op_oom(call);
        goto out;
    }
    for (size_t i = 0; i < v.all.n; i++) {
        uint64_t size = 0;
        if (i > 0 && memcmp(v.all.d[i], v.all.d[i - 1], BLOB_DIGEST_BYTES) == 0)
            continue;
        v.r->checked++;
        rc = blob_verify(bs, v.all.d[i], &err);
        if (rc == 0 && blob_size(bs, v.all.d[i], &size, NULL) == 0)
            v.r->bytes += (int64_t)size;
        if (rc == STORE_E_CORRUPT || rc == STORE_E_NOT_FOUND) {
            memcpy(v.bad[v.n_bad].digest, v.all.d[i], BLOB_DIGEST_BYTES);
            v.bad[v.n_bad++].corrupt = rc == STORE_E_CORRUPT;
        } else if (rc) {
            ret = srv_op_fail_store(call, rc, &err);
            goto out;
        }
    }
    if (v.n_bad) {
        rc = v.run ? store_artifact_list(call->st, v.run, NULL, name_run_cb, &v, &err)
                   : store_artifact_each(call->st, name_all_cb, &v, &err);
        if (rc) {
            ret = err.msg[0] && rc != STORE_E_INTERNAL ? srv_op_fail_store(call, rc, &err)
                                                       : srv_op_oom(call);
            goto out;
        }
    }
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_ARTIFACT_VERIFY;
    call->rs->artifact_verify = v.r;
    ret = 0;
out:
    free(v.all.d);
    free(v.bad);
    return ret;
}

int srv_op_artifact_delete(struct srv_call *call)
{
    const Track__V1__ArtifactDelete *q = call->rq->artifact_delete;
    struct store_err err = {0};
    uint8_t run[16];
    int64_t n = 0;
    int rc;

    if ((q->path[0] && check_path(call, "path", q->path)) ||
        srv_op_resolve_run(call, "run", q->run, run))
        return -1;
    if ((rc = store_artifact_delete(call->st, run, q->path, &n, &err)))
        return srv_op_fail_store(call, rc, &err);
    Track__V1__ArtifactDeleteResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__artifact_delete_result__init(r);
    r->deleted = n;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_ARTIFACT_DELETE;
    call->rs->artifact_delete = r;
    return 0;
}
