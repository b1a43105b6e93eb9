/*
 * test_spool.c: what the client said was kept in the spool arrives, or is
 * reported. Fault injection on the spool file (a torn tail, a flipped byte,
 * a damaged header), delivery against a daemon that refuses for good (the
 * daemon whose disk is full is in test_spool_full_disk.c), two servers' records in one spool, a
 * full spool, the spool's lock held by another process, a flush of many keys cut between its
 * batches, and the spool's file modes.
 *
 * Every test runs real trackd processes (tests/support/fixture.h) and the
 * real libtrack or `track` binary. The flush test cuts between batches with
 * a wrapper around nanomsg's nn_send (defined here, it is the one libtrack
 * calls in this binary; the real one is reached with dlsym): it kills the
 * daemon, or names another run in the frame so the daemon refuses it.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon d;
static int passed; /* set by the last line of a test: fini shows the log otherwise */

#define PASS() (passed = 1)

static void setup(void)
{
    passed = 0;
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
}

static void teardown(void)
{
    fx_daemon_cleanup(&d, !passed);
}

TestSuite(spool, .init = setup, .fini = teardown, .timeout = 120);

/* ---- nn_send, cut between a flush's batches ------------------------------ */

static int hook_at = -1;  /* the send (counted from arming) to act on; -1: off */
static int hook_sends;    /* sends since arming */
static int hook_refuse;   /* 1: rename the run in that frame; 0: kill the daemon */
static char hook_run[33]; /* the run's id as it appears in the frame */
static struct fx_daemon *hook_daemon;

int nn_send(int s, const void *buf, size_t len, int flags);
int nn_send(int s, const void *buf, size_t len, int flags)
{
    static int (*real)(int, const void *, size_t, int);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "nn_send");
    if (hook_at >= 0 && hook_sends++ == hook_at) {
        hook_at = -1;
        if (!hook_refuse) {
            fx_daemon_kill(hook_daemon);
        } else {
            /* the same frame for a run that does not exist: NOT_FOUND */
            char *copy = malloc(len);
            memcpy(copy, buf, len);
            char *p = memmem(copy, len, hook_run, 32);
            if (p)
                memset(p, 'f', 32);
            int rc = real(s, copy, len, flags);
            free(copy);
            return rc;
        }
    }
    return real(s, buf, len, flags);
}

/* ---- helpers -------------------------------------------------------------- */

/* 1 when run exists on daemon dd. */
static int run_exists(struct fx_daemon *dd, const char *run)
{
    struct track_client *c = fx_client_for(dd->uri, dd->spool, 5000, 1);
    struct track_result *res = NULL;
    struct track_run_info info;
    struct track_err err = {0};
    int rc = track_run_get(c, run, &res, &info, &err);
    cr_assert(rc == 0 || rc == TRACK_E_NOT_FOUND, "run get: %s", err.msg);
    if (!rc)
        track_result_free(res);
    track_client_close(c);
    return rc == 0;
}

static void cli_spool_path(char *buf, size_t len)
{
    snprintf(buf, len, "%s/state/track/spool-%u.bin", d.dir, (unsigned)getuid());
}

/* `track run start` against the live daemon: the run's id in hex. */
static void cli_run_start(char hex[33])
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(fx_track(&d, NULL, NULL, &out, &err, "run", "start", NULL), 0, "%s", err);
    cr_assert_geq(strlen(out), 32, "%s", out);
    memcpy(hex, out, 32);
    hex[32] = '\0';
    free(out);
    free(err);
}

/* `track log-metric loss STEP --step STEP` for run hex: must exit 0 and,
 * the daemon being down, say the point was kept in the spool. */
static void cli_log_spooled(const char *hex, int step)
{
    char env[64], v[16], *out = NULL, *err = NULL;
    snprintf(env, sizeof(env), "TRACK_RUN_ID=%s", hex);
    snprintf(v, sizeof(v), "%d", step);
    const char *envs[] = {env, NULL};
    int rc = fx_track(&d, envs, NULL, &out, &err, "log-metric", "loss", v, "--step", v, NULL);
    cr_assert_eq(rc, 0, "log-metric %d: exit %d: %s", step, rc, err);
    cr_assert(strstr(err, "kept in the spool"), "log-metric %d: %s", step, err);
    free(out);
    free(err);
}

/* Offsets of the records in a spool file (the test knows the format:
 * a 64-byte header, each record opening with "TRKR"). */
static int record_offsets(const char *path, long *offs, int max)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    int k = 0;
    if (n >= 12 && buf[8] == 1) {
        /* version 1 (before records were framed): 32-byte header, records
         * of u32 length | 16-byte digest | payload */
        for (size_t i = 32; i + 20 <= n && k < max; k++) {
            offs[k] = (long)i;
            i += 20 + (buf[i] | buf[i + 1] << 8 | buf[i + 2] << 16 | (size_t)buf[i + 3] << 24);
        }
        return k;
    }
    for (size_t i = 64; i + 4 <= n && k < max; i++)
        if (memcmp(buf + i, "TRKR", 4) == 0)
            offs[k++] = (long)i;
    return k;
}

static void flip_byte(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    unsigned char b;
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    cr_assert_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void assert_steps(const char *hex, const int64_t *want, size_t n_want)
{
    int64_t got[64];
    size_t n = fx_metric_steps(&d, hex, "loss", got, 64);
    cr_assert_eq(n, n_want, "%zu points stored, expected %zu", n, n_want);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "point %zu: step %lld, expected %lld", i, (long long)got[i],
                     (long long)want[i]);
}

/* ---- item 1: damage stays local ------------------------------------------- */

Test(spool, a_torn_tail_is_cut_and_the_records_after_it_are_delivered)
{
    char hex[33], spool[400], *out = NULL, *err = NULL;
    cli_run_start(hex);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    for (int i = 1; i <= 4; i++)
        cli_log_spooled(hex, i);
    cli_spool_path(spool, sizeof(spool));
    struct stat sb;
    cr_assert_eq(stat(spool, &sb), 0);
    cr_assert_eq(truncate(spool, sb.st_size - 20), 0); /* a crash mid-append */
    cli_log_spooled(hex, 5);
    cli_log_spooled(hex, 6);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    int rc = fx_track(&d, NULL, NULL, &out, &err, "sync", NULL);
    cr_assert_eq(rc, 0, "sync: exit %d: %s", rc, err);
    cr_assert_str_eq(out, "delivered 5 spooled requests\n", "%s / %s", out, err);
    free(out);
    free(err);
    int64_t want[] = {1, 2, 3, 5, 6};
    assert_steps(hex, want, 5);
    PASS();
}

Test(spool, a_torn_tail_seen_by_sync_is_counted_and_cut)
{
    char hex[33], spool[400], *out = NULL, *err = NULL;
    cli_run_start(hex);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    for (int i = 1; i <= 3; i++)
        cli_log_spooled(hex, i);
    cli_spool_path(spool, sizeof(spool));
    struct stat sb;
    cr_assert_eq(stat(spool, &sb), 0);
    cr_assert_eq(truncate(spool, sb.st_size - 20), 0);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    int rc = fx_track(&d, NULL, NULL, &out, &err, "sync", NULL);
    cr_assert_eq(rc, 1, "sync after damage exits 1: %d %s", rc, err);
    cr_assert_str_eq(out, "delivered 2 spooled requests\n", "%s", out);
    cr_assert(strstr(err, "skipped 1 damaged spool record"), "%s", err);
    free(out);
    free(err);
    /* counted once: the damage is gone from the spool */
    rc = fx_track(&d, NULL, NULL, &out, &err, "sync", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(out, "delivered 0 spooled requests\n");
    free(out);
    free(err);
    int64_t want[] = {1, 2};
    assert_steps(hex, want, 2);
    PASS();
}

Test(spool, a_flipped_byte_loses_only_its_own_record)
{
    char hex[33], spool[400], *out = NULL, *err = NULL;
    long offs[16];
    cli_run_start(hex);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    for (int i = 1; i <= 5; i++)
        cli_log_spooled(hex, i);
    cli_spool_path(spool, sizeof(spool));
    cr_assert_eq(record_offsets(spool, offs, 16), 5);
    flip_byte(spool, offs[1] + 70); /* inside record 2's uri or payload */
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    int rc = fx_track(&d, NULL, NULL, &out, &err, "sync", NULL);
    cr_assert_eq(rc, 1, "sync: exit %d: %s", rc, err);
    cr_assert_str_eq(out, "delivered 4 spooled requests\n", "%s / %s", out, err);
    cr_assert(strstr(err, "skipped 1 damaged spool record"), "%s", err);
    free(out);
    free(err);
    int64_t want[] = {1, 3, 4, 5};
    assert_steps(hex, want, 4);
    PASS();
}

Test(spool, a_damaged_length_field_is_resynchronised_past)
{
    char hex[33], spool[400], *out = NULL, *err = NULL;
    long offs[16];
    cli_run_start(hex);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    for (int i = 1; i <= 5; i++)
        cli_log_spooled(hex, i);
    cli_spool_path(spool, sizeof(spool));
    cr_assert_eq(record_offsets(spool, offs, 16), 5);
    /* record 2's payload length now points far past the next records */
    flip_byte(spool, offs[1] + 13);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    int rc = fx_track(&d, NULL, NULL, &out, &err, "--json", "sync", NULL);
    cr_assert_eq(rc, 1, "sync: exit %d: %s", rc, err);
    cr_assert(strstr(out, "\"delivered\": 4"), "%s", out);
    cr_assert(strstr(out, "\"damaged\": 1"), "%s", out);
    free(out);
    free(err);
    int64_t want[] = {1, 3, 4, 5};
    assert_steps(hex, want, 4);
    PASS();
}

Test(spool, a_damaged_header_is_moved_aside_and_its_records_kept)
{
    char hex[33], spool[400], env[64], *out = NULL, *err = NULL;
    cli_run_start(hex);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    for (int i = 1; i <= 5; i++)
        cli_log_spooled(hex, i);
    cli_spool_path(spool, sizeof(spool));
    int fd = open(spool, O_RDWR);
    cr_assert_eq(pwrite(fd, "XXXXXXXX", 8, 0), 8);
    close(fd);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    /* a write with the daemon up works, delivers the salvaged records first
     * and says where the damaged file went */
    snprintf(env, sizeof(env), "TRACK_RUN_ID=%s", hex);
    const char *envs[] = {env, NULL};
    int rc = fx_track(&d, envs, NULL, &out, &err, "log-metric", "loss", "6", "--step", "6", NULL);
    cr_assert_eq(rc, 0, "a write after the header was damaged: exit %d: %s", rc, err);
    char *moved = strstr(err, "moved it to ");
    cr_assert_not_null(moved, "no warning naming the moved file: %s", err);
    cr_assert(strstr(err, "kept the 5 valid records"), "%s", err);
    char path[600];
    cr_assert_eq(sscanf(moved + strlen("moved it to "), "%599[^,]", path), 1);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "the damaged spool is not at %s", path);
    free(out);
    free(err);
    int64_t want[] = {1, 2, 3, 4, 5, 6};
    assert_steps(hex, want, 6);
    rc = fx_track(&d, NULL, NULL, &out, &err, "sync", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(out, "delivered 0 spooled requests\n");
    free(out);
    free(err);
    PASS();
}

/* ---- item 2: refused for good, refused for now ------------------------------ */

Test(spool, a_request_refused_for_good_goes_to_the_rejected_file)
{
    char hex[33], spool[400], rejected[420], env2[64], *out = NULL, *err = NULL;
    cli_run_start(hex);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    cli_log_spooled(hex, 1);
    /* a point for a run that does not exist */
    snprintf(env2, sizeof(env2), "TRACK_RUN_ID=%s", "0123456789abcdef0123456789abcdef");
    const char *envs2[] = {env2, NULL};
    int rc = fx_track(&d, envs2, NULL, &out, &err, "log-metric", "loss", "1", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    free(out);
    free(err);
    cli_log_spooled(hex, 2);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    rc = fx_track(&d, NULL, NULL, &out, &err, "sync", NULL);
    cr_assert_eq(rc, 1, "sync with a refused record: exit %d: %s", rc, err);
    cr_assert_str_eq(out, "delivered 2 spooled requests\n", "%s", out);
    cr_assert(strstr(err, "1 spooled request refused for good"), "%s", err);
    cr_assert(strstr(err, "NOT_FOUND"), "the reason is not given: %s", err);
    free(out);
    free(err);
    cli_spool_path(spool, sizeof(spool));
    snprintf(rejected, sizeof(rejected), "%s.rejected", spool);
    FILE *f = fopen(rejected, "r");
    cr_assert_not_null(f, "no rejected file at %s", rejected);
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof(line), f)) {
        lines++;
        cr_assert(strstr(line, "\tNOT_FOUND\t"), "%s", line);
        cr_assert(strstr(line, d.uri), "the line does not name the server: %s", line);
    }
    fclose(f);
    cr_assert_eq(lines, 1);
    struct stat sb;
    cr_assert_eq(stat(rejected, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "rejected file mode %o", sb.st_mode & 0777);
    int64_t want[] = {1, 2};
    assert_steps(hex, want, 2);
    /* nothing is left: the next sync says so */
    rc = fx_track(&d, NULL, NULL, &out, &err, "--json", "sync", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "\"delivered\": 0") && strstr(out, "\"rejected\": 0"), "%s", out);
    free(out);
    free(err);
    PASS();
}

/* ---- item 3: every record to its own server -------------------------------- */

Test(spool, each_spooled_record_goes_to_its_own_server_only)
{
    struct fx_daemon b;
    char spool[400], hex_a[33], hex_b[33], hex_t[33];
    struct track_err err = {0};
    track_run_id id;

    cr_assert_eq(fx_daemon_start(&b, NULL), 0);
    snprintf(spool, sizeof(spool), "%s/shared-spool.bin", d.dir);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    cr_assert_eq(fx_daemon_stop(&b), 0);
    /* one user, one spool, three servers: A and B (both down) and a TCP
     * address nobody listens on */
    const char *uris[3] = {d.uri, b.uri, "tcp://127.0.0.1:1"};
    char *hexes[3] = {hex_a, hex_b, hex_t};
    /* tcp:// is sealed: a client key, and a (made-up) pinned server key */
    char key[400], pk[TRACK_KEY_TEXT_BYTES], pin[TRACK_KEY_TEXT_BYTES], other[400];
    snprintf(key, sizeof(key), "%s/client.key", d.dir);
    snprintf(other, sizeof(other), "%s/server.key-not-used", d.dir);
    cr_assert_eq(track_keygen(key, pk, &err), 0, "%s", err.msg);
    cr_assert_eq(track_keygen(other, pin, &err), 0, "%s", err.msg);
    setenv("TRACK_KEY", key, 1);
    setenv("TRACK_SERVER_KEY", pin, 1);
    for (int i = 0; i < 3; i++) {
        struct track_client *c = fx_client_for(uris[i], spool, 500, 0);
        cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
        cr_assert_eq(err.code, TRACK_E_SPOOLED, "%s", err.msg);
        track_run_id_hex(&id, hexes[i]);
        for (int s = 0; s < 10; s++)
            track_log_metric(c, "loss", s, s, 0, &err);
        cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
        track_client_close(c);
    }
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);

    /* A's own client, writing with A up: its own records go first, the
     * others' stay, and its write is not held back behind them */
    struct track_client *ca = fx_client_for(d.uri, spool, 2000, 0);
    cr_assert_eq(track_run_use(ca, hex_a, &err), 0, "%s", err.msg);
    cr_assert_eq(track_set_tag(ca, "k", "v", &err), 0, "%s", err.msg);
    cr_assert_neq(err.code, TRACK_E_SPOOLED, "a write to a live A was spooled: %s", err.msg);
    int64_t reqs = 0, bytes = 0;
    cr_assert_eq(track_spool_pending(ca, &reqs, &bytes, &err), 0);
    cr_assert_eq(reqs, 4, "%lld left: B's and the TCP server's two each", (long long)reqs);
    cr_assert(run_exists(&d, hex_a), "A's run did not reach A");
    cr_assert(!run_exists(&d, hex_b), "B's run was delivered to A");
    cr_assert(!run_exists(&d, hex_t), "the TCP server's run was delivered to A");
    track_client_close(ca);

    /* a delivery of every server with only A up: B and the TCP server are
     * named unreachable */
    struct track_client *cs = fx_client_for(d.uri, spool, 500, 0);
    struct track_sync_report r;
    int rc = track_spool_deliver(cs, 1, &r, &err);
    cr_assert_eq(rc, TRACK_E_UNAVAILABLE, "%d %s", rc, err.msg);
    cr_assert_eq(r.delivered, 0);
    cr_assert_eq(r.kept, 4);
    cr_assert_eq(r.n_kept_reasons, 2, "%d reasons", r.n_kept_reasons);
    cr_assert(strstr(r.kept_reasons[0], b.uri) || strstr(r.kept_reasons[1], b.uri));
    cr_assert(strstr(r.kept_reasons[0], "tcp://127.0.0.1:1") ||
              strstr(r.kept_reasons[1], "tcp://127.0.0.1:1"));
    /* B comes up: its records go to B, never to A */
    cr_assert_eq(fx_daemon_restart(&b, NULL), 0);
    rc = track_spool_deliver(cs, 1, &r, &err);
    cr_assert_eq(rc, TRACK_E_UNAVAILABLE, "the TCP server's records are still kept: %s", err.msg);
    cr_assert_eq(r.delivered, 2);
    cr_assert_eq(r.kept, 2);
    track_client_close(cs);
    cr_assert(run_exists(&b, hex_b), "B's run did not reach B");
    cr_assert(!run_exists(&b, hex_a), "A's run reached B");
    cr_assert(!run_exists(&d, hex_b), "B's run reached A");
    int64_t st[16];
    cr_assert_eq(fx_metric_steps(&b, hex_b, "loss", st, 16), 10);
    cr_assert_eq(fx_metric_steps(&d, hex_a, "loss", st, 16), 10);
    fx_daemon_cleanup(&b, 0);
    PASS();
}

/* ---- item 4: a full spool keeps runs whole and the newest points ----------- */

static long long dropped_points_in(const char *msg)
{
    const char *p = strstr(msg, "metric batch");
    if (!p)
        return 0;
    p = strchr(p, '(');
    return p ? strtoll(p + 1, NULL, 10) : 0;
}

Test(spool, a_full_spool_keeps_the_run_start_and_the_newest_points)
{
    char spool[400], hex[33];
    track_run_id id;
    struct track_err err = {0};

    snprintf(spool, sizeof(spool), "%s/small-spool.bin", d.dir);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    struct track_opts o = {.server = d.uri,
                           .spool_path = spool,
                           .spool_max_bytes = 64 * 1024,
                           .flush_points = 100,
                           .timeout_ms = 200};
    struct track_client *c;
    cr_assert_eq(track_client_open(&o, &c, &err), 0);
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
    cr_assert_eq(err.code, TRACK_E_SPOOLED);
    track_run_id_hex(&id, hex);
    long long dropped = 0;
    for (int i = 0; i < 20000; i++) {
        struct track_err e = {0};
        cr_assert_eq(track_log_metric(c, "loss", (double)i, i, 0, &e), 0, "%s", e.msg);
        if (e.code == TRACK_E_SPOOLED) {
            cr_assert(strstr(e.msg, "and then the") == NULL, "dropped more than points: %s", e.msg);
            dropped += dropped_points_in(e.msg);
        }
    }
    cr_assert_gt(dropped, 0, "nothing was said to be dropped");
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    int sent = 0;
    cr_assert_eq(track_sync(c, &sent, &err), 0, "%s", err.msg);
    track_client_close(c);
    cr_assert(run_exists(&d, hex), "the run's start was dropped");
    static int64_t steps[20001];
    size_t n = fx_metric_steps(&d, hex, "loss", steps, 20001);
    /* exactly what was not said to be dropped arrived: the newest points */
    cr_assert_eq((long long)n, 20000 - dropped, "%zu stored, %lld said dropped", n, dropped);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(steps[i], (int64_t)(20000 - n + i), "point %zu has step %lld", i,
                     (long long)steps[i]);
    PASS();
}

/* ---- item 25: one deadline per call ---------------------------------------- */

Test(spool, a_spool_lock_held_elsewhere_costs_a_delivering_write_one_timeout)
{
    char spool[400];
    struct track_err err = {0};
    track_run_id id;

    snprintf(spool, sizeof(spool), "%s/lock-spool.bin", d.dir);
    struct track_client *c = fx_client_for(d.uri, spool, 300, 0);
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    cr_assert_eq(track_set_tag(c, "early", "1", &err), 0, "%s", err.msg);
    cr_assert_eq(err.code, TRACK_E_SPOOLED);
    track_client_close(c);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);

    /* another process holds the lock, as a stuck writer would */
    int ready[2], release[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(release), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        close(release[1]);
        int fd = open(spool, O_RDWR);
        char ch = 0;
        if (fd < 0 || flock(fd, LOCK_EX) < 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        while (read(release[0], &ch, 1) > 0)
            ;
        _exit(0);
    }
    close(ready[1]);
    close(release[0]);
    char ch;
    cr_assert_eq(read(ready[0], &ch, 1), 1, "the lock holder did not start");

    /* a fresh client with the daemon up: it delivers the spool before its
     * write, so it meets the lock there first, then again to append */
    c = fx_client_for(d.uri, spool, 300, 0);
    cr_assert_eq(track_run_use(c, "0123456789abcdef0123456789abcdef", &err), 0);
    long long t0 = fx_now_ms();
    int rc = track_set_tag(c, "k", "v", &err);
    long long took = fx_now_ms() - t0;
    cr_assert_eq(rc, TRACK_E_UNAVAILABLE, "rc %d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "held by another process"), "%s", err.msg);
    cr_assert_lt(took, 300 + 150, "the call took %lld ms with a timeout of 300", took);

    close(release[1]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the lock is free: the spooled tag is delivered, then the write */
    int64_t reqs = 0, bytes = 0;
    struct track_client *c2 = fx_client_for(d.uri, spool, 2000, 0);
    char hex[33];
    track_run_id_hex(&id, hex);
    cr_assert_eq(track_run_use(c2, hex, &err), 0);
    cr_assert_eq(track_set_tag(c2, "late", "1", &err), 0, "%s", err.msg);
    cr_assert_neq(err.code, TRACK_E_SPOOLED, "%s", err.msg);
    cr_assert_eq(track_spool_pending(c2, &reqs, &bytes, &err), 0);
    cr_assert_eq(reqs, 0, "%lld requests still spooled", (long long)reqs);
    struct track_result *res;
    struct track_run_info info;
    cr_assert_eq(track_run_get(c2, hex, &res, &info, &err), 0, "%s", err.msg);
    int early = 0;
    for (size_t i = 0; i < info.n_tags; i++)
        early |= strcmp(info.tags[i].key, "early") == 0;
    track_result_free(res);
    cr_assert(early, "the spooled tag was not delivered");
    track_client_close(c2);
    track_client_close(c);
    PASS();
}

/* ---- item 26: a flush of many keys ----------------------------------------- */

static void log_keys(struct track_client *c, int n)
{
    struct track_err err = {0};
    char key[32];
    for (int k = 0; k < n; k++) {
        snprintf(key, sizeof(key), "k%03d", k);
        cr_assert_eq(track_log_metric(c, key, k, 0, 0, &err), 0, "%s", err.msg);
    }
}

/* count of each key k000..k149 on run hex */
static void key_counts(const char *hex, int *counts, int n)
{
    struct track_client *c = fx_client_for(d.uri, d.spool, 5000, 1);
    struct track_result *res;
    struct track_run_info info;
    struct track_err err = {0};
    cr_assert_eq(track_run_get(c, hex, &res, &info, &err), 0, "%s", err.msg);
    memset(counts, 0, sizeof(int) * (size_t)n);
    for (size_t i = 0; i < info.n_metrics; i++) {
        int k = (int)strtol(info.metrics[i].key + 1, NULL, 10);
        if (k >= 0 && k < n)
            counts[k] = (int)info.metrics[i].count;
    }
    track_result_free(res);
    track_client_close(c);
}

Test(spool, a_flush_cut_after_its_first_batch_sends_nothing_twice)
{
    struct track_err err = {0};
    track_run_id id;
    char hex[33];
    int counts[150];

    struct track_client *c = fx_client_for(d.uri, d.spool, 300, 1);
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
    log_keys(c, 150); /* three batches: 64, 64, 22 keys */
    hook_daemon = &d;
    hook_refuse = 0;
    hook_sends = 0;
    hook_at = 1; /* the daemon dies as the second batch goes out */
    int rc = track_flush(c, &err);
    cr_assert_eq(rc, TRACK_E_UNAVAILABLE, "rc %d: %s", rc, err.msg);
    cr_assert_eq(hook_at, -1, "the flush sent fewer than two batches");
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    /* the client backs off a failed daemon for a moment: flush until it
     * takes the rest, with a deadline */
    long long until = fx_now_ms() + 10000;
    while ((rc = track_flush(c, &err)) == TRACK_E_UNAVAILABLE && fx_now_ms() < until) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(rc, 0, "%s", err.msg);
    key_counts(hex, counts, 150);
    for (int k = 0; k < 150; k++)
        cr_assert_eq(counts[k], 1, "key k%03d has %d points", k, counts[k]);
    track_client_close(c);
    PASS();
}

Test(spool, a_batch_refused_in_a_flush_does_not_drop_the_later_ones)
{
    struct track_err err = {0};
    track_run_id id;
    char hex[33];
    int counts[150];

    struct track_client *c = fx_client_for(d.uri, d.spool, 2000, 1);
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
    log_keys(c, 150);
    memcpy(hook_run, hex, 33);
    hook_refuse = 1;
    hook_sends = 0;
    hook_at = 1; /* the second batch names a run that does not exist */
    int rc = track_flush(c, &err);
    cr_assert_eq(rc, TRACK_E_NOT_FOUND, "rc %d: %s", rc, err.msg);
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    key_counts(hex, counts, 150);
    for (int k = 0; k < 150; k++)
        cr_assert_eq(counts[k], k >= 64 && k < 128 ? 0 : 1, "key k%03d has %d points", k,
                     counts[k]);
    track_client_close(c);
    PASS();
}

/* ---- file modes ------------------------------------------------------------ */

Test(spool, the_spool_is_private_whatever_the_umask)
{
    char dir[420], spool[480], rejected[500], *out = NULL, *err = NULL;
    char hex[33];
    cli_run_start(hex);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    mode_t old = umask(0); /* inherited by the track processes */
    const char *envs[] = {"TRACK_RUN_ID=0123456789abcdef0123456789abcdef", NULL};
    int rc = fx_track(&d, envs, NULL, &out, &err, "log-metric", "loss", "1", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    free(out);
    free(err);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    rc = fx_track(&d, NULL, NULL, &out, &err, "sync", NULL);
    cr_assert_eq(rc, 1, "the point for a missing run is refused: %s", err);
    free(out);
    free(err);
    umask(old);
    snprintf(dir, sizeof(dir), "%s/state/track", d.dir);
    cli_spool_path(spool, sizeof(spool));
    snprintf(rejected, sizeof(rejected), "%s.rejected", spool);
    struct stat sb;
    cr_assert_eq(stat(dir, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0700, "spool directory mode %o", sb.st_mode & 0777);
    cr_assert_eq(stat(spool, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "spool mode %o", sb.st_mode & 0777);
    cr_assert_eq(stat(rejected, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "rejected file mode %o", sb.st_mode & 0777);
    PASS();
}
