/*
 * cmd_eval.c: `track eval`: scores predictions against labels. Reads two
 * files of one class per line (or a CSV column of each, --column), computes
 * accuracy, per-class and averaged precision, recall and F1 and the
 * confusion matrix (classify.c), prints them, and, with a run, logs the
 * figures as metrics and the confusion matrix as a CSV artifact.
 *
 * Input rules: a UTF-8 byte order mark at the start is skipped and CRLF
 * line ends are taken as LF; blank lines at the end are ignored, a blank
 * line before a label is an error naming the line. A label is 1..256 bytes
 * with no control character. CSV fields are split on commas with RFC 4180
 * quotes ("a, b" and "say ""hi"""); a row with another number of fields
 * than the header is an error naming the line. At most EVAL_MAX_SAMPLES
 * samples and CLS_MAX_CLASSES classes.
 */
#include "classify.h"
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVAL_MAX_SAMPLES 10000000
#define EVAL_MAX_LABEL   256
#define EVAL_MAX_LINE    (1 << 20)
#define EVAL_MAX_FIELDS  4096

struct labels {
    char **v;
    size_t n, cap;
};

static void labels_free(struct labels *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int labels_add(struct labels *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    char *d = malloc(len + 1);
    if (!d)
        return -1;
    memcpy(d, s, len);
    d[len] = '\0';
    l->v[l->n++] = d;
    return 0;
}

/* Checks one label of `path` at `line`; 0 or an error printed. */
static int check_label(const char *path, long line, const char *s, size_t len)
{
    if (len == 0)
        return cli_error("%s line %ld: empty label", path, line);
    if (len > EVAL_MAX_LABEL)
        return cli_error("%s line %ld: label of %zu bytes (at most %d)", path, line, len,
                         EVAL_MAX_LABEL);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return cli_error("%s line %ld: label holds control character 0x%02x", path, line, c);
    }
    return 0;
}

/* Splits a CSV line into fields (in place, quotes removed). -1 on an
 * unterminated quote or too many fields. */
static int csv_split(char *s, char **fields, size_t *n, const char **why)
{
    size_t k = 0;
    char *w = s, *p = s;

    for (;;) {
        if (k == EVAL_MAX_FIELDS) {
            *why = "more than 4096 fields";
            return -1;
        }
        fields[k++] = w;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0') {
                    *why = "a quote that does not close";
                    return -1;
                }
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            if (*p != ',' && *p != '\0') {
                *why = "text after a closing quote";
                return -1;
            }
        } else {
            while (*p && *p != ',')
                *w++ = *p++;
        }
        if (*p == '\0') {
            *w = '\0';
            break;
        }
        *w++ = '\0';
        p++;
        w = p;
    }
    *n = k;
    return 0;
}

/* Reads the labels of `path`: every line, or the column `column` of a CSV
 * with a header. 0, or 1 with the error printed. */
static int read_labels(const char *path, const char *column, struct labels *out)
{
    FILE *f = fopen(path, "rb");
    char *line = NULL, **fields = NULL;
    size_t cap = 0, n_fields = 0, header_fields = 0, col = 0;
    long lineno = 0, blank_at = 0;
    ssize_t len;
    int rc = 0;

    if (!f)
        return cli_error("cannot open %s: %s", path, strerror(errno));
    if (column && !(fields = malloc(EVAL_MAX_FIELDS * sizeof(*fields)))) {
        fclose(f);
        return cli_error("out of memory");
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *s = line;
        lineno++;
        if (len > EVAL_MAX_LINE) {
            rc = cli_error("%s line %ld: longer than %d bytes", path, lineno, EVAL_MAX_LINE);
            break;
        }
        if ((size_t)len != strlen(line)) {
            rc = cli_error("%s line %ld: holds a NUL byte", path, lineno);
            break;
        }
        if (lineno == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3;
            len -= 3;
        }
        if (len > 0 && s[len - 1] == '\n')
            s[--len] = '\0';
        if (len > 0 && s[len - 1] == '\r')
            s[--len] = '\0';
        if (len == 0) {
            if (!blank_at)
                blank_at = lineno;
            continue;
        }
        if (blank_at) {
            rc = cli_error("%s line %ld: empty line before more labels", path, blank_at);
            break;
        }
        if (!column) {
            if ((rc = check_label(path, lineno, s, (size_t)len)))
                break;
            if (out->n == EVAL_MAX_SAMPLES) {
                rc = cli_error("%s: more than %d samples", path, EVAL_MAX_SAMPLES);
                break;
            }
            if (labels_add(out, s, (size_t)len)) {
                rc = cli_error("out of memory");
                break;
            }
            continue;
        }
        const char *why = NULL;
        if (csv_split(s, fields, &n_fields, &why)) {
            rc = cli_error("%s line %ld: %s", path, lineno, why);
            break;
        }
        if (lineno == 1) {
            header_fields = n_fields;
            for (col = 0; col < n_fields && strcmp(fields[col], column) != 0; col++)
                ;
            if (col == n_fields) {
                char names[1024] = "";
                size_t used = 0;
                for (size_t i = 0; i < n_fields && used < sizeof(names) - 4; i++)
                    used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
                                             i ? ", " : "", fields[i]);
                rc = cli_error("%s: no column \"%s\"; the header has: %s", path, column, names);
                break;
            }
            continue;
        }
        if (n_fields != header_fields) {
            rc = cli_error("%s line %ld: %zu fields, the header has %zu", path, lineno, n_fields,
                           header_fields);
            break;
        }
        size_t flen = strlen(fields[col]);
        if ((rc = check_label(path, lineno, fields[col], flen)))
            break;
        if (out->n == EVAL_MAX_SAMPLES) {
            rc = cli_error("%s: more than %d samples", path, EVAL_MAX_SAMPLES);
            break;
        }
        if (labels_add(out, fields[col], flen)) {
            rc = cli_error("out of memory");
            break;
        }
    }
    if (!rc && ferror(f))
        rc = cli_error("cannot read %s: %s", path, strerror(errno));
    if (!rc && out->n == 0)
        rc = cli_error("%s: no labels%s", path, column && lineno ? " below the header" : "");
    free(line);
    free(fields);
    fclose(f);
    return rc;
}

/* ---- output --------------------------------------------------------------------- */

/* Whether a label may stand in a metric key (track_limits.h's rule for keys,
 * checked conservatively here). */
static int key_safe(const char *s)
{
    if (s[0] == '/' || strstr(s, ".."))
        return 0;
    for (; *s; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.' || c == ' ' || c == ':' || c == '/';
        if (!ok)
            return 0;
    }
    return 1;
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* The confusion matrix as CSV: header "true\predicted" and the classes,
 * then a row per true class. */
static void write_matrix_csv(FILE *f, const struct cls_report *r)
{
    size_t k = r->n_classes;
    fputs("true\\predicted", f);
    for (size_t j = 0; j < k; j++) {
        fputc(',', f);
        csv_field(f, r->classes[j].label);
    }
    fputc('\n', f);
    for (size_t i = 0; i < k; i++) {
        csv_field(f, r->classes[i].label);
        for (size_t j = 0; j < k; j++)
            fprintf(f, ",%lld", (long long)r->matrix[i * k + j]);
        fputc('\n', f);
    }
}

static void print_table(const struct cls_report *r)
{
    size_t w = 12;
    for (size_t c = 0; c < r->n_classes; c++)
        if (strlen(r->classes[c].label) > w)
            w = strlen(r->classes[c].label) > 40 ? 40 : strlen(r->classes[c].label);
    int iw = (int)w;
    printf("%-*s  %9s  %9s  %9s  %9s\n", iw, "class", "precision", "recall", "f1", "support");
    for (size_t c = 0; c < r->n_classes; c++) {
        const struct cls_class *x = &r->classes[c];
        printf("%-*.*s  %9.4f  %9.4f  %9.4f  %9lld\n", iw, iw, x->label, x->precision, x->recall,
               x->f1, (long long)x->support);
    }
    printf("\n%-*s  %9s  %9s  %9.4f  %9lld\n", iw, "accuracy", "", "", r->accuracy,
           (long long)r->samples);
    const char *names[] = {"macro avg", "weighted avg", "micro avg"};
    const struct cls_avg *avgs[] = {&r->macro, &r->weighted, &r->micro};
    for (int i = 0; i < 3; i++)
        printf("%-*s  %9.4f  %9.4f  %9.4f  %9lld\n", iw, names[i], avgs[i]->precision,
               avgs[i]->recall, avgs[i]->f1, (long long)r->samples);
    if (r->n_classes <= 20) {
        int cw = 6;
        for (size_t j = 0; j < r->n_classes; j++) {
            int l = (int)strlen(r->classes[j].label);
            cw = l > cw ? (l > 16 ? 16 : l) : cw;
        }
        printf("\nconfusion matrix (rows: true class, columns: predicted)\n%-*s", iw, "");
        for (size_t j = 0; j < r->n_classes; j++)
            printf(" %*.*s", cw, cw, r->classes[j].label);
        putchar('\n');
        for (size_t i = 0; i < r->n_classes; i++) {
            printf("%-*.*s", iw, iw, r->classes[i].label);
            for (size_t j = 0; j < r->n_classes; j++)
                printf(" %*lld", cw, (long long)r->matrix[i * r->n_classes + j]);
            putchar('\n');
        }
    } else {
        printf("\nconfusion matrix: %zu classes, see the CSV artifact\n", r->n_classes);
    }
}

static json_t *avg_json(const struct cls_avg *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "precision", cli_json_double(a->precision));
    json_object_set_new(o, "recall", cli_json_double(a->recall));
    json_object_set_new(o, "f1", cli_json_double(a->f1));
    return o;
}

static json_t *report_json(const struct cls_report *r, const char *average, const char *run_hex,
                           int64_t logged, const char *artifact)
{
    json_t *o = json_object(), *cls = json_array(), *labels = json_array(), *rows = json_array();
    for (size_t c = 0; c < r->n_classes; c++) {
        const struct cls_class *x = &r->classes[c];
        json_t *e = json_object();
        json_object_set_new(e, "label", json_string(x->label));
        json_object_set_new(e, "precision", cli_json_double(x->precision));
        json_object_set_new(e, "recall", cli_json_double(x->recall));
        json_object_set_new(e, "f1", cli_json_double(x->f1));
        json_object_set_new(e, "support", json_integer(x->support));
        json_object_set_new(e, "zero_division", json_boolean(x->zero_precision || x->zero_recall));
        json_array_append_new(cls, e);
        json_array_append_new(labels, json_string(x->label));
        json_t *row = json_array();
        for (size_t j = 0; j < r->n_classes; j++)
            json_array_append_new(row, json_integer(r->matrix[c * r->n_classes + j]));
        json_array_append_new(rows, row);
    }
    json_object_set_new(o, "samples", json_integer(r->samples));
    json_object_set_new(o, "accuracy", cli_json_double(r->accuracy));
    json_object_set_new(o, "average", json_string(average));
    json_object_set_new(o, "macro", avg_json(&r->macro));
    json_object_set_new(o, "micro", avg_json(&r->micro));
    json_object_set_new(o, "weighted", avg_json(&r->weighted));
    json_object_set_new(o, "classes", cls);
    json_t *cm = json_object();
    json_object_set_new(cm, "labels", labels);
    json_object_set_new(cm, "rows", rows);
    json_object_set_new(o, "confusion_matrix", cm);
    json_object_set_new(o, "run_id", run_hex ? json_string(run_hex) : json_null());
    json_object_set_new(o, "metrics_logged", json_integer(logged));
    json_object_set_new(o, "artifact", artifact ? json_string(artifact) : json_null());
    return o;
}

/* ---- logging ---------------------------------------------------------------------- */

static int log_one(struct track_client *c, const char *prefix, const char *name, double v,
                   int64_t step, int64_t *logged, struct track_err *err)
{
    char key[600];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    if (track_log_metric(c, key, v, step, 0, err))
        return -1;
    (*logged)++;
    return 0;
}

/* Logs the figures and the matrix to the client's current run. */
static int log_report(struct track_client *c, const struct cls_report *r, const char *prefix,
                      const char *average, int64_t step, int64_t *logged, char *artifact,
                      size_t cap)
{
    struct track_err err = {0};
    const struct cls_avg *a = cls_average(r, average);
    int skipped = 0;

    if (log_one(c, prefix, "accuracy", r->accuracy, step, logged, &err) ||
        log_one(c, prefix, "precision", a->precision, step, logged, &err) ||
        log_one(c, prefix, "recall", a->recall, step, logged, &err) ||
        log_one(c, prefix, "f1", a->f1, step, logged, &err))
        return cli_track_error(&err);
    for (size_t i = 0; i < r->n_classes; i++) {
        const struct cls_class *x = &r->classes[i];
        char name[300];
        if (!key_safe(x->label) || strlen(prefix) + strlen(x->label) + 12 > 250) {
            skipped++;
            continue;
        }
        const char *what[] = {"precision", "recall", "f1"};
        double v[] = {x->precision, x->recall, x->f1};
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "%s.%s", what[k], x->label);
            if (log_one(c, prefix, name, v[k], step, logged, &err))
                return cli_track_error(&err);
        }
    }
    if (skipped)
        cli_warn("%d classes have labels that cannot stand in a metric key: their per-class "
                 "figures are in the report and the CSV only",
                 skipped);
    if (track_flush(c, &err))
        return cli_track_error(&err);

    char dir[64], tmp[4200];
    size_t plen = strlen(prefix);
    snprintf(dir, sizeof dir, "%.*s", (int)(plen && prefix[plen - 1] == '.' ? plen - 1 : plen),
             prefix);
    snprintf(artifact, cap, "%s%sconfusion_matrix.csv", dir, dir[0] ? "/" : "");
    const char *t = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/track-eval-XXXXXX", t && *t ? t : "/tmp");
    int fd = mkstemp(tmp);
    if (fd < 0)
        return cli_error("cannot create a temporary file in %s: %s", t && *t ? t : "/tmp",
                         strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return cli_error("cannot write %s: %s", tmp, strerror(errno));
    }
    write_matrix_csv(f, r);
    int bad = ferror(f);
    if (fclose(f) || bad) {
        unlink(tmp);
        return cli_error("cannot write %s: %s", tmp, strerror(errno));
    }
    int rc = track_artifact_put(c, tmp, artifact, &err);
    unlink(tmp);
    if (rc)
        return cli_track_error(&err);
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    enum { O_LABELS = 1, O_PRED, O_COLUMN, O_AVERAGE, O_PREFIX, O_STEP, O_LCOL, O_PCOL };
    static const struct option longopts[] = {
        {"labels", required_argument, NULL, O_LABELS},
        {"predictions", required_argument, NULL, O_PRED},
        {"column", required_argument, NULL, O_COLUMN},
        {"average", required_argument, NULL, O_AVERAGE},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"labels-column", required_argument, NULL, O_LCOL},
        {"predictions-column", required_argument, NULL, O_PCOL},
        {"step", required_argument, NULL, O_STEP},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0}};
    const char *name = argv[0], *labels_path = NULL, *pred_path = NULL, *column = NULL;
    const char *lcol = NULL, *pcol = NULL;
    const char *average = "macro", *prefix = "eval.";
    int64_t step = 0;
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (opt) {
        case O_LABELS:
            labels_path = optarg;
            break;
        case O_PRED:
            pred_path = optarg;
            break;
        case O_COLUMN:
            column = optarg;
            break;
        case O_LCOL:
            lcol = optarg;
            break;
        case O_PCOL:
            pcol = optarg;
            break;
        case O_AVERAGE:
            average = optarg;
            break;
        case O_PREFIX:
            prefix = optarg;
            break;
        case O_STEP:
            step = cli_arg_i64(name, "--step", optarg, 0, INT64_MAX);
            break;
        }
    }
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    if (!labels_path || !pred_path)
        cli_usage_error(name, "both --labels FILE and --predictions FILE are needed");
    if (strcmp(average, "macro") && strcmp(average, "micro") && strcmp(average, "weighted"))
        cli_usage_error(name, "--average: \"%s\"; expected macro, micro or weighted", average);
    if (strlen(prefix) > 200 || (prefix[0] && !key_safe(prefix)))
        cli_usage_error(name, "--prefix: \"%s\" cannot start a metric key", prefix);

    struct labels truth = {0}, pred = {0};
    struct cls_report r;
    char msg[200], artifact[300] = "", hex[33] = "";
    int64_t logged = 0;
    int rc = read_labels(labels_path, lcol ? lcol : column, &truth);
    if (!rc)
        rc = read_labels(pred_path, pcol ? pcol : column, &pred);
    if (!rc && truth.n != pred.n)
        rc = cli_error("%s has %zu labels but %s has %zu: one prediction per label", labels_path,
                       truth.n, pred_path, pred.n);
    if (!rc && cls_build((const char *const *)truth.v, (const char *const *)pred.v, truth.n, &r,
                         msg, sizeof msg))
        rc = cli_error("%s", msg);
    if (rc) {
        labels_free(&truth);
        labels_free(&pred);
        return rc;
    }
    for (size_t i = 0; i < r.n_classes; i++) {
        const struct cls_class *x = &r.classes[i];
        if (x->zero_precision)
            cli_warn("class \"%s\" is never predicted: its precision is 0/0, taken as 0", x->label);
        if (x->zero_recall)
            cli_warn("class \"%s\" has no true sample: its recall is 0/0, taken as 0", x->label);
    }
    if (cli_run_arg()) {
        struct track_client *c = cli_client();
        track_run_id id;
        rc = cli_use_run(c);
        if (!rc)
            rc = log_report(c, &r, prefix, average, step, &logged, artifact, sizeof artifact);
        if (!rc && track_run_current(c, &id) == 0)
            track_run_id_hex(&id, hex);
        track_client_close(c);
    }
    if (!rc) {
        if (cli_opt.json) {
            rc = cli_json_print(report_json(&r, average, hex[0] ? hex : NULL, logged,
                                            artifact[0] ? artifact : NULL));
        } else {
            print_table(&r);
            if (hex[0])
                printf("\nlogged %lld metrics (%s average) and %s to run %.8s\n", (long long)logged,
                       average, artifact, hex);
            else
                printf("\nnot logged: no --run and no TRACK_RUN_ID\n");
        }
    }
    cls_free(&r);
    labels_free(&truth);
    labels_free(&pred);
    return rc;
}
