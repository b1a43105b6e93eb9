/*
 * store_user.c: users, their roles and their sealed-TCP keys (migration 7).
 * Who may do what on which experiment is store_grant.c's; what was done,
 * store_audit.c's. A lookup by key never says in its message which key it
 * was, so an error passed on to a peer reveals nothing about the list.
 */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

#define USER_COLS "id, name, role, key, created_ms"

const char *store_role_name(int role)
{
    switch (role) {
    case STORE_ROLE_READER:
        return "reader";
    case STORE_ROLE_WRITER:
        return "writer";
    case STORE_ROLE_ADMIN:
        return "admin";
    default:
        return "unknown";
    }
}

int store_role_parse(const char *s)
{
    if (!s)
        return 0;
    if (strcmp(s, "reader") == 0)
        return STORE_ROLE_READER;
    if (strcmp(s, "writer") == 0)
        return STORE_ROLE_WRITER;
    if (strcmp(s, "admin") == 0)
        return STORE_ROLE_ADMIN;
    return 0;
}

static int check_role(int role, struct store_err *err)
{
    if (role < STORE_ROLE_READER || role > STORE_ROLE_ADMIN)
        return sq_fail(err, STORE_E_INVALID, "role %d: must be reader, writer or admin", role);
    return 0;
}

int store_user_check_name(const char *name, struct store_err *err)
{
    char cbuf[CLIP_LEN + 4];
    size_t len = name ? strlen(name) : 0;

    if (len == 0)
        return sq_fail(err, STORE_E_INVALID, "user name is empty");
    if (len > STORE_USER_NAME_MAX)
        return sq_fail(err, STORE_E_INVALID, "user name of %zu bytes: at most %d bytes", len,
                       STORE_USER_NAME_MAX);
    if (name[0] == '-' || name[0] == '.')
        return sq_fail(err, STORE_E_INVALID, "user name \"%s\": must not start with '%c'",
                       sq_clip(name, cbuf, sizeof cbuf), name[0]);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.';
        if (!ok)
            return sq_fail(err, STORE_E_INVALID,
                           "user name \"%s\": only letters, digits and _ - . are allowed",
                           sq_clip(name, cbuf, sizeof cbuf));
    }
    return 0;
}

static void user_of(sqlite3_stmt *s, struct store_user *u)
{
    memset(u, 0, sizeof(*u));
    u->id = sqlite3_column_int64(s, 0);
    const unsigned char *name = sqlite3_column_text(s, 1);
    snprintf(u->name, sizeof(u->name), "%s", name ? (const char *)name : "");
    u->role = sqlite3_column_int(s, 2);
    if (sqlite3_column_type(s, 3) == SQLITE_BLOB && sqlite3_column_bytes(s, 3) == STORE_KEY_BYTES) {
        memcpy(u->key, sqlite3_column_blob(s, 3), STORE_KEY_BYTES);
        u->has_key = 1;
    }
    u->created_ms = sqlite3_column_int64(s, 4);
}

/* The name of the user holding key other than `except` (0: any), into
 * holder; 1 found, 0 not, or a negative code. */
static int key_holder(struct store *st, const uint8_t *key, const char *except, char *holder,
                      size_t cap, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = sq_prep(st, "SELECT name FROM users WHERE key = ?1 AND name IS NOT ?2", &s, err)))
        return ret;
    sqlite3_bind_blob(s, 1, key, STORE_KEY_BYTES, SQLITE_STATIC);
    if (except)
        sqlite3_bind_text(s, 2, except, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        snprintf(holder, cap, "%s", (const char *)sqlite3_column_text(s, 0));
        ret = 1;
    } else if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "looking up a key");
    sqlite3_finalize(s);
    return ret;
}

int store_user_add(struct store *st, const char *name, int role, const uint8_t *key, int64_t now_ms,
                   int64_t *id, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char holder[STORE_USER_NAME_MAX + 1];
    int rc, ret;

    if ((ret = sq_writable(st, err)) || (ret = store_user_check_name(name, err)) ||
        (ret = check_role(role, err)))
        return ret;
    if (key) {
        ret = key_holder(st, key, NULL, holder, sizeof holder, err);
        if (ret < 0)
            return ret;
        if (ret == 1)
            return sq_fail(err, STORE_E_EXISTS, "that key already belongs to user \"%s\"", holder);
    }
    if ((ret = sq_prep(st,
                       "INSERT INTO users(name, role, key, created_ms) VALUES(?1, ?2, ?3, ?4)"
                       " ON CONFLICT(name) DO NOTHING",
                       &s, err)))
        return ret;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, role);
    if (key)
        sqlite3_bind_blob(s, 3, key, STORE_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now_ms);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "adding a user");
    else if (sqlite3_changes(st->db) == 0)
        ret = sq_fail(err, STORE_E_EXISTS, "user \"%s\" already exists", name);
    else if (id)
        *id = sqlite3_last_insert_rowid(st->db);
    sqlite3_finalize(s);
    return ret;
}

static int user_where(struct store *st, const uint8_t *key, const char *name,
                      struct store_user *out, struct store_err *err)
{
    static const char by_key[] = "SELECT " USER_COLS " FROM users WHERE key = ?1";
    static const char by_name[] = "SELECT " USER_COLS " FROM users WHERE name = ?1";
    sqlite3_stmt *s = NULL;
    int rc, ret;

    /* kept prepared: every sealed frame asks for its key's user */
    if ((ret = sq_prep_lit(st, key ? by_key : by_name, &s, err)))
        return ret;
    if (key)
        sqlite3_bind_blob(s, 1, key, STORE_KEY_BYTES, SQLITE_STATIC);
    else
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        user_of(s, out);
    else if (rc == SQLITE_DONE)
        ret = key ? sq_fail(err, STORE_E_NOT_FOUND, "no user holds that key")
                  : sq_fail(err, STORE_E_NOT_FOUND, "user \"%s\" not found", name ? name : "");
    else
        ret = sq_db_fail(st, rc, err, "looking up a user");
    sq_release(st, s);
    return ret;
}

int store_user_by_key(struct store *st, const uint8_t key[STORE_KEY_BYTES], struct store_user *out,
                      struct store_err *err)
{
    return user_where(st, key, NULL, out, err);
}

int store_user_by_name(struct store *st, const char *name, struct store_user *out,
                       struct store_err *err)
{
    int ret = store_user_check_name(name, err);
    return ret ? ret : user_where(st, NULL, name, out, err);
}

int store_user_list(struct store *st, store_user_cb cb, void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = sq_prep(st, "SELECT " USER_COLS " FROM users ORDER BY name", &s, err)))
        return ret;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_user u;
        user_of(s, &u);
        if ((ret = cb(ctx, &u)) != 0)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing users");
    sqlite3_finalize(s);
    return ret ? sq_cb_stop(err, ret) : 0;
}

/* Runs sql binding ?1 = a, ?2 = name; the number of rows changed, or < 0. */
static int exec_named(struct store *st, const char *sql, int64_t a, const char *name,
                      struct store_err *err, const char *what)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = sq_prep(st, sql, &s, err)))
        return ret;
    sqlite3_bind_int64(s, 1, a);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    ret = rc == SQLITE_DONE ? sqlite3_changes(st->db) : sq_db_fail(st, rc, err, what);
    sqlite3_finalize(s);
    return ret;
}

int store_user_remove(struct store *st, const char *name, struct store_err *err)
{
    struct store_user u;
    int ret;

    if ((ret = sq_writable(st, err)) || (ret = store_user_by_name(st, name, &u, err)))
        return ret;
    if ((ret = exec_named(st, "DELETE FROM grants WHERE user = ?1", u.id, name, err,
                          "removing a user's grants")) < 0 ||
        (ret = exec_named(st, "DELETE FROM tokens WHERE user = ?1", u.id, name, err,
                          "removing a user's tokens")) < 0 ||
        (ret = exec_named(st, "DELETE FROM users WHERE id = ?1", u.id, name, err,
                          "removing a user")) < 0)
        return ret;
    return 0;
}

int store_user_set_key(struct store *st, const char *name, const uint8_t *key,
                       struct store_err *err)
{
    struct store_user u;
    char holder[STORE_USER_NAME_MAX + 1];
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = sq_writable(st, err)) || (ret = store_user_by_name(st, name, &u, err)))
        return ret;
    if (key) {
        ret = key_holder(st, key, name, holder, sizeof holder, err);
        if (ret < 0)
            return ret;
        if (ret == 1)
            return sq_fail(err, STORE_E_EXISTS, "that key already belongs to user \"%s\"", holder);
    }
    if ((ret = sq_prep(st, "UPDATE users SET key = ?1 WHERE id = ?2", &s, err)))
        return ret;
    if (key)
        sqlite3_bind_blob(s, 1, key, STORE_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, u.id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "setting a user's key");
    sqlite3_finalize(s);
    return ret;
}

int store_user_set_role(struct store *st, const char *name, int role, struct store_err *err)
{
    int ret;

    if ((ret = sq_writable(st, err)) || (ret = check_role(role, err)) ||
        (ret = store_user_check_name(name, err)))
        return ret;
    ret = exec_named(st, "UPDATE users SET role = ?1 WHERE name = ?2", role, name, err,
                     "setting a user's role");
    if (ret == 0)
        return sq_fail(err, STORE_E_NOT_FOUND, "user \"%s\" not found", name);
    return ret < 0 ? ret : 0;
}
