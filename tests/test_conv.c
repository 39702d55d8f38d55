/* Convolution and pooling kernels (sim/conv.h): the im2row + sgemm path against the scalar reference
 * twin, the twin against central finite differences, pooling on hand-written values, thread-count
 * independence bit for bit, shape errors, and (where the golden file exists) PyTorch's conv2d. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "sim/conv.h"
#include "conv_test_util.h"


/* stride 1/2, pad 0/1/2, groups 1/2/4, kernels 1x1/3x3/5x5, non-square inputs */
static const conv_case CASES[] = {
    {3, 8, 6, 5, 3, 1, 1, 1},  {4, 9, 7, 6, 3, 2, 1, 2},  {8, 7, 10, 8, 5, 1, 2, 4}, {4, 6, 5, 4, 1, 1, 0, 1},
    {6, 5, 9, 4, 1, 2, 0, 2},  {2, 11, 6, 3, 5, 2, 0, 1}, {4, 6, 6, 8, 3, 1, 0, 4}, {8, 4, 5, 12, 1, 1, 0, 4},
    {1, 5, 5, 2, 5, 1, 2, 1},  {4, 7, 8, 4, 3, 2, 2, 4},
};
enum { NCASES = sizeof CASES / sizeof CASES[0] };

static float *nan_buf(size_t n) { /* outputs must be overwritten, never accumulated into */
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

/* |a - b| <= rtol · (|b| + max|b|): relative, with the array's scale as the floor for near-zero sums. */
static void expect_close(const float *a, const float *b, size_t n, double rtol, const char *what, int ci) {
    double amax = 0.0;
    for (size_t i = 0; i < n; i++) amax = fmax(amax, fabs(b[i]));
    int bad = 0;
    for (size_t i = 0; i < n && bad < 5; i++)
        if (!(fabs((double)a[i] - b[i]) <= rtol * (fabs(b[i]) + amax))) {
            cr_expect_fail("case %d %s[%zu]: %.9g vs reference %.9g", ci, what, i, a[i], b[i]);
            bad++;
        }
}

static size_t x_size(const qsnn_conv_shape *s, int rows) { return (size_t)rows * s->in_h * s->in_w * s->in_c; }
static size_t y_size(const qsnn_conv_shape *s, int rows) { return (size_t)rows * s->out_h * s->out_w * s->out_c; }

Test(conv, shape_sizes_follow_pytorch) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_conv_shape a = {.in_c = 1, .in_h = 28, .in_w = 28, .out_c = 8, .kh = 5, .kw = 5, .stride = 1, .groups = 1,
                         .pool = QSNN_POOL_MAX, .pool_size = 2};
    cr_assert_eq(qsnn_conv_shape_check(ctx, &a), QSNN_OK);
    cr_expect(a.out_h == 24 && a.out_w == 24 && a.pool_h == 12 && a.pool_w == 12);
    qsnn_conv_shape b = {.in_c = 4, .in_h = 28, .in_w = 13, .out_c = 4, .kh = 3, .kw = 3, .stride = 2, .pad = 1,
                         .groups = 2, .pool = QSNN_POOL_AVG, .pool_size = 2};
    cr_assert_eq(qsnn_conv_shape_check(ctx, &b), QSNN_OK);
    cr_expect(b.out_h == 14 && b.out_w == 7 && b.pool_h == 7 && b.pool_w == 3, "%d %d %d %d", b.out_h, b.out_w,
              b.pool_h, b.pool_w);
    qsnn_conv_shape c = {.in_c = 2, .in_h = 5, .in_w = 6, .out_c = 3, .kh = 3, .kw = 1, .stride = 1, .groups = 1};
    cr_assert_eq(qsnn_conv_shape_check(ctx, &c), QSNN_OK);
    cr_expect(c.out_h == 3 && c.out_w == 6 && c.pool_h == 3 && c.pool_w == 6);
    cr_expect_eq(qsnn_conv_col_floats(&c, 7), (size_t)7 * 3 * 6 * 3 * 1 * 2);
    cr_expect_eq(qsnn_conv_weight_count(&b), (size_t)4 * 3 * 3 * 2);
    qsnn_ctx_destroy(&ctx);
}

Test(conv, forward_matches_reference) {
    for (int ci = 0; ci < NCASES; ci++)
        for (int rows = 1; rows <= 7; rows += 6)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                const qsnn_conv_shape s = make_shape(&CASES[ci]);
                float *x = rand_buf(x_size(&s, rows), 1), *W = rand_buf(qsnn_conv_weight_count(&s), 2);
                float *b = with_bias ? rand_buf((size_t)s.out_c, 3) : NULL;
                float *col = nan_buf(qsnn_conv_col_floats(&s, rows));
                float *y = nan_buf(y_size(&s, rows)), *yr = nan_buf(y_size(&s, rows));
                qsnn_conv_forward(&s, W, b, x, rows, col, y);
                qsnn_conv_forward_ref(&s, W, b, x, rows, yr);
                expect_close(y, yr, y_size(&s, rows), 1e-5, "y", ci);
                free(x), free(W), free(b), free(col), free(y), free(yr);
            }
}

Test(conv, backward_matches_reference) {
    for (int ci = 0; ci < NCASES; ci++)
        for (int rows = 1; rows <= 7; rows += 6) {
            const qsnn_conv_shape s = make_shape(&CASES[ci]);
            const size_t nx = x_size(&s, rows), ny = y_size(&s, rows), nw = qsnn_conv_weight_count(&s);
            float *x = rand_buf(nx, 1), *W = rand_buf(nw, 2), *gy = rand_buf(ny, 4);
            float *col = nan_buf(qsnn_conv_col_floats(&s, rows));
            float *gW = nan_buf(nw), *gb = nan_buf((size_t)s.out_c), *gx = nan_buf(nx);
            float *gWr = nan_buf(nw), *gbr = nan_buf((size_t)s.out_c), *gxr = nan_buf(nx);
            qsnn_conv_backward(&s, W, x, gy, rows, col, gW, gb, gx);
            qsnn_conv_backward_ref(&s, W, x, gy, rows, gWr, gbr, gxr);
            expect_close(gW, gWr, nw, 1e-5, "gW", ci);
            expect_close(gb, gbr, (size_t)s.out_c, 1e-5, "gbias", ci);
            expect_close(gx, gxr, nx, 1e-5, "gx", ci);
            /* without gx and gbias: gW unchanged */
            float *gW2 = nan_buf(nw);
            qsnn_conv_backward(&s, W, x, gy, rows, col, gW2, NULL, NULL);
            cr_expect_eq(memcmp(gW, gW2, nw * sizeof(float)), 0, "case %d: gW depends on gx/gbias being asked", ci);
            free(x), free(W), free(gy), free(col), free(gW), free(gb), free(gx), free(gWr), free(gbr), free(gxr);
            free(gW2);
        }
}

/* L = Σ gy · conv(x; W, b) in double. The conv is linear in each argument, so a large step is exact up
 * to the float rounding of y. */
static double loss_of(const qsnn_conv_shape *s, const float *W, const float *b, const float *x, const float *gy,
                      int rows, float *y) {
    qsnn_conv_forward_ref(s, W, b, x, rows, y);
    double L = 0.0;
    for (size_t i = 0; i < y_size(s, rows); i++) L += (double)gy[i] * y[i];
    return L;
}

static void check_fd(float *v, size_t n, const float *g, const char *what, int ci, const qsnn_conv_shape *s,
                     const float *W, const float *b, const float *x, const float *gy, int rows, float *y) {
    const float h = 0.25f;
    const size_t picks[] = {0, n / 3, n / 2, (2 * n) / 3, n - 1};
    for (size_t k = 0; k < sizeof picks / sizeof picks[0]; k++) {
        const size_t i = picks[k];
        const float v0 = v[i];
        v[i] = v0 + h;
        const double lp = loss_of(s, W, b, x, gy, rows, y);
        v[i] = v0 - h;
        const double lm = loss_of(s, W, b, x, gy, rows, y);
        v[i] = v0;
        const double fd = (lp - lm) / (2.0 * h);
        cr_expect(fabs(fd - g[i]) <= 1e-4 * (1.0 + fabs(fd)), "case %d d%s[%zu]: reference %.8g, finite diff %.8g",
                  ci, what, i, g[i], fd);
    }
}

Test(conv, reference_gradients_match_finite_differences) {
    const int cases[] = {0, 1, 2, 5, 9};
    for (size_t q = 0; q < sizeof cases / sizeof cases[0]; q++) {
        const int ci = cases[q], rows = 3;
        const qsnn_conv_shape s = make_shape(&CASES[ci]);
        const size_t nx = x_size(&s, rows), ny = y_size(&s, rows), nw = qsnn_conv_weight_count(&s);
        float *x = rand_buf(nx, 1), *W = rand_buf(nw, 2), *b = rand_buf((size_t)s.out_c, 3), *gy = rand_buf(ny, 4);
        float *y = malloc(ny * sizeof(float)), *gW = malloc(nw * sizeof(float)), *gx = malloc(nx * sizeof(float));
        float *gb = malloc((size_t)s.out_c * sizeof(float));
        qsnn_conv_backward_ref(&s, W, x, gy, rows, gW, gb, gx);
        check_fd(W, nw, gW, "W", ci, &s, W, b, x, gy, rows, y);
        check_fd(b, (size_t)s.out_c, gb, "b", ci, &s, W, b, x, gy, rows, y);
        check_fd(x, nx, gx, "x", ci, &s, W, b, x, gy, rows, y);
        free(x), free(W), free(b), free(gy), free(y), free(gW), free(gx), free(gb);
    }
}

/* A 4x5 conv output with 2 channels; 2x2 pooling keeps 2x2 windows and drops the last column. */
static qsnn_conv_shape pool_shape(qsnn_pool_kind kind) {
    qsnn_conv_shape s = {.in_c = 2, .in_h = 4, .in_w = 5, .out_c = 2, .kh = 1, .kw = 1, .stride = 1, .groups = 1,
                         .pool = kind, .pool_size = 2};
    qsnn_ctx *ctx = test_ctx(1);
    cr_assert_eq(qsnn_conv_shape_check(ctx, &s), QSNN_OK, "%s", qsnn_last_error(ctx));
    if (kind != QSNN_POOL_NONE) cr_assert(s.pool_h == 2 && s.pool_w == 2);
    qsnn_ctx_destroy(&ctx);
    return s;
}

/* channel 0: h·5 + w - 10; channel 1: all 1 except (0,0) = 0 and a tie (0,1) = (1,0) = 2 */
static void pool_input(float y[4 * 5 * 2]) {
    for (int h = 0; h < 4; h++)
        for (int w = 0; w < 5; w++) y[(h * 5 + w) * 2] = (float)(h * 5 + w - 10), y[(h * 5 + w) * 2 + 1] = 1.0f;
    y[1] = 0.0f, y[(0 * 5 + 1) * 2 + 1] = 2.0f, y[(1 * 5 + 0) * 2 + 1] = 2.0f;
}

static const float GP[8] = {1, 10, 2, 20, 3, 30, 4, 40}; /* [ph][pw][c] */

Test(conv, max_pool_known_values_and_ties) {
    const qsnn_conv_shape s = pool_shape(QSNN_POOL_MAX);
    float y[40], p[8], gy[40];
    uint8_t am[8];
    pool_input(y);
    qsnn_pool_forward(&s, y, 1, p, am);
    const float want[8] = {-4, 2, -2, 1, 6, 1, 8, 1};
    const uint8_t want_am[8] = {3, 1, 3, 0, 3, 0, 3, 0}; /* channel 1, window 0: tie at 1 and 2, first wins */
    for (int i = 0; i < 8; i++) {
        cr_expect_eq(p[i], want[i], "p[%d] = %g, want %g", i, p[i], want[i]);
        cr_expect_eq(am[i], want_am[i], "argmax[%d] = %d, want %d", i, am[i], want_am[i]);
    }
    for (int i = 0; i < 40; i++) gy[i] = NAN;
    qsnn_pool_backward(&s, GP, am, 1, gy);
    float e[40] = {0};
    e[(1 * 5 + 1) * 2] = 1, e[(1 * 5 + 3) * 2] = 2, e[(3 * 5 + 1) * 2] = 3, e[(3 * 5 + 3) * 2] = 4;
    e[(0 * 5 + 1) * 2 + 1] = 10, e[(0 * 5 + 2) * 2 + 1] = 20, e[(2 * 5 + 0) * 2 + 1] = 30, e[(2 * 5 + 2) * 2 + 1] = 40;
    for (int i = 0; i < 40; i++) cr_expect_eq(gy[i], e[i], "gy[%d] = %g, want %g", i, gy[i], e[i]);
}

Test(conv, sum_and_avg_pool_known_values) {
    for (int avg = 0; avg < 2; avg++) {
        const qsnn_conv_shape s = pool_shape(avg ? QSNN_POOL_AVG : QSNN_POOL_SUM);
        float y[40], p[8], gy[40];
        pool_input(y);
        qsnn_pool_forward(&s, y, 1, p, NULL);
        const float want_sum[8] = {-28, 5, -20, 4, 12, 4, 20, 4};
        for (int i = 0; i < 8; i++) {
            const float w = avg ? want_sum[i] / 4 : want_sum[i];
            cr_expect_eq(p[i], w, "%s p[%d] = %g, want %g", avg ? "avg" : "sum", i, p[i], w);
        }
        for (int i = 0; i < 40; i++) gy[i] = NAN;
        qsnn_pool_backward(&s, GP, NULL, 1, gy);
        for (int h = 0; h < 4; h++)
            for (int w = 0; w < 5; w++)
                for (int c = 0; c < 2; c++) {
                    const float g = w < 4 ? GP[((h / 2) * 2 + w / 2) * 2 + c] : 0.0f, e = avg ? g / 4 : g;
                    cr_expect_eq(gy[(h * 5 + w) * 2 + c], e, "%s gy[%d][%d][%d] = %g, want %g", avg ? "avg" : "sum", h,
                                 w, c, gy[(h * 5 + w) * 2 + c], e);
                }
    }
}

Test(conv, pooling_several_rows_and_none) {
    /* rows are independent: row 1 = row 0 + 100 gives the max/sum shifted the same way */
    const qsnn_conv_shape s = pool_shape(QSNN_POOL_MAX);
    float y[80], p[16];
    uint8_t am[16];
    pool_input(y);
    for (int i = 0; i < 40; i++) y[40 + i] = y[i] + 100;
    qsnn_pool_forward(&s, y, 2, p, am);
    for (int i = 0; i < 8; i++) cr_expect(p[8 + i] == p[i] + 100 && am[8 + i] == am[i], "row 1 at %d", i);
    const qsnn_conv_shape n = pool_shape(QSNN_POOL_NONE);
    cr_expect(n.pool_h == 4 && n.pool_w == 5);
    float q[80], g[80];
    qsnn_pool_forward(&n, y, 2, q, NULL);
    qsnn_pool_backward(&n, y, NULL, 2, g);
    cr_expect_eq(memcmp(q, y, sizeof y), 0);
    cr_expect_eq(memcmp(g, y, sizeof y), 0);
}

typedef struct run_out {
    float *y, *gW, *gb, *gx, *p, *gyp;
    uint8_t *am;
} run_out;

static run_out run_all(const qsnn_conv_shape *s, int rows, const float *x, const float *W, const float *b,
                       const float *gy) {
    const size_t nx = x_size(s, rows), ny = y_size(s, rows), nw = qsnn_conv_weight_count(s);
    const size_t np = (size_t)rows * s->pool_h * s->pool_w * s->out_c;
    run_out o = {nan_buf(ny), nan_buf(nw), nan_buf((size_t)s->out_c), nan_buf(nx), nan_buf(np), nan_buf(ny),
                 calloc(np, 1)};
    float *col = nan_buf(qsnn_conv_col_floats(s, rows));
    qsnn_conv_forward(s, W, b, x, rows, col, o.y);
    qsnn_conv_backward(s, W, x, gy, rows, col, o.gW, o.gb, o.gx);
    qsnn_pool_forward(s, o.y, rows, o.p, o.am);
    qsnn_pool_backward(s, gy, o.am, rows, o.gyp); /* gy's first np values serve as gp */
    free(col);
    return o;
}

static void free_out(run_out *o) {
    free(o->y), free(o->gW), free(o->gb), free(o->gx), free(o->p), free(o->gyp), free(o->am);
}

Test(conv, results_do_not_depend_on_the_thread_count) {
    const conv_case cs[] = {{8, 12, 10, 16, 3, 1, 1, 2}, {16, 10, 9, 32, 1, 1, 0, 1}, {6, 15, 11, 12, 5, 2, 2, 3}};
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
        qsnn_conv_shape s = make_shape(&cs[ci]);
        s.pool = ci == 1 ? QSNN_POOL_AVG : QSNN_POOL_MAX, s.pool_size = 2;
        qsnn_ctx *ctx = test_ctx(1);
        cr_assert_eq(qsnn_conv_shape_check(ctx, &s), QSNN_OK);
        const int rows = 7; /* rows·positions > QSNN_GEMM_TILE: several sgemm tiles */
        const size_t nx = x_size(&s, rows), ny = y_size(&s, rows), nw = qsnn_conv_weight_count(&s);
        const size_t np = (size_t)rows * s.pool_h * s.pool_w * s.out_c;
        float *x = rand_buf(nx, 1), *W = rand_buf(nw, 2), *b = rand_buf((size_t)s.out_c, 3), *gy = rand_buf(ny, 4);
        qsnn_ctx_set_threads(ctx, 1);
        run_out a = run_all(&s, rows, x, W, b, gy);
        qsnn_ctx_set_threads(ctx, 2);
        cr_assert_eq(omp_get_max_threads(), 2);
        run_out c = run_all(&s, rows, x, W, b, gy);
        cr_expect_eq(memcmp(a.y, c.y, ny * sizeof(float)), 0, "case %zu: y", ci);
        cr_expect_eq(memcmp(a.gW, c.gW, nw * sizeof(float)), 0, "case %zu: gW", ci);
        cr_expect_eq(memcmp(a.gb, c.gb, (size_t)s.out_c * sizeof(float)), 0, "case %zu: gbias", ci);
        cr_expect_eq(memcmp(a.gx, c.gx, nx * sizeof(float)), 0, "case %zu: gx", ci);
        cr_expect_eq(memcmp(a.p, c.p, np * sizeof(float)), 0, "case %zu: pool", ci);
        cr_expect_eq(memcmp(a.am, c.am, np), 0, "case %zu: argmax", ci);
        cr_expect_eq(memcmp(a.gyp, c.gyp, ny * sizeof(float)), 0, "case %zu: pool backward", ci);
        free_out(&a), free_out(&c);
        free(x), free(W), free(b), free(gy);
        qsnn_ctx_destroy(&ctx);
    }
}

static void expect_config_error(qsnn_conv_shape s, const char *field, const char *value) {
    qsnn_ctx *ctx = test_ctx(1);
    cr_expect_eq(qsnn_conv_shape_check(ctx, &s), QSNN_ERR_CONFIG, "expected a config error about %s", field);
    const char *msg = qsnn_last_error(ctx);
    cr_expect(strstr(msg, field) && strstr(msg, value), "message \"%s\" should name %s and %s", msg, field, value);
    qsnn_ctx_destroy(&ctx);
}

Test(conv, bad_shapes_are_refused_with_the_field_named) {
    const qsnn_conv_shape ok = {.in_c = 4, .in_h = 4, .in_w = 6, .out_c = 6, .kh = 3, .kw = 3, .stride = 1,
                                .pad = 0, .groups = 2};
    qsnn_conv_shape s = ok;
    qsnn_ctx *ctx = test_ctx(1);
    cr_assert_eq(qsnn_conv_shape_check(ctx, &s), QSNN_OK);
    qsnn_ctx_destroy(&ctx);
    s = ok, s.kh = s.kw = 5;
    expect_config_error(s, "kernel 5x5", "4x6");
    s = ok, s.kh = 7, s.pad = 1;
    expect_config_error(s, "kernel 7x3", "6x8");
    s = ok, s.groups = 3;
    expect_config_error(s, "in_c = 4", "groups = 3");
    s = ok, s.out_c = 5;
    expect_config_error(s, "out_c = 5", "groups = 2");
    s = ok, s.in_h = 0;
    expect_config_error(s, "in_h", "0");
    s = ok, s.in_c = -3;
    expect_config_error(s, "in_c", "-3");
    s = ok, s.stride = 0;
    expect_config_error(s, "stride", "0");
    s = ok, s.out_c = 0;
    expect_config_error(s, "out_c", "0");
    s = ok, s.groups = 0;
    expect_config_error(s, "groups", "0");
    s = ok, s.pad = -1;
    expect_config_error(s, "pad", "-1");
    s = ok, s.pool = QSNN_POOL_MAX, s.pool_size = 3; /* conv output 2x4 */
    expect_config_error(s, "pool_size = 3", "2x4");
    s = ok, s.pool = QSNN_POOL_SUM, s.pool_size = 0;
    expect_config_error(s, "pool_size", "0");
    s = ok, s.pool = (qsnn_pool_kind)9, s.pool_size = 1;
    expect_config_error(s, "pool", "9");
    s = ok, s.in_h = s.in_w = 40, s.pool = QSNN_POOL_MAX, s.pool_size = 16;
    expect_config_error(s, "pool_size = 16", "15");
}

/* tests/golden/conv_golden.bin, written by tests/conv_reference.py with PyTorch: header of int32
 * [magic, in_c, in_h, in_w, out_c, k, stride, pad, groups, pool_size, rows], then float32 arrays
 * x, W, b, gy, y, p (max pool of y), gW, gb, gx, gyp (max pool backward of gp = gy's first values). */
Test(conv, matches_pytorch_golden) {
    FILE *f = fopen(QSNN_TEST_DIR "/golden/conv_golden.bin", "rb");
    if (!f) cr_skip_test("no golden file (tests/conv_reference.py writes it)");
    int32_t hd[11];
    cr_assert_eq(fread(hd, sizeof hd, 1, f), 1u);
    cr_assert_eq(hd[0], 0x43564e31, "bad magic");
    const conv_case cc = {hd[1], hd[2], hd[3], hd[4], hd[5], hd[6], hd[7], hd[8]};
    qsnn_conv_shape s = make_shape(&cc);
    s.pool = QSNN_POOL_MAX, s.pool_size = hd[9];
    qsnn_ctx *ctx = test_ctx(2);
    cr_assert_eq(qsnn_conv_shape_check(ctx, &s), QSNN_OK);
    const int rows = hd[10];
    const size_t nx = x_size(&s, rows), ny = y_size(&s, rows), nw = qsnn_conv_weight_count(&s);
    const size_t np = (size_t)rows * s.pool_h * s.pool_w * s.out_c, nb = (size_t)s.out_c;
    const size_t n[10] = {nx, nw, nb, ny, ny, np, nw, nb, nx, ny};
    float *a[10];
    for (int i = 0; i < 10; i++) {
        a[i] = malloc(n[i] * sizeof(float));
        cr_assert_eq(fread(a[i], sizeof(float), n[i], f), n[i], "golden file truncated at array %d", i);
    }
    fclose(f);
    run_out o = run_all(&s, rows, a[0], a[1], a[2], a[3]);
    expect_close(o.y, a[4], ny, 1e-5, "torch y", 0);
    expect_close(o.p, a[5], np, 1e-5, "torch max pool", 0);
    expect_close(o.gW, a[6], nw, 1e-5, "torch gW", 0);
    expect_close(o.gb, a[7], nb, 1e-5, "torch gbias", 0);
    expect_close(o.gx, a[8], nx, 1e-5, "torch gx", 0);
    expect_close(o.gyp, a[9], ny, 1e-5, "torch max pool backward", 0);
    free_out(&o);
    for (int i = 0; i < 10; i++) free(a[i]);
    qsnn_ctx_destroy(&ctx);
}
