/*
 * store_experiment.c: experiments: create, ensure (the `Default` one made at
 * a run's first start), and list. Names are checked here.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"

/* ---- experiments ----------------------------------------------------------------- */

int sq_check_name(const char *name, const char *what, struct store_err *err)
{
    if (name == NULL || name[0] == '\0')
        return sq_fail(err, STORE_E_INVALID, "%s is empty", what);
    return 0;
}

/* STORE_E_EXISTS when the name is taken. */
int store_experiment_create(struct store *st, const char *name, int64_t now, int64_t *id,
                            struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char cbuf[CLIP_LEN + 4];
    int rc, ret;

    sq_err_clear(err);
    if ((ret = sq_check_name(name, "experiment name", err)) != 0 ||
        (ret = sq_writable(st, err)) != 0)
        return ret;
    ret = sq_prep(st, "INSERT INTO experiments(name, archived, created_ms) VALUES(?1, 0, ?2)", &s,
                  err);
    if (ret)
        return ret;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        if (id)
            *id = sqlite3_last_insert_rowid(st->db);
    } else if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        ret = sq_fail(err, STORE_E_EXISTS, "experiment \"%s\" already exists",
                      sq_clip(name, cbuf, sizeof cbuf));
    } else {
        ret = sq_db_fail(st, rc, err, "creating an experiment");
    }
    sqlite3_finalize(s);
    return ret;
}

int sq_experiment_id_of(struct store *st, const char *name, int64_t *id, int *found,
                        struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret = sq_prep_lit(st, "SELECT id FROM experiments WHERE name = ?1", &s, err);

    *found = 0;
    if (ret)
        return ret;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "looking up an experiment");
    }
    sq_release(st, s);
    return ret;
}

/* Finds `name`, creating it (not archived, created at now) when missing. */
int store_experiment_ensure(struct store *st, const char *name, int64_t now, int64_t *id,
                            struct store_err *err)
{
    int64_t found_id = 0;
    int found = 0, ret;

    sq_err_clear(err);
    if ((ret = sq_check_name(name, "experiment name", err)) != 0)
        return ret;
    ret = sq_experiment_id_of(st, name, &found_id, &found, err);
    if (ret)
        return ret;
    if (!found)
        return store_experiment_create(st, name, now, id, err);
    if (id)
        *id = found_id;
    return 0;
}

/* Calls cb for every experiment in creation order; a non-zero answer from
 * cb stops the listing and is returned. */
int store_experiment_list(struct store *st, store_experiment_cb cb, void *ctx,
                          struct store_err *err)
{
    return store_experiment_list_as(st, NULL, cb, ctx, err);
}

int store_experiment_list_as(struct store *st, const struct store_viewer *v, store_experiment_cb cb,
                             void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char pred[700], sql[1000];
    int rc, ret;

    sq_err_clear(err);
    if (cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "callback missing");
    if (store_grant_sql(v, "e.id", STORE_LEVEL_READ, pred, sizeof pred))
        return sq_fail(err, STORE_E_INTERNAL, "grant query too long");
    snprintf(sql, sizeof sql,
             "SELECT e.id, e.name, e.archived, e.created_ms,"
             " (SELECT count(*) FROM runs r WHERE r.experiment_id = e.id)"
             " FROM experiments e WHERE %s ORDER BY e.id",
             pred);
    ret = sq_prep(st, sql, &s, err);
    if (ret)
        return ret;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_experiment e = {
            .id = sqlite3_column_int64(s, 0),
            .name = (const char *)sqlite3_column_text(s, 1),
            .archived = sqlite3_column_int(s, 2),
            .created_ms = sqlite3_column_int64(s, 3),
            .run_count = sqlite3_column_int64(s, 4),
        };
        if (e.name == NULL)
            e.name = "";
        ret = cb(ctx, &e);
        if (ret) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing experiments");
out:
    sqlite3_finalize(s);
    return ret;
}
