#include "io/spike_log.h"
#include "io/h5atomic.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io/h5util.h"

#ifndef QSNN_VERSION
#define QSNN_VERSION "?"
#endif

#define SPIKE_BLOCK 65536 /* spikes buffered per population before an append */
#define STATE_BLOCK 1024  /* steps buffered per population before an append */

typedef struct pop_out {
    hid_t g, t_ds, n_ds;
    hid_t s_ds[QSNN_CT_MAX_STATES];
    double *tb;
    int32_t *nb;
    int64_t nbuf, written;
    float *sb;            /* [STATE_BLOCK][n_states][k], then [STATE_BLOCK][k] scratch */
    int64_t sbuf, s_written;
    int k, ns;
} pop_out;

struct qsnn_spike_log {
    qsnn_ctx *ctx;
    char *path;
    qsnn_h5_atomic out; /* the temporary file, renamed over path by commit */
    hid_t f;            /* out.fid while open */
    int n_pops;
    pop_out pop[QSNN_POP_MAX];
    const qsnn_popnet *net;
    int committed;
};

/* ---- helpers ---------------------------------------------------------------------------------- */

static qsnn_status ext_dataset(qsnn_spike_log *L, hid_t loc, const char *name, hid_t type, int rank, hsize_t cols,
                               hid_t *out) {
    hsize_t dims[2] = {0, cols}, maxd[2] = {H5S_UNLIMITED, cols};
    hsize_t chunk[2] = {rank == 1 ? SPIKE_BLOCK : STATE_BLOCK, cols ? cols : 1};
    if (rank == 2 && chunk[0] * chunk[1] > (1u << 20)) chunk[0] = (1u << 20) / chunk[1] ? (1u << 20) / chunk[1] : 1;
    hid_t sp = H5Screate_simple(rank, dims, maxd);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    qsnn_status st = QSNN_OK;
    if (sp < 0 || pl < 0 || H5Pset_chunk(pl, rank, chunk) < 0 || H5Pset_deflate(pl, 1) < 0 ||
        (*out = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, pl, H5P_DEFAULT)) < 0) {
        char what[128];
        snprintf(what, sizeof what, "cannot create dataset %s", name);
        st = qsnn_h5_fail(L->ctx, L->path, what);
    }
    if (pl >= 0) H5Pclose(pl);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

/* Appends `rows` rows to an extendable dataset of rank 1 or 2. */
static qsnn_status append(qsnn_spike_log *L, hid_t ds, hid_t mtype, int rank, hsize_t cols, hsize_t at, hsize_t rows,
                          const void *data, const char *what) {
    if (!rows) return QSNN_OK;
    hsize_t size[2] = {at + rows, cols}, start[2] = {at, 0}, count[2] = {rows, cols};
    hid_t fs = -1, ms = -1;
    qsnn_status st = QSNN_OK;
    if (H5Dset_extent(ds, size) < 0 || (fs = H5Dget_space(ds)) < 0 ||
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        (ms = H5Screate_simple(rank, count, NULL)) < 0 || H5Dwrite(ds, mtype, ms, fs, H5P_DEFAULT, data) < 0)
        st = qsnn_h5_fail(L->ctx, L->path, what);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return st;
}

static qsnn_status int_array_attr(qsnn_spike_log *L, hid_t loc, const char *name, const int32_t *v, hsize_t n) {
    hid_t sp = H5Screate_simple(1, &n, NULL), a = -1;
    qsnn_status st = QSNN_OK;
    if (sp < 0 || (a = H5Acreate2(loc, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, H5T_NATIVE_INT32, v) < 0)
        st = qsnn_h5_fail(L->ctx, L->path, "cannot write attribute neurons");
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

static qsnn_status flush_spikes(qsnn_spike_log *L, int p) {
    pop_out *o = &L->pop[p];
    char what[96];
    snprintf(what, sizeof what, "cannot append spikes of population %s", L->net->pop[p].name);
    qsnn_status st = append(L, o->t_ds, H5T_NATIVE_DOUBLE, 1, 0, (hsize_t)o->written, (hsize_t)o->nbuf, o->tb, what);
    if (!st) st = append(L, o->n_ds, H5T_NATIVE_INT32, 1, 0, (hsize_t)o->written, (hsize_t)o->nbuf, o->nb, what);
    o->written += o->nbuf;
    o->nbuf = 0;
    return st;
}

static qsnn_status flush_states(qsnn_spike_log *L, int p) {
    pop_out *o = &L->pop[p];
    if (!o->sbuf) return QSNN_OK;
    char what[96];
    snprintf(what, sizeof what, "cannot append states of population %s", L->net->pop[p].name);
    /* the block is [step][state][k]: one state's rows are strided, so transpose into a scratch copy */
    float *tmp = o->sb + (size_t)STATE_BLOCK * o->ns * o->k;
    for (int s = 0; s < o->ns; s++) {
        for (int64_t r = 0; r < o->sbuf; r++)
            memcpy(tmp + (size_t)r * o->k, o->sb + ((size_t)r * o->ns + s) * o->k, (size_t)o->k * sizeof *tmp);
        qsnn_status st = append(L, o->s_ds[s], H5T_NATIVE_FLOAT, 2, (hsize_t)o->k, (hsize_t)o->s_written,
                                (hsize_t)o->sbuf, tmp, what);
        if (st) return st;
    }
    o->s_written += o->sbuf;
    o->sbuf = 0;
    return QSNN_OK;
}

/* ---- public ----------------------------------------------------------------------------------- */

qsnn_status qsnn_spike_log_create(qsnn_ctx *ctx, const char *path, const qsnn_spike_log_meta *meta,
                                  const qsnn_popnet *net, qsnn_spike_log **out) {
    *out = NULL;
    qsnn_h5_quiet();
    qsnn_spike_log *L = qsnn_calloc(ctx, 1, sizeof *L);
    if (!L) return QSNN_ERR_NOMEM;
    L->ctx = ctx;
    L->net = net;
    L->f = -1;
    L->out.fid = -1, L->out.slot = -1;
    for (int p = 0; p < QSNN_POP_MAX; p++) {
        L->pop[p].g = L->pop[p].t_ds = L->pop[p].n_ds = -1;
        for (int s = 0; s < QSNN_CT_MAX_STATES; s++) L->pop[p].s_ds[s] = -1;
    }
    const size_t plen = strlen(path);
    L->path = qsnn_malloc(ctx, plen + 1);
    if (!L->path) {
        qsnn_spike_log_destroy(&L);
        return QSNN_ERR_NOMEM;
    }
    memcpy(L->path, path, plen + 1);
    qsnn_status st = qsnn_h5_atomic_create(ctx, L->path, &L->out);
    if (st) {
        qsnn_spike_log_destroy(&L);
        return st;
    }
    L->f = L->out.fid;
    const char *file = path;
    hid_t f = L->f, pops = -1;
    int64_t n_steps = (int64_t)((meta->duration / net->dt) + 0.5);
    if ((st = qsnn_h5_write_attr_str(ctx, file, f, "format", QSNN_SIM_FORMAT)) ||
        (st = qsnn_h5_write_attr_i64(ctx, file, f, "format_version", QSNN_SIM_VERSION)) ||
        (st = qsnn_h5_write_attr_str(ctx, file, f, "qsnn_version", QSNN_VERSION)) ||
        (st = qsnn_h5_write_attr_i64(ctx, file, f, "seed", meta->seed)) ||
        (st = qsnn_h5_write_attr_str(ctx, file, f, "command_line", meta->command_line ? meta->command_line : "")) ||
        (st = qsnn_h5_write_attr_str(ctx, file, f, "engine", meta->engine ? meta->engine : "step")) ||
        (st = qsnn_h5_write_attr_f64(ctx, file, f, "dt", net->dt)) ||
        (st = qsnn_h5_write_attr_f64(ctx, file, f, "duration", meta->duration)) ||
        (st = qsnn_h5_write_attr_i64(ctx, file, f, "n_steps", n_steps)) ||
        (st = qsnn_h5_write_str(ctx, file, f, "config", meta->config_yaml ? meta->config_yaml : "")) ||
        (st = qsnn_h5_group_create(ctx, file, f, "populations", &pops)))
        goto fail;
    L->n_pops = net->n_pops;
    for (int p = 0; p < net->n_pops; p++) {
        const qsnn_population *P = &net->pop[p];
        pop_out *o = &L->pop[p];
        if ((st = qsnn_h5_group_create(ctx, file, pops, P->name, &o->g)) ||
            (st = qsnn_h5_write_attr_i64(ctx, file, o->g, "n", P->n)) ||
            (st = qsnn_h5_write_attr_str(ctx, file, o->g, "model", P->model ? P->model->name : "poisson")))
            goto fail;
        if (P->model) {
            for (int k = 0; k < P->model->n_params; k++)
                if ((st = qsnn_h5_write_attr_f64(ctx, file, o->g, P->model->params[k].name, P->params[k]))) goto fail;
        } else if ((st = qsnn_h5_write_attr_f64(ctx, file, o->g, "rate", P->rate))) {
            goto fail;
        }
        if ((st = ext_dataset(L, o->g, "spike_time", H5T_IEEE_F64LE, 1, 0, &o->t_ds)) ||
            (st = ext_dataset(L, o->g, "spike_neuron", H5T_STD_I32LE, 1, 0, &o->n_ds)))
            goto fail;
        o->tb = qsnn_malloc(ctx, SPIKE_BLOCK * sizeof *o->tb);
        o->nb = qsnn_malloc(ctx, SPIKE_BLOCK * sizeof *o->nb);
        if (!o->tb || !o->nb) {
            st = QSNN_ERR_NOMEM;
            goto fail;
        }
        if (P->model && P->n_record) {
            o->k = P->n_record;
            o->ns = P->model->n_states;
            /* the block, then room for one state's rows transposed out of it */
            o->sb = qsnn_malloc(ctx, (size_t)STATE_BLOCK * ((size_t)o->ns + 1) * (size_t)o->k * sizeof *o->sb);
            hid_t sg = -1;
            if (!o->sb) {
                st = QSNN_ERR_NOMEM;
                goto fail;
            }
            if ((st = qsnn_h5_group_create(ctx, file, o->g, "state", &sg))) goto fail;
            for (int s = 0; s < o->ns && !st; s++) {
                st = ext_dataset(L, sg, P->model->states[s].name, H5T_IEEE_F32LE, 2, (hsize_t)o->k, &o->s_ds[s]);
                if (!st) st = int_array_attr(L, o->s_ds[s], "neurons", P->record, (hsize_t)o->k);
                if (!st) st = qsnn_h5_write_attr_str(ctx, file, o->s_ds[s], "unit", P->model->states[s].unit);
            }
            H5Gclose(sg);
            if (st) goto fail;
        }
    }
    H5Gclose(pops);
    *out = L;
    return QSNN_OK;
fail:
    if (pops >= 0) H5Gclose(pops);
    qsnn_spike_log_destroy(&L);
    return st;
}

qsnn_status qsnn_spike_log_spikes(void *user, int p, const double *t, const int32_t *idx, int64_t n) {
    qsnn_spike_log *L = user;
    pop_out *o = &L->pop[p];
    for (int64_t s = 0; s < n; s++) {
        o->tb[o->nbuf] = t[s];
        o->nb[o->nbuf++] = idx[s];
        if (o->nbuf == SPIKE_BLOCK) {
            qsnn_status st = flush_spikes(L, p);
            if (st) return st;
        }
    }
    return QSNN_OK;
}

qsnn_status qsnn_spike_log_states(void *user, int p, int64_t step, const double *vals) {
    (void)step;
    qsnn_spike_log *L = user;
    pop_out *o = &L->pop[p];
    if (!o->sb) return QSNN_OK;
    float *row = o->sb + (size_t)o->sbuf * o->ns * o->k; /* [state][k] from vals [k][state] */
    for (int r = 0; r < o->k; r++)
        for (int s = 0; s < o->ns; s++) row[(size_t)s * o->k + r] = (float)vals[(size_t)r * o->ns + s];
    if (++o->sbuf == STATE_BLOCK) return flush_states(L, p);
    return QSNN_OK;
}

qsnn_status qsnn_spike_log_commit(qsnn_spike_log *L, const qsnn_sim_stats *stats) {
    qsnn_ctx *ctx = L->ctx;
    const char *file = L->path;
    qsnn_status st;
    int64_t total = 0;
    for (int p = 0; p < L->n_pops; p++) {
        if ((st = flush_spikes(L, p)) || (st = flush_states(L, p))) return st;
        if ((st = qsnn_h5_write_attr_i64(ctx, file, L->pop[p].g, "n_spikes", L->pop[p].written))) return st;
        total += L->pop[p].written;
    }
    if ((st = qsnn_h5_write_attr_i64(ctx, file, L->f, "n_spikes", total))) return st;
    if (stats && (st = qsnn_h5_write_attr_f64(ctx, file, L->f, "wall_s", stats->wall_s))) return st;
    for (int p = 0; p < L->n_pops; p++) {
        pop_out *o = &L->pop[p];
        for (int s = 0; s < QSNN_CT_MAX_STATES; s++)
            if (o->s_ds[s] >= 0) H5Dclose(o->s_ds[s]), o->s_ds[s] = -1;
        if (o->t_ds >= 0) H5Dclose(o->t_ds), o->t_ds = -1;
        if (o->n_ds >= 0) H5Dclose(o->n_ds), o->n_ds = -1;
        if (o->g >= 0) H5Gclose(o->g), o->g = -1;
    }
    L->f = -1; /* the commit closes it, and removes the temporary file on failure */
    st = qsnn_h5_atomic_commit(ctx, &L->out);
    if (!st) L->committed = 1;
    return st;
}

void qsnn_spike_log_destroy(qsnn_spike_log **lp) {
    if (!lp || !*lp) return;
    qsnn_spike_log *L = *lp;
    qsnn_ctx *ctx = L->ctx;
    for (int p = 0; p < QSNN_POP_MAX; p++) {
        pop_out *o = &L->pop[p];
        for (int s = 0; s < QSNN_CT_MAX_STATES; s++)
            if (o->s_ds[s] >= 0) H5Dclose(o->s_ds[s]);
        if (o->t_ds >= 0) H5Dclose(o->t_ds);
        if (o->n_ds >= 0) H5Dclose(o->n_ds);
        if (o->g >= 0) H5Gclose(o->g);
        qsnn_free(ctx, o->tb);
        qsnn_free(ctx, o->nb);
        qsnn_free(ctx, o->sb);
    }
    qsnn_h5_atomic_abort(ctx, &L->out); /* closes and removes the temporary file unless committed */
    qsnn_free(ctx, L->path);
    qsnn_free(ctx, L);
    *lp = NULL;
}
