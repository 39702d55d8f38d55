#include "sim/state_stats.h"

#include <omp.h>
#include <string.h>

void qsnn_state_stats_init(qsnn_state_stats *s, const qsnn_layer *L) {
    memset(s, 0, sizeof *s);
    if (L->sq.enabled && L->sq.n <= QSNN_HIST_MAX_BINS) {
        s->per_level = 1;
        s->n_bins = L->sq.n;
        s->lo = L->sq.lo, s->hi = L->sq.hi;
        return;
    }
    s->n_bins = L->sq.enabled ? QSNN_HIST_MAX_BINS : QSNN_HIST_FLOAT_BINS;
    if (L->sq.enabled) {
        s->lo = L->sq.lo, s->hi = L->sq.hi;
    } else {
        const qsnn_state_quant_cfg *c = &L->sq_cfg;
        s->lo = (float)(-(double)L->np.theta * (1.0 + c->lower_limit)); /* as float: compared with floats */
        s->hi = (float)((double)L->np.theta * (1.0 + c->upper_limit));
    }
}

static inline int bin_of(const qsnn_state_stats *s, const qsnn_layer *L, int o, float u, int *sat) {
    if (L->q_gain) /* relative to the neuron's own threshold; quantized: the level behind g·level */
        u = L->sq.enabled ? qsnn_state_quant_ref(&L->sq, u / L->q_gain[o]) : u / L->q_gain[o];
    if (s->per_level) {
        const int k = qsnn_state_level_index(&L->sq, u);
        *sat = k == 0 || k == s->n_bins - 1;
        return k < 0 ? 0 : k; /* not a level: cannot happen for quantized states */
    }
    if (L->sq.enabled) *sat = u <= (float)s->lo || u >= (float)s->hi;
    else *sat = !(u >= (float)s->lo && u <= (float)s->hi);
    double x = (u - s->lo) / (s->hi - s->lo) * s->n_bins;
    int k = x < 0 ? 0 : (x >= s->n_bins ? s->n_bins - 1 : (int)x);
    return u != u ? 0 : k;
}

void qsnn_state_stats_add(qsnn_state_stats *s, const qsnn_layer *L, const float *U, size_t n) {
    #pragma omp parallel
    {
        long long local[QSNN_HIST_MAX_BINS] = {0}, sat = 0;
        #pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            int st;
            local[bin_of(s, L, L->q_gain ? (int)(i % (size_t)L->out) : 0, U[i], &st)]++;
            sat += st;
        }
        #pragma omp critical(qsnn_state_stats)
        { /* integer sums: the same for any order */
            for (int k = 0; k < s->n_bins; k++) s->counts[k] += local[k];
            s->saturated += sat;
        }
    }
    s->total += (long long)n;
}

double qsnn_state_stats_saturation(const qsnn_state_stats *s) {
    return s->total ? (double)s->saturated / (double)s->total : 0.0;
}
