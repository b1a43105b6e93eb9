/*
 * arena.c: per-request bump allocator. A response is built from many small
 * pieces (strings, sub-messages); they all live in one arena and die
 * together after packing, so handlers have no free paths to get wrong.
 */
#include "srv.h"

#include <stdlib.h>
#include <string.h>

struct srv_block {
    struct srv_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK (64 * 1024)

void *srv_alloc(struct srv_arena *a, size_t n)
{
    void *p = srv_alloc_raw(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *srv_alloc_raw(struct srv_arena *a, size_t n)
{
    struct srv_block *b = a->head;
    size_t need = (n + 15) & ~(size_t)15;

    if (need < n)
        return NULL;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->total += need;
    return p;
}

char *srv_strdup(struct srv_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = srv_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void srv_arena_free(struct srv_arena *a)
{
    struct srv_block *b = a->head;
    while (b) {
        struct srv_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}
