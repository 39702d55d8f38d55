/* Checkpoints: a network's parameters, the resolved config and run metadata in one HDF5 file.
 *
 * File layout (format "qsnn-checkpoint", format_version 1)
 * ---------------------------------------------------------
 * Strings are scalar variable-length UTF-8 strings; integers int64 little-endian, reals float64
 * unless stated. Readers accept fixed-length strings too.
 *
 *   /                              root group, attributes:
 *     @format          string     "qsnn-checkpoint" (files without it are refused)
 *     @format_version  int64      1; readers refuse versions newer than they support
 *     @qsnn_version    string     version of the qsnn that wrote the file ("0.1.0")
 *     @epoch           int64      epochs completed
 *     @test_accuracy   float64    test accuracy at save time
 *     @train_loss      float64    training loss at save time
 *     @seed            int64      seed of the run
 *     @command_line    string     the command line that produced the run ("" when unknown)
 *   /config                        scalar string dataset: the resolved YAML config of the run
 *   /params/                       one float32 dataset per learnable tensor (qsnn_net_params):
 *     layerN.weight    float32 [out][in]   master (float) weights, row = output neuron
 *     layerN.bias      float32 [out]       only when the model has biases
 *     layerN.beta      float32 [1]         membrane decay β
 *     layerN.theta     float32 [1]         firing threshold θ
 *   /layers/layerN/                informational (for hardware engineers and h5py users; loading
 *                                  uses /params only), attributes @in, @out (int64), @neuron (string):
 *     weight_codes     int32 [out][in]     integer weight codes, only when weight quantization is on
 *                                          (attrs @bits int64, @granularity "per_tensor"|"per_channel",
 *                                          @method string); Ŵ[o][i] = codes[o][i] * scales[o or 0]
 *     weight_scales    float32 [1] or [out] the quantizer's scales (per tensor / per output neuron)
 *     state_levels     float32 [n]         membrane quantization levels for θ of this layer, ascending,
 *                                          n = 2^bits, only when state quantization is on
 *                                          (attrs @bits int64, @grid string)
 *   /optimizer/                    the optimizer's state, for resuming training exactly (qsnn train
 *                                  --resume); absent from files saved without it, which still load for
 *                                  evaluation (qsnn_checkpoint_load_params never reads it). Attributes:
 *     @name            string     the optimizer's kind: "adam" or "sgd"
 *     @step            int64      optimizer steps taken (Adam's bias correction, the lr schedule)
 *     P.SLOT           float32    one dataset per learnable parameter P (the names of /params) per
 *                                  slot of the optimizer, shaped like params/P: "m" and "v" (Adam's
 *                                  first and second moments: layer0.weight.m, layer0.weight.v, ...),
 *                                  "momentum" (SGD's momentum buffer: layer0.weight.momentum, ...)
 *   /metrics/                      per-epoch training history, one entry per completed epoch, E entries
 *                                  (E = @epoch for a run trained from the start with this qsnn; a run
 *                                  resumed from a checkpoint without /metrics has only the epochs
 *                                  trained since); absent from files saved without it (readers then
 *                                  report 0 epochs). L = the number of layers:
 *     epoch            int64   [E]      the epoch number of each entry, 1-based, ascending (1..E)
 *     train_loss       float64 [E]      mean training loss of the epoch
 *     train_accuracy   float64 [E]      training accuracy of the epoch (0..1)
 *     test_loss        float64 [E]      loss on the test split after the epoch
 *     test_accuracy    float64 [E]      accuracy on the test split after the epoch (0..1)
 *     samples_per_s    float64 [E]      training throughput
 *     seconds          float64 [E]      wall time of the epoch: training plus evaluation
 *     firing_rate      float64 [E][L]   mean spikes per neuron per step of each layer, training epoch
 *     test_firing_rate float64 [E][L]   the same on the test split
 *     test_saturated   float64 [E][L]   fraction of the test split's membrane values at the grid's ends
 *                                        (float states: outside the configured range); optional
 *     membrane_hist_layerN int64 [E][B] histogram of layer N's membrane values over the test split
 *                                        (all steps); @per_level 1: bin k counts state level k (the levels
 *                                        are layers/layerN/state_levels), 0: B equal bins over [@lo, @hi],
 *                                        values outside in the end bins; optional
 *
 * Writes are atomic: the file is written to "PATH.tmp.<pid>", flushed, fsync'ed, closed and renamed
 * over PATH; on any error the temporary file is removed and PATH is left untouched.
 *
 * Errors (the context message names the file and the object):
 *   QSNN_ERR_IO        missing or unreadable file, a directory; cannot create/rename on save
 *   QSNN_ERR_FORMAT    not an HDF5 file or truncated; "PATH: not a qsnn checkpoint"; a missing or
 *                      ill-typed attribute, /config or /params
 *   QSNN_ERR_MISMATCH  format_version newer than supported; a parameter the model has that the
 *                      file lacks (or the reverse); a dataset whose shape differs from the model's;
 *                      optimizer state of another kind (@name), or with a dataset missing, extra or
 *                      of another shape
 *   QSNN_ERR_NUMERIC   a NaN/inf in a stored parameter or optimizer state (names dataset and
 *                      index), θ <= 0
 *   (QSNN_ERR_FORMAT also: no /optimizer group when loading the optimizer state; a negative @step;
 *    a /metrics dataset missing, of another type class or rank, or epoch numbers not ascending)
 *   (QSNN_ERR_MISMATCH also: a /metrics dataset whose length differs from metrics/epoch's, or a
 *    test_firing_rate whose layer count differs from firing_rate's)
 *   QSNN_ERR_HDF5      any other HDF5 failure (message carries HDF5's innermost description) */
#ifndef QSNN_IO_CHECKPOINT_H
#define QSNN_IO_CHECKPOINT_H

#include <hdf5.h>
#include "core/context.h"
#include "sim/network.h"

#define QSNN_CHECKPOINT_FORMAT "qsnn-checkpoint"
#define QSNN_CHECKPOINT_VERSION 1

typedef struct qsnn_ckpt_meta {
    int epoch;
    double test_accuracy;
    double train_loss;
    long long seed;
    const char *command_line; /* borrowed on save; NULL on read */
} qsnn_ckpt_meta;

/* The optimizer's state as checkpoints see it (io/ does not depend on train/: the caller copies
 * qsnn_optim_state's entries into these). */
typedef struct qsnn_ckpt_slot {
    const char *param; /* parameter name, one of qsnn_net_params: "layer0.weight" */
    const char *slot;  /* slot name: "m", "v", "momentum" -> dataset optimizer/PARAM.SLOT */
    float *data;       /* n floats: read on save, overwritten on load */
    size_t n;          /* must equal the parameter's length */
} qsnn_ckpt_slot;

typedef struct qsnn_ckpt_optim {
    const char *name;      /* the optimizer's kind, "adam" / "sgd" */
    long long step;        /* steps taken: read on save, set on load */
    int n_slots;
    qsnn_ckpt_slot *slots; /* borrowed */
} qsnn_ckpt_optim;

/* The per-epoch training history (/metrics) as checkpoints see it (io/ does not depend on train/).
 * Every array holds `epochs` entries; firing_rate and test_firing_rate hold epochs * n_layers,
 * row-major ([epoch][layer]). */
typedef struct qsnn_ckpt_history {
    int epochs;   /* entries */
    int n_layers; /* columns of firing_rate and test_firing_rate */
    long long *epoch; /* epoch numbers (1-based, ascending); NULL on save: 1..epochs */
    double *train_loss, *train_accuracy, *test_loss, *test_accuracy, *samples_per_s, *seconds;
    double *firing_rate;      /* [epochs][n_layers] */
    double *test_firing_rate; /* [epochs][n_layers] */
    /* Optional (NULL / 0: not stored; files written before they existed lack them): */
    double *test_saturated;   /* [epochs][n_layers] fraction of test-split membranes at the grid's ends */
    int hist_bins[QSNN_MAX_LAYERS];            /* membrane histogram bins of layer l (0: none) */
    int hist_per_level[QSNN_MAX_LAYERS];       /* 1: bin k = state level k; 0: equal bins over [lo, hi] */
    double hist_lo[QSNN_MAX_LAYERS], hist_hi[QSNN_MAX_LAYERS];
    long long *membrane_hist[QSNN_MAX_LAYERS]; /* [epochs][hist_bins[l]] membrane values of the test split */
} qsnn_ckpt_history;

/* Writes PATH atomically: to "PATH.tmp.<pid>" first, flush + close, then rename(2); on any error the
 * temp file is removed and PATH is untouched. config_yaml and meta may be NULL ("" and zeros).
 * The network is not modified (weight codes and state levels are computed on the side). */
qsnn_status qsnn_checkpoint_save(qsnn_ctx *ctx, const char *path, qsnn_net *net, const char *config_yaml,
                                 const qsnn_ckpt_meta *meta);
/* Same, plus the optimizer's state under /optimizer when optim is not NULL (see the layout above).
 * Every slot must name a parameter of the network and have its length (else QSNN_ERR_ARG, nothing
 * written). */
qsnn_status qsnn_checkpoint_save_resumable(qsnn_ctx *ctx, const char *path, qsnn_net *net, const char *config_yaml,
                                           const qsnn_ckpt_meta *meta, const qsnn_ckpt_optim *optim);
/* Same, plus the training history under /metrics when hist is not NULL and hist->epochs > 0 (with
 * hist NULL this is qsnn_checkpoint_save_resumable). A history with epochs < 0, n_layers < 1, a
 * missing array or epoch numbers not ascending from >= 1 is QSNN_ERR_ARG, nothing written. */
qsnn_status qsnn_checkpoint_save_with_history(qsnn_ctx *ctx, const char *path, qsnn_net *net,
                                              const char *config_yaml, const qsnn_ckpt_meta *meta,
                                              const qsnn_ckpt_optim *optim, const qsnn_ckpt_history *hist);
/* Reads /metrics into *out (arrays allocated here; release with qsnn_checkpoint_history_free).
 * A file without /metrics gives epochs = 0, n_layers = 0 and NULL arrays (QSNN_OK). Every dataset
 * must be present with the type class and rank of the layout; a length that differs from
 * metrics/epoch's is QSNN_ERR_MISMATCH with one line naming the dataset. On error *out is empty. */
qsnn_status qsnn_checkpoint_read_history(qsnn_ctx *ctx, const char *path, qsnn_ckpt_history *out);
/* Frees the arrays of a history filled by qsnn_checkpoint_read_history (each array separately, with
 * qsnn_free) and zeroes it. NULL is a no-op. */
void qsnn_checkpoint_history_free(qsnn_ctx *ctx, qsnn_ckpt_history *h);
/* The resolved config text stored in the file (caller frees with qsnn_free). */
qsnn_status qsnn_checkpoint_read_config(qsnn_ctx *ctx, const char *path, char **config_yaml);
/* Reads the metadata (command_line not returned; set to NULL). */
qsnn_status qsnn_checkpoint_read_meta(qsnn_ctx *ctx, const char *path, qsnn_ckpt_meta *meta);
/* Loads every parameter into an existing network created from the same config; checks shapes and
 * values. All checks happen before anything is copied: on error the network is unchanged. Then
 * calls qsnn_net_prepare. */
qsnn_status qsnn_checkpoint_load_params(qsnn_ctx *ctx, const char *path, qsnn_net *net);
/* qsnn train --init: copies every parameter of PATH whose name and shape match one of the network's (which may
 * come from another configuration: other bit widths, quantizers, float -> quantized); copied[i] (QSNN_MAX_PARAMS
 * entries, qsnn_net_params order) says which were. The weight, bias and recurrent tensors must match both ways
 * (present in both, same shapes): otherwise QSNN_ERR_MISMATCH, one line naming the tensor ("another
 * architecture"). Other parameters (β, θ, learned quantizer parameters) are copied only when they match. Stored
 * values are checked as by qsnn_checkpoint_load_params; on error the network is unchanged. Does not call
 * qsnn_net_prepare (the caller re-initialises what was not copied first). */
qsnn_status qsnn_checkpoint_load_matching(qsnn_ctx *ctx, const char *path, qsnn_net *net, int *copied);
/* Loads the optimizer's state saved by qsnn_checkpoint_save_resumable into optim, which describes
 * what the caller expects: optim->name (the kind in use) and one entry per array, whose data are
 * overwritten; sets optim->step. `net` gives the expected shapes (a slot's dataset is shaped like
 * its parameter). Checks, each with a one-line message naming the file and the object: /optimizer
 * present (QSNN_ERR_FORMAT otherwise: "saved without optimizer state"), @name equal to optim->name,
 * @step >= 0, exactly the expected datasets (no missing, no extra), their shapes, finite values. All
 * checks happen before anything is copied: on error the arrays and optim->step are unchanged. */
qsnn_status qsnn_checkpoint_load_optim(qsnn_ctx *ctx, const char *path, qsnn_net *net, qsnn_ckpt_optim *optim);
/* Writes the checkpoint layout above (root attributes, /config, /params, /layers; no optimizer
 * state or history) into an open group `loc` of another file: trace files embed their model this
 * way (io/trace.h). `path` names the file in messages; nothing is atomic here (the caller's file is). */
qsnn_status qsnn_checkpoint_write_into(qsnn_ctx *ctx, const char *path, hid_t loc, qsnn_net *net,
                                       const char *config_yaml, const qsnn_ckpt_meta *meta);

#endif
