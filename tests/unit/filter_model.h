/*
 * filter_model.h: the model of test_filter_property.c (issue 17), shared by
 * its three files: filter_model.c builds a store of random runs and the
 * same runs in memory, and evaluates a filter's syntax tree and an order
 * over them as the search language says; filter_gen.c generates random
 * filters and orders (trees and their text) from a seeded generator;
 * test_filter_property.c holds the store's answers to the model's.
 */
#ifndef TRACK_TEST_FILTER_MODEL_H
#define TRACK_TEST_FILTER_MODEL_H

#include <stdint.h>

#include "store.h"

#define NRUNS 3000
#define NP    8 /* param keys */
#define NT    6 /* tag keys */
#define NM    8 /* metric keys */
#define VLEN  24

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* the last of each key list is a key no run has */
extern const char *const fm_pkeys[NP + 1], *const fm_tkeys[NT + 1], *const fm_mkeys[NM + 1];
extern const char *const fm_names[7], *const fm_users[4], *const fm_exp_names[3];
extern const char *const fm_status_names[5];
extern struct store_err fm_err;

#define MAX_IN 4

#define MAX_NODES 32

#define MAX_ORDER 3

struct mrun {
    int exp, status, deleted;
    const char *name, *user;
    int64_t start, end, row; /* end 0 while running */
    char hex[33];
    int has_p[NP], has_t[NT], has_m[NM];
    char p[NP][VLEN], t[NT][VLEN];
    int last_null[NM], mm_null[NM]; /* last NaN; no non-NaN point (no min, max) */
    double last[NM], min[NM], max[NM];
};

struct world {
    char dir[256];
    struct store *st;
    struct mrun *r;
    int n;
    int64_t now; /* the model's now_ms (durations of running runs; "1d") */
};

enum term_kind {
    T_METRIC,
    T_PARAM,
    T_TAG,
    T_STATUS,
    T_NAME,
    T_USER,
    T_EXP,
    T_START,
    T_END,
    T_DUR,
    T_RUNID,
    T_LIFE,
};

enum agg { A_LAST, A_MIN, A_MAX };
enum cmp_op { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE, C_IN, C_LIKE, C_ILIKE, C_ISNULL };
enum lit_kind { L_NUM, L_STR, L_DUR };
enum node_kind { N_CMP, N_AND, N_OR, N_NOT };
enum truth { F = 0, T = 1, U = 2 };

struct term {
    int kind, agg, key; /* key: index into fm_pkeys/fm_tkeys/fm_mkeys */
};

struct lit {
    int kind;
    char text[48]; /* L_NUM, L_DUR: as written; L_STR: the string (decoded) */
    double d;      /* L_NUM */
    int64_t ms;    /* L_DUR */
};

struct node {
    int kind, a, b; /* N_AND, N_OR: a and b; N_NOT: a */
    struct term t;
    int op, neg; /* neg: NOT IN, NOT LIKE, NOT ILIKE, IS NOT NULL */
    int nv;
    struct lit v[MAX_IN];
};

struct val {
    int null, text;
    double d;
    const char *s;
};

struct order {
    int n;
    struct term t[MAX_ORDER];
    int desc[MAX_ORDER];
};

struct gen {
    uint64_t s;
    const struct world *w;
    int lifecycle; /* may name lifecycle; set when it did */
    int named_lifecycle;
    struct node nodes[MAX_NODES];
    int nn;
    char text[4096];
    size_t len;
};

struct query {
    char filter[4096], order_text[4096];
    int root; /* -1: no filter */
    int named_lifecycle;
    struct node nodes[MAX_NODES];
    struct order order;
    int limit;
    int exps; /* bit 0 exp-a, bit 1 exp-b; 0: all (NULL) */
};

struct got {
    int n, bad;
    int idx[NRUNS];
};

struct stats {
    int cases, failures, empty, one, all, some, limited, plans[4];
    char first[4096];
};

/* filter_model.c */
uint64_t fm_mix64(uint64_t x);
int fm_rnd(uint64_t *s, int n);
double fm_runif(uint64_t *s);
const char *fm_pick(uint64_t *s, const char *const *v, int n);
int fm_looks_numeric(const char *s);
double fm_cast_real(const char *s);
void fm_must(int rc, const char *what);
void fm_run_id(int i, uint64_t seed, uint8_t id[16]);
void fm_world_build(struct world *w, int n, uint64_t seed);
void fm_world_free(struct world *w);
/* The value term t has for run r; `numeric`: a param or tag as a number. */
struct val fm_term_val(const struct world *w, const struct mrun *r, const struct term *t,
                       int numeric);
void fm_lower(char *s);
int fm_eval(const struct world *w, const struct node *nodes, int id, const struct mrun *r);
int fm_model_list(const struct world *w, const struct query *q, int *out);
#define PICK(s, a) fm_pick((s), (a), COUNT(a))

/* filter_gen.c */
__attribute__((format(printf, 2, 3))) void fm_ap(struct gen *g, const char *fmt, ...);
void fm_lit_num(struct lit *l, const char *text);
void fm_lit_str(struct lit *l, const char *s);
void fm_print_term(struct gen *g, const struct term *t);
void fm_print_node(struct gen *g, int id, int ctx);
void fm_gen_query(const struct world *w, uint64_t seed, int casen, int lifecycle, struct query *q);

#endif
