/* CPQ, cluster-promoting quantization with DropBits and learned bit widths (Lee, Yun, Hwang, Yang,
 * ICCV 2021; quantizers.md §6), for weights. b bits, per tensor or per output neuron (scale group g).
 *   Grid g_k = α·k, k in [-2^(b-1), 2^(b-1)-1]. Learned per scale group: "step" α, "noise" σ and
 *   "gate": logits φ_m of the bit levels m = 3..b (max(b-2, 1) values; unused unless
 *   lq.cpq_learn_bits and b > 2). Guards: α >= 1e-8, σ >= 1e-3·α (gradients pass straight through).
 *   Bit level of point k: m(k) = b - trailing_zeros(k), m(0) = 1; levels <= 2 (4 points) always kept.
 * Inference (pass.training = 0): beff = 2 + the number of consecutive gates m = 3, 4, .. with φ_m > 0
 *   (b without learned bits); kept points are the multiples of 2^(b-beff); Ŵ = nearest kept point
 *   (ties to the lower) = scale·code, scale = α·2^(b-beff), code in [-2^(beff-1), 2^(beff-1)-1].
 * Training (pass.training = 1): (1) z_m ~ Bernoulli(sigmoid(10·φ_m)), u = qsnn_lq_uniform(seed,
 *   0xC0DE0000 + g, m), level m kept iff z_3..z_m are all 1; (2) DropBits: a kept point of level m >= 3
 *   is dropped iff qsnn_lq_uniform(seed, g, k + 2^(b-1)) < lq.cpq_drop·2^(m-b); (3) Ŵ = α·k*, k* the
 *   nearest surviving point (ties to the lower); scale = α, codes k*.
 * Backward, multi-class straight-through over the surviving points S (one logistic noise of scale σ):
 *   a_k = (g_k + α/2 - w)/σ, b_k = (g_k - α/2 - w)/σ, π_k = s(a_k) - s(b_k), s' = s(1 - s)
 *   dŴ/dw = Σ_S g_k·-(s'(a_k) - s'(b_k))/σ
 *   dŴ/dα = k* + Σ_S g_k·(s'(a_k)(k + ½) - s'(b_k)(k - ½))/σ
 *   dŴ/dσ = Σ_S g_k·-(s'(a_k)a_k - s'(b_k)b_k)/σ
 *   with open end bins (a departure from the spec): the lowest surviving point's bin reaches -∞ (s(b) := 0,
 *   its b terms vanish), the highest one's +∞ (s(a) := 1, its a terms vanish), because the forward
 *   saturates there; closed end bins put the mass beyond the grid at Ŵ = 0 and give dŴ/dw ≈ -g_max/(4σ)
 *   at the outer edges, where the largest weights sit. With every point kept dŴ/dw = (α/σ)Σ_edges s' >= 0.
 *   summed over the points whose bin [g_k - α/2, g_k + α/2] comes within (16 + (b-1)·ln 2)σ of w (the
 *   spec's "±12σ of w", measured from the bin edges and widened so that the cut-off terms, weighted by
 *   |g_k| <= 2^(b-1)α, stay at float rounding level; ±12σ around the points alone loses whole edge
 *   terms, e.g. all of dŴ/dw near a bin edge once 12σ < α/2).
 *   Gates: dL/dP_m = Σ_w dL/dŴ·Σ_{k of level m} π_k (g_k - Ŵ) (all points of the level, survived or
 *   not: how Ŵ would move if the level were in), P_m = Π_{m'=3..m} p_m', p = s(10·φ);
 *   dL/dφ_j = 10·Σ_{m>=j} (dL/dP_m + λ·2^(m-1)) P_m (1 - p_j), the λ part from the penalty
 *   λ·E[points] = λ(4 + Σ_m 2^(m-1) P_m), λ = lq.cpq_bit_penalty (added here, every backward).
 * Init: α = max|W_g|/(2^(b-1) - 1), σ = α/3, φ_m = 0.3 (gates open, p = σ(10·φ) = 0.95). */
#include "quant/weight_quant.h"

#include <limits.h>
#include <math.h>
#include <string.h>

static const char *const names[] = {"step", "noise", "gate", NULL};

enum { STEP, NOISE, GATE };

#define CPQ_WINDOW 16.0 /* in σ beyond the bin edges (see reach in bwd_rows) */
#define CPQ_CHUNKS 64   /* fixed split of a per-tensor sum: the same result for any thread count */
#define CPQ_NSUM (2 + 17) /* dα, dσ, dL/dP_m at index 2 + m (m <= 16) */

static int group_size(const qsnn_weight_quant_cfg *cfg, int k) {
    return k == GATE && cfg->bits > 3 ? cfg->bits - 2 : 1;
}

typedef struct cpq_group {
    int b, g;          /* bits, scale group */
    float alpha_f;     /* guarded α: Ŵ = α·k in float */
    double alpha, sigma;
    int top;           /* highest level the gates keep */
    int train;         /* DropBits on */
    double pdrop[17]; /* drop probability of a point of level m: lq.cpq_drop·2^(m-b) */
    uint64_t seed;
    int gated;         /* gates in use (learned bits, b > 2) */
    const float *phi;  /* φ_3.. of this group */
} cpq_group;

static inline double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }
/* Gate probabilities are σ(CPQ_GATE_GAIN·φ): Adam moves φ by about the learning rate per step, and
 * the gain lets a gate close within a few epochs (from φ = 0.3, p = 0.95) at the weights' learning rate. */
#define CPQ_GATE_GAIN 10.0

static cpq_group group_of(const qsnn_weight_quant_cfg *cfg, int ns, int j) {
    cpq_group q;
    const int b = cfg->bits;
    q.b = b, q.g = j;
    const float a = cfg->learned[STEP * ns + j];
    q.alpha_f = a > 1e-8f ? a : 1e-8f;
    q.alpha = q.alpha_f;
    const double s = cfg->learned[NOISE * ns + j];
    q.sigma = s > 1e-3 * q.alpha ? s : 1e-3 * q.alpha;
    q.train = cfg->pass.training != 0;
    for (int m = 0; m <= b; m++) q.pdrop[m] = cfg->lq.cpq_drop * ldexp(1.0, m - b);
    q.seed = cfg->pass.seed;
    q.gated = cfg->lq.cpq_learn_bits && b > 2;
    q.phi = cfg->learned + qsnn_wq_learned_offset(&qsnn_wq_cpq, cfg, ns, GATE) + (size_t)j * group_size(cfg, GATE);
    q.top = b;
    if (q.gated) {
        q.top = 2;
        for (int m = 3; m <= b; m++) {
            const int on = q.train ? qsnn_lq_uniform(q.seed, 0xC0DE0000u + (uint64_t)j, (uint64_t)m) < sigm(CPQ_GATE_GAIN * q.phi[m - 3])
                                   : q.phi[m - 3] > 0.0f;
            if (!on) break;
            q.top = m;
        }
    }
    return q;
}

static inline int level_of(int k, int b) {
    if (k == 0) return 1;
    unsigned u = (unsigned)k; /* two's complement keeps the trailing zeros of |k| */
    int tz = 0;
    while (!(u & 1u)) u >>= 1, tz++;
    return b - tz;
}

static inline int survives(const cpq_group *q, int k, int m) {
    if (m > q->top) return 0;
    if (m <= 2 || !q->train) return 1;
    return qsnn_lq_uniform(q->seed, (uint64_t)q->g, (uint64_t)(k + (1 << (q->b - 1)))) >= q->pdrop[m];
}

/* k* of w: the nearest surviving point, ties to the lower. The surviving points lie on the grid of
 * step 2^(b-top); the 2-bit points (multiples of 2^(b-2)) always survive, so walks are bounded. */
static int nearest(const cpq_group *q, float w) {
    const int half = 1 << (q->b - 1), step = 1 << (q->b - q->top), kmin = -half, kmax = half - step;
    const double v = (double)w / q->alpha; /* decides exact ties exactly (see the tests) */
    if (!(v > kmin)) return kmin;          /* NaN too: no abort on bad data */
    int lo = v >= kmax ? kmax : (int)floor(v / step) * step;
    while (!survives(q, lo, level_of(lo, q->b))) lo -= step;
    if (v >= kmax) return lo;
    int hi = (int)floor(v / step) * step + step;
    while (hi <= kmax && !survives(q, hi, level_of(hi, q->b))) hi += step;
    if (hi > kmax) return lo;
    return v - lo <= hi - v ? lo : hi;
}

/* Tables of one scale group for grids of up to 2^CPQ_TAB_BITS points (indices k + 2^(b-1)): the level,
 * and for the cell [k, k+1) the nearest surviving points below (lo) and above (hi, INT_MAX: none),
 * which nearest() would walk to; built with 2^b draws instead of a walk per weight. */
#define CPQ_TAB_BITS 10
typedef struct cpq_near {
    int lo[1 << CPQ_TAB_BITS], hi[1 << CPQ_TAB_BITS];
    unsigned char keep[1 << CPQ_TAB_BITS], lev[1 << CPQ_TAB_BITS];
} cpq_near;

static void near_build(cpq_near *T, const cpq_group *q) {
    const int half = 1 << (q->b - 1), n = 2 * half;
    for (int k = -half; k < half; k++) {
        const int m = level_of(k, q->b);
        T->lev[k + half] = (unsigned char)m;
        T->keep[k + half] = (unsigned char)survives(q, k, m);
    }
    int last = -half; /* always kept (level 1) */
    for (int i = 0; i < n; i++) last = T->keep[i] ? i - half : last, T->lo[i] = last;
    int next = INT_MAX;
    for (int i = n - 1; i >= 0; i--) T->hi[i] = next, next = T->keep[i] ? i - half : next;
}

/* nearest() by the table: the same comparisons on the same points, hence the same k*. */
static inline int nearest_tab(const cpq_near *T, const cpq_group *q, float w) {
    const int half = 1 << (q->b - 1);
    const double v = (double)w / q->alpha;
    if (!(v > -half)) return -half;
    const int c = v >= half - 1 ? half - 1 : (int)floor(v), lo = T->lo[c + half], hi = T->hi[c + half];
    if (hi == INT_MAX) return lo;
    return v - lo <= hi - v ? lo : hi;
}

static void fwd(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *Wq, float *scales) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1;
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        const cpq_group q = group_of(cfg, ns, pc ? o : 0);
        if (o == 0 || pc) scales[pc ? o : 0] = q.train ? q.alpha_f : ldexpf(q.alpha_f, q.b - q.top);
        if (q.b <= CPQ_TAB_BITS && (1 << q.b) <= 4 * in) { /* the table pays for itself */
            cpq_near T;
            near_build(&T, &q);
            for (int i = 0; i < in; i++) Wq[(size_t)o * in + i] = q.alpha_f * (float)nearest_tab(&T, &q, W[(size_t)o * in + i]);
            continue;
        }
        for (int i = 0; i < in; i++) {
            const size_t j = (size_t)o * in + i;
            Wq[j] = q.alpha_f * (float)nearest(&q, W[j]);
        }
    }
}

static void codes(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in, int32_t *c) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1;
    (void)scales;
    for (int o = 0; o < out; o++) {
        const cpq_group q = group_of(cfg, ns, pc ? o : 0);
        const int step = q.train ? 1 : 1 << (q.b - q.top); /* k* is a multiple of it */
        for (int i = 0; i < in; i++) c[(size_t)o * in + i] = nearest(&q, W[(size_t)o * in + i]) / step;
    }
}

/* The fast backward's tables (b <= CPQ_TAB_BITS), per bin edge e = k + 2^(b-1) + 1 (between points k
 * and k + 1, at α(k + ½)), zero-padded by a block of lanes: c_e = g_k[k in S] - g_(k+1)[k+1 in S], the
 * coefficient of s'(x_e) once the estimators are summed per edge rather than per point (each internal
 * edge is shared by two bins; 0 on the open edges below the lowest and above the highest surviving
 * point), c_e·(k + ½), and the position. Float: the edge terms are summed per
 * weight in float (relative error ~1e-6 of their magnitude, below the window's cut-off), the learned
 * sums over weights in double. */
#define CPQ_LANES 8 /* fixed-size blocks: lane sums in a fixed order, whatever the vector width */
typedef float v8f __attribute__((vector_size(32))); /* GCC/Clang vectors: no masked or scalar tails */
typedef int32_t v8i __attribute__((vector_size(32)));
static inline v8f v8_load(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v8_store(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static inline v8f v8_sel(v8i m, v8f a, v8f b) { /* m ? a : b, by the bits */
    v8i ia, ib;
    memcpy(&ia, &a, sizeof ia), memcpy(&ib, &b, sizeof ib);
    ia = (ia & m) | (ib & ~m);
    memcpy(&a, &ia, sizeof a);
    return a;
}
static inline double v8_sum(v8f v) { /* a fixed tree */
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}
#define CPQ_NE ((1 << CPQ_TAB_BITS) + 2 + CPQ_LANES)
typedef struct cpq_tab { /* aligned: the vector code's layout depends on the indices only */
    _Alignas(64) float c[CPQ_NE], ck[CPQ_NE], pos[CPQ_NE], s[CPQ_NE];
    _Alignas(64) float sy[2 * CPQ_NE]; /* sy[CPQ_NE + u] = e^(-uΔ) for u >= 0, e^(-(-u-1)Δ) for u < 0 */
    cpq_near nt;
} cpq_tab;

#define CPQ_TINY 1e-18f /* factors of t below it are flushed: products stay normal floats */

static void tab_build(cpq_tab *T, const cpq_group *q) {
    const int half = 1 << (q->b - 1);
    near_build(&T->nt, q);
    const int ne = 2 * half + CPQ_LANES + 2; /* the entries the blocks can reach */
    int klo = -half, khi = half - 1; /* the lowest and highest surviving points: their outer edges are open */
    while (klo < khi && !T->nt.keep[klo + half]) klo++;
    while (khi > klo && !T->nt.keep[khi + half]) khi--;
    for (int e = 0; e < ne; e++) {
        const int k = e - half - 1; /* the point below the edge */
        const double lo = k >= -half && k < khi && T->nt.keep[k + half] ? q->alpha * k : 0.0;
        const double hi = k + 1 > klo && k + 1 < half && T->nt.keep[k + 1 + half] ? q->alpha * (k + 1) : 0.0;
        T->c[e] = (float)(lo - hi), T->ck[e] = (float)((lo - hi) * (k + 0.5)), T->pos[e] = (float)(q->alpha * (k + 0.5));
    }
    const double dl = q->alpha / q->sigma;
    for (int j = 0; j < ne; j++) {
        const double r = dl * j < 42.0 ? exp(-dl * j) : 0.0; /* e^-42 < CPQ_TINY */
        T->sy[CPQ_NE + j] = T->sy[CPQ_NE - 1 - j] = r < CPQ_TINY ? 0.0f : (float)r;
    }
}

/* Sums of rows [o0, o1) (one group per row when per channel) into sum[CPQ_NSUM]; dL/dw in place.
 * Per weight the edges x_e = (α(k + ½) - w)/σ form an arithmetic progression of step Δ = α/σ: with
 * t_e = e^-|x_e| = t_p·e^(-jΔ), walking outwards from the edges p - 1, p either side of w (the factors
 * decay, no overflow), s = 1/(1 + t) (x >= 0) or t/(1 + t) and s' = t/(1 + t)^2 need one exp per
 * weight (t_(p-1) = e^-Δ/t_p) instead of one per edge. The window is rounded up to whole blocks of
 * lanes (a few more edges of the full sum; beyond the grid c_e = 0). */
static void bwd_rows_tab(const qsnn_weight_quant_cfg *cfg, int ns, int pc, const float *W, int in, int o0, int o1,
                         float *grad, double *sum, cpq_tab *T) {
    cpq_group q = group_of(cfg, ns, pc ? o0 : 0);
    const int half = 1 << (q.b - 1), n = 2 * half;
    for (int o = o0; o < o1; o++) {
        if (pc && o > o0) q = group_of(cfg, ns, o);
        const double al = q.alpha, sg = q.sigma, isg = 1.0 / sg, ial = 1.0 / al, dl = al / sg;
        const float isgf = (float)isg, dlf = (float)dl, rrf = expf(-dlf);
        /* π_k's edges lie α/2 from g_k, and a cut-off edge term carries |g_k|/σ <= 2^(b-1)α/σ: points
         * whose nearer edge is beyond (16 + (b-1)·ln 2)σ add below e^-16 relative to α/σ (float level) */
        const double reach = 0.5 * al + (CPQ_WINDOW + (q.b - 1) * 0.6931471805599453) * sg;
        if (o == o0 || pc) tab_build(T, &q);
        const float *c = T->c, *ck = T->ck, *pos = T->pos, *sy = T->sy + CPQ_NE;
        float *s = T->s;
        /* blocks per weight: the same for the whole row (no data-dependent trip counts), enough for
         * the edges of points k0..k1 (at most 2·reach/α + 2), at most the whole grid */
        const double nbf = ceil((floor(2.0 * reach * ial) + 2.0) / CPQ_LANES), nball = (n + CPQ_LANES) / CPQ_LANES;
        const int nb = nbf < nball ? (int)nbf : (int)nball, emax = n + CPQ_LANES + 1 - nb * CPQ_LANES;
        for (int i = 0; i < in; i++) {
            const size_t j = (size_t)o * in + i;
            const double w = W[j], gq = grad[j];
            const float wf = W[j];
            const int ks = nearest_tab(&T->nt, &q, W[j]);
            /* the lower edge of point k0, the first whose bin comes within reach; clamped in double
             * before the cast (huge or NaN w) so that the blocks stay in the padded table */
            const double e0f = ceil((w - reach) * ial) + half;
            const int e0 = e0f > 0 ? (e0f < emax ? (int)e0f : (emax > 0 ? emax : 0)) : 0;
            /* p: the first edge at or above w (rounding moves it by one edge at most, where either
             * form is exact), within the padded table */
            const double pf = ceil(w * ial - 0.5) + half + 1;
            const int p = pf > 0 ? (pf <= n + 1 ? (int)pf : n + 1) : 0;
            const float xp = (float)((al * (p - half - 0.5) - w) * isg), tp = expf(-xp);
            /* x_(p-1) = x_p - Δ < 0; e^-Δ underflows past Δ ~ 87. Both at most 1: beyond the grid
             * (p clamped) a lane may take the wrong side, but there c_e = 0 */
            const float tm = rrf > 1e-30f ? rrf / tp : expf(xp - dlf);
            const float tpf = tp < CPQ_TINY ? 0.0f : tp < 1.0f ? tp : 1.0f;
            const float tmf = tm < CPQ_TINY ? 0.0f : tm < 1.0f ? tm : 1.0f;
            const v8f wv = (v8f){0} + wf, tpv = (v8f){0} + tpf, tmv = (v8f){0} + tmf;
            v8f aw = {0}, aa = {0}, as = {0};
            for (int eb = e0; eb < e0 + nb * CPQ_LANES; eb += CPQ_LANES) {
                const v8i right = (v8i){0, 1, 2, 3, 4, 5, 6, 7} + (eb - p) >= 0; /* -1 or 0 */
                const v8f t = v8_sel(right, tpv, tmv) * v8_load(sy + eb - p), r = 1.0f / (1.0f + t);
                const v8f d = t * r * r, x = (v8_load(pos + eb) - wv) * isgf, cv = v8_load(c + eb);
                v8_store(s + eb, v8_sel(right, r, t * r));
                aw += cv * d, aa += v8_load(ck + eb) * d, as += cv * d * x;
            }
            const double dw = v8_sum(aw), da = v8_sum(aa), ds = v8_sum(as);
            if (q.gated) { /* the points with both edges in the blocks */
                const double wq = (double)(q.alpha_f * (float)ks);
                const int kh = e0 + nb * CPQ_LANES - 2 < n - 1 ? e0 + nb * CPQ_LANES - 2 : n - 1;
                for (int kk = e0; kk <= kh; kk++) {
                    const int m = T->nt.lev[kk];
                    if (m >= 3) sum[2 + m] += gq * ((double)s[kk + 1] - s[kk]) * (al * (kk - half) - wq);
                }
            }
            grad[j] = (float)(gq * -dw * isg);
            sum[0] += gq * (ks + da * isg);
            sum[1] += gq * -ds * isg;
        }
    }
}

/* The same sums by the per-point formulas (wide grids, b > CPQ_TAB_BITS). */
static void bwd_rows_wide(const qsnn_weight_quant_cfg *cfg, int ns, int pc, const float *W, int in, int o0, int o1,
                          float *grad, double *sum) {
    for (int o = o0; o < o1; o++) {
        const cpq_group q = group_of(cfg, ns, pc ? o : 0);
        const int half = 1 << (q.b - 1);
        const double al = q.alpha, sg = q.sigma, isg = 1.0 / sg;
        const double reach = 0.5 * al + (CPQ_WINDOW + (q.b - 1) * 0.6931471805599453) * sg;
        int kbot = -half, ktop = half - 1; /* open end bins: the lowest and highest surviving points */
        while (kbot < ktop && !survives(&q, kbot, level_of(kbot, q.b))) kbot++;
        while (ktop > kbot && !survives(&q, ktop, level_of(ktop, q.b))) ktop--;
        for (int i = 0; i < in; i++) {
            const size_t j = (size_t)o * in + i;
            const double w = W[j], gq = grad[j];
            const int ks = nearest(&q, W[j]);
            const double wq = (double)(q.alpha_f * (float)ks);
            const double klo = ceil((w - reach) / al), khi = floor((w + reach) / al);
            const int k0 = klo > -half ? (klo < half ? (int)klo : half) : -half;
            const int k1 = khi < half - 1 ? (khi > -half - 1 ? (int)khi : -half - 1) : half - 1;
            double dw = 0.0, da = 0.0, ds = 0.0;
            /* b_k = a_(k-1): one sigmoid per edge, carried to the next point */
            double bb = (al * (k0 - 0.5) - w) * isg, sb = sigm(bb);
            for (int k = k0; k <= k1; k++) {
                const double a = (al * (k + 0.5) - w) * isg, sa = sigm(a), gk = al * k, b_k = bb, s_b = sb;
                bb = a, sb = sa;
                const int m = level_of(k, q.b), in_s = survives(&q, k, m), gate = q.gated && m >= 3;
                if (!in_s && !gate) continue;
                const double pa = k == ktop ? 0.0 : sa * (1.0 - sa), pb = k == kbot ? 0.0 : s_b * (1.0 - s_b);
                if (in_s) {
                    dw += gk * -(pa - pb) * isg;
                    da += gk * (pa * (k + 0.5) - pb * (k - 0.5)) * isg;
                    ds += gk * -(pa * a - pb * b_k) * isg;
                }
                if (gate) sum[2 + m] += gq * (sa - s_b) * (gk - wq);
            }
            grad[j] = (float)(gq * dw);
            sum[0] += gq * (ks + da);
            sum[1] += gq * ds;
        }
    }
}

static void bwd_rows(const qsnn_weight_quant_cfg *cfg, int ns, int pc, const float *W, int in, int o0, int o1,
                     float *grad, double *sum) {
    for (int t = 0; t < CPQ_NSUM; t++) sum[t] = 0.0;
    if (cfg->bits <= CPQ_TAB_BITS) {
        cpq_tab T;
        bwd_rows_tab(cfg, ns, pc, W, in, o0, o1, grad, sum, &T);
    } else {
        bwd_rows_wide(cfg, ns, pc, W, in, o0, o1, grad, sum);
    }
}

/* The learned gradients of scale group g from its sums: α, σ, and the gates with the bit penalty. */
static void finish_group(const qsnn_weight_quant_cfg *cfg, int ns, int g, const double *sum) {
    float *lg = cfg->learned_grad;
    lg[STEP * ns + g] = (float)sum[0];
    lg[NOISE * ns + g] = (float)sum[1];
    const int gs = group_size(cfg, GATE), b = cfg->bits;
    float *gg = lg + qsnn_wq_learned_offset(&qsnn_wq_cpq, cfg, ns, GATE) + (size_t)g * gs;
    if (!(cfg->lq.cpq_learn_bits && b > 2)) {
        for (int t = 0; t < gs; t++) gg[t] = 0.0f;
        return;
    }
    const float *phi = cfg->learned + qsnn_wq_learned_offset(&qsnn_wq_cpq, cfg, ns, GATE) + (size_t)g * gs;
    double p[17], P[17];
    for (int m = 3; m <= b; m++) {
        p[m] = sigm(CPQ_GATE_GAIN * phi[m - 3]);
        P[m] = (m == 3 ? 1.0 : P[m - 1]) * p[m];
    }
    const double lam = cfg->lq.cpq_bit_penalty;
    for (int jj = 3; jj <= b; jj++) {
        double acc = 0.0;
        for (int m = b; m >= jj; m--) acc += (sum[2 + m] + lam * ldexp(1.0, m - 1)) * P[m];
        gg[jj - 3] = (float)(acc * CPQ_GATE_GAIN * (1.0 - p[jj]));
    }
}

static void bwd(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in, float *grad) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1;
    (void)scales;
    if (pc) {
        #pragma omp parallel for schedule(static)
        for (int o = 0; o < out; o++) {
            double s[CPQ_NSUM];
            bwd_rows(cfg, ns, pc, W, in, o, o + 1, grad, s);
            finish_group(cfg, ns, o, s);
        }
        return;
    }
    double part[CPQ_CHUNKS][CPQ_NSUM];
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < CPQ_CHUNKS; c++)
        bwd_rows(cfg, ns, pc, W, in, (int)((long)out * c / CPQ_CHUNKS), (int)((long)out * (c + 1) / CPQ_CHUNKS), grad,
                 part[c]);
    double s[CPQ_NSUM];
    for (int t = 0; t < CPQ_NSUM; t++) {
        s[t] = 0.0;
        for (int c = 0; c < CPQ_CHUNKS; c++) s[t] += part[c][t]; /* fixed order */
    }
    finish_group(cfg, ns, 0, s);
}

static void init(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *learned) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1, gs = group_size(cfg, GATE);
    float *phi = learned + qsnn_wq_learned_offset(&qsnn_wq_cpq, cfg, ns, GATE);
    for (int g = 0; g < ns; g++) {
        const size_t n = pc ? (size_t)in : (size_t)in * out;
        const float *w = W + (size_t)(pc ? g : 0) * in;
        float m = 0.0f;
        for (size_t i = 0; i < n; i++) m = fabsf(w[i]) > m ? fabsf(w[i]) : m;
        float a = m / (float)((1 << (cfg->bits - 1)) - 1);
        a = a > 1e-8f ? a : 1e-8f;
        learned[STEP * ns + g] = a;
        learned[NOISE * ns + g] = a / 3.0f;
        for (int t = 0; t < gs; t++) phi[(size_t)g * gs + t] = 0.3f;
    }
}

/* The mean over scale groups of the inference width beff. */
static double effective_bits(const qsnn_weight_quant_cfg *cfg, int out, int in) {
    (void)in;
    if (!cfg->learned || !(cfg->lq.cpq_learn_bits && cfg->bits > 2)) return (double)cfg->bits;
    qsnn_weight_quant_cfg hard = *cfg;
    memset(&hard.pass, 0, sizeof hard.pass);
    const int ns = qsnn_weight_quant_nscales(cfg, out);
    double s = 0.0;
    for (int g = 0; g < ns; g++) s += group_of(&hard, ns, g).top;
    return s / ns;
}

const qsnn_weight_quant_ops qsnn_wq_cpq = {.name = "cpq", .forward = fwd, .backward = bwd, .codes = codes,
                                           .n_learned = 3, .learned_names = names, .init = init, .min_bits = 2,
                                           .no_pow2 = 1, .group_size = group_size,
                                           .effective_bits = effective_bits};
