/*
 * seal_key.c: the envelope's keys: generating a key pair, public keys as
 * text ("trk1:" and 43 base64url characters, parsed strictly), and key files
 * (written once, 0600 whatever the umask, fsynced and renamed into place;
 * read only when owned by the caller and closed to group and others, as ssh
 * does). Secret keys live in sodium_malloc'd memory and are wiped on every
 * exit path. Frames and the caches are seal.c's.
 */
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seal_internal.h"

#define SECRET_PREFIX   "trk1-secret:"
#define SECRET_TEXT_LEN (sizeof(SECRET_PREFIX) - 1 + 43) /* without the newline */
#define B64_VARIANT     sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* ---- keys ----------------------------------------------------------------- */

int seal_keypair_generate(struct seal_keypair *kp, struct seal_err *err)
{
    int rc = seal_i_init_sodium(err);
    memset(kp, 0, sizeof(*kp));
    if (rc)
        return rc;
    kp->sk = sodium_malloc(SEAL_SECRET_BYTES);
    if (!kp->sk)
        return seal_i_fail(err, SEAL_E_NOMEM, "no memory for a secret key");
    crypto_box_keypair(kp->pk, kp->sk);
    return 0;
}

void seal_keypair_clear(struct seal_keypair *kp)
{
    if (!kp)
        return;
    if (kp->sk) {
        sodium_memzero(kp->sk, SEAL_SECRET_BYTES);
        sodium_free(kp->sk);
    }
    memset(kp, 0, sizeof(*kp));
}

void seal_key_to_text(const uint8_t pk[SEAL_PUBLIC_BYTES], char out[SEAL_KEY_TEXT_BYTES])
{
    memcpy(out, SEAL_KEY_PREFIX, 5);
    sodium_bin2base64(out + 5, SEAL_KEY_TEXT_BYTES - 5, pk, SEAL_PUBLIC_BYTES, B64_VARIANT);
}

static int is_b64url(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

/* 43 base64url characters at s to 32 bytes, canonical form only. */
static int b64_32(const char *s, uint8_t out[32])
{
    size_t bin_len = 0;
    const char *end = NULL;
    char again[45];
    if (sodium_base642bin(out, 32, s, 43, NULL, &bin_len, &end, B64_VARIANT) != 0 ||
        bin_len != 32 || end != s + 43)
        return -1;
    /* the last character carries 2 unused bits: only one spelling is a key */
    sodium_bin2base64(again, sizeof(again), out, 32, B64_VARIANT);
    return memcmp(again, s, 43) == 0 ? 0 : -1;
}

int seal_key_from_text(const char *s, uint8_t pk[SEAL_PUBLIC_BYTES], struct seal_err *err)
{
    size_t n;
    if (!s)
        return seal_i_fail(err, SEAL_E_INVALID, "public key: missing");
    if (strncmp(s, SEAL_KEY_PREFIX, 5) != 0)
        return seal_i_fail(err, SEAL_E_INVALID,
                           "public key: expected it to start with \"%s\" (a track key, as printed "
                           "by `track keygen` or `trackd --print-public-key`)",
                           SEAL_KEY_PREFIX);
    n = strlen(s + 5);
    for (size_t i = 0; i < n && i < 43; i++) {
        if (!is_b64url(s[5 + i]))
            return seal_i_fail(
                err, SEAL_E_INVALID,
                "public key: character %zu (0x%02x) is not base64url (A-Z a-z 0-9 - _)", i + 6,
                (unsigned)(unsigned char)s[5 + i]);
    }
    if (n != 43)
        return seal_i_fail(err, SEAL_E_INVALID,
                           "public key: expected 43 base64url characters after \"%s\", got %zu",
                           SEAL_KEY_PREFIX, n);
    if (b64_32(s + 5, pk) != 0) {
        sodium_memzero(pk, SEAL_PUBLIC_BYTES);
        return seal_i_fail(err, SEAL_E_INVALID,
                           "public key: the last character is not in canonical form (not a key "
                           "printed by track)");
    }
    return 0;
}

/* The directory part of path ("." when none) into buf. */
static void dir_of(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(buf, cap, ".");
    else if (slash == path)
        snprintf(buf, cap, "/");
    else
        snprintf(buf, cap, "%.*s", (int)(slash - path), path);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Moves tmp to path unless path exists: renameat2(RENAME_NOREPLACE), or
 * link+unlink where the filesystem lacks it. 0, or -1 with errno. */
static int rename_noreplace(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return -1;
    if (link(tmp, path) != 0)
        return -1;
    unlink(tmp);
    return 0;
}

int seal_key_file_write(const char *path, const uint8_t *sk, struct seal_err *err)
{
    char text[SECRET_TEXT_LEN + 2], tmp[PATH_MAX], dir[PATH_MAX];
    uint32_t r;
    int fd = -1, made = 0, rc = seal_i_init_sodium(err), dfd;
    struct stat st;
    if (rc)
        return rc;
    if (!path || !*path || !sk)
        return seal_i_fail(err, SEAL_E_INVALID, "key file: missing path or key");
    if (lstat(path, &st) == 0)
        return seal_i_fail(err, SEAL_E_EXISTS,
                           "%.200s: already exists; a key file is never overwritten", path);
    r = randombytes_random();
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%08x", path, (long)getpid(), r) >=
        sizeof(tmp))
        return seal_i_fail(err, SEAL_E_INVALID, "%.200s: path too long", path);
    memcpy(text, SECRET_PREFIX, sizeof(SECRET_PREFIX) - 1);
    sodium_bin2base64(text + sizeof(SECRET_PREFIX) - 1, 44, sk, SEAL_SECRET_BYTES, B64_VARIANT);
    text[SECRET_TEXT_LEN] = '\n';
    text[SECRET_TEXT_LEN + 1] = '\0';

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = seal_i_fail(err, SEAL_E_IO, "%.200s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    made = 1;
    /* the umask may have taken bits away (0600 & ~0277 is 0400): set it exactly */
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, SECRET_TEXT_LEN + 1) != 0 || fsync(fd) != 0) {
        rc = seal_i_fail(err, SEAL_E_IO, "%.200s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = seal_i_fail(err, SEAL_E_IO, "%.200s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename_noreplace(tmp, path) != 0) {
        if (errno == EEXIST)
            rc = seal_i_fail(err, SEAL_E_EXISTS,
                             "%.200s: already exists; a key file is never overwritten", path);
        else
            rc = seal_i_fail(err, SEAL_E_IO, "%.200s: cannot move into place: %s", path,
                             strerror(errno));
        goto out;
    }
    made = 0;
    dir_of(path, dir, sizeof(dir));
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL) {
            rc = seal_i_fail(err, SEAL_E_IO, "%.200s: cannot sync its directory: %s", path,
                             strerror(errno));
        }
        close(dfd);
    }
out:
    sodium_memzero(text, sizeof(text));
    if (fd >= 0)
        close(fd);
    if (made)
        unlink(tmp);
    return rc;
}

int seal_key_file_read(const char *path, struct seal_keypair *kp, struct seal_err *err)
{
    char text[128];
    size_t n = 0;
    int fd = -1, rc = seal_i_init_sodium(err);
    struct stat st;
    memset(kp, 0, sizeof(*kp));
    memset(text, 0, sizeof(text));
    if (rc)
        return rc;
    if (!path || !*path)
        return seal_i_fail(err, SEAL_E_INVALID, "key file: missing path");
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ELOOP)
            rc = seal_i_fail(err, SEAL_E_PERM,
                             "%.200s: is a symbolic link; refusing a secret key file "
                             "that is not a regular file",
                             path);
        else
            rc = seal_i_fail(err, SEAL_E_IO, "%.200s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = seal_i_fail(err, SEAL_E_IO, "%.200s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = seal_i_fail(err, SEAL_E_PERM,
                         "%.200s: not a regular file; refusing it as a secret key", path);
        goto out;
    }
    if (st.st_uid != geteuid()) {
        rc = seal_i_fail(err, SEAL_E_PERM,
                         "%.200s: owned by uid %u, not by you (uid %u); refusing "
                         "a secret key another user controls",
                         path, (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    if (st.st_mode & 077) {
        rc = seal_i_fail(err, SEAL_E_PERM,
                         "%.200s: mode 0%03o lets group or others read the secret "
                         "key; it must be 0600 or stricter (chmod 600 %.200s)",
                         path, (unsigned)(st.st_mode & 0777), path);
        goto out;
    }
    for (;;) {
        ssize_t got = read(fd, text + n, sizeof(text) - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = seal_i_fail(err, SEAL_E_IO, "%.200s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (got == 0 || n + (size_t)got >= sizeof(text) - 1) {
            n += (size_t)got;
            break;
        }
        n += (size_t)got;
    }
    if (n == SECRET_TEXT_LEN + 1 && text[SECRET_TEXT_LEN] == '\n')
        n--;
    if (n != SECRET_TEXT_LEN || memcmp(text, SECRET_PREFIX, sizeof(SECRET_PREFIX) - 1) != 0) {
        rc = seal_i_fail(err, SEAL_E_INVALID,
                         "%.200s: not a track secret key file (one line \"%s\" "
                         "and 43 base64url characters)",
                         path, SECRET_PREFIX);
        goto out;
    }
    kp->sk = sodium_malloc(SEAL_SECRET_BYTES);
    if (!kp->sk) {
        rc = seal_i_fail(err, SEAL_E_NOMEM, "no memory for a secret key");
        goto out;
    }
    for (size_t i = sizeof(SECRET_PREFIX) - 1; i < SECRET_TEXT_LEN; i++) {
        if (!is_b64url(text[i])) {
            rc = -1;
            break;
        }
    }
    if (rc != 0 || b64_32(text + sizeof(SECRET_PREFIX) - 1, kp->sk) != 0) {
        rc = seal_i_fail(err, SEAL_E_INVALID,
                         "%.200s: the secret key is not 43 base64url characters "
                         "in canonical form",
                         path);
        goto out;
    }
    crypto_scalarmult_base(kp->pk, kp->sk);
out:
    sodium_memzero(text, sizeof(text));
    if (fd >= 0)
        close(fd);
    if (rc)
        seal_keypair_clear(kp);
    return rc;
}
