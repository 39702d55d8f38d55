#include "io/checkpoint.h"
#include "io/h5atomic.h"
#include "io/h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef QSNN_VERSION
#define QSNN_VERSION "unknown"
#endif

/* Shape of a parameter as stored (dims has room for 4): [out][in] for a dense layer's weight,
 * [out_channels][kh][kw][in_channels/groups] for a convolution's, [n] otherwise. */
static int param_shape(const qsnn_net *net, const qsnn_param *p, hsize_t *dims) {
    int l;
    char kind[32];
    if (sscanf(p->name, "layer%d.%31s", &l, kind) == 2 && l >= 0 && l < net->n_layers && strcmp(kind, "weight") == 0 &&
        net->layer[l].nw == p->n) {
        const qsnn_layer *L = &net->layer[l];
        if (L->kind == QSNN_LAYER_CONV) {
            dims[0] = (hsize_t)L->conv.out_c, dims[1] = (hsize_t)L->conv.kh, dims[2] = (hsize_t)L->conv.kw;
            dims[3] = (hsize_t)(L->conv.in_c / L->conv.groups);
            return 4;
        }
        dims[0] = (hsize_t)L->out;
        dims[1] = (hsize_t)L->in;
        return 2;
    }
    dims[0] = (hsize_t)p->n;
    return 1;
}

/* Index of the first non-finite value, or -1. */
static long long first_nonfinite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return (long long)i;
    return -1;
}

/* Refuses a NaN or infinity read into v (n values of parameter p's shape), naming group/name[index]. */
static qsnn_status check_finite(qsnn_ctx *ctx, const char *path, const char *group, const char *name,
                                const qsnn_net *net, const qsnn_param *p, const float *v, size_t n) {
    const long long bad = first_nonfinite(v, n);
    if (bad < 0) return QSNN_OK;
    hsize_t dims[4];
    if (param_shape(net, p, dims) == 2)
        return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "%s: %s/%s[%lld][%lld] is %g", path, group, name,
                         bad / (long long)dims[1], bad % (long long)dims[1], (double)v[bad]);
    return qsnn_fail(ctx, QSNN_ERR_NUMERIC, "%s: %s/%s[%lld] is %g", path, group, name, bad, (double)v[bad]);
}

/* Refuses a dataset whose shape differs from the parameter's; the message names group/name. */
static qsnn_status check_param_shape(qsnn_ctx *ctx, const char *path, hid_t g, const char *group, const char *name,
                                     const qsnn_net *net, const qsnn_param *p) {
    hsize_t want[4], have[QSNN_H5_MAX_RANK];
    int have_rank;
    const int want_rank = param_shape(net, p, want);
    qsnn_status st = qsnn_h5_dims(ctx, path, g, name, &have_rank, have);
    if (st) return st;
    int same = have_rank == want_rank;
    for (int k = 0; same && k < want_rank; k++) same = have[k] == want[k];
    if (same) return QSNN_OK;
    char hs[128], ws[128];
    qsnn_h5_fmt_dims(hs, sizeof hs, have_rank, have);
    qsnn_h5_fmt_dims(ws, sizeof ws, want_rank, want);
    return qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s: %s/%s has shape %s, the model expects %s", path, group, name, hs, ws);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Index of the parameter called `name` in list, or -1. */
static int find_param(const qsnn_param *list, int np, const char *name) {
    for (int i = 0; i < np; i++)
        if (strcmp(list[i].name, name) == 0) return i;
    return -1;
}

/* Longest dataset name under /optimizer ("layer0.weight" "." "momentum"). */
#define OPT_NAME_MAX 96

/* Programmer errors in an optimizer-state description: every slot names a parameter of the net, has
 * its length and data, and no dataset name repeats. On success, names[k] holds "PARAM.SLOT" and
 * pidx[k] the parameter's index in qsnn_net_params (both caller-allocated with n_slots entries). */
static qsnn_status check_optim_desc(qsnn_ctx *ctx, const char *path, qsnn_net *net, const qsnn_ckpt_optim *o,
                                    char (*names)[OPT_NAME_MAX], int *pidx) {
    qsnn_param list[QSNN_MAX_PARAMS];
    const int np = qsnn_net_params(net, list);
    if (!o->name || !*o->name || o->n_slots < 0 || (o->n_slots > 0 && !o->slots))
        return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: optimizer state: no optimizer name or no slots", path);
    for (int k = 0; k < o->n_slots; k++) {
        const qsnn_ckpt_slot *sl = &o->slots[k];
        if (!sl->param || !sl->slot || !*sl->slot || !sl->data)
            return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: optimizer state entry %d lacks a name or data", path, k);
        const int i = find_param(list, np, sl->param);
        if (i < 0)
            return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: optimizer state for '%s', which is not a parameter of the network",
                             path, sl->param);
        if (list[i].n != sl->n)
            return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: optimizer state %s.%s has %zu values, the parameter %zu", path,
                             sl->param, sl->slot, sl->n, list[i].n);
        const int len = snprintf(names[k], OPT_NAME_MAX, "%s.%s", sl->param, sl->slot);
        if (len < 0 || len >= OPT_NAME_MAX)
            return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: optimizer state name %s.%s is too long", path, sl->param,
                             sl->slot);
        for (int j = 0; j < k; j++)
            if (strcmp(names[j], names[k]) == 0)
                return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: optimizer state %s appears twice", path, names[k]);
        pidx[k] = i;
    }
    return QSNN_OK;
}

/* --- save -------------------------------------------------------------------------------------- */

static qsnn_status save_optim(qsnn_ctx *ctx, const char *path, hid_t f, qsnn_net *net, const qsnn_ckpt_optim *o,
                              char (*names)[OPT_NAME_MAX], const int *pidx) {
    qsnn_param list[QSNN_MAX_PARAMS];
    qsnn_net_params(net, list);
    hid_t g;
    qsnn_status st = qsnn_h5_group_create(ctx, path, f, "optimizer", &g);
    if (st) return st;
    if (!(st = qsnn_h5_write_attr_str(ctx, path, g, "name", o->name)))
        st = qsnn_h5_write_attr_i64(ctx, path, g, "step", (int64_t)o->step);
    for (int k = 0; k < o->n_slots && !st; k++) {
        hsize_t dims[4];
        const int rank = param_shape(net, &list[pidx[k]], dims);
        st = qsnn_h5_write_f32(ctx, path, g, names[k], rank, dims, o->slots[k].data);
    }
    H5Gclose(g);
    return st;
}

static qsnn_status save_layer_info(qsnn_ctx *ctx, const char *path, qsnn_net *net, int l, hid_t layers) {
    const qsnn_layer *L = &net->layer[l];
    char name[32];
    snprintf(name, sizeof name, "layer%d", l);
    hid_t g = -1, d = -1;
    int32_t *codes = NULL;
    float *wq = NULL, *scales = NULL;
    qsnn_state_quant tmpq;
    memset(&tmpq, 0, sizeof tmpq);
    qsnn_status st = qsnn_h5_group_create(ctx, path, layers, name, &g);
    if (st) return st;
    if ((st = qsnn_h5_write_attr_i64(ctx, path, g, "in", L->in))) goto done;
    if ((st = qsnn_h5_write_attr_i64(ctx, path, g, "out", L->out))) goto done;
    if ((st = qsnn_h5_write_attr_str(ctx, path, g, "neuron", L->ops && L->ops->name ? L->ops->name : net->cfg.neuron)))
        goto done;

    if (L->wq) {
        /* Computed from the current master weights (the network's own Ŵ and scales may predate the
         * last optimizer step), without touching the network. */
        qsnn_weight_quant_cfg hard = L->wq_cfg;
        memset(&hard.pass, 0, sizeof hard.pass); /* the inference quantizer, whatever pass came last */
        const qsnn_weight_quant_cfg *wc = &hard;
        /* rows as the quantizer sees W: output neurons (dense) or output channels (conv) */
        const int rows = L->w_rows, cols = (int)(L->nw / L->w_rows);
        const int ns = qsnn_weight_quant_nscales(wc, rows);
        codes = qsnn_malloc(ctx, L->nw * sizeof *codes);
        wq = qsnn_malloc(ctx, L->nw * sizeof *wq);
        scales = qsnn_malloc(ctx, (size_t)rows * sizeof *scales);
        if (!codes || !wq || !scales) {
            st = QSNN_ERR_NOMEM;
            goto done;
        }
        L->wq->forward(wc, L->W, rows, cols, wq, scales);
        L->wq->codes(wc, L->W, scales, rows, cols, codes);
        hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols}, ds = (hsize_t)ns;
        if ((st = qsnn_h5_write_i32(ctx, path, g, "weight_codes", 2, dims, codes))) goto done;
        if ((st = qsnn_h5_write_f32(ctx, path, g, "weight_scales", 1, &ds, scales))) goto done;
        d = H5Dopen2(g, "weight_codes", H5P_DEFAULT);
        if (d < 0) {
            char what[64];
            snprintf(what, sizeof what, "cannot open layers/%s/weight_codes", name);
            st = qsnn_h5_fail(ctx, path, what);
            goto done;
        }
        if ((st = qsnn_h5_write_attr_i64(ctx, path, d, "bits", wc->bits))) goto done;
        if ((st = qsnn_h5_write_attr_str(ctx, path, d, "granularity",
                                         wc->granularity == QSNN_WQ_PER_CHANNEL ? "per_channel" : "per_tensor")))
            goto done;
        if ((st = qsnn_h5_write_attr_str(ctx, path, d, "method", L->wq->name))) goto done;
        H5Dclose(d);
        d = -1;
    }

    if (L->sq.enabled) {
        const qsnn_state_quant *q = &L->sq;
        /* θ moved since the table was built, or it was a training pass's (QN's soft staircase, CPQ's DropBits
         * survivors), or a learned grid's values moved: the inference levels for the values now */
        const int learned = qsnn_grid_learned(L->sq_cfg.grid);
        if (q->built_theta != L->theta || q->cfg.pass.training ||
            (learned && (q->cfg.p[0] != L->state_p[0] || q->cfg.p[1] != L->state_p[1]))) {
            qsnn_state_quant_cfg c = L->sq_cfg;
            memset(&c.pass, 0, sizeof c.pass);
            if (learned) c.p[0] = L->state_p[0], c.p[1] = L->state_p[1];
            if ((st = qsnn_state_quant_build(ctx, &c, L->theta, &tmpq))) goto done;
            q = &tmpq;
        }
        hsize_t n = (hsize_t)q->n;
        if ((st = qsnn_h5_write_f32(ctx, path, g, "state_levels", 1, &n, q->levels))) goto done;
        d = H5Dopen2(g, "state_levels", H5P_DEFAULT);
        if (d < 0) {
            char what[64];
            snprintf(what, sizeof what, "cannot open layers/%s/state_levels", name);
            st = qsnn_h5_fail(ctx, path, what);
            goto done;
        }
        if ((st = qsnn_h5_write_attr_i64(ctx, path, d, "bits", q->cfg.bits))) goto done;
        if ((st = qsnn_h5_write_attr_str(ctx, path, d, "grid", qsnn_grid_name(q->cfg.grid)))) goto done;
    }
done:
    if (d >= 0) H5Dclose(d);
    H5Gclose(g);
    qsnn_free(ctx, codes);
    qsnn_free(ctx, wq);
    qsnn_free(ctx, scales);
    qsnn_state_quant_free(ctx, &tmpq);
    return st;
}

/* --- history (/metrics) ------------------------------------------------------------------------ */

#define HIST_N1 6 /* the float64 [E] datasets */
static const char *const hist_names1[HIST_N1] = {"train_loss",    "train_accuracy", "test_loss",
                                                 "test_accuracy", "samples_per_s",  "seconds"};
static const char *const hist_names2[2] = {"firing_rate", "test_firing_rate"};

static double **hist_arr1(qsnn_ckpt_history *h, int k) {
    double **a[HIST_N1] = {&h->train_loss,    &h->train_accuracy, &h->test_loss,
                           &h->test_accuracy, &h->samples_per_s,  &h->seconds};
    return a[k];
}
static double **hist_arr2(qsnn_ckpt_history *h, int k) { return k ? &h->test_firing_rate : &h->firing_rate; }

static qsnn_status check_history_desc(qsnn_ctx *ctx, const char *path, const qsnn_ckpt_history *h) {
    if (h->epochs < 0) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: history with %d epochs", path, h->epochs);
    if (h->epochs == 0) return QSNN_OK;
    if (h->n_layers < 1 || h->n_layers > QSNN_MAX_LAYERS)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: history with %d layers", path, h->n_layers);
    qsnn_ckpt_history *m = (qsnn_ckpt_history *)h; /* only read through */
    for (int k = 0; k < HIST_N1; k++)
        if (!*hist_arr1(m, k)) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: history lacks %s", path, hist_names1[k]);
    for (int k = 0; k < 2; k++)
        if (!*hist_arr2(m, k)) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: history lacks %s", path, hist_names2[k]);
    if (h->epoch)
        for (int i = 0; i < h->epochs; i++)
            if (h->epoch[i] < 1 || (i > 0 && h->epoch[i] <= h->epoch[i - 1]))
                return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: history epoch numbers are not ascending from 1", path);
    return QSNN_OK;
}

static qsnn_status save_history(qsnn_ctx *ctx, const char *path, hid_t f, const qsnn_ckpt_history *h) {
    qsnn_ckpt_history *m = (qsnn_ckpt_history *)h; /* only read through */
    const hsize_t E = (hsize_t)h->epochs, dims2[2] = {E, (hsize_t)h->n_layers};
    int64_t *ep = qsnn_malloc(ctx, (size_t)h->epochs * sizeof *ep);
    if (!ep) return QSNN_ERR_NOMEM;
    for (int i = 0; i < h->epochs; i++) ep[i] = h->epoch ? (int64_t)h->epoch[i] : (int64_t)i + 1;
    hid_t g;
    qsnn_status st = qsnn_h5_group_create(ctx, path, f, "metrics", &g);
    if (st) {
        qsnn_free(ctx, ep);
        return st;
    }
    st = qsnn_h5_write_array(ctx, path, g, "epoch", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &E, ep);
    for (int k = 0; k < HIST_N1 && !st; k++)
        st = qsnn_h5_write_array(ctx, path, g, hist_names1[k], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &E,
                                 *hist_arr1(m, k));
    for (int k = 0; k < 2 && !st; k++)
        st = qsnn_h5_write_array(ctx, path, g, hist_names2[k], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dims2,
                                 *hist_arr2(m, k));
    if (!st && h->test_saturated)
        st = qsnn_h5_write_array(ctx, path, g, "test_saturated", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dims2,
                                 h->test_saturated);
    for (int l = 0; l < h->n_layers && !st; l++) {
        if (!h->hist_bins[l] || !h->membrane_hist[l]) continue;
        char name[40];
        snprintf(name, sizeof name, "membrane_hist_layer%d", l);
        const hsize_t dh[2] = {E, (hsize_t)h->hist_bins[l]};
        st = qsnn_h5_write_array(ctx, path, g, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, 2, dh, h->membrane_hist[l]);
        hid_t d = st ? -1 : H5Dopen2(g, name, H5P_DEFAULT);
        if (!st && d < 0) st = qsnn_h5_fail(ctx, path, "cannot open a metrics dataset");
        if (!st) st = qsnn_h5_write_attr_i64(ctx, path, d, "per_level", h->hist_per_level[l]);
        if (!st) st = qsnn_h5_write_attr_f64(ctx, path, d, "lo", h->hist_lo[l]);
        if (!st) st = qsnn_h5_write_attr_f64(ctx, path, d, "hi", h->hist_hi[l]);
        if (d >= 0) H5Dclose(d);
    }
    H5Gclose(g);
    qsnn_free(ctx, ep);
    return st;
}

static qsnn_status save_contents(qsnn_ctx *ctx, const char *path, hid_t f, qsnn_net *net, const char *config_yaml,
                                 const qsnn_ckpt_meta *meta, const qsnn_ckpt_optim *optim,
                                 char (*opt_names)[OPT_NAME_MAX], const int *opt_pidx,
                                 const qsnn_ckpt_history *hist) {
    static const qsnn_ckpt_meta none = {0, 0.0, 0.0, 0, NULL};
    if (!meta) meta = &none;
    qsnn_status st;
    if ((st = qsnn_h5_write_attr_str(ctx, path, f, "format", QSNN_CHECKPOINT_FORMAT))) return st;
    if ((st = qsnn_h5_write_attr_i64(ctx, path, f, "format_version", QSNN_CHECKPOINT_VERSION))) return st;
    if ((st = qsnn_h5_write_attr_str(ctx, path, f, "qsnn_version", QSNN_VERSION))) return st;
    if ((st = qsnn_h5_write_attr_i64(ctx, path, f, "epoch", meta->epoch))) return st;
    if ((st = qsnn_h5_write_attr_f64(ctx, path, f, "test_accuracy", meta->test_accuracy))) return st;
    if ((st = qsnn_h5_write_attr_f64(ctx, path, f, "train_loss", meta->train_loss))) return st;
    if ((st = qsnn_h5_write_attr_i64(ctx, path, f, "seed", (int64_t)meta->seed))) return st;
    if ((st = qsnn_h5_write_attr_str(ctx, path, f, "command_line", meta->command_line ? meta->command_line : "")))
        return st;
    if ((st = qsnn_h5_write_str(ctx, path, f, "config", config_yaml ? config_yaml : ""))) return st;

    hid_t g;
    if ((st = qsnn_h5_group_create(ctx, path, f, "params", &g))) return st;
    qsnn_param list[QSNN_MAX_PARAMS];
    const int np = qsnn_net_params(net, list);
    for (int i = 0; i < np && !st; i++) {
        hsize_t dims[4];
        int rank = param_shape(net, &list[i], dims);
        st = qsnn_h5_write_f32(ctx, path, g, list[i].name, rank, dims, list[i].data);
    }
    H5Gclose(g);
    if (st) return st;

    if ((st = qsnn_h5_group_create(ctx, path, f, "layers", &g))) return st;
    for (int l = 0; l < net->n_layers && !st; l++) st = save_layer_info(ctx, path, net, l, g);
    H5Gclose(g);
    if (!st && optim) st = save_optim(ctx, path, f, net, optim, opt_names, opt_pidx);
    if (!st && hist && hist->epochs > 0) st = save_history(ctx, path, f, hist);
    return st;
}

qsnn_status qsnn_checkpoint_save(qsnn_ctx *ctx, const char *path, qsnn_net *net, const char *config_yaml,
                                 const qsnn_ckpt_meta *meta) {
    return qsnn_checkpoint_save_resumable(ctx, path, net, config_yaml, meta, NULL);
}

qsnn_status qsnn_checkpoint_save_resumable(qsnn_ctx *ctx, const char *path, qsnn_net *net, const char *config_yaml,
                                           const qsnn_ckpt_meta *meta, const qsnn_ckpt_optim *optim) {
    return qsnn_checkpoint_save_with_history(ctx, path, net, config_yaml, meta, optim, NULL);
}

qsnn_status qsnn_checkpoint_save_with_history(qsnn_ctx *ctx, const char *path, qsnn_net *net,
                                              const char *config_yaml, const qsnn_ckpt_meta *meta,
                                              const qsnn_ckpt_optim *optim, const qsnn_ckpt_history *hist) {
    if (!path || !*path || !net) return qsnn_fail(ctx, QSNN_ERR_ARG, "checkpoint save: path and network are required");
    qsnn_h5_quiet();
    if (hist) {
        qsnn_status st = check_history_desc(ctx, path, hist);
        if (st) return st;
    }
    char(*opt_names)[OPT_NAME_MAX] = NULL;
    int *opt_pidx = NULL;
    if (optim) { /* checked before anything is written */
        const size_t n = optim->n_slots > 0 ? (size_t)optim->n_slots : 1;
        opt_names = qsnn_malloc(ctx, n * sizeof *opt_names);
        opt_pidx = qsnn_malloc(ctx, n * sizeof *opt_pidx);
        qsnn_status st = !opt_names || !opt_pidx ? QSNN_ERR_NOMEM
                                                 : check_optim_desc(ctx, path, net, optim, opt_names, opt_pidx);
        if (st) {
            qsnn_free(ctx, opt_names);
            qsnn_free(ctx, opt_pidx);
            return st;
        }
    }
    qsnn_h5_atomic out;
    qsnn_status st = qsnn_h5_atomic_create(ctx, path, &out);
    if (!st) st = save_contents(ctx, path, out.fid, net, config_yaml, meta, optim, opt_names, opt_pidx, hist);
    if (!st) st = qsnn_h5_atomic_commit(ctx, &out);
    else qsnn_h5_atomic_abort(ctx, &out);
    qsnn_free(ctx, opt_names);
    qsnn_free(ctx, opt_pidx);
    return st;
}

/* --- load -------------------------------------------------------------------------------------- */

/* Opens PATH read-only and checks it is a qsnn checkpoint of a supported version. */
static qsnn_status ckpt_open(qsnn_ctx *ctx, const char *path, hid_t *out) {
    *out = -1;
    if (!path || !*path) return qsnn_fail(ctx, QSNN_ERR_ARG, "checkpoint: no path given");
    hid_t f;
    qsnn_status st = qsnn_h5_open(ctx, path, 0, &f);
    if (st) return st;
    char *fmt = NULL;
    if (!qsnn_h5_attr_exists(f, "format")) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: not a qsnn checkpoint (no 'format' attribute)", path);
        goto fail;
    }
    if (qsnn_h5_read_attr_str(ctx, path, f, "format", &fmt)) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: not a qsnn checkpoint ('format' is not a string)", path);
        goto fail;
    }
    if (strcmp(fmt, QSNN_CHECKPOINT_FORMAT) != 0) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: not a qsnn checkpoint (format is '%.100s', expected '%s')", path, fmt,
                       QSNN_CHECKPOINT_FORMAT);
        goto fail;
    }
    int64_t version;
    if ((st = qsnn_h5_read_attr_i64(ctx, path, f, "format_version", &version))) goto fail;
    if (version > QSNN_CHECKPOINT_VERSION) {
        st = qsnn_fail(ctx, QSNN_ERR_MISMATCH,
                       "%s: checkpoint format_version %lld is newer than this qsnn (%s) supports (%d); upgrade qsnn",
                       path, (long long)version, QSNN_VERSION, QSNN_CHECKPOINT_VERSION);
        goto fail;
    }
    if (version < 1) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: invalid checkpoint format_version %lld", path, (long long)version);
        goto fail;
    }
    qsnn_free(ctx, fmt);
    *out = f;
    return QSNN_OK;
fail:
    qsnn_free(ctx, fmt);
    H5Fclose(f);
    return st;
}

qsnn_status qsnn_checkpoint_read_config(qsnn_ctx *ctx, const char *path, char **config_yaml) {
    *config_yaml = NULL;
    hid_t f;
    qsnn_status st = ckpt_open(ctx, path, &f);
    if (st) return st;
    st = qsnn_h5_read_str(ctx, path, f, "config", config_yaml);
    H5Fclose(f);
    return st;
}

qsnn_status qsnn_checkpoint_read_meta(qsnn_ctx *ctx, const char *path, qsnn_ckpt_meta *meta) {
    memset(meta, 0, sizeof *meta);
    hid_t f;
    qsnn_status st = ckpt_open(ctx, path, &f);
    if (st) return st;
    int64_t epoch = 0, seed = 0;
    double acc = 0, loss = 0;
    if (!(st = qsnn_h5_read_attr_i64(ctx, path, f, "epoch", &epoch)) &&
        !(st = qsnn_h5_read_attr_f64(ctx, path, f, "test_accuracy", &acc)) &&
        !(st = qsnn_h5_read_attr_f64(ctx, path, f, "train_loss", &loss)) &&
        !(st = qsnn_h5_read_attr_i64(ctx, path, f, "seed", &seed))) {
        if (epoch < INT_MIN || epoch > INT_MAX) {
            st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: attribute 'epoch' = %lld is out of range", path, (long long)epoch);
        } else {
            meta->epoch = (int)epoch;
            meta->test_accuracy = acc;
            meta->train_loss = loss;
            meta->seed = (long long)seed;
            meta->command_line = NULL;
        }
    }
    H5Fclose(f);
    return st;
}


/* Every link in group g (named gname in messages) must be one of names[0..n-1]; otherwise
 * QSNN_ERR_MISMATCH "PATH: GNAME/X is not WHAT". */
static qsnn_status check_no_extra(qsnn_ctx *ctx, const char *path, hid_t g, const char *gname,
                                  const char *const *names, int n, const char *what) {
    H5G_info_t info;
    char msg[64];
    snprintf(msg, sizeof msg, "cannot list %s", gname);
    if (H5Gget_info(g, &info) < 0) return qsnn_h5_fail(ctx, path, msg);
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[256];
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        if (len < 0) return qsnn_h5_fail(ctx, path, msg);
        int known = 0;
        for (int k = 0; k < n && !known; k++) known = strcmp(name, names[k]) == 0;
        if (!known) return qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s: %s/%s is not %s", path, gname, name, what);
    }
    return QSNN_OK;
}

qsnn_status qsnn_checkpoint_load_params(qsnn_ctx *ctx, const char *path, qsnn_net *net) {
    if (!net) return qsnn_fail(ctx, QSNN_ERR_ARG, "checkpoint load: no network given");
    hid_t f, g = -1;
    qsnn_status st = ckpt_open(ctx, path, &f);
    if (st) return st;
    float *buf = NULL;
    qsnn_param list[QSNN_MAX_PARAMS];
    const int np = qsnn_net_params(net, list);
    size_t total = 0, off[QSNN_MAX_PARAMS];
    for (int i = 0; i < np; i++) {
        off[i] = total;
        total += list[i].n;
    }
    if ((st = qsnn_h5_group_open(ctx, path, f, "params", &g))) goto done;
    {
        const char *names[QSNN_MAX_PARAMS] = {0};
        for (int i = 0; i < np; i++) names[i] = list[i].name;
        if ((st = check_no_extra(ctx, path, g, "params", names, np,
                                 "a parameter of the model (saved from a different config?)")))
            goto done;
    }
    buf = qsnn_malloc(ctx, (total ? total : 1) * sizeof(float));
    if (!buf) {
        st = QSNN_ERR_NOMEM;
        goto done;
    }
    /* Read and check everything first: on error the network stays as it was. */
    for (int i = 0; i < np; i++) {
        const qsnn_param *p = &list[i];
        if (!qsnn_h5_exists(g, p->name)) {
            st = qsnn_fail(ctx, QSNN_ERR_MISMATCH,
                           "%s: params/%s is missing (the model has it; saved from a different config?)", path,
                           p->name);
            goto done;
        }
        if ((st = check_param_shape(ctx, path, g, "params", p->name, net, p))) goto done;
        float *v = buf + off[i];
        if ((st = qsnn_h5_read_f32(ctx, path, g, p->name, v, p->n))) goto done;
        if ((st = check_finite(ctx, path, "params", p->name, net, p, v, p->n))) goto done;
        if (ends_with(p->name, ".theta") && p->n == 1 && !(v[0] > 0.0f)) {
            st = qsnn_fail(ctx, QSNN_ERR_NUMERIC, "%s: params/%s is %g (a threshold must be > 0)", path, p->name,
                           (double)v[0]);
            goto done;
        }
    }
    for (int i = 0; i < np; i++) memcpy(list[i].data, buf + off[i], list[i].n * sizeof(float));
    st = qsnn_net_prepare(net);
    if (st) { /* name the file in the network's message */
        char msg[900];
        snprintf(msg, sizeof msg, "%s", qsnn_last_error(ctx));
        qsnn_fail(ctx, st, "%s: %s", path, msg);
    }
done:
    qsnn_free(ctx, buf);
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    return st;
}

/* The tensors that fix the architecture: a missing or reshaped one means another network. */
static int architecture_tensor(const char *name) {
    return ends_with(name, ".weight") || ends_with(name, ".bias") || ends_with(name, ".recurrent");
}

qsnn_status qsnn_checkpoint_load_matching(qsnn_ctx *ctx, const char *path, qsnn_net *net, int *copied) {
    if (!net || !copied) return qsnn_fail(ctx, QSNN_ERR_ARG, "checkpoint load: no network given");
    hid_t f, g = -1;
    qsnn_status st = ckpt_open(ctx, path, &f);
    if (st) return st;
    float *buf = NULL;
    qsnn_param list[QSNN_MAX_PARAMS];
    const int np = qsnn_net_params(net, list);
    size_t total = 0, off[QSNN_MAX_PARAMS];
    for (int i = 0; i < np; i++) {
        off[i] = total;
        total += list[i].n;
        copied[i] = 0;
    }
    if ((st = qsnn_h5_group_open(ctx, path, f, "params", &g))) goto done;
    { /* an architecture tensor of the file that the model lacks (an extra layer, a bias, recurrence) */
        H5G_info_t info;
        if (H5Gget_info(g, &info) < 0) {
            st = qsnn_h5_fail(ctx, path, "cannot list params");
            goto done;
        }
        for (hsize_t i = 0; i < info.nlinks; i++) {
            char name[256];
            if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0) {
                st = qsnn_h5_fail(ctx, path, "cannot list params");
                goto done;
            }
            if (architecture_tensor(name) && find_param(list, np, name) < 0) {
                st = qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s: params/%s is not in this model (another architecture)",
                               path, name);
                goto done;
            }
        }
    }
    buf = qsnn_malloc(ctx, (total ? total : 1) * sizeof(float));
    if (!buf) {
        st = QSNN_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < np; i++) {
        const qsnn_param *p = &list[i];
        const int arch = architecture_tensor(p->name);
        if (!qsnn_h5_exists(g, p->name)) {
            if (!arch) continue;
            st = qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s: has no params/%s, which this model has (another architecture)",
                           path, p->name);
            goto done;
        }
        hsize_t want[4], have[QSNN_H5_MAX_RANK];
        int have_rank;
        const int want_rank = param_shape(net, p, want);
        if ((st = qsnn_h5_dims(ctx, path, g, p->name, &have_rank, have))) goto done;
        int same = have_rank == want_rank;
        for (int k = 0; same && k < want_rank; k++) same = have[k] == want[k];
        if (!same) {
            if (!arch) continue;
            char hs[128], ws[128];
            qsnn_h5_fmt_dims(hs, sizeof hs, have_rank, have);
            qsnn_h5_fmt_dims(ws, sizeof ws, want_rank, want);
            st = qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s: params/%s has shape %s, this model's is %s (another architecture)",
                           path, p->name, hs, ws);
            goto done;
        }
        float *v = buf + off[i];
        if ((st = qsnn_h5_read_f32(ctx, path, g, p->name, v, p->n))) goto done;
        if ((st = check_finite(ctx, path, "params", p->name, net, p, v, p->n))) goto done;
        if (ends_with(p->name, ".theta") && p->n == 1 && !(v[0] > 0.0f)) {
            st = qsnn_fail(ctx, QSNN_ERR_NUMERIC, "%s: params/%s is %g (a threshold must be > 0)", path, p->name,
                           (double)v[0]);
            goto done;
        }
        copied[i] = 1;
    }
    for (int i = 0; i < np; i++)
        if (copied[i]) memcpy(list[i].data, buf + off[i], list[i].n * sizeof(float));
done:
    if (st)
        for (int i = 0; i < np; i++) copied[i] = 0;
    qsnn_free(ctx, buf);
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    return st;
}

qsnn_status qsnn_checkpoint_load_optim(qsnn_ctx *ctx, const char *path, qsnn_net *net, qsnn_ckpt_optim *optim) {
    if (!net || !optim) return qsnn_fail(ctx, QSNN_ERR_ARG, "checkpoint load: no network or optimizer state given");
    hid_t f, g = -1;
    qsnn_status st = ckpt_open(ctx, path, &f);
    if (st) return st;
    const int ns = optim->n_slots;
    const size_t nalloc = ns > 0 ? (size_t)ns : 1;
    char(*names)[OPT_NAME_MAX] = qsnn_malloc(ctx, nalloc * sizeof *names);
    int *pidx = qsnn_malloc(ctx, nalloc * sizeof *pidx);
    const char **name_ptrs = qsnn_malloc(ctx, nalloc * sizeof *name_ptrs);
    size_t *off = qsnn_malloc(ctx, nalloc * sizeof *off);
    float *buf = NULL;
    char *kind = NULL;
    if (!names || !pidx || !name_ptrs || !off) {
        st = QSNN_ERR_NOMEM;
        goto done;
    }
    if ((st = check_optim_desc(ctx, path, net, optim, names, pidx))) goto done;
    if (!qsnn_h5_exists(f, "optimizer")) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT,
                       "%s: optimizer is missing: the checkpoint was saved without optimizer state, so training "
                       "cannot resume from it",
                       path);
        goto done;
    }
    if ((st = qsnn_h5_group_open(ctx, path, f, "optimizer", &g))) goto done;
    if ((st = qsnn_h5_read_attr_str(ctx, path, g, "name", &kind))) goto done;
    if (strcmp(kind, optim->name) != 0) {
        st = qsnn_fail(ctx, QSNN_ERR_MISMATCH,
                       "%s: optimizer/@name is '%.40s': the state is for another optimizer than '%s'", path, kind,
                       optim->name);
        goto done;
    }
    int64_t step;
    if ((st = qsnn_h5_read_attr_i64(ctx, path, g, "step", &step))) goto done;
    if (step < 0) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: optimizer/@step is %lld (must be >= 0)", path, (long long)step);
        goto done;
    }
    size_t total = 0;
    for (int k = 0; k < ns; k++) {
        name_ptrs[k] = names[k];
        off[k] = total;
        total += optim->slots[k].n;
    }
    char what[128];
    snprintf(what, sizeof what, "part of the %.20s state of the model (saved from a different config?)", optim->name);
    if ((st = check_no_extra(ctx, path, g, "optimizer", name_ptrs, ns, what))) goto done;
    buf = qsnn_malloc(ctx, (total ? total : 1) * sizeof(float));
    if (!buf) {
        st = QSNN_ERR_NOMEM;
        goto done;
    }
    qsnn_param list[QSNN_MAX_PARAMS];
    qsnn_net_params(net, list);
    /* Read and check everything first: on error the caller's arrays stay as they were. */
    for (int k = 0; k < ns; k++) {
        if (!qsnn_h5_exists(g, names[k])) {
            st = qsnn_fail(ctx, QSNN_ERR_MISMATCH,
                           "%s: optimizer/%s is missing (the %s state of the model has it; saved from a different "
                           "config?)",
                           path, names[k], optim->name);
            goto done;
        }
        if ((st = check_param_shape(ctx, path, g, "optimizer", names[k], net, &list[pidx[k]]))) goto done;
        float *v = buf + off[k];
        if ((st = qsnn_h5_read_f32(ctx, path, g, names[k], v, optim->slots[k].n))) goto done;
        if ((st = check_finite(ctx, path, "optimizer", names[k], net, &list[pidx[k]], v, optim->slots[k].n)))
            goto done;
    }
    for (int k = 0; k < ns; k++) memcpy(optim->slots[k].data, buf + off[k], optim->slots[k].n * sizeof(float));
    optim->step = (long long)step;
done:
    qsnn_free(ctx, kind);
    qsnn_free(ctx, buf);
    qsnn_free(ctx, names);
    qsnn_free(ctx, pidx);
    qsnn_free(ctx, name_ptrs);
    qsnn_free(ctx, off);
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    return st;
}

/* --- history ----------------------------------------------------------------------------------- */

void qsnn_checkpoint_history_free(qsnn_ctx *ctx, qsnn_ckpt_history *h) {
    if (!h) return;
    qsnn_free(ctx, h->epoch);
    for (int k = 0; k < HIST_N1; k++) qsnn_free(ctx, *hist_arr1(h, k));
    for (int k = 0; k < 2; k++) qsnn_free(ctx, *hist_arr2(h, k));
    qsnn_free(ctx, h->test_saturated);
    for (int l = 0; l < QSNN_MAX_LAYERS; l++) qsnn_free(ctx, h->membrane_hist[l]);
    memset(h, 0, sizeof *h);
}

/* Checks metrics/NAME is a dataset of class cls and rank `rank` whose first dimension is E (and,
 * for rank 2, whose second is *L, or sets *L when it is < 0). */
static qsnn_status check_hist_dataset(qsnn_ctx *ctx, const char *path, hid_t g, const char *name, H5T_class_t cls,
                                      int rank, hsize_t E, const char *len_of, int *L) {
    int r;
    hsize_t d[QSNN_H5_MAX_RANK];
    qsnn_status st = qsnn_h5_dims(ctx, path, g, name, &r, d);
    if (st) return st;
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0) return qsnn_h5_fail(ctx, path, "cannot open a metrics dataset");
    hid_t t = H5Dget_type(ds);
    const H5T_class_t have = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (t >= 0) H5Tclose(t);
    H5Dclose(ds);
    if (have != cls)
        return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: metrics/%s is not %s", path, name,
                         cls == H5T_INTEGER ? "an integer dataset" : "a floating-point dataset");
    char hs[128];
    qsnn_h5_fmt_dims(hs, sizeof hs, r, d);
    if (r != rank)
        return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: metrics/%s has shape %s, expected rank %d", path, name, hs, rank);
    if (d[0] != E)
        return qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s: metrics/%s has %llu entries, metrics/%s has %llu", path, name,
                         (unsigned long long)d[0], len_of, (unsigned long long)E);
    if (rank == 2) {
        if (d[1] < 1 || d[1] > QSNN_MAX_LAYERS)
            return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: metrics/%s has shape %s (1..%d layers expected)", path, name,
                             hs, QSNN_MAX_LAYERS);
        if (*L < 0) *L = (int)d[1];
        else if ((int)d[1] != *L)
            return qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s: metrics/%s has %llu layers, metrics/firing_rate has %d", path,
                             name, (unsigned long long)d[1], *L);
    }
    return QSNN_OK;
}

static qsnn_status read_hist_dataset(qsnn_ctx *ctx, const char *path, hid_t g, const char *name, hid_t mem_type,
                                     void *out) {
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    char what[96];
    snprintf(what, sizeof what, "cannot read metrics/%s", name);
    if (ds < 0) return qsnn_h5_fail(ctx, path, what);
    if (H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
        qsnn_status st = qsnn_h5_fail(ctx, path, what);
        H5Dclose(ds);
        return st;
    }
    H5Dclose(ds);
    return QSNN_OK;
}

qsnn_status qsnn_checkpoint_read_history(qsnn_ctx *ctx, const char *path, qsnn_ckpt_history *out) {
    if (!out) return qsnn_fail(ctx, QSNN_ERR_ARG, "checkpoint: no history given");
    memset(out, 0, sizeof *out);
    hid_t f, g = -1;
    qsnn_status st = ckpt_open(ctx, path, &f);
    if (st) return st;
    qsnn_ckpt_history h;
    memset(&h, 0, sizeof h);
    if (!qsnn_h5_exists(f, "metrics")) goto done; /* no history: 0 epochs */
    if ((st = qsnn_h5_group_open(ctx, path, f, "metrics", &g))) goto done;
    int r;
    hsize_t d[QSNN_H5_MAX_RANK];
    if ((st = qsnn_h5_dims(ctx, path, g, "epoch", &r, d))) goto done;
    if (r != 1 || d[0] > (hsize_t)INT_MAX) {
        char hs[128];
        qsnn_h5_fmt_dims(hs, sizeof hs, r, d);
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: metrics/epoch has shape %s, expected [epochs]", path, hs);
        goto done;
    }
    const hsize_t E = d[0];
    int L = -1;
    if ((st = check_hist_dataset(ctx, path, g, "epoch", H5T_INTEGER, 1, E, "epoch", &L))) goto done;
    for (int k = 0; k < HIST_N1; k++)
        if ((st = check_hist_dataset(ctx, path, g, hist_names1[k], H5T_FLOAT, 1, E, "epoch", &L))) goto done;
    for (int k = 0; k < 2; k++)
        if ((st = check_hist_dataset(ctx, path, g, hist_names2[k], H5T_FLOAT, 2, E, "epoch", &L))) goto done;
    h.epochs = (int)E;
    h.n_layers = L;
    if (E == 0) goto done;
    const size_t n = (size_t)E, n2 = (size_t)E * (size_t)L;
    if (!(h.epoch = qsnn_malloc(ctx, n * sizeof *h.epoch))) goto nomem;
    for (int k = 0; k < HIST_N1; k++)
        if (!(*hist_arr1(&h, k) = qsnn_malloc(ctx, n * sizeof(double)))) goto nomem;
    for (int k = 0; k < 2; k++)
        if (!(*hist_arr2(&h, k) = qsnn_malloc(ctx, n2 * sizeof(double)))) goto nomem;
    if ((st = read_hist_dataset(ctx, path, g, "epoch", H5T_NATIVE_LLONG, h.epoch))) goto done;
    for (size_t i = 0; i < n; i++)
        if (h.epoch[i] < 1 || (i > 0 && h.epoch[i] <= h.epoch[i - 1])) {
            st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: metrics/epoch[%zu] is %lld (epoch numbers ascend from 1)", path,
                           i, h.epoch[i]);
            goto done;
        }
    for (int k = 0; k < HIST_N1 && !st; k++)
        st = read_hist_dataset(ctx, path, g, hist_names1[k], H5T_NATIVE_DOUBLE, *hist_arr1(&h, k));
    for (int k = 0; k < 2 && !st; k++)
        st = read_hist_dataset(ctx, path, g, hist_names2[k], H5T_NATIVE_DOUBLE, *hist_arr2(&h, k));
    if (!st && qsnn_h5_exists(g, "test_saturated")) { /* optional */
        if ((st = check_hist_dataset(ctx, path, g, "test_saturated", H5T_FLOAT, 2, E, "epoch", &L))) goto done;
        if (!(h.test_saturated = qsnn_malloc(ctx, n2 * sizeof(double)))) goto nomem;
        st = read_hist_dataset(ctx, path, g, "test_saturated", H5T_NATIVE_DOUBLE, h.test_saturated);
    }
    for (int l = 0; l < L && !st; l++) {
        char name[40];
        snprintf(name, sizeof name, "membrane_hist_layer%d", l);
        if (!qsnn_h5_exists(g, name)) continue; /* optional */
        if ((st = qsnn_h5_dims(ctx, path, g, name, &r, d))) goto done;
        if (r != 2 || d[0] != E || d[1] < 1 || d[1] > 65536) {
            char hs[128];
            qsnn_h5_fmt_dims(hs, sizeof hs, r, d);
            st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: metrics/%s has shape %s, expected [%llu][bins]", path, name, hs,
                           (unsigned long long)E);
            goto done;
        }
        h.hist_bins[l] = (int)d[1];
        if (!(h.membrane_hist[l] = qsnn_malloc(ctx, n * (size_t)d[1] * sizeof(long long)))) goto nomem;
        if ((st = read_hist_dataset(ctx, path, g, name, H5T_NATIVE_LLONG, h.membrane_hist[l]))) goto done;
        hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
        int64_t pl = 0;
        if (ds < 0) st = qsnn_h5_fail(ctx, path, "cannot open a metrics dataset");
        if (!st) st = qsnn_h5_read_attr_i64(ctx, path, ds, "per_level", &pl);
        if (!st) st = qsnn_h5_read_attr_f64(ctx, path, ds, "lo", &h.hist_lo[l]);
        if (!st) st = qsnn_h5_read_attr_f64(ctx, path, ds, "hi", &h.hist_hi[l]);
        if (ds >= 0) H5Dclose(ds);
        h.hist_per_level[l] = pl != 0;
    }
    goto done;
nomem:
    st = QSNN_ERR_NOMEM;
done:
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    if (st) qsnn_checkpoint_history_free(ctx, &h);
    else *out = h;
    return st;
}

/* --- embedding --------------------------------------------------------------------------------- */

qsnn_status qsnn_checkpoint_write_into(qsnn_ctx *ctx, const char *path, hid_t loc, qsnn_net *net,
                                       const char *config_yaml, const qsnn_ckpt_meta *meta) {
    if (!net) return qsnn_fail(ctx, QSNN_ERR_ARG, "checkpoint write: no network given");
    qsnn_h5_quiet();
    return save_contents(ctx, path, loc, net, config_yaml, meta, NULL, NULL, NULL, NULL);
}
