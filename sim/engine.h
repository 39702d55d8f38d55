/* The time-stepped engine: forward over all T steps layer by layer (one sgemm per feed-forward
 * layer over T·B rows, or over B rows when the input is static), and BPTT in reverse.
 * Buffers come from an arena sized once for (max batch, T); nothing is allocated per step. */
#ifndef QSNN_SIM_ENGINE_H
#define QSNN_SIM_ENGINE_H

#include <stdint.h>
#include "core/arena.h"
#include "sim/network.h"

typedef struct qsnn_layer_buf {
    float *cur;  /* input currents: [B][out] when the layer's input is static, else [T][B][out] */
    float *U;  /* the model's states after quantization, n_states planes of [T][B][out] (inference: [B][out]) */
    float *S;  /* spikes, [T][B][out] (floats: they are the next layer's sgemm input) */
    float *gS; /* dL/dS, [T][B][out] (training only) */
    float *gcur; /* dL/dI, same shape as cur (training only) */
    /* Spike-driven path for narrow layers fed by binary spikes (sgemm is slow at N or K of ~10):
     * transposed weights [in][out] and per-chunk weight-gradient partials. NULL when unused. */
    float *wt, *gw_part;
    /* Convolutions with pooling: the conv output before pooling ([rows][out_h][out_w][out_c]; its gradient
     * in backward) and the max-pool argmax ([rows][out]). NULL when unused. */
    float *conv_y;
    uint8_t *argmax;
    float *drop; /* dropout: the mask of the last training forward, [B][out], 0 or 1/(1-p) */
} qsnn_layer_buf;

/* Convolutions run over chunks of rows so the im2row workspace stays below this many floats (and
 * the chunking, hence every sum, does not depend on the thread count). */
#define QSNN_CONV_COL_BUDGET ((size_t)16 << 20)

/* Layers with at most this many neurons and a spiking input use the spike-driven path. */
#define QSNN_SPARSE_MAX_OUT 64
#define QSNN_SPARSE_MAX_IN 8192 /* index list per row lives on the stack */
/* Fixed number of row chunks for the spike-driven weight gradient: a fixed reduction order, so
 * the result does not depend on the thread count. */
#define QSNN_SPARSE_CHUNKS 16

typedef struct qsnn_workspace {
    int max_B, T, train;
    int B;          /* batch of the last forward */
    int in_static;  /* whether the last forward's input was static */
    int kept;       /* whether the last forward kept every membrane (backward needs them) */
    const float *x; /* the last forward's input (borrowed), or xq */
    float *xq;      /* the input on its grid, [T][B][in] at most (NULL when inputs are not quantized) */
    qsnn_layer_buf buf[QSNN_MAX_LAYERS];
    qsnn_neuron_pgrad *pg; /* per-block partial parameter gradients */
    double *spikes;        /* per-block spike sums of the layer being run */
    float *col, *gw_conv;  /* convolution workspaces: im2row columns, a chunk's weight gradient */
    uint64_t dropout_seed; /* the trainer sets it per batch; 0 = dropout off (evaluation) */
    float *carry;          /* training: per-block backward carries of recurrent layers (QSNN_NEURON_MAX_STATES × block) */
    /* Per-neuron models: per block, QSNN_PN_WS_ARRAYS arrays of BLOCK floats: the parameters of its
     * elements (element j is neuron (j0 + j) % out), their grid gains, and their gradients. */
    float *pn_blk;
    double rate[QSNN_MAX_LAYERS]; /* mean firing rate of each layer in the last forward */
    size_t n_pg;
    qsnn_arena *arena;
} qsnn_workspace;

qsnn_status qsnn_workspace_create(qsnn_net *net, int max_B, int T, int train, qsnn_workspace **out);
void qsnn_workspace_destroy(qsnn_workspace **ws);
/* Turns the spike-driven paths off (their sgemm twins run instead): for tests that compare the two. */
void qsnn_workspace_dense_only(qsnn_workspace *ws);

/* x: [B][n_inputs] when x_static (the same input at every step), else [T][B][n_inputs].
 * x must stay valid until qsnn_backward returns. */
qsnn_status qsnn_forward(qsnn_net *net, qsnn_workspace *ws, const float *x, int x_static, int B);
/* The same outputs without backward's needs: hidden layers keep only their last membrane (their
 * U buffers hold [B][out]); the output layer keeps all steps, as the losses read them. */
qsnn_status qsnn_forward_infer(qsnn_net *net, qsnn_workspace *ws, const float *x, int x_static, int B);
/* Gradients of the loss wrt the output layer's spikes and/or membranes ([T][B][out], either may be NULL);
 * writes the gradients of every parameter (overwriting). */
qsnn_status qsnn_backward(qsnn_net *net, qsnn_workspace *ws, const float *gS_out, const float *gU_out);

/* The input activation quantizer: xq = clamp(round_half_even(x·2^bits), 0, 2^bits) / 2^bits, so inputs
 * in [0, 1] land on the grid k/2^bits (pixels/255 at 8 bits: the codes are the pixel values, bar rounding
 * of p·256/255, and spikes 0/1 stay exact). */
void qsnn_input_quant(int bits, const float *x, float *xq, size_t n);

/* The first layer's current quantizer: cur = step·clamp(round_half_even(cur/step), -kmax, kmax), in place. */
void qsnn_current_quant(float step, int kmax, float *cur, size_t n);

/* Mean firing rate (spikes per neuron per step) of layer l in the last forward. */
double qsnn_layer_rate(const qsnn_workspace *ws, const qsnn_net *net, int l);

#endif
