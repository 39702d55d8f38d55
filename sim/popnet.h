/* Population networks for simulation (qsnn simulate): populations of continuous-time neurons
 * (neurons/ct_model.h) or Poisson sources, connected by sparse projections (CSR, random with a
 * fixed probability or explicit), with a synaptic delay per projection. Two engines run them:
 *
 *   qsnn_popnet_run_step   time-stepped (dt): each step advances every neuron (the model's batch
 *                          step, Euler or exact), tests thresholds, resets, then delivers the step's
 *                          spikes event-driven through per-target delay ring buffers (only the
 *                          synapses of neurons that fired are touched). OpenMP over neurons.
 *   qsnn_popnet_run_cvode  continuous time (sim/cvode_net.c): every neuron its own CVODE
 *                          integrator, spike times from root finding; see there.
 *
 * Conventions (shared by both engines, as in Brian2's default schedule): a spike found after the
 * update of step k (time k dt -> (k+1) dt) is stamped (k+1) dt; a delay of d adds its weight to
 * the target state at the end of step k + round(d / dt), so delay 0 acts from the next update on.
 * A neuron that fires has its clamped states frozen for round(t_ref / dt) updates.
 * Units are SI: seconds, volts, siemens, amperes, hertz.
 *
 * Determinism: initial states, connectivity and Poisson spikes come from Philox keyed by
 * (seed, stream, counter = neuron / step), and every sum runs in a fixed order, so results are the
 * same for any thread count.
 * Ownership: the network owns every array; qsnn_popnet_destroy frees them. */
#ifndef QSNN_SIM_POPNET_H
#define QSNN_SIM_POPNET_H

#include <stdint.h>
#include "core/context.h"
#include "neurons/ct_model.h"
#include "sim/cvode_engine.h"

#define QSNN_POP_MAX 16
#define QSNN_PROJ_MAX 64
#define QSNN_POP_NAME 32

/* Random streams of the simulator (next to those in core/rng.h). */
enum {
    QSNN_STREAM_SIM_INIT = 1u << 24,    /* + pop * 16 + state: initial states */
    QSNN_STREAM_SIM_CONNECT = 1u << 25, /* + projection: random connectivity (counter = pre << 32) */
    QSNN_STREAM_SIM_POISSON = 1u << 26, /* + pop: Poisson sources (counter = step, neuron / 4) */
};

typedef enum { QSNN_INIT_CONST = 0, QSNN_INIT_UNIFORM, QSNN_INIT_NORMAL } qsnn_init_kind;

typedef struct qsnn_state_init {
    qsnn_init_kind kind;
    double a, b; /* const: a; uniform: [a, b); normal: mean a, sd b */
    int set;     /* 0: the model's rest state */
} qsnn_state_init;

typedef struct qsnn_population {
    char name[QSNN_POP_NAME];
    int n;
    const qsnn_ct_model *model; /* NULL for a Poisson source */
    double rate;                /* Poisson sources: Hz */
    double params[QSNN_CT_MAX_PARAMS];
    qsnn_state_init init[QSNN_CT_MAX_STATES];
    int exact;                  /* step engine: the model's exact update (else Euler) */
    int n_record;               /* neurons whose states are recorded every step */
    int32_t *record;            /* [n_record] ascending (owned) */
    /* run-time state, allocated by qsnn_popnet_build */
    double *y[QSNN_CT_MAX_STATES]; /* SoA: y[k][i] */
    int32_t *ref;               /* step engine: refractory updates left */
    uint8_t *above;             /* step engine, crossing models: threshold() > 0 after the last step */
    int64_t n_spikes;           /* over the last run */
} qsnn_population;

typedef enum { QSNN_CONN_RANDOM = 0, QSNN_CONN_EXPLICIT } qsnn_conn_kind;

typedef struct qsnn_projection {
    char name[2 * QSNN_POP_NAME + 8]; /* "pre->post:target" for messages */
    int pre, post;              /* population indices */
    int target;                 /* state index in the post population */
    double weight;              /* added to the target state per spike (its unit) */
    double delay;               /* seconds, >= 0 */
    qsnn_conn_kind kind;
    double p;                   /* random: connection probability */
    int autapses;               /* random, pre == post: allow i -> i (Brian2's default: yes) */
    int64_t n_explicit;         /* explicit: pairs (owned arrays) */
    int32_t *ex_pre, *ex_post;
    float *ex_w;                /* optional per-synapse weights; NULL: `weight` */
    /* built: CSR by presynaptic neuron, targets ascending within a row */
    int64_t *row;               /* [n_pre + 1] */
    int32_t *col;               /* [n_syn] */
    float *w;                   /* [n_syn] or NULL (all `weight`) */
    int64_t n_syn;
} qsnn_projection;

typedef struct qsnn_popnet {
    qsnn_ctx *ctx;
    double dt;
    uint64_t seed;
    int n_pops, n_proj;
    qsnn_population pop[QSNN_POP_MAX];
    qsnn_projection proj[QSNN_PROJ_MAX];
    int built;
    struct qsnn_popnet_rt *rt;  /* engine buffers (popnet_step.c) */
} qsnn_popnet;

/* An empty network description (dt 0.1 ms). Fill pop[] / proj[] (qsnn_popnet_add_pop sets the
 * defaults), then qsnn_popnet_build. */
qsnn_status qsnn_popnet_create(qsnn_ctx *ctx, qsnn_popnet **out);
void qsnn_popnet_destroy(qsnn_popnet **net);
/* A population with the model's default parameters (model NULL: a Poisson source of `rate`). */
qsnn_status qsnn_popnet_add_pop(qsnn_popnet *net, const char *name, int n, const qsnn_ct_model *model, double rate,
                                int *index);
int qsnn_popnet_find_pop(const qsnn_popnet *net, const char *name);

/* Validates every population and projection (messages name the population, and the neuron where
 * one is at fault: "population exc: tau_m = -0.02: must be > 0"), builds the connectivity, draws
 * the initial states. Idempotent on the description: building again redraws the same network. */
qsnn_status qsnn_popnet_build(qsnn_popnet *net);
/* Back to the initial states (a second run repeats the first). */
void qsnn_popnet_reset_state(qsnn_popnet *net);

/* Where runs report to. Any callback may be NULL. Spikes come per population and step (time
 * ascending, indices ascending); states are the recorded neurons' full state vectors,
 * [n_record][n_states], at times k dt, k = 1..n_steps. A non-zero status stops the run. */
typedef struct qsnn_sim_sink {
    void *user;
    qsnn_status (*spikes)(void *user, int pop, const double *t, const int32_t *idx, int64_t n);
    qsnn_status (*states)(void *user, int pop, int64_t step, const double *vals);
    void (*progress)(void *user, double t, double t_end);
} qsnn_sim_sink;

typedef struct qsnn_sim_stats {
    double wall_s;          /* the simulation loop only */
    double build_s;         /* qsnn_popnet_build */
    int64_t n_spikes;
    int64_t n_synapses;
    int64_t n_neurons;
    size_t bytes_synapses;  /* CSR arrays */
    size_t bytes_neurons;   /* states, refractory counters, delay rings */
    long cvode_steps, cvode_reinits;
} qsnn_sim_stats;

/* Runs `duration` seconds from the current state with the time-stepped engine. */
qsnn_status qsnn_popnet_run_step(qsnn_popnet *net, double duration, const qsnn_sim_sink *sink,
                                 qsnn_sim_stats *stats);
/* The same with the CVODE engine (sim/cvode_net.c). */
qsnn_status qsnn_popnet_run_cvode(qsnn_popnet *net, double duration, const qsnn_cvode_opts *opts,
                                  const qsnn_sim_sink *sink, qsnn_sim_stats *stats);

/* Bytes held by synapses and by neurons (for reports). */
void qsnn_popnet_memory(const qsnn_popnet *net, size_t *synapses, size_t *neurons);

#endif
