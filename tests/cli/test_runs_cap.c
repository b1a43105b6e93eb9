/*
 * test_runs_cap.c: `track runs` as a table shows the first 100 runs and says
 * when more match; --limit, --csv and --json give more. (A table of every
 * run with their details made `track runs` over 10^4 runs take 240 ms.)
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon D;

static void setup(void)
{
    struct track_opts o = {0};
    struct track_client *c = NULL;
    struct track_err err = {0};
    cr_assert_eq(fx_daemon_start(&D, NULL), 0, "trackd did not start");
    o.server = D.uri;
    o.spool_path = D.spool;
    o.no_spool = 1;
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "%s", err.msg);
    for (int i = 0; i < 105; i++) {
        struct track_run_opts ro = {.experiment = "cap"};
        track_run_id id;
        cr_assert_eq(track_run_start(c, &ro, &id, &err), 0, "run %d: %s", i, err.msg);
        cr_assert_eq(track_run_end(c, TRACK_FINISHED, &err), 0, "%s", err.msg);
    }
    track_client_close(c);
}

static void teardown(void)
{
    fx_daemon_cleanup(&D, 0);
}

TestSuite(runs_cap, .init = setup, .fini = teardown, .timeout = 60);

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

Test(runs_cap, the_table_shows_100_runs_and_says_more_match)
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "runs", (char *)NULL), 0, "%s", err);
    cr_assert_eq(lines(out), 101, "a header and 100 rows, got %zu lines", lines(out));
    cr_assert(strstr(err, "the first 100 runs are shown; more match"), "%s", err);
    free(out);
    free(err);

    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "runs", "--limit", "103", (char *)NULL), 0);
    cr_assert_eq(lines(out), 104, "--limit 103: %zu lines", lines(out));
    cr_assert_eq(strlen(err), 0, "no note with --limit: %s", err);
    free(out);
    free(err);

    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "runs", "--json", (char *)NULL), 0);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    cr_assert_eq(json_array_size(j), 105, "--json gives every run");
    json_decref(j);
    free(out);
    free(err);

    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "runs", "--csv", (char *)NULL), 0);
    cr_assert_eq(lines(out), 106, "--csv: a header and every run");
    free(out);
    free(err);
}
