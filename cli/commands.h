/* The qsnn subcommands. Each returns the process exit status: 0 ok, 1 failure, 2 usage error. */
#ifndef QSNN_CLI_COMMANDS_H
#define QSNN_CLI_COMMANDS_H

typedef struct qsnn_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} qsnn_command;

int qsnn_cmd_train(int argc, char **argv);
int qsnn_cmd_eval(int argc, char **argv);
int qsnn_cmd_config(int argc, char **argv);
int qsnn_cmd_quantize(int argc, char **argv);
int qsnn_cmd_simulate(int argc, char **argv);
int qsnn_cmd_export(int argc, char **argv);
int qsnn_cmd_import(int argc, char **argv);
int qsnn_cmd_record(int argc, char **argv);
int qsnn_cmd_plot(int argc, char **argv);
int qsnn_cmd_compare(int argc, char **argv);

/* Reports an error as one line "qsnn CMD: message" on stderr; returns 1. */
int qsnn_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The whole command line, for output files. Caller frees with free(). */
char *qsnn_cli_join_args(int argc, char **argv);
/* The one positional argument (MODEL) of a command: an unknown option ('-x') or a second positional
 * argument is a usage error. Returns 0, or nonzero after printing the one-line message. */
int qsnn_cli_take_model(const char *cmd, const char *arg, const char **model);
/* Parses a finite number > 0 strictly (the whole string); returns 0 on success. */
int qsnn_cli_parse_positive(const char *s, double *out);
/* Parses a non-negative integer option value strictly; returns 0 on success. */
int qsnn_cli_parse_int(const char *s, long long lo, long long hi, long long *out);

#endif
