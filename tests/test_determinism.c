/* The same seed gives the same result for any thread count: a few training steps with 1 and with
 * 2 threads must give identical losses and identical weights, bit for bit. Also for rate coding
 * and quantized weights and states (other code paths). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "datasets/encoder.h"
#include "test_util.h"
#include "train/trainer.h"

enum { F = 100, STEPS = 3 };

typedef struct outcome {
    double loss[STEPS];
    float *w0, *w1;
    size_t n0, n1;
} outcome;

static outcome train_steps(int threads, const char *encoding, int quant) {
    qsnn_ctx *ctx = test_ctx(threads);
    qsnn_net_cfg cfg;
    qsnn_net_cfg_default(&cfg);
    cfg.n_inputs = F;
    cfg.sizes[0] = 300; /* 32 x 300 neurons: several blocks, so threads really split the work */
    if (quant) cfg.weight_quant.bits = 4, cfg.weight_quant.granularity = QSNN_WQ_PER_CHANNEL, cfg.state_quant.bits = 4;
    qsnn_net *net;
    cr_assert_eq(qsnn_net_create(ctx, &cfg, &net), QSNN_OK);
    qsnn_net_init(net, 11);
    const qsnn_train_cfg tcfg = {.epochs = 1, .batch = 32, .optimizer = "adam", .lr = 1e-2f, .beta1 = 0.9f,
                                 .beta2 = 0.999f, .eps = 1e-8f, .schedule = "constant", .loss = "ce_count"};
    qsnn_data_cfg dcfg = {.steps = 12};
    snprintf(dcfg.encoding, sizeof dcfg.encoding, "%s", encoding);
    qsnn_trainer *tr;
    cr_assert_eq(qsnn_trainer_create(ctx, net, &tcfg, &dcfg, NULL, 5, &tr), QSNN_OK, "%s", qsnn_last_error(ctx));
    const qsnn_encoder_ops *enc = qsnn_encoder_find(encoding);
    float *x = malloc(32 * F * sizeof(float)), *xe = malloc(12 * 32 * F * sizeof(float));
    int y[32], pred[32];
    int64_t ids[32];
    outcome o;
    for (int s = 0; s < STEPS; s++) {
        qsnn_rng r;
        qsnn_rng_init(&r, 99, (uint64_t)s);
        for (int i = 0; i < 32 * F; i++) x[i] = qsnn_rng_uniform(&r);
        for (int b = 0; b < 32; b++) y[b] = (int)qsnn_rng_below(&r, 10), ids[b] = s * 32 + b;
        enc->encode(x, 32, F, 12, 5, 0, ids, xe);
        cr_assert_eq(qsnn_trainer_step(tr, xe, enc->is_static, y, 32, 1e-2f, &o.loss[s], pred), QSNN_OK);
    }
    o.n0 = (size_t)net->layer[0].in * net->layer[0].out;
    o.n1 = (size_t)net->layer[1].in * net->layer[1].out;
    o.w0 = malloc(o.n0 * sizeof(float));
    o.w1 = malloc(o.n1 * sizeof(float));
    memcpy(o.w0, net->layer[0].W, o.n0 * sizeof(float));
    memcpy(o.w1, net->layer[1].W, o.n1 * sizeof(float));
    free(x), free(xe);
    qsnn_trainer_destroy(&tr);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
    return o;
}

static void compare(const char *encoding, int quant) {
    outcome a = train_steps(1, encoding, quant), b = train_steps(2, encoding, quant);
    for (int s = 0; s < STEPS; s++)
        cr_expect_eq(a.loss[s], b.loss[s], "step %d: loss %.17g with 1 thread, %.17g with 2", s, a.loss[s], b.loss[s]);
    cr_expect_eq(memcmp(a.w0, b.w0, a.n0 * sizeof(float)), 0, "layer 0 weights differ between 1 and 2 threads");
    cr_expect_eq(memcmp(a.w1, b.w1, a.n1 * sizeof(float)), 0, "layer 1 weights differ between 1 and 2 threads");
    cr_expect_neq(a.loss[0], a.loss[STEPS - 1], "training did not move: the comparison would be vacuous");
    free(a.w0), free(a.w1), free(b.w0), free(b.w1);
}

Test(determinism, direct_encoding_1_vs_2_threads) { compare("direct", 0); }
Test(determinism, rate_encoding_1_vs_2_threads) { compare("rate", 0); }
Test(determinism, quantized_1_vs_2_threads) { compare("direct", 1); }
