/*
 * wire_number.c: JSON numbers to doubles (wire_number.h), in three steps,
 * each taken only when it is sure to give strtod's answer:
 *
 * 1. The digits. One pass checks RFC 8259's grammar and gathers every digit
 *    into w (mod 2^64) and the explicit exponent. With at most 19
 *    significant digits (leading zeros do not count) w is exact and the
 *    value is w * 10^q; with more, w is read again as the first 19 and the
 *    rest only bound the value: it lies in [w, w + 1) * 10^q.
 * 2. Clinger's fast path: w < 2^53 and |q| <= 22 make w and 10^|q| exact
 *    doubles, so one IEEE multiplication or division rounds once, correctly.
 *    It needs FLT_EVAL_METHOD 0 (no x87 excess precision) and the default
 *    rounding mode, which trackd never changes.
 * 3. Eisel-Lemire (Lemire, "Number Parsing at a Gigabyte per Second",
 *    2021; the form of fast_float's decimal_to_binary): w, normalized to
 *    64 bits, times the top 128 bits of 5^q (wire_pow5.c) gives the top
 *    bits of the value's binary mantissa, the power of two coming from q
 *    directly. The first 64x64 product is enough unless its low bits are
 *    all ones, where the second word of 5^q decides. When more than 19
 *    digits were cut, w and w + 1 are both converted; equal answers are the
 *    answer (rounding is monotone). Ties to even are exact only for
 *    q in [-4, 23], where 5^|q| fits the table's 128 bits exactly, and that
 *    is the only range a decimal of 19 digits can be an exact tie.
 *
 * What none of them decides (w and w + 1 disagree, or the product sits on
 * the boundary outside the exact range: the latter never happens with 19
 * digits by Mushtak and Lemire's proof, kept as a guard) goes to strtod, on
 * a stack copy bounded whatever the input's length: the first 800
 * significant digits and a sticky 1 when any later digit is not zero (a
 * double's halfway points have at most 767), then the exponent.
 */
#include "wire_number.h"

#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W_DIGITS    19 /* any 19 decimal digits fit in 64 bits */
#define SLOW_DIGITS 800
/* The explicit exponent saturates here: no text in memory has 10^15 digits,
 * so a saturated exponent is past both ends of the range whatever the digits. */
#define EXP_CAP 1000000000000000LL

#define MANT_BITS 52
#define INF_BITS  (0x7ffull << MANT_BITS)

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define CLINGER 1
static const double exact10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#endif

static int is_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}

/* The run of digits at s into *w (times 10 a digit, mod 2^64: exact while
 * there are at most 19 in all); the byte after it. */
static const char *digits(const char *s, const char *end, uint64_t *w)
{
    uint64_t v;
    while (end - s >= 8 && wire_eight_digits(s, &v)) {
        *w = *w * 100000000 + v;
        s += 8;
    }
    for (; s < end && is_digit(*s); s++)
        *w = *w * 10 + (uint64_t)(*s - '0');
    return s;
}

/* The digits of a number, integer part then fraction, as one sequence. */
struct digits {
    const char *ib, *fb; /* the integer part's first digit; the fraction's (NULL: none) */
    size_t nint, nfrac;
};

static char digit_at(const struct digits *d, size_t i)
{
    return i < d->nint ? d->ib[i] : d->fb[i - d->nint];
}

/* w * 10^q as a double's bits without the sign: 0 with *bits, -1 undecided. */
static int eisel_lemire(int64_t q, uint64_t w, uint64_t *bits)
{
    if (w == 0 || q < WIRE_POW5_MIN) {
        *bits = 0;
        return 0;
    }
    if (q > WIRE_POW5_MAX) {
        *bits = INF_BITS;
        return 0;
    }
    int lz = __builtin_clzll(w);
    w <<= lz;
    const uint64_t *t = wire_pow5_128[q - WIRE_POW5_MIN];
    unsigned __int128 p = (unsigned __int128)w * t[0];
    uint64_t hi = (uint64_t)(p >> 64), lo = (uint64_t)p;
    /* 55 bits are needed (the mantissa, its hidden bit, a rounding bit and one
     * for the product's top bit); when the 9 below them are all ones a carry
     * from the next word could change them */
    if ((hi & 0x1ff) == 0x1ff) {
        uint64_t hi2 = (uint64_t)(((unsigned __int128)w * t[1]) >> 64);
        lo += hi2;
        if (lo < hi2)
            hi++;
    }
    if (lo == UINT64_MAX && (q < -27 || q > 55))
        return -1;
    int upper = (int)(hi >> 63);
    int shift = upper + 64 - MANT_BITS - 3;
    uint64_t m = hi >> shift;
    /* floor(log2(10^q)) + 63 is (217706 q) >> 16 + 63 over the table's range
     * (an arithmetic shift, as GCC and Clang do it) */
    int32_t e2 = (int32_t)((217706 * (int32_t)q) >> 16) + 63 + upper - lz + 1023;
    if (e2 <= 0) {
        /* subnormal, or rounds up to the smallest normal (no ties here: q < -300) */
        if (-e2 + 1 >= 64) {
            *bits = 0;
            return 0;
        }
        m >>= -e2 + 1;
        m += m & 1;
        m >>= 1;
        e2 = m < (1ull << MANT_BITS) ? 0 : 1;
        *bits = ((uint64_t)e2 << MANT_BITS) | (m & ((1ull << MANT_BITS) - 1));
        return 0;
    }
    /* exactly halfway: round to even rather than up */
    if (lo <= 1 && q >= -4 && q <= 23 && (m & 3) == 1 && (m << shift) == hi)
        m &= ~(uint64_t)1;
    m += m & 1;
    m >>= 1;
    if (m >= (2ull << MANT_BITS)) {
        m = 1ull << MANT_BITS;
        e2++;
    }
    m &= ~(1ull << MANT_BITS);
    *bits = e2 >= 0x7ff ? INF_BITS : ((uint64_t)e2 << MANT_BITS) | m;
    return 0;
}

/* strtod on a bounded copy: significant digits from lead on, x the decimal
 * exponent of 0.DIGITS. */
static double slow(int neg, const struct digits *d, size_t lead, int64_t x)
{
    char buf[SLOW_DIGITS + 48];
    size_t n = 0, total = d->nint + d->nfrac, i;

    if (neg)
        buf[n++] = '-';
    buf[n++] = '0';
    buf[n++] = '.';
    for (i = lead; i < total && i - lead < SLOW_DIGITS; i++)
        buf[n++] = digit_at(d, i);
    for (; i < total; i++)
        if (digit_at(d, i) != '0') {
            buf[n++] = '1';
            break;
        }
    snprintf(buf + n, sizeof(buf) - n, "e%lld", (long long)x);
    return strtod(buf, NULL);
}

const char *wire_json_number(const char *p, const char *end, double *out, int *integral)
{
    struct digits d = {0};
    const char *s = p;
    uint64_t w = 0;
    int64_t e = 0;
    int neg = 0, frac_or_exp = 0;

    if (s < end && *s == '-') {
        neg = 1;
        s++;
    }
    if (s >= end || !is_digit(*s))
        return NULL;
    d.ib = s;
    if (*s == '0') {
        if (++s < end && is_digit(*s))
            return NULL;
    } else
        s = digits(s, end, &w);
    d.nint = (size_t)(s - d.ib);
    if (s < end && *s == '.') {
        d.fb = ++s;
        s = digits(s, end, &w);
        d.nfrac = (size_t)(s - d.fb);
        if (!d.nfrac)
            return NULL;
        frac_or_exp = 1;
    }
    if (s < end && (*s == 'e' || *s == 'E')) {
        int eneg = 0;
        frac_or_exp = 1;
        if (++s < end && (*s == '+' || *s == '-'))
            eneg = *s++ == '-';
        if (s >= end || !is_digit(*s))
            return NULL;
        for (; s < end && is_digit(*s); s++)
            if (e < EXP_CAP)
                e = e * 10 + (*s - '0');
        if (eneg)
            e = -e;
    }
    if (integral)
        *integral = !frac_or_exp;

    int64_t q = e - (int64_t)d.nfrac;
    size_t total = d.nint + d.nfrac, lead = 0;
    int cut = 0;
    if (total > W_DIGITS) {
        if (*d.ib == '0') /* "0.000ddd": the zeros do not count */
            for (lead = 1; lead < total && digit_at(&d, lead) == '0'; lead++)
                ;
        if (total - lead > W_DIGITS) {
            cut = 1;
            w = 0;
            for (size_t i = lead; i < lead + W_DIGITS; i++)
                w = w * 10 + (uint64_t)(digit_at(&d, i) - '0');
            /* the value is 0.DIGITS * 10^(e + nint - lead) */
            q = e + (int64_t)d.nint - (int64_t)lead - W_DIGITS;
        }
    }
#ifdef CLINGER
    if (!cut && q >= -22 && q <= 22 && w <= (1ull << 53)) {
        double v = (double)w;
        v = q < 0 ? v / exact10[-q] : v * exact10[q];
        *out = neg ? -v : v;
        return s;
    }
#endif
    uint64_t bits, bits1;
    if (eisel_lemire(q, w, &bits) || (cut && (eisel_lemire(q, w + 1, &bits1) || bits1 != bits))) {
        *out = slow(neg, &d, lead, e + (int64_t)d.nint - (int64_t)lead);
        return s;
    }
    bits |= (uint64_t)neg << 63;
    memcpy(out, &bits, sizeof(*out));
    return s;
}
