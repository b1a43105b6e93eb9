/*
 * test_artifact_stream.c: streaming uploads (ArtifactBegin with stream set
 * and no digest) and the seal's durability against a real trackd. Raw
 * frames check the protocol: a new size streams and the seal names the
 * blob; a known size answers size_known; two streams of the same bytes end
 * in one blob; resume by the upload's own id (also across a restart); lying
 * clients get specific errors and nothing is committed. Through libtrack
 * and the CLI: a put streams, the same bytes again dedup with no bytes
 * sent, other bytes of the same size are stored apart, a client killed
 * mid-stream leaves an orphan that gc drops once idle, and strace counts
 * the fsyncs of a seal (none in normal mode, the file's in full mode) and
 * of a get (only with --fsync).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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
    C = fx_client_open(&d, 20000);
}

static void teardown(void)
{
    if (C)
        track_client_close(C);
    C = NULL;
    fx_daemon_cleanup(&d, 0);
}

TestSuite(artifact_stream, .init = setup, .fini = teardown, .timeout = 240);

#define MIB (1u << 20)

static void new_run(char hex[33])
{
    struct track_run_opts ro = {0};
    struct track_err err = {0};
    track_run_id id;
    cr_assert_eq(track_run_start(C, &ro, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
}

/* Regular files in blobs/tmp, or in every blobs/XX directory (sub NULL). */
static int count_blobs(const char *sub)
{
    char p[1200];
    int n = 0;
    for (int i = sub ? -1 : 0; i < 256; i++) {
        DIR *dd;
        struct dirent *e;
        if (sub)
            snprintf(p, sizeof(p), "%s/blobs/%s", d.dir, sub);
        else
            snprintf(p, sizeof(p), "%s/blobs/%02x", d.dir, i);
        dd = opendir(p);
        while (dd && (e = readdir(dd)) != NULL)
            if (e->d_name[0] != '.')
                n++;
        if (dd)
            closedir(dd);
        if (sub)
            break;
    }
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

static Track__V1__Response *call(int s, Track__V1__Request *rq)
{
    uint8_t rid[16];
    void *msg = NULL;
    randombytes_buf(rid, sizeof(rid));
    rq->request_id.data = rid;
    rq->request_id.len = 16;
    size_t len = track__v1__request__get_packed_size(rq);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    track__v1__request__pack(rq, buf);
    cr_assert_geq(nn_send(s, buf, len, 0), 0, "send: %s", nn_strerror(nn_errno()));
    free(buf);
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

/* A streaming begin (resume: "" or an upload id); the reply is the caller's. */
static Track__V1__Response *begin_stream(int s, const char *run, const char *path, int64_t size,
                                         const char *resume)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactBegin b = TRACK__V1__ARTIFACT_BEGIN__INIT;
    b.run = (char *)run;
    b.path = (char *)path;
    b.size = size;
    b.stream = 1;
    b.resume_upload_id = (char *)resume;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_BEGIN;
    rq.artifact_begin = &b;
    return call(s, &rq);
}

static Track__V1__Response *chunk(int s, const char *id, int64_t off, const uint8_t *p, size_t n)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactChunk ch = TRACK__V1__ARTIFACT_CHUNK__INIT;
    ch.upload_id = (char *)id;
    ch.offset = off;
    ch.data.data = (uint8_t *)p;
    ch.data.len = n;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_CHUNK;
    rq.artifact_chunk = &ch;
    return call(s, &rq);
}

static Track__V1__Response *commit(int s, const char *id, const char *run, const char *path)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactCommit cm = TRACK__V1__ARTIFACT_COMMIT__INIT;
    cm.upload_id = (char *)id;
    cm.run = (char *)run;
    cm.path = (char *)path;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_COMMIT;
    rq.artifact_commit = &cm;
    return call(s, &rq);
}

/* Begins a streaming upload that must be accepted; its id into id. */
static void stream_new(int s, const char *run, const char *path, int64_t size, char id[40])
{
    Track__V1__Response *rs = begin_stream(s, run, path, size, "");
    cr_assert_eq(code_of(rs), 0, "%s", msg_of(rs));
    cr_assert_eq(rs->artifact_begin->size_known, 0, "a new size is not known");
    cr_assert_eq(rs->artifact_begin->exists, 0);
    cr_assert_eq(strlen(rs->artifact_begin->upload_id), 32);
    snprintf(id, 40, "%s", rs->artifact_begin->upload_id);
    track__v1__response__free_unpacked(rs, NULL);
}

/* Sends data[from, n) in 1 MiB chunks; each must be accepted. */
static void send_all(int s, const char *id, const uint8_t *data, size_t from, size_t n)
{
    for (size_t off = from; off < n; off += MIB) {
        size_t len = n - off < MIB ? n - off : MIB;
        Track__V1__Response *rs = chunk(s, id, (int64_t)off, data + off, len);
        cr_assert_eq(code_of(rs), 0, "chunk at %zu: %s", off, msg_of(rs));
        track__v1__response__free_unpacked(rs, NULL);
    }
}

/* Commits and checks the digest the daemon named the blob by. */
static void commit_ok(int s, const char *id, const char *run, const char *path, const uint8_t *data,
                      size_t n)
{
    uint8_t want[32];
    crypto_generichash(want, 32, data, n, NULL, 0);
    Track__V1__Response *rs = commit(s, id, run, path);
    cr_assert_eq(code_of(rs), 0, "%s", msg_of(rs));
    cr_assert_eq(rs->artifact_commit->digest.len, 32);
    cr_assert_eq(memcmp(rs->artifact_commit->digest.data, want, 32), 0,
                 "the blob is not named by the digest of its bytes");
    cr_assert_eq(rs->artifact_commit->size, (int64_t)n);
    track__v1__response__free_unpacked(rs, NULL);
}

static uint8_t *random_bytes(size_t n, uint64_t seed)
{
    char f[400];
    snprintf(f, sizeof(f), "%s/rnd-%llu", T, (unsigned long long)seed);
    fx_write_random(f, n, seed);
    uint8_t *b = malloc(n);
    FILE *fp = fopen(f, "rb");
    cr_assert(b && fp);
    cr_assert_eq(fread(b, 1, n, fp), n);
    fclose(fp);
    unlink(f);
    return b;
}

static void verify_clean(void)
{
    struct track_artifact_verify_result vr;
    struct track_err err = {0};
    cr_assert_eq(track_artifact_verify(C, NULL, &vr, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(vr.problems, 0);
    cr_assert_gt(vr.checked, 0);
}

Test(artifact_stream, a_new_size_streams_and_the_seal_names_the_blob_by_its_bytes)
{
    char run[33], id[40];
    size_t n = 3 * MIB + 777;
    uint8_t *data = random_bytes(n, 1);
    int s = sock_open();

    new_run(run);
    stream_new(s, run, "s.bin", (int64_t)n, id);
    send_all(s, id, data, 0, n);
    commit_ok(s, id, run, "s.bin", data, n);
    cr_assert_eq(count_blobs(NULL), 1);
    cr_assert_eq(count_blobs("tmp"), 0);
    verify_clean();
    /* now the size is known: a streaming begin says so and begins nothing */
    Track__V1__Response *rs = begin_stream(s, run, "t.bin", (int64_t)n, "");
    cr_assert_eq(code_of(rs), 0, "%s", msg_of(rs));
    cr_assert_eq(rs->artifact_begin->size_known, 1);
    cr_assert_str_empty(rs->artifact_begin->upload_id);
    track__v1__response__free_unpacked(rs, NULL);
    cr_assert_eq(count_blobs("tmp"), 0);
    nn_close(s);
    free(data);
}

Test(artifact_stream, two_streams_of_the_same_bytes_end_in_one_blob)
{
    char run[33], a[40], b[40];
    size_t n = 2 * MIB + 5;
    uint8_t *data = random_bytes(n, 2);
    int s = sock_open();

    new_run(run);
    stream_new(s, run, "a.bin", (int64_t)n, a);
    stream_new(s, run, "b.bin", (int64_t)n, b); /* neither sealed yet: the size is not known */
    send_all(s, a, data, 0, n);
    commit_ok(s, a, run, "a.bin", data, n);
    send_all(s, b, data, 0, n);
    commit_ok(s, b, run, "b.bin", data, n);
    cr_assert_eq(count_blobs(NULL), 1, "the second stream's bytes were kept twice");
    cr_assert_eq(count_blobs("tmp"), 0);
    verify_clean();
    nn_close(s);
    free(data);
}

Test(artifact_stream, put_streams_then_the_same_bytes_dedup_and_other_bytes_are_kept_apart)
{
    char run[33], f[400], g[400], out[400];
    struct track_artifact_put_stats st;
    struct track_err err = {0};
    size_t n = 5 * MIB + 3;

    new_run(run);
    snprintf(f, sizeof(f), "%s/one.bin", T);
    snprintf(g, sizeof(g), "%s/two.bin", T);
    fx_write_random(f, n, 3);
    fx_write_random(g, n, 4); /* the same size, other bytes */
    cr_assert_eq(track_artifact_put_ex(C, f, "one.bin", &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st.sent, (int64_t)n);
    cr_assert_eq(st.deduped, 0);
    cr_assert_eq(track_artifact_put_ex(C, f, "again.bin", &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st.deduped, 1, "the same bytes again were not found by their digest");
    cr_assert_eq(st.sent, 0);
    cr_assert_eq(count_blobs(NULL), 1, "no second blob file for the same bytes");
    cr_assert_eq(track_artifact_put_ex(C, g, "two.bin", &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st.sent, (int64_t)n);
    cr_assert_eq(count_blobs(NULL), 2);
    snprintf(out, sizeof(out), "%s/two.back", T);
    cr_assert_eq(track_artifact_get(C, run, "two.bin", out, &err), 0, "%s", err.msg);
    cr_assert(fx_same_file(g, out));
    snprintf(out, sizeof(out), "%s/one.back", T);
    cr_assert_eq(track_artifact_get(C, run, "again.bin", out, &err), 0, "%s", err.msg);
    cr_assert(fx_same_file(f, out));
    cr_assert_eq(count_blobs("tmp"), 0);
    verify_clean();
}

Test(artifact_stream, resume_by_its_own_id_also_after_a_restart)
{
    char run[33], id[40];
    size_t n = 4 * MIB + 11;
    uint8_t *data = random_bytes(n, 5);
    int s = sock_open();

    new_run(run);
    stream_new(s, run, "r.bin", (int64_t)n, id);
    send_all(s, id, data, 0, MIB);
    Track__V1__Response *rs = begin_stream(s, run, "r.bin", (int64_t)n, id);
    cr_assert_eq(code_of(rs), 0, "%s", msg_of(rs));
    cr_assert_str_eq(rs->artifact_begin->upload_id, id);
    cr_assert_eq(rs->artifact_begin->have, (int64_t)MIB);
    track__v1__response__free_unpacked(rs, NULL);
    send_all(s, id, data, MIB, 2 * MIB);
    /* a wrong size is refused */
    rs = begin_stream(s, run, "r.bin", (int64_t)n + 1, id);
    cr_assert_eq(code_of(rs), TRACK__V1__CODE__INVALID_ARGUMENT);
    cr_assert(strstr(msg_of(rs), "size"), "%s", msg_of(rs));
    track__v1__response__free_unpacked(rs, NULL);
    nn_close(s);
    fx_daemon_kill(&d);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    s = sock_open();
    rs = begin_stream(s, run, "r.bin", (int64_t)n, id);
    cr_assert_eq(code_of(rs), 0, "%s", msg_of(rs));
    cr_assert_str_eq(rs->artifact_begin->upload_id, id, "the restart lost the upload");
    cr_assert_eq(rs->artifact_begin->have, (int64_t)(2 * MIB));
    track__v1__response__free_unpacked(rs, NULL);
    send_all(s, id, data, 2 * MIB, n);
    commit_ok(s, id, run, "r.bin", data, n);
    cr_assert_eq(count_blobs("tmp"), 0);
    track_client_close(C);
    C = fx_client_open(&d, 20000);
    verify_clean();
    nn_close(s);
    free(data);
}

static int list_count_cb(void *ctx, const struct track_artifact_info *a)
{
    (void)a;
    (*(int *)ctx)++;
    return 0;
}

Test(artifact_stream, a_lying_client_gets_specific_errors_and_nothing_is_committed)
{
    char run[33], id[40], other[40];
    struct track_err err = {0};
    size_t n = MIB + 100;
    uint8_t *data = random_bytes(n + MIB, 6), digest[32] = {1};
    int s = sock_open(), rows = 0;

    new_run(run);
    /* more bytes than announced */
    stream_new(s, run, "lie.bin", (int64_t)n, id);
    send_all(s, id, data, 0, MIB);
    Track__V1__Response *rs = chunk(s, id, MIB, data + MIB, 200);
    cr_assert_eq(code_of(rs), TRACK__V1__CODE__INVALID_ARGUMENT);
    cr_assert(strstr(msg_of(rs), "past the announced size"), "%s", msg_of(rs));
    track__v1__response__free_unpacked(rs, NULL);
    /* fewer bytes than announced, then a commit */
    rs = commit(s, id, run, "lie.bin");
    cr_assert_eq(code_of(rs), TRACK__V1__CODE__INVALID_ARGUMENT);
    cr_assert(strstr(msg_of(rs), "send the rest"), "%s", msg_of(rs));
    track__v1__response__free_unpacked(rs, NULL);
    /* a digest with a streaming begin; a resume id without one */
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactBegin b = TRACK__V1__ARTIFACT_BEGIN__INIT;
    b.run = run;
    b.path = (char *)"lie.bin";
    b.size = (int64_t)n;
    b.stream = 1;
    b.digest.data = digest;
    b.digest.len = 32;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_BEGIN;
    rq.artifact_begin = &b;
    rs = call(s, &rq);
    cr_assert_eq(code_of(rs), TRACK__V1__CODE__INVALID_ARGUMENT);
    cr_assert(strstr(msg_of(rs), "digest: a streaming begin"), "%s", msg_of(rs));
    track__v1__response__free_unpacked(rs, NULL);
    b.stream = 0;
    b.resume_upload_id = id;
    rs = call(s, &rq);
    cr_assert_eq(code_of(rs), TRACK__V1__CODE__INVALID_ARGUMENT);
    cr_assert(strstr(msg_of(rs), "resume_upload_id"), "%s", msg_of(rs));
    track__v1__response__free_unpacked(rs, NULL);
    /* the all-zero digest names streaming uploads: refused with a digest begin */
    memset(digest, 0, sizeof(digest));
    b.resume_upload_id = (char *)"";
    rs = call(s, &rq);
    cr_assert_eq(code_of(rs), TRACK__V1__CODE__INVALID_ARGUMENT);
    cr_assert(strstr(msg_of(rs), "all zero"), "%s", msg_of(rs));
    track__v1__response__free_unpacked(rs, NULL);
    /* resuming, as a stream, an upload begun with a digest */
    digest[0] = 7;
    rs = call(s, &rq);
    cr_assert_eq(code_of(rs), 0, "%s", msg_of(rs));
    snprintf(other, sizeof(other), "%s", rs->artifact_begin->upload_id);
    track__v1__response__free_unpacked(rs, NULL);
    rs = begin_stream(s, run, "lie.bin", (int64_t)n, other);
    cr_assert_eq(code_of(rs), TRACK__V1__CODE__INVALID_ARGUMENT);
    cr_assert(strstr(msg_of(rs), "not streaming"), "%s", msg_of(rs));
    track__v1__response__free_unpacked(rs, NULL);
    cr_assert_eq(track_artifact_list(C, run, "", list_count_cb, &rows, &err), 0, "%s", err.msg);
    cr_assert_eq(rows, 0, "a lie was committed");
    cr_assert_eq(count_blobs(NULL), 0);
    nn_close(s);
    free(data);
}

/* Starts `track artifact put FILE` with one chunk in flight, waits until
 * its streaming upload has `bytes` on disk, and kills it with SIGKILL. */
static void put_and_kill(const char *run, const char *file, off_t bytes)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        setenv("TRACK_TRANSFER_DEPTH", "1", 1);
        setenv("TRACK_NO_AUTOSTART", "1", 1);
        execl(TRACK_BIN, TRACK_BIN, "--server", d.uri, "--run", run, "artifact", "put", file,
              "--as", "k.bin", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 2000; i++) {
        char p[1200];
        DIR *dd;
        struct dirent *e;
        off_t have = 0;
        snprintf(p, sizeof(p), "%s/blobs/tmp", d.dir);
        dd = opendir(p);
        while (dd && (e = readdir(dd)) != NULL) {
            struct stat sb;
            char q[1500];
            snprintf(q, sizeof(q), "%s/%s", p, e->d_name);
            if (e->d_name[0] != '.' && stat(q, &sb) == 0)
                have = sb.st_size;
        }
        if (dd)
            closedir(dd);
        if (have >= bytes)
            break;
        fx_sleep_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

Test(artifact_stream, a_client_killed_mid_stream_then_put_again_and_gc_drops_the_orphan)
{
    char run[33], f[400], out[400], tmp[1200], name[300] = "";
    struct track_err err = {0};
    size_t n = 48 * MIB;

    new_run(run);
    snprintf(f, sizeof(f), "%s/k.bin", T);
    fx_write_random(f, n, 7);
    put_and_kill(run, f, 2 * MIB);
    struct track_artifact_put_stats st;
    cr_assert_eq(track_artifact_put_ex(C, f, "k.bin", &st, &err), 0, "%s", err.msg);
    snprintf(out, sizeof(out), "%s/k.back", T);
    cr_assert_eq(track_artifact_get(C, run, "k.bin", out, &err), 0, "%s", err.msg);
    cr_assert(fx_same_file(f, out));
    verify_clean();
    /* the killed client's upload, if it got that far, waits for nobody now */
    snprintf(tmp, sizeof(tmp), "%s/blobs/tmp", d.dir);
    DIR *dd = opendir(tmp);
    struct dirent *e;
    while (dd && (e = readdir(dd)) != NULL)
        if (e->d_name[0] != '.')
            snprintf(name, sizeof(name), "%s", e->d_name);
    if (dd)
        closedir(dd);
    cr_assert_neq(name[0], '\0', "the killed upload left no tmp file (killed too late?)");
    cr_assert(strstr(name, "-0000000000000000000000000000000000000000000000000000000000000000"),
              "not a streaming upload: %s", name);
    struct track_gc_report rep;
    memset(&rep, 0, sizeof(rep));
    cr_assert_eq(track_gc(C, 0, 0, &rep, &err), 0, "%s", err.msg);
    cr_assert_eq(count_blobs("tmp"), 1, "gc dropped a streaming upload idle for a moment only");
    /* idle for two hours: gc drops it */
    char path[1600];
    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    struct timespec ts[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
    track_gc_report_free(&rep);
    memset(&rep, 0, sizeof(rep));
    cr_assert_eq(track_gc(C, 0, 0, &rep, &err), 0, "%s", err.msg);
    track_gc_report_free(&rep);
    cr_assert_eq(count_blobs("tmp"), 0, "the orphan outlived gc");
    cr_assert_eq(track_artifact_get(C, run, "k.bin", out, &err), 0, "%s", err.msg);
    cr_assert(fx_same_file(f, out));
}

/* ---- durability: strace on trackd during one streamed put ------------------------- */

/* fsync/fdatasync calls of pid (and its threads) while `track artifact put`
 * stores a new 5 MiB file: of the tmp file (*data) and of blobs/XX (*dirs). */
static void seal_fsyncs(const char *run, int *data, int *dirs)
{
    char trace[400], f[400], pid[32];
    snprintf(trace, sizeof(trace), "%s/strace.out", d.dir);
    snprintf(f, sizeof(f), "%s/d.bin", T);
    snprintf(pid, sizeof(pid), "%d", (int)d.pid);
    fx_write_random(f, 5 * MIB + 1, (uint64_t)time(NULL));
    pid_t st = fork();
    cr_assert_geq(st, 0);
    if (st == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execlp("strace", "strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o", trace,
               "-p", pid, (char *)NULL);
        _exit(127);
    }
    fx_sleep_ms(700); /* attached */
    char *out = NULL, *er = NULL;
    int rc = fx_track(&d, NULL, NULL, &out, &er, "--run", run, "artifact", "put", f, "--as",
                      "d.bin", NULL);
    cr_assert_eq(rc, 0, "%s", er);
    free(out);
    free(er);
    fx_sleep_ms(300);
    kill(st, SIGINT);
    waitpid(st, NULL, 0);
    char *t = fx_read_text(trace);
    cr_assert_not_null(t, "strace wrote nothing");
    *data = (int)fx_count_of(t, "blobs/tmp/");
    *dirs = 0;
    for (char *p = t; (p = strstr(p, "/blobs/")) != NULL; p++)
        if (p[7] != 't' && p[7] != '>' && p[9] == '>')
            (*dirs)++;
    free(t);
}

Test(artifact_stream, normal_durability_seals_without_fsync_of_the_data)
{
    char run[33];
    int data = -1, dirs = -1;
    if (system("command -v strace >/dev/null 2>&1") != 0)
        cr_skip_test("no strace");
    new_run(run);
    seal_fsyncs(run, &data, &dirs);
    cr_assert_eq(data, 0, "normal mode fsynced the tmp file %d times", data);
    cr_assert_eq(dirs, 0, "normal mode fsynced a blobs/XX directory %d times", dirs);
}

Test(artifact_stream, full_durability_fsyncs_the_file_and_its_directory)
{
    const char *const full[] = {"--durability", "full", NULL};
    char run[33];
    int data = -1, dirs = -1;
    if (system("command -v strace >/dev/null 2>&1") != 0)
        cr_skip_test("no strace");
    track_client_close(C);
    C = NULL;
    cr_assert_eq(fx_daemon_stop(&d), 0);
    cr_assert_eq(fx_daemon_restart(&d, full), 0);
    C = fx_client_open(&d, 20000);
    new_run(run);
    seal_fsyncs(run, &data, &dirs);
    cr_assert_geq(data, 1, "full mode did not fsync the tmp file");
    cr_assert_geq(dirs, 1, "full mode did not fsync the blob's directory");
}

Test(artifact_stream, get_fsyncs_only_with_the_flag)
{
    char run[33], f[400], o1[400], o2[400], trace[400];
    struct track_err err = {0};
    if (system("command -v strace >/dev/null 2>&1") != 0)
        cr_skip_test("no strace");
    new_run(run);
    snprintf(f, sizeof(f), "%s/g.bin", T);
    fx_write_random(f, MIB, 9);
    cr_assert_eq(track_artifact_put(C, f, "g.bin", &err), 0, "%s", err.msg);
    snprintf(o1, sizeof(o1), "%s/g1", T);
    snprintf(o2, sizeof(o2), "%s/g2", T);
    snprintf(trace, sizeof(trace), "%s/get.trace", d.dir);
    for (int k = 0; k < 2; k++) {
        const char *argv[] = {"/usr/bin/strace",
                              "-f",
                              "-qq",
                              "-e",
                              "trace=fsync",
                              "-o",
                              trace,
                              TRACK_BIN,
                              "--server",
                              d.uri,
                              "--run",
                              run,
                              "artifact",
                              "get",
                              "g.bin",
                              "-o",
                              k ? o2 : o1,
                              k ? "--fsync" : NULL,
                              NULL};
        const char *env[] = {"TRACK_NO_AUTOSTART=1", "ASAN_OPTIONS=detect_leaks=0", NULL};
        char *out = NULL, *er = NULL;
        cr_assert_eq(fx_run(argv, env, NULL, &out, &er), 0, "%s", er);
        free(out);
        free(er);
        char *t = fx_read_text(trace);
        size_t calls = t ? fx_count_of(t, "fsync(") : 0;
        free(t);
        if (k)
            cr_assert_geq(calls, 1, "--fsync did not fsync");
        else
            cr_assert_eq(calls, 0, "a get without --fsync fsynced %zu times", calls);
    }
    cr_assert(fx_same_file(f, o1));
    cr_assert(fx_same_file(f, o2));
}
