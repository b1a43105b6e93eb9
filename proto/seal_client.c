/*
 * seal_client.c: the client's side of the sealed envelope (format, nonces
 * and guarantees in seal.h): sealing requests in version 1 or 2 and opening
 * the replies. The client object holds its secrets (the X25519 shared key,
 * the version 2 AES state of its salt) in one sodium_malloc'd block.
 *
 * Version 2 nonces are the object's counter under its own salt's key; the
 * salt is drawn again (with the counter back at 1) when the object is made,
 * in a child after fork() (getpid() differs from the one the salt was drawn
 * in: parent and child would otherwise seal under the same key and nonce)
 * and before the counter could wrap.
 */
#include <stdlib.h>
#include <unistd.h>

#include "seal_internal.h"
#include "track_limits.h"

struct seal_client {
    struct seal_i_aead aead; /* of salt (version 2); first: 16-aligned */
    uint8_t k[crypto_box_BEFORENMBYTES];
    uint8_t pk[SEAL_PUBLIC_BYTES];
    uint8_t server_pk[SEAL_PUBLIC_BYTES];
    uint8_t salt[SEAL2_SALT_BYTES];
    uint64_t counter; /* the last version 2 nonce used under salt */
    pid_t salt_pid;   /* the process salt was drawn in */
    int version;
    int64_t (*clock_ms)(void *);
    void *clock_arg;
};

/* 0, or -1 (no memory for the AES key: version 2 cannot seal) */
static int new_salt(struct seal_client *c)
{
    randombytes_buf(c->salt, sizeof(c->salt));
    c->counter = 0;
    c->salt_pid = getpid();
    return seal_i_aead_init(&c->aead, c->k, c->salt);
}

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
    c->clock_ms = seal_i_default_clock;
    const char *v1 = getenv("TRACK_SEAL_V1");
    c->version = crypto_aead_aes256gcm_is_available() && !(v1 && strcmp(v1, "1") == 0)
                     ? SEAL_VERSION_AES
                     : SEAL_VERSION;
    if (c->version == SEAL_VERSION_AES && new_salt(c) != 0)
        c->version = SEAL_VERSION;
    *out = c;
    return 0;
}

void seal_client_free(struct seal_client *c)
{
    if (!c)
        return;
    seal_i_aead_clear(&c->aead);
    sodium_memzero(c, sizeof(*c));
    sodium_free(c);
}

void seal_client_set_clock(struct seal_client *c, int64_t (*clock_ms)(void *), void *arg)
{
    c->clock_ms = clock_ms ? clock_ms : seal_i_default_clock;
    c->clock_arg = arg;
}

int seal_client_version(const struct seal_client *c)
{
    return c->version;
}

int seal_client_set_version(struct seal_client *c, int version)
{
    if (version == SEAL_VERSION) {
        c->version = version;
        return 0;
    }
    if (version != SEAL_VERSION_AES || !crypto_aead_aes256gcm_is_available())
        return SEAL_E_INVALID;
    if (!c->aead.ready && new_salt(c) != 0)
        return SEAL_E_NOMEM;
    c->version = version;
    return 0;
}

size_t seal_client_frame_bytes(const struct seal_client *c, size_t len)
{
    return len + (c->version == SEAL_VERSION_AES ? SEAL2_REQ_OVERHEAD : SEAL_REQ_OVERHEAD);
}

static int64_t timestamp(struct seal_client *c)
{
    int64_t now = c->clock_ms(c->clock_arg);
    return now < 0 ? 0 : now;
}

int seal_client_seal_into(struct seal_client *c, const uint8_t *plain, size_t len, uint8_t *out,
                          size_t cap, size_t *frame_len, struct seal_ticket *ticket,
                          struct seal_err *err)
{
    size_t over = c->version == SEAL_VERSION_AES ? SEAL2_REQ_OVERHEAD : SEAL_REQ_OVERHEAD;
    uint64_t ts;
    *frame_len = 0;
    if (len > LIMIT_FRAME_BYTES - over)
        return seal_i_fail(err, SEAL_E_INVALID,
                           "request of %zu bytes: over the %u byte frame limit "
                           "less %zu bytes of envelope",
                           len, LIMIT_FRAME_BYTES, over);
    if (cap < len + over)
        return seal_i_fail(err, SEAL_E_INVALID, "seal: %zu bytes of room for a %zu byte frame", cap,
                           len + over);
    ts = (uint64_t)timestamp(c) & ~(UINT64_C(1) << 63);
    out[0] = SEAL_MAGIC_REQ;
    memcpy(out + 2, c->pk, SEAL_PUBLIC_BYTES);
    if (c->version == SEAL_VERSION_AES) {
        uint8_t *salt = out + 2 + SEAL_PUBLIC_BYTES, *nonce = out + SEAL2_AD_BYTES;
        if ((c->salt_pid != getpid() || c->counter == UINT64_MAX) && new_salt(c) != 0)
            return seal_i_fail(err, SEAL_E_NOMEM, "no memory for an AES key");
        c->counter++;
        out[1] = SEAL_VERSION_AES;
        memcpy(salt, c->salt, SEAL2_SALT_BYTES);
        seal_i_put_be64(salt + SEAL2_SALT_BYTES, ts);
        memset(nonce, 0, 4);
        seal_i_put_be64(nonce + 4, c->counter);
        if (seal_i_aead_encrypt(&c->aead, out + SEAL2_REQ_HEADER, out + SEAL2_REQ_HEADER + len,
                                plain, len, out, SEAL2_AD_BYTES, nonce) != 0)
            return seal_i_fail(err, SEAL_E_INVALID, "request could not be sealed (AES)");
        if (ticket) {
            memset(ticket, 0, sizeof(*ticket));
            ticket->version = SEAL_VERSION_AES;
            memcpy(ticket->nonce, nonce, SEAL2_NONCE_BYTES);
            memcpy(ticket->salt, c->salt, SEAL2_SALT_BYTES);
        }
    } else {
        uint8_t *nonce = out + 2 + SEAL_PUBLIC_BYTES;
        out[1] = SEAL_VERSION;
        seal_i_put_be64(nonce, ts);
        randombytes_buf(nonce + 8, SEAL_NONCE_BYTES - 8);
        if (crypto_box_easy_afternm(out + SEAL_REQ_HEADER, plain, len, nonce, c->k) != 0)
            return seal_i_fail(err, SEAL_E_INVALID, "request could not be sealed");
        if (ticket) {
            memset(ticket, 0, sizeof(*ticket));
            ticket->version = SEAL_VERSION;
            memcpy(ticket->nonce, nonce, SEAL_NONCE_BYTES);
        }
    }
    *frame_len = len + over;
    return 0;
}

int seal_client_seal(struct seal_client *c, const uint8_t *plain, size_t len, uint8_t **frame,
                     size_t *frame_len, struct seal_ticket *ticket, struct seal_err *err)
{
    size_t n = seal_client_frame_bytes(c, len);
    uint8_t *out;
    *frame = NULL;
    *frame_len = 0;
    if (len > LIMIT_FRAME_BYTES) /* before the allocation; the exact bound below */
        return seal_client_seal_into(c, plain, len, NULL, 0, frame_len, ticket, err);
    out = malloc(n);
    if (!out)
        return seal_i_fail(err, SEAL_E_NOMEM, "no memory for a %zu byte request", len);
    int rc = seal_client_seal_into(c, plain, len, out, n, frame_len, ticket, err);
    if (rc) {
        free(out);
        return rc;
    }
    *frame = out;
    return 0;
}

static int wrong_server(struct seal_client *c, struct seal_err *err)
{
    char key[SEAL_KEY_TEXT_BYTES];
    seal_key_to_text(c->server_pk, key);
    return seal_i_fail(err, SEAL_E_WRONG_SERVER,
                       "the reply does not open with the pinned server key "
                       "%s: the server's key is not the pinned one (or the reply was altered on "
                       "the way)",
                       key);
}

static int open_reply_v2(struct seal_client *c, const struct seal_ticket *ticket,
                         const uint8_t *frame, size_t len, uint8_t **plain, size_t *plain_len,
                         struct seal_err *err)
{
    const uint8_t *nonce = frame + 2;
    uint8_t *buf;
    size_t n;
    int rc = 0;
    if (len < SEAL2_REPLY_OVERHEAD || len > LIMIT_FRAME_BYTES)
        return seal_i_fail(err, SEAL_E_BAD_FRAME, "sealed reply of %zu bytes: outside %u..%u bytes",
                           len, SEAL2_REPLY_OVERHEAD, LIMIT_FRAME_BYTES);
    if (!(nonce[0] & 0x80))
        return seal_i_fail(err, SEAL_E_BAD_FRAME, "sealed reply with a request's nonce: refused");
    if (ticket->version != SEAL_VERSION_AES)
        return seal_i_fail(err, SEAL_E_REPLAYED,
                           "a version 2 reply to a version 1 request: refused");
    if (!c->aead.ready) /* a version 2 ticket from a client that never sealed one */
        return seal_i_fail(err, SEAL_E_REPLAYED,
                           "a version 2 reply to a version 1 request: refused");
    n = len - SEAL2_REPLY_HEADER - SEAL_MAC_BYTES; /* ticket + reply */
    buf = malloc(n);
    if (!buf)
        return seal_i_fail(err, SEAL_E_NOMEM, "no memory for a %zu byte reply", n);
    if (seal_i_aead_decrypt(&c->aead, buf, frame + SEAL2_REPLY_HEADER, n,
                            frame + SEAL2_REPLY_HEADER + n, frame, 2, nonce) != 0) {
        rc = wrong_server(c, err);
        goto out;
    }
    if (sodium_memcmp(buf, ticket->nonce, SEAL2_NONCE_BYTES) != 0) {
        rc = seal_i_fail(err, SEAL_E_REPLAYED,
                         "the sealed reply answers another request (an old "
                         "reply replayed, or replies swapped): refused");
        goto out;
    }
    n -= SEAL2_NONCE_BYTES;
    if (n) {
        memmove(buf, buf + SEAL2_NONCE_BYTES, n);
        *plain = buf;
        buf = NULL;
    }
    *plain_len = n;
out:
    if (buf) {
        sodium_memzero(buf, len - SEAL2_REPLY_HEADER - SEAL_MAC_BYTES);
        free(buf);
    }
    return rc;
}

int seal_client_open_reply(struct seal_client *c, const struct seal_ticket *ticket,
                           const uint8_t *frame, size_t len, uint8_t **plain, size_t *plain_len,
                           struct seal_err *err)
{
    const uint8_t *nonce;
    uint8_t *buf = NULL;
    size_t n;
    int rc = 0;
    *plain = NULL;
    *plain_len = 0;
    if (!frame || len < 2 || frame[0] != SEAL_MAGIC_REPLY ||
        (frame[1] != SEAL_VERSION && frame[1] != SEAL_VERSION_AES))
        return seal_i_fail(err, SEAL_E_BAD_FRAME,
                           "not a sealed reply (the server answered in plain "
                           "or with another version): refused");
    if (frame[1] == SEAL_VERSION_AES)
        return open_reply_v2(c, ticket, frame, len, plain, plain_len, err);
    if (ticket->version == SEAL_VERSION_AES)
        return seal_i_fail(err, SEAL_E_REPLAYED,
                           "a version 1 reply to a version 2 request: refused");
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
        rc = wrong_server(c, err);
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
