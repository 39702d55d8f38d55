#include "quant/state_quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *grid_names[] = {"uniform", "threshold_centered", "zero_centered", "fixed_point", "threshold_rest",
                                   "lsq",     "qil",                "qn",            "cpq"};

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
    if ((cfg->grid == QSNN_GRID_FIXED_POINT || cfg->grid == QSNN_GRID_LSQ || qsnn_grid_learned(cfg->grid)) &&
        cfg->bits < 2)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                         "quant.state.bits = %d: the %s grid needs at least 2 bits (a sign and a magnitude)", cfg->bits,
                         qsnn_grid_name(cfg->grid));
    if (!isfinite(cfg->scale) || cfg->scale < 0)
        return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "state quantizer: step %g must be finite and > 0", cfg->scale);
    if (qsnn_grid_learned(cfg->grid) && (!isfinite(cfg->p[0]) || !isfinite(cfg->p[1])))
        return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "state quantizer (%s grid): learned values %g, %g must be finite",
                         qsnn_grid_name(cfg->grid), cfg->p[0], cfg->p[1]);
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
    if (qsnn_grid_learned(cfg->grid))
        return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED,
                         "qsnn_state_levels: the %s grid is learned; its levels come from qsnn_state_quant_build",
                         qsnn_grid_name(cfg->grid));
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

/* ---- learned grids (qil, qn, cpq) ------------------------------------------------------------------ */

static int qd_of(int bits) { return (1 << (bits - 1)) - 1; }

void qsnn_state_lq_init(const qsnn_state_quant_cfg *cfg, double p[2]) {
    const double top = 1.0 + cfg->upper_limit, qd = cfg->bits >= 2 ? qd_of(cfg->bits) : 1.0;
    switch (cfg->grid) {
    case QSNN_GRID_QIL: p[0] = p[1] = 0.5 * top; break;  /* a symmetric uniform grid over ±θ(1 + upper_limit) */
    case QSNN_GRID_QN: p[1] = qd / top, p[0] = 1.0 / p[1]; break; /* β = qD/(1 + upper_limit), α = 1/β */
    case QSNN_GRID_CPQ: p[0] = top / qd, p[1] = p[0] / 3.0; break;
    default: p[0] = p[1] = 0.0; break;
    }
}

void qsnn_state_lq_params(const qsnn_state_quant_cfg *cfg, double p[2]) {
    if (cfg->p[0] == 0.0 && cfg->p[1] == 0.0) qsnn_state_lq_init(cfg, p);
    else p[0] = (double)(float)cfg->p[0], p[1] = (double)(float)cfg->p[1]; /* the layer's float parameters */
    switch (cfg->grid) {
    case QSNN_GRID_QIL: /* d > 0 keeps the interval open; c >= 0 keeps c + d > 0 (the top level above 0) */
        if (!(p[1] >= 1e-3)) p[1] = 1e-3;
        if (!(p[0] >= 0.0)) p[0] = 0.0;
        break;
    case QSNN_GRID_QN: /* α > 0 keeps the levels ascending, β > 0 the steps */
        if (!(p[0] >= 1e-6)) p[0] = 1e-6;
        if (!(p[1] >= 1e-6)) p[1] = 1e-6;
        break;
    case QSNN_GRID_CPQ:
        if (!(p[0] >= 1e-4)) p[0] = 1e-4;
        if (!(p[1] >= 1e-3 * p[0])) p[1] = 1e-3 * p[0];
        break;
    default: break;
    }
}

const char *qsnn_state_lq_name(qsnn_grid g, int i) {
    static const char *const names[3][2] = {
        {"state_center", "state_half_width"}, {"state_alpha", "state_beta"}, {"state_step", "state_noise"}};
    if (!qsnn_grid_learned(g) || i < 0 || i > 1) return NULL;
    return names[g - QSNN_GRID_QIL][i];
}

int qsnn_cpq_kept(const qsnn_state_quant_cfg *cfg, int k) {
    if (!cfg->pass.training || !(cfg->lq.cpq_state_drop > 0.0)) return 1; /* inference keeps every point */
    const int b = cfg->bits;
    const int m = k == 0 ? 1 : b - __builtin_ctz((unsigned)k); /* the bit level of point k */
    if (m < 3) return 1;                                          /* the 2-bit base grid */
    const double prob = cfg->lq.cpq_state_drop * ldexp(1.0, m - b);
    return !(qsnn_lq_uniform(cfg->pass.seed, 0x5747E5, (uint64_t)(int64_t)k) < prob);
}

/* qil's code of x (the formula, in double precision): round(t(v)·qD) with ties to the lower code. */
static long qil_code(const double p[2], int qd, double theta, float x) {
    const double c = p[0], d = p[1], v = (double)x / theta, a = fabs(v);
    double t;
    if (a < c - d) t = 0.0;
    else if (a > c + d) t = 1.0;
    else {
        t = (a - (c - d)) / (2.0 * d);
        t = t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t); /* rounding must not leave [0, 1] (monotone at the ends) */
    }
    return (long)ceil((v < 0.0 ? -t : t) * qd - 0.5);
}

/* qn's hard code of x: #{i in 1..2qD: βv - b_i > 0} - qD, b_i = i - qD - 1/2 (exact in double, so the sign of
 * the difference is the comparison βv > b_i); the count from arithmetic, corrected against the comparisons. */
static long qn_code(const double p[2], int qd, double theta, float x) {
    const double w = p[1] * ((double)x / theta);
    const long n = 2L * qd;
    const double e = floor(w + qd + 0.5);
    long m = e < 0.0 ? 0 : (e > (double)n ? n : (long)e);
    while (m < n && w - ((double)(m + 1 - qd) - 0.5) > 0.0) m++;
    while (m > 0 && !(w - ((double)(m - qd) - 0.5) > 0.0)) m--;
    return m - qd;
}

/* The level of code k: θ·step·k in double, rounded once to float (the table stores the same values). */
static float lq_level(double theta, double step, long k) { return (float)(theta * step * (double)k); }

float qsnn_state_lq_ref(const qsnn_state_quant_cfg *cfg, float theta, float x) {
    if (x != x) return x;
    double p[2];
    qsnn_state_lq_params(cfg, p);
    const int qd = qd_of(cfg->bits);
    switch (cfg->grid) {
    case QSNN_GRID_QIL: return lq_level(theta, (p[0] + p[1]) / qd, qil_code(p, qd, theta, x));
    case QSNN_GRID_QN: return lq_level(theta, p[0], qn_code(p, qd, theta, x));
    case QSNN_GRID_CPQ: { /* the largest kept level < x and the smallest kept level >= x; the nearest, ties low */
        const int half = 1 << (cfg->bits - 1);
        const double e = floor((double)x / ((double)theta * p[0]));
        int k = e < -half ? -half : (e > half - 1 ? half - 1 : (int)e); /* a start; levels grow with k */
        while (k >= -half && !(lq_level(theta, p[0], k) < x)) k--;
        while (k + 1 < half && lq_level(theta, p[0], k + 1) < x) k++;
        int kb = k + 1; /* k: the last point below x, kb the first at or above */
        while (k >= -half && !qsnn_cpq_kept(cfg, k)) k--;
        while (kb < half && !qsnn_cpq_kept(cfg, kb)) kb++;
        if (k < -half) return lq_level(theta, p[0], kb);
        if (kb >= half) return lq_level(theta, p[0], k);
        const float a = lq_level(theta, p[0], k), b = lq_level(theta, p[0], kb);
        return (x - a) <= (b - x) ? a : b;
    }
    default: return x;
    }
}

/* The smallest float x whose code is >= k (code monotone in x): bisection over all floats (-inf .. +inf). */
static float lq_cut(const qsnn_state_quant_cfg *cfg, const double p[2], int qd, double theta, long k) {
    int64_t lo = ord(-INFINITY), hi = ord(INFINITY); /* code(lo) = -qD < k, code(hi) = qD >= k */
    while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        const float x = unord(mid);
        const long c = cfg->grid == QSNN_GRID_QIL ? qil_code(p, qd, theta, x) : qn_code(p, qd, theta, x);
        if (c >= k) hi = mid;
        else lo = mid;
    }
    return unord(hi);
}

static qsnn_status lq_alloc(qsnn_ctx *ctx, qsnn_state_quant *q, int cap) {
    if (q->learned && q->cap >= cap && q->levels) return QSNN_OK;
    qsnn_free(ctx, q->levels), qsnn_free(ctx, q->xcuts), qsnn_free(ctx, q->codes), qsnn_free(ctx, q->kept);
    qsnn_free(ctx, q->ecoef);
    q->levels = qsnn_malloc(ctx, (size_t)cap * sizeof(float));
    q->ecoef = qsnn_malloc(ctx, (size_t)cap * sizeof(float));
    q->xcuts = qsnn_malloc(ctx, (size_t)cap * sizeof(float));
    q->codes = qsnn_malloc(ctx, (size_t)cap * sizeof(int));
    q->kept = qsnn_malloc(ctx, (size_t)cap);
    q->cap = cap;
    return q->levels && q->xcuts && q->codes && q->kept && q->ecoef ? QSNN_OK : QSNN_ERR_NOMEM;
}

static qsnn_status build_learned(qsnn_ctx *ctx, const qsnn_state_quant_cfg *cfg, float theta, qsnn_state_quant *q) {
    qsnn_status st = qsnn_state_quant_check(ctx, cfg);
    if (st) return st;
    if (!(theta > 0.0f) || !isfinite(theta))
        return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "state quantizer: threshold %g must be finite and > 0", theta);
    /* the options live in cfg->lq (quant.qn.*, quant.cpq.*), which the network copies into each layer */
    if (cfg->grid == QSNN_GRID_QN && !(cfg->lq.qn_t_base > 0.0 && cfg->lq.qn_t_max > 0.0))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.qn.t_base = %g, quant.qn.t_max = %g: both must be > 0 for the qn grid",
                         cfg->lq.qn_t_base, cfg->lq.qn_t_max);
    if (cfg->grid == QSNN_GRID_CPQ && !(cfg->lq.cpq_state_drop >= 0.0 && cfg->lq.cpq_state_drop < 1.0))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.cpq.state_drop_prob = %g: must be in [0, 1)", cfg->lq.cpq_state_drop);
    const int full = 1 << cfg->bits, half = full / 2, qd = qd_of(cfg->bits);
    if ((st = lq_alloc(ctx, q, full))) {
        q->enabled = 0;
        return st;
    }
    q->learned = 1;
    double p[2];
    qsnn_state_lq_params(cfg, p);
    const double th = theta;
    int n = 0;
    if (cfg->grid == QSNN_GRID_CPQ) {
        for (int k = -half; k < half; k++) {
            const int kept = qsnn_cpq_kept(cfg, k);
            q->kept[k + half] = (unsigned char)kept;
            if (kept) q->codes[n] = k, q->levels[n++] = lq_level(th, p[0], k);
        }
    } else {
        const double step = cfg->grid == QSNN_GRID_QIL ? (p[0] + p[1]) / qd : p[0];
        for (int k = -qd; k <= qd; k++) q->codes[n] = k, q->levels[n++] = lq_level(th, step, k);
    }
    for (int i = 1; i < n; i++)
        if (q->levels[i] < q->levels[i - 1]) q->levels[i] = q->levels[i - 1];
    q->n = n;
    q->enabled = 1;
    q->lo = q->levels[0];
    q->hi = q->levels[n - 1];
    q->cut_search = cfg->grid != QSNN_GRID_CPQ;
    if (q->cut_search) /* level i+1 starts where the code reaches codes[i+1] */
        for (int i = 0; i + 1 < n; i++) q->xcuts[i] = lq_cut(cfg, p, qd, th, q->codes[i + 1]);
    q->n_cuts = n <= QSNN_STATE_CUT_LEVELS ? n - 1 : 0;
    for (int i = 0; i < q->n_cuts; i++)
        q->cuts[i] = q->cut_search ? q->xcuts[i] : decision_cut(q->levels[i], q->levels[i + 1]);
    q->uniform = cfg->grid == QSNN_GRID_CPQ && n == full; /* every point kept: the uniform fast path */
    q->inv_step = q->uniform ? (float)((n - 1) / ((double)q->hi - q->lo)) : 0.0f;
    q->soft = cfg->grid == QSNN_GRID_QN && cfg->pass.training;
    q->qn_t = cfg->grid == QSNN_GRID_QN ? qsnn_qn_temperature(&cfg->lq, cfg->pass.epoch) : 0.0;
    q->lp[0] = p[0], q->lp[1] = p[1];
    q->emax = 0.0f, q->er = 0.0;
    if (cfg->grid == QSNN_GRID_CPQ) { /* the backward's edge coefficients (open outer edges: none) */
        for (int k = q->codes[0]; k < q->codes[n - 1]; k++) {
            const int c = k * q->kept[k + half] - (k + 1) * q->kept[k + 1 + half];
            q->ecoef[k - q->codes[0]] = (float)c; /* |c| <= 2^15: exact */
            q->emax = fabsf((float)c) > q->emax ? fabsf((float)c) : q->emax;
        }
        q->er = exp(-p[0] / p[1]);
    }
    q->step = 0.0f;
    q->step_exp = 0;
    q->ste_clip = cfg->ste_clip;
    q->built_theta = theta;
    q->cfg = *cfg;
    return QSNN_OK;
}

static double sigm(double z) { return 1.0 / (1.0 + exp(-z)); }

double qsnn_qn_soft(const qsnn_state_quant *q, double x, double *dx, double *da, double *db) {
    const double th = q->built_theta, al = q->lp[0], be = q->lp[1], T = q->qn_t, v = x / th;
    const int qd = qd_of(q->cfg.bits), n = 2 * qd;
    double S = 0.0, D = 0.0;
    for (int i = 1; i <= n; i++) {
        const double z = T * (be * v - ((double)(i - qd) - 0.5));
        if (z > 10.0) S += sigm(10.0); /* clamped: constant, no derivative */
        else if (z < -10.0) S += sigm(-10.0);
        else {
            const double s = sigm(z);
            S += s;
            D += s * (1.0 - s);
        }
    }
    if (dx) *dx = al * be * T * D;
    if (da) *da = th * (S - qd);
    if (db) *db = th * al * T * v * D;
    return th * al * (S - qd);
}

/* Index of the level the table picks for u (nearest, ties to the lower), as qsnn_state_quant_ref. */
static int nearest_index(const qsnn_state_quant *q, float u) {
    const float *lv = q->levels;
    if (!(u > lv[0])) return 0;
    if (u >= lv[q->n - 1]) return q->n - 1;
    int lo = 0, hi = q->n - 1;
    while (hi - lo > 1) {
        const int mid = (lo + hi) >> 1;
        if (lv[mid] < u) lo = mid;
        else hi = mid;
    }
    return (u - lv[lo]) <= (lv[hi] - u) ? lo : hi;
}

float qsnn_state_quant_xapply(const qsnn_state_quant *q, float u) {
    if (u != u) return u;
    if (q->soft) return (float)qsnn_qn_soft(q, u, NULL, NULL, NULL);
    /* the level index is the number of cuts <= u */
    int lo = 0, hi = q->n - 1; /* first cut > u in [lo, hi] (hi = n-1: none) */
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if (u >= q->xcuts[mid]) lo = mid + 1;
        else hi = mid;
    }
    return q->levels[lo];
}

/* CPQ's estimator summed per bin edge (the multi-class STE of the header, docs/neurons.md): with
 * x_j = (α(k_j + ½) - v)/σ, k_j = codes[0] + j, and s'(x) = e^-|x|/(1 + e^-|x|)^2,
 *   s1 = Σ_j c_j s'(x_j),  s2 = Σ_j c_j (k_j + ½) s'(x_j),  s3 = Σ_j c_j x_j s'(x_j),  c_j = ecoef[j],
 * and dx̂/dx = -(α/σ)s1, dx̂/dα = θk* + θ(α/σ)s2, dx̂/dσ = -θ(α/σ)s3. The x_j step by Δ = α/σ, so e^-|x_j| is
 * one exp and then products with e^-Δ, walking outwards from the edges either side of v (factors at most 1);
 * a walk stops once e^-|x|·emax falls below CPQ_EDGE_EPS of the largest term so far (the rest sum to less
 * than that over 1 - e^-Δ, at least where Δ is not tiny), or at the table's end. Double: products of
 * factors lose nothing, and e^-|x| stays normal far longer than in float. */
#define CPQ_EDGE_EPS 1e-8
static void cpq_edges(const qsnn_state_quant *q, double v, double *s1, double *s2, double *s3) {
    const double al = q->lp[0], sg = q->lp[1], dl = al / sg, r = q->er;
    const int k0 = q->codes[0], ne = q->codes[q->n - 1] - k0;
    const float *c = q->ecoef;
    double a1 = 0.0, a2 = 0.0, a3 = 0.0, best = 0.0;
    /* p: the first edge at or above v (rounding may move it by one, harmless: s' is even), clamped to [0, ne] */
    const double pf = ceil(v / al - k0 - 0.5);
    const int p = pf > 0.0 ? (pf < ne ? (int)pf : ne) : 0;
    double tp = 0.0;
    if (p < ne) { /* upwards: x_j >= 0, t = e^-x_j */
        double xj = (al * (k0 + p + 0.5) - v) / sg, t = tp = exp(-xj);
        for (int j = p; j < ne; j++, t *= r, xj += dl) {
            if (t * q->emax < CPQ_EDGE_EPS * best || t < 1e-300) break;
            if (c[j] == 0.0f) continue;
            const double u = 1.0 + t, d = c[j] * (t / (u * u)), m = fabs(d);
            a1 += d, a2 += d * (k0 + j + 0.5), a3 += d * xj;
            best = m > best ? m : best;
        }
    }
    if (p > 0) { /* downwards: x_j < 0, t = e^x_j; e^x_(p-1) = e^-Δ/t_p unless that underflows */
        double xj = (al * (k0 + p - 0.5) - v) / sg;
        double t = p < ne && r > 1e-290 ? r / tp : exp(xj);
        for (int j = p - 1; j >= 0; j--, t *= r, xj -= dl) {
            if (t * q->emax < CPQ_EDGE_EPS * best || t < 1e-300) break;
            if (c[j] == 0.0f) continue;
            const double u = 1.0 + t, d = c[j] * (t / (u * u)), m = fabs(d);
            a1 += d, a2 += d * (k0 + j + 0.5), a3 += d * xj;
            best = m > best ? m : best;
        }
    }
    *s1 = a1, *s2 = a2, *s3 = a3;
}

/* No LSQ gradient scale for these grids: Adam normalises each parameter's step, and the scale would only
 * change SGD's effective learning rate. */
float qsnn_state_lq_back(const qsnn_state_quant *q, float x, float g, double *gp0, double *gp1) {
    const double th = q->built_theta, v = (double)x / th;
    double dx = 0.0, d0 = 0.0, d1 = 0.0;
    switch (q->cfg.grid) {
    case QSNN_GRID_QIL: { /* STE through the rounding, κ = (c+d)/qD held constant; zero outside [c-d, c+d] */
        const double c = q->lp[0], d = q->lp[1], a = fabs(v), s = v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : 0.0);
        if (a >= c - d && a <= c + d) {
            const double kq = c + d; /* κ·qD */
            dx = kq / (2.0 * d);
            d0 = -th * kq * s / (2.0 * d);
            d1 = -th * kq * s * (a - c) / (2.0 * d * d);
        }
        break;
    }
    case QSNN_GRID_QN: qsnn_qn_soft(q, x, &dx, &d0, &d1); break; /* the soft staircase's derivatives */
    case QSNN_GRID_CPQ: {
        if (x != x) break;
        d0 = th * q->codes[nearest_index(q, x)]; /* θk*: the chosen point moves with α */
        double s1, s2, s3;
        cpq_edges(q, v, &s1, &s2, &s3);
        const double dl = q->lp[0] / q->lp[1]; /* α/σ */
        dx = -dl * s1, d0 += th * dl * s2, d1 = -th * dl * s3;
        break;
    }
    default: return g;
    }
    if (gp0) *gp0 += (double)g * d0;
    if (gp1) *gp1 += (double)g * d1;
    return (float)((double)g * dx);
}

qsnn_status qsnn_state_quant_build(qsnn_ctx *ctx, const qsnn_state_quant_cfg *cfg, float theta, qsnn_state_quant *q) {
    if (cfg->bits == 0) {
        qsnn_state_quant_free(ctx, q);
        q->cfg = *cfg;
        return QSNN_OK;
    }
    if (qsnn_grid_learned(cfg->grid)) return build_learned(ctx, cfg, theta, q);
    if (q->learned) qsnn_state_quant_free(ctx, q); /* a learned table's arrays are sized differently */
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
    qsnn_free(ctx, q->xcuts);
    qsnn_free(ctx, q->codes);
    qsnn_free(ctx, q->kept);
    qsnn_free(ctx, q->ecoef);
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
