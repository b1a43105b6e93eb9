/*
 * seal_fuzz.h: what fuzz_seal and seal_seeds share: fixed key seeds (so the
 * generated seeds open in the fuzzer), the fixed clock and ticket, and the
 * modes of an input's first byte.
 */
#ifndef TRACK_SEAL_FUZZ_H
#define TRACK_SEAL_FUZZ_H

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#define SF_NOW INT64_C(1800000000000)

enum sf_mode {
    SF_OPEN = 0,  /* the rest is a frame for seal_server_open */
    SF_REPLY = 1, /* the rest is a reply for seal_client_open_reply (ticket sf_ticket) */
    SF_ROUND = 2, /* the rest is a plaintext: seal, open, tamper, reply, open */
    SF_TEXT = 3,  /* the rest is public key text */
    SF_MODES = 4
};

static const uint8_t sf_ticket[24] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                      13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};

/* the server's (which = 0) or the client's (1) key pair, from a fixed seed */
static inline void sf_keypair(int which, uint8_t pk[32], uint8_t sk[32])
{
    uint8_t seed[crypto_box_SEEDBYTES];
    memset(seed, which ? 0xc1 : 0x5e, sizeof(seed));
    crypto_box_seed_keypair(pk, sk, seed);
}

static inline int64_t sf_clock(void *arg)
{
    (void)arg;
    return SF_NOW;
}

#endif
