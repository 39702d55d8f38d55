/* Training and inference throughput of a network on Fashion-MNIST, measured the way
 * ../shared/bench/torch_lif_reference.py measures it (3 warm-up batches, then timed batches of
 * consecutive samples), printed as one JSON line.
 *   qsnn_bench [--threads N] [--batches N] [--set KEY=VALUE]... */
#include "cli/config.h"
#include "cli/run_setup.h"
#include "core/timer.h"
#include "datasets/batch.h"
#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

int main(int argc, char **argv) {
    qsnn_common_opts o = {.epochs = -1, .threads = -1, .seed = -1};
    long long batches = 30;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batches") && i + 1 < argc) {
            batches = atoll(argv[++i]);
            continue;
        }
        int r = qsnn_parse_common_opt("bench", argc, argv, &i, &o);
        if (r <= 0) {
            fprintf(stderr, "usage: qsnn_bench [--threads N] [--batches N] [--set KEY=VALUE]...\n");
            return 2;
        }
    }
    qsnn_ctx *ctx;
    qsnn_ctx_create(NULL, 0, 0, &ctx);
    qsnn_config cfg;
    qsnn_config_default(&cfg);
    qsnn_dataset *train = NULL, *test = NULL;
    qsnn_net *net = NULL;
    qsnn_trainer *tr = NULL;
    if (qsnn_apply_common_opts(ctx, &cfg, &o) || qsnn_load_split(ctx, &cfg, "train", &train) ||
        qsnn_load_split(ctx, &cfg, "t10k", &test) || qsnn_net_create(ctx, &cfg.model, &net)) {
        fprintf(stderr, "qsnn_bench: %s\n", qsnn_last_error(ctx));
        return 1;
    }
    qsnn_ctx_set_threads(ctx, cfg.run.threads);
    qsnn_net_init(net, (uint64_t)cfg.run.seed);
    if (qsnn_trainer_create(ctx, net, &cfg.train, &cfg.data, train, (uint64_t)cfg.run.seed, &tr)) {
        fprintf(stderr, "qsnn_bench: %s\n", qsnn_last_error(ctx));
        return 1;
    }
    const int B = cfg.train.batch, F = cfg.model.n_inputs, T = cfg.data.steps;
    const qsnn_encoder_ops *enc = qsnn_encoder_find(cfg.data.encoding);
    float *x = malloc((size_t)B * F * sizeof(float));
    float *xe = malloc((size_t)(enc->is_static ? 1 : T) * B * F * sizeof(float));
    int *y = malloc((size_t)B * sizeof(int)), *pred = malloc((size_t)B * sizeof(int));
    int64_t *idx = malloc((size_t)B * sizeof(int64_t));
    double loss = 0.0;
    double t0 = 0.0;
    for (long long i = 0; i < batches + 3; i++) {
        if (i == 3) t0 = qsnn_now();
        const int64_t j = (i * B) % (train->n - B);
        for (int b = 0; b < B; b++) idx[b] = j + b;
        qsnn_batch_gather(train, idx, B, x, y);
        enc->encode(x, B, F, T, 0, 0, idx, xe);
        if (qsnn_trainer_step(tr, xe, enc->is_static, y, B, cfg.train.lr, &loss, pred)) {
            fprintf(stderr, "qsnn_bench: %s\n", qsnn_last_error(ctx));
            return 1;
        }
    }
    const double train_sps = (double)batches * B / (qsnn_now() - t0);
    qsnn_workspace *ws = qsnn_trainer_workspace(tr);
    long n = 0;
    t0 = qsnn_now();
    for (int64_t j = 0; j < test->n && j < batches * B; j += B) {
        const int bb = (int)(test->n - j < B ? test->n - j : B);
        for (int b = 0; b < bb; b++) idx[b] = j + b;
        qsnn_batch_gather(test, idx, bb, x, y);
        enc->encode(x, bb, F, T, 0, 0, idx, xe);
        qsnn_forward_infer(net, ws, xe, enc->is_static, bb);
        n += bb;
    }
    const double infer_sps = (double)n / (qsnn_now() - t0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"tool\": \"qsnn\", \"threads\": %d, \"hidden\": %d, \"steps\": %d, \"batch\": %d, \"state_bits\": %d, "
           "\"weight_bits\": %d, \"train_samples_per_s\": %.1f, \"infer_samples_per_s\": %.1f, \"peak_rss_mib\": %.1f, "
           "\"last_loss\": %.4f}\n",
           qsnn_ctx_threads(ctx), cfg.model.sizes[0], T, B, cfg.model.state_quant.bits, cfg.model.weight_quant.bits,
           train_sps, infer_sps, ru.ru_maxrss / 1024.0, loss);
    qsnn_trainer_destroy(&tr);
    qsnn_net_destroy(&net);
    qsnn_dataset_destroy(ctx, &train);
    qsnn_dataset_destroy(ctx, &test);
    qsnn_ctx_destroy(&ctx);
    free(x), free(xe), free(y), free(pred), free(idx);
    return 0;
}
