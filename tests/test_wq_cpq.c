/* CPQ weight quantizer (quantizers.md §6, quant/wq_cpq.c): inference against a brute-force nearest
 * kept point, DropBits and sampled gates read back from the forward pass, the backward estimators
 * against an independent double evaluation, the π derivatives against finite differences of the
 * expectation Σ g_k π_k (open end bins), dŴ/dw >= 0 beyond the grid's ends and everywhere on a full
 * grid, the gate penalty in closed form, and thread-count independence. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "quant/weight_quant.h"
#include "test_util.h"

enum { MAXO = 80, MAXI = 64, MAXL = MAXO * 16 };

typedef struct tcase {
    qsnn_weight_quant_cfg cfg;
    const qsnn_weight_quant_ops *ops;
    int out, in, ns;
    float W[MAXO * MAXI], Wq[MAXO * MAXI], scales[MAXO], learned[MAXL], glearned[MAXL], grad[MAXO * MAXI];
    int32_t codes[MAXO * MAXI];
} tcase;

static float *step_of(tcase *c, int g) { return &c->learned[g]; }
static float *noise_of(tcase *c, int g) { return &c->learned[c->ns + g]; }
/* φ_m of scale group g (m = 3..b), from the layout helpers */
static float *phi_of(tcase *c, int g, int m) {
    const size_t off = qsnn_wq_learned_offset(c->ops, &c->cfg, c->ns, 2);
    return &c->learned[off + (size_t)g * qsnn_wq_group_size(c->ops, &c->cfg, 2) + (size_t)(m - 3)];
}
static float *gphi_of(tcase *c, int g, int m) { return phi_of(c, g, m) - c->learned + c->glearned; }

static void setup(tcase *c, int bits, int per_channel, int out, int in, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->ops = qsnn_weight_quant_find("cpq");
    cr_assert_not_null(c->ops);
    c->out = out, c->in = in, c->ns = per_channel ? out : 1;
    c->cfg.bits = bits, c->cfg.granularity = per_channel ? QSNN_WQ_PER_CHANNEL : QSNN_WQ_PER_TENSOR;
    snprintf(c->cfg.method, sizeof c->cfg.method, "cpq");
    c->cfg.lq = qsnn_lq_opts_default();
    c->cfg.learned = c->learned, c->cfg.learned_grad = c->glearned;
    cr_assert_leq(qsnn_wq_learned_total(c->ops, &c->cfg, c->ns), (size_t)MAXL);
    qsnn_rng r;
    qsnn_rng_init(&r, seed, 3);
    for (int i = 0; i < out * in; i++) c->W[i] = 0.4f * (qsnn_rng_uniform(&r) - 0.45f) * (1.0f + (float)(i % 5));
    c->ops->init(&c->cfg, c->W, out, in, c->learned);
}

static void run_fwd(tcase *c) {
    c->ops->forward(&c->cfg, c->W, c->out, c->in, c->Wq, c->scales);
    c->ops->codes(&c->cfg, c->W, c->scales, c->out, c->in, c->codes);
}

/* ---- independent reference (double, brute force) ---- */

static int ref_level(int k, int b) {
    if (k == 0) return 1;
    int t = 0;
    while (k % 2 == 0) k /= 2, t++;
    return b - t;
}

static double ref_sig(double x) { return 1.0 / (1.0 + exp(-x)); }

/* The highest level the gates keep: inference φ > 0, training z_m sampled; consecutive from m = 3. */
static int ref_top(tcase *c, int g) {
    const int b = c->cfg.bits;
    if (!c->cfg.lq.cpq_learn_bits || b == 2) return b;
    int top = 2;
    for (int m = 3; m <= b; m++) {
        const double phi = *phi_of(c, g, m);
        const int z = c->cfg.pass.training
                          ? qsnn_lq_uniform(c->cfg.pass.seed, 0xC0DE0000ull + (uint64_t)g, (uint64_t)m) < ref_sig(10.0 * phi)
                          : phi > 0;
        if (!z) break;
        top = m;
    }
    return top;
}

/* keep[k + 2^(b-1)]: the points surviving this pass in scale group g. */
static void ref_keep(tcase *c, int g, unsigned char *keep) {
    const int b = c->cfg.bits, half = 1 << (b - 1), top = ref_top(c, g);
    for (int k = -half; k < half; k++) {
        const int m = ref_level(k, b);
        int on = m <= top;
        if (on && m >= 3 && c->cfg.pass.training)
            on = qsnn_lq_uniform(c->cfg.pass.seed, (uint64_t)g, (uint64_t)(k + half)) >=
                 c->cfg.lq.cpq_drop * pow(2.0, m - b);
        keep[k + half] = (unsigned char)on;
    }
}

static double ref_alpha(tcase *c, int g) { return *step_of(c, g) > 1e-8f ? *step_of(c, g) : 1e-8f; }

/* The nearest kept point by brute force over all points, ties to the lower (ascending, strict <). */
static int ref_nearest(double w, double alpha, int b, const unsigned char *keep) {
    const int half = 1 << (b - 1);
    int best = 0;
    double bd = INFINITY;
    for (int k = -half; k < half; k++)
        if (keep[k + half] && fabs(w - alpha * k) < bd) bd = fabs(w - alpha * k), best = k;
    return best;
}

Test(wq_cpq, traits) {
    const qsnn_weight_quant_ops *ops = qsnn_weight_quant_find("cpq");
    cr_assert_not_null(ops);
    cr_expect_eq(ops->n_learned, 3);
    cr_expect_str_eq(ops->learned_names[0], "step");
    cr_expect_str_eq(ops->learned_names[1], "noise");
    cr_expect_str_eq(ops->learned_names[2], "gate");
    cr_expect_eq(ops->min_bits, 2);
    cr_expect_eq(ops->no_pow2, 1);
    for (int b = 2; b <= 16; b++) {
        qsnn_weight_quant_cfg cfg = {.bits = b};
        cr_expect_eq(qsnn_wq_group_size(ops, &cfg, 0), 1);
        cr_expect_eq(qsnn_wq_group_size(ops, &cfg, 1), 1);
        cr_expect_eq(qsnn_wq_group_size(ops, &cfg, 2), b - 2 > 1 ? b - 2 : 1, "b = %d", b);
    }
    static tcase c;
    setup(&c, 5, 1, 3, 10, 1);
    for (int g = 0; g < 3; g++) {
        float m = 0;
        for (int i = 0; i < 10; i++) m = fabsf(c.W[g * 10 + i]) > m ? fabsf(c.W[g * 10 + i]) : m;
        cr_expect_eq(*step_of(&c, g), m / 15.0f);
        cr_expect_eq(*noise_of(&c, g), m / 15.0f / 3.0f);
        for (int mm = 3; mm <= 5; mm++) cr_expect_eq(*phi_of(&c, g, mm), 0.3f);
    }
}

Test(wq_cpq, inference_is_the_nearest_kept_point) {
    static tcase c;
    static unsigned char keep[1 << 12];
    const int bl[] = {2, 3, 4, 5, 6, 7, 8, 12};
    int checked = 0, narrowed = 0;
    for (size_t bi = 0; bi < sizeof bl / sizeof *bl; bi++)
        for (int pc = 0; pc < 2; pc++)
            for (int learn = 0; learn < 2; learn++)
                for (int trial = 0; trial < 6; trial++) {
                    const int b = bl[bi];
                    setup(&c, b, pc, 5, 40, 1000 + 10 * b + trial);
                    c.cfg.lq.cpq_learn_bits = learn;
                    qsnn_rng r;
                    qsnn_rng_init(&r, 77 + trial, (uint64_t)b);
                    if (trial > 0)
                        for (int g = 0; g < c.ns; g++)
                            for (int m = 3; m <= b; m++) *phi_of(&c, g, m) = 4.0f * qsnn_rng_uniform(&r) - 1.5f;
                    if (trial == 5) /* a step that puts the largest weights outside the grid */
                        for (int g = 0; g < c.ns; g++) *step_of(&c, g) *= 0.7f;
                    run_fwd(&c);
                    double mean_beff = 0;
                    for (int g = 0; g < c.ns; g++) {
                        const int beff = ref_top(&c, g), sh = b - beff;
                        mean_beff += beff;
                        narrowed += beff < b;
                        if (!learn) cr_assert_eq(beff, b);
                        ref_keep(&c, g, keep);
                        const float alpha = (float)ref_alpha(&c, g);
                        cr_assert_eq(c.scales[g], ldexpf(alpha, sh), "b %d beff %d: scale %a", b, beff, c.scales[g]);
                        const int n = pc ? c.in : c.in * c.out;
                        for (int i = g * n; i < (g + 1) * n; i++) {
                            const int k = ref_nearest(c.W[i], alpha, b, keep);
                            cr_assert_eq(c.Wq[i], (float)((double)alpha * k), "b %d beff %d: w %a -> %a, want k = %d",
                                         b, beff, c.W[i], c.Wq[i], k);
                            cr_assert_eq(c.codes[i], k / (1 << sh));
                            cr_assert_eq(c.Wq[i], c.scales[g] * (float)c.codes[i]);
                            cr_assert(c.codes[i] >= -(1 << (beff - 1)) && c.codes[i] <= (1 << (beff - 1)) - 1,
                                      "code %d at beff %d", c.codes[i], beff);
                            checked++;
                        }
                    }
                    cr_expect_float_eq(c.ops->effective_bits(&c.cfg, c.out, c.in), mean_beff / c.ns, 1e-12);
                }
    cr_expect_gt(checked, 10000);
    cr_expect_gt(narrowed, 20, "the gate settings narrow some groups");
}

Test(wq_cpq, exact_ties_go_to_the_lower_point) {
    static tcase c;
    setup(&c, 4, 0, 1, 17, 5);
    c.cfg.lq.cpq_learn_bits = 1;
    *step_of(&c, 0) = 0.0625f;
    for (int beff = 4; beff >= 3; beff--) {
        *phi_of(&c, 0, 4) = beff == 4 ? 1.0f : -1.0f;
        const int st = 1 << (4 - beff);
        for (int i = 0; i < 17; i++) c.W[i] = 0.0625f * (float)(i * st - 8) + 0.0625f * 0.5f * (float)st;
        c.W[16] = 0.0625f * 8.5f;
        run_fwd(&c);
        for (int i = 0; i < 16 / st; i++) /* midway between two kept points: the lower one */
            cr_expect_eq(c.Wq[i], 0.0625f * (float)(i * st - 8), "beff %d, w %g -> %g", beff, c.W[i], c.Wq[i]);
        /* above the top point: clipped to it */
        cr_expect_eq(c.Wq[16], 0.0625f * (float)(8 - st), "beff %d: %g", beff, c.Wq[16]);
    }
}

/* Weights on every grid point of b = 4 (one row per scale group): a point survived iff Ŵ == W. */
static void grid_rows(tcase *c, float alpha) {
    for (int g = 0; g < c->ns; g++) {
        *step_of(c, g) = alpha, *noise_of(c, g) = alpha / 3;
        for (int i = 0; i < c->in; i++) c->W[g * c->in + i] = alpha * (float)(i - c->in / 2);
    }
}

Test(wq_cpq, dropbits_masks) {
    static tcase c, d;
    static unsigned char keep[16];
    setup(&c, 4, 1, 64, 16, 2);
    grid_rows(&c, 0.25f);
    c.cfg.lq.cpq_drop = 0.5;
    c.cfg.pass.training = 1, c.cfg.pass.seed = 12345;
    run_fwd(&c);
    int dropped = 0;
    for (int g = 0; g < 64; g++) {
        ref_keep(&c, g, keep);
        cr_assert_eq(c.scales[g], 0.25f);
        for (int i = 0; i < 16; i++) {
            const int k = i - 8, j = g * 16 + i;
            cr_assert_eq(c.Wq[j] == c.W[j], keep[i], "row %d, k %d", g, k);
            if (ref_level(k, 4) <= 2) cr_assert_eq(c.Wq[j], c.W[j], "a 2-bit point was dropped: k %d", k);
            cr_assert_eq(c.Wq[j], 0.25f * (float)ref_nearest(c.W[j], 0.25, 4, keep), "row %d, k %d", g, k);
            cr_assert_eq(c.Wq[j], c.scales[g] * (float)c.codes[j]);
            dropped += !keep[i];
        }
    }
    cr_expect_gt(dropped, 100);
    /* the same seed: the same Ŵ; another seed: another mask */
    memcpy(&d, &c, sizeof c);
    d.cfg.learned = d.learned, d.cfg.learned_grad = d.glearned;
    run_fwd(&d);
    cr_expect_eq(memcmp(c.Wq, d.Wq, sizeof c.Wq), 0);
    d.cfg.pass.seed = 12346;
    run_fwd(&d);
    int differ = 0;
    for (int j = 0; j < 64 * 16; j++) differ += c.Wq[j] != d.Wq[j];
    cr_expect_gt(differ, 50);
    /* not training: nothing dropped, scale α */
    d.cfg.pass.training = 0;
    run_fwd(&d);
    cr_expect_eq(memcmp(d.Wq, d.W, sizeof(float) * 64 * 16), 0);
}

Test(wq_cpq, drop_frequency_per_level) {
    static tcase c;
    setup(&c, 4, 1, 64, 16, 3);
    grid_rows(&c, 0.25f);
    const double drop = 0.3;
    c.cfg.lq.cpq_drop = drop;
    c.cfg.pass.training = 1;
    long n[5] = {0}, gone[5] = {0};
    for (int s = 0; s < 40; s++) {
        c.cfg.pass.seed = 0x1234567ull * (uint64_t)(s + 1);
        run_fwd(&c);
        for (int j = 0; j < 64 * 16; j++) {
            const int m = ref_level(j % 16 - 8, 4);
            n[m]++, gone[m] += c.Wq[j] != c.W[j];
        }
    }
    cr_expect_eq(gone[1] + gone[2], 0, "levels <= 2 are never dropped");
    for (int m = 3; m <= 4; m++) { /* probability drop·2^(m-b), binomial tolerance 5 standard deviations */
        const double p = drop * pow(2.0, m - 4), sd = sqrt(n[m] * p * (1 - p));
        cr_expect(fabs(gone[m] - n[m] * p) < 5 * sd, "level %d: %ld of %ld dropped, expected %g", m, gone[m], n[m],
                  n[m] * p);
    }
}

Test(wq_cpq, sampled_gates_close_whole_levels) {
    static tcase c;
    static unsigned char keep[16];
    setup(&c, 4, 1, 64, 16, 4);
    grid_rows(&c, 0.25f);
    c.cfg.lq.cpq_learn_bits = 1, c.cfg.lq.cpq_drop = 0.0;
    c.cfg.pass.training = 1;
    for (int g = 0; g < 64; g++) *phi_of(&c, g, 3) = 0.0f, *phi_of(&c, g, 4) = 0.1f; /* p 0.5, 0.73 */
    long rows = 0, l3 = 0, l4 = 0;
    for (int s = 0; s < 40; s++) {
        c.cfg.pass.seed = 0xABCDull * (uint64_t)(s + 7);
        run_fwd(&c);
        for (int g = 0; g < 64; g++) {
            ref_keep(&c, g, keep);
            int n3 = 0, n4 = 0;
            for (int i = 0; i < 16; i++) {
                const int j = g * 16 + i, m = ref_level(i - 8, 4);
                cr_assert_eq(c.Wq[j] == c.W[j], keep[i]);
                n3 += m == 3 && c.Wq[j] == c.W[j], n4 += m == 4 && c.Wq[j] == c.W[j];
            }
            cr_assert(n3 == 0 || n3 == 4, "a gate keeps or removes the whole level: %d", n3);
            cr_assert(n4 == 0 || n4 == 8);
            cr_assert(!(n4 && !n3), "level 4 without level 3");
            rows++, l3 += n3 == 4, l4 += n4 == 8;
        }
    }
    const double p3 = 0.5, p4 = 0.5 * ref_sig(1.0);
    cr_expect(fabs(l3 - rows * p3) < 5 * sqrt(rows * p3 * (1 - p3)), "level 3 kept %ld of %ld", l3, rows);
    cr_expect(fabs(l4 - rows * p4) < 5 * sqrt(rows * p4 * (1 - p4)), "level 4 kept %ld of %ld", l4, rows);
}

/* Independent double evaluation of the backward formulas, summed over all points (no window: the
 * implementation's cut-off tail must stay at the 1e-5 level of the terms' magnitude). */
typedef struct refgrad {
    double gw[MAXO * MAXI], da[MAXO], ds[MAXO], dphi[MAXO][17];
    double mag_a[MAXO], mag_s[MAXO], mag_p[MAXO][17];
} refgrad;

static void ref_backward(tcase *c, const float *gq, refgrad *R) {
    static unsigned char keep[1 << 12];
    const int b = c->cfg.bits, half = 1 << (b - 1), pc = c->ns > 1;
    const int gated = c->cfg.lq.cpq_learn_bits && b > 2;
    memset(R, 0, sizeof *R);
    for (int g = 0; g < c->ns; g++) {
        ref_keep(c, g, keep);
        const double al = ref_alpha(c, g), s0 = *noise_of(c, g), sg = s0 > 1e-3 * al ? s0 : 1e-3 * al;
        double dP[17] = {0}, magP[17] = {0};
        int klo = -half, khi = half - 1; /* open end bins: no b terms for klo, no a terms for khi */
        while (!keep[klo + half]) klo++;
        while (!keep[khi + half]) khi--;
        const int n = pc ? c->in : c->in * c->out;
        for (int i = g * n; i < (g + 1) * n; i++) {
            const double w = c->W[i];
            const int ks = ref_nearest(w, al, b, keep);
            const double wq = (float)(al * ks);
            double dw = 0, da = ks, ds = 0;
            for (int k = -half; k < half; k++) {
                const double gk = al * k;
                const double a = (gk + al / 2 - w) / sg, bb = (gk - al / 2 - w) / sg;
                const double sa = ref_sig(a), sb = ref_sig(bb);
                const double da_ = k == khi ? 0.0 : sa * (1 - sa), db_ = k == klo ? 0.0 : sb * (1 - sb);
                if (keep[k + half]) {
                    dw += gk * -(da_ - db_) / sg;
                    da += gk * (da_ * (k + 0.5) - db_ * (k - 0.5)) / sg;
                    ds += gk * -(da_ * a - db_ * bb) / sg;
                }
                const int m = ref_level(k, b);
                if (gated && m >= 3) dP[m] += gq[i] * (sa - sb) * (gk - wq), magP[m] += fabs(gq[i] * (sa - sb) * (gk - wq));
            }
            R->gw[i] = gq[i] * dw;
            R->da[g] += gq[i] * da, R->mag_a[g] += fabs(gq[i] * da);
            R->ds[g] += gq[i] * ds, R->mag_s[g] += fabs(gq[i] * ds);
        }
        if (!gated) continue;
        const double lam = c->cfg.lq.cpq_bit_penalty;
        double p[17], P[17];
        for (int m = 3; m <= b; m++) p[m] = ref_sig(10.0 * *phi_of(c, g, m)), P[m] = (m > 3 ? P[m - 1] : 1.0) * p[m];
        for (int j = 3; j <= b; j++)
            for (int m = j; m <= b; m++) {
                R->dphi[g][j] += 10.0 * (dP[m] + lam * pow(2.0, m - 1)) * P[m] * (1 - p[j]);
                R->mag_p[g][j] += 10.0 * (magP[m] + lam * pow(2.0, m - 1)) * P[m] * (1 - p[j]);
            }
    }
}

static void check_backward(tcase *c, int training, uint64_t seed) {
    static float gq[MAXO * MAXI];
    static refgrad R;
    const int N = c->out * c->in, b = c->cfg.bits;
    qsnn_rng r;
    qsnn_rng_init(&r, seed, 9);
    for (int i = 0; i < N; i++) gq[i] = qsnn_rng_uniform(&r) - 0.5f;
    c->cfg.pass.training = training, c->cfg.pass.seed = seed;
    run_fwd(c);
    ref_backward(c, gq, &R);
    memcpy(c->grad, gq, sizeof(float) * N);
    for (size_t t = 0; t < MAXL; t++) c->glearned[t] = NAN; /* everything must be written */
    c->ops->backward(&c->cfg, c->W, c->scales, c->out, c->in, c->grad);
    for (int i = 0; i < N; i++)
        cr_assert_float_eq(c->grad[i], R.gw[i], 1e-5 * (1 + fabs(R.gw[i])), "b %d train %d: dW[%d] %g vs %g", b,
                           training, i, c->grad[i], R.gw[i]);
    for (int g = 0; g < c->ns; g++) {
        cr_assert_float_eq(c->glearned[g], R.da[g], 1e-5 * (1 + R.mag_a[g]), "b %d train %d: dα[%d] %g vs %g", b,
                           training, g, c->glearned[g], R.da[g]);
        cr_assert_float_eq(c->glearned[c->ns + g], R.ds[g], 1e-5 * (1 + R.mag_s[g]), "b %d train %d: dσ[%d] %.9g vs %.9g mag %g",
                           b, training, g, c->glearned[c->ns + g], R.ds[g], R.mag_s[g]);
        for (int m = 3; m <= b; m++)
            cr_assert_float_eq(*gphi_of(c, g, m), R.dphi[g][m], 1e-5 * (1e-6 + R.mag_p[g][m]),
                               "b %d train %d: dφ_%d[%d] %g vs %g", b, training, m, g, *gphi_of(c, g, m), R.dphi[g][m]);
    }
    const size_t tot = qsnn_wq_learned_total(c->ops, &c->cfg, c->ns);
    for (size_t t = 0; t < tot; t++) cr_assert(isfinite(c->glearned[t]), "learned gradient %zu not written", t);
}

Test(wq_cpq, estimators_match_an_independent_evaluation) {
    static tcase c;
    const int bl[] = {2, 3, 4, 6};
    for (size_t bi = 0; bi < 4; bi++)
        for (int pc = 0; pc < 2; pc++)
            for (int learn = 0; learn < 2; learn++)
                for (int training = 0; training < 2; training++) {
                    const int b = bl[bi];
                    setup(&c, b, pc, 4, 60, 300 + b);
                    c.cfg.lq.cpq_learn_bits = learn, c.cfg.lq.cpq_drop = 0.4, c.cfg.lq.cpq_bit_penalty = 3e-3;
                    qsnn_rng r;
                    qsnn_rng_init(&r, 31, (uint64_t)b);
                    for (int g = 0; g < c.ns; g++) {
                        *noise_of(&c, g) = *step_of(&c, g) * (0.2f + 0.5f * qsnn_rng_uniform(&r));
                        for (int m = 3; m <= b; m++) *phi_of(&c, g, m) = 3.0f * qsnn_rng_uniform(&r) - 0.5f;
                    }
                    check_backward(&c, training, 4242 + (uint64_t)b);
                    if (!learn)
                        for (int g = 0; g < c.ns; g++)
                            for (int m = 3; m <= b; m++) cr_assert_eq(*gphi_of(&c, g, m), 0.0f);
                }
}

/* E(w, α, σ) = Σ_k g_k π_k with the g_k held at α0: its derivatives are the π part of the estimator.
 * Open end bins: the lowest point's π has no s(b) term, the highest one's s(a) is 1. */
static double expect_pi(double w, double al, double sg, double al0, int b) {
    const int half = 1 << (b - 1);
    double e = 0;
    for (int k = -half; k < half; k++)
        e += al0 * k * ((k == half - 1 ? 1.0 : ref_sig((al * k + al / 2 - w) / sg)) -
                        (k == -half ? 0.0 : ref_sig((al * k - al / 2 - w) / sg)));
    return e;
}

Test(wq_cpq, pi_derivatives_match_finite_differences) {
    static tcase c;
    /* σ = 0.003 << α/2 with weights near bin edges (0.0512, -0.2493, 0.349): the terms that matter
     * belong to points α/2 away, farther than 12σ */
    const double ws[] = {-0.83, -0.41, -0.2493, -0.2, -0.051, 0.0, 0.033, 0.0512, 0.149, 0.27, 0.349, 0.5, 0.66, 0.74, 0.9};
    const float sgs[] = {0.003f, 0.02f, 0.035f, 0.06f};
    int checked = 0;
    for (int si = 0; si < 4; si++)
        for (size_t wi = 0; wi < sizeof ws / sizeof *ws; wi++) {
            setup(&c, 4, 0, 1, 1, 1);
            *step_of(&c, 0) = 0.1f, *noise_of(&c, 0) = sgs[si];
            c.W[0] = (float)ws[wi];
            run_fwd(&c);
            c.grad[0] = 1.0f;
            c.ops->backward(&c.cfg, c.W, c.scales, 1, 1, c.grad);
            const double w = c.W[0], al = 0.1f, sg = sgs[si], h = 1e-6;
            const double fw = (expect_pi(w + h, al, sg, al, 4) - expect_pi(w - h, al, sg, al, 4)) / (2 * h);
            const double fa = (expect_pi(w, al + h, sg, al, 4) - expect_pi(w, al - h, sg, al, 4)) / (2 * h);
            const double fs = (expect_pi(w, al, sg + h, al, 4) - expect_pi(w, al, sg - h, al, 4)) / (2 * h);
            const double ks = c.codes[0]; /* inference, full grid: the code is k* */
            cr_expect_float_eq(c.grad[0], fw, 1e-4 * (1 + fabs(fw)), "w %g σ %g: dw %g vs fd %g", w, sg, c.grad[0], fw);
            cr_expect_float_eq(c.glearned[0] - ks, fa, 1e-4 * (1 + fabs(fa) + fabs(ks)), "w %g σ %g: dα-k* %g vs fd %g",
                               w, sg, c.glearned[0] - ks, fa);
            cr_expect_float_eq(c.glearned[1], fs, 1e-4 * (1 + fabs(fs)), "w %g σ %g: dσ %g vs fd %g", w, sg,
                               c.glearned[1], fs);
            checked += fabs(fw) > 0.1;
        }
    cr_expect_gt(checked, 10, "the smooth staircase has slope somewhere");
}

/* Open end bins: beyond the outer edges of the surviving points dŴ/dw >= 0, falling to 0 far outside (closed
 * end bins gave ≈ -g_max/(4σ) there); with every point kept dŴ/dw = (α/σ)Σ_edges s'(x_e) >= 0 everywhere.
 * b = 4 (the tables) and 12 (the per-point sums); inference (all kept) and DropBits passes. */
Test(wq_cpq, open_end_bins_saturate) {
    static tcase c;
    static unsigned char keep[1 << 12];
    const int bl[] = {4, 12};
    int outside = 0;
    for (int bi = 0; bi < 2; bi++)
        for (int training = 0; training < 2; training++)
            for (int si = 0; si < 2; si++) {
                const int b = bl[bi], half = 1 << (b - 1), N = 80 * 64;
                setup(&c, b, 0, 80, 64, 17);
                const double al = 0.01, sg = si ? al / 2 : al / 3;
                *step_of(&c, 0) = (float)al, *noise_of(&c, 0) = (float)sg;
                c.cfg.lq.cpq_drop = 0.9, c.cfg.pass.training = training, c.cfg.pass.seed = 55 + (uint64_t)si;
                do /* a pass that drops the top point (probability 0.9) */
                    ref_keep(&c, 0, keep);
                while (training && keep[2 * half - 1] && c.cfg.pass.seed++ < 100);
                int klo = -half, khi = half - 1;
                while (!keep[klo + half]) klo++;
                while (!keep[khi + half]) khi--;
                if (training) cr_assert_lt(khi, half - 1, "b %d: the top point should be dropped in this pass", b);
                const double alf = (float)al, sgf = (float)sg, top = alf * (khi + 0.5), bot = alf * (klo - 0.5);
                for (int i = 0; i < N; i++) {
                    if (training || i % 2) { /* beyond the outer edges: up to 40σ, both sides */
                        const double d = sgf * 40.0 * (i / 2) / (N / 2);
                        c.W[i] = (float)(i % 4 < 2 ? top + d : bot - d);
                    } else { /* densely over the grid and a little beyond */
                        c.W[i] = (float)(alf * (half + 3) * (2.0 * i / N - 1.0));
                    }
                }
                run_fwd(&c);
                for (int i = 0; i < N; i++) c.grad[i] = 1.0f;
                c.ops->backward(&c.cfg, c.W, c.scales, 80, 64, c.grad);
                for (int i = 0; i < N; i++) {
                    const double w = c.W[i], slope = alf / sgf;
                    const int beyond = w >= top || w <= bot;
                    const double far = beyond ? fmin(fabs(w - top), fabs(w - bot)) / sgf : 0.0;
                    outside += beyond;
                    if (beyond || !training)
                        cr_assert_geq(c.grad[i], training ? -1e-6 * slope : 0.0, "b %d train %d σ %g: w %.9g (%.1fσ out): dŴ/dw %g",
                                      b, training, sgf, w, far, c.grad[i]);
                    if (far > 20.0)
                        cr_assert_leq(fabs(c.grad[i]), 1e-6 * slope, "b %d train %d: w %.9g (%.1fσ out): dŴ/dw %g", b,
                                      training, w, far, c.grad[i]);
                    if (!training) { /* the closed form over the 2^b - 1 internal edges */
                        double want = 0;
                        for (int k = -half; k < half - 1; k++) {
                            const double s = ref_sig((alf * (k + 0.5) - w) / sgf);
                            want += slope * s * (1 - s);
                        }
                        cr_assert_float_eq(c.grad[i], want, 1e-5 * (1 + want), "b %d σ %g: w %.9g: dŴ/dw %g, want %g", b,
                                           sgf, w, c.grad[i], want);
                    }
                }
            }
    cr_expect_gt(outside, 20000);
}

Test(wq_cpq, bit_penalty_closes_gates) {
    static tcase c;
    setup(&c, 5, 1, 3, 20, 8);
    c.cfg.lq.cpq_learn_bits = 1, c.cfg.lq.cpq_bit_penalty = 0.01;
    const float phis[3][3] = {{1.0f, -0.5f, 2.0f}, {3.0f, 3.0f, 3.0f}, {-2.0f, 0.3f, 0.0f}};
    for (int g = 0; g < 3; g++)
        for (int m = 3; m <= 5; m++) *phi_of(&c, g, m) = phis[g][m - 3];
    for (int training = 0; training < 2; training++) {
        c.cfg.pass.training = training, c.cfg.pass.seed = 99;
        run_fwd(&c);
        memset(c.grad, 0, sizeof c.grad); /* zero upstream gradient: only the penalty */
        c.ops->backward(&c.cfg, c.W, c.scales, 3, 20, c.grad);
        for (int g = 0; g < 3; g++)
            for (int j = 3; j <= 5; j++) {
                double want = 0, P = 1;
                const double pj = 1 / (1 + exp(-10.0 * phis[g][j - 3]));
                for (int m = 3; m <= 5; m++) {
                    P *= 1 / (1 + exp(-10.0 * phis[g][m - 3]));
                    if (m >= j) want += 10.0 * 0.01 * ldexp(1.0, m - 1) * P * (1 - pj);
                }
                cr_expect_gt(*gphi_of(&c, g, j), 0.0f, "descent closes gates: dφ_%d = %g", j, *gphi_of(&c, g, j));
                cr_expect_float_eq(*gphi_of(&c, g, j), want, 1e-6 * want, "group %d dφ_%d %g vs %g", g, j,
                                   *gphi_of(&c, g, j), want);
            }
        cr_expect_eq(c.glearned[0], 0.0f);
    }
}

Test(wq_cpq, closed_gates_narrow_the_codes) {
    static tcase c;
    setup(&c, 4, 0, 4, 50, 11);
    c.cfg.lq.cpq_learn_bits = 1;
    const float alpha = *step_of(&c, 0);
    c.W[1] = -1.2f * 7.0f * alpha; /* below the grid: the lowest code is used too */
    struct { float p3, p4; int beff; } cases[] = {{2.0f, -0.1f, 3}, {-0.1f, 2.0f, 2}, {0.5f, 0.5f, 4}};
    for (int t = 0; t < 3; t++) {
        *phi_of(&c, 0, 3) = cases[t].p3, *phi_of(&c, 0, 4) = cases[t].p4;
        run_fwd(&c);
        const int beff = cases[t].beff, lo = -(1 << (beff - 1)), hi = (1 << (beff - 1)) - 1;
        int32_t cmin = 99, cmax = -99;
        for (int i = 0; i < 200; i++) {
            cr_assert(c.codes[i] >= lo && c.codes[i] <= hi, "beff %d: code %d", beff, c.codes[i]);
            cr_assert_eq(c.Wq[i], c.scales[0] * (float)c.codes[i]);
            cmin = c.codes[i] < cmin ? c.codes[i] : cmin, cmax = c.codes[i] > cmax ? c.codes[i] : cmax;
        }
        cr_expect_eq(cmin, lo, "beff %d: the whole range is used", beff);
        cr_expect_eq(cmax, hi);
        cr_expect_eq(c.scales[0], ldexpf(alpha, 4 - beff));
        cr_expect_eq(c.ops->effective_bits(&c.cfg, 4, 50), (double)beff);
    }
    c.cfg.lq.cpq_learn_bits = 0; /* gates unused: all b bits */
    cr_expect_eq(c.ops->effective_bits(&c.cfg, 4, 50), 4.0);
}

Test(wq_cpq, gradients_do_not_depend_on_the_thread_count) {
    static tcase c;
    static float g1[MAXO * MAXI], q1[MAXO * MAXI], l1[MAXL];
    for (int pc = 0; pc < 2; pc++)
        for (int training = 0; training < 2; training++) {
            setup(&c, 5, pc, 75, 30, 21);
            c.cfg.lq.cpq_learn_bits = 1, c.cfg.lq.cpq_drop = 0.4, c.cfg.lq.cpq_bit_penalty = 1e-3;
            c.cfg.pass.training = training, c.cfg.pass.seed = 777;
            for (int g = 0; g < c.ns; g++) *phi_of(&c, g, 4) = 0.2f, *phi_of(&c, g, 5) = -0.1f + 0.01f * g;
            const size_t tot = qsnn_wq_learned_total(c.ops, &c.cfg, c.ns);
            for (int th = 1; th <= 2; th++) {
                omp_set_num_threads(th);
                run_fwd(&c);
                for (int i = 0; i < 75 * 30; i++) c.grad[i] = sinf((float)i);
                c.ops->backward(&c.cfg, c.W, c.scales, 75, 30, c.grad);
                if (th == 1) {
                    memcpy(g1, c.grad, sizeof g1), memcpy(q1, c.Wq, sizeof q1), memcpy(l1, c.glearned, sizeof l1);
                } else {
                    cr_expect_eq(memcmp(q1, c.Wq, sizeof q1), 0, "pc %d: Ŵ", pc);
                    cr_expect_eq(memcmp(g1, c.grad, sizeof g1), 0, "pc %d: dW", pc);
                    cr_expect_eq(memcmp(l1, c.glearned, tot * sizeof(float)), 0, "pc %d: learned", pc);
                }
            }
        }
}

Test(wq_cpq, extreme_widths_and_bad_values_stay_finite) {
    static tcase c;
    setup(&c, 16, 0, 2, 20, 5);
    c.cfg.lq.cpq_learn_bits = 1, c.cfg.lq.cpq_drop = 1.0;
    c.cfg.pass.training = 1, c.cfg.pass.seed = 3;
    c.W[0] = NAN, c.W[1] = 1e30f;
    *noise_of(&c, 0) = -1.0f; /* guarded to 1e-3·α */
    run_fwd(&c);
    const float top = 32768.0f * *step_of(&c, 0);
    for (int i = 0; i < 40; i++) {
        cr_expect(isfinite(c.Wq[i]) && fabsf(c.Wq[i]) <= top, "Wq[%d] = %g", i, c.Wq[i]);
        cr_expect(c.codes[i] >= -32768 && c.codes[i] <= 32767, "code %d", c.codes[i]);
    }
    cr_expect_eq(c.Wq[0], -top, "NaN: the lowest point");
    cr_expect_lt(c.Wq[1], top, "clipped to the highest surviving point (the top level is dropped)");
    for (int i = 0; i < 40; i++) c.grad[i] = 1.0f;
    c.ops->backward(&c.cfg, c.W, c.scales, 2, 20, c.grad);
    for (int i = 2; i < 40; i++) cr_expect(isfinite(c.grad[i]));
}
