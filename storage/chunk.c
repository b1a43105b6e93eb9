/*
 * chunk.c: encoder and decoder of packed metric chunks; the layout is
 * described in chunk.h. Owns nothing but the byte format: no allocation, no
 * state, no SQLite.
 *
 * Speed matters on both sides (the daemon encodes every batch it stores;
 * history reads decode every chunk they touch), so the loops are byte-wise
 * with a one-byte fast path for varints and 8-byte unaligned loads for
 * values when the blob has room for them. Every read is still checked
 * against the blob's end.
 */
#include <string.h>

#include "chunk.h"

struct wbuf {
    uint8_t *p;
    uint8_t *end;
};

static inline uint64_t zz_enc(uint64_t v)
{
    return (v << 1) ^ (0 - (v >> 63));
}

static inline uint64_t zz_dec(uint64_t z)
{
    return (z >> 1) ^ (0 - (z & 1));
}

static inline size_t varint_len(uint64_t v)
{
    if (v < 0x80)
        return 1;
    return (size_t)(63 - __builtin_clzll(v)) / 7 + 1;
}

static inline uint64_t load64le(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void store64le(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}

static inline int put_varint(struct wbuf *w, uint64_t v)
{
    uint8_t *p = w->p;

    if ((size_t)(w->end - p) < varint_len(v))
        return -1;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    w->p = p;
    return 0;
}

/* The one-byte case inline; the rest (and every bound check) out of line. */
static int get_varint_slow(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;

    for (unsigned k = 0; k < 10; k++) {
        if (p >= end)
            return -1;
        uint8_t b = *p++;
        /* the tenth byte may only carry bit 63 */
        if (k == 9 && b > 1)
            return -1;
        v |= (uint64_t)(b & 0x7f) << (7 * k);
        if (b < 0x80) {
            *out = v;
            *pp = p;
            return 0;
        }
    }
    return -1;
}

static inline int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;

    if (p < end && *p < 0x80) {
        *out = *p;
        *pp = p + 1;
        return 0;
    }
    return get_varint_slow(pp, end, out);
}

static int enc_ints(struct wbuf *w, const int64_t *x, size_t n)
{
    uint64_t prev, d, run = 0;

    if (n == 0)
        return 0;
    prev = (uint64_t)x[0];
    if (put_varint(w, zz_enc(prev)))
        return -1;
    if (n == 1)
        return 0;
    d = (uint64_t)x[1] - prev;
    prev = (uint64_t)x[1];
    if (put_varint(w, zz_enc(d)))
        return -1;
    for (size_t i = 2; i < n; i++) {
        uint64_t cur = (uint64_t)x[i];
        uint64_t nd = cur - prev;
        uint64_t dod = nd - d;

        d = nd;
        prev = cur;
        if (dod == 0) {
            run++;
            continue;
        }
        if (run) {
            if (put_varint(w, 0) || put_varint(w, run))
                return -1;
            run = 0;
        }
        if (put_varint(w, zz_enc(dod)))
            return -1;
    }
    if (run && (put_varint(w, 0) || put_varint(w, run)))
        return -1;
    return 0;
}

static int dec_ints(const uint8_t **pp, const uint8_t *end, int64_t *x, size_t n)
{
    const uint8_t *p = *pp;
    uint64_t v, prev, d;
    size_t i = 2;

    if (n == 0)
        return 0;
    if (get_varint(&p, end, &v))
        return -1;
    prev = zz_dec(v);
    x[0] = (int64_t)prev;
    if (n > 1) {
        if (get_varint(&p, end, &v))
            return -1;
        d = zz_dec(v);
        prev += d;
        x[1] = (int64_t)prev;
        while (i < n) {
            if (get_varint(&p, end, &v))
                return -1;
            if (v != 0) {
                d += zz_dec(v);
                prev += d;
                x[i++] = (int64_t)prev;
                continue;
            }
            if (get_varint(&p, end, &v) || v == 0 || v > n - i)
                return -1;
            for (size_t k = (size_t)v; k; k--) {
                prev += d;
                x[i++] = (int64_t)prev;
            }
        }
    }
    *pp = p;
    return 0;
}

static int enc_vals(struct wbuf *w, const double *vals, size_t n)
{
    uint8_t *p = w->p;
    uint8_t *end = w->end;
    uint64_t prev = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t bits, x, m;
        unsigned lz, tz, s;

        memcpy(&bits, &vals[i], sizeof bits);
        x = bits ^ prev;
        prev = bits;
        if (x == 0) {
            if (p >= end)
                return -1;
            *p++ = 0;
            continue;
        }
        lz = (unsigned)__builtin_clzll(x) >> 3;
        tz = (unsigned)__builtin_ctzll(x) >> 3;
        s = 8 - lz - tz;
        if ((size_t)(end - p) < 1 + (size_t)s)
            return -1;
        *p++ = (uint8_t)(1 + 8 * lz + tz);
        m = x >> (8 * tz);
        if (end - p >= 8) {
            store64le(p, m);
        } else {
            for (unsigned k = 0; k < s; k++)
                p[k] = (uint8_t)(m >> (8 * k));
        }
        p += s;
    }
    w->p = p;
    return 0;
}

static int dec_vals(const uint8_t **pp, const uint8_t *end, double *vals, size_t n)
{
    const uint8_t *p = *pp;
    uint64_t prev = 0;

    for (size_t i = 0; i < n; i++) {
        if (p >= end)
            return -1;
        unsigned c = *p++;
        if (c != 0) {
            unsigned lz, tz, s;
            uint64_t m;

            c -= 1;
            lz = c >> 3;
            tz = c & 7;
            if (c >= 64 || lz + tz > 7)
                return -1;
            s = 8 - lz - tz;
            if ((size_t)(end - p) < s)
                return -1;
            if (end - p >= 8) {
                m = load64le(p);
                if (s < 8)
                    m &= ((uint64_t)1 << (8 * s)) - 1;
            } else {
                m = 0;
                for (unsigned k = 0; k < s; k++)
                    m |= (uint64_t)p[k] << (8 * k);
            }
            p += s;
            prev ^= m << (8 * tz);
        }
        memcpy(&vals[i], &prev, sizeof prev);
    }
    *pp = p;
    return 0;
}

size_t chunk_bound(size_t n)
{
    /* header 1 + 10; per point at most 10 + 10 bytes of integers (a lone
     * zero delta-of-delta costs 2) and 9 bytes of value */
    if (n > (SIZE_MAX - 11) / 29)
        return SIZE_MAX;
    return 11 + 29 * n;
}

int chunk_encode(const int64_t *steps, const int64_t *times, const double *vals, size_t n,
                 uint8_t *out, size_t cap, size_t *len)
{
    struct wbuf w = {out, out + cap};

    if (cap < 1)
        return CHUNK_E_SPACE;
    *w.p++ = CHUNK_VERSION;
    if (put_varint(&w, n) || enc_ints(&w, steps, n) || enc_ints(&w, times, n) ||
        enc_vals(&w, vals, n))
        return CHUNK_E_SPACE;
    *len = (size_t)(w.p - out);
    return CHUNK_OK;
}

static int read_header(const uint8_t **pp, const uint8_t *end, size_t *n)
{
    const uint8_t *p = *pp;
    uint64_t v;

    if (p >= end || *p != CHUNK_VERSION)
        return CHUNK_E_CORRUPT;
    p++;
    if (get_varint(&p, end, &v))
        return CHUNK_E_CORRUPT;
    /* every value takes at least one byte */
    if (v > (uint64_t)(end - p))
        return CHUNK_E_CORRUPT;
    *n = (size_t)v;
    *pp = p;
    return CHUNK_OK;
}

int chunk_decode_header(const uint8_t *buf, size_t len, size_t *n)
{
    const uint8_t *p = buf;

    if (buf == NULL)
        return CHUNK_E_CORRUPT;
    return read_header(&p, buf + len, n);
}

int chunk_decode(const uint8_t *buf, size_t len, int64_t *steps, int64_t *times, double *vals,
                 size_t cap, size_t *n)
{
    const uint8_t *p = buf;
    const uint8_t *end;
    size_t count;
    int rc;

    if (buf == NULL)
        return CHUNK_E_CORRUPT;
    end = buf + len;
    rc = read_header(&p, end, &count);
    if (rc)
        return rc;
    if (count > cap) {
        *n = count;
        return CHUNK_E_SPACE;
    }
    if (dec_ints(&p, end, steps, count) || dec_ints(&p, end, times, count) ||
        dec_vals(&p, end, vals, count) || p != end)
        return CHUNK_E_CORRUPT;
    *n = count;
    return CHUNK_OK;
}
