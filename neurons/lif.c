/* Leaky integrate-and-fire ("Leaky"), specs/neurons.md:
 *   R[t] = H(U[t-1] - θ)     U[t] = Q(β U[t-1] + cur[t] - reset term)     S[t] = H(U[t] - θ)
 * With the "soft" surrogate the spike is sigmoid(k (U - θ)) in the forward pass too, and R[t] = S[t-1],
 * so the whole network is smooth (finite-difference tests). Arithmetic order follows the spec's
 * formulas literally and is never fused, so results match an independent implementation bit for bit. */
#include "neurons/model_kernel.h"

#define spike_fn qsnn_spike_fn

static inline float integrate(int reset, float beta, float theta, float up, float in, float r) {
    switch (reset) {
    case QSNN_RESET_SUBTRACT: return (beta * up + in) - r * theta;
    case QSNN_RESET_ZERO: return (beta * up + in) - r * (beta * up);
    default: return beta * up + in;
    }
}

/* pern: per-neuron β, θ or grid gains (io->pn, io->qgain) are read per element. */
static inline __attribute__((always_inline)) double fwd_impl(const qsnn_neuron_params *p, const qsnn_neuron_io *io,
                                                           const int reset, const int soft, const int quant,
                                                           const int pern) {
    const float k = p->slope;
    const float *pb = pern ? io->pn[QSNN_PN_BETA] : NULL, *pt = pern ? io->pn[QSNN_PN_THETA] : NULL;
    const float *gain = pern ? io->qgain : NULL;
    const qsnn_state_quant *q = io->q[0];
    const int n = io->n;
    const float *cur = io->cur;
    const size_t is = io->i_stride, us = io->u_stride, stride = io->stride;
    float *U = io->U, *S = io->S;
    double total = 0.0;
    for (int t = io->t0; t < io->t1; t++) {
        float count = 0.0f; /* at most QSNN_NEURON_BLOCK per step: exact in float */
        const float *in = cur + (size_t)t * is;
        /* With us = 0, Up and Ut are the same row: each neuron reads its old value before writing. */
        const float *Up = U + (t ? (size_t)(t - 1) * us : 0); /* not read at t = 0 */
        float *Ut = U + (size_t)t * us;
        float *St = S + (size_t)t * stride;
        if (quant) { /* integrate the row, quantize it in place (vectorized), then threshold */
            for (int j = 0; j < n; j++) {
                const float beta = pb ? pb[j] : p->beta, theta = pt ? pt[j] : p->theta;
                const float up = t ? Up[j] : 0.0f;
                const float r = reset == QSNN_RESET_NONE ? 0.0f : spike_fn(up - theta, soft, k);
                const float a = integrate(reset, beta, theta, up, in[j], r);
                Ut[j] = gain ? a / gain[j] : a; /* g·Q(a/g): see qsnn_io_quant */
            }
            qsnn_state_quant_apply_n(q, Ut, Ut, n);
            if (gain)
                for (int j = 0; j < n; j++) Ut[j] = gain[j] * Ut[j];
            for (int j = 0; j < n; j++) {
                const float theta = pt ? pt[j] : p->theta;
                const float sp = spike_fn(Ut[j] - theta, soft, k);
                St[j] = sp;
                count += sp;
            }
        } else {
            for (int j = 0; j < n; j++) {
                const float beta = pb ? pb[j] : p->beta, theta = pt ? pt[j] : p->theta;
                const float up = t ? Up[j] : 0.0f;
                const float r = reset == QSNN_RESET_NONE ? 0.0f : spike_fn(up - theta, soft, k);
                const float u = integrate(reset, beta, theta, up, in[j], r);
                Ut[j] = u;
                const float sp = spike_fn(u - theta, soft, k);
                St[j] = sp;
                count += sp;
            }
        }
        total += count;
    }
    return total;
}

static double lif_forward(const qsnn_neuron_params *p, const qsnn_neuron_io *io) {
    const int quant = qsnn_io_q(io, 0) != NULL;
    const int soft = p->surrogate == QSNN_SURR_SOFT;
    const int pern = io->pn[QSNN_PN_BETA] || io->pn[QSNN_PN_THETA] || (quant && io->qgain);
    if (soft) return fwd_impl(p, io, p->reset, 1, quant, pern);
#define QSNN_LIF_FWD(R, QU) return pern ? fwd_impl(p, io, R, 0, QU, 1) : fwd_impl(p, io, R, 0, QU, 0)
    switch (p->reset * 2 + quant) {
    case 0: QSNN_LIF_FWD(QSNN_RESET_SUBTRACT, 0);
    case 1: QSNN_LIF_FWD(QSNN_RESET_SUBTRACT, 1);
    case 2: QSNN_LIF_FWD(QSNN_RESET_ZERO, 0);
    case 3: QSNN_LIF_FWD(QSNN_RESET_ZERO, 1);
    case 4: QSNN_LIF_FWD(QSNN_RESET_NONE, 0);
    default: QSNN_LIF_FWD(QSNN_RESET_NONE, 1);
    }
#undef QSNN_LIF_FWD
}

#define surr qsnn_surr

/* Every flag is a compile-time constant in the specialised call sites below, so the inner loop has
 * no branches left and vectorizes; the generic call passes run-time values (same arithmetic). */
static inline __attribute__((always_inline)) void bwd_impl(const qsnn_neuron_params *p, const qsnn_neuron_io *io,
                                                           qsnn_neuron_pgrad *pg, const int reset, const int sid,
                                                           const int clip, const int have_gs, const int have_gu,
                                                           const int want_pg, const int summed, const int pern,
                                                           const int lq) {
    const float k = p->slope;
    const float *pb = pern ? io->pn[QSNN_PN_BETA] : NULL, *pt = pern ? io->pn[QSNN_PN_THETA] : NULL;
    const float *gain = pern ? io->qgain : NULL;
    float *gpb = pern && want_pg ? io->gpn[QSNN_PN_BETA] : NULL, *gpt = pern && want_pg ? io->gpn[QSNN_PN_THETA] : NULL;
    const qsnn_state_quant *q = io->q[0];
    const int n = io->n;
    const float *cur = io->cur, *U = io->U, *gS = io->gS, *gUx = io->gU;
    const size_t is = io->i_stride, stride = io->stride, gs = io->gi_stride;
    float *gcur = io->gcur;
    const int soft = sid == QSNN_SURR_SOFT, rgrad = p->reset_grad && reset != QSNN_RESET_NONE;
    float carry[QSNN_NEURON_BLOCK]; /* dL/dU[t] arriving from step t+1 */
    qsnn_carry_load(io, 0, carry);
    if (summed && io->t1 == io->T)
        for (int j = 0; j < n; j++) gcur[j] = 0.0f;
    double gb = 0.0, gth = 0.0, gsc = 0.0, gq1 = 0.0;
    const int lsq = want_pg && q && q->enabled && q->cfg.grid == QSNN_GRID_LSQ;
    const float s = lsq ? q->step : 1.0f, qn = lsq ? -(float)(q->n / 2) : 0.0f, qp = lsq ? (float)(q->n / 2 - 1) : 0.0f;
    for (int t = io->t1 - 1; t >= io->t0; t--) {
        const float *Ut = U + (size_t)t * stride;
        const float *Up = U + (size_t)(t - 1) * stride;
        const float *gSt = have_gs ? gS + (size_t)t * stride : NULL;
        const float *gUt = have_gu ? gUx + (size_t)t * stride : NULL;
        const float *in = cur + (size_t)t * is;
        float *gct = gcur + (size_t)t * gs;
        for (int j = 0; j < n; j++) {
            const float beta = pb ? pb[j] : p->beta, theta = pt ? pt[j] : p->theta;
            float gu = carry[j];
            float gs_sg = 0.0f;
            if (have_gs) {
                gs_sg = gSt[j] * surr(sid, Ut[j] - theta, k);
                gu += gs_sg;
            }
            if (have_gu) gu += gUt[j];
            const float up = t ? Up[j] : 0.0f;
            const float r = reset == QSNN_RESET_NONE ? 0.0f : spike_fn(up - theta, soft, k);
            float ga = gu;
            if (lq) /* a learned grid (qil, qn, cpq): its own estimator and learned-value gradients */
                ga = qsnn_io_qback(io, q, j, integrate(reset, beta, theta, up, in[j], r), gu, want_pg ? &gsc : NULL,
                                   want_pg ? &gq1 : NULL);
            if (clip) {
                float a = integrate(reset, beta, theta, up, in[j], r);
                if (gain) a = a / gain[j];
                if (a < q->lo || a > q->hi) ga = 0.0f;
            }
            if (summed) gcur[j] += ga;
            else gct[j] = ga;
            /* dL/dU[t-1] through a[t] = β U[t-1] + I[t] - reset term(R[t](U[t-1])) */
            const float sp = rgrad ? surr(sid, up - theta, k) : 0.0f;
            float da_dup;
            switch (reset) {
            case QSNN_RESET_SUBTRACT: da_dup = rgrad ? beta - theta * sp : beta; break;
            case QSNN_RESET_ZERO: da_dup = rgrad ? beta * (1.0f - r) - beta * up * sp : beta * (1.0f - r); break;
            default: da_dup = beta; break;
            }
            carry[j] = ga * da_dup;
            if (lsq) { /* dÛ/ds of the learned step at the pre-quantization value a (g·dQ/ds at a/g) */
                const float a = integrate(reset, beta, theta, up, in[j], r);
                const float g = gain ? gain[j] : 1.0f, v = (gain ? a / g : a) / s;
                const float dq = v < qn ? qn : (v > qp ? qp : nearbyintf(v) - v);
                gsc += (double)gu * (gain ? g * dq : dq);
            }
            if (want_pg) {
                const float da_db = reset == QSNN_RESET_ZERO ? up * (1.0f - r) : up;
                float da_dth = 0.0f; /* dR/dθ = -σ'(U[t-1] - θ) when the reset carries gradient */
                if (reset == QSNN_RESET_SUBTRACT) da_dth = -r + theta * sp;
                else if (reset == QSNN_RESET_ZERO) da_dth = beta * up * sp;
                const double db = (double)ga * da_db, dth = (double)ga * da_dth - (double)gs_sg;
                if (gpb) gpb[j] += (float)db;
                else gb += db;
                if (gpt) gpt[j] += (float)dth;
                else gth += dth;
            }
        }
    }
    qsnn_carry_store(io, 0, carry);
    if (want_pg) {
        pg->beta += gb;
        pg->theta += gth;
        pg->qp[0] += gsc;
        pg->qp[1] += gq1;
    }
}

static void lif_backward(const qsnn_neuron_params *p, const qsnn_neuron_io *io, qsnn_neuron_pgrad *pg) {
    const qsnn_state_quant *q = qsnn_io_q(io, 0);
    const int lq = q && q->learned, clip = q && q->ste_clip && !lq;
    const float *gS = io->gS, *gU = io->gU;
    const size_t gs = io->gi_stride;
    const int pern = io->pn[QSNN_PN_BETA] || io->pn[QSNN_PN_THETA] || (q && io->qgain) ||
                     (pg && (io->gpn[QSNN_PN_BETA] || io->gpn[QSNN_PN_THETA]));
    const int fast = p->surrogate == QSNN_SURR_ARCTAN && p->reset == QSNN_RESET_SUBTRACT && !p->reset_grad && !clip &&
                     gS && !gU && !pg && !lq;
    if (fast && gs == 0 && !pern) /* the default network's hidden layer (static input) */
        bwd_impl(p, io, pg, QSNN_RESET_SUBTRACT, QSNN_SURR_ARCTAN, 0, 1, 0, 0, 1, 0, 0);
    else if (fast && !pern)
        bwd_impl(p, io, pg, QSNN_RESET_SUBTRACT, QSNN_SURR_ARCTAN, 0, 1, 0, 0, 0, 0, 0);
    else if (fast && gs == 0)
        bwd_impl(p, io, pg, QSNN_RESET_SUBTRACT, QSNN_SURR_ARCTAN, 0, 1, 0, 0, 1, 1, 0);
    else
        bwd_impl(p, io, pg, p->reset, p->surrogate, clip, gS != NULL, gU != NULL, pg != NULL, gs == 0, pern, lq);
}

const qsnn_neuron_ops qsnn_neuron_lif = {
    .name = "lif",
    .n_states = 1,
    .state_names = {"U"},
    .quantized = 1u,
    .params = QSNN_NP_BETA | QSNN_NP_THETA,
    .spiking = 1,
    .summary = "leaky integrate-and-fire (snnTorch Leaky): U = beta U + I - reset",
    .forward = lif_forward,
    .backward = lif_backward,
};
