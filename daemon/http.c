/*
 * http.c: trackd's HTTP front (`--http ADDR:PORT`, off by default) on
 * libmicrohttpd: the listening socket, connections, request bodies, who a
 * request comes from, and the route table. What each route does is its
 * own file's (mlflow_experiment.c, mlflow_run.c, mlflow_model.c,
 * mlflow_artifact.c); how it
 * reaches the store is http_call.c's (http.h says why through the loop).
 *
 * Threads. libmicrohttpd runs one thread per connection, at most
 * HTTP_MAX_CONNECTIONS (HTTP_MAX_PER_IP from one address); a connection
 * silent for HTTP_IDLE_SECONDS is closed, and a request whose body has not
 * all arrived HTTP_REQUEST_SECONDS after its headers is cut. A thread blocks
 * only on its own client or its own call, so a slow client holds its own
 * thread and nothing else.
 *
 * Bodies. A JSON body is gathered up to HTTP_MAX_BODY: a larger declared
 * Content-Length is refused before a byte is read, and a chunked body that
 * grows past it is read to its end and dropped, then refused (413, JSON
 * error). A streamed route (an artifact PUT) takes its body as it comes, a
 * chunk at a time. A GET's fields are its query string, each key an array
 * of its values (http_json.c unwraps single ones); other methods take a
 * JSON object body, or the query string when the body is empty.
 *
 * Identity (DESIGN.md "Identity"). On a loopback address every request
 * acts as the daemon's owner, as ipc does. On any other address the front
 * starts only when users exist, and every request carries a token from
 * `track admin token create`: `Authorization: Bearer TOKEN`, or Basic with
 * the user's name and the token as password (MLflow's
 * MLFLOW_TRACKING_USERNAME/PASSWORD). Tokens are checked by their hash
 * against the store (a read-only handle of the front's own, under a mutex);
 * the user's role and grants are then dispatch's, as for sealed tcp.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "http.h"

struct srv_http {
    struct MHD_Daemon *d;
    struct srv *srv;
    int loopback;
    struct srv_caller local; /* a loopback request's caller: the owner, looked up once */
    _Atomic int busy;
    struct store *ro; /* token checks (non-loopback only) */
    pthread_mutex_t ro_lock;
    char addr[320]; /* --http as bound: ADDR:PORT, the port the kernel chose for :0 */
};

/* One request's state across libmicrohttpd's calls (its con_cls). */
struct conn {
    struct http_req r;
    struct srv_http *h;
    const struct http_route *route;
    char *body;
    size_t len, cap;
    int too_big;
    int failed; /* r failed before the end of the body: answer it then */
    int streaming;
    int64_t started_ms;
    char path[2048];
};

/* ---- routes ---------------------------------------------------------------------- */
static int health(struct http_req *r);
static int version(struct http_req *r);

static const struct http_route plain_routes[] = {
    {"GET", "/health", health, NULL, 0, 1, 0},
    {"GET", "/version", version, NULL, 0, 1, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

/* web: the dashboard's tables. Their requests may carry the login cookie
 * (never accepted elsewhere, so no other route can be driven by a page's
 * stored credentials); on a loopback bind their Host must be a loopback
 * name (a page on another site that rebinds its DNS name to 127.0.0.1 would
 * otherwise be same-origin); every POST must echo the session's CSRF token
 * in X-Track-CSRF; and every answer carries the page's security headers. */
static const struct {
    const char *prefix;
    const struct http_route *routes;
    int web;
} tables[] = {
    {"/api/2.0/mlflow/", ml_experiment_routes, 0},
    {"/api/2.0/mlflow/", ml_run_routes, 0},
    {"/api/2.0/mlflow/", ml_model_routes, 0},
    {"/api/2.0/mlflow-artifacts/", ml_artifact_routes, 0},
    {"/v1/", otlp_routes, 0},
    {"/api/track/v1/", web_session_routes, 1},
    {"/api/track/v1/", web_run_routes, 1},
    {"/api/track/v1/", web_model_routes, 1},
    {"/api/track/v1/", web_trace_routes, 1},
    {"/api/track/v1/", web_feedback_routes, 1},
    {"", plain_routes, 0},
    {"", web_page_routes, 1},
};

static uint8_t csrf_key[crypto_generichash_KEYBYTES];

void http_csrf_of(const char *seed, char out[65])
{
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)seed, strlen(seed), csrf_key,
                       sizeof(csrf_key));
    sodium_bin2hex(out, 65, h, sizeof(h));
}

static int health(struct http_req *r)
{
    r->raw = MHD_create_response_from_buffer(2, (void *)"OK", MHD_RESPMEM_PERSISTENT);
    return r->raw ? 0 : http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
}

static int version(struct http_req *r)
{
    r->raw = MHD_create_response_from_buffer(strlen(TRACKD_VERSION), (void *)TRACKD_VERSION,
                                             MHD_RESPMEM_PERSISTENT);
    return r->raw ? 0 : http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
}

/* The route of (method, url): its path after the table's prefix in *rest.
 * NULL with *other set when the path is known under another method. */
static const struct http_route *find_route(const char *method, const char *url, const char **rest,
                                           const char **other, int *web)
{
    *other = NULL;
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        size_t pl = strlen(tables[t].prefix);
        if (strncmp(url, tables[t].prefix, pl) != 0)
            continue;
        const char *p = url + pl;
        for (const struct http_route *rt = tables[t].routes; rt->path; rt++) {
            size_t n = strlen(rt->path);
            int prefix = n > 1 && rt->path[n - 1] == '/'; /* "/" itself is exact */
            int match = prefix ? strncmp(p, rt->path, n) == 0 : strcmp(p, rt->path) == 0;
            if (!match)
                continue;
            if (strcmp(method, rt->method) != 0) {
                *other = rt->method;
                continue;
            }
            *rest = prefix ? p + n : p;
            *web = tables[t].web;
            return rt;
        }
    }
    return NULL;
}

/* ---- answers --------------------------------------------------------------------- */
static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *j,
                                 const struct http_req *r)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    struct MHD_Response *rs;
    enum MHD_Result ret;

    if (!text) {
        static const char oom[] = "{\"error_code\":\"TEMPORARILY_UNAVAILABLE\","
                                  "\"message\":\"trackd out of memory\"}";
        rs = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        status = 503;
    } else {
        size_t n = strlen(text), zn = 0;
        char *z = r->web ? web_gzip(r, text, n, &zn) : NULL;
        if (z) {
            free(text);
            text = z;
            n = zn;
        }
        rs = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
        if (rs && z)
            MHD_add_response_header(rs, "Content-Encoding", "gzip");
    }
    if (!rs) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(rs, "Content-Type", "application/json");
    if (r->web) {
        MHD_add_response_header(rs, "Vary", "Accept-Encoding");
        web_headers(rs, r);
    }
    ret = MHD_queue_response(c, (unsigned)status, rs);
    MHD_destroy_response(rs);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, const struct http_req *r)
{
    json_t *j =
        json_pack("{s:s, s:o}", "error_code", r->error_code ? r->error_code : "INTERNAL_ERROR",
                  "message", http_json_str(r->message));
    if (j && r->err_field)
        json_object_set_new(j, "field", json_string(r->err_field));
    if (j && r->err_column > 0)
        json_object_set_new(j, "column", json_integer(r->err_column));
    if (r->status == 401 && !r->web) {
        /* so a client that can, asks for credentials */
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        struct MHD_Response *rs =
            text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE)
                 : NULL;
        if (!rs) {
            free(text);
            return MHD_NO;
        }
        MHD_add_response_header(rs, "Content-Type", "application/json");
        MHD_add_response_header(rs, "WWW-Authenticate", "Bearer realm=\"trackd\"");
        enum MHD_Result ret = MHD_queue_response(c, 401, rs);
        MHD_destroy_response(rs);
        return ret;
    }
    enum MHD_Result ret = send_json(c, r->status ? r->status : 500, j, r);
    json_decref(j);
    return ret;
}

static enum MHD_Result answer(struct conn *k)
{
    struct http_req *r = &k->r;
    if (r->error_code)
        return send_error(r->conn, r);
    if (r->raw) {
        if (r->web)
            web_headers(r->raw, r);
        enum MHD_Result ret =
            MHD_queue_response(r->conn, r->raw_status ? (unsigned)r->raw_status : 200, r->raw);
        MHD_destroy_response(r->raw);
        r->raw = NULL;
        return ret;
    }
    if (!r->reply)
        r->reply = json_object();
    return send_json(r->conn, 200, r->reply, r);
}

/* ---- identity -------------------------------------------------------------------- */
static struct srv_http *front; /* the one front of this process, for http_token_caller */

/* The caller of token (user, when given, must be its user's name) into
 * *out; -1 with r failed. */
static int check_token(struct srv_http *h, struct http_req *r, const char *token, const char *user,
                       struct srv_caller *out)
{
    struct store_user u;
    struct store_err err = {0};
    if (!h->ro)
        return http_fail(r, 400, "BAD_REQUEST",
                         "this trackd listens on loopback: every request is its owner's, no "
                         "token needed");
    pthread_mutex_lock(&h->ro_lock);
    int rc = store_token_check(h->ro, token, wire_now_ms(), &u, &err);
    pthread_mutex_unlock(&h->ro_lock);
    if (rc == STORE_E_NOT_FOUND || (rc == 0 && user && user[0] && strcmp(user, u.name) != 0))
        return http_fail(r, 401, "UNAUTHENTICATED", "token not valid");
    if (rc)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "checking the token: %s", err.msg);
    memset(out, 0, sizeof(*out));
    out->user_id = u.id;
    out->role = u.role;
    snprintf(out->name, sizeof(out->name), "%s", u.name);
    return 0;
}

int http_token_caller(struct http_req *r, const char *token, struct srv_caller *out)
{
    return check_token(front, r, token, NULL, out);
}

/* Fills r->caller (and r->csrf) from the request's credentials; -1 with r
 * failed. The dashboard's tables also take the login cookie. */
static int identify(struct srv_http *h, struct http_req *r)
{
    if (h->loopback) {
        r->caller = h->local;
        http_csrf_of("", r->csrf);
        return 0;
    }
    const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    const char *cookie =
        r->web ? MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, "track_token") : NULL;
    char token[640] = "", user[STORE_USER_NAME_MAX + 1] = "";
    if ((!auth || !*auth) && cookie && *cookie)
        snprintf(token, sizeof(token), "%s", cookie);
    else if (!auth || !*auth)
        return http_fail(r, 401, "UNAUTHENTICATED",
                         "this trackd needs a token: Authorization: Bearer TOKEN (MLflow: "
                         "MLFLOW_TRACKING_TOKEN), from `track admin token create USER`");
    else if (strncasecmp(auth, "Bearer ", 7) == 0)
        snprintf(token, sizeof(token), "%s", auth + 7);
    else if (strncasecmp(auth, "Basic ", 6) == 0) {
        unsigned char dec[600];
        size_t n = 0;
        const char *b64 = auth + 6;
        if (strlen(b64) > 780 || sodium_base642bin(dec, sizeof(dec) - 1, b64, strlen(b64), NULL, &n,
                                                   NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
            return http_fail(r, 401, "UNAUTHENTICATED", "Authorization: bad Basic credentials");
        dec[n] = '\0';
        char *colon = memchr(dec, ':', n);
        if (!colon || (size_t)(colon - (char *)dec) > STORE_USER_NAME_MAX)
            return http_fail(r, 401, "UNAUTHENTICATED", "Authorization: bad Basic credentials");
        size_t ul = (size_t)(colon - (char *)dec);
        memcpy(user, dec, ul);
        user[ul] = '\0';
        snprintf(token, sizeof(token), "%s", colon + 1);
    } else
        return http_fail(r, 401, "UNAUTHENTICATED",
                         "Authorization: expected Bearer TOKEN or Basic credentials");
    int rc = check_token(h, r, token, user, &r->caller);
    if (rc == 0)
        http_csrf_of(token, r->csrf);
    sodium_memzero(token, sizeof(token));
    return rc;
}

/* 1 when a Host header names this loopback server: 127.x, localhost or
 * [::1], with or without a port. */
static int loopback_host(const char *host)
{
    char name[300];
    if (!host || strlen(host) >= sizeof(name))
        return 0;
    snprintf(name, sizeof(name), "%s", host);
    char *end = name[0] == '[' ? strchr(name, ']') : strrchr(name, ':');
    if (name[0] == '[') {
        if (!end || (end[1] && end[1] != ':'))
            return 0;
        end[1] = '\0';
        return strcmp(name, "[::1]") == 0;
    }
    if (end)
        *end = '\0';
    if (strcasecmp(name, "localhost") == 0)
        return 1;
    struct in_addr a;
    return inet_pton(AF_INET, name, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* ---- fields ---------------------------------------------------------------------- */
static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    json_t *args = cls, *list;
    (void)kind;
    if (!key || json_object_size(args) >= HTTP_MAX_ARGS)
        return MHD_YES;
    if (!(list = json_object_get(args, key))) {
        list = json_array();
        if (!list || json_object_set_new(args, key, list))
            return MHD_NO;
    }
    json_array_append_new(list, http_json_str(value ? value : ""));
    return MHD_YES;
}

int http_parse_args(struct http_req *r)
{
    if (strcmp(r->method, "GET") == 0 || r->body_len == 0) {
        r->args = json_object();
        if (!r->args)
            return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_arg, r->args);
        return 0;
    }
    return http_parse_body(r);
}

/* ---- libmicrohttpd's callbacks -------------------------------------------------------- */
static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct srv_http *h = cls;
    struct conn *k = *con_cls;
    (void)c;
    (void)toe;
    if (!k)
        return;
    if (k->streaming && k->route->stream->free)
        k->route->stream->free(&k->r);
    json_decref(k->r.args);
    json_decref(k->r.reply);
    if (k->r.raw)
        MHD_destroy_response(k->r.raw);
    free(k->body);
    free(k);
    *con_cls = NULL;
    h->busy--;
}

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    int *n = cls;
    (void)kind;
    (void)value;
    if (key && strcasecmp(key, "Content-Length") == 0)
        n[0]++;
    else if (key && strcasecmp(key, "Transfer-Encoding") == 0)
        n[1]++;
    return MHD_YES;
}

/* 1 when a browser sent the request from a page of another site. Browsers
 * send Origin with every cross-origin request (and same-origin writes);
 * MLflow's clients, OTLP exporters and curl send none. Without this a page
 * on any site could POST to a loopback trackd's MLflow routes (a "simple"
 * request needs no preflight, and those routes take no CSRF token): the
 * Origin must be this server as the Host names it, and on a loopback bind
 * that Host a loopback name (a page whose DNS name rebinds to 127.0.0.1 is
 * same-origin by name). */
static int cross_site(const struct srv_http *h, struct MHD_Connection *c)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return 0;
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    const char *o = strncmp(origin, "http://", 7) == 0    ? origin + 7
                    : strncmp(origin, "https://", 8) == 0 ? origin + 8
                                                          : NULL;
    if (!o || !host || strcasecmp(o, host) != 0)
        return 1;
    return h->loopback && !loopback_host(host);
}

/* The first call of a request: its route, its caller, its declared size. */
static enum MHD_Result start(struct srv_http *h, struct MHD_Connection *c, const char *url,
                             const char *method, void **con_cls)
{
    struct conn *k = calloc(1, sizeof(*k));
    const char *rest = NULL, *other = NULL;

    if (!k)
        return MHD_NO;
    h->busy++;
    *con_cls = k;
    k->h = h;
    k->started_ms = wire_mono_ms();
    k->r.srv = h->srv;
    k->r.conn = c;
    k->r.method = method;
    /* a body framed two ways is how requests are smuggled past a proxy
     * that reads the other one (RFC 9112 6.3): refused, and the connection
     * closes after the answer */
    int framing[2] = {0, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, framing);
    if (framing[0] > 1 || framing[1] > 1 || (framing[0] && framing[1])) {
        http_fail(&k->r, 400, "BAD_REQUEST",
                  "the body's length is given %d times (Content-Length %d, Transfer-Encoding "
                  "%d): one only",
                  framing[0] + framing[1], framing[0], framing[1]);
        k->failed = 1;
        return MHD_YES;
    }
    int web = 0;
    k->route = find_route(method, url, &rest, &other, &web);
    k->r.web = web;
    if (!k->route) {
        if (other)
            http_fail(&k->r, 405, "ENDPOINT_NOT_FOUND", "%s %s: this endpoint takes %s", method,
                      url, other);
        else
            http_fail(&k->r, 404, "ENDPOINT_NOT_FOUND", "no endpoint %s %s", method, url);
        k->failed = 1;
        return MHD_YES;
    }
    snprintf(k->path, sizeof(k->path), "%s", rest);
    k->r.path = k->path;
    if (cross_site(h, c)) {
        const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
        http_fail(&k->r, 403, "PERMISSION_DENIED",
                  "Origin: a request from another site's page is refused (Origin %.100s, Host "
                  "%.100s)",
                  MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"), host ? host : "none");
        k->failed = 1;
        return MHD_YES;
    }
    if (web && h->loopback &&
        !loopback_host(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"))) {
        http_fail(&k->r, 403, "PERMISSION_DENIED",
                  "Host: this page answers its loopback address only (open http://%s/)", h->addr);
        k->failed = 1;
        return MHD_YES;
    }
    /* /health and /version answer anyone (a load balancer's probe) */
    if (!k->route->open && identify(h, &k->r)) {
        k->failed = 1;
        return MHD_YES;
    }
    if (web && !k->route->open && strcmp(method, "GET") != 0) {
        const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Track-CSRF");
        if (!t || strlen(t) != 64 || sodium_memcmp(t, k->r.csrf, 64) != 0) {
            http_fail(&k->r, 403, "PERMISSION_DENIED",
                      "X-Track-CSRF: %s (a write from the page echoes the csrf_token of GET "
                      "/api/track/v1/session)",
                      t ? "not this session's token" : "missing");
            k->failed = 1;
            return MHD_YES;
        }
    }
    if (k->route->write && !k->r.caller.local && k->r.caller.role == STORE_ROLE_READER) {
        http_fail(&k->r, 403, "PERMISSION_DENIED", "user %s is a reader: %s %s writes",
                  k->r.caller.name, method, url);
        k->failed = 1;
        return MHD_YES;
    }
    if (k->route->stream) {
        k->streaming = 1;
        if (k->route->stream->begin(&k->r))
            k->failed = 1;
        return MHD_YES;
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > HTTP_MAX_BODY) {
        http_fail(&k->r, 413, "INVALID_PARAMETER_VALUE",
                  "body of %s bytes exceeds the limit of %u bytes (HTTP_MAX_BODY)", cl,
                  (unsigned)HTTP_MAX_BODY);
        k->failed = 1;
    }
    return MHD_YES;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *ver, const char *data,
                                 size_t *size, void **con_cls)
{
    struct srv_http *h = cls;
    struct conn *k = *con_cls;
    (void)ver;

    if (!k) {
        if (start(h, c, url, method, con_cls) == MHD_NO)
            return MHD_NO;
        k = *con_cls;
        /* refused from its headers: answered before any body is read (the
         * connection then closes) */
        return k->failed ? answer(k) : MHD_YES;
    }
    if (*size) {
        if (wire_mono_ms() - k->started_ms > HTTP_REQUEST_SECONDS * 1000LL)
            return MHD_NO; /* a body trickling in: cut the connection */
        size_t n = *size;
        *size = 0;
        /* failed before its end: the rest is read and dropped, then answered */
        if (k->failed)
            return MHD_YES;
        if (k->streaming) {
            if (k->route->stream->data(&k->r, data, n))
                k->failed = 1;
            return MHD_YES;
        }
        if (k->len + n > HTTP_MAX_BODY) {
            k->too_big = k->failed = 1;
            http_fail(&k->r, 413, "INVALID_PARAMETER_VALUE",
                      "body exceeds the limit of %u bytes (HTTP_MAX_BODY)",
                      (unsigned)HTTP_MAX_BODY);
            free(k->body);
            k->body = NULL;
            k->len = k->cap = 0;
            return MHD_YES;
        }
        if (k->len + n > k->cap) {
            size_t cap = k->cap ? k->cap : 4096;
            while (cap < k->len + n)
                cap *= 2;
            char *b = realloc(k->body, cap);
            if (!b) {
                http_fail(&k->r, 503, "TEMPORARILY_UNAVAILABLE", "trackd out of memory");
                k->failed = 1;
                return MHD_YES;
            }
            k->body = b;
            k->cap = cap;
        }
        memcpy(k->body + k->len, data, n);
        k->len += n;
        return MHD_YES;
    }
    /* the body is complete */
    if (!k->failed) {
        if (k->streaming) {
            k->route->stream->end(&k->r);
        } else {
            k->r.body = k->body ? k->body : (char *)"";
            k->r.body_len = k->len;
            if (k->route->raw_body || http_parse_args(&k->r) == 0)
                k->route->fn(&k->r);
        }
    }
    return answer(k);
}

/* ---- start and stop ------------------------------------------------------------------ */
/* ADDR:PORT (ADDR a name or a literal, [v6] bracketed) into sa; -1 logged. */
static int parse_addr(const char *spec, struct sockaddr_storage *sa, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;

    if (!colon || colon == spec || !colon[1] || (size_t)(colon - spec) >= sizeof(host)) {
        srv_log(SRV_LOG_ERROR, "http", "--http %s: expected ADDR:PORT (127.0.0.1:5000)", spec);
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535) {
        srv_log(SRV_LOG_ERROR, "http", "--http %s: port must be 0 (any free port) to 65535", spec);
        return -1;
    }
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc || !ai) {
        srv_log(SRV_LOG_ERROR, "http", "--http %s: %s", spec, gai_strerror(rc));
        return -1;
    }
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static int is_loopback(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 0;
}

static int count_user(void *ctx, const struct store_user *u)
{
    (void)u;
    ++*(int *)ctx;
    return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[500];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    srv_log(SRV_LOG_DEBUG, "http", "%s", msg);
}

int srv_http_start(struct srv *srv, struct srv_http **out)
{
    struct sockaddr_storage sa = {0};
    socklen_t salen = 0;
    struct srv_http *h;
    struct store_err err = {0};

    *out = NULL;
    if (parse_addr(srv->cfg.http, &sa, &salen))
        return -1;
    if (!(h = calloc(1, sizeof(*h))))
        return -1;
    h->srv = srv;
    h->loopback = is_loopback(&sa);
    randombytes_buf(csrf_key, sizeof(csrf_key));
    /* once: getpwuid reads /etc/passwd at each call, and its answer is
     * shared by every thread that calls it */
    srv_local_caller(&h->local);
    pthread_mutex_init(&h->ro_lock, NULL);
    if (!h->loopback) {
        int users = 0;
        struct store_opts so = {.readonly = 1};
        if (store_open(srv->cfg.db_path, &so, &h->ro, &err) ||
            store_user_list(h->ro, count_user, &users, &err)) {
            srv_log(SRV_LOG_ERROR, "http", "cannot read the users: %s", err.msg);
            goto fail;
        }
        if (!users) {
            srv_log(SRV_LOG_ERROR, "http",
                    "refusing --http %s: on a non-loopback address every request needs a "
                    "token, and this store has no users (add one with `trackd --add-user` or "
                    "`track admin user add`, then `track admin token create NAME`), or bind "
                    "127.0.0.1",
                    srv->cfg.http);
            goto fail;
        }
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                   : ((struct sockaddr_in *)&sa)->sin_port);
    h->d = MHD_start_daemon(
        flags, port, NULL, NULL, access_cb, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_MAX_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_SECONDS, MHD_OPTION_NOTIFY_COMPLETED,
        completed, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(256 << 10), MHD_OPTION_END);
    if (!h->d) {
        srv_log(SRV_LOG_ERROR, "http", "cannot listen on %s (in use, or not an address here)",
                srv->cfg.http);
        goto fail;
    }
    /* the port as bound: with :0 the kernel chose it, and this line is how
     * a script (our tests) learns it without racing another process for a
     * port it picked and released */
    const union MHD_DaemonInfo *bound = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    size_t host_len = (size_t)(strrchr(srv->cfg.http, ':') - srv->cfg.http);
    snprintf(h->addr, sizeof(h->addr), "%.*s:%u", (int)host_len, srv->cfg.http,
             bound && bound->port ? (unsigned)bound->port : (unsigned)port);
    srv_log(SRV_LOG_INFO, "http", "listening http=%s identity=%s", h->addr,
            h->loopback ? "owner (loopback)" : "token");
    *out = h;
    front = h;
    return 0;
fail:
    store_close(h->ro);
    pthread_mutex_destroy(&h->ro_lock);
    free(h);
    return -1;
}

void srv_http_quiesce(struct srv_http *h)
{
    if (h && h->d) {
        MHD_socket s = MHD_quiesce_daemon(h->d);
        if (s != MHD_INVALID_SOCKET)
            close(s);
    }
}

int srv_http_busy(const struct srv_http *h)
{
    return h ? h->busy : 0;
}

void srv_http_stop(struct srv_http *h)
{
    if (!h)
        return;
    http_call_set_stopping(1);
    if (h->d)
        MHD_stop_daemon(h->d);
    front = NULL;
    store_close(h->ro);
    pthread_mutex_destroy(&h->ro_lock);
    free(h);
}
