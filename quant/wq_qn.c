/* Quantization Networks (Yang et al. 2019; quantizers.md §5), for weights: quantization as a soft
 * staircase of unit steps. b bits, qD = 2^(b-1) - 1, integer levels -qD..qD, n = 2qD steps, offset
 * o = qD. Learned per scale group (tensor or output neuron): output scale α ("alpha"), input scale β
 * ("beta") and the n sorted breakpoints b_i ("breakpoints", frozen: fixed at init, stored, not trained).
 *   training pass  Ŵ = α(Σ_i σ(z_i) - o),  z_i = T(βw - b_i) clamped to [-10, 10],
 *                  T = qsnn_qn_temperature(lq, epoch); scales = α
 *   otherwise      code = #{i : βw > b_i} - o,  Ŵ = α·code (codes × scales == Ŵ bit for bit)
 *   backward (soft form at the pass's temperature, also after an inference forward)
 *                  dŴ/dw = αβT Σ σ_i(1-σ_i),  dŴ/dα = Σ σ_i - o,  dŴ/dβ = αT·w·Σ σ_i(1-σ_i),
 *                  breakpoints 0.
 * A term whose clamp is active (|z_i| >= 10) counts as exactly 1 (z >= 10) or 0 and adds nothing to the
 * derivatives: only breakpoints within ±10/T of βw are evaluated (binary search), and as T grows the
 * soft staircase reaches the hard one (σ(10) would leave 4.5e-5 per step behind).
 * Init per scale group: β = 1.25·qD / max|W_g|, α = 1/β; 1-D k-means (Lloyd) of βW_g into n + 1
 * clusters with the centres starting at the levels, until nothing changes or 50 iterations (an empty
 * cluster keeps its centre, a point on a midpoint joins the lower cluster); b_i = midpoint of sorted
 * centres i-1 and i. α and β act as 1e-8 where they are smaller (the optimizer may cross 0; a negative β
 * would turn the staircase around). */
#include "quant/weight_quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"alpha", "beta", "breakpoints", NULL};

enum { A, B, BP };

static inline int qd_of(int bits) { return bits >= 2 ? (1 << (bits - 1)) - 1 : 1; }

static int group_size(const qsnn_weight_quant_cfg *cfg, int k) { return k == BP ? 2 * qd_of(cfg->bits) : 1; }

static inline float guard(float v) { return v >= 1e-8f ? v : 1e-8f; }

typedef struct qn_group {
    float alpha, beta;
    const float *b; /* n breakpoints */
    int n, o, sorted;
} qn_group;

static qn_group group_of(const qsnn_weight_quant_cfg *cfg, int ns, int j) {
    qn_group q;
    q.o = qd_of(cfg->bits);
    q.n = 2 * q.o;
    q.alpha = guard(cfg->learned[A * ns + j]);
    q.beta = guard(cfg->learned[B * ns + j]);
    q.b = cfg->learned + (size_t)BP * ns + (size_t)j * q.n;
    q.sorted = 1; /* init sorts them; anything else (a hand-edited checkpoint) takes the slow path */
    for (int i = 1; i < q.n && q.sorted; i++) q.sorted = q.b[i - 1] <= q.b[i];
    return q;
}

/* #{i : x > b_i} */
static inline int steps_below(const qn_group *q, float x) {
    if (!q->sorted) {
        int c = 0;
        for (int i = 0; i < q->n; i++) c += x > q->b[i];
        return c;
    }
    int lo = 0, hi = q->n;
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if (x > q->b[mid]) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* First index in [lo, n) with b_i >= v (sorted breakpoints). */
static inline int first_geq(const float *b, int lo, int n, double v) {
    int hi = n;
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if ((double)b[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Σ σ(z_i) (*sig) and Σ σ_i(1-σ_i) over the unclamped terms (*dsig) at x = βw. */
static inline void soft_sums(const qn_group *q, double T, float x, double *sig, double *dsig) {
    const double xd = x;
    int lo = 0, hi = q->n, on = 0;
    if (q->sorted) {
        /* a margin keeps every skipped term certainly clamped; the loop classifies the rest by z */
        const double w = 10.0 / T * (1.0 + 1e-6);
        lo = first_geq(q->b, 0, q->n, xd - w);
        hi = first_geq(q->b, lo, q->n, xd + w);
        on = lo;
    }
    double s = 0.0, d = 0.0;
    for (int i = lo; i < hi; i++) {
        const double z = T * (xd - (double)q->b[i]);
        if (z >= 10.0) on++;
        else if (z > -10.0) {
            const double e = 1.0 / (1.0 + exp(-z));
            s += e;
            d += e * (1.0 - e);
        }
    }
    *sig = (double)on + s;
    *dsig = d;
}

static inline double temperature(const qsnn_weight_quant_cfg *cfg) {
    return qsnn_qn_temperature(&cfg->lq, cfg->pass.epoch);
}

static void fwd_row(const qn_group *q, int training, double T, const float *w, int in, float *wq) {
    for (int i = 0; i < in; i++) {
        const float x = q->beta * w[i];
        if (training) {
            double s, d;
            soft_sums(q, T, x, &s, &d);
            wq[i] = (float)((double)q->alpha * (s - (double)q->o));
        } else {
            wq[i] = q->alpha * (float)(steps_below(q, x) - q->o);
        }
    }
}

static void fwd(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *Wq, float *scales) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1, training = cfg->pass.training;
    const double T = temperature(cfg);
    if (!pc) {
        const qn_group q = group_of(cfg, ns, 0);
        scales[0] = q.alpha;
        #pragma omp parallel for schedule(static)
        for (int o = 0; o < out; o++) fwd_row(&q, training, T, W + (size_t)o * in, in, Wq + (size_t)o * in);
        return;
    }
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        const qn_group q = group_of(cfg, ns, o);
        scales[o] = q.alpha;
        fwd_row(&q, training, T, W + (size_t)o * in, in, Wq + (size_t)o * in);
    }
}

static void codes(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in, int32_t *c) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1;
    (void)scales;
    for (int o = 0; o < out; o++) {
        const qn_group q = group_of(cfg, ns, pc ? o : 0);
        for (int i = 0; i < in; i++)
            c[(size_t)o * in + i] = (int32_t)(steps_below(&q, q.beta * W[(size_t)o * in + i]) - q.o);
    }
}

/* W gradient of rows [o0, o1) in place, and the sums of dL/dα, dL/dβ over them (row order). */
static void bwd_rows(const qsnn_weight_quant_cfg *cfg, int ns, const qn_group *shared, double T, const float *W,
                     int in, int o0, int o1, float *grad, double *sum) {
    sum[0] = sum[1] = 0.0;
    for (int o = o0; o < o1; o++) {
        const qn_group q = shared ? *shared : group_of(cfg, ns, o);
        const double ab = (double)q.alpha * q.beta * T, at = (double)q.alpha * T;
        for (int i = 0; i < in; i++) {
            const size_t j = (size_t)o * in + i;
            const float w = W[j];
            double s, d;
            soft_sums(&q, T, q.beta * w, &s, &d);
            const double gh = grad[j];
            grad[j] = (float)(gh * ab * d);
            sum[0] += gh * (s - (double)q.o);
            sum[1] += gh * at * (double)w * d;
        }
    }
}

#define QN_CHUNKS 64 /* fixed split of a per-tensor sum: the same bits for any thread count */

static void bwd(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in, float *grad) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1;
    const double T = temperature(cfg);
    (void)scales;
    memset(cfg->learned_grad + (size_t)BP * ns, 0, (size_t)ns * group_size(cfg, BP) * sizeof(float));
    if (pc) {
        #pragma omp parallel for schedule(static)
        for (int o = 0; o < out; o++) {
            double s[2];
            bwd_rows(cfg, ns, NULL, T, W, in, o, o + 1, grad, s);
            cfg->learned_grad[A * ns + o] = (float)s[0];
            cfg->learned_grad[B * ns + o] = (float)s[1];
        }
        return;
    }
    const qn_group q = group_of(cfg, ns, 0);
    double part[QN_CHUNKS][2];
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < QN_CHUNKS; c++)
        bwd_rows(cfg, ns, &q, T, W, in, (int)((long)out * c / QN_CHUNKS), (int)((long)out * (c + 1) / QN_CHUNKS),
                 grad, part[c]);
    double sa = 0.0, sb = 0.0;
    for (int c = 0; c < QN_CHUNKS; c++) sa += part[c][0], sb += part[c][1];
    cfg->learned_grad[A] = (float)sa;
    cfg->learned_grad[B] = (float)sb;
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Lloyd's 1-D k-means on sorted x[0..m) with prefix sums pre[0..m]; c[0..k) sorted, updated in place
 * (nc: scratch of k). Cluster j holds the points in (mid(c[j-1], c[j]), mid(c[j], c[j+1])]. */
static void kmeans_1d(const float *x, const double *pre, size_t m, double *c, double *nc, int k) {
    for (int it = 0; it < 50; it++) {
        size_t start = 0;
        for (int j = 0; j < k; j++) {
            size_t end = m;
            if (j + 1 < k) { /* first point above the midpoint */
                const double mid = 0.5 * (c[j] + c[j + 1]);
                size_t lo = start, hi = m;
                while (lo < hi) {
                    const size_t h = lo + (hi - lo) / 2;
                    if ((double)x[h] <= mid) lo = h + 1;
                    else hi = h;
                }
                end = lo;
            }
            nc[j] = end > start ? (pre[end] - pre[start]) / (double)(end - start) : c[j];
            start = end;
        }
        int changed = 0;
        for (int j = 0; j < k; j++) changed |= nc[j] != c[j], c[j] = nc[j];
        if (!changed) break;
    }
}

static void init(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *learned) {
    const int pc = cfg->granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? out : 1;
    const int qd = qd_of(cfg->bits), n = 2 * qd, k = n + 1;
    const size_t m = pc ? (size_t)in : (size_t)in * out;
    float *x = malloc(m * sizeof *x);
    double *pre = malloc((m + 1) * sizeof *pre), *c = malloc(2 * (size_t)k * sizeof *c);
    for (int g = 0; g < ns; g++) {
        const float *w = W + (size_t)(pc ? g : 0) * in;
        float mx = 0.0f;
        for (size_t i = 0; i < m; i++) mx = fabsf(w[i]) > mx ? fabsf(w[i]) : mx;
        mx = mx > 0.0f ? mx : 1e-3f;
        const float beta = 1.25f * (float)qd / mx;
        learned[A * ns + g] = 1.0f / beta;
        learned[B * ns + g] = beta;
        float *bp = learned + (size_t)BP * ns + (size_t)g * n;
        if (!x || !pre || !c) { /* out of memory: the midpoints of the levels */
            for (int i = 1; i <= n; i++) bp[i - 1] = (float)(i - qd) - 0.5f;
            continue;
        }
        for (int j = 0; j < k; j++) c[j] = j - qd;
        for (size_t i = 0; i < m; i++) x[i] = beta * w[i];
        qsort(x, m, sizeof *x, cmp_float);
        pre[0] = 0.0;
        for (size_t i = 0; i < m; i++) pre[i + 1] = pre[i] + (double)x[i];
        kmeans_1d(x, pre, m, c, c + k, k);
        qsort(c, (size_t)k, sizeof *c, cmp_double);
        for (int i = 1; i <= n; i++) bp[i - 1] = (float)(0.5 * (c[i - 1] + c[i]));
    }
    free(x);
    free(pre);
    free(c);
}

const qsnn_weight_quant_ops qsnn_wq_qn = {.name = "qn", .forward = fwd, .backward = bwd, .codes = codes,
                                          .n_learned = 3, .learned_names = names, .init = init, .min_bits = 2, .max_bits = 8,
                                          .no_pow2 = 1, .group_size = group_size, .frozen = 1u << BP};
