/*
 * store_audit.c: the audit table. One row per write or admin action, and
 * per write refused for permission, appended by the daemon in the same
 * transaction as the write (a refusal in a transaction of its own, after the
 * refused request's savepoint is rolled back). A row copies the user's name
 * and key, so it outlives the user; nothing but store_audit_prune, an
 * admin's explicit action, ever changes or removes one (run deletion and gc
 * do not touch this table).
 */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

int store_audit_add(struct store *st, const struct store_audit *a, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = sq_writable(st, err)))
        return ret;
    if ((ret = sq_prep_lit(st,
                           "INSERT INTO audit(ms, user, key, op, experiment, run, detail, code)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                           &s, err)))
        return ret;
    sqlite3_bind_int64(s, 1, a->ms);
    sqlite3_bind_text(s, 2, a->user ? a->user : "", -1, SQLITE_STATIC);
    if (a->has_key)
        sqlite3_bind_blob(s, 3, a->key, STORE_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, a->op ? a->op : "", -1, SQLITE_STATIC);
    if (a->experiment && *a->experiment)
        sqlite3_bind_text(s, 5, a->experiment, -1, SQLITE_STATIC);
    if (a->has_run)
        sqlite3_bind_blob(s, 6, a->run, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, a->detail ? a->detail : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 8, a->code);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "appending an audit row");
    sq_release(st, s);
    return ret;
}

int store_audit_list(struct store *st, const struct store_audit_query *q, store_audit_cb cb,
                     void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if (!q || q->limit < 1)
        return sq_fail(err, STORE_E_INVALID, "audit list: limit must be at least 1");
    if ((ret = sq_prep(st,
                       "SELECT id, ms, user, key, op, experiment, run, detail, code FROM audit"
                       " WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR experiment = ?2)"
                       " AND ms >= ?3 AND (?4 = 0 OR id < ?4) ORDER BY id DESC LIMIT ?5",
                       &s, err)))
        return ret;
    if (q->user && *q->user)
        sqlite3_bind_text(s, 1, q->user, -1, SQLITE_STATIC);
    if (q->experiment && *q->experiment)
        sqlite3_bind_text(s, 2, q->experiment, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, q->since_ms);
    sqlite3_bind_int64(s, 4, q->before_id);
    sqlite3_bind_int(s, 5, q->limit);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_audit a = {
            .id = sqlite3_column_int64(s, 0),
            .ms = sqlite3_column_int64(s, 1),
            .user = (const char *)sqlite3_column_text(s, 2),
            .op = (const char *)sqlite3_column_text(s, 4),
            .experiment = (const char *)sqlite3_column_text(s, 5),
            .detail = (const char *)sqlite3_column_text(s, 7),
            .code = sqlite3_column_int(s, 8),
        };
        if (sqlite3_column_bytes(s, 3) == STORE_KEY_BYTES) {
            a.has_key = 1;
            memcpy(a.key, sqlite3_column_blob(s, 3), STORE_KEY_BYTES);
        }
        if (sqlite3_column_bytes(s, 6) == 16) {
            a.has_run = 1;
            memcpy(a.run, sqlite3_column_blob(s, 6), 16);
        }
        if ((ret = cb(ctx, &a)) != 0)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing audit rows");
    sqlite3_finalize(s);
    return ret ? sq_cb_stop(err, ret) : 0;
}

int store_audit_prune(struct store *st, int64_t before_ms, int64_t *removed, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = sq_writable(st, err)))
        return ret;
    if ((ret = sq_prep(st, "DELETE FROM audit WHERE ms < ?1", &s, err)))
        return ret;
    sqlite3_bind_int64(s, 1, before_ms);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "pruning audit rows");
    else if (removed)
        *removed = sqlite3_changes(st->db);
    sqlite3_finalize(s);
    return ret;
}
