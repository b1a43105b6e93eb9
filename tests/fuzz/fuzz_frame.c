/*
 * fuzz_frame.c: libFuzzer target for what trackd does with a frame from
 * the wire: decode it as a track.v1.Request, dispatch it through the real
 * operation table against a real SQLite store and a real blob store (both
 * in one temporary directory made at init, under /dev/shm when it exists,
 * with one experiment and one run so that valid requests reach storage),
 * and pack the response.
 *
 * An input is one of two things:
 *
 *   - a single frame: the packed Request itself (every input that does not
 *     start with the sequence magic below);
 *   - a sequence: the 4 bytes "TSEQ", then up to SEQ_MAX frames, each a
 *     2-byte big-endian length followed by that many bytes of a packed
 *     Request (a truncated last frame is ignored). The frames run in order,
 *     as one client's requests would, so an upload can go begin -> chunk ->
 *     commit and then be listed, read, registered as a model and traced.
 *     Upload ids are random, so an input cannot know them: in a sequence an
 *     ArtifactChunk or ArtifactCommit whose upload_id is empty gets the id
 *     the last ArtifactBegin of that sequence answered.
 *
 * Writes run inside one transaction per input (a savepoint per write frame,
 * released on success, rolled back on an error, as the loop's group commit
 * does) that is rolled back at the end of the input, so the database stays
 * at its initial state however long the fuzzer runs. Reads run on the same
 * handle, so in a sequence they see what the earlier frames wrote. The
 * transaction is opened at the first write frame only: until then an
 * operation with a transaction of its own (Gc) runs as on the daemon's
 * worker; after it, Gc's own BEGIN fails at once (an error answer, no
 * wait). Backup frames are skipped inside a sequence (single frames fuzz
 * them), since a snapshot would wait on the open write transaction.
 *
 * After each input that used the blob store the harness commits (and rolls
 * back) each upload the input began, so none stays sealed and pinned in
 * op_artifact.c's table (see drain_seals); does what the loop does after a
 * group commit (srv_artifact_after_commit: the pins of the rolled-back
 * rows are released); then empties the blob store: every tmp file goes
 * (blob_tmp_cleanup, which forgets their uploads and pins) and every blob
 * (blob_remove). By then no pin may be left (an upload's pin is released
 * by its commit, abort or cleanup, a row's after the commit): a blob kept
 * as pinned is a leaked pin, and the harness aborts. So every input starts
 * from the same empty blob store and the disk holds at most one input's
 * bytes (inputs are at most 64 KiB in CTest: -max_len).
 *
 * FUZZ_FRAME_TRACE=1 in the environment prints each frame's op and answer
 * to stderr (to check what a seed reaches: fuzz_frame -runs=0 SEEDS).
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "srv.h"

#define SEQ_MAGIC     "TSEQ"
#define SEQ_MAGIC_LEN 4
#define SEQ_MAX       16 /* frames run from one input */

static struct srv srv;
/* on tmpfs when there is one: each upload commit fsyncs a file and two
 * directories, which on a disk costs more than the rest of an input */
static char dir[64];
static int trace;

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) ? -1 : 0;
}

static void cleanup(void)
{
    srv_artifact_after_commit(&srv);
    blob_store_close(srv.blobs);
    srv.blobs = NULL;
    store_close(srv.wst);
    srv.wst = NULL;
    /* the blobs/ tree is blob.h's; nothing in it is a symlink we follow */
    if (nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS))
        fprintf(stderr, "fuzz_frame: could not remove all of %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct store_opts so = {0};
    struct store_err err = {0};
    struct store_run_start rs = {0};
    (void)argc;
    (void)argv;

    snprintf(dir, sizeof(dir), "%s/track-fuzz-XXXXXX",
             access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(srv.cfg.data_dir, sizeof(srv.cfg.data_dir), "%s", dir);
    snprintf(srv.cfg.db_path, sizeof(srv.cfg.db_path), "%s/track.db", dir);
    if (store_open(srv.cfg.db_path, &so, &srv.wst, &err))
        abort();
    if (blob_store_open(dir, &srv.blobs, &err))
        abort();
    pthread_mutex_init(&srv.stats_lock, NULL);
    srv.started_ms = wire_now_ms();
    /* run id 00..0f, so seeds can name it by prefix "0001" */
    for (int i = 0; i < 16; i++)
        rs.id[i] = (uint8_t)i;
    if (store_begin(srv.wst, &err) ||
        store_experiment_ensure(srv.wst, "fuzz", 1, &rs.experiment_id, &err))
        abort();
    rs.name = "fuzz-run";
    rs.start_ms = 1;
    rs.user = "fuzz";
    if (store_run_start(srv.wst, &rs, &err) || store_commit(srv.wst, &err))
        abort();
    atexit(cleanup);
    srv_log_level = SRV_LOG_ERROR;
    trace = getenv("FUZZ_FRAME_TRACE") != NULL;
    return 0;
}

static int blob_drop_cb(void *ctx, const struct blob_info *b)
{
    char hex[BLOB_DIGEST_HEX + 1];
    (void)ctx;
    if (blob_remove(srv.blobs, b->digest, NULL) == 1) {
        blob_digest_hex(b->digest, hex);
        fprintf(stderr, "fuzz_frame: blob %s still pinned after the input\n", hex);
        abort();
    }
    return 0;
}

/* Back to an empty blob store (see the header comment). */
static void blobs_reset(void)
{
    srv_artifact_after_commit(&srv);
    if (blob_tmp_cleanup(srv.blobs, 0, NULL, NULL) ||
        blob_each(srv.blobs, blob_drop_cb, NULL, NULL))
        abort();
}

static int is_backup(const Track__V1__Request *rq)
{
    return rq->op_case == TRACK__V1__REQUEST__OP_BACKUP ||
           rq->op_case == TRACK__V1__REQUEST__OP_BACKUP_BEGIN ||
           rq->op_case == TRACK__V1__REQUEST__OP_BACKUP_CHUNK ||
           rq->op_case == TRACK__V1__REQUEST__OP_BACKUP_END;
}

struct seq {
    int in_seq;                                  /* a frame of a sequence (else a single frame) */
    int in_txn;                                  /* the input's write transaction is open */
    int blobs;                                   /* a frame may have touched the blob store */
    char upload_id[BLOB_UPLOAD_ID_HEX + 1];      /* from the last ArtifactBegin */
    char begun[SEQ_MAX][BLOB_UPLOAD_ID_HEX + 1]; /* every upload this input began */
    int n_begun;
};

/* 1 for the ops that use the blob store (op_artifact.c's, and Gc's sweep). */
static int uses_blobs(const Track__V1__Request *rq)
{
    switch (rq->op_case) {
    case TRACK__V1__REQUEST__OP_ARTIFACT_BEGIN:
    case TRACK__V1__REQUEST__OP_ARTIFACT_CHUNK:
    case TRACK__V1__REQUEST__OP_ARTIFACT_COMMIT:
    case TRACK__V1__REQUEST__OP_ARTIFACT_READ:
    case TRACK__V1__REQUEST__OP_ARTIFACT_VERIFY:
    case TRACK__V1__REQUEST__OP_GC:
        return 1;
    default:
        return 0;
    }
}

/* Gives an empty upload_id the sequence's last one; answers the slot to put
 * the original back into before the request is freed (NULL: none). */
static char **fill_upload_id(struct seq *s, Track__V1__Request *rq, char **old)
{
    char **slot = NULL;
    if (!s->in_seq || !s->upload_id[0])
        return NULL;
    if (rq->op_case == TRACK__V1__REQUEST__OP_ARTIFACT_CHUNK && rq->artifact_chunk)
        slot = &rq->artifact_chunk->upload_id;
    else if (rq->op_case == TRACK__V1__REQUEST__OP_ARTIFACT_COMMIT && rq->artifact_commit)
        slot = &rq->artifact_commit->upload_id;
    if (!slot || (*slot && (*slot)[0]))
        return NULL;
    *old = *slot;
    *slot = s->upload_id;
    return slot;
}

/* Decodes and dispatches one frame. */
static void run_frame(struct seq *s, const uint8_t *data, size_t size)
{
    struct store_err err = {0};
    Track__V1__Request *rq = track__v1__request__unpack(NULL, size, data);
    if (!rq)
        return;
    if (s->in_seq && is_backup(rq)) {
        track__v1__request__free_unpacked(rq, NULL);
        return;
    }
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    struct srv_call call = {.srv = &srv, .st = srv.wst, .rq = rq, .rs = &rs};
    int write = srv_op_kind(rq) == SRV_WRITE;
    char *old = NULL, **slot = fill_upload_id(s, rq, &old);

    if (write && !s->in_txn) {
        if (store_begin(srv.wst, &err))
            abort();
        s->in_txn = 1;
    }
    if (write && store_save(srv.wst, &err))
        abort();
    s->blobs |= uses_blobs(rq);
    srv_dispatch(&call);
    if (write) {
        if (rs.error)
            store_rollback_to(srv.wst); /* releases the savepoint too */
        else
            store_release(srv.wst);
    }
    if (trace)
        fprintf(stderr, "fuzz_frame: %s%s -> %s %s\n", s->in_seq ? "  " : "", srv_op_name(rq),
                rs.error ? wire_code_name(rs.error->code) : "ok",
                rs.error && rs.error->message ? rs.error->message : "");
    if (rs.result_case == TRACK__V1__RESPONSE__RESULT_ARTIFACT_BEGIN && rs.artifact_begin &&
        rs.artifact_begin->upload_id && rs.artifact_begin->upload_id[0]) {
        snprintf(s->upload_id, sizeof(s->upload_id), "%s", rs.artifact_begin->upload_id);
        if (s->n_begun < SEQ_MAX)
            memcpy(s->begun[s->n_begun++], s->upload_id, sizeof(s->upload_id));
    }
    size_t len = 0;
    uint8_t *buf = srv_pack_response(&rs, &len);
    if (buf) {
        /* what we send must decode on the other side */
        Track__V1__Response *back = track__v1__response__unpack(NULL, len, buf);
        if (!back)
            abort();
        track__v1__response__free_unpacked(back, NULL);
        free(buf);
    }
    srv_arena_free(&call.arena);
    if (slot)
        *slot = old;
    track__v1__request__free_unpacked(rq, NULL);
}

/* Commits (in a transaction rolled back at once) each upload this input
 * began, so that one sealed by its last chunk but never committed leaves
 * op_artifact.c's table of sealed uploads, and its pin goes with the
 * others: else its blob would stay for SEAL_KEEP_MS and a later input
 * announcing the same bytes would get exists instead of an upload. */
static void drain_seals(struct seq *s)
{
    static uint8_t id[16] = {0xd, 0xe, 0xa, 0xd};
    struct store_err err = {0};

    if (!s->n_begun)
        return;
    if (store_begin(srv.wst, &err))
        abort();
    for (int i = 0; i < s->n_begun; i++) {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ArtifactCommit c = TRACK__V1__ARTIFACT_COMMIT__INIT;
        Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
        c.upload_id = s->begun[i];
        c.run = (char *)"0001";
        c.path = (char *)"fuzz/drain";
        rq.request_id.data = id;
        rq.request_id.len = sizeof(id);
        rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_COMMIT;
        rq.artifact_commit = &c;
        struct srv_call call = {.srv = &srv, .st = srv.wst, .rq = &rq, .rs = &rs};
        srv_dispatch(&call); /* NOT_FOUND for one committed or dropped already */
        srv_arena_free(&call.arena);
    }
    store_rollback(srv.wst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seq s = {0};

    if (size >= SEQ_MAGIC_LEN && memcmp(data, SEQ_MAGIC, SEQ_MAGIC_LEN) == 0) {
        size_t at = SEQ_MAGIC_LEN;
        s.in_seq = 1;
        for (int n = 0; n < SEQ_MAX && size - at >= 2; n++) {
            size_t len = (size_t)data[at] << 8 | data[at + 1];
            at += 2;
            if (len > size - at)
                break;
            run_frame(&s, data + at, len);
            at += len;
        }
    } else {
        run_frame(&s, data, size);
    }
    if (s.in_txn)
        store_rollback(srv.wst);
    drain_seals(&s);
    if (s.blobs)
        blobs_reset();
    return 0;
}
