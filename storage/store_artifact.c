/*
 * store_artifact.c: the artifacts table: (run, path) -> (digest, size,
 * logged_ms). The digests name blobs of the blob store (blob.c), which this
 * file never touches: the daemon commits a row only once its blob is in
 * place, and gc and check read the digests from here.
 */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

#define ARTIFACT_PATH_MAX 1024

static int check_path(const char *path, const char *what, struct store_err *err)
{
    if (!path || !path[0])
        return sq_fail(err, STORE_E_INVALID, "%s is empty", what);
    if (strlen(path) > ARTIFACT_PATH_MAX)
        return sq_fail(err, STORE_E_INVALID, "%s is longer than %d bytes", what, ARTIFACT_PATH_MAX);
    return 0;
}

int store_artifact_put(struct store *st, const uint8_t run[16], const char *path,
                       const uint8_t digest[32], int64_t size, int64_t logged_ms,
                       struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t rid;
    int rc, ret;

    sq_err_clear(err);
    if ((ret = check_path(path, "artifact path", err)) != 0 || (ret = sq_writable(st, err)) != 0)
        return ret;
    if (size < 0)
        return sq_fail(err, STORE_E_INVALID, "artifact size %lld is negative", (long long)size);
    if ((ret = sq_run_find(st, run, &rid, "run", err)) != 0)
        return ret;
    /* the same digest again keeps the row (and its first logged_ms) */
    ret = sq_prep(st,
                  "INSERT INTO artifacts(run, path, digest, size, logged_ms)"
                  " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(run, path) DO UPDATE SET"
                  " digest = excluded.digest, size = excluded.size,"
                  " logged_ms = excluded.logged_ms WHERE digest != excluded.digest",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, rid);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, digest, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, size);
    sqlite3_bind_int64(s, 5, logged_ms);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "recording an artifact");
    sqlite3_finalize(s);
    return ret;
}

int store_artifact_get(struct store *st, const uint8_t run[16], const char *path,
                       uint8_t digest[32], int64_t *size, int64_t *logged_ms, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char hex[33], cbuf[CLIP_LEN + 4];
    int64_t rid;
    int rc, ret;

    sq_err_clear(err);
    if ((ret = check_path(path, "artifact path", err)) != 0 ||
        (ret = sq_run_find(st, run, &rid, "run", err)) != 0)
        return ret;
    ret = sq_prep(st, "SELECT digest, size, logged_ms FROM artifacts WHERE run = ?1 AND path = ?2",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, rid);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 32) {
        if (digest)
            memcpy(digest, sqlite3_column_blob(s, 0), 32);
        if (size)
            *size = sqlite3_column_int64(s, 1);
        if (logged_ms)
            *logged_ms = sqlite3_column_int64(s, 2);
    } else if (rc == SQLITE_ROW) {
        sq_hex_of(run, hex);
        ret = sq_fail(err, STORE_E_CORRUPT, "artifact \"%s\" of run %s: digest is not 32 bytes",
                      sq_clip(path, cbuf, sizeof cbuf), hex);
    } else if (rc == SQLITE_DONE) {
        sq_hex_of(run, hex);
        ret = sq_fail(err, STORE_E_NOT_FOUND, "run %s has no artifact \"%s\"", hex,
                      sq_clip(path, cbuf, sizeof cbuf));
    } else {
        ret = sq_db_fail(st, rc, err, "reading an artifact");
    }
    sqlite3_finalize(s);
    return ret;
}

int store_artifact_delete(struct store *st, const uint8_t run[16], const char *path, int64_t *n,
                          struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char hex[33], cbuf[CLIP_LEN + 4];
    int64_t rid;
    int rc, ret;

    sq_err_clear(err);
    *n = 0;
    if ((path[0] && (ret = check_path(path, "artifact path", err)) != 0) ||
        (ret = sq_writable(st, err)) != 0 || (ret = sq_run_find_live(st, run, &rid, err)) != 0)
        return ret;
    /* the file itself, or the paths under it: PATH/ up to PATH0 (the next byte after '/') */
    ret = sq_prep(st,
                  "DELETE FROM artifacts WHERE run = ?1 AND (?2 = '' OR path = ?2 OR"
                  " (path >= ?2 || '/' AND path < ?2 || '0'))",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, rid);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "deleting artifacts");
    else if ((*n = sqlite3_changes(st->db)) == 0) {
        sq_hex_of(run, hex);
        ret = sq_fail(err, STORE_E_NOT_FOUND, "run %s has no artifact \"%s\"", hex,
                      sq_clip(path, cbuf, sizeof cbuf));
    }
    sqlite3_finalize(s);
    return ret;
}

/* Fills a from the current row of s (path, digest, size, logged_ms at col). */
static int row_of(sqlite3_stmt *s, int col, struct store_artifact *a, struct store_err *err)
{
    a->path = (const char *)sqlite3_column_text(s, col);
    if (!a->path || sqlite3_column_bytes(s, col + 1) != 32)
        return sq_fail(err, STORE_E_CORRUPT, "an artifact row has no path or a bad digest");
    memcpy(a->digest, sqlite3_column_blob(s, col + 1), 32);
    a->size = sqlite3_column_int64(s, col + 2);
    a->logged_ms = sqlite3_column_int64(s, col + 3);
    return 0;
}

int store_artifact_list_after(struct store *st, const uint8_t run[16], const char *prefix,
                              const char *after, int limit, store_artifact_cb cb, void *ctx,
                              struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t rid;
    int rc, ret;

    sq_err_clear(err);
    if ((ret = sq_run_find(st, run, &rid, "run", err)) != 0)
        return ret;
    ret = sq_prep(st,
                  "SELECT path, digest, size, logged_ms FROM artifacts WHERE run = ?1"
                  " AND substr(CAST(path AS BLOB), 1, length(CAST(?2 AS BLOB))) = CAST(?2 AS BLOB)"
                  " AND (?3 IS NULL OR path > ?3) ORDER BY path LIMIT ?4",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, rid);
    sqlite3_bind_text(s, 2, prefix ? prefix : "", -1, SQLITE_STATIC);
    if (after)
        sqlite3_bind_text(s, 3, after, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 3);
    sqlite3_bind_int64(s, 4, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_artifact a;
        if ((ret = row_of(s, 0, &a, err)) != 0)
            break;
        if ((rc = cb(ctx, &a)) != 0) {
            ret = sq_cb_stop(err, rc);
            break;
        }
    }
    if (!ret && rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing artifacts");
    sqlite3_finalize(s);
    return ret;
}

int store_artifact_list(struct store *st, const uint8_t run[16], const char *prefix,
                        store_artifact_cb cb, void *ctx, struct store_err *err)
{
    return store_artifact_list_after(st, run, prefix, NULL, 0, cb, ctx, err);
}

int store_artifact_each_digest(struct store *st, void (*cb)(void *ctx, const uint8_t digest[32]),
                               void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    sq_err_clear(err);
    ret = sq_prep(st, "SELECT DISTINCT digest FROM artifacts", &s, err);
    if (ret)
        return ret;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (sqlite3_column_bytes(s, 0) == 32)
            cb(ctx, sqlite3_column_blob(s, 0));
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing artifact digests");
    sqlite3_finalize(s);
    return ret;
}

int store_artifact_each(struct store *st, store_artifact_row_cb cb, void *ctx,
                        struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    sq_err_clear(err);
    ret = sq_prep(st,
                  "SELECT r.uuid, a.path, a.digest, a.size, a.logged_ms FROM artifacts a"
                  " JOIN runs r ON r.id = a.run ORDER BY a.run, a.path",
                  &s, err);
    if (ret)
        return ret;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_artifact a;
        uint8_t run[16];
        if (sqlite3_column_bytes(s, 0) != 16) {
            ret = sq_fail(err, STORE_E_CORRUPT, "a run id is not 16 bytes");
            break;
        }
        memcpy(run, sqlite3_column_blob(s, 0), 16);
        if ((ret = row_of(s, 1, &a, err)) != 0)
            break;
        if ((rc = cb(ctx, run, &a)) != 0) {
            ret = sq_cb_stop(err, rc);
            break;
        }
    }
    if (!ret && rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing artifacts");
    sqlite3_finalize(s);
    return ret;
}

int store_artifact_count(struct store *st, const uint8_t run[16], int64_t *count, int64_t *bytes,
                         struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t rid = 0;
    int rc, ret;

    sq_err_clear(err);
    if (run && (ret = sq_run_find(st, run, &rid, "run", err)) != 0)
        return ret;
    ret = sq_prep(st,
                  run ? "SELECT count(*), coalesce(sum(size), 0) FROM artifacts WHERE run = ?1"
                      : "SELECT count(*), coalesce(sum(size), 0) FROM artifacts",
                  &s, err);
    if (ret)
        return ret;
    if (run)
        sqlite3_bind_int64(s, 1, rid);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (count)
            *count = sqlite3_column_int64(s, 0);
        if (bytes)
            *bytes = sqlite3_column_int64(s, 1);
    } else {
        ret = sq_db_fail(st, rc, err, "counting artifacts");
    }
    sqlite3_finalize(s);
    return ret;
}
