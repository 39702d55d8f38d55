#include "sim/conv.h"

#include <limits.h>
#include <string.h>
#include "sim/gemm.h"

qsnn_status qsnn_conv_shape_check(qsnn_ctx *ctx, qsnn_conv_shape *s) {
    if (!s) return qsnn_fail(ctx, QSNN_ERR_ARG, "conv: shape is NULL");
    const struct { const char *name; int v; } pos[] = {
        {"in_c", s->in_c},     {"in_h", s->in_h}, {"in_w", s->in_w},     {"out_c", s->out_c},
        {"kh", s->kh},         {"kw", s->kw},     {"stride", s->stride}, {"groups", s->groups},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0)
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: %s = %d must be positive", pos[i].name, pos[i].v);
    if (s->pad < 0) return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: pad = %d must not be negative", s->pad);
    if (s->in_c % s->groups)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: in_c = %d not divisible by groups = %d", s->in_c, s->groups);
    if (s->out_c % s->groups)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: out_c = %d not divisible by groups = %d", s->out_c, s->groups);
    /* int indices inside one row and one weight row; pad and sizes bounded so the sums below cannot overflow */
    if ((long long)s->in_h * s->in_w * s->in_c > INT_MAX || s->pad > INT_MAX / 4 || s->in_h > INT_MAX / 4 ||
        s->in_w > INT_MAX / 4)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: input %dx%dx%d (pad %d) too large", s->in_h, s->in_w, s->in_c,
                         s->pad);
    if ((long long)s->kh * s->kw * s->in_c > INT_MAX)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: kernel %dx%d with in_c = %d too large", s->kh, s->kw, s->in_c);
    const int ph = s->in_h + 2 * s->pad, pw = s->in_w + 2 * s->pad;
    if (s->kh > ph || s->kw > pw)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: kernel %dx%d (kh x kw) larger than the padded input %dx%d",
                         s->kh, s->kw, ph, pw);
    s->out_h = (ph - s->kh) / s->stride + 1;
    s->out_w = (pw - s->kw) / s->stride + 1;
    if ((long long)s->out_h * s->out_w * s->out_c > INT_MAX)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: output %dx%dx%d too large", s->out_h, s->out_w, s->out_c);
    switch (s->pool) {
    case QSNN_POOL_NONE:
        s->pool_h = s->out_h, s->pool_w = s->out_w;
        return QSNN_OK;
    case QSNN_POOL_MAX:
    case QSNN_POOL_AVG:
    case QSNN_POOL_SUM: break;
    default: return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: pool = %d is not a pooling kind", (int)s->pool);
    }
    if (s->pool_size <= 0)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: pool_size = %d must be positive", s->pool_size);
    if (s->pool == QSNN_POOL_MAX && s->pool_size > QSNN_POOL_MAX_SIZE)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: pool_size = %d above %d for max pooling", s->pool_size,
                         QSNN_POOL_MAX_SIZE);
    if (s->pool_size > s->out_h || s->pool_size > s->out_w)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "conv: pool_size = %d larger than the conv output %dx%d", s->pool_size,
                         s->out_h, s->out_w);
    s->pool_h = s->out_h / s->pool_size;
    s->pool_w = s->out_w / s->pool_size;
    return QSNN_OK;
}

size_t qsnn_conv_col_floats(const qsnn_conv_shape *s, int rows) {
    return (size_t)(rows > 0 ? rows : 0) * (size_t)s->out_h * (size_t)s->out_w * (size_t)s->kh * (size_t)s->kw *
           (size_t)s->in_c;
}

size_t qsnn_conv_weight_count(const qsnn_conv_shape *s) {
    return (size_t)s->out_c * (size_t)s->kh * (size_t)s->kw * (size_t)(s->in_c / s->groups);
}

/* 1x1, stride 1, no padding: the input rows already are the im2row matrix. */
static int conv_pointwise(const qsnn_conv_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0;
}

/* col[r·P + p][g][i][j][k]: per output position, the receptive field group by group, so that the
 * columns of one group are contiguous (one sgemm per group with lda = kh·kw·in_c). */
static void im2row(const qsnn_conv_shape *s, const float *x, int rows, float *col) {
    const int C = s->in_c, H = s->in_h, Wd = s->in_w, icg = C / s->groups;
    const int P = s->out_h * s->out_w, Kr = s->kh * s->kw * C;
    const size_t in_row = (size_t)H * Wd * C;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int r = 0; r < rows; r++)
        for (int oh = 0; oh < s->out_h; oh++)
            for (int ow = 0; ow < s->out_w; ow++) {
                float *c = col + ((size_t)r * P + (size_t)oh * s->out_w + ow) * Kr;
                const float *xr = x + (size_t)r * in_row;
                for (int g = 0; g < s->groups; g++)
                    for (int i = 0; i < s->kh; i++) {
                        const int ih = oh * s->stride - s->pad + i;
                        for (int j = 0; j < s->kw; j++) {
                            const int iw = ow * s->stride - s->pad + j;
                            float *dst = c + ((size_t)(g * s->kh + i) * s->kw + j) * icg;
                            if (ih >= 0 && ih < H && iw >= 0 && iw < Wd)
                                memcpy(dst, xr + ((size_t)ih * Wd + iw) * C + (size_t)g * icg,
                                       (size_t)icg * sizeof(float));
                            else
                                memset(dst, 0, (size_t)icg * sizeof(float));
                        }
                    }
            }
}

/* The adjoint of im2row. Each thread owns whole rows and adds in a fixed order (positions, then
 * group, kernel row, kernel column), so gx does not depend on the thread count. */
static void col2im(const qsnn_conv_shape *s, const float *col, int rows, float *gx) {
    const int C = s->in_c, H = s->in_h, Wd = s->in_w, icg = C / s->groups;
    const int P = s->out_h * s->out_w, Kr = s->kh * s->kw * C;
    const size_t in_row = (size_t)H * Wd * C;
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        float *gr = gx + (size_t)r * in_row;
        memset(gr, 0, in_row * sizeof(float));
        for (int oh = 0; oh < s->out_h; oh++)
            for (int ow = 0; ow < s->out_w; ow++) {
                const float *c = col + ((size_t)r * P + (size_t)oh * s->out_w + ow) * Kr;
                for (int g = 0; g < s->groups; g++)
                    for (int i = 0; i < s->kh; i++) {
                        const int ih = oh * s->stride - s->pad + i;
                        if (ih < 0 || ih >= H) continue;
                        for (int j = 0; j < s->kw; j++) {
                            const int iw = ow * s->stride - s->pad + j;
                            if (iw < 0 || iw >= Wd) continue;
                            const float *src = c + ((size_t)(g * s->kh + i) * s->kw + j) * icg;
                            float *dst = gr + ((size_t)ih * Wd + iw) * C + (size_t)g * icg;
                            for (int k = 0; k < icg; k++) dst[k] += src[k];
                        }
                    }
            }
    }
}

void qsnn_conv_forward(const qsnn_conv_shape *s, const float *W, const float *bias, const float *x, int rows,
                       float *col, float *y) {
    if (rows <= 0) return;
    const int G = s->groups, icg = s->in_c / G, ocg = s->out_c / G, Kg = s->kh * s->kw * icg;
    const int M = rows * s->out_h * s->out_w, lda = s->kh * s->kw * s->in_c;
    const float *A = x;
    if (!conv_pointwise(s)) {
        im2row(s, x, rows, col);
        A = col;
    }
    float beta = 0.0f;
    if (bias) { /* preload the bias, then accumulate the product onto it */
        #pragma omp parallel for schedule(static)
        for (int m = 0; m < M; m++) memcpy(y + (size_t)m * s->out_c, bias, (size_t)s->out_c * sizeof(float));
        beta = 1.0f;
    }
    for (int g = 0; g < G; g++)
        qsnn_sgemm(CblasNoTrans, CblasTrans, M, ocg, Kg, 1.0f, A + (size_t)g * Kg, lda, W + (size_t)g * ocg * Kg, Kg,
                   beta, y + (size_t)g * ocg, s->out_c);
}

void qsnn_conv_backward(const qsnn_conv_shape *s, const float *W, const float *x, const float *gy, int rows,
                        float *col, float *gW, float *gbias, float *gx) {
    const int G = s->groups, icg = s->in_c / G, ocg = s->out_c / G, Kg = s->kh * s->kw * icg;
    const int M = (rows > 0 ? rows : 0) * s->out_h * s->out_w, lda = s->kh * s->kw * s->in_c;
    if (M == 0) {
        if (gW) memset(gW, 0, qsnn_conv_weight_count(s) * sizeof(float));
        if (gbias) memset(gbias, 0, (size_t)s->out_c * sizeof(float));
        return;
    }
    const int pointwise = conv_pointwise(s);
    if (gW) { /* gW_g[ocg][Kg] = gy_gᵀ · col_g: K = rows·positions, never split, so thread-count independent */
        const float *A = x;
        if (!pointwise) {
            im2row(s, x, rows, col);
            A = col;
        }
        for (int g = 0; g < G; g++)
            qsnn_sgemm(CblasTrans, CblasNoTrans, ocg, Kg, M, 1.0f, gy + (size_t)g * ocg, s->out_c,
                       A + (size_t)g * Kg, lda, 0.0f, gW + (size_t)g * ocg * Kg, Kg);
    }
    if (gbias) { /* threads own channel blocks; each sum runs over m in order, in double (M can be millions) */
        enum { CB = 16 };
        const int nb = (s->out_c + CB - 1) / CB;
        #pragma omp parallel for schedule(static)
        for (int b = 0; b < nb; b++) {
            const int c0 = b * CB, n = s->out_c - c0 < CB ? s->out_c - c0 : CB;
            double acc[CB] = {0};
            for (int m = 0; m < M; m++) {
                const float *g = gy + (size_t)m * s->out_c + c0;
                for (int k = 0; k < n; k++) acc[k] += g[k];
            }
            for (int k = 0; k < n; k++) gbias[c0 + k] = (float)acc[k];
        }
    }
    if (!gx) return;
    /* gcol_g[M][Kg] = gy_g · W_g; for pointwise kernels gcol is gx itself */
    float *gc = pointwise ? gx : col;
    for (int g = 0; g < G; g++)
        qsnn_sgemm(CblasNoTrans, CblasNoTrans, M, Kg, ocg, 1.0f, gy + (size_t)g * ocg, s->out_c,
                   W + (size_t)g * ocg * Kg, Kg, 0.0f, gc + (size_t)g * Kg, lda);
    if (!pointwise) col2im(s, col, rows, gx);
}

void qsnn_pool_forward(const qsnn_conv_shape *s, const float *y, int rows, float *p, uint8_t *argmax) {
    const int C = s->out_c, OW = s->out_w;
    const size_t out_row = (size_t)s->out_h * OW * C;
    if (s->pool == QSNN_POOL_NONE) {
        if (p != y) memcpy(p, y, (size_t)(rows > 0 ? rows : 0) * out_row * sizeof(float));
        return;
    }
    const int ps = s->pool_size, PH = s->pool_h, PW = s->pool_w;
    const size_t pool_row = (size_t)PH * PW * C;
    const float n_win = (float)(ps * ps);
    #pragma omp parallel for collapse(2) schedule(static)
    for (int r = 0; r < rows; r++)
        for (int ph = 0; ph < PH; ph++)
            for (int pw = 0; pw < PW; pw++) {
                const size_t o = (size_t)r * pool_row + ((size_t)ph * PW + pw) * C;
                float *pr = p + o;
                const float *y0 = y + (size_t)r * out_row + ((size_t)ph * ps * OW + (size_t)pw * ps) * C;
                if (s->pool == QSNN_POOL_MAX) {
                    uint8_t *ar = argmax + o;
                    memcpy(pr, y0, (size_t)C * sizeof(float));
                    memset(ar, 0, (size_t)C);
                    for (int i = 0; i < ps; i++)
                        for (int j = 0; j < ps; j++) {
                            if (i == 0 && j == 0) continue;
                            const float *yy = y0 + ((size_t)i * OW + j) * C;
                            const uint8_t idx = (uint8_t)(i * ps + j);
                            for (int c = 0; c < C; c++) /* strict: ties keep the first in window order */
                                if (yy[c] > pr[c]) pr[c] = yy[c], ar[c] = idx;
                        }
                } else {
                    memset(pr, 0, (size_t)C * sizeof(float));
                    for (int i = 0; i < ps; i++)
                        for (int j = 0; j < ps; j++) {
                            const float *yy = y0 + ((size_t)i * OW + j) * C;
                            for (int c = 0; c < C; c++) pr[c] += yy[c];
                        }
                    if (s->pool == QSNN_POOL_AVG)
                        for (int c = 0; c < C; c++) pr[c] /= n_win;
                }
            }
}

void qsnn_pool_backward(const qsnn_conv_shape *s, const float *gp, const uint8_t *argmax, int rows, float *gy) {
    const int C = s->out_c, OW = s->out_w;
    const size_t out_row = (size_t)s->out_h * OW * C;
    if (s->pool == QSNN_POOL_NONE) {
        if (gy != gp) memcpy(gy, gp, (size_t)(rows > 0 ? rows : 0) * out_row * sizeof(float));
        return;
    }
    const int ps = s->pool_size, PH = s->pool_h, PW = s->pool_w;
    const size_t pool_row = (size_t)PH * PW * C;
    const float n = (float)(ps * ps);
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        float *gr = gy + (size_t)r * out_row;
        memset(gr, 0, out_row * sizeof(float)); /* also the border that floor division leaves out */
        for (int ph = 0; ph < PH; ph++)
            for (int pw = 0; pw < PW; pw++) {
                const size_t o = (size_t)r * pool_row + ((size_t)ph * PW + pw) * C;
                const float *g = gp + o;
                float *g0 = gr + ((size_t)ph * ps * OW + (size_t)pw * ps) * C;
                if (s->pool == QSNN_POOL_MAX) {
                    const uint8_t *ar = argmax + o;
                    for (int c = 0; c < C; c++) g0[((size_t)(ar[c] / ps) * OW + ar[c] % ps) * C + c] = g[c];
                } else {
                    for (int i = 0; i < ps; i++)
                        for (int j = 0; j < ps; j++) {
                            float *gg = g0 + ((size_t)i * OW + j) * C;
                            if (s->pool == QSNN_POOL_AVG)
                                for (int c = 0; c < C; c++) gg[c] = g[c] / n;
                            else
                                memcpy(gg, g, (size_t)C * sizeof(float));
                        }
                }
            }
    }
}

void qsnn_conv_forward_ref(const qsnn_conv_shape *s, const float *W, const float *bias, const float *x, int rows,
                           float *y) {
    const int C = s->in_c, H = s->in_h, Wd = s->in_w, icg = C / s->groups, ocg = s->out_c / s->groups;
    for (int r = 0; r < rows; r++)
        for (int oh = 0; oh < s->out_h; oh++)
            for (int ow = 0; ow < s->out_w; ow++)
                for (int oc = 0; oc < s->out_c; oc++) {
                    const int g = oc / ocg;
                    double acc = bias ? bias[oc] : 0.0;
                    for (int i = 0; i < s->kh; i++)
                        for (int j = 0; j < s->kw; j++) {
                            const int ih = oh * s->stride - s->pad + i, iw = ow * s->stride - s->pad + j;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= Wd) continue;
                            for (int k = 0; k < icg; k++)
                                acc += (double)W[(((size_t)oc * s->kh + i) * s->kw + j) * icg + k] *
                                       x[(((size_t)r * H + ih) * Wd + iw) * C + (size_t)g * icg + k];
                        }
                    y[(((size_t)r * s->out_h + oh) * s->out_w + ow) * s->out_c + oc] = (float)acc;
                }
}

void qsnn_conv_backward_ref(const qsnn_conv_shape *s, const float *W, const float *x, const float *gy, int rows,
                            float *gW, float *gbias, float *gx) {
    const int C = s->in_c, H = s->in_h, Wd = s->in_w, icg = C / s->groups, ocg = s->out_c / s->groups;
    const int OH = s->out_h, OW = s->out_w, OC = s->out_c;
#define GY(r, oh, ow, oc) gy[(((size_t)(r) * OH + (oh)) * OW + (ow)) * OC + (oc)]
    /* dL/dW[oc][i][j][k] = Σ_{r,oh,ow} gy[r][oh][ow][oc] · x[r][oh·s-p+i][ow·s-p+j][g·icg+k] */
    for (int oc = 0; oc < OC; oc++)
        for (int i = 0; i < s->kh; i++)
            for (int j = 0; j < s->kw; j++)
                for (int k = 0; k < icg; k++) {
                    const int c = oc / ocg * icg + k;
                    double acc = 0.0;
                    for (int r = 0; r < rows; r++)
                        for (int oh = 0; oh < OH; oh++)
                            for (int ow = 0; ow < OW; ow++) {
                                const int ih = oh * s->stride - s->pad + i, iw = ow * s->stride - s->pad + j;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= Wd) continue;
                                acc += (double)GY(r, oh, ow, oc) * x[(((size_t)r * H + ih) * Wd + iw) * C + c];
                            }
                    gW[(((size_t)oc * s->kh + i) * s->kw + j) * icg + k] = (float)acc;
                }
    if (gbias)
        for (int oc = 0; oc < OC; oc++) {
            double acc = 0.0;
            for (int r = 0; r < rows; r++)
                for (int p = 0; p < OH * OW; p++) acc += GY(r, p / OW, p % OW, oc);
            gbias[oc] = (float)acc;
        }
    if (!gx) return;
    /* gather form: dL/dx[r][ih][iw][c] = Σ over (i, j) with ih = oh·s-p+i, iw = ow·s-p+j, oc of c's group */
    for (int r = 0; r < rows; r++)
        for (int ih = 0; ih < H; ih++)
            for (int iw = 0; iw < Wd; iw++)
                for (int c = 0; c < C; c++) {
                    const int g = c / icg, k = c % icg;
                    double acc = 0.0;
                    for (int i = 0; i < s->kh; i++) {
                        const int th = ih + s->pad - i;
                        if (th < 0 || th % s->stride || th / s->stride >= OH) continue;
                        for (int j = 0; j < s->kw; j++) {
                            const int tw = iw + s->pad - j;
                            if (tw < 0 || tw % s->stride || tw / s->stride >= OW) continue;
                            for (int o = g * ocg; o < (g + 1) * ocg; o++)
                                acc += (double)GY(r, th / s->stride, tw / s->stride, o) *
                                       W[(((size_t)o * s->kh + i) * s->kw + j) * icg + k];
                        }
                    }
                    gx[(((size_t)r * H + ih) * Wd + iw) * C + c] = (float)acc;
                }
#undef GY
}
