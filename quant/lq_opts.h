/* Options and per-pass state shared by the learned quantizers of weights and of states
 * (Quantization Networks, CPQ; specs/quantizers.md §5-6). */
#ifndef QSNN_QUANT_LQ_OPTS_H
#define QSNN_QUANT_LQ_OPTS_H

#include <stdint.h>

typedef struct qsnn_lq_opts {
    double qn_t_base;       /* Quantization Networks: temperature T = min((epoch + 1)·t_base, t_max) */
    double qn_t_max;
    double cpq_drop;        /* CPQ DropBits: probability of dropping a grid point of the highest bit level
                             * (halved for each level below; the 2-bit base grid is never dropped) */
    double cpq_state_drop;  /* the same for CPQ state grids (default 0: dropping the points next to rest
                             * silences weakly driven neurons, as the threshold-centered grid's dead zone does) */
    int cpq_learn_bits;     /* CPQ: learn the bit width (a gate per bit level above 2) */
    double cpq_bit_penalty; /* CPQ: λ of the penalty on the expected number of kept levels */
} qsnn_lq_opts;

/* What the network tells a quantizer before each forward pass; all zero outside training, so
 * evaluation, export and checkpoints see the hard (inference) quantizer. */
typedef struct qsnn_lq_pass {
    int training;  /* a training pass: QN's soft staircase, CPQ's DropBits and sampled gates */
    int epoch;     /* 0-based epoch (annealing) */
    uint64_t seed; /* differs per optimizer step and layer (random masks), 0 outside training */
} qsnn_lq_pass;

/* Defaults (config keys quant.qn.* and quant.cpq.*). */
static inline qsnn_lq_opts qsnn_lq_opts_default(void) {
    qsnn_lq_opts o = {.qn_t_base = 10.0, .qn_t_max = 2000.0, .cpq_drop = 0.25, .cpq_state_drop = 0.0, .cpq_learn_bits = 0,
                      .cpq_bit_penalty = 1e-3};
    return o;
}

/* QN's temperature in an epoch. */
static inline double qsnn_qn_temperature(const qsnn_lq_opts *o, int epoch) {
    const double t = (epoch + 1) * o->qn_t_base;
    return t < o->qn_t_max ? t : o->qn_t_max;
}

/* A uniform number in [0, 1) from (seed, a, b): DropBits masks and gate samples, the same on any
 * thread count. splitmix64 finalizer. */
static inline double qsnn_lq_uniform(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t z = seed ^ (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

#endif
