/* One suite for every neuron model of the registry (the SUNDIALS way: the same checks for each
 * implementation of neurons/neuron.h), using only the ops fields n_states, quantized, params and spiking:
 *   - the adjoint against central differences of the smooth (soft-spike) forward, for the inputs and
 *     the declared parameters, per-step and static input;
 *   - reset rules: identical before the first spike, subtract and zero differ from none after it;
 *   - state quantization: every quantized plane holds grid levels only;
 *   - determinism: step ranges (with backward carries), neuron blocks and inference mode
 *     (u_stride 0) reproduce the whole-range call bit for bit;
 *   - forward returns the number of spikes; nothing is written outside the io's cells;
 *   - per-neuron parameters and grid gains (io.pn, io.qgain, io.gpn): arrays equal to the scalars reproduce the
 *     scalar call, per-element gradients against central differences, element j equals a one-neuron scalar call
 *     with its values, gained states are gain × a level, power-of-two gains equal calls on scaled grids.
 * A new model joins by its registry line; only the small parameter table below knows model names. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "neurons/neuron.h"
#include "neurons/surrogate.h"
#include "quant/state_quant.h"
#include "test_util.h"

enum { NS = QSNN_NEURON_MAX_STATES };

/* ---- per-model settings (only where the dynamics need them) ---------------------------------- */

typedef struct mcfg {
    const char *name;
    float theta, beta, alpha;
    float soft_slope;   /* k of the soft spike, about 3 per threshold unit */
    float in_lo, in_hi; /* typical currents: the membrane reaches θ within a few steps */
    float fd_rel;       /* central-difference step relative to the value */
    unsigned resets;    /* bit r: reset rule r keeps the float dynamics finite (the reset-rule check and the
                         * bit-exact guard check run every rule regardless) */
    int linear;         /* 1: scaling inputs and θ by 2^k scales every state by 2^k (alif with adapt_strength 0) */
    float lq_h, lq_tol; /* learned grids' values (test 7): relative difference step and tolerance (0: fd_rel and
                         * grad_ok's); Izhikevich's blow-up makes its differences in the grid's step noisy */
} mcfg;

static const mcfg model_table[] = {
    /* v in mV, θ is the spike peak, inputs ~10. The upswing is a near-singular blow-up (v gains ~70 mV
     * in one step), so differences need a smaller step (1e-2 is truncation-bound, 1e-4 rounding-bound);
     * without a reset v runs away to inf/NaN, as the model documents. */
    {"izhikevich", 30.0f, 0.8f, 0.7f, 0.3f, 0.0f, 10.0f, 3e-3f, 3u, 0, 3e-4f, 5e-2f},
    /* I reaches U as (α - β) I: excitatory only for α > β */
    {"alpha", 1.0f, 0.6f, 0.9f, 3.0f, -0.2f, 0.9f, 1e-2f, 7u, 1, 0.0f, 0.0f},
};
static const mcfg default_mcfg = {"(default)", 1.0f, 0.8f, 0.7f, 3.0f, -0.2f, 0.9f, 1e-2f, 7u, 1, 0.0f, 0.0f};

static const mcfg *model_cfg(const char *name) {
    for (size_t i = 0; i < sizeof model_table / sizeof *model_table; i++)
        if (!strcmp(model_table[i].name, name)) return &model_table[i];
    return &default_mcfg;
}

static qsnn_neuron_params base_params(const mcfg *m) {
    return (qsnn_neuron_params){.beta = m->beta, .theta = m->theta, .reset = QSNN_RESET_SUBTRACT, .reset_grad = 0,
                                .surrogate = QSNN_SURR_ARCTAN, .slope = 2.0f, .alpha = m->alpha, .in_scale = 0.9f,
                                .adapt_decay = 0.9f, .adapt_strength = 0.2f, .izh_a = 0.02f, .izh_b = 0.2f,
                                .izh_c = -65.0f, .izh_d = 8.0f};
}

#define FOR_EACH_MODEL(ops)                                                                                       \
    for (int mi_ = 0; mi_ < qsnn_neuron_count(); mi_++)                                                           \
        for (const qsnn_neuron_ops *ops = qsnn_neuron_get(mi_); ops; ops = NULL)

/* ---- helpers ---------------------------------------------------------------------------------- */

static float urand(uint64_t *s) { /* splitmix64: fixed sequences, no library RNG needed */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

static void fill(float *x, int n, float lo, float hi, uint64_t seed) {
    for (int i = 0; i < n; i++) x[i] = lo + (hi - lo) * urand(&seed);
}

static uint32_t bits_of(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static void set_q(qsnn_neuron_io *io, const qsnn_neuron_ops *ops, const qsnn_state_quant *q) {
    for (int s = 0; s < NS; s++) io->q[s] = q && s < ops->n_states && ((ops->quantized >> s) & 1u) ? q : NULL;
}

/* Whole-range io on neurons j0 .. j0+nb-1 of buffers laid out with step stride n (the engine's layout). */
static qsnn_neuron_io make_io(const qsnn_neuron_ops *ops, const qsnn_state_quant *q, int T, int n, int j0, int nb,
                              const float *cur, size_t is, float *U, float *S) {
    qsnn_neuron_io io = {.T = T, .t0 = 0, .t1 = T, .n = nb, .cur = cur + j0, .i_stride = is, .U = U + j0,
                         .u_stride = (size_t)n, .plane = (size_t)T * n, .S = S + j0, .stride = (size_t)n};
    set_q(&io, ops, q);
    return io;
}

/* Compares state planes (or any [s][t][j] buffer) bit for bit; reports the first differing cell. */
static int diff_cells(const char *where, const char *what, const float *a, const float *b, int planes, size_t plane,
                      int T, size_t ustride, int n) {
    int count = 0, fs = 0, ft = 0, fj = 0;
    for (int s = 0; s < planes; s++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < n; j++) {
                const size_t k = (size_t)s * plane + (size_t)t * ustride + j;
                if (bits_of(a[k]) != bits_of(b[k]) && !count++) fs = s, ft = t, fj = j;
            }
    if (count) {
        const size_t k = (size_t)fs * plane + (size_t)ft * ustride + fj;
        cr_expect(0, "%s: %s differs (%d cells), first at state %d step %d neuron %d: %.9g vs %.9g", where, what,
                  count, fs, ft, fj, a[k], b[k]);
    }
    return count;
}

/* NaN equals NaN here: a non-finite run is reported once, by the finiteness checks. */
static int pg_close(double a, double b) {
    return fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b)) + 1e-300 || (isnan(a) && isnan(b));
}

static void expect_pg(const char *where, const char *what, const qsnn_neuron_pgrad *a, const qsnn_neuron_pgrad *b) {
    cr_expect(pg_close(a->beta, b->beta) && pg_close(a->theta, b->theta) && pg_close(a->alpha, b->alpha) &&
                  pg_close(a->qp[0], b->qp[0]),
              "%s: %s parameter gradients differ beyond summation order: beta %.17g vs %.17g, theta %.17g vs "
              "%.17g, alpha %.17g vs %.17g, scale %.17g vs %.17g",
              where, what, a->beta, b->beta, a->theta, b->theta, a->alpha, b->alpha, a->qp[0], b->qp[0]);
}

static const char *surr_label(qsnn_surrogate_id id) {
    const qsnn_surrogate *s = qsnn_surrogate_get(id);
    return s ? s->name : "?";
}

/* ---- registry ---------------------------------------------------------------------------------- */

Test(neuron_conformance, registry_entries_are_complete) {
    cr_assert_gt(qsnn_neuron_count(), 0);
    FOR_EACH_MODEL(ops) {
        cr_expect(ops->name && ops->forward && ops->backward, "model %d: required slot missing", mi_);
        if (!ops->name) continue;
        cr_expect(ops->n_states >= 1 && ops->n_states <= NS, "%s: n_states %d", ops->name, ops->n_states);
        cr_expect((ops->quantized >> ops->n_states) == 0, "%s: quantized bits 0x%x beyond n_states %d", ops->name,
                  ops->quantized, ops->n_states);
        cr_expect((ops->params & ~(unsigned)(QSNN_NP_BETA | QSNN_NP_THETA | QSNN_NP_ALPHA)) == 0,
                  "%s: unknown params bits 0x%x", ops->name, ops->params);
        for (int s = 0; s < ops->n_states; s++) cr_expect(ops->state_names[s] != NULL, "%s: state %d unnamed", ops->name, s);
        cr_expect_eq(qsnn_neuron_find(ops->name), ops, "%s: find by name", ops->name);
        cr_expect(strstr(qsnn_neuron_names(), ops->name) != NULL, "%s: missing from the names list", ops->name);
    }
}

/* ---- 1. gradients against central differences --------------------------------------------------- */

enum { FT = 6, FN = 4 };

/* L = Σ_t Σ_j w1 S + w2 U (state 0), accumulated in double. */
static double fd_loss(const qsnn_neuron_ops *ops, const qsnn_neuron_params *p, const float *cur, size_t is,
                      const float *w1, const float *w2) {
    float U[NS * FT * FN], S[FT * FN];
    qsnn_neuron_io io = make_io(ops, NULL, FT, FN, 0, FN, cur, is, U, S);
    ops->forward(p, &io);
    double L = 0.0;
    for (int k = 0; k < FT * FN; k++) L += (double)w1[k] * S[k] + (double)w2[k] * U[k];
    return L;
}

/* Per entry, so a large gradient elsewhere does not loosen the check of a small one. */
static int grad_ok(double g, double fd) { return fabs(g - fd) <= 2e-2 * fabs(fd) + 1e-3 * fmax(1.0, fabs(fd)); }

static float *param_field(qsnn_neuron_params *p, int i) { return i == 0 ? &p->beta : i == 1 ? &p->theta : &p->alpha; }
static double pgrad_field(const qsnn_neuron_pgrad *g, int i) { return i == 0 ? g->beta : i == 1 ? g->theta : g->alpha; }
static const unsigned param_flag[3] = {QSNN_NP_BETA, QSNN_NP_THETA, QSNN_NP_ALPHA};
static const char *const param_name[3] = {"beta", "theta", "alpha"};

Test(neuron_conformance, gradients_match_finite_differences) {
    FOR_EACH_MODEL(ops) {
        const mcfg *m = model_cfg(ops->name);
        for (int r = 0; r < 3; r++)
            for (int st = 0; st < 2; st++) {
                if (!((m->resets >> r) & 1u)) continue;
                qsnn_neuron_params p = base_params(m);
                p.surrogate = QSNN_SURR_SOFT, p.slope = m->soft_slope, p.reset = (qsnn_reset)r, p.reset_grad = 1;
                const size_t is = st ? 0 : FN;
                const int ncur = st ? FN : FT * FN;
                float cur[FT * FN], w1[FT * FN], w2[FT * FN], U[NS * FT * FN], S[FT * FN], gcur[FT * FN];
                fill(cur, ncur, m->in_lo, m->in_hi, 11u + 7u * r + 3u * st);
                fill(w1, FT * FN, -1.0f, 1.0f, 101u + r);
                fill(w2, FT * FN, -1.0f, 1.0f, 202u + r);
                char where[128];
                snprintf(where, sizeof where, "%s (soft, reset %s, reset_grad, %s input)", ops->name,
                         qsnn_reset_name(p.reset), st ? "static" : "per-step");

                qsnn_neuron_io io = make_io(ops, NULL, FT, FN, 0, FN, cur, is, U, S);
                ops->forward(&p, &io);
                io.gS = w1, io.gU = w2, io.gcur = gcur, io.gi_stride = is;
                qsnn_neuron_pgrad pg = {0};
                ops->backward(&p, &io, &pg);

                /* dL/dI: every step and neuron (static input: summed over steps) */
                double fd[FT * FN];
                for (int k = 0; k < ncur; k++) {
                    float c2[FT * FN];
                    memcpy(c2, cur, sizeof c2);
                    const float h = m->fd_rel * fmaxf(fabsf(cur[k]), fabsf(m->in_hi));
                    const float xp = cur[k] + h, xm = cur[k] - h;
                    c2[k] = xp;
                    const double Lp = fd_loss(ops, &p, c2, is, w1, w2);
                    c2[k] = xm;
                    const double Lm = fd_loss(ops, &p, c2, is, w1, w2);
                    fd[k] = (Lp - Lm) / ((double)xp - (double)xm);
                }
                int bad = 0;
                for (int k = 0; k < ncur; k++) {
                    const int ok = grad_ok(gcur[k], fd[k]);
                    if (!ok && bad++ < 3)
                        cr_expect(0, "%s: dL/dI at step %d neuron %d: adjoint %.7g, central difference %.7g", where,
                                  st ? -1 : k / FN, k % FN, gcur[k], fd[k]);
                }
                cr_expect(bad == 0, "%s: %d of %d input gradients off", where, bad, ncur);

                /* declared parameters; the others must be left alone */
                for (int i = 0; i < 3; i++) {
                    if (!(ops->params & param_flag[i])) {
                        cr_expect(pgrad_field(&pg, i) == 0.0, "%s: %s is not declared but got gradient %g", where,
                                  param_name[i], pgrad_field(&pg, i));
                        continue;
                    }
                    qsnn_neuron_params p2 = p;
                    const float v = *param_field(&p, i), h = m->fd_rel * fabsf(v);
                    const float xp = v + h, xm = v - h;
                    *param_field(&p2, i) = xp;
                    const double Lp = fd_loss(ops, &p2, cur, is, w1, w2);
                    *param_field(&p2, i) = xm;
                    const double Lm = fd_loss(ops, &p2, cur, is, w1, w2);
                    const double f = (Lp - Lm) / ((double)xp - (double)xm), g = pgrad_field(&pg, i);
                    cr_expect(grad_ok(g, f), "%s: dL/d%s: adjoint %.7g, central difference %.7g",
                              where, param_name[i], g, f);
                }
            }
    }
}

/* ---- 2. reset rules ------------------------------------------------------------------------------ */

enum { RT = 30, RN = 4 };

Test(neuron_conformance, reset_rules) {
    FOR_EACH_MODEL(ops) {
        if (!ops->spiking) continue; /* a readout has no spike to reset on */
        const mcfg *m = model_cfg(ops->name);
        const int ns = ops->n_states;
        float drive[RN], U[3][NS * RT * RN], S[3][RT * RN];
        for (int j = 0; j < RN; j++) drive[j] = m->in_hi * (0.5f + 0.5f * (float)j); /* constant, static input */
        for (int r = 0; r < 3; r++) {
            qsnn_neuron_params p = base_params(m);
            p.reset = (qsnn_reset)r;
            qsnn_neuron_io io = make_io(ops, NULL, RT, RN, 0, RN, drive, 0, U[r], S[r]);
            const double c = ops->forward(&p, &io);
            cr_expect(c > 0.0, "%s (reset %s): no spike in %d steps with drives up to %g", ops->name,
                      qsnn_reset_name(p.reset), RT, drive[RN - 1]);
        }
        for (int j = 0; j < RN; j++) {
            int tf = RT; /* the first spike (reset none is the reference) */
            for (int t = 0; t < RT && tf == RT; t++)
                if (S[QSNN_RESET_NONE][t * RN + j] != 0.0f) tf = t;
            for (int r = 0; r < 2; r++) {
                const char *rn = qsnn_reset_name((qsnn_reset)r);
                for (int t = 0; t <= tf && t < RT; t++) {
                    const size_t k = (size_t)t * RN + j;
                    cr_expect(bits_of(S[r][k]) == bits_of(S[QSNN_RESET_NONE][k]),
                              "%s neuron %d: spike at step %d differs between reset %s (%g) and none (%g), first "
                              "spike at step %d", ops->name, j, t, rn, S[r][k], S[QSNN_RESET_NONE][k], tf);
                    if (t == tf) break; /* the state at the spike step may already be reset */
                    for (int s = 0; s < ns; s++) {
                        const size_t ks = (size_t)s * RT * RN + k;
                        cr_expect(bits_of(U[r][ks]) == bits_of(U[QSNN_RESET_NONE][ks]),
                                  "%s neuron %d: state %d at step %d (before the first spike at %d) differs: reset %s "
                                  "%.9g, none %.9g", ops->name, j, s, t, tf, rn, U[r][ks], U[QSNN_RESET_NONE][ks]);
                    }
                }
                if (tf <= RT - 3) { /* room to see the reset act */
                    int differs = 0;
                    for (int t = tf; t < RT && !differs; t++)
                        for (int s = 0; s < ns; s++) {
                            const size_t ks = (size_t)s * RT * RN + (size_t)t * RN + j;
                            differs |= bits_of(U[r][ks]) != bits_of(U[QSNN_RESET_NONE][ks]);
                        }
                    cr_expect(differs, "%s neuron %d (drive %g): reset %s never differs from none after the first "
                              "spike at step %d", ops->name, j, drive[j], rn, tf);
                }
            }
        }
        int spiked = 0;
        for (int j = 0; j < RN; j++)
            for (int t = 0; t < RT; t++) spiked |= S[QSNN_RESET_NONE][t * RN + j] != 0.0f;
        cr_expect(spiked, "%s: no neuron spiked under reset none", ops->name);
    }
}

/* ---- 3. state quantization ----------------------------------------------------------------------- */

enum { QT = 12, QN = 6 };

Test(neuron_conformance, quantized_states_hold_grid_levels) {
    qsnn_ctx *ctx = test_ctx(1);
    FOR_EACH_MODEL(ops) {
        const mcfg *m = model_cfg(ops->name);
        if (!ops->quantized) continue;
        qsnn_state_quant q;
        memset(&q, 0, sizeof q);
        const qsnn_state_quant_cfg qc = {.bits = 4, .grid = QSNN_GRID_UNIFORM, .upper_limit = 0.2};
        cr_assert_eq(qsnn_state_quant_build(ctx, &qc, m->theta, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
        for (int r = 0; r < 3; r++)
            for (int soft = 0; soft < 2; soft++) {
                qsnn_neuron_params p = base_params(m);
                p.reset = (qsnn_reset)r;
                if (soft) p.surrogate = QSNN_SURR_SOFT, p.slope = m->soft_slope;
                float cur[QT * QN], Uf[NS * QT * QN], Sf[QT * QN], Uq[NS * QT * QN], Sq[QT * QN];
                fill(cur, QT * QN, m->in_lo, 1.5f * m->in_hi, 31u + r);
                qsnn_neuron_io io = make_io(ops, NULL, QT, QN, 0, QN, cur, QN, Uf, Sf);
                ops->forward(&p, &io);
                io = make_io(ops, &q, QT, QN, 0, QN, cur, QN, Uq, Sq);
                ops->forward(&p, &io);
                for (int s = 0; s < ops->n_states; s++) {
                    if (!((ops->quantized >> s) & 1u)) continue;
                    int bad = 0;
                    for (int k = 0; k < QT * QN; k++) {
                        const float v = Uq[s * QT * QN + k];
                        if (qsnn_state_quant_ref(&q, v) != v && bad++ < 3)
                            cr_expect(0, "%s (reset %s%s): state %d (%s) at step %d neuron %d is %.9g, not a level "
                                      "(nearest %.9g)", ops->name, qsnn_reset_name(p.reset), soft ? ", soft" : "", s,
                                      ops->state_names[s], k / QN, k % QN, v, qsnn_state_quant_ref(&q, v));
                    }
                }
                int differs = 0;
                for (int k = 0; k < ops->n_states * QT * QN; k++) differs |= bits_of(Uf[k]) != bits_of(Uq[k]);
                for (int k = 0; k < QT * QN; k++) differs |= bits_of(Sf[k]) != bits_of(Sq[k]);
                cr_expect(differs, "%s (reset %s%s): the quantized run equals the float run", ops->name,
                          qsnn_reset_name(p.reset), soft ? ", soft" : "");
            }
        qsnn_state_quant_free(ctx, &q);
    }
    qsnn_ctx_destroy(&ctx);
}

/* ---- 4. step ranges, blocks and inference mode --------------------------------------------------- */

typedef struct variant {
    qsnn_surrogate_id sid;
    qsnn_reset reset;
    int rgrad, quant;
} variant;

static const variant variants[] = {
    {QSNN_SURR_ARCTAN, QSNN_RESET_SUBTRACT, 0, 0},       {QSNN_SURR_ARCTAN, QSNN_RESET_SUBTRACT, 0, 1},
    {QSNN_SURR_FAST_SIGMOID, QSNN_RESET_ZERO, 1, 1},     {QSNN_SURR_SOFT, QSNN_RESET_NONE, 1, 0},
    {QSNN_SURR_SIGMOID, QSNN_RESET_ZERO, 0, 0},          {QSNN_SURR_SOFT, QSNN_RESET_SUBTRACT, 1, 1},
    {QSNN_SURR_TRIANGULAR, QSNN_RESET_NONE, 0, 1},
};

/* The model's base parameters with variant v's surrogate (and its slope), reset and reset_grad. */
static qsnn_neuron_params variant_params(const mcfg *m, int v) {
    qsnn_neuron_params p = base_params(m);
    p.surrogate = variants[v].sid, p.reset = variants[v].reset, p.reset_grad = variants[v].rgrad;
    p.slope = variants[v].sid == QSNN_SURR_SOFT ? m->soft_slope : qsnn_surrogate_get(variants[v].sid)->default_slope;
    return p;
}
#define N_VARIANTS ((int)(sizeof variants / sizeof *variants))

enum { CT = 12, CN = 7, CN1 = 3 };

/* Step ranges of a chunked run, in forward order: uneven lengths so no chunk boundary is special. */
static const int chunk_edges[] = {0, 1, 4, 5, 9, CT};
#define N_CHUNKS ((int)(sizeof chunk_edges / sizeof *chunk_edges) - 1)

typedef struct outs {
    float U[NS * CT * CN], S[CT * CN], gcur[CT * CN];
    qsnn_neuron_pgrad pg;
    double count;
} outs;

typedef struct ccase {
    const qsnn_neuron_ops *ops;
    qsnn_neuron_params p;
    const qsnn_state_quant *q;
    size_t is;
    const float *cur, *w1, *w2;
    int full; /* backward with gU and parameter gradients (else gS only, pg NULL: the engine's fast path) */
} ccase;

static void outs_init(outs *o) {
    memset(o, 0, sizeof *o);
    for (int k = 0; k < CT * CN; k++) o->gcur[k] = NAN; /* gcur must be written (or zeroed) by the model */
}

/* Forward over the ranges [e[i], e[i+1]) for neurons [j0, j0+nb). */
static void fwd_ranges(const ccase *c, outs *o, const int *e, int ne, int j0, int nb) {
    for (int i = 0; i < ne; i++) {
        qsnn_neuron_io io = make_io(c->ops, c->q, CT, CN, j0, nb, c->cur, c->is, o->U, o->S);
        io.t0 = e[i], io.t1 = e[i + 1];
        o->count += c->ops->forward(&c->p, &io);
    }
}

/* Backward over the same ranges in reverse order, with a carry between them. */
static void bwd_ranges(const ccase *c, const outs *f, outs *o, const int *e, int ne, int j0, int nb) {
    float carry[NS * CN];
    for (int k = 0; k < NS * CN; k++) carry[k] = NAN; /* not read when t1 = T */
    for (int i = ne - 1; i >= 0; i--) {
        qsnn_neuron_io io = make_io(c->ops, c->q, CT, CN, j0, nb, c->cur, c->is, (float *)f->U, (float *)f->S);
        io.t0 = e[i], io.t1 = e[i + 1];
        io.gS = c->w1 + j0, io.gU = c->full ? c->w2 + j0 : NULL, io.gcur = o->gcur + j0, io.gi_stride = c->is;
        io.carry = ne > 1 ? carry : NULL;
        c->ops->backward(&c->p, &io, c->full ? &o->pg : NULL);
    }
}

Test(neuron_conformance, step_ranges_blocks_and_inference_agree) {
    qsnn_ctx *ctx = test_ctx(1);
    FOR_EACH_MODEL(ops) {
        const mcfg *m = model_cfg(ops->name);
        const int ns = ops->n_states;
        qsnn_state_quant q;
        memset(&q, 0, sizeof q);
        const qsnn_state_quant_cfg qc = {.bits = 4, .grid = QSNN_GRID_UNIFORM, .upper_limit = 0.2};
        cr_assert_eq(qsnn_state_quant_build(ctx, &qc, m->theta, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
        float cur[CT * CN], w1[CT * CN], w2[CT * CN];
        fill(w1, CT * CN, -1.0f, 1.0f, 5u);
        fill(w2, CT * CN, -1.0f, 1.0f, 6u);
        for (int v = 0; v < N_VARIANTS; v++)
            for (int st = 0; st < 2; st++)
                for (int full = 0; full < 2; full++) {
                    if (!((m->resets >> variants[v].reset) & 1u)) continue;
                    ccase c = {.ops = ops, .p = base_params(m), .q = variants[v].quant ? &q : NULL,
                               .is = st ? 0 : CN, .cur = cur, .w1 = w1, .w2 = w2, .full = full};
                    c.p = variant_params(m, v);
                    fill(cur, CT * CN, m->in_lo, 1.5f * m->in_hi, 40u + (uint64_t)v);
                    char where[160];
                    snprintf(where, sizeof where, "%s (%s, reset %s%s%s, %s input, %s backward)", ops->name,
                             surr_label(c.p.surrogate), qsnn_reset_name(c.p.reset), c.p.reset_grad ? ", reset_grad" : "",
                             c.q ? ", 4-bit states" : "", st ? "static" : "per-step", full ? "gS+gU+pg" : "gS only");
                    const int gT = st ? 1 : CT; /* rows of gcur */
                    static outs whole, steps, chunks, blocks;
                    outs_init(&whole), outs_init(&steps), outs_init(&chunks), outs_init(&blocks);
                    int every[CT + 1];
                    for (int t = 0; t <= CT; t++) every[t] = t;

                    fwd_ranges(&c, &whole, (const int[]){0, CT}, 1, 0, CN);
                    fwd_ranges(&c, &steps, every, CT, 0, CN);
                    fwd_ranges(&c, &chunks, chunk_edges, N_CHUNKS, 0, CN);
                    fwd_ranges(&c, &blocks, (const int[]){0, CT}, 1, 0, CN1);
                    fwd_ranges(&c, &blocks, (const int[]){0, CT}, 1, CN1, CN - CN1);
                    const size_t plane = (size_t)CT * CN;
                    int fwd_finite;
                    { /* the rules in the model's reset mask keep typical runs finite */
                        int bad = 0, first = 0;
                        for (int k = 0; k < ns * CT * CN; k++)
                            if (!isfinite(whole.U[k]) && !bad++) first = k;
                        cr_expect(bad == 0, "%s: forward: %d state values not finite, first state %d step %d neuron %d "
                                  "(%g; inputs up to %g)", where, bad, first / (CT * CN), first % (CT * CN) / CN,
                                  first % CN, bad ? whole.U[first] : 0.0f, 1.5 * m->in_hi);
                        fwd_finite = bad == 0;
                    }
                    diff_cells(where, "forward step by step: states", steps.U, whole.U, ns, plane, CT, CN, CN);
                    diff_cells(where, "forward step by step: spikes", steps.S, whole.S, 1, 0, CT, CN, CN);
                    diff_cells(where, "forward in chunks: states", chunks.U, whole.U, ns, plane, CT, CN, CN);
                    diff_cells(where, "forward in chunks: spikes", chunks.S, whole.S, 1, 0, CT, CN, CN);
                    diff_cells(where, "forward in two blocks: states", blocks.U, whole.U, ns, plane, CT, CN, CN);
                    diff_cells(where, "forward in two blocks: spikes", blocks.S, whole.S, 1, 0, CT, CN, CN);
                    cr_expect(steps.count == whole.count && chunks.count == whole.count,
                              "%s: spike counts: whole %.9g, step by step %.9g, chunks %.9g", where, whole.count,
                              steps.count, chunks.count);
                    /* per-block float counts differ from the one-block count only by rounding (soft spikes) */
                    cr_expect(fabs(blocks.count - whole.count) <= 1e-5 * fmax(1.0, whole.count),
                              "%s: spike count in two blocks %.9g, one block %.9g", where, blocks.count, whole.count);

                    /* inference: one row per state (plane = n), whole range and step by step */
                    for (int by_step = 0; by_step < 2; by_step++) {
                        float Ui[NS * CN], Si[CT * CN];
                        double cnt = 0.0;
                        for (int i = 0; i < (by_step ? CT : 1); i++) {
                            qsnn_neuron_io io = make_io(ops, c.q, CT, CN, 0, CN, cur, c.is, Ui, Si);
                            io.u_stride = 0, io.plane = CN;
                            io.t0 = by_step ? i : 0, io.t1 = by_step ? i + 1 : CT;
                            cnt += ops->forward(&c.p, &io);
                        }
                        const char *lbl = by_step ? "inference step by step" : "inference";
                        char what[64];
                        snprintf(what, sizeof what, "%s: spikes", lbl);
                        diff_cells(where, what, Si, whole.S, 1, 0, CT, CN, CN);
                        for (int s = 0; s < ns; s++) { /* row s against step T-1 of the kept plane s */
                            snprintf(what, sizeof what, "%s: final state %d", lbl, s);
                            diff_cells(where, what, Ui + (size_t)s * CN, whole.U + s * plane + (size_t)(CT - 1) * CN,
                                       1, 0, 1, 0, CN);
                        }
                        cr_expect(cnt == whole.count, "%s: %s spike count %.9g, kept run %.9g", where, lbl, cnt,
                                  whole.count);
                    }

                    bwd_ranges(&c, &whole, &whole, (const int[]){0, CT}, 1, 0, CN);
                    bwd_ranges(&c, &whole, &steps, every, CT, 0, CN);
                    bwd_ranges(&c, &whole, &chunks, chunk_edges, N_CHUNKS, 0, CN);
                    bwd_ranges(&c, &whole, &blocks, (const int[]){0, CT}, 1, 0, CN1);
                    bwd_ranges(&c, &whole, &blocks, (const int[]){0, CT}, 1, CN1, CN - CN1);
                    if (fwd_finite) { /* NaN would be a cell left unwritten (prefilled) or a 0·inf */
                        int finite = 1;
                        for (int k = 0; k < gT * CN; k++) finite &= isfinite(whole.gcur[k]) != 0;
                        finite &= isfinite(whole.pg.beta) && isfinite(whole.pg.theta) && isfinite(whole.pg.alpha) &&
                                  isfinite(whole.pg.qp[0]);
                        cr_expect(finite, "%s: whole-range backward of a finite run left non-finite dL/dI or parameter "
                                  "gradients (a cell not written?)", where);
                    }
                    diff_cells(where, "backward step by step with carry: dL/dI", steps.gcur, whole.gcur, 1, 0, gT, CN, CN);
                    diff_cells(where, "backward in chunks with carry: dL/dI", chunks.gcur, whole.gcur, 1, 0, gT, CN, CN);
                    diff_cells(where, "backward in two blocks: dL/dI", blocks.gcur, whole.gcur, 1, 0, gT, CN, CN);
                    if (full) {
                        expect_pg(where, "step by step", &steps.pg, &whole.pg);
                        expect_pg(where, "chunks", &chunks.pg, &whole.pg);
                        expect_pg(where, "two blocks", &blocks.pg, &whole.pg);
                    }
                }
        qsnn_state_quant_free(ctx, &q);
    }
    qsnn_ctx_destroy(&ctx);
}

/* ---- 5. forward's return value ------------------------------------------------------------------- */

Test(neuron_conformance, forward_returns_the_spike_count) {
    qsnn_ctx *ctx = test_ctx(1);
    FOR_EACH_MODEL(ops) {
        const mcfg *m = model_cfg(ops->name);
        qsnn_state_quant q;
        memset(&q, 0, sizeof q);
        const qsnn_state_quant_cfg qc = {.bits = 4, .grid = QSNN_GRID_UNIFORM, .upper_limit = 0.2};
        cr_assert_eq(qsnn_state_quant_build(ctx, &qc, m->theta, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
        for (int v = 0; v < N_VARIANTS; v++) {
            if (!((m->resets >> variants[v].reset) & 1u)) continue;
            qsnn_neuron_params p = base_params(m);
            p.surrogate = variants[v].sid, p.reset = variants[v].reset;
            p.slope = variants[v].sid == QSNN_SURR_SOFT ? m->soft_slope : 2.0f;
            float cur[CT * CN], U[NS * CT * CN], S[CT * CN];
            fill(cur, CT * CN, m->in_lo, 1.5f * m->in_hi, 70u + (uint64_t)v);
            qsnn_neuron_io io = make_io(ops, variants[v].quant ? &q : NULL, CT, CN, 0, CN, cur, CN, U, S);
            const double ret = ops->forward(&p, &io);
            double sum = 0.0;
            for (int k = 0; k < CT * CN; k++) sum += S[k];
            const int soft = p.surrogate == QSNN_SURR_SOFT;
            if (!ops->spiking)
                cr_expect(ret == 0.0, "%s (%s): a readout returned %.9g, not 0", ops->name, surr_label(p.surrogate), ret);
            else if (soft) /* soft spikes are summed in float per step */
                cr_expect(fabs(ret - sum) <= 1e-5 * fmax(1.0, sum), "%s (soft, reset %s): returned %.9g, sum of S %.9g",
                          ops->name, qsnn_reset_name(p.reset), ret, sum);
            else {
                cr_expect(ret == sum, "%s (%s, reset %s%s): returned %.9g, sum of S %.9g", ops->name,
                          surr_label(p.surrogate), qsnn_reset_name(p.reset), variants[v].quant ? ", 4-bit" : "", ret,
                          sum);
                int binary = 1;
                for (int k = 0; k < CT * CN; k++) binary &= S[k] == 0.0f || S[k] == 1.0f;
                cr_expect(binary, "%s (%s): hard spikes are not all 0 or 1", ops->name, surr_label(p.surrogate));
            }
        }
        qsnn_state_quant_free(ctx, &q);
    }
    qsnn_ctx_destroy(&ctx);
}

/* ---- no writes outside the io's cells ------------------------------------------------------------ */

enum { GT = 7, GN = 5, GSTRIDE = GN + 3, GPLANE_GAP = 4, GTAIL = 16 };
#define GUARD_BITS 0x7fc0deadu /* a NaN pattern no model computes */

static float guard_value(void) {
    const uint32_t u = GUARD_BITS;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* buf holds planes × rows × n io cells at [s * plane + t * row + j] (plane or row 0: a single one)
 * inside guard cells. Guards must be intact, and io cells equal (bit for bit) the same run on a tight
 * layout, ref[s * rplane + t * rrow + j]: a read of a guard (or of a gap) would show there. */
static void check_guarded(const char *where, const char *what, const float *buf, size_t len, int planes, size_t plane,
                          int rows, size_t row, int n, const float *ref, size_t rplane, size_t rrow) {
    int outside = 0, wrong = 0;
    size_t first_out = 0, first_wrong = 0, first_ref = 0;
    for (size_t k = 0; k < len; k++) {
        size_t s = 0, r = k, t = 0, j;
        if (plane) s = k / plane, r = k % plane;
        j = r;
        if (row) t = r / row, j = r % row;
        const int inside = s < (size_t)planes && t < (size_t)rows && j < (size_t)n;
        if (!inside && bits_of(buf[k]) != GUARD_BITS && !outside++) first_out = k;
        if (inside && ref) {
            const size_t kr = s * rplane + t * rrow + j;
            if (bits_of(buf[k]) != bits_of(ref[kr]) && !wrong++) first_wrong = k, first_ref = kr;
        }
    }
    cr_expect(outside == 0, "%s: %s: %d cells outside the io written, first at offset %zu (%.9g)", where, what, outside,
              first_out, outside ? buf[first_out] : 0.0f);
    cr_expect(wrong == 0, "%s: %s: %d io cells differ from the tight-layout run, first at offset %zu: %.9g vs %.9g",
              where, what, wrong, first_wrong, wrong ? buf[first_wrong] : 0.0f, wrong ? ref[first_ref] : 0.0f);
}

Test(neuron_conformance, no_writes_outside_the_buffers) {
    const float G = guard_value();
    FOR_EACH_MODEL(ops) {
        const mcfg *m = model_cfg(ops->name);
        const int ns = ops->n_states;
        const size_t plane = (size_t)GT * GSTRIDE + GPLANE_GAP, iplane = GSTRIDE + GPLANE_GAP;
        const size_t ulen = ns * plane + GTAIL, ilen = ns * iplane + GTAIL, slen = (size_t)GT * GSTRIDE + GTAIL;
        const size_t clen = NS * GN + GTAIL;
        float *cur = malloc(slen * sizeof(float)), *U = malloc(ulen * sizeof(float)), *S = malloc(slen * sizeof(float));
        float *Ui = malloc(ilen * sizeof(float)), *Si = malloc(slen * sizeof(float)), *gS = malloc(slen * sizeof(float));
        float *gU = malloc(slen * sizeof(float)), *gcur = malloc(slen * sizeof(float)), *carry = malloc(clen * sizeof(float));
        float *Ucopy = malloc(ulen * sizeof(float)), *Scopy = malloc(slen * sizeof(float));
        cr_assert(cur && U && S && Ui && Si && gS && gU && gcur && carry && Ucopy && Scopy);
        /* the reference: tight layout (stride n, plane T·n) */
        float rcur[GT * GN], rgS[GT * GN], rgU[GT * GN], rU[NS * GT * GN], rS[GT * GN], rg[2][GT * GN];
        for (int soft = 0; soft < 2; soft++)
            for (int r = 0; r < 3; r++) {
                qsnn_neuron_params p = base_params(m);
                p.reset = (qsnn_reset)r, p.reset_grad = soft;
                if (soft) p.surrogate = QSNN_SURR_SOFT, p.slope = m->soft_slope;
                char where[96];
                snprintf(where, sizeof where, "%s (%s, reset %s, float states)", ops->name, soft ? "soft" : "arctan",
                         qsnn_reset_name(p.reset));
                fill(rcur, GT * GN, m->in_lo, 1.5f * m->in_hi, 90u);
                fill(rgS, GT * GN, -1.0f, 1.0f, 190u);
                fill(rgU, GT * GN, -1.0f, 1.0f, 290u);
                qsnn_neuron_io rio = make_io(ops, NULL, GT, GN, 0, GN, rcur, GN, rU, rS);
                ops->forward(&p, &rio);
                rio.gS = rgS, rio.gU = rgU;
                for (int st = 0; st < 2; st++) {
                    rio.gcur = rg[st], rio.gi_stride = st ? 0 : GN;
                    ops->backward(&p, &rio, NULL);
                }
                /* the guarded layout: row stride n + 3, gaps between planes, a tail after each buffer */
                for (size_t k = 0; k < slen; k++) cur[k] = gS[k] = gU[k] = G;
                for (int t = 0; t < GT; t++) /* io cells only; the gaps keep the guard */
                    for (int j = 0; j < GN; j++) {
                        const size_t k = (size_t)t * GSTRIDE + j;
                        cur[k] = rcur[t * GN + j], gS[k] = rgS[t * GN + j], gU[k] = rgU[t * GN + j];
                    }
                for (int by_step = 0; by_step < 2; by_step++) {
                    const char *mode = by_step ? "kept, step by step" : "kept";
                    for (size_t k = 0; k < ulen; k++) U[k] = G;
                    for (size_t k = 0; k < slen; k++) S[k] = G;
                    for (int i = 0; i < (by_step ? GT : 1); i++) {
                        qsnn_neuron_io io = {.T = GT, .t0 = by_step ? i : 0, .t1 = by_step ? i + 1 : GT, .n = GN,
                                             .cur = cur, .i_stride = GSTRIDE, .U = U, .u_stride = GSTRIDE,
                                             .plane = plane, .S = S, .stride = GSTRIDE};
                        ops->forward(&p, &io);
                    }
                    char what[64];
                    snprintf(what, sizeof what, "forward (%s): states", mode);
                    check_guarded(where, what, U, ulen, ns, plane, GT, GSTRIDE, GN, rU, (size_t)GT * GN, GN);
                    snprintf(what, sizeof what, "forward (%s): spikes", mode);
                    check_guarded(where, what, S, slen, 1, 0, GT, GSTRIDE, GN, rS, 0, GN);
                }
                { /* inference: one row per state, holding step T-1 at the end */
                    for (size_t k = 0; k < ilen; k++) Ui[k] = G;
                    for (size_t k = 0; k < slen; k++) Si[k] = G;
                    qsnn_neuron_io io = {.T = GT, .t0 = 0, .t1 = GT, .n = GN, .cur = cur, .i_stride = GSTRIDE, .U = Ui,
                                         .u_stride = 0, .plane = iplane, .S = Si, .stride = GSTRIDE};
                    ops->forward(&p, &io);
                    check_guarded(where, "forward (inference): states", Ui, ilen, ns, iplane, 1, 0, GN,
                                  rU + (size_t)(GT - 1) * GN, (size_t)GT * GN, 0);
                    check_guarded(where, "forward (inference): spikes", Si, slen, 1, 0, GT, GSTRIDE, GN, rS, 0, GN);
                }
                /* backward on the kept run (U, S of the last kept forward): writes only dL/dI and the carry */
                memcpy(Ucopy, U, ulen * sizeof(float));
                memcpy(Scopy, S, slen * sizeof(float));
                for (int st = 0; st < 2; st++) {
                    for (size_t k = 0; k < slen; k++) gcur[k] = G;
                    for (size_t k = 0; k < clen; k++) carry[k] = G;
                    for (int i = GT - 1; i >= 0; i--) {
                        qsnn_neuron_io io = {.T = GT, .t0 = i, .t1 = i + 1, .n = GN, .cur = cur, .i_stride = GSTRIDE,
                                             .U = U, .u_stride = GSTRIDE, .plane = plane, .S = S, .stride = GSTRIDE,
                                             .gS = gS, .gU = gU, .gcur = gcur, .gi_stride = st ? 0 : GSTRIDE,
                                             .carry = carry};
                        ops->backward(&p, &io, NULL);
                    }
                    check_guarded(where, st ? "backward: summed dL/dI" : "backward: dL/dI", gcur, slen, 1, 0,
                                  st ? 1 : GT, st ? 0 : GSTRIDE, GN, rg[st], 0, GN);
                    check_guarded(where, "backward: carry", carry, clen, ns, GN, 1, 0, GN, NULL, 0, 0);
                    cr_expect(memcmp(Ucopy, U, ulen * sizeof(float)) == 0 && memcmp(Scopy, S, slen * sizeof(float)) == 0,
                              "%s: backward modified U or S", where);
                }
            }
        free(cur), free(U), free(S), free(Ui), free(Si), free(gS), free(gU), free(gcur), free(carry), free(Ucopy),
            free(Scopy);
    }
}

/* ---- 6. per-neuron parameters (io.pn, io.qgain, io.gpn) ------------------------------------------- */

/* Per-element β, θ, α around the scalars, inside the valid ranges: β_j <= 1.15 β, α_j in [0.95 α, 1.05 α], so
 * alpha's α_j > β_j holds with its table values (α 0.9, β 0.6). */
static void pn_spread(const qsnn_neuron_params *p, int n, float *pb, float *pt, float *pa) {
    for (int j = 0; j < n; j++) {
        const float f = (float)j / (float)n;
        pb[j] = p->beta * (0.85f + 0.3f * f);
        pt[j] = p->theta * (0.8f + 0.4f * f);
        pa[j] = p->alpha * (0.95f + 0.1f * f);
    }
}

static void set_pn(qsnn_neuron_io *io, float (*pn)[CN], const float *gain, float (*gpn)[CN]) {
    for (int k = 0; k < QSNN_PN_COUNT; k++) {
        io->pn[k] = pn ? pn[k] : NULL;
        io->gpn[k] = gpn ? gpn[k] : NULL;
    }
    io->qgain = gain;
}

/* A per-element gradient, accumulated in float by the model, against a double sum: float rounding only. */
static int pn_grad_close(double a, double b) {
    return fabs(a - b) <= 1e-4 * fabs(b) + 1e-5 || (isnan(a) && isnan(b));
}

/* L = Σ w1 S + w2 U (state 0) with per-neuron arrays (FT × FN buffers, as fd_loss). */
static double fd_loss_pn(const qsnn_neuron_ops *ops, const qsnn_neuron_params *p, const float *cur, size_t is,
                         const float *w1, const float *w2, float (*pn)[FN]) {
    float U[NS * FT * FN], S[FT * FN];
    qsnn_neuron_io io = make_io(ops, NULL, FT, FN, 0, FN, cur, is, U, S);
    for (int k = 0; k < QSNN_PN_COUNT; k++) io.pn[k] = pn[k];
    ops->forward(p, &io);
    double L = 0.0;
    for (int k = 0; k < FT * FN; k++) L += (double)w1[k] * S[k] + (double)w2[k] * U[k];
    return L;
}

/* The quantizers the per-neuron checks run with: none, a uniform grid with ste_clip, an lsq grid. */
enum { PQ_NONE, PQ_UNIFORM_CLIP, PQ_LSQ, PQ_COUNT };
static const char *const pq_name[PQ_COUNT] = {"float states", "4-bit uniform states, ste_clip", "4-bit lsq states"};

static void build_pq(qsnn_ctx *ctx, float theta, qsnn_state_quant *qu, qsnn_state_quant *ql) {
    memset(qu, 0, sizeof *qu);
    memset(ql, 0, sizeof *ql);
    const qsnn_state_quant_cfg cu = {.bits = 4, .grid = QSNN_GRID_UNIFORM, .upper_limit = 0.2, .ste_clip = 1};
    const qsnn_state_quant_cfg cl = {.bits = 4, .grid = QSNN_GRID_LSQ, .upper_limit = 0.2};
    cr_assert_eq(qsnn_state_quant_build(ctx, &cu, theta, qu), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(qsnn_state_quant_build(ctx, &cl, theta, ql), QSNN_OK, "%s", qsnn_last_error(ctx));
}

/* a. Arrays equal to the scalars and gains of 1: the scalar call bit for bit; the per-element gradients
 *    sum to the scalar call's parameter gradients and replace them in pg. */
Test(neuron_conformance, per_neuron_arrays_equal_to_the_scalars_reproduce_the_scalar_call) {
    qsnn_ctx *ctx = test_ctx(1);
    FOR_EACH_MODEL(ops) {
        const mcfg *m = model_cfg(ops->name);
        const int ns = ops->n_states;
        qsnn_state_quant qu, ql;
        build_pq(ctx, m->theta, &qu, &ql);
        float cur[CT * CN], w1[CT * CN], w2[CT * CN];
        fill(w1, CT * CN, -1.0f, 1.0f, 505u);
        fill(w2, CT * CN, -1.0f, 1.0f, 606u);
        for (int v = 0; v < N_VARIANTS; v++)
            for (int st = 0; st < 2; st++)
                for (int qi = 0; qi < PQ_COUNT; qi++) {
                    if (!((m->resets >> variants[v].reset) & 1u)) continue;
                    qsnn_neuron_params p = variant_params(m, v);
                    const qsnn_state_quant *q = qi == PQ_NONE ? NULL : qi == PQ_LSQ ? &ql : &qu;
                    const size_t is = st ? 0 : CN;
                    const int gT = st ? 1 : CT;
                    fill(cur, CT * CN, m->in_lo, 1.5f * m->in_hi, 400u + (uint64_t)v);
                    char where[160];
                    snprintf(where, sizeof where, "%s (%s, reset %s%s, %s, %s input, per-neuron = scalars)", ops->name,
                             surr_label(p.surrogate), qsnn_reset_name(p.reset), p.reset_grad ? ", reset_grad" : "",
                             pq_name[qi], st ? "static" : "per-step");
                    static outs sc, pe;
                    outs_init(&sc), outs_init(&pe);
                    float pn[QSNN_PN_COUNT][CN], gain[CN], gpn[QSNN_PN_COUNT][CN];
                    for (int j = 0; j < CN; j++) {
                        pn[QSNN_PN_BETA][j] = p.beta, pn[QSNN_PN_THETA][j] = p.theta, pn[QSNN_PN_ALPHA][j] = p.alpha;
                        gain[j] = 1.0f;
                        for (int k = 0; k < QSNN_PN_COUNT; k++) gpn[k][j] = 0.0f;
                    }
                    for (int pern = 0; pern < 2; pern++) {
                        outs *o = pern ? &pe : &sc;
                        qsnn_neuron_io io = make_io(ops, q, CT, CN, 0, CN, cur, is, o->U, o->S);
                        if (pern) set_pn(&io, pn, gain, gpn);
                        o->count = ops->forward(&p, &io);
                        io.gS = w1, io.gU = w2, io.gcur = o->gcur, io.gi_stride = is;
                        ops->backward(&p, &io, &o->pg);
                    }
                    const size_t plane = (size_t)CT * CN;
                    diff_cells(where, "forward: states", pe.U, sc.U, ns, plane, CT, CN, CN);
                    diff_cells(where, "forward: spikes", pe.S, sc.S, 1, 0, CT, CN, CN);
                    diff_cells(where, "backward: dL/dI", pe.gcur, sc.gcur, 1, 0, gT, CN, CN);
                    cr_expect(pe.count == sc.count, "%s: spike count %.9g, scalar call %.9g", where, pe.count, sc.count);
                    cr_expect(pg_close(pe.pg.qp[0], sc.pg.qp[0]), "%s: lsq step gradient %.17g, scalar call %.17g", where,
                              pe.pg.qp[0], sc.pg.qp[0]);
                    for (int i = 0; i < 3; i++) {
                        double sum = 0.0, mag = 0.0;
                        for (int j = 0; j < CN; j++) sum += gpn[i][j], mag += fabs(gpn[i][j]);
                        cr_expect(pgrad_field(&pe.pg, i) == 0.0, "%s: d%s went to pg (%g) although gpn was given", where,
                                  param_name[i], pgrad_field(&pe.pg, i));
                        if (!(ops->params & param_flag[i])) {
                            cr_expect(mag == 0.0, "%s: %s is not declared but got per-element gradients", where,
                                      param_name[i]);
                            continue;
                        }
                        const double ref = pgrad_field(&sc.pg, i);
                        cr_expect(fabs(sum - ref) <= 1e-5 * (mag + fabs(ref)) + 1e-6 || (isnan(sum) && isnan(ref)),
                                  "%s: per-element d%s sum to %.9g, scalar call %.9g", where, param_name[i], sum, ref);
                    }
                }
        qsnn_state_quant_free(ctx, &qu);
        qsnn_state_quant_free(ctx, &ql);
    }
    qsnn_ctx_destroy(&ctx);
}

/* b. Different values per element: the per-element adjoint (gpn) and dL/dI against central differences of the
 *    smooth forward. */
Test(neuron_conformance, per_neuron_gradients_match_finite_differences) {
    FOR_EACH_MODEL(ops) {
        const mcfg *m = model_cfg(ops->name);
        for (int r = 0; r < 3; r++)
            for (int st = 0; st < 2; st++) {
                if (!((m->resets >> r) & 1u)) continue;
                qsnn_neuron_params p = base_params(m);
                p.surrogate = QSNN_SURR_SOFT, p.slope = m->soft_slope, p.reset = (qsnn_reset)r, p.reset_grad = 1;
                const size_t is = st ? 0 : FN;
                const int ncur = st ? FN : FT * FN;
                float cur[FT * FN], w1[FT * FN], w2[FT * FN], U[NS * FT * FN], S[FT * FN], gcur[FT * FN];
                fill(cur, ncur, m->in_lo, m->in_hi, 811u + 7u * r + 3u * st);
                fill(w1, FT * FN, -1.0f, 1.0f, 901u + r);
                fill(w2, FT * FN, -1.0f, 1.0f, 902u + r);
                float pn[QSNN_PN_COUNT][FN], gpn[QSNN_PN_COUNT][FN];
                pn_spread(&p, FN, pn[QSNN_PN_BETA], pn[QSNN_PN_THETA], pn[QSNN_PN_ALPHA]);
                memset(gpn, 0, sizeof gpn);
                char where[128];
                snprintf(where, sizeof where, "%s (soft, reset %s, reset_grad, %s input, per-neuron values)", ops->name,
                         qsnn_reset_name(p.reset), st ? "static" : "per-step");
                qsnn_neuron_io io = make_io(ops, NULL, FT, FN, 0, FN, cur, is, U, S);
                for (int k = 0; k < QSNN_PN_COUNT; k++) io.pn[k] = pn[k], io.gpn[k] = gpn[k];
                ops->forward(&p, &io);
                io.gS = w1, io.gU = w2, io.gcur = gcur, io.gi_stride = is;
                qsnn_neuron_pgrad pg = {0};
                ops->backward(&p, &io, &pg);

                int bad = 0;
                for (int k = 0; k < ncur; k++) {
                    float c2[FT * FN];
                    memcpy(c2, cur, sizeof c2);
                    const float h = m->fd_rel * fmaxf(fabsf(cur[k]), fabsf(m->in_hi));
                    const float xp = cur[k] + h, xm = cur[k] - h;
                    c2[k] = xp;
                    const double Lp = fd_loss_pn(ops, &p, c2, is, w1, w2, pn);
                    c2[k] = xm;
                    const double Lm = fd_loss_pn(ops, &p, c2, is, w1, w2, pn);
                    const double fd = (Lp - Lm) / ((double)xp - (double)xm);
                    if (!grad_ok(gcur[k], fd) && bad++ < 3)
                        cr_expect(0, "%s: dL/dI at step %d neuron %d: adjoint %.7g, central difference %.7g", where,
                                  st ? -1 : k / FN, k % FN, gcur[k], fd);
                }
                cr_expect(bad == 0, "%s: %d of %d input gradients off", where, bad, ncur);

                for (int i = 0; i < 3; i++) {
                    cr_expect(pgrad_field(&pg, i) == 0.0, "%s: d%s went to pg (%g) although gpn was given", where,
                              param_name[i], pgrad_field(&pg, i));
                    for (int j = 0; j < FN; j++) {
                        if (!(ops->params & param_flag[i])) {
                            cr_expect(gpn[i][j] == 0.0f, "%s: %s is not declared but element %d got gradient %g", where,
                                      param_name[i], j, gpn[i][j]);
                            continue;
                        }
                        /* Richardson: 4 D(h/2) - D(h) over 3 cancels the h² term, which one element's parameter
                         * shows strongly (alpha's U = E + N is a near-cancelling difference) */
                        float p2[QSNN_PN_COUNT][FN];
                        memcpy(p2, pn, sizeof p2);
                        const float v = pn[i][j];
                        double d[2];
                        for (int hi = 0; hi < 2; hi++) {
                            const float h = m->fd_rel * fabsf(v) * (hi ? 0.5f : 1.0f);
                            const float xp = v + h, xm = v - h;
                            p2[i][j] = xp;
                            const double Lp = fd_loss_pn(ops, &p, cur, is, w1, w2, p2);
                            p2[i][j] = xm;
                            const double Lm = fd_loss_pn(ops, &p, cur, is, w1, w2, p2);
                            d[hi] = (Lp - Lm) / ((double)xp - (double)xm);
                        }
                        const double f = (4.0 * d[1] - d[0]) / 3.0;
                        cr_expect(grad_ok(gpn[i][j], f), "%s: dL/d%s of element %d (%g): adjoint %.7g, central difference "
                                  "%.7g", where, param_name[i], j, v, gpn[i][j], f);
                    }
                }
            }
    }
}

/* c. Element j of a per-neuron call is a one-neuron scalar call with element j's β, θ, α (same grid): states,
 *    spikes and dL/dI bit for bit, its parameter gradients up to float accumulation. */
Test(neuron_conformance, per_neuron_elements_equal_one_neuron_scalar_calls) {
    qsnn_ctx *ctx = test_ctx(1);
    FOR_EACH_MODEL(ops) {
        const mcfg *m = model_cfg(ops->name);
        const int ns = ops->n_states;
        qsnn_state_quant qu, ql;
        build_pq(ctx, m->theta, &qu, &ql);
        float cur[CT * CN], w1[CT * CN], w2[CT * CN];
        fill(w1, CT * CN, -1.0f, 1.0f, 705u);
        fill(w2, CT * CN, -1.0f, 1.0f, 706u);
        for (int v = 0; v < N_VARIANTS; v++)
            for (int st = 0; st < 2; st++)
                for (int qi = 0; qi < PQ_COUNT; qi++) {
                    if (!((m->resets >> variants[v].reset) & 1u)) continue;
                    qsnn_neuron_params p = variant_params(m, v);
                    const qsnn_state_quant *q = qi == PQ_NONE ? NULL : qi == PQ_LSQ ? &ql : &qu;
                    const size_t is = st ? 0 : CN;
                    fill(cur, CT * CN, m->in_lo, 1.5f * m->in_hi, 450u + (uint64_t)v);
                    char where[160];
                    snprintf(where, sizeof where, "%s (%s, reset %s%s, %s, %s input, per-neuron values)", ops->name,
                             surr_label(p.surrogate), qsnn_reset_name(p.reset), p.reset_grad ? ", reset_grad" : "",
                             pq_name[qi], st ? "static" : "per-step");
                    static outs pe;
                    outs_init(&pe);
                    float pn[QSNN_PN_COUNT][CN], gpn[QSNN_PN_COUNT][CN];
                    pn_spread(&p, CN, pn[QSNN_PN_BETA], pn[QSNN_PN_THETA], pn[QSNN_PN_ALPHA]);
                    memset(gpn, 0, sizeof gpn);
                    qsnn_neuron_io io = make_io(ops, q, CT, CN, 0, CN, cur, is, pe.U, pe.S);
                    set_pn(&io, pn, NULL, gpn);
                    ops->forward(&p, &io);
                    io.gS = w1, io.gU = w2, io.gcur = pe.gcur, io.gi_stride = is;
                    ops->backward(&p, &io, &pe.pg);
                    double scale = 0.0, scale_mag = 0.0;
                    for (int j = 0; j < CN; j++) {
                        float c1[CT], a1[CT], b1[CT], U1[NS * CT], S1[CT], g1[CT];
                        for (int t = 0; t < CT; t++) {
                            c1[t] = cur[(size_t)t * is + j];
                            a1[t] = w1[t * CN + j], b1[t] = w2[t * CN + j];
                            g1[t] = NAN;
                        }
                        qsnn_neuron_params p1 = p;
                        p1.beta = pn[QSNN_PN_BETA][j], p1.theta = pn[QSNN_PN_THETA][j], p1.alpha = pn[QSNN_PN_ALPHA][j];
                        qsnn_neuron_io i1 = make_io(ops, q, CT, 1, 0, 1, c1, st ? 0 : 1, U1, S1);
                        ops->forward(&p1, &i1);
                        i1.gS = a1, i1.gU = b1, i1.gcur = g1, i1.gi_stride = st ? 0 : 1;
                        qsnn_neuron_pgrad pg1 = {0};
                        ops->backward(&p1, &i1, &pg1);
                        char w2s[240];
                        snprintf(w2s, sizeof w2s, "%s, element %d vs its one-neuron scalar call", where, j);
                        int bad = 0;
                        for (int s = 0; s < ns; s++)
                            for (int t = 0; t < CT; t++) {
                                const float a = pe.U[(size_t)s * CT * CN + (size_t)t * CN + j], b = U1[s * CT + t];
                                if (bits_of(a) != bits_of(b) && bad++ < 2)
                                    cr_expect(0, "%s: state %d step %d: %.9g vs %.9g", w2s, s, t, a, b);
                            }
                        for (int t = 0; t < CT; t++) {
                            const float a = pe.S[t * CN + j], b = S1[t];
                            if (bits_of(a) != bits_of(b) && bad++ < 4) cr_expect(0, "%s: spike step %d: %g vs %g", w2s, t, a, b);
                        }
                        for (int t = 0; t < (st ? 1 : CT); t++) {
                            const float a = pe.gcur[t * CN + j], b = g1[t];
                            if (bits_of(a) != bits_of(b) && bad++ < 6)
                                cr_expect(0, "%s: dL/dI step %d: %.9g vs %.9g", w2s, t, a, b);
                        }
                        cr_expect(bad == 0, "%s: %d cells differ", w2s, bad);
                        for (int i = 0; i < 3; i++)
                            if (ops->params & param_flag[i])
                                cr_expect(pn_grad_close(gpn[i][j], pgrad_field(&pg1, i)),
                                          "%s: d%s %.9g, scalar call %.9g", w2s, param_name[i], gpn[i][j],
                                          pgrad_field(&pg1, i));
                        scale += pg1.qp[0], scale_mag += fabs(pg1.qp[0]);
                    }
                    cr_expect(fabs(pe.pg.qp[0] - scale) <= 1e-9 * scale_mag + 1e-300,
                              "%s: lsq step gradient %.17g, sum of one-neuron calls %.17g", where, pe.pg.qp[0], scale);
                }
        qsnn_state_quant_free(ctx, &qu);
        qsnn_state_quant_free(ctx, &ql);
    }
    qsnn_ctx_destroy(&ctx);
}

/* d. Grid gains: every quantized state of element j is g_j times a level of the layer's grid (the gain acts,
 *    and only as a scale), with and without per-neuron values. */
Test(neuron_conformance, per_neuron_grid_gains_scale_the_levels) {
    qsnn_ctx *ctx = test_ctx(1);
    static const float gains[CN] = {0.5f, 2.0f, 1.37f, 1.0f, 0.73f, 4.0f, 1.9f};
    static const qsnn_grid grids[] = {QSNN_GRID_UNIFORM, QSNN_GRID_THRESHOLD_CENTERED};
    FOR_EACH_MODEL(ops) {
        if (!ops->quantized) continue;
        const mcfg *m = model_cfg(ops->name);
        for (size_t gi = 0; gi < sizeof grids / sizeof *grids; gi++) {
            qsnn_state_quant q;
            memset(&q, 0, sizeof q);
            const qsnn_state_quant_cfg qc = {.bits = 4, .grid = grids[gi], .upper_limit = 0.2};
            cr_assert_eq(qsnn_state_quant_build(ctx, &qc, m->theta, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
            for (int v = 0; v < N_VARIANTS; v++)
                for (int spread = 0; spread < 2; spread++) {
                    if (!((m->resets >> variants[v].reset) & 1u)) continue;
                    qsnn_neuron_params p = variant_params(m, v);
                    float cur[CT * CN], U[NS * CT * CN], S[CT * CN], Ug[NS * CT * CN], Sg[CT * CN];
                    float pn[QSNN_PN_COUNT][CN];
                    pn_spread(&p, CN, pn[QSNN_PN_BETA], pn[QSNN_PN_THETA], pn[QSNN_PN_ALPHA]);
                    for (int j = 0; j < CN; j++) pn[QSNN_PN_THETA][j] *= gains[j]; /* θ_j follows its grid */
                    /* inputs scaled by the gain too, so every neuron moves across its own grid */
                    fill(cur, CT * CN, m->in_lo, 1.5f * m->in_hi, 470u + (uint64_t)v);
                    for (int t = 0; t < CT; t++)
                        for (int j = 0; j < CN; j++) cur[t * CN + j] *= gains[j];
                    char where[160];
                    snprintf(where, sizeof where, "%s (%s, reset %s, 4-bit %s grid, gains%s)", ops->name,
                             surr_label(p.surrogate), qsnn_reset_name(p.reset), qsnn_grid_name(grids[gi]),
                             spread ? ", per-neuron values" : "");
                    qsnn_neuron_io io = make_io(ops, &q, CT, CN, 0, CN, cur, CN, Ug, Sg);
                    set_pn(&io, spread ? pn : NULL, gains, NULL);
                    ops->forward(&p, &io);
                    io = make_io(ops, &q, CT, CN, 0, CN, cur, CN, U, S); /* the same without gains */
                    set_pn(&io, spread ? pn : NULL, NULL, NULL);
                    ops->forward(&p, &io);
                    for (int s = 0; s < ops->n_states; s++) {
                        if (!((ops->quantized >> s) & 1u)) continue;
                        int bad = 0;
                        for (int t = 0; t < CT; t++)
                            for (int j = 0; j < CN; j++) {
                                const float x = Ug[(size_t)s * CT * CN + (size_t)t * CN + j];
                                int found = 0;
                                for (int l = 0; l < q.n && !found; l++) found = bits_of(gains[j] * q.levels[l]) == bits_of(x);
                                if (!found && bad++ < 3)
                                    cr_expect(0, "%s: state %d (%s) at step %d element %d (gain %g) is %.9g, not gain × "
                                              "a level", where, s, ops->state_names[s], t, j, gains[j], x);
                            }
                        cr_expect(bad == 0, "%s: state %d: %d values off the scaled grid", where, s, bad);
                    }
                    /* the gain-1 element equals the ungained run */
                    for (int s = 0; s < ops->n_states; s++)
                        for (int t = 0; t < CT; t++) {
                            const size_t k = (size_t)s * CT * CN + (size_t)t * CN + 3;
                            cr_expect(bits_of(Ug[k]) == bits_of(U[k]), "%s: gain-1 element: state %d step %d %.9g, "
                                      "ungained run %.9g", where, s, t, Ug[k], U[k]);
                        }
                    /* backward with gains and ste_clip stays finite and writes every dL/dI */
                    float gS[CT * CN], gcur[CT * CN], gpn[QSNN_PN_COUNT][CN];
                    fill(gS, CT * CN, -1.0f, 1.0f, 480u);
                    memset(gpn, 0, sizeof gpn);
                    for (int k = 0; k < CT * CN; k++) gcur[k] = NAN;
                    io = make_io(ops, &q, CT, CN, 0, CN, cur, CN, Ug, Sg);
                    set_pn(&io, spread ? pn : NULL, gains, spread ? gpn : NULL);
                    io.gS = gS, io.gcur = gcur, io.gi_stride = CN;
                    qsnn_neuron_pgrad pg = {0};
                    ops->backward(&p, &io, &pg);
                    int finite = isfinite(pg.qp[0]) != 0;
                    for (int k = 0; k < CT * CN; k++) finite &= isfinite(gcur[k]) != 0;
                    cr_expect(finite, "%s: backward with gains left non-finite dL/dI", where);
                }
            qsnn_state_quant_free(ctx, &q);
        }
    }
    qsnn_ctx_destroy(&ctx);
}

/* e. Power-of-two gains g_j. The grid built for g_j θ has exactly g_j times the layer's levels (and step), so
 *    g_j·Q(x/g_j) is that grid's Q(x), its clip test the same, and an lsq term g_j·dQ/ds(x/g_j) is g_j times that
 *    grid's. Element j of a gained call is therefore a one-neuron scalar call with element j's β, θ, α on the grid
 *    built for g_j θ: forward and backward bit for bit, per-element gradients up to float accumulation, the lsq step
 *    gradient as Σ_j g_j·(the one-neuron call's). Holds for any model and surrogate.
 *    Scaled mode (mcfg.linear models): θ_j = g_j θ and inputs g_j I as well, hard spikes with a straight-through
 *    surrogate (both scale-free): the neuron then runs g_j times the layer's dynamics on its own grid, as the
 *    engine's gains intend (θ_j/θ_ref). */
Test(neuron_conformance, per_neuron_power_of_two_gains_equal_one_neuron_calls_on_scaled_grids) {
    qsnn_ctx *ctx = test_ctx(1);
    static const float gains[CN] = {0.5f, 2.0f, 1.0f, 4.0f, 0.25f, 2.0f, 0.5f};
    static const qsnn_state_quant_cfg qcs[] = {
        /* wide ranges: alpha's E and N saturate on [-θ, 1.2θ] before U = E + N reaches θ */
        {.bits = 4, .grid = QSNN_GRID_UNIFORM, .lower_limit = 1.0, .upper_limit = 1.0, .ste_clip = 1},
        {.bits = 4, .grid = QSNN_GRID_LSQ, .upper_limit = 1.0, .ste_clip = 1},
        {.bits = 5, .grid = QSNN_GRID_LSQ, .upper_limit = 1.0},
        /* U_min = -0.2 θ: izhikevich's u (about -13 at θ = 30) lies below some elements' ranges, not others' */
        {.bits = 4, .grid = QSNN_GRID_UNIFORM, .lower_limit = -0.8, .upper_limit = 0.2, .ste_clip = 1},
    };
    int checked = 0;
    FOR_EACH_MODEL(ops) {
        const mcfg *m = model_cfg(ops->name);
        if (!ops->quantized) continue;
        const int ns = ops->n_states;
        int mode_spikes[2] = {0, 0};
        for (size_t qi = 0; qi < sizeof qcs / sizeof *qcs; qi++) {
            qsnn_state_quant q, qg[CN];
            memset(&q, 0, sizeof q);
            memset(qg, 0, sizeof qg);
            cr_assert_eq(qsnn_state_quant_build(ctx, &qcs[qi], m->theta, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
            for (int j = 0; j < CN; j++)
                cr_assert_eq(qsnn_state_quant_build(ctx, &qcs[qi], gains[j] * m->theta, &qg[j]), QSNN_OK, "%s",
                             qsnn_last_error(ctx));
            for (int scaled = 0; scaled < 1 + m->linear; scaled++)
                for (int v = 0; v < N_VARIANTS; v++)
                    for (int st = 0; st < 2; st++) {
                        if (!((m->resets >> variants[v].reset) & 1u)) continue;
                        qsnn_neuron_params p = variant_params(m, v);
                        if (scaled) p.surrogate = QSNN_SURR_STRAIGHT_THROUGH, p.slope = 1.0f, p.adapt_strength = 0.0f;
                        const size_t is = st ? 0 : CN;
                        float cur[CT * CN], w1[CT * CN], w2[CT * CN];
                        fill(cur, CT * CN, m->in_lo, 1.5f * m->in_hi, 990u + 3u * (uint64_t)v + (uint64_t)st);
                        fill(w1, CT * CN, -1.0f, 1.0f, 991u);
                        fill(w2, CT * CN, -1.0f, 1.0f, 992u);
                        float pn[QSNN_PN_COUNT][CN], gpn[QSNN_PN_COUNT][CN];
                        pn_spread(&p, CN, pn[QSNN_PN_BETA], pn[QSNN_PN_THETA], pn[QSNN_PN_ALPHA]);
                        if (scaled) {
                            for (int t = 0; t < CT; t++)
                                for (int j = 0; j < CN; j++) cur[t * CN + j] *= gains[j];
                            for (int j = 0; j < CN; j++) pn[QSNN_PN_THETA][j] = gains[j] * p.theta;
                        }
                        memset(gpn, 0, sizeof gpn);
                        char where[200];
                        snprintf(where, sizeof where, "%s (%s, reset %s%s, 4-bit %s%s, %s input, power-of-two gains%s)",
                                 ops->name, surr_label(p.surrogate), qsnn_reset_name(p.reset),
                                 p.reset_grad ? ", reset_grad" : "", qsnn_grid_name(qcs[qi].grid),
                                 qcs[qi].ste_clip ? " ste_clip" : "", st ? "static" : "per-step",
                                 scaled ? ", θ and inputs scaled" : "");
                        static outs pe;
                        outs_init(&pe);
                        qsnn_neuron_io io = make_io(ops, &q, CT, CN, 0, CN, cur, is, pe.U, pe.S);
                        set_pn(&io, pn, gains, gpn);
                        ops->forward(&p, &io);
                        io.gS = w1, io.gU = w2, io.gcur = pe.gcur, io.gi_stride = is;
                        ops->backward(&p, &io, &pe.pg);
                        double scale = 0.0, scale_mag = 0.0;
                        for (int k = 0; k < CT * CN; k++) mode_spikes[scaled] += pe.S[k] != 0.0f;
                        for (int j = 0; j < CN; j++) {
                            float c1[CT], a1[CT], b1[CT], U1[NS * CT], S1[CT], g1[CT];
                            for (int t = 0; t < CT; t++) {
                                c1[t] = cur[(size_t)t * is + j];
                                a1[t] = w1[t * CN + j], b1[t] = w2[t * CN + j];
                                g1[t] = NAN;
                            }
                            qsnn_neuron_params p1 = p;
                            p1.beta = pn[QSNN_PN_BETA][j], p1.theta = pn[QSNN_PN_THETA][j];
                            p1.alpha = pn[QSNN_PN_ALPHA][j];
                            qsnn_neuron_io i1 = make_io(ops, &qg[j], CT, 1, 0, 1, c1, st ? 0 : 1, U1, S1);
                            ops->forward(&p1, &i1);
                            i1.gS = a1, i1.gU = b1, i1.gcur = g1, i1.gi_stride = st ? 0 : 1;
                            qsnn_neuron_pgrad pg1 = {0};
                            ops->backward(&p1, &i1, &pg1);
                            char w2s[320];
                            snprintf(w2s, sizeof w2s, "%s, element %d (gain %g) vs a one-neuron call on the scaled grid",
                                     where, j, gains[j]);
                            int bad = 0;
                            for (int s = 0; s < ns; s++)
                                for (int t = 0; t < CT; t++) {
                                    const float a = pe.U[(size_t)s * CT * CN + (size_t)t * CN + j], b = U1[s * CT + t];
                                    if (bits_of(a) != bits_of(b) && bad++ < 2)
                                        cr_expect(0, "%s: state %d step %d: %.9g vs %.9g", w2s, s, t, a, b);
                                }
                            for (int t = 0; t < CT; t++) {
                                const float a = pe.S[t * CN + j], b = S1[t];
                                if (bits_of(a) != bits_of(b) && bad++ < 4)
                                    cr_expect(0, "%s: spike step %d: %g vs %g", w2s, t, a, b);
                            }
                            for (int t = 0; t < (st ? 1 : CT); t++) {
                                const float a = pe.gcur[t * CN + j], b = g1[t];
                                if (bits_of(a) != bits_of(b) && bad++ < 6)
                                    cr_expect(0, "%s: dL/dI step %d: %.9g vs %.9g", w2s, t, a, b);
                            }
                            cr_expect(bad == 0, "%s: %d cells differ", w2s, bad);
                            for (int i = 0; i < 3; i++)
                                if (ops->params & param_flag[i])
                                    cr_expect(pn_grad_close(gpn[i][j], pgrad_field(&pg1, i)),
                                              "%s: d%s %.9g, scalar call %.9g", w2s, param_name[i], gpn[i][j],
                                              pgrad_field(&pg1, i));
                            scale += (double)gains[j] * pg1.qp[0], scale_mag += fabs((double)gains[j] * pg1.qp[0]);
                        }
                        if (qcs[qi].grid == QSNN_GRID_LSQ)
                            cr_expect(scale_mag > 0.0 && fabs(pe.pg.qp[0] - scale) <= 1e-9 * scale_mag,
                                      "%s: lsq step gradient %.17g, Σ gain × one-neuron calls' %.17g", where,
                                      pe.pg.qp[0], scale);
                        checked++;
                    }
            for (int j = 0; j < CN; j++) qsnn_state_quant_free(ctx, &qg[j]);
            qsnn_state_quant_free(ctx, &q);
        }
        for (int scaled = 0; scaled < 1 + m->linear; scaled++)
            cr_expect(!ops->spiking || mode_spikes[scaled] > 0, "%s%s: no spikes in any case (the check would miss "
                      "the spike path)", ops->name, scaled ? ", θ and inputs scaled" : "");
    }
    cr_expect(checked > 0, "no model ran the power-of-two gain check");
    qsnn_ctx_destroy(&ctx);
}

/* ---- 7. learned state grids (qil, qn, cpq) ---------------------------------------------------------- */

enum { LQ_VARIANTS = 5 };

/* The learned grids as the network builds them: hard tables, QN's soft training form, CPQ's DropBits table. */
static qsnn_state_quant_cfg lq_variant(int i, const char **name) {
    qsnn_state_quant_cfg c = {.upper_limit = 0.2, .lq = qsnn_lq_opts_default()};
    switch (i) {
    case 0: c.bits = 4, c.grid = QSNN_GRID_QIL, c.p[0] = 0.6, c.p[1] = 0.5, *name = "4-bit qil"; break;
    case 1: c.bits = 3, c.grid = QSNN_GRID_QN, *name = "3-bit qn, hard"; break;
    case 2:
        /* T = 2: steps soft enough for central differences at the models' step sizes */
        c.bits = 3, c.grid = QSNN_GRID_QN, c.pass = (qsnn_lq_pass){.training = 1, .epoch = 0, .seed = 5};
        c.lq.qn_t_base = 2.0;
        *name = "3-bit qn, soft (training pass, T = 2)";
        break;
    case 3:
        c.bits = 4, c.grid = QSNN_GRID_CPQ, c.lq.cpq_state_drop = 0.6, c.pass = (qsnn_lq_pass){.training = 1, .seed = 99};
        *name = "4-bit cpq, DropBits";
        break;
    default: c.bits = 5, c.grid = QSNN_GRID_CPQ, *name = "5-bit cpq"; break;
    }
    return c;
}

/* Every model with every learned grid: finite forward; hard tables leave only levels in the quantized planes;
 * step ranges with carries and neuron blocks reproduce the whole-range call bit for bit (states, spikes, dL/dI;
 * the learned values' gradients up to summation order); the backward hook gives the same dL/dI whether the
 * parameter gradients are wanted or not (LIF's fast paths must not skip a learned grid's estimator); the learned
 * values receive finite, non-zero gradients. */
Test(neuron_conformance, learned_state_grids_in_every_model) {
    qsnn_ctx *ctx = test_ctx(1);
    FOR_EACH_MODEL(ops) {
        const mcfg *m = model_cfg(ops->name);
        const int ns = ops->n_states;
        float cur[CT * CN], w1[CT * CN], w2[CT * CN];
        fill(w1, CT * CN, -1.0f, 1.0f, 5u);
        fill(w2, CT * CN, -1.0f, 1.0f, 6u);
        for (int g = 0; g < LQ_VARIANTS; g++) {
            const char *gname;
            const qsnn_state_quant_cfg qc = lq_variant(g, &gname);
            qsnn_state_quant q;
            memset(&q, 0, sizeof q);
            cr_assert_eq(qsnn_state_quant_build(ctx, &qc, m->theta, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
            int got_qp = 0;
            for (int v = 0; v < N_VARIANTS; v++)
                for (int st = 0; st < 2; st++) {
                    if (!((m->resets >> variants[v].reset) & 1u)) continue;
                    ccase c = {.ops = ops, .q = &q, .is = st ? 0 : CN, .cur = cur, .w1 = w1, .w2 = w2, .full = 1};
                    c.p = variant_params(m, v);
                    fill(cur, CT * CN, m->in_lo, 1.5f * m->in_hi, 140u + (uint64_t)v);
                    char where[200];
                    snprintf(where, sizeof where, "%s (%s, reset %s%s, %s, %s input)", ops->name,
                             surr_label(c.p.surrogate), qsnn_reset_name(c.p.reset), c.p.reset_grad ? ", reset_grad" : "",
                             gname, st ? "static" : "per-step");
                    const int gT = st ? 1 : CT;
                    const size_t plane = (size_t)CT * CN;
                    static outs whole, steps, blocks, a, b;
                    outs_init(&whole), outs_init(&steps), outs_init(&blocks), outs_init(&a), outs_init(&b);
                    int every[CT + 1];
                    for (int t = 0; t <= CT; t++) every[t] = t;
                    fwd_ranges(&c, &whole, (const int[]){0, CT}, 1, 0, CN);
                    fwd_ranges(&c, &steps, every, CT, 0, CN);
                    fwd_ranges(&c, &blocks, (const int[]){0, CT}, 1, 0, CN1);
                    fwd_ranges(&c, &blocks, (const int[]){0, CT}, 1, CN1, CN - CN1);
                    int bad = 0, off = 0;
                    for (int s = 0; s < ns; s++)
                        for (size_t k = 0; k < plane; k++) {
                            const float u = whole.U[s * plane + k];
                            bad += !isfinite(u);
                            if (!q.soft && ((ops->quantized >> s) & 1u) && qsnn_state_level_index(&q, u) < 0 && off++ < 3)
                                cr_expect(0, "%s: state %d (%s) at step %zu neuron %zu is %.9g, not a level", where, s,
                                          ops->state_names[s], k / CN, k % CN, u);
                        }
                    cr_expect(bad == 0, "%s: %d state values not finite", where, bad);
                    diff_cells(where, "forward step by step: states", steps.U, whole.U, ns, plane, CT, CN, CN);
                    diff_cells(where, "forward step by step: spikes", steps.S, whole.S, 1, 0, CT, CN, CN);
                    diff_cells(where, "forward in two blocks: states", blocks.U, whole.U, ns, plane, CT, CN, CN);
                    bwd_ranges(&c, &whole, &whole, (const int[]){0, CT}, 1, 0, CN);
                    bwd_ranges(&c, &whole, &steps, every, CT, 0, CN);
                    bwd_ranges(&c, &whole, &blocks, (const int[]){0, CT}, 1, 0, CN1);
                    bwd_ranges(&c, &whole, &blocks, (const int[]){0, CT}, 1, CN1, CN - CN1);
                    diff_cells(where, "backward step by step with carry: dL/dI", steps.gcur, whole.gcur, 1, 0, gT, CN, CN);
                    diff_cells(where, "backward in two blocks: dL/dI", blocks.gcur, whole.gcur, 1, 0, gT, CN, CN);
                    expect_pg(where, "step by step", &steps.pg, &whole.pg);
                    expect_pg(where, "two blocks", &blocks.pg, &whole.pg);
                    int finite = isfinite(whole.pg.qp[0]) && isfinite(whole.pg.qp[1]);
                    for (int k = 0; k < gT * CN; k++) finite &= isfinite(whole.gcur[k]) != 0;
                    cr_expect(finite, "%s: non-finite dL/dI or learned-value gradients (%g, %g)", where, whole.pg.qp[0],
                              whole.pg.qp[1]);
                    got_qp += whole.pg.qp[0] != 0.0 && whole.pg.qp[1] != 0.0;
                    /* dL/dS only: with parameter gradients (generic path) and without (LIF's fast paths) */
                    qsnn_neuron_io io = make_io(ops, &q, CT, CN, 0, CN, cur, c.is, whole.U, whole.S);
                    io.gS = w1, io.gcur = a.gcur, io.gi_stride = c.is;
                    ops->backward(&c.p, &io, NULL);
                    io.gcur = b.gcur;
                    ops->backward(&c.p, &io, &b.pg);
                    diff_cells(where, "dL/dI without and with parameter gradients", a.gcur, b.gcur, 1, 0, gT, CN, CN);
                }
            cr_expect(got_qp > 0, "%s, %s: the learned values never received a gradient", ops->name, gname);
            qsnn_state_quant_free(ctx, &q);
        }
    }
    qsnn_ctx_destroy(&ctx);
}

/* L = Σ w1 S + w2 U (state 0) with state quantizer q. */
static double fd_loss_q(const qsnn_neuron_ops *ops, const qsnn_neuron_params *p, const qsnn_state_quant *q,
                        const float *cur, size_t is, const float *w1, const float *w2) {
    float U[NS * FT * FN], S[FT * FN];
    qsnn_neuron_io io = make_io(ops, q, FT, FN, 0, FN, cur, is, U, S);
    ops->forward(p, &io);
    double L = 0.0;
    for (int k = 0; k < FT * FN; k++) L += (double)w1[k] * S[k] + (double)w2[k] * U[k];
    return L;
}

/* QN's soft training form is smooth: the models' adjoints through it (dL/dI, dL/dα, dL/dβ of the grid) against
 * central differences, as test 1 does for float states. */
Test(neuron_conformance, qn_soft_states_gradients_match_finite_differences) {
    qsnn_ctx *ctx = test_ctx(1);
    FOR_EACH_MODEL(ops) {
        const mcfg *m = model_cfg(ops->name);
        const char *gname;
        const qsnn_state_quant_cfg qc = lq_variant(2, &gname);
        qsnn_state_quant q;
        memset(&q, 0, sizeof q);
        cr_assert_eq(qsnn_state_quant_build(ctx, &qc, m->theta, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
        cr_assert(q.soft);
        for (int r = 0; r < 3; r++)
            for (int st = 0; st < 2; st++) {
                if (!((m->resets >> r) & 1u)) continue;
                qsnn_neuron_params p = base_params(m);
                p.surrogate = QSNN_SURR_SOFT, p.slope = m->soft_slope, p.reset = (qsnn_reset)r, p.reset_grad = 1;
                const size_t is = st ? 0 : FN;
                const int ncur = st ? FN : FT * FN;
                float cur[FT * FN], w1[FT * FN], w2[FT * FN], U[NS * FT * FN], S[FT * FN], gcur[FT * FN];
                fill(cur, ncur, m->in_lo, m->in_hi, 17u + 7u * r + 3u * st);
                fill(w1, FT * FN, -1.0f, 1.0f, 103u + r);
                fill(w2, FT * FN, -1.0f, 1.0f, 204u + r);
                char where[160];
                snprintf(where, sizeof where, "%s (soft, reset %s, reset_grad, %s input, %s)", ops->name,
                         qsnn_reset_name(p.reset), st ? "static" : "per-step", gname);
                qsnn_neuron_io io = make_io(ops, &q, FT, FN, 0, FN, cur, is, U, S);
                ops->forward(&p, &io);
                io.gS = w1, io.gU = w2, io.gcur = gcur, io.gi_stride = is;
                qsnn_neuron_pgrad pg = {0};
                ops->backward(&p, &io, &pg);
                int bad = 0;
                for (int k = 0; k < ncur; k++) {
                    float c2[FT * FN];
                    memcpy(c2, cur, sizeof c2);
                    const float h = m->fd_rel * fmaxf(fabsf(cur[k]), fabsf(m->in_hi));
                    const float xp = cur[k] + h, xm = cur[k] - h;
                    c2[k] = xp;
                    const double Lp = fd_loss_q(ops, &p, &q, c2, is, w1, w2);
                    c2[k] = xm;
                    const double Lm = fd_loss_q(ops, &p, &q, c2, is, w1, w2);
                    const double fd = (Lp - Lm) / ((double)xp - (double)xm);
                    if (!grad_ok(gcur[k], fd) && bad++ < 3)
                        cr_expect(0, "%s: dL/dI at step %d neuron %d: adjoint %.7g, central difference %.7g", where,
                                  st ? -1 : k / FN, k % FN, gcur[k], fd);
                }
                for (int i = 0; i < 2; i++) { /* the grid's α and β, as the layer's float parameters */
                    const double v = q.lp[i], h = (m->lq_h > 0.0f ? m->lq_h : m->fd_rel) * fabs(v);
                    double L[2], x[2];
                    for (int sgn = 0; sgn < 2; sgn++) {
                        qsnn_state_quant_cfg c2 = qc;
                        c2.p[0] = q.lp[0], c2.p[1] = q.lp[1];
                        c2.p[i] = x[sgn] = (double)(float)(v + (sgn ? -h : h));
                        qsnn_state_quant q2;
                        memset(&q2, 0, sizeof q2);
                        cr_assert_eq(qsnn_state_quant_build(ctx, &c2, m->theta, &q2), QSNN_OK);
                        L[sgn] = fd_loss_q(ops, &p, &q2, cur, is, w1, w2);
                        qsnn_state_quant_free(ctx, &q2);
                    }
                    const double fd = (L[0] - L[1]) / (x[0] - x[1]);
                    const int ok = m->lq_tol > 0.0f ? fabs(pg.qp[i] - fd) <= m->lq_tol * fabs(fd) : grad_ok(pg.qp[i], fd);
                    cr_expect(ok, "%s: dL/d%s: adjoint %.7g, central difference %.7g", where,
                              i ? "beta" : "alpha", pg.qp[i], fd);
                }
            }
        qsnn_state_quant_free(ctx, &q);
    }
    qsnn_ctx_destroy(&ctx);
}
