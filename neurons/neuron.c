#include "neurons/neuron.h"
#include <string.h>

static const qsnn_neuron_ops *const registry[] = {
    &qsnn_neuron_lif,
    &qsnn_neuron_synaptic,
    &qsnn_neuron_alpha,
    &qsnn_neuron_lapicque,
    &qsnn_neuron_alif,
    &qsnn_neuron_izhikevich,
    &qsnn_neuron_li,
};
#define N_MODELS ((int)(sizeof registry / sizeof *registry))

const qsnn_neuron_ops *qsnn_neuron_find(const char *name) {
    for (int i = 0; i < N_MODELS; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

int qsnn_neuron_count(void) { return N_MODELS; }

const qsnn_neuron_ops *qsnn_neuron_get(int i) { return i >= 0 && i < N_MODELS ? registry[i] : NULL; }

const char *qsnn_neuron_names(void) {
    static char names[256];
    if (!names[0])
        for (int i = 0; i < N_MODELS; i++) {
            if (i) strncat(names, ", ", sizeof names - strlen(names) - 1);
            strncat(names, registry[i]->name, sizeof names - strlen(names) - 1);
        }
    return names;
}

static const char *reset_names[] = {"subtract", "zero", "none"};

qsnn_reset qsnn_reset_find(const char *name) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, reset_names[i]) == 0) return (qsnn_reset)i;
    return (qsnn_reset)-1;
}

const char *qsnn_reset_name(qsnn_reset r) { return (r >= 0 && r <= 2) ? reset_names[r] : "?"; }

double qsnn_neuron_forward_all(const qsnn_neuron_ops *ops, const qsnn_neuron_params *p, const qsnn_state_quant *q,
                               int T, int n, const float *cur, size_t i_stride, float *U, size_t u_stride, float *S,
                               size_t stride) {
    qsnn_neuron_io io = {.T = T, .t0 = 0, .t1 = T, .n = n, .cur = cur, .i_stride = i_stride, .U = U,
                         .u_stride = u_stride, .plane = u_stride ? (size_t)T * u_stride : (size_t)n, .S = S,
                         .stride = stride};
    io.q[0] = q;
    return ops->forward(p, &io);
}

void qsnn_neuron_backward_all(const qsnn_neuron_ops *ops, const qsnn_neuron_params *p, const qsnn_state_quant *q,
                              int T, int n, const float *cur, size_t i_stride, const float *U, const float *gS,
                              const float *gU, size_t stride, float *gcur, size_t gi_stride, qsnn_neuron_pgrad *pg) {
    qsnn_neuron_io io = {.T = T, .t0 = 0, .t1 = T, .n = n, .cur = cur, .i_stride = i_stride, .U = (float *)U,
                         .u_stride = stride, .plane = (size_t)T * stride, .stride = stride, .gS = gS, .gU = gU,
                         .gcur = gcur, .gi_stride = gi_stride};
    io.q[0] = q;
    ops->backward(p, &io, pg);
}
