/*
 * test_number.c: proto/wire_number.c's wire_json_number against glibc's
 * strtod, bit for bit, and against RFC 8259's number grammar (as a POSIX
 * regex, an independent statement of it) on what it accepts.
 *
 * Every input is copied into a buffer of exactly its length, so ASan stops a
 * read past `end`. Inputs: random doubles of every exponent (and the values
 * a training loop logs) printed as %.17g, %.15g, %g, %.17e and the shortest
 * form that reads back; random decimal strings of 1 to 60 digits at every
 * exponent of the 5^q table and past both ends; the exact halfway points
 * between neighbouring doubles (normal and subnormal), cut and nudged to
 * either side; the edges (0, -0, the subnormal and overflow thresholds,
 * 2^53 + 1, 19 and 20 digit mantissas, huge exponents, a million digits);
 * and random strings over the grammar's alphabet, most of them malformed.
 * TRACK_NUMBER_SCALE=N runs N times as many random cases (default 1:
 * about 5.7 million conversions).
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire_number.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static long scale(long n)
{
    const char *s = getenv("TRACK_NUMBER_SCALE");
    long k = s ? strtol(s, NULL, 10) : 1;
    return n * (k > 0 ? k : 1);
}

static uint64_t bits_of(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

/* Parses s[0..len) from an exact-size copy: the end (NULL when refused), *d. */
static const char *parse(const char *s, size_t len, char **copy, double *d, int *integral)
{
    *copy = malloc(len ? len : 1);
    cr_assert_not_null(*copy);
    memcpy(*copy, s, len);
    return wire_json_number(*copy, *copy + len, d, integral);
}

/* s, a valid JSON number, reads whole and as strtod reads it. */
static void same_as_strtod(const char *s)
{
    size_t len = strlen(s);
    char *copy;
    double d = 12345.0;
    int integral = -1;
    const char *e = parse(s, len, &copy, &d, &integral);
    double want = strtod(s, NULL);
    cr_assert_eq(e, copy + len, "\"%.200s\" (%zu bytes): not read whole (%s)", s, len,
                 e ? "stopped early" : "refused");
    cr_assert_eq(bits_of(d), bits_of(want), "\"%.200s\": %a, strtod %a", s, d, want);
    cr_assert_eq(integral, strcspn(s, ".eE") == len, "\"%.200s\": integral %d", s, integral);
    free(copy);
}

static double random_finite(void)
{
    for (;;) {
        double d = from_bits(rnd());
        if (isfinite(d))
            return d;
    }
}

/* What a training loop logs: losses, accuracies, rates, counts. */
static double random_metric(void)
{
    double u = (double)(rnd() >> 11) * 0x1p-53;
    switch (rnd() % 4) {
    case 0:
        return u;
    case 1:
        return 1.0 / (1.0 + u * 1e3) + 0.05 * u;
    case 2:
        return u * pow(10, (double)(rnd() % 20) - 10);
    default:
        return -u * 1e4;
    }
}

/* The shortest %.*g that strtod reads back as d (round-tripping is monotone
 * in the precision: a longer correct rounding is never farther). */
static void shortest(double d, char *buf, size_t cap)
{
    int lo = 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(buf, cap, "%.*g", mid, d);
        if (bits_of(strtod(buf, NULL)) == bits_of(d))
            hi = mid;
        else
            lo = mid + 1;
    }
    snprintf(buf, cap, "%.*g", lo, d);
}

static void printf_forms(double d)
{
    char buf[64];
    static const char *const fmts[] = {"%.17g", "%.15g", "%g", "%.17e", "%.16g"};
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        snprintf(buf, sizeof(buf), fmts[i], d);
        same_as_strtod(buf);
    }
    shortest(d, buf, sizeof(buf));
    same_as_strtod(buf);
}

Test(number, random_doubles_of_every_exponent_in_printf_forms, .timeout = 600)
{
    rng_state = 1;
    for (long i = 0; i < scale(250000); i++)
        printf_forms(random_finite());
}

Test(number, metric_values_in_printf_forms, .timeout = 600)
{
    rng_state = 2;
    for (long i = 0; i < scale(250000); i++)
        printf_forms(random_metric());
}

/* A random decimal: sign, n digits (leading zeros sometimes), a point
 * somewhere or none, an exponent e (or none when 0 and told so). */
static void random_decimal(char *buf, size_t cap, int n, long e, int force_exp)
{
    size_t at = 0;
    if (rnd() & 1)
        buf[at++] = '-';
    int point = (int)(rnd() % (unsigned)(n + 1)); /* digits before the point; 0: "0." */
    char digits[128];
    for (int i = 0; i < n; i++)
        digits[i] = (char)('0' + rnd() % 10);
    if (rnd() % 4 == 0) /* zeros after the point before the digits */
        point = 0;
    if (point == 0 || point == n) {
        if (point == 0) {
            buf[at++] = '0';
            buf[at++] = '.';
            for (int z = (int)(rnd() % 4); z > 0; z--)
                buf[at++] = '0';
        } else if (digits[0] == '0')
            digits[0] = '1' + (char)(rnd() % 9);
        memcpy(buf + at, digits, (size_t)n);
        at += (size_t)n;
    } else {
        if (digits[0] == '0')
            digits[0] = '1' + (char)(rnd() % 9);
        memcpy(buf + at, digits, (size_t)point);
        at += (size_t)point;
        buf[at++] = '.';
        memcpy(buf + at, digits + point, (size_t)(n - point));
        at += (size_t)(n - point);
    }
    buf[at] = '\0';
    if (e || force_exp)
        snprintf(buf + at, cap - at, "%s%s%ld", rnd() & 1 ? "e" : "E",
                 e >= 0 && (rnd() & 1) ? "+" : "", e);
}

Test(number, random_decimals_of_1_to_60_digits, .timeout = 600)
{
    char buf[256];
    rng_state = 3;
    for (long i = 0; i < scale(1000000); i++) {
        int n = rnd() % 8 ? 1 + (int)(rnd() % 21) : 1 + (int)(rnd() % 60);
        long e = rnd() % 3 ? (long)(rnd() % 700) - 360 : (long)(rnd() % 50) - 25;
        random_decimal(buf, sizeof(buf), n, rnd() % 5 ? e : 0, 0);
        same_as_strtod(buf);
    }
}

/* Every row of the 5^q table, and past it: w of 1 to 19 digits times 10^q. */
Test(number, every_power_of_ten_of_the_table_and_past_it, .timeout = 600)
{
    char buf[64];
    rng_state = 4;
    for (int q = WIRE_POW5_MIN - 30; q <= WIRE_POW5_MAX + 30; q++)
        for (long k = 0; k < scale(300); k++) {
            int n = 1 + (int)(k % 19);
            uint64_t w = rnd() % 10000000000000000000ull;
            for (int i = n; i < 19; i++)
                w /= 10;
            snprintf(buf, sizeof(buf), "%llue%d", (unsigned long long)w, q);
            same_as_strtod(buf);
            snprintf(buf, sizeof(buf), "1e%d", q);
            same_as_strtod(buf);
        }
}

/* Exact halfway points between neighbouring doubles (x87's 64-bit mantissa
 * holds them exactly), printed in full, cut and nudged: ties to even, and
 * the cases only more than 19 digits decide. */
Test(number, halfway_points_exact_cut_and_nudged, .timeout = 600)
{
    if (LDBL_MANT_DIG < 54)
        cr_skip_test("long double cannot hold a halfway point");
    static char buf[1024], cut[1024];
    rng_state = 5;
    for (long i = 0; i < scale(20000); i++) {
        double d;
        switch (i % 4) {
        case 0:
            d = fabs(random_finite());
            break;
        case 1:
            d = from_bits(rnd() % (1ull << 52)); /* subnormal */
            break;
        case 2:
            d = fabs(random_metric());
            break;
        default:
            d = (double)(rnd() >> (rnd() % 64)); /* integers, 2^53 and beyond */
        }
        double up = nextafter(d, INFINITY);
        if (!isfinite(up))
            continue;
        long double mid = ((long double)d + (long double)up) / 2;
        int n = snprintf(buf, sizeof(buf), "%.800Le", mid);
        cr_assert(n > 0 && (size_t)n < sizeof(buf));
        same_as_strtod(buf);
        char *ex = strchr(buf, 'e');
        /* the last nonzero digit of the mantissa, then the cuts and nudges */
        size_t mant = (size_t)(ex - buf), last = mant;
        while (last > 0 && (buf[last - 1] == '0' || buf[last - 1] == '.'))
            last--;
        static const int keep[] = {16, 17, 18, 19, 20, 21, 25, 40, 100};
        for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++) {
            size_t c = (size_t)keep[k] + 1; /* digits and the point */
            if (c >= last)
                continue;
            snprintf(cut, sizeof(cut), "%.*s%s", (int)c, buf, ex); /* just below */
            same_as_strtod(cut);
        }
        snprintf(cut, sizeof(cut), "%.*s1%s", (int)last, buf, ex); /* just above */
        same_as_strtod(cut);
        snprintf(cut, sizeof(cut), "%.*s%s", (int)last, buf, ex); /* exact, no zeros */
        same_as_strtod(cut);
    }
}

Test(number, edges)
{
    /* one number between each pair of spaces */
    static const char cases[] =
        "0 -0 0.0 -0.0 0e0 -0e-5 0E+400 -0.000e-99999 1 -1 0.5 1e-324 2e-324 "
        "2.4703282292062327e-324 2.4703282292062328e-324 4.9406564584124654e-324 "
        "-4.9406564584124654e-324 2.2250738585072011e-308 2.2250738585072012e-308 "
        "2.2250738585072014e-308 2.225073858507201136057409796709131975934819546351645648e-308 "
        "1.7976931348623157e308 1.7976931348623158e308 1.7976931348623159e308 "
        "-1.7976931348623159e308 179769313486231580793728971405301e276 1e308 1e309 -1e309 "
        "9007199254740992 9007199254740993 9007199254740993.0000000001 9007199254740994 "
        "9007199254740995 18014398509481993 1e22 1e23 1e-22 1e-23 8.98846567431158e307 "
        "9999999999999999999 99999999999999999999 18446744073709551615 18446744073709551616 "
        "18446744073709551617 123456789012345678901234567890 "
        "1.00000000000000011102230246251565404236316680908203125 "
        "1.00000000000000011102230246251565404236316680908203124 "
        "1.00000000000000011102230246251565404236316680908203126 "
        "1.000000000000000111022302462515654042363166809082031250000000000000000000000001 0.1 "
        "0.2 0.3 3.141592653589793 2.718281828459045 1.7e12 1700000000000 "
        "1e99999999999999999999 1e-99999999999999999999 0e99999999999999999999 "
        "123e-99999999999999999999 0.00000000000000000000000001e26 "
        "100000000000000000000000000e-26 7.2057594037927933e16 4.35679828e15 5e-324 1e-400 "
        "1e400 -1e-400 2.5e-324 7.4109846876186982e-324 2.2250738585072009e-308 "
        "2.2250738585072013e-308";
    char buf[128];
    for (const char *c = cases; *c; c += strspn(c, " ")) {
        size_t n = strcspn(c, " ");
        cr_assert_lt(n, sizeof(buf));
        memcpy(buf, c, n);
        buf[n] = '\0';
        same_as_strtod(buf);
        c += n;
    }
    for (int i = 0; i <= 100000; i++) {
        snprintf(buf, sizeof(buf), "%d", i - 50000);
        same_as_strtod(buf);
    }
    for (int n = 0; n < 400; n++) { /* 1 and n zeros, 0.(n zeros)1 */
        char big[512] = "1";
        memset(big + 1, '0', (size_t)n);
        big[n + 1] = '\0';
        same_as_strtod(big);
        snprintf(big, sizeof(big), "0.%0*d1", n, 0);
        if (n == 0)
            snprintf(big, sizeof(big), "0.1");
        same_as_strtod(big);
    }
}

/* The thresholds themselves, exactly and either side: half the smallest
 * subnormal (below it 0), the subnormal-normal boundary's midpoint, and
 * DBL_MAX's midpoint with 2^1024 (from it on infinity). */
Test(number, thresholds_exactly_and_either_side)
{
    if (LDBL_MANT_DIG < 54 || LDBL_MAX_EXP <= 1024)
        cr_skip_test("long double cannot hold the thresholds");
    const long double t[] = {ldexpl(1, -1075), ldexpl(1, -1075) * 3,
                             ((long double)from_bits((1ull << 52) - 1) + DBL_MIN) / 2,
                             ldexpl(1, 1024) - ldexpl(1, 970), ldexpl(1, 1024)};
    static char buf[1024], side[1024];
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int n = snprintf(buf, sizeof(buf), "%.800Le", t[i]);
        cr_assert(n > 0 && (size_t)n < sizeof(buf));
        same_as_strtod(buf);
        char *ex = strchr(buf, 'e');
        size_t last = (size_t)(ex - buf);
        while (buf[last - 1] == '0')
            last--;
        snprintf(side, sizeof(side), "%.*s1%s", (int)last, buf, ex);
        same_as_strtod(side);
        snprintf(side, sizeof(side), "-%.*s%s", (int)(last < 20 ? last : 20), buf, ex);
        same_as_strtod(side);
        /* just below: the last digit (never a 0 here) one less, then nines */
        memcpy(side, buf, last);
        cr_assert(side[last - 1] > '0' && side[last - 1] <= '9');
        side[last - 1]--;
        snprintf(side + last, sizeof(side) - last, "999%s", ex);
        same_as_strtod(side);
    }
}

/* A million digits each way: bounded work and stack, strtod's answers. */
Test(number, a_million_digits)
{
    size_t n = 1000000;
    char *s = malloc(n + 64);
    cr_assert_not_null(s);
    memset(s, '7', n);
    s[n] = '\0';
    same_as_strtod(s); /* inf */
    memcpy(s, "0.", 2);
    memset(s + 2, '0', n - 2);
    snprintf(s + n, 64, "1e%zu", n - 2); /* 0.000...1e(n-2): 1e-1 */
    same_as_strtod(s);
    snprintf(s + n, 64, "7e%zu", n - 300); /* 7e-299 */
    same_as_strtod(s);
    /* 1.(zeros)1: just above 1 by far less than an ulp, decided by strtod */
    memcpy(s, "1.", 2);
    snprintf(s + n, 64, "1");
    same_as_strtod(s);
    /* the halfway point 1 + 2^-53 followed by zeros and a final 1 */
    const char *h = "1.00000000000000011102230246251565404236316680908203125";
    size_t hl = strlen(h);
    memcpy(s, h, hl);
    memset(s + hl, '0', n - hl);
    s[n] = '\0';
    same_as_strtod(s);
    snprintf(s + n, 64, "1");
    same_as_strtod(s);
    free(s);
}

/* RFC 8259's number, anchored: the reference for what is accepted. */
static regex_t grammar;

static void grammar_init(void)
{
    cr_assert_eq(regcomp(&grammar, "^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?$",
                         REG_EXTENDED | REG_NOSUB),
                 0);
}

static int json_number(const char *s)
{
    return regexec(&grammar, s, 0, NULL, 0) == 0;
}

/* s read whole iff the grammar takes it whole; a prefix it stops at is
 * itself a number, with strtod's value. */
static void as_the_grammar_says(const char *s)
{
    size_t len = strlen(s);
    char *copy;
    double d;
    int integral;
    const char *e = parse(s, len, &copy, &d, &integral);
    int ok = json_number(s);
    cr_assert_eq(e == copy + len, ok, "\"%s\": read whole %d, grammar %d", s, e == copy + len, ok);
    if (e) {
        char pre[64];
        size_t k = (size_t)(e - copy);
        cr_assert_lt(k, sizeof(pre));
        memcpy(pre, s, k);
        pre[k] = '\0';
        cr_assert(json_number(pre), "\"%s\": stopped after \"%s\", not a number", s, pre);
        cr_assert_eq(bits_of(d), bits_of(strtod(pre, NULL)), "\"%s\": %a", s, d);
    }
    free(copy);
}

Test(number, malformed_refused_where_the_grammar_refuses, .init = grammar_init)
{
    static const char *const cases[] = {
        "",      "-",        "+",         "+1",    ".5",    "-.5",  "1.",   "-1.",   "1.e5",
        "01",    "-01",      "00",        "0.",    "1e",    "1e+",  "1E-",  "1e+-1", "0x10",
        "0x",    "Infinity", "-Infinity", "NaN",   "nan",   "inf",  "1 ",   " 1",    "1,",
        "1.5.5", "1e5.5",    "--1",       "1_000", "1e1e1", "1ee1", "e1",   "E",     ".",
        "-e1",   "0e",       "0.e1",      "1.0e",  "1.0E+", "\t1",  "1\n",  "1f",    "1d",
        "1L",    "0b1",      "1,5",       "١",     "00.5",  "-00",  "1e0x", "0.0.0", "-0-"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        as_the_grammar_says(cases[i]);
    cr_assert_null(wire_json_number("1", "1", NULL, NULL), "an empty range is no number");
    regfree(&grammar);
}

Test(number, random_strings_of_the_grammars_alphabet, .init = grammar_init, .timeout = 600)
{
    static const char alphabet[] = "0123456789000111.eE+-.-x ";
    char s[16];
    rng_state = 6;
    for (long i = 0; i < scale(1000000); i++) {
        size_t n = rnd() % 12;
        for (size_t k = 0; k < n; k++)
            s[k] = alphabet[rnd() % (sizeof(alphabet) - 1)];
        s[n] = '\0';
        as_the_grammar_says(s);
    }
    regfree(&grammar);
}
