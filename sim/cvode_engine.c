#include "sim/cvode_engine.h"

#include <math.h>
#include <nvector/nvector_serial.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sunlinsol/sunlinsol_dense.h>
#include <sunmatrix/sunmatrix_dense.h>
#include <sunnonlinsol/sunnonlinsol_fixedpoint.h>

#include "sim/sundials_compat.h"

struct qsnn_ct_cell {
    qsnn_ctx *ctx;
    const qsnn_ct_model *m;
    const double *p;
    int ns;
    SUNContext sun;
    void *mem;
    N_Vector y, atol;
    SUNMatrix A;
    SUNLinearSolver LS;
    SUNNonlinearSolver NLS;
    double t, t_ref, ref_until;
    int refractory, need_reinit;
    long reinits, steps_before; /* CVodeReInit zeroes CVODE's own step count */
    double last_spike;
    int same_time_spikes;
};

void qsnn_cvode_opts_default(qsnn_cvode_opts *o) {
    o->rtol = 1e-6;
    o->atol = 1e-6;
    o->method = QSNN_CVODE_AUTO;
    o->max_steps = 50000;
    o->max_step = 0.0;
}

/* Typical magnitude of a state by its unit, so that one atol fits volts and siemens. */
static double unit_scale(const char *unit) {
    if (!strcmp(unit, "V")) return 1e-3;
    if (!strcmp(unit, "S")) return 1e-9;
    if (!strcmp(unit, "A")) return 1e-12;
    return 1.0;
}

static int f_rhs(sunrealtype t, N_Vector y, N_Vector ydot, void *user) {
    (void)t;
    qsnn_ct_cell *c = user;
    const double *yy = NV_DATA_S(y);
    double *dy = NV_DATA_S(ydot);
    c->m->rhs(c->p, yy, dy, c->refractory);
    for (int k = 0; k < c->ns; k++)
        if (!isfinite(dy[k])) return 1; /* recoverable: CVODE retries with a smaller step */
    return 0;
}

static int f_root(sunrealtype t, N_Vector y, sunrealtype *g, void *user) {
    (void)t;
    qsnn_ct_cell *c = user;
    g[0] = c->m->threshold(c->p, NV_DATA_S(y));
    return 0;
}

static int f_jac(sunrealtype t, N_Vector y, N_Vector fy, SUNMatrix J, void *user, N_Vector t1, N_Vector t2,
                 N_Vector t3) {
    (void)t, (void)fy, (void)t1, (void)t2, (void)t3;
    qsnn_ct_cell *c = user;
    double Jr[QSNN_CT_MAX_STATES * QSNN_CT_MAX_STATES];
    c->m->jac(c->p, NV_DATA_S(y), Jr, c->refractory);
    for (int i = 0; i < c->ns; i++)
        for (int j = 0; j < c->ns; j++) SM_ELEMENT_D(J, i, j) = Jr[i * c->ns + j];
    return 0;
}

qsnn_status qsnn_ct_cell_create(qsnn_ctx *ctx, const qsnn_ct_model *m, const double *params, const double *y0,
                                double t0, const qsnn_cvode_opts *opts, qsnn_ct_cell **out) {
    *out = NULL;
    if (m->n_states > QSNN_CT_MAX_STATES) return qsnn_fail(ctx, QSNN_ERR_ARG, "model %s: too many states", m->name);
    qsnn_cvode_opts o;
    if (opts) o = *opts;
    else qsnn_cvode_opts_default(&o);
    if (!(o.rtol > 0.0) || !(o.atol > 0.0) || !isfinite(o.rtol) || !isfinite(o.atol))
        return qsnn_fail(ctx, QSNN_ERR_ARG, "CVODE tolerances must be finite and > 0 (rtol %g, atol %g)", o.rtol, o.atol);
    qsnn_ct_cell *c = qsnn_calloc(ctx, 1, sizeof *c);
    if (!c) return QSNN_ERR_NOMEM;
    c->ctx = ctx;
    c->m = m;
    c->p = params;
    c->ns = m->n_states;
    c->t = t0;
    c->t_ref = m->refractory_param >= 0 ? params[m->refractory_param] : 0.0;
    c->last_spike = -INFINITY;
    const char *what = "SUNContext_Create";
    if (qsnn_sun_context_create(&c->sun)) goto fail;
    what = "N_VNew_Serial";
    c->y = N_VNew_Serial(c->ns, c->sun);
    c->atol = N_VNew_Serial(c->ns, c->sun);
    if (!c->y || !c->atol) goto fail;
    double *yy = NV_DATA_S(c->y), *at = NV_DATA_S(c->atol);
    if (y0) memcpy(yy, y0, (size_t)c->ns * sizeof *yy);
    else qsnn_ct_init_state(m, params, yy);
    for (int k = 0; k < c->ns; k++) at[k] = o.atol * unit_scale(m->states[k].unit);
    const int bdf = o.method == QSNN_CVODE_BDF || (o.method == QSNN_CVODE_AUTO && m->stiff);
    what = "CVodeCreate";
    c->mem = CVodeCreate(bdf ? CV_BDF : CV_ADAMS, c->sun);
    if (!c->mem) goto fail;
    qsnn_cvode_silence(c->mem, c->sun);
    what = "CVodeInit";
    if (CVodeInit(c->mem, f_rhs, t0, c->y)) goto fail;
    if (CVodeSVtolerances(c->mem, o.rtol, c->atol) || CVodeSetUserData(c->mem, c)) goto fail;
    what = "CVodeRootInit";
    int dir = 1; /* upward crossings only */
    if (CVodeRootInit(c->mem, 1, f_root) || CVodeSetRootDirection(c->mem, &dir) || CVodeSetNoInactiveRootWarn(c->mem))
        goto fail;
    what = "the CVODE solvers";
    if (bdf) {
        c->A = SUNDenseMatrix(c->ns, c->ns, c->sun);
        c->LS = c->A ? SUNLinSol_Dense(c->y, c->A, c->sun) : NULL;
        if (!c->LS || CVodeSetLinearSolver(c->mem, c->LS, c->A)) goto fail;
        if (m->jac && CVodeSetJacFn(c->mem, f_jac)) goto fail;
    } else {
        c->NLS = SUNNonlinSol_FixedPoint(c->y, 0, c->sun);
        if (!c->NLS || CVodeSetNonlinearSolver(c->mem, c->NLS)) goto fail;
    }
    if (CVodeSetMaxNumSteps(c->mem, o.max_steps > 0 ? o.max_steps : 50000)) goto fail;
    if (o.max_step > 0.0 && CVodeSetMaxStep(c->mem, o.max_step)) goto fail;
    *out = c;
    return QSNN_OK;
fail:
    qsnn_ct_cell_destroy(&c);
    return qsnn_fail(ctx, QSNN_ERR_NOMEM, "CVODE set-up failed in %s", what);
}

void qsnn_ct_cell_destroy(qsnn_ct_cell **cp) {
    if (!cp || !*cp) return;
    qsnn_ct_cell *c = *cp;
    if (c->mem) CVodeFree(&c->mem);
    if (c->LS) SUNLinSolFree(c->LS);
    if (c->A) SUNMatDestroy(c->A);
    if (c->NLS) SUNNonlinSolFree(c->NLS);
    if (c->y) N_VDestroy(c->y);
    if (c->atol) N_VDestroy(c->atol);
    if (c->sun) SUNContext_Free(&c->sun);
    qsnn_free(c->ctx, c);
    *cp = NULL;
}

double qsnn_ct_cell_time(const qsnn_ct_cell *c) { return c->t; }
const double *qsnn_ct_cell_state(const qsnn_ct_cell *c) { return NV_DATA_S(c->y); }

void qsnn_ct_cell_stats(const qsnn_ct_cell *c, long *steps, long *reinits) {
    long s = 0;
    CVodeGetNumSteps(c->mem, &s);
    if (steps) *steps = s + c->steps_before;
    if (reinits) *reinits = c->reinits;
}

/* A spike at c->t: report, reset, start the refractory period. Fails when the neuron fires again and
 * again without time advancing (a reset that leaves it above threshold, with no refractory period). */
static qsnn_status spike(qsnn_ct_cell *c, qsnn_ct_spike_fn on_spike, void *user, char *err, size_t n) {
    if (c->t == c->last_spike) {
        if (++c->same_time_spikes > 100) {
            snprintf(err, n, "fires over and over at t = %.9g s without time advancing", c->t);
            return QSNN_ERR_NUMERIC;
        }
    } else {
        c->same_time_spikes = 0;
    }
    c->last_spike = c->t;
    if (on_spike) on_spike(user, c->t);
    if (c->m->reset) {
        c->m->reset(c->p, NV_DATA_S(c->y));
        c->need_reinit = 1;
    }
    if (c->t_ref > 0.0) {
        c->refractory = 1;
        c->ref_until = c->t + c->t_ref;
        if (c->m->clamp_mask) c->need_reinit = 1;
    }
    return QSNN_OK;
}

static int above(const qsnn_ct_cell *c) {
    return c->m->level_threshold && !c->refractory && c->m->threshold(c->p, NV_DATA_S(c->y)) > 0.0;
}

static void cvode_error(qsnn_ct_cell *c, int flag, char *err, size_t n) {
    sunrealtype tcur = c->t;
    CVodeGetCurrentTime(c->mem, &tcur);
    char *name = CVodeGetReturnFlagName(flag);
    const char *why = flag == CV_TOO_MUCH_WORK   ? "too many steps (stiff or exploding dynamics?)"
                      : flag == CV_CONV_FAILURE  ? "the corrector did not converge"
                      : flag == CV_ERR_FAILURE   ? "error test failed repeatedly"
                      : flag == CV_TOO_MUCH_ACC  ? "tolerances too tight"
                      : flag == CV_REPTD_RHSFUNC_ERR || flag == CV_FIRST_RHSFUNC_ERR || flag == CV_UNREC_RHSFUNC_ERR
                          ? "the right-hand side is not finite"
                          : "solver failure";
    snprintf(err, n, "CVODE %s at t = %.9g s: %s", name ? name : "error", (double)tcur, why);
    free(name); /* CVodeGetReturnFlagName allocates */
}

qsnn_status qsnn_ct_cell_advance(qsnn_ct_cell *c, double t_end, const qsnn_ct_input *in, int n_in,
                                 qsnn_ct_spike_fn on_spike, void *user, const double *sample_t, int n_samples,
                                 double *samples, char *err, size_t err_size) {
    double *y = NV_DATA_S(c->y);
    int ki = 0, ks = 0;
    qsnn_status st;
    for (;;) {
        /* Everything that happens at c->t: end of refractoriness, inputs, a level-threshold spike. */
        if (c->refractory && c->t >= c->ref_until) {
            c->refractory = 0;
            if (c->m->clamp_mask) c->need_reinit = 1;
        }
        for (; ki < n_in && in[ki].t <= c->t; ki++) {
            y[in[ki].state] += in[ki].w;
            c->need_reinit = 1;
        }
        if (above(c) && (st = spike(c, on_spike, user, err, err_size))) return st;
        if (!(c->t < t_end)) break;

        double stop = t_end;
        if (ki < n_in && in[ki].t < stop) stop = in[ki].t;
        if (c->refractory && c->ref_until < stop) stop = c->ref_until;
        if (c->need_reinit) {
            long ns = 0;
            CVodeGetNumSteps(c->mem, &ns);
            c->steps_before += ns;
            if (CVodeReInit(c->mem, c->t, c->y)) {
                snprintf(err, err_size, "CVodeReInit failed at t = %.9g s", c->t);
                return QSNN_ERR_NUMERIC;
            }
            c->need_reinit = 0;
            c->reinits++;
        }
        /* No stop time: CVODE may step past `stop` and return the interpolated state there. Inputs
         * are jumps and the end of refractoriness only switches the rhs, so the solution up to
         * `stop` is smooth and the interpolant is as accurate as the steps; what lies beyond is
         * discarded by the re-initialisation. Window ends then cost no truncated steps. */
        for (;;) { /* to `stop`, pausing at samples, until a spike needs a re-initialisation */
            double target = stop;
            const int is_sample = ks < n_samples && sample_t[ks] <= stop;
            if (is_sample) target = sample_t[ks];
            /* Closer than CVODE can resolve (CV_TOO_CLOSE): the state cannot change in between. */
            if (target - c->t <= 1e-13 * (1.0 + fabs(target))) {
                if (target > c->t) c->t = target;
                if (!is_sample) break;
            }
            if (target <= c->t) { /* a sample at the current time */
                if (is_sample) {
                    memcpy(samples + (size_t)ks * c->ns, y, (size_t)c->ns * sizeof *y);
                    ks++;
                    continue;
                }
                break;
            }
            sunrealtype tret = c->t;
            const int flag = CVode(c->mem, target, c->y, &tret, CV_NORMAL);
            if (flag < 0) {
                cvode_error(c, flag, err, err_size);
                return QSNN_ERR_NUMERIC;
            }
            c->t = tret;
            if (flag == CV_ROOT_RETURN) {
                if (c->refractory && !c->m->level_threshold) continue; /* detection suppressed */
                if ((st = spike(c, on_spike, user, err, err_size))) return st;
                if (c->need_reinit) break;
                continue;
            }
            if (tret >= stop) {
                c->t = stop;
                break;
            }
            if (is_sample) {
                memcpy(samples + (size_t)ks * c->ns, y, (size_t)c->ns * sizeof *y);
                ks++;
            }
        }
    }
    for (; ks < n_samples; ks++) memcpy(samples + (size_t)ks * c->ns, y, (size_t)c->ns * sizeof *y);
    return QSNN_OK;
}
