/* Adaptive exponential integrate-and-fire (Brette & Gerstner 2005) with conductance synapses:
 *   C dv/dt = -g_L (v - E_L) + g_L Delta_T exp((v - V_T) / Delta_T) - w + i_ext + ge (E_e - v) + gi (E_i - v)
 *   tau_w dw/dt = a (v - E_L) - w,   dge/dt = -ge / tau_e,   dgi/dt = -gi / tau_i   (ge, gi in siemens)
 * Spike at v > v_peak; reset v = v_r, w += b. Defaults: the paper's regular-spiking cell. */
#include "neurons/ct_model.h"

#include <math.h>
#include <stdio.h>

enum { CAP, G_L, E_L, V_T, DELTA_T, A, TAU_W, B, V_R, V_PEAK, I_EXT, T_REF, TAU_E, TAU_I, E_E, E_I, N_PARAMS };
enum { SV, SW, SGE, SGI };

static const qsnn_ct_var params[N_PARAMS] = {
    {"C", "F", 281e-12, "capacitance"},
    {"g_L", "S", 30e-9, "leak conductance"},
    {"E_L", "V", -70.6e-3, "leak reversal"},
    {"V_T", "V", -50.4e-3, "threshold slope point"},
    {"Delta_T", "V", 2e-3, "slope factor"},
    {"a", "S", 4e-9, "subthreshold adaptation"},
    {"tau_w", "s", 144e-3, "adaptation time constant"},
    {"b", "A", 80.5e-12, "spike-triggered adaptation"},
    {"v_r", "V", -70.6e-3, "reset potential"},
    {"v_peak", "V", -40.4e-3, "spike cut-off (V_T + 5 Delta_T)"},
    {"i_ext", "A", 0.0, "constant injected current"},
    {"t_ref", "s", 0.0, "refractory period (v frozen)"},
    {"tau_e", "s", 5e-3, "excitatory synaptic time constant"},
    {"tau_i", "s", 10e-3, "inhibitory synaptic time constant"},
    {"E_e", "V", 0.0, "excitatory reversal"},
    {"E_i", "V", -80e-3, "inhibitory reversal"},
};
static const qsnn_ct_var states[4] = {
    {"v", "V", -70.6e-3, "membrane potential"},
    {"w", "A", 0.0, "adaptation current"},
    {"ge", "S", 0.0, "excitatory conductance"},
    {"gi", "S", 0.0, "inhibitory conductance"},
};

static const char *validate(const double *p, char *buf, size_t size) {
    static const int positive[] = {CAP, G_L, DELTA_T, TAU_W, TAU_E, TAU_I};
    for (int k = 0; k < 6; k++)
        if (!(p[positive[k]] > 0.0)) {
            snprintf(buf, size, "%s = %g: must be > 0", params[positive[k]].name, p[positive[k]]);
            return buf;
        }
    if (p[T_REF] < 0.0) return snprintf(buf, size, "t_ref = %g: must be >= 0", p[T_REF]), buf;
    if (!(p[V_R] < p[V_PEAK]))
        return snprintf(buf, size, "v_r = %g must be below v_peak = %g", p[V_R], p[V_PEAK]), buf;
    return NULL;
}

static void init(const double *p, double *y) {
    y[SV] = p[E_L];
    y[SW] = 0.0;
    y[SGE] = y[SGI] = 0.0;
}

/* The exponential is capped well above any v_peak in use, so a solver's trial step cannot overflow. */
static inline double expo(const double *p, double v) {
    const double x = (v - p[V_T]) / p[DELTA_T];
    return exp(x < 40.0 ? x : 40.0);
}

static void rhs(const double *p, const double *y, double *dy, int refractory) {
    const double v = y[SV];
    dy[SV] = refractory ? 0.0
                        : (-p[G_L] * (v - p[E_L]) + p[G_L] * p[DELTA_T] * expo(p, v) - y[SW] + p[I_EXT] +
                           y[SGE] * (p[E_E] - v) + y[SGI] * (p[E_I] - v)) / p[CAP];
    dy[SW] = (p[A] * (v - p[E_L]) - y[SW]) / p[TAU_W];
    dy[SGE] = -y[SGE] / p[TAU_E];
    dy[SGI] = -y[SGI] / p[TAU_I];
}

static void jac(const double *p, const double *y, double *J, int refractory) {
    for (int k = 0; k < 16; k++) J[k] = 0.0;
    const double v = y[SV];
    if (!refractory) {
        J[0] = (-p[G_L] + p[G_L] * expo(p, v) - y[SGE] - y[SGI]) / p[CAP];
        J[1] = -1.0 / p[CAP];
        J[2] = (p[E_E] - v) / p[CAP];
        J[3] = (p[E_I] - v) / p[CAP];
    }
    J[4] = p[A] / p[TAU_W];
    J[5] = -1.0 / p[TAU_W];
    J[10] = -1.0 / p[TAU_E];
    J[15] = -1.0 / p[TAU_I];
}

static double threshold(const double *p, const double *y) { return y[SV] - p[V_PEAK]; }

static void reset(const double *p, double *y) {
    y[SV] = p[V_R];
    y[SW] += p[B];
}

const qsnn_ct_model qsnn_ct_adex = {
    .name = "adex",
    .summary = "adaptive exponential integrate-and-fire, conductance synapses (siemens)",
    .params = params,
    .n_params = N_PARAMS,
    .states = states,
    .n_states = 4,
    .refractory_param = T_REF,
    .clamp_mask = 1u << SV,
    .v_thresh_param = V_PEAK,
    .level_threshold = 1,
    .stiff = 1,
    .validate = validate,
    .init = init,
    .rhs = rhs,
    .jac = jac,
    .threshold = threshold,
    .reset = reset,
};
