#include "core/context.h"
#include "core/threads.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qsnn_ctx {
    qsnn_alloc_hooks hooks;
    int threads;
    uint64_t seed;
    char msg[1024];
};

static void *default_alloc(size_t size, size_t align, void *user) {
    (void)user;
    void *p = NULL;
    if (posix_memalign(&p, align, size ? size : align) != 0) return NULL;
    return p;
}

static void default_free(void *ptr, void *user) {
    (void)user;
    free(ptr);
}

qsnn_status qsnn_ctx_create(const qsnn_alloc_hooks *hooks, int threads, uint64_t seed, qsnn_ctx **out) {
    if (!out) return QSNN_ERR_ARG;
    *out = NULL;
    qsnn_alloc_hooks h = {default_alloc, default_free, NULL};
    if (hooks && hooks->alloc && hooks->free) h = *hooks;
    qsnn_ctx *c = h.alloc(sizeof *c, 64, h.user);
    if (!c) return QSNN_ERR_NOMEM;
    memset(c, 0, sizeof *c);
    c->hooks = h;
    c->seed = seed;
    qsnn_ctx_set_threads(c, threads);
    *out = c;
    return QSNN_OK;
}

void qsnn_ctx_destroy(qsnn_ctx **ctx) {
    if (!ctx || !*ctx) return;
    qsnn_alloc_hooks h = (*ctx)->hooks;
    h.free(*ctx, h.user);
    *ctx = NULL;
}

void qsnn_ctx_set_threads(qsnn_ctx *ctx, int threads) {
    ctx->threads = qsnn_threads_apply(threads);
}

int qsnn_ctx_threads(const qsnn_ctx *ctx) { return ctx->threads; }
void qsnn_ctx_set_seed(qsnn_ctx *ctx, uint64_t seed) { ctx->seed = seed; }
uint64_t qsnn_ctx_seed(const qsnn_ctx *ctx) { return ctx->seed; }

qsnn_status qsnn_fail(qsnn_ctx *ctx, qsnn_status s, const char *fmt, ...) {
    if (ctx) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

const char *qsnn_last_error(const qsnn_ctx *ctx) { return ctx ? ctx->msg : ""; }
void qsnn_clear_error(qsnn_ctx *ctx) { if (ctx) ctx->msg[0] = 0; }

void *qsnn_malloc(qsnn_ctx *ctx, size_t size) {
    void *p = ctx->hooks.alloc(size, 64, ctx->hooks.user);
    if (!p) qsnn_fail(ctx, QSNN_ERR_NOMEM, "out of memory allocating %zu bytes", size);
    return p;
}

void *qsnn_calloc(qsnn_ctx *ctx, size_t n, size_t elem) {
    if (elem && n > SIZE_MAX / elem) {
        qsnn_fail(ctx, QSNN_ERR_NOMEM, "allocation size overflow (%zu x %zu)", n, elem);
        return NULL;
    }
    void *p = qsnn_malloc(ctx, n * elem);
    if (p) memset(p, 0, n * elem);
    return p;
}

void qsnn_free(qsnn_ctx *ctx, void *ptr) {
    if (ptr) ctx->hooks.free(ptr, ctx->hooks.user);
}
