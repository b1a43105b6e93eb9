/*
 * render.c: the pure rendering the review commands share (see render.h).
 * No I/O but the FILE the caller hands in, no globals, no libtrack: the unit
 * tests compile this file alone and check exact strings.
 *
 * Text is UTF-8 throughout. Widths count code points, which is right for the
 * block characters of sparklines and "…", and close enough for run names;
 * a full wcwidth() would need a locale the CLI never sets.
 */
#include "render.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when p does not start
 * one (stray continuation byte, overlong form, surrogate, beyond U+10FFFF,
 * or cut short by the end of the string). *cp receives the code point. */
static size_t utf8_seq(const unsigned char *p, uint32_t *cp)
{
    size_t n;
    uint32_t c = p[0], min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0) {
        n = 2;
        c &= 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        c &= 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

size_t render_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    uint32_t cp;

    while (*p) {
        size_t n = utf8_seq(p, &cp);
        p += n ? n : 1;
        w++;
    }
    return w;
}

void render_fit(const char *s, size_t max, char *buf, size_t len)
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* … */
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0, off = 0;
    uint32_t cp;

    if (len == 0)
        return;
    if (render_width(s) <= max) {
        /* a copy cut at len - 1 bytes (snprintf here warns at -O2 when a
         * caller's literal is longer than its buffer) */
        size_t n = strnlen(s, len - 1);
        memcpy(buf, s, n);
        buf[n] = '\0';
        return;
    }
    if (max == 0) {
        buf[0] = '\0';
        return;
    }
    /* keep max - 1 columns of text, then the ellipsis */
    while (p[off] && w < max - 1) {
        size_t n = utf8_seq(p + off, &cp);
        n = n ? n : 1;
        if (off + n + sizeof(ellipsis) > len)
            break;
        off += n;
        w++;
    }
    if (off + sizeof(ellipsis) > len) {
        buf[0] = '\0'; /* not even the ellipsis fits */
        return;
    }
    memcpy(buf, s, off);
    memcpy(buf + off, ellipsis, sizeof(ellipsis)); /* with its NUL */
}

/* Bytes of the first `cols` display columns of s. */
static size_t cols_bytes(const char *s, size_t cols)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t off = 0, w = 0;
    uint32_t cp;

    while (p[off] && w < cols) {
        size_t n = utf8_seq(p + off, &cp);
        off += n ? n : 1;
        w++;
    }
    return off;
}

void render_fit_middle(const char *s, size_t max, char *buf, size_t len)
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* … */
    size_t w = render_width(s);

    if (w <= max || max < 3) {
        render_fit(s, max, buf, len);
        return;
    }
    /* the end is what tells names apart (lr3e-4 from lr1e-3): it gets the
     * larger half */
    size_t head = (max - 1) / 2, tail = max - 1 - head;
    size_t hb = cols_bytes(s, head), skip = cols_bytes(s, w - tail);
    size_t tb = strlen(s) - skip;
    if (hb + sizeof(ellipsis) - 1 + tb + 1 > len) {
        render_fit(s, max, buf, len);
        return;
    }
    memcpy(buf, s, hb);
    memcpy(buf + hb, ellipsis, sizeof(ellipsis) - 1);
    memcpy(buf + hb + sizeof(ellipsis) - 1, s + skip, tb + 1);
}

void render_pad(FILE *f, const char *s, size_t width, int right, const char *sgr)
{
    size_t w = render_width(s), pad = w < width ? width - w : 0;

    if (right)
        fprintf(f, "%*s", (int)pad, "");
    if (sgr)
        fprintf(f, "\x1b[%sm%s\x1b[0m", sgr, s);
    else
        fputs(s, f);
    if (!right)
        fprintf(f, "%*s", (int)pad, "");
}

void render_num(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "nan");
    else if (isinf(v))
        snprintf(buf, len, v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, len, "%.6g", v == 0 ? 0.0 : v); /* no "-0" */
}

static int round_trips(double v, int prec, char *buf, size_t len)
{
    snprintf(buf, len, "%.*g", prec, v);
    return strtod(buf, NULL) == v;
}

void render_double(double v, char *buf, size_t len)
{
    int lo = 7, hi = 17;

    if (isnan(v) || isinf(v)) {
        render_num(v, buf, len);
        return;
    }
    /* short values ("0.5", "120") are the common case: one try */
    if (round_trips(v, 6, buf, len))
        return;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (round_trips(v, mid, buf, len))
            hi = mid;
        else
            lo = mid + 1;
    }
    snprintf(buf, len, "%.*g", lo, v);
}

/* ---- sparklines -------------------------------------------------------------- */

size_t render_sparkline(const double *v, size_t n, char *buf, size_t len)
{
    static const char *const bars[8] = {"\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83",
                                        "\xe2\x96\x84", "\xe2\x96\x85", "\xe2\x96\x86",
                                        "\xe2\x96\x87", "\xe2\x96\x88"};
    double lo = INFINITY, hi = -INFINITY;
    size_t cells = 0, off = 0;

    if (len == 0)
        return 0;
    buf[0] = '\0';
    if (n > RENDER_SPARK_MAX)
        n = RENDER_SPARK_MAX;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(v[i])) {
            lo = v[i] < lo ? v[i] : lo;
            hi = v[i] > hi ? v[i] : hi;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *cell;
        if (isnan(v[i])) {
            cell = " ";
        } else if (isinf(v[i])) {
            cell = v[i] > 0 ? bars[7] : bars[0];
        } else if (hi > lo) {
            /* (v - lo) / (hi - lo) overflows to inf for a range beyond
             * DBL_MAX; scaling both by 0.5 first keeps it finite */
            double t = (0.5 * v[i] - 0.5 * lo) / (0.5 * hi - 0.5 * lo);
            long k = lround(t * 7);
            cell = bars[k < 0 ? 0 : k > 7 ? 7 : k];
        } else {
            cell = bars[3]; /* a flat line sits mid-height */
        }
        size_t cl = strlen(cell);
        if (off + cl + 1 > len)
            break;
        memcpy(buf + off, cell, cl + 1);
        off += cl;
        cells++;
    }
    return cells;
}

/* ---- layout ------------------------------------------------------------------ */

int render_term_width(const char *columns_env, int tty_cols)
{
    if (columns_env && *columns_env) {
        long v = 0;
        const char *p = columns_env;
        while (*p >= '0' && *p <= '9' && v <= RENDER_MAX_WIDTH) {
            v = v * 10 + (*p - '0');
            p++;
        }
        while (*p >= '0' && *p <= '9') /* a huge number clamps, it is not junk */
            p++;
        if (*p == '\0')
            return v < RENDER_MIN_WIDTH   ? RENDER_MIN_WIDTH
                   : v > RENDER_MAX_WIDTH ? RENDER_MAX_WIDTH
                                          : (int)v;
    }
    if (tty_cols > 0)
        return tty_cols < RENDER_MIN_WIDTH   ? RENDER_MIN_WIDTH
               : tty_cols > RENDER_MAX_WIDTH ? RENDER_MAX_WIDTH
                                             : tty_cols;
    return 80;
}

size_t render_fold(size_t label_w, const size_t *col_w, size_t n, size_t width, size_t gap,
                   size_t *starts)
{
    size_t groups = 0, used = 0;

    for (size_t i = 0; i < n; i++) {
        size_t need = gap + col_w[i];
        if (groups == 0 || used + need > width) {
            starts[groups++] = i;
            used = label_w;
        }
        used += need;
    }
    return groups;
}

/* ---- axes -------------------------------------------------------------------- */

/* Heckbert's "nice numbers" (Graphics Gems, 1990): 1, 2, 5 or 10 times a
 * power of ten, rounded to the nearest or taken as the next above. */
static double nice_num(double x, int round_it)
{
    double e = floor(log10(x)), f = x / pow(10, e), nf;

    if (round_it)
        nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else
        nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * pow(10, e);
}

size_t render_ticks(double lo, double hi, int target, double *out, size_t cap, double *step)
{
    size_t n = 0;

    if (!isfinite(lo) || !isfinite(hi)) {
        lo = 0;
        hi = 1;
    }
    if (lo > hi) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (hi - lo < 1e-300 || !isfinite(hi - lo)) {
        /* one value (or a span too wide to subtract): widen around it */
        double m = fabs(lo) > 1e-300 ? fabs(lo) * 0.1 : 1;
        if (!isfinite(hi - lo)) {
            lo = -1e307;
            hi = 1e307;
        } else {
            lo -= m;
            hi += m;
        }
    }
    if (target < 2)
        target = 2;
    double d = nice_num(nice_num(hi - lo, 0) / target, 1);
    double first = floor(lo / d) * d, last = ceil(hi / d) * d;
    *step = d;
    for (double k = 0; n < cap; k++) {
        double t = first + k * d;
        /* t = k * d from a rounded start: snap to the grid so 0.1 * 3 prints
         * as 0.3, and 0 stays 0 */
        t = round(t / d) * d;
        if (fabs(t) < d * 1e-9)
            t = 0;
        out[n++] = t;
        if (t >= last - d * 1e-9)
            break;
    }
    return n;
}

void render_tick_label(double v, double step, char *buf, size_t len)
{
    if (fabs(v) < step * 1e-9)
        v = 0;
    int dec = step > 0 ? (int)-floor(log10(step) + 1e-9) : 0;
    if (dec < 0)
        dec = 0;
    if (dec > 6 || fabs(v) >= 1e7)
        snprintf(buf, len, "%.4g", v);
    else
        snprintf(buf, len, "%.*f", dec, v);
}

/* ---- escaping ---------------------------------------------------------------- */

size_t render_xml_escape(const char *s, char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t off = 0;
    uint32_t cp;

    if (len)
        buf[0] = '\0';
    while (*p) {
        char one[8];
        const char *rep = one;
        size_t n = utf8_seq(p, &cp), rl;
        if (n == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xfffe ||
            cp == 0xffff) {
            rep = "?";
            n = n ? n : 1;
        } else if (cp == '&') {
            rep = "&amp;";
        } else if (cp == '<') {
            rep = "&lt;";
        } else if (cp == '>') {
            rep = "&gt;";
        } else if (cp == '"') {
            rep = "&quot;";
        } else if (cp == '\'') {
            rep = "&apos;";
        } else {
            memcpy(one, p, n);
            one[n] = '\0';
        }
        rl = strlen(rep);
        if (off + rl < len) {
            memcpy(buf + off, rep, rl + 1);
        } else if (len) {
            buf[off < len ? off : len - 1] = '\0';
            len = 0; /* stop writing; keep counting */
        }
        off += rl;
        p += n;
    }
    return off;
}

void render_xml_put(FILE *f, const char *s)
{
    char small[512];
    size_t need = render_xml_escape(s, small, sizeof(small));

    if (need < sizeof(small)) {
        fputs(small, f);
        return;
    }
    char *big = malloc(need + 1);
    if (!big) {
        fputs("?", f);
        return;
    }
    render_xml_escape(s, big, need + 1);
    fputs(big, f);
    free(big);
}

void render_csv_put(FILE *f, const char *s)
{
    size_t n = strlen(s);
    if (!strpbrk(s, ",\"\r\n") && (n == 0 || (s[0] != ' ' && s[n - 1] != ' '))) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* ---- filter keys ------------------------------------------------------------- */

static int word_is(const char *w, size_t n, const char *const *set)
{
    for (; *set; set++)
        if (strlen(*set) == n && strncasecmp(w, *set, n) == 0)
            return 1;
    return 0;
}

static int is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int is_key_char(char c)
{
    return is_word_char(c) || c == '-' || c == '.' || c == '/' || c == ':';
}

/* Reads a quoted key or string starting at s[*i] (the quote), with a doubled
 * quote or a backslash before the quote standing for the quote and "\\" for a
 * backslash, as filter.c reads them. Returns 0 and the text in out, or -1 when
 * it never closes (*i then points at the end). */
static int read_quoted(const char *s, size_t *i, char *out, size_t cap)
{
    char q = s[*i];
    size_t o = 0;

    for (size_t k = *i + 1; s[k]; k++) {
        char c = s[k];
        if (c == '\\' && (s[k + 1] == q || s[k + 1] == '\\')) {
            c = s[++k];
        } else if (c == q) {
            if (s[k + 1] == q) {
                k++;
            } else {
                *i = k + 1;
                if (cap)
                    out[o < cap ? o : cap - 1] = '\0';
                return 0;
            }
        }
        if (o + 1 < cap)
            out[o] = c;
        o++;
    }
    *i = strlen(s);
    return -1;
}

size_t render_expr_keys(const char *expr, struct render_key *out, size_t n, size_t cap)
{
    static const char *const metric[] = {"metrics", "metric", NULL};
    static const char *const param[] = {"params", "param", "parameter", "parameters", NULL};
    static const char *const tag[] = {"tags", "tag", NULL};
    static const char *const aggs[] = {"min", "max", NULL};
    size_t i = 0;
    int agg = RENDER_AGG_LAST;

    if (!expr)
        return n;
    while (expr[i]) {
        char c = expr[i];
        if (c == '\'' || c == '"' || c == '`') {
            char skip[8];
            read_quoted(expr, &i, skip, sizeof(skip));
            agg = RENDER_AGG_LAST;
            continue;
        }
        if (!is_word_char(c)) {
            i++;
            continue;
        }
        size_t w0 = i;
        while (is_word_char(expr[i]))
            i++;
        size_t wl = i - w0;
        if (word_is(expr + w0, wl, aggs)) {
            size_t k = i;
            while (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n')
                k++;
            if (expr[k] == '(') {
                agg = tolower((unsigned char)expr[w0 + 1]) == 'i' ? RENDER_AGG_MIN : RENDER_AGG_MAX;
                i = k + 1;
                continue;
            }
        }
        int kind = word_is(expr + w0, wl, metric)  ? RENDER_KEY_METRIC
                   : word_is(expr + w0, wl, param) ? RENDER_KEY_PARAM
                   : word_is(expr + w0, wl, tag)   ? RENDER_KEY_TAG
                                                   : 0;
        if (!kind || expr[i] != '.') {
            agg = RENDER_AGG_LAST;
            continue;
        }
        i++;
        struct render_key k = {.kind = kind, .agg = kind == RENDER_KEY_METRIC ? agg : 0};
        agg = RENDER_AGG_LAST;
        if (expr[i] == '`' || expr[i] == '"') {
            if (read_quoted(expr, &i, k.key, sizeof(k.key)))
                continue;
        } else {
            size_t k0 = i;
            while (is_key_char(expr[i]))
                i++;
            if (i - k0 >= sizeof(k.key) || i == k0)
                continue;
            memcpy(k.key, expr + k0, i - k0);
            k.key[i - k0] = '\0';
        }
        if (!k.key[0])
            continue;
        size_t j = 0;
        while (j < n &&
               !(out[j].kind == k.kind && out[j].agg == k.agg && strcmp(out[j].key, k.key) == 0))
            j++;
        if (j == n && n < cap)
            out[n++] = k;
    }
    return n;
}

void render_key_label(const struct render_key *k, char *buf, size_t len)
{
    const char *prefix = k->kind == RENDER_KEY_METRIC  ? "metrics"
                         : k->kind == RENDER_KEY_PARAM ? "params"
                                                       : "tags";
    if (k->kind == RENDER_KEY_METRIC && k->agg != RENDER_AGG_LAST)
        snprintf(buf, len, "%s(%s.%s)", k->agg == RENDER_AGG_MIN ? "min" : "max", prefix, k->key);
    else
        snprintf(buf, len, "%s.%s", prefix, k->key);
}

/* ---- SVG --------------------------------------------------------------------- */

void render_color(size_t i, char buf[8])
{
    /* Tableau's ten: distinct on white and for the common colour blindnesses */
    static const char *const ten[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    if (i < 10) {
        memcpy(buf, ten[i], 8);
        return;
    }
    /* then hues 137.5 degrees apart (never close to the last few), with
     * lightness stepping so that runs 10 apart differ in more than hue */
    double h = fmod((double)(i - 10) * 137.508 + 15, 360) / 60, l = 0.35 + 0.1 * (double)(i % 3);
    double s = 0.75, c = (1 - fabs(2 * l - 1)) * s, x = c * (1 - fabs(fmod(h, 2) - 1));
    double m = l - c / 2, r = 0, g = 0, b = 0;
    switch ((int)h) {
    case 0:
        r = c, g = x;
        break;
    case 1:
        r = x, g = c;
        break;
    case 2:
        g = c, b = x;
        break;
    case 3:
        g = x, b = c;
        break;
    case 4:
        r = x, b = c;
        break;
    default:
        r = c, b = x;
        break;
    }
    snprintf(buf, 8, "#%02x%02x%02x", (unsigned)lround((r + m) * 255),
             (unsigned)lround((g + m) * 255), (unsigned)lround((b + m) * 255));
}

/* Geometry of one panel, in SVG user units. */
#define SVG_W         960
#define SVG_PLOT_X    80 /* left edge of the plot area */
#define SVG_PLOT_W    600
#define SVG_PLOT_H    240
#define SVG_TOP       46 /* from the panel's top to the plot area */
#define SVG_LEGEND_X  710
#define SVG_LEGEND_H  18 /* per legend row */
#define SVG_MAX_TICKS 16

double render_svg_panel_height(size_t n_series)
{
    double plot = SVG_TOP + SVG_PLOT_H + 56,
           legend = SVG_TOP + SVG_LEGEND_H * (double)n_series + 20;
    return plot > legend ? plot : legend;
}

static void data_range(const struct render_panel *p, double *x0, double *x1, double *y0, double *y1,
                       int *any)
{
    *x0 = *y0 = INFINITY;
    *x1 = *y1 = -INFINITY;
    *any = 0;
    for (size_t s = 0; s < p->n_series; s++) {
        const struct render_series *r = &p->series[s];
        for (size_t i = 0; i < r->n; i++) {
            if (!isfinite(r->x[i]) || !isfinite(r->y[i]))
                continue;
            *any = 1;
            *x0 = fmin(*x0, r->x[i]);
            *x1 = fmax(*x1, r->x[i]);
            *y0 = fmin(*y0, r->y[i]);
            *y1 = fmax(*y1, r->y[i]);
        }
    }
    if (!*any) {
        *x0 = *y0 = 0;
        *x1 = *y1 = 1;
    }
}

void render_svg_panel(FILE *f, const struct render_panel *p, double top, const char *xlabel)
{
    double x0, x1, y0, y1, xs, ys, xt[SVG_MAX_TICKS + 2], yt[SVG_MAX_TICKS + 2];
    int any;
    const double px = SVG_PLOT_X, py = top + SVG_TOP, pw = SVG_PLOT_W, ph = SVG_PLOT_H;

    data_range(p, &x0, &x1, &y0, &y1, &any);
    size_t nx = render_ticks(x0, x1, 6, xt, SVG_MAX_TICKS + 2, &xs);
    if (xs < 1) {
        /* x is a step, a whole number: no ticks between two steps */
        double a = floor(x0), b = ceil(x1) > a ? ceil(x1) : a + 1;
        if (b - a < 2) {
            a -= 1;
            b += 1;
        }
        nx = render_ticks(a, b, b - a < 6 ? (int)(b - a) : 6, xt, SVG_MAX_TICKS + 2, &xs);
    }
    size_t ny = render_ticks(y0, y1, 5, yt, SVG_MAX_TICKS + 2, &ys);
    /* the outer ticks are the axis range, so every point lands inside */
    double ax0 = xt[0], ax1 = xt[nx - 1], ay0 = yt[0], ay1 = yt[ny - 1];
    double xsp = ax1 > ax0 ? ax1 - ax0 : 1, ysp = ay1 > ay0 ? ay1 - ay0 : 1;

    fprintf(f,
            "<g class=\"panel\">\n<text x=\"%g\" y=\"%.1f\" font-size=\"15\" "
            "font-weight=\"bold\">",
            px, top + 24);
    render_xml_put(f, p->title);
    fprintf(f, "</text>\n");
    fprintf(f,
            "<rect x=\"%g\" y=\"%.1f\" width=\"%g\" height=\"%g\" fill=\"none\" "
            "stroke=\"#444\"/>\n",
            px, py, pw, ph);
    for (size_t i = 0; i < nx; i++) {
        char lab[48];
        double x = px + (xt[i] - ax0) / xsp * pw;
        render_tick_label(xt[i], xs, lab, sizeof(lab));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x,
                py, x, py + ph);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", x,
                py + ph, x, py + ph + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x,
                py + ph + 19, lab);
    }
    for (size_t i = 0; i < ny; i++) {
        char lab[48];
        double y = py + ph - (yt[i] - ay0) / ysp * ph;
        render_tick_label(yt[i], ys, lab, sizeof(lab));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", px,
                y, px + pw, y);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n",
                px - 5, y, px, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", px - 8, y + 4,
                lab);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", px + pw / 2, py + ph + 40);
    render_xml_put(f, xlabel);
    fprintf(f, "</text>\n");
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %.1f %.1f)\">",
            px - 58, py + ph / 2, px - 58, py + ph / 2);
    render_xml_put(f, p->title);
    fprintf(f, "</text>\n");
    if (!any)
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888\">"
                "no finite values</text>\n",
                px + pw / 2, py + ph / 2);
    for (size_t s = 0; s < p->n_series; s++) {
        const struct render_series *r = &p->series[s];
        char col[8];
        render_color(s, col);
        fprintf(f,
                "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
                "stroke-linejoin=\"round\" points=\"",
                col);
        int first = 1;
        for (size_t i = 0; i < r->n; i++) {
            if (!isfinite(r->x[i]) || !isfinite(r->y[i]))
                continue;
            fprintf(f, "%s%.1f,%.1f", first ? "" : " ", px + (r->x[i] - ax0) / xsp * pw,
                    py + ph - (r->y[i] - ay0) / ysp * ph);
            first = 0;
        }
        fprintf(f, "\"><title>");
        render_xml_put(f, r->name);
        fprintf(f, "</title></polyline>\n");
    }
    for (size_t s = 0; s < p->n_series; s++) {
        char col[8];
        double y = top + SVG_TOP + SVG_LEGEND_H * (double)s;
        render_color(s, col);
        fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"14\" height=\"4\" fill=\"%s\"/>\n",
                SVG_LEGEND_X, y + 5, col);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\">", SVG_LEGEND_X + 20, y + 11);
        render_xml_put(f, p->series[s].name);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</g>\n");
}

void render_svg_open(FILE *f, const char *title, double height)
{
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" "
            "viewBox=\"0 0 %d %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n<title>",
            SVG_W, height, SVG_W, height);
    render_xml_put(f, title);
    fprintf(f, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
}

int render_svg_close(FILE *f)
{
    fprintf(f, "</svg>\n");
    return ferror(f) ? -1 : 0;
}

int render_svg(FILE *f, const char *title, const char *xlabel, const struct render_panel *panels,
               size_t n_panels)
{
    double h = 0, top = 0;

    for (size_t i = 0; i < n_panels; i++)
        h += render_svg_panel_height(panels[i].n_series);
    render_svg_open(f, title, h > 0 ? h : 60);
    for (size_t i = 0; i < n_panels; i++) {
        render_svg_panel(f, &panels[i], top, xlabel);
        top += render_svg_panel_height(panels[i].n_series);
    }
    return render_svg_close(f);
}
