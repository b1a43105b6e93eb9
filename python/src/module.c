/*
 * module.c: `track._track`, libtrack as a CPython extension (the Python
 * package `track` in track/__init__.py is the public face; this file is
 * its engine).
 *
 * One client per process. It is opened by the first call that needs it
 * (with the options configure() set, else libtrack's: $TRACK_SERVER, the
 * default spool) and picks up $TRACK_RUN_ID (a full id, as `track exec`
 * sets it) as its current run. Every call takes one mutex, so threads are
 * serialised; calls that can wait (flushes, run start and end, params,
 * reads, artifacts) release the GIL around libtrack.
 *
 * Metric points are the hot path: log_metric is METH_FASTCALL, parses its
 * few arguments by hand (keyword names compared by pointer first), and
 * holds the GIL while it copies the point into libtrack's column buffer,
 * which allocates nothing per point. So that copy never turns into a
 * network wait under the GIL, libtrack's own flush triggers are set out of
 * reach and this file keeps the policy (flush_points points, or the oldest
 * point older than flush_interval_ms, as libtrack would): it flushes with
 * the GIL released. (libtrack still flushes inside a point in two rare
 * cases, with the GIL held: a 4,097th key with unsent points, and a wall
 * clock that stepped back.)
 *
 * fork: nanomsg's worker threads do not survive fork(), so a forked child
 * must never touch the parent's sockets (a send or close would hang). A
 * pthread_atfork child handler marks the child: if the parent had a client,
 * every call in the child raises track.ForkError at once and the inherited
 * client is never used, flushed or closed (its buffered points are the
 * parent's to send); a child of a process that had no client yet opens its
 * own as usual. The handler also re-initialises the mutex, which another
 * thread of the parent may have held at the fork.
 */
#include "module.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

pthread_mutex_t pt_mu = PTHREAD_MUTEX_INITIALIZER;

static struct track_client *g_client;
static pid_t g_pid;           /* the process that opened g_client */
static volatile int g_forked; /* 1 in a fork of a process that had a client */
static pid_t g_parent;        /* that process, for the message */

/* configure(): options for the next open */
static struct {
    char *server, *spool_path;
    int timeout_ms, no_spool;
    int flush_points, flush_interval_ms;
} g_conf;

/* this file's flush policy over libtrack's buffer */
static int64_t g_pending, g_oldest_ms;
static int g_flush_points = 8192, g_flush_interval_ms = 1000;

static PyObject *g_exc_base, *g_exc_fork;
static PyObject *g_exc[10]; /* by -code, 1..9 */
static PyObject *s_key, *s_value, *s_step;

static int64_t coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void atfork_child(void)
{
    if (g_client) {
        g_forked = 1;
        g_parent = g_pid;
    }
    pthread_mutex_init(&pt_mu, NULL);
}

static void set_str_attr(PyObject *o, const char *name, const char *value)
{
    PyObject *v = PyUnicode_FromString(value);
    if (v && PyObject_SetAttrString(o, name, v) == 0) {
        Py_DECREF(v);
        return;
    }
    Py_XDECREF(v);
    PyErr_Clear();
}

PyObject *pt_raise(int rc, const struct track_err *err)
{
    PyObject *cls = rc < 0 && rc >= -9 ? g_exc[-rc] : g_exc_base;
    const char *msg = err && err->msg[0] ? err->msg : track_code_name(rc);
    PyObject *text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
    PyObject *exc = text ? PyObject_CallOneArg(cls, text) : NULL;
    Py_XDECREF(text);
    if (!exc)
        return NULL;
    set_str_attr(exc, "code", track_code_name(rc));
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *raise_forked(void)
{
    PyObject *exc = PyObject_CallFunction(
        g_exc_fork, "s",
        "this process is a fork of one that had a track client open (nanomsg's sockets do "
        "not survive fork): log from the parent, or start workers with multiprocessing's "
        "'spawn' or 'forkserver' method, which get clients of their own");
    if (exc) {
        set_str_attr(exc, "code", "UNAVAILABLE");
        PyObject *pid = PyLong_FromLong((long)g_parent);
        PyObject_SetAttrString(exc, "parent_pid", pid);
        Py_XDECREF(pid);
        PyErr_SetObject(g_exc_fork, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

struct track_client *pt_client(void)
{
    if (g_forked) {
        raise_forked();
        return NULL;
    }
    if (g_client)
        return g_client;

    struct track_opts o = {0};
    struct track_err err = {0};
    o.server = g_conf.server;
    o.spool_path = g_conf.spool_path;
    o.timeout_ms = g_conf.timeout_ms;
    o.no_spool = g_conf.no_spool;
    o.autostart = !getenv("TRACK_NO_AUTOSTART");
    /* out of reach: this file flushes (see above); libtrack caps the
     * points at one batch's limit */
    o.flush_points = 262144;
    o.flush_interval_ms = INT_MAX;
    g_flush_points = g_conf.flush_points > 0 ? g_conf.flush_points : 8192;
    g_flush_interval_ms = g_conf.flush_interval_ms > 0 ? g_conf.flush_interval_ms : 1000;

    struct track_client *c;
    int rc = track_client_open(&o, &c, &err);
    if (rc) {
        pt_raise(rc, &err);
        return NULL;
    }
    /* `track exec` names the run; a full id is taken without asking trackd */
    const char *env = getenv("TRACK_RUN_ID");
    if (env && strlen(env) == 32 && track_run_use(c, env, &err) != 0) {
        track_client_close(c);
        pt_raise(TRACK_E_INVALID_ARGUMENT, &err);
        return NULL;
    }
    g_client = c;
    g_pid = getpid();
    g_pending = 0;
    return c;
}

void pt_lock(void)
{
    if (pthread_mutex_trylock(&pt_mu) == 0)
        return;
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&pt_mu);
    Py_END_ALLOW_THREADS;
}

/* Flushes with pt_mu held and the GIL released; 0 or -1 with an exception. */
static int flush_locked(struct track_client *c, int *spooled)
{
    struct track_err err = {0};
    int rc;

    Py_BEGIN_ALLOW_THREADS;
    rc = track_flush(c, &err);
    Py_END_ALLOW_THREADS;
    g_pending = 0;
    if (spooled)
        *spooled = rc == 0 && err.code == TRACK_E_SPOOLED;
    if (rc) {
        pt_raise(rc, &err);
        return -1;
    }
    return 0;
}

void pt_buffer_sent(void)
{
    g_pending = 0;
}

/* After a point went into the buffer (pt_mu held): flushes when due. */
static int point_added(struct track_client *c, int64_t n)
{
    int64_t now = coarse_ms();
    if (g_pending == 0)
        g_oldest_ms = now;
    g_pending += n;
    if (g_pending >= g_flush_points || now - g_oldest_ms >= g_flush_interval_ms)
        return flush_locked(c, NULL);
    return 0;
}

const char *pt_key_utf8(PyObject *key, const char *what)
{
    Py_ssize_t n;
    if (!PyUnicode_Check(key)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.80s", what, Py_TYPE(key)->tp_name);
        return NULL;
    }
    const char *s = PyUnicode_AsUTF8AndSize(key, &n);
    if (s && strlen(s) != (size_t)n) {
        struct track_err err = {0};
        snprintf(err.msg, sizeof(err.msg), "%s: contains a NUL character", what);
        pt_raise(TRACK_E_INVALID_ARGUMENT, &err);
        return NULL;
    }
    return s;
}

static int get_step(PyObject *o, int64_t *step)
{
    *step = 0;
    if (!o || o == Py_None)
        return 0;
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *step = v;
    return 0;
}

static int kw_is(PyObject *name, PyObject *interned, const char *s)
{
    return name == interned || PyUnicode_CompareWithASCIIString(name, s) == 0;
}

PyDoc_STRVAR(log_metric_doc,
             "log_metric(key, value, step=None)\n--\n\n"
             "Buffers one point of the current run and returns at once (no allocation per\n"
             "point). value is anything float() takes (a float, an int, a 0-d tensor); NaN and\n"
             "+-inf are kept. step defaults to 0, as `track log-metric` and MLflow do. The\n"
             "buffer is sent every 8192 points or when its oldest point is a second old, with\n"
             "the GIL released, and to the spool when trackd is away.");

static PyObject *py_log_metric(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    PyObject *key = nargs > 0 ? args[0] : NULL, *val = nargs > 1 ? args[1] : NULL;
    PyObject *stepo = nargs > 2 ? args[2] : NULL;
    struct track_err err = {0};
    int64_t step;
    double v;
    (void)self;

    if (nargs > 3)
        return PyErr_Format(PyExc_TypeError, "log_metric() takes at most 3 arguments");
    if (kwnames) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, i), *a = args[nargs + i];
            if (kw_is(name, s_step, "step"))
                stepo = a;
            else if (kw_is(name, s_value, "value"))
                val = a;
            else if (kw_is(name, s_key, "key"))
                key = a;
            else
                return PyErr_Format(PyExc_TypeError,
                                    "log_metric() got an unexpected keyword argument '%U'", name);
        }
    }
    if (!key || !val)
        return PyErr_Format(PyExc_TypeError, "log_metric() needs key and value");
    const char *k = pt_key_utf8(key, "metric key");
    if (!k)
        return NULL;
    v = PyFloat_CheckExact(val) ? PyFloat_AS_DOUBLE(val) : PyFloat_AsDouble(val);
    if (v == -1.0 && PyErr_Occurred())
        return NULL;
    if (get_step(stepo, &step))
        return NULL;
    struct track_client *c = pt_client();
    if (!c)
        return NULL;
    pt_lock();
    int rc = track_log_metric(c, k, v, step, 0, &err);
    if (rc == 0 && point_added(c, 1) != 0)
        rc = 1; /* the exception is set */
    pt_unlock();
    if (rc < 0)
        return pt_raise(rc, &err);
    if (rc)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(log_metrics_doc, "log_metrics(metrics, step=None)\n--\n\n"
                              "Buffers one point per item of the dict metrics (key -> value), "
                              "all at the same step\n(default 0).");

static PyObject *py_log_metrics(PyObject *self, PyObject *args, PyObject *kw)
{
    static const char *kwlist[] = {"metrics", "step", NULL};
    PyObject *d, *stepo = NULL, *k, *v, *keep = NULL, *ret = NULL;
    struct track_err err = {0};
    struct point {
        const char *key;
        double value;
    } small[32], *pts = small;
    Py_ssize_t pos = 0, n = 0;
    int64_t step;
    int rc = 0;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|O:log_metrics", PT_KW(kwlist), &PyDict_Type, &d,
                                     &stepo))
        return NULL;
    if (get_step(stepo, &step))
        return NULL;
    /* every value converted before the lock: float() may run Python code,
     * which may call track again */
    keep = PyDict_Copy(d); /* the keys stay alive whatever that code does to d */
    if (!keep)
        return NULL;
    if (PyDict_GET_SIZE(keep) > 32 &&
        !(pts = PyMem_Malloc((size_t)PyDict_GET_SIZE(keep) * sizeof(*pts)))) {
        PyErr_NoMemory();
        goto out;
    }
    while (n < PyDict_GET_SIZE(keep) && PyDict_Next(keep, &pos, &k, &v)) {
        pts[n].key = pt_key_utf8(k, "metric key");
        pts[n].value = pts[n].key ? PyFloat_AsDouble(v) : 0;
        if (!pts[n].key || (pts[n].value == -1.0 && PyErr_Occurred()))
            goto out;
        n++;
    }
    struct track_client *c = pt_client();
    if (!c)
        goto out;
    pt_lock();
    for (Py_ssize_t i = 0; i < n && rc == 0; i++)
        rc = track_log_metric(c, pts[i].key, pts[i].value, step, 0, &err);
    if (rc == 0 && n && point_added(c, n) != 0)
        rc = 1;
    pt_unlock();
    if (rc < 0)
        pt_raise(rc, &err);
    else if (rc == 0)
        ret = Py_NewRef(Py_None);
out:
    if (pts != small)
        PyMem_Free(pts);
    Py_DECREF(keep);
    return ret;
}

/* One element of a buffer of numbers as int64 or double. */
static int buf_kind(const Py_buffer *b, int want_float, const char *what)
{
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    if (strlen(f) == 1 && strchr("bBhHiIlLqQ", *f))
        return 'i';
    if (strlen(f) == 1 && strchr("fd", *f))
        return want_float ? *f : -1;
    PyErr_Format(PyExc_TypeError, "%s: a buffer of %s numbers is needed, not format '%s'", what,
                 want_float ? "float or integer" : "integer", f);
    return -2;
}

/* Element i of a one-dimensional buffer, strided or not. */
static const char *buf_at(const Py_buffer *b, Py_ssize_t i)
{
    return (const char *)b->buf + i * (b->strides ? b->strides[0] : b->itemsize);
}

static int64_t buf_i64(const Py_buffer *b, Py_ssize_t i)
{
    const char *p = buf_at(b, i);
    const char *f = b->format ? b->format : "B";
    int is_signed;
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    is_signed = strchr("bhilq", *f) != NULL;
    switch (b->itemsize) {
    case 1:
        return is_signed ? (int64_t) * (const int8_t *)p : (int64_t) * (const uint8_t *)p;
    case 2:
        return is_signed ? (int64_t) * (const int16_t *)p : (int64_t) * (const uint16_t *)p;
    case 4:
        return is_signed ? (int64_t) * (const int32_t *)p : (int64_t) * (const uint32_t *)p;
    default: {
        int64_t v;
        memcpy(&v, p, 8);
        return v; /* a uint64 past INT64_MAX reads negative: refused as a step */
    }
    }
}

static double buf_f64(const Py_buffer *b, Py_ssize_t i, int kind)
{
    const char *p = buf_at(b, i);
    if (kind == 'd') {
        double v;
        memcpy(&v, p, 8);
        return v;
    }
    if (kind == 'f') {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    return (double)buf_i64(b, i);
}

PyDoc_STRVAR(log_series_doc,
             "log_series(key, steps, values, times=None)\n--\n\n"
             "Buffers len(values) points of one key from buffer-protocol objects (numpy arrays,\n"
             "array.array, memoryview): steps of integers, values of floats or integers, times\n"
             "(optional) of integer milliseconds since the epoch. The buffers are read in place,\n"
             "without a Python object per point, with the GIL released; points go out in\n"
             "batches as they are read.");

static PyObject *py_log_series(PyObject *self, PyObject *args, PyObject *kw)
{
    static const char *kwlist[] = {"key", "steps", "values", "times", NULL};
    PyObject *key, *so, *vo, *to = NULL;
    Py_buffer sb = {0}, vb = {0}, tb = {0};
    struct track_err err = {0};
    int rc = 0, vk, have_t = 0;
    PyObject *ret = NULL;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "UOO|O:log_series", PT_KW(kwlist), &key, &so, &vo,
                                     &to))
        return NULL;
    const char *k = pt_key_utf8(key, "metric key");
    if (!k)
        return NULL;
    if (PyObject_GetBuffer(so, &sb, PyBUF_FORMAT | PyBUF_STRIDES) < 0)
        return NULL;
    if (PyObject_GetBuffer(vo, &vb, PyBUF_FORMAT | PyBUF_STRIDES) < 0)
        goto out;
    if (to && to != Py_None) {
        if (PyObject_GetBuffer(to, &tb, PyBUF_FORMAT | PyBUF_STRIDES) < 0)
            goto out;
        have_t = 1;
    }
    if (buf_kind(&sb, 0, "steps") < 0 || (vk = buf_kind(&vb, 1, "values")) < 0 ||
        (have_t && buf_kind(&tb, 0, "times") < 0)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "steps: a buffer of integers is needed");
        goto out;
    }
    Py_ssize_t n = vb.len / vb.itemsize;
    if (sb.ndim > 1 || vb.ndim > 1 || sb.len / sb.itemsize != n ||
        (have_t && (tb.ndim > 1 || tb.len / tb.itemsize != n))) {
        err.code = TRACK_E_INVALID_ARGUMENT;
        snprintf(err.msg, sizeof(err.msg),
                 "log_series: steps, values (and times) must be one-dimensional and of one "
                 "length (values has %zd)",
                 n);
        pt_raise(TRACK_E_INVALID_ARGUMENT, &err);
        goto out;
    }
    struct track_client *c = pt_client();
    if (!c)
        goto out;
    pt_lock();
    int fresh = g_pending == 0; /* the buffer's oldest point will be one of these */
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        int64_t t = have_t ? buf_i64(&tb, i) : 0;
        rc = track_log_metric(c, k, buf_f64(&vb, i, vk), buf_i64(&sb, i), t, &err);
        if (rc == 0 && ++g_pending >= g_flush_points) {
            rc = track_flush(c, &err);
            g_pending = 0;
            fresh = 1;
        }
    }
    Py_END_ALLOW_THREADS;
    if (rc == 0 && g_pending && fresh) {
        g_oldest_ms = coarse_ms();
    } else if (rc == 0 && g_pending && coarse_ms() - g_oldest_ms >= g_flush_interval_ms) {
        rc = flush_locked(c, NULL) ? 1 : 0;
    }
    pt_unlock();
    if (rc < 0)
        pt_raise(rc, &err);
    else if (rc == 0)
        ret = Py_NewRef(Py_None);
out:
    PyBuffer_Release(&sb);
    PyBuffer_Release(&vb);
    PyBuffer_Release(&tb);
    return ret;
}

/* ---- flush, sync, artifacts, options ---------------------------------- */

PyDoc_STRVAR(flush_doc, "flush() -> delivered\n--\n\n"
                        "Sends every buffered point now (the GIL released). True when trackd "
                        "took them,\nFalse when they went to the spool (a later flush or "
                        "`track sync` delivers them).");

static PyObject *py_flush(PyObject *self, PyObject *unused)
{
    int spooled = 0, rc;
    (void)self;
    (void)unused;
    struct track_client *c = pt_client();
    if (!c)
        return NULL;
    pt_lock();
    rc = flush_locked(c, &spooled);
    pt_unlock();
    if (rc)
        return NULL;
    return PyBool_FromLong(!spooled);
}

PyDoc_STRVAR(sync_doc, "sync() -> int\n--\n\n"
                       "Delivers this client's spooled writes to its server (as `track sync`); "
                       "returns how\nmany were delivered. Raises track.Unavailable when some "
                       "are kept for later.");

static PyObject *py_sync(PyObject *self, PyObject *unused)
{
    struct track_err err = {0};
    int sent = 0, rc;
    (void)self;
    (void)unused;
    struct track_client *c = pt_client();
    if (!c)
        return NULL;
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&pt_mu);
    rc = track_sync(c, &sent, &err);
    pthread_mutex_unlock(&pt_mu);
    Py_END_ALLOW_THREADS;
    if (rc)
        return pt_raise(rc, &err);
    return PyLong_FromLong(sent);
}

PyDoc_STRVAR(log_artifact_doc,
             "log_artifact(path, artifact_path=None)\n--\n\n"
             "Stores the file or directory path in the current run as artifact_path "
             "(default:\nthe path's last segment); identical content is stored once.");

static PyObject *py_log_artifact(PyObject *self, PyObject *args, PyObject *kw)
{
    static const char *kwlist[] = {"path", "artifact_path", NULL};
    PyObject *path = NULL;
    const char *ap = NULL;
    struct track_err err = {0};
    int rc;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|z:log_artifact", PT_KW(kwlist),
                                     PyUnicode_FSConverter, &path, &ap))
        return NULL;
    struct track_client *c = pt_client();
    if (!c) {
        Py_DECREF(path);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&pt_mu);
    rc = track_artifact_put(c, PyBytes_AS_STRING(path), ap, &err);
    pthread_mutex_unlock(&pt_mu);
    Py_END_ALLOW_THREADS;
    Py_DECREF(path);
    if (rc)
        return pt_raise(rc, &err);
    Py_RETURN_NONE;
}

/* Closes the client (flushing it) with pt_mu held; never in a fork child. */
static void close_locked(void)
{
    struct track_client *c = g_client;
    g_client = NULL;
    g_pending = 0;
    if (c) {
        Py_BEGIN_ALLOW_THREADS;
        track_client_close(c);
        Py_END_ALLOW_THREADS;
    }
}

PyDoc_STRVAR(close_doc, "close()\n--\n\n"
                        "Flushes and closes this process's client (the next call opens a new "
                        "one). Runs at\ninterpreter exit; does nothing in a forked child.");

static PyObject *py_close(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (g_forked)
        Py_RETURN_NONE;
    pt_lock();
    close_locked();
    pt_unlock();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(configure_doc,
             "configure(server=None, timeout_ms=0, spool_path=None, flush_points=0,\n"
             "          flush_interval_ms=0, no_spool=False)\n--\n\n"
             "Options for this process's client (0 or None: libtrack's default: "
             "$TRACK_SERVER,\n2000 ms, the default spool, 8192 points, 1000 ms). Closes "
             "(and flushes) the open\nclient, if any; the next call opens one with these.");

static PyObject *py_configure(PyObject *self, PyObject *args, PyObject *kw)
{
    static const char *kwlist[] = {
        "server",   "timeout_ms", "spool_path", "flush_points", "flush_interval_ms",
        "no_spool", NULL};
    const char *server = NULL, *spool = NULL;
    int timeout = 0, fp = 0, fi = 0, no_spool = 0;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|ziziip:configure", PT_KW(kwlist), &server,
                                     &timeout, &spool, &fp, &fi, &no_spool))
        return NULL;
    if (g_forked)
        return raise_forked();
    pt_lock();
    close_locked();
    free(g_conf.server);
    free(g_conf.spool_path);
    memset(&g_conf, 0, sizeof(g_conf));
    g_conf.server = server ? strdup(server) : NULL;
    g_conf.spool_path = spool ? strdup(spool) : NULL;
    g_conf.timeout_ms = timeout;
    g_conf.flush_points = fp;
    g_conf.flush_interval_ms = fi;
    g_conf.no_spool = no_spool;
    pt_unlock();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(noop_doc, "_noop(*args)\n--\n\nDoes nothing (bench B19's call-overhead floor).");
static PyObject *py_noop(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    (void)self;
    (void)args;
    (void)nargs;
    (void)kwnames;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"log_metric", (PyCFunction)(void (*)(void))py_log_metric, METH_FASTCALL | METH_KEYWORDS,
     log_metric_doc},
    {"log_metrics", (PyCFunction)(void (*)(void))py_log_metrics, METH_VARARGS | METH_KEYWORDS,
     log_metrics_doc},
    {"log_series", (PyCFunction)(void (*)(void))py_log_series, METH_VARARGS | METH_KEYWORDS,
     log_series_doc},
    {"flush", py_flush, METH_NOARGS, flush_doc},
    {"sync", py_sync, METH_NOARGS, sync_doc},
    {"log_artifact", (PyCFunction)(void (*)(void))py_log_artifact, METH_VARARGS | METH_KEYWORDS,
     log_artifact_doc},
    {"close", py_close, METH_NOARGS, close_doc},
    {"configure", (PyCFunction)(void (*)(void))py_configure, METH_VARARGS | METH_KEYWORDS,
     configure_doc},
    {"get_run", pt_get_run, METH_VARARGS,
     "get_run(run) -> dict\n--\n\n"
     "One run (32 hex or a unique prefix) as a dict."},
    {"_search_runs", (PyCFunction)(void (*)(void))pt_search_runs, METH_VARARGS | METH_KEYWORDS,
     "_search_runs(experiments, filter, order_by, limit) -> list of dicts"},
    {"_get_history", pt_get_history, METH_VARARGS,
     "_get_history(run, key) -> (steps, times, values) as bytearrays of int64, int64, double"},
    {"_noop", (PyCFunction)(void (*)(void))py_noop, METH_FASTCALL | METH_KEYWORDS, noop_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT,
    "track._track",
    "libtrack's C client as a CPython extension; use the `track` package.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

/* track.TrackError and one subclass per code, with the code name as a class
 * attribute (instances get theirs too). */
static int add_exceptions(PyObject *m)
{
    static const struct {
        int code;
        const char *name, *doc;
    } subs[] = {
        {TRACK_E_INVALID_ARGUMENT, "InvalidArgument", "A value or key track refuses."},
        {TRACK_E_NOT_FOUND, "NotFound", "No such run, experiment, key or artifact."},
        {TRACK_E_ALREADY_EXISTS, "AlreadyExists", "It exists already."},
        {TRACK_E_CONFLICT, "ConflictError", "A param logged again with another value."},
        {TRACK_E_UNAUTHENTICATED, "Unauthenticated", "trackd does not know this client."},
        {TRACK_E_PERMISSION_DENIED, "PermissionDenied", "Not allowed for this user."},
        {TRACK_E_RESOURCE_EXHAUSTED, "ResourceExhausted", "A limit was reached."},
        {TRACK_E_UNAVAILABLE, "Unavailable", "trackd cannot be reached (reads; writes spool)."},
        {TRACK_E_INTERNAL, "InternalError", "trackd or libtrack failed."},
    };
    g_exc_base = PyErr_NewExceptionWithDoc("track.TrackError",
                                           "Base of track's errors; .code is the track code name "
                                           "(\"NOT_FOUND\", ...).",
                                           NULL, NULL);
    if (!g_exc_base || PyModule_AddObjectRef(m, "TrackError", g_exc_base) < 0)
        return -1;
    set_str_attr(g_exc_base, "code", "INTERNAL");
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char full[64];
        PyObject *bases = subs[i].code == TRACK_E_INVALID_ARGUMENT
                              ? PyTuple_Pack(2, g_exc_base, PyExc_ValueError)
                              : PyTuple_Pack(1, g_exc_base);
        snprintf(full, sizeof(full), "track.%s", subs[i].name);
        PyObject *cls = bases ? PyErr_NewExceptionWithDoc(full, subs[i].doc, bases, NULL) : NULL;
        Py_XDECREF(bases);
        if (!cls)
            return -1;
        set_str_attr(cls, "code", track_code_name(subs[i].code));
        g_exc[-subs[i].code] = cls;
        if (PyModule_AddObjectRef(m, subs[i].name, cls) < 0)
            return -1;
    }
    PyObject *fb = PyTuple_Pack(1, g_exc_base);
    g_exc_fork = fb ? PyErr_NewExceptionWithDoc(
                          "track.ForkError",
                          "Raised by every call in a forked child of a process that had a "
                          "client (code UNAVAILABLE).",
                          fb, NULL)
                    : NULL;
    Py_XDECREF(fb);
    if (!g_exc_fork || PyModule_AddObjectRef(m, "ForkError", g_exc_fork) < 0)
        return -1;
    set_str_attr(g_exc_fork, "code", "UNAVAILABLE");
    return 0;
}

PyMODINIT_FUNC PyInit__track(void);
PyMODINIT_FUNC PyInit__track(void)
{
    static int atfork_done;
    PyObject *m = PyModule_Create(&moddef);
    if (!m)
        return NULL;
    s_key = PyUnicode_InternFromString("key");
    s_value = PyUnicode_InternFromString("value");
    s_step = PyUnicode_InternFromString("step");
    if (!s_key || !s_value || !s_step || add_exceptions(m) < 0 ||
        PyModule_AddFunctions(m, pt_run_methods) < 0 ||
        PyModule_AddStringConstant(m, "LIBTRACK_VERSION", TRACK_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (!atfork_done && pthread_atfork(NULL, NULL, atfork_child) == 0)
        atfork_done = 1;
    return m;
}
