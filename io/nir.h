/* NIR (Neuromorphic Intermediate Representation) export and import, HDF5 flavour.
 *
 * File layout (what the reference `nir` package writes and reads)
 * ----------------------------------------------------------------
 *   /version                scalar string, the NIR version targeted ("1.0.0")
 *   /node/                  the top graph:
 *     type                  scalar string "NIRGraph"
 *     nodes/ID/             one group per node, with a scalar string `type` and one dataset per
 *                           parameter, named as NIR names them; anything else in `metadata/`
 *     edges                 [E][2] strings (variable-length UTF-8 on export), source then target
 *     metadata/             graph metadata (optional)
 *
 * Export: nodes `input` (Input, shape int64 [n_inputs]), per layer N `fcN` (Affine: weight float32
 * [out][in], bias float32 [out]; Linear: weight, when the network has no bias) and `lifN` (LIF: tau, r,
 * v_leak, v_threshold, v_reset, float32 [out] each), `output` (Output, shape int64 [out]); edges
 * input→fc0→lif0→fc1→lif1→…→output. A layer with β = 1 (no leak, τ infinite) is an `IF` node
 * instead (r, v_threshold, v_reset). Discrete time maps to NIR's continuous LIF
 * (τ dv/dt = (v_leak − v) + r I) with the forward-Euler step dt:
 *     τ = dt / (1 − β),   r = τ / dt,   v_leak = 0,   v_reset = 0,   v_threshold = θ
 * so that 1 − dt/τ = β and the input gain r·dt/τ = 1. Weights, bias, β and θ are the values the
 * forward pass uses (fake-quantized weights; for integer-exact models β, θ and the bias after rounding
 * onto their grids). What NIR cannot express goes into each node's `metadata/` group (flat datasets):
 *   lifN/metadata: dt (f64), beta and theta (f32, as stored: import restores them bit for bit), reset
 *                  ("subtract", "zero", "none"), neuron ("lif"), and with state quantization
 *                  (this layer's settings) state_quant_bits (i64),
 *                  state_quant_grid (string), state_quant_lower_limit, state_quant_upper_limit,
 *                  state_quant_multiplier (f64), state_quant_ste_clip (i64), state_quant_levels (f32 [n]),
 *                  and for the learned grids qil, qn, cpq state_quant_learned (f32 [2], the layer's two values)
 *   fcN/metadata:  with weight quantization weight_quant_bits (i64), weight_quant_granularity
 *                  ("per_tensor" | "per_channel"), weight_quant_method (string), weight_quant_pow2
 *                  (i64), weight_codes (i32 [out][in]), weight_scales (f32 [1] or [out]);
 *                  weight = codes × scales; a learned quantizer's parameters (LSQ) as
 *                  weight_quant_learned_NAME (f32, one per scale: _scale, _zero_point)
 *   node/metadata: source ("qsnn"), qsnn_version, dt (f64), input_bits, integer and current_bits (i64),
 *                  current_range (f64), qsnn_config
 *                  (the resolved YAML, when given)
 * Only "lif" layers with a Heaviside spike are exported (the soft test surrogate is refused).
 * The file is written atomically ("PATH.tmp.<pid>", then rename).
 *
 * Import accepts variable- and fixed-length strings (any padding), nodes in any order (the chain is
 * ordered by following the edges from the Input node), nested graphs (a node of type NIRGraph: edges
 * into it go to its Input, edges out of it leave from its Output), a missing v_reset (= 0), neuron
 * parameters of shape [] or [1] (one value for the layer, as snnTorch writes them), float32,
 * float64 and integer numbers, `Flatten` nodes (no-ops on flat inputs), and ignores `input_type` /
 * `output_type` subgroups (older NIR versions write them). It builds a chain of dense layers:
 * (Affine | Linear) then (LIF | IF), repeated, ending at the Output. Without metadata:
 *     β = 1 − dt/τ  (dt from metadata, else the option, default 1e-4), θ = v_threshold,
 *     reset "zero" (NIR's semantics: v = v_reset = 0 after a spike)
 * and when the input gain g = r·dt/τ (IF: r·dt) is not 1 (beyond float32 rounding, |g − 1| > 1e-6)
 * it is folded into the preceding weight rows and bias: W[o][:] *= g[o], b[o] *= g[o].
 * With metadata (qsnn's own files), β, θ, the reset rule and the quantizer settings (bit widths per
 * layer, input bits, integer mode) come from it.
 * Refused, each with one line naming the node (and dataset): a missing /node or type, an unknown
 * dataset in a node group, a missing parameter, a shape that does not fit, a non-finite value,
 * v_leak ≠ 0, v_reset ≠ 0, τ or v_threshold that differ across the neurons of a node (qsnn has one β
 * and θ per layer), τ < dt, θ <= 0, node types qsnn cannot run (CubaLIF, Conv2d, pools, …),
 * recurrent subgraphs (a cycle), branches and merges, a chain that is not (weights → neurons)+.
 *
 * Errors: QSNN_ERR_IO (missing or unreadable file, cannot write), QSNN_ERR_FORMAT (not HDF5,
 * truncated, not NIR, a malformed node), QSNN_ERR_MISMATCH (shapes), QSNN_ERR_UNSUPPORTED (what qsnn
 * cannot represent), QSNN_ERR_NUMERIC (non-finite values), QSNN_ERR_HDF5 (anything else). */
#ifndef QSNN_IO_NIR_H
#define QSNN_IO_NIR_H

#include "core/context.h"
#include "sim/network.h"

#define QSNN_NIR_VERSION "1.0.0"
#define QSNN_NIR_DEFAULT_DT 1e-4
/* |r·dt/τ − 1| up to this is float32 rounding of τ and r, not a gain to fold. */
#define QSNN_NIR_GAIN_TOL 1e-6
#define QSNN_NIR_MAX_LEARNED 4

typedef struct qsnn_nir_export_opts {
    double dt;               /* time step in seconds; 0: QSNN_NIR_DEFAULT_DT; < 0 or not finite: QSNN_ERR_ARG */
    const char *config_yaml; /* stored as node/metadata/qsnn_config when not NULL */
} qsnn_nir_export_opts;

/* Writes the network as a NIR graph (layout above). opts may be NULL (defaults). The network is not
 * modified. */
qsnn_status qsnn_nir_export(qsnn_ctx *ctx, const char *path, const qsnn_net *net, const qsnn_nir_export_opts *opts);

/* One dense layer as read from a NIR graph. */
typedef struct qsnn_nir_layer {
    int in, out;
    float *W;    /* [out][in], the gain folded in (owned by the model) */
    float *b;    /* [out], or NULL for a Linear node */
    float beta, theta;
    float *beta_n, *theta_n; /* per-neuron values (τ or v_threshold differ across neurons), else NULL; β and
                              * θ above are then the reference values (the state grid's θ) */
    qsnn_reset reset;
    int beta_from_meta, reset_from_meta;
    int folded;  /* 1 when an input gain r·dt/τ ≠ 1 was folded into W and b */
    char fc_node[128], lif_node[128]; /* node names (nested: "outer/inner") for messages */
    int has_state_quant;              /* state quantizer settings from metadata */
    qsnn_state_quant_cfg state_quant;
    int has_weight_quant;             /* weight quantizer settings from metadata */
    qsnn_weight_quant_cfg weight_quant;
    float *levels;                    /* state levels recorded in metadata (n_levels), or NULL */
    int n_levels;
    int n_learned;                    /* learned weight quantizer parameters (LSQ) from metadata */
    char learned_name[QSNN_NIR_MAX_LEARNED][32];
    float *learned[QSNN_NIR_MAX_LEARNED];
    size_t n_learned_values[QSNN_NIR_MAX_LEARNED];
} qsnn_nir_layer;

typedef struct qsnn_nir_model {
    char version[32];  /* the file's /version ("" when absent) */
    int n_inputs;
    int n_layers;
    double dt;         /* the dt used for β = 1 − dt/τ */
    int dt_from_meta;
    int input_bits, integer; /* from node/metadata (qsnn files), else 0 */
    int current_bits;        /* the first layer's current quantizer (qsnn files), else 0 */
    double current_range;
    qsnn_nir_layer layer[QSNN_MAX_LAYERS];
} qsnn_nir_model;

typedef struct qsnn_nir_import_opts {
    double dt; /* used where the file's metadata gives none; 0: QSNN_NIR_DEFAULT_DT; < 0: QSNN_ERR_ARG */
    int reset; /* -1: from metadata, else NIR's "zero"; else a qsnn_reset forced on every layer */
} qsnn_nir_import_opts;

/* Reads and checks a NIR file (rules above) into *out; opts may be NULL. On error *out is empty.
 * Release with qsnn_nir_model_free. */
qsnn_status qsnn_nir_import(qsnn_ctx *ctx, const char *path, const qsnn_nir_import_opts *opts, qsnn_nir_model *out);
void qsnn_nir_model_free(qsnn_ctx *ctx, qsnn_nir_model *m);

/* Sets the fields of cfg the model determines (inputs, layer sizes, neuron "lif", reset, bias, default
 * β and θ from layer 0, quantizer settings from metadata: state and weight quantization are off when
 * the file has none); leaves the others (surrogate, learning flags) as they are. Layers whose reset
 * rule or quantizer settings differ are refused (qsnn has one per network). */
qsnn_status qsnn_nir_net_cfg(qsnn_ctx *ctx, const qsnn_nir_model *m, qsnn_net_cfg *cfg);
/* Creates the network from cfg (as filled by qsnn_nir_net_cfg) with the model's parameters. With weight
 * quantization on, the master weights are the imported forward weights; when the network does not
 * compute with exactly the imported weights, biases and state levels (a quantizer need not map its own
 * output onto itself to the last bit), weight quantization is switched off in cfg (*wq_dropped = 1,
 * not for integer-exact models) and the check repeated; still unequal: QSNN_ERR_UNSUPPORTED.
 * wq_dropped may be NULL. */
qsnn_status qsnn_nir_create_net(qsnn_ctx *ctx, const qsnn_nir_model *m, qsnn_net_cfg *cfg, qsnn_net **out,
                                int *wq_dropped);

#endif
