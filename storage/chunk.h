/*
 * chunk.h: the packed metric chunk codec. A chunk holds the n points of one
 * (run, key) that one batch brought: int64 steps, int64 times (ms) and double
 * values, stored as one BLOB row by store_metric.c. This module only turns
 * arrays into bytes and back; it knows nothing of SQLite, allocates nothing
 * and keeps no state, so it is safe to call from any thread.
 *
 * Layout (byte-oriented, so that decoding is a tight loop without bit I/O):
 *
 *   version byte (CHUNK_VERSION), varint n
 *   steps   column, n integers (see below)
 *   times   column, n integers
 *   values  column, n doubles
 *
 * Varints are LEB128 (7 bits a byte, low first, at most 10 bytes). An
 * integer column holds x[0] and x[1] - x[0] as zigzag varints, then the
 * deltas of deltas: a non-zero one as its zigzag varint, a run of r zero
 * ones as the byte 0 followed by varint r. Regular series (step += 1,
 * time += 100 ms) thus cost a few bytes per chunk, not per point. All
 * arithmetic is modulo 2^64, so any int64 round-trips.
 *
 * A value is XORed with the previous value's bits (the first with 0), as in
 * Facebook's Gorilla but byte-wise: the XOR 0 is the single byte 0; otherwise
 * a control byte 1 + 8 * L + T, where L and T count the XOR's leading and
 * trailing zero bytes (L + T <= 7), followed by its 8 - L - T middle bytes,
 * lowest first. Bits are copied, never interpreted, so NaN payloads, ±Inf
 * and -0.0 round-trip exactly.
 *
 * Decoding checks every read against the blob's end, rejects a count larger
 * than the blob could hold (every value takes at least a byte), and requires
 * the columns to end exactly at the blob's end, so truncated or garbage input
 * answers CHUNK_E_CORRUPT instead of being read past.
 */
#ifndef TRACK_CHUNK_H
#define TRACK_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define CHUNK_VERSION 1

enum chunk_code {
    CHUNK_OK = 0,
    CHUNK_E_SPACE = -1,   /* the output is too small */
    CHUNK_E_CORRUPT = -2, /* not a valid chunk */
};

/* The most bytes chunk_encode can write for n points; SIZE_MAX when that
 * does not fit in a size_t. */
size_t chunk_bound(size_t n);

/* Encodes n points into out[0..cap) and sets *len to the bytes written.
 * CHUNK_E_SPACE when cap is too small (cap >= chunk_bound(n) never is);
 * out's content is then unspecified. The arrays may be NULL when n == 0. */
int chunk_encode(const int64_t *steps, const int64_t *times, const double *vals, size_t n,
                 uint8_t *out, size_t cap, size_t *len);

/* Reads the point count of the chunk in buf[0..len) into *n, so a caller can
 * size its arrays. Checks only the header: CHUNK_E_CORRUPT when it is bad or
 * claims more points than len bytes could hold. */
int chunk_decode_header(const uint8_t *buf, size_t len, size_t *n);

/* Decodes the whole chunk in buf[0..len) into the arrays, which hold `cap`
 * points each, and sets *n to the point count. CHUNK_E_SPACE (with *n set to
 * the count needed) when cap is too small, CHUNK_E_CORRUPT when the chunk is
 * not valid; the arrays' content is then unspecified. */
int chunk_decode(const uint8_t *buf, size_t len, int64_t *steps, int64_t *times, double *vals,
                 size_t cap, size_t *n);

#endif
