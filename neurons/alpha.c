/* Alpha neuron (snnTorch "Alpha"): two synaptic currents, excitatory E and inhibitory N.
 *   R[t] = H(U[t-1] - θ)
 *   subtract: E[t] = α E[t-1] + I[t] - R[t]·θ         N[t] = β N[t-1] - I[t]
 *   zero:     E[t] = (1 - R[t]) α E[t-1] + I[t]        N[t] = (1 - R[t]) β N[t-1] - I[t]
 *   none:     E[t] = α E[t-1] + I[t]                   N[t] = β N[t-1] - I[t]
 *   U[t] = E[t] + N[t]
 *   S[t] = H(U[t] - θ)
 * Evaluated left to right as written: (α E + I) - R θ;  ((1 - R) α) E + I;  β N - I;  ((1 - R) β) N - I.
 * Quantization in this order: E = Q1(E), N = Q2(N), then U = Q0(E + N) from the quantized currents
 * (U is stored, so the spike and the next reset read a grid value). Initial E = N = U = 0.
 * I[t] cancels in U[t]; it reaches U[t+1] as (α - β)·I[t], so the kernel is alpha-shaped (rises, then
 * decays) only for α > β. That is not enforced (model.alpha, model.beta are the user's).
 * States: U (0), E (1), N (2). Parameters β, θ, α. Learned grids: every quantized state adds its terms
 * (the grids share the layer's learned values). Per-neuron α_j, β_j, θ_j and grid gains g_j: io->pn, io->qgain (every
 * quantized state of element j is g_j·Q(x/g_j)); their gradients go to io->gpn where given. */
#include <math.h>
#include "neurons/model_kernel.h"


/* E[t] and N[t] before quantization. */
static inline void currents(int reset, float alpha, float beta, float theta, float r, float ep, float np, float in,
                            float *e, float *nn) {
    switch (reset) {
    case QSNN_RESET_SUBTRACT:
        *e = (alpha * ep + in) - r * theta;
        *nn = beta * np - in;
        break;
    case QSNN_RESET_ZERO:
        *e = (1.0f - r) * alpha * ep + in;
        *nn = (1.0f - r) * beta * np - in;
        break;
    default:
        *e = alpha * ep + in;
        *nn = beta * np - in;
        break;
    }
}

static double alpha_forward(const qsnn_neuron_params *p, const qsnn_neuron_io *io) {
    const float alpha = p->alpha, beta = p->beta, theta = p->theta, k = p->slope;
    const float *pa = io->pn[QSNN_PN_ALPHA], *pb = io->pn[QSNN_PN_BETA], *pt = io->pn[QSNN_PN_THETA];
    const int reset = p->reset, soft = p->surrogate == QSNN_SURR_SOFT, n = io->n;
    const qsnn_state_quant *qu = qsnn_io_q(io, 0), *qe = qsnn_io_q(io, 1), *qn = qsnn_io_q(io, 2);
    const size_t us = io->u_stride, pl = io->plane;
    double total = 0.0;
    for (int t = io->t0; t < io->t1; t++) {
        float count = 0.0f;
        const float *in = io->cur + (size_t)t * io->i_stride;
        /* us = 0: the previous row is the current one; each neuron reads its old states before writing */
        float *Up = io->U + (t ? (size_t)(t - 1) * us : 0), *Ut = io->U + (size_t)t * us;
        float *St = io->S + (size_t)t * io->stride;
        for (int j = 0; j < n; j++) {
            const float aj = pa ? pa[j] : alpha, bj = pb ? pb[j] : beta, thj = pt ? pt[j] : theta;
            const float up = t ? Up[j] : 0.0f, ep = t ? Up[pl + j] : 0.0f, np = t ? Up[2 * pl + j] : 0.0f;
            const float r = reset == QSNN_RESET_NONE ? 0.0f : qsnn_spike_fn(up - thj, soft, k);
            float e, nn;
            currents(reset, aj, bj, thj, r, ep, np, in[j], &e, &nn);
            if (qe) e = qsnn_io_quant(io, qe, j, e);
            if (qn) nn = qsnn_io_quant(io, qn, j, nn);
            float u = e + nn;
            if (qu) u = qsnn_io_quant(io, qu, j, u);
            Ut[j] = u;
            Ut[pl + j] = e;
            Ut[2 * pl + j] = nn;
            const float sp = qsnn_spike_fn(u - thj, soft, k);
            St[j] = sp;
            count += sp;
        }
        total += count;
    }
    return total;
}

static void alpha_backward(const qsnn_neuron_params *p, const qsnn_neuron_io *io, qsnn_neuron_pgrad *pg) {
    const float alpha = p->alpha, beta = p->beta, theta = p->theta, k = p->slope;
    const float *pa = io->pn[QSNN_PN_ALPHA], *pb = io->pn[QSNN_PN_BETA], *pt = io->pn[QSNN_PN_THETA];
    const int reset = p->reset, sid = p->surrogate, soft = sid == QSNN_SURR_SOFT, n = io->n;
    const int rgrad = p->reset_grad && reset != QSNN_RESET_NONE;
    const qsnn_state_quant *qu = qsnn_io_q(io, 0), *qe = qsnn_io_q(io, 1), *qn = qsnn_io_q(io, 2);
    const size_t us = io->u_stride, pl = io->plane, gs = io->gi_stride;
    float *gcur = io->gcur;
    float cu[QSNN_NEURON_BLOCK], ce[QSNN_NEURON_BLOCK], cn[QSNN_NEURON_BLOCK]; /* dL/dstate[t] from t+1 */
    qsnn_carry_load(io, 0, cu);
    qsnn_carry_load(io, 1, ce);
    qsnn_carry_load(io, 2, cn);
    if (gs == 0 && io->t1 == io->T)
        for (int j = 0; j < n; j++) gcur[j] = 0.0f;
    double ga = 0.0, gb = 0.0, gth = 0.0, gq0 = 0.0, gq1 = 0.0;
    double *g0 = pg ? &gq0 : NULL, *g1 = pg ? &gq1 : NULL;
    for (int t = io->t1 - 1; t >= io->t0; t--) {
        const float *Ut = io->U + (size_t)t * us, *Up = io->U + (t ? (size_t)(t - 1) * us : 0);
        const float *in = io->cur + (size_t)t * io->i_stride;
        const float *gSt = io->gS ? io->gS + (size_t)t * io->stride : NULL;
        const float *gUt = io->gU ? io->gU + (size_t)t * io->stride : NULL;
        for (int j = 0; j < n; j++) {
            const float aj = pa ? pa[j] : alpha, bj = pb ? pb[j] : beta, thj = pt ? pt[j] : theta;
            const float up = t ? Up[j] : 0.0f, ep = t ? Up[pl + j] : 0.0f, np = t ? Up[2 * pl + j] : 0.0f;
            const float r = reset == QSNN_RESET_NONE ? 0.0f : qsnn_spike_fn(up - thj, soft, k);
            float e, nn;
            currents(reset, aj, bj, thj, r, ep, np, in[j], &e, &nn);
            const float usum = Ut[pl + j] + Ut[2 * pl + j]; /* U before quantization */
            float gu = cu[j], gs_sg = 0.0f;
            if (gSt) {
                gs_sg = gSt[j] * qsnn_surr(sid, Ut[j] - thj, k);
                gu += gs_sg;
            }
            if (gUt) gu += gUt[j];
            const float gsum = qsnn_io_qback(io, qu, j, usum, gu, g0, g1);
            const float ge = qsnn_io_qback(io, qe, j, e, ce[j] + gsum, g0, g1);
            const float gn = qsnn_io_qback(io, qn, j, nn, cn[j] + gsum, g0, g1);
            const float gi = ge - gn;
            if (gs == 0) gcur[j] += gi;
            else gcur[(size_t)t * gs + j] = gi;
            float gr; /* dL/dR[t] */
            switch (reset) {
            case QSNN_RESET_SUBTRACT:
                ce[j] = aj * ge;
                cn[j] = bj * gn;
                gr = -thj * ge;
                break;
            case QSNN_RESET_ZERO:
                ce[j] = (1.0f - r) * aj * ge;
                cn[j] = (1.0f - r) * bj * gn;
                gr = -(aj * ep) * ge - (bj * np) * gn;
                break;
            default:
                ce[j] = aj * ge;
                cn[j] = bj * gn;
                gr = 0.0f;
                break;
            }
            const float sp = rgrad ? qsnn_surr(sid, up - thj, k) : 0.0f; /* dR/dU[t-1] = -dR/dθ */
            cu[j] = gr * sp;
            if (pg) {
                const float z = reset == QSNN_RESET_ZERO ? 1.0f - r : 1.0f;
                qsnn_io_pg(io, QSNN_PN_ALPHA, j, &ga, (double)ge * (z * ep));
                qsnn_io_pg(io, QSNN_PN_BETA, j, &gb, (double)gn * (z * np));
                qsnn_io_pg(io, QSNN_PN_THETA, j, &gth, -(double)gr * sp - (double)gs_sg);
                if (reset == QSNN_RESET_SUBTRACT) qsnn_io_pg(io, QSNN_PN_THETA, j, &gth, -((double)ge * r));
            }
        }
    }
    qsnn_carry_store(io, 0, cu);
    qsnn_carry_store(io, 1, ce);
    qsnn_carry_store(io, 2, cn);
    if (pg) {
        pg->alpha += ga;
        pg->beta += gb;
        pg->theta += gth;
        pg->qp[0] += gq0;
        pg->qp[1] += gq1;
    }
}

const qsnn_neuron_ops qsnn_neuron_alpha = {
    .name = "alpha",
    .n_states = 3,
    .state_names = {"U", "E", "N"},
    .quantized = 7u,
    .params = QSNN_NP_BETA | QSNN_NP_THETA | QSNN_NP_ALPHA,
    .spiking = 1,
    .summary = "alpha neuron (snnTorch Alpha): E = alpha E + I, N = beta N - I, U = E + N (needs alpha > beta)",
    .forward = alpha_forward,
    .backward = alpha_backward,
};
