/* Checkpoints (io/checkpoint.h) and the HDF5 helpers (io/h5util.h): round trip, atomic writes, and
 * every loading error with its status and a message naming the file. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/context.h"
#include "io/checkpoint.h"
#include "io/h5util.h"
#include "sim/network.h"
#include "train/optim.h"

static qsnn_ctx *ctx;
static char dir[256];

static void setup(void) {
    cr_assert_eq(qsnn_ctx_create(NULL, 1, 0, &ctx), QSNN_OK);
    snprintf(dir, sizeof dir, "/tmp/qsnn_ckpt_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
    qsnn_ctx_destroy(&ctx);
}

TestSuite(checkpoint, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------------------------------------- */

static void path_in_dir(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", dir, name); }

static void small_cfg(qsnn_net_cfg *cfg, int s0, int s1) {
    qsnn_net_cfg_default(cfg);
    cfg->n_inputs = 5;
    cfg->n_layers = 2;
    cfg->sizes[0] = s0;
    cfg->sizes[1] = s1;
    cfg->weight_quant.bits = 4;
    cfg->state_quant.bits = 3;
    cfg->state_quant.grid = QSNN_GRID_UNIFORM;
}

static qsnn_net *make_net(const qsnn_net_cfg *cfg, uint64_t seed) {
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_net_create(ctx, cfg, &net), QSNN_OK, "%s", qsnn_last_error(ctx));
    if (seed) qsnn_net_init(net, seed);
    return net;
}

static const char *CONFIG = "model:\n  inputs: 5\n  layers: [7, 3]\nquant:\n  weight: {bits: 4}\n"
                            "  state: {bits: 3, grid: uniform}\n# ünïcode survives\n";

static void save_default(const char *path) {
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    qsnn_net *net = make_net(&cfg, 42);
    qsnn_ckpt_meta meta = {12, 0.875, 0.3125, 42, "qsnn train --config x.yaml --set train.epochs=12"};
    cr_assert_eq(qsnn_checkpoint_save(ctx, path, net, CONFIG, &meta), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net_destroy(&net);
}

/* Files, groups, datasets, attributes still open anywhere (0 after every call of ours). */
static long open_objects(void) { return (long)H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL); }

/* Transient dataspace and datatype ids are not counted by H5Fget_obj_count. IDs of one type are
 * numbered consecutively, so: take a fresh id of each type before, another after, and check that no
 * id in between is still valid. */
typedef struct {
    hid_t space, type;
} id_mark;

static id_mark mark_ids(void) {
    id_mark m = {H5Screate(H5S_SCALAR), H5Tcopy(H5T_NATIVE_INT)};
    cr_assert_geq(m.space, 0);
    cr_assert_geq(m.type, 0);
    H5Sclose(m.space);
    H5Tclose(m.type);
    return m;
}

static void assert_no_leaked_ids(id_mark before) {
    id_mark after = mark_ids();
    for (hid_t id = before.space + 1; id < after.space; id++)
        cr_assert_leq(H5Iis_valid(id), 0, "dataspace id %lld leaked", (long long)id);
    for (hid_t id = before.type + 1; id < after.type; id++)
        cr_assert_leq(H5Iis_valid(id), 0, "datatype id %lld leaked", (long long)id);
    cr_assert_eq(open_objects(), 0, "HDF5 objects left open");
}

static int count_files(const char *substr) {
    int n = 0;
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && (!substr || strstr(e->d_name, substr))) n++;
    closedir(d);
    return n;
}

/* Loads PATH into a fresh {7,3} net and checks status and that the message names the file. */
static void expect_load_error(const char *path, qsnn_status want, const char *in_msg) {
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    qsnn_net *net = make_net(&cfg, 7);
    qsnn_param before[QSNN_MAX_PARAMS], after[QSNN_MAX_PARAMS];
    int np = qsnn_net_params(net, before);
    float *copy[QSNN_MAX_PARAMS];
    for (int i = 0; i < np; i++) {
        copy[i] = malloc(before[i].n * sizeof(float));
        memcpy(copy[i], before[i].data, before[i].n * sizeof(float));
    }
    qsnn_clear_error(ctx);
    id_mark ids = mark_ids();
    qsnn_status st = qsnn_checkpoint_load_params(ctx, path, net);
    const char *msg = qsnn_last_error(ctx);
    cr_assert_eq(st, want, "status %d (%s), expected %d; message: %s", st, qsnn_strerror(st), want, msg);
    cr_assert(strstr(msg, path) != NULL, "message does not name the file: %s", msg);
    cr_assert(strchr(msg, '\n') == NULL, "message is not one line: %s", msg);
    if (in_msg) cr_assert(strstr(msg, in_msg) != NULL, "message lacks '%s': %s", in_msg, msg);
    /* A failed load leaves the network untouched. */
    qsnn_net_params(net, after);
    for (int i = 0; i < np; i++) {
        cr_assert_eq(memcmp(copy[i], after[i].data, after[i].n * sizeof(float)), 0, "%s changed", after[i].name);
        free(copy[i]);
    }
    /* The other readers give the same verdict on files that fail before the params. */
    if (want == QSNN_ERR_IO || want == QSNN_ERR_FORMAT) {
        qsnn_ckpt_meta m;
        char *cfgtext = NULL;
        if (!in_msg || !strstr(in_msg, "params")) {
            cr_assert_eq(qsnn_checkpoint_read_meta(ctx, path, &m), want);
            cr_assert(strstr(qsnn_last_error(ctx), path) != NULL);
            cr_assert_eq(qsnn_checkpoint_read_config(ctx, path, &cfgtext), want);
            cr_assert_null(cfgtext);
        }
    }
    qsnn_net_destroy(&net);
    assert_no_leaked_ids(ids);
}

static void copy_prefix(const char *src, const char *dst, int half) {
    FILE *in = fopen(src, "rb");
    cr_assert_not_null(in);
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    fseek(in, 0, SEEK_SET);
    char *b = malloc((size_t)n);
    cr_assert_eq(fread(b, 1, (size_t)n, in), (size_t)n);
    fclose(in);
    FILE *out = fopen(dst, "wb");
    cr_assert_not_null(out);
    long m = half ? n / 2 : n;
    cr_assert_eq(fwrite(b, 1, (size_t)m, out), (size_t)m);
    fclose(out);
    free(b);
}

/* ---------------------------------------------------------------------------------------------- */

Test(checkpoint, round_trip_is_bit_exact) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    qsnn_net *a = make_net(&cfg, 42);
    a->layer[1].beta = 0.8125f; /* something the config does not give */
    a->layer[0].theta = 1.25f;
    qsnn_ckpt_meta meta = {12, 0.875, 0.3125, 1234567890123LL, "qsnn train --config x.yaml"};
    id_mark ids = mark_ids();
    cr_assert_eq(qsnn_checkpoint_save(ctx, path, a, CONFIG, &meta), QSNN_OK, "%s", qsnn_last_error(ctx));
    assert_no_leaked_ids(ids);
    cr_assert_eq(count_files(".tmp."), 0, "a temporary file was left behind");
    cr_assert_eq(count_files(NULL), 1);

    qsnn_net *b = make_net(&cfg, 0);
    cr_assert_eq(qsnn_checkpoint_load_params(ctx, path, b), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(open_objects(), 0);
    qsnn_param pa[QSNN_MAX_PARAMS], pb[QSNN_MAX_PARAMS];
    int na = qsnn_net_params(a, pa), nb = qsnn_net_params(b, pb);
    cr_assert_eq(na, nb);
    cr_assert_eq(na, 8);
    for (int i = 0; i < na; i++) {
        cr_assert_str_eq(pa[i].name, pb[i].name);
        cr_assert_eq(pa[i].n, pb[i].n);
        cr_assert_eq(memcmp(pa[i].data, pb[i].data, pa[i].n * sizeof(float)), 0, "%s differs", pa[i].name);
    }
    /* prepare ran: the fake-quantized weights and state grids follow the loaded parameters */
    qsnn_net_prepare(a);
    for (int l = 0; l < 2; l++) {
        size_t nw = (size_t)a->layer[l].in * a->layer[l].out;
        cr_assert_eq(memcmp(a->layer[l].Wq, b->layer[l].Wq, nw * sizeof(float)), 0);
        cr_assert_eq(b->layer[l].sq.built_theta, b->layer[l].theta);
    }

    char *text = NULL;
    cr_assert_eq(qsnn_checkpoint_read_config(ctx, path, &text), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_str_eq(text, CONFIG);
    qsnn_free(ctx, text);

    qsnn_ckpt_meta m;
    memset(&m, 0x55, sizeof m);
    cr_assert_eq(qsnn_checkpoint_read_meta(ctx, path, &m), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(m.epoch, 12);
    cr_assert_eq(m.test_accuracy, 0.875);
    cr_assert_eq(m.train_loss, 0.3125);
    cr_assert_eq(m.seed, 1234567890123LL);
    cr_assert_null(m.command_line);
    assert_no_leaked_ids(ids);

    qsnn_net_destroy(&a);
    qsnn_net_destroy(&b);
}

Test(checkpoint, layout_for_h5py_users) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    qsnn_net *net = make_net(&cfg, 42);
    qsnn_ckpt_meta meta = {3, 0.5, 1.5, 42, "qsnn train"};
    cr_assert_eq(qsnn_checkpoint_save(ctx, path, net, CONFIG, &meta), QSNN_OK, "%s", qsnn_last_error(ctx));

    hid_t f;
    cr_assert_eq(qsnn_h5_open(ctx, path, 0, &f), QSNN_OK, "%s", qsnn_last_error(ctx));
    char *s = NULL;
    int64_t v;
    cr_assert_eq(qsnn_h5_read_attr_str(ctx, path, f, "format", &s), QSNN_OK);
    cr_assert_str_eq(s, "qsnn-checkpoint");
    qsnn_free(ctx, s);
    cr_assert_eq(qsnn_h5_read_attr_str(ctx, path, f, "qsnn_version", &s), QSNN_OK);
    cr_assert_str_eq(s, QSNN_VERSION);
    qsnn_free(ctx, s);
    cr_assert_eq(qsnn_h5_read_attr_str(ctx, path, f, "command_line", &s), QSNN_OK);
    cr_assert_str_eq(s, "qsnn train");
    qsnn_free(ctx, s);
    cr_assert_eq(qsnn_h5_read_attr_i64(ctx, path, f, "format_version", &v), QSNN_OK);
    cr_assert_eq(v, 1);

    int rank;
    hsize_t dims[QSNN_H5_MAX_RANK];
    static const struct {
        const char *name;
        int rank;
        hsize_t d0, d1;
    } want[] = {
        {"params/layer0.weight", 2, 7, 5}, {"params/layer0.bias", 1, 7, 0}, {"params/layer0.beta", 1, 1, 0},
        {"params/layer0.theta", 1, 1, 0},  {"params/layer1.weight", 2, 3, 7}, {"params/layer1.bias", 1, 3, 0},
        {"layers/layer0/weight_codes", 2, 7, 5}, {"layers/layer0/weight_scales", 1, 7, 0}, /* per channel (the default) */
        {"layers/layer0/state_levels", 1, 8, 0}, {"layers/layer1/weight_codes", 2, 3, 7},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        cr_assert_eq(qsnn_h5_dims(ctx, path, f, want[i].name, &rank, dims), QSNN_OK, "%s", qsnn_last_error(ctx));
        cr_assert_eq(rank, want[i].rank, "%s", want[i].name);
        cr_assert_eq(dims[0], want[i].d0, "%s", want[i].name);
        if (rank == 2) cr_assert_eq(dims[1], want[i].d1, "%s", want[i].name);
    }

    hid_t g;
    cr_assert_eq(qsnn_h5_group_open(ctx, path, f, "layers/layer1", &g), QSNN_OK);
    cr_assert_eq(qsnn_h5_read_attr_i64(ctx, path, g, "in", &v), QSNN_OK);
    cr_assert_eq(v, 7);
    cr_assert_eq(qsnn_h5_read_attr_i64(ctx, path, g, "out", &v), QSNN_OK);
    cr_assert_eq(v, 3);
    cr_assert_eq(qsnn_h5_read_attr_str(ctx, path, g, "neuron", &s), QSNN_OK);
    cr_assert_str_eq(s, "lif");
    qsnn_free(ctx, s);
    H5Gclose(g);

    /* codes x scale == the forward weights, bit for bit; levels == the network's grid */
    for (int l = 0; l < 2; l++) {
        const qsnn_layer *L = &net->layer[l];
        char name[64];
        size_t nw = (size_t)L->in * L->out;
        int32_t *codes = malloc(nw * sizeof *codes);
        float scale[8], levels[8]; /* per channel: one scale per output neuron (out <= 7 here) */
        snprintf(name, sizeof name, "layers/layer%d/weight_codes", l);
        hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
        cr_assert_geq(d, 0);
        cr_assert_geq(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, codes), 0);
        H5Dclose(d);
        snprintf(name, sizeof name, "layers/layer%d/weight_scales", l);
        cr_assert_eq(qsnn_h5_read_f32(ctx, path, f, name, scale, (size_t)L->out), QSNN_OK);
        for (size_t i = 0; i < nw; i++) {
            cr_assert(codes[i] >= -8 && codes[i] <= 7);
            float w = (float)codes[i] * scale[i / (size_t)L->in];
            cr_assert_eq(memcmp(&w, &L->Wq[i], sizeof w), 0, "layer %d weight %zu", l, i);
        }
        snprintf(name, sizeof name, "layers/layer%d/state_levels", l);
        cr_assert_eq(qsnn_h5_read_f32(ctx, path, f, name, levels, 8), QSNN_OK);
        cr_assert_eq(memcmp(levels, L->sq.levels, sizeof levels), 0);
        free(codes);
    }
    H5Fclose(f);
    cr_assert_eq(open_objects(), 0);
    qsnn_net_destroy(&net);
}

Test(checkpoint, float_model_has_no_quantizer_datasets) {
    char path[400];
    path_in_dir(path, sizeof path, "float.h5");
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    cfg.weight_quant.bits = 0;
    cfg.state_quant.bits = 0;
    cfg.bias = 0;
    qsnn_net *a = make_net(&cfg, 3);
    cr_assert_eq(qsnn_checkpoint_save(ctx, path, a, NULL, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
    hid_t f;
    cr_assert_eq(qsnn_h5_open(ctx, path, 0, &f), QSNN_OK);
    cr_assert(qsnn_h5_exists(f, "layers/layer0"));
    cr_assert(!qsnn_h5_exists(f, "layers/layer0/weight_codes"));
    cr_assert(!qsnn_h5_exists(f, "layers/layer0/state_levels"));
    cr_assert(!qsnn_h5_exists(f, "params/layer0.bias"));
    cr_assert(!qsnn_h5_exists(f, "nothing/here/at/all"));
    H5Fclose(f);
    qsnn_net *b = make_net(&cfg, 0);
    cr_assert_eq(qsnn_checkpoint_load_params(ctx, path, b), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(memcmp(a->layer[0].W, b->layer[0].W, 35 * sizeof(float)), 0);
    char *text;
    cr_assert_eq(qsnn_checkpoint_read_config(ctx, path, &text), QSNN_OK);
    cr_assert_str_eq(text, "");
    qsnn_free(ctx, text);
    qsnn_net_destroy(&a);
    qsnn_net_destroy(&b);
    cr_assert_eq(open_objects(), 0);
}

Test(checkpoint, save_replaces_existing_file) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_default(path);
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    qsnn_net *net = make_net(&cfg, 99);
    qsnn_ckpt_meta meta = {13, 0.9, 0.25, 99, NULL};
    cr_assert_eq(qsnn_checkpoint_save(ctx, path, net, "second", &meta), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_ckpt_meta m;
    cr_assert_eq(qsnn_checkpoint_read_meta(ctx, path, &m), QSNN_OK);
    cr_assert_eq(m.epoch, 13);
    cr_assert_eq(m.seed, 99);
    cr_assert_eq(count_files(NULL), 1);
    qsnn_net_destroy(&net);
}

Test(checkpoint, save_into_missing_directory_fails_cleanly) {
    char path[600], sub[400];
    path_in_dir(sub, sizeof sub, "no/such/dir");
    snprintf(path, sizeof path, "%s/ckpt.h5", sub);
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    qsnn_net *net = make_net(&cfg, 42);
    id_mark ids = mark_ids();
    qsnn_status st = qsnn_checkpoint_save(ctx, path, net, CONFIG, NULL);
    cr_assert_eq(st, QSNN_ERR_IO, "status %d: %s", st, qsnn_last_error(ctx));
    cr_assert(strstr(qsnn_last_error(ctx), path) != NULL, "%s", qsnn_last_error(ctx));
    cr_assert(strchr(qsnn_last_error(ctx), '\n') == NULL);
    struct stat sb;
    cr_assert_neq(stat(sub, &sb), 0);
    cr_assert_eq(count_files(NULL), 0);
    assert_no_leaked_ids(ids);
    qsnn_net_destroy(&net);
}

Test(checkpoint, failed_save_leaves_existing_file_untouched) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_default(path);
    /* A directory where the temporary file should go makes the save fail after the old file exists. */
    char tmp[500];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    cr_assert_eq(mkdir(tmp, 0700), 0);
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    qsnn_net *net = make_net(&cfg, 5);
    qsnn_ckpt_meta meta = {99, 0, 0, 5, NULL};
    cr_assert_neq(qsnn_checkpoint_save(ctx, path, net, "x", &meta), QSNN_OK);
    cr_assert(strstr(qsnn_last_error(ctx), path) != NULL, "%s", qsnn_last_error(ctx));
    rmdir(tmp);
    qsnn_ckpt_meta m;
    cr_assert_eq(qsnn_checkpoint_read_meta(ctx, path, &m), QSNN_OK);
    cr_assert_eq(m.epoch, 12);
    cr_assert_eq(count_files(NULL), 1);
    cr_assert_eq(open_objects(), 0);
    qsnn_net_destroy(&net);
}

Test(checkpoint, missing_file) {
    char path[400];
    path_in_dir(path, sizeof path, "absent.h5");
    expect_load_error(path, QSNN_ERR_IO, "No such file");
}

Test(checkpoint, directory_is_not_a_file) { expect_load_error(dir, QSNN_ERR_IO, "not a file"); }

/* (Criterion runs the suite's .init first, then the test's.) */
Test(checkpoint, truncated_file, .init = cr_redirect_stderr) {
    char path[400], cut[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    path_in_dir(cut, sizeof cut, "cut.h5");
    save_default(path);
    copy_prefix(path, cut, 1);
    expect_load_error(cut, QSNN_ERR_FORMAT, NULL);
    fflush(stderr);
    cr_assert_stderr_eq_str("", "HDF5 printed its error stack");
}

Test(checkpoint, text_file) {
    char path[400];
    path_in_dir(path, sizeof path, "config.yaml");
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    fputs("model:\n  layers: [7, 3]\n", fp);
    fclose(fp);
    expect_load_error(path, QSNN_ERR_FORMAT, "not an HDF5 file");
}

Test(checkpoint, foreign_hdf5_file) {
    char path[400];
    path_in_dir(path, sizeof path, "foreign.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    float data[12];
    for (int i = 0; i < 12; i++) data[i] = (float)rand() / (float)RAND_MAX;
    hsize_t dims[2] = {3, 4};
    cr_assert_eq(qsnn_h5_write_f32(ctx, path, f, "random", 2, dims, data), QSNN_OK);
    H5Fclose(f);
    expect_load_error(path, QSNN_ERR_FORMAT, "not a qsnn checkpoint");
}

Test(checkpoint, wrong_format_attribute) {
    char path[400];
    path_in_dir(path, sizeof path, "other.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    cr_assert_eq(qsnn_h5_write_attr_str(ctx, path, f, "format", "qsnn-trace"), QSNN_OK);
    H5Fclose(f);
    expect_load_error(path, QSNN_ERR_FORMAT, "not a qsnn checkpoint");
    /* an attribute of the wrong type */
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_eq(qsnn_h5_write_attr_i64(ctx, path, f, "format", 1), QSNN_OK);
    H5Fclose(f);
    expect_load_error(path, QSNN_ERR_FORMAT, "not a qsnn checkpoint");
}

Test(checkpoint, newer_format_version) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_default(path);
    hid_t f;
    cr_assert_eq(qsnn_h5_open(ctx, path, 1, &f), QSNN_OK);
    cr_assert_eq(qsnn_h5_write_attr_i64(ctx, path, f, "format_version", 2), QSNN_OK);
    cr_assert_eq(qsnn_h5_close(ctx, path, f), QSNN_OK);
    expect_load_error(path, QSNN_ERR_MISMATCH, "format_version 2");
    qsnn_ckpt_meta m;
    cr_assert_eq(qsnn_checkpoint_read_meta(ctx, path, &m), QSNN_ERR_MISMATCH);
}

Test(checkpoint, missing_param_dataset) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_default(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(H5Ldelete(f, "params/layer1.bias", H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_load_error(path, QSNN_ERR_MISMATCH, "params/layer1.bias");
}

Test(checkpoint, missing_params_group) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_default(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(H5Ldelete(f, "params", H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_load_error(path, QSNN_ERR_FORMAT, "params");
}

Test(checkpoint, shape_mismatch) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_default(path);
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 8, 3);
    qsnn_net *net = make_net(&cfg, 1);
    qsnn_status st = qsnn_checkpoint_load_params(ctx, path, net);
    cr_assert_eq(st, QSNN_ERR_MISMATCH, "%s", qsnn_last_error(ctx));
    char want[600];
    snprintf(want, sizeof want, "%s: params/layer0.weight has shape [7][5], the model expects [8][5]", path);
    cr_assert_str_eq(qsnn_last_error(ctx), want);
    cr_assert_eq(open_objects(), 0);
    qsnn_net_destroy(&net);
}

Test(checkpoint, extra_layer_in_file) {
    char path[400];
    path_in_dir(path, sizeof path, "deep.h5");
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    cfg.n_layers = 3;
    cfg.sizes[2] = 4;
    qsnn_net *net = make_net(&cfg, 42);
    cr_assert_eq(qsnn_checkpoint_save(ctx, path, net, CONFIG, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net_destroy(&net);
    expect_load_error(path, QSNN_ERR_MISMATCH, "params/layer2.");
}

Test(checkpoint, nan_in_parameter) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_default(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    hid_t d = H5Dopen2(f, "params/layer0.weight", H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t start[2] = {4, 2}, count[2] = {1, 1}, one = 1;
    cr_assert_geq(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL), 0);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    float nan = NAN;
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &nan), 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
    expect_load_error(path, QSNN_ERR_NUMERIC, "params/layer0.weight[4][2] is nan");
}

Test(checkpoint, inf_in_scalar_parameter) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_default(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "params/layer1.beta", H5P_DEFAULT);
    float inf = -INFINITY;
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &inf), 0);
    H5Dclose(d);
    H5Fclose(f);
    expect_load_error(path, QSNN_ERR_NUMERIC, "params/layer1.beta[0] is -inf");
}

/* --- h5util --------------------------------------------------------------------------------- */

/* Fixed-length strings (as other tools write them) read like variable-length ones. */
static void write_fixed(hid_t loc, const char *name, const char *s, size_t size, H5T_str_t pad, int as_attr) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, size);
    H5Tset_strpad(t, pad);
    char *buf = calloc(1, size);
    memset(buf, pad == H5T_STR_SPACEPAD ? ' ' : 0, size);
    memcpy(buf, s, strlen(s) < size ? strlen(s) : size);
    hid_t sp = H5Screate(H5S_SCALAR);
    if (as_attr) {
        hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        cr_assert_geq(H5Awrite(a, t, buf), 0);
        H5Aclose(a);
    } else {
        hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        cr_assert_geq(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
        H5Dclose(d);
    }
    H5Sclose(sp);
    H5Tclose(t);
    free(buf);
}

Test(checkpoint, h5util_reads_fixed_length_strings) {
    char path[400];
    path_in_dir(path, sizeof path, "strings.h5");
    hid_t f;
    cr_assert_eq(qsnn_h5_create(ctx, path, &f), QSNN_OK);
    write_fixed(f, "nullterm", "hello", 16, H5T_STR_NULLTERM, 1);
    write_fixed(f, "nullpad", "exactly8", 8, H5T_STR_NULLPAD, 1);
    write_fixed(f, "spacepad", "abc", 10, H5T_STR_SPACEPAD, 1);
    write_fixed(f, "text", "a: 1\nb: [2, 3]\n", 64, H5T_STR_NULLTERM, 0);
    cr_assert_eq(qsnn_h5_write_attr_f64(ctx, path, f, "x", 2.5), QSNN_OK);
    cr_assert_eq(qsnn_h5_write_attr_i64(ctx, path, f, "n", -7), QSNN_OK);
    cr_assert_eq(qsnn_h5_close(ctx, path, f), QSNN_OK);

    id_mark ids = mark_ids();
    cr_assert_eq(qsnn_h5_open(ctx, path, 0, &f), QSNN_OK);
    char *s;
    cr_assert_eq(qsnn_h5_read_attr_str(ctx, path, f, "nullterm", &s), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_str_eq(s, "hello");
    qsnn_free(ctx, s);
    cr_assert_eq(qsnn_h5_read_attr_str(ctx, path, f, "nullpad", &s), QSNN_OK);
    cr_assert_str_eq(s, "exactly8");
    qsnn_free(ctx, s);
    cr_assert_eq(qsnn_h5_read_attr_str(ctx, path, f, "spacepad", &s), QSNN_OK);
    cr_assert_str_eq(s, "abc");
    qsnn_free(ctx, s);
    cr_assert_eq(qsnn_h5_read_str(ctx, path, f, "text", &s), QSNN_OK);
    cr_assert_str_eq(s, "a: 1\nb: [2, 3]\n");
    qsnn_free(ctx, s);

    double x;
    int64_t n;
    cr_assert_eq(qsnn_h5_read_attr_f64(ctx, path, f, "x", &x), QSNN_OK);
    cr_assert_eq(x, 2.5);
    cr_assert_eq(qsnn_h5_read_attr_f64(ctx, path, f, "n", &x), QSNN_OK); /* integers widen to double */
    cr_assert_eq(x, -7.0);
    cr_assert_eq(qsnn_h5_read_attr_i64(ctx, path, f, "n", &n), QSNN_OK);
    cr_assert_eq(n, -7);
    /* errors: missing attribute, wrong class */
    cr_assert_eq(qsnn_h5_read_attr_i64(ctx, path, f, "x", &n), QSNN_ERR_FORMAT);
    cr_assert(strstr(qsnn_last_error(ctx), "'x'") && strstr(qsnn_last_error(ctx), path), "%s", qsnn_last_error(ctx));
    cr_assert_eq(qsnn_h5_read_attr_str(ctx, path, f, "n", &s), QSNN_ERR_FORMAT);
    cr_assert_eq(qsnn_h5_read_attr_i64(ctx, path, f, "absent", &n), QSNN_ERR_FORMAT);
    cr_assert(strstr(qsnn_last_error(ctx), "'absent'") && strstr(qsnn_last_error(ctx), "missing"), "%s",
              qsnn_last_error(ctx));
    cr_assert_eq(qsnn_h5_read_str(ctx, path, f, "absent", &s), QSNN_ERR_FORMAT);
    float v;
    cr_assert_eq(qsnn_h5_read_f32(ctx, path, f, "text", &v, 1), QSNN_ERR_FORMAT);
    H5Fclose(f);
    assert_no_leaked_ids(ids);
}

Test(checkpoint, h5util_error_detail_from_hdf5) {
    char path[400];
    path_in_dir(path, sizeof path, "dup.h5");
    hid_t f;
    cr_assert_eq(qsnn_h5_create(ctx, path, &f), QSNN_OK);
    float x = 1.0f;
    hsize_t one = 1;
    cr_assert_eq(qsnn_h5_write_f32(ctx, path, f, "a", 1, &one, &x), QSNN_OK);
    /* creating it again fails inside HDF5: the message carries HDF5's own description */
    cr_assert_eq(qsnn_h5_write_f32(ctx, path, f, "a", 1, &one, &x), QSNN_ERR_HDF5);
    const char *msg = qsnn_last_error(ctx);
    cr_assert(strncmp(msg, path, strlen(path)) == 0, "%s", msg);
    cr_assert(strstr(msg, "cannot create a: ") != NULL, "%s", msg);
    cr_assert(strlen(msg) > strlen(path) + strlen(": cannot create a: "), "no HDF5 detail: %s", msg);
    cr_assert_eq(qsnn_h5_close(ctx, path, f), QSNN_OK);
    cr_assert_eq(open_objects(), 0);
}

/* --- optimizer state (resumable checkpoints) ------------------------------------------------- */

static qsnn_train_cfg optim_cfg(const char *name) {
    qsnn_train_cfg t;
    memset(&t, 0, sizeof t);
    t.epochs = 1;
    t.batch = 4;
    snprintf(t.optimizer, sizeof t.optimizer, "%s", name);
    t.lr = 0.01f;
    t.momentum = 0.9f;
    t.beta1 = 0.9f;
    t.beta2 = 0.999f;
    t.eps = 1e-8f;
    snprintf(t.schedule, sizeof t.schedule, "constant");
    snprintf(t.loss, sizeof t.loss, "ce_count");
    return t;
}

/* Deterministic pseudo-gradients for every parameter, different for each call `k`. */
static void fake_grads(qsnn_net *net, int k) {
    qsnn_param p[QSNN_MAX_PARAMS];
    const int np = qsnn_net_params(net, p);
    for (int i = 0; i < np; i++)
        for (size_t j = 0; j < p[i].n; j++) p[i].grad[j] = sinf((float)(j * 7 + i * 13 + k * 31)) * 0.1f;
}

/* The optimizer's state as the checkpoint API takes it (slots: QSNN_OPTIM_MAX_STATE entries). */
static qsnn_ckpt_optim ckpt_state(qsnn_optim *opt, qsnn_ckpt_slot *slots) {
    qsnn_optim_slot st[QSNN_OPTIM_MAX_STATE];
    const int n = qsnn_optim_state(opt, st, QSNN_OPTIM_MAX_STATE);
    cr_assert(n > 0 && n <= QSNN_OPTIM_MAX_STATE);
    for (int k = 0; k < n; k++) slots[k] = (qsnn_ckpt_slot){st[k].param, st[k].slot, st[k].data, st[k].n};
    return (qsnn_ckpt_optim){qsnn_optim_name(opt), qsnn_optim_steps(opt), n, slots};
}

/* A {s0,3} network (θ learned) with an optimizer of kind `name` that has taken `steps` steps,
 * saved resumably to path. */
static void save_trained(const char *path, const char *name, int s0, int steps, qsnn_net **pnet, qsnn_optim **popt) {
    qsnn_net_cfg cfg;
    small_cfg(&cfg, s0, 3);
    cfg.learn_theta = 1;
    qsnn_net *net = make_net(&cfg, 42);
    qsnn_train_cfg t = optim_cfg(name);
    qsnn_optim *opt = NULL;
    cr_assert_eq(qsnn_optim_create(ctx, &t, net, &opt), QSNN_OK, "%s", qsnn_last_error(ctx));
    for (int k = 0; k < steps; k++) {
        fake_grads(net, k);
        qsnn_optim_step(opt, 0.01f);
    }
    qsnn_ckpt_slot slots[QSNN_OPTIM_MAX_STATE];
    qsnn_ckpt_optim st = ckpt_state(opt, slots);
    qsnn_ckpt_meta meta = {2, 0.5, 1.0, 42, "qsnn train"};
    cr_assert_eq(qsnn_checkpoint_save_resumable(ctx, path, net, CONFIG, &meta, &st), QSNN_OK, "%s",
                 qsnn_last_error(ctx));
    if (pnet) *pnet = net;
    else qsnn_net_destroy(&net);
    if (popt) *popt = opt;
    else qsnn_optim_destroy(&opt);
}

Test(checkpoint, optimizer_state_round_trip) {
    static const char *kinds[] = {"adam", "sgd"};
    for (int kind = 0; kind < 2; kind++) {
        char path[400];
        path_in_dir(path, sizeof path, kinds[kind]);
        qsnn_net *a, *b;
        qsnn_optim *oa, *ob = NULL;
        id_mark ids = mark_ids();
        save_trained(path, kinds[kind], 7, 3, &a, &oa);
        assert_no_leaked_ids(ids);

        /* the layout: @name, @step, one dataset per learnable parameter per slot, shaped like it */
        hid_t f;
        cr_assert_eq(qsnn_h5_open(ctx, path, 0, &f), QSNN_OK);
        char *s = NULL;
        int64_t v;
        hid_t g;
        cr_assert_eq(qsnn_h5_group_open(ctx, path, f, "optimizer", &g), QSNN_OK, "%s", qsnn_last_error(ctx));
        cr_assert_eq(qsnn_h5_read_attr_str(ctx, path, g, "name", &s), QSNN_OK);
        cr_assert_str_eq(s, kinds[kind]);
        qsnn_free(ctx, s);
        cr_assert_eq(qsnn_h5_read_attr_i64(ctx, path, g, "step", &v), QSNN_OK);
        cr_assert_eq(v, 3);
        H5G_info_t info;
        cr_assert_geq(H5Gget_info(g, &info), 0);
        /* weight, bias, theta of 2 layers (β is not learned), times 2 slots (Adam) or 1 (SGD) */
        cr_assert_eq(info.nlinks, (hsize_t)(kind == 0 ? 12 : 6));
        H5Gclose(g);
        int rank;
        hsize_t dims[QSNN_H5_MAX_RANK];
        const char *w = kind == 0 ? "optimizer/layer0.weight.v" : "optimizer/layer0.weight.momentum";
        cr_assert_eq(qsnn_h5_dims(ctx, path, f, w, &rank, dims), QSNN_OK, "%s", qsnn_last_error(ctx));
        cr_assert(rank == 2 && dims[0] == 7 && dims[1] == 5);
        const char *th = kind == 0 ? "optimizer/layer1.theta.m" : "optimizer/layer1.theta.momentum";
        cr_assert_eq(qsnn_h5_dims(ctx, path, f, th, &rank, dims), QSNN_OK, "%s", qsnn_last_error(ctx));
        cr_assert(rank == 1 && dims[0] == 1);
        cr_assert(!qsnn_h5_exists(f, "optimizer/layer0.beta.m") && !qsnn_h5_exists(f, "optimizer/layer0.beta.momentum"));
        H5Fclose(f);

        /* a fresh network and optimizer take the saved state bit for bit */
        qsnn_net_cfg cfg;
        small_cfg(&cfg, 7, 3);
        cfg.learn_theta = 1;
        b = make_net(&cfg, 0);
        qsnn_train_cfg t = optim_cfg(kinds[kind]);
        cr_assert_eq(qsnn_optim_create(ctx, &t, b, &ob), QSNN_OK);
        cr_assert_eq(qsnn_checkpoint_load_params(ctx, path, b), QSNN_OK, "%s", qsnn_last_error(ctx));
        qsnn_ckpt_slot slots[QSNN_OPTIM_MAX_STATE];
        qsnn_ckpt_optim st = ckpt_state(ob, slots);
        st.step = -1;
        cr_assert_eq(qsnn_checkpoint_load_optim(ctx, path, b, &st), QSNN_OK, "%s", qsnn_last_error(ctx));
        assert_no_leaked_ids(ids);
        cr_assert_eq(st.step, 3);
        qsnn_optim_set_steps(ob, (long)st.step);
        cr_assert_eq(qsnn_optim_steps(ob), 3);
        qsnn_optim_slot sa[QSNN_OPTIM_MAX_STATE], sb[QSNN_OPTIM_MAX_STATE];
        const int na = qsnn_optim_state(oa, sa, QSNN_OPTIM_MAX_STATE), nb = qsnn_optim_state(ob, sb, QSNN_OPTIM_MAX_STATE);
        cr_assert_eq(na, nb);
        cr_assert_eq(na, kind == 0 ? 12 : 6);
        for (int k = 0; k < na; k++) {
            cr_assert_str_eq(sa[k].param, sb[k].param);
            cr_assert_str_eq(sa[k].slot, sb[k].slot);
            cr_assert_eq(sa[k].n, sb[k].n);
            cr_assert_neq(sa[k].data, sb[k].data);
            cr_assert_eq(memcmp(sa[k].data, sb[k].data, sa[k].n * sizeof(float)), 0, "%s.%s differs", sa[k].param,
                         sa[k].slot);
        }
        /* ... so the next step does the same in both: resuming is exact */
        fake_grads(a, 3);
        fake_grads(b, 3);
        qsnn_optim_step(oa, 0.01f);
        qsnn_optim_step(ob, 0.01f);
        qsnn_param pa[QSNN_MAX_PARAMS], pb[QSNN_MAX_PARAMS];
        const int np = qsnn_net_params(a, pa);
        qsnn_net_params(b, pb);
        for (int i = 0; i < np; i++)
            cr_assert_eq(memcmp(pa[i].data, pb[i].data, pa[i].n * sizeof(float)), 0, "%s: %s differs after a step",
                         kinds[kind], pa[i].name);
        qsnn_optim_destroy(&oa);
        qsnn_optim_destroy(&ob);
        qsnn_net_destroy(&a);
        qsnn_net_destroy(&b);
    }
}

/* Loads the optimizer state of PATH into a fresh {s0,3} network's optimizer of kind `name` and
 * expects failure with status `want`, a one-line message naming the file and `in_msg`, and the
 * optimizer's arrays and the step left untouched. */
static void expect_optim_error(const char *path, const char *name, int s0, qsnn_status want, const char *in_msg) {
    qsnn_net_cfg cfg;
    small_cfg(&cfg, s0, 3);
    cfg.learn_theta = 1;
    qsnn_net *net = make_net(&cfg, 7);
    qsnn_train_cfg t = optim_cfg(name);
    qsnn_optim *opt = NULL;
    cr_assert_eq(qsnn_optim_create(ctx, &t, net, &opt), QSNN_OK);
    fake_grads(net, 9);
    qsnn_optim_step(opt, 0.01f); /* a state that is not all zeros */
    qsnn_ckpt_slot slots[QSNN_OPTIM_MAX_STATE];
    qsnn_ckpt_optim st = ckpt_state(opt, slots);
    float *copy[QSNN_OPTIM_MAX_STATE];
    for (int k = 0; k < st.n_slots; k++) {
        copy[k] = malloc(slots[k].n * sizeof(float));
        memcpy(copy[k], slots[k].data, slots[k].n * sizeof(float));
    }
    qsnn_clear_error(ctx);
    id_mark ids = mark_ids();
    const qsnn_status s = qsnn_checkpoint_load_optim(ctx, path, net, &st);
    const char *msg = qsnn_last_error(ctx);
    cr_assert_eq(s, want, "status %d (%s), expected %d; message: %s", s, qsnn_strerror(s), want, msg);
    cr_assert(strstr(msg, path) != NULL, "message does not name the file: %s", msg);
    cr_assert(strchr(msg, '\n') == NULL, "message is not one line: %s", msg);
    cr_assert(strstr(msg, in_msg) != NULL, "message lacks '%s': %s", in_msg, msg);
    cr_assert_eq(st.step, 1, "the step changed on a failed load");
    for (int k = 0; k < st.n_slots; k++) {
        cr_assert_eq(memcmp(copy[k], slots[k].data, slots[k].n * sizeof(float)), 0, "%s.%s changed", slots[k].param,
                     slots[k].slot);
        free(copy[k]);
    }
    assert_no_leaked_ids(ids);
    qsnn_optim_destroy(&opt);
    qsnn_net_destroy(&net);
}

Test(checkpoint, optimizer_state_of_another_kind_is_refused) {
    char path[400];
    path_in_dir(path, sizeof path, "adam.h5");
    save_trained(path, "adam", 7, 2, NULL, NULL);
    expect_optim_error(path, "sgd", 7, QSNN_ERR_MISMATCH, "optimizer/@name is 'adam'");
    path_in_dir(path, sizeof path, "sgd.h5");
    save_trained(path, "sgd", 7, 2, NULL, NULL);
    expect_optim_error(path, "adam", 7, QSNN_ERR_MISMATCH, "optimizer/@name is 'sgd'");
}

Test(checkpoint, optimizer_state_of_another_shape_is_refused) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_trained(path, "adam", 7, 2, NULL, NULL);
    expect_optim_error(path, "adam", 8, QSNN_ERR_MISMATCH, "optimizer/layer0.weight.m has shape [7][5], the model expects [8][5]");
    /* a dataset rewritten with another shape, the names all right */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(H5Ldelete(f, "optimizer/layer1.bias.v", H5P_DEFAULT), 0);
    float z[4] = {0};
    hsize_t four = 4;
    cr_assert_eq(qsnn_h5_write_f32(ctx, path, f, "optimizer/layer1.bias.v", 1, &four, z), QSNN_OK);
    H5Fclose(f);
    expect_optim_error(path, "adam", 7, QSNN_ERR_MISMATCH, "optimizer/layer1.bias.v has shape [4], the model expects [3]");
}

Test(checkpoint, optimizer_state_missing_or_extra_dataset) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_trained(path, "adam", 7, 2, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(H5Ldelete(f, "optimizer/layer1.theta.v", H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_optim_error(path, "adam", 7, QSNN_ERR_MISMATCH, "optimizer/layer1.theta.v is missing");

    save_trained(path, "adam", 7, 2, NULL, NULL);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    float z = 0;
    hsize_t one = 1;
    cr_assert_eq(qsnn_h5_write_f32(ctx, path, f, "optimizer/layer0.beta.m", 1, &one, &z), QSNN_OK);
    H5Fclose(f);
    expect_optim_error(path, "adam", 7, QSNN_ERR_MISMATCH, "optimizer/layer0.beta.m is not part of the adam state");
}

Test(checkpoint, optimizer_state_nan_and_bad_step) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_trained(path, "sgd", 7, 2, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "optimizer/layer1.bias.momentum", H5P_DEFAULT);
    float v[3] = {0, NAN, 0};
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Fclose(f);
    expect_optim_error(path, "sgd", 7, QSNN_ERR_NUMERIC, "optimizer/layer1.bias.momentum[1] is nan");

    save_trained(path, "sgd", 7, 2, NULL, NULL);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    cr_assert_eq(qsnn_h5_write_attr_i64(ctx, path, g, "step", -4), QSNN_OK);
    H5Gclose(g);
    H5Fclose(f);
    expect_optim_error(path, "sgd", 7, QSNN_ERR_FORMAT, "optimizer/@step is -4");
}

/* Files saved without optimizer state refuse to resume but still load for evaluation. */
Test(checkpoint, checkpoint_without_optimizer_state) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_default(path);
    expect_optim_error(path, "adam", 7, QSNN_ERR_FORMAT, "saved without optimizer state");
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    qsnn_net *net = make_net(&cfg, 0);
    cr_assert_eq(qsnn_checkpoint_load_params(ctx, path, net), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net_destroy(&net);
    /* ... and a resumable file loads for evaluation too (/optimizer is ignored there) */
    save_trained(path, "adam", 7, 1, NULL, NULL);
    cfg.learn_theta = 1;
    net = make_net(&cfg, 0);
    cr_assert_eq(qsnn_checkpoint_load_params(ctx, path, net), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net_destroy(&net);
}

Test(checkpoint, optimizer_state_for_unknown_parameter_is_not_saved) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    qsnn_net *net = make_net(&cfg, 1);
    float m[7] = {0};
    qsnn_ckpt_slot slot = {"layer9.weight", "m", m, 7};
    qsnn_ckpt_optim st = {"adam", 0, 1, &slot};
    cr_assert_eq(qsnn_checkpoint_save_resumable(ctx, path, net, CONFIG, NULL, &st), QSNN_ERR_ARG);
    cr_assert(strstr(qsnn_last_error(ctx), "layer9.weight") != NULL, "%s", qsnn_last_error(ctx));
    slot.param = "layer0.bias";
    slot.n = 6;
    cr_assert_eq(qsnn_checkpoint_save_resumable(ctx, path, net, CONFIG, NULL, &st), QSNN_ERR_ARG);
    cr_assert_eq(count_files(NULL), 0, "something was written");
    slot.n = 7;
    cr_assert_eq(qsnn_checkpoint_save_resumable(ctx, path, net, CONFIG, NULL, &st), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net_destroy(&net);
}

/* ---- training history (/metrics) ------------------------------------------------------------ */

#define HIST_E 3
#define HIST_L 2

/* A history of HIST_E epochs over HIST_L layers whose values do not survive a float32 round trip
 * (and one subnormal, one -0.0): a bit-exact comparison then means float64 all the way. */
typedef struct {
    long long epoch[HIST_E];
    double a[6][HIST_E];
    double fr[HIST_E * HIST_L], tfr[HIST_E * HIST_L];
    qsnn_ckpt_history h;
} hist_buf;

static void make_history(hist_buf *b, int with_epochs) {
    memset(b, 0, sizeof *b);
    for (int i = 0; i < HIST_E; i++) {
        b->epoch[i] = 4 + i;
        for (int k = 0; k < 6; k++) b->a[k][i] = 1.0 / (3.0 + i + 7.0 * k) + 1e-12 * k;
        for (int l = 0; l < HIST_L; l++) {
            b->fr[i * HIST_L + l] = 0.1 * (i + 1) + 0.01 * l + 1e-13;
            b->tfr[i * HIST_L + l] = 0.2 / (i + 1 + l) + 1e-14;
        }
    }
    b->a[2][1] = 4.9e-324; /* subnormal */
    b->a[3][2] = -0.0;
    b->h = (qsnn_ckpt_history){.epochs = HIST_E,
                               .n_layers = HIST_L,
                               .epoch = with_epochs ? b->epoch : NULL,
                               .train_loss = b->a[0],
                               .train_accuracy = b->a[1],
                               .test_loss = b->a[2],
                               .test_accuracy = b->a[3],
                               .samples_per_s = b->a[4],
                               .seconds = b->a[5],
                               .firing_rate = b->fr,
                               .test_firing_rate = b->tfr};
}

static void save_history(const char *path, const qsnn_ckpt_history *h) {
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    qsnn_net *net = make_net(&cfg, 42);
    qsnn_ckpt_meta meta = {HIST_E, 0.5, 0.25, 42, "x"};
    cr_assert_eq(qsnn_checkpoint_save_with_history(ctx, path, net, CONFIG, &meta, NULL, h), QSNN_OK, "%s",
                 qsnn_last_error(ctx));
    qsnn_net_destroy(&net);
}

static void assert_same_doubles(const double *a, const double *b, size_t n, const char *what) {
    cr_assert_not_null(b, "%s was not read", what);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(memcmp(&a[i], &b[i], sizeof(double)), 0, "%s[%zu]: %.17g read back as %.17g", what, i, a[i],
                     b[i]);
}

Test(checkpoint, history_round_trip_is_bit_exact) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    for (int with_epochs = 0; with_epochs < 2; with_epochs++) {
        hist_buf b;
        make_history(&b, with_epochs);
        id_mark ids = mark_ids();
        save_history(path, &b.h);
        qsnn_ckpt_history r;
        memset(&r, 0x55, sizeof r);
        cr_assert_eq(qsnn_checkpoint_read_history(ctx, path, &r), QSNN_OK, "%s", qsnn_last_error(ctx));
        assert_no_leaked_ids(ids);
        cr_assert_eq(r.epochs, HIST_E);
        cr_assert_eq(r.n_layers, HIST_L);
        for (int i = 0; i < HIST_E; i++)
            cr_assert_eq(r.epoch[i], with_epochs ? b.epoch[i] : i + 1, "epoch[%d] = %lld", i, r.epoch[i]);
        const char *names[6] = {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "samples_per_s",
                                "seconds"};
        const double *got[6] = {r.train_loss, r.train_accuracy, r.test_loss, r.test_accuracy, r.samples_per_s,
                                r.seconds};
        for (int k = 0; k < 6; k++) assert_same_doubles(b.a[k], got[k], HIST_E, names[k]);
        assert_same_doubles(b.fr, r.firing_rate, HIST_E * HIST_L, "firing_rate");
        assert_same_doubles(b.tfr, r.test_firing_rate, HIST_E * HIST_L, "test_firing_rate");
        qsnn_checkpoint_history_free(ctx, &r);
        cr_assert_eq(r.epochs, 0);
        cr_assert_null(r.train_loss);
        /* the rest of the file is as before */
        qsnn_ckpt_meta m;
        cr_assert_eq(qsnn_checkpoint_read_meta(ctx, path, &m), QSNN_OK, "%s", qsnn_last_error(ctx));
        cr_assert_eq(m.epoch, HIST_E);
    }
    /* the layout h5py users see: int64 epoch, float64 [E] and [E][L] */
    const hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0);
    const char *names[9] = {"epoch",         "train_loss", "train_accuracy", "test_loss",       "test_accuracy",
                            "samples_per_s", "seconds",    "firing_rate",    "test_firing_rate"};
    for (int k = 0; k < 9; k++) {
        char p[64];
        snprintf(p, sizeof p, "metrics/%s", names[k]);
        const hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
        cr_assert(d >= 0, "%s missing", p);
        const hid_t t = H5Dget_type(d), s = H5Dget_space(d);
        hsize_t dims[2] = {0, 0};
        const int rank = H5Sget_simple_extent_dims(s, dims, NULL);
        cr_assert_eq(rank, k >= 7 ? 2 : 1, "%s rank %d", p, rank);
        cr_assert_eq(dims[0], HIST_E, "%s", p);
        if (k >= 7) cr_assert_eq(dims[1], HIST_L, "%s", p);
        cr_assert_eq(H5Tget_class(t), k == 0 ? H5T_INTEGER : H5T_FLOAT, "%s", p);
        cr_assert_eq(H5Tget_size(t), 8, "%s is not 64-bit", p);
        H5Tclose(t);
        H5Sclose(s);
        H5Dclose(d);
    }
    H5Fclose(f);
}

Test(checkpoint, history_absent_reads_as_zero_epochs) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    save_default(path); /* qsnn_checkpoint_save: no history */
    qsnn_ckpt_history r;
    memset(&r, 0x55, sizeof r);
    id_mark ids = mark_ids();
    cr_assert_eq(qsnn_checkpoint_read_history(ctx, path, &r), QSNN_OK, "%s", qsnn_last_error(ctx));
    assert_no_leaked_ids(ids);
    cr_assert_eq(r.epochs, 0);
    cr_assert_null(r.train_loss);
    cr_assert_null(r.firing_rate);
    qsnn_checkpoint_history_free(ctx, &r);
    /* NULL and an empty history write no /metrics group */
    for (int k = 0; k < 2; k++) {
        qsnn_ckpt_history empty;
        memset(&empty, 0, sizeof empty);
        save_history(path, k ? &empty : NULL);
        const hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        cr_assert(f >= 0);
        cr_assert_eq(H5Lexists(f, "metrics", H5P_DEFAULT), 0, "a /metrics group was written");
        H5Fclose(f);
        cr_assert_eq(qsnn_checkpoint_read_history(ctx, path, &r), QSNN_OK, "%s", qsnn_last_error(ctx));
        cr_assert_eq(r.epochs, 0);
    }
}

/* Replaces metrics/NAME in PATH by a float64 dataset of the given shape. */
static void rewrite_metric(const char *path, const char *name, int rank, hsize_t d0, hsize_t d1) {
    const hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert(f >= 0);
    char p[64];
    snprintf(p, sizeof p, "metrics/%s", name);
    cr_assert(H5Ldelete(f, p, H5P_DEFAULT) >= 0, "cannot delete %s", p);
    double v[16] = {0};
    hsize_t dims[2] = {d0, d1};
    const hid_t s = H5Screate_simple(rank, dims, NULL);
    const hid_t d = H5Dcreate2(f, p, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(d >= 0);
    cr_assert(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(f);
}

static void expect_history_error(const char *path, qsnn_status want, const char *name) {
    qsnn_ckpt_history r;
    memset(&r, 0x55, sizeof r);
    qsnn_clear_error(ctx);
    id_mark ids = mark_ids();
    const qsnn_status st = qsnn_checkpoint_read_history(ctx, path, &r);
    const char *msg = qsnn_last_error(ctx);
    cr_assert_eq(st, want, "status %d, expected %d; message: %s", st, want, msg);
    cr_assert(strstr(msg, path) != NULL, "message does not name the file: %s", msg);
    cr_assert(strstr(msg, name) != NULL, "message does not name %s: %s", name, msg);
    cr_assert(strchr(msg, '\n') == NULL, "message is not one line: %s", msg);
    cr_assert_eq(r.epochs, 0);
    cr_assert_null(r.train_loss);
    assert_no_leaked_ids(ids);
}

Test(checkpoint, history_with_mismatched_lengths_is_refused) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    hist_buf b;
    make_history(&b, 1);
    save_history(path, &b.h);
    rewrite_metric(path, "test_loss", 1, HIST_E - 1, 0);
    expect_history_error(path, QSNN_ERR_MISMATCH, "metrics/test_loss");

    save_history(path, &b.h);
    rewrite_metric(path, "seconds", 1, HIST_E + 1, 0);
    expect_history_error(path, QSNN_ERR_MISMATCH, "metrics/seconds");

    save_history(path, &b.h);
    rewrite_metric(path, "firing_rate", 2, HIST_E - 1, HIST_L);
    expect_history_error(path, QSNN_ERR_MISMATCH, "metrics/firing_rate");

    save_history(path, &b.h); /* another layer count than firing_rate's */
    rewrite_metric(path, "test_firing_rate", 2, HIST_E, HIST_L + 1);
    expect_history_error(path, QSNN_ERR_MISMATCH, "metrics/test_firing_rate");

    save_history(path, &b.h); /* wrong rank */
    rewrite_metric(path, "train_accuracy", 2, HIST_E, 1);
    expect_history_error(path, QSNN_ERR_FORMAT, "metrics/train_accuracy");
}

Test(checkpoint, invalid_history_is_not_saved) {
    char path[400];
    path_in_dir(path, sizeof path, "ckpt.h5");
    hist_buf b;
    make_history(&b, 1);
    b.h.test_loss = NULL;
    qsnn_net_cfg cfg;
    small_cfg(&cfg, 7, 3);
    qsnn_net *net = make_net(&cfg, 1);
    cr_assert_eq(qsnn_checkpoint_save_with_history(ctx, path, net, CONFIG, NULL, NULL, &b.h), QSNN_ERR_ARG);
    cr_assert(strstr(qsnn_last_error(ctx), "test_loss") != NULL, "%s", qsnn_last_error(ctx));
    make_history(&b, 1);
    b.epoch[1] = b.epoch[0];
    cr_assert_eq(qsnn_checkpoint_save_with_history(ctx, path, net, CONFIG, NULL, NULL, &b.h), QSNN_ERR_ARG);
    cr_assert_eq(count_files(NULL), 0, "something was written");
    qsnn_net_destroy(&net);
}

/* A quantized convolutional network with a recurrent-free dense tail: conv weights are stored as
 * [out_channels][kh][kw][in_channels/groups], their codes as [out_channels][kh·kw·in/groups], and the
 * round trip is bit-exact. (Saving used to read dense-sized [out][in] codes past a conv's weights.) */
Test(checkpoint, conv_quantized_round_trip) {
    char path[400];
    path_in_dir(path, sizeof path, "conv.h5");
    qsnn_net_cfg cfg;
    qsnn_net_cfg_default(&cfg);
    cfg.n_inputs = 2 * 6 * 6;
    cfg.in_shape.n = 3, cfg.in_shape.v[0] = 2, cfg.in_shape.v[1] = 6, cfg.in_shape.v[2] = 6;
    cfg.n_specs = 2, cfg.n_layers = 3;
    cfg.spec[0] = (qsnn_layer_spec){.kind = QSNN_LAYER_CONV, .size = 4, .kernel = 3, .stride = 1, .padding = 1,
                                    .groups = 2, .pool = QSNN_POOL_MAX, .pool_size = 2};
    cfg.spec[1] = (qsnn_layer_spec){.kind = QSNN_LAYER_DENSE, .size = 7};
    cfg.sizes[0] = 4 * 3 * 3, cfg.sizes[1] = 7, cfg.sizes[2] = 3;
    cfg.weight_quant.bits = 4, cfg.state_quant.bits = 4;
    qsnn_net *a = make_net(&cfg, 42);
    qsnn_ckpt_meta meta = {1, 0.5, 0.5, 42, "test"};
    cr_assert_eq(qsnn_checkpoint_save(ctx, path, a, CONFIG, &meta), QSNN_OK, "%s", qsnn_last_error(ctx));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    int rank;
    hsize_t d[QSNN_H5_MAX_RANK];
    cr_assert_eq(qsnn_h5_dims(ctx, path, f, "params/layer0.weight", &rank, d), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_expect(rank == 4 && d[0] == 4 && d[1] == 3 && d[2] == 3 && d[3] == 1, "conv weight shape");
    cr_assert_eq(qsnn_h5_dims(ctx, path, f, "layers/layer0/weight_codes", &rank, d), QSNN_OK);
    cr_expect(rank == 2 && d[0] == 4 && d[1] == 9, "conv codes [out_c][kh·kw·in/groups]");
    cr_assert_eq(qsnn_h5_dims(ctx, path, f, "params/layer1.weight", &rank, d), QSNN_OK);
    cr_expect(rank == 2 && d[0] == 7 && d[1] == 36, "dense after conv: [out][in]");
    H5Fclose(f);
    qsnn_net *b = make_net(&cfg, 0);
    cr_assert_eq(qsnn_checkpoint_load_params(ctx, path, b), QSNN_OK, "%s", qsnn_last_error(ctx));
    for (int l = 0; l < 3; l++)
        cr_expect_eq(memcmp(a->layer[l].W, b->layer[l].W, a->layer[l].nw * sizeof(float)), 0, "layer %d", l);
    qsnn_net_destroy(&a);
    qsnn_net_destroy(&b);
}
