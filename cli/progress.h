/* Progress display: a bar redrawn in place while an epoch runs when stdout is a terminal; nothing
 * (only the per-epoch lines) when it is not, so logs stay clean. */
#ifndef QSNN_CLI_PROGRESS_H
#define QSNN_CLI_PROGRESS_H

#include "train/trainer.h"

typedef struct qsnn_progress {
    int enabled;
    const char *label; /* "epoch 1/3", "eval" */
    double last_draw;
    int drawn;
} qsnn_progress;

void qsnn_progress_init(qsnn_progress *p, int want);
/* A qsnn_progress_fn; user is a qsnn_progress*. */
void qsnn_progress_update(void *user, long done, long total, const qsnn_metrics *m);
/* Erases the bar so the next line starts clean. */
void qsnn_progress_clear(qsnn_progress *p);

#endif
