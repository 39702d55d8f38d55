#include "sim/int_engine.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* v / 2^s rounded to nearest, ties down (the state grid's "ties to the lower level"); s <= 0 shifts
 * left. Right shifts of negative numbers are arithmetic (GCC, Clang). */
static inline int64_t shift_round(int64_t v, int s) {
    if (s <= 0) return v * ((int64_t)1 << -s);
    return (v + ((int64_t)1 << (s - 1)) - 1) >> s;
}

static inline int nearest_level(const qsnn_int_layer *L, int64_t v) {
    const int n = L->n_levels;
    if (L->fixed_point) {
        int64_t j = shift_round(v, L->d) + n / 2;
        return (int)(j < 0 ? 0 : (j > n - 1 ? n - 1 : j));
    }
    const int64_t *lv = L->lvl;
    if (v <= lv[0]) return 0;
    if (v >= lv[n - 1]) return n - 1;
    int lo = 0, hi = n - 1; /* lv[lo] < v <= lv[hi] */
    while (hi - lo > 1) {
        const int mid = (lo + hi) >> 1;
        if (lv[mid] < v) lo = mid;
        else hi = mid;
    }
    return (v - lv[lo]) <= (lv[hi] - v) ? lo : hi;
}

/* One neuron, one step, from its previous membrane u (fine units) and input current cur. */
static inline int64_t step(const qsnn_int_layer *L, int64_t u, int64_t cur, int *k_out) {
    const int r = u > L->theta;
    const int64_t leak = shift_round((int64_t)L->beta_m * u, L->beta_bits);
    int64_t v;
    switch (L->reset) {
    case QSNN_RESET_SUBTRACT: v = leak + cur - (r ? L->theta : 0); break;
    case QSNN_RESET_ZERO: v = (r ? 0 : leak) + cur; break;
    default: v = leak + cur; break;
    }
    const int k = nearest_level(L, v);
    *k_out = k;
    return L->lvl[k];
}

int qsnn_int_step_ref(const qsnn_int_layer *L, int k_prev, int64_t cur, int *spike) {
    const int64_t u = k_prev < 0 ? 0 : L->lvl[k_prev]; /* k_prev < 0: the initial state 0 */
    int64_t v;
    const int r = u > L->theta;
    const int64_t prod = (int64_t)L->beta_m * u;
    const int64_t leak = L->beta_bits > 0 ? (int64_t)floor(((double)prod + ldexp(1.0, L->beta_bits - 1) - 1.0) /
                                                           ldexp(1.0, L->beta_bits))
                                          : prod;
    if (L->reset == QSNN_RESET_SUBTRACT) v = leak + cur - (r ? L->theta : 0);
    else if (L->reset == QSNN_RESET_ZERO) v = (r ? 0 : leak) + cur;
    else v = leak + cur;
    int best = 0; /* linear scan: nearest, ties to the lower level */
    for (int k = 1; k < L->n_levels; k++) {
        const int64_t dk = v > L->lvl[k] ? v - L->lvl[k] : L->lvl[k] - v;
        const int64_t db = v > L->lvl[best] ? v - L->lvl[best] : L->lvl[best] - v;
        if (dk < db) best = k;
    }
    *spike = L->lvl[best] > L->theta;
    return best;
}


static inline int64_t to_fine(const qsnn_int_layer *L, int o, int64_t acc) {
    const int64_t a = acc + L->bias[o];
    const int64_t c = L->M[o] == 1 ? shift_round(a, L->sh[o]) : shift_round(a * L->M[o], L->sh[o]);
    if (!L->cur_step) return c;
    int64_t k = qsnn_int_div_round_even(c, L->cur_step);
    k = k < -L->cur_kmax ? -L->cur_kmax : (k > L->cur_kmax ? L->cur_kmax : k);
    return k * L->cur_step;
}

/* ---- conversion ------------------------------------------------------------------------------- */

static int is_int(double v) { return v == nearbyint(v) && fabs(v) < 9.0e15; }

static qsnn_status convert_layer(qsnn_ctx *ctx, const qsnn_net *net, int l, int input_bits, qsnn_int_layer *I) {
    const qsnn_layer *L = &net->layer[l];
    const int exact_cfg = net->cfg.integer;
    if (!L->wq || !L->sq.enabled)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                         "layer %d has float %s: the integer engine needs quantized weights and states "
                         "(quant.weight.bits, quant.state.bits)",
                         l, !L->wq ? "weights" : "states");
    if (L->wq_cfg.bits > 16)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "layer %d: %d-bit weights (the integer engine takes up to 16)", l,
                         L->wq_cfg.bits);
    I->in = L->in, I->out = L->out;
    I->w_bits = L->wq_cfg.bits, I->s_bits = L->sq_cfg.bits;
    I->reset = L->np.reset;
    const size_t nw = (size_t)L->in * L->out;
    int32_t *codes = qsnn_malloc(ctx, nw * sizeof(int32_t));
    I->Wc = qsnn_malloc(ctx, nw * sizeof(int16_t));
    I->Wt = qsnn_malloc(ctx, nw * sizeof(int16_t));
    I->bias = qsnn_calloc(ctx, (size_t)L->out, sizeof(int64_t));
    I->M = qsnn_malloc(ctx, (size_t)L->out * sizeof(int32_t));
    I->sh = qsnn_malloc(ctx, (size_t)L->out * sizeof(int32_t));
    I->n_levels = L->sq.n;
    I->lvl = qsnn_malloc(ctx, (size_t)I->n_levels * sizeof(int64_t));
    if (!codes || !I->Wc || !I->Wt || !I->bias || !I->M || !I->sh || !I->lvl) {
        qsnn_free(ctx, codes);
        return QSNN_ERR_NOMEM;
    }
    L->wq->codes(&L->wq_cfg, L->W, L->w_scales, L->out, L->in, codes);
    for (size_t i = 0; i < nw; i++)
        if (codes[i] < INT16_MIN || codes[i] > INT16_MAX) {
            qsnn_free(ctx, codes);
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "layer %d: weight code %d does not fit 16 bits (%s, %d bits)", l,
                             (int)codes[i], L->wq->name, L->wq_cfg.bits);
        }
    for (int o = 0; o < L->out; o++)
        for (int i = 0; i < L->in; i++) {
            const int16_t c = (int16_t)codes[(size_t)o * L->in + i];
            I->Wc[(size_t)o * L->in + i] = c;
            I->Wt[(size_t)i * L->out + o] = c;
        }
    qsnn_free(ctx, codes);

    /* Accumulator unit of neuron o: its weight scale times the input unit. */
    const double x_unit = l ? 1.0 : (input_bits ? ldexp(1.0, -input_bits) : 1.0 / 255.0);
    const int per_ch = L->wq_cfg.granularity == QSNN_WQ_PER_CHANNEL;
    const double theta = L->np.theta, beta = L->np.beta;
    int exact = exact_cfg;
    if (exact_cfg) {
        /* Every constant is a power of two times a small integer: choose the finest unit in use. */
        int E = L->sq.step_exp - QSNN_INT_BETA_BITS;
        for (int o = 0; o < L->out; o++) {
            const int e = ilogb(L->w_scales[per_ch ? o : 0] * x_unit);
            if (e < E) E = e;
        }
        if (L->cur_step > 0 && ilogb(L->cur_step) < E) E = ilogb(L->cur_step);
        I->E = E;
        I->beta_bits = QSNN_INT_BETA_BITS;
        I->beta_m = (int32_t)ldexp(beta, QSNN_INT_BETA_BITS);
        exact &= ldexp((double)I->beta_m, -QSNN_INT_BETA_BITS) == beta;
        for (int o = 0; o < L->out; o++) {
            const double unit = (double)L->w_scales[per_ch ? o : 0] * x_unit;
            I->M[o] = 1;
            I->sh[o] = -(ilogb(unit) - E);
            exact &= ldexp(1.0, ilogb(unit)) == unit;
            if (L->b) {
                const double bc = (double)L->bias_fwd[o] / unit;
                exact &= is_int(bc);
                I->bias[o] = (int64_t)nearbyint(bc);
            }
        }
    } else {
        I->E = ilogb(theta) - 20; /* θ with 20 fractional bits */
        I->beta_bits = 16;
        I->beta_m = (int32_t)nearbyint(ldexp(beta, 16));
        for (int o = 0; o < L->out; o++) {
            const double unit = (double)L->w_scales[per_ch ? o : 0] * x_unit;
            int p;
            const double m = frexp(unit, &p); /* unit = m·2^p, m in [0.5, 1) */
            I->M[o] = (int32_t)nearbyint(ldexp(m, 15));
            I->sh[o] = 15 - (p - I->E);
            if (L->b) I->bias[o] = (int64_t)nearbyint((double)L->bias_fwd[o] / unit);
        }
    }
    const double to_fine = ldexp(1.0, -I->E);
    I->theta = (int64_t)nearbyint(theta * to_fine);
    exact &= is_int(theta * to_fine);
    for (int k = 0; k < I->n_levels; k++) {
        const double v = (double)L->sq.levels[k] * to_fine;
        I->lvl[k] = (int64_t)nearbyint(v);
        exact &= is_int(v);
    }
    if (L->cur_step > 0) {
        const double c = (double)L->cur_step * to_fine;
        I->cur_step = (int64_t)nearbyint(c) > 0 ? (int64_t)nearbyint(c) : 1;
        I->cur_kmax = L->cur_kmax;
        exact &= is_int(c);
    }
    I->fixed_point = L->sq_cfg.grid == QSNN_GRID_FIXED_POINT && L->sq.step_exp >= I->E;
    I->d = I->fixed_point ? L->sq.step_exp - I->E : 0;
    I->exact = exact;
    return QSNN_OK;
}

qsnn_status qsnn_int_net_create(qsnn_ctx *ctx, const qsnn_net *net, qsnn_int_net **out) {
    *out = NULL;
    const char *why = NULL;
    if (!qsnn_net_plain_lif(&net->cfg, &why))
        return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED, "integer engine: %s", why);
    /* The engine rounds to the nearest level (ties to the lower); qil and qn tables cut between their levels
     * elsewhere. cpq's inference table is its nearest grid point, which the engine reproduces. */
    for (int l = 0; l < net->n_layers; l++) {
        const qsnn_grid g = qsnn_net_cfg_state_grid(&net->cfg, l);
        if (qsnn_net_cfg_state_bits(&net->cfg, l) && (g == QSNN_GRID_QIL || g == QSNN_GRID_QN))
            return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED,
                             "integer engine: quant.state.grid = %s (layer %d) cuts between its levels off their "
                             "midpoints; the integer engine takes nearest-level grids (uniform, centered, fixed_point, "
                             "lsq, cpq)",
                             qsnn_grid_name(g), l);
    }
    qsnn_int_net *in = qsnn_calloc(ctx, 1, sizeof *in);
    if (!in) return QSNN_ERR_NOMEM;
    in->ctx = ctx;
    in->n_layers = net->n_layers;
    in->n_inputs = net->cfg.n_inputs;
    in->input_bits = qsnn_net_input_bits(&net->cfg);
    in->exact = 1;
    for (int l = 0; l < net->n_layers; l++) {
        qsnn_status st = convert_layer(ctx, net, l, in->input_bits, &in->layer[l]);
        if (st) {
            qsnn_int_net_destroy(&in);
            return st;
        }
        in->exact &= in->layer[l].exact;
    }
    *out = in;
    return QSNN_OK;
}

void qsnn_int_net_destroy(qsnn_int_net **pin) {
    if (!pin || !*pin) return;
    qsnn_int_net *in = *pin;
    for (int l = 0; l < in->n_layers; l++) {
        qsnn_int_layer *I = &in->layer[l];
        qsnn_free(in->ctx, I->Wc);
        qsnn_free(in->ctx, I->Wt);
        qsnn_free(in->ctx, I->bias);
        qsnn_free(in->ctx, I->M);
        qsnn_free(in->ctx, I->sh);
        qsnn_free(in->ctx, I->lvl);
    }
    qsnn_free(in->ctx, in);
    *pin = NULL;
}

void qsnn_int_input_codes(const qsnn_int_net *inet, const float *x, int16_t *codes, size_t n) {
    /* The same rounding as the float engine's input quantizer (qsnn_input_quant): round half even. */
    const float up = inet->input_bits ? ldexpf(1.0f, inet->input_bits) : 255.0f;
    for (size_t i = 0; i < n; i++) {
        const float k = nearbyintf(x[i] * up);
        codes[i] = (int16_t)(k < 0.0f ? 0.0f : (k > up ? up : k));
    }
}

/* Output classes counted on the stack of each thread. */
#define QSNN_INT_MAX_CLASSES_STACK 4096

/* ---- the time loop ----------------------------------------------------------------------------- */

/* Scratch of one thread: everything one sample needs. */
typedef struct scratch {
    int16_t *x;    /* input codes of the sample: [n_inputs] static, or [T][n_inputs] */
    uint8_t *s[2]; /* spikes of the previous and the current layer, [T][max_out] */
    int64_t *u;    /* membranes of the current layer [max_out] */
    int64_t *cur;  /* currents of the current layer [max_out] */
    int64_t *acc;  /* accumulators [max_out] */
    int64_t *umax; /* output layer: maximal membrane per class */
} scratch;

/* acc[o] = Σ_i w[o][i] x[i] over dense inputs (the static first layer). */
static void dense_acc(const qsnn_int_layer *L, const int16_t *x, int64_t *acc) {
    for (int o = 0; o < L->out; o++) {
        const int16_t *w = L->Wc + (size_t)o * L->in;
        int32_t a32 = 0; /* |w·x| < 2^31 checked at forward start for this path */
        for (int i = 0; i < L->in; i++) a32 += (int32_t)w[i] * (int32_t)x[i];
        acc[o] = a32;
    }
}

static void dense_acc64(const qsnn_int_layer *L, const int16_t *x, int64_t *acc) {
    for (int o = 0; o < L->out; o++) {
        const int16_t *w = L->Wc + (size_t)o * L->in;
        int64_t a = 0;
        for (int i = 0; i < L->in; i++) a += (int64_t)w[i] * x[i];
        acc[o] = a;
    }
}

/* acc[o] = Σ over nonzero inputs i of x[i]·Wt[i][o] (spikes, or sparse input codes). */
static void event_acc(const qsnn_int_layer *L, const uint8_t *s, const int16_t *x, int64_t *acc) {
    for (int o = 0; o < L->out; o++) acc[o] = 0;
    for (int i = 0; i < L->in; i++) {
        const int64_t c = s ? s[i] : x[i];
        if (!c) continue;
        const int16_t *w = L->Wt + (size_t)i * L->out;
        for (int o = 0; o < L->out; o++) acc[o] += c * w[o];
    }
}

static int argmax_i64(const int64_t *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

qsnn_status qsnn_int_forward(qsnn_int_net *inet, const float *x, int x_static, int B, int T, uint8_t **spikes,
                             int32_t *counts, int *pred) {
    qsnn_ctx *ctx = inet->ctx;
    if (B < 1 || T < 1) return qsnn_fail(ctx, QSNN_ERR_ARG, "integer engine: batch %d, %d steps", B, T);
    int max_out = inet->n_inputs;
    for (int l = 0; l < inet->n_layers; l++)
        if (inet->layer[l].out > max_out) max_out = inet->layer[l].out;
    const int F = inet->n_inputs, C = inet->layer[inet->n_layers - 1].out;
    if (C > QSNN_INT_MAX_CLASSES_STACK)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "integer engine: %d output neurons (at most %d)", C,
                         QSNN_INT_MAX_CLASSES_STACK);
    const qsnn_int_layer *L0 = &inet->layer[0];
    const double xmax = inet->input_bits ? ldexp(1.0, inet->input_bits) : 255.0;
    const int acc32 = (double)L0->in * ldexp(1.0, L0->w_bits - 1) * xmax < 2147483647.0;
    const int nt = omp_get_max_threads();
    const size_t xs = (size_t)(x_static ? 1 : T) * F, ss = (size_t)T * max_out;
    const size_t per = xs * sizeof(int16_t) + 2 * ss + 4 * (size_t)max_out * sizeof(int64_t) + 64;
    char *mem = qsnn_malloc(ctx, (size_t)nt * per);
    if (!mem) return QSNN_ERR_NOMEM;
    scratch *sc = qsnn_malloc(ctx, (size_t)nt * sizeof(scratch));
    if (!sc) {
        qsnn_free(ctx, mem);
        return QSNN_ERR_NOMEM;
    }
    for (int t = 0; t < nt; t++) {
        char *p = mem + (size_t)t * per;
        sc[t].u = (int64_t *)p, p += (size_t)max_out * sizeof(int64_t);
        sc[t].cur = (int64_t *)p, p += (size_t)max_out * sizeof(int64_t);
        sc[t].acc = (int64_t *)p, p += (size_t)max_out * sizeof(int64_t);
        sc[t].umax = (int64_t *)p, p += (size_t)max_out * sizeof(int64_t);
        sc[t].x = (int16_t *)p, p += xs * sizeof(int16_t);
        sc[t].s[0] = (uint8_t *)p, p += ss;
        sc[t].s[1] = (uint8_t *)p;
    }

    #pragma omp parallel for schedule(dynamic, 4)
    for (int b = 0; b < B; b++) {
        scratch *S = &sc[omp_get_thread_num()];
        /* The encoder's output to input codes: before the time loop. */
        if (x_static) qsnn_int_input_codes(inet, x + (size_t)b * F, S->x, (size_t)F);
        else
            for (int t = 0; t < T; t++)
                qsnn_int_input_codes(inet, x + ((size_t)t * B + b) * F, S->x + (size_t)t * F, (size_t)F);
        int cur_s = 0;
        for (int l = 0; l < inet->n_layers; l++) {
            const qsnn_int_layer *L = &inet->layer[l];
            const int last = l == inet->n_layers - 1;
            uint8_t *sin = S->s[cur_s], *sout = S->s[cur_s ^ 1];
            for (int o = 0; o < L->out; o++) S->u[o] = 0, S->umax[o] = INT64_MIN;
            if (l == 0 && x_static) {
                if (acc32) dense_acc(L, S->x, S->acc);
                else dense_acc64(L, S->x, S->acc);
                for (int o = 0; o < L->out; o++) S->cur[o] = to_fine(L, o, S->acc[o]);
            }
            for (int t = 0; t < T; t++) {
                if (!(l == 0 && x_static)) {
                    if (l == 0) event_acc(L, NULL, S->x + (size_t)t * F, S->acc);
                    else event_acc(L, sin + (size_t)t * max_out, NULL, S->acc);
                    for (int o = 0; o < L->out; o++) S->cur[o] = to_fine(L, o, S->acc[o]);
                }
                uint8_t *st = sout + (size_t)t * max_out;
                for (int o = 0; o < L->out; o++) {
                    int k;
                    const int64_t u = step(L, S->u[o], S->cur[o], &k);
                    S->u[o] = u;
                    st[o] = u > L->theta;
                    if (u > S->umax[o]) S->umax[o] = u;
                }
                if (spikes && spikes[l]) memcpy(spikes[l] + ((size_t)t * B + b) * L->out, st, (size_t)L->out);
            }
            if (last) {
                int32_t cnt[QSNN_INT_MAX_CLASSES_STACK];
                int64_t c64[QSNN_INT_MAX_CLASSES_STACK];
                const int nc = C;
                for (int o = 0; o < nc; o++) cnt[o] = 0;
                for (int t = 0; t < T; t++)
                    for (int o = 0; o < nc; o++) cnt[o] += sout[(size_t)t * max_out + o];
                if (counts)
                    for (int o = 0; o < nc; o++) counts[(size_t)b * C + o] = cnt[o];
                if (pred) {
                    for (int o = 0; o < nc; o++) c64[o] = cnt[o];
                    pred[b] = argmax_i64(inet->max_membrane ? S->umax : c64, nc);
                }
            }
            cur_s ^= 1;
        }
    }
    qsnn_free(ctx, sc);
    qsnn_free(ctx, mem);
    return QSNN_OK;
}
