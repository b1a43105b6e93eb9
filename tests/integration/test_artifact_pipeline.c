/*
 * test_artifact_pipeline.c: several artifact requests in flight against a
 * real trackd. Raw frames on several connections at once: chunks sent in
 * reverse order before any reply is read are written, hashed in order and
 * sealed by the one that completes the bytes; a client that dies with
 * chunks in flight leaves nothing visible and `put` again completes.
 * Through libtrack: uploads and downloads with 1 and 8 requests in flight
 * (TRACK_TRANSFER_DEPTH) move the same bytes.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"
#include "track.pb-c.h"

static struct fx_daemon d;
static struct track_client *C;
static char T[300];

static void setup(void)
{
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
    snprintf(T, sizeof(T), "%s/local", d.dir);
    cr_assert_eq(mkdir(T, 0700), 0);
    C = fx_client_open(&d, 10000);
}

static void teardown(void)
{
    if (C)
        track_client_close(C);
    C = NULL;
    unsetenv("TRACK_TRANSFER_DEPTH");
    fx_daemon_cleanup(&d, 0);
}

TestSuite(artifact_pipeline, .init = setup, .fini = teardown, .timeout = 120);

static void new_run(char hex[33])
{
    struct track_run_opts ro = {0};
    struct track_err err = {0};
    track_run_id id;
    cr_assert_eq(track_run_start(C, &ro, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
}

static int count_in(const char *sub)
{
    char p[1200];
    DIR *dd;
    struct dirent *e;
    int n = 0;
    snprintf(p, sizeof(p), "%s/%s", d.dir, sub);
    dd = opendir(p);
    while (dd && (e = readdir(dd)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    if (dd)
        closedir(dd);
    return n;
}

static int sock_open(void)
{
    int s = nn_socket(AF_SP, NN_REQ), tmo = 20000;
    cr_assert_geq(s, 0);
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof(int));
    nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &tmo, sizeof(int));
    cr_assert_geq(nn_connect(s, d.uri), 0);
    return s;
}

static void send_rq(int s, Track__V1__Request *rq)
{
    uint8_t rid[16];
    randombytes_buf(rid, sizeof(rid));
    rq->request_id.data = rid;
    rq->request_id.len = 16;
    size_t len = track__v1__request__get_packed_size(rq);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    track__v1__request__pack(rq, buf);
    cr_assert_geq(nn_send(s, buf, len, 0), 0, "send: %s", nn_strerror(nn_errno()));
    free(buf);
}

static Track__V1__Response *recv_rs(int s)
{
    void *msg = NULL;
    int n = nn_recv(s, &msg, NN_MSG, 0);
    cr_assert_gt(n, 0, "no reply: %s", nn_strerror(nn_errno()));
    Track__V1__Response *rs = track__v1__response__unpack(NULL, (size_t)n, msg);
    nn_freemsg(msg);
    cr_assert_not_null(rs);
    return rs;
}

static const char *msg_of(const Track__V1__Response *rs)
{
    return rs->error && rs->error->message ? rs->error->message : "";
}

static int code_of(const Track__V1__Response *rs)
{
    return rs->error ? (int)rs->error->code : 0;
}

static void begin_new(int s, const char *run, const char *path, int64_t size,
                      const uint8_t digest[32], char id[40])
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactBegin b = TRACK__V1__ARTIFACT_BEGIN__INIT;
    b.run = (char *)run;
    b.path = (char *)path;
    b.size = size;
    b.digest.data = (uint8_t *)digest;
    b.digest.len = 32;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_BEGIN;
    rq.artifact_begin = &b;
    send_rq(s, &rq);
    Track__V1__Response *rs = recv_rs(s);
    cr_assert_eq(code_of(rs), 0, "%s", msg_of(rs));
    cr_assert_eq(rs->artifact_begin->exists, 0);
    snprintf(id, 40, "%s", rs->artifact_begin->upload_id);
    track__v1__response__free_unpacked(rs, NULL);
}

static void send_chunk(int s, const char *id, int64_t off, const uint8_t *p, size_t n)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactChunk ch = TRACK__V1__ARTIFACT_CHUNK__INIT;
    ch.upload_id = (char *)id;
    ch.offset = off;
    ch.data.data = (uint8_t *)p;
    ch.data.len = n;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_CHUNK;
    rq.artifact_chunk = &ch;
    send_rq(s, &rq);
}

static uint8_t *read_file(const char *path, size_t n)
{
    uint8_t *b = malloc(n);
    FILE *f = fopen(path, "rb");
    cr_assert(b && f);
    cr_assert_eq(fread(b, 1, n, f), n);
    fclose(f);
    return b;
}

#define PIECES 6
#define PIECE  (1u << 20)

Test(artifact_pipeline, chunks_in_flight_in_reverse_order_seal_once_and_commit)
{
    char run[33], f[400], out[400], id[40];
    uint8_t digest[32];
    size_t n = PIECES * PIECE - 1000;
    struct track_err err = {0};
    int s[PIECES];

    snprintf(f, sizeof(f), "%s/rev.bin", T);
    fx_write_random(f, n, 11);
    uint8_t *data = read_file(f, n);
    crypto_generichash(digest, 32, data, n, NULL, 0);
    new_run(run);
    for (int i = 0; i < PIECES; i++)
        s[i] = sock_open();
    begin_new(s[0], run, "rev.bin", (int64_t)n, digest, id);
    /* every chunk out before any reply is read, the last first */
    for (int i = PIECES - 1; i >= 0; i--) {
        size_t off = (size_t)i * PIECE, len = n - off < PIECE ? n - off : PIECE;
        send_chunk(s[i], id, (int64_t)off, data + off, len);
    }
    int sealed = 0;
    for (int i = 0; i < PIECES; i++) {
        Track__V1__Response *rs = recv_rs(s[i]);
        cr_assert_eq(code_of(rs), 0, "chunk %d: %s", i, msg_of(rs));
        cr_assert(rs->artifact_chunk->have >= 0 && rs->artifact_chunk->have <= (int64_t)n);
        sealed += rs->artifact_chunk->have == (int64_t)n;
        track__v1__response__free_unpacked(rs, NULL);
    }
    cr_assert_geq(sealed, 1, "no reply said the upload was complete");
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactCommit cm = TRACK__V1__ARTIFACT_COMMIT__INIT;
    cm.upload_id = id;
    cm.run = run;
    cm.path = (char *)"rev.bin";
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_COMMIT;
    rq.artifact_commit = &cm;
    send_rq(s[0], &rq);
    Track__V1__Response *rs = recv_rs(s[0]);
    cr_assert_eq(code_of(rs), 0, "%s", msg_of(rs));
    track__v1__response__free_unpacked(rs, NULL);
    for (int i = 0; i < PIECES; i++)
        nn_close(s[i]);
    snprintf(out, sizeof(out), "%s/rev.back", T);
    cr_assert_eq(track_artifact_get(C, run, "rev.bin", out, &err), 0, "%s", err.msg);
    cr_assert(fx_same_file(f, out));
    cr_assert_eq(count_in("blobs/tmp"), 0);
    free(data);
}

Test(artifact_pipeline, client_dying_with_chunks_in_flight_leaves_nothing_then_put_completes)
{
    char run[33], f[400], out[400], id[40];
    uint8_t digest[32];
    size_t n = PIECES * PIECE;
    struct track_err err = {0};
    struct track_artifact_put_stats st;
    int s[PIECES];

    snprintf(f, sizeof(f), "%s/die.bin", T);
    fx_write_random(f, n, 12);
    uint8_t *data = read_file(f, n);
    crypto_generichash(digest, 32, data, n, NULL, 0);
    new_run(run);
    for (int i = 0; i < PIECES; i++)
        s[i] = sock_open();
    begin_new(s[0], run, "die.bin", (int64_t)n, digest, id);
    /* chunks 1..5 go out, chunk 0 never does; the client is gone before any reply */
    for (int i = 1; i < PIECES; i++)
        send_chunk(s[i], id, (int64_t)i * PIECE, data + (size_t)i * PIECE, PIECE);
    for (int i = 0; i < PIECES; i++)
        nn_close(s[i]);
    free(data);
    usleep(200 * 1000);
    cr_assert_neq(track_artifact_get(C, run, "die.bin", T, &err), 0,
                  "an upload cut short is visible");
    cr_assert_eq(count_in("blobs/tmp"), 1, "the upload stays resumable");
    cr_assert_eq(track_artifact_put_ex(C, f, "die.bin", &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st.files, 1);
    snprintf(out, sizeof(out), "%s/die.back", T);
    cr_assert_eq(track_artifact_get(C, run, "die.bin", out, &err), 0, "%s", err.msg);
    cr_assert(fx_same_file(f, out));
    cr_assert_eq(count_in("blobs/tmp"), 0);
}

Test(artifact_pipeline, one_or_eight_requests_in_flight_move_the_same_bytes)
{
    const char *depths[] = {"1", "8"};
    char run[33], f[400], out[400], as[40];
    struct track_err err = {0};
    struct track_artifact_put_stats st;
    size_t n = (9u << 20) + 4321;

    snprintf(f, sizeof(f), "%s/depth.bin", T);
    new_run(run);
    for (int k = 0; k < 2; k++) {
        setenv("TRACK_TRANSFER_DEPTH", depths[k], 1);
        fx_write_random(f, n, 20 + 20 * (uint64_t)k); /* new bytes each time: no dedup */
        snprintf(as, sizeof(as), "depth%s.bin", depths[k]);
        cr_assert_eq(track_artifact_put_ex(C, f, as, &st, &err), 0, "depth %s: %s", depths[k],
                     err.msg);
        cr_assert_eq(st.sent, (int64_t)n, "depth %s sent %lld", depths[k], (long long)st.sent);
        snprintf(out, sizeof(out), "%s/depth%s.back", T, depths[k]);
        cr_assert_eq(track_artifact_get(C, run, as, out, &err), 0, "depth %s: %s", depths[k],
                     err.msg);
        cr_assert(fx_same_file(f, out), "depth %s: the bytes differ", depths[k]);
    }
    cr_assert_eq(count_in("blobs/tmp"), 0);
}
