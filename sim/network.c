#include "sim/network.h"
#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void qsnn_net_cfg_default(qsnn_net_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->n_inputs = 784;
    cfg->n_layers = 2;
    cfg->sizes[0] = 1000;
    cfg->sizes[1] = 10;
    snprintf(cfg->neuron, sizeof cfg->neuron, "lif");
    cfg->neuron_params.beta = 0.95f;
    cfg->neuron_params.theta = 1.0f;
    cfg->neuron_params.reset = QSNN_RESET_SUBTRACT;
    cfg->neuron_params.reset_grad = 0;
    cfg->neuron_params.surrogate = QSNN_SURR_ARCTAN;
    cfg->neuron_params.slope = 2.0f;
    cfg->neuron_params.alpha = 0.9f;
    cfg->neuron_params.in_scale = 1.0f;
    cfg->neuron_params.adapt_decay = 0.95f;
    cfg->neuron_params.adapt_strength = 0.2f;
    cfg->neuron_params.izh_a = 0.02f, cfg->neuron_params.izh_b = 0.2f;
    cfg->neuron_params.izh_c = -65.0f, cfg->neuron_params.izh_d = 8.0f;
    cfg->output_neuron[0] = '\0';
    cfg->recurrent = QSNN_REC_NONE;
    cfg->bias = 1;
    cfg->state_quant.bits = 0;
    cfg->state_quant.grid = QSNN_GRID_UNIFORM;
    cfg->state_quant.lower_limit = 0.0;
    cfg->state_quant.upper_limit = 0.2;
    cfg->weight_quant.bits = 0;
    cfg->weight_quant.granularity = QSNN_WQ_PER_CHANNEL; /* per output neuron: 4-bit QAT keeps ~0.5 point more than per tensor */
    snprintf(cfg->weight_quant.method, sizeof cfg->weight_quant.method, "uniform_symmetric");
    cfg->weight_quant.pow2 = 0;
    cfg->lq = qsnn_lq_opts_default();
    cfg->weight_layer_bits.n = cfg->state_layer_bits.n = 0;
    cfg->input_bits = 0;
    cfg->current_bits = 0;
    cfg->current_range = 2.0;
    cfg->integer = 0;
}

/* The input's [channels, height, width]: model.input_shape, or one square channel. */
static void input_shape(const qsnn_net_cfg *cfg, int *c, int *h, int *w) {
    if (cfg->in_shape.n == 3) {
        *c = cfg->in_shape.v[0], *h = cfg->in_shape.v[1], *w = cfg->in_shape.v[2];
        return;
    }
    int side = (int)lround(sqrt((double)cfg->n_inputs));
    if (side * side == cfg->n_inputs) *c = 1, *h = *w = side;
    else *c = cfg->n_inputs, *h = *w = 1;
}

/* Walks model.layers: each conv layer's shape (filled and checked when ctx is given; with ctx NULL
 * only the sizes, 0 where invalid) and every hidden layer's size. */
static qsnn_status layer_shapes(qsnn_ctx *ctx, const qsnn_net_cfg *cfg, qsnn_conv_shape *shp, int *sizes) {
    int c, h, w, spatial = 1;
    input_shape(cfg, &c, &h, &w);
    if (ctx && cfg->in_shape.n && cfg->in_shape.n != 3)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.input_shape has %d entries: give [channels, height, width]",
                         cfg->in_shape.n);
    if (ctx && cfg->n_specs && (long)c * h * w != cfg->n_inputs)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.input_shape [%d, %d, %d] has %ld values, model.inputs is %d", c,
                         h, w, (long)c * h * w, cfg->n_inputs);
    for (int l = 0; l < cfg->n_specs; l++) {
        const qsnn_layer_spec *sp = &cfg->spec[l];
        if (sp->kind == QSNN_LAYER_DENSE) {
            spatial = 0;
            sizes[l] = sp->size;
            continue;
        }
        if (!spatial) {
            sizes[l] = 0;
            if (ctx)
                return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                                 "model.layers[%d] (conv) follows a dense layer: convolutions come first", l);
            continue;
        }
        qsnn_conv_shape s = {.in_c = c, .in_h = h, .in_w = w, .out_c = sp->size, .kh = sp->kernel, .kw = sp->kernel,
                             .stride = sp->stride, .pad = sp->padding, .groups = sp->groups,
                             .pool = (qsnn_pool_kind)sp->pool, .pool_size = sp->pool_size};
        if (ctx) {
            if (qsnn_conv_shape_check(ctx, &s)) {
                char msg[400];
                snprintf(msg, sizeof msg, "%s", qsnn_last_error(ctx));
                return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.layers[%d] (input %dx%dx%d): %s", l, c, h, w, msg);
            }
        } else { /* sizes only, PyTorch's floor arithmetic */
            const int oh = (h + 2 * s.pad - s.kh) / s.stride + 1, ow = (w + 2 * s.pad - s.kw) / s.stride + 1;
            s.pool_h = s.pool ? oh / s.pool_size : oh;
            s.pool_w = s.pool ? ow / s.pool_size : ow;
            if (oh < 1 || ow < 1 || s.pool_h < 1 || s.pool_w < 1 || c % s.groups || s.out_c % s.groups)
                s.pool_h = s.pool_w = 0;
        }
        if (shp) shp[l] = s;
        c = s.out_c, h = s.pool_h, w = s.pool_w;
        sizes[l] = c * h * w;
    }
    return QSNN_OK;
}

void qsnn_net_cfg_resolve_sizes(qsnn_net_cfg *cfg) {
    if (cfg->n_specs < 1 || cfg->n_specs >= QSNN_MAX_LAYERS) return;
    const int outputs = cfg->sizes[cfg->n_layers - 1 >= 0 ? cfg->n_layers - 1 : 0];
    layer_shapes(NULL, cfg, NULL, cfg->sizes);
    for (int l = 0; l < cfg->n_specs; l++) /* an invalid shape keeps a placeholder: the model check explains */
        if (cfg->sizes[l] < 1) cfg->sizes[l] = 1;
    cfg->n_layers = cfg->n_specs + 1;
    cfg->sizes[cfg->n_specs] = outputs;
}

static const qsnn_neuron_ops *layer_ops(const qsnn_net_cfg *cfg, int l);

qsnn_status qsnn_net_cfg_check(qsnn_ctx *ctx, const qsnn_net_cfg *cfg) {
    if (cfg->n_inputs < 1) return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.inputs = %d: must be >= 1", cfg->n_inputs);
    if (cfg->n_layers < 1 || cfg->n_layers > QSNN_MAX_LAYERS)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model: %d layers (1..%d allowed)", cfg->n_layers, QSNN_MAX_LAYERS);
    if (cfg->n_specs && cfg->n_specs != cfg->n_layers - 1)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.layers has %d entries but the model has %d hidden layers",
                         cfg->n_specs, cfg->n_layers - 1);
    {
        int sizes[QSNN_MAX_LAYERS];
        qsnn_status st = layer_shapes(ctx, cfg, NULL, sizes);
        if (st) return st;
        for (int l = 0; l < cfg->n_specs; l++)
            if (sizes[l] != cfg->sizes[l])
                return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.layers[%d] has %d neurons, model.sizes says %d", l,
                                 sizes[l], cfg->sizes[l]);
        for (int l = 0; l < cfg->n_specs; l++)
            if (cfg->spec[l].neuron[0] && !qsnn_neuron_find(cfg->spec[l].neuron)->spiking)
                return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.layers[%d]: neuron=%s does not spike (output only)", l,
                                 cfg->spec[l].neuron);
        if (cfg->recurrent)
            for (int l = 0; l < cfg->n_specs; l++)
                if (cfg->spec[l].dropout > 0.0f)
                    return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                                     "model.layers[%d]: dropout on a recurrent layer (model.recurrent) is not supported",
                                     l);
        if (cfg->recurrent)
            for (int l = 0; l < cfg->n_specs; l++)
                if (cfg->spec[l].kind == QSNN_LAYER_CONV)
                    return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                                     "model.recurrent: layer %d is a convolution; recurrence is for dense layers", l);
    }
    for (int l = 0; l < cfg->n_layers; l++)
        if (cfg->sizes[l] < 1 || cfg->sizes[l] > 1000000)
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model: layer %d has %d neurons (1..1000000 allowed)", l,
                             cfg->sizes[l]);
    if (!qsnn_neuron_find(cfg->neuron))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.neuron = '%s': unknown (known: %s)", cfg->neuron,
                         qsnn_neuron_names());
    if (cfg->output_neuron[0] && !qsnn_neuron_find(cfg->output_neuron))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.output_neuron = '%s': unknown (known: %s)", cfg->output_neuron,
                         qsnn_neuron_names());
    if (cfg->recurrent < QSNN_REC_NONE || cfg->recurrent > QSNN_REC_ONE_TO_ONE)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.recurrent: unknown kind %d", cfg->recurrent);
    if (cfg->recurrent && cfg->n_layers < 2)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.recurrent applies to hidden layers; the model has none");
    if (!qsnn_neuron_find(cfg->neuron)->spiking && cfg->n_layers > 1)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                         "model.neuron = '%s' does not spike: it can only be the output layer (model.output_neuron)",
                         cfg->neuron);
    const qsnn_neuron_params *p = &cfg->neuron_params;
    if (!(p->alpha >= 0.0f && p->alpha <= 1.0f))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.alpha = %g: must be in [0, 1]", p->alpha);
    for (int l = 0; l < cfg->n_layers; l++)
        if (layer_ops(cfg, l) == qsnn_neuron_find("alpha") && !(p->alpha > p->beta))
            return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                             "layer %d uses the alpha neuron: it needs model.alpha > model.beta for an alpha-shaped "
                             "kernel (got alpha %g, beta %g)",
                             l, p->alpha, p->beta);
    if (!(p->in_scale > 0.0f) || !isfinite(p->in_scale))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.input_scale = %g: must be finite and > 0", p->in_scale);
    if (!(p->adapt_decay >= 0.0f && p->adapt_decay <= 1.0f))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.adapt_decay = %g: must be in [0, 1]", p->adapt_decay);
    if (!isfinite(p->adapt_strength) || !isfinite(p->izh_a) || !isfinite(p->izh_b) || !isfinite(p->izh_c) ||
        !isfinite(p->izh_d))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model: adapt_strength and izh_a..izh_d must be finite");
    if (!(p->beta >= 0.0f && p->beta <= 1.0f))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.beta = %g: must be in [0, 1]", p->beta);
    if (!(p->theta > 0.0f) || !isfinite(p->theta))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.threshold = %g: must be finite and > 0", p->theta);
    if (p->reset < QSNN_RESET_SUBTRACT || p->reset > QSNN_RESET_NONE)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.reset: unknown reset rule %d", (int)p->reset);
    if (!qsnn_surrogate_get(p->surrogate))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.surrogate: unknown surrogate %d", (int)p->surrogate);
    if (!(p->slope > 0.0f) || !isfinite(p->slope))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "model.surrogate_slope = %g: must be finite and > 0", p->slope);
    const qsnn_layer_ints *lists[2] = {&cfg->weight_layer_bits, &cfg->state_layer_bits};
    const char *list_keys[2] = {"quant.weight.layer_bits", "quant.state.layer_bits"};
    for (int k = 0; k < 2; k++)
        if (lists[k]->n && lists[k]->n != cfg->n_layers)
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s has %d entries, the model has %d layers", list_keys[k],
                             lists[k]->n, cfg->n_layers);
    {
        const qsnn_layer_names *names[2] = {&cfg->weight_layer_method, &cfg->state_layer_grid};
        const char *name_keys[2] = {"quant.weight.layer_method", "quant.state.layer_grid"};
        for (int k = 0; k < 2; k++) {
            if (names[k]->n && names[k]->n != cfg->n_layers)
                return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s has %d entries, the model has %d layers", name_keys[k],
                                 names[k]->n, cfg->n_layers);
            for (int l = 0; l < names[k]->n; l++) {
                const char *v = names[k]->v[l];
                if (!memchr(v, 0, sizeof names[k]->v[l]))
                    return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s[%d]: not NUL-terminated", name_keys[k], l);
                if (k ? qsnn_grid_find(v) >= 0 : qsnn_weight_quant_find(v) != NULL) continue;
                char known[512] = "";
                if (k) /* by name, so grids added to the registry are known here too */
                    for (int g = 0, len = 0; g < QSNN_GRID_COUNT && len < (int)sizeof known; g++)
                        len += snprintf(known + len, sizeof known - (size_t)len, "%s%s", g ? ", " : "",
                                        qsnn_grid_name((qsnn_grid)g));
                return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s[%d] = '%s': unknown (known: %s)", name_keys[k], l, v,
                                 k ? known : qsnn_weight_quant_names());
            }
        }
    }
    if (cfg->current_bits && (cfg->current_bits < 2 || cfg->current_bits > 16))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.current.bits = %d: must be 0 (off) or 2..16", cfg->current_bits);
    if (!(cfg->current_range > 0) || !isfinite(cfg->current_range))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.current.range = %g: must be finite and > 0", cfg->current_range);
    if (cfg->input_bits < 0 || cfg->input_bits > 16)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.input.bits = %d: must be 0 (off) or 1..16", cfg->input_bits);
    for (int l = 0; l < cfg->n_layers; l++) {
        qsnn_state_quant_cfg sc = cfg->state_quant;
        qsnn_weight_quant_cfg wc = cfg->weight_quant;
        sc.bits = qsnn_net_cfg_state_bits(cfg, l);
        wc.bits = qsnn_net_cfg_weight_bits(cfg, l);
        sc.grid = qsnn_net_cfg_state_grid(cfg, l);
        snprintf(wc.method, sizeof wc.method, "%s", qsnn_net_cfg_weight_method(cfg, l));
        qsnn_status st = qsnn_state_quant_check(ctx, &sc);
        if (!st) st = qsnn_weight_quant_check(ctx, &wc);
        if (st) {
            if (!cfg->weight_layer_bits.n && !cfg->state_layer_bits.n && !cfg->n_specs && !cfg->weight_layer_method.n &&
                !cfg->state_layer_grid.n)
                return st;
            char msg[512];
            snprintf(msg, sizeof msg, "%s", qsnn_last_error(ctx));
            return qsnn_fail(ctx, st, "layer %d: %s", l, msg);
        }
        if (cfg->integer) {
            const char *why = NULL;
            if (!qsnn_net_plain_lif(cfg, &why)) return qsnn_fail(ctx, QSNN_ERR_CONFIG, "quant.integer: %s", why);
            if (!wc.bits || !sc.bits)
                return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                                 "quant.integer: layer %d has float %s; integer-exact models quantize every layer's "
                                 "weights and states",
                                 l, !wc.bits && !sc.bits ? "weights and states" : (!wc.bits ? "weights" : "states"));
            if (sc.grid != QSNN_GRID_FIXED_POINT && cfg->state_layer_grid.n)
                return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                                 "quant.integer needs the fixed_point grid (quant.state.layer_grid[%d] = %s): only "
                                 "that grid's levels are integers",
                                 l, qsnn_grid_name(sc.grid));
            if (sc.grid != QSNN_GRID_FIXED_POINT)
                return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                                 "quant.integer needs quant.state.grid = fixed_point (got %s): only that grid's "
                                 "levels are integers",
                                 qsnn_grid_name(sc.grid));
        }
    }
    return QSNN_OK;
}

/* The initial learned values of a qil, qn or cpq state grid (qsnn_state_lq_init). */
static void lq_state_init(qsnn_layer *L) {
    if (!qsnn_layer_lq_state(L)) return;
    double p[2];
    qsnn_state_lq_init(&L->sq_cfg, p);
    L->state_p[0] = (float)p[0], L->state_p[1] = (float)p[1];
}

static const qsnn_neuron_ops *layer_ops(const qsnn_net_cfg *cfg, int l) {
    const char *name = l == cfg->n_layers - 1 && cfg->output_neuron[0] ? cfg->output_neuron : cfg->neuron;
    if (l < cfg->n_specs && cfg->spec[l].neuron[0]) name = cfg->spec[l].neuron;
    return qsnn_neuron_find(name);
}

int qsnn_net_learned_state_layer(const qsnn_net_cfg *cfg) {
    for (int l = 0; l < cfg->n_layers; l++) /* per-layer grids (quant.state.layer_grid) included */
        if (qsnn_net_cfg_state_bits(cfg, l) && qsnn_grid_learned(qsnn_net_cfg_state_grid(cfg, l))) return l;
    return -1;
}

int qsnn_net_plain_lif(const qsnn_net_cfg *cfg, const char **why) {
    static char msg[160];
    for (int l = 0; l < cfg->n_layers; l++) {
        const qsnn_neuron_ops *ops = layer_ops(cfg, l);
        if (ops != &qsnn_neuron_lif) {
            snprintf(msg, sizeof msg, "layer %d uses the '%s' neuron model (only lif is supported here)", l,
                     ops ? ops->name : "?");
            if (why) *why = msg;
            return 0;
        }
    }
    if (cfg->recurrent) {
        if (why) *why = "the hidden layers are recurrent (only feed-forward layers are supported here)";
        return 0;
    }
    if (cfg->per_neuron) {
        if (why) *why = "model.per_neuron: per-neuron beta and threshold are not supported here";
        return 0;
    }
    for (int l = 0; l < cfg->n_specs; l++)
        if (cfg->spec[l].kind != QSNN_LAYER_DENSE || cfg->spec[l].dropout > 0.0f) {
            snprintf(msg, sizeof msg, "layer %d is %s (only dense layers are supported here)", l,
                     cfg->spec[l].kind != QSNN_LAYER_DENSE ? "a convolution" : "a dropout layer");
            if (why) *why = msg;
            return 0;
        }
    return 1;
}

int qsnn_net_input_bits(const qsnn_net_cfg *cfg) {
    return cfg->input_bits ? cfg->input_bits : (cfg->integer ? 8 : 0);
}

/* A layer line's own width wins, then the per-layer list, then the network-wide value. */
int qsnn_net_cfg_weight_bits(const qsnn_net_cfg *cfg, int l) {
    if (l < cfg->n_specs && cfg->spec[l].weight_bits) return cfg->spec[l].weight_bits - 1;
    return cfg->weight_layer_bits.n ? cfg->weight_layer_bits.v[l] : cfg->weight_quant.bits;
}

int qsnn_net_cfg_state_bits(const qsnn_net_cfg *cfg, int l) {
    if (l < cfg->n_specs && cfg->spec[l].state_bits) return cfg->spec[l].state_bits - 1;
    return cfg->state_layer_bits.n ? cfg->state_layer_bits.v[l] : cfg->state_quant.bits;
}

const char *qsnn_net_cfg_weight_method(const qsnn_net_cfg *cfg, int l) {
    const qsnn_layer_names *m = &cfg->weight_layer_method;
    return l >= 0 && l < m->n && l < QSNN_MAX_LAYERS ? m->v[l] : cfg->weight_quant.method;
}

qsnn_grid qsnn_net_cfg_state_grid(const qsnn_net_cfg *cfg, int l) {
    const qsnn_layer_names *g = &cfg->state_layer_grid;
    return l >= 0 && l < g->n && l < QSNN_MAX_LAYERS ? (qsnn_grid)qsnn_grid_find(g->v[l]) : cfg->state_quant.grid;
}

qsnn_status qsnn_net_create(qsnn_ctx *ctx, const qsnn_net_cfg *cfg, qsnn_net **out) {
    *out = NULL;
    qsnn_status st = qsnn_net_cfg_check(ctx, cfg);
    if (st) return st;
    qsnn_net *net = qsnn_calloc(ctx, 1, sizeof *net);
    if (!net) return QSNN_ERR_NOMEM;
    net->ctx = ctx;
    net->cfg = *cfg;
    net->n_layers = cfg->n_layers;
    qsnn_conv_shape shp[QSNN_MAX_LAYERS];
    int sizes[QSNN_MAX_LAYERS];
    layer_shapes(ctx, cfg, shp, sizes); /* checked above */
    for (int l = 0; l < cfg->n_layers; l++) {
        qsnn_layer *L = &net->layer[l];
        L->in = l ? cfg->sizes[l - 1] : cfg->n_inputs;
        L->out = cfg->sizes[l];
        L->kind = l < cfg->n_specs ? cfg->spec[l].kind : QSNN_LAYER_DENSE;
        L->dropout = l < cfg->n_specs ? cfg->spec[l].dropout : 0.0f;
        if (L->kind == QSNN_LAYER_CONV) {
            L->conv = shp[l];
            L->nw = qsnn_conv_weight_count(&L->conv);
            L->w_rows = L->conv.out_c;
        } else {
            L->nw = (size_t)L->in * L->out;
            L->w_rows = L->out;
        }
        const size_t nw = L->nw;
        L->W = qsnn_calloc(ctx, nw, sizeof(float));
        L->gW = qsnn_calloc(ctx, nw, sizeof(float));
        if (!L->W || !L->gW) goto oom;
        if (cfg->bias) {
            L->b = qsnn_calloc(ctx, L->w_rows, sizeof(float));
            L->gb = qsnn_calloc(ctx, L->w_rows, sizeof(float));
            if (!L->b || !L->gb) goto oom;
            L->bias_fwd = L->b;
            if (cfg->integer && !(L->bias_fwd = qsnn_calloc(ctx, L->w_rows, sizeof(float)))) goto oom;
        }
        L->wq_cfg = cfg->weight_quant;
        L->wq_cfg.bits = qsnn_net_cfg_weight_bits(cfg, l);
        snprintf(L->wq_cfg.method, sizeof L->wq_cfg.method, "%s", qsnn_net_cfg_weight_method(cfg, l));
        L->wq_cfg.pow2 |= cfg->integer;
        L->wq_cfg.lq = cfg->lq;
        L->sq_cfg = cfg->state_quant;
        L->sq_cfg.bits = qsnn_net_cfg_state_bits(cfg, l);
        L->sq_cfg.grid = qsnn_net_cfg_state_grid(cfg, l);
        L->sq_cfg.lq = cfg->lq;
        if (L->wq_cfg.bits) {
            L->wq = qsnn_weight_quant_find(L->wq_cfg.method);
            L->Wq = qsnn_calloc(ctx, nw, sizeof(float));
            L->w_scales = qsnn_calloc(ctx, L->w_rows, sizeof(float));
            if (!L->Wq || !L->w_scales) goto oom;
            if (L->wq->n_learned) {
                const size_t nl = qsnn_wq_learned_total(L->wq, &L->wq_cfg, qsnn_weight_quant_nscales(&L->wq_cfg, L->w_rows));
                L->wq_learned = qsnn_calloc(ctx, nl, sizeof(float));
                L->g_wq_learned = qsnn_calloc(ctx, nl, sizeof(float));
                if (!L->wq_learned || !L->g_wq_learned) goto oom;
                L->wq_cfg.learned = L->wq_learned;
                L->wq_cfg.learned_grad = L->g_wq_learned;
                L->wq->init(&L->wq_cfg, L->W, L->w_rows, (int)(nw / L->w_rows), L->wq_learned);
            }
        } else {
            L->Wq = L->W;
        }
        L->ops = layer_ops(cfg, l);
        L->beta = cfg->neuron_params.beta;
        L->theta = cfg->neuron_params.theta;
        L->alpha = cfg->neuron_params.alpha;
        L->rec = l < cfg->n_layers - 1 ? (qsnn_recurrence)cfg->recurrent : QSNN_REC_NONE;
        if (L->rec) {
            const size_t nv = qsnn_layer_nv(L);
            L->V = qsnn_calloc(ctx, nv, sizeof(float));
            L->gV = qsnn_calloc(ctx, nv, sizeof(float));
            if (!L->V || !L->gV) goto oom;
            L->Vq = L->V;
            if (L->wq_cfg.bits) {
                L->Vq = qsnn_calloc(ctx, nv, sizeof(float));
                L->v_scales = qsnn_calloc(ctx, L->out, sizeof(float));
                if (!L->Vq || !L->v_scales) goto oom;
            }
        }
        if (qsnn_layer_lsq_state(L)) L->state_scale = (float)qsnn_lsq_state_init(&L->sq_cfg, L->theta);
        lq_state_init(L);
        L->np = cfg->neuron_params;
        if (cfg->per_neuron) {
            static const unsigned flag[QSNN_PN_COUNT] = {QSNN_NP_BETA, QSNN_NP_THETA, QSNN_NP_ALPHA};
            const float init[QSNN_PN_COUNT] = {L->beta, L->theta, L->alpha};
            for (int k = 0; k < QSNN_PN_COUNT; k++) {
                if (!(L->ops->params & flag[k])) continue;
                L->pn[k] = qsnn_calloc(ctx, L->out, sizeof(float));
                L->g_pn[k] = qsnn_calloc(ctx, L->out, sizeof(float));
                if (!L->pn[k] || !L->g_pn[k]) goto oom;
                for (int o = 0; o < L->out; o++) L->pn[k][o] = init[k];
            }
            if (L->pn[QSNN_PN_THETA]) { /* also for float states: statistics read membranes relative to θ_o */
                if (!(L->q_gain = qsnn_calloc(ctx, L->out, sizeof(float)))) goto oom;
                for (int o = 0; o < L->out; o++) L->q_gain[o] = 1.0f;
            }
        }
    }
    st = qsnn_net_prepare(net);
    if (st) {
        qsnn_net_destroy(&net);
        return st;
    }
    *out = net;
    return QSNN_OK;
oom:
    qsnn_net_destroy(&net);
    return QSNN_ERR_NOMEM;
}

void qsnn_net_destroy(qsnn_net **pnet) {
    if (!pnet || !*pnet) return;
    qsnn_net *net = *pnet;
    qsnn_ctx *ctx = net->ctx;
    for (int l = 0; l < net->n_layers; l++) {
        qsnn_layer *L = &net->layer[l];
        if (L->Wq != L->W) qsnn_free(ctx, L->Wq);
        if (L->bias_fwd != L->b) qsnn_free(ctx, L->bias_fwd);
        qsnn_free(ctx, L->W);
        qsnn_free(ctx, L->gW);
        qsnn_free(ctx, L->b);
        qsnn_free(ctx, L->gb);
        qsnn_free(ctx, L->w_scales);
        qsnn_free(ctx, L->wq_learned);
        qsnn_free(ctx, L->g_wq_learned);
        if (L->Vq != L->V) qsnn_free(ctx, L->Vq);
        qsnn_free(ctx, L->V);
        qsnn_free(ctx, L->gV);
        qsnn_free(ctx, L->v_scales);
        for (int k = 0; k < QSNN_PN_COUNT; k++) {
            qsnn_free(ctx, L->pn[k]);
            qsnn_free(ctx, L->g_pn[k]);
        }
        qsnn_free(ctx, L->q_gain);
        qsnn_state_quant_free(ctx, &L->sq);
        for (int s = 0; s < QSNN_NEURON_MAX_STATES - 1; s++) qsnn_state_quant_free(ctx, &L->sq_aux[s]);
    }
    qsnn_free(ctx, net);
    *pnet = NULL;
}

static void fill_uniform(float *v, size_t n, float bound, uint64_t seed, uint64_t stream) {
    qsnn_rng r;
    qsnn_rng_init(&r, seed, stream);
    for (size_t i = 0; i < n; i++) v[i] = bound * (2.0f * qsnn_rng_uniform(&r) - 1.0f);
}

void qsnn_net_init(qsnn_net *net, uint64_t seed) {
    for (int l = 0; l < net->n_layers; l++) {
        qsnn_layer *L = &net->layer[l];
        const float bound = 1.0f / sqrtf((float)(L->nw / L->w_rows)); /* 1/sqrt(fan-in), PyTorch's default */
        fill_uniform(L->W, L->nw, bound, seed, QSNN_STREAM_INIT + 2 * l);
        if (L->b) fill_uniform(L->b, (size_t)L->w_rows, bound, seed, QSNN_STREAM_INIT + 2 * l + 1);
        L->beta = net->cfg.neuron_params.beta;
        L->theta = net->cfg.neuron_params.theta;
        L->alpha = net->cfg.neuron_params.alpha;
        const float init[QSNN_PN_COUNT] = {L->beta, L->theta, L->alpha};
        for (int k = 0; k < QSNN_PN_COUNT; k++)
            if (L->pn[k])
                for (int o = 0; o < L->out; o++) L->pn[k][o] = init[k];
        if (L->rec == QSNN_REC_FULL) /* PyTorch Linear's init for the [N][N] matrix */
            fill_uniform(L->V, qsnn_layer_nv(L), 1.0f / sqrtf((float)L->out), seed, QSNN_STREAM_RECURRENT + l);
        else if (L->rec == QSNN_REC_ONE_TO_ONE) /* 0: the layer starts as its feed-forward twin */
            for (int o = 0; o < L->out; o++) L->V[o] = 0.0f;
        if (qsnn_layer_lsq_state(L)) L->state_scale = (float)qsnn_lsq_state_init(&L->sq_cfg, L->theta);
        lq_state_init(L);
        if (L->wq_learned) L->wq->init(&L->wq_cfg, L->W, L->w_rows, (int)(L->nw / L->w_rows), L->wq_learned);
    }
    qsnn_net_prepare(net);
}

static int64_t first_nonfinite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return (int64_t)i;
    return -1;
}

/* Puts β, θ and the bias on grids where every float operation of the forward pass is exact
 * (quantizers.md §8): β = m/2^8, θ a multiple of the state step Δ, the bias a multiple of the
 * accumulator unit s_w·s_x (s_x = 2^-input_bits for the first layer, 1 for spike inputs). */
static void integer_exact(qsnn_net *net, int l) {
    qsnn_layer *L = &net->layer[l];
    L->np.beta = ldexpf(nearbyintf(ldexpf(L->np.beta, QSNN_INT_BETA_BITS)), -QSNN_INT_BETA_BITS);
    const int e = L->sq.step_exp;
    float k = nearbyintf(ldexpf(L->theta, -e));
    L->np.theta = ldexpf(k < 1.0f ? 1.0f : k, e);
    if (!L->b) return;
    const int sx = l == 0 ? -qsnn_net_input_bits(&net->cfg) : 0;
    const int per_ch = L->wq_cfg.granularity == QSNN_WQ_PER_CHANNEL;
    for (int o = 0; o < L->out; o++) {
        const float unit = ldexpf(L->w_scales[per_ch ? o : 0], sx);
        L->bias_fwd[o] = unit * nearbyintf(L->b[o] / unit);
    }
}

/* Per-neuron parameters: refuses non-finite values and thresholds <= 0, clamps β and α to [0, 1] and
 * sets the state-grid gains θ_o/θ. */
static qsnn_status prepare_per_neuron(qsnn_ctx *ctx, qsnn_layer *L, int l) {
    static const char *const names[QSNN_PN_COUNT] = {"beta", "theta", "alpha"};
    for (int k = 0; k < QSNN_PN_COUNT; k++) {
        float *v = L->pn[k];
        if (!v) continue;
        for (int o = 0; o < L->out; o++) {
            if (!isfinite(v[o]) || (k == QSNN_PN_THETA && !(v[o] > 0.0f)))
                return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "layer%d.%s[%d] is %g%s", l, names[k], o, v[o],
                                 k == QSNN_PN_THETA ? " (must be finite and > 0)" : "");
            if (k != QSNN_PN_THETA) v[o] = v[o] < 0.0f ? 0.0f : (v[o] > 1.0f ? 1.0f : v[o]);
        }
    }
    if (L->q_gain)
        for (int o = 0; o < L->out; o++) L->q_gain[o] = L->pn[QSNN_PN_THETA][o] / L->theta;
    return QSNN_OK;
}

qsnn_status qsnn_net_prepare(qsnn_net *net) {
    qsnn_ctx *ctx = net->ctx;
    qsnn_status st;
    for (int l = 0; l < net->n_layers; l++) {
        qsnn_layer *L = &net->layer[l];
        const int cols = (int)(L->nw / L->w_rows);
        int64_t bad = first_nonfinite(L->W, L->nw);
        if (bad >= 0)
            return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "layer%d.weight[%lld][%lld] is %g", l, (long long)(bad / cols),
                             (long long)(bad % cols), L->W[bad]);
        if (L->b && (bad = first_nonfinite(L->b, (size_t)L->w_rows)) >= 0)
            return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "layer%d.bias[%lld] is %g", l, (long long)bad, L->b[bad]);
        if (!isfinite(L->beta)) return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "layer%d.beta is %g", l, L->beta);
        if (L->wq_learned) {
            const int ns = qsnn_weight_quant_nscales(&L->wq_cfg, L->w_rows);
            if ((bad = first_nonfinite(L->wq_learned, qsnn_wq_learned_total(L->wq, &L->wq_cfg, ns))) >= 0) {
                int k = 0;
                while (k + 1 < L->wq->n_learned && (size_t)bad >= qsnn_wq_learned_offset(L->wq, &L->wq_cfg, ns, k + 1)) k++;
                const int64_t at = bad - (int64_t)qsnn_wq_learned_offset(L->wq, &L->wq_cfg, ns, k);
                return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "layer%d.weight_%s[%lld] is %g", l, L->wq->learned_names[k],
                                 (long long)at, L->wq_learned[bad]);
            }
        }
        if (!isfinite(L->theta) || !(L->theta > 0.0f))
            return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "layer%d.theta is %g (must be finite and > 0)", l, L->theta);
        if (!isfinite(L->alpha)) return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "layer%d.alpha is %g", l, L->alpha);
        if (L->V && (bad = first_nonfinite(L->V, qsnn_layer_nv(L))) >= 0)
            return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "layer%d.recurrent[%lld] is %g", l, (long long)bad, L->V[bad]);
        L->beta = L->beta < 0.0f ? 0.0f : (L->beta > 1.0f ? 1.0f : L->beta);
        L->alpha = L->alpha < 0.0f ? 0.0f : (L->alpha > 1.0f ? 1.0f : L->alpha);
        if ((st = prepare_per_neuron(ctx, L, l))) return st;
        L->np = net->cfg.neuron_params;
        if (l < net->cfg.n_specs) { /* the layer's own surrogate */
            const qsnn_layer_spec *sp = &net->cfg.spec[l];
            if (sp->surrogate) {
                L->np.surrogate = (qsnn_surrogate_id)(sp->surrogate - 1);
                L->np.slope = qsnn_surrogate_get(L->np.surrogate)->default_slope;
            }
            if (sp->slope > 0.0f) L->np.slope = sp->slope;
        }
        L->np.beta = L->beta;
        L->np.theta = L->theta;
        L->np.alpha = L->alpha;
        /* training passes see their epoch and a seed per (optimizer step, layer); zero otherwise */
        const qsnn_lq_pass pass = {.training = net->training, .epoch = net->epoch,
                                   .seed = net->training ? net->quant_seed ^ (0x632BE59BD9B4E019ull * (uint64_t)(l + 1)) : 0};
        L->wq_cfg.pass = pass;
        L->sq_cfg.pass = pass;
        if (L->wq) L->wq->forward(&L->wq_cfg, L->W, L->w_rows, cols, L->Wq, L->w_scales);
        if (L->Vq != L->V) { /* min-max per output neuron: V's rows (one-to-one: one scale) */
            qsnn_weight_quant_cfg vc = L->wq_cfg;
            snprintf(vc.method, sizeof vc.method, "uniform_symmetric");
            vc.learned = vc.learned_grad = NULL;
            const qsnn_weight_quant_ops *u = qsnn_weight_quant_find("uniform_symmetric");
            if (L->rec == QSNN_REC_FULL) u->forward(&vc, L->V, L->out, L->out, L->Vq, L->v_scales);
            else u->forward(&vc, L->V, 1, L->out, L->Vq, L->v_scales);
        }
        if (qsnn_layer_lsq_state(L)) {
            if (!isfinite(L->state_scale))
                return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "layer%d.state_scale is %g", l, L->state_scale);
            L->sq_cfg.scale = L->state_scale > 1e-6f ? L->state_scale : 1e-6f; /* the optimizer may overshoot 0 */
        }
        int lq_changed = 0;
        if (qsnn_layer_lq_state(L)) {
            for (int i = 0; i < 2; i++) {
                if (!isfinite(L->state_p[i]))
                    return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "layer%d.%s is %g", l,
                                     qsnn_state_lq_name(L->sq_cfg.grid, i), L->state_p[i]);
                L->sq_cfg.p[i] = L->state_p[i]; /* clamped where the table is built (qsnn_state_lq_params) */
            }
            /* a new table for new values, and for every change of pass: QN switches between its soft (training)
             * and hard form and anneals T by epoch; CPQ draws DropBits masks per training pass */
            const qsnn_state_quant_cfg *b = &L->sq.cfg;
            lq_changed = b->p[0] != L->sq_cfg.p[0] || b->p[1] != L->sq_cfg.p[1] ||
                         b->pass.training != pass.training || b->pass.epoch != pass.epoch || b->pass.seed != pass.seed;
        }
        if (L->sq_cfg.bits && (!L->sq.enabled || L->sq.built_theta != L->theta || lq_changed ||
                               (qsnn_layer_lsq_state(L) && L->sq.step != (float)L->sq_cfg.scale))) {
            st = qsnn_state_quant_build(ctx, &L->sq_cfg, L->theta, &L->sq);
            if (st) return st;
            for (int s = 1; s < L->ops->n_states; s++) /* the model's other states: the same grid */
                if ((L->ops->quantized & (1u << s)) &&
                    (st = qsnn_state_quant_build(ctx, &L->sq_cfg, L->theta, &L->sq_aux[s - 1])))
                    return st;
        }
        if (net->cfg.integer) integer_exact(net, l);
        L->cur_step = 0.0f, L->cur_kmax = 0;
        if (l == 0 && net->cfg.current_bits) {
            L->cur_kmax = (1 << (net->cfg.current_bits - 1)) - 1;
            float step = (float)(net->cfg.current_range * L->np.theta / L->cur_kmax);
            L->cur_step = net->cfg.integer ? qsnn_pow2_up(step) : step; /* exact sums in integer models */
        }
    }
    return QSNN_OK;
}

int qsnn_net_params(qsnn_net *net, qsnn_param *list) {
    int n = 0;
    for (int l = 0; l < net->n_layers; l++) {
        qsnn_layer *L = &net->layer[l];
        qsnn_param *p = &list[n++];
        snprintf(p->name, sizeof p->name, "layer%d.weight", l);
        p->data = L->W, p->grad = L->gW, p->n = L->nw, p->learnable = 1;
        if (L->b) {
            p = &list[n++];
            snprintf(p->name, sizeof p->name, "layer%d.bias", l);
            p->data = L->b, p->grad = L->gb, p->n = (size_t)L->w_rows, p->learnable = 1;
        }
        /* β and θ are listed for every model (checkpoints of older files have them); α only where used */
        float *scalar[QSNN_PN_COUNT] = {&L->beta, &L->theta, &L->alpha};
        float *g_scalar[QSNN_PN_COUNT] = {&L->g_beta, &L->g_theta, &L->g_alpha};
        const int learn[QSNN_PN_COUNT] = {net->cfg.learn_beta, net->cfg.learn_theta, net->cfg.learn_alpha};
        static const char *const pname[QSNN_PN_COUNT] = {"beta", "theta", "alpha"};
        for (int k = 0; k < QSNN_PN_COUNT; k++) {
            if (k == QSNN_PN_ALPHA && !(L->ops->params & QSNN_NP_ALPHA)) continue;
            p = &list[n++];
            snprintf(p->name, sizeof p->name, "layer%d.%s", l, pname[k]);
            if (L->pn[k]) p->data = L->pn[k], p->grad = L->g_pn[k], p->n = (size_t)L->out;
            else p->data = scalar[k], p->grad = g_scalar[k], p->n = 1;
            p->learnable = learn[k];
        }
        if (L->V) {
            p = &list[n++];
            snprintf(p->name, sizeof p->name, "layer%d.recurrent", l);
            p->data = L->V, p->grad = L->gV, p->n = qsnn_layer_nv(L), p->learnable = 1;
        }
        if (qsnn_layer_lsq_state(L)) {
            p = &list[n++];
            snprintf(p->name, sizeof p->name, "layer%d.state_scale", l);
            p->data = &L->state_scale, p->grad = &L->g_state_scale, p->n = 1, p->learnable = 1;
        }
        if (qsnn_layer_lq_state(L))
            for (int i = 0; i < 2; i++) {
                p = &list[n++];
                snprintf(p->name, sizeof p->name, "layer%d.%s", l, qsnn_state_lq_name(L->sq_cfg.grid, i));
                p->data = &L->state_p[i], p->grad = &L->g_state_p[i], p->n = 1, p->learnable = 1;
            }
        if (L->wq_learned) {
            const int ns = qsnn_weight_quant_nscales(&L->wq_cfg, L->w_rows);
            for (int k = 0; k < L->wq->n_learned; k++) {
                const size_t off = qsnn_wq_learned_offset(L->wq, &L->wq_cfg, ns, k);
                p = &list[n++];
                snprintf(p->name, sizeof p->name, "layer%d.weight_%s", l, L->wq->learned_names[k]);
                p->data = L->wq_learned + off, p->grad = L->g_wq_learned + off;
                p->n = (size_t)ns * qsnn_wq_group_size(L->wq, &L->wq_cfg, k);
                p->learnable = !(L->wq->frozen >> k & 1u);
            }
        }
    }
    return n;
}

void qsnn_net_zero_grad(qsnn_net *net) {
    for (int l = 0; l < net->n_layers; l++) {
        qsnn_layer *L = &net->layer[l];
        memset(L->gW, 0, L->nw * sizeof(float));
        if (L->gb) memset(L->gb, 0, (size_t)L->w_rows * sizeof(float));
        L->g_beta = L->g_theta = L->g_alpha = L->g_state_scale = 0.0f;
        L->g_state_p[0] = L->g_state_p[1] = 0.0f;
        for (int k = 0; k < QSNN_PN_COUNT; k++)
            if (L->g_pn[k]) memset(L->g_pn[k], 0, (size_t)L->out * sizeof(float));
        if (L->gV) memset(L->gV, 0, qsnn_layer_nv(L) * sizeof(float));
        if (L->g_wq_learned)
            memset(L->g_wq_learned, 0,
                   qsnn_wq_learned_total(L->wq, &L->wq_cfg, qsnn_weight_quant_nscales(&L->wq_cfg, L->w_rows)) *
                       sizeof(float));
    }
}

double qsnn_layer_weight_bits(const qsnn_layer *L) {
    if (!L->wq) return 32.0;
    if (!L->wq->effective_bits) return (double)L->wq_cfg.bits;
    qsnn_weight_quant_cfg hard = L->wq_cfg;
    memset(&hard.pass, 0, sizeof hard.pass);
    return L->wq->effective_bits(&hard, L->w_rows, (int)(L->nw / L->w_rows));
}
