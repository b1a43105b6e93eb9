/*
 * test_seal.c: proto/seal.c, the sealed envelope of tcp:// listeners, with the
 * real libsodium: round trips, every kind of refusal the server and client
 * make (tampered, truncated, replayed, stale, future, unknown key, another
 * server's key, another request's reply), the replay cache at its cap and
 * across a rotation, the shared-key LRU past its size, key files (mode,
 * refusals) and public key text. Clocks are the test's own (injected).
 * Every envelope test runs in both versions (SEAL_TEST); what only version
 * 2 has, and the two versions side by side, are test_seal_aes.c's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seal.h"

#define NCLIENTS 5
#define WINDOW   120000
#define T0       INT64_C(1800000000000)

static int64_t srv_now = T0, cli_now = T0;

static int64_t srv_clock(void *arg)
{
    (void)arg;
    return srv_now;
}

static int64_t cli_clock(void *arg)
{
    (void)arg;
    return cli_now;
}

struct world {
    struct seal_keypair server, other_server, cl[NCLIENTS];
    int listed[NCLIENTS];
    struct seal_server *srv;
    struct seal_client *c[NCLIENTS];
};

static struct world w;

static int key_known(void *arg, const uint8_t pk[SEAL_PUBLIC_BYTES])
{
    struct world *wd = arg;
    for (int i = 0; i < NCLIENTS; i++) {
        if (wd->listed[i] && memcmp(wd->cl[i].pk, pk, SEAL_PUBLIC_BYTES) == 0)
            return 1;
    }
    return 0;
}

static struct seal_server *make_server(const struct seal_keypair *kp, size_t key_cache,
                                       size_t replay_cap, size_t max_frame)
{
    struct seal_server_opts o = {.key_known = key_known,
                                 .key_arg = &w,
                                 .clock_ms = srv_clock,
                                 .window_ms = WINDOW,
                                 .key_cache = key_cache,
                                 .replay_cap = replay_cap,
                                 .max_frame = max_frame};
    struct seal_server *s = NULL;
    struct seal_err err = {0};
    int rc = seal_server_new(&o, kp->sk, &s, &err);
    cr_assert_eq(rc, 0, "seal_server_new: %s", err.msg);
    return s;
}

/* server with default caches, NCLIENTS clients all listed except the last */
static void setup(void)
{
    struct seal_err err = {0};
    srv_now = cli_now = T0;
    memset(&w, 0, sizeof(w));
    cr_assert_eq(seal_keypair_generate(&w.server, &err), 0);
    cr_assert_eq(seal_keypair_generate(&w.other_server, &err), 0);
    for (int i = 0; i < NCLIENTS; i++) {
        cr_assert_eq(seal_keypair_generate(&w.cl[i], &err), 0);
        w.listed[i] = i < NCLIENTS - 1;
        cr_assert_eq(seal_client_new(w.cl[i].sk, w.cl[i].pk, w.server.pk, &w.c[i], &err), 0, "%s",
                     err.msg);
        seal_client_set_clock(w.c[i], cli_clock, NULL);
    }
    w.srv = make_server(&w.server, 0, 0, 0);
}

static void teardown(void)
{
    seal_server_free(w.srv);
    for (int i = 0; i < NCLIENTS; i++) {
        seal_client_free(w.c[i]);
        seal_keypair_clear(&w.cl[i]);
    }
    seal_keypair_clear(&w.server);
    seal_keypair_clear(&w.other_server);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31u + seed);
}

/* The overheads of client 0's version (every client of a suite has one). */
static size_t req_over(void)
{
    return seal_client_version(w.c[0]) == SEAL_VERSION_AES ? SEAL2_REQ_OVERHEAD : SEAL_REQ_OVERHEAD;
}

static size_t reply_over(void)
{
    return seal_client_version(w.c[0]) == SEAL_VERSION_AES ? SEAL2_REPLY_OVERHEAD
                                                           : SEAL_REPLY_OVERHEAD;
}

/* A sealed request of n bytes from client i. */
static uint8_t *seal_req(int i, size_t n, size_t *len, struct seal_ticket *t)
{
    uint8_t *plain = malloc(n ? n : 1), *frame = NULL;
    struct seal_err err = {0};
    fill(plain, n, (unsigned)i);
    int rc = seal_client_seal(w.c[i], plain, n, &frame, len, t, &err);
    free(plain);
    cr_assert_eq(rc, 0, "seal: %s", err.msg);
    return frame;
}

/* Opens frame on srv; returns the code, frees the plaintext. */
static int open_on(struct seal_server *s, const uint8_t *frame, size_t len, struct seal_err *err)
{
    struct seal_peer peer;
    uint8_t *plain = NULL;
    size_t n = 0;
    int rc = seal_server_open(s, frame, len, &peer, &plain, &n, err);
    if (rc)
        cr_assert_null(plain);
    free(plain);
    return rc;
}

/* the same world with every client forced to envelope version 1 */
static void setup_v1(void)
{
    setup();
    for (int i = 0; i < NCLIENTS; i++)
        cr_assert_eq(seal_client_set_version(w.c[i], SEAL_VERSION), 0);
}

TestSuite(seal, .init = setup, .fini = teardown);
TestSuite(seal_v1, .init = setup_v1, .fini = teardown);

/* A test of the envelope, run twice: suite seal in the clients' default
 * version (2, AES-256-GCM, on a CPU with AES-NI) and suite seal_v1 in 1. */
#define SEAL_TEST(name)                                                                            \
    static void name##_body(void);                                                                 \
    Test(seal, name)                                                                               \
    {                                                                                              \
        name##_body();                                                                             \
    }                                                                                              \
    Test(seal_v1, name)                                                                            \
    {                                                                                              \
        name##_body();                                                                             \
    }                                                                                              \
    static void name##_body(void)

SEAL_TEST(round_trip_request_and_reply)
{
    uint8_t req[100], rep[300], *frame = NULL, *plain = NULL, *back = NULL, *got = NULL;
    size_t flen = 0, plen = 0, blen = 0, glen = 0;
    struct seal_ticket t;
    struct seal_peer peer;
    struct seal_err err = {0};
    fill(req, sizeof(req), 1);
    fill(rep, sizeof(rep), 2);
    cr_assert_eq(seal_client_seal(w.c[0], req, sizeof(req), &frame, &flen, &t, &err), 0);
    cr_assert_eq(flen, sizeof(req) + req_over());
    cr_assert_eq(seal_frame_kind(frame, flen), SEAL_KIND_REQUEST);
    cr_assert_eq(seal_server_open(w.srv, frame, flen, &peer, &plain, &plen, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(plen, sizeof(req));
    cr_assert_eq(memcmp(plain, req, plen), 0);
    cr_assert_eq(memcmp(peer.pk, w.cl[0].pk, SEAL_PUBLIC_BYTES), 0);
    cr_assert_eq(peer.ts_ms, T0);
    cr_assert_eq(seal_server_seal_reply(w.srv, &peer, rep, sizeof(rep), &back, &blen, &err), 0);
    cr_assert_eq(blen, sizeof(rep) + reply_over());
    cr_assert_eq(seal_frame_kind(back, blen), SEAL_KIND_REPLY);
    cr_assert_eq(seal_client_open_reply(w.c[0], &t, back, blen, &got, &glen, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(glen, sizeof(rep));
    cr_assert_eq(memcmp(got, rep, glen), 0);
    free(frame);
    free(plain);
    free(back);
    free(got);
}

SEAL_TEST(empty_request_and_reply_round_trip)
{
    uint8_t *frame = NULL, *plain = NULL, *back = NULL, *got = NULL;
    size_t flen = 0, plen = 7, blen = 0, glen = 7;
    struct seal_ticket t;
    struct seal_peer peer;
    struct seal_err err = {0};
    cr_assert_eq(seal_client_seal(w.c[1], NULL, 0, &frame, &flen, &t, &err), 0);
    cr_assert_eq(seal_server_open(w.srv, frame, flen, &peer, &plain, &plen, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(plen, 0);
    cr_assert_null(plain);
    cr_assert_eq(seal_server_seal_reply(w.srv, &peer, NULL, 0, &back, &blen, &err), 0);
    cr_assert_eq(seal_client_open_reply(w.c[1], &t, back, blen, &got, &glen, &err), 0);
    cr_assert_eq(glen, 0);
    cr_assert_null(got);
    free(frame);
    free(back);
}

SEAL_TEST(every_changed_byte_of_a_request_is_refused)
{
    size_t len = 0;
    uint8_t *frame = seal_req(0, 40, &len, NULL);
    struct seal_err err = {0};
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            frame[i] ^= (uint8_t)(1u << bit);
            int rc = open_on(w.srv, frame, len, &err);
            frame[i] ^= (uint8_t)(1u << bit);
            if (i < 2)
                cr_assert_eq(rc, SEAL_E_BAD_FRAME, "byte %zu: %s", i, seal_strerror(rc));
            else if (i < 2 + SEAL_PUBLIC_BYTES)
                cr_assert_eq(rc, SEAL_E_UNKNOWN_KEY, "byte %zu: %s", i, seal_strerror(rc));
            else
                cr_assert_eq(rc, SEAL_E_TAMPERED, "byte %zu: %s", i, seal_strerror(rc));
        }
    }
    /* none of the refused copies used up the nonce */
    cr_assert_eq(open_on(w.srv, frame, len, &err), 0, "%s", err.msg);
    free(frame);
}

SEAL_TEST(every_changed_byte_of_a_reply_is_refused)
{
    size_t len = 0, blen = 0, n = 0;
    struct seal_ticket t;
    struct seal_peer peer;
    struct seal_err err = {0};
    uint8_t *frame = seal_req(0, 10, &len, &t), *plain = NULL, *back = NULL, *got = NULL;
    uint8_t rep[30];
    fill(rep, sizeof(rep), 9);
    cr_assert_eq(seal_server_open(w.srv, frame, len, &peer, &plain, &n, &err), 0);
    cr_assert_eq(seal_server_seal_reply(w.srv, &peer, rep, sizeof(rep), &back, &blen, &err), 0);
    for (size_t i = 0; i < blen; i++) {
        back[i] ^= 0x01;
        int rc = seal_client_open_reply(w.c[0], &t, back, blen, &got, &n, &err);
        back[i] ^= 0x01;
        cr_assert_null(got);
        if (i < 2)
            cr_assert_eq(rc, SEAL_E_BAD_FRAME, "byte %zu: %s", i, seal_strerror(rc));
        else
            cr_assert_eq(rc, SEAL_E_WRONG_SERVER, "byte %zu: %s", i, seal_strerror(rc));
    }
    cr_assert_eq(seal_client_open_reply(w.c[0], &t, back, blen, &got, &n, &err), 0);
    free(got);
    free(frame);
    free(plain);
    free(back);
}

SEAL_TEST(truncated_requests_of_every_length_are_refused)
{
    size_t len = 0;
    uint8_t *frame = seal_req(0, 100, &len, NULL);
    struct seal_err err = {0};
    for (size_t n = 0; n < len; n++) {
        /* a copy of exactly n bytes, so ASan sees any read past it */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, frame, n);
        int rc = open_on(w.srv, n ? cut : NULL, n, &err);
        free(cut);
        if (n < req_over())
            cr_assert_eq(rc, SEAL_E_BAD_FRAME, "length %zu: %s", n, seal_strerror(rc));
        else
            cr_assert_eq(rc, SEAL_E_TAMPERED, "length %zu: %s", n, seal_strerror(rc));
    }
    cr_assert_eq(open_on(w.srv, frame, len, &err), 0);
    free(frame);
}

SEAL_TEST(truncated_replies_of_every_length_are_refused)
{
    size_t len = 0, blen = 0, n = 0;
    struct seal_ticket t;
    struct seal_peer peer;
    struct seal_err err = {0};
    uint8_t *frame = seal_req(2, 5, &len, &t), *plain = NULL, *back = NULL, *got = NULL;
    uint8_t rep[100];
    fill(rep, sizeof(rep), 3);
    cr_assert_eq(seal_server_open(w.srv, frame, len, &peer, &plain, &n, &err), 0);
    cr_assert_eq(seal_server_seal_reply(w.srv, &peer, rep, sizeof(rep), &back, &blen, &err), 0);
    for (size_t k = 0; k < blen; k++) {
        uint8_t *cut = malloc(k ? k : 1);
        memcpy(cut, back, k);
        int rc = seal_client_open_reply(w.c[2], &t, k ? cut : NULL, k, &got, &n, &err);
        free(cut);
        cr_assert_null(got);
        if (k < reply_over())
            cr_assert_eq(rc, SEAL_E_BAD_FRAME, "length %zu: %s", k, seal_strerror(rc));
        else
            cr_assert_eq(rc, SEAL_E_WRONG_SERVER, "length %zu: %s", k, seal_strerror(rc));
    }
    free(frame);
    free(plain);
    free(back);
}

SEAL_TEST(replayed_frame_is_refused)
{
    size_t len = 0;
    uint8_t *frame = seal_req(1, 64, &len, NULL);
    struct seal_err err = {0};
    cr_assert_eq(open_on(w.srv, frame, len, &err), 0);
    srv_now += 1000;
    cr_assert_eq(open_on(w.srv, frame, len, &err), SEAL_E_REPLAYED);
    cr_assert(strstr(err.msg, "replayed"), "%s", err.msg);
    cr_assert_eq(err.code, SEAL_E_REPLAYED);
    free(frame);
}

SEAL_TEST(replayed_frame_is_refused_across_a_cache_rotation)
{
    size_t len = 0;
    struct seal_err err = {0};
    uint8_t *first = seal_req(0, 8, &len, NULL), *frame;
    cr_assert_eq(open_on(w.srv, first, len, &err), 0); /* the generation starts at T0 */
    free(first);
    /* opened just before the first generation ends */
    cli_now = srv_now = T0 + 2 * WINDOW - 1;
    frame = seal_req(0, 8, &len, NULL);
    cr_assert_eq(open_on(w.srv, frame, len, &err), 0);
    /* a generation later, still inside the frame's window */
    srv_now = T0 + 3 * WINDOW - 1;
    cr_assert_eq(open_on(w.srv, frame, len, &err), SEAL_E_REPLAYED, "%s", err.msg);
    /* and after two rotations the frame is stale anyway */
    srv_now = T0 + 6 * WINDOW;
    cr_assert_eq(open_on(w.srv, frame, len, &err), SEAL_E_STALE, "%s", err.msg);
    free(frame);
}

SEAL_TEST(stale_frame_is_refused)
{
    size_t len = 0;
    uint8_t *frame = seal_req(0, 16, &len, NULL);
    struct seal_err err = {0};
    srv_now = T0 + WINDOW + 1;
    cr_assert_eq(open_on(w.srv, frame, len, &err), SEAL_E_STALE);
    cr_assert(strstr(err.msg, "clocks differ"), "%s", err.msg);
    cr_assert(strstr(err.msg, "behind"), "%s", err.msg);
    /* refused as stale, never recorded: at the window's edge it opens */
    srv_now = T0 + WINDOW;
    cr_assert_eq(open_on(w.srv, frame, len, &err), 0, "%s", err.msg);
    free(frame);
}

SEAL_TEST(future_frame_beyond_the_window_is_refused)
{
    size_t len = 0;
    uint8_t *frame;
    struct seal_err err = {0};
    cli_now = T0 + WINDOW + 1; /* a client whose clock runs ahead */
    frame = seal_req(0, 16, &len, NULL);
    cr_assert_eq(open_on(w.srv, frame, len, &err), SEAL_E_STALE);
    cr_assert(strstr(err.msg, "ahead of"), "%s", err.msg);
    cr_assert(strstr(err.msg, "clocks differ"), "%s", err.msg);
    free(frame);
    cli_now = T0 + WINDOW;
    frame = seal_req(0, 16, &len, NULL);
    cr_assert_eq(open_on(w.srv, frame, len, &err), 0, "%s", err.msg);
    free(frame);
}

SEAL_TEST(unknown_key_is_refused)
{
    size_t len = 0;
    uint8_t *frame = seal_req(NCLIENTS - 1, 16, &len, NULL); /* the unlisted client */
    struct seal_err err = {0};
    cr_assert_eq(open_on(w.srv, frame, len, &err), SEAL_E_UNKNOWN_KEY);
    cr_assert_str_eq(seal_strerror(err.code), "UNKNOWN_KEY");
    free(frame);
}

SEAL_TEST(key_removed_from_the_list_is_refused_though_cached)
{
    size_t len = 0;
    struct seal_err err = {0};
    uint8_t *frame = seal_req(0, 16, &len, NULL);
    cr_assert_eq(open_on(w.srv, frame, len, &err), 0);
    free(frame);
    w.listed[0] = 0;
    frame = seal_req(0, 16, &len, NULL);
    cr_assert_eq(open_on(w.srv, frame, len, &err), SEAL_E_UNKNOWN_KEY);
    w.listed[0] = 1;
    cr_assert_eq(open_on(w.srv, frame, len, &err), 0);
    free(frame);
}

SEAL_TEST(request_for_another_server_key_is_refused)
{
    size_t len = 0;
    uint8_t *frame = seal_req(0, 16, &len, NULL);
    struct seal_err err = {0};
    struct seal_server *other = make_server(&w.other_server, 0, 16, 0);
    cr_assert_eq(open_on(other, frame, len, &err), SEAL_E_TAMPERED);
    seal_server_free(other);
    free(frame);
}

SEAL_TEST(reply_from_another_server_key_is_refused)
{
    size_t len = 0, blen = 0, n = 0;
    struct seal_ticket t;
    struct seal_peer peer;
    struct seal_err err = {0};
    char pinned[SEAL_KEY_TEXT_BYTES];
    uint8_t *frame = seal_req(0, 16, &len, &t), *back = NULL, *got = NULL, rep[20] = {0};
    struct seal_server *other = make_server(&w.other_server, 0, 16, 0);
    /* a server with another key answers the request it could not open */
    memcpy(peer.pk, w.cl[0].pk, SEAL_PUBLIC_BYTES);
    peer.ticket = t;
    peer.ts_ms = T0;
    cr_assert_eq(seal_server_seal_reply(other, &peer, rep, sizeof(rep), &back, &blen, &err), 0);
    cr_assert_eq(seal_client_open_reply(w.c[0], &t, back, blen, &got, &n, &err),
                 SEAL_E_WRONG_SERVER);
    cr_assert_null(got);
    cr_assert(strstr(err.msg, "not the pinned one"), "%s", err.msg);
    seal_key_to_text(w.server.pk, pinned);
    cr_assert(strstr(err.msg, pinned), "message names the pinned key: %s", err.msg);
    seal_server_free(other);
    free(frame);
    free(back);
}

SEAL_TEST(reply_to_another_request_is_refused)
{
    size_t l1 = 0, l2 = 0, blen = 0, n = 0;
    struct seal_ticket t1, t2;
    struct seal_peer p1;
    struct seal_err err = {0};
    uint8_t *f1 = seal_req(0, 16, &l1, &t1), *f2 = seal_req(0, 16, &l2, &t2);
    uint8_t *plain = NULL, *back = NULL, *got = NULL, rep[8] = {1};
    cr_assert_eq(seal_server_open(w.srv, f1, l1, &p1, &plain, &n, &err), 0);
    cr_assert_eq(seal_server_seal_reply(w.srv, &p1, rep, sizeof(rep), &back, &blen, &err), 0);
    cr_assert_eq(seal_client_open_reply(w.c[0], &t2, back, blen, &got, &n, &err), SEAL_E_REPLAYED);
    cr_assert_null(got);
    cr_assert_eq(seal_client_open_reply(w.c[0], &t1, back, blen, &got, &n, &err), 0);
    free(got);
    free(plain);
    free(back);
    free(f1);
    free(f2);
}

SEAL_TEST(reply_sealed_for_another_client_is_refused)
{
    size_t len = 0, blen = 0, n = 0;
    struct seal_ticket t;
    struct seal_peer peer;
    struct seal_err err = {0};
    uint8_t *frame = seal_req(1, 16, &len, &t), *plain = NULL, *back = NULL, *got = NULL;
    uint8_t rep[8] = {2};
    cr_assert_eq(seal_server_open(w.srv, frame, len, &peer, &plain, &n, &err), 0);
    cr_assert_eq(seal_server_seal_reply(w.srv, &peer, rep, sizeof(rep), &back, &blen, &err), 0);
    cr_assert_eq(seal_client_open_reply(w.c[2], &t, back, blen, &got, &n, &err),
                 SEAL_E_WRONG_SERVER);
    free(frame);
    free(plain);
    free(back);
}

SEAL_TEST(reflected_frames_are_refused)
{
    size_t len = 0, blen = 0, n = 0;
    struct seal_ticket t;
    struct seal_peer peer;
    struct seal_err err = {0};
    uint8_t *frame = seal_req(0, 16, &len, &t), *plain = NULL, *back = NULL, *got = NULL;
    uint8_t rep[16] = {3};
    /* a request sent back to its client as if it were the reply */
    cr_assert_eq(seal_client_open_reply(w.c[0], &t, frame, len, &got, &n, &err), SEAL_E_BAD_FRAME);
    /* its nonce and box (a valid MAC under the same key) in a reply's layout:
     * refused for the request's nonce; with that top bit flipped, for the MAC */
    int v2 = frame[1] == SEAL_VERSION_AES;
    size_t skip = v2 ? SEAL2_AD_BYTES : 2 + SEAL_PUBLIC_BYTES, rlen = len - skip + 2;
    uint8_t *refl = malloc(rlen);
    refl[0] = SEAL_MAGIC_REPLY;
    refl[1] = frame[1];
    memcpy(refl + 2, frame + skip, len - skip);
    cr_assert_eq(seal_client_open_reply(w.c[0], &t, refl, rlen, &got, &n, &err), SEAL_E_BAD_FRAME);
    cr_assert_null(got);
    refl[2] ^= 0x80;
    cr_assert_neq(seal_client_open_reply(w.c[0], &t, refl, rlen, &got, &n, &err), 0);
    cr_assert_null(got);
    free(refl);
    cr_assert_eq(seal_server_open(w.srv, frame, len, &peer, &plain, &n, &err), 0);
    cr_assert_eq(seal_server_seal_reply(w.srv, &peer, rep, sizeof(rep), &back, &blen, &err), 0);
    /* a reply sent to the server as if it were a request */
    cr_assert_eq(open_on(w.srv, back, blen, &err), SEAL_E_BAD_FRAME);
    free(frame);
    free(plain);
    free(back);
}

SEAL_TEST(plain_and_foreign_frames_are_refused)
{
    /* what a plain Request starts with: field 1 (request_id), 16 bytes */
    uint8_t plain[90] = {0x0a, 0x10};
    struct seal_err err = {0};
    size_t len = 0;
    uint8_t *frame;
    cr_assert_eq(seal_frame_kind(plain, sizeof(plain)), SEAL_KIND_PLAIN);
    cr_assert_eq(open_on(w.srv, plain, sizeof(plain), &err), SEAL_E_BAD_FRAME);
    cr_assert(strstr(err.msg, "plain frames are refused"), "%s", err.msg);
    frame = seal_req(0, 16, &len, NULL);
    frame[1] = SEAL_VERSION_AES + 1;
    cr_assert_eq(seal_frame_kind(frame, len), SEAL_KIND_PLAIN);
    cr_assert_eq(open_on(w.srv, frame, len, &err), SEAL_E_BAD_FRAME);
    cr_assert(strstr(err.msg, "version"), "%s", err.msg);
    free(frame);
}

SEAL_TEST(frame_over_the_limit_is_refused)
{
    size_t len = 0, blen = 0;
    struct seal_err err = {0};
    struct seal_peer peer = {0};
    uint8_t *frame = seal_req(0, 300, &len, NULL), *back = NULL, rep[300] = {0};
    struct seal_server *small = make_server(&w.server, 0, 16, 300);
    cr_assert_eq(open_on(small, frame, len, &err), SEAL_E_BAD_FRAME);
    cr_assert(strstr(err.msg, "300 byte frame limit"), "%s", err.msg);
    memcpy(peer.pk, w.cl[0].pk, SEAL_PUBLIC_BYTES);
    cr_assert_eq(seal_server_seal_reply(small, &peer, rep, sizeof(rep), &back, &blen, &err),
                 SEAL_E_INVALID);
    cr_assert_null(back);
    seal_server_free(small);
    free(frame);
}

SEAL_TEST(replay_cache_at_its_cap_refuses_with_full)
{
    struct seal_server *s = make_server(&w.server, 0, 8, 0);
    struct seal_err err = {0};
    size_t len = 0;
    uint8_t *f[10];
    for (int i = 0; i < 10; i++)
        f[i] = seal_req(i % 2, 16, &len, NULL);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(open_on(s, f[i], len, &err), 0, "frame %d: %s", i, err.msg);
    cr_assert_eq(open_on(s, f[8], len, &err), SEAL_E_FULL);
    cr_assert(strstr(err.msg, "replay cache full"), "%s", err.msg);
    /* full, yet a replay is still a replay */
    cr_assert_eq(open_on(s, f[3], len, &err), SEAL_E_REPLAYED);
    /* once the generations turn over, fresh frames open again */
    cli_now = srv_now = T0 + 4 * WINDOW;
    for (int i = 0; i < 2; i++)
        free(f[8 + i]);
    f[8] = seal_req(0, 16, &len, NULL);
    f[9] = seal_req(1, 16, &len, NULL);
    cr_assert_eq(open_on(s, f[8], len, &err), 0, "%s", err.msg);
    cr_assert_eq(open_on(s, f[9], len, &err), 0, "%s", err.msg);
    for (int i = 0; i < 10; i++)
        free(f[i]);
    seal_server_free(s);
}

SEAL_TEST(clock_set_far_back_clears_the_full_replay_cache_safely)
{
    struct seal_server *s = make_server(&w.server, 0, 4, 0);
    struct seal_err err = {0};
    size_t len = 0;
    uint8_t *f[5], *fresh;
    for (int i = 0; i < 5; i++)
        f[i] = seal_req(0, 16, &len, NULL);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(open_on(s, f[i], len, &err), 0, "%s", err.msg);
    cr_assert_eq(open_on(s, f[4], len, &err), SEAL_E_FULL);
    /* set back by less than 2 windows: the digests stay, replays refused */
    srv_now = T0 - WINDOW;
    cr_assert_eq(open_on(s, f[0], len, &err), SEAL_E_REPLAYED, "%s", err.msg);
    /* set back by hours: the old frames are too far ahead to open, and the
     * cache no longer refuses fresh frames as FULL */
    srv_now = cli_now = T0 - 3600 * 1000;
    for (int i = 0; i < 4; i++)
        cr_assert_eq(open_on(s, f[i], len, &err), SEAL_E_STALE, "%s", err.msg);
    fresh = seal_req(1, 16, &len, NULL);
    cr_assert_eq(open_on(s, fresh, len, &err), 0, "%s", err.msg);
    cr_assert_eq(open_on(s, fresh, len, &err), SEAL_E_REPLAYED, "%s", err.msg);
    free(fresh);
    for (int i = 0; i < 5; i++)
        free(f[i]);
    seal_server_free(s);
}

SEAL_TEST(shared_key_lru_eviction_still_opens)
{
    /* 2 cached keys, 4 listed clients taking turns: every open is a miss
     * that evicts, and some replies find their key evicted too */
    struct seal_server *s = make_server(&w.server, 2, 1024, 0);
    struct seal_err err = {0};
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < NCLIENTS - 1; i++) {
            size_t len = 0, n = 0, blen = 0;
            struct seal_ticket t;
            struct seal_peer peer;
            uint8_t *frame = seal_req(i, 32, &len, &t), *plain = NULL, *back = NULL, *got = NULL;
            cr_assert_eq(seal_server_open(s, frame, len, &peer, &plain, &n, &err), 0,
                         "round %d client %d: %s", round, i, err.msg);
            cr_assert_eq(n, 32);
            if (i % 2 == 1) {
                /* open another client's frame in between: evicts this key */
                size_t l2 = 0;
                uint8_t *f2 = seal_req((i + 1) % (NCLIENTS - 1), 8, &l2, NULL);
                uint8_t *f3 = seal_req((i + 2) % (NCLIENTS - 1), 8, &l2, NULL);
                cr_assert_eq(open_on(s, f2, l2, &err), 0);
                cr_assert_eq(open_on(s, f3, l2, &err), 0);
                free(f2);
                free(f3);
            }
            cr_assert_eq(seal_server_seal_reply(s, &peer, plain, n, &back, &blen, &err), 0);
            cr_assert_eq(seal_client_open_reply(w.c[i], &t, back, blen, &got, &n, &err), 0, "%s",
                         err.msg);
            cr_assert_eq(memcmp(got, plain, n), 0);
            free(frame);
            free(plain);
            free(back);
            free(got);
        }
    }
    seal_server_free(s);
}

SEAL_TEST(forgotten_key_is_recomputed_and_still_opens)
{
    struct seal_server *s = make_server(&w.server, 3, 64, 0);
    struct seal_err err = {0};
    size_t len = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3; i++) {
            uint8_t *frame = seal_req(i, 8, &len, NULL);
            cr_assert_eq(open_on(s, frame, len, &err), 0, "%s", err.msg);
            free(frame);
        }
        /* forget the first, middle and an absent key in turn */
        seal_server_forget(s, w.cl[round].pk);
        seal_server_forget(s, w.cl[NCLIENTS - 1].pk);
    }
    seal_server_free(s);
}

SEAL_TEST(client_refuses_a_public_key_not_its_secret_keys)
{
    struct seal_client *c = NULL;
    struct seal_err err = {0};
    cr_assert_eq(seal_client_new(w.cl[0].sk, w.cl[1].pk, w.server.pk, &c, &err), SEAL_E_INVALID);
    cr_assert_null(c);
}

SEAL_TEST(strerror_names_every_code)
{
    cr_assert_str_eq(seal_strerror(SEAL_E_BAD_FRAME), "BAD_FRAME");
    cr_assert_str_eq(seal_strerror(SEAL_E_TAMPERED), "TAMPERED");
    cr_assert_str_eq(seal_strerror(SEAL_E_STALE), "STALE");
    cr_assert_str_eq(seal_strerror(SEAL_E_REPLAYED), "REPLAYED");
    cr_assert_str_eq(seal_strerror(SEAL_E_FULL), "FULL");
    cr_assert_str_eq(seal_strerror(SEAL_E_WRONG_SERVER), "WRONG_SERVER");
    cr_assert_str_eq(seal_strerror(SEAL_E_PERM), "PERM");
    cr_assert_str_eq(seal_strerror(-99), "UNKNOWN");
    for (int c = SEAL_E_NOMEM; c <= 0; c++)
        cr_assert_str_neq(seal_strerror(c), "UNKNOWN", "code %d", c);
}

/* ---- key files ---------------------------------------------------------------- */

static char dir[64];

static void key_setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_seal.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void key_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(seal_keyfile, .init = key_setup, .fini = key_teardown);

Test(seal_keyfile, written_0600_under_umask_000_and_read_back)
{
    char path[128];
    struct stat st;
    struct seal_keypair kp = {0}, back = {0};
    struct seal_err err = {0};
    mode_t old = umask(0);
    snprintf(path, sizeof(path), "%s/key", dir);
    cr_assert_eq(seal_keypair_generate(&kp, &err), 0);
    int rc = seal_key_file_write(path, kp.sk, &err);
    umask(old);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", (unsigned)(st.st_mode & 07777));
    cr_assert_eq(seal_key_file_read(path, &back, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(back.pk, kp.pk, SEAL_PUBLIC_BYTES), 0);
    cr_assert_eq(memcmp(back.sk, kp.sk, SEAL_SECRET_BYTES), 0);
    seal_keypair_clear(&kp);
    seal_keypair_clear(&back);
    cr_assert_null(back.sk);
}

Test(seal_keyfile, written_0600_under_umask_0277)
{
    char path[128];
    struct stat st;
    struct seal_keypair kp = {0};
    struct seal_err err = {0};
    mode_t old = umask(0277);
    snprintf(path, sizeof(path), "%s/key", dir);
    cr_assert_eq(seal_keypair_generate(&kp, &err), 0);
    int rc = seal_key_file_write(path, kp.sk, &err);
    umask(old);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", (unsigned)(st.st_mode & 07777));
    seal_keypair_clear(&kp);
}

Test(seal_keyfile, file_readable_by_others_is_refused_naming_path_and_mode)
{
    char path[128];
    struct seal_keypair kp = {0}, back = {0};
    struct seal_err err = {0};
    snprintf(path, sizeof(path), "%s/key", dir);
    cr_assert_eq(seal_keypair_generate(&kp, &err), 0);
    cr_assert_eq(seal_key_file_write(path, kp.sk, &err), 0);
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_eq(seal_key_file_read(path, &back, &err), SEAL_E_PERM);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    cr_assert(strstr(err.msg, "0644"), "%s", err.msg);
    cr_assert_null(back.sk);
    cr_assert_eq(chmod(path, 0640), 0);
    cr_assert_eq(seal_key_file_read(path, &back, &err), SEAL_E_PERM);
    cr_assert(strstr(err.msg, "0640"), "%s", err.msg);
    cr_assert_eq(chmod(path, 0400), 0);
    cr_assert_eq(seal_key_file_read(path, &back, &err), 0, "%s", err.msg);
    seal_keypair_clear(&back);
    seal_keypair_clear(&kp);
}

Test(seal_keyfile, file_owned_by_another_user_is_refused)
{
    char path[128];
    struct seal_keypair kp = {0}, back = {0};
    struct seal_err err = {0};
    snprintf(path, sizeof(path), "%s/key", dir);
    if (geteuid() == 0) {
        /* root: a 0600 key file given to nobody */
        cr_assert_eq(seal_keypair_generate(&kp, &err), 0);
        cr_assert_eq(seal_key_file_write(path, kp.sk, &err), 0);
        cr_assert_eq(chown(path, 65534, 65534), 0, "%s", strerror(errno));
        seal_keypair_clear(&kp);
    } else {
        /* anyone else: a file root owns (the owner is checked before the mode) */
        snprintf(path, sizeof(path), "/etc/passwd");
    }
    cr_assert_eq(seal_key_file_read(path, &back, &err), SEAL_E_PERM);
    cr_assert(strstr(err.msg, "owned by uid"), "%s", err.msg);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    cr_assert_null(back.sk);
}

Test(seal_keyfile, existing_file_is_never_overwritten)
{
    char path[128], buf[32] = {0};
    struct seal_keypair kp = {0};
    struct seal_err err = {0};
    int fd;
    snprintf(path, sizeof(path), "%s/key", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "precious\n", 9), 9);
    close(fd);
    cr_assert_eq(seal_keypair_generate(&kp, &err), 0);
    cr_assert_eq(seal_key_file_write(path, kp.sk, &err), SEAL_E_EXISTS);
    cr_assert(strstr(err.msg, "never overwritten"), "%s", err.msg);
    fd = open(path, O_RDONLY);
    cr_assert_eq(read(fd, buf, sizeof(buf) - 1), 9);
    close(fd);
    cr_assert_str_eq(buf, "precious\n");
    /* a dangling symlink counts as existing too */
    snprintf(path, sizeof(path), "%s/link", dir);
    cr_assert_eq(symlink("/nonexistent/target", path), 0);
    cr_assert_eq(seal_key_file_write(path, kp.sk, &err), SEAL_E_EXISTS);
    /* no temporary file left behind: only key and link */
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 2", dir);
    cr_assert_eq(system(cmd), 0);
    seal_keypair_clear(&kp);
}

Test(seal_keyfile, symlink_and_garbage_are_refused)
{
    char path[128], link_path[128];
    struct seal_keypair kp = {0}, back = {0};
    struct seal_err err = {0};
    int fd;
    snprintf(path, sizeof(path), "%s/key", dir);
    snprintf(link_path, sizeof(link_path), "%s/link", dir);
    cr_assert_eq(seal_keypair_generate(&kp, &err), 0);
    cr_assert_eq(seal_key_file_write(path, kp.sk, &err), 0);
    cr_assert_eq(symlink(path, link_path), 0);
    cr_assert_eq(seal_key_file_read(link_path, &back, &err), SEAL_E_PERM);
    cr_assert(strstr(err.msg, "symbolic link"), "%s", err.msg);
    snprintf(path, sizeof(path), "%s/garbage", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_eq(write(fd, "trk1-secret:AAAA\n", 17), 17);
    close(fd);
    cr_assert_eq(seal_key_file_read(path, &back, &err), SEAL_E_INVALID);
    cr_assert_null(back.sk);
    snprintf(path, sizeof(path), "%s/missing", dir);
    cr_assert_eq(seal_key_file_read(path, &back, &err), SEAL_E_IO);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    seal_keypair_clear(&kp);
}

/* ---- public key text ------------------------------------------------------------ */

Test(seal_keytext, round_trips)
{
    struct seal_keypair kp = {0};
    struct seal_err err = {0};
    char text[SEAL_KEY_TEXT_BYTES];
    uint8_t pk[SEAL_PUBLIC_BYTES];
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(seal_keypair_generate(&kp, &err), 0);
        seal_key_to_text(kp.pk, text);
        cr_assert_eq(strlen(text), SEAL_KEY_TEXT_BYTES - 1);
        cr_assert_eq(strncmp(text, "trk1:", 5), 0);
        cr_assert_eq(seal_key_from_text(text, pk, &err), 0, "%s: %s", text, err.msg);
        cr_assert_eq(memcmp(pk, kp.pk, SEAL_PUBLIC_BYTES), 0);
        seal_keypair_clear(&kp);
    }
}

Test(seal_keytext, bad_prefix_length_and_characters_are_refused)
{
    struct seal_keypair kp = {0};
    struct seal_err err = {0};
    char good[SEAL_KEY_TEXT_BYTES], bad[80];
    uint8_t pk[SEAL_PUBLIC_BYTES];
    cr_assert_eq(seal_keypair_generate(&kp, &err), 0);
    seal_key_to_text(kp.pk, good);
    seal_keypair_clear(&kp);

    snprintf(bad, sizeof(bad), "trk2:%s", good + 5);
    cr_assert_eq(seal_key_from_text(bad, pk, &err), SEAL_E_INVALID);
    cr_assert(strstr(err.msg, "trk1:"), "%s", err.msg);
    cr_assert_eq(seal_key_from_text(good + 5, pk, &err), SEAL_E_INVALID);
    snprintf(bad, sizeof(bad), " %s", good);
    cr_assert_eq(seal_key_from_text(bad, pk, &err), SEAL_E_INVALID);
    cr_assert_eq(seal_key_from_text("", pk, &err), SEAL_E_INVALID);
    cr_assert_eq(seal_key_from_text(NULL, pk, &err), SEAL_E_INVALID);

    snprintf(bad, sizeof(bad), "%.47s", good); /* one short */
    cr_assert_eq(seal_key_from_text(bad, pk, &err), SEAL_E_INVALID);
    cr_assert(strstr(err.msg, "got 42"), "%s", err.msg);
    snprintf(bad, sizeof(bad), "%sA", good); /* one long */
    cr_assert_eq(seal_key_from_text(bad, pk, &err), SEAL_E_INVALID);
    cr_assert(strstr(err.msg, "got 44"), "%s", err.msg);
    snprintf(bad, sizeof(bad), "%s=", good); /* padding */
    cr_assert_eq(seal_key_from_text(bad, pk, &err), SEAL_E_INVALID);
    snprintf(bad, sizeof(bad), "%s\n", good); /* trailing newline */
    cr_assert_eq(seal_key_from_text(bad, pk, &err), SEAL_E_INVALID);
    cr_assert_eq(seal_key_from_text("trk1:", pk, &err), SEAL_E_INVALID);

    const char swaps[] = {'+', '/', '=', ' ', '.', '\t', (char)0xc3};
    for (size_t i = 0; i < sizeof(swaps); i++) {
        snprintf(bad, sizeof(bad), "%s", good);
        bad[20] = swaps[i];
        cr_assert_eq(seal_key_from_text(bad, pk, &err), SEAL_E_INVALID, "char 0x%02x",
                     (unsigned)(unsigned char)swaps[i]);
        cr_assert(strstr(err.msg, "character 21"), "%s", err.msg);
    }
}

Test(seal_keytext, non_canonical_last_character_is_refused)
{
    /* 32 zero bytes: 42 'A' then 'A'; the last character's two low bits
     * are unused, so 'B', 'C', 'D' decode to the same bytes */
    char text[SEAL_KEY_TEXT_BYTES];
    uint8_t pk[SEAL_PUBLIC_BYTES], zero[SEAL_PUBLIC_BYTES] = {0};
    struct seal_err err = {0};
    seal_key_to_text(zero, text);
    cr_assert_eq(seal_key_from_text(text, pk, &err), 0, "%s", err.msg);
    for (char last = 'B'; last <= 'D'; last++) {
        text[SEAL_KEY_TEXT_BYTES - 2] = last;
        cr_assert_eq(seal_key_from_text(text, pk, &err), SEAL_E_INVALID, "last %c", last);
    }
}
