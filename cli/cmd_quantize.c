/* qsnn quantize MODEL: post-training quantization with calibration data, then an accuracy report
 * (the float model and the quantized one on the test split) and the quantized model file. */
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/run_setup.h"
#include "io/checkpoint.h"
#include "train/ptq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: qsnn quantize MODEL --out FILE [options]\n\n"
           "Post-training quantization of a trained model: weight steps and the membrane grid are set from\n"
           "the weights and from the membrane potentials of calibration samples (the first N of the training\n"
           "split), biases are corrected for the weight error, and both models are evaluated on the test\n"
           "split. The result is a model file for qsnn eval (weights use the LSQ quantizer holding the\n"
           "calibrated steps).\n\n"
           "options:\n"
           "  --out FILE             the quantized model (required)\n"
           "  --weight-bits B        weight bits, 0 (float) or 1..16 (default 4)\n"
           "  --state-bits B         membrane bits, 0 (float) or 1..16 (default 4)\n"
           "  --grid NAME            state grid: uniform, threshold_centered, zero_centered, fixed_point,\n"
           "                         threshold_rest, lsq (default uniform)\n"
           "  --range METHOD         weight steps: minmax, mse, percentile (default mse)\n"
           "  --state-range METHOD   membrane grid limits: rates (default: the candidate limits whose\n"
           "                         quantized network best reproduces the float spike counts on the\n"
           "                         calibration samples), keep (the model's configured limits), or\n"
           "                         minmax, mse, percentile of the observed membrane potentials\n"
           "  --percentile P         for --range percentile (default 99.99)\n"
           "  --per-tensor           one weight step per layer (default: per output neuron)\n"
           "  --no-bias-correction   keep the biases as trained\n"
           "  --adaround             learn each weight's rounding so the layer's input currents match\n"
           "                         the float ones on the calibration data (AdaRound; 2+ bits)\n"
           "  --adaround-iters N     its optimisation steps per layer (default 500)\n"
           "  --fold-thresholds      scale each neuron's input weights, bias and threshold by a power\n"
           "                         of two so every row spans the layer's weight range (the float\n"
           "                         spikes do not change); the model gets per-neuron thresholds.\n"
           "                         Pays off with --per-tensor: one step then serves every row\n"
           "  --calib N              calibration samples (default 512)\n"
           "  --data DIR             folder with the IDX files (default: the one used in training)\n"
           "  --threads N            threads (0 = all cores)\n"
           "  --no-progress          no progress bar\n");
}

static int parse_bits(const char *opt, const char *v, int *out) {
    long long b;
    if (qsnn_cli_parse_int(v, 0, 16, &b))
        return qsnn_cli_error("quantize", "%s %s: expected 0 (float) or 1..16", opt, v), 2;
    *out = (int)b;
    return 0;
}

int qsnn_cmd_quantize(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *data = NULL;
    long long threads = 0, calib_n = 512;
    int progress = 1;
    qsnn_ptq_opts o = {.weight_bits = 4, .state_bits = 4, .grid = QSNN_GRID_UNIFORM,
                       .granularity = QSNN_WQ_PER_CHANNEL, .weight_range = QSNN_RANGE_MSE,
                       .state_range = QSNN_PTQ_STATE_RATES, .weight_pct = 99.99, .state_pct = 99.99, .bias_correction = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--no-progress")) {
            progress = 0;
        } else if (!strcmp(a, "--per-tensor")) {
            o.granularity = QSNN_WQ_PER_TENSOR;
        } else if (!strcmp(a, "--no-bias-correction")) {
            o.bias_correction = 0;
        } else if (!strcmp(a, "--adaround")) {
            o.adaround = 1;
        } else if (!strcmp(a, "--fold-thresholds")) {
            o.fold_thresholds = 1;
        } else if (!strcmp(a, "--out") || !strcmp(a, "--data") || !strcmp(a, "--threads") || !strcmp(a, "--calib") ||
                   !strcmp(a, "--weight-bits") || !strcmp(a, "--state-bits") || !strcmp(a, "--grid") ||
                   !strcmp(a, "--range") || !strcmp(a, "--state-range") || !strcmp(a, "--percentile") ||
                   !strcmp(a, "--adaround-iters")) {
            if (i + 1 >= argc) return qsnn_cli_error("quantize", "option %s needs a value", a), 2;
            const char *v = argv[++i];
            int rc = 0;
            if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--data")) data = v;
            else if (!strcmp(a, "--threads")) {
                if (qsnn_cli_parse_int(v, 0, 1024, &threads))
                    return qsnn_cli_error("quantize", "--threads %s: expected an integer in 0..1024", v), 2;
            } else if (!strcmp(a, "--calib")) {
                if (qsnn_cli_parse_int(v, 1, 60000, &calib_n))
                    return qsnn_cli_error("quantize", "--calib %s: expected a number of samples in 1..60000", v), 2;
            } else if (!strcmp(a, "--adaround-iters")) {
                long long it;
                if (qsnn_cli_parse_int(v, 1, 100000, &it))
                    return qsnn_cli_error("quantize", "--adaround-iters %s: expected an integer in 1..100000", v), 2;
                o.adaround_iters = (int)it;
            } else if (!strcmp(a, "--weight-bits")) rc = parse_bits(a, v, &o.weight_bits);
            else if (!strcmp(a, "--state-bits")) rc = parse_bits(a, v, &o.state_bits);
            else if (!strcmp(a, "--grid")) {
                const int g = qsnn_grid_find(v);
                if (g < 0)
                    return qsnn_cli_error("quantize", "--grid %s: unknown (known: uniform, threshold_centered, "
                                                      "zero_centered, fixed_point, threshold_rest, lsq)", v), 2;
                if (qsnn_grid_learned((qsnn_grid)g))
                    return qsnn_cli_error("quantize", "--grid %s: quant.state.grid = %s is a learned state grid "
                                                      "(trained by qsnn train); quantize takes uniform, "
                                                      "threshold_centered, zero_centered, fixed_point, "
                                                      "threshold_rest, lsq", v, v), 2;
                o.grid = (qsnn_grid)g;
            } else if (!strcmp(a, "--range")) {
                const int m = qsnn_range_find(v);
                if (m < 0) return qsnn_cli_error("quantize", "--range %s: unknown (known: minmax, mse, percentile)", v), 2;
                o.weight_range = (qsnn_range_method)m;
            } else if (!strcmp(a, "--state-range")) {
                const int m = !strcmp(v, "rates") ? QSNN_PTQ_STATE_RATES
                                                  : (!strcmp(v, "keep") ? QSNN_PTQ_STATE_KEEP : qsnn_range_find(v));
                if (m < 0)
                    return qsnn_cli_error("quantize", "--state-range %s: unknown (known: rates, keep, minmax, mse, "
                                                      "percentile)", v), 2;
                o.state_range = m;
            } else {
                char *end;
                const double p = strtod(v, &end);
                if (*end || !(p > 50.0 && p <= 100.0))
                    return qsnn_cli_error("quantize", "--percentile %s: expected a number in (50, 100]", v), 2;
                o.weight_pct = o.state_pct = p;
            }
            if (rc) return rc;
        } else if (qsnn_cli_take_model("quantize", a, &model)) {
            return 2;
        }
    }
    if (!model) return qsnn_cli_error("quantize", "which model? usage: qsnn quantize MODEL --out FILE"), 2;
    if (!out) return qsnn_cli_error("quantize", "--out FILE is required (the quantized model)"), 2;

    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, (int)threads, 0, &ctx)) return qsnn_cli_error("quantize", "out of memory");
    int rc = 1;
    qsnn_net *net = NULL, *qnet = NULL;
    qsnn_dataset *calib = NULL, *test = NULL;
    char *yaml = NULL, *cmdline = NULL;
    qsnn_config cfg, qcfg;
    qsnn_ckpt_meta meta;
    if (qsnn_open_model(ctx, model, data, &cfg, &meta, &net)) goto fail;
    qsnn_config lim = cfg;
    lim.data.train_limit = (int)calib_n;
    if (qsnn_load_split(ctx, &lim, "train", &calib) || qsnn_load_split(ctx, &cfg, "t10k", &test)) goto fail;
    qsnn_ptq_report rep;
    qcfg = cfg;
    if (qsnn_ptq(ctx, net, &cfg.train, &cfg.data, calib, (uint64_t)cfg.run.seed, &o, &qcfg.model, &qnet, &rep))
        goto fail;
    qsnn_progress bar;
    qsnn_progress_init(&bar, progress);
    bar.label = "test";
    qsnn_metrics mf, mq;
    if (qsnn_evaluate(ctx, net, &cfg.train, &cfg.data, test, (uint64_t)cfg.run.seed, qsnn_progress_update, &bar, &mf) ||
        qsnn_evaluate(ctx, qnet, &qcfg.train, &qcfg.data, test, (uint64_t)cfg.run.seed, qsnn_progress_update, &bar,
                      &mq)) {
        qsnn_progress_clear(&bar);
        goto fail;
    }
    qsnn_progress_clear(&bar);
    printf("%s: post-training quantization, %ld calibration samples, %s weight ranges\n", model, rep.calib_samples,
           qsnn_range_name(o.weight_range));
    if (o.state_bits)
        printf("  state grid: %s, %d bits, range [%.4g, %.4g] x threshold (%s)\n", qsnn_grid_name(o.grid),
               o.state_bits, -(1 + rep.lower_limit), 1 + rep.upper_limit,
               o.state_range == QSNN_PTQ_STATE_RATES ? "best spike-count match"
               : o.state_range == QSNN_PTQ_STATE_KEEP ? "as configured"
                                                       : qsnn_range_name((qsnn_range_method)o.state_range));
    if (o.weight_bits)
        printf("  weights: %d bits, %s%s%s\n", o.weight_bits,
               o.granularity == QSNN_WQ_PER_CHANNEL ? "per output neuron" : "per tensor",
               o.adaround && o.weight_bits >= 2 ? ", AdaRound" : "", o.bias_correction ? ", bias corrected" : "");
    for (int l = 0; o.fold_thresholds && l < qnet->n_layers; l++)
        printf("  layer %d: %.1f%% of neurons folded, threshold x%g at most\n", l, 100.0 * rep.fold_frac[l],
               rep.fold_max[l]);
    for (int l = 0; o.adaround && o.weight_bits >= 2 && l < qnet->n_layers; l++)
        printf("  layer %d: input-current error %.4g with nearest rounding, %.4g with AdaRound (%.1f%% of weights "
               "rounded the other way)\n",
               l, rep.round_err_nearest[l], rep.round_err_adaround[l], 100.0 * rep.flipped[l]);
    printf("  test accuracy: float %.2f%%, quantized %.2f%% (%+.2f points); rates", 100 * mf.accuracy,
           100 * mq.accuracy, 100 * (mq.accuracy - mf.accuracy));
    for (int l = 0; l < qnet->n_layers; l++) printf(" %.4f", mq.rates[l]);
    printf(", saturated");
    for (int l = 0; l < qnet->n_layers; l++) printf(" %.4f", mq.saturated[l]);
    printf("\n");
    if (qsnn_config_dump(ctx, &qcfg, &yaml)) goto fail;
    cmdline = qsnn_cli_join_args(argc, argv);
    const qsnn_ckpt_meta qm = {.epoch = meta.epoch, .test_accuracy = mq.accuracy, .train_loss = meta.train_loss,
                               .seed = meta.seed, .command_line = cmdline};
    if (qsnn_checkpoint_save(ctx, out, qnet, yaml, &qm)) goto fail;
    printf("saved %s (qsnn eval %s reproduces %.2f%%)\n", out, out, 100 * mq.accuracy);
    rc = 0;
    goto done;
fail:
    qsnn_cli_error("quantize", "%s", qsnn_last_error(ctx));
done:
    free(cmdline);
    qsnn_free(ctx, yaml);
    qsnn_net_destroy(&net);
    qsnn_net_destroy(&qnet);
    qsnn_dataset_destroy(ctx, &calib);
    qsnn_dataset_destroy(ctx, &test);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
