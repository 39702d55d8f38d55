/* One suite for every weight quantizer of the registry (the traits-table conformance tests):
 * codes × scale reproduce the fake-quantized weights bit for bit, codes stay in their b-bit range,
 * the error inside the range is at most half a step, the backward pass follows its straight-through
 * rule, learned-parameter gradients follow the stated estimators (checked against an independent
 * double-precision evaluation of quantizers.md §1 and §3) and do not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "quant/weight_quant.h"
#include "test_util.h"

enum { OUT = 6, IN = 50 };

typedef struct qcase {
    qsnn_weight_quant_cfg cfg;
    const qsnn_weight_quant_ops *ops;
    float W[OUT * IN], Wq[OUT * IN], scales[OUT], learned[3 * OUT], glearned[3 * OUT];
    int32_t codes[OUT * IN];
} qcase;

static void setup_case(qcase *c, const qsnn_weight_quant_ops *ops, int bits, qsnn_wq_granularity gran, int pow2,
                       uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->ops = ops;
    c->cfg.bits = bits, c->cfg.granularity = gran, c->cfg.pow2 = pow2;
    snprintf(c->cfg.method, sizeof c->cfg.method, "%s", ops->name);
    qsnn_rng r;
    qsnn_rng_init(&r, seed, 0);
    for (int i = 0; i < OUT * IN; i++) c->W[i] = 0.3f * (qsnn_rng_uniform(&r) - 0.4f) * (1.0f + (float)(i % 7));
    c->cfg.learned = c->learned;
    c->cfg.learned_grad = c->glearned;
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
        if (bits == 1) continue; /* binary codes have no "inside" */
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
    FOR_EACH_CASE({
        if (!ops->n_learned) continue;
        static float g1[OUT * IN], g2[OUT * IN];
        float l1[3 * OUT], l2[3 * OUT];
        for (int i = 0; i < OUT * IN; i++) g1[i] = g2[i] = sinf((float)i);
        omp_set_num_threads(1);
        ops->backward(&c.cfg, c.W, c.scales, OUT, IN, g1);
        memcpy(l1, c.glearned, sizeof l1);
        omp_set_num_threads(2);
        ops->backward(&c.cfg, c.W, c.scales, OUT, IN, g2);
        memcpy(l2, c.glearned, sizeof l2);
        cr_expect_eq(memcmp(l1, l2, (size_t)ops->n_learned * ns * sizeof(float)), 0, "%s", ops->name);
    });
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
