/* Weight fake-quantizers as a traits table (specs/quantizers.md §1, §3). A quantizer maps the float
 * master weights W[out][in] to fake-quantized weights Ŵ used by the forward pass, exposes the integer
 * codes with their scales (codes × scale == Ŵ bit for bit), and passes gradients back, to W and to
 * its learned parameters when it has any (LSQ's step size, a learned zero point).
 *
 * Required slots: name, forward, backward, codes. Optional: n_learned (0 = none), learned_names and
 * init (required when n_learned > 0), min_bits (0 = 1). A new quantizer = one new file + one
 * registry line in weight_quant.c.
 *
 * Learned parameters live with the network (qsnn_layer) and are listed with its parameters as
 * "layerN.weight_NAME" (so the optimizer updates them and checkpoints store them); the quantizer sees
 * them through cfg->learned: group k, scale group j at learned[k·ns + j], ns = qsnn_weight_quant_nscales,
 * when every group holds one value per scale; groups of group_size values are laid out as
 * qsnn_wq_learned_offset says. backward writes (overwrites) their gradients into cfg->learned_grad,
 * same layout. In training passes (cfg->pass.training) a quantizer may be soft or random (QN, CPQ);
 * with training = 0 it is the hard quantizer whose codes × scales equal Ŵ. */
#ifndef QSNN_QUANT_WEIGHT_QUANT_H
#define QSNN_QUANT_WEIGHT_QUANT_H

#include <stdint.h>
#include "core/context.h"
#include "quant/lq_opts.h"

typedef enum { QSNN_WQ_PER_TENSOR = 0, QSNN_WQ_PER_CHANNEL = 1 } qsnn_wq_granularity;

typedef struct qsnn_weight_quant_cfg {
    int bits;                        /* 0 = off; 1..16 (1: binary ±s with s = mean|w|) */
    qsnn_wq_granularity granularity; /* one scale per tensor or per output neuron (row) */
    char method[32];                 /* registry name; "uniform_symmetric" */
    int pow2;                        /* scales are powers of two (rescaling becomes a shift) */
    qsnn_lq_opts lq;                 /* QN / CPQ options (quant.qn.*, quant.cpq.*) */
    /* Per layer, set by the network (NULL in configurations): learned parameters and their gradients. */
    const float *learned;
    float *learned_grad;
    qsnn_lq_pass pass; /* set by the network before each forward; zero = inference */
} qsnn_weight_quant_cfg;

typedef struct qsnn_weight_quant_ops {
    const char *name;
    /* Ŵ from W; writes the scales (1 or `out` of them). */
    void (*forward)(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *Wq, float *scales);
    /* Gradient wrt W from the gradient wrt Ŵ, in place (straight-through with clipping mask). */
    void (*backward)(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in,
                     float *grad);
    /* Integer codes (scales as written by forward). */
    void (*codes)(const qsnn_weight_quant_cfg *cfg, const float *W, const float *scales, int out, int in,
                  int32_t *codes);
    int n_learned;                    /* learned parameter groups, each with one value per scale */
    const char *const *learned_names; /* their names ("scale", "zero_point") */
    /* Data-driven initial values of the learned parameters from W. */
    void (*init)(const qsnn_weight_quant_cfg *cfg, const float *W, int out, int in, float *learned);
    int min_bits;                     /* smallest bit width it supports (0: 1) */
    int max_bits;                     /* largest (0: 16); QN keeps 2^b - 2 breakpoints per scale */
    int no_pow2;                      /* power-of-two scales are not available (the scale is learned) */
    /* Values per scale group of learned group k (NULL: 1 each), e.g. QN's breakpoints, CPQ's gates. */
    int (*group_size)(const qsnn_weight_quant_cfg *cfg, int k);
    unsigned frozen; /* bit k: group k is stored (checkpoints) but not trained (QN's breakpoints) */
    /* The bit width in use, averaged over the scale groups (NULL: cfg->bits); CPQ's learned widths. */
    double (*effective_bits)(const qsnn_weight_quant_cfg *cfg, int out, int in);
} qsnn_weight_quant_ops;

/* Learned parameter layout: group k starts at qsnn_wq_learned_offset(.., k); scale group j's m-th value
 * of it is at that offset + j·size_k + m. */
int qsnn_wq_group_size(const qsnn_weight_quant_ops *ops, const qsnn_weight_quant_cfg *cfg, int k);
size_t qsnn_wq_learned_offset(const qsnn_weight_quant_ops *ops, const qsnn_weight_quant_cfg *cfg, int ns, int k);
size_t qsnn_wq_learned_total(const qsnn_weight_quant_ops *ops, const qsnn_weight_quant_cfg *cfg, int ns);

const qsnn_weight_quant_ops *qsnn_weight_quant_find(const char *name);
/* The registry in order: entry i < qsnn_weight_quant_count() (for conformance tests). */
int qsnn_weight_quant_count(void);
const qsnn_weight_quant_ops *qsnn_weight_quant_at(int i);
const char *qsnn_weight_quant_names(void);
qsnn_status qsnn_weight_quant_check(qsnn_ctx *ctx, const qsnn_weight_quant_cfg *cfg);
static inline int qsnn_weight_quant_nscales(const qsnn_weight_quant_cfg *cfg, int out) {
    return cfg->granularity == QSNN_WQ_PER_CHANNEL ? out : 1;
}

/* The uniform symmetric quantizer (min-max range, codes in [-2^(b-1), 2^(b-1)-1]; 1 bit: codes ±1). */
extern const qsnn_weight_quant_ops qsnn_wq_uniform_symmetric;
/* Uniform affine, min-max range with a zero point: codes q in [0, 2^b-1], Ŵ = s (q - z); the integer
 * codes handed out are q - z. */
extern const qsnn_weight_quant_ops qsnn_wq_uniform_affine;
/* LSQ (Esser et al. 2020): symmetric, learned step size s with the gradient scale 1/sqrt(N·Qp). */
extern const qsnn_weight_quant_ops qsnn_wq_lsq;
/* LSQ with a learned zero point (affine, unsigned codes; z real, rounded with a straight-through
 * estimator). */
extern const qsnn_weight_quant_ops qsnn_wq_lsq_affine;
/* QIL (Jung et al. 2019): learned interval centre, half-width and exponent (quant/wq_qil.c). */
extern const qsnn_weight_quant_ops qsnn_wq_qil;
/* Quantization Networks (Yang et al. 2019): a soft staircase in training passes, learned output and input
 * scales, k-means breakpoints fixed at init (quant/wq_qn.c). */
extern const qsnn_weight_quant_ops qsnn_wq_qn;
/* CPQ (Lee et al. 2021): learned step and noise, DropBits in training, optional learned bit width per
 * scale group (gates; effective_bits) (quant/wq_cpq.c). */
extern const qsnn_weight_quant_ops qsnn_wq_cpq;

/* Round to a power of two: up (keeps a range) or to the nearest in log2. */
float qsnn_pow2_up(float s);
float qsnn_pow2_nearest(float s);

#endif
