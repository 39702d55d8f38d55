#include "datasets/encoder.h"

#include <string.h>

/* Row-sequential: step t reads the t-th of T equal slices of a sample (for 28x28 images and T = 28,
 * image row t), so the network sees 784/T features per step and must remember the earlier rows. */
static void rows_encode(const float *x, int B, int F, int T, uint64_t seed, uint64_t epoch,
                        const int64_t *sample_ids, float *out) {
    (void)seed, (void)epoch, (void)sample_ids;
    const int W = F / T;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            memcpy(out + ((size_t)t * B + b) * W, x + (size_t)b * F + (size_t)t * W, (size_t)W * sizeof *out);
}

const qsnn_encoder_ops qsnn_encoder_rows = {
    .name = "rows",
    .is_static = 0,
    .split_steps = 1,
    .encode = rows_encode,
};
