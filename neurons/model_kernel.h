/* Inline pieces every discrete-time model shares: the spike (hard or, in soft mode, the smooth test
 * spike) and the surrogate derivative by id. Kernels switch on flags outside their inner loops, so
 * these inline to straight-line code. */
#ifndef QSNN_NEURONS_MODEL_KERNEL_H
#define QSNN_NEURONS_MODEL_KERNEL_H

#include "neurons/neuron.h"

static inline float qsnn_spike_fn(float x, int soft, float k) {
    return soft ? qsnn_soft_spike(x, k) : (x > 0.0f ? 1.0f : 0.0f);
}

/* Must stay in step with qsnn_surrogate_grad (tests/test_surrogate.c compares them through LIF). */
static inline float qsnn_surr(int id, float x, float k) {
    switch (id) {
    case QSNN_SURR_ARCTAN: return qsnn_surr_arctan(x, k);
    case QSNN_SURR_FAST_SIGMOID: return qsnn_surr_fast_sigmoid(x, k);
    case QSNN_SURR_SIGMOID: return qsnn_surr_sigmoid(x, k);
    case QSNN_SURR_TRIANGULAR: return qsnn_surr_triangular(x, k);
    case QSNN_SURR_STRAIGHT_THROUGH: return qsnn_surr_straight_through(x, k);
    case QSNN_SURR_SUPERSPIKE: return qsnn_surr_superspike(x, k);
    case QSNN_SURR_EXPONENTIAL: return qsnn_surr_exponential(x, k);
    default: return qsnn_surr_soft(x, k);
    }
}

/* The backward carry of state s at entry: the caller's when the range ends before T, else zero. */
static inline void qsnn_carry_load(const qsnn_neuron_io *io, int s, float *c) {
    const int from = io->carry && io->t1 < io->T;
    for (int j = 0; j < io->n; j++) c[j] = from ? io->carry[(size_t)s * io->n + j] : 0.0f;
}
static inline void qsnn_carry_store(const qsnn_neuron_io *io, int s, const float *c) {
    if (io->carry)
        for (int j = 0; j < io->n; j++) io->carry[(size_t)s * io->n + j] = c[j];
}

/* dÛ/ds of a learned-step (lsq) grid at the pre-quantization value x: round(x/s) - x/s inside the
 * range, the clipped code outside. */
static inline float qsnn_lsq_dq(const qsnn_state_quant *q, float x) {
    const float qn = -(float)(q->n / 2), qp = (float)(q->n / 2 - 1), v = x / q->step;
    return v < qn ? qn : (v > qp ? qp : nearbyintf(v) - v);
}
static inline int qsnn_q_is_lsq(const qsnn_state_quant *q) { return q && q->cfg.grid == QSNN_GRID_LSQ; }
/* Whether the straight-through estimator zeroes the gradient at x (ste_clip, outside the range). */
static inline int qsnn_q_clipped(const qsnn_state_quant *q, float x) {
    return q && q->ste_clip && (x < q->lo || x > q->hi);
}

/* The state quantizer of state s, or NULL. */
static inline const qsnn_state_quant *qsnn_io_q(const qsnn_neuron_io *io, int s) {
    const qsnn_state_quant *q = io->q[s];
    return q && q->enabled ? q : NULL;
}

#endif
