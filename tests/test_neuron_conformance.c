/* One suite for every neuron model of the registry (the SUNDIALS way: the same checks for each
 * implementation of neurons/neuron.h), using only the ops fields n_states, quantized, params and spiking:
 *   - the adjoint against central differences of the smooth (soft-spike) forward, for the inputs and
 *     the declared parameters, per-step and static input;
 *   - reset rules: identical before the first spike, subtract and zero differ from none after it;
 *   - state quantization: every quantized plane holds grid levels only;
 *   - determinism: step ranges (with backward carries), neuron blocks and inference mode
 *     (u_stride 0) reproduce the whole-range call bit for bit;
 *   - forward returns the number of spikes; nothing is written outside the io's cells.
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
} mcfg;

static const mcfg model_table[] = {
    /* v in mV, θ is the spike peak, inputs ~10. The upswing is a near-singular blow-up (v gains ~70 mV
     * in one step), so differences need a smaller step (1e-2 is truncation-bound, 1e-4 rounding-bound);
     * without a reset v runs away to inf/NaN, as the model documents. */
    {"izhikevich", 30.0f, 0.8f, 0.7f, 0.3f, 0.0f, 10.0f, 3e-3f, 3u},
    /* I reaches U as (α - β) I: excitatory only for α > β */
    {"alpha", 1.0f, 0.6f, 0.9f, 3.0f, -0.2f, 0.9f, 1e-2f, 7u},
};
static const mcfg default_mcfg = {"(default)", 1.0f, 0.8f, 0.7f, 3.0f, -0.2f, 0.9f, 1e-2f, 7u};

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
                  pg_close(a->scale, b->scale),
              "%s: %s parameter gradients differ beyond summation order: beta %.17g vs %.17g, theta %.17g vs "
              "%.17g, alpha %.17g vs %.17g, scale %.17g vs %.17g",
              where, what, a->beta, b->beta, a->theta, b->theta, a->alpha, b->alpha, a->scale, b->scale);
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
                    c.p.surrogate = variants[v].sid, c.p.reset = variants[v].reset, c.p.reset_grad = variants[v].rgrad;
                    c.p.slope = variants[v].sid == QSNN_SURR_SOFT ? m->soft_slope
                                                                  : qsnn_surrogate_get(variants[v].sid)->default_slope;
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
                                  isfinite(whole.pg.scale);
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
