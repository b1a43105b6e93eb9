/*
 * test_watch_screen.c: `track watch` on a terminal, against a real trackd:
 * the built `track` runs under script(1) on a pseudo-terminal sized with
 * stty, and the frame it leaves on the normal screen when the run has ended
 * is checked: the rows are shared out among the metrics (charts 8 rows tall
 * for one metric at 80x24, a block with a one-row chart each for seven, and
 * tall charts for three at 200x50), each chart with its max and min and the
 * steps it covers. Skipped cleanly (as a failure naming why) only if
 * script(1) is missing, which Debian's util-linux always ships.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon D;
static struct track_client *C;

static void setup(void)
{
    unsetenv("TRACK_RUN_ID");
    fx_daemon_client_start(&D, &C, 0);
}

static void teardown(void)
{
    fx_daemon_client_cleanup(&D, &C);
}

TestSuite(watch_screen, .init = setup, .fini = teardown);

static const char *const KEYS[] = {"loss", "acc", "lr", "grad", "mem", "val", "tput"};

/* A finished run with nk metrics of 3000 points (steps 0..2999). */
static void finished_run(size_t nk, char hex[33])
{
    struct track_run_opts ro = {.experiment = "w", .name = "screen"};
    struct track_err err = {0};
    track_run_id id;
    cr_assert_eq(track_run_start(C, &ro, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
    for (int64_t s = 0; s < 3000; s++)
        for (size_t k = 0; k < nk; k++)
            cr_assert_eq(track_log_metric(C, KEYS[k], (double)(s % 100) + (double)k, s,
                                          1700000000000 + s, &err),
                         0, "%s", err.msg);
    cr_assert_eq(track_run_end(C, TRACK_FINISHED, &err), 0, "%s", err.msg);
}

/* Runs watch on a rows x cols terminal; returns the frame left on the
 * normal screen (after the alternate screen is left), caller frees. */
static char *watch_frame(const char *hex, int rows, int cols)
{
    char cmd[1200], *out = NULL, *err = NULL;
    cr_assert_eq(access("/usr/bin/script", X_OK), 0, "script(1) is needed for this suite");
    snprintf(cmd, sizeof(cmd),
             "stty rows %d cols %d; exec env -u COLUMNS TRACK_NO_AUTOSTART=1 %s --server %s "
             "watch %s",
             rows, cols, TRACK_BIN, D.uri, hex);
    const char *argv[] = {"/usr/bin/script", "-qec", cmd, "/dev/null", NULL};
    int rc = fx_run(argv, NULL, "", &out, &err);
    cr_assert_eq(rc, 0, "exit %d\nstdout: %s\nstderr: %s", rc, out, err);
    free(err);
    const char *left = strstr(out, "\x1b[?1049l");
    cr_assert_not_null(left, "%s", out);
    char *frame = strdup(left + strlen("\x1b[?1049l"));
    free(out);
    return frame;
}

Test(watch_screen, one_metric_at_80x24_gets_a_chart_8_rows_tall_with_its_scale)
{
    char hex[33];
    finished_run(1, hex);
    char *f = watch_frame(hex, 24, 80);
    cr_assert(strstr(f, "loss  99  step 2999  - pts/s  chart: steps 952-2999"), "%s", f);
    cr_assert_eq(fx_count_of(f, "┤"), 2, "the max and the min row:\n%s", f);
    cr_assert_eq(fx_count_of(f, "│"), 6, "8 rows in all:\n%s", f);
    cr_assert(strstr(f, "        99 ┤") && strstr(f, "         0 ┤"), "%s", f);
    free(f);
}

Test(watch_screen, seven_metrics_at_80x24_get_a_block_each)
{
    char hex[33];
    finished_run(7, hex);
    char *f = watch_frame(hex, 24, 80);
    cr_assert_eq(fx_count_of(f, "chart: steps 952-2999"), 7, "%s", f);
    cr_assert_eq(fx_count_of(f, "├ "), 7, "a one-row chart each, max at the right:\n%s", f);
    cr_assert_null(strstr(f, "more (choose with --metric)"), "%s", f);
    free(f);
}

Test(watch_screen, three_metrics_at_200x50_get_tall_charts)
{
    char hex[33];
    finished_run(3, hex);
    char *f = watch_frame(hex, 50, 200);
    cr_assert_eq(fx_count_of(f, "chart: steps 952-2999"), 3, "%s", f);
    cr_assert_eq(fx_count_of(f, "┤"), 6, "%s", f);
    cr_assert_eq(fx_count_of(f, "│"), 18, "8 rows each:\n%s", f);
    free(f);
}
