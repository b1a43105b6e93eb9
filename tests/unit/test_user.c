/*
 * test_user.c: users, roles and keys of the store (storage/store_user.c)
 * through store.h, against a real SQLite database in a mkdtemp directory:
 * names, roles, one key per user and one user per key, lookups by key that
 * never echo the key, set-key, set-role and removal.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

static char dir[256];
static char dbpath[512];
static struct store *st;
static struct store_err err;

static void setup(void)
{
    struct store_opts o = {0};

    snprintf(dir, sizeof dir, "/tmp/track-user-XXXXXX");
    cr_assert(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/t.db", dir);
    cr_assert_eq(store_open(dbpath, &o, &st, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    char p[600];

    store_close(st);
    st = NULL;
    for (const char *suf = ""; suf; suf = *suf ? NULL : "-wal") {
        snprintf(p, sizeof p, "%s%s", dbpath, suf);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
    rmdir(dir);
}

TestSuite(user, .init = setup, .fini = teardown);

static void key_of(uint8_t k[STORE_KEY_BYTES], unsigned seed)
{
    for (int i = 0; i < STORE_KEY_BYTES; i++)
        k[i] = (uint8_t)(seed * 37u + (unsigned)i);
}

Test(user, a_user_is_added_found_by_key_and_by_name_and_listed)
{
    uint8_t ka[STORE_KEY_BYTES], kb[STORE_KEY_BYTES];
    struct store_user u;
    int64_t id = 0;

    key_of(ka, 1);
    key_of(kb, 2);
    cr_assert_eq(store_user_add(st, "alice", STORE_ROLE_WRITER, ka, 1000, &id, &err), 0, "%s",
                 err.msg);
    cr_assert_gt(id, 0);
    cr_assert_eq(store_user_add(st, "bob", STORE_ROLE_READER, NULL, 1001, NULL, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_user_by_key(st, ka, &u, &err), 0, "%s", err.msg);
    cr_assert_str_eq(u.name, "alice");
    cr_assert_eq(u.role, STORE_ROLE_WRITER);
    cr_assert_eq(u.has_key, 1);
    cr_assert_eq(memcmp(u.key, ka, STORE_KEY_BYTES), 0);
    cr_assert_eq(u.created_ms, 1000);
    cr_assert_eq(store_user_by_key(st, kb, &u, &err), STORE_E_NOT_FOUND);
    cr_assert_str_eq(err.msg, "no user holds that key", "the message reveals nothing: %s", err.msg);
    cr_assert_eq(store_user_by_name(st, "bob", &u, &err), 0, "%s", err.msg);
    cr_assert_eq(u.has_key, 0);
    cr_assert_eq(u.role, STORE_ROLE_READER);
}

Test(user, names_and_roles_are_checked_and_duplicates_name_the_holder)
{
    uint8_t k[STORE_KEY_BYTES];

    key_of(k, 3);
    cr_assert_eq(store_user_add(st, "", STORE_ROLE_READER, NULL, 1, NULL, &err), STORE_E_INVALID);
    cr_assert_eq(store_user_add(st, "a b", STORE_ROLE_READER, NULL, 1, NULL, &err),
                 STORE_E_INVALID);
    cr_assert(strstr(err.msg, "only letters"), "%s", err.msg);
    cr_assert_eq(store_user_add(st, "-x", STORE_ROLE_READER, NULL, 1, NULL, &err), STORE_E_INVALID);
    cr_assert_eq(store_user_add(st, "ok", 7, NULL, 1, NULL, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "role"), "%s", err.msg);
    char longname[STORE_USER_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(store_user_add(st, longname, STORE_ROLE_READER, NULL, 1, NULL, &err),
                 STORE_E_INVALID);

    cr_assert_eq(store_user_add(st, "carol", STORE_ROLE_ADMIN, k, 1, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(store_user_add(st, "carol", STORE_ROLE_READER, NULL, 1, NULL, &err),
                 STORE_E_EXISTS);
    cr_assert(strstr(err.msg, "\"carol\" already exists"), "%s", err.msg);
    cr_assert_eq(store_user_add(st, "dave", STORE_ROLE_READER, k, 1, NULL, &err), STORE_E_EXISTS);
    cr_assert(strstr(err.msg, "belongs to user \"carol\""), "%s", err.msg);
    cr_assert_str_eq(store_role_name(store_role_parse("writer")), "writer");
    cr_assert_eq(store_role_parse("root"), 0);
}

static int count_cb(void *ctx, const struct store_user *u)
{
    char *names = ctx;
    size_t n = strlen(names);
    snprintf(names + n, 200 - n, "%s,", u->name);
    return 0;
}

Test(user, set_key_set_role_and_remove)
{
    uint8_t k1[STORE_KEY_BYTES], k2[STORE_KEY_BYTES];
    struct store_user u;
    char names[200] = "";

    key_of(k1, 4);
    key_of(k2, 5);
    cr_assert_eq(store_user_add(st, "erin", STORE_ROLE_READER, k1, 1, NULL, &err), 0);
    cr_assert_eq(store_user_add(st, "frank", STORE_ROLE_READER, k2, 1, NULL, &err), 0);
    cr_assert_eq(store_user_set_key(st, "erin", k2, &err), STORE_E_EXISTS);
    cr_assert(strstr(err.msg, "\"frank\""), "%s", err.msg);
    cr_assert_eq(store_user_set_key(st, "erin", k1, &err), 0, "her own key again: %s", err.msg);
    cr_assert_eq(store_user_remove(st, "frank", &err), 0, "%s", err.msg);
    cr_assert_eq(store_user_by_key(st, k2, &u, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(store_user_set_key(st, "erin", k2, &err), 0, "%s", err.msg);
    cr_assert_eq(store_user_by_key(st, k1, &u, &err), STORE_E_NOT_FOUND, "the old key is gone");
    cr_assert_eq(store_user_by_key(st, k2, &u, &err), 0);
    cr_assert_str_eq(u.name, "erin");
    cr_assert_eq(store_user_set_role(st, "erin", STORE_ROLE_ADMIN, &err), 0, "%s", err.msg);
    cr_assert_eq(store_user_by_name(st, "erin", &u, &err), 0);
    cr_assert_eq(u.role, STORE_ROLE_ADMIN);
    cr_assert_eq(store_user_set_role(st, "nobody", STORE_ROLE_ADMIN, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(store_user_remove(st, "nobody", &err), STORE_E_NOT_FOUND);
    cr_assert_eq(store_user_add(st, "abe", STORE_ROLE_READER, NULL, 1, NULL, &err), 0);
    cr_assert_eq(store_user_list(st, count_cb, names, &err), 0, "%s", err.msg);
    cr_assert_str_eq(names, "abe,erin,", "in name order");
}
