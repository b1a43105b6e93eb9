/*
 * test_fixture.c: the test fixture's own promise (tests/support/fixture.h):
 * a trackd that stops with a status other than 0, or whose log holds a
 * sanitizer report, makes its test's teardown fail; a clean one does not;
 * and a daemon a failed test leaves running dies with the test process.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

static struct fx_daemon d;

static void setup(void)
{
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
}

/* each test leaves the daemon stopped and its verdict reset: clean up */
static void teardown(void)
{
    fx_daemon_kill(&d);
    if (d.dir[0])
        fx_rmtree(d.dir);
}

TestSuite(fixture, .init = setup, .fini = teardown, .timeout = 60);

Test(fixture, a_clean_stop_passes)
{
    char why[400];
    cr_assert_eq(fx_daemon_verdict(&d, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(d.pid, 0, "the verdict stops the daemon");
}

Test(fixture, a_daemon_dying_of_a_signal_fails_the_teardown)
{
    char why[400];
    /* as an abort at shutdown would end it */
    kill(d.pid, SIGABRT);
    cr_assert_neq(fx_daemon_verdict(&d, why, sizeof(why)), 0);
    cr_assert(strstr(why, "did not exit cleanly: exit status 134"), "%s", why);
    d.bad_stop = 0;
}

Test(fixture, a_status_other_than_0_fails_the_teardown)
{
    char why[400];
    /* killed behind the fixture's back: the stop sees 128 + SIGKILL */
    kill(d.pid, SIGKILL);
    cr_assert_neq(fx_daemon_verdict(&d, why, sizeof(why)), 0);
    cr_assert(strstr(why, "exit status 137"), "%s", why);
    cr_assert_eq(d.bad_stop, 137);
    d.bad_stop = 0;
    /* fx_daemon_kill is on purpose: not held against the test */
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    fx_daemon_kill(&d);
    cr_assert_eq(fx_daemon_verdict(&d, why, sizeof(why)), 0, "%s", why);
}

Test(fixture, a_sanitizer_report_in_the_log_fails_the_teardown)
{
    const char *reports[] = {"==1==ERROR: AddressSanitizer: heap-use-after-free",
                             "x.c:3:5: runtime error: signed integer overflow",
                             "==1==ERROR: LeakSanitizer: detected memory leaks"};
    for (int i = 0; i < 3; i++) {
        char why[400];
        cr_assert_eq(fx_daemon_verdict(&d, why, sizeof(why)), 0, "%s", why);
        FILE *f = fopen(d.log, "a");
        cr_assert_not_null(f);
        fprintf(f, "%s\n", reports[i]);
        fclose(f);
        cr_assert_neq(fx_daemon_verdict(&d, why, sizeof(why)), 0, "%s passed", reports[i]);
        cr_assert(strstr(why, "sanitizer report"), "%s", why);
        f = fopen(d.log, "w"); /* a clean log again */
        cr_assert_not_null(f);
        fclose(f);
    }
}

Test(fixture, a_daemon_left_behind_by_a_failed_test_dies_with_the_test_process)
{
    int fds[2];
    pid_t daemon_pid = 0;
    char dir[sizeof(d.dir)] = "";
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        /* as a test body whose assertion fails with its daemon running */
        struct fx_daemon local;
        if (fx_daemon_start(&local, NULL) != 0)
            _exit(2);
        if (write(fds[1], &local.pid, sizeof(local.pid)) != (ssize_t)sizeof(local.pid) ||
            write(fds[1], local.dir, sizeof(local.dir)) != (ssize_t)sizeof(local.dir))
            _exit(3);
        exit(1);
    }
    close(fds[1]);
    cr_assert_eq(read(fds[0], &daemon_pid, sizeof(daemon_pid)), (ssize_t)sizeof(daemon_pid));
    cr_assert_eq(read(fds[0], dir, sizeof(dir)), (ssize_t)sizeof(dir));
    close(fds[0]);
    int st;
    cr_assert_eq(waitpid(child, &st, 0), child);
    /* exit() ran its handlers (LeakSanitizer may add its own status: a
     * forked copy of Criterion's threaded worker confuses it) */
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 2 && WEXITSTATUS(st) != 3, "child status %d", st);
    /* its parent reaped it on the way out: it is gone, not an orphan */
    cr_assert_eq(kill(daemon_pid, 0), -1, "trackd %d outlived its test", (int)daemon_pid);
    cr_assert_eq(errno, ESRCH);
    fx_rmtree(dir);
}
