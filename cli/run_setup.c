#include "cli/run_setup.h"
#include "cli/commands.h"
#include "datasets/encoder.h"

#include <stdio.h>
#include <string.h>

static int need_value(const char *cmd, int argc, char **argv, int i) {
    if (i + 1 >= argc) {
        qsnn_cli_error(cmd, "option %s needs a value", argv[i]);
        return 0;
    }
    return 1;
}

int qsnn_parse_common_opt(const char *cmd, int argc, char **argv, int *i, qsnn_common_opts *o) {
    const char *a = argv[*i];
    long long v;
    if (!strcmp(a, "--no-progress")) {
        o->no_progress = 1;
        return 1;
    }
    const int is_config = !strcmp(a, "--config"), is_set = !strcmp(a, "--set");
    const int is_epochs = !strcmp(a, "--epochs"), is_threads = !strcmp(a, "--threads");
    const int is_seed = !strcmp(a, "--seed"), is_out = !strcmp(a, "--out"), is_data = !strcmp(a, "--data");
    if (!(is_config || is_set || is_epochs || is_threads || is_seed || is_out || is_data)) return 0;
    if (!need_value(cmd, argc, argv, *i)) return -1;
    const char *val = argv[++*i];
    if (is_config) o->config_file = val;
    else if (is_set) {
        if (o->n_sets == (int)(sizeof o->sets / sizeof *o->sets)) {
            qsnn_cli_error(cmd, "too many --set options");
            return -1;
        }
        o->sets[o->n_sets++] = val;
    } else if (is_out) o->out = val;
    else if (is_data) o->data = val;
    else {
        const long long lo = is_epochs ? 1 : 0, hi = is_threads ? 1024 : (is_epochs ? 100000 : (1LL << 62));
        if (qsnn_cli_parse_int(val, lo, hi, &v)) {
            qsnn_cli_error(cmd, "%s %s: expected an integer in %lld..%lld", a, val, lo, hi);
            return -1;
        }
        if (is_epochs) o->epochs = v;
        else if (is_threads) o->threads = v;
        else o->seed = v;
    }
    return 1;
}

static qsnn_status set_fmt(qsnn_ctx *ctx, qsnn_config *cfg, const char *key, const char *val) {
    char buf[QSNN_PATH_MAX + 64];
    int n = snprintf(buf, sizeof buf, "%s=%s", key, val);
    if (n < 0 || (size_t)n >= sizeof buf) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: value too long", key);
    return qsnn_config_set(ctx, cfg, buf);
}

qsnn_status qsnn_apply_common_opts(qsnn_ctx *ctx, qsnn_config *cfg, const qsnn_common_opts *o) {
    qsnn_status st = QSNN_OK;
    char num[32];
    if (o->config_file && (st = qsnn_config_load_file(ctx, cfg, o->config_file))) return st;
    for (int i = 0; i < o->n_sets; i++)
        if ((st = qsnn_config_set(ctx, cfg, o->sets[i]))) return st;
    if (o->epochs >= 0) {
        snprintf(num, sizeof num, "%lld", o->epochs);
        if ((st = set_fmt(ctx, cfg, "train.epochs", num))) return st;
    }
    if (o->threads >= 0) {
        snprintf(num, sizeof num, "%lld", o->threads);
        if ((st = set_fmt(ctx, cfg, "run.threads", num))) return st;
    }
    if (o->seed >= 0) {
        snprintf(num, sizeof num, "%lld", o->seed);
        if ((st = set_fmt(ctx, cfg, "run.seed", num))) return st;
    }
    if (o->out && (st = set_fmt(ctx, cfg, "run.out", o->out))) return st;
    if (o->data && (st = set_fmt(ctx, cfg, "data.dir", o->data))) return st;
    if (o->no_progress && (st = set_fmt(ctx, cfg, "run.progress", "false"))) return st;
    qsnn_config_resolve(cfg);
    return qsnn_config_check(ctx, cfg);
}

qsnn_status qsnn_load_checkpoint_config(qsnn_ctx *ctx, const char *path, qsnn_config *cfg, qsnn_ckpt_meta *meta) {
    char *yaml = NULL;
    char what[QSNN_PATH_MAX + 16];
    qsnn_config_default(cfg);
    qsnn_status st = qsnn_checkpoint_read_meta(ctx, path, meta);
    if (!st) st = qsnn_checkpoint_read_config(ctx, path, &yaml);
    if (!st) {
        snprintf(what, sizeof what, "%s:config", path);
        st = qsnn_config_load_string(ctx, cfg, yaml, what);
    }
    qsnn_free(ctx, yaml);
    return st;
}

qsnn_status qsnn_open_model(qsnn_ctx *ctx, const char *path, const char *data_dir, qsnn_config *cfg,
                            qsnn_ckpt_meta *meta, qsnn_net **net) {
    *net = NULL;
    qsnn_status st = qsnn_load_checkpoint_config(ctx, path, cfg, meta);
    if (st) return st;
    if (data_dir) snprintf(cfg->data.dir, sizeof cfg->data.dir, "%s", data_dir);
    qsnn_config_resolve(cfg);
    if ((st = qsnn_config_check(ctx, cfg))) return st;
    if ((st = qsnn_net_create(ctx, &cfg->model, net))) return st;
    if ((st = qsnn_checkpoint_load_params(ctx, path, *net))) qsnn_net_destroy(net);
    return st;
}

qsnn_status qsnn_load_split(qsnn_ctx *ctx, const qsnn_config *cfg, const char *split, qsnn_dataset **out) {
    const int limit = strcmp(split, "train") == 0 ? cfg->data.train_limit : cfg->data.test_limit;
    qsnn_status st = qsnn_dataset_load(ctx, cfg->data.dir, split, limit, out);
    if (st) return st;
    const qsnn_dataset *ds = *out;
    const int C = cfg->model.sizes[cfg->model.n_layers - 1];
    const qsnn_encoder_ops *enc = qsnn_encoder_find(cfg->data.encoding);
    if (enc && enc->split_steps && ds->features != cfg->model.n_inputs * cfg->data.steps)
        st = qsnn_fail(ctx, QSNN_ERR_MISMATCH,
                       "%s/%s: samples have %d features; data.encoding = %s feeds model.inputs = %d per step over "
                       "data.steps = %d, which reads %d",
                       cfg->data.dir, split, ds->features, enc->name, cfg->model.n_inputs, cfg->data.steps,
                       cfg->model.n_inputs * cfg->data.steps);
    else if (!(enc && enc->split_steps) && ds->features != cfg->model.n_inputs)
        st = qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s/%s: samples have %d features, model.inputs is %d", cfg->data.dir,
                       split, ds->features, cfg->model.n_inputs);
    else if (ds->n_classes > C)
        st = qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s/%s: labels go up to %d, model.outputs is %d", cfg->data.dir, split,
                       ds->n_classes - 1, C);
    if (st) qsnn_dataset_destroy(ctx, out);
    return st;
}
