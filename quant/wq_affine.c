/* Uniform affine weight quantizer with a min-max range (quantizers.md §1): per group (tensor or
 * output neuron) lo = min(min w, 0), hi = max(max w, 0), s = (hi - lo)/(2^b - 1) (a power of two,
 * rounded up, with pow2), z = clamp(round(-lo/s), 0, 2^b - 1), q = clamp(round(w/s) + z, 0, 2^b - 1),
 * Ŵ = s (q - z). Codes handed out: q - z (signed), so codes × scale == Ŵ. */
#include "quant/weight_quant.h"

#include <math.h>

static inline float qtop(int bits) { return (float)((1u << bits) - 1u); }

static void group_range(const float *w, size_t n, float *s, float *z, const qsnn_weight_quant_cfg *cfg) {
    float lo = 0.0f, hi = 0.0f;
    for (size_t i = 0; i < n; i++) {
        lo = w[i] < lo ? w[i] : lo;
        hi = w[i] > hi ? w[i] : hi;
    }
    const float top = qtop(cfg->bits);
    float sc = hi > lo ? (hi - lo) / top : 1.0f;
    if (cfg->pow2) sc = qsnn_pow2_up(sc);
    float zz = nearbyintf(-lo / sc);
    *s = sc;
    *z = zz < 0.0f ? 0.0f : (zz > top ? top : zz);
}

static inline float code_q(float w, float s, float z, float top) {
    const float q = nearbyintf(w / s) + z;
    return q < 0.0f ? 0.0f : (q > top ? top : q);
}

static void fwd(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *Wq, float *scales) {
    const int per_ch = cfg->granularity == QSNN_WQ_PER_CHANNEL;
    const float top = qtop(cfg->bits);
    float s1 = 1.0f, z1 = 0.0f;
    if (!per_ch) group_range(W, (size_t)out * in, &s1, &z1, cfg);
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        float s = s1, z = z1;
        if (per_ch) group_range(W + (size_t)o * in, (size_t)in, &s, &z, cfg);
        scales[per_ch ? o : 0] = s;
        for (int i = 0; i < in; i++) Wq[(size_t)o * in + i] = s * (code_q(W[(size_t)o * in + i], s, z, top) - z);
    }
}

static void bwd(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in, float *grad) {
    const int per_ch = cfg->granularity == QSNN_WQ_PER_CHANNEL;
    const float top = qtop(cfg->bits);
    float s1, z1;
    if (!per_ch) group_range(W, (size_t)out * in, &s1, &z1, cfg);
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        float s = s1, z = z1;
        if (per_ch) group_range(W + (size_t)o * in, (size_t)in, &s, &z, cfg);
        const float lo = s * (0.0f - z), hi = s * (top - z);
        for (int i = 0; i < in; i++) {
            const float w = W[(size_t)o * in + i];
            if (w < lo || w > hi) grad[(size_t)o * in + i] = 0.0f;
        }
    }
    (void)scales;
}

static void codes(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in, int32_t *c) {
    const int per_ch = cfg->granularity == QSNN_WQ_PER_CHANNEL;
    const float top = qtop(cfg->bits);
    float s1, z1;
    if (!per_ch) group_range(W, (size_t)out * in, &s1, &z1, cfg);
    for (int o = 0; o < out; o++) {
        float s = s1, z = z1;
        if (per_ch) group_range(W + (size_t)o * in, (size_t)in, &s, &z, cfg);
        for (int i = 0; i < in; i++)
            c[(size_t)o * in + i] = (int32_t)(code_q(W[(size_t)o * in + i], s, z, top) - z);
    }
    (void)scales;
}

const qsnn_weight_quant_ops qsnn_wq_uniform_affine = {.name = "uniform_affine", .forward = fwd, .backward = bwd,
                                                      .codes = codes};
