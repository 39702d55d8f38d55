/* qsnn eval MODEL: reloads a checkpoint with the configuration stored in it and measures the test
 * accuracy, which matches the one recorded at training to the last sample. */
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/record_opt.h"
#include "cli/run_setup.h"
#include "io/checkpoint.h"
#include "train/int_eval.h"
#include "train/trainer.h"

#include <stdio.h>
#include <string.h>

static void help(void) {
    printf("usage: qsnn eval MODEL [options]\n\n"
           "Evaluates a checkpoint written by qsnn train on the test split, with the configuration\n"
           "stored in it (network, encoding, T, seed).\n\n"
           "options:\n"
           "  --data DIR        folder with the IDX files (default: the one used in training)\n"
           "  --integer         run the integer-only engine (integer weights and states, fixed-point\n"
           "                    leak, no float in the time loop) side by side with the float engine,\n"
           "                    and report both accuracies and their spike-for-spike agreement\n"
           "  --threads N       threads (0 = all cores)\n"
           "  --no-progress     no progress bar\n"
           "  --record FILE     also record the spikes and membranes of the first test samples into an\n"
           "                    HDF5 trace file (as qsnn record does; see qsnn record --help)\n"
           "  --record-samples N  samples to record (default 16)\n"
           "  --neurons SPEC    membranes to record: all (default), none, L:all, L:i,j,a-b\n");
}

static int eval_integer(qsnn_ctx *ctx, const char *model, qsnn_net *net, const qsnn_config *cfg,
                        const qsnn_dataset *test, qsnn_progress *bar) {
    qsnn_int_metrics im;
    qsnn_status st = qsnn_evaluate_integer(ctx, net, &cfg->train, &cfg->data, test, (uint64_t)cfg->run.seed,
                                           qsnn_progress_update, bar, &im);
    qsnn_progress_clear(bar);
    if (st) return qsnn_cli_error("eval", "%s", qsnn_last_error(ctx));
    printf("%s: integer engine: test accuracy %.2f%% (%ld/%ld), float engine %.2f%%, same prediction on %ld/%ld\n",
           model, 100.0 * im.accuracy, (long)(im.accuracy * im.samples + 0.5), im.samples,
           100.0 * im.float_accuracy, im.pred_agree, im.samples);
    long long slots = 0, diff = 0;
    for (int l = 0; l < net->n_layers; l++) {
        printf("  layer %d: %lld spikes, %lld of %lld spike slots differ (agreement %.6f%%)\n", l, im.spikes[l],
               im.mismatches[l], im.slots[l],
               im.slots[l] ? 100.0 * (1.0 - (double)im.mismatches[l] / (double)im.slots[l]) : 100.0);
        slots += im.slots[l], diff += im.mismatches[l];
    }
    if (im.exact)
        printf("integer-exact model: %s\n", diff == 0 ? "identical spikes on every sample, layer and step"
                                                      : "SPIKES DIFFER although the conversion is exact (a bug)");
    else
        printf("approximate conversion (not a quant.integer model): %.6f%% of spike slots agree\n",
               slots ? 100.0 * (1.0 - (double)diff / (double)slots) : 100.0);
    printf("integer engine %.1f s of %.1f s\n", im.int_seconds, im.seconds);
    return im.exact && diff ? 1 : 0;
}

int qsnn_cmd_eval(int argc, char **argv) {
    const char *model = NULL, *data = NULL;
    long long threads = 0;
    int progress = 1, integer = 0, r;
    qsnn_record_opts ro;
    qsnn_record_opts_init(&ro);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--no-progress")) {
            progress = 0;
        } else if (!strcmp(a, "--integer")) {
            integer = 1;
        } else if (!strcmp(a, "--data") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return qsnn_cli_error("eval", "option %s needs a value", a), 2;
            if (!strcmp(a, "--data")) data = argv[++i];
            else if (qsnn_cli_parse_int(argv[++i], 0, 1024, &threads))
                return qsnn_cli_error("eval", "--threads %s: expected an integer in 0..1024", argv[i]), 2;
        } else if ((r = qsnn_record_parse_opt("eval", "--record", "--record-samples", argc, argv, &i, &ro)) != 0) {
            if (r < 0) return 2;
        } else if (qsnn_cli_take_model("eval", a, &model)) {
            return 2;
        }
    }
    if (!model) return qsnn_cli_error("eval", "which model? usage: qsnn eval MODEL (see --help)"), 2;

    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, (int)threads, 0, &ctx)) return qsnn_cli_error("eval", "out of memory");
    int rc = 1;
    char *yaml = NULL;
    qsnn_net *net = NULL;
    qsnn_dataset *test = NULL;
    qsnn_config cfg;
    qsnn_ckpt_meta meta;
    if (qsnn_open_model(ctx, model, data, &cfg, &meta, &net)) goto fail;
    if (qsnn_load_split(ctx, &cfg, "t10k", &test)) goto fail;
    if (qsnn_record_file(ctx, &ro, argc, argv, model, net, &cfg, test, meta.epoch)) goto fail;
    qsnn_progress bar;
    qsnn_progress_init(&bar, progress);
    bar.label = "test";
    if (integer) {
        rc = eval_integer(ctx, model, net, &cfg, test, &bar);
        goto done;
    }
    qsnn_metrics m;
    if (qsnn_evaluate(ctx, net, &cfg.train, &cfg.data, test, (uint64_t)cfg.run.seed, qsnn_progress_update, &bar, &m)) {
        qsnn_progress_clear(&bar);
        goto fail;
    }
    qsnn_progress_clear(&bar);
    const long correct = (long)(m.accuracy * (double)m.samples + 0.5);
    printf("%s: test accuracy %.2f%% (%ld/%ld), loss %.4f, rates", model, 100.0 * m.accuracy, correct, m.samples,
           m.loss);
    for (int l = 0; l < net->n_layers; l++) printf(" %.4f", m.rates[l]);
    printf(", saturated");
    for (int l = 0; l < net->n_layers; l++) printf(" %.4f", m.saturated[l]);
    printf(", %.0f samples/s\n", m.samples_per_s);
    if (meta.epoch == 0 && meta.test_accuracy == 0.0)
        ; /* nothing recorded (an imported model) */
    else if (m.accuracy == meta.test_accuracy)
        printf("matches the accuracy recorded at training (%.2f%%)\n", 100.0 * meta.test_accuracy);
    else
        printf("differs from the accuracy recorded at training (%.4f%%)\n", 100.0 * meta.test_accuracy);
    rc = 0;
    goto done;
fail:
    qsnn_cli_error("eval", "%s", qsnn_last_error(ctx));
done:
    qsnn_free(ctx, yaml);
    qsnn_net_destroy(&net);
    qsnn_dataset_destroy(ctx, &test);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
