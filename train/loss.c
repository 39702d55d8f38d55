#include "train/loss.h"

#include <math.h>
#include <string.h>

/* Index of the first maximum (as argmax in PyTorch and NumPy). */
static int argmax(const float *v, int n) {
    int k = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[k]) k = i;
    return k;
}

/* Cross-entropy of logits z (one sample); writes softmax(z) - onehot(y) into d when d != NULL. */
static double cross_entropy(const float *z, int C, int y, float *d) {
    float m = z[0];
    for (int k = 1; k < C; k++) m = z[k] > m ? z[k] : m;
    double sum = 0.0;
    for (int k = 0; k < C; k++) sum += exp((double)z[k] - m);
    const double lse = m + log(sum);
    if (d)
        for (int k = 0; k < C; k++) d[k] = (float)(exp((double)z[k] - lse) - (k == y ? 1.0 : 0.0));
    return lse - z[y];
}


#define QSNN_LOSS_MAX_C 4096 /* classes; the engine's output layers are small */

static double ce_count(const qsnn_train_cfg *cfg, const float *S, const float *U, int T, int B, int C, const int *y,
                       float *grad, int *pred) {
    (void)cfg, (void)U;
    float counts[QSNN_LOSS_MAX_C], d[QSNN_LOSS_MAX_C];
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        float *c = counts;
        memset(c, 0, (size_t)C * sizeof(float));
        for (int t = 0; t < T; t++)
            for (int k = 0; k < C; k++) c[k] += S[((size_t)t * B + b) * C + k];
        pred[b] = argmax(c, C);
        total += cross_entropy(c, C, y[b], grad ? d : NULL);
        if (grad)
            for (int t = 0; t < T; t++)
                for (int k = 0; k < C; k++) grad[((size_t)t * B + b) * C + k] = d[k] / (float)B;
    }
    return total / B;
}

static double mse_count(const qsnn_train_cfg *cfg, const float *S, const float *U, int T, int B, int C, const int *y,
                        float *grad, int *pred) {
    (void)U;
    float c[QSNN_LOSS_MAX_C];
    double total = 0.0;
    const float on = cfg->correct_rate * (float)T, off = cfg->incorrect_rate * (float)T;
    const float scale = 2.0f / ((float)B * (float)C);
    for (int b = 0; b < B; b++) {
        memset(c, 0, (size_t)C * sizeof(float));
        for (int t = 0; t < T; t++)
            for (int k = 0; k < C; k++) c[k] += S[((size_t)t * B + b) * C + k];
        pred[b] = argmax(c, C);
        for (int k = 0; k < C; k++) {
            const float e = c[k] - (k == y[b] ? on : off);
            total += (double)e * e;
            if (grad)
                for (int t = 0; t < T; t++) grad[((size_t)t * B + b) * C + k] = scale * e;
        }
    }
    return total / ((double)B * C);
}

static double ce_max_membrane(const qsnn_train_cfg *cfg, const float *S, const float *U, int T, int B, int C,
                              const int *y, float *grad, int *pred) {
    (void)cfg, (void)S;
    float m[QSNN_LOSS_MAX_C], d[QSNN_LOSS_MAX_C];
    int at[QSNN_LOSS_MAX_C];
    double total = 0.0;
    if (grad) memset(grad, 0, (size_t)T * B * C * sizeof(float));
    for (int b = 0; b < B; b++) {
        for (int k = 0; k < C; k++) {
            m[k] = U[(size_t)b * C + k];
            at[k] = 0;
            for (int t = 1; t < T; t++) {
                const float u = U[((size_t)t * B + b) * C + k];
                if (u > m[k]) m[k] = u, at[k] = t;
            }
        }
        pred[b] = argmax(m, C);
        total += cross_entropy(m, C, y[b], grad ? d : NULL);
        if (grad)
            for (int k = 0; k < C; k++) grad[((size_t)at[k] * B + b) * C + k] = d[k] / (float)B;
    }
    return total / B;
}

static const qsnn_loss_ops registry[] = {
    {"ce_count", 0, ce_count},
    {"mse_count", 0, mse_count},
    {"ce_max_membrane", 1, ce_max_membrane},
};

const qsnn_loss_ops *qsnn_loss_find(const char *name) {
    for (size_t i = 0; i < sizeof registry / sizeof *registry; i++)
        if (strcmp(registry[i].name, name) == 0) return &registry[i];
    return NULL;
}

const char *qsnn_loss_names(void) { return "ce_count, mse_count, ce_max_membrane"; }
