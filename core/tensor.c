#include "core/tensor.h"

#include <math.h>

size_t qsnn_tensor_numel(const qsnn_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

qsnn_status qsnn_tensor_create(qsnn_ctx *ctx, int ndim, const int64_t *shape, qsnn_tensor **out) {
    *out = NULL;
    if (ndim < 1 || ndim > QSNN_TENSOR_MAX_DIMS)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "tensor: %d dimensions (1..%d allowed)", ndim, QSNN_TENSOR_MAX_DIMS);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0)
            return qsnn_fail(ctx, QSNN_ERR_ARG, "tensor: dimension %d is %lld (must be > 0)", i, (long long)shape[i]);
        if ((size_t)shape[i] > SIZE_MAX / sizeof(float) / n)
            return qsnn_fail(ctx, QSNN_ERR_NOMEM, "tensor: size overflow");
        n *= (size_t)shape[i];
    }
    qsnn_tensor *t = qsnn_calloc(ctx, 1, sizeof *t);
    if (!t) return QSNN_ERR_NOMEM;
    t->data = qsnn_calloc(ctx, n, sizeof(float));
    if (!t->data) {
        qsnn_free(ctx, t);
        return QSNN_ERR_NOMEM;
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->owns = 1;
    *out = t;
    return QSNN_OK;
}

void qsnn_tensor_destroy(qsnn_ctx *ctx, qsnn_tensor **t) {
    if (!t || !*t) return;
    if ((*t)->owns) qsnn_free(ctx, (*t)->data);
    qsnn_free(ctx, *t);
    *t = NULL;
}

int64_t qsnn_tensor_find_nonfinite(const qsnn_tensor *t) {
    size_t n = qsnn_tensor_numel(t);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(t->data[i])) return (int64_t)i;
    return -1;
}
