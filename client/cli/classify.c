/*
 * classify.c: the confusion matrix and the precision, recall and F1 of a
 * classification (classify.h). Labels are mapped to class numbers by a
 * sorted array of the distinct labels and a binary search, so n samples of
 * k classes cost O(n log k) and k^2 counts.
 */
#include "classify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static size_t class_of(const char *const *labels, size_t n, const char *s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(labels[mid], s);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return n; /* never: every label was gathered first */
}

static double ratio(int64_t num, int64_t den)
{
    return den > 0 ? (double)num / (double)den : 0.0;
}

int cls_build(const char *const *truth, const char *const *pred, size_t n, struct cls_report *r,
              char *msg, size_t cap)
{
    const char **all = NULL;
    size_t k = 0;

    memset(r, 0, sizeof(*r));
    if (n == 0) {
        snprintf(msg, cap, "no samples");
        return -1;
    }
    if (n > SIZE_MAX / 2 / sizeof(*all) || !(all = malloc(2 * n * sizeof(*all)))) {
        snprintf(msg, cap, "out of memory for %zu samples", n);
        return -1;
    }
    memcpy(all, truth, n * sizeof(*all));
    memcpy(all + n, pred, n * sizeof(*all));
    qsort(all, 2 * n, sizeof(*all), cmp_str);
    for (size_t i = 0; i < 2 * n; i++)
        if (k == 0 || strcmp(all[k - 1], all[i]) != 0)
            all[k++] = all[i];
    if (k > CLS_MAX_CLASSES) {
        snprintf(msg, cap, "%zu classes: at most %d", k, CLS_MAX_CLASSES);
        free(all);
        return -1;
    }
    r->n_classes = k;
    r->classes = calloc(k, sizeof(*r->classes));
    r->matrix = calloc(k * k, sizeof(*r->matrix));
    if (!r->classes || !r->matrix) {
        snprintf(msg, cap, "out of memory for %zu classes", k);
        free(all);
        cls_free(r);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t t = class_of(all, k, truth[i]), p = class_of(all, k, pred[i]);
        r->matrix[t * k + p]++;
    }
    int64_t tp_all = 0;
    for (size_t c = 0; c < k; c++) {
        struct cls_class *x = &r->classes[c];
        x->label = all[c];
        x->tp = r->matrix[c * k + c];
        for (size_t j = 0; j < k; j++) {
            x->support += r->matrix[c * k + j];
            x->predicted += r->matrix[j * k + c];
        }
        int64_t fp = x->predicted - x->tp, fn = x->support - x->tp;
        x->zero_precision = x->predicted == 0;
        x->zero_recall = x->support == 0;
        x->precision = ratio(x->tp, x->predicted);
        x->recall = ratio(x->tp, x->support);
        x->f1 = ratio(2 * x->tp, 2 * x->tp + fp + fn);
        tp_all += x->tp;
        r->macro.precision += x->precision / (double)k;
        r->macro.recall += x->recall / (double)k;
        r->macro.f1 += x->f1 / (double)k;
        r->weighted.precision += x->precision * (double)x->support / (double)n;
        r->weighted.recall += x->recall * (double)x->support / (double)n;
        r->weighted.f1 += x->f1 * (double)x->support / (double)n;
    }
    r->samples = (int64_t)n;
    r->correct = tp_all;
    r->accuracy = ratio(tp_all, (int64_t)n);
    /* single-label: summed fp and fn are each n - tp, so micro P = R = F1 */
    r->micro.precision = r->micro.recall = r->micro.f1 = r->accuracy;
    free(all); /* the labels themselves are the caller's */
    return 0;
}

void cls_free(struct cls_report *r)
{
    free(r->classes);
    free(r->matrix);
    memset(r, 0, sizeof(*r));
}

const struct cls_avg *cls_average(const struct cls_report *r, const char *name)
{
    if (strcmp(name, "macro") == 0)
        return &r->macro;
    if (strcmp(name, "micro") == 0)
        return &r->micro;
    if (strcmp(name, "weighted") == 0)
        return &r->weighted;
    return NULL;
}
