/* Spike-driven convolution kernels (sim/conv.h): for binary inputs at low firing rates, scatter the
 * weight slices of the inputs that fired instead of multiplying by mostly zeros.
 *
 * Both kernels scan an input row pixel by pixel, group by group, 64 channels at a time (a bit mask,
 * then the set bits), and visit for every pixel with spikes the outputs whose receptive field holds
 * it: oh = (ih + pad - i)/stride where that division is exact and in range (same for ow). */
#include <string.h>

#include "sim/conv.h"
#include "sim/spike_scan.h"

/* Fixed number of row chunks for the weight gradient (a fixed reduction order, like
 * QSNN_SPARSE_CHUNKS in sim/engine.h), so the result does not depend on the thread count. */
enum { CONV_SPIKE_CHUNKS = 16 };

size_t qsnn_conv_spikes_wt_floats(const qsnn_conv_shape *s) { return qsnn_conv_weight_count(s); }

size_t qsnn_conv_spikes_part_floats(const qsnn_conv_shape *s) {
    return (size_t)CONV_SPIKE_CHUNKS * qsnn_conv_weight_count(s);
}

/* Bit k set where x[k] != 0, for n <= 64 (channel blocks shorter than 64 must not read past n). */
static inline uint64_t nz_mask(const float *x, int n) {
    if (n == 64) return qsnn_nonzero_mask64(x);
    uint64_t m = 0;
    int k = 0;
#if defined(__AVX2__)
    const __m256 zero = _mm256_setzero_ps();
    for (; k + 8 <= n; k += 8)
        m |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + k), zero, _CMP_NEQ_UQ)) << k;
#endif
    for (; k < n; k++) m |= (uint64_t)(x[k] != 0.0f) << k;
    return m;
}

/* Indices (c0 + bit) of the set bits of m, ascending; returns their count (<= 64). */
static inline int mask_indices(uint64_t m, int c0, int *idx) {
    int n = 0;
    while (m) {
        idx[n++] = c0 + __builtin_ctzll(m);
        m &= m - 1;
    }
    return n;
}

/* Explicit vectors: left to itself, GCC 12 vectorised these short loops with gathers (about 1.6x
 * slower here). Every path adds in the same order, spike by spike. */
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__)
typedef __m512 vf;
#define VW 16
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VADD _mm512_add_ps
#elif defined(__AVX2__)
typedef __m256 vf;
#define VW 8
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VADD _mm256_add_ps
#endif

/* y[0..n) += w[idx[k]·n + 0..n) for every spike k: y stays in registers across the spikes. */
static inline void add_rows(float *restrict y, const float *restrict w, const int *idx, int nz, int n) {
    int o = 0;
#if defined(VW)
    for (; o + 4 * VW <= n; o += 4 * VW) {
        vf a0 = VLOAD(y + o), a1 = VLOAD(y + o + VW), a2 = VLOAD(y + o + 2 * VW), a3 = VLOAD(y + o + 3 * VW);
        for (int k = 0; k < nz; k++) {
            const float *wk = w + (size_t)idx[k] * n + o;
            a0 = VADD(a0, VLOAD(wk)), a1 = VADD(a1, VLOAD(wk + VW));
            a2 = VADD(a2, VLOAD(wk + 2 * VW)), a3 = VADD(a3, VLOAD(wk + 3 * VW));
        }
        VSTORE(y + o, a0), VSTORE(y + o + VW, a1), VSTORE(y + o + 2 * VW, a2), VSTORE(y + o + 3 * VW, a3);
    }
    for (; o + VW <= n; o += VW) {
        vf a = VLOAD(y + o);
        for (int k = 0; k < nz; k++) a = VADD(a, VLOAD(w + (size_t)idx[k] * n + o));
        VSTORE(y + o, a);
    }
#endif
    for (; o < n; o++) {
        float a = y[o];
        for (int k = 0; k < nz; k++) a += w[(size_t)idx[k] * n + o];
        y[o] = a;
    }
}

/* p[idx[k]·n + 0..n) += g[0..n) for every spike k: g stays in registers. */
static inline void add_to_rows(float *restrict p, const float *restrict g, const int *idx, int nz, int n) {
    int o = 0;
#if defined(VW)
    for (; o + 4 * VW <= n; o += 4 * VW) {
        const vf g0 = VLOAD(g + o), g1 = VLOAD(g + o + VW), g2 = VLOAD(g + o + 2 * VW), g3 = VLOAD(g + o + 3 * VW);
        for (int k = 0; k < nz; k++) {
            float *pk = p + (size_t)idx[k] * n + o;
            VSTORE(pk, VADD(VLOAD(pk), g0)), VSTORE(pk + VW, VADD(VLOAD(pk + VW), g1));
            VSTORE(pk + 2 * VW, VADD(VLOAD(pk + 2 * VW), g2)), VSTORE(pk + 3 * VW, VADD(VLOAD(pk + 3 * VW), g3));
        }
    }
    for (; o + VW <= n; o += VW) {
        const vf g0 = VLOAD(g + o);
        for (int k = 0; k < nz; k++) {
            float *pk = p + (size_t)idx[k] * n + o;
            VSTORE(pk, VADD(VLOAD(pk), g0));
        }
    }
#endif
    for (; o < n; o++)
        for (int k = 0; k < nz; k++) p[(size_t)idx[k] * n + o] += g[o];
}

/* Visits every kernel offset (i, j) and output (oh, ow) with ih = oh·stride - pad + i and
 * iw = ow·stride - pad + j: i ≡ ih + pad (mod stride) and oh falls by one as i grows by stride, so
 * one division per dimension (none in the loops). The body sees i, j, oh, ow. */
#define FOR_TARGETS(s, ih, iw, ...)                                                                   \
    do {                                                                                              \
        const int sh_ = (ih) + (s)->pad, sw_ = (iw) + (s)->pad;                                       \
        const int i0_ = sh_ % (s)->stride, oh0_ = sh_ / (s)->stride;                                 \
        const int j0_ = sw_ % (s)->stride, ow0_ = sw_ / (s)->stride;                                 \
        for (int i = i0_, oh = oh0_; i < (s)->kh && oh >= 0; i += (s)->stride, oh--) {               \
            if (oh >= (s)->out_h) continue;                                                           \
            for (int j = j0_, ow = ow0_; j < (s)->kw && ow >= 0; j += (s)->stride, ow--) {           \
                if (ow >= (s)->out_w) continue;                                                       \
                __VA_ARGS__                                                                           \
            }                                                                                         \
        }                                                                                             \
    } while (0)

void qsnn_conv_forward_spikes(const qsnn_conv_shape *s, const float *W, const float *bias, const float *x,
                              int rows, float *wt, float *y) {
    if (rows <= 0) return;
    const int C = s->in_c, H = s->in_h, Wd = s->in_w, G = s->groups, icg = C / G, ocg = s->out_c / G;
    const int KH = s->kh, KW = s->kw, OC = s->out_c, OW = s->out_w, P = s->out_h * s->out_w;
    const size_t in_row = (size_t)H * Wd * C, out_row = (size_t)P * OC;
    /* wt[i][j][c][o] = W[g·ocg + o][i][j][c - g·icg] with g = c / icg: one contiguous out-vector per input */
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < KH * KW * C; t++) {
        const int c = t % C, ij = t / C, g = c / icg, k = c % icg;
        float *dst = wt + (size_t)t * ocg;
        for (int o = 0; o < ocg; o++) dst[o] = W[((size_t)(g * ocg + o) * KH * KW + ij) * icg + k];
    }
    /* each thread owns whole rows and adds in a fixed order: thread-count independent */
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * in_row;
        float *yr = y + (size_t)r * out_row;
        for (int p = 0; p < P; p++) {
            if (bias)
                memcpy(yr + (size_t)p * OC, bias, (size_t)OC * sizeof(float));
            else
                memset(yr + (size_t)p * OC, 0, (size_t)OC * sizeof(float));
        }
        int idx[64];
        for (int ih = 0; ih < H; ih++)
            for (int iw = 0; iw < Wd; iw++) {
                const float *xp = xr + ((size_t)ih * Wd + iw) * C;
                for (int g = 0; g < G; g++)
                    for (int c0 = g * icg; c0 < (g + 1) * icg; c0 += 64) {
                        const int n = (g + 1) * icg - c0 < 64 ? (g + 1) * icg - c0 : 64;
                        const uint64_t m = nz_mask(xp + c0, n);
                        if (!m) continue;
                        const int nz = mask_indices(m, c0, idx);
                        FOR_TARGETS(s, ih, iw, {
                            add_rows(yr + ((size_t)oh * OW + ow) * OC + (size_t)g * ocg,
                                     wt + (size_t)(i * KW + j) * C * ocg, idx, nz, ocg);
                        });
                    }
            }
    }
}

void qsnn_conv_weight_grad_spikes(const qsnn_conv_shape *s, const float *x, const float *gy, int rows,
                                  float *part, float *gW, float *gbias) {
    const int C = s->in_c, H = s->in_h, Wd = s->in_w, G = s->groups, icg = C / G, ocg = s->out_c / G;
    const int KH = s->kh, KW = s->kw, OC = s->out_c, OW = s->out_w, P = s->out_h * s->out_w;
    const size_t in_row = (size_t)H * Wd * C, out_row = (size_t)P * OC, nw = qsnn_conv_weight_count(s);
    if (rows < 0) rows = 0;
    /* part[chunk][i][j][c][o]: the gradient of wt (see the forward), one partial per fixed row chunk */
    #pragma omp parallel
    {
        int idx[64];
        #pragma omp for schedule(static)
        for (int ch = 0; ch < CONV_SPIKE_CHUNKS; ch++) {
            float *pc = part + (size_t)ch * nw;
            memset(pc, 0, nw * sizeof(float));
            const int r0 = (int)((long long)rows * ch / CONV_SPIKE_CHUNKS);
            const int r1 = (int)((long long)rows * (ch + 1) / CONV_SPIKE_CHUNKS);
            for (int r = r0; r < r1; r++) {
                const float *xr = x + (size_t)r * in_row, *gr = gy + (size_t)r * out_row;
                for (int ih = 0; ih < H; ih++)
                    for (int iw = 0; iw < Wd; iw++) {
                        const float *xp = xr + ((size_t)ih * Wd + iw) * C;
                        for (int g = 0; g < G; g++)
                            for (int c0 = g * icg; c0 < (g + 1) * icg; c0 += 64) {
                                const int n = (g + 1) * icg - c0 < 64 ? (g + 1) * icg - c0 : 64;
                                const uint64_t m = nz_mask(xp + c0, n);
                                if (!m) continue;
                                const int nz = mask_indices(m, c0, idx);
                                FOR_TARGETS(s, ih, iw, {
                                    add_to_rows(pc + (size_t)(i * KW + j) * C * ocg,
                                                gr + ((size_t)oh * OW + ow) * OC + (size_t)g * ocg, idx, nz, ocg);
                                });
                            }
                    }
            }
        }
    }
    /* gW[g·ocg + o][i][j][k] = Σ_chunks part[chunk][i][j][g·icg + k][o], summed in chunk order */
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < KH * KW * C; t++) {
        const int c = t % C, ij = t / C, g = c / icg, k = c % icg;
        for (int o = 0; o < ocg; o++) {
            float acc = 0.0f;
            for (int ch = 0; ch < CONV_SPIKE_CHUNKS; ch++) acc += part[(size_t)ch * nw + (size_t)t * ocg + o];
            gW[((size_t)(g * ocg + o) * KH * KW + ij) * icg + k] = acc;
        }
    }
    if (gbias) { /* dense in gy: as qsnn_conv_backward, channel blocks, each sum over m in order, in double */
        enum { CB = 16 };
        const size_t M = (size_t)rows * P;
        const int nb = (OC + CB - 1) / CB;
        #pragma omp parallel for schedule(static)
        for (int b = 0; b < nb; b++) {
            const int c0 = b * CB, n = OC - c0 < CB ? OC - c0 : CB;
            double acc[CB] = {0};
            for (size_t m = 0; m < M; m++) {
                const float *g = gy + m * OC + c0;
                for (int k = 0; k < n; k++) acc[k] += g[k];
            }
            for (int k = 0; k < n; k++) gbias[c0 + k] = (float)acc[k];
        }
    }
}
