/* Convolutional, recurrent and dropout networks in the engine: the spike-driven convolution against
 * its sgemm twin, and bit-identical training for 1 and 2 threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config.h"
#include "core/rng.h"
#include "sim/engine.h"
#include "test_util.h"
#include "train/trainer.h"

enum { B = 16, T = 3, C = 10 };

static qsnn_net *make_net(qsnn_ctx *ctx, const char *layers, const char *extra) {
    qsnn_config c;
    qsnn_config_default(&c);
    char set[512];
    snprintf(set, sizeof set, "model.layers=%s", layers);
    cr_assert_eq(qsnn_config_set(ctx, &c, set), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(qsnn_config_set(ctx, &c, "model.input_shape=[1, 12, 12]"), QSNN_OK);
    cr_assert_eq(qsnn_config_set(ctx, &c, "model.inputs=144"), QSNN_OK);
    if (extra) cr_assert_eq(qsnn_config_set(ctx, &c, extra), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_config_resolve(&c);
    cr_assert_eq(qsnn_config_check(ctx, &c), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_net_create(ctx, &c.model, &net), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net_init(net, 3);
    for (int l = 0; l < net->n_layers; l++) /* livelier than the default init: more spikes */
        for (size_t i = 0; i < net->layer[l].nw; i++) net->layer[l].W[i] *= 2.5f;
    cr_assert_eq(qsnn_net_prepare(net), QSNN_OK);
    return net;
}

static void inputs(float *x, int *y, int n, uint64_t stream) {
    qsnn_rng r;
    qsnn_rng_init(&r, 42, stream);
    for (int i = 0; i < n; i++) x[i] = qsnn_rng_uniform(&r);
    for (int b = 0; b < B; b++) y[b] = (int)qsnn_rng_below(&r, C);
}

static int close_rel(float a, float b, float tol) { return fabsf(a - b) <= tol * (1.0f + fabsf(b)); }

/* The second convolution reads spikes, so it takes the spike-driven kernels; a workspace told to run
 * dense must give the same currents and gradients (up to summation order) and the same spikes. */
Test(conv_engine, spike_path_matches_dense_twin) {
    qsnn_ctx *ctx = test_ctx(2);
    qsnn_net *net = make_net(ctx, "[conv channels=6 kernel=3 padding=1 pool=max:2, conv channels=8 kernel=3]", NULL);
    qsnn_workspace *ws[2];
    for (int k = 0; k < 2; k++) cr_assert_eq(qsnn_workspace_create(net, B, T, 1, &ws[k]), QSNN_OK);
    cr_assert_not_null(ws[0]->buf[1].wt, "the spike path should be on for layer 1");
    qsnn_workspace_dense_only(ws[1]);
    float x[T * B * 144], g[T * B * C];
    int y[B];
    inputs(x, y, T * B * 144, 0);
    for (int i = 0; i < T * B * C; i++) g[i] = (float)((i * 7) % 11) / 11.0f - 0.4f;
    const qsnn_layer *L1 = &net->layer[1];
    float *gW[2];
    double spikes = 0;
    for (int k = 0; k < 2; k++) {
        qsnn_net_zero_grad(net);
        cr_assert_eq(qsnn_forward(net, ws[k], x, 0, B), QSNN_OK);
        cr_assert_eq(qsnn_backward(net, ws[k], g, NULL), QSNN_OK);
        gW[k] = malloc(L1->nw * sizeof(float));
        memcpy(gW[k], L1->gW, L1->nw * sizeof(float));
    }
    const size_t n1 = (size_t)T * B * L1->out;
    int bad = 0;
    for (size_t i = 0; i < n1 && bad < 5; i++) {
        if (!close_rel(ws[0]->buf[1].cur[i], ws[1]->buf[1].cur[i], 1e-5f)) {
            bad++;
            cr_expect(0, "current %zu: %.9g (spikes) vs %.9g (dense)", i, ws[0]->buf[1].cur[i], ws[1]->buf[1].cur[i]);
        }
        if (ws[0]->buf[1].S[i] != ws[1]->buf[1].S[i]) {
            bad++;
            cr_expect(0, "spike %zu differs", i);
        }
    }
    for (size_t i = 0; i < (size_t)T * B * net->layer[0].out; i++) spikes += ws[0]->buf[0].S[i];
    cr_expect_gt(spikes, 100.0, "layer 0 should fire: the spike path would be idle");
    float gmax = 0.0f;
    for (size_t i = 0; i < L1->nw; i++) gmax = fmaxf(gmax, fabsf(gW[1][i]));
    cr_expect_gt(gmax, 0.0f);
    for (size_t i = 0; i < L1->nw && bad < 10; i++)
        if (fabsf(gW[0][i] - gW[1][i]) > 1e-5f * gmax) {
            bad++;
            cr_expect(0, "layer1.gW[%zu]: %.9g (spikes) vs %.9g (dense)", i, gW[0][i], gW[1][i]);
        }
    free(gW[0]), free(gW[1]);
    for (int k = 0; k < 2; k++) qsnn_workspace_destroy(&ws[k]);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

/* A few training steps with 1 and with 2 threads: identical losses and weights, bit for bit. */
static void train(int threads, const char *layers, const char *extra, double *loss, float **w, size_t *nw) {
    qsnn_ctx *ctx = test_ctx(threads);
    qsnn_net *net = make_net(ctx, layers, extra);
    const qsnn_train_cfg tcfg = {.epochs = 1, .batch = B, .optimizer = "adam", .lr = 1e-2f, .beta1 = 0.9f,
                                 .beta2 = 0.999f, .eps = 1e-8f, .schedule = "constant", .loss = "ce_count"};
    qsnn_data_cfg dcfg = {.steps = T};
    snprintf(dcfg.encoding, sizeof dcfg.encoding, "direct");
    qsnn_trainer *tr;
    cr_assert_eq(qsnn_trainer_create(ctx, net, &tcfg, &dcfg, NULL, 5, &tr), QSNN_OK, "%s", qsnn_last_error(ctx));
    float x[B * 144];
    int y[B], pred[B];
    for (int s = 0; s < 3; s++) {
        inputs(x, y, B * 144, 10 + s);
        cr_assert_eq(qsnn_trainer_step(tr, x, 1, y, B, 1e-2f, &loss[s], pred), QSNN_OK, "%s", qsnn_last_error(ctx));
    }
    *nw = 0;
    for (int l = 0; l < net->n_layers; l++) *nw += net->layer[l].nw;
    *w = malloc(*nw * sizeof(float));
    size_t k = 0;
    for (int l = 0; l < net->n_layers; l++, k += net->layer[l - 1].nw)
        memcpy(*w + k, net->layer[l].W, net->layer[l].nw * sizeof(float));
    qsnn_trainer_destroy(&tr);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

static void compare(const char *layers, const char *extra) {
    double l1[3], l2[3];
    float *w1, *w2;
    size_t n1, n2;
    train(1, layers, extra, l1, &w1, &n1);
    train(2, layers, extra, l2, &w2, &n2);
    for (int s = 0; s < 3; s++) cr_expect_eq(l1[s], l2[s], "step %d: loss %.17g vs %.17g", s, l1[s], l2[s]);
    cr_assert_eq(n1, n2);
    cr_expect_eq(memcmp(w1, w2, n1 * sizeof(float)), 0, "weights differ between 1 and 2 threads");
    cr_expect_neq(l1[0], l1[2], "training did not move: the comparison would be vacuous");
    free(w1), free(w2);
}

Test(conv_engine, conv_dropout_1_vs_2_threads) {
    compare("[conv channels=6 kernel=3 padding=1 pool=max:2, conv channels=8 kernel=3 pool=avg:2, dense size=40 "
            "dropout=0.3]",
            NULL);
}
Test(conv_engine, recurrent_synaptic_1_vs_2_threads) {
    compare("[dense size=300 neuron=synaptic]", "model.recurrent=full");
}

/* Dropout is a training-time mask: evaluation runs without it, and two training steps draw
 * different masks. */
Test(conv_engine, dropout_only_in_training) {
    qsnn_ctx *ctx = test_ctx(2);
    qsnn_net *net = make_net(ctx, "[dense size=64 dropout=0.5]", NULL);
    qsnn_workspace *ws;
    cr_assert_eq(qsnn_workspace_create(net, B, T, 1, &ws), QSNN_OK);
    float x[B * 144];
    int y[B];
    inputs(x, y, B * 144, 1);
    const size_t n = (size_t)T * B * 64;
    float *S0 = malloc(n * sizeof(float)), *S1 = malloc(n * sizeof(float));
    cr_assert_eq(qsnn_forward(net, ws, x, 1, B), QSNN_OK);
    memcpy(S0, ws->buf[0].S, n * sizeof(float));
    ws->dropout_seed = 7;
    cr_assert_eq(qsnn_forward(net, ws, x, 1, B), QSNN_OK);
    memcpy(S1, ws->buf[0].S, n * sizeof(float));
    int silenced = 0, scaled = 0;
    for (size_t i = 0; i < (size_t)B * 64; i++) {
        const float m = ws->buf[0].drop[i];
        cr_assert(m == 0.0f || m == 2.0f, "mask %g", m);
        for (int t = 0; t < T; t++) cr_expect_eq(S1[t * B * 64 + i], S0[t * B * 64 + i] * m, "mask fixed over steps");
        silenced += m == 0.0f, scaled += m == 2.0f;
    }
    cr_expect(silenced > 300 && scaled > 300, "p = 0.5: %d silenced, %d kept", silenced, scaled);
    free(S0), free(S1);
    qsnn_workspace_destroy(&ws);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}
