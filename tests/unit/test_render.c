/*
 * test_render.c: the pure rendering of the review commands
 * (client/cli/render.c): display widths and cutting, compact numbers,
 * terminal width and column folding, XML and CSV escaping and the keys a
 * filter mentions (sparklines, ticks and SVG: test_plot.c). render.c
 * depends on nothing but libc and libm, so it is compiled right into this
 * test.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/render.c"

/* Runs fn into a memory stream and returns what it wrote (caller frees). */
#define CAPTURE(out, body)                                                                         \
    do {                                                                                           \
        size_t cap_len_ = 0;                                                                       \
        FILE *f = open_memstream(&(out), &cap_len_);                                               \
        cr_assert_not_null(f);                                                                     \
        body;                                                                                      \
        fclose(f);                                                                                 \
    } while (0)

/* ---- text ------------------------------------------------------------------------ */

Test(text, width_counts_code_points)
{
    cr_assert_eq(render_width(""), 0);
    cr_assert_eq(render_width("abc"), 3);
    cr_assert_eq(render_width("héllo"), 5);
    cr_assert_eq(render_width("▁▂▃"), 3);
    cr_assert_eq(render_width("a\xff"
                              "b"),
                 3, "an invalid byte is one column");
}

Test(text, fit_cuts_with_an_ellipsis_on_a_character_boundary)
{
    char buf[64];
    render_fit("abcdef", 4, buf, sizeof(buf));
    cr_assert_str_eq(buf, "abc…");
    render_fit("abcd", 4, buf, sizeof(buf));
    cr_assert_str_eq(buf, "abcd");
    render_fit("héllo wörld", 5, buf, sizeof(buf));
    cr_assert_str_eq(buf, "héll…");
    render_fit("ééééé", 3, buf, sizeof(buf));
    cr_assert_str_eq(buf, "éé…");
    render_fit("abc", 0, buf, sizeof(buf));
    cr_assert_str_eq(buf, "");
    char tiny[6];
    render_fit("abcdefgh", 6, tiny, sizeof(tiny));
    cr_assert_str_eq(tiny, "ab…", "the byte size bounds it too");
}

Test(text, pad_aligns_by_display_width_and_keeps_colour_inside)
{
    char *out = NULL;
    CAPTURE(out, {
        render_pad(f, "é", 3, 0, NULL);
        fputc('|', f);
        render_pad(f, "ab", 4, 1, NULL);
        fputc('|', f);
        render_pad(f, "x", 3, 0, "1");
        fputc('|', f);
        render_pad(f, "toolong", 3, 0, NULL);
    });
    cr_assert_str_eq(out, "é  |  ab|\x1b[1mx\x1b[0m  |toolong");
    free(out);
}

Test(text, compact_numbers)
{
    char b[32];
    render_num(0.31, b, sizeof(b));
    cr_assert_str_eq(b, "0.31");
    render_num(1234567, b, sizeof(b));
    cr_assert_str_eq(b, "1.23457e+06");
    render_num(1e-7, b, sizeof(b));
    cr_assert_str_eq(b, "1e-07");
    render_num(42, b, sizeof(b));
    cr_assert_str_eq(b, "42");
    render_num(-0.0, b, sizeof(b));
    cr_assert_str_eq(b, "0");
    render_num(NAN, b, sizeof(b));
    cr_assert_str_eq(b, "nan");
    render_num(INFINITY, b, sizeof(b));
    cr_assert_str_eq(b, "inf");
    render_num(-INFINITY, b, sizeof(b));
    cr_assert_str_eq(b, "-inf");
}

/* cli_fmt_double's search (client/cli/util.c), the reference. */
static void linear_double(double v, char *buf, size_t len)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

Test(text, round_trip_doubles_match_the_linear_search)
{
    static const double fixed[] = {0,      -0.0,    0.1,      0.3,    1.0 / 3,   2.0 / 3,
                                   1e14,   1e15,    1e16,     1e-300, 123456789, 1234567e7,
                                   5e-324, DBL_MAX, -DBL_MIN, 0.125};
    char a[40], b[40];
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        render_double(fixed[i], a, sizeof(a));
        linear_double(fixed[i], b, sizeof(b));
        cr_assert_str_eq(a, b);
        cr_assert(strtod(a, NULL) == fixed[i]);
    }
    /* and many bit patterns: every exponent, assorted mantissas */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        double v;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(&v, &x, sizeof(v));
        if (!isfinite(v))
            continue;
        if (i % 2)
            v = (double)(x % 100000) / 1000; /* short decimals, as metrics often are */
        render_double(v, a, sizeof(a));
        linear_double(v, b, sizeof(b));
        cr_assert_str_eq(a, b, "%a", v);
    }
    render_double(NAN, a, sizeof(a));
    cr_assert_str_eq(a, "nan");
    render_double(-INFINITY, a, sizeof(a));
    cr_assert_str_eq(a, "-inf");
}

/* ---- layout ---------------------------------------------------------------------- */

Test(layout, terminal_width_prefers_columns_then_the_tty_then_80)
{
    cr_assert_eq(render_term_width("120", 0), 120);
    cr_assert_eq(render_term_width("120", 90), 120);
    cr_assert_eq(render_term_width(NULL, 90), 90);
    cr_assert_eq(render_term_width(NULL, 0), 80);
    cr_assert_eq(render_term_width("", 0), 80);
    cr_assert_eq(render_term_width("wide", 0), 80, "junk is ignored");
    cr_assert_eq(render_term_width("80x", 100), 100);
    cr_assert_eq(render_term_width("-5", 0), 80);
    cr_assert_eq(render_term_width("5", 0), RENDER_MIN_WIDTH);
    cr_assert_eq(render_term_width("99999999999999999999999", 0), RENDER_MAX_WIDTH);
    cr_assert_eq(render_term_width(NULL, 5000), RENDER_MAX_WIDTH);
}

Test(layout, fold_splits_columns_into_groups_that_fit)
{
    size_t w[] = {10, 10, 10, 10, 10}, starts[5];
    /* 10 + 3 * (2 + 10) = 46 > 40: two columns per group */
    cr_assert_eq(render_fold(10, w, 5, 40, 2, starts), 3);
    cr_assert_eq(starts[0], 0);
    cr_assert_eq(starts[1], 2);
    cr_assert_eq(starts[2], 4);
    /* exactly the width fits */
    cr_assert_eq(render_fold(10, w, 5, 70, 2, starts), 1);
    cr_assert_eq(render_fold(10, w, 5, 69, 2, starts), 2);
    cr_assert_eq(starts[1], 4);
}

Test(layout, fold_gives_a_too_wide_column_its_own_group)
{
    size_t w[] = {5, 100, 5}, starts[3];
    cr_assert_eq(render_fold(10, w, 3, 40, 2, starts), 3);
    cr_assert_eq(starts[1], 1);
    cr_assert_eq(starts[2], 2);
    cr_assert_eq(render_fold(10, w, 0, 40, 2, starts), 0);
}

/* ---- escaping -------------------------------------------------------------------- */

Test(escape, xml_entities_for_the_five_specials)
{
    char b[128];
    size_t n = render_xml_escape("a&b <c> \"d\" 'e'", b, sizeof(b));
    cr_assert_str_eq(b, "a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos;");
    cr_assert_eq(n, strlen(b));
}

Test(escape, xml_replaces_what_xml_cannot_hold)
{
    char b[64];
    render_xml_escape("x\x01y\tz\xffé\xc0\xaf", b, sizeof(b));
    cr_assert_str_eq(b, "x?y\tz?é??");
    render_xml_escape("\xed\xa0\x80", b, sizeof(b)); /* a UTF-16 surrogate */
    cr_assert_str_eq(b, "???");
    render_xml_escape("\xe2\x82", b, sizeof(b)); /* cut short */
    cr_assert_str_eq(b, "??");
}

Test(escape, xml_reports_the_length_it_needs)
{
    char b[6];
    size_t n = render_xml_escape("<<<<", b, sizeof(b));
    cr_assert_eq(n, 16);
    cr_assert_str_eq(b, "&lt;", "whole entities only");
    char *out = NULL;
    char big[2000];
    memset(big, '&', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CAPTURE(out, render_xml_put(f, big));
    cr_assert_eq(strlen(out), 5 * (sizeof(big) - 1));
    free(out);
}

Test(escape, csv_fields)
{
    char *out = NULL;
    CAPTURE(out, {
        render_csv_put(f, "plain");
        fputc('|', f);
        render_csv_put(f, "a,b");
        fputc('|', f);
        render_csv_put(f, "say \"hi\"");
        fputc('|', f);
        render_csv_put(f, "two\nlines");
        fputc('|', f);
        render_csv_put(f, " padded");
        fputc('|', f);
        render_csv_put(f, "");
    });
    cr_assert_str_eq(out, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|\" padded\"|");
    free(out);
}

/* ---- filter keys ----------------------------------------------------------------- */

static const char *keys_of(const char *a, const char *b, size_t cap)
{
    static char out[1024];
    struct render_key k[16];
    size_t n = render_expr_keys(a, k, 0, cap);
    n = render_expr_keys(b, k, n, cap);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char lab[300];
        size_t l = strlen(out);
        render_key_label(&k[i], lab, sizeof(lab));
        snprintf(out + l, sizeof(out) - l, "%s[%s]", i ? " " : "", lab);
    }
    return out;
}

Test(keys, terms_of_every_kind_in_order)
{
    cr_assert_str_eq(keys_of("metrics.loss ASC, start_time DESC",
                             "params.lr = '0.01' and tags.team IN ('a', 'b') or metrics.acc > .5",
                             16),
                     "[metrics.loss] [params.lr] [tags.team] [metrics.acc]");
}

Test(keys, aggregates_quoted_keys_and_case)
{
    cr_assert_str_eq(keys_of("max( metrics.acc ) DESC", "min(metrics.loss) < 1", 16),
                     "[max(metrics.acc)] [min(metrics.loss)]");
    cr_assert_str_eq(keys_of("metrics.`val loss` > 1 AND PARAMS.\"my key\" = 'x'", NULL, 16),
                     "[metrics.val loss] [params.my key]");
    cr_assert_str_eq(keys_of("METRIC.Loss > 1 and param.a-b/c:d = 'x'", NULL, 16),
                     "[metrics.Loss] [params.a-b/c:d]");
}

Test(keys, strings_attributes_and_durations_are_not_keys)
{
    cr_assert_str_eq(keys_of("name = 'metrics.fake' and start_time > 5m and status = 'RUNNING' "
                             "and attributes.user = \"params.x\"",
                             NULL, 16),
                     "");
    cr_assert_str_eq(keys_of("name = 'it''s metrics.no' or metrics.yes > 1", NULL, 16),
                     "[metrics.yes]");
    cr_assert_str_eq(keys_of("metrics. > 1 and metricsx.a > 1 and min (tags.t) = 'a'", NULL, 16),
                     "[tags.t]");
}

Test(keys, duplicates_are_dropped_and_the_cap_holds)
{
    cr_assert_str_eq(keys_of("metrics.a > 1 and metrics.a < 2", "metrics.a DESC", 16),
                     "[metrics.a]");
    cr_assert_str_eq(keys_of("metrics.a > 1 and metrics.b > 1 and metrics.c > 1", NULL, 2),
                     "[metrics.a] [metrics.b]");
    cr_assert_str_eq(keys_of(NULL, NULL, 16), "");
    cr_assert_str_eq(keys_of("metrics.`never closed", NULL, 16), "");
}
