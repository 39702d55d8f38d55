/* The continuous-time twin of the training LIF (neurons/lif.c, specs/neurons.md), for running a
 * trained discrete-time network in continuous time. The discrete model
 *   U[t] = beta U[t-1] + I[t] - theta S[t-1]
 * adds its input once per step dt_in and leaks by beta per step; its continuous counterpart is
 *   dv/dt = -v / tau + I / dt_in,  tau = dt_in / (1 - beta)
 * with the same fixed point I / (1 - beta). Dimensionless like the training membrane; I is the
 * per-step input current, held constant (a state with zero derivative, so each neuron can have its
 * own). Spike when v > theta; subtractive reset v -= theta (at once, not at the next step); input
 * spikes add their weight to v. */
#include "neurons/ct_model.h"

#include <stdio.h>

enum { TAU, THETA, DT_IN, N_PARAMS };
enum { SV, SI };

static const qsnn_ct_var params[N_PARAMS] = {
    {"tau", "s", 2e-3, "membrane time constant, dt_in / (1 - beta)"},
    {"theta", "1", 1.0, "threshold (and the amount a spike subtracts)"},
    {"dt_in", "s", 1e-4, "the discrete step the input current I is given per"},
};
static const qsnn_ct_var states[2] = {
    {"v", "1", 0.0, "membrane"},
    {"I", "1", 0.0, "input current per step (constant)"},
};

static const char *validate(const double *p, char *buf, size_t size) {
    if (!(p[TAU] > 0.0)) return snprintf(buf, size, "tau = %g: must be > 0", p[TAU]), buf;
    if (!(p[THETA] > 0.0)) return snprintf(buf, size, "theta = %g: must be > 0", p[THETA]), buf;
    if (!(p[DT_IN] > 0.0)) return snprintf(buf, size, "dt_in = %g: must be > 0", p[DT_IN]), buf;
    return NULL;
}

static void rhs(const double *p, const double *y, double *dy, int refractory) {
    (void)refractory;
    dy[SV] = -y[SV] / p[TAU] + y[SI] / p[DT_IN];
    dy[SI] = 0.0;
}

static void jac(const double *p, const double *y, double *J, int refractory) {
    (void)y, (void)refractory;
    J[0] = -1.0 / p[TAU];
    J[1] = 1.0 / p[DT_IN];
    J[2] = 0.0;
    J[3] = 0.0;
}

static double threshold(const double *p, const double *y) { return y[SV] - p[THETA]; }
static void reset(const double *p, double *y) { y[SV] -= p[THETA]; }

const qsnn_ct_model qsnn_ct_lif_delta = {
    .name = "lif_delta",
    .summary = "the training LIF in continuous time (delta synapses, subtractive reset, dimensionless)",
    .params = params,
    .n_params = N_PARAMS,
    .states = states,
    .n_states = 2,
    .refractory_param = -1,
    .clamp_mask = 0,
    .v_thresh_param = THETA,
    .level_threshold = 1,
    .stiff = 0,
    .validate = validate,
    .rhs = rhs,
    .jac = jac,
    .threshold = threshold,
    .reset = reset,
};
