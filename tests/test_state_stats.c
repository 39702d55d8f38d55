/* Membrane statistics: level histogram and saturation on known values. */
#include <math.h>
#include <string.h>

#include "sim/state_stats.h"
#include "test_util.h"

Test(state_stats, quantized_values_count_per_level_and_ends) {
    qsnn_ctx *ctx = test_ctx(2);
    qsnn_net_cfg cfg;
    qsnn_net_cfg_default(&cfg);
    cfg.n_inputs = 4, cfg.sizes[0] = 3;
    cfg.state_quant.bits = 2; /* uniform levels -1, -0.2667, 0.4667, 1.2 */
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_net_create(ctx, &cfg, &net), QSNN_OK, "%s", qsnn_last_error(ctx));
    const qsnn_layer *L = &net->layer[0];
    const float *lv = L->sq.levels;
    float U[2000];
    for (int i = 0; i < 2000; i++) U[i] = lv[i % 7 < 4 ? i % 7 : 1]; /* levels 0,1,2,3,1,1,1 repeating */
    qsnn_state_stats s;
    qsnn_state_stats_init(&s, L);
    cr_expect_eq(s.per_level, 1);
    cr_expect_eq(s.n_bins, 4);
    qsnn_state_stats_add(&s, L, U, 2000);
    long long want[4] = {0};
    for (int i = 0; i < 2000; i++) want[i % 7 < 4 ? i % 7 : 1]++;
    for (int k = 0; k < 4; k++) cr_expect_eq(s.counts[k], want[k], "level %d", k);
    cr_expect_eq(s.total, 2000);
    cr_expect_eq(s.saturated, want[0] + want[3]);
    cr_expect_float_eq(qsnn_state_stats_saturation(&s), (double)(want[0] + want[3]) / 2000.0, 1e-12);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

Test(state_stats, float_states_use_the_configured_range) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_net_cfg cfg;
    qsnn_net_cfg_default(&cfg);
    cfg.n_inputs = 4, cfg.sizes[0] = 3;
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_net_create(ctx, &cfg, &net), QSNN_OK);
    const qsnn_layer *L = &net->layer[0];
    qsnn_state_stats s;
    qsnn_state_stats_init(&s, L);
    cr_expect_eq(s.per_level, 0);
    cr_expect_eq(s.n_bins, QSNN_HIST_FLOAT_BINS);
    cr_expect_float_eq(s.lo, -1.0, 1e-9);
    cr_expect_float_eq(s.hi, 1.2, 1e-6);
    const float U[5] = {-3.0f, -1.0f, 0.3f, 1.2f, 5.0f};
    qsnn_state_stats_add(&s, L, U, 5);
    cr_expect_eq(s.saturated, 2, "outside [-1, 1.2]: -3 and 5");
    cr_expect_eq(s.counts[0], 2, "-3 and -1 in the first bin");
    cr_expect_eq(s.counts[QSNN_HIST_FLOAT_BINS - 1], 2, "1.2 and 5 in the last bin");
    cr_expect_eq(s.counts[37], 1, "0.3: (0.3 + 1) / 2.2 * 64 = 37.8");
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}
