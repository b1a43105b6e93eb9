/*
 * softmax.h: a small, dependency-free multinomial logistic (softmax)
 * regression, the model behind the `train_softmax` example.
 *
 * This module owns: loading a labelled CSV dataset (bounded and validated),
 * a deterministic seeded PRNG, the stratified train/validation split,
 * feature standardization fitted on the training rows only, mini-batch
 * gradient descent (learning rate, L2 weight decay, momentum) and the
 * evaluation metrics (cross-entropy, accuracy, macro precision/recall/F1).
 * It knows nothing about track: reporting is the caller's job, through the
 * per-batch callback of sm_train_epoch() and the results of sm_evaluate().
 *
 * Dataset format (scikit-learn's bundled CSVs): a header line
 *     <rows>,<n_features>,<class name 0>,...,<class name K-1>
 * then exactly <rows> lines of <n_features> numbers and one integer class
 * in 0..K-1. Trailing empty lines are allowed; CRLF line ends are accepted.
 *
 * Errors: every function that can fail returns 0 or a negative SM_E_* code
 * and writes a message into the caller's `struct sm_err` (may be NULL).
 */
#ifndef SM_SOFTMAX_H
#define SM_SOFTMAX_H

#include <stddef.h>
#include <stdint.h>

/* Caps on what a dataset file may ask us to allocate. */
#define SM_MAX_ROWS     100000
#define SM_MAX_FEATURES 1024
#define SM_MAX_CLASSES  64
#define SM_MAX_CELLS    (1L << 22) /* rows * features: 32 MiB of doubles */
#define SM_MAX_LINE     65536      /* bytes in one line, newline included */
#define SM_NAME_MAX     64         /* bytes in a class name, NUL included */

enum sm_code {
    SM_OK = 0,
    SM_E_ARG = -1,      /* a bad argument or configuration value */
    SM_E_IO = -2,       /* the file could not be opened or read */
    SM_E_FORMAT = -3,   /* a malformed line; the message names it */
    SM_E_LIMIT = -4,    /* the file asks for more than the SM_MAX_* caps */
    SM_E_NOMEM = -5,    /* allocation failed */
    SM_E_DIVERGED = -6, /* the loss became NaN or infinite */
};

struct sm_err {
    int code;
    char msg[320];
};

/* ---- PRNG ----------------------------------------------------------------- */

/* splitmix64: tiny, fast and good enough for shuffling; the same seed gives
 * the same sequence on every platform. */
struct sm_rng {
    uint64_t state;
};

void sm_rng_seed(struct sm_rng *r, uint64_t seed);
uint64_t sm_rng_next(struct sm_rng *r);
/* A uniform integer in [0, n), n > 0, without modulo bias. */
size_t sm_rng_below(struct sm_rng *r, size_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void sm_rng_shuffle(struct sm_rng *r, size_t *idx, size_t n);

/* ---- dataset --------------------------------------------------------------- */

struct sm_dataset {
    size_t n_rows, n_features, n_classes;
    double *x; /* n_rows * n_features, row-major */
    int *y;    /* n_rows labels in 0..n_classes-1 */
    char class_names[SM_MAX_CLASSES][SM_NAME_MAX];
};

/* Loads the CSV at `path` into a new dataset, released with
 * sm_dataset_free(). Rejects a malformed file with SM_E_FORMAT and a
 * message "<path>: line <n>: <what>", and a file over the caps with
 * SM_E_LIMIT. On failure *out is left NULL. */
int sm_dataset_load(const char *path, struct sm_dataset **out, struct sm_err *err);
/* Frees a dataset from sm_dataset_load(); NULL is a no-op. */
void sm_dataset_free(struct sm_dataset *d);

/* ---- training -------------------------------------------------------------- */

struct sm_config {
    double lr;           /* learning rate, >= 0 */
    double l2;           /* L2 weight decay on the weights (not the biases), >= 0 */
    double momentum;     /* classical momentum in [0, 1); 0: plain SGD */
    double val_fraction; /* share of each class held out for validation, (0, 1) */
    int epochs;          /* >= 1; read by the caller's loop, checked here */
    int batch;           /* mini-batch size >= 1; capped at the training rows */
    uint64_t seed;       /* drives the split and every epoch's shuffle */
};

/* lr 0.1, l2 1e-4, momentum 0, val_fraction 0.2, epochs 100, batch 16, seed 1. */
void sm_config_default(struct sm_config *c);

/* Scores of one pass over a split. Precision, recall and F1 are macro
 * averages over the classes that occur in the truth or the predictions
 * (scikit-learn's `average="macro"`), a zero denominator counting as 0. */
struct sm_metrics {
    double loss; /* mean cross-entropy, without the L2 term */
    double accuracy, precision, recall, f1;
    size_t n;
};

enum sm_split { SM_TRAIN = 0, SM_VAL = 1 };

/* The model and every buffer training needs, allocated once by
 * sm_trainer_new() and freed by sm_trainer_free(). Fields are read-only for
 * callers. */
struct sm_trainer {
    struct sm_config cfg;
    size_t n_features, n_classes;
    size_t n_train, n_val, batch;
    double *x_train, *x_val; /* standardized copies, row-major */
    int *y_train, *y_val;
    double *mean, *scale;    /* per feature, fitted on the training rows */
    double *w, *b;           /* weights [class][feature] and biases */
    double *vel_w, *vel_b;   /* momentum velocities */
    double *grad_w, *grad_b; /* the current batch's gradient */
    double *logits;          /* one row's scores, n_classes */
    size_t *order;           /* this epoch's visiting order of training rows */
    size_t *confusion;       /* [true][predicted], n_classes^2 */
    struct sm_rng rng;
    int epoch;    /* epochs completed */
    int64_t step; /* mini-batches completed, over all epochs */
};

/* Splits `d` (stratified, seeded), standardizes, and sets up a zero-weight
 * model. The trainer copies what it needs: `d` may be freed afterwards.
 * *out is released with sm_trainer_free(); NULL on failure. */
int sm_trainer_new(const struct sm_dataset *d, const struct sm_config *cfg, struct sm_trainer **out,
                   struct sm_err *err);
/* Frees a trainer and all its buffers; NULL is a no-op. */
void sm_trainer_free(struct sm_trainer *t);

/* Called after each mini-batch with the global step (1-based) and the
 * batch's mean cross-entropy measured before the update. A non-zero return
 * stops the epoch, and sm_train_epoch() returns that value. */
typedef int (*sm_batch_fn)(void *ud, int64_t step, double batch_loss);

/* One epoch: shuffles the training rows, then one gradient step per
 * mini-batch. `on_batch` may be NULL. Returns 0, the callback's non-zero
 * value, or SM_E_DIVERGED when a loss is not finite (lower the rate). */
int sm_train_epoch(struct sm_trainer *t, sm_batch_fn on_batch, void *ud, struct sm_err *err);

/* Scores the current model on one split and fills t->confusion. */
void sm_evaluate(struct sm_trainer *t, enum sm_split split, struct sm_metrics *m);
/* The predicted class of row i of a split (i below n_train or n_val), and
 * its true class in *truth. */
size_t sm_predict(struct sm_trainer *t, enum sm_split split, size_t i, int *truth);

/* ---- the model as a file (softmax_model.c) ---------------------------------- */

/* Writes the trained model (standardization, weights, biases) to `path`,
 * atomically (path.tmp, fsync, rename). */
int sm_model_save(const struct sm_trainer *t, const char *path, struct sm_err *err);
/* Replaces t's weights and biases with those saved in `path`. t must come
 * from the same dataset and split (the same --seed): a file of another shape
 * is SM_E_FORMAT, one standardized on other rows SM_E_ARG. On failure t is
 * unchanged. */
int sm_model_load(struct sm_trainer *t, const char *path, struct sm_err *err);

/* Accuracy and macro precision/recall/F1 of a k x k confusion matrix
 * cm[true * k + predicted]; m->loss is left untouched. */
void sm_metrics_from_confusion(const size_t *cm, size_t k, struct sm_metrics *m);

#endif
