/* Optimizers (Adam, SGD with momentum) as an ops table over the network's parameter list, and the
 * learning-rate schedules. PyTorch's update formulas, so runs are comparable with the reference. */
#ifndef QSNN_TRAIN_OPTIM_H
#define QSNN_TRAIN_OPTIM_H

#include "sim/network.h"
#include "train/train_cfg.h"

typedef struct qsnn_optim qsnn_optim;

#define QSNN_OPTIM_MAX_SLOTS 2
/* Upper bound on the entries qsnn_optim_state returns. */
#define QSNN_OPTIM_MAX_STATE (QSNN_MAX_PARAMS * QSNN_OPTIM_MAX_SLOTS)

typedef struct qsnn_optim_ops {
    const char *name;
    int n_slots; /* per-element state arrays (Adam: 2, SGD: 1), at most QSNN_OPTIM_MAX_SLOTS */
    void (*update)(const qsnn_train_cfg *cfg, float *p, const float *g, float **slots, size_t n, float lr,
                   long step);
    /* Names of the slots, in the order update() receives them (Adam: "m", "v"; SGD: "momentum");
     * checkpoints store slot s of parameter P as "P.<slot_names[s]>". */
    const char *slot_names[QSNN_OPTIM_MAX_SLOTS];
} qsnn_optim_ops;

const qsnn_optim_ops *qsnn_optim_find(const char *name);
const char *qsnn_optim_names(void);

/* Borrows the network's parameter arrays; the optimizer owns its state. */
qsnn_status qsnn_optim_create(qsnn_ctx *ctx, const qsnn_train_cfg *cfg, qsnn_net *net, qsnn_optim **out);
void qsnn_optim_destroy(qsnn_optim **opt);
/* One update of every learnable parameter with learning rate lr. */
void qsnn_optim_step(qsnn_optim *opt, float lr);
long qsnn_optim_steps(const qsnn_optim *opt);

/* --- the optimizer's state, for checkpoints (resuming a run exactly) ------------------------------
 * The state is the step counter plus, for every learnable parameter, ops->n_slots float arrays of
 * the parameter's length. Restoring a saved state = writing the arrays through qsnn_optim_state and
 * calling qsnn_optim_set_steps; the next qsnn_optim_step then does what the saving run's would have. */

/* One per-element state array. */
typedef struct qsnn_optim_slot {
    const char *param; /* parameter name, "layer0.weight" (owned by the optimizer) */
    const char *slot;  /* slot name, ops->slot_names[s]: "m", "v", "momentum" */
    float *data;       /* n floats owned by the optimizer; writable, to restore a saved state */
    size_t n;
} qsnn_optim_slot;

/* The registry name of the optimizer's kind ("adam", "sgd"). */
const char *qsnn_optim_name(const qsnn_optim *opt);
/* Fills list with up to cap entries (QSNN_OPTIM_MAX_STATE is always enough), learnable parameters
 * in qsnn_net_params order and, within a parameter, slots in ops order; returns the number of
 * entries there are (which may exceed cap: then only the first cap were written). */
int qsnn_optim_state(qsnn_optim *opt, qsnn_optim_slot *list, int cap);
/* Sets the number of steps taken (the next qsnn_optim_step is step `step + 1`); step >= 0. */
void qsnn_optim_set_steps(qsnn_optim *opt, long step);

/* Learning rate at optimizer step `step` of `total` (constant or cosine to lr_min). */
float qsnn_schedule_lr(const qsnn_train_cfg *cfg, long step, long total);
int qsnn_schedule_known(const char *name);

#endif
