/*
 * test_seal_tcp.c: sealed tcp:// listeners end to end (issue 15). A real
 * trackd on loopback TCP with its own server key, users added to its store
 * with the store API (storage/store.h, on the daemon's database), real
 * client keys made by libtrack (track_keygen) and the built `track` CLI.
 *
 * What is proved: a known key round-trips (metrics, runs, artifacts); an
 * unknown key, a tampered, replayed, stale or plain frame is refused with
 * the right code and message while the daemon keeps serving others; a
 * client pinned to another server's key says "server key mismatch"; a key
 * removed from the store is refused at its next request; the key files and
 * config are 0600 under umask 000; the spool keeps records per server, seals
 * them at delivery and reports those refused for good; a client that stops
 * inside a frame does not stop others, and a frame declared past the tcp
 * limit is refused at its header; envelope versions 1 and 2 share one
 * listener, and a version 2 client falls back to 1 on a server that cannot
 * open 2.
 *
 * The raw frames are written on a plain TCP socket speaking nanomsg's SP
 * protocol (8-byte header, then 8-byte length + REQ's 4-byte request id +
 * body), sealed with proto/seal.c: no nanomsg socket in this process.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "seal.h"
#include "store.h"
#include "track.h"
#include "track.pb-c.h"
#include "wire.h"

static struct fx_daemon D;
static char home[256], tcp_uri[64], server_pk[SEAL_KEY_TEXT_BYTES];
static int port, passed;

static void setup(void)
{
    char p[300];
    passed = 0;
    snprintf(home, sizeof(home), "/tmp/track-seal-home-XXXXXX");
    cr_assert_not_null(mkdtemp(home));
    setenv("HOME", home, 1);
    snprintf(p, sizeof(p), "%s/.config", home);
    setenv("XDG_CONFIG_HOME", p, 1);
    snprintf(p, sizeof(p), "%s/state", home);
    setenv("XDG_STATE_HOME", p, 1);
    unsetenv("TRACK_KEY");
    unsetenv("TRACK_SERVER_KEY");
    unsetenv("TRACK_SERVER");
    unsetenv("TRACK_TEST_PLAIN_TCP");
}

static void teardown(void)
{
    fx_daemon_cleanup(&D, !passed);
    fx_rmtree(home);
}

TestSuite(seal_tcp, .init = setup, .fini = teardown, .timeout = 120);

/* Starts trackd with a sealed listener on a free loopback port and reads
 * its public key with --print-public-key. */
static void start_sealed(void)
{
    char listening[128], *out = NULL, *err = NULL;
    port = fx_free_port();
    snprintf(tcp_uri, sizeof(tcp_uri), "tcp://127.0.0.1:%d", port);
    const char *extra[] = {"--listen", tcp_uri, NULL};
    cr_assert_eq(fx_daemon_start(&D, extra), 0, "trackd did not start");
    snprintf(listening, sizeof(listening), "listening uri=%s sealed", tcp_uri);
    cr_assert(fx_wait_log(&D, 0, listening, 5000), "no \"%s\" in the log", listening);
    const char *argv[] = {TRACKD_BIN, "--data-dir", D.dir, "--print-public-key", NULL};
    cr_assert_eq(fx_run(argv, NULL, NULL, &out, &err), 0, "--print-public-key: %s", err);
    cr_assert_eq(strlen(out), SEAL_KEY_TEXT_BYTES, "key line \"%s\"", out);
    memcpy(server_pk, out, SEAL_KEY_TEXT_BYTES - 1);
    server_pk[SEAL_KEY_TEXT_BYTES - 1] = '\0';
    cr_assert(fx_wait_log(&D, 0, server_pk, 1000), "the public key is not logged at start");
    free(out);
    free(err);
}

/* Makes a client key at HOME/NAME.key; its public key text into pk. */
static void make_key(const char *name, char *path, size_t cap, char pk[TRACK_KEY_TEXT_BYTES])
{
    struct track_err err = {0};
    snprintf(path, cap, "%s/%s.key", home, name);
    cr_assert_eq(track_keygen(path, pk, &err), 0, "keygen: %s", err.msg);
}

static void store_do(const char *name, const char *pk_text, int role, int remove)
{
    char db[400];
    struct store *st = NULL;
    struct store_opts so = {0};
    struct store_err err = {0};
    uint8_t pk[SEAL_PUBLIC_BYTES];
    struct seal_err se = {0};

    snprintf(db, sizeof(db), "%s/track.db", D.dir);
    cr_assert_eq(store_open(db, &so, &st, &err), 0, "store_open: %s", err.msg);
    if (remove) {
        cr_assert_eq(store_user_remove(st, name, &err), 0, "remove: %s", err.msg);
    } else {
        cr_assert_eq(seal_key_from_text(pk_text, pk, &se), 0, "%s", se.msg);
        cr_assert_eq(store_user_add(st, name, role, pk, wire_now_ms(), NULL, &err), 0,
                     "add user: %s", err.msg);
    }
    store_close(st);
}

static struct track_client *client_with(const char *key_path, const char *pin, int no_spool)
{
    struct track_opts o = {.server = tcp_uri,
                           .timeout_ms = 5000,
                           .no_spool = no_spool,
                           .key_path = key_path,
                           .server_key = pin,
                           .flush_interval_ms = 3600 * 1000};
    char spool[400];
    snprintf(spool, sizeof(spool), "%s/spool.bin", home);
    o.spool_path = spool;
    struct track_client *c = NULL;
    struct track_err err = {0};
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "open: %s", err.msg);
    return c;
}

/* ---- raw frames ------------------------------------------------------------- */

static const unsigned char sp_req[8] = {0, 'S', 'P', 0, 0, 48, 0, 0};

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static int read_all(int fd, void *buf, size_t len, int ms)
{
    unsigned char *p = buf;
    long long end = fx_now_ms() + ms;
    while (len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long long left = end - fx_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) != 1)
            return -1;
        ssize_t n = read(fd, p, len);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int raw_connect(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    unsigned char h[8];
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
    cr_assert_eq(write(fd, sp_req, 8), 8);
    cr_assert_eq(read_all(fd, h, 8, 5000), 0, "no SP header from trackd");
    return fd;
}

static void raw_send(int fd, uint32_t id, const uint8_t *body, size_t len)
{
    unsigned char head[12];
    put_be64(head, len + 4);
    head[8] = (unsigned char)(0x80 | (id >> 24));
    head[9] = (unsigned char)(id >> 16);
    head[10] = (unsigned char)(id >> 8);
    head[11] = (unsigned char)id;
    cr_assert_eq(write(fd, head, 12), 12);
    cr_assert_eq(write(fd, body, len), (ssize_t)len);
}

/* One reply's body (after REQ's 4-byte id), malloc'd; NULL when none came. */
static uint8_t *raw_reply(int fd, size_t *len, int ms)
{
    unsigned char h[8];
    if (read_all(fd, h, 8, ms))
        return NULL;
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n = n << 8 | h[i];
    cr_assert(n >= 4 && n < (1u << 20), "reply frame of %llu bytes", (unsigned long long)n);
    uint8_t *buf = malloc(n);
    cr_assert_eq(read_all(fd, buf, n, ms), 0, "reply cut short");
    memmove(buf, buf + 4, n - 4);
    *len = n - 4;
    return buf;
}

static uint8_t *status_request(size_t *len)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Status s = TRACK__V1__STATUS__INIT;
    uint8_t rid[16];
    for (int i = 0; i < 16; i++)
        rid[i] = (uint8_t)rand();
    rq.request_id.data = rid;
    rq.request_id.len = 16;
    rq.op_case = TRACK__V1__REQUEST__OP_STATUS;
    rq.status = &s;
    *len = track__v1__request__get_packed_size(&rq);
    uint8_t *buf = malloc(*len);
    track__v1__request__pack(&rq, buf);
    return buf;
}

/* A plain error reply: its code and message (into msg). */
static int plain_error(const uint8_t *buf, size_t len, char *msg, size_t cap)
{
    cr_assert_eq(seal_frame_kind(buf, len), SEAL_KIND_PLAIN, "a refusal is plain");
    Track__V1__Response *rs = track__v1__response__unpack(NULL, len, buf);
    cr_assert_not_null(rs);
    cr_assert_not_null(rs->error, "no error in the refusal");
    int code = rs->error->code;
    snprintf(msg, cap, "%s", rs->error->message);
    track__v1__response__free_unpacked(rs, NULL);
    return code;
}

struct sealer {
    struct seal_keypair kp;
    struct seal_client *c;
};

static void sealer_new(struct sealer *s, const char *key_path)
{
    struct seal_err se = {0};
    uint8_t spk[SEAL_PUBLIC_BYTES];
    cr_assert_eq(seal_key_file_read(key_path, &s->kp, &se), 0, "%s", se.msg);
    cr_assert_eq(seal_key_from_text(server_pk, spk, &se), 0, "%s", se.msg);
    cr_assert_eq(seal_client_new(s->kp.sk, s->kp.pk, spk, &s->c, &se), 0, "%s", se.msg);
}

static void sealer_free(struct sealer *s)
{
    seal_client_free(s->c);
    seal_keypair_clear(&s->kp);
}

static int64_t clock_2h_ahead(void *arg)
{
    (void)arg;
    return wire_now_ms() + 2 * 3600 * 1000;
}

static int status_of(struct track_client *c, struct track_err *err)
{
    struct track_result *res = NULL;
    struct track_server_status st;
    int rc = track_status(c, &res, &st, err);
    if (rc == 0)
        track_result_free(res);
    return rc;
}

/* The other client keeps being served: a status round trip over TCP. */
static void others_served(const char *key_path)
{
    struct track_client *c = client_with(key_path, server_pk, 1);
    struct track_err err = {0};
    cr_assert_eq(status_of(c, &err), 0, "another client is not served: %s", err.msg);
    track_client_close(c);
}

/* ---- the tests --------------------------------------------------------------- */

Test(seal_tcp, a_known_key_logs_lists_and_moves_artifacts)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES], file[400], back[400];
    start_sealed();
    make_key("alice", kpath, sizeof(kpath), pk);
    store_do("alice", pk, STORE_ROLE_WRITER, 0);

    struct track_client *c = client_with(kpath, server_pk, 1);
    struct track_err err = {0};
    track_run_id id;
    char hex[33];
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "run start: %s", err.msg);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(track_log_metric(c, "loss", 1.0 / (i + 1), i, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(track_flush(c, &err), 0, "flush: %s", err.msg);
    cr_assert_eq(err.code, 0, "flush spooled or failed: %s", err.msg);
    snprintf(file, sizeof(file), "%s/weights.bin", home);
    fx_write_random(file, 3000000, 7); /* several chunks in flight, each sealed */
    cr_assert_eq(track_artifact_put(c, file, "model/weights.bin", &err), 0, "put: %s", err.msg);
    snprintf(back, sizeof(back), "%s/back.bin", home);
    track_run_id_hex(&id, hex);
    cr_assert_eq(track_artifact_get(c, hex, "model/weights.bin", back, &err), 0, "get: %s",
                 err.msg);
    cr_assert(fx_same_file(file, back), "the artifact came back changed");
    track_client_close(c);
    int64_t *steps = calloc(2000, sizeof(*steps));
    cr_assert_eq(fx_metric_steps(&D, hex, "loss", steps, 2000), 1000, "points over ipc");
    free(steps);

    /* the CLI, with the pin from the config file and the key from TRACK_KEY */
    char *out = NULL, *errs = NULL, env_key[500];
    snprintf(env_key, sizeof(env_key), "TRACK_KEY=%s", kpath);
    const char *setv[] = {TRACK_BIN, "config",       "set",     "server",
                          tcp_uri,   "--server-key", server_pk, NULL};
    cr_assert_eq(fx_run(setv, NULL, NULL, &out, &errs), 0, "config set: %s", errs);
    free(out);
    free(errs);
    const char *env[] = {env_key, "TRACK_NO_AUTOSTART=1", NULL};
    const char *logv[] = {TRACK_BIN, "log-metric", "acc", "0.9", "--step", "3", "--run", hex, NULL};
    cr_assert_eq(fx_run(logv, env, NULL, &out, &errs), 0, "track log-metric: %s", errs);
    free(out);
    free(errs);
    const char *runsv[] = {TRACK_BIN, "runs", "--json", NULL};
    cr_assert_eq(fx_run(runsv, env, NULL, &out, &errs), 0, "track runs: %s", errs);
    cr_assert(strstr(out, hex), "run %s not listed over tcp: %s", hex, out);
    free(out);
    free(errs);
    passed = 1;
}

Test(seal_tcp, an_unknown_key_is_not_authenticated)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES];
    start_sealed();
    make_key("stranger", kpath, sizeof(kpath), pk);
    struct track_client *c = client_with(kpath, server_pk, 1);
    struct track_err err = {0};
    cr_assert_eq(status_of(c, &err), TRACK_E_UNAUTHENTICATED, "%s", err.msg);
    cr_assert(strstr(err.msg, "not authenticated") && strstr(err.msg, pk), "%s", err.msg);
    track_client_close(c);
    long from = 0;
    cr_assert(fx_wait_log(&D, from, "refused UNKNOWN_KEY key=trk1:", 2000), "no log line");
    passed = 1;
}

Test(seal_tcp, tampered_replayed_stale_and_plain_frames_are_refused)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES], other[400], opk[TRACK_KEY_TEXT_BYTES];
    char msg[700];
    start_sealed();
    make_key("alice", kpath, sizeof(kpath), pk);
    make_key("bob", other, sizeof(other), opk);
    store_do("alice", pk, STORE_ROLE_WRITER, 0);
    store_do("bob", opk, STORE_ROLE_READER, 0);
    struct sealer s;
    sealer_new(&s, kpath);
    struct seal_err se = {0};
    size_t len, flen, rlen;
    uint8_t *req = status_request(&len), *frame, *reply, *plain;
    struct seal_ticket t;
    int fd = raw_connect();

    /* a good frame opens, and its reply opens for its ticket */
    cr_assert_eq(seal_client_seal(s.c, req, len, &frame, &flen, &t, &se), 0, "%s", se.msg);
    raw_send(fd, 1, frame, flen);
    reply = raw_reply(fd, &rlen, 5000);
    cr_assert_not_null(reply, "no reply to a good frame");
    size_t plen;
    cr_assert_eq(seal_client_open_reply(s.c, &t, reply, rlen, &plain, &plen, &se), 0, "%s", se.msg);
    Track__V1__Response *rs = track__v1__response__unpack(NULL, plen, plain);
    cr_assert(rs && !rs->error && rs->result_case == TRACK__V1__RESPONSE__RESULT_STATUS);
    track__v1__response__free_unpacked(rs, NULL);
    free(plain);
    free(reply);

    /* replayed: the same sealed bytes again */
    raw_send(fd, 2, frame, flen);
    reply = raw_reply(fd, &rlen, 5000);
    cr_assert_not_null(reply, "no answer to a replay");
    cr_assert_eq(plain_error(reply, rlen, msg, sizeof(msg)), TRACK__V1__CODE__UNAUTHENTICATED);
    cr_assert(strstr(msg, "replay"), "%s", msg);
    free(reply);
    free(frame);

    /* tampered: one byte of the box flipped */
    cr_assert_eq(seal_client_seal(s.c, req, len, &frame, &flen, &t, &se), 0, "%s", se.msg);
    frame[flen - 3] ^= 0x20;
    raw_send(fd, 3, frame, flen);
    reply = raw_reply(fd, &rlen, 5000);
    cr_assert_not_null(reply, "no answer to a tampered frame");
    cr_assert_eq(plain_error(reply, rlen, msg, sizeof(msg)), TRACK__V1__CODE__UNAUTHENTICATED);
    cr_assert(strstr(msg, "not authenticated"), "%s", msg);
    free(reply);
    free(frame);
    others_served(other);

    /* stale: the client's clock two hours ahead */
    seal_client_set_clock(s.c, clock_2h_ahead, NULL);
    cr_assert_eq(seal_client_seal(s.c, req, len, &frame, &flen, &t, &se), 0, "%s", se.msg);
    raw_send(fd, 4, frame, flen);
    reply = raw_reply(fd, &rlen, 5000);
    cr_assert_not_null(reply, "no answer to a stale frame");
    cr_assert_eq(plain_error(reply, rlen, msg, sizeof(msg)), TRACK__V1__CODE__UNAUTHENTICATED);
    cr_assert(strstr(msg, "clocks differ") && strstr(msg, "ahead"), "%s", msg);
    free(reply);
    free(frame);

    /* plain: an unsealed request on the tcp listener */
    raw_send(fd, 5, req, len);
    reply = raw_reply(fd, &rlen, 5000);
    cr_assert_not_null(reply, "no answer to a plain frame");
    cr_assert_eq(plain_error(reply, rlen, msg, sizeof(msg)), TRACK__V1__CODE__UNAUTHENTICATED);
    cr_assert(strstr(msg, "plain frames are refused on tcp://"), "%s", msg);
    free(reply);
    close(fd);
    free(req);
    sealer_free(&s);
    others_served(other);
    cr_assert(fx_wait_log(&D, 0, "refused TAMPERED", 1000));
    cr_assert(fx_wait_log(&D, 0, "refused STALE", 1000));
    cr_assert(fx_wait_log(&D, 0, "refused REPLAYED", 1000));
    passed = 1;
}

Test(seal_tcp, a_client_pinned_to_another_key_reports_a_mismatch)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES], wrong[TRACK_KEY_TEXT_BYTES], wpath[400];
    start_sealed();
    make_key("alice", kpath, sizeof(kpath), pk);
    make_key("not-the-server", wpath, sizeof(wpath), wrong);
    store_do("alice", pk, STORE_ROLE_WRITER, 0);
    struct track_client *c = client_with(kpath, wrong, 1);
    struct track_err err = {0};
    cr_assert_eq(status_of(c, &err), TRACK_E_UNAUTHENTICATED, "%s", err.msg);
    cr_assert(strstr(err.msg, "server key mismatch") && strstr(err.msg, wrong) &&
                  strstr(err.msg, "track config set"),
              "%s", err.msg);
    track_client_close(c);

    /* and without any key or pin, a message saying how to set them up */
    unsetenv("TRACK_SERVER_KEY");
    c = client_with(NULL, NULL, 1);
    cr_assert_eq(status_of(c, &err), TRACK_E_UNAUTHENTICATED, "%s", err.msg);
    cr_assert(strstr(err.msg, "track keygen") && strstr(err.msg, "track config set server"), "%s",
              err.msg);
    track_client_close(c);
    passed = 1;
}

Test(seal_tcp, a_removed_key_is_refused_at_its_next_request)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES];
    start_sealed();
    make_key("carol", kpath, sizeof(kpath), pk);
    store_do("carol", pk, STORE_ROLE_WRITER, 0);
    struct track_client *c = client_with(kpath, server_pk, 1);
    struct track_err err = {0};
    cr_assert_eq(status_of(c, &err), 0, "%s", err.msg);
    store_do("carol", NULL, 0, 1);
    cr_assert_eq(status_of(c, &err), TRACK_E_UNAUTHENTICATED, "a removed key still served: %s",
                 err.msg);
    track_client_close(c);
    passed = 1;
}

Test(seal_tcp, key_files_and_config_are_0600_under_umask_000)
{
    char path[400], pk[TRACK_KEY_TEXT_BYTES], *out = NULL, *errs = NULL;
    struct stat sb;
    mode_t old = umask(0);
    start_sealed();
    snprintf(path, sizeof(path), "%s/server.key", D.dir);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0600, "server.key mode %o", sb.st_mode & 0777);

    const char *kg[] = {TRACK_BIN, "keygen", NULL};
    cr_assert_eq(fx_run(kg, NULL, NULL, &out, &errs), 0, "keygen: %s", errs);
    cr_assert_eq(strncmp(out, "trk1:", 5), 0, "%s", out);
    snprintf(pk, sizeof(pk), "%.48s", out);
    free(out);
    free(errs);
    cr_assert_neq(fx_run(kg, NULL, NULL, &out, &errs), 0, "a second keygen overwrote the key");
    cr_assert(strstr(errs, "already exists"), "%s", errs);
    free(out);
    free(errs);
    const char *show[] = {TRACK_BIN, "keygen", "--show", NULL};
    cr_assert_eq(fx_run(show, NULL, NULL, &out, &errs), 0, "keygen --show: %s", errs);
    cr_assert_eq(strncmp(out, pk, 48), 0, "--show: %s, keygen said %s", out, pk);
    free(out);
    free(errs);
    snprintf(path, sizeof(path), "%s/.config/track/key", home);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0600, "client key mode %o", sb.st_mode & 0777);
    snprintf(path, sizeof(path), "%s/.config/track", home);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0700, "config dir mode %o", sb.st_mode & 0777);

    const char *set[] = {TRACK_BIN, "config",       "set",     "server",
                         tcp_uri,   "--server-key", server_pk, NULL};
    cr_assert_eq(fx_run(set, NULL, NULL, &out, &errs), 0, "config set: %s", errs);
    free(out);
    free(errs);
    snprintf(path, sizeof(path), "%s/.config/track/config", home);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0600, "config mode %o", sb.st_mode & 0777);
    const char *cs[] = {TRACK_BIN, "config", "show", "--json", NULL};
    cr_assert_eq(fx_run(cs, NULL, NULL, &out, &errs), 0, "config show: %s", errs);
    cr_assert(strstr(out, server_pk) && strstr(out, pk) && strstr(out, tcp_uri), "%s", out);
    free(out);
    free(errs);
    const char *bad[] = {TRACK_BIN, "config", "set", "server", tcp_uri, NULL};
    cr_assert_neq(fx_run(bad, NULL, NULL, &out, &errs), 0, "tcp:// without a pin accepted");
    cr_assert(strstr(errs, "--server-key"), "%s", errs);
    free(out);
    free(errs);
    umask(old);
    passed = 1;
}

/* Stops the tcp daemon, runs fn's writes into the spool, starts it again. */
static void restart_sealed(void)
{
    char listening[128];
    long from = fx_log_size(&D);
    cr_assert_eq(fx_daemon_restart(&D, (const char *const[]){"--listen", tcp_uri, NULL}), 0);
    snprintf(listening, sizeof(listening), "listening uri=%s sealed", tcp_uri);
    cr_assert(fx_wait_log(&D, from, listening, 5000), "no \"%s\" after the restart", listening);
}

/* Records are spooled with the plaintext and sealed at delivery (by the
 * key of the client that syncs: the spool is per user), each to its own
 * server; a refusal for good is reported with its reason, never counted as
 * delivered. */
Test(seal_tcp, spooled_records_stay_with_their_server_and_refusals_are_reported)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES], upath[400], upk[TRACK_KEY_TEXT_BYTES];
    char spool[400], hex[33];
    struct fx_daemon other;
    struct track_sync_report r;
    struct track_err err = {0};
    track_run_id id;

    start_sealed();
    make_key("alice", kpath, sizeof(kpath), pk);
    make_key("nobody", upath, sizeof(upath), upk);
    store_do("alice", pk, STORE_ROLE_WRITER, 0);
    cr_assert_eq(fx_daemon_start(&other, NULL), 0, "second trackd did not start");
    snprintf(spool, sizeof(spool), "%s/spool.bin", home);

    /* an unknown key's write, spooled while the tcp daemon is away */
    cr_assert_eq(fx_daemon_stop(&D), 0);
    struct track_client *u = client_with(upath, server_pk, 0);
    cr_assert_eq(track_run_start(u, NULL, &id, &err), 0, "%s", err.msg);
    cr_assert_eq(err.code, TRACK_E_SPOOLED, "not spooled: %s", err.msg);

    /* a sync by a client of another server delivers nothing of it there */
    struct track_opts oo = {.server = other.uri, .timeout_ms = 5000, .spool_path = spool};
    struct track_client *oc = NULL;
    cr_assert_eq(track_client_open(&oo, &oc, &err), 0, "%s", err.msg);
    track_spool_deliver(oc, 0, &r, &err);
    cr_expect_eq(r.delivered, 0, "records of %s delivered to %s", tcp_uri, other.uri);
    track_client_close(oc);

    /* back: refused for good (UNAUTHENTICATED), reported, not delivered */
    restart_sealed();
    memset(&r, 0, sizeof(r));
    track_spool_deliver(u, 1, &r, &err);
    cr_expect_eq(r.delivered, 0, "an unknown key's record counted as delivered");
    cr_assert_eq(r.rejected, 1, "rejected %d (kept %d): %s", r.rejected, r.kept,
                 r.n_kept_reasons ? r.kept_reasons[0] : "");
    cr_assert(strstr(r.rejected_reasons[0], "UNAUTHENTICATED") &&
                  strstr(r.rejected_reasons[0], "not authenticated"),
              "%s", r.rejected_reasons[0]);
    track_client_close(u);

    /* a known key's write spooled the same way arrives, sealed at delivery */
    cr_assert_eq(fx_daemon_stop(&D), 0);
    struct track_client *c = client_with(kpath, server_pk, 0);
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
    cr_assert_eq(err.code, TRACK_E_SPOOLED, "not spooled: %s", err.msg);
    restart_sealed();
    memset(&r, 0, sizeof(r));
    cr_assert_eq(track_spool_deliver(c, 1, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.delivered, 1, "delivered %d: %s", r.delivered, err.msg);
    track_client_close(c);
    track_run_id_hex(&id, hex);
    struct track_client *v = client_with(kpath, server_pk, 1);
    cr_assert_eq(track_run_use(v, hex, &err), 0, "the delivered run is not there: %s", err.msg);
    track_client_close(v);

    /* and the CLI's sync names the refusal */
    fx_daemon_cleanup(&other, 0);
    passed = 1;
}

Test(seal_tcp, a_client_stopped_inside_a_frame_does_not_stop_others)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES];
    start_sealed();
    make_key("alice", kpath, sizeof(kpath), pk);
    store_do("alice", pk, STORE_ROLE_WRITER, 0);
    int half[8];
    unsigned char head[12] = {0};
    for (int i = 0; i < 8; i++) {
        half[i] = raw_connect();
        put_be64(head, 4096);
        head[8] = 0x80;
        cr_assert_eq(write(half[i], head, 12), 12);
        cr_assert_eq(write(half[i], "SX", 2), 2); /* 2 of 4092 body bytes */
    }
    int idle = raw_connect(); /* connects and sends nothing more */
    others_served(kpath);
    /* past the tcp limit (8 MiB) the header is refused: the connection closes */
    int big = raw_connect();
    put_be64(head, (uint64_t)(15u << 20));
    cr_assert_eq(write(big, head, 12), 12);
    char b;
    struct pollfd pfd = {.fd = big, .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 5000), 1, "a 15 MiB frame header was not refused");
    cr_assert_leq(read(big, &b, 1), 0, "the connection stayed open");
    others_served(kpath);
    for (int i = 0; i < 8; i++)
        close(half[i]);
    close(idle);
    close(big);
    passed = 1;
}

/* A reply that comes late (trackd stopped for 3 s while the request waits)
 * is still the reply: nanomsg's REQ resend, which would send the identical
 * sealed bytes and be refused as a replay, is an hour away on sealed
 * sockets, and the client's wait is its own timeout. */
Test(seal_tcp, a_slow_reply_is_not_taken_for_a_replay)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES];
    start_sealed();
    make_key("alice", kpath, sizeof(kpath), pk);
    store_do("alice", pk, STORE_ROLE_WRITER, 0);
    struct track_opts o = {.server = tcp_uri,
                           .timeout_ms = 15000,
                           .no_spool = 1,
                           .key_path = kpath,
                           .server_key = server_pk};
    struct track_client *c = NULL;
    struct track_err err = {0};
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(status_of(c, &err), 0, "%s", err.msg); /* connected before the stop */
    pid_t stopper = fork();
    cr_assert_geq(stopper, 0);
    if (stopper == 0) {
        /* sleeps and signals only, then _exit: never touches nanomsg */
        fx_sleep_ms(100);
        kill(D.pid, SIGSTOP);
        fx_sleep_ms(3000);
        kill(D.pid, SIGCONT);
        _exit(0);
    }
    fx_sleep_ms(400);
    long long t0 = fx_now_ms();
    cr_assert_eq(status_of(c, &err), 0, "a slow reply failed: %s", err.msg);
    cr_expect_geq(fx_now_ms() - t0, 1500, "the reply was not slow (%lld ms)", fx_now_ms() - t0);
    track_client_close(c);
    int st;
    cr_assert_eq(waitpid(stopper, &st, 0), stopper);
    cr_assert(!fx_wait_log(&D, 0, "refused REPLAYED", 200), "a slow reply became a replay");
    passed = 1;
}

/* A write sealed again with a fresh nonce (what a retry does) is the same
 * request to trackd: the request-id digest is of the plaintext, so the
 * second answer is the first one again, not ALREADY_EXISTS or CONFLICT. */
Test(seal_tcp, a_write_sealed_again_is_recognised_by_its_request_id)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES];
    start_sealed();
    make_key("alice", kpath, sizeof(kpath), pk);
    store_do("alice", pk, STORE_ROLE_WRITER, 0);
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ExperimentCreate ec = TRACK__V1__EXPERIMENT_CREATE__INIT;
    uint8_t rid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    ec.name = (char *)(uintptr_t) "resealed";
    rq.request_id.data = rid;
    rq.request_id.len = 16;
    rq.op_case = TRACK__V1__REQUEST__OP_EXPERIMENT_CREATE;
    rq.experiment_create = &ec;
    size_t len = track__v1__request__get_packed_size(&rq);
    uint8_t *req = malloc(len);
    track__v1__request__pack(&rq, req);
    struct sealer s;
    sealer_new(&s, kpath);
    int fd = raw_connect();
    int64_t ids[2];
    for (int i = 0; i < 2; i++) {
        struct seal_err se = {0};
        struct seal_ticket t;
        uint8_t *frame, *reply, *plain;
        size_t flen, rlen, plen;
        cr_assert_eq(seal_client_seal(s.c, req, len, &frame, &flen, &t, &se), 0, "%s", se.msg);
        raw_send(fd, (uint32_t)(10 + i), frame, flen);
        free(frame);
        reply = raw_reply(fd, &rlen, 5000);
        cr_assert_not_null(reply, "no reply to copy %d", i + 1);
        cr_assert_eq(seal_client_open_reply(s.c, &t, reply, rlen, &plain, &plen, &se), 0,
                     "copy %d: %s", i + 1, se.msg);
        Track__V1__Response *rs = track__v1__response__unpack(NULL, plen, plain);
        cr_assert_not_null(rs);
        cr_assert(!rs->error || rs->error->code == TRACK__V1__CODE__OK, "copy %d: %s", i + 1,
                  rs->error ? rs->error->message : "");
        cr_assert_eq(rs->result_case, TRACK__V1__RESPONSE__RESULT_EXPERIMENT);
        ids[i] = rs->experiment->id;
        track__v1__response__free_unpacked(rs, NULL);
        free(plain);
        free(reply);
    }
    cr_assert_eq(ids[0], ids[1], "the resealed copy made experiment %lld after %lld",
                 (long long)ids[1], (long long)ids[0]);
    close(fd);
    free(req);
    sealer_free(&s);
    passed = 1;
}

/* A config file that cannot be read stops a client that would use it,
 * naming the file and line, rather than sending its writes to the local
 * default; the server it names is the default of every client. */
Test(seal_tcp, the_config_names_the_default_server_and_a_broken_one_is_an_error)
{
    char path[400], kpath[400], pk[TRACK_KEY_TEXT_BYTES];
    struct track_err err = {0};
    struct track_client *c = NULL;
    start_sealed();
    make_key("alice", kpath, sizeof(kpath), pk);
    store_do("alice", pk, STORE_ROLE_WRITER, 0);
    cr_assert_eq(track_config_set_server(tcp_uri, server_pk, &err), 0, "%s", err.msg);
    setenv("TRACK_KEY", kpath, 1);
    struct track_opts o = {.timeout_ms = 5000, .no_spool = 1};
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "%s", err.msg);
    cr_assert_str_eq(track_client_server(c), tcp_uri);
    cr_assert_eq(status_of(c, &err), 0, "with the config's pin: %s", err.msg);
    track_client_close(c);

    snprintf(path, sizeof(path), "%s/.config/track/config", home);
    fx_write_file(path, "server = tcp://127.0.0.1:1\nsevrer_key = trk1:x\n", 46);
    c = NULL;
    cr_assert_neq(track_client_open(&o, &c, &err), 0, "a broken config was ignored");
    cr_assert(strstr(err.msg, path) && strstr(err.msg, ":2:"), "%s", err.msg);
    passed = 1;
}

/* A replay cache at its cap refuses fresh frames as RESOURCE_EXHAUSTED
 * (never forgets a nonce to make room); the cap is set small here with the
 * test hook TRACKD_TEST_REPLAY_CAP. */
Test(seal_tcp, a_full_replay_cache_is_resource_exhausted)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES], msg[700];
    setenv("TRACKD_TEST_REPLAY_CAP", "5", 1);
    start_sealed();
    make_key("alice", kpath, sizeof(kpath), pk);
    store_do("alice", pk, STORE_ROLE_WRITER, 0);
    struct sealer s;
    sealer_new(&s, kpath);
    int fd = raw_connect();
    for (int i = 0; i < 6; i++) {
        struct seal_err se = {0};
        struct seal_ticket t;
        size_t len, flen, rlen;
        uint8_t *req = status_request(&len), *frame, *reply;
        cr_assert_eq(seal_client_seal(s.c, req, len, &frame, &flen, &t, &se), 0, "%s", se.msg);
        raw_send(fd, (uint32_t)(20 + i), frame, flen);
        reply = raw_reply(fd, &rlen, 5000);
        cr_assert_not_null(reply, "no reply to frame %d", i + 1);
        if (i < 5) {
            cr_assert_eq(seal_frame_kind(reply, rlen), SEAL_KIND_REPLY, "frame %d refused", i + 1);
        } else {
            cr_assert_eq(plain_error(reply, rlen, msg, sizeof(msg)),
                         TRACK__V1__CODE__RESOURCE_EXHAUSTED);
            cr_assert(strstr(msg, "replay cache full"), "%s", msg);
        }
        free(reply);
        free(frame);
        free(req);
    }
    close(fd);
    sealer_free(&s);
    passed = 1;
}

/* One raw sealed status round trip in `version`: the reply's version byte
 * (the server answers in the request's), or 0 for a plain refusal (its
 * message into msg). */
static int raw_status_in(struct sealer *s, int fd, uint32_t id, int version, char *msg, size_t cap)
{
    struct seal_err se = {0};
    struct seal_ticket t;
    size_t len, flen, rlen, plen;
    uint8_t *req = status_request(&len), *frame, *reply, *plain = NULL;
    int v = 0;
    cr_assert_eq(seal_client_set_version(s->c, version), 0);
    cr_assert_eq(seal_client_seal(s->c, req, len, &frame, &flen, &t, &se), 0, "%s", se.msg);
    raw_send(fd, id, frame, flen);
    reply = raw_reply(fd, &rlen, 5000);
    cr_assert_not_null(reply, "no reply to a version %d frame", version);
    if (seal_frame_kind(reply, rlen) == SEAL_KIND_REPLY) {
        v = reply[1];
        cr_assert_eq(seal_client_open_reply(s->c, &t, reply, rlen, &plain, &plen, &se), 0, "%s",
                     se.msg);
        free(plain);
    } else {
        plain_error(reply, rlen, msg, cap);
    }
    free(reply);
    free(frame);
    free(req);
    return v;
}

/* Envelope versions 1 (XSalsa20-Poly1305) and 2 (AES-256-GCM) on one
 * listener: each answered in its own; a libtrack client forced to version 1
 * with TRACK_SEAL_V1=1 (tests only) works beside a default one. */
Test(seal_tcp, v1_and_v2_clients_share_one_server)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES], msg[700] = "";
    struct track_err err = {0};
    if (sodium_init() < 0 || !crypto_aead_aes256gcm_is_available())
        cr_skip_test("no AES-NI on this CPU: envelope version 2 cannot run");
    start_sealed();
    make_key("alice", kpath, sizeof(kpath), pk);
    store_do("alice", pk, STORE_ROLE_WRITER, 0);
    struct sealer s;
    sealer_new(&s, kpath);
    int fd = raw_connect();
    cr_assert_eq(raw_status_in(&s, fd, 31, SEAL_VERSION_AES, msg, sizeof(msg)), SEAL_VERSION_AES,
                 "%s", msg);
    cr_assert_eq(raw_status_in(&s, fd, 32, SEAL_VERSION, msg, sizeof(msg)), SEAL_VERSION, "%s",
                 msg);
    cr_assert_eq(raw_status_in(&s, fd, 33, SEAL_VERSION_AES, msg, sizeof(msg)), SEAL_VERSION_AES,
                 "%s", msg);
    close(fd);
    sealer_free(&s);

    /* the seal client is made at the first round trip: the variable is read then */
    setenv("TRACK_SEAL_V1", "1", 1);
    struct track_client *c1 = client_with(kpath, server_pk, 1);
    cr_assert_eq(status_of(c1, &err), 0, "v1 client: %s", err.msg);
    unsetenv("TRACK_SEAL_V1");
    struct track_client *c2 = client_with(kpath, server_pk, 1);
    struct track_client *cs[2] = {c1, c2};
    for (int k = 0; k < 2; k++) {
        track_run_id id;
        cr_assert_eq(track_run_start(cs[k], NULL, &id, &err), 0, "v%d client: %s", 1 + k, err.msg);
        for (int i = 0; i < 3000; i++)
            cr_assert_eq(track_log_metric(cs[k], "loss", 1.0 / (i + 1), i, 0, &err), 0, "%s",
                         err.msg);
        cr_assert_eq(track_flush(cs[k], &err), 0, "v%d client: %s", 1 + k, err.msg);
        cr_assert_eq(err.code, 0, "flush spooled or failed: %s", err.msg);
    }
    cr_assert_eq(status_of(c1, &err), 0, "v1 client: %s", err.msg);
    cr_assert_eq(status_of(c2, &err), 0, "v2 client: %s", err.msg);
    track_client_close(c1);
    track_client_close(c2);
    passed = 1;
}

/* A server that cannot open version 2 (no AES-NI; here the test hook
 * TRACKD_TEST_SEAL_V1_ONLY=1) refuses it with "this server speaks 1", and
 * libtrack seals the request again in version 1: the caller sees success. */
Test(seal_tcp, a_server_without_aes_makes_v2_clients_fall_back_to_v1)
{
    char kpath[400], pk[TRACK_KEY_TEXT_BYTES], msg[700] = "";
    struct track_err err = {0};
    if (sodium_init() < 0 || !crypto_aead_aes256gcm_is_available())
        cr_skip_test("no AES-NI on this CPU: clients seal version 1 anyway");
    setenv("TRACKD_TEST_SEAL_V1_ONLY", "1", 1);
    start_sealed();
    unsetenv("TRACKD_TEST_SEAL_V1_ONLY");
    make_key("alice", kpath, sizeof(kpath), pk);
    store_do("alice", pk, STORE_ROLE_WRITER, 0);
    struct sealer s;
    sealer_new(&s, kpath);
    int fd = raw_connect();
    cr_assert_eq(raw_status_in(&s, fd, 41, SEAL_VERSION_AES, msg, sizeof(msg)), 0);
    cr_assert(strstr(msg, "this server speaks 1"), "%s", msg);
    cr_assert_eq(raw_status_in(&s, fd, 42, SEAL_VERSION, msg, sizeof(msg)), SEAL_VERSION, "%s",
                 msg);
    close(fd);
    sealer_free(&s);
    struct track_client *c = client_with(kpath, server_pk, 1);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(status_of(c, &err), 0, "after the fallback: %s", err.msg);
    track_run_id id;
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "run start: %s", err.msg);
    for (int i = 0; i < 3000; i++)
        cr_assert_eq(track_log_metric(c, "loss", 1.0 / (i + 1), i, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    cr_assert_eq(err.code, 0, "flush spooled or failed: %s", err.msg);
    track_client_close(c);
    passed = 1;
}
