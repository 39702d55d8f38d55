#include "train/trainer.h"
#include "core/rng.h"
#include "core/timer.h"
#include "datasets/batch.h"

#include <math.h>
#include <string.h>

struct qsnn_trainer {
    qsnn_ctx *ctx;
    qsnn_net *net;
    qsnn_train_cfg tcfg;
    qsnn_data_cfg dcfg;
    const qsnn_dataset *train;
    uint64_t seed;
    const qsnn_encoder_ops *enc;
    const qsnn_loss_ops *loss;
    qsnn_workspace *ws;
    qsnn_optim *opt; /* NULL for evaluation only */
    int B, T, F, C;
    float *x;      /* [B][F] normalized batch */
    float *xenc;   /* encoded input: [B][F] (static) or [T][B][F] */
    float *grad;   /* loss gradient, [T][B][C] */
    int *y, *pred;
    int64_t *perm; /* training split permutation */
    int64_t *ids;  /* dataset indices of an evaluation batch */
    qsnn_state_stats stats[QSNN_MAX_LAYERS]; /* membranes of the last evaluation */
};

static qsnn_status trainer_alloc(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                                 const qsnn_dataset *train, uint64_t seed, int with_optim, qsnn_trainer **out) {
    *out = NULL;
    const qsnn_encoder_ops *enc = qsnn_encoder_find(dcfg->encoding);
    if (!enc)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "data.encoding = '%s': unknown (known: %s)", dcfg->encoding,
                         qsnn_encoder_names());
    const qsnn_loss_ops *loss = qsnn_loss_find(tcfg->loss);
    if (!loss)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "train.loss = '%s': unknown (known: %s)", tcfg->loss, qsnn_loss_names());
    if (!qsnn_schedule_known(tcfg->schedule))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "train.schedule = '%s': unknown (known: constant, cosine)",
                         tcfg->schedule);
    qsnn_trainer *tr = qsnn_calloc(ctx, 1, sizeof *tr);
    if (!tr) return QSNN_ERR_NOMEM;
    tr->ctx = ctx, tr->net = net, tr->tcfg = *tcfg, tr->dcfg = *dcfg, tr->train = train, tr->seed = seed;
    tr->enc = enc, tr->loss = loss;
    tr->B = tcfg->batch, tr->T = dcfg->steps, tr->F = qsnn_encoder_data_features(enc, net->cfg.n_inputs, dcfg->steps), tr->C = net->layer[net->n_layers - 1].out;
    qsnn_status st = qsnn_workspace_create(net, tr->B, tr->T, with_optim, &tr->ws);
    if (st) goto fail;
    if (with_optim && (st = qsnn_optim_create(ctx, tcfg, net, &tr->opt))) goto fail;
    const size_t B = (size_t)tr->B;
    tr->x = qsnn_malloc(ctx, B * tr->F * sizeof(float));
    tr->xenc = qsnn_malloc(ctx, (enc->is_static ? 1 : (size_t)tr->T) * B * tr->F * sizeof(float));
    tr->grad = qsnn_malloc(ctx, (size_t)tr->T * B * tr->C * sizeof(float));
    tr->y = qsnn_malloc(ctx, B * sizeof(int));
    tr->pred = qsnn_malloc(ctx, B * sizeof(int));
    tr->ids = qsnn_malloc(ctx, B * sizeof(int64_t));
    if (!tr->x || !tr->xenc || !tr->grad || !tr->y || !tr->pred || !tr->ids) {
        st = QSNN_ERR_NOMEM;
        goto fail;
    }
    if (train) {
        tr->perm = qsnn_malloc(ctx, (size_t)train->n * sizeof(int64_t));
        if (!tr->perm) {
            st = QSNN_ERR_NOMEM;
            goto fail;
        }
    }
    *out = tr;
    return QSNN_OK;
fail:
    qsnn_trainer_destroy(&tr);
    return st;
}

qsnn_status qsnn_trainer_create(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                                const qsnn_dataset *train, uint64_t seed, qsnn_trainer **out) {
    return trainer_alloc(ctx, net, tcfg, dcfg, train, seed, 1, out);
}

void qsnn_trainer_destroy(qsnn_trainer **ptr) {
    if (!ptr || !*ptr) return;
    qsnn_trainer *tr = *ptr;
    qsnn_ctx *ctx = tr->ctx;
    qsnn_workspace_destroy(&tr->ws);
    qsnn_optim_destroy(&tr->opt);
    qsnn_free(ctx, tr->x);
    qsnn_free(ctx, tr->xenc);
    qsnn_free(ctx, tr->grad);
    qsnn_free(ctx, tr->y);
    qsnn_free(ctx, tr->pred);
    qsnn_free(ctx, tr->perm);
    qsnn_free(ctx, tr->ids);
    qsnn_free(ctx, tr);
    *ptr = NULL;
}

qsnn_workspace *qsnn_trainer_workspace(qsnn_trainer *tr) { return tr->ws; }
qsnn_optim *qsnn_trainer_optim(qsnn_trainer *tr) { return tr->opt; }

static const float *output_S(qsnn_trainer *tr) { return tr->ws->buf[tr->net->n_layers - 1].S; }
static const float *output_U(qsnn_trainer *tr) { return tr->ws->buf[tr->net->n_layers - 1].U; }

qsnn_status qsnn_trainer_step(qsnn_trainer *tr, const float *x, int x_static, const int *y, int B, float lr,
                              double *loss, int *pred) {
    /* learned quantizers' training form (QN soft, CPQ DropBits) with a seed per optimizer step */
    uint32_t qw[4];
    qsnn_philox(tr->seed, QSNN_STREAM_QUANT, (uint64_t)qsnn_optim_steps(tr->opt), qw);
    tr->net->training = 1;
    tr->net->quant_seed = ((uint64_t)qw[0] << 32 | qw[1]) | 1u;
    qsnn_status st = qsnn_net_prepare(tr->net);
    tr->net->training = 0;
    tr->net->quant_seed = 0;
    if (st) return st;
    /* dropout masks keyed by (seed, optimizer step): the same run whatever the thread count, and a
     * resumed run continues the sequence; evaluation (seed 0) runs without dropout */
    uint32_t w[4];
    qsnn_philox(tr->seed, QSNN_STREAM_DROPOUT, (uint64_t)qsnn_optim_steps(tr->opt), w);
    tr->ws->dropout_seed = ((uint64_t)w[0] << 32 | w[1]) | 1u;
    double l = 0.0;
    if (!(st = qsnn_forward(tr->net, tr->ws, x, x_static, B))) {
        l = tr->loss->eval(&tr->tcfg, output_S(tr), output_U(tr), tr->T, B, tr->C, y, tr->grad, pred);
        if (!isfinite(l)) st = qsnn_fail(tr->ctx, QSNN_ERR_NUMERIC, "training diverged: the loss is %g", l);
    }
    if (!st)
        st = qsnn_backward(tr->net, tr->ws, tr->loss->uses_membrane ? NULL : tr->grad,
                           tr->loss->uses_membrane ? tr->grad : NULL);
    tr->ws->dropout_seed = 0;
    if (st) return st;
    qsnn_optim_step(tr->opt, lr);
    *loss = l;
    return QSNN_OK;
}

static void add_batch(qsnn_metrics *m, qsnn_trainer *tr, int B, double loss) {
    long correct = 0;
    for (int b = 0; b < B; b++) correct += tr->pred[b] == tr->y[b];
    const double w = (double)B;
    m->loss += loss * w;
    m->accuracy += (double)correct;
    for (int l = 0; l < tr->net->n_layers; l++) m->rates[l] += qsnn_layer_rate(tr->ws, tr->net, l) * w;
    m->samples += B;
}

/* Running sums -> means, for reporting. */
static qsnn_metrics finish(const qsnn_metrics *sum, int n_layers, double t0) {
    qsnn_metrics m = *sum;
    const double n = sum->samples ? (double)sum->samples : 1.0;
    m.loss /= n;
    m.accuracy /= n;
    for (int l = 0; l < n_layers; l++) m.rates[l] /= n;
    m.seconds = qsnn_now() - t0;
    m.samples_per_s = m.seconds > 0 ? (double)sum->samples / m.seconds : 0.0;
    return m;
}

qsnn_status qsnn_train_epoch(qsnn_trainer *tr, int epoch, qsnn_progress_fn progress, void *user, qsnn_metrics *out) {
    const qsnn_dataset *ds = tr->train;
    const int B = tr->B;
    const long nb = (long)(ds->n / B);
    if (nb < 1)
        return qsnn_fail(tr->ctx, QSNN_ERR_CONFIG, "train.batch = %d is larger than the training set (%lld samples)",
                         B, (long long)ds->n);
    const long total_steps = nb * tr->tcfg.epochs;
    qsnn_shuffle(tr->seed, (uint64_t)epoch, ds->n, tr->perm);
    tr->net->epoch = epoch; /* annealing schedules (QN's temperature) */
    qsnn_metrics sum;
    memset(&sum, 0, sizeof sum);
    const double t0 = qsnn_now();
    for (long i = 0; i < nb; i++) {
        const int64_t *idx = tr->perm + i * B;
        qsnn_batch_gather(ds, idx, B, tr->x, tr->y);
        tr->enc->encode(tr->x, B, tr->F, tr->T, tr->seed, (uint64_t)epoch, idx, tr->xenc);
        const float lr = qsnn_schedule_lr(&tr->tcfg, qsnn_optim_steps(tr->opt), total_steps);
        double loss;
        qsnn_status st = qsnn_trainer_step(tr, tr->xenc, tr->enc->is_static, tr->y, B, lr, &loss, tr->pred);
        if (st) return st;
        add_batch(&sum, tr, B, loss);
        if (progress) {
            qsnn_metrics run = finish(&sum, tr->net->n_layers, t0);
            progress(user, i + 1, nb, &run);
        }
    }
    *out = finish(&sum, tr->net->n_layers, t0);
    return QSNN_OK;
}

qsnn_status qsnn_trainer_evaluate(qsnn_trainer *tr, const qsnn_dataset *ds, qsnn_progress_fn progress, void *user,
                                  qsnn_metrics *out) {
    qsnn_status st = qsnn_net_prepare(tr->net);
    if (st) return st;
    qsnn_metrics sum;
    memset(&sum, 0, sizeof sum);
    for (int l = 0; l < tr->net->n_layers; l++) qsnn_state_stats_init(&tr->stats[l], &tr->net->layer[l]);
    const double t0 = qsnn_now();
    const long nb = (long)((ds->n + tr->B - 1) / tr->B);
    for (long i = 0; i < nb; i++) {
        const int64_t start = i * tr->B;
        const int B = (int)(ds->n - start < tr->B ? ds->n - start : tr->B);
        for (int b = 0; b < B; b++) tr->ids[b] = start + b;
        qsnn_batch_gather(ds, tr->ids, B, tr->x, tr->y);
        tr->enc->encode(tr->x, B, tr->F, tr->T, tr->seed, QSNN_EVAL_EPOCH, tr->ids, tr->xenc);
        /* every membrane kept (the buffers hold all steps anyway) for the statistics */
        if ((st = qsnn_forward(tr->net, tr->ws, tr->xenc, tr->enc->is_static, B))) return st;
        for (int l = 0; l < tr->net->n_layers; l++)
            qsnn_state_stats_add(&tr->stats[l], &tr->net->layer[l], tr->ws->buf[l].U,
                                 (size_t)tr->T * B * tr->net->layer[l].out);
        const double loss = tr->loss->eval(&tr->tcfg, output_S(tr), output_U(tr), tr->T, B, tr->C, tr->y, NULL,
                                           tr->pred);
        add_batch(&sum, tr, B, loss);
        if (progress) {
            qsnn_metrics run = finish(&sum, tr->net->n_layers, t0);
            progress(user, i + 1, nb, &run);
        }
    }
    *out = finish(&sum, tr->net->n_layers, t0);
    for (int l = 0; l < tr->net->n_layers; l++) out->saturated[l] = qsnn_state_stats_saturation(&tr->stats[l]);
    return QSNN_OK;
}

const qsnn_state_stats *qsnn_trainer_state_stats(const qsnn_trainer *tr, int l) { return &tr->stats[l]; }

qsnn_status qsnn_evaluate(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                          const qsnn_dataset *ds, uint64_t seed, qsnn_progress_fn progress, void *user,
                          qsnn_metrics *m) {
    return qsnn_evaluate_stats(ctx, net, tcfg, dcfg, ds, seed, progress, user, m, NULL);
}

qsnn_status qsnn_evaluate_stats(qsnn_ctx *ctx, qsnn_net *net, const qsnn_train_cfg *tcfg, const qsnn_data_cfg *dcfg,
                                const qsnn_dataset *ds, uint64_t seed, qsnn_progress_fn progress, void *user,
                                qsnn_metrics *m, qsnn_state_stats *stats) {
    qsnn_trainer *tr;
    qsnn_status st = trainer_alloc(ctx, net, tcfg, dcfg, NULL, seed, 0, &tr);
    if (st) return st;
    st = qsnn_trainer_evaluate(tr, ds, progress, user, m);
    if (!st && stats) memcpy(stats, tr->stats, (size_t)net->n_layers * sizeof *stats);
    qsnn_trainer_destroy(&tr);
    return st;
}
