/*
 * test_search_index.c: the search indexes kept in batches
 * (storage/store_search_index.c, daemon/search_index.c), on a real trackd
 * through the built CLI: runs are found by their params and ordered by a
 * metric while they wait for the indexes, after the idle writer merged
 * them, after a param logged later on a merged run, and across a kill -9
 * with runs waiting; then `trackd --check` holds every row on its side of
 * the mark. And 4,200 runs from one libtrack client: the busy writer merges
 * once 4,096 wait, and the answers are a full scan's.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon d;
static int passed;

static void setup(void)
{
    passed = 0;
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
}

static void teardown(void)
{
    fx_daemon_cleanup(&d, !passed);
}

TestSuite(pindex, .init = setup, .fini = teardown, .timeout = 120);

static void start_runs(int from, int to, char ids[][33])
{
    static const char *const opt[] = {"adam", "sgd", "rmsprop", "adagrad"};
    for (int i = from; i < to; i++) {
        char n[32], o[32], *out = NULL, *errs = NULL;
        snprintf(n, sizeof n, "n=%d", i);
        snprintf(o, sizeof o, "opt=%s", opt[i % 4]);
        int rc = fx_track(&d, NULL, NULL, &out, &errs, "run", "start", "--experiment", "pix",
                          "--param", n, "--param", o, NULL);
        cr_assert_eq(rc, 0, "run start %d: %s", i, errs);
        cr_assert_eq(strlen(out), 33, "run start printed [%s]", out);
        memcpy(ids[i], out, 32);
        ids[i][32] = '\0';
        free(out);
        free(errs);
        /* loss falls with i: ordered by it, the newest runs come first */
        char loss[32];
        snprintf(loss, sizeof loss, "%g", 100.0 - i);
        rc = fx_track(&d, NULL, NULL, &out, &errs, "log-metric", "--run", ids[i], "loss", loss,
                      NULL);
        cr_assert_eq(rc, 0, "log-metric %d: %s", i, errs);
        free(out);
        free(errs);
    }
}

/* The runs `track runs --filter F --json` lists; *first: the first's id. */
static int list(const char *filter, const char *order, char first[33])
{
    char *out = NULL, *errs = NULL;
    json_error_t je;
    int rc = fx_track(&d, NULL, NULL, &out, &errs, "runs", "--experiment", "pix", "--filter",
                      filter, "--order-by", order, "--limit", "3", "--json", NULL);
    cr_assert_eq(rc, 0, "runs --filter \"%s\": %s", filter, errs);
    json_t *j = json_loads(out, 0, &je);
    cr_assert(json_is_array(j), "runs --json: %s", out);
    int n = (int)json_array_size(j);
    if (first && n)
        snprintf(first, 33, "%s",
                 json_string_value(json_object_get(json_array_get(j, 0), "run_id")));
    json_decref(j);
    free(out);
    free(errs);
    return n;
}

static int matches(const char *filter)
{
    char *out = NULL, *errs = NULL;
    json_error_t je;
    int rc = fx_track(&d, NULL, NULL, &out, &errs, "runs", "--experiment", "pix", "--filter",
                      filter, "--json", NULL);
    cr_assert_eq(rc, 0, "runs --filter \"%s\": %s", filter, errs);
    json_t *j = json_loads(out, 0, &je);
    cr_assert(json_is_array(j), "runs --json: %s", out);
    int n = (int)json_array_size(j);
    json_decref(j);
    free(out);
    free(errs);
    return n;
}

/* The lowest loss (the newest run) comes first, ordered by the metric. */
static void lowest_first(const char *want)
{
    char first[33] = "";
    cr_assert_eq(list("params.opt != 'none'", "metrics.loss", first), 3);
    cr_assert_str_eq(first, want, "ordered by metrics.loss");
    cr_assert_eq(list("metrics.loss < 70", "metrics.loss", first), 3);
    cr_assert_str_eq(first, want, "filtered and ordered by metrics.loss");
}

Test(pindex, runs_are_found_by_their_params_waiting_merged_and_across_a_kill_9)
{
    static char ids[64][33];
    const char *f = "params.n > 29 and params.opt = 'adam'"; /* 32, 36 (and 40, 44 later) */
    long from = fx_log_size(&d);
    char *out = NULL, *errs = NULL;

    start_runs(0, 40, ids);
    cr_assert_eq(matches(f), 2, "waiting or merged, the same two runs");
    cr_assert_eq(matches("params.opt = 'sgd'"), 10);
    cr_assert_eq(matches("metrics.loss < 65"), 4);
    lowest_first(ids[39]);
    /* the writer, idle for 2 s, merges them: 80 params, 40 summaries */
    cr_assert(fx_wait_log(&d, from, "runs indexed runs=40 rows=120", 15000),
              "no merge of the 40 runs in the log");
    cr_assert_eq(matches(f), 2);
    cr_assert_eq(matches("params.opt = 'sgd'"), 10);
    cr_assert_eq(matches("metrics.loss < 65"), 4);
    lowest_first(ids[39]);
    /* a param logged later on a merged run is found at once */
    cr_assert_eq(
        fx_track(&d, NULL, NULL, &out, &errs, "log-param", "--run", ids[3], "late=yes", NULL), 0,
        "%s", errs);
    free(out);
    free(errs);
    cr_assert_eq(matches("params.late = 'yes'"), 1);

    /* runs waiting for the index when trackd is killed are still found */
    start_runs(40, 48, ids);
    fx_daemon_kill(&d);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "trackd did not start again");
    cr_assert_eq(matches(f), 4);
    cr_assert_eq(matches("params.n >= 40"), 8);
    lowest_first(ids[47]);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    const char *argv[] = {TRACKD_BIN, "--data-dir", d.dir, "--check", NULL};
    int rc = fx_run(argv, NULL, NULL, &out, &errs);
    cr_assert_eq(rc, 0, "trackd --check: %s%s", out, errs);
    free(out);
    free(errs);
    passed = 1;
}

/* The first 3 runs of a filter in an order, through the CLI, and the same
 * with the filter wrapped in a no-op OR (no index drives an OR: every run
 * is read), and how many match in all, both ways. */
static void same_as_scan(const char *filter, const char *order, int want)
{
    char planned[33] = "", scanned[33] = "", wrapped[300];
    snprintf(wrapped, sizeof wrapped, "(%s) or params.none = 'x'", filter);
    int a = list(filter, order, planned), b = list(wrapped, order, scanned);
    cr_assert_eq(a, b, "[%s]: %d planned, %d scanned", filter, a, b);
    cr_assert_eq(a, 3, "[%s]", filter);
    cr_assert_str_eq(planned, scanned, "[%s] by %s: the first run differs", filter, order);
    cr_assert_eq(matches(filter), want, "[%s]", filter);
    cr_assert_eq(matches(wrapped), want, "[%s], scanned", filter);
}

Test(pindex, a_busy_writer_merges_once_4096_runs_wait)
{
    struct track_client *c = fx_client_open(&d, 30000);
    struct track_err err = {0};
    long from = fx_log_size(&d);
    char p[16], name[32];
    const int n = 4200;

    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%d", i % 7);
        snprintf(name, sizeof name, "r%d", i);
        struct track_kv kv[] = {{"p", p}, {"opt", i % 2 ? "sgd" : "adam"}};
        struct track_run_opts ro = {.experiment = "pix", .name = name, .params = kv, .n_params = 2};
        track_run_id id;
        cr_assert_eq(track_run_start(c, &ro, &id, &err), 0, "run %d: %s", i, err.msg);
        cr_assert_eq(track_log_metric(c, "loss", (double)((i * 7919) % n) / n, 0, 0, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(track_run_end(c, TRACK_FINISHED, &err), 0, "%s", err.msg);
    }
    track_client_close(c);
    /* merged while runs kept coming: at least 4,096 at once */
    cr_assert(fx_wait_log(&d, from, "runs indexed runs=4", 15000), "no merge of 4,096 runs");
    same_as_scan("params.p = '3' and params.opt = 'sgd'", "start_time", 300);
    same_as_scan("metrics.loss < 0.01 and params.opt = 'adam'", "metrics.loss", 21);
    same_as_scan("params.p > 5", "metrics.loss DESC", 600);
    passed = 1;
}
