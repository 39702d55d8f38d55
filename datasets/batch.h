/* Batching: per-epoch permutations and gathering samples into normalized float batches. */
#ifndef QSNN_DATASETS_BATCH_H
#define QSNN_DATASETS_BATCH_H

#include <stdint.h>
#include "datasets/idx.h"

/* Writes a permutation of 0..n-1 into perm[n]: Fisher–Yates driven by the counter-based RNG on
 * (seed, QSNN_STREAM_SHUFFLE + epoch), so an epoch's order depends on nothing else.
 * n must be below 2^32. */
void qsnn_shuffle(uint64_t seed, uint64_t epoch, int64_t n, int64_t *perm);

/* Gathers samples idx[0..B-1] of ds: x[B][features] = pixel / 255 (as (float)p / 255.0f, bit-equal
 * to NumPy's x.astype(float32) / 255.0), y[B] = labels. y may be NULL. */
void qsnn_batch_gather(const qsnn_dataset *ds, const int64_t *idx, int B, float *x, int *y);

#endif
