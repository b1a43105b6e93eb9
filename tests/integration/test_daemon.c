/*
 * test_daemon.c: trackd's own command line and configuration: --help and
 * --version, usage errors (exit 2), the config file (read at start, errors
 * naming the line, SIGHUP re-reading it while command-line flags win),
 * --durability, --check on a clean database, and the read-only refusal of a
 * second daemon's lock.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

/* File-wide, so that the suite's fini stops it even when an assertion
 * ends a test early (a local one would outlive its test) */
static struct fx_daemon d;
static int passed; /* set by the last line of a test: fini shows the log otherwise */

#define PASS() (passed = 1)

static void setup(void)
{
    memset(&d, 0, sizeof(d));
    passed = 0;
}

static void teardown(void)
{
    if (d.dir[0])
        fx_daemon_cleanup(&d, !passed);
}

TestSuite(daemon, .init = setup, .fini = teardown, .timeout = 60);

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(daemon, help_and_version_exit_0_and_usage_errors_exit_2)
{
    char *out = NULL, *err = NULL;
    const char *help[] = {TRACKD_BIN, "--help", NULL};
    cr_assert_eq(fx_run(help, NULL, NULL, &out, &err), 0);
    cr_assert(strstr(out, "--data-dir") && strstr(out, "--durability"), "%s", out);
    free(out);
    free(err);
    const char *version[] = {TRACKD_BIN, "--version", NULL};
    cr_assert_eq(fx_run(version, NULL, NULL, &out, &err), 0);
    cr_assert(strncmp(out, "trackd ", 7) == 0, "%s", out);
    free(out);
    free(err);
    const char *bad[][4] = {
        {TRACKD_BIN, "--listen", "http://x", NULL},
        {TRACKD_BIN, "--durability", "sometimes", NULL},
        {TRACKD_BIN, "--log-level", "loud", NULL},
        {TRACKD_BIN, "--workers", "0", NULL},
        {TRACKD_BIN, "--no-such-option", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(fx_run(bad[i], NULL, NULL, &out, &err), 2, "%s %s: %s", bad[i][1],
                     bad[i][2] ? bad[i][2] : "", err);
        free(out);
        free(err);
    }
}

Test(daemon, a_bad_config_line_is_named_and_stops_the_start)
{
    char conf[400];
    cr_assert_eq(fx_daemon_start(&d, NULL), 0);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    snprintf(conf, sizeof(conf), "%s/trackd.conf", d.dir);
    write_file(conf, "# comment\nlog_level = info\ncolour = blue\n");
    cr_assert_neq(fx_daemon_restart(&d, NULL), 0, "trackd started with a bad config");
    char *log = fx_read_text(d.log);
    cr_assert(strstr(log, "trackd.conf:3") && strstr(log, "colour"), "log: %s", log);
    free(log);
    write_file(conf, "durability = full\nworkers = 3\nlog_level = info\n");
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "trackd did not start with a good config");
    log = fx_read_text(d.log);
    cr_assert(strstr(log, "durability=full"), "log: %s", log);
    free(log);
    PASS();
}

/* A read refused with NOT_FOUND: logged at debug level only. The worker
 * logs it before the reply is handed back, so once fx_track returns the
 * line is in the log or never will be. */
static void refused_read(struct fx_daemon *dm)
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(fx_track(dm, NULL, NULL, &out, &err, "run", "show",
                          "ffffffffffffffffffffffffffffffff", NULL),
                 1, "%s", err);
    free(out);
    free(err);
}

Test(daemon, sighup_rereads_the_log_level_when_no_flag_set_it)
{
    char conf[400];
    cr_assert_eq(fx_daemon_start(&d, NULL), 0);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    snprintf(conf, sizeof(conf), "%s/trackd.conf", d.dir);
    write_file(conf, "log_level = warn\n");
    d.no_log_flag = 1; /* the config file decides */
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    long from = fx_log_size(&d);
    refused_read(&d);
    char *log = fx_read_text(d.log);
    cr_assert_null(strstr(log + from, "run_get failed"), "debug line at warn level: %s", log);
    free(log);
    write_file(conf, "log_level = debug\n");
    from = fx_log_size(&d);
    kill(d.pid, SIGHUP);
    cr_assert(fx_wait_log(&d, from, "reloaded log_level=3", 10000), "no reload logged");
    refused_read(&d);
    log = fx_read_text(d.log);
    cr_assert(strstr(log + from, "run_get failed code=NOT_FOUND"), "debug line missing: %s", log);
    free(log);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    PASS();
}

Test(daemon, sighup_keeps_the_log_level_the_flag_set)
{
    char conf[400];
    cr_assert_eq(fx_daemon_start(&d, NULL), 0);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    snprintf(conf, sizeof(conf), "%s/trackd.conf", d.dir);
    /* the fixture passes --log-level debug: it wins over the file at start
     * and must go on winning after a reload */
    write_file(conf, "log_level = error\n");
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    long from = fx_log_size(&d);
    kill(d.pid, SIGHUP);
    cr_assert(fx_wait_log(&d, from, "reloaded; log_level=3 stays as --log-level set it", 10000),
              "no reload keeping the flag's level logged");
    refused_read(&d);
    char *log = fx_read_text(d.log);
    cr_assert(strstr(log + from, "run_get failed code=NOT_FOUND"),
              "the file's level replaced --log-level: %s", log);
    free(log);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    PASS();
}

Test(daemon, check_on_a_clean_database_says_ok)
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(fx_daemon_start(&d, NULL), 0);
    cr_assert_eq(fx_track(&d, NULL, NULL, &out, &err, "run", "start", NULL), 0, "%s", err);
    free(out);
    free(err);
    /* --check reads beside a running daemon (WAL readers) */
    const char *check[] = {TRACKD_BIN, "--check", "--data-dir", d.dir, NULL};
    cr_assert_eq(fx_run(check, NULL, NULL, &out, &err), 0, "%s", err);
    cr_assert(strncmp(out, "ok ", 3) == 0, "%s", out);
    free(out);
    free(err);
    PASS();
}
