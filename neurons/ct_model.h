/* Continuous-time neuron models: an ops table per model for the CVODE engine and the time-stepped
 * network engine (sim/cvode_engine.h, sim/popnet.h). Separate from the discrete-time table in
 * neurons/neuron.h, which is for training.
 *
 * Units: SI throughout (seconds, volts, siemens, farads, amperes). Parameters are a flat array of
 * doubles described by `params` (name, unit, default); states likewise by `states`. Synapses add
 * a weight to a state variable (a conductance or a current) when a spike arrives, so any state can
 * be a synaptic target; models name the usual ones ("ge", "gi").
 *
 * Required slots: name, params, n_params, states, n_states, validate, rhs, threshold.
 * Optional slots (NULL = fallback):
 *   jac           dense Jacobian; NULL: CVODE's difference quotients
 *   reset         NULL: no reset (Hodgkin-Huxley: a spike is an upward crossing of the event function)
 *   step          a batch update for the time-stepped engine; NULL: forward Euler through rhs (the
 *                 scalar reference twin; step must give the same bits when it implements Euler)
 * refractory_param: index of the refractory period in params, or -1. During a refractory period
 *   the states flagged in `clamp_mask` are frozen (their derivative is 0) and no spike is emitted. */
#ifndef QSNN_NEURONS_CT_MODEL_H
#define QSNN_NEURONS_CT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define QSNN_CT_MAX_PARAMS 24
#define QSNN_CT_MAX_STATES 8

typedef struct qsnn_ct_var {
    const char *name;
    const char *unit; /* "s", "V", "S", "F", "A", "Hz", "1" (dimensionless), "V/s" */
    double def;       /* default parameter value / initial state */
    const char *help;
} qsnn_ct_var;

typedef struct qsnn_ct_model {
    const char *name;
    const char *summary;
    const qsnn_ct_var *params;
    int n_params;
    const qsnn_ct_var *states; /* states[0] is the membrane potential */
    int n_states;
    int refractory_param;
    unsigned clamp_mask;       /* bit k: state k is frozen while refractory */
    int level_threshold;       /* 1: a neuron spikes whenever threshold() > 0 (models with a reset);
                                  0: on an upward crossing only */
    int stiff;                 /* 1: BDF by default, else Adams */
    int v_thresh_param;        /* >= 0: threshold(y) is y[0] - p[v_thresh_param], which the time-stepped
                                  engine tests inline instead of calling threshold() per neuron */
    /* NULL when the parameters are valid, else a message naming the parameter ("tau_m = -0.01 s: must be > 0"). */
    const char *(*validate)(const double *p, char *buf, size_t size);
    /* Initial state from the parameters (rest): y[n_states]. NULL: each state's `def`. */
    void (*init)(const double *p, double *y);
    /* dy/dt; `refractory` non-zero freezes the clamped states. */
    void (*rhs)(const double *p, const double *y, double *dy, int refractory);
    /* J[i * n + j] = d(dy_i)/d(y_j). */
    void (*jac)(const double *p, const double *y, double *J, int refractory);
    /* Event function: crosses zero upwards at a spike (v - v_thresh). */
    double (*threshold)(const double *p, const double *y);
    void (*reset)(const double *p, double *y);
    /* Advances neurons [0, n) of one population by dt: y[k] is state k's array (SoA), ref[i] > 0 marks
     * a refractory neuron (states in clamp_mask frozen). Must equal the Euler fallback bit for bit
     * when `exact` is 0; exact = 1 asks for the exact linear update where the model has one. */
    void (*step)(const double *p, double *const *y, const int32_t *ref, int n, double dt, int exact);
    int has_exact; /* step() implements exact = 1 */
} qsnn_ct_model;

/* The model of that name, or NULL. */
const qsnn_ct_model *qsnn_ct_model_get(const char *name);
/* Registry listing for --help: names separated by ", ". */
const char *qsnn_ct_model_names(void);
/* Index of a parameter / state by name, or -1. */
int qsnn_ct_param_index(const qsnn_ct_model *m, const char *name);
int qsnn_ct_state_index(const qsnn_ct_model *m, const char *name);
/* Parameters filled with the defaults. */
void qsnn_ct_params_default(const qsnn_ct_model *m, double *p);
/* Every parameter finite, then the model's own checks. NULL when valid, else the message in buf. */
const char *qsnn_ct_validate(const qsnn_ct_model *m, const double *p, char *buf, size_t size);
/* The rest state (init slot or each state's default). */
void qsnn_ct_init_state(const qsnn_ct_model *m, const double *p, double *y);
/* Forward Euler through rhs for neurons [0, n): the reference twin of every step slot. */
void qsnn_ct_step_euler_ref(const qsnn_ct_model *m, const double *p, double *const *y, const int32_t *ref, int n,
                            double dt);

#endif
