/*
 * test_wire.c: proto/wire.c's frame helpers: wire_varint, and
 * wire_find_nul_string, which finds the string fields protobuf-c would cut
 * at a NUL byte when it unpacks them.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "wire.h"

/* Appends a length-delimited field (length under 128) to o. */
static size_t put(uint8_t *o, unsigned field, const void *s, size_t n)
{
    size_t at = 0;
    unsigned tag = field << 3 | 2;
    while (tag >= 0x80) {
        o[at++] = (uint8_t)(tag | 0x80);
        tag >>= 7;
    }
    o[at++] = (uint8_t)tag;
    cr_assert_lt(n, 128);
    o[at++] = (uint8_t)n;
    memcpy(o + at, s, n);
    return at + n;
}

/* Request{request_id, log_batch{run, tags: [KeyValue{key, value}]}}. */
static size_t frame(uint8_t *o, const char *key, size_t key_len, const char *value,
                    size_t value_len)
{
    uint8_t kv[64], lb[128], rid[16];
    size_t nkv = 0, nlb = 0, n = 0;
    memset(rid, 0, sizeof rid); /* NUL bytes in a bytes field are data */
    nkv += put(kv + nkv, 1, key, key_len);
    nkv += put(kv + nkv, 2, value, value_len);
    nlb += put(lb + nlb, 1, "abcd", 4);
    nlb += put(lb + nlb, 3, kv, nkv); /* tags = 3 */
    n += put(o + n, 1, rid, 16);
    n += put(o + n, 18, lb, nlb); /* log_batch = 18 */
    return n;
}

Test(wire, varints_round_and_cut)
{
    const uint8_t one[] = {0x01}, big[] = {0xac, 0x02}, cut[] = {0x80, 0x80};
    const uint8_t *p;
    uint64_t v = 0;
    p = one;
    cr_assert_eq(wire_varint(&p, one + 1, &v), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(p, one + 1);
    p = big;
    cr_assert_eq(wire_varint(&p, big + 2, &v), 0);
    cr_assert_eq(v, 300);
    p = cut;
    cr_assert_eq(wire_varint(&p, cut + 2, &v), -1);
    uint8_t eleven[11];
    memset(eleven, 0xff, sizeof eleven);
    p = eleven;
    cr_assert_eq(wire_varint(&p, eleven + 11, &v), -1, "an 11-byte varint");
}

Test(wire, a_nul_in_a_nested_string_is_found_with_its_path)
{
    uint8_t buf[256];
    char field[64];
    size_t n = frame(buf, "lr\0x", 4, "1", 1);
    cr_assert_eq(wire_find_nul_string(&track__v1__request__descriptor, buf, n, field, sizeof field),
                 1);
    cr_assert_str_eq(field, "log_batch.tags.key");
    n = frame(buf, "lr", 2, "a\0", 2);
    cr_assert_eq(wire_find_nul_string(&track__v1__request__descriptor, buf, n, field, sizeof field),
                 1);
    cr_assert_str_eq(field, "log_batch.tags.value");
}

Test(wire, clean_strings_and_nul_bytes_in_bytes_fields_are_not_flagged)
{
    uint8_t buf[256];
    char field[64] = "stale";
    size_t n = frame(buf, "lr", 2, "1", 1);
    cr_assert_eq(wire_find_nul_string(&track__v1__request__descriptor, buf, n, field, sizeof field),
                 0);
    cr_assert_str_eq(field, "");
    /* the walk agrees with protobuf-c about the frame */
    Track__V1__Request *rq = track__v1__request__unpack(NULL, n, buf);
    cr_assert_not_null(rq);
    cr_assert_str_eq(rq->log_batch->tags[0]->key, "lr");
    track__v1__request__free_unpacked(rq, NULL);
}

Test(wire, damaged_frames_and_small_buffers_are_safe)
{
    uint8_t buf[256];
    char field[8];
    size_t n = frame(buf, "lr\0x", 4, "1", 1);
    /* every prefix: never read past it, never more than cap bytes written */
    for (size_t len = 0; len < n; len++) {
        int r =
            wire_find_nul_string(&track__v1__request__descriptor, buf, len, field, sizeof field);
        cr_assert(r == 0 || r == 1);
        cr_assert_lt(strlen(field), sizeof field);
    }
    cr_assert_eq(wire_find_nul_string(&track__v1__request__descriptor, buf, n, field, sizeof field),
                 1, "a path longer than cap still finds the NUL");
    cr_assert_eq(wire_find_nul_string(NULL, buf, n, field, sizeof field), 0);
}
