/* Leaky integrator: a non-spiking readout (snnTorch "Leaky" with the threshold removed), for the
 * output layer (model.output_neuron = li):
 *   U[t] = Q(β U[t-1] + I[t])      (no threshold, no reset; initial U = 0)
 *   S[t] = U[t]                    (not a spike: a count loss over S reads the summed membrane)
 * forward returns 0 (no spikes). Backward: dL/dU[t] = gS[t] + gU[t] + carry from t+1. θ, the reset
 * rule and the surrogate are not used. Parameter: β (per neuron: io->pn, gradient to io->gpn where given);
 * the grid gain g_j of io->qgain applies (no θ here, but the engine may hand gains to any model). */
#include <math.h>
#include "neurons/model_kernel.h"

static double li_forward(const qsnn_neuron_params *p, const qsnn_neuron_io *io) {
    const float beta = p->beta, *pb = io->pn[QSNN_PN_BETA];
    const qsnn_state_quant *q = qsnn_io_q(io, 0);
    const int n = io->n;
    const size_t us = io->u_stride;
    for (int t = io->t0; t < io->t1; t++) {
        const float *in = io->cur + (size_t)t * io->i_stride;
        float *Up = io->U + (t ? (size_t)(t - 1) * us : 0), *Ut = io->U + (size_t)t * us; /* us = 0: one row */
        float *St = io->S + (size_t)t * io->stride;
        for (int j = 0; j < n; j++) {
            const float up = t ? Up[j] : 0.0f;
            float u = (pb ? pb[j] : beta) * up + in[j];
            if (q) u = qsnn_io_quant(io, q, j, u);
            Ut[j] = u;
            St[j] = u;
        }
    }
    return 0.0;
}

static void li_backward(const qsnn_neuron_params *p, const qsnn_neuron_io *io, qsnn_neuron_pgrad *pg) {
    const float beta = p->beta, *pb = io->pn[QSNN_PN_BETA];
    const qsnn_state_quant *q = qsnn_io_q(io, 0);
    const int n = io->n;
    const size_t us = io->u_stride, gs = io->gi_stride;
    float *gcur = io->gcur;
    float cu[QSNN_NEURON_BLOCK]; /* dL/dU[t] from step t+1 */
    qsnn_carry_load(io, 0, cu);
    if (gs == 0 && io->t1 == io->T)
        for (int j = 0; j < n; j++) gcur[j] = 0.0f;
    double gb = 0.0, gq0 = 0.0, gq1 = 0.0;
    for (int t = io->t1 - 1; t >= io->t0; t--) {
        const float *Up = io->U + (t ? (size_t)(t - 1) * us : 0);
        const float *in = io->cur + (size_t)t * io->i_stride;
        const float *gSt = io->gS ? io->gS + (size_t)t * io->stride : NULL;
        const float *gUt = io->gU ? io->gU + (size_t)t * io->stride : NULL;
        for (int j = 0; j < n; j++) {
            const float up = t ? Up[j] : 0.0f;
            float gu = cu[j];
            if (gSt) gu += gSt[j];
            if (gUt) gu += gUt[j];
            const float bj = pb ? pb[j] : beta;
            const float pre = bj * up + in[j];
            const float ga = qsnn_io_qback(io, q, j, pre, gu, pg ? &gq0 : NULL, pg ? &gq1 : NULL);
            if (gs == 0) gcur[j] += ga;
            else gcur[(size_t)t * gs + j] = ga;
            cu[j] = bj * ga;
            if (pg) qsnn_io_pg(io, QSNN_PN_BETA, j, &gb, (double)ga * up);
        }
    }
    qsnn_carry_store(io, 0, cu);
    if (pg) {
        pg->beta += gb;
        pg->qp[0] += gq0;
        pg->qp[1] += gq1;
    }
}

const qsnn_neuron_ops qsnn_neuron_li = {
    .name = "li",
    .n_states = 1,
    .state_names = {"U"},
    .quantized = 1u,
    .params = QSNN_NP_BETA,
    .spiking = 0,
    .summary = "leaky integrator readout (non-spiking): U = beta U + I, output S = U",
    .forward = li_forward,
    .backward = li_backward,
};
