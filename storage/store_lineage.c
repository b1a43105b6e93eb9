/*
 * store_lineage.c: the reads behind `track lineage RUN`: a run's children
 * (runs whose parent_uuid is it), its artifacts and the model versions made
 * from it. The parent chain is walked by the caller with store_run_get (one
 * run at a time, so it bounds the depth); the sys.* tags come from
 * store_tag_list. The artifacts and model tables are other modules': each
 * listing checks that its table exists and answers no rows when it does not.
 * Column names used: artifacts(run -> runs.id, path, digest, size),
 * model_versions(model -> models.id, version, run = runs.uuid, path,
 * digest), models(id, name).
 */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

int store_lineage_children(struct store *st, const uint8_t id[16], int limit, store_run_cb cb,
                           void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    struct store_run r;
    int rc, ret;

    sq_err_clear(err);
    if (id == NULL || cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "run id or callback missing");
    ret = sq_prep(st, RUN_SELECT " WHERE r.parent_uuid = ?1 ORDER BY r.start_ms, r.id LIMIT ?2", &s,
                  err);
    if (ret)
        return ret;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&r, 0, sizeof r);
        if (sqlite3_column_bytes(s, 0) != 16) {
            ret = sq_fail(err, STORE_E_CORRUPT, "a run has a malformed id");
            goto out;
        }
        memcpy(r.id, sqlite3_column_blob(s, 0), 16);
        r.name = (const char *)sqlite3_column_text(s, 1);
        r.experiment = (const char *)sqlite3_column_text(s, 2);
        r.status = sqlite3_column_int(s, 3);
        r.start_ms = sqlite3_column_int64(s, 4);
        r.end_ms = sqlite3_column_int64(s, 5);
        r.user = (const char *)sqlite3_column_text(s, 6);
        r.has_parent = 1;
        memcpy(r.parent, id, 16);
        r.deleted =
            sqlite3_column_bytes(s, 8) == 7 && memcmp(sqlite3_column_text(s, 8), "deleted", 7) == 0;
        r.deleted_ms = sqlite3_column_int64(s, 9);
        if (!r.name)
            r.name = "";
        if (!r.experiment)
            r.experiment = "";
        if (!r.user)
            r.user = "";
        if ((ret = cb(ctx, &r)) != 0) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing child runs");
out:
    sqlite3_finalize(s);
    return ret;
}

int store_lineage_artifacts(struct store *st, const uint8_t id[16], int limit,
                            store_lineage_artifact_cb cb, void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    struct store_lineage_artifact a;
    int64_t run_id;
    int yes = 0, rc, ret;

    sq_err_clear(err);
    if (id == NULL || cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "run id or callback missing");
    if ((ret = sq_run_find(st, id, &run_id, "run", err)) != 0 ||
        (ret = sq_table_exists(st, "artifacts", &yes, err)) != 0 || !yes)
        return ret;
    ret = sq_prep(st,
                  "SELECT path, digest, size FROM artifacts WHERE run = ?1 ORDER BY path LIMIT ?2",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, run_id); /* artifacts.run is runs.id */
    sqlite3_bind_int(s, 2, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&a, 0, sizeof a);
        a.path = (const char *)sqlite3_column_text(s, 0);
        if (!a.path)
            a.path = "";
        if (sq_digest_of(s, 1, a.digest)) {
            ret =
                sq_fail(err, STORE_E_CORRUPT, "artifact \"%.200s\" has a malformed digest", a.path);
            goto out;
        }
        a.size = sqlite3_column_int64(s, 2);
        if ((ret = cb(ctx, &a)) != 0) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing a run's artifacts");
out:
    sqlite3_finalize(s);
    return ret;
}

int store_lineage_versions(struct store *st, const uint8_t id[16], int limit,
                           store_lineage_version_cb cb, void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    struct store_lineage_version v;
    int64_t run_id;
    int yes = 0, models = 0, rc, ret;

    sq_err_clear(err);
    if (id == NULL || cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "run id or callback missing");
    if ((ret = sq_run_find(st, id, &run_id, "run", err)) != 0 ||
        (ret = sq_table_exists(st, "model_versions", &yes, err)) != 0 ||
        (ret = sq_table_exists(st, "models", &models, err)) != 0 || !yes || !models)
        return ret;
    ret = sq_prep(st,
                  "SELECT m.name, v.version, v.path, v.digest FROM model_versions v"
                  " JOIN models m ON m.id = v.model WHERE v.run = ?1"
                  " ORDER BY m.name, v.version LIMIT ?2",
                  &s, err);
    if (ret)
        return ret;
    (void)run_id; /* found: the run exists (a version names it by uuid) */
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&v, 0, sizeof v);
        v.model = (const char *)sqlite3_column_text(s, 0);
        v.version = sqlite3_column_int64(s, 1);
        v.path = (const char *)sqlite3_column_text(s, 2);
        if (!v.model)
            v.model = "";
        if (!v.path)
            v.path = "";
        if (sq_digest_of(s, 3, v.digest)) {
            ret = sq_fail(err, STORE_E_CORRUPT, "a model version has a malformed digest");
            goto out;
        }
        if ((ret = cb(ctx, &v)) != 0) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing a run's model versions");
out:
    sqlite3_finalize(s);
    return ret;
}
