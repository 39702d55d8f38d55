#include "neurons/surrogate.h"
#include <string.h>

static const qsnn_surrogate registry[QSNN_SURR_COUNT] = {
    {"arctan", QSNN_SURR_ARCTAN, 2.0f},
    {"fast_sigmoid", QSNN_SURR_FAST_SIGMOID, 25.0f},
    {"soft", QSNN_SURR_SOFT, 5.0f},
};

const qsnn_surrogate *qsnn_surrogate_find(const char *name) {
    for (int i = 0; i < QSNN_SURR_COUNT; i++)
        if (strcmp(registry[i].name, name) == 0) return &registry[i];
    return NULL;
}

const qsnn_surrogate *qsnn_surrogate_get(qsnn_surrogate_id id) {
    return (id >= 0 && id < QSNN_SURR_COUNT) ? &registry[id] : NULL;
}

const char *qsnn_surrogate_names(void) { return "arctan, fast_sigmoid, soft"; }
