#include "quant/weight_quant.h"

#include <string.h>

static const qsnn_weight_quant_ops *const registry[] = {
    &qsnn_wq_uniform_symmetric,
};

const qsnn_weight_quant_ops *qsnn_weight_quant_find(const char *name) {
    for (size_t i = 0; i < sizeof registry / sizeof *registry; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

const char *qsnn_weight_quant_names(void) { return "uniform_symmetric"; }

qsnn_status qsnn_weight_quant_check(qsnn_ctx *ctx, const qsnn_weight_quant_cfg *cfg) {
    if (cfg->bits == 0) return QSNN_OK;
    if (cfg->bits < 1 || cfg->bits > 16)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.weight.bits = %d: must be 0 (off) or 1..16", cfg->bits);
    if (cfg->granularity != QSNN_WQ_PER_TENSOR && cfg->granularity != QSNN_WQ_PER_CHANNEL)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.weight.granularity: unknown value %d", (int)cfg->granularity);
    if (!qsnn_weight_quant_find(cfg->method))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.weight.method = '%s': unknown (known: %s)", cfg->method,
                         qsnn_weight_quant_names());
    return QSNN_OK;
}
