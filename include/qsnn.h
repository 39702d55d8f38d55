/* qsnn: quantized, recurrent spiking neural networks in C.
 *
 * Overview. A network (sim/network.h) is a stack of dense layers of spiking neurons; each layer
 * has float master weights, the fake-quantized weights its forward pass uses (quant/weight_quant.h)
 * and a neuron model from an ops table (neurons/neuron.h) whose membrane can be quantized at every
 * time step (quant/state_quant.h: uniform, threshold-centered and zero-centered grids). The engine
 * (sim/engine.h) runs layer by layer over all T steps — one matrix product per layer, then the
 * neurons advance through time — and backpropagates through time with surrogate gradients.
 * Quantizers: weight quantizers as a traits table (uniform symmetric/affine, LSQ with learned steps
 * and zero points), state grids (uniform, threshold-centered, zero-centered, threshold_rest,
 * fixed_point), per-layer bit widths; integer-exact models run on the integer-only engine
 * (sim/int_engine.h) spike for spike; post-training quantization in train/ptq.h.
 * train/ holds losses, optimizers and the training loop, datasets/ the IDX reader and input
 * encoders, io/ HDF5 checkpoints, spike traces, NIR graphs and integer model files. The
 * continuous-time engine (sim/cvode_engine.h) and population networks (sim/popnet.h) simulate
 * biophysical models on SUNDIALS CVODE. Every call that can fail returns a qsnn_status and leaves a
 * one-line message in the context (qsnn_last_error). Results do not depend on the thread count.
 *
 * Worked example: one training step of a 784-1000-10 LIF network with 4-bit membranes.
 *
 *     qsnn_ctx *ctx;
 *     qsnn_ctx_create(NULL, 2, 42, &ctx);              // 2 threads, seed 42
 *     qsnn_net_cfg cfg;
 *     qsnn_net_cfg_default(&cfg);                       // 784-1000-10, β 0.95, θ 1, arctan
 *     cfg.state_quant.bits = 4;                         // stateful quantization, uniform grid
 *     qsnn_net *net;
 *     if (qsnn_net_create(ctx, &cfg, &net)) { puts(qsnn_last_error(ctx)); return 1; }
 *     qsnn_net_init(net, 42);
 *     qsnn_train_cfg tc = {.batch = 128, .optimizer = "adam", .lr = 5e-4f, .beta1 = 0.9f,
 *                          .beta2 = 0.999f, .eps = 1e-8f, .schedule = "constant", .loss = "ce_count"};
 *     qsnn_data_cfg dc = {.encoding = "direct", .steps = 25};
 *     qsnn_trainer *tr;
 *     qsnn_trainer_create(ctx, net, &tc, &dc, NULL, 42, &tr);
 *     double loss; int pred[128];
 *     qsnn_trainer_step(tr, x, 1, labels, 128, 5e-4f, &loss, pred);  // x: [128][784], static input
 *     qsnn_trainer_destroy(&tr);
 *     qsnn_net_destroy(&net);
 *     qsnn_ctx_destroy(&ctx);
 */
#ifndef QSNN_H
#define QSNN_H

#include "core/arena.h"
#include "core/context.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/tensor.h"
#include "datasets/batch.h"
#include "datasets/encoder.h"
#include "datasets/idx.h"
#include "io/checkpoint.h"
#include "io/int_model.h"
#include "io/nir.h"
#include "io/spike_log.h"
#include "io/trace.h"
#include "io/trace_compare.h"
#include "neurons/ct_model.h"
#include "neurons/neuron.h"
#include "quant/range.h"
#include "quant/state_quant.h"
#include "quant/weight_quant.h"
#include "sim/cvode_engine.h"
#include "sim/engine.h"
#include "sim/int_engine.h"
#include "sim/network.h"
#include "sim/popnet.h"
#include "sim/state_stats.h"
#include "train/int_eval.h"
#include "train/loss.h"
#include "train/optim.h"
#include "train/ptq.h"
#include "train/trainer.h"

#endif
