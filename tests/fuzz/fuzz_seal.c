/*
 * fuzz_seal.c: libFuzzer target for proto/seal.c, the envelope opener a
 * tcp:// listener runs on every frame from the network. The first byte picks
 * a mode (seal_fuzz.h): raw frames of either envelope version into
 * seal_server_open (and seal_server_open_in_place, which must agree) and
 * seal_client_open_reply (nothing may crash, read past the input or leak;
 * what opens must have the size the header says), plaintexts through a full
 * round trip in both versions (must open equal, must refuse a replay and a
 * changed byte),
 * and public key text (what parses must print back identically). Keys and
 * the clock are fixed so the generated seeds (seal_seeds.c) open; a fresh
 * server per input keeps runs independent of each other.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seal.h"
#include "seal_fuzz.h"

static uint8_t srv_pk[32], srv_sk[32], cli_pk[32], cli_sk[32];

static int known(void *arg, const uint8_t pk[SEAL_PUBLIC_BYTES])
{
    (void)arg;
    return memcmp(pk, cli_pk, 32) == 0;
}

static struct seal_server *server(void)
{
    struct seal_server_opts o = {
        .key_known = known, .clock_ms = sf_clock, .key_cache = 2, .replay_cap = 16};
    struct seal_server *s = NULL;
    struct seal_err err;
    if (seal_server_new(&o, srv_sk, &s, &err) != 0)
        abort();
    return s;
}

static struct seal_client *client(void)
{
    struct seal_client *c = NULL;
    struct seal_err err;
    if (seal_client_new(cli_sk, cli_pk, srv_pk, &c, &err) != 0)
        abort();
    seal_client_set_clock(c, sf_clock, NULL);
    return c;
}

/* a copy of exactly n bytes, so ASan sees any read past the input */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (!d)
        abort();
    if (n)
        memcpy(d, p, n);
    return d;
}

static void fuzz_open(const uint8_t *data, size_t size)
{
    struct seal_server *s = server();
    struct seal_peer peer;
    struct seal_err err;
    uint8_t *plain = NULL, *again = NULL, *reply = NULL;
    size_t n = 0, n2 = 0, rlen = 0;
    int rc = seal_server_open(s, data, size, &peer, &plain, &n, &err);
    /* in place, on a fresh server and a copy: the same verdict and text */
    struct seal_server *s2 = server();
    uint8_t *copy = dup_exact(data, size);
    const uint8_t *in_place = NULL;
    size_t n3 = 0;
    int rc2 = seal_server_open_in_place(s2, copy, size, &peer, &in_place, &n3, &err);
    if (rc2 != rc || (rc == 0 && (n3 != n || (n && memcmp(in_place, plain, n) != 0))) ||
        (rc && in_place))
        abort();
    free(copy);
    seal_server_free(s2);
    if (rc == 0) {
        size_t over = data[1] == SEAL_VERSION_AES ? SEAL2_REQ_OVERHEAD : SEAL_REQ_OVERHEAD;
        if (n != size - over || (n && !plain))
            abort();
        if (seal_server_open(s, data, size, &peer, &again, &n2, &err) != SEAL_E_REPLAYED || again)
            abort();
        if (seal_server_seal_reply(s, &peer, plain, n, &reply, &rlen, &err) != 0)
            abort();
        free(reply);
    } else if (plain || err.code != rc || !seal_strerror(rc)[0]) {
        abort();
    }
    free(plain);
    seal_server_free(s);
}

static void fuzz_reply(const uint8_t *data, size_t size)
{
    struct seal_client *c = client();
    struct seal_ticket t;
    struct seal_err err;
    uint8_t *plain = NULL;
    size_t n = 0;
    /* a version 2 reply opens only under the salt of a client object made
     * here, so version 2 inputs exercise everything before the MAC */
    memset(&t, 0, sizeof(t));
    t.version = size >= 2 && data[1] == SEAL_VERSION_AES ? SEAL_VERSION_AES : SEAL_VERSION;
    memcpy(t.nonce, sf_ticket, sizeof(t.nonce));
    int rc = seal_client_open_reply(c, &t, data, size, &plain, &n, &err);
    if (rc == 0 &&
        n != size - (t.version == SEAL_VERSION_AES ? SEAL2_REPLY_OVERHEAD : SEAL_REPLY_OVERHEAD))
        abort();
    if (rc != 0 && plain)
        abort();
    free(plain);
    seal_client_free(c);
}

static void fuzz_round(const uint8_t *data, size_t size, int version)
{
    struct seal_server *s = server();
    struct seal_client *c = client();
    if (seal_client_set_version(c, version) != 0) { /* version 2 without AES-NI */
        seal_client_free(c);
        seal_server_free(s);
        return;
    }
    struct seal_ticket t;
    struct seal_peer peer;
    struct seal_err err;
    uint8_t *frame = NULL, *plain = NULL, *reply = NULL, *back = NULL, *other = NULL;
    size_t flen = 0, n = 0, rlen = 0, bn = 0, on = 0;
    if (seal_client_seal(c, data, size, &frame, &flen, &t, &err) != 0)
        abort();
    if (size) {
        /* one changed byte, chosen by the input, must be refused */
        size_t at = (data[0] * 131u + size) % flen;
        frame[at] ^= (uint8_t)(1u << (data[size - 1] % 8));
        if (seal_server_open(s, frame, flen, &peer, &other, &on, &err) == 0 || other)
            abort();
        frame[at] ^= (uint8_t)(1u << (data[size - 1] % 8));
    }
    if (seal_server_open(s, frame, flen, &peer, &plain, &n, &err) != 0 || n != size ||
        (size && memcmp(plain, data, size) != 0))
        abort();
    if (seal_server_open(s, frame, flen, &peer, &other, &on, &err) != SEAL_E_REPLAYED)
        abort();
    if (seal_server_seal_reply(s, &peer, data, size, &reply, &rlen, &err) != 0)
        abort();
    if (seal_client_open_reply(c, &t, reply, rlen, &back, &bn, &err) != 0 || bn != size ||
        (size && memcmp(back, data, size) != 0))
        abort();
    free(frame);
    free(plain);
    free(reply);
    free(back);
    seal_client_free(c);
    seal_server_free(s);
}

static void fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), out[SEAL_KEY_TEXT_BYTES];
    uint8_t pk[32];
    struct seal_err err;
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    if (seal_key_from_text(s, pk, &err) == 0) {
        seal_key_to_text(pk, out);
        if (strcmp(out, s) != 0)
            abort();
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    uint8_t *rest;
    if (!ready) {
        if (sodium_init() < 0)
            abort();
        sf_keypair(0, srv_pk, srv_sk);
        sf_keypair(1, cli_pk, cli_sk);
        ready = 1;
    }
    if (size < 1)
        return 0;
    rest = dup_exact(data + 1, size - 1);
    switch (data[0] % SF_MODES) {
    case SF_OPEN:
        fuzz_open(rest, size - 1);
        break;
    case SF_REPLY:
        fuzz_reply(rest, size - 1);
        break;
    case SF_ROUND:
        fuzz_round(rest, size - 1, SEAL_VERSION);
        fuzz_round(rest, size - 1, SEAL_VERSION_AES);
        break;
    default:
        fuzz_text(rest, size - 1);
        break;
    }
    free(rest);
    return 0;
}
