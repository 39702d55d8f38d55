/* qsnn config: the resolved configuration as YAML (a starting point for --config files), or the
 * key reference. */
#include "cli/commands.h"
#include "cli/run_setup.h"

#include <stdio.h>
#include <string.h>

int qsnn_cmd_config(int argc, char **argv) {
    qsnn_common_opts o = {.epochs = -1, .threads = -1, .seed = -1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qsnn config [--keys] [--config FILE] [--set KEY=VALUE]...\n\n"
                   "Prints the resolved configuration as YAML (defaults, then FILE, then --set), or\n"
                   "with --keys every key with its type, default and meaning.\n");
            return 0;
        }
        if (!strcmp(argv[i], "--keys")) {
            qsnn_config_print_keys(stdout);
            return 0;
        }
        int r = qsnn_parse_common_opt("config", argc, argv, &i, &o);
        if (r < 0) return 2;
        if (r == 0) return qsnn_cli_error("config", "unknown option '%s' (see qsnn config --help)", argv[i]), 2;
    }
    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, 1, 0, &ctx)) return qsnn_cli_error("config", "out of memory");
    qsnn_config cfg;
    char *yaml = NULL;
    int rc = 0;
    qsnn_config_default(&cfg);
    if (qsnn_apply_common_opts(ctx, &cfg, &o) || qsnn_config_dump(ctx, &cfg, &yaml))
        rc = qsnn_cli_error("config", "%s", qsnn_last_error(ctx));
    else
        fputs(yaml, stdout);
    qsnn_free(ctx, yaml);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
