/* Hodgkin-Huxley with Traub-Miles kinetics and conductance synapses, as in Brian2's COBAHH
 * benchmark (Brette et al. 2007, benchmark 3): a 20000 um^2 patch,
 *   C dv/dt = g_L (E_L - v) + ge (E_e - v) + gi (E_i - v) - g_Na m^3 h (v - E_Na) - g_K n^4 (v - E_K) + i_ext
 * gates m, h, n with the rate functions below (v, V_T in mV inside them, rates per ms). No reset: a
 * spike is an upward crossing of v_spike. Jacobian by CVODE's difference quotients. */
#include "neurons/ct_model.h"

#include <math.h>
#include <stdio.h>

enum { CAP, G_L, E_L, G_NA, E_NA, G_K, E_K, V_T, V_SPIKE, I_EXT, T_REF, TAU_E, TAU_I, E_E, E_I, N_PARAMS };
enum { SV, SM, SH, SN, SGE, SGI };

static const qsnn_ct_var params[N_PARAMS] = {
    {"C", "F", 200e-12, "capacitance (1 uF/cm^2)"},
    {"g_L", "S", 10e-9, "leak conductance"},
    {"E_L", "V", -60e-3, "leak reversal"},
    {"g_Na", "S", 20e-6, "sodium conductance"},
    {"E_Na", "V", 50e-3, "sodium reversal"},
    {"g_K", "S", 6e-6, "potassium conductance"},
    {"E_K", "V", -90e-3, "potassium reversal"},
    {"V_T", "V", -63e-3, "kinetics offset"},
    {"v_spike", "V", -20e-3, "spike detection level (upward crossing)"},
    {"i_ext", "A", 0.0, "constant injected current"},
    {"t_ref", "s", 0.0, "no spike detected for this long after one"},
    {"tau_e", "s", 5e-3, "excitatory synaptic time constant"},
    {"tau_i", "s", 10e-3, "inhibitory synaptic time constant"},
    {"E_e", "V", 0.0, "excitatory reversal"},
    {"E_i", "V", -80e-3, "inhibitory reversal"},
};
static const qsnn_ct_var states[6] = {
    {"v", "V", -60e-3, "membrane potential"}, {"m", "1", 0.0, "Na activation"},
    {"h", "1", 1.0, "Na inactivation"},       {"n", "1", 0.0, "K activation"},
    {"ge", "S", 0.0, "excitatory conductance"}, {"gi", "S", 0.0, "inhibitory conductance"},
};

static const char *validate(const double *p, char *buf, size_t size) {
    static const int positive[] = {CAP, G_L, TAU_E, TAU_I};
    for (int k = 0; k < 4; k++)
        if (!(p[positive[k]] > 0.0))
            return snprintf(buf, size, "%s = %g: must be > 0", params[positive[k]].name, p[positive[k]]), buf;
    if (p[G_NA] < 0.0 || p[G_K] < 0.0)
        return snprintf(buf, size, "g_Na = %g, g_K = %g: must be >= 0", p[G_NA], p[G_K]), buf;
    if (p[T_REF] < 0.0) return snprintf(buf, size, "t_ref = %g: must be >= 0", p[T_REF]), buf;
    return NULL;
}

/* x / (e^x - 1), continuous at 0. */
static inline double inv_exprel(double x) { return fabs(x) < 1e-9 ? 1.0 - 0.5 * x : x / expm1(x); }

typedef struct rates { double am, bm, ah, bh, an, bn; } rates;

static rates rate_fns(const double *p, double v) {
    const double u = 1e3 * (v - p[V_T]); /* mV above V_T */
    rates r;
    r.am = 1e3 * 0.32 * 4.0 * inv_exprel((13.0 - u) / 4.0);
    r.bm = 1e3 * 0.28 * 5.0 * inv_exprel((u - 40.0) / 5.0);
    r.ah = 1e3 * 0.128 * exp((17.0 - u) / 18.0);
    r.bh = 1e3 * 4.0 / (1.0 + exp((40.0 - u) / 5.0));
    r.an = 1e3 * 0.032 * 5.0 * inv_exprel((15.0 - u) / 5.0);
    r.bn = 1e3 * 0.5 * exp((10.0 - u) / 40.0);
    return r;
}

static void init(const double *p, double *y) {
    const rates r = rate_fns(p, p[E_L]);
    y[SV] = p[E_L];
    y[SM] = r.am / (r.am + r.bm);
    y[SH] = r.ah / (r.ah + r.bh);
    y[SN] = r.an / (r.an + r.bn);
    y[SGE] = y[SGI] = 0.0;
}

static void rhs(const double *p, const double *y, double *dy, int refractory) {
    (void)refractory; /* nothing is clamped: refractoriness only suppresses spike detection */
    const double v = y[SV], m = y[SM], h = y[SH], n = y[SN];
    const rates r = rate_fns(p, v);
    const double n2 = n * n;
    dy[SV] = (p[G_L] * (p[E_L] - v) + y[SGE] * (p[E_E] - v) + y[SGI] * (p[E_I] - v) -
              p[G_NA] * m * m * m * h * (v - p[E_NA]) - p[G_K] * n2 * n2 * (v - p[E_K]) + p[I_EXT]) / p[CAP];
    dy[SM] = r.am * (1.0 - m) - r.bm * m;
    dy[SH] = r.ah * (1.0 - h) - r.bh * h;
    dy[SN] = r.an * (1.0 - n) - r.bn * n;
    dy[SGE] = -y[SGE] / p[TAU_E];
    dy[SGI] = -y[SGI] / p[TAU_I];
}

static double threshold(const double *p, const double *y) { return y[SV] - p[V_SPIKE]; }

const qsnn_ct_model qsnn_ct_hh = {
    .name = "hh",
    .summary = "Hodgkin-Huxley (Traub-Miles kinetics), conductance synapses (siemens)",
    .params = params,
    .n_params = N_PARAMS,
    .states = states,
    .n_states = 6,
    .refractory_param = T_REF,
    .clamp_mask = 0,
    .v_thresh_param = V_SPIKE,
    .level_threshold = 0,
    .stiff = 1,
    .validate = validate,
    .init = init,
    .rhs = rhs,
    .threshold = threshold,
};
