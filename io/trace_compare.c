#include "io/trace_compare.h"

#include <math.h>
#include <string.h>

double qsnn_victor_purpura(const int32_t *a, int na, const int32_t *b, int nb, double q, double *work) {
    double *row = work; /* row[j] = D(i, j) for the current i */
    for (int j = 0; j <= nb; j++) row[j] = j;
    for (int i = 1; i <= na; i++) {
        double diag = row[0]; /* D(i-1, j-1) */
        row[0] = i;
        for (int j = 1; j <= nb; j++) {
            const double up = row[j]; /* D(i-1, j) */
            double d = fmin(up + 1.0, row[j - 1] + 1.0);
            d = fmin(d, diag + q * fabs((double)a[i - 1] - (double)b[j - 1]));
            diag = up;
            row[j] = d;
        }
    }
    return row[nb];
}

/* Spike trains of every (sample, neuron) pair of a layer in CSR form: the steps of pair p are
 * steps[start[p] .. start[p+1]), ascending. */
typedef struct trains {
    int64_t *start;
    int32_t *steps;
} trains;

static qsnn_status build_trains(qsnn_ctx *ctx, const qsnn_trace_layer *L, int N, trains *tr) {
    const size_t P = (size_t)N * L->out;
    tr->start = qsnn_calloc(ctx, P + 1, sizeof(int64_t));
    tr->steps = qsnn_malloc(ctx, (size_t)(L->n_events ? L->n_events : 1) * sizeof(int32_t));
    int64_t *fill = qsnn_malloc(ctx, (P ? P : 1) * sizeof(int64_t));
    if (!tr->start || !tr->steps || !fill) {
        qsnn_free(ctx, fill);
        return QSNN_ERR_NOMEM;
    }
    for (int64_t e = 0; e < L->n_events; e++) tr->start[(size_t)L->ev_sample[e] * L->out + L->ev_neuron[e] + 1]++;
    for (size_t p = 0; p < P; p++) tr->start[p + 1] += tr->start[p];
    memcpy(fill, tr->start, P * sizeof(int64_t));
    for (int64_t e = 0; e < L->n_events; e++) {
        const size_t p = (size_t)L->ev_sample[e] * L->out + L->ev_neuron[e];
        int64_t k = fill[p]++;
        while (k > tr->start[p] && tr->steps[k - 1] > L->ev_step[e]) { /* keep each train ascending */
            tr->steps[k] = tr->steps[k - 1];
            k--;
        }
        tr->steps[k] = L->ev_step[e];
    }
    qsnn_free(ctx, fill);
    return QSNN_OK;
}

static qsnn_status same_inputs(qsnn_ctx *ctx, const qsnn_trace *a, const qsnn_trace *b, const char *na,
                               const char *nb) {
    if (a->N != b->N || a->T != b->T || a->F != b->F)
        return qsnn_fail(ctx, QSNN_ERR_MISMATCH,
                         "%s and %s record different inputs: %d samples x %d steps x %d features against %d x %d x %d",
                         na, nb, a->N, a->T, a->F, b->N, b->T, b->F);
    if (a->is_static != b->is_static || strcmp(a->encoding, b->encoding) != 0)
        return qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s and %s record different inputs: %s encoding against %s", na, nb,
                         a->encoding, b->encoding);
    for (int s = 0; s < a->N; s++)
        if (a->sample_index[s] != b->sample_index[s])
            return qsnn_fail(ctx, QSNN_ERR_MISMATCH,
                             "%s and %s record different inputs: sample %d is test sample %lld in one, %lld in the "
                             "other",
                             na, nb, s, (long long)a->sample_index[s], (long long)b->sample_index[s]);
    const size_t n = (size_t)a->N * (a->is_static ? 1 : (size_t)a->T) * a->F;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a->x[i], &b->x[i], sizeof(float)) != 0) {
            const size_t per = (size_t)(a->is_static ? 1 : a->T) * a->F;
            return qsnn_fail(ctx, QSNN_ERR_MISMATCH,
                             "%s and %s record different inputs: sample %zu differs (%g against %g; another encoder "
                             "seed?)",
                             na, nb, i / per, (double)a->x[i], (double)b->x[i]);
        }
    if (a->n_layers != b->n_layers)
        return qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s has %d layers, %s %d", na, a->n_layers, nb, b->n_layers);
    for (int l = 0; l < a->n_layers; l++)
        if (a->layer[l].out != b->layer[l].out)
            return qsnn_fail(ctx, QSNN_ERR_MISMATCH, "layer %d has %d neurons in %s, %d in %s", l, a->layer[l].out, na,
                             b->layer[l].out, nb);
    return QSNN_OK;
}

/* Index of neuron n in a layer's recorded membranes, or -1. */
static int recorded_at(const qsnn_trace_layer *L, int n) {
    int lo = 0, hi = L->k - 1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2;
        if (L->neurons[mid] == n) return mid;
        if (L->neurons[mid] < n) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static qsnn_status compare_layer(qsnn_ctx *ctx, const qsnn_trace *a, const qsnn_trace *b, int l, double q,
                                 qsnn_trace_cmp_layer *r) {
    const qsnn_trace_layer *A = &a->layer[l], *B = &b->layer[l];
    const int N = a->N, T = a->T, out = A->out;
    memset(r, 0, sizeof *r);
    r->out = out;
    trains ta = {0}, tb = {0};
    double *work = qsnn_malloc(ctx, (size_t)(T + 1) * sizeof(double));
    qsnn_status st = work ? build_trains(ctx, A, N, &ta) : QSNN_ERR_NOMEM;
    if (!st) st = build_trains(ctx, B, N, &tb);
    if (st) goto done;
    long long equal = 0, identical = 0;
    double shift = 0, abs_shift = 0, vp = 0;
    const size_t P = (size_t)N * out;
    for (size_t p = 0; p < P; p++) {
        const int32_t *sa = ta.steps + ta.start[p], *sb = tb.steps + tb.start[p];
        const int na = (int)(ta.start[p + 1] - ta.start[p]), nb = (int)(tb.start[p + 1] - tb.start[p]);
        if (na == nb) {
            equal++;
            identical += memcmp(sa, sb, (size_t)na * sizeof(int32_t)) == 0;
        }
        if (na && nb) {
            r->both_fire++;
            shift += sb[0] - sa[0];
            abs_shift += fabs((double)(sb[0] - sa[0]));
        }
        vp += qsnn_victor_purpura(sa, na, sb, nb, q, work);
    }
    const double denom = P ? (double)P : 1.0;
    r->count_agreement = (double)equal / denom;
    r->train_identical = (double)identical / denom;
    r->rate_a = (double)A->n_events / (denom * T);
    r->rate_b = (double)B->n_events / (denom * T);
    r->first_spike_shift = r->both_fire ? shift / (double)r->both_fire : NAN;
    r->first_spike_abs_shift = r->both_fire ? abs_shift / (double)r->both_fire : NAN;
    r->vp_distance = vp / denom;
    double se = 0;
    long long cnt = 0;
    for (int j = 0; j < A->k; j++) {
        const int jb = recorded_at(B, A->neurons[j]);
        if (jb < 0) continue;
        r->membrane_neurons++;
        for (size_t st2 = 0; st2 < (size_t)N * T; st2++) {
            const double d = (double)A->membrane[st2 * A->k + j] - (double)B->membrane[st2 * B->k + jb];
            se += d * d;
            cnt++;
        }
    }
    r->membrane_rmse = cnt ? sqrt(se / (double)cnt) : NAN;
done:
    qsnn_free(ctx, work);
    qsnn_free(ctx, ta.start);
    qsnn_free(ctx, ta.steps);
    qsnn_free(ctx, tb.start);
    qsnn_free(ctx, tb.steps);
    return st;
}

qsnn_status qsnn_trace_compare(qsnn_ctx *ctx, const qsnn_trace *a, const qsnn_trace *b, const char *name_a,
                               const char *name_b, double vp_cost, qsnn_trace_cmp_layer *out) {
    if (!(vp_cost >= 0)) return qsnn_fail(ctx, QSNN_ERR_ARG, "Victor-Purpura cost %g: must be >= 0", vp_cost);
    qsnn_status st = same_inputs(ctx, a, b, name_a ? name_a : "A", name_b ? name_b : "B");
    for (int l = 0; l < a->n_layers && !st; l++) st = compare_layer(ctx, a, b, l, vp_cost, &out[l]);
    return st;
}
