/*
 * store_lifecycle.c: soft deletion of runs, their restore, and the database
 * half of gc. A run's `lifecycle` column (migration 4) is 'active' or
 * 'deleted', with deleted_ms beside it; deletion moves nothing, so restore
 * is one UPDATE. Writes into a deleted run are refused where every write
 * finds its run (sq_run_find_live); lists leave deleted runs out unless the
 * filter names lifecycle (store_run.c, filter.c).
 *
 * gc removes the runs deleted before a cutoff in steps of a bounded number
 * of rows (store_gc_step), each in the caller's short transaction, so a run
 * of millions of points never holds the write lock for long. A run that a
 * model version was made from is kept (soft-deleted): the version stays
 * resolvable with its lineage. The blob half (which files go) is the
 * caller's, with blob.h's race rule; store_gc_live_digests is the mark.
 *
 * The artifacts and model_versions tables belong to other modules and may
 * not exist in a given build: each is looked up in sqlite_master first and
 * simply skipped when absent, so this file works before and after they come.
 * Their column names used here: artifacts(run -> runs.id, path, digest,
 * size), model_versions(run = runs.uuid, digest).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

int sq_table_exists(struct store *st, const char *name, int *yes, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret = sq_prep(st, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", &s,
                          err);
    if (ret)
        return ret;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        *yes = rc == SQLITE_ROW;
    else
        ret = sq_db_fail(st, rc, err, "looking up a table");
    sqlite3_finalize(s);
    return ret;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sq_digest_of(sqlite3_stmt *s, int col, uint8_t out[32])
{
    int n = sqlite3_column_bytes(s, col);

    if (sqlite3_column_type(s, col) == SQLITE_BLOB && n == 32) {
        memcpy(out, sqlite3_column_blob(s, col), 32);
        return 0;
    }
    if (sqlite3_column_type(s, col) == SQLITE_TEXT && n == 64) {
        const unsigned char *t = sqlite3_column_text(s, col);
        for (int i = 0; i < 32; i++) {
            int hi = hexval(t[2 * i]), lo = hexval(t[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return -1;
            out[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
    }
    return -1;
}

/* CONFLICT, not INVALID_ARGUMENT: the request is well formed and would be
 * accepted by the run as it was; it conflicts with the run's state now
 * (deleted), which `track run restore` changes. A client that retries or
 * spools it learns that the state, not its input, is what to fix. */
int sq_run_find_live(struct store *st, const uint8_t uuid[16], int64_t *id, struct store_err *err)
{
    char hex[33];
    int ret = sq_run_find(st, uuid, id, "run", err);

    if (ret == 0 && st->run_deleted) {
        sq_hex_of(uuid, hex);
        ret = sq_fail(err, STORE_E_CONFLICT,
                      "run %s is deleted; nothing can be logged into it (track run restore %s "
                      "brings it back)",
                      hex, hex);
    }
    return ret;
}

/* ---- delete and restore -------------------------------------------------------- */

static int set_lifecycle(struct store *st, const uint8_t id[16], int deleted, int64_t now_ms,
                         int *changed, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t run_id;
    int rc, ret;

    sq_err_clear(err);
    if (changed)
        *changed = 0;
    if (id == NULL)
        return sq_fail(err, STORE_E_INVALID, "run id missing");
    if ((ret = sq_writable(st, err)) != 0)
        return ret;
    ret = sq_run_find(st, id, &run_id, "run", err);
    if (ret)
        return ret;
    if (now_ms == 0)
        now_ms = sq_now_ms();
    ret = sq_prep(st,
                  deleted ? "UPDATE runs SET lifecycle = 'deleted', deleted_ms = ?2"
                            " WHERE id = ?1 AND lifecycle <> 'deleted'"
                          : "UPDATE runs SET lifecycle = 'active', deleted_ms = NULL"
                            " WHERE id = ?1 AND lifecycle <> 'active'",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
    if (deleted)
        sqlite3_bind_int64(s, 2, now_ms);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, deleted ? "deleting a run" : "restoring a run");
    else if (changed)
        *changed = sqlite3_changes(st->db) > 0;
    sqlite3_finalize(s);
    /* the cache holds live runs only: this one changed state */
    sq_cache_drop(st);
    return ret;
}

int store_run_delete(struct store *st, const uint8_t id[16], int64_t now_ms, int *changed,
                     struct store_err *err)
{
    return set_lifecycle(st, id, 1, now_ms, changed, err);
}

int store_run_restore(struct store *st, const uint8_t id[16], int *changed, struct store_err *err)
{
    return set_lifecycle(st, id, 0, 0, changed, err);
}

/* ---- gc of runs --------------------------------------------------------------------- */

/* The runs gc removes with cutoff ?1, as a condition on runs r. */
#define GC_CANDIDATE      "r.lifecycle = 'deleted' AND r.deleted_ms <= ?1"
#define GC_KEEP_VERSIONED " AND NOT EXISTS (SELECT 1 FROM model_versions v WHERE v.run = r.uuid)"

static int has_versions(struct store *st, int *yes, struct store_err *err)
{
    return sq_table_exists(st, "model_versions", yes, err);
}

int store_gc_runs(struct store *st, int64_t before_ms, store_gc_run_cb cb, void *ctx,
                  struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    struct store_gc_run g;
    int versions = 0, rc, ret;

    sq_err_clear(err);
    if (cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "callback missing");
    if ((ret = has_versions(st, &versions, err)) != 0)
        return ret;
    ret = sq_prep(st,
                  versions
                      ? "SELECT r.uuid, r.name, r.deleted_ms, r.id FROM runs r WHERE " GC_CANDIDATE
                            GC_KEEP_VERSIONED " ORDER BY r.deleted_ms, r.id"
                      : "SELECT r.uuid, r.name, r.deleted_ms, r.id FROM runs r WHERE " GC_CANDIDATE
                        " ORDER BY r.deleted_ms, r.id",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_stmt *b = NULL;
    ret =
        sq_prep(st,
                "SELECT coalesce((SELECT sum(length(data)) FROM metric_chunks WHERE run = ?1), 0)"
                " + coalesce((SELECT sum(length(key) + length(value)) FROM params WHERE run = ?1),"
                " 0) + coalesce((SELECT sum(length(key) + length(value)) FROM tags"
                " WHERE run = ?1), 0)",
                &b, err);
    if (ret)
        goto out;
    sqlite3_bind_int64(s, 1, before_ms);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&g, 0, sizeof g);
        if (sqlite3_column_bytes(s, 0) != 16) {
            ret = sq_fail(err, STORE_E_CORRUPT, "a run has a malformed id");
            goto out;
        }
        memcpy(g.id, sqlite3_column_blob(s, 0), 16);
        g.name = (const char *)sqlite3_column_text(s, 1);
        if (g.name == NULL)
            g.name = "";
        g.deleted_ms = sqlite3_column_int64(s, 2);
        sqlite3_bind_int64(b, 1, sqlite3_column_int64(s, 3));
        rc = sqlite3_step(b);
        if (rc != SQLITE_ROW) {
            ret = sq_db_fail(st, rc, err, "measuring a run");
            goto out;
        }
        g.bytes = sqlite3_column_int64(b, 0);
        sqlite3_reset(b);
        if ((ret = cb(ctx, &g)) != 0) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing runs to gc");
out:
    sqlite3_finalize(b);
    sqlite3_finalize(s);
    return ret;
}

/* Deletes at most `limit` rows of one table for run_id; *n gets how many. */
static int delete_some(struct store *st, const char *sql, int64_t run_id, int limit, int64_t *n,
                       struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret = sq_prep(st, sql, &s, err);

    *n = 0;
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int(s, 2, limit);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        *n = sqlite3_changes(st->db);
    else
        ret = sq_db_fail(st, rc, err, "removing a deleted run's rows");
    sqlite3_finalize(s);
    return ret;
}

/* Each statement takes the run's row id as ?1 and a row budget as ?2. The
 * WITHOUT ROWID tables are cut by key: DELETE ... LIMIT is an optional
 * SQLite feature. */
static const char *const gc_delete_sql[] = {
    "DELETE FROM metric_chunks WHERE id IN (SELECT id FROM metric_chunks WHERE run = ?1 LIMIT ?2)",
    "DELETE FROM metric_summary WHERE run = ?1 AND key_id IN"
    " (SELECT key_id FROM metric_summary WHERE run = ?1 LIMIT ?2)",
    "DELETE FROM params WHERE run = ?1 AND key IN (SELECT key FROM params WHERE run = ?1 LIMIT ?2)",
    "DELETE FROM tags WHERE run = ?1 AND key IN (SELECT key FROM tags WHERE run = ?1 LIMIT ?2)",
    "DELETE FROM feedback WHERE id IN (SELECT id FROM feedback WHERE run = ?1 LIMIT ?2)",
    "DELETE FROM feedback_summary WHERE run = ?1 AND name_id IN"
    " (SELECT name_id FROM feedback_summary WHERE run = ?1 LIMIT ?2)",
    "DELETE FROM feedback_labels WHERE run = ?1 AND (name_id, label) IN"
    " (SELECT name_id, label FROM feedback_labels WHERE run = ?1 LIMIT ?2)",
    /* only when the artifacts table exists (the last entry) */
    "DELETE FROM artifacts WHERE run = ?1 AND path IN"
    " (SELECT path FROM artifacts WHERE run = ?1 LIMIT ?2)",
};

int store_gc_step(struct store *st, int64_t before_ms, int max_rows, int64_t *rows, int *runs,
                  int *more, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    const size_t n_sql = sizeof gc_delete_sql / sizeof gc_delete_sql[0];
    int versions = 0, artifacts = 0, rc, ret;
    int64_t run_id, n;
    int left;

    sq_err_clear(err);
    *rows = 0;
    *runs = 0;
    *more = 0;
    if (max_rows < 1)
        return sq_fail(err, STORE_E_INVALID, "max_rows %d: must be at least 1", max_rows);
    if ((ret = sq_writable(st, err)) != 0 || (ret = has_versions(st, &versions, err)) != 0 ||
        (ret = sq_table_exists(st, "artifacts", &artifacts, err)) != 0)
        return ret;
    ret = sq_prep(st,
                  versions ? "SELECT r.id FROM runs r WHERE " GC_CANDIDATE GC_KEEP_VERSIONED
                             " ORDER BY r.deleted_ms, r.id LIMIT 2"
                           : "SELECT r.id FROM runs r WHERE " GC_CANDIDATE
                             " ORDER BY r.deleted_ms, r.id LIMIT 2",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, before_ms);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        goto out;
    if (rc != SQLITE_ROW) {
        ret = sq_db_fail(st, rc, err, "finding a run to gc");
        goto out;
    }
    run_id = sqlite3_column_int64(s, 0);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "finding a run to gc");
        goto out;
    }
    *more = rc == SQLITE_ROW;
    sqlite3_finalize(s);
    s = NULL;

    left = max_rows;
    for (size_t i = 0; i < n_sql && left > 0; i++) {
        if (i == n_sql - 1 && !artifacts)
            break;
        ret = delete_some(st, gc_delete_sql[i], run_id, left, &n, err);
        if (ret)
            goto out;
        *rows += n;
        left -= (int)n;
    }
    if (left <= 0) {
        *more = 1; /* perhaps rows left of this run: the next step looks */
        goto out;
    }
    ret = sq_prep(st, "DELETE FROM runs WHERE id = ?1 AND lifecycle = 'deleted'", &s, err);
    if (ret)
        goto out;
    sqlite3_bind_int64(s, 1, run_id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "removing a deleted run");
        goto out;
    }
    *rows += 1;
    *runs = 1;
out:
    sqlite3_finalize(s);
    if (*rows)
        sq_cache_drop(st);
    return ret;
}

/* ---- the mark ----------------------------------------------------------------------- */

static int each_digest(struct store *st, const char *sql, int64_t before_ms, store_digest_cb cb,
                       void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    uint8_t d[32];
    int rc, ret = sq_prep(st, sql, &s, err);

    if (ret)
        return ret;
    if (sqlite3_bind_parameter_count(s) > 0)
        sqlite3_bind_int64(s, 1, before_ms);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (sq_digest_of(s, 0, d)) {
            ret = sq_fail(err, STORE_E_CORRUPT,
                          "a stored digest is neither 32 bytes nor 64 hex characters");
            goto out;
        }
        if ((ret = cb(ctx, d)) != 0) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "reading live digests");
out:
    sqlite3_finalize(s);
    return ret;
}

int store_gc_live_digests(struct store *st, int64_t before_ms, store_digest_cb cb, void *ctx,
                          struct store_err *err)
{
    int artifacts = 0, versions = 0, ret;

    sq_err_clear(err);
    if (cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "callback missing");
    if ((ret = sq_table_exists(st, "artifacts", &artifacts, err)) != 0 ||
        (ret = has_versions(st, &versions, err)) != 0)
        return ret;
    /* a run gc keeps keeps its files: active, inside the grace period, or
     * kept for a model version made from it */
    if (artifacts && versions)
        ret = each_digest(st,
                          "SELECT a.digest FROM artifacts a JOIN runs r ON r.id = a.run"
                          " WHERE NOT (" GC_CANDIDATE GC_KEEP_VERSIONED ")",
                          before_ms, cb, ctx, err);
    else if (artifacts)
        ret = each_digest(st,
                          "SELECT a.digest FROM artifacts a JOIN runs r ON r.id = a.run"
                          " WHERE NOT (" GC_CANDIDATE ")",
                          before_ms, cb, ctx, err);
    if (ret == 0 && versions)
        ret = each_digest(st, "SELECT digest FROM model_versions", before_ms, cb, ctx, err);
    return ret;
}
