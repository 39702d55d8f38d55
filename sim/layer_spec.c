#include "sim/layer_spec.h"
#include "neurons/neuron.h"
#include "sim/conv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_int(const char *v, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    const long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) return -1;
    *out = (int)x;
    return 0;
}

static const char *const pool_names[] = {"none", "max", "avg", "sum"};

int qsnn_layer_spec_parse(const char *text, qsnn_layer_spec *out, char *err, size_t n) {
    qsnn_layer_spec s = {.kernel = 3, .stride = 1, .padding = 0, .groups = 1, .pool = QSNN_POOL_NONE, .pool_size = 0};
    char buf[256];
    if (strlen(text) >= sizeof buf) return fail(err, n, "longer than %zu characters", sizeof buf - 1);
    strcpy(buf, text);
    char *save = NULL, *tok = strtok_r(buf, " \t", &save);
    if (!tok) return fail(err, n, "empty layer (expected e.g. \"conv channels=12 kernel=5\" or \"dense size=128\")");
    if (!strcmp(tok, "conv")) s.kind = QSNN_LAYER_CONV;
    else if (!strcmp(tok, "dense")) s.kind = QSNN_LAYER_DENSE;
    else return fail(err, n, "unknown layer type '%s' (known: conv, dense)", tok);
    int have_size = 0;
    while ((tok = strtok_r(NULL, " \t", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1]) return fail(err, n, "'%s': expected option=value", tok);
        *eq = 0;
        const char *k = tok, *v = eq + 1;
        const int conv = s.kind == QSNN_LAYER_CONV;
        int bad = 0;
        if (conv && !strcmp(k, "channels")) bad = parse_int(v, 1, 65536, &s.size), have_size = 1;
        else if (!conv && !strcmp(k, "size")) bad = parse_int(v, 1, 1000000, &s.size), have_size = 1;
        else if (conv && !strcmp(k, "kernel")) bad = parse_int(v, 1, 64, &s.kernel);
        else if (conv && !strcmp(k, "stride")) bad = parse_int(v, 1, 64, &s.stride);
        else if (conv && !strcmp(k, "padding")) bad = parse_int(v, 0, 64, &s.padding);
        else if (conv && !strcmp(k, "groups")) bad = parse_int(v, 1, 65536, &s.groups);
        else if (conv && !strcmp(k, "pool")) {
            char kind[16] = "";
            const char *colon = strchr(v, ':');
            const size_t kl = colon ? (size_t)(colon - v) : strlen(v);
            if (kl >= sizeof kind) return fail(err, n, "pool=%s: expected none, max:K, avg:K or sum:K", v);
            memcpy(kind, v, kl);
            s.pool = -1;
            for (int i = 0; i < 4; i++)
                if (!strcmp(kind, pool_names[i])) s.pool = i;
            if (s.pool < 0 || (s.pool == QSNN_POOL_NONE) != !colon ||
                (colon && parse_int(colon + 1, 2, QSNN_POOL_MAX_SIZE, &s.pool_size)))
                return fail(err, n, "pool=%s: expected none, max:K, avg:K or sum:K with K in 2..%d", v,
                            QSNN_POOL_MAX_SIZE);
        } else if (!strcmp(k, "dropout")) {
            char *end;
            const double d = strtod(v, &end);
            if (end == v || *end || !(d >= 0.0 && d < 1.0)) return fail(err, n, "dropout=%s: must be in [0, 1)", v);
            s.dropout = (float)d;
        } else if (!strcmp(k, "surrogate")) {
            const qsnn_surrogate *sg = qsnn_surrogate_find(v);
            if (!sg) return fail(err, n, "surrogate=%s: unknown (known: %s)", v, qsnn_surrogate_names());
            s.surrogate = (int)sg->id + 1;
        } else if (!strcmp(k, "slope")) {
            char *end;
            const double d = strtod(v, &end);
            if (end == v || *end || !(d > 0.0) || !isfinite(d)) return fail(err, n, "slope=%s: must be > 0", v);
            s.slope = (float)d;
        } else if (!strcmp(k, "weight_bits") || !strcmp(k, "state_bits")) {
            int b;
            const int ws = k[0] == 'w', hi = 16;
            if (parse_int(v, 0, hi, &b)) return fail(err, n, "%s=%s: must be 0 (float) or 1..%d", k, v, hi);
            if (ws) s.weight_bits = b + 1;
            else s.state_bits = b + 1;
        } else if (!strcmp(k, "neuron")) {
            if (strlen(v) >= sizeof s.neuron || !qsnn_neuron_find(v))
                return fail(err, n, "neuron=%s: unknown (known: %s)", v, qsnn_neuron_names());
            strcpy(s.neuron, v);
        } else {
            return fail(err, n, "unknown option '%s' for a %s layer (known: %s)", k, conv ? "conv" : "dense",
                        conv ? "channels, kernel, stride, padding, groups, pool, neuron, dropout, surrogate, slope, "
                               "weight_bits, state_bits"
                             : "size, neuron, dropout, surrogate, slope, weight_bits, state_bits");
        }
        if (bad) return fail(err, n, "%s=%s: not an integer in range", k, v);
    }
    if (!have_size)
        return fail(err, n, "a %s layer needs %s=N", s.kind == QSNN_LAYER_CONV ? "conv" : "dense",
                    s.kind == QSNN_LAYER_CONV ? "channels" : "size");
    *out = s;
    return 0;
}

void qsnn_layer_spec_format(const qsnn_layer_spec *s, char *buf, size_t n) {
    int w = 0;
#define PUT(...) (w += snprintf(buf + w, (size_t)w < n ? n - (size_t)w : 0, __VA_ARGS__))
    if (s->kind == QSNN_LAYER_CONV) {
        PUT("conv channels=%d kernel=%d", s->size, s->kernel);
        if (s->stride != 1) PUT(" stride=%d", s->stride);
        if (s->padding) PUT(" padding=%d", s->padding);
        if (s->groups != 1) PUT(" groups=%d", s->groups);
        if (s->pool != QSNN_POOL_NONE) PUT(" pool=%s:%d", pool_names[s->pool], s->pool_size);
    } else {
        PUT("dense size=%d", s->size);
    }
    if (s->neuron[0]) PUT(" neuron=%s", s->neuron);
    if (s->dropout > 0.0f) PUT(" dropout=%.9g", (double)s->dropout);
    if (s->surrogate) PUT(" surrogate=%s", qsnn_surrogate_get((qsnn_surrogate_id)(s->surrogate - 1))->name);
    if (s->slope > 0.0f) PUT(" slope=%.9g", (double)s->slope);
    if (s->weight_bits) PUT(" weight_bits=%d", s->weight_bits - 1);
    if (s->state_bits) PUT(" state_bits=%d", s->state_bits - 1);
#undef PUT
}
