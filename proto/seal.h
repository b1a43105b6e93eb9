/*
 * seal.h: the sealed envelope of a tcp:// listener (issue 15): X25519 keys
 * (libsodium's crypto_box), XSalsa20-Poly1305 or AES-256-GCM frames. This
 * module only seals and opens
 * frames and handles key files and key text; who a key belongs to (users,
 * roles, grants, audit) is the caller's, as are sockets and the mapping of
 * SEAL_E_* codes to track.v1.Code (UNKNOWN_KEY, TAMPERED, STALE and REPLAYED
 * all become UNAUTHENTICATED, FULL becomes RESOURCE_EXHAUSTED).
 *
 * Two versions (the second byte), both keyed from the X25519 shared key of
 * (client, server) that crypto_box_beforenm computes, k below:
 *
 * Version 1, XSalsa20-Poly1305 (all sizes in bytes):
 *   request  'S' 0x01 | client public key (32) | nonce (24) | box (16 MAC + n)
 *   reply    's' 0x01 | nonce (24) | box (16 MAC + 24 + n)
 * The box is crypto_box_easy_afternm with k. A request nonce is an 8-byte
 * big-endian timestamp in ms (top bit 0: time is never negative) followed by
 * 16 random bytes. A reply nonce is 24 random bytes with the top bit of the
 * first one set; the reply's plaintext starts with the nonce of the request
 * it answers, then the reply frame.
 *
 * Version 2, AES-256-GCM (standard GCM: 12-byte IV, 16-byte tag; run by
 * OpenSSL's libcrypto when the build has it, else libsodium's
 * crypto_aead_aes256gcm, seal_aead.c; 5x cheaper per byte than version 1
 * with libcrypto on this project's bench machine, 1.5x with libsodium;
 * used only where the CPU has AES-NI, libsodium's test for it):
 *   request  'S' 0x02 | client public key (32) | salt (16) | timestamp (8)
 *            | nonce (12) | ciphertext (n) | tag (16)
 *   reply    's' 0x02 | nonce (12) | ciphertext (12 + n) | tag (16)
 * The AES key is per client object: K = BLAKE2b-256 keyed with k of
 * "trk-aes1" || salt (crypto_generichash), where salt is 16 random bytes a
 * client object picks when it is made (and again in a forked child, and
 * when its counter would wrap). k itself is never an AES key. The request's
 * associated data is its first 58 bytes (magic, version, client key, salt,
 * timestamp: all authenticated); its timestamp is big-endian ms, top bit 0.
 * A request nonce is 4 zero bytes and the object's 64-bit big-endian
 * counter (1, 2, ...); a reply nonce is 12 random bytes with the top bit of
 * the first one set, the reply's associated data is its 2-byte header, and
 * its plaintext starts with the 12-byte nonce of the request it answers
 * (under the salt's key), then the reply frame.
 * A client object uses version 2 when crypto_aead_aes256gcm_is_available()
 * on its CPU (and TRACK_SEAL_V1 is unset: TRACK_SEAL_V1=1 forces version 1,
 * for tests), else 1. A server opens both and answers a request in the
 * version it came in. A server without AES-NI (or an older one) refuses a
 * version 2 frame as BAD_FRAME with a message ending "this server speaks
 * 1"; a client that gets that refusal seals again with version 1 and keeps
 * to it (seal_client_set_version): no probe round trip, and only a client
 * on AES-NI talking to a server without it pays one extra round trip, once.
 *
 * 'S' (0x53) and 's' (0x73) would be start-group tags as the first byte of a
 * protobuf message, which proto3 never writes: a sealed frame is never taken
 * for a plain one (seal_frame_kind).
 *
 * Why a nonce never repeats under one key, version 1: both directions use
 * the same key, so they are kept apart by the top bit (0 in requests, 1 in
 * replies). Two requests of one client share a nonce only if they share the
 * millisecond and 128 random bits; two replies only if 191 random bits
 * collide. A reply nonce is random rather than derived from the request's so
 * that a server restarted with an empty replay cache, fed an old request,
 * never boxes a new reply under an old nonce.
 *
 * Version 2: GCM nonces are 96 bits, too few for random request nonces (a
 * 48-bit ms timestamp beside 48 random bits: r frames in one millisecond
 * collide with probability about r^2 / 2^49, so at 4,000 frames a second
 * 2^32 frames come near 2^-15; 95 random bits allow about 2^32 messages per
 * key before a collision is likelier than 2^-32), and a repeat
 * under GCM gives away the XOR of two plaintexts and the authentication
 * key. So the key is per client object (the salt) and a request nonce is
 * that object's counter: under one K two requests never share a nonce (the
 * object belongs to one thread, the counter is never reset for the same
 * salt: a fork is detected by getpid() and takes a fresh salt). Two objects
 * share K only if their 128-bit salts collide: with N objects ever made for
 * one key pair, probability about N^2 / 2^129, negligible for any N. Replies
 * (top bit 1) never share a nonce with requests (top bit 0). Reply nonces
 * are random (95 bits) for the reason of version 1, so under one K they are
 * bounded by the random-nonce limit: about q^2 / 2^96 for q replies, below
 * 2^-32 up to q = 2^32 replies to ONE client object. That is not reachable in
 * practice: a server's replay cache admits at most about 4,400 frames a
 * second in all (seal_srv.c), so one object would need eleven days of the
 * whole server's saturated traffic; a year of it (2^37) still gives about
 * 2^-22. The timestamp is not in the nonce but in the authenticated header,
 * where the server's clock window reads it.
 *
 * What the server checks, in this order (seal_server_open), in both
 * versions: the magic and version (version 2 only with AES-NI); the length
 * (at least the header and MAC, at most max_frame: the plaintext buffer is
 * allocated only after that); the client's key, through
 * the caller's key_known callback on every frame (so a key removed from the
 * list is refused at once even while its shared key is cached); the MAC
 * (any changed byte, the key and nonce included, refuses the frame); the
 * timestamp within +-window_ms of the server's clock; the nonce not seen
 * before from that key within the window (version 2: the salt and nonce,
 * unique per request as above). STALE and REPLAYED are decided only
 * after the MAC, so they always describe a frame that key really sealed.
 *
 * Guarantees: a frame that opens came from the holder of a listed key's
 * secret, unchanged, within the clock window, and is opened once (per
 * server process). A reply that opens came from the holder of the pinned
 * server key, unchanged, and answers the request of that ticket (an old or
 * another request's reply is refused). Limits: no forward secrecy (a leaked
 * secret key opens every recorded frame of that key); the replay cache lives
 * in memory, so a restarted server accepts, within the window, a frame it
 * had already opened before the restart (the daemon's request-id cache makes
 * such a repeat harmless for writes); frame lengths and timing are visible,
 * and whether a key is listed may be inferred from timing (an unknown key is
 * refused before any decryption); a server whose replay cache is full
 * refuses fresh frames (FULL) rather than forgetting nonces. A server and
 * client object each belong to one thread at a time.
 *
 * Memory: secret keys, cached shared keys and libsodium's AES states live
 * in sodium_malloc'd memory and are wiped on every exit path; with
 * libcrypto, the expanded AES keys live in its EVP_CIPHER_CTX (heap,
 * cleansed by EVP_CIPHER_CTX_free when an entry is evicted or freed). Frames and plaintexts handed
 * back are malloc'd and owned by the caller (free()), except where a function says it writes into
 * the caller's buffer (seal_client_seal_into, seal_server_open_in_place: no copy of a large frame).
 */
#ifndef TRACK_SEAL_H
#define TRACK_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_PUBLIC_BYTES 32
#define SEAL_SECRET_BYTES 32
#define SEAL_NONCE_BYTES  24
#define SEAL_MAC_BYTES    16
#define SEAL_VERSION      1    /* XSalsa20-Poly1305 */
#define SEAL_VERSION_AES  2    /* AES-256-GCM */
#define SEAL_MAGIC_REQ    0x53 /* 'S' */
#define SEAL_MAGIC_REPLY  0x73 /* 's' */
#define SEAL_REQ_HEADER   (2 + SEAL_PUBLIC_BYTES + SEAL_NONCE_BYTES)
#define SEAL_REPLY_HEADER (2 + SEAL_NONCE_BYTES)
/* bytes a sealed frame adds to its plaintext */
#define SEAL_REQ_OVERHEAD   (SEAL_REQ_HEADER + SEAL_MAC_BYTES)
#define SEAL_REPLY_OVERHEAD (SEAL_REPLY_HEADER + SEAL_MAC_BYTES + SEAL_NONCE_BYTES)
/* version 2 */
#define SEAL2_SALT_BYTES     16
#define SEAL2_NONCE_BYTES    12
#define SEAL2_AD_BYTES       (2 + SEAL_PUBLIC_BYTES + SEAL2_SALT_BYTES + 8)
#define SEAL2_REQ_HEADER     (SEAL2_AD_BYTES + SEAL2_NONCE_BYTES)
#define SEAL2_REPLY_HEADER   (2 + SEAL2_NONCE_BYTES)
#define SEAL2_REQ_OVERHEAD   (SEAL2_REQ_HEADER + SEAL_MAC_BYTES)
#define SEAL2_REPLY_OVERHEAD (SEAL2_REPLY_HEADER + SEAL_MAC_BYTES + SEAL2_NONCE_BYTES)
/* the larger of the two versions' request overheads */
#define SEAL_REQ_OVERHEAD_MAX SEAL2_REQ_OVERHEAD

/* Public key text: "trk1:" and 43 base64url characters (no padding). */
#define SEAL_KEY_PREFIX     "trk1:"
#define SEAL_KEY_TEXT_BYTES (5 + 43 + 1) /* with the NUL */

/* Defaults of struct seal_server_opts (a 0 field takes them). */
#define SEAL_DEFAULT_WINDOW_MS  120000
#define SEAL_DEFAULT_KEY_CACHE  1024
#define SEAL_DEFAULT_REPLAY_CAP 262144

enum seal_code {
    SEAL_OK = 0,
    SEAL_E_BAD_FRAME = -1,    /* not a sealed frame: magic, version or length */
    SEAL_E_UNKNOWN_KEY = -2,  /* the client's key is not listed */
    SEAL_E_TAMPERED = -3,     /* the MAC does not verify */
    SEAL_E_STALE = -4,        /* timestamp outside the window (either side) */
    SEAL_E_REPLAYED = -5,     /* nonce already opened; or a reply to another request */
    SEAL_E_FULL = -6,         /* replay cache at its cap: refused, not forgotten */
    SEAL_E_WRONG_SERVER = -7, /* a reply that does not open with the pinned key */
    SEAL_E_IO = -8,           /* a key file could not be read or written */
    SEAL_E_PERM = -9,         /* a key file's mode or owner is unsafe */
    SEAL_E_EXISTS = -10,      /* a key file is already there: never overwritten */
    SEAL_E_INVALID = -11,     /* bad argument or key text */
    SEAL_E_NOMEM = -12,
};

/* Details of a failure: the code again and a message naming the path,
 * field, limit or key involved (never a secret). */
struct seal_err {
    int code;
    char msg[320];
};

/* "BAD_FRAME", "UNKNOWN_KEY", ...; "UNKNOWN" for anything else. */
const char *seal_strerror(int code);

/* ---- keys ----------------------------------------------------------------- */

/* A key pair: sk is sodium_malloc'd (SEAL_SECRET_BYTES), NULL when empty. */
struct seal_keypair {
    uint8_t pk[SEAL_PUBLIC_BYTES];
    uint8_t *sk;
};

/* Fills kp with a fresh key pair. 0, or SEAL_E_NOMEM (kp left empty). */
__attribute__((warn_unused_result)) int seal_keypair_generate(struct seal_keypair *kp,
                                                              struct seal_err *err);
/* Wipes and frees kp->sk and clears kp; safe on an empty or cleared kp. */
void seal_keypair_clear(struct seal_keypair *kp);

/* Writes sk to a new file `path` as one line "trk1-secret:" + base64url:
 * a temporary file beside it made with O_CREAT|O_EXCL|O_NOFOLLOW, mode
 * 0600 whatever the umask, fsync'd, renamed into place without replacing
 * anything, and the directory fsync'd. An existing `path` is never
 * overwritten (SEAL_E_EXISTS); SEAL_E_IO otherwise, naming the path. */
__attribute__((warn_unused_result)) int seal_key_file_write(const char *path, const uint8_t *sk,
                                                            struct seal_err *err);
/* Reads a file written by seal_key_file_write into kp (sk sodium_malloc'd,
 * pk derived from it). Refuses, as ssh does, a file that is not a regular
 * file, is a symlink, is not owned by the caller, or has any permission bit
 * for group or others (SEAL_E_PERM, naming the path and its mode); a file
 * that does not parse is SEAL_E_INVALID, a missing one SEAL_E_IO. On
 * failure kp is left empty and nothing of the file stays in memory. */
__attribute__((warn_unused_result)) int
seal_key_file_read(const char *path, struct seal_keypair *kp, struct seal_err *err);

/* pk as "trk1:..." text, NUL-terminated. */
void seal_key_to_text(const uint8_t pk[SEAL_PUBLIC_BYTES], char out[SEAL_KEY_TEXT_BYTES]);
/* Parses exactly what seal_key_to_text writes: the prefix, 43 base64url
 * characters in canonical form, nothing before or after (no whitespace).
 * 0, or SEAL_E_INVALID with a message saying what is wrong. */
__attribute__((warn_unused_result)) int
seal_key_from_text(const char *s, uint8_t pk[SEAL_PUBLIC_BYTES], struct seal_err *err);

/* ---- frames ----------------------------------------------------------------- */

enum seal_kind { SEAL_KIND_PLAIN = 0, SEAL_KIND_REQUEST = 1, SEAL_KIND_REPLY = 2 };
/* What the first two bytes of a frame say it is (not a validation). */
enum seal_kind seal_frame_kind(const uint8_t *frame, size_t len);

/* Which request a reply answers: the request's nonce. */
struct seal_ticket {
    uint8_t version;                 /* the request's (0 or 1: version 1); a reply
                                        is sealed in it */
    uint8_t nonce[SEAL_NONCE_BYTES]; /* version 2: the first 12 bytes */
    uint8_t salt[SEAL2_SALT_BYTES];  /* version 2: the client object's salt */
};

/* An opened request's sender, kept by the server to seal the reply. */
struct seal_peer {
    uint8_t pk[SEAL_PUBLIC_BYTES];
    struct seal_ticket ticket;
    int64_t ts_ms; /* the client's timestamp */
};

/* ---- server ----------------------------------------------------------------- */

struct seal_server_opts {
    /* 1 when pk is listed, 0 when not; called for every frame. Required. */
    int (*key_known)(void *arg, const uint8_t pk[SEAL_PUBLIC_BYTES]);
    void *key_arg;
    /* the server's clock in ms since the epoch; NULL: wire_now_ms */
    int64_t (*clock_ms)(void *arg);
    void *clock_arg;
    int64_t window_ms; /* accepted |timestamp - clock|; 0: 120 s */
    size_t key_cache;  /* shared keys kept (LRU); 0: 1024 */
    size_t replay_cap; /* nonces held per generation (see seal.c); 0: 262144 */
    size_t max_frame;  /* largest sealed frame; 0: LIMIT_FRAME_BYTES */
    int no_aes;        /* for tests: behave as a CPU without AES-NI (refuse version 2) */
};

struct seal_server;

/* A server for secret key sk (copied into guarded memory; the caller keeps
 * and wipes its own). 0 and *out, or SEAL_E_INVALID / SEAL_E_NOMEM. */
__attribute__((warn_unused_result)) int seal_server_new(const struct seal_server_opts *opts,
                                                        const uint8_t *sk, struct seal_server **out,
                                                        struct seal_err *err);
/* Wipes and frees everything; NULL is fine. */
void seal_server_free(struct seal_server *srv);
/* The server's public key. */
void seal_server_public(const struct seal_server *srv, uint8_t pk[SEAL_PUBLIC_BYTES]);
/* Drops the cached shared key of pk (wiped), e.g. when a key is removed. */
void seal_server_forget(struct seal_server *srv, const uint8_t pk[SEAL_PUBLIC_BYTES]);

/* Opens a sealed request (checks in the header comment). On success: 0,
 * *peer filled, *plain malloc'd (owned by the caller; NULL when plain_len is
 * 0) holding *plain_len bytes. On failure a negative SEAL_E_* with *plain
 * NULL: BAD_FRAME, UNKNOWN_KEY, TAMPERED, STALE (the message says by how
 * much the clocks differ), REPLAYED, FULL, NOMEM. */
__attribute__((warn_unused_result)) int seal_server_open(struct seal_server *srv,
                                                         const uint8_t *frame, size_t len,
                                                         struct seal_peer *peer, uint8_t **plain,
                                                         size_t *plain_len, struct seal_err *err);
/* seal_server_open that decrypts into the frame itself: on success
 * *plain points into frame (plain_len bytes, valid while frame is) and no
 * buffer is allocated; on failure the frame's bytes are undefined (a
 * plaintext refused after its MAC is wiped). */
__attribute__((warn_unused_result)) int
seal_server_open_in_place(struct seal_server *srv, uint8_t *frame, size_t len,
                          struct seal_peer *peer, const uint8_t **plain, size_t *plain_len,
                          struct seal_err *err);
/* Which code runs version 2's AES-256-GCM in this build: "openssl"
 * (libcrypto, the faster) or "libsodium"; the frames are the same. */
const char *seal_aes_engine(void);
/* 1 when this server opens version 2 frames (its CPU has AES-NI). */
int seal_server_has_aes(const struct seal_server *srv);
/* Seals reply bytes for the request peer came from, in peer->version. 0 and *frame malloc'd
 * (*frame_len bytes, owned by the caller), or SEAL_E_INVALID (too large for
 * max_frame) / SEAL_E_NOMEM. */
__attribute__((warn_unused_result)) int
seal_server_seal_reply(struct seal_server *srv, const struct seal_peer *peer, const uint8_t *plain,
                       size_t len, uint8_t **frame, size_t *frame_len, struct seal_err *err);

/* ---- client ----------------------------------------------------------------- */

struct seal_client;

/* A client with key pair (sk, pk) that trusts only server_pk. pk must be
 * sk's public key. 0 and *out, or SEAL_E_INVALID / SEAL_E_NOMEM. */
__attribute__((warn_unused_result)) int seal_client_new(const uint8_t *sk,
                                                        const uint8_t pk[SEAL_PUBLIC_BYTES],
                                                        const uint8_t server_pk[SEAL_PUBLIC_BYTES],
                                                        struct seal_client **out,
                                                        struct seal_err *err);
void seal_client_free(struct seal_client *c);
/* Replaces the clock of request timestamps (NULL: wire_now_ms); for tests. */
void seal_client_set_clock(struct seal_client *c, int64_t (*clock_ms)(void *), void *arg);

/* The version this client seals with: 2 or 1 (see the header). */
int seal_client_version(const struct seal_client *c);
/* Sets it: 1 always works; 2 only on a CPU with AES-NI (else SEAL_E_INVALID).
 * A client told by a server that it speaks only 1 sets 1. */
__attribute__((warn_unused_result)) int seal_client_set_version(struct seal_client *c, int version);
/* Bytes a sealed request of len plaintext bytes takes in this client's version. */
size_t seal_client_frame_bytes(const struct seal_client *c, size_t len);
/* Seals into out (cap bytes, at least seal_client_frame_bytes(c, len); plain
 * and out must not overlap): 0 and *frame_len, or SEAL_E_INVALID. */
__attribute__((warn_unused_result)) int
seal_client_seal_into(struct seal_client *c, const uint8_t *plain, size_t len, uint8_t *out,
                      size_t cap, size_t *frame_len, struct seal_ticket *ticket,
                      struct seal_err *err);
/* Seals a request of len bytes (at most LIMIT_FRAME_BYTES less the
 * version's overhead).
 * 0, *frame malloc'd (*frame_len bytes) and *ticket to open its reply with;
 * or SEAL_E_INVALID / SEAL_E_NOMEM. */
__attribute__((warn_unused_result)) int
seal_client_seal(struct seal_client *c, const uint8_t *plain, size_t len, uint8_t **frame,
                 size_t *frame_len, struct seal_ticket *ticket, struct seal_err *err);
/* Opens the reply to the request of `ticket`. 0 and *plain malloc'd (NULL
 * when empty); or BAD_FRAME, WRONG_SERVER (the reply does not open with the
 * pinned server key: another server, or altered on the way), REPLAYED (a
 * genuine reply to another request), NOMEM. */
__attribute__((warn_unused_result)) int seal_client_open_reply(struct seal_client *c,
                                                               const struct seal_ticket *ticket,
                                                               const uint8_t *frame, size_t len,
                                                               uint8_t **plain, size_t *plain_len,
                                                               struct seal_err *err);

#endif
