/* The end-to-end harness of the tests that run the qsnn program: a temporary folder per test, the
 * binary run through a shell with stdout and stderr captured, files read back. Each test file that
 * includes it gets its own static copy (QSNN_BIN comes from CMake). */
#ifndef QSNN_TESTS_CLI_HARNESS_H
#define QSNN_TESTS_CLI_HARNESS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];
static char *out_text, *err_text; /* of the last run() */

/* mkdtemp /tmp/qsnn_test_NAME_XXXXXX. */
static inline void harness_setup(const char *name) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qsnn_test_%s_XXXXXX", name);
    cr_assert_not_null(mkdtemp(tmpdir));
    out_text = err_text = NULL;
}

static inline void harness_teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
}

/* tmpdir/name, in a rotating set of static buffers. */
static inline const char *tpath(const char *name) {
    static char bufs[8][512];
    static int k;
    char *p = bufs[k++ % 8];
    snprintf(p, sizeof bufs[0], "%s/%s", tmpdir, name);
    return p;
}

/* The whole file as a NUL-terminated string (caller frees). */
static inline char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap *= 2;
            s = realloc(s, cap);
            cr_assert_not_null(s);
        }
        const size_t r = fread(s + n, 1, 4096, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    s[n] = 0;
    return s;
}

/* Runs `qsnn ARGS` (ARGS pasted into a shell command line as is; in folder `cwd` when not NULL) with
 * stdout and stderr captured; returns the exit status, with the output in out_text / err_text. */
static inline int run_in(const char *cwd, const char *fmt, va_list ap) {
    char args[4096], cmd[8192];
    const int n = vsnprintf(args, sizeof args, fmt, ap);
    cr_assert(n >= 0 && (size_t)n < sizeof args, "command line too long");
    snprintf(cmd, sizeof cmd, "%s%s%s'%s' %s </dev/null >'%s' 2>'%s'", cwd ? "cd '" : "", cwd ? cwd : "",
             cwd ? "' && " : "", QSNN_BIN, args, tpath(".stdout"), tpath(".stderr"));
    const int st = system(cmd);
    cr_assert(st != -1, "system() failed: %s", strerror(errno));
    free(out_text);
    free(err_text);
    out_text = slurp(tpath(".stdout"));
    err_text = slurp(tpath(".stderr"));
    unlink(tpath(".stdout"));
    unlink(tpath(".stderr"));
    cr_assert(WIFEXITED(st), "qsnn %s: killed by a signal (status 0x%x); stderr: %s", args, st, err_text);
    return WEXITSTATUS(st);
}

static inline __attribute__((format(printf, 1, 2))) int run(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int rc = run_in(NULL, fmt, ap);
    va_end(ap);
    return rc;
}

static inline int count_char(const char *s, char c) {
    int k = 0;
    for (; *s; s++) k += *s == c;
    return k;
}

#endif
