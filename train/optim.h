/* Optimizers (Adam, SGD with momentum) as an ops table over the network's parameter list, and the
 * learning-rate schedules. PyTorch's update formulas, so runs are comparable with the reference. */
#ifndef QSNN_TRAIN_OPTIM_H
#define QSNN_TRAIN_OPTIM_H

#include "sim/network.h"
#include "train/train_cfg.h"

typedef struct qsnn_optim qsnn_optim;

typedef struct qsnn_optim_ops {
    const char *name;
    int n_slots; /* per-element state arrays (Adam: 2, SGD: 1) */
    void (*update)(const qsnn_train_cfg *cfg, float *p, const float *g, float **slots, size_t n, float lr,
                   long step);
} qsnn_optim_ops;

const qsnn_optim_ops *qsnn_optim_find(const char *name);
const char *qsnn_optim_names(void);

/* Borrows the network's parameter arrays; the optimizer owns its state. */
qsnn_status qsnn_optim_create(qsnn_ctx *ctx, const qsnn_train_cfg *cfg, qsnn_net *net, qsnn_optim **out);
void qsnn_optim_destroy(qsnn_optim **opt);
/* One update of every learnable parameter with learning rate lr. */
void qsnn_optim_step(qsnn_optim *opt, float lr);
long qsnn_optim_steps(const qsnn_optim *opt);

/* Learning rate at optimizer step `step` of `total` (constant or cosine to lr_min). */
float qsnn_schedule_lr(const qsnn_train_cfg *cfg, long step, long total);
int qsnn_schedule_known(const char *name);

#endif
