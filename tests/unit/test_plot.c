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

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

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

Test(svg, a_document_is_well_formed_with_one_polyline_per_series)
{
    double x[] = {0, 1, 2, 3, 4}, y1[] = {1, NAN, INFINITY, 2, 3}, y2[] = {0.5, 0.4, 0.3, 0.2, 0.1};
    double empty[1];
    struct render_series s[3] = {
        {.name = "a&b <c> \"d\" 'e'", .x = x, .y = y1, .n = 5},
        {.name = "plain", .x = x, .y = y2, .n = 5},
        {.name = "none", .x = empty, .y = empty, .n = 0},
    };
    struct render_panel p[2] = {{.title = "loss <&>", .series = s, .n_series = 3},
                                {.title = "acc", .series = s, .n_series = 3}};
    char *out = NULL;
    const char *why = "";
    CAPTURE(out, cr_assert_eq(render_svg(f, "t & t", "step", p, 2), 0));
    cr_assert_eq(xml_check(out, &why), 0, "%s:\n%s", why, out);
    cr_assert_eq(count_of(out, "<polyline"), 6);
    cr_assert_eq(count_of(out, "a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos;"), 4,
                 "legend and polyline title, in both panels");
    cr_assert(strstr(out, ">loss &lt;&amp;&gt;</text>"));
    cr_assert(strstr(out, "<title>t &amp; t</title>"));
    /* the first series keeps its 3 finite points of 5 */
    const char *pl = strstr(out, "<polyline");
    const char *pts = strstr(pl, "points=\"") + 8, *end = strchr(pts, '"');
    size_t commas = 0;
    for (const char *q = pts; q < end; q++)
        commas += *q == ',';
    cr_assert_eq(commas, 3);
    cr_assert(strstr(out, "points=\"\""), "an empty series still has its polyline");
    free(out);
}

Test(svg, a_panel_without_finite_values_still_has_axes)
{
    double x[] = {0, 1}, y[] = {NAN, NAN};
    struct render_series s = {.name = "n", .x = x, .y = y, .n = 2};
    struct render_panel p = {.title = "nan only", .series = &s, .n_series = 1};
    char *out = NULL;
    const char *why = "";
    CAPTURE(out, render_svg(f, "t", "step", &p, 1));
    cr_assert_eq(xml_check(out, &why), 0, "%s", why);
    cr_assert(strstr(out, "no finite values"));
    cr_assert_eq(count_of(out, "<polyline"), 1);
    free(out);
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
