/* The engine against fixtures from an independent PyTorch autograd implementation
 * (tests/golden/gen_golden.py): forward spikes exactly, membranes, loss and every gradient closely. */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/engine.h"
#include "test_util.h"
#include "train/loss.h"

typedef struct fixture {
    hid_t file;
    int T, B, F, H, C;
} fixture;

static fixture open_fixture(void) {
    fixture fx;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    fx.file = H5Fopen(QSNN_TEST_DIR "/golden/golden.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(fx.file, 0, "cannot open tests/golden/golden.h5");
    cr_assert_geq(H5LTget_attribute_int(fx.file, "/", "T", &fx.T), 0);
    H5LTget_attribute_int(fx.file, "/", "B", &fx.B);
    H5LTget_attribute_int(fx.file, "/", "F", &fx.F);
    H5LTget_attribute_int(fx.file, "/", "H", &fx.H);
    H5LTget_attribute_int(fx.file, "/", "C", &fx.C);
    return fx;
}

static float *read_f(fixture *fx, const char *grp, const char *name, size_t n) {
    char path[128];
    snprintf(path, sizeof path, "/%s/%s", grp, name);
    float *v = calloc(n, sizeof(float));
    cr_assert_geq(H5LTread_dataset_float(fx->file, path, v), 0, "reading %s", path);
    return v;
}

static void expect_close(const char *what, const float *got, const float *want, size_t n, float rtol, float atol) {
    for (size_t i = 0; i < n; i++)
        cr_expect_leq(fabsf(got[i] - want[i]), atol + rtol * fabsf(want[i]), "%s[%zu]: got %.9g, PyTorch %.9g", what,
                      i, got[i], want[i]);
}

static void run_case(const char *name) {
    fixture fx = open_fixture();
    int state_bits, weight_bits;
    char grid[32] = {0};
    char gpath[64];
    snprintf(gpath, sizeof gpath, "/%s", name);
    H5LTget_attribute_int(fx.file, gpath, "state_bits", &state_bits);
    H5LTget_attribute_int(fx.file, gpath, "weight_bits", &weight_bits);
    H5LTget_attribute_string(fx.file, gpath, "grid", grid);

    qsnn_ctx *ctx = test_ctx(2);
    qsnn_net_cfg cfg;
    qsnn_net_cfg_default(&cfg);
    cfg.n_inputs = fx.F;
    cfg.sizes[0] = fx.H;
    cfg.sizes[1] = fx.C;
    cfg.learn_beta = cfg.learn_theta = 1;
    cfg.state_quant.bits = state_bits;
    cfg.state_quant.grid = qsnn_grid_find(grid);
    cfg.weight_quant.bits = weight_bits;
    cfg.weight_quant.granularity = QSNN_WQ_PER_TENSOR; /* as gen_golden.py */
    qsnn_net *net;
    cr_assert_eq(qsnn_net_create(ctx, &cfg, &net), QSNN_OK, "%s", qsnn_last_error(ctx));
    const int T = fx.T, B = fx.B, F = fx.F, H = fx.H, C = fx.C;
    float *W1 = read_f(&fx, name, "W1", (size_t)H * F), *b1 = read_f(&fx, name, "b1", H);
    float *W2 = read_f(&fx, name, "W2", (size_t)C * H), *b2 = read_f(&fx, name, "b2", C);
    memcpy(net->layer[0].W, W1, sizeof(float) * H * F);
    memcpy(net->layer[0].b, b1, sizeof(float) * H);
    memcpy(net->layer[1].W, W2, sizeof(float) * C * H);
    memcpy(net->layer[1].b, b2, sizeof(float) * C);
    cr_assert_eq(qsnn_net_prepare(net), QSNN_OK);
    if (state_bits) { /* the level table itself, bit for bit */
        float *lv = read_f(&fx, name, "levels", (size_t)1 << state_bits);
        cr_expect_eq(memcmp(lv, net->layer[0].sq.levels, sizeof(float) << state_bits), 0, "levels differ");
        free(lv);
    }
    float *x = read_f(&fx, name, "x", (size_t)B * F);
    int *y = calloc(B, sizeof(int));
    char ypath[64];
    snprintf(ypath, sizeof ypath, "/%s/y", name);
    cr_assert_geq(H5LTread_dataset_int(fx.file, ypath, y), 0);

    qsnn_workspace *ws;
    cr_assert_eq(qsnn_workspace_create(net, B, T, 1, &ws), QSNN_OK);
    cr_assert_eq(qsnn_forward(net, ws, x, 1, B), QSNN_OK);
    const char *un[2] = {"U1", "U2"}, *sn[2] = {"S1", "S2"};
    for (int l = 0; l < 2; l++) {
        const size_t n = (size_t)T * B * net->layer[l].out;
        float *U = read_f(&fx, name, un[l], n), *S = read_f(&fx, name, sn[l], n);
        for (size_t i = 0; i < n; i++) cr_expect_eq(ws->buf[l].S[i], S[i], "%s: spike %s[%zu] differs", name, sn[l], i);
        expect_close(un[l], ws->buf[l].U, U, n, 1e-5f, 1e-5f);
        double count = 0.0; /* the rate the engine reports is the spike count of the forward */
        for (size_t i = 0; i < n; i++) count += S[i];
        cr_expect_eq(qsnn_layer_rate(ws, net, l), count / (double)n, "layer %d rate", l);
        free(U), free(S);
    }
    /* The inference forward gives the same output spikes and membranes without keeping hidden histories. */
    qsnn_workspace *wi;
    cr_assert_eq(qsnn_workspace_create(net, B, T, 0, &wi), QSNN_OK);
    cr_assert_eq(qsnn_forward_infer(net, wi, x, 1, B), QSNN_OK);
    cr_expect_eq(memcmp(wi->buf[1].S, ws->buf[1].S, sizeof(float) * T * B * C), 0, "inference spikes differ");
    cr_expect_eq(memcmp(wi->buf[1].U, ws->buf[1].U, sizeof(float) * T * B * C), 0, "inference membranes differ");
    cr_expect_eq(memcmp(wi->buf[0].U, ws->buf[0].U + (size_t)(T - 1) * B * H, sizeof(float) * B * H), 0,
                 "hidden layer: the kept membrane is the last step's");
    qsnn_workspace_destroy(&wi);
    float *grad = calloc((size_t)T * B * C, sizeof(float));
    int *pred = calloc(B, sizeof(int));
    qsnn_train_cfg tcfg = {0};
    const double loss = qsnn_loss_find("ce_count")->eval(&tcfg, ws->buf[1].S, ws->buf[1].U, T, B, C, y, grad, pred);
    float *want_loss = read_f(&fx, name, "loss", 1);
    cr_expect_float_eq(loss, want_loss[0], 1e-5, "loss %g vs PyTorch %g", loss, want_loss[0]);
    cr_assert_eq(qsnn_backward(net, ws, grad, NULL), QSNN_OK);
    float *gW1 = read_f(&fx, name, "gW1", (size_t)H * F), *gb1 = read_f(&fx, name, "gb1", H);
    float *gW2 = read_f(&fx, name, "gW2", (size_t)C * H), *gb2 = read_f(&fx, name, "gb2", C);
    float *gbeta = read_f(&fx, name, "gbeta", 2), *gtheta = read_f(&fx, name, "gtheta", 2);
    /* atol 1e-5: sums over T·B steps cancel, and float32 PyTorch itself is that far from a float64
     * rerun (e.g. w4_s4_uniform gW1[74]: float64 -0.0258886, ours -0.0258873, PyTorch f32 -0.0258925).
     * A wrong term in the adjoint moves gradients by 1e-3 or more. */
    expect_close("gW1", net->layer[0].gW, gW1, (size_t)H * F, 1e-4f, 1e-5f);
    expect_close("gb1", net->layer[0].gb, gb1, H, 1e-4f, 1e-5f);
    expect_close("gW2", net->layer[1].gW, gW2, (size_t)C * H, 1e-4f, 1e-5f);
    expect_close("gb2", net->layer[1].gb, gb2, C, 1e-4f, 1e-5f);
    const float gb[2] = {net->layer[0].g_beta, net->layer[1].g_beta}, gt[2] = {net->layer[0].g_theta, net->layer[1].g_theta};
    expect_close("gbeta", gb, gbeta, 2, 1e-4f, 1e-6f);
    expect_close("gtheta", gt, gtheta, 2, 1e-4f, 1e-6f);
    free(W1), free(b1), free(W2), free(b2), free(x), free(y), free(grad), free(pred), free(want_loss);
    free(gW1), free(gb1), free(gW2), free(gb2), free(gbeta), free(gtheta);
    qsnn_workspace_destroy(&ws);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
    H5Fclose(fx.file);
}

Test(golden, full_precision_with_learned_beta_theta) { run_case("full_precision"); }
Test(golden, weights4_states4_uniform) { run_case("w4_s4_uniform"); }
Test(golden, states3_threshold_centered) { run_case("s3_threshold_centered"); }
