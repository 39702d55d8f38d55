/* Counter-based RNG (Philox4x32-10): a random number is a pure function of (seed, key, counter),
 * so results do not depend on which thread draws them or in what order. */
#ifndef QSNN_CORE_RNG_H
#define QSNN_CORE_RNG_H

#include <stdint.h>

/* Four 32-bit random words for (seed, stream, counter). */
void qsnn_philox(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t out[4]);

/* The words of n consecutive counters: out[4 i + w] = word w of qsnn_philox(seed, stream, counter + i).
 * Same numbers as n calls of qsnn_philox (its reference twin), computed in vectorizable blocks. */
void qsnn_philox_n(uint64_t seed, uint64_t stream, uint64_t counter, int n, uint32_t *out);

/* One uniform float in [0, 1) with 24 random bits. */
static inline float qsnn_u32_to_unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* A sequential view of one (seed, stream), for code that draws an unknown number of values. */
typedef struct qsnn_rng {
    uint64_t seed, stream, counter;
    uint32_t buf[4];
    int left;
} qsnn_rng;

void qsnn_rng_init(qsnn_rng *r, uint64_t seed, uint64_t stream);
uint32_t qsnn_rng_u32(qsnn_rng *r);
float qsnn_rng_uniform(qsnn_rng *r);            /* [0, 1) */
uint32_t qsnn_rng_below(qsnn_rng *r, uint32_t n); /* unbiased in [0, n) */

/* Streams used across the library, so that different consumers never share random numbers. */
enum {
    QSNN_STREAM_INIT = 1,    /* + layer index: weight initialisation */
    QSNN_STREAM_SHUFFLE = 64, /* + epoch: per-epoch permutation */
    QSNN_STREAM_ENCODE = 1u << 20, /* + epoch: input encoders (counter = sample, step, feature) */
    QSNN_STREAM_RECURRENT = 1u << 16, /* + layer: recurrent weight initialisation */
    QSNN_STREAM_DROPOUT = 1u << 17,   /* + layer, keyed by the batch's dropout seed: dropout masks */
    QSNN_STREAM_QUANT = 1u << 18,     /* counter = optimizer step: learned quantizers' masks (DropBits) */
};

#endif
