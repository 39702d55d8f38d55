/* Convolution and pooling kernels for convolutional spiking layers (standalone; the engine calls them).
 *
 * Layout: activations are channels-last per row, x[r][h][w][c] at r*(H*W*C) + (h*W + w)*C + c, where a
 * row is one sample at one time step (the engine passes rows = T·B, or B for a static input).
 * Weights W[oc][kh][kw][ic_g] with ic_g = in_c/groups, bias[oc]. Zero padding on all sides.
 *
 * The fast path is im2row + one qsnn_sgemm per group over all rows·positions; results do not depend
 * on the thread count. Every kernel has a scalar reference twin (_ref) with direct loops. None of
 * these functions allocates: the caller provides the workspace `col` (qsnn_conv_col_floats). */
#ifndef QSNN_SIM_CONV_H
#define QSNN_SIM_CONV_H

#include <stddef.h>
#include <stdint.h>
#include "core/context.h"

typedef enum { QSNN_POOL_NONE = 0, QSNN_POOL_MAX, QSNN_POOL_AVG, QSNN_POOL_SUM } qsnn_pool_kind;

/* Largest max-pool window side: the argmax (index in the window) is stored in a uint8_t. */
#define QSNN_POOL_MAX_SIZE 15

typedef struct qsnn_conv_shape {
    int in_c, in_h, in_w, out_c, kh, kw, stride, pad, groups; /* zero padding on all sides */
    qsnn_pool_kind pool;
    int pool_size; /* non-overlapping pool_size² windows (stride = size) over the conv output */
    /* derived by qsnn_conv_shape_check: */
    int out_h, out_w;   /* conv output */
    int pool_h, pool_w; /* after pooling (= out_h/out_w without pooling); floor division like PyTorch */
} qsnn_conv_shape;

/* Validates the shape and fills the derived sizes. QSNN_ERR_CONFIG with a message naming the
 * offending field and its value (e.g. "conv: kernel 5x5 larger than the padded input 4x4"). */
qsnn_status qsnn_conv_shape_check(qsnn_ctx *ctx, qsnn_conv_shape *s);

/* Floats in the im2row workspace for `rows` rows: rows·out_h·out_w·kh·kw·in_c. */
size_t qsnn_conv_col_floats(const qsnn_conv_shape *s, int rows);

/* Number of weights (out_c·kh·kw·in_c/groups). */
size_t qsnn_conv_weight_count(const qsnn_conv_shape *s);

/* y[rows][out_h][out_w][out_c] = conv(x) + bias (bias may be NULL). col: workspace of
 * qsnn_conv_col_floats (unused for 1x1, stride 1, pad 0 kernels, where x already is the im2row). */
void qsnn_conv_forward(const qsnn_conv_shape *s, const float *W, const float *bias, const float *x, int rows,
                       float *col, float *y);

/* Given gy (shape of y): gW (overwritten; may be NULL when another path computes it), gbias (overwritten;
 * may be NULL) and gx (overwritten; may be NULL, the first layer needs no input gradient). col: workspace,
 * its contents are clobbered. */
void qsnn_conv_backward(const qsnn_conv_shape *s, const float *W, const float *x, const float *gy, int rows,
                        float *col, float *gW, float *gbias, float *gx);

/* Pools the conv output y[rows][out_h][out_w][out_c] into p[rows][pool_h][pool_w][out_c]. For MAX,
 * argmax[same shape as p] gets the index of the maximum within the window (row-major, ties: the first);
 * argmax may be NULL otherwise. AVG divides the window sum by pool_size². NONE copies y to p. */
void qsnn_pool_forward(const qsnn_conv_shape *s, const float *y, int rows, float *p, uint8_t *argmax);

/* Gradient of the pooling: gy (shape of y, overwritten; zero where no window covers it) from gp. */
void qsnn_pool_backward(const qsnn_conv_shape *s, const float *gp, const uint8_t *argmax, int rows, float *gy);

/* Scalar reference twins: direct loops (double accumulators), no BLAS, no threads. */
void qsnn_conv_forward_ref(const qsnn_conv_shape *s, const float *W, const float *bias, const float *x, int rows,
                           float *y);
void qsnn_conv_backward_ref(const qsnn_conv_shape *s, const float *W, const float *x, const float *gy, int rows,
                            float *gW, float *gbias, float *gx);

/* Spike-driven twins for binary inputs (sim/conv_spikes.c): they visit only the nonzero inputs, and
 * every nonzero entry counts as 1. Rows are independent; results do not depend on the thread count. */

/* y = conv(x) + bias (bias may be NULL) for x whose entries are 0 or 1 (spikes): for every input element
 * that is 1, adds its weight slice to the outputs whose receptive field holds it. Equals
 * qsnn_conv_forward up to the order of the sums (adding w equals adding 1·w bit for bit).
 * wt: workspace of qsnn_conv_spikes_wt_floats (the transposed weights, rewritten on every call). */
void qsnn_conv_forward_spikes(const qsnn_conv_shape *s, const float *W, const float *bias, const float *x,
                              int rows, float *wt, float *y);
/* gW (overwritten) and gbias (overwritten, may be NULL) for binary x, visiting only the inputs that
 * fired. part: workspace of qsnn_conv_spikes_part_floats (a partial gW per fixed row chunk, summed in
 * chunk order). */
void qsnn_conv_weight_grad_spikes(const qsnn_conv_shape *s, const float *x, const float *gy, int rows,
                                  float *part, float *gW, float *gbias);
size_t qsnn_conv_spikes_wt_floats(const qsnn_conv_shape *s);   /* = qsnn_conv_weight_count */
size_t qsnn_conv_spikes_part_floats(const qsnn_conv_shape *s); /* = 16 · qsnn_conv_weight_count */

#endif
