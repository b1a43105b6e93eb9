/*
 * test_store.c: the SQLite store (storage/store_*.c) through store.h
 * only, except where a test damages or rewrites the database file on
 * purpose. Each test opens a fresh database in its own mkdtemp directory,
 * removed afterwards.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

static char dir[256];
static char dbpath[512];
static struct store *st;
static struct store_err err;

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

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/track-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/track.db", dir);
    cr_assert_eq(store_open(dbpath, &(struct store_opts){0}, &st, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    store_close(st);
    st = NULL;
    rm_tree(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

static void id_of(uint8_t id[16], unsigned k)
{
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(k * 37u + (unsigned)i * 11u + (k >> 8) * 3u);
}

static void hex(const uint8_t id[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static int64_t experiment(const char *name)
{
    int64_t id = 0;
    cr_assert_eq(store_experiment_ensure(st, name, 1000, &id, &err), 0, "%s", err.msg);
    return id;
}

static void start_run(const uint8_t id[16], int64_t exp, const char *name, int64_t start_ms)
{
    struct store_run_start r = {
        .experiment_id = exp, .name = name, .start_ms = start_ms, .user = "alice"};
    memcpy(r.id, id, 16);
    cr_assert_eq(store_run_start(st, &r, &err), 0, "%s", err.msg);
}

static void append(const uint8_t run[16], const char *key, const int64_t *steps,
                   const int64_t *times, const double *vals, size_t n)
{
    cr_assert_eq(store_metric_append(st, run, key, steps, times, vals, n, &err), 0, "%s", err.msg);
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ---- experiments ------------------------------------------------------------ */

struct exp_seen {
    int n;
    char names[8][32];
    int64_t runs[8];
};

static int collect_exp(void *ctx, const struct store_experiment *e)
{
    struct exp_seen *s = ctx;
    if (s->n < 8) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", e->name);
        s->runs[s->n] = e->run_count;
    }
    s->n++;
    return 0;
}

Test(store, experiment_create_twice_is_exists)
{
    int64_t a = 0, b = 0;
    cr_assert_eq(store_experiment_create(st, "mnist", 5, &a, &err), 0);
    cr_assert_gt(a, 0);
    cr_assert_eq(store_experiment_create(st, "mnist", 6, &b, &err), STORE_E_EXISTS);
    cr_assert_eq(err.code, STORE_E_EXISTS);
    cr_assert_str_eq(err.msg, "experiment \"mnist\" already exists");
    cr_assert_eq(store_experiment_create(st, "", 6, &b, &err), STORE_E_INVALID);
}

Test(store, experiment_ensure_finds_or_creates)
{
    int64_t a = 0, b = 0, c = 0;
    cr_assert_eq(store_experiment_ensure(st, "Default", 1, &a, &err), 0);
    cr_assert_eq(store_experiment_ensure(st, "Default", 2, &b, &err), 0);
    cr_assert_eq(a, b);
    cr_assert_eq(store_experiment_ensure(st, "other", 3, &c, &err), 0);
    cr_assert_neq(a, c);
}

Test(store, experiment_list_counts_runs)
{
    int64_t a = experiment("alpha"), b = experiment("beta");
    uint8_t id[16];
    struct exp_seen seen = {0};

    for (unsigned i = 0; i < 3; i++) {
        id_of(id, i);
        start_run(id, b, NULL, 100 + i);
    }
    (void)a;
    cr_assert_eq(store_experiment_list(st, collect_exp, &seen, &err), 0);
    cr_assert_eq(seen.n, 2);
    cr_assert_str_eq(seen.names[0], "alpha");
    cr_assert_eq(seen.runs[0], 0);
    cr_assert_str_eq(seen.names[1], "beta");
    cr_assert_eq(seen.runs[1], 3);
}

static int stop_at_first(void *ctx, const struct store_experiment *e)
{
    (void)e;
    ++*(int *)ctx;
    return STORE_E_CONFLICT;
}

Test(store, listing_stops_when_the_callback_says_so)
{
    int calls = 0;
    experiment("a");
    experiment("b");
    cr_assert_eq(store_experiment_list(st, stop_at_first, &calls, &err), STORE_E_CONFLICT);
    cr_assert_eq(calls, 1);
    cr_assert_eq(err.code, STORE_E_CONFLICT);
}

/* ---- runs ----------------------------------------------------------------------- */

struct run_seen {
    int n;
    struct store_run r[16];
    char names[16][64];
    char exps[16][64];
};

static int collect_run(void *ctx, const struct store_run *r)
{
    struct run_seen *s = ctx;
    if (s->n < 16) {
        s->r[s->n] = *r;
        snprintf(s->names[s->n], 64, "%s", r->name);
        snprintf(s->exps[s->n], 64, "%s", r->experiment);
        s->r[s->n].name = s->names[s->n];
        s->r[s->n].experiment = s->exps[s->n];
        s->r[s->n].user = NULL;
    }
    s->n++;
    return 0;
}

Test(store, run_start_get_end)
{
    int64_t e = experiment("exp");
    uint8_t id[16], parent[16];
    struct run_seen seen = {0};

    id_of(parent, 1);
    id_of(id, 2);
    start_run(parent, e, "parent", 10);
    struct store_run_start r = {
        .experiment_id = e, .name = "child", .start_ms = 20, .user = "bob", .has_parent = 1};
    memcpy(r.id, id, 16);
    memcpy(r.parent, parent, 16);
    cr_assert_eq(store_run_start(st, &r, &err), 0, "%s", err.msg);

    cr_assert_eq(store_run_get(st, id, collect_run, &seen, &err), 0);
    cr_assert_eq(seen.n, 1);
    cr_assert_str_eq(seen.names[0], "child");
    cr_assert_str_eq(seen.exps[0], "exp");
    cr_assert_eq(seen.r[0].status, STORE_RUNNING);
    cr_assert_eq(seen.r[0].start_ms, 20);
    cr_assert_eq(seen.r[0].end_ms, 0);
    cr_assert_eq(seen.r[0].has_parent, 1);
    cr_assert(memcmp(seen.r[0].parent, parent, 16) == 0);
    cr_assert(memcmp(seen.r[0].id, id, 16) == 0);

    cr_assert_eq(store_run_end(st, id, STORE_FAILED, 30, &err), 0);
    cr_assert_eq(store_run_end(st, id, STORE_FAILED, 40, &err), 0, "same status again");
    cr_assert_eq(store_run_end(st, id, STORE_FINISHED, 50, &err), STORE_E_CONFLICT);
    cr_assert(strstr(err.msg, "FAILED") && strstr(err.msg, "FINISHED"), "%s", err.msg);
    cr_assert_eq(store_run_end(st, id, STORE_RUNNING, 50, &err), STORE_E_INVALID);
    seen.n = 0;
    cr_assert_eq(store_run_get(st, id, collect_run, &seen, &err), 0);
    cr_assert_eq(seen.r[0].status, STORE_FAILED);
    cr_assert_eq(seen.r[0].end_ms, 30, "the first end time stays");

    uint8_t nobody[16];
    char h[33], want[80];
    id_of(nobody, 99);
    hex(nobody, h);
    snprintf(want, sizeof want, "run %s not found", h);
    cr_assert_eq(store_run_end(st, nobody, STORE_FINISHED, 1, &err), STORE_E_NOT_FOUND);
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(store_run_get(st, nobody, collect_run, &seen, &err), STORE_E_NOT_FOUND);
}

Test(store, run_end_before_its_start_is_refused_naming_end_ms)
{
    int64_t e = experiment("exp"), future = 4102444800000LL; /* 2100-01-01 */
    uint8_t id[16], ahead[16];
    struct run_seen seen = {0};

    id_of(id, 3);
    id_of(ahead, 4);
    start_run(id, e, "r", 1000);
    cr_assert_eq(store_run_end(st, id, STORE_FINISHED, 999, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "end_ms") && strstr(err.msg, "start_ms 1000"), "%s", err.msg);
    cr_assert_eq(store_run_get(st, id, collect_run, &seen, &err), 0);
    cr_assert_eq(seen.r[0].status, STORE_RUNNING, "the refused end changed the run");
    cr_assert_eq(store_run_end(st, id, STORE_FINISHED, 1000, &err), 0, "%s", err.msg);
    /* no end time given, a start ahead of this clock: ends at its start */
    start_run(ahead, e, "a", future);
    cr_assert_eq(store_run_end(st, ahead, STORE_FINISHED, 0, &err), 0, "%s", err.msg);
    seen.n = 0;
    cr_assert_eq(store_run_get(st, ahead, collect_run, &seen, &err), 0);
    cr_assert_eq(seen.r[0].end_ms, future);
}

Test(store, run_start_replay_and_conflict)
{
    int64_t a = experiment("a"), b = experiment("b");
    uint8_t id[16];
    struct store_run_start r = {.experiment_id = a, .name = "x", .start_ms = 1};

    id_of(id, 7);
    memcpy(r.id, id, 16);
    cr_assert_eq(store_run_start(st, &r, &err), 0);
    cr_assert_eq(store_run_start(st, &r, &err), 0, "a replay is accepted");
    r.experiment_id = b;
    cr_assert_eq(store_run_start(st, &r, &err), STORE_E_EXISTS);
    cr_assert(strstr(err.msg, "already exists in experiment \"a\""), "%s", err.msg);
    r.experiment_id = 12345;
    id_of(r.id, 8);
    cr_assert_eq(store_run_start(st, &r, &err), STORE_E_NOT_FOUND);
    cr_assert_str_eq(err.msg, "experiment 12345 not found");
    r.experiment_id = a;
    r.has_parent = 1;
    id_of(r.parent, 9);
    cr_assert_eq(store_run_start(st, &r, &err), STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "parent run"), "%s", err.msg);
}

Test(store, run_without_name_gets_adjective_noun_nn)
{
    int64_t e = experiment("e");
    uint8_t id[16];
    struct run_seen seen = {0};

    id_of(id, 3);
    start_run(id, e, "", 1);
    cr_assert_eq(store_run_get(st, id, collect_run, &seen, &err), 0);
    const char *n = seen.names[0];
    const char *d1 = strchr(n, '-'), *d2 = d1 ? strchr(d1 + 1, '-') : NULL;
    cr_assert(d1 && d2 && d1 > n && d2 > d1 + 1, "%s", n);
    cr_assert_eq(strlen(d2 + 1), 2, "%s", n);
    cr_assert(d2[1] >= '0' && d2[1] <= '9' && d2[2] >= '0' && d2[2] <= '9', "%s", n);
}

Test(store, run_resolve_prefixes)
{
    int64_t e = experiment("e");
    uint8_t id[16], got[16];
    char h[33], up[33];

    for (unsigned i = 0; i < 10; i++) {
        /* ten runs sharing the prefix abcd */
        id_of(id, 100 + i);
        id[0] = 0xab;
        id[1] = 0xcd;
        start_run(id, e, "shared", i);
    }
    id_of(id, 5000);
    id[0] = 0x12;
    start_run(id, e, "lonely", 0);
    hex(id, h);

    cr_assert_eq(store_run_resolve(st, h, got, &err), 0, "%s", err.msg);
    cr_assert(memcmp(got, id, 16) == 0);
    memcpy(up, h, 33);
    for (int i = 0; i < 6; i++)
        up[i] = (char)((up[i] >= 'a' && up[i] <= 'f') ? up[i] - 32 : up[i]);
    up[6] = '\0';
    cr_assert_eq(store_run_resolve(st, up, got, &err), 0, "%s", err.msg);
    cr_assert(memcmp(got, id, 16) == 0);

    cr_assert_eq(store_run_resolve(st, "abcd", got, &err), STORE_E_AMBIGUOUS);
    int listed = 0;
    for (const char *p = err.msg; (p = strstr(p, "(shared)")) != NULL; p++)
        listed++;
    cr_assert_eq(listed, 8, "%s", err.msg);
    cr_assert(strstr(err.msg, "and more"), "%s", err.msg);
    cr_assert(strstr(err.msg, "abcd"), "%s", err.msg);

    cr_assert_eq(store_run_resolve(st, "0000", got, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(store_run_resolve(st, "abc", got, &err), STORE_E_INVALID);
    cr_assert_eq(store_run_resolve(st, "abcz", got, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "column 4"), "%s", err.msg);
    cr_assert_eq(store_run_resolve(st, "abcd-", got, &err), STORE_E_INVALID);
    cr_assert_eq(store_run_resolve(st, "0123456789abcdef0123456789abcdef0", got, &err),
                 STORE_E_INVALID);
}

Test(store, run_resolve_at_the_end_of_the_hex_range)
{
    int64_t e = experiment("e");
    uint8_t id[16], got[16];
    memset(id, 0xff, 16);
    start_run(id, e, "last", 0);
    cr_assert_eq(store_run_resolve(st, "ffff", got, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_resolve(st, "ffffffffffffffffffffffffffffffff", got, &err), 0);
    cr_assert(memcmp(got, id, 16) == 0);
}

Test(store, run_list_orders_filters_and_limits)
{
    int64_t a = experiment("a"), b = experiment("b");
    uint8_t id[16];
    struct run_seen seen = {0};

    for (unsigned i = 0; i < 6; i++) {
        id_of(id, i);
        start_run(id, i % 2 ? b : a, "r", 1000 + i);
    }
    struct store_run_query q = {0};
    cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), 0, "%s", err.msg);
    cr_assert_eq(seen.n, 6);
    for (int i = 1; i < 6; i++)
        cr_assert_gt(seen.r[i - 1].start_ms, seen.r[i].start_ms, "newest first");

    const char *only_b[] = {"b", NULL};
    q.experiments = only_b;
    q.limit = 2;
    seen.n = 0;
    cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), 0, "%s", err.msg);
    cr_assert_eq(seen.n, 2);
    cr_assert_str_eq(seen.exps[0], "b");
    cr_assert_eq(seen.r[0].start_ms, 1005);
    cr_assert_eq(seen.r[1].start_ms, 1003);

    const char *both[] = {"a", "b", NULL};
    q.experiments = both;
    q.limit = 0;
    seen.n = 0;
    cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), 0, "%s", err.msg);
    cr_assert_eq(seen.n, 6);

    const char *missing[] = {"a", "nope", NULL};
    q.experiments = missing;
    cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "\"nope\""), "%s", err.msg);

    q.experiments = NULL;
    q.filter = "(((";
    cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), STORE_E_INVALID);
    q.filter = NULL;
    q.limit = -1;
    cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), STORE_E_INVALID);
}

Test(store, run_list_combines_filter_binds_with_experiments)
{
    int64_t a = experiment("a"), b = experiment("b");
    const char *lrs[] = {"0.1", "0.2", "0.1", "0.1"};
    const double losses[] = {0.3, 0.2, 0.7, 0.1};
    uint8_t id[16];
    int64_t step = 1, t = 2;
    struct run_seen seen = {0};

    for (unsigned i = 0; i < 4; i++) {
        id_of(id, i);
        start_run(id, i == 3 ? b : a, lrs[i] + 2, 100 + i);
        cr_assert_eq(store_param_put(st, id, "lr", lrs[i], &err), 0);
        append(id, "loss", &step, &t, &losses[i], 1);
    }
    const char *only_a[] = {"a", NULL};
    struct store_run_query q = {.experiments = only_a,
                                .filter = "params.lr = '0.1' AND metrics.loss < 0.5"};
    cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), 0, "%s", err.msg);
    cr_assert_eq(seen.n, 1);
    cr_assert_eq(seen.r[0].start_ms, 100);

    q.experiments = NULL;
    seen.n = 0;
    cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), 0, "%s", err.msg);
    cr_assert_eq(seen.n, 2);
    cr_assert_eq(seen.r[0].start_ms, 103);
    cr_assert_eq(seen.r[1].start_ms, 100);

    q.filter = NULL;
    q.order_by = "metrics.loss ASC";
    seen.n = 0;
    cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), 0, "%s", err.msg);
    cr_assert_eq(seen.n, 4);
    const int64_t want[] = {103, 101, 100, 102};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(seen.r[i].start_ms, want[i], "position %d", i);
}

/* ---- params and tags ---------------------------------------------------------- */

struct kv_seen {
    int n;
    char s[8][64];
};

static int collect_kv(void *ctx, const char *k, const char *v)
{
    struct kv_seen *s = ctx;
    if (s->n < 8)
        snprintf(s->s[s->n], 64, "%s=%s", k, v);
    s->n++;
    return 0;
}

Test(store, params_are_immutable)
{
    int64_t e = experiment("e");
    uint8_t id[16];
    struct kv_seen seen = {0};

    id_of(id, 1);
    start_run(id, e, "r", 1);
    cr_assert_eq(store_param_put(st, id, "lr", "0.1", &err), 0);
    cr_assert_eq(store_param_put(st, id, "lr", "0.1", &err), 0, "the same value again");
    cr_assert_eq(store_param_put(st, id, "lr", "0.2", &err), STORE_E_CONFLICT);
    cr_assert_str_eq(err.msg,
                     "param \"lr\" already logged as \"0.1\", cannot change it to \"0.2\"");
    cr_assert_eq(store_param_put(st, id, "batch", "64", &err), 0);
    cr_assert_eq(store_param_list(st, id, collect_kv, &seen, &err), 0);
    cr_assert_eq(seen.n, 2);
    cr_assert_str_eq(seen.s[0], "batch=64");
    cr_assert_str_eq(seen.s[1], "lr=0.1");

    uint8_t nobody[16];
    id_of(nobody, 77);
    cr_assert_eq(store_param_put(st, nobody, "lr", "1", &err), STORE_E_NOT_FOUND);
    cr_assert_eq(store_param_list(st, nobody, collect_kv, &seen, &err), STORE_E_NOT_FOUND);
}

Test(store, long_param_values_are_clipped_in_messages)
{
    int64_t e = experiment("e");
    uint8_t id[16];
    char big[4000];

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    id_of(id, 1);
    start_run(id, e, "r", 1);
    cr_assert_eq(store_param_put(st, id, "k", big, &err), 0);
    big[10] = 'y';
    cr_assert_eq(store_param_put(st, id, "k", big, &err), STORE_E_CONFLICT);
    cr_assert(strstr(err.msg, "...\", cannot change it to"), "%s", err.msg);
}

Test(store, tags_are_overwritten)
{
    int64_t e = experiment("e");
    uint8_t id[16];
    struct kv_seen seen = {0};

    id_of(id, 1);
    start_run(id, e, "r", 1);
    cr_assert_eq(store_tag_put(st, id, "note", "first", &err), 0);
    cr_assert_eq(store_tag_put(st, id, "note", "second", &err), 0);
    cr_assert_eq(store_tag_put(st, id, "sys.host", "box", &err), 0);
    cr_assert_eq(store_tag_list(st, id, collect_kv, &seen, &err), 0);
    cr_assert_eq(seen.n, 2);
    cr_assert_str_eq(seen.s[0], "note=second");
    cr_assert_str_eq(seen.s[1], "sys.host=box");
}

/* ---- metrics -------------------------------------------------------------------- */

struct sum_seen {
    int n;
    char keys[8][32];
    struct store_metric_summary s[8];
};

static int collect_sum(void *ctx, const struct store_metric_summary *s)
{
    struct sum_seen *c = ctx;
    if (c->n < 8) {
        c->s[c->n] = *s;
        snprintf(c->keys[c->n], 32, "%s", s->key);
        c->s[c->n].key = c->keys[c->n];
    }
    c->n++;
    return 0;
}

static const struct store_metric_summary *summary_of(struct sum_seen *c, const char *key)
{
    for (int i = 0; i < c->n && i < 8; i++)
        if (strcmp(c->keys[i], key) == 0)
            return &c->s[i];
    cr_assert_fail("no summary for %s", key);
    return NULL;
}

Test(store, metric_summaries_track_last_min_max_count)
{
    int64_t e = experiment("e");
    uint8_t id[16];
    struct sum_seen seen = {0};
    int64_t steps[] = {0, 1, 2, 3}, times[] = {100, 200, 300, 400};
    double vals[] = {3.0, 1.0, NAN, 2.0};

    id_of(id, 1);
    start_run(id, e, "r", 1);
    append(id, "loss", steps, times, vals, 4);
    cr_assert_eq(store_metric_summaries(st, id, collect_sum, &seen, &err), 0);
    const struct store_metric_summary *s = summary_of(&seen, "loss");
    cr_assert_eq(s->count, 4);
    cr_assert_eq(s->last, 2.0);
    cr_assert_eq(s->min, 1.0);
    cr_assert_eq(s->max, 3.0);
    cr_assert_eq(s->last_step, 3);
    cr_assert_eq(s->last_ms, 400);

    int64_t st2[] = {4, 5}, tm2[] = {500, 600};
    double v2[] = {INFINITY, NAN};
    append(id, "loss", st2, tm2, v2, 2);
    double all_nan[] = {NAN, NAN};
    append(id, "grad", st2, tm2, all_nan, 2);
    seen.n = 0;
    cr_assert_eq(store_metric_summaries(st, id, collect_sum, &seen, &err), 0);
    cr_assert_eq(seen.n, 2);
    cr_assert_str_eq(seen.keys[0], "grad", "by key name");
    s = summary_of(&seen, "loss");
    cr_assert_eq(s->count, 6);
    cr_assert(isnan(s->last));
    cr_assert_eq(s->min, 1.0);
    cr_assert(isinf(s->max) && s->max > 0);
    cr_assert_eq(s->last_step, 5);
    s = summary_of(&seen, "grad");
    cr_assert(isnan(s->min) && isnan(s->max) && isnan(s->last));
}

struct pts {
    size_t n, cap;
    int calls;
    int64_t *steps, *times;
    double *vals;
};

static int collect_pts(void *ctx, const int64_t *steps, const int64_t *times, const double *vals,
                       size_t n)
{
    struct pts *p = ctx;
    if (p->n + n > p->cap) {
        size_t cap = (p->n + n) * 2;
        p->steps = realloc(p->steps, cap * 8);
        p->times = realloc(p->times, cap * 8);
        p->vals = realloc(p->vals, cap * 8);
        p->cap = cap;
    }
    memcpy(p->steps + p->n, steps, n * 8);
    memcpy(p->times + p->n, times, n * 8);
    memcpy(p->vals + p->n, vals, n * 8);
    p->n += n;
    p->calls++;
    return 0;
}

static void pts_free(struct pts *p)
{
    free(p->steps);
    free(p->times);
    free(p->vals);
    memset(p, 0, sizeof *p);
}

static double bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

Test(store, special_values_round_trip_through_history)
{
    int64_t e = experiment("e");
    uint8_t id[16];
    double vals[] = {bits(0x7ff8000000000000ULL),
                     bits(0xfff0000000000abcULL),
                     bits(0x7ff4000000000123ULL),
                     INFINITY,
                     -INFINITY,
                     -0.0,
                     0.0,
                     bits(0x0000000000000001ULL),
                     1e308,
                     -1e-308};
    enum { N = sizeof vals / sizeof vals[0] };
    int64_t steps[N], times[N];
    struct pts got = {0};
    struct sum_seen seen = {0};
    int64_t next = -1;

    for (int i = 0; i < N; i++) {
        steps[i] = i;
        times[i] = 1764000000000 + i;
    }
    id_of(id, 1);
    start_run(id, e, "r", 1);
    append(id, "x", steps, times, vals, 5);
    append(id, "x", steps + 5, times + 5, vals + 5, N - 5);
    cr_assert_eq(store_metric_history(st, id, "x", 0, 0, collect_pts, &got, &next, &err), 0);
    cr_assert_eq(got.n, N);
    cr_assert_eq(next, N);
    for (int i = 0; i < N; i++) {
        cr_assert(same_bits(got.vals[i], vals[i]), "value %d", i);
        cr_assert_eq(got.steps[i], steps[i]);
        cr_assert_eq(got.times[i], times[i]);
    }
    pts_free(&got);

    /* the summary's last keeps -0.0 and NaN payloads exactly */
    double negzero = -0.0, payload = bits(0x7ff80000deadbeefULL);
    append(id, "nz", steps, times, &negzero, 1);
    append(id, "nan", steps, times, &payload, 1);
    cr_assert_eq(store_metric_summaries(st, id, collect_sum, &seen, &err), 0);
    cr_assert(same_bits(summary_of(&seen, "nz")->last, -0.0));
    cr_assert(same_bits(summary_of(&seen, "nan")->last, payload));
    cr_assert(same_bits(summary_of(&seen, "x")->last, -1e-308));
}

static void fill(int64_t *steps, int64_t *times, double *vals, size_t n, int64_t first)
{
    for (size_t i = 0; i < n; i++) {
        steps[i] = first + (int64_t)i;
        times[i] = 1764000000000 + (first + (int64_t)i) * 100;
        vals[i] = 1.0 / (double)(first + (int64_t)i + 1);
    }
}

static void check_series(const struct pts *p, int64_t first, size_t n)
{
    int64_t s[1], t[1];
    double v[1];
    cr_assert_eq(p->n, n);
    for (size_t i = 0; i < n; i++) {
        fill(s, t, v, 1, first + (int64_t)i);
        cr_assert_eq(p->steps[i], s[0], "point %zu", i);
        cr_assert_eq(p->times[i], t[0]);
        cr_assert(same_bits(p->vals[i], v[0]));
    }
}

Test(store, history_cursors_cross_chunks)
{
    int64_t e = experiment("e");
    uint8_t id[16];
    int64_t steps[10], times[10], next = 0;
    double vals[10];
    struct pts got = {0};

    id_of(id, 1);
    start_run(id, e, "r", 1);
    for (int c = 0; c < 5; c++) {
        fill(steps, times, vals, 10, c * 10);
        append(id, "loss", steps, times, vals, 10);
    }
    cr_assert_eq(store_metric_history(st, id, "loss", 7, 15, collect_pts, &got, &next, &err), 0);
    cr_assert_eq(next, 22);
    check_series(&got, 7, 15);
    cr_assert_eq(got.calls, 3, "one slice per chunk: 7..9, 10..19, 20..21");
    pts_free(&got);

    /* walk it all in pages of 13 */
    int64_t cur = 0;
    for (int page = 0; page < 10; page++) {
        cr_assert_eq(store_metric_history(st, id, "loss", cur, 13, collect_pts, &got, &next, &err),
                     0);
        if (next == cur)
            break;
        cur = next;
    }
    cr_assert_eq(cur, 50);
    check_series(&got, 0, 50);
    pts_free(&got);

    cr_assert_eq(store_metric_history(st, id, "loss", 60, 0, collect_pts, &got, &next, &err), 0);
    cr_assert_eq(got.n, 0);
    cr_assert_eq(next, 60);
    cr_assert_eq(store_metric_history(st, id, "nope", 0, 0, collect_pts, &got, &next, &err), 0);
    cr_assert_eq(got.n, 0);
    cr_assert_eq(store_metric_history(st, id, "loss", -1, 0, collect_pts, &got, &next, &err),
                 STORE_E_INVALID);
}

Test(store, metric_append_to_missing_run_is_not_found)
{
    uint8_t id[16];
    int64_t s = 0, t = 0;
    double v = 1;
    id_of(id, 1);
    cr_assert_eq(store_metric_append(st, id, "loss", &s, &t, &v, 1, &err), STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "not found"), "%s", err.msg);
}

Test(store, big_appends_are_split_into_chunks)
{
    int64_t e = experiment("e");
    uint8_t id[16];
    size_t n = 150000;
    int64_t *steps = malloc(n * 8), *times = malloc(n * 8), next = 0;
    double *vals = malloc(n * 8);
    struct pts got = {0};
    struct store_counts c;

    fill(steps, times, vals, n, 0);
    id_of(id, 1);
    start_run(id, e, "r", 1);
    append(id, "loss", steps, times, vals, n);
    cr_assert_eq(store_counts(st, &c, &err), 0);
    cr_assert_eq(c.metric_chunks, (int64_t)((n + 4095) / 4096)); /* chunks of at most 4096 */
    cr_assert_eq(c.metric_points, (int64_t)n);
    cr_assert_eq(store_metric_history(st, id, "loss", 70000, 0, collect_pts, &got, &next, &err), 0);
    check_series(&got, 70000, n - 70000);
    cr_assert_eq(next, (int64_t)n);
    pts_free(&got);
    free(steps);
    free(times);
    free(vals);
}

Test(store, compaction_keeps_every_point_once_and_cursors_valid)
{
    int64_t e = experiment("e");
    uint8_t a[16], b[16];
    int64_t steps[200], times[200], next = 0, pos = 0;
    double vals[200];
    struct pts got = {0};
    struct store_counts c;
    int merged = -1;

    id_of(a, 1);
    id_of(b, 2);
    start_run(a, e, "a", 1);
    start_run(b, e, "b", 1);
    /* 30 tiny chunks, a big one, 20 tiny ones; run b interleaved */
    for (int i = 0; i < 51; i++) {
        size_t n = i == 30 ? 200 : 1 + (size_t)(i % 3);
        fill(steps, times, vals, n, pos);
        append(a, "loss", steps, times, vals, n);
        append(b, "acc", steps, times, vals, 1);
        pos += (int64_t)n;
    }
    cr_assert_eq(store_counts(st, &c, &err), 0);
    cr_assert_eq(c.metric_chunks, 102);

    /* a cursor taken before compaction */
    cr_assert_eq(store_metric_history(st, a, "loss", 0, 17, collect_pts, &got, &next, &err), 0);
    cr_assert_eq(next, 17);
    pts_free(&got);

    cr_assert_eq(store_begin(st, &err), 0);
    cr_assert_eq(store_metric_compact(st, 8, 1, &merged, &err), 0, "%s", err.msg);
    cr_assert_eq(merged, 29, "the first group only: 30 chunks of run a become one");
    cr_assert_eq(store_metric_compact(st, 8, 100, &merged, &err), 0, "%s", err.msg);
    cr_assert_eq(merged, 19 + 50);
    cr_assert_eq(store_commit(st, &err), 0);
    cr_assert_eq(store_counts(st, &c, &err), 0);
    cr_assert_eq(c.metric_chunks, 3 + 1);
    cr_assert_eq(c.metric_points, pos + 51);
    cr_assert_eq(store_metric_compact(st, 8, 100, &merged, &err), 0);
    cr_assert_eq(merged, 0, "nothing left to merge");

    cr_assert_eq(store_metric_history(st, a, "loss", next, 0, collect_pts, &got, &next, &err), 0);
    check_series(&got, 17, (size_t)pos - 17);
    cr_assert_eq(next, pos);
    pts_free(&got);
    cr_assert_eq(store_metric_history(st, b, "acc", 0, 0, collect_pts, &got, &next, &err), 0);
    cr_assert_eq(got.n, 51);
    pts_free(&got);
    cr_assert_eq(store_check(st, &err), 0, "%s", err.msg);

    /* a lone small chunk already looked at still merges with a newer one */
    fill(steps, times, vals, 2, 0);
    append(b, "z", steps, times, vals, 1);
    cr_assert_eq(store_metric_compact(st, 8, 100, &merged, &err), 0);
    cr_assert_eq(merged, 0);
    append(b, "z", steps + 1, times + 1, vals + 1, 1);
    cr_assert_eq(store_metric_compact(st, 8, 100, &merged, &err), 0);
    cr_assert_eq(merged, 1);
    cr_assert_eq(store_metric_history(st, b, "z", 0, 0, collect_pts, &got, &next, &err), 0);
    check_series(&got, 0, 2);
    cr_assert_eq(got.calls, 1);
    pts_free(&got);
    cr_assert_eq(store_check(st, &err), 0, "%s", err.msg);
}

Test(store, failed_compaction_leaves_nothing_half_done)
{
    int64_t e = experiment("e");
    uint8_t a[16];
    int64_t steps[10], times[10];
    double vals[10];
    struct store_counts before, after;
    int merged = -1;
    sqlite3 *db;

    id_of(a, 1);
    start_run(a, e, "a", 1);
    fill(steps, times, vals, 10, 0);
    for (int i = 0; i < 10; i++)
        append(a, "loss", steps + i, times + i, vals + i, 1);
    cr_assert_eq(store_counts(st, &before, &err), 0);
    store_close(st);
    st = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "UPDATE metric_chunks SET data = x'0101' WHERE first_seq = 6",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    cr_assert_eq(store_open(dbpath, &(struct store_opts){0}, &st, &err), 0);

    cr_assert_eq(store_begin(st, &err), 0);
    cr_assert_eq(store_metric_compact(st, 8, 100, &merged, &err), STORE_E_CORRUPT);
    cr_assert(strstr(err.msg, "cannot be merged"), "%s", err.msg);
    cr_assert_eq(store_counts(st, &after, &err), 0);
    cr_assert_eq(after.metric_chunks, before.metric_chunks);
    cr_assert_eq(store_commit(st, &err), 0);
}

Test(store, curve_of_a_million_points)
{
    int64_t e = experiment("e");
    uint8_t id[16];
    enum { N = 1000000, BATCH = 4096 };
    int64_t *steps = malloc(BATCH * 8), *times = malloc(BATCH * 8), count = 0;
    double *vals = malloc(BATCH * 8), lo = INFINITY, hi = -INFINITY, last = 0;
    int64_t bsteps[1000];
    double mins[1000], maxs[1000], lasts[1000];
    int n = 0;

    id_of(id, 1);
    start_run(id, e, "r", 1);
    cr_assert_eq(store_begin(st, &err), 0);
    for (int64_t at = 0; at < N; at += BATCH) {
        size_t m = N - at < BATCH ? (size_t)(N - at) : BATCH;
        for (size_t i = 0; i < m; i++) {
            int64_t k = at + (int64_t)i;
            steps[i] = k;
            times[i] = 1764000000000 + k * 10;
            vals[i] = exp(-(double)k / 200000.0) + 0.01 * sin((double)k);
            if (k == 123456)
                vals[i] = NAN;
            else if (vals[i] < lo)
                lo = vals[i];
            if (!isnan(vals[i]) && vals[i] > hi)
                hi = vals[i];
        }
        last = vals[m - 1];
        append(id, "loss", steps, times, vals, m);
    }
    cr_assert_eq(store_commit(st, &err), 0);

    /* 245 chunks >= 2 * 100 buckets: whole chunks bucketed in SQL */
    int sizes[] = {100, 1000, 1};
    for (int t = 0; t < 3; t++) {
        int buckets = sizes[t];
        cr_assert_eq(store_metric_curve(st, id, "loss", buckets, bsteps, mins, maxs, lasts, &n,
                                        &count, &err),
                     0, "%s", err.msg);
        cr_assert_eq(count, N);
        cr_assert_gt(n, 0);
        cr_assert_leq(n, buckets);
        double cmin = INFINITY, cmax = -INFINITY;
        for (int i = 0; i < n; i++) {
            if (i)
                cr_assert_gt(bsteps[i], bsteps[i - 1]);
            cr_assert_leq(mins[i], maxs[i]);
            if (mins[i] < cmin)
                cmin = mins[i];
            if (maxs[i] > cmax)
                cmax = maxs[i];
        }
        cr_assert_eq(bsteps[0], 0);
        cr_assert_eq(cmin, lo, "buckets=%d", buckets);
        cr_assert_eq(cmax, hi, "buckets=%d", buckets);
        cr_assert(same_bits(lasts[n - 1], last));
        if (buckets == 1000)
            cr_assert_eq(n, 1000);
    }
    cr_assert_eq(
        store_metric_curve(st, id, "nope", 10, bsteps, mins, maxs, lasts, &n, &count, &err), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(store_metric_curve(st, id, "loss", 0, bsteps, mins, maxs, lasts, &n, &count, &err),
                 STORE_E_INVALID);
    free(steps);
    free(times);
    free(vals);
}

Test(store, rolled_back_keys_and_runs_leave_no_stale_cache)
{
    int64_t e = experiment("e");
    uint8_t a[16], b[16];
    int64_t s = 1, t = 2;
    double v = 3;
    struct sum_seen seen = {0};

    id_of(a, 1);
    id_of(b, 2);
    start_run(a, e, "a", 1);

    cr_assert_eq(store_begin(st, &err), 0);
    append(a, "ghost", &s, &t, &v, 1); /* interns "ghost" as the next key id */
    store_rollback(st);
    cr_assert_eq(store_begin(st, &err), 0);
    append(a, "real", &s, &t, &v, 1); /* reuses that id */
    cr_assert_eq(store_commit(st, &err), 0);
    append(a, "ghost", &s, &t, &v, 1);
    cr_assert_eq(store_metric_summaries(st, a, collect_sum, &seen, &err), 0);
    cr_assert_eq(seen.n, 2);
    cr_assert_eq(summary_of(&seen, "ghost")->count, 1);
    cr_assert_eq(summary_of(&seen, "real")->count, 1);

    /* a run started and used in a rolled-back savepoint is gone */
    cr_assert_eq(store_begin(st, &err), 0);
    cr_assert_eq(store_save(st, &err), 0);
    start_run(b, e, "b", 1);
    cr_assert_eq(store_param_put(st, b, "k", "v", &err), 0);
    store_rollback_to(st);
    cr_assert_eq(store_commit(st, &err), 0);
    cr_assert_eq(store_param_put(st, b, "k", "v", &err), STORE_E_NOT_FOUND);
}

/* ---- request ids ---------------------------------------------------------------- */

Test(store, request_ids_put_lookup_prune)
{
    uint8_t ids[3][16], other[16];
    uint8_t *resp = NULL;
    size_t len = 0;

    for (int i = 0; i < 3; i++)
        id_of(ids[i], (unsigned)i + 40);
    id_of(other, 99);
    cr_assert_eq(store_request_put(st, ids[0], NULL, (const uint8_t *)"one", 3, 100, &err), 0);
    cr_assert_eq(store_request_put(st, ids[1], NULL, (const uint8_t *)"", 0, 200, &err), 0);
    cr_assert_eq(store_request_put(st, ids[2], NULL, (const uint8_t *)"three", 5, 300, &err), 0);
    cr_assert_eq(store_request_put(st, ids[0], NULL, (const uint8_t *)"again", 5, 400, &err),
                 STORE_E_EXISTS);

    cr_assert_eq(store_request_lookup(st, ids[0], NULL, &resp, &len, &err), 1);
    cr_assert_eq(len, 3);
    cr_assert(memcmp(resp, "one", 3) == 0, "the first response stands");
    free(resp);
    cr_assert_eq(store_request_lookup(st, ids[1], NULL, &resp, &len, &err), 1);
    cr_assert_eq(len, 0);
    free(resp);
    cr_assert_eq(store_request_lookup(st, other, NULL, &resp, &len, &err), 0);
    cr_assert_null(resp);

    cr_assert_eq(store_request_prune(st, 250, 0, 1, NULL, &err), 0);
    cr_assert_eq(store_request_lookup(st, ids[0], NULL, &resp, &len, &err), 0);
    cr_assert_eq(store_request_lookup(st, ids[1], NULL, &resp, &len, &err), 1);
    free(resp);
    cr_assert_eq(store_request_prune(st, 250, 0, 0, NULL, &err), 0);
    cr_assert_eq(store_request_lookup(st, ids[1], NULL, &resp, &len, &err), 0);
    cr_assert_eq(store_request_lookup(st, ids[2], NULL, &resp, &len, &err), 1);
    free(resp);
}

Test(store, request_ids_survive_a_clock_set_forward_while_among_the_newest)
{
    const int64_t day = 24LL * 3600 * 1000, now = 1764000000000LL, keep = 7 * day;
    uint8_t x[16], y[16], z[16], *resp = NULL;
    size_t len = 0;
    int pruned = -1;

    id_of(x, 70);
    id_of(y, 71);
    id_of(z, 72);
    /* x and y recorded while the clock was 30 days behind */
    cr_assert_eq(store_request_put(st, x, NULL, (const uint8_t *)"x", 1, now - 30 * day, &err), 0);
    cr_assert_eq(store_request_put(st, y, NULL, (const uint8_t *)"y", 1, now - 30 * day, &err), 0);
    cr_assert_eq(store_request_put(st, z, NULL, (const uint8_t *)"z", 1, now, &err), 0);
    /* the clock set right: both look 30 days old, but the 3 newest are kept */
    cr_assert_eq(store_request_prune(st, now - keep, 3, 0, &pruned, &err), 0, "%s", err.msg);
    cr_assert_eq(pruned, 0);
    cr_assert_eq(store_request_lookup(st, x, NULL, &resp, &len, &err), 1, "x was forgotten");
    free(resp);
    /* keeping only the 2 newest: x, the oldest recorded, goes; y stays */
    cr_assert_eq(store_request_prune(st, now - keep, 2, 0, &pruned, &err), 0, "%s", err.msg);
    cr_assert_eq(pruned, 1);
    cr_assert_eq(store_request_lookup(st, x, NULL, &resp, &len, &err), 0);
    cr_assert_eq(store_request_lookup(st, y, NULL, &resp, &len, &err), 1);
    free(resp);
    /* outside the newest but young by the clock: kept too */
    cr_assert_eq(store_request_prune(st, now - 31 * day, 0, 0, &pruned, &err), 0);
    cr_assert_eq(pruned, 0);
    cr_assert_eq(store_request_lookup(st, y, NULL, &resp, &len, &err), 1);
    free(resp);
}

Test(store, request_id_with_another_digest_is_a_conflict)
{
    uint8_t id[16], d1[STORE_DIGEST_BYTES], d2[STORE_DIGEST_BYTES], *resp = NULL;
    size_t len = 0;

    id_of(id, 80);
    memset(d1, 1, sizeof d1);
    memset(d2, 2, sizeof d2);
    cr_assert_eq(store_request_put(st, id, d1, (const uint8_t *)"ok", 2, 1, &err), 0);
    cr_assert_eq(store_request_lookup(st, id, d1, &resp, &len, &err), 1);
    cr_assert_eq(len, 2);
    free(resp);
    resp = NULL;
    cr_assert_eq(store_request_lookup(st, id, d2, &resp, &len, &err), STORE_E_CONFLICT);
    cr_assert_null(resp);
    cr_assert(strstr(err.msg, "reused with a different body"), "%s", err.msg);
    /* no digest to compare with: the response is replayed */
    cr_assert_eq(store_request_lookup(st, id, NULL, &resp, &len, &err), 1);
    free(resp);
}

Test(store, savepoint_rollback_undoes_one_request_only)
{
    uint8_t a[16], b[16], c[16];
    uint8_t *resp = NULL;
    size_t len = 0;

    id_of(a, 1);
    id_of(b, 2);
    id_of(c, 3);
    cr_assert_eq(store_begin(st, &err), 0);
    cr_assert_eq(store_save(st, &err), 0);
    cr_assert_eq(store_request_put(st, a, NULL, (const uint8_t *)"a", 1, 1, &err), 0);
    store_release(st);
    cr_assert_eq(store_save(st, &err), 0);
    cr_assert_eq(store_request_put(st, b, NULL, (const uint8_t *)"b", 1, 1, &err), 0);
    cr_assert_eq(store_experiment_create(st, "from-b", 1, NULL, &err), 0);
    store_rollback_to(st);
    cr_assert_eq(store_save(st, &err), 0);
    cr_assert_eq(store_request_put(st, c, NULL, (const uint8_t *)"c", 1, 1, &err), 0);
    store_release(st);
    cr_assert_eq(store_commit(st, &err), 0);

    cr_assert_eq(store_request_lookup(st, a, NULL, &resp, &len, &err), 1);
    free(resp);
    cr_assert_eq(store_request_lookup(st, b, NULL, &resp, &len, &err), 0);
    cr_assert_eq(store_request_lookup(st, c, NULL, &resp, &len, &err), 1);
    free(resp);
    struct store_counts n;
    cr_assert_eq(store_counts(st, &n, &err), 0);
    cr_assert_eq(n.experiments, 0);
}

/* ---- whole store ------------------------------------------------------------- */

/* Two experiments, five runs, a few thousand points in many chunks. */
static void populate(void)
{
    int64_t e1 = experiment("one"), e2 = experiment("two");
    int64_t steps[512], times[512];
    double vals[512];
    uint8_t id[16];

    cr_assert_eq(store_begin(st, &err), 0);
    for (unsigned r = 0; r < 5; r++) {
        id_of(id, r);
        start_run(id, r < 3 ? e1 : e2, "run", r);
        cr_assert_eq(store_param_put(st, id, "lr", "0.1", &err), 0);
        for (int c = 0; c < 8; c++) {
            fill(steps, times, vals, 512, c * 512);
            for (int i = 0; i < 512; i++)
                vals[i] += (double)r + sin((double)i);
            append(id, "loss", steps, times, vals, 512);
            append(id, "acc", steps, times, vals, 100);
        }
    }
    cr_assert_eq(store_commit(st, &err), 0);
}

Test(store, counts_and_a_clean_check)
{
    struct store_counts c;
    populate();
    cr_assert_eq(store_counts(st, &c, &err), 0);
    cr_assert_eq(c.experiments, 2);
    cr_assert_eq(c.runs, 5);
    cr_assert_eq(c.metric_points, 5 * 8 * (512 + 100));
    cr_assert_eq(c.metric_chunks, 5 * 8 * 2);
    cr_assert_gt(c.db_bytes, 4096);
    cr_assert_eq(store_check(st, &err), 0, "%s", err.msg);
}

Test(store, check_finds_a_damaged_file)
{
    struct stat sb;
    populate();
    store_close(st);
    st = NULL;

    cr_assert_eq(stat(dbpath, &sb), 0);
    cr_assert_gt(sb.st_size, 64 * 1024);
    int fd = open(dbpath, O_WRONLY);
    cr_assert_geq(fd, 0);
    uint8_t junk[16384];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    cr_assert_eq(pwrite(fd, junk, sizeof junk, sb.st_size / 2), (ssize_t)sizeof junk);
    close(fd);

    int rc = store_open(dbpath, &(struct store_opts){0}, &st, &err);
    if (rc == 0)
        rc = store_check(st, &err);
    cr_assert(rc == STORE_E_CORRUPT || rc == STORE_E_IO, "rc %d: %s", rc, err.msg);
    cr_assert_eq(err.code, rc);
    cr_assert_neq(err.msg[0], '\0');
}

Test(store, check_finds_a_damaged_chunk)
{
    sqlite3 *db;
    populate();
    store_close(st);
    st = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(
        sqlite3_exec(db, "UPDATE metric_chunks SET data = x'01ff' WHERE id = 7", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    cr_assert_eq(store_open(dbpath, &(struct store_opts){0}, &st, &err), 0);
    cr_assert_eq(store_check(st, &err), STORE_E_CORRUPT);
    cr_assert(strstr(err.msg, "chunk 7 of run "), "%s", err.msg);
}

Test(store, backup_copies_everything)
{
    struct store_counts a, b;
    struct store *copy = NULL;
    char dest[600];

    populate();
    snprintf(dest, sizeof dest, "%s/backup.db", dir);
    cr_assert_eq(store_backup(st, dest, &err), 0, "%s", err.msg);
    cr_assert_eq(store_backup(st, dest, &err), STORE_E_EXISTS);
    cr_assert_eq(store_counts(st, &a, &err), 0);
    cr_assert_eq(store_open(dest, &(struct store_opts){.readonly = 1}, &copy, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_counts(copy, &b, &err), 0);
    cr_assert_eq(a.experiments, b.experiments);
    cr_assert_eq(a.runs, b.runs);
    cr_assert_eq(a.metric_points, b.metric_points);
    cr_assert_eq(a.metric_chunks, b.metric_chunks);
    cr_assert_eq(store_check(copy, &err), 0, "%s", err.msg);
    store_close(copy);

    cr_assert_eq(store_begin(st, &err), 0);
    snprintf(dest, sizeof dest, "%s/inside.db", dir);
    cr_assert_eq(store_backup(st, dest, &err), STORE_E_INVALID);
    store_rollback(st);
}

Test(store, readonly_handle_sees_committed_data)
{
    struct store *ro = NULL;
    struct run_seen seen = {0};
    uint8_t a[16], b[16];
    int64_t e = experiment("e");

    id_of(a, 1);
    id_of(b, 2);
    start_run(a, e, "a", 1);
    cr_assert_eq(store_open(dbpath, &(struct store_opts){.readonly = 1}, &ro, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_run_get(ro, a, collect_run, &seen, &err), 0);
    cr_assert_eq(store_run_get(ro, b, collect_run, &seen, &err), STORE_E_NOT_FOUND);

    cr_assert_eq(store_begin(st, &err), 0);
    start_run(b, e, "b", 2);
    cr_assert_eq(store_run_get(ro, b, collect_run, &seen, &err), STORE_E_NOT_FOUND,
                 "not committed yet");
    cr_assert_eq(store_commit(st, &err), 0);
    cr_assert_eq(store_run_get(ro, b, collect_run, &seen, &err), 0);

    cr_assert_eq(store_experiment_create(ro, "x", 1, NULL, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "read-only"), "%s", err.msg);
    cr_assert_eq(store_begin(ro, &err), 0, "a read transaction");
    cr_assert_eq(store_commit(ro, &err), 0);
    store_close(ro);
}

Test(store, open_refuses_what_it_cannot_use)
{
    struct store *other = NULL;
    char path[600];
    sqlite3 *db;

    snprintf(path, sizeof path, "%s/missing.db", dir);
    cr_assert_eq(store_open(path, &(struct store_opts){.readonly = 1}, &other, &err), STORE_E_IO);
    cr_assert_null(other);

    snprintf(path, sizeof path, "%s/text.db", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 200; i++)
        fputs("this is not a database at all\n", f);
    fclose(f);
    cr_assert_eq(store_open(path, &(struct store_opts){0}, &other, &err), STORE_E_CORRUPT);

    snprintf(path, sizeof path, "%s/newer.db", dir);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cr_assert_eq(store_open(path, &(struct store_opts){0}, &other, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "newer"), "%s", err.msg);
    cr_assert_eq(store_open(path, &(struct store_opts){.readonly = 1}, &other, &err),
                 STORE_E_INVALID);

    cr_assert_eq(store_open(dbpath, &(struct store_opts){.durability = 7}, &other, &err),
                 STORE_E_INVALID);
    cr_assert_eq(
        store_open(dbpath, &(struct store_opts){.durability = STORE_DURABILITY_FULL}, &other, &err),
        0, "%s", err.msg);
    store_close(other);
}

Test(store, reopening_keeps_the_data)
{
    struct store_counts c;
    populate();
    store_close(st);
    st = NULL;
    cr_assert_eq(store_open(dbpath, &(struct store_opts){0}, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_counts(st, &c, &err), 0);
    cr_assert_eq(c.runs, 5);
    cr_assert_eq(store_check(st, &err), 0, "%s", err.msg);
}

/* Curve lasts of a 40-chunk series, checked against the decoded points. */
static void check_curve_lasts(const uint8_t id[16], int64_t n)
{
    int64_t steps[20], count = 0;
    double mins[20], maxs[20], lasts[20];
    int nb = 0;

    cr_assert_eq(
        store_metric_curve(st, id, "loss", 20, steps, mins, maxs, lasts, &nb, &count, &err), 0,
        "%s", err.msg);
    cr_assert_eq(count, n);
    cr_assert_gt(nb, 0);
    /* values are 1/(step+1): decreasing, so a bucket's last is its min */
    for (int i = 0; i < nb; i++)
        cr_assert(same_bits(lasts[i], mins[i]), "bucket %d: last %g, min %g", i, lasts[i], mins[i]);
    cr_assert(same_bits(lasts[nb - 1], 1.0 / (double)n), "last bucket's last %g", lasts[nb - 1]);
}

/* what migrations after 3 added, taken off again (newest first), and the
 * schema a migrated database reaches: 4 runs' lifecycle, 5 artifacts, 6 the
 * model registry, 7 identity, 8 feedback, 9 the params' search index, 10
 * traces, 12 that index kept in batches */
#define UNDO_LATER                                                                                 \
    "DROP TABLE marks; DROP INDEX params_search; ALTER TABLE params DROP COLUMN ix;"               \
    " CREATE INDEX params_search ON params(key, num, value);"                                      \
    " DROP INDEX metric_summary_key; ALTER TABLE metric_summary DROP COLUMN ix;"                   \
    " CREATE INDEX metric_summary_key ON metric_summary(key_id, last);"                            \
    "DROP TABLE trace_models; DROP TABLE spans; DROP TABLE traces;"                                \
    " DROP INDEX params_search; ALTER TABLE params DROP COLUMN num;"                               \
    "DROP TABLE feedback_labels; DROP TABLE feedback_summary; DROP TABLE feedback;"                \
    " DROP TABLE feedback_names;"                                                                  \
    " DROP TABLE audit; DROP TABLE tokens; DROP TABLE grants; DROP TABLE users;"                   \
    " DROP TABLE model_alias_history; DROP TABLE model_aliases; DROP TABLE model_tags;"            \
    " DROP TABLE model_versions; DROP TABLE models;"                                               \
    " DROP TABLE artifacts;"                                                                       \
    " DROP INDEX runs_deleted; ALTER TABLE runs DROP COLUMN deleted_ms;"                           \
    " ALTER TABLE runs DROP COLUMN lifecycle;"
#define SCHEMA_LATEST 12

Test(store, a_schema_1_database_is_migrated_and_its_old_chunks_still_draw_curves)
{
    const int64_t n = 40 * 4096;
    int64_t *steps = malloc((size_t)n * 8), *times = malloc((size_t)n * 8);
    double *vals = malloc((size_t)n * 8);
    int64_t e = experiment("e");
    uint8_t id[16];
    sqlite3 *db;
    sqlite3_stmt *q;

    fill(steps, times, vals, (size_t)n, 0);
    id_of(id, 1);
    start_run(id, e, "r", 1);
    append(id, "loss", steps, times, vals, (size_t)n);
    check_curve_lasts(id, n);
    store_close(st);
    st = NULL;

    /* make it what schema 1 wrote: no vlast column, no artifacts, user_version 1 */
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db,
                              "ALTER TABLE metric_chunks DROP COLUMN vlast;"
                              " " UNDO_LATER " PRAGMA user_version = 1;",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);

    cr_assert_eq(store_open(dbpath, &(struct store_opts){0}, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(q, 0), SCHEMA_LATEST, "migrated to the latest schema");
    sqlite3_finalize(q);
    sqlite3_close(db);
    /* the old chunks have no last value stored: the curve decodes them */
    check_curve_lasts(id, n);
    cr_assert_eq(store_check(st, &err), 0, "%s", err.msg);
    free(steps);
    free(times);
    free(vals);
}

Test(store, a_schema_2_database_keeps_its_request_ids_and_replays_them)
{
    uint8_t old[16], fresh[16], dg[STORE_DIGEST_BYTES], *resp = NULL;
    size_t len = 0;
    sqlite3 *db;
    sqlite3_stmt *q;
    char sql[2048], hx[33];

    id_of(old, 90);
    id_of(fresh, 91);
    memset(dg, 7, sizeof dg);
    store_close(st);
    st = NULL;
    /* make the requests table what schema 2 wrote, holding one id */
    hex(old, hx);
    snprintf(sql, sizeof sql,
             "DROP TABLE requests;"
             " CREATE TABLE requests(id BLOB PRIMARY KEY, ms INTEGER NOT NULL,"
             " response BLOB NOT NULL) WITHOUT ROWID;"
             " CREATE INDEX requests_ms ON requests(ms);"
             " INSERT INTO requests VALUES(x'%s', 5, x'6f6c64');"
             " " UNDO_LATER " PRAGMA user_version = 2;",
             hx);
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);

    cr_assert_eq(store_open(dbpath, &(struct store_opts){0}, &st, &err), 0, "%s", err.msg);
    /* recorded without a digest: any body replays the first response */
    cr_assert_eq(store_request_lookup(st, old, dg, &resp, &len, &err), 1, "%s", err.msg);
    cr_assert_eq(len, 3);
    cr_assert(memcmp(resp, "old", 3) == 0);
    free(resp);
    cr_assert_eq(store_request_put(st, fresh, dg, (const uint8_t *)"new", 3, 6, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT seq FROM requests ORDER BY seq", -1, &q, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(q, 0), 1, "the old id is first in order");
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(q, 0), 2);
    sqlite3_finalize(q);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(q, 0), SCHEMA_LATEST);
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* Joins n copies of unit with sep into a malloc'd string. */
static char *joined(const char *unit, const char *sep, int n)
{
    size_t cap = (size_t)n * (strlen(unit) + strlen(sep) + 8) + 1, at = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    s[0] = '\0';
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(s + at, cap - at, "%s%s", i ? sep : "", unit);
    return s;
}

Test(store, run_list_at_the_filter_limits_runs_and_past_them_is_invalid_naming_the_limit)
{
    int64_t e = experiment("e");
    uint8_t id[16];
    struct run_seen seen = {0};
    const char *forms[] = {"metrics.a=1", "params.p='x'", "tags.t IN ('a','b','c')",
                           "min(metrics.a) > 1", "not duration < 5s"};
    id_of(id, 1);
    start_run(id, e, "r", 1);
    for (int u = 0; u < 5; u++) {
        char *ok = joined(forms[u], " or ", 100), *bad = joined(forms[u], " and ", 101);
        struct store_run_query q = {.filter = ok};
        cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), 0, "%s: %s", forms[u],
                     err.msg);
        q.filter = bad;
        cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), STORE_E_INVALID, "%s: %s",
                     forms[u], err.msg);
        cr_assert(strstr(err.msg, "more than 100 terms (limit 100)"), "%s", err.msg);
        free(ok);
        free(bad);
    }
    /* the deepest filter allowed: 64 levels of parentheses holding 100 terms */
    char *inner = joined("metrics.a=1", " or ", 100), deep[4096];
    snprintf(deep, sizeof deep, "%.64s%s%.64s",
             "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((", inner,
             "))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))");
    struct store_run_query q = {.filter = deep};
    cr_assert_eq(store_run_list(st, &q, collect_run, &seen, &err), 0, "%s", err.msg);
    free(inner);
    const char *orders[] = {"name", "metrics.a desc", "params.p", "min(metrics.a)"};
    for (int u = 0; u < 4; u++) {
        char *ok = joined(orders[u], ", ", 16), *bad = joined(orders[u], ", ", 17);
        struct store_run_query o = {.filter = "metrics.a > 0 or name = 'r'", .order_by = ok};
        cr_assert_eq(store_run_list(st, &o, collect_run, &seen, &err), 0, "%s: %s", orders[u],
                     err.msg);
        o.order_by = bad;
        cr_assert_eq(store_run_list(st, &o, collect_run, &seen, &err), STORE_E_INVALID, "%s: %s",
                     orders[u], err.msg);
        cr_assert(strstr(err.msg, "order-by") && strstr(err.msg, "(limit 16)"), "%s", err.msg);
        free(ok);
        free(bad);
    }
}
