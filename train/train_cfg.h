/* Training settings of a run. */
#ifndef QSNN_TRAIN_TRAIN_CFG_H
#define QSNN_TRAIN_TRAIN_CFG_H

typedef struct qsnn_train_cfg {
    int epochs;
    int batch;
    char optimizer[16];   /* "adam" or "sgd" */
    float lr;
    float momentum;       /* sgd */
    float beta1, beta2, eps; /* adam */
    float weight_decay;
    char schedule[16];    /* "constant" or "cosine" */
    float lr_min;         /* cosine floor */
    char loss[32];        /* "ce_count", "mse_count", "ce_max_membrane" */
    float correct_rate, incorrect_rate; /* mse_count targets, as spikes per step */
} qsnn_train_cfg;

#endif
