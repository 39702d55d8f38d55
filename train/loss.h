/* Losses over the output layer's spikes or membranes, as an ops table.
 * S, U: [T][B][C]. grad (may be NULL): dL/dS, or dL/dU when uses_membrane; [T][B][C], for the
 * batch-mean loss. pred: predicted class per sample. Returns the batch-mean loss. */
#ifndef QSNN_TRAIN_LOSS_H
#define QSNN_TRAIN_LOSS_H

#include "train/train_cfg.h"

typedef struct qsnn_loss_ops {
    const char *name;
    int uses_membrane;
    double (*eval)(const qsnn_train_cfg *cfg, const float *S, const float *U, int T, int B, int C, const int *y,
                   float *grad, int *pred);
} qsnn_loss_ops;

const qsnn_loss_ops *qsnn_loss_find(const char *name);
const char *qsnn_loss_names(void);

#endif
