/*
 * wire.c: helpers of wire.h.
 */
#include "wire.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const code_names[] = {
    "OK",          "INVALID_ARGUMENT", "NOT_FOUND",         "ALREADY_EXISTS",
    "CONFLICT",    "UNAUTHENTICATED",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "UNAVAILABLE", "INTERNAL",
};

const char *wire_code_name(int code)
{
    if (code < 0 || code >= (int)(sizeof(code_names) / sizeof(code_names[0])))
        return "UNKNOWN";
    return code_names[code];
}

void wire_hex(const uint8_t id[16], char out[33])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[32] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int wire_unhex(const char *hex, uint8_t id[16])
{
    if (!hex || strlen(hex) != 32)
        return -1;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int wire_is_run_prefix(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 4 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (hexval(s[i]) < 0)
            return 0;
    return 1;
}

int64_t wire_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wire_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

#define NUL_WALK_DEPTH 32 /* deeper than any message of track.proto */

static int nul_walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end,
                    int depth, char *field, size_t cap, size_t at)
{
    uint64_t tag, n;

    if (depth > NUL_WALK_DEPTH)
        return 0;
    while (p < end) {
        if (wire_varint(&p, end, &tag))
            return 0;
        switch (tag & 7) {
        case 0:
            if (wire_varint(&p, end, &n))
                return 0;
            continue;
        case 1:
            if ((size_t)(end - p) < 8)
                return 0;
            p += 8;
            continue;
        case 5:
            if ((size_t)(end - p) < 4)
                return 0;
            p += 4;
            continue;
        case 2:
            break;
        default:
            return 0; /* groups: not in track.proto, and unpack refused them */
        }
        if (wire_varint(&p, end, &n) || n > (uint64_t)(end - p))
            return 0;
        const ProtobufCFieldDescriptor *fd =
            tag >> 3 <= UINT32_MAX
                ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3))
                : NULL;
        if (fd && (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE)) {
            int w = snprintf(field + at, at < cap ? cap - at : 0, "%s%s", at ? "." : "", fd->name);
            size_t next = w > 0 && at + (size_t)w < cap ? at + (size_t)w : at;
            if (fd->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, (size_t)n))
                return 1;
            if (fd->type == PROTOBUF_C_TYPE_MESSAGE &&
                nul_walk(fd->descriptor, p, p + n, depth + 1, field, cap, next))
                return 1;
            if (at < cap)
                field[at] = '\0';
        }
        p += n;
    }
    return 0;
}

int wire_find_nul_string(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                         char *field, size_t cap)
{
    if (cap)
        field[0] = '\0';
    if (!desc || !buf || !cap)
        return 0;
    return nul_walk(desc, buf, buf + len, 0, field, cap, 0);
}
