/* Registry of the continuous-time models and their generic fallbacks. */
#include "neurons/ct_model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

extern const qsnn_ct_model qsnn_ct_lif_current, qsnn_ct_lif_conductance, qsnn_ct_adex, qsnn_ct_izhikevich,
    qsnn_ct_hh, qsnn_ct_lif_delta;

static const qsnn_ct_model *const registry[] = {
    &qsnn_ct_lif_current, &qsnn_ct_lif_conductance, &qsnn_ct_adex, &qsnn_ct_izhikevich, &qsnn_ct_hh,
    &qsnn_ct_lif_delta,
};
static const int n_registry = sizeof registry / sizeof *registry;

const qsnn_ct_model *qsnn_ct_model_get(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < n_registry; i++)
        if (!strcmp(registry[i]->name, name)) return registry[i];
    return NULL;
}

const char *qsnn_ct_model_names(void) {
    static char buf[256];
    if (!buf[0]) {
        size_t k = 0;
        for (int i = 0; i < n_registry && k < sizeof buf; i++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", registry[i]->name);
    }
    return buf;
}

int qsnn_ct_param_index(const qsnn_ct_model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return i;
    return -1;
}

int qsnn_ct_state_index(const qsnn_ct_model *m, const char *name) {
    for (int i = 0; i < m->n_states; i++)
        if (!strcmp(m->states[i].name, name)) return i;
    return -1;
}

void qsnn_ct_params_default(const qsnn_ct_model *m, double *p) {
    for (int i = 0; i < m->n_params; i++) p[i] = m->params[i].def;
}

const char *qsnn_ct_validate(const qsnn_ct_model *m, const double *p, char *buf, size_t size) {
    for (int i = 0; i < m->n_params; i++)
        if (!isfinite(p[i])) {
            snprintf(buf, size, "%s = %g: must be finite", m->params[i].name, p[i]);
            return buf;
        }
    return m->validate(p, buf, size);
}

void qsnn_ct_init_state(const qsnn_ct_model *m, const double *p, double *y) {
    if (m->init) {
        m->init(p, y);
        return;
    }
    for (int k = 0; k < m->n_states; k++) y[k] = m->states[k].def;
}

void qsnn_ct_step_euler_ref(const qsnn_ct_model *m, const double *p, double *const *y, const int32_t *ref, int n,
                            double dt) {
    double s[QSNN_CT_MAX_STATES], d[QSNN_CT_MAX_STATES];
    const int ns = m->n_states;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < ns; k++) s[k] = y[k][i];
        m->rhs(p, s, d, ref[i] > 0);
        for (int k = 0; k < ns; k++) y[k][i] = s[k] + dt * d[k];
    }
}
