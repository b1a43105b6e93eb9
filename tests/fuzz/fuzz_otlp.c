/*
 * fuzz_otlp.c: libFuzzer target for the OTLP trace decoder (daemon/otlp_decode.c),
 * both encodings: the first byte picks protobuf (odd) or JSON (even), the rest is
 * the body. Whatever the bytes, the decoder must return 0 or a 4xx/5xx error with a
 * message, never crash, leak or overrun, and every span it keeps must hold the ids,
 * times and caps the store relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_req r;
    struct otlp_export x;

    if (size < 1)
        return 0;
    memset(&r, 0, sizeof(r));
    memset(&x, 0, sizeof(x));
    x.r = &r;
    /* a copy: the JSON decoder takes a length, never a NUL */
    char *body = malloc(size);
    if (!body)
        return 0;
    memcpy(body, data + 1, size - 1);
    int rc = otlp_decode(&x, data[0] & 1, body, size - 1);
    if (rc && (r.status < 400 || !r.message[0]))
        abort(); /* a failure always says what and how */
    for (size_t g = 0; g < x.n_groups; g++) {
        if (!x.groups[g].experiment[0])
            abort();
        for (size_t i = 0; i < x.groups[g].n; i++) {
            const Track__V1__Span *s = x.groups[g].spans[i];
            if (s->trace_id.len != 16 || s->span_id.len != 8 ||
                (s->parent_span_id.len && s->parent_span_id.len != 8) || s->end_ns < s->start_ns ||
                s->tokens_in < 0 || s->tokens_out < 0 || !(s->cost >= 0) ||
                strlen(s->attributes) > (64u << 10) || strlen(s->model) > 250)
                abort();
        }
    }
    otlp_export_free(&x);
    free(body);
    return 0;
}
