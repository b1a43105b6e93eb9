/*
 * fuzz_frame.c: libFuzzer target for what trackd does with a frame from
 * the wire: decode it as a track.v1.Request, dispatch it through the real
 * operation table against a real SQLite store (in a temporary directory,
 * with one experiment and one run so that valid requests reach storage),
 * and pack the response. Writes run inside a savepoint that is rolled back,
 * so the store stays small however long the fuzzer runs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv.h"

static struct srv srv;
static char dir[] = "/tmp/track-fuzz-XXXXXX";

static void cleanup(void)
{
    char path[256];
    store_close(srv.wst);
    const char *files[] = {"track.db", "track.db-wal", "track.db-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct store_opts so = {0};
    struct store_err err = {0};
    struct store_run_start rs = {0};
    (void)argc;
    (void)argv;

    if (!mkdtemp(dir))
        abort();
    snprintf(srv.cfg.data_dir, sizeof(srv.cfg.data_dir), "%s", dir);
    snprintf(srv.cfg.db_path, sizeof(srv.cfg.db_path), "%s/track.db", dir);
    if (store_open(srv.cfg.db_path, &so, &srv.wst, &err))
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
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store_err err = {0};
    Track__V1__Request *rq = track__v1__request__unpack(NULL, size, data);
    if (!rq)
        return 0;
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    struct srv_call call = {.srv = &srv, .st = srv.wst, .rq = rq, .rs = &rs};
    int write = srv_op_kind(rq) == SRV_WRITE;

    if (write && (store_begin(srv.wst, &err) || store_save(srv.wst, &err)))
        abort();
    srv_dispatch(&call);
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
    if (write) {
        store_rollback_to(srv.wst); /* releases the savepoint too */
        store_rollback(srv.wst);
    }
    srv_arena_free(&call.arena);
    track__v1__request__free_unpacked(rq, NULL);
    return 0;
}
