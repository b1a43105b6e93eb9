/*
 * seal_internal.h: what seal.c, seal_client.c and seal_key.c share, and
 * nothing outside proto/ sees.
 */
#ifndef TRACK_SEAL_INTERNAL_H
#define TRACK_SEAL_INTERNAL_H

#include <sodium.h>
#include <string.h>

#include "seal.h"

/* Fills err (may be NULL) with code and the formatted message; returns code. */
__attribute__((format(printf, 3, 4))) int seal_i_fail(struct seal_err *err, int code,
                                                      const char *fmt, ...);
/* sodium_init once; SEAL_E_* with a message when libsodium cannot start. */
int seal_i_init_sodium(struct seal_err *err);
/* wire_now_ms, as a clock callback */
int64_t seal_i_default_clock(void *arg);

/* The version 2 AES state of (shared key k, salt): K = BLAKE2b-256 keyed
 * with k of "trk-aes1" || salt (seal.h); K is wiped before returning. */
void seal_i_aes_state(crypto_aead_aes256gcm_state *st, const uint8_t k[crypto_box_BEFORENMBYTES],
                      const uint8_t salt[SEAL2_SALT_BYTES]);

static inline void seal_i_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t seal_i_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

#endif
