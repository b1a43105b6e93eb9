/*
 * test_compare_plot.c: `track compare --plot` and its flags against a real
 * trackd, as the built `track` binary: --smooth, --log-y and --x step|time|
 * relative produce a valid SVG (checked with xmllint when it is installed,
 * and by counting its elements), with one legend per figure however many
 * panels; bad flag values are refused with exit 2 and a message naming the
 * flag; and the trend sparklines keep a spike that downsampling would lose.
 *
 * Fixtures are written with libtrack from the test: five noisy runs (a
 * deterministic LCG, no libc rand) with points timed from the runs' start.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon D;
static struct track_client *C;
static char IDS[5][33];

static void setup(void)
{
    unsetenv("TRACK_RUN_ID");
    fx_daemon_client_start(&D, &C, 0);
}

static void teardown(void)
{
    fx_daemon_client_cleanup(&D, &C);
}

TestSuite(plot, .init = setup, .fini = teardown);

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Five runs of 3000 noisy, decaying, positive "loss" points (the first run
 * also has a one-point "lr"), 50 ms apart from a little after their start. */
static void noisy_runs(void)
{
    uint64_t lcg = 12345;
    for (int r = 0; r < 5; r++) {
        struct track_run_opts ro = {.experiment = "plot"};
        struct track_err err = {0};
        track_run_id id;
        char name[32];
        snprintf(name, sizeof(name), "noisy-%d", r);
        ro.name = name;
        cr_assert_eq(track_run_start(C, &ro, &id, &err), 0, "%s", err.msg);
        track_run_id_hex(&id, IDS[r]);
        int64_t t0 = now_ms() + 1000;
        for (int s = 0; s < 3000; s++) {
            lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
            double noise = (double)(lcg >> 11) / 9007199254740992.0 - 0.5;
            double v = 2.0 / (1.0 + s * (r + 1) / 300.0) + 0.05 + 0.04 * noise;
            cr_assert_eq(track_log_metric(C, "loss", v, s, t0 + 50 * s, &err), 0, "%s", err.msg);
        }
        if (r == 0)
            cr_assert_eq(track_log_metric(C, "lr", 0.001, 10, t0, &err), 0, "%s", err.msg);
        cr_assert_eq(track_run_end(C, TRACK_FINISHED, &err), 0, "%s", err.msg);
    }
}

/* Runs `track compare` of the five runs with extra args; returns the SVG. */
static char *plot(const char *name, const char *a1, const char *a2, const char *a3, const char *a4,
                  const char *a5)
{
    char path[400], *out = NULL, *err = NULL;
    snprintf(path, sizeof(path), "%s/%s", D.dir, name);
    int rc = fx_track(&D, NULL, NULL, &out, &err, "compare", IDS[0], IDS[1], IDS[2], IDS[3], IDS[4],
                      "--format", "csv", "--plot", path, a1, a2, a3, a4, a5, NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    free(out);
    free(err);
    if (access("/usr/bin/xmllint", X_OK) == 0) {
        const char *argv[] = {"/usr/bin/xmllint", "--noout", path, NULL};
        rc = fx_run(argv, NULL, NULL, &out, &err);
        cr_assert_eq(rc, 0, "xmllint: %s", err);
        free(out);
        free(err);
    }
    char *svg = fx_slurp(path);
    cr_assert_eq(fx_count_of(svg, "<svg "), 1);
    cr_assert_eq(fx_count_of(svg, "</svg>"), 1);
    cr_assert_eq(fx_count_of(svg, "<g"), fx_count_of(svg, "</g>"), "groups balanced");
    return svg;
}

Test(plot, smooth_log_y_and_relative_x_give_a_valid_svg_with_one_legend)
{
    noisy_runs();
    char *svg = plot("a.svg", "--smooth", "0.8", "--log-y", "--x", "relative");
    cr_assert_eq(fx_count_of(svg, "class=\"legend\""), 1, "one legend for two panels");
    cr_assert_eq(fx_count_of(svg, "class=\"panel\""), 2, "loss and lr");
    for (int r = 0; r < 5; r++) {
        char want[64];
        snprintf(want, sizeof(want), ">noisy-%d (%.8s)<title>", r, IDS[r]);
        cr_assert_eq(fx_count_of(svg, want), 1, "legend entry %d once", r);
    }
    /* per panel and run a faint raw line and a smoothed one */
    cr_assert_eq(fx_count_of(svg, "stroke-opacity=\"0.25\""), 10, "%s", svg);
    cr_assert_eq(fx_count_of(svg, "<path fill=\"none\""), 20);
    cr_assert(strstr(svg, "smoothing 0.8, log scale"));
    cr_assert(strstr(svg, ">seconds since the run&apos;s start</text>"));
    /* relative x: the points start a second after the runs did, and span
     * 150 s: ticks at round seconds from about 0 to 150 */
    cr_assert(strstr(svg, ">0</text>") || strstr(svg, ">20</text>"), "%s", svg);
    cr_assert(strstr(svg, ">140</text>") || strstr(svg, ">150</text>"), "%s", svg);
    /* lr's one point is a marker */
    cr_assert_geq(fx_count_of(svg, "class=\"marker\""), 1);
    cr_assert_null(strstr(svg, "nan"));
    free(svg);
}

Test(plot, time_and_step_axes)
{
    noisy_runs();
    char *svg = plot("t.svg", "--x", "time", "--metric", "loss", NULL);
    cr_assert(strstr(svg, ">time ("), "the time zone is named");
    cr_assert_eq(fx_count_of(svg, "class=\"panel\""), 1);
    cr_assert_eq(fx_count_of(svg, "stroke-opacity=\"0.55\""), 5, "5 runs: thin translucent lines");
    free(svg);
    svg = plot("s.svg", "--x", "step", NULL, NULL, NULL);
    cr_assert(strstr(svg, ">step</text>"));
    cr_assert(strstr(svg, ">3000</text>") || strstr(svg, ">2500</text>"));
    free(svg);
}

Test(plot, bad_flag_values_are_refused_naming_the_flag)
{
    static const char *const cases[][4] = {
        {"--smooth", "1", "--smooth", "weight"},
        {"--smooth", "-0.1", "--smooth", "weight"},
        {"--smooth", "abc", "--smooth", "weight"},
        {"--smooth", "nan", "--smooth", "weight"},
        {"--x", "epoch", "--x", "step, time or relative"},
    };
    char path[400];
    snprintf(path, sizeof(path), "%s/bad.svg", D.dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL, *err = NULL;
        int rc = fx_track(&D, NULL, NULL, &out, &err, "compare", "abcd", "efgh", "--plot", path,
                          cases[i][0], cases[i][1], NULL);
        cr_assert_eq(rc, 2, "%s %s: exit %d", cases[i][0], cases[i][1], rc);
        cr_assert(strstr(err, cases[i][2]) && strstr(err, cases[i][3]), "%s %s: %s", cases[i][0],
                  cases[i][1], err);
        free(out);
        free(err);
    }
    /* plot flags without --plot */
    static const char *const alone[][2] = {{"--smooth", "0.5"}, {"--log-y", NULL}, {"--x", "time"}};
    for (size_t i = 0; i < 3; i++) {
        char *out = NULL, *err = NULL;
        int rc = fx_track(&D, NULL, NULL, &out, &err, "compare", "abcd", "efgh", alone[i][0],
                          alone[i][1], NULL);
        cr_assert_eq(rc, 2, "%s alone: exit %d", alone[i][0], rc);
        cr_assert(strstr(err, alone[i][0]) && strstr(err, "--plot"), "%s", err);
        free(out);
        free(err);
    }
    cr_assert_neq(access(path, F_OK), 0, "no file written");
}

Test(plot, a_trend_sparkline_keeps_a_spike_of_one_point_in_100000)
{
    struct track_run_opts ro = {.experiment = "spike", .name = "spiky"};
    struct track_err err = {0};
    track_run_id id;
    char a[33], b[33];
    cr_assert_eq(track_run_start(C, &ro, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, a);
    for (int64_t s = 0; s < 100000; s++)
        cr_assert_eq(track_log_metric(C, "g", s == 54321 ? 50.0 : 1.0, s, 1700000000000 + s, &err),
                     0, "%s", err.msg);
    cr_assert_eq(track_run_end(C, TRACK_FINISHED, &err), 0, "%s", err.msg);
    ro.name = "flat";
    cr_assert_eq(track_run_start(C, &ro, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, b);
    cr_assert_eq(track_log_metric(C, "g", 1.0, 0, 1700000000000, &err), 0, "%s", err.msg);
    cr_assert_eq(track_run_end(C, TRACK_FINISHED, &err), 0, "%s", err.msg);

    char *out = NULL, *e = NULL;
    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &e, "compare", a, b, "--format", "markdown", NULL),
                 0, "%s", e);
    const char *l = strstr(out, "| g trend | ");
    cr_assert_not_null(l, "%s", out);
    /* 20 buckets of 5000 steps: the spike's bucket (10) is the one full bar */
    const char *cell = l + strlen("| g trend | ");
    cr_assert_eq(strncmp(cell, "▁▁▁▁▁▁▁▁▁▁█▁▁▁▁▁▁▁▁▁ |", strlen("▁▁▁▁▁▁▁▁▁▁█▁▁▁▁▁▁▁▁▁ |")), 0, "%s",
                 l);
    free(out);
    free(e);
}
