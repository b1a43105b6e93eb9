/*
 * test_reliability.c: nothing acknowledged is lost, the tracker being down
 * never stops training, faults get clear errors. Every test runs the real
 * trackd and real clients as separate processes:
 *
 *  - SIGKILL of trackd at random moments while 4 clients log; afterwards
 *    every point is present exactly once and `trackd --check` is clean;
 *  - SIGSTOP then SIGKILL in the middle of a training loop: no libtrack
 *    call takes longer than the client's timeout (plus scheduling slack);
 *  - a data directory on a small tmpfs that fills: RESOURCE_EXHAUSTED,
 *    reads keep working, writes resume once space is freed;
 *  - a corrupted database: `trackd --check` names it, trackd refuses to
 *    start without --force;
 *  - `track backup` while clients write, then `trackd --restore`;
 *  - a full spool drops its oldest records first and says so.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

/* Starts argv in the background with stdout and stderr to `out`. */
static pid_t spawn_bg(const char *const *argv, const char *out)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    return pid;
}

static void start_run(struct fx_daemon *d, char hex[33])
{
    char *out = NULL, *err = NULL;
    int st = fx_track(d, NULL, NULL, &out, &err, "run", "start", "--experiment", "rel", NULL);
    cr_assert_eq(st, 0, "run start: %s", err);
    cr_assert_eq(strlen(out), 33, "run start printed: %s", out);
    memcpy(hex, out, 32);
    hex[32] = '\0';
    free(out);
    free(err);
}

/* Reads `track metric history RUN KEY --csv` and checks that steps
 * 0..n-1 are each present exactly once. */
static void assert_exactly_once(struct fx_daemon *d, const char *run, const char *key, long n)
{
    char *out = NULL, *err = NULL;
    int st = fx_track(d, NULL, NULL, &out, &err, "metric", "history", run, key, "--csv", NULL);
    cr_assert_eq(st, 0, "history %s: %s", key, err);
    unsigned char *seen = calloc((size_t)n, 1);
    long lines = 0, dups = 0, bad = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "step,", 5) == 0)
            continue;
        long step = strtol(line, NULL, 10);
        lines++;
        if (step < 0 || step >= n)
            bad++;
        else if (seen[step]++)
            dups++;
    }
    long missing = 0;
    for (long i = 0; i < n; i++)
        missing += !seen[i];
    cr_assert(lines == n && dups == 0 && missing == 0 && bad == 0,
              "key %s: %ld points for %ld steps, %ld duplicated, %ld missing, %ld out of range",
              key, lines, n, dups, missing, bad);
    free(seen);
    free(out);
    free(err);
}

/* Waits (up to timeout_ms) until the daemon stores a point of (run, key):
 * a client started in the background is then streaming. */
static void wait_for_points(struct fx_daemon *d, const char *run, const char *key, int timeout_ms)
{
    long long until = fx_now_ms() + timeout_ms;
    for (;;) {
        char *out = NULL, *err = NULL;
        int st = fx_track(d, NULL, NULL, &out, &err, "metric", "history", run, key, "--csv", NULL);
        int some = st == 0 && out && strchr(out, '\n') && strchr(strchr(out, '\n') + 1, ',');
        free(out);
        free(err);
        if (some)
            return;
        cr_assert_lt(fx_now_ms(), until, "no point of %s stored within %d ms", key, timeout_ms);
        fx_sleep_ms(20);
    }
}

static int run_check(const char *dir, char **err_out)
{
    const char *argv[] = {TRACKD_BIN, "--check", "--data-dir", dir, NULL};
    return fx_run(argv, NULL, NULL, NULL, err_out);
}

Test(reliability, sigkill_at_random_moments_loses_no_acknowledged_point, .timeout = 240)
{
    struct fx_daemon d;
    char run[33], spools[4][400], outs[4][400], points[16];
    const long n = 20000;
    pid_t pids[4];
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

    cr_assert_eq(fx_daemon_start(&d, NULL), 0);
    start_run(&d, run);
    snprintf(points, sizeof(points), "%ld", n);
    for (int i = 0; i < 4; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(spools[i], sizeof(spools[i]), "%s/spool-%d.bin", d.dir, i);
        snprintf(outs[i], sizeof(outs[i]), "%s/client-%d.out", d.dir, i);
        const char *argv[] = {
            STRESS_CLIENT_BIN, "--server",   d.uri,     "--run", run,         "--key", key,
            "--points",        points,       "--batch", "250",   "--timeout", "500",   "--spool",
            spools[i],         "--sleep-us", "100",     NULL};
        pids[i] = spawn_bg(argv, outs[i]);
    }
    int kills = 0;
    for (; kills < 6; kills++) {
        fx_sleep_ms(150 + rand_r(&seed) % 350);
        fx_daemon_kill(&d);
        fx_sleep_ms(20 + rand_r(&seed) % 200);
        cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "restart %d failed (seed %u)", kills, seed);
    }
    for (int i = 0; i < 4; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        char *o = fx_read_text(outs[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d: %s", i, o);
        cr_assert(strstr(o, "synced=1"), "client %d did not deliver its spool: %s", i, o);
        free(o);
    }
    for (int i = 0; i < 4; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", i);
        assert_exactly_once(&d, run, key, n);
    }
    cr_assert_eq(fx_daemon_stop(&d), 0, "trackd did not stop cleanly");
    char *err = NULL;
    cr_assert_eq(run_check(d.dir, &err), 0, "trackd --check after %d kills: %s", kills, err);
    free(err);
    fx_daemon_cleanup(&d, 0);
}

Test(reliability, stopped_then_killed_daemon_never_blocks_the_training_loop, .timeout = 120)
{
    struct fx_daemon d;
    char run[33], spool[400], out[400];
    const int timeout_ms = 300;

    cr_assert_eq(fx_daemon_start(&d, NULL), 0);
    start_run(&d, run);
    snprintf(spool, sizeof(spool), "%s/spool.bin", d.dir);
    snprintf(out, sizeof(out), "%s/client.out", d.dir);
    const char *argv[] = {STRESS_CLIENT_BIN,
                          "--server",
                          d.uri,
                          "--run",
                          run,
                          "--key",
                          "loss",
                          "--points",
                          "4000",
                          "--batch",
                          "100",
                          "--timeout",
                          "300",
                          "--spool",
                          spool,
                          "--sleep-us",
                          "1000",
                          NULL};
    pid_t pid = spawn_bg(argv, out);
    wait_for_points(&d, run, "loss", 10000);
    kill(d.pid, SIGSTOP);
    fx_sleep_ms(1500);  /* the fault itself: a daemon hung this long */
    fx_daemon_kill(&d); /* SIGKILL ends a stopped process too */
    fx_sleep_ms(800);   /* and then away this long */
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    int st;
    waitpid(pid, &st, 0);
    char *o = fx_read_text(out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client: %s", o);
    long long max_call = -1;
    char *p = strstr(o, "max_call_ms=");
    cr_assert(p, "client output: %s", o);
    max_call = strtoll(p + 12, NULL, 10);
    /* the bound is the timeout; the slack covers an fsync of the spool and
     * a loaded 2-core machine under ASan */
    cr_assert(max_call <= timeout_ms + 250, "a libtrack call took %lld ms (timeout %d): %s",
              max_call, timeout_ms, o);
    cr_assert(strstr(o, "spooled=0") == NULL, "nothing went to the spool: %s", o);
    free(o);
    assert_exactly_once(&d, run, "loss", 4000);
    fx_daemon_cleanup(&d, 0);
}

Test(reliability, full_disk_answers_resource_exhausted_and_recovers, .timeout = 120)
{
    char dir[] = "/tmp/track-full-XXXXXX", data[200], filler[320];
    fx_tmpfs(dir, data, sizeof(data), "size=3m");
    snprintf(filler, sizeof(filler), "%s/filler", data);
    FILE *f = fopen(filler, "w");
    static char block[64 * 1024];
    memset(block, 0x5a, sizeof(block));
    for (int i = 0; i < 16; i++) /* 1 MiB that can be given back later */
        fwrite(block, 1, sizeof(block), f);
    fclose(f);

    struct fx_daemon d;
    fx_daemon_start_on(&d, data, dir);

    struct track_opts o = {.server = d.uri,
                           .no_spool = 1,
                           .flush_points = 100000,
                           .flush_interval_ms = 3600000,
                           .timeout_ms = 5000};
    struct track_client *c;
    struct track_err err = {0};
    track_run_id id;
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
    uint64_t x = 88172645463325252ULL;
    int batches = 0;
    long step = 0;
    int rc = fx_log_noise_until_refused(c, &x, &step, &batches, &err);
    cr_assert_eq(rc, TRACK_E_RESOURCE_EXHAUSTED, "after %d batches: rc %d %s", batches, rc,
                 err.msg);
    cr_assert(strstr(err.msg, "full"), "message: %s", err.msg);
    /* reads keep working */
    struct track_result *res;
    struct track_run_info info;
    char hex[33];
    track_run_id_hex(&id, hex);
    cr_assert_eq(track_run_get(c, hex, &res, &info, &err), 0, "read on a full disk: %s", err.msg);
    int64_t before = info.n_metrics ? info.metrics[0].count : 0;
    track_result_free(res);
    /* space comes back: writes resume */
    unlink(filler);
    for (int i = 0; i < 1000; i++)
        track_log_metric(c, "after", (double)i, i, 0, &err);
    cr_assert_eq(track_flush(c, &err), 0, "write after freeing space: %s", err.msg);
    cr_assert_eq(track_run_get(c, hex, &res, &info, &err), 0, "%s", err.msg);
    int found = 0;
    for (size_t i = 0; i < info.n_metrics; i++)
        if (strcmp(info.metrics[i].key, "after") == 0 && info.metrics[i].count == 1000)
            found = 1;
    track_result_free(res);
    cr_assert(found, "points written after the disk was freed are missing");
    cr_assert(before > 0, "nothing was stored before the disk filled");
    track_client_close(c);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    char *e2 = NULL;
    int chk = run_check(data, &e2);
    cr_assert_eq(chk, 0, "trackd --check after a full disk: %s", e2);
    free(e2);
    umount(data);
    fx_rmtree(dir);
}

Test(reliability, corrupt_database_is_reported_and_refused_without_force, .timeout = 60)
{
    struct fx_daemon d;
    char run[33], db[400];

    cr_assert_eq(fx_daemon_start(&d, NULL), 0);
    start_run(&d, run);
    for (int i = 0; i < 50; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        const char *env[] = {NULL};
        char *out = NULL, *err = NULL;
        cr_assert_eq(fx_track(&d, env, NULL, &out, &err, "--run", run, "tag", "a=b", NULL), 0);
        free(out);
        free(err);
    }
    cr_assert_eq(fx_daemon_stop(&d), 0);
    snprintf(db, sizeof(db), "%s/track.db", d.dir);
    struct stat sb;
    cr_assert_eq(stat(db, &sb), 0);
    int fd = open(db, O_WRONLY);
    char junk[4096];
    memset(junk, 0xa5, sizeof(junk));
    /* page 2 onwards: b-tree pages of the schema's tables */
    for (off_t off = 4096; off + 4096 <= sb.st_size && off < 6 * 4096; off += 4096)
        cr_assert_eq(pwrite(fd, junk, sizeof(junk), off), (ssize_t)sizeof(junk));
    close(fd);

    char *err = NULL;
    cr_assert_eq(run_check(d.dir, &err), 1, "trackd --check on a corrupt database: %s", err);
    cr_assert(strstr(err, "track.db"), "the report names the database: %s", err);
    free(err);
    cr_assert_neq(fx_daemon_restart(&d, NULL), 0, "trackd started on a corrupt database");
    char *log = fx_read_text(d.log);
    cr_assert(strstr(log, "integrity"), "log: %s", log);
    free(log);
    const char *force[] = {"--force", NULL};
    cr_assert_eq(fx_daemon_restart(&d, force), 0, "--force did not start trackd");
    fx_daemon_cleanup(&d, 0);
}

/* A database past the inline size is checked while trackd serves (check.c):
 * reads go on, and once the check finds the damage every write is refused
 * with UNAVAILABLE naming it. */
Test(reliability, a_big_database_is_checked_in_the_background_and_damage_stops_writes,
     .timeout = 60)
{
    struct fx_daemon d;
    char run[33], db[400];
    char *out = NULL, *err = NULL;

    cr_assert_eq(fx_daemon_start(&d, NULL), 0);
    start_run(&d, run);
    cr_assert_eq(
        fx_track(&d, NULL, NULL, &out, &err, "--run", run, "log-metric", "loss", "0.5", NULL), 0,
        "%s", err);
    free(out);
    free(err);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    snprintf(db, sizeof(db), "%s/track.db", d.dir);
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(
        sqlite3_exec(h, "UPDATE metric_chunks SET data = x'ffffffffffff'", NULL, NULL, NULL),
        SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);

    setenv("TRACKD_TEST_CHECK_INLINE_BYTES", "0", 1);
    int rc = fx_daemon_restart(&d, NULL);
    unsetenv("TRACKD_TEST_CHECK_INLINE_BYTES");
    cr_assert_eq(rc, 0, "trackd did not start with the check in the background");
    int refused = 0;
    for (int i = 0; i < 100 && !refused; i++) {
        out = err = NULL;
        rc = fx_track(&d, NULL, NULL, &out, &err, "--run", run, "tag", "a=b", NULL);
        refused = rc != 0 && strstr(err, "integrity check") != NULL;
        cr_assert(rc == 0 || refused, "a write failed otherwise: %s", err);
        free(out);
        free(err);
        if (!refused)
            usleep(100 * 1000);
    }
    cr_assert(refused, "writes were never refused after the background check");
    out = err = NULL;
    cr_assert_eq(fx_track(&d, NULL, NULL, &out, &err, "runs", "--json", NULL), 0, "reads go on: %s",
                 err);
    cr_assert(strstr(out, run), "the run is listed: %s", out);
    free(out);
    free(err);
    char *log = fx_read_text(d.log);
    cr_assert(strstr(log, "in the background") && strstr(log, "integrity check failed"), "log: %s",
              log);
    free(log);
    fx_daemon_cleanup(&d, 0);
}

Test(reliability, backup_while_writing_is_consistent_and_restores, .timeout = 120)
{
    struct fx_daemon d, r;
    char run[33], spool[400], out[400], backup[400];
    char *o = NULL, *e = NULL;

    cr_assert_eq(fx_daemon_start(&d, NULL), 0);
    start_run(&d, run);
    snprintf(spool, sizeof(spool), "%s/spool.bin", d.dir);
    snprintf(out, sizeof(out), "%s/client.out", d.dir);
    const char *argv[] = {
        STRESS_CLIENT_BIN, "--server", d.uri, "--run",   run,   "--key",      "loss", "--points",
        "30000",           "--batch",  "200", "--spool", spool, "--sleep-us", "20",   NULL};
    pid_t pid = spawn_bg(argv, out);
    wait_for_points(&d, run, "loss", 10000); /* the backup runs while it writes */
    cr_assert_eq(fx_track(&d, NULL, NULL, &o, &e, "--run", run, "log-metric", "marker", "1", NULL),
                 0, "%s", e);
    free(o);
    free(e);
    snprintf(backup, sizeof(backup), "%s/backup.db", d.dir);
    cr_assert_eq(fx_track(&d, NULL, NULL, &o, &e, "backup", backup, NULL), 0, "backup: %s", e);
    cr_assert(strstr(o, backup), "backup output: %s", o);
    free(o);
    free(e);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* restore into a fresh data directory and serve it */
    cr_assert_eq(fx_daemon_start(&r, (const char *[]){"--workers", "1", NULL}), 0);
    fx_daemon_stop(&r);
    const char *restore[] = {TRACKD_BIN, "--data-dir", r.dir, "--restore", backup, NULL};
    cr_assert_eq(fx_run(restore, NULL, NULL, &o, &e), 0, "restore: %s", e);
    free(o);
    free(e);
    cr_assert_eq(run_check(r.dir, &e), 0, "the restored copy fails its check: %s", e);
    free(e);
    cr_assert_eq(fx_daemon_restart(&r, NULL), 0);
    cr_assert_eq(
        fx_track(&r, NULL, NULL, &o, &e, "metric", "history", run, "marker", "--csv", NULL), 0,
        "marker missing from the backup: %s", e);
    cr_assert(strstr(o, "\n0,"), "marker point: %s", o);
    free(o);
    free(e);
    fx_daemon_cleanup(&r, 0);
    fx_daemon_cleanup(&d, 0);
}

Test(reliability, full_spool_drops_oldest_first_and_says_so, .timeout = 60)
{
    struct fx_daemon d;
    char spool[400], uri[400];
    track_run_id id;
    struct track_client *c;
    struct track_err err = {0};

    /* a daemon that is not there yet: its directory, no process */
    cr_assert_eq(fx_daemon_start(&d, NULL), 0);
    fx_daemon_stop(&d);
    snprintf(spool, sizeof(spool), "%s/spool.bin", d.dir);
    snprintf(uri, sizeof(uri), "%s", d.uri);
    struct track_opts o = {.server = uri,
                           .spool_path = spool,
                           .spool_max_bytes = 64 * 1024,
                           .flush_points = 100,
                           .timeout_ms = 200};
    cr_assert_eq(track_client_open(&o, &c, &err), 0);
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
    cr_assert_eq(err.code, TRACK_E_SPOOLED);
    int dropped_seen = 0;
    for (int i = 0; i < 20000; i++) {
        struct track_err e = {0};
        cr_assert_eq(track_log_metric(c, "loss", (double)i, i, 0, &e), 0, "%s", e.msg);
        if (e.code == TRACK_E_SPOOLED && strstr(e.msg, "dropped"))
            dropped_seen = 1;
    }
    cr_assert(dropped_seen, "no warning about dropped spool records");
    int64_t reqs = 0, bytes = 0;
    cr_assert_eq(track_spool_pending(c, &reqs, &bytes, &err), 0);
    cr_assert(bytes <= 64 * 1024 && reqs > 0, "spool holds %lld bytes in %lld requests",
              (long long)bytes, (long long)reqs);
    /* the newest points are kept: the last one survives */
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    int sent = 0;
    /* the run start was among the oldest records and was dropped: its
     * points are refused (NOT_FOUND) and dropped on delivery, so the spool
     * still empties */
    cr_assert_eq(track_sync(c, &sent, &err), 0, "%s", err.msg);
    cr_assert_eq(track_spool_pending(c, &reqs, &bytes, &err), 0);
    cr_assert_eq(reqs, 0);
    track_client_close(c);
    fx_daemon_cleanup(&d, 0);
}

Test(reliability, a_spool_held_by_another_process_costs_a_write_its_timeout_not_more, .timeout = 60)
{
    struct fx_daemon d;
    char spool[400], uri[400];
    struct track_client *c;
    struct track_err err = {0};
    track_run_id id;

    cr_assert_eq(fx_daemon_start(&d, NULL), 0);
    fx_daemon_stop(&d); /* the daemon is away: writes go to the spool */
    snprintf(spool, sizeof(spool), "%s/spool.bin", d.dir);
    snprintf(uri, sizeof(uri), "%s", d.uri);
    struct track_opts o = {.server = uri, .spool_path = spool, .timeout_ms = 300};
    cr_assert_eq(track_client_open(&o, &c, &err), 0);
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
    cr_assert_eq(err.code, TRACK_E_SPOOLED);

    /* another process (here: another open file description) holds the
     * spool's lock, as a long `track sync` would between its slices */
    int fd = open(spool, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(flock(fd, LOCK_EX), 0);
    long long t0 = fx_now_ms();
    int rc = track_set_tag(c, "k", "v", &err);
    long long took = fx_now_ms() - t0;
    cr_assert_eq(rc, TRACK_E_UNAVAILABLE, "rc %d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "held by another process"), "%s", err.msg);
    cr_assert(took < 300 + 250, "the write waited %lld ms for the lock (timeout 300)", took);
    close(fd); /* lets go of the lock */

    cr_assert_eq(track_set_tag(c, "k", "v", &err), 0, "%s", err.msg);
    cr_assert_eq(err.code, TRACK_E_SPOOLED, "%s", err.msg);
    int64_t reqs = 0, bytes = 0;
    cr_assert_eq(track_spool_pending(c, &reqs, &bytes, &err), 0);
    cr_assert_eq(reqs, 2, "run start and the second tag are spooled");
    track_client_close(c);
    fx_daemon_cleanup(&d, 0);
}
