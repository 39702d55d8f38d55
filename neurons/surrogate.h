/* Surrogate derivatives σ'(x), x = U - θ (specs/neurons.md). A registry of names; kernels switch on
 * the id outside their inner loops, so the per-element call is inlined. */
#ifndef QSNN_NEURONS_SURROGATE_H
#define QSNN_NEURONS_SURROGATE_H

#include <math.h>

typedef enum {
    QSNN_SURR_ARCTAN = 0,
    QSNN_SURR_FAST_SIGMOID = 1,
    QSNN_SURR_SOFT = 2, /* test mode: the spike itself is sigmoid(k x), and this is its exact derivative */
    QSNN_SURR_COUNT
} qsnn_surrogate_id;

typedef struct qsnn_surrogate {
    const char *name;
    qsnn_surrogate_id id;
    float default_slope;
} qsnn_surrogate;

/* NULL when the name is unknown. */
const qsnn_surrogate *qsnn_surrogate_find(const char *name);
const qsnn_surrogate *qsnn_surrogate_get(qsnn_surrogate_id id);
/* Comma-separated list of names, for messages. */
const char *qsnn_surrogate_names(void);

#define QSNN_PI_2 1.57079632679489661923f

static inline float qsnn_surr_arctan(float x, float alpha) {
    const float a = QSNN_PI_2 * alpha * x;
    return (0.5f * alpha) / (1.0f + a * a);
}
static inline float qsnn_surr_fast_sigmoid(float x, float k) {
    const float d = 1.0f + k * fabsf(x);
    return 1.0f / (d * d);
}
static inline float qsnn_soft_spike(float x, float k) { return 1.0f / (1.0f + expf(-k * x)); }
static inline float qsnn_surr_soft(float x, float k) {
    const float s = qsnn_soft_spike(x, k);
    return k * s * (1.0f - s);
}
/* Scalar reference: σ'(x) for any id. */
static inline float qsnn_surrogate_grad(qsnn_surrogate_id id, float x, float slope) {
    switch (id) {
    case QSNN_SURR_ARCTAN: return qsnn_surr_arctan(x, slope);
    case QSNN_SURR_FAST_SIGMOID: return qsnn_surr_fast_sigmoid(x, slope);
    case QSNN_SURR_SOFT: return qsnn_surr_soft(x, slope);
    default: return 0.0f;
    }
}

#endif
