/* Range setting for post-training quantization (specs/quantizers.md §2): from observed values to
 * the step of a symmetric weight quantizer, or to the interval of a state grid. */
#ifndef QSNN_QUANT_RANGE_H
#define QSNN_QUANT_RANGE_H

#include <stddef.h>
#include "core/context.h"
#include "quant/state_quant.h"

typedef enum { QSNN_RANGE_MINMAX = 0, QSNN_RANGE_MSE = 1, QSNN_RANGE_PERCENTILE = 2 } qsnn_range_method;

/* "minmax", "mse", "percentile" -> the method; -1 when unknown. */
int qsnn_range_find(const char *name);
const char *qsnn_range_name(qsnn_range_method m);

/* Step s of symmetric signed b-bit codes (clamp(round(v/s), -2^(b-1), 2^(b-1)-1), b >= 2) for n values:
 *   minmax      max|v| / (2^(b-1) - 1)
 *   percentile  the pct-th percentile of |v| / (2^(b-1) - 1)
 *   mse         α·max|v| / (2^(b-1) - 1) with α in {1, 0.99, ..., 0.20} minimising Σ (v - v̂)²
 * Returns 1 when all values are 0. scratch: n floats (percentile only; may be NULL otherwise). */
float qsnn_range_symmetric_step(const float *v, size_t n, int bits, qsnn_range_method m, double pct, float *scratch);

/* Interval [lo, hi] of a state grid (cfg->grid, cfg->bits) for n observed membrane values, relative to
 * the threshold θ (the grid's limits are lower_limit = -lo/θ - 1, upper_limit = hi/θ - 1):
 *   minmax      [min v, max v]
 *   percentile  [(100-pct)-th, pct-th percentiles]
 *   mse         among percentile pairs q in {0, 0.01%, 0.1%, 0.5%, 1%, 2%, 5%, 10%} the pair whose grid
 *               (built with those limits) gives the smallest Σ (v - Q(v))²
 * Writes the limits into cfg (lower_limit, upper_limit), keeping lo < 0 < θ < hi so the grids can place
 * their levels. v is sorted in place. */
qsnn_status qsnn_range_state_limits(qsnn_ctx *ctx, float *v, size_t n, double theta, qsnn_range_method m, double pct,
                                    qsnn_state_quant_cfg *cfg);

#endif
