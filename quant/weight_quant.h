/* Weight fake-quantizers as a traits table (specs/quantizers.md §1). A quantizer maps the float
 * master weights W[out][in] to fake-quantized weights Ŵ used by the forward pass, exposes the integer
 * codes with their scales (codes × scale == Ŵ bit for bit), and passes gradients back.
 *
 * Required slots: name, forward, backward, codes. A new quantizer = one new file + one registry line
 * in weight_quant.c. */
#ifndef QSNN_QUANT_WEIGHT_QUANT_H
#define QSNN_QUANT_WEIGHT_QUANT_H

#include <stdint.h>
#include "core/context.h"

typedef enum { QSNN_WQ_PER_TENSOR = 0, QSNN_WQ_PER_CHANNEL = 1 } qsnn_wq_granularity;

typedef struct qsnn_weight_quant_cfg {
    int bits;                        /* 0 = off; 1..16 (1: binary ±s with s = mean|w|) */
    qsnn_wq_granularity granularity; /* one scale per tensor or per output neuron (row) */
    char method[32];                 /* registry name; "uniform_symmetric" */
    int pow2;                        /* scales are powers of two (rescaling becomes a shift) */
} qsnn_weight_quant_cfg;

typedef struct qsnn_weight_quant_ops {
    const char *name;
    /* Ŵ from W; writes the scales (1 or `out` of them). */
    void (*forward)(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *Wq, float *scales);
    /* Gradient wrt W from the gradient wrt Ŵ, in place (straight-through with clipping mask). */
    void (*backward)(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in,
                     float *grad);
    /* Integer codes (scales as written by forward). */
    void (*codes)(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in,
                  int32_t *codes);
} qsnn_weight_quant_ops;

const qsnn_weight_quant_ops *qsnn_weight_quant_find(const char *name);
const char *qsnn_weight_quant_names(void);
qsnn_status qsnn_weight_quant_check(qsnn_ctx *ctx, const qsnn_weight_quant_cfg *cfg);
static inline int qsnn_weight_quant_nscales(const qsnn_weight_quant_cfg *cfg, int out) {
    return cfg->granularity == QSNN_WQ_PER_CHANNEL ? out : 1;
}

/* The uniform symmetric quantizer (min-max range, codes in [-2^(b-1), 2^(b-1)-1]; 1 bit: codes ±1). */
extern const qsnn_weight_quant_ops qsnn_wq_uniform_symmetric;

#endif
