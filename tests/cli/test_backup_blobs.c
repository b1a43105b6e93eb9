/*
 * test_backup_blobs.c: the backup of a store that holds artifacts, as
 * README's Reliability section says to take it. `track backup FILE` copies
 * the database and names the blobs directory; blobs never change once in
 * place, so a copy of blobs/ taken after the backup holds every blob the
 * copied database names, even while uploads go on. Restored together into
 * another data directory, every artifact comes back byte for byte, `track
 * artifact verify` and `trackd --check` find nothing wrong.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

static struct fx_daemon A, B;

static void teardown(void)
{
    fx_daemon_cleanup(&A, 0);
    fx_daemon_cleanup(&B, 0);
}

TestSuite(backup_blobs, .fini = teardown, .timeout = 120);

static void write_file(const char *path, size_t n, unsigned seed)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    for (size_t i = 0; i < n; i++)
        fputc((int)((i * 2654435761u + seed) >> 13) & 0xff, f);
    fclose(f);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static void track_ok(struct fx_daemon *d, char **out, const char *a1, const char *a2,
                     const char *a3, const char *a4, const char *a5, const char *a6)
{
    char *err = NULL;
    int rc = fx_track(d, NULL, NULL, out, &err, a1, a2, a3, a4, a5, a6, (char *)NULL);
    cr_assert_eq(rc, 0, "track %s %s: exit %d: %s", a1, a2 ? a2 : "", rc, err);
    free(err);
}

Test(backup_blobs, database_backup_then_blobs_copy_restores_every_artifact)
{
    char *out = NULL, run[33] = "", f1[400], f2[400], f3[400], bk[400], blobs_copy[400];
    char cmd[2000];

    cr_assert_eq(fx_daemon_start(&A, NULL), 0, "trackd did not start");
    track_ok(&A, &out, "run", "start", NULL, NULL, NULL, NULL);
    /* the first 32 hex characters in a row are the run's id */
    for (const char *p = out; *p && !run[0]; p++)
        if (strspn(p, "0123456789abcdef") >= 32) {
            memcpy(run, p, 32);
            run[32] = '\0';
        }
    cr_assert(run[0], "no run id in: %s", out);
    free(out);

    snprintf(f1, sizeof f1, "%s/one.bin", A.dir);
    snprintf(f2, sizeof f2, "%s/two.bin", A.dir);
    snprintf(f3, sizeof f3, "%s/late.bin", A.dir);
    write_file(f1, 300000, 1);
    write_file(f2, 70000, 2);
    write_file(f3, 5000, 3);
    track_ok(&A, &out, "artifact", "put", "--run", run, f1, NULL);
    free(out);
    track_ok(&A, &out, "artifact", "put", "--run", run, f2, NULL);
    free(out);

    snprintf(bk, sizeof bk, "%s/backup.db", A.dir);
    track_ok(&A, &out, "backup", bk, NULL, NULL, NULL, NULL);
    char blobs_dir[400];
    snprintf(blobs_dir, sizeof blobs_dir, "%s/blobs", A.dir);
    cr_assert(strstr(out, "2 artifacts") && strstr(out, blobs_dir),
              "backup says where the artifacts' files are: %s", out);
    free(out);
    /* an upload after the backup: its blob may land in the copy, harmless */
    track_ok(&A, &out, "artifact", "put", "--run", run, f3, NULL);
    free(out);
    snprintf(blobs_copy, sizeof blobs_copy, "%s/blobs-copy", A.dir);
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", blobs_dir, blobs_copy);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(fx_daemon_stop(&A), 0);

    /* restore into another data directory: database first, then the blobs */
    cr_assert_eq(fx_daemon_start(&B, NULL), 0);
    cr_assert_eq(fx_daemon_stop(&B), 0);
    const char *restore[] = {TRACKD_BIN, "--data-dir", B.dir, "--restore", bk, NULL};
    char *err = NULL;
    int rc = fx_run(restore, NULL, NULL, &out, &err);
    cr_assert_eq(rc, 0, "restore: %s %s", out, err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/blobs' && cp -a '%s' '%s/blobs'", B.dir, blobs_copy,
             B.dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(fx_daemon_restart(&B, NULL), 0, "trackd on the restored directory");

    track_ok(&B, &out, "artifact", "list", run, "--json", NULL, NULL);
    cr_assert(strstr(out, "one.bin") && strstr(out, "two.bin"), "%s", out);
    cr_assert_null(strstr(out, "late.bin"), "the backup was taken before late.bin: %s", out);
    free(out);
    const char *names[] = {"one.bin", "two.bin"};
    const char *orig[] = {f1, f2};
    for (int i = 0; i < 2; i++) {
        char got[400];
        size_t na, nb;
        snprintf(got, sizeof got, "%s/got-%s", B.dir, names[i]);
        track_ok(&B, &out, "artifact", "get", run, names[i], "-o", got);
        free(out);
        char *a = slurp(orig[i], &na), *b = slurp(got, &nb);
        cr_assert(na == nb && memcmp(a, b, na) == 0, "%s differs after the restore", names[i]);
        free(a);
        free(b);
    }
    track_ok(&B, &out, "artifact", "verify", NULL, NULL, NULL, NULL);
    free(out);
    cr_assert_eq(fx_daemon_stop(&B), 0);
    const char *check[] = {TRACKD_BIN, "--data-dir", B.dir, "--check", NULL};
    rc = fx_run(check, NULL, NULL, &out, &err);
    cr_assert_eq(rc, 0, "trackd --check on the restored directory: %s %s", out, err);
    free(out);
    free(err);
}
