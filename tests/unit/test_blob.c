/*
 * test_blob.c: the content-addressed blob store (storage/blob.c) through
 * blob.h, on real files in a fresh mkdtemp directory per test (removed
 * afterwards). Tests reach into blobs/ only to check the layout and modes, to
 * damage a file on purpose, or to age a tmp file. The full-disk test mounts a
 * small tmpfs and fails (does not skip) when it cannot.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "fixture.h"

static char dir[256];
static struct blob_store *bs;
static struct store_err err;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/track-blob-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(sodium_init() >= 0, 1);
    cr_assert_eq(blob_store_open(dir, &bs, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    blob_store_close(bs);
    bs = NULL;
    fx_rmtree(dir);
}

TestSuite(blob, .init = setup, .fini = teardown);

static void hash_of(const void *buf, size_t len, uint8_t d[BLOB_DIGEST_BYTES])
{
    crypto_generichash(d, BLOB_DIGEST_BYTES, buf, len, NULL, 0);
}

/* The bytes 0..255 repeated, so every byte value occurs, then an odd tail. */
static uint8_t *every_byte(size_t len)
{
    uint8_t *b = malloc(len);
    cr_assert_not_null(b);
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(i * 7 + i / 256);
    return b;
}

/* Uploads buf in chunks of `chunk` bytes and commits; the commit's code. */
static int put(const void *buf, size_t len, size_t chunk, uint8_t d[BLOB_DIGEST_BYTES])
{
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists, rc;

    hash_of(buf, len, d);
    rc = blob_upload_begin(bs, len, d, id, &exists, &err);
    if (rc != 0 || exists)
        return rc;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        rc = blob_upload_write(bs, id, off, (const uint8_t *)buf + off, n, &err);
        if (rc != 0)
            return rc;
    }
    return blob_upload_commit(bs, id, &err);
}

/* Files in `sub` (relative to dir), "." and ".." left out. */
static int count_files(const char *sub)
{
    char p[512];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(p, sizeof p, "%s/%s", dir, sub);
    d = opendir(p);
    cr_assert_not_null(d, "%s: %s", p, strerror(errno));
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void blob_file(const uint8_t d[BLOB_DIGEST_BYTES], char *p, size_t cap)
{
    char hex[BLOB_DIGEST_HEX + 1];

    blob_digest_hex(d, hex);
    snprintf(p, cap, "%s/blobs/%.2s/%s", dir, hex, hex + 2);
}

static int count_cb(void *ctx, const struct blob_info *b)
{
    (void)b;
    (*(int *)ctx)++;
    return 0;
}

static int blobs_stored(void)
{
    int n = 0;
    cr_assert_eq(blob_each(bs, count_cb, &n, &err), 0, "%s", err.msg);
    return n;
}

/* ---- digests --------------------------------------------------------------------- */

Test(blob, digest_hex_round_trips_and_parse_is_strict)
{
    uint8_t d[BLOB_DIGEST_BYTES], back[BLOB_DIGEST_BYTES];
    char hex[BLOB_DIGEST_HEX + 1], bad[BLOB_DIGEST_HEX + 2];

    for (int i = 0; i < BLOB_DIGEST_BYTES; i++)
        d[i] = (uint8_t)(i * 37 + 250);
    blob_digest_hex(d, hex);
    cr_assert_eq(strlen(hex), 64);
    cr_assert_eq(blob_digest_parse(hex, back, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(d, back, sizeof d), 0);

    const char *cases[] = {"", "abc", NULL};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(blob_digest_parse(cases[i], back, &err), STORE_E_INVALID);
        cr_assert(strstr(err.msg, "digest"), "message: %s", err.msg);
    }
    snprintf(bad, sizeof bad, "%s", hex);
    bad[63] = '\0'; /* 63 */
    cr_assert_eq(blob_digest_parse(bad, back, NULL), STORE_E_INVALID);
    snprintf(bad, sizeof bad, "%s0", hex); /* 65 */
    cr_assert_eq(blob_digest_parse(bad, back, NULL), STORE_E_INVALID);
    snprintf(bad, sizeof bad, "%s", hex);
    bad[10] = 'A'; /* uppercase */
    cr_assert_eq(blob_digest_parse(bad, back, NULL), STORE_E_INVALID);
    bad[10] = 'g';
    cr_assert_eq(blob_digest_parse(bad, back, NULL), STORE_E_INVALID);
    bad[10] = ' ';
    cr_assert_eq(blob_digest_parse(bad, back, NULL), STORE_E_INVALID);
}

Test(blob, malformed_upload_id_is_invalid_and_unknown_one_not_found)
{
    uint64_t have;

    cr_assert_eq(blob_upload_status(bs, "xyz", &have, NULL, NULL, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "upload id"), "message: %s", err.msg);
    cr_assert_eq(blob_upload_write(bs, NULL, 0, "", 0, &err), STORE_E_INVALID);
    cr_assert_eq(blob_upload_commit(bs, "0123456789ABCDEF0123456789abcdef", &err), STORE_E_INVALID);
    cr_assert_eq(blob_upload_abort(bs, "0123456789abcdef0123456789abcdef", &err),
                 STORE_E_NOT_FOUND);
    cr_assert_eq(
        blob_upload_status(bs, "0123456789abcdef0123456789abcdef", &have, NULL, NULL, &err),
        STORE_E_NOT_FOUND);
}

/* ---- uploads ------------------------------------------------------------------------ */

Test(blob, round_trip_of_every_byte_value)
{
    size_t len = 256 * 1031 + 17;
    uint8_t *data = every_byte(len), *back = malloc(len), d[BLOB_DIGEST_BYTES];
    char path[512];
    struct stat st;
    uint64_t size;
    int fd;

    cr_assert_eq(put(data, len, 4093, d), 0, "%s", err.msg); /* chunks that straddle */
    cr_assert_eq(blob_exists(bs, d, &err), 1);
    cr_assert_eq(blob_size(bs, d, &size, &err), 0, "%s", err.msg);
    cr_assert_eq(size, len);
    blob_file(d, path, sizeof path);
    cr_assert_eq(stat(path, &st), 0, "not at blobs/ab/cdef...: %s", path);
    cr_assert_eq(count_files("blobs/tmp"), 0);

    cr_assert_eq(blob_open_read(bs, d, &fd, &size, &err), 0, "%s", err.msg);
    cr_assert_eq(size, len);
    size_t off = 0, got;
    do {
        cr_assert_eq(
            blob_read_at(fd, off, back + off, len - off < 5000 ? len - off : 5000, &got, &err), 0,
            "%s", err.msg);
        off += got;
    } while (got > 0 && off < len);
    cr_assert_eq(off, len);
    cr_assert_eq(blob_read_at(fd, len, back, 10, &got, &err), 0);
    cr_assert_eq(got, 0, "a read at the end gives nothing");
    close(fd);
    cr_assert_eq(memcmp(data, back, len), 0, "bytes differ after the round trip");
    cr_assert_eq(blob_verify(bs, d, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_unpin(bs, d, &err), 0, "commit hands a pin to the caller: %s", err.msg);
    free(data);
    free(back);
}

Test(blob, empty_blob_round_trips)
{
    uint8_t d[BLOB_DIGEST_BYTES];
    uint64_t size = 99;

    cr_assert_eq(put("", 0, 1, d), 0, "%s", err.msg);
    cr_assert_eq(blob_size(bs, d, &size, &err), 0, "%s", err.msg);
    cr_assert_eq(size, 0);
    cr_assert_eq(blob_verify(bs, d, &err), 0, "%s", err.msg);
}

Test(blob, begin_of_existing_digest_reports_exists_and_makes_no_tmp_file)
{
    uint8_t *data = every_byte(10000), d[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1] = "junk";
    int exists = 0;

    cr_assert_eq(put(data, 10000, 1000, d), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_begin(bs, 10000, d, id, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(exists, 1);
    cr_assert_eq(id[0], '\0', "no upload id for a dedup");
    cr_assert_eq(blob_remove(bs, d, &err), 1, "the dedup begin's pin is held");
    cr_assert_eq(count_files("blobs/tmp"), 0, "a dedup begin made a tmp file");
    cr_assert_eq(blobs_stored(), 1);
    free(data);
}

Test(blob, digest_mismatch_at_commit_keeps_nothing)
{
    uint8_t *data = every_byte(50000), d[BLOB_DIGEST_BYTES], real[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists;
    uint64_t have;

    hash_of(data, 50000, real);
    memcpy(d, real, sizeof d);
    d[0] ^= 1; /* announce another digest */
    cr_assert_eq(blob_upload_begin(bs, 50000, d, id, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, data, 50000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit(bs, id, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "digest"), "message: %s", err.msg);
    cr_assert_eq(count_files("blobs/tmp"), 0, "the tmp file is kept");
    cr_assert_eq(blobs_stored(), 0);
    cr_assert_eq(blob_exists(bs, d, &err), 0);
    cr_assert_eq(blob_exists(bs, real, &err), 0);
    cr_assert_eq(blob_upload_status(bs, id, &have, NULL, NULL, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(blob_unpin(bs, d, &err), STORE_E_NOT_FOUND, "a failed commit keeps a pin");
    free(data);
}

Test(blob, commit_before_all_bytes_arrived_keeps_nothing)
{
    uint8_t *data = every_byte(3000), d[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists;

    hash_of(data, 3000, d);
    cr_assert_eq(blob_upload_begin(bs, 3000, d, id, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, data, 2999, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit(bs, id, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "2999 of the 3000"), "message: %s", err.msg);
    cr_assert_eq(count_files("blobs/tmp"), 0);
    cr_assert_eq(blobs_stored(), 0);
    free(data);
}

Test(blob, write_past_announced_size_is_refused)
{
    uint8_t *data = every_byte(4096), d[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists;
    uint64_t have;

    hash_of(data, 4000, d);
    cr_assert_eq(blob_upload_begin(bs, 4000, d, id, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, data, 4096, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "announced size 4000"), "message: %s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, data, 3000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 3000, data + 3000, 1001, &err), STORE_E_INVALID);
    cr_assert_eq(blob_upload_status(bs, id, &have, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(have, 3000, "a refused chunk wrote something");
    /* the upload goes on with the right chunk */
    cr_assert_eq(blob_upload_write(bs, id, 3000, data + 3000, 1000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit(bs, id, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_verify(bs, d, &err), 0, "%s", err.msg);
    free(data);
}

Test(blob, oversized_write_is_refused_before_any_io)
{
    uint8_t d[BLOB_DIGEST_BYTES] = {1};
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists;

    cr_assert_eq(blob_upload_begin(bs, (uint64_t)BLOB_WRITE_MAX * 2, d, id, &exists, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, NULL, (size_t)BLOB_WRITE_MAX + 1, &err),
                 STORE_E_INVALID);
    cr_assert(strstr(err.msg, "chunk"), "message: %s", err.msg);
    cr_assert_eq(blob_upload_begin(bs, (uint64_t)INT64_MAX + 1, d, id, &exists, &err),
                 STORE_E_INVALID);
    cr_assert(strstr(err.msg, "size"), "message: %s", err.msg);
}

Test(blob, offset_behind_or_past_the_window_is_refused_naming_expected)
{
    size_t len = BLOB_WINDOW_BYTES + 8192;
    uint8_t *data = every_byte(len), d[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists;
    uint64_t have;

    hash_of(data, len, d);
    cr_assert_eq(blob_upload_begin(bs, len, d, id, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, BLOB_WINDOW_BYTES, data + BLOB_WINDOW_BYTES, 1024, &err),
                 STORE_E_INVALID, "a piece ending past the window");
    cr_assert(strstr(err.msg, "window") && strstr(err.msg, "expected 0"), "message: %s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, data, 2048, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 1024, data + 1024, 1024, &err), STORE_E_INVALID,
                 "a chunk sent again is refused");
    cr_assert(strstr(err.msg, "expected 2048"), "message: %s", err.msg);
    cr_assert_eq(blob_upload_status(bs, id, &have, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(have, 2048);
    for (size_t off = 2048; off < len; off += 1u << 20) {
        size_t n = len - off < (1u << 20) ? len - off : 1u << 20;
        cr_assert_eq(blob_upload_write(bs, id, off, data + off, n, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(blob_upload_commit(bs, id, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_verify(bs, d, &err), 0, "%s", err.msg);
    free(data);
}

Test(blob, upload_resumes_after_store_reopen)
{
    size_t len = 300000;
    uint8_t *data = every_byte(len), d[BLOB_DIGEST_BYTES], d2[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1], found[BLOB_UPLOAD_ID_HEX + 1];
    int exists;
    uint64_t have, size;

    hash_of(data, len, d);
    cr_assert_eq(blob_upload_begin(bs, len, d, id, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, data, 100000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 100000, data + 100000, 77777, &err), 0, "%s", err.msg);
    /* the daemon restarts */
    blob_store_close(bs);
    bs = NULL;
    cr_assert_eq(blob_store_open(dir, &bs, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_find(bs, len, d, found, &err), 0, "%s", err.msg);
    cr_assert_str_eq(found, id);
    cr_assert_eq(blob_upload_status(bs, id, &have, &size, d2, &err), 0, "%s", err.msg);
    cr_assert_eq(have, 177777);
    cr_assert_eq(size, len);
    cr_assert_eq(memcmp(d, d2, sizeof d), 0);
    cr_assert_eq(blob_upload_write(bs, id, have, data + have, len - have, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit(bs, id, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_verify(bs, d, &err), 0, "%s", err.msg);
    cr_assert_eq(count_files("blobs/tmp"), 0);
    free(data);
}

Test(blob, resumed_upload_rehashes_the_bytes_on_disk)
{
    size_t len = 200000;
    uint8_t *data = every_byte(len), d[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1], path[1024], hex[BLOB_DIGEST_HEX + 1];
    int exists, fd;

    hash_of(data, len, d);
    cr_assert_eq(blob_upload_begin(bs, len, d, id, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, data, 1000, &err), 0, "%s", err.msg);
    blob_store_close(bs);
    bs = NULL;
    /* a byte garbled on disk while the daemon was down (a power loss, say) */
    blob_digest_hex(d, hex);
    snprintf(path, sizeof path, "%s/blobs/tmp/%s-%zu-%s", dir, id, len, hex);
    fd = open(path, O_WRONLY);
    cr_assert(fd >= 0, "tmp file not named ID-SIZE-DIGEST: %s", path);
    cr_assert_eq(pwrite(fd, "\xff", 1, 500), 1);
    close(fd);
    cr_assert_eq(blob_store_open(dir, &bs, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 1000, data + 1000, len - 1000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit(bs, id, &err), STORE_E_INVALID,
                 "the hash did not cover the bytes on disk");
    cr_assert_eq(blobs_stored(), 0);
    cr_assert_eq(count_files("blobs/tmp"), 0);
    free(data);
}

Test(blob, abandoned_upload_is_removed_by_tmp_cleanup)
{
    uint8_t *data = every_byte(5000), d1[BLOB_DIGEST_BYTES], d2[BLOB_DIGEST_BYTES];
    char id1[BLOB_UPLOAD_ID_HEX + 1], id2[BLOB_UPLOAD_ID_HEX + 1], path[1024];
    char hex[BLOB_DIGEST_HEX + 1];
    int exists, removed = -1;
    uint64_t have;
    struct timespec old[2] = {{.tv_sec = time(NULL) - 3600}, {.tv_sec = time(NULL) - 3600}};

    hash_of(data, 5000, d1);
    hash_of(data, 4000, d2);
    cr_assert_eq(blob_upload_begin(bs, 5000, d1, id1, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id1, 0, data, 2000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_begin(bs, 4000, d2, id2, &exists, &err), 0, "%s", err.msg);
    /* id1 was last written an hour ago; a stray file too */
    blob_digest_hex(d1, hex);
    snprintf(path, sizeof path, "%s/blobs/tmp/%s-5000-%s", dir, id1, hex);
    cr_assert_eq(utimensat(AT_FDCWD, path, old, 0), 0, "%s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/blobs/tmp/stray", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(utimensat(AT_FDCWD, path, old, 0), 0);
    cr_assert_eq(count_files("blobs/tmp"), 3);

    cr_assert_eq(blob_tmp_cleanup(bs, 600 * 1000, &removed, &err), 0, "%s", err.msg);
    cr_assert_eq(removed, 2);
    cr_assert_eq(count_files("blobs/tmp"), 1);
    cr_assert_eq(blob_upload_status(bs, id1, &have, NULL, NULL, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(blob_unpin(bs, d1, &err), STORE_E_NOT_FOUND, "cleanup left the pin");
    /* the fresh one goes on */
    cr_assert_eq(blob_upload_write(bs, id2, 0, data, 4000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit(bs, id2, &err), 0, "%s", err.msg);
    cr_assert_eq(blobs_stored(), 1);
    /* 0: everything, resumable or not */
    cr_assert_eq(blob_upload_begin(bs, 5000, d1, id1, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_tmp_cleanup(bs, 0, &removed, &err), 0, "%s", err.msg);
    cr_assert_eq(removed, 1);
    cr_assert_eq(count_files("blobs/tmp"), 0);
    free(data);
}

static int tmp_cb(void *ctx, const struct blob_tmp_info *t)
{
    struct blob_tmp_info *out = ctx;

    *out = *t;
    out->name = NULL;
    return 0;
}

Test(blob, tmp_each_reports_uploads_in_flight)
{
    uint8_t *data = every_byte(5000), d[BLOB_DIGEST_BYTES], back[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    struct blob_tmp_info t = {0};
    int exists;

    hash_of(data, 5000, d);
    cr_assert_eq(blob_upload_begin(bs, 5000, d, id, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, data, 1234, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_tmp_each(bs, tmp_cb, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(t.resumable, 1);
    cr_assert_str_eq(t.id, id);
    cr_assert_eq(t.size, 5000);
    cr_assert_eq(t.have, 1234);
    memcpy(back, t.digest, sizeof back);
    cr_assert_eq(memcmp(back, d, sizeof d), 0);
    cr_assert(t.mtime_ms > 0);
    free(data);
}

Test(blob, abort_removes_the_tmp_file_and_the_pin)
{
    uint8_t d[BLOB_DIGEST_BYTES] = {7};
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists;

    cr_assert_eq(blob_upload_begin(bs, 100, d, id, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, "abc", 3, &err), 0, "%s", err.msg);
    cr_assert_eq(count_files("blobs/tmp"), 1);
    cr_assert_eq(blob_upload_abort(bs, id, &err), 0, "%s", err.msg);
    cr_assert_eq(count_files("blobs/tmp"), 0);
    cr_assert_eq(blob_unpin(bs, d, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(blob_upload_abort(bs, id, &err), STORE_E_NOT_FOUND);
}

Test(blob, uploads_in_flight_are_bounded)
{
    char id[BLOB_UPLOAD_ID_HEX + 1], first[BLOB_UPLOAD_ID_HEX + 1];
    uint8_t d[BLOB_DIGEST_BYTES] = {0, 1}; /* never all zero: that names streaming uploads */
    int exists;

    for (int i = 0; i < BLOB_UPLOADS_MAX; i++) {
        d[0] = (uint8_t)i;
        cr_assert_eq(blob_upload_begin(bs, 10, d, id, &exists, &err), 0, "#%d: %s", i, err.msg);
        if (i == 0)
            memcpy(first, id, sizeof id);
    }
    d[0] = 0xff;
    cr_assert_eq(blob_upload_begin(bs, 10, d, id, &exists, &err), STORE_E_FULL);
    cr_assert(strstr(err.msg, "in flight"), "message: %s", err.msg);
    cr_assert_eq(blob_unpin(bs, d, &err), STORE_E_NOT_FOUND, "a refused begin keeps a pin");
    cr_assert_eq(blob_upload_abort(bs, first, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_begin(bs, 10, d, id, &exists, &err), 0, "%s", err.msg);
    /* the limit holds across a restart: the tmp files are uploads in flight */
    blob_store_close(bs);
    bs = NULL;
    cr_assert_eq(blob_store_open(dir, &bs, &err), 0, "%s", err.msg);
    d[0] = 0xfe;
    cr_assert_eq(blob_upload_begin(bs, 10, d, id, &exists, &err), STORE_E_FULL);
}

Test(blob, two_uploads_of_the_same_bytes_leave_one_blob)
{
    uint8_t *data = every_byte(20000), d[BLOB_DIGEST_BYTES];
    char a[BLOB_UPLOAD_ID_HEX + 1], b[BLOB_UPLOAD_ID_HEX + 1];
    int exists;

    hash_of(data, 20000, d);
    cr_assert_eq(blob_upload_begin(bs, 20000, d, a, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_begin(bs, 20000, d, b, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(exists, 0);
    cr_assert_str_neq(a, b);
    cr_assert_eq(blob_upload_write(bs, a, 0, data, 20000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, b, 0, data, 20000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit(bs, a, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit(bs, b, &err), 0, "the second commit: %s", err.msg);
    cr_assert_eq(blobs_stored(), 1);
    cr_assert_eq(count_files("blobs/tmp"), 0);
    cr_assert_eq(blob_verify(bs, d, &err), 0, "%s", err.msg);
    /* each commit, the one that found the blob in place included, handed a pin over */
    cr_assert_eq(blob_unpin(bs, d, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_unpin(bs, d, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_unpin(bs, d, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(blob_upload_find(bs, 20000, d, a, &err), STORE_E_NOT_FOUND);
    free(data);
}

struct par {
    size_t len;
    uint8_t seed;
    int rc;
    char msg[512];
};

static void *par_upload(void *arg)
{
    struct par *p = arg;
    uint8_t *data = malloc(p->len), d[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    struct store_err e = {0};
    int exists;

    for (size_t i = 0; i < p->len; i++)
        data[i] = (uint8_t)(i * p->seed + p->seed);
    hash_of(data, p->len, d);
    p->rc = blob_upload_begin(bs, p->len, d, id, &exists, &e);
    for (size_t off = 0; p->rc == 0 && off < p->len; off += 8192)
        p->rc = blob_upload_write(bs, id, off, data + off,
                                  p->len - off < 8192 ? p->len - off : 8192, &e);
    if (p->rc == 0)
        p->rc = blob_upload_commit(bs, id, &e);
    if (p->rc == 0)
        p->rc = blob_verify(bs, d, &e);
    snprintf(p->msg, sizeof p->msg, "%s", e.msg);
    free(data);
    return NULL;
}

Test(blob, uploads_from_several_threads_complete)
{
    pthread_t t[4];
    struct par p[4];

    for (int i = 0; i < 4; i++) {
        p[i] = (struct par){.len = 300000 + (size_t)i * 1111, .seed = (uint8_t)(3 + 2 * i)};
        cr_assert_eq(pthread_create(&t[i], NULL, par_upload, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(p[i].rc, 0, "thread %d: %s", i, p[i].msg);
    }
    cr_assert_eq(blobs_stored(), 4);
    cr_assert_eq(count_files("blobs/tmp"), 0);
}

/* ---- integrity and modes ----------------------------------------------------------- */

Test(blob, corrupted_blob_is_caught_by_verify)
{
    uint8_t *data = every_byte(70000), d[BLOB_DIGEST_BYTES];
    char path[512], hex[BLOB_DIGEST_HEX + 1];
    uint8_t c;
    int fd;

    cr_assert_eq(put(data, 70000, 9999, d), 0, "%s", err.msg);
    cr_assert_eq(blob_verify(bs, d, &err), 0, "%s", err.msg);
    blob_file(d, path, sizeof path);
    fd = open(path, O_RDWR);
    cr_assert(fd >= 0);
    cr_assert_eq(pread(fd, &c, 1, 65537), 1);
    c ^= 0x10;
    cr_assert_eq(pwrite(fd, &c, 1, 65537), 1);
    close(fd);
    cr_assert_eq(blob_verify(bs, d, &err), STORE_E_CORRUPT);
    blob_digest_hex(d, hex);
    cr_assert(strstr(err.msg, hex), "the message names the blob: %s", err.msg);
    uint8_t missing[BLOB_DIGEST_BYTES] = {0};
    cr_assert_eq(blob_verify(bs, missing, &err), STORE_E_NOT_FOUND);
    free(data);
}

static mode_t mode_of(const char *sub)
{
    char p[1024];
    struct stat st;

    snprintf(p, sizeof p, "%s/%s", dir, sub);
    cr_assert_eq(lstat(p, &st), 0, "%s: %s", p, strerror(errno));
    return st.st_mode & 07777;
}

/* Opens a fresh store under `mask`, uploads one blob and checks every mode
 * while an upload is in flight and after its commit. */
static void check_modes(mode_t mask)
{
    uint8_t d[BLOB_DIGEST_BYTES], d2[BLOB_DIGEST_BYTES] = {9};
    char id[BLOB_UPLOAD_ID_HEX + 1], tmp[1024], hex[BLOB_DIGEST_HEX + 1], sub[80];
    int exists;
    mode_t old;

    blob_store_close(bs);
    bs = NULL;
    fx_rmtree(dir);
    cr_assert_eq(mkdir(dir, 0700), 0);
    old = umask(mask);
    cr_assert_eq(blob_store_open(dir, &bs, &err), 0, "%s", err.msg);
    cr_assert_eq(put("modes", 5, 5, d), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_begin(bs, 3, d2, id, &exists, &err), 0, "%s", err.msg);
    umask(old);
    cr_assert_eq(mode_of("blobs"), 0700, "umask %03o: blobs/ is %03o", mask, mode_of("blobs"));
    cr_assert_eq(mode_of("blobs/tmp"), 0700, "umask %03o", mask);
    blob_digest_hex(d, hex);
    snprintf(sub, sizeof sub, "blobs/%.2s", hex);
    cr_assert_eq(mode_of(sub), 0700, "umask %03o: %s is %03o", mask, sub, mode_of(sub));
    snprintf(sub, sizeof sub, "blobs/%.2s/%s", hex, hex + 2);
    cr_assert_eq(mode_of(sub), 0600, "umask %03o: the blob is %03o", mask, mode_of(sub));
    blob_digest_hex(d2, hex);
    snprintf(tmp, sizeof tmp, "blobs/tmp/%s-3-%s", id, hex);
    cr_assert_eq(mode_of(tmp), 0600, "umask %03o: the tmp file is %03o", mask, mode_of(tmp));
}

Test(blob, modes_are_0700_and_0600_under_umask_000)
{
    check_modes(0);
}

Test(blob, modes_are_0700_and_0600_under_umask_777)
{
    check_modes(0777);
}

/* ---- disk full ------------------------------------------------------------------------ */

Test(blob, full_disk_answers_full_and_leaves_no_partial_blob, .timeout = 60)
{
    char data[300];
    size_t len = 8u << 20, chunk = 256 * 1024;
    uint8_t *buf = every_byte(len), d[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists, rc = 0;
    uint64_t have;

    blob_store_close(bs);
    bs = NULL;
    snprintf(data, sizeof data, "%s/data", dir);
    cr_assert_eq(mkdir(data, 0700), 0);
    cr_assert_eq(mount("tmpfs", data, "tmpfs", 0, "size=2m,mode=0700"), 0,
                 "cannot mount a 2 MiB tmpfs at %s (%s): this test needs CAP_SYS_ADMIN", data,
                 strerror(errno));
    rc = blob_store_open(data, &bs, &err);
    if (rc != 0)
        umount(data);
    cr_assert_eq(rc, 0, "%s", err.msg);

    hash_of(buf, len, d);
    rc = blob_upload_begin(bs, len, d, id, &exists, &err);
    for (size_t off = 0; rc == 0 && off < len; off += chunk)
        rc = blob_upload_write(bs, id, off, buf + off, chunk, &err);
    if (rc == 0)
        rc = blob_upload_commit(bs, id, &err);
    struct store_err e = err;
    int tmp_left = count_files("data/blobs/tmp"), stored = blobs_stored();
    int st = blob_upload_status(bs, id, &have, NULL, NULL, &err);
    int ex = blob_exists(bs, d, &err);
    /* space for a small blob is there again */
    uint8_t small_d[BLOB_DIGEST_BYTES];
    int small = put(buf, 100000, 100000, small_d);
    blob_store_close(bs);
    bs = NULL;
    umount(data);

    cr_assert_eq(rc, STORE_E_FULL, "8 MiB on a 2 MiB disk: rc %d %s", rc, e.msg);
    cr_assert(strstr(e.msg, "disk full"), "message: %s", e.msg);
    cr_assert_eq(tmp_left, 0, "the partial upload was kept in blobs/tmp");
    cr_assert_eq(stored, 0, "a partial blob is visible");
    cr_assert_eq(ex, 0);
    cr_assert_eq(st, STORE_E_NOT_FOUND, "the upload is still in flight");
    cr_assert_eq(small, 0, "a small upload after the failure: %s", err.msg);
    free(buf);
}

/* ---- bounded memory -------------------------------------------------------------------- */

static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;

    cr_assert_not_null(f);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            v = strtol(line + strlen(key), NULL, 10);
    fclose(f);
    cr_assert(v >= 0, "%s missing from /proc/self/status", key);
    return v;
}

Test(blob, streamed_256mib_upload_keeps_peak_rss_bounded, .timeout = 110)
{
    const size_t chunk = 1u << 20, n = 256;
    uint8_t *buf = malloc(chunk), d[BLOB_DIGEST_BYTES];
    crypto_generichash_state h;
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists;
    long start;
    uint64_t size;

    cr_assert_not_null(buf);
    memset(buf, 0, chunk);
    /* the digest first, from the same generator: the upload then runs without a copy */
    crypto_generichash_init(&h, NULL, 0, BLOB_DIGEST_BYTES);
    for (size_t i = 0; i < n; i++) {
        memset(buf, (int)(i * 13 + 1), 4096);
        buf[chunk - 1] = (uint8_t)i;
        crypto_generichash_update(&h, buf, chunk);
    }
    crypto_generichash_final(&h, d, sizeof d);

    /* reset the high-water mark to the current RSS (Linux's clear_refs "5") */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    cr_assert_not_null(f, "/proc/self/clear_refs: %s", strerror(errno));
    fputs("5", f);
    fclose(f);
    start = status_kb("VmHWM:");

    cr_assert_eq(blob_upload_begin(bs, n * chunk, d, id, &exists, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < n; i++) {
        memset(buf, (int)(i * 13 + 1), 4096);
        buf[chunk - 1] = (uint8_t)i;
        cr_assert_eq(blob_upload_write(bs, id, i * chunk, buf, chunk, &err), 0, "chunk %zu: %s", i,
                     err.msg);
    }
    cr_assert_eq(blob_upload_commit(bs, id, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_verify(bs, d, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_size(bs, d, &size, &err), 0);
    cr_assert_eq(size, (uint64_t)n * chunk);

    long grown = status_kb("VmHWM:") - start;
    cr_assert_lt(grown, 16 * 1024, "peak RSS grew by %ld kB moving 256 MiB", grown);
    free(buf);
}

/* ---- gc support ------------------------------------------------------------------------- */

struct seen {
    int n;
    uint8_t digest[8][BLOB_DIGEST_BYTES];
    uint64_t size[8];
    int64_t mtime_ms[8];
};

static int seen_cb(void *ctx, const struct blob_info *b)
{
    struct seen *s = ctx;

    if (s->n < 8) {
        memcpy(s->digest[s->n], b->digest, BLOB_DIGEST_BYTES);
        s->size[s->n] = b->size;
        s->mtime_ms[s->n] = b->mtime_ms;
    }
    s->n++;
    return 0;
}

static int remove_all_cb(void *ctx, const struct blob_info *b)
{
    int rc = blob_remove(bs, b->digest, NULL);

    if (rc == 0)
        (*(int *)ctx)++;
    return rc < 0 ? rc : 0;
}

Test(blob, each_lists_complete_blobs_only)
{
    uint8_t *data = every_byte(9000), a[BLOB_DIGEST_BYTES], b[BLOB_DIGEST_BYTES];
    uint8_t c[BLOB_DIGEST_BYTES] = {3};
    char id[BLOB_UPLOAD_ID_HEX + 1], p[512];
    struct seen s = {0};
    int exists;

    cr_assert_eq(put(data, 9000, 9000, a), 0, "%s", err.msg);
    cr_assert_eq(put(data, 8000, 3000, b), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_begin(bs, 10, c, id, &exists, &err), 0, "%s", err.msg);
    snprintf(p, sizeof p, "%s/blobs/%02x/stray", dir, a[0]);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(blob_each(bs, seen_cb, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.n, 2, "listed %d: an upload in flight or a stray file counted", s.n);
    for (int i = 0; i < 2; i++) {
        int is_a = memcmp(s.digest[i], a, sizeof a) == 0;
        cr_assert(is_a || memcmp(s.digest[i], b, sizeof b) == 0);
        cr_assert_eq(s.size[i], is_a ? 9000u : 8000u);
        cr_assert(llabs(s.mtime_ms[i] - (int64_t)time(NULL) * 1000) < 60000);
    }
    free(data);
}

Test(blob, remove_skips_pinned_blobs)
{
    uint8_t *data = every_byte(1000), d[BLOB_DIGEST_BYTES];
    int removed = 0;

    cr_assert_eq(put(data, 1000, 1000, d), 0, "%s", err.msg);
    /* the commit's pin is the caller's until its reference is durable */
    cr_assert_eq(blob_remove(bs, d, &err), 1);
    cr_assert_eq(blob_pin(bs, d, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_unpin(bs, d, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_remove(bs, d, &err), 1, "pins count: one is still held");
    cr_assert_eq(blob_unpin(bs, d, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_each(bs, remove_all_cb, &removed, &err), 0, "%s", err.msg);
    cr_assert_eq(removed, 1);
    cr_assert_eq(blob_exists(bs, d, &err), 0);
    cr_assert_eq(blob_remove(bs, d, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(blob_unpin(bs, d, &err), STORE_E_NOT_FOUND);
    free(data);
}

Test(blob, gc_epoch_keeps_blobs_committed_or_deduped_during_it)
{
    uint8_t *data = every_byte(6000), old[BLOB_DIGEST_BYTES], during[BLOB_DIGEST_BYTES];
    uint8_t dedup[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists, removed = 0;

    cr_assert_eq(put(data, 1000, 1000, old), 0, "%s", err.msg);
    cr_assert_eq(blob_unpin(bs, old, &err), 0);
    cr_assert_eq(put(data, 3000, 1000, dedup), 0, "%s", err.msg);
    cr_assert_eq(blob_unpin(bs, dedup, &err), 0);

    cr_assert_eq(blob_gc_begin(bs, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_gc_begin(bs, &err), STORE_E_BUSY, "two epochs at once");
    /* gc reads the database here: none of the three is referenced yet */
    cr_assert_eq(put(data, 6000, 1000, during), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_begin(bs, 3000, dedup, id, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(exists, 1);
    /* both references are committed, the pins released, before gc removes */
    cr_assert_eq(blob_unpin(bs, during, &err), 0);
    cr_assert_eq(blob_unpin(bs, dedup, &err), 0);
    cr_assert_eq(blob_each(bs, remove_all_cb, &removed, &err), 0, "%s", err.msg);
    cr_assert_eq(removed, 1, "only the blob untouched since the mark may go");
    cr_assert_eq(blob_exists(bs, old, &err), 0);
    cr_assert_eq(blob_exists(bs, during, &err), 1, "a blob committed during gc was removed");
    cr_assert_eq(blob_exists(bs, dedup, &err), 1, "a blob deduped during gc was removed");
    blob_gc_end(bs);
    /* the next epoch may take them (nothing references them in this test) */
    cr_assert_eq(blob_gc_begin(bs, &err), 0, "%s", err.msg);
    removed = 0;
    cr_assert_eq(blob_each(bs, remove_all_cb, &removed, &err), 0, "%s", err.msg);
    cr_assert_eq(removed, 2);
    blob_gc_end(bs);
    free(data);
}

Test(blob, gc_epoch_keeps_blob_pinned_at_its_start)
{
    uint8_t *data = every_byte(2000), d[BLOB_DIGEST_BYTES];

    cr_assert_eq(put(data, 2000, 500, d), 0, "%s", err.msg);
    /* committed just before gc began; its row is written while gc reads */
    cr_assert_eq(blob_gc_begin(bs, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_unpin(bs, d, &err), 0);
    cr_assert_eq(blob_remove(bs, d, &err), 1, "pinned when the epoch began: must be kept");
    blob_gc_end(bs);
    cr_assert_eq(blob_remove(bs, d, &err), 0, "%s", err.msg);
    free(data);
}

Test(blob, gc_epoch_keeps_digest_of_upload_in_flight_across_restart)
{
    uint8_t *data = every_byte(4000), d[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists;

    hash_of(data, 4000, d);
    cr_assert_eq(blob_upload_begin(bs, 4000, d, id, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, data, 1000, &err), 0, "%s", err.msg);
    blob_store_close(bs);
    bs = NULL;
    cr_assert_eq(blob_store_open(dir, &bs, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_gc_begin(bs, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 1000, data + 1000, 3000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit(bs, id, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_unpin(bs, d, &err), 0);
    cr_assert_eq(blob_remove(bs, d, &err), 1, "an upload in flight at the mark was removed");
    blob_gc_end(bs);
    free(data);
}

Test(blob, pins_are_bounded)
{
    uint8_t d[BLOB_DIGEST_BYTES] = {0};

    for (int i = 0; i < BLOB_PINS_MAX; i++) {
        memcpy(d, &i, sizeof i);
        cr_assert_eq(blob_pin(bs, d, &err), 0, "pin #%d: %s", i, err.msg);
    }
    d[5] = 1;
    cr_assert_eq(blob_pin(bs, d, &err), STORE_E_FULL);
    cr_assert(strstr(err.msg, "pins"), "message: %s", err.msg);
    d[5] = 0;
    cr_assert_eq(blob_pin(bs, d, &err), 0, "a digest pinned already counts once more: %s", err.msg);
    cr_assert_eq(blob_unpin(bs, d, &err), 0);
    cr_assert_eq(blob_unpin(bs, d, &err), 0);
    d[5] = 1;
    cr_assert_eq(blob_pin(bs, d, &err), 0, "a freed entry is reused: %s", err.msg);
}

Test(blob, gc_epoch_that_overflows_keeps_every_blob)
{
    uint8_t *data = every_byte(100), d[BLOB_DIGEST_BYTES], p[BLOB_DIGEST_BYTES] = {0};

    cr_assert_eq(put(data, 100, 100, d), 0, "%s", err.msg);
    cr_assert_eq(blob_unpin(bs, d, &err), 0);
    cr_assert_eq(blob_gc_begin(bs, &err), 0, "%s", err.msg);
    for (int i = 0; i <= BLOB_TOUCHED_MAX; i++) {
        memcpy(p + 8, &i, sizeof i);
        p[0] = (uint8_t)i; /* spread over the set */
        cr_assert_eq(blob_pin(bs, p, &err), 0, "%s", err.msg);
        cr_assert_eq(blob_unpin(bs, p, &err), 0);
    }
    cr_assert_eq(blob_remove(bs, d, &err), 1, "an epoch that lost track removed a blob");
    blob_gc_end(bs);
    cr_assert_eq(blob_remove(bs, d, &err), 0, "%s", err.msg);
    free(data);
}

Test(blob, symlink_planted_in_the_store_is_not_followed)
{
    uint8_t d[BLOB_DIGEST_BYTES];
    char link[512], target[512];
    int fd = -1;
    uint64_t size;

    hash_of("secret", 6, d);
    snprintf(target, sizeof target, "%s/outside", dir);
    FILE *f = fopen(target, "w");
    cr_assert_not_null(f);
    fputs("secret", f);
    fclose(f);
    blob_file(d, link, sizeof link);
    char sub[512];
    snprintf(sub, sizeof sub, "%.*s", (int)(strrchr(link, '/') - link), link);
    cr_assert_eq(mkdir(sub, 0700), 0);
    cr_assert_eq(symlink(target, link), 0);
    cr_assert_neq(blob_open_read(bs, d, &fd, &size, &err), 0, "a symlink was opened as a blob");
    cr_assert_eq(fd, -1);
    cr_assert_neq(blob_exists(bs, d, &err), 1);
    cr_assert_eq(blobs_stored(), 0, "blob_each listed a symlink");
}

Test(blob, a_streaming_upload_is_named_at_its_seal_and_its_size_is_seen_after)
{
    char id[BLOB_UPLOAD_ID_HEX + 1], id2[BLOB_UPLOAD_ID_HEX + 1];
    uint8_t *buf = every_byte(3000), want[BLOB_DIGEST_BYTES], got[BLOB_DIGEST_BYTES];
    uint8_t zero[BLOB_DIGEST_BYTES] = {0}, d[BLOB_DIGEST_BYTES];
    uint64_t have = 1, size = 0;

    hash_of(buf, 3000, want);
    blob_store_set_sync(bs, 0);
    cr_assert_eq(blob_size_seen(bs, 3000), 0);
    cr_assert_eq(blob_upload_begin_stream(bs, 3000, id, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_size_seen(bs, 3000), 0, "a streaming upload is no known size");
    cr_assert_eq(blob_upload_status(bs, id, &have, &size, d, &err), 0, "%s", err.msg);
    cr_assert(have == 0 && size == 3000 && memcmp(d, zero, sizeof d) == 0);
    cr_assert_eq(blob_upload_find(bs, 3000, zero, id2, &err), STORE_E_NOT_FOUND);
    cr_assert_eq(blob_upload_write(bs, id, 0, buf, 3000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit_ex(bs, id, got, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(got, want, sizeof got), 0);
    cr_assert_eq(blob_exists(bs, want, &err), 1);
    cr_assert_eq(blob_size_seen(bs, 3000), 1);
    cr_assert_eq(blob_unpin(bs, want, &err), 0, "the seal hands its pin over: %s", err.msg);
    /* the same bytes streamed again: the stored blob, the tmp file dropped */
    cr_assert_eq(blob_upload_begin_stream(bs, 3000, id, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, buf, 3000, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit_ex(bs, id, got, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(got, want, sizeof got), 0);
    cr_assert_eq(blob_unpin(bs, want, &err), 0, "%s", err.msg);
    cr_assert_eq(count_files("blobs/tmp"), 0);
    /* found again after a reopen, by its id only */
    cr_assert_eq(blob_upload_begin_stream(bs, 10, id, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, buf, 4, &err), 0, "%s", err.msg);
    blob_store_close(bs);
    cr_assert_eq(blob_store_open(dir, &bs, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_size_seen(bs, 3000), 1, "sizes are found at open");
    cr_assert_eq(blob_upload_status(bs, id, &have, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(have, 4);
    cr_assert_eq(blob_stream_expire(bs, 3600 * 1000, NULL, &err), 0);
    cr_assert_eq(count_files("blobs/tmp"), 1, "expired while fresh");
    free(buf);
}
