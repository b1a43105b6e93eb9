/*
 * fuzz_spool.c: libFuzzer target for the spool reader. The input becomes a
 * spool file (header, records, garbage: whatever the fuzzer makes), and the
 * real libtrack then reads it (track_spool_pending), delivers it to a server
 * that is not there (the walk, the cut of a torn tail, the rewrite after
 * damage, a header moved aside), and appends one record. Whatever the file
 * held, the appended record must then be the last live record of the spool,
 * exactly as written, for this client's server: damage never buries a new
 * record, and never costs more than the damaged bytes. Even inputs get a
 * small spool_max_bytes, so the full spool's rewrite is fuzzed too.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define SERVER "ipc:///nonexistent-track-fuzz/trackd.sock"

static char dir[] = "/tmp/track-fuzz-spool-XXXXXX";
static uint8_t req[256];
static size_t req_len;

static void clear_dir(void)
{
    DIR *dh = opendir(dir);
    struct dirent *e;
    char path[512];
    while (dh && (e = readdir(dh)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (dh)
        closedir(dh);
}

static void cleanup(void)
{
    clear_dir();
    rmdir(dir);
}

/* The request the target appends: a tag for a fixed run. */
static void make_request(void)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__LogBatch lb = TRACK__V1__LOG_BATCH__INIT;
    Track__V1__KeyValue kv = TRACK__V1__KEY_VALUE__INIT, *kvs[1] = {&kv};
    static uint8_t rid[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
    rq.request_id.data = rid;
    rq.request_id.len = 16;
    kv.key = (char *)"fuzz";
    kv.value = (char *)"appended last";
    lb.run = (char *)"0123456789abcdef0123456789abcdef";
    lb.tags = kvs;
    lb.n_tags = 1;
    rq.op_case = TRACK__V1__REQUEST__OP_LOG_BATCH;
    rq.log_batch = &lb;
    req_len = track__v1__request__pack(&rq, req);
}

struct last {
    int n, ours_last;
};

static int see(void *arg, const char *uri, const uint8_t *p, size_t len)
{
    struct last *l = arg;
    l->n++;
    l->ours_last = strcmp(uri, SERVER) == 0 && len == req_len && memcmp(p, req, len) == 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char path[256];
    struct track_client *c;
    struct track_err err = {0};

    if (!ready) {
        if (!mkdtemp(dir))
            abort();
        atexit(cleanup);
        make_request();
        ready = 1;
    }
    clear_dir();
    snprintf(path, sizeof(path), "%s/spool.bin", dir);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size))
        abort();
    fclose(f);

    struct track_opts o = {.server = SERVER,
                           .spool_path = path,
                           .timeout_ms = 50,
                           .spool_max_bytes = (size & 1) ? (1 << 20) : 4096};
    if (track_client_open(&o, &c, &err))
        abort();
    int64_t before = 0, bytes = 0;
    if (track_spool_pending(c, &before, &bytes, &err))
        abort();
    if (before < 0 || bytes < 0 || bytes > (int64_t)size + 64)
        abort();
    struct track_sync_report r;
    int rc = cl_spool_deliver(c, 50, 0, &r, &err);
    if (rc != 0 && rc != 1 && rc != TRACK_E_UNAVAILABLE)
        abort();
    if (r.delivered || r.rejected)
        abort(); /* nobody listens there */
    struct cl_spool_note n;
    if (cl_spool_append(c, req, req_len, &n, &err))
        abort();
    struct last l = {0, 0};
    if (cl_spool_walk(c, see, &l, NULL, &err))
        abort();
    if (!l.ours_last || l.n > before + 1)
        abort();
    if (size & 1) {
        /* room enough: nothing valid was lost to make room */
        if (l.n != before + 1 && !n.moved[0])
            abort();
    }
    track_client_close(c);
    return 0;
}
