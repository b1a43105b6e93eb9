/*
 * seal.c: the sealed envelope (format, checks and guarantees in seal.h):
 * frames and the server's opener and reply sealer, in both versions. The
 * client is seal_client.c's; keys, their text and their files seal_key.c's.
 *
 * Two caches make the server's cost per request a symmetric box:
 *
 * Shared keys: crypto_box_beforenm (an X25519 scalar multiplication, tens of
 * microseconds) runs once per client key; the result is kept in an LRU of
 * key_cache entries, in one sodium_malloc'd array (guard pages, mlock'd,
 * wiped when an entry is evicted and when the server is freed), found
 * through a chained hash table keyed with a random SipHash key, so a peer
 * cannot choose keys that all land in one chain. Each entry also keeps the
 * version 2 AES key (seal_aead.c: the key schedule and GHASH key, set up
 * once) of the last salt that key's frames came with, so a long-lived
 * client object's frames cost no key derivation; another salt replaces it.
 *
 * Replays: the keyed 128-bit SipHash of (client key, nonce) (version 2:
 * client key, salt, nonce) of every opened
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
    if (!frame || len < 2 || (frame[1] != SEAL_VERSION && frame[1] != SEAL_VERSION_AES))
        return SEAL_KIND_PLAIN;
    if (frame[0] == SEAL_MAGIC_REQ)
        return SEAL_KIND_REQUEST;
    if (frame[0] == SEAL_MAGIC_REPLY)
        return SEAL_KIND_REPLY;
    return SEAL_KIND_PLAIN;
}

int64_t seal_i_default_clock(void *arg)
{
    (void)arg;
    return wire_now_ms();
}

/* ---- server ----------------------------------------------------------------- */

struct kc_entry {
    struct seal_i_aead aead; /* of salt (version 2); first: 16-aligned */
    uint8_t salt[SEAL2_SALT_BYTES];
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
    int aes; /* the CPU has AES-NI: version 2 frames open */
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
        s->o.clock_ms = seal_i_default_clock;
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
    s->aes = crypto_aead_aes256gcm_is_available() && !s->o.no_aes;
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
        for (size_t i = 0; i < srv->kc_used; i++)
            seal_i_aead_clear(&srv->kc[i].aead);
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
static struct kc_entry *kc_get(struct seal_server *s, const uint8_t *pk)
{
    size_t b = kc_bucket(s, pk);
    int32_t i = kc_find(s, b, pk);
    if (i >= 0) {
        if (s->head != i) {
            lru_unlink(s, i);
            lru_push_head(s, i);
        }
        return &s->kc[i];
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
        seal_i_aead_clear(&s->kc[i].aead);
        sodium_memzero(&s->kc[i], sizeof(s->kc[i]));
    }
    memcpy(s->kc[i].pk, pk, SEAL_PUBLIC_BYTES);
    memcpy(s->kc[i].k, s->sec->scratch, sizeof(s->kc[i].k));
    sodium_memzero(s->sec->scratch, sizeof(s->sec->scratch));
    s->kc[i].hnext = s->bucket[b];
    s->bucket[b] = i;
    lru_push_head(s, i);
    return &s->kc[i];
}

/* e's AES state for salt, derived when e holds another salt's (one per
 * client key: two objects of one key taking turns re-derive, a BLAKE2b and
 * an AES key schedule, about a microsecond). */
static struct seal_i_aead *kc_aes(struct kc_entry *e, const uint8_t *salt)
{
    if (!e->aead.ready || memcmp(e->salt, salt, SEAL2_SALT_BYTES) != 0) {
        if (seal_i_aead_init(&e->aead, e->k, salt) != 0)
            return NULL;
        memcpy(e->salt, salt, SEAL2_SALT_BYTES);
    }
    return &e->aead;
}

void seal_server_forget(struct seal_server *srv, const uint8_t pk[SEAL_PUBLIC_BYTES])
{
    size_t b = kc_bucket(srv, pk);
    int32_t i = kc_find(srv, b, pk), last;
    if (i < 0)
        return;
    lru_unlink(srv, i);
    chain_remove(srv, b, i);
    seal_i_aead_clear(&srv->kc[i].aead);
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
/* id: the client key, then the nonce (version 1: 24 bytes) or the salt and
 * nonce (version 2: 28 bytes); unique per request either way (seal.h). */
static int replay_check(struct seal_server *s, const uint8_t *id, size_t idlen, int64_t now,
                        struct seal_err *err)
{
    uint8_t d[16];
    int found = 0;
    size_t at;
    crypto_shorthash_siphashx24(d, id, idlen, s->rp_hash);
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

int seal_server_has_aes(const struct seal_server *srv)
{
    return srv->aes;
}

/* The checks before any key: magic, version, length. 0 and *n (the
 * plaintext's length), or BAD_FRAME. */
static int check_frame(const struct seal_server *srv, const uint8_t *frame, size_t len, size_t *n,
                       struct seal_err *err)
{
    size_t over;
    if (!frame || len < 2 || frame[0] != SEAL_MAGIC_REQ)
        return seal_i_fail(err, SEAL_E_BAD_FRAME,
                           "not a sealed request (first byte 0x%02x, expected "
                           "0x%02x): plain frames are refused here",
                           (frame && len) ? frame[0] : 0u, SEAL_MAGIC_REQ);
    if (frame[1] == SEAL_VERSION_AES && !srv->aes)
        return seal_i_fail(err, SEAL_E_BAD_FRAME,
                           "sealed request version 2 (AES-256-GCM) needs AES-NI, which this "
                           "server's CPU lacks: this server speaks 1");
    if (frame[1] != SEAL_VERSION && frame[1] != SEAL_VERSION_AES)
        return seal_i_fail(err, SEAL_E_BAD_FRAME,
                           "sealed request version %u, this server speaks %u and %u", frame[1],
                           SEAL_VERSION, SEAL_VERSION_AES);
    over = frame[1] == SEAL_VERSION_AES ? SEAL2_REQ_OVERHEAD : SEAL_REQ_OVERHEAD;
    if (len < over)
        return seal_i_fail(err, SEAL_E_BAD_FRAME,
                           "sealed request of %zu bytes: shorter than its %zu "
                           "bytes of header and MAC",
                           len, over);
    if (len > srv->o.max_frame)
        return seal_i_fail(err, SEAL_E_BAD_FRAME,
                           "sealed request of %zu bytes: over the %zu byte "
                           "frame limit",
                           len, srv->o.max_frame);
    *n = len - over;
    return 0;
}

/* The rest of the checks on a frame check_frame passed, its plaintext (n
 * bytes) written to dst (dst may be the frame's own ciphertext: in place). */
static int open_checked(struct seal_server *srv, const uint8_t *frame, size_t len, size_t n,
                        uint8_t *dst, struct seal_peer *peer, struct seal_err *err)
{
    const uint8_t *pk = frame + 2, *ts_at, *nonce;
    uint8_t id[SEAL_PUBLIC_BYTES + SEAL2_SALT_BYTES + SEAL2_NONCE_BYTES];
    size_t idlen;
    struct kc_entry *e;
    int64_t now, ts, diff;
    int v2 = frame[1] == SEAL_VERSION_AES, rc;

    if (srv->o.key_known(srv->o.key_arg, pk) != 1)
        return seal_i_fail(err, SEAL_E_UNKNOWN_KEY,
                           "the client's key is not accepted by this server");
    e = kc_get(srv, pk);
    if (!e)
        return seal_i_fail(err, SEAL_E_UNKNOWN_KEY, "the client's key is not a usable public key");
    if (v2) {
        const uint8_t *salt = frame + 2 + SEAL_PUBLIC_BYTES;
        ts_at = salt + SEAL2_SALT_BYTES;
        nonce = frame + SEAL2_AD_BYTES;
        struct seal_i_aead *a = kc_aes(e, salt);
        if (!a)
            return seal_i_fail(err, SEAL_E_NOMEM, "no memory for an AES key");
        rc = seal_i_aead_decrypt(a, dst, frame + SEAL2_REQ_HEADER, n, frame + SEAL2_REQ_HEADER + n,
                                 frame, SEAL2_AD_BYTES, nonce);
        /* id: key, salt, nonce (the timestamp between them left out) */
        memcpy(id + SEAL_PUBLIC_BYTES, salt, SEAL2_SALT_BYTES);
        memcpy(id + SEAL_PUBLIC_BYTES + SEAL2_SALT_BYTES, nonce, SEAL2_NONCE_BYTES);
        idlen = SEAL_PUBLIC_BYTES + SEAL2_SALT_BYTES + SEAL2_NONCE_BYTES;
    } else {
        ts_at = nonce = frame + 2 + SEAL_PUBLIC_BYTES;
        rc = crypto_box_open_easy_afternm(dst, frame + SEAL_REQ_HEADER, len - SEAL_REQ_HEADER,
                                          nonce, e->k);
        memcpy(id + SEAL_PUBLIC_BYTES, nonce, SEAL_NONCE_BYTES);
        idlen = SEAL_PUBLIC_BYTES + SEAL_NONCE_BYTES;
    }
    if (rc != 0)
        return seal_i_fail(err, SEAL_E_TAMPERED,
                           "sealed request does not verify: altered on the way, "
                           "or not sealed for this server's key");
    now = srv->o.clock_ms(srv->o.clock_arg);
    if (now < 0)
        now = 0;
    if (ts_at[0] & 0x80)
        return seal_i_fail(err, SEAL_E_STALE, "sealed request has a negative timestamp");
    if (v2 && (nonce[0] & 0x80))
        return seal_i_fail(err, SEAL_E_BAD_FRAME, "sealed request with a reply's nonce");
    ts = (int64_t)seal_i_get_be64(ts_at);
    diff = ts >= now ? ts - now : now - ts;
    if (diff > srv->o.window_ms)
        return seal_i_fail(err, SEAL_E_STALE,
                           "sealed request timestamped %.1f s %s the server's clock, "
                           "outside the +-%lld s window: the client's and server's clocks differ%s",
                           (double)diff / 1000.0, ts >= now ? "ahead of" : "behind",
                           (long long)(srv->o.window_ms / 1000),
                           ts >= now ? "" : " (or the frame was held back and replayed)");
    memcpy(id, pk, SEAL_PUBLIC_BYTES);
    rc = replay_check(srv, id, idlen, now, err);
    if (rc)
        return rc;
    if (peer) {
        memset(peer, 0, sizeof(*peer));
        memcpy(peer->pk, pk, SEAL_PUBLIC_BYTES);
        peer->ts_ms = ts;
        if (v2) {
            memcpy(peer->ticket.nonce, nonce, SEAL2_NONCE_BYTES);
            memcpy(peer->ticket.salt, frame + 2 + SEAL_PUBLIC_BYTES, SEAL2_SALT_BYTES);
        } else {
            memcpy(peer->ticket.nonce, nonce, SEAL_NONCE_BYTES);
        }
        peer->ticket.version = frame[1];
    }
    return 0;
}

int seal_server_open(struct seal_server *srv, const uint8_t *frame, size_t len,
                     struct seal_peer *peer, uint8_t **plain, size_t *plain_len,
                     struct seal_err *err)
{
    uint8_t *buf;
    size_t n = 0;
    int rc;
    *plain = NULL;
    *plain_len = 0;
    rc = check_frame(srv, frame, len, &n, err);
    if (rc)
        return rc;
    buf = malloc(n ? n : 1);
    if (!buf)
        return seal_i_fail(err, SEAL_E_NOMEM, "no memory for a %zu byte request", n);
    rc = open_checked(srv, frame, len, n, buf, peer, err);
    if (rc) {
        /* a frame refused after it opened: do not leave its text in the heap */
        sodium_memzero(buf, n);
        free(buf);
        return rc;
    }
    if (n)
        *plain = buf;
    else
        free(buf);
    *plain_len = n;
    return 0;
}

int seal_server_open_in_place(struct seal_server *srv, uint8_t *frame, size_t len,
                              struct seal_peer *peer, const uint8_t **plain, size_t *plain_len,
                              struct seal_err *err)
{
    size_t n = 0;
    uint8_t *dst;
    int rc;
    *plain = NULL;
    *plain_len = 0;
    rc = check_frame(srv, frame, len, &n, err);
    if (rc)
        return rc;
    /* the ciphertext's own place: both ciphers decrypt there */
    dst = frame + (frame[1] == SEAL_VERSION_AES ? SEAL2_REQ_HEADER : SEAL_REQ_OVERHEAD);
    rc = open_checked(srv, frame, len, n, dst, peer, err);
    if (rc) {
        sodium_memzero(dst, n);
        return rc;
    }
    *plain = dst;
    *plain_len = n;
    return 0;
}

int seal_server_seal_reply(struct seal_server *srv, const struct seal_peer *peer,
                           const uint8_t *plain, size_t len, uint8_t **frame, size_t *frame_len,
                           struct seal_err *err)
{
    struct kc_entry *e;
    uint8_t *out, *nonce, *m;
    int v2 = peer->ticket.version == SEAL_VERSION_AES;
    size_t over = v2 ? SEAL2_REPLY_OVERHEAD : SEAL_REPLY_OVERHEAD;
    *frame = NULL;
    *frame_len = 0;
    if (v2 && !srv->aes)
        return seal_i_fail(err, SEAL_E_INVALID, "a version 2 reply needs AES-NI");
    if (len > srv->o.max_frame - over)
        return seal_i_fail(err, SEAL_E_INVALID,
                           "reply of %zu bytes: over the %zu byte frame limit "
                           "less %zu bytes of envelope",
                           len, srv->o.max_frame, over);
    e = kc_get(srv, peer->pk);
    if (!e)
        return seal_i_fail(err, SEAL_E_INVALID, "the peer's key is not a usable public key");
    out = malloc(len + over);
    if (!out)
        return seal_i_fail(err, SEAL_E_NOMEM, "no memory for a %zu byte reply", len);
    out[0] = SEAL_MAGIC_REPLY;
    nonce = out + 2;
    if (v2) {
        out[1] = SEAL_VERSION_AES;
        randombytes_buf(nonce, SEAL2_NONCE_BYTES);
        nonce[0] |= 0x80; /* replies: top bit set, requests: clear */
        /* plaintext = the request's nonce, then the reply; sealed in place */
        m = out + SEAL2_REPLY_HEADER;
        memcpy(m, peer->ticket.nonce, SEAL2_NONCE_BYTES);
        if (len)
            memcpy(m + SEAL2_NONCE_BYTES, plain, len);
        struct seal_i_aead *a = kc_aes(e, peer->ticket.salt);
        if (!a || seal_i_aead_encrypt(a, m, m + SEAL2_NONCE_BYTES + len, m, SEAL2_NONCE_BYTES + len,
                                      out, 2, nonce) != 0) {
            free(out);
            return seal_i_fail(err, SEAL_E_NOMEM, "reply could not be sealed (AES)");
        }
    } else {
        out[1] = SEAL_VERSION;
        randombytes_buf(nonce, SEAL_NONCE_BYTES);
        nonce[0] |= 0x80; /* replies: top bit set, requests: clear */
        /* plaintext = the request's nonce, then the reply; boxed in place */
        m = out + SEAL_REPLY_HEADER + SEAL_MAC_BYTES;
        memcpy(m, peer->ticket.nonce, SEAL_NONCE_BYTES);
        if (len)
            memcpy(m + SEAL_NONCE_BYTES, plain, len);
        if (crypto_box_easy_afternm(out + SEAL_REPLY_HEADER, m, SEAL_NONCE_BYTES + len, nonce,
                                    e->k) != 0) {
            free(out);
            return seal_i_fail(err, SEAL_E_INVALID, "reply could not be sealed");
        }
    }
    *frame = out;
    *frame_len = len + over;
    return 0;
}
