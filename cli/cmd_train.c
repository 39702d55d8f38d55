/* qsnn train: the whole training run, from configuration to a saved checkpoint. */
#include "cli/commands.h"
#include "cli/config_keys.h"
#include "cli/progress.h"
#include "cli/record_opt.h"
#include "cli/run_setup.h"
#include "io/checkpoint.h"
#include "train/trainer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void) {
    printf("usage: qsnn train [options]\n"
           "       qsnn train --resume CKPT [options]\n"
           "       qsnn train --init CKPT [options]\n\n"
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
           "  --resume CKPT     continue the run saved in CKPT (a model.h5 written by qsnn train):\n"
           "                    its stored configuration, then --set/--epochs/--threads/--out/--data\n"
           "                    over it (--epochs 5 extends a 3-epoch run to 5; model.* and quant.*\n"
           "                    keys and the seed cannot change; no --config, no --seed); loads the\n"
           "                    parameters and the optimizer state and trains the epochs after the\n"
           "                    saved one, with the same learning-rate schedule and shuffling as a\n"
           "                    run that was never interrupted. --out defaults to the stored run.out\n"
           "                    (the folder CKPT was written to).\n"
           "  --init CKPT       start a new run (step 0, fresh optimizer, the configuration from --config,\n"
           "                    --set and the defaults) from the parameters of CKPT: every parameter whose\n"
           "                    name and shape match is copied; the weight quantizer's learned parameters\n"
           "                    that were not (another quantizer, float -> quantized) are initialised from\n"
           "                    the copied weights. Progressive training: 8 -> 4 -> 3 -> 2 bits, each from\n"
           "                    the previous checkpoint (bench/qil_progressive.sh). The weight, bias and\n"
           "                    recurrent tensors must have the same shapes (the same architecture); not\n"
           "                    with --resume\n"
           "  --stop-after N    train at most N epochs in this invocation, then save and stop (to split\n"
           "                    a long run into jobs; continue it with --resume DIR/model.h5)\n"
           "  --record FILE     after every epoch, record the spikes and membranes of the same first test\n"
           "                    samples into one HDF5 trace file (/epoch_K per epoch; qsnn record --help)\n"
           "  --record-samples N  samples to record (default 16)\n"
           "  --neurons SPEC    membranes to record: all (default), none, L:all, L:i,j,a-b\n"
           "  --help-config     list every configuration key\n\n"
           "Prints one line per epoch (loss, train and test accuracy, samples/s, firing rate per\n"
           "layer) and saves DIR/model.h5 (HDF5: parameters, optimizer state, resolved config,\n"
           "metrics) after every epoch, atomically (written aside, then renamed), so an interrupted\n"
           "run can continue with qsnn train --resume DIR/model.h5.\n",
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

/* A key of the configuration a resumed run may not change: the architecture and the quantizers
 * (model.*, quant.*: the saved parameters and optimizer state belong to them) and the seed (the
 * initialization and the shuffling of the epochs already trained). */
static int frozen_on_resume(const char *path) {
    return !strncmp(path, "model.", 6) || !strncmp(path, "quant.", 6) || !strcmp(path, "run.seed");
}

/* The first frozen key whose value differs between the checkpoint's configuration and the resolved
 * one (values compared as their YAML text); reports it and returns 1, else returns 0. */
static int resume_changes_frozen_key(const char *ckpt, const qsnn_config *saved, const qsnn_config *now) {
    for (int i = 0; i < qsnn_config_n_keys; i++) {
        const qsnn_config_key *k = &qsnn_config_keys[i];
        if (!frozen_on_resume(k->path)) continue;
        char a[1024], b[1024]; /* room for a full per-layer name list */
        qsnn_config_key_format(k, saved, 1, a, sizeof a);
        qsnn_config_key_format(k, now, 1, b, sizeof b);
        if (strcmp(a, b) != 0) {
            qsnn_cli_error("train",
                           "--resume %s: cannot change %s (%s in the checkpoint, %s requested): a resumed run keeps "
                           "the architecture and quantizers (model.*, quant.*) and the seed of the checkpoint",
                           ckpt, k->path, a, b);
            return 1;
        }
    }
    return 0;
}

/* The optimizer's state in the form checkpoints take (slots: QSNN_OPTIM_MAX_STATE entries). */
static void ckpt_optim_of(qsnn_optim *opt, qsnn_ckpt_slot *slots, qsnn_ckpt_optim *out) {
    qsnn_optim_slot st[QSNN_OPTIM_MAX_STATE];
    int n = qsnn_optim_state(opt, st, QSNN_OPTIM_MAX_STATE);
    if (n > QSNN_OPTIM_MAX_STATE) n = QSNN_OPTIM_MAX_STATE; /* cannot happen: the bound is exact */
    for (int k = 0; k < n; k++) slots[k] = (qsnn_ckpt_slot){st[k].param, st[k].slot, st[k].data, st[k].n};
    out->name = qsnn_optim_name(opt);
    out->step = qsnn_optim_steps(opt);
    out->n_slots = n;
    out->slots = slots;
}

/* The run's history as checkpoints store it (/metrics), with room for `cap` epochs; the membrane
 * histograms are shaped like the statistics of net's layers. */
static int history_alloc(qsnn_ctx *ctx, qsnn_ckpt_history *h, int cap, const qsnn_net *net) {
    const int n_layers = net->n_layers;
    memset(h, 0, sizeof *h);
    h->n_layers = n_layers;
    const size_t n = cap > 0 ? (size_t)cap : 1;
    h->epoch = qsnn_calloc(ctx, n, sizeof *h->epoch);
    double **a[8] = {&h->train_loss,    &h->train_accuracy, &h->test_loss,   &h->test_accuracy,
                     &h->samples_per_s, &h->seconds,        &h->firing_rate, &h->test_firing_rate};
    int ok = h->epoch != NULL;
    for (int k = 0; k < 8; k++) {
        *a[k] = qsnn_calloc(ctx, k < 6 ? n : n * (size_t)n_layers, sizeof(double));
        ok = ok && *a[k];
    }
    h->test_saturated = qsnn_calloc(ctx, n * (size_t)n_layers, sizeof(double));
    ok = ok && h->test_saturated;
    for (int l = 0; l < n_layers; l++) {
        qsnn_state_stats s;
        qsnn_state_stats_init(&s, &net->layer[l]);
        h->hist_bins[l] = s.n_bins, h->hist_per_level[l] = s.per_level, h->hist_lo[l] = s.lo, h->hist_hi[l] = s.hi;
        h->membrane_hist[l] = qsnn_calloc(ctx, n * (size_t)s.n_bins, sizeof(long long));
        ok = ok && h->membrane_hist[l];
    }
    return ok ? 0 : -1;
}

/* Copies the first `upto` entries of a stored history (fewer if it has fewer; none if its layer
 * count differs) into h. */
static void history_copy(qsnn_ckpt_history *h, const qsnn_ckpt_history *from, int upto) {
    if (from->epochs <= 0 || from->n_layers != h->n_layers) return;
    const int n = from->epochs < upto ? from->epochs : upto;
    const size_t L = (size_t)h->n_layers;
    for (int i = 0; i < n; i++) {
        h->epoch[i] = from->epoch[i];
        h->train_loss[i] = from->train_loss[i];
        h->train_accuracy[i] = from->train_accuracy[i];
        h->test_loss[i] = from->test_loss[i];
        h->test_accuracy[i] = from->test_accuracy[i];
        h->samples_per_s[i] = from->samples_per_s[i];
        h->seconds[i] = from->seconds[i];
        memcpy(h->firing_rate + i * L, from->firing_rate + i * L, L * sizeof(double));
        memcpy(h->test_firing_rate + i * L, from->test_firing_rate + i * L, L * sizeof(double));
        if (from->test_saturated) memcpy(h->test_saturated + i * L, from->test_saturated + i * L, L * sizeof(double));
        for (size_t l = 0; l < L; l++) /* a stored histogram of the same shape (older files have none) */
            if (from->membrane_hist[l] && from->hist_bins[l] == h->hist_bins[l])
                memcpy(h->membrane_hist[l] + i * (size_t)h->hist_bins[l], from->membrane_hist[l] + i * (size_t)h->hist_bins[l],
                       (size_t)h->hist_bins[l] * sizeof(long long));
    }
    h->epochs = n;
}

/* Appends epoch e (1-based) to h (which has room for it). */
static void history_append(qsnn_ckpt_history *h, int e, const qsnn_metrics *tr, const qsnn_metrics *te,
                           const qsnn_trainer *trainer) {
    const int i = h->epochs++;
    const size_t L = (size_t)h->n_layers;
    h->epoch[i] = e;
    h->train_loss[i] = tr->loss;
    h->train_accuracy[i] = tr->accuracy;
    h->test_loss[i] = te->loss;
    h->test_accuracy[i] = te->accuracy;
    h->samples_per_s[i] = tr->samples_per_s;
    h->seconds[i] = tr->seconds + te->seconds;
    for (size_t l = 0; l < L; l++) {
        h->firing_rate[i * L + l] = tr->rates[l];
        h->test_firing_rate[i * L + l] = te->rates[l];
        h->test_saturated[i * L + l] = te->saturated[l];
        const qsnn_state_stats *s = qsnn_trainer_state_stats(trainer, (int)l);
        if (s->n_bins == h->hist_bins[l])
            memcpy(h->membrane_hist[l] + i * (size_t)h->hist_bins[l], s->counts, (size_t)s->n_bins * sizeof(long long));
    }
}

static void print_epoch(int e, int epochs, const qsnn_metrics *tr, const qsnn_metrics *te, int n_layers) {
    printf("epoch %d/%d  loss %.4f  train %.2f%%  test %.2f%%  %.0f samples/s  rates", e, epochs, tr->loss,
           100.0 * tr->accuracy, 100.0 * te->accuracy, tr->samples_per_s);
    for (int l = 0; l < n_layers; l++) printf(" %.4f", tr->rates[l]);
    printf("  (%.1f s)\n", tr->seconds + te->seconds);
    fflush(stdout);
}

/* Learned weight bit widths (CPQ with quant.cpq.learn_bits), one mean per layer. */
static void print_learned_bits(const qsnn_net *net) {
    int any = 0;
    for (int l = 0; l < net->n_layers; l++)
        any |= net->layer[l].wq && net->layer[l].wq->effective_bits && net->cfg.lq.cpq_learn_bits;
    if (!any) return;
    printf("  learned weight bits");
    for (int l = 0; l < net->n_layers; l++) printf(" %.2f", qsnn_layer_weight_bits(&net->layer[l]));
    printf("\n");
    fflush(stdout);
}

/* Whether any layer quantizes its weights (what = 0) or states (what = 1). */
static int any_bits(const qsnn_net *net, int what) {
    for (int l = 0; l < net->n_layers; l++)
        if (what ? net->layer[l].sq_cfg.bits : net->layer[l].wq_cfg.bits) return 1;
    return 0;
}

/* "4" when every layer has the same width, else "[8, 4]" (0 = float). */
static void bits_text(const qsnn_net *net, int what, char *buf, size_t n) {
    int same = 1;
    for (int l = 1; l < net->n_layers; l++)
        same &= (what ? net->layer[l].sq_cfg.bits : net->layer[l].wq_cfg.bits) ==
                (what ? net->layer[0].sq_cfg.bits : net->layer[0].wq_cfg.bits);
    size_t len = 0;
    for (int l = 0; l < (same ? 1 : net->n_layers) && len < n; l++)
        len += (size_t)snprintf(buf + len, n - len, "%s%d", l ? ", " : (same ? "" : "["),
                                what ? net->layer[l].sq_cfg.bits : net->layer[l].wq_cfg.bits);
    if (!same && len < n) snprintf(buf + len, n - len, "]");
}

static void print_quantizers(const qsnn_net *net) {
    const qsnn_net_cfg *m = &net->cfg;
    char bits[64];
    if (any_bits(net, 0)) {
        bits_text(net, 0, bits, sizeof bits);
        char methods[8 * QSNN_MAX_LAYERS * 34] = "";
        int same = 1;
        for (int l = 1; l < net->n_layers; l++) same &= !strcmp(net->layer[l].wq_cfg.method, net->layer[0].wq_cfg.method);
        for (int l = 0, len = 0; l < (same ? 1 : net->n_layers) && len < (int)sizeof methods; l++)
            len += snprintf(methods + len, sizeof methods - (size_t)len, "%s%s%s", l ? ", " : (same ? "" : "["),
                            net->layer[l].wq_cfg.method, !same && l == net->n_layers - 1 ? "]" : "");
        printf("  weight quantizer: %s, %s bits, %s%s\n", methods, bits,
               m->weight_quant.granularity == QSNN_WQ_PER_CHANNEL ? "per channel" : "per tensor",
               net->layer[0].wq_cfg.pow2 ? ", power-of-two scales" : "");
    }
    if (any_bits(net, 1)) {
        bits_text(net, 1, bits, sizeof bits);
        int same = 1;
        for (int l = 1; l < net->n_layers; l++) same &= net->layer[l].sq_cfg.grid == net->layer[0].sq_cfg.grid;
        if (!same) {
            printf("  state quantizer: grids");
            for (int l = 0; l < net->n_layers; l++) printf("%s%s", l ? ", " : " [", qsnn_grid_name(net->layer[l].sq_cfg.grid));
            printf("], %s bits\n", bits);
        } else if (net->layer[0].sq_cfg.grid == QSNN_GRID_FIXED_POINT)
            printf("  state quantizer: fixed_point grid, %s bits, signed integer codes x 2^e, top >= %g x threshold\n",
                   bits, 1.0 + m->state_quant.upper_limit);
        else if (qsnn_grid_learned(m->state_quant.grid))
            printf("  state quantizer: %s grid, %s bits, learned per layer (%s, %s), initially over +-%g x threshold\n",
                   qsnn_grid_name(m->state_quant.grid), bits, qsnn_state_lq_name(m->state_quant.grid, 0),
                   qsnn_state_lq_name(m->state_quant.grid, 1), 1.0 + m->state_quant.upper_limit);
        else
            printf("  state quantizer: %s grid, %s bits, range [%g, %g] x threshold\n",
                   qsnn_grid_name(net->layer[0].sq_cfg.grid), bits, -(1.0 + m->state_quant.lower_limit),
                   1.0 + m->state_quant.upper_limit);
    }
    if (qsnn_net_input_bits(m)) printf("  inputs on the grid k/2^%d\n", qsnn_net_input_bits(m));
    if (m->integer) printf("  integer-exact: `qsnn eval MODEL --integer` reproduces it spike for spike\n");
}

/* Appends ", name" (or "name") to a list of at most n bytes, "..." once it is full. */
static void list_add(char *buf, size_t n, const char *name) {
    const size_t len = strlen(buf);
    if (len + strlen(name) + 6 < n) snprintf(buf + len, n - len, "%s%s", len ? ", " : "", name);
    else if (len + 4 < n && (len < 3 || strcmp(buf + len - 3, "..."))) snprintf(buf + len, n - len, "...");
}

/* --init: the parameters of ckpt that fit into net (built from this run's configuration and initialised);
 * the weight quantizer's learned groups and the lsq state step that were not copied are set from the copied
 * weights and thresholds, as a fresh network sets them from its own. Writes the report line into msg. */
static qsnn_status init_from(qsnn_ctx *ctx, const char *ckpt, qsnn_net *net, char *msg, size_t msg_n) {
    int copied[QSNN_MAX_PARAMS];
    qsnn_status st = qsnn_checkpoint_load_matching(ctx, ckpt, net, copied);
    if (st) {
        char m[1024];
        snprintf(m, sizeof m, "%s", qsnn_last_error(ctx));
        return qsnn_fail(ctx, st, "--init %s", m);
    }
    qsnn_param list[QSNN_MAX_PARAMS];
    const int np = qsnn_net_params(net, list);
    int n_copied = 0, n_reinit = 0, n_kept = 0;
    int reinit[QSNN_MAX_PARAMS] = {0};
    char reinit_names[512] = "", kept_names[512] = "";
    for (int i = 0; i < np; i++) n_copied += copied[i];
    for (int l = 0; l < net->n_layers; l++) {
        qsnn_layer *L = &net->layer[l];
        char name[48];
        if (L->wq_learned) {
            const int ns = qsnn_weight_quant_nscales(&L->wq_cfg, L->w_rows);
            int missing = 0;
            for (int k = 0; k < L->wq->n_learned; k++) {
                snprintf(name, sizeof name, "layer%d.weight_%s", l, L->wq->learned_names[k]);
                for (int i = 0; i < np; i++)
                    if (!strcmp(list[i].name, name) && !copied[i]) missing |= 1 << k, reinit[i] = 1;
            }
            if (missing) { /* ops->init writes every group: keep the copied ones */
                const size_t total = qsnn_wq_learned_total(L->wq, &L->wq_cfg, ns);
                float *tmp = qsnn_calloc(ctx, total, sizeof(float));
                if (!tmp) return QSNN_ERR_NOMEM;
                L->wq->init(&L->wq_cfg, L->W, L->w_rows, (int)(L->nw / L->w_rows), tmp);
                for (int k = 0; k < L->wq->n_learned; k++) {
                    if (!(missing >> k & 1)) continue;
                    const size_t off = qsnn_wq_learned_offset(L->wq, &L->wq_cfg, ns, k);
                    const size_t len = (size_t)ns * (size_t)qsnn_wq_group_size(L->wq, &L->wq_cfg, k);
                    memcpy(L->wq_learned + off, tmp + off, len * sizeof(float));
                }
                qsnn_free(ctx, tmp);
            }
        }
        if (qsnn_layer_lsq_state(L)) {
            snprintf(name, sizeof name, "layer%d.state_scale", l);
            for (int i = 0; i < np; i++)
                if (!strcmp(list[i].name, name) && !copied[i]) {
                    L->state_scale = (float)qsnn_lsq_state_init(&L->sq_cfg, L->theta); /* the loaded θ */
                    reinit[i] = 1;
                }
        }
    }
    for (int i = 0; i < np; i++) {
        if (reinit[i]) n_reinit++, list_add(reinit_names, sizeof reinit_names, list[i].name);
        else if (!copied[i]) n_kept++, list_add(kept_names, sizeof kept_names, list[i].name);
    }
    if ((st = qsnn_net_prepare(net))) return st;
    int len = snprintf(msg, msg_n, "init from %s: %d tensors copied, %d re-initialised%s%s%s", ckpt, n_copied, n_reinit,
                       n_reinit ? " (" : "", reinit_names, n_reinit ? ")" : "");
    if (n_kept && len > 0 && (size_t)len < msg_n) /* e.g. per-neuron thresholds from a per-layer run */
        snprintf(msg + len, msg_n - (size_t)len, "; %d left as initialised (%s)", n_kept, kept_names);
    return QSNN_OK;
}

int qsnn_cmd_train(int argc, char **argv) {
    qsnn_common_opts o = {.epochs = -1, .threads = -1, .seed = -1};
    const char *resume = NULL, *init = NULL;
    long long stop_after = -1;
    qsnn_record_opts ro;
    qsnn_record_opts_init(&ro);
    qsnn_record_session *rs = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 0;
        }
        if (!strcmp(argv[i], "--help-config")) {
            qsnn_config_print_keys(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--init") || !strcmp(argv[i], "--stop-after")) {
            if (i + 1 >= argc) return qsnn_cli_error("train", "option %s needs a value", argv[i]), 2;
            if (!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--init")) {
                if (!*argv[i + 1]) return qsnn_cli_error("train", "%s needs a checkpoint file", argv[i]), 2;
                if (argv[i][2] == 'r') resume = argv[++i];
                else init = argv[++i];
            } else if (qsnn_cli_parse_int(argv[i + 1], 1, 100000, &stop_after)) {
                return qsnn_cli_error("train", "--stop-after %s: expected an integer in 1..100000", argv[i + 1]), 2;
            } else {
                i++;
            }
            continue;
        }
        const int rr = qsnn_record_parse_opt("train", "--record", "--record-samples", argc, argv, &i, &ro);
        if (rr < 0) return 2;
        if (rr > 0) continue;
        int r = qsnn_parse_common_opt("train", argc, argv, &i, &o);
        if (r < 0) return 2;
        if (r == 0) {
            qsnn_cli_error("train", "unknown option '%s' (see qsnn train --help)", argv[i]);
            return 2;
        }
    }
    if (resume && init)
        return qsnn_cli_error("train", "--init cannot be combined with --resume: --resume continues the run in %s, "
                                       "--init starts a new one from the parameters of %s",
                              resume, init),
               2;
    if (resume && o.config_file)
        return qsnn_cli_error("train", "--config cannot be combined with --resume: the configuration comes from %s "
                                       "(change keys with --set)",
                              resume),
               2;
    if (resume && o.seed >= 0)
        return qsnn_cli_error("train", "--seed cannot be combined with --resume: the run keeps the seed stored in %s",
                              resume),
               2;
    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, 0, 0, &ctx)) return qsnn_cli_error("train", "out of memory");
    int rc = 1;
    qsnn_config cfg, saved;
    qsnn_ckpt_meta saved_meta = {0, 0.0, 0.0, 0, NULL};
    qsnn_dataset *train = NULL, *test = NULL;
    qsnn_net *net = NULL;
    qsnn_trainer *tr = NULL;
    char *yaml = NULL, *cmdline = NULL;
    char path[QSNN_PATH_MAX + 16], err[QSNN_PATH_MAX + 128], init_msg[QSNN_PATH_MAX + 1200] = "";
    qsnn_ckpt_slot slots[QSNN_OPTIM_MAX_STATE];
    qsnn_ckpt_optim ostate;
    qsnn_ckpt_history hist, stored;
    memset(&hist, 0, sizeof hist);
    memset(&stored, 0, sizeof stored);
    qsnn_config_default(&cfg);
    if (resume) { /* the checkpoint's configuration, as qsnn eval reads it, under the overrides */
        if (qsnn_load_checkpoint_config(ctx, resume, &cfg, &saved_meta)) goto fail;
        qsnn_config_resolve(&cfg);
        saved = cfg;
        if (saved_meta.epoch < 0) {
            qsnn_cli_error("train", "--resume %s: the checkpoint's epoch attribute is %d", resume, saved_meta.epoch);
            goto done;
        }
    }
    if (qsnn_apply_common_opts(ctx, &cfg, &o)) goto fail;
    const int first = resume ? saved_meta.epoch : 0;
    if (resume) {
        if (resume_changes_frozen_key(resume, &saved, &cfg)) goto done;
        if (first >= cfg.train.epochs) {
            printf("nothing to do: %s already has %d of %d epochs\n", resume, first, cfg.train.epochs);
            rc = 0;
            goto done;
        }
    }
    const int last = stop_after > 0 && stop_after < cfg.train.epochs - first ? first + (int)stop_after
                                                                              : cfg.train.epochs;
    qsnn_ctx_set_threads(ctx, cfg.run.threads);
    qsnn_ctx_set_seed(ctx, (uint64_t)cfg.run.seed);
    if (make_dirs(cfg.run.out, err, sizeof err)) {
        qsnn_cli_error("train", "%s", err);
        goto done;
    }
    snprintf(path, sizeof path, "%s/model.h5", cfg.run.out);
    if (qsnn_load_split(ctx, &cfg, "train", &train) || qsnn_load_split(ctx, &cfg, "t10k", &test)) goto fail;
    if (qsnn_net_create(ctx, &cfg.model, &net)) goto fail;
    if (resume) {
        if (qsnn_checkpoint_load_params(ctx, resume, net)) goto fail;
    } else {
        qsnn_net_init(net, (uint64_t)cfg.run.seed);
        if (init && init_from(ctx, init, net, init_msg, sizeof init_msg)) goto fail;
    }
    if (qsnn_trainer_create(ctx, net, &cfg.train, &cfg.data, train, (uint64_t)cfg.run.seed, &tr)) goto fail;
    qsnn_optim *opt = qsnn_trainer_optim(tr);
    if (resume) {
        ckpt_optim_of(opt, slots, &ostate);
        if (qsnn_checkpoint_load_optim(ctx, resume, net, &ostate)) goto fail;
        qsnn_optim_set_steps(opt, (long)ostate.step);
    }
    /* The history of the epochs already trained (what the checkpoint has of it), then one entry per
     * epoch trained here. */
    if (history_alloc(ctx, &hist, cfg.train.epochs, net)) goto fail;
    if (resume) {
        if (qsnn_checkpoint_read_history(ctx, resume, &stored)) goto fail;
        history_copy(&hist, &stored, first);
        qsnn_checkpoint_history_free(ctx, &stored);
    }
    if (qsnn_config_dump(ctx, &cfg, &yaml)) goto fail;
    cmdline = qsnn_cli_join_args(argc, argv);
    if (qsnn_record_session_begin(ctx, &ro, cmdline, yaml, &cfg, net, test, &rs)) goto fail;

    printf("qsnn train: %d", cfg.model.n_inputs);
    for (int l = 0; l < cfg.model.n_layers; l++) printf("-%d", cfg.model.sizes[l]);
    printf(" %s, T = %d, batch %d, %s lr %g (%s), %d threads; weights %s, states %s; %lld train / %lld test samples\n",
           cfg.model.neuron, cfg.data.steps, cfg.train.batch, cfg.train.optimizer, cfg.train.lr, cfg.train.schedule,
           qsnn_ctx_threads(ctx), any_bits(net, 0) ? "quantized" : "float",
           any_bits(net, 1) ? "quantized" : "float", (long long)train->n, (long long)test->n);
    print_quantizers(net);
    if (init_msg[0]) printf("%s\n", init_msg);
    if (resume)
        printf("resuming %s: %d of %d epochs done, %ld optimizer steps\n", resume, first, cfg.train.epochs,
               qsnn_optim_steps(opt));
    fflush(stdout);

    qsnn_progress bar;
    qsnn_progress_init(&bar, cfg.run.progress);
    char label[64];
    qsnn_metrics mtr, mte;
    for (int e = first; e < last; e++) {
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
        print_learned_bits(net);
        /* After every epoch, so that an interrupted run loses at most the epoch in progress. */
        qsnn_ckpt_meta meta = {e + 1, mte.accuracy, mtr.loss, cfg.run.seed, cmdline};
        ckpt_optim_of(opt, slots, &ostate);
        history_append(&hist, e + 1, &mtr, &mte, tr);
        if (qsnn_checkpoint_save_with_history(ctx, path, net, yaml, &meta, &ostate, &hist)) goto fail;
        if (qsnn_record_session_epoch(rs, e + 1)) goto fail;
    }
    if (qsnn_record_session_finish(rs)) goto fail;
    printf("saved %s (test accuracy %.2f%%; qsnn eval %s reproduces it)\n", path, 100.0 * mte.accuracy, path);
    if (last < cfg.train.epochs)
        printf("stopped after epoch %d of %d (--stop-after %lld); continue with: qsnn train --resume %s\n", last,
               cfg.train.epochs, stop_after, path);
    rc = 0;
    goto done;
fail:
    qsnn_cli_error("train", "%s", qsnn_last_error(ctx));
done:
    qsnn_record_session_destroy(&rs);
    free(cmdline);
    qsnn_checkpoint_history_free(ctx, &hist);
    qsnn_free(ctx, yaml);
    qsnn_trainer_destroy(&tr);
    qsnn_net_destroy(&net);
    qsnn_dataset_destroy(ctx, &train);
    qsnn_dataset_destroy(ctx, &test);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
