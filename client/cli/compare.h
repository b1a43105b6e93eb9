/*
 * compare.h: what the files of `track compare` share. cmd_compare.c parses
 * the options, reads the runs and decides what is shown (params, metrics,
 * the best runs, sparklines) into a struct cmp; compare_grid.c turns that
 * into a grid of text, a row per label and a cell per run; compare_print.c
 * lays the grid out as a table (a column per run, or turned: a row per run),
 * markdown or CSV, and prints the JSON from the struct cmp itself;
 * compare_trace.c and compare_feedback.c read and format the trace and
 * feedback rows.
 *
 * Nothing here is used outside the compare files.
 */
#ifndef TRACK_COMPARE_H
#define TRACK_COMPARE_H

#include "cli.h"

#define CMP_MAX_RUNS      50
#define CMP_MAX_METRICS   256
#define CMP_MAX_PARAMS    1024
#define CMP_LABEL_COL_MAX 32
#define CMP_CELL_COL_MAX  24

/* Cell flags. */
#define CMP_CELL_BEST   1
#define CMP_CELL_DIFFER 2

/* ---- the feedback rows (compare_feedback.c) ---------------------------------------- */
#define CMP_FB_NAMES 64
#define CMP_FB_RUNS  CMP_MAX_RUNS
struct cmp_fb_cell {
    int have, kind;
    int64_t count, comments;
    double mean;   /* numbers: the mean; booleans: the true ratio */
    char top[256]; /* labels: the most frequent */
    int64_t top_count;
};
struct cmp_feedback {
    size_t nn; /* names, in order of first appearance (each run's by name) */
    char *names[CMP_FB_NAMES];
    int kinds[CMP_FB_NAMES];
    struct cmp_fb_cell cells[CMP_FB_NAMES][CMP_FB_RUNS];
};
/* Reads the feedback summaries of runs hex[0..n) into fb (cleared first). */
int cmp_feedback_load(struct track_client *c, const char (*hex)[33], size_t n,
                      struct cmp_feedback *fb, struct track_err *err);
void cmp_feedback_free(struct cmp_feedback *fb);
/* The cell of name k for run `run`: "4.5 (n=2)", "good (3/5)", "-"; machine:
 * the full-precision mean or ratio, or the top label, "" when none. */
void cmp_feedback_cell(const struct cmp_feedback *fb, size_t k, size_t run, int machine, char *buf,
                       size_t len);
/* {"NAME": {"kind", "count", "comments", "mean"|"true_ratio"|"top_label"}} */
json_t *cmp_feedback_json(const struct cmp_feedback *fb, size_t run);

/* ---- the trace rows (compare_trace.c) ---------------------------------------------------- */
#define CMP_TRACE_KEEP 1000000 /* durations kept a run, for exact percentiles */
#define CMP_TRACE_ROWS 8
struct cmp_trace_cell {
    int64_t count;  /* the run's traces; 0: none, no rollup */
    int64_t errors; /* those with an error span */
    int64_t tokens_in, tokens_out, tokens_total;
    double cost;
    int64_t p50_ns, p95_ns; /* of the durations, nearest rank */
    int64_t kept;           /* the durations they are over: count, or CMP_TRACE_KEEP */
};
struct cmp_traces {
    int any; /* a run has traces: the rows are shown */
    struct cmp_trace_cell cells[CMP_MAX_RUNS];
};
/* Reads the traces of runs hex[0..n) and rolls them up into tr (cleared
 * first); warns on stderr when a run's percentiles are over its newest
 * CMP_TRACE_KEEP only. */
int cmp_trace_load(struct track_client *c, const char (*hex)[33], size_t n, struct cmp_traces *tr,
                   struct track_err *err);
/* Row k's label (0 <= k < CMP_TRACE_ROWS): "traces", "latency p50", ...;
 * machine: the CSV's, "traces.count", "traces.latency_p50_ms", ... */
const char *cmp_trace_label(size_t k, int machine);
/* Whether the row of (human) label is also a column of the turned table:
 * the count, p50, p95, total tokens, cost and error rate. */
int cmp_trace_turned(const char *label);
/* Row k's cell for run `run`: "3", "250ms", "33.3% (1/3)", "-" without
 * traces; machine: full precision, milliseconds and a ratio, "" without. */
void cmp_trace_cell(const struct cmp_traces *tr, size_t k, size_t run, int machine, char *buf,
                    size_t len);
/* {"count", "latency_p50_ms", "latency_p95_ms", "tokens_in", "tokens_out",
 * "tokens_total", "cost", "errors", "error_rate"}, or null without traces. */
json_t *cmp_trace_json(const struct cmp_traces *tr, size_t run);

/* ---- the compared runs (cmd_compare.c) ------------------------------------------------ */

/* The runs and what is shown of them; runs[] are views into res[]. */
struct cmp {
    struct track_client *c;
    struct track_result *res[CMP_MAX_RUNS];
    size_t n_res;
    struct track_run_info runs[CMP_MAX_RUNS];
    char hex[CMP_MAX_RUNS][33];
    int64_t duration[CMP_MAX_RUNS];
    size_t n;
    const char *metrics[CMP_MAX_METRICS];
    int goal_max[CMP_MAX_METRICS];
    size_t nm;
    const char **params; /* shown params, sorted */
    size_t np;
    unsigned char *param_differs; /* per shown param */
    unsigned char best[CMP_MAX_METRICS][CMP_MAX_RUNS];
    char *spark[CMP_MAX_METRICS][CMP_MAX_RUNS]; /* malloc'd, NULL when absent */
    struct cmp_traces tr;                       /* compare_trace.c */
    struct cmp_feedback fb;                     /* compare_feedback.c */
};

/* The metric summary `key` of run r, or NULL. */
const struct track_metric_summary *cmp_metric_of(const struct track_run_info *r, const char *key);
/* The value of param `key` of run r, or NULL. */
const char *cmp_param_of(const struct track_run_info *r, const char *key);

/* ---- the grid (compare_grid.c) ---------------------------------------------------------- */

/* A table of strings: nrows labels, nrows * ncols cells with flags. */
struct cmp_grid {
    size_t nrows, cap, ncols;
    char **labels;
    char **cells;
    unsigned char *flags;
};
/* Fills g (cleared first; the caller frees it with cmp_grid_free, also on
 * failure). `machine`: CSV labels and full-precision values, no sparklines;
 * else the human labels and compact values. 0, or -1 out of memory. */
int cmp_grid_build(const struct cmp *x, struct cmp_grid *g, int machine);
void cmp_grid_free(struct cmp_grid *g);
/* Appends a row labelled `label` with empty cells; returns its index or -1. */
long cmp_grid_row(struct cmp_grid *g, const char *label);
/* Sets cell (r, c) to a copy of text with flags; 0 or -1. */
int cmp_grid_set(struct cmp_grid *g, long r, size_t c, const char *text, int flags);
/* The text of cell (r, c), "" when unset. */
const char *cmp_grid_cell(const struct cmp_grid *g, size_t r, size_t c);

/* ---- output (compare_print.c) ------------------------------------------------------------ */

/* A column per run, folded into blocks that fit the terminal's width. */
void cmp_print_table(const struct cmp_grid *g, int colour);
/* How many blocks cmp_print_table would fold the grid into. */
size_t cmp_table_blocks(const struct cmp_grid *g);
/* A row per run (see its comment); with `dry`, prints nothing; returns the
 * number of blocks. */
size_t cmp_print_transposed(const struct cmp *x, const struct cmp_grid *g, int colour, int dry);
void cmp_print_markdown(const struct cmp_grid *g);
void cmp_print_csv(const struct cmp *x, const struct cmp_grid *g);
/* The JSON document (README "Side by side"); 0, or 1 after an error. */
int cmp_print_json(const struct cmp *x);

#endif
