#include "datasets/encoder.h"

#include <string.h>

static const qsnn_encoder_ops *const registry[] = {
    &qsnn_encoder_direct,
    &qsnn_encoder_rate,
    &qsnn_encoder_rows,
};

const qsnn_encoder_ops *qsnn_encoder_find(const char *name) {
    if (!name) return NULL;
    for (size_t k = 0; k < sizeof registry / sizeof registry[0]; k++)
        if (strcmp(registry[k]->name, name) == 0) return registry[k];
    return NULL;
}

const char *qsnn_encoder_names(void) { return "direct, rate, rows"; }
