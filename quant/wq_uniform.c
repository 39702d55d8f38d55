/* Symmetric uniform weight quantizer with a min-max range: s = max|w| / (2^(b-1) - 1),
 * q = clamp(round_half_even(w / s), -2^(b-1), 2^(b-1) - 1), Ŵ = s q. */
#include "quant/weight_quant.h"

#include <math.h>

static inline float qmax(int bits) { return (float)((1 << (bits - 1)) - 1); }
static inline float qmin(int bits) { return -(float)(1 << (bits - 1)); }

static float row_absmax(const float *w, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(w[i]);
        m = a > m ? a : m;
    }
    return m;
}

static inline float code_of(float w, float s, float lo, float hi) {
    float q = nearbyintf(w / s); /* default rounding mode: half to even */
    return q < lo ? lo : (q > hi ? hi : q);
}

static void fwd(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *Wq, float *scales) {
    const float hi = qmax(cfg->bits), lo = qmin(cfg->bits);
    const int per_ch = cfg->granularity == QSNN_WQ_PER_CHANNEL;
    if (!per_ch) {
        float m = row_absmax(W, (size_t)out * in);
        scales[0] = m > 0 ? m / hi : 1.0f;
    }
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        const float *w = W + (size_t)o * in;
        float *wq = Wq + (size_t)o * in;
        if (per_ch) {
            float m = row_absmax(w, (size_t)in);
            scales[o] = m > 0 ? m / hi : 1.0f;
        }
        const float s = scales[per_ch ? o : 0];
        for (int i = 0; i < in; i++) wq[i] = s * code_of(w[i], s, lo, hi);
    }
}

static void bwd(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in, float *grad) {
    const float hi = qmax(cfg->bits), lo = qmin(cfg->bits);
    const int per_ch = cfg->granularity == QSNN_WQ_PER_CHANNEL;
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        const float s = scales[per_ch ? o : 0];
        const float wlo = s * lo, whi = s * hi;
        const float *w = W + (size_t)o * in;
        float *g = grad + (size_t)o * in;
        for (int i = 0; i < in; i++)
            if (w[i] < wlo || w[i] > whi) g[i] = 0.0f;
    }
}

static void codes(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in,
                  int32_t *c) {
    const float hi = qmax(cfg->bits), lo = qmin(cfg->bits);
    const int per_ch = cfg->granularity == QSNN_WQ_PER_CHANNEL;
    for (int o = 0; o < out; o++) {
        const float s = scales[per_ch ? o : 0];
        for (int i = 0; i < in; i++) c[(size_t)o * in + i] = (int32_t)code_of(W[(size_t)o * in + i], s, lo, hi);
    }
}

const qsnn_weight_quant_ops qsnn_wq_uniform_symmetric = {"uniform_symmetric", fwd, bwd, codes};
