/*
 * seal_bench.c: track-seal-bench, the envelope's share of B18 (sealed vs plain
 * round trips and batched ingest, issue 15). B18 itself is end to end over
 * tcp:// once the daemon speaks sealed frames; this program times only what
 * proto/seal.c adds to each frame, in one process, so the integration knows
 * its budget. Figures are paired with a baseline measured in the same run,
 * alternating baseline and subject per repetition (medians reported), and
 * the exit status never depends on them (1 only when something could not
 * run at all).
 *
 *   E1  a 100-byte request: client seal + server open (key lookup, cached
 *       shared key, MAC, clock window, replay cache), ns per request.
 *       Baseline: what a plain frame costs in the same place, a malloc'd
 *       copy of the same bytes on each side (2 x malloc + memcpy + free).
 *   E2  a round trip of E1 plus a 100-byte reply sealed and opened.
 *       Baseline: 4 such copies.
 *   E3  a B1-shaped batch (~4 MiB of packed steps, timestamps and values from
 *       bench_point), seal + open, MB/s. Baseline: the same 2 copies.
 *   E5  E3 the way libtrack and trackd do it: sealed into one buffer
 *       (seal_client_seal_into), opened in place (seal_server_open_in_place).
 *   E1v1, E3v1  E1 and E3 in envelope version 1 (XSalsa20-Poly1305); E1-E3
 *       and E5 are in the client's default version (2, AES-256-GCM, with
 *       AES-NI; the first line of the output says which).
 *   E4  per request crypto with the shared key precomputed (crypto_box_easy_
 *       afternm + open) vs a full crypto_box_easy + crypto_box_open_easy (an
 *       X25519 exchange each); ratio = how many times cheaper the cached key is.
 *
 * Usage: track-seal-bench [--smoke] [--reps N]
 */
#include "bench.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "seal.h"

#define SMALL   100
#define BATCH_N 174762 /* points: 3 columns of 8 bytes = 4 MiB */

static uint8_t client_pk[SEAL_PUBLIC_BYTES];

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int known(void *arg, const uint8_t pk[SEAL_PUBLIC_BYTES])
{
    (void)arg;
    return memcmp(pk, client_pk, SEAL_PUBLIC_BYTES) == 0;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) {
        double x = v[i];
        int j = i - 1;
        for (; j >= 0 && v[j] > x; j--)
            v[j + 1] = v[j];
        v[j + 1] = x;
    }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static volatile uint8_t sink;

/* copies per item, items times: ns per item */
static double time_copies(const uint8_t *src, size_t len, int copies, long items)
{
    int64_t t0 = now_ns();
    for (long i = 0; i < items; i++) {
        for (int c = 0; c < copies; c++) {
            uint8_t *d = malloc(len);
            if (!d)
                return -1;
            memcpy(d, src, len);
            sink ^= d[len / 2];
            free(d);
        }
    }
    return (double)(now_ns() - t0) / (double)items;
}

struct pair {
    struct seal_server *srv;
    struct seal_client *cli;
};

/* seal + open (and the reply when `reply`), items times: ns per item, or
 * -1 when any step fails */
static double time_sealed(struct pair *p, const uint8_t *src, size_t len, int reply, long items)
{
    struct seal_err err;
    int64_t t0 = now_ns();
    for (long i = 0; i < items; i++) {
        uint8_t *frame = NULL, *plain = NULL, *rf = NULL, *rp = NULL;
        size_t flen, plen, rlen, rplen;
        struct seal_ticket t;
        struct seal_peer peer;
        int rc = seal_client_seal(p->cli, src, len, &frame, &flen, &t, &err);
        if (rc == 0)
            rc = seal_server_open(p->srv, frame, flen, &peer, &plain, &plen, &err);
        if (rc == 0 && reply) {
            rc = seal_server_seal_reply(p->srv, &peer, src, len, &rf, &rlen, &err);
            if (rc == 0)
                rc = seal_client_open_reply(p->cli, &t, rf, rlen, &rp, &rplen, &err);
        }
        if (rc == 0)
            sink ^= plain[len / 2];
        free(frame);
        free(plain);
        free(rf);
        free(rp);
        if (rc) {
            fprintf(stderr, "track-seal-bench: %s: %s\n", seal_strerror(rc), err.msg);
            return -1;
        }
    }
    return (double)(now_ns() - t0) / (double)items;
}

/* crypto of one request of len bytes: precomputed (k) or full, items times */
static double time_box(const uint8_t *src, size_t len, const uint8_t *k, const uint8_t *spk,
                       const uint8_t *ssk, const uint8_t *csk, long items)
{
    uint8_t nonce[crypto_box_NONCEBYTES] = {0};
    uint8_t *c = malloc(len + crypto_box_MACBYTES), *m = malloc(len);
    int64_t t0 = now_ns();
    int bad = 0;
    if (!c || !m)
        bad = 1;
    for (long i = 0; i < items && !bad; i++) {
        randombytes_buf(nonce, sizeof(nonce));
        if (k)
            bad = crypto_box_easy_afternm(c, src, len, nonce, k) != 0 ||
                  crypto_box_open_easy_afternm(m, c, len + crypto_box_MACBYTES, nonce, k) != 0;
        else
            bad = crypto_box_easy(c, src, len, nonce, spk, csk) != 0 ||
                  crypto_box_open_easy(m, c, len + crypto_box_MACBYTES, nonce, client_pk, ssk) != 0;
    }
    double ns = (double)(now_ns() - t0) / (double)items;
    free(c);
    free(m);
    return bad ? -1 : ns;
}

/* a server and a client sealing in `version` (0: the client's default) */
static int pair_new(struct pair *p, const struct seal_keypair *s, const struct seal_keypair *c,
                    int version)
{
    struct seal_server_opts o = {.key_known = known};
    struct seal_err err;
    if (seal_server_new(&o, s->sk, &p->srv, &err) != 0 ||
        seal_client_new(c->sk, c->pk, s->pk, &p->cli, &err) != 0) {
        fprintf(stderr, "track-seal-bench: %s\n", err.msg);
        return -1;
    }
    if (version && seal_client_set_version(p->cli, version) != 0) {
        fprintf(stderr, "track-seal-bench: version %d is not available here\n", version);
        return -1;
    }
    return 0;
}

/* E5: the daemon's and libtrack's path for a batch: sealed into a buffer
 * made once (libtrack: nanomsg's message), opened in place */
static double time_in_place(struct pair *p, const uint8_t *src, size_t len, long items)
{
    struct seal_err err;
    size_t cap = seal_client_frame_bytes(p->cli, len);
    uint8_t *frame = malloc(cap);
    int rc = frame ? 0 : SEAL_E_NOMEM;
    int64_t t0 = now_ns();
    for (long i = 0; i < items && rc == 0; i++) {
        size_t flen, plen;
        const uint8_t *plain;
        struct seal_peer peer;
        rc = seal_client_seal_into(p->cli, src, len, frame, cap, &flen, NULL, &err);
        if (rc == 0)
            rc = seal_server_open_in_place(p->srv, frame, flen, &peer, &plain, &plen, &err);
        if (rc == 0)
            sink ^= plain[len / 2];
    }
    double ns = (double)(now_ns() - t0) / (double)items;
    free(frame);
    if (rc) {
        fprintf(stderr, "track-seal-bench: %s: %s\n", seal_strerror(rc), err.msg);
        return -1;
    }
    return ns;
}

static void pair_free(struct pair *p)
{
    seal_server_free(p->srv);
    seal_client_free(p->cli);
}

static void row(const char *id, const char *what, const char *fig, const char *base, double ratio)
{
    printf("| %-4s | %-62s | %-16s | %-16s | %6.3f |\n", id, what, fig, base, ratio);
}

int main(int argc, char **argv)
{
    int reps = 7, smoke = 0, rc = 1;
    long n_small = 20000, n_batch = 8, n_box = 400;
    struct seal_keypair skp = {0}, ckp = {0};
    struct seal_err err;
    uint8_t small[SMALL], *batch = NULL, *k = NULL;
    size_t batch_len = (size_t)BATCH_N * 24;
    double b1[64], s1[64], b2[64], s2[64], b3[64], s3[64], pre[64], full[64];
    double s1v1[64], s3v1[64], s5[64];
    int version = 0;
    char fig[64], base[64];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0)
            smoke = 1;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = (int)strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: track-seal-bench [--smoke] [--reps N]\n");
            return 2;
        }
    }
    if (smoke) {
        reps = 1;
        n_small = 200;
        n_batch = 1;
        n_box = 20;
    }
    if (reps < 1 || reps > 64)
        reps = 7;
    if (sodium_init() < 0 || seal_keypair_generate(&skp, &err) != 0 ||
        seal_keypair_generate(&ckp, &err) != 0)
        goto out;
    memcpy(client_pk, ckp.pk, SEAL_PUBLIC_BYTES);
    for (int i = 0; i < SMALL; i++)
        small[i] = (uint8_t)(i * 7 + 1);
    /* B1's columns: steps, timestamps, values, as a LogBatch packs them */
    batch = malloc(batch_len);
    k = sodium_malloc(crypto_box_BEFORENMBYTES);
    if (!batch || !k)
        goto out;
    for (int64_t i = 0; i < BATCH_N; i++) {
        const char *key;
        int64_t step, ts = INT64_C(1800000000000) + i;
        double v;
        bench_point(i, &key, &step, &v);
        memcpy(batch + i * 8, &step, 8);
        memcpy(batch + (size_t)BATCH_N * 8 + i * 8, &ts, 8);
        memcpy(batch + (size_t)BATCH_N * 16 + i * 8, &v, 8);
    }
    if (crypto_box_beforenm(k, skp.pk, ckp.sk) != 0)
        goto out;

    for (int r = 0; r < reps; r++) {
        struct pair p, p1;
        /* a fresh server per repetition: its replay cache never fills */
        if (pair_new(&p, &skp, &ckp, 0) != 0)
            goto out;
        if (pair_new(&p1, &skp, &ckp, 1) != 0) {
            pair_free(&p);
            goto out;
        }
        version = seal_client_version(p.cli);
        b1[r] = time_copies(small, SMALL, 2, n_small);
        s1[r] = time_sealed(&p, small, SMALL, 0, n_small);
        b2[r] = time_copies(small, SMALL, 4, n_small);
        s2[r] = time_sealed(&p, small, SMALL, 1, n_small);
        b3[r] = time_copies(batch, batch_len, 2, n_batch);
        s3[r] = time_sealed(&p, batch, batch_len, 0, n_batch);
        s1v1[r] = time_sealed(&p1, small, SMALL, 0, n_small);
        s3v1[r] = time_sealed(&p1, batch, batch_len, 0, n_batch);
        s5[r] = time_in_place(&p, batch, batch_len, n_batch);
        pre[r] = time_box(small, SMALL, k, NULL, NULL, NULL, n_box * 20);
        full[r] = time_box(small, SMALL, NULL, skp.pk, skp.sk, ckp.sk, n_box);
        pair_free(&p);
        pair_free(&p1);
        if (b1[r] < 0 || s1[r] < 0 || s2[r] < 0 || s3[r] < 0 || pre[r] < 0 || full[r] < 0 ||
            s1v1[r] < 0 || s3v1[r] < 0 || s5[r] < 0)
            goto out;
    }
    double mb1 = median(b1, reps), ms1 = median(s1, reps), mb2 = median(b2, reps),
           ms2 = median(s2, reps), mb3 = median(b3, reps), ms3 = median(s3, reps),
           mpre = median(pre, reps), mfull = median(full, reps);
    double ms1v1 = median(s1v1, reps), ms3v1 = median(s3v1, reps), ms5 = median(s5, reps);
    printf("E1-E3 and E5 in envelope version %d (the client's default here; AES-256-GCM via %s), "
           "E1v1 and E3v1 in version 1.\n\n",
           version, seal_aes_engine());

    printf("| id   | %-62s | %-16s | %-16s | ratio  |\n", "what", "figure", "baseline");
    printf("|------|%s|%s|%s|--------|\n",
           "----------------------------------------------------------------", "------------------",
           "------------------");
    snprintf(fig, sizeof(fig), "%.0f ns/req", ms1);
    snprintf(base, sizeof(base), "%.0f ns (copies)", mb1);
    row("E1", "100 B request: seal + open (vs 2 malloc'd copies)", fig, base, mb1 / ms1);
    snprintf(fig, sizeof(fig), "%.0f ns/rt", ms2);
    snprintf(base, sizeof(base), "%.0f ns (copies)", mb2);
    row("E2", "100 B round trip: request + 100 B reply (vs 4 copies)", fig, base, mb2 / ms2);
    snprintf(fig, sizeof(fig), "%.0f MB/s", (double)batch_len / ms3 * 1e3);
    snprintf(base, sizeof(base), "%.0f MB/s", (double)batch_len / mb3 * 1e3);
    row("E3", "4 MiB B1-shaped batch: seal + open (vs 2 copies)", fig, base, mb3 / ms3);
    snprintf(fig, sizeof(fig), "%.0f MB/s", (double)batch_len / ms5 * 1e3);
    row("E5", "E3 sealed into one buffer, opened in place (vs 2 copies)", fig, base, mb3 / ms5);
    snprintf(fig, sizeof(fig), "%.0f ns/req", ms1v1);
    snprintf(base, sizeof(base), "%.0f ns (copies)", mb1);
    row("E1v1", "E1 in version 1 (XSalsa20-Poly1305)", fig, base, mb1 / ms1v1);
    snprintf(fig, sizeof(fig), "%.0f MB/s", (double)batch_len / ms3v1 * 1e3);
    snprintf(base, sizeof(base), "%.0f MB/s", (double)batch_len / mb3 * 1e3);
    row("E3v1", "E3 in version 1 (XSalsa20-Poly1305)", fig, base, mb3 / ms3v1);
    snprintf(fig, sizeof(fig), "%.0f ns/req", mpre);
    snprintf(base, sizeof(base), "%.0f ns (full)", mfull);
    row("E4", "100 B box+open, shared key cached vs full crypto_box", fig, base, mfull / mpre);
    printf("\nE1-E3: ratio = baseline time / sealed time (1.0 = free); E4: times cheaper.\n"
           "E1 extra per request: %.0f ns; E3 extra per 4 MiB batch: %.2f ms (version 1: "
           "%.2f ms; E5: %.2f ms). Medians of %d.\n",
           ms1 - mb1, (ms3 - mb3) / 1e6, (ms3v1 - mb3) / 1e6, (ms5 - mb3) / 1e6, reps);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "track-seal-bench: a measurement could not run\n");
    free(batch);
    if (k) {
        sodium_memzero(k, crypto_box_BEFORENMBYTES);
        sodium_free(k);
    }
    seal_keypair_clear(&skp);
    seal_keypair_clear(&ckp);
    return rc;
}
