/*
 * log.c: one line per event on stderr, level first, so journald and a
 * terminal both read it: "info loop: listening uri=ipc:///run/track.sock".
 */
#include "srv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Atomic int srv_log_level = SRV_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void srv_log(int level, const char *component, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n;

    if (level > srv_log_level)
        return;
    n = snprintf(line, sizeof(line), "%s %s: ", level_names[level], component);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

int srv_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}
