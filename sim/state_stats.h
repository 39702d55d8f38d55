/* How membrane values sit on a layer's state grid: a histogram over the grid's levels and the
 * fraction saturated at its ends (the SQUAT study reads these to explain where a grid fails). */
#ifndef QSNN_SIM_STATE_STATS_H
#define QSNN_SIM_STATE_STATS_H

#include "sim/network.h"

#define QSNN_HIST_MAX_BINS 256
#define QSNN_HIST_FLOAT_BINS 64

typedef struct qsnn_state_stats {
    int n_bins;
    int per_level;    /* 1: bin k is level k of the grid (quantized, <= 256 levels) */
    double lo, hi;    /* otherwise: equal bins over [lo, hi] (the grid's ends, or the configured range for
                       * float states), values outside counted in the end bins */
    long long counts[QSNN_HIST_MAX_BINS];
    long long total;
    long long saturated; /* quantized: at the lowest or highest level; float: outside [lo, hi] */
} qsnn_state_stats;

/* Empty statistics shaped for layer L (its grid, or its configured range when states are float). */
void qsnn_state_stats_init(qsnn_state_stats *s, const qsnn_layer *L);
/* Adds n membrane values of layer L, whole rows of its neurons (value i is neuron i % out). The counts do not depend on the thread count. */
void qsnn_state_stats_add(qsnn_state_stats *s, const qsnn_layer *L, const float *U, size_t n);
/* saturated / total (0 when empty). */
double qsnn_state_stats_saturation(const qsnn_state_stats *s);

#endif
