/* qsnn export MODEL --nir OUT: a saved model as a NIR graph (io/nir.h), for other SNN tools and
 * neuromorphic hardware; --integer OUT: the integer engine's model file (io/int_model.h). */
#include "cli/commands.h"
#include "cli/run_setup.h"
#include "io/int_model.h"
#include "io/nir.h"
#include "sim/int_engine.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: qsnn export MODEL --nir OUT.nir [options]\n"
           "       qsnn export MODEL --integer OUT.h5\n\n"
           "Writes a model saved by qsnn train as a NIR graph (Neuromorphic Intermediate Representation,\n"
           "HDF5): Input, then per layer an Affine (Linear without bias) and a LIF node, then Output.\n"
           "The weights are the forward weights (fake-quantized when weight quantization is on).\n"
           "Discrete time maps to NIR's continuous LIF as tau = dt/(1-beta), r = tau/dt, v_leak = 0;\n"
           "what NIR cannot express (beta as stored, reset rule, quantizer settings, integer codes)\n"
           "goes into each node's metadata group. See docs/file-formats.md.\n\n"
           "With --integer, writes what integer-only hardware needs instead: integer weight codes, bias,\n"
           "fixed-point multipliers and shifts, the leak multiplier, the threshold and the state level\n"
           "table of every layer, with the update rule (the model needs quantized weights and states;\n"
           "quant.integer models reproduce the float simulation spike for spike).\n\n"
           "options:\n"
           "  --nir OUT         the NIR file to write (written atomically)\n"
           "  --integer OUT     the integer model file to write (written atomically)\n"
           "  --dt S            time step in seconds for the tau mapping (default 1e-4)\n");
}


int qsnn_cmd_export(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *int_out = NULL;
    double dt = QSNN_NIR_DEFAULT_DT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--nir") || !strcmp(a, "--dt") || !strcmp(a, "--integer")) {
            if (i + 1 >= argc) return qsnn_cli_error("export", "option %s needs a value", a), 2;
            if (!strcmp(a, "--nir")) out = argv[++i];
            else if (!strcmp(a, "--integer")) int_out = argv[++i];
            else if (qsnn_cli_parse_positive(argv[++i], &dt))
                return qsnn_cli_error("export", "--dt %s: expected a positive number of seconds", argv[i]), 2;
        } else if (qsnn_cli_take_model("export", a, &model)) {
            return 2;
        }
    }
    if (!model) return qsnn_cli_error("export", "which model? usage: qsnn export MODEL --nir OUT.nir"), 2;
    if (!out && !int_out)
        return qsnn_cli_error("export", "where to? usage: qsnn export MODEL --nir OUT.nir (or --integer OUT.h5)"), 2;

    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, 1, 0, &ctx)) return qsnn_cli_error("export", "out of memory");
    int rc = 1;
    char *yaml = NULL;
    qsnn_net *net = NULL;
    qsnn_config cfg;
    qsnn_ckpt_meta meta;
    if (qsnn_open_model(ctx, model, NULL, &cfg, &meta, &net)) goto fail;
    if (qsnn_config_dump(ctx, &cfg, &yaml)) goto fail;
    if (int_out) {
        qsnn_int_net *inet = NULL;
        if (qsnn_int_net_create(ctx, net, &inet)) goto fail;
        inet->max_membrane = strcmp(cfg.train.loss, "ce_max_membrane") == 0;
        char *cmdline = qsnn_cli_join_args(argc, argv);
        const qsnn_int_model_meta im = {yaml, cmdline, cfg.data.encoding, cfg.data.steps};
        const qsnn_status st = qsnn_int_model_save(ctx, int_out, inet, &im);
        free(cmdline);
        const int exact = inet->exact;
        qsnn_int_net_destroy(&inet);
        if (st) goto fail;
        printf("%s: integer model, %d layers, %s\n", int_out, net->n_layers,
               exact ? "exact (reproduces the float simulation spike for spike)"
                     : "approximate (not a quant.integer model; see qsnn eval --integer)");
        if (!out) {
            rc = 0;
            goto done;
        }
    }
    qsnn_nir_export_opts o = {dt, yaml};
    if (qsnn_nir_export(ctx, out, net, &o)) goto fail;
    printf("%s: NIR %s graph, %d layers (%d", out, QSNN_NIR_VERSION, net->n_layers, net->cfg.n_inputs);
    for (int l = 0; l < net->n_layers; l++) printf("-%d", net->layer[l].out);
    int wq = 0, sq = 0;
    for (int l = 0; l < net->n_layers; l++) wq |= net->layer[l].wq != NULL, sq |= net->layer[l].sq.enabled;
    printf("), dt %g s%s%s\n", dt, wq ? ", quantized weights" : "", sq ? ", state quantizer in metadata" : "");
    rc = 0;
    goto done;
fail:
    qsnn_cli_error("export", "%s", qsnn_last_error(ctx));
done:
    qsnn_free(ctx, yaml);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
