/*
 * store_grant.c: who may do what on which experiment (README "Roles and
 * grants"). A grant row gives one user a level on one experiment. The rule
 * lives here once, in two forms that must agree: store_grant_level for one
 * experiment (the daemon's dispatch check) and store_grant_sql, the same
 * rule as an SQL expression over an experiment id column, so that lists
 * (runs, experiments, whoami) filter inside their query and stay one query.
 *
 *   admin role or local owner       manage
 *   grant row (user, experiment)    its level (above or below the role)
 *   other grant rows, none of ours  none (the experiment is restricted)
 *   no grant rows at all            the role's own level (open)
 *
 * The role numbers equal the levels they give on an open experiment
 * (reader 1 = read, writer 2 = write, admin 3 = manage). Nothing is cached:
 * every call reads the tables, so a grant counts from the next request.
 */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

const char *store_level_name(int level)
{
    switch (level) {
    case STORE_LEVEL_READ:
        return "read";
    case STORE_LEVEL_WRITE:
        return "write";
    case STORE_LEVEL_MANAGE:
        return "manage";
    default:
        return "none";
    }
}

int store_level_parse(const char *s)
{
    if (!s)
        return 0;
    if (strcmp(s, "read") == 0)
        return STORE_LEVEL_READ;
    if (strcmp(s, "write") == 0)
        return STORE_LEVEL_WRITE;
    if (strcmp(s, "manage") == 0)
        return STORE_LEVEL_MANAGE;
    return 0;
}

static int sees_all(const struct store_viewer *v)
{
    return !v || v->all || v->role >= STORE_ROLE_ADMIN;
}

/* The level expression for a viewer that is not all-seeing. */
static int level_expr(const struct store_viewer *v, const char *col, char *buf, size_t cap)
{
    int role = v->role < 0 ? 0 : v->role > STORE_ROLE_WRITER ? STORE_ROLE_WRITER : v->role;
    int n = snprintf(buf, cap,
                     "coalesce((SELECT g.level FROM grants g WHERE g.experiment = %s"
                     " AND g.user = %lld), CASE WHEN EXISTS(SELECT 1 FROM grants g"
                     " WHERE g.experiment = %s) THEN 0 ELSE %d END)",
                     col, (long long)v->user_id, col, role);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int store_grant_sql(const struct store_viewer *v, const char *col, int level, char *buf, size_t cap)
{
    char e[600];
    int n;

    if (sees_all(v)) {
        n = snprintf(buf, cap, "1");
        return n < 0 || (size_t)n >= cap ? -1 : 0;
    }
    if (level_expr(v, col, e, sizeof e))
        return -1;
    n = snprintf(buf, cap, "(%s >= %d)", e, level);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int store_grant_level(struct store *st, const struct store_viewer *v, int64_t experiment_id,
                      int *level, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    *level = STORE_LEVEL_NONE;
    if (sees_all(v)) {
        *level = STORE_LEVEL_MANAGE;
        return 0;
    }
    /* level_expr's rule with the user and role bound: one statement for
     * every caller, kept prepared (a sealed request asks this each time) */
    int role = v->role < 0 ? 0 : v->role > STORE_ROLE_WRITER ? STORE_ROLE_WRITER : v->role;
    if ((ret = sq_prep_lit(st,
                           "SELECT coalesce((SELECT g.level FROM grants g WHERE g.experiment = ?1"
                           " AND g.user = ?2), CASE WHEN EXISTS(SELECT 1 FROM grants g"
                           " WHERE g.experiment = ?1) THEN 0 ELSE ?3 END)",
                           &s, err)))
        return ret;
    sqlite3_bind_int64(s, 1, experiment_id);
    sqlite3_bind_int64(s, 2, v->user_id);
    sqlite3_bind_int(s, 3, role);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *level = sqlite3_column_int(s, 0);
    else
        ret = sq_db_fail(st, rc, err, "reading a grant");
    sq_release(st, s);
    return ret;
}

int store_experiment_id(struct store *st, const char *name, int64_t *id, struct store_err *err)
{
    char cbuf[CLIP_LEN + 4];
    int found = 0;
    int ret = sq_experiment_id_of(st, name ? name : "", id, &found, err);
    if (ret == 0 && !found)
        ret = sq_fail(err, STORE_E_NOT_FOUND, "experiment \"%s\" not found",
                      sq_clip(name ? name : "", cbuf, sizeof cbuf));
    return ret;
}

int store_run_experiment(struct store *st, const uint8_t run[16], int64_t *experiment_id,
                         char *name, size_t name_cap, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char hex[33];
    int rc, ret;

    if ((ret = sq_prep_lit(st,
                           "SELECT e.id, e.name FROM runs r JOIN experiments e"
                           " ON e.id = r.experiment_id WHERE r.uuid = ?1",
                           &s, err)))
        return ret;
    sqlite3_bind_blob(s, 1, run, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *experiment_id = sqlite3_column_int64(s, 0);
        if (name && name_cap) {
            const unsigned char *t = sqlite3_column_text(s, 1);
            snprintf(name, name_cap, "%s", t ? (const char *)t : "");
        }
    } else if (rc == SQLITE_DONE) {
        sq_hex_of(run, hex);
        ret = sq_fail(err, STORE_E_NOT_FOUND, "run %s not found", hex);
    } else {
        ret = sq_db_fail(st, rc, err, "looking up a run's experiment");
    }
    sq_release(st, s);
    return ret;
}

int store_grant_run_level(struct store *st, const struct store_viewer *v, const uint8_t run[16],
                          int *level, struct store_err *err)
{
    int64_t eid = 0;
    int ret = store_run_experiment(st, run, &eid, NULL, 0, err);

    *level = STORE_LEVEL_NONE;
    if (ret == STORE_E_NOT_FOUND) {
        sq_err_clear(err);
        return 0;
    }
    return ret ? ret : store_grant_level(st, v, eid, level, err);
}

/* Runs `sql` (one text or blob bound as ?1) and answers whether it gave a row. */
static int exists_row(struct store *st, const char *sql, const char *text, const uint8_t *blob,
                      int *yes, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    *yes = 0;
    if ((ret = sq_prep(st, sql, &s, err)))
        return ret;
    if (blob)
        sqlite3_bind_blob(s, 1, blob, 32, SQLITE_STATIC);
    else
        sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *yes = 1;
    else if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "checking visibility");
    sqlite3_finalize(s);
    return ret;
}

int store_model_visible(struct store *st, const struct store_viewer *v, const char *name,
                        int *visible, struct store_err *err)
{
    char pred[700], sql[1200];

    if (store_grant_sql(v, "r.experiment_id", STORE_LEVEL_READ, pred, sizeof pred))
        return sq_fail(err, STORE_E_INTERNAL, "grant query too long");
    snprintf(sql, sizeof sql,
             "SELECT 1 FROM models m JOIN model_versions mv ON mv.model = m.id"
             " JOIN runs r ON r.uuid = mv.run WHERE m.name = ?1 AND %s LIMIT 1",
             pred);
    if (sees_all(v)) /* a version whose run is gone still shows to those who see all */
        snprintf(sql, sizeof sql, "SELECT 1 FROM models WHERE name = ?1");
    return exists_row(st, sql, name ? name : "", NULL, visible, err);
}

int store_digest_visible(struct store *st, const struct store_viewer *v, const uint8_t digest[32],
                         int *visible, struct store_err *err)
{
    char pred[700], sql[1600];
    int ret;

    *visible = 1;
    if (sees_all(v))
        return 0;
    if (store_grant_sql(v, "r.experiment_id", STORE_LEVEL_READ, pred, sizeof pred))
        return sq_fail(err, STORE_E_INTERNAL, "grant query too long");
    snprintf(sql, sizeof sql,
             "SELECT 1 FROM artifacts a JOIN runs r ON r.id = a.run"
             " WHERE a.digest = ?1 AND %s LIMIT 1",
             pred);
    if ((ret = exists_row(st, sql, NULL, digest, visible, err)) || *visible)
        return ret;
    snprintf(sql, sizeof sql,
             "SELECT 1 FROM model_versions mv JOIN runs r ON r.uuid = mv.run"
             " WHERE mv.digest = ?1 AND %s LIMIT 1",
             pred);
    return exists_row(st, sql, NULL, digest, visible, err);
}

/* ---- changing and listing grants --------------------------------------------------- */

static int count_grantees(struct store *st, int64_t eid, int64_t *n, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if (!n)
        return 0;
    if ((ret = sq_prep(st, "SELECT count(*) FROM grants WHERE experiment = ?1", &s, err)))
        return ret;
    sqlite3_bind_int64(s, 1, eid);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    else
        ret = sq_db_fail(st, rc, err, "counting grants");
    sqlite3_finalize(s);
    return ret;
}

/* Runs sql with ?1 = user id, ?2 = experiment id, ?3 = level; rows changed or < 0. */
static int exec_grant(struct store *st, const char *sql, int64_t uid, int64_t eid, int level,
                      struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = sq_prep(st, sql, &s, err)))
        return ret;
    sqlite3_bind_int64(s, 1, uid);
    sqlite3_bind_int64(s, 2, eid);
    sqlite3_bind_int(s, 3, level);
    rc = sqlite3_step(s);
    ret = rc == SQLITE_DONE ? sqlite3_changes(st->db) : sq_db_fail(st, rc, err, "changing a grant");
    sqlite3_finalize(s);
    return ret;
}

int store_grant_set(struct store *st, const char *user, const char *experiment, int level,
                    int64_t *grantees, struct store_err *err)
{
    struct store_user u;
    int64_t eid = 0;
    int ret;

    if ((ret = sq_writable(st, err)))
        return ret;
    if (level < STORE_LEVEL_READ || level > STORE_LEVEL_MANAGE)
        return sq_fail(err, STORE_E_INVALID, "level %d: must be read, write or manage", level);
    if ((ret = store_user_by_name(st, user, &u, err)) ||
        (ret = store_experiment_id(st, experiment, &eid, err)))
        return ret;
    ret = exec_grant(st,
                     "INSERT INTO grants(user, experiment, level) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(user, experiment) DO UPDATE SET level = excluded.level",
                     u.id, eid, level, err);
    if (ret < 0)
        return ret;
    return count_grantees(st, eid, grantees, err);
}

int store_grant_revoke(struct store *st, const char *user, const char *experiment, int *removed,
                       int64_t *grantees, struct store_err *err)
{
    struct store_user u;
    int64_t eid = 0;
    int ret;

    if ((ret = sq_writable(st, err)) || (ret = store_user_by_name(st, user, &u, err)) ||
        (ret = store_experiment_id(st, experiment, &eid, err)))
        return ret;
    ret = exec_grant(st, "DELETE FROM grants WHERE user = ?1 AND experiment = ?2 AND ?3 = ?3", u.id,
                     eid, 0, err);
    if (ret < 0)
        return ret;
    if (removed)
        *removed = ret > 0;
    return count_grantees(st, eid, grantees, err);
}

int store_grant_list(struct store *st, const char *user, const char *experiment, store_grant_cb cb,
                     void *ctx, struct store_err *err)
{
    struct store_user u = {0};
    int64_t eid = 0;
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if (user && *user && (ret = store_user_by_name(st, user, &u, err)))
        return ret;
    if (experiment && *experiment && (ret = store_experiment_id(st, experiment, &eid, err)))
        return ret;
    if ((ret = sq_prep(st,
                       "SELECT u.name, e.name, g.level FROM grants g JOIN users u ON u.id = g.user"
                       " JOIN experiments e ON e.id = g.experiment"
                       " WHERE (?1 = 0 OR g.user = ?1) AND (?2 = 0 OR g.experiment = ?2)"
                       " ORDER BY e.name, u.name",
                       &s, err)))
        return ret;
    sqlite3_bind_int64(s, 1, u.id);
    sqlite3_bind_int64(s, 2, eid);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_grant g = {
            .user = (const char *)sqlite3_column_text(s, 0),
            .experiment = (const char *)sqlite3_column_text(s, 1),
            .level = sqlite3_column_int(s, 2),
        };
        if ((ret = cb(ctx, &g)) != 0)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing grants");
    sqlite3_finalize(s);
    return ret ? sq_cb_stop(err, ret) : 0;
}

int store_grant_visible(struct store *st, const struct store_viewer *v, store_access_cb cb,
                        void *ctx, struct store_err *err)
{
    char e[600], sql[900];
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if (sees_all(v))
        snprintf(e, sizeof e, "%d", STORE_LEVEL_MANAGE);
    else if (level_expr(v, "x.id", e, sizeof e))
        return sq_fail(err, STORE_E_INTERNAL, "grant query too long");
    snprintf(sql, sizeof sql,
             "SELECT name, lv FROM (SELECT x.name AS name, %s AS lv FROM experiments x)"
             " WHERE lv > 0 ORDER BY name",
             e);
    if ((ret = sq_prep(st, sql, &s, err)))
        return ret;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(s, 0);
        if ((ret = cb(ctx, name ? (const char *)name : "", sqlite3_column_int(s, 1))) != 0)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing visible experiments");
    sqlite3_finalize(s);
    return ret ? sq_cb_stop(err, ret) : 0;
}
