/* Lapicque's RC neuron (snnTorch "Lapicque"), specs/neurons.md:
 *   R[t] = H(U[t-1] - θ)
 *   U[t] = Q(β U[t-1] + k·I[t] - reset term)   k = p->in_scale = dt/C (model.input_scale);
 *                                               β = 1 - dt/(RC) is the user's model.beta
 *   S[t] = H(U[t] - θ)
 * This is LIF with its input scaled: each step scales the input row into a stack buffer (k·I[t],
 * rounded to float first, as written) and runs one step of qsnn_neuron_lif on it; backward runs the
 * LIF step and multiplies its dL/d(k·I) by k. Resets, soft mode, quantization, parameters (β, θ) and
 * their gradients are LIF's. */
#include "neurons/model_kernel.h"

static double lap_forward(const qsnn_neuron_params *p, const qsnn_neuron_io *io) {
    const float k = p->in_scale;
    const int n = io->n;
    float kin[QSNN_NEURON_BLOCK];
    qsnn_neuron_io lio = *io;
    lio.cur = kin;
    lio.i_stride = 0;
    double total = 0.0;
    for (int t = io->t0; t < io->t1; t++) {
        if (t == io->t0 || io->i_stride) { /* a static input is scaled once */
            const float *in = io->cur + (size_t)t * io->i_stride;
            for (int j = 0; j < n; j++) kin[j] = k * in[j];
        }
        lio.t0 = t;
        lio.t1 = t + 1;
        total += qsnn_neuron_lif.forward(p, &lio);
    }
    return total;
}

static void lap_backward(const qsnn_neuron_params *p, const qsnn_neuron_io *io, qsnn_neuron_pgrad *pg) {
    const float k = p->in_scale;
    const int n = io->n;
    const size_t gs = io->gi_stride;
    float *gcur = io->gcur;
    float kin[QSNN_NEURON_BLOCK], gk[QSNN_NEURON_BLOCK], cu_own[QSNN_NEURON_BLOCK];
    qsnn_neuron_io lio = *io;
    lio.cur = kin;
    lio.i_stride = 0;
    lio.gcur = gk;
    lio.gi_stride = 0;
    if (!io->carry) { /* LIF's carry between our one-step calls (whole-range calls) */
        for (int j = 0; j < n; j++) cu_own[j] = 0.0f;
        lio.carry = cu_own;
    }
    if (gs == 0 && io->t1 == io->T)
        for (int j = 0; j < n; j++) gcur[j] = 0.0f;
    for (int t = io->t1 - 1; t >= io->t0; t--) {
        if (t == io->t1 - 1 || io->i_stride) {
            const float *in = io->cur + (size_t)t * io->i_stride;
            for (int j = 0; j < n; j++) kin[j] = k * in[j];
        }
        for (int j = 0; j < n; j++) gk[j] = 0.0f; /* LIF adds into a summed gcur */
        lio.t0 = t;
        lio.t1 = t + 1;
        qsnn_neuron_lif.backward(p, &lio, pg);
        if (gs == 0)
            for (int j = 0; j < n; j++) gcur[j] += k * gk[j];
        else
            for (int j = 0; j < n; j++) gcur[(size_t)t * gs + j] = k * gk[j];
    }
}

const qsnn_neuron_ops qsnn_neuron_lapicque = {
    .name = "lapicque",
    .n_states = 1,
    .state_names = {"U"},
    .quantized = 1u,
    .params = QSNN_NP_BETA | QSNN_NP_THETA,
    .spiking = 1,
    .summary = "Lapicque RC neuron: U = beta U + k I - reset, k = dt/C (model.input_scale)",
    .forward = lap_forward,
    .backward = lap_backward,
};
