#include "io/trace.h"
#include "io/h5atomic.h"
#include "io/checkpoint.h"
#include "io/h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef QSNN_VERSION
#define QSNN_VERSION "unknown"
#endif

/* Events are buffered and appended this many at a time (also the chunk length of their datasets). */
#define EV_BLOCK 32768
#define DEFLATE_LEVEL 4
#define TMP_PATH_MAX 4200

/* --- writer ------------------------------------------------------------------------------------- */

typedef struct wlayer {
    hid_t g, d_sample, d_step, d_neuron, d_mem, d_lvl;
    int out, k;
    int32_t *sel; /* [k] ascending */
    int32_t *eb_sample, *eb_neuron;
    int16_t *eb_step;
    int n_buf;
    hsize_t n_written;
    float *mbuf;  /* [max_B][T][k] */
    void *lbuf;   /* same, level indices (uint8 or uint16) */
    int lvl_bytes;
} wlayer;

struct qsnn_trace_writer {
    qsnn_ctx *ctx;
    char *path, *config, *cmdline; /* config: the resolved YAML, embedded with every model */
    qsnn_h5_atomic out;             /* the temporary file, renamed over path by commit */
    hid_t f;                        /* out.fid while open */
    int committed;
    long long seed;
    /* the recording in progress */
    int active;
    hid_t rec, d_idx, d_lab, d_x;
    int N, T, F, max_B, is_static, n_layers, next;
    const qsnn_net *net;
    uint8_t *xbuf;
    int32_t *ibuf;
    wlayer L[QSNN_MAX_LAYERS];
};

static qsnn_status attr_f32_array(qsnn_ctx *ctx, const char *path, hid_t loc, const char *name, const float *v,
                                  int n) {
    hsize_t d = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t a = sp >= 0 ? H5Acreate2(loc, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    qsnn_status st = QSNN_OK;
    if (a < 0 || H5Awrite(a, H5T_NATIVE_FLOAT, v) < 0) {
        char what[96];
        snprintf(what, sizeof what, "cannot write attribute %s", name);
        st = qsnn_h5_fail(ctx, path, what);
    }
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

/* A chunked, deflate-compressed dataset of `rank` dims; dims[0] may be 0 with an unlimited max. */
static qsnn_status create_chunked(qsnn_ctx *ctx, const char *path, hid_t loc, const char *name, hid_t ftype, int rank,
                                  const hsize_t *dims, const hsize_t *chunk, int unlimited, hid_t *out) {
    hsize_t maxd[4];
    for (int i = 0; i < rank; i++) maxd[i] = dims[i];
    if (unlimited) maxd[0] = H5S_UNLIMITED;
    hid_t sp = H5Screate_simple(rank, dims, maxd);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    qsnn_status st = QSNN_OK;
    *out = -1;
    if (sp < 0 || pl < 0 || H5Pset_chunk(pl, rank, chunk) < 0 || H5Pset_shuffle(pl) < 0 ||
        H5Pset_deflate(pl, DEFLATE_LEVEL) < 0 ||
        (*out = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, pl, H5P_DEFAULT)) < 0) {
        char obj[300], what[340];
        qsnn_h5_objname(loc, name, obj, sizeof obj);
        snprintf(what, sizeof what, "cannot create %s", obj);
        st = qsnn_h5_fail(ctx, path, what);
    }
    if (pl >= 0) H5Pclose(pl);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

/* Writes a block [start, start+count) of a dataset (rank <= 3) from memory. */
static qsnn_status write_block(qsnn_ctx *ctx, const char *path, hid_t d, hid_t mtype, int rank, const hsize_t *start,
                               const hsize_t *count, const void *data, const char *what) {
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(rank, count, NULL);
    qsnn_status st = QSNN_OK;
    if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, data) < 0)
        st = qsnn_h5_fail(ctx, path, what);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return st;
}

/* Appends n rows to a 1-D extendable dataset holding *len rows. */
static qsnn_status append_1d(qsnn_ctx *ctx, const char *path, hid_t d, hid_t mtype, const void *data, hsize_t len,
                             hsize_t n, const char *what) {
    hsize_t nl = len + n;
    if (H5Dset_extent(d, &nl) < 0) return qsnn_h5_fail(ctx, path, what);
    return write_block(ctx, path, d, mtype, 1, &len, &n, data, what);
}

qsnn_status qsnn_trace_writer_create(qsnn_ctx *ctx, const char *path, const qsnn_trace_meta *meta,
                                     qsnn_trace_writer **out) {
    *out = NULL;
    if (!path || !*path) return qsnn_fail(ctx, QSNN_ERR_ARG, "trace: no output path given");
    if (strlen(path) > TMP_PATH_MAX - 32) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: path too long", path);
    qsnn_h5_quiet();
    qsnn_trace_writer *w = qsnn_calloc(ctx, 1, sizeof *w);
    if (!w) return QSNN_ERR_NOMEM;
    w->ctx = ctx, w->f = -1, w->out.fid = -1, w->out.slot = -1, w->rec = w->d_idx = w->d_lab = w->d_x = -1;
    const size_t n = strlen(path) + 1;
    w->path = qsnn_malloc(ctx, n);
    if (!w->path) {
        qsnn_trace_writer_destroy(&w);
        return QSNN_ERR_NOMEM;
    }
    memcpy(w->path, path, n);
    if (meta && meta->config_yaml) {
        const size_t cn = strlen(meta->config_yaml) + 1;
        if (!(w->config = qsnn_malloc(ctx, cn))) {
            qsnn_trace_writer_destroy(&w);
            return QSNN_ERR_NOMEM;
        }
        memcpy(w->config, meta->config_yaml, cn);
    }
    if (meta && meta->command_line) {
        const size_t cn = strlen(meta->command_line) + 1;
        if (!(w->cmdline = qsnn_malloc(ctx, cn))) {
            qsnn_trace_writer_destroy(&w);
            return QSNN_ERR_NOMEM;
        }
        memcpy(w->cmdline, meta->command_line, cn);
    }
    qsnn_status st = qsnn_h5_atomic_create(ctx, w->path, &w->out);
    if (st) {
        qsnn_trace_writer_destroy(&w);
        return st;
    }
    w->f = w->out.fid;
    static const qsnn_trace_meta none = {0, NULL, NULL, NULL};
    if (!meta) meta = &none;
    w->seed = meta->seed;
    if ((st = qsnn_h5_write_attr_str(ctx, path, w->f, "format", QSNN_TRACE_FORMAT)) ||
        (st = qsnn_h5_write_attr_i64(ctx, path, w->f, "format_version", QSNN_TRACE_VERSION)) ||
        (st = qsnn_h5_write_attr_str(ctx, path, w->f, "qsnn_version", QSNN_VERSION)) ||
        (st = qsnn_h5_write_attr_i64(ctx, path, w->f, "seed", (int64_t)meta->seed)) ||
        (st = qsnn_h5_write_attr_str(ctx, path, w->f, "command_line", meta->command_line ? meta->command_line : "")) ||
        (st = qsnn_h5_write_attr_str(ctx, path, w->f, "source", meta->source ? meta->source : "")) ||
        (st = qsnn_h5_write_str(ctx, path, w->f, "config", meta->config_yaml ? meta->config_yaml : ""))) {
        qsnn_trace_writer_destroy(&w);
        return st;
    }
    *out = w;
    return QSNN_OK;
}

static int cmp_i32(const void *a, const void *b) {
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void close_recording(qsnn_trace_writer *w) {
    qsnn_ctx *ctx = w->ctx;
    for (int l = 0; l < QSNN_MAX_LAYERS; l++) {
        wlayer *L = &w->L[l];
        hid_t *h[6] = {&L->d_sample, &L->d_step, &L->d_neuron, &L->d_mem, &L->d_lvl, &L->g};
        for (int k = 0; k < 6; k++)
            if (*h[k] > 0) {
                if (k < 5) H5Dclose(*h[k]);
                else H5Gclose(*h[k]);
            }
        qsnn_free(ctx, L->sel);
        qsnn_free(ctx, L->eb_sample);
        qsnn_free(ctx, L->eb_neuron);
        qsnn_free(ctx, L->eb_step);
        qsnn_free(ctx, L->mbuf);
        qsnn_free(ctx, L->lbuf);
        memset(L, 0, sizeof *L);
    }
    hid_t *d[3] = {&w->d_idx, &w->d_lab, &w->d_x};
    for (int k = 0; k < 3; k++)
        if (*d[k] >= 0) H5Dclose(*d[k]), *d[k] = -1;
    if (w->rec >= 0) H5Gclose(w->rec), w->rec = -1;
    qsnn_free(ctx, w->xbuf);
    qsnn_free(ctx, w->ibuf);
    w->xbuf = NULL, w->ibuf = NULL;
    w->active = 0;
}

static qsnn_status begin_layer(qsnn_trace_writer *w, hid_t layers, int l, const qsnn_trace_sel *sel) {
    qsnn_ctx *ctx = w->ctx;
    const char *path = w->path;
    const qsnn_layer *ly = &w->net->layer[l];
    wlayer *L = &w->L[l];
    L->out = ly->out;
    char name[32];
    snprintf(name, sizeof name, "layer%d", l);
    qsnn_status st = qsnn_h5_group_create(ctx, path, layers, name, &L->g);
    if (st) return st;
    const qsnn_net_cfg *c = &w->net->cfg;
    const hid_t g = L->g;
    if ((st = qsnn_h5_write_attr_i64(ctx, path, g, "in", ly->in)) ||
        (st = qsnn_h5_write_attr_i64(ctx, path, g, "out", ly->out)) ||
        (st = qsnn_h5_write_attr_i64(ctx, path, g, "T", w->T)) ||
        (st = qsnn_h5_write_attr_str(ctx, path, g, "neuron", ly->ops && ly->ops->name ? ly->ops->name : c->neuron)) ||
        (st = qsnn_h5_write_attr_str(ctx, path, g, "reset", qsnn_reset_name(ly->np.reset))) ||
        (st = qsnn_h5_write_attr_f64(ctx, path, g, "beta", ly->np.beta)) ||
        (st = qsnn_h5_write_attr_f64(ctx, path, g, "theta", ly->np.theta)) ||
        (st = qsnn_h5_write_attr_i64(ctx, path, g, "weight_bits", ly->wq ? ly->wq_cfg.bits : 0)) ||
        (st = qsnn_h5_write_attr_str(ctx, path, g, "weight_granularity",
                                     ly->wq_cfg.granularity == QSNN_WQ_PER_CHANNEL ? "per_channel" : "per_tensor")) ||
        (st = qsnn_h5_write_attr_i64(ctx, path, g, "state_bits", ly->sq.enabled ? ly->sq.cfg.bits : 0)) ||
        (st = qsnn_h5_write_attr_str(ctx, path, g, "state_grid", qsnn_grid_name(ly->sq_cfg.grid))) ||
        (st = qsnn_h5_write_attr_f64(ctx, path, g, "state_lower_limit", ly->sq_cfg.lower_limit)) ||
        (st = qsnn_h5_write_attr_f64(ctx, path, g, "state_upper_limit", ly->sq_cfg.upper_limit)) ||
        (st = qsnn_h5_write_attr_i64(ctx, path, g, "integer", c->integer ? 1 : 0)))
        return st;
    if (ly->sq.enabled && (st = attr_f32_array(ctx, path, g, "state_levels", ly->sq.levels, ly->sq.n))) return st;

    /* spikes: three extendable 1-D datasets */
    hid_t sg;
    if ((st = qsnn_h5_group_create(ctx, path, g, "spikes", &sg))) return st;
    const hsize_t zero = 0, chunk = EV_BLOCK;
    if (!(st = create_chunked(ctx, path, sg, "sample", H5T_STD_I32LE, 1, &zero, &chunk, 1, &L->d_sample)) &&
        !(st = create_chunked(ctx, path, sg, "step", H5T_STD_I16LE, 1, &zero, &chunk, 1, &L->d_step)))
        st = create_chunked(ctx, path, sg, "neuron", H5T_STD_I32LE, 1, &zero, &chunk, 1, &L->d_neuron);
    H5Gclose(sg);
    if (st) return st;
    L->eb_sample = qsnn_malloc(ctx, EV_BLOCK * sizeof(int32_t));
    L->eb_neuron = qsnn_malloc(ctx, EV_BLOCK * sizeof(int32_t));
    L->eb_step = qsnn_malloc(ctx, EV_BLOCK * sizeof(int16_t));
    if (!L->eb_sample || !L->eb_neuron || !L->eb_step) return QSNN_ERR_NOMEM;

    /* the membrane selection */
    const int n = sel ? sel->n[l] : -1;
    if (n < 0) {
        L->k = ly->out;
        if (!(L->sel = qsnn_malloc(ctx, (size_t)L->k * sizeof(int32_t)))) return QSNN_ERR_NOMEM;
        for (int j = 0; j < L->k; j++) L->sel[j] = j;
    } else if (n > 0) {
        if (!sel->idx[l]) return qsnn_fail(ctx, QSNN_ERR_ARG, "trace: layer %d: neuron selection without indices", l);
        if (!(L->sel = qsnn_malloc(ctx, (size_t)n * sizeof(int32_t)))) return QSNN_ERR_NOMEM;
        memcpy(L->sel, sel->idx[l], (size_t)n * sizeof(int32_t));
        qsort(L->sel, (size_t)n, sizeof(int32_t), cmp_i32);
        int k = 0;
        for (int j = 0; j < n; j++) {
            if (L->sel[j] < 0 || L->sel[j] >= ly->out)
                return qsnn_fail(ctx, QSNN_ERR_ARG, "trace: layer %d has %d neurons; neuron %d does not exist", l,
                                 ly->out, (int)L->sel[j]);
            if (k == 0 || L->sel[j] != L->sel[k - 1]) L->sel[k++] = L->sel[j];
        }
        L->k = k;
    }
    if (L->k == 0) return QSNN_OK;
    hsize_t kd = (hsize_t)L->k;
    if ((st = qsnn_h5_write_i32(ctx, path, g, "neurons", 1, &kd, L->sel))) return st;
    const hsize_t dims[3] = {(hsize_t)w->N, (hsize_t)w->T, kd}, ch[3] = {1, (hsize_t)w->T, kd};
    if ((st = create_chunked(ctx, path, g, "membrane", H5T_IEEE_F32LE, 3, dims, ch, 0, &L->d_mem))) return st;
    const size_t nb = (size_t)w->max_B * (size_t)w->T * (size_t)L->k;
    if (!(L->mbuf = qsnn_malloc(ctx, nb * sizeof(float)))) return QSNN_ERR_NOMEM;
    if (ly->sq.enabled) {
        L->lvl_bytes = ly->sq.n <= 256 ? 1 : 2;
        if ((st = create_chunked(ctx, path, g, "membrane_level", L->lvl_bytes == 1 ? H5T_STD_U8LE : H5T_STD_U16LE, 3,
                                 dims, ch, 0, &L->d_lvl)))
            return st;
        if (!(L->lbuf = qsnn_malloc(ctx, nb * (size_t)L->lvl_bytes))) return QSNN_ERR_NOMEM;
    }
    return QSNN_OK;
}

qsnn_status qsnn_trace_begin(qsnn_trace_writer *w, const char *group, qsnn_net *net, int N, int T, int F,
                             int max_B, const char *encoding, int is_static, uint64_t encoder_epoch, int epoch,
                             const qsnn_trace_sel *sel) {
    qsnn_ctx *ctx = w->ctx;
    const char *path = w->path;
    if (w->active) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: a recording is already in progress", path);
    if (N < 1 || T < 1 || T > 32767 || F < 1 || max_B < 1 || !net || net->n_layers < 1 || F != net->layer[0].in)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: bad recording shape (N %d, T %d, F %d, batch %d)", path, N, T, F,
                         max_B);
    qsnn_h5_quiet();
    w->net = net, w->N = N, w->T = T, w->F = F, w->max_B = max_B, w->is_static = is_static, w->next = 0;
    w->n_layers = net->n_layers;
    for (int l = 0; l < QSNN_MAX_LAYERS; l++) {
        wlayer *L = &w->L[l];
        L->g = L->d_sample = L->d_step = L->d_neuron = L->d_mem = L->d_lvl = -1;
    }
    w->active = 1;
    qsnn_status st;
    if (group && *group) {
        if ((st = qsnn_h5_group_create(ctx, path, w->f, group, &w->rec))) goto fail;
    } else if ((w->rec = H5Gopen2(w->f, "/", H5P_DEFAULT)) < 0) {
        st = qsnn_h5_fail(ctx, path, "cannot open the root group");
        goto fail;
    }
    const hid_t r = w->rec;
    if ((st = qsnn_h5_write_attr_i64(ctx, path, r, "samples", N)) ||
        (st = qsnn_h5_write_attr_i64(ctx, path, r, "steps", T)) ||
        (st = qsnn_h5_write_attr_i64(ctx, path, r, "n_layers", net->n_layers)) ||
        (st = qsnn_h5_write_attr_i64(ctx, path, r, "epoch", epoch)))
        goto fail;
    {
        hid_t mg;
        if ((st = qsnn_h5_group_create(ctx, path, r, "model", &mg))) goto fail;
        qsnn_ckpt_meta meta = {epoch, 0.0, 0.0, w->seed, w->cmdline};
        st = qsnn_checkpoint_write_into(ctx, path, mg, net, w->config, &meta);
        H5Gclose(mg);
        if (st) goto fail;
    }
    {
        hid_t ig;
        if ((st = qsnn_h5_group_create(ctx, path, r, "input", &ig))) goto fail;
        const hsize_t n = (hsize_t)N;
        hsize_t dims[3] = {n, (hsize_t)T, (hsize_t)F}, ch[3] = {1, (hsize_t)T, (hsize_t)F};
        if (is_static) dims[1] = (hsize_t)F, ch[1] = (hsize_t)F;
        if (!(st = qsnn_h5_write_attr_str(ctx, path, ig, "encoding", encoding ? encoding : "")) &&
            !(st = qsnn_h5_write_attr_i64(ctx, path, ig, "static", is_static ? 1 : 0)) &&
            !(st = qsnn_h5_write_attr_i64(ctx, path, ig, "encoder_epoch", (int64_t)encoder_epoch)) &&
            !(st = qsnn_h5_write_attr_i64(ctx, path, ig, "input_bits", qsnn_net_input_bits(&net->cfg))) &&
            !(st = create_chunked(ctx, path, ig, "sample_index", H5T_STD_I64LE, 1, &n, &n, 0, &w->d_idx)) &&
            !(st = create_chunked(ctx, path, ig, "label", H5T_STD_I32LE, 1, &n, &n, 0, &w->d_lab)))
            st = create_chunked(ctx, path, ig, is_static ? "x" : "spikes", is_static ? H5T_IEEE_F32LE : H5T_STD_U8LE,
                                is_static ? 2 : 3, dims, ch, 0, &w->d_x);
        H5Gclose(ig);
        if (st) goto fail;
        w->ibuf = qsnn_malloc(ctx, (size_t)max_B * sizeof(int32_t));
        if (!w->ibuf) goto nomem;
        if (!is_static && !(w->xbuf = qsnn_malloc(ctx, (size_t)max_B * T * F))) goto nomem;
    }
    {
        hid_t lg;
        if ((st = qsnn_h5_group_create(ctx, path, r, "layers", &lg))) goto fail;
        for (int l = 0; l < net->n_layers && !st; l++) st = begin_layer(w, lg, l, sel);
        H5Gclose(lg);
        if (st) goto fail;
    }
    return QSNN_OK;
nomem:
    st = QSNN_ERR_NOMEM;
fail:
    close_recording(w);
    return st;
}

static qsnn_status flush_events(qsnn_trace_writer *w, wlayer *L) {
    if (!L->n_buf) return QSNN_OK;
    qsnn_status st;
    const hsize_t n = (hsize_t)L->n_buf;
    if ((st = append_1d(w->ctx, w->path, L->d_sample, H5T_NATIVE_INT32, L->eb_sample, L->n_written, n,
                        "cannot append spike events")) ||
        (st = append_1d(w->ctx, w->path, L->d_step, H5T_NATIVE_INT16, L->eb_step, L->n_written, n,
                        "cannot append spike events")) ||
        (st = append_1d(w->ctx, w->path, L->d_neuron, H5T_NATIVE_INT32, L->eb_neuron, L->n_written, n,
                        "cannot append spike events")))
        return st;
    L->n_written += n;
    L->n_buf = 0;
    return QSNN_OK;
}

qsnn_status qsnn_trace_add_batch(qsnn_trace_writer *w, const qsnn_workspace *ws, const int64_t *ids, const int *labels,
                                 const float *x, int B) {
    qsnn_ctx *ctx = w->ctx;
    const char *path = w->path;
    if (!w->active) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: no recording in progress", path);
    if (B < 1 || B > w->max_B || w->next + B > w->N)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: batch of %d samples does not fit (%d of %d recorded, batch max %d)",
                         path, B, w->next, w->N, w->max_B);
    if (!ws->kept || ws->B != B || ws->T != w->T)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: the workspace does not hold a training-mode forward of this batch", path);
    qsnn_h5_quiet();
    const int T = w->T, F = w->F;
    const hsize_t s0 = (hsize_t)w->next, nb = (hsize_t)B;
    qsnn_status st;
    if ((st = write_block(ctx, path, w->d_idx, H5T_NATIVE_INT64, 1, &s0, &nb, ids, "cannot write input/sample_index")))
        return st;
    for (int b = 0; b < B; b++) w->ibuf[b] = labels[b];
    if ((st = write_block(ctx, path, w->d_lab, H5T_NATIVE_INT32, 1, &s0, &nb, w->ibuf, "cannot write input/label")))
        return st;
    if (w->is_static) {
        const hsize_t start[2] = {s0, 0}, cnt[2] = {nb, (hsize_t)F};
        if ((st = write_block(ctx, path, w->d_x, H5T_NATIVE_FLOAT, 2, start, cnt, x, "cannot write input/x"))) return st;
    } else {
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const float *src = x + ((size_t)t * B + b) * F;
                uint8_t *dst = w->xbuf + ((size_t)b * T + t) * F;
                for (int f = 0; f < F; f++) {
                    if (src[f] != 0.0f && src[f] != 1.0f)
                        return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: input spikes must be 0 or 1 (step %d, feature %d: %g)",
                                         path, t, f, (double)src[f]);
                    dst[f] = src[f] != 0.0f;
                }
            }
        const hsize_t start[3] = {s0, 0, 0}, cnt[3] = {nb, (hsize_t)T, (hsize_t)F};
        if ((st = write_block(ctx, path, w->d_x, H5T_NATIVE_UINT8, 3, start, cnt, w->xbuf, "cannot write input/spikes")))
            return st;
    }
    for (int l = 0; l < w->n_layers; l++) {
        wlayer *L = &w->L[l];
        const qsnn_layer *ly = &w->net->layer[l];
        const int out = L->out;
        const float *S = ws->buf[l].S, *U = ws->buf[l].U;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const float *row = S + ((size_t)t * B + b) * out;
                for (int j = 0; j < out; j++) {
                    if (row[j] == 0.0f) continue;
                    L->eb_sample[L->n_buf] = w->next + b;
                    L->eb_step[L->n_buf] = (int16_t)t;
                    L->eb_neuron[L->n_buf] = j;
                    if (++L->n_buf == EV_BLOCK && (st = flush_events(w, L))) return st;
                }
            }
        if (!L->k) continue;
        const int k = L->k;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const float *row = U + ((size_t)t * B + b) * out;
                float *m = L->mbuf + ((size_t)b * T + t) * k;
                for (int j = 0; j < k; j++) m[j] = row[L->sel[j]];
                if (!L->lbuf) continue;
                for (int j = 0; j < k; j++) {
                    const int li = qsnn_layer_level_index(ly, (int)L->sel[j], m[j]);
                    if (li < 0)
                        return qsnn_fail(ctx, QSNN_ERR_NUMERIC,
                                         "%s: layer %d neuron %d step %d: membrane %g is not a level of the state grid",
                                         path, l, (int)L->sel[j], t, (double)m[j]);
                    const size_t at = ((size_t)b * T + t) * k + j;
                    if (L->lvl_bytes == 1) ((uint8_t *)L->lbuf)[at] = (uint8_t)li;
                    else ((uint16_t *)L->lbuf)[at] = (uint16_t)li;
                }
            }
        const hsize_t start[3] = {s0, 0, 0}, cnt[3] = {nb, (hsize_t)T, (hsize_t)k};
        char what[96];
        snprintf(what, sizeof what, "cannot write layers/layer%d/membrane", l);
        if ((st = write_block(ctx, path, L->d_mem, H5T_NATIVE_FLOAT, 3, start, cnt, L->mbuf, what))) return st;
        if (L->lbuf &&
            (st = write_block(ctx, path, L->d_lvl, L->lvl_bytes == 1 ? H5T_NATIVE_UINT8 : H5T_NATIVE_UINT16, 3, start,
                              cnt, L->lbuf, what)))
            return st;
    }
    w->next += B;
    return QSNN_OK;
}

qsnn_status qsnn_trace_end(qsnn_trace_writer *w) {
    if (!w->active) return qsnn_fail(w->ctx, QSNN_ERR_ARG, "%s: no recording in progress", w->path);
    qsnn_status st = QSNN_OK;
    if (w->next != w->N)
        st = qsnn_fail(w->ctx, QSNN_ERR_ARG, "%s: recording ended after %d of %d samples", w->path, w->next, w->N);
    for (int l = 0; l < w->n_layers && !st; l++) st = flush_events(w, &w->L[l]);
    close_recording(w);
    return st;
}

qsnn_status qsnn_trace_commit(qsnn_trace_writer *w) {
    qsnn_ctx *ctx = w->ctx;
    if (w->active) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: commit with a recording in progress", w->path);
    if (w->f < 0 || w->committed) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: already committed", w->path);
    w->f = -1; /* the commit closes it, and removes the temporary file on failure */
    qsnn_status st = qsnn_h5_atomic_commit(ctx, &w->out);
    if (!st) w->committed = 1;
    return st;
}

qsnn_status qsnn_trace_set_epochs(qsnn_trace_writer *w, int first, int last) {
    qsnn_status st = qsnn_h5_write_attr_i64(w->ctx, w->path, w->f, "epochs", last - first + 1);
    if (!st) st = qsnn_h5_write_attr_i64(w->ctx, w->path, w->f, "first_epoch", first);
    if (!st) st = qsnn_h5_write_attr_i64(w->ctx, w->path, w->f, "last_epoch", last);
    return st;
}

void qsnn_trace_writer_destroy(qsnn_trace_writer **pw) {
    if (!pw || !*pw) return;
    qsnn_trace_writer *w = *pw;
    qsnn_ctx *ctx = w->ctx;
    close_recording(w);
    qsnn_h5_atomic_abort(ctx, &w->out); /* closes and removes the temporary file unless committed */
    qsnn_free(ctx, w->path);
    qsnn_free(ctx, w->config);
    qsnn_free(ctx, w->cmdline);
    qsnn_free(ctx, w);
    *pw = NULL;
}

/* --- reader ------------------------------------------------------------------------------------- */

/* Opens PATH and checks it is a trace file of a supported version. */
static qsnn_status trace_open(qsnn_ctx *ctx, const char *path, hid_t *out) {
    *out = -1;
    if (!path || !*path) return qsnn_fail(ctx, QSNN_ERR_ARG, "trace: no path given");
    hid_t f;
    qsnn_status st = qsnn_h5_open(ctx, path, 0, &f);
    if (st) return st;
    char *fmt = NULL;
    int64_t version = 0;
    if (!qsnn_h5_attr_exists(f, "format") || qsnn_h5_read_attr_str(ctx, path, f, "format", &fmt) ||
        strcmp(fmt, QSNN_TRACE_FORMAT) != 0) {
        if (fmt && !strcmp(fmt, "qsnn-checkpoint"))
            st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: not a qsnn trace file (it is a checkpoint; record one with qsnn "
                                                 "record %s)", path, path);
        else st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: not a qsnn trace file (format attribute is not '%s')", path,
                            QSNN_TRACE_FORMAT);
    } else if (!(st = qsnn_h5_read_attr_i64(ctx, path, f, "format_version", &version))) {
        if (version > QSNN_TRACE_VERSION)
            st = qsnn_fail(ctx, QSNN_ERR_MISMATCH,
                           "%s: trace format_version %lld is newer than this qsnn (%s) supports (%d); upgrade qsnn",
                           path, (long long)version, QSNN_VERSION, QSNN_TRACE_VERSION);
        else if (version < 1)
            st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: invalid trace format_version %lld", path, (long long)version);
    }
    qsnn_free(ctx, fmt);
    if (st) {
        H5Fclose(f);
        return st;
    }
    *out = f;
    return QSNN_OK;
}

/* The per-epoch recordings range from the root attributes (0, 0 when absent). */
static void epoch_range(qsnn_ctx *ctx, const char *path, hid_t f, int64_t *first, int64_t *last) {
    *first = *last = 0;
    if (!qsnn_h5_attr_exists(f, "first_epoch") || !qsnn_h5_attr_exists(f, "last_epoch")) return;
    if (qsnn_h5_read_attr_i64(ctx, path, f, "first_epoch", first) ||
        qsnn_h5_read_attr_i64(ctx, path, f, "last_epoch", last) || *first < 1 || *last < *first)
        *first = *last = 0;
}

qsnn_status qsnn_trace_epochs(qsnn_ctx *ctx, const char *path, int *first, int *last) {
    *first = *last = 0;
    hid_t f;
    qsnn_status st = trace_open(ctx, path, &f);
    if (st) return st;
    int64_t a, b;
    epoch_range(ctx, path, f, &a, &b);
    if (b > 1000000) st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: last_epoch = %lld", path, (long long)b);
    else *first = (int)a, *last = (int)b;
    H5Fclose(f);
    return st;
}

/* Opens the recording group (see qsnn_trace_read). */
static qsnn_status open_recording(qsnn_ctx *ctx, const char *path, hid_t f, const char *group, hid_t *out) {
    *out = -1;
    int64_t first, last;
    epoch_range(ctx, path, f, &first, &last);
    if (!group || !*group) {
        if (!qsnn_h5_exists(f, "layers") && last > 0)
            return qsnn_fail(ctx, QSNN_ERR_ARG,
                             "%s: holds one recording per epoch (epoch_%lld..epoch_%lld); choose one (--epoch K)", path,
                             (long long)first, (long long)last);
        group = "/";
    } else if (!qsnn_h5_exists(f, group)) {
        if (last > 0)
            return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: no recording %s (the file has epoch_%lld..epoch_%lld)", path,
                             group, (long long)first, (long long)last);
        return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: no recording %s (the file has a single recording)", path, group);
    }
    return qsnn_h5_group_open(ctx, path, f, group, out);
}

/* Reads dataset `name` under loc: it must be of class cls and rank `rank`; dims[i] > 0 are required
 * sizes, 0 = any (filled in). Allocates *out (elsize bytes per element; at least one element). */
static qsnn_status read_ds(qsnn_ctx *ctx, const char *path, hid_t loc, const char *name, H5T_class_t cls, int rank,
                           hsize_t *dims, hid_t mtype, size_t elsize, void **out) {
    *out = NULL;
    char obj[300];
    qsnn_h5_objname(loc, name, obj, sizeof obj);
    int r;
    hsize_t d[QSNN_H5_MAX_RANK];
    qsnn_status st = qsnn_h5_dims(ctx, path, loc, name, &r, d);
    if (st) return st;
    char hs[128], ws[128];
    qsnn_h5_fmt_dims(hs, sizeof hs, r, d);
    int ok = r == rank;
    for (int i = 0; ok && i < rank; i++) ok = dims[i] == 0 || dims[i] == d[i];
    if (!ok) {
        qsnn_h5_fmt_dims(ws, sizeof ws, rank, dims);
        for (char *p = ws; *p; p++)
            if (p[0] == '0' && p[-1] == '[' && p[1] == ']') *p = '*';
        return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %s has shape %s, expected %s", path, obj, hs, ws);
    }
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) return qsnn_h5_fail(ctx, path, obj);
    hid_t t = H5Dget_type(ds);
    const H5T_class_t have = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (t >= 0) H5Tclose(t);
    if (have != cls) {
        H5Dclose(ds);
        return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %s is not %s", path, obj,
                         cls == H5T_INTEGER ? "an integer dataset" : "a floating-point dataset");
    }
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        dims[i] = d[i];
        n *= (size_t)d[i];
    }
    void *buf = qsnn_malloc(ctx, (n ? n : 1) * elsize);
    if (!buf) {
        H5Dclose(ds);
        return QSNN_ERR_NOMEM;
    }
    if (n && H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        char what[340];
        snprintf(what, sizeof what, "cannot read %s", obj);
        st = qsnn_h5_fail(ctx, path, what);
        H5Dclose(ds);
        qsnn_free(ctx, buf);
        return st;
    }
    H5Dclose(ds);
    *out = buf;
    return QSNN_OK;
}

static qsnn_status read_int_attr(qsnn_ctx *ctx, const char *path, hid_t loc, const char *name, long long lo,
                                 long long hi, int *v) {
    int64_t x;
    qsnn_status st = qsnn_h5_read_attr_i64(ctx, path, loc, name, &x);
    if (st) return st;
    if (x < lo || x > hi) {
        char obj[300];
        qsnn_h5_objname(loc, NULL, obj, sizeof obj);
        return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: attribute %s of %s is %lld (expected %lld..%lld)", path, name, obj,
                         (long long)x, lo, hi);
    }
    *v = (int)x;
    return QSNN_OK;
}

static qsnn_status read_str_attr_into(qsnn_ctx *ctx, const char *path, hid_t loc, const char *name, char *dst,
                                      size_t n) {
    char *s = NULL;
    qsnn_status st = qsnn_h5_read_attr_str(ctx, path, loc, name, &s);
    if (!st) snprintf(dst, n, "%s", s);
    qsnn_free(ctx, s);
    return st;
}

static qsnn_status read_levels_attr(qsnn_ctx *ctx, const char *path, hid_t g, qsnn_trace_layer *L) {
    hid_t a = H5Aopen(g, "state_levels", H5P_DEFAULT);
    if (a < 0) return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: quantized layer without a state_levels attribute", path);
    hid_t sp = H5Aget_space(a);
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0) H5Sclose(sp);
    qsnn_status st = QSNN_OK;
    if (n < 2 || n > 65536) st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: state_levels has %lld values", path, (long long)n);
    else if (!(L->levels = qsnn_malloc(ctx, (size_t)n * sizeof(float)))) st = QSNN_ERR_NOMEM;
    else if (H5Aread(a, H5T_NATIVE_FLOAT, L->levels) < 0) st = qsnn_h5_fail(ctx, path, "cannot read state_levels");
    else L->n_levels = (int)n;
    H5Aclose(a);
    return st;
}

static qsnn_status read_layer(qsnn_ctx *ctx, const char *path, hid_t layers, int l, qsnn_trace *t) {
    qsnn_trace_layer *L = &t->layer[l];
    char name[32];
    snprintf(name, sizeof name, "layer%d", l);
    hid_t g, sg = -1;
    qsnn_status st = qsnn_h5_group_open(ctx, path, layers, name, &g);
    if (st) return st;
    int T;
    if ((st = read_int_attr(ctx, path, g, "in", 1, 1 << 30, &L->in)) ||
        (st = read_int_attr(ctx, path, g, "out", 1, 1 << 30, &L->out)) ||
        (st = read_int_attr(ctx, path, g, "T", t->T, t->T, &T)) ||
        (st = read_str_attr_into(ctx, path, g, "neuron", L->neuron, sizeof L->neuron)) ||
        (st = read_str_attr_into(ctx, path, g, "reset", L->reset, sizeof L->reset)) ||
        (st = qsnn_h5_read_attr_f64(ctx, path, g, "beta", &L->beta)) ||
        (st = qsnn_h5_read_attr_f64(ctx, path, g, "theta", &L->theta)) ||
        (st = read_int_attr(ctx, path, g, "weight_bits", 0, 32, &L->weight_bits)) ||
        (st = read_int_attr(ctx, path, g, "state_bits", 0, 16, &L->state_bits)) ||
        (st = read_str_attr_into(ctx, path, g, "state_grid", L->state_grid, sizeof L->state_grid)) ||
        (st = read_str_attr_into(ctx, path, g, "weight_granularity", L->weight_granularity,
                                 sizeof L->weight_granularity)))
        goto done;
    if (L->state_bits > 0 && (st = read_levels_attr(ctx, path, g, L))) goto done;
    const int prev_out = l ? t->layer[l - 1].out : t->F;
    if (L->in != prev_out) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: layers/%s has %d inputs, the layer before it %d outputs", path, name,
                       L->in, prev_out);
        goto done;
    }
    if ((st = qsnn_h5_group_open(ctx, path, g, "spikes", &sg))) goto done;
    hsize_t e[1] = {0};
    if ((st = read_ds(ctx, path, sg, "sample", H5T_INTEGER, 1, e, H5T_NATIVE_INT32, 4, (void **)&L->ev_sample)))
        goto done;
    if ((st = read_ds(ctx, path, sg, "step", H5T_INTEGER, 1, e, H5T_NATIVE_INT32, 4, (void **)&L->ev_step))) goto done;
    if ((st = read_ds(ctx, path, sg, "neuron", H5T_INTEGER, 1, e, H5T_NATIVE_INT32, 4, (void **)&L->ev_neuron)))
        goto done;
    L->n_events = (int64_t)e[0];
    for (int64_t i = 0; i < L->n_events; i++)
        if (L->ev_sample[i] < 0 || L->ev_sample[i] >= t->N || L->ev_step[i] < 0 || L->ev_step[i] >= t->T ||
            L->ev_neuron[i] < 0 || L->ev_neuron[i] >= L->out) {
            st = qsnn_fail(ctx, QSNN_ERR_FORMAT,
                           "%s: layers/%s/spikes row %lld is (sample %d, step %d, neuron %d), outside [%d][%d][%d]",
                           path, name, (long long)i, (int)L->ev_sample[i], (int)L->ev_step[i], (int)L->ev_neuron[i],
                           t->N, t->T, L->out);
            goto done;
        }
    if (!qsnn_h5_exists(g, "neurons")) goto done; /* no membranes recorded */
    hsize_t kd[1] = {0};
    if ((st = read_ds(ctx, path, g, "neurons", H5T_INTEGER, 1, kd, H5T_NATIVE_INT32, 4, (void **)&L->neurons)))
        goto done;
    L->k = (int)kd[0];
    for (int j = 0; j < L->k; j++)
        if (L->neurons[j] < 0 || L->neurons[j] >= L->out || (j && L->neurons[j] <= L->neurons[j - 1])) {
            st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: layers/%s/neurons[%d] = %d (ascending indices below %d expected)",
                           path, name, j, (int)L->neurons[j], L->out);
            goto done;
        }
    hsize_t md[3] = {(hsize_t)t->N, (hsize_t)t->T, kd[0]};
    if ((st = read_ds(ctx, path, g, "membrane", H5T_FLOAT, 3, md, H5T_NATIVE_FLOAT, 4, (void **)&L->membrane)))
        goto done;
    if (L->n_levels) {
        hsize_t ld[3] = {(hsize_t)t->N, (hsize_t)t->T, kd[0]};
        if ((st = read_ds(ctx, path, g, "membrane_level", H5T_INTEGER, 3, ld, H5T_NATIVE_INT32, 4,
                          (void **)&L->level)))
            goto done;
        const size_t n = (size_t)t->N * t->T * L->k;
        for (size_t i = 0; i < n; i++)
            if (L->level[i] < 0 || L->level[i] >= L->n_levels) {
                st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: layers/%s/membrane_level holds %d (the grid has %d levels)",
                               path, name, (int)L->level[i], L->n_levels);
                goto done;
            }
    }
done:
    if (sg >= 0) H5Gclose(sg);
    H5Gclose(g);
    return st;
}

qsnn_status qsnn_trace_read(qsnn_ctx *ctx, const char *path, const char *group, qsnn_trace **out) {
    *out = NULL;
    hid_t f, r = -1, ig = -1, lg = -1;
    qsnn_status st = trace_open(ctx, path, &f);
    if (st) return st;
    qsnn_trace *t = qsnn_calloc(ctx, 1, sizeof *t);
    if (!t) {
        H5Fclose(f);
        return QSNN_ERR_NOMEM;
    }
    int64_t seed = 0, ee = 0;
    if ((st = qsnn_h5_read_attr_i64(ctx, path, f, "seed", &seed))) goto done;
    t->seed = (long long)seed;
    if ((st = qsnn_h5_read_attr_str(ctx, path, f, "command_line", &t->command_line))) goto done;
    if ((st = qsnn_h5_read_str(ctx, path, f, "config", &t->config_yaml))) goto done;
    if ((st = open_recording(ctx, path, f, group, &r))) goto done;
    if ((st = read_int_attr(ctx, path, r, "samples", 1, 1 << 30, &t->N)) ||
        (st = read_int_attr(ctx, path, r, "steps", 1, 32767, &t->T)) ||
        (st = read_int_attr(ctx, path, r, "n_layers", 1, QSNN_MAX_LAYERS, &t->n_layers)) ||
        (st = read_int_attr(ctx, path, r, "epoch", 0, 1 << 30, &t->epoch)))
        goto done;
    if ((st = qsnn_h5_group_open(ctx, path, r, "input", &ig))) goto done;
    if ((st = read_str_attr_into(ctx, path, ig, "encoding", t->encoding, sizeof t->encoding)) ||
        (st = read_int_attr(ctx, path, ig, "static", 0, 1, &t->is_static)) ||
        (st = qsnn_h5_read_attr_i64(ctx, path, ig, "encoder_epoch", &ee)))
        goto done;
    t->encoder_epoch = (uint64_t)ee;
    hsize_t n1[1] = {(hsize_t)t->N};
    if ((st = read_ds(ctx, path, ig, "sample_index", H5T_INTEGER, 1, n1, H5T_NATIVE_INT64, 8,
                      (void **)&t->sample_index)) ||
        (st = read_ds(ctx, path, ig, "label", H5T_INTEGER, 1, n1, H5T_NATIVE_INT32, 4, (void **)&t->label)))
        goto done;
    if (t->is_static) {
        hsize_t d[2] = {(hsize_t)t->N, 0};
        if ((st = read_ds(ctx, path, ig, "x", H5T_FLOAT, 2, d, H5T_NATIVE_FLOAT, 4, (void **)&t->x))) goto done;
        t->F = (int)d[1];
    } else {
        hsize_t d[3] = {(hsize_t)t->N, (hsize_t)t->T, 0};
        uint8_t *u = NULL;
        if ((st = read_ds(ctx, path, ig, "spikes", H5T_INTEGER, 3, d, H5T_NATIVE_UINT8, 1, (void **)&u))) goto done;
        t->F = (int)d[2];
        const size_t n = (size_t)t->N * t->T * t->F;
        if (!(t->x = qsnn_malloc(ctx, (n ? n : 1) * sizeof(float)))) {
            qsnn_free(ctx, u);
            st = QSNN_ERR_NOMEM;
            goto done;
        }
        for (size_t i = 0; i < n && !st; i++) {
            if (u[i] > 1) st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: input/spikes holds %d (0 or 1 expected)", path, u[i]);
            t->x[i] = (float)u[i];
        }
        qsnn_free(ctx, u);
        if (st) goto done;
    }
    if (t->F < 1) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: the input has no features", path);
        goto done;
    }
    if ((st = qsnn_h5_group_open(ctx, path, r, "layers", &lg))) goto done;
    for (int l = 0; l < t->n_layers && !st; l++) st = read_layer(ctx, path, lg, l, t);
done:
    if (lg >= 0) H5Gclose(lg);
    if (ig >= 0) H5Gclose(ig);
    if (r >= 0) H5Gclose(r);
    H5Fclose(f);
    if (st) qsnn_trace_destroy(ctx, &t);
    *out = t;
    return st;
}

void qsnn_trace_destroy(qsnn_ctx *ctx, qsnn_trace **pt) {
    if (!pt || !*pt) return;
    qsnn_trace *t = *pt;
    for (int l = 0; l < QSNN_MAX_LAYERS; l++) {
        qsnn_trace_layer *L = &t->layer[l];
        qsnn_free(ctx, L->levels);
        qsnn_free(ctx, L->ev_sample);
        qsnn_free(ctx, L->ev_step);
        qsnn_free(ctx, L->ev_neuron);
        qsnn_free(ctx, L->neurons);
        qsnn_free(ctx, L->membrane);
        qsnn_free(ctx, L->level);
    }
    qsnn_free(ctx, t->config_yaml);
    qsnn_free(ctx, t->command_line);
    qsnn_free(ctx, t->sample_index);
    qsnn_free(ctx, t->label);
    qsnn_free(ctx, t->x);
    qsnn_free(ctx, t);
    *pt = NULL;
}

void qsnn_trace_input_batch(const qsnn_trace *t, int s0, int B, float *out) {
    const size_t F = (size_t)t->F;
    if (t->is_static) {
        memcpy(out, t->x + (size_t)s0 * F, (size_t)B * F * sizeof(float));
        return;
    }
    for (int b = 0; b < B; b++)
        for (int s = 0; s < t->T; s++)
            memcpy(out + ((size_t)s * B + b) * F, t->x + ((size_t)(s0 + b) * t->T + s) * F, F * sizeof(float));
}

qsnn_status qsnn_trace_load_params(qsnn_ctx *ctx, const char *path, const char *group, qsnn_net *net) {
    hid_t f, r = -1, g = -1;
    qsnn_status st = trace_open(ctx, path, &f);
    if (st) return st;
    qsnn_param list[QSNN_MAX_PARAMS];
    const int np = qsnn_net_params(net, list);
    size_t total = 0, off[QSNN_MAX_PARAMS];
    for (int i = 0; i < np; i++) off[i] = total, total += list[i].n;
    float *buf = NULL;
    if ((st = open_recording(ctx, path, f, group, &r))) goto done;
    if ((st = qsnn_h5_group_open(ctx, path, r, "model/params", &g))) goto done;
    H5G_info_t info;
    if (H5Gget_info(g, &info) < 0) {
        st = qsnn_h5_fail(ctx, path, "cannot list model/params");
        goto done;
    }
    if (info.nlinks != (hsize_t)np) {
        st = qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s: model/params has %llu parameters, the config's network %d", path,
                       (unsigned long long)info.nlinks, np);
        goto done;
    }
    if (!(buf = qsnn_malloc(ctx, (total ? total : 1) * sizeof(float)))) {
        st = QSNN_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < np && !st; i++) {
        float *v = buf + off[i];
        if ((st = qsnn_h5_read_f32(ctx, path, g, list[i].name, v, list[i].n))) break;
        for (size_t j = 0; j < list[i].n; j++)
            if (!isfinite(v[j])) {
                st = qsnn_fail(ctx, QSNN_ERR_NUMERIC, "%s: model/params/%s[%zu] is %g", path, list[i].name, j,
                               (double)v[j]);
                break;
            }
    }
    if (st) goto done;
    for (int i = 0; i < np; i++) memcpy(list[i].data, buf + off[i], list[i].n * sizeof(float));
    st = qsnn_net_prepare(net);
done:
    qsnn_free(ctx, buf);
    if (g >= 0) H5Gclose(g);
    if (r >= 0) H5Gclose(r);
    H5Fclose(f);
    return st;
}
