/*
 * store_model.c: the model registry: models, their numbered versions (each
 * pinning a run's artifact path and the digest it had at register time),
 * aliases with the history of every move, and tags on models and versions.
 * store_model_resolve is the one place "NAME/VERSION" and "NAME@ALIAS" are
 * understood; every function taking a reference goes through it. The
 * artifacts table is store_artifact.c's; blobs are blob.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define VERSION_COLS                                                                               \
    "m.name, v.version, v.run, v.path, v.digest, v.size, v.description, v.user, v.created_ms"

/* ---- names ------------------------------------------------------------------ */

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int store_model_check_name(const char *name, struct store_err *err)
{
    char cbuf[CLIP_LEN + 4];
    size_t len = name ? strlen(name) : 0;

    if (len == 0)
        return sq_fail(err, STORE_E_INVALID, "model name is empty");
    if (len > STORE_MODEL_NAME_MAX)
        return sq_fail(err, STORE_E_INVALID, "model name of %zu bytes: at most %d bytes", len,
                       STORE_MODEL_NAME_MAX);
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(name[i]) && name[i] != '_' && name[i] != '-' && name[i] != '.')
            return sq_fail(err, STORE_E_INVALID,
                           "model name \"%s\": only letters, digits and _ - . are allowed",
                           sq_clip(name, cbuf, sizeof cbuf));
    return 0;
}

int store_model_check_alias(const char *alias, struct store_err *err)
{
    char cbuf[CLIP_LEN + 4];
    size_t len = alias ? strlen(alias) : 0;
    int digits = 1;

    if (len == 0)
        return sq_fail(err, STORE_E_INVALID, "alias is empty");
    if (len > STORE_MODEL_NAME_MAX)
        return sq_fail(err, STORE_E_INVALID, "alias of %zu bytes: at most %d bytes", len,
                       STORE_MODEL_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        if (!is_alnum(alias[i]) && alias[i] != '_' && alias[i] != '-')
            return sq_fail(err, STORE_E_INVALID,
                           "alias \"%s\": only letters, digits, _ and - are allowed, "
                           "not all digits",
                           sq_clip(alias, cbuf, sizeof cbuf));
        if (alias[i] < '0' || alias[i] > '9')
            digits = 0;
    }
    if (digits)
        return sq_fail(err, STORE_E_INVALID,
                       "alias \"%s\": must not be all digits (NAME@%s would read as a version)",
                       alias, alias);
    return 0;
}

/* ---- lookups ----------------------------------------------------------------- */

static int model_id_of(struct store *st, const char *name, int64_t *id, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = store_model_check_name(name, err)) != 0)
        return ret;
    if ((ret = sq_prep(st, "SELECT id FROM models WHERE name = ?1", &s, err)) != 0)
        return ret;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        ret = sq_fail(err, STORE_E_NOT_FOUND, "model \"%s\" not found", name);
    else
        ret = sq_db_fail(st, rc, err, "looking up a model");
    sqlite3_finalize(s);
    return ret;
}

/* One int64 from a query binding (?1 = a, ?2 = b, ?3 = text c or NULL);
 * *found says whether it gave a row. */
static int one_int(struct store *st, const char *sql, int64_t a, int64_t b, const char *c,
                   int64_t *out, int *found, struct store_err *err, const char *what)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    *found = 0;
    if ((ret = sq_prep(st, sql, &s, err)) != 0)
        return ret;
    sqlite3_bind_int64(s, 1, a);
    sqlite3_bind_int64(s, 2, b);
    if (c)
        sqlite3_bind_text(s, 3, c, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, what);
    }
    sqlite3_finalize(s);
    return ret;
}

/* Steps the write s once and finalizes it (*s NULL after); 0, or the
 * database's failure naming `what`. */
static int step_done(struct store *st, sqlite3_stmt **s, struct store_err *err, const char *what)
{
    int rc = sqlite3_step(*s);

    sqlite3_finalize(*s);
    *s = NULL;
    return rc == SQLITE_DONE ? 0 : sq_db_fail(st, rc, err, what);
}

static int parse_version(const char *s, int64_t *v)
{
    int64_t n = 0;

    if (*s == '\0' || strlen(s) > 18)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        n = n * 10 + (*s - '0');
    }
    if (n < 1)
        return -1;
    *v = n;
    return 0;
}

int store_model_resolve(struct store *st, const char *ref, int64_t *model_id, int64_t *version,
                        struct store_err *err)
{
    char name[STORE_MODEL_NAME_MAX + 1], cbuf[CLIP_LEN + 4];
    const char *sep = ref ? strpbrk(ref, "@/") : NULL;
    int64_t id = 0, v = 0;
    int found = 0, ret;

    sq_err_clear(err);
    if (!sep)
        return sq_fail(err, STORE_E_INVALID,
                       "model version \"%s\": expected NAME/VERSION or NAME@ALIAS",
                       ref ? sq_clip(ref, cbuf, sizeof cbuf) : "");
    if ((size_t)(sep - ref) > STORE_MODEL_NAME_MAX)
        return sq_fail(err, STORE_E_INVALID, "model name of %zu bytes: at most %d bytes",
                       (size_t)(sep - ref), STORE_MODEL_NAME_MAX);
    memcpy(name, ref, (size_t)(sep - ref));
    name[sep - ref] = '\0';
    if ((ret = model_id_of(st, name, &id, err)) != 0)
        return ret;
    if (*sep == '/') {
        if (parse_version(sep + 1, &v))
            return sq_fail(err, STORE_E_INVALID,
                           "model version \"%s\": VERSION must be a number from 1",
                           sq_clip(ref, cbuf, sizeof cbuf));
        ret = one_int(st, "SELECT version FROM model_versions WHERE model = ?1 AND version = ?2",
                      id, v, NULL, &v, &found, err, "looking up a model version");
        if (!ret && !found)
            ret = sq_fail(err, STORE_E_NOT_FOUND, "model \"%s\" has no version %s", name, sep + 1);
    } else {
        if ((ret = store_model_check_alias(sep + 1, err)) != 0)
            return ret;
        ret = one_int(st,
                      "SELECT version FROM model_aliases WHERE model = ?1 AND ?2 = ?2"
                      " AND alias = ?3",
                      id, 0, sep + 1, &v, &found, err, "looking up a model alias");
        if (!ret && !found)
            ret =
                sq_fail(err, STORE_E_NOT_FOUND, "model \"%s\" has no alias \"%s\"", name, sep + 1);
    }
    if (ret)
        return ret;
    *model_id = id;
    *version = v;
    return 0;
}

/* ---- create ------------------------------------------------------------------- */

int store_model_create(struct store *st, const char *name, int64_t now_ms, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret;

    sq_err_clear(err);
    if ((ret = store_model_check_name(name, err)) != 0 || (ret = sq_writable(st, err)) != 0)
        return ret;
    ret = sq_prep(st, "INSERT INTO models(name, created_ms) VALUES(?1, ?2) ON CONFLICT DO NOTHING",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now_ms);
    if ((ret = step_done(st, &s, err, "creating a model")) != 0)
        return ret;
    if (sqlite3_changes(st->db) == 0)
        return sq_fail(err, STORE_E_EXISTS, "Registered Model (name=%s) already exists.", name);
    return 0;
}

/* ---- register ----------------------------------------------------------------- */

int store_model_register(struct store *st, const char *name, const uint8_t run[16],
                         const char *path, const char *description, const char *const *tag_keys,
                         const char *const *tag_values, size_t n_tags, int64_t now_ms,
                         int64_t *version, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    uint8_t digest[32];
    int64_t size = 0, id = 0, v = 0;
    char user[256] = "";
    int found = 0, rc, ret;

    sq_err_clear(err);
    if ((ret = store_model_check_name(name, err)) != 0 || (ret = sq_writable(st, err)) != 0)
        return ret;
    if (path == NULL || path[0] == '\0')
        return sq_fail(err, STORE_E_INVALID, "artifact path is empty");
    for (size_t i = 0; i < n_tags; i++)
        if (!tag_keys[i] || !tag_keys[i][0] || !tag_values[i])
            return sq_fail(err, STORE_E_INVALID, "tag %zu: empty key or missing value", i + 1);
    if ((ret = store_artifact_get(st, run, path, digest, &size, NULL, err)) != 0)
        return ret;
    if ((ret = sq_prep(st, "SELECT user FROM runs WHERE uuid = ?1", &s, err)) != 0)
        return ret;
    sqlite3_bind_blob(s, 1, run, 16, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        snprintf(user, sizeof user, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    s = NULL;

    ret = sq_prep(st, "INSERT INTO models(name, created_ms) VALUES(?1, ?2) ON CONFLICT DO NOTHING",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now_ms);
    if ((ret = step_done(st, &s, err, "creating a model")) != 0)
        return ret;
    if ((ret = model_id_of(st, name, &id, err)) != 0)
        return ret;
    /* the next number is read and taken in the caller's write transaction:
     * a second register waits for it and reads the number after */
    ret = one_int(st,
                  "SELECT coalesce(max(version), 0) + 1 FROM model_versions"
                  " WHERE model = ?1 AND ?2 = ?2",
                  id, 0, NULL, &v, &found, err, "numbering a model version");
    if (ret)
        return ret;
    ret = sq_prep(st,
                  "INSERT INTO model_versions(model, version, run, path, digest, size, description,"
                  " user, created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, v);
    sqlite3_bind_blob(s, 3, run, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, path, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 5, digest, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, size);
    sqlite3_bind_text(s, 7, description ? description : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, now_ms);
    if ((ret = step_done(st, &s, err, "registering a model version")) != 0)
        return ret;
    ret = sq_prep(st,
                  "INSERT INTO model_tags(model, version, key, value) VALUES(?1, ?2, ?3, ?4)"
                  " ON CONFLICT(model, version, key) DO UPDATE SET value = excluded.value",
                  &s, err);
    if (ret)
        return ret;
    for (size_t i = 0; i < n_tags && !ret; i++) {
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, v);
        sqlite3_bind_text(s, 3, tag_keys[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, tag_values[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
            ret = sq_db_fail(st, rc, err, "tagging a model version");
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    if (!ret && version)
        *version = v;
    return ret;
}

/* ---- reads ---------------------------------------------------------------------- */

static const char *text_or_empty(sqlite3_stmt *s, int col)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    return t ? t : "";
}

/* Steps s (selecting VERSION_COLS) and gives each row to cb. */
static int each_version(struct store *st, sqlite3_stmt *s, store_model_version_cb cb, void *ctx,
                        struct store_err *err)
{
    int rc, ret = 0;

    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_model_version v = {
            .model = text_or_empty(s, 0),
            .version = sqlite3_column_int64(s, 1),
            .path = text_or_empty(s, 3),
            .size = sqlite3_column_int64(s, 5),
            .description = text_or_empty(s, 6),
            .user = text_or_empty(s, 7),
            .created_ms = sqlite3_column_int64(s, 8),
        };
        if (sqlite3_column_bytes(s, 2) != 16 || sqlite3_column_bytes(s, 4) != 32)
            return sq_fail(err, STORE_E_CORRUPT, "model \"%s\" version %lld: bad run or digest",
                           v.model, (long long)v.version);
        memcpy(v.run, sqlite3_column_blob(s, 2), 16);
        memcpy(v.digest, sqlite3_column_blob(s, 4), 32);
        if ((ret = cb(ctx, &v)) != 0)
            return sq_cb_stop(err, ret);
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "reading model versions");
    return ret;
}

/* each_version over the VERSION_COLS of model_versions joined to models, the
 * rest of the statement `where`; ?1 is bound to id and ?2, when it has one, to v. */
static int select_versions(struct store *st, const char *where, int64_t id, int64_t v,
                           store_model_version_cb cb, void *ctx, struct store_err *err)
{
    char sql[512];
    sqlite3_stmt *s = NULL;
    int ret;

    snprintf(sql, sizeof sql,
             "SELECT " VERSION_COLS " FROM model_versions v JOIN models m ON m.id = v.model%s",
             where);
    if ((ret = sq_prep(st, sql, &s, err)) != 0)
        return ret;
    sqlite3_bind_int64(s, 1, id);
    if (sqlite3_bind_parameter_count(s) >= 2)
        sqlite3_bind_int64(s, 2, v);
    ret = each_version(st, s, cb, ctx, err);
    sqlite3_finalize(s);
    return ret;
}

int store_model_version_get(struct store *st, const char *ref, store_model_version_cb cb, void *ctx,
                            struct store_err *err)
{
    int64_t id, v;
    int ret;

    if (cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "callback missing");
    if ((ret = store_model_resolve(st, ref, &id, &v, err)) != 0)
        return ret;
    return select_versions(st, " WHERE v.model = ?1 AND v.version = ?2", id, v, cb, ctx, err);
}

int store_model_versions(struct store *st, const char *name, store_model_version_cb cb, void *ctx,
                         struct store_err *err)
{
    int64_t id = 0;
    int ret;

    sq_err_clear(err);
    if (cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "callback missing");
    if ((ret = model_id_of(st, name, &id, err)) != 0)
        return ret;
    return select_versions(st, " WHERE v.model = ?1 ORDER BY v.version", id, 0, cb, ctx, err);
}

int store_model_versions_after(struct store *st, const char *name, int64_t after, int limit,
                               store_model_version_cb cb, void *ctx, struct store_err *err)
{
    char where[96];
    int64_t id = 0;
    int ret;

    sq_err_clear(err);
    if (cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "callback missing");
    if ((ret = model_id_of(st, name, &id, err)) != 0)
        return ret;
    snprintf(where, sizeof where,
             " WHERE v.model = ?1 AND v.version > ?2 ORDER BY v.version LIMIT %d",
             limit > 0 ? limit : -1);
    return select_versions(st, where, id, after, cb, ctx, err);
}

/* Models by name: only `name` when given, else those after `after` (NULL:
 * from the first), at most `limit` (0: all). Counted with subqueries on the
 * version key, so a page reads only its own rows through the name index. */
static int each_model(struct store *st, const char *name, const char *after, int limit,
                      store_model_cb cb, void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret, rows = 0;

    sq_err_clear(err);
    if (cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "callback missing");
    ret = sq_prep(st,
                  "SELECT m.name, m.created_ms,"
                  " (SELECT count(*) FROM model_versions v WHERE v.model = m.id),"
                  " (SELECT coalesce(max(v.version), 0) FROM model_versions v"
                  "  WHERE v.model = m.id)"
                  " FROM models m WHERE (?1 IS NULL OR m.name = ?1) AND (?2 IS NULL OR m.name > ?2)"
                  " ORDER BY m.name LIMIT ?3",
                  &s, err);
    if (ret)
        return ret;
    if (name)
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (after)
        sqlite3_bind_text(s, 2, after, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_model m = {
            .name = text_or_empty(s, 0),
            .created_ms = sqlite3_column_int64(s, 1),
            .versions = sqlite3_column_int64(s, 2),
            .latest_version = sqlite3_column_int64(s, 3),
        };
        rows++;
        if ((ret = cb(ctx, &m)) != 0) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing models");
    else if (name && rows == 0)
        ret = sq_fail(err, STORE_E_NOT_FOUND, "model \"%s\" not found", name);
out:
    sqlite3_finalize(s);
    return ret;
}

int store_model_list(struct store *st, store_model_cb cb, void *ctx, struct store_err *err)
{
    return each_model(st, NULL, NULL, 0, cb, ctx, err);
}

int store_model_list_after(struct store *st, const char *after, int limit, store_model_cb cb,
                           void *ctx, struct store_err *err)
{
    return each_model(st, NULL, after, limit, cb, ctx, err);
}

int store_model_get(struct store *st, const char *name, store_model_cb cb, void *ctx,
                    struct store_err *err)
{
    int ret = store_model_check_name(name, err);
    return ret ? ret : each_model(st, name, NULL, 0, cb, ctx, err);
}

/* What the listings below give their rows to: one of the callbacks, its ctx. */
struct model_walk {
    union {
        store_alias_cb alias;
        store_alias_move_cb move;
        store_kv_cb kv;
    } cb;
    void *ctx;
};

/* Steps sql with ?1 bound to the id of model `name` (and ?2, when the
 * statement has one, to b2), giving each row to row(s, w); a nonzero answer
 * stops the walk through sq_cb_stop. `what` names a failed step. */
static int model_rows(struct store *st, const char *name, const char *sql, int64_t b2,
                      int (*row)(sqlite3_stmt *s, const struct model_walk *w),
                      const struct model_walk *w, const char *what, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t id;
    int rc, ret;

    sq_err_clear(err);
    if ((ret = model_id_of(st, name, &id, err)) != 0)
        return ret;
    if ((ret = sq_prep(st, sql, &s, err)) != 0)
        return ret;
    sqlite3_bind_int64(s, 1, id);
    if (sqlite3_bind_parameter_count(s) >= 2)
        sqlite3_bind_int64(s, 2, b2);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if ((ret = row(s, w)) != 0) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, what);
out:
    sqlite3_finalize(s);
    return ret;
}

static int alias_row(sqlite3_stmt *s, const struct model_walk *w)
{
    return w->cb.alias(w->ctx, text_or_empty(s, 0), sqlite3_column_int64(s, 1));
}

int store_model_aliases(struct store *st, const char *name, store_alias_cb cb, void *ctx,
                        struct store_err *err)
{
    struct model_walk w = {.cb.alias = cb, .ctx = ctx};

    return model_rows(st, name,
                      "SELECT alias, version FROM model_aliases WHERE model = ?1 ORDER BY alias", 0,
                      alias_row, &w, "listing model aliases", err);
}

static int move_row(sqlite3_stmt *s, const struct model_walk *w)
{
    struct store_alias_move m = {
        .alias = text_or_empty(s, 0),
        .from_version = sqlite3_column_int64(s, 1),
        .to_version = sqlite3_column_int64(s, 2),
        .who = text_or_empty(s, 3),
        .ms = sqlite3_column_int64(s, 4),
        .id = sqlite3_column_int64(s, 5),
    };
    return w->cb.move(w->ctx, &m);
}

int store_model_history(struct store *st, const char *name, store_alias_move_cb cb, void *ctx,
                        struct store_err *err)
{
    struct model_walk w = {.cb.move = cb, .ctx = ctx};

    return model_rows(st, name,
                      "SELECT alias, from_version, to_version, who, ms, id FROM model_alias_history"
                      " WHERE model = ?1 ORDER BY id",
                      0, move_row, &w, "reading alias history", err);
}

int store_model_history_after(struct store *st, const char *name, int64_t after_id, int limit,
                              store_alias_move_cb cb, void *ctx, struct store_err *err)
{
    struct model_walk w = {.cb.move = cb, .ctx = ctx};
    char sql[200];

    snprintf(sql, sizeof sql,
             "SELECT alias, from_version, to_version, who, ms, id FROM model_alias_history"
             " WHERE model = ?1 AND id > ?2 ORDER BY id LIMIT %d",
             limit > 0 ? limit : -1);
    return model_rows(st, name, sql, after_id, move_row, &w, "reading alias history", err);
}

static int tag_row(sqlite3_stmt *s, const struct model_walk *w)
{
    return w->cb.kv(w->ctx, text_or_empty(s, 0), text_or_empty(s, 1));
}

int store_model_tags(struct store *st, const char *name, int64_t version, store_kv_cb cb, void *ctx,
                     struct store_err *err)
{
    struct model_walk w = {.cb.kv = cb, .ctx = ctx};

    return model_rows(st, name,
                      "SELECT key, value FROM model_tags WHERE model = ?1 AND version = ?2"
                      " ORDER BY key",
                      version, tag_row, &w, "reading model tags", err);
}

/* ---- aliases and tags ------------------------------------------------------------ */

/* One row of an alias's history: from one version to another (0: none). */
static int record_move(struct store *st, int64_t model, const char *alias, int64_t from, int64_t to,
                       const char *who, int64_t now_ms, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = sq_prep(st,
                      "INSERT INTO model_alias_history(model, alias, from_version, to_version,"
                      " who, ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                      &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, model);
    sqlite3_bind_text(s, 2, alias, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, from);
    sqlite3_bind_int64(s, 4, to);
    sqlite3_bind_text(s, 5, who, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, now_ms);
    return step_done(st, &s, err, "recording an alias move");
}

int store_model_alias_set(struct store *st, const char *name, const char *alias, const char *target,
                          const char *who, int64_t now_ms, int64_t *from, int64_t *to,
                          struct store_err *err)
{
    char ref[2 * STORE_MODEL_NAME_MAX + 8], who_buf[256] = "";
    sqlite3_stmt *s = NULL;
    int64_t id = 0, v = 0, old = 0;
    int found = 0, ret;

    sq_err_clear(err);
    if ((ret = store_model_check_name(name, err)) != 0 ||
        (ret = store_model_check_alias(alias, err)) != 0 || (ret = sq_writable(st, err)) != 0)
        return ret;
    if (target == NULL || target[0] == '\0')
        return sq_fail(err, STORE_E_INVALID, "version is empty");
    if (strlen(target) > STORE_MODEL_NAME_MAX)
        return sq_fail(err, STORE_E_INVALID, "version of %zu bytes: at most %d bytes",
                       strlen(target), STORE_MODEL_NAME_MAX);
    /* a number is a version, anything else an alias of the same model */
    snprintf(ref, sizeof ref, "%s%c%s", name,
             strspn(target, "0123456789") == strlen(target) ? '/' : '@', target);
    if ((ret = store_model_resolve(st, ref, &id, &v, err)) != 0)
        return ret;
    ret = one_int(st,
                  "SELECT version FROM model_aliases WHERE model = ?1 AND ?2 = ?2"
                  " AND alias = ?3",
                  id, 0, alias, &old, &found, err, "looking up a model alias");
    if (ret)
        return ret;
    if (!found)
        old = 0;
    if (found && old == v)
        goto done;
    if (who == NULL) {
        ret = sq_prep(st, "SELECT user FROM model_versions WHERE model = ?1 AND version = ?2", &s,
                      err);
        if (ret)
            return ret;
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, v);
        if (sqlite3_step(s) == SQLITE_ROW)
            snprintf(who_buf, sizeof who_buf, "%s", text_or_empty(s, 0));
        sqlite3_finalize(s);
        s = NULL;
        who = who_buf;
    }
    ret = sq_prep(st,
                  "INSERT INTO model_aliases(model, alias, version) VALUES(?1, ?2, ?3)"
                  " ON CONFLICT(model, alias) DO UPDATE SET version = excluded.version",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, alias, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, v);
    if ((ret = step_done(st, &s, err, "moving a model alias")) != 0)
        return ret;
    if ((ret = record_move(st, id, alias, old, v, who, now_ms, err)) != 0)
        return ret;
done:
    if (from)
        *from = old;
    if (to)
        *to = v;
    return 0;
}

int store_model_alias_delete(struct store *st, const char *name, const char *alias, const char *who,
                             int64_t now_ms, int64_t *from, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t id = 0, old = 0;
    int found = 0, ret;

    sq_err_clear(err);
    if ((ret = store_model_check_name(name, err)) != 0 || (ret = sq_writable(st, err)) != 0 ||
        (ret = model_id_of(st, name, &id, err)) != 0)
        return ret;
    ret = one_int(st,
                  "SELECT version FROM model_aliases WHERE model = ?1 AND ?2 = ?2"
                  " AND alias = ?3",
                  id, 0, alias, &old, &found, err, "looking up a model alias");
    if (ret)
        return ret;
    if (!found)
        return sq_fail(err, STORE_E_NOT_FOUND, "model %s has no alias %s", name, alias);
    ret = sq_prep(st, "DELETE FROM model_aliases WHERE model = ?1 AND alias = ?2", &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, alias, -1, SQLITE_STATIC);
    if ((ret = step_done(st, &s, err, "removing a model alias")) != 0)
        return ret;
    if ((ret = record_move(st, id, alias, old, 0, who ? who : "", now_ms, err)) != 0)
        return ret;
    if (from)
        *from = old;
    return 0;
}

int store_model_tag_put(struct store *st, const char *target, const char *key, const char *value,
                        struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t id = 0, v = 0;
    int ret;

    sq_err_clear(err);
    if ((ret = sq_writable(st, err)) != 0)
        return ret;
    if (key == NULL || key[0] == '\0' || value == NULL)
        return sq_fail(err, STORE_E_INVALID, "tag key is empty");
    if (target && strpbrk(target, "@/"))
        ret = store_model_resolve(st, target, &id, &v, err);
    else
        ret = model_id_of(st, target, &id, err);
    if (ret)
        return ret;
    ret = sq_prep(st,
                  "INSERT INTO model_tags(model, version, key, value) VALUES(?1, ?2, ?3, ?4)"
                  " ON CONFLICT(model, version, key) DO UPDATE SET value = excluded.value",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, v);
    sqlite3_bind_text(s, 3, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, value, -1, SQLITE_STATIC);
    if ((ret = step_done(st, &s, err, "tagging a model")) != 0)
        return ret;
    return 0;
}

/* ---- for gc and lineage ------------------------------------------------------------ */

int store_model_version_each_digest(struct store *st,
                                    void (*cb)(void *ctx, const uint8_t digest[32]), void *ctx,
                                    struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    sq_err_clear(err);
    if (cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "callback missing");
    if ((ret = sq_prep(st, "SELECT DISTINCT digest FROM model_versions", &s, err)) != 0)
        return ret;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (sqlite3_column_bytes(s, 0) == 32)
            cb(ctx, sqlite3_column_blob(s, 0));
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing model version digests");
    sqlite3_finalize(s);
    return ret;
}

int store_model_versions_of_run(struct store *st, const uint8_t run[16], store_run_version_cb cb,
                                void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    sq_err_clear(err);
    if (cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "callback missing");
    ret = sq_prep(st,
                  "SELECT m.name, v.version, v.digest FROM model_versions v"
                  " JOIN models m ON m.id = v.model WHERE v.run = ?1 ORDER BY m.name, v.version",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_blob(s, 1, run, 16, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(s, 2) != 32)
            continue;
        if ((ret = cb(ctx, text_or_empty(s, 0), sqlite3_column_int64(s, 1),
                      sqlite3_column_blob(s, 2))) != 0) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing the model versions of a run");
out:
    sqlite3_finalize(s);
    return ret;
}
