/* Post-training quantization (specs/quantizers.md §2, §7): a trained network and a few calibration
 * samples in, a quantized network out — weight steps by min-max, MSE or percentile per output
 * neuron (or tensor), state-grid limits from the observed membrane potentials, and bias correction
 * from the calibration firing rates, optionally AdaRound. The weights use the LSQ quantizer so the calibrated steps are
 * parameters: the result can be fine-tuned with QAT as it is. */
#ifndef QSNN_TRAIN_PTQ_H
#define QSNN_TRAIN_PTQ_H

#include "quant/range.h"
#include "train/trainer.h"

typedef struct qsnn_ptq_opts {
    int weight_bits, state_bits; /* 0: keep float */
    qsnn_grid grid;
    qsnn_wq_granularity granularity;
    qsnn_range_method weight_range;
    /* states: a range method of quant/range.h, or QSNN_PTQ_STATE_RATES: the limits among a set of
     * candidates whose quantized network best reproduces the float network's spike counts on the
     * calibration samples (per sample and neuron, every layer), or QSNN_PTQ_STATE_KEEP: the model's
     * configured limits */
    int state_range;
    double weight_pct, state_pct; /* percentiles for QSNN_RANGE_PERCENTILE, e.g. 99.99 */
    int bias_correction;
    int adaround;       /* learn each weight's rounding (train/adaround.h) instead of rounding to nearest */
    int adaround_iters; /* 0: 500 */
} qsnn_ptq_opts;

#define QSNN_PTQ_STATE_RATES 100
#define QSNN_PTQ_STATE_KEEP 101

typedef struct qsnn_ptq_report {
    long calib_samples;
    double lower_limit, upper_limit;  /* chosen state-grid limits */
    double bias_shift[QSNN_MAX_LAYERS]; /* mean |bias change| per layer from bias correction */
    double count_error;               /* rates: mean squared spike-count difference of the chosen limits */
    /* AdaRound: per layer, the input-current reconstruction error with nearest and learned rounding,
     * and the fraction of weights rounded the other way */
    double round_err_nearest[QSNN_MAX_LAYERS], round_err_adaround[QSNN_MAX_LAYERS], flipped[QSNN_MAX_LAYERS];
} qsnn_ptq_report;

/* Quantizes a copy of src; *out is a new network (caller destroys) with configuration *out_cfg.
 * calib: samples for the statistics (all of it is used, in batches of tcfg->batch). */
qsnn_status qsnn_ptq(qsnn_ctx *ctx, qsnn_net *src, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                     const qsnn_dataset *calib, uint64_t seed, const qsnn_ptq_opts *opts, qsnn_net_cfg *out_cfg,
                     qsnn_net **out, qsnn_ptq_report *rep);

#endif
