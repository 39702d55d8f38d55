#include "train/int_eval.h"
#include "core/timer.h"
#include "datasets/batch.h"
#include "sim/int_engine.h"

#include <math.h>
#include <string.h>

static int argmax_f(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

qsnn_status qsnn_evaluate_integer(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg,
                                  const qsnn_data_cfg *dcfg, const qsnn_dataset *ds, uint64_t seed,
                                  qsnn_progress_fn progress, void *user, qsnn_int_metrics *m) {
    memset(m, 0, sizeof *m);
    const qsnn_encoder_ops *enc = qsnn_encoder_find(dcfg->encoding);
    if (!enc)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "data.encoding = '%s': unknown (known: %s)", dcfg->encoding,
                         qsnn_encoder_names());
    if (enc->split_steps)
        return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED, "data.encoding = %s: %s reads whole samples per step only",
                         enc->name, "the integer engine");
    qsnn_status st = qsnn_net_prepare(net);
    if (st) return st;
    qsnn_int_net *inet = NULL;
    if ((st = qsnn_int_net_create(ctx, net, &inet))) return st;
    inet->max_membrane = strcmp(tcfg->loss, "ce_max_membrane") == 0;
    const int Bmax = tcfg->batch, T = dcfg->steps, F = net->cfg.n_inputs, L = net->n_layers;
    const int C = net->layer[L - 1].out;
    qsnn_workspace *ws = NULL;
    float *x = NULL, *xenc = NULL;
    int *y = NULL, *pred = NULL;
    int64_t *ids = NULL;
    uint8_t *spk[QSNN_MAX_LAYERS] = {0};
    if ((st = qsnn_workspace_create(net, Bmax, T, 0, &ws))) goto done;
    x = qsnn_malloc(ctx, (size_t)Bmax * F * sizeof(float));
    xenc = qsnn_malloc(ctx, (enc->is_static ? 1 : (size_t)T) * Bmax * F * sizeof(float));
    y = qsnn_malloc(ctx, (size_t)Bmax * sizeof(int));
    pred = qsnn_malloc(ctx, (size_t)Bmax * sizeof(int));
    ids = qsnn_malloc(ctx, (size_t)Bmax * sizeof(int64_t));
    st = (x && xenc && y && pred && ids) ? QSNN_OK : QSNN_ERR_NOMEM;
    for (int l = 0; l < L && !st; l++)
        if (!(spk[l] = qsnn_malloc(ctx, (size_t)T * Bmax * net->layer[l].out))) st = QSNN_ERR_NOMEM;
    if (st) goto done;
    m->exact = inet->exact;
    const double t0 = qsnn_now();
    long correct = 0, fcorrect = 0;
    const long nb = (long)((ds->n + Bmax - 1) / Bmax);
    for (long i = 0; i < nb; i++) {
        const int64_t start = i * Bmax;
        const int B = (int)(ds->n - start < Bmax ? ds->n - start : Bmax);
        for (int b = 0; b < B; b++) ids[b] = start + b;
        qsnn_batch_gather(ds, ids, B, x, y);
        enc->encode(x, B, F, T, seed, QSNN_EVAL_EPOCH, ids, xenc);
        const double ti = qsnn_now();
        if ((st = qsnn_int_forward(inet, xenc, enc->is_static, B, T, spk, NULL, pred))) goto done;
        m->int_seconds += qsnn_now() - ti;
        if ((st = qsnn_forward_infer(net, ws, xenc, enc->is_static, B))) goto done;
        for (int l = 0; l < L; l++) {
            const float *S = ws->buf[l].S;
            const size_t n = (size_t)T * B * net->layer[l].out;
            long long diff = 0, sp = 0;
            for (size_t j = 0; j < n; j++) {
                diff += (S[j] != 0.0f) != (spk[l][j] != 0);
                sp += spk[l][j];
            }
            m->slots[l] += (long long)n;
            m->mismatches[l] += diff;
            m->spikes[l] += sp;
        }
        /* The float engine's prediction, as its loss computes it (first maximum). */
        const float *So = ws->buf[L - 1].S, *Uo = ws->buf[L - 1].U;
        for (int b = 0; b < B; b++) {
            float v[4096];
            const int nc = C < 4096 ? C : 4096;
            for (int o = 0; o < nc; o++) v[o] = inet->max_membrane ? -INFINITY : 0.0f;
            for (int t = 0; t < T; t++)
                for (int o = 0; o < nc; o++) {
                    const size_t j = ((size_t)t * B + b) * C + o;
                    if (inet->max_membrane) v[o] = Uo[j] > v[o] ? Uo[j] : v[o];
                    else v[o] += So[j];
                }
            const int fp = argmax_f(v, nc);
            fcorrect += fp == y[b];
            correct += pred[b] == y[b];
            m->pred_agree += fp == pred[b];
        }
        m->samples += B;
        if (progress) {
            qsnn_metrics run = {0};
            run.samples = m->samples;
            run.accuracy = (double)correct / (double)m->samples;
            progress(user, i + 1, nb, &run);
        }
    }
    m->accuracy = m->samples ? (double)correct / (double)m->samples : 0.0;
    m->float_accuracy = m->samples ? (double)fcorrect / (double)m->samples : 0.0;
    m->seconds = qsnn_now() - t0;
done:
    for (int l = 0; l < L; l++) qsnn_free(ctx, spk[l]);
    qsnn_free(ctx, x);
    qsnn_free(ctx, xenc);
    qsnn_free(ctx, y);
    qsnn_free(ctx, pred);
    qsnn_free(ctx, ids);
    qsnn_workspace_destroy(&ws);
    qsnn_int_net_destroy(&inet);
    return st;
}
