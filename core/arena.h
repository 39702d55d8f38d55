/* Bump allocator: buffers for the time loop are carved from one block sized before the loop. */
#ifndef QSNN_CORE_ARENA_H
#define QSNN_CORE_ARENA_H

#include <stddef.h>
#include "core/context.h"

typedef struct qsnn_arena {
    unsigned char *base;
    size_t size, used, peak;
    qsnn_ctx *ctx;
} qsnn_arena;

qsnn_status qsnn_arena_create(qsnn_ctx *ctx, size_t bytes, qsnn_arena **out);
void qsnn_arena_destroy(qsnn_arena **a);
/* 64-byte aligned; NULL (with a message in the context) when the arena is full. */
void *qsnn_arena_alloc(qsnn_arena *a, size_t bytes);
/* Size a request would take, for sizing passes. */
static inline size_t qsnn_arena_round(size_t bytes) { return (bytes + 63) & ~(size_t)63; }
void qsnn_arena_reset(qsnn_arena *a);

#endif
