/* Shared helpers for the Criterion tests. */
#ifndef QSNN_TESTS_TEST_UTIL_H
#define QSNN_TESTS_TEST_UTIL_H

#include <criterion/criterion.h>
#include "core/context.h"

static inline qsnn_ctx *test_ctx(int threads) {
    qsnn_ctx *ctx = NULL;
    cr_assert_eq(qsnn_ctx_create(NULL, threads, 0, &ctx), QSNN_OK);
    return ctx;
}

#endif
