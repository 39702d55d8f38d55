#include "datasets/batch.h"

#include <assert.h>
#include "core/rng.h"

void qsnn_shuffle(uint64_t seed, uint64_t epoch, int64_t n, int64_t *perm) {
    assert(n >= 0 && (uint64_t)n <= UINT32_MAX);
    for (int64_t k = 0; k < n; k++) perm[k] = k;
    qsnn_rng r;
    qsnn_rng_init(&r, seed, QSNN_STREAM_SHUFFLE + epoch);
    for (int64_t k = n - 1; k > 0; k--) {
        const int64_t j = qsnn_rng_below(&r, (uint32_t)(k + 1));
        const int64_t tmp = perm[k];
        perm[k] = perm[j];
        perm[j] = tmp;
    }
}

void qsnn_batch_gather(const qsnn_dataset *ds, const int64_t *idx, int B, float *x, int *y) {
    const int F = ds->features;
    /* A batch is a few hundred KB of conversions: worth threads only when it is large. */
#pragma omp parallel for schedule(static) if ((int64_t)B * F >= (1 << 17))
    for (int b = 0; b < B; b++) {
        const uint8_t *src = ds->images + (size_t)idx[b] * (size_t)F;
        float *dst = x + (size_t)b * (size_t)F;
        for (int f = 0; f < F; f++) dst[f] = (float)src[f] / 255.0f;
    }
    if (y)
        for (int b = 0; b < B; b++) y[b] = ds->labels[idx[b]];
}
