/*
 * softmax.c: dataset loading, split, standardization, training and metrics
 * for a multinomial logistic regression. See softmax.h for the contracts.
 *
 * How it works. The loader reads one line at a time into a fixed buffer
 * (SM_MAX_LINE), checks the header's sizes against the caps before it
 * allocates anything, then parses every field with strtod/strtol and
 * rejects the first bad line with its number. The trainer copies the rows
 * into a train and a validation matrix (stratified: each class contributes
 * the same share to validation, chosen by the seeded PRNG), standardizes
 * both with the mean and standard deviation of the training rows only (so
 * nothing leaks from validation), and starts from zero weights: the problem
 * is convex, so no random initialization is needed and a learning rate of 0
 * leaves the model, and the loss (ln K), exactly where it started.
 *
 * Each mini-batch computes, per row, the logits z = W x + b and a
 * numerically stable log-sum-exp (the max logit is subtracted before exp),
 * accumulates the gradient of the mean cross-entropy, adds the L2 term on
 * the weights and applies classical momentum: v = mu v - lr g; W += v.
 *
 * Every buffer is allocated in sm_trainer_new() and released in
 * sm_trainer_free(); training and evaluation allocate nothing.
 */
#include "softmax.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static int fail(struct sm_err *err, int code, const char *fmt,
                                                      ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- PRNG ----------------------------------------------------------------- */

void sm_rng_seed(struct sm_rng *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t sm_rng_next(struct sm_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

size_t sm_rng_below(struct sm_rng *r, size_t n)
{
    /* Reject the top partial block of the 2^64 range so every residue is
     * equally likely. */
    uint64_t bound = (uint64_t)n;
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t v = sm_rng_next(r);
        if (v >= threshold)
            return (size_t)(v % bound);
    }
}

void sm_rng_shuffle(struct sm_rng *r, size_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = sm_rng_below(r, i);
        size_t tmp = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = tmp;
    }
}

/* ---- dataset --------------------------------------------------------------- */

/* Cuts the next comma-separated field off *cur, NUL-terminating it in place.
 * Returns NULL when the line has no more fields. */
static char *next_field(char **cur)
{
    char *s = *cur;
    if (!s)
        return NULL;
    char *comma = strchr(s, ',');
    if (comma) {
        *comma = '\0';
        *cur = comma + 1;
    } else {
        *cur = NULL;
    }
    return s;
}

static int only_space(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

static int parse_long(const char *s, long *v)
{
    char *end;
    if (only_space(s))
        return -1;
    errno = 0;
    *v = strtol(s, &end, 10);
    return errno == 0 && only_space(end) ? 0 : -1;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    if (only_space(s))
        return -1;
    errno = 0;
    *v = strtod(s, &end);
    return errno == 0 && only_space(end) && isfinite(*v) ? 0 : -1;
}

/* Reads one line into buf without its line end. Returns 1 for a line, 0 at
 * the end of the file, -1 for a line longer than the buffer, -2 for a read
 * error. */
static int read_line(FILE *f, char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, f))
        return ferror(f) ? -2 : 0;
    size_t len = strlen(buf);
    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    else if (len == cap - 1 && !feof(f))
        return -1;
    if (len > 0 && buf[len - 1] == '\r')
        buf[--len] = '\0';
    return 1;
}

static int parse_header(const char *path, char *line, struct sm_dataset *hdr, struct sm_err *err)
{
    char *cur = line, *field;
    long rows, features;

    field = next_field(&cur);
    if (!field || parse_long(field, &rows) != 0 || rows < 1)
        return fail(err, SM_E_FORMAT, "%s: line 1: header must start with a row count >= 1", path);
    field = next_field(&cur);
    if (!field || parse_long(field, &features) != 0 || features < 1)
        return fail(err, SM_E_FORMAT,
                    "%s: line 1: second header field must be a feature count >= 1", path);
    if (rows > SM_MAX_ROWS)
        return fail(err, SM_E_LIMIT, "%s: line 1: %ld rows, more than the cap of %d", path, rows,
                    SM_MAX_ROWS);
    if (features > SM_MAX_FEATURES)
        return fail(err, SM_E_LIMIT, "%s: line 1: %ld features, more than the cap of %d", path,
                    features, SM_MAX_FEATURES);
    if (rows * features > SM_MAX_CELLS)
        return fail(err, SM_E_LIMIT, "%s: line 1: %ld x %ld values, more than the cap of %ld", path,
                    rows, features, SM_MAX_CELLS);

    size_t k = 0;
    while ((field = next_field(&cur)) != NULL) {
        size_t len = strlen(field);
        if (k == SM_MAX_CLASSES)
            return fail(err, SM_E_LIMIT, "%s: line 1: more than %d class names", path,
                        SM_MAX_CLASSES);
        if (len == 0 || only_space(field))
            return fail(err, SM_E_FORMAT, "%s: line 1: class name %zu is empty", path, k);
        if (len >= SM_NAME_MAX)
            return fail(err, SM_E_FORMAT, "%s: line 1: class name %zu is longer than %d bytes",
                        path, k, SM_NAME_MAX - 1);
        memcpy(hdr->class_names[k], field, len + 1);
        k++;
    }
    if (k < 2)
        return fail(err, SM_E_FORMAT, "%s: line 1: the header names %zu classes, need at least 2",
                    path, k);
    hdr->n_rows = (size_t)rows;
    hdr->n_features = (size_t)features;
    hdr->n_classes = k;
    return 0;
}

static int parse_row(const char *path, size_t lineno, char *line, struct sm_dataset *d, size_t row,
                     struct sm_err *err)
{
    char *cur = line, *field;
    double *x = d->x + row * d->n_features;
    long label;

    for (size_t j = 0; j < d->n_features; j++) {
        field = next_field(&cur);
        if (!field)
            return fail(err, SM_E_FORMAT,
                        "%s: line %zu: %zu fields, expected %zu features and a class", path, lineno,
                        j, d->n_features);
        if (parse_double(field, &x[j]) != 0)
            return fail(err, SM_E_FORMAT,
                        "%s: line %zu: feature %zu: '%.40s' is not a finite number", path, lineno,
                        j + 1, field);
    }
    field = next_field(&cur);
    if (!field)
        return fail(err, SM_E_FORMAT, "%s: line %zu: %zu fields, expected %zu features and a class",
                    path, lineno, d->n_features, d->n_features);
    if (parse_long(field, &label) != 0)
        return fail(err, SM_E_FORMAT, "%s: line %zu: class '%.40s' is not an integer", path, lineno,
                    field);
    if (label < 0 || (size_t)label >= d->n_classes)
        return fail(err, SM_E_FORMAT, "%s: line %zu: class %ld is outside 0..%zu", path, lineno,
                    label, d->n_classes - 1);
    if (cur)
        return fail(err, SM_E_FORMAT, "%s: line %zu: more than %zu fields", path, lineno,
                    d->n_features + 1);
    d->y[row] = (int)label;
    return 0;
}

int sm_dataset_load(const char *path, struct sm_dataset **out, struct sm_err *err)
{
    struct sm_dataset *d = NULL;
    char *line = NULL;
    FILE *f = NULL;
    size_t lineno = 0, rows = 0;
    int rc, r;

    if (!path || !out)
        return fail(err, SM_E_ARG, "sm_dataset_load: NULL argument");
    *out = NULL;
    f = fopen(path, "r");
    if (!f)
        return fail(err, SM_E_IO, "%s: %s", path, strerror(errno));
    line = malloc(SM_MAX_LINE);
    d = calloc(1, sizeof *d);
    if (!line || !d) {
        rc = fail(err, SM_E_NOMEM, "%s: out of memory", path);
        goto out;
    }

    r = read_line(f, line, SM_MAX_LINE);
    lineno = 1;
    if (r <= 0) {
        rc = r == 0 ? fail(err, SM_E_FORMAT, "%s: line 1: missing header", path)
             : r == -1
                 ? fail(err, SM_E_FORMAT, "%s: line 1: longer than %d bytes", path, SM_MAX_LINE - 1)
                 : fail(err, SM_E_IO, "%s: read error", path);
        goto out;
    }
    rc = parse_header(path, line, d, err);
    if (rc != 0)
        goto out;

    d->x = calloc(d->n_rows * d->n_features, sizeof *d->x);
    d->y = calloc(d->n_rows, sizeof *d->y);
    if (!d->x || !d->y) {
        rc = fail(err, SM_E_NOMEM, "%s: out of memory for %zu rows", path, d->n_rows);
        goto out;
    }

    while ((r = read_line(f, line, SM_MAX_LINE)) == 1) {
        lineno++;
        if (rows == d->n_rows) {
            if (only_space(line))
                continue; /* trailing empty lines */
            rc = fail(err, SM_E_FORMAT, "%s: line %zu: more rows than the header's %zu", path,
                      lineno, d->n_rows);
            goto out;
        }
        rc = parse_row(path, lineno, line, d, rows, err);
        if (rc != 0)
            goto out;
        rows++;
    }
    if (r == -1) {
        rc = fail(err, SM_E_FORMAT, "%s: line %zu: longer than %d bytes", path, lineno + 1,
                  SM_MAX_LINE - 1);
        goto out;
    }
    if (r == -2) {
        rc = fail(err, SM_E_IO, "%s: read error after line %zu", path, lineno);
        goto out;
    }
    if (rows < d->n_rows) {
        rc = fail(err, SM_E_FORMAT, "%s: line %zu: file ends after %zu of the header's %zu rows",
                  path, lineno + 1, rows, d->n_rows);
        goto out;
    }
    *out = d;
    d = NULL;
    rc = 0;
out:
    sm_dataset_free(d);
    free(line);
    fclose(f);
    return rc;
}

void sm_dataset_free(struct sm_dataset *d)
{
    if (!d)
        return;
    free(d->x);
    free(d->y);
    free(d);
}

/* ---- training -------------------------------------------------------------- */

void sm_config_default(struct sm_config *c)
{
    c->lr = 0.1;
    c->l2 = 1e-4;
    c->momentum = 0.0;
    c->val_fraction = 0.2;
    c->epochs = 100;
    c->batch = 16;
    c->seed = 1;
}

static int check_config(const struct sm_config *c, struct sm_err *err)
{
    if (!isfinite(c->lr) || c->lr < 0)
        return fail(err, SM_E_ARG, "learning rate must be a finite number >= 0");
    if (!isfinite(c->l2) || c->l2 < 0)
        return fail(err, SM_E_ARG, "l2 must be a finite number >= 0");
    if (!(c->momentum >= 0 && c->momentum < 1))
        return fail(err, SM_E_ARG, "momentum must be in [0, 1)");
    if (!(c->val_fraction > 0 && c->val_fraction < 1))
        return fail(err, SM_E_ARG, "validation fraction must be in (0, 1)");
    if (c->epochs < 1)
        return fail(err, SM_E_ARG, "epochs must be >= 1");
    if (c->batch < 1)
        return fail(err, SM_E_ARG, "batch size must be >= 1");
    return 0;
}

void sm_trainer_free(struct sm_trainer *t)
{
    if (!t)
        return;
    free(t->x_train);
    free(t->x_val);
    free(t->y_train);
    free(t->y_val);
    free(t->mean);
    free(t->scale);
    free(t->w);
    free(t->b);
    free(t->vel_w);
    free(t->vel_b);
    free(t->grad_w);
    free(t->grad_b);
    free(t->logits);
    free(t->order);
    free(t->confusion);
    free(t);
}

/* How many rows of a class of `count` go to validation: the rounded share,
 * but always leaving at least one row of the class for training. */
static size_t val_share(size_t count, double fraction)
{
    size_t v = (size_t)floor((double)count * fraction + 0.5);
    if (count > 0 && v >= count)
        v = count - 1;
    return v;
}

static void standardize(double *x, size_t n, size_t dim, const double *mean, const double *scale)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++)
            x[i * dim + j] = (x[i * dim + j] - mean[j]) / scale[j];
}

int sm_trainer_new(const struct sm_dataset *d, const struct sm_config *cfg, struct sm_trainer **out,
                   struct sm_err *err)
{
    struct sm_trainer *t = NULL;
    size_t *perm = NULL, counts[SM_MAX_CLASSES] = {0}, nval[SM_MAX_CLASSES] = {0};
    size_t n_val = 0, dim, k;
    int rc;

    if (!d || !cfg || !out)
        return fail(err, SM_E_ARG, "sm_trainer_new: NULL argument");
    *out = NULL;
    rc = check_config(cfg, err);
    if (rc != 0)
        return rc;
    dim = d->n_features;
    k = d->n_classes;
    if (k < 2 || k > SM_MAX_CLASSES || dim < 1 || dim > SM_MAX_FEATURES)
        return fail(err, SM_E_ARG, "dataset has %zu classes and %zu features", k, dim);

    for (size_t i = 0; i < d->n_rows; i++) {
        if (d->y[i] < 0 || (size_t)d->y[i] >= k)
            return fail(err, SM_E_ARG, "row %zu: class %d is outside 0..%zu", i, d->y[i], k - 1);
        counts[d->y[i]]++;
    }
    for (size_t c = 0; c < k; c++) {
        nval[c] = val_share(counts[c], cfg->val_fraction);
        n_val += nval[c];
    }
    if (n_val == 0 || n_val >= d->n_rows)
        return fail(err, SM_E_ARG,
                    "%zu rows cannot be split into training and validation at fraction %g",
                    d->n_rows, cfg->val_fraction);

    t = calloc(1, sizeof *t);
    if (!t)
        return fail(err, SM_E_NOMEM, "out of memory");
    t->cfg = *cfg;
    t->n_features = dim;
    t->n_classes = k;
    t->n_val = n_val;
    t->n_train = d->n_rows - n_val;
    t->batch = (size_t)cfg->batch < t->n_train ? (size_t)cfg->batch : t->n_train;
    t->x_train = calloc(t->n_train * dim, sizeof(double));
    t->x_val = calloc(t->n_val * dim, sizeof(double));
    t->y_train = calloc(t->n_train, sizeof(int));
    t->y_val = calloc(t->n_val, sizeof(int));
    t->mean = calloc(dim, sizeof(double));
    t->scale = calloc(dim, sizeof(double));
    t->w = calloc(k * dim, sizeof(double));
    t->b = calloc(k, sizeof(double));
    t->vel_w = calloc(k * dim, sizeof(double));
    t->vel_b = calloc(k, sizeof(double));
    t->grad_w = calloc(k * dim, sizeof(double));
    t->grad_b = calloc(k, sizeof(double));
    t->logits = calloc(k, sizeof(double));
    t->order = calloc(t->n_train, sizeof(size_t));
    t->confusion = calloc(k * k, sizeof(size_t));
    perm = calloc(d->n_rows, sizeof(size_t));
    if (!t->x_train || !t->x_val || !t->y_train || !t->y_val || !t->mean || !t->scale || !t->w ||
        !t->b || !t->vel_w || !t->vel_b || !t->grad_w || !t->grad_b || !t->logits || !t->order ||
        !t->confusion || !perm) {
        rc = fail(err, SM_E_NOMEM, "out of memory for %zu rows", d->n_rows);
        goto out;
    }

    /* Stratified split: visit the rows in a seeded random order and send the
     * first nval[c] rows of each class to validation. */
    sm_rng_seed(&t->rng, cfg->seed);
    for (size_t i = 0; i < d->n_rows; i++)
        perm[i] = i;
    sm_rng_shuffle(&t->rng, perm, d->n_rows);
    size_t ntr = 0, nva = 0, taken[SM_MAX_CLASSES] = {0};
    for (size_t i = 0; i < d->n_rows; i++) {
        size_t src = perm[i];
        int c = d->y[src];
        if (taken[c] < nval[c]) {
            taken[c]++;
            memcpy(t->x_val + nva * dim, d->x + src * dim, dim * sizeof(double));
            t->y_val[nva++] = c;
        } else {
            memcpy(t->x_train + ntr * dim, d->x + src * dim, dim * sizeof(double));
            t->y_train[ntr++] = c;
        }
    }

    /* Standardize with training statistics only. */
    for (size_t i = 0; i < t->n_train; i++)
        for (size_t j = 0; j < dim; j++)
            t->mean[j] += t->x_train[i * dim + j];
    for (size_t j = 0; j < dim; j++)
        t->mean[j] /= (double)t->n_train;
    for (size_t i = 0; i < t->n_train; i++)
        for (size_t j = 0; j < dim; j++) {
            double dv = t->x_train[i * dim + j] - t->mean[j];
            t->scale[j] += dv * dv;
        }
    for (size_t j = 0; j < dim; j++) {
        double sd = sqrt(t->scale[j] / (double)t->n_train);
        t->scale[j] = sd > 1e-12 ? sd : 1.0; /* a constant feature stays 0 */
    }
    standardize(t->x_train, t->n_train, dim, t->mean, t->scale);
    standardize(t->x_val, t->n_val, dim, t->mean, t->scale);

    for (size_t i = 0; i < t->n_train; i++)
        t->order[i] = i;
    *out = t;
    t = NULL;
    rc = 0;
out:
    free(perm);
    sm_trainer_free(t);
    return rc;
}

/* Fills t->logits for one row and returns log(sum(exp(logits))), computed
 * with the largest logit subtracted so exp() cannot overflow. */
static double forward(const struct sm_trainer *t, const double *row)
{
    size_t dim = t->n_features, k = t->n_classes;
    double *z = t->logits, zmax, sum = 0.0;

    for (size_t c = 0; c < k; c++) {
        const double *wc = t->w + c * dim;
        double s = t->b[c];
        for (size_t j = 0; j < dim; j++)
            s += wc[j] * row[j];
        z[c] = s;
    }
    zmax = z[0];
    for (size_t c = 1; c < k; c++)
        if (z[c] > zmax)
            zmax = z[c];
    for (size_t c = 0; c < k; c++)
        sum += exp(z[c] - zmax);
    return zmax + log(sum);
}

int sm_train_epoch(struct sm_trainer *t, sm_batch_fn on_batch, void *ud, struct sm_err *err)
{
    size_t dim = t->n_features, k = t->n_classes;
    const double lr = t->cfg.lr, mu = t->cfg.momentum, l2 = t->cfg.l2;

    sm_rng_shuffle(&t->rng, t->order, t->n_train);
    for (size_t start = 0; start < t->n_train; start += t->batch) {
        size_t m = t->n_train - start < t->batch ? t->n_train - start : t->batch;
        double loss = 0.0;

        memset(t->grad_w, 0, k * dim * sizeof(double));
        memset(t->grad_b, 0, k * sizeof(double));
        for (size_t i = start; i < start + m; i++) {
            const double *row = t->x_train + t->order[i] * dim;
            int y = t->y_train[t->order[i]];
            double lse = forward(t, row);

            loss += lse - t->logits[y];
            for (size_t c = 0; c < k; c++) {
                /* d(cross-entropy)/d(logit c) = p_c - [c == y] */
                double g = exp(t->logits[c] - lse) - (c == (size_t)y ? 1.0 : 0.0);
                double *gw = t->grad_w + c * dim;
                t->grad_b[c] += g;
                for (size_t j = 0; j < dim; j++)
                    gw[j] += g * row[j];
            }
        }
        loss /= (double)m;
        if (!isfinite(loss))
            return fail(err, SM_E_DIVERGED,
                        "training diverged at epoch %d, step %lld (batch loss %g); lower the "
                        "learning rate",
                        t->epoch + 1, (long long)t->step + 1, loss);

        for (size_t c = 0; c < k; c++) {
            for (size_t j = 0; j < dim; j++) {
                size_t p = c * dim + j;
                double g = t->grad_w[p] / (double)m + l2 * t->w[p];
                t->vel_w[p] = mu * t->vel_w[p] - lr * g;
                t->w[p] += t->vel_w[p];
            }
            t->vel_b[c] = mu * t->vel_b[c] - lr * (t->grad_b[c] / (double)m);
            t->b[c] += t->vel_b[c];
        }
        t->step++;
        if (on_batch) {
            int cb = on_batch(ud, t->step, loss);
            if (cb != 0)
                return cb;
        }
    }
    t->epoch++;
    return 0;
}

void sm_evaluate(struct sm_trainer *t, enum sm_split split, struct sm_metrics *m)
{
    size_t dim = t->n_features, k = t->n_classes;
    size_t n = split == SM_TRAIN ? t->n_train : t->n_val;
    const double *x = split == SM_TRAIN ? t->x_train : t->x_val;
    const int *y = split == SM_TRAIN ? t->y_train : t->y_val;
    double loss = 0.0;

    memset(t->confusion, 0, k * k * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        double lse = forward(t, x + i * dim);
        size_t best = 0;
        loss += lse - t->logits[y[i]];
        for (size_t c = 1; c < k; c++)
            if (t->logits[c] > t->logits[best])
                best = c;
        t->confusion[(size_t)y[i] * k + best]++;
    }
    sm_metrics_from_confusion(t->confusion, k, m);
    m->loss = n ? loss / (double)n : 0.0;
}

size_t sm_predict(struct sm_trainer *t, enum sm_split split, size_t i, int *truth)
{
    size_t dim = t->n_features, best = 0;
    const double *x = split == SM_TRAIN ? t->x_train : t->x_val;

    forward(t, x + i * dim);
    for (size_t c = 1; c < t->n_classes; c++)
        if (t->logits[c] > t->logits[best])
            best = c;
    *truth = (split == SM_TRAIN ? t->y_train : t->y_val)[i];
    return best;
}

void sm_metrics_from_confusion(const size_t *cm, size_t k, struct sm_metrics *m)
{
    size_t total = 0, correct = 0, labels = 0;
    double p_sum = 0.0, r_sum = 0.0, f_sum = 0.0;

    for (size_t c = 0; c < k; c++) {
        size_t tp = cm[c * k + c], predicted = 0, actual = 0;
        for (size_t o = 0; o < k; o++) {
            predicted += cm[o * k + c];
            actual += cm[c * k + o];
        }
        total += actual;
        correct += tp;
        if (predicted == 0 && actual == 0)
            continue; /* a class absent from both sides does not count */
        double p = predicted ? (double)tp / (double)predicted : 0.0;
        double r = actual ? (double)tp / (double)actual : 0.0;
        p_sum += p;
        r_sum += r;
        f_sum += p + r > 0 ? 2.0 * p * r / (p + r) : 0.0;
        labels++;
    }
    m->n = total;
    m->accuracy = total ? (double)correct / (double)total : 0.0;
    m->precision = labels ? p_sum / (double)labels : 0.0;
    m->recall = labels ? r_sum / (double)labels : 0.0;
    m->f1 = labels ? f_sum / (double)labels : 0.0;
}
