/*
 * load.c: track-load, the load run of the reliability issue (not CI).
 *
 * Starts a fresh trackd on a temporary directory, forks N client processes
 * (32 by default, before this process opens any nanomsg socket: nanomsg's
 * threads do not survive fork) that for D seconds (60 by default) each log
 * batches of 100 points through libtrack and set a tag every tenth batch,
 * timing every request. Then it checks with the daemon that every point a
 * client saw acknowledged is stored, exactly once, and prints:
 *
 *   requests/s, p50 and p99 latency, errors (must be 0), lost points
 *   (must be 0), extra points (must be 0), daemon peak RSS
 *
 *   track-load [--clients N] [--seconds D] [--trackd PATH]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "track.h"

#define BUCKETS_PER_DECADE 20
#define N_BUCKETS          (7 * BUCKETS_PER_DECADE) /* 1 us .. 10 s */
#define BATCH              100

struct report {
    char run[33];
    long requests, errors, acked_points;
    long hist[N_BUCKETS];
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int bucket(int64_t us)
{
    if (us < 1)
        us = 1;
    int b = (int)(log10((double)us) * BUCKETS_PER_DECADE);
    return b < 0 ? 0 : b >= N_BUCKETS ? N_BUCKETS - 1 : b;
}

static double bucket_us(int b)
{
    return pow(10.0, (b + 0.5) / BUCKETS_PER_DECADE);
}

static void record(struct report *r, int64_t t0, int rc, const struct track_err *e)
{
    r->requests++;
    r->hist[bucket(now_us() - t0)]++;
    if (rc || e->code == TRACK_E_SPOOLED)
        r->errors++;
}

static void client(const char *uri, int index, int seconds, int fd)
{
    struct track_opts o = {.server = uri,
                           .no_spool = 1,
                           .flush_points = 1 << 20,
                           .flush_interval_ms = 3600 * 1000,
                           .timeout_ms = 10000};
    struct report r = {0};
    struct track_client *c;
    struct track_err e = {0};
    track_run_id id;
    char name[32];

    snprintf(name, sizeof(name), "load-%d", index);
    struct track_run_opts ro = {.experiment = "load", .name = name};
    if (track_client_open(&o, &c, &e) || track_run_start(c, &ro, &id, &e)) {
        fprintf(stderr, "track-load: client %d: %s\n", index, e.msg);
        _exit(1);
    }
    track_run_id_hex(&id, r.run);
    int64_t end = now_us() + (int64_t)seconds * 1000000;
    long step = 0;
    for (long it = 0; now_us() < end; it++) {
        for (int i = 0; i < BATCH; i++, step++)
            track_log_metric(c, "load", (double)step * 0.5, step, 0, &e);
        int64_t t0 = now_us();
        e.code = 0;
        int rc = track_flush(c, &e);
        record(&r, t0, rc, &e);
        if (rc == 0 && e.code == 0)
            r.acked_points += BATCH;
        if (it % 10 == 9) {
            char v[32];
            snprintf(v, sizeof(v), "%ld", it);
            t0 = now_us();
            e.code = 0;
            rc = track_set_tag(c, "progress", v, &e);
            record(&r, t0, rc, &e);
        }
    }
    track_run_end(c, TRACK_FINISHED, &e);
    track_client_close(c);
    ssize_t w = write(fd, &r, sizeof(r));
    _exit(w == (ssize_t)sizeof(r) ? 0 : 1);
}

static long vm_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static int sock_alive(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0), ok;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"clients", required_argument, NULL, 'c'},
                                             {"seconds", required_argument, NULL, 's'},
                                             {"trackd", required_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int clients = 32, seconds = 60, opt;
    char trackd[1024] = "", dir[] = "/tmp/track-load-XXXXXX", uri[256], sock[200], log[200];

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            clients = (int)strtol(optarg, NULL, 10);
            break;
        case 's':
            seconds = (int)strtol(optarg, NULL, 10);
            break;
        case 't':
            snprintf(trackd, sizeof(trackd), "%s", optarg);
            break;
        default:
            printf("usage: track-load [--clients N] [--seconds D] [--trackd PATH]\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (clients < 1 || clients > 256 || seconds < 1 || seconds > 3600) {
        fprintf(stderr, "track-load: --clients 1..256, --seconds 1..3600\n");
        return 2;
    }
    if (!trackd[0]) {
        char self[900];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        snprintf(trackd, sizeof(trackd), "%s/trackd", self);
    }
    if (!mkdtemp(dir))
        return 1;
    snprintf(sock, sizeof(sock), "%s/trackd.sock", dir);
    snprintf(uri, sizeof(uri), "ipc://%s", sock);
    snprintf(log, sizeof(log), "%s/trackd.log", dir);

    pid_t daemon = fork();
    if (daemon == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        execl(trackd, trackd, "--data-dir", dir, "--listen", uri, "--log-level", "warn",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && !sock_alive(sock); i++)
        usleep(10000);
    if (!sock_alive(sock)) {
        fprintf(stderr, "track-load: %s did not start (log %s)\n", trackd, log);
        return 1;
    }

    int pipes[256][2];
    pid_t pids[256];
    for (int i = 0; i < clients; i++) {
        if (pipe(pipes[i]) < 0)
            return 1;
        pids[i] = fork();
        if (pids[i] == 0) {
            close(pipes[i][0]);
            client(uri, i, seconds, pipes[i][1]);
        }
        close(pipes[i][1]);
    }
    struct report total = {0};
    static struct report reps[256];
    int failed = 0;
    for (int i = 0; i < clients; i++) {
        ssize_t n = read(pipes[i][0], &reps[i], sizeof(reps[i]));
        int st;
        waitpid(pids[i], &st, 0);
        close(pipes[i][0]);
        if (n != (ssize_t)sizeof(reps[i]) || !WIFEXITED(st) || WEXITSTATUS(st)) {
            failed++;
            continue;
        }
        total.requests += reps[i].requests;
        total.errors += reps[i].errors;
        total.acked_points += reps[i].acked_points;
        for (int b = 0; b < N_BUCKETS; b++)
            total.hist[b] += reps[i].hist[b];
    }
    long hwm = vm_hwm_kb(daemon);

    /* every acknowledged point stored exactly once? */
    struct track_opts o = {.server = uri, .no_spool = 1, .timeout_ms = 30000};
    struct track_client *c;
    struct track_err e = {0};
    long lost = 0, extra = 0;
    if (track_client_open(&o, &c, &e) == 0) {
        for (int i = 0; i < clients; i++) {
            struct track_result *res;
            struct track_run_info info;
            if (!reps[i].run[0] || track_run_get(c, reps[i].run, &res, &info, &e)) {
                lost += reps[i].acked_points;
                continue;
            }
            long stored = 0;
            for (size_t k = 0; k < info.n_metrics; k++)
                if (strcmp(info.metrics[k].key, "load") == 0)
                    stored = (long)info.metrics[k].count;
            if (stored < reps[i].acked_points)
                lost += reps[i].acked_points - stored;
            else
                extra += stored - reps[i].acked_points;
            track_result_free(res);
        }
        track_client_close(c);
    }
    kill(daemon, SIGTERM);
    int st;
    waitpid(daemon, &st, 0);

    long seen = 0, p50 = -1, p99 = -1;
    for (int b = 0; b < N_BUCKETS; b++) {
        seen += total.hist[b];
        if (p50 < 0 && seen * 2 >= total.requests)
            p50 = b;
        if (p99 < 0 && seen * 100 >= total.requests * 99)
            p99 = b;
    }
    printf("track-load: %d clients over ipc:// for %d s (batches of %d points, a tag every "
           "10th batch)\n",
           clients, seconds, BATCH);
    printf("  requests        %ld (%.0f/s)\n", total.requests, (double)total.requests / seconds);
    printf("  points          %ld acknowledged (%.0f/s)\n", total.acked_points,
           (double)total.acked_points / seconds);
    printf("  latency p50     %.2f ms\n", p50 >= 0 ? bucket_us((int)p50) / 1000 : NAN);
    printf("  latency p99     %.2f ms\n", p99 >= 0 ? bucket_us((int)p99) / 1000 : NAN);
    printf("  errors          %ld\n", total.errors + failed);
    printf("  lost points     %ld\n", lost);
    printf("  extra points    %ld\n", extra);
    printf("  trackd peak RSS %.1f MB; clean stop: %s\n", hwm / 1024.0,
           WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "yes" : "no");
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "track-load: could not remove %s\n", dir);
    return (total.errors || failed || lost || extra) ? 1 : 0;
}
