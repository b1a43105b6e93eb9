/*
 * wire_number.h: a JSON number's text to the double nearest it, bit for bit
 * what strtod gives (round to nearest, ties to even), at a fraction of
 * strtod's cost: the HTTP front's log-batch reads up to 1,000 metric values
 * a request, written by MLflow's client with up to 17 digits (repr(float)),
 * which glibc's strtod reads through its multi-precision path.
 *
 * How (wire_number.c): the digits go into a 64-bit integer w and a decimal
 * exponent q; Clinger's exact path when w < 2^53 and |q| <= 22, else the
 * Eisel-Lemire step (w times a 128-bit 5^q from wire_pow5.c), else, in the
 * rare cases neither can decide (more than 19 significant digits that do
 * not settle it, or a product too close to a rounding boundary), strtod on
 * a bounded copy of the number.
 */
#ifndef TRACK_WIRE_NUMBER_H
#define TRACK_WIRE_NUMBER_H

#include <stdint.h>
#include <string.h>

/* Reads the JSON number at p (RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?
 * ([eE][+-]?[0-9]+)?), never reading at or past end. Returns the byte after
 * it, *out the double nearest its value as strtod rounds it (±HUGE_VAL past
 * the largest double, ±0 or a subnormal at the small end, -0.0 for "-0"),
 * *integral (may be NULL) 1 when it has neither fraction nor exponent.
 * NULL, *out untouched, when no JSON number starts at p, or one starts but
 * breaks the grammar before its end could be ('-' or '.' or an exponent
 * without digits, a 0 followed by a digit: "01"), as a JSON lexer refuses
 * them; whatever follows a complete number is the caller's to judge ("1x"
 * returns the 'x'). */
const char *wire_json_number(const char *p, const char *end, double *out, int *integral);

/* The value of 8 ASCII digits loaded little-endian into x (the first digit
 * in the low byte), in three multiplications (fast_float's
 * parse_eight_digits_unrolled); x must be digits. */
static inline uint64_t wire_eight_digits_value(uint64_t x)
{
    x -= 0x3030303030303030ull; /* the digits, first in the low byte */
    x = (x * 10) + (x >> 8);    /* pairs: 10a + b in every other byte */
    return (((x & 0x000000ff000000ffull) * (100 + (1000000ull << 32))) +
            (((x >> 16) & 0x000000ff000000ffull) * (1 + (10000ull << 32)))) >>
           32;
}

/* 1 with *v their value when the 8 bytes at p (all readable) are ASCII
 * digits, else 0: for the long runs of digits JSON numbers and timestamps
 * have. */
static inline int wire_eight_digits(const char *p, uint64_t *v)
{
    uint64_t x;
    memcpy(&x, p, 8);
    /* each byte 0x30..0x39: high nibble 3, and adding 6 keeps it 3 */
    if (((x & 0xf0f0f0f0f0f0f0f0ull) |
         (((x + 0x0606060606060606ull) & 0xf0f0f0f0f0f0f0f0ull) >> 4)) != 0x3333333333333333ull)
        return 0;
    *v = wire_eight_digits_value(x);
    return 1;
}

/* (wire_pow5.c, generated) 5^q for q in [WIRE_POW5_MIN, WIRE_POW5_MAX]:
 * the top 128 bits, high word first. */
#define WIRE_POW5_MIN   (-342)
#define WIRE_POW5_MAX   308
#define WIRE_POW5_COUNT (WIRE_POW5_MAX - WIRE_POW5_MIN + 1)
extern const uint64_t wire_pow5_128[WIRE_POW5_COUNT][2];

#endif
