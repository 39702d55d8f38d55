#include "train/optim.h"

#include <math.h>
#include <string.h>

struct qsnn_optim {
    qsnn_ctx *ctx;
    const qsnn_optim_ops *ops;
    qsnn_train_cfg cfg;
    qsnn_param params[QSNN_MAX_PARAMS];
    int n_params;
    float *slots[QSNN_MAX_PARAMS][QSNN_OPTIM_MAX_SLOTS];
    long step;
};

static void adam_update(const qsnn_train_cfg *cfg, float *p, const float *g, float **s, size_t n, float lr, long step) {
    float *m = s[0], *v = s[1];
    const float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps, wd = cfg->weight_decay;
    /* Scalars in double, as PyTorch computes them in Python. */
    const double bc1 = 1.0 - pow(cfg->beta1, (double)step), bc2 = 1.0 - pow(cfg->beta2, (double)step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        m[i] = m[i] * b1 + gi * (1.0f - b1);
        v[i] = v[i] * b2 + (gi * gi) * (1.0f - b2);
        const float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = p[i] + (-step_size) * (m[i] / denom);
    }
}

static void sgd_update(const qsnn_train_cfg *cfg, float *p, const float *g, float **s, size_t n, float lr, long step) {
    float *buf = s[0];
    const float mu = cfg->momentum, wd = cfg->weight_decay;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        buf[i] = step == 1 ? gi : buf[i] * mu + gi;
        p[i] = p[i] - lr * buf[i];
    }
}

static const qsnn_optim_ops registry[] = {
    {"adam", 2, adam_update, {"m", "v"}},
    {"sgd", 1, sgd_update, {"momentum", NULL}},
};

const qsnn_optim_ops *qsnn_optim_find(const char *name) {
    for (size_t i = 0; i < sizeof registry / sizeof *registry; i++)
        if (strcmp(registry[i].name, name) == 0) return &registry[i];
    return NULL;
}

const char *qsnn_optim_names(void) { return "adam, sgd"; }

qsnn_status qsnn_optim_create(qsnn_ctx *ctx, const qsnn_train_cfg *cfg, qsnn_net *net, qsnn_optim **out) {
    *out = NULL;
    const qsnn_optim_ops *ops = qsnn_optim_find(cfg->optimizer);
    if (!ops)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "train.optimizer = '%s': unknown (known: %s)", cfg->optimizer,
                         qsnn_optim_names());
    qsnn_optim *o = qsnn_calloc(ctx, 1, sizeof *o);
    if (!o) return QSNN_ERR_NOMEM;
    o->ctx = ctx;
    o->ops = ops;
    o->cfg = *cfg;
    qsnn_param all[QSNN_MAX_PARAMS];
    int n = qsnn_net_params(net, all);
    for (int i = 0; i < n; i++) {
        if (!all[i].learnable) continue;
        o->params[o->n_params] = all[i];
        for (int s = 0; s < ops->n_slots; s++) {
            o->slots[o->n_params][s] = qsnn_calloc(ctx, all[i].n, sizeof(float));
            if (!o->slots[o->n_params][s]) {
                o->n_params++;
                qsnn_optim_destroy(&o);
                return QSNN_ERR_NOMEM;
            }
        }
        o->n_params++;
    }
    *out = o;
    return QSNN_OK;
}

void qsnn_optim_destroy(qsnn_optim **po) {
    if (!po || !*po) return;
    qsnn_optim *o = *po;
    for (int i = 0; i < o->n_params; i++)
        for (int s = 0; s < QSNN_OPTIM_MAX_SLOTS; s++) qsnn_free(o->ctx, o->slots[i][s]);
    qsnn_free(o->ctx, o);
    *po = NULL;
}

void qsnn_optim_step(qsnn_optim *o, float lr) {
    o->step++;
    for (int i = 0; i < o->n_params; i++)
        o->ops->update(&o->cfg, o->params[i].data, o->params[i].grad, o->slots[i], o->params[i].n, lr, o->step);
}

long qsnn_optim_steps(const qsnn_optim *o) { return o->step; }

const char *qsnn_optim_name(const qsnn_optim *o) { return o->ops->name; }

int qsnn_optim_state(qsnn_optim *o, qsnn_optim_slot *list, int cap) {
    int k = 0;
    for (int i = 0; i < o->n_params; i++)
        for (int s = 0; s < o->ops->n_slots; s++, k++)
            if (k < cap) {
                list[k].param = o->params[i].name;
                list[k].slot = o->ops->slot_names[s];
                list[k].data = o->slots[i][s];
                list[k].n = o->params[i].n;
            }
    return k;
}

void qsnn_optim_set_steps(qsnn_optim *o, long step) { o->step = step < 0 ? 0 : step; }

float qsnn_schedule_lr(const qsnn_train_cfg *cfg, long step, long total) {
    if (strcmp(cfg->schedule, "cosine") == 0 && total > 0) {
        const double frac = step >= total ? 1.0 : (double)step / (double)total;
        return (float)(cfg->lr_min + 0.5 * (cfg->lr - cfg->lr_min) * (1.0 + cos(3.14159265358979323846 * frac)));
    }
    return cfg->lr;
}

int qsnn_schedule_known(const char *name) { return strcmp(name, "constant") == 0 || strcmp(name, "cosine") == 0; }
