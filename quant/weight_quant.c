#include "quant/weight_quant.h"

#include <math.h>
#include <string.h>

static const qsnn_weight_quant_ops *const registry[] = {
    &qsnn_wq_uniform_symmetric,
    &qsnn_wq_uniform_affine,
    &qsnn_wq_lsq,
    &qsnn_wq_lsq_affine,
    &qsnn_wq_qil,
    &qsnn_wq_qn,
    &qsnn_wq_cpq,
};

const qsnn_weight_quant_ops *qsnn_weight_quant_find(const char *name) {
    for (size_t i = 0; i < sizeof registry / sizeof *registry; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

int qsnn_weight_quant_count(void) { return (int)(sizeof registry / sizeof *registry); }

const qsnn_weight_quant_ops *qsnn_weight_quant_at(int i) {
    return i >= 0 && i < qsnn_weight_quant_count() ? registry[i] : NULL;
}

const char *qsnn_weight_quant_names(void) { return "uniform_symmetric, uniform_affine, lsq, lsq_affine, qil, qn, cpq"; }

int qsnn_wq_group_size(const qsnn_weight_quant_ops *ops, const qsnn_weight_quant_cfg *cfg, int k) {
    return ops->group_size ? ops->group_size(cfg, k) : 1;
}

size_t qsnn_wq_learned_offset(const qsnn_weight_quant_ops *ops, const qsnn_weight_quant_cfg *cfg, int ns, int k) {
    size_t off = 0;
    for (int i = 0; i < k; i++) off += (size_t)ns * qsnn_wq_group_size(ops, cfg, i);
    return off;
}

size_t qsnn_wq_learned_total(const qsnn_weight_quant_ops *ops, const qsnn_weight_quant_cfg *cfg, int ns) {
    return qsnn_wq_learned_offset(ops, cfg, ns, ops->n_learned);
}

float qsnn_pow2_up(float s) {
    int e;
    const float m = frexpf(s, &e); /* s = m·2^e, m in [0.5, 1) */
    return ldexpf(1.0f, m == 0.5f ? e - 1 : e);
}

float qsnn_pow2_nearest(float s) {
    int e;
    const float m = frexpf(s, &e);
    return ldexpf(1.0f, m < 0.70710678f ? e - 1 : e);
}

qsnn_status qsnn_weight_quant_check(qsnn_ctx *ctx, const qsnn_weight_quant_cfg *cfg) {
    if (cfg->bits == 0) return QSNN_OK;
    if (cfg->bits < 1 || cfg->bits > 16)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.weight.bits = %d: must be 0 (off) or 1..16", cfg->bits);
    if (cfg->granularity != QSNN_WQ_PER_TENSOR && cfg->granularity != QSNN_WQ_PER_CHANNEL)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.weight.granularity: unknown value %d", (int)cfg->granularity);
    const qsnn_weight_quant_ops *ops = qsnn_weight_quant_find(cfg->method);
    if (!ops)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.weight.method = '%s': unknown (known: %s)", cfg->method,
                         qsnn_weight_quant_names());
    if (cfg->pow2 && ops->no_pow2)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.weight.pow2: the %s quantizer learns its scale; power-of-two "
                                               "scales (and quant.integer) need another method", ops->name);
    if (ops->max_bits && cfg->bits > ops->max_bits)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.weight.bits = %d: the %s quantizer takes at most %d bits",
                         cfg->bits, ops->name, ops->max_bits);
    if (cfg->bits < ops->min_bits)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.weight.bits = %d: the %s quantizer needs at least %d bits",
                         cfg->bits, ops->name, ops->min_bits);
    return QSNN_OK;
}
