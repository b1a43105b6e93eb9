/*
 * httpc.c: the smallest HTTP/1.1 client B11 and B15 need, over plain
 * sockets (no library): one keep-alive connection to ADDR:PORT, a request
 * with a Content-Length body written in one send, and the answer's status
 * line, headers and Content-Length body read back. Nothing else of HTTP:
 * no chunked answers (trackd's front always sends a length), no TLS, no
 * redirects. It opens no nanomsg socket, so the orchestrator may use it too.
 *
 * TCP_NODELAY is set on the socket, as a latency-minded client (Python's
 * http.client, Go's net/http) does; TRACK_BENCH_HTTP_NODELAY=0 leaves
 * Nagle on, to see what a client that does not set it pays. When the
 * server closed the connection (its idle limit, or `Connection: close`)
 * the next request reconnects; `connects` counts the connections made, so
 * a front that closes after every answer shows.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTPC_MAX_ANSWER (64u << 20) /* bytes of an answer's head and body */

static int httpc_connect(struct bench_http *h)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->port)};
    const char *nd = getenv("TRACK_BENCH_HTTP_NODELAY");
    int one = 1;

    if (inet_pton(AF_INET, h->host, &sa.sin_addr) != 1) {
        snprintf(h->err, sizeof(h->err), "%s: not an IPv4 address", h->host);
        return -1;
    }
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0 || connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(h->err, sizeof(h->err), "connect %s:%d: %s", h->host, h->port, strerror(errno));
        if (h->fd >= 0)
            close(h->fd);
        h->fd = -1;
        return -1;
    }
    if (!(nd && strcmp(nd, "0") == 0))
        setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h->connects++;
    h->have = 0;
    return 0;
}

int bench_http_open(struct bench_http *h, const char *hostport)
{
    const char *colon = strrchr(hostport, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;

    memset(h, 0, sizeof(*h));
    h->fd = -1;
    if (!colon || (size_t)(colon - hostport) >= sizeof(h->host) || *end || port < 1 ||
        port > 65535) {
        snprintf(h->err, sizeof(h->err), "%s: expected ADDR:PORT", hostport);
        return -1;
    }
    memcpy(h->host, hostport, (size_t)(colon - hostport));
    h->port = (int)port;
    h->cap = 64 << 10;
    if (!(h->buf = malloc(h->cap)) || !(h->req = malloc(h->cap))) {
        snprintf(h->err, sizeof(h->err), "out of memory");
        return -1;
    }
    h->req_cap = h->cap;
    return httpc_connect(h);
}

void bench_http_close(struct bench_http *h)
{
    if (h->fd >= 0)
        close(h->fd);
    free(h->buf);
    free(h->req);
    h->fd = -1;
    h->buf = h->req = NULL;
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap;
    while (c < need)
        c *= 2;
    char *n = realloc(*p, c);
    if (!n)
        return -1;
    *p = n;
    *cap = c;
    return 0;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads more of the answer into h->buf; 0 on EOF, -1 on error, else bytes. */
static ssize_t read_more(struct bench_http *h)
{
    if (h->have == h->cap && (h->cap >= HTTPC_MAX_ANSWER || grow(&h->buf, &h->cap, h->cap * 2) < 0))
        return -1;
    for (;;) {
        ssize_t n = recv(h->fd, h->buf + h->have, h->cap - h->have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            h->have += (size_t)n;
        return n;
    }
}

/* One answer: 0 with status, body and length set, -1 with h->err; *got_any
 * says whether any byte of it came (a request unanswered may be resent). */
static int read_answer(struct bench_http *h, int *status, int *got_any)
{
    char *end = NULL;
    *got_any = 0;
    h->have = 0;
    while (!(end = h->have >= 4 ? memmem(h->buf, h->have, "\r\n\r\n", 4) : NULL)) {
        ssize_t n = read_more(h);
        if (n <= 0) {
            snprintf(h->err, sizeof(h->err), "answer head: %s",
                     n == 0 ? "connection closed" : strerror(errno));
            return -1;
        }
        *got_any = 1;
    }
    size_t head = (size_t)(end - h->buf) + 4;
    long long clen = -1;
    int close_after = 0;
    if (sscanf(h->buf, "HTTP/1.%*d %d", status) != 1) {
        snprintf(h->err, sizeof(h->err), "not an HTTP status line");
        return -1;
    }
    for (char *l = h->buf; (l = memchr(l, '\n', (size_t)(end - l))) && ++l < end;) {
        if (strncasecmp(l, "Content-Length:", 15) == 0)
            clen = strtoll(l + 15, NULL, 10);
        else if (strncasecmp(l, "Connection:", 11) == 0 &&
                 strncasecmp(l + 11 + strspn(l + 11, " \t"), "close", 5) == 0)
            close_after = 1;
        else if (strncasecmp(l, "Transfer-Encoding:", 18) == 0) {
            snprintf(h->err, sizeof(h->err), "chunked answers are not read here");
            return -1;
        }
    }
    if (clen < 0 || (size_t)clen > HTTPC_MAX_ANSWER - head) {
        snprintf(h->err, sizeof(h->err), "answer without a usable Content-Length");
        return -1;
    }
    if (grow(&h->buf, &h->cap, head + (size_t)clen + 1) < 0) {
        snprintf(h->err, sizeof(h->err), "out of memory");
        return -1;
    }
    while (h->have < head + (size_t)clen) {
        ssize_t n = read_more(h);
        if (n <= 0) {
            snprintf(h->err, sizeof(h->err), "answer body: %s",
                     n == 0 ? "connection closed" : strerror(errno));
            return -1;
        }
    }
    h->body = h->buf + head;
    h->body_len = (size_t)clen;
    h->body[clen] = '\0'; /* h->have == head + clen: nothing pipelined */
    if (close_after) {
        close(h->fd);
        h->fd = -1;
    }
    return 0;
}

int bench_http_post(struct bench_http *h, const char *path, const char *body, size_t len,
                    int *status)
{
    return bench_http_post_as(h, path, "application/json", body, len, status);
}

int bench_http_post_as(struct bench_http *h, const char *path, const char *ctype, const char *body,
                       size_t len, int *status)
{
    int hl = snprintf(NULL, 0,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      path, h->host, h->port, ctype, len);
    if (hl < 0 || grow(&h->req, &h->req_cap, (size_t)hl + len + 1) < 0) {
        snprintf(h->err, sizeof(h->err), "out of memory");
        return -1;
    }
    snprintf(h->req, h->req_cap,
             "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n"
             "Content-Length: %zu\r\n\r\n",
             path, h->host, h->port, ctype, len);
    memcpy(h->req + hl, body, len);
    /* a connection the server closed while we were idle is found at the
     * send or as an answer that never starts: then once more, afresh */
    for (int attempt = 0; attempt < 2; attempt++) {
        int got_any = 0;
        if (h->fd < 0 && httpc_connect(h) < 0)
            return -1;
        if (send_all(h->fd, h->req, (size_t)hl + len) == 0 && read_answer(h, status, &got_any) == 0)
            return 0;
        if (got_any || attempt) {
            if (!got_any && !h->err[0])
                snprintf(h->err, sizeof(h->err), "send: %s", strerror(errno));
            return -1;
        }
        close(h->fd);
        h->fd = -1;
        h->err[0] = '\0';
    }
    return -1;
}

int bench_http_json_str(const char *body, const char *field, char *out, size_t cap)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\":\"", field);
    const char *p = strstr(body, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap)
        return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return 0;
}
