/* One suite for every weight quantizer of the registry (the traits-table conformance tests), run on
 * the hard (inference) quantizer, pass zero: codes × scale reproduce the fake-quantized weights bit for
 * bit, codes stay in their b-bit range, the output is monotone in w, quantizers that round to the
 * nearest level err by at most half a step inside their range, the backward pass follows its
 * straight-through rule, learned-parameter gradients follow the stated estimators (checked against an
 * independent double-precision evaluation of quantizers.md §1, §3, §4; QN's in test_wq_qn.c) and, like
 * the forward in both passes, do not depend on the thread count; quantizers without a training form
 * give the same weights in training passes. Learned parameters may come in groups of several values
 * per scale. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "quant/weight_quant.h"
#include "test_util.h"

enum { OUT = 6, IN = 50, LMAX = 8192 /* learned values of one case (QN: 6 x 256 at 8 bits) */ };

/* What the generic checks may assume of a quantizer; anything not listed rounds to the nearest level
 * (cuts at the midpoints between levels) and has no training form. */
static const struct {
    const char *name;
    int free_cuts;     /* its cuts are not midpoints (QN's k-means breakpoints): no half-step bound */
    int training_form; /* pass.training = 1 changes the forward (QN's soft staircase, CPQ's DropBits) */
} traits[] = {{"qn", 1, 1}, {"cpq", 0, 1}};

static int free_cuts(const qsnn_weight_quant_ops *ops) {
    for (size_t i = 0; i < sizeof traits / sizeof *traits; i++)
        if (!strcmp(traits[i].name, ops->name)) return traits[i].free_cuts;
    return 0;
}

static int training_form(const qsnn_weight_quant_ops *ops) {
    for (size_t i = 0; i < sizeof traits / sizeof *traits; i++)
        if (!strcmp(traits[i].name, ops->name)) return traits[i].training_form;
    return 0;
}

typedef struct qcase {
    qsnn_weight_quant_cfg cfg;
    const qsnn_weight_quant_ops *ops;
    float W[OUT * IN], Wq[OUT * IN], scales[OUT], learned[LMAX], glearned[LMAX];
    int32_t codes[OUT * IN];
    size_t nl; /* learned values (qsnn_wq_learned_total) */
} qcase;

static void setup_case(qcase *c, const qsnn_weight_quant_ops *ops, int bits, qsnn_wq_granularity gran, int pow2,
                       uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->ops = ops;
    c->cfg.bits = bits, c->cfg.granularity = gran, c->cfg.pow2 = pow2;
    c->cfg.lq = qsnn_lq_opts_default(); /* pass stays zero: the hard quantizer */
    snprintf(c->cfg.method, sizeof c->cfg.method, "%s", ops->name);
    qsnn_rng r;
    qsnn_rng_init(&r, seed, 0);
    for (int i = 0; i < OUT * IN; i++) c->W[i] = 0.3f * (qsnn_rng_uniform(&r) - 0.4f) * (1.0f + (float)(i % 7));
    c->cfg.learned = c->learned;
    c->cfg.learned_grad = c->glearned;
    c->nl = ops->n_learned ? qsnn_wq_learned_total(ops, &c->cfg, gran == QSNN_WQ_PER_CHANNEL ? OUT : 1) : 0;
    cr_assert_leq(c->nl, (size_t)LMAX, "%s %d bits: %zu learned values, raise LMAX", ops->name, bits, c->nl);
    if (ops->n_learned) {
        ops->init(&c->cfg, c->W, OUT, IN, c->learned);
    }
    if (ops->n_learned && !strncmp(ops->name, "lsq", 3)) {
        /* a step that leaves the largest weights of every group outside the range */
        const int ns = gran == QSNN_WQ_PER_CHANNEL ? OUT : 1, n = gran == QSNN_WQ_PER_CHANNEL ? IN : OUT * IN;
        const float codes = ops->n_learned > 1 ? (float)((1 << bits) - 1) : (float)((1 << (bits - 1)) - 1);
        for (int g = 0; g < ns; g++) {
            float lo = 0, hi = 0;
            for (int i = 0; i < n; i++) {
                const float w = c->W[g * n + i];
                lo = w < lo ? w : lo, hi = w > hi ? w : hi;
            }
            c->learned[g] = 0.6f * (ops->n_learned > 1 ? hi - lo : (hi > -lo ? hi : -lo)) / codes;
        }
    }
    ops->forward(&c->cfg, c->W, OUT, IN, c->Wq, c->scales);
    ops->codes(&c->cfg, c->W, c->scales, OUT, IN, c->codes);
}

#define FOR_EACH_CASE(...)                                                                                      \
    for (int qi = 0; qi < qsnn_weight_quant_count(); qi++)                                                      \
        for (int bits = 1; bits <= 8; bits++)                                                                   \
            for (int gr = 0; gr < 2; gr++)                                                                      \
                for (int p2 = 0; p2 < 2; p2++) {                                                                \
                    const qsnn_weight_quant_ops *ops = qsnn_weight_quant_at(qi);                                \
                    if (bits < (ops->min_bits ? ops->min_bits : 1) || (p2 && ops->no_pow2)) continue;          \
                    static qcase c;                                                                             \
                    setup_case(&c, ops, bits, (qsnn_wq_granularity)gr, p2, 100 + bits);                        \
                    const int ns = gr ? OUT : 1;                                                                \
                    (void)ns;                                                                                   \
                    __VA_ARGS__                                                                                 \
                }

Test(wquant_conformance, codes_times_scale_is_the_fake_quantized_weight) {
    int cases = 0;
    FOR_EACH_CASE({
        cases++;
        /* codes as signed offsets: per scale group, spanning at most 2^b - 1 (binary: ±1) */
        for (int g = 0; g < ns; g++) {
            int32_t lo = INT32_MAX, hi = INT32_MIN;
            const int n = gr ? IN : OUT * IN;
            for (int i = g * n; i < (g + 1) * n; i++) {
                const float s = c.scales[g];
                cr_assert_eq(c.Wq[i], s * (float)c.codes[i], "%s %d bits: Wq[%d] = %a, codes x scale = %a",
                             ops->name, bits, i, c.Wq[i], s * (float)c.codes[i]);
                lo = c.codes[i] < lo ? c.codes[i] : lo;
                hi = c.codes[i] > hi ? c.codes[i] : hi;
            }
            cr_expect_leq((long)hi - lo, bits == 1 ? 2L : (1L << bits) - 1, "%s %d bits: codes %d..%d", ops->name,
                          bits, lo, hi);
        }
        if (p2)
            for (int g = 0; g < ns; g++) {
                int e;
                cr_expect_eq(frexpf(c.scales[g], &e), 0.5f, "%s: pow2 scale %g", ops->name, c.scales[g]);
            }
    });
    cr_expect_gt(cases, 40);
}

Test(wquant_conformance, error_inside_the_range_is_at_most_half_a_step) {
    FOR_EACH_CASE({
        if (bits == 1 || free_cuts(ops)) continue; /* binary codes have no "inside"; QN: its own test */
        static float grad[OUT * IN];
        for (int j = 0; j < OUT * IN; j++) grad[j] = 1.0f;
        ops->backward(&c.cfg, c.W, c.scales, OUT, IN, grad);
        int inside = 0;
        for (int i = 0; i < OUT * IN; i++) {
            const float s = c.scales[gr ? i / IN : 0];
            /* only clipped weights (zero gradient) may be more than half a step away */
            if (fabsf(c.Wq[i] - c.W[i]) > 0.5f * s * 1.0001f)
                cr_expect_eq(grad[i], 0.0f, "%s %d bits: w %g -> %g (step %g) but the gradient passes", ops->name,
                             bits, c.W[i], c.Wq[i], s);
            inside += grad[i] != 0.0f;
        }
        cr_expect_gt(inside, OUT * IN / 4, "%s %d bits: most weights inside the range", ops->name, bits);
    });
}

Test(wquant_conformance, hard_output_is_monotone_in_w) {
    int cases = 0;
    FOR_EACH_CASE({
        const int n = gr ? IN : OUT * IN;
        for (int g = 0; g < ns; g++)
            for (int i = g * n; i < (g + 1) * n; i++)
                for (int j = g * n; j < (g + 1) * n; j++)
                    if (c.W[i] < c.W[j] && !(c.Wq[i] <= c.Wq[j]))
                        cr_assert(0, "%s %d bits: w %g -> %g but w %g -> %g", ops->name, bits, c.W[i], c.Wq[i], c.W[j],
                                  c.Wq[j]);
        cases++;
    });
    cr_expect_gt(cases, 40);
}

/* The LSQ estimators of quantizers.md §1/§3, evaluated independently in double precision. */
static void expected_grads(const qcase *c, const float *gq, double *gw, double *gs, double *gz) {
    const int affine = strcmp(c->ops->name, "lsq_affine") == 0, pc = c->cfg.granularity == QSNN_WQ_PER_CHANNEL;
    const int ns = pc ? OUT : 1, b = c->cfg.bits;
    const double lo = affine ? 0.0 : -ldexp(1.0, b - 1), hi = affine ? ldexp(1.0, b) - 1 : ldexp(1.0, b - 1) - 1;
    for (int g = 0; g < ns; g++) gs[g] = gz[g] = 0.0;
    for (int i = 0; i < OUT * IN; i++) {
        const int g = pc ? i / IN : 0;
        const double s = c->scales[g], z = affine ? nearbyint(c->learned[ns + g]) : 0.0;
        const double v = (double)c->W[i] / s, pos = v + z;
        if (pos < lo || pos > hi) {
            gw[i] = 0.0;
            gs[g] += gq[i] * ((pos < lo ? lo : hi) - z);
            gz[g] += gq[i] * -s;
        } else {
            gw[i] = gq[i];
            gs[g] += gq[i] * (nearbyint(v) - v);
        }
    }
    const double n = pc ? IN : (double)IN * OUT;
    for (int g = 0; g < ns; g++) gs[g] /= sqrt(n * hi), gz[g] /= sqrt(n * hi);
}

Test(wquant_conformance, learned_parameter_gradients_follow_the_estimators) {
    int checked = 0;
    FOR_EACH_CASE({
        if (strncmp(ops->name, "lsq", 3)) continue; /* QIL has its own test below */
        static float grad[OUT * IN];
        static double gw[OUT * IN];
        double gs[OUT], gz[OUT];
        qsnn_rng r;
        qsnn_rng_init(&r, 7, 1);
        for (int i = 0; i < OUT * IN; i++) grad[i] = qsnn_rng_uniform(&r) - 0.5f;
        expected_grads(&c, grad, gw, gs, gz);
        ops->backward(&c.cfg, c.W, c.scales, OUT, IN, grad);
        int clipped = 0;
        for (int i = 0; i < OUT * IN; i++) {
            cr_assert_eq(grad[i], (float)gw[i], "%s: dW[%d]", ops->name, i);
            clipped += gw[i] == 0.0;
        }
        cr_expect_gt(clipped, 0, "the case clips some weights");
        for (int g = 0; g < ns; g++) {
            cr_expect_float_eq(c.glearned[g], gs[g], 1e-6 * (1 + fabs(gs[g])), "%s %d bits: ds[%d] %g vs %g",
                               ops->name, bits, g, c.glearned[g], gs[g]);
            if (ops->n_learned > 1)
                cr_expect_float_eq(c.glearned[ns + g], gz[g], 1e-6 * (1 + fabs(gz[g])), "%s: dz[%d]", ops->name, g);
        }
        checked++;
    });
    cr_expect_geq(checked, 28, "lsq and lsq_affine, 2..8 bits, both granularities and pow2 settings");
}

Test(wquant_conformance, clipped_scale_gradient_matches_finite_differences) {
    /* Where every weight is clipped, Ŵ = s·(bound - z) is linear in s: the estimator is the exact
     * derivative there, so a finite difference must agree. */
    for (int affine = 0; affine < 2; affine++) {
        const qsnn_weight_quant_ops *ops = qsnn_weight_quant_find(affine ? "lsq_affine" : "lsq");
        qsnn_weight_quant_cfg cfg = {.bits = 3, .granularity = QSNN_WQ_PER_TENSOR};
        float W[4] = {5.0f, -6.0f, 7.0f, -8.0f}, learned[2] = {0.1f, 3.0f}, gl[2], Wq[4], sc[1], Wq2[4];
        cfg.learned = learned, cfg.learned_grad = gl;
        float grad[4] = {1, 1, 1, 1};
        ops->forward(&cfg, W, 1, 4, Wq, sc);
        ops->backward(&cfg, W, sc, 1, 4, grad);
        const float h = 1e-3f;
        learned[0] += h;
        ops->forward(&cfg, W, 1, 4, Wq2, sc);
        double fd = 0;
        for (int i = 0; i < 4; i++) fd += ((double)Wq2[i] - Wq[i]) / h;
        const double qp = affine ? 7.0 : 3.0;
        cr_expect_float_eq(gl[0], fd / sqrt(4.0 * qp), 1e-3, "%s: %g vs %g", ops->name, gl[0], fd / sqrt(4.0 * qp));
    }
}

Test(wquant_conformance, learned_gradients_do_not_depend_on_the_thread_count) {
    int checked = 0;
    FOR_EACH_CASE({
        if (!ops->n_learned) continue;
        static float g1[OUT * IN], g2[OUT * IN], l1[LMAX], l2[LMAX];
        for (int i = 0; i < OUT * IN; i++) g1[i] = g2[i] = sinf((float)i);
        /* backward overwrites every trained group: stale values must not survive */
        for (size_t i = 0; i < c.nl; i++) c.glearned[i] = NAN;
        omp_set_num_threads(1);
        ops->backward(&c.cfg, c.W, c.scales, OUT, IN, g1);
        memcpy(l1, c.glearned, c.nl * sizeof(float));
        for (size_t i = 0; i < c.nl; i++) c.glearned[i] = -1e30f;
        omp_set_num_threads(2);
        ops->backward(&c.cfg, c.W, c.scales, OUT, IN, g2);
        memcpy(l2, c.glearned, c.nl * sizeof(float));
        for (int k = 0; k < ops->n_learned; k++) {
            if (ops->frozen >> k & 1u) continue;
            const size_t off = qsnn_wq_learned_offset(ops, &c.cfg, ns, k);
            const size_t len = (size_t)ns * qsnn_wq_group_size(ops, &c.cfg, k);
            for (size_t i = off; i < off + len; i++)
                cr_expect(isfinite(l1[i]), "%s %d bits: %s gradient [%zu] not written", ops->name, bits,
                          ops->learned_names[k], i - off);
            cr_expect_eq(memcmp(l1 + off, l2 + off, len * sizeof(float)), 0, "%s %d bits: %s", ops->name, bits,
                         ops->learned_names[k]);
        }
        cr_expect_eq(memcmp(g1, g2, sizeof g1), 0, "%s %d bits: W gradient", ops->name, bits);
        checked++;
    });
    cr_expect_gt(checked, 20);
}

Test(wquant_conformance, forward_does_not_depend_on_the_thread_count) {
    FOR_EACH_CASE({
        for (int training = 0; training < 2; training++) {
            static float w1[OUT * IN], w2[OUT * IN];
            float s1[OUT], s2[OUT];
            c.cfg.pass = (qsnn_lq_pass){.training = training, .epoch = 2 * training, .seed = training ? 77u : 0u};
            omp_set_num_threads(1);
            ops->forward(&c.cfg, c.W, OUT, IN, w1, s1);
            omp_set_num_threads(2);
            ops->forward(&c.cfg, c.W, OUT, IN, w2, s2);
            cr_expect_eq(memcmp(w1, w2, sizeof w1), 0, "%s %d bits, training %d", ops->name, bits, training);
            cr_expect_eq(memcmp(s1, s2, (size_t)ns * sizeof(float)), 0, "%s %d bits: scales", ops->name, bits);
            for (int i = 0; i < OUT * IN; i++)
                if (!isfinite(w1[i])) cr_assert(0, "%s %d bits, training %d: Wq[%d] = %g", ops->name, bits, training, i, w1[i]);
        }
        c.cfg.pass = (qsnn_lq_pass){0};
    });
}

Test(wquant_conformance, training_passes_change_nothing_without_a_training_form) {
    int checked = 0;
    FOR_EACH_CASE({
        if (training_form(ops)) continue;
        static float wt[OUT * IN];
        float st[OUT];
        c.cfg.pass = (qsnn_lq_pass){.training = 1, .epoch = 3, .seed = 12345u};
        ops->forward(&c.cfg, c.W, OUT, IN, wt, st);
        c.cfg.pass = (qsnn_lq_pass){0};
        cr_expect_eq(memcmp(wt, c.Wq, sizeof wt), 0, "%s %d bits: training pass differs", ops->name, bits);
        cr_expect_eq(memcmp(st, c.scales, (size_t)ns * sizeof(float)), 0, "%s %d bits: scales", ops->name, bits);
        checked += ops->n_learned > 0;
    });
    cr_expect_geq(checked, 14 * 2 * 2, "lsq, lsq_affine, qil at 2..8 bits");
}

Test(wquant_conformance, bad_settings_are_refused) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_weight_quant_cfg cfg = {.bits = 1, .method = "lsq"};
    cr_expect_eq(qsnn_weight_quant_check(ctx, &cfg), QSNN_ERR_CONFIG);
    cr_expect(strstr(qsnn_last_error(ctx), "quant.weight.bits = 1: the lsq quantizer needs at least 2 bits") != NULL,
              "%s", qsnn_last_error(ctx));
    cfg.bits = 17;
    cr_expect_eq(qsnn_weight_quant_check(ctx, &cfg), QSNN_ERR_CONFIG);
    cfg.bits = 4;
    snprintf(cfg.method, sizeof cfg.method, "nope");
    cr_expect_eq(qsnn_weight_quant_check(ctx, &cfg), QSNN_ERR_CONFIG);
    cr_expect(strstr(qsnn_last_error(ctx), "known: uniform_symmetric, uniform_affine, lsq, lsq_affine, qil") != NULL);
    for (int qi = 0; qi < qsnn_weight_quant_count(); qi++) { /* every registered name is listed and refuses what it lacks */
        const qsnn_weight_quant_ops *ops = qsnn_weight_quant_at(qi);
        cr_expect(strstr(qsnn_weight_quant_names(), ops->name) != NULL, "%s not in the names", ops->name);
        cr_expect_eq(qsnn_weight_quant_find(ops->name), ops);
        qsnn_weight_quant_cfg q = {.bits = 8};
        snprintf(q.method, sizeof q.method, "%s", ops->name);
        cr_expect_eq(qsnn_weight_quant_check(ctx, &q), QSNN_OK, "%s: %s", ops->name, qsnn_last_error(ctx));
        q.pow2 = 1;
        cr_expect_eq(qsnn_weight_quant_check(ctx, &q), ops->no_pow2 ? QSNN_ERR_CONFIG : QSNN_OK, "%s pow2", ops->name);
        q.pow2 = 0, q.bits = ops->min_bits - 1;
        if (q.bits >= 1) cr_expect_eq(qsnn_weight_quant_check(ctx, &q), QSNN_ERR_CONFIG, "%s below min_bits", ops->name);
    }
    qsnn_ctx_destroy(&ctx);
}

/* QIL's estimator (quantizers.md §4), evaluated independently in double precision, with an interval
 * that prunes and clips some weights and γ != 1. */
Test(wquant_conformance, qil_gradients_follow_the_estimator) {
    for (int gr = 0; gr < 2; gr++) {
        static qcase c;
        setup_case(&c, qsnn_weight_quant_find("qil"), 4, (qsnn_wq_granularity)gr, 0, 9);
        const int ns = gr ? OUT : 1, n = gr ? IN : OUT * IN;
        for (int g = 0; g < ns; g++) { /* interval [0.25 max, 0.75 max], γ 1.7 */
            float m = 0;
            for (int i = 0; i < n; i++) m = fabsf(c.W[g * n + i]) > m ? fabsf(c.W[g * n + i]) : m;
            c.learned[g] = 0.5f * m, c.learned[ns + g] = 0.25f * m, c.learned[2 * ns + g] = 1.7f;
        }
        const qsnn_weight_quant_ops *ops = c.ops;
        ops->forward(&c.cfg, c.W, OUT, IN, c.Wq, c.scales);
        ops->codes(&c.cfg, c.W, c.scales, OUT, IN, c.codes);
        static float grad[OUT * IN];
        double want[3][OUT] = {{0}}, wgrad[OUT * IN];
        int pruned = 0, clipped = 0;
        for (int i = 0; i < OUT * IN; i++) {
            grad[i] = 0.1f * (float)((i * 7) % 11) - 0.5f;
            const int g = gr ? i / IN : 0;
            const double cc = c.learned[g], d = c.learned[ns + g], gm = c.learned[2 * ns + g];
            const double kq = (double)c.scales[g] * 7.0; /* κ·qD, qD = 7 at 4 bits */
            const double a = fabs((double)c.W[i]), sg = c.W[i] < 0 ? -1.0 : 1.0;
            cr_assert_eq(c.Wq[i], c.scales[g] * (float)c.codes[i]);
            if (a < cc - d || a > cc + d) {
                pruned += a < cc - d, clipped += a > cc + d;
                wgrad[i] = 0.0;
                continue;
            }
            const double u = (a - cc) / (2 * d) + 0.5, gh = grad[i] * kq;
            wgrad[i] = gh * gm * pow(u, gm - 1) / (2 * d);
            want[0][g] += gh * -sg * gm * pow(u, gm - 1) / (2 * d);
            want[1][g] += gh * -sg * gm * pow(u, gm - 1) * (a - cc) / (2 * d * d);
            if (u > 0) want[2][g] += gh * sg * pow(u, gm) * log(u);
        }
        cr_expect_gt(pruned, 0);
        cr_expect_gt(clipped, 0);
        ops->backward(&c.cfg, c.W, c.scales, OUT, IN, grad);
        for (int i = 0; i < OUT * IN; i++)
            cr_expect_float_eq(grad[i], wgrad[i], 1e-5 * (1 + fabs(wgrad[i])), "dW[%d] %g vs %g", i, grad[i], wgrad[i]);
        for (int k = 0; k < 3; k++)
            for (int g = 0; g < ns; g++)
                cr_expect_float_eq(c.glearned[k * ns + g], want[k][g], 1e-4 * (1 + fabs(want[k][g])),
                                   "%s, group %d: %g vs %g", ops->learned_names[k], g, c.glearned[k * ns + g], want[k][g]);
    }
}

Test(wquant_conformance, all_zero_weights_give_finite_parameters_and_weights) {
    for (int qi = 0; qi < qsnn_weight_quant_count(); qi++)
        for (int gr = 0; gr < 2; gr++) {
            static qcase c;
            const qsnn_weight_quant_ops *ops = qsnn_weight_quant_at(qi);
            setup_case(&c, ops, 4, (qsnn_wq_granularity)gr, 0, 1);
            memset(c.W, 0, sizeof c.W);
            if (ops->n_learned) ops->init(&c.cfg, c.W, OUT, IN, c.learned);
            for (size_t i = 0; i < c.nl; i++) cr_expect(isfinite(c.learned[i]), "%s: learned[%zu]", ops->name, i);
            ops->forward(&c.cfg, c.W, OUT, IN, c.Wq, c.scales);
            for (int i = 0; i < OUT * IN; i++) cr_expect(isfinite(c.Wq[i]), "%s: Wq[%d] = %g", ops->name, i, c.Wq[i]);
        }
}

/* QN's cuts are its k-means breakpoints, not midpoints (quantizers.md §5): the hard output is the level
 * α·(#{i : βw > b_i} - qD), read here from the learned layout (alpha, beta, breakpoints). */
Test(wquant_conformance, qn_hard_output_counts_its_breakpoints) {
    int checked = 0;
    FOR_EACH_CASE({
        if (strcmp(ops->name, "qn")) continue;
        const int qd = (1 << (bits - 1)) - 1, nb = 2 * qd, n = gr ? IN : OUT * IN;
        cr_assert_eq(qsnn_wq_group_size(ops, &c.cfg, 2), nb);
        cr_assert_eq(ops->frozen, 1u << 2, "the breakpoints are frozen, alpha and beta trained");
        const float *bp = c.learned + qsnn_wq_learned_offset(ops, &c.cfg, ns, 2);
        for (int g = 0; g < ns; g++) {
            const float alpha = c.learned[g], beta = c.learned[ns + g];
            const float *b = bp + (size_t)g * nb;
            cr_expect_eq(c.scales[g], alpha);
            for (int m = 1; m < nb; m++) cr_expect_lt(b[m - 1], b[m], "%d bits: breakpoints sorted", bits);
            int top = g * n;
            for (int i = g * n; i < (g + 1) * n; i++) {
                int cnt = 0;
                const float x = beta * c.W[i];
                for (int m = 0; m < nb; m++) cnt += x > b[m];
                cr_assert_eq(c.codes[i], cnt - qd, "%d bits: w %g code %d, %d breakpoints below", bits, c.W[i],
                             c.codes[i], cnt);
                cr_assert_eq(c.Wq[i], alpha * (float)(cnt - qd));
                top = fabsf(c.W[i]) > fabsf(c.W[top]) ? i : top;
            }
            /* β maps max|w| to 1.25·qD, beyond every initial level: the outermost level */
            cr_expect_eq(c.codes[top], c.W[top] > 0 ? qd : -qd, "%d bits: the largest weight's code", bits);
        }
        static float grad[OUT * IN];
        for (int i = 0; i < OUT * IN; i++) grad[i] = 1.0f;
        for (size_t i = 0; i < c.nl; i++) c.glearned[i] = NAN;
        ops->backward(&c.cfg, c.W, c.scales, OUT, IN, grad);
        for (int i = 0; i < ns * nb; i++) cr_expect_eq(c.glearned[2 * ns + i], 0.0f, "breakpoints get no gradient");
        checked++;
    });
    cr_expect_eq(checked, 14, "2..8 bits, both granularities");
}

/* CPQ (quantizers.md §6; its own suite is test_wq_cpq.c): in training passes (DropBits) and with a closed
 * top gate the codes still reproduce Ŵ bit for bit, a training pass quantizes onto the b-bit grid of
 * step α (scales[g] = α), and the closed top gate narrows the inference codes to b - 1 bits. */
Test(wquant_conformance, cpq_training_and_gated_codes) {
    int checked = 0;
    FOR_EACH_CASE({
        if (strcmp(ops->name, "cpq")) continue;
        const int n = gr ? IN : OUT * IN;
        static float wt[OUT * IN];
        static int32_t ct[OUT * IN];
        float st[OUT];
        c.cfg.lq.cpq_drop = 0.5;
        c.cfg.pass = (qsnn_lq_pass){.training = 1, .epoch = 1, .seed = 4321u};
        ops->forward(&c.cfg, c.W, OUT, IN, wt, st);
        ops->codes(&c.cfg, c.W, st, OUT, IN, ct);
        for (int g = 0; g < ns; g++) {
            cr_expect_eq(st[g], c.learned[g], "%d bits: a training pass uses the step α", bits);
            for (int i = g * n; i < (g + 1) * n; i++) {
                cr_assert_eq(wt[i], st[g] * (float)ct[i], "%d bits, training: Wq[%d]", bits, i);
                cr_assert(ct[i] >= -(1 << (bits - 1)) && ct[i] <= (1 << (bits - 1)) - 1, "code %d", ct[i]);
            }
        }
        c.cfg.pass = (qsnn_lq_pass){0};
        if (bits >= 3) { /* learned widths: close the top level's gate */
            c.cfg.lq.cpq_learn_bits = 1;
            const size_t off = qsnn_wq_learned_offset(ops, &c.cfg, ns, 2);
            const int gs = qsnn_wq_group_size(ops, &c.cfg, 2);
            for (int g = 0; g < ns; g++) c.learned[off + (size_t)g * gs + (size_t)(bits - 3)] = -1.0f;
            ops->forward(&c.cfg, c.W, OUT, IN, wt, st);
            ops->codes(&c.cfg, c.W, st, OUT, IN, ct);
            for (int g = 0; g < ns; g++) {
                cr_expect_eq(st[g], 2.0f * c.learned[g], "%d bits: one level fewer doubles the scale", bits);
                for (int i = g * n; i < (g + 1) * n; i++) {
                    cr_assert_eq(wt[i], st[g] * (float)ct[i], "%d bits, gated: Wq[%d]", bits, i);
                    cr_assert(ct[i] >= -(1 << (bits - 2)) && ct[i] <= (1 << (bits - 2)) - 1, "code %d", ct[i]);
                }
            }
            cr_expect_eq(ops->effective_bits(&c.cfg, OUT, IN), (double)(bits - 1));
        }
        checked++;
    });
    cr_expect_eq(checked, 14, "2..8 bits, both granularities");
}
