/*
 * seal.c: the sealed envelope (format, checks and guarantees in seal.h):
 * frames, the server's opener and the client's sealer. Keys, their text and
 * their files are seal_key.c's.
 *
 * Two caches make the server's cost per request a symmetric box:
 *
 * Shared keys: crypto_box_beforenm (an X25519 scalar multiplication, tens of
 * microseconds) runs once per client key; the result is kept in an LRU of
 * key_cache entries, in one sodium_malloc'd array (guard pages, mlock'd,
 * wiped when an entry is evicted and when the server is freed), found
 * through a chained hash table keyed with a random SipHash key, so a peer
 * cannot choose keys that all land in one chain.
 *
 * Replays: the keyed 128-bit SipHash of (client key, nonce) of every opened
 * frame is kept in two generations of an open-addressing set, each at most
 * replay_cap entries (table of 2 x cap slots, so probes stay short). A
 * generation covers period = 2 x window of the server's clock: when it ends,
 * the older one is cleared and the current one becomes the older. A digest
 * inserted at server time t is therefore kept until at least t + 2 x window,
 * and the frame's own timestamp is at most t + window, so by the time the
 * digest is dropped the frame is stale and refused anyway. A clock that
 * jumps ahead drops digests early, but the same jump makes those frames
 * stale. One that jumps back keeps them longer (more memory, never less
 * safety), at most until it is 2 x window before the earliest digest: then
 * every recorded frame is too far in the future to open, and both
 * generations are cleared, so a clock set back by hours does not leave the
 * server refusing everything as FULL until it catches up.
 * When the current generation holds replay_cap digests a fresh frame is
 * refused with SEAL_E_FULL: forgetting a digest could let a replay in.
 */
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seal_internal.h"
#include "track_limits.h"
#include "wire.h"

__attribute__((format(printf, 3, 4))) int seal_i_fail(struct seal_err *err, int code,
                                                      const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

int seal_i_init_sodium(struct seal_err *err)
{
    if (sodium_init() < 0)
        return seal_i_fail(err, SEAL_E_NOMEM, "libsodium could not be initialised");
    return 0;
}

const char *seal_strerror(int code)
{
    switch (code) {
    case SEAL_OK:
        return "OK";
    case SEAL_E_BAD_FRAME:
        return "BAD_FRAME";
    case SEAL_E_UNKNOWN_KEY:
        return "UNKNOWN_KEY";
    case SEAL_E_TAMPERED:
        return "TAMPERED";
    case SEAL_E_STALE:
        return "STALE";
    case SEAL_E_REPLAYED:
        return "REPLAYED";
    case SEAL_E_FULL:
        return "FULL";
    case SEAL_E_WRONG_SERVER:
        return "WRONG_SERVER";
    case SEAL_E_IO:
        return "IO";
    case SEAL_E_PERM:
        return "PERM";
    case SEAL_E_EXISTS:
        return "EXISTS";
    case SEAL_E_INVALID:
        return "INVALID";
    case SEAL_E_NOMEM:
        return "NOMEM";
    default:
        return "UNKNOWN";
    }
}

/* ---- frames ----------------------------------------------------------------- */

enum seal_kind seal_frame_kind(const uint8_t *frame, size_t len)
{
    if (!frame || len < 2 || frame[1] != SEAL_VERSION)
        return SEAL_KIND_PLAIN;
    if (frame[0] == SEAL_MAGIC_REQ)
        return SEAL_KIND_REQUEST;
    if (frame[0] == SEAL_MAGIC_REPLY)
        return SEAL_KIND_REPLY;
    return SEAL_KIND_PLAIN;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int64_t default_clock(void *arg)
{
    (void)arg;
    return wire_now_ms();
}

/* ---- server ----------------------------------------------------------------- */

struct kc_entry {
    uint8_t pk[SEAL_PUBLIC_BYTES];
    uint8_t k[crypto_box_BEFORENMBYTES];
    int32_t prev, next; /* LRU list, most recent at head */
    int32_t hnext;      /* hash chain */
};

/* The server's secrets, in one sodium_malloc'd block. */
struct srv_secret {
    uint8_t sk[SEAL_SECRET_BYTES];
    uint8_t scratch[crypto_box_BEFORENMBYTES];
};

struct replay_gen {
    uint8_t (*slot)[16]; /* all-zero: empty */
    size_t count;
    int64_t lo; /* the earliest server time a digest in it was recorded at */
};

struct seal_server {
    struct seal_server_opts o;
    uint8_t pk[SEAL_PUBLIC_BYTES];
    struct srv_secret *sec;
    /* shared keys */
    struct kc_entry *kc; /* sodium_malloc'd, o.key_cache entries */
    int32_t *bucket;     /* head index per bucket, -1 empty */
    size_t nbucket;      /* power of 2 */
    size_t kc_used;
    int32_t head, tail;
    uint8_t kc_hash[crypto_shorthash_KEYBYTES];
    /* replays */
    struct replay_gen gen[2]; /* gen[cur] is current */
    int cur;
    size_t rp_mask;
    int64_t gen_start;
    int gen_started;
    uint8_t rp_hash[crypto_shorthash_siphashx24_KEYBYTES];
};

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

int seal_server_new(const struct seal_server_opts *opts, const uint8_t *sk,
                    struct seal_server **out, struct seal_err *err)
{
    struct seal_server *s = NULL;
    int rc = seal_i_init_sodium(err);
    *out = NULL;
    if (rc)
        return rc;
    if (!opts || !opts->key_known || !sk)
        return seal_i_fail(err, SEAL_E_INVALID, "seal server: missing key_known callback or key");
    s = calloc(1, sizeof(*s));
    if (!s)
        return seal_i_fail(err, SEAL_E_NOMEM, "no memory for a seal server");
    s->o = *opts;
    if (s->o.window_ms <= 0)
        s->o.window_ms = SEAL_DEFAULT_WINDOW_MS;
    if (s->o.key_cache == 0)
        s->o.key_cache = SEAL_DEFAULT_KEY_CACHE;
    if (s->o.replay_cap == 0)
        s->o.replay_cap = SEAL_DEFAULT_REPLAY_CAP;
    if (s->o.max_frame == 0 || s->o.max_frame > LIMIT_FRAME_BYTES)
        s->o.max_frame = LIMIT_FRAME_BYTES;
    if (!s->o.clock_ms)
        s->o.clock_ms = default_clock;
    if (s->o.key_cache > (1u << 24) || s->o.replay_cap > (1u << 26) ||
        s->o.window_ms > INT64_C(1) << 40 || s->o.max_frame < SEAL_REQ_OVERHEAD) {
        rc = seal_i_fail(err, SEAL_E_INVALID,
                         "seal server: key_cache %zu (max %u), replay_cap %zu "
                         "(max %u), window_ms or max_frame out of range",
                         s->o.key_cache, 1u << 24, s->o.replay_cap, 1u << 26);
        goto out;
    }
    s->sec = sodium_malloc(sizeof(*s->sec));
    s->kc = sodium_malloc(s->o.key_cache * sizeof(*s->kc));
    s->nbucket = pow2_at_least(s->o.key_cache);
    s->bucket = malloc(s->nbucket * sizeof(*s->bucket));
    s->rp_mask = pow2_at_least(2 * s->o.replay_cap) - 1;
    for (int g = 0; g < 2; g++)
        s->gen[g].slot = calloc(s->rp_mask + 1, sizeof(*s->gen[g].slot));
    if (!s->sec || !s->kc || !s->bucket || !s->gen[0].slot || !s->gen[1].slot) {
        rc = seal_i_fail(err, SEAL_E_NOMEM,
                         "no memory for a seal server (key_cache %zu, replay_cap %zu)",
                         s->o.key_cache, s->o.replay_cap);
        goto out;
    }
    memset(s->kc, 0, s->o.key_cache * sizeof(*s->kc));
    for (size_t i = 0; i < s->nbucket; i++)
        s->bucket[i] = -1;
    s->head = s->tail = -1;
    memcpy(s->sec->sk, sk, SEAL_SECRET_BYTES);
    crypto_scalarmult_base(s->pk, s->sec->sk);
    crypto_shorthash_keygen(s->kc_hash);
    randombytes_buf(s->rp_hash, sizeof(s->rp_hash));
    *out = s;
    s = NULL;
out:
    seal_server_free(s);
    return rc;
}

void seal_server_free(struct seal_server *srv)
{
    if (!srv)
        return;
    if (srv->sec) {
        sodium_memzero(srv->sec, sizeof(*srv->sec));
        sodium_free(srv->sec);
    }
    if (srv->kc) {
        sodium_memzero(srv->kc, srv->o.key_cache * sizeof(*srv->kc));
        sodium_free(srv->kc);
    }
    free(srv->bucket);
    free(srv->gen[0].slot);
    free(srv->gen[1].slot);
    sodium_memzero(srv->kc_hash, sizeof(srv->kc_hash));
    sodium_memzero(srv->rp_hash, sizeof(srv->rp_hash));
    free(srv);
}

void seal_server_public(const struct seal_server *srv, uint8_t pk[SEAL_PUBLIC_BYTES])
{
    memcpy(pk, srv->pk, SEAL_PUBLIC_BYTES);
}

static size_t kc_bucket(const struct seal_server *s, const uint8_t *pk)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v = 0;
    crypto_shorthash(h, pk, SEAL_PUBLIC_BYTES, s->kc_hash);
    memcpy(&v, h, sizeof(v));
    return (size_t)v & (s->nbucket - 1);
}

static void lru_unlink(struct seal_server *s, int32_t i)
{
    struct kc_entry *e = &s->kc[i];
    if (e->prev >= 0)
        s->kc[e->prev].next = e->next;
    else
        s->head = e->next;
    if (e->next >= 0)
        s->kc[e->next].prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = -1;
}

static void lru_push_head(struct seal_server *s, int32_t i)
{
    struct kc_entry *e = &s->kc[i];
    e->prev = -1;
    e->next = s->head;
    if (s->head >= 0)
        s->kc[s->head].prev = i;
    s->head = i;
    if (s->tail < 0)
        s->tail = i;
}

/* Removes entry i from its hash chain (b: its bucket). */
static void chain_remove(struct seal_server *s, size_t b, int32_t i)
{
    int32_t *link = &s->bucket[b];
    while (*link >= 0 && *link != i)
        link = &s->kc[*link].hnext;
    if (*link == i)
        *link = s->kc[i].hnext;
    s->kc[i].hnext = -1;
}

static int32_t kc_find(const struct seal_server *s, size_t b, const uint8_t *pk)
{
    for (int32_t i = s->bucket[b]; i >= 0; i = s->kc[i].hnext) {
        if (memcmp(s->kc[i].pk, pk, SEAL_PUBLIC_BYTES) == 0)
            return i;
    }
    return -1;
}

/* The shared key for pk, computed and cached on a miss (evicting the least
 * recently used). NULL when pk is not a usable key (a low-order point). */
static const uint8_t *kc_get(struct seal_server *s, const uint8_t *pk)
{
    size_t b = kc_bucket(s, pk);
    int32_t i = kc_find(s, b, pk);
    if (i >= 0) {
        if (s->head != i) {
            lru_unlink(s, i);
            lru_push_head(s, i);
        }
        return s->kc[i].k;
    }
    if (crypto_box_beforenm(s->sec->scratch, pk, s->sec->sk) != 0) {
        sodium_memzero(s->sec->scratch, sizeof(s->sec->scratch));
        return NULL;
    }
    if (s->kc_used < s->o.key_cache) {
        i = (int32_t)s->kc_used++;
    } else {
        i = s->tail;
        lru_unlink(s, i);
        chain_remove(s, kc_bucket(s, s->kc[i].pk), i);
        sodium_memzero(&s->kc[i], sizeof(s->kc[i]));
    }
    memcpy(s->kc[i].pk, pk, SEAL_PUBLIC_BYTES);
    memcpy(s->kc[i].k, s->sec->scratch, sizeof(s->kc[i].k));
    sodium_memzero(s->sec->scratch, sizeof(s->sec->scratch));
    s->kc[i].hnext = s->bucket[b];
    s->bucket[b] = i;
    lru_push_head(s, i);
    return s->kc[i].k;
}

void seal_server_forget(struct seal_server *srv, const uint8_t pk[SEAL_PUBLIC_BYTES])
{
    size_t b = kc_bucket(srv, pk);
    int32_t i = kc_find(srv, b, pk), last;
    if (i < 0)
        return;
    lru_unlink(srv, i);
    chain_remove(srv, b, i);
    /* keep entries 0..kc_used-1 dense: move the last one into the hole */
    last = (int32_t)srv->kc_used - 1;
    if (i != last) {
        size_t lb = kc_bucket(srv, srv->kc[last].pk);
        int32_t *link = &srv->bucket[lb];
        while (*link != last)
            link = &srv->kc[*link].hnext;
        *link = i;
        srv->kc[i] = srv->kc[last];
        if (srv->kc[i].prev >= 0)
            srv->kc[srv->kc[i].prev].next = i;
        else
            srv->head = i;
        if (srv->kc[i].next >= 0)
            srv->kc[srv->kc[i].next].prev = i;
        else
            srv->tail = i;
    }
    sodium_memzero(&srv->kc[last], sizeof(srv->kc[last]));
    srv->kc_used--;
}

static void replay_clear(struct seal_server *s, struct replay_gen *g)
{
    if (g->count)
        memset(g->slot, 0, (s->rp_mask + 1) * sizeof(*g->slot));
    g->count = 0;
}

/* Advances the replay generations to server time now (see the header). */
static void replay_rotate(struct seal_server *s, int64_t now)
{
    int64_t period = 2 * s->o.window_ms;
    if (!s->gen_started) {
        s->gen_started = 1;
        s->gen_start = now;
        return;
    }
    if (now < s->gen_start) {
        /* the clock went back: every recorded frame has ts >= lo - window, so
         * once now < lo - 2 x window they are all too far ahead to open */
        int64_t lo = INT64_MAX;
        for (int g = 0; g < 2; g++) {
            if (s->gen[g].count && s->gen[g].lo < lo)
                lo = s->gen[g].lo;
        }
        if (lo == INT64_MAX || now < lo - 2 * s->o.window_ms) {
            replay_clear(s, &s->gen[0]);
            replay_clear(s, &s->gen[1]);
            s->gen_start = now;
        }
        return;
    }
    if (now - s->gen_start < period)
        return;
    replay_clear(s, &s->gen[1 - s->cur]);
    if (now - s->gen_start >= 2 * period)
        replay_clear(s, &s->gen[s->cur]);
    s->cur = 1 - s->cur;
    s->gen_start = now;
}

/* The slot of digest d in g: where it is, or the empty slot where it goes. */
static size_t replay_slot(const struct seal_server *s, const struct replay_gen *g,
                          const uint8_t d[16], int *found)
{
    uint64_t v;
    static const uint8_t zero[16];
    memcpy(&v, d, sizeof(v));
    for (size_t i = (size_t)v & s->rp_mask;; i = (i + 1) & s->rp_mask) {
        if (memcmp(g->slot[i], d, 16) == 0) {
            *found = 1;
            return i;
        }
        if (memcmp(g->slot[i], zero, 16) == 0) {
            *found = 0;
            return i;
        }
    }
}

/* 0 and d recorded; SEAL_E_REPLAYED when seen; SEAL_E_FULL at the cap. */
static int replay_check(struct seal_server *s, const uint8_t *pk, const uint8_t *nonce, int64_t now,
                        struct seal_err *err)
{
    uint8_t id[SEAL_PUBLIC_BYTES + SEAL_NONCE_BYTES], d[16];
    int found = 0;
    size_t at;
    memcpy(id, pk, SEAL_PUBLIC_BYTES);
    memcpy(id + SEAL_PUBLIC_BYTES, nonce, SEAL_NONCE_BYTES);
    crypto_shorthash_siphashx24(d, id, sizeof(id), s->rp_hash);
    d[0] |= 1; /* never all zero, the empty slot */
    replay_rotate(s, now);
    (void)replay_slot(s, &s->gen[1 - s->cur], d, &found);
    if (!found) {
        struct replay_gen *g = &s->gen[s->cur];
        at = replay_slot(s, g, d, &found);
        if (!found) {
            if (g->count >= s->o.replay_cap)
                return seal_i_fail(err, SEAL_E_FULL,
                                   "replay cache full: %zu frames opened within %lld s "
                                   "(replay_cap); refusing new frames until older ones expire",
                                   g->count, (long long)(2 * s->o.window_ms / 1000));
            memcpy(g->slot[at], d, 16);
            if (g->count++ == 0 || now < g->lo)
                g->lo = now;
            return 0;
        }
    }
    return seal_i_fail(err, SEAL_E_REPLAYED,
                       "frame replayed: this nonce from this key was already "
                       "opened");
}

int seal_server_open(struct seal_server *srv, const uint8_t *frame, size_t len,
                     struct seal_peer *peer, uint8_t **plain, size_t *plain_len,
                     struct seal_err *err)
{
    const uint8_t *pk, *nonce, *k;
    uint8_t *buf = NULL;
    size_t n;
    int64_t now, ts, diff;
    int rc = 0;
    *plain = NULL;
    *plain_len = 0;
    if (!frame || len < 2 || frame[0] != SEAL_MAGIC_REQ)
        return seal_i_fail(err, SEAL_E_BAD_FRAME,
                           "not a sealed request (first byte 0x%02x, expected "
                           "0x%02x): plain frames are refused here",
                           (frame && len) ? frame[0] : 0u, SEAL_MAGIC_REQ);
    if (frame[1] != SEAL_VERSION)
        return seal_i_fail(err, SEAL_E_BAD_FRAME,
                           "sealed request version %u, this server speaks %u", frame[1],
                           SEAL_VERSION);
    if (len < SEAL_REQ_OVERHEAD)
        return seal_i_fail(err, SEAL_E_BAD_FRAME,
                           "sealed request of %zu bytes: shorter than its %u "
                           "bytes of header and MAC",
                           len, SEAL_REQ_OVERHEAD);
    if (len > srv->o.max_frame)
        return seal_i_fail(err, SEAL_E_BAD_FRAME,
                           "sealed request of %zu bytes: over the %zu byte "
                           "frame limit",
                           len, srv->o.max_frame);
    pk = frame + 2;
    nonce = frame + 2 + SEAL_PUBLIC_BYTES;
    if (srv->o.key_known(srv->o.key_arg, pk) != 1)
        return seal_i_fail(err, SEAL_E_UNKNOWN_KEY,
                           "the client's key is not accepted by this server");
    k = kc_get(srv, pk);
    if (!k)
        return seal_i_fail(err, SEAL_E_UNKNOWN_KEY, "the client's key is not a usable public key");
    n = len - SEAL_REQ_OVERHEAD;
    buf = malloc(n ? n : 1);
    if (!buf)
        return seal_i_fail(err, SEAL_E_NOMEM, "no memory for a %zu byte request", n);
    if (crypto_box_open_easy_afternm(buf, frame + SEAL_REQ_HEADER, len - SEAL_REQ_HEADER, nonce,
                                     k) != 0) {
        rc = seal_i_fail(err, SEAL_E_TAMPERED,
                         "sealed request does not verify: altered on the way, "
                         "or not sealed for this server's key");
        goto out;
    }
    now = srv->o.clock_ms(srv->o.clock_arg);
    if (now < 0)
        now = 0;
    if (nonce[0] & 0x80) {
        rc = seal_i_fail(err, SEAL_E_STALE, "sealed request has a negative timestamp");
        goto out;
    }
    ts = (int64_t)get_be64(nonce);
    diff = ts >= now ? ts - now : now - ts;
    if (diff > srv->o.window_ms) {
        rc = seal_i_fail(err, SEAL_E_STALE,
                         "sealed request timestamped %.1f s %s the server's clock, "
                         "outside the +-%lld s window: the client's and server's clocks differ%s",
                         (double)diff / 1000.0, ts >= now ? "ahead of" : "behind",
                         (long long)(srv->o.window_ms / 1000),
                         ts >= now ? "" : " (or the frame was held back and replayed)");
        goto out;
    }
    rc = replay_check(srv, pk, nonce, now, err);
    if (rc)
        goto out;
    if (peer) {
        memcpy(peer->pk, pk, SEAL_PUBLIC_BYTES);
        memcpy(peer->ticket.nonce, nonce, SEAL_NONCE_BYTES);
        peer->ts_ms = ts;
    }
    if (n) {
        *plain = buf;
        buf = NULL;
    }
    *plain_len = n;
out:
    if (buf) {
        /* a frame refused after it opened: do not leave its text in the heap */
        sodium_memzero(buf, n);
        free(buf);
    }
    return rc;
}

int seal_server_seal_reply(struct seal_server *srv, const struct seal_peer *peer,
                           const uint8_t *plain, size_t len, uint8_t **frame, size_t *frame_len,
                           struct seal_err *err)
{
    const uint8_t *k;
    uint8_t *out, *nonce;
    *frame = NULL;
    *frame_len = 0;
    if (len > srv->o.max_frame - SEAL_REPLY_OVERHEAD)
        return seal_i_fail(err, SEAL_E_INVALID,
                           "reply of %zu bytes: over the %zu byte frame limit "
                           "less %u bytes of envelope",
                           len, srv->o.max_frame, SEAL_REPLY_OVERHEAD);
    k = kc_get(srv, peer->pk);
    if (!k)
        return seal_i_fail(err, SEAL_E_INVALID, "the peer's key is not a usable public key");
    out = malloc(len + SEAL_REPLY_OVERHEAD);
    if (!out)
        return seal_i_fail(err, SEAL_E_NOMEM, "no memory for a %zu byte reply", len);
    out[0] = SEAL_MAGIC_REPLY;
    out[1] = SEAL_VERSION;
    nonce = out + 2;
    randombytes_buf(nonce, SEAL_NONCE_BYTES);
    nonce[0] |= 0x80; /* replies: top bit set, requests: clear */
    /* plaintext = the request's nonce, then the reply; boxed in place */
    uint8_t *m = out + SEAL_REPLY_HEADER + SEAL_MAC_BYTES;
    memcpy(m, peer->ticket.nonce, SEAL_NONCE_BYTES);
    if (len)
        memcpy(m + SEAL_NONCE_BYTES, plain, len);
    if (crypto_box_easy_afternm(out + SEAL_REPLY_HEADER, m, SEAL_NONCE_BYTES + len, nonce, k) !=
        0) {
        free(out);
        return seal_i_fail(err, SEAL_E_INVALID, "reply could not be sealed");
    }
    *frame = out;
    *frame_len = len + SEAL_REPLY_OVERHEAD;
    return 0;
}

/* ---- client ----------------------------------------------------------------- */

/* All of it in sodium_malloc'd memory: k is secret. */
struct seal_client {
    uint8_t k[crypto_box_BEFORENMBYTES];
    uint8_t pk[SEAL_PUBLIC_BYTES];
    uint8_t server_pk[SEAL_PUBLIC_BYTES];
    int64_t (*clock_ms)(void *);
    void *clock_arg;
};

int seal_client_new(const uint8_t *sk, const uint8_t pk[SEAL_PUBLIC_BYTES],
                    const uint8_t server_pk[SEAL_PUBLIC_BYTES], struct seal_client **out,
                    struct seal_err *err)
{
    uint8_t derived[SEAL_PUBLIC_BYTES];
    struct seal_client *c;
    int rc = seal_i_init_sodium(err);
    *out = NULL;
    if (rc)
        return rc;
    if (!sk || !pk || !server_pk)
        return seal_i_fail(err, SEAL_E_INVALID, "seal client: missing key");
    crypto_scalarmult_base(derived, sk);
    if (sodium_memcmp(derived, pk, SEAL_PUBLIC_BYTES) != 0)
        return seal_i_fail(err, SEAL_E_INVALID,
                           "seal client: the public key is not the secret "
                           "key's");
    c = sodium_malloc(sizeof(*c));
    if (!c)
        return seal_i_fail(err, SEAL_E_NOMEM, "no memory for a seal client");
    memset(c, 0, sizeof(*c));
    if (crypto_box_beforenm(c->k, server_pk, sk) != 0) {
        seal_client_free(c);
        return seal_i_fail(err, SEAL_E_INVALID,
                           "seal client: the server's key is not a usable "
                           "public key");
    }
    memcpy(c->pk, pk, SEAL_PUBLIC_BYTES);
    memcpy(c->server_pk, server_pk, SEAL_PUBLIC_BYTES);
    c->clock_ms = default_clock;
    *out = c;
    return 0;
}

void seal_client_free(struct seal_client *c)
{
    if (!c)
        return;
    sodium_memzero(c, sizeof(*c));
    sodium_free(c);
}

void seal_client_set_clock(struct seal_client *c, int64_t (*clock_ms)(void *), void *arg)
{
    c->clock_ms = clock_ms ? clock_ms : default_clock;
    c->clock_arg = arg;
}

int seal_client_seal(struct seal_client *c, const uint8_t *plain, size_t len, uint8_t **frame,
                     size_t *frame_len, struct seal_ticket *ticket, struct seal_err *err)
{
    uint8_t *out, *nonce;
    int64_t now;
    *frame = NULL;
    *frame_len = 0;
    if (len > LIMIT_FRAME_BYTES - SEAL_REQ_OVERHEAD)
        return seal_i_fail(err, SEAL_E_INVALID,
                           "request of %zu bytes: over the %u byte frame limit "
                           "less %u bytes of envelope",
                           len, LIMIT_FRAME_BYTES, SEAL_REQ_OVERHEAD);
    out = malloc(len + SEAL_REQ_OVERHEAD);
    if (!out)
        return seal_i_fail(err, SEAL_E_NOMEM, "no memory for a %zu byte request", len);
    out[0] = SEAL_MAGIC_REQ;
    out[1] = SEAL_VERSION;
    memcpy(out + 2, c->pk, SEAL_PUBLIC_BYTES);
    nonce = out + 2 + SEAL_PUBLIC_BYTES;
    now = c->clock_ms(c->clock_arg);
    put_be64(nonce, (uint64_t)(now < 0 ? 0 : now) & ~(UINT64_C(1) << 63));
    randombytes_buf(nonce + 8, SEAL_NONCE_BYTES - 8);
    if (crypto_box_easy_afternm(out + SEAL_REQ_HEADER, plain, len, nonce, c->k) != 0) {
        free(out);
        return seal_i_fail(err, SEAL_E_INVALID, "request could not be sealed");
    }
    if (ticket)
        memcpy(ticket->nonce, nonce, SEAL_NONCE_BYTES);
    *frame = out;
    *frame_len = len + SEAL_REQ_OVERHEAD;
    return 0;
}

int seal_client_open_reply(struct seal_client *c, const struct seal_ticket *ticket,
                           const uint8_t *frame, size_t len, uint8_t **plain, size_t *plain_len,
                           struct seal_err *err)
{
    const uint8_t *nonce;
    uint8_t *buf = NULL;
    size_t n;
    char key[SEAL_KEY_TEXT_BYTES];
    int rc = 0;
    *plain = NULL;
    *plain_len = 0;
    if (!frame || len < 2 || frame[0] != SEAL_MAGIC_REPLY || frame[1] != SEAL_VERSION)
        return seal_i_fail(err, SEAL_E_BAD_FRAME,
                           "not a sealed reply (the server answered in plain "
                           "or with another version): refused");
    if (len < SEAL_REPLY_OVERHEAD || len > LIMIT_FRAME_BYTES)
        return seal_i_fail(err, SEAL_E_BAD_FRAME, "sealed reply of %zu bytes: outside %u..%u bytes",
                           len, SEAL_REPLY_OVERHEAD, LIMIT_FRAME_BYTES);
    nonce = frame + 2;
    if (!(nonce[0] & 0x80))
        return seal_i_fail(err, SEAL_E_BAD_FRAME, "sealed reply with a request's nonce: refused");
    n = len - SEAL_REPLY_HEADER - SEAL_MAC_BYTES; /* ticket + reply */
    buf = malloc(n);
    if (!buf)
        return seal_i_fail(err, SEAL_E_NOMEM, "no memory for a %zu byte reply", n);
    if (crypto_box_open_easy_afternm(buf, frame + SEAL_REPLY_HEADER, len - SEAL_REPLY_HEADER, nonce,
                                     c->k) != 0) {
        seal_key_to_text(c->server_pk, key);
        rc = seal_i_fail(
            err, SEAL_E_WRONG_SERVER,
            "the reply does not open with the pinned server key "
            "%s: the server's key is not the pinned one (or the reply was altered on the "
            "way)",
            key);
        goto out;
    }
    if (sodium_memcmp(buf, ticket->nonce, SEAL_NONCE_BYTES) != 0) {
        rc = seal_i_fail(err, SEAL_E_REPLAYED,
                         "the sealed reply answers another request (an old "
                         "reply replayed, or replies swapped): refused");
        goto out;
    }
    n -= SEAL_NONCE_BYTES;
    if (n) {
        memmove(buf, buf + SEAL_NONCE_BYTES, n);
        *plain = buf;
        buf = NULL;
    }
    *plain_len = n;
out:
    if (buf) {
        sodium_memzero(buf, len - SEAL_REPLY_HEADER - SEAL_MAC_BYTES);
        free(buf);
    }
    return rc;
}
