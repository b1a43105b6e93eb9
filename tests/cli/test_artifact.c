/*
 * test_artifact.c: `track artifact put|list|get|verify` as a user runs them,
 * the built `track` binary against a real trackd: text and JSON output,
 * dedup, a directory kept whole, refused paths and links (exit 2 for usage,
 * 1 for refusals), a corrupt blob found by verify and by `trackd --check`,
 * the counts in `track status` and `track run show`, the help, and a
 * 256 MiB file moved up and down with trackd's peak RSS (VmHWM) growing by
 * under 64 MB and the client's (wait4's ru_maxrss) under 32 MB more than
 * for a tiny file. Under ASan both run with a 16 MiB quarantine (the
 * default 256 MiB keeps freed memory resident and would measure ASan).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon d;
static char T[300];
static char RUN[33];
static char RUN_ENV[64];

static void start_small_quarantine(void)
{
    const char *old = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=16", old ? old : "", old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    int rc = fx_daemon_start(&d, NULL);
    if (old)
        setenv("ASAN_OPTIONS", old, 1);
    else
        unsetenv("ASAN_OPTIONS");
    cr_assert_eq(rc, 0, "trackd did not start");
}

static void setup(void)
{
    char *out = NULL, *err = NULL;
    unsetenv("TRACK_RUN_ID");
    start_small_quarantine();
    snprintf(T, sizeof(T), "%s/local", d.dir);
    cr_assert_eq(mkdir(T, 0700), 0);
    cr_assert_eq(fx_track(&d, NULL, NULL, &out, &err, "run", "start", NULL), 0, "%s", err);
    snprintf(RUN, sizeof(RUN), "%.32s", out);
    snprintf(RUN_ENV, sizeof(RUN_ENV), "TRACK_RUN_ID=%s", RUN);
    free(out);
    free(err);
}

static void teardown(void)
{
    fx_daemon_cleanup(&d, 0);
}

TestSuite(cli_artifact, .init = setup, .fini = teardown, .timeout = 240);

/* `track ARGS` with TRACK_RUN_ID set; exit status, output kept in out and err. */
#define TRACK(out, err, ...)                                                                       \
    fx_track(&d, (const char *const[]){RUN_ENV, NULL}, NULL, out, err, __VA_ARGS__, NULL)

Test(cli_artifact, put_list_get_verify)
{
    char f[400], dir[400], p[600], *out = NULL, *err = NULL;

    snprintf(f, sizeof(f), "%s/model.pt", T);
    fx_write_random(f, 2500000, 1);
    cr_assert_eq(TRACK(&out, &err, "artifact", "put", f), 0, "%s", err);
    cr_assert(strstr(out, "stored 1 file") && strstr(out, "0 already stored"), "%s", out);
    free(out);
    free(err);
    /* again under another name: nothing sent */
    cr_assert_eq(TRACK(&out, &err, "artifact", "put", f, "--as", "copy/model.pt"), 0, "%s", err);
    cr_assert(strstr(out, "0 B sent, 1 already stored"), "%s", out);
    free(out);
    free(err);
    snprintf(dir, sizeof(dir), "%s/ckpt", T);
    mkdir(dir, 0700);
    snprintf(p, sizeof(p), "%s/ckpt/sub", T);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/ckpt/sub/w.bin", T);
    fx_write_random(p, 70000, 2);
    snprintf(p, sizeof(p), "%s/ckpt/config.json", T);
    fx_write_file(p, "{\"lr\": 0.1}\n", 12);
    cr_assert_eq(TRACK(&out, &err, "artifact", "put", "--run", RUN, dir), 0, "%s", err);
    cr_assert(strstr(out, "stored 2 files"), "%s", out);
    free(out);
    free(err);

    cr_assert_eq(TRACK(&out, &err, "artifact", "list", RUN), 0, "%s", err);
    cr_assert(strstr(out, "PATH") && strstr(out, "DIGEST"), "%s", out);
    cr_assert(strstr(out, "ckpt/config.json") && strstr(out, "ckpt/sub/w.bin") &&
                  strstr(out, "copy/model.pt") && strstr(out, "model.pt"),
              "%s", out);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "artifact", "list", "--json"), 0, "%s", err);
    json_error_t je;
    json_t *arr = json_loads(out, 0, &je);
    cr_assert(json_is_array(arr), "%s", out);
    cr_assert_eq(json_array_size(arr), 4);
    json_t *first = json_array_get(arr, 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "path")), "ckpt/config.json");
    cr_assert_eq(json_integer_value(json_object_get(first, "size")), 12);
    cr_assert_eq(strlen(json_string_value(json_object_get(first, "digest"))), 64);
    cr_assert(json_integer_value(json_object_get(first, "logged_ms")) > 1700000000000LL);
    json_decref(arr);
    free(out);
    free(err);

    /* a file into an existing directory, a directory into a new one */
    cr_assert_eq(TRACK(&out, &err, "artifact", "get", RUN, "model.pt", "-o", T), 0, "%s", err);
    free(out);
    free(err);
    snprintf(p, sizeof(p), "%s/model.pt", T);
    cr_assert(fx_same_file(f, p));
    snprintf(p, sizeof(p), "%s/back", T);
    cr_assert_eq(TRACK(&out, &err, "artifact", "get", "ckpt", "--output", p), 0, "%s", err);
    cr_assert(strstr(out, "wrote 2 files"), "%s", out);
    free(out);
    free(err);
    char a[600], b[600];
    snprintf(a, sizeof(a), "%s/ckpt/sub/w.bin", T);
    snprintf(b, sizeof(b), "%s/back/sub/w.bin", T);
    cr_assert(fx_same_file(a, b));

    cr_assert_eq(TRACK(&out, &err, "artifact", "verify"), 0, "%s", err);
    cr_assert(strstr(out, "ok: 3 blobs"), "%s", out);
    free(out);
    free(err);

    /* counts */
    cr_assert_eq(TRACK(&out, &err, "status"), 0, "%s", err);
    cr_assert(strstr(out, "artifacts       4"), "%s", out);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "run", "show", RUN), 0, "%s", err);
    char want[100];
    snprintf(want, sizeof(want), "artifacts   4 (%d bytes)", 2500000 * 2 + 70000 + 12);
    cr_assert(strstr(out, want), "%s", out);
    free(out);
    free(err);
}

Test(cli_artifact, refused_paths_and_links)
{
    char f[400], dir[400], p[600], *out = NULL, *err = NULL;
    snprintf(f, sizeof(f), "%s/x", T);
    fx_write_file(f, "x", 1);
    const char *bad[] = {"../x", "/abs", "a//b", "a\\b", "a/../b", NULL};
    for (int i = 0; bad[i]; i++) {
        cr_assert_eq(TRACK(&out, &err, "artifact", "put", f, "--as", bad[i]), 2, "%s", bad[i]);
        cr_assert(strstr(err, bad[i]), "the message names the path: %s", err);
        free(out);
        free(err);
        cr_assert_eq(TRACK(&out, &err, "artifact", "get", RUN, bad[i]), 2, "%s", bad[i]);
        free(out);
        free(err);
    }
    snprintf(dir, sizeof(dir), "%s/d", T);
    mkdir(dir, 0700);
    snprintf(p, sizeof(p), "%s/d/passwd", T);
    cr_assert_eq(symlink("/etc/passwd", p), 0);
    cr_assert_eq(TRACK(&out, &err, "artifact", "put", dir), 1);
    cr_assert(strstr(err, "symbolic link to /etc/passwd") && strstr(err, "refused"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "artifact", "get", RUN, "nothing"), 1);
    cr_assert(strstr(err, "NOT_FOUND") && strstr(err, "nothing"), "%s", err);
    free(out);
    free(err);
}

Test(cli_artifact, corrupt_blob_found_by_verify_and_check)
{
    char f[400], *out = NULL, *err = NULL;
    snprintf(f, sizeof(f), "%s/w.bin", T);
    fx_write_random(f, 100000, 3);
    cr_assert_eq(TRACK(&out, &err, "artifact", "put", f), 0, "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "artifact", "list", "--json"), 0, "%s", err);
    json_error_t je;
    json_t *arr = json_loads(out, 0, &je);
    char digest[65];
    snprintf(digest, sizeof(digest), "%s",
             json_string_value(json_object_get(json_array_get(arr, 0), "digest")));
    json_decref(arr);
    free(out);
    free(err);
    char blob[600];
    snprintf(blob, sizeof(blob), "%s/blobs/%.2s/%s", d.dir, digest, digest + 2);
    chmod(blob, 0600);
    int fd = open(blob, O_WRONLY);
    cr_assert_geq(fd, 0, "%s", blob);
    cr_assert_eq(pwrite(fd, "!", 1, 50000), 1);
    close(fd);
    cr_assert_eq(TRACK(&out, &err, "artifact", "verify", RUN), 1, "%s", out);
    cr_assert(strstr(out, "corrupt") && strstr(out, "w.bin"), "%s", out);
    cr_assert(strstr(err, "1 artifact"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    const char *argv[] = {TRACKD_BIN, "--data-dir", d.dir, "--check", NULL};
    cr_assert_eq(fx_run(argv, NULL, NULL, &out, &err), 1);
    cr_assert(strstr(err, digest), "%s", err);
    free(out);
    free(err);
}

Test(cli_artifact, help_documents_options_and_examples)
{
    const char *verbs[] = {"put", "list", "get", "verify", NULL};
    for (int i = 0; verbs[i]; i++) {
        char *out = NULL, *err = NULL;
        cr_assert_eq(TRACK(&out, &err, "artifact", verbs[i], "--help"), 0, "%s", err);
        cr_assert(strstr(out, "examples:"), "%s", out);
        cr_assert_null(strstr(out, "(undocumented)"), "%s", out);
        if (strcmp(verbs[i], "put") == 0)
            cr_assert(strstr(out, "--as PATH") && strstr(out, "default"), "%s", out);
        if (strcmp(verbs[i], "get") == 0)
            cr_assert(strstr(out, "--output OUT") && strstr(out, "default"), "%s", out);
        free(out);
        free(err);
    }
}

/* ---- bounded memory ------------------------------------------------------------------- */

static long status_kb(pid_t pid, const char *name)
{
    char path[64], line[256];
    long v = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, name, strlen(name)) == 0)
            v = strtol(line + strlen(name), NULL, 10);
    fclose(f);
    return v;
}

/* Runs `track --server URI args...` (output discarded); its exit status,
 * and its peak RSS in kB (wait4) into *maxrss. */
static int track_rss(long *maxrss, const char *const *args)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = TRACK_BIN;
    argv[n++] = "--server";
    argv[n++] = d.uri;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        setenv("TRACK_NO_AUTOSTART", "1", 1);
        setenv("TRACK_RUN_ID", RUN, 1);
        setenv("ASAN_OPTIONS", "detect_leaks=0:quarantine_size_mb=16", 1);
        execv(TRACK_BIN, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &st, 0, &ru), pid);
    *maxrss = ru.ru_maxrss;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(cli_artifact, file_256mib_moves_with_bounded_rss, .timeout = 280)
{
    char small[400], big[400], out_s[400], out_b[400];
    long rss_small_put, rss_big_put, rss_small_get, rss_big_get;
    size_t n = 256u << 20;

    snprintf(small, sizeof(small), "%s/small.bin", T);
    fx_write_random(small, 1000, 1);
    snprintf(big, sizeof(big), "%s/big.bin", T);
    fx_write_random(big, n, 2);
    snprintf(out_s, sizeof(out_s), "%s/small.back", T);
    snprintf(out_b, sizeof(out_b), "%s/big.back", T);

    cr_assert_eq(track_rss(&rss_small_put, (const char *const[]){"artifact", "put", small, NULL}),
                 0);
    cr_assert_eq(track_rss(&rss_small_get, (const char *const[]){"artifact", "get", "small.bin",
                                                                 "-o", out_s, NULL}),
                 0);
    long hwm0 = status_kb(d.pid, "VmHWM:");
    cr_assert_eq(track_rss(&rss_big_put, (const char *const[]){"artifact", "put", big, NULL}), 0);
    long hwm1 = status_kb(d.pid, "VmHWM:");
    cr_assert_eq(track_rss(&rss_big_get,
                           (const char *const[]){"artifact", "get", "big.bin", "-o", out_b, NULL}),
                 0);
    long hwm2 = status_kb(d.pid, "VmHWM:");
    fprintf(stderr,
            "artifact: 256 MiB: trackd VmHWM %ld kB -> %ld (put) -> %ld kB (get); client "
            "put %ld kB (tiny file %ld), get %ld kB (tiny %ld)\n",
            hwm0, hwm1, hwm2, rss_big_put, rss_small_put, rss_big_get, rss_small_get);
    cr_assert(fx_same_file(big, out_b), "the 256 MiB file came back different");
    cr_assert_lt(hwm2 - hwm0, 64 * 1000, "trackd's peak RSS grew by %ld kB", hwm2 - hwm0);
    cr_assert_lt(rss_big_put - rss_small_put, 32 * 1000,
                 "the uploading client's peak RSS grew "
                 "by %ld kB",
                 rss_big_put - rss_small_put);
    cr_assert_lt(rss_big_get - rss_small_get, 32 * 1000,
                 "the downloading client's peak RSS grew "
                 "by %ld kB",
                 rss_big_get - rss_small_get);
}
