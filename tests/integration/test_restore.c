/*
 * test_restore.c: backup and restore never leave an empty or half database,
 * and the files they touch are the owner's alone. Every test runs the real
 * trackd and the real `track` CLI (or raw frames) as separate processes:
 *
 *  - `trackd --restore` after a SIGKILL keeps the old database whole (the
 *    kept copy alone, without any -wal, holds the data);
 *  - SIGKILL at every step of a restore (the test hook
 *    TRACK_TEST_RESTORE_KILL_AT), then a start: the old database or the
 *    restored one, each whole, never an empty one; a track.db missing
 *    beside a kept copy makes trackd refuse to start;
 *  - a killed backup leaves no partial file under its name, and what it
 *    left (PATH.tmp-PID, snapshots in the data directory) goes at the next
 *    backup or start;
 *  - the old Backup request that named a daemon-side path is refused and
 *    writes nothing; a backup taken while a client writes checks clean and
 *    restores;
 *  - under umask 000: the data directory 0700, track.db, -wal, -shm, the
 *    reserve and a backup 0600; a track.db made 0644 is closed again, and
 *    a data directory open to others is warned about once;
 *  - a full disk with 600 KB freed: writes resume.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"
#include "track.pb-c.h"

/* Copies a file; 0 or -1 (a missing source is -1). */
static int copy_file(const char *from, const char *to)
{
    char buf[1 << 16];
    int in = open(from, O_RDONLY), out, ok = 1;
    ssize_t n;
    if (in < 0)
        return -1;
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0) {
        close(in);
        return -1;
    }
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            ok = 0;
    close(in);
    close(out);
    return ok && n == 0 ? 0 : -1;
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    cr_assert_eq(lstat(path, &sb), 0, "%s: %s", path, strerror(errno));
    return sb.st_mode & 07777;
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* Daemons and a tmpfs a test leaves behind when an assertion ends it are
 * stopped, shown and removed by the suite's fini (the structs are static:
 * a failed assertion leaves the test's stack). */
static struct fx_daemon *live[16];
static int n_live, passed;
static char mounted[200];

#define PASS() (passed = 1)

static void track_live(struct fx_daemon *d)
{
    for (int i = 0; i < n_live; i++)
        if (live[i] == d)
            return;
    if (n_live < 16)
        live[n_live++] = d;
}

static int start_daemon(struct fx_daemon *d, const char *const *extra)
{
    int rc = fx_daemon_start(d, extra);
    track_live(d);
    return rc;
}

static void teardown(void)
{
    for (int i = 0; i < n_live; i++)
        if (live[i]->pid > 0 || !passed)
            fx_daemon_cleanup(live[i], !passed);
    if (mounted[0]) {
        umount(mounted);
        mounted[0] = '\0';
    }
}

TestSuite(restore, .fini = teardown);

/* A daemon struct for a data directory of the test's choosing. */
static void fx_for_dir(struct fx_daemon *d, const char *dir)
{
    track_live(d);
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s", dir);
    snprintf(d->uri, sizeof(d->uri), "ipc://%s/trackd.sock", dir);
    snprintf(d->log, sizeof(d->log), "%s/trackd.log", dir);
    snprintf(d->spool, sizeof(d->spool), "%s/spool.bin", dir);
}

static void start_run(struct fx_daemon *d, char hex[33])
{
    char *out = NULL, *err = NULL;
    int st = fx_track(d, NULL, NULL, &out, &err, "run", "start", "--experiment", "rs", NULL);
    cr_assert_eq(st, 0, "run start: %s", err);
    cr_assert_eq(strlen(out), 33, "run start printed: %s", out);
    memcpy(hex, out, 32);
    hex[32] = '\0';
    free(out);
    free(err);
}

static void log_metric(struct fx_daemon *d, const char *run, const char *key)
{
    char *out = NULL, *err = NULL;
    int st = fx_track(d, NULL, NULL, &out, &err, "--run", run, "log-metric", key, "1", NULL);
    cr_assert_eq(st, 0, "log-metric %s: %s", key, err);
    free(out);
    free(err);
}

/* 1 when the daemon has the point (run, key) at step 0. */
static int has_point(struct fx_daemon *d, const char *run, const char *key)
{
    char *out = NULL, *err = NULL;
    int st = fx_track(d, NULL, NULL, &out, &err, "metric", "history", run, key, "--csv", NULL);
    int yes = st == 0 && strstr(out, "\n0,") != NULL;
    free(out);
    free(err);
    return yes;
}

static int run_check(const char *dir, char **err_out)
{
    const char *argv[] = {TRACKD_BIN, "--check", "--data-dir", dir, NULL};
    return fx_run(argv, NULL, NULL, NULL, err_out);
}

static int run_restore(const char *dir, const char *from, const char *kill_at, char **err_out)
{
    char env[200];
    const char *argv[] = {TRACKD_BIN, "--data-dir", dir, "--restore", from, NULL};
    const char *envv[] = {env, NULL};
    snprintf(env, sizeof(env), "TRACK_TEST_RESTORE_KILL_AT=%s", kill_at ? kill_at : "");
    return fx_run(argv, envv, NULL, NULL, err_out);
}

/* The name of the first DIR entry starting with `prefix` and not ending in
 * -wal or -shm, into out; 0 when found. */
static int find_entry(const char *dir, const char *prefix, char *out, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = -1;
    while (d && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
            !(n > 4 &&
              (!strcmp(e->d_name + n - 4, "-wal") || !strcmp(e->d_name + n - 4, "-shm")))) {
            snprintf(out, len, "%s/%s", dir, e->d_name);
            rc = 0;
            break;
        }
    }
    if (d)
        closedir(d);
    return rc;
}

/* A backup of a fresh daemon holding run *run with the point "in_backup". */
static void make_backup(char backup[400], char run[33], char tmpdir[64])
{
    static struct fx_daemon s;
    char *o = NULL, *e = NULL;
    snprintf(tmpdir, 64, "/tmp/track-bk-XXXXXX");
    cr_assert(mkdtemp(tmpdir));
    snprintf(backup, 400, "%s/backup.db", tmpdir);
    cr_assert_eq(start_daemon(&s, NULL), 0);
    start_run(&s, run);
    log_metric(&s, run, "in_backup");
    cr_assert_eq(fx_track(&s, NULL, NULL, &o, &e, "backup", backup, NULL), 0, "backup: %s", e);
    free(o);
    free(e);
    fx_daemon_cleanup(&s, 0);
}

Test(restore, the_copy_kept_after_a_sigkill_holds_the_data_without_its_wal, .timeout = 120)
{
    char backup[400], brun[33], bdir[64], run[33], kept[1200], dir2[] = "/tmp/track-kept-XXXXXX";
    char db2[300];
    static struct fx_daemon d, k;
    char *e = NULL;
    int fresh = 0;

    make_backup(backup, brun, bdir);
    /* the point must be in the WAL only when trackd dies: trackd folds the
     * WAL in when idle for a second, so write and kill at once (and try
     * again in the rare case the fold came first) */
    for (int attempt = 0; attempt < 3 && !fresh; attempt++) {
        char db[400];
        struct stat sb;
        if (attempt)
            fx_daemon_cleanup(&d, 0);
        cr_assert_eq(start_daemon(&d, NULL), 0);
        start_run(&d, run);
        log_metric(&d, run, "before_kill");
        fx_daemon_kill(&d);
        snprintf(db, sizeof(db), "%s/track.db", d.dir);
        fresh = stat(db, &sb) == 0 && sb.st_size <= 4096;
    }
    cr_assert(fresh, "the data never stayed in the WAL only (precondition)");
    cr_assert_eq(run_restore(d.dir, backup, NULL, &e), 0, "restore: %s", e);
    free(e);
    cr_assert_eq(find_entry(d.dir, "track.db.before-restore-", kept, sizeof(kept)), 0,
                 "no kept copy in %s", d.dir);
    /* the kept file alone, as track.db of a new data directory */
    cr_assert(mkdtemp(dir2));
    snprintf(db2, sizeof(db2), "%s/track.db", dir2);
    cr_assert_eq(copy_file(kept, db2), 0);
    fx_for_dir(&k, dir2);
    cr_assert_eq(fx_daemon_restart(&k, NULL), 0, "trackd did not start on the kept copy");
    cr_assert(has_point(&k, run, "before_kill"),
              "the kept copy %s lost the point written before the SIGKILL", kept);
    fx_daemon_cleanup(&k, 0);
    /* and the restored database is the backup */
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    cr_assert(has_point(&d, brun, "in_backup"), "the restored database is not the backup");
    fx_daemon_cleanup(&d, 0);
    fx_rmtree(bdir);
    PASS();
}

Test(restore, sigkill_at_every_step_leaves_the_old_or_the_restored_database, .timeout = 280)
{
    static const char *const steps[] = {"marked",   "copied",     "checkpointed",
                                        "moving",   "wal-aside",  "shm-aside",
                                        "db-aside", "installing", "installed"};
    /* the first step at which the restore is finished rather than undone */
    const int first_forward = 3;
    char backup[400], brun[33], bdir[64], orun[33];
    static struct fx_daemon o;
    int n_steps = (int)(sizeof(steps) / sizeof(steps[0]));

    make_backup(backup, brun, bdir);
    cr_assert_eq(start_daemon(&o, NULL), 0);
    start_run(&o, orun);
    log_metric(&o, orun, "old_only");
    fx_daemon_kill(&o); /* a crashed daemon: its WAL is part of the data */

    for (int i = 0; i < n_steps; i++) {
        char dir[] = "/tmp/track-step-XXXXXX", from[400], to[400];
        static struct fx_daemon s;
        char *e = NULL;
        cr_assert(mkdtemp(dir));
        snprintf(from, sizeof(from), "%s/track.db", o.dir);
        snprintf(to, sizeof(to), "%s/track.db", dir);
        cr_assert_eq(copy_file(from, to), 0);
        snprintf(from, sizeof(from), "%s/track.db-wal", o.dir);
        snprintf(to, sizeof(to), "%s/track.db-wal", dir);
        copy_file(from, to);

        int st = run_restore(dir, backup, steps[i], &e);
        cr_assert_eq(st, 128 + SIGKILL, "step %s: the restore was not killed there (status %d): %s",
                     steps[i], st, e);
        free(e);
        fx_for_dir(&s, dir);
        cr_assert_eq(fx_daemon_restart(&s, NULL), 0, "step %s: trackd did not start after it",
                     steps[i]);
        int old = has_point(&s, orun, "old_only"), restored = has_point(&s, brun, "in_backup");
        cr_assert(old || restored, "step %s: trackd serves neither database (an empty one)",
                  steps[i]);
        cr_assert(!(old && restored), "step %s: both databases at once?", steps[i]);
        char *log = fx_read_text(s.log);
        if (i < first_forward) {
            cr_assert(old, "step %s: expected the old database back", steps[i]);
            cr_assert(strstr(log, "rolled back"), "step %s: log: %s", steps[i], log);
        } else {
            cr_assert(restored, "step %s: expected the restore finished", steps[i]);
            cr_assert(strstr(log, "completed"), "step %s: log: %s", steps[i], log);
        }
        free(log);
        cr_assert_eq(fx_daemon_stop(&s), 0);
        char journal[400], kept[1200];
        snprintf(journal, sizeof(journal), "%s/restore.journal", dir);
        cr_assert(!exists(journal), "step %s: the journal is still there", steps[i]);
        if (restored) {
            /* the old database, kept aside, is whole */
            static struct fx_daemon k;
            char dir2[] = "/tmp/track-kept-XXXXXX", db2[300], w1[1300], w2[320];
            cr_assert_eq(find_entry(dir, "track.db.before-restore-", kept, sizeof(kept)), 0);
            cr_assert(mkdtemp(dir2));
            snprintf(db2, sizeof(db2), "%s/track.db", dir2);
            cr_assert_eq(copy_file(kept, db2), 0);
            snprintf(w1, sizeof(w1), "%s-wal", kept);
            snprintf(w2, sizeof(w2), "%s-wal", db2);
            copy_file(w1, w2);
            fx_for_dir(&k, dir2);
            cr_assert_eq(fx_daemon_restart(&k, NULL), 0);
            cr_assert(has_point(&k, orun, "old_only"), "step %s: the kept copy lost data",
                      steps[i]);
            fx_daemon_cleanup(&k, 0);
        }
        cr_assert_eq(run_check(dir, &e), 0, "step %s: check: %s", steps[i], e);
        free(e);
        fx_daemon_cleanup(&s, 0);
    }
    cr_log_info("restore kill points tested: %d steps", n_steps);
    fx_daemon_cleanup(&o, 0);
    fx_rmtree(bdir);
    PASS();
}

Test(restore, a_missing_database_beside_a_kept_copy_is_never_replaced_by_an_empty_one,
     .timeout = 60)
{
    char dir[] = "/tmp/track-miss-XXXXXX", kept[300];
    static struct fx_daemon d;
    cr_assert(mkdtemp(dir));
    snprintf(kept, sizeof(kept), "%s/track.db.before-restore-1", dir);
    int fd = open(kept, O_WRONLY | O_CREAT, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    fx_for_dir(&d, dir);
    cr_assert_neq(fx_daemon_restart(&d, NULL), 0, "trackd started over a restore left undone");
    char *log = fx_read_text(d.log), db[300];
    cr_assert(strstr(log, "refusing") && strstr(log, "before-restore-1"), "log: %s", log);
    free(log);
    snprintf(db, sizeof(db), "%s/track.db", dir);
    cr_assert(!exists(db), "an empty track.db was created");
    fx_daemon_cleanup(&d, 0);
    PASS();
}

/* Spawns argv in the background, output to /dev/null. */
static pid_t spawn_quiet(const char *const *argv, const char *const *env)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        for (int i = 0; env && env[i]; i++)
            putenv((char *)(uintptr_t)env[i]);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    return pid;
}

/* Logs `points` incompressible points (about 16 bytes each stored). */
static void fill(struct fx_daemon *d, const char *run, long points)
{
    struct track_opts o = {.server = d->uri, .no_spool = 1, .timeout_ms = 20000};
    struct track_client *c;
    struct track_err err = {0};
    uint64_t x = 88172645463325252ULL;
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(track_run_use(c, run, &err), 0, "%s", err.msg);
    for (long i = 0; i < points; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof(v));
        track_log_metric(c, "noise", v == v ? v : 0.5, i, 0, &err);
    }
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    track_client_close(c);
}

Test(restore, a_killed_backup_leaves_no_partial_file_and_the_next_one_cleans_up, .timeout = 200)
{
    static struct fx_daemon d;
    char run[33], file[400], tmp_dead[450], tmp_live[450], snap[450], bdir[400];
    char *o = NULL, *e = NULL;

    cr_assert_eq(start_daemon(&d, NULL), 0);
    start_run(&d, run);
    fill(&d, run, 400000); /* several MiB: several chunks, time to kill in between */
    snprintf(file, sizeof(file), "%s/out.db", d.dir);

    /* a client killed while it receives: nothing under the final name */
    int killed_mid = 0;
    for (int attempt = 0; attempt < 5 && !killed_mid; attempt++) {
        char env[420];
        snprintf(env, sizeof(env), "XDG_STATE_HOME=%s/state", d.dir);
        const char *argv[] = {TRACK_BIN, "--server", d.uri, "backup", file, NULL};
        const char *envv[] = {env, "TRACK_NO_AUTOSTART=1", NULL};
        pid_t pid = spawn_quiet(argv, envv);
        char tmp[450];
        snprintf(tmp, sizeof(tmp), "%s.tmp-%d", file, (int)pid);
        long long deadline = fx_now_ms() + 20000;
        while (!exists(tmp) && !exists(file) && fx_now_ms() < deadline)
            fx_sleep_ms(1);
        killed_mid = exists(tmp) && !exists(file);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (killed_mid) {
            cr_assert(!exists(file), "a killed backup left a file under its final name");
            cr_assert(exists(tmp), "the killed backup's tmp file is the leftover under test");
            snprintf(tmp_dead, sizeof(tmp_dead), "%s", tmp);
        } else {
            unlink(file);
        }
    }
    cr_assert(killed_mid, "no backup could be killed while it received");
    /* a tmp of a live process is someone's backup under way: kept */
    snprintf(tmp_live, sizeof(tmp_live), "%s.tmp-%d", file, (int)getppid());
    close(open(tmp_live, O_WRONLY | O_CREAT, 0600));

    cr_assert_eq(fx_track(&d, NULL, NULL, &o, &e, "backup", file, NULL), 0, "backup: %s", e);
    free(o);
    free(e);
    cr_assert(!exists(tmp_dead), "the killed backup's %s is still there", tmp_dead);
    cr_assert(exists(tmp_live), "a live process's tmp file was removed");
    unlink(tmp_live);

    /* trackd killed while it makes the snapshot: what it left in its
     * backups/ is gone at the next start, and the client wrote nothing */
    snprintf(bdir, sizeof(bdir), "%s/backups", d.dir);
    char file2[420];
    snprintf(file2, sizeof(file2), "%s/out2.db", d.dir);
    int killed_daemon = 0;
    for (int attempt = 0; attempt < 5 && !killed_daemon; attempt++) {
        char env[420];
        snprintf(env, sizeof(env), "XDG_STATE_HOME=%s/state", d.dir);
        const char *argv[] = {TRACK_BIN, "--server", d.uri, "backup", file2, NULL};
        const char *envv[] = {env, "TRACK_NO_AUTOSTART=1", NULL};
        pid_t pid = spawn_quiet(argv, envv);
        long long deadline = fx_now_ms() + 20000;
        char seen[1200] = "";
        while (find_entry(bdir, "snapshot-", seen, sizeof(seen)) != 0 && !exists(file2) &&
               fx_now_ms() < deadline)
            ;
        killed_daemon = seen[0] != '\0';
        fx_daemon_kill(&d);
        /* the client would wait for its answer from a restarted trackd */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
        if (killed_daemon) {
            cr_assert(!exists(seen), "%s, left by a killed trackd, is still there", seen);
            cr_assert(!exists(file2), "a backup whose daemon died left %s", file2);
        }
        unlink(file2);
    }
    cr_assert(killed_daemon, "trackd could not be killed while it made a snapshot");

    /* and a leftover of any name there */
    cr_assert_eq(fx_daemon_stop(&d), 0);
    mkdir(bdir, 0700);
    snprintf(snap, sizeof(snap), "%s/snapshot-0123.db.tmp-99999", bdir);
    close(open(snap, O_WRONLY | O_CREAT, 0600));
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    cr_assert(!exists(snap), "a snapshot left by a killed trackd is still in %s", bdir);

    /* the backup is whole: it checks clean as a database of its own */
    char dir2[] = "/tmp/track-bchk-XXXXXX", db2[300];
    cr_assert(mkdtemp(dir2));
    snprintf(db2, sizeof(db2), "%s/track.db", dir2);
    cr_assert_eq(copy_file(file, db2), 0);
    cr_assert_eq(run_check(dir2, &e), 0, "the backup fails its check: %s", e);
    free(e);
    fx_rmtree(dir2);
    fx_daemon_cleanup(&d, 0);
    PASS();
}

Test(restore, the_old_backup_request_naming_a_daemon_side_path_is_refused, .timeout = 60)
{
    static struct fx_daemon d;
    char target[400];
    uint8_t rid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

    cr_assert_eq(start_daemon(&d, NULL), 0);
    snprintf(target, sizeof(target), "%s/attacker-chosen", d.dir);
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Backup b = TRACK__V1__BACKUP__INIT;
    b.path = target;
    rq.request_id.data = rid;
    rq.request_id.len = 16;
    rq.op_case = TRACK__V1__REQUEST__OP_BACKUP;
    rq.backup = &b;
    size_t len = track__v1__request__get_packed_size(&rq);
    uint8_t *buf = malloc(len);
    track__v1__request__pack(&rq, buf);

    int s = nn_socket(AF_SP, NN_REQ), t = 10000;
    cr_assert_geq(s, 0);
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &t, sizeof(t));
    cr_assert_geq(nn_connect(s, d.uri), 0);
    cr_assert_eq(nn_send(s, buf, len, 0), (int)len);
    void *reply = NULL;
    int n = nn_recv(s, &reply, NN_MSG, 0);
    cr_assert_geq(n, 0, "no reply: %s", nn_strerror(nn_errno()));
    Track__V1__Response *rs = track__v1__response__unpack(NULL, (size_t)n, reply);
    cr_assert_not_null(rs);
    cr_assert(rs->error && rs->error->code == TRACK__V1__CODE__INVALID_ARGUMENT,
              "the path request was not refused (code %d)", rs->error ? (int)rs->error->code : 0);
    cr_assert(strstr(rs->error->message, "track backup"), "message: %s", rs->error->message);
    track__v1__response__free_unpacked(rs, NULL);
    nn_freemsg(reply);
    nn_close(s);
    free(buf);
    fx_sleep_ms(200); /* a write would have been done before the reply; make sure */
    cr_assert(!exists(target), "trackd wrote a file at the path a client named");
    fx_daemon_cleanup(&d, 0);
    PASS();
}

Test(restore, a_backup_taken_while_writing_checks_clean_and_restores, .timeout = 200)
{
    static struct fx_daemon d, r;
    char run[33], spool[400], backup[400];
    char *o = NULL, *e = NULL;

    cr_assert_eq(start_daemon(&d, NULL), 0);
    start_run(&d, run);
    fill(&d, run, 150000); /* bigger than one chunk */
    log_metric(&d, run, "marker");
    snprintf(spool, sizeof(spool), "%s/spool.bin", d.dir);
    const char *argv[] = {
        STRESS_CLIENT_BIN, "--server", d.uri, "--run",   run,   "--key",      "loss", "--points",
        "40000",           "--batch",  "200", "--spool", spool, "--sleep-us", "20",   NULL};
    pid_t pid = spawn_quiet(argv, NULL);
    fx_sleep_ms(200);
    snprintf(backup, sizeof(backup), "%s/backup.db", d.dir);
    cr_assert_eq(fx_track(&d, NULL, NULL, &o, &e, "backup", backup, NULL), 0, "backup: %s", e);
    free(o);
    free(e);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer failed");
    struct stat sb;
    cr_assert_eq(stat(backup, &sb), 0);
    cr_assert_gt(sb.st_size, 1 << 20, "the backup (%lld bytes) took one chunk only",
                 (long long)sb.st_size);

    cr_assert_eq(start_daemon(&r, NULL), 0);
    fx_daemon_stop(&r);
    cr_assert_eq(run_restore(r.dir, backup, NULL, &e), 0, "restore: %s", e);
    free(e);
    cr_assert_eq(run_check(r.dir, &e), 0, "the restored copy fails its check: %s", e);
    free(e);
    cr_assert_eq(fx_daemon_restart(&r, NULL), 0);
    cr_assert(has_point(&r, run, "marker"), "the marker is missing from the backup");
    fx_daemon_cleanup(&r, 0);
    fx_daemon_cleanup(&d, 0);
    PASS();
}

Test(restore, files_are_private_whatever_the_umask, .timeout = 120)
{
    static struct fx_daemon d;
    char data[400], p[500], run[33];
    char *o = NULL, *e = NULL;

    umask(0);
    cr_assert_eq(start_daemon(&d, NULL), 0);
    fx_daemon_stop(&d);
    snprintf(data, sizeof(data), "%s/data", d.dir);
    const char *args[] = {"--data-dir", data, NULL};
    cr_assert_eq(fx_daemon_restart(&d, args), 0);
    start_run(&d, run);
    log_metric(&d, run, "x");
    cr_assert_eq(mode_of(data), 0700, "data directory mode %o", mode_of(data));
    snprintf(p, sizeof(p), "%s/track.db", data);
    cr_assert_eq(mode_of(p), 0600, "track.db mode %o", mode_of(p));
    snprintf(p, sizeof(p), "%s/track.db-wal", data);
    cr_assert_eq(mode_of(p), 0600, "track.db-wal mode %o", mode_of(p));
    snprintf(p, sizeof(p), "%s/track.db-shm", data);
    cr_assert_eq(mode_of(p), 0600, "track.db-shm mode %o", mode_of(p));
    snprintf(p, sizeof(p), "%s/trackd.lock", data);
    cr_assert_eq(mode_of(p), 0600, "trackd.lock mode %o", mode_of(p));
    snprintf(p, sizeof(p), "%s/backup.db", d.dir);
    cr_assert_eq(fx_track(&d, NULL, NULL, &o, &e, "backup", p, NULL), 0, "backup: %s", e);
    free(o);
    free(e);
    cr_assert_eq(mode_of(p), 0600, "backup file mode %o", mode_of(p));
    snprintf(p, sizeof(p), "%s/backups", data);
    cr_assert_eq(mode_of(p), 0700, "backups/ mode %o", mode_of(p));
    snprintf(p, sizeof(p), "%s/reserve", data);
    cr_assert_eq(mode_of(p), 0600, "reserve mode %o", mode_of(p));

    /* a database made readable by others is closed again; an open data
     * directory is named in one warning */
    cr_assert_eq(fx_daemon_stop(&d), 0);
    snprintf(p, sizeof(p), "%s/track.db", data);
    chmod(p, 0644);
    chmod(data, 0755);
    unlink(d.log);
    cr_assert_eq(fx_daemon_restart(&d, args), 0);
    cr_assert_eq(mode_of(p), 0600, "track.db left at mode %o", mode_of(p));
    char *log = fx_read_text(d.log);
    cr_assert_eq(fx_count_of(log, "open to others"), 1, "log: %s", log);
    free(log);
    fx_daemon_cleanup(&d, 0);
    PASS();
}

Test(restore, writes_resume_after_600_kb_are_freed_on_a_full_disk, .timeout = 200)
{
    char dir[] = "/tmp/track-full6-XXXXXX", data[200], big[320], small[320];
    static struct fx_daemon d;
    static char block[64 * 1024];

    fx_tmpfs(dir, data, sizeof(data), "size=24m");
    snprintf(mounted, sizeof(mounted), "%s", data);
    track_live(&d);
    fx_daemon_start_on(&d, data, dir);

    /* leave about 3 MiB for data, plus 600 KB that can be given back */
    struct statvfs vf;
    cr_assert_eq(statvfs(data, &vf), 0);
    long long avail = (long long)vf.f_bavail * (long long)vf.f_frsize;
    long long fill_bytes = avail - (3LL << 20) - 600 * 1024;
    cr_assert_gt(fill_bytes, 0, "tmpfs has %lld bytes free", avail);
    memset(block, 0x5a, sizeof(block));
    snprintf(big, sizeof(big), "%s/big-filler", data);
    snprintf(small, sizeof(small), "%s/small-filler", data);
    FILE *f = fopen(big, "w");
    for (long long w = 0; w + (long long)sizeof(block) <= fill_bytes; w += sizeof(block))
        fwrite(block, 1, sizeof(block), f);
    fclose(f);
    f = fopen(small, "w");
    for (int i = 0; i < 600 * 1024 / (int)sizeof(block) + 1; i++)
        fwrite(block, 1, sizeof(block), f);
    fclose(f);

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
    track_client_close(c);
    fx_sleep_ms(1500); /* what trackd does on its own with a full disk, before space comes */

    unlink(small);
    /* as while a person frees space: trackd's idle upkeep (its checkpoint)
     * runs for a few seconds before the next write comes */
    fx_sleep_ms(3000);
    long long t0 = fx_now_ms(), deadline = t0 + 20000;
    int ok = 0, tries = 0;
    while (!ok && fx_now_ms() < deadline) {
        cr_assert_eq(track_client_open(&o, &c, &err), 0, "%s", err.msg);
        char hex[33];
        track_run_id_hex(&id, hex);
        cr_assert_eq(track_run_use(c, hex, &err), 0, "%s", err.msg);
        /* a batch like those that filled the disk: larger than what a
         * failed commit leaves unused at the WAL's end, less than 600 KB */
        for (int i = 0; i < 20000; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            double v;
            memcpy(&v, &x, sizeof(v));
            track_log_metric(c, "after", v == v ? v : 0.5, i, 0, &err);
        }
        ok = track_flush(c, &err) == 0;
        tries++;
        track_client_close(c);
        if (!ok)
            fx_sleep_ms(250);
    }
    cr_assert(ok, "writes did not resume within 20 s of freeing 600 KB (%d tries): %s", tries,
              err.msg);
    cr_log_info("writes resumed %lld ms after 600 KB were freed (%d tries)", fx_now_ms() - t0,
                tries);
    char *log = fx_read_text(d.log);
    int warnings = (int)fx_count_of(log, "warn store");
    cr_assert_leq(warnings, 6, "%d store warnings in ~%lld s: %s", warnings,
                  (fx_now_ms() - t0) / 1000 + 2, log);
    free(log);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    char *e2 = NULL;
    cr_assert_eq(run_check(data, &e2), 0, "trackd --check after a full disk: %s", e2);
    free(e2);
    umount(data);
    mounted[0] = '\0';
    fx_rmtree(dir);
    PASS();
}
