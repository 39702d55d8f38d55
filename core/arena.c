#include "core/arena.h"

qsnn_status qsnn_arena_create(qsnn_ctx *ctx, size_t bytes, qsnn_arena **out) {
    *out = NULL;
    qsnn_arena *a = qsnn_calloc(ctx, 1, sizeof *a);
    if (!a) return QSNN_ERR_NOMEM;
    a->base = qsnn_malloc(ctx, bytes);
    if (!a->base) {
        qsnn_free(ctx, a);
        return QSNN_ERR_NOMEM;
    }
    a->size = bytes;
    a->ctx = ctx;
    *out = a;
    return QSNN_OK;
}

void qsnn_arena_destroy(qsnn_arena **a) {
    if (!a || !*a) return;
    qsnn_ctx *ctx = (*a)->ctx;
    qsnn_free(ctx, (*a)->base);
    qsnn_free(ctx, *a);
    *a = NULL;
}

void *qsnn_arena_alloc(qsnn_arena *a, size_t bytes) {
    size_t need = qsnn_arena_round(bytes);
    if (need > a->size - a->used) {
        qsnn_fail(a->ctx, QSNN_ERR_NOMEM, "arena exhausted: %zu bytes requested, %zu of %zu free", bytes,
                  a->size - a->used, a->size);
        return NULL;
    }
    void *p = a->base + a->used;
    a->used += need;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void qsnn_arena_reset(qsnn_arena *a) { a->used = 0; }
