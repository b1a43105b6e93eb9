/*
 * module.h: what the files of the `track._track` extension share.
 *
 * The extension is libtrack seen from Python, on client/include/track.h
 * alone. One process has one client (pt_client), opened lazily by the
 * first call and guarded by one mutex (pt_mu); every call that can wait
 * takes the mutex with the GIL released, so a thread blocked in a flush
 * never stops the others' Python code.
 *
 *   module.c  the module: client, mutex, fork detection, exceptions, metric
 *             points, flush, sync, artifacts, options
 *   runs.c    runs (start, join, end), params and tags
 *   reads.c   the reads: runs as dicts, a metric's history as bytes
 */
#ifndef PT_MODULE_H
#define PT_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>

#include <track.h>

extern pthread_mutex_t pt_mu;

/* Python 3.11's PyArg_ParseTupleAndKeywords takes char ** (3.13's takes
 * const): keyword lists are const here and cast in one place. */
#define PT_KW(list) ((char **)(list))

/* The client, opened when needed: NULL with a Python exception set when it
 * cannot be (or this process is a fork of one that had a client). Call with
 * the GIL held, before pt_lock. */
struct track_client *pt_client(void);

/* Takes pt_mu with the GIL held: at once when it is free, else with the
 * GIL released while waiting. */
void pt_lock(void);
static inline void pt_unlock(void)
{
    pthread_mutex_unlock(&pt_mu);
}

/* Sets the Python exception for rc (a negative track code) and err's
 * message: track.NotFound, track.ConflictError, ...; returns NULL. */
PyObject *pt_raise(int rc, const struct track_err *err);

/* A str key as UTF-8 without NUL; NULL with an exception (TypeError, or
 * track.InvalidArgument naming `what`). */
const char *pt_key_utf8(PyObject *key, const char *what);

/* Says the buffer went out with a request (a run's start, end or switch
 * flushes it): the flush policy's count starts again. pt_mu held. */
void pt_buffer_sent(void);

/* The run, params and tags methods, in runs.c. */
extern PyMethodDef pt_run_methods[];

/* The reads, in reads.c (methods of the module). */
PyObject *pt_get_run(PyObject *self, PyObject *args);
PyObject *pt_search_runs(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pt_get_history(PyObject *self, PyObject *args);
PyObject *pt_run_dict(const struct track_run_info *r);

#endif
