/* Izhikevich (2003) in SI units: the published form has v in mV and t in ms, so with v in volts
 *   dv/dt = 4e4 v^2 + 5e3 v + 140 - u + i_ext + ge + gi      [V/s]
 *   du/dt = a (b v - u)                                      a, b in 1/s; u, i_ext, ge, gi in V/s
 * which is the same numbers as 0.04 v^2 + 5 v + 140 - u + I in mV/ms. Spike at v > v_peak;
 * reset v = c, u += d. Synaptic inputs decay exponentially (tau_e, tau_i).
 * Defaults: regular spiking (a = 0.02/ms, b = 0.2/ms, c = -65 mV, d = 8 mV/ms). */
#include "neurons/ct_model.h"

#include <stdio.h>

enum { A, B, C, D, V_PEAK, I_EXT, T_REF, TAU_E, TAU_I, N_PARAMS };
enum { SV, SU, SGE, SGI };

static const qsnn_ct_var params[N_PARAMS] = {
    {"a", "Hz", 20.0, "recovery rate (0.02 / ms)"},
    {"b", "Hz", 200.0, "recovery sensitivity (0.2 / ms)"},
    {"c", "V", -65e-3, "reset potential"},
    {"d", "V/s", 8.0, "recovery jump at a spike (8 mV/ms)"},
    {"v_peak", "V", 30e-3, "spike cut-off"},
    {"i_ext", "V/s", 0.0, "constant input (mV/ms)"},
    {"t_ref", "s", 0.0, "refractory period (v frozen)"},
    {"tau_e", "s", 5e-3, "excitatory synaptic time constant"},
    {"tau_i", "s", 10e-3, "inhibitory synaptic time constant"},
};
static const qsnn_ct_var states[4] = {
    {"v", "V", -65e-3, "membrane potential"},
    {"u", "V/s", -13.0, "recovery variable"},
    {"ge", "V/s", 0.0, "excitatory input"},
    {"gi", "V/s", 0.0, "inhibitory input"},
};

static const char *validate(const double *p, char *buf, size_t size) {
    static const int positive[] = {A, TAU_E, TAU_I};
    for (int k = 0; k < 3; k++)
        if (!(p[positive[k]] > 0.0))
            return snprintf(buf, size, "%s = %g: must be > 0", params[positive[k]].name, p[positive[k]]), buf;
    if (p[T_REF] < 0.0) return snprintf(buf, size, "t_ref = %g: must be >= 0", p[T_REF]), buf;
    if (!(p[C] < p[V_PEAK])) return snprintf(buf, size, "c = %g must be below v_peak = %g", p[C], p[V_PEAK]), buf;
    return NULL;
}

static void init(const double *p, double *y) {
    y[SV] = p[C];
    y[SU] = p[B] * p[C];
    y[SGE] = y[SGI] = 0.0;
}

static void rhs(const double *p, const double *y, double *dy, int refractory) {
    const double v = y[SV];
    dy[SV] = refractory ? 0.0 : 4e4 * v * v + 5e3 * v + 140.0 - y[SU] + p[I_EXT] + y[SGE] + y[SGI];
    dy[SU] = p[A] * (p[B] * v - y[SU]);
    dy[SGE] = -y[SGE] / p[TAU_E];
    dy[SGI] = -y[SGI] / p[TAU_I];
}

static void jac(const double *p, const double *y, double *J, int refractory) {
    for (int k = 0; k < 16; k++) J[k] = 0.0;
    if (!refractory) {
        J[0] = 8e4 * y[SV] + 5e3;
        J[1] = -1.0;
        J[2] = 1.0;
        J[3] = 1.0;
    }
    J[4] = p[A] * p[B];
    J[5] = -p[A];
    J[10] = -1.0 / p[TAU_E];
    J[15] = -1.0 / p[TAU_I];
}

static double threshold(const double *p, const double *y) { return y[SV] - p[V_PEAK]; }

static void reset(const double *p, double *y) {
    y[SV] = p[C];
    y[SU] += p[D];
}

const qsnn_ct_model qsnn_ct_izhikevich = {
    .name = "izhikevich",
    .summary = "Izhikevich 2003 (SI units; inputs in V/s = mV/ms)",
    .params = params,
    .n_params = N_PARAMS,
    .states = states,
    .n_states = 4,
    .refractory_param = T_REF,
    .clamp_mask = 1u << SV,
    .v_thresh_param = V_PEAK,
    .level_threshold = 1,
    .stiff = 0,
    .validate = validate,
    .init = init,
    .rhs = rhs,
    .jac = jac,
    .threshold = threshold,
    .reset = reset,
};
