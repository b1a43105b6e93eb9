/*
 * stress_client.c: a training loop stand-in for the reliability tests. It
 * logs N points of one key to a run through libtrack (buffered, flushed
 * every B points), whatever the daemon does meanwhile, then delivers its
 * spool and reports on stdout:
 *
 *   points=N acked=A spooled=S max_call_ms=M synced=1
 *
 * where max_call_ms is the longest any single libtrack call took: the
 * figure that shows a training loop is never held up by the tracker.
 *
 *   stress_client --server URI --run HEX --key K --points N [--batch B]
 *                 [--timeout MS] [--spool PATH] [--sleep-us U] [--sync-wait MS]
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "track.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},    {"run", required_argument, NULL, 'r'},
        {"key", required_argument, NULL, 'k'},       {"points", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},     {"timeout", required_argument, NULL, 't'},
        {"spool", required_argument, NULL, 'p'},     {"sleep-us", required_argument, NULL, 'u'},
        {"sync-wait", required_argument, NULL, 'w'}, {NULL, 0, NULL, 0}};
    struct track_opts o = {0};
    const char *run = NULL, *key = "x";
    long points = 1000, batch = 100, sleep_us = 0, sync_wait = 60000;
    struct track_client *c;
    struct track_err err = {0};
    int opt;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            o.server = optarg;
            break;
        case 'r':
            run = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'n':
            points = strtol(optarg, NULL, 10);
            break;
        case 'b':
            batch = strtol(optarg, NULL, 10);
            break;
        case 't':
            o.timeout_ms = (int)strtol(optarg, NULL, 10);
            break;
        case 'p':
            o.spool_path = optarg;
            break;
        case 'u':
            sleep_us = strtol(optarg, NULL, 10);
            break;
        case 'w':
            sync_wait = strtol(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (!run || points < 1 || batch < 1)
        return 2;
    o.flush_points = (int)batch;
    o.flush_interval_ms = 3600 * 1000; /* flush by size only: batches are deterministic */
    if (track_client_open(&o, &c, &err) || track_run_use(c, run, &err)) {
        fprintf(stderr, "stress_client: %s\n", err.msg);
        return 1;
    }
    long acked = 0, spooled = 0;
    int64_t max_call = 0;
    for (long i = 0; i < points; i++) {
        int64_t t0 = now_ms();
        struct track_err e = {0};
        int rc = track_log_metric(c, key, (double)i, i, 0, &e);
        int64_t dt = now_ms() - t0;
        if (dt > max_call)
            max_call = dt;
        if (rc) {
            fprintf(stderr, "stress_client: point %ld: %s\n", i, e.msg);
            return 1;
        }
        if ((i + 1) % batch == 0) {
            if (e.code == TRACK_E_SPOOLED)
                spooled += batch;
            else
                acked += batch;
        }
        if (sleep_us)
            usleep((useconds_t)sleep_us);
    }
    int64_t t0 = now_ms();
    struct track_err e = {0};
    if (track_flush(c, &e)) {
        fprintf(stderr, "stress_client: flush: %s\n", e.msg);
        return 1;
    }
    if (now_ms() - t0 > max_call)
        max_call = now_ms() - t0;
    /* deliver the spool; the daemon may still be restarting */
    int synced = 0;
    int64_t until = now_ms() + sync_wait;
    while (now_ms() < until) {
        int sent = 0;
        struct track_err se = {0};
        if (track_sync(c, &sent, &se) == 0) {
            synced = 1;
            break;
        }
        usleep(100 * 1000);
    }
    printf("points=%ld acked=%ld spooled=%ld max_call_ms=%lld synced=%d\n", points, acked, spooled,
           (long long)max_call, synced);
    track_client_close(c);
    return synced ? 0 : 1;
}
