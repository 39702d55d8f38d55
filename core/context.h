/* The context: allocator hooks, the last error message, thread count and RNG seed.
 * Every library call that can fail takes a context and leaves a one-line message in it. */
#ifndef QSNN_CORE_CONTEXT_H
#define QSNN_CORE_CONTEXT_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

typedef struct qsnn_alloc_hooks {
    void *(*alloc)(size_t size, size_t align, void *user); /* returns NULL on failure */
    void (*free)(void *ptr, void *user);
    void *user;
} qsnn_alloc_hooks;

typedef struct qsnn_ctx qsnn_ctx;

/* hooks may be NULL (aligned system allocator). threads <= 0 means "all cores". */
qsnn_status qsnn_ctx_create(const qsnn_alloc_hooks *hooks, int threads, uint64_t seed, qsnn_ctx **out);
void qsnn_ctx_destroy(qsnn_ctx **ctx);

/* Sets the thread count used by our OpenMP loops and by BLAS calls made outside them. */
void qsnn_ctx_set_threads(qsnn_ctx *ctx, int threads);
int qsnn_ctx_threads(const qsnn_ctx *ctx);
void qsnn_ctx_set_seed(qsnn_ctx *ctx, uint64_t seed);
uint64_t qsnn_ctx_seed(const qsnn_ctx *ctx);

/* Records a formatted message and returns the status, so callers can `return qsnn_fail(...)`. */
qsnn_status qsnn_fail(qsnn_ctx *ctx, qsnn_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The last message; "" when none. */
const char *qsnn_last_error(const qsnn_ctx *ctx);
void qsnn_clear_error(qsnn_ctx *ctx);

/* 64-byte aligned memory from the context's hooks. qsnn_calloc zeroes. Sizes are checked for overflow. */
void *qsnn_malloc(qsnn_ctx *ctx, size_t size);
void *qsnn_calloc(qsnn_ctx *ctx, size_t n, size_t elem);
void qsnn_free(qsnn_ctx *ctx, void *ptr);

#endif
