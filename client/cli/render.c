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
