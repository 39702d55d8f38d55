#include "neurons/neuron.h"
#include <string.h>

static const qsnn_neuron_ops *const registry[] = {
    &qsnn_neuron_lif,
};

const qsnn_neuron_ops *qsnn_neuron_find(const char *name) {
    for (size_t i = 0; i < sizeof registry / sizeof *registry; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

const char *qsnn_neuron_names(void) { return "lif"; }

static const char *reset_names[] = {"subtract", "zero", "none"};

qsnn_reset qsnn_reset_find(const char *name) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, reset_names[i]) == 0) return (qsnn_reset)i;
    return (qsnn_reset)-1;
}

const char *qsnn_reset_name(qsnn_reset r) { return (r >= 0 && r <= 2) ? reset_names[r] : "?"; }
