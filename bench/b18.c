/*
 * b18.c: B18 of track-bench, sealed tcp:// against plain tcp:// (issue 15),
 * both over loopback in one run, alternating per repetition:
 *
 *   B18a  synchronous track_set_tag round trips (B3's worker) on a sealed
 *         listener vs one started with --plain-tcp (target >= 0.85)
 *   B18b  B1's ingest (one client, flush 8192, B1's points) the same way
 *         (target >= 0.9)
 *   B18c  B18b as points per CPU second (client + trackd), which other load
 *         on a shared machine disturbs far less than wall-clock rates
 *
 * The rows are ratios of medians; a line before them gives the medians of
 * the per-repetition ratios too (the pairs are measured back to back).
 * The client seals in its default envelope version (2, AES-256-GCM, on a
 * CPU with AES-NI); TRACK_SEAL_V1=1 in the environment measures version 1.
 *
 * The sealed daemon gets its key pair from --print-public-key, the bench
 * user from --add-user with a client key made here (proto/seal.h); the
 * workers find them in TRACK_KEY and TRACK_SERVER_KEY, and the plain ones
 * are told TRACK_TEST_PLAIN_TCP=1. What the envelope alone costs per frame
 * is track-seal-bench's.
 */
#include "bench.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seal.h"

#define B18_MAX_REPS 15

/* `trackd ARGS` with its stdout's first line into line. */
static int trackd_line(const char *trackd, const char *dir, const char *a1, const char *a2,
                       const char *a3, const char *a4, const char *a5, const char *a6, char *line,
                       size_t cap)
{
    char *argv[] = {(char *)(uintptr_t)trackd,
                    (char *)(uintptr_t) "--data-dir",
                    (char *)dir,
                    (char *)a1,
                    (char *)a2,
                    (char *)a3,
                    (char *)a4,
                    (char *)a5,
                    (char *)a6,
                    NULL};
    struct bench_proc p;
    if (bench_spawn(&p, argv, 0, 1, NULL) < 0)
        return -1;
    int n = bench_read_line(&p, line, cap, 30000);
    return bench_wait(&p) == 0 && n > 0 ? 0 : -1;
}

/* Both daemons: sealed (keys set up, env for the workers) and plain. */
static int start_pair(const struct bench_b18_cfg *c, struct bench_daemon *sealed,
                      struct bench_daemon *plain, char *suri, char *puri, size_t cap)
{
    char dir[600], key[700], spk[SEAL_KEY_TEXT_BYTES + 8], cpk[SEAL_KEY_TEXT_BYTES];
    struct seal_keypair kp = {0};
    struct seal_err se = {0};

    snprintf(dir, sizeof(dir), "%s/b18-sealed", c->root);
    bench_rm_rf(dir);
    if (mkdir(dir, 0700) < 0 || trackd_line(c->trackd, dir, "--print-public-key", NULL, NULL, NULL,
                                            NULL, NULL, spk, sizeof(spk)) < 0)
        return -1;
    snprintf(key, sizeof(key), "%s/b18-client.key", c->root);
    unlink(key);
    if (seal_keypair_generate(&kp, &se) || seal_key_file_write(key, kp.sk, &se)) {
        seal_keypair_clear(&kp);
        return -1;
    }
    seal_key_to_text(kp.pk, cpk);
    seal_keypair_clear(&kp);
    char out[300];
    if (trackd_line(c->trackd, dir, "--add-user", "bench", "--role", "writer", "--key", cpk, out,
                    sizeof(out)) < 0)
        return -1;
    /* the per-key limits off: B18 measures the envelope, not the limiter,
     * whose default of 5,000 requests a second a key sealed set-tag round
     * trips exceed on a quiet machine */
    char conf[700];
    snprintf(conf, sizeof(conf), "%s/trackd.conf", dir);
    FILE *f = fopen(conf, "w");
    if (!f || fputs("limit_requests = 0\nlimit_bytes = 0\n", f) < 0) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    setenv("TRACK_KEY", key, 1);
    setenv("TRACK_SERVER_KEY", spk, 1);
    snprintf(suri, cap, "tcp://127.0.0.1:%d", bench_free_port());
    snprintf(puri, cap, "tcp://127.0.0.1:%d", bench_free_port());
    const char *sx[] = {"--listen", suri, NULL};
    const char *px[] = {"--listen", puri, "--plain-tcp", NULL};
    if (bench_daemon_start_ex(sealed, c->trackd, c->root, "b18-sealed", sx, 1) < 0)
        return -1;
    if (bench_daemon_start_ex(plain, c->trackd, c->root, "b18-plain", px, 0) < 0) {
        bench_daemon_stop(sealed);
        return -1;
    }
    bench_sleep_ms(100); /* the tcp listener binds just after the ipc one */
    return 0;
}

void bench_b18(const struct bench_b18_cfg *c)
{
    struct bench_daemon s, p;
    char suri[64], puri[64], line[256], ns[32];
    double rt_s[B18_MAX_REPS], rt_p[B18_MAX_REPS], in_s[B18_MAX_REPS], in_p[B18_MAX_REPS];
    double cpu_s[B18_MAX_REPS], cpu_p[B18_MAX_REPS];
    int reps = c->reps < B18_MAX_REPS ? c->reps : B18_MAX_REPS;

    if (start_pair(c, &s, &p, suri, puri, sizeof(suri)) < 0) {
        c->fail("B18", "the sealed or plain trackd did not start");
        return;
    }
    snprintf(ns, sizeof(ns), "%lld", (long long)c->rt_n);
    for (int r = 0; r < reps; r++) {
        long long t, n;
        double secs, cpu;
        setenv("TRACK_TEST_PLAIN_TCP", "1", 1);
        if (c->worker("settag", puri, ns, line, sizeof(line)) < 0 ||
            sscanf(line, "%lld %lld", &t, &n) != 2)
            goto failed;
        rt_p[r] = (double)n * 1e9 / (double)t;
        struct bench_daemon at = p;
        snprintf(at.uri, sizeof(at.uri), "%s", puri);
        if (c->ingest(&at, c->ingest_n, &secs, &cpu) < 0)
            goto failed;
        in_p[r] = (double)c->ingest_n / secs;
        cpu_p[r] = (double)c->ingest_n / cpu;
        unsetenv("TRACK_TEST_PLAIN_TCP");
        if (c->worker("settag", suri, ns, line, sizeof(line)) < 0 ||
            sscanf(line, "%lld %lld", &t, &n) != 2)
            goto failed;
        rt_s[r] = (double)n * 1e9 / (double)t;
        at = s;
        snprintf(at.uri, sizeof(at.uri), "%s", suri);
        if (c->ingest(&at, c->ingest_n, &secs, &cpu) < 0)
            goto failed;
        in_s[r] = (double)c->ingest_n / secs;
        cpu_s[r] = (double)c->ingest_n / cpu;
        fprintf(stderr,
                "  B18 rep %d: set-tag %.0f rt/s sealed, %.0f plain; ingest %.0f pts/s sealed, "
                "%.0f plain\n",
                r + 1, rt_s[r], rt_p[r], in_s[r], in_p[r]);
    }
    /* each repetition measures both sides back to back: the median of the
     * per-repetition ratios is less disturbed by load that comes and goes
     * between repetitions than the ratio of the two medians */
    double qa[B18_MAX_REPS], qb[B18_MAX_REPS], qc[B18_MAX_REPS];
    for (int r = 0; r < reps; r++) {
        qa[r] = rt_s[r] / rt_p[r];
        qb[r] = in_s[r] / in_p[r];
        qc[r] = cpu_s[r] / cpu_p[r];
    }
    fprintf(stderr, "  B18 paired (median of the per-repetition ratios): a %.2f, b %.2f, c %.2f\n",
            bench_median(qa, reps), bench_median(qb, reps), bench_median(qc, reps));
    double a = bench_median(rt_s, reps), b = bench_median(rt_p, reps);
    c->row("B18a", "set-tag round trips, sealed vs plain tcp (loopback)", "ratio >= 0.85", a, b,
           "rt", 0.85);
    a = bench_median(in_s, reps);
    b = bench_median(in_p, reps);
    c->row("B18b", "B1 ingest (flush 8192), sealed vs plain tcp (loopback)", "ratio >= 0.9", a, b,
           "pts", 0.9);
    a = bench_median(cpu_s, reps);
    b = bench_median(cpu_p, reps);
    c->row("B18c", "B18b per CPU second (client + trackd)", "ratio >= 0.9", a, b, "pts/cpu", 0.9);
    goto out;
failed:
    c->fail("B18", "a worker failed (see the worker log)");
out:
    unsetenv("TRACK_TEST_PLAIN_TCP");
    unsetenv("TRACK_KEY");
    unsetenv("TRACK_SERVER_KEY");
    bench_daemon_stop(&s);
    bench_daemon_stop(&p);
    if (!c->keep) {
        bench_rm_rf(s.dir);
        bench_rm_rf(p.dir);
    }
}
