/* Membrane statistics: level histogram and saturation on known values. */
#include <hdf5.h>
#include <math.h>
#include <string.h>

#include "cli_harness.h"

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

/* ---- per-epoch statistics in the run file ------------------------------------------------------ */

static void read_ll(hid_t f, const char *name, long long *out, int *rank, hsize_t *dims) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    cr_assert_geq(d, 0, "%s missing", name);
    hid_t sp = H5Dget_space(d);
    *rank = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), 0);
    H5Dclose(d);
}

Test(state_stats, train_stores_saturation_and_membrane_histograms_per_epoch, .timeout = 120) {
    harness_setup("state_stats");
    cr_assert_eq(run("train --set data.train_limit=512 --set data.test_limit=100 --set model.hidden=20 "
                     "--set data.steps=6 --set quant.state.bits=4 --epochs 2 --stop-after 1 --no-progress --out '%s'",
                     tmpdir), 0, "%s", err_text);
    cr_assert_eq(run("train --resume '%s/model.h5' --no-progress", tmpdir), 0, "%s", err_text);
    hid_t f = H5Fopen(tpath("model.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    static long long h0[2 * 16], h1[2 * 16];
    int rank;
    hsize_t dims[2];
    read_ll(f, "metrics/membrane_hist_layer0", h0, &rank, dims);
    cr_expect_eq(rank, 2);
    cr_expect(dims[0] == 2 && dims[1] == 16, "[epochs][levels]: [%llu][%llu]", (unsigned long long)dims[0],
              (unsigned long long)dims[1]);
    read_ll(f, "metrics/membrane_hist_layer1", h1, &rank, dims);
    double sat[2 * 2];
    hid_t d = H5Dopen2(f, "metrics/test_saturated", H5P_DEFAULT);
    cr_assert_geq(d, 0);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, sat), 0);
    H5Dclose(d);
    H5Fclose(f);
    for (int e = 0; e < 2; e++) { /* both epochs, the first one written before the resume */
        long long t0 = 0, t1 = 0;
        for (int k = 0; k < 16; k++) t0 += h0[e * 16 + k], t1 += h1[e * 16 + k];
        cr_expect_eq(t0, 6LL * 100 * 20, "epoch %d: every membrane value of the hidden layer counted once", e + 1);
        cr_expect_eq(t1, 6LL * 100 * 10, "epoch %d: output layer", e + 1);
        cr_expect_float_eq(sat[e * 2], (double)(h0[e * 16] + h0[e * 16 + 15]) / (double)t0, 1e-12,
                           "saturated = the two end levels' share");
    }
    harness_teardown();
}
