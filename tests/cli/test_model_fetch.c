/*
 * test_model_fetch.c: `track model get REF -o DIR` and `track lineage REF`
 * as the built binaries run them against a real trackd. An artifact is put
 * with `track artifact put`, registered and aliased; -o downloads the
 * version's bytes into DIR (made when missing) under the artifact path's
 * last segment, and they stay the version's pinned bytes after the run's
 * artifact at that path is replaced. Lineage from NAME@ALIAS and
 * NAME/VERSION names the run and the version (text and --json). Errors: an
 * unknown alias names it and creates nothing; -o naming an existing file
 * is refused and leaves it alone; track_blob_get of a digest the daemon
 * does not hold is NOT_FOUND and writes nothing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon d;
static char T[300];
static char RUN[33];
static char RUN_ENV[64];
static char ORIG_DIGEST[65];

#define TRACK(out, err, ...)                                                                       \
    fx_track(&d, (const char *const[]){RUN_ENV, NULL}, NULL, out, err, __VA_ARGS__, NULL)

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* Every byte value, several times, then a pattern seeded by k. */
static size_t fill(uint8_t *buf, size_t n, unsigned k)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = i < 1024 ? (uint8_t)i : (uint8_t)(i * 31u + k * 7u);
    return n;
}

static int file_equals(const char *path, const uint8_t *want, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uint8_t *got = malloc(n + 1);
    size_t r = fread(got, 1, n + 1, f);
    fclose(f);
    int same = r == n && memcmp(got, want, n) == 0;
    free(got);
    return same;
}

static json_t *parse(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    cr_assert_not_null(j, "not JSON (%s): %s", je.text, s);
    return j;
}

static uint8_t ORIG[300000], NEWB[200000];

static void setup(void)
{
    char f[400], *out = NULL, *err = NULL;

    unsetenv("TRACK_RUN_ID");
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
    snprintf(T, sizeof(T), "%s/local", d.dir);
    cr_assert_eq(mkdir(T, 0700), 0);
    cr_assert_eq(fx_track(&d, NULL, NULL, &out, &err, "run", "start", "--name", "trainer", NULL), 0,
                 "%s", err);
    snprintf(RUN, sizeof(RUN), "%.32s", out);
    snprintf(RUN_ENV, sizeof(RUN_ENV), "TRACK_RUN_ID=%s", RUN);
    free(out);
    free(err);

    snprintf(f, sizeof(f), "%s/orig.bin", T);
    write_file(f, ORIG, fill(ORIG, sizeof(ORIG), 1));
    cr_assert_eq(TRACK(&out, &err, "artifact", "put", f, "--as", "ckpt/weights.bin"), 0, "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "model", "register", "m", "--run", RUN, "--path",
                       "ckpt/weights.bin", "--json"),
                 0, "%s", err);
    json_t *j = parse(out);
    snprintf(ORIG_DIGEST, sizeof(ORIG_DIGEST), "%s",
             json_string_value(json_object_get(j, "digest")));
    cr_assert_eq(strlen(ORIG_DIGEST), 64, "%s", out);
    json_decref(j);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "model", "alias", "m", "production", "1"), 0, "%s", err);
    free(out);
    free(err);
}

static void teardown(void)
{
    fx_daemon_cleanup(&d, 0);
}

TestSuite(model_fetch, .init = setup, .fini = teardown, .timeout = 120);

Test(model_fetch, get_alias_with_output_writes_the_same_bytes_into_a_new_directory)
{
    char dir[400], got[500], *out = NULL, *err = NULL;
    struct stat sb;

    snprintf(dir, sizeof(dir), "%s/out/nested", T); /* neither level exists yet */
    int rc = TRACK(&out, &err, "model", "get", "m@production", "-o", dir);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    snprintf(got, sizeof(got), "%s/weights.bin", dir);
    cr_assert(file_equals(got, ORIG, sizeof(ORIG)), "%s differs from what was put", got);
    cr_assert(strstr(out, got) && strstr(out, ORIG_DIGEST) && strstr(out, "m/1"), "%s", out);
    snprintf(got, sizeof(got), "%s/weights.bin.tmp", dir);
    cr_assert_neq(stat(got, &sb), 0, "a .tmp file was left behind");
    free(out);
    free(err);

    /* again into the same directory: replaced in place, still the same */
    rc = TRACK(&out, &err, "model", "get", "m@production", "--output", dir);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    snprintf(got, sizeof(got), "%s/weights.bin", dir);
    cr_assert(file_equals(got, ORIG, sizeof(ORIG)));
    free(out);
    free(err);
}

Test(model_fetch, get_version_after_the_artifact_was_replaced_gives_the_pinned_bytes)
{
    char f[400], dir[400], got[500], cur[500], *out = NULL, *err = NULL;

    snprintf(f, sizeof(f), "%s/new.bin", T);
    write_file(f, NEWB, fill(NEWB, sizeof(NEWB), 2));
    cr_assert_eq(TRACK(&out, &err, "artifact", "put", f, "--as", "ckpt/weights.bin"), 0, "%s", err);
    free(out);
    free(err);
    /* the run's artifact at that path is now the new file */
    snprintf(cur, sizeof(cur), "%s/current.bin", T);
    cr_assert_eq(TRACK(&out, &err, "artifact", "get", "ckpt/weights.bin", "-o", cur), 0, "%s", err);
    cr_assert(file_equals(cur, NEWB, sizeof(NEWB)), "the artifact was not replaced");
    free(out);
    free(err);

    snprintf(dir, sizeof(dir), "%s/dir2", T);
    int rc = TRACK(&out, &err, "model", "get", "m/1", "-o", dir);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    snprintf(got, sizeof(got), "%s/weights.bin", dir);
    cr_assert(file_equals(got, ORIG, sizeof(ORIG)), "m/1 gave the run's current bytes");
    free(out);
    free(err);

    /* a version registered now pins the new bytes */
    cr_assert_eq(
        TRACK(&out, &err, "model", "register", "m", "--run", RUN, "--path", "ckpt/weights.bin"), 0,
        "%s", err);
    cr_assert_str_eq(out, "m/2\n");
    free(out);
    free(err);
    snprintf(dir, sizeof(dir), "%s/dir3", T);
    cr_assert_eq(TRACK(&out, &err, "model", "get", "m/2", "-o", dir), 0, "%s", err);
    snprintf(got, sizeof(got), "%s/weights.bin", dir);
    cr_assert(file_equals(got, NEWB, sizeof(NEWB)));
    free(out);
    free(err);
}

Test(model_fetch, get_json_shapes_with_and_without_output)
{
    char dir[400], want[500], *out = NULL, *err = NULL;

    snprintf(dir, sizeof(dir), "%s/j", T);
    cr_assert_eq(TRACK(&out, &err, "model", "get", "m@production", "-o", dir, "--json"), 0, "%s",
                 err);
    json_t *j = parse(out);
    snprintf(want, sizeof(want), "%s/weights.bin", dir);
    cr_assert_str_eq(json_string_value(json_object_get(j, "output")), want);
    cr_assert_str_eq(json_string_value(json_object_get(j, "ref")), "m@production");
    cr_assert_str_eq(json_string_value(json_object_get(j, "model")), "m");
    cr_assert_eq(json_integer_value(json_object_get(j, "version")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(j, "run_id")), RUN);
    cr_assert_str_eq(json_string_value(json_object_get(j, "path")), "ckpt/weights.bin");
    cr_assert_str_eq(json_string_value(json_object_get(j, "digest")), ORIG_DIGEST);
    cr_assert_eq(json_integer_value(json_object_get(j, "size")), (json_int_t)sizeof(ORIG));
    json_decref(j);
    free(out);
    free(err);
    cr_assert(file_equals(want, ORIG, sizeof(ORIG)));

    /* without -o: nothing downloaded, no "output", the fetch command kept */
    cr_assert_eq(TRACK(&out, &err, "model", "get", "m/1", "--json"), 0, "%s", err);
    j = parse(out);
    cr_assert_null(json_object_get(j, "output"), "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "digest")), ORIG_DIGEST);
    json_decref(j);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "model", "get", "m/1"), 0, "%s", err);
    snprintf(want, sizeof(want), "track model get m/1 -o DIR");
    cr_assert(strstr(out, want), "%s", out);
    free(out);
    free(err);
}

Test(model_fetch, lineage_of_a_version_names_its_run_and_the_version)
{
    char *out = NULL, *err = NULL;

    cr_assert_eq(TRACK(&out, &err, "lineage", "m@production"), 0, "%s", err);
    cr_assert(strstr(out, "version   m/1 (m@production)"), "%s", out);
    cr_assert(strstr(out, ORIG_DIGEST), "%s", out);
    char want[100];
    snprintf(want, sizeof(want), "run       %s  trainer", RUN);
    cr_assert(strstr(out, want), "no '%s' in:\n%s", want, out);
    cr_assert(strstr(out, "models    1"), "%s", out);
    free(out);
    free(err);

    cr_assert_eq(TRACK(&out, &err, "lineage", "m/1", "--json"), 0, "%s", err);
    json_t *j = parse(out);
    static const char *const keys[] = {"run",        "parent",       "ancestors", "children",
                                       "git_commit", "command",      "artifacts", "model_versions",
                                       "truncated",  "model_version"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert_not_null(json_object_get(j, keys[i]), "key %s missing:\n%s", keys[i], out);
    cr_assert_eq(json_object_size(j), sizeof keys / sizeof keys[0], "no other keys:\n%s", out);
    json_t *mv = json_object_get(j, "model_version");
    cr_assert_eq(json_object_size(mv), 3, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(mv, "model")), "m");
    cr_assert_eq(json_integer_value(json_object_get(mv, "version")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(mv, "digest")), ORIG_DIGEST);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "run"), "run_id")), RUN);
    json_t *vs = json_object_get(j, "model_versions");
    cr_assert_eq(json_array_size(vs), 1, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(vs, 0), "model")), "m");
    json_decref(j);
    free(out);
    free(err);

    /* a RUN's --json has no model_version */
    cr_assert_eq(TRACK(&out, &err, "lineage", RUN, "--json"), 0, "%s", err);
    j = parse(out);
    cr_assert_null(json_object_get(j, "model_version"), "%s", out);
    json_decref(j);
    free(out);
    free(err);
}

Test(model_fetch, an_unknown_alias_is_an_error_naming_it_and_creates_nothing)
{
    char dir[400], *out = NULL, *err = NULL;
    struct stat sb;

    snprintf(dir, sizeof(dir), "%s/never", T);
    int rc = TRACK(&out, &err, "model", "get", "m@staging", "-o", dir);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "NOT_FOUND") && strstr(err, "\"staging\""), "%s", err);
    cr_assert_neq(stat(dir, &sb), 0, "%s was created for a version that does not exist", dir);
    free(out);
    free(err);

    rc = TRACK(&out, &err, "lineage", "m@staging");
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "\"staging\""), "%s", err);
    free(out);
    free(err);
    rc = TRACK(&out, &err, "lineage", "m/9", "--json");
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "no version 9"), "%s", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);
}

Test(model_fetch, output_naming_an_existing_file_is_a_clear_error)
{
    char f[400], below[500], *out = NULL, *err = NULL;
    static const char keep[] = "not a directory";

    snprintf(f, sizeof(f), "%s/plain", T);
    write_file(f, keep, sizeof(keep));
    int rc = TRACK(&out, &err, "model", "get", "m@production", "-o", f);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, f) && strstr(err, "is not a directory"), "%s", err);
    cr_assert(file_equals(f, (const uint8_t *)keep, sizeof(keep)), "%s was changed", f);
    free(out);
    free(err);

    /* a file in the middle of DIR's path likewise */
    snprintf(below, sizeof(below), "%s/sub", f);
    rc = TRACK(&out, &err, "model", "get", "m/1", "-o", below);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "is not a directory") || strstr(err, "Not a directory"), "%s", err);
    free(out);
    free(err);

    /* -o without a value is a usage error */
    rc = TRACK(&out, &err, "model", "get", "m/1", "-o");
    cr_assert_eq(rc, 2, "exit %d: %s", rc, err);
    free(out);
    free(err);
}

Test(model_fetch, blob_get_of_an_unknown_digest_is_not_found_and_writes_nothing)
{
    struct track_opts o = {.server = d.uri, .timeout_ms = 5000};
    struct track_client *c = NULL;
    struct track_err e = {0};
    uint8_t digest[32];
    char path[400];
    struct stat sb;

    memset(digest, 0xab, sizeof(digest));
    snprintf(path, sizeof(path), "%s/ghost.bin", T);
    cr_assert_eq(track_client_open(&o, &c, &e), 0, "%s", e.msg);
    int rc = track_blob_get(c, digest, 10, path, &e);
    cr_assert_eq(rc, TRACK_E_NOT_FOUND, "rc %d: %s", rc, e.msg);
    cr_assert_neq(stat(path, &sb), 0);
    snprintf(path, sizeof(path), "%s/ghost.bin.tmp", T);
    cr_assert_neq(stat(path, &sb), 0);
    cr_assert_eq(track_blob_get(c, digest, -1, path, &e), TRACK_E_INVALID_ARGUMENT);
    track_client_close(c);
}
