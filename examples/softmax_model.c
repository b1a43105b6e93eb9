/*
 * softmax_model.c: a trained softmax model as a file, so that a run can keep
 * its weights as an artifact and a registered model version can be fetched
 * back and scored again.
 *
 * The format is text, one record a line, every number with 17 significant
 * digits so that a save and a load give the same bits:
 *
 *     track-softmax 1
 *     features N classes K
 *     mean m_0 ... m_N-1          (the standardization fitted on training rows)
 *     scale s_0 ... s_N-1
 *     w c v_0 ... v_N-1           (one line per class c, in order)
 *     b b_0 ... b_K-1
 *
 * sm_model_save writes FILE.tmp, fsyncs it and renames it over FILE, so a
 * crash never leaves half a model under the final name. sm_model_load reads
 * into a trainer made from the same dataset and split, and refuses a file
 * whose shape or standardization differ (scores would silently be wrong).
 */
#include "softmax.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL_MAGIC "track-softmax 1"

__attribute__((format(printf, 3, 4))) static int fail(struct sm_err *err, int code, const char *fmt,
                                                      ...)
{
    va_list ap;

    if (err) {
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void put_row(FILE *f, const char *label, const double *v, size_t n)
{
    fputs(label, f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, " %.17g", v[i]);
    fputc('\n', f);
}

int sm_model_save(const struct sm_trainer *t, const char *path, struct sm_err *err)
{
    char tmp[4096];
    size_t dim = t->n_features, k = t->n_classes;
    int fd, rc = SM_E_IO;
    FILE *f;

    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return fail(err, SM_E_ARG, "model file name too long: %s", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail(err, SM_E_IO, "cannot write %s: %s", tmp, strerror(errno));
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return fail(err, SM_E_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    fprintf(f, MODEL_MAGIC "\nfeatures %zu classes %zu\n", dim, k);
    put_row(f, "mean", t->mean, dim);
    put_row(f, "scale", t->scale, dim);
    for (size_t c = 0; c < k; c++) {
        fprintf(f, "w %zu", c);
        put_row(f, "", t->w + c * dim, dim);
    }
    put_row(f, "b", t->b, k);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || ferror(f)) {
        fail(err, SM_E_IO, "cannot write %s: %s", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        return rc;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fail(err, SM_E_IO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    return SM_OK;
}

/* Reads `n` numbers after the word `label` from line `s` (line number
 * `line` of `path`, for the message) into v. */
static int get_row(const char *s, const char *label, double *v, size_t n, const char *path,
                   int line, struct sm_err *err)
{
    size_t len = strlen(label);
    char *end;

    if (strncmp(s, label, len) != 0 || (s[len] != ' ' && s[len] != '\n'))
        return fail(err, SM_E_FORMAT, "%s:%d: expected a '%s' line", path, line, label);
    s += len;
    for (size_t i = 0; i < n; i++) {
        if (*s != ' ')
            return fail(err, SM_E_FORMAT, "%s:%d: '%s' has %zu numbers, expected %zu", path, line,
                        label, i, n);
        errno = 0;
        v[i] = strtod(s + 1, &end);
        if (end == s + 1 || errno == ERANGE || !isfinite(v[i]))
            return fail(err, SM_E_FORMAT, "%s:%d: '%s' number %zu is not a finite number", path,
                        line, label, i + 1);
        s = end;
    }
    if (*s != '\n' && *s != '\0')
        return fail(err, SM_E_FORMAT, "%s:%d: '%s' has more than %zu numbers", path, line, label,
                    n);
    return SM_OK;
}

int sm_model_load(struct sm_trainer *t, const char *path, struct sm_err *err)
{
    size_t dim = t->n_features, k = t->n_classes, fdim = 0, fk = 0;
    size_t row_cap = 64 + (dim > k ? dim : k) * 32;
    double *mean = calloc(dim, sizeof(double)), *scale = calloc(dim, sizeof(double));
    double *w = calloc(dim * k, sizeof(double)), *b = calloc(k, sizeof(double));
    char *line = malloc(row_cap);
    FILE *f = NULL;
    int rc = SM_E_NOMEM, n = 0;

    if (!mean || !scale || !w || !b || !line)
        goto out;
    f = fopen(path, "r");
    if (!f) {
        rc = fail(err, SM_E_IO, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
#define NEXT_LINE()                                                                                \
    do {                                                                                           \
        n++;                                                                                       \
        if (!fgets(line, (int)row_cap, f)) {                                                       \
            rc = fail(err, SM_E_FORMAT, "%s:%d: the file ends early", path, n);                    \
            goto out;                                                                              \
        }                                                                                          \
        if (!strchr(line, '\n') && !feof(f)) {                                                     \
            rc = fail(err, SM_E_LIMIT, "%s:%d: line longer than %zu bytes", path, n, row_cap);     \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
    NEXT_LINE();
    if (strcmp(line, MODEL_MAGIC "\n") != 0) {
        rc = fail(err, SM_E_FORMAT, "%s: not a softmax model file (first line is not '%s')", path,
                  MODEL_MAGIC);
        goto out;
    }
    NEXT_LINE();
    if (sscanf(line, "features %zu classes %zu", &fdim, &fk) != 2 || fdim != dim || fk != k) {
        rc = fail(err, SM_E_FORMAT,
                  "%s:2: the model has %zu features and %zu classes; the dataset %zu and %zu", path,
                  fdim, fk, dim, k);
        goto out;
    }
    NEXT_LINE();
    if ((rc = get_row(line, "mean", mean, dim, path, n, err)) != 0)
        goto out;
    NEXT_LINE();
    if ((rc = get_row(line, "scale", scale, dim, path, n, err)) != 0)
        goto out;
    for (size_t c = 0; c < k; c++) {
        char label[32];
        snprintf(label, sizeof label, "w %zu", c);
        NEXT_LINE();
        if ((rc = get_row(line, label, w + c * dim, dim, path, n, err)) != 0)
            goto out;
    }
    NEXT_LINE();
    if ((rc = get_row(line, "b", b, k, path, n, err)) != 0)
        goto out;
#undef NEXT_LINE
    /* the trainer's rows were standardized with its own fit: a model fitted
     * on another split would be scored on rows scaled differently */
    if (memcmp(mean, t->mean, dim * sizeof(double)) != 0 ||
        memcmp(scale, t->scale, dim * sizeof(double)) != 0) {
        rc = fail(err, SM_E_ARG,
                  "%s: the model was standardized on another training split (another dataset "
                  "or --seed)",
                  path);
        goto out;
    }
    memcpy(t->w, w, dim * k * sizeof(double));
    memcpy(t->b, b, k * sizeof(double));
    rc = SM_OK;
out:
    if (rc == SM_E_NOMEM)
        fail(err, SM_E_NOMEM, "out of memory reading %s", path);
    if (f)
        fclose(f);
    free(mean);
    free(scale);
    free(w);
    free(b);
    free(line);
    return rc;
}
