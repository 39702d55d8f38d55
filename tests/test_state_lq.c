/* Learned state grids (quant.state.grid = qil, qn, cpq; quant/state_quant.h):
 *   (a) the hard table (scalar and vectorized apply) equals the scalar formula for 10^5 random floats per grid
 *       and every boundary float (cuts and their neighbours, interval edges, levels, midpoints, ±0, ±inf, NaN,
 *       denormals), against the library's reference and an independent naive one written here;
 *   (b) QN's soft staircase against central differences (Richardson-extrapolated) in x, α and β;
 *   (c) the QIL and CPQ estimators (qsnn_state_lq_back and the models' hook qsnn_io_qback, with a grid gain)
 *       against their closed forms; CPQ's open end bins: dx̂/dx >= 0 beyond the grid's ends and on a full grid;
 *   (d) CPQ DropBits: a pass's seed fixes the table, another seed changes it, bit levels 1 and 2 are never
 *       dropped, drop rates follow cpq_drop·2^(m-b), inference keeps every point;
 *   (e) a whole network (LIF, soft surrogate) in QN's soft training form: BPTT gradients of
 *       layerN.state_alpha / state_beta and of weights against central differences of the loss;
 *   (f) one training step gives bit-identical gradients on 1 and 2 threads (every grid, several blocks). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neurons/model_kernel.h"
#include "quant/state_quant.h"
#include "sim/engine.h"
#include "test_util.h"
#include "train/loss.h"

static qsnn_state_quant_cfg lq_cfg(qsnn_grid g, int bits, double p0, double p1) {
    qsnn_state_quant_cfg c = {.bits = bits, .grid = g, .upper_limit = 0.2, .lq = qsnn_lq_opts_default()};
    c.p[0] = p0, c.p[1] = p1;
    return c;
}

static qsnn_state_quant build(qsnn_ctx *ctx, const qsnn_state_quant_cfg *c, float theta) {
    qsnn_state_quant q;
    memset(&q, 0, sizeof q);
    cr_assert_eq(qsnn_state_quant_build(ctx, c, theta, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
    return q;
}

static uint32_t fbits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static float from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
static int same(float a, float b) { return fbits(a) == fbits(b) || (isnan(a) && isnan(b)); }

static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double unif(uint64_t *s) { return (double)(mix(s) >> 11) * (1.0 / 9007199254740992.0); }

/* ---- independent naive references (the formulas of the header, written out again) ----------------- */

static float naive_hard(const qsnn_state_quant *q, float x) {
    if (isnan(x)) return x;
    const double th = q->built_theta, v = (double)x / th;
    const int b = q->cfg.bits, qd = (1 << (b - 1)) - 1;
    const double p0 = q->lp[0], p1 = q->lp[1];
    if (q->cfg.grid == QSNN_GRID_QIL) {
        const double c = p0, d = p1, a = fabs(v);
        double t = a < c - d ? 0.0 : (a > c + d ? 1.0 : (a - (c - d)) / (2.0 * d));
        if (t > 1.0) t = 1.0;
        if (t < 0.0) t = 0.0;
        if (v < 0) t = -t;
        const double y = t * qd;
        double code = floor(y); /* nearest integer, a tie goes to the lower one */
        if (y - code > 0.5) code += 1.0;
        code += 0.0; /* code 0 is level +0 (as θ·κ·0), also for v < 0 */
        return (float)(th * ((c + d) / qd) * code);
    }
    if (q->cfg.grid == QSNN_GRID_QN) {
        int count = 0;
        for (int i = 1; i <= 2 * qd; i++) count += p1 * v - ((double)(i - qd) - 0.5) > 0.0;
        return (float)(th * p0 * (double)(count - qd));
    }
    /* cpq: every kept point, nearest, ties to the lower */
    const int half = 1 << (b - 1);
    int have_a = 0, have_b = 0;
    float la = 0.0f, lb = 0.0f;
    for (int k = -half; k < half; k++) {
        if (!qsnn_cpq_kept(&q->cfg, k)) continue;
        const float l = (float)(th * p0 * (double)k);
        if (l < x) {
            if (!have_a || l > la) la = l, have_a = 1;
        } else if (!have_b || l < lb)
            lb = l, have_b = 1;
    }
    if (!have_a) return lb;
    if (!have_b) return la;
    return (x - la) <= (lb - x) ? la : lb;
}

/* ---- (a) the hard table equals the formula ------------------------------------------------------- */

enum { NBUF = 4096 };

typedef struct checker {
    const qsnn_state_quant *q;
    const char *where;
    int naive; /* also compare with naive_hard (small grids) */
    float in[NBUF], out[NBUF];
    int n, bad;
    long checked;
} checker;

static void flush(checker *c) {
    qsnn_state_quant_apply_n(c->q, c->in, c->out, c->n);
    for (int i = 0; i < c->n; i++) {
        const float x = c->in[i];
        const float ref = qsnn_state_lq_ref(&c->q->cfg, c->q->built_theta, x);
        const float a = qsnn_state_quant_apply(c->q, x);
        const float nv = c->naive ? naive_hard(c->q, x) : ref;
        if ((!same(a, ref) || !same(c->out[i], ref) || !same(nv, ref)) && c->bad++ < 5)
            cr_expect(0, "%s: x = %.9g (0x%08x): table %.9g, vectorized %.9g, reference %.9g, naive %.9g", c->where,
                      x, fbits(x), a, c->out[i], ref, nv);
    }
    c->checked += c->n;
    c->n = 0;
}
static void push(checker *c, float x) {
    c->in[c->n++] = x;
    if (c->n == NBUF) flush(c);
}
static void push3(checker *c, float x) { /* x and its neighbours */
    push(c, x);
    push(c, nextafterf(x, INFINITY));
    push(c, nextafterf(x, -INFINITY));
}

static void check_table(qsnn_ctx *ctx, const qsnn_state_quant_cfg *cfg, float theta, int nrand, int naive) {
    qsnn_state_quant q = build(ctx, cfg, theta);
    checker *c = calloc(1, sizeof *c);
    char where[160];
    snprintf(where, sizeof where, "%s, %d bits, p = (%g, %g), theta %g%s", qsnn_grid_name(cfg->grid), cfg->bits,
             cfg->p[0], cfg->p[1], theta, cfg->pass.training ? ", training pass" : "");
    c->q = &q, c->where = where, c->naive = naive;
    cr_assert(!q.soft, "%s: a hard table expected", where);
    /* boundaries: cuts, levels, midpoints, interval edges and breakpoints, special floats */
    for (int i = 0; i + 1 < q.n; i++) {
        if (q.cut_search) push3(c, q.xcuts[i]);
        push3(c, q.levels[i]);
        push3(c, 0.5f * (q.levels[i] + q.levels[i + 1]));
    }
    push3(c, q.levels[q.n - 1]);
    const double th = q.built_theta, qd = (double)((1 << (cfg->bits - 1)) - 1);
    if (cfg->grid == QSNN_GRID_QIL)
        for (int s = -1; s <= 1; s += 2) {
            push3(c, (float)(s * th * (q.lp[0] - q.lp[1])));
            push3(c, (float)(s * th * (q.lp[0] + q.lp[1])));
        }
    if (cfg->grid == QSNN_GRID_QN)
        for (int i = 1; i <= 2 * (int)qd; i++) push3(c, (float)(th * ((double)i - qd - 0.5) / q.lp[1]));
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN,
                             from_bits(1u), from_bits(0x80000001u), 1.0f, -1.0f, theta, -theta};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++) push3(c, special[i]);
    /* random: in the range (±2.5θ), and any bit pattern */
    uint64_t s = 0x5EED0000u + (uint64_t)cfg->grid * 977u + (uint64_t)cfg->bits;
    for (int i = 0; i < nrand; i++) {
        if (i % 4 == 3) push(c, from_bits((uint32_t)mix(&s)));
        else push(c, (float)((unif(&s) * 5.0 - 2.5) * theta));
    }
    flush(c);
    cr_expect(c->bad == 0, "%s: %d of %ld values differ", where, c->bad, c->checked);
    /* the level table: codes ascending, levels on θ·step·code */
    for (int i = 0; i + 1 < q.n; i++) cr_expect(q.levels[i] <= q.levels[i + 1] && q.codes[i] < q.codes[i + 1], "%s: order", where);
    free(c);
    qsnn_state_quant_free(ctx, &q);
}

Test(state_lq, hard_tables_equal_the_formulas) {
    qsnn_ctx *ctx = test_ctx(1);
    const struct {
        qsnn_grid g;
        double p0, p1;
    } sets[] = {
        {QSNN_GRID_QIL, 0.0, 0.0},   /* the initial values: uniform over ±θ(1 + upper_limit) */
        {QSNN_GRID_QIL, 0.3, 0.5},   /* c < d: no dead zone, the first step at 0 */
        {QSNN_GRID_QIL, 0.8, 0.25},  /* a dead zone |v| < 0.55 */
        {QSNN_GRID_QIL, 0.5, 0.001}, /* nearly a single step (d at its clamp) */
        {QSNN_GRID_QN, 0.0, 0.0},    {QSNN_GRID_QN, 0.4, 2.2}, {QSNN_GRID_QN, 1.3, 0.7},
        {QSNN_GRID_CPQ, 0.0, 0.0},   {QSNN_GRID_CPQ, 0.13, 0.05},
    };
    const int bits[] = {2, 3, 4, 5, 8};
    for (size_t si = 0; si < sizeof sets / sizeof *sets; si++)
        for (size_t bi = 0; bi < sizeof bits / sizeof *bits; bi++) {
            qsnn_state_quant_cfg c = lq_cfg(sets[si].g, bits[bi], sets[si].p0, sets[si].p1);
            check_table(ctx, &c, 1.0f, bits[bi] == 4 ? 100000 : 20000, 1);
            if (sets[si].g == QSNN_GRID_CPQ) { /* a training pass: DropBits survivors */
                c.pass = (qsnn_lq_pass){.training = 1, .epoch = 2, .seed = 0xABCDEFu + bits[bi]};
                c.lq.cpq_state_drop = 0.6;
                check_table(ctx, &c, 0.7f, bits[bi] == 4 ? 100000 : 20000, 1);
            }
        }
    /* large tables (explicit cuts searched by bisection, no vector cut path) and another θ */
    for (int g = QSNN_GRID_QIL; g <= QSNN_GRID_CPQ; g++) {
        qsnn_state_quant_cfg c = lq_cfg((qsnn_grid)g, 12, 0.0, 0.0);
        check_table(ctx, &c, 1.7f, 100000, 0);
    }
    qsnn_ctx_destroy(&ctx);
}

/* ---- (b) QN's soft staircase --------------------------------------------------------------------- */

/* Central difference with one Richardson step: (4 D(h/2) - D(h))/3. */
static double richardson(double (*f)(void *, double), void *u, double x, double h) {
    const double d1 = (f(u, x + h) - f(u, x - h)) / (2.0 * h);
    const double d2 = (f(u, x + h / 2) - f(u, x - h / 2)) / h;
    return (4.0 * d2 - d1) / 3.0;
}

typedef struct {
    qsnn_state_quant q;
    double x;
    int which; /* 0: x, 1: α, 2: β */
} qn_fn;
static double qn_eval(void *u, double t) {
    qn_fn *f = u;
    qsnn_state_quant q = f->q;
    double x = f->x;
    if (f->which == 0) x = t;
    else q.lp[f->which - 1] = t;
    return qsnn_qn_soft(&q, x, NULL, NULL, NULL);
}

/* Whether any T(βv - b_i) is within margin of the ±10 clamp (its kink) */
static int near_clamp(const qsnn_state_quant *q, double x, double margin) {
    const int qd = (1 << (q->cfg.bits - 1)) - 1;
    for (int i = 1; i <= 2 * qd; i++) {
        const double z = q->qn_t * (q->lp[1] * x / q->built_theta - ((double)(i - qd) - 0.5));
        if (fabs(fabs(z) - 10.0) < margin) return 1;
    }
    return 0;
}

Test(state_lq, qn_soft_staircase_against_central_differences) {
    qsnn_ctx *ctx = test_ctx(1);
    int checked = 0;
    for (int bits = 2; bits <= 5; bits++)
        for (int epoch = 0; epoch < 3; epoch += 2) {
            qsnn_state_quant_cfg c = lq_cfg(QSNN_GRID_QN, bits, bits == 3 ? 0.45 : 0.0, bits == 3 ? 1.7 : 0.0);
            c.pass = (qsnn_lq_pass){.training = 1, .epoch = epoch, .seed = 7};
            qsnn_state_quant q = build(ctx, &c, 1.3f);
            cr_assert(q.soft && q.qn_t == 10.0 * (epoch + 1), "soft table with T = (epoch+1)·t_base expected");
            uint64_t s = 99u + (uint64_t)bits;
            { /* the vectorized apply takes the soft path too */
                float in[37], out[37];
                for (int i = 0; i < 37; i++) in[i] = (float)((unif(&s) * 3.0 - 1.5) * q.built_theta);
                qsnn_state_quant_apply_n(&q, in, out, 37);
                for (int i = 0; i < 37; i++)
                    cr_expect(same(out[i], (float)qsnn_qn_soft(&q, in[i], NULL, NULL, NULL)),
                              "qn %d bits: apply_n gives %.9g for %.9g, the soft value is %.9g", bits, out[i], in[i],
                              qsnn_qn_soft(&q, in[i], NULL, NULL, NULL));
            }
            for (int i = 0; i < 60; i++) {
                const double x = (unif(&s) * 3.0 - 1.5) * q.built_theta;
                double dx, da, db;
                const double y = qsnn_qn_soft(&q, x, &dx, &da, &db);
                cr_expect(same((float)qsnn_qn_soft(&q, (float)x, NULL, NULL, NULL), qsnn_state_quant_apply(&q, (float)x)),
                          "apply gives the soft value");
                (void)y;
                const double an[3] = {dx, da, db};
                const double at[3] = {x, q.lp[0], q.lp[1]};
                for (int w = 0; w < 3; w++) {
                    const double h = 1e-4 * fmax(1.0, fabs(at[w]));
                    /* the step must not cross a clamp kink: z moves by at most T·β·h/θ or T·|v|·h */
                    if (near_clamp(&q, x, 2.0 * q.qn_t * (fabs(x) / q.built_theta + q.lp[1]) * h + 1e-9)) continue;
                    qn_fn f = {.q = q, .x = x, .which = w};
                    const double fd = richardson(qn_eval, &f, at[w], h);
                    cr_expect(fabs(an[w] - fd) <= 1e-6 * fmax(1.0, fabs(fd)),
                              "qn %d bits, epoch %d, x = %.9g: d/d%s analytic %.12g, Richardson %.12g", bits, epoch, x,
                              w == 0 ? "x" : (w == 1 ? "alpha" : "beta"), an[w], fd);
                    checked++;
                }
            }
            qsnn_state_quant_free(ctx, &q);
        }
    cr_expect_gt(checked, 500, "too few points checked (%d)", checked);
    qsnn_ctx_destroy(&ctx);
}

/* ---- (c) QIL and CPQ estimators against their closed forms -------------------------------------- */

static double sig(double z) { return 1.0 / (1.0 + exp(-z)); }

/* CPQ's closed forms, summed over every kept point (no window), with open end bins: the lowest kept point's
 * π_k has no σ(b_k) term, the highest one's σ(a_k) is 1. */
static void cpq_closed(const qsnn_state_quant *q, double x, double *dx, double *da, double *ds, double *mag) {
    const double th = q->built_theta, al = q->lp[0], sg = q->lp[1], v = x / th;
    const int half = 1 << (q->cfg.bits - 1);
    int klo = -half, khi = half - 1;
    while (!qsnn_cpq_kept(&q->cfg, klo)) klo++;
    while (!qsnn_cpq_kept(&q->cfg, khi)) khi--;
    *dx = *da = *ds = *mag = 0.0;
    for (int k = -half; k < half; k++) {
        if (!qsnn_cpq_kept(&q->cfg, k)) continue;
        const double g = th * al * k, a = (al * k + al / 2 - v) / sg, b = (al * k - al / 2 - v) / sg;
        const double pa = k == khi ? 0.0 : sig(a) * (1 - sig(a)), pb = k == klo ? 0.0 : sig(b) * (1 - sig(b));
        *dx += g * (-(pa - pb) / (sg * th));
        *da += g * (pa * (k + 0.5) - pb * (k - 0.5)) / sg;
        *ds += g * (-(pa * a - pb * b) / sg);
        *mag += fabs(g) * (pa + pb) * (fabs((double)k) + 1.0 + fabs(a) + fabs(b)) / sg;
    }
    const float r = qsnn_state_lq_ref(&q->cfg, q->built_theta, (float)x);
    *da += th * nearbyint((double)r / (th * al)); /* θ·k* */
}

Test(state_lq, qil_and_cpq_estimators_equal_the_closed_forms) {
    qsnn_ctx *ctx = test_ctx(1);
    const float theta = 1.3f;
    { /* QIL: c = 0.7, d = 0.4 -> interval [0.3, 1.1] of |v| */
        qsnn_state_quant_cfg c = lq_cfg(QSNN_GRID_QIL, 4, 0.7, 0.4);
        qsnn_state_quant q = build(ctx, &c, theta);
        const double cc = q.lp[0], d = q.lp[1]; /* the float parameters, as the layer holds them */
        const double vs[] = {0.31, 0.5, 0.9, 1.09, -0.35, -0.8, -1.05, 0.1, -0.2, 1.2, -1.5, 0.0};
        for (size_t i = 0; i < sizeof vs / sizeof *vs; i++) {
            const float x = (float)(vs[i] * theta);
            const double v = (double)x / theta, a = fabs(v), s = v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0);
            const int in = a >= cc - d && a <= cc + d;
            const double kq = cc + d; /* κ·qD */
            const double ex = in ? kq / (2 * d) : 0.0, ec = in ? -theta * kq * s / (2 * d) : 0.0;
            const double ed = in ? -theta * kq * s * (a - cc) / (2 * d * d) : 0.0;
            double g0 = 0.0, g1 = 0.0;
            const float gx = qsnn_state_lq_back(&q, x, 2.0f, &g0, &g1); /* g = dL/dx̂ = 2 */
            cr_expect(fabs(gx - 2.0 * ex) <= 1e-6 * fabs(ex) + 1e-12 && fabs(g0 - 2.0 * ec) <= 1e-9 * fabs(ec) + 1e-12 &&
                          fabs(g1 - 2.0 * ed) <= 1e-9 * fabs(ed) + 1e-12,
                      "qil v = %g: dx %.9g (want %.9g), dc %.12g (%.12g), dd %.12g (%.12g)", v, gx, 2 * ex, g0, 2 * ec,
                      g1, 2 * ed);
            /* the models' hook with a grid gain of 2: x̂ = 2 Q(x/2) */
            const float gain[1] = {2.0f};
            qsnn_neuron_io io = {.n = 1, .qgain = gain};
            double h0 = 0.0, h1 = 0.0;
            const float hx = qsnn_io_qback(&io, &q, 0, 2.0f * x, 2.0f, &h0, &h1);
            cr_expect(hx == gx && fabs(h0 - 2.0 * g0) <= 1e-12 * fabs(g0) && fabs(h1 - 2.0 * g1) <= 1e-12 * fabs(g1),
                      "qil hook with gain 2 at v = %g: %.9g %.12g %.12g vs %.9g %.12g %.12g", v, hx, h0, h1, gx, 2 * g0,
                      2 * g1);
        }
        qsnn_state_quant_free(ctx, &q);
    }
    const struct {
        int bits, training;
        double a, s;
    } cs[] = {{4, 0, 0.15, 0.05}, {4, 1, 0.15, 0.05}, {6, 1, 0.04, 0.02},  {3, 0, 0.3, 0.6}, {5, 0, 0.1, 0.001},
              {4, 1, 0.15, 0.00015} /* α/σ = 1000: e^-Δ underflows */, {12, 1, 0.0006, 0.0003}, {12, 0, 0.0006, 0.0009}};
    for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
        qsnn_state_quant_cfg c = lq_cfg(QSNN_GRID_CPQ, cs[ci].bits, cs[ci].a, cs[ci].s);
        c.lq.cpq_state_drop = 0.7;
        if (cs[ci].training) c.pass = (qsnn_lq_pass){.training = 1, .seed = 12345u + ci};
        qsnn_state_quant q = build(ctx, &c, theta);
        uint64_t s = 4242u + ci;
        for (int i = 0; i < 200; i++) {
            const float x = (float)((unif(&s) * 3.0 - 1.5) * theta);
            double dx, da, ds, mag, g0 = 0.0, g1 = 0.0;
            cpq_closed(&q, x, &dx, &da, &ds, &mag);
            const float gx = qsnn_state_lq_back(&q, x, 1.0f, &g0, &g1);
            /* the window of ±16σ leaves out terms below e^-15 of the largest */
            const double tol = 1e-6 * mag + 1e-9;
            cr_expect(fabs(gx - dx) <= tol + 1e-6 * fabs(dx) && fabs(g0 - da) <= tol * theta + 1e-9 * fabs(da) &&
                          fabs(g1 - ds) <= tol * theta,
                      "cpq %d bits%s, x = %.9g: dx %.9g (closed %.9g), dalpha %.12g (%.12g), dsigma %.12g (%.12g)",
                      cs[ci].bits, cs[ci].training ? " (training)" : "", x, gx, dx, g0, da, g1, ds);
        }
        qsnn_state_quant_free(ctx, &q);
    }
    qsnn_ctx_destroy(&ctx);
}

/* CPQ's open end bins: beyond the outer edges of the kept points dx̂/dx >= 0, falling to 0 far outside (closed end
 * bins gave ≈ -θα·k_max/(4σθ) at the top edge, where the membranes sit); with every point kept
 * dx̂/dx = (α/σ)Σ_edges s'(x_e) >= 0 everywhere (an independent closed form, summed in double here). */
Test(state_lq, cpq_open_end_bins_saturate) {
    qsnn_ctx *ctx = test_ctx(1);
    const float theta = 1.3f;
    const struct {
        int bits;
        double a, s;
    } cs[] = {{4, 0.16, 0.16 / 3}, {4, 0.16, 0.08}, {3, 0.4, 0.4}, {6, 0.04, 0.01}, {12, 0.0006, 0.0002}};
    long outside = 0, dense = 0;
    for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++)
        for (int training = 0; training < 2; training++) {
            qsnn_state_quant_cfg c = lq_cfg(QSNN_GRID_CPQ, cs[ci].bits, cs[ci].a, cs[ci].s);
            c.lq.cpq_state_drop = 0.9;
            const int half = 1 << (c.bits - 1);
            if (training) /* a pass that drops the top point (probability 0.9) */
                for (uint64_t seed = 1; seed < 100; seed++) {
                    c.pass = (qsnn_lq_pass){.training = 1, .seed = seed};
                    if (!qsnn_cpq_kept(&c, half - 1)) break;
                }
            qsnn_state_quant q = build(ctx, &c, theta);
            const double al = q.lp[0], sg = q.lp[1], slope = al / sg;
            const double top = theta * al * (q.codes[q.n - 1] + 0.5), bot = theta * al * (q.codes[0] - 0.5);
            if (training) cr_assert_lt(q.codes[q.n - 1], half - 1, "%d bits: the top point should be dropped", c.bits);
            char where[96];
            snprintf(where, sizeof where, "cpq %d bits, α %g, σ %g%s", c.bits, al, sg, training ? " (DropBits)" : "");
            for (int i = 0; i <= 4000; i++) { /* beyond the outer edges, up to 60σ, both sides */
                const double d = theta * sg * 60.0 * i / 4000.0;
                for (int side = 0; side < 2; side++) {
                    const float x = (float)(side ? top + d : bot - d);
                    const double far = (side ? (double)x - top : bot - (double)x) / (theta * sg);
                    if (far < 0.0) continue;
                    const float gx = qsnn_state_lq_back(&q, x, 1.0f, NULL, NULL);
                    cr_assert(gx >= -1e-6 * slope, "%s: x = %.9g (%.2fσ out): dx̂/dx %g", where, x, far, gx);
                    if (far > 25.0) cr_assert(fabs(gx) <= 1e-7 * slope, "%s: x = %.9g (%.2fσ out): dx̂/dx %g", where, x, far, gx);
                    outside++;
                }
            }
            if (!training) /* every point kept: densely over the grid and beyond */
                for (int i = 0; i <= 20000; i++) {
                    const float x = (float)(theta * al * (half + 4) * (i / 10000.0 - 1.0));
                    const float gx = qsnn_state_lq_back(&q, x, 1.0f, NULL, NULL);
                    double want = 0.0;
                    for (int k = -half; k < half - 1; k++) {
                        const double z = sig((al * (k + 0.5) - (double)x / theta) / sg);
                        want += slope * z * (1.0 - z);
                    }
                    cr_assert(gx >= 0.0f && fabs(gx - want) <= 1e-6 * (want + slope * 1e-3), "%s: x = %.9g: dx̂/dx %.9g, want %.9g",
                              where, x, gx, want);
                    dense++;
                }
            qsnn_state_quant_free(ctx, &q);
        }
    cr_expect_gt(outside, 30000);
    cr_expect_gt(dense, 90000);
    qsnn_ctx_destroy(&ctx);
}

/* ---- (d) DropBits ---------------------------------------------------------------------------------- */

static int level_of(int k, int b) { return k == 0 ? 1 : b - __builtin_ctz((unsigned)k); }

Test(state_lq, cpq_dropbits_masks) {
    qsnn_ctx *ctx = test_ctx(1);
    const int b = 6, half = 1 << (b - 1);
    qsnn_state_quant_cfg c = lq_cfg(QSNN_GRID_CPQ, b, 0.0, 0.0);
    c.lq.cpq_state_drop = 0.5;
    /* inference: every point, the uniform fast path */
    qsnn_state_quant q0 = build(ctx, &c, 1.0f);
    cr_expect(q0.n == 2 * half && q0.uniform, "inference keeps all %d points (got %d)", 2 * half, q0.n);
    qsnn_state_quant_free(ctx, &q0);
    long dropped[8] = {0}, total[8] = {0};
    int differ = 0;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        c.pass = (qsnn_lq_pass){.training = 1, .seed = seed * 0x9E37u};
        qsnn_state_quant a = build(ctx, &c, 1.0f), a2 = build(ctx, &c, 1.0f);
        cr_assert(a.n == a2.n && !memcmp(a.levels, a2.levels, (size_t)a.n * sizeof(float)),
                  "seed %llu: the same seed gave different tables", (unsigned long long)seed);
        c.pass.seed += 1;
        qsnn_state_quant o = build(ctx, &c, 1.0f);
        differ += o.n != a.n || memcmp(o.levels, a.levels, (size_t)a.n * sizeof(float)) != 0;
        for (int k = -half; k < half; k++) {
            const int m = level_of(k, b), kept = a.kept[k + half];
            total[m]++;
            dropped[m] += !kept;
            if (m <= 2) cr_assert(kept, "seed %llu: point %d of bit level %d dropped", (unsigned long long)seed, k, m);
            int in_table = 0; /* the table holds exactly the survivors */
            for (int i = 0; i < a.n; i++) in_table |= a.codes[i] == k;
            cr_assert_eq(in_table, kept, "point %d: table and mask disagree", k);
        }
        qsnn_state_quant_free(ctx, &a), qsnn_state_quant_free(ctx, &a2), qsnn_state_quant_free(ctx, &o);
    }
    cr_expect_gt(differ, 390, "another seed changed the table in only %d of 400 passes", differ);
    for (int m = 3; m <= b; m++) { /* rate cpq_drop·2^(m-b), within 5 standard deviations */
        const double p = 0.5 * ldexp(1.0, m - b), rate = (double)dropped[m] / (double)total[m];
        cr_expect(fabs(rate - p) <= 5.0 * sqrt(p * (1 - p) / (double)total[m]),
                  "bit level %d: dropped %.4f of the points, expected %.4f", m, rate, p);
    }
    c.lq.cpq_state_drop = 0.0; /* drop_prob 0: training passes keep every point too */
    c.pass = (qsnn_lq_pass){.training = 1, .seed = 77};
    qsnn_state_quant z = build(ctx, &c, 1.0f);
    cr_expect(z.n == 2 * half, "drop_prob 0 dropped points");
    qsnn_state_quant_free(ctx, &z);
    qsnn_ctx_destroy(&ctx);
}

/* ---- (e) a whole network in QN's soft form ------------------------------------------------------- */

enum { F = 6, H = 5, C = 3, T = 7, B = 2 };

typedef struct problem {
    qsnn_ctx *ctx;
    qsnn_net *net;
    qsnn_workspace *ws;
    float x[T * B * F];
    int y[B];
    const qsnn_loss_ops *loss;
    qsnn_train_cfg tcfg;
    float grad[T * B * C];
    int pred[B];
} problem;

static double loss_of(problem *p, int backward) {
    cr_assert_eq(qsnn_net_prepare(p->net), QSNN_OK, "%s", qsnn_last_error(p->ctx));
    cr_assert_eq(qsnn_forward(p->net, p->ws, p->x, 0, B), QSNN_OK);
    const qsnn_layer_buf *out = &p->ws->buf[p->net->n_layers - 1];
    const double l = p->loss->eval(&p->tcfg, out->S, out->U, T, B, C, p->y, backward ? p->grad : NULL, p->pred);
    if (backward) cr_assert_eq(qsnn_backward(p->net, p->ws, p->grad, NULL), QSNN_OK);
    return l;
}

static qsnn_param *param(qsnn_param *list, int n, const char *name) {
    for (int k = 0; k < n; k++)
        if (!strcmp(list[k].name, name)) return &list[k];
    cr_assert_fail("no parameter %s", name);
    return NULL;
}

static void network_case(const char *neuron, qsnn_recurrence rec) {
    problem *p = calloc(1, sizeof *p);
    p->ctx = test_ctx(2);
    qsnn_net_cfg cfg;
    qsnn_net_cfg_default(&cfg);
    cfg.n_inputs = F, cfg.sizes[0] = H, cfg.sizes[1] = C;
    cfg.neuron_params.surrogate = QSNN_SURR_SOFT;
    cfg.neuron_params.slope = 4.0f;
    cfg.neuron_params.reset_grad = 1;
    cfg.neuron_params.beta = 0.9f;
    cfg.recurrent = rec;
    if (neuron) snprintf(cfg.neuron, sizeof cfg.neuron, "%s", neuron);
    cfg.state_quant.bits = 3;
    cfg.state_quant.grid = QSNN_GRID_QN;
    cr_assert_eq(qsnn_net_create(p->ctx, &cfg, &p->net), QSNN_OK, "%s", qsnn_last_error(p->ctx));
    qsnn_net_init(p->net, 7);
    for (int l = 0; l < p->net->n_layers; l++)
        for (size_t i = 0; i < p->net->layer[l].nw; i++) p->net->layer[l].W[i] *= 3.0f;
    for (size_t i = 0; i < qsnn_layer_nv(&p->net->layer[0]); i++)
        p->net->layer[0].V[i] = 0.6f * (float)(((int)(i * 53) % 17) - 8) / 8.0f;
    p->net->training = 1, p->net->epoch = 0, p->net->quant_seed = 0x1234567u; /* the soft staircase */
    cr_assert_eq(qsnn_workspace_create(p->net, B, T, 1, &p->ws), QSNN_OK);
    for (int i = 0; i < T * B * F; i++) p->x[i] = (float)((i * 37) % 101) / 101.0f;
    p->y[0] = 1, p->y[1] = 2;
    p->loss = qsnn_loss_find("ce_count");
    p->tcfg.correct_rate = 0.8f, p->tcfg.incorrect_rate = 0.2f;
    loss_of(p, 1);
    cr_assert(p->net->layer[0].sq.soft, "the training pass should use QN's soft staircase");
    qsnn_param list[QSNN_MAX_PARAMS];
    const int np = qsnn_net_params(p->net, list);
    const char *names[] = {"layer0.state_alpha", "layer0.state_beta", "layer1.state_alpha", "layer1.state_beta"};
    double analytic[4 + 6];
    float *where[4 + 6];
    char label[4 + 6][48];
    for (int k = 0; k < 4; k++) {
        qsnn_param *q = param(list, np, names[k]);
        cr_assert_eq(q->n, 1u);
        cr_assert(q->learnable, "%s must be learnable", names[k]);
        where[k] = q->data, analytic[k] = q->grad[0];
        snprintf(label[k], sizeof label[k], "%.40s", names[k]);
    }
    for (int k = 0; k < 6; k++) { /* the weights with the largest gradients, three per layer */
        qsnn_param *w = param(list, np, k < 3 ? "layer0.weight" : "layer1.weight");
        size_t i = 0;
        float best = -1.0f;
        for (size_t m = 0; m < w->n; m++) {
            int taken = 0;
            for (int e = 4; e < 4 + k; e++) taken |= where[e] == &w->data[m];
            if (!taken && fabsf(w->grad[m]) > best) best = fabsf(w->grad[m]), i = m;
        }
        where[4 + k] = &w->data[i], analytic[4 + k] = w->grad[i];
        snprintf(label[4 + k], sizeof label[4 + k], "%.24s[%zu]", w->name, i);
    }
    int nonzero = 0;
    for (int k = 0; k < 10; k++) { /* central differences with one Richardson step (h = 1e-3 and 5e-4) */
        const float keep = *where[k], h = 1e-3f * fmaxf(1.0f, fabsf(keep));
        double d[2];
        for (int r = 0; r < 2; r++) {
            const float hh = r ? 0.5f * h : h;
            *where[k] = keep + hh;
            const double lp = loss_of(p, 0);
            *where[k] = keep - hh;
            const double lm = loss_of(p, 0);
            d[r] = (lp - lm) / ((double)(keep + hh) - (double)(keep - hh));
        }
        *where[k] = keep;
        const double fd = (4.0 * d[1] - d[0]) / 3.0;
        cr_expect_leq(fabs(fd - analytic[k]), 5e-4 + 1e-2 * fabs(fd), "%s (%s%s): analytic %.6g, finite difference %.6g",
                      label[k], neuron ? neuron : "lif", rec ? ", recurrent" : "", analytic[k], fd);
        nonzero += fabs(analytic[k]) > 1e-3;
    }
    cr_expect_geq(nonzero, 6, "too few non-zero gradients (%d): the check would be vacuous", nonzero);
    qsnn_workspace_destroy(&p->ws);
    qsnn_net_destroy(&p->net);
    qsnn_ctx_destroy(&p->ctx);
    free(p);
}

Test(state_lq, network_qn_soft_gradients_match_finite_differences) { network_case(NULL, QSNN_REC_NONE); }
Test(state_lq, network_qn_soft_synaptic_recurrent) { network_case("synaptic", QSNN_REC_FULL); }

/* ---- (f) 1 and 2 threads ----------------------------------------------------------------------- */

enum { F2 = 20, H2 = 300, C2 = 10, T2 = 5, B2 = 8 }; /* B2·H2 = 2400: three neuron blocks */

static void one_step(int threads, qsnn_grid grid, const char *neuron, qsnn_recurrence rec, float **grads, size_t *sizes,
                     int *np_out, char (*names)[32]) {
    qsnn_ctx *ctx = test_ctx(threads);
    qsnn_net_cfg cfg;
    qsnn_net_cfg_default(&cfg);
    cfg.n_inputs = F2, cfg.sizes[0] = H2, cfg.sizes[1] = C2;
    cfg.state_quant.bits = 4;
    cfg.state_quant.grid = grid;
    cfg.lq.cpq_state_drop = 0.5;
    cfg.recurrent = rec;
    if (neuron) snprintf(cfg.neuron, sizeof cfg.neuron, "%s", neuron);
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_net_create(ctx, &cfg, &net), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net_init(net, 3);
    for (size_t i = 0; i < net->layer[0].nw; i++) net->layer[0].W[i] *= 4.0f;
    net->training = 1, net->epoch = 1, net->quant_seed = 0xC0FFEEu;
    qsnn_workspace *ws = NULL;
    cr_assert_eq(qsnn_workspace_create(net, B2, T2, 1, &ws), QSNN_OK);
    static float x[T2 * B2 * F2], grad[T2 * B2 * C2];
    for (int i = 0; i < T2 * B2 * F2; i++) x[i] = (float)((i * 29) % 31) / 31.0f;
    const int y[B2] = {1, 4, 7, 2, 0, 9, 3, 5};
    int pred[B2];
    qsnn_train_cfg tc = {.correct_rate = 0.8f, .incorrect_rate = 0.2f};
    cr_assert_eq(qsnn_net_prepare(net), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(qsnn_forward(net, ws, x, 0, B2), QSNN_OK);
    const qsnn_layer_buf *out = &ws->buf[1];
    qsnn_loss_find("ce_count")->eval(&tc, out->S, out->U, T2, B2, C2, y, grad, pred);
    cr_assert_eq(qsnn_backward(net, ws, grad, NULL), QSNN_OK);
    qsnn_param list[QSNN_MAX_PARAMS];
    const int np = qsnn_net_params(net, list);
    for (int k = 0; k < np; k++) {
        grads[k] = malloc(list[k].n * sizeof(float));
        memcpy(grads[k], list[k].grad, list[k].n * sizeof(float));
        sizes[k] = list[k].n;
        snprintf(names[k], 32, "%.31s", list[k].name);
        if (!strcmp(list[k].name + 7, qsnn_state_lq_name(grid, 0) ? qsnn_state_lq_name(grid, 0) : "-"))
            cr_expect(list[k].grad[0] != 0.0f, "%s: zero gradient", list[k].name);
    }
    *np_out = np;
    qsnn_workspace_destroy(&ws);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

Test(state_lq, one_and_two_threads_give_the_same_gradients) {
    const struct {
        qsnn_grid g;
        const char *neuron;
        qsnn_recurrence rec;
    } cases[] = {{QSNN_GRID_QIL, NULL, QSNN_REC_NONE},
                 {QSNN_GRID_QN, NULL, QSNN_REC_NONE},
                 {QSNN_GRID_CPQ, NULL, QSNN_REC_NONE},
                 {QSNN_GRID_CPQ, "synaptic", QSNN_REC_ONE_TO_ONE}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        float *g1[QSNN_MAX_PARAMS], *g2[QSNN_MAX_PARAMS];
        char n1[QSNN_MAX_PARAMS][32], n2[QSNN_MAX_PARAMS][32];
        size_t s1[QSNN_MAX_PARAMS], s2[QSNN_MAX_PARAMS];
        int np1, np2;
        one_step(1, cases[c].g, cases[c].neuron, cases[c].rec, g1, s1, &np1, n1);
        one_step(2, cases[c].g, cases[c].neuron, cases[c].rec, g2, s2, &np2, n2);
        cr_assert_eq(np1, np2);
        int found = 0;
        for (int k = 0; k < np1; k++) {
            found += strstr(n1[k], qsnn_state_lq_name(cases[c].g, 0)) != NULL;
            int diff = -1;
            const char *nm = n1[k];
            cr_assert(!strcmp(n1[k], n2[k]) && s1[k] == s2[k], "parameter lists differ at %d", k);
            for (size_t i = 0; i < s1[k] && diff < 0; i++)
                if (fbits(g1[k][i]) != fbits(g2[k][i])) diff = (int)i;
            cr_expect(diff < 0, "%s (%s): %s[%d] differs: 1 thread %.9g, 2 threads %.9g", qsnn_grid_name(cases[c].g),
                      cases[c].neuron ? cases[c].neuron : "lif", nm, diff, diff < 0 ? 0.0 : g1[k][diff],
                      diff < 0 ? 0.0 : g2[k][diff]);
            free(g1[k]), free(g2[k]);
        }
        cr_expect_eq(found, 2, "%s: the learned values of both layers are listed", qsnn_grid_name(cases[c].g));
    }
}
