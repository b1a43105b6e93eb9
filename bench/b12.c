/*
 * b12.c: track-bench's B12 and B13 (the artifacts issue): a 1 GiB file
 * (256 MiB with --quick, 8 MiB with --smoke) put and got with the `track`
 * CLI against `cp`, its one hash pass as the ceiling, and a put again
 * (dedup) against `b2sum`. Moved out of bench.c as it was.
 */
#include "bench.h"
#include "orch.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- B12, B13: artifacts ------------------------------------------------------------- */

/* Runs argv (output discarded) and times it: ms, or -1 when it failed;
 * *maxrss_kb (may be NULL) gets its peak RSS. */
static double spawn_rss_ms(char *const argv[], long *maxrss_kb)
{
    int64_t t0 = bench_now_ns();
    struct rusage ru;
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        note("  `%s %s ...` failed (%d)", argv[0], argv[1] ? argv[1] : "", status);
        return -1;
    }
    if (maxrss_kb)
        *maxrss_kb = ru.ru_maxrss;
    return (double)(bench_now_ns() - t0) / 1e6;
}

static int write_random_file(const char *path, int64_t bytes)
{
    FILE *f = fopen(path, "wb");
    uint64_t buf[8192];
    int64_t done = 0;

    if (!f)
        return -1;
    for (uint64_t x = 1; done < bytes; x++) {
        for (size_t i = 0; i < 8192; i++)
            buf[i] = bench_mix(x * 8192 + i);
        size_t k = bytes - done < (int64_t)sizeof(buf) ? (size_t)(bytes - done) : sizeof(buf);
        if (fwrite(buf, 1, k, f) != k) {
            fclose(f);
            return -1;
        }
        done += (int64_t)k;
    }
    return fclose(f);
}

/* Milliseconds to hash `path` once with BLAKE2b-256 (libsodium, the
 * digest artifacts are named by), reading it in 1 MiB pieces; -1 on error. */
static double hash_file_ms(const char *path)
{
    static uint8_t buf[1 << 20];
    crypto_generichash_state h;
    uint8_t out[32];
    int64_t t0 = bench_now_ns();
    int fd = open(path, O_RDONLY);
    ssize_t n;

    if (fd < 0 || sodium_init() < 0)
        return -1;
    crypto_generichash_init(&h, NULL, 0, 32);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        crypto_generichash_update(&h, buf, (size_t)n);
    crypto_generichash_final(&h, out, 32);
    close(fd);
    return n < 0 ? -1 : (double)(bench_now_ns() - t0) / 1e6;
}

void bench_b12(void)
{
    struct bench_daemon d;
    char file[700], copy[700], out[700], run1[64], run2[64], what[400];
    long rss_put = 0, rss_get = 0, rss_dedup = 0;
    double mb = (double)cfg.b12_bytes / 1e6;

    if (!have_cli("B12"))
        return;
    if (bench_daemon_start(&d, cfg.trackd, cfg.root, "b12") < 0) {
        fail_section("B12", "trackd did not start");
        return;
    }
    snprintf(file, sizeof(file), "%s/artifact.bin", cfg.root);
    snprintf(copy, sizeof(copy), "%s/artifact.cp", cfg.root);
    snprintf(out, sizeof(out), "%s/artifact.out", cfg.root);
    if (write_random_file(file, cfg.b12_bytes) != 0 ||
        worker_line("run-start", d.uri, NULL, NULL, NULL, run1, sizeof(run1)) < 0 ||
        worker_line("run-start", d.uri, NULL, NULL, NULL, run2, sizeof(run2)) < 0) {
        fail_section("B12", "setting up failed");
        goto out;
    }
    char *cp[] = {(char *)(uintptr_t) "/bin/cp", file, copy, NULL};
    char *put[] = {cfg.track,
                   (char *)(uintptr_t) "--server",
                   d.uri,
                   (char *)(uintptr_t) "--run",
                   run1,
                   (char *)(uintptr_t) "artifact",
                   (char *)(uintptr_t) "put",
                   file,
                   (char *)(uintptr_t) "--as",
                   (char *)(uintptr_t) "artifact.bin",
                   NULL};
    char *get[] = {cfg.track,
                   (char *)(uintptr_t) "--server",
                   d.uri,
                   (char *)(uintptr_t) "--run",
                   run1,
                   (char *)(uintptr_t) "artifact",
                   (char *)(uintptr_t) "get",
                   (char *)(uintptr_t) "artifact.bin",
                   (char *)(uintptr_t) "-o",
                   out,
                   NULL};
    char *dedup[] = {cfg.track,
                     (char *)(uintptr_t) "--server",
                     d.uri,
                     (char *)(uintptr_t) "--run",
                     run2,
                     (char *)(uintptr_t) "artifact",
                     (char *)(uintptr_t) "put",
                     file,
                     NULL};
    char *b2[] = {(char *)(uintptr_t) "/usr/bin/b2sum", file, NULL};
    double t_cp1 = spawn_rss_ms(cp, NULL);
    unlink(copy);
    double t_put = spawn_rss_ms(put, &rss_put);
    long hwm_put = bench_proc_kb(d.proc.pid, "VmHWM:");
    double t_cp2 = spawn_rss_ms(cp, NULL);
    unlink(copy);
    double t_get = spawn_rss_ms(get, &rss_get);
    long hwm_get = bench_proc_kb(d.proc.pid, "VmHWM:");
    unlink(out);
    double t_b2 = access(b2[0], X_OK) == 0 ? spawn_rss_ms(b2, NULL) : -1;
    double t_dedup = spawn_rss_ms(dedup, &rss_dedup);
    double t_hash = hash_file_ms(file);
    if (t_cp1 <= 0 || t_cp2 <= 0 || t_put <= 0 || t_get <= 0 || t_dedup <= 0) {
        fail_section("B12", "a transfer failed");
        goto out;
    }
    double cp_rate = mb / ((t_cp1 + t_cp2) / 2 / 1000);
    double up = mb / (t_put / 1000), down = mb / (t_get / 1000);
    snprintf(what, sizeof(what), "artifact put %.0f MiB; peak RSS client %ld MB, trackd %ld MB",
             (double)cfg.b12_bytes / 1048576.0, rss_put / 1000, hwm_put / 1000);
    struct row *row = row_add("B12", what, "ratio >= 0.5");
    snprintf(row->fig, sizeof(row->fig), "%.0f MB/s", up);
    snprintf(row->base, sizeof(row->base), "cp %.0f MB/s", cp_rate);
    snprintf(row->ratio, sizeof(row->ratio), "%.2f", up / cp_rate);
    row->met = yes_no(up / cp_rate >= 0.5);
    snprintf(what, sizeof(what), "artifact get %.0f MiB; peak RSS client %ld MB, trackd %ld MB",
             (double)cfg.b12_bytes / 1048576.0, rss_get / 1000, hwm_get / 1000);
    row = row_add("B12b", what, "ratio >= 0.5");
    snprintf(row->fig, sizeof(row->fig), "%.0f MB/s", down);
    snprintf(row->base, sizeof(row->base), "cp %.0f MB/s", cp_rate);
    snprintf(row->ratio, sizeof(row->ratio), "%.2f", down / cp_rate);
    row->met = yes_no(down / cp_rate >= 0.5);
    if (t_hash > 0) {
        /* a streamed put hashes every byte once (trackd, on arrival), a get
         * once (the client): the best rate one core's hash allows either way */
        row = row_add("B12c", "B12's ceiling: the file hashed once (each way needs one pass)", "");
        snprintf(row->fig, sizeof(row->fig), "%.0f MB/s", mb / (t_hash / 1000));
        snprintf(row->base, sizeof(row->base), "cp %.0f MB/s", cp_rate);
        snprintf(row->ratio, sizeof(row->ratio), "%.2f", mb / (t_hash / 1000) / cp_rate);
        row->met = "-";
    }
    snprintf(what, sizeof(what), "artifact put again: dedup of %.0f MiB, no bytes sent",
             (double)cfg.b12_bytes / 1048576.0);
    row = row_add("B13", what, "ratio <= 2");
    snprintf(row->fig, sizeof(row->fig), "%.0f ms", t_dedup);
    if (t_b2 > 0) {
        snprintf(row->base, sizeof(row->base), "b2sum %.0f ms", t_b2);
        snprintf(row->ratio, sizeof(row->ratio), "%.2f", t_dedup / t_b2);
        row->met = yes_no(t_dedup / t_b2 <= 2);
    } else {
        snprintf(row->base, sizeof(row->base), "no b2sum");
        row->met = "-";
    }
out:
    unlink(file);
    unlink(copy);
    unlink(out);
    bench_daemon_stop(&d);
}
