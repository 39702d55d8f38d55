/* Izhikevich (2003) neuron, time-stepped with 1 ms steps (v in mV, I in the paper's units), the paper's
 * own update with two 0.5 ms half steps for v:
 *   R[t] = H(v[t-1] - θ)                      θ = model.threshold is the spike peak (set 30)
 *   reset, before integrating step t:
 *     zero:     v0 = (1 - R) v[t-1] + R c     u0 = u[t-1] + R d
 *     subtract: the same as zero. The peak is an event, not a level: a 1 ms step overshoots it by up to
 *               hundreds of mV, and subtracting θ - c from the overshoot leaves v above the peak, where
 *               the v² term diverges within a few steps.
 *     none:     v0 = v[t-1]                   u0 = u[t-1]          (no reset at all: once v passes
 *                                                                   the peak it runs away to inf/NaN)
 *   f(x) = 0.04 (x x) + 5 x + 140 - u0 + I[t]      (left to right)
 *   v1 = v0 + 0.5 f(v0);   v2 = v1 + 0.5 f(v1);   v[t] = Q0(v2)
 *   u[t] = Q1(u0 + a (b v[t] - u0))           (u's update reads the quantized v[t])
 *   S[t] = H(v[t] - θ)
 * a, b, c, d = model.izh_a .. izh_d (fixed); initial v = c, u = b·c. The zero reset is written as a
 * blend so that a hard spike gives exactly c. In soft mode R and S are the smooth spike (R[0] too,
 * from the initial v = c, like LIF). States v (0), u (1), both quantized on the layer's grid.
 * Parameter: θ only. Backward is the exact adjoint of these float updates (the surrogate stands in
 * for dS/dv, and for dR/dv[t-1] with reset_grad). Learned grids: v's and u's terms both go to pg->qp.
 * Per neuron: θ_j (io->pn; gradient to io->gpn where given) and the grid gain g_j of v and u (io->qgain). */
#include <math.h>
#include "neurons/model_kernel.h"


static inline float izh_f(float x, float u0, float in) { return (((0.04f * (x * x) + 5.0f * x) + 140.0f) - u0) + in; }

typedef struct { float v0, u0, v1, v2; } izh_mid;

/* One step up to v2 (before quantization), from the previous states and the reset factor r. */
static inline izh_mid izh_step(const qsnn_neuron_params *p, int reset, float r, float vp, float up, float in) {
    izh_mid m;
    switch (reset) {
    case QSNN_RESET_ZERO: m.v0 = (1.0f - r) * vp + r * p->izh_c; m.u0 = up + r * p->izh_d; break;
    default: m.v0 = vp; m.u0 = up; break;
    }
    m.v1 = m.v0 + 0.5f * izh_f(m.v0, m.u0, in);
    m.v2 = m.v1 + 0.5f * izh_f(m.v1, m.u0, in);
    return m;
}

static inline float izh_u(const qsnn_neuron_params *p, float u0, float v) { return u0 + p->izh_a * (p->izh_b * v - u0); }

static double izh_forward(const qsnn_neuron_params *p, const qsnn_neuron_io *io) {
    const float theta = p->theta, k = p->slope, c = p->izh_c, u_init = p->izh_b * p->izh_c;
    const float *pt = io->pn[QSNN_PN_THETA];
    const int reset = p->reset == QSNN_RESET_SUBTRACT ? QSNN_RESET_ZERO : p->reset;
    const int soft = p->surrogate == QSNN_SURR_SOFT, n = io->n;
    const qsnn_state_quant *qv = qsnn_io_q(io, 0), *qu = qsnn_io_q(io, 1);
    const size_t us = io->u_stride, pl = io->plane;
    double total = 0.0;
    for (int t = io->t0; t < io->t1; t++) {
        float count = 0.0f;
        const float *in = io->cur + (size_t)t * io->i_stride;
        float *Vp = io->U + (t ? (size_t)(t - 1) * us : 0), *Vt = io->U + (size_t)t * us; /* us = 0: one row */
        float *St = io->S + (size_t)t * io->stride;
        for (int j = 0; j < n; j++) {
            const float thj = pt ? pt[j] : theta;
            const float vp = t ? Vp[j] : c, up = t ? Vp[pl + j] : u_init;
            const float r = reset == QSNN_RESET_NONE ? 0.0f : qsnn_spike_fn(vp - thj, soft, k);
            const izh_mid m = izh_step(p, reset, r, vp, up, in[j]);
            const float v = qv ? qsnn_io_quant(io, qv, j, m.v2) : m.v2;
            const float u2 = izh_u(p, m.u0, v);
            Vt[j] = v;
            Vt[pl + j] = qu ? qsnn_io_quant(io, qu, j, u2) : u2;
            const float sp = qsnn_spike_fn(v - thj, soft, k);
            St[j] = sp;
            count += sp;
        }
        total += count;
    }
    return total;
}

static void izh_backward(const qsnn_neuron_params *p, const qsnn_neuron_io *io, qsnn_neuron_pgrad *pg) {
    const float theta = p->theta, k = p->slope, a = p->izh_a, b = p->izh_b, c = p->izh_c, d = p->izh_d;
    const float *pt = io->pn[QSNN_PN_THETA];
    const float u_init = b * c;
    const int reset = p->reset == QSNN_RESET_SUBTRACT ? QSNN_RESET_ZERO : p->reset;
    const int sid = p->surrogate, soft = sid == QSNN_SURR_SOFT, n = io->n;
    const int rgrad = p->reset_grad && reset != QSNN_RESET_NONE;
    const qsnn_state_quant *qv = qsnn_io_q(io, 0), *qu = qsnn_io_q(io, 1);
    double gq0 = 0.0, gq1 = 0.0, *g0 = pg ? &gq0 : NULL, *g1 = pg ? &gq1 : NULL;
    const size_t us = io->u_stride, pl = io->plane, gs = io->gi_stride;
    float *gcur = io->gcur;
    float cv[QSNN_NEURON_BLOCK], cu[QSNN_NEURON_BLOCK]; /* dL/dv[t], dL/du[t] from step t+1 */
    qsnn_carry_load(io, 0, cv);
    qsnn_carry_load(io, 1, cu);
    if (gs == 0 && io->t1 == io->T)
        for (int j = 0; j < n; j++) gcur[j] = 0.0f;
    double gth = 0.0;
    for (int t = io->t1 - 1; t >= io->t0; t--) {
        const float *Vt = io->U + (size_t)t * us, *Vp = io->U + (t ? (size_t)(t - 1) * us : 0);
        const float *in = io->cur + (size_t)t * io->i_stride;
        const float *gSt = io->gS ? io->gS + (size_t)t * io->stride : NULL;
        const float *gUt = io->gU ? io->gU + (size_t)t * io->stride : NULL;
        for (int j = 0; j < n; j++) {
            const float thj = pt ? pt[j] : theta;
            const float vp = t ? Vp[j] : c, up = t ? Vp[pl + j] : u_init;
            const float r = reset == QSNN_RESET_NONE ? 0.0f : qsnn_spike_fn(vp - thj, soft, k);
            const izh_mid m = izh_step(p, reset, r, vp, up, in[j]);
            const float v = Vt[j];             /* Q0(v2) as stored */
            const float u2 = izh_u(p, m.u0, v); /* u[t] before quantization */
            float gv = cv[j], gs_sg = 0.0f;
            if (gSt) {
                gs_sg = gSt[j] * qsnn_surr(sid, v - thj, k);
                gv += gs_sg;
            }
            if (gUt) gv += gUt[j];
            const float gu2 = qsnn_io_qback(io, qu, j, u2, cu[j], g0, g1);
            /* u2 = u0 + a (b v - u0) */
            gv += (gu2 * a) * b;
            float gu0 = gu2 * (1.0f - a);
            const float gv2 = qsnn_io_qback(io, qv, j, m.v2, gv, g0, g1);
            /* v2 = v1 + 0.5 f(v1), f' = 0.08 v + 5, df/du0 = -1, df/dI = 1 */
            const float gv1 = gv2 * (1.0f + 0.5f * (0.08f * m.v1 + 5.0f));
            const float gv0 = gv1 * (1.0f + 0.5f * (0.08f * m.v0 + 5.0f));
            gu0 -= 0.5f * gv2 + 0.5f * gv1;
            const float gi = 0.5f * gv2 + 0.5f * gv1;
            if (gs == 0) gcur[j] += gi;
            else gcur[(size_t)t * gs + j] = gi;
            float gvp, gr; /* dL/dv[t-1] through v0, dL/dR[t] */
            switch (reset) {
            case QSNN_RESET_ZERO: gvp = gv0 * (1.0f - r); gr = gv0 * (c - vp) + gu0 * d; break;
            default: gvp = gv0; gr = 0.0f; break;
            }
            const float sp = rgrad ? qsnn_surr(sid, vp - thj, k) : 0.0f; /* dR/dv[t-1] = -dR/dθ */
            cv[j] = gvp + gr * sp;
            cu[j] = gu0;
            if (pg) qsnn_io_pg(io, QSNN_PN_THETA, j, &gth, -(double)gs_sg - (double)gr * sp);
        }
    }
    qsnn_carry_store(io, 0, cv);
    qsnn_carry_store(io, 1, cu);
    if (pg) {
        pg->theta += gth;
        pg->qp[0] += gq0;
        pg->qp[1] += gq1;
    }
}

const qsnn_neuron_ops qsnn_neuron_izhikevich = {
    .name = "izhikevich",
    .n_states = 2,
    .state_names = {"v", "u"},
    .quantized = 3u,
    .params = QSNN_NP_THETA,
    .spiking = 1,
    .summary = "Izhikevich (2003), 1 ms steps: v' = 0.04v^2 + 5v + 140 - u + I, u' = a(bv - u); threshold = peak (30)",
    .forward = izh_forward,
    .backward = izh_backward,
};
