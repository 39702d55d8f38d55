/* qsnn import IN.nir --out MODEL.h5: a NIR graph (io/nir.h) as a qsnn checkpoint (without optimizer
 * state) that eval, record and export take like any trained model. */
#include "cli/commands.h"
#include "cli/config.h"
#include "io/checkpoint.h"
#include "io/nir.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: qsnn import IN.nir --out MODEL.h5 [options]\n\n"
           "Reads a NIR graph (HDF5) made of Input, (Affine | Linear, LIF | IF) layers and Output, in any\n"
           "node order, nested graphs allowed, and saves it as a qsnn model (a checkpoint with default\n"
           "data and training settings). beta = 1 - dt/tau; an input gain r*dt/tau other than 1 is\n"
           "folded into the weights. Files written by qsnn export restore beta, the reset rule and the\n"
           "quantizer settings from their metadata. See docs/file-formats.md.\n\n"
           "options:\n"
           "  --out MODEL.h5    the checkpoint to write (required; written atomically)\n"
           "  --dt S            time step in seconds where the file's metadata gives none (default 1e-4)\n"
           "  --steps T         time steps per sample of the imported model (data.steps)\n"
           "  --reset RULE      reset rule for every layer: subtract, zero or none (default: the file's\n"
           "                    metadata, else zero, NIR's reset to v_reset = 0)\n"
           "  --set KEY=VALUE   any other configuration key (see qsnn config --keys); the network's\n"
           "                    shape and neuron parameters come from the file\n");
}


int qsnn_cmd_import(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *steps = NULL;
    const char *sets[256];
    int n_sets = 0;
    qsnn_nir_import_opts o = {0, -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--out") || !strcmp(a, "--dt") || !strcmp(a, "--steps") || !strcmp(a, "--reset") ||
                   !strcmp(a, "--set")) {
            if (i + 1 >= argc) return qsnn_cli_error("import", "option %s needs a value", a), 2;
            const char *v = argv[++i];
            if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--steps")) steps = v;
            else if (!strcmp(a, "--dt")) {
                if (qsnn_cli_parse_positive(v, &o.dt))
                    return qsnn_cli_error("import", "--dt %s: expected a positive number of seconds", v), 2;
            } else if (!strcmp(a, "--reset")) {
                if ((o.reset = (int)qsnn_reset_find(v)) < 0)
                    return qsnn_cli_error("import", "--reset %s: expected subtract, zero or none", v), 2;
            } else {
                if (n_sets == (int)(sizeof sets / sizeof *sets))
                    return qsnn_cli_error("import", "too many --set options"), 2;
                sets[n_sets++] = v;
            }
        } else if (a[0] == '-') {
            return qsnn_cli_error("import", "unknown option '%s' (see qsnn import --help)", a), 2;
        } else if (!in) {
            in = a;
        } else {
            return qsnn_cli_error("import", "one file at a time ('%s' and '%s')", in, a), 2;
        }
    }
    if (!in) return qsnn_cli_error("import", "which file? usage: qsnn import IN.nir --out MODEL.h5"), 2;
    if (!out) return qsnn_cli_error("import", "where to? usage: qsnn import IN.nir --out MODEL.h5"), 2;

    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, 1, 0, &ctx)) return qsnn_cli_error("import", "out of memory");
    int rc = 1, dropped = 0;
    char *yaml = NULL, *cmdline = NULL;
    qsnn_net *net = NULL;
    qsnn_nir_model m;
    memset(&m, 0, sizeof m);
    qsnn_config cfg;
    qsnn_config_default(&cfg);
    for (int i = 0; i < n_sets; i++)
        if (qsnn_config_set(ctx, &cfg, sets[i])) goto fail;
    if (steps) {
        char buf[64];
        snprintf(buf, sizeof buf, "data.steps=%s", steps);
        if (qsnn_config_set(ctx, &cfg, buf)) goto fail;
    }
    if (qsnn_nir_import(ctx, in, &o, &m)) goto fail;
    if (m.n_layers < 2) {
        qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED, "%s: one layer only; qsnn models have at least one hidden layer", in);
        goto fail;
    }
    if (qsnn_nir_net_cfg(ctx, &m, &cfg.model)) goto fail;
    qsnn_config_resolve(&cfg);
    if (qsnn_config_check(ctx, &cfg)) goto fail;
    if (qsnn_nir_create_net(ctx, &m, &cfg.model, &net, &dropped)) goto fail;
    if (qsnn_config_dump(ctx, &cfg, &yaml)) goto fail;
    cmdline = qsnn_cli_join_args(argc, argv);
    qsnn_ckpt_meta meta = {0, 0.0, 0.0, cfg.run.seed, cmdline};
    if (qsnn_checkpoint_save(ctx, out, net, yaml, &meta)) goto fail;
    printf("%s: %d layers (%d", out, net->n_layers, net->cfg.n_inputs);
    for (int l = 0; l < net->n_layers; l++) printf("-%d", net->layer[l].out);
    printf(") from %s (NIR %s), dt %g s, reset %s, beta", in, m.version[0] ? m.version : "?", m.dt,
           qsnn_reset_name(cfg.model.neuron_params.reset));
    for (int k = QSNN_PN_BETA; k <= QSNN_PN_THETA; k++) {
        if (k == QSNN_PN_THETA) printf(", threshold");
        for (int l = 0; l < net->n_layers; l++) {
            const qsnn_layer *L = &net->layer[l];
            const float *v = L->pn[k];
            if (!v) {
                printf(" %.9g", (double)(k == QSNN_PN_BETA ? L->beta : L->theta));
                continue;
            }
            float lo = v[0], hi = v[0]; /* per-neuron layers: the range */
            for (int o = 1; o < L->out; o++) lo = v[o] < lo ? v[o] : lo, hi = v[o] > hi ? v[o] : hi;
            if (lo == hi) printf(" %.9g", (double)lo);
            else printf(" %.6g..%.6g", (double)lo, (double)hi);
        }
    }
    if (net->cfg.per_neuron) printf(" (per neuron)");
    printf("\n");
    for (int l = 0; l < m.n_layers; l++)
        if (m.layer[l].folded)
            printf("note: node %s: input gain r*dt/tau != 1 folded into the weights of %s\n", m.layer[l].lif_node,
                   m.layer[l].fc_node);
    if (dropped)
        printf("note: weight quantization recorded in the file does not reproduce the exported weights bit for "
               "bit; the model uses them as float weights (quant.weight.bits = 0)\n");
    rc = 0;
    goto done;
fail:
    qsnn_cli_error("import", "%s", qsnn_last_error(ctx));
done:
    free(cmdline);
    qsnn_free(ctx, yaml);
    qsnn_nir_model_free(ctx, &m);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
