/* AdaRound (specs/quantizers.md §7): learn, per weight, whether to round down or up, so that a
 * layer's quantized input currents reconstruct the float ones on calibration data — instead of
 * rounding every weight to its nearest code. For one layer with steps s (per output neuron) and
 * codes in [qmin, qmax]:
 *   W̃ = s·clamp(floor(W/s) + h(V), qmin, qmax),  h(V) = clamp(sigmoid(V)(ζ-γ) + γ, 0, 1), ζ 1.1, γ -0.1
 *   minimise  Σ_o (W̃_o - W_o) G (W̃_o - W_o)ᵀ  +  λ Σ (1 - |2h(V) - 1|^b)
 * with G = E[x xᵀ] the second moment of the layer's input over the calibration samples and steps
 * (pixels, or the previous layer's spikes): the first term is the squared error of the input
 * current Σ_o E[(W̃_o x - W_o x)²] (the linear part of the membrane update; the reset is left out).
 * λ 0.01, b annealed from 20 to 2 after a 20% warm-up without the regulariser, Adam on V (lr 0.01),
 * V initialised so that h(V) is the fractional part; the result is the hard rounding
 * floor(W/s) + [V >= 0]. */
#ifndef QSNN_TRAIN_ADAROUND_H
#define QSNN_TRAIN_ADAROUND_H

#include <stdint.h>
#include "core/context.h"

typedef struct qsnn_adaround_opts {
    int iters;        /* optimisation steps (default 500 when 0) */
    float lambda;     /* regulariser weight (0: 0.01) */
    float lr;         /* Adam learning rate (0: 0.01) */
} qsnn_adaround_opts;

typedef struct qsnn_adaround_report {
    double err_nearest;  /* Σ_o ΔG Δᵀ with nearest rounding */
    double err_adaround; /* the same with the learned rounding */
    double flipped;      /* fraction of weights rounded the other way than nearest */
} qsnn_adaround_report;

/* W [out][in] float weights, s [out] steps (per output neuron), G [in][in] (symmetric). Writes the
 * chosen integer codes into codes [out][in]. */
qsnn_status qsnn_adaround(qsnn_ctx *ctx, const float *W, const float *s, int out, int in, int qmin, int qmax,
                          const float *G, const qsnn_adaround_opts *opts, int32_t *codes, qsnn_adaround_report *rep);

/* Σ_o (Ŵ_o - W_o) G (Ŵ_o - W_o)ᵀ for Ŵ = s·codes (the reconstruction error), in double. */
double qsnn_adaround_error(const float *W, const float *s, const int32_t *codes, int out, int in, const float *G);

#endif
