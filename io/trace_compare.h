/* How two recordings of the same inputs differ (e.g. a float model against its quantized twin), per
 * layer. Definitions, for a layer of `out` neurons over N samples of T steps, where a "pair" is a
 * (sample, neuron) and its spike train the set of steps at which it fired:
 *   count_agreement   fraction of pairs whose spike counts are equal in A and B
 *   train_identical   fraction of pairs whose spike trains are identical
 *   rate_a, rate_b    spikes per neuron per step; rate change = rate_b - rate_a
 *   first_spike_shift mean of t1_B - t1_A (first spike steps) over the pairs that fire in both
 *                     (NaN when none do); first_spike_abs_shift the mean of |t1_B - t1_A|
 *   vp_distance       mean over all pairs of the Victor–Purpura distance D_q between the two trains:
 *                     the least cost of turning one into the other by deleting or inserting spikes
 *                     (cost 1 each) and moving a spike by d steps (cost q·d); 0 for identical trains,
 *                     na + nb at most; D_q(i,j) = min(D(i-1,j) + 1, D(i,j-1) + 1,
 *                     D(i-1,j-1) + q·|a_i - b_j|), D(i,0) = i, D(0,j) = j
 *   membrane_rmse     sqrt(mean (U_A - U_B)^2) over every sample, step and neuron recorded in both
 *                     (NaN when no neuron is); membrane_neurons the number of such neurons */
#ifndef QSNN_IO_TRACE_COMPARE_H
#define QSNN_IO_TRACE_COMPARE_H

#include "io/trace.h"

typedef struct qsnn_trace_cmp_layer {
    int out;
    double count_agreement, train_identical;
    double rate_a, rate_b;
    long long both_fire; /* pairs that fire in both */
    double first_spike_shift, first_spike_abs_shift;
    double vp_distance;
    int membrane_neurons;
    double membrane_rmse;
} qsnn_trace_cmp_layer;

/* Victor–Purpura distance between two spike trains (spike steps, any order not needed: ascending
 * expected) with shift cost q >= 0 per step. work holds nb + 1 doubles. */
double qsnn_victor_purpura(const int32_t *a, int na, const int32_t *b, int nb, double q, double *work);

/* Compares two recordings; out has a->n_layers entries. They must record the same inputs: the same
 * samples, steps, layer sizes, sample indices and input values (QSNN_ERR_MISMATCH otherwise, one line
 * naming the first difference; name_a / name_b name the recordings in it). */
qsnn_status qsnn_trace_compare(qsnn_ctx *ctx, const qsnn_trace *a, const qsnn_trace *b, const char *name_a,
                               const char *name_b, double vp_cost, qsnn_trace_cmp_layer *out);

#endif
