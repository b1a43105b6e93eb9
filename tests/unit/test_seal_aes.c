/*
 * test_seal_aes.c: what only envelope version 2 (AES-256-GCM, proto/seal.h)
 * has, and the two versions side by side on one server: v1 and v2 clients
 * together, replies refused across versions, request nonces unique over
 * many frames and across client objects and a fork, in-place opening equal
 * to the copying one (a 4 MiB batch too), a server without AES-NI refusing
 * version 2 with the message clients fall back on, and TRACK_SEAL_V1. The
 * refusals every version makes (each changed byte, each truncation, replay,
 * stale) run in both versions in test_seal.c. Skipped where the CPU has no
 * AES-NI (libsodium has no portable AES-GCM).
 */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "seal.h"

#define T0 INT64_C(1800000000000)

static int64_t now_ms = T0;
static struct seal_keypair server, client;

static int64_t fixed_clock(void *arg)
{
    (void)arg;
    return now_ms;
}

static int known(void *arg, const uint8_t pk[SEAL_PUBLIC_BYTES])
{
    (void)arg;
    return memcmp(pk, client.pk, SEAL_PUBLIC_BYTES) == 0;
}

static struct seal_server *make_server(int no_aes)
{
    struct seal_server_opts o = {
        .key_known = known, .clock_ms = fixed_clock, .replay_cap = 1 << 17, .no_aes = no_aes};
    struct seal_server *s = NULL;
    struct seal_err err = {0};
    cr_assert_eq(seal_server_new(&o, server.sk, &s, &err), 0, "%s", err.msg);
    return s;
}

static struct seal_client *make_client(int version)
{
    struct seal_client *c = NULL;
    struct seal_err err = {0};
    cr_assert_eq(seal_client_new(client.sk, client.pk, server.pk, &c, &err), 0, "%s", err.msg);
    seal_client_set_clock(c, fixed_clock, NULL);
    cr_assert_eq(seal_client_set_version(c, version), 0);
    return c;
}

static void setup(void)
{
    struct seal_err err = {0};
    now_ms = T0;
    cr_assert_eq(sodium_init() < 0, 0);
    if (!crypto_aead_aes256gcm_is_available())
        cr_skip_test("no AES-NI on this CPU: envelope version 2 cannot run");
    cr_assert_eq(seal_keypair_generate(&server, &err), 0);
    cr_assert_eq(seal_keypair_generate(&client, &err), 0);
}

static void teardown(void)
{
    seal_keypair_clear(&server);
    seal_keypair_clear(&client);
}

TestSuite(seal_aes, .init = setup, .fini = teardown);

/* seal, open, answer, open the answer: the reply's version is returned */
static int round_trip(struct seal_server *s, struct seal_client *c, const uint8_t *m, size_t n)
{
    uint8_t *f = NULL, *plain = NULL, *back = NULL, *got = NULL;
    size_t flen = 0, plen = 0, blen = 0, glen = 0;
    struct seal_ticket t;
    struct seal_peer peer;
    struct seal_err err = {0};
    cr_assert_eq(seal_client_seal(c, m, n, &f, &flen, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(flen, seal_client_frame_bytes(c, n));
    cr_assert_eq(seal_server_open(s, f, flen, &peer, &plain, &plen, &err), 0, "%s", err.msg);
    cr_assert_eq(plen, n);
    cr_assert(n == 0 || memcmp(plain, m, n) == 0);
    cr_assert_eq(seal_server_seal_reply(s, &peer, m, n, &back, &blen, &err), 0, "%s", err.msg);
    cr_assert_eq(seal_client_open_reply(c, &t, back, blen, &got, &glen, &err), 0, "%s", err.msg);
    cr_assert_eq(glen, n);
    cr_assert(n == 0 || memcmp(got, m, n) == 0);
    int v = back[1];
    free(f);
    free(plain);
    free(back);
    free(got);
    return v;
}

Test(seal_aes, v1_and_v2_clients_on_one_server_each_answered_in_its_version)
{
    struct seal_server *s = make_server(0);
    struct seal_client *c1 = make_client(SEAL_VERSION), *c2 = make_client(SEAL_VERSION_AES);
    uint8_t m[300];
    for (size_t i = 0; i < sizeof(m); i++)
        m[i] = (uint8_t)(i * 13);
    cr_assert(seal_server_has_aes(s));
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(round_trip(s, c1, m, (size_t)i * 15), SEAL_VERSION);
        cr_assert_eq(round_trip(s, c2, m, (size_t)i * 15), SEAL_VERSION_AES);
    }
    seal_client_free(c1);
    seal_client_free(c2);
    seal_server_free(s);
}

Test(seal_aes, replies_in_the_other_version_are_refused)
{
    struct seal_server *s = make_server(0);
    struct seal_client *c1 = make_client(SEAL_VERSION), *c2 = make_client(SEAL_VERSION_AES);
    uint8_t m[16] = {7}, *f1 = NULL, *f2 = NULL, *p = NULL, *r1 = NULL, *r2 = NULL, *got = NULL;
    size_t l1, l2, pl, rl1, rl2, gl;
    struct seal_ticket t1, t2;
    struct seal_peer peer1, peer2;
    struct seal_err err = {0};
    cr_assert_eq(seal_client_seal(c1, m, sizeof(m), &f1, &l1, &t1, &err), 0);
    cr_assert_eq(seal_client_seal(c2, m, sizeof(m), &f2, &l2, &t2, &err), 0);
    cr_assert_eq(seal_server_open(s, f1, l1, &peer1, &p, &pl, &err), 0);
    free(p);
    cr_assert_eq(seal_server_open(s, f2, l2, &peer2, &p, &pl, &err), 0);
    free(p);
    cr_assert_eq(seal_server_seal_reply(s, &peer1, m, sizeof(m), &r1, &rl1, &err), 0);
    cr_assert_eq(seal_server_seal_reply(s, &peer2, m, sizeof(m), &r2, &rl2, &err), 0);
    cr_assert_eq(r1[1], SEAL_VERSION);
    cr_assert_eq(r2[1], SEAL_VERSION_AES);
    /* a v2 reply to a v1 request, and a v1 reply to a v2 one */
    cr_assert_eq(seal_client_open_reply(c1, &t1, r2, rl2, &got, &gl, &err), SEAL_E_REPLAYED);
    cr_assert_null(got);
    cr_assert_eq(seal_client_open_reply(c2, &t2, r1, rl1, &got, &gl, &err), SEAL_E_REPLAYED);
    cr_assert_null(got);
    /* a v2 reply relabelled version 1 (and back) does not open either */
    r2[1] = SEAL_VERSION;
    cr_assert_neq(seal_client_open_reply(c2, &t2, r2, rl2, &got, &gl, &err), 0);
    cr_assert_null(got);
    r2[1] = SEAL_VERSION_AES;
    cr_assert_eq(seal_client_open_reply(c2, &t2, r2, rl2, &got, &gl, &err), 0);
    free(got);
    /* a v2 request relabelled version 1 is refused by its MAC */
    f2[1] = SEAL_VERSION;
    cr_assert_neq(seal_server_open(s, f2, l2, &peer2, &p, &pl, &err), 0);
    cr_assert_null(p);
    free(f1);
    free(f2);
    free(r1);
    free(r2);
    seal_client_free(c1);
    seal_client_free(c2);
    seal_server_free(s);
}

static int cmp28(const void *a, const void *b)
{
    return memcmp(a, b, 28);
}

Test(seal_aes, request_nonces_never_repeat_over_many_frames_and_objects)
{
    enum { OBJS = 4, PER = 25000 };
    struct seal_server *s = make_server(0);
    uint8_t(*ids)[28] = malloc((size_t)OBJS * PER * 28), m[8] = {1};
    size_t k = 0;
    struct seal_err err = {0};
    for (int o = 0; o < OBJS; o++) {
        struct seal_client *c = make_client(SEAL_VERSION_AES);
        for (int i = 0; i < PER; i++) {
            uint8_t f[8 + SEAL2_REQ_OVERHEAD];
            size_t fl;
            cr_assert_eq(seal_client_seal_into(c, m, sizeof(m), f, sizeof(f), &fl, NULL, &err), 0);
            /* the counter: 4 zero bytes, then 1, 2, 3, ... */
            const uint8_t *nonce = f + SEAL2_AD_BYTES;
            uint64_t v = 0;
            for (int b = 4; b < 12; b++)
                v = v << 8 | nonce[b];
            cr_assert(nonce[0] == 0 && nonce[1] == 0 && nonce[2] == 0 && nonce[3] == 0);
            cr_assert_eq(v, (uint64_t)i + 1);
            memcpy(ids[k], f + 2 + SEAL_PUBLIC_BYTES, SEAL2_SALT_BYTES);
            memcpy(ids[k] + SEAL2_SALT_BYTES, nonce, SEAL2_NONCE_BYTES);
            k++;
            if (i % 1000 == 0) { /* and the server takes them: none is a replay */
                const uint8_t *pl;
                size_t pn;
                struct seal_peer peer;
                cr_assert_eq(seal_server_open_in_place(s, f, fl, &peer, &pl, &pn, &err), 0, "%s",
                             err.msg);
            }
        }
        seal_client_free(c);
    }
    qsort(ids, k, 28, cmp28);
    for (size_t i = 1; i < k; i++)
        cr_assert_neq(memcmp(ids[i - 1], ids[i], 28), 0, "salt and nonce repeated at %zu", i);
    free(ids);
    seal_server_free(s);
}

Test(seal_aes, a_forked_child_seals_under_a_fresh_salt)
{
    struct seal_client *c = make_client(SEAL_VERSION_AES);
    uint8_t m[4] = {1}, f[4 + SEAL2_REQ_OVERHEAD], g[sizeof(f)];
    size_t fl;
    int fd[2];
    struct seal_err err = {0};
    cr_assert_eq(seal_client_seal_into(c, m, sizeof(m), f, sizeof(f), &fl, NULL, &err), 0);
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        size_t n;
        int ok = seal_client_seal_into(c, m, sizeof(m), g, sizeof(g), &n, NULL, &err) == 0 &&
                 write(fd[1], g, n) == (ssize_t)n;
        _exit(ok ? 0 : 1);
    }
    cr_assert_gt(pid, 0);
    cr_assert_eq(read(fd[0], g, sizeof(g)), (ssize_t)sizeof(g));
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fd[0]);
    close(fd[1]);
    /* the parent's next frame keeps its salt with counter 2; the child's has another salt */
    cr_assert_eq(seal_client_seal_into(c, m, sizeof(m), f, sizeof(f), &fl, NULL, &err), 0);
    cr_assert_neq(memcmp(f + 2 + SEAL_PUBLIC_BYTES, g + 2 + SEAL_PUBLIC_BYTES, SEAL2_SALT_BYTES),
                  0);
    cr_assert_eq(f[SEAL2_REQ_HEADER - 1], 2);
    cr_assert_eq(g[SEAL2_REQ_HEADER - 1], 1);
    seal_client_free(c);
}

Test(seal_aes, in_place_open_of_a_4_mib_batch_equals_the_copying_open)
{
    size_t n = (size_t)4 << 20, fl, fl2, pn, pn2;
    uint8_t *m = malloc(n), *f = NULL, *plain = NULL;
    const uint8_t *pl;
    struct seal_peer peer;
    struct seal_err err = {0};
    for (int version = SEAL_VERSION; version <= SEAL_VERSION_AES; version++) {
        struct seal_server *s = make_server(0);
        struct seal_client *c = make_client(version);
        for (size_t i = 0; i < n; i++)
            m[i] = (uint8_t)(i * 2654435761u >> 13);
        cr_assert_eq(seal_client_seal(c, m, n, &f, &fl, NULL, &err), 0);
        cr_assert_eq(seal_server_open(s, f, fl, &peer, &plain, &pn, &err), 0);
        cr_assert_eq(pn, n);
        cr_assert_eq(memcmp(plain, m, n), 0);
        free(plain);
        free(f);
        /* in place: a frame of its own (the one above is in the replay cache) */
        fl2 = seal_client_frame_bytes(c, n);
        f = malloc(fl2);
        cr_assert_eq(seal_client_seal_into(c, m, n, f, fl2, &fl, NULL, &err), 0);
        cr_assert_eq(fl, fl2);
        cr_assert_eq(seal_server_open_in_place(s, f, fl, &peer, &pl, &pn2, &err), 0, "%s", err.msg);
        cr_assert_eq(pn2, n);
        cr_assert(pl > f && pl < f + fl);
        cr_assert_eq(memcmp(pl, m, n), 0, "version %d", version);
        /* the same frame again: a replay, in place too */
        free(f);
        f = NULL;
        seal_client_free(c);
        seal_server_free(s);
    }
    free(m);
}

Test(seal_aes, in_place_refusals_leave_no_plaintext)
{
    struct seal_server *s = make_server(0);
    struct seal_client *c = make_client(SEAL_VERSION_AES);
    uint8_t m[64], f[64 + SEAL2_REQ_OVERHEAD], keep[sizeof(f)];
    const uint8_t *pl = NULL;
    size_t fl, pn;
    struct seal_peer peer;
    struct seal_err err = {0};
    memset(m, 0x5a, sizeof(m));
    cr_assert_eq(seal_client_seal_into(c, m, sizeof(m), f, sizeof(f), &fl, NULL, &err), 0);
    memcpy(keep, f, fl);
    cr_assert_eq(seal_server_open_in_place(s, f, fl, &peer, &pl, &pn, &err), 0);
    /* the same bytes again: replayed, and the plaintext in the buffer wiped */
    memcpy(f, keep, fl);
    cr_assert_eq(seal_server_open_in_place(s, f, fl, &peer, &pl, &pn, &err), SEAL_E_REPLAYED);
    cr_assert_null(pl);
    for (size_t i = 0; i < sizeof(m); i++)
        cr_assert_eq(f[SEAL2_REQ_HEADER + i], 0);
    /* stale: sealed 3 minutes behind the server's clock */
    now_ms = T0 - 180000;
    cr_assert_eq(seal_client_seal_into(c, m, sizeof(m), f, sizeof(f), &fl, NULL, &err), 0);
    now_ms = T0;
    cr_assert_eq(seal_server_open_in_place(s, f, fl, &peer, &pl, &pn, &err), SEAL_E_STALE);
    for (size_t i = 0; i < sizeof(m); i++)
        cr_assert_eq(f[SEAL2_REQ_HEADER + i], 0);
    seal_client_free(c);
    seal_server_free(s);
}

Test(seal_aes, a_server_without_aes_refuses_v2_with_the_fallback_message)
{
    struct seal_server *s = make_server(1);
    struct seal_client *c = make_client(SEAL_VERSION_AES);
    uint8_t m[10] = {4}, *f = NULL, *p = NULL;
    size_t fl, pn;
    struct seal_peer peer;
    struct seal_err err = {0};
    cr_assert_not(seal_server_has_aes(s));
    cr_assert_eq(seal_client_seal(c, m, sizeof(m), &f, &fl, NULL, &err), 0);
    cr_assert_eq(seal_server_open(s, f, fl, &peer, &p, &pn, &err), SEAL_E_BAD_FRAME);
    cr_assert(strstr(err.msg, "this server speaks 1"), "%s", err.msg);
    free(f);
    /* what the client then does: version 1, which opens */
    cr_assert_eq(seal_client_set_version(c, SEAL_VERSION), 0);
    cr_assert_eq(round_trip(s, c, m, sizeof(m)), SEAL_VERSION);
    seal_client_free(c);
    seal_server_free(s);
}

Test(seal_aes, track_seal_v1_forces_version_1)
{
    struct seal_client *c = NULL;
    struct seal_err err = {0};
    setenv("TRACK_SEAL_V1", "1", 1);
    cr_assert_eq(seal_client_new(client.sk, client.pk, server.pk, &c, &err), 0);
    unsetenv("TRACK_SEAL_V1");
    cr_assert_eq(seal_client_version(c), SEAL_VERSION);
    cr_assert_eq(seal_client_frame_bytes(c, 10), 10 + SEAL_REQ_OVERHEAD);
    seal_client_free(c);
    cr_assert_eq(seal_client_new(client.sk, client.pk, server.pk, &c, &err), 0);
    cr_assert_eq(seal_client_version(c), SEAL_VERSION_AES);
    cr_assert_eq(seal_client_frame_bytes(c, 10), 10 + SEAL2_REQ_OVERHEAD);
    cr_assert_eq(seal_client_set_version(c, 3), SEAL_E_INVALID);
    seal_client_free(c);
}

/* The format as seal.h writes it down, computed here with libsodium alone:
 * K = BLAKE2b-256 keyed with the X25519 shared key of "trk-aes1" || salt;
 * the request's associated data its first 58 bytes. A request sealed by
 * seal.c (with whichever engine the build uses, seal_aead.c) opens this
 * way, and a reply made this way opens in the client. */
Test(seal_aes, frames_follow_the_documented_format_with_either_engine)
{
    struct seal_client *c = make_client(SEAL_VERSION_AES);
    uint8_t k[crypto_box_BEFORENMBYTES], key[32], in[8 + SEAL2_SALT_BYTES], m[1000], out[1000];
    uint8_t *f = NULL, *got = NULL;
    size_t fl, gl;
    struct seal_ticket t;
    struct seal_err err = {0};
    for (size_t i = 0; i < sizeof(m); i++)
        m[i] = (uint8_t)(i ^ 0xa5);
    cr_assert_eq(seal_client_seal(c, m, sizeof(m), &f, &fl, &t, &err), 0);
    cr_assert_eq(crypto_box_beforenm(k, client.pk, server.sk), 0);
    memcpy(in, "trk-aes1", 8);
    memcpy(in + 8, f + 2 + SEAL_PUBLIC_BYTES, SEAL2_SALT_BYTES);
    crypto_generichash(key, sizeof(key), in, sizeof(in), k, sizeof(k));
    cr_assert_eq(crypto_aead_aes256gcm_decrypt_detached(out, NULL, f + SEAL2_REQ_HEADER, sizeof(m),
                                                        f + SEAL2_REQ_HEADER + sizeof(m), f,
                                                        SEAL2_AD_BYTES, f + SEAL2_AD_BYTES, key),
                 0);
    cr_assert_eq(memcmp(out, m, sizeof(m)), 0);
    /* a reply: 's' 2 | nonce (top bit set) | GCM(request nonce || reply) | tag, ad = 2 bytes */
    uint8_t r[SEAL2_REPLY_OVERHEAD + 100], pl[SEAL2_NONCE_BYTES + 100];
    r[0] = SEAL_MAGIC_REPLY;
    r[1] = SEAL_VERSION_AES;
    randombytes_buf(r + 2, SEAL2_NONCE_BYTES);
    r[2] |= 0x80;
    memcpy(pl, f + SEAL2_AD_BYTES, SEAL2_NONCE_BYTES);
    memcpy(pl + SEAL2_NONCE_BYTES, m, 100);
    crypto_aead_aes256gcm_encrypt_detached(r + SEAL2_REPLY_HEADER,
                                           r + SEAL2_REPLY_HEADER + sizeof(pl), NULL, pl,
                                           sizeof(pl), r, 2, NULL, r + 2, key);
    cr_assert_eq(seal_client_open_reply(c, &t, r, sizeof(r), &got, &gl, &err), 0, "%s", err.msg);
    cr_assert_eq(gl, 100);
    cr_assert_eq(memcmp(got, m, 100), 0);
    free(got);
    sodium_memzero(k, sizeof(k));
    sodium_memzero(key, sizeof(key));
    free(f);
    seal_client_free(c);
}
