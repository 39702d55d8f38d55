/* BPTT against central finite differences. The "soft" surrogate makes the spike sigmoid(k(U-θ)) in
 * the forward pass and the reset R[t] = S[t-1] carry gradient, so the network is smooth and the
 * analytic gradient must match the numerical one. Covers every reset rule, static and time-varying
 * inputs, all losses, learned β and θ, recurrent layers (full and one-to-one V), and the other
 * neuron models of the registry in hidden and output layers. */
#include <math.h>
#include <stdlib.h>

#include "sim/engine.h"
#include "test_util.h"
#include "train/loss.h"
#include "cli/config.h"
#include <stdio.h>

enum { F = 6, H = 5, C = 3, T = 7, B = 2, FMAX = 2 * 5 * 5 };

typedef struct problem {
    qsnn_ctx *ctx;
    qsnn_net *net;
    qsnn_workspace *ws;
    float x[T * B * FMAX];
    int F; /* inputs in this problem */
    int y[B];
    int x_static;
    const qsnn_loss_ops *loss;
    qsnn_train_cfg tcfg;
    float grad[T * B * C];
    int pred[B];
    uint64_t dropout_seed;
} problem;

static double loss_of(problem *p, int backward) {
    cr_assert_eq(qsnn_net_prepare(p->net), QSNN_OK);
    p->ws->dropout_seed = p->dropout_seed; /* the same masks at every evaluation */
    cr_assert_eq(qsnn_forward(p->net, p->ws, p->x, p->x_static, B), QSNN_OK);
    const qsnn_layer_buf *out = &p->ws->buf[p->net->n_layers - 1];
    double l = p->loss->eval(&p->tcfg, out->S, out->U, T, B, C, p->y, backward ? p->grad : NULL, p->pred);
    if (backward)
        cr_assert_eq(qsnn_backward(p->net, p->ws, p->loss->uses_membrane ? NULL : p->grad,
                                   p->loss->uses_membrane ? p->grad : NULL), QSNN_OK);
    return l;
}

/* Compares dL/dv (analytic) with the central difference for one scalar v. */
static void check_scalar(problem *p, float *v, float analytic, const char *what) {
    const float h = 1e-3f, keep = *v;
    *v = keep + h;
    const double lp = loss_of(p, 0);
    *v = keep - h;
    const double lm = loss_of(p, 0);
    *v = keep;
    const double fd = (lp - lm) / (2.0 * h);
    cr_expect_leq(fabs(fd - analytic), 2e-3 + 2e-2 * fabs(fd), "%s: analytic %.6g, finite difference %.6g", what,
                  analytic, fd);
}

typedef struct variant {
    qsnn_recurrence rec;
    const char *hidden, *output; /* neuron models; NULL = lif */
    const char *layers;          /* model.layers (a --set value), inputs 2x5x5; NULL = one dense hidden layer */
    int per_neuron;              /* β, θ, α per neuron, spread so that every neuron differs */
} variant;

static void run_v(qsnn_reset reset, int x_static, const char *loss, variant v) {
    problem *p = calloc(1, sizeof *p);
    p->ctx = test_ctx(2);
    qsnn_net_cfg cfg;
    qsnn_net_cfg_default(&cfg);
    cfg.n_inputs = p->F = F, cfg.sizes[0] = H, cfg.sizes[1] = C;
    cfg.neuron_params.surrogate = QSNN_SURR_SOFT;
    cfg.neuron_params.slope = 4.0f;
    cfg.neuron_params.reset = reset;
    cfg.neuron_params.reset_grad = 1;
    cfg.neuron_params.beta = 0.9f;
    cfg.learn_beta = cfg.learn_theta = cfg.learn_alpha = 1;
    cfg.recurrent = v.rec;
    cfg.per_neuron = v.per_neuron;
    if (v.hidden) snprintf(cfg.neuron, sizeof cfg.neuron, "%s", v.hidden);
    if (v.output) snprintf(cfg.output_neuron, sizeof cfg.output_neuron, "%s", v.output);
    if (v.layers) {
        qsnn_config full;
        qsnn_config_default(&full);
        full.model = cfg;
        char set[512];
        snprintf(set, sizeof set, "model.layers=%s", v.layers);
        cr_assert_eq(qsnn_config_set(p->ctx, &full, set), QSNN_OK, "%s", qsnn_last_error(p->ctx));
        cr_assert_eq(qsnn_config_set(p->ctx, &full, "model.input_shape=[2, 5, 5]"), QSNN_OK);
        full.model.n_inputs = p->F = FMAX;
        qsnn_config_resolve(&full);
        cfg = full.model;
        p->dropout_seed = 12345;
    }
    cr_assert_eq(qsnn_net_create(p->ctx, &cfg, &p->net), QSNN_OK, "%s", qsnn_last_error(p->ctx));
    qsnn_net_init(p->net, 7);
    for (int l = 0; l < p->net->n_layers; l++) /* larger weights: membranes around the threshold */
        for (size_t i = 0; i < p->net->layer[l].nw; i++) p->net->layer[l].W[i] *= 3.0f;
    for (int l = 0; l < p->net->n_layers; l++) { /* distinct per-neuron values (α > β for alpha neurons) */
        qsnn_layer *L = &p->net->layer[l];
        for (int o = 0; o < L->out; o++) {
            const float f = (float)(o % 5) / 4.0f;
            if (L->pn[QSNN_PN_BETA]) L->pn[QSNN_PN_BETA][o] = 0.75f + 0.2f * f;
            if (L->pn[QSNN_PN_THETA]) L->pn[QSNN_PN_THETA][o] = 0.8f + 0.5f * f;
            if (L->pn[QSNN_PN_ALPHA]) L->pn[QSNN_PN_ALPHA][o] = 0.8f + 0.15f * (1.0f - f);
        }
    }
    qsnn_layer *L0 = &p->net->layer[0];
    for (size_t i = 0; i < qsnn_layer_nv(L0); i++) /* recurrent weights of either sign, one-to-one too */
        L0->V[i] = 0.8f * (float)(((int)(i * 53) % 17) - 8) / 8.0f;
    cr_assert_eq(qsnn_workspace_create(p->net, B, T, 1, &p->ws), QSNN_OK);
    for (int i = 0; i < T * B * p->F; i++) p->x[i] = (float)((i * 37) % 101) / 101.0f;
    p->y[0] = 1, p->y[1] = 2;
    p->x_static = x_static;
    p->loss = qsnn_loss_find(loss);
    p->tcfg.correct_rate = 0.8f, p->tcfg.incorrect_rate = 0.2f;
    loss_of(p, 1);
    /* Copy the analytic gradients before finite differences overwrite the workspace. */
    qsnn_param params[QSNN_MAX_PARAMS];
    const int np = qsnn_net_params(p->net, params);
    float *saved[QSNN_MAX_PARAMS];
    for (int k = 0; k < np; k++) {
        saved[k] = malloc(params[k].n * sizeof(float));
        for (size_t i = 0; i < params[k].n; i++) saved[k][i] = params[k].grad[i];
    }
    int nonzero = 0;
    for (int k = 0; k < np; k++)
        for (size_t i = 0; i < params[k].n; i += (params[k].n > 8 ? 3 : 1)) {
            char what[2200];
            snprintf(what, sizeof what, "%.64s[%zu] (%.32s, %.64s)", params[k].name, i, qsnn_reset_name(reset), loss);
            check_scalar(p, &params[k].data[i], saved[k][i], what);
            nonzero += fabsf(saved[k][i]) > 1e-4f;
        }
    cr_expect_gt(nonzero, 10, "too few non-zero gradients (%d): the check would be vacuous", nonzero);
    for (int k = 0; k < np; k++) free(saved[k]);
    qsnn_workspace_destroy(&p->ws);
    qsnn_net_destroy(&p->net);
    qsnn_ctx_destroy(&p->ctx);
    free(p);
}

static void run(qsnn_reset reset, int x_static, const char *loss) { run_v(reset, x_static, loss, (variant){0}); }

Test(grad, subtract_static_ce_count) { run(QSNN_RESET_SUBTRACT, 1, "ce_count"); }
Test(grad, subtract_dynamic_ce_count) { run(QSNN_RESET_SUBTRACT, 0, "ce_count"); }
Test(grad, zero_static_ce_count) { run(QSNN_RESET_ZERO, 1, "ce_count"); }
Test(grad, none_dynamic_mse_count) { run(QSNN_RESET_NONE, 0, "mse_count"); }
Test(grad, subtract_static_max_membrane) { run(QSNN_RESET_SUBTRACT, 1, "ce_max_membrane"); }
Test(grad, zero_dynamic_mse_count) { run(QSNN_RESET_ZERO, 0, "mse_count"); }

Test(grad, recurrent_full_static_ce_count) {
    run_v(QSNN_RESET_SUBTRACT, 1, "ce_count", (variant){.rec = QSNN_REC_FULL});
}
Test(grad, recurrent_full_dynamic_zero_mse_count) {
    run_v(QSNN_RESET_ZERO, 0, "mse_count", (variant){.rec = QSNN_REC_FULL});
}
Test(grad, recurrent_one_to_one_dynamic_ce_count) {
    run_v(QSNN_RESET_SUBTRACT, 0, "ce_count", (variant){.rec = QSNN_REC_ONE_TO_ONE});
}

/* Convolutions (stride, padding, groups, every pooling), flattened into a dense layer with dropout. */
Test(grad, conv_max_pool_static_ce_count) {
    run_v(QSNN_RESET_SUBTRACT, 1, "ce_count",
          (variant){.layers = "[conv channels=4 kernel=3 padding=1 pool=max:2, dense size=5 dropout=0.3]"});
}
Test(grad, conv_avg_sum_pool_dynamic_mse_count) {
    run_v(QSNN_RESET_ZERO, 0, "mse_count",
          (variant){.layers = "[conv channels=4 kernel=3 padding=1 groups=2 pool=avg:2, conv channels=4 kernel=1 pool=sum:2]"});
}
Test(grad, conv_stride_no_pool_max_membrane) {
    run_v(QSNN_RESET_SUBTRACT, 0, "ce_max_membrane", (variant){.layers = "[conv channels=3 kernel=3 stride=2]"});
}

/* Other neuron models inside a network: the engine's handling of several state planes and α. */
Test(grad, synaptic_hidden_li_readout) {
    run_v(QSNN_RESET_SUBTRACT, 0, "ce_count", (variant){.hidden = "synaptic", .output = "li"});
}
Test(grad, alif_hidden_recurrent) {
    run_v(QSNN_RESET_SUBTRACT, 1, "ce_count", (variant){.hidden = "alif", .rec = QSNN_REC_FULL});
}
/* Per-neuron β, θ, α (model.per_neuron): every neuron's own gradient. */
Test(grad, per_neuron_lif_static_ce_count) {
    run_v(QSNN_RESET_SUBTRACT, 1, "ce_count", (variant){.per_neuron = 1});
}
Test(grad, per_neuron_zero_dynamic_mse_count) { run_v(QSNN_RESET_ZERO, 0, "mse_count", (variant){.per_neuron = 1}); }
Test(grad, per_neuron_synaptic_recurrent_li_readout) {
    run_v(QSNN_RESET_SUBTRACT, 0, "ce_count",
          (variant){.hidden = "synaptic", .output = "li", .rec = QSNN_REC_ONE_TO_ONE, .per_neuron = 1});
}
Test(grad, per_neuron_conv_max_pool) {
    run_v(QSNN_RESET_SUBTRACT, 1, "ce_count",
          (variant){.layers = "[conv channels=2 kernel=3 padding=1 pool=max:2, dense size=4]", .per_neuron = 1});
}
Test(grad, conv_two_layers_dynamic_ce_count) {
    run_v(QSNN_RESET_SUBTRACT, 0, "ce_count", (variant){.layers = "[conv channels=4 kernel=3, conv channels=4 kernel=3]"});
}
