/* qsnn train: the whole training run, from configuration to a saved checkpoint. */
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/run_setup.h"
#include "io/checkpoint.h"
#include "train/trainer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void) {
    printf("usage: qsnn train [options]\n\n"
           "Trains a spiking network; with no options, the built-in default: 784-1000-10 LIF\n"
           "(beta 0.95, threshold 1, arctan surrogate), T = 25, batch 128, Adam lr 5e-4, direct\n"
           "encoding, cross-entropy on output spike counts, on Fashion-MNIST, 3 epochs.\n\n"
           "options:\n"
           "  --config FILE     YAML configuration (keys: qsnn config --keys)\n"
           "  --set KEY=VALUE   override one key, e.g. --set quant.state.bits=4 (repeatable)\n"
           "  --epochs N        train.epochs\n"
           "  --threads N       run.threads (0 = all cores)\n"
           "  --seed N          run.seed\n"
           "  --out DIR         run.out: folder for the checkpoint (default runs/)\n"
           "  --data DIR        data.dir: folder with the IDX files (default %s)\n"
           "  --no-progress     no progress bar (it is drawn only on a terminal anyway)\n"
           "  --help-config     list every configuration key\n\n"
           "Prints one line per epoch (loss, train and test accuracy, samples/s, firing rate per\n"
           "layer) and saves DIR/model.h5 (HDF5: parameters, resolved config, metrics).\n",
           QSNN_DEFAULT_DATA_DIR);
}

/* mkdir -p for the output folder, checked before hours of training rather than after. */
static int make_dirs(const char *path, char *err, size_t errlen) {
    char tmp[QSNN_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1;; p++) {
        const char c = *p;
        if (c == '/' || c == 0) {
            *p = 0;
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create output folder %s: %s", tmp, strerror(errno));
                return -1;
            }
            *p = c;
            if (!c) break;
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "output path %s is not a folder", path);
        return -1;
    }
    return 0;
}

static void print_epoch(int e, int epochs, const qsnn_metrics *tr, const qsnn_metrics *te, int n_layers) {
    printf("epoch %d/%d  loss %.4f  train %.2f%%  test %.2f%%  %.0f samples/s  rates", e, epochs, tr->loss,
           100.0 * tr->accuracy, 100.0 * te->accuracy, tr->samples_per_s);
    for (int l = 0; l < n_layers; l++) printf(" %.4f", tr->rates[l]);
    printf("  (%.1f s)\n", tr->seconds + te->seconds);
    fflush(stdout);
}

int qsnn_cmd_train(int argc, char **argv) {
    qsnn_common_opts o = {.epochs = -1, .threads = -1, .seed = -1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 0;
        }
        if (!strcmp(argv[i], "--help-config")) {
            qsnn_config_print_keys(stdout);
            return 0;
        }
        int r = qsnn_parse_common_opt("train", argc, argv, &i, &o);
        if (r < 0) return 2;
        if (r == 0) {
            qsnn_cli_error("train", "unknown option '%s' (see qsnn train --help)", argv[i]);
            return 2;
        }
    }
    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, 0, 0, &ctx)) return qsnn_cli_error("train", "out of memory");
    int rc = 1;
    qsnn_config cfg;
    qsnn_dataset *train = NULL, *test = NULL;
    qsnn_net *net = NULL;
    qsnn_trainer *tr = NULL;
    char *yaml = NULL, *cmdline = NULL;
    char path[QSNN_PATH_MAX + 16], err[QSNN_PATH_MAX + 128];
    qsnn_config_default(&cfg);
    if (qsnn_apply_common_opts(ctx, &cfg, &o)) goto fail;
    qsnn_ctx_set_threads(ctx, cfg.run.threads);
    qsnn_ctx_set_seed(ctx, (uint64_t)cfg.run.seed);
    if (make_dirs(cfg.run.out, err, sizeof err)) {
        qsnn_cli_error("train", "%s", err);
        goto done;
    }
    snprintf(path, sizeof path, "%s/model.h5", cfg.run.out);
    if (qsnn_load_split(ctx, &cfg, "train", &train) || qsnn_load_split(ctx, &cfg, "t10k", &test)) goto fail;
    if (qsnn_net_create(ctx, &cfg.model, &net)) goto fail;
    qsnn_net_init(net, (uint64_t)cfg.run.seed);
    if (qsnn_trainer_create(ctx, net, &cfg.train, &cfg.data, train, (uint64_t)cfg.run.seed, &tr)) goto fail;
    if (qsnn_config_dump(ctx, &cfg, &yaml)) goto fail;
    cmdline = qsnn_cli_join_args(argc, argv);

    printf("qsnn train: %d", cfg.model.n_inputs);
    for (int l = 0; l < cfg.model.n_layers; l++) printf("-%d", cfg.model.sizes[l]);
    printf(" %s, T = %d, batch %d, %s lr %g (%s), %d threads; weights %s, states %s; %lld train / %lld test samples\n",
           cfg.model.neuron, cfg.data.steps, cfg.train.batch, cfg.train.optimizer, cfg.train.lr, cfg.train.schedule,
           qsnn_ctx_threads(ctx), cfg.model.weight_quant.bits ? "quantized" : "float",
           cfg.model.state_quant.bits ? "quantized" : "float", (long long)train->n, (long long)test->n);
    if (cfg.model.weight_quant.bits)
        printf("  weight quantizer: %s, %d bits, %s\n", cfg.model.weight_quant.method, cfg.model.weight_quant.bits,
               cfg.model.weight_quant.granularity == QSNN_WQ_PER_CHANNEL ? "per channel" : "per tensor");
    if (cfg.model.state_quant.bits)
        printf("  state quantizer: %s grid, %d bits, range [%g, %g] x threshold\n",
               qsnn_grid_name(cfg.model.state_quant.grid), cfg.model.state_quant.bits,
               -(1.0 + cfg.model.state_quant.lower_limit), 1.0 + cfg.model.state_quant.upper_limit);
    fflush(stdout);

    qsnn_progress bar;
    qsnn_progress_init(&bar, cfg.run.progress);
    char label[64];
    qsnn_metrics mtr, mte;
    for (int e = 0; e < cfg.train.epochs; e++) {
        snprintf(label, sizeof label, "epoch %d/%d", e + 1, cfg.train.epochs);
        bar.label = label;
        if (qsnn_train_epoch(tr, e, qsnn_progress_update, &bar, &mtr)) {
            qsnn_progress_clear(&bar);
            goto fail;
        }
        bar.label = "test";
        if (qsnn_trainer_evaluate(tr, test, qsnn_progress_update, &bar, &mte)) {
            qsnn_progress_clear(&bar);
            goto fail;
        }
        qsnn_progress_clear(&bar);
        print_epoch(e + 1, cfg.train.epochs, &mtr, &mte, net->n_layers);
    }
    qsnn_ckpt_meta meta = {cfg.train.epochs, mte.accuracy, mtr.loss, cfg.run.seed, cmdline};
    if (qsnn_checkpoint_save(ctx, path, net, yaml, &meta)) goto fail;
    printf("saved %s (test accuracy %.2f%%; qsnn eval %s reproduces it)\n", path, 100.0 * mte.accuracy, path);
    rc = 0;
    goto done;
fail:
    qsnn_cli_error("train", "%s", qsnn_last_error(ctx));
done:
    free(cmdline);
    qsnn_free(ctx, yaml);
    qsnn_trainer_destroy(&tr);
    qsnn_net_destroy(&net);
    qsnn_dataset_destroy(ctx, &train);
    qsnn_dataset_destroy(ctx, &test);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
