/* Spike-driven convolution kernels (sim/conv.h, sim/conv_spikes.c): forward and weight gradient for
 * binary inputs against the scalar reference twins and the dense im2row path, at firing rates 0 to
 * 100%, over the shapes of test_conv plus wide ones (in_c >= 64, out_c per group >= 64); thread-count
 * independence bit for bit; an all-zero input gives exactly the bias and a zero gradient. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "sim/conv.h"
#include "conv_test_util.h"


/* test_conv's set (stride 1/2, pad 0/1/2, groups 1/2/4, kernels 1x1/3x3/5x5, non-square), then shapes
 * that reach the 64-channel scan blocks and the 64-wide output tiles with a remainder */
static const conv_case CASES[] = {
    {3, 8, 6, 5, 3, 1, 1, 1},    {4, 9, 7, 6, 3, 2, 1, 2},    {8, 7, 10, 8, 5, 1, 2, 4}, {4, 6, 5, 4, 1, 1, 0, 1},
    {6, 5, 9, 4, 1, 2, 0, 2},    {2, 11, 6, 3, 5, 2, 0, 1},   {4, 6, 6, 8, 3, 1, 0, 4},  {8, 4, 5, 12, 1, 1, 0, 4},
    {1, 5, 5, 2, 5, 1, 2, 1},    {4, 7, 8, 4, 3, 2, 2, 4},    {70, 5, 4, 80, 3, 1, 1, 1}, {64, 4, 6, 128, 3, 2, 1, 2},
    {132, 3, 3, 64, 1, 1, 0, 2},
};
enum { NCASES = sizeof CASES / sizeof CASES[0] };
static const float RATES[] = {0.0f, 0.05f, 0.5f, 1.0f};
enum { NRATES = sizeof RATES / sizeof RATES[0] };

/* 0/1 entries, each 1 with probability rate (rate 1: all ones, rate 0: all zeros) */
static float *spike_buf(size_t n, float rate, uint64_t stream) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    qsnn_rng r;
    qsnn_rng_init(&r, 11, stream);
    for (size_t i = 0; i < n; i++) p[i] = qsnn_rng_uniform(&r) < rate ? 1.0f : 0.0f;
    return p;
}

static float *nan_buf(size_t n) { /* outputs and workspaces must be overwritten, never accumulated into */
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

/* |a - b| <= rtol · (|b| + max|b|): relative, with the array's scale as the floor for near-zero sums. */
static void expect_close(const float *a, const float *b, size_t n, double rtol, const char *what, int ci, float rate,
                         int rows) {
    double amax = 0.0;
    for (size_t i = 0; i < n; i++) amax = fmax(amax, fabs(b[i]));
    int bad = 0;
    for (size_t i = 0; i < n && bad < 5; i++)
        if (!(fabs((double)a[i] - b[i]) <= rtol * (fabs(b[i]) + amax))) {
            cr_expect_fail("case %d rate %g rows %d %s[%zu]: %.9g vs %.9g", ci, rate, rows, what, i, a[i], b[i]);
            bad++;
        }
}

static size_t x_size(const qsnn_conv_shape *s, int rows) { return (size_t)rows * s->in_h * s->in_w * s->in_c; }
static size_t y_size(const qsnn_conv_shape *s, int rows) { return (size_t)rows * s->out_h * s->out_w * s->out_c; }

Test(conv_spikes, workspace_sizes) {
    const qsnn_conv_shape s = make_shape(&CASES[1]);
    cr_expect_eq(qsnn_conv_spikes_wt_floats(&s), qsnn_conv_weight_count(&s));
    cr_expect_eq(qsnn_conv_spikes_part_floats(&s), 16 * qsnn_conv_weight_count(&s));
}

Test(conv_spikes, forward_matches_reference_and_dense) {
    for (int ci = 0; ci < NCASES; ci++)
        for (int q = 0; q < NRATES; q++)
            for (int rows = 1; rows <= 7; rows += 6) {
                const qsnn_conv_shape s = make_shape(&CASES[ci]);
                const size_t nx = x_size(&s, rows), ny = y_size(&s, rows), nw = qsnn_conv_weight_count(&s);
                const int with_bias = (ci + q + rows) % 2;
                float *x = spike_buf(nx, RATES[q], (uint64_t)(ci * 16 + q)), *W = rand_buf(nw, 2);
                float *b = with_bias ? rand_buf((size_t)s.out_c, 3) : NULL;
                float *wt = nan_buf(qsnn_conv_spikes_wt_floats(&s)), *col = nan_buf(qsnn_conv_col_floats(&s, rows));
                float *y = nan_buf(ny), *yr = nan_buf(ny), *yd = nan_buf(ny);
                qsnn_conv_forward_spikes(&s, W, b, x, rows, wt, y);
                qsnn_conv_forward_ref(&s, W, b, x, rows, yr);
                qsnn_conv_forward(&s, W, b, x, rows, col, yd);
                expect_close(y, yr, ny, 1e-5, "y vs ref", ci, RATES[q], rows);
                expect_close(y, yd, ny, 1e-5, "y vs dense", ci, RATES[q], rows);
                free(x), free(W), free(b), free(wt), free(col), free(y), free(yr), free(yd);
            }
}

Test(conv_spikes, weight_grad_matches_reference) {
    for (int ci = 0; ci < NCASES; ci++)
        for (int q = 0; q < NRATES; q++)
            for (int rows = 1; rows <= 7; rows += 6) {
                const qsnn_conv_shape s = make_shape(&CASES[ci]);
                const size_t nx = x_size(&s, rows), ny = y_size(&s, rows), nw = qsnn_conv_weight_count(&s);
                const size_t nb = (size_t)s.out_c;
                float *x = spike_buf(nx, RATES[q], (uint64_t)(ci * 16 + q)), *W = rand_buf(nw, 2);
                float *gy = rand_buf(ny, 4), *part = nan_buf(qsnn_conv_spikes_part_floats(&s));
                float *gW = nan_buf(nw), *gb = nan_buf(nb), *gWr = nan_buf(nw), *gbr = nan_buf(nb);
                qsnn_conv_weight_grad_spikes(&s, x, gy, rows, part, gW, gb);
                qsnn_conv_backward_ref(&s, W, x, gy, rows, gWr, gbr, NULL);
                expect_close(gW, gWr, nw, 1e-5, "gW", ci, RATES[q], rows);
                expect_close(gb, gbr, nb, 1e-5, "gbias", ci, RATES[q], rows);
                /* without gbias: gW unchanged, bit for bit */
                float *gW2 = nan_buf(nw);
                qsnn_conv_weight_grad_spikes(&s, x, gy, rows, part, gW2, NULL);
                cr_expect_eq(memcmp(gW, gW2, nw * sizeof(float)), 0, "case %d: gW depends on gbias being asked", ci);
                free(x), free(W), free(gy), free(part), free(gW), free(gb), free(gWr), free(gbr), free(gW2);
            }
}

Test(conv_spikes, results_do_not_depend_on_the_thread_count) {
    const conv_case cs[] = {{8, 12, 10, 16, 3, 1, 1, 2}, {70, 6, 7, 80, 3, 2, 1, 1}, {6, 15, 11, 12, 5, 2, 2, 3}};
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
        const qsnn_conv_shape s = make_shape(&cs[ci]);
        const int rows = 37; /* more rows than chunks, unevenly split */
        const size_t nx = x_size(&s, rows), ny = y_size(&s, rows), nw = qsnn_conv_weight_count(&s);
        const size_t nb = (size_t)s.out_c;
        float *x = spike_buf(nx, 0.1f, ci), *W = rand_buf(nw, 2), *b = rand_buf(nb, 3), *gy = rand_buf(ny, 4);
        float *wt = nan_buf(qsnn_conv_spikes_wt_floats(&s)), *part = nan_buf(qsnn_conv_spikes_part_floats(&s));
        float *y[2], *gW[2], *gb[2];
        qsnn_ctx *ctx = test_ctx(1);
        for (int t = 0; t < 2; t++) {
            qsnn_ctx_set_threads(ctx, t + 1);
            cr_assert_eq(omp_get_max_threads(), t + 1);
            y[t] = nan_buf(ny), gW[t] = nan_buf(nw), gb[t] = nan_buf(nb);
            qsnn_conv_forward_spikes(&s, W, b, x, rows, wt, y[t]);
            qsnn_conv_weight_grad_spikes(&s, x, gy, rows, part, gW[t], gb[t]);
        }
        cr_expect_eq(memcmp(y[0], y[1], ny * sizeof(float)), 0, "case %zu: y", ci);
        cr_expect_eq(memcmp(gW[0], gW[1], nw * sizeof(float)), 0, "case %zu: gW", ci);
        cr_expect_eq(memcmp(gb[0], gb[1], nb * sizeof(float)), 0, "case %zu: gbias", ci);
        for (int t = 0; t < 2; t++) free(y[t]), free(gW[t]), free(gb[t]);
        free(x), free(W), free(b), free(gy), free(wt), free(part);
        qsnn_ctx_destroy(&ctx);
    }
}

Test(conv_spikes, silent_input_gives_the_bias_exactly) {
    for (int ci = 0; ci < NCASES; ci++) {
        const qsnn_conv_shape s = make_shape(&CASES[ci]);
        const int rows = 3;
        const size_t nx = x_size(&s, rows), ny = y_size(&s, rows), nw = qsnn_conv_weight_count(&s);
        float *x = calloc(nx, sizeof(float)), *W = rand_buf(nw, 2), *b = rand_buf((size_t)s.out_c, 3);
        float *gy = rand_buf(ny, 4), *wt = nan_buf(qsnn_conv_spikes_wt_floats(&s));
        float *part = nan_buf(qsnn_conv_spikes_part_floats(&s)), *y = nan_buf(ny), *gW = nan_buf(nw);
        qsnn_conv_forward_spikes(&s, W, b, x, rows, wt, y);
        for (size_t i = 0; i < ny; i++)
            if (y[i] != b[i % (size_t)s.out_c]) {
                cr_expect_fail("case %d: y[%zu] = %.9g, bias %.9g", ci, i, y[i], b[i % (size_t)s.out_c]);
                break;
            }
        qsnn_conv_forward_spikes(&s, W, NULL, x, rows, wt, y);
        for (size_t i = 0; i < ny; i++)
            if (y[i] != 0.0f) {
                cr_expect_fail("case %d: no bias, y[%zu] = %.9g", ci, i, y[i]);
                break;
            }
        qsnn_conv_weight_grad_spikes(&s, x, gy, rows, part, gW, NULL);
        for (size_t i = 0; i < nw; i++)
            if (gW[i] != 0.0f) {
                cr_expect_fail("case %d: gW[%zu] = %.9g for a silent input", ci, i, gW[i]);
                break;
            }
        free(x), free(W), free(b), free(gy), free(wt), free(part), free(y), free(gW);
    }
}

Test(conv_spikes, no_rows_zero_gradient) {
    const qsnn_conv_shape s = make_shape(&CASES[2]);
    const size_t nw = qsnn_conv_weight_count(&s);
    float *part = nan_buf(qsnn_conv_spikes_part_floats(&s)), *gW = nan_buf(nw), *gb = nan_buf((size_t)s.out_c);
    float dummy = 0.0f;
    qsnn_conv_weight_grad_spikes(&s, &dummy, &dummy, 0, part, gW, gb);
    for (size_t i = 0; i < nw; i++) cr_expect_eq(gW[i], 0.0f, "gW[%zu]", i);
    for (int i = 0; i < s.out_c; i++) cr_expect_eq(gb[i], 0.0f, "gbias[%d]", i);
    free(part), free(gW), free(gb);
}
