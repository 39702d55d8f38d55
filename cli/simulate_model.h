/* qsnn simulate --model MODEL.h5: a trained (discrete-time) network run in continuous time. */
#ifndef QSNN_CLI_SIMULATE_MODEL_H
#define QSNN_CLI_SIMULATE_MODEL_H

#include "sim/cvode_engine.h"

/* Runs the first `samples` test images through the discrete engine and through the CVODE engine
 * (each layer a population of lif_delta neurons with tau = dt / (1 - beta)), prints accuracies and
 * spike agreement (one JSON line too when json). Returns the exit status. */
int qsnn_simulate_model(const char *model, int samples, int threads, const qsnn_cvode_opts *opts, int json);

#endif
