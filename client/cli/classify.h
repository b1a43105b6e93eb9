/*
 * classify.h: the figures of a classification, computed from the true and
 * predicted class of each sample (prefix cls_): the confusion matrix, per
 * class precision, recall, F1 and support, accuracy, and the macro, micro
 * and weighted averages, with the same definitions as scikit-learn's
 * precision_recall_fscore_support and classification_report:
 *
 *   precision = tp / (tp + fp)     recall = tp / (tp + fn)
 *   F1 = 2 tp / (2 tp + fp + fn)   support = tp + fn (samples of the class)
 *
 * Classes are every label seen in either list, in bytewise order. Rows of
 * the confusion matrix are true classes, columns predicted ones. Zero
 * division (a class never predicted has no precision; one never true has no
 * recall) gives 0 and is reported through the zero_* flags, so the caller
 * can warn naming the class. macro is the plain mean over classes, weighted
 * the mean weighted by support, micro the figures of all tp, fp and fn
 * summed (for single-label data all three equal accuracy).
 *
 * Memory: n classes take n^2 counts; cls_build refuses more than
 * CLS_MAX_CLASSES.
 */
#ifndef TRACK_CLASSIFY_H
#define TRACK_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#define CLS_MAX_CLASSES 1000

struct cls_class {
    const char *label; /* points into the caller's strings */
    double precision, recall, f1;
    int64_t support, predicted, tp;
    int zero_precision; /* never predicted: precision 0 by the rule */
    int zero_recall;    /* no true sample: recall 0 by the rule */
};

struct cls_avg {
    double precision, recall, f1;
};

struct cls_report {
    size_t n_classes;
    struct cls_class *classes;
    int64_t *matrix; /* n_classes x n_classes, row = true class */
    int64_t samples, correct;
    double accuracy;
    struct cls_avg macro, micro, weighted;
};

/* Computes the report of n samples (truth[i], pred[i]; NUL-terminated
 * labels, kept by the caller while the report lives). 0, or -1 with msg:
 * no samples, more than CLS_MAX_CLASSES classes, out of memory. */
int cls_build(const char *const *truth, const char *const *pred, size_t n, struct cls_report *r,
              char *msg, size_t cap);
void cls_free(struct cls_report *r);
/* The average named "macro", "micro" or "weighted"; NULL for another name. */
const struct cls_avg *cls_average(const struct cls_report *r, const char *name);

#endif
