/* Quantization Networks weight quantizer (quant/wq_qn.c, quantizers.md §5): k-means breakpoints, the
 * soft staircase and its gradients against an independent double-precision evaluation (and central
 * differences of it), the hard staircase as the soft one's limit, the temperature schedule, and
 * thread-count independence. Learned layout: alpha [ns], beta [ns], breakpoints [ns][2qD]. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "quant/weight_quant.h"
#include "test_util.h"

static const qsnn_weight_quant_ops *qn(void) {
    const qsnn_weight_quant_ops *ops = qsnn_weight_quant_find("qn");
    cr_assert_not_null(ops);
    return ops;
}

static qsnn_weight_quant_cfg make_cfg(int bits, int per_channel, float *learned, float *glearned) {
    qsnn_weight_quant_cfg cfg = {.bits = bits, .granularity = per_channel ? QSNN_WQ_PER_CHANNEL : QSNN_WQ_PER_TENSOR};
    snprintf(cfg.method, sizeof cfg.method, "qn");
    cfg.lq = qsnn_lq_opts_default();
    cfg.learned = learned, cfg.learned_grad = glearned;
    return cfg;
}

/* The soft staircase of §5 in double, every term evaluated: α(Σσ(z_i) - qD), z_i = T(x - b_i) with a
 * clamped term (|z| >= 10) counted as 1 or 0 and left out of *dsum = Σσ(1-σ). */
static double ref_soft(const float *b, int qd, double alpha, double x, double T, double *dsum) {
    double s = 0.0, d = 0.0;
    for (int i = 0; i < 2 * qd; i++) {
        const double z = T * (x - (double)b[i]);
        if (z >= 10.0) s += 1.0;
        else if (z > -10.0) {
            const double e = 1.0 / (1.0 + exp(-z));
            s += e, d += e * (1.0 - e);
        }
    }
    if (dsum) *dsum = d;
    return alpha * (s - qd);
}

/* Smallest distance of any |z_i| to the clamp edge 10 (central differences must not straddle it). */
static double clamp_margin(const float *b, int qd, double x, double T) {
    double m = INFINITY;
    for (int i = 0; i < 2 * qd; i++) m = fmin(m, fabs(fabs(T * (x - (double)b[i])) - 10.0));
    return m;
}

static void random_weights(float *W, int n, uint64_t seed, float amp) {
    qsnn_rng r;
    qsnn_rng_init(&r, seed, 0);
    for (int i = 0; i < n; i++) W[i] = amp * (2.0f * qsnn_rng_uniform(&r) - 1.0f) * (0.3f + qsnn_rng_uniform(&r));
}

Test(wq_qn, traits_and_layout) {
    const qsnn_weight_quant_ops *ops = qn();
    float l[1];
    const qsnn_weight_quant_cfg cfg = make_cfg(4, 1, l, l);
    cr_expect_eq(ops->n_learned, 3);
    cr_expect_str_eq(ops->learned_names[0], "alpha");
    cr_expect_str_eq(ops->learned_names[1], "beta");
    cr_expect_str_eq(ops->learned_names[2], "breakpoints");
    cr_expect_eq(ops->frozen, 4u);
    cr_expect_eq(ops->min_bits, 2);
    cr_expect_eq(ops->no_pow2, 1);
    cr_expect_eq(qsnn_wq_group_size(ops, &cfg, 0), 1);
    cr_expect_eq(qsnn_wq_group_size(ops, &cfg, 2), 14); /* n = 2qD = 2^b - 2 */
    cr_expect_eq(qsnn_wq_learned_total(ops, &cfg, 5), 5u * 16u);
}

/* Ternary (2 bits): three obvious clumps; β = 1.25/max|w| = 1.25 puts them at -1, 0.125, 1.125 (means),
 * so k-means from the levels {-1, 0, 1} ends at those means and b = {-0.4375, 0.625}. Per channel, every
 * row is the same pattern times (r + 1): the same scaled positions, the same breakpoints. */
Test(wq_qn, kmeans_breakpoints_fall_between_obvious_clusters) {
    const qsnn_weight_quant_ops *ops = qn();
    const float pat[9] = {-1.0f, -0.8f, -0.6f, 0.05f, 0.1f, 0.15f, 0.8f, 0.9f, 1.0f};
    for (int pc = 0; pc < 2; pc++) {
        const int out = 3;
        float W[27], learned[3 * 4], g[3 * 4];
        for (int r = 0; r < out; r++)
            for (int i = 0; i < 9; i++) W[r * 9 + i] = pc ? pat[(i * 4) % 9] * (float)(r + 1) : pat[(r * 9 + i) % 9];
        qsnn_weight_quant_cfg cfg = make_cfg(2, pc, learned, g);
        ops->init(&cfg, W, out, 9, learned);
        const int ns = pc ? out : 1;
        for (int j = 0; j < ns; j++) {
            const double mx = pc ? j + 1.0 : 1.0;
            cr_expect_float_eq(learned[ns + j], 1.25 / mx, 1e-6 / mx, "beta %g", learned[ns + j]);
            cr_expect_float_eq(learned[j], mx / 1.25, 1e-6 * mx, "alpha %g", learned[j]);
            const float *b = learned + 2 * ns + 2 * j;
            cr_expect_float_eq(b[0], -0.4375, 1e-6, "row %d: b1 = %.9g", j, b[0]);
            cr_expect_float_eq(b[1], 0.625, 1e-6, "row %d: b2 = %.9g", j, b[1]);
        }
    }
    /* nothing below 0: the lowest cluster stays empty and keeps its centre -1; centres -1, 0, 1.225 */
    float W2[6] = {0.96f, 0.98f, 1.0f, -0.02f, 0.0f, 0.02f}, l2[4], g2[4];
    qsnn_weight_quant_cfg cfg = make_cfg(2, 0, l2, g2);
    ops->init(&cfg, W2, 1, 6, l2);
    cr_expect_float_eq(l2[2], -0.5, 1e-6, "%.9g", l2[2]);
    cr_expect_float_eq(l2[3], 0.6125, 1e-6, "%.9g", l2[3]);
}

/* 3 bits: seven clumps off the initial levels -3..3 (scaled positions; each nearest to its own level),
 * one breakpoint in every gap. */
Test(wq_qn, kmeans_moves_breakpoints_into_every_gap) {
    const qsnn_weight_quant_ops *ops = qn();
    const double centre[7] = {-3.6, -2.3, -0.8, -0.2, 0.7, 2.2, 3.1}; /* scaled: β = 3.75 / max|w| */
    enum { PER = 5 };
    float W[7 * PER], learned[2 + 6], g[8];
    for (int k = 0; k < 7; k++)
        for (int i = 0; i < PER; i++) W[k * PER + i] = (float)((centre[k] + 0.04 * (i - 2)) / 3.75);
    W[2] = -1.0f; /* max|w| = 1 exactly: β = 3.75 */
    qsnn_weight_quant_cfg cfg = make_cfg(3, 0, learned, g);
    ops->init(&cfg, W, 1, 7 * PER, learned);
    cr_assert_float_eq(learned[1], 3.75, 1e-6);
    const float *b = learned + 2;
    for (int k = 0; k < 6; k++) {
        double hi = -INFINITY, lo = INFINITY;
        for (int i = 0; i < PER; i++) {
            hi = fmax(hi, learned[1] * W[k * PER + i]);
            lo = fmin(lo, learned[1] * W[(k + 1) * PER + i]);
        }
        cr_expect(b[k] > hi && b[k] < lo, "gap %d: (%g, %g) but b = %g", k, hi, lo, b[k]);
    }
    /* and each weight's hard code is its clump's index - 3 */
    float Wq[7 * PER], sc[1];
    int32_t c[7 * PER];
    ops->forward(&cfg, W, 1, 7 * PER, Wq, sc);
    ops->codes(&cfg, W, sc, 1, 7 * PER, c);
    for (int i = 0; i < 7 * PER; i++) cr_expect_eq(c[i], i / PER - 3, "w %g: code %d", W[i], c[i]);
}

enum { GO = 5, GI = 40 };

/* Gradients of L = Σ c_w Ŵ(w) at several temperatures against central differences of the double
 * reference (which the float training forward must match first). α and β are moved off their init
 * (α·β != 1) so every factor of the formulas shows. */
Test(wq_qn, soft_forward_and_gradients_match_finite_differences) {
    const qsnn_weight_quant_ops *ops = qn();
    const int epochs[3] = {0, 4, 19}; /* T = 10, 50, 200 */
    int active_total = 0, skipped = 0;
    for (int bits = 2; bits <= 4; bits += 2)
        for (int pc = 0; pc < 2; pc++)
            for (int e = 0; e < 3; e++) {
                const int ns = pc ? GO : 1, qd = (1 << (bits - 1)) - 1, nb = 2 * qd;
                static float W[GO * GI], Wq[GO * GI], grad[GO * GI], learned[GO * 16], gl[GO * 16];
                static double c[GO * GI];
                float sc[GO];
                random_weights(W, GO * GI, 40 + bits, 0.2f);
                qsnn_weight_quant_cfg cfg = make_cfg(bits, pc, learned, gl);
                ops->init(&cfg, W, GO, GI, learned);
                for (int j = 0; j < ns; j++) learned[j] *= 1.3f, learned[ns + j] *= 0.9f;
                cfg.pass = (qsnn_lq_pass){.training = 1, .epoch = epochs[e], .seed = 5};
                const double T = qsnn_qn_temperature(&cfg.lq, epochs[e]);
                ops->forward(&cfg, W, GO, GI, Wq, sc);
                qsnn_rng r;
                qsnn_rng_init(&r, 3, (uint64_t)e);
                for (int i = 0; i < GO * GI; i++) c[i] = 2.0 * qsnn_rng_uniform(&r) - 1.0, grad[i] = (float)c[i];
                ops->backward(&cfg, W, sc, GO, GI, grad);
                double da[GO] = {0}, db[GO] = {0};
                for (int i = 0; i < GO * GI; i++) {
                    const int j = pc ? i / GI : 0;
                    const float *b = learned + 2 * ns + (size_t)j * nb;
                    const double a = learned[j], be = learned[ns + j], w = W[i];
                    cr_expect_eq(sc[j], learned[j]);
                    /* the float forward, from its own x = fl(β·w) */
                    double d;
                    const double want = ref_soft(b, qd, a, (double)(learned[ns + j] * W[i]), T, &d);
                    cr_assert_float_eq(Wq[i], want, 2e-6 * (fabs(want) + a), "%d bits T %g: Wq %g vs %g", bits, T,
                                       Wq[i], want);
                    active_total += d > 1e-3;
                    /* central differences in w, α, β of the double reference; a weight whose differences
                     * would straddle a clamp edge (a 4.5e-5 step) takes the closed form instead */
                    double fw, fb, fa;
                    if (clamp_margin(b, qd, be * w, T) < 1e-4) {
                        double dd;
                        fa = ref_soft(b, qd, 1.0, be * w, T, &dd);
                        fw = a * be * T * dd, fb = a * T * w * dd;
                        skipped++;
                    } else {
                        const double hw = 1e-5 / (be * T), hb = 1e-5 * be / (T * fmax(fabs(be * w), 1.0));
                        fw = (ref_soft(b, qd, a, be * (w + hw), T, NULL) - ref_soft(b, qd, a, be * (w - hw), T, NULL)) / (2 * hw);
                        fb = (ref_soft(b, qd, a, (be + hb) * w, T, NULL) - ref_soft(b, qd, a, (be - hb) * w, T, NULL)) / (2 * hb);
                        fa = (ref_soft(b, qd, a * 1.001, be * w, T, NULL) - ref_soft(b, qd, a * 0.999, be * w, T, NULL)) / (0.002 * a);
                    }
                    const double scale = a * be * T * 0.25;
                    cr_expect_float_eq(grad[i], c[i] * fw, 1e-4 * scale + 1e-5 * fabs(c[i] * fw),
                                       "%d bits T %g: dW[%d] %g vs %g", bits, T, i, grad[i], c[i] * fw);
                    da[j] += c[i] * fa, db[j] += c[i] * fb;
                }
                for (int j = 0; j < ns; j++) {
                    const double tol_a = 1e-4 * (1.0 + fabs(da[j])), tol_b = 1e-3 * (1.0 + fabs(db[j]));
                    cr_expect_float_eq(gl[j], da[j], tol_a, "%d bits T %g pc %d: dalpha %g vs %g", bits, T, pc, gl[j], da[j]);
                    cr_expect_float_eq(gl[ns + j], db[j], tol_b, "%d bits T %g pc %d: dbeta %g vs %g", bits, T, pc,
                                       gl[ns + j], db[j]);
                }
                for (int k = 0; k < ns * nb; k++) cr_expect_eq(gl[2 * ns + k], 0.0f);
            }
    cr_expect_gt(active_total, 500, "enough weights on a soft step");
    cr_expect_lt(skipped, 20, "few weights next to a clamp edge");
}

/* The soft staircase tends to the hard one: the mean distance falls as T grows and at T = 1e5 all but
 * the weights within 1e-4 (scaled) of a breakpoint are exactly on their level. The hard codes are
 * integers in [-qD, qD] whose product with the scale is the inference forward, whatever the epoch. */
Test(wq_qn, soft_forward_approaches_the_hard_one) {
    const qsnn_weight_quant_ops *ops = qn();
    for (int bits = 2; bits <= 8; bits++) {
        enum { O = 8, N = 100 };
        static float W[O * N], hard[O * N], soft[O * N], hard2[O * N], learned[O * 256], gl[O * 256];
        static int32_t codes[O * N];
        float sc[O];
        const int qd = (1 << (bits - 1)) - 1;
        random_weights(W, O * N, 900 + bits, 0.1f);
        qsnn_weight_quant_cfg cfg = make_cfg(bits, 1, learned, gl);
        cfg.lq.qn_t_base = 10.0, cfg.lq.qn_t_max = 1e5;
        ops->init(&cfg, W, O, N, learned);
        ops->forward(&cfg, W, O, N, hard, sc);
        ops->codes(&cfg, W, sc, O, N, codes);
        for (int i = 0; i < O * N; i++) {
            cr_assert(codes[i] >= -qd && codes[i] <= qd, "%d bits: code %d", bits, codes[i]);
            cr_assert_eq(hard[i], sc[i / N] * (float)codes[i]);
        }
        cfg.pass.epoch = 7; /* the inference forward ignores the epoch */
        ops->forward(&cfg, W, O, N, hard2, sc);
        cr_expect_eq(memcmp(hard, hard2, sizeof hard), 0);
        double prev = INFINITY;
        for (int e = 0; e < 5; e++) { /* T = 10, 100, ..., 1e5 */
            cfg.pass = (qsnn_lq_pass){.training = 1, .epoch = (int)pow(10.0, e) - 1, .seed = 1};
            ops->forward(&cfg, W, O, N, soft, sc);
            double dist = 0.0;
            int exact = 0;
            for (int i = 0; i < O * N; i++) {
                dist += fabs((double)soft[i] - hard[i]) / sc[i / N];
                exact += soft[i] == hard[i];
            }
            dist /= O * N;
            cr_expect(dist < prev || dist == 0.0, "%d bits, T %g: mean distance %g (before %g)", bits, 10 * pow(10.0, e), dist, prev);
            prev = dist;
            if (e == 4) cr_expect_gt(exact, O * N * 97 / 100, "%d bits: %d of %d exact at T = 1e5", bits, exact, O * N);
        }
        cr_expect_lt(prev, 1e-3, "%d bits", bits);
    }
}

Test(wq_qn, temperature_schedule) {
    qsnn_lq_opts o = qsnn_lq_opts_default();
    cr_expect_eq(qsnn_qn_temperature(&o, 0), o.qn_t_base);
    cr_expect_eq(qsnn_qn_temperature(&o, 0), 10.0);
    cr_expect_eq(qsnn_qn_temperature(&o, 4), 50.0);
    cr_expect_eq(qsnn_qn_temperature(&o, 198), 1990.0);
    cr_expect_eq(qsnn_qn_temperature(&o, 199), 2000.0);
    cr_expect_eq(qsnn_qn_temperature(&o, 5000), 2000.0);
    /* the quantizer follows it: t_base 7, t_max 30; epoch 10 runs at 30, not 77 */
    const qsnn_weight_quant_ops *ops = qn();
    float W[64], Wq[64], learned[2 + 6], gl[8], sc[1];
    random_weights(W, 64, 5, 1.0f);
    qsnn_weight_quant_cfg cfg = make_cfg(3, 0, learned, gl);
    cfg.lq.qn_t_base = 7.0, cfg.lq.qn_t_max = 30.0;
    ops->init(&cfg, W, 1, 64, learned);
    const int ep[3] = {0, 2, 10};
    const double T[3] = {7.0, 21.0, 30.0};
    for (int k = 0; k < 3; k++) {
        cfg.pass = (qsnn_lq_pass){.training = 1, .epoch = ep[k]};
        ops->forward(&cfg, W, 1, 64, Wq, sc);
        double off = 0.0, other = 0.0;
        for (int i = 0; i < 64; i++) {
            const double x = (double)(learned[1] * W[i]);
            off = fmax(off, fabs(Wq[i] - ref_soft(learned + 2, 3, learned[0], x, T[k], NULL)));
            other = fmax(other, fabs(Wq[i] - ref_soft(learned + 2, 3, learned[0], x, T[k] + 3.0, NULL)));
        }
        cr_expect_lt(off, 1e-6, "epoch %d: T = %g", ep[k], T[k]);
        cr_expect_gt(other, 1e-4, "epoch %d: another T would show", ep[k]);
    }
}

/* Breakpoints that are not sorted (a hand-edited checkpoint) take the plain path: the same staircase. */
Test(wq_qn, unsorted_breakpoints_give_the_same_staircase) {
    const qsnn_weight_quant_ops *ops = qn();
    enum { N = 500 };
    static float W[N], a[N], b[N], learned[2 + 14], perm[2 + 14], gl[16];
    float sc[1];
    random_weights(W, N, 77, 1.0f);
    qsnn_weight_quant_cfg cfg = make_cfg(4, 0, learned, gl);
    ops->init(&cfg, W, 1, N, learned);
    memcpy(perm, learned, sizeof perm);
    for (int i = 0; i < 14; i++) perm[2 + i] = learned[2 + (i * 5) % 14]; /* 5 is coprime to 14 */
    qsnn_weight_quant_cfg pcfg = cfg;
    pcfg.learned = perm;
    for (int training = 0; training < 2; training++) {
        cfg.pass = pcfg.pass = (qsnn_lq_pass){.training = training, .epoch = 1};
        ops->forward(&cfg, W, 1, N, a, sc);
        ops->forward(&pcfg, W, 1, N, b, sc);
        for (int i = 0; i < N; i++)
            cr_expect_float_eq(a[i], b[i], 1e-6 * sc[0], "training %d: %g vs %g", training, a[i], b[i]);
    }
}

Test(wq_qn, learned_gradients_do_not_depend_on_the_thread_count) {
    const qsnn_weight_quant_ops *ops = qn();
    enum { O = 64, N = 300 };
    static float W[O * N], g1[O * N], g2[O * N], f1[O * N], f2[O * N], learned[O * 256], gl[O * 256], l1[O * 256];
    float sc[O];
    random_weights(W, O * N, 11, 0.05f);
    for (int bits = 3; bits <= 8; bits += 5)
        for (int pc = 0; pc < 2; pc++) {
            const size_t nl = qsnn_wq_learned_total(ops, &(qsnn_weight_quant_cfg){.bits = bits}, pc ? O : 1);
            qsnn_weight_quant_cfg cfg = make_cfg(bits, pc, learned, gl);
            ops->init(&cfg, W, O, N, learned);
            cfg.pass = (qsnn_lq_pass){.training = 1, .epoch = 2, .seed = 9};
            for (int i = 0; i < O * N; i++) g1[i] = g2[i] = cosf(0.37f * (float)i);
            omp_set_num_threads(1);
            ops->forward(&cfg, W, O, N, f1, sc);
            ops->backward(&cfg, W, sc, O, N, g1);
            memcpy(l1, gl, nl * sizeof(float));
            omp_set_num_threads(2);
            ops->forward(&cfg, W, O, N, f2, sc);
            ops->backward(&cfg, W, sc, O, N, g2);
            cr_expect_eq(memcmp(f1, f2, sizeof f1), 0, "%d bits pc %d: forward", bits, pc);
            cr_expect_eq(memcmp(g1, g2, sizeof g1), 0, "%d bits pc %d: W gradient", bits, pc);
            cr_expect_eq(memcmp(l1, gl, nl * sizeof(float)), 0, "%d bits pc %d: alpha/beta gradients", bits, pc);
            cr_expect_neq(l1[0], 0.0f, "a gradient to compare");
        }
}
