/* NIR export and import (layout, mapping and rules in io/nir.h). */
#include "io/nir.h"
#include "io/h5atomic.h"
#include "io/h5util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef QSNN_VERSION
#define QSNN_VERSION "unknown"
#endif

#define NAME_MAX_LEN 128 /* node names, qualified ("outer/inner") */
#define MAX_NODES 256
#define MAX_DEPTH 8

/* ============================================================================================== */
/* export                                                                                         */
/* ============================================================================================== */

static qsnn_status write_i64s(qsnn_ctx *ctx, const char *file, hid_t g, const char *name, int rank, const hsize_t *dims,
                              const int64_t *v) {
    return qsnn_h5_write_array(ctx, file, g, name, H5T_STD_I64LE, H5T_NATIVE_INT64, rank, dims, v);
}

static qsnn_status write_f64(qsnn_ctx *ctx, const char *file, hid_t g, const char *name, double v) {
    return qsnn_h5_write_array(ctx, file, g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, &v);
}

static qsnn_status write_i64(qsnn_ctx *ctx, const char *file, hid_t g, const char *name, int64_t v) {
    return write_i64s(ctx, file, g, name, 0, NULL, &v);
}

/* A node group nodes/NAME with its `type`; the caller closes *out. */
static qsnn_status node_create(qsnn_ctx *ctx, const char *file, hid_t nodes, const char *name, const char *type,
                               hid_t *out) {
    qsnn_status st = qsnn_h5_group_create(ctx, file, nodes, name, out);
    if (st) return st;
    if ((st = qsnn_h5_write_str(ctx, file, *out, "type", type))) {
        H5Gclose(*out);
        *out = -1;
    }
    return st;
}

/* fcN: Affine (or Linear without bias) with the forward weights; quantizer codes in metadata. */
static qsnn_status export_fc(qsnn_ctx *ctx, const char *file, hid_t nodes, const qsnn_net *net, int l) {
    const qsnn_layer *L = &net->layer[l];
    char name[32];
    snprintf(name, sizeof name, "fc%d", l);
    hid_t g = -1, md = -1;
    int32_t *codes = NULL;
    qsnn_status st = node_create(ctx, file, nodes, name, L->b ? "Affine" : "Linear", &g);
    if (st) return st;
    const hsize_t wd[2] = {(hsize_t)L->out, (hsize_t)L->in}, bd = (hsize_t)L->out;
    /* What the forward pass uses: fake-quantized weights, the bias on the accumulator grid. */
    const float *bias = L->bias_fwd ? L->bias_fwd : L->b;
    if ((st = qsnn_h5_write_f32(ctx, file, g, "weight", 2, wd, L->Wq))) goto done;
    if (bias && (st = qsnn_h5_write_f32(ctx, file, g, "bias", 1, &bd, bias))) goto done;
    if (L->wq && L->w_scales) {
        const qsnn_weight_quant_cfg *wc = &L->wq_cfg;
        codes = qsnn_malloc(ctx, (size_t)L->out * (size_t)L->in * sizeof *codes);
        if (!codes) {
            st = QSNN_ERR_NOMEM;
            goto done;
        }
        /* The scales the forward weights were made with, so codes × scales == weight. */
        L->wq->codes(wc, L->W, L->w_scales, L->out, L->in, codes);
        const hsize_t sd = (hsize_t)qsnn_weight_quant_nscales(wc, L->out);
        if ((st = qsnn_h5_group_create(ctx, file, g, "metadata", &md))) goto done;
        if ((st = write_i64(ctx, file, md, "weight_quant_bits", wc->bits))) goto done;
        if ((st = qsnn_h5_write_str(ctx, file, md, "weight_quant_granularity",
                                    wc->granularity == QSNN_WQ_PER_CHANNEL ? "per_channel" : "per_tensor")))
            goto done;
        if ((st = qsnn_h5_write_str(ctx, file, md, "weight_quant_method", L->wq->name))) goto done;
        if ((st = write_i64(ctx, file, md, "weight_quant_pow2", wc->pow2))) goto done;
        if ((st = qsnn_h5_write_i32(ctx, file, md, "weight_codes", 2, wd, codes))) goto done;
        if ((st = qsnn_h5_write_f32(ctx, file, md, "weight_scales", 1, &sd, L->w_scales))) goto done;
        for (int k = 0; L->wq_learned && k < L->wq->n_learned; k++) { /* LSQ's step size, QN's breakpoints, ... */
            char nm[96];
            snprintf(nm, sizeof nm, "weight_quant_learned_%s", L->wq->learned_names[k]);
            const hsize_t nk = sd * (hsize_t)qsnn_wq_group_size(L->wq, wc, k);
            const size_t off = qsnn_wq_learned_offset(L->wq, wc, (int)sd, k);
            if ((st = qsnn_h5_write_f32(ctx, file, md, nm, 1, &nk, L->wq_learned + off))) goto done;
        }
    }
done:
    if (md >= 0) H5Gclose(md);
    H5Gclose(g);
    qsnn_free(ctx, codes);
    return st;
}

/* lifN: LIF (IF when β = 1) with per-neuron arrays; β, dt, reset and the state grid in metadata. */
static qsnn_status export_lif(qsnn_ctx *ctx, const char *file, hid_t nodes, const qsnn_net *net, int l, double dt) {
    const qsnn_layer *L = &net->layer[l];
    char name[32];
    snprintf(name, sizeof name, "lif%d", l);
    const int n = L->out;
    /* The values in effect (integer-exact models round β and θ onto grids); the stored ones go to
     * metadata. */
    const float beta = L->np.beta, theta = L->np.theta;
    const float *pb = L->pn[QSNN_PN_BETA], *pt = L->pn[QSNN_PN_THETA]; /* per-neuron models */
    int is_if = 1;
    for (int j = 0; j < n; j++) is_if &= (pb ? pb[j] : beta) >= 1.0f;
    hid_t g = -1, md = -1;
    float *buf = qsnn_malloc(ctx, 4 * (size_t)n * sizeof *buf);
    if (!buf) return QSNN_ERR_NOMEM;
    float *tau = buf, *r = buf + n, *zero = buf + 2 * (size_t)n, *thr = buf + 3 * (size_t)n;
    qsnn_status st = QSNN_OK;
    for (int j = 0; j < n; j++) {
        const float bj = pb ? pb[j] : beta;
        if (!is_if && bj >= 1.0f) { /* τ = ∞ next to finite ones: r·dt/τ would be ∞/∞ */
            st = qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED,
                           "%s: NIR export: layer%d.beta[%d] = 1 (no leak) while other neurons leak; NIR's LIF "
                           "needs a finite tau", file, l, j);
            goto done;
        }
        const double tau_d = is_if ? INFINITY : dt / (1.0 - (double)bj);
        tau[j] = (float)tau_d;
        r[j] = is_if ? (float)(1.0 / dt) : (float)(tau_d / dt);
        zero[j] = 0.0f;
        thr[j] = pt ? pt[j] : theta;
    }
    const hsize_t d = (hsize_t)n;
    st = node_create(ctx, file, nodes, name, is_if ? "IF" : "LIF", &g);
    if (st) goto done;
    if (!is_if && (st = qsnn_h5_write_f32(ctx, file, g, "tau", 1, &d, tau))) goto done;
    if ((st = qsnn_h5_write_f32(ctx, file, g, "r", 1, &d, r))) goto done;
    if (!is_if && (st = qsnn_h5_write_f32(ctx, file, g, "v_leak", 1, &d, zero))) goto done;
    if ((st = qsnn_h5_write_f32(ctx, file, g, "v_threshold", 1, &d, thr))) goto done;
    if ((st = qsnn_h5_write_f32(ctx, file, g, "v_reset", 1, &d, zero))) goto done;

    if ((st = qsnn_h5_group_create(ctx, file, g, "metadata", &md))) goto done;
    if ((st = write_f64(ctx, file, md, "dt", dt))) goto done;
    if ((st = qsnn_h5_write_f32(ctx, file, md, "beta", 0, NULL, &L->beta))) goto done;
    if ((st = qsnn_h5_write_f32(ctx, file, md, "theta", 0, NULL, &L->theta))) goto done;
    /* per-neuron values as stored (β, θ above are then the layer's reference values) */
    if (pb && (st = qsnn_h5_write_f32(ctx, file, md, "beta_per_neuron", 1, &d, pb))) goto done;
    if (pt && (st = qsnn_h5_write_f32(ctx, file, md, "theta_per_neuron", 1, &d, pt))) goto done;
    if ((st = qsnn_h5_write_str(ctx, file, md, "reset", qsnn_reset_name(net->cfg.neuron_params.reset)))) goto done;
    if ((st = qsnn_h5_write_str(ctx, file, md, "neuron", L->ops && L->ops->name ? L->ops->name : net->cfg.neuron)))
        goto done;
    if (L->sq.enabled) {
        const qsnn_state_quant_cfg *q = &L->sq_cfg;
        const hsize_t nl = (hsize_t)L->sq.n;
        if ((st = write_i64(ctx, file, md, "state_quant_bits", q->bits))) goto done;
        if ((st = qsnn_h5_write_str(ctx, file, md, "state_quant_grid", qsnn_grid_name(q->grid)))) goto done;
        if ((st = write_f64(ctx, file, md, "state_quant_lower_limit", q->lower_limit))) goto done;
        if ((st = write_f64(ctx, file, md, "state_quant_upper_limit", q->upper_limit))) goto done;
        if ((st = write_f64(ctx, file, md, "state_quant_multiplier", q->multiplier))) goto done;
        if ((st = write_i64(ctx, file, md, "state_quant_ste_clip", q->ste_clip))) goto done;
        if ((st = qsnn_h5_write_f32(ctx, file, md, "state_quant_levels", 1, &nl, L->sq.levels))) goto done;
        const hsize_t two = 2; /* qil, qn, cpq: the layer's two learned values, as stored */
        if (qsnn_layer_lq_state(L) && (st = qsnn_h5_write_f32(ctx, file, md, "state_quant_learned", 1, &two, L->state_p)))
            goto done;
    }
done:
    if (md >= 0) H5Gclose(md);
    if (g >= 0) H5Gclose(g);
    qsnn_free(ctx, buf);
    return st;
}

static qsnn_status export_contents(qsnn_ctx *ctx, const char *file, hid_t f, const qsnn_net *net, double dt,
                                   const char *config_yaml) {
    qsnn_status st;
    if ((st = qsnn_h5_write_str(ctx, file, f, "version", QSNN_NIR_VERSION))) return st;
    hid_t top = -1, nodes = -1, g = -1;
    if ((st = qsnn_h5_group_create(ctx, file, f, "node", &top))) return st;
    if ((st = qsnn_h5_write_str(ctx, file, top, "type", "NIRGraph"))) goto done;
    if ((st = qsnn_h5_group_create(ctx, file, top, "nodes", &nodes))) goto done;

    int64_t shape = net->cfg.n_inputs;
    hsize_t one = 1;
    if ((st = node_create(ctx, file, nodes, "input", "Input", &g))) goto done;
    st = write_i64s(ctx, file, g, "shape", 1, &one, &shape);
    H5Gclose(g);
    if (st) goto done;
    for (int l = 0; l < net->n_layers; l++) {
        if ((st = export_fc(ctx, file, nodes, net, l))) goto done;
        if ((st = export_lif(ctx, file, nodes, net, l, dt))) goto done;
    }
    shape = net->layer[net->n_layers - 1].out;
    if ((st = node_create(ctx, file, nodes, "output", "Output", &g))) goto done;
    st = write_i64s(ctx, file, g, "shape", 1, &one, &shape);
    H5Gclose(g);
    if (st) goto done;

    { /* edges input → fc0 → lif0 → … → output */
        const int E = 2 * net->n_layers + 1;
        char names[2 * QSNN_MAX_LAYERS + 2][16];
        const char *ends[2 * (2 * QSNN_MAX_LAYERS + 1)];
        snprintf(names[0], sizeof names[0], "input");
        for (int l = 0; l < net->n_layers; l++) {
            snprintf(names[1 + 2 * l], sizeof names[0], "fc%d", l);
            snprintf(names[2 + 2 * l], sizeof names[0], "lif%d", l);
        }
        snprintf(names[E], sizeof names[0], "output");
        for (int e = 0; e < E; e++) {
            ends[2 * e] = names[e];
            ends[2 * e + 1] = names[e + 1];
        }
        hid_t t = H5Tcopy(H5T_C_S1);
        if (t < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
            st = qsnn_h5_fail(ctx, file, "cannot make a string type");
            if (t >= 0) H5Tclose(t);
            goto done;
        }
        const hsize_t ed[2] = {(hsize_t)E, 2};
        st = qsnn_h5_write_array(ctx, file, top, "edges", t, t, 2, ed, ends);
        H5Tclose(t);
        if (st) goto done;
    }
    if ((st = qsnn_h5_group_create(ctx, file, top, "metadata", &g))) goto done;
    if (!(st = qsnn_h5_write_str(ctx, file, g, "source", "qsnn")) &&
        !(st = qsnn_h5_write_str(ctx, file, g, "qsnn_version", QSNN_VERSION)) &&
        !(st = write_f64(ctx, file, g, "dt", dt)) &&
        !(st = write_i64(ctx, file, g, "input_bits", net->cfg.input_bits)) &&
        !(st = write_i64(ctx, file, g, "integer", net->cfg.integer)) &&
        !(st = write_i64(ctx, file, g, "current_bits", net->cfg.current_bits)) &&
        !(st = write_f64(ctx, file, g, "current_range", net->cfg.current_range)) && config_yaml)
        st = qsnn_h5_write_str(ctx, file, g, "qsnn_config", config_yaml);
    H5Gclose(g);
done:
    if (nodes >= 0) H5Gclose(nodes);
    if (top >= 0) H5Gclose(top);
    return st;
}

qsnn_status qsnn_nir_export(qsnn_ctx *ctx, const char *path, const qsnn_net *net, const qsnn_nir_export_opts *opts) {
    if (!path || !*path || !net) return qsnn_fail(ctx, QSNN_ERR_ARG, "NIR export: path and network are required");
    const double dt = opts && opts->dt != 0 ? opts->dt : QSNN_NIR_DEFAULT_DT;
    if (!(dt > 0) || !isfinite(dt)) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: dt = %g must be finite and > 0", path, dt);
    const char *why = NULL;
    qsnn_net_cfg shape = net->cfg;
    shape.per_neuron = 0; /* per-neuron β and θ are NIR's own per-neuron arrays */
    if (!qsnn_net_plain_lif(&shape, &why)) return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED, "%s: NIR export: %s", path, why);
    for (int l = 0; l < net->n_layers; l++) {
        const char *nm = net->layer[l].ops && net->layer[l].ops->name ? net->layer[l].ops->name : net->cfg.neuron;
        if (strcmp(nm, "lif") != 0)
            return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED, "%s: layer%d: neuron model '%s' has no NIR mapping yet", path,
                             l, nm);
    }
    if (net->cfg.neuron_params.surrogate == QSNN_SURR_SOFT) /* a test mode: sigmoid spikes in the forward pass */
        return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED,
                         "%s: the soft surrogate spikes smoothly; NIR neurons fire all or nothing", path);
    for (int l = 0; l < net->n_layers; l++)
        if (!(net->layer[l].np.beta >= 0.0f && net->layer[l].np.beta <= 1.0f) || !isfinite(net->layer[l].np.theta))
            return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "%s: layer%d has beta %g, theta %g", path, l,
                             (double)net->layer[l].np.beta, (double)net->layer[l].np.theta);
    qsnn_h5_atomic out;
    qsnn_status st = qsnn_h5_atomic_create(ctx, path, &out);
    if (st) return st;
    st = export_contents(ctx, path, out.fid, net, dt, opts ? opts->config_yaml : NULL);
    if (!st) st = qsnn_h5_atomic_commit(ctx, &out);
    else qsnn_h5_atomic_abort(ctx, &out);
    return st;
}

/* ============================================================================================== */
/* import                                                                                         */
/* ============================================================================================== */

typedef enum { K_INPUT, K_OUTPUT, K_AFFINE, K_LINEAR, K_LIF, K_IF, K_FLATTEN, K_GRAPH, K_OTHER } node_kind;

typedef struct nir_node {
    char name[NAME_MAX_LEN]; /* qualified: "outer/inner" */
    char h5[512];            /* the node's group, absolute path in the file */
    char type[64];
    node_kind kind;
    int parent;   /* index of the enclosing NIRGraph node, -1 at the top */
    int passthru; /* a nested graph's Input/Output, a Flatten: no computation */
    int n_in, n_out, succ;
} nir_node;

typedef struct nir_graph {
    nir_node node[MAX_NODES];
    int n;
    int (*edge)[2];
    int n_edges, cap_edges;
} nir_graph;

typedef struct reader {
    qsnn_ctx *ctx;
    const char *file;
    hid_t fid;
    nir_graph *g;
} reader;

static qsnn_status nodefail(reader *r, qsnn_status st, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static qsnn_status nodefail(reader *r, qsnn_status st, const char *node, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qsnn_fail(r->ctx, st, "%s: node '%s': %s", r->file, node, msg);
}

static const struct {
    const char *type;
    node_kind kind;
} known_types[] = {{"Input", K_INPUT}, {"Output", K_OUTPUT}, {"Affine", K_AFFINE},   {"Linear", K_LINEAR},
                   {"LIF", K_LIF},     {"IF", K_IF},         {"Flatten", K_FLATTEN}, {"NIRGraph", K_GRAPH}};

/* Datasets each node type may hold (NIR's parameter names); the first `n_req` are required. */
typedef struct {
    node_kind kind;
    int n_req;
    const char *names[8];
} param_rule;
static const param_rule rules[] = {
    {K_INPUT, 1, {"shape", NULL}},
    {K_OUTPUT, 1, {"shape", NULL}},
    {K_AFFINE, 2, {"weight", "bias", NULL}},
    {K_LINEAR, 1, {"weight", NULL}},
    {K_LIF, 4, {"tau", "r", "v_leak", "v_threshold", "v_reset", NULL}},
    {K_IF, 2, {"r", "v_threshold", "v_reset", NULL}},
    {K_FLATTEN, 0, {"start_dim", "end_dim", "input_type", NULL}},
    {K_GRAPH, 2, {"nodes", "edges", NULL}},
};

static const param_rule *rule_of(node_kind k) {
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++)
        if (rules[i].kind == k) return &rules[i];
    return NULL;
}

/* Names of a group's links, sorted by name (HDF5's name index). */
typedef struct namelist {
    char **v;
    int n, cap, oom;
} namelist;

static herr_t collect_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    namelist *l = data;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(name))) {
        l->oom = 1;
        return -1;
    }
    l->n++;
    return 0;
}

static void namelist_free(namelist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static qsnn_status list_links(reader *r, hid_t g, const char *what, namelist *out) {
    memset(out, 0, sizeof *out);
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_cb, out) < 0) {
        qsnn_status st = out->oom ? QSNN_ERR_NOMEM : qsnn_h5_fail(r->ctx, r->file, what);
        namelist_free(out);
        return st;
    }
    return QSNN_OK;
}

/* Object type of link `name` under g (H5O_TYPE_UNKNOWN when it does not resolve). */
static H5O_type_t obj_type(hid_t g, const char *name) {
    H5O_info_t info;
    if (!qsnn_h5_exists(g, name)) return H5O_TYPE_UNKNOWN;
    if (H5Oget_info_by_name2(g, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return H5O_TYPE_UNKNOWN;
    return info.type;
}

/* Reads a string array dataset (variable- or fixed-length) into n strings of NAME_MAX_LEN. */
static qsnn_status read_strings(reader *r, hid_t g, const char *name, const char *node, int *rank, hsize_t *dims,
                                char (**out)[NAME_MAX_LEN], size_t *count) {
    *out = NULL;
    *count = 0;
    qsnn_status st = qsnn_h5_dims(r->ctx, r->file, g, name, rank, dims);
    if (st) return st;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT), ft = -1, sp = -1, mt = -1;
    char **vl = NULL, *raw = NULL;
    char(*s)[NAME_MAX_LEN] = NULL;
    size_t n = 0;
    if (d < 0) return qsnn_h5_fail(r->ctx, r->file, "cannot open the edges");
    ft = H5Dget_type(d);
    sp = H5Dget_space(d);
    if (ft < 0 || sp < 0) {
        st = qsnn_h5_fail(r->ctx, r->file, "cannot read the edges");
        goto done;
    }
    if (H5Tget_class(ft) != H5T_STRING) {
        st = nodefail(r, QSNN_ERR_FORMAT, node, "%s is not a string dataset", name);
        goto done;
    }
    const hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (np < 0 || np > 4 * MAX_NODES) {
        st = nodefail(r, QSNN_ERR_FORMAT, node, "%s holds %lld strings (at most %d allowed)", name, (long long)np,
                      4 * MAX_NODES);
        goto done;
    }
    n = (size_t)np;
    s = qsnn_calloc(r->ctx, n ? n : 1, sizeof *s);
    if (!s) {
        st = QSNN_ERR_NOMEM;
        goto done;
    }
    const htri_t isvl = H5Tis_variable_str(ft);
    if (isvl > 0) {
        mt = H5Tcopy(H5T_C_S1);
        vl = calloc(n ? n : 1, sizeof *vl);
        if (mt < 0 || !vl || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0) {
            st = vl ? qsnn_h5_fail(r->ctx, r->file, "cannot read the edges") : QSNN_ERR_NOMEM;
            goto done;
        }
        if (n && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, vl) < 0) {
            st = qsnn_h5_fail_as(r->ctx, QSNN_ERR_FORMAT, r->file, "cannot read the edges");
            goto done;
        }
        for (size_t i = 0; i < n && !st; i++) {
            if (!vl[i] || strlen(vl[i]) >= NAME_MAX_LEN)
                st = nodefail(r, QSNN_ERR_FORMAT, node, "%s[%zu] is empty or longer than %d characters", name, i,
                              NAME_MAX_LEN - 1);
            else strcpy(s[i], vl[i]);
        }
        if (n) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, vl);
    } else if (isvl == 0) {
        const size_t sz = H5Tget_size(ft);
        mt = H5Tcopy(ft);
        raw = qsnn_malloc(r->ctx, n * sz + 1);
        if (mt < 0 || !raw || !sz) {
            st = raw ? qsnn_h5_fail(r->ctx, r->file, "cannot read the edges") : QSNN_ERR_NOMEM;
            goto done;
        }
        if (n && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0) {
            st = qsnn_h5_fail_as(r->ctx, QSNN_ERR_FORMAT, r->file, "cannot read the edges");
            goto done;
        }
        for (size_t i = 0; i < n && !st; i++) {
            size_t len = 0;
            const char *p = raw + i * sz;
            while (len < sz && p[len]) len++;
            while (len && p[len - 1] == ' ') len--; /* space padding */
            if (!len || len >= NAME_MAX_LEN)
                st = nodefail(r, QSNN_ERR_FORMAT, node, "%s[%zu] is empty or longer than %d characters", name, i,
                              NAME_MAX_LEN - 1);
            else {
                memcpy(s[i], p, len);
                s[i][len] = 0;
            }
        }
    } else {
        st = qsnn_h5_fail(r->ctx, r->file, "cannot read the edges");
    }
done:
    free(vl);
    qsnn_free(r->ctx, raw);
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    H5Dclose(d);
    if (st) qsnn_free(r->ctx, s);
    else {
        *out = s;
        *count = n;
    }
    return st;
}

/* Reads a numeric dataset (any integer or float type) as doubles, checking every value is finite.
 * *out is allocated (qsnn_free). */
static qsnn_status read_numbers(reader *r, hid_t g, const char *name, const char *node, int *rank, hsize_t *dims,
                                double **out, size_t *count) {
    *out = NULL;
    qsnn_status st = qsnn_h5_dims(r->ctx, r->file, g, name, rank, dims);
    if (st) return st;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT), t = -1;
    if (d < 0) return qsnn_h5_fail(r->ctx, r->file, "cannot open a parameter");
    double *v = NULL;
    t = H5Dget_type(d);
    const H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (c != H5T_INTEGER && c != H5T_FLOAT) {
        st = nodefail(r, QSNN_ERR_FORMAT, node, "%s is not numeric", name);
        goto done;
    }
    size_t n = 1;
    for (int k = 0; k < *rank; k++) n *= (size_t)dims[k];
    v = qsnn_malloc(r->ctx, (n ? n : 1) * sizeof *v);
    if (!v) {
        st = QSNN_ERR_NOMEM;
        goto done;
    }
    if (n && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        char what[256];
        snprintf(what, sizeof what, "node '%s': cannot read %s", node, name);
        st = qsnn_h5_fail_as(r->ctx, QSNN_ERR_FORMAT, r->file, what);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            st = nodefail(r, QSNN_ERR_NUMERIC, node, "%s[%zu] is %g", name, i, v[i]);
            break;
        }
    *count = n;
done:
    if (t >= 0) H5Tclose(t);
    H5Dclose(d);
    if (st) qsnn_free(r->ctx, v);
    else *out = v;
    return st;
}

/* The node's type; kind K_OTHER for types qsnn does not import. */
static qsnn_status read_type(reader *r, hid_t g, const char *node, char *type, size_t size, node_kind *kind) {
    if (obj_type(g, "type") != H5O_TYPE_DATASET)
        return nodefail(r, QSNN_ERR_FORMAT, node, "no 'type' dataset (not a NIR node)");
    char *s = NULL;
    qsnn_status st = qsnn_h5_read_str(r->ctx, r->file, g, "type", &s);
    if (st) return st;
    snprintf(type, size, "%s", s);
    qsnn_free(r->ctx, s);
    *kind = K_OTHER;
    for (size_t i = 0; i < sizeof known_types / sizeof *known_types; i++)
        if (!strcmp(type, known_types[i].type)) *kind = known_types[i].kind;
    return QSNN_OK;
}

/* Every link of a node group is a known parameter, `type`, or an allowed subgroup; the required
 * parameters are present. */
static qsnn_status check_members(reader *r, hid_t g, const char *node, const char *type, node_kind kind) {
    const param_rule *rule = rule_of(kind);
    namelist l;
    qsnn_status st = list_links(r, g, "cannot list a node's members", &l);
    if (st) return st;
    for (int i = 0; i < l.n && !st; i++) {
        const char *m = l.v[i];
        const H5O_type_t ot = obj_type(g, m);
        if (!strcmp(m, "type")) continue;
        if (ot == H5O_TYPE_GROUP) {
            if (!strcmp(m, "metadata") || !strcmp(m, "input_type") || !strcmp(m, "output_type")) continue;
            if (kind == K_GRAPH && !strcmp(m, "nodes")) continue;
            st = nodefail(r, QSNN_ERR_FORMAT, node, "unknown group '%s' in a %s node", m, type);
            break;
        }
        int known = 0;
        for (int k = 0; rule->names[k]; k++) known |= !strcmp(m, rule->names[k]);
        if (!known) {
            char list[256] = "";
            for (int k = 0; rule->names[k]; k++) {
                strncat(list, k ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, rule->names[k], sizeof list - strlen(list) - 1);
            }
            st = nodefail(r, QSNN_ERR_FORMAT, node, "unknown dataset '%s' (%s nodes have %s)", m, type,
                          list[0] ? list : "no parameters");
        } else if (ot != H5O_TYPE_DATASET && !(kind == K_GRAPH && !strcmp(m, "nodes"))) {
            st = nodefail(r, QSNN_ERR_FORMAT, node, "'%s' is not a dataset", m);
        }
    }
    namelist_free(&l);
    if (st) return st;
    for (int k = 0; k < rule->n_req; k++) {
        const char *m = rule->names[k];
        const H5O_type_t want = (kind == K_GRAPH && !strcmp(m, "nodes")) ? H5O_TYPE_GROUP : H5O_TYPE_DATASET;
        if (obj_type(g, m) != want)
            return nodefail(r, QSNN_ERR_FORMAT, node, "%s '%s' is missing",
                            want == H5O_TYPE_GROUP ? "group" : "dataset", m);
    }
    return QSNN_OK;
}

static int find_node(const nir_graph *G, int parent, const char *local) {
    for (int i = 0; i < G->n; i++) {
        if (G->node[i].parent != parent) continue;
        const char *nm = G->node[i].name;
        if (parent >= 0) nm += strlen(G->node[parent].name) + 1;
        if (!strcmp(nm, local)) return i;
    }
    return -1;
}

/* The node of a nested graph `sub` with kind k (its Input or Output); -1 when none or several. */
static int sub_port(const nir_graph *G, int sub, node_kind k, int *count) {
    int found = -1;
    *count = 0;
    for (int i = 0; i < G->n; i++)
        if (G->node[i].parent == sub && G->node[i].kind == k) {
            found = i;
            ++*count;
        }
    return *count == 1 ? found : -1;
}

static qsnn_status add_edge(reader *r, int a, int b) {
    nir_graph *G = r->g;
    if (G->n_edges == G->cap_edges) {
        int cap = G->cap_edges ? 2 * G->cap_edges : 32;
        int(*e)[2] = realloc(G->edge, (size_t)cap * sizeof *e);
        if (!e) return QSNN_ERR_NOMEM;
        G->edge = e;
        G->cap_edges = cap;
    }
    G->edge[G->n_edges][0] = a;
    G->edge[G->n_edges][1] = b;
    G->n_edges++;
    return QSNN_OK;
}

/* Reads the graph in group `h5` (whose node index is `self`, -1 for the top) into r->g, flattening
 * nested graphs. */
static qsnn_status read_graph(reader *r, const char *h5, const char *gname, int self, int depth) {
    nir_graph *G = r->g;
    if (depth > MAX_DEPTH) return nodefail(r, QSNN_ERR_UNSUPPORTED, gname, "graphs nested deeper than %d", MAX_DEPTH);
    hid_t g = H5Gopen2(r->fid, h5, H5P_DEFAULT), nodes = -1;
    if (g < 0) return qsnn_h5_fail_as(r->ctx, QSNN_ERR_FORMAT, r->file, "cannot open a graph");
    namelist l = {0};
    char(*ends)[NAME_MAX_LEN] = NULL;
    char type[64];
    node_kind kind;
    qsnn_status st = read_type(r, g, gname, type, sizeof type, &kind);
    if (st) goto done;
    if (kind != K_GRAPH) {
        st = nodefail(r, QSNN_ERR_FORMAT, gname, "type is '%s', expected NIRGraph", type);
        goto done;
    }
    if ((st = check_members(r, g, gname, type, kind))) goto done;
    if ((st = qsnn_h5_group_open(r->ctx, r->file, g, "nodes", &nodes))) goto done;
    if ((st = list_links(r, nodes, "cannot list the nodes", &l))) goto done;
    const int first = G->n;
    for (int i = 0; i < l.n; i++) {
        char qname[NAME_MAX_LEN], path[512];
        const int qn = self >= 0 ? snprintf(qname, sizeof qname, "%s/%s", G->node[self].name, l.v[i])
                                 : snprintf(qname, sizeof qname, "%s", l.v[i]);
        if (qn < 0 || qn >= (int)sizeof qname ||
            snprintf(path, sizeof path, "%s/nodes/%s", h5, l.v[i]) >= (int)sizeof path) {
            st = nodefail(r, QSNN_ERR_UNSUPPORTED, l.v[i], "name too long");
            goto done;
        }
        if (G->n == MAX_NODES) {
            st = qsnn_fail(r->ctx, QSNN_ERR_UNSUPPORTED, "%s: more than %d nodes", r->file, MAX_NODES);
            goto done;
        }
        if (obj_type(nodes, l.v[i]) != H5O_TYPE_GROUP) {
            st = nodefail(r, QSNN_ERR_FORMAT, qname, "not a group");
            goto done;
        }
        hid_t ng = H5Gopen2(nodes, l.v[i], H5P_DEFAULT);
        if (ng < 0) {
            st = qsnn_h5_fail(r->ctx, r->file, "cannot open a node");
            goto done;
        }
        nir_node *N = &G->node[G->n];
        memset(N, 0, sizeof *N);
        snprintf(N->name, sizeof N->name, "%s", qname);
        snprintf(N->h5, sizeof N->h5, "%s", path);
        N->parent = self;
        st = read_type(r, ng, qname, N->type, sizeof N->type, &N->kind);
        if (!st && N->kind == K_OTHER)
            st = nodefail(r, QSNN_ERR_UNSUPPORTED, qname,
                          "%s is not supported yet (qsnn imports Input, Affine, Linear, LIF, IF, Flatten, Output "
                          "and nested NIRGraph)",
                          N->type);
        if (!st && N->kind != K_GRAPH) st = check_members(r, ng, qname, N->type, N->kind);
        H5Gclose(ng);
        if (st) goto done;
        N->passthru = N->kind == K_FLATTEN || (self >= 0 && (N->kind == K_INPUT || N->kind == K_OUTPUT));
        G->n++;
    }
    const int last = G->n;
    for (int i = first; i < last; i++)
        if (G->node[i].kind == K_GRAPH) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s", G->node[i].h5);
            if ((st = read_graph(r, sub, G->node[i].name, i, depth + 1))) goto done;
        }

    int rank;
    hsize_t dims[QSNN_H5_MAX_RANK];
    size_t ne;
    if ((st = read_strings(r, g, "edges", gname, &rank, dims, &ends, &ne))) goto done;
    if (ne && !(rank == 2 && dims[1] == 2)) {
        char ds[128];
        qsnn_h5_fmt_dims(ds, sizeof ds, rank, dims);
        st = nodefail(r, QSNN_ERR_FORMAT, gname, "edges has shape %s, expected [E][2]", ds);
        goto done;
    }
    for (size_t e = 0; e < ne / 2; e++) {
        int ab[2];
        for (int k = 0; k < 2; k++) {
            const char *nm = ends[2 * e + k];
            int i = find_node(G, self, nm);
            if (i < 0) {
                st = nodefail(r, QSNN_ERR_FORMAT, gname, "edge %s -> %s names no node '%s'", ends[2 * e],
                              ends[2 * e + 1], nm);
                goto done;
            }
            if (G->node[i].kind == K_GRAPH) { /* into a nested graph: its Input; out of it: its Output */
                int count;
                const int port = sub_port(G, i, k ? K_INPUT : K_OUTPUT, &count);
                if (port < 0) {
                    st = nodefail(r, QSNN_ERR_UNSUPPORTED, G->node[i].name,
                                  "nested graph with %d %s nodes (one expected)", count, k ? "Input" : "Output");
                    goto done;
                }
                i = port;
            }
            ab[k] = i;
        }
        if ((st = add_edge(r, ab[0], ab[1]))) goto done;
    }
done:
    qsnn_free(r->ctx, ends);
    namelist_free(&l);
    if (nodes >= 0) H5Gclose(nodes);
    H5Gclose(g);
    return st;
}

/* Refuses cycles (recurrent subgraphs), branches and merges; fills n_in, n_out, succ. */
static qsnn_status check_chain_shape(reader *r) {
    nir_graph *G = r->g;
    for (int i = 0; i < G->n; i++) G->node[i].n_in = G->node[i].n_out = 0, G->node[i].succ = -1;
    for (int e = 0; e < G->n_edges; e++) {
        G->node[G->edge[e][0]].n_out++;
        G->node[G->edge[e][0]].succ = G->edge[e][1];
        G->node[G->edge[e][1]].n_in++;
    }
    /* Cycle: a DFS with colours (0 white, 1 on the stack, 2 done); iterative over the edge list. */
    int *color = calloc((size_t)G->n + 1, sizeof *color), *stack = calloc((size_t)G->n + 1, sizeof *stack),
        *next_e = calloc((size_t)G->n + 1, sizeof *next_e);
    if (!color || !stack || !next_e) {
        free(color), free(stack), free(next_e);
        return QSNN_ERR_NOMEM;
    }
    int cyc = -1;
    for (int s = 0; s < G->n && cyc < 0; s++) {
        if (color[s]) continue;
        int sp = 0;
        stack[sp++] = s;
        color[s] = 1;
        next_e[s] = 0;
        while (sp && cyc < 0) {
            const int u = stack[sp - 1];
            int e = next_e[u];
            while (e < G->n_edges && G->edge[e][0] != u) e++;
            if (e == G->n_edges) {
                color[u] = 2;
                sp--;
                continue;
            }
            next_e[u] = e + 1;
            const int v = G->edge[e][1];
            if (color[v] == 1) cyc = v;
            else if (!color[v]) {
                color[v] = 1;
                next_e[v] = 0;
                stack[sp++] = v;
            }
        }
    }
    free(color), free(stack), free(next_e);
    if (cyc >= 0) {
        const int sub = G->node[cyc].parent;
        if (sub >= 0)
            return nodefail(r, QSNN_ERR_UNSUPPORTED, G->node[sub].name,
                            "recurrent subgraph (a cycle through '%s') is not supported: qsnn has no recurrent "
                            "layers yet",
                            G->node[cyc].name);
        return nodefail(r, QSNN_ERR_UNSUPPORTED, G->node[cyc].name,
                        "the graph has a cycle through this node (recurrence is not supported yet)");
    }
    for (int i = 0; i < G->n; i++) {
        const nir_node *N = &G->node[i];
        if (N->kind == K_GRAPH) continue;
        if (N->n_out > 1)
            return nodefail(r, QSNN_ERR_UNSUPPORTED, N->name, "feeds %d nodes; qsnn imports a chain (no branches)",
                            N->n_out);
        if (N->n_in > 1)
            return nodefail(r, QSNN_ERR_UNSUPPORTED, N->name, "has %d incoming edges; qsnn imports a chain (no merges)",
                            N->n_in);
    }
    return QSNN_OK;
}

/* A per-neuron parameter: n entries into *v (allocated). broadcast: a single value (shape [] or [1],
 * as snnTorch writes a layer-wide β) stands for every neuron. */
static qsnn_status read_vec(reader *r, hid_t g, const char *node, const char *name, int n, int broadcast,
                            double **v) {
    int rank;
    hsize_t dims[QSNN_H5_MAX_RANK];
    size_t cnt;
    qsnn_status st = read_numbers(r, g, name, node, &rank, dims, v, &cnt);
    if (st) return st;
    if (rank == 1 && dims[0] == (hsize_t)n) return QSNN_OK;
    if (broadcast && cnt == 1 && (rank == 0 || (rank == 1 && dims[0] == 1))) {
        double *all = qsnn_malloc(r->ctx, (size_t)n * sizeof *all);
        if (!all) st = QSNN_ERR_NOMEM;
        for (int j = 0; all && j < n; j++) all[j] = (*v)[0];
        qsnn_free(r->ctx, *v);
        *v = all;
        return st;
    }
    char ds[128];
    qsnn_h5_fmt_dims(ds, sizeof ds, rank, dims);
    qsnn_free(r->ctx, *v);
    *v = NULL;
    return nodefail(r, QSNN_ERR_MISMATCH, node, "%s has shape %s, expected [%d] (one per neuron%s)", name, ds, n,
                    broadcast ? ", or one value for all" : "");
}

/* Product of a `shape` dataset (Input/Output), which must hold positive integers. */
static qsnn_status read_shape_size(reader *r, hid_t g, const char *node, long long *size) {
    int rank;
    hsize_t dims[QSNN_H5_MAX_RANK];
    size_t cnt;
    double *v = NULL;
    qsnn_status st = read_numbers(r, g, "shape", node, &rank, dims, &v, &cnt);
    if (st) return st;
    long long p = 1;
    if (rank > 1 || cnt < 1) st = nodefail(r, QSNN_ERR_FORMAT, node, "shape must be a list of sizes");
    for (size_t i = 0; i < cnt && !st; i++) {
        if (!(v[i] >= 1 && v[i] <= 1e9 && v[i] == floor(v[i])))
            st = nodefail(r, QSNN_ERR_FORMAT, node, "shape[%zu] = %g is not a positive integer", i, v[i]);
        else if ((p *= (long long)v[i]) > 1000000000LL)
            st = nodefail(r, QSNN_ERR_UNSUPPORTED, node, "shape is too large");
    }
    qsnn_free(r->ctx, v);
    *size = p;
    return st;
}

/* Optional metadata dataset readers: 0 when absent, 1 when read, <0 status on error. */
static int meta_f64(reader *r, hid_t md, const char *node, const char *name, double *out, qsnn_status *st) {
    if (md < 0 || obj_type(md, name) != H5O_TYPE_DATASET) return 0;
    int rank;
    hsize_t dims[QSNN_H5_MAX_RANK];
    double *v = NULL;
    size_t cnt;
    char full[96];
    snprintf(full, sizeof full, "metadata/%s", name);
    if ((*st = read_numbers(r, md, name, node, &rank, dims, &v, &cnt))) return -1;
    if (cnt != 1) {
        qsnn_free(r->ctx, v);
        *st = nodefail(r, QSNN_ERR_FORMAT, node, "%s holds %zu values, expected one", full, cnt);
        return -1;
    }
    *out = v[0];
    qsnn_free(r->ctx, v);
    return 1;
}

static int meta_str(reader *r, hid_t md, const char *name, char *out, size_t size, qsnn_status *st) {
    if (md < 0 || obj_type(md, name) != H5O_TYPE_DATASET) return 0;
    char *s = NULL;
    if ((*st = qsnn_h5_read_str(r->ctx, r->file, md, name, &s))) return -1;
    snprintf(out, size, "%s", s);
    qsnn_free(r->ctx, s);
    return 1;
}

static hid_t open_meta(hid_t g) {
    return obj_type(g, "metadata") == H5O_TYPE_GROUP ? H5Gopen2(g, "metadata", H5P_DEFAULT) : -1;
}

/* Weight node (Affine / Linear) into layer L; `in` is the size of its input. */
static qsnn_status read_weights(reader *r, const nir_node *N, int in, qsnn_nir_layer *L) {
    hid_t g = H5Gopen2(r->fid, N->h5, H5P_DEFAULT), md = -1;
    if (g < 0) return qsnn_h5_fail(r->ctx, r->file, "cannot open a node");
    double *w = NULL, *b = NULL;
    int rank;
    hsize_t dims[QSNN_H5_MAX_RANK];
    size_t cnt;
    char ds[128];
    snprintf(L->fc_node, sizeof L->fc_node, "%s", N->name);
    qsnn_status st = read_numbers(r, g, "weight", N->name, &rank, dims, &w, &cnt);
    if (st) goto done;
    qsnn_h5_fmt_dims(ds, sizeof ds, rank, dims);
    if (rank != 2 || dims[0] < 1 || dims[0] > 1000000 || dims[1] < 1) {
        st = nodefail(r, QSNN_ERR_MISMATCH, N->name, "weight has shape %s, expected [out][in]", ds);
        goto done;
    }
    if (dims[1] != (hsize_t)in) {
        st = nodefail(r, QSNN_ERR_MISMATCH, N->name, "weight has shape %s, its input has %d values", ds, in);
        goto done;
    }
    L->out = (int)dims[0];
    L->in = in;
    if (N->kind == K_AFFINE && (st = read_vec(r, g, N->name, "bias", L->out, 0, &b))) goto done;
    const size_t nw = (size_t)L->out * (size_t)L->in;
    L->W = qsnn_malloc(r->ctx, nw * sizeof *L->W);
    if (b) L->b = qsnn_malloc(r->ctx, (size_t)L->out * sizeof *L->b);
    if (!L->W || (b && !L->b)) {
        st = QSNN_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < nw; i++) L->W[i] = (float)w[i];
    for (int o = 0; b && o < L->out; o++) L->b[o] = (float)b[o];

    md = open_meta(g);
    double v;
    char s[64];
    int k = meta_f64(r, md, N->name, "weight_quant_bits", &v, &st);
    if (k < 0) goto done;
    if (k) {
        namelist ml;
        if ((st = list_links(r, md, "cannot list a node's metadata", &ml))) goto done;
        for (int i = 0; i < ml.n && !st; i++) {
            const char *pre = "weight_quant_learned_";
            if (strncmp(ml.v[i], pre, strlen(pre)) != 0 || L->n_learned == QSNN_NIR_MAX_LEARNED) continue;
            int lr;
            hsize_t ld[QSNN_H5_MAX_RANK];
            double *lv = NULL;
            size_t cnt;
            if ((st = read_numbers(r, md, ml.v[i], N->name, &lr, ld, &lv, &cnt))) break;
            float *f = qsnn_malloc(r->ctx, (cnt ? cnt : 1) * sizeof *f);
            if (!f) st = QSNN_ERR_NOMEM;
            for (size_t j = 0; f && j < cnt; j++) f[j] = (float)lv[j];
            qsnn_free(r->ctx, lv);
            if (f) {
                snprintf(L->learned_name[L->n_learned], sizeof L->learned_name[0], "%.31s", ml.v[i] + strlen(pre));
                L->learned[L->n_learned] = f;
                L->n_learned_values[L->n_learned++] = cnt;
            }
        }
        namelist_free(&ml);
        if (st) goto done;
        L->has_weight_quant = 1;
        L->weight_quant.bits = (int)v;
        snprintf(L->weight_quant.method, sizeof L->weight_quant.method, "uniform_symmetric");
        L->weight_quant.granularity = QSNN_WQ_PER_CHANNEL;
        if ((k = meta_str(r, md, "weight_quant_method", s, sizeof s, &st)) < 0) goto done;
        if (k) snprintf(L->weight_quant.method, sizeof L->weight_quant.method, "%.31s", s);
        if ((k = meta_f64(r, md, N->name, "weight_quant_pow2", &v, &st)) < 0) goto done;
        L->weight_quant.pow2 = k && v != 0;
        if ((k = meta_str(r, md, "weight_quant_granularity", s, sizeof s, &st)) < 0) goto done;
        if (k) {
            if (!strcmp(s, "per_tensor")) L->weight_quant.granularity = QSNN_WQ_PER_TENSOR;
            else if (!strcmp(s, "per_channel")) L->weight_quant.granularity = QSNN_WQ_PER_CHANNEL;
            else {
                st = nodefail(r, QSNN_ERR_FORMAT, N->name, "metadata/weight_quant_granularity '%s' is unknown", s);
                goto done;
            }
        }
    }
done:
    if (md >= 0) H5Gclose(md);
    H5Gclose(g);
    qsnn_free(r->ctx, w);
    qsnn_free(r->ctx, b);
    return st;
}

/* The index of the first entry differing from entry 0, or -1. */
static long first_diff(const double *v, int n) {
    for (int i = 1; i < n; i++)
        if (v[i] != v[0]) return i;
    return -1;
}

/* Per-neuron β_j = 1 - dt/τ_j and θ_j = v_threshold_j, or qsnn's metadata values as stored (checked
 * against them). dt: the file's (have_dt) or the node's metadata, else the import option or default. */
static qsnn_status read_per_neuron(reader *r, const nir_node *N, hid_t md, const qsnn_nir_import_opts *o,
                                   const double *tau, const double *vt, int is_if, double file_dt, int have_dt,
                                   qsnn_nir_layer *L) {
    const int n = L->out;
    qsnn_status st = QSNN_OK;
    double mdt = 0.0, *mb = NULL, *mt = NULL;
    if (meta_f64(r, md, N->name, "dt", &mdt, &st) < 0) return st;
    const double dt = mdt > 0 ? mdt : have_dt ? file_dt : (o && o->dt > 0 ? o->dt : QSNN_NIR_DEFAULT_DT);
    L->beta_n = qsnn_malloc(r->ctx, (size_t)n * sizeof(float));
    L->theta_n = qsnn_malloc(r->ctx, (size_t)n * sizeof(float));
    if (!L->beta_n || !L->theta_n) return QSNN_ERR_NOMEM;
    if (md >= 0 && obj_type(md, "beta_per_neuron") == H5O_TYPE_DATASET &&
        (st = read_vec(r, md, N->name, "beta_per_neuron", n, 0, &mb)))
        goto done;
    if (md >= 0 && obj_type(md, "theta_per_neuron") == H5O_TYPE_DATASET &&
        (st = read_vec(r, md, N->name, "theta_per_neuron", n, 0, &mt)))
        goto done;
    for (int j = 0; j < n && !st; j++) {
        double b = 1.0;
        if (!is_if) {
            if (!(tau[j] >= dt) || !isfinite(tau[j])) {
                st = nodefail(r, QSNN_ERR_UNSUPPORTED, N->name, "tau[%d] = %g must be finite and >= dt = %g", j, tau[j], dt);
                break;
            }
            b = 1.0 - dt / tau[j];
        }
        if (mb && (!(mb[j] >= 0.0 && mb[j] <= 1.0) || fabs(mb[j] - b) > 1e-4)) {
            st = nodefail(r, QSNN_ERR_FORMAT, N->name, "metadata/beta_per_neuron[%d] = %.9g disagrees with tau (%.9g)",
                          j, mb[j], b);
            break;
        }
        if (mt && (!(mt[j] > 0) || fabs(mt[j] - vt[j]) > 1e-6 * vt[j])) {
            st = nodefail(r, QSNN_ERR_FORMAT, N->name,
                          "metadata/theta_per_neuron[%d] = %.9g disagrees with v_threshold (%.9g)", j, mt[j], vt[j]);
            break;
        }
        L->beta_n[j] = (float)(mb ? mb[j] : b);
        L->theta_n[j] = (float)(mt ? mt[j] : vt[j]);
    }
done:
    qsnn_free(r->ctx, mb);
    qsnn_free(r->ctx, mt);
    return st;
}

/* Neuron node (LIF / IF) into layer L (whose weights are read): β, θ, reset, gain folding. */
static qsnn_status read_neurons(reader *r, const nir_node *N, const qsnn_nir_import_opts *o, double file_dt,
                                int have_file_dt, qsnn_nir_layer *L) {
    hid_t g = H5Gopen2(r->fid, N->h5, H5P_DEFAULT), md = -1;
    if (g < 0) return qsnn_h5_fail(r->ctx, r->file, "cannot open a node");
    const int n = L->out, is_if = N->kind == K_IF;
    double *tau = NULL, *rr = NULL, *vl = NULL, *vt = NULL, *vr = NULL;
    snprintf(L->lif_node, sizeof L->lif_node, "%s", N->name);
    qsnn_status st;
    if (!is_if && (st = read_vec(r, g, N->name, "tau", n, 1, &tau))) goto done;
    if ((st = read_vec(r, g, N->name, "r", n, 1, &rr))) goto done;
    if (!is_if && (st = read_vec(r, g, N->name, "v_leak", n, 1, &vl))) goto done;
    if ((st = read_vec(r, g, N->name, "v_threshold", n, 1, &vt))) goto done;
    if (obj_type(g, "v_reset") == H5O_TYPE_DATASET && (st = read_vec(r, g, N->name, "v_reset", n, 1, &vr))) goto done;
    for (int j = 0; j < n; j++) {
        if (vl && vl[j] != 0.0) {
            st = nodefail(r, QSNN_ERR_UNSUPPORTED, N->name,
                          "v_leak[%d] = %g; qsnn's LIF has no leak potential (v_leak must be 0)", j, vl[j]);
            goto done;
        }
        if (vr && vr[j] != 0.0) {
            st = nodefail(r, QSNN_ERR_UNSUPPORTED, N->name, "v_reset[%d] = %g; qsnn resets to 0 (v_reset must be 0)", j,
                          vr[j]);
            goto done;
        }
    }
    for (int j = 0; j < n; j++)
        if (!(vt[j] > 0.0) || (float)vt[j] <= 0.0f || !isfinite((float)vt[j])) {
            st = nodefail(r, QSNN_ERR_UNSUPPORTED, N->name, "v_threshold[%d] = %g; qsnn needs a threshold > 0", j, vt[j]);
            goto done;
        }
    L->theta = (float)vt[0];

    md = open_meta(g);
    /* τ or v_threshold differing across neurons (or qsnn's per-neuron metadata): a per-neuron layer */
    if ((tau && first_diff(tau, n) >= 0) || first_diff(vt, n) >= 0 ||
        (md >= 0 && obj_type(md, "theta_per_neuron") == H5O_TYPE_DATASET)) {
        st = read_per_neuron(r, N, md, o, tau, vt, is_if, have_file_dt ? file_dt : 0.0, have_file_dt, L);
        if (st) goto done;
    }
    double mdt = 0, mbeta = 0;
    int k = meta_f64(r, md, N->name, "dt", &mdt, &st);
    if (k < 0) goto done;
    if (k && !(mdt > 0)) {
        st = nodefail(r, QSNN_ERR_FORMAT, N->name, "metadata/dt = %g must be > 0", mdt);
        goto done;
    }
    const double dt = k ? mdt : have_file_dt ? file_dt : (o && o->dt > 0 ? o->dt : QSNN_NIR_DEFAULT_DT);
    double beta_d; /* β (neuron 0's in per-neuron layers) */
    if (is_if) {
        beta_d = 1.0;
    } else {
        if (!(tau[0] > 0.0)) {
            st = nodefail(r, QSNN_ERR_UNSUPPORTED, N->name, "tau = %g must be > 0", tau[0]);
            goto done;
        }
        if (tau[0] < dt) {
            st = nodefail(r, QSNN_ERR_UNSUPPORTED, N->name,
                          "tau = %g is below dt = %g (beta = 1 - dt/tau would be negative; see --dt)", tau[0], dt);
            goto done;
        }
        beta_d = 1.0 - dt / tau[0];
    }
    L->beta = (float)beta_d;
    if ((k = meta_f64(r, md, N->name, "beta", &mbeta, &st)) < 0) goto done;
    if (k && L->beta_n) { /* per-neuron layers: the reference value, checked against nothing */
        L->beta = (float)mbeta;
        L->beta_from_meta = 1;
    } else if (k) {
        /* Integer-exact models export β rounded to QSNN_INT_BETA_BITS fractional bits. */
        if (!(mbeta >= 0.0 && mbeta <= 1.0) || fabs(mbeta - beta_d) > 1.0 / (1 << QSNN_INT_BETA_BITS)) {
            st = nodefail(r, QSNN_ERR_FORMAT, N->name, "metadata/beta = %.9g disagrees with tau (1 - dt/tau = %.9g)",
                          mbeta, beta_d);
            goto done;
        }
        L->beta = (float)mbeta; /* as stored: bit for bit */
        L->beta_from_meta = 1;
    }
    double mtheta;
    if ((k = meta_f64(r, md, N->name, "theta", &mtheta, &st)) < 0) goto done;
    if (k && L->theta_n) {
        if (!(mtheta > 0) || !isfinite((float)mtheta)) {
            st = nodefail(r, QSNN_ERR_FORMAT, N->name, "metadata/theta = %.9g must be > 0", mtheta);
            goto done;
        }
        L->theta = (float)mtheta;
    } else if (k) {
        if (!(mtheta > 0) || !isfinite((float)mtheta) || fabs(mtheta - vt[0]) > 0.5 * vt[0]) {
            st = nodefail(r, QSNN_ERR_FORMAT, N->name, "metadata/theta = %.9g disagrees with v_threshold = %.9g",
                          mtheta, vt[0]);
            goto done;
        }
        L->theta = (float)mtheta;
    }
    /* Input gain r·dt/τ: 1 is qsnn's convention (U += I); anything else is folded into the weights. */
    for (int j = 0; j < n; j++) {
        const double gain = rr[j] * dt / (is_if ? 1.0 : tau[j]);
        if (!(gain > 0) || !isfinite(gain)) {
            st = nodefail(r, QSNN_ERR_UNSUPPORTED, N->name,
                          "r[%d] = %g gives an input gain r*dt/tau = %g (must be > 0)", j, rr[j], gain);
            goto done;
        }
        if (fabs(gain - 1.0) <= QSNN_NIR_GAIN_TOL) continue;
        L->folded = 1;
        float *w = L->W + (size_t)j * (size_t)L->in;
        for (int i = 0; i < L->in; i++) w[i] = (float)((double)w[i] * gain);
        if (L->b) L->b[j] = (float)((double)L->b[j] * gain);
    }
    char s[64];
    L->reset = QSNN_RESET_ZERO; /* NIR's own semantics: v = v_reset (0) after a spike */
    if ((k = meta_str(r, md, "reset", s, sizeof s, &st)) < 0) goto done;
    if (k) {
        const int rs = (int)qsnn_reset_find(s);
        if (rs < 0) {
            st = nodefail(r, QSNN_ERR_FORMAT, N->name, "metadata/reset '%s' is unknown (subtract, zero, none)", s);
            goto done;
        }
        L->reset = (qsnn_reset)rs;
        L->reset_from_meta = 1;
    }
    if (o && o->reset >= 0) L->reset = (qsnn_reset)o->reset;
    if ((k = meta_str(r, md, "neuron", s, sizeof s, &st)) < 0) goto done;
    if (k && strcmp(s, "lif") != 0) {
        st = nodefail(r, QSNN_ERR_UNSUPPORTED, N->name, "metadata/neuron '%s': only lif is imported", s);
        goto done;
    }
    double v;
    if ((k = meta_f64(r, md, N->name, "state_quant_bits", &v, &st)) < 0) goto done;
    if (k && v != 0) {
        qsnn_state_quant_cfg *q = &L->state_quant;
        memset(q, 0, sizeof *q);
        L->has_state_quant = 1;
        q->bits = (int)v;
        q->upper_limit = 0.2;
        int kk;
        if ((kk = meta_str(r, md, "state_quant_grid", s, sizeof s, &st)) < 0) goto done;
        if (kk) {
            const int gi = qsnn_grid_find(s);
            if (gi < 0) {
                st = nodefail(r, QSNN_ERR_FORMAT, N->name, "metadata/state_quant_grid '%s' is unknown", s);
                goto done;
            }
            q->grid = (qsnn_grid)gi;
        }
        if (meta_f64(r, md, N->name, "state_quant_lower_limit", &q->lower_limit, &st) < 0) goto done;
        if (meta_f64(r, md, N->name, "state_quant_upper_limit", &q->upper_limit, &st) < 0) goto done;
        if (meta_f64(r, md, N->name, "state_quant_multiplier", &q->multiplier, &st) < 0) goto done;
        if ((kk = meta_f64(r, md, N->name, "state_quant_ste_clip", &v, &st)) < 0) goto done;
        if (kk) q->ste_clip = v != 0;
        if (obj_type(md, "state_quant_levels") == H5O_TYPE_DATASET) {
            double *lv = NULL;
            int lr;
            hsize_t ldims[QSNN_H5_MAX_RANK];
            size_t cnt;
            if ((st = read_numbers(r, md, "state_quant_levels", N->name, &lr, ldims, &lv, &cnt))) goto done;
            if (q->bits >= 1 && q->bits <= 16 && cnt == ((size_t)1 << q->bits) &&
                (L->levels = qsnn_malloc(r->ctx, cnt * sizeof *L->levels))) {
                for (size_t i = 0; i < cnt; i++) L->levels[i] = (float)lv[i];
                L->n_levels = (int)cnt;
            }
            qsnn_free(r->ctx, lv);
        }
        if (obj_type(md, "state_quant_learned") == H5O_TYPE_DATASET) { /* qil, qn, cpq: the learned values */
            double *pv = NULL;
            int pr;
            hsize_t pdims[QSNN_H5_MAX_RANK];
            size_t cnt;
            if ((st = read_numbers(r, md, "state_quant_learned", N->name, &pr, pdims, &pv, &cnt))) goto done;
            if (cnt == 2 && isfinite(pv[0]) && isfinite(pv[1])) q->p[0] = pv[0], q->p[1] = pv[1];
            qsnn_free(r->ctx, pv);
        }
    }
done:
    if (md >= 0) H5Gclose(md);
    H5Gclose(g);
    qsnn_free(r->ctx, tau);
    qsnn_free(r->ctx, rr);
    qsnn_free(r->ctx, vl);
    qsnn_free(r->ctx, vt);
    qsnn_free(r->ctx, vr);
    return st;
}

void qsnn_nir_model_free(qsnn_ctx *ctx, qsnn_nir_model *m) {
    if (!m) return;
    for (int l = 0; l < QSNN_MAX_LAYERS; l++) {
        qsnn_free(ctx, m->layer[l].W);
        qsnn_free(ctx, m->layer[l].b);
        qsnn_free(ctx, m->layer[l].levels);
        qsnn_free(ctx, m->layer[l].beta_n);
        qsnn_free(ctx, m->layer[l].theta_n);
        for (int k = 0; k < m->layer[l].n_learned; k++) qsnn_free(ctx, m->layer[l].learned[k]);
    }
    memset(m, 0, sizeof *m);
}

/* Walks the chain from the Input to the Output and reads the layers. */
static qsnn_status build_model(reader *r, const qsnn_nir_import_opts *o, double file_dt, int have_file_dt,
                               qsnn_nir_model *m) {
    nir_graph *G = r->g;
    int in_node = -1, out_node = -1, n_in = 0, n_out = 0;
    for (int i = 0; i < G->n; i++) {
        if (G->node[i].parent >= 0) continue;
        if (G->node[i].kind == K_INPUT) in_node = i, n_in++;
        if (G->node[i].kind == K_OUTPUT) out_node = i, n_out++;
    }
    if (n_in != 1 || n_out != 1)
        return qsnn_fail(r->ctx, QSNN_ERR_UNSUPPORTED,
                         "%s: the graph has %d Input and %d Output nodes (one of each expected)", r->file, n_in, n_out);
    long long size;
    hid_t g = H5Gopen2(r->fid, G->node[in_node].h5, H5P_DEFAULT);
    if (g < 0) return qsnn_h5_fail(r->ctx, r->file, "cannot open the Input node");
    qsnn_status st = read_shape_size(r, g, G->node[in_node].name, &size);
    H5Gclose(g);
    if (st) return st;
    m->n_inputs = (int)size;
    int width = m->n_inputs, want_neurons = 0, visited = 1;
    const char *prev = G->node[in_node].name;
    char *on_chain = calloc((size_t)G->n, 1);
    if (!on_chain) return QSNN_ERR_NOMEM;
    on_chain[in_node] = on_chain[out_node] = 1;
    for (int i = G->node[in_node].succ; i != out_node && i >= 0 && visited <= G->n; i = G->node[i].succ, visited++)
        on_chain[i] = 1;
    for (int i = 0; i < G->n; i++)
        if (!on_chain[i] && G->node[i].kind != K_GRAPH) {
            free(on_chain);
            return nodefail(r, QSNN_ERR_UNSUPPORTED, G->node[i].name,
                            "is not on the path from the Input to the Output");
        }
    free(on_chain);
    visited = 1;
    for (int i = G->node[in_node].succ; i != out_node; i = G->node[i].succ) {
        if (i < 0)
            return nodefail(r, QSNN_ERR_UNSUPPORTED, prev, "the chain from the Input ends here, before the Output");
        if (++visited > G->n) return qsnn_fail(r->ctx, QSNN_ERR_FORMAT, "%s: the graph does not end", r->file);
        const nir_node *N = &G->node[i];
        if (N->passthru) continue;
        if (N->kind == K_INPUT || N->kind == K_OUTPUT)
            return nodefail(r, QSNN_ERR_UNSUPPORTED, N->name, "a second %s inside the chain", N->type);
        if (N->kind == K_AFFINE || N->kind == K_LINEAR) {
            if (want_neurons)
                return nodefail(r, QSNN_ERR_UNSUPPORTED, N->name,
                                "follows the weights '%s' directly; qsnn layers are weights then neurons (LIF or IF)",
                                prev);
            if (m->n_layers == QSNN_MAX_LAYERS)
                return nodefail(r, QSNN_ERR_UNSUPPORTED, N->name, "more than %d layers", QSNN_MAX_LAYERS);
            if ((st = read_weights(r, N, width, &m->layer[m->n_layers]))) return st;
            want_neurons = 1;
        } else if (N->kind == K_LIF || N->kind == K_IF) {
            if (!want_neurons)
                return nodefail(r, QSNN_ERR_UNSUPPORTED, N->name,
                                "%s without weights before it; qsnn layers are Affine/Linear then LIF/IF", N->type);
            qsnn_nir_layer *L = &m->layer[m->n_layers];
            if ((st = read_neurons(r, N, o, file_dt, have_file_dt, L))) return st;
            width = L->out;
            m->n_layers++;
            want_neurons = 0;
        }
        prev = N->name;
    }
    if (want_neurons)
        return nodefail(r, QSNN_ERR_UNSUPPORTED, prev,
                        "weights without LIF/IF neurons after them (qsnn's output layer spikes)");
    if (m->n_layers == 0) return qsnn_fail(r->ctx, QSNN_ERR_UNSUPPORTED, "%s: the graph has no layers", r->file);
    g = H5Gopen2(r->fid, G->node[out_node].h5, H5P_DEFAULT);
    if (g < 0) return qsnn_h5_fail(r->ctx, r->file, "cannot open the Output node");
    st = read_shape_size(r, g, G->node[out_node].name, &size);
    H5Gclose(g);
    if (st) return st;
    if (size != width)
        return nodefail(r, QSNN_ERR_MISMATCH, G->node[out_node].name,
                        "shape has %lld values, the last layer %d neurons", size, width);
    return QSNN_OK;
}

qsnn_status qsnn_nir_import(qsnn_ctx *ctx, const char *path, const qsnn_nir_import_opts *opts, qsnn_nir_model *out) {
    if (!out) return qsnn_fail(ctx, QSNN_ERR_ARG, "NIR import: no model given");
    memset(out, 0, sizeof *out);
    if (!path || !*path) return qsnn_fail(ctx, QSNN_ERR_ARG, "NIR import: no path given");
    if (opts && opts->dt != 0 && !(opts->dt > 0 && isfinite(opts->dt)))
        return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: dt = %g must be finite and > 0", path, opts->dt);
    hid_t f;
    qsnn_status st = qsnn_h5_open(ctx, path, 0, &f);
    if (st) return st;
    nir_graph *G = qsnn_calloc(ctx, 1, sizeof *G);
    qsnn_nir_model *m = qsnn_calloc(ctx, 1, sizeof *m);
    hid_t md = -1;
    if (!G || !m) {
        st = QSNN_ERR_NOMEM;
        goto done;
    }
    reader r = {ctx, path, f, G};
    if (obj_type(f, "node") != H5O_TYPE_GROUP) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: not a NIR file (no group /node)", path);
        goto done;
    }
    if (obj_type(f, "version") == H5O_TYPE_DATASET) {
        char *v = NULL;
        if ((st = qsnn_h5_read_str(ctx, path, f, "version", &v))) goto done;
        snprintf(m->version, sizeof m->version, "%s", v);
        qsnn_free(ctx, v);
    }
    if ((st = read_graph(&r, "/node", "node", -1, 0))) goto done;
    if ((st = check_chain_shape(&r))) goto done;
    double file_dt = 0;
    int have_dt = 0;
    { /* graph-level dt (qsnn writes it; others may) */
        hid_t top = H5Gopen2(f, "/node", H5P_DEFAULT);
        if (top >= 0) {
            md = open_meta(top);
            H5Gclose(top);
        }
        int k = meta_f64(&r, md, "node", "dt", &file_dt, &st);
        if (k < 0) goto done;
        have_dt = k && file_dt > 0;
        double v;
        if ((k = meta_f64(&r, md, "node", "input_bits", &v, &st)) < 0) goto done;
        if (k) m->input_bits = (int)v;
        if ((k = meta_f64(&r, md, "node", "integer", &v, &st)) < 0) goto done;
        if (k) m->integer = v != 0;
        if ((k = meta_f64(&r, md, "node", "current_bits", &v, &st)) < 0) goto done;
        if (k) m->current_bits = (int)v;
        if ((k = meta_f64(&r, md, "node", "current_range", &v, &st)) < 0) goto done;
        if (k) m->current_range = v;
    }
    m->dt = have_dt ? file_dt : (opts && opts->dt > 0 ? opts->dt : QSNN_NIR_DEFAULT_DT);
    m->dt_from_meta = have_dt;
    if ((st = build_model(&r, opts, file_dt, have_dt, m))) goto done;
done:
    if (md >= 0) H5Gclose(md);
    H5Fclose(f);
    if (G) free(G->edge);
    qsnn_free(ctx, G);
    if (m) {
        if (st) qsnn_nir_model_free(ctx, m);
        else *out = *m;
        qsnn_free(ctx, m);
    }
    return st;
}

/* ============================================================================================== */
/* model → network                                                                                */
/* ============================================================================================== */

/* Settings of two quantized layers that qsnn keeps once per network (all but the bit width). */
static int same_wq(const qsnn_weight_quant_cfg *a, const qsnn_weight_quant_cfg *b) {
    return a->granularity == b->granularity && a->pow2 == b->pow2 && strcmp(a->method, b->method) == 0;
}
static int same_sq(const qsnn_state_quant_cfg *a, const qsnn_state_quant_cfg *b) {
    return a->grid == b->grid && a->lower_limit == b->lower_limit && a->upper_limit == b->upper_limit &&
           a->multiplier == b->multiplier && a->ste_clip == b->ste_clip;
}

qsnn_status qsnn_nir_net_cfg(qsnn_ctx *ctx, const qsnn_nir_model *m, qsnn_net_cfg *cfg) {
    if (!m || m->n_layers < 1 || m->n_layers > QSNN_MAX_LAYERS)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "NIR import: an empty model");
    const qsnn_nir_layer *L0 = &m->layer[0];
    cfg->n_inputs = m->n_inputs;
    cfg->n_layers = m->n_layers;
    cfg->bias = 0;
    snprintf(cfg->neuron, sizeof cfg->neuron, "lif");
    cfg->neuron_params.beta = L0->beta;
    cfg->neuron_params.theta = L0->theta;
    cfg->neuron_params.reset = L0->reset;
    cfg->input_bits = m->input_bits;
    cfg->integer = m->integer;
    cfg->current_bits = m->current_bits;
    if (m->current_range > 0) cfg->current_range = m->current_range;
    cfg->state_quant.bits = cfg->weight_quant.bits = 0;
    cfg->state_layer_bits.n = cfg->weight_layer_bits.n = 0;
    /* qsnn has one reset rule and one quantizer setting per network, bit widths per layer: the whole
     * mapping from per-node metadata to the configuration lives here. */
    const qsnn_nir_layer *wref = NULL, *sref = NULL;
    int wbits_differ = 0, sbits_differ = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const qsnn_nir_layer *L = &m->layer[l];
        cfg->sizes[l] = L->out;
        cfg->bias |= L->b != NULL;
        cfg->per_neuron |= L->theta_n != NULL;
        if (L->reset != L0->reset)
            return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED,
                             "node '%s' resets by '%s', node '%s' by '%s'; qsnn has one reset rule per network",
                             L->lif_node, qsnn_reset_name(L->reset), L0->lif_node, qsnn_reset_name(L0->reset));
        const int wb = L->has_weight_quant ? L->weight_quant.bits : 0,
                  sb = L->has_state_quant ? L->state_quant.bits : 0;
        cfg->weight_layer_bits.v[l] = wb;
        cfg->state_layer_bits.v[l] = sb;
        if (wb) {
            if (wref && !same_wq(&wref->weight_quant, &L->weight_quant))
                return qsnn_fail(
                    ctx, QSNN_ERR_UNSUPPORTED,
                    "nodes '%s' and '%s' have different weight quantizer settings; qsnn has one per network",
                    wref->fc_node, L->fc_node);
            if (!wref) wref = L;
        }
        if (sb) {
            if (sref && !same_sq(&sref->state_quant, &L->state_quant))
                return qsnn_fail(
                    ctx, QSNN_ERR_UNSUPPORTED,
                    "nodes '%s' and '%s' have different state quantizer settings; qsnn has one per network",
                    sref->lif_node, L->lif_node);
            if (!sref) sref = L;
        }
        wbits_differ |= wb != cfg->weight_layer_bits.v[0];
        sbits_differ |= sb != cfg->state_layer_bits.v[0];
    }
    if (wref) {
        const int bits = wref->weight_quant.bits;
        cfg->weight_quant = wref->weight_quant;
        cfg->weight_quant.bits = wbits_differ ? bits : cfg->weight_layer_bits.v[0];
        if (wbits_differ) cfg->weight_layer_bits.n = m->n_layers;
    }
    if (sref) {
        const int bits = sref->state_quant.bits;
        cfg->state_quant = sref->state_quant;
        cfg->state_quant.bits = sbits_differ ? bits : cfg->state_layer_bits.v[0];
        if (sbits_differ) cfg->state_layer_bits.n = m->n_layers;
    }
    return QSNN_OK; /* checked by qsnn_net_create, after the caller's own settings */
}

/* Copies the model's parameters into net and prepares it; *exact = 1 when what the forward pass uses
 * (weights, bias, state levels) equals the imported values bit for bit. */
static qsnn_status fill_net(qsnn_ctx *ctx, const qsnn_nir_model *m, qsnn_net *net, int *exact) {
    *exact = 1;
    for (int l = 0; l < m->n_layers; l++) {
        const qsnn_nir_layer *S = &m->layer[l];
        qsnn_layer *L = &net->layer[l];
        if (L->in != S->in || L->out != S->out)
            return qsnn_fail(ctx, QSNN_ERR_MISMATCH, "NIR import: layer %d is %dx%d, the network's %dx%d", l, S->out,
                             S->in, L->out, L->in);
        memcpy(L->W, S->W, (size_t)S->in * (size_t)S->out * sizeof *L->W);
        if (L->b) {
            if (S->b) memcpy(L->b, S->b, (size_t)S->out * sizeof *L->b);
            else memset(L->b, 0, (size_t)S->out * sizeof *L->b);
        }
        L->beta = S->beta;
        L->theta = S->theta;
        for (int o = 0; o < L->out; o++) { /* per-neuron networks: uniform layers repeat their value */
            if (L->pn[QSNN_PN_BETA]) L->pn[QSNN_PN_BETA][o] = S->beta_n ? S->beta_n[o] : S->beta;
            if (L->pn[QSNN_PN_THETA]) L->pn[QSNN_PN_THETA][o] = S->theta_n ? S->theta_n[o] : S->theta;
        }
        /* the lsq state grid's learned step is its level at code 1 (levels are step × code) */
        if (qsnn_layer_lsq_state(L) && S->levels && S->n_levels >= 4) L->state_scale = S->levels[S->n_levels / 2 + 1];
        /* qil, qn, cpq: their learned values from metadata (else the grid's initial values) */
        if (qsnn_layer_lq_state(L) && S->has_state_quant && (S->state_quant.p[0] != 0.0 || S->state_quant.p[1] != 0.0))
            L->state_p[0] = (float)S->state_quant.p[0], L->state_p[1] = (float)S->state_quant.p[1];
        /* learned quantizer parameters (LSQ) as exported; others keep the quantizer's initial values */
        for (int k = 0; L->wq_learned && k < L->wq->n_learned; k++) {
            const int ns = qsnn_weight_quant_nscales(&L->wq_cfg, L->out);
            const size_t nk = (size_t)ns * qsnn_wq_group_size(L->wq, &L->wq_cfg, k);
            for (int j = 0; j < S->n_learned; j++)
                if (!strcmp(S->learned_name[j], L->wq->learned_names[k]) && S->n_learned_values[j] == nk)
                    memcpy(L->wq_learned + qsnn_wq_learned_offset(L->wq, &L->wq_cfg, ns, k), S->learned[j],
                           nk * sizeof(float));
        }
    }
    qsnn_status st = qsnn_net_prepare(net);
    if (st) return st;
    for (int l = 0; l < m->n_layers; l++) {
        const qsnn_nir_layer *S = &m->layer[l];
        const qsnn_layer *L = &net->layer[l];
        if (memcmp(L->Wq, S->W, (size_t)L->in * (size_t)L->out * sizeof *L->Wq) != 0) *exact = 0;
        const float *bias = L->bias_fwd ? L->bias_fwd : L->b;
        for (int o = 0; bias && o < L->out; o++)
            if (bias[o] != (S->b ? S->b[o] : 0.0f)) *exact = 0;
        if (S->levels && (!L->sq.enabled || L->sq.n != S->n_levels ||
                          memcmp(L->sq.levels, S->levels, (size_t)S->n_levels * sizeof *S->levels) != 0))
            *exact = 0;
    }
    return QSNN_OK;
}

qsnn_status qsnn_nir_create_net(qsnn_ctx *ctx, const qsnn_nir_model *m, qsnn_net_cfg *cfg, qsnn_net **out,
                                int *wq_dropped) {
    *out = NULL;
    if (wq_dropped) *wq_dropped = 0;
    qsnn_net *net = NULL;
    qsnn_status st = qsnn_net_create(ctx, cfg, &net);
    if (st) return st;
    int exact;
    if ((st = fill_net(ctx, m, net, &exact))) goto fail;
    if (!exact && (cfg->weight_quant.bits || cfg->weight_layer_bits.n) && !cfg->integer) {
        /* The quantizer need not map its own output onto itself bit for bit (a scale recomputed from
         * max|Ŵ| can differ by an ulp): compute with the imported weights as they are. */
        qsnn_net_destroy(&net);
        cfg->weight_quant.bits = 0;
        cfg->weight_layer_bits.n = 0;
        if (wq_dropped) *wq_dropped = 1;
        if ((st = qsnn_net_create(ctx, cfg, &net))) return st;
        if ((st = fill_net(ctx, m, net, &exact))) goto fail;
    }
    if (!exact) {
        st = qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED,
                       "NIR import: the network built from the file's settings does not reproduce its weights, "
                       "biases or state levels bit for bit");
        goto fail;
    }
    *out = net;
    return QSNN_OK;
fail:
    qsnn_net_destroy(&net);
    return st;
}
