/*
 * store_backup.c: the database's files, as files. Their modes (private to
 * the owner: 0600 whatever the umask, since SQLite creates the WAL and SHM
 * with the database's own mode), fsyncs of a file and of its directory for
 * the copy-then-rename sequences of backup and restore, and folding the WAL
 * of a closed database into it (so a database moved aside is whole in one
 * file). The online copy itself is store_backup, in store_core.c beside
 * the handle it reads. Nothing here logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

__attribute__((format(printf, 3, 4))) static int bfail(struct store_err *err, int code,
                                                       const char *fmt, ...)
{
    va_list ap;
    if (err) {
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int code_of_errno(int e)
{
    return e == ENOSPC || e == EDQUOT ? STORE_E_FULL : e == EEXIST ? STORE_E_EXISTS : STORE_E_IO;
}

/* Takes group and other bits off `path` when it exists. */
static int tighten(const char *path, struct store_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? 0 : bfail(err, STORE_E_IO, "%s: %s", path, strerror(errno));
    if ((sb.st_mode & 077) == 0)
        return 0;
    if (chmod(path, sb.st_mode & 0700) != 0)
        return bfail(err, STORE_E_IO, "cannot make %s private (chmod 0600): %s", path,
                     strerror(errno));
    return 0;
}

int store_secure_files(const char *db_path, struct store_err *err)
{
    static const char *const sfx[] = {"-wal", "-shm", "-journal"};
    char p[4200];
    int fd, ret;

    fd = open(db_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return bfail(err, code_of_errno(errno), "cannot open database \"%s\": %s", db_path,
                     strerror(errno));
    close(fd);
    ret = tighten(db_path, err);
    for (size_t i = 0; !ret && i < sizeof sfx / sizeof sfx[0]; i++) {
        snprintf(p, sizeof p, "%s%s", db_path, sfx[i]);
        ret = tighten(p, err);
    }
    return ret;
}

int store_file_create_private(const char *path, struct store_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return bfail(err, code_of_errno(errno), "cannot create \"%s\": %s", path, strerror(errno));
    /* 0600 asked for; a umask can only take bits away, but be exact */
    if (fchmod(fd, 0600) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return bfail(err, STORE_E_IO, "cannot chmod \"%s\": %s", path, strerror(e));
    }
    close(fd);
    return 0;
}

int store_file_sync(const char *path, struct store_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bfail(err, STORE_E_IO, "cannot open \"%s\" to sync it: %s", path, strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return bfail(err, code_of_errno(e), "fsync \"%s\": %s", path, strerror(e));
    }
    close(fd);
    return 0;
}

int store_dir_sync(const char *path, struct store_err *err)
{
    char dir[4200];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    int fd;

    if (n >= sizeof dir)
        return bfail(err, STORE_E_INVALID, "path \"%.200s\" is too long", path);
    if (!slash)
        dir[0] = '.', dir[1] = '\0';
    else if (n == 0)
        dir[0] = '/', dir[1] = '\0';
    else {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return bfail(err, STORE_E_IO, "cannot open directory \"%s\": %s", dir, strerror(errno));
    if (fsync(fd) != 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return bfail(err, STORE_E_IO, "fsync of directory \"%s\": %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

int store_checkpoint_file(const char *db_path, struct store_err *err)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    int rc, ret = 0;

    rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        ret = bfail(err, rc == SQLITE_FULL ? STORE_E_FULL : STORE_E_IO,
                    "cannot checkpoint \"%s\": %s", db_path,
                    msg  ? msg
                    : db ? sqlite3_errmsg(db)
                         : sqlite3_errstr(rc));
    sqlite3_free(msg);
    /* the last connection to close removes the WAL once it is folded in */
    rc = sqlite3_close(db);
    if (!ret && rc != SQLITE_OK)
        ret = bfail(err, STORE_E_IO, "closing \"%s\": %s", db_path, sqlite3_errstr(rc));
    return ret;
}
