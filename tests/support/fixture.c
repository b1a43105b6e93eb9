/*
 * fixture.c: see fixture.h.
 */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "track.h"

long long fx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fx_sock_alive(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, ok;
    if (strlen(path) >= sizeof(sa.sun_path))
        return 0;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* Daemons started and not yet reaped. A test that fails an assertion
 * leaves its body early, and one whose fx_daemon is a local never reaches
 * its cleanup: the test process's exit then kills what is left, so no
 * trackd outlives its test (Criterion's workers end through exit()). */
static pid_t live[32];

static void kill_leftovers(void)
{
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        int st;
        if (live[i] <= 0)
            continue;
        kill(live[i], SIGKILL);
        waitpid(live[i], &st, 0);
        live[i] = 0;
    }
}

static void live_add(pid_t pid)
{
    static int hooked;
    if (!hooked && atexit(kill_leftovers) == 0)
        hooked = 1;
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
        if (live[i] <= 0) {
            live[i] = pid;
            return;
        }
}

static void live_del(pid_t pid)
{
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
        if (live[i] == pid)
            live[i] = 0;
}

static int spawn_daemon(struct fx_daemon *d, const char *const *extra)
{
    const char *argv[32];
    int n = 0;

    argv[n++] = TRACKD_BIN;
    argv[n++] = "--data-dir";
    argv[n++] = d->dir;
    argv[n++] = "--listen";
    argv[n++] = d->uri;
    if (!d->no_log_flag) {
        argv[n++] = "--log-level";
        argv[n++] = "debug";
    }
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    d->pid = pid;
    live_add(pid);
    for (int i = 0; i < 1000; i++) {
        if (fx_sock_alive(d->uri + 6))
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            live_del(pid);
            d->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

int fx_daemon_start(struct fx_daemon *d, const char *const *extra)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/track-test-XXXXXX");
    if (!mkdtemp(d->dir))
        return -1;
    snprintf(d->uri, sizeof(d->uri), "ipc://%s/trackd.sock", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/trackd.log", d->dir);
    snprintf(d->spool, sizeof(d->spool), "%s/spool.bin", d->dir);
    return spawn_daemon(d, extra);
}

int fx_daemon_restart(struct fx_daemon *d, const char *const *extra)
{
    return spawn_daemon(d, extra);
}

int fx_daemon_stop(struct fx_daemon *d)
{
    int st;
    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            live_del(d->pid);
            d->pid = 0;
            if (status && !d->bad_stop)
                d->bad_stop = status;
            return status;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    live_del(d->pid);
    d->pid = 0;
    if (!d->bad_stop)
        d->bad_stop = -1;
    return -1;
}

void fx_daemon_kill(struct fx_daemon *d)
{
    int st;
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    live_del(d->pid);
    d->pid = 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void fx_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *read_log(const char *path, long from)
{
    FILE *f = fopen(path, "r");
    long size;
    char *buf;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    if (size < from)
        from = size;
    fseek(f, from, SEEK_SET);
    buf = malloc((size_t)(size - from) + 1);
    if (buf) {
        size_t n = fread(buf, 1, (size_t)(size - from), f);
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

long fx_log_size(struct fx_daemon *d)
{
    struct stat sb;
    return stat(d->log, &sb) == 0 ? (long)sb.st_size : 0;
}

int fx_wait_log(struct fx_daemon *d, long from, const char *needle, int timeout_ms)
{
    long long until = fx_now_ms() + timeout_ms;
    for (;;) {
        char *log = read_log(d->log, from);
        int found = log && strstr(log, needle) != NULL;
        free(log);
        if (found)
            return 1;
        if (fx_now_ms() >= until)
            return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static const char *const sanitizer_marks[] = {"ERROR: AddressSanitizer",
                                              "runtime error:", "LeakSanitizer"};

int fx_daemon_verdict(struct fx_daemon *d, char *why, size_t cap)
{
    const char *mark = NULL;
    char *log;
    size_t at = 0;

    if (cap)
        why[0] = '\0';
    if (d->pid > 0) {
        kill(d->pid, SIGCONT);
        fx_daemon_stop(d);
    }
    log = d->dir[0] ? read_log(d->log, 0) : NULL;
    for (size_t i = 0; log && i < sizeof(sanitizer_marks) / sizeof(sanitizer_marks[0]); i++)
        if (strstr(log, sanitizer_marks[i]))
            mark = sanitizer_marks[i];
    free(log);
    if (d->bad_stop && at < cap)
        at += (size_t)snprintf(
            why + at, cap - at, "trackd did not exit cleanly: %s %d; ",
            d->bad_stop < 0 ? "still running 10 s after SIGTERM," : "exit status", d->bad_stop);
    if (mark && at < cap)
        snprintf(why + at, cap - at, "trackd's log holds a sanitizer report (\"%s\")", mark);
    return d->bad_stop || mark ? -1 : 0;
}

void fx_daemon_cleanup(struct fx_daemon *d, int show_log)
{
    char why[400];
    int bad = fx_daemon_verdict(d, why, sizeof(why)) != 0;
    char *log = (bad || show_log) && d->dir[0] ? read_log(d->log, 0) : NULL;

    if (bad)
        fprintf(stderr, "fixture: %s\n", why);
    if (bad || show_log)
        fprintf(stderr, "---- trackd log %s (kept) ----\n%s---- end of log ----\n", d->log,
                log ? log : "(no log)\n");
    else if (d->dir[0])
        fx_rmtree(d->dir);
    free(log);
    if (bad) {
        fflush(NULL);
        abort(); /* see fixture.h: the only way a .fini fails a Criterion run */
    }
}

/* Reads both pipes until EOF. */
static void collect(int ofd, int efd, char **out, char **err)
{
    size_t olen = 0, elen = 0, ocap = 4096, ecap = 4096;
    char *ob = malloc(ocap), *eb = malloc(ecap);
    struct pollfd p[2] = {{.fd = ofd, .events = POLLIN}, {.fd = efd, .events = POLLIN}};
    int open_fds = 2;

    while (open_fds > 0) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            char buf[8192];
            ssize_t r = read(p[i].fd, buf, sizeof(buf));
            if (r <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
                continue;
            }
            char **b = i == 0 ? &ob : &eb;
            size_t *len = i == 0 ? &olen : &elen, *cap = i == 0 ? &ocap : &ecap;
            while (*len + (size_t)r + 1 > *cap) {
                *cap *= 2;
                *b = realloc(*b, *cap);
            }
            memcpy(*b + *len, buf, (size_t)r);
            *len += (size_t)r;
        }
    }
    ob[olen] = '\0';
    eb[elen] = '\0';
    if (out)
        *out = ob;
    else
        free(ob);
    if (err)
        *err = eb;
    else
        free(eb);
}

int fx_run(const char *const *argv, const char *const *env, const char *in, char **out, char **err)
{
    int op[2], ep[2], ip[2], st;

    if (pipe(op) || pipe(ep) || pipe(ip))
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(ip[0], 0);
        dup2(op[1], 1);
        dup2(ep[1], 2);
        close(ip[0]);
        close(ip[1]);
        close(op[0]);
        close(op[1]);
        close(ep[0]);
        close(ep[1]);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)(uintptr_t)env[i]);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(ip[0]);
    close(op[1]);
    close(ep[1]);
    if (in) {
        size_t n = strlen(in), off = 0;
        signal(SIGPIPE, SIG_IGN);
        while (off < n) {
            ssize_t w = write(ip[1], in + off, n - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    close(ip[1]);
    collect(op[0], ep[0], out, err);
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int fx_track(struct fx_daemon *d, const char *const *env, const char *in, char **out, char **err,
             ...)
{
    const char *argv[64];
    const char *envv[32];
    static char spool_env[400], state_env[400];
    int n = 0, ne = 0;
    va_list ap;

    argv[n++] = TRACK_BIN;
    argv[n++] = "--server";
    argv[n++] = d->uri;
    va_start(ap, err);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 63;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    snprintf(state_env, sizeof(state_env), "XDG_STATE_HOME=%s/state", d->dir);
    envv[ne++] = state_env;
    envv[ne++] = "TRACK_NO_AUTOSTART=1";
    (void)spool_env;
    for (int i = 0; env && env[i] && ne < 31; i++)
        envv[ne++] = env[i];
    envv[ne] = NULL;
    return fx_run(argv, envv, in, out, err);
}

struct track_client *fx_client_open(struct fx_daemon *d, int timeout_ms)
{
    struct track_opts o = {0};
    struct track_err err = {0};
    struct track_client *c = NULL;

    o.server = d->uri;
    o.spool_path = d->spool;
    o.no_spool = 1;
    o.timeout_ms = timeout_ms;
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "%s", err.msg);
    return c;
}

struct track_client *fx_client_for(const char *uri, const char *spool, int timeout_ms, int no_spool)
{
    struct track_opts o = {.server = uri,
                           .spool_path = spool,
                           .timeout_ms = timeout_ms,
                           .no_spool = no_spool,
                           .flush_interval_ms = 3600000};
    struct track_client *c = NULL;
    struct track_err err = {0};
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "open: %s", err.msg);
    return c;
}

size_t fx_metric_steps(struct fx_daemon *d, const char *run, const char *key, int64_t *out,
                       size_t max)
{
    struct track_client *c = fx_client_for(d->uri, d->spool, 5000, 1);
    int64_t seq = 0;
    size_t total = 0;
    for (int page = 0; page < 1000; page++) {
        struct track_result *res;
        const int64_t *steps, *times;
        const double *values;
        size_t n;
        int64_t next;
        int more;
        struct track_err err = {0};
        int rc = track_metric_history(c, run, key, seq, 0, &res, &steps, &times, &values, &n, &next,
                                      &more, &err);
        if (rc == TRACK_E_NOT_FOUND)
            break;
        cr_assert_eq(rc, 0, "history %s %s: %s", run, key, err.msg);
        for (size_t i = 0; i < n && total < max; i++)
            out[total++] = steps[i];
        track_result_free(res);
        if (!more || n == 0)
            break;
        seq = next;
    }
    track_client_close(c);
    return total;
}

void fx_write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

void fx_write_random(const char *path, size_t n, uint64_t seed)
{
    FILE *f = fopen(path, "wb");
    uint64_t x = seed | 1, buf[8192];
    cr_assert_not_null(f);
    for (size_t done = 0; done < n;) {
        for (size_t i = 0; i < 8192; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = x;
        }
        size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
        cr_assert_eq(fwrite(buf, 1, k, f), k);
        done += k;
    }
    cr_assert_eq(fclose(f), 0);
}

int fx_same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb)
            same = 0;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

void fx_daemon_client_start(struct fx_daemon *d, struct track_client **c, int timeout_ms)
{
    cr_assert_eq(fx_daemon_start(d, NULL), 0, "trackd did not start");
    *c = fx_client_open(d, timeout_ms);
}

void fx_daemon_client_cleanup(struct fx_daemon *d, struct track_client **c)
{
    if (*c)
        track_client_close(*c);
    *c = NULL;
    fx_daemon_cleanup(d, 0);
}

char *fx_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

char *fx_read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    size_t n = f && buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    if (buf)
        buf[n] = '\0';
    if (f)
        fclose(f);
    return buf;
}

size_t fx_count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

void fx_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void fx_tmpfs(char *dir, char *data, size_t cap, const char *opts)
{
    cr_assert(mkdtemp(dir));
    snprintf(data, cap, "%s/data", dir);
    mkdir(data, 0700);
    if (mount("tmpfs", data, "tmpfs", 0, opts) != 0) {
        fx_rmtree(dir);
        cr_skip_test("cannot mount a tmpfs here (%s): needs root", strerror(errno));
    }
}

void fx_daemon_start_on(struct fx_daemon *d, const char *data, const char *sockdir)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s", data);
    snprintf(d->uri, sizeof(d->uri), "ipc://%s/trackd.sock", sockdir);
    snprintf(d->log, sizeof(d->log), "%s/trackd.log", sockdir);
    snprintf(d->spool, sizeof(d->spool), "%s/spool.bin", sockdir);
    cr_assert_eq(fx_daemon_restart(d, NULL), 0, "trackd did not start on the tmpfs");
}

int fx_log_noise_until_refused(struct track_client *c, uint64_t *x, long *step, int *batches,
                               struct track_err *err)
{
    int rc = 0;
    for (*batches = 0; *batches < 200 && rc == 0; (*batches)++) {
        for (int i = 0; i < 20000; i++) {
            *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17; /* values that do not compress */
            double v;
            memcpy(&v, x, sizeof(v));
            if (v != v)
                v = 0.5;
            track_log_metric(c, "noise", v, (*step)++, 0, err);
        }
        rc = track_flush(c, err);
    }
    return rc;
}

int fx_free_port(void)
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
