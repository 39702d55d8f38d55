/* The continuous-time engine for population networks: one CVODE integrator per neuron
 * (sim/cvode_engine.h), coupled only through delayed spikes.
 *
 * Because every synaptic delay is at least D (the shortest one), a spike at time t cannot affect
 * anything before t + D: the run proceeds in windows of length D (rounded down to whole dt), and
 * within a window every neuron integrates independently (in parallel), from its queued inputs,
 * with exact spike times. At the end of a window its spikes are sorted by (time, population,
 * neuron) and turned into timed inputs for the targets. Delays of 0 (instantaneous in the
 * time-stepped engine, where a spike takes effect at the next update) are taken as dt here; the
 * run says so on stderr through the sink's caller (cmd_simulate).
 * Poisson sources fire at the same step times, from the same random numbers, as in the
 * time-stepped engine, so both engines see identical input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/rng.h"
#include "core/timer.h"
#include "sim/popnet.h"

typedef struct ev {   /* a timed input to one neuron */
    double t;
    int64_t gid;      /* global neuron index */
    int state;
    double w;
    int64_t seq;      /* creation order: ties keep it */
} ev;

typedef struct spk {
    double t;
    int pop;
    int32_t i;
} spk;

typedef struct vec {  /* growable array (grows rarely; sized from the previous window) */
    void *a;
    int64_t n, cap;
    size_t elem;
} vec;

static int vec_push(qsnn_ctx *ctx, vec *v, const void *x) {
    if (v->n == v->cap) {
        const int64_t cap = v->cap ? 2 * v->cap : 1024;
        void *a = qsnn_malloc(ctx, (size_t)cap * v->elem);
        if (!a) return -1;
        if (v->n) memcpy(a, v->a, (size_t)v->n * v->elem);
        qsnn_free(ctx, v->a);
        v->a = a;
        v->cap = cap;
    }
    memcpy((char *)v->a + (size_t)v->n * v->elem, x, v->elem);
    v->n++;
    return 0;
}

static int cmp_spk(const void *a, const void *b) {
    const spk *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    if (x->pop != y->pop) return x->pop < y->pop ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int cmp_ev(const void *a, const void *b) {
    const ev *x = a, *y = b;
    if (x->gid != y->gid) return x->gid < y->gid ? -1 : 1;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

typedef struct tl_spikes { /* one thread's spikes of a window */
    qsnn_ctx *ctx;
    vec v;
    int pop;
    int32_t i;
    int failed;
} tl_spikes;

static void on_spike(void *user, double t) {
    tl_spikes *s = user;
    const spk x = {t, s->pop, s->i};
    if (vec_push(s->ctx, &s->v, &x)) s->failed = 1;
}

qsnn_status qsnn_popnet_run_cvode(qsnn_popnet *net, double duration, const qsnn_cvode_opts *opts,
                                  const qsnn_sim_sink *sink, qsnn_sim_stats *stats) {
    qsnn_ctx *ctx = net->ctx;
    if (!net->built) return qsnn_fail(ctx, QSNN_ERR_ARG, "simulate: network not built");
    if (!(duration >= 0.0) || !isfinite(duration))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "duration = %g s: must be >= 0", duration);
    const double dt = net->dt;
    const int64_t n_steps = (int64_t)llround(duration / dt);
    /* window in steps: the shortest effective delay */
    int64_t wsteps = 1000;
    for (int j = 0; j < net->n_proj; j++) {
        const double d = net->proj[j].delay > dt ? net->proj[j].delay : dt;
        int64_t s = (int64_t)floor(d / dt * (1.0 + 1e-12));
        if (s < 1) s = 1;
        if (s < wsteps) wsteps = s;
    }
    int64_t gbase[QSNN_POP_MAX + 1];
    gbase[0] = 0;
    for (int p = 0; p < net->n_pops; p++) gbase[p + 1] = gbase[p] + net->pop[p].n;
    const int64_t N = gbase[net->n_pops];
    int nt = qsnn_ctx_threads(ctx);
    if (nt > N / 256) nt = N >= 512 ? (int)(N / 256) : 1; /* a parallel region per window must pay */
    qsnn_status st = QSNN_OK;
    qsnn_ct_cell **cell = qsnn_calloc(ctx, (size_t)N, sizeof *cell);
    int64_t *in_start = qsnn_calloc(ctx, (size_t)N + 1, sizeof *in_start);
    tl_spikes *tl = qsnn_calloc(ctx, (size_t)nt, sizeof *tl);
    char (*errs)[320] = qsnn_calloc(ctx, (size_t)nt, sizeof *errs);
    int64_t *err_gid = qsnn_calloc(ctx, (size_t)nt, sizeof *err_gid);
    double *sample_t = qsnn_malloc(ctx, (size_t)wsteps * sizeof *sample_t);
    double *samples[QSNN_POP_MAX] = {0};
    vec pending = {NULL, 0, 0, sizeof(ev)}, later = {NULL, 0, 0, sizeof(ev)}, spikes = {NULL, 0, 0, sizeof(spk)};
    int32_t *idx = NULL;
    double *tbuf = NULL, *rec = NULL;
    double rt0 = qsnn_now();
    long steps_total = 0, reinits_total = 0;
    if (!cell || !in_start || !tl || !errs || !err_gid || !sample_t) {
        st = QSNN_ERR_NOMEM;
        goto done;
    }
    int max_n = 1, max_rec = 1;
    for (int p = 0; p < net->n_pops; p++) {
        qsnn_population *P = &net->pop[p];
        P->n_spikes = 0;
        if (P->n > max_n) max_n = P->n;
        if (!P->model || !P->n_record) continue;
        const int ns = P->model->n_states;
        if (P->n_record * ns > max_rec) max_rec = P->n_record * ns;
        samples[p] = qsnn_malloc(ctx, (size_t)P->n_record * (size_t)wsteps * (size_t)ns * sizeof(double));
        if (!samples[p]) {
            st = QSNN_ERR_NOMEM;
            goto done;
        }
    }
    idx = qsnn_malloc(ctx, (size_t)max_n * sizeof *idx);
    tbuf = qsnn_malloc(ctx, (size_t)max_n * sizeof *tbuf);
    rec = qsnn_malloc(ctx, (size_t)max_rec * sizeof *rec);
    if (!idx || !tbuf || !rec) {
        st = QSNN_ERR_NOMEM;
        goto done;
    }
    for (int th = 0; th < nt; th++) tl[th] = (tl_spikes){ctx, {NULL, 0, 0, sizeof(spk)}, 0, 0, 0};
    for (int p = 0; p < net->n_pops; p++) {
        qsnn_population *P = &net->pop[p];
        if (!P->model) continue;
        for (int i = 0; i < P->n; i++) {
            double y0[QSNN_CT_MAX_STATES];
            for (int k = 0; k < P->model->n_states; k++) y0[k] = P->y[k][i];
            if ((st = qsnn_ct_cell_create(ctx, P->model, P->params, y0, 0.0, opts, &cell[gbase[p] + i]))) {
                char m[512];
                snprintf(m, sizeof m, "%s", qsnn_last_error(ctx));
                st = qsnn_fail(ctx, st, "population %s neuron %d: %s", P->name, i, m);
                goto done;
            }
        }
    }
    rt0 = qsnn_now();
    int64_t seq = 0;
    for (int64_t k0 = 0; k0 < n_steps; k0 += wsteps) {
        const int64_t k1 = k0 + wsteps < n_steps ? k0 + wsteps : n_steps;
        const double t1 = (double)k1 * dt;
        /* inputs due in this window (t < t1), grouped by neuron, in time order */
        int64_t n_due = 0;
        later.n = 0;
        for (int64_t e = 0; e < pending.n; e++) {
            ev *x = (ev *)pending.a + e;
            if (x->t < t1) ((ev *)pending.a)[n_due++] = *x;
            else if (vec_push(ctx, &later, x)) {
                st = QSNN_ERR_NOMEM;
                goto done;
            }
        }
        qsort(pending.a, (size_t)n_due, sizeof(ev), cmp_ev);
        memset(in_start, 0, (size_t)(N + 1) * sizeof *in_start);
        for (int64_t e = 0; e < n_due; e++) in_start[((ev *)pending.a)[e].gid + 1]++;
        for (int64_t g = 0; g < N; g++) in_start[g + 1] += in_start[g];
        const int ns_win = (int)(k1 - k0);
        for (int s = 0; s < ns_win; s++) sample_t[s] = (double)(k0 + s + 1) * dt;
        for (int th = 0; th < nt; th++) tl[th].v.n = 0, errs[th][0] = 0, err_gid[th] = -1;
        int stop = 0;
        #pragma omp parallel for schedule(dynamic, 8) num_threads(nt)
        for (int64_t g = 0; g < N; g++) {
#ifdef _OPENMP
            const int th = omp_get_thread_num();
#else
            const int th = 0;
#endif
            if (stop || !cell[g] || err_gid[th] >= 0) continue;
            int p = 0;
            while (g >= gbase[p + 1]) p++;
            const qsnn_population *P = &net->pop[p];
            const int i = (int)(g - gbase[p]);
            qsnn_ct_input in_buf[64], *in = in_buf;
            const int64_t n_in = in_start[g + 1] - in_start[g];
            qsnn_ct_input *heap = NULL;
            if (n_in > 64) in = heap = malloc((size_t)n_in * sizeof *in);
            if (!in) {
                snprintf(errs[th], sizeof errs[th], "out of memory");
                err_gid[th] = g;
                continue;
            }
            for (int64_t e = 0; e < n_in; e++) {
                const ev *x = (const ev *)pending.a + in_start[g] + e;
                in[e] = (qsnn_ct_input){x->t, x->state, x->w};
            }
            /* recorded? */
            double *smp = NULL;
            int n_smp = 0;
            if (samples[p]) {
                for (int r = 0; r < P->n_record; r++)
                    if (P->record[r] == i) {
                        smp = samples[p] + (size_t)r * (size_t)wsteps * (size_t)P->model->n_states;
                        n_smp = ns_win;
                    }
            }
            tl[th].pop = p;
            tl[th].i = i;
            const qsnn_status s = qsnn_ct_cell_advance(cell[g], t1, in, (int)n_in, on_spike, &tl[th], sample_t, n_smp,
                                                       smp, errs[th], sizeof errs[th]);
            free(heap);
            if (s || tl[th].failed) {
                if (!s) snprintf(errs[th], sizeof errs[th], "out of memory");
                err_gid[th] = g;
                stop = 1;
            }
        }
        { /* the failing neuron with the lowest index, whatever the thread count */
            int64_t bad = -1;
            int bt = 0;
            for (int th = 0; th < nt; th++)
                if (err_gid[th] >= 0 && (bad < 0 || err_gid[th] < bad)) bad = err_gid[th], bt = th;
            if (bad >= 0) {
                int p = 0;
                while (bad >= gbase[p + 1]) p++;
                st = qsnn_fail(ctx, QSNN_ERR_NUMERIC, "population %s neuron %lld: %s", net->pop[p].name,
                               (long long)(bad - gbase[p]), errs[bt]);
                goto done;
            }
        }
        /* Poisson sources: the step engine's random numbers, stamped at step ends */
        spikes.n = 0;
        for (int th = 0; th < nt; th++)
            for (int64_t s = 0; s < tl[th].v.n; s++)
                if (vec_push(ctx, &spikes, (spk *)tl[th].v.a + s)) {
                    st = QSNN_ERR_NOMEM;
                    goto done;
                }
        for (int p = 0; p < net->n_pops; p++) {
            const qsnn_population *P = &net->pop[p];
            if (P->model) continue;
            const int64_t quads = ((int64_t)P->n + 3) / 4;
            const double thr = P->rate * dt * 4294967296.0;
            uint32_t w[4];
            for (int64_t k = k0; k < k1; k++)
                for (int64_t q = 0; q < quads; q++) {
                    qsnn_philox(net->seed, QSNN_STREAM_SIM_POISSON + (uint64_t)p, (uint64_t)(k * quads + q), w);
                    for (int b = 0; b < 4 && 4 * q + b < P->n; b++)
                        if ((double)w[b] < thr) {
                            const spk x = {(double)(k + 1) * dt, p, (int32_t)(4 * q + b)};
                            if (vec_push(ctx, &spikes, &x)) {
                                st = QSNN_ERR_NOMEM;
                                goto done;
                            }
                        }
                }
        }
        qsort(spikes.a, (size_t)spikes.n, sizeof(spk), cmp_spk);
        /* report per population, then fan out into timed inputs */
        for (int p = 0; p < net->n_pops; p++) {
            int64_t c = 0;
            for (int64_t s = 0; s <= spikes.n; s++) {
                const spk *x = (const spk *)spikes.a + s;
                if (s < spikes.n && x->pop != p) continue;
                if (s < spikes.n) {
                    tbuf[c] = x->t;
                    idx[c++] = x->i;
                }
                if (c == max_n || (s == spikes.n && c)) { /* a neuron may fire more than once per window */
                    net->pop[p].n_spikes += c;
                    if (sink && sink->spikes && (st = sink->spikes(sink->user, p, tbuf, idx, c))) goto done;
                    c = 0;
                }
            }
        }
        pending.n = 0;
        for (int64_t e = 0; e < later.n; e++) vec_push(ctx, &pending, (ev *)later.a + e);
        for (int64_t s = 0; s < spikes.n; s++) {
            const spk *x = (const spk *)spikes.a + s;
            for (int j = 0; j < net->n_proj; j++) {
                const qsnn_projection *J = &net->proj[j];
                if (J->pre != x->pop) continue;
                const double d = J->delay > dt ? J->delay : dt;
                for (int64_t e = J->row[x->i]; e < J->row[x->i + 1]; e++) {
                    const ev y = {x->t + d, gbase[J->post] + J->col[e], J->target, J->w ? (double)J->w[e] : J->weight,
                                  seq++};
                    if (vec_push(ctx, &pending, &y)) {
                        st = QSNN_ERR_NOMEM;
                        goto done;
                    }
                }
            }
        }
        if (sink && sink->states)
            for (int s = 0; s < ns_win; s++)
                for (int p = 0; p < net->n_pops; p++) {
                    const qsnn_population *P = &net->pop[p];
                    if (!samples[p]) continue;
                    const int ns = P->model->n_states;
                    for (int r = 0; r < P->n_record; r++)
                        memcpy(rec + (size_t)r * ns, samples[p] + ((size_t)r * (size_t)wsteps + (size_t)s) * ns,
                               (size_t)ns * sizeof *rec);
                    if ((st = sink->states(sink->user, p, k0 + s + 1, rec))) goto done;
                }
        if (sink && sink->progress) sink->progress(sink->user, t1, (double)n_steps * dt);
    }
done:
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->wall_s = qsnn_now() - rt0;
        for (int p = 0; p < net->n_pops; p++) {
            stats->n_spikes += net->pop[p].n_spikes;
            stats->n_neurons += net->pop[p].n;
        }
        for (int j = 0; j < net->n_proj; j++) stats->n_synapses += net->proj[j].n_syn;
        qsnn_popnet_memory(net, &stats->bytes_synapses, &stats->bytes_neurons);
    }
    if (cell) {
        for (int p = 0; p < net->n_pops; p++) { /* the final states back into the network */
            qsnn_population *P = &net->pop[p];
            if (!P->model) continue;
            for (int i = 0; i < P->n; i++) {
                qsnn_ct_cell *c = cell[gbase[p] + i];
                if (!c) continue;
                if (st == QSNN_OK) {
                    const double *y = qsnn_ct_cell_state(c);
                    for (int k = 0; k < P->model->n_states; k++) P->y[k][i] = y[k];
                }
                long s, r;
                qsnn_ct_cell_stats(c, &s, &r);
                steps_total += s;
                reinits_total += r;
                qsnn_ct_cell_destroy(&cell[gbase[p] + i]);
            }
        }
    }
    if (stats) stats->cvode_steps = steps_total, stats->cvode_reinits = reinits_total;
    for (int th = 0; tl && th < nt; th++) qsnn_free(ctx, tl[th].v.a);
    for (int p = 0; p < QSNN_POP_MAX; p++) qsnn_free(ctx, samples[p]);
    qsnn_free(ctx, pending.a);
    qsnn_free(ctx, later.a);
    qsnn_free(ctx, spikes.a);
    qsnn_free(ctx, cell);
    qsnn_free(ctx, in_start);
    qsnn_free(ctx, tl);
    qsnn_free(ctx, errs);
    qsnn_free(ctx, err_gid);
    qsnn_free(ctx, sample_t);
    qsnn_free(ctx, idx);
    qsnn_free(ctx, tbuf);
    qsnn_free(ctx, rec);
    return st;
}
