#include "cli/plot_trace.h"

#include <errno.h>
#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const kind_names[] = {"raster", "membrane", "hist", "rates"};

int qsnn_plot_kind_find(const char *name) {
    for (int k = 0; k < 4; k++)
        if (!strcmp(name, kind_names[k])) return k;
    return -1;
}

const char *qsnn_plot_kind_names(void) { return "raster, membrane, hist, rates"; }

/* Most membrane traces drawn in one picture, and most grid levels drawn as lines. */
#define MAX_TRACES 8
#define MAX_GRID_LINES 64

/* PLplot ends the process on a fatal error (plexit); its handler gets the last word: remove the
 * temporary picture and report one line, as every qsnn error. */
static const char *plot_out, *plot_tmp;
static char plot_error[256];
static int on_plplot_exit(PLCHAR_VECTOR msg) {
    if (plot_tmp) unlink(plot_tmp);
    fprintf(stderr, "qsnn plot: %s: PLplot: %s\n", plot_out ? plot_out : "?", msg && *msg ? msg : "error");
    fflush(stderr);
    _exit(1);
    return 1;
}

/* Palette: 0 white background, 1 black axes/text, 2 red threshold, 3 light grey grid, 4.. traces. */
static void palette(void) {
    static const int rgb[][3] = {{255, 255, 255}, {0, 0, 0},     {214, 39, 40},  {200, 200, 200},
                                 {31, 119, 180},  {255, 127, 14}, {44, 160, 44},  {148, 103, 189},
                                 {140, 86, 75},   {227, 119, 194}, {127, 127, 127}, {23, 190, 207}};
    for (int i = 0; i < 12; i++) plscol0(i, rgb[i][0], rgb[i][1], rgb[i][2]);
}

static void hline(double x0, double x1, double y) {
    PLFLT xs[2] = {x0, x1}, ys[2] = {y, y};
    plline(2, xs, ys);
}
static void vline(double x, double y0, double y1) {
    PLFLT xs[2] = {x, x}, ys[2] = {y0, y1};
    plline(2, xs, ys);
}

static void frame(double x0, double x1, double y0, double y1, const char *xl, const char *yl, const char *title) {
    plcol0(1);
    plenv(x0, x1, y0, y1, 0, 0);
    pllab(xl, yl, title);
}

static qsnn_status draw_raster(qsnn_ctx *ctx, const qsnn_trace *t, int l, int s) {
    const qsnn_trace_layer *L = &t->layer[l];
    int64_t n = 0;
    for (int64_t e = 0; e < L->n_events; e++) n += L->ev_sample[e] == s;
    PLFLT *x = malloc(sizeof(PLFLT) * (size_t)(n ? n : 1)), *y = malloc(sizeof(PLFLT) * (size_t)(n ? n : 1));
    if (!x || !y) {
        free(x), free(y);
        return qsnn_fail(ctx, QSNN_ERR_NOMEM, "out of memory");
    }
    int64_t k = 0;
    for (int64_t e = 0; e < L->n_events; e++)
        if (L->ev_sample[e] == s) x[k] = L->ev_step[e], y[k++] = L->ev_neuron[e];
    char title[160];
    snprintf(title, sizeof title, "layer %d, sample %d (label %d): %lld spikes", l, s, (int)t->label[s], (long long)n);
    frame(-0.5, t->T - 0.5, -0.5, L->out - 0.5, "step", "neuron", title);
    plcol0(4);
    plssym(0.0, L->out > 200 ? 0.4 : 0.8);
    if (n) plpoin((PLINT)n, x, y, 17);
    free(x), free(y);
    return QSNN_OK;
}

static qsnn_status draw_membrane(qsnn_ctx *ctx, const qsnn_trace *t, int l, int s) {
    const qsnn_trace_layer *L = &t->layer[l];
    const int k = L->k < MAX_TRACES ? L->k : MAX_TRACES, T = t->T;
    const float *m = L->membrane + (size_t)s * T * L->k;
    double lo = 0.0, hi = L->theta;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < k; j++) {
            const double v = m[(size_t)i * L->k + j];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
    if (L->n_levels) {
        if (L->levels[0] < lo) lo = L->levels[0];
        if (L->levels[L->n_levels - 1] > hi) hi = L->levels[L->n_levels - 1];
    }
    const double pad = 0.05 * (hi - lo > 0 ? hi - lo : 1.0);
    char title[200];
    int len = snprintf(title, sizeof title, "layer %d, sample %d: membranes of neurons", l, s);
    for (int j = 0; j < k && len < (int)sizeof title - 12; j++)
        len += snprintf(title + len, sizeof title - (size_t)len, " %d", (int)L->neurons[j]);
    if (L->k > k) snprintf(title + len, sizeof title - (size_t)len, " ...");
    frame(0, T - 1 > 0 ? T - 1 : 1, lo - pad, hi + pad, "step", "membrane U", title);
    if (L->n_levels && L->n_levels <= MAX_GRID_LINES) { /* the state grid */
        plcol0(3);
        plwidth(0.5);
        for (int i = 0; i < L->n_levels; i++) hline(0, T - 1, L->levels[i]);
    }
    plcol0(2); /* the threshold */
    pllsty(2);
    plwidth(1.5);
    hline(0, T - 1, L->theta);
    pllsty(1);
    PLFLT x[32768], y[32768];
    const int n = T < 32768 ? T : 32768;
    for (int j = 0; j < k; j++) {
        for (int i = 0; i < n; i++) x[i] = i, y[i] = m[(size_t)i * L->k + j];
        plcol0(4 + j % 8);
        plwidth(1.5);
        plline(n, x, y);
        plssym(0.0, 0.5);
        plpoin(n, x, y, 17);
    }
    (void)ctx;
    return QSNN_OK;
}

static qsnn_status draw_hist(qsnn_ctx *ctx, const qsnn_trace *t, int l) {
    const qsnn_trace_layer *L = &t->layer[l];
    const size_t n = (size_t)t->N * t->T * L->k;
    char title[160];
    if (L->n_levels) { /* one bar per grid level */
        const int nl = L->n_levels;
        PLFLT *x = malloc(sizeof(PLFLT) * nl), *y = calloc((size_t)nl, sizeof(PLFLT));
        if (!x || !y) {
            free(x), free(y);
            return qsnn_fail(ctx, QSNN_ERR_NOMEM, "out of memory");
        }
        double ymax = 1;
        for (size_t i = 0; i < n; i++) y[L->level[i]] += 1;
        for (int i = 0; i < nl; i++) {
            x[i] = L->levels[i];
            if (y[i] > ymax) ymax = y[i];
        }
        const double span = L->levels[nl - 1] - L->levels[0], pad = 0.05 * (span > 0 ? span : 1);
        const double x0 = fmin(L->levels[0], 0) - pad, x1 = fmax(L->levels[nl - 1], L->theta) + pad;
        snprintf(title, sizeof title, "layer %d: %zu membrane values on %d levels (%d bits)", l, n, nl, L->state_bits);
        frame(x0, x1, 0, ymax * 1.05, "membrane U (grid levels in grey)", "count", title);
        if (nl <= MAX_GRID_LINES) {
            plcol0(3);
            for (int i = 0; i < nl; i++) vline(L->levels[i], 0, ymax * 1.05);
        }
        plcol0(4);
        plbin(nl, x, y, PL_BIN_CENTRED);
        free(x), free(y);
    } else { /* float states: 60 equal bins */
        enum { NB = 60 };
        double lo = 0, hi = L->theta;
        for (size_t i = 0; i < n; i++) lo = fmin(lo, L->membrane[i]), hi = fmax(hi, L->membrane[i]);
        if (!(hi > lo)) hi = lo + 1;
        PLFLT x[NB], y[NB] = {0};
        const double w = (hi - lo) / NB;
        for (size_t i = 0; i < n; i++) {
            int b = (int)((L->membrane[i] - lo) / w);
            y[b < 0 ? 0 : b >= NB ? NB - 1 : b] += 1;
        }
        double ymax = 1;
        for (int b = 0; b < NB; b++) x[b] = lo + b * w, ymax = fmax(ymax, y[b]);
        snprintf(title, sizeof title, "layer %d: %zu membrane values (float states)", l, n);
        frame(lo, hi, 0, ymax * 1.05, "membrane U", "count", title);
        plcol0(4);
        plbin(NB, x, y, PL_BIN_DEFAULT);
    }
    plcol0(2);
    pllsty(2);
    plwidth(1.5);
    PLFLT xmin, xmax, ymin, ymax;
    plgvpw(&xmin, &xmax, &ymin, &ymax);
    vline(L->theta, ymin, ymax);
    pllsty(1);
    return QSNN_OK;
}

static qsnn_status draw_rates(qsnn_ctx *ctx, const qsnn_trace *t, int l) {
    const qsnn_trace_layer *L = &t->layer[l];
    enum { NB = 25 };
    double *cnt = calloc((size_t)L->out, sizeof(double));
    if (!cnt) return qsnn_fail(ctx, QSNN_ERR_NOMEM, "out of memory");
    for (int64_t e = 0; e < L->n_events; e++) cnt[L->ev_neuron[e]] += 1;
    PLFLT x[NB], y[NB] = {0};
    double ymax = 1, mean = 0;
    for (int j = 0; j < L->out; j++) {
        const double r = cnt[j] / ((double)t->N * t->T);
        mean += r;
        int b = (int)(r * NB);
        y[b >= NB ? NB - 1 : b] += 1;
    }
    mean /= L->out;
    for (int b = 0; b < NB; b++) x[b] = (double)b / NB, ymax = fmax(ymax, y[b]);
    char title[160];
    snprintf(title, sizeof title, "layer %d: firing rates of %d neurons over %d samples (mean %.4f)", l, L->out, t->N,
             mean);
    frame(0, 1, 0, ymax * 1.05, "firing rate (spikes per neuron per step)", "neurons", title);
    plcol0(4);
    plbin(NB, x, y, PL_BIN_DEFAULT);
    free(cnt);
    return QSNN_OK;
}

static int ends_with(const char *s, const char *suf) {
    const size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcasecmp(s + n - k, suf);
}

qsnn_status qsnn_plot_trace(qsnn_ctx *ctx, const qsnn_trace *t, qsnn_plot_kind kind, int layer, int sample,
                            const char *out) {
    const char *dev = ends_with(out, ".png") ? "pngcairo" : ends_with(out, ".svg") ? "svgcairo" : NULL;
    if (!dev) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: unknown picture type (the name must end in .png or .svg)", out);
    if (layer < 0 || layer >= t->n_layers)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "layer %d does not exist (the recording has layers 0..%d)", layer,
                         t->n_layers - 1);
    if ((kind == QSNN_PLOT_RASTER || kind == QSNN_PLOT_MEMBRANE) && (sample < 0 || sample >= t->N))
        return qsnn_fail(ctx, QSNN_ERR_ARG, "sample %d does not exist (the recording has samples 0..%d)", sample,
                         t->N - 1);
    if ((kind == QSNN_PLOT_MEMBRANE || kind == QSNN_PLOT_HIST) && t->layer[layer].k == 0)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "layer %d: no membranes were recorded (record with --neurons %d:all)",
                         layer, layer);
    const size_t tl = strlen(out) + 32;
    char *tmp = malloc(tl);
    if (!tmp) return qsnn_fail(ctx, QSNN_ERR_NOMEM, "out of memory");
    snprintf(tmp, tl, "%s.tmp.%ld", out, (long)getpid());
    FILE *probe = fopen(tmp, "wb"); /* the system's reason for an unwritable place, before PLplot's */
    if (!probe) {
        qsnn_status st = qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot create: %s", out, strerror(errno));
        free(tmp);
        return st;
    }
    fclose(probe);
    plot_error[0] = 0;
    plot_out = out, plot_tmp = tmp;
    plsexit(on_plplot_exit);
    PLINT strm;
    plmkstrm(&strm); /* a fresh stream per picture */
    plsdev(dev);
    plsfnam(tmp);
    plspage(0, 0, 900, 600, 0, 0);
    palette();
    plinit();
    qsnn_status st = QSNN_OK;
    if (!plot_error[0]) {
        plschr(0, 0.9);
        switch (kind) {
        case QSNN_PLOT_RASTER: st = draw_raster(ctx, t, layer, sample); break;
        case QSNN_PLOT_MEMBRANE: st = draw_membrane(ctx, t, layer, sample); break;
        case QSNN_PLOT_HIST: st = draw_hist(ctx, t, layer); break;
        default: st = draw_rates(ctx, t, layer); break;
        }
    }
    plend1();
    plot_tmp = NULL;
    if (!st && plot_error[0]) st = qsnn_fail(ctx, QSNN_ERR_IO, "%s: PLplot: %s", out, plot_error);
    if (!st && rename(tmp, out) != 0)
        st = qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot rename %s to it: %s", out, tmp, strerror(errno));
    if (st) unlink(tmp);
    free(tmp);
    return st;
}
