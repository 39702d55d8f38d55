/* NIR export and import (io/nir.h, qsnn export / qsnn import): round trips that give the same spikes
 * bit for bit, files in other tools' conventions written here with the HDF5 C API, and bad files
 * refused with one line naming the node and dataset, leaving no output behind. */
#include "cli_harness.h"
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/run_setup.h"
#include "core/rng.h"
#include "io/nir.h"
#include "sim/engine.h"
#include "test_util.h"

#define DATA_DIR "/usr/share/datasets/fashion-mnist"
#define TINY                                                                                                           \
    "--set data.train_limit=1024 --set data.test_limit=512 --set model.hidden=64 --set data.steps=8 "                  \
    "--no-progress --epochs 1"
#define QUANT "--set quant.weight.bits=4 --set quant.state.bits=4"
#define N_SAMPLES 300


static void setup(void) { harness_setup("nir"); }
static void teardown(void) { harness_teardown(); }

TestSuite(nir, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers -------------------------------------------------------------------------------- */

/* Runs `qsnn ARGS` with stdout and stderr captured into out_text / err_text; returns the exit status. */
static int have_data(void) { return access(DATA_DIR "/t10k-images-idx3-ubyte.gz", R_OK) == 0; }
#define NEED_DATA()                                                                                                    \
    do {                                                                                                               \
        if (!have_data()) cr_skip_test("Fashion-MNIST not found in " DATA_DIR);                                        \
    } while (0)

static const char *train_tiny(const char *name, const char *extra) {
    static char model[512];
    const int rc = run("train " TINY " --out '%s' %s", tpath(name), extra ? extra : "");
    cr_assert_eq(rc, 0, "tiny training run failed (%d): %s", rc, err_text);
    snprintf(model, sizeof model, "%s/model.h5", tpath(name));
    return model;
}

/* Names of the files in tmpdir (besides the ones given), so tests see leftovers such as *.tmp.* */
static int count_files_with(const char *needle) {
    DIR *d = opendir(tmpdir);
    cr_assert_not_null(d);
    int k = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, needle)) k++;
    closedir(d);
    return k;
}

/* Bad input through the CLI: exit 1, exactly one stderr line containing every needle. */
static void assert_one_line(int rc, const char *what, const char *const *needles) {
    cr_assert_eq(rc, 1, "%s: exit status %d; stderr: %s", what, rc, err_text);
    const size_t len = strlen(err_text);
    cr_assert(len > 1 && err_text[len - 1] == '\n' && count_char(err_text, '\n') == 1,
              "%s: stderr is not exactly one line: [%s]", what, err_text);
    for (; *needles; needles++)
        cr_assert(strstr(err_text, *needles), "%s: [%.*s] does not name '%s'", what, (int)len - 1, err_text, *needles);
}
#define ASSERT_ONE_LINE(rc, what, ...) assert_one_line((rc), (what), (const char *const[]){__VA_ARGS__, NULL})

/* Every layer's spikes and the output layer's membranes of a forward pass over x ([B][in], static). */
typedef struct trace {
    float *S[QSNN_MAX_LAYERS];
    float *U;
    size_t nS[QSNN_MAX_LAYERS], nU;
    int n_layers;
} trace;

static trace run_net(qsnn_net *net, const float *x, int B, int T) {
    qsnn_workspace *ws = NULL;
    cr_assert_eq(qsnn_workspace_create(net, B, T, 0, &ws), QSNN_OK, "%s", qsnn_last_error(net->ctx));
    cr_assert_eq(qsnn_forward(net, ws, x, 1, B), QSNN_OK, "%s", qsnn_last_error(net->ctx));
    trace t = {.n_layers = net->n_layers};
    for (int l = 0; l < net->n_layers; l++) {
        t.nS[l] = (size_t)T * B * net->layer[l].out;
        t.S[l] = malloc(t.nS[l] * sizeof(float));
        memcpy(t.S[l], ws->buf[l].S, t.nS[l] * sizeof(float));
    }
    t.nU = t.nS[net->n_layers - 1];
    t.U = malloc(t.nU * sizeof(float));
    memcpy(t.U, ws->buf[net->n_layers - 1].U, t.nU * sizeof(float));
    qsnn_workspace_destroy(&ws);
    return t;
}

static void trace_free(trace *t) {
    for (int l = 0; l < t->n_layers; l++) free(t->S[l]);
    free(t->U);
}

static double total_spikes(const trace *t) {
    double s = 0;
    for (int l = 0; l < t->n_layers; l++)
        for (size_t i = 0; i < t->nS[l]; i++) s += t->S[l][i];
    return s;
}

static void assert_same_trace(const trace *a, const trace *b) {
    cr_assert_eq(a->n_layers, b->n_layers);
    for (int l = 0; l < a->n_layers; l++) {
        cr_assert_eq(a->nS[l], b->nS[l]);
        size_t diff = 0;
        for (size_t i = 0; i < a->nS[l]; i++) diff += a->S[l][i] != b->S[l][i];
        cr_assert_eq(diff, 0, "layer %d: %zu of %zu spike entries differ", l, diff, a->nS[l]);
    }
    cr_assert_eq(memcmp(a->U, b->U, a->nU * sizeof(float)), 0, "output membranes differ");
}

/* The first N_SAMPLES test images scaled to [0, 1] (direct encoding). */
static float *test_inputs(qsnn_ctx *ctx, const qsnn_config *cfg, int *B) {
    qsnn_dataset *ds = NULL;
    cr_assert_eq(qsnn_load_split(ctx, cfg, "t10k", &ds), QSNN_OK, "%s", qsnn_last_error(ctx));
    *B = ds->n < N_SAMPLES ? (int)ds->n : N_SAMPLES;
    float *x = malloc((size_t)*B * ds->features * sizeof *x);
    for (size_t i = 0; i < (size_t)*B * ds->features; i++) x[i] = ds->images[i] / 255.0f;
    qsnn_dataset_destroy(ctx, &ds);
    return x;
}

/* Trained model → export → import through the library: the same parameters and the same spikes. */
/* want_dropped: whether the import must fall back to float weights (see qsnn_nir_create_net). */
static void round_trip(const char *extra, int want_dropped) {
    NEED_DATA();
    const char *model = train_tiny("run", extra);
    qsnn_ctx *ctx = test_ctx(2);
    qsnn_config cfg;
    qsnn_ckpt_meta meta;
    qsnn_net *a = NULL, *b = NULL;
    cr_assert_eq(qsnn_open_model(ctx, model, NULL, &cfg, &meta, &a), QSNN_OK, "%s", qsnn_last_error(ctx));
    const char *nir = tpath("m.nir");
    cr_assert_eq(qsnn_nir_export(ctx, nir, a, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(count_files_with(".tmp."), 0, "a temporary file was left behind");

    qsnn_nir_model m;
    cr_assert_eq(qsnn_nir_import(ctx, nir, NULL, &m), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_str_eq(m.version, QSNN_NIR_VERSION);
    cr_assert_eq(m.n_layers, 2);
    cr_assert_eq(m.n_inputs, 784);
    cr_assert(m.dt_from_meta && m.dt == QSNN_NIR_DEFAULT_DT);
    qsnn_config cfg2;
    qsnn_config_default(&cfg2);
    cr_assert_eq(qsnn_nir_net_cfg(ctx, &m, &cfg2.model), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_config_resolve(&cfg2);
    cr_assert_eq(qsnn_config_check(ctx, &cfg2), QSNN_OK, "%s", qsnn_last_error(ctx));
    int dropped = -1;
    cr_assert_eq(qsnn_nir_create_net(ctx, &m, &cfg2.model, &b, &dropped), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(dropped, want_dropped);
    cr_assert_eq(cfg2.model.neuron_params.reset, cfg.model.neuron_params.reset);
    cr_assert_eq(cfg2.model.state_quant.grid, cfg.model.state_quant.grid);
    cr_assert_eq(cfg2.model.integer, cfg.model.integer);
    cr_assert_eq(cfg2.model.input_bits, cfg.model.input_bits);
    for (int l = 0; l < 2; l++) {
        cr_assert_eq(qsnn_net_cfg_state_bits(&cfg2.model, l), qsnn_net_cfg_state_bits(&cfg.model, l));
        if (!dropped) cr_assert_eq(qsnn_net_cfg_weight_bits(&cfg2.model, l), qsnn_net_cfg_weight_bits(&cfg.model, l));
    }
    for (int l = 0; l < 2; l++) {
        const qsnn_layer *A = &a->layer[l], *Bl = &b->layer[l];
        cr_assert(A->beta == Bl->beta && A->theta == Bl->theta, "layer %d: beta %.9g/%.9g theta %.9g/%.9g", l,
                  (double)A->beta, (double)Bl->beta, (double)A->theta, (double)Bl->theta);
        cr_assert_eq(memcmp(A->Wq, Bl->Wq, (size_t)A->in * A->out * sizeof(float)), 0, "layer %d: forward weights", l);
        const float *ba = A->bias_fwd ? A->bias_fwd : A->b, *bb = Bl->bias_fwd ? Bl->bias_fwd : Bl->b;
        cr_assert_eq(memcmp(ba, bb, (size_t)A->out * sizeof(float)), 0, "layer %d: forward bias", l);
        cr_assert(A->np.beta == Bl->np.beta && A->np.theta == Bl->np.theta, "layer %d: forward beta/theta", l);
        for (int k = 0; k < QSNN_PN_COUNT; k++) {
            cr_assert_eq(!A->pn[k], !Bl->pn[k], "layer %d: per-neuron parameter %d", l, k);
            if (A->pn[k]) cr_assert_eq(memcmp(A->pn[k], Bl->pn[k], A->out * sizeof(float)), 0, "layer %d: pn %d", l, k);
        }
        cr_assert_eq(A->sq.enabled, Bl->sq.enabled);
        if (A->sq.enabled) cr_assert_eq(memcmp(A->sq.levels, Bl->sq.levels, A->sq.n * sizeof(float)), 0);
        cr_assert_eq(m.layer[l].reset_from_meta, 1);
        cr_assert_eq(m.layer[l].beta_from_meta, 1);
        cr_assert_eq(m.layer[l].folded, 0);
    }
    int B;
    float *x = test_inputs(ctx, &cfg, &B);
    cr_assert_eq(B, N_SAMPLES);
    trace ta = run_net(a, x, B, cfg.data.steps), tb = run_net(b, x, B, cfg.data.steps);
    cr_assert_gt(total_spikes(&ta), 1000.0, "too few spikes for a meaningful comparison");
    assert_same_trace(&ta, &tb);
    trace_free(&ta);
    trace_free(&tb);
    free(x);
    qsnn_nir_model_free(ctx, &m);
    qsnn_net_destroy(&a);
    qsnn_net_destroy(&b);
    qsnn_ctx_destroy(&ctx);
}

Test(nir, round_trip_float_same_spikes) { round_trip(NULL, 0); }
Test(nir, round_trip_quantized_same_spikes) { round_trip(QUANT, 0); }
/* Integer-exact fake quantization (β and θ rounded onto grids, the bias on the accumulator grid),
 * and per-layer bit widths with quantized inputs. */
Test(nir, round_trip_integer_same_spikes) {
    round_trip("--set quant.integer=true --set quant.state.grid=fixed_point --set quant.weight.bits=4 "
               "--set quant.state.bits=6",
               0);
}
/* LSQ's learned step sizes travel in metadata; the affine quantizer cannot rebuild its min-max range
 * from its own output, so that import falls back to float weights, still with the same spikes. */
Test(nir, round_trip_per_neuron_same_spikes) {
    round_trip(QUANT " --set model.per_neuron=true --set model.learn_threshold=true --set model.learn_beta=true", 0);
}
Test(nir, round_trip_lsq_same_spikes) { round_trip(QUANT " --set quant.weight.method=lsq", 0); }
Test(nir, round_trip_learned_state_step_same_spikes) { round_trip(QUANT " --set quant.state.grid=lsq", 0); }
Test(nir, round_trip_current_quantizer_same_spikes) { round_trip(QUANT " --set quant.current.bits=6", 0); }
Test(nir, round_trip_affine_same_spikes) { round_trip(QUANT " --set quant.weight.method=uniform_affine", 1); }
Test(nir, round_trip_layer_bits_same_spikes) {
    round_trip("--set quant.weight.layer_bits=[8,4] --set quant.state.layer_bits=[0,4] --set quant.input.bits=4", 0);
}

/* "PATH: test accuracy 34.18% (175/512), loss 1.9469, rates ..., N samples/s": the part from
 * "test accuracy" up to the speed. */
static char *accuracy_part(const char *text) {
    const char *s = strstr(text, "test accuracy");
    cr_assert_not_null(s, "no accuracy in [%s]", text);
    const char *e = strstr(s, "samples/s");
    cr_assert_not_null(e);
    while (e > s && e[-1] != ',') e--;
    return strndup(s, (size_t)(e - s));
}

Test(nir, cli_export_import_eval_same_accuracy) {
    NEED_DATA();
    const char *model = train_tiny("run", QUANT);
    cr_assert_eq(run("export '%s' --nir '%s'", model, tpath("m.nir")), 0, "%s", err_text);
    cr_assert(strstr(out_text, "NIR " QSNN_NIR_VERSION " graph, 2 layers (784-64-10)"), "%s", out_text);
    cr_assert_eq(run("import '%s' --out '%s' --steps 8 --set data.test_limit=512", tpath("m.nir"), tpath("i.h5")), 0,
                 "%s", err_text);
    cr_assert(strstr(out_text, "reset subtract"), "%s", out_text);
    cr_assert_eq(run("eval '%s' --no-progress", model), 0, "%s", err_text);
    char *want = accuracy_part(out_text);
    cr_assert_eq(run("eval '%s' --no-progress", tpath("i.h5")), 0, "%s", err_text);
    char *got = accuracy_part(out_text);
    cr_assert_str_eq(got, want);
    free(want);
    free(got);
    /* and the imported model exports again to the same weights */
    cr_assert_eq(run("export '%s' --nir '%s' --dt 0.001", tpath("i.h5"), tpath("again.nir")), 0, "%s", err_text);
    cr_assert(strstr(out_text, "dt 0.001 s"), "%s", out_text);
}

/* ---- in-process networks (no training): IF nodes, Linear nodes, reset rules ----------------- */

static qsnn_net *small_net(qsnn_ctx *ctx, int bias, qsnn_reset reset, float beta0) {
    qsnn_net_cfg c;
    qsnn_net_cfg_default(&c);
    c.n_inputs = 20;
    c.n_layers = 3;
    c.sizes[0] = 16, c.sizes[1] = 12, c.sizes[2] = 5;
    c.bias = bias;
    c.neuron_params.reset = reset;
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_net_create(ctx, &c, &net), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net_init(net, 7);
    for (int l = 0; l < 3; l++)
        for (size_t i = 0; i < (size_t)net->layer[l].in * net->layer[l].out; i++) net->layer[l].W[i] *= 4.0f;
    net->layer[0].beta = beta0;
    net->layer[1].beta = 0.8125f;
    net->layer[2].theta = 0.75f;
    cr_assert_eq(qsnn_net_prepare(net), QSNN_OK);
    return net;
}

static float *random_inputs(int B, int n) {
    float *x = malloc((size_t)B * n * sizeof *x);
    qsnn_rng r;
    qsnn_rng_init(&r, 3, 0);
    for (int i = 0; i < B * n; i++) x[i] = qsnn_rng_uniform(&r);
    return x;
}

static char *read_type(const char *file, const char *node) {
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    char path[128];
    snprintf(path, sizeof path, "/node/nodes/%s/type", node);
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    cr_assert_geq(d, 0, "no %s", path);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8); /* as written: HDF5 does not convert between ASCII and UTF-8 */
    char *s = NULL;
    cr_assert_geq(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s), 0);
    char *out = strdup(s);
    H5free_memory(s);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    return out;
}

Test(nir, in_process_if_linear_zero_reset) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_net *a = small_net(ctx, 0, QSNN_RESET_ZERO, 1.0f), *b = NULL;
    const char *nir = tpath("s.nir");
    qsnn_nir_export_opts o = {2e-3, NULL};
    cr_assert_eq(qsnn_nir_export(ctx, nir, a, &o), QSNN_OK, "%s", qsnn_last_error(ctx));
    char *t0 = read_type(nir, "lif0"), *t1 = read_type(nir, "lif1"), *f0 = read_type(nir, "fc0");
    cr_assert_str_eq(t0, "IF"); /* β = 1: τ would be infinite */
    cr_assert_str_eq(t1, "LIF");
    cr_assert_str_eq(f0, "Linear");
    free(t0), free(t1), free(f0);
    qsnn_nir_model m;
    cr_assert_eq(qsnn_nir_import(ctx, nir, NULL, &m), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(m.dt, 2e-3);
    cr_assert_null(m.layer[0].b);
    qsnn_net_cfg c;
    qsnn_net_cfg_default(&c);
    cr_assert_eq(qsnn_nir_net_cfg(ctx, &m, &c), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(c.bias, 0);
    cr_assert_eq(c.neuron_params.reset, QSNN_RESET_ZERO);
    cr_assert_eq(qsnn_nir_create_net(ctx, &m, &c, &b, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(b->layer[0].beta, 1.0f);
    cr_assert_eq(b->layer[1].beta, 0.8125f);
    cr_assert_eq(b->layer[2].theta, 0.75f);
    float *x = random_inputs(64, 20);
    trace ta = run_net(a, x, 64, 12), tb = run_net(b, x, 64, 12);
    cr_assert_gt(total_spikes(&ta), 100.0);
    assert_same_trace(&ta, &tb);
    trace_free(&ta), trace_free(&tb);
    free(x);
    qsnn_nir_model_free(ctx, &m);
    qsnn_net_destroy(&a);
    qsnn_net_destroy(&b);
    qsnn_ctx_destroy(&ctx);
}

/* Without metadata (as other tools write), beta comes from tau alone and the reset is NIR's "zero";
 * --reset / opts.reset overrides. */
Test(nir, import_reset_override) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_net *a = small_net(ctx, 1, QSNN_RESET_SUBTRACT, 0.9f);
    cr_assert_eq(qsnn_nir_export(ctx, tpath("s.nir"), a, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_nir_import_opts o = {0, QSNN_RESET_NONE};
    qsnn_nir_model m;
    cr_assert_eq(qsnn_nir_import(ctx, tpath("s.nir"), &o, &m), QSNN_OK, "%s", qsnn_last_error(ctx));
    for (int l = 0; l < 3; l++) cr_assert_eq(m.layer[l].reset, QSNN_RESET_NONE);
    qsnn_nir_model_free(ctx, &m);
    qsnn_net_destroy(&a);
    qsnn_ctx_destroy(&ctx);
}

/* ---- fixtures in other tools' conventions ----------------------------------------------------- */

enum {
    FX_OK = 0,
    FX_CUBA,       /* the neuron node of the nested graph is a CubaLIF */
    FX_UNKNOWN_DS, /* an extra dataset in an Affine node */
    FX_NO_WEIGHT,  /* the Affine lacks its weight */
    FX_BAD_SHAPE,  /* bias [5] for 3 neurons */
    FX_VLEAK,      /* v_leak != 0 */
    FX_TAU_VARIES, /* per-neuron tau */
    FX_BRANCH,     /* the flatten feeds two nodes */
    FX_RECURRENT,  /* the nested graph is a recurrent LIF: lif -> w_rec -> lif */
    FX_NAN,        /* a NaN weight */
    FX_NO_NODE,    /* no /node group */
    FX_LIF_SHAPE,  /* v_threshold [2] for 3 neurons */
};

static hid_t fx_group(hid_t loc, const char *name) {
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(g, 0);
    return g;
}

/* Fixed-length, NUL-padded strings (what older h5py and MATLAB write). */
static void fx_str(hid_t loc, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, strlen(v) + 3);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    char buf[64] = {0};
    snprintf(buf, sizeof buf, "%s", v);
    hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(d, 0);
    cr_assert_geq(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
    H5Dclose(d), H5Sclose(sp), H5Tclose(t);
}

static void fx_num(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims,
                   const void *v) {
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(d, 0);
    cr_assert_geq(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d), H5Sclose(sp);
}
static void fx_f64(hid_t loc, const char *name, int rank, const hsize_t *dims, const double *v) {
    fx_num(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rank, dims, v);
}
static void fx_i64(hid_t loc, const char *name, int rank, const hsize_t *dims, const int64_t *v) {
    fx_num(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, rank, dims, v);
}

/* [E][2] fixed-length edge names. */
static void fx_edges(hid_t loc, const char *const (*e)[2], int E) {
    const size_t W = 24;
    char *buf = calloc((size_t)E * 2, W);
    for (int i = 0; i < E; i++)
        for (int k = 0; k < 2; k++) snprintf(buf + (2 * i + k) * W, W, "%s", e[i][k]);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, W);
    hsize_t dims[2] = {(hsize_t)E, 2};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(loc, "edges", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
    H5Dclose(d), H5Sclose(sp), H5Tclose(t);
    free(buf);
}

static hid_t fx_node(hid_t nodes, const char *name, const char *type) {
    hid_t g = fx_group(nodes, name);
    fx_str(g, "type", type);
    return g;
}

/* The fixture's parameters: layer 0 (nested graph "block": Affine w0/b0 + LIF), layer 1 (Linear w1 +
 * LIF with r = 1, so the gain dt/tau is folded into w1). */
static const double w0[3][4] = {{0.5, -0.25, 1.0, 0.125}, {-1.5, 2.0, 0.3, -0.7}, {0.9, 0.1, -0.2, 0.45}};
static const double b0[3] = {0.1, -0.2, 0.05};
static const double w1[2][3] = {{10.0, -20.0, 30.0}, {-40.0, 55.5, 0.25}};
#define TAU0 0.002
#define TAU1 0.01
#define THR0 0.5
#define THR1 1.5

static void write_fixture(const char *path, int variant) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    fx_str(f, "version", "0.5.0");
    if (variant == FX_NO_NODE) {
        H5Fclose(f);
        return;
    }
    hid_t top = fx_group(f, "node");
    fx_str(top, "type", "NIRGraph");
    hid_t nodes = fx_group(top, "nodes");
    hsize_t d1 = 1, d3 = 3, d2 = 2, dw0[2] = {3, 4}, dw1[2] = {2, 3}, din = 3;
    const int64_t in_shape[3] = {1, 2, 2}, three = 3, two = 2;
    /* created in an order that is not the chain's */
    hid_t g = fx_node(nodes, "out", "Output");
    fx_i64(g, "shape", 1, &d1, &two);
    H5Gclose(g);
    g = fx_node(nodes, "neu", "LIF");
    /* one value for the whole layer, shape [] or [1] (snnTorch writes a scalar β's parameters so) */
    const double tau1 = TAU1, r1 = 1.0, z2[2] = {0, 0}, thr1 = THR1, zero = 0;
    fx_f64(g, "tau", 0, NULL, &tau1);
    fx_f64(g, "r", 1, &d1, &r1);
    fx_f64(g, "v_leak", 0, NULL, &zero);
    fx_f64(g, "v_threshold", 0, NULL, &thr1);
    fx_f64(g, "v_reset", 1, &d2, z2);
    H5Gclose(g);
    g = fx_node(nodes, "lin", "Linear");
    fx_f64(g, "weight", 2, dw1, &w1[0][0]);
    H5Gclose(g);
    g = fx_node(nodes, "in", "Input");
    fx_i64(g, "shape", 1, &din, in_shape);
    H5Gclose(g);
    g = fx_node(nodes, "flat", "Flatten");
    const int64_t sd = 0, ed = -1;
    fx_i64(g, "start_dim", 0, NULL, &sd);
    fx_i64(g, "end_dim", 0, NULL, &ed);
    H5Gclose(g);

    hid_t blk = fx_node(nodes, "block", "NIRGraph");
    hid_t bn = fx_group(blk, "nodes");
    g = fx_node(bn, "o", "Output");
    fx_i64(g, "shape", 1, &d1, &three);
    H5Gclose(g);
    g = fx_node(bn, "n", variant == FX_CUBA ? "CubaLIF" : "LIF");
    double tau0[3] = {TAU0, TAU0, TAU0}, r0[3], thr0[3] = {THR0, THR0, THR0};
    for (int j = 0; j < 3; j++) r0[j] = TAU0 / 1e-4;
    if (variant == FX_TAU_VARIES) tau0[2] = 0.004;
    double vl[3] = {0, variant == FX_VLEAK ? 0.5 : 0, 0};
    fx_f64(g, "tau", 1, &d3, tau0);
    fx_f64(g, "r", 1, &d3, r0);
    fx_f64(g, "v_leak", 1, &d3, vl);
    if (variant == FX_LIF_SHAPE) fx_f64(g, "v_threshold", 1, &d2, thr0);
    else fx_f64(g, "v_threshold", 1, &d3, thr0); /* no v_reset: 0 */
    H5Gclose(g);
    g = fx_node(bn, "w", "Affine");
    double wbad[3][4];
    memcpy(wbad, w0, sizeof wbad);
    if (variant == FX_NAN) wbad[1][2] = NAN;
    if (variant != FX_NO_WEIGHT) fx_f64(g, "weight", 2, dw0, &wbad[0][0]);
    const double b5[5] = {0};
    if (variant == FX_BAD_SHAPE) fx_f64(g, "bias", 1, (hsize_t[]){5}, b5);
    else fx_f64(g, "bias", 1, &d3, b0);
    if (variant == FX_UNKNOWN_DS) fx_f64(g, "gain", 1, &d3, b0);
    H5Gclose(g);
    g = fx_node(bn, "i", "Input");
    fx_i64(g, "shape", 1, &d1, (const int64_t[]){4});
    H5Gclose(g);
    if (variant == FX_RECURRENT) {
        g = fx_node(bn, "w_rec", "Linear");
        const double wr[9] = {0};
        fx_f64(g, "weight", 2, (hsize_t[]){3, 3}, wr);
        H5Gclose(g);
        static const char *const e[][2] = {{"n", "o"}, {"w_rec", "n"}, {"i", "w"}, {"w", "n"}, {"n", "w_rec"}};
        fx_edges(blk, e, 5);
    } else {
        static const char *const e[][2] = {{"n", "o"}, {"i", "w"}, {"w", "n"}};
        fx_edges(blk, e, 3);
    }
    H5Gclose(bn);
    H5Gclose(blk);
    if (variant == FX_BRANCH) {
        static const char *const e[][2] = {{"neu", "out"},    {"in", "flat"}, {"block", "lin"},
                                           {"flat", "block"}, {"lin", "neu"}, {"flat", "lin"}};
        fx_edges(top, e, 6);
    } else {
        static const char *const e[][2] = {
            {"neu", "out"}, {"in", "flat"}, {"block", "lin"}, {"flat", "block"}, {"lin", "neu"}};
        fx_edges(top, e, 5);
    }
    H5Gclose(nodes);
    H5Gclose(top);
    H5Fclose(f);
}

Test(nir, foreign_fixture_imports) {
    const char *p = tpath("foreign.nir");
    write_fixture(p, FX_OK);
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_nir_model m;
    cr_assert_eq(qsnn_nir_import(ctx, p, NULL, &m), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_str_eq(m.version, "0.5.0");
    cr_assert_eq(m.n_inputs, 4);
    cr_assert_eq(m.n_layers, 2);
    cr_assert_eq(m.dt, QSNN_NIR_DEFAULT_DT);
    cr_assert_eq(m.dt_from_meta, 0);
    const qsnn_nir_layer *L0 = &m.layer[0], *L1 = &m.layer[1];
    cr_assert_str_eq(L0->fc_node, "block/w");
    cr_assert_str_eq(L0->lif_node, "block/n");
    cr_assert_str_eq(L1->fc_node, "lin");
    cr_assert(L0->in == 4 && L0->out == 3 && L1->in == 3 && L1->out == 2);
    cr_assert_eq(L0->beta, (float)(1.0 - 1e-4 / TAU0)); /* 0.95 */
    cr_assert_eq(L1->beta, (float)(1.0 - 1e-4 / TAU1)); /* 0.99 */
    cr_assert_eq(L0->theta, (float)THR0);
    cr_assert_eq(L1->theta, (float)THR1);
    cr_assert(L0->reset == QSNN_RESET_ZERO && L1->reset == QSNN_RESET_ZERO && !L0->reset_from_meta);
    cr_assert(!L0->beta_from_meta && !L0->has_state_quant && !L0->has_weight_quant);
    cr_assert_eq(L0->folded, 0); /* r = tau/dt */
    cr_assert_eq(L1->folded, 1); /* r = 1: gain dt/tau = 0.01 folded into the weights */
    for (int o = 0; o < 3; o++) {
        cr_assert_eq(L0->b[o], (float)b0[o]);
        for (int i = 0; i < 4; i++) cr_assert_eq(L0->W[o * 4 + i], (float)w0[o][i]);
    }
    cr_assert_null(L1->b);
    const double gain = 1.0 * (1e-4 / TAU1);
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < 3; i++) cr_assert_eq(L1->W[o * 3 + i], (float)((double)(float)w1[o][i] * gain));
    cr_assert(fabsf(L1->W[1 * 3 + 1] - 0.555f) < 1e-6f);

    qsnn_net_cfg c;
    qsnn_net_cfg_default(&c);
    c.state_quant.bits = 3; /* the file has no quantizer: off */
    cr_assert_eq(qsnn_nir_net_cfg(ctx, &m, &c), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert(c.n_inputs == 4 && c.n_layers == 2 && c.sizes[0] == 3 && c.sizes[1] == 2 && c.bias == 1);
    cr_assert(c.state_quant.bits == 0 && c.weight_quant.bits == 0);
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_nir_create_net(ctx, &m, &c, &net, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(net->layer[1].b[0], 0.0f); /* Linear: zero bias */
    cr_assert_eq(net->layer[0].beta, 0.95f);
    /* One hand-checked step: x = (1, 1, 1, 1) gives I = rowsum(w0) + b0 = (1.475, -0.1, 1.3); U = I at
     * t = 0 (U starts at 0), so neurons 0 and 2 spike (> 0.5). */
    const float x[4] = {1, 1, 1, 1};
    trace t = run_net(net, x, 1, 1);
    cr_assert(t.S[0][0] == 1.0f && t.S[0][1] == 0.0f && t.S[0][2] == 1.0f, "%g %g %g", t.S[0][0], t.S[0][1], t.S[0][2]);
    trace_free(&t);
    qsnn_net_destroy(&net);
    qsnn_nir_model_free(ctx, &m);
    qsnn_ctx_destroy(&ctx);
}

/* --dt where the file has no dt: β = 1 − dt/τ, and r = τ/(1e-4) now means a gain r·dt/τ of 10,
 * folded into the weights and bias. */
Test(nir, foreign_fixture_dt_option) {
    const char *p = tpath("foreign.nir");
    write_fixture(p, FX_OK);
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_nir_import_opts o = {1e-3, -1};
    qsnn_nir_model m;
    cr_assert_eq(qsnn_nir_import(ctx, p, &o, &m), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(m.dt, 1e-3);
    cr_assert_eq(m.layer[0].beta, (float)(1.0 - 1e-3 / TAU0)); /* 0.5 */
    cr_assert_eq(m.layer[0].folded, 1);
    const double g = (TAU0 / 1e-4) * (1e-3 / TAU0);
    cr_assert_eq(m.layer[0].W[5], (float)((double)(float)w0[1][1] * g));
    cr_assert_eq(m.layer[0].b[2], (float)((double)(float)b0[2] * g));
    qsnn_nir_model_free(ctx, &m);
    o.dt = -1;
    cr_assert_eq(qsnn_nir_import(ctx, p, &o, &m), QSNN_ERR_ARG);
    qsnn_ctx_destroy(&ctx);
}

/* A file whose metadata claims 4-bit weights that are not on any 4-bit grid: the rebuilt quantizer
 * would change them, so the import keeps them as float weights (and says so) and computes exactly
 * what the file describes. */
Test(nir, weight_quant_fallback_keeps_weights) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_net *a = small_net(ctx, 1, QSNN_RESET_SUBTRACT, 0.9f), *b = NULL;
    const char *nir = tpath("s.nir");
    cr_assert_eq(qsnn_nir_export(ctx, nir, a, NULL), QSNN_OK, "%s", qsnn_last_error(ctx));
    hid_t f = H5Fopen(nir, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    const int64_t four = 4;
    for (int l = 0; l < 3; l++) {
        char path[64];
        snprintf(path, sizeof path, "/node/nodes/fc%d", l);
        hid_t g = H5Gopen2(f, path, H5P_DEFAULT);
        hid_t md = fx_group(g, "metadata");
        fx_i64(md, "weight_quant_bits", 0, NULL, &four);
        H5Gclose(md), H5Gclose(g);
    }
    H5Fclose(f);
    qsnn_nir_model m;
    cr_assert_eq(qsnn_nir_import(ctx, nir, NULL, &m), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert(m.layer[0].has_weight_quant && m.layer[0].weight_quant.bits == 4);
    qsnn_net_cfg c;
    qsnn_net_cfg_default(&c);
    cr_assert_eq(qsnn_nir_net_cfg(ctx, &m, &c), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(c.weight_quant.bits, 4);
    int dropped = 0;
    cr_assert_eq(qsnn_nir_create_net(ctx, &m, &c, &b, &dropped), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(dropped, 1);
    cr_assert_eq(c.weight_quant.bits, 0);
    float *x = random_inputs(64, 20);
    trace ta = run_net(a, x, 64, 12), tb = run_net(b, x, 64, 12);
    assert_same_trace(&ta, &tb);
    trace_free(&ta), trace_free(&tb);
    free(x);
    qsnn_nir_model_free(ctx, &m);
    qsnn_net_destroy(&a);
    qsnn_net_destroy(&b);
    qsnn_ctx_destroy(&ctx);
}

/* Bad fixtures through the library: the status and the exact wording. */
static void expect_refused(int variant, qsnn_status want, const char *const *needles) {
    const char *p = tpath("bad.nir");
    write_fixture(p, variant);
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_nir_model m;
    const qsnn_status st = qsnn_nir_import(ctx, p, NULL, &m);
    cr_assert_eq(st, want, "variant %d: status %d, message: %s", variant, st, qsnn_last_error(ctx));
    cr_assert_eq(m.n_layers, 0);
    const char *msg = qsnn_last_error(ctx);
    cr_assert_null(strchr(msg, '\n'), "more than one line: %s", msg);
    for (; *needles; needles++) cr_assert(strstr(msg, *needles), "variant %d: [%s] lacks '%s'", variant, msg, *needles);
    qsnn_ctx_destroy(&ctx);
}
#define REFUSED(v, st, ...) expect_refused((v), (st), (const char *const[]){__VA_ARGS__, NULL})

Test(nir, bad_fixtures_refused) {
    REFUSED(FX_CUBA, QSNN_ERR_UNSUPPORTED, "node 'block/n': CubaLIF is not supported yet");
    REFUSED(FX_UNKNOWN_DS, QSNN_ERR_FORMAT, "node 'block/w': unknown dataset 'gain' (Affine nodes have weight, bias)");
    REFUSED(FX_NO_WEIGHT, QSNN_ERR_FORMAT, "node 'block/w': dataset 'weight' is missing");
    REFUSED(FX_BAD_SHAPE, QSNN_ERR_MISMATCH, "node 'block/w': bias has shape [5], expected [3] (one per neuron)");
    REFUSED(FX_LIF_SHAPE, QSNN_ERR_MISMATCH,
            "node 'block/n': v_threshold has shape [2], expected [3] (one per neuron, or one value for all)");
    REFUSED(FX_VLEAK, QSNN_ERR_UNSUPPORTED, "node 'block/n': v_leak[1] = 0.5; qsnn's LIF has no leak potential");
    REFUSED(FX_BRANCH, QSNN_ERR_UNSUPPORTED, "node 'flat': feeds 2 nodes");
    REFUSED(FX_RECURRENT, QSNN_ERR_UNSUPPORTED, "node 'block': recurrent subgraph", "qsnn has no recurrent layers yet");
    REFUSED(FX_NAN, QSNN_ERR_NUMERIC, "node 'block/w': weight[6] is nan");
    REFUSED(FX_NO_NODE, QSNN_ERR_FORMAT, "not a NIR file (no group /node)");
}

/* τ differing across neurons (snnTorch with a per-neuron β): a per-neuron layer, each β_j = 1 − dt/τ_j,
 * and neuron 2's input gain r·dt/τ = 0.5 folded into its weights. */
Test(nir, foreign_per_neuron_tau_imports) {
    const char *p = tpath("pern.nir");
    write_fixture(p, FX_TAU_VARIES);
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_nir_model m;
    cr_assert_eq(qsnn_nir_import(ctx, p, NULL, &m), QSNN_OK, "%s", qsnn_last_error(ctx));
    const qsnn_nir_layer *L = &m.layer[0];
    cr_assert_not_null(L->beta_n);
    const double dt = m.dt, want[3] = {1.0 - dt / TAU0, 1.0 - dt / TAU0, 1.0 - dt / 0.004};
    for (int j = 0; j < 3; j++) {
        cr_expect_float_eq(L->beta_n[j], (float)want[j], 1e-7, "beta[%d]", j);
        cr_expect_float_eq(L->theta_n[j], (float)THR0, 1e-7, "theta[%d]", j);
    }
    cr_expect_eq(L->folded, 1, "neuron 2's gain r*dt/tau = 0.5");
    cr_expect_null(m.layer[1].beta_n, "the uniform layer stays per layer");
    qsnn_config cfg;
    qsnn_config_default(&cfg);
    cr_assert_eq(qsnn_nir_net_cfg(ctx, &m, &cfg.model), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(cfg.model.per_neuron, 1);
    qsnn_config_resolve(&cfg);
    qsnn_net *net = NULL;
    int dropped = -1;
    cr_assert_eq(qsnn_nir_create_net(ctx, &m, &cfg.model, &net, &dropped), QSNN_OK, "%s", qsnn_last_error(ctx));
    for (int j = 0; j < 3; j++) cr_expect_eq(net->layer[0].pn[QSNN_PN_BETA][j], L->beta_n[j]);
    for (int j = 0; j < 2; j++) cr_expect_eq(net->layer[1].pn[QSNN_PN_BETA][j], m.layer[1].beta, "uniform layer repeats");
    qsnn_net_destroy(&net);
    qsnn_nir_model_free(ctx, &m);
    qsnn_ctx_destroy(&ctx);
}

/* Through the CLI: one line, exit 1, no output file and no temporary left. */
Test(nir, cli_bad_files_one_line_no_output) {
    write_fixture(tpath("cuba.nir"), FX_CUBA);
    ASSERT_ONE_LINE(run("import '%s' --out '%s'", tpath("cuba.nir"), tpath("x.h5")), "CubaLIF",
                    "qsnn import: ", "cuba.nir: node 'block/n': CubaLIF is not supported yet");
    write_fixture(tpath("unk.nir"), FX_UNKNOWN_DS);
    ASSERT_ONE_LINE(run("import '%s' --out '%s'", tpath("unk.nir"), tpath("x.h5")), "unknown dataset", "node 'block/w'",
                    "unknown dataset 'gain'");
    write_fixture(tpath("now.nir"), FX_NO_WEIGHT);
    ASSERT_ONE_LINE(run("import '%s' --out '%s'", tpath("now.nir"), tpath("x.h5")), "missing weight", "node 'block/w'",
                    "'weight' is missing");
    write_fixture(tpath("shape.nir"), FX_BAD_SHAPE);
    ASSERT_ONE_LINE(run("import '%s' --out '%s'", tpath("shape.nir"), tpath("x.h5")), "wrong shape", "node 'block/w'",
                    "bias has shape [5]");
    /* truncated: the first half of a valid file */
    write_fixture(tpath("ok.nir"), FX_OK);
    char *whole = NULL;
    {
        FILE *fi = fopen(tpath("ok.nir"), "rb");
        fseek(fi, 0, SEEK_END);
        long n = ftell(fi);
        fseek(fi, 0, SEEK_SET);
        whole = malloc((size_t)n);
        cr_assert_eq(fread(whole, 1, (size_t)n, fi), (size_t)n);
        fclose(fi);
        FILE *fo = fopen(tpath("trunc.nir"), "wb");
        fwrite(whole, 1, (size_t)n / 2, fo);
        fclose(fo);
    }
    free(whole);
    ASSERT_ONE_LINE(run("import '%s' --out '%s'", tpath("trunc.nir"), tpath("x.h5")), "truncated",
                    "trunc.nir: not an HDF5 file, or truncated");
    FILE *fo = fopen(tpath("text.nir"), "w");
    fputs("this is not HDF5\n", fo);
    fclose(fo);
    ASSERT_ONE_LINE(run("import '%s' --out '%s'", tpath("text.nir"), tpath("x.h5")), "not HDF5",
                    "text.nir: not an HDF5 file, or truncated");
    ASSERT_ONE_LINE(run("import '%s' --out '%s'", tpath("missing.nir"), tpath("x.h5")), "missing file",
                    "missing.nir: cannot open: No such file or directory");
    cr_assert_eq(access(tpath("x.h5"), F_OK), -1, "an output file was written for a bad input");
    cr_assert_eq(count_files_with(".tmp."), 0, "a temporary file was left behind");
    /* export: a missing model, an output folder that does not exist */
    ASSERT_ONE_LINE(run("export '%s' --nir '%s'", tpath("nope.h5"), tpath("y.nir")), "missing model",
                    "qsnn export: ", "nope.h5: cannot open");
    cr_assert_eq(access(tpath("y.nir"), F_OK), -1);
    /* usage errors exit 2 */
    cr_assert_eq(run("export"), 2);
    cr_assert_eq(run("import '%s'", tpath("ok.nir")), 2);
    cr_assert_eq(run("import '%s' --out '%s' --dt -1", tpath("ok.nir"), tpath("x.h5")), 2);
    cr_assert_eq(run("import '%s' --out '%s' --reset sideways", tpath("ok.nir"), tpath("x.h5")), 2);
    cr_assert_eq(run("export --help"), 0);
    cr_assert(strstr(out_text, "--dt S"), "%s", out_text);
    cr_assert_eq(run("import --help"), 0);
    cr_assert(strstr(out_text, "--steps T") && strstr(out_text, "--reset RULE"), "%s", out_text);
    /* the good fixture through the CLI: a model file, with the note about the folded gain */
    cr_assert_eq(run("import '%s' --out '%s'", tpath("ok.nir"), tpath("ok.h5")), 0, "%s", err_text);
    cr_assert(strstr(out_text, "2 layers (4-3-2)") && strstr(out_text, "reset zero"), "%s", out_text);
    cr_assert(strstr(out_text, "note: node neu: input gain"), "%s", out_text);
}

Test(nir, export_refuses_missing_folder) {
    NEED_DATA();
    const char *model = train_tiny("run", NULL);
    ASSERT_ONE_LINE(run("export '%s' --nir '%s'", model, tpath("no/such/dir/m.nir")), "missing folder",
                    "qsnn export: ", "cannot create the temporary file");
    cr_assert_eq(access(tpath("no"), F_OK), -1);
}
