/*
 * lm_bench.c: track-lm-bench, figure B14 of the feedback issue: what
 * tracking costs a training loop. Runs examples/train_charlm (found next
 * to this program in bin/, or --train) with the same seed and settings,
 * alternately tracked (a real trackd of its own, every step's batch_loss,
 * the evaluations, the vocabulary, model and sample artifacts) and with
 * --no-track, and prints the median wall time of each and their ratio
 * (target: tracked <= 1.02 x untracked). Alternating runs share the
 * machine's state (caches, frequency), so a drift hits both; the median of
 * several pairs ignores a stray slow one. A figure, never pass/fail.
 *
 *   track-lm-bench [--runs N] [--steps N] [--smoke] [--train PATH] [--trackd PATH]
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* One run of train_charlm; its wall time in seconds, or -1. */
static double one_run(const char *train, const char *uri, const char *steps, const char *words,
                      int tracked)
{
    const char *args[24];
    char *argv[24];
    int n = 0;
    args[n++] = train;
    args[n++] = "--steps";
    args[n++] = steps;
    args[n++] = "--seed";
    args[n++] = "1";
    args[n++] = "--samples";
    args[n++] = "20";
    args[n++] = "--max-words";
    args[n++] = words;
    if (tracked) {
        args[n++] = "--server";
        args[n++] = uri;
        args[n++] = "--experiment";
        args[n++] = "b14";
    } else {
        args[n++] = "--no-track";
    }
    for (int i = 0; i < n; i++)
        argv[i] = (char *)(uintptr_t)args[i]; /* execv's type; never written */
    argv[n] = NULL;
    int64_t t0 = bench_now_ns();
    int rc = bench_run_quiet(argv);
    double secs = (double)(bench_now_ns() - t0) * 1e-9;
    return rc == 0 ? secs : -1;
}

int main(int argc, char **argv)
{
    char train[PATH_MAX], trackd[PATH_MAX], root[] = "/tmp/track-lm-bench-XXXXXX";
    const char *steps = "3000", *words = "0";
    int runs = 5;

    bench_sibling(train, sizeof train, "train_charlm");
    bench_sibling(trackd, sizeof trackd, "trackd");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0) {
            runs = 1;
            steps = "20";
            words = "500";
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], NULL, 10);
            runs = v > 0 && v <= 50 ? (int)v : 1;
        } else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
            steps = argv[++i];
        } else if (strcmp(argv[i], "--train") == 0 && i + 1 < argc) {
            snprintf(train, sizeof train, "%s", argv[++i]);
        } else if (strcmp(argv[i], "--trackd") == 0 && i + 1 < argc) {
            snprintf(trackd, sizeof trackd, "%s", argv[++i]);
        } else {
            fprintf(stderr, "usage: track-lm-bench [--runs N] [--steps N] [--smoke] [--train PATH] "
                            "[--trackd PATH]\n");
            return 2;
        }
    }
    if (runs > 50)
        runs = 50;
    if (!mkdtemp(root)) {
        fprintf(stderr, "track-lm-bench: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    struct bench_daemon d;
    if (bench_daemon_start(&d, trackd, root, "d")) {
        fprintf(stderr, "track-lm-bench: trackd (%s) did not start\n", trackd);
        bench_rm_rf(root);
        return 1;
    }
    double on[50], off[50];
    int ok = 1;
    /* a warm-up pair, not counted: page cache, the word list, trackd's first run */
    if (one_run(train, d.uri, steps, words, 1) < 0 || one_run(train, d.uri, steps, words, 0) < 0)
        ok = 0;
    for (int i = 0; ok && i < runs; i++) {
        /* alternate which goes first, so neither always follows the other */
        int first = i % 2;
        double a = one_run(train, d.uri, steps, words, first);
        double b = one_run(train, d.uri, steps, words, !first);
        if (a < 0 || b < 0) {
            ok = 0;
            break;
        }
        on[i] = first ? a : b;
        off[i] = first ? b : a;
    }
    bench_daemon_stop(&d);
    bench_rm_rf(root);
    if (!ok) {
        fprintf(stderr, "track-lm-bench: a run of %s failed\n", train);
        return 1;
    }
    double m_on = bench_median(on, runs), m_off = bench_median(off, runs);
    printf("B14 tracking cost of a training loop (train_charlm, %s steps, every step's "
           "batch_loss logged, %d pairs)\n",
           steps, runs);
    printf("  untracked (--no-track)  median %.3f s\n", m_off);
    printf("  tracked                 median %.3f s\n", m_on);
    printf("  ratio tracked/untracked %.4f   (target <= 1.02)\n", m_on / m_off);
    return 0;
}
