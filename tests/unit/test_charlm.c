/*
 * test_charlm.c: the character-level language model of examples/charlm.c:
 * its backward pass against finite differences of its loss, the examples
 * a word list makes, a loss that falls with training, deterministic
 * sampling, and the model file: a round trip, then every kind of damage
 * (magic, sizes, truncation, trailing bytes, a NaN, a repeated vocabulary
 * byte) refused with a message.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charlm.h"

static const char *const WORDS[] = {"anna", "bob",  "carla", "dan",  "emma",  "frank", "greta",
                                    "hans", "ina",  "jan",   "karl", "lena",  "max",   "nina",
                                    "otto", "paul", "rosa",  "sara", "tom",   "ute",   "vera",
                                    "walt", "xena", "yann",  "zoe",  "bella", "carl",  "dora"};
#define NW (sizeof WORDS / sizeof WORDS[0])

static void model(struct lm_model *m, int context, int embed, int hidden, uint64_t seed)
{
    char chars[LM_MAX_VOCAB];
    int vocab;
    struct lm_rng r;
    struct lm_config c = {.context = context, .embed = embed, .hidden = hidden};
    lm_rng_seed(&r, seed);
    cr_assert_eq(lm_vocab_of(WORDS, NW, chars, &vocab), 0);
    cr_assert_eq(lm_init(m, &c, chars, vocab, &r), 0);
}

Test(charlm, vocabulary_and_examples)
{
    struct lm_model m;
    struct lm_data d;
    size_t skipped;
    const char *const words[] = {"ab", "ba", "a.b", "abc"};

    model(&m, 2, 4, 8, 1);
    cr_assert_eq(m.chars[0], '.');
    cr_assert_eq(m.chars[1], 'a');
    int seen[256] = {0}, distinct = 0;
    for (size_t i = 0; i < NW; i++)
        for (const char *p = WORDS[i]; *p; p++)
            distinct += !seen[(unsigned char)*p]++;
    cr_assert_eq(m.vocab, 1 + distinct, "the boundary and each letter used: %d", m.vocab);
    for (int i = 2; i < m.vocab; i++)
        cr_assert_lt(m.chars[i - 1], m.chars[i], "sorted");
    cr_assert_eq(lm_data_build(&m, words, 2, &d, &skipped), 0);
    cr_assert_eq(d.n, 6, "each word of n letters makes n + 1 examples");
    /* "ab": (.. -> a) (.a -> b) (ab -> .) */
    uint8_t want_x[] = {0, 0, 0, 1, 1, 2}, want_y[] = {1, 2, 0};
    cr_assert_eq(memcmp(d.x, want_x, 6), 0);
    cr_assert_eq(memcmp(d.y, want_y, 3), 0);
    lm_data_free(&d);
    const char *const bad[] = {"a.b"};
    char chars[LM_MAX_VOCAB];
    int v;
    cr_assert_eq(lm_vocab_of(bad, 1, chars, &v), -1, "a word may not hold the boundary");
    lm_free(&m);
}

Test(charlm, backward_pass_matches_finite_differences)
{
    struct lm_model m;
    struct lm_data d;
    struct lm_trainer t;
    size_t skipped, ex[16];

    model(&m, 3, 5, 7, 42);
    cr_assert_eq(lm_data_build(&m, WORDS, NW, &d, &skipped), 0);
    cr_assert_eq(lm_trainer_init(&t, &m, LM_SGD, 0.1, 16), 0);
    for (int i = 0; i < 16; i++)
        ex[i] = (size_t)(i * 7) % d.n;
    /* the loss of exactly those examples */
    struct lm_data sub = {.context = 3, .n = 16};
    sub.x = malloc(16 * 3);
    sub.y = malloc(16);
    for (int i = 0; i < 16; i++) {
        memcpy(sub.x + i * 3, d.x + ex[i] * 3, 3);
        sub.y[i] = d.y[ex[i]];
    }
    double l0 = lm_grad(&m, &t, &d, ex, 16);
    cr_assert(fabs(l0 - lm_loss(&m, &sub, 0)) < 1e-12, "same loss both ways");
    double worst = 0;
    for (size_t i = 0; i < m.n_params; i += 3) {
        double keep = m.params[i], h = 1e-5;
        m.params[i] = keep + h;
        double up = lm_loss(&m, &sub, 0);
        m.params[i] = keep - h;
        double down = lm_loss(&m, &sub, 0);
        m.params[i] = keep;
        double num = (up - down) / (2 * h), an = t.grad[i];
        double rel = fabs(num - an) / fmax(1e-6, fabs(num) + fabs(an));
        worst = rel > worst ? rel : worst;
        cr_assert(rel < 1e-4, "param %zu: analytic %.10g, numeric %.10g", i, an, num);
    }
    cr_assert(worst < 1e-4);
    free(sub.x);
    free(sub.y);
    lm_trainer_free(&t);
    lm_data_free(&d);
    lm_free(&m);
}

Test(charlm, loss_falls_and_runs_are_deterministic)
{
    double last[2] = {0};
    char first_sample[2][64];
    for (int k = 0; k < 2; k++) {
        struct lm_model m;
        struct lm_data d;
        struct lm_trainer t;
        struct lm_rng r;
        size_t skipped;
        model(&m, 3, 8, 32, 7);
        cr_assert_eq(lm_data_build(&m, WORDS, NW, &d, &skipped), 0);
        cr_assert_eq(lm_trainer_init(&t, &m, LM_ADAM, 0.01, 32), 0);
        lm_rng_seed(&r, 3);
        double before = lm_loss(&m, &d, 0);
        cr_assert(fabs(before - log((double)m.vocab)) < 0.2, "starts near ln V: %g", before);
        for (int s = 0; s < 300; s++)
            lm_train_step(&m, &t, &d, &r);
        last[k] = lm_loss(&m, &d, 0);
        cr_assert_lt(last[k], before - 1.0, "loss falls: %g -> %g", before, last[k]);
        lm_sample(&m, &r, 1.0, first_sample[k], sizeof first_sample[k]);
        lm_trainer_free(&t);
        lm_data_free(&d);
        lm_free(&m);
    }
    cr_assert_eq(last[0], last[1], "the same seed gives the same run");
    cr_assert_str_eq(first_sample[0], first_sample[1]);
}

static char path[256];

static void save_sample(struct lm_model *m)
{
    snprintf(path, sizeof path, "/tmp/charlm-test-%d.bin", (int)getpid());
    model(m, 2, 3, 4, 9);
    cr_assert_eq(lm_save(m, path), 0);
}

/* Rewrites byte `at` of the file (or cuts it to `at` bytes when cut). */
static void damage(long at, int cut, unsigned char v)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    if (cut) {
        fclose(f);
        cr_assert_eq(truncate(path, at), 0);
        return;
    }
    fseek(f, at, SEEK_SET);
    fputc(v, f);
    fclose(f);
}

static void refused(const char *needle)
{
    struct lm_model m;
    char why[300];
    cr_assert_eq(lm_load(&m, path, why, sizeof why), -1, "damaged file loaded");
    cr_assert(strstr(why, needle), "\"%s\" not in \"%s\"", needle, why);
}

Test(charlm, model_file_round_trip_and_damage)
{
    struct lm_model a, b;
    char why[300];

    save_sample(&a);
    cr_assert_eq(lm_load(&b, path, why, sizeof why), 0, "%s", why);
    cr_assert_eq(b.n_params, a.n_params);
    cr_assert_eq(memcmp(a.params, b.params, a.n_params * sizeof(double)), 0);
    cr_assert_eq(memcmp(a.chars, b.chars, (size_t)a.vocab), 0);
    lm_free(&b);
    long size = 24 + a.vocab + (long)a.n_params * 8;

    damage(0, 0, 'X');
    refused("bad magic");
    lm_save(&a, path);
    damage(20, 0, 0xff); /* hidden's low byte: 255 + ... fine, the high byte: */
    damage(23, 0, 0x7f);
    refused("sizes out of range");
    lm_save(&a, path);
    damage(size - 3, 1, 0);
    refused("cut short");
    lm_save(&a, path);
    FILE *f = fopen(path, "ab");
    fputc(0, f);
    fclose(f);
    refused("bytes after the last parameter");
    lm_save(&a, path);
    damage(size - 1, 0, 0x7f); /* the top byte of the last double: with 0xff... */
    damage(size - 2, 0, 0xf8); /* exponent all ones, mantissa non-zero: NaN */
    refused("not finite");
    lm_save(&a, path);
    damage(24 + 2, 0, (unsigned char)a.chars[1]);
    refused("repeat");
    unlink(path);
    lm_free(&a);
}
