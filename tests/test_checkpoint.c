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
