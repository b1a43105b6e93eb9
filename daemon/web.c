/*
 * web.c: the dashboard's page and its session (README "Dashboard"). The
 * page (web/ in the source tree: HTML, ES modules, CSS, and uPlot from npm)
 * is compiled into trackd as web_assets.c at build time, so a server needs
 * no web root and no Node.js: `GET /` answers index.html, `GET /ui/FILE`
 * the rest, each with an ETag (its digest, made at build time) so a
 * browser revalidates in one small request.
 *
 * Every answer of the dashboard's tables (http.c marks them web) carries
 * the same headers: a Content-Security-Policy that allows only this
 * origin's own scripts and styles (no inline script, no eval, no framing),
 * nosniff, and no referrer. What the page shows is always text: web/
 * never writes a value as HTML.
 *
 * The session: on a loopback bind the page is the daemon's owner and
 * needs no login; elsewhere `POST login` takes a token from `track admin
 * token create` and keeps it in a cookie the page's script cannot read
 * (HttpOnly, SameSite=Strict, Secure when the request came through TLS at
 * a proxy: X-Forwarded-Proto https). The cookie is accepted only by the
 * dashboard's tables, and their writes must echo `csrf_token` (a keyed
 * hash of the credential, http_csrf_of) in X-Track-CSRF: another site can
 * make the browser send the cookie, but cannot read the token.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "http.h"
#include "web_assets.h"

#define WEB_CSP                                                                                    \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "               \
    "form-action 'self'"
#define WEB_COOKIE_DAYS 30

void web_headers(struct MHD_Response *rs, const struct http_req *r)
{
    MHD_add_response_header(rs, "Content-Security-Policy", WEB_CSP);
    MHD_add_response_header(rs, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(rs, "X-Frame-Options", "DENY");
    MHD_add_response_header(rs, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(rs, "Cross-Origin-Resource-Policy", "same-origin");
    if (!MHD_get_response_header(rs, "Cache-Control"))
        MHD_add_response_header(rs, "Cache-Control", "no-store");
    if (r->set_cookie[0])
        MHD_add_response_header(rs, "Set-Cookie", r->set_cookie);
}

/* ---- compression ----------------------------------------------------------------- */
static int peer_on_loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (!sa)
        return 1;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* 1 when Accept-Encoding lists gzip (not as q=0) */
static int takes_gzip(struct MHD_Connection *c)
{
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
    for (const char *p = ae; p && (p = strcasestr(p, "gzip")); p += 4) {
        if (p != ae && p[-1] != ' ' && p[-1] != ',')
            continue;
        const char *q = p + 4 + strspn(p + 4, " ");
        if (*q == ';') {
            q += 1 + strspn(q + 1, " ");
            if (strncasecmp(q, "q=", 2) == 0 && strtod(q + 2, NULL) <= 0)
                return 0;
        }
        return 1;
    }
    return 0;
}

char *web_gzip(const struct http_req *r, const char *text, size_t n, size_t *out_n)
{
    if (n < WEB_GZIP_MIN || n > UINT32_MAX || !takes_gzip(r->conn) || peer_on_loopback(r->conn))
        return NULL;
    z_stream z = {0};
    /* 15 + 16: a gzip wrapper, as Content-Encoding: gzip means */
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong cap = deflateBound(&z, (uLong)n);
    unsigned char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)text;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_n = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return (char *)out;
}

/* ---- shared by the API's files --------------------------------------------------- */
json_t *web_json_time(int64_t ms)
{
    return ms ? json_integer(ms) : json_null();
}

void web_hex(const uint8_t *b, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, b, n);
}

int web_next_token(const ProtobufCBinaryData *next, uint8_t *tok, size_t cap, size_t *len)
{
    if (next->len == 0 || next->len > cap)
        return 0;
    memcpy(tok, next->data, next->len);
    *len = next->len;
    return 1;
}

int web_arg_limit(struct http_req *r, const char *field, int64_t dflt, int64_t max, int64_t *out)
{
    if (http_arg_i64(r, field, 0, dflt, out))
        return -1;
    if (*out < 1 || *out > max)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "%s: %lld is not between 1 and %lld",
                         field, (long long)*out, (long long)max);
    return 0;
}

int web_fail_filter(struct http_req *r, const char *field)
{
    /* the store says "filter: column N: ..." or "order-by: column N: ..." */
    const char *c = strstr(r->message, ": column ");
    if (r->status == 400 && c) {
        r->err_field = field;
        r->err_column = (int)strtol(c + 9, NULL, 10);
    }
    return -1;
}

/* ---- the page -------------------------------------------------------------------- */
static int send_asset(struct http_req *r, const char *name)
{
    const struct web_asset *a = NULL;
    for (const struct web_asset *x = web_assets; x->name; x++)
        if (strcmp(x->name, name) == 0)
            a = x;
    if (!a)
        return http_fail(r, 404, "ENDPOINT_NOT_FOUND", "no file /ui/%.200s in this dashboard",
                         name);
    const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
    int fresh = inm && strcmp(inm, a->etag) == 0;
    r->raw = fresh
                 ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
                 : MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!r->raw)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    r->raw_status = fresh ? 304 : 200;
    MHD_add_response_header(r->raw, "Content-Type", a->type);
    MHD_add_response_header(r->raw, "ETag", a->etag);
    MHD_add_response_header(r->raw, "Cache-Control", "no-cache");
    return 0;
}

static int page(struct http_req *r)
{
    return send_asset(r, "index.html");
}

static int asset(struct http_req *r)
{
    return send_asset(r, r->path);
}

const struct http_route web_page_routes[] = {
    {"GET", "/ui/", asset, NULL, 0, 1, 0},
    {"GET", "/", page, NULL, 0, 1, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

/* ---- the session ----------------------------------------------------------------- */
static json_t *session_json(const struct http_req *r, const struct srv_caller *c)
{
    return json_pack("{s:o, s:s, s:b, s:s}", "user", http_json_str(c->name), "role",
                     c->local ? "admin" : store_role_name(c->role), "local", c->local, "csrf_token",
                     r->csrf);
}

static int session(struct http_req *r)
{
    return http_ok(r, session_json(r, &r->caller));
}

/* 1 when the request reached us through TLS at a proxy in front */
static int behind_tls(const struct http_req *r)
{
    const char *p = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
    return p && strcasecmp(p, "https") == 0;
}

/* login and logout come before any CSRF token: they take JSON only, which
 * another site's form cannot send (a cross-site fetch of JSON needs a
 * preflight this server never grants), so no page can log a browser in to
 * someone else's account or out of its own */
static int json_only(struct http_req *r)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 || (ct[16] && ct[16] != ';'))
        return http_fail(r, 415, "BAD_REQUEST", "Content-Type: %s %s takes application/json only",
                         r->method, r->path);
    return 0;
}

static int login(struct http_req *r)
{
    const char *token;
    struct srv_caller c;

    if (json_only(r) || http_arg_str(r, "token", 1, &token))
        return -1;
    if (strlen(token) > 600)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "token: longer than 600 bytes");
    /* a cookie's value: the token's own alphabet only, so nothing can be
     * smuggled into the header */
    if (!*token || strspn(token, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                 "-_.~+/=") != strlen(token))
        return http_fail(r, 401, "UNAUTHENTICATED", "token not valid");
    if (http_token_caller(r, token, &c))
        return -1;
    http_csrf_of(token, r->csrf);
    snprintf(r->set_cookie, sizeof(r->set_cookie),
             "track_token=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s", token,
             WEB_COOKIE_DAYS * 86400, behind_tls(r) ? "; Secure" : "");
    return http_ok(r, session_json(r, &c));
}

static int logout(struct http_req *r)
{
    if (json_only(r))
        return -1;
    snprintf(r->set_cookie, sizeof(r->set_cookie),
             "track_token=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
             behind_tls(r) ? "; Secure" : "");
    return http_ok(r, json_object());
}

const struct http_route web_session_routes[] = {
    {"GET", "session", session, NULL, 0, 0, 0},
    {"POST", "login", login, NULL, 0, 1, 0},
    {"POST", "logout", logout, NULL, 0, 1, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};
