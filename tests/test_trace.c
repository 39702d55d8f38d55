/* Trace files (io/trace.h): the writer's layout read back through the HDF5 C API, the reader's
 * round trip, re-simulation of a recorded quantized model reproducing every logged spike and
 * membrane bit for bit, refused files, and qsnn record end to end (one-line errors, Ctrl-C leaves
 * nothing behind). */
#include "cli_harness.h"
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/config.h"
#include "io/trace.h"
#include "io/trace_compare.h"
#include "sim/engine.h"
#include "test_util.h"

#define DATA_DIR "/usr/share/datasets/fashion-mnist"
#define TINY                                                                                                    \
    "--set data.train_limit=512 --set data.test_limit=512 --set model.hidden=64 --set data.steps=8 "          \
    "--no-progress --epochs 1"
#define Q4 "--set quant.weight.bits=4 --set quant.state.bits=4"


static void setup(void) { harness_setup("trace"); }
static void teardown(void) { harness_teardown(); }

TestSuite(trace, .init = setup, .fini = teardown, .timeout = 120);

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void assert_fails_one_line(int rc, int want_rc, const char *what, const char *const *needles) {
    cr_assert_eq(rc, want_rc, "%s: exit status %d, expected %d; stderr: %s", what, rc, want_rc, err_text);
    const size_t len = strlen(err_text);
    cr_assert(len > 1 && err_text[len - 1] == '\n' && count_char(err_text, '\n') == 1,
              "%s: stderr is not exactly one line: [%s]", what, err_text);
    for (; *needles; needles++)
        cr_assert(strstr(err_text, *needles) != NULL, "%s: the message [%.*s] does not name '%s'", what, (int)len - 1,
                  err_text, *needles);
}
#define ASSERT_FAILS(rc, want, what, ...) \
    assert_fails_one_line((rc), (want), (what), (const char *const[]){__VA_ARGS__, NULL})

#define NEED_DATA()                                                                                     \
    do {                                                                                                \
        if (access(DATA_DIR "/t10k-images-idx3-ubyte.gz", R_OK) != 0 &&                                \
            access(DATA_DIR "/t10k-images-idx3-ubyte", R_OK) != 0)                                      \
            cr_skip_test("Fashion-MNIST not found in " DATA_DIR);                                       \
    } while (0)

static const char *train_tiny(const char *name, const char *extra) {
    static char model[512];
    const int rc = run("train " TINY " --out '%s' %s", tpath(name), extra ? extra : "");
    cr_assert_eq(rc, 0, "tiny training run failed (%d): %s", rc, err_text);
    snprintf(model, sizeof model, "%s/model.h5", tpath(name));
    return model;
}

/* --- a small network built by hand (no dataset needed) ------------------------------------------ */

static qsnn_net *hand_net(qsnn_ctx *ctx, int n_in, int h, int out, int quant) {
    qsnn_net_cfg c;
    qsnn_net_cfg_default(&c);
    c.n_inputs = n_in;
    c.n_layers = 2;
    c.sizes[0] = h;
    c.sizes[1] = out;
    if (quant) {
        c.state_quant.bits = 4;
        c.state_quant.grid = QSNN_GRID_UNIFORM;
        c.state_quant.lower_limit = 0.0;
        c.state_quant.upper_limit = 0.2;
        c.weight_quant.bits = 4;
    }
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_net_create(ctx, &c, &net), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net_init(net, 7);
    for (int l = 0; l < 2; l++) /* strong positive weights: most neurons fire */
        for (int i = 0; i < net->layer[l].out * net->layer[l].in; i++) net->layer[l].W[i] = 0.05f + 3.0f * fabsf(net->layer[l].W[i]);
    cr_assert_eq(qsnn_net_prepare(net), QSNN_OK);
    return net;
}

/* Records N samples of a static input x [N][F] through `net` in batches of B; returns the dense
 * spikes of every layer as 0/1 bytes [l][n][t][j] in *spk (for comparison). */
static void record_hand(qsnn_ctx *ctx, const char *path, qsnn_net *net, const float *x, int N, int T, int B,
                        const qsnn_trace_sel *sel, unsigned char **spk) {
    const int F = net->cfg.n_inputs;
    qsnn_workspace *ws;
    cr_assert_eq(qsnn_workspace_create(net, B, T, 1, &ws), QSNN_OK);
    qsnn_trace_writer *w;
    const qsnn_trace_meta meta = {42, "test record_hand", "hand", "model: {}\n"};
    cr_assert_eq(qsnn_trace_writer_create(ctx, path, &meta, &w), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(qsnn_trace_begin(w, NULL, net, N, T, F, B, "direct", 1, 0xFFFFFFFFull, 0, sel), QSNN_OK, "%s",
                 qsnn_last_error(ctx));
    for (int l = 0; l < net->n_layers; l++) spk[l] = calloc((size_t)N * T * net->layer[l].out, 1);
    int64_t ids[64];
    int y[64];
    for (int s0 = 0; s0 < N; s0 += B) {
        const int b = N - s0 < B ? N - s0 : B;
        for (int i = 0; i < b; i++) ids[i] = 1000 + s0 + i, y[i] = (s0 + i) % 10;
        cr_assert_eq(qsnn_forward(net, ws, x + (size_t)s0 * F, 1, b), QSNN_OK);
        for (int l = 0; l < net->n_layers; l++) {
            const int o = net->layer[l].out;
            for (int i = 0; i < b; i++)
                for (int t = 0; t < T; t++)
                    for (int j = 0; j < o; j++)
                        spk[l][((size_t)(s0 + i) * T + t) * o + j] = ws->buf[l].S[((size_t)t * b + i) * o + j] != 0.0f;
        }
        cr_assert_eq(qsnn_trace_add_batch(w, ws, ids, y, x + (size_t)s0 * F, b), QSNN_OK, "%s", qsnn_last_error(ctx));
    }
    cr_assert_eq(qsnn_trace_end(w), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(qsnn_trace_commit(w), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_trace_writer_destroy(&w);
    qsnn_workspace_destroy(&ws);
}

/* Dense 0/1 spikes of a trace layer from its events. */
static unsigned char *dense(const qsnn_trace *t, int l) {
    const qsnn_trace_layer *L = &t->layer[l];
    unsigned char *d = calloc((size_t)t->N * t->T * L->out, 1);
    for (int64_t e = 0; e < L->n_events; e++) {
        unsigned char *c = &d[((size_t)L->ev_sample[e] * t->T + L->ev_step[e]) * L->out + L->ev_neuron[e]];
        cr_assert_eq(*c, 0, "layer %d: event %lld appears twice", l, (long long)e);
        *c = 1;
    }
    return d;
}

static float *rand_input(int N, int F, unsigned seed) {
    float *x = malloc((size_t)N * F * sizeof(float));
    srand(seed);
    for (int i = 0; i < N * F; i++) x[i] = (float)(rand() % 256) / 255.0f;
    return x;
}

Test(trace, writer_layout_read_back_through_the_hdf5_c_api) {
    qsnn_ctx *ctx = test_ctx(1);
    const int N = 16, T = 64, F = 6, B = 5; /* 64 hidden neurons firing often: > 32768 events, several blocks */
    qsnn_net *net = hand_net(ctx, F, 64, 3, 1);
    float *x = rand_input(N, F, 1);
    int32_t pick[2] = {2, 0};
    qsnn_trace_sel sel = {{-1, 2}, {NULL, pick}};
    unsigned char *spk[2];
    record_hand(ctx, tpath("t.h5"), net, x, N, T, B, &sel, spk);
    cr_assert_eq(access(tpath("t.h5"), R_OK), 0);

    hid_t f = H5Fopen(tpath("t.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0);
    /* spikes: int32/int16/int32, chunked, deflate, extendable, same length */
    const char *names[3] = {"layers/layer0/spikes/sample", "layers/layer0/spikes/step", "layers/layer0/spikes/neuron"};
    const hid_t types[3] = {H5T_STD_I32LE, H5T_STD_I16LE, H5T_STD_I32LE};
    hsize_t len[3], maxd;
    for (int k = 0; k < 3; k++) {
        hid_t d = H5Dopen2(f, names[k], H5P_DEFAULT);
        cr_assert(d >= 0, "%s missing", names[k]);
        hid_t ty = H5Dget_type(d), sp = H5Dget_space(d), pl = H5Dget_create_plist(d);
        cr_assert(H5Tequal(ty, types[k]) > 0, "%s has another type", names[k]);
        cr_assert_eq(H5Sget_simple_extent_ndims(sp), 1);
        H5Sget_simple_extent_dims(sp, &len[k], &maxd);
        cr_assert_eq(maxd, H5S_UNLIMITED, "%s is not extendable", names[k]);
        cr_assert_eq(H5Pget_layout(pl), H5D_CHUNKED);
        int deflate = 0;
        for (int i = 0; i < H5Pget_nfilters(pl); i++) {
            unsigned flags, cd[8];
            size_t ncd = 8;
            deflate |= H5Pget_filter2(pl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL) == H5Z_FILTER_DEFLATE;
        }
        cr_assert(deflate, "%s is not deflate-compressed", names[k]);
        H5Pclose(pl), H5Sclose(sp), H5Tclose(ty), H5Dclose(d);
    }
    cr_assert(len[0] == len[1] && len[1] == len[2]);
    cr_assert_gt(len[0], 32768, "only %llu events: the block boundary is not exercised", (unsigned long long)len[0]);
    /* every event is one of the spikes and their number matches */
    int32_t *sa = malloc(len[0] * 4), *ne = malloc(len[0] * 4);
    int16_t *stp = malloc(len[0] * 2);
    hid_t d = H5Dopen2(f, names[0], H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, sa), H5Dclose(d);
    d = H5Dopen2(f, names[1], H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, stp), H5Dclose(d);
    d = H5Dopen2(f, names[2], H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ne), H5Dclose(d);
    size_t total = 0;
    for (size_t i = 0; i < (size_t)N * T * 64; i++) total += spk[0][i];
    cr_assert_eq(total, len[0]);
    for (hsize_t e = 0; e < len[0]; e++) {
        cr_assert(spk[0][((size_t)sa[e] * T + stp[e]) * 64 + ne[e]], "event %llu is not a spike", (unsigned long long)e);
        if (e) { /* sorted by (sample, step, neuron) */
            const long long a = ((long long)sa[e - 1] * T + stp[e - 1]) * 64 + ne[e - 1], b = ((long long)sa[e] * T + stp[e]) * 64 + ne[e];
            cr_assert_lt(a, b, "events not sorted at %llu", (unsigned long long)e);
        }
    }
    /* selection: layer 1 records neurons {0, 2}; membrane_level uint8 */
    int32_t sel_read[2];
    d = H5Dopen2(f, "layers/layer1/neurons", H5P_DEFAULT);
    cr_assert(d >= 0);
    H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, sel_read), H5Dclose(d);
    cr_assert(sel_read[0] == 0 && sel_read[1] == 2);
    d = H5Dopen2(f, "layers/layer1/membrane_level", H5P_DEFAULT);
    hid_t ty = H5Dget_type(d);
    cr_assert(H5Tequal(ty, H5T_STD_U8LE) > 0);
    H5Tclose(ty), H5Dclose(d);
    /* root and layer attributes */
    char fmt[64] = {0};
    hid_t a = H5Aopen(f, "format", H5P_DEFAULT), at = H5Aget_type(a);
    char *s = NULL;
    cr_assert(H5Tis_variable_str(at) > 0);
    H5Aread(a, at, &s);
    snprintf(fmt, sizeof fmt, "%s", s);
    H5free_memory(s);
    H5Tclose(at), H5Aclose(a);
    cr_assert_str_eq(fmt, "qsnn-trace");
    hid_t g = H5Gopen2(f, "layers/layer0", H5P_DEFAULT);
    long long T_attr = 0;
    a = H5Aopen(g, "T", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_LLONG, &T_attr), H5Aclose(a);
    cr_assert_eq(T_attr, T);
    float levels[16];
    a = H5Aopen(g, "state_levels", H5P_DEFAULT);
    cr_assert(a >= 0);
    H5Aread(a, H5T_NATIVE_FLOAT, levels), H5Aclose(a), H5Gclose(g);
    cr_assert_eq(levels[0], net->layer[0].sq.levels[0]);
    cr_assert_eq(levels[15], net->layer[0].sq.levels[15]);
    cr_assert(H5Lexists(f, "model/params/layer0.weight", H5P_DEFAULT) > 0);
    H5Fclose(f);
    free(sa), free(ne), free(stp), free(spk[0]), free(spk[1]), free(x);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

Test(trace, reader_round_trip) {
    qsnn_ctx *ctx = test_ctx(1);
    const int N = 7, T = 9, F = 5, B = 3;
    qsnn_net *net = hand_net(ctx, F, 6, 4, 1);
    float *x = rand_input(N, F, 2);
    unsigned char *spk[2];
    record_hand(ctx, tpath("r.h5"), net, x, N, T, B, NULL, spk);
    qsnn_trace *t = NULL;
    cr_assert_eq(qsnn_trace_read(ctx, tpath("r.h5"), NULL, &t), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert(t->N == N && t->T == T && t->F == F && t->n_layers == 2 && t->is_static && t->seed == 42);
    cr_assert_str_eq(t->command_line, "test record_hand");
    cr_assert_str_eq(t->config_yaml, "model: {}\n");
    for (int i = 0; i < N; i++) cr_assert(t->sample_index[i] == 1000 + i && t->label[i] == i % 10);
    cr_assert_eq(memcmp(t->x, x, sizeof(float) * N * F), 0);
    for (int l = 0; l < 2; l++) {
        unsigned char *d = dense(t, l);
        cr_assert_eq(memcmp(d, spk[l], (size_t)N * T * t->layer[l].out), 0, "layer %d spikes differ", l);
        free(d), free(spk[l]);
        const qsnn_trace_layer *L = &t->layer[l];
        cr_assert_eq(L->k, L->out);
        cr_assert_eq(L->n_levels, 16);
        for (size_t i = 0; i < (size_t)N * T * L->k; i++)
            cr_assert_eq(L->levels[L->level[i]], L->membrane[i], "level index does not name the membrane");
    }
    qsnn_trace_destroy(ctx, &t);
    cr_assert_null(t);
    free(x);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

Test(trace, destroy_without_commit_leaves_nothing) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_trace_writer *w;
    cr_assert_eq(qsnn_trace_writer_create(ctx, tpath("x.h5"), NULL, &w), QSNN_OK);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", tpath("x.h5"), (long)getpid());
    cr_assert_eq(access(tmp, F_OK), 0, "the temporary file should exist while writing");
    qsnn_trace_writer_destroy(&w);
    cr_assert_neq(access(tmp, F_OK), 0);
    cr_assert_neq(access(tpath("x.h5"), F_OK), 0);
    cr_assert_eq(qsnn_trace_writer_create(ctx, "/nonexistent-dir/x.h5", NULL, &w), QSNN_ERR_IO);
    cr_assert(strstr(qsnn_last_error(ctx), "/nonexistent-dir/x.h5"));
    qsnn_ctx_destroy(&ctx);
}

/* --- the acceptance test: re-simulating a recorded quantized model ------------------------------ */

/* Rebuilds the network from the trace file alone (its /config and model/params) and runs the
 * recorded inputs through it: every spike event and every recorded membrane must come back. */
static void resimulate(const char *path, const char *group) {
    qsnn_ctx *ctx = test_ctx(2);
    qsnn_trace *t = NULL;
    cr_assert_eq(qsnn_trace_read(ctx, path, group, &t), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_config cfg;
    qsnn_config_default(&cfg);
    cr_assert_eq(qsnn_config_load_string(ctx, &cfg, t->config_yaml, "trace:config"), QSNN_OK, "%s",
                 qsnn_last_error(ctx));
    qsnn_config_resolve(&cfg);
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_net_create(ctx, &cfg.model, &net), QSNN_OK);
    cr_assert_eq(qsnn_trace_load_params(ctx, path, group, net), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert(net->layer[0].sq.enabled && net->layer[0].wq, "the model should be quantized");
    const int B = 32, T = t->T, F = t->F;
    qsnn_workspace *ws;
    cr_assert_eq(qsnn_workspace_create(net, B, T, 1, &ws), QSNN_OK);
    float *x = malloc(sizeof(float) * (size_t)T * B * F);
    long long spikes = 0;
    for (int l = 0; l < t->n_layers; l++) {
        unsigned char *d = dense(t, l);
        const qsnn_trace_layer *L = &t->layer[l];
        for (int s0 = 0; s0 < t->N; s0 += B) {
            const int b = t->N - s0 < B ? t->N - s0 : B;
            qsnn_trace_input_batch(t, s0, b, x);
            cr_assert_eq(qsnn_forward(net, ws, x, t->is_static, b), QSNN_OK);
            for (int i = 0; i < b; i++)
                for (int s = 0; s < T; s++) {
                    const float *S = ws->buf[l].S + ((size_t)s * b + i) * L->out;
                    const float *U = ws->buf[l].U + ((size_t)s * b + i) * L->out;
                    for (int j = 0; j < L->out; j++) {
                        const int logged = d[((size_t)(s0 + i) * T + s) * L->out + j];
                        cr_assert_eq(S[j] != 0.0f, logged, "layer %d sample %d step %d neuron %d: spike %g, logged %d",
                                     l, s0 + i, s, j, (double)S[j], logged);
                        spikes += logged;
                    }
                    for (int k = 0; k < L->k; k++) {
                        const float m = L->membrane[((size_t)(s0 + i) * T + s) * L->k + k];
                        cr_assert_eq(memcmp(&U[L->neurons[k]], &m, 4), 0, "membrane differs");
                    }
                }
        }
        free(d);
    }
    cr_assert_gt(spikes, 0, "a recording without spikes proves nothing");
    free(x);
    qsnn_workspace_destroy(&ws);
    qsnn_net_destroy(&net);
    qsnn_trace_destroy(ctx, &t);
    qsnn_ctx_destroy(&ctx);
}

Test(trace, resimulation_reproduces_logged_spikes_direct) {
    NEED_DATA();
    const char *model = train_tiny("m", Q4);
    cr_assert_eq(run("record '%s' --samples 70 --out '%s'", model, tpath("d.h5")), 0, "%s", err_text);
    cr_assert(strstr(out_text, "recorded 70 samples"), "%s", out_text);
    resimulate(tpath("d.h5"), NULL);
}

Test(trace, resimulation_reproduces_logged_spikes_rate) {
    NEED_DATA();
    const char *model = train_tiny("m", Q4 " --set data.encoding=rate");
    cr_assert_eq(run("record '%s' --samples 40 --neurons 1:all --neurons 0:3,5-7 --out '%s'", model, tpath("r.h5")),
                 0, "%s", err_text);
    resimulate(tpath("r.h5"), NULL);
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_trace *t;
    cr_assert_eq(qsnn_trace_read(ctx, tpath("r.h5"), NULL, &t), QSNN_OK);
    cr_assert(!t->is_static);
    cr_assert_str_eq(t->encoding, "rate");
    cr_assert_eq(t->layer[0].k, 4);
    cr_assert(t->layer[0].neurons[0] == 3 && t->layer[0].neurons[3] == 7);
    cr_assert_eq(t->layer[1].k, 10);
    qsnn_trace_destroy(ctx, &t);
    qsnn_ctx_destroy(&ctx);
}

/* --- refused files ------------------------------------------------------------------------------ */

static void expect_read_error(const char *path, qsnn_status want, const char *needle) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_trace *t = (qsnn_trace *)1;
    const qsnn_status st = qsnn_trace_read(ctx, path, NULL, &t);
    cr_assert_eq(st, want, "status %d, expected %d: %s", st, want, qsnn_last_error(ctx));
    cr_assert_null(t);
    const char *msg = qsnn_last_error(ctx);
    cr_assert(strstr(msg, needle), "message [%s] lacks '%s'", msg, needle);
    cr_assert(strstr(msg, path), "message [%s] does not name the file", msg);
    cr_assert_null(strchr(msg, '\n'), "message is not one line: [%s]", msg);
    qsnn_ctx_destroy(&ctx);
}

static void make_small_trace(const char *path) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_net *net = hand_net(ctx, 5, 6, 4, 1);
    float *x = rand_input(4, 5, 3);
    unsigned char *spk[2];
    record_hand(ctx, path, net, x, 4, 6, 4, NULL, spk);
    free(spk[0]), free(spk[1]), free(x);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

/* Opens path read-write and runs an edit on it. */
static hid_t open_rw(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert(f >= 0);
    return f;
}

Test(trace, missing_file) { expect_read_error(tpath("none.h5"), QSNN_ERR_IO, "No such file"); }

Test(trace, truncated_file) {
    make_small_trace(tpath("t.h5"));
    struct stat sb;
    cr_assert_eq(stat(tpath("t.h5"), &sb), 0);
    cr_assert_eq(truncate(tpath("t.h5"), sb.st_size / 2), 0);
    expect_read_error(tpath("t.h5"), QSNN_ERR_FORMAT, "truncated");
}

Test(trace, text_file) {
    FILE *f = fopen(tpath("a.txt"), "w");
    fputs("not hdf5\n", f);
    fclose(f);
    expect_read_error(tpath("a.txt"), QSNN_ERR_FORMAT, "not an HDF5 file");
}

Test(trace, foreign_hdf5_file) {
    hid_t f = H5Fcreate(tpath("f.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    expect_read_error(tpath("f.h5"), QSNN_ERR_FORMAT, "not a qsnn trace file");
}

Test(trace, newer_version) {
    make_small_trace(tpath("t.h5"));
    hid_t f = open_rw(tpath("t.h5"));
    long long v = 99;
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v), H5Aclose(a), H5Fclose(f);
    expect_read_error(tpath("t.h5"), QSNN_ERR_MISMATCH, "newer");
}

Test(trace, missing_dataset) {
    make_small_trace(tpath("t.h5"));
    hid_t f = open_rw(tpath("t.h5"));
    cr_assert(H5Ldelete(f, "layers/layer1/spikes/step", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_read_error(tpath("t.h5"), QSNN_ERR_FORMAT, "layers/layer1/spikes/step is missing");
}

Test(trace, event_out_of_range) {
    make_small_trace(tpath("t.h5"));
    hid_t f = open_rw(tpath("t.h5"));
    hid_t d = H5Dopen2(f, "layers/layer0/spikes/neuron", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t n;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    cr_assert_gt(n, 0);
    int32_t *v = malloc(n * 4);
    H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    v[0] = 6; /* the layer has 6 neurons: 0..5 */
    H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    free(v), H5Sclose(sp), H5Dclose(d), H5Fclose(f);
    expect_read_error(tpath("t.h5"), QSNN_ERR_FORMAT, "layers/layer0/spikes row 0");
}

Test(trace, membrane_of_wrong_shape) {
    make_small_trace(tpath("t.h5"));
    hid_t f = open_rw(tpath("t.h5"));
    cr_assert(H5Ldelete(f, "layers/layer1/membrane", H5P_DEFAULT) >= 0);
    hsize_t dims[3] = {4, 5, 4};
    hid_t sp = H5Screate_simple(3, dims, NULL);
    hid_t d = H5Dcreate2(f, "layers/layer1/membrane", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d), H5Sclose(sp), H5Fclose(f);
    expect_read_error(tpath("t.h5"), QSNN_ERR_FORMAT, "layers/layer1/membrane has shape [4][5][4], expected [4][6][4]");
}

/* --- qsnn record on the command line ------------------------------------------------------------ */

Test(trace, record_cli_errors) {
    NEED_DATA();
    const char *model = train_tiny("m", NULL);
    int rc = run("record '%s'", model);
    ASSERT_FAILS(rc, 2, "no --out", "qsnn record:", "--out FILE is required");
    rc = run("record --out '%s'", tpath("x.h5"));
    ASSERT_FAILS(rc, 2, "no model", "qsnn record:", "which model");
    rc = run("record '%s' --out '%s' --samples 0", model, tpath("x.h5"));
    ASSERT_FAILS(rc, 2, "zero samples", "--samples 0");
    rc = run("record '%s' --out '%s' --neurons 1:x", model, tpath("x.h5"));
    ASSERT_FAILS(rc, 2, "bad spec", "--neurons 1:x");
    rc = run("record '%s' --out '%s' --neurons 2:0", model, tpath("x.h5"));
    ASSERT_FAILS(rc, 1, "no layer 2", "layer 2 does not exist");
    rc = run("record '%s' --out '%s' --neurons 1:10", model, tpath("x.h5"));
    ASSERT_FAILS(rc, 1, "no neuron 10", "layer 1 has 10 neurons");
    rc = run("record '%s' --out '%s' --samples 5000", model, tpath("x.h5"));
    ASSERT_FAILS(rc, 1, "too many samples", "the test split has 512");
    rc = run("record '%s' --out '%s'", tpath("nothere.h5"), tpath("x.h5"));
    ASSERT_FAILS(rc, 1, "missing model", "nothere.h5");
    rc = run("record '%s' --out '%s/no/such/dir/x.h5'", model, tmpdir);
    ASSERT_FAILS(rc, 1, "bad output folder", "cannot create");
    cr_assert_neq(access(tpath("x.h5"), F_OK), 0, "a failed record left a file");
}

Test(trace, sigterm_while_recording_leaves_nothing) {
    NEED_DATA();
    const char *model = train_tiny("m", "--set data.test_limit=4000"); /* record them all: a long window */
    char out[512], tmp[600];
    snprintf(out, sizeof out, "%s", tpath("big.h5"));
    for (int attempt = 0; attempt < 3; attempt++) {
        const pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            int nul = open("/dev/null", O_WRONLY);
            dup2(nul, 1), dup2(nul, 2);
            execl(QSNN_BIN, "qsnn", "record", model, "--samples", "4000", "--out", out, "--threads", "1", (char *)NULL);
            _exit(127);
        }
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)pid);
        int seen = 0;
        for (int i = 0; i < 20000 && !seen; i++) { /* up to 10 s */
            seen = access(tmp, F_OK) == 0;
            if (!seen) sleep_us(500);
        }
        cr_assert(seen, "the temporary file %s never appeared", tmp);
        sleep_us(20000); /* well inside the recording */
        kill(pid, SIGTERM);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert_neq(access(tmp, F_OK), 0, "the temporary file survived the signal");
        if (WIFSIGNALED(st)) {
            cr_assert_eq(WTERMSIG(st), SIGTERM);
            cr_assert_neq(access(out, F_OK), 0, "an interrupted recording left %s", out);
            return;
        }
        unlink(out); /* finished before the signal: try again */
    }
    cr_assert_fail("the recording always finished before the signal");
}

/* --- compare ------------------------------------------------------------------------------------ */

Test(trace, victor_purpura_hand_computed) {
    double w[16];
    const int32_t one[1] = {1}, three[1] = {3}, two[1] = {2}, a15[2] = {1, 5}, a04[2] = {0, 4}, b13[2] = {1, 3};
    cr_assert_eq(qsnn_victor_purpura(NULL, 0, NULL, 0, 0.5, w), 0.0);
    cr_assert_eq(qsnn_victor_purpura(one, 1, NULL, 0, 0.5, w), 1.0);   /* delete */
    cr_assert_eq(qsnn_victor_purpura(NULL, 0, a15, 2, 0.5, w), 2.0);   /* insert two */
    cr_assert_eq(qsnn_victor_purpura(one, 1, three, 1, 0.25, w), 0.5); /* move 2 steps at 0.25 */
    cr_assert_eq(qsnn_victor_purpura(one, 1, three, 1, 1.0, w), 2.0);  /* moving costs 2: delete + insert */
    cr_assert_eq(qsnn_victor_purpura(a15, 2, two, 1, 1.0, w), 2.0);    /* move 1->2 (1), delete 5 (1) */
    cr_assert_eq(qsnn_victor_purpura(a04, 2, b13, 2, 0.5, w), 1.0);    /* two moves of 1 step */
    cr_assert_eq(qsnn_victor_purpura(a04, 2, b13, 2, 0.0, w), 0.0);    /* q = 0: counts only */
    cr_assert_eq(qsnn_victor_purpura(b13, 2, a04, 2, 0.5, w), 1.0);    /* symmetric */
}

/* A hand-made recording: 2 samples x 5 steps, one layer of 2 neurons; trains[s][n] lists steps. */
static qsnn_trace *hand_trace(const int trains[2][2][3], const int32_t *rec, int k, const float *mem) {
    qsnn_trace *t = calloc(1, sizeof *t);
    t->N = 2, t->T = 5, t->F = 1, t->n_layers = 1, t->is_static = 1;
    snprintf(t->encoding, sizeof t->encoding, "direct");
    t->sample_index = calloc(2, sizeof(int64_t));
    t->sample_index[1] = 1;
    t->label = calloc(2, sizeof(int32_t));
    t->x = calloc(2, sizeof(float));
    qsnn_trace_layer *L = &t->layer[0];
    L->in = 1, L->out = 2;
    L->ev_sample = calloc(20, 4), L->ev_step = calloc(20, 4), L->ev_neuron = calloc(20, 4);
    for (int s = 0; s < 2; s++)
        for (int n = 0; n < 2; n++)
            for (int i = 1; i <= trains[s][n][0]; i++) {
                L->ev_sample[L->n_events] = s, L->ev_neuron[L->n_events] = n;
                L->ev_step[L->n_events++] = trains[s][n][i];
            }
    L->k = k;
    L->neurons = calloc((size_t)k + 1, 4);
    memcpy(L->neurons, rec, (size_t)k * 4);
    L->membrane = calloc((size_t)10 * k + 1, 4);
    memcpy(L->membrane, mem, (size_t)10 * k * 4);
    return t;
}

static void free_hand_trace(qsnn_trace *t) {
    qsnn_trace_layer *L = &t->layer[0];
    free(L->ev_sample), free(L->ev_step), free(L->ev_neuron), free(L->neurons), free(L->membrane);
    free(t->sample_index), free(t->label), free(t->x), free(t);
}

Test(trace, compare_metrics_on_hand_made_traces) {
    /* {count, steps...} per [sample][neuron] */
    const int ta[2][2][3] = {{{2, 1, 3}, {0}}, {{1, 0}, {2, 2, 4}}};
    const int tb[2][2][3] = {{{2, 1, 3}, {2, 2, 4}}, {{1, 1}, {1, 2}}};
    /* A records neurons 0 and 1 (all 0.5 on neuron 1); B records neuron 1 only (0.5, one value 1.5) */
    float ma[20], mb[10];
    for (int i = 0; i < 10; i++) ma[2 * i] = -1.0f, ma[2 * i + 1] = 0.5f, mb[i] = 0.5f;
    mb[7] = 1.5f;
    const int32_t ra[2] = {0, 1}, rb[1] = {1};
    qsnn_trace *a = hand_trace(ta, ra, 2, ma), *b = hand_trace(tb, rb, 1, mb);
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_trace_cmp_layer r;
    cr_assert_eq(qsnn_trace_compare(ctx, a, b, "A", "B", 0.5, &r), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(r.count_agreement, 0.5);  /* (s0,n0) 2=2, (s1,n0) 1=1 */
    cr_assert_eq(r.train_identical, 0.25); /* (s0,n0) only */
    cr_assert_eq(r.rate_a, 5.0 / 20.0);
    cr_assert_eq(r.rate_b, 6.0 / 20.0);
    cr_assert_eq(r.both_fire, 3);
    cr_assert_float_eq(r.first_spike_shift, 1.0 / 3.0, 1e-15); /* shifts 0, +1, 0 */
    cr_assert_float_eq(r.first_spike_abs_shift, 1.0 / 3.0, 1e-15);
    cr_assert_eq(r.vp_distance, (0.0 + 2.0 + 0.5 + 1.0) / 4.0);
    cr_assert_eq(r.membrane_neurons, 1);
    cr_assert_float_eq(r.membrane_rmse, sqrt(0.1), 1e-12); /* one error of 1 in 10 values */
    /* the same comparison the other way round */
    cr_assert_eq(qsnn_trace_compare(ctx, b, a, "B", "A", 0.5, &r), QSNN_OK);
    cr_assert_float_eq(r.first_spike_shift, -1.0 / 3.0, 1e-15);
    cr_assert_eq(r.vp_distance, 0.875);
    /* different inputs are refused */
    b->sample_index[1] = 7;
    cr_assert_eq(qsnn_trace_compare(ctx, a, b, "A.h5", "B.h5", 0.5, &r), QSNN_ERR_MISMATCH);
    cr_assert_str_eq(qsnn_last_error(ctx),
                     "A.h5 and B.h5 record different inputs: sample 1 is test sample 1 in one, 7 in the other");
    b->sample_index[1] = 1;
    b->x[1] = 0.25f;
    cr_assert_eq(qsnn_trace_compare(ctx, a, b, "A.h5", "B.h5", 0.5, &r), QSNN_ERR_MISMATCH);
    cr_assert(strstr(qsnn_last_error(ctx), "sample 1 differs"), "%s", qsnn_last_error(ctx));
    free_hand_trace(a), free_hand_trace(b);
    qsnn_ctx_destroy(&ctx);
}

Test(trace, compare_cli) {
    NEED_DATA();
    const char *m = train_tiny("q", Q4);
    cr_assert_eq(run("record '%s' --samples 30 --out '%s'", m, tpath("q.h5")), 0, "%s", err_text);
    m = train_tiny("f", NULL);
    cr_assert_eq(run("record '%s' --samples 30 --out '%s'", m, tpath("f.h5")), 0, "%s", err_text);
    cr_assert_eq(run("record '%s' --samples 20 --out '%s'", m, tpath("f20.h5")), 0, "%s", err_text);
    cr_assert_eq(run("compare '%s' '%s'", tpath("f.h5"), tpath("q.h5")), 0, "%s", err_text);
    cr_assert(strstr(out_text, "count-agree") && strstr(out_text, "\n0 ") && strstr(out_text, "\n1 "), "%s", out_text);
    cr_assert_eq(run("compare '%s' '%s' --json", tpath("f.h5"), tpath("f.h5")), 0, "%s", err_text);
    cr_assert(strstr(out_text, "\"count_agreement\": 1,") && strstr(out_text, "\"membrane_rmse\": 0}"), "%s", out_text);
    int rc = run("compare '%s' '%s'", tpath("f.h5"), tpath("f20.h5"));
    ASSERT_FAILS(rc, 1, "different inputs", "qsnn compare:", "record different inputs");
    rc = run("compare '%s' '%s'", tpath("f.h5"), m);
    ASSERT_FAILS(rc, 1, "a checkpoint", "not a qsnn trace file");
    rc = run("compare '%s'", tpath("f.h5"));
    ASSERT_FAILS(rc, 2, "one file", "usage");
    rc = run("compare '%s' '%s' --vp-cost -1", tpath("f.h5"), tpath("q.h5"));
    ASSERT_FAILS(rc, 2, "negative cost", "--vp-cost -1");
}

/* --- --record on train and eval ----------------------------------------------------------------- */

Test(trace, train_and_eval_record) {
    NEED_DATA();
    cr_assert_eq(run("train " TINY " " Q4 " --epochs 2 --out '%s' --record '%s' --record-samples 24 --neurons 1:all",
                     tpath("m"), tpath("tr.h5")),
                 0, "%s", err_text);
    cr_assert(strstr(out_text, "recorded 24 test samples after epochs 1..2"), "%s", out_text);
    char model[512];
    snprintf(model, sizeof model, "%s/model.h5", tpath("m"));
    cr_assert_eq(run("eval '%s' --no-progress --record '%s' --record-samples 24 --neurons 1:all", model,
                     tpath("ev.h5")),
                 0, "%s", err_text);
    qsnn_ctx *ctx = test_ctx(1);
    int first, last;
    cr_assert_eq(qsnn_trace_epochs(ctx, tpath("tr.h5"), &first, &last), QSNN_OK);
    cr_assert(first == 1 && last == 2);
    /* the whole file needs a choice of epoch */
    qsnn_trace *t = NULL, *e = NULL, *t1 = NULL;
    cr_assert_eq(qsnn_trace_read(ctx, tpath("tr.h5"), NULL, &t), QSNN_ERR_ARG);
    cr_assert(strstr(qsnn_last_error(ctx), "epoch_1..epoch_2"), "%s", qsnn_last_error(ctx));
    /* the last epoch's recording is what eval records of the saved model: identical */
    cr_assert_eq(qsnn_trace_read(ctx, tpath("tr.h5"), "epoch_2", &t), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(qsnn_trace_read(ctx, tpath("tr.h5"), "epoch_1", &t1), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(qsnn_trace_read(ctx, tpath("ev.h5"), NULL, &e), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert(t->epoch == 2 && t1->epoch == 1 && t->N == 24);
    qsnn_trace_cmp_layer r[2];
    cr_assert_eq(qsnn_trace_compare(ctx, t, e, "train", "eval", 0.5, r), QSNN_OK, "%s", qsnn_last_error(ctx));
    for (int l = 0; l < 2; l++) {
        cr_assert_eq(r[l].train_identical, 1.0, "layer %d differs between train --record and eval --record", l);
        cr_assert_eq(t->layer[l].n_events, e->layer[l].n_events);
    }
    cr_assert_eq(r[1].membrane_rmse, 0.0);
    cr_assert_eq(r[0].membrane_neurons, 0); /* --neurons 1:all: no layer-0 membranes */
    /* a training epoch changes the firing */
    cr_assert_eq(qsnn_trace_compare(ctx, t1, t, "e1", "e2", 0.5, r), QSNN_OK);
    cr_assert_lt(r[0].train_identical, 1.0);
    qsnn_trace_destroy(ctx, &t), qsnn_trace_destroy(ctx, &t1), qsnn_trace_destroy(ctx, &e);
    qsnn_ctx_destroy(&ctx);
    /* each epoch's recording carries its own model: re-simulating epoch 1 reproduces it */
    resimulate(tpath("tr.h5"), "epoch_1");
    int rc = run("eval '%s' --no-progress --record-samples 3", model);
    ASSERT_FAILS(rc, 1, "samples without --record", "need --record FILE");
    rc = run("train " TINY " --out '%s' --record '%s' --neurons 3:0", tpath("m2"), tpath("x.h5"));
    ASSERT_FAILS(rc, 1, "no layer 3", "layer 3 does not exist");
    cr_assert_neq(access(tpath("x.h5"), F_OK), 0);
}
