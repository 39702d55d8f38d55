/* Data settings of a run. */
#ifndef QSNN_DATASETS_DATA_CFG_H
#define QSNN_DATASETS_DATA_CFG_H

#define QSNN_PATH_MAX 4096

typedef struct qsnn_data_cfg {
    char dir[QSNN_PATH_MAX]; /* folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] */
    char encoding[16];       /* encoder registry name: "direct" or "rate" */
    int steps;               /* T */
    int train_limit;         /* 0 = whole split; else the first N samples (quick runs, tests) */
    int test_limit;
} qsnn_data_cfg;

#define QSNN_DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

#endif
