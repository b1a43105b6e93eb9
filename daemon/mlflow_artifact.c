/*
 * mlflow_artifact.c: MLflow's artifact proxy (/api/2.0/mlflow-artifacts/)
 * on track's artifact store (README "Artifacts"), through the loop. A run's
 * artifact_uri is mlflow-artifacts:/EXP/RUN/artifacts, so every path here
 * is EXP/RUN/artifacts[/PATH]; EXP is not checked against the run (the run
 * id alone names it, as in track).
 *
 * Upload (PUT, Content-Length or chunked). The body is written as it comes
 * to an unnamed file in the data directory (O_TMPFILE: nothing is left on
 * disk if trackd dies) and hashed on the way, so that track's upload can
 * begin with the digest: a blob trackd has already costs no second copy,
 * and a body of unknown length needs no size up front. Then the file goes
 * to the store chunk by chunk (ArtifactChunk) and is committed: the artifact
 * row exists once, complete. A body that fails on the way (a full disk, a
 * client gone) leaves nothing behind.
 *
 * Download (GET) streams ArtifactReads of 1 MiB as libmicrohttpd asks for
 * them; listing (GET ?path=) answers the names directly under the
 * directory, as MLflow's server does; DELETE removes a file or a
 * directory's artifacts (their blobs go at the next `track gc`). Multipart
 * upload is not offered: mpu/create answers what makes MLflow's client fall
 * back to one PUT.
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"

#define ML_ARTIFACT_MAX (64LL << 30) /* bytes of one uploaded artifact */

/* EXP/RUN/artifacts[/PATH] into run and path ("" for the root); -1 with r
 * failed: MLflow's "Invalid path" for anything that could leave the run. */
/* 1 when p (already decoded once) could climb, hide or leave the run:
 * a backslash, '#', an absolute or empty part, a . or .. part; and the same
 * once more after each further percent-decoding (MLflow decodes until it
 * settles), so %252e%252e is no way around it. */
static int unsafe_path(const char *p)
{
    char buf[2][LIMIT_ARTIFACT_PATH * 3 + 64];
    const char *cur = p;

    for (int round = 0; round < 4; round++) {
        if (strchr(cur, '\\') || strchr(cur, '#') || cur[0] == '/' || strstr(cur, "//"))
            return 1;
        for (const char *seg = cur; *seg;) {
            size_t n = strcspn(seg, "/");
            if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return 1;
            seg += n;
            if (*seg == '/')
                seg++;
        }
        if (!strchr(cur, '%'))
            return 0;
        if (strlen(cur) >= sizeof(buf[0]))
            return 1;
        char *out = buf[round & 1];
        size_t o = 0;
        for (const char *c = cur; *c; c++) {
            unsigned v;
            if (c[0] == '%' && c[1] && c[2] && sscanf(c + 1, "%2x", &v) == 1 &&
                strchr("0123456789abcdefABCDEF", c[1]) && strchr("0123456789abcdefABCDEF", c[2])) {
                if (v == 0)
                    return 1;
                out[o++] = (char)v;
                c += 2;
            } else
                out[o++] = *c;
        }
        out[o] = '\0';
        if (strcmp(out, cur) == 0)
            return 0;
        cur = out;
    }
    return 1; /* still decoding after four rounds: nobody needs that */
}

static int split_path(struct http_req *r, const char *p, char run[33], const char **path)
{
    const char *s = p;

    if (unsafe_path(p))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "Invalid path");
    size_t el = strcspn(s, "/");
    if (!el || strspn(s, "0123456789") != el || s[el] != '/')
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "path '%.200s': expected EXPERIMENT/RUN/artifacts/PATH", p);
    s += el + 1;
    uint8_t id[16];
    int bad = strlen(s) < 32 || (s[32] && s[32] != '/');
    if (!bad) {
        memcpy(run, s, 32);
        run[32] = '\0';
        bad = wire_unhex(run, id) != 0;
    }
    if (bad)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "path '%.200s': no run id (32 hex digits) after the experiment", p);
    s += 32;
    if (*s == '/')
        s++;
    if (strncmp(s, "artifacts", 9) != 0 || (s[9] && s[9] != '/'))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "path '%.200s': expected EXPERIMENT/RUN/artifacts/PATH", p);
    s += 9;
    if (*s == '/')
        s++;
    if (strlen(s) > LIMIT_ARTIFACT_PATH)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "artifact path of %zu bytes: at most %d", strlen(s), LIMIT_ARTIFACT_PATH);
    *path = s;
    return 0;
}

/* ---- upload ------------------------------------------------------------------------ */
struct upload {
    int fd;
    crypto_generichash_state h;
    uint64_t size;
    char run[33];
    char path[LIMIT_ARTIFACT_PATH + 1];
};

static int up_begin(struct http_req *r)
{
    const char *path;
    struct upload *u = calloc(1, sizeof(*u));

    if (!u)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    u->fd = -1;
    r->stream = u;
    if (split_path(r, r->path, u->run, &path))
        return -1;
    if (!path[0])
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "PUT needs a file path after artifacts/");
    snprintf(u->path, sizeof(u->path), "%s", path);
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > (unsigned long long)ML_ARTIFACT_MAX)
        return http_fail(r, 413, "INVALID_PARAMETER_VALUE",
                         "artifact of %s bytes: this server takes at most %lld", cl,
                         (long long)ML_ARTIFACT_MAX);
    u->fd = open(r->srv->cfg.data_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (u->fd < 0)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE",
                         "cannot make a temporary file in the data directory: %s", strerror(errno));
    crypto_generichash_init(&u->h, NULL, 0, 32);
    return 0;
}

static int up_data(struct http_req *r, const char *buf, size_t n)
{
    struct upload *u = r->stream;

    if (u->size + n > (uint64_t)ML_ARTIFACT_MAX)
        return http_fail(r, 413, "INVALID_PARAMETER_VALUE",
                         "artifact larger than %lld bytes (this server's limit)",
                         (long long)ML_ARTIFACT_MAX);
    crypto_generichash_update(&u->h, (const unsigned char *)buf, n);
    for (size_t done = 0; done < n;) {
        ssize_t w = write(u->fd, buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return http_fail(r, errno == ENOSPC || errno == EDQUOT ? 507 : 503,
                             errno == ENOSPC || errno == EDQUOT ? "RESOURCE_EXHAUSTED"
                                                                : "TEMPORARILY_UNAVAILABLE",
                             "writing the upload: %s", strerror(errno));
        done += (size_t)w;
    }
    u->size += n;
    return 0;
}

static int up_end(struct http_req *r)
{
    struct upload *u = r->stream;
    uint8_t digest[32];
    Track__V1__Response *rs = NULL;
    uint8_t *buf = NULL;
    int ret = -1;

    crypto_generichash_final(&u->h, digest, sizeof(digest));
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactBegin b = TRACK__V1__ARTIFACT_BEGIN__INIT;
    b.run = u->run;
    b.path = u->path;
    b.size = (int64_t)u->size;
    b.digest.data = digest;
    b.digest.len = sizeof(digest);
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_BEGIN;
    rq.artifact_begin = &b;
    if (http_call(r, &rq, &rs))
        return -1;
    const Track__V1__ArtifactBeginResult *br = rs->artifact_begin;
    if (br->exists) { /* a blob trackd holds already: the row is made */
        http_response_free(rs);
        return http_ok(r, json_object());
    }
    char id[80];
    snprintf(id, sizeof(id), "%s", br->upload_id);
    size_t chunk =
        br->chunk_bytes > 0 && br->chunk_bytes <= (1 << 20) ? (size_t)br->chunk_bytes : (1u << 20);
    uint64_t off = (uint64_t)br->have;
    http_response_free(rs);
    rs = NULL;
    if (!(buf = malloc(chunk))) {
        http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
        goto out;
    }
    while (off < u->size) {
        size_t want = u->size - off < chunk ? (size_t)(u->size - off) : chunk;
        ssize_t got = pread(u->fd, buf, want, (off_t)off);
        if (got <= 0) {
            http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "reading the upload back: %s",
                      got < 0 ? strerror(errno) : "short file");
            goto out;
        }
        Track__V1__Request cq = TRACK__V1__REQUEST__INIT;
        Track__V1__ArtifactChunk c = TRACK__V1__ARTIFACT_CHUNK__INIT;
        c.upload_id = id;
        c.offset = (int64_t)off;
        c.data.data = buf;
        c.data.len = (size_t)got;
        cq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_CHUNK;
        cq.artifact_chunk = &c;
        if (http_call(r, &cq, &rs))
            goto out;
        http_response_free(rs);
        rs = NULL;
        off += (uint64_t)got;
    }
    Track__V1__Request mq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactCommit m = TRACK__V1__ARTIFACT_COMMIT__INIT;
    m.upload_id = id;
    m.run = u->run;
    m.path = u->path;
    mq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_COMMIT;
    mq.artifact_commit = &m;
    if (http_call(r, &mq, &rs))
        goto out;
    ret = http_ok(r, json_object());
out:
    http_response_free(rs);
    free(buf);
    return ret;
}

static void up_free(struct http_req *r)
{
    struct upload *u = r->stream;
    if (!u)
        return;
    if (u->fd >= 0)
        close(u->fd);
    free(u);
    r->stream = NULL;
}

static const struct http_stream_ops upload_ops = {up_begin, up_data, up_end, up_free};

/* ---- download -------------------------------------------------------------------- */
struct download {
    struct http_req r; /* the caller, for the reads */
    uint8_t digest[32];
    uint64_t size;
};

static ssize_t dl_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct download *d = cls;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactRead q = TRACK__V1__ARTIFACT_READ__INIT;
    Track__V1__Response *rs;

    if (pos >= d->size)
        return MHD_CONTENT_READER_END_OF_STREAM;
    q.digest.data = d->digest;
    q.digest.len = sizeof(d->digest);
    q.offset = (int64_t)pos;
    q.max_bytes = (int32_t)(max < (1u << 20) ? max : (1u << 20));
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_READ;
    rq.artifact_read = &q;
    if (http_call(&d->r, &rq, &rs)) {
        srv_log(SRV_LOG_WARN, "http", "artifact download cut at %llu: %s", (unsigned long long)pos,
                d->r.message);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = rs->artifact_read->data.len;
    if (n > max)
        n = max;
    memcpy(buf, rs->artifact_read->data.data, n);
    http_response_free(rs);
    return n ? (ssize_t)n : MHD_CONTENT_READER_END_WITH_ERROR;
}

int ml_artifact_send(struct http_req *r, const char *run, const char *path, int attachment)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactGet q = TRACK__V1__ARTIFACT_GET__INIT;
    Track__V1__Response *rs;

    q.run = (char *)run;
    q.path = (char *)path;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_GET;
    rq.artifact_get = &q;
    if (http_call(r, &rq, &rs))
        return -1;
    const Track__V1__ArtifactInfo *a = rs->artifact_get->artifact;
    if (!a || a->digest.len != 32) {
        http_response_free(rs);
        return http_fail(r, 500, "INTERNAL_ERROR", "artifact %s: no digest", path);
    }
    int ret = ml_blob_send(r, a->digest.data, a->size, attachment ? path : NULL);
    http_response_free(rs);
    return ret;
}

int ml_blob_send(struct http_req *r, const uint8_t digest[32], int64_t size, const char *name)
{
    struct download *d = calloc(1, sizeof(*d));
    if (!d)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    d->r.srv = r->srv;
    d->r.caller = r->caller;
    memcpy(d->digest, digest, 32);
    d->size = (uint64_t)(size > 0 ? size : 0);
    r->raw = MHD_create_response_from_callback(d->size, 1 << 20, dl_read, d, free);
    if (!r->raw) {
        free(d);
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    }
    MHD_add_response_header(r->raw, "Content-Type", "application/octet-stream");
    MHD_add_response_header(r->raw, "X-Content-Type-Options", "nosniff");
    if (name) {
        /* the file's own name, in bytes no header can be split by */
        char disp[300], file[200];
        const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
        size_t i = 0;
        for (; base[i] && i < sizeof(file) - 1; i++)
            file[i] =
                strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", base[i])
                    ? base[i]
                    : '_';
        file[i] = '\0';
        snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", file[0] ? file : "artifact");
        MHD_add_response_header(r->raw, "Content-Disposition", disp);
    }
    return 0;
}

static int download(struct http_req *r)
{
    char run[33];
    const char *path = NULL;

    if (split_path(r, r->path, run, &path))
        return -1;
    if (!path[0])
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "GET of a directory: list it with ?path=");
    return ml_artifact_send(r, run, path, 0);
}

/* ---- list -------------------------------------------------------------------------- */
static int list(struct http_req *r)
{
    const char *p, *dir;
    char run[33], prefix[LIMIT_ARTIFACT_PATH + 2], after[LIMIT_ARTIFACT_PATH + 1] = "";
    char last_dir[LIMIT_ARTIFACT_PATH + 1] = "";
    json_t *files = json_array();
    int more;

    if (!files)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    if (http_arg_str(r, "path", 0, &p) || split_path(r, p ? p : "", run, &dir)) {
        json_decref(files);
        return -1;
    }
    snprintf(prefix, sizeof(prefix), "%s%s", dir, dir[0] ? "/" : "");
    size_t pl = strlen(prefix);
    do {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ArtifactList q = TRACK__V1__ARTIFACT_LIST__INIT;
        Track__V1__Response *rs;
        q.run = run;
        q.prefix = prefix;
        q.after = after;
        rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_LIST;
        rq.artifact_list = &q;
        if (http_call(r, &rq, &rs)) {
            json_decref(files);
            return -1;
        }
        const Track__V1__ArtifactListResult *l = rs->artifact_list;
        for (size_t i = 0; i < l->n_artifacts; i++) {
            const char *name = l->artifacts[i]->path;
            if (strncmp(name, prefix, pl) != 0)
                continue;
            name += pl;
            const char *slash = strchr(name, '/');
            if (!slash) {
                json_array_append_new(
                    files, json_pack("{s:o, s:b, s:I}", "path", http_json_str(name), "is_dir", 0,
                                     "file_size", (json_int_t)l->artifacts[i]->size));
                continue;
            }
            size_t dl = (size_t)(slash - name);
            if (strlen(last_dir) == dl && strncmp(last_dir, name, dl) == 0)
                continue; /* the sorted listing keeps a directory's paths together */
            snprintf(last_dir, sizeof(last_dir), "%.*s", (int)dl, name);
            json_array_append_new(
                files, json_pack("{s:o, s:b}", "path", http_json_str(last_dir), "is_dir", 1));
        }
        more = l->more && l->n_artifacts;
        if (more)
            snprintf(after, sizeof(after), "%s", l->artifacts[l->n_artifacts - 1]->path);
        http_response_free(rs);
    } while (more);
    json_t *o = json_object();
    if (o && json_array_size(files))
        json_object_set(o, "files", files);
    json_decref(files);
    return http_ok(r, o);
}

static int delete_artifact(struct http_req *r)
{
    char run[33];
    const char *path;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactDelete q = TRACK__V1__ARTIFACT_DELETE__INIT;
    Track__V1__Response *rs;

    if (split_path(r, r->path, run, &path))
        return -1;
    q.run = run;
    q.path = (char *)path;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_DELETE;
    rq.artifact_delete = &q;
    if (http_call(r, &rq, &rs))
        return -1;
    http_response_free(rs);
    return http_ok(r, json_object());
}

static int mpu_create(struct http_req *r)
{
    /* the message MLflow's client recognises to fall back to one PUT */
    return http_fail(r, 501, "NOT_IMPLEMENTED",
                     "Multipart upload is not supported for the current artifact repository");
}

const struct http_route ml_artifact_routes[] = {
    {"PUT", "artifacts/", NULL, &upload_ops, 1, 0, 0},
    {"GET", "artifacts/", download, NULL, 0, 0, 0},
    {"GET", "artifacts", list, NULL, 0, 0, 0},
    {"DELETE", "artifacts/", delete_artifact, NULL, 1, 0, 0},
    {"POST", "mpu/create/", mpu_create, NULL, 1, 0, 0},
    {"POST", "mpu/create", mpu_create, NULL, 1, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};
