/*
 * spool_seeds.c: writes a seed corpus for fuzz_spool into a directory: real
 * spools made by libtrack (a run start, metric batches, tags, for two
 * servers, none of them reachable) and copies with the damage the spool must
 * survive: a torn tail, a flipped byte in a record, a damaged header.
 * Generated at test time so no binary files live in the repository.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "track.h"

static int spool_some(const char *path, const char *server, int points)
{
    struct track_opts o = {
        .server = server, .spool_path = path, .timeout_ms = 50, .flush_points = 5};
    struct track_client *c;
    struct track_err err = {0};
    track_run_id id;
    if (track_client_open(&o, &c, &err))
        return -1;
    if (track_run_start(c, NULL, &id, &err)) {
        track_client_close(c);
        return -1;
    }
    for (int i = 0; i < points; i++)
        track_log_metric(c, "loss", 1.0 / (i + 1), i, 0, &err);
    track_set_tag(c, "seed", "yes", &err);
    track_run_end(c, TRACK_FINISHED, &err);
    track_client_close(c);
    return 0;
}

static long slurp(const char *path, unsigned char *buf, long cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    long n = (long)fread(buf, 1, (size_t)cap, f);
    fclose(f);
    return n;
}

static int emit(const char *dir, const char *name, const unsigned char *buf, long n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, (size_t)n, f) != (size_t)n)
        return -1;
    return fclose(f);
}

int main(int argc, char **argv)
{
    static unsigned char buf[1 << 20], copy[1 << 20];
    char work[1024];
    if (argc != 2) {
        fprintf(stderr, "usage: spool_seeds DIR\n");
        return 2;
    }
    /* a tcp:// record without keys: the spool's format is the same sealed or not */
    setenv("TRACK_TEST_PLAIN_TCP", "1", 1);
    snprintf(work, sizeof(work), "%s/work.bin", argv[1]);
    unlink(work);
    if (spool_some(work, "ipc:///nonexistent-track-seeds/a.sock", 12) ||
        spool_some(work, "tcp://127.0.0.1:1", 7))
        return 1;
    long n = slurp(work, buf, sizeof(buf));
    unlink(work);
    if (n <= 64)
        return 1;
    int bad = emit(argv[1], "seed-whole", buf, n);
    bad |= emit(argv[1], "seed-torn", buf, n - 20);
    memcpy(copy, buf, (size_t)n);
    copy[64 + (n - 64) / 3] ^= 0x5a;
    bad |= emit(argv[1], "seed-flipped", copy, n);
    memcpy(copy, buf, (size_t)n);
    memcpy(copy, "XXXXXXXX", 8);
    bad |= emit(argv[1], "seed-bad-header", copy, n);
    bad |= emit(argv[1], "seed-header-only", buf, 64);
    return bad ? 1 : 0;
}
