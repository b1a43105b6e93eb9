/*
 * test_search.c: the planned shape of run searches (storage/store_search.c)
 * does not regress. A store of 4,000 runs in the scale issue's shape (params
 * p0 one of 4 words, p1 one of 8, p3 an integer 0..99; metrics m0..m3 with
 * uniform last values) is searched with the planner's cases, and each
 * search's plan and SQLite's EXPLAIN QUERY PLAN of it are held to:
 *
 *   - the plan kind the cost model must choose (order, term N, scan, none);
 *   - the index each reads from (metric_summary_key, params_search,
 *     runs_experiment), never a SCAN of a table, and no temporary b-tree for
 *     the whole order where the index gives the order;
 *   - and the runs it returns, the same as with the plan forced off (the
 *     filter wrapped in a no-op OR, which no plan but SCAN takes).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

#define RUNS 4000
#define MORE 600 /* runs added after the merge, waiting for the params index */

static char dir[256], dbpath[512];
static struct store *st;
static struct store_err err;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double unit(uint64_t r, uint64_t salt)
{
    return (double)(mix(r * 1000003u + salt) >> 11) * (1.0 / 9007199254740992.0);
}

/* Adds the params of every run waiting for their index (store_search_index.c). */
static void index_params(void)
{
    int64_t runs = 0, rows = 0, waiting = -1;
    cr_assert_eq(store_begin(st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_index_merge(st, 0, &runs, &rows, &err), 0, "%s", err.msg);
    cr_assert_eq(store_commit(st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_index_backlog(st, &waiting, &err), 0, "%s", err.msg);
    cr_assert_eq(waiting, 0, "%lld runs still wait after a merge", (long long)waiting);
}

static void add_runs(uint64_t from, uint64_t to)
{
    static const char *const opt[] = {"adam", "sgd", "rmsprop", "adagrad"};
    static const char *const word[] = {"alpha", "beta", "gamma", "delta",
                                       "eps",   "zeta", "eta",   "theta"};
    int64_t exp = 0, other = 0;
    cr_assert_eq(store_experiment_ensure(st, "big", 1000, &exp, &err), 0, "%s", err.msg);
    cr_assert_eq(store_experiment_ensure(st, "other", 1000, &other, &err), 0, "%s", err.msg);
    cr_assert_eq(store_begin(st, &err), 0, "%s", err.msg);
    for (uint64_t r = from; r < to; r++) {
        struct store_run_start rs = {.experiment_id = r % 10 == 9 ? other : exp,
                                     .name = "trial",
                                     .start_ms = 1000000 + (int64_t)(r / 2)};
        char v[32], key[8];
        for (int i = 0; i < 16; i++)
            rs.id[i] = (uint8_t)(mix(r * 16 + (uint64_t)i) & 0xff);
        cr_assert_eq(store_run_start(st, &rs, &err), 0, "%s", err.msg);
        cr_assert_eq(store_param_put(st, rs.id, "p0", opt[mix(r) % 4], &err), 0, "%s", err.msg);
        cr_assert_eq(store_param_put(st, rs.id, "p1", word[mix(r + 7) % 8], &err), 0, "%s",
                     err.msg);
        snprintf(v, sizeof v, "%d", (int)(mix(r + 3) % 100));
        cr_assert_eq(store_param_put(st, rs.id, "p3", v, &err), 0, "%s", err.msg);
        for (int m = 0; m < 4; m++) {
            int64_t step = 2, t = 5;
            double x = unit(r, 1000 + (uint64_t)m);
            snprintf(key, sizeof key, "m%d", m);
            cr_assert_eq(store_metric_append(st, rs.id, key, &step, &t, &x, 1, &err), 0, "%s",
                         err.msg);
        }
    }
    cr_assert_eq(store_commit(st, &err), 0, "%s", err.msg);
}

static void populate(void)
{
    add_runs(0, RUNS);
    index_params();
}

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
    snprintf(dir, sizeof dir, "/tmp/track-search-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/track.db", dir);
    cr_assert_eq(store_open(dbpath, &(struct store_opts){0}, &st, &err), 0, "%s", err.msg);
    populate();
}

static void teardown(void)
{
    store_close(st);
    st = NULL;
    rm_tree(dir);
}

TestSuite(search, .init = setup, .fini = teardown);

struct ids {
    int n;
    uint8_t id[RUNS + MORE][16];
};

static int collect(void *ctx, const struct store_run *r)
{
    struct ids *l = ctx;
    if (l->n < RUNS + MORE)
        memcpy(l->id[l->n++], r->id, 16);
    return 0;
}

static const char *const big[] = {"big", NULL};

/* The plan of (filter, order, limit) over "big" into out. */
static void plan_of(const char *filter, const char *order, int limit, char *out, size_t cap)
{
    struct store_run_query q = {
        .experiments = big, .filter = filter, .order_by = order, .limit = limit};
    cr_assert_eq(store_run_list_plan(st, &q, out, cap, &err), 0, "%s", err.msg);
}

/* The runs of (filter, order, limit) and, with every run read (the plan
 * forced to SCAN), the same runs in the same order. Returns the count. */
static int same_as_scan(const char *filter, const char *order, int limit)
{
    static struct ids a, b;
    char plan[4096];
    struct store_run_query q = {
        .experiments = big, .filter = filter, .order_by = order, .limit = limit};
    a.n = b.n = 0;
    cr_assert_eq(store_run_list(st, &q, collect, &a, &err), 0, "%s", err.msg);
    q.force_scan = 1;
    cr_assert_eq(store_run_list_plan(st, &q, plan, sizeof plan, &err), 0, "%s", err.msg);
    cr_assert(strncmp(plan, "scan\n", 5) == 0, "force_scan: %s", plan);
    cr_assert_eq(store_run_list(st, &q, collect, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(a.n, b.n, "[%s] by [%s] limit %d: %d runs planned, %d scanned", filter,
                 order ? order : "", limit, a.n, b.n);
    for (int i = 0; i < a.n; i++)
        cr_assert(memcmp(a.id[i], b.id[i], 16) == 0, "[%s] by [%s]: run %d differs", filter,
                  order ? order : "", i);
    return a.n;
}

static void expect_plan(const char *filter, const char *order, int limit, const char *kind,
                        const char *const *must, const char *const *never)
{
    char plan[4096];
    plan_of(filter, order, limit, plan, sizeof plan);
    cr_assert(strncmp(plan, kind, strlen(kind)) == 0 && plan[strlen(kind)] == '\n',
              "[%s] by [%s] limit %d: wanted plan %s, got:\n%s", filter, order ? order : "", limit,
              kind, plan);
    for (int i = 0; must && must[i]; i++)
        cr_assert(strstr(plan, must[i]) != NULL, "[%s]: no \"%s\" in:\n%s", filter, must[i], plan);
    for (int i = 0; never && never[i]; i++)
        cr_assert(strstr(plan, never[i]) == NULL, "[%s]: \"%s\" in:\n%s", filter, never[i], plan);
}

static const char *const no_scan[] = {"\nSCAN ", NULL};
static const char *const no_scan_no_sort[] = {"\nSCAN ", "USE TEMP B-TREE FOR ORDER BY", NULL};

Test(search, three_terms_by_a_metric_read_the_order_index_and_stop_early)
{
    const char *f = "params.p0 = 'adam' and metrics.m1 < 0.5 and params.p3 > 50";
    const char *const must[] = {"SEARCH d USING COVERING INDEX metric_summary_key (key_id=? AND "
                                "last>?)",
                                "RIGHT PART OF ORDER BY", NULL};
    expect_plan(f, "metrics.m2", 10, "order", must, no_scan_no_sort);
    expect_plan(f, "metrics.m2 DESC", 10, "order", must, no_scan_no_sort);
    cr_assert_eq(same_as_scan(f, "metrics.m2", 10), 10);
    cr_assert_eq(same_as_scan(f, "metrics.m2 DESC", 10), 10);
    /* at 100 of 4,000 runs the rarest term is as cheap: either plan, the same runs */
    cr_assert_eq(same_as_scan(f, "metrics.m2", 100), 100);
    cr_assert_eq(same_as_scan(f, "metrics.m2 DESC, params.p1", 10), 10);
}

Test(search, a_selective_metric_term_drives_from_its_range)
{
    const char *f = "metrics.m1 < 0.01 and params.p0 = 'adam'";
    const char *const must[] = {"SEARCH d USING COVERING INDEX metric_summary_key (key_id=? AND "
                                "last<?)",
                                NULL};
    expect_plan(f, "metrics.m1", 10, "term 0", must, no_scan);
    int n = same_as_scan(f, "metrics.m1", 10);
    cr_assert(n > 0 && n <= 10, "%d runs", n);
    same_as_scan(f, NULL, 0);
}

Test(search, selective_param_terms_use_the_params_index)
{
    const char *const num[] = {"SEARCH d USING COVERING INDEX params_search (key=? AND num>?)",
                               NULL};
    expect_plan("params.p3 > 98 and metrics.m0 < 0.9", "metrics.m3", 0, "term 0", num, no_scan);
    same_as_scan("params.p3 > 98 and metrics.m0 < 0.9", "metrics.m3", 0);
    const char *const text[] = {"params_search (key=? AND num=? AND value=? AND ix=?)", NULL};
    expect_plan("params.p1 = 'gamma' and params.p3 = 7", "metrics.m3", 0, "term 1", text, no_scan);
    cr_assert(same_as_scan("params.p1 = 'gamma' and params.p3 = 7", "metrics.m3", 0) > 0);
    cr_assert(same_as_scan("params.p1 = 'gamma' and params.p3 = '7'", NULL, 0) > 0);
}

Test(search, the_default_order_comes_from_the_experiment_index)
{
    const char *const must[] = {"SEARCH r USING INDEX runs_experiment", NULL};
    expect_plan("params.p0 = 'adam' and params.p3 > 10", NULL, 100, "scan", must, no_scan);
    expect_plan(NULL, NULL, 100, "scan", must, no_scan);
    cr_assert_eq(same_as_scan("params.p0 = 'adam' and params.p3 > 10", NULL, 100), 100);
    /* two selective ones: the rarer drives, then the matches are sorted */
    expect_plan("params.p0 = 'adam' and params.p1 = 'gamma'", NULL, 100, "term 1", NULL, no_scan);
    same_as_scan("params.p0 = 'adam' and params.p1 = 'gamma'", NULL, 100);
}

Test(search, no_index_drives_an_or_a_not_or_a_tag)
{
    expect_plan("params.p3 > 98 or metrics.m1 < 0.01", "metrics.m2", 0, "scan", NULL, NULL);
    expect_plan("not params.p3 > 2", NULL, 0, "scan", NULL, NULL);
    expect_plan("tags.t = 'x'", NULL, 0, "scan", NULL, NULL);
    expect_plan("params.p3 != 5", NULL, 0, "scan", NULL, NULL);
    cr_assert_eq(same_as_scan("not params.p3 > -1", NULL, 0), 0);
}

Test(search, a_metric_no_run_has_matches_nothing_without_reading_runs)
{
    expect_plan("metrics.nope < 1 and params.p0 = 'adam'", NULL, 0, "none", NULL, NULL);
    cr_assert_eq(same_as_scan("metrics.nope < 1 and params.p0 = 'adam'", NULL, 0), 0);
}

Test(search, runs_without_the_order_metric_follow_the_ones_with_it)
{
    /* m1 >= 0.999 for a few runs: the order's index yields them, then the
     * runs lacking `late` (all) follow from the second query */
    const char *f = "params.p0 = 'sgd'";
    expect_plan(f, "metrics.m1 DESC", 50, "order", NULL, no_scan);
    cr_assert_eq(same_as_scan(f, "metrics.m1 DESC", 50), 50);
    /* an order metric few runs have: the ones without it come after */
    uint8_t id[16];
    struct ids *l = calloc(1, sizeof *l);
    struct store_run_query q = {.experiments = big, .filter = f, .limit = 3};
    cr_assert_eq(store_run_list(st, &q, collect, l, &err), 0, "%s", err.msg);
    memcpy(id, l->id[2], 16);
    int64_t step = 1, t = 1;
    double v = 0.5;
    cr_assert_eq(store_metric_append(st, id, "late", &step, &t, &v, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(same_as_scan(f, "metrics.late", 20), 20);
    l->n = 0;
    q.order_by = "metrics.late";
    q.limit = 20;
    cr_assert_eq(store_run_list(st, &q, collect, l, &err), 0, "%s", err.msg);
    cr_assert(memcmp(l->id[0], id, 16) == 0, "the one run with `late` comes first");
    free(l);
}

Test(search, runs_waiting_for_the_params_index_are_found_by_their_own_rows)
{
    /* the two parts' runs are read from a co-routine (SCAN pr), no table is scanned */
    const char *const both[] = {"SEARCH d USING COVERING INDEX params_search (key=? AND num>?)",
                                "SEARCH n USING INTEGER PRIMARY KEY (rowid>?)",
                                "SEARCH d USING PRIMARY KEY (run=? AND key=?)", "\nSCAN pr\n",
                                NULL};
    const char *const no_table_scan[] = {"\nSCAN d", "\nSCAN r", "\nSCAN n", "\nSCAN e", NULL};
    const char *const text[] = {"params_search (key=? AND num=? AND value=? AND ix=?)", NULL};
    int64_t waiting = 0;
    int before = same_as_scan("params.p3 > 98 and metrics.m0 < 0.9", "metrics.m3", 0);

    add_runs(RUNS, RUNS + MORE);
    cr_assert_eq(store_index_backlog(st, &waiting, &err), 0, "%s", err.msg);
    cr_assert_eq(waiting, MORE);
    /* the index's runs, then each waiting run by its primary key: never a scan */
    expect_plan("params.p3 > 98 and metrics.m0 < 0.9", "metrics.m3", 0, "term 0", both,
                no_table_scan);
    int waiting_n = same_as_scan("params.p3 > 98 and metrics.m0 < 0.9", "metrics.m3", 0);
    cr_assert(waiting_n > before, "the new runs' matches are found: %d, before %d", waiting_n,
              before);
    cr_assert(same_as_scan("params.p1 = 'gamma' and params.p3 = 7", "metrics.m3", 0) > 0);
    cr_assert(same_as_scan("params.p1 = 'gamma' and params.p3 = '7'", NULL, 0) > 0);
    same_as_scan("params.p0 = 'adam' and params.p1 = 'gamma'", NULL, 100);
    /* a metric term drives the same way: its index, then each waiting run's summary */
    const char *const metric[] = {
        "SEARCH d USING COVERING INDEX metric_summary_key (key_id=? AND last<?)",
        "SEARCH n USING INTEGER PRIMARY KEY (rowid>?)",
        "SEARCH d USING PRIMARY KEY (run=? AND key_id=?)", NULL};
    expect_plan("metrics.m1 < 0.01 and params.p0 = 'adam'", NULL, 0, "term 0", metric,
                no_table_scan);
    cr_assert(same_as_scan("metrics.m1 < 0.01 and params.p0 = 'adam'", "metrics.m1", 10) > 0);
    same_as_scan("metrics.m1 < 0.01", NULL, 0);
    /* the order's index gives its first runs, the waiting runs theirs, sorted together */
    const char *f3 = "params.p0 = 'adam' and metrics.m1 < 0.5 and params.p3 > 50";
    const char *const order[] = {
        "SEARCH d USING COVERING INDEX metric_summary_key (key_id=? AND last>?)",
        "SEARCH n USING INTEGER PRIMARY KEY (rowid>?)", NULL};
    expect_plan(f3, "metrics.m2", 10, "order", order, no_table_scan);
    cr_assert_eq(same_as_scan(f3, "metrics.m2", 10), 10);
    cr_assert_eq(same_as_scan(f3, "metrics.m2 DESC", 10), 10);
    cr_assert_eq(same_as_scan(f3, "metrics.m2 DESC, params.p1", 30), 30);
    cr_assert_eq(same_as_scan("params.p0 = 'sgd'", "metrics.m1 DESC", 50), 50);
    /* a waiting run holds the very first place */
    {
        static struct ids first;
        struct store_run_query oq = {.experiments = big, .order_by = "metrics.m0", .limit = 5};
        uint8_t id[16];
        int64_t step = 9, t = 9;
        double v = -1.0;
        for (int i = 0; i < 16; i++)
            id[i] = (uint8_t)(mix((RUNS + MORE - 1) * 16 + (uint64_t)i) & 0xff);
        if ((RUNS + MORE - 1) % 10 == 9) /* that one is in "other": take the one before */
            for (int i = 0; i < 16; i++)
                id[i] = (uint8_t)(mix((RUNS + MORE - 2) * 16 + (uint64_t)i) & 0xff);
        cr_assert_eq(store_metric_append(st, id, "m0", &step, &t, &v, 1, &err), 0, "%s", err.msg);
        first.n = 0;
        cr_assert_eq(store_run_list(st, &oq, collect, &first, &err), 0, "%s", err.msg);
        cr_assert(first.n == 5 && memcmp(first.id[0], id, 16) == 0,
                  "the waiting run with m0 = -1 comes first");
        cr_assert_eq(same_as_scan(NULL, "metrics.m0", 5), 5);
    }

    /* a param logged later on a run the index already took goes in at once */
    static struct ids l;
    struct store_run_query q = {.experiments = big, .filter = "params.p3 = 7", .limit = 1};
    l.n = 0;
    cr_assert_eq(store_run_list(st, &q, collect, &l, &err), 0, "%s", err.msg);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(store_param_put(st, l.id[0], "late", "x", &err), 0, "%s", err.msg);
    cr_assert_eq(same_as_scan("params.late = 'x' and params.p3 = 7", NULL, 0), 1);
    expect_plan("params.late = 'x' and params.p3 = 7", NULL, 0, "term 0", NULL, no_table_scan);

    /* merged: the same runs, from the index alone */
    index_params();
    cr_assert_eq(same_as_scan("params.p3 > 98 and metrics.m0 < 0.9", "metrics.m3", 0), waiting_n);
    char plan[4096];
    plan_of("params.p3 > 98 and metrics.m0 < 0.9", "metrics.m3", 0, plan, sizeof plan);
    cr_assert(strstr(plan, "SEARCH n USING") == NULL, "no waiting runs, no second part:\n%s", plan);
    expect_plan("params.p1 = 'gamma' and params.p3 = 7", "metrics.m3", 0, "term 1", text, no_scan);
    cr_assert_eq(same_as_scan("params.late = 'x' and params.p3 = 7", NULL, 0), 1);
    cr_assert_eq(store_check(st, &err), 0, "%s", err.msg);
}

Test(search, a_schema_11_store_keeps_its_params_searchable_after_the_migration)
{
    int before = same_as_scan("params.p3 > 98 and metrics.m0 < 0.9", "metrics.m3", 0);
    int64_t waiting = -1;
    sqlite3 *db;

    /* what schema 11 had: every row in the index, no ix column, no mark */
    store_close(st);
    st = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db,
                              "DROP TABLE marks; DROP INDEX params_search;"
                              " ALTER TABLE params DROP COLUMN ix;"
                              " CREATE INDEX params_search ON params(key, num, value);"
                              " DROP INDEX metric_summary_key;"
                              " ALTER TABLE metric_summary DROP COLUMN ix;"
                              " CREATE INDEX metric_summary_key ON metric_summary(key_id, last);"
                              " PRAGMA user_version = 11;",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    cr_assert_eq(store_open(dbpath, &(struct store_opts){0}, &st, &err), 0, "%s", err.msg);
    /* every run the store had is in the index: nothing waits */
    cr_assert_eq(store_index_backlog(st, &waiting, &err), 0, "%s", err.msg);
    cr_assert_eq(waiting, 0);
    const char *const num[] = {"SEARCH d USING COVERING INDEX params_search (key=? AND num>?)",
                               NULL};
    expect_plan("params.p3 > 98 and metrics.m0 < 0.9", "metrics.m3", 0, "term 0", num, no_scan);
    cr_assert_eq(same_as_scan("params.p3 > 98 and metrics.m0 < 0.9", "metrics.m3", 0), before);
    cr_assert_eq(store_check(st, &err), 0, "%s", err.msg);
    /* and a row put on the wrong side of the mark is what the check names */
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "UPDATE params SET ix = 0 WHERE run = 7", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    cr_assert_neq(store_check(st, &err), 0);
    cr_assert(strstr(err.msg, "search index") && strstr(err.msg, "of params") &&
                  strstr(err.msg, "run 7"),
              "%s", err.msg);
    /* and without its mark a search says so, instead of listing runs twice */
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "DELETE FROM marks", NULL, NULL, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(db));
    sqlite3_close(db);
    static struct ids l;
    struct store_run_query q = {.experiments = big, .filter = "params.p3 > 90"};
    cr_assert_eq(store_run_list(st, &q, collect, &l, &err), STORE_E_CORRUPT);
    cr_assert(strstr(err.msg, "mark") && strstr(err.msg, "missing"), "%s", err.msg);
    cr_assert_eq(store_check(st, &err), STORE_E_CORRUPT);
}
