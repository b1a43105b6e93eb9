/*
 * charlm.h: a character-level language model (prefix lm_), the MLP of
 * Bengio et al. 2003 ("A Neural Probabilistic Language Model") over words:
 * each of the `context` previous characters is looked up in an embedding
 * table, the embeddings are concatenated into one tanh hidden layer, and a
 * softmax gives the next character. The boundary character '.' starts and
 * ends every word. Pure C, no track dependency (train_charlm.c reports).
 *
 *   x = [C[c1] .. C[cB]]          (B * E)
 *   h = tanh(x W1 + b1)           (H)
 *   p = softmax(h W2 + b2)        (V)
 *
 * Trained with mini-batch Adam or SGD on cross-entropy; the loss of a set is
 * the mean negative log-likelihood in nats, its perplexity exp(loss).
 * Deterministic: one xorshift generator, seeded, drives the initialisation,
 * the batches and the samples.
 *
 * Files (lm_save / lm_load): "TRKCLM1\n", then V, B, E, H as little-endian
 * uint32, the V vocabulary bytes, then every parameter as a little-endian
 * IEEE double (C, W1, b1, W2, b2). lm_load treats the file as untrusted:
 * sizes bounded (LM_MAX_*), length exact, every value finite.
 */
#ifndef TRACK_CHARLM_H
#define TRACK_CHARLM_H

#include <stddef.h>
#include <stdint.h>

#define LM_MAX_VOCAB   64
#define LM_MAX_CONTEXT 16
#define LM_MAX_EMBED   64
#define LM_MAX_HIDDEN  1024
#define LM_MAX_WORD    32 /* characters of a word, the boundary excluded */
#define LM_BOUNDARY    '.'

struct lm_config {
    int context, embed, hidden;
};

struct lm_model {
    struct lm_config cfg;
    int vocab;                     /* V: the boundary and the letters */
    char chars[LM_MAX_VOCAB];      /* index -> character; chars[0] is '.' */
    double *C, *W1, *b1, *W2, *b2; /* inside one allocation: params */
    double *params;
    size_t n_params;
};

/* The training examples of a word list: for each word and position, the
 * previous `context` character indices and the next one. */
struct lm_data {
    int context;
    size_t n;
    uint8_t *x; /* n * context */
    uint8_t *y; /* n */
};

struct lm_rng {
    uint64_t s;
};
void lm_rng_seed(struct lm_rng *r, uint64_t seed);
uint64_t lm_rng_next(struct lm_rng *r);
double lm_rng_uniform(struct lm_rng *r); /* [0, 1) */

/* The vocabulary of the words: '.', then every byte they use, sorted.
 * -1 when there are more than LM_MAX_VOCAB - 1 distinct bytes or a word
 * holds '.' or a byte below 0x21. */
int lm_vocab_of(const char *const *words, size_t n, char chars[LM_MAX_VOCAB], int *vocab);
/* The index of character ch in m's vocabulary, or -1. */
int lm_index(const struct lm_model *m, char ch);

/* A model of cfg over vocabulary chars[0..vocab), initialised from rng
 * (W1 scaled by 5/3/sqrt(fan-in) for tanh, W2 small, biases 0). 0 or -1 (bad
 * sizes; out of memory). */
int lm_init(struct lm_model *m, const struct lm_config *cfg, const char *chars, int vocab,
            struct lm_rng *rng);
void lm_free(struct lm_model *m);

/* Examples of the words whose every character m knows (the others are
 * counted in *skipped). 0 or -1 (out of memory). */
int lm_data_build(const struct lm_model *m, const char *const *words, size_t n, struct lm_data *d,
                  size_t *skipped);
void lm_data_free(struct lm_data *d);

/* Adam (beta1 0.9, beta2 0.999) or plain SGD. */
enum lm_optimizer { LM_ADAM = 0, LM_SGD = 1 };
struct lm_trainer {
    enum lm_optimizer opt;
    double lr;
    int batch;
    int64_t t;              /* steps taken */
    double *grad, *m1, *m2; /* n_params each */
    double *work;           /* activations of one example */
    size_t work_n;
    size_t *picks; /* the examples of the current batch */
};
int lm_trainer_init(struct lm_trainer *t, const struct lm_model *m, enum lm_optimizer opt,
                    double lr, int batch);
void lm_trainer_free(struct lm_trainer *t);
/* The gradient of the mean loss of examples[0..n) of d into t->grad (the
 * parameters are not changed); returns that mean loss. */
double lm_grad(const struct lm_model *m, struct lm_trainer *t, const struct lm_data *d,
               const size_t *examples, int n);
/* One step on a batch drawn from d with rng; returns the batch's mean loss. */
double lm_train_step(struct lm_model *m, struct lm_trainer *t, const struct lm_data *d,
                     struct lm_rng *rng);
/* The mean loss of at most max examples of d (0: all), from the first. */
double lm_loss(const struct lm_model *m, const struct lm_data *d, size_t max);

/* Draws one word (at most LM_MAX_WORD characters) with temperature temp
 * into out (cap bytes, NUL-terminated); its length. */
size_t lm_sample(const struct lm_model *m, struct lm_rng *rng, double temp, char *out, size_t cap);

/* Writes m to path (0, or -1 with errno); reads a file written so into m
 * (0, or -1 with why set to a message naming the problem). */
int lm_save(const struct lm_model *m, const char *path);
int lm_load(struct lm_model *m, const char *path, char *why, size_t cap);

#endif
