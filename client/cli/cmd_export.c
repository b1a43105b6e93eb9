/*
 * cmd_export.c: `track export`, runs with their params, tags and metric
 * summaries as CSV, JSON lines or one JSON array; --history adds every
 * metric point. Also home of the atomic output file (review_file_*, see
 * render.h) that `track compare --plot` shares.
 *
 * A run's history can hold millions of points, so it is never held whole:
 * it is paged from the daemon with the history cursor and streamed out as it
 * arrives. Runs are streamed one by one too (read, written, freed), after
 * every RUN argument was resolved; only the CSV of summaries, whose columns
 * are the keys of all runs, reads them all first. JSON framing around the streamed points is
 * written here; every string inside it still goes through jansson, and values are written with
 * render_double (cli_fmt_double's text, faster), so escaping and
 * NaN/Infinity follow DESIGN.md's "JSON".
 */
#include "cli.h"
#include "render.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_EXPERIMENTS 64
#define MAX_RUN_ARGS    10000
#define HISTORY_PAGE    65536 /* points per history request */
#define JSON_FLAGS      (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))

enum fmt { FMT_NONE, FMT_CSV, FMT_JSONL, FMT_JSON };

/* ---- atomic output file ----------------------------------------------------------- */

int review_file_open(struct review_file *rf, const char *path)
{
    memset(rf, 0, sizeof(*rf));
    if (strlen(path) >= sizeof(rf->path))
        return cli_error("%s: path too long", path);
    snprintf(rf->path, sizeof(rf->path), "%s", path);
    /* beside the target, so the rename stays on one file system */
    snprintf(rf->tmp, sizeof(rf->tmp), "%s.tmpXXXXXX", path);
    int fd = mkstemp(rf->tmp);
    if (fd < 0)
        return cli_error("%s: cannot create a temporary file: %s", path, strerror(errno));
    /* mkstemp makes 0600; the result should look like any file the user
     * writes, so apply the umask to 0666 */
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0666 & ~um) == 0)
        rf->f = fdopen(fd, "w");
    if (!rf->f) {
        int e = errno;
        close(fd);
        unlink(rf->tmp);
        return cli_error("%s: %s", rf->tmp, strerror(e));
    }
    return 0;
}

int review_file_commit(struct review_file *rf)
{
    int bad = fflush(rf->f) != 0 || ferror(rf->f) || fsync(fileno(rf->f)) != 0;
    int e = errno;
    if (fclose(rf->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    rf->f = NULL;
    if (bad) {
        unlink(rf->tmp);
        return cli_error("%s: writing failed: %s", rf->path, strerror(e));
    }
    if (rename(rf->tmp, rf->path) != 0) {
        e = errno;
        unlink(rf->tmp);
        return cli_error("%s: %s", rf->path, strerror(e));
    }
    return 0;
}

void review_file_abort(struct review_file *rf)
{
    if (rf->f)
        fclose(rf->f);
    rf->f = NULL;
    if (rf->tmp[0])
        unlink(rf->tmp);
}

/* ---- streaming ---------------------------------------------------------------------- */

/* A metric value as a JSON token: a number with round-trip precision, or one
 * of the strings "NaN", "Infinity", "-Infinity". Integral values keep a ".0"
 * so they read back as reals, as jansson writes the summaries. */
static void json_value(FILE *f, double v)
{
    char buf[48];
    if (isnan(v)) {
        fputs("\"NaN\"", f);
        return;
    }
    if (isinf(v)) {
        fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", f);
        return;
    }
    render_double(v, buf, sizeof(buf));
    fputs(buf, f);
    if (!strpbrk(buf, ".e"))
        fputs(".0", f);
}

/* Writes a JSON string token for s through jansson (escaping). */
static void json_str(FILE *f, const char *s)
{
    json_t *j = json_string(s);
    json_dumpf(j, f, JSON_ENCODE_ANY);
    json_decref(j);
}

struct export
{
    struct track_client *c;
    FILE *out;
    enum fmt fmt;
    int history;
};

/* Pages every point of (run, key) and hands each page to `page`. */
static int each_page(struct export *x, const char *hex, const char *key,
                     void (*page)(struct export *x, const char *hex, const char *key,
                                  const int64_t *steps, const int64_t *times, const double *vals,
                                  size_t n, int *first),
                     int *first)
{
    struct track_err err = {0};
    int64_t cursor = 0;
    int more = 1;

    while (more) {
        const int64_t *steps, *times;
        const double *vals;
        struct track_result *res;
        size_t n;
        if (track_metric_history(x->c, hex, key, cursor, HISTORY_PAGE, &res, &steps, &times, &vals,
                                 &n, &cursor, &more, &err))
            return cli_track_error(&err);
        page(x, hex, key, steps, times, vals, n, first);
        track_result_free(res);
        if (n == 0)
            break; /* a cursor that does not move would loop */
    }
    return 0;
}

static void page_json(struct export *x, const char *hex, const char *key, const int64_t *steps,
                      const int64_t *times, const double *vals, size_t n, int *first)
{
    (void)hex;
    (void)key;
    for (size_t i = 0; i < n; i++) {
        fprintf(x->out, "%s{\"step\":%lld,\"timestamp\":%lld,\"value\":", *first ? "" : ",",
                (long long)steps[i], (long long)times[i]);
        json_value(x->out, vals[i]);
        fputc('}', x->out);
        *first = 0;
    }
}

static void page_csv(struct export *x, const char *hex, const char *key, const int64_t *steps,
                     const int64_t *times, const double *vals, size_t n, int *first)
{
    (void)first;
    for (size_t i = 0; i < n; i++) {
        char v[40];
        render_double(vals[i], v, sizeof(v));
        fprintf(x->out, "%s,", hex);
        render_csv_put(x->out, key);
        fprintf(x->out, ",%lld,%lld,%s\n", (long long)steps[i], (long long)times[i], v);
    }
}

/* Writes one run as a compact JSON object (cli_json_run's shape), with a
 * "history" member streamed in under --history. */
static int run_json(struct export *x, const struct track_run_info *r)
{
    json_t *o = cli_json_run(r);
    char *s = json_dumps(o, JSON_FLAGS);
    json_decref(o);
    if (!s)
        return cli_error("out of memory");
    size_t len = strlen(s);
    if (!x->history) {
        fputs(s, x->out);
        free(s);
        return 0;
    }
    /* the object always has members (run_id first), so it ends in '}' and
     * "history" can be added before it */
    fwrite(s, 1, len - 1, x->out);
    free(s);
    fputs(",\"history\":{", x->out);
    char hex[33];
    track_run_id_hex(&r->id, hex);
    for (size_t k = 0; k < r->n_metrics; k++) {
        int first = 1;
        if (k)
            fputc(',', x->out);
        json_str(x->out, r->metrics[k].key);
        fputs(":[", x->out);
        if (each_page(x, hex, r->metrics[k].key, page_json, &first))
            return 1;
        fputc(']', x->out);
    }
    fputs("}}", x->out);
    return 0;
}

/* Streams the runs named by `ids` one at a time: each run is read (its
 * details paged by libtrack), written and freed before the next, so an
 * export of many large runs holds one of them at a time. */
static int export_stream(struct export *x, char (*ids)[33], size_t n)
{
    int rc = 0;

    if (x->fmt == FMT_CSV)
        fputs("run_id,key,step,timestamp,value\n", x->out);
    else if (x->fmt == FMT_JSON)
        fputs("[", x->out);
    for (size_t i = 0; i < n && !rc; i++) {
        struct track_err err = {0};
        struct track_result *res = NULL;
        struct track_run_info r;
        if (track_run_get(x->c, ids[i], &res, &r, &err))
            return cli_track_error(&err);
        if (x->fmt == FMT_CSV) {
            for (size_t k = 0; k < r.n_metrics && !rc; k++)
                rc = each_page(x, ids[i], r.metrics[k].key, page_csv, NULL);
        } else {
            if (x->fmt == FMT_JSON)
                fputs(i ? ",\n" : "\n", x->out);
            rc = run_json(x, &r);
            if (x->fmt == FMT_JSONL)
                fputc('\n', x->out);
        }
        track_result_free(res);
    }
    if (!rc && x->fmt == FMT_JSON)
        fputs(n ? "\n]\n" : "]\n", x->out);
    return rc;
}

/* The runs to export as full ids, resolved before anything is written (a
 * bad RUN argument fails the export with no output); *ids is malloc'd. */
static int export_ids(struct export *x, const char *const *exps, char **args, size_t n_args,
                      char (**ids)[33], size_t *n)
{
    struct track_err err = {0};

    *n = 0;
    if (exps) {
        struct track_run_query q = {.experiments = exps};
        struct track_result *res = NULL;
        struct track_run_info *runs = NULL;
        size_t nr = 0;
        if (track_run_list(x->c, &q, &res, &runs, &nr, &err))
            return cli_track_error(&err);
        *ids = calloc(nr ? nr : 1, sizeof(**ids));
        if (!*ids) {
            track_result_free(res);
            return cli_error("out of memory");
        }
        for (size_t i = 0; i < nr; i++)
            track_run_id_hex(&runs[i].id, (*ids)[i]);
        *n = nr;
        track_result_free(res);
        return 0;
    }
    *ids = calloc(n_args ? n_args : 1, sizeof(**ids));
    if (!*ids)
        return cli_error("out of memory");
    for (size_t i = 0; i < n_args; i++) {
        track_run_id id;
        if (track_run_use(x->c, args[i], &err))
            return cli_track_error(&err);
        track_run_current(x->c, &id);
        track_run_id_hex(&id, (*ids)[i]);
        *n = i + 1;
    }
    return 0;
}

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {{"experiment", required_argument, NULL, 'e'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"history", no_argument, NULL, 'H'},
                                             {"output", required_argument, NULL, 'o'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    static const char *exps[MAX_EXPERIMENTS + 1];
    const char *name = argv[0], *path = NULL;
    struct export x = {.fmt = FMT_NONE};
    struct track_err err = {0};
    struct track_run_info *runs = NULL;
    struct track_result **results = NULL;
    char(*ids)[33] = NULL;
    struct review_file rf = {0};
    size_t n_exp = 0, n = 0, n_res = 0;
    int opt, rc = 0;

    opterr = 0;
    /* no "+": options may follow the RUN arguments */
    while ((opt = cli_getopt(argc, argv, "ho:", longopts)) != -1) {
        switch (opt) {
        case 'e':
            if (n_exp == MAX_EXPERIMENTS)
                cli_usage_error(name, "--experiment: at most %d", MAX_EXPERIMENTS);
            exps[n_exp++] = optarg;
            break;
        case 'f':
            x.fmt = strcmp(optarg, "csv") == 0     ? FMT_CSV
                    : strcmp(optarg, "jsonl") == 0 ? FMT_JSONL
                    : strcmp(optarg, "json") == 0  ? FMT_JSON
                                                   : FMT_NONE;
            if (x.fmt == FMT_NONE)
                cli_usage_error(name, "--format: expected csv, jsonl or json, got \"%s\"", optarg);
            break;
        case 'H':
            x.history = 1;
            break;
        case 'o':
            if (!*optarg)
                cli_usage_error(name, "-o: expected a file name");
            path = optarg;
            break;
        default:
            if (!cli_common_opt(opt, name))
                cli_usage_error(name, "unknown option");
        }
    }
    if (x.fmt == FMT_NONE && cli_opt.json)
        x.fmt = FMT_JSON;
    if (x.fmt == FMT_NONE)
        cli_usage_error(name, "--format is required (csv, jsonl or json)");
    if (n_exp && optind < argc)
        cli_usage_error(name, "give either --experiment or RUN arguments, not both");
    if (!n_exp && optind == argc)
        cli_usage_error(name, "expected --experiment NAME or RUN...");
    if (argc - optind > MAX_RUN_ARGS)
        cli_usage_error(name, "at most %d RUN arguments", MAX_RUN_ARGS);

    x.c = cli_client();
    exps[n_exp] = NULL;
    rc = export_ids(&x, n_exp ? exps : NULL, argv + optind, (size_t)(argc - optind), &ids, &n);
    if (rc)
        goto out;
    /* a CSV of summaries has a column per key of any run: it needs them all */
    if (x.fmt == FMT_CSV && !x.history) {
        results = calloc(n ? n : 1, sizeof(*results));
        runs = calloc(n ? n : 1, sizeof(*runs));
        if (!results || !runs) {
            rc = cli_error("out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            if (track_run_get(x.c, ids[i], &results[i], &runs[i], &err)) {
                rc = cli_track_error(&err);
                goto out;
            }
            n_res++;
        }
    }
    if (path) {
        if ((rc = review_file_open(&rf, path)) != 0)
            goto out;
        x.out = rf.f;
    } else {
        x.out = stdout;
    }
    rc = runs ? review_runs_csv(x.out, runs, n) : export_stream(&x, ids, n);
    if (path) {
        if (rc)
            review_file_abort(&rf);
        else
            rc = review_file_commit(&rf);
    } else if (fflush(stdout) || ferror(stdout)) {
        rc = cli_error("writing the output failed");
    }
out:
    track_client_close(x.c);
    for (size_t i = 0; i < n_res; i++)
        track_result_free(results[i]);
    free(runs);
    free(results);
    free(ids);
    return rc;
}
