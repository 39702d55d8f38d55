/* Steps shared by the commands that run a network: options to a resolved configuration, the
 * context, the datasets. */
#ifndef QSNN_CLI_RUN_SETUP_H
#define QSNN_CLI_RUN_SETUP_H

#include "cli/config.h"
#include "datasets/idx.h"
#include "io/checkpoint.h"

/* Options every running command accepts. A value < 0 / "" means "not given". */
typedef struct qsnn_common_opts {
    const char *config_file;
    const char *sets[256];
    int n_sets;
    long long epochs, threads, seed;
    const char *out, *data;
    int no_progress;
} qsnn_common_opts;

/* Tries to consume argv[*i] (and its value) as a common option. Returns 1 if consumed, 0 if not
 * a common option, -1 on a usage error (message printed). */
int qsnn_parse_common_opt(const char *cmd, int argc, char **argv, int *i, qsnn_common_opts *o);
/* Applies the options over cfg (file first, then --set and flags in order) and validates. */
qsnn_status qsnn_apply_common_opts(qsnn_ctx *ctx, qsnn_config *cfg, const qsnn_common_opts *o);
/* The configuration and metadata stored in a checkpoint, loaded over defaults (not yet resolved
 * or checked, so callers can apply overrides first). */
qsnn_status qsnn_load_checkpoint_config(qsnn_ctx *ctx, const char *path, qsnn_config *cfg, qsnn_ckpt_meta *meta);
/* Everything a command needs to run a saved model: its stored configuration (with data.dir replaced
 * by data_dir when not NULL), resolved and checked, and the network with the stored parameters.
 * On error *net is NULL and the context holds the message. Caller destroys *net. */
qsnn_status qsnn_open_model(qsnn_ctx *ctx, const char *path, const char *data_dir, qsnn_config *cfg,
                            qsnn_ckpt_meta *meta, qsnn_net **net);
/* Loads a split, checks it against the model's input and output sizes. */
qsnn_status qsnn_load_split(qsnn_ctx *ctx, const qsnn_config *cfg, const char *split, qsnn_dataset **out);

#endif
