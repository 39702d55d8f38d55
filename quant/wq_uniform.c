/* Symmetric uniform weight quantizer with a min-max range: s = max|w| / (2^(b-1) - 1),
 * q = clamp(round_half_even(w / s), -2^(b-1), 2^(b-1) - 1), Ŵ = s q.
 * 1 bit: q = sign(w) (+1 at 0) and s = mean|w|, the scale that minimises ||W - Ŵ||² for binary codes.
 * With pow2, s becomes a power of two: rounded up for b >= 2 (the range still covers max|w|), to the
 * nearest in log2 for 1 bit. */
#include "quant/weight_quant.h"

#include <math.h>

static inline float qmax(int bits) { return bits == 1 ? 1.0f : (float)((1 << (bits - 1)) - 1); }
static inline float qmin(int bits) { return bits == 1 ? -1.0f : -(float)(1 << (bits - 1)); }

static void row_stats(const float *w, size_t n, float *absmax, double *abssum) {
    float m = 0.0f;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(w[i]);
        m = a > m ? a : m;
        s += a;
    }
    *absmax = m;
    *abssum = s;
}

static float scale_of(const qsnn_weight_quant_cfg *cfg, float absmax, double abssum, size_t n) {
    if (!(absmax > 0)) return 1.0f;
    float s = cfg->bits == 1 ? (float)(abssum / (double)n) : absmax / qmax(cfg->bits);
    if (cfg->pow2) s = cfg->bits == 1 ? qsnn_pow2_nearest(s) : qsnn_pow2_up(s);
    return s;
}

static inline float code_of(int bits, float w, float s, float lo, float hi) {
    if (bits == 1) return w < 0.0f ? -1.0f : 1.0f;
    float q = nearbyintf(w / s); /* default rounding mode: half to even */
    return q < lo ? lo : (q > hi ? hi : q);
}

static void fwd(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *Wq, float *scales) {
    const int bits = cfg->bits;
    const float hi = qmax(bits), lo = qmin(bits);
    const int per_ch = cfg->granularity == QSNN_WQ_PER_CHANNEL;
    if (!per_ch) {
        float m;
        double sum;
        row_stats(W, (size_t)out * in, &m, &sum);
        scales[0] = scale_of(cfg, m, sum, (size_t)out * in);
    }
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        const float *w = W + (size_t)o * in;
        float *wq = Wq + (size_t)o * in;
        if (per_ch) {
            float m;
            double sum;
            row_stats(w, (size_t)in, &m, &sum);
            scales[o] = scale_of(cfg, m, sum, (size_t)in);
        }
        const float s = scales[per_ch ? o : 0];
        for (int i = 0; i < in; i++) wq[i] = s * code_of(bits, w[i], s, lo, hi);
    }
}

/* Straight-through inside the representable range [s·qmin, s·qmax], zero outside; binary weights
 * pass the gradient everywhere (their "range" is a single magnitude). */
static void bwd(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in, float *grad) {
    if (cfg->bits == 1) return;
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
        for (int i = 0; i < in; i++)
            c[(size_t)o * in + i] = (int32_t)code_of(cfg->bits, W[(size_t)o * in + i], s, lo, hi);
    }
}

const qsnn_weight_quant_ops qsnn_wq_uniform_symmetric = {.name = "uniform_symmetric", .forward = fwd, .backward = bwd,
                                                         .codes = codes};
