/* Known values of the neuron models beyond LIF (synaptic, alpha, lapicque, alif, izhikevich, li):
 * a few neurons over T = 6 hand-chosen steps, each model against its own straightforward
 * double-precision loop written from the update rules in docs/neurons.md (never by calling the model),
 * for every reset rule, float and (for the models whose states feed each other) quantized; then one
 * check per model that the reset rules leave the documented state after a spike. The shared checks
 * (gradients, step ranges, quantization of every state) are in test_neuron_conformance.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "neurons/neuron.h"
#include "quant/state_quant.h"
#include "test_util.h"

#define NT 6
#define NN 3
#define MS QSNN_NEURON_MAX_STATES

typedef struct {
    double U[MS][NT][NN]; /* state s at step t */
    double S[NT][NN];
} ref_out;

static double H(double x) { return x > 0.0 ? 1.0 : 0.0; }

/* Nearest level in double, ties to the lower level, saturating (specs/neurons.md); NULL = float. */
/* States quantized in a run (bit s: state s, where the model quantizes it): lets a test leave one
 * state in float to see how the others read it. */
static unsigned q_mask = ~0u;
#define QS(s) ((q_mask >> (s)) & 1u ? q : NULL)

static double qd(const qsnn_state_quant *q, double x) {
    if (!q) return x;
    if (x <= q->levels[0]) return q->levels[0];
    if (x >= q->levels[q->n - 1]) return q->levels[q->n - 1];
    int i = 0;
    while (q->levels[i + 1] < x) i++;
    return (x - q->levels[i]) <= (q->levels[i + 1] - x) ? q->levels[i] : q->levels[i + 1];
}

static qsnn_neuron_params base_params(qsnn_reset reset) {
    qsnn_neuron_params p = {.beta = 0.9f, .theta = 1.0f, .reset = reset, .surrogate = QSNN_SURR_ARCTAN,
                            .slope = 2.0f, .alpha = 0.8f, .in_scale = 0.5f, .adapt_decay = 0.8f,
                            .adapt_strength = 0.5f, .izh_a = 0.02f, .izh_b = 0.2f, .izh_c = -65.0f, .izh_d = 8.0f};
    return p;
}

static const qsnn_reset resets[3] = {QSNN_RESET_SUBTRACT, QSNN_RESET_ZERO, QSNN_RESET_NONE};

/* The model over all T steps (one whole-range call), q for every state it quantizes. */
static double run_model(const qsnn_neuron_ops *ops, const qsnn_neuron_params *p, const qsnn_state_quant *q,
                        const float cur[NT][NN], float U[MS][NT][NN], float S[NT][NN]) {
    qsnn_neuron_io io = {.T = NT, .t0 = 0, .t1 = NT, .n = NN, .cur = &cur[0][0], .i_stride = NN, .U = &U[0][0][0],
                         .u_stride = NN, .plane = (size_t)NT * NN, .S = &S[0][0], .stride = NN};
    for (int s = 0; s < ops->n_states; s++) io.q[s] = (ops->quantized & q_mask) >> s & 1u ? q : NULL;
    return ops->forward(p, &io);
}

/* Every state and spike against the reference: states within tol·(1 + |x|), spikes exactly. */
static void compare(const qsnn_neuron_ops *ops, const char *what, float U[MS][NT][NN], float S[NT][NN],
                    const ref_out *r, double tol) {
    for (int t = 0; t < NT; t++)
        for (int j = 0; j < NN; j++) {
            for (int s = 0; s < ops->n_states; s++)
                cr_expect_leq(fabs(U[s][t][j] - r->U[s][t][j]), tol * (1.0 + fabs(r->U[s][t][j])),
                              "%s %s: state %s, step %d, neuron %d: %.7g, reference %.7g", ops->name, what,
                              ops->state_names[s], t, j, U[s][t][j], r->U[s][t][j]);
            if (ops->spiking)
                cr_expect_eq(S[t][j], (float)r->S[t][j], "%s %s: S, step %d, neuron %d: %g, reference %g",
                             ops->name, what, t, j, S[t][j], r->S[t][j]);
            else /* a readout: S = U */
                cr_expect_eq(S[t][j], U[0][t][j], "%s %s: S = U, step %d, neuron %d", ops->name, what, t, j);
        }
}

static double spike_sum(const ref_out *r) {
    double s = 0.0;
    for (int t = 0; t < NT; t++)
        for (int j = 0; j < NN; j++) s += r->S[t][j];
    return s;
}

/* ---- the reference loops, one per model, in double ---- */

static void ref_synaptic(const qsnn_neuron_params *p, const qsnn_state_quant *q, const float cur[NT][NN], ref_out *r) {
    for (int j = 0; j < NN; j++) {
        double U = 0.0, J = 0.0;
        for (int t = 0; t < NT; t++) {
            const double R = H(U - p->theta);
            J = qd(QS(1), p->alpha * J + cur[t][j]);
            double u = p->beta * U + J;
            if (p->reset == QSNN_RESET_SUBTRACT) u -= R * p->theta;
            else if (p->reset == QSNN_RESET_ZERO) u -= R * p->beta * U;
            U = qd(QS(0), u);
            r->U[0][t][j] = U, r->U[1][t][j] = J, r->S[t][j] = H(U - p->theta);
        }
    }
}

static void ref_alpha(const qsnn_neuron_params *p, const qsnn_state_quant *q, const float cur[NT][NN], ref_out *r) {
    for (int j = 0; j < NN; j++) {
        double U = 0.0, E = 0.0, Ni = 0.0;
        for (int t = 0; t < NT; t++) {
            const double R = H(U - p->theta), I = cur[t][j];
            switch (p->reset) {
            case QSNN_RESET_SUBTRACT: E = p->alpha * E + I - R * p->theta, Ni = p->beta * Ni - I; break;
            case QSNN_RESET_ZERO: E = (1 - R) * p->alpha * E + I, Ni = (1 - R) * p->beta * Ni - I; break;
            default: E = p->alpha * E + I, Ni = p->beta * Ni - I; break;
            }
            E = qd(QS(1), E), Ni = qd(QS(2), Ni);
            U = qd(QS(0), E + Ni);
            r->U[0][t][j] = U, r->U[1][t][j] = E, r->U[2][t][j] = Ni, r->S[t][j] = H(U - p->theta);
        }
    }
}

static void ref_lapicque(const qsnn_neuron_params *p, const qsnn_state_quant *q, const float cur[NT][NN], ref_out *r) {
    for (int j = 0; j < NN; j++) {
        double U = 0.0;
        for (int t = 0; t < NT; t++) {
            const double R = H(U - p->theta);
            double u = p->beta * U + p->in_scale * cur[t][j];
            if (p->reset == QSNN_RESET_SUBTRACT) u -= R * p->theta;
            else if (p->reset == QSNN_RESET_ZERO) u -= R * p->beta * U;
            U = qd(q, u);
            r->U[0][t][j] = U, r->S[t][j] = H(U - p->theta);
        }
    }
}

static void ref_alif(const qsnn_neuron_params *p, const qsnn_state_quant *q, const float cur[NT][NN], ref_out *r) {
    for (int j = 0; j < NN; j++) {
        double U = 0.0, a = 0.0, Sp = 0.0, thp = p->theta; /* S[-1] = 0, a[0] = 0 */
        for (int t = 0; t < NT; t++) {
            const double R = t ? H(U - thp) : 0.0;
            a = p->adapt_decay * a + Sp;
            const double th = p->theta + p->adapt_strength * a;
            double u = p->beta * U + cur[t][j];
            if (p->reset == QSNN_RESET_SUBTRACT) u -= R * p->theta;
            else if (p->reset == QSNN_RESET_ZERO) u -= R * p->beta * U;
            U = qd(q, u);
            Sp = H(U - th), thp = th;
            r->U[0][t][j] = U, r->U[1][t][j] = a, r->S[t][j] = Sp;
        }
    }
}

static void ref_izhikevich(const qsnn_neuron_params *p, const qsnn_state_quant *q, const float cur[NT][NN],
                           ref_out *r) {
    const double a = p->izh_a, b = p->izh_b, c = p->izh_c, d = p->izh_d, th = p->theta;
    for (int j = 0; j < NN; j++) {
        double v = c, u = b * c;
        for (int t = 0; t < NT; t++) {
            const double I = cur[t][j];
            if (v > th && p->reset != QSNN_RESET_NONE) { /* R[t] = H(v[t-1] - θ) */
                v = p->reset == QSNN_RESET_ZERO ? c : v - (th - c);
                u += d;
            }
            for (int h = 0; h < 2; h++) v += 0.5 * (0.04 * v * v + 5 * v + 140 - u + I);
            v = qd(QS(0), v);
            u = qd(QS(1), u + a * (b * v - u));
            r->U[0][t][j] = v, r->U[1][t][j] = u, r->S[t][j] = H(v - th);
        }
    }
}

static void ref_li(const qsnn_neuron_params *p, const qsnn_state_quant *q, const float cur[NT][NN], ref_out *r) {
    for (int j = 0; j < NN; j++) {
        double U = 0.0;
        for (int t = 0; t < NT; t++) {
            U = qd(q, p->beta * U + cur[t][j]);
            r->U[0][t][j] = U, r->S[t][j] = U;
        }
    }
}

typedef void (*ref_fn)(const qsnn_neuron_params *, const qsnn_state_quant *, const float[NT][NN], ref_out *);

/* Model against reference for all three resets; the spiking models must spike (the resets matter). */
static void check_known_resets(const char *name, ref_fn ref, qsnn_neuron_params p, const qsnn_state_quant *q,
                               const float cur[NT][NN], double tol, const qsnn_reset *list, int n_resets) {
    const qsnn_neuron_ops *ops = qsnn_neuron_find(name);
    cr_assert_not_null(ops, "%s is not registered", name);
    for (int k = 0; k < n_resets; k++) {
        p.reset = list[k];
        float U[MS][NT][NN], S[NT][NN];
        ref_out r;
        memset(&r, 0, sizeof r);
        const double count = run_model(ops, &p, q, cur, U, S);
        ref(&p, q, cur, &r);
        char what[64];
        snprintf(what, sizeof what, "reset %s%s", qsnn_reset_name(p.reset), q ? ", quantized" : "");
        compare(ops, what, U, S, &r, tol);
        if (ops->spiking) {
            cr_expect_eq(count, spike_sum(&r), "%s %s: forward returned %g spikes, reference %g", name, what, count,
                         spike_sum(&r));
            cr_expect_geq(spike_sum(&r), 2.0, "%s %s: the inputs should make it spike", name, what);
        } else {
            cr_expect_eq(count, 0.0, "%s: a readout returns 0 spikes", name);
        }
    }
}

/* A uniform grid over [-θ(1 + lower), θ(1 + upper)]. */
static void check_known(const char *name, ref_fn ref, qsnn_neuron_params p, const qsnn_state_quant *q,
                        const float cur[NT][NN], double tol) {
    check_known_resets(name, ref, p, q, cur, tol, resets, 3);
}

static qsnn_state_quant build_q(qsnn_ctx *ctx, int bits, float theta, double lower, double upper) {
    qsnn_state_quant_cfg cfg = {.bits = bits, .grid = QSNN_GRID_UNIFORM, .lower_limit = lower, .upper_limit = upper};
    qsnn_state_quant q;
    memset(&q, 0, sizeof q);
    cr_assert_eq(qsnn_state_quant_build(ctx, &cfg, theta, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
    return q;
}

/* neuron 0: constant drive; neuron 1: a burst then silence; neuron 2: mixed signs */
static const float cur_lif_like[NT][NN] = {{0.6f, 1.3f, 0.2f}, {0.6f, 0.9f, -0.4f}, {0.6f, 0.0f, 0.7f},
                                         {0.6f, 0.0f, 0.55f}, {0.6f, 0.3f, -0.15f}, {0.6f, 0.0f, 0.8f}};

Test(neuron_models, synaptic_known_values) {
    qsnn_neuron_params p = base_params(QSNN_RESET_SUBTRACT);
    check_known("synaptic", ref_synaptic, p, NULL, cur_lif_like, 1e-5);
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_state_quant q = build_q(ctx, 5, p.theta, 1.0, 0.5); /* J is quantized first, U integrates the quantized J */
    check_known("synaptic", ref_synaptic, p, &q, cur_lif_like, 1e-5);
    q_mask = 2u; /* J alone on the grid, U integrates it in float */
    check_known("synaptic", ref_synaptic, p, &q, cur_lif_like, 1e-5);
    q_mask = ~0u;
    qsnn_state_quant_free(ctx, &q);
    qsnn_ctx_destroy(&ctx);
}

Test(neuron_models, alpha_known_values) {
    qsnn_neuron_params p = base_params(QSNN_RESET_SUBTRACT);
    p.alpha = 0.9f, p.beta = 0.5f, p.theta = 0.5f; /* α > β: alpha-shaped */
    static const float cur[NT][NN] = {{1.0f, 2.0f, 0.5f}, {1.0f, 0.0f, -0.5f}, {1.0f, 0.0f, 1.5f},
                                    {1.0f, 0.0f, 0.25f}, {1.0f, 1.0f, 0.0f}, {1.0f, 0.0f, 1.0f}};
    check_known("alpha", ref_alpha, p, NULL, cur, 1e-5);
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_state_quant q = build_q(ctx, 6, p.theta, 5.0, 5.0); /* [-3, 3]; E, N, then U = Q(E + N) */
    check_known("alpha", ref_alpha, p, &q, cur, 1e-5);
    q_mask = 6u; /* E and N on the grid, their sum in float */
    check_known("alpha", ref_alpha, p, &q, cur, 1e-5);
    q_mask = ~0u;
    qsnn_state_quant_free(ctx, &q);
    qsnn_ctx_destroy(&ctx);
}

Test(neuron_models, lapicque_known_values) {
    qsnn_neuron_params p = base_params(QSNN_RESET_SUBTRACT);
    p.beta = 0.8f, p.in_scale = 0.5f;
    static const float cur[NT][NN] = {{1.5f, 3.0f, 0.4f}, {1.5f, 1.8f, -0.8f}, {1.5f, 0.0f, 1.4f},
                                    {1.5f, 0.0f, 1.1f}, {1.5f, 0.6f, -0.3f}, {1.5f, 0.0f, 1.6f}};
    check_known("lapicque", ref_lapicque, p, NULL, cur, 1e-5);
    p.in_scale = 0.25f; /* the scale must act: a different k gives different states */
    check_known("lapicque", ref_lapicque, p, NULL, cur, 1e-5);
}

Test(neuron_models, alif_known_values) {
    qsnn_neuron_params p = base_params(QSNN_RESET_SUBTRACT);
    p.adapt_decay = 0.8f, p.adapt_strength = 0.5f;
    static const float cur[NT][NN] = {{1.2f, 0.7f, 2.0f}, {0.9f, 0.7f, 0.1f}, {1.1f, 0.7f, 0.1f},
                                    {1.0f, 0.7f, 1.6f}, {1.3f, 0.7f, 0.0f}, {0.9f, 0.7f, 1.9f}};
    check_known("alif", ref_alif, p, NULL, cur, 1e-5);
    p.adapt_strength = 0.0f; /* b = 0: plain LIF (R from S[t-1] = H(U[t-1] - θ)) */
    const qsnn_neuron_ops *lif = qsnn_neuron_find("lif"), *alif = qsnn_neuron_find("alif");
    for (int k = 0; k < 3; k++) {
        p.reset = resets[k];
        float U1[MS][NT][NN], S1[NT][NN], U2[MS][NT][NN], S2[NT][NN];
        run_model(lif, &p, NULL, cur, U1, S1);
        run_model(alif, &p, NULL, cur, U2, S2);
        cr_expect_eq(memcmp(U1[0], U2[0], sizeof U1[0]), 0, "alif with b = 0, reset %s: U differs from lif",
                     qsnn_reset_name(p.reset));
        cr_expect_eq(memcmp(S1, S2, sizeof S1), 0, "alif with b = 0: S differs from lif");
    }
}

/* Zero is the paper's reset. With 1 ms steps v overshoots the peak (to 47..600 mV below), so subtract
 * (v - (θ - c)) and none leave v high and the v² term runs away: those two are checked over the one
 * step after a spike in izhikevich_reset_rules. */
static const float cur_izh[NT][NN] = {{10.0f, 100.0f, 0.0f}, {10.0f, 0.0f, 5.0f}, {10.0f, 0.0f, 5.0f},
                                      {10.0f, 0.0f, 5.0f}, {10.0f, 20.0f, 5.0f}, {10.0f, 0.0f, 5.0f}};
static const qsnn_reset izh_resets[1] = {QSNN_RESET_ZERO};

Test(neuron_models, izhikevich_known_values) {
    qsnn_neuron_params p = base_params(QSNN_RESET_ZERO);
    p.theta = 30.0f; /* regular spiking: a 0.02, b 0.2, c -65, d 8 */
    check_known_resets("izhikevich", ref_izhikevich, p, NULL, cur_izh, 1e-4, izh_resets, 1);
}

Test(neuron_models, izhikevich_quantized_u_reads_quantized_v) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_neuron_params p = base_params(QSNN_RESET_ZERO);
    p.theta = 30.0f;
    qsnn_state_quant q = build_q(ctx, 6, p.theta, 2.0, 0.5); /* [-90, 45], 64 levels: the peak saturates */
    check_known_resets("izhikevich", ref_izhikevich, p, &q, cur_izh, 1e-4, izh_resets, 1);
    q_mask = 1u; /* u in float: its update must read the quantized v */
    check_known_resets("izhikevich", ref_izhikevich, p, &q, cur_izh, 1e-5, izh_resets, 1);
    q_mask = ~0u;
    qsnn_state_quant_free(ctx, &q);
    qsnn_ctx_destroy(&ctx);
}

Test(neuron_models, li_known_values) {
    qsnn_neuron_params p = base_params(QSNN_RESET_SUBTRACT);
    p.beta = 0.7f;
    check_known("li", ref_li, p, NULL, cur_lif_like, 1e-5);
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_state_quant q = build_q(ctx, 4, p.theta, 1.0, 0.5);
    check_known("li", ref_li, p, &q, cur_lif_like, 1e-5);
    qsnn_state_quant_free(ctx, &q);
    qsnn_ctx_destroy(&ctx);
    const qsnn_neuron_ops *ops = qsnn_neuron_find("li");
    cr_expect_eq(ops->spiking, 0);
    cr_expect_eq(ops->params, (unsigned)QSNN_NP_BETA);
}

/* ---- reset rules: the state right after a spike, written out per rule ---- */

/* One neuron, step 0 drives it over θ, step 1 feeds x1: the states at step 1 for each reset. */
static void two_steps(const char *name, qsnn_neuron_params p, float x0, float x1, float U[MS][NT][NN], float S[NT][NN]) {
    const qsnn_neuron_ops *ops = qsnn_neuron_find(name);
    cr_assert_not_null(ops);
    float cur[NT][NN];
    memset(cur, 0, sizeof cur);
    for (int j = 0; j < NN; j++) cur[0][j] = x0, cur[1][j] = x1;
    run_model(ops, &p, NULL, (const float(*)[NN])cur, U, S);
    cr_assert_eq(S[0][0], 1.0f, "%s: step 0 should spike", name);
}

Test(neuron_models, synaptic_reset_rules) {
    qsnn_neuron_params p = base_params(QSNN_RESET_SUBTRACT);
    float U[MS][NT][NN], S[NT][NN];
    const float x0 = 1.5f, x1 = 0.25f;
    const float J1 = p.alpha * x0 + x1;
    two_steps("synaptic", p, x0, x1, U, S);
    cr_expect_float_eq(U[1][1][0], J1, 1e-6, "J is not reset");
    cr_expect_float_eq(U[0][1][0], p.beta * x0 + J1 - p.theta, 1e-6, "subtract: U = beta U + J - theta");
    p.reset = QSNN_RESET_ZERO;
    two_steps("synaptic", p, x0, x1, U, S);
    cr_expect_float_eq(U[0][1][0], J1, 1e-6, "zero: U = J");
    p.reset = QSNN_RESET_NONE;
    two_steps("synaptic", p, x0, x1, U, S);
    cr_expect_float_eq(U[0][1][0], p.beta * x0 + J1, 1e-6, "none: U = beta U + J");
}

Test(neuron_models, alpha_reset_rules) {
    qsnn_neuron_params p = base_params(QSNN_RESET_SUBTRACT);
    p.alpha = 0.9f, p.beta = 0.5f, p.theta = 0.5f;
    float U[MS][NT][NN], S[NT][NN];
    const float x0 = 2.0f, x1 = 0.5f;
    /* step 0: E = 2, N = -2, U = 0: no spike yet; step 1 (x1) fires: U = 0.9·2 - 0.5·2 = 0.8 > θ */
    const qsnn_neuron_ops *ops = qsnn_neuron_find("alpha");
    float cur[NT][NN];
    memset(cur, 0, sizeof cur);
    for (int j = 0; j < NN; j++) cur[0][j] = x0, cur[1][j] = x1, cur[2][j] = 0.25f;
    const double E1 = 0.9 * 2.0 + 0.5, N1 = 0.5 * -2.0 - 0.5;
    for (int k = 0; k < 3; k++) {
        p.reset = resets[k];
        run_model(ops, &p, NULL, (const float(*)[NN])cur, U, S);
        cr_assert_eq(S[1][0], 1.0f, "alpha: step 1 should spike");
        double E2 = 0.9 * E1 + 0.25, N2 = 0.5 * N1 - 0.25; /* none */
        if (p.reset == QSNN_RESET_SUBTRACT) E2 -= 0.5;    /* only E loses θ */
        if (p.reset == QSNN_RESET_ZERO) E2 = 0.25, N2 = -0.25; /* both currents restart from the input */
        cr_expect_float_eq(U[1][2][0], E2, 1e-6, "reset %s: E[2] = %g, expected %g", qsnn_reset_name(p.reset),
                           U[1][2][0], E2);
        cr_expect_float_eq(U[2][2][0], N2, 1e-6, "reset %s: N[2] = %g, expected %g", qsnn_reset_name(p.reset),
                           U[2][2][0], N2);
        cr_expect_float_eq(U[0][2][0], E2 + N2, 1e-6, "reset %s: U = E + N", qsnn_reset_name(p.reset));
    }
}

Test(neuron_models, lapicque_reset_rules) {
    qsnn_neuron_params p = base_params(QSNN_RESET_SUBTRACT);
    p.in_scale = 0.5f;
    float U[MS][NT][NN], S[NT][NN];
    const float x0 = 3.0f, x1 = 0.5f; /* U[0] = 1.5 */
    two_steps("lapicque", p, x0, x1, U, S);
    cr_expect_float_eq(U[0][1][0], 0.9f * 1.5f + 0.25f - 1.0f, 1e-6, "subtract");
    p.reset = QSNN_RESET_ZERO;
    two_steps("lapicque", p, x0, x1, U, S);
    cr_expect_float_eq(U[0][1][0], 0.25f, 1e-6, "zero: U = k I");
    p.reset = QSNN_RESET_NONE;
    two_steps("lapicque", p, x0, x1, U, S);
    cr_expect_float_eq(U[0][1][0], 0.9f * 1.5f + 0.25f, 1e-6, "none");
}

Test(neuron_models, alif_reset_rules_and_adaptation) {
    qsnn_neuron_params p = base_params(QSNN_RESET_SUBTRACT);
    float U[MS][NT][NN], S[NT][NN];
    const float x0 = 1.5f, x1 = 0.4f;
    two_steps("alif", p, x0, x1, U, S);
    cr_expect_eq(U[1][0][0], 0.0f, "a[0] = 0");
    cr_expect_float_eq(U[1][1][0], 1.0f, 1e-7, "a[1] = rho·0 + S[0]");
    cr_expect_float_eq(U[1][2][0], 0.8f, 1e-7, "a[2] = rho·1 + S[1] (S[1] = 0)");
    cr_expect_float_eq(U[0][1][0], 0.9f * 1.5f + 0.4f - 1.0f, 1e-6, "subtract: the baseline θ, not θ[t]");
    cr_expect_eq(S[1][0], 0.0f, "U[1] = 0.75 is below θ[1] = 1.5");
    p.reset = QSNN_RESET_ZERO;
    two_steps("alif", p, x0, x1, U, S);
    cr_expect_float_eq(U[0][1][0], 0.4f, 1e-6, "zero: U = I");
    p.reset = QSNN_RESET_NONE;
    two_steps("alif", p, x0, x1, U, S);
    cr_expect_float_eq(U[0][1][0], 0.9f * 1.5f + 0.4f, 1e-6, "none");
    cr_expect_eq(S[1][0], 1.0f, "none: U[1] = 1.75 > theta[1] = 1.5");
    /* U[1] = 1.45 is above θ = 1 but below θ[1] = θ + b·a[1] = 1.5: the adapted threshold holds it back */
    two_steps("alif", p, x0, 0.1f, U, S);
    cr_expect_float_eq(U[0][1][0], 1.45f, 1e-6);
    cr_expect_eq(S[1][0], 0.0f, "the adapted threshold should hold the spike back");
}

Test(neuron_models, izhikevich_reset_rules) {
    qsnn_neuron_params p = base_params(QSNN_RESET_ZERO);
    p.theta = 30.0f;
    const qsnn_neuron_ops *ops = qsnn_neuron_find("izhikevich");
    float U[MS][NT][NN], S[NT][NN], cur[NT][NN];
    memset(cur, 0, sizeof cur);
    for (int j = 0; j < NN; j++) cur[0][j] = 100.0f, cur[1][j] = 2.0f;
    for (int k = 0; k < 3; k++) {
        p.reset = resets[k];
        run_model(ops, &p, NULL, (const float(*)[NN])cur, U, S);
        cr_assert_eq(S[0][0], 1.0f, "izhikevich: step 0 should spike (v = %g)", U[0][0][0]);
        double v0 = U[0][0][0], u0 = U[1][0][0];
        if (p.reset != QSNN_RESET_NONE) v0 = p.izh_c, u0 += p.izh_d; /* subtract is zero for this model */
        /* none: no reset at all */
        double v = v0;
        for (int h = 0; h < 2; h++) v += 0.5 * (0.04 * v * v + 5 * v + 140 - u0 + 2.0);
        const double u = u0 + p.izh_a * (p.izh_b * v - u0);
        cr_expect_leq(fabs(U[0][1][0] - v), 1e-4 * (1 + fabs(v)), "reset %s: v[1] = %g, expected %g",
                      qsnn_reset_name(p.reset), U[0][1][0], v);
        cr_expect_leq(fabs(U[1][1][0] - u), 1e-4 * (1 + fabs(u)), "reset %s: u[1] = %g, expected %g",
                      qsnn_reset_name(p.reset), U[1][1][0], u);
    }
    /* initial state v = c, u = b c: with no input, step 0 integrates from there */
    memset(cur, 0, sizeof cur);
    run_model(ops, &p, NULL, (const float(*)[NN])cur, U, S);
    double v = -65.0, u = 0.2 * -65.0;
    for (int h = 0; h < 2; h++) v += 0.5 * (0.04 * v * v + 5 * v + 140 - u);
    cr_expect_float_eq(U[0][0][0], v, 1e-4, "v[0] from v = c, u = b c");
}

Test(neuron_models, li_has_no_reset) {
    qsnn_neuron_params p = base_params(QSNN_RESET_SUBTRACT);
    p.beta = 0.5f;
    const qsnn_neuron_ops *ops = qsnn_neuron_find("li");
    float U[MS][NT][NN], S[NT][NN], cur[NT][NN];
    memset(cur, 0, sizeof cur);
    for (int j = 0; j < NN; j++) cur[0][j] = 5.0f, cur[1][j] = 1.0f;
    for (int k = 0; k < 3; k++) {
        p.reset = resets[k];
        run_model(ops, &p, NULL, (const float(*)[NN])cur, U, S);
        cr_expect_eq(U[0][1][0], 3.5f, "reset %s: far above θ, U = beta U + I all the same", qsnn_reset_name(p.reset));
        cr_expect_eq(S[1][0], 3.5f, "S = U");
    }
}

Test(neuron_models, registered_with_their_states) {
    static const struct { const char *name; int ns; unsigned quantized, params; const char *s0; } want[] = {
        {"synaptic", 2, 3u, QSNN_NP_BETA | QSNN_NP_THETA | QSNN_NP_ALPHA, "U"},
        {"alpha", 3, 7u, QSNN_NP_BETA | QSNN_NP_THETA | QSNN_NP_ALPHA, "U"},
        {"lapicque", 1, 1u, QSNN_NP_BETA | QSNN_NP_THETA, "U"},
        {"alif", 2, 1u, QSNN_NP_BETA | QSNN_NP_THETA, "U"},
        {"izhikevich", 2, 3u, QSNN_NP_THETA, "v"},
        {"li", 1, 1u, QSNN_NP_BETA, "U"},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const qsnn_neuron_ops *ops = qsnn_neuron_find(want[i].name);
        cr_assert_not_null(ops, "%s", want[i].name);
        cr_expect_eq(ops->n_states, want[i].ns, "%s", want[i].name);
        cr_expect_eq(ops->quantized, want[i].quantized, "%s", want[i].name);
        cr_expect_eq(ops->params, want[i].params, "%s", want[i].name);
        cr_expect_str_eq(ops->state_names[0], want[i].s0, "%s", want[i].name);
        cr_expect_not_null(ops->summary);
        cr_expect(strstr(qsnn_neuron_names(), want[i].name) != NULL);
    }
}
