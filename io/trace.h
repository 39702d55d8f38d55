/* Trace files: spike trains and membrane traces of a network on a set of inputs, with everything
 * needed to re-simulate them (the inputs exactly as fed to the engine, the model, the config).
 *
 * File layout (format "qsnn-trace", format_version 1); strings are scalar variable-length UTF-8,
 * integers int64 and reals float64 unless stated. docs/file-formats.md has the full reference.
 *
 *   /                         @format "qsnn-trace", @format_version 1, @qsnn_version, @seed,
 *                             @command_line, @source (the model file, or "train")
 *   /config                   scalar string: the resolved YAML config
 *   REC/                      one recording: "/" itself (qsnn record, qsnn eval --record) or
 *                             "/epoch_K" per epoch (qsnn train --record; then / has @epochs (their
 *                             number), @first_epoch, @last_epoch and no layers/ of its own; a resumed
 *                             run's file starts after the resumed epoch). REC attributes: @samples N,
 *                             @steps T, @n_layers L, @epoch (0 outside training)
 *   REC/model/                the network, laid out exactly as a checkpoint file's root
 *                             (io/checkpoint.h: params/, layers/, config, @format "qsnn-checkpoint")
 *   REC/input/                sample_index int64 [N] (index in the test split), label int32 [N],
 *                             and either x float32 [N][F] (static encoding: the same input every step)
 *                             or spikes uint8 [N][T][F] (0/1, spike encodings); @encoding, @static,
 *                             @encoder_epoch (the epoch that keys the encoder's RNG)
 *   REC/layers/layerL/        @in @out @T @neuron @reset @beta @theta @weight_bits
 *                             @weight_granularity @state_bits @state_grid @state_lower_limit
 *                             @state_upper_limit, @state_levels float32 [n] (quantized states only)
 *     spikes/sample int32 [E] \  one spike per row, sorted by (sample, step, neuron); sample is the
 *     spikes/step   int16 [E]  > row in input/ (0..N-1); extendable, chunked, deflate-compressed,
 *     spikes/neuron int32 [E] /  written in blocks
 *     neurons       int32 [k]        the neurons whose membranes are recorded (ascending)
 *     membrane      float32 [N][T][k] membrane after state quantization (what the threshold sees)
 *     membrane_level uint8|uint16 [N][T][k] its level index (quantized states only; uint8 up to 8 bits)
 *
 * Writes are atomic: everything goes to "PATH.tmp.<pid>", renamed over PATH by commit; destroy
 * without commit removes the temporary file. After qsnn_tmpfiles_cleanup_on_signals() (io/tmpfiles.h),
 * SIGINT, SIGTERM and SIGHUP remove every temporary file of an open writer before the process dies.
 *
 * Errors: QSNN_ERR_IO (missing file, cannot create or rename), QSNN_ERR_FORMAT (not HDF5, truncated,
 * "not a qsnn trace file", a dataset missing or of the wrong type/shape, values out of range),
 * QSNN_ERR_MISMATCH (format_version newer than supported), QSNN_ERR_HDF5 (anything else). */
#ifndef QSNN_IO_TRACE_H
#define QSNN_IO_TRACE_H

#include <stdint.h>
#include "core/context.h"
#include "sim/engine.h"

#define QSNN_TRACE_FORMAT "qsnn-trace"
#define QSNN_TRACE_VERSION 1

/* --- writing ------------------------------------------------------------------------------------ */

typedef struct qsnn_trace_meta {
    long long seed;
    const char *command_line; /* may be NULL */
    const char *source;       /* the model file or "train"; may be NULL */
    const char *config_yaml;  /* the resolved config; may be NULL */
} qsnn_trace_meta;

/* Which membranes to record, per layer: n[l] < 0 = all neurons, 0 = none, else the n[l] indices in
 * idx[l] (any order, duplicates removed; each must be < the layer's size). */
typedef struct qsnn_trace_sel {
    int n[QSNN_MAX_LAYERS];
    const int32_t *idx[QSNN_MAX_LAYERS];
} qsnn_trace_sel;

typedef struct qsnn_trace_writer qsnn_trace_writer;

/* Creates PATH's temporary file and writes the root attributes and /config. */
qsnn_status qsnn_trace_writer_create(qsnn_ctx *ctx, const char *path, const qsnn_trace_meta *meta,
                                     qsnn_trace_writer **out);
/* Starts a recording of N samples of T steps for `net` with F input features (group NULL or "" =
 * the root, else a new group such as "epoch_3"): writes the model, the per-layer attributes and
 * creates the datasets. max_B bounds the batches given to qsnn_trace_add_batch. */
qsnn_status qsnn_trace_begin(qsnn_trace_writer *w, const char *group, qsnn_net *net, int N, int T, int F,
                             int max_B, const char *encoding, int is_static, uint64_t encoder_epoch, int epoch,
                             const qsnn_trace_sel *sel);
/* Appends B samples: their dataset indices and labels, the input as fed to qsnn_forward (x [B][F]
 * when static, else [T][B][F] of 0/1), and every layer's spikes and selected membranes from the
 * workspace of a qsnn_forward (training mode: it keeps all membranes) just run on that input. */
qsnn_status qsnn_trace_add_batch(qsnn_trace_writer *w, const qsnn_workspace *ws, const int64_t *ids, const int *labels,
                                 const float *x, int B);
/* Flushes the buffered events and closes the recording; all N samples must have been added. */
qsnn_status qsnn_trace_end(qsnn_trace_writer *w);
/* Marks a file of per-epoch recordings /epoch_FIRST .. /epoch_LAST (qsnn train --record): root
 * attributes @epochs (their number), @first_epoch, @last_epoch. */
qsnn_status qsnn_trace_set_epochs(qsnn_trace_writer *w, int first, int last);
/* Closes the file and renames it into place; the writer stays to be destroyed. */
qsnn_status qsnn_trace_commit(qsnn_trace_writer *w);
/* Frees the writer; without a successful commit, removes the temporary file. NULL is a no-op. */
void qsnn_trace_writer_destroy(qsnn_trace_writer **w);

/* --- reading ------------------------------------------------------------------------------------ */

typedef struct qsnn_trace_layer {
    int in, out;
    char neuron[32], reset[16], state_grid[32], weight_granularity[16];
    double beta, theta;
    int weight_bits, state_bits;
    int n_levels;   /* 0 when states are not quantized */
    float *levels;  /* [n_levels] ascending */
    int64_t n_events;
    int32_t *ev_sample, *ev_step, *ev_neuron; /* [n_events], sorted by (sample, step, neuron) */
    int k;          /* recorded membranes */
    int32_t *neurons;  /* [k] ascending */
    float *membrane;   /* [N][T][k] (NULL when k = 0) */
    int32_t *level;    /* [N][T][k] level indices, NULL unless quantized */
} qsnn_trace_layer;

typedef struct qsnn_trace {
    int N, T, F, n_layers, epoch, is_static;
    char encoding[16];
    uint64_t encoder_epoch;
    long long seed;
    char *config_yaml, *command_line; /* root /config and @command_line */
    int64_t *sample_index; /* [N] */
    int32_t *label;        /* [N] */
    float *x;              /* [N][F] when static, else [N][T][F] (0/1) */
    qsnn_trace_layer layer[QSNN_MAX_LAYERS];
} qsnn_trace;

/* Reads one recording of PATH into memory, checking every dataset's type, shape and value range.
 * group NULL or "" = the file's only recording (a file of per-epoch recordings then fails, naming
 * them); else "epoch_3" or any recording group. Caller frees with qsnn_trace_destroy. */
qsnn_status qsnn_trace_read(qsnn_ctx *ctx, const char *path, const char *group, qsnn_trace **out);
void qsnn_trace_destroy(qsnn_ctx *ctx, qsnn_trace **t);
/* The per-epoch recordings of PATH: /epoch_FIRST .. /epoch_LAST (0, 0 for a file of one recording). */
qsnn_status qsnn_trace_epochs(qsnn_ctx *ctx, const char *path, int *first, int *last);
/* Loads the parameters of the model embedded in a recording (REC/model/params) into a network
 * created from the file's /config (same names and sizes as a checkpoint's; refuses missing,
 * extra, mis-sized or non-finite ones), then calls qsnn_net_prepare. */
qsnn_status qsnn_trace_load_params(qsnn_ctx *ctx, const char *path, const char *group, qsnn_net *net);

/* Input of samples [s0, s0 + B) of a trace, laid out as qsnn_forward wants it: [B][F] when static,
 * else [T][B][F]. out holds B*F or T*B*F floats. */
void qsnn_trace_input_batch(const qsnn_trace *t, int s0, int B, float *out);

#endif
