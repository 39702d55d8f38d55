/* LSQ, learned step size quantization (Esser et al. 2020; quantizers.md §1, §3), per tensor or per
 * output neuron:
 *   lsq         Ŵ = s · clamp(round(w/s), -Qn, Qp), Qn = 2^(b-1), Qp = 2^(b-1) - 1
 *               ("inside": -Qn <= w/s <= Qp, the real interval, as in the LSQ paper)
 *               dŴ/dw = 1 inside, 0 outside; dŴ/ds = round(w/s) - w/s inside, -Qn below, Qp above
 *   lsq_affine  Ŵ = s · (clamp(round(w/s) + ⌊z⌉, 0, Q) - ⌊z⌉), Q = 2^b - 1, z real (⌊z⌉: round, STE)
 *               dŴ/ds = round(w/s) - w/s inside, -⌊z⌉ below, Q - ⌊z⌉ above; dŴ/dz = 0 inside, -s outside
 * Gradients of s and z are scaled by g = 1/sqrt(N·Qp) (N weights per scale; Qp = Q for lsq_affine).
 * Init: lsq s = 2·mean|w|/sqrt(Qp); lsq_affine from the min-max range. A learned s at or below 0 acts
 * as 1e-8 (the optimizer may overshoot); with pow2 the forward uses the power of two nearest to s
 * (straight-through for its gradient). */
#include "quant/weight_quant.h"

#include <math.h>

static const char *const names_s[] = {"scale", NULL};
static const char *const names_sz[] = {"scale", "zero_point", NULL};

static inline int per_channel(const qsnn_weight_quant_cfg *cfg) { return cfg->granularity == QSNN_WQ_PER_CHANNEL; }

static float eff_scale(const qsnn_weight_quant_cfg *cfg, float s) {
    s = s > 1e-8f ? s : 1e-8f;
    return cfg->pow2 ? qsnn_pow2_nearest(s) : s;
}

/* Code bounds and the integer offset of group g. */
typedef struct lsq_kind {
    int affine;
    float lo, hi; /* code range before subtracting the offset */
    float qp;     /* Qp of the gradient scale */
} lsq_kind;

static lsq_kind kind_of(const qsnn_weight_quant_cfg *cfg, int affine) {
    lsq_kind k = {affine, 0, 0, 0};
    if (affine) k.lo = 0.0f, k.hi = (float)((1u << cfg->bits) - 1u), k.qp = k.hi;
    else k.lo = -(float)(1 << (cfg->bits - 1)), k.hi = (float)((1 << (cfg->bits - 1)) - 1), k.qp = k.hi;
    return k;
}

static inline float zr_of(const qsnn_weight_quant_cfg *cfg, const lsq_kind *k, int ns, int g) {
    return k->affine ? nearbyintf(cfg->learned[ns + g]) : 0.0f;
}

static inline float code_of(float w, float s, float zr, const lsq_kind *k) {
    const float q = nearbyintf(w / s) + zr;
    return q < k->lo ? k->lo : (q > k->hi ? k->hi : q);
}

static void fwd_any(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *Wq, float *scales,
                    int affine) {
    const lsq_kind k = kind_of(cfg, affine);
    const int pc = per_channel(cfg), ns = pc ? out : 1;
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        const int g = pc ? o : 0;
        const float s = eff_scale(cfg, cfg->learned[g]), zr = zr_of(cfg, &k, ns, g);
        if (o == 0 || pc) scales[g] = s;
        for (int i = 0; i < in; i++) Wq[(size_t)o * in + i] = s * (code_of(W[(size_t)o * in + i], s, zr, &k) - zr);
    }
}

/* Sums of the learned-parameter gradients over rows [o0, o1), and the masked W gradient. */
static void bwd_rows(const qsnn_weight_quant_cfg *cfg, const lsq_kind *k, int ns, int pc, const float *W, int in,
                     int o0, int o1, float *grad, double *ds_out, double *dz_out) {
    double ds = 0.0, dz = 0.0;
    for (int o = o0; o < o1; o++) {
        const int g = pc ? o : 0;
        const float s = eff_scale(cfg, cfg->learned[g]), zr = zr_of(cfg, k, ns, g);
        for (int i = 0; i < in; i++) {
            const size_t j = (size_t)o * in + i;
            const float v = W[j] / s, r = nearbyintf(v), q = v + zr, gh = grad[j];
            if (q < k->lo || q > k->hi) { /* outside the real interval [s(lo - z), s(hi - z)] */
                ds += (double)gh * ((q < k->lo ? k->lo : k->hi) - zr);
                dz += (double)gh * -s;
                grad[j] = 0.0f;
            } else {
                ds += (double)gh * (r - v);
            }
        }
    }
    *ds_out = ds;
    *dz_out = dz;
}

#define LSQ_CHUNKS 64 /* fixed split of a per-tensor sum: the same result for any thread count */

static void bwd_any(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *grad, int affine) {
    const lsq_kind k = kind_of(cfg, affine);
    const int pc = per_channel(cfg), ns = pc ? out : 1;
    const double gscale = 1.0 / sqrt((pc ? (double)in : (double)in * out) * k.qp);
    if (pc) {
        #pragma omp parallel for schedule(static)
        for (int o = 0; o < out; o++) {
            double ds, dz;
            bwd_rows(cfg, &k, ns, pc, W, in, o, o + 1, grad, &ds, &dz);
            cfg->learned_grad[o] = (float)(ds * gscale);
            if (affine) cfg->learned_grad[ns + o] = (float)(dz * gscale);
        }
        return;
    }
    double part[LSQ_CHUNKS][2];
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < LSQ_CHUNKS; c++) {
        const int o0 = (int)((long)out * c / LSQ_CHUNKS), o1 = (int)((long)out * (c + 1) / LSQ_CHUNKS);
        bwd_rows(cfg, &k, ns, pc, W, in, o0, o1, grad, &part[c][0], &part[c][1]);
    }
    double ds = 0.0, dz = 0.0;
    for (int c = 0; c < LSQ_CHUNKS; c++) ds += part[c][0], dz += part[c][1];
    cfg->learned_grad[0] = (float)(ds * gscale);
    if (affine) cfg->learned_grad[1] = (float)(dz * gscale);
}

static void codes_any(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, int32_t *c, int affine) {
    const lsq_kind k = kind_of(cfg, affine);
    const int pc = per_channel(cfg), ns = pc ? out : 1;
    for (int o = 0; o < out; o++) {
        const int g = pc ? o : 0;
        const float s = eff_scale(cfg, cfg->learned[g]), zr = zr_of(cfg, &k, ns, g);
        for (int i = 0; i < in; i++) c[(size_t)o * in + i] = (int32_t)(code_of(W[(size_t)o * in + i], s, zr, &k) - zr);
    }
}

static void init_any(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *learned, int affine) {
    const lsq_kind k = kind_of(cfg, affine);
    const int pc = per_channel(cfg), ns = pc ? out : 1;
    for (int g = 0; g < ns; g++) {
        const float *w = W + (size_t)(pc ? g : 0) * in;
        const size_t n = pc ? (size_t)in : (size_t)in * out;
        double sum = 0.0;
        float lo = 0.0f, hi = 0.0f;
        for (size_t i = 0; i < n; i++) {
            sum += fabs((double)w[i]);
            lo = w[i] < lo ? w[i] : lo;
            hi = w[i] > hi ? w[i] : hi;
        }
        if (!affine) {
            const double s = 2.0 * (sum / (double)n) / sqrt(k.qp);
            learned[g] = s > 0 ? (float)s : 1e-3f;
        } else {
            const float s = hi > lo ? (hi - lo) / k.hi : 1e-3f;
            learned[g] = s;
            learned[ns + g] = nearbyintf(-lo / s);
        }
    }
}

static void fwd_s(const qsnn_weight_quant_cfg *c, const float *W, int out, int in, float *Wq, float *sc) { fwd_any(c, W, out, in, Wq, sc, 0); }
static void fwd_a(const qsnn_weight_quant_cfg *c, const float *W, int out, int in, float *Wq, float *sc) { fwd_any(c, W, out, in, Wq, sc, 1); }
static void bwd_s(const qsnn_weight_quant_cfg *c, const float *W, const float *sc, int out, int in, float *g) { (void)sc; bwd_any(c, W, out, in, g, 0); }
static void bwd_a(const qsnn_weight_quant_cfg *c, const float *W, const float *sc, int out, int in, float *g) { (void)sc; bwd_any(c, W, out, in, g, 1); }
static void codes_s(const qsnn_weight_quant_cfg *c, const float *W, const float *sc, int out, int in, int32_t *q) { (void)sc; codes_any(c, W, out, in, q, 0); }
static void codes_a(const qsnn_weight_quant_cfg *c, const float *W, const float *sc, int out, int in, int32_t *q) { (void)sc; codes_any(c, W, out, in, q, 1); }
static void init_s(const qsnn_weight_quant_cfg *c, const float *W, int out, int in, float *l) { init_any(c, W, out, in, l, 0); }
static void init_a(const qsnn_weight_quant_cfg *c, const float *W, int out, int in, float *l) { init_any(c, W, out, in, l, 1); }

const qsnn_weight_quant_ops qsnn_wq_lsq = {.name = "lsq", .forward = fwd_s, .backward = bwd_s, .codes = codes_s,
                                           .n_learned = 1, .learned_names = names_s, .init = init_s, .min_bits = 2};
const qsnn_weight_quant_ops qsnn_wq_lsq_affine = {.name = "lsq_affine", .forward = fwd_a, .backward = bwd_a,
                                                  .codes = codes_a, .n_learned = 2, .learned_names = names_sz,
                                                  .init = init_a, .min_bits = 2};
