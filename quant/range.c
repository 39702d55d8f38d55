#include "quant/range.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"minmax", "mse", "percentile"};

int qsnn_range_find(const char *name) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

const char *qsnn_range_name(qsnn_range_method m) { return m >= 0 && m <= 2 ? names[m] : "?"; }

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of sorted values, by the nearest rank. */
static float quantile(const float *sorted, size_t n, double q) {
    double r = q * (double)(n - 1);
    size_t k = (size_t)(r + 0.5);
    return sorted[k < n ? k : n - 1];
}

static double sym_error(const float *v, size_t n, float s, float lo, float hi) {
    double e = 0.0;
    for (size_t i = 0; i < n; i++) {
        float q = nearbyintf(v[i] / s);
        q = q < lo ? lo : (q > hi ? hi : q);
        const double d = (double)v[i] - (double)(s * q);
        e += d * d;
    }
    return e;
}

float qsnn_range_symmetric_step(const float *v, size_t n, int bits, qsnn_range_method m, double pct, float *scratch) {
    const float qp = (float)((1 << (bits - 1)) - 1), qn = -(float)(1 << (bits - 1));
    float amax = 0.0f;
    for (size_t i = 0; i < n; i++) amax = fabsf(v[i]) > amax ? fabsf(v[i]) : amax;
    if (!(amax > 0.0f)) return 1.0f;
    if (m == QSNN_RANGE_PERCENTILE && scratch) {
        for (size_t i = 0; i < n; i++) scratch[i] = fabsf(v[i]);
        qsort(scratch, n, sizeof *scratch, cmp_float);
        const float c = quantile(scratch, n, pct / 100.0);
        return c > 0.0f ? c / qp : amax / qp;
    }
    if (m != QSNN_RANGE_MSE) return amax / qp;
    float best_s = amax / qp;
    double best = sym_error(v, n, best_s, qn, qp);
    for (int k = 1; k <= 80; k++) {
        const float s = (float)(1.0 - 0.01 * k) * amax / qp;
        const double e = sym_error(v, n, s, qn, qp);
        if (e < best) best = e, best_s = s;
    }
    return best_s;
}

static double grid_error(qsnn_ctx *ctx, const float *v, size_t n, const qsnn_state_quant_cfg *cfg, double theta) {
    qsnn_state_quant q = {0};
    if (qsnn_state_quant_build(ctx, cfg, (float)theta, &q)) return INFINITY;
    double e = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)v[i] - (double)qsnn_state_quant_apply(&q, v[i]);
        e += d * d;
    }
    qsnn_state_quant_free(ctx, &q);
    return e;
}

/* lo < 0 < θ < hi as limits: lower_limit > -1, upper_limit > 0. */
static void set_limits(qsnn_state_quant_cfg *cfg, double lo, double hi, double theta) {
    if (!(lo < -0.01 * theta)) lo = -0.01 * theta;
    if (!(hi > 1.01 * theta)) hi = 1.01 * theta;
    cfg->lower_limit = -lo / theta - 1.0;
    cfg->upper_limit = hi / theta - 1.0;
}

qsnn_status qsnn_range_state_limits(qsnn_ctx *ctx, float *v, size_t n, double theta, qsnn_range_method m, double pct,
                                    qsnn_state_quant_cfg *cfg) {
    if (n == 0) return qsnn_fail(ctx, QSNN_ERR_ARG, "state range: no membrane values observed");
    if (!(theta > 0)) return qsnn_fail(ctx, QSNN_ERR_ARG, "state range: threshold %g must be > 0", theta);
    qsort(v, n, sizeof *v, cmp_float);
    if (m == QSNN_RANGE_MINMAX) {
        set_limits(cfg, v[0], v[n - 1], theta);
    } else if (m == QSNN_RANGE_PERCENTILE) {
        set_limits(cfg, quantile(v, n, 1.0 - pct / 100.0), quantile(v, n, pct / 100.0), theta);
    } else {
        static const double qs[] = {0, 1e-4, 1e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1};
        /* the error on a subsample keeps the search cheap on millions of values */
        const size_t stride = n > 200000 ? n / 200000 : 1, ns = n / stride;
        float *sub = qsnn_malloc(ctx, ns * sizeof *sub);
        if (!sub) return QSNN_ERR_NOMEM;
        for (size_t i = 0; i < ns; i++) sub[i] = v[i * stride];
        double best = INFINITY;
        qsnn_state_quant_cfg trial = *cfg, pick = *cfg;
        for (size_t a = 0; a < sizeof qs / sizeof *qs; a++)
            for (size_t b = 0; b < sizeof qs / sizeof *qs; b++) {
                set_limits(&trial, quantile(v, n, qs[a]), quantile(v, n, 1.0 - qs[b]), theta);
                if (qsnn_state_quant_check(ctx, &trial)) continue;
                const double e = grid_error(ctx, sub, ns, &trial, theta);
                if (e < best) best = e, pick = trial;
            }
        qsnn_free(ctx, sub);
        if (!(best < INFINITY))
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "state range: no interval lets the %s grid place its levels",
                             qsnn_grid_name(cfg->grid));
        *cfg = pick;
    }
    return qsnn_state_quant_check(ctx, cfg);
}
