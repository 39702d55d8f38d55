#include "datasets/encoder.h"

#include <assert.h>
#include <stddef.h>
#include "core/rng.h"

static void rate_encode(const float *x, int B, int F, int T, uint64_t seed, uint64_t epoch,
                        const int64_t *sample_ids, float *out) {
    assert(sample_ids);
    const uint64_t stream = QSNN_STREAM_ENCODE + epoch;
    const int64_t rows = (int64_t)T * B;
    /* Each (t, b) row is independent and keyed only by (sample, t, f): any split over threads is exact. */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const int t = (int)(r / B), b = (int)(r % B);
        const float *xb = x + (size_t)b * (size_t)F;
        float *o = out + (size_t)r * (size_t)F; /* [t][b][f] */
        const uint64_t base = ((uint64_t)sample_ids[b] * (uint64_t)T + (uint64_t)t) * (uint64_t)F;
        uint32_t words[4];
        uint64_t have = UINT64_MAX; /* counter whose words are in `words`; rows need not start on a multiple of 4 */
        for (int f = 0; f < F; f++) {
            const uint64_t k = base + (uint64_t)f;
            if (k >> 2 != have) {
                have = k >> 2;
                qsnn_philox(seed, stream, have, words);
            }
            o[f] = qsnn_u32_to_unit(words[k & 3]) < xb[f] ? 1.0f : 0.0f;
        }
    }
}

const qsnn_encoder_ops qsnn_encoder_rate = {
    .name = "rate",
    .is_static = 0,
    .encode = rate_encode,
};
