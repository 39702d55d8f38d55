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
    /* Cross-layer equalisation for SNNs (quantizers.md §7, last point): a LIF neuron is scale-equivariant
     * in (input weights, bias, threshold) jointly, so each row o of W is scaled by c_o = max|W| / max|W_o|,
     * with the neuron's bias and threshold scaled alike (the model gets per-neuron thresholds and state
     * grids that follow them). The float network's spikes change only by rounding; a per-tensor weight
     * step then quantizes every row as its own per-row step would, so per-row scales become per-neuron
     * thresholds (one weight scale per layer for hardware). The output layer is folded only when the
     * loss reads its spikes, not its membrane. */
    int fold_thresholds;
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
    /* fold_thresholds: per layer, the largest factor c_o and the fraction of neurons scaled (c_o > 1) */
    double fold_max[QSNN_MAX_LAYERS], fold_frac[QSNN_MAX_LAYERS];
} qsnn_ptq_report;

/* The folding of qsnn_ptq_opts.fold_thresholds on layer l of a per-neuron network (W, b and θ_o in
 * place); fills rep's fold_max and fold_frac for l. */
void qsnn_ptq_fold_thresholds(qsnn_net *net, int l, qsnn_ptq_report *rep);

/* Quantizes a copy of src; *out is a new network (caller destroys) with configuration *out_cfg.
 * calib: samples for the statistics (all of it is used, in batches of tcfg->batch). */
qsnn_status qsnn_ptq(qsnn_ctx *ctx, qsnn_net *src, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                     const qsnn_dataset *calib, uint64_t seed, const qsnn_ptq_opts *opts, qsnn_net_cfg *out_cfg,
                     qsnn_net **out, qsnn_ptq_report *rep);

#endif
