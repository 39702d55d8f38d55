/* The YAML file of qsnn simulate: run settings, populations and projections.
 *
 *   dt: 0.1 ms                 # numbers may carry a unit (s, V, S, F, A, Hz with m u n p k prefixes,
 *   duration: 1 s              # e.g. "20 ms", "-60 mV", "6 nS"); a bare number is in SI units
 *   seed: 1
 *   engine: step               # step | cvode
 *   threads: 0                 # 0 = all cores
 *   cvode: {rtol: 1e-6, atol: 1e-6, method: auto, max_steps: 50000}   # method: auto | adams | bdf
 *   populations:
 *     - name: exc
 *       n: 3200
 *       model: lif_conductance  # or lif_current, adex, izhikevich, hh, poisson (then rate: 10 Hz)
 *       integration: euler      # time-stepped engine: euler | exact (lif_current)
 *       params: {tau_m: 20 ms, v_thresh: -50 mV, ...}
 *       init: {v: -60 mV, ge: {uniform: [0, 1]}, gi: {normal: [0, 0.1]}}
 *       record: [0, 1, 2]       # neurons whose states are written every step
 *   projections:
 *     - {from: exc, to: inh, target: ge, weight: 0.6, p: 0.02, delay: 0 ms, autapses: true}
 *     - {from: inp, to: exc, target: ge, weight: 1 nS, pre: [0, 1], post: [5, 9], weights: [1e-9, 2e-9]}
 *
 * Unknown keys, wrong types, bad units and out-of-range values fail with "FILE:LINE: key: message". */
#ifndef QSNN_CLI_SIMULATE_CONFIG_H
#define QSNN_CLI_SIMULATE_CONFIG_H

#include "core/context.h"
#include "sim/cvode_engine.h"
#include "sim/popnet.h"

typedef struct qsnn_sim_config {
    double duration;       /* seconds; default 1 */
    char engine[8];        /* "step" (default) or "cvode" */
    int threads;           /* 0 = all cores */
    long long seed;
    qsnn_cvode_opts cvode;
} qsnn_sim_config;

/* Reads PATH into cfg and the (empty, created) network description. *yaml gets the file's text
 * (free with qsnn_free), stored in the output file. */
qsnn_status qsnn_sim_config_load(qsnn_ctx *ctx, const char *path, qsnn_sim_config *cfg, qsnn_popnet *net,
                                 char **yaml);
/* Parses a value with an optional unit, checking its dimension against `unit` ("s", "V", "1", ...).
 * Returns 0 and *out in SI units, or -1 with a reason in why. */
int qsnn_parse_quantity(const char *text, const char *unit, double *out, char *why, size_t why_size);

#endif
