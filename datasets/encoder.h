/* Input encoders as an ops table: they turn a normalized batch x[B][F] into the network's input
 * for T steps. Randomness is a pure function of (seed, epoch, sample id, step, feature), so the
 * same sample is encoded identically whatever the batch it lands in and whatever the thread count.
 *
 * Required slots: name, encode. is_static = 1 means the input is the same at every step and encode
 * writes only [B][F] (consumers read it with a step stride of 0); otherwise encode writes [T][B][F].
 * A new encoder = one new file + one registry line in encoder.c (and its name in qsnn_encoder_names). */
#ifndef QSNN_DATASETS_ENCODER_H
#define QSNN_DATASETS_ENCODER_H

#include <stdint.h>

typedef struct qsnn_encoder_ops {
    const char *name;
    int is_static;
    /* 1: step t gets features [t·F/T, (t+1)·F/T) of a sample of F (the network has F/T inputs), and
     * encode writes [T][B][F/T]; F must be a multiple of T. */
    int split_steps;
    /* x: [B][F] normalized; sample_ids[B]: the dataset index of each row (keys the RNG; required);
     * out: [B][F] if is_static, else [T][B][F]. */
    void (*encode)(const float *x, int B, int F, int T, uint64_t seed, uint64_t epoch, const int64_t *sample_ids,
                   float *out);
} qsnn_encoder_ops;

/* Features per sample the encoder consumes for a network with net_inputs inputs over T steps. */
static inline int qsnn_encoder_data_features(const qsnn_encoder_ops *e, int net_inputs, int T) {
    return e->split_steps ? net_inputs * T : net_inputs;
}

/* NULL if unknown. */
const qsnn_encoder_ops *qsnn_encoder_find(const char *name);
/* The registered names, for error messages: "direct, rate, rows". */
const char *qsnn_encoder_names(void);

/* direct: the normalized pixels as input currents, the same at every step. */
extern const qsnn_encoder_ops qsnn_encoder_direct;
/* rate: a Bernoulli spike with probability x[b][f] at every step; the uniform for (sample s, step t,
 * feature f) is word k % 4 of qsnn_philox(seed, QSNN_STREAM_ENCODE + epoch, k / 4), k = (s*T + t)*F + f. */
extern const qsnn_encoder_ops qsnn_encoder_rate;
/* rows: row-sequential input, the t-th slice of F/T features at step t (split_steps). */
extern const qsnn_encoder_ops qsnn_encoder_rows;

#endif
