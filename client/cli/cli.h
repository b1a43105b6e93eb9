/*
 * cli.h: what the `track` subcommands share. Each command is one function
 * `int cmd_x(int argc, char **argv)` in a file per noun (cmd_run.c, ...),
 * found through the table in main.c. Commands print with the helpers here:
 * human output to stdout, errors as one line "track: ..." on stderr, and
 * JSON through jansson. Exit status: 0 success, 1 error, 2 usage.
 *
 * The CLI is built only on libtrack's public API (track.h).
 */
#ifndef TRACK_CLI_H
#define TRACK_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdint.h>

#include "track.h"

#define EXIT_USAGE 2

/* Options every command takes; filled by cli_common_opt. */
struct cli_common {
    const char *server;
    const char *run;
    int json;
};
extern struct cli_common cli_opt;

/* Long options every command accepts, appended to a command's own. */
#define CLI_COMMON_LONGOPTS                                                                        \
    {"server", required_argument, NULL, 0x100}, {"run", required_argument, NULL, 0x101},           \
        {"help", no_argument, NULL, 'h'},                                                          \
    {                                                                                              \
        "json", no_argument, NULL, 0x102                                                           \
    }

/* Handles a common option (returns 1), a usage error (exits 2), or returns 0
 * for the command's own. `name` is the command for --help. Commands read
 * their options with cli_getopt, which calls this and says more about a
 * refused option; it stays for code that runs getopt_long itself. */
int cli_common_opt(int opt, const char *name);

/* Prints the usage of command `name` from the table (stdout on --help). */
void cli_usage(const char *name, int to_stderr);
/* Prints "track NAME: msg" and usage hint, exits 2. */
__attribute__((noreturn, format(printf, 2, 3))) void cli_usage_error(const char *name,
                                                                     const char *fmt, ...);
/* Prints "track: msg" to stderr and returns 1. */
__attribute__((format(printf, 1, 2))) int cli_error(const char *fmt, ...);
/* Prints "track: warning: msg" to stderr. */
__attribute__((format(printf, 1, 2))) void cli_warn(const char *fmt, ...);
/* Reports a libtrack error: "track: CODE: message", returns 1. */
int cli_track_error(const struct track_err *err);

/* Opens a client for cli_opt.server (with autostart). Exits 1 on failure. */
struct track_client *cli_client(void);
/* Selects the run from --run, else TRACK_RUN_ID; returns 0 or prints an
 * error and returns 1. */
int cli_use_run(struct track_client *c);
/* The run named by --run / TRACK_RUN_ID, or NULL. */
const char *cli_run_arg(void);

/* Splits "K=V" into a kv pointing into s (modified). -1 without '='. */
int cli_split_kv(char *s, struct track_kv *kv);

/* --param/--tag K=V options of `run start` and `exec`; tags has room for
 * CLI_SYS_TAGS more, which exec adds itself. */
#define CLI_MAX_KV   1024
#define CLI_SYS_TAGS 16
struct cli_kv_args {
    struct track_kv params[CLI_MAX_KV], tags[CLI_MAX_KV + CLI_SYS_TAGS];
    size_t n_params, n_tags;
};
/* Adds one K=V (arg is modified) as a param or a tag of command `cmd`;
 * exits 2 on a malformed one or past the limit. */
void cli_add_kv(const char *cmd, struct cli_kv_args *a, int param, char *arg);
/* Numbers, parsed the same way for every argument, option and stdin line:
 * plain decimal only, an optional sign, for a double an optional fraction
 * and exponent ("0.31", "-2", "1e-4"), or nan, inf, infinity in any case
 * (NaN and +-Inf are legitimate metric values). Refused: hex ("0x10"),
 * blanks before or after (" 1.5", "1.5 "), "nan(...)", an empty string.
 * Return 0, CLI_NUM_BAD (not such a number) or CLI_NUM_RANGE (beyond int64,
 * or beyond a double's range: 1e400, and 1e-400 which would read as 0). */
#define CLI_NUM_BAD   (-1)
#define CLI_NUM_RANGE (-2)
/* n bytes as 2n lowercase hex digits and a NUL into out (2n + 1 bytes). */
void cli_hex(const uint8_t *b, size_t n, char *out);
int cli_parse_i64(const char *s, int64_t *v);
/* A duration: "0", or one or more NUMBER UNIT with units ms s m h d
 * ("1h30m"), into ms; -1 when it is not that. */
int cli_parse_duration(const char *s, int64_t *ms);
int cli_parse_double(const char *s, double *v);
/* The same for a command-line argument `what` ("--step", "VALUE") of
 * command `cmd`: returns the value, or exits 2 with a message naming the
 * argument, its text and the accepted range [min, max]. */
int64_t cli_arg_i64(const char *cmd, const char *what, const char *s, int64_t min, int64_t max);
double cli_arg_double(const char *cmd, const char *what, const char *s);

/* getopt_long for a command whose name is argv[0]: handles the common
 * options and --help itself (full help on stdout, exit 0), and refuses an
 * unknown option, a missing value or an unwanted one with a usage error that
 * names the option and suggests the closest of longopts ("unknown option
 * '--stpe'; did you mean '--step'?"), exit 2. Returns the command's own
 * options, -1 at the end of them. */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

/* The full help of command `name` on stdout: usage, what it does, each of
 * longopts with its default, the common options, examples (main.c, from
 * the command table). */
void cli_help(const char *name, const struct option *longopts);

/* Optimal string alignment distance (Levenshtein plus swaps of two
 * neighbours, so "stpe" is 1 from "step"), capped at 99. */
int cli_edit_distance(const char *a, size_t na, const char *b, size_t nb);
/* Whether a typed word is close enough to a candidate to suggest it. */
int cli_is_close(size_t typed_len, int distance);

/* Warns (one line on stderr) when the client's current run has ended, after
 * a write into it: "run 3f2a9c1e (lr-0.5) is FINISHED, ended ...; logged
 * into it anyway". One cheap read (a run list narrowed to the id, without
 * details); says nothing when that read fails. */
void cli_warn_if_ended(struct track_client *c);

/* "2026-11-25 03:48:20" in local time; "-" for 0. */
void cli_fmt_time(int64_t ms, char *buf, size_t len);
/* "1h02m", "3.2s", ... */
void cli_fmt_duration(int64_t ms, char *buf, size_t len);
/* Shortest round-tripping text for a double, "nan", "inf", "-inf" (full
 * precision: for --csv and --json). Tables use render_num. */
void cli_fmt_double(double v, char *buf, size_t len);
/* Columns of the output: $COLUMNS, else the terminal's width (TIOCGWINSZ
 * on stdout), else 80 (see render_term_width). */
int cli_term_width(void);
const char *cli_status_name(int status);

/* JSON helpers (DESIGN.md "JSON"): numbers, with NaN/±Inf as strings. */
json_t *cli_json_double(double v);
json_t *cli_json_time(int64_t ms); /* null for 0 */
json_t *cli_json_run(const struct track_run_info *r);
/* Prints a JSON value with a newline and releases it; returns 0 or 1. */
int cli_json_print(json_t *v);

/* ---- commands ------------------------------------------------------------ */
int cmd_keygen(int argc, char **argv);
int cmd_config_set(int argc, char **argv);
int cmd_config_show(int argc, char **argv);
int cmd_experiment_create(int argc, char **argv);
int cmd_experiment_list(int argc, char **argv);
int cmd_run_start(int argc, char **argv);
int cmd_run_end(int argc, char **argv);
int cmd_run_list(int argc, char **argv);
int cmd_run_show(int argc, char **argv);
int cmd_log_param(int argc, char **argv);
int cmd_tag(int argc, char **argv);
int cmd_log_metric(int argc, char **argv);
int cmd_metric_history(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_run_delete(int argc, char **argv);  /* cmd_run.c */
int cmd_run_restore(int argc, char **argv); /* cmd_run.c */
int cmd_gc(int argc, char **argv);          /* cmd_gc.c */
int cmd_lineage(int argc, char **argv);     /* cmd_lineage.c */
int cmd_traces(int argc, char **argv);      /* cmd_trace.c */
int cmd_trace_show(int argc, char **argv);
int cmd_trace_export(int argc, char **argv);
int cmd_eval(int argc, char **argv); /* cmd_eval.c */
int cmd_artifact_put(int argc, char **argv);
int cmd_artifact_list(int argc, char **argv);
int cmd_artifact_get(int argc, char **argv);
int cmd_artifact_verify(int argc, char **argv);
int cmd_model_register(int argc, char **argv);
int cmd_model_list(int argc, char **argv);
int cmd_model_show(int argc, char **argv);
int cmd_model_alias(int argc, char **argv);
int cmd_model_tag(int argc, char **argv);
int cmd_model_get(int argc, char **argv);
/* cmd_admin.c */
int cmd_admin_user_add(int argc, char **argv);
int cmd_admin_user_list(int argc, char **argv);
int cmd_admin_user_remove(int argc, char **argv);
int cmd_admin_user_set_key(int argc, char **argv);
int cmd_admin_user_set_role(int argc, char **argv);
int cmd_admin_grant(int argc, char **argv);
int cmd_admin_revoke(int argc, char **argv);
int cmd_admin_grants(int argc, char **argv);
int cmd_admin_token_create(int argc, char **argv);
int cmd_admin_token_list(int argc, char **argv);
int cmd_admin_token_revoke(int argc, char **argv);
int cmd_admin_audit(int argc, char **argv);
int cmd_whoami(int argc, char **argv);
int cmd_feedback_add(int argc, char **argv);     /* cmd_feedback.c */
int cmd_feedback_list(int argc, char **argv);    /* cmd_feedback.c */
int cmd_feedback_summary(int argc, char **argv); /* cmd_feedback.c */
int cmd_feedback_export(int argc, char **argv);  /* cmd_feedback.c */

#endif
