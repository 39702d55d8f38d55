#include "quant/state_quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *grid_names[] = {"uniform", "threshold_centered", "zero_centered", "fixed_point", "threshold_rest", "lsq"};

const char *qsnn_grid_name(qsnn_grid g) { return (g >= 0 && g < QSNN_GRID_COUNT) ? grid_names[g] : "?"; }

int qsnn_grid_find(const char *name) {
    for (int i = 0; i < QSNN_GRID_COUNT; i++)
        if (strcmp(name, grid_names[i]) == 0) return i;
    return -1;
}

double qsnn_grid_default_multiplier(int bits) {
    static const double r[] = {0, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.925};
    return bits >= 1 && bits <= 7 ? r[bits] : 0.95;
}

/* Split of the N levels around centre c: L below, M = N - L above. */
static void split_levels(int n, double c, double lo, double hi, int *below, int *above) {
    *below = (int)floor(n * (c - lo) / (hi - lo));
    *above = n - *below;
}

qsnn_status qsnn_state_quant_check(qsnn_ctx *ctx, const qsnn_state_quant_cfg *cfg) {
    if (cfg->bits == 0) return QSNN_OK;
    if (cfg->bits < 1 || cfg->bits > QSNN_STATE_MAX_BITS)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.state.bits = %d: must be 0 (off) or 1..%d", cfg->bits,
                         QSNN_STATE_MAX_BITS);
    if (cfg->grid < 0 || cfg->grid >= QSNN_GRID_COUNT)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.state.grid: unknown grid %d", (int)cfg->grid);
    if ((cfg->grid == QSNN_GRID_FIXED_POINT || cfg->grid == QSNN_GRID_LSQ) && cfg->bits < 2)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                         "quant.state.bits = %d: the %s grid needs at least 2 bits (a sign and a magnitude)", cfg->bits,
                         qsnn_grid_name(cfg->grid));
    if (!isfinite(cfg->scale) || cfg->scale < 0)
        return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "state quantizer: step %g must be finite and > 0", cfg->scale);
    if (!isfinite(cfg->lower_limit) || cfg->lower_limit <= -1.0f)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.state.lower_limit = %g: must be finite and > -1",
                         cfg->lower_limit);
    if (!isfinite(cfg->upper_limit) || cfg->upper_limit <= -1.0f)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.state.upper_limit = %g: must be finite and > -1",
                         cfg->upper_limit);
    if (!isfinite(cfg->multiplier) || cfg->multiplier < 0.0f || cfg->multiplier >= 1.0f)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.state.multiplier = %g: must be in [0, 1) (0 = default)",
                         cfg->multiplier);
    if (cfg->grid == QSNN_GRID_THRESHOLD_CENTERED || cfg->grid == QSNN_GRID_ZERO_CENTERED ||
        cfg->grid == QSNN_GRID_THRESHOLD_REST) {
        double lo = -(1.0 + cfg->lower_limit), hi = 1.0 + cfg->upper_limit;
        double c = cfg->grid == QSNN_GRID_ZERO_CENTERED ? 0.0 : 1.0;
        int below, above;
        split_levels(1 << cfg->bits, c, lo, hi, &below, &above);
        if (c <= lo || c >= hi || below < 1 || above < 1)
            return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                             "quant.state: the %s grid needs levels on both sides of its centre; "
                             "lower_limit = %g, upper_limit = %g leave %d below and %d above",
                             qsnn_grid_name(cfg->grid), cfg->lower_limit, cfg->upper_limit, below, above);
    }
    return QSNN_OK;
}

int qsnn_fixed_point_step_exp(const qsnn_state_quant_cfg *cfg, double theta) {
    const double top = theta * (1.0 + cfg->upper_limit), kmax = (double)((1 << (cfg->bits - 1)) - 1);
    int e;
    frexp(top / kmax, &e); /* top/kmax = m·2^e, m in [0.5, 1): 2^e >= top/kmax */
    if (ldexp(1.0, e - 1) >= top / kmax) e--; /* an exact power of two */
    return e;
}

/* The centered construction of specs/neurons.md: L levels below c (steps shrinking towards c), M above. */
static void centered_levels(int n, double c, double lo, double hi, double r, double r_above, double *lv) {
    int below, above;
    split_levels(n, c, lo, hi, &below, &above);
    for (int i = 0; i < below; i++) lv[i] = lo + (c - lo) * (1.0 - pow(r, i)) / (1.0 - pow(r, below));
    for (int k = 1; k <= above; k++)
        lv[below + k - 1] =
            c + (hi - c) * (pow(r_above, above - k) - pow(r_above, above)) / (1.0 - pow(r_above, above));
}

/* Width of the gap between the levels around 0 (rest). */
static double rest_gap(int n, double c, double lo, double hi, double r, double *lv) {
    centered_levels(n, c, lo, hi, r, r, lv);
    for (int i = 1; i < n; i++)
        if (lv[i] >= 0.0) return lv[i] - lv[i - 1];
    return hi - lo;
}

/* threshold_rest: the smallest r >= r0 whose gap around rest is at most the uniform step
 * (bisection; the gap shrinks as r grows towards 1, where the spacing becomes uniform below c). */
static double rest_multiplier(int n, double c, double lo, double hi, double r0) {
    double *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) return r0;
    const double target = (hi - lo) / (n - 1);
    double a = r0, b = 1.0 - 1e-7; /* (1 - r^i)/(1 - r^L) -> i/L: uniform below c */
    if (rest_gap(n, c, lo, hi, r0, tmp) <= target) b = r0;
    else if (rest_gap(n, c, lo, hi, b, tmp) <= target)
        for (int it = 0; it < 60; it++) {
            const double m = 0.5 * (a + b);
            if (rest_gap(n, c, lo, hi, m, tmp) <= target) b = m;
            else a = m;
        }
    free(tmp);
    return b;
}

double qsnn_lsq_state_init(const qsnn_state_quant_cfg *cfg, double theta) {
    return theta * (1.0 + cfg->upper_limit) / (double)((1 << (cfg->bits - 1)) - 1);
}

qsnn_status qsnn_state_levels(qsnn_ctx *ctx, const qsnn_state_quant_cfg *cfg, double theta, double *lv) {
    qsnn_status st = qsnn_state_quant_check(ctx, cfg);
    if (st) return st;
    if (!(theta > 0.0) || !isfinite(theta))
        return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "state quantizer: threshold %g must be finite and > 0", theta);
    const int n = 1 << cfg->bits;
    const double lo = -theta * (1.0 + cfg->lower_limit), hi = theta * (1.0 + cfg->upper_limit);
    if (cfg->grid == QSNN_GRID_LSQ) {
        const double s = cfg->scale > 0 ? (double)(float)cfg->scale : qsnn_lsq_state_init(cfg, theta);
        for (int i = 0; i < n; i++) lv[i] = s * (double)(i - n / 2);
        return QSNN_OK;
    }
    if (cfg->grid == QSNN_GRID_FIXED_POINT) {
        const int e = qsnn_fixed_point_step_exp(cfg, theta), half = n / 2;
        for (int i = 0; i < n; i++) lv[i] = ldexp((double)(i - half), e);
        return QSNN_OK;
    }
    if (cfg->grid == QSNN_GRID_UNIFORM) {
        /* Symmetric evaluation from both ends, so both end levels are exact. */
        const double step = (hi - lo) / (n - 1);
        for (int i = 0; i < n; i++) lv[i] = (i < n / 2) ? lo + i * step : hi - (n - 1 - i) * step;
        return QSNN_OK;
    }
    const double c = cfg->grid == QSNN_GRID_ZERO_CENTERED ? 0.0 : theta;
    const double r = cfg->multiplier > 0 ? cfg->multiplier : qsnn_grid_default_multiplier(cfg->bits);
    /* threshold_rest: the spacing below θ relaxed until rest has no dead zone; above θ as centered */
    const double r_below =
        cfg->grid == QSNN_GRID_THRESHOLD_REST && !(cfg->multiplier > 0) ? rest_multiplier(n, c, lo, hi, r) : r;
    centered_levels(n, c, lo, hi, r_below, r, lv);
    return QSNN_OK;
}

/* Order-preserving map of floats to integers (so the floats between a and b can be bisected). */
static int64_t ord(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i >= 0 ? (int64_t)i : -(int64_t)(i & 0x7fffffff);
}
static float unord(int64_t k) {
    int32_t i = k >= 0 ? (int32_t)k : (int32_t)((-k) | 0x80000000u);
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

/* The smallest float u in (a, b] for which the reference picks b: !((u - a) <= (b - u)), evaluated in
 * float exactly as qsnn_state_quant_ref does; monotone in u, so bisect over the floats. */
static float decision_cut(float a, float b) {
    if (!(a < b)) return b; /* levels merged by float rounding: either is right */
    volatile float va = a, vb = b; /* keep float evaluation (no extended precision, no folding) */
    int64_t lo = ord(a), hi = ord(b); /* picks(lo) false, picks(hi) true */
    while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        const float u = unord(mid);
        if (!((u - va) <= (vb - u))) hi = mid;
        else lo = mid;
    }
    return unord(hi);
}

qsnn_status qsnn_state_quant_build(qsnn_ctx *ctx, const qsnn_state_quant_cfg *cfg, float theta, qsnn_state_quant *q) {
    if (cfg->bits == 0) {
        qsnn_state_quant_free(ctx, q);
        q->cfg = *cfg;
        return QSNN_OK;
    }
    const int n = 1 << cfg->bits;
    if (!q->levels || q->n != n) {
        qsnn_free(ctx, q->levels);
        q->levels = qsnn_malloc(ctx, (size_t)n * sizeof(float));
        if (!q->levels) return QSNN_ERR_NOMEM;
        q->n = n;
    }
    double *tmp = qsnn_malloc(ctx, (size_t)n * sizeof(double));
    if (!tmp) return QSNN_ERR_NOMEM;
    qsnn_status st = qsnn_state_levels(ctx, cfg, theta, tmp);
    if (st == QSNN_OK) {
        for (int i = 0; i < n; i++) q->levels[i] = (float)tmp[i];
        /* Rounding to float can merge neighbouring levels at high bit widths; keep them sorted. */
        for (int i = 1; i < n; i++)
            if (q->levels[i] < q->levels[i - 1]) q->levels[i] = q->levels[i - 1];
    }
    qsnn_free(ctx, tmp);
    if (st) return st;
    q->enabled = 1;
    q->lo = q->levels[0];
    q->hi = q->levels[n - 1];
    q->uniform = cfg->grid == QSNN_GRID_UNIFORM || cfg->grid == QSNN_GRID_FIXED_POINT || cfg->grid == QSNN_GRID_LSQ;
    q->step = cfg->grid == QSNN_GRID_LSQ ? q->levels[n / 2 + 1] : 0.0f;
    q->step_exp = cfg->grid == QSNN_GRID_FIXED_POINT ? qsnn_fixed_point_step_exp(cfg, theta) : 0;
    q->n_cuts = n <= QSNN_STATE_CUT_LEVELS ? n - 1 : 0;
    for (int i = 0; i < q->n_cuts; i++) q->cuts[i] = decision_cut(q->levels[i], q->levels[i + 1]);
    q->inv_step = q->uniform ? (float)((n - 1) / ((double)q->hi - q->lo)) : 0.0f;
    q->ste_clip = cfg->ste_clip;
    q->built_theta = theta;
    q->cfg = *cfg;
    return QSNN_OK;
}

void qsnn_state_quant_free(qsnn_ctx *ctx, qsnn_state_quant *q) {
    qsnn_free(ctx, q->levels);
    memset(q, 0, sizeof *q);
}

int qsnn_state_level_index(const qsnn_state_quant *q, float v) {
    int lo = 0, hi = q->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) >> 1;
        if (q->levels[mid] < v) lo = mid + 1;
        else if (q->levels[mid] > v) hi = mid - 1;
        else return mid;
    }
    return -1;
}
