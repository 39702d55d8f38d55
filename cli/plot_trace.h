/* Pictures of a trace file with PLplot's cairo driver: a spike raster, membrane traces against the
 * threshold and the state grid, the histogram of membrane values over the grid levels, and the
 * histogram of per-neuron firing rates. Output is PNG or SVG, chosen by the file name's extension. */
#ifndef QSNN_CLI_PLOT_TRACE_H
#define QSNN_CLI_PLOT_TRACE_H

#include "io/trace.h"

typedef enum { QSNN_PLOT_RASTER = 0, QSNN_PLOT_MEMBRANE, QSNN_PLOT_HIST, QSNN_PLOT_RATES } qsnn_plot_kind;

/* -1 when unknown. */
int qsnn_plot_kind_find(const char *name);
/* "raster, membrane, hist, rates" */
const char *qsnn_plot_kind_names(void);

/* Draws `kind` for layer `layer` (and sample `sample` for raster and membrane) of t into out (".png"
 * or ".svg"), through "OUT.tmp.<pid>" renamed into place; on error nothing is left at OUT and the
 * context holds one line (unknown extension, layer or sample out of range, no membranes recorded,
 * a failure of the plotting library). */
qsnn_status qsnn_plot_trace(qsnn_ctx *ctx, const qsnn_trace *t, qsnn_plot_kind kind, int layer, int sample,
                            const char *out);

#endif
