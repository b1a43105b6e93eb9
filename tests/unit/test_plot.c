/*
 * test_plot.c: the pictures of the review commands (client/cli/spark.c and
 * plot_svg.c): sparklines, round axis ticks and their labels, and the SVG
 * document (well-formed, one polyline per series, non-finite points
 * skipped). They depend on nothing but libc, libm and render.c, so all three
 * are compiled right into this test.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"

#include "cli/render.c"
#include "cli/spark.c"
#include "cli/plot_svg.c"

/* Runs fn into a memory stream and returns what it wrote (caller frees). */
#define CAPTURE(out, body)                                                                         \
    do {                                                                                           \
        size_t cap_len_ = 0;                                                                       \
        FILE *f = open_memstream(&(out), &cap_len_);                                               \
        cr_assert_not_null(f);                                                                     \
        body;                                                                                      \
        fclose(f);                                                                                 \
    } while (0)

/* ---- a small XML well-formedness check ------------------------------------------ */

static int xml_name(const char **p)
{
    const char *s = *p;
    if (!(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
        return -1;
    while (isalnum((unsigned char)*s) || *s == '_' || *s == ':' || *s == '.' || *s == '-')
        s++;
    *p = s;
    return 0;
}

/* Checks text up to `end` (exclusive) for stray '<' and bad entities. */
static int xml_text(const char *s, const char *end)
{
    static const char *const ents[] = {"amp;", "lt;", "gt;", "quot;", "apos;"};
    for (; s < end; s++) {
        if (*s == '<')
            return -1;
        if (*s != '&')
            continue;
        int ok = 0;
        for (size_t i = 0; i < 5 && !ok; i++)
            ok = strncmp(s + 1, ents[i], strlen(ents[i])) == 0;
        if (!ok && s[1] == '#') {
            const char *q = s + 2;
            while (isxdigit((unsigned char)*q) || *q == 'x')
                q++;
            ok = *q == ';' && q > s + 2;
        }
        if (!ok)
            return -1;
    }
    return 0;
}

/* 0 when doc is a well-formed XML document with one root element (no DTD,
 * no CDATA: enough for what render_svg writes); -1 and a reason otherwise. */
static int xml_check(const char *doc, const char **why)
{
    const char *stack[64], *p = doc;
    size_t lens[64], depth = 0, roots = 0;

    if (strncmp(p, "<?xml", 5) == 0) {
        p = strstr(p, "?>");
        if (!p)
            return *why = "unterminated prolog", -1;
        p += 2;
    }
    while (*p) {
        const char *lt = strchr(p, '<');
        const char *end = lt ? lt : p + strlen(p);
        if (xml_text(p, end))
            return *why = "bad character or entity in text", -1;
        if (depth == 0)
            for (const char *q = p; q < end; q++)
                if (!isspace((unsigned char)*q))
                    return *why = "text outside the root", -1;
        if (!lt)
            break;
        p = lt + 1;
        if (strncmp(p, "!--", 3) == 0) {
            p = strstr(p, "-->");
            if (!p)
                return *why = "unterminated comment", -1;
            p += 3;
        } else if (*p == '/') {
            const char *n = ++p;
            if (xml_name(&p) || depth == 0)
                return *why = "bad end tag", -1;
            depth--;
            if ((size_t)(p - n) != lens[depth] || strncmp(n, stack[depth], lens[depth]) != 0)
                return *why = "mismatched end tag", -1;
            while (isspace((unsigned char)*p))
                p++;
            if (*p++ != '>')
                return *why = "bad end tag", -1;
        } else {
            const char *n = p;
            if (xml_name(&p))
                return *why = "bad element name", -1;
            size_t nl = (size_t)(p - n);
            for (;;) {
                int space = isspace((unsigned char)*p);
                while (isspace((unsigned char)*p))
                    p++;
                if (*p == '>' || (p[0] == '/' && p[1] == '>'))
                    break;
                if (!space || xml_name(&p) || *p++ != '=' || (*p != '"' && *p != '\''))
                    return *why = "bad attribute", -1;
                char q = *p++;
                const char *v = p, *ve = strchr(p, q);
                if (!ve || xml_text(v, ve))
                    return *why = "bad attribute value", -1;
                p = ve + 1;
            }
            if (*p == '/') {
                p += 2;
                if (depth == 0)
                    roots++;
            } else {
                p++;
                if (depth == 0)
                    roots++;
                if (depth == 64)
                    return *why = "too deep", -1;
                stack[depth] = n;
                lens[depth++] = nl;
            }
        }
    }
    if (depth)
        return *why = "unclosed element", -1;
    if (roots != 1)
        return *why = "not exactly one root element", -1;
    return 0;
}

/* ---- sparklines ------------------------------------------------------------------ */

static const char *spark(const double *v, size_t n)
{
    static char buf[RENDER_SPARK_MAX * 3 + 1];
    render_sparkline(v, n, buf, sizeof(buf));
    return buf;
}

Test(sparkline, a_ramp_uses_every_level_once)
{
    double v[] = {0, 1, 2, 3, 4, 5, 6, 7};
    cr_assert_str_eq(spark(v, 8), "▁▂▃▄▅▆▇█");
}

Test(sparkline, values_are_scaled_between_min_and_max_and_rounded)
{
    double v[] = {10, 10.5, 11, 30, 20};
    /* (v - 10) / 20 * 7: 0, 0.175, 0.35, 7, 3.5 -> 0 0 0 7 4 */
    cr_assert_str_eq(spark(v, 5), "▁▁▁█▅");
}

Test(sparkline, nan_is_a_space_and_infinities_are_the_extremes)
{
    double v[] = {1, NAN, 3, INFINITY, -INFINITY, 2};
    cr_assert_str_eq(spark(v, 6), "▁ ██▁▅");
    double all_nan[] = {NAN, NAN};
    cr_assert_str_eq(spark(all_nan, 2), "  ");
}

Test(sparkline, a_flat_series_sits_mid_height)
{
    double v[] = {5, 5, 5};
    cr_assert_str_eq(spark(v, 3), "▄▄▄");
    double one[] = {-2};
    cr_assert_str_eq(spark(one, 1), "▄");
}

Test(sparkline, empty_and_huge_ranges)
{
    char buf[16] = "x";
    cr_assert_eq(render_sparkline(NULL, 0, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "");
    double v[] = {-DBL_MAX, 0, DBL_MAX};
    cr_assert_str_eq(spark(v, 3), "▁▅█");
}

Test(sparkline, a_short_buffer_cuts_at_a_cell_boundary)
{
    double v[] = {0, 1, 2, 3};
    char buf[8];
    cr_assert_eq(render_sparkline(v, 4, buf, sizeof(buf)), 2);
    cr_assert_str_eq(buf, "▁▃");
    cr_assert_eq(render_width(buf), 2);
}

Test(sparkline, at_most_the_maximum_cells)
{
    static double v[RENDER_SPARK_MAX + 10];
    static char buf[(RENDER_SPARK_MAX + 10) * 3 + 1];
    for (size_t i = 0; i < RENDER_SPARK_MAX + 10; i++)
        v[i] = (double)i;
    cr_assert_eq(render_sparkline(v, RENDER_SPARK_MAX + 10, buf, sizeof(buf)), RENDER_SPARK_MAX);
    cr_assert_eq(render_width(buf), RENDER_SPARK_MAX);
}

/* ---- axes ------------------------------------------------------------------------ */

static void expect_ticks(double lo, double hi, int target, const char *want)
{
    double t[32], step;
    char got[512] = "", lab[32];
    size_t n = render_ticks(lo, hi, target, t, 32, &step);
    for (size_t i = 0; i < n; i++) {
        render_tick_label(t[i], step, lab, sizeof(lab));
        size_t l = strlen(got);
        snprintf(got + l, sizeof(got) - l, "%s%s", i ? " " : "", lab);
    }
    cr_assert_str_eq(got, want, "ticks(%g, %g, %d)", lo, hi, target);
    cr_assert_leq(t[0], lo);
    cr_assert_geq(t[n - 1], hi);
}

Test(axes, ticks_are_round_and_cover_the_range)
{
    expect_ticks(0, 1, 5, "0.0 0.2 0.4 0.6 0.8 1.0");
    expect_ticks(0.13, 0.87, 5, "0.0 0.2 0.4 0.6 0.8 1.0");
    expect_ticks(0, 999999, 5, "0 200000 400000 600000 800000 1000000");
    expect_ticks(-3, 7, 5, "-4 -2 0 2 4 6 8");
    expect_ticks(1, 1999, 6, "0 500 1000 1500 2000");
    expect_ticks(0.001, 0.0042, 4, "0.001 0.002 0.003 0.004 0.005");
}

Test(axes, one_value_and_non_finite_bounds)
{
    expect_ticks(5, 5, 5, "4.4 4.6 4.8 5.0 5.2 5.4 5.6");
    expect_ticks(0, 0, 4, "-1.0 -0.5 0.0 0.5 1.0");
    double t[16], step;
    size_t n = render_ticks(NAN, INFINITY, 5, t, 16, &step);
    cr_assert_eq(n, 6);
    cr_assert_float_eq(t[0], 0, 1e-12);
    cr_assert_float_eq(t[5], 1, 1e-12);
    n = render_ticks(0, 1, 5, t, 3, &step);
    cr_assert_eq(n, 3, "cap bounds the output");
}

Test(axes, tick_labels)
{
    char b[32];
    render_tick_label(0.30000000000000004, 0.1, b, sizeof(b));
    cr_assert_str_eq(b, "0.3");
    render_tick_label(0.25, 0.05, b, sizeof(b));
    cr_assert_str_eq(b, "0.25");
    render_tick_label(1500, 500, b, sizeof(b));
    cr_assert_str_eq(b, "1500");
    render_tick_label(-1e-17, 0.1, b, sizeof(b));
    cr_assert_str_eq(b, "0.0", "never -0");
    render_tick_label(2e7, 1e7, b, sizeof(b));
    cr_assert_str_eq(b, "2e+07");
    render_tick_label(3e-8, 1e-8, b, sizeof(b));
    cr_assert_str_eq(b, "3e-08");
}

/* ---- SVG ------------------------------------------------------------------------- */

/* CIELAB of an sRGB colour "#rrggbb" (D65). */
static void lab_of(const char *hex, double lab[3])
{
    unsigned c[3];
    double lin[3], xyz[3];
    cr_assert_eq(sscanf(hex, "#%2x%2x%2x", &c[0], &c[1], &c[2]), 3);
    for (int k = 0; k < 3; k++) {
        double v = c[k] / 255.0;
        lin[k] = v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
    }
    xyz[0] = (0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047;
    xyz[1] = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
    xyz[2] = (0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883;
    for (int k = 0; k < 3; k++)
        xyz[k] = xyz[k] > 0.008856 ? cbrt(xyz[k]) : 7.787 * xyz[k] + 16.0 / 116;
    lab[0] = 116 * xyz[1] - 16;
    lab[1] = 500 * (xyz[0] - xyz[1]);
    lab[2] = 200 * (xyz[1] - xyz[2]);
}

Test(svg, the_first_twenty_colours_stay_far_apart)
{
    double lab[20][3];
    for (size_t i = 0; i < 20; i++) {
        char c[8];
        render_color(i, c);
        lab_of(c, lab[i]);
        cr_assert_lt(lab[i][0], 80, "colour %zu (%s) too light for a line on white", i, c);
        for (size_t j = 0; j < i; j++) {
            double d = sqrt(pow(lab[i][0] - lab[j][0], 2) + pow(lab[i][1] - lab[j][1], 2) +
                            pow(lab[i][2] - lab[j][2], 2));
            cr_assert_geq(d, 27, "colours %zu and %zu are %g apart", i, j, d);
        }
    }
}

Test(svg, colours_are_distinct_for_fifty_series)
{
    char c[50][8];
    for (size_t i = 0; i < 50; i++) {
        render_color(i, c[i]);
        cr_assert_eq(strlen(c[i]), 7);
        cr_assert_eq(c[i][0], '#');
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(c[i], c[j], "series %zu and %zu", i, j);
    }
}

/* The y coordinates of the points of every data path ("M x y L x y ...")
 * in doc after the marker string `from`, into ys (at most cap). */
static size_t path_ys(const char *doc, const char *stroke, double *ys, size_t cap)
{
    size_t n = 0;
    char want[64];
    snprintf(want, sizeof(want), "<path fill=\"none\" stroke=\"%s\"", stroke);
    for (const char *p = doc; (p = strstr(p, want)) != NULL; p++) {
        const char *d = strstr(p, " d=\"") + 4, *end = strchr(d, '"');
        while (d < end && n < cap) {
            while (d < end && (*d == 'M' || *d == 'L' || *d == ' '))
                d++;
            if (d >= end)
                break;
            char *q;
            strtod(d, &q); /* x */
            ys[n++] = strtod(q, &q);
            d = q;
        }
    }
    return n;
}

static const char *const NAMES[] = {"a&b <c> \"d\" 'e'", "plain", "none"};

Test(svg, a_document_is_well_formed_with_one_legend_and_a_line_per_series)
{
    double x[] = {0, 1, 2, 3, 4}, y1[] = {1, NAN, INFINITY, 2, 3}, y2[] = {0.5, 0.4, 0.3, 0.2, 0.1};
    double empty[1];
    struct render_series s[3] = {
        {.x = x, .y = y1, .n = 5},
        {.x = x, .y = y2, .n = 5},
        {.x = empty, .y = empty, .n = 0},
    };
    struct render_panel p[2] = {{.title = "loss <&>", .series = s, .n_series = 3},
                                {.title = "acc", .series = s, .n_series = 3}};
    struct render_plot o = {.title = "t & t",
                            .xlabel = "step",
                            .x_kind = RENDER_AXIS_INTEGER,
                            .names = NAMES,
                            .n_names = 3};
    char *out = NULL;
    const char *why = "";
    CAPTURE(out, cr_assert_eq(render_svg(f, &o, p, 2), 0));
    cr_assert_eq(xml_check(out, &why), 0, "%s:\n%s", why, out);
    cr_assert_eq(fx_count_of(out, "<path fill=\"none\""), 6, "a line per series and panel");
    cr_assert_eq(fx_count_of(out, "a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos;"), 2,
                 "one legend per figure (its text and its tooltip), not one per panel");
    cr_assert_eq(fx_count_of(out, "class=\"legend\""), 1);
    cr_assert(strstr(out, ">loss &lt;&amp;&gt;</text>"));
    cr_assert(strstr(out, "<title>t &amp; t</title>"));
    cr_assert_null(strstr(out, "nan"));
    cr_assert_null(strstr(out, "inf"));
    free(out);
}

Test(svg, a_panel_without_finite_values_still_has_axes)
{
    double x[] = {0, 1}, y[] = {NAN, NAN};
    struct render_series s = {.x = x, .y = y, .n = 2};
    struct render_panel p = {.title = "nan only", .series = &s, .n_series = 1};
    struct render_plot o = {.title = "t", .xlabel = "step", .names = NAMES, .n_names = 1};
    char *out = NULL;
    const char *why = "";
    CAPTURE(out, render_svg(f, &o, &p, 1));
    cr_assert_eq(xml_check(out, &why), 0, "%s", why);
    cr_assert(strstr(out, "no finite values"));
    cr_assert_eq(fx_count_of(out, "<path fill=\"none\""), 1);
    free(out);
}

Test(svg, single_points_are_drawn_as_markers)
{
    double x1[] = {5}, y1[] = {9.9};
    double x2[] = {0, 1, 2, 3, 4}, y2[] = {0.1, NAN, 0.5, NAN, 0.3};
    double x3[] = {0, 1, 2}, y3[] = {0.2, 0.3, 0.4};
    struct render_series s[3] = {
        {.x = x1, .y = y1, .n = 1}, {.x = x2, .y = y2, .n = 5}, {.x = x3, .y = y3, .n = 3}};
    struct render_panel p = {.title = "m", .series = s, .n_series = 3};
    struct render_plot o = {.title = "t", .xlabel = "step", .names = NAMES, .n_names = 3};
    char *out = NULL;
    CAPTURE(out, render_svg(f, &o, &p, 1));
    /* the one-point series, and each of the three points of series 2 that
     * NaN cuts off from the others; the 3-point line gets none */
    cr_assert_eq(fx_count_of(out, "class=\"marker\""), 4, "%s", out);
    cr_assert_eq(fx_count_of(out, "fill=\"#1f77b4\"/>"), 1);
    cr_assert_eq(fx_count_of(out, "fill=\"#ff7f0e\"/>"), 3);
    cr_assert_eq(fx_count_of(out, "fill=\"#2ca02c\"/>"), 0);
    /* the y axis is chosen from what is drawn, markers included */
    cr_assert(strstr(out, ">9.0</text>") || strstr(out, ">10</text>"), "%s", out);
    free(out);
}

/* A full-resolution series, downsampled as trackd does and drawn. */
static char *draw_downsampled(const double *y, size_t n, size_t buckets, struct render_m4 *m4,
                              size_t *nb, double *xs, double *ys)
{
    static double x[100000];
    static struct render_band band[1000];
    struct render_series s;
    char *out = NULL;
    for (size_t i = 0; i < n; i++)
        x[i] = (double)i;
    *nb = render_m4_downsample(x, y, n, buckets, m4);
    render_m4_series(m4, *nb, xs, ys, band, &s);
    struct render_panel p = {.title = "m", .series = &s, .n_series = 1};
    struct render_plot o = {.title = "t",
                            .xlabel = "step",
                            .x_kind = RENDER_AXIS_INTEGER,
                            .names = NAMES + 1,
                            .n_names = 1};
    CAPTURE(out, render_svg(f, &o, &p, 1));
    return out;
}

Test(envelope, a_single_spike_survives_downsampling)
{
    static double y[100000], xs[4000], ys[4000], py[8000];
    static struct render_m4 m4[1000];
    size_t nb;
    for (size_t i = 0; i < 100000; i++)
        y[i] = i == 54321 ? 1000 : 0;
    char *out = draw_downsampled(y, 100000, 400, m4, &nb, xs, ys);
    cr_assert_eq(nb, 400);
    size_t spikes = 0;
    for (size_t i = 0; i < nb * 4 && i < 4000; i++)
        spikes += ys[i] == 1000;
    cr_assert_eq(spikes, 1, "the spike is one point of the line");
    /* and it is drawn at the top of the plot area: 3% below its top */
    size_t n = path_ys(out, "#1f77b4", py, 8000);
    double top = INFINITY, bottom = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        top = fmin(top, py[i]);
        bottom = fmax(bottom, py[i]);
    }
    cr_assert_float_eq(bottom - top, SVG_PLOT_H / 1.06, 0.2, "top %g bottom %g", top, bottom);
    cr_assert(strstr(out, ">1000</text>"), "a tick at the spike's height");
    free(out);
}

Test(envelope, a_period_shorter_than_a_bucket_is_not_aliased)
{
    static double y[100000], xs[4000], ys[4000], py[8000];
    static struct render_m4 m4[1000];
    size_t nb;
    for (size_t i = 0; i < 100000; i++)
        y[i] = sin(2 * M_PI * (double)i / 314.0); /* 1000-step buckets, 3 periods each */
    char *out = draw_downsampled(y, 100000, 100, m4, &nb, xs, ys);
    cr_assert_eq(nb, 100);
    size_t flips = 0;
    for (size_t b = 0; b < nb; b++) {
        cr_assert_lt(m4[b].y[1], -0.999, "bucket %zu keeps the trough", b);
        cr_assert_gt(m4[b].y[2], 0.999, "bucket %zu keeps the crest", b);
        flips += b && (m4[b].y[3] > 0) != (m4[b - 1].y[3] > 0);
    }
    /* the last values alone trace a slow wave of their own (aliasing): a
     * period of about 5,400 steps, under 40 sign changes where the signal
     * has 637 */
    cr_assert_lt(flips, 40, "%zu", flips);
    /* drawn: the line swings the whole height in every bucket's x range */
    size_t n = path_ys(out, "#1f77b4", py, 8000);
    cr_assert_geq(n, 3 * nb, "%zu points for %zu buckets", n, nb);
    for (size_t b = 0; b < nb; b++) {
        /* the drawn points (xs[k], py[k]) inside bucket b's x range */
        double x0 = fmin(m4[b].x[0], m4[b].x[1]), x1 = fmax(m4[b].x[2], m4[b].x[3]);
        double a = INFINITY, z = -INFINITY;
        x0 = fmin(x0, fmin(m4[b].x[2], m4[b].x[3]));
        x1 = fmax(x1, fmax(m4[b].x[0], m4[b].x[1]));
        for (size_t k = 0; k < n; k++) {
            if (xs[k] < x0 || xs[k] > x1)
                continue;
            a = fmin(a, py[k]);
            z = fmax(z, py[k]);
        }
        cr_assert_gt(z - a, SVG_PLOT_H * 0.9, "bucket %zu spans %g", b, z - a);
    }
    free(out);
}

Test(envelope, downsampling_keeps_first_min_max_last_and_skips_nan)
{
    double x[] = {0, 1, 2, 3, 4, 5, 6, 7}, y[] = {5, NAN, 1, 9, 4, NAN, NAN, NAN};
    struct render_m4 b[4];
    size_t n = render_m4_downsample(x, y, 8, 2, b);
    cr_assert_eq(n, 2);
    cr_assert_eq(b[0].y[0], 5);
    cr_assert_eq(b[0].y[1], 1);
    cr_assert_eq(b[0].x[1], 2);
    cr_assert_eq(b[0].y[2], 9);
    cr_assert_eq(b[0].x[2], 3);
    cr_assert_eq(b[0].y[3], 9);
    cr_assert_eq(b[1].y[0], 4);
    cr_assert_eq(b[1].y[1], 4);
    cr_assert_eq(b[1].y[2], 4);
    cr_assert(isnan(b[1].y[3]), "last is the last point, NaN included");
    /* a bucket of NaN only keeps its first point as min and max */
    n = render_m4_downsample(x + 5, y + 5, 3, 1, b);
    cr_assert_eq(n, 1);
    cr_assert(isnan(b[0].y[1]) && b[0].x[1] == 5);
    cr_assert_eq(render_m4_downsample(x, y, 0, 3, b), 0);
}

Test(envelope, the_band_spans_each_bucket_and_is_drawn_under_few_series)
{
    struct render_m4 b[2] = {{{0, 3, 1, 4}, {1, -2, 7, 2}}, {{5, 5, 5, 5}, {3, 3, 3, 3}}};
    double xs[8], ys[8];
    struct render_band band[2];
    struct render_series s;
    render_m4_series(b, 2, xs, ys, band, &s);
    /* in x order: first (0), max (1), min (3), last (4); then one point */
    cr_assert_eq(s.n, 5);
    double wx[] = {0, 1, 3, 4, 5}, wy[] = {1, 7, -2, 2, 3};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(xs[i], wx[i]);
        cr_assert_eq(ys[i], wy[i]);
    }
    cr_assert_eq(band[0].x0, 0);
    cr_assert_eq(band[0].x1, 4);
    cr_assert_eq(band[0].lo, -2);
    cr_assert_eq(band[0].hi, 7);
    struct render_series many[5] = {s, s, s, s, s};
    struct render_panel p = {.title = "m", .series = many, .n_series = 2};
    struct render_plot o = {.title = "t", .names = NAMES, .n_names = 2};
    char *out = NULL;
    CAPTURE(out, render_svg(f, &o, &p, 1));
    cr_assert_eq(fx_count_of(out, "fill-opacity="), 2, "a band per series");
    cr_assert(strstr(out, "stroke-width=\"1.30\""));
    free(out);
    p.n_series = 5;
    CAPTURE(out, render_svg(f, &o, &p, 1));
    cr_assert_eq(fx_count_of(out, "fill-opacity="), 0, "five series: no bands");
    cr_assert_eq(fx_count_of(out, "stroke-width=\"0.80\" stroke-opacity=\"0.55\""), 5,
                 "thin translucent lines");
    free(out);
}

/* ---- axes chosen from the data --------------------------------------------------- */

static void expect_axis(int kind, double lo, double hi, int target, double alo, double ahi,
                        const char *want)
{
    struct render_axis a;
    char got[512] = "";
    render_axis_make(kind, lo, hi, target, &a);
    for (size_t i = 0; i < a.n; i++) {
        char lab[48];
        render_axis_label(&a, a.ticks[i], lab, sizeof(lab));
        size_t l = strlen(got);
        snprintf(got + l, sizeof(got) - l, "%s%s", i ? " " : "", lab);
        cr_assert_geq(a.ticks[i], a.lo - 1e-9, "ticks inside the range");
        cr_assert_leq(a.ticks[i], a.hi + 1e-9, "ticks inside the range");
    }
    cr_assert_str_eq(got, want, "axis(%g, %g)", lo, hi);
    cr_assert_float_eq(a.lo, alo, 1e-9, "axis(%g, %g) lo %.12g", lo, hi, a.lo);
    cr_assert_float_eq(a.hi, ahi, 1e-9, "axis(%g, %g) hi %.12g", lo, hi, a.hi);
}

Test(axes, the_range_is_the_data_widened_by_3_percent_with_round_ticks_inside)
{
    expect_axis(RENDER_AXIS_LINEAR, 0, 1, 5, -0.03, 1.03, "0.0 0.2 0.4 0.6 0.8 1.0");
    /* not padded out to 0..1: the ticks stay inside */
    expect_axis(RENDER_AXIS_LINEAR, 0.13, 0.87, 5, 0.1078, 0.8922, "0.2 0.4 0.6 0.8");
    expect_axis(RENDER_AXIS_LINEAR, 0.31, 0.34, 5, 0.3091, 0.3409,
                "0.310 0.315 0.320 0.325 0.330 0.335 0.340");
    expect_axis(RENDER_AXIS_LINEAR, -3, 7, 5, -3.3, 7.3, "-2 0 2 4 6");
    expect_axis(RENDER_AXIS_INTEGER, 0, 499, 5, -14.97, 513.97, "0 100 200 300 400 500");
    /* one value: widened around it by 5% */
    expect_axis(RENDER_AXIS_LINEAR, 9.9, 9.9, 5, 9.405, 10.395, "9.6 9.8 10.0 10.2");
    expect_axis(RENDER_AXIS_INTEGER, 5, 5, 8, 4, 6, "4 5 6");
    expect_axis(RENDER_AXIS_LINEAR, 0, 0, 5, -1, 1, "-1.0 -0.5 0.0 0.5 1.0");
}

Test(axes, tick_spacings_are_1_2_or_5_times_a_power_of_ten)
{
    for (double span = 1e-6; span < 1e9; span *= 1.37) {
        struct render_axis a;
        render_axis_make(RENDER_AXIS_LINEAR, 1.5, 1.5 + span, 5, &a);
        double e = floor(log10(a.step) + 1e-9), m = a.step / pow(10, e);
        cr_assert(fabs(m - 1) < 1e-6 || fabs(m - 2) < 1e-6 || fabs(m - 5) < 1e-6, "span %g step %g",
                  span, a.step);
        cr_assert_geq(a.n, 3, "span %g", span);
        cr_assert_leq(a.n, 12, "span %g", span);
    }
}

Test(axes, log_axes_tick_powers_of_ten_or_1_2_5)
{
    expect_axis(RENDER_AXIS_LOG, -3, 3, 5, -3.18, 3.18, "0.001 0.01 0.1 1 10 100 1000");
    expect_axis(RENDER_AXIS_LOG, log10(0.2), log10(5), 5, log10(0.2) - 0.03 * log10(25),
                log10(5) + 0.03 * log10(25), "0.2 0.5 1 2 5");
}

Test(axes, time_axes_use_clock_steps_in_local_time)
{
    setenv("TZ", "UTC", 1);
    tzset();
    /* 2023-11-14 22:13:20 UTC and 20 minutes later */
    struct render_axis a;
    render_axis_make(RENDER_AXIS_TIME, 1700000000, 1700001200, 8, &a);
    cr_assert_eq(a.step, 300);
    char lab[48];
    render_axis_label(&a, a.ticks[0], lab, sizeof(lab));
    cr_assert_str_eq(lab, "22:15");
    render_axis_make(RENDER_AXIS_TIME, 1700000000, 1700000030, 8, &a);
    cr_assert_eq(a.step, 5);
    render_axis_label(&a, a.ticks[0], lab, sizeof(lab));
    cr_assert_str_eq(lab, "22:13:20");
    render_axis_make(RENDER_AXIS_TIME, 1700000000, 1700000000 + 5 * 86400, 8, &a);
    cr_assert_eq(a.step, 86400);
    render_axis_label(&a, a.ticks[0], lab, sizeof(lab));
    cr_assert_str_eq(lab, "11-15");
}

/* ---- smoothing and log scale ------------------------------------------------------- */

Test(smooth, is_tensorboards_debiased_ema)
{
    double y[] = {1, 0, 0, 0}, out[4];
    render_smooth(y, 4, 0.5, out);
    cr_assert_float_eq(out[0], 1, 1e-12, "debiased: the first value stays");
    cr_assert_float_eq(out[1], 0.25 / 0.75, 1e-12);
    cr_assert_float_eq(out[2], 0.125 / 0.875, 1e-12);
    cr_assert_float_eq(out[3], 0.0625 / 0.9375, 1e-12);
    double z[] = {2, NAN, 4, INFINITY, 6}, zo[5];
    render_smooth(z, 5, 0.6, zo);
    cr_assert(isnan(zo[1]) && isinf(zo[3]), "non-finite values pass through");
    cr_assert_float_eq(zo[2], (2 * 0.4 * 0.6 + 4 * 0.4) / (1 - 0.36), 1e-12);
    double c[] = {3, 3, 3};
    render_smooth(c, 3, 0.99, out);
    cr_assert(out[0] == 3 && out[1] == 3 && out[2] == 3, "a constant stays");
    render_smooth(y, 4, 0, out);
    cr_assert(out[0] == 1 && out[1] == 0, "weight 0 is off");
}

Test(smooth, the_raw_line_stays_faint_behind_the_smoothed_one)
{
    double x[] = {0, 1, 2, 3}, y[] = {1, 3, 2, 4};
    struct render_series s = {.x = x, .y = y, .n = 4};
    struct render_panel p = {.title = "m", .series = &s, .n_series = 1};
    struct render_plot o = {.title = "t", .smooth = 0.6, .names = NAMES, .n_names = 1};
    char *out = NULL;
    CAPTURE(out, render_svg(f, &o, &p, 1));
    cr_assert_eq(fx_count_of(out, "<path fill=\"none\""), 2, "raw and smoothed");
    const char *raw = strstr(out, "<path fill=\"none\""),
               *sm = strstr(raw + 1, "<path fill=\"none\"");
    cr_assert(strstr(raw, "stroke-opacity=\"0.25\"") < sm, "the raw line comes first, faint");
    cr_assert(strstr(sm, "stroke-opacity=\"1.00\""));
    cr_assert(strstr(out, "smoothing 0.6"));
    free(out);
}

Test(logy, non_positive_values_are_skipped_and_noted)
{
    double x[] = {0, 1, 2, 3, 4}, y[] = {100, 0, 10, -5, 1};
    struct render_series s = {.x = x, .y = y, .n = 5};
    struct render_panel p = {.title = "m", .series = &s, .n_series = 1};
    struct render_plot o = {.title = "t", .log_y = 1, .names = NAMES, .n_names = 1};
    char *out = NULL;
    const char *why = "";
    CAPTURE(out, render_svg(f, &o, &p, 1));
    cr_assert_eq(xml_check(out, &why), 0, "%s", why);
    cr_assert(strstr(out, "log scale: 2 values &lt;= 0 not drawn"), "%s", out);
    cr_assert(strstr(out, ">1</text>") && strstr(out, ">10</text>") && strstr(out, ">100</text>"));
    /* the three positive points are cut apart by the skipped ones: markers */
    cr_assert_eq(fx_count_of(out, "class=\"marker\""), 3);
    free(out);
}

/* ---- sparklines of buckets --------------------------------------------------------- */

Test(sparkline, a_bucket_is_as_high_as_its_largest_value)
{
    double lo[] = {0, 0, 0, 0}, hi[] = {0, 5, 0, NAN};
    char buf[64];
    cr_assert_eq(render_sparkline_range(lo, hi, 4, buf, sizeof(buf)), 4);
    cr_assert_str_eq(buf, "▁█▁ ", "the spike in bucket 1 shows");
}

Test(sparkline, tall_sparklines_use_eight_levels_a_row)
{
    double v[] = {0, 1, 2, 3, NAN};
    char r0[32], r1[32], *rows[2] = {r0, r1};
    cr_assert_eq(render_spark_rows(v, 5, 0, 3, 2, rows, sizeof(r0)), 5);
    /* 16 levels: 1 + t * 15 eighths: 1, 6, 11, 16 */
    cr_assert_str_eq(r0, "  ▃█ ");
    cr_assert_str_eq(r1, "▁▆██ ");
    double flat[] = {2, 2};
    cr_assert_eq(render_spark_rows(flat, 2, 2, 2, 2, rows, sizeof(r0)), 2);
    cr_assert_str_eq(r0, "  ");
    cr_assert_str_eq(r1, "██", "flat: mid-height");
}

Test(svg, the_checker_rejects_broken_documents)
{
    const char *why;
    cr_assert_eq(xml_check("<a><b></a></b>", &why), -1);
    cr_assert_eq(xml_check("<a x=\"1 & 2\"/>", &why), -1);
    cr_assert_eq(xml_check("<a>1 < 2</a>", &why), -1);
    cr_assert_eq(xml_check("<a/><b/>", &why), -1);
    cr_assert_eq(xml_check("<a>", &why), -1);
    cr_assert_eq(xml_check("<?xml version=\"1.0\"?>\n<a x='1' y=\"&lt;\">t&amp;<b/></a>\n", &why),
                 0);
}
