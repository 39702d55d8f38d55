/* The resolved configuration of a run: built-in defaults, then a YAML file (--config), then
 * --set key=value overrides, then validation. Every key has one entry in a table (config_keys.c)
 * that drives YAML parsing, --set, range checks, the YAML dump stored in output files, and --help. */
#ifndef QSNN_CLI_CONFIG_H
#define QSNN_CLI_CONFIG_H

#include <stdio.h>
#include "core/context.h"
#include "datasets/data_cfg.h"
#include "sim/network.h"
#include "train/train_cfg.h"

typedef struct qsnn_run_cfg {
    int threads;             /* 0 = all cores */
    long long seed;
    char out[QSNN_PATH_MAX]; /* output folder for checkpoints */
    int progress;            /* 1 = progress bar on a terminal */
} qsnn_run_cfg;

typedef struct qsnn_config {
    qsnn_net_cfg model;
    qsnn_data_cfg data;
    qsnn_train_cfg train;
    qsnn_run_cfg run;
} qsnn_config;

/* Built-in defaults (the network of ../shared/bench/torch_lif_reference.py). */
void qsnn_config_default(qsnn_config *cfg);
/* Reads a YAML file over cfg; unknown keys, wrong types and bad values fail with file:line in the message.
 * Keys absent from the file keep their current value; on any error cfg is left unchanged. */
qsnn_status qsnn_config_load_file(qsnn_ctx *ctx, qsnn_config *cfg, const char *path);
/* Same, from YAML text (checkpoints store the resolved config this way). `what` names the source in messages. */
qsnn_status qsnn_config_load_string(qsnn_ctx *ctx, qsnn_config *cfg, const char *yaml, const char *what);
/* Applies one "a.b=c" override (model.hidden takes "[500,200]" or "500"). The value is parsed strictly
 * and range-checked; on error cfg is left unchanged and the message names the assignment. */
qsnn_status qsnn_config_set(qsnn_ctx *ctx, qsnn_config *cfg, const char *assignment);
/* Turns the "use the default" placeholders into concrete values: model.surrogate_slope = 0 becomes
 * the chosen surrogate's default slope (qsnn_surrogate.default_slope); quant.integer turns on
 * quant.weight.pow2, 8-bit inputs when quant.input.bits is 0, and the fixed_point grid in place of the
 * default uniform one. Loading and --set never
 * resolve (a later --set model.surrogate=... must still pick its own default), so callers run
 * this once after the last override, before qsnn_config_check and before building anything:
 *     qsnn_config_default(&c); load_file(...); set(...)...; qsnn_config_resolve(&c); qsnn_config_check(ctx, &c);
 * qsnn_config_check and qsnn_config_dump work on a resolved copy, so they accept either. Idempotent. */
void qsnn_config_resolve(qsnn_config *cfg);
/* Range and consistency checks over the whole configuration. */
qsnn_status qsnn_config_check(qsnn_ctx *ctx, const qsnn_config *cfg);
/* The resolved configuration as YAML text (loadable by qsnn_config_load_string, every key, floats in the
 * shortest form that reads back to the same bits, so dump -> load gives an identical struct).
 * Caller frees with qsnn_free. */
qsnn_status qsnn_config_dump(qsnn_ctx *ctx, const qsnn_config *cfg, char **yaml);
/* Key reference for --help: one line per key with type, default and description. */
void qsnn_config_print_keys(FILE *f);

#endif
