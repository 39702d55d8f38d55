#include "neurons/surrogate.h"
#include <string.h>

static const qsnn_surrogate registry[QSNN_SURR_COUNT] = {
    {"arctan", QSNN_SURR_ARCTAN, 2.0f},
    {"fast_sigmoid", QSNN_SURR_FAST_SIGMOID, 25.0f},
    {"soft", QSNN_SURR_SOFT, 5.0f},
    {"sigmoid", QSNN_SURR_SIGMOID, 25.0f},
    {"triangular", QSNN_SURR_TRIANGULAR, 1.0f},
    {"straight_through", QSNN_SURR_STRAIGHT_THROUGH, 1.0f}, /* the slope is unused; 1 passes the > 0 check */
    {"superspike", QSNN_SURR_SUPERSPIKE, 10.0f},
    {"exponential", QSNN_SURR_EXPONENTIAL, 0.5f},
};

const qsnn_surrogate *qsnn_surrogate_find(const char *name) {
    for (int i = 0; i < QSNN_SURR_COUNT; i++)
        if (strcmp(registry[i].name, name) == 0) return &registry[i];
    return NULL;
}

const qsnn_surrogate *qsnn_surrogate_get(qsnn_surrogate_id id) {
    return (id >= 0 && id < QSNN_SURR_COUNT) ? &registry[id] : NULL;
}

/* In registry order (tests/test_surrogate.c checks it against the registry). */
const char *qsnn_surrogate_names(void) {
    return "arctan, fast_sigmoid, soft, sigmoid, triangular, straight_through, superspike, exponential";
}
