/* Vectorized membrane quantization. Grids of up to 16 levels (any kind): the level index is the
 * number of decision cuts at or below u (qsnn_state_quant.cuts), the level comes from two in-register
 * permutes — no memory gathers. Larger uniform grids: the scalar fast path (arithmetic bracket,
 * one-step correction, nearest level with ties to the lower) on 8 lanes with AVX2 gathers. The soft qn staircase
 * (training passes) and larger tables with explicit cuts take the scalar path. */
#include "quant/state_quant.h"

#if defined(__AVX2__)
#include <immintrin.h>

static void apply_uniform_avx2(const qsnn_state_quant *q, const float *in, float *out, int n) {
    const float *lv = q->levels;
    const __m256 lo = _mm256_set1_ps(q->lo), inv = _mm256_set1_ps(q->inv_step);
    const __m256 first = _mm256_set1_ps(lv[0]), last = _mm256_set1_ps(lv[q->n - 1]);
    const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps((float)(q->n - 2));
    const __m256i one = _mm256_set1_epi32(1), izero = _mm256_setzero_si256(), itop = _mm256_set1_epi32(q->n - 2);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 u = _mm256_loadu_ps(in + j);
        /* k = (int)((u - lo) * inv) clamped to [0, n-2], as the scalar code (which clamps after
         * truncation; truncation of a clamped float gives the same integer) */
        __m256 f = _mm256_mul_ps(_mm256_sub_ps(u, lo), inv);
        f = _mm256_max_ps(f, zero); /* NaN -> 0 (max returns the second operand); restored below */
        f = _mm256_min_ps(f, top);
        __m256i k = _mm256_cvttps_epi32(f);
        /* one-step corrections: lv[k] < u must hold (move down), u <= lv[k+1] (move up) */
        __m256 a = _mm256_i32gather_ps(lv, k, 4);
        const __m256i down = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(a, u, _CMP_NLT_UQ)),
                                              _mm256_cmpgt_epi32(k, izero));
        k = _mm256_add_epi32(k, down); /* down is -1 where true */
        a = _mm256_i32gather_ps(lv, k, 4);
        __m256 b = _mm256_i32gather_ps(lv, _mm256_add_epi32(k, one), 4);
        const __m256i up = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(u, b, _CMP_GT_OQ)),
                                            _mm256_cmpgt_epi32(itop, k));
        k = _mm256_sub_epi32(k, up);
        a = _mm256_i32gather_ps(lv, k, 4);
        b = _mm256_i32gather_ps(lv, _mm256_add_epi32(k, one), 4);
        /* nearest, ties to the lower level */
        const __m256 take_a = _mm256_cmp_ps(_mm256_sub_ps(u, a), _mm256_sub_ps(b, u), _CMP_LE_OQ);
        __m256 r = _mm256_blendv_ps(b, a, take_a);
        r = _mm256_blendv_ps(first, r, _mm256_cmp_ps(u, first, _CMP_GT_OQ)); /* !(u > lv[0]) -> lv[0] */
        r = _mm256_blendv_ps(r, last, _mm256_cmp_ps(u, last, _CMP_GE_OQ));   /* u >= lv[n-1] -> lv[n-1] */
        r = _mm256_blendv_ps(u, r, _mm256_cmp_ps(u, u, _CMP_ORD_Q));          /* NaN stays NaN */
        _mm256_storeu_ps(out + j, r);
    }
    for (; j < n; j++) out[j] = qsnn_state_quant_apply(q, in[j]);
}

static void apply_cuts_avx2(const qsnn_state_quant *q, const float *in, float *out, int n) {
    float tab[16];
    for (int i = 0; i < 16; i++) tab[i] = q->levels[i < q->n ? i : q->n - 1];
    const __m256 t0 = _mm256_loadu_ps(tab), t1 = _mm256_loadu_ps(tab + 8);
    __m256 cut[QSNN_STATE_CUT_LEVELS - 1];
    const int nc = q->n_cuts;
    for (int i = 0; i < nc; i++) cut[i] = _mm256_set1_ps(q->cuts[i]);
    const __m256i seven = _mm256_set1_epi32(7);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 u = _mm256_loadu_ps(in + j);
        __m256i k = _mm256_setzero_si256();
        for (int i = 0; i < nc; i++) /* each passed cut adds 1 (the mask is -1) */
            k = _mm256_sub_epi32(k, _mm256_castps_si256(_mm256_cmp_ps(u, cut[i], _CMP_GE_OQ)));
        const __m256 lo = _mm256_permutevar8x32_ps(t0, k), hi = _mm256_permutevar8x32_ps(t1, k);
        __m256 r = _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_cmpgt_epi32(k, seven)));
        r = _mm256_blendv_ps(u, r, _mm256_cmp_ps(u, u, _CMP_ORD_Q)); /* NaN stays NaN */
        _mm256_storeu_ps(out + j, r);
    }
    for (; j < n; j++) out[j] = qsnn_state_quant_apply(q, in[j]);
}
#endif

void qsnn_state_quant_apply_n(const qsnn_state_quant *q, const float *in, float *out, int n) {
#if defined(__AVX2__)
    if (q->n_cuts > 0 && !q->soft) { /* explicit cuts of qil/qn count the same way */
        apply_cuts_avx2(q, in, out, n);
        return;
    }
    if (q->uniform && q->n >= 2) {
        apply_uniform_avx2(q, in, out, n);
        return;
    }
#endif
    for (int j = 0; j < n; j++) out[j] = qsnn_state_quant_apply(q, in[j]);
}
