/*
 * charlm.c: the character-level MLP language model of charlm.h: data
 * building, forward and backward passes over a mini-batch, Adam and SGD,
 * sampling, and the model file. Straight loops over row-major arrays; the
 * sizes are small (a few thousand parameters), so clarity beats blocking.
 */
#include "charlm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers ---------------------------------------------------------- */

void lm_rng_seed(struct lm_rng *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (r->s == 0)
        r->s = 1;
    for (int i = 0; i < 8; i++)
        lm_rng_next(r);
}

uint64_t lm_rng_next(struct lm_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double lm_rng_uniform(struct lm_rng *r)
{
    return (double)(lm_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_normal(struct lm_rng *r)
{
    double u = lm_rng_uniform(r), v = lm_rng_uniform(r);
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- vocabulary and data ------------------------------------------------------ */

int lm_vocab_of(const char *const *words, size_t n, char chars[LM_MAX_VOCAB], int *vocab)
{
    int seen[256] = {0}, k = 1;

    for (size_t i = 0; i < n; i++)
        for (const unsigned char *p = (const unsigned char *)words[i]; *p; p++) {
            if (*p == LM_BOUNDARY || *p < 0x21)
                return -1;
            seen[*p] = 1;
        }
    chars[0] = LM_BOUNDARY;
    for (int c = 0; c < 256; c++)
        if (seen[c]) {
            if (k == LM_MAX_VOCAB)
                return -1;
            chars[k++] = (char)c;
        }
    *vocab = k;
    return 0;
}

int lm_index(const struct lm_model *m, char ch)
{
    for (int i = 0; i < m->vocab; i++)
        if (m->chars[i] == ch)
            return i;
    return -1;
}

int lm_data_build(const struct lm_model *m, const char *const *words, size_t n, struct lm_data *d,
                  size_t *skipped)
{
    int B = m->cfg.context, idx[256];
    size_t total = 0;

    memset(d, 0, sizeof(*d));
    *skipped = 0;
    for (int c = 0; c < 256; c++)
        idx[c] = lm_index(m, (char)c);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(words[i]);
        int ok = len > 0 && len <= LM_MAX_WORD;
        for (size_t j = 0; ok && j < len; j++)
            ok = idx[(unsigned char)words[i][j]] > 0;
        if (ok)
            total += len + 1;
        else
            (*skipped)++;
    }
    d->context = B;
    d->x = malloc(total * (size_t)B + 1);
    d->y = malloc(total + 1);
    if (!d->x || !d->y) {
        lm_data_free(d);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(words[i]);
        int ok = len > 0 && len <= LM_MAX_WORD;
        for (size_t j = 0; ok && j < len; j++)
            ok = idx[(unsigned char)words[i][j]] > 0;
        if (!ok)
            continue;
        uint8_t ctx[LM_MAX_CONTEXT] = {0};
        for (size_t j = 0; j <= len; j++) {
            int y = j < len ? idx[(unsigned char)words[i][j]] : 0;
            memcpy(d->x + d->n * (size_t)B, ctx, (size_t)B);
            d->y[d->n++] = (uint8_t)y;
            memmove(ctx, ctx + 1, (size_t)B - 1);
            ctx[B - 1] = (uint8_t)y;
        }
    }
    return 0;
}

void lm_data_free(struct lm_data *d)
{
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof(*d));
}

/* ---- the model ------------------------------------------------------------------ */

static int check_cfg(const struct lm_config *c, int vocab)
{
    return c->context >= 1 && c->context <= LM_MAX_CONTEXT && c->embed >= 1 &&
                   c->embed <= LM_MAX_EMBED && c->hidden >= 1 && c->hidden <= LM_MAX_HIDDEN &&
                   vocab >= 2 && vocab <= LM_MAX_VOCAB
               ? 0
               : -1;
}

static int alloc_params(struct lm_model *m, const struct lm_config *cfg, int vocab)
{
    size_t V = (size_t)vocab, E = (size_t)cfg->embed, B = (size_t)cfg->context,
           H = (size_t)cfg->hidden;
    m->cfg = *cfg;
    m->vocab = vocab;
    m->n_params = V * E + B * E * H + H + H * V + V;
    m->params = calloc(m->n_params, sizeof(double));
    if (!m->params)
        return -1;
    m->C = m->params;
    m->W1 = m->C + V * E;
    m->b1 = m->W1 + B * E * H;
    m->W2 = m->b1 + H;
    m->b2 = m->W2 + H * V;
    return 0;
}

int lm_init(struct lm_model *m, const struct lm_config *cfg, const char *chars, int vocab,
            struct lm_rng *rng)
{
    memset(m, 0, sizeof(*m));
    if (check_cfg(cfg, vocab) || alloc_params(m, cfg, vocab))
        return -1;
    memcpy(m->chars, chars, (size_t)vocab);
    size_t V = (size_t)vocab, E = (size_t)cfg->embed, B = (size_t)cfg->context,
           H = (size_t)cfg->hidden;
    double g1 = (5.0 / 3.0) / sqrt((double)(B * E));
    for (size_t i = 0; i < V * E; i++)
        m->C[i] = rng_normal(rng);
    for (size_t i = 0; i < B * E * H; i++)
        m->W1[i] = rng_normal(rng) * g1;
    for (size_t i = 0; i < H * V; i++)
        m->W2[i] = rng_normal(rng) * 0.01;
    return 0;
}

void lm_free(struct lm_model *m)
{
    free(m->params);
    memset(m, 0, sizeof(*m));
}

/* Forward pass of one example: fills x (B*E), h (H) and p (V); returns
 * -log p[y] (y < 0: no loss). */
static double forward(const struct lm_model *m, const uint8_t *ctx, int y, double *x, double *h,
                      double *p)
{
    int V = m->vocab, E = m->cfg.embed, B = m->cfg.context, H = m->cfg.hidden, BE = B * E;

    for (int j = 0; j < B; j++)
        memcpy(x + j * E, m->C + (size_t)ctx[j] * (size_t)E, (size_t)E * sizeof(double));
    for (int k = 0; k < H; k++)
        h[k] = m->b1[k];
    for (int i = 0; i < BE; i++) {
        const double xi = x[i], *w = m->W1 + (size_t)i * (size_t)H;
        for (int k = 0; k < H; k++)
            h[k] += xi * w[k];
    }
    for (int k = 0; k < H; k++)
        h[k] = tanh(h[k]);
    for (int v = 0; v < V; v++)
        p[v] = m->b2[v];
    for (int k = 0; k < H; k++) {
        const double hk = h[k], *w = m->W2 + (size_t)k * (size_t)V;
        for (int v = 0; v < V; v++)
            p[v] += hk * w[v];
    }
    double mx = p[0], sum = 0;
    for (int v = 1; v < V; v++)
        mx = p[v] > mx ? p[v] : mx;
    for (int v = 0; v < V; v++) {
        p[v] = exp(p[v] - mx);
        sum += p[v];
    }
    for (int v = 0; v < V; v++)
        p[v] /= sum;
    return y >= 0 ? -log(p[y] > 1e-300 ? p[y] : 1e-300) : 0.0;
}

int lm_trainer_init(struct lm_trainer *t, const struct lm_model *m, enum lm_optimizer opt,
                    double lr, int batch)
{
    memset(t, 0, sizeof(*t));
    if (batch < 1 || !(lr > 0) || !isfinite(lr))
        return -1;
    t->opt = opt;
    t->lr = lr;
    t->batch = batch;
    t->grad = calloc(m->n_params, sizeof(double));
    t->m1 = calloc(m->n_params, sizeof(double));
    t->m2 = calloc(m->n_params, sizeof(double));
    size_t per =
        (size_t)(m->cfg.context * m->cfg.embed) * 2 + (size_t)m->cfg.hidden * 2 + (size_t)m->vocab;
    t->work_n = per;
    t->work = calloc(per, sizeof(double));
    t->picks = calloc((size_t)batch, sizeof(size_t));
    if (!t->grad || !t->m1 || !t->m2 || !t->work || !t->picks) {
        lm_trainer_free(t);
        return -1;
    }
    return 0;
}

void lm_trainer_free(struct lm_trainer *t)
{
    free(t->grad);
    free(t->m1);
    free(t->m2);
    free(t->work);
    free(t->picks);
    memset(t, 0, sizeof(*t));
}

double lm_grad(const struct lm_model *m, struct lm_trainer *t, const struct lm_data *d,
               const size_t *examples, int n)
{
    int V = m->vocab, E = m->cfg.embed, B = m->cfg.context, H = m->cfg.hidden, BE = B * E;
    double *x = t->work, *dx = x + BE, *h = dx + BE, *dh = h + H, *p = dh + H;
    double *gC = t->grad, *gW1 = gC + (m->W1 - m->C), *gb1 = gC + (m->b1 - m->C),
           *gW2 = gC + (m->W2 - m->C), *gb2 = gC + (m->b2 - m->C);
    double loss = 0, inv = 1.0 / n;

    memset(t->grad, 0, m->n_params * sizeof(double));
    for (int b = 0; b < n; b++) {
        size_t e = examples[b];
        const uint8_t *ctx = d->x + e * (size_t)B;
        int y = d->y[e];
        loss += forward(m, ctx, y, x, h, p);
        p[y] -= 1.0; /* dlogits = p - onehot(y), scaled by 1/batch below */
        for (int v = 0; v < V; v++)
            p[v] *= inv;
        for (int v = 0; v < V; v++)
            gb2[v] += p[v];
        for (int k = 0; k < H; k++) {
            double *g = gW2 + (size_t)k * (size_t)V, s = 0;
            const double *w = m->W2 + (size_t)k * (size_t)V;
            for (int v = 0; v < V; v++) {
                g[v] += h[k] * p[v];
                s += w[v] * p[v];
            }
            dh[k] = s * (1.0 - h[k] * h[k]); /* through tanh */
        }
        for (int k = 0; k < H; k++)
            gb1[k] += dh[k];
        for (int i = 0; i < BE; i++) {
            double *g = gW1 + (size_t)i * (size_t)H, s = 0;
            const double *w = m->W1 + (size_t)i * (size_t)H;
            for (int k = 0; k < H; k++) {
                g[k] += x[i] * dh[k];
                s += w[k] * dh[k];
            }
            dx[i] = s;
        }
        for (int j = 0; j < B; j++) {
            double *g = gC + (size_t)ctx[j] * (size_t)E;
            for (int q = 0; q < E; q++)
                g[q] += dx[j * E + q];
        }
    }
    return loss * inv;
}

double lm_train_step(struct lm_model *m, struct lm_trainer *t, const struct lm_data *d,
                     struct lm_rng *rng)
{
    for (int b = 0; b < t->batch; b++)
        t->picks[b] = (size_t)(lm_rng_next(rng) % d->n);
    double loss = lm_grad(m, t, d, t->picks, t->batch);
    t->t++;
    if (t->opt == LM_SGD) {
        for (size_t i = 0; i < m->n_params; i++)
            m->params[i] -= t->lr * t->grad[i];
    } else {
        const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
        double c1 = 1.0 - pow(b1, (double)t->t), c2 = 1.0 - pow(b2, (double)t->t);
        for (size_t i = 0; i < m->n_params; i++) {
            double g = t->grad[i];
            t->m1[i] = b1 * t->m1[i] + (1 - b1) * g;
            t->m2[i] = b2 * t->m2[i] + (1 - b2) * g * g;
            m->params[i] -= t->lr * (t->m1[i] / c1) / (sqrt(t->m2[i] / c2) + eps);
        }
    }
    return loss;
}

double lm_loss(const struct lm_model *m, const struct lm_data *d, size_t max)
{
    int B = m->cfg.context, BE = B * m->cfg.embed;
    size_t n = max && max < d->n ? max : d->n;
    double *x = malloc(((size_t)BE + (size_t)m->cfg.hidden + (size_t)m->vocab) * sizeof(double));
    double loss = 0;

    if (!x || n == 0) {
        free(x);
        return NAN;
    }
    double *h = x + BE, *p = h + m->cfg.hidden;
    for (size_t e = 0; e < n; e++)
        loss += forward(m, d->x + e * (size_t)B, d->y[e], x, h, p);
    free(x);
    return loss / (double)n;
}

size_t lm_sample(const struct lm_model *m, struct lm_rng *rng, double temp, char *out, size_t cap)
{
    int B = m->cfg.context, BE = B * m->cfg.embed;
    uint8_t ctx[LM_MAX_CONTEXT] = {0};
    double x[LM_MAX_CONTEXT * LM_MAX_EMBED], h[LM_MAX_HIDDEN], p[LM_MAX_VOCAB];
    size_t n = 0;

    (void)BE;
    while (n < LM_MAX_WORD && n + 1 < cap) {
        forward(m, ctx, -1, x, h, p);
        if (temp != 1.0) {
            double sum = 0;
            for (int v = 0; v < m->vocab; v++)
                sum += (p[v] = pow(p[v], 1.0 / temp));
            for (int v = 0; v < m->vocab; v++)
                p[v] /= sum;
        }
        double u = lm_rng_uniform(rng), acc = 0;
        int pick = m->vocab - 1;
        for (int v = 0; v < m->vocab; v++) {
            acc += p[v];
            if (u < acc) {
                pick = v;
                break;
            }
        }
        if (pick == 0)
            break;
        out[n++] = m->chars[pick];
        memmove(ctx, ctx + 1, (size_t)B - 1);
        ctx[B - 1] = (uint8_t)pick;
    }
    out[n] = '\0';
    return n;
}

/* ---- files ------------------------------------------------------------------------ */

#define MAGIC "TRKCLM1\n"

static void put_u32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int lm_save(const struct lm_model *m, const char *path)
{
    FILE *f = fopen(path, "wb");
    unsigned char hdr[16];

    if (!f)
        return -1;
    put_u32(hdr, (uint32_t)m->vocab);
    put_u32(hdr + 4, (uint32_t)m->cfg.context);
    put_u32(hdr + 8, (uint32_t)m->cfg.embed);
    put_u32(hdr + 12, (uint32_t)m->cfg.hidden);
    int ok = fwrite(MAGIC, 1, 8, f) == 8 && fwrite(hdr, 1, 16, f) == 16 &&
             fwrite(m->chars, 1, (size_t)m->vocab, f) == (size_t)m->vocab;
    for (size_t i = 0; ok && i < m->n_params; i++) {
        uint64_t u;
        unsigned char b[8];
        memcpy(&u, &m->params[i], 8);
        for (int k = 0; k < 8; k++)
            b[k] = (unsigned char)(u >> (8 * k));
        ok = fwrite(b, 1, 8, f) == 8;
    }
    int e = errno;
    if (fclose(f) != 0 || !ok) {
        errno = ok ? errno : (e ? e : EIO);
        return -1;
    }
    return 0;
}

int lm_load(struct lm_model *m, const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "rb");
    unsigned char head[24];
    int ret = -1;

    memset(m, 0, sizeof(*m));
    if (!f) {
        snprintf(why, cap, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fread(head, 1, 24, f) != 24 || memcmp(head, MAGIC, 8) != 0) {
        snprintf(why, cap, "%s: not a charlm model file (bad magic)", path);
        goto out;
    }
    uint32_t V = get_u32(head + 8);
    struct lm_config cfg = {.context = (int)get_u32(head + 12),
                            .embed = (int)get_u32(head + 16),
                            .hidden = (int)get_u32(head + 20)};
    if (V > LM_MAX_VOCAB || get_u32(head + 12) > LM_MAX_CONTEXT ||
        get_u32(head + 16) > LM_MAX_EMBED || get_u32(head + 20) > LM_MAX_HIDDEN ||
        check_cfg(&cfg, (int)V)) {
        snprintf(why, cap, "%s: sizes out of range (vocab %u, context %d, embed %d, hidden %d)",
                 path, V, cfg.context, cfg.embed, cfg.hidden);
        goto out;
    }
    if (alloc_params(m, &cfg, (int)V)) {
        snprintf(why, cap, "out of memory");
        goto out;
    }
    if (fread(m->chars, 1, V, f) != V || m->chars[0] != LM_BOUNDARY) {
        snprintf(why, cap, "%s: vocabulary cut short or not starting with '.'", path);
        goto out;
    }
    for (uint32_t i = 1; i < V; i++)
        for (uint32_t j = 0; j < i; j++)
            if ((unsigned char)m->chars[i] < 0x21 || m->chars[i] == m->chars[j]) {
                snprintf(why, cap, "%s: vocabulary entry %u is a control byte or a repeat", path,
                         i);
                goto out;
            }
    for (size_t i = 0; i < m->n_params; i++) {
        unsigned char b[8];
        uint64_t u = 0;
        if (fread(b, 1, 8, f) != 8) {
            snprintf(why, cap, "%s: cut short at parameter %zu of %zu", path, i, m->n_params);
            goto out;
        }
        for (int k = 0; k < 8; k++)
            u |= (uint64_t)b[k] << (8 * k);
        memcpy(&m->params[i], &u, 8);
        if (!isfinite(m->params[i])) {
            snprintf(why, cap, "%s: parameter %zu is not finite", path, i);
            goto out;
        }
    }
    if (fgetc(f) != EOF) {
        snprintf(why, cap, "%s: bytes after the last parameter", path);
        goto out;
    }
    ret = 0;
out:
    fclose(f);
    if (ret)
        lm_free(m);
    return ret;
}
