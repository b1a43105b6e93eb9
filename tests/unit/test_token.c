/*
 * test_token.c: bearer tokens and grant levels of the store
 * (storage/store_token.c, store_grant.c) against a real SQLite database in
 * a mkdtemp directory: a token is checked by its hash until it expires or
 * is revoked, a malformed or unknown one gets the same answer; and the
 * level of a viewer agrees with the SQL predicate lists use.
 */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

static char dir[256], dbpath[512];
static struct store *st;
static struct store_err err;

static void setup(void)
{
    struct store_opts o = {0};
    snprintf(dir, sizeof dir, "/tmp/track-token-XXXXXX");
    cr_assert(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/t.db", dir);
    cr_assert_eq(store_open(dbpath, &o, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_user_add(st, "bob", STORE_ROLE_READER, NULL, 1, NULL, &err), 0);
}

static void teardown(void)
{
    char cmd[400];
    store_close(st);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(token, .init = setup, .fini = teardown);

static void make_token(char out[STORE_TOKEN_TEXT_MAX])
{
    uint8_t b[32];
    randombytes_buf(b, sizeof b);
    memcpy(out, STORE_TOKEN_PREFIX, 5);
    sodium_bin2base64(out + 5, STORE_TOKEN_TEXT_MAX - 5, b, sizeof b,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

Test(token, a_token_is_checked_by_its_hash_until_it_expires_or_is_revoked)
{
    char tok[STORE_TOKEN_TEXT_MAX], other[STORE_TOKEN_TEXT_MAX];
    uint8_t h[STORE_TOKEN_HASH_BYTES];
    struct store_user u;
    int64_t id = 0, id2 = 0;

    make_token(tok);
    make_token(other);
    cr_assert_eq(strlen(tok), 48);
    store_token_hash(tok, h);
    cr_assert_eq(store_token_add(st, "bob", h, 1000, 5000, &id, &err), 0, "%s", err.msg);
    cr_assert_eq(store_token_add(st, "bob", h, 1000, 0, NULL, &err), STORE_E_EXISTS);
    cr_assert_eq(store_token_add(st, "nobody", h, 1000, 0, NULL, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(store_token_check(st, tok, 4999, &u, &err), 0, "%s", err.msg);
    cr_assert_str_eq(u.name, "bob");
    /* expired, unknown, malformed: one answer */
    cr_assert_eq(store_token_check(st, tok, 5000, &u, &err), STORE_E_NOT_FOUND);
    cr_assert_str_eq(err.msg, "token not valid");
    cr_assert_eq(store_token_check(st, other, 1, &u, &err), STORE_E_NOT_FOUND);
    cr_assert_str_eq(err.msg, "token not valid");
    cr_assert_eq(store_token_check(st, "trkt_", 1, &u, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(store_token_check(st, tok + 5, 1, &u, &err), STORE_E_NOT_FOUND);
    cr_assert_str_eq(err.msg, "token not valid");
    /* one that never expires, then revoked */
    store_token_hash(other, h);
    cr_assert_eq(store_token_add(st, "bob", h, 1000, 0, &id2, &err), 0, "%s", err.msg);
    cr_assert_eq(store_token_check(st, other, 0, &u, &err), 0, "%s", err.msg);
    cr_assert_eq(store_token_revoke(st, id2, &err), 0);
    cr_assert_eq(store_token_check(st, other, 0, &u, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(store_token_revoke(st, id2, &err), STORE_E_NOT_FOUND);
    /* removing the user takes its tokens */
    cr_assert_eq(store_user_remove(st, "bob", &err), 0);
    cr_assert_eq(store_token_revoke(st, id, &err), STORE_E_NOT_FOUND);
}

static int count_cb(void *ctx, const struct store_experiment *e)
{
    (void)e;
    ++*(int *)ctx;
    return 0;
}

Test(token, a_viewers_level_agrees_with_the_list_predicate)
{
    struct store_user bob, carol;
    int64_t open_id, closed_id;
    int level = -1, n = 0;

    cr_assert_eq(store_user_add(st, "carol", STORE_ROLE_WRITER, NULL, 1, NULL, &err), 0);
    cr_assert_eq(store_user_by_name(st, "bob", &bob, &err), 0);
    cr_assert_eq(store_user_by_name(st, "carol", &carol, &err), 0);
    cr_assert_eq(store_experiment_create(st, "open", 1, &open_id, &err), 0);
    cr_assert_eq(store_experiment_create(st, "closed", 1, &closed_id, &err), 0);
    cr_assert_eq(store_grant_set(st, "bob", "closed", STORE_LEVEL_MANAGE, NULL, &err), 0);
    struct store_viewer vb = {.user_id = bob.id, .role = bob.role};
    struct store_viewer vc = {.user_id = carol.id, .role = carol.role};
    cr_assert_eq(store_grant_level(st, &vb, open_id, &level, &err), 0);
    cr_assert_eq(level, STORE_LEVEL_READ);
    cr_assert_eq(store_grant_level(st, &vb, closed_id, &level, &err), 0);
    cr_assert_eq(level, STORE_LEVEL_MANAGE, "a grant widens past the role");
    cr_assert_eq(store_grant_level(st, &vc, closed_id, &level, &err), 0);
    cr_assert_eq(level, STORE_LEVEL_NONE);
    cr_assert_eq(store_grant_level(st, NULL, closed_id, &level, &err), 0);
    cr_assert_eq(level, STORE_LEVEL_MANAGE);
    cr_assert_eq(store_experiment_list_as(st, &vc, count_cb, &n, &err), 0);
    cr_assert_eq(n, 1);
    n = 0;
    cr_assert_eq(store_experiment_list_as(st, &vb, count_cb, &n, &err), 0);
    cr_assert_eq(n, 2);
    int64_t left = -1;
    int removed = 0;
    cr_assert_eq(store_grant_revoke(st, "bob", "closed", &removed, &left, &err), 0);
    cr_assert(removed);
    cr_assert_eq(left, 0);
    n = 0;
    cr_assert_eq(store_experiment_list_as(st, &vc, count_cb, &n, &err), 0);
    cr_assert_eq(n, 2, "open again");
    cr_assert_eq(store_grant_set(st, "bob", "nope", STORE_LEVEL_READ, NULL, &err),
                 STORE_E_NOT_FOUND);
    cr_assert_str_eq(err.msg, "experiment \"nope\" not found");
}
