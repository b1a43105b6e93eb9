/*
 * store_token.c: bearer tokens (for the HTTP front that will check them).
 * A token is "trkt_" and 43 base64url characters, made by the client from
 * 32 random bytes; only its BLAKE2b-256 hash reaches the store (tokens.hash,
 * unique), with its expiry. A check hashes the text it is given and looks
 * the hash up: the store never holds a token it could hand back.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

void store_token_hash(const char *token, uint8_t hash[STORE_TOKEN_HASH_BYTES])
{
    crypto_generichash(hash, STORE_TOKEN_HASH_BYTES, (const unsigned char *)token, strlen(token),
                       NULL, 0);
}

int store_token_add(struct store *st, const char *user, const uint8_t hash[STORE_TOKEN_HASH_BYTES],
                    int64_t now_ms, int64_t expires_ms, int64_t *id, struct store_err *err)
{
    struct store_user u;
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = sq_writable(st, err)) || (ret = store_user_by_name(st, user, &u, err)))
        return ret;
    if (expires_ms < 0)
        return sq_fail(err, STORE_E_INVALID, "expires_ms %lld is negative", (long long)expires_ms);
    if ((ret =
             sq_prep(st,
                     "INSERT INTO tokens(user, hash, created_ms, expires_ms) VALUES(?1, ?2, ?3, ?4)"
                     " ON CONFLICT(hash) DO NOTHING",
                     &s, err)))
        return ret;
    sqlite3_bind_int64(s, 1, u.id);
    sqlite3_bind_blob(s, 2, hash, STORE_TOKEN_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now_ms);
    if (expires_ms > 0)
        sqlite3_bind_int64(s, 4, expires_ms);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "adding a token");
    else if (sqlite3_changes(st->db) == 0)
        ret = sq_fail(err, STORE_E_EXISTS, "that token is known already");
    else if (id)
        *id = sqlite3_last_insert_rowid(st->db);
    sqlite3_finalize(s);
    return ret;
}

int store_token_list(struct store *st, const char *user, store_token_cb cb, void *ctx,
                     struct store_err *err)
{
    struct store_user u;
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = store_user_by_name(st, user, &u, err)))
        return ret;
    if ((ret = sq_prep(st,
                       "SELECT id, created_ms, coalesce(expires_ms, 0) FROM tokens WHERE user = ?1"
                       " ORDER BY id",
                       &s, err)))
        return ret;
    sqlite3_bind_int64(s, 1, u.id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_token t = {
            .id = sqlite3_column_int64(s, 0),
            .user = u.name,
            .created_ms = sqlite3_column_int64(s, 1),
            .expires_ms = sqlite3_column_int64(s, 2),
        };
        if ((ret = cb(ctx, &t)) != 0)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing tokens");
    sqlite3_finalize(s);
    return ret ? sq_cb_stop(err, ret) : 0;
}

int store_token_revoke(struct store *st, int64_t id, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = sq_writable(st, err)))
        return ret;
    if ((ret = sq_prep(st, "DELETE FROM tokens WHERE id = ?1", &s, err)))
        return ret;
    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "revoking a token");
    else if (sqlite3_changes(st->db) == 0)
        ret = sq_fail(err, STORE_E_NOT_FOUND, "token %lld not found", (long long)id);
    sqlite3_finalize(s);
    return ret;
}

int store_token_check(struct store *st, const char *token, int64_t now_ms, struct store_user *user,
                      struct store_err *err)
{
    uint8_t hash[STORE_TOKEN_HASH_BYTES];
    sqlite3_stmt *s = NULL;
    char name[STORE_USER_NAME_MAX + 1] = "";
    size_t len = token ? strnlen(token, STORE_TOKEN_TEXT_MAX + 1) : 0;
    size_t plen = strlen(STORE_TOKEN_PREFIX);
    int rc, ret, found = 0;

    if (len <= plen || len > STORE_TOKEN_TEXT_MAX || strncmp(token, STORE_TOKEN_PREFIX, plen) != 0)
        return sq_fail(err, STORE_E_NOT_FOUND, "token not valid");
    if (now_ms == 0)
        now_ms = sq_now_ms();
    store_token_hash(token, hash);
    if ((ret = sq_prep(st,
                       "SELECT u.name FROM tokens t JOIN users u ON u.id = t.user"
                       " WHERE t.hash = ?1 AND (t.expires_ms IS NULL OR t.expires_ms > ?2)",
                       &s, err)))
        return ret;
    sqlite3_bind_blob(s, 1, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now_ms);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(s, 0));
        found = 1;
    } else if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "checking a token");
    }
    sqlite3_finalize(s);
    sodium_memzero(hash, sizeof hash);
    if (ret)
        return ret;
    if (!found)
        return sq_fail(err, STORE_E_NOT_FOUND, "token not valid");
    return store_user_by_name(st, name, user, err);
}
