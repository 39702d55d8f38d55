/* The training loop and evaluation: batches from a dataset, encoding, forward, loss, BPTT,
 * optimizer step; per-epoch metrics. Deterministic for a seed whatever the thread count. */
#ifndef QSNN_TRAIN_TRAINER_H
#define QSNN_TRAIN_TRAINER_H

#include "datasets/data_cfg.h"
#include "datasets/encoder.h"
#include "datasets/idx.h"
#include "sim/engine.h"
#include "sim/state_stats.h"
#include "train/loss.h"
#include "train/optim.h"

typedef struct qsnn_metrics {
    double loss;
    double accuracy;
    double rates[QSNN_MAX_LAYERS]; /* mean spikes per neuron per step, per layer */
    double saturated[QSNN_MAX_LAYERS]; /* evaluation only: fraction of membrane values at the grid's ends */
    double seconds;
    double samples_per_s;
    long samples;
} qsnn_metrics;

/* Called after every batch: done/total batches and the running metrics. */
typedef void (*qsnn_progress_fn)(void *user, long done, long total, const qsnn_metrics *running);

typedef struct qsnn_trainer qsnn_trainer;

/* Borrows net and the datasets (test may be NULL). */
qsnn_status qsnn_trainer_create(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                                const qsnn_dataset *train, uint64_t seed, qsnn_trainer **out);
void qsnn_trainer_destroy(qsnn_trainer **tr);
/* One pass over the shuffled training split (the last incomplete batch is dropped). */
qsnn_status qsnn_train_epoch(qsnn_trainer *tr, int epoch, qsnn_progress_fn progress, void *user, qsnn_metrics *m);
/* Accuracy, loss and rates on a dataset with the trainer's workspace. */
qsnn_status qsnn_trainer_evaluate(qsnn_trainer *tr, const qsnn_dataset *ds, qsnn_progress_fn progress, void *user,
                                  qsnn_metrics *m);
/* One training step on given inputs (encoded) and labels; returns the batch loss in *loss. For tests
 * and benchmarks. */
qsnn_status qsnn_trainer_step(qsnn_trainer *tr, const float *x, int x_static, const int *y, int B, float lr,
                              double *loss, int *pred);
qsnn_workspace *qsnn_trainer_workspace(qsnn_trainer *tr);
qsnn_optim *qsnn_trainer_optim(qsnn_trainer *tr);

/* The epoch number used to key the encoder's RNG during evaluation, so evaluation is reproducible. */
#define QSNN_EVAL_EPOCH 0xFFFFFFFFull

/* Evaluation without a trainer (qsnn eval): creates its own workspace with batch `batch`. */
qsnn_status qsnn_evaluate(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                          const qsnn_dataset *ds, uint64_t seed, qsnn_progress_fn progress, void *user,
                          qsnn_metrics *m);
/* The membrane statistics of layer l over the last evaluation (qsnn_trainer_evaluate). */
const qsnn_state_stats *qsnn_trainer_state_stats(const qsnn_trainer *tr, int l);
/* qsnn_evaluate that also returns the membrane statistics of every layer (stats[n_layers]). */
qsnn_status qsnn_evaluate_stats(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                                const qsnn_dataset *ds, uint64_t seed, qsnn_progress_fn progress, void *user,
                                qsnn_metrics *m, qsnn_state_stats *stats);

#endif
