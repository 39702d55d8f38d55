/* Current-based LIF (snnTorch "Synaptic"), specs/neurons.md:
 *   J[t] = Q1(α J[t-1] + I[t])
 *   R[t] = H(U[t-1] - θ)
 *   U[t] = Q0(β U[t-1] + J[t] - reset term)    (subtract R θ; zero R β U[t-1]; none)
 *   S[t] = H(U[t] - θ)
 * States: U (0, the membrane the spike reads), J (1); both quantized, J first, and U integrates the
 * quantized J. The U part is LIF itself: each step filters the input into J's row, then runs one step
 * of qsnn_neuron_lif with that row as its input current, so the two models share their arithmetic
 * (resets, soft mode, reset_grad, clipping, dL/dβ, dL/dθ, LSQ of U) bit for bit. Initial J = U = 0.
 * Learned grids (lsq, qil, qn, cpq): J's grid shares the layer's learned values, so J's terms are added to
 * pg->qp too (qsnn_io_qback).
 * Per-neuron parameters (io->pn, io->qgain, io->gpn): α_j here, J's grid gain g_j; β_j, θ_j and U's gain
 * reach the LIF step through the copied io. */
#include <math.h>
#include "neurons/model_kernel.h"

static double syn_forward(const qsnn_neuron_params *p, const qsnn_neuron_io *io) {
    const float alpha = p->alpha, *pa = io->pn[QSNN_PN_ALPHA];
    const qsnn_state_quant *qj = qsnn_io_q(io, 1);
    const int n = io->n;
    const size_t us = io->u_stride;
    float *J = io->U + io->plane;
    qsnn_neuron_io lio = *io; /* the U part: one LIF step whose input row is J[t] */
    lio.i_stride = 0;
    double total = 0.0;
    for (int t = io->t0; t < io->t1; t++) {
        const float *in = io->cur + (size_t)t * io->i_stride;
        const float *Jp = J + (t ? (size_t)(t - 1) * us : 0); /* us = 0: the same row, read before written */
        float *Jt = J + (size_t)t * us;
        for (int j = 0; j < n; j++) {
            const float jp = t ? Jp[j] : 0.0f;
            const float x = (pa ? pa[j] : alpha) * jp + in[j];
            Jt[j] = qj ? qsnn_io_quant(io, qj, j, x) : x;
        }
        lio.cur = Jt;
        lio.t0 = t;
        lio.t1 = t + 1;
        total += qsnn_neuron_lif.forward(p, &lio);
    }
    return total;
}

static void syn_backward(const qsnn_neuron_params *p, const qsnn_neuron_io *io, qsnn_neuron_pgrad *pg) {
    const float alpha = p->alpha, *pa = io->pn[QSNN_PN_ALPHA];
    const qsnn_state_quant *qj = qsnn_io_q(io, 1);
    const int n = io->n;
    const size_t us = io->u_stride, gs = io->gi_stride;
    const float *J = io->U + io->plane;
    float *gcur = io->gcur;
    float cj[QSNN_NEURON_BLOCK];   /* dL/dJ[t] from step t+1 */
    float gju[QSNN_NEURON_BLOCK];  /* dL/dJ[t] through U[t], from the LIF step */
    float cu_own[QSNN_NEURON_BLOCK];
    qsnn_carry_load(io, 1, cj);
    /* LIF keeps U's carry in plane 0 of the carry buffer: the caller's, or ours for whole-range calls */
    qsnn_neuron_io lio = *io;
    lio.i_stride = 0;
    lio.gcur = gju;
    lio.gi_stride = 0;
    if (!io->carry) {
        for (int j = 0; j < n; j++) cu_own[j] = 0.0f;
        lio.carry = cu_own;
    }
    if (gs == 0 && io->t1 == io->T)
        for (int j = 0; j < n; j++) gcur[j] = 0.0f;
    double ga = 0.0, gq0 = 0.0, gq1 = 0.0;
    for (int t = io->t1 - 1; t >= io->t0; t--) {
        const float *Jt = J + (size_t)t * us, *Jp = J + (t ? (size_t)(t - 1) * us : 0);
        const float *in = io->cur + (size_t)t * io->i_stride;
        for (int j = 0; j < n; j++) gju[j] = 0.0f; /* LIF adds into a summed gcur */
        lio.cur = Jt;
        lio.t0 = t;
        lio.t1 = t + 1;
        qsnn_neuron_lif.backward(p, &lio, pg);
        for (int j = 0; j < n; j++) {
            const float jp = t ? Jp[j] : 0.0f, aj = pa ? pa[j] : alpha;
            const float x = aj * jp + in[j]; /* J[t] before quantization */
            const float g = qsnn_io_qback(io, qj, j, x, cj[j] + gju[j], pg ? &gq0 : NULL, pg ? &gq1 : NULL);
            if (gs == 0) gcur[j] += g;
            else gcur[(size_t)t * gs + j] = g;
            cj[j] = aj * g;
            if (pg) qsnn_io_pg(io, QSNN_PN_ALPHA, j, &ga, (double)g * jp);
        }
    }
    qsnn_carry_store(io, 1, cj);
    if (pg) {
        pg->alpha += ga;
        pg->qp[0] += gq0;
        pg->qp[1] += gq1;
    }
}

const qsnn_neuron_ops qsnn_neuron_synaptic = {
    .name = "synaptic",
    .n_states = 2,
    .state_names = {"U", "J"},
    .quantized = 3u,
    .params = QSNN_NP_BETA | QSNN_NP_THETA | QSNN_NP_ALPHA,
    .spiking = 1,
    .summary = "current-based LIF (snnTorch Synaptic): J = alpha J + I, U = beta U + J - reset",
    .forward = syn_forward,
    .backward = syn_backward,
};
