/* qsnn record MODEL: spike trains and membrane traces of a saved model on the first N test samples,
 * with the inputs and the model, into one HDF5 trace file (io/trace.h). */
#include "cli/commands.h"
#include "cli/record_opt.h"
#include "cli/run_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: qsnn record MODEL --out FILE [options]\n\n"
           "Runs a checkpoint written by qsnn train over the first N samples of the test split, encoded\n"
           "as qsnn eval encodes them, and writes an HDF5 trace file: every layer's spikes as sparse\n"
           "events (sample, step, neuron), the membranes of the selected neurons (float32, and level\n"
           "indices when states are quantized), the inputs exactly as fed to the network, the model\n"
           "and its configuration (layout: docs/file-formats.md). Written to FILE.tmp.<pid> and renamed;\n"
           "an error or Ctrl-C leaves nothing behind.\n\n"
           "options:\n"
           "  --out FILE        the trace file to write (required)\n"
           "  --samples N       samples to record (default %d)\n"
           "%s"
           "  --data DIR        folder with the IDX files (default: the one used in training)\n"
           "  --threads N       threads (0 = all cores)\n",
           QSNN_RECORD_DEFAULT_SAMPLES, qsnn_record_neurons_help);
}

int qsnn_cmd_record(int argc, char **argv) {
    const char *model = NULL, *data = NULL;
    long long threads = 0;
    qsnn_record_opts ro;
    qsnn_record_opts_init(&ro);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        }
        const int r = qsnn_record_parse_opt("record", "--out", "--samples", argc, argv, &i, &ro);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--data") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return qsnn_cli_error("record", "option %s needs a value", a), 2;
            if (!strcmp(a, "--data")) data = argv[++i];
            else if (qsnn_cli_parse_int(argv[++i], 0, 1024, &threads))
                return qsnn_cli_error("record", "--threads %s: expected an integer in 0..1024", argv[i]), 2;
        } else if (qsnn_cli_take_model("record", a, &model)) {
            return 2;
        }
    }
    if (!model) return qsnn_cli_error("record", "which model? usage: qsnn record MODEL --out FILE (see --help)"), 2;
    if (!ro.file) return qsnn_cli_error("record", "--out FILE is required (the trace file to write)"), 2;
    const int n = ro.samples > 0 ? (int)ro.samples : QSNN_RECORD_DEFAULT_SAMPLES;

    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, (int)threads, 0, &ctx)) return qsnn_cli_error("record", "out of memory");
    int rc = 1;
    char *yaml = NULL, *cmdline = NULL;
    qsnn_net *net = NULL;
    qsnn_dataset *test = NULL;
    qsnn_trace_writer *w = NULL;
    qsnn_config cfg;
    qsnn_ckpt_meta meta;
    if (qsnn_open_model(ctx, model, data, &cfg, &meta, &net)) goto fail;
    if (qsnn_record_check(ctx, &ro, net)) goto fail;
    if (qsnn_load_split(ctx, &cfg, "t10k", &test)) goto fail;
    if (n > test->n) {
        qsnn_cli_error("record", "--samples %d: the test split has %lld samples", n, (long long)test->n);
        goto done;
    }
    if (qsnn_config_dump(ctx, &cfg, &yaml)) goto fail;
    cmdline = qsnn_cli_join_args(argc, argv);
    const qsnn_trace_meta tm = {cfg.run.seed, cmdline, model, yaml};
    if (qsnn_trace_writer_create(ctx, ro.file, &tm, &w)) goto fail;
    if (qsnn_record_run(ctx, w, NULL, net, &cfg, test, n, meta.epoch, &ro)) goto fail;
    if (qsnn_trace_commit(w)) goto fail;
    printf("recorded %d samples x %d steps of %s into %s\n", n, cfg.data.steps, model, ro.file);
    rc = 0;
    goto done;
fail:
    qsnn_cli_error("record", "%s", qsnn_last_error(ctx));
done:
    qsnn_trace_writer_destroy(&w);
    free(cmdline);
    qsnn_free(ctx, yaml);
    qsnn_net_destroy(&net);
    qsnn_dataset_destroy(ctx, &test);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
