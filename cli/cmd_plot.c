/* qsnn plot FILE: pictures of a trace file (PNG or SVG). */
#include "cli/commands.h"
#include "cli/plot_trace.h"

#include <stdio.h>
#include <string.h>

static void help(void) {
    printf("usage: qsnn plot TRACE --kind KIND --out FILE.png|FILE.svg [options]\n\n"
           "Draws a trace file written by qsnn record (or --record) with PLplot's cairo driver:\n"
           "  raster     spikes of one layer for one sample (neuron against step)\n"
           "  membrane   the recorded membranes of one layer for one sample (at most %d), with the\n"
           "             threshold (red, dashed) and the state-grid levels (grey)\n"
           "  hist       histogram of the layer's recorded membrane values: one bar per grid level when\n"
           "             states are quantized (levels in grey, threshold in red), else 60 bins\n"
           "  rates      histogram of the layer's per-neuron firing rates over all samples\n\n"
           "options:\n"
           "  --kind KIND       raster, membrane, hist or rates (required)\n"
           "  --out FILE        the picture; .png or .svg picks the format (required)\n"
           "  --layer L         layer (default 0)\n"
           "  --sample I        sample, the row of the recording (default 0; raster, membrane)\n"
           "  --epoch K         in a file of per-epoch recordings (qsnn train --record), epoch K\n",
           8);
}

int qsnn_cmd_plot(int argc, char **argv) {
    const char *file = NULL, *out = NULL, *kind_s = NULL;
    long long layer = 0, sample = 0, epoch = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        }
        if (!strcmp(a, "--kind") || !strcmp(a, "--out") || !strcmp(a, "--layer") || !strcmp(a, "--sample") ||
            !strcmp(a, "--epoch")) {
            if (i + 1 >= argc) return qsnn_cli_error("plot", "option %s needs a value", a), 2;
            const char *v = argv[++i];
            if (!strcmp(a, "--kind")) kind_s = v;
            else if (!strcmp(a, "--out")) out = v;
            else if (qsnn_cli_parse_int(v, 0, 1LL << 30, !strcmp(a, "--layer") ? &layer : !strcmp(a, "--sample") ? &sample : &epoch))
                return qsnn_cli_error("plot", "%s %s: expected a non-negative integer", a, v), 2;
        } else if (a[0] == '-') {
            return qsnn_cli_error("plot", "unknown option '%s' (see qsnn plot --help)", a), 2;
        } else if (!file) {
            file = a;
        } else {
            return qsnn_cli_error("plot", "one trace file at a time ('%s' and '%s')", file, a), 2;
        }
    }
    if (!file) return qsnn_cli_error("plot", "which trace file? usage: qsnn plot TRACE --kind KIND --out FILE"), 2;
    if (!kind_s) return qsnn_cli_error("plot", "--kind is required (%s)", qsnn_plot_kind_names()), 2;
    const int kind = qsnn_plot_kind_find(kind_s);
    if (kind < 0) return qsnn_cli_error("plot", "--kind %s: unknown (known: %s)", kind_s, qsnn_plot_kind_names()), 2;
    if (!out) return qsnn_cli_error("plot", "--out FILE.png or FILE.svg is required"), 2;

    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, 1, 0, &ctx)) return qsnn_cli_error("plot", "out of memory");
    qsnn_trace *t = NULL;
    char group[32] = "";
    if (epoch > 0) snprintf(group, sizeof group, "epoch_%lld", epoch);
    int rc = 1;
    if (qsnn_trace_read(ctx, file, group, &t) ||
        qsnn_plot_trace(ctx, t, (qsnn_plot_kind)kind, (int)layer, (int)sample, out))
        qsnn_cli_error("plot", "%s", qsnn_last_error(ctx));
    else {
        printf("wrote %s\n", out);
        rc = 0;
    }
    qsnn_trace_destroy(ctx, &t);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
