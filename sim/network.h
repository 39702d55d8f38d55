/* A feed-forward network of dense spiking layers: float master parameters, the fake-quantized
 * weights the forward pass uses, each layer's neuron model and state quantizer.
 * Ownership: the network owns all its arrays; qsnn_net_destroy frees them. */
#ifndef QSNN_SIM_NETWORK_H
#define QSNN_SIM_NETWORK_H

#include <stdint.h>
#include "core/context.h"
#include "neurons/neuron.h"
#include "quant/state_quant.h"
#include "quant/weight_quant.h"

#define QSNN_MAX_LAYERS 8

typedef struct qsnn_net_cfg {
    int n_inputs;                 /* 784 for 28x28 images */
    int n_layers;                 /* dense layers, the last one is the output */
    int sizes[QSNN_MAX_LAYERS];   /* neurons per layer */
    char neuron[32];              /* registry name, "lif" */
    qsnn_neuron_params neuron_params;
    int learn_beta, learn_theta;  /* per layer, learned by the optimizer */
    int bias;                     /* dense layers have a bias */
    qsnn_state_quant_cfg state_quant;
    qsnn_weight_quant_cfg weight_quant;
} qsnn_net_cfg;

typedef struct qsnn_layer {
    int in, out;
    float *W, *b;        /* master weights [out][in] and bias [out] (b NULL without bias) */
    float *Wq;           /* forward weights: fake-quantized copy, or W itself when weights are float */
    float *w_scales;     /* weight quantizer scales (1 or out), NULL when float */
    float *gW, *gb;      /* gradients of the master parameters */
    float beta, theta;   /* neuron parameters (learned when the cfg says so) */
    float g_beta, g_theta;
    qsnn_neuron_params np; /* the parameters in effect for the current step (β clamped) */
    const qsnn_neuron_ops *ops;
    const qsnn_weight_quant_ops *wq;
    qsnn_state_quant sq;
} qsnn_layer;

typedef struct qsnn_net {
    qsnn_ctx *ctx;
    qsnn_net_cfg cfg;
    int n_layers;
    qsnn_layer layer[QSNN_MAX_LAYERS];
} qsnn_net;

/* A learnable tensor as the optimizer and checkpoints see it. */
typedef struct qsnn_param {
    char name[32]; /* "layer0.weight", "layer0.bias", "layer0.beta", "layer0.theta" */
    float *data, *grad;
    size_t n;
    int learnable; /* 0: saved in checkpoints but not updated (β or θ when not learned) */
} qsnn_param;

#define QSNN_MAX_PARAMS (4 * QSNN_MAX_LAYERS)

/* Defaults of the built-in configuration (784-1000-10 LIF, β 0.95, θ 1, arctan). */
void qsnn_net_cfg_default(qsnn_net_cfg *cfg);
/* Validates sizes, names and ranges; the message names the config key. */
qsnn_status qsnn_net_cfg_check(qsnn_ctx *ctx, const qsnn_net_cfg *cfg);

qsnn_status qsnn_net_create(qsnn_ctx *ctx, const qsnn_net_cfg *cfg, qsnn_net **out);
void qsnn_net_destroy(qsnn_net **net);
/* PyTorch Linear's default init, U(-1/sqrt(in), 1/sqrt(in)) for weights and biases, from the
 * counter-based RNG (stream QSNN_STREAM_INIT + layer). */
void qsnn_net_init(qsnn_net *net, uint64_t seed);
/* Before each forward pass after a parameter change: clamps β, refuses non-finite parameters,
 * fake-quantizes the weights, rebuilds state grids when θ moved. */
qsnn_status qsnn_net_prepare(qsnn_net *net);
/* Fills `list` (QSNN_MAX_PARAMS entries) and returns the count. */
int qsnn_net_params(qsnn_net *net, qsnn_param *list);
void qsnn_net_zero_grad(qsnn_net *net);

#endif
