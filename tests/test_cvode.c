/* The continuous-time engine: CVODE spike times against the analytic LIF solution, the convergence
 * order of the time-stepped engine towards it as dt halves, the batch kernels against their Euler
 * reference twin, and the errors for bad parameters and failing solvers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "neurons/ct_model.h"
#include "sim/cvode_engine.h"
#include "sim/popnet.h"
#include "test_util.h"

/* LIF (current model) driven to v_inf = v_rest + v_drive above threshold, starting at v_reset:
 * spike n (from 1) at n T + (n - 1) t_ref with T = tau ln((v_inf - v_r) / (v_inf - theta)). */
#define TAU 20e-3
#define V_REST -60e-3
#define V_DRIVE 20e-3
#define THETA -50e-3
#define V_R -60e-3
#define T_REF 2e-3

static void lif_params(const qsnn_ct_model *m, double *p) {
    qsnn_ct_params_default(m, p);
    p[qsnn_ct_param_index(m, "tau_m")] = TAU;
    p[qsnn_ct_param_index(m, "v_rest")] = V_REST;
    p[qsnn_ct_param_index(m, "v_drive")] = V_DRIVE;
    p[qsnn_ct_param_index(m, "v_thresh")] = THETA;
    p[qsnn_ct_param_index(m, "v_reset")] = V_R;
    p[qsnn_ct_param_index(m, "t_ref")] = T_REF;
}

static double analytic_spike(int n) {
    const double v_inf = V_REST + V_DRIVE;
    const double T = TAU * log((v_inf - V_R) / (v_inf - THETA));
    return n * T + (n - 1) * T_REF;
}

typedef struct spikes {
    double t[4096];
    int n;
} spikes;

static void collect(void *user, double t) {
    spikes *s = user;
    if (s->n < 4096) s->t[s->n++] = t;
}

static void analytic_case(qsnn_cvode_method method) {
    qsnn_ctx *ctx = test_ctx(1);
    const qsnn_ct_model *m = qsnn_ct_model_get("lif_current");
    cr_assert_not_null(m);
    double p[QSNN_CT_MAX_PARAMS], y0[3] = {V_R, 0.0, 0.0};
    lif_params(m, p);
    qsnn_cvode_opts o;
    qsnn_cvode_opts_default(&o);
    o.rtol = 1e-10;
    o.atol = 1e-10;
    o.method = method;
    qsnn_ct_cell *c = NULL;
    cr_assert_eq(qsnn_ct_cell_create(ctx, m, p, y0, 0.0, &o, &c), QSNN_OK, "%s", qsnn_last_error(ctx));
    spikes s = {.n = 0};
    char err[256] = "";
    cr_assert_eq(qsnn_ct_cell_advance(c, 0.3, NULL, 0, collect, &s, NULL, 0, NULL, err, sizeof err), QSNN_OK, "%s", err);
    int expect = 0;
    while (analytic_spike(expect + 1) <= 0.3) expect++;
    cr_assert_eq(s.n, expect, "%d spikes, analytic %d", s.n, expect);
    cr_assert_geq(s.n, 15);
    double worst = 0.0;
    for (int k = 0; k < s.n; k++) worst = fmax(worst, fabs(s.t[k] - analytic_spike(k + 1)));
    cr_assert_leq(worst, 1e-6, "worst spike-time error %.3g s", worst);
    fprintf(stderr, "analytic LIF (%s): %d spikes, worst error %.3g s\n", method == QSNN_CVODE_BDF ? "BDF" : "Adams",
            s.n, worst);
    qsnn_ct_cell_destroy(&c);
    qsnn_ctx_destroy(&ctx);
}

Test(cvode, lif_analytic_spike_times_adams) { analytic_case(QSNN_CVODE_ADAMS); }
Test(cvode, lif_analytic_spike_times_bdf) { analytic_case(QSNN_CVODE_BDF); }

/* An input event adds to ge; v then follows the closed form of the linear system (the same one as
 * the exact step of the time-stepped engine, checked here against CVODE at two sample times). */
Test(cvode, input_event_and_samples_match_closed_form) {
    qsnn_ctx *ctx = test_ctx(1);
    const qsnn_ct_model *m = qsnn_ct_model_get("lif_current");
    double p[QSNN_CT_MAX_PARAMS];
    qsnn_ct_params_default(m, p); /* v_rest -49 mV, below-threshold input below */
    p[qsnn_ct_param_index(m, "v_rest")] = -60e-3;
    double y0[3] = {-60e-3, 0.0, 0.0};
    qsnn_cvode_opts o;
    qsnn_cvode_opts_default(&o);
    o.rtol = o.atol = 1e-11;
    qsnn_ct_cell *c = NULL;
    cr_assert_eq(qsnn_ct_cell_create(ctx, m, p, y0, 0.0, &o, &c), QSNN_OK);
    const qsnn_ct_input in[1] = {{0.005, 1, 4e-3}}; /* ge += 4 mV at 5 ms */
    const double ts[2] = {0.004, 0.012};
    double smp[6];
    char err[256];
    spikes s = {.n = 0};
    cr_assert_eq(qsnn_ct_cell_advance(c, 0.02, in, 1, collect, &s, ts, 2, smp, err, sizeof err), QSNN_OK, "%s", err);
    cr_assert_eq(s.n, 0);
    cr_assert_float_eq(smp[0], -60e-3, 1e-12);
    const double tm = 20e-3, te = 5e-3, t = 0.012 - 0.005;
    const double v = -60e-3 + 4e-3 * te / (te - tm) * (exp(-t / te) - exp(-t / tm));
    cr_assert_float_eq(smp[3], v, 1e-9, "v %.12g closed form %.12g", smp[3], v);
    cr_assert_float_eq(smp[4], 4e-3 * exp(-t / te), 1e-10);
    qsnn_ct_cell_destroy(&c);
    qsnn_ctx_destroy(&ctx);
}

/* ---- networks of one neuron: both engines ----------------------------------------------------- */

typedef struct net_spikes {
    double t[4096];
    int n;
} net_spikes;

static qsnn_status sink_spikes(void *user, int pop, const double *t, const int32_t *idx, int64_t n) {
    net_spikes *s = user;
    for (int64_t k = 0; k < n && s->n < 4096; k++) s->t[s->n++] = t[k];
    return QSNN_OK;
}

static qsnn_popnet *one_neuron(qsnn_ctx *ctx, double dt) {
    qsnn_popnet *net = NULL;
    cr_assert_eq(qsnn_popnet_create(ctx, &net), QSNN_OK);
    net->dt = dt;
    int p;
    const qsnn_ct_model *m = qsnn_ct_model_get("lif_current");
    cr_assert_eq(qsnn_popnet_add_pop(net, "cell", 1, m, 0.0, &p), QSNN_OK);
    lif_params(m, net->pop[p].params);
    net->pop[p].init[0] = (qsnn_state_init){QSNN_INIT_CONST, V_R, 0.0, 1};
    cr_assert_eq(qsnn_popnet_build(net), QSNN_OK, "%s", qsnn_last_error(ctx));
    return net;
}

Test(cvode, network_engine_matches_analytic) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_popnet *net = one_neuron(ctx, 1e-4);
    net_spikes s = {.n = 0};
    qsnn_sim_sink sink = {&s, sink_spikes, NULL, NULL};
    qsnn_cvode_opts o;
    qsnn_cvode_opts_default(&o);
    o.rtol = o.atol = 1e-10;
    cr_assert_eq(qsnn_popnet_run_cvode(net, 0.2, &o, &sink, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_geq(s.n, 10);
    for (int k = 0; k < s.n; k++) cr_assert_leq(fabs(s.t[k] - analytic_spike(k + 1)), 1e-6);
    qsnn_popnet_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

/* The time-stepped engine's spike times converge to CVODE's at first order: a spike is stamped at
 * the end of the step in which v crossed (an error uniform in [0, dt)), Euler's own error is O(dt),
 * and each stamped spike restarts the next interval from the grid, so the error of spike n grows
 * like n dt. One neuron gives a staircase (all its intervals fall on the grid the same way, and
 * may do so identically for several dt), so the error is averaged over 16 populations with
 * different drives (different periods), 4 neurons each from uniform random potentials, over all
 * their spikes in 0.1 s. dt = 0.1 ms / 2^k, k = 0..4; reference: the CVODE engine at rtol 1e-10.
 * The fitted log-log slope must lie in [0.8, 1.2]. */
enum { NPOP = 16, PER = 4, NCONV = NPOP * PER, MAXS = 16 };

typedef struct per_neuron {
    double t[NCONV][MAXS];
    int n[NCONV];
} per_neuron;

static qsnn_status sink_per_neuron(void *user, int pop, const double *t, const int32_t *idx, int64_t n) {
    per_neuron *s = user;
    for (int64_t k = 0; k < n; k++) {
        const int g = pop * PER + idx[k];
        if (s->n[g] < MAXS) s->t[g][s->n[g]++] = t[k];
    }
    return QSNN_OK;
}

static qsnn_popnet *conv_net(qsnn_ctx *ctx, double dt) {
    qsnn_popnet *net = NULL;
    cr_assert_eq(qsnn_popnet_create(ctx, &net), QSNN_OK);
    net->dt = dt;
    net->seed = 3;
    const qsnn_ct_model *m = qsnn_ct_model_get("lif_current");
    for (int q = 0; q < NPOP; q++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", q);
        int p;
        cr_assert_eq(qsnn_popnet_add_pop(net, name, PER, m, 0.0, &p), QSNN_OK);
        lif_params(m, net->pop[p].params);
        net->pop[p].params[qsnn_ct_param_index(m, "v_drive")] = 12e-3 + 1.3e-3 * q;
        net->pop[p].init[0] = (qsnn_state_init){QSNN_INIT_UNIFORM, V_R, THETA, 1};
    }
    cr_assert_eq(qsnn_popnet_build(net), QSNN_OK, "%s", qsnn_last_error(ctx));
    return net;
}

Test(cvode, step_engine_converges_first_order) {
    qsnn_ctx *ctx = test_ctx(1);
    static per_neuron ref, got;
    memset(&ref, 0, sizeof ref);
    qsnn_popnet *net = conv_net(ctx, 1e-4);
    qsnn_cvode_opts o;
    qsnn_cvode_opts_default(&o);
    o.rtol = o.atol = 1e-10;
    qsnn_sim_sink sink = {&ref, sink_per_neuron, NULL, NULL};
    cr_assert_eq(qsnn_popnet_run_cvode(net, 0.1, &o, &sink, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_popnet_destroy(&net);
    enum { K = 5 };
    double lx[K], ly[K];
    for (int k = 0; k < K; k++) {
        const double dt = 1e-4 / (double)(1 << k);
        memset(&got, 0, sizeof got);
        net = conv_net(ctx, dt);
        sink.user = &got;
        cr_assert_eq(qsnn_popnet_run_step(net, 0.1, &sink, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
        double e = 0.0;
        int m = 0;
        for (int i = 0; i < NCONV; i++) {
            const int c = got.n[i] < ref.n[i] ? got.n[i] : ref.n[i];
            cr_assert_geq(c, ref.n[i] - 1, "dt %g neuron %d: %d spikes, CVODE %d", dt, i, got.n[i], ref.n[i]);
            for (int s = 0; s < c; s++, m++) e += fabs(got.t[i][s] - ref.t[i][s]);
        }
        e /= m;
        lx[k] = log(dt);
        ly[k] = log(e);
        fprintf(stderr, "dt %.4g s: mean spike-time error %.4g s over %d spikes\n", dt, e, m);
        qsnn_popnet_destroy(&net);
    }
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (int k = 0; k < K; k++) mx += lx[k] / K, my += ly[k] / K;
    for (int k = 0; k < K; k++) sxy += (lx[k] - mx) * (ly[k] - my), sxx += (lx[k] - mx) * (lx[k] - mx);
    const double order = sxy / sxx;
    fprintf(stderr, "fitted convergence order %.3f\n", order);
    cr_assert(order >= 0.8 && order <= 1.2, "fitted order %.3f", order);
    qsnn_ctx_destroy(&ctx);
}

/* ---- batch kernels against the Euler reference twin ------------------------------------------ */

static void kernel_case(const char *name) {
    const qsnn_ct_model *m = qsnn_ct_model_get(name);
    cr_assert_not_null(m);
    double p[QSNN_CT_MAX_PARAMS];
    qsnn_ct_params_default(m, p);
    enum { N = 257 };
    static double a[3][N], b[3][N];
    int32_t ref[N];
    qsnn_rng r;
    qsnn_rng_init(&r, 7, 1);
    for (int i = 0; i < N; i++) {
        a[0][i] = -70e-3 + 25e-3 * qsnn_rng_uniform(&r);
        a[1][i] = 2.0 * qsnn_rng_uniform(&r);
        a[2][i] = 3.0 * qsnn_rng_uniform(&r);
        ref[i] = (int32_t)qsnn_rng_below(&r, 3);
    }
    memcpy(b, a, sizeof a);
    double *ya[3] = {a[0], a[1], a[2]}, *yb[3] = {b[0], b[1], b[2]};
    for (int s = 0; s < 5; s++) {
        m->step(p, ya, ref, N, 1e-4, 0);
        qsnn_ct_step_euler_ref(m, p, yb, ref, N, 1e-4);
    }
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "%s: step() differs from the Euler reference", name);
}

Test(cvode, lif_kernels_equal_euler_reference) {
    kernel_case("lif_current");
    kernel_case("lif_conductance");
}

/* ---- errors ---------------------------------------------------------------------------------- */

static void expect_build_error(const char *model, const char *param, double value, const char *msg) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_popnet *net = NULL;
    cr_assert_eq(qsnn_popnet_create(ctx, &net), QSNN_OK);
    int p;
    const qsnn_ct_model *m = qsnn_ct_model_get(model);
    cr_assert_eq(qsnn_popnet_add_pop(net, "exc", 10, m, 0.0, &p), QSNN_OK);
    net->pop[p].params[qsnn_ct_param_index(m, param)] = value;
    cr_assert_eq(qsnn_popnet_build(net), QSNN_ERR_CONFIG);
    cr_assert_str_eq(qsnn_last_error(ctx), msg);
    qsnn_popnet_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

Test(cvode, bad_parameters_name_population) {
    expect_build_error("lif_conductance", "tau_m", -0.02, "population exc (lif_conductance): tau_m = -0.02: must be > 0");
    expect_build_error("lif_current", "tau_e", 0.0, "population exc (lif_current): tau_e = 0: must be > 0");
    expect_build_error("adex", "C", -1e-12, "population exc (adex): C = -1e-12: must be > 0");
    expect_build_error("hh", "C", 0.0, "population exc (hh): C = 0: must be > 0");
    expect_build_error("lif_current", "v_thresh", NAN, "population exc (lif_current): v_thresh = nan: must be finite");
    expect_build_error("izhikevich", "d", INFINITY, "population exc (izhikevich): d = inf: must be finite");
}

/* A solver that cannot keep up stops with the population, neuron, flag and time (never a hang). */
Test(cvode, solver_failure_names_neuron) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_popnet *net = NULL;
    cr_assert_eq(qsnn_popnet_create(ctx, &net), QSNN_OK);
    int p;
    const qsnn_ct_model *m = qsnn_ct_model_get("izhikevich");
    cr_assert_eq(qsnn_popnet_add_pop(net, "blowup", 3, m, 0.0, &p), QSNN_OK);
    net->pop[p].params[qsnn_ct_param_index(m, "v_peak")] = 1e300; /* v^2 runs away to infinity */
    net->pop[p].params[qsnn_ct_param_index(m, "i_ext")] = 100.0;
    cr_assert_eq(qsnn_popnet_build(net), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_cvode_opts o;
    qsnn_cvode_opts_default(&o);
    const qsnn_status st = qsnn_popnet_run_cvode(net, 0.1, &o, NULL, NULL);
    cr_assert_eq(st, QSNN_ERR_NUMERIC);
    const char *e = qsnn_last_error(ctx);
    fprintf(stderr, "%s\n", e);
    const char *want = "population blowup neuron 0: CVODE CV_";
    cr_assert(!strncmp(e, want, strlen(want)), "%s", e);
    cr_assert_not_null(strstr(e, " at t = "), "%s", e);
    qsnn_popnet_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

/* ---- AdEx, Izhikevich, Hodgkin-Huxley: both engines ------------------------------------------ */

typedef struct model_spikes {
    double t[3][256];
    int n[3];
} model_spikes;

static qsnn_status sink_models(void *user, int pop, const double *t, const int32_t *idx, int64_t n) {
    model_spikes *s = user;
    for (int64_t k = 0; k < n; k++)
        if (s->n[pop] < 256) s->t[pop][s->n[pop]++] = t[k];
    return QSNN_OK;
}

static qsnn_popnet *three_models(qsnn_ctx *ctx) {
    qsnn_popnet *net = NULL;
    cr_assert_eq(qsnn_popnet_create(ctx, &net), QSNN_OK);
    net->dt = 1e-5;
    const char *names[3] = {"adex", "izhikevich", "hh"};
    const double drive[3] = {1e-9, 10.0, 1e-9}; /* 1 nA, 10 mV/ms, 1 nA */
    for (int k = 0; k < 3; k++) {
        const qsnn_ct_model *m = qsnn_ct_model_get(names[k]);
        int p;
        cr_assert_eq(qsnn_popnet_add_pop(net, names[k], 1, m, 0.0, &p), QSNN_OK);
        net->pop[p].params[qsnn_ct_param_index(m, "i_ext")] = drive[k];
    }
    cr_assert_eq(qsnn_popnet_build(net), QSNN_OK, "%s", qsnn_last_error(ctx));
    return net;
}

/* 0.5 s of constant drive. CVODE and Euler at dt = 10 us agree on the spike count (within one) and
 * the first spike (within 0.2 ms); AdEx adapts (its inter-spike intervals grow), Izhikevich's
 * regular-spiking cell fires a first spike early then adapts, Hodgkin-Huxley fires tonically. */
Test(cvode, adex_izhikevich_hh_in_both_engines) {
    qsnn_ctx *ctx = test_ctx(1);
    static model_spikes a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    qsnn_popnet *net = three_models(ctx);
    qsnn_sim_sink sink = {&a, sink_models, NULL, NULL};
    qsnn_cvode_opts o;
    qsnn_cvode_opts_default(&o);
    o.rtol = o.atol = 1e-8;
    cr_assert_eq(qsnn_popnet_run_cvode(net, 0.5, &o, &sink, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_popnet_destroy(&net);
    net = three_models(ctx);
    sink.user = &b;
    cr_assert_eq(qsnn_popnet_run_step(net, 0.5, &sink, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_popnet_destroy(&net);
    const int lo[3] = {10, 8, 40}, hi[3] = {30, 20, 100};
    for (int k = 0; k < 3; k++) {
        fprintf(stderr, "model %d: cvode %d spikes (first %.4f s), step %d\n", k, a.n[k], a.t[k][0], b.n[k]);
        cr_assert(a.n[k] >= lo[k] && a.n[k] <= hi[k], "model %d: %d spikes", k, a.n[k]);
        cr_assert_leq(abs(a.n[k] - b.n[k]), 1, "model %d: cvode %d, step %d spikes", k, a.n[k], b.n[k]);
        cr_assert_leq(fabs(a.t[k][0] - b.t[k][0]), 2e-4, "model %d: first spike %.6f vs %.6f", k, a.t[k][0], b.t[k][0]);
    }
    cr_assert_gt(a.t[0][4] - a.t[0][3], 1.2 * (a.t[0][1] - a.t[0][0]), "AdEx does not adapt");
    cr_assert_lt(a.t[1][0], 0.01, "Izhikevich RS: first spike at %.4f s", a.t[1][0]);
    const double isi_hh = (a.t[2][a.n[2] - 1] - a.t[2][a.n[2] - 11]) / 10, isi0 = a.t[2][2] - a.t[2][1];
    cr_assert_lt(fabs(isi_hh - isi0), 0.2 * isi0, "HH is not tonic");
    qsnn_ctx_destroy(&ctx);
}

/* The exact update of lif_current (CUBA) against CVODE at tight tolerances over one long step, for
 * distinct time constants and for tau_e = tau_m (the other branch of the closed form). */
static void exact_case(double tau_e) {
    qsnn_ctx *ctx = test_ctx(1);
    const qsnn_ct_model *m = qsnn_ct_model_get("lif_current");
    double p[QSNN_CT_MAX_PARAMS];
    qsnn_ct_params_default(m, p);
    p[qsnn_ct_param_index(m, "tau_e")] = tau_e;
    p[qsnn_ct_param_index(m, "v_thresh")] = 1.0; /* no spike in this step */
    p[qsnn_ct_param_index(m, "i_ext")] = 30e-12;
    double v[1] = {-55e-3}, ge[1] = {2e-3}, gi[1] = {-1e-3};
    double *y[3] = {v, ge, gi};
    const int32_t ref[1] = {0};
    const double dt = 2e-3;
    m->step(p, y, ref, 1, dt, 1);
    double y0[3] = {-55e-3, 2e-3, -1e-3};
    qsnn_cvode_opts o;
    qsnn_cvode_opts_default(&o);
    o.rtol = 1e-12;
    o.atol = 1e-12;
    qsnn_ct_cell *c = NULL;
    cr_assert_eq(qsnn_ct_cell_create(ctx, m, p, y0, 0.0, &o, &c), QSNN_OK);
    char err[256];
    cr_assert_eq(qsnn_ct_cell_advance(c, dt, NULL, 0, NULL, NULL, NULL, 0, NULL, err, sizeof err), QSNN_OK, "%s", err);
    const double *yc = qsnn_ct_cell_state(c);
    cr_assert_float_eq(v[0], yc[0], 1e-11, "tau_e %g: exact %.15g, CVODE %.15g", tau_e, v[0], yc[0]);
    cr_assert_float_eq(ge[0], yc[1], 1e-13);
    cr_assert_float_eq(gi[0], yc[2], 1e-13);
    qsnn_ct_cell_destroy(&c);
    qsnn_ctx_destroy(&ctx);
}

Test(cvode, cuba_exact_update_matches_cvode) {
    exact_case(5e-3);
    exact_case(20e-3); /* = tau_m */
}

/* lif_delta (the training LIF in continuous time) with a constant input I: v = tau I / dt_in
 * (1 - e^(-t/tau)) from 0, and the subtractive reset lands exactly on 0 again, so spikes come every
 * P = -tau ln(1 - theta dt_in / (tau I)). */
Test(cvode, lif_delta_periodic_spikes) {
    qsnn_ctx *ctx = test_ctx(1);
    const qsnn_ct_model *m = qsnn_ct_model_get("lif_delta");
    cr_assert_not_null(m);
    double p[QSNN_CT_MAX_PARAMS];
    qsnn_ct_params_default(m, p);
    const double dt = 1e-3, beta = 0.95, tau = dt / (1.0 - beta), I = 0.3, theta = 1.0;
    p[qsnn_ct_param_index(m, "tau")] = tau;
    p[qsnn_ct_param_index(m, "dt_in")] = dt;
    p[qsnn_ct_param_index(m, "theta")] = theta;
    double y0[2] = {0.0, I};
    qsnn_cvode_opts o;
    qsnn_cvode_opts_default(&o);
    o.rtol = o.atol = 1e-10;
    qsnn_ct_cell *c = NULL;
    cr_assert_eq(qsnn_ct_cell_create(ctx, m, p, y0, 0.0, &o, &c), QSNN_OK);
    spikes s = {.n = 0};
    char err[256];
    cr_assert_eq(qsnn_ct_cell_advance(c, 0.05, NULL, 0, collect, &s, NULL, 0, NULL, err, sizeof err), QSNN_OK, "%s", err);
    const double P = -tau * log(1.0 - theta * dt / (tau * I));
    cr_assert_eq(s.n, (int)floor(0.05 / P), "%d spikes, period %g", s.n, P);
    for (int k = 0; k < s.n; k++) cr_assert_leq(fabs(s.t[k] - (k + 1) * P), 1e-7, "spike %d at %.9f", k, s.t[k]);
    qsnn_ct_cell_destroy(&c);
    qsnn_ctx_destroy(&ctx);
}
