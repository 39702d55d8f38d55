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

/* Element j's value of per-neuron parameter k (QSNN_PN_*), or the layer's scalar v. */
static inline float qsnn_io_p(const qsnn_neuron_io *io, int k, int j, float v) { return io->pn[k] ? io->pn[k][j] : v; }

/* Adds a parameter-gradient term of element j: to the per-element array k when the engine gave one,
 * else to the block's scalar sum. */
static inline void qsnn_io_pg(const qsnn_neuron_io *io, int k, int j, double *sum, double v) {
    if (io->gpn[k]) io->gpn[k][j] += (float)v;
    else *sum += v;
}

/* State quantization of element j with its grid gain (qsnn_neuron_io.qgain). */
static inline float qsnn_io_quant(const qsnn_neuron_io *io, const qsnn_state_quant *q, int j, float x) {
    if (!io->qgain) return qsnn_state_quant_apply(q, x);
    const float g = io->qgain[j];
    return g * qsnn_state_quant_apply(q, x / g);
}
static inline int qsnn_io_clipped(const qsnn_neuron_io *io, const qsnn_state_quant *q, int j, float x) {
    return qsnn_q_clipped(q, io->qgain ? x / io->qgain[j] : x);
}
/* dÛ/ds of an lsq grid for element j: g·dQ/ds at x/g. */
static inline float qsnn_io_lsq_dq(const qsnn_neuron_io *io, const qsnn_state_quant *q, int j, float x) {
    if (!io->qgain) return qsnn_lsq_dq(q, x);
    const float g = io->qgain[j];
    return g * qsnn_lsq_dq(q, x / g);
}

/* Backward of element j's state quantization, the one hook every model uses: g = dL/dx̂ at the quantized state,
 * x the value before quantization; returns dL/dx and adds the grid's learned-value gradients to *gp0, *gp1
 * (NULL: not wanted; the models pass &pg->qp sums only when the engine asks for parameter gradients).
 *   uniform, centered, fixed_point: straight through (zero outside the range with ste_clip);
 *   lsq: straight through as above, dÛ/ds into gp0;
 *   qil, qn, cpq: their own estimators (qsnn_state_lq_back; ste_clip is not used), g·dx̂/dp into gp0, gp1.
 * With a grid gain, x̂ = g_j·Q(x/g_j): dx̂/dx = Q'(x/g_j), dx̂/dp = g_j·dQ/dp(x/g_j). */
static inline float qsnn_io_qback(const qsnn_neuron_io *io, const qsnn_state_quant *q, int j, float x, float g,
                                  double *gp0, double *gp1) {
    if (!q) return g;
    if (q->learned) {
        if (!io->qgain) return qsnn_state_lq_back(q, x, g, gp0, gp1);
        const float gn = io->qgain[j];
        double d0 = 0.0, d1 = 0.0;
        const float r = qsnn_state_lq_back(q, x / gn, g, &d0, &d1);
        if (gp0) *gp0 += (double)gn * d0;
        if (gp1) *gp1 += (double)gn * d1;
        return r;
    }
    if (gp0 && q->cfg.grid == QSNN_GRID_LSQ) *gp0 += (double)g * qsnn_io_lsq_dq(io, q, j, x);
    return qsnn_io_clipped(io, q, j, x) ? 0.0f : g;
}

/* The state quantizer of state s, or NULL. */
static inline const qsnn_state_quant *qsnn_io_q(const qsnn_neuron_io *io, int s) {
    const qsnn_state_quant *q = io->q[s];
    return q && q->enabled ? q : NULL;
}

#endif
