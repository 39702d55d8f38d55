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
#include "sim/conv.h"
#include "sim/layer_spec.h"

#define QSNN_MAX_LAYERS 8

/* Recurrent connections of hidden layers: cur[t] += V S[t-1]. */
typedef enum { QSNN_REC_NONE = 0, QSNN_REC_FULL = 1, QSNN_REC_ONE_TO_ONE = 2 } qsnn_recurrence;

/* A per-layer list of integers (n = 0: not given, every layer uses the network-wide value). */
typedef struct qsnn_layer_ints {
    int n;
    int v[QSNN_MAX_LAYERS];
} qsnn_layer_ints;

/* A per-layer list of registry names (n = 0: not given, every layer uses the network-wide value). */
typedef struct qsnn_layer_names {
    int n;
    char v[QSNN_MAX_LAYERS][32];
} qsnn_layer_names;

/* Fractional bits of the leak β in integer-exact models (quant.integer): β = m / 2^8. */
#define QSNN_INT_BETA_BITS 8

typedef struct qsnn_net_cfg {
    int n_inputs;                 /* 784 for 28x28 images */
    int n_layers;                 /* layers, the last one is the (dense) output */
    int sizes[QSNN_MAX_LAYERS];   /* neurons per layer (conv: channels × pooled height × width) */
    /* model.layers: the hidden layers described one by one (n_specs = n_layers - 1), or 0: model.hidden's
     * dense layers. in_shape: the input as [channels, height, width] for convolutions (n = 0: one channel,
     * square). */
    int n_specs;
    qsnn_layer_spec spec[QSNN_MAX_LAYERS - 1];
    qsnn_layer_ints in_shape;
    char neuron[32];              /* registry name of the hidden layers' model, "lif" */
    char output_neuron[32];       /* the output layer's model; "" = the same as neuron ("li": a readout) */
    int recurrent;                /* hidden layers: QSNN_REC_NONE, _FULL (V [N][N]) or _ONE_TO_ONE (V [N]) */
    qsnn_neuron_params neuron_params;
    int learn_beta, learn_theta, learn_alpha; /* learned by the optimizer */
    /* β, θ and α are one value per neuron ("layerN.theta" has the layer's size) instead of one per layer.
     * State grids follow each neuron's threshold: neuron o's grid is the layer's grid (built for the
     * configured θ) scaled by θ_o/θ (qsnn_layer.q_gain). */
    int per_neuron;
    int bias;                     /* dense layers have a bias */
    qsnn_state_quant_cfg state_quant;   /* bits: every layer, unless state_layer_bits is given */
    qsnn_weight_quant_cfg weight_quant; /* bits: every layer, unless weight_layer_bits is given */
    qsnn_layer_ints weight_layer_bits, state_layer_bits; /* per-layer bit widths (0 = float) */
    /* per-layer weight quantizers (qsnn_weight_quant_find names) and state grids (qsnn_grid_find names) */
    qsnn_layer_names weight_layer_method, state_layer_grid;
    int input_bits; /* 0 = off; else inputs in [0, 1] go to the grid k / 2^input_bits (activation quantizer) */
    /* The first layer's input current (W x + b), quantized every step before it enters the membrane:
     * 0 = off, else codes in [-(2^(b-1)-1), 2^(b-1)-1] with step current_range·θ/(2^(b-1)-1) (a power
     * of two, rounded up, in integer-exact models); straight-through gradient. */
    int current_bits;
    double current_range;
    /* Integer-exact fake quantization (quantizers.md §8): power-of-two weight scales, the fixed_point
     * state grid, β with QSNN_INT_BETA_BITS fractional bits, biases and θ on the accumulator grid and
     * 8-bit inputs, so that every float operation of the forward pass is exact and the integer engine
     * (sim/int_engine.h) reproduces it spike for spike. */
    int integer;
    qsnn_lq_opts lq; /* learned quantizers' options (quant.qn.*, quant.cpq.*), weights and states */
} qsnn_net_cfg;

typedef struct qsnn_layer {
    qsnn_layer_kind kind;
    qsnn_conv_shape conv; /* kind == QSNN_LAYER_CONV: W is [out_c][kh][kw][in_c/groups], states channels-last */
    float dropout;       /* training: probability of silencing a neuron for a whole sample (all T steps) */
    int in, out;
    size_t nw;           /* weights: in·out (dense) or the kernel's size (conv) */
    int w_rows;          /* rows of W as the weight quantizer sees it: out (dense) or out_c (conv) */
    float *W, *b;        /* master weights [out][in] and bias [out] (b NULL without bias) */
    float *bias_fwd;     /* the bias the forward pass adds: b, or its copy on the accumulator grid (integer) */
    float *Wq;           /* forward weights: fake-quantized copy, or W itself when weights are float */
    float *w_scales;     /* weight quantizer scales (1 or out), NULL when float */
    float *gW, *gb;      /* gradients of the master parameters */
    float beta, theta, alpha; /* neuron parameters (learned when the cfg says so); per-neuron models: the
                               * configured values, θ the reference of the state grid */
    float g_beta, g_theta, g_alpha;
    /* Per-neuron models: pn[QSNN_PN_*] holds `out` values of each parameter the model uses (else NULL),
     * g_pn their gradients; q_gain[o] = θ_o/θ when θ is per neuron (else NULL). */
    float *pn[QSNN_PN_COUNT], *g_pn[QSNN_PN_COUNT], *q_gain;
    /* Recurrent weights (rec != QSNN_REC_NONE): V [out][out] or [out]; Vq the forward copy (fake-quantized
     * by min-max uniform_symmetric at the layer's weight bits, or V itself), v_scales its scales. */
    qsnn_recurrence rec;
    float *V, *Vq, *gV, *v_scales;
    float state_scale, g_state_scale; /* the lsq state grid's learned step (unused by other grids) */
    /* qil, qn, cpq state grids: the two learned values (qsnn_state_quant_cfg.p; "layerN.state_center", ...,
     * qsnn_state_lq_name) and their gradients (unused by other grids) */
    float state_p[2], g_state_p[2];
    float cur_step;      /* first layer with quant.current: the input current's step (0: not quantized) */
    int cur_kmax;        /* ... and its largest code */
    qsnn_neuron_params np; /* the parameters in effect for the current step (β clamped) */
    const qsnn_neuron_ops *ops;
    const qsnn_weight_quant_ops *wq;
    qsnn_weight_quant_cfg wq_cfg;   /* this layer's weight quantizer settings (bits per layer) */
    float *wq_learned, *g_wq_learned; /* the weight quantizer's learned parameters (LSQ), NULL when none */
    qsnn_state_quant_cfg sq_cfg;    /* this layer's state quantizer settings */
    qsnn_state_quant sq;            /* state 0 (the membrane) */
    qsnn_state_quant sq_aux[QSNN_NEURON_MAX_STATES - 1]; /* the model's other quantized states, same grid */
} qsnn_layer;

/* State s's quantizer in layer L, or NULL (float, or a state the model does not quantize). */
static inline const qsnn_state_quant *qsnn_layer_sq(const qsnn_layer *L, int s) {
    if (!(L->ops->quantized & (1u << s))) return NULL;
    const qsnn_state_quant *q = s ? &L->sq_aux[s - 1] : &L->sq;
    return q->enabled ? q : NULL;
}
/* Neuron o's state-grid gain (1 without per-neuron thresholds). */
static inline float qsnn_layer_qgain(const qsnn_layer *L, int o) { return L->q_gain ? L->q_gain[o] : 1.0f; }
/* The level index (of the layer's grid) of neuron o's quantized state v, undoing its gain; -1 when v is
 * not a level (gained values are matched to the nearest level: g·l/g need not round back to l). */
static inline int qsnn_layer_level_index(const qsnn_layer *L, int o, float v) {
    if (!L->q_gain || !L->sq.enabled) return qsnn_state_level_index(&L->sq, v);
    return qsnn_state_level_index(&L->sq, qsnn_state_quant_ref(&L->sq, v / L->q_gain[o]));
}
/* Number of elements of V (0 without recurrence). */
static inline size_t qsnn_layer_nv(const qsnn_layer *L) {
    return L->rec == QSNN_REC_FULL ? (size_t)L->out * L->out : (L->rec == QSNN_REC_ONE_TO_ONE ? (size_t)L->out : 0);
}
/* Whether every layer is a feed-forward LIF layer (what the integer engine, NIR, PTQ and the
 * continuous-time conversion handle); otherwise *why names the first layer that is not. */
int qsnn_net_plain_lif(const qsnn_net_cfg *cfg, const char **why);

typedef struct qsnn_net {
    qsnn_ctx *ctx;
    qsnn_net_cfg cfg;
    int n_layers;
    qsnn_layer layer[QSNN_MAX_LAYERS];
    /* The pass qsnn_net_prepare prepares for (qsnn_lq_pass): the trainer sets these around each training
     * step and clears them after, so every other forward pass sees the hard quantizers. */
    int training, epoch;
    uint64_t quant_seed;
} qsnn_net;

/* A learnable tensor as the optimizer and checkpoints see it. */
typedef struct qsnn_param {
    char name[32]; /* "layer0.weight", "layer0.bias", "layer0.beta", "layer0.theta", "layer0.weight_scale" */
    float *data, *grad;
    size_t n;
    int learnable; /* 0: saved in checkpoints but not updated (β or θ when not learned) */
} qsnn_param;

#define QSNN_MAX_PARAMS (12 * QSNN_MAX_LAYERS)

/* Defaults of the built-in configuration (784-1000-10 LIF, β 0.95, θ 1, arctan). */
void qsnn_net_cfg_default(qsnn_net_cfg *cfg);
/* Validates sizes, names and ranges; the message names the config key. */
qsnn_status qsnn_net_cfg_check(qsnn_ctx *ctx, const qsnn_net_cfg *cfg);
/* Bit widths of layer l after per-layer overrides (0 = float). */
int qsnn_net_cfg_weight_bits(const qsnn_net_cfg *cfg, int l);
int qsnn_net_cfg_state_bits(const qsnn_net_cfg *cfg, int l);
/* Weight quantizer name and state grid of layer l after per-layer overrides (quant.weight.layer_method,
 * quant.state.layer_grid); the grid is -1 when the per-layer name is unknown (qsnn_net_cfg_check says so). */
const char *qsnn_net_cfg_weight_method(const qsnn_net_cfg *cfg, int l);
qsnn_grid qsnn_net_cfg_state_grid(const qsnn_net_cfg *cfg, int l);
/* Whether layer L's states use the learned-step (lsq) grid. */
static inline int qsnn_layer_lsq_state(const qsnn_layer *L) {
    return L->sq_cfg.bits > 0 && L->sq_cfg.grid == QSNN_GRID_LSQ;
}
/* The first layer whose states use a learned grid with two values (qil, qn, cpq), or -1. The integer engine
 * and PTQ (qsnn quantize) refuse such models: their tables change with the training pass and the learned values. */
int qsnn_net_learned_state_layer(const qsnn_net_cfg *cfg);
/* Whether layer L's states use a learned grid with two values (qil, qn, cpq). */
static inline int qsnn_layer_lq_state(const qsnn_layer *L) {
    return L->sq_cfg.bits > 0 && qsnn_grid_learned(L->sq_cfg.grid);
}
/* Fills sizes[] of the model.layers entries (conv: channels × pooled size) from their shapes; entries
 * whose shape is invalid get 0 (qsnn_net_cfg_check explains). */
void qsnn_net_cfg_resolve_sizes(qsnn_net_cfg *cfg);
/* Fractional bits of the input grid in effect: input_bits, or 8 for integer-exact models. */
int qsnn_net_input_bits(const qsnn_net_cfg *cfg);

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
/* The weight bits layer L uses (the mean over its scale groups for learned widths, CPQ; 32 when float). */
double qsnn_layer_weight_bits(const qsnn_layer *L);

#endif
