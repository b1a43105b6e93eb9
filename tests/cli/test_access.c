/*
 * test_access.c: who may reach a trackd, tried with the built `trackd` and
 * `track` binaries:
 *   - the default socket's directory (XDG_RUNTIME_DIR unset, so
 *     $TRACK_TMPDIR/track-<uid>) made by someone else, open to others, a
 *     symlink or owned by another uid: the CLI and trackd refuse, naming
 *     the path, owner and mode; when absent trackd makes it 0700;
 *   - tcp:// is sealed and may listen anywhere; --plain-tcp (tests) is refused
 *     beyond loopback and warned about on loopback;
 *   - the socket file's mode follows --socket-mode / socket_mode;
 *   - a second trackd on a live socket refuses to start and leaves the first
 *     reachable; a stale socket file is replaced;
 *   - autostart: a personal trackd is started and answers; one that cannot
 *     start (its data directory locked) is reported with its reason within
 *     the call's timeout;
 *   - a socket the caller may not open is "permission denied", tried as uid
 *     65534 (the tests run as root, which no permission stops).
 *
 * Each test runs in its own process (Criterion forks), so the environment
 * is changed in place and inherited by the programs started.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define NOBODY 65534

static char root[256];     /* temp area of the test */
static char sockdir[320];  /* $TRACK_TMPDIR/track-<uid> */
static char sockpath[400]; /* sockdir/trackd.sock */
static struct fx_daemon D; /* a daemon some tests start with the fixture */

/* 1 when `needle` appears in the file within ms. */
static int wait_log(const char *path, const char *needle, int ms)
{
    long long end = fx_now_ms() + ms;
    for (;;) {
        char *text = fx_read_text(path);
        int found = strstr(text, needle) != NULL;
        free(text);
        if (found)
            return 1;
        if (fx_now_ms() >= end)
            return 0;
        fx_sleep_ms(10);
    }
}

/* A process started with stdout+stderr into `log`. */
struct proc {
    pid_t pid;
    char log[400];
};

static int spawn(struct proc *p, const char *const *argv, const char *log)
{
    snprintf(p->log, sizeof(p->log), "%s", log);
    fflush(NULL);
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    return 0;
}

/* Waits up to ms for the process to exit: its status (0..255, 128+sig), or
 * -2 when still running at the deadline (it is then killed). */
static int wait_bounded(struct proc *p, int ms)
{
    long long end = fx_now_ms() + ms;
    int st;
    while (fx_now_ms() < end) {
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        fx_sleep_ms(10);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    return -2;
}

/* Waits up to ms until path accepts connections or the process exits. */
static int wait_listening(struct proc *p, const char *path, int ms)
{
    long long end = fx_now_ms() + ms;
    int st;
    while (fx_now_ms() < end) {
        if (fx_sock_alive(path))
            return 1;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            return 0;
        }
        fx_sleep_ms(10);
    }
    return 0;
}

static int stop(struct proc *p)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    return wait_bounded(p, 10000);
}

/* Runs trackd with args (NULL-terminated) until it exits (bounded to 10 s,
 * -2 if it was still running); its output in *out (caller frees). */
static int run_trackd(char **out, const char *data_dir, ...)
{
    const char *argv[32];
    char log[400];
    struct proc p;
    va_list ap;
    int n = 0, rc;

    argv[n++] = TRACKD_BIN;
    argv[n++] = "--data-dir";
    argv[n++] = data_dir;
    va_start(ap, data_dir);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 31;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    snprintf(log, sizeof(log), "%s/run-trackd.log", root);
    cr_assert_eq(spawn(&p, argv, log), 0);
    rc = wait_bounded(&p, 10000);
    *out = fx_read_text(log);
    return rc;
}

/* Runs the CLI on its default server (no --server), autostart off unless
 * the test unset TRACK_NO_AUTOSTART itself. */
static int run_track(char **out, char **err, const char *a1, const char *a2)
{
    const char *argv[] = {TRACK_BIN, a1, a2, NULL};
    return fx_run(argv, NULL, NULL, out, err);
}

static void setup(void)
{
    snprintf(root, sizeof(root), "/tmp/track-access-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    char tmp[280], env[400];
    snprintf(tmp, sizeof(tmp), "%s/tmp", root);
    cr_assert_eq(mkdir(tmp, 01777), 0);
    chmod(tmp, 01777);
    setenv("TRACK_TMPDIR", tmp, 1);
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("TRACK_SERVER");
    setenv("TRACK_NO_AUTOSTART", "1", 1);
    snprintf(env, sizeof(env), "%s/state", root);
    setenv("XDG_STATE_HOME", env, 1);
    snprintf(env, sizeof(env), "%s/home", root);
    setenv("HOME", env, 1);
    snprintf(sockdir, sizeof(sockdir), "%s/track-%u", tmp, (unsigned)getuid());
    snprintf(sockpath, sizeof(sockpath), "%s/trackd.sock", sockdir);
    memset(&D, 0, sizeof(D));
}

static void teardown(void)
{
    if (D.dir[0])
        fx_daemon_cleanup(&D, 0);
    fx_rmtree(root);
}

TestSuite(socket_dir, .init = setup, .fini = teardown, .timeout = 60);

static void data_dir(char *buf, size_t len)
{
    snprintf(buf, len, "%s/data", root);
}

/* Both the CLI and trackd refuse the directory as it is now, with a message
 * naming it and `detail` (its owner or mode). */
static void assert_both_refuse(const char *detail)
{
    char *out = NULL, *err = NULL, dd[300];
    int rc = run_track(&out, &err, "status", NULL);
    cr_expect_neq(rc, 0, "track status used an unsafe socket directory");
    cr_expect(strstr(err, "unsafe socket directory") && strstr(err, sockdir) && strstr(err, detail),
              "track's message names neither the path nor \"%s\": %s", detail, err);
    free(out);
    free(err);

    data_dir(dd, sizeof(dd));
    rc = run_trackd(&out, dd, NULL);
    cr_expect_eq(rc, 1, "trackd did not refuse the unsafe directory (status %d): %s", rc, out);
    cr_expect(strstr(out, "unsafe socket directory") && strstr(out, sockdir) && strstr(out, detail),
              "trackd's message names neither the path nor \"%s\": %s", detail, out);
    free(out);
}

Test(socket_dir, open_to_others_is_refused_by_cli_and_daemon)
{
    cr_assert_eq(mkdir(sockdir, 0777), 0);
    chmod(sockdir, 0777);
    assert_both_refuse("mode 0777");
    cr_expect_eq(access(sockpath, F_OK), -1, "trackd bound a socket in a directory open to all");
}

Test(socket_dir, group_access_is_refused)
{
    cr_assert_eq(mkdir(sockdir, 0750), 0);
    chmod(sockdir, 0750);
    assert_both_refuse("mode 0750");
}

Test(socket_dir, owned_by_another_user_is_refused)
{
    cr_assert_eq(mkdir(sockdir, 0700), 0);
    cr_assert_eq(chown(sockdir, NOBODY, NOBODY), 0);
    assert_both_refuse("owner uid 65534");
}

Test(socket_dir, symlink_is_refused)
{
    char target[320];
    snprintf(target, sizeof(target), "%s/elsewhere", root);
    cr_assert_eq(mkdir(target, 0700), 0);
    cr_assert_eq(symlink(target, sockdir), 0);
    assert_both_refuse("a symlink");
}

/* The attack itself: another user made the directory first, open to all,
 * and listens in it. A write with a secret must not reach them. */
Test(socket_dir, hijacker_listening_there_receives_nothing)
{
    char *out = NULL, *err = NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    cr_assert_eq(mkdir(sockdir, 0777), 0);
    chmod(sockdir, 0777);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    cr_assert_lt(strlen(sockpath), sizeof(sa.sun_path));
    memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(lfd, 16), 0);
    cr_assert_eq(chown(sockdir, NOBODY, NOBODY), 0);
    cr_assert_eq(chown(sockpath, NOBODY, NOBODY), 0);

    const char *argv[] = {TRACK_BIN, "run", "start", "--param", "api_key=s3cret", NULL};
    int rc = fx_run(argv, NULL, NULL, &out, &err);
    cr_expect_neq(rc, 0, "run start went ahead on a hijacked socket directory: %s", err);
    cr_expect(strstr(err, "unsafe socket directory") && strstr(err, sockdir) &&
                  strstr(err, "owner uid 65534") && strstr(err, "mode 0777"),
              "%s", err);
    cr_expect(!strstr(err, "spool"), "the write was spooled instead of refused: %s", err);
    int cfd = accept(lfd, NULL, NULL);
    cr_expect(cfd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
              "the hijacker's listener got a connection");
    if (cfd >= 0)
        close(cfd);
    close(lfd);
    free(out);
    free(err);
}

Test(socket_dir, absent_is_made_private_and_served)
{
    char dd[300], log[400], *out = NULL, *err = NULL;
    struct proc p;
    struct stat sb;

    data_dir(dd, sizeof(dd));
    snprintf(log, sizeof(log), "%s/trackd.out", root);
    const char *argv[] = {TRACKD_BIN, "--data-dir", dd, NULL};
    cr_assert_eq(spawn(&p, argv, log), 0);
    cr_assert(wait_listening(&p, sockpath, 10000), "trackd did not listen on %s", sockpath);
    cr_assert_eq(lstat(sockdir, &sb), 0);
    cr_expect(S_ISDIR(sb.st_mode));
    cr_expect_eq(sb.st_mode & 07777, 0700, "socket directory mode %o", sb.st_mode & 07777);
    cr_expect_eq(sb.st_uid, getuid());
    int rc = run_track(&out, &err, "status", NULL);
    cr_expect_eq(rc, 0, "track status on the default socket: %s", err);
    free(out);
    free(err);
    cr_expect_eq(stop(&p), 0, "trackd did not exit 0: %s", fx_read_text(log));
}

/* ---- plain tcp:// (--plain-tcp) only on loopback ----------------------------- */

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

TestSuite(tcp, .init = setup, .fini = teardown, .timeout = 60);

Test(tcp, every_interface_is_refused)
{
    char dd[300], uri[64], *out = NULL;
    const char *hosts[] = {"0.0.0.0", "*", "192.0.2.1"};
    data_dir(dd, sizeof(dd));
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        snprintf(uri, sizeof(uri), "tcp://%s:%d", hosts[i], free_port());
        int rc = run_trackd(&out, dd, "--listen", uri, "--plain-tcp", NULL);
        cr_expect_eq(rc, 1, "trackd --listen %s: status %d: %s", uri, rc, out);
        cr_expect(strstr(out, "refusing to listen on") && strstr(out, uri) &&
                      strstr(out, "--plain-tcp"),
                  "no clear refusal for %s: %s", uri, out);
        free(out);
    }
}

Test(tcp, loopback_is_served_with_a_warning)
{
    char uri[64], *out = NULL, *err = NULL;
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", free_port());
    const char *extra[] = {"--listen", uri, "--plain-tcp", NULL};
    cr_assert_eq(fx_daemon_start(&D, extra), 0, "trackd refused loopback tcp");
    char listening[80];
    snprintf(listening, sizeof(listening), "listening uri=%s", uri);
    cr_assert(wait_log(D.log, listening, 5000), "trackd does not listen on %s", uri);
    char *log = fx_read_text(D.log);
    cr_expect(strstr(log, "warn main: ") && strstr(log, uri) && strstr(log, "plain frames"),
              "no warning about %s at start: %s", uri, log);
    free(log);
    /* and it answers there */
    const char *argv[] = {TRACK_BIN, "--server", uri, "status", NULL};
    const char *env[] = {"TRACK_TEST_PLAIN_TCP=1", NULL};
    int rc = fx_run(argv, env, NULL, &out, &err);
    cr_expect_eq(rc, 0, "track status over %s: %s", uri, err);
    free(out);
    free(err);
    cr_expect_eq(fx_daemon_stop(&D), 0);
}

Test(tcp, localhost_is_served_on_127_0_0_1)
{
    char uri[64], *out = NULL, *err = NULL;
    int port = free_port();
    snprintf(uri, sizeof(uri), "tcp://localhost:%d", port);
    const char *extra[] = {"--listen", uri, "--plain-tcp", NULL};
    cr_assert_eq(fx_daemon_start(&D, extra), 0, "trackd refused %s", uri);
    char bound[64];
    snprintf(bound, sizeof(bound), "listening uri=tcp://127.0.0.1:%d", port);
    cr_expect(wait_log(D.log, bound, 5000), "no \"%s\" in the log", bound);
    const char *argv[] = {TRACK_BIN, "--server", uri, "status", NULL};
    const char *env[] = {"TRACK_TEST_PLAIN_TCP=1", NULL};
    int rc = fx_run(argv, env, NULL, &out, &err);
    cr_expect_eq(rc, 0, "track status over %s: %s", uri, err);
    free(out);
    free(err);
    cr_expect_eq(fx_daemon_stop(&D), 0);
}

/* Every spelling of loopback passes the check (--check: nothing is bound). */
Test(tcp, loopback_spellings_are_accepted)
{
    char uri[64], *out = NULL;
    const char *hosts[] = {"127.0.0.1", "127.3.4.5", "[::1]", "localhost"};
    cr_assert_eq(fx_daemon_start(&D, NULL), 0);
    cr_assert_eq(fx_daemon_stop(&D), 0);
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        snprintf(uri, sizeof(uri), "tcp://%s:%d", hosts[i], 40000 + (int)i);
        int rc = run_trackd(&out, D.dir, "--listen", uri, "--plain-tcp", "--check", NULL);
        cr_expect_eq(rc, 0, "%s: status %d: %s", uri, rc, out);
        cr_expect(!strstr(out, "refusing") && strstr(out, "plain frames"), "%s: %s", uri, out);
        free(out);
    }
}

/* Sealed tcp:// (no --plain-tcp) may listen on every interface: only keys
 * of users in the store get in. Tried with --check, which validates the
 * listeners and exits before binding anything, so no port opens beyond
 * loopback during the tests. The old --insecure-tcp is gone. */
Test(tcp, sealed_tcp_may_listen_on_every_interface)
{
    char uri[64], *out = NULL;
    cr_assert_eq(fx_daemon_start(&D, NULL), 0);
    cr_assert_eq(fx_daemon_stop(&D), 0);
    snprintf(uri, sizeof(uri), "tcp://0.0.0.0:%d", free_port());

    int rc = run_trackd(&out, D.dir, "--listen", uri, "--check", NULL);
    cr_expect_eq(rc, 0, "status %d: %s", rc, out);
    cr_expect(!strstr(out, "refusing"), "%s", out);
    free(out);

    rc = run_trackd(&out, D.dir, "--listen", uri, "--insecure-tcp", "--check", NULL);
    cr_expect_eq(rc, 2, "--insecure-tcp is no option any more: status %d: %s", rc, out);
    free(out);
}

/* ---- the socket file's mode --------------------------------------------------- */

TestSuite(socket_mode, .init = setup, .fini = teardown, .timeout = 60);

static unsigned sock_mode(const char *uri)
{
    struct stat sb;
    cr_assert_eq(stat(uri + 6, &sb), 0);
    cr_assert(S_ISSOCK(sb.st_mode));
    return sb.st_mode & 07777;
}

Test(socket_mode, default_is_0600)
{
    cr_assert_eq(fx_daemon_start(&D, NULL), 0);
    cr_expect_eq(sock_mode(D.uri), 0600, "mode %o", sock_mode(D.uri));
}

Test(socket_mode, flag_0660_is_applied)
{
    const char *extra[] = {"--socket-mode", "0660", NULL};
    cr_assert_eq(fx_daemon_start(&D, extra), 0);
    cr_expect_eq(sock_mode(D.uri), 0660, "mode %o", sock_mode(D.uri));
}

Test(socket_mode, config_key_is_applied)
{
    char conf[400];
    snprintf(conf, sizeof(conf), "%s/mode.conf", root);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fputs("socket_mode = 0666\n", f);
    fclose(f);
    const char *extra[] = {"--config", conf, NULL};
    cr_assert_eq(fx_daemon_start(&D, extra), 0);
    cr_expect_eq(sock_mode(D.uri), 0666, "mode %o", sock_mode(D.uri));
}

Test(socket_mode, junk_is_rejected)
{
    char dd[300], conf[400], *out = NULL;
    const char *bad[] = {"0777", "0644", "660x", "rw", "06600", "-1", "0"};
    data_dir(dd, sizeof(dd));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = run_trackd(&out, dd, "--socket-mode", bad[i], NULL);
        cr_expect_eq(rc, 2, "--socket-mode %s: status %d", bad[i], rc);
        cr_expect(strstr(out, "--socket-mode: expected 0600, 0660 or 0666"), "%s", out);
        free(out);
    }
    snprintf(conf, sizeof(conf), "%s/bad.conf", root);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fputs("socket_mode = 0777\n", f);
    fclose(f);
    int rc = run_trackd(&out, dd, "--config", conf, NULL);
    cr_expect_eq(rc, 1, "config socket_mode = 0777: status %d: %s", rc, out);
    cr_expect(strstr(out, "socket_mode"), "%s", out);
    free(out);
}

/* ---- a second daemon on the same socket -------------------------------------- */

TestSuite(live_socket, .init = setup, .fini = teardown, .timeout = 60);

Test(live_socket, second_daemon_refuses_and_first_stays_reachable)
{
    char other[300], *out = NULL, *err = NULL;
    cr_assert_eq(fx_daemon_start(&D, NULL), 0);
    snprintf(other, sizeof(other), "%s/other-data", root);
    int rc = run_trackd(&out, other, "--listen", D.uri, NULL);
    cr_expect_eq(rc, 1, "second trackd on a live socket: status %d (-2: kept running): %s", rc,
                 out);
    cr_expect(strstr(out, "another daemon listens on") && strstr(out, D.uri + 6), "%s", out);
    free(out);
    rc = fx_track(&D, NULL, NULL, &out, &err, "status", NULL);
    cr_expect_eq(rc, 0, "the first daemon is unreachable after the second one: %s", err);
    free(out);
    free(err);
    cr_expect_eq(fx_daemon_stop(&D), 0);
}

Test(live_socket, stale_socket_file_is_replaced)
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(fx_daemon_start(&D, NULL), 0);
    cr_assert_eq(fx_daemon_stop(&D), 0);
    /* a socket file nobody listens on, as a crashed daemon leaves */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", D.uri + 6);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    cr_assert(!fx_sock_alive(D.uri + 6));
    cr_assert_eq(fx_daemon_restart(&D, NULL), 0, "trackd did not replace a stale socket");
    int rc = fx_track(&D, NULL, NULL, &out, &err, "status", NULL);
    cr_expect_eq(rc, 0, "%s", err);
    free(out);
    free(err);
    char *log = fx_read_text(D.log);
    cr_expect(strstr(log, "removed a stale socket"), "%s", log);
    free(log);
    cr_expect_eq(fx_daemon_stop(&D), 0);
}

Test(live_socket, file_that_is_not_a_socket_is_left_alone)
{
    char dd[300], path[400], uri[420], *out = NULL;
    data_dir(dd, sizeof(dd));
    snprintf(path, sizeof(path), "%s/not-a-socket", root);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("keep me\n", f);
    fclose(f);
    snprintf(uri, sizeof(uri), "ipc://%s", path);
    int rc = run_trackd(&out, dd, "--listen", uri, NULL);
    cr_expect_eq(rc, 1, "status %d: %s", rc, out);
    cr_expect(strstr(out, "is not a socket") && strstr(out, path), "%s", out);
    free(out);
    char *kept = fx_read_text(path);
    cr_expect_str_eq(kept, "keep me\n");
    free(kept);
}

/* ---- autostart ------------------------------------------------------------------ */

static pid_t autostarted = 0;

static void autostart_setup(void)
{
    char env[400];
    setup();
    /* the autostarted trackd is double-forked away from the CLI: as a
     * subreaper this test becomes its parent and can collect its status */
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    snprintf(env, sizeof(env), "%s/run", root);
    cr_assert_eq(mkdir(env, 0700), 0);
    setenv("XDG_RUNTIME_DIR", env, 1);
    snprintf(env, sizeof(env), "%s/xdgdata", root);
    setenv("XDG_DATA_HOME", env, 1);
    setenv("TRACKD", TRACKD_BIN, 1);
    unsetenv("TRACK_NO_AUTOSTART");
    autostarted = 0;
}

static void autostart_teardown(void)
{
    if (autostarted > 0) {
        int st;
        kill(autostarted, SIGKILL);
        waitpid(autostarted, &st, 0);
    }
    teardown();
}

TestSuite(autostart, .init = autostart_setup, .fini = autostart_teardown, .timeout = 60);

Test(autostart, starts_a_personal_daemon_that_answers)
{
    char sock[400], logp[400], *out = NULL, *err = NULL;
    snprintf(sock, sizeof(sock), "%s/run/track/trackd.sock", root);
    snprintf(logp, sizeof(logp), "%s/xdgdata/track/trackd.log", root);
    cr_assert(!fx_sock_alive(sock));

    int rc = run_track(&out, &err, "status", NULL);
    cr_assert_eq(rc, 0, "track status with autostart: %s", err);
    const char *p = strstr(out, "(pid ");
    cr_assert_not_null(p, "status names no pid: %s", out);
    autostarted = (pid_t)strtol(p + 5, NULL, 10);
    cr_assert_gt(autostarted, 0);
    free(out);
    free(err);
    cr_expect(fx_sock_alive(sock), "the autostarted daemon does not listen on %s", sock);

    /* a write goes to it too, not to the spool */
    rc = run_track(&out, &err, "experiment", "list");
    cr_expect_eq(rc, 0, "%s", err);
    free(out);
    free(err);
    const char *argv[] = {TRACK_BIN, "run", "start", "--experiment", "auto", NULL};
    rc = fx_run(argv, NULL, NULL, &out, &err);
    cr_expect_eq(rc, 0, "run start on the autostarted daemon: %s", err);
    cr_expect(!strstr(err, "spool"), "the write was spooled: %s", err);
    free(out);
    free(err);

    cr_assert_eq(kill(autostarted, SIGTERM), 0);
    int st = 0;
    long long end = fx_now_ms() + 10000;
    pid_t w = 0;
    while (fx_now_ms() < end && (w = waitpid(autostarted, &st, WNOHANG)) == 0)
        fx_sleep_ms(10);
    cr_assert_eq(w, autostarted, "the autostarted trackd did not exit on SIGTERM");
    autostarted = 0;
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "it exited with status %d: %s", st,
              fx_read_text(logp));
}

Test(autostart, locked_data_directory_is_reported_within_the_timeout)
{
    char link[400], *out = NULL, *err = NULL;
    /* a daemon holds the default data directory but listens elsewhere */
    cr_assert_eq(fx_daemon_start(&D, NULL), 0);
    snprintf(link, sizeof(link), "%s/xdgdata", root);
    cr_assert_eq(mkdir(link, 0700), 0);
    snprintf(link, sizeof(link), "%s/xdgdata/track", root);
    cr_assert_eq(symlink(D.dir, link), 0);

    for (int i = 0; i < 2; i++) {
        long long t0 = fx_now_ms();
        int rc = run_track(&out, &err, "status", NULL);
        long long took = fx_now_ms() - t0;
        cr_expect_neq(rc, 0);
        cr_expect(strstr(err, "could not start trackd") && strstr(err, "another trackd uses"),
                  "no reason given: %s", err);
        cr_expect_lt(took, 2000, "track status took %lld ms (timeout 1800 ms)", took);
        free(out);
        free(err);
    }
    cr_expect_eq(fx_daemon_stop(&D), 0);
}

/* Clients started together each start a trackd; one wins the data
 * directory, the others' find it locked, and their clients use the winner. */
Test(autostart, clients_started_together_all_reach_one_daemon)
{
    enum { N = 4 };
    pid_t kids[N];
    char sock[400];
    snprintf(sock, sizeof(sock), "%s/run/track/trackd.sock", root);
    fflush(NULL);
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        cr_assert_geq(kids[i], 0);
        if (kids[i] == 0) {
            int null = open("/dev/null", O_RDWR);
            dup2(null, 1);
            dup2(null, 2);
            execl(TRACK_BIN, TRACK_BIN, "status", (char *)NULL);
            _exit(127);
        }
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        int st;
        waitpid(kids[i], &st, 0);
        ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    cr_expect_eq(ok, N, "%d of %d clients started together reached a daemon", ok, N);
    /* find the one daemon left (the others exited) through status */
    char *out = NULL, *err = NULL;
    cr_assert_eq(run_track(&out, &err, "status", NULL), 0, "%s", err);
    const char *p = strstr(out, "(pid ");
    cr_assert_not_null(p);
    autostarted = (pid_t)strtol(p + 5, NULL, 10);
    free(out);
    free(err);
    /* the losers were our (subreaped) children too: collect them */
    int st;
    while (waitpid(-1, &st, WNOHANG) > 0 || (errno == EINTR))
        ;
    cr_assert_eq(kill(autostarted, SIGTERM), 0);
    long long end = fx_now_ms() + 10000;
    pid_t w = 0;
    while (fx_now_ms() < end && (w = waitpid(autostarted, &st, WNOHANG)) == 0)
        fx_sleep_ms(10);
    cr_expect_eq(w, autostarted);
    autostarted = 0;
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

Test(autostart, unrunnable_trackd_is_reported_at_once)
{
    char *out = NULL, *err = NULL;
    setenv("TRACKD", "/nonexistent/trackd", 1);
    long long t0 = fx_now_ms();
    int rc = run_track(&out, &err, "status", NULL);
    long long took = fx_now_ms() - t0;
    cr_expect_neq(rc, 0);
    cr_expect(strstr(err, "could not start trackd: cannot run the trackd program"), "%s", err);
    cr_expect_lt(took, 1000, "took %lld ms", took);
    free(out);
    free(err);
}

/* ---- permission denied ------------------------------------------------------------ */

TestSuite(permission, .init = setup, .fini = teardown, .timeout = 60);

/* Runs `track --server uri status` as uid/gid 65534; stderr in *err. */
static int track_as_nobody(const char *uri, char **err)
{
    int ep[2], st;
    cr_assert_eq(pipe(ep), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(ep[1], 2);
        close(ep[0]);
        close(ep[1]);
        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
            _exit(99);
        setenv("HOME", "/", 1);
        setenv("XDG_STATE_HOME", "/nonexistent", 1);
        execl(TRACK_BIN, TRACK_BIN, "--server", uri, "status", (char *)NULL);
        _exit(127);
    }
    close(ep[1]);
    char *buf = calloc(1, 65536);
    size_t n = 0;
    ssize_t r;
    while (n < 65535 && (r = read(ep[0], buf + n, 65535 - n)) > 0)
        n += (size_t)r;
    close(ep[0]);
    waitpid(pid, &st, 0);
    *err = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(permission, socket_in_a_closed_directory_is_permission_denied)
{
    char *err = NULL;
    cr_assert_eq(fx_daemon_start(&D, NULL), 0);
    cr_assert_eq(chmod(D.dir, 0700), 0);
    int rc = track_as_nobody(D.uri, &err);
    cr_assert_neq(rc, 99, "could not drop to uid 65534");
    cr_expect_neq(rc, 0);
    cr_expect(strstr(err, "permission denied") && strstr(err, D.uri + 6), "%s", err);
    cr_expect(!strstr(err, "no daemon listens"), "%s", err);
    free(err);
}

Test(permission, socket_mode_0600_of_another_user_is_permission_denied)
{
    char *err = NULL;
    cr_assert_eq(fx_daemon_start(&D, NULL), 0);
    cr_assert_eq(chmod(D.dir, 0755), 0); /* the directory may be crossed */
    cr_assert_eq(sock_mode(D.uri), 0600);
    int rc = track_as_nobody(D.uri, &err);
    cr_assert_neq(rc, 99, "could not drop to uid 65534");
    cr_expect_neq(rc, 0);
    cr_expect(strstr(err, "permission denied") && strstr(err, D.uri + 6), "%s", err);
    cr_expect(!strstr(err, "no daemon listens"), "%s", err);
    free(err);
}

Test(permission, socket_mode_0666_lets_another_user_in)
{
    char *err = NULL;
    const char *extra[] = {"--socket-mode", "0666", NULL};
    cr_assert_eq(fx_daemon_start(&D, extra), 0);
    cr_assert_eq(chmod(D.dir, 0755), 0);
    int rc = track_as_nobody(D.uri, &err);
    cr_expect_eq(rc, 0, "uid 65534 could not use a 0666 socket: %s", err);
    free(err);
}
