/*
 * paths.c: default locations (see paths.h).
 */
#include "paths.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *home_dir(void)
{
    const char *h = getenv("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? pw->pw_dir : "/tmp";
}

static int fit(int n, size_t len)
{
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int paths_default_socket_dir(char *buf, size_t len)
{
    const char *rt = getenv("XDG_RUNTIME_DIR");
    const char *tmp = getenv("TRACK_TMPDIR");
    if (rt && *rt)
        return fit(snprintf(buf, len, "%s/track", rt), len);
    /* TRACK_TMPDIR (as tmux's TMUX_TMPDIR), not TMPDIR: batch systems set
     * TMPDIR per job, and every job would look for its own daemon */
    if (!tmp || tmp[0] != '/')
        tmp = "/tmp";
    return fit(snprintf(buf, len, "%s/track-%u", tmp, (unsigned)getuid()), len);
}

int paths_default_server(char *buf, size_t len)
{
    char dir[1024];
    if (paths_default_socket_dir(dir, sizeof(dir)))
        return -1;
    return fit(snprintf(buf, len, "ipc://%s/trackd.sock", dir), len);
}

int paths_is_default_socket(const char *uri)
{
    char dir[1024];
    size_t n;

    if (strncmp(uri, "ipc://", 6) != 0 || paths_default_socket_dir(dir, sizeof(dir)))
        return 0;
    uri += 6;
    n = strlen(dir);
    return strncmp(uri, dir, n) == 0 && uri[n] == '/' && !strchr(uri + n + 1, '/');
}

int paths_check_private_dir(const char *dir, char *msg, size_t msglen)
{
    struct stat sb;

    if (lstat(dir, &sb) < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(msg, msglen, "cannot examine the socket directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (S_ISLNK(sb.st_mode) || !S_ISDIR(sb.st_mode)) {
        snprintf(msg, msglen,
                 "unsafe socket directory %s: it is %s (owner uid %u, mode %04o), not a "
                 "directory; refusing to use it (remove it, or set XDG_RUNTIME_DIR)",
                 dir, S_ISLNK(sb.st_mode) ? "a symlink" : "not a directory", (unsigned)sb.st_uid,
                 (unsigned)(sb.st_mode & 07777));
        return -1;
    }
    if (sb.st_uid != geteuid() || (sb.st_mode & 077)) {
        snprintf(msg, msglen,
                 "unsafe socket directory %s: owner uid %u, mode %04o; it must belong to "
                 "uid %u with no access for group or others (mode 0700); refusing to use it "
                 "(remove it, or set XDG_RUNTIME_DIR)",
                 dir, (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777), (unsigned)geteuid());
        return -1;
    }
    return 0;
}

int paths_prepare_private_dir(const char *dir, char *msg, size_t msglen)
{
    int rc;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(msg, msglen, "cannot create the socket directory %s: %s", dir, strerror(errno));
        return -1;
    }
    rc = paths_check_private_dir(dir, msg, msglen);
    if (rc > 0) {
        snprintf(msg, msglen, "the socket directory %s vanished while being created", dir);
        return -1;
    }
    return rc;
}

int paths_default_data_dir(char *buf, size_t len)
{
    const char *d = getenv("XDG_DATA_HOME");
    if (d && *d)
        return fit(snprintf(buf, len, "%s/track", d), len);
    return fit(snprintf(buf, len, "%s/.local/share/track", home_dir()), len);
}

int paths_state_dir(char *buf, size_t len)
{
    const char *d = getenv("XDG_STATE_HOME");
    if (d && *d)
        return fit(snprintf(buf, len, "%s/track", d), len);
    return fit(snprintf(buf, len, "%s/.local/state/track", home_dir()), len);
}

int paths_mkdirs(const char *path, unsigned mode)
{
    char tmp[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, (mode_t)mode) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, (mode_t)mode) && errno != EEXIST)
        return -1;
    return 0;
}
