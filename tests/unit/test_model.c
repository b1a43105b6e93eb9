/*
 * test_model.c: the model registry of the store (storage/store_model.c)
 * through store.h, against a real SQLite database in a mkdtemp directory:
 * version numbering and pinning, the resolver, aliases and their history,
 * tags, names, the functions gc and lineage use, and concurrent registers
 * from two threads with a handle each.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
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
static uint8_t run1[16], run2[16];

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char p[1024];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(path);
}

static void digest_of(uint8_t d[32], unsigned k)
{
    for (int i = 0; i < 32; i++)
        d[i] = (uint8_t)(k * 31u + (unsigned)i);
}

static void start(const uint8_t id[16], const char *user)
{
    int64_t exp = 0;
    struct store_run_start r = {.start_ms = 1000, .user = user, .name = "r"};

    cr_assert_eq(store_experiment_ensure(st, "Default", 1000, &exp, &err), 0, "%s", err.msg);
    memcpy(r.id, id, 16);
    r.experiment_id = exp;
    cr_assert_eq(store_run_start(st, &r, &err), 0, "%s", err.msg);
}

static void put_artifact(const uint8_t run[16], const char *path, unsigned k, int64_t size)
{
    uint8_t d[32];
    digest_of(d, k);
    cr_assert_eq(store_artifact_put(st, run, path, d, size, 2000, &err), 0, "%s", err.msg);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/track-model-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/track.db", dir);
    cr_assert_eq(store_open(dbpath, &(struct store_opts){0}, &st, &err), 0, "%s", err.msg);
    memset(run1, 0x11, 16);
    memset(run2, 0x22, 16);
    start(run1, "alice");
    start(run2, "bob");
    put_artifact(run1, "weights.bin", 1, 100);
    put_artifact(run2, "model/w.bin", 2, 200);
}

static void teardown(void)
{
    store_close(st);
    st = NULL;
    rm_tree(dir);
}

TestSuite(model, .init = setup, .fini = teardown);

static int64_t reg(const char *name, const uint8_t run[16], const char *path)
{
    int64_t v = 0;
    cr_assert_eq(store_model_register(st, name, run, path, "d", NULL, NULL, 0, 5000, &v, &err), 0,
                 "%s", err.msg);
    return v;
}

static int copy_version(void *ctx, const struct store_model_version *v)
{
    struct store_model_version *out = ctx;
    *out = *v;
    out->model = out->path = out->description = out->user = NULL; /* not kept */
    return 0;
}

static struct store_model_version get(const char *ref)
{
    struct store_model_version v = {0};
    cr_assert_eq(store_model_version_get(st, ref, copy_version, &v, &err), 0, "%s: %s", ref,
                 err.msg);
    return v;
}

Test(model, versions_number_from_one_per_model)
{
    cr_assert_eq(reg("iris", run1, "weights.bin"), 1);
    cr_assert_eq(reg("iris", run2, "model/w.bin"), 2);
    cr_assert_eq(reg("other", run1, "weights.bin"), 1);
    cr_assert_eq(reg("iris", run1, "weights.bin"), 3);
    struct store_model_version v = get("iris/2");
    cr_assert_eq(v.version, 2);
    cr_assert_eq(memcmp(v.run, run2, 16), 0);
    cr_assert_eq(v.size, 200);
}

Test(model, a_version_keeps_its_digest_when_the_artifact_is_replaced)
{
    uint8_t d1[32], d9[32];
    digest_of(d1, 1);
    digest_of(d9, 9);
    reg("iris", run1, "weights.bin");
    put_artifact(run1, "weights.bin", 9, 999); /* the run's artifact is replaced */
    struct store_model_version v = get("iris/1");
    cr_assert_eq(memcmp(v.digest, d1, 32), 0, "version 1 must answer the digest it pinned");
    cr_assert_eq(v.size, 100);
    reg("iris", run1, "weights.bin");
    v = get("iris/2");
    cr_assert_eq(memcmp(v.digest, d9, 32), 0, "a new version pins the new digest");
}

Test(model, register_from_a_missing_run_or_path_is_not_found_naming_it)
{
    uint8_t ghost[16];
    memset(ghost, 0x77, 16);
    cr_assert_eq(
        store_model_register(st, "iris", ghost, "weights.bin", NULL, NULL, NULL, 0, 1, NULL, &err),
        STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "77777777777777777777777777777777"), "%s", err.msg);
    cr_assert_eq(
        store_model_register(st, "iris", run1, "nope.bin", NULL, NULL, NULL, 0, 1, NULL, &err),
        STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "nope.bin") && strstr(err.msg, "11111111"), "%s", err.msg);
    /* nothing was created */
    cr_assert_eq(store_model_versions(st, "iris", copy_version, NULL, &err), STORE_E_NOT_FOUND);
}

Test(model, model_and_alias_names_are_checked_naming_the_rule)
{
    const char *bad[] = {"", "a b", "a/b", "a@b", "é", "x;drop"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(store_model_register(st, bad[i], run1, "weights.bin", NULL, NULL, NULL, 0, 1,
                                          NULL, &err),
                     STORE_E_INVALID, "%s", bad[i]);
        if (bad[i][0])
            cr_assert(strstr(err.msg, "letters, digits and _ - ."), "%s", err.msg);
    }
    char long_name[STORE_MODEL_NAME_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    cr_assert_eq(store_model_check_name(long_name, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "at most 250"), "%s", err.msg);
    long_name[STORE_MODEL_NAME_MAX] = '\0';
    cr_assert_eq(store_model_check_name(long_name, &err), 0, "%s", err.msg);
    cr_assert_eq(store_model_check_name("A-b_c.1", &err), 0, "%s", err.msg);

    reg("iris", run1, "weights.bin");
    cr_assert_eq(store_model_alias_set(st, "iris", "123", "1", "", 1, NULL, NULL, &err),
                 STORE_E_INVALID);
    cr_assert(strstr(err.msg, "all digits"), "%s", err.msg);
    cr_assert_eq(store_model_alias_set(st, "iris", "pro.d", "1", "", 1, NULL, NULL, &err),
                 STORE_E_INVALID);
    cr_assert(strstr(err.msg, "letters, digits, _ and -"), "%s", err.msg);
    cr_assert_eq(store_model_alias_set(st, "iris", "v1-prod_2", "1", "", 1, NULL, NULL, &err), 0,
                 "%s", err.msg);
}

Test(model, alias_to_a_missing_version_is_not_found_naming_it)
{
    reg("iris", run1, "weights.bin");
    cr_assert_eq(store_model_alias_set(st, "iris", "production", "7", "", 1, NULL, NULL, &err),
                 STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "iris") && strstr(err.msg, "version 7"), "%s", err.msg);
    cr_assert_eq(
        store_model_alias_set(st, "iris", "production", "staging", "", 1, NULL, NULL, &err),
        STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "alias \"staging\""), "%s", err.msg);
    cr_assert_eq(store_model_alias_set(st, "nope", "production", "1", "", 1, NULL, NULL, &err),
                 STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "model \"nope\""), "%s", err.msg);
}

struct moves {
    struct store_alias_move m[8];
    char who[8][32], alias[8][32];
    int n;
};

static int collect_move(void *ctx, const struct store_alias_move *m)
{
    struct moves *l = ctx;
    cr_assert_lt(l->n, 8);
    l->m[l->n] = *m;
    snprintf(l->who[l->n], 32, "%s", m->who);
    snprintf(l->alias[l->n], 32, "%s", m->alias);
    l->n++;
    return 0;
}

Test(model, alias_moves_are_kept_in_order_with_who_and_from)
{
    int64_t from = -1, to = -1;
    reg("iris", run1, "weights.bin");
    reg("iris", run2, "model/w.bin");
    reg("iris", run1, "weights.bin");
    cr_assert_eq(
        store_model_alias_set(st, "iris", "production", "1", "carol", 10, &from, &to, &err), 0,
        "%s", err.msg);
    cr_assert_eq(from, 0);
    cr_assert_eq(to, 1);
    /* no caller name: the user of the version's run (bob ran version 2) */
    cr_assert_eq(store_model_alias_set(st, "iris", "production", "2", NULL, 20, &from, &to, &err),
                 0, "%s", err.msg);
    cr_assert_eq(from, 1);
    cr_assert_eq(store_model_alias_set(st, "iris", "staging", "3", "dave", 25, NULL, NULL, &err), 0,
                 "%s", err.msg);
    /* an alias as the target: production takes what staging points at */
    cr_assert_eq(
        store_model_alias_set(st, "iris", "production", "staging", "erin", 30, &from, &to, &err), 0,
        "%s", err.msg);
    cr_assert_eq(from, 2);
    cr_assert_eq(to, 3);
    /* where it already points: no new row */
    cr_assert_eq(store_model_alias_set(st, "iris", "production", "3", "x", 40, &from, &to, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(from, 3);

    struct moves l = {0};
    cr_assert_eq(store_model_history(st, "iris", collect_move, &l, &err), 0, "%s", err.msg);
    cr_assert_eq(l.n, 4);
    cr_assert_str_eq(l.alias[0], "production");
    cr_assert_eq(l.m[0].from_version, 0);
    cr_assert_eq(l.m[0].to_version, 1);
    cr_assert_str_eq(l.who[0], "carol");
    cr_assert_eq(l.m[1].from_version, 1);
    cr_assert_eq(l.m[1].to_version, 2);
    cr_assert_str_eq(l.who[1], "bob");
    cr_assert_str_eq(l.alias[2], "staging");
    cr_assert_eq(l.m[3].from_version, 2);
    cr_assert_eq(l.m[3].to_version, 3);
    cr_assert_str_eq(l.who[3], "erin");
    cr_assert_eq(l.m[3].ms, 30);
    cr_assert_eq(get("iris@production").version, 3);
}

Test(model, name_at_alias_and_name_slash_version_resolve)
{
    int64_t id = 0, v = 0;
    reg("iris", run1, "weights.bin");
    reg("iris", run2, "model/w.bin");
    cr_assert_eq(store_model_alias_set(st, "iris", "production", "2", "", 1, NULL, NULL, &err), 0);
    cr_assert_eq(store_model_resolve(st, "iris@production", &id, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(v, 2);
    cr_assert_eq(store_model_resolve(st, "iris/1", &id, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(v, 1);
    cr_assert_eq(memcmp(get("iris@production").run, run2, 16), 0);
    /* tags resolve the same way */
    cr_assert_eq(store_model_tag_put(st, "iris@production", "ok", "yes", &err), 0, "%s", err.msg);

    const char *invalid[] = {"iris", "iris/", "iris/0", "iris/x", "iris@", "iris@12", "ir is/1"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        cr_assert_eq(store_model_resolve(st, invalid[i], &id, &v, &err), STORE_E_INVALID, "%s",
                     invalid[i]);
    cr_assert_eq(store_model_resolve(st, "iris/3", &id, &v, &err), STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "no version 3"), "%s", err.msg);
    cr_assert_eq(store_model_resolve(st, "iris@staging", &id, &v, &err), STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "no alias \"staging\""), "%s", err.msg);
    cr_assert_eq(store_model_resolve(st, "rose/1", &id, &v, &err), STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "model \"rose\" not found"), "%s", err.msg);
}

struct kvs {
    char s[512];
};

static int collect_kv(void *ctx, const char *k, const char *v)
{
    struct kvs *l = ctx;
    size_t n = strlen(l->s);
    snprintf(l->s + n, sizeof l->s - n, "%s=%s;", k, v);
    return 0;
}

Test(model, tags_on_models_and_versions)
{
    const char *keys[] = {"data"}, *values[] = {"v2"};
    int64_t v = 0;
    cr_assert_eq(store_model_register(st, "iris", run1, "weights.bin", "first", keys, values, 1, 1,
                                      &v, &err),
                 0, "%s", err.msg);
    reg("iris", run2, "model/w.bin");
    cr_assert_eq(store_model_tag_put(st, "iris", "owner", "ml", &err), 0, "%s", err.msg);
    cr_assert_eq(store_model_tag_put(st, "iris/2", "ok", "no", &err), 0, "%s", err.msg);
    cr_assert_eq(store_model_tag_put(st, "iris/2", "ok", "yes", &err), 0, "%s", err.msg);
    cr_assert_eq(store_model_tag_put(st, "iris/9", "ok", "yes", &err), STORE_E_NOT_FOUND);
    cr_assert_eq(store_model_tag_put(st, "nope", "ok", "yes", &err), STORE_E_NOT_FOUND);
    struct kvs m = {""}, v1 = {""}, v2 = {""};
    cr_assert_eq(store_model_tags(st, "iris", 0, collect_kv, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(store_model_tags(st, "iris", 1, collect_kv, &v1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_model_tags(st, "iris", 2, collect_kv, &v2, &err), 0, "%s", err.msg);
    cr_assert_str_eq(m.s, "owner=ml;");
    cr_assert_str_eq(v1.s, "data=v2;");
    cr_assert_str_eq(v2.s, "ok=yes;");
}

static void count_digest(void *ctx, const uint8_t d[32])
{
    (void)d;
    (*(int *)ctx)++;
}

struct run_versions {
    char s[256];
};

static int collect_rv(void *ctx, const char *model, int64_t version, const uint8_t d[32])
{
    struct run_versions *l = ctx;
    size_t n = strlen(l->s);
    snprintf(l->s + n, sizeof l->s - n, "%s/%lld:%u;", model, (long long)version, d[31]);
    return 0;
}

Test(model, digests_for_gc_and_versions_of_a_run_for_lineage)
{
    int n = 0;
    reg("iris", run1, "weights.bin");
    reg("iris", run1, "weights.bin"); /* same digest twice: listed once */
    reg("rose", run2, "model/w.bin");
    reg("aster", run1, "weights.bin");
    cr_assert_eq(store_model_version_each_digest(st, count_digest, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    struct run_versions l = {""};
    cr_assert_eq(store_model_versions_of_run(st, run1, collect_rv, &l, &err), 0, "%s", err.msg);
    uint8_t d1[32];
    digest_of(d1, 1);
    char want[128];
    snprintf(want, sizeof want, "aster/1:%u;iris/1:%u;iris/2:%u;", d1[31], d1[31], d1[31]);
    cr_assert_str_eq(l.s, want);
}

struct model_seen {
    char s[256];
};

static int collect_model(void *ctx, const struct store_model *m)
{
    struct model_seen *l = ctx;
    size_t n = strlen(l->s);
    snprintf(l->s + n, sizeof l->s - n, "%s:%lld:%lld;", m->name, (long long)m->versions,
             (long long)m->latest_version);
    return 0;
}

Test(model, list_is_by_name_with_counts)
{
    reg("rose", run1, "weights.bin");
    reg("iris", run1, "weights.bin");
    reg("iris", run2, "model/w.bin");
    struct model_seen l = {""};
    cr_assert_eq(store_model_list(st, collect_model, &l, &err), 0, "%s", err.msg);
    cr_assert_str_eq(l.s, "iris:2:2;rose:1:1;");
    struct model_seen one = {""};
    cr_assert_eq(store_model_get(st, "rose", collect_model, &one, &err), 0, "%s", err.msg);
    cr_assert_str_eq(one.s, "rose:1:1;");
    cr_assert_eq(store_model_get(st, "tulip", collect_model, &one, &err), STORE_E_NOT_FOUND);
}

/* Two threads, each with its own read-write handle on the same database,
 * register into one model at once: every register gets its own number. */
#define CONCURRENT_EACH 20
struct reg_thread {
    int64_t got[CONCURRENT_EACH];
    int failed;
    char msg[512];
};

static void *register_many(void *arg)
{
    struct reg_thread *t = arg;
    struct store *h = NULL;
    struct store_err e = {0};

    if (store_open(dbpath, &(struct store_opts){0}, &h, &e)) {
        t->failed = 1;
        snprintf(t->msg, sizeof t->msg, "%s", e.msg);
        return NULL;
    }
    for (int i = 0; i < CONCURRENT_EACH && !t->failed; i++) {
        if (store_begin(h, &e) ||
            store_model_register(h, "iris", run1, "weights.bin", NULL, NULL, NULL, 0, 1, &t->got[i],
                                 &e) ||
            store_commit(h, &e)) {
            t->failed = 1;
            snprintf(t->msg, sizeof t->msg, "%s", e.msg);
            store_rollback(h);
        }
    }
    store_close(h);
    return NULL;
}

Test(model, concurrent_registers_get_distinct_versions)
{
    struct reg_thread a = {0}, b = {0};
    pthread_t ta, tb;
    char seen[2 * CONCURRENT_EACH + 1] = {0};

    cr_assert_eq(pthread_create(&ta, NULL, register_many, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, register_many, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_not(a.failed, "%s", a.msg);
    cr_assert_not(b.failed, "%s", b.msg);
    for (int i = 0; i < CONCURRENT_EACH; i++) {
        int64_t va = a.got[i], vb = b.got[i];
        cr_assert(va >= 1 && va <= 2 * CONCURRENT_EACH && vb >= 1 && vb <= 2 * CONCURRENT_EACH);
        cr_assert_not(seen[va], "version %lld given twice", (long long)va);
        seen[va] = 1;
        cr_assert_not(seen[vb], "version %lld given twice", (long long)vb);
        seen[vb] = 1;
    }
    struct model_seen l = {""};
    cr_assert_eq(store_model_get(st, "iris", collect_model, &l, &err), 0, "%s", err.msg);
    cr_assert_str_eq(l.s, "iris:40:40;");
}

Test(model, artifact_get_names_run_and_path)
{
    uint8_t d[32];
    int64_t size = 0, ms = 0;
    cr_assert_eq(store_artifact_get(st, run1, "weights.bin", d, &size, &ms, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(size, 100);
    cr_assert_eq(ms, 2000);
    cr_assert_eq(store_artifact_get(st, run1, "other.bin", d, &size, &ms, &err), STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "11111111111111111111111111111111") && strstr(err.msg, "other.bin"),
              "%s", err.msg);
}
