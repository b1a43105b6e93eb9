/*
 * reads.c: the reads of `track._track`: a run and a search as dicts, a
 * metric's full history as three bytearrays (int64 steps, int64 times in
 * ms, double values) that track/__init__.py wraps as numpy arrays without
 * copying them again. Every request runs with the GIL released and the
 * client's mutex held; the dicts are built afterwards, under the GIL.
 * libtrack flushes the buffer before each read (a script reads what it
 * logged), so the flush policy's count starts again.
 */
#include "module.h"

#include <string.h>

static const char *status_name(int s)
{
    switch (s) {
    case TRACK_RUNNING:
        return "RUNNING";
    case TRACK_FINISHED:
        return "FINISHED";
    case TRACK_FAILED:
        return "FAILED";
    case TRACK_KILLED:
        return "KILLED";
    }
    return "UNKNOWN";
}

/* d[key] = v, stealing v; -1 when v is NULL or the store fails. */
static int put(PyObject *d, const char *key, PyObject *v)
{
    if (!v)
        return -1;
    int r = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return r;
}

static PyObject *str_or_none(const char *s)
{
    if (!s)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

static PyObject *kv_dict(const struct track_kv *kv, size_t n)
{
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < n; i++) {
        PyObject *k = str_or_none(kv[i].key);
        PyObject *v = str_or_none(kv[i].value);
        int r = k && v ? PyDict_SetItem(d, k, v) : -1;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (r < 0)
            Py_CLEAR(d);
    }
    return d;
}

static PyObject *metrics_dict(const struct track_metric_summary *m, size_t n)
{
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < n; i++) {
        PyObject *s =
            Py_BuildValue("{s:d,s:d,s:d,s:L,s:L,s:L}", "last", m[i].last, "min", m[i].min, "max",
                          m[i].max, "count", (long long)m[i].count, "last_step",
                          (long long)m[i].last_step, "last_time", (long long)m[i].last_ms);
        if (!s || PyDict_SetItemString(d, m[i].key, s) < 0)
            Py_CLEAR(d);
        Py_XDECREF(s);
    }
    return d;
}

static PyObject *hex_str(const track_run_id *id)
{
    char hex[33];
    track_run_id_hex(id, hex);
    return PyUnicode_FromString(hex);
}

PyObject *pt_run_dict(const struct track_run_info *r)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (put(d, "run_id", hex_str(&r->id)) || put(d, "name", str_or_none(r->name)) ||
        put(d, "experiment", str_or_none(r->experiment)) ||
        put(d, "status", PyUnicode_FromString(status_name(r->status))) ||
        put(d, "start_time", PyLong_FromLongLong(r->start_ms)) ||
        put(d, "end_time", r->end_ms ? PyLong_FromLongLong(r->end_ms) : Py_NewRef(Py_None)) ||
        put(d, "user", str_or_none(r->user)) ||
        put(d, "parent_run_id", r->has_parent ? hex_str(&r->parent) : Py_NewRef(Py_None)) ||
        put(d, "deleted", PyBool_FromLong(r->deleted)) ||
        put(d, "params", kv_dict(r->params, r->n_params)) ||
        put(d, "tags", kv_dict(r->tags, r->n_tags)) ||
        put(d, "metrics", metrics_dict(r->metrics, r->n_metrics))) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

PyObject *pt_get_run(PyObject *self, PyObject *args)
{
    const char *run;
    struct track_result *res = NULL;
    struct track_run_info info;
    struct track_err err = {0};
    int rc;
    (void)self;

    if (!PyArg_ParseTuple(args, "s:get_run", &run))
        return NULL;
    struct track_client *c = pt_client();
    if (!c)
        return NULL;
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&pt_mu);
    rc = track_run_get(c, run, &res, &info, &err);
    pt_buffer_sent();
    pthread_mutex_unlock(&pt_mu);
    Py_END_ALLOW_THREADS;
    if (rc)
        return pt_raise(rc, &err);
    PyObject *d = pt_run_dict(&info);
    if (d && (put(d, "artifacts", PyLong_FromLongLong(info.artifacts)) ||
              put(d, "artifact_bytes", PyLong_FromLongLong(info.artifact_bytes))))
        Py_CLEAR(d);
    track_result_free(res);
    return d;
}

/* experiments: None, a str or a sequence of str. */
PyObject *pt_search_runs(PyObject *self, PyObject *args, PyObject *kw)
{
    static const char *kwlist[] = {"experiments", "filter", "order_by", "limit", NULL};
    PyObject *exps = Py_None, *seq = NULL, *out = NULL;
    const char *filter = NULL, *order = NULL;
    const char **names = NULL;
    struct track_run_query q = {0};
    struct track_result *res = NULL;
    struct track_run_info *runs = NULL;
    struct track_err err = {0};
    size_t n = 0;
    int limit = 0, rc;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|Ozzi:_search_runs", PT_KW(kwlist), &exps, &filter,
                                     &order, &limit))
        return NULL;
    if (exps != Py_None) {
        seq = PyUnicode_Check(exps) ? PyTuple_Pack(1, exps)
                                    : PySequence_Fast(exps, "experiment: a str or a list of str");
        if (!seq)
            return NULL;
        Py_ssize_t k = PySequence_Fast_GET_SIZE(seq);
        names = PyMem_Calloc((size_t)k + 1, sizeof(*names));
        if (!names) {
            PyErr_NoMemory();
            goto out;
        }
        for (Py_ssize_t i = 0; i < k; i++) {
            PyObject *e = PySequence_Fast_GET_ITEM(seq, i);
            names[i] = PyUnicode_Check(e) ? PyUnicode_AsUTF8(e) : NULL;
            if (!names[i]) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "experiment: a str or a list of str");
                goto out;
            }
        }
        q.experiments = names;
    }
    q.filter = filter;
    q.order_by = order;
    q.limit = limit;
    q.with_details = 1;
    struct track_client *c = pt_client();
    if (!c)
        goto out;
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&pt_mu);
    rc = track_run_list(c, &q, &res, &runs, &n, &err);
    pt_buffer_sent();
    pthread_mutex_unlock(&pt_mu);
    Py_END_ALLOW_THREADS;
    if (rc) {
        pt_raise(rc, &err);
        goto out;
    }
    out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out && i < n; i++) {
        PyObject *d = pt_run_dict(&runs[i]);
        if (!d)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, d);
    }
    track_result_free(res);
out:
    PyMem_Free(names);
    Py_XDECREF(seq);
    return out;
}

/* A growable array of n elements of `size` bytes (malloc: filled with the
 * GIL released). */
struct col {
    char *p;
    size_t n, cap, size;
};

static int col_add(struct col *c, const void *src, size_t n)
{
    if (c->n + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->n + n)
            cap *= 2;
        char *p = realloc(c->p, cap * c->size);
        if (!p)
            return -1;
        c->p = p;
        c->cap = cap;
    }
    memcpy(c->p + c->n * c->size, src, n * c->size);
    c->n += n;
    return 0;
}

static PyObject *col_bytearray(const struct col *c)
{
    return PyByteArray_FromStringAndSize(c->p ? c->p : "", (Py_ssize_t)(c->n * c->size));
}

PyObject *pt_get_history(PyObject *self, PyObject *args)
{
    const char *run, *key;
    struct col st = {.size = 8}, tm = {.size = 8}, va = {.size = 8};
    struct track_err err = {0};
    PyObject *out = NULL;
    int rc = 0, nomem = 0;
    (void)self;

    if (!PyArg_ParseTuple(args, "ss:_get_history", &run, &key))
        return NULL;
    struct track_client *c = pt_client();
    if (!c)
        return NULL;
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&pt_mu);
    int64_t seq = 0;
    int more = 1;
    while (more && rc == 0 && !nomem) {
        struct track_result *res = NULL;
        const int64_t *s, *t;
        const double *v;
        size_t n = 0;
        int64_t next = 0;
        rc = track_metric_history(c, run, key, seq, 0, &res, &s, &t, &v, &n, &next, &more, &err);
        if (rc)
            break;
        nomem = col_add(&st, s, n) || col_add(&tm, t, n) || col_add(&va, v, n);
        track_result_free(res);
        if (next <= seq && more)
            break; /* no progress: never loop for ever on a confused reply */
        seq = next;
    }
    pt_buffer_sent();
    pthread_mutex_unlock(&pt_mu);
    Py_END_ALLOW_THREADS;
    if (rc)
        pt_raise(rc, &err);
    else if (nomem)
        PyErr_NoMemory();
    else
        out = Py_BuildValue("(NNN)", col_bytearray(&st), col_bytearray(&tm), col_bytearray(&va));
    free(st.p);
    free(tm.p);
    free(va.p);
    return out;
}
