/* The time-stepped engine for population networks (see sim/popnet.h for the conventions).
 *
 * One OpenMP region spans the whole run, with one barrier per step. Each thread owns a fixed block
 * of every population. Phase A: it advances its block (model step, refractory count, threshold
 * test, reset) and lists the block's spikes in place (lists are double-buffered by step parity).
 * Barrier. Phase B: it walks every thread's spike list in thread order (= ascending neuron index)
 * and adds the weights of the synapses that land in ITS OWN block of each target to the delay ring,
 * then adds the slot due this step to its block's states. No two threads write the same target, and
 * every target sums its inputs in (spike, synapse) order, so results do not depend on the thread
 * count. The master thread hands the step's spikes to the sink after the barrier; recording states
 * takes a second barrier (only when asked for). */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/rng.h"
#include "core/timer.h"
#include "sim/popnet.h"

#define MAX_THREADS 256

struct qsnn_popnet_rt {
    double *ring[QSNN_POP_MAX][QSNN_CT_MAX_STATES]; /* [depth][n] pending inputs per target state */
    int depth[QSNN_POP_MAX][QSNN_CT_MAX_STATES];
    int32_t *spk[2][QSNN_POP_MAX];  /* a step's spikes in per-thread runs (at each block's start), by parity */
    int64_t cnt[2][QSNN_POP_MAX][MAX_THREADS];
    int32_t *joined;                /* one population's spikes for the sink */
    uint32_t *rnd[QSNN_POP_MAX];    /* Poisson random words */
    int *delay_steps;               /* per projection */
    double *tbuf;                   /* spike times handed to the sink */
    double *rec;                    /* recorded states */
    int64_t step0;                  /* steps run before (a second run continues) */
    size_t bytes;
};

void qsnn_popnet_rt_free(qsnn_popnet *net) {
    struct qsnn_popnet_rt *rt = net->rt;
    if (!rt) return;
    qsnn_ctx *ctx = net->ctx;
    for (int p = 0; p < QSNN_POP_MAX; p++) {
        for (int k = 0; k < QSNN_CT_MAX_STATES; k++) qsnn_free(ctx, rt->ring[p][k]);
        qsnn_free(ctx, rt->spk[0][p]);
        qsnn_free(ctx, rt->spk[1][p]);
        qsnn_free(ctx, rt->rnd[p]);
    }
    qsnn_free(ctx, rt->delay_steps);
    qsnn_free(ctx, rt->tbuf);
    qsnn_free(ctx, rt->joined);
    qsnn_free(ctx, rt->rec);
    qsnn_free(ctx, rt);
    net->rt = NULL;
}

static qsnn_status rt_alloc(qsnn_popnet *net) {
    qsnn_ctx *ctx = net->ctx;
    qsnn_popnet_rt_free(net);
    struct qsnn_popnet_rt *rt = qsnn_calloc(ctx, 1, sizeof *rt);
    if (!rt) return QSNN_ERR_NOMEM;
    net->rt = rt;
    rt->delay_steps = qsnn_calloc(ctx, (size_t)net->n_proj + 1, sizeof *rt->delay_steps);
    if (!rt->delay_steps) return QSNN_ERR_NOMEM;
    for (int j = 0; j < net->n_proj; j++) {
        const qsnn_projection *J = &net->proj[j];
        const int d = (int)lround(J->delay / net->dt);
        rt->delay_steps[j] = d;
        if (d + 1 > rt->depth[J->post][J->target]) rt->depth[J->post][J->target] = d + 1;
    }
    int max_n = 1, max_rec = 1;
    for (int p = 0; p < net->n_pops; p++) {
        const qsnn_population *P = &net->pop[p];
        if (P->n > max_n) max_n = P->n;
        if (P->model && P->n_record * P->model->n_states > max_rec) max_rec = P->n_record * P->model->n_states;
        for (int b = 0; b < 2; b++)
            if (!(rt->spk[b][p] = qsnn_malloc(ctx, (size_t)P->n * sizeof(int32_t)))) return QSNN_ERR_NOMEM;
        rt->bytes += 2 * (size_t)P->n * sizeof(int32_t);
        if (!P->model) {
            if (!(rt->rnd[p] = qsnn_malloc(ctx, ((size_t)P->n + 4) * sizeof(uint32_t)))) return QSNN_ERR_NOMEM;
            continue;
        }
        for (int k = 0; k < P->model->n_states; k++) {
            if (!rt->depth[p][k]) continue;
            const size_t sz = (size_t)rt->depth[p][k] * (size_t)P->n;
            if (!(rt->ring[p][k] = qsnn_calloc(ctx, sz, sizeof(double)))) return QSNN_ERR_NOMEM;
            rt->bytes += sz * sizeof(double);
        }
    }
    rt->tbuf = qsnn_malloc(ctx, (size_t)max_n * sizeof(double));
    rt->joined = qsnn_malloc(ctx, (size_t)max_n * sizeof(int32_t));
    if (!rt->joined) return QSNN_ERR_NOMEM;
    rt->rec = qsnn_malloc(ctx, (size_t)max_rec * sizeof(double));
    if (!rt->tbuf || !rt->rec) return QSNN_ERR_NOMEM;
    return QSNN_OK;
}

/* A sense-reversing barrier that spins briefly, then yields the core. libgomp's barrier spins for a
 * long time by default; when the cores are shared with other processes a waiting thread then burns
 * the time slice its partner needs, and a run with one barrier per step took 8x longer on 2 threads
 * than on 1 (measured here under load); with yielding it is never slower than one thread. */
typedef struct step_barrier {
    atomic_int count, sense;
    int n;
} step_barrier;

static void barrier_wait(step_barrier *b, int *local) {
    *local = !*local;
    if (atomic_fetch_add(&b->count, 1) == b->n - 1) {
        atomic_store(&b->count, 0);
        atomic_store(&b->sense, *local);
        return;
    }
    for (int spins = 0; atomic_load(&b->sense) != *local;)
        if (++spins > 2000) sched_yield();
}

/* Block [lo, hi) of thread t of nt over n items, in units of `align`. */
static void block(int n, int t, int nt, int align, int *lo, int *hi) {
    const int units = (n + align - 1) / align;
    const int a = (int)((int64_t)units * t / nt), b = (int)((int64_t)units * (t + 1) / nt);
    *lo = a * align < n ? a * align : n;
    *hi = b * align < n ? b * align : n;
}

/* Advances neurons [lo, hi) of P by one step and lists its spikes at out; returns their count. */
static int64_t step_block(const qsnn_popnet *net, qsnn_population *P, int lo, int hi, int n_ref, int32_t *out) {
    const qsnn_ct_model *m = P->model;
    const int n = hi - lo, ns = m->n_states;
    if (n <= 0) return 0;
    double *y[QSNN_CT_MAX_STATES];
    for (int k = 0; k < ns; k++) y[k] = P->y[k] + lo;
    int32_t *ref = P->ref + lo;
    if (m->step && (!P->exact || m->has_exact)) m->step(P->params, y, ref, n, net->dt, P->exact);
    else qsnn_ct_step_euler_ref(m, P->params, y, ref, n, net->dt);
    for (int i = 0; i < n; i++) ref[i] -= ref[i] > 0;
    int64_t c = 0;
    const double *v = y[0];
    uint8_t *above = P->above + lo;
    if (m->v_thresh_param >= 0 && m->level_threshold) {
        const double vth = P->params[m->v_thresh_param];
        for (int i = 0; i < n; i++)
            if (v[i] > vth && ref[i] == 0) out[c++] = lo + i;
    } else {
        for (int i = 0; i < n; i++) {
            double g;
            if (m->v_thresh_param >= 0) {
                g = v[i] - P->params[m->v_thresh_param];
            } else {
                double s[QSNN_CT_MAX_STATES];
                for (int k = 0; k < ns; k++) s[k] = y[k][i];
                g = m->threshold(P->params, s);
            }
            const int was = above[i];
            above[i] = g > 0.0;
            if (g > 0.0 && (m->level_threshold || !was) && ref[i] == 0) out[c++] = lo + i;
        }
    }
    for (int64_t s = 0; s < c; s++) {
        const int i = out[s] - lo;
        if (m->reset) {
            double st[QSNN_CT_MAX_STATES];
            for (int k = 0; k < ns; k++) st[k] = y[k][i];
            m->reset(P->params, st);
            for (int k = 0; k < ns; k++) y[k][i] = st[k];
        }
        ref[i] = n_ref;
    }
    return c;
}

static int64_t poisson_block(const qsnn_popnet *net, int p, int lo, int hi, int64_t step, int32_t *out) {
    const qsnn_population *P = &net->pop[p];
    if (hi <= lo) return 0;
    uint32_t *w = net->rt->rnd[p] + lo;
    const int64_t quads = ((int64_t)P->n + 3) / 4;
    qsnn_philox_n(net->seed, QSNN_STREAM_SIM_POISSON + (uint64_t)p, (uint64_t)(step * quads + lo / 4),
                  (hi - lo + 3) / 4, w);
    const double thr = P->rate * net->dt * 4294967296.0; /* P(word < thr) = rate dt */
    int64_t c = 0;
    for (int i = 0; i < hi - lo; i++)
        if ((double)w[i] < thr) out[c++] = lo + i;
    return c;
}

/* The step's spikes of every population to the sink (master thread). */
static qsnn_status report(qsnn_popnet *net, int nt, int64_t step, const qsnn_sim_sink *sink) {
    struct qsnn_popnet_rt *rt = net->rt;
    const int b = (int)(step & 1);
    const double t = (double)(step + 1) * net->dt;
    for (int p = 0; p < net->n_pops; p++) {
        qsnn_population *P = &net->pop[p];
        int64_t c = 0;
        for (int th = 0; th < nt; th++) {
            int lo, hi;
            block(P->n, th, nt, P->model ? 1 : 4, &lo, &hi);
            memcpy(rt->joined + c, rt->spk[b][p] + lo, (size_t)rt->cnt[b][p][th] * sizeof(int32_t));
            c += rt->cnt[b][p][th];
        }
        P->n_spikes += c;
        if (c && sink && sink->spikes) {
            for (int64_t s = 0; s < c; s++) rt->tbuf[s] = t;
            qsnn_status st = sink->spikes(sink->user, p, rt->tbuf, rt->joined, c);
            if (st) return st;
        }
    }
    return QSNN_OK;
}

/* First synapse of row [a, b) whose target is >= lo (targets ascend within a row). */
static inline int64_t lower_bound(const int32_t *col, int64_t a, int64_t b, int lo) {
    while (a < b) {
        const int64_t m = a + (b - a) / 2;
        if (col[m] < lo) a = m + 1;
        else b = m;
    }
    return a;
}

/* Phase B for thread tid: the step's spikes into the rings of its own target block. */
static void scatter(qsnn_popnet *net, int tid, int nt, int64_t step) {
    struct qsnn_popnet_rt *rt = net->rt;
    const int b = (int)(step & 1);
    for (int j = 0; j < net->n_proj; j++) {
        const qsnn_projection *J = &net->proj[j];
        const qsnn_population *pre = &net->pop[J->pre];
        const int n_post = net->pop[J->post].n;
        int lo, hi;
        block(n_post, tid, nt, 1, &lo, &hi);
        if (lo >= hi) continue;
        const int whole = lo == 0 && hi == n_post;
        const int depth = rt->depth[J->post][J->target];
        double *slot = rt->ring[J->post][J->target] + (size_t)((step + rt->delay_steps[j]) % depth) * (size_t)n_post;
        const double w0 = J->weight;
        for (int th = 0; th < nt; th++) {
            int plo, phi;
            block(pre->n, th, nt, pre->model ? 1 : 4, &plo, &phi);
            const int32_t *spk = rt->spk[b][J->pre] + plo;
            const int64_t c = rt->cnt[b][J->pre][th];
            for (int64_t s = 0; s < c; s++) {
                int64_t e = J->row[spk[s]], end = J->row[spk[s] + 1];
                if (!whole) e = lower_bound(J->col, e, end, lo);
                if (J->w) {
                    for (; e < end && J->col[e] < hi; e++) slot[J->col[e]] += (double)J->w[e];
                } else {
                    for (; e < end && J->col[e] < hi; e++) slot[J->col[e]] += w0;
                }
            }
        }
    }
}

static qsnn_status record(qsnn_popnet *net, int64_t step, const qsnn_sim_sink *sink) {
    for (int p = 0; p < net->n_pops; p++) {
        const qsnn_population *P = &net->pop[p];
        if (!P->model || !P->n_record) continue;
        const int ns = P->model->n_states;
        for (int r = 0; r < P->n_record; r++)
            for (int k = 0; k < ns; k++) net->rt->rec[(size_t)r * ns + k] = P->y[k][P->record[r]];
        qsnn_status st = sink->states(sink->user, p, step, net->rt->rec);
        if (st) return st;
    }
    return QSNN_OK;
}

/* A neuron of thread tid's blocks with a non-finite state (an unstable time step, a runaway model):
 * the first one, by population then index, or -1. */
typedef struct bad_state {
    int pop, state;
    int64_t i;
    double t; /* time of the scan that found it */
} bad_state;

#define CHECK_EVERY 64 /* steps between scans for non-finite states */

static void scan_finite(const qsnn_popnet *net, int tid, int nt, double t, bad_state *out) {
    out->i = -1;
    for (int p = 0; p < net->n_pops; p++) {
        const qsnn_population *P = &net->pop[p];
        if (!P->model) continue;
        int lo, hi;
        block(P->n, tid, nt, 1, &lo, &hi);
        for (int k = 0; k < P->model->n_states; k++) {
            const double *y = P->y[k];
            int any = 0;
            for (int i = lo; i < hi; i++) any |= !isfinite(y[i]);
            if (!any) continue;
            for (int i = lo; i < hi; i++)
                if (!isfinite(y[i]) && (out->i < 0 || i < out->i)) *out = (bad_state){p, k, i, t};
        }
        if (out->i >= 0) return;
    }
}

qsnn_status qsnn_popnet_run_step(qsnn_popnet *net, double duration, const qsnn_sim_sink *sink,
                                 qsnn_sim_stats *stats) {
    qsnn_ctx *ctx = net->ctx;
    if (!net->built) return qsnn_fail(ctx, QSNN_ERR_ARG, "simulate: network not built");
    if (!(duration >= 0.0) || !isfinite(duration))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "duration = %g s: must be >= 0", duration);
    const int64_t step0 = net->rt ? net->rt->step0 : 0;
    qsnn_status st = rt_alloc(net);
    if (st) return st;
    struct qsnn_popnet_rt *rt = net->rt;
    rt->step0 = step0;
    const int64_t n_steps = (int64_t)llround(duration / net->dt);
    int n_ref[QSNN_POP_MAX] = {0};
    for (int p = 0; p < net->n_pops; p++) {
        const qsnn_population *P = &net->pop[p];
        if (P->model && P->model->refractory_param >= 0)
            n_ref[p] = (int)lround(P->params[P->model->refractory_param] / net->dt);
        net->pop[p].n_spikes = 0;
    }
    int nt = qsnn_ctx_threads(ctx);
    if (nt > MAX_THREADS) nt = MAX_THREADS;
    int64_t total_neurons = 0;
    for (int p = 0; p < net->n_pops; p++) total_neurons += net->pop[p].n;
    /* A barrier per step costs more than a thread saves on small networks (and much more when the
     * cores are shared): at least 10,000 neurons per thread. */
    if (nt > total_neurons / 10000) nt = total_neurons >= 20000 ? (int)(total_neurons / 10000) : 1;
    const int want_rec = sink && sink->states;
    /* Errors of the sink, by step parity: the master writes the slot of step k after barrier k, and
     * every thread reads it after barrier k + 1, when nobody writes it, so all stop together. */
    volatile qsnn_status errv[2] = {QSNN_OK, QSNN_OK};
    const double t0 = qsnn_now();
    bad_state bad[MAX_THREADS];
    for (int th = 0; th < nt; th++) bad[th].i = -1;
    step_barrier bar;
    atomic_init(&bar.count, 0);
    atomic_init(&bar.sense, 0);
    bar.n = nt;
    #pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
#else
        const int tid = 0, nth = 1;
#endif
        int sense = 0;
        #pragma omp single
        bar.n = nth; /* the team may be smaller than asked */
        for (int64_t k = 0; k < n_steps; k++) {
            const int64_t step = step0 + k;
            const int bp = (int)(step & 1);
            /* phase A: own blocks */
            for (int p = 0; p < net->n_pops; p++) {
                qsnn_population *P = &net->pop[p];
                int lo, hi;
                block(P->n, tid, nth, P->model ? 1 : 4, &lo, &hi);
                rt->cnt[bp][p][tid] = P->model ? step_block(net, P, lo, hi, n_ref[p], rt->spk[bp][p] + lo)
                                               : poisson_block(net, p, lo, hi, step, rt->spk[bp][p] + lo);
            }
            barrier_wait(&bar, &sense);
            if (errv[1 - bp]) break;
            if (k % CHECK_EVERY == 0 && k) { /* written CHECK_EVERY - 1 steps ago, before a barrier */
                int stop = 0;
                for (int th = 0; th < nth; th++) stop |= bad[th].i >= 0;
                if (stop) break;
            }
            #pragma omp master
            {
                qsnn_status e = report(net, nth, step, sink);
                if (e) errv[bp] = e;
            }
            /* phase B: own targets */
            scatter(net, tid, nth, step);
            for (int p = 0; p < net->n_pops; p++) {
                qsnn_population *P = &net->pop[p];
                if (!P->model) continue;
                int lo, hi;
                block(P->n, tid, nth, 1, &lo, &hi);
                for (int s = 0; s < P->model->n_states; s++) {
                    if (!rt->ring[p][s]) continue;
                    double *slot = rt->ring[p][s] + (size_t)(step % rt->depth[p][s]) * (size_t)P->n;
                    double *y = P->y[s];
                    for (int i = lo; i < hi; i++) {
                        y[i] += slot[i];
                        slot[i] = 0.0;
                    }
                }
            }
            if (k % CHECK_EVERY == CHECK_EVERY - 1) scan_finite(net, tid, nth, (double)(step + 1) * net->dt, &bad[tid]);
            if (want_rec) {
                barrier_wait(&bar, &sense);
                #pragma omp master
                {
                    if (!errv[bp]) {
                        qsnn_status e = record(net, step - step0 + 1, sink);
                        if (e) errv[bp] = e;
                    }
                }
                barrier_wait(&bar, &sense);
            }
            #pragma omp master
            {
                if (sink && sink->progress && (k % 1000 == 999 || k == n_steps - 1))
                    sink->progress(sink->user, (double)(k + 1) * net->dt, (double)n_steps * net->dt);
            }
        }
    }
    qsnn_status err = errv[0] ? errv[0] : errv[1];
    int found = 0;
    for (int th = 0; th < nt; th++) found |= bad[th].i >= 0;
    if (!err && !found) /* the last steps since the last scan */
        for (int th = 0; th < nt; th++) scan_finite(net, th, nt, (double)(step0 + n_steps) * net->dt, &bad[th]);
    for (int th = 0; th < nt && !err; th++) /* the first block holding one = the lowest population, index */
        if (bad[th].i >= 0) {
            const bad_state *b = &bad[th];
            for (int u = th + 1; u < nt; u++)
                if (bad[u].i >= 0 && bad[u].pop < b->pop) b = &bad[u];
            const qsnn_population *P = &net->pop[b->pop];
            err = qsnn_fail(ctx, QSNN_ERR_NUMERIC,
                            "population %s neuron %lld: state %s is not finite by t = %.6g s (time step too large "
                            "for these dynamics? the cvode engine adapts its steps)",
                            P->name, (long long)b->i, P->model->states[b->state].name, b->t);
        }
    rt->step0 = step0 + n_steps;
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->wall_s = qsnn_now() - t0;
        for (int p = 0; p < net->n_pops; p++) {
            stats->n_spikes += net->pop[p].n_spikes;
            stats->n_neurons += net->pop[p].n;
        }
        for (int j = 0; j < net->n_proj; j++) stats->n_synapses += net->proj[j].n_syn;
        qsnn_popnet_memory(net, &stats->bytes_synapses, &stats->bytes_neurons);
        stats->bytes_neurons += rt->bytes;
    }
    return err;
}
