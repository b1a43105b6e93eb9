/*
 * op_lifecycle.c: the handlers of a run's lifecycle and lineage:
 * LifecycleSet (soft delete and restore, a write in the group commit), Gc
 * and Lineage (reads on a worker).
 *
 * Gc is one operation, run on a read worker outside its read transaction
 * (SRV_OWN_TXN), so the event loop never waits on it as a whole. It removes
 * rows through a read-write store handle of its own, GC_BATCH_ROWS rows per
 * transaction (store_gc_step), pausing between transactions as long as the
 * last one took, so the loop's group commit gets the write lock between
 * them: a concurrent log-metric waits for one batch at most, never for the
 * whole run. Then the blob sweep, outside any write transaction, follows
 * blob.h's race rule exactly: blob_gc_begin before the database is read for
 * live references, blob_remove (which keeps whatever was pinned since) for
 * each blob outside the mark, blob_gc_end. The mark is the set of
 * store_gc_live_digests, sorted in memory (32 bytes a digest, at most
 * GC_MARK_MAX of them: past that gc stops and removes no blob, since a
 * partial mark could take a live one).
 *
 * A dry run reads the same things in one read transaction and removes
 * nothing; its blob list is what a real gc with the same grace would remove
 * were nothing uploaded meanwhile.
 */
#include "op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob.h"
#include "track_limits.h"

#define GC_BATCH_ROWS     256  /* rows removed per write transaction */
#define GC_LIST_MAX       1000 /* runs and blobs named in the reply */
#define GC_MARK_MAX       (4 << 20)
#define GC_STREAM_IDLE_MS (60 * 60 * 1000) /* a streaming upload left this long is dropped */
#define LINEAGE_DEPTH_MAX 64               /* ancestors followed (a cycle stops there) */
#define LINEAGE_LIST_MAX  1000             /* children, artifacts, model versions */

/* ---- LifecycleSet ---------------------------------------------------------------- */

struct deleted_at {
    int64_t ms;
};

static int deleted_cb(void *ctx, const struct store_run *r)
{
    ((struct deleted_at *)ctx)->ms = r->deleted ? r->deleted_ms : 0;
    return 0;
}

int srv_op_lifecycle_set(struct srv_call *call)
{
    const Track__V1__LifecycleSet *q = call->rq->lifecycle_set;
    struct store_err err = {0};
    struct deleted_at at = {0};
    uint8_t id[16];
    int changed = 0, rc;

    if (srv_op_resolve_run(call, "run", q->run, id))
        return -1;
    rc = q->deleted ? store_run_delete(call->st, id, wire_now_ms(), &changed, &err)
                    : store_run_restore(call->st, id, &changed, &err);
    if (rc == 0)
        rc = store_run_get(call->st, id, deleted_cb, &at, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    Track__V1__LifecycleSetResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__lifecycle_set_result__init(r);
    r->run_id.data = srv_alloc(&call->arena, 16);
    if (!r->run_id.data)
        return srv_op_oom(call);
    memcpy(r->run_id.data, id, 16);
    r->run_id.len = 16;
    r->changed = changed;
    r->deleted_ms = at.ms;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_LIFECYCLE_SET;
    call->rs->lifecycle_set = r;
    return 0;
}

/* ---- Gc --------------------------------------------------------------------------- */

struct mark {
    uint8_t (*d)[BLOB_DIGEST_BYTES];
    size_t n, cap;
    int over; /* GC_MARK_MAX reached */
};

static int mark_add(void *ctx, const uint8_t digest[32])
{
    struct mark *m = ctx;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        if (cap > GC_MARK_MAX) {
            if (m->cap >= GC_MARK_MAX) {
                m->over = 1;
                return -1;
            }
            cap = GC_MARK_MAX;
        }
        void *p = realloc(m->d, cap * sizeof *m->d);
        if (!p)
            return -1;
        m->d = p;
        m->cap = cap;
    }
    memcpy(m->d[m->n++], digest, BLOB_DIGEST_BYTES);
    return 0;
}

static int digest_cmp(const void *a, const void *b)
{
    return memcmp(a, b, BLOB_DIGEST_BYTES);
}

static int mark_has(const struct mark *m, const uint8_t digest[BLOB_DIGEST_BYTES])
{
    return m->n && bsearch(digest, m->d, m->n, sizeof *m->d, digest_cmp) != NULL;
}

struct gc {
    struct srv_call *call;
    Track__V1__GcResult *r;
    size_t runs_cap, blobs_cap;
    struct mark mark;
    int dry_run;
    int failed; /* out of memory in a callback */
};

static int gc_run_cb(void *ctx, const struct store_gc_run *g)
{
    struct gc *x = ctx;
    struct srv_arena *a = &x->call->arena;
    Track__V1__GcResult *r = x->r;

    r->runs_count++;
    r->run_bytes += g->bytes;
    if (r->n_runs >= GC_LIST_MAX)
        return 0;
    if (srv_op_grow(a, (void ***)&r->runs, r->n_runs, &x->runs_cap))
        goto oom;
    Track__V1__GcRun *m = srv_alloc(a, sizeof(*m));
    if (!m)
        goto oom;
    track__v1__gc_run__init(m);
    m->run_id.data = srv_alloc(a, 16);
    m->name = srv_strdup(a, g->name);
    if (!m->run_id.data || !m->name)
        goto oom;
    memcpy(m->run_id.data, g->id, 16);
    m->run_id.len = 16;
    m->deleted_ms = g->deleted_ms;
    m->bytes = g->bytes;
    r->runs[r->n_runs++] = m;
    return 0;
oom:
    x->failed = 1;
    return -1;
}

static int gc_blob_cb(void *ctx, const struct blob_info *b)
{
    struct gc *x = ctx;
    struct srv_arena *a = &x->call->arena;
    Track__V1__GcResult *r = x->r;
    struct store_err err = {0};

    if (mark_has(&x->mark, b->digest))
        return 0;
    if (!x->dry_run) {
        int rc = blob_remove(x->call->srv->blobs, b->digest, &err);
        if (rc == 1)
            r->blobs_kept++;
        if (rc != 0)
            return 0; /* kept (pinned since gc began), or gone already */
    }
    r->blobs_count++;
    r->blob_bytes += (int64_t)b->size;
    if (r->n_blob_digests >= GC_LIST_MAX)
        return 0;
    if (srv_op_grow(a, (void ***)&r->blob_digests, r->n_blob_digests, &x->blobs_cap))
        goto oom;
    ProtobufCBinaryData *d = (ProtobufCBinaryData *)&r->blob_digests[r->n_blob_digests];
    d->data = srv_alloc(a, BLOB_DIGEST_BYTES);
    if (!d->data)
        goto oom;
    memcpy(d->data, b->digest, BLOB_DIGEST_BYTES);
    d->len = BLOB_DIGEST_BYTES;
    r->n_blob_digests++;
    return 0;
oom:
    x->failed = 1;
    return -1;
}

/* Reads the mark in a read transaction of the worker's own handle. */
static int gc_read_mark(struct gc *x, int64_t before_ms, struct store_err *err)
{
    struct store *st = x->call->st;
    int rc = store_begin(st, err);
    if (rc == 0) {
        rc = store_gc_live_digests(st, before_ms, mark_add, &x->mark, err);
        store_rollback(st);
    }
    if (rc == 0 && x->mark.n)
        qsort(x->mark.d, x->mark.n, sizeof *x->mark.d, digest_cmp);
    return rc;
}

static void pause_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Removes the rows of every run deleted before before_ms, GC_BATCH_ROWS at a
 * time, each batch in a transaction of a handle of its own. */
static int gc_purge(struct gc *x, int64_t before_ms, struct store_err *err)
{
    struct srv *srv = x->call->srv;
    struct store_opts so = {.durability = srv->cfg.durability};
    struct store *w = NULL;
    int more = 1, rc;

    rc = store_open(srv->cfg.db_path, &so, &w, err);
    while (rc == 0 && more) {
        int64_t rows = 0, t0 = mono_ms();
        int runs = 0;
        rc = store_begin(w, err);
        if (rc == 0)
            rc = store_gc_step(w, before_ms, GC_BATCH_ROWS, &rows, &runs, &more, err);
        if (rc == 0)
            rc = store_commit(w, err);
        if (rc) {
            store_rollback(w);
            break;
        }
        x->r->rows_removed += rows;
        x->r->runs_count += runs;
        x->r->transactions++;
        if (more) {
            /* as long as the batch took (at least 2 ms): the loop's writer,
             * waiting in SQLite's busy handler, gets its turn */
            int64_t took = mono_ms() - t0;
            pause_ms(took < 2 ? 2 : took > 50 ? 50 : took);
        }
    }
    store_close(w);
    return rc;
}

int srv_op_gc(struct srv_call *call)
{
    const Track__V1__Gc *q = call->rq->gc;
    struct blob_store *bs = call->srv ? call->srv->blobs : NULL;
    struct store_err err = {0};
    struct gc x = {.call = call, .dry_run = q->dry_run};
    int64_t before;
    int rc, epoch = 0;

    if (q->grace_ms < 0)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "grace_ms: %lld is negative; 0 removes every deleted run",
                           (long long)q->grace_ms);
    x.r = srv_alloc(&call->arena, sizeof(*x.r));
    if (!x.r)
        return srv_op_oom(call);
    track__v1__gc_result__init(x.r);
    x.r->dry_run = q->dry_run;
    before = wire_now_ms() - q->grace_ms;

    /* the runs that go (listed first, from a read transaction) */
    rc = store_begin(call->st, &err);
    if (rc == 0) {
        rc = store_gc_runs(call->st, before, gc_run_cb, &x, &err);
        store_rollback(call->st);
    }
    if (rc)
        goto fail;
    if (!q->dry_run && x.r->runs_count > 0) {
        x.r->runs_count = 0; /* now counted as they go; run_bytes is the listing's */
        rc = gc_purge(&x, before, &err);
        if (rc)
            goto fail;
    }
    if (bs) {
        if (!q->dry_run) {
            rc = blob_gc_begin(bs, &err);
            if (rc)
                goto fail;
            epoch = 1;
        }
        rc = gc_read_mark(&x, before, &err);
        if (rc)
            goto fail;
        rc = blob_each(bs, gc_blob_cb, &x, &err);
        if (rc)
            goto fail;
        if (epoch)
            blob_gc_end(bs);
        epoch = 0;
        /* streaming uploads whose client went away: nobody else can resume them */
        if (!q->dry_run) {
            int gone = 0;
            if (blob_stream_expire(bs, GC_STREAM_IDLE_MS, &gone, &err) == 0 && gone > 0)
                srv_log(SRV_LOG_INFO, "gc", "dropped %d streaming upload(s) idle for over %d s",
                        gone, GC_STREAM_IDLE_MS / 1000);
        }
    }
    free(x.mark.d);
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_GC;
    call->rs->gc = x.r;
    srv_log(SRV_LOG_INFO, "gc", "%s runs=%lld rows=%lld txns=%lld blobs=%lld bytes=%lld kept=%lld",
            q->dry_run ? "dry run" : "done", (long long)x.r->runs_count,
            (long long)x.r->rows_removed, (long long)x.r->transactions, (long long)x.r->blobs_count,
            (long long)x.r->blob_bytes, (long long)x.r->blobs_kept);
    return 0;
fail:
    if (epoch)
        blob_gc_end(bs);
    free(x.mark.d);
    if (x.failed)
        return srv_op_oom(call);
    if (x.mark.over)
        return srv_op_fail(call, TRACK__V1__CODE__RESOURCE_EXHAUSTED,
                           "gc: more than %d live digests; no blob removed", GC_MARK_MAX);
    return srv_op_fail_store(call, rc ? rc : STORE_E_INTERNAL, &err);
}

/* ---- Lineage ------------------------------------------------------------------------ */

struct lineage {
    struct srv_call *call;
    Track__V1__LineageResult *r;
    Track__V1__LineageRun *one;
    size_t cap;
    int failed;
};

static Track__V1__LineageRun *lineage_run(struct srv_arena *a, const struct store_run *s)
{
    Track__V1__LineageRun *m = srv_alloc(a, sizeof(*m));
    if (!m)
        return NULL;
    track__v1__lineage_run__init(m);
    m->run_id.data = srv_alloc(a, 16);
    m->name = srv_strdup(a, s->name);
    m->experiment = srv_strdup(a, s->experiment);
    if (!m->run_id.data || !m->name || !m->experiment)
        return NULL;
    memcpy(m->run_id.data, s->id, 16);
    m->run_id.len = 16;
    m->status = (Track__V1__RunStatus)s->status;
    m->deleted = s->deleted;
    m->start_ms = s->start_ms;
    return m;
}

struct one {
    struct srv_arena *a;
    Track__V1__LineageRun *run;
    int has_parent;
    uint8_t parent[16];
};

static int one_cb(void *ctx, const struct store_run *s)
{
    struct one *o = ctx;
    o->run = lineage_run(o->a, s);
    o->has_parent = s->has_parent;
    memcpy(o->parent, s->parent, 16);
    return o->run ? 0 : -1;
}

static int child_cb(void *ctx, const struct store_run *s)
{
    struct lineage *l = ctx;
    Track__V1__LineageResult *r = l->r;
    if (r->n_children >= LINEAGE_LIST_MAX) {
        r->truncated = 1;
        return 1;
    }
    if (srv_op_grow(&l->call->arena, (void ***)&r->children, r->n_children, &l->cap) ||
        !(r->children[r->n_children] = lineage_run(&l->call->arena, s))) {
        l->failed = 1;
        return -1;
    }
    r->n_children++;
    return 0;
}

static int artifact_cb(void *ctx, const struct store_lineage_artifact *s)
{
    struct lineage *l = ctx;
    struct srv_arena *a = &l->call->arena;
    Track__V1__LineageResult *r = l->r;
    if (r->n_artifacts >= LINEAGE_LIST_MAX) {
        r->truncated = 1;
        return 1;
    }
    Track__V1__LineageArtifact *m = NULL;
    if (srv_op_grow(a, (void ***)&r->artifacts, r->n_artifacts, &l->cap) ||
        !(m = srv_alloc(a, sizeof(*m))))
        goto oom;
    track__v1__lineage_artifact__init(m);
    m->path = srv_strdup(a, s->path);
    m->digest.data = srv_alloc(a, 32);
    if (!m->path || !m->digest.data)
        goto oom;
    memcpy(m->digest.data, s->digest, 32);
    m->digest.len = 32;
    m->size = s->size;
    r->artifacts[r->n_artifacts++] = m;
    return 0;
oom:
    l->failed = 1;
    return -1;
}

static int version_cb(void *ctx, const struct store_lineage_version *s)
{
    struct lineage *l = ctx;
    struct srv_arena *a = &l->call->arena;
    Track__V1__LineageResult *r = l->r;
    if (r->n_model_versions >= LINEAGE_LIST_MAX) {
        r->truncated = 1;
        return 1;
    }
    Track__V1__LineageModelVersion *m = NULL;
    if (srv_op_grow(a, (void ***)&r->model_versions, r->n_model_versions, &l->cap) ||
        !(m = srv_alloc(a, sizeof(*m))))
        goto oom;
    track__v1__lineage_model_version__init(m);
    m->model = srv_strdup(a, s->model);
    m->path = srv_strdup(a, s->path);
    m->digest.data = srv_alloc(a, 32);
    if (!m->model || !m->path || !m->digest.data)
        goto oom;
    memcpy(m->digest.data, s->digest, 32);
    m->digest.len = 32;
    m->version = s->version;
    r->model_versions[r->n_model_versions++] = m;
    return 0;
oom:
    l->failed = 1;
    return -1;
}

static int sys_tag_cb(void *ctx, const char *key, const char *value)
{
    struct lineage *l = ctx;
    char **slot = strcmp(key, "sys.git.commit") == 0 ? &l->r->git_commit
                  : strcmp(key, "sys.command") == 0  ? &l->r->command
                                                     : NULL;
    if (!slot)
        return 0;
    *slot = srv_strdup(&l->call->arena, value);
    if (!*slot) {
        l->failed = 1;
        return -1;
    }
    return 0;
}

int srv_op_lineage(struct srv_call *call)
{
    struct srv_arena *a = &call->arena;
    struct store_err err = {0};
    struct lineage l = {.call = call};
    struct one o = {.a = a};
    uint8_t id[16];
    size_t anc_cap = 0;
    int rc;

    if (srv_op_resolve_run(call, "run", call->rq->lineage->run, id))
        return -1;
    l.r = srv_alloc(a, sizeof(*l.r));
    if (!l.r)
        return srv_op_oom(call);
    track__v1__lineage_result__init(l.r);
    rc = store_run_get(call->st, id, one_cb, &o, &err);
    if (rc)
        goto fail;
    l.r->run = o.run;
    /* up the parent chain; a parent gc removed ends it, as does the cap */
    for (int depth = 0; o.has_parent; depth++) {
        uint8_t p[16];
        if (depth == LINEAGE_DEPTH_MAX) {
            l.r->truncated = 1;
            break;
        }
        memcpy(p, o.parent, 16);
        o.has_parent = 0;
        int level = 0; /* one the caller may not read ends the chain, as a removed one */
        if (srv_authz_run_level(call, p, &level))
            return -1;
        if (level < STORE_LEVEL_READ)
            break;
        rc = store_run_get(call->st, p, one_cb, &o, &err);
        if (rc == STORE_E_NOT_FOUND)
            break;
        if (rc)
            goto fail;
        if (srv_op_grow(a, (void ***)&l.r->ancestors, l.r->n_ancestors, &anc_cap))
            return srv_op_oom(call);
        l.r->ancestors[l.r->n_ancestors++] = o.run;
    }
    l.cap = 0;
    rc = store_lineage_children(call->st, id, LINEAGE_LIST_MAX + 1, child_cb, &l, &err);
    if (rc < 0)
        goto fail;
    if (!srv_sees_all(call)) { /* children the caller may not read are left out */
        size_t k = 0;
        for (size_t i = 0; i < l.r->n_children; i++) {
            int level = 0;
            Track__V1__LineageRun *c = l.r->children[i];
            if (c->run_id.len == 16 && srv_authz_run_level(call, c->run_id.data, &level))
                return -1;
            if (level >= STORE_LEVEL_READ)
                l.r->children[k++] = c;
        }
        l.r->n_children = k;
    }
    l.cap = 0;
    rc = store_lineage_artifacts(call->st, id, LINEAGE_LIST_MAX + 1, artifact_cb, &l, &err);
    if (rc < 0)
        goto fail;
    l.cap = 0;
    rc = store_lineage_versions(call->st, id, LINEAGE_LIST_MAX + 1, version_cb, &l, &err);
    if (rc < 0)
        goto fail;
    rc = store_tag_list(call->st, id, sys_tag_cb, &l, &err);
    if (rc)
        goto fail;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_LINEAGE;
    call->rs->lineage = l.r;
    return 0;
fail:
    if (l.failed || !err.msg[0])
        return srv_op_oom(call);
    return srv_op_fail_store(call, rc, &err);
}
