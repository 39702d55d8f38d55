#include "cli/commands.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qsnn_cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "qsnn %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

char *qsnn_cli_join_args(int argc, char **argv) {
    size_t len = 1;
    for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
    char *s = malloc(len);
    if (!s) return NULL;
    s[0] = 0;
    for (int i = 0; i < argc; i++) {
        if (i) strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

int qsnn_cli_parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int qsnn_cli_take_model(const char *cmd, const char *arg, const char **model) {
    if (arg[0] == '-') return qsnn_cli_error(cmd, "unknown option '%s' (see qsnn %s --help)", arg, cmd);
    if (*model) return qsnn_cli_error(cmd, "one model at a time ('%s' and '%s')", *model, arg);
    *model = arg;
    return 0;
}

int qsnn_cli_parse_positive(const char *s, double *out) {
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || !isfinite(v)) return -1;
    *out = v;
    return 0;
}
