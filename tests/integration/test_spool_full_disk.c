/*
 * test_spool_full_disk.c: spooled records that the daemon refuses for now
 * (its disk is full) stay in the spool, in order, and arrive once space
 * comes back. A suite of its own: it mounts a small tmpfs (root only, else
 * skipped) and runs for seconds, and Criterion's runner leaks a little of
 * its own memory when such a test finishes beside short ones (--jobs 2).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

/* The daemon's disk is full: every record is refused for now and stays, in
 * order, until space comes back. */
Test(spool_full_disk, records_refused_for_now_stay_in_order_until_the_disk_has_room, .timeout = 180)
{
    char dir[] = "/tmp/track-spoolfull-XXXXXX", data[200], filler[320], spool[320];
    fx_tmpfs(dir, data, sizeof(data), "size=6m");
    struct fx_daemon full;
    fx_daemon_start_on(&full, data, dir);
    snprintf(full.spool, sizeof(full.spool), "%s/spool-reader.bin", dir);
    snprintf(spool, sizeof(spool), "%s/spool.bin", dir);
    snprintf(filler, sizeof(filler), "%s/filler", data);

    struct track_opts o = {.server = full.uri,
                           .spool_path = spool,
                           .timeout_ms = 3000,
                           .flush_points = 20000,
                           .flush_interval_ms = 3600000};
    struct track_client *c = NULL;
    struct track_err err = {0};
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "%s", err.msg);
    track_run_id id;
    char hex[33];
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
    cr_assert_neq(err.code, TRACK_E_SPOOLED);
    track_run_id_hex(&id, hex);
    cr_assert_eq(fx_daemon_stop(&full), 0);
    /* three batches of points that do not compress, spooled */
    uint64_t x = 88172645463325252ULL;
    int64_t step = 0;
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i < 20000; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            double v;
            memcpy(&v, &x, sizeof(v));
            if (v != v)
                v = 0.5;
            cr_assert_eq(track_log_metric(c, "noise", v, step++, 0, &err), 0, "%s", err.msg);
        }
        /* the last point made the batch due: it is in the spool already */
        cr_assert_eq(err.code, TRACK_E_SPOOLED, "batch %d: %s", b, err.msg);
    }
    int64_t reqs = 0, bytes = 0;
    cr_assert_eq(track_spool_pending(c, &reqs, &bytes, &err), 0);
    cr_assert_eq(reqs, 3, "%lld requests spooled", (long long)reqs);
    track_client_close(c);
    cr_assert_eq(fx_daemon_restart(&full, NULL), 0);
    /* fill the disk to the last byte */
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    static char block[64 * 1024];
    memset(block, 0x5a, sizeof(block));
    for (int i = 0; i < 1000; i++)
        if (write(fd, block, sizeof(block)) < (ssize_t)sizeof(block))
            break;
    for (int i = 0; i < 100000; i++)
        if (write(fd, block, 512) <= 0)
            break;
    close(fd);

    c = fx_client_for(full.uri, spool, 3000, 0);
    struct track_sync_report r;
    int rc = track_spool_deliver(c, 1, &r, &err);
    cr_assert_eq(rc, TRACK_E_UNAVAILABLE, "rc %d: %s", rc, err.msg);
    cr_assert_eq(r.delivered, 0, "%d delivered to a full disk", r.delivered);
    cr_assert_eq(r.rejected, 0, "a record refused for now was rejected: %s", r.rejected_reasons[0]);
    cr_assert_eq(r.kept, 3, "%d kept", r.kept);
    cr_assert(strstr(r.kept_reasons[0], "RESOURCE_EXHAUSTED") ||
                  strstr(r.kept_reasons[0], "INTERNAL"),
              "%s", r.kept_reasons[0]);
    cr_assert_eq(track_spool_pending(c, &reqs, &bytes, &err), 0);
    cr_assert_eq(reqs, 3, "%lld requests left in the spool", (long long)reqs);
    /* space comes back: everything arrives, once, in order */
    unlink(filler);
    rc = track_spool_deliver(c, 1, &r, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(r.delivered, 3);
    track_client_close(c);
    static int64_t steps[60001];
    size_t n = fx_metric_steps(&full, hex, "noise", steps, 60001);
    cr_assert_eq(n, 60000, "%zu points stored", n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(steps[i], (int64_t)i, "point %zu has step %lld", i, (long long)steps[i]);
    fx_daemon_stop(&full);
    umount(data);
    fx_rmtree(dir);
}
