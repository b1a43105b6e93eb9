/*
 * model.c: libtrack's model registry calls (track.h "model registry"):
 * register, alias and tag are sent to trackd and answered, never spooled (a
 * spooled register could not tell its version number); list, show and get
 * are reads. A struct track_model_result owns the unpacked response and the
 * arrays made to present it through track.h's types; every field of a
 * reply is checked before it is handed out.
 */
#include "internal.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct track_model_result {
    Track__V1__Response *rs;
    Track__V1__Response **pages; /* of a paged listing, after rs */
    size_t n_pages;
    void **mem;
    size_t n_mem, cap_mem;
};

/* Pages of one listing a client gathers at most: 4096 pages of 4 MiB is
 * far beyond any registry, and a server that never says "last page" (a
 * bug, or not ours) cannot keep a client looping. */
#define MAX_PAGES 4096

void track_model_result_free(struct track_model_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_mem; i++)
        free(r->mem[i]);
    free(r->mem);
    if (r->rs)
        track__v1__response__free_unpacked(r->rs, NULL);
    for (size_t i = 0; i < r->n_pages; i++)
        track__v1__response__free_unpacked(r->pages[i], NULL);
    free(r->pages);
    free(r);
}

/* n zeroed bytes freed with r; NULL on OOM. */
static void *keep(struct track_model_result *r, size_t n)
{
    if (r->n_mem == r->cap_mem) {
        size_t cap = r->cap_mem ? r->cap_mem * 2 : 8;
        void **m = realloc(r->mem, cap * sizeof(*m));
        if (!m)
            return NULL;
        r->mem = m;
        r->cap_mem = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (p)
        r->mem[r->n_mem++] = p;
    return p;
}

static int malformed(struct track_err *err, const char *field)
{
    return cl_fail(err, TRACK_E_INTERNAL, "malformed reply from server: field %s", field);
}

static const char *user_name(void)
{
    const char *u = getenv("USER");
    if (u && *u)
        return u;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_name ? pw->pw_name : "";
}

/* ---- presenting replies ------------------------------------------------------ */

static int fill_kvs(struct track_model_result *r, Track__V1__KeyValue **in, size_t n,
                    const struct track_kv **out, size_t *n_out, struct track_err *err)
{
    struct track_kv *v = keep(r, n * sizeof(*v));
    if (!v)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!in[i] || !in[i]->key || !in[i]->value)
            return malformed(err, "tags");
        v[i].key = in[i]->key;
        v[i].value = in[i]->value;
    }
    *out = v;
    *n_out = n;
    return 0;
}

static int fill_move(const Track__V1__ModelAliasMove *m, struct track_alias_move *out,
                     struct track_err *err)
{
    if (!m || !m->alias || !m->who)
        return malformed(err, "alias move");
    out->alias = m->alias;
    out->from_version = m->from_version;
    out->to_version = m->to_version;
    out->who = m->who;
    out->ms = m->ms;
    return 0;
}

static int fill_version(struct track_model_result *r, const Track__V1__ModelVersion *m,
                        struct track_model_version *v, struct track_err *err)
{
    if (!m || !m->model || !m->path || !m->description || !m->user)
        return malformed(err, "model version");
    if (m->run_id.len != 16)
        return malformed(err, "model version run_id (not 16 bytes)");
    if (m->digest.len != 32)
        return malformed(err, "model version digest (not 32 bytes)");
    v->model = m->model;
    v->version = m->version;
    memcpy(v->run.b, m->run_id.data, 16);
    v->path = m->path;
    memcpy(v->digest, m->digest.data, 32);
    v->size = m->size;
    v->description = m->description;
    v->user = m->user;
    v->created_ms = m->created_ms;
    for (size_t i = 0; i < m->n_aliases; i++)
        if (!m->aliases[i])
            return malformed(err, "model version aliases");
    v->aliases = (const char *const *)m->aliases;
    v->n_aliases = m->n_aliases;
    return fill_kvs(r, m->tags, m->n_tags, &v->tags, &v->n_tags, err);
}

static int fill_info(struct track_model_result *r, const Track__V1__ModelInfo *m,
                     struct track_model_info *v, struct track_err *err)
{
    if (!m || !m->name)
        return malformed(err, "model");
    v->name = m->name;
    v->created_ms = m->created_ms;
    v->versions = m->versions;
    v->latest_version = m->latest_version;
    struct track_alias_move *a = keep(r, m->n_aliases * sizeof(*a));
    if (!a)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < m->n_aliases; i++)
        if (fill_move(m->aliases[i], &a[i], err))
            return TRACK_E_INTERNAL;
    v->aliases = a;
    v->n_aliases = m->n_aliases;
    return fill_kvs(r, m->tags, m->n_tags, &v->tags, &v->n_tags, err);
}

/* ---- round trips -------------------------------------------------------------- */

/* Sends rq and checks that the reply carries `want`; *out owns it. Writes
 * go the same way as reads (cl_read): answered, or an error, never spooled. */
static int model_call(struct track_client *c, Track__V1__Request *rq, int want,
                      struct track_model_result **out, struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    int rc = cl_read_want(c, rq, want, &rs, err);

    *out = NULL;
    if (rc)
        return rc;
    *out = calloc(1, sizeof(**out));
    if (!*out) {
        track__v1__response__free_unpacked(rs, NULL);
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    }
    (*out)->rs = rs;
    return 0;
}

static int fail_free(struct track_model_result **res, int rc)
{
    track_model_result_free(*res);
    *res = NULL;
    return rc;
}

static int one_version(struct track_model_result **res, const Track__V1__ModelVersion *m,
                       const struct track_model_version **v, struct track_err *err)
{
    struct track_model_version *out = keep(*res, sizeof(*out));
    if (!out)
        return fail_free(res, cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory"));
    int rc = fill_version(*res, m, out, err);
    if (rc)
        return fail_free(res, rc);
    *v = out;
    return 0;
}

int track_model_register(struct track_client *c, const char *name, const char *run,
                         const char *path, const char *description, const struct track_kv *tags,
                         size_t n_tags, struct track_model_result **res,
                         const struct track_model_version **v, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelRegister mr = TRACK__V1__MODEL_REGISTER__INIT;
    Track__V1__KeyValue *kv = NULL, **kvp = NULL;
    int rc;

    if (!name || !run || !path)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "model name, run and path are required");
    if (n_tags) {
        kv = calloc(n_tags, sizeof(*kv));
        kvp = calloc(n_tags, sizeof(*kvp));
        if (!kv || !kvp) {
            rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n_tags; i++) {
        track__v1__key_value__init(&kv[i]);
        kv[i].key = wire_str(tags[i].key);
        kv[i].value = wire_str(tags[i].value);
        kvp[i] = &kv[i];
    }
    mr.name = wire_str(name);
    mr.run = wire_str(run);
    mr.path = wire_str(path);
    mr.description = wire_str(description ? description : "");
    mr.tags = kvp;
    mr.n_tags = n_tags;
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_REGISTER;
    rq.model_register = &mr;
    rc = model_call(c, &rq, TRACK__V1__RESPONSE__RESULT_MODEL_REGISTER, res, err);
    if (!rc) {
        const Track__V1__ModelRegisterResult *r = (*res)->rs->model_register;
        rc = one_version(res, r ? r->version : NULL, v, err);
    }
out:
    free(kv);
    free(kvp);
    return rc;
}

int track_model_alias(struct track_client *c, const char *name, const char *alias,
                      const char *version, int64_t *from, int64_t *to, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelAlias ma = TRACK__V1__MODEL_ALIAS__INIT;
    struct track_model_result *res = NULL;
    int rc;

    if (!name || !alias || !version)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "model name, alias and version are required");
    ma.name = wire_str(name);
    ma.alias = wire_str(alias);
    ma.version = wire_str(version);
    ma.user = wire_str(user_name());
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_ALIAS;
    rq.model_alias = &ma;
    rc = model_call(c, &rq, TRACK__V1__RESPONSE__RESULT_MODEL_ALIAS, &res, err);
    if (rc)
        return rc;
    const Track__V1__ModelAliasResult *r = res->rs->model_alias;
    if (!r || !r->move) {
        rc = malformed(err, "model_alias.move");
    } else {
        if (from)
            *from = r->move->from_version;
        if (to)
            *to = r->move->to_version;
    }
    track_model_result_free(res);
    return rc;
}

int track_model_tag(struct track_client *c, const char *target, const char *key, const char *value,
                    struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelTag mt = TRACK__V1__MODEL_TAG__INIT;
    struct track_model_result *res = NULL;
    int rc;

    if (!target || !key || !value)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "target, key and value are required");
    mt.target = wire_str(target);
    mt.key = wire_str(key);
    mt.value = wire_str(value);
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_TAG;
    rq.model_tag = &mt;
    rc = model_call(c, &rq, TRACK__V1__RESPONSE__RESULT_MODEL_TAG, &res, err);
    track_model_result_free(res);
    return rc;
}

/* Asks rq again for the next page of a listing whose first page is in
 * (*res)->rs; the reply joins (*res)->pages. 0 and *rs, or an error with
 * *res freed. */
static int next_page(struct track_client *c, Track__V1__Request *rq, int want,
                     struct track_model_result **res, Track__V1__Response **rs,
                     struct track_err *err)
{
    struct track_model_result *r = *res;
    int rc;

    if (r->n_pages + 1 >= MAX_PAGES)
        return fail_free(res, cl_fail(err, TRACK_E_INTERNAL,
                                      "server sent %d pages without a last one", MAX_PAGES));
    Track__V1__Response **p = realloc(r->pages, (r->n_pages + 1) * sizeof(*p));
    if (!p)
        return fail_free(res, cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory"));
    r->pages = p;
    rc = cl_read_want(c, rq, want, rs, err);
    if (rc)
        return fail_free(res, rc);
    r->pages[r->n_pages++] = *rs;
    return 0;
}

/* Appends n pointers to the growing array *a (count *na, capacity *cap). */
static int append(void ***a, size_t *na, size_t *cap, void **items, size_t n)
{
    if (n == 0)
        return 0;
    if (*na + n > *cap) {
        size_t c = *cap ? *cap : 16;
        while (c < *na + n)
            c *= 2;
        void **m = realloc(*a, c * sizeof(*m));
        if (!m)
            return -1;
        *a = m;
        *cap = c;
    }
    memcpy(*a + *na, items, n * sizeof(*items));
    *na += n;
    return 0;
}

int track_model_list(struct track_client *c, struct track_model_result **res,
                     const struct track_model_info **models, size_t *n, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelList ml = TRACK__V1__MODEL_LIST__INIT;
    Track__V1__ModelInfo **all = NULL;
    size_t n_all = 0, cap = 0;
    int rc;

    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_LIST;
    rq.model_list = &ml;
    rc = model_call(c, &rq, TRACK__V1__RESPONSE__RESULT_MODEL_LIST, res, err);
    if (rc)
        return rc;
    const Track__V1__ModelListResult *l = (*res)->rs->model_list;
    for (;;) {
        if (!l || (l->n_models && !l->models)) {
            free(all);
            return fail_free(res, malformed(err, "model_list"));
        }
        if (append((void ***)&all, &n_all, &cap, (void **)l->models, l->n_models)) {
            free(all);
            return fail_free(res, cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory"));
        }
        if (!l->next_after || !l->next_after[0])
            break;
        Track__V1__Response *rs = NULL;
        ml.after = l->next_after;
        if ((rc = next_page(c, &rq, TRACK__V1__RESPONSE__RESULT_MODEL_LIST, res, &rs, err))) {
            free(all);
            return rc;
        }
        l = rs->model_list;
    }
    struct track_model_info *v = keep(*res, n_all * sizeof(*v));
    if (!v) {
        free(all);
        return fail_free(res, cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory"));
    }
    for (size_t i = 0; i < n_all; i++)
        if ((rc = fill_info(*res, all[i], &v[i], err)) != 0) {
            free(all);
            return fail_free(res, rc);
        }
    free(all);
    *models = v;
    *n = n_all;
    return 0;
}

int track_model_show(struct track_client *c, const char *name, struct track_model_result **res,
                     const struct track_model_info **model,
                     const struct track_model_version **versions, size_t *n_versions,
                     const struct track_alias_move **history, size_t *n_history,
                     struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelShow ms = TRACK__V1__MODEL_SHOW__INIT;
    Track__V1__ModelVersion **vs = NULL;
    Track__V1__ModelAliasMove **hs = NULL;
    size_t nv = 0, cap_v = 0, nh = 0, cap_h = 0;
    int rc;

    if (!name)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "model name is required");
    ms.name = wire_str(name);
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_SHOW;
    rq.model_show = &ms;
    rc = model_call(c, &rq, TRACK__V1__RESPONSE__RESULT_MODEL_SHOW, res, err);
    if (rc)
        return rc;
    const Track__V1__ModelShowResult *s = (*res)->rs->model_show;
    const Track__V1__ModelInfo *first = s ? s->model : NULL;
    for (;;) {
        if (!s || (s->n_versions && !s->versions) || (s->n_history && !s->history)) {
            rc = malformed(err, "model_show");
            goto fail;
        }
        if (append((void ***)&vs, &nv, &cap_v, (void **)s->versions, s->n_versions) ||
            append((void ***)&hs, &nh, &cap_h, (void **)s->history, s->n_history)) {
            rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
            goto fail;
        }
        if (!s->more)
            break;
        /* a page that moves no cursor would be asked for again forever */
        if (s->next_after_version == ms.after_version && s->next_after_move == ms.after_move &&
            s->versions_done == ms.versions_done) {
            rc = malformed(err, "model_show (a page that does not advance)");
            goto fail;
        }
        Track__V1__Response *rs = NULL;
        ms.after_version = s->next_after_version;
        ms.after_move = s->next_after_move;
        ms.versions_done = s->versions_done;
        if ((rc = next_page(c, &rq, TRACK__V1__RESPONSE__RESULT_MODEL_SHOW, res, &rs, err))) {
            free(vs);
            free(hs);
            return rc;
        }
        s = rs->model_show;
    }
    struct track_model_info *info = keep(*res, sizeof(*info));
    struct track_model_version *v = keep(*res, nv * sizeof(*v));
    struct track_alias_move *h = keep(*res, nh * sizeof(*h));
    if (!info || !v || !h) {
        rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if ((rc = fill_info(*res, first, info, err)) != 0)
        goto fail;
    for (size_t i = 0; i < nv; i++)
        if ((rc = fill_version(*res, vs[i], &v[i], err)) != 0)
            goto fail;
    for (size_t i = 0; i < nh; i++)
        if ((rc = fill_move(hs[i], &h[i], err)) != 0)
            goto fail;
    free(vs);
    free(hs);
    *model = info;
    *versions = v;
    *n_versions = nv;
    *history = h;
    *n_history = nh;
    return 0;
fail:
    free(vs);
    free(hs);
    return fail_free(res, rc);
}

int track_model_get(struct track_client *c, const char *ref, struct track_model_result **res,
                    const struct track_model_version **v, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelGet mg = TRACK__V1__MODEL_GET__INIT;
    int rc;

    if (!ref)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "model version is required");
    mg.ref = wire_str(ref);
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_GET;
    rq.model_get = &mg;
    rc = model_call(c, &rq, TRACK__V1__RESPONSE__RESULT_MODEL_GET, res, err);
    if (rc)
        return rc;
    const Track__V1__ModelGetResult *g = (*res)->rs->model_get;
    return one_version(res, g ? g->version : NULL, v, err);
}
