/* Stateful quantization of the membrane (SQUAT grids, specs/neurons.md): uniform,
 * threshold-centered and zero-centered level tables, nearest level with ties to the lower level,
 * straight-through backward. */
#ifndef QSNN_QUANT_STATE_QUANT_H
#define QSNN_QUANT_STATE_QUANT_H

#include "core/context.h"
#include "quant/lq_opts.h"

/* threshold_rest: the threshold-centered construction with the multiplier of the levels below θ
 * raised (from the bit width's default) until the gap between the two levels around rest (0) is no
 * wider than the uniform grid's step; above θ as threshold-centered. Levels still crowd towards θ,
 * but an input that would move a uniform-grid neuron off rest moves this one too (the
 * threshold-centered grid's dead zone around rest is what makes it fail at 4 bits). An explicit
 * quant.state.multiplier is used as given.
 * lsq: a learned step (LSQ for states, quantizers.md §3): levels s·k for k in [-2^(b-1), 2^(b-1)-1]
 * with s a parameter of the layer ("layerN.state_scale", initially θ(1 + upper_limit)/(2^(b-1) - 1)),
 * trained with dL/ds = Σ over steps and neurons of dL/dÛ · (round(u/s) - u/s inside, -Qn below, Qp
 * above), scaled by 1/sqrt(N·T·Qp); the forward pass is a uniform grid. Needs b >= 2.
 * fixed_point: levels k·Δ for k in [-2^(b-1), 2^(b-1)-1] with Δ a power of two, the smallest that reaches
 * θ(1 + upper_limit) (lower_limit unused: the range is the signed integer range). Its codes are the
 * integers k, so states run in integer arithmetic (quantizers.md §8); needs b >= 2. */
typedef enum {
    QSNN_GRID_UNIFORM = 0,
    QSNN_GRID_THRESHOLD_CENTERED = 1,
    QSNN_GRID_ZERO_CENTERED = 2,
    QSNN_GRID_FIXED_POINT = 3,
    QSNN_GRID_THRESHOLD_REST = 4,
    QSNN_GRID_LSQ = 5,
    QSNN_GRID_QIL = 6,
    QSNN_GRID_QN = 7,
    QSNN_GRID_CPQ = 8
} qsnn_grid;
#define QSNN_GRID_COUNT 9

/* Learned state grids (qil, qn, cpq; specs/quantizers.md §4-6 applied to states, docs/neurons.md): two learned
 * scalars per layer, p[0] and p[1], on the normalised state v = x/θ (θ = the θ the table is built for);
 * qD = 2^(b-1) - 1, b >= 2.
 * qil (c = p[0], d = p[1], γ = 1): t(v) = 0 for |v| < c-d, sign(v) for |v| > c+d, else
 *   sign(v)(|v| - (c-d))/(2d); code = round(t·qD) (ties to the lower code); x̂ = θ·κ·code, κ = (c+d)/qD.
 *   Levels θκk, k in [-qD, qD]. Used with d >= 1e-3 and c >= 0.
 * qn (α = p[0], β = p[1]): unit steps at b_i = i - qD - 1/2, i = 1..2^b - 2 (midpoints between the integer
 *   levels: states do not exist when the grid is made, so there is no k-means of the values as for weights);
 *   hard: x̂ = θα(#{i: βv - b_i > 0} - qD); in a training pass the soft staircase
 *   x̂ = θα(Σ_i σ(clamp(T(βv - b_i), ±10)) - qD), T = qsnn_qn_temperature(lq, epoch). Used with α, β >= 1e-6.
 * cpq (α = p[0], σ = p[1]): grid θαk, k in [-2^(b-1), 2^(b-1)-1]; the nearest kept point (ties to the lower);
 *   in a training pass DropBits removes points of bit level m >= 3 (m(k) = b - trailing zeros of k, m(0) = 1)
 *   with probability lq.cpq_drop·2^(m-b), from qsnn_lq_uniform(pass.seed, 0x5747E5, k). Used with
 *   α >= 1e-4, σ >= 1e-3·α. Backward: CPQ's multi-class STE with open end bins (qsnn_state_lq_back).
 * QIL and QN tables keep explicit cut points (the smallest float that reaches each level, found by bisection
 * against the scalar reference qsnn_state_lq_ref), because their cuts are not midpoints between levels. */
static inline int qsnn_grid_learned(qsnn_grid g) { return g == QSNN_GRID_QIL || g == QSNN_GRID_QN || g == QSNN_GRID_CPQ; }

#define QSNN_STATE_MAX_BITS 16
#define QSNN_STATE_CUT_LEVELS 16

typedef struct qsnn_state_quant_cfg {
    int bits;          /* 0 = off; 1..16 */
    qsnn_grid grid;
    double lower_limit; /* U_min = -θ (1 + lower_limit) */
    double upper_limit; /* U_max =  θ (1 + upper_limit) */
    double multiplier; /* r for centered grids; 0 = the default for the bit width */
    int ste_clip;      /* 1: zero gradient outside [U_min, U_max] */
    double scale;      /* lsq grid: the step s (set per layer by the network; 0 = the initial value) */
    double p[2];       /* qil, qn, cpq: the two learned values (set per layer by the network; both 0 = initial) */
    qsnn_lq_opts lq;   /* QN / CPQ options (quant.qn.*, quant.cpq.*) */
    qsnn_lq_pass pass; /* set by the network before each forward; zero = inference */
} qsnn_state_quant_cfg;

typedef struct qsnn_state_quant {
    int enabled;
    int n;          /* number of levels */
    float *levels;  /* sorted ascending, n entries */
    float lo, hi;   /* end levels */
    int uniform;    /* levels equally spaced: index estimated arithmetically, then corrected */
    float inv_step; /* (n-1)/(hi-lo) when uniform */
    int ste_clip;
    float built_theta; /* θ the table was built for */
    float step;        /* lsq grid: the step s the table was built for */
    int step_exp;      /* fixed_point only: Δ = 2^step_exp */
    /* Grids of at most QSNN_STATE_CUT_LEVELS levels: cuts[i] is the smallest float that rounds to
     * level i+1 rather than i (under the reference's float comparison), so the level of u is the
     * number of cuts <= u: a branch-free count that vectorizes without table gathers. */
    int n_cuts;        /* n - 1, or 0 for larger grids */
    float cuts[QSNN_STATE_CUT_LEVELS - 1];
    /* Learned grids (qil, qn, cpq). */
    int learned;       /* 1 for these grids */
    int cut_search;    /* qil, qn: the level of u is the number of xcuts <= u (explicit cuts, any n) */
    int soft;          /* qn in a training pass: apply gives the soft staircase, not a level */
    int cap;           /* allocated entries of levels, xcuts, codes, kept */
    float *xcuts;      /* n - 1 cuts (cut_search) */
    int *codes;        /* the integer code k of each level (level = θ·step·k) */
    unsigned char *kept; /* cpq: kept[k + 2^(b-1)] = 1 when grid point k is in this pass's table */
    /* cpq backward, per bin edge j between points codes[0] + j and codes[0] + j + 1 (j < codes[n-1] - codes[0]):
     * ecoef[j] = k·kept(k) - (k+1)·kept(k+1), the summed coefficient of the two bins sharing the edge (the edges
     * outside the lowest and highest kept points are open: no entry); emax = max |ecoef|; er = e^(-α/σ). */
    float *ecoef;
    float emax;
    double er;
    double lp[2];      /* the learned values in effect (after the clamps) */
    double qn_t;       /* qn: the temperature of this pass */
    qsnn_state_quant_cfg cfg;
} qsnn_state_quant;

const char *qsnn_grid_name(qsnn_grid g);
/* -1 when the name is unknown. */
int qsnn_grid_find(const char *name);
/* The default r for a bit width (specs/neurons.md). */
double qsnn_grid_default_multiplier(int bits);
/* fixed_point grids: the exponent e of the step Δ = 2^e for threshold theta. */
int qsnn_fixed_point_step_exp(const qsnn_state_quant_cfg *cfg, double theta);
/* lsq grids: the initial step θ(1 + upper_limit)/(2^(b-1) - 1). */
double qsnn_lsq_state_init(const qsnn_state_quant_cfg *cfg, double theta);

/* Learned grids: the initial p[0], p[1] (they do not depend on θ: both are in units of θ). */
void qsnn_state_lq_init(const qsnn_state_quant_cfg *cfg, double p[2]);
/* The values a table uses for cfg->p: the initial ones when both are 0, then clamped (see above). */
void qsnn_state_lq_params(const qsnn_state_quant_cfg *cfg, double p[2]);
/* Names of the two learned values as network parameters ("state_center", ...), NULL for other grids. */
const char *qsnn_state_lq_name(qsnn_grid g, int i);
/* cpq: whether grid point k survives DropBits in cfg's pass (always in inference). */
int qsnn_cpq_kept(const qsnn_state_quant_cfg *cfg, int k);
/* Scalar reference of the hard learned quantizers (the formulas above, in double precision; cpq: the nearest
 * of the kept levels below and above x, found from x/(θα) without the table), for threshold theta; NaN
 * propagates. The table gives exactly this for every float. */
float qsnn_state_lq_ref(const qsnn_state_quant_cfg *cfg, float theta, float x);
/* qn's soft staircase at v = x/θ, with its derivatives dy/dx, dy/dα, dy/dβ (any may be NULL). */
double qsnn_qn_soft(const qsnn_state_quant *q, double x, double *dx, double *da, double *db);
/* Backward of a learned grid at the pre-quantization value x (table units): returns g·dx̂/dx and adds
 * g·dx̂/dp[0], g·dx̂/dp[1] to *gp0, *gp1 (either may be NULL). */
float qsnn_state_lq_back(const qsnn_state_quant *q, float x, float g, double *gp0, double *gp1);
/* Non-uniform tables with explicit cuts or the soft qn staircase (the slow path of qsnn_state_quant_apply). */
float qsnn_state_quant_xapply(const qsnn_state_quant *q, float u);

/* Checks a configuration; message names the offending field. */
qsnn_status qsnn_state_quant_check(qsnn_ctx *ctx, const qsnn_state_quant_cfg *cfg);
/* Builds (or rebuilds for a new θ) the level table. q must be zeroed before the first call. */
qsnn_status qsnn_state_quant_build(qsnn_ctx *ctx, const qsnn_state_quant_cfg *cfg, float theta, qsnn_state_quant *q);
void qsnn_state_quant_free(qsnn_ctx *ctx, qsnn_state_quant *q);
/* Computes the levels in double precision (n = 2^bits values) for a threshold θ. */
qsnn_status qsnn_state_levels(qsnn_ctx *ctx, const qsnn_state_quant_cfg *cfg, double theta, double *levels);

/* Scalar reference: binary search for the nearest level, ties to the lower one. */
static inline float qsnn_state_quant_ref(const qsnn_state_quant *q, float u) {
    const float *lv = q->levels;
    if (!(u > lv[0])) return u != u ? u : lv[0]; /* NaN propagates; below range saturates */
    if (u >= lv[q->n - 1]) return lv[q->n - 1];
    int lo = 0, hi = q->n - 1; /* lv[lo] < u <= lv[hi] */
    while (hi - lo > 1) {
        int mid = (lo + hi) >> 1;
        if (lv[mid] < u) lo = mid; else hi = mid;
    }
    return (u - lv[lo]) <= (lv[hi] - u) ? lv[lo] : lv[hi];
}

/* Fast path: for uniform grids the bracket comes from arithmetic (corrected by one step where
 * rounding put it off), so the result equals the reference bit for bit. */
static inline float qsnn_state_quant_apply(const qsnn_state_quant *q, float u) {
    if (!q->uniform) return q->cut_search || q->soft ? qsnn_state_quant_xapply(q, u) : qsnn_state_quant_ref(q, u);
    const float *lv = q->levels;
    if (!(u > lv[0])) return u != u ? u : lv[0];
    if (u >= lv[q->n - 1]) return lv[q->n - 1];
    int k = (int)((u - q->lo) * q->inv_step);
    if (k > q->n - 2) k = q->n - 2;
    if (k < 0) k = 0;
    if (!(lv[k] < u) && k > 0) k--;
    else if (u > lv[k + 1] && k < q->n - 2) k++;
    return (u - lv[k]) <= (lv[k + 1] - u) ? lv[k] : lv[k + 1];
}

/* out[j] = qsnn_state_quant_apply(q, in[j]) for j < n, bit for bit; vectorized (AVX2 gathers)
 * for uniform grids where available. in and out may be the same array. */
void qsnn_state_quant_apply_n(const qsnn_state_quant *q, const float *in, float *out, int n);

/* Level index of a quantized value (for integer export and histograms); -1 when not a level. */
int qsnn_state_level_index(const qsnn_state_quant *q, float v);

#endif
