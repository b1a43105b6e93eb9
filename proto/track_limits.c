/*
 * track_limits.c: the checks of track_limits.h. Keys follow the character set MLflow
 * accepts, so its users' keys carry over unchanged.
 */
#include "track_limits.h"

#include <stdio.h>
#include <string.h>

int limits_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + n >= len)
            return 0; /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000))
            return 0; /* overlong */
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

static int key_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == '/' || c == ':' || c == ' ';
}

int limits_check_key(const char *field, const char *s, char *msg, size_t cap)
{
    size_t len = s ? strlen(s) : 0;

    if (len == 0) {
        snprintf(msg, cap, "%s: must not be empty", field);
        return -1;
    }
    if (len > LIMIT_KEY_BYTES) {
        snprintf(msg, cap, "%s: %zu bytes, longer than the limit of %d", field, len,
                 LIMIT_KEY_BYTES);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!key_char_ok((unsigned char)s[i])) {
            snprintf(msg, cap,
                     "%s: character %zu (0x%02x) is not allowed "
                     "(letters, digits and _ - . / : space)",
                     field, i + 1, (unsigned char)s[i]);
            return -1;
        }
    }
    if (s[0] == '/') {
        snprintf(msg, cap, "%s: must not start with '/'", field);
        return -1;
    }
    for (const char *p = s; (p = strstr(p, "..")) != NULL; p++) {
        int seg_start = (p == s || p[-1] == '/');
        int seg_end = (p[2] == '\0' || p[2] == '/');
        if (seg_start && seg_end) {
            snprintf(msg, cap, "%s: must not contain '..' as a path segment", field);
            return -1;
        }
    }
    return 0;
}

int limits_check_value(const char *field, const char *s, char *msg, size_t cap)
{
    size_t len = s ? strlen(s) : 0;

    if (len > LIMIT_VALUE_BYTES) {
        snprintf(msg, cap, "%s: %zu bytes, longer than the limit of %d", field, len,
                 LIMIT_VALUE_BYTES);
        return -1;
    }
    if (!limits_utf8_valid(s ? s : "", len)) {
        snprintf(msg, cap, "%s: not valid UTF-8", field);
        return -1;
    }
    return 0;
}

int limits_check_name(const char *field, const char *s, int optional, char *msg, size_t cap)
{
    size_t len = s ? strlen(s) : 0;

    if (len == 0) {
        if (optional)
            return 0;
        snprintf(msg, cap, "%s: must not be empty", field);
        return -1;
    }
    if (len > LIMIT_NAME_BYTES) {
        snprintf(msg, cap, "%s: %zu bytes, longer than the limit of %d", field, len,
                 LIMIT_NAME_BYTES);
        return -1;
    }
    if (!limits_utf8_valid(s, len)) {
        snprintf(msg, cap, "%s: not valid UTF-8", field);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(msg, cap, "%s: control character at byte %zu", field, i + 1);
            return -1;
        }
    }
    return 0;
}

int limits_check_artifact_path(const char *field, const char *s, size_t len, char *msg, size_t cap)
{
    const char *why = NULL;

    if (!s || len == 0)
        why = "is empty";
    else if (len > LIMIT_ARTIFACT_PATH)
        why = "is longer than 1024 bytes";
    else if (memchr(s, '\0', len) || strlen(s) != len)
        why = "contains a NUL byte";
    else if (!limits_utf8_valid(s, len))
        why = "is not valid UTF-8";
    else if (s[0] == '/')
        why = "is absolute (starts with '/'); artifact paths are relative";
    else if (memchr(s, '\\', len))
        why = "contains a backslash; separate segments with '/'";
    else {
        for (const char *p = s; !why;) {
            const char *e = memchr(p, '/', len - (size_t)(p - s));
            size_t n = e ? (size_t)(e - p) : len - (size_t)(p - s);
            if (n == 0)
                why = "has an empty segment ('//' or a trailing '/')";
            else if (n == 2 && p[0] == '.' && p[1] == '.')
                why = "has a '..' segment";
            else if (n == 1 && p[0] == '.')
                why = "has a '.' segment";
            if (!e)
                break;
            p = e + 1;
        }
    }
    if (!why)
        return 0;
    snprintf(msg, cap, "%s \"%.100s%s\" %s", field, s ? s : "",
             s && strnlen(s, 101) > 100 ? "..." : "", why);
    return -1;
}

/* ---- feedback ---------------------------------------------------------------- */

static int check_line(const char *field, const char *s, size_t max, char *msg, size_t cap)
{
    size_t len = s ? strlen(s) : 0;

    if (len == 0) {
        snprintf(msg, cap, "%s: must not be empty", field);
        return -1;
    }
    if (len > max) {
        snprintf(msg, cap, "%s: %zu bytes, longer than the limit of %zu", field, len, max);
        return -1;
    }
    if (!limits_utf8_valid(s, len)) {
        snprintf(msg, cap, "%s: not valid UTF-8", field);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(msg, cap, "%s: control character at byte %zu", field, i + 1);
            return -1;
        }
    }
    return 0;
}

int limits_check_label(const char *field, const char *s, char *msg, size_t cap)
{
    return check_line(field, s, LIMIT_FEEDBACK_LABEL, msg, cap);
}

int limits_check_target(const char *field, const char *s, char *msg, size_t cap)
{
    return check_line(field, s, LIMIT_FEEDBACK_TARGET, msg, cap);
}

int limits_check_feedback_text(const char *field, const char *s, char *msg, size_t cap)
{
    size_t len = s ? strlen(s) : 0;

    if (len > LIMIT_FEEDBACK_TEXT) {
        snprintf(msg, cap, "%s: %zu bytes, longer than the limit of %d", field, len,
                 LIMIT_FEEDBACK_TEXT);
        return -1;
    }
    if (!limits_utf8_valid(s ? s : "", len)) {
        snprintf(msg, cap, "%s: not valid UTF-8", field);
        return -1;
    }
    return 0;
}
