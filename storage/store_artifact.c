/*
 * store_artifact.c: the artifacts table, (run, path) -> the digest and size
 * of a blob and when it was logged. The blobs themselves are blob.c's; the
 * upload that fills this table is the daemon's.
 */
#include <string.h>

#include "store_internal.h"

/* Records (or replaces) the artifact `path` of `run`. */
int store_artifact_put(struct store *st, const uint8_t run[16], const char *path,
                       const uint8_t digest[32], int64_t size, int64_t logged_ms,
                       struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t run_id;
    int rc, ret;

    sq_err_clear(err);
    if (path == NULL || path[0] == '\0')
        return sq_fail(err, STORE_E_INVALID, "artifact path is empty");
    if ((ret = sq_writable(st, err)) != 0 || (ret = sq_run_find(st, run, &run_id, "run", err)) != 0)
        return ret;
    ret = sq_prep(st,
                  "INSERT INTO artifacts(run, path, digest, size, logged_ms)"
                  " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(run, path) DO UPDATE SET"
                  " digest = excluded.digest, size = excluded.size,"
                  " logged_ms = excluded.logged_ms",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
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

/* The digest, size and time of (run, path); STORE_E_NOT_FOUND naming both. */
int store_artifact_get(struct store *st, const uint8_t run[16], const char *path,
                       uint8_t digest[32], int64_t *size, int64_t *logged_ms, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char hex[33], cbuf[CLIP_LEN + 4];
    int64_t run_id;
    int rc, ret;

    sq_err_clear(err);
    if (path == NULL)
        return sq_fail(err, STORE_E_INVALID, "artifact path missing");
    if ((ret = sq_run_find(st, run, &run_id, "run", err)) != 0)
        return ret;
    ret = sq_prep(st, "SELECT digest, size, logged_ms FROM artifacts WHERE run = ?1 AND path = ?2",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 32) {
        memcpy(digest, sqlite3_column_blob(s, 0), 32);
        if (size)
            *size = sqlite3_column_int64(s, 1);
        if (logged_ms)
            *logged_ms = sqlite3_column_int64(s, 2);
    } else if (rc == SQLITE_ROW) {
        ret = sq_fail(err, STORE_E_CORRUPT, "artifact \"%s\" has a digest of %d bytes",
                      sq_clip(path, cbuf, sizeof cbuf), sqlite3_column_bytes(s, 0));
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
