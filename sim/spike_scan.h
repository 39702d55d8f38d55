/* Finding the non-zero entries of a spike row fast: 64 inputs at a time become a bit mask
 * (AVX2 compare + movemask where available, a scalar loop otherwise), then set bits are visited
 * with count-trailing-zeros. Avoids one unpredictable branch per input at typical firing rates. */
#ifndef QSNN_SIM_SPIKE_SCAN_H
#define QSNN_SIM_SPIKE_SCAN_H

#include <stdint.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

static inline uint64_t qsnn_nonzero_mask64(const float *x) {
#if defined(__AVX2__)
    const __m256 zero = _mm256_setzero_ps();
    uint64_t m = 0;
    for (int k = 0; k < 8; k++) {
        const __m256 v = _mm256_loadu_ps(x + 8 * k);
        m |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ)) << (8 * k);
    }
    return m;
#else
    uint64_t m = 0;
    for (int k = 0; k < 64; k++) m |= (uint64_t)(x[k] != 0.0f) << k;
    return m;
#endif
}

/* Writes the indices j < n with x[j] != 0 into idx (capacity n); returns their count. */
static inline int qsnn_nonzero_indices(const float *x, int n, int *idx) {
    int c = 0, j0 = 0;
    for (; j0 + 64 <= n; j0 += 64) {
        uint64_t m = qsnn_nonzero_mask64(x + j0);
        while (m) {
            idx[c++] = j0 + __builtin_ctzll(m);
            m &= m - 1;
        }
    }
    for (int j = j0; j < n; j++)
        if (x[j] != 0.0f) idx[c++] = j;
    return c;
}

#endif
