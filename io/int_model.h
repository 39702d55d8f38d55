/* The integer model file: what a hardware engineer needs to run a network in integer arithmetic
 * (sim/int_engine.h gives the update rule), in plain HDF5 datasets and attributes.
 *
 * Layout (format "qsnn-integer-model", format_version 1); integers little-endian:
 *   /                    @format, @format_version, @qsnn_version (strings / int64), @command_line,
 *                        @exact (int64: 1 = reproduces the fake-quantized float model spike for spike),
 *                        @input_bits (int64: input codes x = round(x·2^input_bits) in [0, 2^input_bits];
 *                        0: x = round(255·x), the pixel values), @n_layers, @steps (T), @encoding,
 *                        @prediction ("spike_count" or "max_membrane"), @update_rule (the pseudo-code)
 *   /config              the resolved YAML configuration of the run (string dataset)
 *   /layers/layerN/      @in, @out, @weight_bits, @state_bits, @fine_exponent E (fine unit 2^E),
 *                        @beta_multiplier, @beta_bits (β = multiplier / 2^beta_bits), @theta (int64, fine
 *                        units), @reset ("subtract" | "zero" | "none"), @grid, @level_step_shift (d:
 *                        fixed_point levels are (k - 2^(b-1))·2^d fine units; -1 for other grids), @exact
 *     weight_codes       int8 [out][in] (weight_bits <= 8) or int16
 *     bias               int64 [out]  in accumulator units (weight code × input code)
 *     multiplier         int32 [out]  accumulator → fine units: (acc + bias)·multiplier / 2^shift
 *     shift              int32 [out]  (negative: a left shift; rounding half down otherwise)
 *     levels             int64 [2^state_bits]  the state grid in fine units, ascending
 * Written atomically (io/h5atomic.h). */
#ifndef QSNN_IO_INT_MODEL_H
#define QSNN_IO_INT_MODEL_H

#include "core/context.h"
#include "sim/int_engine.h"

#define QSNN_INT_MODEL_FORMAT "qsnn-integer-model"
#define QSNN_INT_MODEL_VERSION 1

typedef struct qsnn_int_model_meta {
    const char *config_yaml;  /* may be NULL */
    const char *command_line; /* may be NULL */
    const char *encoding;     /* "direct" */
    int steps;
} qsnn_int_model_meta;

qsnn_status qsnn_int_model_save(qsnn_ctx *ctx, const char *path, const qsnn_int_net *inet,
                                const qsnn_int_model_meta *meta);

#endif
