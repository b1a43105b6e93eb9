/*
 * runs.c: the run and its params and tags in `track._track`: start (or
 * join, by id), end, and the key/value writes, each one request sent with
 * the GIL released and the client's mutex held. Values that are not str
 * go through str(), as MLflow's client does. The system metrics sampler
 * (libtrack's thread, with a client of its own) is started and stopped here.
 */
#include "module.h"

#include <string.h>
#include <unistd.h>

/* ---- key/value pairs (params, tags) ---------------------------------- */

struct kvs {
    struct track_kv *kv;
    PyObject *keep; /* a list holding every string the kv point into */
    size_t n;
};

static void kvs_free(struct kvs *k)
{
    PyMem_Free(k->kv);
    Py_XDECREF(k->keep);
}

/* From a mapping (or None): values that are not str go through str(). */
static int kvs_from(PyObject *obj, const char *what, struct kvs *out)
{
    memset(out, 0, sizeof(*out));
    if (!obj || obj == Py_None)
        return 0;
    PyObject *items = PyMapping_Items(obj);
    if (!items)
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(items);
    out->keep = items;
    out->kv = PyMem_Calloc((size_t)n + 1, sizeof(*out->kv));
    if (!out->kv) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PyList_GET_ITEM(items, i);
        PyObject *k = PyTuple_GET_ITEM(it, 0), *v = PyTuple_GET_ITEM(it, 1);
        const char *ks = pt_key_utf8(k, what);
        if (!ks)
            return -1;
        PyObject *vs = PyUnicode_Check(v) ? Py_NewRef(v) : PyObject_Str(v);
        if (!vs)
            return -1;
        int r = PyList_Append(items, vs); /* kept alive with the list */
        Py_DECREF(vs);
        const char *val = r == 0 ? pt_key_utf8(vs, "value") : NULL;
        if (!val)
            return -1;
        out->kv[i].key = ks;
        out->kv[i].value = val;
    }
    out->n = (size_t)n;
    return 0;
}

enum kv_op { KV_PARAMS, KV_TAGS };

static PyObject *send_kvs(PyObject *d, enum kv_op op)
{
    struct track_err err = {0};
    struct kvs kv;
    int rc;

    if (kvs_from(d, op == KV_PARAMS ? "param key" : "tag key", &kv)) {
        kvs_free(&kv);
        return NULL;
    }
    struct track_client *c = pt_client();
    if (!c) {
        kvs_free(&kv);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&pt_mu);
    rc = op == KV_PARAMS ? track_log_params(c, kv.kv, kv.n, &err)
                         : track_set_tags(c, kv.kv, kv.n, &err);
    pthread_mutex_unlock(&pt_mu);
    Py_END_ALLOW_THREADS;
    kvs_free(&kv);
    if (rc)
        return pt_raise(rc, &err);
    Py_RETURN_NONE;
}

static PyObject *send_one(PyObject *args, enum kv_op op)
{
    PyObject *k, *v;
    if (!PyArg_ParseTuple(args, "OO", &k, &v))
        return NULL;
    PyObject *d = PyDict_New();
    if (!d || PyDict_SetItem(d, k, v) < 0) {
        Py_XDECREF(d);
        return NULL;
    }
    PyObject *r = send_kvs(d, op);
    Py_DECREF(d);
    return r;
}

PyDoc_STRVAR(log_param_doc, "log_param(key, value)\n--\n\n"
                            "Logs a param of the current run (value as str(value)). Params are "
                            "immutable: the\nsame value again is fine, another raises "
                            "track.ConflictError naming both.");
static PyObject *py_log_param(PyObject *self, PyObject *args)
{
    (void)self;
    return send_one(args, KV_PARAMS);
}

PyDoc_STRVAR(log_params_doc, "log_params(params)\n--\n\n"
                             "Logs every item of the dict params (values as str(value)) in one "
                             "request.");
static PyObject *py_log_params(PyObject *self, PyObject *d)
{
    (void)self;
    return send_kvs(d, KV_PARAMS);
}

PyDoc_STRVAR(set_tag_doc, "set_tag(key, value)\n--\n\n"
                          "Sets a tag of the current run (tags are mutable; value as "
                          "str(value)).");
static PyObject *py_set_tag(PyObject *self, PyObject *args)
{
    (void)self;
    return send_one(args, KV_TAGS);
}

PyDoc_STRVAR(set_tags_doc, "set_tags(tags)\n--\n\n"
                           "Sets every item of the dict tags in one request.");
static PyObject *py_set_tags(PyObject *self, PyObject *d)
{
    (void)self;
    return send_kvs(d, KV_TAGS);
}

/* ---- runs ------------------------------------------------------------- */

static PyObject *hex_of(const track_run_id *id)
{
    char hex[33];
    track_run_id_hex(id, hex);
    return PyUnicode_FromString(hex);
}

PyDoc_STRVAR(start_run_doc,
             "_start_run(experiment, name, parent, params, tags) -> run id\n--\n\n"
             "Starts a run (the client's current run from now on); track.start_run wraps it.");

static PyObject *py_start_run(PyObject *self, PyObject *args)
{
    const char *exp, *name, *parent;
    PyObject *po, *to;
    struct track_run_opts ro = {0};
    struct track_err err = {0};
    struct kvs p, t;
    track_run_id id;
    int rc;
    (void)self;

    if (!PyArg_ParseTuple(args, "zzzOO:_start_run", &exp, &name, &parent, &po, &to))
        return NULL;
    if (kvs_from(po, "param key", &p)) {
        kvs_free(&p);
        return NULL;
    }
    if (kvs_from(to, "tag key", &t)) {
        kvs_free(&p);
        kvs_free(&t);
        return NULL;
    }
    struct track_client *c = pt_client();
    if (!c) {
        kvs_free(&p);
        kvs_free(&t);
        return NULL;
    }
    ro.experiment = exp;
    ro.name = name;
    ro.parent = parent;
    ro.params = p.kv;
    ro.n_params = p.n;
    ro.tags = t.kv;
    ro.n_tags = t.n;
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&pt_mu);
    rc = track_run_start(c, &ro, &id, &err);
    pt_buffer_sent(); /* the start flushed the previous run's points */
    pthread_mutex_unlock(&pt_mu);
    Py_END_ALLOW_THREADS;
    kvs_free(&p);
    kvs_free(&t);
    if (rc)
        return pt_raise(rc, &err);
    return hex_of(&id);
}

PyDoc_STRVAR(use_run_doc, "_use_run(run) -> run id\n--\n\n"
                          "Makes run (32 hex or a unique prefix of 4+) the current run.");

static PyObject *py_use_run(PyObject *self, PyObject *args)
{
    const char *run;
    struct track_err err = {0};
    track_run_id id;
    int rc;
    (void)self;

    if (!PyArg_ParseTuple(args, "s:_use_run", &run))
        return NULL;
    struct track_client *c = pt_client();
    if (!c)
        return NULL;
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&pt_mu);
    rc = track_run_use(c, run, &err);
    if (rc == 0)
        track_run_current(c, &id);
    pt_buffer_sent();
    pthread_mutex_unlock(&pt_mu);
    Py_END_ALLOW_THREADS;
    if (rc)
        return pt_raise(rc, &err);
    return hex_of(&id);
}

PyDoc_STRVAR(end_run_doc, "_end_run(status) -> delivered\n--\n\n"
                          "Flushes and ends the current run with status (2 FINISHED, 3 FAILED, "
                          "4 KILLED);\nFalse when the end went to the spool.");

static PyObject *py_end_run(PyObject *self, PyObject *args)
{
    struct track_err err = {0};
    int status, rc;
    (void)self;

    if (!PyArg_ParseTuple(args, "i:_end_run", &status))
        return NULL;
    struct track_client *c = pt_client();
    if (!c)
        return NULL;
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&pt_mu);
    rc = track_run_end(c, status, &err);
    pt_buffer_sent();
    pthread_mutex_unlock(&pt_mu);
    Py_END_ALLOW_THREADS;
    if (rc)
        return pt_raise(rc, &err);
    return PyBool_FromLong(err.code != TRACK_E_SPOOLED);
}

PyDoc_STRVAR(sysmet_start_doc,
             "_system_metrics_start(interval_ms)\n--\n\n"
             "Starts libtrack's system metrics sampler on this process's tree for the current "
             "run\n(track_system_metrics_start; interval_ms 0: 5000).");

static PyObject *py_sysmet_start(PyObject *self, PyObject *args)
{
    struct track_err err = {0};
    int ms, rc;
    (void)self;

    if (!PyArg_ParseTuple(args, "i:_system_metrics_start", &ms))
        return NULL;
    struct track_client *c = pt_client();
    if (!c)
        return NULL;
    pid_t me = getpid();
    pt_lock();
    rc = track_system_metrics_start(c, me, ms, &err);
    pt_unlock();
    if (rc)
        return pt_raise(rc, &err);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(sysmet_stop_doc, "_system_metrics_stop()\n--\n\n"
                              "Stops the sampler (flushing its last samples); nothing when none "
                              "runs.");

static PyObject *py_sysmet_stop(PyObject *self, PyObject *unused)
{
    struct track_err err = {0};
    (void)self;
    (void)unused;
    struct track_client *c = pt_client();
    if (!c)
        return NULL;
    /* the sampler may be in a round trip (bounded by the timeout) */
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&pt_mu);
    track_system_metrics_stop(c, &err);
    pthread_mutex_unlock(&pt_mu);
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(current_run_id_doc, "current_run_id()\n--\n\n"
                                 "The current run's id (32 hex characters), or None.");

static PyObject *py_current_run_id(PyObject *self, PyObject *unused)
{
    track_run_id id;
    int rc;
    (void)self;
    (void)unused;
    struct track_client *c = pt_client();
    if (!c)
        return NULL;
    pt_lock();
    rc = track_run_current(c, &id);
    pt_unlock();
    if (rc)
        Py_RETURN_NONE;
    return hex_of(&id);
}

PyMethodDef pt_run_methods[] = {
    {"log_param", py_log_param, METH_VARARGS, log_param_doc},
    {"log_params", py_log_params, METH_O, log_params_doc},
    {"set_tag", py_set_tag, METH_VARARGS, set_tag_doc},
    {"set_tags", py_set_tags, METH_O, set_tags_doc},
    {"_start_run", py_start_run, METH_VARARGS, start_run_doc},
    {"_use_run", py_use_run, METH_VARARGS, use_run_doc},
    {"_end_run", py_end_run, METH_VARARGS, end_run_doc},
    {"current_run_id", py_current_run_id, METH_NOARGS, current_run_id_doc},
    {"_system_metrics_start", py_sysmet_start, METH_VARARGS, sysmet_start_doc},
    {"_system_metrics_stop", py_sysmet_stop, METH_NOARGS, sysmet_stop_doc},
    {NULL, NULL, 0, NULL},
};
