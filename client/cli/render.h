/*
 * render.h: text and picture rendering for the run-review commands (`track
 * runs`, `compare`, `watch`, `export`): display widths of UTF-8 text,
 * sparklines, compact numbers, column folding for narrow terminals, round
 * axis ticks, XML and CSV escaping, the keys a filter mentions, and SVG
 * charts.
 *
 * Everything in render.c is pure: it touches no daemon, no global state and
 * no other CLI file (tests/unit/test_render.c compiles it on its own). The
 * last section declares the few helpers the review commands share that need
 * libtrack types; they live in the command files, not in render.c.
 */
#ifndef TRACK_RENDER_H
#define TRACK_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "plot.h" /* sparklines, axis ticks and SVG charts (spark.c, plot_svg.c) */

/* ---- text ------------------------------------------------------------------ */

/* Display columns of UTF-8 text: one per code point (wide East Asian
 * characters are not told apart; run names rarely hold them). A byte that
 * is not valid UTF-8 counts as one column. */
size_t render_width(const char *s);

/* Copies s into buf (len > 0), cut to at most `max` display columns; a cut
 * string ends in "…" (itself one column). Never splits a UTF-8 sequence. */
void render_fit(const char *s, size_t max, char *buf, size_t len);

/* The same with the cut in the middle: "resnet…-lr3e-4" keeps both ends,
 * the end one column longer; falls back to render_fit for max < 3 or a
 * buffer too small. */
void render_fit_middle(const char *s, size_t max, char *buf, size_t len);

/* Writes s padded with spaces to `width` columns, right-aligned when
 * `right`, wrapped in the ANSI `sgr` sequence (e.g. "1" for bold) when sgr
 * is not NULL. The padding stays outside the colour. */
void render_pad(FILE *f, const char *s, size_t width, int right, const char *sgr);

/* A compact number for tables: up to 6 significant digits ("0.31",
 * "1.23457e+06"), "nan", "inf", "-inf". */
void render_num(double v, char *buf, size_t len);

/* The shortest text that reads back as exactly v (as cli_fmt_double writes
 * it: "%.Ng" with the least N from 6 to 17; "nan", "inf", "-inf"), found by
 * bisection over N, since a precision that round-trips stays round-tripping
 * when raised: about 5 conversions instead of up to 12. Export writes
 * millions of values through this. */
void render_double(double v, char *buf, size_t len);

/* ---- layout ------------------------------------------------------------------ */

#define RENDER_MIN_WIDTH 20
#define RENDER_MAX_WIDTH 1000

/* Terminal width: $COLUMNS when it is a whole number (clamped to
 * RENDER_MIN_WIDTH..RENDER_MAX_WIDTH), else tty_cols when > 0 (what
 * TIOCGWINSZ said; 0 when stdout is not a terminal), else 80. */
int render_term_width(const char *columns_env, int tty_cols);

/* Splits n columns of widths col_w[] into groups that each fit `width`
 * display columns when printed after a label column of label_w, every column
 * preceded by `gap` spaces. A column wider than the room still gets a group
 * of its own. starts[g] is the first column of group g (starts needs room
 * for n entries); returns the number of groups (0 when n is 0). */
size_t render_fold(size_t label_w, const size_t *col_w, size_t n, size_t width, size_t gap,
                   size_t *starts);

/* ---- escaping ---------------------------------------------------------------- */

/* XML-escapes s (& < > " ' as entities) into buf like snprintf: returns the
 * length the whole result needs. Control characters other than tab, newline
 * and carriage return, and bytes that are not valid UTF-8, become '?', so
 * the output is always well-formed XML text. */
size_t render_xml_escape(const char *s, char *buf, size_t len);
/* The same, written to f. */
void render_xml_put(FILE *f, const char *s);

/* Writes s as one CSV field (RFC 4180): quoted, with quotes doubled, when it
 * holds a comma, quote, CR or LF or starts or ends with a space. */
void render_csv_put(FILE *f, const char *s);

/* ---- filter keys ------------------------------------------------------------- */

enum render_key_kind { RENDER_KEY_METRIC = 1, RENDER_KEY_PARAM = 2, RENDER_KEY_TAG = 3 };
enum render_key_agg { RENDER_AGG_LAST = 0, RENDER_AGG_MIN = 1, RENDER_AGG_MAX = 2 };

struct render_key {
    int kind; /* enum render_key_kind */
    int agg;  /* enum render_key_agg; metrics only */
    char key[256];
};

/* Finds the metrics.KEY, params.KEY and tags.KEY terms (and min()/max() of a
 * metric) that a filter or order-by expression mentions, in the order they
 * appear, and appends those not yet in out[0..n) up to cap. Returns the new
 * count. A light scan, not the daemon's parser: it only has to find the
 * columns worth showing; the daemon alone judges the syntax. */
size_t render_expr_keys(const char *expr, struct render_key *out, size_t n, size_t cap);

/* The key as it is written in the language: "metrics.loss", "min(metrics.loss)". */
void render_key_label(const struct render_key *k, char *buf, size_t len);

/* ---- shared by the review commands (in cmd_runs.c and cmd_export.c) ------------ */

struct track_run_info;

/* Writes runs as CSV: a header run_id,name,experiment,status,start_time,
 * end_time, then params.K columns and metrics.K columns (the last value) for
 * the union of keys, each sorted; missing values are empty fields. Returns 0,
 * or 1 after printing an error. */
int review_runs_csv(FILE *f, const struct track_run_info *runs, size_t n);

/* An output file written atomically (cmd_export.c): review_file_open makes
 * a temporary file beside `path` for the caller to write through rf->f;
 * review_file_commit flushes, syncs and renames it into place (0, or 1 after
 * printing an error; the temporary file is gone either way);
 * review_file_abort removes it. */
struct review_file {
    char path[4096], tmp[4096 + 16];
    FILE *f;
};
int review_file_open(struct review_file *rf, const char *path);
int review_file_commit(struct review_file *rf);
void review_file_abort(struct review_file *rf);

#endif
