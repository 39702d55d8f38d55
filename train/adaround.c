#include "train/adaround.h"
#include "sim/gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ZETA 1.1f
#define GAMMA (-0.1f)

static inline float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

static inline float clampf(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

double qsnn_adaround_error(const float *W, const float *s, const int32_t *codes, int out, int in, const float *G) {
    const size_t n = (size_t)out * in;
    float *D = calloc(n, sizeof *D), *DG = calloc(n, sizeof *DG);
    if (!D || !DG) {
        free(D);
        free(DG);
        return NAN;
    }
    for (size_t j = 0; j < n; j++) D[j] = s[j / in] * (float)codes[j] - W[j];
    qsnn_sgemm(CblasNoTrans, CblasNoTrans, out, in, in, 1.0f, D, in, G, in, 0.0f, DG, in);
    double e = 0.0;
    for (size_t j = 0; j < n; j++) e += (double)D[j] * DG[j];
    free(D);
    free(DG);
    return e;
}

qsnn_status qsnn_adaround(qsnn_ctx *ctx, const float *W, const float *s, int out, int in, int qmin, int qmax,
                          const float *G, const qsnn_adaround_opts *opts, int32_t *codes, qsnn_adaround_report *rep) {
    const int iters = opts && opts->iters > 0 ? opts->iters : 500;
    const float lambda = opts && opts->lambda > 0 ? opts->lambda : 0.01f, lr = opts && opts->lr > 0 ? opts->lr : 0.01f;
    const size_t n = (size_t)out * in;
    float *V = qsnn_malloc(ctx, n * sizeof *V), *fl = qsnn_malloc(ctx, n * sizeof *fl);
    float *m1 = qsnn_calloc(ctx, n, sizeof *m1), *m2 = qsnn_calloc(ctx, n, sizeof *m2);
    float *D = qsnn_malloc(ctx, n * sizeof *D), *DG = qsnn_malloc(ctx, n * sizeof *DG);
    int32_t *near = qsnn_malloc(ctx, n * sizeof *near);
    qsnn_status st = (V && fl && m1 && m2 && D && DG && near) ? QSNN_OK : QSNN_ERR_NOMEM;
    if (st) goto done;
    for (size_t j = 0; j < n; j++) {
        const float x = W[j] / s[j / in];
        fl[j] = floorf(x);
        near[j] = (int32_t)clampf(nearbyintf(x), (float)qmin, (float)qmax);
        const float p = clampf((x - fl[j] - GAMMA) / (ZETA - GAMMA), 1e-4f, 1.0f - 1e-4f); /* h(V) = fraction */
        V[j] = logf(p / (1.0f - p));
    }
    const int warm = iters / 5;
    const float b1 = 0.9f, b2 = 0.999f;
    for (int it = 0; it < iters; it++) {
        #pragma omp parallel for schedule(static)
        for (size_t j = 0; j < n; j++) {
            const float h = clampf(sigm(V[j]) * (ZETA - GAMMA) + GAMMA, 0.0f, 1.0f);
            D[j] = s[j / in] * clampf(fl[j] + h, (float)qmin, (float)qmax) - W[j];
        }
        qsnn_sgemm(CblasNoTrans, CblasNoTrans, out, in, in, 1.0f, D, in, G, in, 0.0f, DG, in);
        const int reg = it >= warm;
        const float beta = reg ? 20.0f + (2.0f - 20.0f) * (float)(it - warm) / (float)(iters - warm > 1 ? iters - warm - 1 : 1)
                               : 0.0f;
        const float c1 = 1.0f - powf(b1, (float)(it + 1)), c2 = 1.0f - powf(b2, (float)(it + 1));
        #pragma omp parallel for schedule(static)
        for (size_t j = 0; j < n; j++) {
            const float sg = sigm(V[j]), hr = sg * (ZETA - GAMMA) + GAMMA;
            if (!(hr > 0.0f && hr < 1.0f)) continue; /* h clamped: no gradient */
            const float q = fl[j] + hr;
            const float dh_dv = (ZETA - GAMMA) * sg * (1.0f - sg);
            float gh = (q >= (float)qmin && q <= (float)qmax) ? 2.0f * DG[j] * s[j / in] : 0.0f;
            if (reg) {
                const float u = 2.0f * hr - 1.0f, au = fabsf(u);
                gh += lambda * -beta * powf(au, beta - 1.0f) * (u < 0 ? -2.0f : 2.0f);
            }
            const float g = gh * dh_dv;
            m1[j] = b1 * m1[j] + (1.0f - b1) * g;
            m2[j] = b2 * m2[j] + (1.0f - b2) * g * g;
            V[j] -= lr * (m1[j] / c1) / (sqrtf(m2[j] / c2) + 1e-8f);
        }
    }
    long flips = 0;
    for (size_t j = 0; j < n; j++) {
        codes[j] = (int32_t)clampf(fl[j] + (V[j] >= 0.0f ? 1.0f : 0.0f), (float)qmin, (float)qmax);
        flips += codes[j] != near[j];
    }
    if (rep) {
        rep->err_nearest = qsnn_adaround_error(W, s, near, out, in, G);
        rep->err_adaround = qsnn_adaround_error(W, s, codes, out, in, G);
        rep->flipped = (double)flips / (double)n;
    }
done:
    qsnn_free(ctx, V);
    qsnn_free(ctx, fl);
    qsnn_free(ctx, m1);
    qsnn_free(ctx, m2);
    qsnn_free(ctx, D);
    qsnn_free(ctx, DG);
    qsnn_free(ctx, near);
    return st;
}
