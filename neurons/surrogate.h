/* Surrogate derivatives σ'(x), x = U - θ (specs/neurons.md). A registry of names; kernels switch on
 * the id outside their inner loops, so the per-element call is inlined. */
#ifndef QSNN_NEURONS_SURROGATE_H
#define QSNN_NEURONS_SURROGATE_H

#include <math.h>

/* Ids are the values of model.surrogate (the config enum lists the names in this order), so new
 * surrogates are appended, never inserted. Each has one parameter, "slope" (qsnn_neuron_params.slope,
 * config model.surrogate_slope; 0 there = the registry's default_slope):
 *   id                 σ'(x)                                   slope      default
 *   arctan             (α/2) / (1 + (π/2 · α · x)^2)           α          2
 *   fast_sigmoid       1 / (1 + k|x|)^2                        k          25
 *   soft               k sig(kx) (1 - sig(kx)), smooth spike   k          5
 *   sigmoid            k sig(kx) (1 - sig(kx))                 k          25
 *   triangular         max(0, 1 - |x|/w) / w                   w (width)  1
 *   straight_through   1                                       (unused)   1
 *   superspike         1 / (β|x| + 1)^2                        β          10
 *   exponential        exp(-|x|/τ) / (2τ)                      τ          0.5
 * The surrogate is chosen per network today (model.surrogate), but each layer already carries its
 * own copy in qsnn_layer.np.surrogate / .slope, which the kernels read: per-layer selection only
 * needs per-layer configs (a later issue), not kernel changes. */
typedef enum {
    QSNN_SURR_ARCTAN = 0,
    QSNN_SURR_FAST_SIGMOID = 1,
    QSNN_SURR_SOFT = 2, /* test mode: the spike itself is sigmoid(k x), and this is its exact derivative */
    QSNN_SURR_SIGMOID = 3,
    QSNN_SURR_TRIANGULAR = 4,
    QSNN_SURR_STRAIGHT_THROUGH = 5,
    QSNN_SURR_SUPERSPIKE = 6,
    QSNN_SURR_EXPONENTIAL = 7,
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
/* The spec's k sig(kx)(1 - sig(kx)), evaluated at -|x| (the function is even): with e = exp(-k|x|)
 * in (0, 1] it is k e / (1 + e)^2, exactly symmetric and free of the cancellation in 1 - sig(kx)
 * for large kx (the form qsnn_surr_soft keeps, because there it must match the forward spike). */
static inline float qsnn_surr_sigmoid(float x, float k) {
    const float e = expf(-k * fabsf(x));
    const float d = 1.0f + e;
    return (k * e) / (d * d);
}
/* The spec gives "max(0, 1 - |x|) scaled"; read as a triangle of half-width w and height 1/w, so it
 * integrates to 1 for every w (w = 1 is the spec's unscaled triangle). */
static inline float qsnn_surr_triangular(float x, float w) {
    const float t = 1.0f - fabsf(x) / w;
    return t > 0.0f ? t / w : 0.0f;
}
static inline float qsnn_surr_straight_through(float x, float unused) { return 1.0f; }
/* SuperSpike (Zenke & Ganguli 2018): the same function as fast_sigmoid, under its own name with the
 * steepness β = 10 as default (peak 1, integral 2/β = 0.2; fast_sigmoid's 25 is narrower). */
static inline float qsnn_surr_superspike(float x, float beta) {
    const float d = beta * fabsf(x) + 1.0f;
    return 1.0f / (d * d);
}
/* Laplace density: integrates to 1; the default τ = 0.5 puts its peak at 1, like arctan (α 2),
 * triangular (w 1), fast_sigmoid and superspike. */
static inline float qsnn_surr_exponential(float x, float tau) { return expf(-fabsf(x) / tau) / (2.0f * tau); }

/* Scalar reference: σ'(x) for any id (0 for an unknown one). neurons/lif.c has its own switch (surr)
 * that must stay in step with this one; tests/test_surrogate.c compares the two. */
static inline float qsnn_surrogate_grad(qsnn_surrogate_id id, float x, float slope) {
    switch (id) {
    case QSNN_SURR_ARCTAN: return qsnn_surr_arctan(x, slope);
    case QSNN_SURR_FAST_SIGMOID: return qsnn_surr_fast_sigmoid(x, slope);
    case QSNN_SURR_SOFT: return qsnn_surr_soft(x, slope);
    case QSNN_SURR_SIGMOID: return qsnn_surr_sigmoid(x, slope);
    case QSNN_SURR_TRIANGULAR: return qsnn_surr_triangular(x, slope);
    case QSNN_SURR_STRAIGHT_THROUGH: return qsnn_surr_straight_through(x, slope);
    case QSNN_SURR_SUPERSPIKE: return qsnn_surr_superspike(x, slope);
    case QSNN_SURR_EXPONENTIAL: return qsnn_surr_exponential(x, slope);
    default: return 0.0f;
    }
}

#endif
