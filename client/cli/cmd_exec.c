/*
 * cmd_exec.c: `track exec -- CMD [ARGS...]` wraps a whole training process:
 * it starts a run, records sys.* tags (command line, working directory,
 * host, git commit/branch/dirty), runs CMD with TRACK_RUN_ID and
 * TRACK_SERVER in its environment and stdout/stderr untouched, and ends the
 * run FINISHED (exit 0), FAILED (non-zero) or KILLED (a signal), then exits
 * with CMD's status (128+N for signal N, as a shell does).
 *
 * Git is asked before any nanomsg socket exists; after that this process
 * forks only to exec at once (nanomsg's threads do not survive fork).
 *
 * --system-metrics[=SECONDS] starts libtrack's sampler on CMD's process
 * tree once CMD is forked (track_system_metrics_start: a thread with its
 * own client, so this thread's waitpid and final calls need no lock), and
 * stops it when CMD has ended, before the run ends.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* First line of a command's stdout into buf; -1 when it fails. */
static int capture(const char *cmd, char *buf, size_t len)
{
    FILE *p = popen(cmd, "r");
    int ok = 0;
    buf[0] = '\0';
    if (!p)
        return -1;
    if (fgets(buf, (int)len, p)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        ok = 1;
    }
    /* drain so the child is not killed by SIGPIPE mid-write */
    char sink[256];
    while (fgets(sink, sizeof(sink), p))
        ok = 2;
    int st = pclose(p);
    if (st != 0)
        return -1;
    return ok;
}

/* Joins argv with shell quoting where needed. */
static void join_command(char **argv, int argc, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < argc && o + 4 < len; i++) {
        const char *a = argv[i];
        int plain = *a != '\0';
        for (const char *p = a; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%",
                        *p))
                plain = 0;
        if (i)
            buf[o++] = ' ';
        if (plain) {
            o += (size_t)snprintf(buf + o, len - o, "%s", a);
        } else {
            buf[o++] = '\'';
            for (const char *p = a; *p && o + 6 < len; p++) {
                if (*p == '\'') {
                    memcpy(buf + o, "'\\''", 4);
                    o += 4;
                } else {
                    buf[o++] = *p;
                }
            }
            buf[o++] = '\'';
        }
        if (o >= len)
            o = len - 1;
        buf[o] = '\0';
    }
}

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

int cmd_exec(int argc, char **argv)
{
    static const struct option longopts[] = {{"experiment", required_argument, NULL, 'e'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"param", required_argument, NULL, 'p'},
                                             {"tag", required_argument, NULL, 't'},
                                             {"system-metrics", optional_argument, NULL, 'S'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    static struct cli_kv_args kv;
    static char cmdline[8192], cwd[4096], host[256], commit[128], branch[256], dirty[8],
        exitbuf[32];
    const char *name = argv[0];
    struct track_run_opts ro = {0};
    struct track_err err = {0};
    track_run_id id;
    char hex[33];
    int opt, status, rc, sysmet_ms = 0;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "+h", longopts)) != -1) {
        switch (opt) {
        case 'e':
            ro.experiment = optarg;
            break;
        case 'n':
            ro.name = optarg;
            break;
        case 'p':
        case 't':
            cli_add_kv(name, &kv, opt == 'p', optarg);
            break;
        case 'S': {
            char *end;
            double secs = optarg ? strtod(optarg, &end) : 5;
            if (optarg && (end == optarg || *end || !isfinite(secs)))
                cli_usage_error(name, "--system-metrics: SECONDS must be a number");
            if (secs < 0.1 || secs > 86400)
                cli_usage_error(name, "--system-metrics: SECONDS must be 0.1 to 86400");
            sysmet_ms = (int)lround(secs * 1000);
            break;
        }
        default:
            if (!cli_common_opt(opt, name))
                cli_usage_error(name, "unknown option");
        }
    }
    if (optind >= argc)
        cli_usage_error(name, "expected -- CMD [ARGS...]");
    char **child_argv = argv + optind;
    int child_argc = argc - optind;

    join_command(child_argv, child_argc, cmdline, sizeof(cmdline));
    kv.tags[kv.n_tags++] = (struct track_kv){"sys.command", cmdline};
    if (getcwd(cwd, sizeof(cwd)))
        kv.tags[kv.n_tags++] = (struct track_kv){"sys.cwd", cwd};
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        kv.tags[kv.n_tags++] = (struct track_kv){"sys.host", host};
    }
    /* no sys.user tag: the user is a field of every run (libtrack sets it) */
    if (capture("git rev-parse HEAD 2>/dev/null", commit, sizeof(commit)) > 0) {
        kv.tags[kv.n_tags++] = (struct track_kv){"sys.git.commit", commit};
        if (capture("git rev-parse --abbrev-ref HEAD 2>/dev/null", branch, sizeof(branch)) > 0)
            kv.tags[kv.n_tags++] = (struct track_kv){"sys.git.branch", branch};
        char line[512];
        int d =
            capture("git status --porcelain --untracked-files=no 2>/dev/null", line, sizeof(line));
        if (d >= 0) {
            snprintf(dirty, sizeof(dirty), "%s", d > 0 ? "true" : "false");
            kv.tags[kv.n_tags++] = (struct track_kv){"sys.git.dirty", dirty};
        }
    }
    ro.params = kv.params;
    ro.n_params = kv.n_params;
    ro.tags = kv.tags;
    ro.n_tags = kv.n_tags;

    fflush(NULL);
    struct track_client *c = cli_client();
    if (track_run_start(c, &ro, &id, &err)) {
        track_client_close(c);
        return cli_track_error(&err);
    }
    if (err.code == TRACK_E_SPOOLED)
        cli_warn("%s", err.msg);
    track_run_id_hex(&id, hex);

    /* the environment is made before fork: the child only execs */
    setenv("TRACK_RUN_ID", hex, 1);
    setenv("TRACK_SERVER", track_client_server(c), 1);
    /* forward signals from before the fork on, so none can kill us between
     * fork and waitpid and leave the run RUNNING */
    struct sigaction sa = {.sa_handler = forward}, dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&sa.sa_mask);
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    pid_t pid = fork();
    if (pid < 0) {
        rc = cli_error("cannot start %s: %s", child_argv[0], strerror(errno));
        track_run_end(c, TRACK_FAILED, &err);
        track_client_close(c);
        return rc;
    }
    if (pid == 0) {
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGHUP, &dfl, NULL);
        execvp(child_argv[0], child_argv);
        fprintf(stderr, "track: cannot run %s: %s\n", child_argv[0], strerror(errno));
        _exit(127);
    }
    child_pid = pid;
    if (sysmet_ms && track_system_metrics_start(c, pid, sysmet_ms, &err))
        cli_warn("no system metrics: %s", err.msg);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = 1 << 8;
            break;
        }
    }
    int run_status, exit_code;
    if (WIFSIGNALED(status)) {
        run_status = TRACK_KILLED;
        exit_code = 128 + WTERMSIG(status);
        snprintf(exitbuf, sizeof(exitbuf), "signal %d", WTERMSIG(status));
    } else {
        exit_code = WEXITSTATUS(status);
        run_status = exit_code == 0 ? TRACK_FINISHED : TRACK_FAILED;
        snprintf(exitbuf, sizeof(exitbuf), "%d", exit_code);
    }
    struct track_err e2 = {0};
    track_system_metrics_stop(c, &e2);
    if (track_set_tag(c, "sys.exit_code", exitbuf, &e2))
        cli_track_error(&e2);
    if (track_run_end(c, run_status, &e2))
        cli_track_error(&e2);
    else if (e2.code == TRACK_E_SPOOLED)
        cli_warn("%s", e2.msg);
    track_client_close(c);
    return exit_code;
}
