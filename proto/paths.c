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

int paths_default_server(char *buf, size_t len)
{
    const char *rt = getenv("XDG_RUNTIME_DIR");
    if (rt && *rt)
        return fit(snprintf(buf, len, "ipc://%s/track/trackd.sock", rt), len);
    return fit(snprintf(buf, len, "ipc:///tmp/track-%u/trackd.sock", (unsigned)getuid()), len);
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
