/* Simulation output of qsnn simulate: spikes and recorded state traces of a population network.
 *
 * File layout (format "qsnn-sim", format_version 1); strings are scalar variable-length UTF-8,
 * integers int64 and reals float64 unless stated. docs/file-formats.md has the reference.
 *
 *   /                         @format "qsnn-sim", @format_version 1, @qsnn_version, @seed,
 *                             @command_line, @engine ("step" | "cvode"), @dt (s), @duration (s),
 *                             @n_steps, @wall_s (simulation loop), @n_spikes (all populations)
 *   /config                   the simulation's YAML text
 *   /populations/NAME/        @n, @model ("poisson" for a source), @n_spikes, one float64 attribute per
 *                             model parameter (SI units, e.g. @tau_m) or @rate for a source
 *     spike_time    float64 [E]  seconds, time-ordered per population; extendable, chunked,
 *     spike_neuron  int32   [E]  deflate-compressed, written in blocks as the run goes
 *     state/VAR     float32 [n_steps][k]  state VAR of the k recorded neurons after each step
 *                   (time (s + 1) dt for row s); @neurons int32 [k] (ascending), @unit
 *
 * Writes are atomic: everything goes to "PATH.tmp.<pid>", renamed over PATH by commit; destroy
 * without commit removes the temporary file, and so do SIGINT, SIGTERM and SIGHUP after
 * qsnn_tmpfiles_cleanup_on_signals() (io/tmpfiles.h). */
#ifndef QSNN_IO_SPIKE_LOG_H
#define QSNN_IO_SPIKE_LOG_H

#include "core/context.h"
#include "sim/popnet.h"

#define QSNN_SIM_FORMAT "qsnn-sim"
#define QSNN_SIM_VERSION 1

typedef struct qsnn_spike_log_meta {
    long long seed;
    const char *command_line; /* may be NULL */
    const char *config_yaml;  /* may be NULL */
    const char *engine;       /* "step" or "cvode" */
    double duration;
} qsnn_spike_log_meta;

typedef struct qsnn_spike_log qsnn_spike_log;

/* Creates the temporary file and every group and dataset for `net` (built). */
qsnn_status qsnn_spike_log_create(qsnn_ctx *ctx, const char *path, const qsnn_spike_log_meta *meta,
                                  const qsnn_popnet *net, qsnn_spike_log **out);
/* Sink callbacks (qsnn_sim_sink): user is the log. */
qsnn_status qsnn_spike_log_spikes(void *log, int pop, const double *t, const int32_t *idx, int64_t n);
qsnn_status qsnn_spike_log_states(void *log, int pop, int64_t step, const double *vals);
/* Flushes, writes the run's totals, closes and renames into place. */
qsnn_status qsnn_spike_log_commit(qsnn_spike_log *log, const qsnn_sim_stats *stats);
/* Frees; without a successful commit, removes the temporary file. NULL is a no-op. */
void qsnn_spike_log_destroy(qsnn_spike_log **log);

#endif
