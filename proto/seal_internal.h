/*
 * seal_internal.h: what seal.c, seal_client.c and seal_key.c share, and
 * nothing outside proto/ sees.
 */
#ifndef TRACK_SEAL_INTERNAL_H
#define TRACK_SEAL_INTERNAL_H

#include <limits.h>
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

/* A version 2 AES-256-GCM key, set once (seal_aead.c: libsodium's state,
 * or OpenSSL's contexts when built with it). All zero: not set. */
struct seal_i_aead {
    crypto_aead_aes256gcm_state st; /* libsodium's; first: 16-aligned */
    void *enc, *dec;                /* OpenSSL's EVP_CIPHER_CTX, per direction */
    int ready;
};

/* Sets a's key to K = BLAKE2b-256 keyed with k of "trk-aes1" || salt
 * (seal.h); K is wiped before returning. 0, or -1 (no memory). */
int seal_i_aead_init(struct seal_i_aead *a, const uint8_t k[crypto_box_BEFORENMBYTES],
                     const uint8_t salt[SEAL2_SALT_BYTES]);
/* Frees and wipes a; safe on an all-zero one. */
void seal_i_aead_clear(struct seal_i_aead *a);
/* Detached GCM: ciphertext c (mlen bytes; c may be m) and mac. 0 or -1. */
int seal_i_aead_encrypt(struct seal_i_aead *a, uint8_t *c, uint8_t mac[SEAL_MAC_BYTES],
                        const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
                        const uint8_t nonce[SEAL2_NONCE_BYTES]);
/* 0 and m (clen bytes; m may be c), or -1 when the tag does not verify
 * (m then holds no plaintext). */
int seal_i_aead_decrypt(struct seal_i_aead *a, uint8_t *m, const uint8_t *c, size_t clen,
                        const uint8_t mac[SEAL_MAC_BYTES], const uint8_t *ad, size_t adlen,
                        const uint8_t nonce[SEAL2_NONCE_BYTES]);

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
