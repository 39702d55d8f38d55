/* Evaluation on the integer-only engine, side by side with the fake-quantized float engine on the
 * same encoded inputs: accuracy of each and their spike-for-spike agreement per layer. */
#ifndef QSNN_TRAIN_INT_EVAL_H
#define QSNN_TRAIN_INT_EVAL_H

#include "train/trainer.h"

typedef struct qsnn_int_metrics {
    long samples;
    double accuracy;       /* integer engine */
    double float_accuracy; /* fake-quantized float engine, same inputs */
    long pred_agree;       /* samples whose predicted class is the same in both */
    /* Per layer: spike slots compared (T·samples·neurons), slots that differ, spikes (integer engine). */
    long long slots[QSNN_MAX_LAYERS], mismatches[QSNN_MAX_LAYERS], spikes[QSNN_MAX_LAYERS];
    int exact;             /* the conversion is exact (integer-exact model) */
    double seconds, int_seconds;
} qsnn_int_metrics;

/* Converts net (qsnn_int_net_create) and runs the dataset through both engines in batches of
 * tcfg->batch. Fails like qsnn_int_net_create for models the integer engine cannot run. */
qsnn_status qsnn_evaluate_integer(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg,
                                  const qsnn_data_cfg *dcfg, const qsnn_dataset *ds, uint64_t seed,
                                  qsnn_progress_fn progress, void *user, qsnn_int_metrics *m);

#endif
