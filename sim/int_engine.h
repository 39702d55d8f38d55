/* The integer-only engine: a trained (fake-quantized) network converted to integer weights, integer
 * states and fixed-point constants, run with no float arithmetic in the time loop, as a
 * neuromorphic chip would (specs/quantizers.md §8).
 *
 * Arithmetic of one layer, all integers; "fine units" are 2^E for the layer's exponent E:
 *   acc[o]  = Σ_i Wc[o][i] · x[i]                 weight codes × input codes (spikes: 0/1; the first
 *                                                 layer's inputs: codes of the input grid)
 *   cur[o]  = (acc[o] + bias[o]) · M[o] · 2^-sh[o] in fine units (sh < 0: a left shift; rounding, half
 *                                                 down, only when sh > 0); with quant.current (first
 *                                                 layer): cur = clamp(round_half_even(cur/step)) · step
 *   leak    = β_m · lvl[k] · 2^-β_bits           (β = β_m / 2^β_bits; rounding half down)
 *   v       = leak + cur − r·θ        (reset subtract; zero: (1−r)·leak + cur; none: leak + cur)
 *   k'      = index of the level nearest v (ties to the lower level, saturating at the ends)
 *   spike   = lvl[k'] > θ;   r for the next step = spike
 * lvl[] is the state quantizer's level table in fine units (a b-bit index = look-up-table hardware);
 * for the fixed_point grid lvl[k] = (k − 2^(b−1)) · 2^d and the nearest level is a rounding shift.
 *
 * Integer-exact models (quant.integer: power-of-two weight scales, fixed_point grid, β = m/2^8, θ
 * and bias on their grids, inputs k/2^8) convert with M = 1, sh <= 0 and exact constants, and then
 * every float operation of the fake-quantized forward pass is exact too: both engines produce the
 * same spikes (tests/test_int_engine.c checks it on the whole test set). Other models convert to the
 * nearest fixed-point constants (β to 16 fractional bits, scales to 15-bit multipliers, levels to
 * fine units) and agree spike for spike only approximately; qsnn eval --integer reports by how much. */
#ifndef QSNN_SIM_INT_ENGINE_H
#define QSNN_SIM_INT_ENGINE_H

#include <stdint.h>
#include "sim/network.h"

typedef struct qsnn_int_layer {
    int in, out;
    int w_bits, s_bits;  /* weight and state bit widths */
    int16_t *Wc;         /* weight codes [out][in] */
    int16_t *Wt;         /* the same, transposed [in][out], for spike-driven accumulation */
    int64_t *bias;       /* [out] in accumulator units (codes × input unit); zeros without bias */
    int32_t *M;          /* [out] multiplier of the accumulator into fine units */
    int32_t *sh;         /* [out] right shift after the multiplier (negative: left shift) */
    int E;               /* fine unit = 2^E */
    int32_t beta_m;      /* leak multiplier */
    int beta_bits;       /* β = beta_m / 2^beta_bits */
    int64_t theta;       /* threshold in fine units */
    int n_levels;        /* 2^s_bits */
    int64_t *lvl;        /* level table in fine units, ascending */
    int fixed_point;     /* lvl[k] = (k - n/2) << d: nearest level by a rounding shift */
    int d;               /* fixed_point: level step 2^d fine units */
    int reset;           /* qsnn_reset */
    int exact;           /* the conversion is exact (integer-exact model) */
    int64_t cur_step;    /* first layer with quant.current: the current's step in fine units (0: none) */
    int cur_kmax;        /* ... its codes are clamped to [-cur_kmax, cur_kmax] */
} qsnn_int_layer;

typedef struct qsnn_int_net {
    qsnn_ctx *ctx;
    int n_layers, n_inputs;
    int input_bits;      /* input codes x = round(x_float · 2^input_bits) in [0, 2^input_bits] */
    int exact;           /* every layer exact */
    int max_membrane;    /* prediction from the maximal membrane (loss ce_max_membrane), else spike counts */
    qsnn_int_layer layer[QSNN_MAX_LAYERS];
} qsnn_int_net;

/* Converts a prepared network. Every layer needs quantized weights (codes) and states (levels);
 * otherwise QSNN_ERR_CONFIG naming the layer. Integer weights above 16 bits are refused. */
qsnn_status qsnn_int_net_create(qsnn_ctx *ctx, const qsnn_net *net, qsnn_int_net **out);
void qsnn_int_net_destroy(qsnn_int_net **inet);

/* The input codes of float inputs (what the encoder hands to the chip), n values. */
void qsnn_int_input_codes(const qsnn_int_net *inet, const float *x, int16_t *codes, size_t n);

/* Runs B samples for T steps. x: float inputs [B][n_inputs] when x_static, else [T][B][n_inputs]
 * (converted to input codes before the time loop). Outputs (each may be NULL):
 *   spikes[l]  uint8 [T][B][out_l], the spikes of layer l (the float engine's S layout)
 *   counts     int32 [B][C], output spikes per class;  pred int [B], the predicted class
 * Deterministic and independent of the thread count (samples are independent). */
qsnn_status qsnn_int_forward(qsnn_int_net *inet, const float *x, int x_static, int B, int T, uint8_t **spikes,
                             int32_t *counts, int *pred);

/* v / d (d > 0) to the nearest integer, ties to even (as the float engine's nearbyintf). */
static inline int64_t qsnn_int_div_round_even(int64_t v, int64_t d) {
    int64_t q = v / d, r = v % d;
    if (r < 0) r += d, q -= 1; /* floor division */
    if (2 * r > d || (2 * r == d && (q & 1))) q += 1;
    return q;
}

/* Scalar reference of one neuron's update (the optimized loop is checked against it). Returns the new
 * level index; *spike receives the spike. */
int qsnn_int_step_ref(const qsnn_int_layer *L, int k_prev, int64_t cur, int *spike);

#endif
