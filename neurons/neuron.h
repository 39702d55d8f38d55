/* Neuron models as an ops table. The engine runs layer-major: a model advances a block of neurons
 * through a range of time steps at once (all T for feed-forward layers, one step at a time for
 * recurrent ones), reading the input currents of every step and writing its (quantized) states and
 * the spikes of every step; BPTT runs the same block backwards in time.
 *
 * Layout: step t of neuron j lives at [t * stride + j]; j runs over batch × neurons flattened.
 * A model with several states (Synaptic: J and U) keeps state s in its own plane, at
 * U[s * plane + t * u_stride + j]; state 0 is the membrane the spike reads. Input currents use their
 * own step stride (0 = the same current at every step, as with direct encoding, so a static input
 * is never copied T times).
 *
 * Required slots: name, n_states, forward, backward. A new model = one new file + one registry line
 * in neuron.c; tests/test_neuron_conformance.c runs every registered model through the same checks. */
#ifndef QSNN_NEURONS_NEURON_H
#define QSNN_NEURONS_NEURON_H

#include <stddef.h>
#include "neurons/surrogate.h"
#include "quant/state_quant.h"

typedef enum { QSNN_RESET_SUBTRACT = 0, QSNN_RESET_ZERO = 1, QSNN_RESET_NONE = 2 } qsnn_reset;

#define QSNN_NEURON_MAX_STATES 3

typedef struct qsnn_neuron_params {
    float beta;      /* leak, clamped to [0, 1] by the engine */
    float theta;     /* threshold, > 0 */
    qsnn_reset reset;
    int reset_grad;  /* 1: gradient flows through the reset term (R not detached) */
    qsnn_surrogate_id surrogate;
    float slope;     /* surrogate parameter (α for arctan, k for fast sigmoid) */
    float alpha;     /* synaptic-current decay (synaptic, alpha), clamped to [0, 1] */
    float in_scale;  /* lapicque: the input's factor dt/C */
    float adapt_decay, adapt_strength; /* alif: ρ and b of θ[t] = θ + b·a[t], a[t] = ρ a[t-1] + S[t-1] */
    float izh_a, izh_b, izh_c, izh_d;  /* izhikevich (1 ms steps, v in mV) */
} qsnn_neuron_params;

/* Parameter gradients of one block, reduced by the engine in a fixed order. */
typedef struct qsnn_neuron_pgrad {
    double beta, theta, alpha;
    /* The state grid's learned values (qsnn_io_qback): lsq: Σ dL/dÛ · dÛ/ds in qp[0] (before LSQ's gradient
     * scale); qil, qn, cpq: dL/dp[0], dL/dp[1] of qsnn_state_quant_cfg.p. */
    double qp[2];
} qsnn_neuron_pgrad;

/* The engine hands models blocks of at most this many neurons (backward keeps per-neuron carries on the stack). */
#define QSNN_NEURON_BLOCK 1024

/* Indices of per-neuron parameter arrays (qsnn_neuron_io.pn, .gpn). */
enum { QSNN_PN_BETA = 0, QSNN_PN_THETA = 1, QSNN_PN_ALPHA = 2, QSNN_PN_COUNT = 3 };

/* One call's buffers. Forward reads cur, q, and writes U and S; backward reads cur, U, gS, gU and
 * writes gcur. */
typedef struct qsnn_neuron_io {
    int T;             /* steps held by the buffers */
    int t0, t1;        /* forward runs t0 .. t1-1 and reads the states of t0-1 (0 at t0 = 0); backward runs
                        * t1-1 down to t0 */
    int n;             /* neurons in the block, <= QSNN_NEURON_BLOCK */
    const float *cur;  /* [t * i_stride + j] */
    size_t i_stride;
    float *U;          /* [s * plane + t * u_stride + j]; u_stride 0 keeps only the latest step (inference) */
    size_t u_stride, plane;
    float *S;          /* [t * stride + j] */
    size_t stride;
    const qsnn_state_quant *q[QSNN_NEURON_MAX_STATES]; /* state s's quantizer, NULL = float */
    /* backward only (training keeps every step: U is read with u_stride = stride) */
    const float *gS, *gU; /* dL/dS, extra dL/dU (state 0) from the loss; [t * stride + j], either may be NULL */
    float *gcur;          /* dL/dI at [t * gi_stride + j]; gi_stride 0 sums over steps (zeroed when t1 = T) */
    size_t gi_stride;
    /* dL/d(state s at step t1-1) from later steps, n_states × n; read when t1 < T (else zero), written for
     * step t0-1 on return. NULL: whole-range calls only. */
    float *carry;
    /* Per-neuron parameters (model.per_neuron): element j's β, θ, α at pn[QSNN_PN_*][j]; NULL = the
     * layer's value in qsnn_neuron_params. */
    const float *pn[QSNN_PN_COUNT];
    /* Per-element state-grid gain g_j = θ_j/θ_ref: every quantized state of element j is g_j·Q(x/g_j), so
     * the grid (built for the layer's reference θ) follows each neuron's threshold; g_j = 1 gives Q(x)
     * bit for bit. NULL = 1. */
    const float *qgain;
    /* Backward: per-element parameter gradients, added to; where given they replace pg's β, θ, α. */
    float *gpn[QSNN_PN_COUNT];
} qsnn_neuron_io;

/* Learnable per-layer parameters a model reads (qsnn_neuron_ops.params). */
enum { QSNN_NP_BETA = 1, QSNN_NP_THETA = 2, QSNN_NP_ALPHA = 4 };

typedef struct qsnn_neuron_ops {
    const char *name;
    int n_states;                                   /* state planes; 0 is the membrane */
    const char *state_names[QSNN_NEURON_MAX_STATES];
    unsigned quantized;  /* bit s: state s goes through the layer's state quantizer every step */
    unsigned params;     /* QSNN_NP_* the model uses (and can learn) */
    int spiking;         /* 0: a readout; S[t] = U[t], not a spike */
    const char *summary; /* one line for --help */
    /* Returns the sum of the spikes written (firing-rate statistics without another pass). */
    double (*forward)(const qsnn_neuron_params *p, const qsnn_neuron_io *io);
    /* Parameter gradients are added to *pg when pg is not NULL (skipped otherwise: they cost a reduction). */
    void (*backward)(const qsnn_neuron_params *p, const qsnn_neuron_io *io, qsnn_neuron_pgrad *pg);
} qsnn_neuron_ops;

const qsnn_neuron_ops *qsnn_neuron_find(const char *name);
const char *qsnn_neuron_names(void);
int qsnn_neuron_count(void);
const qsnn_neuron_ops *qsnn_neuron_get(int i);
qsnn_reset qsnn_reset_find(const char *name); /* -1 when unknown */
const char *qsnn_reset_name(qsnn_reset r);

/* Whole-range calls on a single-state block with one quantizer (tests and tools): the io filled in
 * from the classic argument list. */
double qsnn_neuron_forward_all(const qsnn_neuron_ops *ops, const qsnn_neuron_params *p, const qsnn_state_quant *q,
                               int T, int n, const float *cur, size_t i_stride, float *U, size_t u_stride, float *S,
                               size_t stride);
void qsnn_neuron_backward_all(const qsnn_neuron_ops *ops, const qsnn_neuron_params *p, const qsnn_state_quant *q,
                              int T, int n, const float *cur, size_t i_stride, const float *U, const float *gS,
                              const float *gU, size_t stride, float *gcur, size_t gi_stride, qsnn_neuron_pgrad *pg);

extern const qsnn_neuron_ops qsnn_neuron_lif;
extern const qsnn_neuron_ops qsnn_neuron_synaptic, qsnn_neuron_alpha, qsnn_neuron_lapicque, qsnn_neuron_alif,
    qsnn_neuron_izhikevich, qsnn_neuron_li;

#endif
