/* Adaptive-threshold LIF (ALIF):
 *   a[t] = ρ a[t-1] + S[t-1]          (a[0] = 0, S[-1] = 0)    ρ = model.adapt_decay
 *   θ[t] = θ + b·a[t]                                          b = model.adapt_strength
 *   R[t] = H(U[t-1] - θ[t-1])          (= S[t-1]; R[0] = 0)
 *   U[t] = Q(β U[t-1] + I[t] - reset term)   subtract: R[t]·θ (the baseline θ); zero: R[t] β U[t-1]; none
 *   S[t] = H(U[t] - θ[t])
 * S[t-1] is recomputed from the stored states of t-1 as H(U[t-1] - (θ + b·a[t-1])), the same float
 * operations as the forward spike, so it is bit-identical to it. In soft mode both S and R are the
 * smooth spike; at t = 0 both S[-1] and R[0] are exactly 0 (LIF's soft R[0] is σ(-kθ) instead).
 * States: U (0), a (1); only U is quantized (a counts spikes). Parameters β, θ: dL/dθ collects θ's
 * uses in every θ[t] and in the subtract reset. The gradient always flows S[t-1] → a[t] → θ[t] → S[t]
 * (the surrogate at S[t-1]); through R only with reset_grad. Per neuron (io->pn): β_j and the baseline θ_j,
 * θ[t] = θ_j + b·a[t]; U's grid gain g_j (io->qgain); gradients to io->gpn where given. */
#include <math.h>
#include "neurons/model_kernel.h"


static inline float integrate(int reset, float beta, float theta, float up, float in, float r) {
    switch (reset) {
    case QSNN_RESET_SUBTRACT: return (beta * up + in) - r * theta;
    case QSNN_RESET_ZERO: return (beta * up + in) - r * (beta * up);
    default: return beta * up + in;
    }
}

static double alif_forward(const qsnn_neuron_params *p, const qsnn_neuron_io *io) {
    const float beta = p->beta, theta = p->theta, k = p->slope, rho = p->adapt_decay, b = p->adapt_strength;
    const float *pb = io->pn[QSNN_PN_BETA], *pt = io->pn[QSNN_PN_THETA];
    const int reset = p->reset, soft = p->surrogate == QSNN_SURR_SOFT, n = io->n;
    const qsnn_state_quant *q = qsnn_io_q(io, 0);
    const size_t us = io->u_stride, pl = io->plane;
    double total = 0.0;
    for (int t = io->t0; t < io->t1; t++) {
        float count = 0.0f;
        const float *in = io->cur + (size_t)t * io->i_stride;
        float *Up = io->U + (t ? (size_t)(t - 1) * us : 0), *Ut = io->U + (size_t)t * us; /* us = 0: one row */
        float *St = io->S + (size_t)t * io->stride;
        for (int j = 0; j < n; j++) {
            const float bj = pb ? pb[j] : beta, thj = pt ? pt[j] : theta;
            const float up = t ? Up[j] : 0.0f, ap = t ? Up[pl + j] : 0.0f;
            const float sprev = t ? qsnn_spike_fn(up - (thj + b * ap), soft, k) : 0.0f;
            const float a = rho * ap + sprev;
            const float r = reset == QSNN_RESET_NONE ? 0.0f : sprev;
            float u = integrate(reset, bj, thj, up, in[j], r);
            if (q) u = qsnn_io_quant(io, q, j, u);
            Ut[j] = u;
            Ut[pl + j] = a;
            const float sp = qsnn_spike_fn(u - (thj + b * a), soft, k);
            St[j] = sp;
            count += sp;
        }
        total += count;
    }
    return total;
}

static void alif_backward(const qsnn_neuron_params *p, const qsnn_neuron_io *io, qsnn_neuron_pgrad *pg) {
    const float beta = p->beta, theta = p->theta, k = p->slope, rho = p->adapt_decay, b = p->adapt_strength;
    const float *pb = io->pn[QSNN_PN_BETA], *pt = io->pn[QSNN_PN_THETA];
    const int reset = p->reset, sid = p->surrogate, soft = sid == QSNN_SURR_SOFT, n = io->n;
    const int rgrad = p->reset_grad && reset != QSNN_RESET_NONE;
    const qsnn_state_quant *q = qsnn_io_q(io, 0);
    const size_t us = io->u_stride, pl = io->plane, gs = io->gi_stride;
    float *gcur = io->gcur;
    float cu[QSNN_NEURON_BLOCK], ca[QSNN_NEURON_BLOCK]; /* dL/dU[t], dL/da[t] from step t+1 */
    qsnn_carry_load(io, 0, cu);
    qsnn_carry_load(io, 1, ca);
    if (gs == 0 && io->t1 == io->T)
        for (int j = 0; j < n; j++) gcur[j] = 0.0f;
    double gb = 0.0, gth = 0.0, gq0 = 0.0, gq1 = 0.0;
    for (int t = io->t1 - 1; t >= io->t0; t--) {
        const float *Ut = io->U + (size_t)t * us, *Up = io->U + (t ? (size_t)(t - 1) * us : 0);
        const float *in = io->cur + (size_t)t * io->i_stride;
        const float *gSt = io->gS ? io->gS + (size_t)t * io->stride : NULL;
        const float *gUt = io->gU ? io->gU + (size_t)t * io->stride : NULL;
        for (int j = 0; j < n; j++) {
            const float bj = pb ? pb[j] : beta, thj = pt ? pt[j] : theta;
            const float up = t ? Up[j] : 0.0f, ap = t ? Up[pl + j] : 0.0f;
            const float xp = up - (thj + b * ap); /* U[t-1] - θ[t-1] */
            const float sprev = t ? qsnn_spike_fn(xp, soft, k) : 0.0f;
            const float a = rho * ap + sprev;
            const float r = reset == QSNN_RESET_NONE ? 0.0f : sprev;
            const float pre = integrate(reset, bj, thj, up, in[j], r);
            float gu = cu[j], gs_sg = 0.0f;
            if (gSt) {
                gs_sg = gSt[j] * qsnn_surr(sid, Ut[j] - (thj + b * a), k);
                gu += gs_sg;
            }
            if (gUt) gu += gUt[j];
            const float gp = qsnn_io_qback(io, q, j, pre, gu, pg ? &gq0 : NULL, pg ? &gq1 : NULL); /* dL/d(U[t] before Q) */
            if (gs == 0) gcur[j] += gp;
            else gcur[(size_t)t * gs + j] = gp;
            const float gat = ca[j] - b * gs_sg; /* dL/da[t]: later steps and θ[t] in S[t] */
            float gup, gr;                        /* dL/dU[t-1] through the integration, dL/dR[t] */
            switch (reset) {
            case QSNN_RESET_SUBTRACT: gup = bj * gp; gr = -thj * gp; break;
            case QSNN_RESET_ZERO: gup = bj * (1.0f - r) * gp; gr = -(bj * up) * gp; break;
            default: gup = bj * gp; gr = 0.0f; break;
            }
            float gsp = gat; /* dL/dS[t-1]: through a[t], and through R[t] with reset_grad */
            if (rgrad) gsp += gr;
            float gap = rho * gat;
            float gx = 0.0f; /* dL/d(U[t-1] - θ[t-1]) */
            if (t) {
                gx = gsp * qsnn_surr(sid, xp, k);
                gup += gx;
                gap -= b * gx;
            }
            cu[j] = gup;
            ca[j] = gap;
            if (pg) {
                qsnn_io_pg(io, QSNN_PN_BETA, j, &gb, (double)gp * (reset == QSNN_RESET_ZERO ? up * (1.0f - r) : up));
                qsnn_io_pg(io, QSNN_PN_THETA, j, &gth, -(double)gs_sg - (double)gx);
                if (reset == QSNN_RESET_SUBTRACT) qsnn_io_pg(io, QSNN_PN_THETA, j, &gth, -((double)gp * r));
            }
        }
    }
    qsnn_carry_store(io, 0, cu);
    qsnn_carry_store(io, 1, ca);
    if (pg) {
        pg->beta += gb;
        pg->theta += gth;
        pg->qp[0] += gq0;
        pg->qp[1] += gq1;
    }
}

const qsnn_neuron_ops qsnn_neuron_alif = {
    .name = "alif",
    .n_states = 2,
    .state_names = {"U", "a"},
    .quantized = 1u,
    .params = QSNN_NP_BETA | QSNN_NP_THETA,
    .spiking = 1,
    .summary = "adaptive-threshold LIF: theta[t] = threshold + b a[t], a = rho a + S[t-1]",
    .forward = alif_forward,
    .backward = alif_backward,
};
