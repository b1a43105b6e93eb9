/*
 * util.c: track-bench's plumbing, measuring nothing itself: clocks, child
 * processes (fork + exec at once, never a fork that keeps running our code,
 * see bench.h), starting and stopping a trackd on a temporary data
 * directory, reading /proc/PID/status, file sizes and clean-up.
 *
 * A trackd is "up" when a connect(2) to its ipc socket file succeeds, the
 * same probe libtrack uses; nothing here speaks nanomsg.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bench_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- processes ------------------------------------------------------------ */

int bench_spawn(struct bench_proc *p, char *const argv[], int pipe_in, int pipe_out,
                const char *err_path)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    pid_t pid;

    p->pid = -1;
    p->in_fd = p->out_fd = -1;
    if (pipe_in && pipe2(in, O_CLOEXEC) < 0)
        return -1;
    if (pipe_out && pipe2(out, O_CLOEXEC) < 0)
        goto fail;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0)
        goto fail;
    if (pid == 0) {
        /* the child only rearranges descriptors and execs */
        int null = open("/dev/null", O_RDWR);
        dup2(pipe_in ? in[0] : null, 0);
        dup2(pipe_out ? out[1] : null, 1);
        if (err_path) {
            int e = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (e >= 0)
                dup2(e, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    p->pid = pid;
    if (pipe_in) {
        close(in[0]);
        p->in_fd = in[1];
    }
    if (pipe_out) {
        close(out[1]);
        p->out_fd = out[0];
    }
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    return -1;
}

int bench_read_line(struct bench_proc *p, char *buf, size_t cap, int timeout_ms)
{
    int64_t deadline = bench_now_ns() + (int64_t)timeout_ms * 1000000;
    size_t n = 0;

    if (p->out_fd < 0 || cap == 0)
        return -1;
    for (;;) {
        int64_t left = (deadline - bench_now_ns()) / 1000000;
        struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
        char ch;

        if (left <= 0)
            return -1;
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        ssize_t r = read(p->out_fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (ch == '\n') {
            buf[n] = '\0';
            return (int)n;
        }
        if (n + 1 < cap)
            buf[n++] = ch;
    }
}

int bench_poke(struct bench_proc *p)
{
    char ch = 'g';

    return p->in_fd >= 0 && write(p->in_fd, &ch, 1) == 1 ? 0 : -1;
}

int bench_wait(struct bench_proc *p)
{
    int status;

    if (p->in_fd >= 0)
        close(p->in_fd);
    if (p->out_fd >= 0)
        close(p->out_fd);
    p->in_fd = p->out_fd = -1;
    if (p->pid <= 0)
        return -1;
    while (waitpid(p->pid, &status, 0) < 0) {
        if (errno != EINTR) {
            p->pid = -1;
            return -1;
        }
    }
    p->pid = -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

void bench_kill(struct bench_proc *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGKILL);
    bench_wait(p);
}

int bench_run_quiet(char *const argv[])
{
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- trackd ---------------------------------------------------------------- */

static int ipc_up(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, ok;

    if (strlen(path) >= sizeof(sa.sun_path))
        return 0;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

int bench_daemon_start(struct bench_daemon *d, const char *trackd, const char *root,
                       const char *name)
{
    return bench_daemon_start_ex(d, trackd, root, name, NULL, 0);
}

int bench_daemon_start_ex(struct bench_daemon *d, const char *trackd, const char *root,
                          const char *name, const char *const *extra, int keep_dir)
{
    char *argv[20];
    int n = 7;

    memset(d, 0, sizeof(*d));
    d->proc.pid = -1;
    snprintf(d->dir, sizeof(d->dir), "%s/%s", root, name);
    snprintf(d->uri, sizeof(d->uri), "ipc://%s/trackd.sock", d->dir);
    snprintf(d->db, sizeof(d->db), "%s/track.db", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/trackd.log", root);
    if (!keep_dir) {
        bench_rm_rf(d->dir);
        if (mkdir(d->dir, 0700) < 0)
            return -1;
    }
    argv[0] = (char *)(uintptr_t)trackd;
    argv[1] = (char *)(uintptr_t) "--data-dir";
    argv[2] = d->dir;
    argv[3] = (char *)(uintptr_t) "--listen";
    argv[4] = d->uri;
    argv[5] = (char *)(uintptr_t) "--log-level";
    argv[6] = (char *)(uintptr_t) "warn";
    for (int i = 0; extra && extra[i] && n < 19; i++)
        argv[n++] = (char *)(uintptr_t)extra[i];
    argv[n] = NULL;
    if (bench_spawn(&d->proc, argv, 0, 0, d->log) < 0)
        return -1;
    for (int i = 0; i < 1000; i++) {
        int status;
        if (ipc_up(d->uri + 6))
            return 0;
        if (waitpid(d->proc.pid, &status, WNOHANG) == d->proc.pid) {
            d->proc.pid = -1;
            errno = ECHILD;
            return -1;
        }
        bench_sleep_ms(10);
    }
    bench_kill(&d->proc);
    errno = ETIMEDOUT;
    return -1;
}

int bench_daemon_stop(struct bench_daemon *d)
{
    if (d->proc.pid <= 0)
        return -1;
    kill(d->proc.pid, SIGTERM);
    return bench_wait(&d->proc);
}

/* ---- /proc and files ------------------------------------------------------------ */

int64_t bench_proc_cpu_ns(pid_t pid)
{
    char path[64], sub[320];
    int64_t total = 0;
    struct dirent *e;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    dir = opendir(path);
    if (!dir)
        return -1;
    while ((e = readdir(dir)) != NULL) {
        long long ns;
        if (e->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(sub, sizeof(sub), "%s/%s/schedstat", path, e->d_name) >= sizeof(sub))
            continue;
        FILE *f = fopen(sub, "r");
        if (!f)
            continue;
        if (fscanf(f, "%lld", &ns) == 1)
            total += ns;
        fclose(f);
    }
    closedir(dir);
    return total;
}

long bench_proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, flen) == 0) {
            kb = strtol(line + flen, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

int64_t bench_file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

void bench_rm_rf(const char *path)
{
    DIR *dir = opendir(path);
    struct dirent *e;
    char sub[1024];

    if (!dir) {
        unlink(path);
        return;
    }
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        struct stat sb;
        if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
            bench_rm_rf(sub);
        else
            unlink(sub);
    }
    closedir(dir);
    rmdir(path);
}

/* The path of `name` beside this program (bin/), or name itself. */
void bench_sibling(char *out, size_t cap, const char *name)
{
    char dir[1024];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);

    if (n <= 0) {
        snprintf(out, cap, "%s", name);
        return;
    }
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap)
        snprintf(out, cap, "%s", name);
}

int bench_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}
