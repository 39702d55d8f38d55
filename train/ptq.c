#include "train/ptq.h"
#include "datasets/batch.h"
#include "sim/gemm.h"
#include "train/adaround.h"
#include "train/loss.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Membrane values kept for the state range (a strided subsample of all of them). */
#define PTQ_MAX_STATE_SAMPLES (4u << 20)

typedef struct calib_stats {
    double *mean_in[QSNN_MAX_LAYERS]; /* E[x] of each layer's input, [in] */
    float *counts;                    /* spike counts per sample and neuron, all layers: [n][Σ out] */
    int want_gram;                    /* also E[x xᵀ] of each layer's input (AdaRound) */
    float *G[QSNN_MAX_LAYERS];        /* [in][in] */
    double g_rows[QSNN_MAX_LAYERS];
    size_t n_neurons;
    float *u;                         /* U/θ samples */
    size_t n_u;
} calib_stats;

/* Spike counts per sample and neuron of every layer, into counts[n][Σ out] (or, with ref, the mean
 * squared difference to ref into *err). With cs, also the input means and membrane samples. */
static qsnn_status run_calib(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                             const qsnn_dataset *ds, uint64_t seed, calib_stats *cs, float *counts, const float *ref,
                             double *err);

static qsnn_status collect(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                           const qsnn_dataset *ds, uint64_t seed, calib_stats *cs) {
    cs->n_neurons = 0;
    for (int l = 0; l < net->n_layers; l++) cs->n_neurons += (size_t)net->layer[l].out;
    if (!(cs->counts = qsnn_malloc(ctx, (size_t)ds->n * cs->n_neurons * sizeof(float)))) return QSNN_ERR_NOMEM;
    return run_calib(ctx, net, tcfg, dcfg, ds, seed, cs, cs->counts, NULL, NULL);
}

static qsnn_status run_calib(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                             const qsnn_dataset *ds, uint64_t seed, calib_stats *cs, float *counts, const float *ref,
                             double *err) {
    const qsnn_encoder_ops *enc = qsnn_encoder_find(dcfg->encoding);
    if (!enc) return qsnn_fail(ctx, QSNN_ERR_CONFIG, "data.encoding = '%s': unknown", dcfg->encoding);
    if (enc->split_steps)
        return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED, "data.encoding = %s: %s reads whole samples per step only",
                         enc->name, "quantize");
    const int Bmax = tcfg->batch, T = dcfg->steps, F = net->cfg.n_inputs, L = net->n_layers;
    size_t nn = 0;
    for (int l = 0; l < L; l++) nn += (size_t)net->layer[l].out;
    qsnn_workspace *ws = NULL;
    qsnn_status st = qsnn_workspace_create(net, Bmax, T, 0, &ws);
    if (st) return st;
    float *x = qsnn_malloc(ctx, (size_t)Bmax * F * sizeof(float));
    float *xe = qsnn_malloc(ctx, (enc->is_static ? 1 : (size_t)T) * Bmax * F * sizeof(float));
    int64_t *ids = qsnn_malloc(ctx, (size_t)Bmax * sizeof(int64_t));
    float *row = qsnn_malloc(ctx, nn * sizeof(float));
    if (!x || !xe || !ids || !row) st = QSNN_ERR_NOMEM;
    /* every membrane value of every layer, at a stride that keeps at most PTQ_MAX_STATE_SAMPLES */
    size_t total_u = 0, stride = 1, seen = 0;
    if (cs && !st) {
        for (int l = 0; l < L; l++) total_u += (size_t)ds->n * T * net->layer[l].out;
        stride = total_u > PTQ_MAX_STATE_SAMPLES ? total_u / PTQ_MAX_STATE_SAMPLES + 1 : 1;
        if (!(cs->u = qsnn_malloc(ctx, (total_u / stride + 1) * sizeof(float)))) st = QSNN_ERR_NOMEM;
        for (int l = 0; l < L && !st; l++) {
            if (!(cs->mean_in[l] = qsnn_calloc(ctx, (size_t)net->layer[l].in, sizeof(double)))) st = QSNN_ERR_NOMEM;
            const size_t in = (size_t)net->layer[l].in;
            if (!st && cs->want_gram && !(cs->G[l] = qsnn_calloc(ctx, in * in, sizeof(float)))) st = QSNN_ERR_NOMEM;
        }
    }
    double sq = 0.0;
    for (int64_t start = 0; !st && start < ds->n; start += Bmax) {
        const int B = (int)(ds->n - start < Bmax ? ds->n - start : Bmax);
        for (int b = 0; b < B; b++) ids[b] = start + b;
        qsnn_batch_gather(ds, ids, B, x, NULL);
        enc->encode(x, B, F, T, seed, QSNN_EVAL_EPOCH, ids, xe);
        if ((st = qsnn_forward(net, ws, xe, enc->is_static, B))) break;
        for (int b = 0; b < B; b++) { /* spike counts of sample b, all layers */
            size_t k = 0;
            for (int l = 0; l < L; l++) {
                const int out = net->layer[l].out;
                const float *S = ws->buf[l].S;
                for (int o = 0; o < out; o++, k++) {
                    float c = 0.0f;
                    for (int t = 0; t < T; t++) c += S[((size_t)t * B + b) * out + o];
                    row[k] = c;
                }
            }
            const size_t at = (size_t)(start + b) * nn;
            if (counts) memcpy(counts + at, row, nn * sizeof(float));
            if (ref)
                for (size_t j = 0; j < nn; j++) sq += ((double)row[j] - ref[at + j]) * ((double)row[j] - ref[at + j]);
        }
        if (!cs) continue;
        for (int l = 0; l < L; l++) {
            const qsnn_layer *ly = &net->layer[l];
            const float *X = l ? ws->buf[l - 1].S : xe;
            const size_t rows = (l == 0 && enc->is_static) ? (size_t)B : (size_t)T * B;
            const double w = (l == 0 && enc->is_static) ? (double)T : 1.0; /* a static input counts T times */
            for (size_t r = 0; r < rows; r++)
                for (int i = 0; i < ly->in; i++) cs->mean_in[l][i] += w * X[r * ly->in + i];
            if (cs->want_gram) { /* Σ x xᵀ over the rows (a static input is the same at every step) */
                qsnn_sgemm(CblasTrans, CblasNoTrans, ly->in, ly->in, (int)rows, 1.0f, X, ly->in, X, ly->in, 1.0f,
                           cs->G[l], ly->in);
                cs->g_rows[l] += (double)rows;
            }
            const float *U = ws->buf[l].U;
            const size_t n = (size_t)T * B * ly->out;
            for (size_t j = 0; j < n; j++, seen++)
                if (seen % stride == 0) cs->u[cs->n_u++] = U[j] / ly->np.theta;
        }
    }
    if (!st && cs)
        for (int l = 0; l < L; l++) {
            for (int i = 0; i < net->layer[l].in; i++) cs->mean_in[l][i] /= (double)ds->n * T;
            const size_t in2 = (size_t)net->layer[l].in * net->layer[l].in;
            for (size_t i = 0; cs->want_gram && i < in2; i++) cs->G[l][i] = (float)(cs->G[l][i] / cs->g_rows[l]);
        }
    if (err) *err = sq / ((double)ds->n * (double)nn);
    qsnn_free(ctx, x);
    qsnn_free(ctx, xe);
    qsnn_free(ctx, ids);
    qsnn_free(ctx, row);
    qsnn_workspace_destroy(&ws);
    return st;
}

/* Rebuilds every layer's state grid for the limits in cfg. */
static qsnn_status set_state_limits(qsnn_net *net, double lower, double upper) {
    net->cfg.state_quant.lower_limit = lower, net->cfg.state_quant.upper_limit = upper;
    for (int l = 0; l < net->n_layers; l++) {
        qsnn_layer *L = &net->layer[l];
        L->sq_cfg.lower_limit = lower, L->sq_cfg.upper_limit = upper;
        if (!L->sq_cfg.bits) continue;
        qsnn_status st = qsnn_state_quant_build(net->ctx, &L->sq_cfg, L->theta, &L->sq);
        if (st) return st;
    }
    return qsnn_net_prepare(net);
}

/* The candidate limits whose quantized network reproduces the float spike counts best. */
static qsnn_status limits_by_rates(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg,
                                   const qsnn_data_cfg *dcfg, const qsnn_dataset *ds, uint64_t seed,
                                   const calib_stats *cs, qsnn_ptq_report *rep) {
    static const double lowers[] = {0.0, 0.25, 0.5, 1.0, 2.0, 4.0}, uppers[] = {0.05, 0.1, 0.2, 0.5, 1.0};
    double best = INFINITY, bl = 0, bu = 0;
    for (size_t a = 0; a < sizeof lowers / sizeof *lowers; a++)
        for (size_t b = 0; b < sizeof uppers / sizeof *uppers; b++) {
            qsnn_state_quant_cfg trial = net->cfg.state_quant;
            trial.lower_limit = lowers[a], trial.upper_limit = uppers[b];
            if (qsnn_state_quant_check(ctx, &trial)) continue; /* a centered grid that cannot place its levels */
            double e = INFINITY;
            qsnn_status st = set_state_limits(net, lowers[a], uppers[b]);
            if (!st) st = run_calib(ctx, net, tcfg, dcfg, ds, seed, NULL, NULL, cs->counts, &e);
            if (st) return st;
            if (e < best) best = e, bl = lowers[a], bu = uppers[b];
        }
    if (!(best < INFINITY))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quantize: no state-grid limits let the %s grid place its levels",
                         qsnn_grid_name(net->cfg.state_quant.grid));
    rep->count_error = best;
    return set_state_limits(net, bl, bu);
}

/* Copies the parameters the two networks share by name (weights, biases, β, θ). */
static void copy_params(qsnn_net *dst, qsnn_net *src) {
    qsnn_param a[QSNN_MAX_PARAMS], b[QSNN_MAX_PARAMS];
    const int na = qsnn_net_params(dst, a), nb = qsnn_net_params(src, b);
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (strcmp(a[i].name, b[j].name) == 0 && a[i].n == b[j].n) memcpy(a[i].data, b[j].data, a[i].n * sizeof(float));
}

void qsnn_ptq_fold_thresholds(qsnn_net *net, int l, qsnn_ptq_report *rep) {
    qsnn_layer *L = &net->layer[l];
    float big = 0.0f;
    for (size_t i = 0; i < L->nw; i++) big = fmaxf(big, fabsf(L->W[i]));
    rep->fold_max[l] = 1.0, rep->fold_frac[l] = 0.0;
    int scaled = 0;
    for (int o = 0; o < L->out; o++) {
        float m = 0.0f, *w = L->W + (size_t)o * L->in;
        for (int i = 0; i < L->in; i++) m = fmaxf(m, fabsf(w[i]));
        if (!(m > 0.0f)) continue;
        /* c = big/m: the row then has the layer's range, so a per-tensor step quantizes it as a per-row
         * step would (powers of two would keep the float spikes bit-exact but leave rows up to 2x short:
         * 3-bit per-tensor PTQ of the default network reached 69.8% that way, 82.7% with exact ratios) */
        const float c = big / m;
        if (!(c > 1.0f)) continue;
        for (int i = 0; i < L->in; i++) w[i] *= c;
        if (L->b) L->b[o] *= c;
        L->pn[QSNN_PN_THETA][o] *= c;
        scaled++;
        if (c > rep->fold_max[l]) rep->fold_max[l] = c;
    }
    rep->fold_frac[l] = (double)scaled / L->out;
}

qsnn_status qsnn_ptq(qsnn_ctx *ctx, qsnn_net *src, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                     const qsnn_dataset *calib, uint64_t seed, const qsnn_ptq_opts *o, qsnn_net_cfg *out_cfg,
                     qsnn_net **out, qsnn_ptq_report *rep) {
    *out = NULL;
    memset(rep, 0, sizeof *rep);
    if (calib->n < 1) return qsnn_fail(ctx, QSNN_ERR_ARG, "quantize: no calibration samples");
    const char *why = NULL;
    if (!qsnn_net_plain_lif(&src->cfg, &why)) return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED, "quantize: %s", why);
    const int ll = qsnn_net_learned_state_layer(&src->cfg);
    if (ll >= 0 || qsnn_grid_learned(o->grid))
        return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED,
                         "quantize: quant.state.grid = %s is a learned state grid (trained by qsnn train, not set by "
                         "post-training quantization); use uniform, centered, fixed_point or lsq",
                         qsnn_grid_name(ll >= 0 ? qsnn_net_cfg_state_grid(&src->cfg, ll) : o->grid));
    qsnn_net_cfg c = src->cfg;
    c.weight_layer_bits.n = c.state_layer_bits.n = 0;
    c.integer = 0;
    c.input_bits = 0;
    c.weight_quant.bits = o->weight_bits;
    c.weight_quant.granularity = o->granularity;
    c.weight_quant.pow2 = 0;
    snprintf(c.weight_quant.method, sizeof c.weight_quant.method, "%s", o->weight_bits >= 2 ? "lsq" : "uniform_symmetric");
    c.state_quant.bits = o->state_bits;
    c.state_quant.grid = o->grid;
    c.weight_layer_method.n = c.state_layer_grid.n = 0; /* PTQ picks every layer's quantizer itself */
    if (o->fold_thresholds) {
        for (int l = 1; l < src->n_layers; l++)
            if (src->layer[l].theta != src->layer[0].theta)
                return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED,
                                 "quantize --fold-thresholds: the layers learned different thresholds (%g, %g); "
                                 "folding needs one reference threshold",
                                 src->layer[0].theta, src->layer[l].theta);
        c.per_neuron = 1;
        c.neuron_params.theta = src->layer[0].theta; /* the reference of the per-neuron grids */
    }
    calib_stats cs;
    memset(&cs, 0, sizeof cs);
    cs.want_gram = o->adaround && o->weight_bits >= 2;
    qsnn_net *net = NULL;
    float *scratch = NULL;
    qsnn_status st = qsnn_net_prepare(src);
    if (!st) st = collect(ctx, src, tcfg, dcfg, calib, seed, &cs);
    if (!st && o->state_bits && o->state_range < QSNN_PTQ_STATE_RATES)
        st = qsnn_range_state_limits(ctx, cs.u, cs.n_u, 1.0, (qsnn_range_method)o->state_range, o->state_pct,
                                     &c.state_quant);
    if (!st) st = qsnn_net_create(ctx, &c, &net);
    if (st) goto done;
    copy_params(net, src);
    if (o->fold_thresholds) {
        const qsnn_loss_ops *loss = qsnn_loss_find(tcfg->loss);
        for (int l = 0; l < net->n_layers; l++) {
            qsnn_layer *L = &net->layer[l], *S = &src->layer[l];
            for (int o2 = 0; o2 < L->out; o2++) {
                L->pn[QSNN_PN_BETA][o2] = S->beta; /* the source's (maybe learned) per-layer values */
                L->pn[QSNN_PN_THETA][o2] = S->theta;
            }
            if (l < net->n_layers - 1 || (loss && !loss->uses_membrane)) qsnn_ptq_fold_thresholds(net, l, rep);
        }
        st = qsnn_net_prepare(net);
        if (st) goto done;
    }
    rep->calib_samples = (long)calib->n;
    rep->lower_limit = c.state_quant.lower_limit, rep->upper_limit = c.state_quant.upper_limit;
    for (int l = 0; l < net->n_layers && !st; l++) {
        qsnn_layer *L = &net->layer[l];
        if (!L->wq_learned) continue; /* float, or 1-bit (its scale is the mean magnitude) */
        const int pc = L->wq_cfg.granularity == QSNN_WQ_PER_CHANNEL, ns = pc ? L->out : 1;
        const size_t n = pc ? (size_t)L->in : (size_t)L->in * L->out;
        qsnn_free(ctx, scratch);
        if (!(scratch = qsnn_malloc(ctx, n * sizeof(float)))) st = QSNN_ERR_NOMEM;
        for (int g = 0; g < ns && !st; g++)
            L->wq_learned[g] = qsnn_range_symmetric_step(L->W + (size_t)g * n, n, L->wq_cfg.bits, o->weight_range,
                                                          o->weight_pct, scratch);
    }
    for (int l = 0; l < net->n_layers && !st && cs.want_gram; l++) {
        qsnn_layer *L = &net->layer[l];
        if (!L->wq_learned) continue;
        /* the rounding of each weight, learned; the master weights become step × code, which the LSQ
         * quantizer maps back to the same codes */
        const int pc = L->wq_cfg.granularity == QSNN_WQ_PER_CHANNEL, b = L->wq_cfg.bits;
        const size_t nw = (size_t)L->in * L->out;
        float *steps = qsnn_malloc(ctx, (size_t)L->out * sizeof *steps);
        int32_t *codes = qsnn_malloc(ctx, nw * sizeof *codes);
        if (!steps || !codes) st = QSNN_ERR_NOMEM;
        for (int oo = 0; !st && oo < L->out; oo++) {
            const float sl = L->wq_learned[pc ? oo : 0];
            steps[oo] = sl > 1e-8f ? sl : 1e-8f;
        }
        const qsnn_adaround_opts ao = {.iters = o->adaround_iters};
        qsnn_adaround_report ar;
        if (!st) st = qsnn_adaround(ctx, L->W, steps, L->out, L->in, -(1 << (b - 1)), (1 << (b - 1)) - 1, cs.G[l], &ao,
                                    codes, &ar);
        if (!st) {
            for (size_t j = 0; j < nw; j++) L->W[j] = steps[j / L->in] * (float)codes[j];
            rep->round_err_nearest[l] = ar.err_nearest;
            rep->round_err_adaround[l] = ar.err_adaround;
            rep->flipped[l] = ar.flipped;
        }
        qsnn_free(ctx, steps);
        qsnn_free(ctx, codes);
    }
    if (!st) st = qsnn_net_prepare(net);
    if (!st && o->bias_correction && o->weight_bits) {
        /* b -= (Ŵ - W)·E[x], E[x] the calibration mean of each input (pixels, or firing rates) */
        for (int l = 0; l < net->n_layers; l++) {
            qsnn_layer *L = &net->layer[l];
            if (!L->b || !L->wq) continue;
            double moved = 0.0;
            for (int oo = 0; oo < L->out; oo++) {
                double d = 0.0;
                for (int i = 0; i < L->in; i++)
                    d += ((double)L->Wq[(size_t)oo * L->in + i] - L->W[(size_t)oo * L->in + i]) * cs.mean_in[l][i];
                L->b[oo] -= (float)d;
                moved += fabs(d);
            }
            rep->bias_shift[l] = moved / L->out;
        }
        st = qsnn_net_prepare(net);
    }
    /* last: the limits are judged on the network with its final weights and biases */
    if (!st && o->state_bits && o->state_range == QSNN_PTQ_STATE_RATES)
        st = limits_by_rates(ctx, net, tcfg, dcfg, calib, seed, &cs, rep);
    if (!st) {
        c.state_quant = net->cfg.state_quant;
        rep->lower_limit = c.state_quant.lower_limit, rep->upper_limit = c.state_quant.upper_limit;
    }
done:
    for (int l = 0; l < QSNN_MAX_LAYERS; l++) qsnn_free(ctx, cs.mean_in[l]), qsnn_free(ctx, cs.G[l]);
    qsnn_free(ctx, cs.u);
    qsnn_free(ctx, cs.counts);
    qsnn_free(ctx, scratch);
    if (st) {
        qsnn_net_destroy(&net);
        return st;
    }
    *out_cfg = c;
    *out = net;
    return QSNN_OK;
}
