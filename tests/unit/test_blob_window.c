/*
 * test_blob_window.c: the blob store's write window (blob.h, Uploads):
 * pieces of one upload written out of order and by several threads at once,
 * hashed in order and sealed exactly once, and a gap left by a restart cut
 * off and sent again. Real files in a fresh mkdtemp directory per test.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "fixture.h"

static char dir[256];
static struct blob_store *bs;
static struct store_err err;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/track-blobw-XXXXXX");
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

TestSuite(blob_window, .init = setup, .fini = teardown, .timeout = 60);

static void hash_of(const void *buf, size_t len, uint8_t d[BLOB_DIGEST_BYTES])
{
    crypto_generichash(d, BLOB_DIGEST_BYTES, buf, len, NULL, 0);
}

static uint8_t *every_byte(size_t len)
{
    uint8_t *b = malloc(len);
    cr_assert_not_null(b);
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(i * 7 + i / 256);
    return b;
}

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

Test(blob_window, pieces_written_out_of_order_are_hashed_in_order)
{
    size_t len = (5u << 20) + 123, piece = 1u << 20;
    uint8_t *data = every_byte(len), d[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    struct blob_put_result r;
    int exists, sealed = 0;

    hash_of(data, len, d);
    cr_assert_eq(blob_upload_begin(bs, len, d, id, &exists, &err), 0, "%s", err.msg);
    /* last piece first, the first last */
    for (int k = 5; k >= 0; k--) {
        size_t off = (size_t)k * piece, n = len - off < piece ? len - off : piece;
        cr_assert_eq(blob_upload_put(bs, id, off, data + off, n, 1, &r, &err), 0, "%s", err.msg);
        cr_assert_eq(r.have, k ? 0 : len, "piece %d: have %llu", k, (unsigned long long)r.have);
        sealed += r.sealed;
    }
    cr_assert_eq(sealed, 1, "the piece that completed the bytes sealed the blob");
    cr_assert_eq(blob_verify(bs, d, &err), 0, "%s", err.msg);
    cr_assert_eq(count_files("blobs/tmp"), 0);
    cr_assert_eq(blob_unpin(bs, d, &err), 0, "the seal handed its pin over: %s", err.msg);
    free(data);
}

struct put_thread {
    const char *id;
    const uint8_t *data;
    size_t len;
    int t, sealed, failed;
};

static void *put_every_fourth(void *p)
{
    struct put_thread *a = p;
    struct store_err e = {0};
    struct blob_put_result r;
    for (size_t k = (size_t)a->t; k * 65536 < a->len; k += 4) {
        size_t off = k * 65536, n = a->len - off < 65536 ? a->len - off : 65536;
        int rc;
        /* a piece ahead of the window, or on bytes being hashed: try again */
        while ((rc = blob_upload_put(bs, a->id, off, a->data + off, n, 1, &r, &e)) ==
                   STORE_E_INVALID ||
               rc == STORE_E_BUSY)
            usleep(100);
        a->failed |= rc != 0;
        a->sealed += r.sealed;
    }
    return NULL;
}

Test(blob_window, four_threads_writing_one_upload_seal_it_once)
{
    size_t len = (3u << 20) + 777;
    uint8_t *data = every_byte(len), d[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    struct put_thread a[4];
    pthread_t th[4];
    int exists;

    hash_of(data, len, d);
    cr_assert_eq(blob_upload_begin(bs, len, d, id, &exists, &err), 0, "%s", err.msg);
    for (int t = 0; t < 4; t++) {
        a[t] = (struct put_thread){.id = id, .data = data, .len = len, .t = t};
        cr_assert_eq(pthread_create(&th[t], NULL, put_every_fourth, &a[t]), 0);
    }
    int sealed = 0;
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        cr_assert_eq(a[t].failed, 0, "thread %d failed", t);
        sealed += a[t].sealed;
    }
    cr_assert_eq(sealed, 1);
    cr_assert_eq(blob_verify(bs, d, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_unpin(bs, d, &err), 0, "%s", err.msg);
    free(data);
}

Test(blob_window, gap_left_at_a_restart_is_cut_and_sent_again)
{
    size_t len = 3u << 20;
    uint8_t *data = every_byte(len), d[BLOB_DIGEST_BYTES];
    char id[BLOB_UPLOAD_ID_HEX + 1];
    int exists;
    uint64_t have;

    hash_of(data, len, d);
    cr_assert_eq(blob_upload_begin(bs, len, d, id, &exists, &err), 0, "%s", err.msg);
    /* a piece ahead, then the start but not the gap between: the daemon dies */
    cr_assert_eq(blob_upload_write(bs, id, 2u << 20, data + (2u << 20), 1u << 20, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(blob_upload_write(bs, id, 0, data, 512u << 10, &err), 0, "%s", err.msg);
    blob_store_close(bs);
    bs = NULL;
    cr_assert_eq(blob_store_open(dir, &bs, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_status(bs, id, &have, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(have, 512u << 10, "resumes at the gap, not at the end of the file (%llu)",
                 (unsigned long long)have);
    cr_assert_eq(blob_upload_write(bs, id, have, data + have, len - have, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_upload_commit(bs, id, &err), 0, "%s", err.msg);
    cr_assert_eq(blob_verify(bs, d, &err), 0, "%s", err.msg);
    free(data);
}
