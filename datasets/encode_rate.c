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
        /* Words of counters base/4 .. (base+F-1)/4, in chunks; rows need not start on a multiple of 4. */
        enum { CHUNK = 256 };
        uint32_t words[4 * CHUNK];
        for (int f0 = 0; f0 < F; f0 += 4 * (CHUNK - 1)) {
            const int f1 = F - f0 < 4 * (CHUNK - 1) ? F : f0 + 4 * (CHUNK - 1);
            const uint64_t first = (base + (uint64_t)f0) >> 2, last = (base + (uint64_t)f1 - 1) >> 2;
            qsnn_philox_n(seed, stream, first, (int)(last - first + 1), words);
            for (int f = f0; f < f1; f++) {
                const uint64_t k = base + (uint64_t)f;
                o[f] = qsnn_u32_to_unit(words[4 * ((k >> 2) - first) + (k & 3)]) < xb[f] ? 1.0f : 0.0f;
            }
        }
    }
}

const qsnn_encoder_ops qsnn_encoder_rate = {
    .name = "rate",
    .is_static = 0,
    .encode = rate_encode,
};
