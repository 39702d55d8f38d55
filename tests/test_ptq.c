/* Post-training quantization: range setting on known data, and qsnn quantize end to end. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/rng.h"
#include "quant/range.h"
#include "sim/engine.h"
#include "train/adaround.h"
#include "train/ptq.h"
#include "test_util.h"

Test(ptq_range, symmetric_steps) {
    float v[1000], scratch[1000];
    qsnn_rng r;
    qsnn_rng_init(&r, 1, 0);
    for (int i = 0; i < 1000; i++) v[i] = 0.1f * (2.0f * qsnn_rng_uniform(&r) - 1.0f);
    v[7] = 1.0f; /* one outlier */
    const float mm = qsnn_range_symmetric_step(v, 1000, 4, QSNN_RANGE_MINMAX, 0, NULL);
    cr_expect_eq(mm, 1.0f / 7.0f, "max|v| / (2^3 - 1)");
    const float mse = qsnn_range_symmetric_step(v, 1000, 4, QSNN_RANGE_MSE, 0, NULL);
    cr_expect_lt(mse, 0.75f * mm, "an outlier is clipped when that lowers the squared error: %g vs %g", mse, mm);
    cr_expect_geq(mse, 0.2f * mm * 0.999f, "the search stops at 20%% of the maximum");
    const float pc = qsnn_range_symmetric_step(v, 1000, 4, QSNN_RANGE_PERCENTILE, 99.0, scratch);
    cr_expect_lt(pc, 0.1f / 7.0f * 1.0001f);
    cr_expect_gt(pc, 0.09f / 7.0f, "99th percentile of |U(-0.1, 0.1)| is about 0.099: %g", pc * 7);
    float zeros[4] = {0};
    cr_expect_eq(qsnn_range_symmetric_step(zeros, 4, 4, QSNN_RANGE_MSE, 0, NULL), 1.0f);
}

Test(ptq_range, state_limits) {
    qsnn_ctx *ctx = test_ctx(1);
    float v[101];
    for (int i = 0; i <= 100; i++) v[i] = -3.0f + 0.05f * (float)i; /* -3 .. 2 */
    qsnn_state_quant_cfg c = {.bits = 4, .grid = QSNN_GRID_UNIFORM};
    cr_assert_eq(qsnn_range_state_limits(ctx, v, 101, 1.0, QSNN_RANGE_MINMAX, 0, &c), QSNN_OK, "%s",
                 qsnn_last_error(ctx));
    cr_expect_float_eq(c.lower_limit, 2.0, 1e-6, "U_min = -3 = -(1 + 2)");
    cr_expect_float_eq(c.upper_limit, 1.0, 1e-6, "U_max = 2 = 1 + 1");
    for (int i = 0; i <= 100; i++) v[i] = 0.2f + 0.001f * (float)i; /* all above 0: lo forced below rest */
    cr_assert_eq(qsnn_range_state_limits(ctx, v, 101, 1.0, QSNN_RANGE_MINMAX, 0, &c), QSNN_OK);
    cr_expect_gt(c.lower_limit, -1.0);
    cr_expect_gt(c.upper_limit, 0.0, "U_max above θ");
    c.grid = QSNN_GRID_THRESHOLD_CENTERED;
    for (int i = 0; i <= 100; i++) v[i] = -3.0f + 0.05f * (float)i;
    cr_assert_eq(qsnn_range_state_limits(ctx, v, 101, 1.0, QSNN_RANGE_MSE, 0, &c), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_expect_eq(qsnn_state_quant_check(ctx, &c), QSNN_OK, "the chosen limits build a valid grid");
    cr_expect_eq(qsnn_range_state_limits(ctx, v, 0, 1.0, QSNN_RANGE_MSE, 0, &c), QSNN_ERR_ARG);
    qsnn_ctx_destroy(&ctx);
}

static char *run_capture(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, len = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + len, 1, cap - 1 - len, p)) > 0) len += got;
    buf[len] = 0;
    const int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

Test(ptq_cli, quantize_a_trained_model, .timeout = 180) {
    char dir[] = "/tmp/qsnn_test_ptq_XXXXXX", cmd[1024];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cmd, sizeof cmd,
             "%s train --set data.train_limit=2048 --set data.test_limit=512 --set model.hidden=64 --set data.steps=8 "
             "--epochs 1 --no-progress --out %s/fp >/dev/null 2>&1",
             QSNN_BIN, dir);
    cr_assert_eq(system(cmd), 0);
    int st;
    snprintf(cmd, sizeof cmd, "%s quantize %s/fp/model.h5 --out %s/q.h5 --calib 128 --weight-bits 4 --state-bits 4 "
                              "--no-progress 2>&1", QSNN_BIN, dir, dir);
    char *out = run_capture(cmd, &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "128 calibration samples") && strstr(out, "best spike-count match") &&
                  strstr(out, "bias corrected"), "%s", out);
    const char *acc = strstr(out, "quantized ");
    cr_assert_not_null(acc, "%s", out);
    const double q = atof(acc + 10);
    free(out);
    snprintf(cmd, sizeof cmd, "%s eval %s/q.h5 --no-progress 2>&1", QSNN_BIN, dir);
    out = run_capture(cmd, &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "matches the accuracy recorded") != NULL, "eval reproduces the reported %.2f%%: %s", q, out);
    free(out);
    /* folding: per-tensor steps over folded rows quantize like per-row steps */
    double acc2[2];
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "%s quantize %s/fp/model.h5 --out %s/f%d.h5 --calib 128 --weight-bits 3 --state-bits 0 "
                 "--range minmax --no-bias-correction --no-progress %s 2>&1",
                 QSNN_BIN, dir, dir, k, k ? "--per-tensor --fold-thresholds" : "");
        out = run_capture(cmd, &st);
        cr_expect_eq(st, 0, "%s", out);
        cr_expect(!k || strstr(out, "of neurons folded"), "%s", out);
        acc = strstr(out, "quantized ");
        cr_assert_not_null(acc, "%s", out);
        acc2[k] = atof(acc + 10);
        free(out);
    }
    cr_expect_leq(fabs(acc2[1] - acc2[0]), 0.4, "folded per-tensor %.2f%% vs per-row %.2f%%", acc2[1], acc2[0]);
    snprintf(cmd, sizeof cmd, "%s eval %s/f1.h5 --no-progress 2>&1", QSNN_BIN, dir);
    out = run_capture(cmd, &st);
    cr_expect(st == 0 && strstr(out, "matches the accuracy recorded"), "a folded model evaluates as reported: %s", out);
    free(out);
    /* bad input: one line, exit status, no file */
    snprintf(cmd, sizeof cmd, "%s quantize %s/fp/model.h5 --out %s/bad.h5 --weight-bits 17 2>&1", QSNN_BIN, dir, dir);
    out = run_capture(cmd, &st);
    cr_expect_eq(st, 2);
    cr_expect_str_eq(out, "qsnn quantize: --weight-bits 17: expected 0 (float) or 1..16\n");
    free(out);
    snprintf(cmd, sizeof cmd, "%s quantize %s/missing.h5 --out %s/bad.h5 2>&1", QSNN_BIN, dir, dir);
    out = run_capture(cmd, &st);
    cr_expect_eq(st, 1);
    cr_expect(strncmp(out, "qsnn quantize: ", 15) == 0 && strstr(out, "missing.h5") && !strchr(out, '\n')[1], "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "test ! -e %s/bad.h5", dir);
    cr_expect_eq(system(cmd), 0, "nothing written on failure");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

Test(ptq_range, adaround_reconstructs_better_than_nearest_rounding) {
    qsnn_ctx *ctx = test_ctx(2);
    enum { OUT = 12, IN = 40, ROWS = 300 };
    static float W[OUT * IN], X[ROWS * IN], G[IN * IN], s[OUT];
    static int32_t codes[OUT * IN], codes1[OUT * IN];
    qsnn_rng r;
    qsnn_rng_init(&r, 5, 0);
    for (int i = 0; i < OUT * IN; i++) W[i] = 0.2f * (qsnn_rng_uniform(&r) - 0.5f);
    for (int i = 0; i < ROWS * IN; i++) X[i] = qsnn_rng_uniform(&r) < 0.3f ? 1.0f : 0.0f; /* spikes */
    for (int a = 0; a < IN; a++)
        for (int b = 0; b < IN; b++) {
            double acc = 0;
            for (int k = 0; k < ROWS; k++) acc += (double)X[k * IN + a] * X[k * IN + b];
            G[a * IN + b] = (float)(acc / ROWS);
        }
    for (int o = 0; o < OUT; o++) s[o] = 0.1f / 3.0f; /* 3 bits: codes -4..3 */
    qsnn_adaround_report rep;
    cr_assert_eq(qsnn_adaround(ctx, W, s, OUT, IN, -4, 3, G, NULL, codes, &rep), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_expect_lt(rep.err_adaround, 0.8 * rep.err_nearest, "learned rounding %g vs nearest %g", rep.err_adaround,
                 rep.err_nearest);
    cr_expect_gt(rep.flipped, 0.0);
    for (int i = 0; i < OUT * IN; i++) {
        const float x = W[i] / s[i / IN];
        cr_expect(codes[i] == (int32_t)floorf(x) || codes[i] == (int32_t)floorf(x) + 1 || codes[i] == -4 || codes[i] == 3,
                  "code %d for %g: down or up only", codes[i], x);
        cr_expect(codes[i] >= -4 && codes[i] <= 3);
    }
    cr_expect_float_eq(qsnn_adaround_error(W, s, codes, OUT, IN, G), rep.err_adaround, 1e-9 + 1e-6 * rep.err_adaround);
    qsnn_ctx_destroy(&ctx);
    ctx = test_ctx(1); /* the same rounding with one thread */
    cr_assert_eq(qsnn_adaround(ctx, W, s, OUT, IN, -4, 3, G, NULL, codes1, NULL), QSNN_OK);
    cr_expect_eq(memcmp(codes, codes1, sizeof codes), 0, "independent of the thread count");
    qsnn_ctx_destroy(&ctx);
}

/* Threshold folding: every row gets the layer's weight range, bias and threshold follow the row's
 * factor, and the float network fires as before (up to rounding). */
Test(ptq_fold, rows_share_the_range_and_spikes_stay) {
    enum { FI = 30, HI = 40, CO = 5, TT = 10, BB = 8 };
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_net *ref = NULL, *fold = NULL;
    qsnn_net_cfg cfg;
    qsnn_net_cfg_default(&cfg);
    cfg.n_inputs = FI, cfg.sizes[0] = HI, cfg.sizes[1] = CO;
    cr_assert_eq(qsnn_net_create(ctx, &cfg, &ref), QSNN_OK);
    cfg.per_neuron = 1;
    cr_assert_eq(qsnn_net_create(ctx, &cfg, &fold), QSNN_OK);
    qsnn_net_init(ref, 5);
    qsnn_net_init(fold, 5);
    for (int l = 0; l < 2; l++)
        for (int o = 0; o < ref->layer[l].out; o++) /* rows of very different ranges */
            for (int i = 0; i < ref->layer[l].in; i++) {
                const size_t k = (size_t)o * ref->layer[l].in + i;
                ref->layer[l].W[k] *= (l ? 20.0f : 3.0f) * (0.2f + (float)(o % 7) / 6.0f);
                fold->layer[l].W[k] = ref->layer[l].W[k];
            }
    qsnn_ptq_report rep;
    memset(&rep, 0, sizeof rep);
    for (int l = 0; l < 2; l++) qsnn_ptq_fold_thresholds(fold, l, &rep);
    cr_assert_eq(qsnn_net_prepare(ref), QSNN_OK);
    cr_assert_eq(qsnn_net_prepare(fold), QSNN_OK, "%s", qsnn_last_error(ctx));
    for (int l = 0; l < 2; l++) {
        const qsnn_layer *R = &ref->layer[l], *L = &fold->layer[l];
        float big = 0.0f;
        for (size_t k = 0; k < R->nw; k++) big = fmaxf(big, fabsf(R->W[k]));
        cr_expect_gt(rep.fold_max[l], 2.5, "layer %d: some rows were far below the range", l);
        for (int o = 0; o < L->out; o++) {
            float m = 0.0f;
            for (int i = 0; i < L->in; i++) m = fmaxf(m, fabsf(L->W[(size_t)o * L->in + i]));
            cr_expect_float_eq(m, big, 1e-6f * big, "layer %d row %d spans the layer's range", l, o);
            const float c = L->pn[QSNN_PN_THETA][o] / R->theta;
            cr_expect_float_eq(L->W[(size_t)o * L->in], c * R->W[(size_t)o * R->in], 1e-6f * fabsf(L->W[(size_t)o * L->in]));
            cr_expect_float_eq(L->b[o], c * R->b[o], 1e-6f * fabsf(L->b[o]) + 1e-12f, "the bias follows the row");
            cr_expect_float_eq(L->q_gain[o], c, 1e-6f * c);
        }
    }
    qsnn_workspace *wr = NULL, *wf = NULL;
    cr_assert_eq(qsnn_workspace_create(ref, BB, TT, 0, &wr), QSNN_OK);
    cr_assert_eq(qsnn_workspace_create(fold, BB, TT, 0, &wf), QSNN_OK);
    float x[BB * FI];
    qsnn_rng r;
    qsnn_rng_init(&r, 9, 0);
    for (int i = 0; i < BB * FI; i++) x[i] = qsnn_rng_uniform(&r);
    cr_assert_eq(qsnn_forward_infer(ref, wr, x, 1, BB), QSNN_OK);
    cr_assert_eq(qsnn_forward_infer(fold, wf, x, 1, BB), QSNN_OK);
    int differ = 0, spikes = 0;
    for (int i = 0; i < TT * BB * CO; i++) {
        differ += wr->buf[1].S[i] != wf->buf[1].S[i];
        spikes += wr->buf[1].S[i] > 0.5f;
    }
    cr_expect_gt(spikes, 20, "the output layer fires (%d spikes, hidden rate %g)", spikes, wr->rate[0]);
    cr_expect_leq(differ, 2, "folding moved %d of %d output spike slots", differ, TT * BB * CO);
    cr_expect_lt(fabs(wr->rate[0] - wf->rate[0]), 1e-3, "hidden rates %g vs %g", wr->rate[0], wf->rate[0]);
    qsnn_workspace_destroy(&wr);
    qsnn_workspace_destroy(&wf);
    qsnn_net_destroy(&ref);
    qsnn_net_destroy(&fold);
    qsnn_ctx_destroy(&ctx);
}
