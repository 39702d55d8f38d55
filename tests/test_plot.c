/* qsnn plot end to end: every kind renders to PNG and SVG (valid signatures, sane sizes), and bad
 * input gives one line on stderr and no picture. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA_DIR "/usr/share/datasets/fashion-mnist"
#define TINY                                                                                                    \
    "--set data.train_limit=1024 --set data.test_limit=512 --set model.hidden=64 --set data.steps=8 "         \
    "--no-progress --epochs 1 --set quant.weight.bits=4 --set quant.state.bits=4"

static char tmpdir[64];
static char *err_text;

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qsnn_test_plot_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    err_text = NULL;
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    free(err_text);
}

TestSuite(plot, .init = setup, .fini = teardown, .timeout = 120);

static const char *tpath(const char *name) {
    static char bufs[8][512];
    static int k;
    char *p = bufs[k++ % 8];
    snprintf(p, sizeof bufs[0], "%s/%s", tmpdir, name);
    return p;
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    s[n] = 0;
    if (len) *len = (size_t)n;
    return s;
}

static int run(const char *fmt, ...) {
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s </dev/null >/dev/null 2>'%s'", QSNN_BIN, args, tpath(".stderr"));
    const int st = system(cmd);
    free(err_text);
    err_text = (char *)slurp(tpath(".stderr"), NULL);
    cr_assert(WIFEXITED(st), "qsnn %s: killed by a signal; stderr: %s", args, err_text);
    return WEXITSTATUS(st);
}

/* Trains a tiny quantized model and records 12 samples of it into tmpdir/t.h5. */
static const char *make_trace(void) {
    if (access(DATA_DIR "/t10k-images-idx3-ubyte.gz", R_OK) != 0 && access(DATA_DIR "/t10k-images-idx3-ubyte", R_OK))
        cr_skip_test("Fashion-MNIST not found in " DATA_DIR);
    cr_assert_eq(run("train " TINY " --out '%s'", tpath("m")), 0, "%s", err_text);
    static char t[512];
    snprintf(t, sizeof t, "%s", tpath("t.h5"));
    cr_assert_eq(run("record '%s/model.h5' --samples 12 --out '%s'", tpath("m"), t), 0, "%s", err_text);
    return t;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void check_png(const char *path) {
    size_t n;
    unsigned char *d = slurp(path, &n);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    cr_assert_gt(n, 33 + 12, "%s: %zu bytes", path, n);
    cr_assert_eq(memcmp(d, sig, 8), 0, "%s: no PNG signature", path);
    cr_assert_eq(be32(d + 8), 13, "%s: IHDR length", path);
    cr_assert_eq(memcmp(d + 12, "IHDR", 4), 0, "%s: first chunk is not IHDR", path);
    const uint32_t w = be32(d + 16), h = be32(d + 20);
    cr_assert(w >= 200 && w <= 4000 && h >= 200 && h <= 4000, "%s: %ux%u pixels", path, w, h);
    cr_assert_eq(memcmp(d + n - 8, "IEND", 4), 0, "%s: does not end with IEND", path);
    free(d);
}

static void check_svg(const char *path) {
    size_t n;
    char *d = (char *)slurp(path, &n);
    cr_assert_gt(n, 200, "%s: %zu bytes", path, n);
    const char *p = d;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    cr_assert(!strncmp(p, "<?xml", 5) || !strncmp(p, "<svg", 4), "%s: not XML", path);
    const char *root = strstr(d, "<svg");
    cr_assert_not_null(root, "%s: no <svg> root", path);
    cr_assert(root[4] == ' ' || root[4] == '>' || root[4] == '\n', "%s: <svg> root malformed", path);
    const char *end = strstr(d, "</svg>");
    cr_assert_not_null(end, "%s: <svg> not closed", path);
    for (const char *q = end + 6; *q; q++) cr_assert(*q == ' ' || *q == '\n' || *q == '\r', "%s: text after </svg>", path);
    /* tags balance: as many '<' as '>' */
    long lt = 0, gt = 0;
    for (const char *q = d; *q; q++) lt += *q == '<', gt += *q == '>';
    cr_assert_eq(lt, gt, "%s: unbalanced tags", path);
    free(d);
}

Test(plot, every_kind_renders_png_and_svg) {
    const char *t = make_trace();
    static const char *const kinds[4] = {"raster", "membrane", "hist", "rates"};
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < 2; l++) {
            char png[64], svg[64];
            snprintf(png, sizeof png, "%s_%d.png", kinds[k], l);
            snprintf(svg, sizeof svg, "%s_%d.svg", kinds[k], l);
            cr_assert_eq(run("plot '%s' --kind %s --layer %d --sample 3 --out '%s'", t, kinds[k], l, tpath(png)), 0,
                         "%s", err_text);
            check_png(tpath(png));
            cr_assert_eq(run("plot '%s' --kind %s --layer %d --out '%s'", t, kinds[k], l, tpath(svg)), 0, "%s",
                         err_text);
            check_svg(tpath(svg));
        }
    /* nothing but the pictures, the trace and the model folder */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls '%s' | grep tmp)\"", tmpdir);
    cr_assert_eq(system(cmd), 0, "a temporary file was left behind");
}

static int count_char(const char *s, char c) {
    int k = 0;
    for (; *s; s++) k += *s == c;
    return k;
}

static void expect_fail(int rc, int want, const char *needle, const char *out) {
    cr_assert_eq(rc, want, "exit %d, expected %d: %s", rc, want, err_text);
    cr_assert(count_char(err_text, '\n') == 1 && !strncmp(err_text, "qsnn plot: ", 11), "not one line: [%s]", err_text);
    cr_assert(strstr(err_text, needle), "[%s] lacks '%s'", err_text, needle);
    cr_assert_neq(access(out, F_OK), 0, "%s was written", out);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls '%s' | grep tmp)\"", tmpdir);
    cr_assert_eq(system(cmd), 0, "a temporary file was left behind");
}

Test(plot, bad_input_one_line_and_no_file) {
    const char *t = make_trace();
    char o[512], jpg[512];
    snprintf(o, sizeof o, "%s", tpath("x.png"));
    snprintf(jpg, sizeof jpg, "%s", tpath("x.jpg"));
    expect_fail(run("plot '%s' --kind raster --out '%s'", tpath("none.h5"), o), 1, "none.h5", o);
    expect_fail(run("plot '%s/model.h5' --kind raster --out '%s'", tpath("m"), o), 1, "not a qsnn trace file", o);
    expect_fail(run("plot '%s' --kind pie --out '%s'", t, o), 2, "--kind pie: unknown", o);
    expect_fail(run("plot '%s' --kind raster --layer 2 --out '%s'", t, o), 1, "layer 2 does not exist", o);
    expect_fail(run("plot '%s' --kind membrane --sample 12 --out '%s'", t, o), 1, "sample 12 does not exist", o);
    expect_fail(run("plot '%s' --kind raster --out '%s'", t, jpg), 1, "must end in .png or .svg", jpg);
    expect_fail(run("plot '%s' --kind raster", t), 2, "--out", o);
    expect_fail(run("plot '%s' --kind raster --out '%s/no/dir/x.png'", t, tmpdir), 1, "cannot create", o);
    expect_fail(run("plot '%s' --kind raster --epoch 2 --out '%s'", t, o), 1, "no recording epoch_2", o);
    cr_assert_eq(run("record '%s/model.h5' --samples 4 --neurons none --out '%s'", tpath("m"), tpath("n.h5")), 0, "%s",
                 err_text);
    expect_fail(run("plot '%s' --kind hist --layer 1 --out '%s'", tpath("n.h5"), o), 1, "no membranes were recorded", o);
}
