/*
 * seal_seeds.c: writes a seed corpus for fuzz_seal into a directory: valid
 * sealed requests in both envelope versions (fixed keys and clock of
 * seal_fuzz.h, so they open in the fuzzer) of a few sizes, replies to the
 * fuzzer's fixed ticket (version 2 ones reach only the MAC there: their key
 * is a client object's own salt's), plaintexts
 * for the round-trip mode, and public key texts good and bad. Generated at
 * test time so no binary files live in the repository.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seal.h"
#include "seal_fuzz.h"

static int n_written;

static int emit(const char *dir, uint8_t mode, const uint8_t *p, size_t n)
{
    char path[1024];
    FILE *f;
    snprintf(path, sizeof(path), "%s/seed-%02d", dir, n_written++);
    f = fopen(path, "wb");
    if (!f)
        return -1;
    if (fwrite(&mode, 1, 1, f) != 1 || (n && fwrite(p, 1, n, f) != n)) {
        fclose(f);
        return -1;
    }
    return fclose(f);
}

static int known(void *arg, const uint8_t pk[SEAL_PUBLIC_BYTES])
{
    (void)pk;
    (void)arg;
    return 1;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {0, 1, 16, 100, 1000};
    uint8_t spk[32], ssk[32], cpk[32], csk[32], body[1000];
    struct seal_client *c = NULL;
    struct seal_server *s = NULL;
    struct seal_server_opts o = {.key_known = known, .clock_ms = sf_clock};
    struct seal_err err;
    struct seal_ticket t;
    struct seal_peer peer;
    char text[SEAL_KEY_TEXT_BYTES];
    int rc = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: seal_seeds DIR\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    sf_keypair(0, spk, ssk);
    sf_keypair(1, cpk, csk);
    if (seal_client_new(csk, cpk, spk, &c, &err) != 0 || seal_server_new(&o, ssk, &s, &err) != 0) {
        fprintf(stderr, "seal_seeds: %s\n", err.msg);
        return 1;
    }
    seal_client_set_clock(c, sf_clock, NULL);
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)(i * 7 + 3);
    memset(&peer, 0, sizeof(peer));
    memcpy(peer.pk, cpk, 32);
    memcpy(peer.ticket.nonce, sf_ticket, 24);
    peer.ts_ms = SF_NOW;
    for (int v = SEAL_VERSION; v <= SEAL_VERSION_AES && rc == 0; v++) {
        if (seal_client_set_version(c, v) != 0)
            continue; /* version 2 without AES-NI */
        peer.ticket.version = (uint8_t)v;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && rc == 0; i++) {
            uint8_t *f = NULL;
            size_t n = 0;
            if (seal_client_seal(c, body, sizes[i], &f, &n, &t, &err) != 0)
                return 1;
            rc |= emit(argv[1], SF_OPEN, f, n);
            free(f);
            if (seal_server_seal_reply(s, &peer, body, sizes[i], &f, &n, &err) != 0)
                return 1;
            rc |= emit(argv[1], SF_REPLY, f, n);
            free(f);
            if (v == SEAL_VERSION)
                rc |= emit(argv[1], SF_ROUND, body, sizes[i]);
        }
    }
    seal_key_to_text(cpk, text);
    rc |= emit(argv[1], SF_TEXT, (const uint8_t *)text, strlen(text));
    text[10] = '+';
    rc |= emit(argv[1], SF_TEXT, (const uint8_t *)text, strlen(text));
    rc |= emit(argv[1], SF_TEXT, (const uint8_t *)"trk1:", 5);
    seal_client_free(c);
    seal_server_free(s);
    sodium_memzero(ssk, sizeof(ssk));
    sodium_memzero(csk, sizeof(csk));
    if (rc) {
        perror("seal_seeds");
        return 1;
    }
    return 0;
}
