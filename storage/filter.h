/*
 * filter.h: the run search language (`track runs --filter`, `--order-by`),
 * compiled to a parameterized SQL fragment over the schema in store_core.c.
 * No value from a filter is ever pasted into SQL text: literals and keys
 * become bind parameters.
 *
 * The fragments refer to the tables by these aliases only:
 *   r  runs         (id, uuid, hex, experiment_id, name, status, start_ms,
 *                    end_ms, user, parent_uuid, lifecycle, deleted_ms)
 *   e  experiments  (id, name)
 * and reach params, tags and metric summaries through correlated subqueries.
 */
#ifndef TRACK_FILTER_H
#define TRACK_FILTER_H

#include <stdint.h>

#include "store.h"

/* Bounds on what filter_compile accepts; each violation is STORE_E_INVALID
 * naming the limit. They apply to the filter and the order-by text alike,
 * except the term counts. */
#define FILTER_MAX_TEXT  65536   /* bytes of filter or order-by text */
#define FILTER_MAX_DEPTH 64      /* nested parentheses and NOTs */
#define FILTER_MAX_TERMS 100     /* comparisons in a filter (see below) */
#define FILTER_MAX_IN    1000    /* values in one IN (...) list */
#define FILTER_MAX_KEY   250     /* bytes of a metric, param or tag key */
#define FILTER_MAX_BINDS 10000   /* bind parameters in all (SQLite allows 32766) */
#define FILTER_MAX_SQL   4194304 /* bytes of compiled SQL, each of where and order */
/* SQLite refuses an expression deeper than 1000 (each OR or AND adds a
 * level) and an ORDER BY of more than 2000 terms (each of ours is two), as
 * INTERNAL errors; FILTER_MAX_TERMS and this stay far under both, nesting
 * and IN lists included. */
#define FILTER_MAX_ORDER_TERMS 16 /* terms in an order-by */

enum filter_bind_type {
    FILTER_BIND_INT = 1,
    FILTER_BIND_DOUBLE = 2,
    FILTER_BIND_TEXT = 3,
};

struct filter_bind {
    int type;
    int64_t i;
    double d;
    char *s;          /* owned by the filter_sql */
    int feedback_key; /* s names a feedback name (feedback.NAME): the store checks its type */
};

/* A term of the filter's top-level AND chain that an index can answer
 * alone: every matching run has a row in params (by params_search) or
 * metric_summary (by metric_summary_key) that satisfies it, one row per
 * run. The store's planner (store_run.c) may drive the search from the
 * most selective of them, or from the order-by's index, and checks the
 * whole `where` on every run it reads either way. */
enum filter_drive {
    FILTER_DRIVE_METRIC = 1, /* metric_summary: key_id of key_bind's name, last OP value */
    FILTER_DRIVE_PARAM_NUM,  /* params: key, num OP value (a number) */
    FILTER_DRIVE_PARAM_TEXT, /* params: key, value = value (text); num as the text reads */
};
#define FILTER_MAX_DRIVERS 8

struct filter_driver {
    int kind;       /* enum filter_drive */
    const char *op; /* " < ", " = ", ... */
    int key_bind;   /* ?N of the key */
    int value_bind; /* ?N of the value */
    int numeric;    /* FILTER_DRIVE_PARAM_TEXT: the text reads as a number */
};

struct filter_sql {
    char *where;               /* e.g. "(r.status = ?1 AND ...)", or NULL when no filter */
    char *order;               /* e.g. "... ASC, r.start_ms DESC", never NULL after success */
    struct filter_bind *binds; /* bind i is parameter ?(i+1) */
    int n_binds;
    int lifecycle; /* the filter names lifecycle: deleted runs are the filter's to pick */
    struct filter_driver drivers[FILTER_MAX_DRIVERS];
    int n_drivers;
    /* The order-by's first term when it is a metric's last value (0: it is
     * not): ?N of its key, its direction, and `order` without that term
     * (what orders runs of the same value; never NULL then). */
    int order_metric_bind;
    int order_desc;
    char *order_rest;
    int order_default; /* no order-by was given: newest first */
};

/* Does the text read as a number to the filter language (a param or tag
 * compared with <, <=, > or >= and a bare number)? Its first character is
 * one of 0-9 + . -, it holds a digit, and nothing but 0-9 e E . + -. The
 * number is then SQLite's CAST(text AS REAL). */
int filter_looks_numeric(const char *s);

/* Compiles `filter` (NULL or blank: no condition) and `order_by` (NULL or
 * blank: "start_time DESC") into *out, which the caller releases with
 * filter_sql_free. `now_ms` is used for the duration of running runs.
 * A syntax error answers STORE_E_INVALID with a message naming the column
 * (1-based) where it failed and what was expected there. */
int filter_compile(const char *filter, const char *order_by, int64_t now_ms, struct filter_sql *out,
                   struct store_err *err);
void filter_sql_free(struct filter_sql *f);

/* The filter language over traces (filter_trace.c): a fragment over
 * `traces t` and `experiments e` in out->where, its binds ?1..?n_binds;
 * free with filter_sql_free. STORE_E_INVALID naming the column. */
int filter_trace_compile(const char *filter, struct filter_sql *out, struct store_err *err);

#endif
