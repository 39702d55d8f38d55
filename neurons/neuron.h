/* Neuron models as an ops table. The engine runs layer-major: a model advances a block of neurons
 * through all T steps at once, reading the input currents of every step and writing the (quantized)
 * state and the spikes of every step; BPTT runs the same block backwards in time.
 *
 * Layout: step t of neuron j lives at [t * stride + j]; j runs over batch × neurons flattened.
 * Input currents use their own step stride (0 = the same current at every step, as with direct
 * encoding, so a static input is never copied T times).
 *
 * Required slots: name, forward, backward. A new model = one new file + one registry line
 * in neuron.c. */
#ifndef QSNN_NEURONS_NEURON_H
#define QSNN_NEURONS_NEURON_H

#include <stddef.h>
#include "neurons/surrogate.h"
#include "quant/state_quant.h"

typedef enum { QSNN_RESET_SUBTRACT = 0, QSNN_RESET_ZERO = 1, QSNN_RESET_NONE = 2 } qsnn_reset;

typedef struct qsnn_neuron_params {
    float beta;      /* leak, clamped to [0, 1] by the engine */
    float theta;     /* threshold, > 0 */
    qsnn_reset reset;
    int reset_grad;  /* 1: gradient flows through the reset term (R not detached) */
    qsnn_surrogate_id surrogate;
    float slope;     /* surrogate parameter (α for arctan, k for fast sigmoid) */
} qsnn_neuron_params;

/* Parameter gradients of one block, reduced by the engine in a fixed order. */
typedef struct qsnn_neuron_pgrad {
    double beta, theta;
    double scale; /* lsq state grids: Σ dL/dÛ · dÛ/ds (before the gradient scale) */
} qsnn_neuron_pgrad;

/* The engine hands models blocks of at most this many neurons (backward keeps per-neuron carries on the stack). */
#define QSNN_NEURON_BLOCK 1024

typedef struct qsnn_neuron_ops {
    const char *name;
    /* cur: [t * i_stride + j]; U: [t * u_stride + j]; S: [t * stride + j], j < n. u_stride 0 keeps
     * only the current membrane (inference). q may be NULL or disabled.
     * Returns the sum of the spikes written (firing-rate statistics without another pass). */
    double (*forward)(const qsnn_neuron_params *p, const qsnn_state_quant *q, int T, int n, const float *cur,
                      size_t i_stride, float *U, size_t u_stride, float *S, size_t stride);
    /* gS: dL/dS (may be NULL), gU: extra dL/dU from the loss (may be NULL), both [t * stride + j].
     * cur is the forward's input (needed when the quantizer clips its gradient).
     * gcur: dL/dI written at [t * gi_stride + j]; gi_stride 0 sums over steps (static input).
     * Parameter gradients are added to *pg when pg is not NULL (skipped otherwise: they cost a reduction). */
    void (*backward)(const qsnn_neuron_params *p, const qsnn_state_quant *q, int T, int n, const float *cur,
                     size_t i_stride, const float *U, const float *gS, const float *gU, size_t stride, float *gcur,
                     size_t gi_stride, qsnn_neuron_pgrad *pg);
} qsnn_neuron_ops;

const qsnn_neuron_ops *qsnn_neuron_find(const char *name);
const char *qsnn_neuron_names(void);
qsnn_reset qsnn_reset_find(const char *name); /* -1 when unknown */
const char *qsnn_reset_name(qsnn_reset r);

extern const qsnn_neuron_ops qsnn_neuron_lif;

#endif
