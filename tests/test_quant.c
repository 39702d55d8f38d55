/* State grids against the worked values of specs/neurons.md, the fast quantizer against its
 * binary-search reference bit for bit, straight-through gradients, and weight codes × scale. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "neurons/neuron.h"
#include "quant/state_quant.h"
#include "quant/weight_quant.h"
#include "test_util.h"

static qsnn_state_quant build(qsnn_ctx *ctx, int bits, qsnn_grid grid) {
    qsnn_state_quant_cfg cfg = {.bits = bits, .grid = grid, .upper_limit = 0.2, .lq = qsnn_lq_opts_default()};
    qsnn_state_quant q;
    memset(&q, 0, sizeof q);
    cr_assert_eq(qsnn_state_quant_build(ctx, &cfg, 1.0f, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
    return q;
}

static int same(float a, float b) { return a == b || (isnan(a) && isnan(b)); }

/* The scalar reference of a table: nearest level, or the learned grid's formula (qsnn_state_lq_ref). */
static float ref_of(const qsnn_state_quant *q, float u) {
    return q->learned ? qsnn_state_lq_ref(&q->cfg, q->built_theta, u) : qsnn_state_quant_ref(q, u);
}

static void expect_levels(const qsnn_state_quant *q, const double *want, int n, double tol) {
    cr_assert_eq(q->n, n);
    for (int i = 0; i < n; i++)
        cr_expect_leq(fabs(q->levels[i] - want[i]), tol, "level %d: %.6f, spec %.6f", i, q->levels[i], want[i]);
}

Test(state_grid, worked_values_from_spec) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_state_quant q = build(ctx, 2, QSNN_GRID_THRESHOLD_CENTERED);
    expect_levels(&q, (const double[]){-1, 0.8018, 0.9820, 1.2}, 4, 5e-5);
    qsnn_state_quant_free(ctx, &q);
    q = build(ctx, 4, QSNN_GRID_THRESHOLD_CENTERED);
    expect_levels(&q,
                  (const double[]){-1, 0.0001, 0.5002, 0.7503, 0.8753, 0.9378, 0.9690, 0.9846, 0.9924, 0.9963, 0.9983,
                                   0.9992, 0.9996, 0.9999, 1.0667, 1.2},
                  16, 3e-4); /* the spec's b = 4 list is "approximately": its own formula gives 0.5001,
                               * 0.7501, 0.8751, ... (up to 2e-4 below the listed values) */
    cr_expect_gt(q.levels[13], 0.9998f, "level 13 is 0.9999(+)");
    cr_expect_lt(q.levels[13], 1.0f);
    qsnn_state_quant_free(ctx, &q);
    q = build(ctx, 2, QSNN_GRID_UNIFORM);
    expect_levels(&q, (const double[]){-1, -0.2667, 0.4667, 1.2}, 4, 5e-5);
    cr_expect_eq(q.levels[0], -1.0f, "end levels exact");
    cr_expect_eq(q.levels[3], 1.2f);
    qsnn_state_quant_free(ctx, &q);
    qsnn_ctx_destroy(&ctx);
}

Test(state_grid, zero_centered_is_dense_near_zero) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_state_quant q = build(ctx, 4, QSNN_GRID_ZERO_CENTERED);
    cr_expect_eq(q.levels[0], -1.0f);
    cr_expect_float_eq(q.levels[15], 1.2f, 1e-6);
    float smallest = 10.0f; /* the finest step sits next to 0 */
    for (int i = 1; i < 16; i++) smallest = fminf(smallest, q.levels[i] - q.levels[i - 1]);
    int at = 0;
    for (int i = 1; i < 16; i++) if (q.levels[i] - q.levels[i - 1] == smallest) at = i;
    cr_expect(fabsf(q.levels[at]) < 0.05f || fabsf(q.levels[at - 1]) < 0.05f, "finest step near 0 (at %d)", at);
    qsnn_state_quant_free(ctx, &q);
    qsnn_ctx_destroy(&ctx);
}

Test(state_grid, nearest_level_ties_to_lower_and_saturation) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_state_quant q = build(ctx, 2, QSNN_GRID_UNIFORM);
    const float mid = 0.5f * (q.levels[1] + q.levels[2]);
    cr_expect_eq(qsnn_state_quant_apply(&q, mid), q.levels[1], "tie goes to the lower level");
    cr_expect_eq(qsnn_state_quant_apply(&q, mid + 1e-6f), q.levels[2]);
    cr_expect_eq(qsnn_state_quant_apply(&q, mid - 1e-6f), q.levels[1]);
    cr_expect_eq(qsnn_state_quant_apply(&q, -7.0f), -1.0f);
    cr_expect_eq(qsnn_state_quant_apply(&q, 9.0f), 1.2f);
    cr_expect(isnan(qsnn_state_quant_apply(&q, NAN)), "NaN is not hidden");
    qsnn_state_quant_free(ctx, &q);
    qsnn_ctx_destroy(&ctx);
}

Test(state_grid, fast_path_equals_reference_bit_for_bit) {
    qsnn_ctx *ctx = test_ctx(1);
    for (int bits = 1; bits <= 16; bits++)
        for (int g = 0; g < QSNN_GRID_COUNT; g++) {
            if (g && bits == 1) continue;
            qsnn_state_quant q = build(ctx, bits, (qsnn_grid)g);
            qsnn_rng r;
            qsnn_rng_init(&r, 1, (uint64_t)bits * 8 + g);
            float batch_in[37], batch_out[37];
            for (int i = 0; i < 20000; i++) {
                float u = 3.0f * qsnn_rng_uniform(&r) - 1.4f;
                if (i % 97 == 5) u = (i % 2) ? NAN : -50.0f; /* NaN and far below the range */
                if (i % 4 == 0) { /* exact midpoints and levels, where rounding decides */
                    int k = (int)qsnn_rng_below(&r, (uint32_t)(q.n - 1));
                    u = (i % 8 == 0) ? q.levels[k] : 0.5f * (q.levels[k] + q.levels[k + 1]);
                    if (i % 12 == 4) u = nextafterf(u, INFINITY); /* the floats next to a midpoint */
                    if (i % 12 == 8) u = nextafterf(u, -INFINITY);
                }
                const float a = qsnn_state_quant_apply(&q, u), b = ref_of(&q, u);
                if (!same(a, b)) cr_assert_fail("bits %d grid %d: u = %.9g gives %.9g, reference %.9g", bits, g, u, a, b);
                batch_in[i % 37] = u;
                if (i % 37 == 36) { /* the vectorized version on 37 values (a tail included) */
                    qsnn_state_quant_apply_n(&q, batch_in, batch_out, 37);
                    for (int m = 0; m < 37; m++)
                        if (!same(batch_out[m], ref_of(&q, batch_in[m])))
                            cr_assert_fail("bits %d grid %d: vector path gives %.9g for %.9g, reference %.9g", bits,
                                           g, batch_out[m], batch_in[m], ref_of(&q, batch_in[m]));
                }
                if (!isnan(u) && qsnn_state_level_index(&q, a) < 0) cr_assert_fail("bits %d: %.9g is not a level", bits, a);
            }
            qsnn_state_quant_free(ctx, &q);
        }
    qsnn_ctx_destroy(&ctx);
}

Test(state_grid, bad_configs_are_refused) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_state_quant_cfg c = {.bits = 17, .grid = QSNN_GRID_UNIFORM, .upper_limit = 0.2};
    cr_expect_eq(qsnn_state_quant_check(ctx, &c), QSNN_ERR_CONFIG);
    cr_expect(strstr(qsnn_last_error(ctx), "quant.state.bits") != NULL);
    c.bits = 4, c.upper_limit = 0.0, c.grid = QSNN_GRID_THRESHOLD_CENTERED; /* no room above the centre */
    cr_expect_eq(qsnn_state_quant_check(ctx, &c), QSNN_ERR_CONFIG);
    c.upper_limit = NAN, c.grid = QSNN_GRID_UNIFORM;
    cr_expect_eq(qsnn_state_quant_check(ctx, &c), QSNN_ERR_CONFIG);
    qsnn_ctx_destroy(&ctx);
}

/* One LIF neuron, one step, reset none: U = Q(I), S = H(U - θ); the straight-through estimator gives
 * dL/dI = dL/dS σ'(Q(I) - θ), and zero outside the range when clipping. */
Test(state_grid, straight_through_gradient) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_state_quant q = build(ctx, 3, QSNN_GRID_UNIFORM);
    qsnn_neuron_params p = {.beta = 0.9f, .theta = 1.0f, .reset = QSNN_RESET_NONE, .surrogate = QSNN_SURR_ARCTAN,
                            .slope = 2.0f};
    const float in[3] = {0.3f, 0.95f, 5.0f}, gS[3] = {1.0f, -2.0f, 1.0f};
    float U[3], S[3], g[3];
    qsnn_neuron_forward_all(&qsnn_neuron_lif, &p, &q, 1, 3, in, 3, U, 3, S, 3);
    for (int j = 0; j < 3; j++) cr_expect_eq(U[j], qsnn_state_quant_ref(&q, in[j]));
    qsnn_neuron_backward_all(&qsnn_neuron_lif, &p, &q, 1, 3, in, 3, U, gS, NULL, 3, g, 3, NULL);
    for (int j = 0; j < 3; j++) cr_expect_float_eq(g[j], gS[j] * qsnn_surr_arctan(U[j] - 1.0f, 2.0f), 1e-7);
    q.ste_clip = 1;
    qsnn_neuron_backward_all(&qsnn_neuron_lif, &p, &q, 1, 3, in, 3, U, gS, NULL, 3, g, 3, NULL);
    cr_expect_neq(g[0], 0.0f);
    cr_expect_eq(g[2], 0.0f, "5.0 lies outside [-1, 1.2]: clipped");
    qsnn_state_quant_free(ctx, &q);
    qsnn_ctx_destroy(&ctx);
}

Test(weight_quant, codes_and_scale_reproduce_fake_quant) {
    qsnn_weight_quant_cfg cfg = {.bits = 3, .granularity = QSNN_WQ_PER_TENSOR, .method = "uniform_symmetric"};
    const qsnn_weight_quant_ops *ops = qsnn_weight_quant_find("uniform_symmetric");
    cr_assert_not_null(ops);
    /* s = 1/3; 0.5/s = 1.5 -> 2 (half to even), 0.26/s = 0.78 -> 1, -1/s = -3, 0.1/s = 0.3 -> 0 */
    const float W[8] = {0.5f, -1.0f, 0.26f, 0.0f, 0.1f, -0.5f, 0.8333334f, 1.0f};
    float Wq[8], s[2];
    int32_t c[8];
    ops->forward(&cfg, W, 2, 4, Wq, s);
    ops->codes(&cfg, W, s, 2, 4, c);
    cr_expect_float_eq(s[0], 1.0f / 3.0f, 1e-7);
    const int32_t want[8] = {2, -3, 1, 0, 0, -2, 2, 3};
    for (int i = 0; i < 8; i++) {
        cr_expect_eq(c[i], want[i], "code %d: %d, expected %d", i, c[i], want[i]);
        cr_expect_eq(Wq[i], s[0] * (float)c[i], "codes x scale must equal the fake-quantized value bit for bit");
    }
    cfg.granularity = QSNN_WQ_PER_CHANNEL;
    ops->forward(&cfg, W, 2, 4, Wq, s);
    ops->codes(&cfg, W, s, 2, 4, c);
    cr_expect_float_eq(s[0], 1.0f / 3.0f, 1e-7);
    cr_expect_float_eq(s[1], 1.0f / 3.0f, 1e-7);
    for (int i = 0; i < 8; i++) cr_expect_eq(Wq[i], s[i / 4] * (float)c[i]);
    /* 8 bits on random weights: error at most half a step, codes in range */
    float Wr[64], Wr_q[64], sr[1];
    int32_t cr[64];
    qsnn_rng r;
    qsnn_rng_init(&r, 3, 0);
    for (int i = 0; i < 64; i++) Wr[i] = qsnn_rng_uniform(&r) - 0.5f;
    cfg.bits = 8, cfg.granularity = QSNN_WQ_PER_TENSOR;
    ops->forward(&cfg, Wr, 1, 64, Wr_q, sr);
    ops->codes(&cfg, Wr, sr, 1, 64, cr);
    for (int i = 0; i < 64; i++) {
        cr_expect_leq(fabsf(Wr_q[i] - Wr[i]), 0.5f * sr[0] * 1.0001f);
        cr_expect(cr[i] >= -128 && cr[i] <= 127);
        cr_expect_eq(Wr_q[i], sr[0] * (float)cr[i]);
    }
}

Test(weight_quant, straight_through_backward) {
    qsnn_weight_quant_cfg cfg = {.bits = 4, .granularity = QSNN_WQ_PER_TENSOR, .method = "uniform_symmetric"};
    const qsnn_weight_quant_ops *ops = qsnn_weight_quant_find("uniform_symmetric");
    const float W[4] = {0.7f, -0.7f, 0.2f, -0.1f};
    float Wq[4], s[1], g[4] = {1, 2, 3, 4};
    ops->forward(&cfg, W, 1, 4, Wq, s);
    ops->backward(&cfg, W, s, 1, 4, g);
    for (int i = 0; i < 4; i++) cr_expect_eq(g[i], (float)(i + 1), "min-max range: every weight inside, identity");
    const float scale_small[1] = {0.01f}; /* a range that clips: outside weights get zero gradient */
    float g2[4] = {1, 1, 1, 1};
    ops->backward(&cfg, W, scale_small, 1, 4, g2);
    cr_expect_eq(g2[0], 0.0f);
    cr_expect_eq(g2[1], 0.0f);
}

Test(weight_quant, one_bit_is_sign_times_mean_magnitude) {
    qsnn_weight_quant_cfg cfg = {.bits = 1, .granularity = QSNN_WQ_PER_CHANNEL, .method = "uniform_symmetric"};
    const qsnn_weight_quant_ops *ops = qsnn_weight_quant_find("uniform_symmetric");
    const float W[8] = {0.5f, -1.0f, 0.25f, 0.0f, 0.1f, -0.3f, 0.2f, -0.4f};
    float Wq[8], s[2], g[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int32_t c[8];
    ops->forward(&cfg, W, 2, 4, Wq, s);
    ops->codes(&cfg, W, s, 2, 4, c);
    cr_expect_float_eq(s[0], 0.4375f, 1e-7, "mean |w| of row 0");
    cr_expect_float_eq(s[1], 0.25f, 1e-7, "mean |w| of row 1");
    const int32_t want[8] = {1, -1, 1, 1, 1, -1, 1, -1};
    for (int i = 0; i < 8; i++) {
        cr_expect_eq(c[i], want[i], "code %d", i);
        cr_expect_eq(Wq[i], s[i / 4] * (float)c[i]);
    }
    ops->backward(&cfg, W, s, 2, 4, g);
    for (int i = 0; i < 8; i++) cr_expect_eq(g[i], (float)(i + 1), "binary weights: straight through everywhere");
}

Test(weight_quant, pow2_scales_are_powers_of_two_covering_the_range) {
    qsnn_weight_quant_cfg cfg = {.bits = 4, .granularity = QSNN_WQ_PER_CHANNEL, .method = "uniform_symmetric",
                                 .pow2 = 1};
    const qsnn_weight_quant_ops *ops = qsnn_weight_quant_find("uniform_symmetric");
    /* row maxima 0.7 (0.7/7 = 0.1 -> 0.125), 0.875 (0.875/7 = 0.125 exactly: kept), 0.3 (-> 0.0625) */
    const float W[6] = {0.7f, -0.2f, 0.875f, 0.1f, -0.3f, 0.01f};
    float Wq[6], s[3];
    int32_t c[6];
    ops->forward(&cfg, W, 3, 2, Wq, s);
    ops->codes(&cfg, W, s, 3, 2, c);
    cr_expect_eq(s[0], 0.125f);
    cr_expect_eq(s[1], 0.125f, "an exact power of two is kept, not doubled");
    cr_expect_eq(s[2], 0.0625f);
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(Wq[i], s[i / 2] * (float)c[i]);
        cr_expect(c[i] >= -8 && c[i] <= 7);
    }
    cr_expect_eq(c[0], 6, "0.7/0.125 = 5.6 -> 6");
    cfg.bits = 1; /* binary: the nearest power of two in log2 (mean 0.45 -> 0.5; 0.14 -> 0.125) */
    const float Wb[4] = {0.4f, -0.5f, 0.13f, -0.15f};
    float Wbq[4], sb[2];
    ops->forward(&cfg, Wb, 2, 2, Wbq, sb);
    cr_expect_eq(sb[0], 0.5f);
    cr_expect_eq(sb[1], 0.125f);
}

Test(state_grid, fixed_point_levels_are_integer_multiples_of_a_power_of_two) {
    qsnn_ctx *ctx = NULL;
    cr_assert_eq(qsnn_ctx_create(NULL, 1, 0, &ctx), QSNN_OK);
    qsnn_state_quant_cfg cfg = {.bits = 4, .grid = QSNN_GRID_FIXED_POINT, .upper_limit = 0.2};
    qsnn_state_quant q = {0};
    /* θ = 1: top 1.2 over 7 steps = 0.171 -> Δ = 0.25; levels -2 .. 1.75 */
    cr_assert_eq(qsnn_state_quant_build(ctx, &cfg, 1.0f, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_expect_eq(q.n, 16);
    cr_expect_eq(q.step_exp, -2);
    for (int i = 0; i < 16; i++) cr_expect_eq(q.levels[i], 0.25f * (float)(i - 8));
    cr_expect_eq(qsnn_state_quant_ref(&q, 0.125f), 0.0f, "a tie goes to the lower level");
    cr_expect_eq(qsnn_state_quant_apply(&q, 0.375f), 0.25f);
    cr_expect_eq(qsnn_state_quant_apply(&q, 9.0f), 1.75f, "saturates at the top code");
    /* 8 bits, θ = 0.5: top 0.6 / 127 -> Δ = 2^-7 */
    cfg.bits = 8;
    cr_assert_eq(qsnn_state_quant_build(ctx, &cfg, 0.5f, &q), QSNN_OK);
    cr_expect_eq(q.step_exp, -7);
    cr_expect_eq(q.levels[0], -1.0f);
    cr_expect_eq(q.levels[255], 127.0f / 128.0f);
    cfg.bits = 1;
    cr_expect_eq(qsnn_state_quant_build(ctx, &cfg, 1.0f, &q), QSNN_ERR_CONFIG);
    cr_expect(strstr(qsnn_last_error(ctx), "at least 2 bits") != NULL, "%s", qsnn_last_error(ctx));
    qsnn_state_quant_free(ctx, &q);
    qsnn_ctx_destroy(&ctx);
}

Test(state_grid, threshold_rest_has_no_dead_zone_at_rest) {
    qsnn_ctx *ctx = NULL;
    cr_assert_eq(qsnn_ctx_create(NULL, 1, 0, &ctx), QSNN_OK);
    for (int bits = 2; bits <= 8; bits++) {
        const int n = 1 << bits;
        double rest[256], tc[256];
        qsnn_state_quant_cfg cr = {.bits = bits, .grid = QSNN_GRID_THRESHOLD_REST, .upper_limit = 0.2};
        qsnn_state_quant_cfg ct = cr;
        ct.grid = QSNN_GRID_THRESHOLD_CENTERED;
        cr_assert_eq(qsnn_state_levels(ctx, &cr, 1.0, rest), QSNN_OK, "%s", qsnn_last_error(ctx));
        cr_assert_eq(qsnn_state_levels(ctx, &ct, 1.0, tc), QSNN_OK);
        const double ustep = 2.2 / (n - 1);
        int k = 1;
        while (rest[k] < 0.0) k++;
        cr_expect_leq(rest[k] - rest[k - 1], ustep * (1 + 1e-9), "%d bits: gap around rest %g > uniform step %g", bits,
                      rest[k] - rest[k - 1], ustep);
        for (int i = 1; i < n; i++) cr_expect_gt(rest[i], rest[i - 1], "%d bits: ascending", bits);
        cr_expect_float_eq(rest[0], -1.0, 1e-12);
        cr_expect_float_eq(rest[n - 1], 1.2, 1e-12);
        int above = 0;
        for (int i = 0; i < n; i++) above += tc[i] > 1.0;
        for (int i = n - above; i < n; i++) cr_expect_float_eq(rest[i], tc[i], 1e-12, "above θ as centered");
        /* finer than uniform just below θ from 4 bits on (where there are levels to spare) */
        if (bits >= 4) cr_expect_lt(1.0 - rest[n - above - 1], ustep, "%d bits: a level within a uniform step of θ", bits);
    }
    qsnn_ctx_destroy(&ctx);
}

Test(state_grid, lsq_step_gradient_follows_the_estimator) {
    /* β = 0 and no reset: the pre-quantization value is the input current itself and dL/dÛ[t] is the
     * given gU[t], so dL/ds = Σ gU · (round(a/s) - a/s inside, -Qn below, Qp above). */
    qsnn_ctx *ctx = NULL;
    cr_assert_eq(qsnn_ctx_create(NULL, 1, 0, &ctx), QSNN_OK);
    qsnn_state_quant_cfg cfg = {.bits = 3, .grid = QSNN_GRID_LSQ, .upper_limit = 0.2, .scale = 0.25};
    qsnn_state_quant q = {0};
    cr_assert_eq(qsnn_state_quant_build(ctx, &cfg, 1.0f, &q), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_expect_eq(q.levels[0], -1.0f, "-4 steps of 0.25");
    cr_expect_eq(q.levels[7], 0.75f, "3 steps");
    enum { T = 5, N = 4 };
    const float cur[T * N] = {0.1f, -2.0f, 0.3f, 0.62f, 1.5f, 0.05f, -0.3f, 0.7f,  0.2f, 0.9f,
                              -0.1f, 0.33f, 0.4f, -1.2f, 0.12f, 0.5f, 0.24f, 0.6f, -0.6f, 2.0f};
    float gU[T * N], U[T * N], S[T * N], gcur[T * N];
    for (int i = 0; i < T * N; i++) gU[i] = 0.1f * (float)(i % 7) - 0.3f;
    qsnn_neuron_params p = {.beta = 0.0f, .theta = 1.0f, .reset = QSNN_RESET_NONE, .surrogate = QSNN_SURR_ARCTAN,
                            .slope = 2.0f};
    const qsnn_neuron_ops *lif = qsnn_neuron_find("lif");
    qsnn_neuron_forward_all(lif, &p, &q, T, N, cur, N, U, N, S, N);
    qsnn_neuron_pgrad pg = {0};
    qsnn_neuron_backward_all(lif, &p, &q, T, N, cur, N, U, NULL, gU, N, gcur, N, &pg);
    double want = 0.0;
    for (int i = 0; i < T * N; i++) {
        const double v = (double)cur[i] / 0.25;
        want += (double)gU[i] * (v < -4 ? -4.0 : (v > 3 ? 3.0 : nearbyint(v) - v));
    }
    cr_expect_float_eq(pg.qp[0], want, 1e-6, "dL/ds %.9g, expected %.9g", pg.qp[0], want);
    cr_expect_neq(want, 0.0);
    cfg.bits = 1;
    cr_expect_eq(qsnn_state_quant_check(ctx, &cfg), QSNN_ERR_CONFIG, "lsq needs 2 bits");
    qsnn_state_quant_free(ctx, &q);
    qsnn_ctx_destroy(&ctx);
}
