/*
 * test_params_index.c: the params index kept in batches
 * (storage/store_param_index.c, daemon/params_index.c), on a real trackd
 * through the built CLI: runs are found by their params while they wait
 * for the index, after the idle writer merged them, after a param logged
 * later on a merged run, and across a kill -9 with runs waiting; then
 * `trackd --check` holds every row on its side of the mark.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

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
    }
}

/* The runs `track runs --filter F --json` lists. */
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

Test(pindex, runs_are_found_by_their_params_waiting_merged_and_across_a_kill_9)
{
    static char ids[64][33];
    const char *f = "params.n > 29 and params.opt = 'adam'"; /* 32, 36 (and 40, 44 later) */
    long from = fx_log_size(&d);
    char *out = NULL, *errs = NULL;

    start_runs(0, 40, ids);
    cr_assert_eq(matches(f), 2, "waiting or merged, the same two runs");
    cr_assert_eq(matches("params.opt = 'sgd'"), 10);
    /* the writer, idle for 2 s, merges them */
    cr_assert(fx_wait_log(&d, from, "params indexed runs=40 rows=80", 15000),
              "no merge of the 40 runs in the log");
    cr_assert_eq(matches(f), 2);
    cr_assert_eq(matches("params.opt = 'sgd'"), 10);
    /* a param logged later on a merged run is found at once */
    cr_assert_eq(fx_track(&d, NULL, NULL, &out, &errs, "log-param", "--run", ids[3], "late=yes",
                          NULL),
                 0, "%s", errs);
    free(out);
    free(errs);
    cr_assert_eq(matches("params.late = 'yes'"), 1);

    /* runs waiting for the index when trackd is killed are still found */
    start_runs(40, 48, ids);
    fx_daemon_kill(&d);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "trackd did not start again");
    cr_assert_eq(matches(f), 4);
    cr_assert_eq(matches("params.n >= 40"), 8);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    const char *argv[] = {TRACKD_BIN, "--data-dir", d.dir, "--check", NULL};
    int rc = fx_run(argv, NULL, NULL, &out, &errs);
    cr_assert_eq(rc, 0, "trackd --check: %s%s", out, errs);
    free(out);
    free(errs);
    passed = 1;
}
