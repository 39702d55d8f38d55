/* The qsnn program end to end: run the built binary through a shell, capture stdout and stderr in
 * files, and check exit statuses, the output lines, the files written and the one-line error
 * reports on bad input. */
#include "cli_harness.h"
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DATA_DIR "/usr/share/datasets/fashion-mnist"
/* A run small enough for a second or so on 2 cores. */
#define TINY_SETS                                                                                          \
    "--set data.train_limit=1024 --set data.test_limit=512 --set model.hidden=64 --set data.steps=8 "      \
    "--no-progress"
#define TINY TINY_SETS " --epochs 1"

static const char *split_files[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                     "t10k-labels-idx1-ubyte"};


static void setup(void) { harness_setup("cli"); }
static void teardown(void) { harness_teardown(); }

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers -------------------------------------------------------------------------------- */

/* Bad input: a nonzero exit status and exactly one stderr line containing every needle. */
static void assert_fails_one_line(int rc, const char *what, const char *const *needles) {
    cr_assert_neq(rc, 0, "%s: exit status 0 on bad input; stdout: %s", what, out_text);
    const size_t len = strlen(err_text);
    cr_assert(len > 1 && err_text[len - 1] == '\n' && count_char(err_text, '\n') == 1,
              "%s: stderr is not exactly one line: [%s]", what, err_text);
    for (; *needles; needles++)
        cr_assert(strstr(err_text, *needles) != NULL, "%s: the message [%.*s] does not name '%s'", what,
                  (int)len - 1, err_text, *needles);
}
#define ASSERT_FAILS(rc, what, ...) assert_fails_one_line((rc), (what), (const char *const[]){__VA_ARGS__, NULL})

static int have_data(void) {
    char p[512];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s.gz", DATA_DIR, split_files[i]);
        if (access(p, R_OK) != 0) return 0;
    }
    return 1;
}
#define NEED_DATA()                                                                 \
    do {                                                                            \
        if (!have_data()) cr_skip_test("Fashion-MNIST not found in " DATA_DIR); \
    } while (0)

/* The line of text starting with prefix (a copy, without its newline), or NULL; *count gets the
 * number of such lines. */
static char *find_line(const char *text, const char *prefix, int *count) {
    char *found = NULL;
    int k = 0;
    const size_t pl = strlen(prefix);
    for (const char *s = text; *s;) {
        const char *e = strchr(s, '\n');
        const size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len >= pl && !strncmp(s, prefix, pl)) {
            if (!found) found = strndup(s, len);
            k++;
        }
        s += len + (e ? 1 : 0);
    }
    if (count) *count = k;
    return found;
}

/* The whitespace-separated token after the token `key` in line, copied into out. */
static int token_after(const char *line, const char *key, char *out, size_t cap) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", line);
    char *save = NULL;
    int next = 0;
    for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (next) {
            snprintf(out, cap, "%s", t);
            return 0;
        }
        next = !strcmp(t, key);
    }
    return -1;
}

/* The epoch line without what depends on timing: the number before "samples/s" and the "(N s)"
 * tail are dropped, everything else (epoch, loss, train, test, rates) kept. */
static void epoch_fields(const char *line, char *out, size_t cap) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", line);
    const char *tok[64];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, " \t", &save); t && n < 64; t = strtok_r(NULL, " \t", &save)) tok[n++] = t;
    out[0] = 0;
    int saw_speed = 0;
    for (int i = 0; i < n; i++) {
        if (tok[i][0] == '(') break;
        if (i + 1 < n && !strcmp(tok[i + 1], "samples/s")) {
            saw_speed = 1;
            continue;
        }
        strncat(out, tok[i], cap - strlen(out) - 1);
        strncat(out, " ", cap - strlen(out) - 1);
    }
    cr_assert(saw_speed, "no samples/s field in [%s]", line);
}

/* Trains the tiny model into tmpdir/name and returns the checkpoint path. */
static const char *train_tiny(const char *name, const char *extra) {
    static char model[512];
    const int rc = run("train " TINY " --out '%s' %s", tpath(name), extra ? extra : "");
    cr_assert_eq(rc, 0, "tiny training run failed (%d): %s", rc, err_text);
    snprintf(model, sizeof model, "%s/model.h5", tpath(name));
    cr_assert_eq(access(model, R_OK), 0, "%s was not written", model);
    return model;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static void copy_file(const char *from, const char *to) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

static void truncate_half(const char *path) {
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert(sb.st_size > 16);
    cr_assert_eq(truncate(path, sb.st_size / 2), 0, "truncate %s: %s", path, strerror(errno));
}

/* ---- 1. help and command dispatch ----------------------------------------------------------- */

Test(cli, help_lists_commands) {
    cr_assert_eq(run("--help"), 0);
    cr_expect_str_empty(err_text);
    for (const char *const *c = (const char *const[]){"train", "eval", "config", NULL}; *c; c++) {
        char want[32];
        snprintf(want, sizeof want, "  %s ", *c); /* the command table's indented entry */
        cr_expect(strstr(out_text, want) != NULL, "qsnn --help does not list '%s':\n%s", *c, out_text);
    }
}

Test(cli, train_help_mentions_options) {
    cr_assert_eq(run("train --help"), 0);
    cr_expect(strstr(out_text, "--set") != NULL, "qsnn train --help lacks --set:\n%s", out_text);
    cr_expect(strstr(out_text, "--config") != NULL, "qsnn train --help lacks --config:\n%s", out_text);
}

Test(cli, unknown_command) {
    const int rc = run("bogus");
    cr_assert_eq(rc, 2, "qsnn bogus: exit status %d, expected 2", rc);
    ASSERT_FAILS(rc, "qsnn bogus", "bogus");
}

Test(cli, no_command_is_usage_error) {
    const int rc = run("%s", "");
    cr_assert_eq(rc, 2, "qsnn without a command: exit status %d, expected 2", rc);
    cr_expect_str_empty(out_text);
}

Test(cli, unknown_train_option) {
    const int rc = run("train --frobnicate");
    cr_assert_eq(rc, 2);
    ASSERT_FAILS(rc, "train --frobnicate", "--frobnicate");
}

/* ---- 2. train, then eval, end to end -------------------------------------------------------- */

Test(cli, train_then_eval) {
    NEED_DATA();
    const char *dir = tpath("run");
    int rc = run("train " TINY " --out '%s'", dir);
    cr_assert_eq(rc, 0, "train failed (%d): %s", rc, err_text);
    cr_expect_str_empty(err_text, "a successful run wrote to stderr: %s", err_text);

    int n_epoch = 0, n_saved = 0;
    char *epoch = find_line(out_text, "epoch 1/1", &n_epoch);
    cr_assert_eq(n_epoch, 1, "expected exactly one 'epoch 1/1' line, found %d:\n%s", n_epoch, out_text);
    cr_assert(strstr(epoch, "test") && strstr(epoch, "samples/s"), "epoch line lacks fields: %s", epoch);
    char *saved = find_line(out_text, "saved ", &n_saved);
    cr_assert_eq(n_saved, 1, "expected one 'saved ' line:\n%s", out_text);

    /* The folder holds the checkpoint and nothing else (no temporary files left behind). */
    char model[512];
    snprintf(model, sizeof model, "%s/model.h5", dir);
    struct stat sb;
    cr_assert_eq(stat(model, &sb), 0, "%s missing", model);
    cr_assert(S_ISREG(sb.st_mode) && sb.st_size > 0);
    cr_assert(strstr(saved, model) != NULL, "the saved line does not name %s: %s", model, saved);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n_files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n_files++;
        cr_expect_str_eq(e->d_name, "model.h5", "unexpected file %s/%s", dir, e->d_name);
    }
    closedir(d);
    cr_assert_eq(n_files, 1);

    char train_acc[64], saved_acc[64], eval_acc[64];
    cr_assert_eq(token_after(epoch, "test", train_acc, sizeof train_acc), 0, "no test accuracy in: %s", epoch);
    cr_assert_eq(token_after(saved, "accuracy", saved_acc, sizeof saved_acc), 0, "no accuracy in: %s", saved);
    cr_assert(strchr(train_acc, '%') != NULL, "test accuracy '%s' is not a percentage", train_acc);
    /* the saved line writes "(test accuracy 33.40%;" */
    saved_acc[strcspn(saved_acc, ";)")] = 0;
    cr_expect_str_eq(saved_acc, train_acc);

    rc = run("eval '%s' --no-progress", model);
    cr_assert_eq(rc, 0, "eval failed (%d): %s", rc, err_text);
    cr_expect_str_empty(err_text);
    cr_assert(strstr(out_text, "matches the accuracy recorded at training") != NULL, "eval output:\n%s", out_text);
    cr_assert_eq(token_after(out_text, "accuracy", eval_acc, sizeof eval_acc), 0, "no accuracy in:\n%s", out_text);
    cr_assert_str_eq(eval_acc, train_acc, "train reported test %s, eval %s", train_acc, eval_acc);
    free(epoch);
    free(saved);
}

/* ---- 3. determinism across thread counts ---------------------------------------------------- */

Test(cli, same_result_with_1_and_2_threads) {
    NEED_DATA();
    char fields[2][1024];
    for (int k = 0; k < 2; k++) {
        const int rc = run("train " TINY " --seed 7 --threads %d --out '%s'", k + 1, tpath(k ? "t2" : "t1"));
        cr_assert_eq(rc, 0, "train --threads %d failed (%d): %s", k + 1, rc, err_text);
        int n = 0;
        char *line = find_line(out_text, "epoch 1/1", &n);
        cr_assert_eq(n, 1, "--threads %d: no single epoch line:\n%s", k + 1, out_text);
        epoch_fields(line, fields[k], sizeof fields[k]);
        cr_assert(strstr(fields[k], "loss") && strstr(fields[k], "rates"), "epoch line: %s", line);
        free(line);
    }
    cr_assert_str_eq(fields[0], fields[1], "1 thread and 2 threads differ:\n  %s\n  %s", fields[0], fields[1]);
}

/* ---- 4. bad input: nonzero exit and one stderr line naming the culprit ------------------------ */

Test(cli, config_file_missing) {
    const char *p = tpath("nope.yaml");
    ASSERT_FAILS(run("train --config '%s'", p), "--config missing file", p);
    cr_expect_str_empty(out_text);
}

Test(cli, config_file_unknown_key) {
    const char *p = tpath("badkey.yaml");
    const char text[] = "# a config\ntrain:\n  lr: 0.001\n  lrr: 2\n";
    write_bytes(p, text, strlen(text));
    ASSERT_FAILS(run("train --config '%s'", p), "yaml with unknown key", "badkey.yaml", "4", "lrr");
    /* the line number as file:line, not some other 4 in the message */
    cr_expect(strstr(err_text, "badkey.yaml:4") != NULL || strstr(err_text, "line 4") != NULL,
              "line number 4 not given: %s", err_text);
}

Test(cli, config_file_wrong_type) {
    const char *p = tpath("badtype.yaml");
    const char text[] = "train:\n  lr: abc\n";
    write_bytes(p, text, strlen(text));
    ASSERT_FAILS(run("train --config '%s'", p), "yaml with lr: abc", "badtype.yaml", "lr", "abc");
}

Test(cli, set_unknown_key) {
    ASSERT_FAILS(run("train --set train.lrr=1"), "--set train.lrr=1", "train.lrr");
}

Test(cli, set_out_of_range) {
    ASSERT_FAILS(run("train --set train.lr=-1"), "--set train.lr=-1", "train.lr");
    ASSERT_FAILS(run("train --set quant.state.bits=17"), "--set quant.state.bits=17", "quant.state.bits");
    ASSERT_FAILS(run("train --set train.batch=-5"), "--set train.batch=-5", "train.batch");
    ASSERT_FAILS(run("train --set model.beta=nan"), "--set model.beta=nan", "model.beta");
    ASSERT_FAILS(run("config --set train.lr=-1"), "config --set train.lr=-1", "train.lr");
}

Test(cli, set_without_equals) {
    ASSERT_FAILS(run("train --set train.lr"), "--set train.lr", "train.lr");
}

Test(cli, bad_epochs) {
    ASSERT_FAILS(run("train --epochs 0"), "--epochs 0", "--epochs");
    ASSERT_FAILS(run("train --epochs abc"), "--epochs abc", "--epochs", "abc");
    ASSERT_FAILS(run("train --epochs"), "--epochs without value", "--epochs");
}

Test(cli, data_dir_missing) {
    ASSERT_FAILS(run("train " TINY " --out '%s' --data /nonexistent/dir", tpath("run")), "--data /nonexistent/dir",
                 "/nonexistent/dir");
    cr_expect(strstr(out_text, "epoch") == NULL, "trained without data?\n%s", out_text);
}

Test(cli, data_truncated_gzip) {
    NEED_DATA();
    const char *data = tpath("data");
    cr_assert_eq(mkdir(data, 0777), 0);
    char from[512], to[512];
    for (int i = 0; i < 4; i++) {
        snprintf(from, sizeof from, "%s/%s.gz", DATA_DIR, split_files[i]);
        snprintf(to, sizeof to, "%s/%s.gz", data, split_files[i]);
        copy_file(from, to);
    }
    snprintf(to, sizeof to, "%s/t10k-images-idx3-ubyte.gz", data);
    truncate_half(to);
    const int rc = run("train " TINY " --data '%s' --out '%s'", data, tpath("run"));
    ASSERT_FAILS(rc, "truncated t10k images", to);
    cr_expect(access(tpath("run/model.h5"), F_OK) != 0, "a model was saved despite the bad data");
}

/* Small raw (uncompressed) IDX files: n images rows x cols and n labels per split. */
static void write_idx_split(const char *dir, const char *split, int n, uint8_t magic0) {
    const int rows = 28, cols = 28;
    const size_t isz = 16 + (size_t)n * rows * cols;
    uint8_t *img = calloc(1, isz);
    cr_assert_not_null(img);
    const uint8_t ih[16] = {magic0, 0, 0x08, 3, 0, 0, 0, (uint8_t)n, 0, 0, 0, (uint8_t)rows, 0, 0, 0, (uint8_t)cols};
    memcpy(img, ih, 16);
    for (size_t i = 16; i < isz; i++) img[i] = (uint8_t)(i * 37u);
    uint8_t lbl[8 + 256];
    const uint8_t lh[8] = {0, 0, 0x08, 1, 0, 0, 0, (uint8_t)n};
    memcpy(lbl, lh, 8);
    for (int i = 0; i < n; i++) lbl[8 + i] = (uint8_t)(i % 10);
    char p[512];
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", dir, split);
    write_bytes(p, img, isz);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", dir, split);
    write_bytes(p, lbl, 8 + (size_t)n);
    free(img);
}

/* The synthetic data is good enough to train on, so that the next test fails for the magic alone. */
Test(cli, synthetic_idx_trains) {
    const char *data = tpath("data");
    cr_assert_eq(mkdir(data, 0777), 0);
    write_idx_split(data, "train", 8, 0);
    write_idx_split(data, "t10k", 4, 0);
    const int rc = run("train --set model.hidden=8 --set data.steps=2 --set train.batch=4 --epochs 1 --no-progress "
                       "--data '%s' --out '%s'",
                       data, tpath("run"));
    cr_assert_eq(rc, 0, "training on synthetic IDX files failed: %s", err_text);
    cr_expect(strstr(out_text, "8 train / 4 test samples") != NULL, "%s", out_text);
}

Test(cli, data_bad_magic) {
    const char *data = tpath("data");
    cr_assert_eq(mkdir(data, 0777), 0);
    write_idx_split(data, "train", 8, 0x42);
    write_idx_split(data, "t10k", 4, 0);
    const int rc = run("train --set model.hidden=8 --set data.steps=2 --set train.batch=4 --epochs 1 --no-progress "
                       "--data '%s' --out '%s'",
                       data, tpath("run"));
    char img[512];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", data);
    ASSERT_FAILS(rc, "train images with a bad magic", img, "magic");
}

Test(cli, eval_missing_file) {
    const char *p = tpath("absent.h5");
    ASSERT_FAILS(run("eval '%s'", p), "eval on a missing file", p);
}

Test(cli, eval_text_file) {
    const char *p = tpath("notes.h5");
    const char text[] = "this is not an HDF5 file\n";
    write_bytes(p, text, strlen(text));
    ASSERT_FAILS(run("eval '%s'", p), "eval on a text file", p);
}

Test(cli, eval_truncated_model) {
    NEED_DATA();
    const char *model = train_tiny("run", NULL);
    const char *cut = tpath("cut.h5");
    copy_file(model, cut);
    truncate_half(cut);
    ASSERT_FAILS(run("eval --no-progress '%s'", cut), "eval on a truncated checkpoint", cut);
}

Test(cli, eval_without_model) {
    const int rc = run("eval");
    cr_assert_eq(rc, 2, "qsnn eval with no model: exit status %d, expected 2", rc);
    ASSERT_FAILS(rc, "qsnn eval", "eval");
}

Test(cli, out_under_a_regular_file) {
    const char *file = tpath("OUTFILE");
    const char text[] = "x\n";
    write_bytes(file, text, strlen(text));
    const char *out = tpath("OUTFILE/sub");
    ASSERT_FAILS(run("train " TINY " --out '%s'", out), "--out under a file", out);
    /* checked before any data is read or any training done */
    cr_expect_str_empty(out_text, "it got as far as: %s", out_text);
}

/* ---- 5. a checkpoint with a NaN weight ------------------------------------------------------ */

Test(cli, eval_rejects_nan_weight) {
    NEED_DATA();
    const char *model = train_tiny("run", NULL);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const hid_t f = H5Fopen(model, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert(f >= 0, "H5Fopen %s", model);
    const hid_t d = H5Dopen2(f, "params/layer0.weight", H5P_DEFAULT);
    cr_assert(d >= 0, "no params/layer0.weight in %s", model);
    const hid_t sp = H5Dget_space(d);
    const hssize_t n = H5Sget_simple_extent_npoints(sp);
    cr_assert(n > 3);
    float *w = malloc((size_t)n * sizeof *w);
    cr_assert_not_null(w);
    cr_assert(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) >= 0);
    w[3] = NAN;
    cr_assert(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) >= 0);
    free(w);
    H5Sclose(sp);
    H5Dclose(d);
    cr_assert(H5Fclose(f) >= 0);

    ASSERT_FAILS(run("eval --no-progress '%s'", model), "eval with a NaN weight", "layer0.weight", model);
    cr_expect(strstr(out_text, "matches") == NULL, "eval reported an accuracy:\n%s", out_text);
}

/* ---- 6. qsnn config ------------------------------------------------------------------------- */

Test(cli, config_prints_yaml_with_override) {
    cr_assert_eq(run("config --set train.lr=0.001"), 0, "%s", err_text);
    cr_expect_str_empty(err_text);
    cr_assert(strstr(out_text, "lr: 0.001\n") != NULL, "no 'lr: 0.001' in:\n%s", out_text);
    cr_expect(strstr(out_text, "train:\n") != NULL, "no train section in:\n%s", out_text);
}

Test(cli, config_output_loads_back) {
    cr_assert_eq(run("config --set train.lr=0.001 --set quant.state.bits=4"), 0, "%s", err_text);
    const char *p = tpath("dumped.yaml");
    write_bytes(p, out_text, strlen(out_text));
    char *first = strdup(out_text);
    cr_assert_eq(run("config --config '%s'", p), 0, "the dumped config does not load: %s", err_text);
    cr_expect_str_eq(out_text, first, "dump -> load -> dump differs");
    free(first);
}

Test(cli, config_keys) {
    cr_assert_eq(run("config --keys"), 0);
    cr_assert(strstr(out_text, "quant.state.bits") != NULL, "no quant.state.bits in:\n%s", out_text);
    cr_expect(strstr(out_text, "train.lr") != NULL);
}

/* ---- 7. resuming a run (--resume, --stop-after) ------------------------------------------------ */

Test(cli, train_help_mentions_resume) {
    cr_assert_eq(run("train --help"), 0);
    cr_expect(strstr(out_text, "--resume") != NULL, "qsnn train --help lacks --resume:\n%s", out_text);
    cr_expect(strstr(out_text, "--stop-after") != NULL, "qsnn train --help lacks --stop-after:\n%s", out_text);
    cr_expect(strstr(out_text, "after every epoch") != NULL, "qsnn train --help does not say it saves after every epoch:\n%s",
              out_text);
}

/* Reads every dataset of group `group` in file into a malloc'ed name-sorted list of float arrays. */
typedef struct {
    int n;
    char name[64][96];
    float *data[64];
    size_t len[64];
} h5_group_data;

static void read_group(const char *file, const char *group, h5_group_data *out) {
    memset(out, 0, sizeof *out);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "H5Fopen %s", file);
    const hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    cr_assert(g >= 0, "%s has no group %s", file, group);
    H5G_info_t info;
    cr_assert(H5Gget_info(g, &info) >= 0);
    cr_assert(info.nlinks > 0 && info.nlinks <= 64, "%s/%s: %llu links", file, group, (unsigned long long)info.nlinks);
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char *name = out->name[out->n];
        cr_assert(H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, 96, H5P_DEFAULT) > 0);
        const hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
        cr_assert(d >= 0);
        const hid_t sp = H5Dget_space(d);
        const hssize_t n = H5Sget_simple_extent_npoints(sp);
        cr_assert(n > 0);
        out->len[out->n] = (size_t)n;
        out->data[out->n] = malloc((size_t)n * sizeof(float));
        cr_assert(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data[out->n]) >= 0);
        H5Sclose(sp);
        H5Dclose(d);
        out->n++;
    }
    H5Gclose(g);
    cr_assert(H5Fclose(f) >= 0);
}

static int64_t read_i64_attr(const char *file, const char *obj, const char *attr) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "H5Fopen %s", file);
    const hid_t a = H5Aopen_by_name(f, obj, attr, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(a >= 0, "%s: no attribute %s on %s", file, attr, obj);
    int64_t v = -1;
    cr_assert(H5Aread(a, H5T_NATIVE_INT64, &v) >= 0);
    H5Aclose(a);
    H5Fclose(f);
    return v;
}

/* Both files hold the same datasets in `group`, bit for bit. */
static void assert_same_group(const char *fa, const char *fb, const char *group) {
    h5_group_data *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    read_group(fa, group, a);
    read_group(fb, group, b);
    cr_assert_eq(a->n, b->n, "%s: %d datasets in one file, %d in the other", group, a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        cr_assert_str_eq(a->name[i], b->name[i]);
        cr_assert_eq(a->len[i], b->len[i], "%s/%s: lengths differ", group, a->name[i]);
        size_t first = a->len[i];
        for (size_t j = 0; j < a->len[i] && first == a->len[i]; j++)
            if (memcmp(&a->data[i][j], &b->data[i][j], sizeof(float))) first = j;
        cr_assert_eq(first, a->len[i], "%s/%s differs at [%zu]: %.9g vs %.9g", group, a->name[i], first,
                     (double)a->data[i][first < a->len[i] ? first : 0], (double)b->data[i][first < a->len[i] ? first : 0]);
        free(a->data[i]);
        free(b->data[i]);
    }
    free(a);
    free(b);
}

/* metrics/NAME of a checkpoint read as float64 (at most 64 values) with the HDF5 C API; returns the
 * rank, dims in dims[0..1]. */
static int read_metric(const char *file, const char *name, double *v, hsize_t *dims) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "H5Fopen %s", file);
    char p[64];
    snprintf(p, sizeof p, "/metrics/%s", name);
    const hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    cr_assert(d >= 0, "%s has no dataset %s", file, p);
    const hid_t sp = H5Dget_space(d);
    dims[0] = dims[1] = 0;
    const int rank = H5Sget_simple_extent_ndims(sp);
    cr_assert(rank >= 1 && rank <= 2, "%s: rank %d", p, rank);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    cr_assert(H5Sget_simple_extent_npoints(sp) <= 64);
    cr_assert(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    return rank;
}

static const char *const metric_names[9] = {"epoch",         "train_loss", "train_accuracy", "test_loss",
                                            "test_accuracy", "samples_per_s", "seconds",     "firing_rate",
                                            "test_firing_rate"};

/* The single line starting with prefix, reduced to its deterministic fields. */
static void epoch_line_fields(const char *prefix, char *out, size_t cap) {
    int n = 0;
    char *line = find_line(out_text, prefix, &n);
    cr_assert_eq(n, 1, "expected one '%s' line, found %d:\n%s", prefix, n, out_text);
    epoch_fields(line, out, cap);
    free(line);
}

/* 2 epochs straight == 1 epoch (--stop-after 1 of a 2-epoch run), then --resume for the second:
 * the same epoch lines, parameters and optimizer state, to the bit. */
Test(cli, resume_equals_straight_run) {
    NEED_DATA();
    char a1[1024], a2[1024], b1[1024], b2[1024];
    int rc = run("train " TINY_SETS " --epochs 2 --out '%s'", tpath("A"));
    cr_assert_eq(rc, 0, "straight run failed (%d): %s", rc, err_text);
    epoch_line_fields("epoch 1/2", a1, sizeof a1);
    epoch_line_fields("epoch 2/2", a2, sizeof a2);
    char printed_acc[64], printed_rate[2][64];
    {
        char *line = find_line(out_text, "epoch 2/2", NULL);
        cr_assert_not_null(line);
        cr_assert_eq(token_after(line, "test", printed_acc, sizeof printed_acc), 0, "no test accuracy in [%s]", line);
        const char *r = strstr(line, " rates ");
        cr_assert(r && sscanf(r, " rates %63s %63s", printed_rate[0], printed_rate[1]) == 2, "no rates in [%s]", line);
        free(line);
    }

    rc = run("train " TINY_SETS " --epochs 2 --stop-after 1 --out '%s'", tpath("B"));
    cr_assert_eq(rc, 0, "--stop-after 1 failed (%d): %s", rc, err_text);
    cr_expect_str_empty(err_text);
    epoch_line_fields("epoch 1/2", b1, sizeof b1);
    cr_assert(strstr(out_text, "epoch 2/2") == NULL, "--stop-after 1 trained a second epoch:\n%s", out_text);
    cr_assert(strstr(out_text, "--resume") != NULL, "no hint how to continue:\n%s", out_text);
    cr_assert_str_eq(a1, b1);
    char ma[512], mb[512]; /* (tpath's buffers rotate) */
    snprintf(ma, sizeof ma, "%s", tpath("A/model.h5"));
    snprintf(mb, sizeof mb, "%s", tpath("B/model.h5"));
    cr_assert_eq(read_i64_attr(mb, "/", "epoch"), 1);
    cr_assert_eq(read_i64_attr(mb, "/optimizer", "step"), 8, "1024 samples / batch 128 = 8 steps");

    rc = run("train --resume '%s'", mb);
    cr_assert_eq(rc, 0, "--resume failed (%d): %s", rc, err_text);
    cr_expect_str_empty(err_text);
    cr_assert(strstr(out_text, "epoch 1/2") == NULL, "the resumed run trained epoch 1 again:\n%s", out_text);
    epoch_line_fields("epoch 2/2", b2, sizeof b2);
    cr_assert_str_eq(a2, b2, "straight and resumed runs differ:\n  %s\n  %s", a2, b2);

    cr_assert_eq(read_i64_attr(ma, "/", "epoch"), 2);
    cr_assert_eq(read_i64_attr(mb, "/", "epoch"), 2);
    cr_assert_eq(read_i64_attr(ma, "/optimizer", "step"), 16);
    cr_assert_eq(read_i64_attr(mb, "/optimizer", "step"), 16);
    assert_same_group(ma, mb, "params");
    assert_same_group(ma, mb, "optimizer");

    /* the per-epoch history: 2 entries, the printed accuracy, [epochs][layers] rates; the resumed
     * run's history is the straight one's but for the timings */
    double v[64], w[64];
    hsize_t dv[2], dw[2];
    cr_assert_eq(read_metric(ma, "epoch", v, dv), 1);
    cr_assert_eq(dv[0], 2, "metrics/epoch has %llu entries after 2 epochs", (unsigned long long)dv[0]);
    cr_assert(v[0] == 1 && v[1] == 2, "metrics/epoch = [%g, %g]", v[0], v[1]);
    cr_assert_eq(read_metric(ma, "test_accuracy", v, dv), 1);
    cr_assert_eq(dv[0], 2);
    char stored_acc[64];
    snprintf(stored_acc, sizeof stored_acc, "%.2f%%", 100.0 * v[1]);
    cr_assert_str_eq(stored_acc, printed_acc, "metrics/test_accuracy[1] = %.17g, the epoch 2 line says %s", v[1],
                     printed_acc);
    cr_assert_eq(read_metric(ma, "firing_rate", v, dv), 2);
    cr_assert(dv[0] == 2 && dv[1] == 2, "metrics/firing_rate has shape [%llu][%llu], expected [2][2]",
              (unsigned long long)dv[0], (unsigned long long)dv[1]);
    for (int l = 0; l < 2; l++) { /* row 1 = epoch 2, as printed */
        char stored_rate[64];
        snprintf(stored_rate, sizeof stored_rate, "%.4f", v[2 + l]);
        cr_assert_str_eq(stored_rate, printed_rate[l], "metrics/firing_rate[1][%d] = %.17g, the epoch 2 line says %s",
                         l, v[2 + l], printed_rate[l]);
    }
    for (int k = 0; k < 9; k++) {
        const int ra = read_metric(ma, metric_names[k], v, dv), rb = read_metric(mb, metric_names[k], w, dw);
        cr_assert(ra == rb && dv[0] == dw[0] && dv[1] == dw[1], "metrics/%s: shapes differ", metric_names[k]);
        cr_assert_eq(dv[0], 2, "metrics/%s of the resumed run has %llu entries", metric_names[k],
                     (unsigned long long)dw[0]);
        if (!strcmp(metric_names[k], "samples_per_s") || !strcmp(metric_names[k], "seconds")) continue;
        const size_t n = (size_t)dv[0] * (ra == 2 ? (size_t)dv[1] : 1);
        for (size_t j = 0; j < n; j++)
            cr_assert_eq(memcmp(&v[j], &w[j], sizeof(double)), 0, "metrics/%s[%zu]: %.17g straight, %.17g resumed",
                         metric_names[k], j, v[j], w[j]);
    }

    /* and the resumed model evaluates like the straight one */
    char ea[256], eb[256];
    cr_assert_eq(run("eval --no-progress '%s'", ma), 0, "%s", err_text);
    cr_assert_eq(token_after(out_text, "accuracy", ea, sizeof ea), 0);
    cr_assert_eq(run("eval --no-progress '%s'", mb), 0, "%s", err_text);
    cr_assert_eq(token_after(out_text, "accuracy", eb, sizeof eb), 0);
    cr_assert(strstr(out_text, "matches the accuracy recorded") != NULL, "%s", out_text);
    cr_assert_str_eq(ea, eb);
}

/* A checkpoint without /metrics (saved before histories existed) resumes silently; the history then
 * holds the epochs trained since. */
Test(cli, resume_without_history_starts_from_what_is_there) {
    NEED_DATA();
    const char *model = train_tiny("A", NULL);
    char m[512];
    snprintf(m, sizeof m, "%s", model);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(m, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert(f >= 0);
    cr_assert(H5Ldelete(f, "metrics", H5P_DEFAULT) >= 0, "the 1-epoch checkpoint has no /metrics");
    H5Fclose(f);
    const int rc = run("train --resume '%s' --epochs 2", m);
    cr_assert_eq(rc, 0, "--resume failed (%d): %s", rc, err_text);
    cr_expect_str_empty(err_text);
    double v[64];
    hsize_t d[2];
    read_metric(m, "epoch", v, d);
    cr_assert(d[0] == 1 && v[0] == 2, "metrics/epoch has %llu entries, first %g", (unsigned long long)d[0], v[0]);
    read_metric(m, "test_firing_rate", v, d);
    cr_assert(d[0] == 1 && d[1] == 2, "metrics/test_firing_rate has shape [%llu][%llu]", (unsigned long long)d[0],
              (unsigned long long)d[1]);
}

Test(cli, resume_missing_file) {
    char p[512];
    snprintf(p, sizeof p, "%s", tpath("absent.h5"));
    ASSERT_FAILS(run("train --resume '%s'", p), "--resume on a missing file", p);
    cr_expect(strstr(out_text, "epoch") == NULL, "trained anyway:\n%s", out_text);
}

Test(cli, resume_foreign_file) {
    char p[512], q[512];
    snprintf(p, sizeof p, "%s", tpath("notes.h5"));
    snprintf(q, sizeof q, "%s", tpath("foreign.h5"));
    const char text[] = "not a checkpoint\n";
    write_bytes(p, text, strlen(text));
    ASSERT_FAILS(run("train --resume '%s'", p), "--resume on a text file", p);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const hid_t f = H5Fcreate(q, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(f >= 0);
    H5Fclose(f);
    ASSERT_FAILS(run("train --resume '%s'", q), "--resume on a foreign HDF5 file", q, "not a qsnn checkpoint");
    cr_expect(strstr(out_text, "epoch") == NULL, "trained anyway:\n%s", out_text);
}

Test(cli, resume_usage_errors) {
    char p[512];
    snprintf(p, sizeof p, "%s", tpath("x.h5"));
    int rc = run("train --resume");
    cr_assert_eq(rc, 2);
    ASSERT_FAILS(rc, "--resume without a value", "--resume");
    rc = run("train --resume '%s' --config '%s'", p, tpath("c.yaml"));
    cr_assert_eq(rc, 2);
    ASSERT_FAILS(rc, "--resume with --config", "--config", "--resume");
    rc = run("train --resume '%s' --seed 3", p);
    cr_assert_eq(rc, 2);
    ASSERT_FAILS(rc, "--resume with --seed", "--seed", "--resume");
    rc = run("train --stop-after 0");
    cr_assert_eq(rc, 2);
    ASSERT_FAILS(rc, "--stop-after 0", "--stop-after");
}

Test(cli, resume_refuses_model_and_quant_changes) {
    NEED_DATA();
    const char *model = train_tiny("run", NULL);
    ASSERT_FAILS(run("train --resume '%s' --epochs 2 --set model.hidden=32", model), "--resume --set model.hidden=32",
                 "model.hidden", model);
    cr_expect(strstr(out_text, "epoch") == NULL, "trained anyway:\n%s", out_text);
    ASSERT_FAILS(run("train --resume '%s' --epochs 2 --set quant.state.bits=4", model),
                 "--resume --set quant.state.bits=4", "quant.state.bits");
    ASSERT_FAILS(run("train --resume '%s' --epochs 2 --set run.seed=5", model), "--resume --set run.seed=5",
                 "run.seed");
    cr_assert_eq(read_i64_attr(model, "/", "epoch"), 1, "the refused runs touched the checkpoint");
    /* setting a frozen key to the value it has is no change */
    const int rc = run("train --resume '%s' --set model.hidden=64", model);
    cr_assert_eq(rc, 0, "--set model.hidden=64 (unchanged) refused: %s", err_text);
    cr_assert(strstr(out_text, "nothing to do") != NULL, "%s", out_text);
}

Test(cli, resume_finished_run_then_extend) {
    NEED_DATA();
    const char *model = train_tiny("run", NULL);
    int rc = run("train --resume '%s'", model);
    cr_assert_eq(rc, 0, "resuming a finished run: exit status %d: %s", rc, err_text);
    cr_expect_str_empty(err_text);
    char want[700];
    snprintf(want, sizeof want, "nothing to do: %s already has 1 of 1 epochs\n", model);
    cr_assert_str_eq(out_text, want);

    /* --epochs extends it: only the new epoch is trained, into the same file by default */
    rc = run("train --resume '%s' --epochs 2 --threads 1", model);
    cr_assert_eq(rc, 0, "--resume --epochs 2 failed (%d): %s", rc, err_text);
    int n = 0;
    free(find_line(out_text, "epoch 2/2", &n));
    cr_assert_eq(n, 1, "no 'epoch 2/2' line:\n%s", out_text);
    cr_assert(strstr(out_text, "epoch 1/2") == NULL, "epoch 1 trained again:\n%s", out_text);
    cr_assert_eq(read_i64_attr(model, "/", "epoch"), 2);
    cr_assert_eq(run("train --resume '%s' --epochs 2", model), 0);
    cr_assert(strstr(out_text, "nothing to do") != NULL && strstr(out_text, "2 of 2 epochs") != NULL, "%s", out_text);
}

Test(cli, resume_without_optimizer_state) {
    NEED_DATA();
    const char *model = train_tiny("run", NULL);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const hid_t f = H5Fopen(model, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert(f >= 0);
    cr_assert(H5Ldelete(f, "optimizer", H5P_DEFAULT) >= 0, "no /optimizer in %s", model);
    cr_assert(H5Fclose(f) >= 0);
    ASSERT_FAILS(run("train --resume '%s' --epochs 2", model), "--resume without optimizer state", model,
                 "optimizer");
    /* it still evaluates */
    cr_assert_eq(run("eval --no-progress '%s'", model), 0, "%s", err_text);
    cr_assert(strstr(out_text, "matches the accuracy recorded") != NULL, "%s", out_text);
}

Test(cli, resume_with_another_optimizer_is_refused) {
    NEED_DATA();
    const char *model = train_tiny("run", NULL);
    ASSERT_FAILS(run("train --resume '%s' --epochs 2 --set train.optimizer=sgd", model),
                 "--resume --set train.optimizer=sgd", model, "optimizer/@name");
}

/* A run killed mid-training left the checkpoint of its last finished epoch, and resumes from it. */
Test(cli, killed_run_resumes_from_last_epoch) {
    NEED_DATA();
    char out[512], model[600];
    snprintf(out, sizeof out, "%s", tpath("run"));
    snprintf(model, sizeof model, "%s/model.h5", out);
    const pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
        execl(QSNN_BIN, QSNN_BIN, "train", "--set", "data.train_limit=1024", "--set", "data.test_limit=512", "--set",
              "model.hidden=64", "--set", "data.steps=8", "--no-progress", "--epochs", "500", "--out", out,
              (char *)NULL);
        _exit(127);
    }
    /* the checkpoint appears after the first epoch (the run would need seconds to finish) */
    int waited = 0;
    while (access(model, F_OK) != 0 && waited < 60000) {
        nanosleep(&(struct timespec){0, 2000000L}, NULL);
        waited += 2;
        int st;
        cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "the run ended before writing a checkpoint (status 0x%x)", st);
    }
    cr_assert_eq(access(model, F_OK), 0, "no checkpoint after 60 s");
    kill(pid, SIGKILL);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st), "the run ended on its own before it was killed");
    const int64_t done = read_i64_attr(model, "/", "epoch");
    cr_assert(done >= 1 && done < 500, "the checkpoint of an interrupted run holds %lld of 500 epochs", (long long)done);

    const int rc = run("train --resume '%s' --stop-after 1", model);
    cr_assert_eq(rc, 0, "resuming the killed run failed (%d): %s", rc, err_text);
    char want[64];
    snprintf(want, sizeof want, "epoch %lld/500", (long long)done + 1);
    int n = 0;
    free(find_line(out_text, want, &n));
    cr_assert_eq(n, 1, "no '%s' line:\n%s", want, out_text);
    cr_assert_eq(read_i64_attr(model, "/", "epoch"), done + 1);
}

/* Row-sequential input needs model.inputs × data.steps = the image size; the message says which. */
Test(cli, rows_encoding_shape_mismatch) {
    const char *data = tpath("data");
    cr_assert_eq(mkdir(data, 0777), 0);
    write_idx_split(data, "train", 8, 0);
    write_idx_split(data, "t10k", 4, 0);
    const int rc = run("train --set data.encoding=rows --set data.steps=28 --set model.inputs=784 --epochs 1 "
                       "--no-progress --data '%s' --out '%s'",
                       data, tpath("run"));
    ASSERT_FAILS(rc, "rows with model.inputs 784", "data.encoding = rows", "model.inputs = 784", "data.steps = 28",
                 "reads 21952");
}

/* A recurrent synaptic network with a convolution trains, and the tools that only know feed-forward
 * dense LIF refuse it with one line instead of writing a wrong file. */
Test(cli, recurrent_and_conv_models_train_and_are_refused_by_lif_only_tools) {
    char data[512]; /* tpath's buffers rotate */
    snprintf(data, sizeof data, "%s", tpath("data"));
    cr_assert_eq(mkdir(data, 0777), 0);
    write_idx_split(data, "train", 8, 0);
    write_idx_split(data, "t10k", 4, 0);
    int rc = run("train --set data.encoding=rows --set data.steps=28 --set model.inputs=28 --set model.hidden=[6] "
                 "--set model.recurrent=full --set model.neuron=synaptic --set model.output_neuron=li "
                 "--set train.batch=4 --epochs 1 --no-progress --data '%s' --out '%s'",
                 data, tpath("rec"));
    cr_assert_eq(rc, 0, "recurrent training failed: %s", err_text);
    rc = run("export '%s' --nir '%s'", tpath("rec/model.h5"), tpath("rec.nir"));
    ASSERT_FAILS(rc, "NIR export of a recurrent synaptic network", "layer 0 uses the 'synaptic' neuron model");
    cr_expect(access(tpath("rec.nir"), F_OK) != 0, "a NIR file was written");
    rc = run("train --set 'model.layers=[conv channels=2 kernel=5 pool=max:2]' --set data.steps=2 --set train.batch=4 "
             "--epochs 1 --no-progress --data '%s' --out '%s'",
             data, tpath("conv"));
    cr_assert_eq(rc, 0, "conv training failed: %s", err_text);
    rc = run("eval '%s' --integer", tpath("conv/model.h5"));
    ASSERT_FAILS(rc, "integer evaluation of a conv network", "integer engine", "layer 0 is a convolution");
}

/* Per-neuron parameters: trained, evaluated as recorded, refused with one line by the integer engine
 * and by quantize (which takes per-layer models and makes per-neuron ones with --fold-thresholds). */
Test(cli, per_neuron_model_trains_evaluates_and_is_refused_where_unsupported) {
    char data[512];
    snprintf(data, sizeof data, "%s", tpath("data"));
    cr_assert_eq(mkdir(data, 0777), 0);
    write_idx_split(data, "train", 8, 0);
    write_idx_split(data, "t10k", 4, 0);
    int rc = run("train --set model.hidden=[6] --set model.per_neuron=true --set model.learn_threshold=true "
                 "--set quant.state.bits=4 --set quant.weight.bits=4 --set data.steps=4 --set train.batch=4 --epochs 1 "
                 "--no-progress --data '%s' --out '%s'",
                 data, tpath("pn"));
    cr_assert_eq(rc, 0, "per-neuron training failed: %s", err_text);
    rc = run("eval '%s' --no-progress", tpath("pn/model.h5"));
    cr_assert_eq(rc, 0, "%s", err_text);
    cr_expect(strstr(out_text, "matches the accuracy recorded") != NULL, "%s", out_text);
    rc = run("eval '%s' --integer", tpath("pn/model.h5"));
    ASSERT_FAILS(rc, "integer evaluation of a per-neuron network", "model.per_neuron");
    rc = run("quantize '%s' --out '%s' --calib 8", tpath("pn/model.h5"), tpath("pnq.h5"));
    ASSERT_FAILS(rc, "quantize of a per-neuron network", "model.per_neuron");
    cr_expect(access(tpath("pnq.h5"), F_OK) != 0, "a quantized file was written");
}

/* ---- per-layer quantizers and --init ------------------------------------------------------------ */

/* A string attribute of an object in an HDF5 file (caller frees). */
static char *read_str_attr(const char *file, const char *obj, const char *attr) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "H5Fopen %s", file);
    const hid_t a = H5Aopen_by_name(f, obj, attr, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(a >= 0, "%s: no attribute %s on %s", file, attr, obj);
    const hid_t t = H5Aget_type(a);
    char *s = NULL;
    if (H5Tis_variable_str(t) > 0) {
        char *v = NULL;
        cr_assert(H5Aread(a, t, &v) >= 0);
        s = strdup(v);
        H5free_memory(v);
    } else {
        const size_t n = H5Tget_size(t);
        s = calloc(1, n + 1);
        cr_assert(H5Aread(a, t, s) >= 0);
    }
    H5Tclose(t);
    H5Aclose(a);
    H5Fclose(f);
    return s;
}

/* params/NAME of a checkpoint (index into a read_group result), or -1. */
static int group_find(const h5_group_data *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->name[i], name)) return i;
    return -1;
}

static void group_free(h5_group_data *g) {
    for (int i = 0; i < g->n; i++) free(g->data[i]);
    free(g);
}

Test(cli, per_layer_quantizers_train_and_eval_reproduces) {
    NEED_DATA();
    const char *model = train_tiny("pl", "--set quant.weight.bits=4 --set quant.weight.layer_method=[qil,lsq] "
                                         "--set quant.state.bits=4 --set 'quant.state.layer_grid=[threshold_centered, "
                                         "uniform]'");
    cr_expect(strstr(out_text, "weight quantizer: [qil, lsq], 4 bits") != NULL, "%s", out_text);
    cr_expect(strstr(out_text, "state quantizer: grids [threshold_centered, uniform], 4 bits") != NULL, "%s", out_text);
    int n = 0;
    char *epoch = find_line(out_text, "epoch 1/1", &n);
    cr_assert_eq(n, 1, "%s", out_text);
    char train_acc[64], eval_acc[64];
    cr_assert_eq(token_after(epoch, "test", train_acc, sizeof train_acc), 0, "%s", epoch);
    free(epoch);
    /* each layer has its own quantizer's parameters and codes */
    h5_group_data *g = malloc(sizeof *g);
    read_group(model, "params", g);
    cr_expect_geq(group_find(g, "layer0.weight_center"), 0);
    cr_expect_geq(group_find(g, "layer0.weight_gamma"), 0);
    cr_expect_geq(group_find(g, "layer1.weight_scale"), 0);
    cr_expect_lt(group_find(g, "layer0.weight_scale"), 0);
    cr_expect_lt(group_find(g, "layer1.weight_center"), 0);
    group_free(g);
    char *m0 = read_str_attr(model, "/layers/layer0/weight_codes", "method");
    char *m1 = read_str_attr(model, "/layers/layer1/weight_codes", "method");
    char *g0 = read_str_attr(model, "/layers/layer0/state_levels", "grid");
    char *g1 = read_str_attr(model, "/layers/layer1/state_levels", "grid");
    cr_expect_str_eq(m0, "qil");
    cr_expect_str_eq(m1, "lsq");
    cr_expect_str_eq(g0, "threshold_centered");
    cr_expect_str_eq(g1, "uniform");
    free(m0), free(m1), free(g0), free(g1);
    /* eval rebuilds the same network from the stored configuration */
    const int rc = run("eval '%s' --no-progress", model);
    cr_assert_eq(rc, 0, "eval failed (%d): %s", rc, err_text);
    cr_assert(strstr(out_text, "matches the accuracy recorded at training") != NULL, "eval output:\n%s", out_text);
    cr_assert_eq(token_after(out_text, "accuracy", eval_acc, sizeof eval_acc), 0, "%s", out_text);
    cr_assert_str_eq(eval_acc, train_acc);
}

/* train.lr = 1e-30: one epoch of Adam moves no parameter by a float ulp, so the run's checkpoint shows
 * what --init put into the network. */
#define NO_LEARNING "--set train.lr=1e-30"

Test(cli, init_copies_parameters_into_a_new_run_at_fewer_bits) {
    NEED_DATA();
    char q8[512], extra[1024];
    snprintf(q8, sizeof q8, "%s", train_tiny("q8", "--set quant.weight.bits=8 --set quant.weight.method=qil"));
    snprintf(extra, sizeof extra, "--set quant.weight.bits=4 --set quant.weight.method=qil " NO_LEARNING " --init '%s'",
             q8);
    const char *q4 = train_tiny("q4", extra);
    char want[700];
    snprintf(want, sizeof want, "init from %s: 14 tensors copied, 0 re-initialised\n", q8);
    cr_expect(strstr(out_text, want) != NULL, "no '%s' in:\n%s", want, out_text);
    cr_expect(strstr(out_text, "weight quantizer: qil, 4 bits") != NULL, "%s", out_text);
    /* every parameter (weights, biases, beta, theta, QIL's centre, half-width, exponent) as trained at 8 bits */
    assert_same_group(q8, q4, "params");
    /* a new run: its own epoch count and 4-bit codes */
    cr_expect_eq(read_i64_attr(q4, "/", "epoch"), 1);
    cr_expect_eq(read_i64_attr(q4, "/layers/layer0/weight_codes", "bits"), 4);
    /* the same run from scratch starts elsewhere */
    const char *fresh = train_tiny("fresh", "--set quant.weight.bits=4 --set quant.weight.method=qil " NO_LEARNING);
    h5_group_data *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    read_group(q8, "params", a);
    read_group(fresh, "params", b);
    const int i = group_find(a, "layer0.weight"), j = group_find(b, "layer0.weight");
    cr_assert(i >= 0 && j >= 0);
    cr_expect_neq(memcmp(a->data[i], b->data[j], a->len[i] * sizeof(float)), 0, "training changed no weight");
    group_free(a);
    group_free(b);
}

Test(cli, init_from_float_initialises_learned_parameters_from_the_loaded_weights) {
    NEED_DATA();
    char fp[512], extra[1024];
    snprintf(fp, sizeof fp, "%s", train_tiny("fp", NULL));
    snprintf(extra, sizeof extra, "--set quant.weight.bits=3 --set quant.weight.method=qil " NO_LEARNING " --init '%s'",
             fp);
    const char *q = train_tiny("qil", extra);
    char want[900];
    snprintf(want, sizeof want,
             "init from %s: 8 tensors copied, 6 re-initialised (layer0.weight_center, layer0.weight_half_width, "
             "layer0.weight_gamma, layer1.weight_center, layer1.weight_half_width, layer1.weight_gamma)\n",
             fp);
    cr_expect(strstr(out_text, want) != NULL, "no '%s' in:\n%s", want, out_text);
    h5_group_data *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    read_group(fp, "params", a);
    read_group(q, "params", b);
    static const char *const same[] = {"layer0.weight", "layer0.bias", "layer1.weight", "layer1.bias"};
    for (int k = 0; k < 4; k++) {
        const int i = group_find(a, same[k]), j = group_find(b, same[k]);
        cr_assert(i >= 0 && j >= 0 && a->len[i] == b->len[j], "%s", same[k]);
        cr_expect_eq(memcmp(a->data[i], b->data[j], a->len[i] * sizeof(float)), 0, "%s was not copied", same[k]);
    }
    /* QIL's init on the loaded weights, per output neuron: c = d = max|w|/2, gamma = 1 */
    const int rows[2] = {64, 10};
    for (int l = 0; l < 2; l++) {
        char wn[32], cn[32], dn[32], gn[32];
        snprintf(wn, sizeof wn, "layer%d.weight", l);
        snprintf(cn, sizeof cn, "layer%d.weight_center", l);
        snprintf(dn, sizeof dn, "layer%d.weight_half_width", l);
        snprintf(gn, sizeof gn, "layer%d.weight_gamma", l);
        const int w = group_find(a, wn), c = group_find(b, cn), d = group_find(b, dn), g = group_find(b, gn);
        cr_assert(w >= 0 && c >= 0 && d >= 0 && g >= 0);
        cr_assert_eq(b->len[c], (size_t)rows[l]);
        const size_t in = a->len[w] / (size_t)rows[l];
        for (int o = 0; o < rows[l]; o++) {
            double m = 0;
            for (size_t k = 0; k < in; k++) m = fmax(m, fabs((double)a->data[w][(size_t)o * in + k]));
            cr_expect_eq(b->data[c][o], (float)(0.5 * m), "%s[%d] = %.9g, want max|w|/2 = %.9g", cn, o,
                         (double)b->data[c][o], 0.5 * m);
            cr_expect_eq(b->data[d][o], (float)(0.5 * m), "%s[%d]", dn, o);
            cr_expect_eq(b->data[g][o], 1.0f, "%s[%d]", gn, o);
        }
    }
    group_free(a);
    group_free(b);
}

Test(cli, init_refuses_another_architecture_and_resume) {
    NEED_DATA();
    char model[512];
    snprintf(model, sizeof model, "%s", train_tiny("a", NULL));
    int rc = run("train " TINY_SETS " --epochs 1 --set model.hidden=32 --init '%s' --out '%s'", model, tpath("b"));
    ASSERT_FAILS(rc, "--init from a 64-neuron model into a 32-neuron one", "--init", model, "params/layer0.weight",
                 "another architecture");
    cr_expect(strstr(out_text, "epoch") == NULL, "trained anyway:\n%s", out_text);
    cr_expect_neq(access(tpath("b/model.h5"), F_OK), 0, "a checkpoint was written");
    rc = run("train " TINY_SETS " --epochs 1 --set model.bias=false --init '%s' --out '%s'", model, tpath("b"));
    ASSERT_FAILS(rc, "--init from a model with biases into one without", "params/layer0.bias", "another architecture");
    rc = run("train " TINY_SETS " --epochs 1 --set model.hidden=[64,10] --init '%s' --out '%s'", model, tpath("b"));
    ASSERT_FAILS(rc, "--init into a deeper model", "has no params/layer2.weight", "another architecture");
    rc = run("train --init '%s' --resume '%s'", model, model);
    cr_assert_eq(rc, 2);
    ASSERT_FAILS(rc, "--init with --resume", "--init", "--resume");
    rc = run("train --init");
    cr_assert_eq(rc, 2);
    ASSERT_FAILS(rc, "--init without a value", "--init");
    rc = run("train " TINY " --init '%s' --out '%s'", tpath("nope.h5"), tpath("b"));
    ASSERT_FAILS(rc, "--init from a missing file", "nope.h5");
    cr_assert_eq(run("train --help"), 0);
    cr_expect(strstr(out_text, "--init CKPT") != NULL, "qsnn train --help lacks --init:\n%s", out_text);
}

/* bench/qil_progressive.sh end to end on tiny synthetic data: the chain 8 -> 4 -> 3 -> 2 and the scratch
 * run, a table with the accuracy each run reported, and a second call that trains nothing. */
Test(cli, qil_progressive_script_runs_the_chain_and_skips_finished_runs) {
    char data[512], out[512], cmd[4096];
    snprintf(data, sizeof data, "%s", tpath("data"));
    snprintf(out, sizeof out, "%s", tpath("prog"));
    cr_assert_eq(mkdir(data, 0777), 0);
    write_idx_split(data, "train", 8, 0);
    write_idx_split(data, "t10k", 4, 0);
    char *table[2];
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "QSNN='%s' bash '%s/../bench/qil_progressive.sh' --epochs 1 --out '%s' --data '%s' "
                 "--set model.hidden=8 --set data.steps=2 --set train.batch=4 >'%s' 2>'%s'",
                 QSNN_BIN, QSNN_TEST_DIR, out, data, tpath("table.txt"), tpath("log.txt"));
        const int st = system(cmd);
        char *log = slurp(tpath("log.txt"));
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "qil_progressive.sh failed (0x%x): %s", st, log);
        cr_expect_eq(strstr(log, "skipped") != NULL, k == 1, "call %d: %s", k + 1, log);
        free(log);
        table[k] = slurp(tpath("table.txt"));
    }
    cr_expect_str_eq(table[0], table[1], "the second call's table differs");
    static const char *const rows[] = {"| qil8 | 8 | 1 | - | ", "| qil4 | 4 | 1 | qil8 | ", "| qil3 | 3 | 1 | qil4 | ",
                                       "| qil2 | 2 | 1 | qil3 | ", "| qil2_scratch | 2 | 4 | - | "};
    for (int r = 0; r < 5; r++) {
        const char *row = strstr(table[0], rows[r]);
        cr_assert_not_null(row, "no row '%s' in:\n%s", rows[r], table[0]);
        char *saved = NULL, name[64];
        snprintf(name, sizeof name, "%.*s", (int)(strchr(rows[r] + 2, ' ') - rows[r] - 2), rows[r] + 2);
        /* the accuracy column is what the run itself printed */
        char logp[600];
        snprintf(logp, sizeof logp, "%s/%s.log", out, name);
        char *log = slurp(logp);
        int n = 0;
        saved = find_line(log, "saved ", &n);
        cr_assert_eq(n, 1, "%s", log);
        const char *acc = strstr(saved, "(test accuracy ");
        cr_assert_not_null(acc);
        double v = strtod(acc + 15, NULL), got = -1;
        cr_assert_eq(sscanf(row + strlen(rows[r]), "%lf", &got), 1, "%s", row);
        cr_expect_eq(got, v, "%s: table %g, run %g", name, got, v);
        if (r >= 1 && r <= 3) cr_expect(strstr(log, "init from ") != NULL, "%s did not start from --init:\n%s", name, log);
        free(saved);
        free(log);
    }
    free(table[0]);
    free(table[1]);
}

/* Learned state grids: a tiny run per grid trains and evaluates as recorded; the integer engine and quantize
 * refuse them with one line naming quant.state.grid (also quantize --grid with a learned grid). */
Test(cli, learned_state_grids_train_evaluate_and_are_refused_where_unsupported) {
    char data[512];
    snprintf(data, sizeof data, "%s", tpath("data"));
    cr_assert_eq(mkdir(data, 0777), 0);
    write_idx_split(data, "train", 8, 0);
    write_idx_split(data, "t10k", 4, 0);
    for (const char *const *g = (const char *const[]){"qil", "qn", "cpq", NULL}; *g; g++) {
        char out[64], model[600];
        snprintf(out, sizeof out, "lq_%s", *g);
        int rc = run("train --set model.hidden=[6] --set quant.state.grid=%s --set quant.state.bits=4 "
                     "--set quant.weight.bits=4 --set data.steps=4 --set train.batch=4 --epochs 2 --no-progress "
                     "--data '%s' --out '%s'",
                     *g, data, tpath(out));
        cr_assert_eq(rc, 0, "training with the %s grid failed: %s", *g, err_text);
        snprintf(model, sizeof model, "%s/model.h5", tpath(out));
        rc = run("eval '%s' --no-progress", model);
        cr_assert_eq(rc, 0, "%s", err_text);
        cr_expect(strstr(out_text, "matches the accuracy recorded") != NULL, "%s: %s", *g, out_text);
        rc = run("eval '%s' --integer", model);
        if (!strcmp(*g, "cpq")) { /* nearest-level inference table: the integer engine runs it */
            cr_expect_eq(rc, 0, "integer evaluation of a cpq state grid: %s", err_text);
            cr_expect(strstr(out_text, "same prediction on") != NULL, "%s", out_text);
        } else {
            ASSERT_FAILS(rc, "integer evaluation of a learned state grid", "quant.state.grid", *g);
        }
        rc = run("quantize '%s' --out '%s' --calib 8", model, tpath("lqq.h5"));
        ASSERT_FAILS(rc, "quantize of a learned state grid", "quant.state.grid", *g);
        cr_expect(access(tpath("lqq.h5"), F_OK) != 0, "a quantized file was written");
        /* NIR keeps the learned values in the LIF nodes' metadata: the imported model evaluates the same */
        char nir[600], back[600], before[4096];
        snprintf(nir, sizeof nir, "%s.nir", tpath(out));
        snprintf(back, sizeof back, "%s_back.h5", tpath(out));
        cr_assert_eq(run("eval '%s' --no-progress --data '%s'", model, data), 0, "%s", err_text);
        snprintf(before, sizeof before, "%s", out_text);
        cr_assert_eq(run("export '%s' --nir '%s'", model, nir), 0, "%s", err_text);
        cr_assert_eq(run("import '%s' --out '%s' --set data.steps=4", nir, back), 0, "%s", err_text);
        cr_assert_eq(run("eval '%s' --no-progress --data '%s'", back, data), 0, "%s", err_text);
        const char *la = strstr(before, "loss "), *lb = strstr(out_text, "loss ");
        cr_expect(la && lb && !strncmp(la, lb, 12), "%s: the NIR round trip changed the loss: %s / %s", *g, before,
                  out_text);
    }
    const char *plain = train_tiny("plain", NULL);
    int rc = run("quantize '%s' --grid qn --out '%s' --calib 8", plain, tpath("lqq.h5"));
    ASSERT_FAILS(rc, "quantize --grid qn", "--grid qn", "quant.state.grid");
    /* a learned grid chosen for one layer only is refused too */
    rc = run("train --set model.hidden=[6] --set quant.state.layer_grid=[uniform,qn] --set quant.state.bits=4 "
             "--set quant.weight.bits=4 --set data.steps=4 --set train.batch=4 --epochs 1 --no-progress "
             "--data '%s' --out '%s'",
             data, tpath("lq_layer"));
    cr_assert_eq(rc, 0, "%s", err_text);
    char model[600];
    snprintf(model, sizeof model, "%s/model.h5", tpath("lq_layer"));
    rc = run("eval '%s' --integer", model);
    ASSERT_FAILS(rc, "integer evaluation of a per-layer qn grid", "quant.state.grid = qn", "layer 1");
    rc = run("quantize '%s' --out '%s' --calib 8", model, tpath("lqq.h5"));
    ASSERT_FAILS(rc, "quantize of a per-layer qn grid", "quant.state.grid");
}
