/* One entry of model.layers: a hidden layer described in a line of text,
 *   "conv channels=12 kernel=5 pool=max:2"    "dense size=128 dropout=0.2 neuron=synaptic"
 * i.e. the layer type, then key=value options (any order). Conv options: channels (required), kernel
 * (3), stride (1), padding (0), groups (1), pool (none | max:K | avg:K | sum:K); dense: size (required);
 * both: neuron (registry name, default model.neuron), dropout (probability in [0, 1), the mask fixed
 * across time steps), surrogate (name, default model.surrogate) and slope (> 0, default: the
 * surrogate's own), weight_bits and state_bits (0 = float; default: quant.*.layer_bits or quant.*.bits). */
#ifndef QSNN_SIM_LAYER_SPEC_H
#define QSNN_SIM_LAYER_SPEC_H

#include <stddef.h>

typedef enum { QSNN_LAYER_DENSE = 0, QSNN_LAYER_CONV = 1 } qsnn_layer_kind;

typedef struct qsnn_layer_spec {
    qsnn_layer_kind kind;
    int size; /* dense: neurons; conv: output channels */
    int kernel, stride, padding, groups;
    int pool, pool_size; /* qsnn_pool_kind (sim/conv.h) and its window */
    float dropout;
    char neuron[32]; /* "" = model.neuron */
    int surrogate;   /* qsnn_surrogate_id + 1; 0 = model.surrogate */
    float slope;     /* 0 = the surrogate's default (or model.surrogate_slope when the surrogate is not set) */
    int weight_bits, state_bits; /* bits + 1 (1 = float); 0 = the network's setting */
} qsnn_layer_spec;

/* Strict parse; on failure returns -1 with a reason naming the option in err. */
int qsnn_layer_spec_parse(const char *text, qsnn_layer_spec *s, char *err, size_t n);
/* The canonical text (options at their defaults are left out); parses back to the same spec. */
void qsnn_layer_spec_format(const qsnn_layer_spec *s, char *buf, size_t n);

#endif
