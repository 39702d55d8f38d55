/* The continuous-time engine's unit: one neuron integrated by SUNDIALS CVODE.
 *
 * A cell advances from its current time to a given time, applying input events (a weight added to
 * a state at a given time) where they fall. Threshold crossings are located by CVODE's root finding
 * (upward crossings of the model's event function), so spike times carry the integrator's
 * tolerance, not a time step. At a spike the model's reset is applied and the solver re-initialised;
 * during the refractory period the clamped states are frozen (rhs 0) and the end of the period is a
 * stopping point; every discontinuity (input, reset, end of refractoriness) re-initialises CVODE.
 * Models with level_threshold spike at once when found above threshold at any of these points
 * (the start, after an input), as the time-stepped engine does.
 *
 * Tolerances: rtol relative; atol times each state's typical size by unit (V: 1 mV, S: 1 nS,
 * A: 1 pA, others 1), so one number serves volts and siemens alike.
 * Method: BDF with a dense Newton solver (stiff models; the model's Jacobian if it has one) or
 * Adams with fixed-point iteration; QSNN_CVODE_AUTO picks by the model's `stiff` flag.
 * Ownership: a cell owns its CVODE memory and its own SUNContext (cells may run on different
 * threads); the model and parameter array are borrowed and must outlive it. */
#ifndef QSNN_SIM_CVODE_ENGINE_H
#define QSNN_SIM_CVODE_ENGINE_H

#include "core/context.h"
#include "neurons/ct_model.h"

typedef enum { QSNN_CVODE_AUTO = 0, QSNN_CVODE_ADAMS = 1, QSNN_CVODE_BDF = 2 } qsnn_cvode_method;

typedef struct qsnn_cvode_opts {
    double rtol, atol;   /* default 1e-6, 1e-6 */
    qsnn_cvode_method method;
    long max_steps;      /* per call of CVode (between two events); default 50000 */
    double max_step;     /* 0 = no limit */
} qsnn_cvode_opts;

void qsnn_cvode_opts_default(qsnn_cvode_opts *o);

/* An input event: y[state] += w at time t. */
typedef struct qsnn_ct_input {
    double t;
    int state;
    double w;
} qsnn_ct_input;

typedef struct qsnn_ct_cell qsnn_ct_cell;

/* Called at each spike with its time. */
typedef void (*qsnn_ct_spike_fn)(void *user, double t);

/* A cell at time t0 in state y0 (NULL: the model's rest state). Parameters must be valid
 * (qsnn_ct_validate). Errors name nothing: callers prefix the population and neuron. */
qsnn_status qsnn_ct_cell_create(qsnn_ctx *ctx, const qsnn_ct_model *m, const double *params, const double *y0,
                                double t0, const qsnn_cvode_opts *opts, qsnn_ct_cell **out);
void qsnn_ct_cell_destroy(qsnn_ct_cell **c);

/* Integrates to t_end (> the cell's time), applying `in[0..n_in)` (sorted by t, each within
 * [cell time, t_end]); spikes go to on_spike. With n_samples > 0, the state at sample_t[k] (ascending,
 * within (cell time, t_end]) is written to samples[k * n_states ...]. On a solver failure the message
 * reads "CVODE CV_xxx at t = ... s" and the cell must not be advanced again. The message goes to
 * err (not to a context, so that cells can advance on different threads at once). */
qsnn_status qsnn_ct_cell_advance(qsnn_ct_cell *c, double t_end, const qsnn_ct_input *in, int n_in,
                                 qsnn_ct_spike_fn on_spike, void *user, const double *sample_t, int n_samples,
                                 double *samples, char *err, size_t err_size);

/* The cell's time and state (n_states values, read-only view valid until the next advance). */
double qsnn_ct_cell_time(const qsnn_ct_cell *c);
const double *qsnn_ct_cell_state(const qsnn_ct_cell *c);
/* Solver statistics since creation: internal steps and re-initialisations. */
void qsnn_ct_cell_stats(const qsnn_ct_cell *c, long *steps, long *reinits);

#endif
