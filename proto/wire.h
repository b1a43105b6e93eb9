/*
 * wire.h: what both ends of the protocol share beyond the generated code:
 * error code names, run id hex form, the clock, and the one helper that
 * hands our const strings to protobuf-c's `char *` fields.
 *
 * Codes: on the wire they are track.v1.Code (0..9); in C APIs they are the
 * negated value (TRACK_E_NOT_FOUND == -TRACK__V1__CODE__NOT_FOUND).
 */
#ifndef TRACK_WIRE_H
#define TRACK_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <limits.h> /* protoc-c 1.4.1 output uses INT_MAX without it */

#include "track.pb-c.h"

#define WIRE_PROTOCOL 1
#define WIRE_ID_BYTES 16

/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN" for anything else. Takes the
 * wire value (>= 0). */
const char *wire_code_name(int code);

/* 16 bytes to 32 lowercase hex characters plus NUL. */
void wire_hex(const uint8_t id[16], char out[33]);
/* Exactly 32 hex characters (either case) to 16 bytes; -1 otherwise. */
int wire_unhex(const char *hex, uint8_t id[16]);
/* 1 when s is 4..32 hex characters (a run id or a prefix of one). */
int wire_is_run_prefix(const char *s);

/* Milliseconds since the epoch (CLOCK_REALTIME), and a monotonic clock. */
int64_t wire_now_ms(void);
int64_t wire_mono_ms(void);

/* Reads a protobuf varint at *p (before end), advancing *p: 0 and *v, or
 * -1 when it is cut short or longer than 10 bytes. */
int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);
/* protobuf-c cuts a string field at its first NUL byte when it unpacks (a
 * C string has no length), so "a\0b" would silently arrive as "a". This
 * walks the packed message `buf` of type `desc` (already known to unpack)
 * and returns 1 when any string field, at any depth, holds a NUL byte,
 * with its path ("log_batch.metrics.key") in `field` (cap bytes); else 0. */
int wire_find_nul_string(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                         char *field, size_t cap);
/* protobuf-c declares string fields `char *` though it never writes them
 * when packing; this is the one place a const string is handed over. */
static inline char *wire_str(const char *s)
{
    return (char *)(uintptr_t)(s ? s : "");
}

#endif
