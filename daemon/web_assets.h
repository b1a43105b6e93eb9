/*
 * web_assets.h: the dashboard's files as compiled into trackd. The table
 * (web_assets.c) is generated at build time by cmake/embed_web.cmake from
 * web/ and npm's uPlot (daemon/CMakeLists.txt); never edited, never
 * committed.
 */
#ifndef TRACK_WEB_ASSETS_H
#define TRACK_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
    const char *name; /* "index.html", "app.js", "uPlot.iife.min.js", ... */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
    const char *etag; /* "\"<sha256 prefix>\"" */
};

/* NULL-name ended */
extern const struct web_asset web_assets[];

#endif
