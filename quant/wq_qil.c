/* QIL, quantization interval learning (Jung et al. 2019; quantizers.md §4), for weights. Learned per
 * group (tensor or output neuron): the interval centre c, half-width d (> 0) and exponent γ.
 *   t(w) = 0 for |w| < c - d (pruned), sign(w) for |w| > c + d (clipped),
 *          sign(w)·(α|w| + β)^γ inside, α = 0.5/d, β = 0.5 - 0.5c/d (the interval onto [0, 1])
 *   codes q = round(t·qD), qD = 2^(b-1) - 1;  Ŵ = κ·q with κ = (c + d)/qD
 * κ restores the magnitude (clipped weights map to ±(c + d)) and is held constant in the backward
 * pass, which follows the spec: straight through the discretizer, and inside the interval, with
 * u = α|w| + β:  dt/dw = γu^(γ-1)/(2d),  dt/dc = -sign(w)γu^(γ-1)/(2d),
 * dt/dd = -sign(w)γu^(γ-1)(|w| - c)/(2d²),  dt/dγ = sign(w)u^γ ln u;  zero outside.
 * Init: c = d = max|w|/2 (no pruning, no clipping), γ = 1, i.e. a min-max uniform quantizer. */
#include "quant/weight_quant.h"

#include <math.h>

static const char *const names[] = {"center", "half_width", "gamma", NULL};

enum { C, D, G };

typedef struct qil_group {
    float c, d, g, alpha, beta, kappa, qd;
} qil_group;

static qil_group group_of(const qsnn_weight_quant_cfg *cfg, int ns, int j) {
    qil_group q;
    q.c = cfg->learned[C * ns + j];
    q.d = cfg->learned[D * ns + j];
    q.d = q.d > 1e-6f ? q.d : 1e-6f;
    q.g = cfg->learned[G * ns + j];
    q.g = q.g > 0.05f ? q.g : 0.05f;
    q.alpha = 0.5f / q.d;
    q.beta = 0.5f - 0.5f * q.c / q.d;
    q.qd = (float)((1 << (cfg->bits - 1)) - 1);
    const float k = (q.c + q.d) / q.qd;
    q.kappa = k > 1e-12f ? k : 1e-12f;
    return q;
}

/* t(w) and, inside the interval, u = α|w| + β (returns 1 when inside). */
static inline int transform(const qil_group *q, float w, float *t, float *u) {
    const float a = fabsf(w), sg = w < 0.0f ? -1.0f : 1.0f;
    if (a < q->c - q->d) return *t = 0.0f, 0;
    if (a > q->c + q->d) return *t = sg, 0;
    float v = q->alpha * a + q->beta;
    v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    *u = v;
    *t = sg * powf(v, q->g);
    return 1;
}

static inline float code_of(const qil_group *q, float w) {
    float t, u;
    transform(q, w, &t, &u);
    return nearbyintf(t * q->qd);
}

static void fwd(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *Wq, float *scales) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1;
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        const qil_group q = group_of(cfg, ns, pc ? o : 0);
        if (o == 0 || pc) scales[pc ? o : 0] = q.kappa;
        for (int i = 0; i < in; i++) Wq[(size_t)o * in + i] = q.kappa * code_of(&q, W[(size_t)o * in + i]);
    }
}

static void codes(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in, int32_t *c) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1;
    for (int o = 0; o < out; o++) {
        const qil_group q = group_of(cfg, ns, pc ? o : 0);
        for (int i = 0; i < in; i++) c[(size_t)o * in + i] = (int32_t)code_of(&q, W[(size_t)o * in + i]);
    }
    (void)scales;
}

/* Gradient sums of rows [o0, o1) (one group per row when per channel), masked W gradient. */
static void bwd_rows(const qsnn_weight_quant_cfg *cfg, int ns, int pc, const float *W, int in, int o0, int o1,
                     float *grad, double *sum) {
    sum[0] = sum[1] = sum[2] = 0.0;
    for (int o = o0; o < o1; o++) {
        const qil_group q = group_of(cfg, ns, pc ? o : 0);
        for (int i = 0; i < in; i++) {
            const size_t j = (size_t)o * in + i;
            float t, u;
            const float w = W[j], gh = grad[j] * q.kappa * q.qd; /* dL/dt through Ŵ = κ·qD·t (STE) */
            if (!transform(&q, w, &t, &u)) {
                grad[j] = 0.0f;
                continue;
            }
            const float sg = w < 0.0f ? -1.0f : 1.0f, a = fabsf(w);
            const float up = u > 0.0f ? powf(u, q.g - 1.0f) : (q.g >= 1.0f ? (q.g == 1.0f ? 1.0f : 0.0f) : 0.0f);
            const float dtdw = q.g * up / (2.0f * q.d);
            grad[j] = gh * dtdw;
            sum[0] += (double)gh * -sg * q.g * up / (2.0f * q.d);
            sum[1] += (double)gh * -sg * q.g * up * (a - q.c) / (2.0f * q.d * q.d);
            if (u > 0.0f) sum[2] += (double)gh * sg * powf(u, q.g) * logf(u);
        }
    }
}

#define QIL_CHUNKS 64

static void bwd(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in, float *grad) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1;
    (void)scales;
    if (pc) {
        #pragma omp parallel for schedule(static)
        for (int o = 0; o < out; o++) {
            double s[3];
            bwd_rows(cfg, ns, pc, W, in, o, o + 1, grad, s);
            for (int k = 0; k < 3; k++) cfg->learned_grad[k * ns + o] = (float)s[k];
        }
        return;
    }
    double part[QIL_CHUNKS][3];
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < QIL_CHUNKS; c++)
        bwd_rows(cfg, ns, pc, W, in, (int)((long)out * c / QIL_CHUNKS), (int)((long)out * (c + 1) / QIL_CHUNKS), grad,
                 part[c]);
    for (int k = 0; k < 3; k++) {
        double s = 0.0;
        for (int c = 0; c < QIL_CHUNKS; c++) s += part[c][k]; /* fixed order: any thread count */
        cfg->learned_grad[k] = (float)s;
    }
}

static void init(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *learned) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1;
    for (int g = 0; g < ns; g++) {
        const size_t n = pc ? (size_t)in : (size_t)in * out;
        const float *w = W + (size_t)(pc ? g : 0) * in;
        float m = 0.0f;
        for (size_t i = 0; i < n; i++) m = fabsf(w[i]) > m ? fabsf(w[i]) : m;
        m = m > 0.0f ? m : 1e-3f;
        learned[C * ns + g] = 0.5f * m;
        learned[D * ns + g] = 0.5f * m;
        learned[G * ns + g] = 1.0f;
    }
}

const qsnn_weight_quant_ops qsnn_wq_qil = {.name = "qil", .forward = fwd, .backward = bwd, .codes = codes,
                                           .n_learned = 3, .learned_names = names, .init = init, .min_bits = 2,
                                           .no_pow2 = 1};
