/* Leaky integrate-and-fire in continuous time, with current-based or conductance-based
 * exponential synapses (the two models of Brette et al. 2007's CUBA and COBA benchmarks).
 *
 *   current:      dv/dt = (ge + gi - (v - v_rest) + v_drive) / tau_m + i_ext / C      ge, gi in volts
 *   conductance:  dv/dt = (ge (E_e - v) + gi (E_i - v) - (v - v_rest) + v_drive) / tau_m + i_ext / C
 *                 ge, gi dimensionless, relative to the leak conductance (Brian2's COBA form)
 *   dge/dt = -ge / tau_e,  dgi/dt = -gi / tau_i
 * Spike when v > v_thresh; reset v = v_reset; v frozen for t_ref (ge, gi keep decaying).
 * The step slot is forward Euler (bit-identical to the generic fallback, but vectorizable), or for
 * the current-based model the exact solution of the linear system over dt (Brian2's "exact"). */
#include "neurons/ct_model.h"

#include <math.h>
#include <stdio.h>

enum { TAU_M, V_REST, V_THRESH, V_RESET, T_REF, TAU_E, TAU_I, E_E, E_I, V_DRIVE, I_EXT, CAP, N_PARAMS };
enum { SV, SGE, SGI };

static const qsnn_ct_var params_current[N_PARAMS] = {
    {"tau_m", "s", 20e-3, "membrane time constant"},
    {"v_rest", "V", -49e-3, "resting potential (leak reversal)"},
    {"v_thresh", "V", -50e-3, "spike threshold"},
    {"v_reset", "V", -60e-3, "reset potential"},
    {"t_ref", "s", 5e-3, "refractory period (v frozen)"},
    {"tau_e", "s", 5e-3, "excitatory synaptic time constant"},
    {"tau_i", "s", 10e-3, "inhibitory synaptic time constant"},
    {"E_e", "V", 0.0, "excitatory reversal (conductance model only)"},
    {"E_i", "V", -80e-3, "inhibitory reversal (conductance model only)"},
    {"v_drive", "V", 0.0, "constant drive, added to v_rest"},
    {"i_ext", "A", 0.0, "constant injected current"},
    {"C", "F", 200e-12, "capacitance (scales i_ext only)"},
};
static const qsnn_ct_var params_conductance[N_PARAMS] = {
    {"tau_m", "s", 20e-3, "membrane time constant"},
    {"v_rest", "V", -60e-3, "resting potential (leak reversal)"},
    {"v_thresh", "V", -50e-3, "spike threshold"},
    {"v_reset", "V", -60e-3, "reset potential"},
    {"t_ref", "s", 5e-3, "refractory period (v frozen)"},
    {"tau_e", "s", 5e-3, "excitatory synaptic time constant"},
    {"tau_i", "s", 10e-3, "inhibitory synaptic time constant"},
    {"E_e", "V", 0.0, "excitatory reversal potential"},
    {"E_i", "V", -80e-3, "inhibitory reversal potential"},
    {"v_drive", "V", 0.0, "constant drive, added to v_rest (Brian2's Idrive)"},
    {"i_ext", "A", 0.0, "constant injected current"},
    {"C", "F", 200e-12, "capacitance (scales i_ext only)"},
};
static const qsnn_ct_var states_current[3] = {
    {"v", "V", -60e-3, "membrane potential"},
    {"ge", "V", 0.0, "excitatory synaptic input"},
    {"gi", "V", 0.0, "inhibitory synaptic input"},
};
static const qsnn_ct_var states_conductance[3] = {
    {"v", "V", -60e-3, "membrane potential"},
    {"ge", "1", 0.0, "excitatory conductance / leak conductance"},
    {"gi", "1", 0.0, "inhibitory conductance / leak conductance"},
};

static const char *validate(const double *p, char *buf, size_t size) {
    static const int positive[] = {TAU_M, TAU_E, TAU_I, CAP};
    static const char *const names[] = {"tau_m", "tau_e", "tau_i", "C"};
    for (int k = 0; k < 4; k++)
        if (!(p[positive[k]] > 0.0)) {
            snprintf(buf, size, "%s = %g: must be > 0", names[k], p[positive[k]]);
            return buf;
        }
    if (p[T_REF] < 0.0) {
        snprintf(buf, size, "t_ref = %g: must be >= 0", p[T_REF]);
        return buf;
    }
    if (!(p[V_RESET] < p[V_THRESH])) {
        snprintf(buf, size, "v_reset = %g must be below v_thresh = %g", p[V_RESET], p[V_THRESH]);
        return buf;
    }
    return NULL;
}

static void init(const double *p, double *y) {
    y[SV] = p[V_REST];
    y[SGE] = 0.0;
    y[SGI] = 0.0;
}

/* Parameters in the form the updates use; rhs and step both go through it, so they agree to the bit. */
typedef struct lif_k {
    double inv_tm, inv_te, inv_ti, v_rest, v_drive, i_c, e_e, e_i;
} lif_k;

static inline lif_k consts(const double *p) {
    return (lif_k){1.0 / p[TAU_M], 1.0 / p[TAU_E], 1.0 / p[TAU_I], p[V_REST], p[V_DRIVE], p[I_EXT] / p[CAP], p[E_E], p[E_I]};
}

static inline double dv_current(const lif_k *k, double v, double ge, double gi) {
    return (ge + gi - (v - k->v_rest) + k->v_drive) * k->inv_tm + k->i_c;
}

static inline double dv_conductance(const lif_k *k, double v, double ge, double gi) {
    return (ge * (k->e_e - v) + gi * (k->e_i - v) - (v - k->v_rest) + k->v_drive) * k->inv_tm + k->i_c;
}

static void rhs_current(const double *p, const double *y, double *dy, int refractory) {
    const lif_k k = consts(p);
    dy[SV] = refractory ? 0.0 : dv_current(&k, y[SV], y[SGE], y[SGI]);
    dy[SGE] = -y[SGE] * k.inv_te;
    dy[SGI] = -y[SGI] * k.inv_ti;
}

static void rhs_conductance(const double *p, const double *y, double *dy, int refractory) {
    const lif_k k = consts(p);
    dy[SV] = refractory ? 0.0 : dv_conductance(&k, y[SV], y[SGE], y[SGI]);
    dy[SGE] = -y[SGE] * k.inv_te;
    dy[SGI] = -y[SGI] * k.inv_ti;
}

static void jac_common(const double *p, double *J) {
    for (int k = 0; k < 9; k++) J[k] = 0.0;
    J[4] = -1.0 / p[TAU_E];
    J[8] = -1.0 / p[TAU_I];
}

static void jac_current(const double *p, const double *y, double *J, int refractory) {
    jac_common(p, J);
    if (refractory) return;
    J[0] = -1.0 / p[TAU_M];
    J[1] = 1.0 / p[TAU_M];
    J[2] = 1.0 / p[TAU_M];
}

static void jac_conductance(const double *p, const double *y, double *J, int refractory) {
    jac_common(p, J);
    if (refractory) return;
    J[0] = (-y[SGE] - y[SGI] - 1.0) / p[TAU_M];
    J[1] = (p[E_E] - y[SV]) / p[TAU_M];
    J[2] = (p[E_I] - y[SV]) / p[TAU_M];
}

static double threshold(const double *p, const double *y) { return y[SV] - p[V_THRESH]; }
static void reset(const double *p, double *y) { y[SV] = p[V_RESET]; }

/* Euler, written as the generic fallback computes it (y + dt * rhs) so the bits agree. */
static void step_current(const double *p, double *const *y, const int32_t *ref, int n, double dt, int exact) {
    double *restrict v = y[SV], *restrict ge = y[SGE], *restrict gi = y[SGI];
    const lif_k k = consts(p);
    if (!exact) {
        for (int i = 0; i < n; i++) {
            const double dv = ref[i] > 0 ? 0.0 : dv_current(&k, v[i], ge[i], gi[i]);
            const double dge = -ge[i] * k.inv_te, dgi = -gi[i] * k.inv_ti;
            v[i] = v[i] + dt * dv;
            ge[i] = ge[i] + dt * dge;
            gi[i] = gi[i] + dt * dgi;
        }
        return;
    }
    /* Exact: v - v_inf relaxes with tau_m while each synaptic term decays with its own tau. */
    const double tm = p[TAU_M], te = p[TAU_E], ti = p[TAU_I];
    const double v_inf = p[V_REST] + p[V_DRIVE] + tm * p[I_EXT] / p[CAP];
    const double em = exp(-dt / tm), ee = exp(-dt / te), ei = exp(-dt / ti);
    /* ge's contribution to v after dt, per unit ge: te/(te-tm) (ee - em), or dt/tm em when te = tm. */
    const double ce = te != tm ? te / (te - tm) * (ee - em) : dt / tm * em;
    const double ci = ti != tm ? ti / (ti - tm) * (ei - em) : dt / tm * em;
    for (int i = 0; i < n; i++) {
        const double vn = v_inf + (v[i] - v_inf) * em + ge[i] * ce + gi[i] * ci;
        v[i] = ref[i] > 0 ? v[i] : vn;
        ge[i] = ge[i] * ee;
        gi[i] = gi[i] * ei;
    }
}

static void step_conductance(const double *p, double *const *y, const int32_t *ref, int n, double dt, int exact) {
    (void)exact;
    double *restrict v = y[SV], *restrict ge = y[SGE], *restrict gi = y[SGI];
    const lif_k k = consts(p);
    for (int i = 0; i < n; i++) {
        const double dv = ref[i] > 0 ? 0.0 : dv_conductance(&k, v[i], ge[i], gi[i]);
        const double dge = -ge[i] * k.inv_te, dgi = -gi[i] * k.inv_ti;
        v[i] = v[i] + dt * dv;
        ge[i] = ge[i] + dt * dge;
        gi[i] = gi[i] + dt * dgi;
    }
}

const qsnn_ct_model qsnn_ct_lif_current = {
    .name = "lif_current",
    .summary = "LIF, current-based exponential synapses (CUBA)",
    .params = params_current,
    .n_params = N_PARAMS,
    .states = states_current,
    .n_states = 3,
    .refractory_param = T_REF,
    .clamp_mask = 1u << SV,
    .v_thresh_param = V_THRESH,
    .level_threshold = 1,
    .stiff = 0,
    .validate = validate,
    .init = init,
    .rhs = rhs_current,
    .jac = jac_current,
    .threshold = threshold,
    .reset = reset,
    .step = step_current,
    .has_exact = 1,
};

const qsnn_ct_model qsnn_ct_lif_conductance = {
    .name = "lif_conductance",
    .summary = "LIF, conductance-based exponential synapses (COBA)",
    .params = params_conductance,
    .n_params = N_PARAMS,
    .states = states_conductance,
    .n_states = 3,
    .refractory_param = T_REF,
    .clamp_mask = 1u << SV,
    .v_thresh_param = V_THRESH,
    .level_threshold = 1,
    .stiff = 0,
    .validate = validate,
    .init = init,
    .rhs = rhs_conductance,
    .jac = jac_conductance,
    .threshold = threshold,
    .reset = reset,
    .step = step_conductance,
    .has_exact = 0,
};
