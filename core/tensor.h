/* Float32 tensors: a shape (up to 4 dims, row-major) over owned or borrowed data. */
#ifndef QSNN_CORE_TENSOR_H
#define QSNN_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include "core/context.h"

#define QSNN_TENSOR_MAX_DIMS 4

typedef struct qsnn_tensor {
    float *data;
    int ndim;
    int64_t shape[QSNN_TENSOR_MAX_DIMS];
    int owns; /* 1: data freed by qsnn_tensor_destroy */
} qsnn_tensor;

/* Allocates a zeroed tensor. Negative or zero dimensions are refused with a message. */
qsnn_status qsnn_tensor_create(qsnn_ctx *ctx, int ndim, const int64_t *shape, qsnn_tensor **out);
void qsnn_tensor_destroy(qsnn_ctx *ctx, qsnn_tensor **t);
size_t qsnn_tensor_numel(const qsnn_tensor *t);
/* Index of the first non-finite element, or -1. */
int64_t qsnn_tensor_find_nonfinite(const qsnn_tensor *t);

#endif
