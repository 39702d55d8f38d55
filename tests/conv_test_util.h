/* Shared by the convolution tests: a case table row, its checked shape, and seeded random buffers. */
#ifndef QSNN_TESTS_CONV_TEST_UTIL_H
#define QSNN_TESTS_CONV_TEST_UTIL_H

#include <stdlib.h>

#include "core/rng.h"
#include "sim/conv.h"
#include "test_util.h"

typedef struct conv_case {
    int in_c, in_h, in_w, out_c, k, stride, pad, groups;
} conv_case;

static inline qsnn_conv_shape make_shape(const conv_case *c) {
    qsnn_conv_shape s = {.in_c = c->in_c, .in_h = c->in_h, .in_w = c->in_w, .out_c = c->out_c, .kh = c->k,
                         .kw = c->k, .stride = c->stride, .pad = c->pad, .groups = c->groups};
    qsnn_ctx *ctx = test_ctx(1);
    cr_assert_eq(qsnn_conv_shape_check(ctx, &s), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_ctx_destroy(&ctx);
    return s;
}

/* n values uniform in [-1, 1), seeded by stream. */
static inline float *rand_buf(size_t n, uint64_t stream) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    qsnn_rng r;
    qsnn_rng_init(&r, 7, stream);
    for (size_t i = 0; i < n; i++) p[i] = 2.0f * qsnn_rng_uniform(&r) - 1.0f;
    return p;
}

#endif
