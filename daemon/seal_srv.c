/*
 * seal_srv.c: the daemon's side of sealed tcp:// listeners (issue 15): the
 * server key file in the data directory, and the loop thread's seal_server
 * (proto/seal.h) with what the daemon adds to it: which keys are known (a
 * user of the store holds them), the caller a frame comes from, how each
 * refusal is answered and logged, and the sealing of replies.
 *
 * The key file is DATA_DIR/server.key (seal_key_file_write: 0600, never
 * overwritten), made at the first start with a sealed listener or by
 * `trackd --print-public-key`. Its public half is logged at start.
 *
 * Known keys: key_known asks the store on every frame (store_user_by_key on
 * the loop's read-write handle, outside any transaction, so a key removed
 * by an admin, even from another process, is refused at the next frame)
 * and keeps the user it found for the caller of the frame it just checked.
 *
 * Refusals are answered plain (there is no key to seal for): UNKNOWN_KEY
 * and TAMPERED share one message, which never says whether a user exists;
 * STALE says by how much the clocks differ (the fix is NTP); REPLAYED says
 * the frame was seen already; FULL is RESOURCE_EXHAUSTED. Each is logged at
 * INFO with the frame's key text, at most REFUSAL_LOG_BURST lines per
 * REFUSAL_LOG_MS, then one line counting the rest.
 *
 * The replay cache holds every frame opened within 2 x 2 x window (240 s at
 * the default 120 s window), at most REPLAY_CAP per generation: about 4,400
 * frames a second sustained, past which fresh frames are refused (FULL)
 * rather than a nonce forgotten; its two tables take up to 64 MiB, resident
 * only as they fill. TRACKD_TEST_REPLAY_CAP (tests only) sets the cap;
 * TRACKD_TEST_SEAL_V1_ONLY=1 (tests only) makes the server act as one
 * without AES-NI (envelope version 2 refused, clients fall back to 1).
 *
 * The seal_server belongs to the loop thread only (it is not thread-safe):
 * requests are opened in drain (in place, in nanomsg's receive buffer: a
 * 4 MiB batch is never copied) and replies sealed just before nn_sendmsg,
 * both there. Both envelope versions (seal.h) are opened; a reply goes out
 * in its request's version. A version 2 frame on a CPU without AES-NI is
 * refused as a bad frame whose message ("this server speaks 1") makes the
 * client seal again in version 1.
 */
#include "loop.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>
#include <unistd.h>

#include "track_limits.h"

#define REPLAY_CAP        (1u << 20) /* frames per replay generation (seal.h) */
#define REFUSAL_LOG_MS    10000
#define REFUSAL_LOG_BURST 20

struct srv_sealer {
    struct srv *srv;
    struct seal_server *seal;
    /* the user key_known found for the frame being opened */
    int found;
    struct store_user user;
    /* refusal log rate limit */
    int64_t log_window_ms;
    int logged, suppressed;
};

int srv_server_key_load(const struct srv_config *cfg, int create, struct seal_keypair *kp)
{
    char path[1200];
    struct seal_err err = {0};
    int rc;

    snprintf(path, sizeof(path), "%s/server.key", cfg->data_dir);
    rc = seal_key_file_read(path, kp, &err);
    if (rc == SEAL_E_IO && create && access(path, F_OK) != 0 && errno == ENOENT) {
        struct seal_keypair fresh = {0};
        if (seal_keypair_generate(&fresh, &err) == 0) {
            rc = seal_key_file_write(path, fresh.sk, &err);
            seal_keypair_clear(&fresh);
            if (rc == 0) {
                srv_log(SRV_LOG_INFO, "seal", "made the server key pair path=%s", path);
                rc = seal_key_file_read(path, kp, &err);
            }
        } else {
            rc = err.code;
        }
    }
    if (rc) {
        srv_log(SRV_LOG_ERROR, "seal", "server key %s: %s", path, err.msg);
        return -1;
    }
    return 0;
}

static int key_known(void *arg, const uint8_t pk[SEAL_PUBLIC_BYTES])
{
    struct srv_sealer *s = arg;
    struct store_err err = {0};
    int rc = store_user_by_key(s->srv->wst, pk, &s->user, &err);
    s->found = rc == 0;
    if (rc && rc != STORE_E_NOT_FOUND)
        srv_log(SRV_LOG_WARN, "seal", "key lookup failed: %s", err.msg);
    return s->found;
}

int srv_sealer_new(struct srv *srv, struct srv_sealer **out)
{
    struct srv_sealer *s = calloc(1, sizeof(*s));
    struct seal_err err = {0};

    *out = NULL;
    if (!s)
        return -1;
    s->srv = srv;
    struct seal_server_opts o = {.key_known = key_known,
                                 .key_arg = s,
                                 .max_frame = LIMIT_FRAME_BYTES,
                                 .replay_cap = REPLAY_CAP};
    const char *cap = getenv("TRACKD_TEST_REPLAY_CAP");
    if (cap && *cap) {
        o.replay_cap = (size_t)strtoul(cap, NULL, 10);
        srv_log(SRV_LOG_WARN, "seal", "test replay cache cap=%zu", o.replay_cap);
    }
    const char *v1 = getenv("TRACKD_TEST_SEAL_V1_ONLY");
    if (v1 && strcmp(v1, "1") == 0) {
        o.no_aes = 1;
        srv_log(SRV_LOG_WARN, "seal", "test: sealed envelope version 1 only");
    }
    if (seal_server_new(&o, srv->key.sk, &s->seal, &err)) {
        srv_log(SRV_LOG_ERROR, "seal", "cannot set up sealed listeners: %s", err.msg);
        free(s);
        return -1;
    }
    srv_log(SRV_LOG_INFO, "seal", "envelope versions %s (AES-256-GCM via %s)",
            seal_server_has_aes(s->seal) ? "1 and 2" : "1 only", seal_aes_engine());
    *out = s;
    return 0;
}

void srv_sealer_free(struct srv_sealer *s)
{
    if (!s)
        return;
    seal_server_free(s->seal);
    free(s);
}

static void log_refusal(struct srv_sealer *s, const uint8_t *frame, size_t len, int code,
                        const char *why)
{
    int64_t now = wire_mono_ms();
    char key[SEAL_KEY_TEXT_BYTES] = "(none)";

    if (now - s->log_window_ms >= REFUSAL_LOG_MS) {
        if (s->suppressed)
            srv_log(SRV_LOG_INFO, "seal", "%d more sealed frames refused in the last %d s",
                    s->suppressed, REFUSAL_LOG_MS / 1000);
        s->log_window_ms = now;
        s->logged = s->suppressed = 0;
    }
    if (s->logged >= REFUSAL_LOG_BURST) {
        s->suppressed++;
        return;
    }
    s->logged++;
    if (len >= 2 + SEAL_PUBLIC_BYTES)
        seal_key_to_text(frame + 2, key);
    srv_log(SRV_LOG_INFO, "seal", "refused %s key=%s: %s", seal_strerror(code), key, why);
}

static int refusal(struct srv_sealer *s, uint8_t *frame, size_t len, struct seal_peer *peer,
                   struct srv_caller *caller, const uint8_t **plain, size_t *plain_len, char *msg,
                   size_t msglen);

/* Every refusal names the server's own public key (it is public): a client
 * that pinned another one then says "server key mismatch" rather than "not
 * authenticated", since a request sealed for another key never opens here. */
int srv_sealer_open(struct srv_sealer *s, uint8_t *frame, size_t len, struct seal_peer *peer,
                    struct srv_caller *caller, const uint8_t **plain, size_t *plain_len, char *msg,
                    size_t msglen)
{
    int code = refusal(s, frame, len, peer, caller, plain, plain_len, msg, msglen);
    if (code) {
        uint8_t pk[SEAL_PUBLIC_BYTES];
        char text[SEAL_KEY_TEXT_BYTES];
        size_t n = strlen(msg);
        seal_server_public(s->seal, pk);
        seal_key_to_text(pk, text);
        snprintf(msg + n, msglen - n, " (server key %s)", text);
    }
    return code;
}

static int refusal(struct srv_sealer *s, uint8_t *frame, size_t len, struct seal_peer *peer,
                   struct srv_caller *caller, const uint8_t **plain, size_t *plain_len, char *msg,
                   size_t msglen)
{
    struct seal_err err = {0};
    char key[SEAL_KEY_TEXT_BYTES] = "";

    *plain = NULL;
    *plain_len = 0;
    if (seal_frame_kind(frame, len) != SEAL_KIND_REQUEST) {
        log_refusal(s, frame, 0, SEAL_E_BAD_FRAME, "a plain frame on a sealed listener");
        snprintf(msg, msglen,
                 "plain frames are refused on tcp://; this listener needs a sealed client "
                 "(track config set server ... --server-key ...)");
        return TRACK__V1__CODE__UNAUTHENTICATED;
    }
    s->found = 0;
    int rc = seal_server_open_in_place(s->seal, frame, len, peer, plain, plain_len, &err);
    if (rc == 0 && s->found) {
        memset(caller, 0, sizeof(*caller));
        caller->local = 0;
        caller->user_id = s->user.id;
        caller->role = s->user.role;
        snprintf(caller->name, sizeof(caller->name), "%s", s->user.name);
        caller->has_key = 1;
        memcpy(caller->key, peer->pk, STORE_KEY_BYTES);
        return 0;
    }
    if (rc == 0) { /* opened, yet key_known did not see it: never trusted */
        sodium_memzero((uint8_t *)(uintptr_t)*plain, *plain_len);
        *plain = NULL;
        *plain_len = 0;
        rc = SEAL_E_UNKNOWN_KEY;
    }
    log_refusal(s, frame, len, rc, err.msg);
    if (len >= 2 + SEAL_PUBLIC_BYTES)
        seal_key_to_text(frame + 2, key);
    switch (rc) {
    case SEAL_E_UNKNOWN_KEY:
    case SEAL_E_TAMPERED:
        snprintf(msg, msglen,
                 "not authenticated: this server does not know your key (%s), or the frame "
                 "was altered on the way",
                 key);
        return TRACK__V1__CODE__UNAUTHENTICATED;
    case SEAL_E_STALE:
        snprintf(msg, msglen, "not authenticated: %s; set the clocks right (NTP) and retry",
                 err.msg);
        return TRACK__V1__CODE__UNAUTHENTICATED;
    case SEAL_E_REPLAYED:
        snprintf(msg, msglen,
                 "not authenticated: this sealed frame was already received (a replay); a "
                 "retry must be sealed again");
        return TRACK__V1__CODE__UNAUTHENTICATED;
    case SEAL_E_FULL:
        snprintf(msg, msglen, "trackd is busy: %s; retry", err.msg);
        return TRACK__V1__CODE__RESOURCE_EXHAUSTED;
    case SEAL_E_NOMEM:
        snprintf(msg, msglen, "daemon out of memory");
        return TRACK__V1__CODE__RESOURCE_EXHAUSTED;
    default:
        snprintf(msg, msglen, "bad sealed frame: %s", err.msg);
        return TRACK__V1__CODE__INVALID_ARGUMENT;
    }
}

int srv_sealer_seal(struct srv_sealer *s, const struct seal_peer *peer, const uint8_t *buf,
                    size_t len, uint8_t **out, size_t *out_len)
{
    struct seal_err err = {0};
    if (seal_server_seal_reply(s->seal, peer, buf, len, out, out_len, &err) == 0)
        return 0;
    srv_log(SRV_LOG_WARN, "seal", "cannot seal a reply of %zu bytes: %s", len, err.msg);
    return -1;
}

void srv_local_caller(struct srv_caller *c)
{
    struct passwd *pw = getpwuid(getuid());
    memset(c, 0, sizeof(*c));
    c->local = 1;
    c->role = STORE_ROLE_ADMIN;
    if (pw && pw->pw_name)
        snprintf(c->name, sizeof(c->name), "%s", pw->pw_name);
    else
        snprintf(c->name, sizeof(c->name), "uid%u", (unsigned)getuid());
}
