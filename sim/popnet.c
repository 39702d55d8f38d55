/* Population networks: description, validation, connectivity, initial states. */
#include "sim/popnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/timer.h"

void qsnn_popnet_rt_free(qsnn_popnet *net); /* popnet_step.c */

qsnn_status qsnn_popnet_create(qsnn_ctx *ctx, qsnn_popnet **out) {
    *out = NULL;
    qsnn_popnet *net = qsnn_calloc(ctx, 1, sizeof *net);
    if (!net) return QSNN_ERR_NOMEM;
    net->ctx = ctx;
    net->dt = 1e-4;
    *out = net;
    return QSNN_OK;
}

static void free_built(qsnn_popnet *net) {
    qsnn_ctx *ctx = net->ctx;
    for (int p = 0; p < net->n_pops; p++) {
        qsnn_population *P = &net->pop[p];
        for (int k = 0; k < QSNN_CT_MAX_STATES; k++) qsnn_free(ctx, P->y[k]), P->y[k] = NULL;
        qsnn_free(ctx, P->ref), P->ref = NULL;
        qsnn_free(ctx, P->above), P->above = NULL;
    }
    for (int j = 0; j < net->n_proj; j++) {
        qsnn_projection *J = &net->proj[j];
        qsnn_free(ctx, J->row), J->row = NULL;
        qsnn_free(ctx, J->col), J->col = NULL;
        qsnn_free(ctx, J->w), J->w = NULL;
        J->n_syn = 0;
    }
    qsnn_popnet_rt_free(net);
    net->built = 0;
}

void qsnn_popnet_destroy(qsnn_popnet **np) {
    if (!np || !*np) return;
    qsnn_popnet *net = *np;
    free_built(net);
    for (int p = 0; p < net->n_pops; p++) qsnn_free(net->ctx, net->pop[p].record);
    for (int j = 0; j < net->n_proj; j++) {
        qsnn_free(net->ctx, net->proj[j].ex_pre);
        qsnn_free(net->ctx, net->proj[j].ex_post);
        qsnn_free(net->ctx, net->proj[j].ex_w);
    }
    qsnn_free(net->ctx, net);
    *np = NULL;
}

qsnn_status qsnn_popnet_add_pop(qsnn_popnet *net, const char *name, int n, const qsnn_ct_model *model, double rate,
                                int *index) {
    if (net->n_pops == QSNN_POP_MAX) return qsnn_fail(net->ctx, QSNN_ERR_CONFIG, "more than %d populations", QSNN_POP_MAX);
    if (!name || !*name || strlen(name) >= QSNN_POP_NAME)
        return qsnn_fail(net->ctx, QSNN_ERR_CONFIG, "population name '%s': 1 to %d characters", name ? name : "",
                         QSNN_POP_NAME - 1);
    if (qsnn_popnet_find_pop(net, name) >= 0)
        return qsnn_fail(net->ctx, QSNN_ERR_CONFIG, "population %s is defined twice", name);
    qsnn_population *P = &net->pop[net->n_pops];
    memset(P, 0, sizeof *P);
    snprintf(P->name, sizeof P->name, "%s", name);
    P->n = n;
    P->model = model;
    P->rate = rate;
    if (model) qsnn_ct_params_default(model, P->params);
    if (index) *index = net->n_pops;
    net->n_pops++;
    return QSNN_OK;
}

int qsnn_popnet_find_pop(const qsnn_popnet *net, const char *name) {
    for (int p = 0; p < net->n_pops; p++)
        if (!strcmp(net->pop[p].name, name)) return p;
    return -1;
}

/* Uniform double in (0, 1] from 53 random bits of two words. */
static inline double unit53(uint32_t hi, uint32_t lo) {
    const uint64_t x = ((uint64_t)(hi >> 5) << 26) | (lo >> 6);
    return ((double)x + 1.0) * (1.0 / 9007199254740992.0);
}

static double draw_init(const qsnn_state_init *in, double rest, uint64_t seed, uint64_t stream, uint64_t i) {
    if (!in->set) return rest;
    if (in->kind == QSNN_INIT_CONST) return in->a;
    uint32_t r[4];
    qsnn_philox(seed, stream, i, r);
    const double u1 = unit53(r[0], r[1]);
    if (in->kind == QSNN_INIT_UNIFORM) return in->a + (1.0 - u1) * (in->b - in->a); /* [a, b) */
    const double u2 = unit53(r[2], r[3]);
    return in->a + in->b * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2); /* Box-Muller */
}

void qsnn_popnet_reset_state(qsnn_popnet *net) {
    for (int p = 0; p < net->n_pops; p++) {
        qsnn_population *P = &net->pop[p];
        P->n_spikes = 0;
        if (!P->model) continue;
        double rest[QSNN_CT_MAX_STATES];
        qsnn_ct_init_state(P->model, P->params, rest);
        for (int k = 0; k < P->model->n_states; k++) {
            const uint64_t stream = QSNN_STREAM_SIM_INIT + (uint64_t)p * 16 + (uint64_t)k;
            double *y = P->y[k];
            #pragma omp parallel for schedule(static) if (P->n > 10000)
            for (int i = 0; i < P->n; i++) y[i] = draw_init(&P->init[k], rest[k], net->seed, stream, (uint64_t)i);
        }
        memset(P->ref, 0, (size_t)P->n * sizeof *P->ref);
        for (int i = 0; i < P->n; i++) {
            double s[QSNN_CT_MAX_STATES];
            for (int k = 0; k < P->model->n_states; k++) s[k] = P->y[k][i];
            P->above[i] = P->model->threshold(P->params, s) > 0.0;
        }
    }
}

static qsnn_status check_pop(qsnn_popnet *net, const qsnn_population *P) {
    qsnn_ctx *ctx = net->ctx;
    if (P->n <= 0) return qsnn_fail(ctx, QSNN_ERR_CONFIG, "population %s: n = %d: must be > 0", P->name, P->n);
    if (!P->model) {
        if (!(P->rate >= 0.0) || !isfinite(P->rate))
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "population %s: rate = %g Hz: must be finite and >= 0", P->name,
                             P->rate);
        if (P->rate * net->dt > 1.0)
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "population %s: rate %g Hz exceeds one spike per step (dt %g s)",
                             P->name, P->rate, net->dt);
        return QSNN_OK;
    }
    char msg[256];
    const char *bad = qsnn_ct_validate(P->model, P->params, msg, sizeof msg);
    if (bad) return qsnn_fail(ctx, QSNN_ERR_CONFIG, "population %s (%s): %s", P->name, P->model->name, bad);
    if (P->exact && !P->model->has_exact)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "population %s: model %s has no exact update (use integration: euler)",
                         P->name, P->model->name);
    for (int k = 0; k < P->model->n_states; k++) {
        const qsnn_state_init *in = &P->init[k];
        if (in->set && (!isfinite(in->a) || !isfinite(in->b) || (in->kind == QSNN_INIT_NORMAL && in->b < 0.0)))
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "population %s: initial %s: values must be finite (sd >= 0)",
                             P->name, P->model->states[k].name);
    }
    for (int r = 0; r < P->n_record; r++)
        if (P->record[r] < 0 || P->record[r] >= P->n || (r && P->record[r] <= P->record[r - 1]))
            return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                             "population %s: recorded neuron %d: must be in 0..%d, ascending, no duplicates", P->name,
                             P->record[r], P->n - 1);
    return QSNN_OK;
}

/* Random rows: geometric gaps between successive targets, so the cost is O(synapses), not
 * O(pre x post). Each row has its own counter range (pre << 32), so rows can be drawn in any order
 * and by any thread. Two passes with the same numbers: count, then fill. */
static qsnn_status build_random(qsnn_popnet *net, int j) {
    qsnn_projection *J = &net->proj[j];
    const int n_pre = net->pop[J->pre].n, n_post = net->pop[J->post].n;
    const double p = J->p;
    const int self = J->pre == J->post && !J->autapses;
    J->row = qsnn_calloc(net->ctx, (size_t)n_pre + 1, sizeof *J->row);
    if (!J->row) return QSNN_ERR_NOMEM;
    const double lq = log1p(-p); /* log(1 - p) < 0 for 0 < p < 1 */
    const uint64_t stream = QSNN_STREAM_SIM_CONNECT + (uint64_t)j;
    for (int pass = 0; pass < 2; pass++) {
        #pragma omp parallel for schedule(dynamic, 256)
        for (int i = 0; i < n_pre; i++) {
            qsnn_rng r;
            qsnn_rng_init(&r, net->seed, stream);
            r.counter = (uint64_t)i << 32;
            int64_t cnt = 0, base = pass ? J->row[i] : 0;
            if (p >= 1.0) {
                for (int k = 0; k < n_post; k++) {
                    if (self && k == i) continue;
                    if (pass) J->col[base + cnt] = k;
                    cnt++;
                }
            } else if (p > 0.0) {
                int64_t k = -1;
                for (;;) {
                    const uint32_t a = qsnn_rng_u32(&r), b = qsnn_rng_u32(&r);
                    const double gap = floor(log(unit53(a, b)) / lq);
                    if (gap >= (double)n_post) break;
                    k += 1 + (int64_t)gap;
                    if (k >= n_post) break;
                    if (self && k == i) continue;
                    if (pass) J->col[base + cnt] = (int32_t)k;
                    cnt++;
                }
            }
            if (!pass) J->row[i + 1] = cnt;
        }
        if (!pass) {
            for (int i = 0; i < n_pre; i++) J->row[i + 1] += J->row[i];
            J->n_syn = J->row[n_pre];
            J->col = qsnn_malloc(net->ctx, (size_t)(J->n_syn ? J->n_syn : 1) * sizeof *J->col);
            if (!J->col) return QSNN_ERR_NOMEM;
        }
    }
    return QSNN_OK;
}

static int cmp_pair(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static qsnn_status build_explicit(qsnn_popnet *net, int j) {
    qsnn_projection *J = &net->proj[j];
    const int n_pre = net->pop[J->pre].n, n_post = net->pop[J->post].n;
    const int64_t m = J->n_explicit;
    for (int64_t e = 0; e < m; e++) {
        if (J->ex_pre[e] < 0 || J->ex_pre[e] >= n_pre || J->ex_post[e] < 0 || J->ex_post[e] >= n_post)
            return qsnn_fail(net->ctx, QSNN_ERR_CONFIG, "projection %s: synapse %lld (%d -> %d) is outside 0..%d -> 0..%d",
                             J->name, (long long)e, J->ex_pre[e], J->ex_post[e], n_pre - 1, n_post - 1);
        if (J->ex_w && !isfinite(J->ex_w[e]))
            return qsnn_fail(net->ctx, QSNN_ERR_CONFIG, "projection %s: synapse %lld: weight is not finite", J->name,
                             (long long)e);
    }
    /* Sort by (pre, post, original index) so rows are ascending and the build is stable. */
    int64_t *key = qsnn_malloc(net->ctx, (size_t)(m ? m : 1) * 2 * sizeof *key);
    J->row = qsnn_calloc(net->ctx, (size_t)n_pre + 1, sizeof *J->row);
    J->col = qsnn_malloc(net->ctx, (size_t)(m ? m : 1) * sizeof *J->col);
    J->w = J->ex_w ? qsnn_malloc(net->ctx, (size_t)(m ? m : 1) * sizeof *J->w) : NULL;
    if (!key || !J->row || !J->col || (J->ex_w && !J->w)) {
        qsnn_free(net->ctx, key);
        return QSNN_ERR_NOMEM;
    }
    for (int64_t e = 0; e < m; e++) {
        key[2 * e] = ((int64_t)J->ex_pre[e] << 32) | (int64_t)J->ex_post[e];
        key[2 * e + 1] = e;
    }
    qsort(key, (size_t)m, 2 * sizeof *key, cmp_pair);
    for (int64_t e = 0; e < m; e++) {
        const int64_t src = key[2 * e + 1];
        J->row[J->ex_pre[src] + 1]++;
        J->col[e] = J->ex_post[src];
        if (J->w) J->w[e] = J->ex_w[src];
    }
    for (int i = 0; i < n_pre; i++) J->row[i + 1] += J->row[i];
    J->n_syn = m;
    qsnn_free(net->ctx, key);
    return QSNN_OK;
}

static qsnn_status check_proj(qsnn_popnet *net, const qsnn_projection *J) {
    qsnn_ctx *ctx = net->ctx;
    if (J->pre < 0 || J->pre >= net->n_pops || J->post < 0 || J->post >= net->n_pops)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "projection %s: unknown population", J->name);
    const qsnn_population *post = &net->pop[J->post];
    if (!post->model)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "projection %s: population %s is a Poisson source and takes no input",
                         J->name, post->name);
    if (J->target < 0 || J->target >= post->model->n_states)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "projection %s: bad target state", J->name);
    if (!isfinite(J->weight)) return qsnn_fail(ctx, QSNN_ERR_CONFIG, "projection %s: weight is not finite", J->name);
    if (!(J->delay >= 0.0) || !isfinite(J->delay) || J->delay / net->dt > 1e6)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "projection %s: delay = %g s: must be in [0, 1e6 dt]", J->name,
                         J->delay);
    if (J->kind == QSNN_CONN_RANDOM && !(J->p >= 0.0 && J->p <= 1.0))
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "projection %s: p = %g: must be in [0, 1]", J->name, J->p);
    return QSNN_OK;
}

qsnn_status qsnn_popnet_build(qsnn_popnet *net) {
    qsnn_ctx *ctx = net->ctx;
    if (!(net->dt > 0.0) || !isfinite(net->dt)) return qsnn_fail(ctx, QSNN_ERR_CONFIG, "dt = %g s: must be > 0", net->dt);
    if (net->n_pops == 0) return qsnn_fail(ctx, QSNN_ERR_CONFIG, "no populations");
    qsnn_status st;
    for (int p = 0; p < net->n_pops; p++)
        if ((st = check_pop(net, &net->pop[p]))) return st;
    for (int j = 0; j < net->n_proj; j++)
        if ((st = check_proj(net, &net->proj[j]))) return st;
    free_built(net);
    for (int p = 0; p < net->n_pops; p++) {
        qsnn_population *P = &net->pop[p];
        if (!P->model) continue;
        for (int k = 0; k < P->model->n_states; k++)
            if (!(P->y[k] = qsnn_malloc(ctx, (size_t)P->n * sizeof(double)))) goto nomem;
        if (!(P->ref = qsnn_calloc(ctx, (size_t)P->n, sizeof *P->ref))) goto nomem;
        if (!(P->above = qsnn_calloc(ctx, (size_t)P->n, 1))) goto nomem;
    }
    for (int j = 0; j < net->n_proj; j++) {
        st = net->proj[j].kind == QSNN_CONN_RANDOM ? build_random(net, j) : build_explicit(net, j);
        if (st) {
            free_built(net);
            return st;
        }
    }
    qsnn_popnet_reset_state(net);
    net->built = 1;
    return QSNN_OK;
nomem:
    free_built(net);
    return QSNN_ERR_NOMEM;
}

void qsnn_popnet_memory(const qsnn_popnet *net, size_t *synapses, size_t *neurons) {
    size_t s = 0, n = 0;
    for (int j = 0; j < net->n_proj; j++) {
        const qsnn_projection *J = &net->proj[j];
        s += (size_t)(net->pop[J->pre].n + 1) * sizeof(int64_t) + (size_t)J->n_syn * sizeof(int32_t);
        if (J->w) s += (size_t)J->n_syn * sizeof(float);
    }
    for (int p = 0; p < net->n_pops; p++) {
        const qsnn_population *P = &net->pop[p];
        if (P->model) n += (size_t)P->n * (P->model->n_states * sizeof(double) + sizeof(int32_t) + 1);
    }
    if (synapses) *synapses = s;
    if (neurons) *neurons = n;
}
