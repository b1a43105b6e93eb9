/*
 * test_lifecycle_gc.c: gc's blob sweep at the daemon-handler level: the Gc
 * operation (daemon/op_lifecycle.c) called through srv_dispatch on a real
 * store and a real blob store in a fresh temp directory, with the blob store
 * driven directly through blob.h as the artifact uploads drive it. Rows of
 * the artifacts and model_versions tables are written with the sqlite3
 * library, as their modules commit them, so the mark is tested as it runs:
 * blobs of active runs, of deleted runs inside the grace period
 * and of model versions are kept; a pinned blob is kept; a blob committed
 * and referenced by uploads running beside a stream of gcs is never lost.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "fixture.h"
#include "op.h"
#include "srv.h"

static char dir[256];
static struct srv srv;
static struct store *rw, *ro;
static struct store_err err;
static uint8_t run_active[16], run_deleted[16];

static void exec_sql(const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(srv.cfg.db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql, msg);
    sqlite3_close(db);
}

static void start_run(uint8_t id[16], const char *name)
{
    struct store_run_start r = {.name = name, .start_ms = 1, .user = "t"};
    int64_t exp;
    randombytes_buf(id, 16);
    memcpy(r.id, id, 16);
    cr_assert_eq(store_begin(rw, &err), 0);
    cr_assert_eq(store_experiment_ensure(rw, "e", 1, &exp, &err), 0, "%s", err.msg);
    r.experiment_id = exp;
    cr_assert_eq(store_run_start(rw, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(store_commit(rw, &err), 0);
}

static void setup(void)
{
    struct store_opts so = {0}, sro = {.readonly = 1};
    snprintf(dir, sizeof dir, "/tmp/track-lcgc-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_geq(sodium_init(), 0);
    memset(&srv, 0, sizeof srv);
    snprintf(srv.cfg.data_dir, sizeof srv.cfg.data_dir, "%s", dir);
    snprintf(srv.cfg.db_path, sizeof srv.cfg.db_path, "%s/track.db", dir);
    cr_assert_eq(store_open(srv.cfg.db_path, &so, &rw, &err), 0, "%s", err.msg);
    cr_assert_eq(store_open(srv.cfg.db_path, &sro, &ro, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_store_open(dir, &srv.blobs, &err), 0, "%s", err.msg);
    start_run(run_active, "active");
    start_run(run_deleted, "deleted");
}

static void teardown(void)
{
    blob_store_close(srv.blobs);
    store_close(ro);
    store_close(rw);
    fx_rmtree(dir);
}

TestSuite(lifecycle_gc, .init = setup, .fini = teardown, .timeout = 120);

/* Stores `content` as a complete blob; the pin stays when keep_pin. */
static void put_blob(const char *content, uint8_t d[32], int keep_pin)
{
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists = 0;
    size_t n = strlen(content);
    crypto_generichash(d, 32, (const unsigned char *)content, n, NULL, 0);
    cr_assert_eq(blob_upload_begin(srv.blobs, n, d, id, &exists, &err), 0, "%s", err.msg);
    if (!exists) {
        cr_assert_eq(blob_upload_write(srv.blobs, id, 0, content, n, &err), 0, "%s", err.msg);
        cr_assert_eq(blob_upload_commit(srv.blobs, id, &err), 0, "%s", err.msg);
    }
    if (!keep_pin)
        cr_assert_eq(blob_unpin(srv.blobs, d, &err), 0, "%s", err.msg);
}

/* The row the artifact module commits: sqlite3 directly, a connection of its own. */
static int add_artifact_row(sqlite3 *db, const uint8_t run[16], const char *path,
                            const uint8_t d[32])
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO artifacts(run, path, digest, size, logged_ms)"
                                " SELECT id, ?2, ?3, 1, 1 FROM runs WHERE uuid = ?1",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_blob(s, 1, run, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, d, 32, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : rc;
}

static void artifact(const uint8_t run[16], const char *path, const uint8_t d[32])
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(srv.cfg.db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    cr_assert_eq(add_artifact_row(db, run, path, d), 0, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

struct gc_out {
    int64_t runs, blobs, kept, bytes;
};

static int gc(int dry, int64_t grace_ms, struct gc_out *o)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Gc g = TRACK__V1__GC__INIT;
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    uint8_t rid[16] = {1};
    g.dry_run = dry;
    g.grace_ms = grace_ms;
    rq.op_case = TRACK__V1__REQUEST__OP_GC;
    rq.gc = &g;
    rq.request_id.data = rid;
    rq.request_id.len = 16;
    struct srv_call call = {.srv = &srv, .st = ro, .rq = &rq, .rs = &rs};
    srv_dispatch(&call);
    int rc = rs.error ? (int)rs.error->code : 0;
    if (rs.error)
        fprintf(stderr, "gc: %s\n", rs.error->message);
    if (!rc) {
        o->runs = rs.gc->runs_count;
        o->blobs = rs.gc->blobs_count;
        o->kept = rs.gc->blobs_kept;
        o->bytes = rs.gc->blob_bytes;
    }
    srv_arena_free(&call.arena);
    return rc;
}

static int stored(const uint8_t d[32])
{
    return blob_exists(srv.blobs, d, &err);
}

static void delete_run(const uint8_t id[16], int64_t at_ms)
{
    cr_assert_eq(store_begin(rw, &err), 0);
    cr_assert_eq(store_run_delete(rw, id, at_ms, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(store_commit(rw, &err), 0);
}

Test(lifecycle_gc, mark_keeps_active_graced_and_versioned_blobs_removes_the_rest)
{
    uint8_t a[32], del[32], ver[32], orphan[32];
    struct gc_out o;
    put_blob("active run's file", a, 0);
    put_blob("deleted run's file", del, 0);
    put_blob("a model version's file", ver, 0);
    put_blob("nothing points here", orphan, 0);
    artifact(run_active, "a.bin", a);
    artifact(run_deleted, "d.bin", del);
    delete_run(run_deleted, 0);

    cr_assert_eq(gc(1, 86400000, &o), 0);
    cr_assert_eq(o.blobs, 2, "dry run: the orphan and the version's (unreferenced yet)");
    cr_assert(stored(orphan) == 1 && stored(ver) == 1, "dry run removes nothing");

    exec_sql("INSERT INTO models(id, name, created_ms) VALUES(1, 'm', 1)");
    {
        sqlite3 *db;
        sqlite3_stmt *s;
        cr_assert_eq(sqlite3_open(srv.cfg.db_path, &db), SQLITE_OK);
        cr_assert_eq(
            sqlite3_prepare_v2(db,
                               "INSERT INTO model_versions(model, version, run, path, digest,"
                               " size, description, user, created_ms)"
                               " VALUES(1, 1, ?1, 'w', ?2, 1, '', 't', 1)",
                               -1, &s, NULL),
            SQLITE_OK);
        sqlite3_bind_blob(s, 1, run_active, 16, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, ver, 32, SQLITE_STATIC);
        cr_assert_eq(sqlite3_step(s), SQLITE_DONE);
        sqlite3_finalize(s);
        sqlite3_close(db);
    }
    /* a day's grace: the deleted run is inside it, its file stays */
    cr_assert_eq(gc(0, 86400000, &o), 0);
    cr_assert_eq(o.runs, 0);
    cr_assert_eq(o.blobs, 1);
    cr_assert_eq(o.bytes, (int64_t)strlen("nothing points here"));
    cr_assert_eq(stored(orphan), 0, "unreferenced: removed");
    cr_assert_eq(stored(del), 1, "a run inside the grace period keeps its files (restorable)");
    cr_assert_eq(stored(a), 1);
    cr_assert_eq(stored(ver), 1);

    /* grace 0: the deleted run goes, and its file with it */
    cr_assert_eq(gc(0, 0, &o), 0);
    cr_assert_eq(o.runs, 1);
    cr_assert_eq(o.blobs, 1);
    cr_assert_eq(stored(del), 0);
    cr_assert_eq(stored(a), 1, "an active run's file stays");
    cr_assert_eq(stored(ver), 1);

    /* a version keeps its blob, and its run, even when the run is deleted */
    delete_run(run_active, 0);
    exec_sql("DELETE FROM artifacts");
    cr_assert_eq(gc(0, 0, &o), 0);
    cr_assert_eq(o.runs, 0, "the version's run is kept");
    cr_assert_eq(stored(ver), 1, "the version's blob is kept");
    cr_assert_eq(stored(a), 0);
}

Test(lifecycle_gc, pinned_blob_is_kept_until_unpinned)
{
    uint8_t p[32];
    struct gc_out o;
    put_blob("an upload whose row is not committed yet", p, 1);
    cr_assert_eq(gc(0, 0, &o), 0);
    cr_assert_eq(o.kept, 1, "pinned: kept");
    cr_assert_eq(o.blobs, 0);
    cr_assert_eq(stored(p), 1);
    cr_assert_eq(blob_unpin(srv.blobs, p, &err), 0);
    cr_assert_eq(gc(0, 0, &o), 0);
    cr_assert_eq(o.blobs, 1, "unpinned and unreferenced: removed");
    cr_assert_eq(stored(p), 0);
}

static int count_cb(void *ctx, const struct store_gc_run *g)
{
    (void)g;
    (*(int *)ctx)++;
    return 0;
}

Test(lifecycle_gc, cutoff_takes_a_run_deleted_in_the_same_millisecond)
{
    int n = 0;
    int64_t rows = 0;
    int runs = 0, more = 1, steps = 1;
    cr_assert_eq(store_begin(rw, &err), 0);
    cr_assert_eq(store_tag_put(rw, run_deleted, "a", "1", &err), 0, "%s", err.msg);
    cr_assert_eq(store_tag_put(rw, run_deleted, "b", "2", &err), 0, "%s", err.msg);
    cr_assert_eq(store_commit(rw, &err), 0);
    delete_run(run_deleted, 5000);
    cr_assert_eq(store_gc_runs(ro, 4999, count_cb, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 0, "deleted after the cutoff: kept");
    cr_assert_eq(store_gc_runs(ro, 5000, count_cb, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1, "deleted at the cutoff's millisecond (grace 0): taken");
    cr_assert_eq(store_begin(rw, &err), 0);
    cr_assert_eq(store_gc_step(rw, 5000, 1, &rows, &runs, &more, &err), 0, "%s", err.msg);
    cr_assert_eq(rows, 1, "one row at most per step of max_rows 1");
    cr_assert_eq(runs, 0);
    cr_assert_eq(more, 1);
    while (more && steps < 100) {
        cr_assert_eq(store_gc_step(rw, 5000, 1, &rows, &runs, &more, &err), 0, "%s", err.msg);
        cr_assert_leq(rows, 1);
        steps++;
    }
    cr_assert_eq(runs, 1, "the run's row last");
    cr_assert_eq(steps, 3, "two tags, then the run's row");
    cr_assert_eq(store_commit(rw, &err), 0);
}

/* ---- the race ------------------------------------------------------------------------ */

#define RACE_UPLOADS 400
#define RACE_MS      4000

struct uploader {
    uint8_t live[RACE_UPLOADS][32];
    int n_live, n_orphans;
    volatile int done;
    char msg[600];
};

/* The artifact upload's order: begin (pins) / write / commit, then the row
 * committed, then the pin released; every other upload is abandoned without
 * a row (an orphan gc may take). */
static void *uploader_main(void *p)
{
    struct uploader *u = p;
    struct store_err e = {0};
    sqlite3 *db = NULL;
    long long until = fx_now_ms() + RACE_MS;
    if (sqlite3_open(srv.cfg.db_path, &db) != SQLITE_OK) {
        snprintf(u->msg, sizeof u->msg, "open failed");
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    for (int i = 0; i < 2 * RACE_UPLOADS && fx_now_ms() < until; i++) {
        char content[64], id[BLOB_UPLOAD_ID_HEX + 1], path[32];
        uint8_t d[32];
        int exists = 0;
        snprintf(content, sizeof content, "upload %d of the race", i);
        crypto_generichash(d, 32, (const unsigned char *)content, strlen(content), NULL, 0);
        if (blob_upload_begin(srv.blobs, strlen(content), d, id, &exists, &e) ||
            blob_upload_write(srv.blobs, id, 0, content, strlen(content), &e) ||
            blob_upload_commit(srv.blobs, id, &e)) {
            snprintf(u->msg, sizeof u->msg, "upload: %s", e.msg);
            goto out;
        }
        if (i % 2 == 0) {
            snprintf(path, sizeof path, "f%d", i);
            int rc = add_artifact_row(db, run_active, path, d);
            if (rc) {
                snprintf(u->msg, sizeof u->msg, "row: %s", sqlite3_errmsg(db));
                goto out;
            }
            memcpy(u->live[u->n_live++], d, 32);
        } else {
            u->n_orphans++;
        }
        blob_unpin(srv.blobs, d, &e);
    }
out:
    sqlite3_close(db);
    u->done = 1;
    return NULL;
}

Test(lifecycle_gc, blob_committed_while_gc_runs_is_kept)
{
    struct uploader *u = calloc(1, sizeof *u);
    struct gc_out o;
    pthread_t th;
    int64_t removed = 0;
    int gcs = 0;
    cr_assert_not_null(u);
    cr_assert_eq(pthread_create(&th, NULL, uploader_main, u), 0);
    while (!u->done) {
        cr_assert_eq(gc(0, 0, &o), 0);
        removed += o.blobs;
        gcs++;
    }
    pthread_join(th, NULL);
    cr_assert_str_empty(u->msg, "%s", u->msg);
    cr_assert_eq(gc(0, 0, &o), 0);
    removed += o.blobs;
    fprintf(stderr, "race: %d gcs beside %d referenced and %d orphan uploads; %lld removed\n", gcs,
            u->n_live, u->n_orphans, (long long)removed);
    cr_assert_gt(gcs, 1, "gc ran beside the uploads");
    cr_assert_gt(u->n_live, 10);
    for (int i = 0; i < u->n_live; i++)
        cr_assert_eq(stored(u->live[i]), 1, "referenced upload %d lost to gc", i);
    cr_assert_eq(removed, u->n_orphans, "every orphan went in the end, nothing else");
    free(u);
}
