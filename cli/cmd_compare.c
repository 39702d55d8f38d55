/* qsnn compare A B: how two recordings of the same inputs differ, per layer (io/trace_compare.h). */
#include "cli/commands.h"
#include "io/trace_compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_VP_COST 0.5

static void help(void) {
    printf("usage: qsnn compare A.h5 B.h5 [options]\n\n"
           "Compares two trace files recorded on the same inputs (e.g. a float model and its quantized\n"
           "twin, recorded with qsnn record --samples N); refuses recordings of different inputs. Per layer,\n"
           "over every (sample, neuron) pair:\n"
           "  count-agree   fraction of pairs with equal spike counts\n"
           "  identical     fraction of pairs with identical spike trains\n"
           "  rate A, B     spikes per neuron per step, and the change B - A\n"
           "  1st-shift     mean first-spike step of B minus A, over pairs firing in both (and |.|)\n"
           "  VP            mean Victor-Purpura distance: the least cost of turning A's train into B's,\n"
           "                1 per inserted or deleted spike, q per step a spike moves\n"
           "  U-RMSE        membrane RMS error over the neurons recorded in both\n\n"
           "options:\n"
           "  --vp-cost Q       the Victor-Purpura cost q per step of shift (default %g; 0 compares\n"
           "                    counts only, large q treats any shift as delete + insert)\n"
           "  --epoch K         in files of per-epoch recordings (qsnn train --record), epoch K of both\n"
           "  --json            machine-readable output (NaN as null)\n",
           DEFAULT_VP_COST);
}

static void json_num(double v) {
    if (isfinite(v)) printf("%.17g", v);
    else printf("null");
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void fmt_num(char *buf, size_t n, const char *fmt, double v) {
    if (isfinite(v)) snprintf(buf, n, fmt, v);
    else snprintf(buf, n, "-");
}

int qsnn_cmd_compare(int argc, char **argv) {
    const char *fa = NULL, *fb = NULL;
    double q = DEFAULT_VP_COST;
    long long epoch = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--vp-cost") || !strcmp(a, "--epoch")) {
            if (i + 1 >= argc) return qsnn_cli_error("compare", "option %s needs a value", a), 2;
            const char *v = argv[++i];
            if (!strcmp(a, "--epoch")) {
                if (qsnn_cli_parse_int(v, 1, 1 << 30, &epoch))
                    return qsnn_cli_error("compare", "--epoch %s: expected a positive integer", v), 2;
            } else {
                char *end;
                q = strtod(v, &end);
                if (end == v || *end || !(q >= 0) || !isfinite(q))
                    return qsnn_cli_error("compare", "--vp-cost %s: expected a number >= 0", v), 2;
            }
        } else if (a[0] == '-') {
            return qsnn_cli_error("compare", "unknown option '%s' (see qsnn compare --help)", a), 2;
        } else if (!fa) {
            fa = a;
        } else if (!fb) {
            fb = a;
        } else {
            return qsnn_cli_error("compare", "two trace files only ('%s' is a third)", a), 2;
        }
    }
    if (!fb) return qsnn_cli_error("compare", "usage: qsnn compare A.h5 B.h5 (see --help)"), 2;

    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, 1, 0, &ctx)) return qsnn_cli_error("compare", "out of memory");
    qsnn_trace *ta = NULL, *tb = NULL;
    qsnn_trace_cmp_layer r[QSNN_MAX_LAYERS];
    char group[32] = "";
    if (epoch > 0) snprintf(group, sizeof group, "epoch_%lld", epoch);
    int rc = 1;
    if (qsnn_trace_read(ctx, fa, group, &ta) || qsnn_trace_read(ctx, fb, group, &tb) ||
        qsnn_trace_compare(ctx, ta, tb, fa, fb, q, r)) {
        qsnn_cli_error("compare", "%s", qsnn_last_error(ctx));
        goto done;
    }
    rc = 0;
    if (json) {
        printf("{\"a\": "), json_str(fa);
        printf(", \"b\": "), json_str(fb);
        printf(", \"samples\": %d, \"steps\": %d, \"vp_cost\": ", ta->N, ta->T);
        json_num(q);
        printf(", \"layers\": [");
        for (int l = 0; l < ta->n_layers; l++) {
            const qsnn_trace_cmp_layer *c = &r[l];
            printf("%s\n  {\"layer\": %d, \"neurons\": %d, \"count_agreement\": ", l ? "," : "", l, c->out);
            json_num(c->count_agreement);
            printf(", \"train_identical\": "), json_num(c->train_identical);
            printf(", \"rate_a\": "), json_num(c->rate_a);
            printf(", \"rate_b\": "), json_num(c->rate_b);
            printf(", \"rate_change\": "), json_num(c->rate_b - c->rate_a);
            printf(", \"both_fire\": %lld, \"first_spike_shift\": ", c->both_fire), json_num(c->first_spike_shift);
            printf(", \"first_spike_abs_shift\": "), json_num(c->first_spike_abs_shift);
            printf(", \"vp_distance\": "), json_num(c->vp_distance);
            printf(", \"membrane_neurons\": %d, \"membrane_rmse\": ", c->membrane_neurons), json_num(c->membrane_rmse);
            printf("}");
        }
        printf("\n]}\n");
        goto done;
    }
    printf("A: %s\nB: %s\n%d samples x %d steps, Victor-Purpura q = %g\n\n", fa, fb, ta->N, ta->T, q);
    printf("%-5s %7s %11s %9s %8s %8s %9s %10s %9s %8s %10s\n", "layer", "neurons", "count-agree", "identical",
           "rate A", "rate B", "change", "1st-shift", "|shift|", "VP", "U-RMSE");
    for (int l = 0; l < ta->n_layers; l++) {
        const qsnn_trace_cmp_layer *c = &r[l];
        char s1[32], s2[32], s3[32];
        fmt_num(s1, sizeof s1, "%+.3f", c->first_spike_shift);
        fmt_num(s2, sizeof s2, "%.3f", c->first_spike_abs_shift);
        fmt_num(s3, sizeof s3, "%.4g", c->membrane_rmse);
        printf("%-5d %7d %11.4f %9.4f %8.4f %8.4f %+9.4f %10s %9s %8.4f %10s\n", l, c->out, c->count_agreement,
               c->train_identical, c->rate_a, c->rate_b, c->rate_b - c->rate_a, s1, s2, c->vp_distance, s3);
    }
done:
    qsnn_trace_destroy(ctx, &ta);
    qsnn_trace_destroy(ctx, &tb);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
