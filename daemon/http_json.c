/*
 * http_json.c: a request's fields and a reply's values in JSON, as MLflow's
 * client writes and reads them. One accessor per type, each naming the
 * field in its error, and each taking what either transport gives: a JSON
 * body's typed values, or a GET's query string where everything is text
 * (http.c turns it into an object of strings, a repeated key an array).
 * MLflow writes int64 as JSON numbers but takes them as strings too, and
 * NaN and the infinities as the strings "NaN", "Infinity", "-Infinity".
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

int http_fail(struct http_req *r, int status, const char *error_code, const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    r->error_code = error_code;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
    return -1;
}

int http_ok(struct http_req *r, json_t *reply)
{
    if (!reply)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "trackd out of memory");
    json_decref(r->reply);
    r->reply = reply;
    r->status = 200;
    return 0;
}

int http_parse_body(struct http_req *r)
{
    json_error_t je;
    r->args = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!r->args)
        return http_fail(r, 400, "BAD_REQUEST", "body is not JSON: %s (line %d, column %d)",
                         je.text, je.line, je.column);
    if (!json_is_object(r->args))
        return http_fail(r, 400, "BAD_REQUEST", "body must be a JSON object");
    return 0;
}

static json_t *field(struct http_req *r, const char *name)
{
    json_t *v = r->args ? json_object_get(r->args, name) : NULL;
    return v && !json_is_null(v) ? v : NULL;
}

/* The one value of a field (a query string's key given once is an array of
 * one): 1 with *v, 0 when absent (fine unless required), -1 r failed. */
static int one_value(struct http_req *r, const char *name, int required, json_t **v)
{
    *v = field(r, name);
    if (!*v) {
        if (required)
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                             "Missing value for required parameter '%s'", name);
        return 0;
    }
    if (json_is_array(*v) && json_array_size(*v) == 1)
        *v = json_array_get(*v, 0);
    return 1;
}

int http_arg_str(struct http_req *r, const char *name, int required, const char **out)
{
    json_t *v;
    int rc = one_value(r, name, required, &v);

    *out = NULL;
    if (rc <= 0)
        return rc;
    if (!json_is_string(v))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter '%s': expected a string", name);
    *out = json_string_value(v);
    return 0;
}

int http_json_i64(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) { /* 1.7e12 from a client that keeps numbers as doubles */
        double d = json_real_value(v);
        if (d != floor(d) || d < -9.2e18 || d > 9.2e18)
            return -1;
        *out = (int64_t)d;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        if (!*s)
            return -1;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (*end || errno)
            return -1;
        *out = n;
        return 0;
    }
    return -1;
}

int http_arg_i64(struct http_req *r, const char *name, int required, int64_t dflt, int64_t *out)
{
    json_t *v;
    int rc = one_value(r, name, required, &v);

    *out = dflt;
    if (rc <= 0)
        return rc;
    if (http_json_i64(v, out))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter '%s': expected an integer", name);
    return 0;
}

/* A double from a JSON value; -1 if it is none. */
static int json_double(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    if (strcmp(s, "NaN") == 0 || strcmp(s, "nan") == 0)
        *out = NAN;
    else if (strcmp(s, "Infinity") == 0 || strcmp(s, "inf") == 0)
        *out = INFINITY;
    else if (strcmp(s, "-Infinity") == 0 || strcmp(s, "-inf") == 0)
        *out = -INFINITY;
    else {
        char *end;
        if (!*s)
            return -1;
        *out = strtod(s, &end);
        if (*end)
            return -1;
    }
    return 0;
}

int http_arg_double(struct http_req *r, const char *name, int required, double *out)
{
    json_t *v;
    int rc = one_value(r, name, required, &v);

    *out = 0;
    if (rc <= 0)
        return rc;
    if (json_double(v, out))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter '%s': expected a number", name);
    return 0;
}

int http_arg_array(struct http_req *r, const char *name, json_t **out)
{
    json_t *v = field(r, name);

    *out = NULL;
    if (!v)
        return 0;
    if (json_is_string(v)) { /* a query string's key given once */
        *out = v;
        return 0;
    }
    if (!json_is_array(v))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter '%s': expected a list", name);
    *out = v;
    return 0;
}

json_t *http_json_double(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

json_t *http_json_str(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j)
        return j;
    /* not UTF-8 (a key written by an old client): bytes become '?' */
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    c[n] = '\0';
    j = json_string(c);
    free(c);
    return j;
}

int http_name_filter(struct http_req *r, const char *f, int *op, char *pat, size_t cap)
{
    static const struct {
        const char *text;
        int op;
    } ops[] = {{"!=", HTTP_NAME_NE},
               {"=", HTTP_NAME_EQ},
               {"ILIKE", HTTP_NAME_ILIKE},
               {"LIKE", HTTP_NAME_LIKE}};
    const char *p = f;
    size_t i;

    *op = 0;
    if (!p)
        return 0;
    while (*p == ' ')
        p++;
    if (!*p)
        return 0;
    if (strncasecmp(p, "attributes.", 11) == 0)
        p += 11;
    else if (strncasecmp(p, "attribute.", 10) == 0)
        p += 10;
    if (strncasecmp(p, "name", 4) != 0)
        goto bad;
    for (p += 4; *p == ' '; p++)
        ;
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strncasecmp(p, ops[i].text, strlen(ops[i].text)) == 0)
            break;
    if (i == sizeof(ops) / sizeof(ops[0]))
        goto bad;
    *op = ops[i].op;
    for (p += strlen(ops[i].text); *p == ' '; p++)
        ;
    char q = *p;
    if (q != '\'' && q != '"')
        goto bad;
    const char *end = strchr(p + 1, q);
    if (!end || (size_t)(end - p - 1) >= cap)
        goto bad;
    memcpy(pat, p + 1, (size_t)(end - p - 1));
    pat[end - p - 1] = '\0';
    for (end++; *end == ' '; end++)
        ;
    if (*end)
        goto bad;
    return 0;
bad:
    *op = 0;
    return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                     "filter: this server takes name = 'X', name != 'X', name LIKE 'P' or name "
                     "ILIKE 'P' (%% and _ wildcards), got: %.200s",
                     f);
}

int http_like(const char *s, const char *p, int fold)
{
    for (; *p; p++, s++) {
        if (*p == '%') {
            while (p[1] == '%')
                p++;
            if (!p[1])
                return 1;
            for (; *s; s++)
                if (http_like(s, p + 1, fold))
                    return 1;
            return 0;
        }
        if (!*s || (*p != '_' && (fold ? (*p | 32) != (*s | 32) : *p != *s)))
            return 0;
    }
    return !*s;
}

int http_name_match(int op, const char *name, const char *pat)
{
    switch (op) {
    case HTTP_NAME_EQ:
        return strcmp(name, pat) == 0;
    case HTTP_NAME_NE:
        return strcmp(name, pat) != 0;
    case HTTP_NAME_LIKE:
        return http_like(name, pat, 0);
    case HTTP_NAME_ILIKE:
        return http_like(name, pat, 1);
    default:
        return 1;
    }
}

const char *http_status_name(int status)
{
    switch (status) {
    case TRACK__V1__RUN_STATUS__RUNNING:
        return "RUNNING";
    case TRACK__V1__RUN_STATUS__FINISHED:
        return "FINISHED";
    case TRACK__V1__RUN_STATUS__FAILED:
        return "FAILED";
    case TRACK__V1__RUN_STATUS__KILLED:
        return "KILLED";
    default:
        return "UNKNOWN";
    }
}
