/* The integer-only engine: its time loop against the scalar reference twin, the conversion of
 * integer-exact models, and the acceptance check of specs/quantizers.md §8 — an integer-exact model
 * trained on Fashion-MNIST gives the same spikes in both engines on the whole test set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/rng.h"
#include "datasets/idx.h"
#include "io/int_model.h"
#include <hdf5.h>
#include "sim/engine.h"
#include "sim/int_engine.h"
#include "test_util.h"
#include "train/int_eval.h"
#include "train/trainer.h"

#define DATA_DIR "/usr/share/datasets/fashion-mnist"

static qsnn_net *make_net(qsnn_ctx *ctx, int F, int hidden, int wbits, int sbits, qsnn_grid grid, int integer,
                          qsnn_reset reset) {
    qsnn_net_cfg cfg;
    qsnn_net_cfg_default(&cfg);
    cfg.n_inputs = F;
    cfg.sizes[0] = hidden;
    cfg.weight_quant.bits = wbits;
    cfg.state_quant.bits = sbits;
    cfg.state_quant.grid = grid;
    cfg.integer = integer;
    cfg.neuron_params.reset = reset;
    if (integer) cfg.weight_quant.pow2 = 1;
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_net_create(ctx, &cfg, &net), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net_init(net, 3);
    return net;
}

/* Runs layer l of the integer net for one sample with the scalar reference, from input spikes (or,
 * for the first layer, input codes) [T][in]; writes spikes [T][out]. */
static void ref_layer(const qsnn_int_layer *L, int first, int x_static, const int16_t *x, const uint8_t *sin, int T,
                      uint8_t *sout) {
    int *k = malloc((size_t)L->out * sizeof(int));
    for (int o = 0; o < L->out; o++) k[o] = -1;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < L->out; o++) {
            int64_t acc = 0;
            for (int i = 0; i < L->in; i++) {
                const int64_t xi = first ? x[(x_static ? 0 : (size_t)t * L->in) + i] : sin[(size_t)t * L->in + i];
                acc += xi * L->Wc[(size_t)o * L->in + i];
            }
            const int64_t a = acc + L->bias[o];
            /* fine units by exact rational arithmetic: a·M / 2^sh, ties down */
            const long double v = (long double)a * L->M[o] / powl(2.0L, L->sh[o]);
            int64_t cur = (int64_t)floorl(v);
            if (v - (long double)cur > 0.5L) cur++;
            if (L->cur_step) { /* the first layer's current quantizer: nearest code, ties to even */
                const long double c = (long double)cur / (long double)L->cur_step;
                long double k = floorl(c);
                const long double fr = c - k;
                if (fr > 0.5L || (fr == 0.5L && fmodl(k, 2.0L) != 0.0L)) k += 1.0L;
                if (k > L->cur_kmax) k = L->cur_kmax;
                if (k < -L->cur_kmax) k = -L->cur_kmax;
                cur = (int64_t)k * L->cur_step;
            }
            int spike;
            k[o] = qsnn_int_step_ref(L, k[o], cur, &spike);
            sout[(size_t)t * L->out + o] = (uint8_t)spike;
        }
    free(k);
}

static void check_against_reference(qsnn_net *net, int x_static, int T) {
    qsnn_ctx *ctx = net->ctx;
    qsnn_int_net *in = NULL;
    cr_assert_eq(qsnn_int_net_create(ctx, net, &in), QSNN_OK, "%s", qsnn_last_error(ctx));
    enum { B = 5 };
    const int F = net->cfg.n_inputs, H = net->layer[0].out, C = net->layer[1].out;
    float *x = malloc((size_t)(x_static ? 1 : T) * B * F * sizeof(float));
    qsnn_rng r;
    qsnn_rng_init(&r, 17, 0);
    for (int i = 0; i < (x_static ? 1 : T) * B * F; i++)
        x[i] = x_static ? (float)qsnn_rng_below(&r, 256) / 255.0f : (float)(qsnn_rng_uniform(&r) < 0.3f);
    uint8_t *s0 = malloc((size_t)T * B * H), *s1 = malloc((size_t)T * B * C);
    uint8_t *spk[QSNN_MAX_LAYERS] = {s0, s1};
    int32_t counts[B * 16];
    int pred[B];
    cr_assert_eq(qsnn_int_forward(in, x, x_static, B, T, spk, counts, pred), QSNN_OK, "%s", qsnn_last_error(ctx));
    int16_t *codes = malloc((size_t)(x_static ? 1 : T) * F * sizeof(int16_t));
    uint8_t *r0 = malloc((size_t)T * H), *r1 = malloc((size_t)T * C);
    long long spikes = 0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < (x_static ? 1 : T); t++)
            qsnn_int_input_codes(in, x + ((size_t)t * B + b) * F, codes + (size_t)t * F, (size_t)F);
        ref_layer(&in->layer[0], 1, x_static, codes, NULL, T, r0);
        ref_layer(&in->layer[1], 0, 0, NULL, r0, T, r1);
        for (int t = 0; t < T; t++) {
            for (int o = 0; o < H; o++) {
                cr_assert_eq(s0[((size_t)t * B + b) * H + o], r0[(size_t)t * H + o], "layer 0 b %d t %d o %d", b, t,
                             o);
                spikes += r0[(size_t)t * H + o];
            }
            for (int o = 0; o < C; o++)
                cr_assert_eq(s1[((size_t)t * B + b) * C + o], r1[(size_t)t * C + o], "layer 1 b %d t %d o %d", b, t,
                             o);
        }
        int32_t cnt[16] = {0};
        for (int t = 0; t < T; t++)
            for (int o = 0; o < C; o++) cnt[o] += r1[(size_t)t * C + o];
        for (int o = 0; o < C; o++) cr_expect_eq(counts[b * C + o], cnt[o]);
    }
    cr_expect_gt(spikes, 0, "the reference layer must fire at all for the comparison to mean something");
    free(x), free(s0), free(s1), free(codes), free(r0), free(r1);
    qsnn_int_net_destroy(&in);
}

Test(int_engine, time_loop_equals_scalar_reference) {
    qsnn_ctx *ctx = test_ctx(2);
    const qsnn_grid grids[3] = {QSNN_GRID_FIXED_POINT, QSNN_GRID_THRESHOLD_CENTERED, QSNN_GRID_UNIFORM};
    for (int g = 0; g < 3; g++)
        for (int reset = 0; reset < 3; reset++) {
            qsnn_net *net = make_net(ctx, 40, 24, 4, g == 0 ? 6 : 4, grids[g], g == 0, (qsnn_reset)reset);
            for (int l = 0; l < 2; l++) /* strong weights so that neurons fire within a few steps */
                for (size_t i = 0; i < (size_t)net->layer[l].in * net->layer[l].out; i++) net->layer[l].W[i] *= 6.0f;
            cr_assert_eq(qsnn_net_prepare(net), QSNN_OK);
            check_against_reference(net, 1, 9);
            check_against_reference(net, 0, 7);
            if (g == 0) { /* and with the first layer's current quantized (coarse, so codes clamp) */
                net->cfg.current_bits = 3;
                net->cfg.current_range = 1.0;
                cr_assert_eq(qsnn_net_prepare(net), QSNN_OK);
                check_against_reference(net, 1, 9);
                check_against_reference(net, 0, 7);
            }
            qsnn_net_destroy(&net);
        }
    qsnn_ctx_destroy(&ctx);
}

Test(int_engine, integer_exact_conversion_uses_shifts_only) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_net *net = make_net(ctx, 30, 20, 4, 8, QSNN_GRID_FIXED_POINT, 1, QSNN_RESET_SUBTRACT);
    qsnn_int_net *in = NULL;
    cr_assert_eq(qsnn_int_net_create(ctx, net, &in), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_expect_eq(in->exact, 1);
    for (int l = 0; l < 2; l++) {
        const qsnn_int_layer *L = &in->layer[l];
        cr_expect_eq(L->beta_bits, 8);
        cr_expect_eq(L->beta_m, 243, "0.95 -> 243/256");
        cr_expect(L->fixed_point);
        cr_expect_eq(L->theta, (int64_t)64 << L->d, "θ = 1 = 64 steps of Δ = 2^-6 (8 bits: 1.2/127 -> 2^-6)");
        for (int o = 0; o < L->out; o++) {
            cr_expect_eq(L->M[o], 1);
            cr_expect_leq(L->sh[o], 0, "a left shift: exact");
        }
    }
    qsnn_int_net_destroy(&in);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

Test(int_engine, integer_division_rounds_half_even) {
    const int64_t v[10] = {-3, -1, 1, 3, 5, 7, -7, 6, -6, 0}, d[10] = {2, 2, 2, 2, 2, 4, 4, 4, 4, 3};
    const int64_t want[10] = {-2, 0, 0, 2, 2, 2, -2, 2, -2, 0}; /* -1.5 -0.5 0.5 1.5 2.5 1.75 -1.75 1.5 -1.5 0 */
    for (int i = 0; i < 10; i++)
        cr_expect_eq(qsnn_int_div_round_even(v[i], d[i]), want[i], "%lld / %lld", (long long)v[i], (long long)d[i]);
}

Test(int_engine, current_quantizer_rounds_half_even_and_clamps) {
    float cur[6] = {0.125f, 0.375f, 2.0f, -0.3f, -5.0f, 0.6f};
    qsnn_current_quant(0.25f, 3, cur, 6);
    const float want[6] = {0.0f, 0.5f, 0.75f, -0.25f, -0.75f, 0.5f};
    for (int i = 0; i < 6; i++) cr_expect_eq(cur[i], want[i], "cur[%d] = %g, want %g", i, cur[i], want[i]);
}

Test(int_engine, float_models_are_refused_with_the_layer_named) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_net *net = make_net(ctx, 30, 20, 0, 4, QSNN_GRID_UNIFORM, 0, QSNN_RESET_SUBTRACT);
    qsnn_int_net *in = NULL;
    cr_expect_eq(qsnn_int_net_create(ctx, net, &in), QSNN_ERR_CONFIG);
    cr_expect_null(in);
    cr_expect(strstr(qsnn_last_error(ctx), "layer 0 has float weights") != NULL, "%s", qsnn_last_error(ctx));
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}

/* Trains the default 784-1000-10 network as an integer-exact model (4-bit weights, 8-bit fixed-point
 * states) for one short epoch, then compares both engines on all 10,000 test images. */
Test(int_engine, integer_exact_model_gives_identical_spikes_on_the_test_set, .timeout = 300) {
    qsnn_ctx *ctx = test_ctx(2);
    qsnn_dataset *train = NULL, *test = NULL;
    cr_assert_eq(qsnn_dataset_load(ctx, DATA_DIR, "train", 4096, &train), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(qsnn_dataset_load(ctx, DATA_DIR, "t10k", 0, &test), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net *net = make_net(ctx, 784, 1000, 4, 8, QSNN_GRID_FIXED_POINT, 1, QSNN_RESET_SUBTRACT);
    const qsnn_train_cfg tcfg = {.epochs = 1, .batch = 128, .optimizer = "adam", .lr = 5e-4f, .beta1 = 0.9f,
                                 .beta2 = 0.999f, .eps = 1e-8f, .schedule = "constant", .loss = "ce_count",
                                 .correct_rate = 0.8f, .incorrect_rate = 0.2f};
    qsnn_data_cfg dcfg = {.steps = 25};
    snprintf(dcfg.encoding, sizeof dcfg.encoding, "direct");
    qsnn_trainer *tr = NULL;
    cr_assert_eq(qsnn_trainer_create(ctx, net, &tcfg, &dcfg, train, 1, &tr), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_metrics m;
    cr_assert_eq(qsnn_train_epoch(tr, 0, NULL, NULL, &m), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_trainer_destroy(&tr);
    qsnn_int_metrics im;
    cr_assert_eq(qsnn_evaluate_integer(ctx, net, &tcfg, &dcfg, test, 1, NULL, NULL, &im), QSNN_OK, "%s",
                 qsnn_last_error(ctx));
    cr_expect_eq(im.samples, 10000);
    cr_expect_eq(im.exact, 1);
    for (int l = 0; l < 2; l++) {
        cr_expect_eq(im.mismatches[l], 0, "layer %d: %lld of %lld spike slots differ", l, im.mismatches[l],
                     im.slots[l]);
        cr_expect_gt(im.spikes[l], 10000, "layer %d fires", l);
    }
    cr_expect_eq(im.pred_agree, 10000);
    cr_expect_eq(im.accuracy, im.float_accuracy);
    cr_expect_gt(im.accuracy, 0.6, "a trained model, not chance: %.4f", im.accuracy);
    qsnn_net_destroy(&net);
    qsnn_dataset_destroy(ctx, &train);
    qsnn_dataset_destroy(ctx, &test);
    qsnn_ctx_destroy(&ctx);
}

/* ---- the command line -------------------------------------------------------------------------- */

static char *run_capture(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - 1 - len, p)) > 0) len += got;
    buf[len] = 0;
    const int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

Test(int_engine, eval_integer_on_the_command_line, .timeout = 120) {
    char dir[] = "/tmp/qsnn_test_int_XXXXXX", cmd[1024];
    cr_assert_not_null(mkdtemp(dir));
    const char *tiny = "--set data.train_limit=1024 --set data.test_limit=512 --set model.hidden=64 "
                       "--set data.steps=8 --epochs 1 --no-progress";
    int st;
    snprintf(cmd, sizeof cmd,
             "%s train %s --set quant.integer=true --set quant.weight.bits=4 --set quant.state.bits=6 --out %s/int "
             ">/dev/null 2>&1 && %s train %s --out %s/flt >/dev/null 2>&1 && %s train %s --set quant.integer=true "
             "--set quant.weight.bits=4 --set quant.state.bits=6 --set quant.current.bits=5 --out %s/cur >/dev/null 2>&1",
             QSNN_BIN, tiny, dir, QSNN_BIN, tiny, dir, QSNN_BIN, tiny, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s eval %s/int/model.h5 --integer --no-progress 2>&1", QSNN_BIN, dir);
    char *out = run_capture(cmd, &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "integer-exact model: identical spikes on every sample, layer and step") != NULL, "%s", out);
    cr_expect(strstr(out, "same prediction on 512/512") != NULL, "%s", out);
    free(out);
    /* with the first layer's current quantized too (5 bits) */
    snprintf(cmd, sizeof cmd, "%s eval %s/cur/model.h5 --integer --no-progress 2>&1", QSNN_BIN, dir);
    out = run_capture(cmd, &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "integer-exact model: identical spikes on every sample, layer and step") != NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s export %s/int/model.h5 --integer %s/int.h5 2>&1", QSNN_BIN, dir, dir);
    out = run_capture(cmd, &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "integer model, 2 layers, exact") != NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s export %s/flt/model.h5 --integer %s/flt_int.h5 2>&1; test ! -e %s/flt_int.h5",
             QSNN_BIN, dir, dir, dir);
    out = run_capture(cmd, &st);
    cr_expect_eq(st, 0, "the float model is refused and nothing is written: %s", out);
    cr_expect(strstr(out, "qsnn export: layer 0 has float weights") != NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s eval %s/flt/model.h5 --integer --no-progress 2>&1", QSNN_BIN, dir);
    out = run_capture(cmd, &st);
    cr_expect_eq(st, 1);
    cr_expect_str_eq(out, "qsnn eval: layer 0 has float weights: the integer engine needs quantized weights and "
                          "states (quant.weight.bits, quant.state.bits)\n");
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* ---- the integer model file -------------------------------------------------------------------- */

static void read_i64_ds(hid_t g, const char *name, int64_t *out) {
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    cr_assert_geq(d, 0, "dataset %s", name);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), 0);
    H5Dclose(d);
}

static int64_t read_attr(hid_t loc, const char *name) {
    int64_t v = -12345;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    cr_assert_geq(a, 0, "attribute %s", name);
    cr_assert_geq(H5Aread(a, H5T_NATIVE_INT64, &v), 0);
    H5Aclose(a);
    return v;
}

Test(int_engine, integer_model_file_holds_the_engine_constants) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_net *net = make_net(ctx, 30, 20, 4, 6, QSNN_GRID_FIXED_POINT, 1, QSNN_RESET_ZERO);
    qsnn_int_net *in = NULL;
    cr_assert_eq(qsnn_int_net_create(ctx, net, &in), QSNN_OK, "%s", qsnn_last_error(ctx));
    char dir[] = "/tmp/qsnn_test_intm_XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.h5", dir);
    const qsnn_int_model_meta meta = {.config_yaml = "x: 1\n", .command_line = "test", .encoding = "direct", .steps = 25};
    cr_assert_eq(qsnn_int_model_save(ctx, path, in, &meta), QSNN_OK, "%s", qsnn_last_error(ctx));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    cr_expect_eq(read_attr(f, "exact"), 1);
    cr_expect_eq(read_attr(f, "input_bits"), 8);
    cr_expect_eq(read_attr(f, "steps"), 25);
    for (int l = 0; l < 2; l++) {
        const qsnn_int_layer *L = &in->layer[l];
        char name[64];
        snprintf(name, sizeof name, "layers/layer%d", l);
        hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
        cr_assert_geq(g, 0);
        cr_expect_eq(read_attr(g, "theta"), L->theta);
        cr_expect_eq(read_attr(g, "beta_multiplier"), 243);
        cr_expect_eq(read_attr(g, "level_step_shift"), L->d);
        hid_t d = H5Dopen2(g, "weight_codes", H5P_DEFAULT);
        hid_t t = H5Dget_type(d);
        cr_expect_eq(H5Tget_size(t), 1, "4-bit codes stored as int8");
        int16_t *w = malloc((size_t)L->in * L->out * sizeof(int16_t));
        cr_assert_geq(H5Dread(d, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, w), 0);
        cr_expect_eq(memcmp(w, L->Wc, (size_t)L->in * L->out * sizeof(int16_t)), 0);
        H5Tclose(t);
        H5Dclose(d);
        int64_t *lv = malloc((size_t)L->n_levels * sizeof(int64_t)), *b = malloc((size_t)L->out * sizeof(int64_t));
        read_i64_ds(g, "levels", lv);
        read_i64_ds(g, "bias", b);
        cr_expect_eq(memcmp(lv, L->lvl, (size_t)L->n_levels * sizeof(int64_t)), 0);
        cr_expect_eq(memcmp(b, L->bias, (size_t)L->out * sizeof(int64_t)), 0);
        free(w), free(lv), free(b);
        H5Gclose(g);
    }
    H5Fclose(f);
    /* an unwritable place: a one-line error and nothing left */
    cr_expect_eq(qsnn_int_model_save(ctx, "/nonexistent-dir/m.h5", in, &meta), QSNN_ERR_IO);
    cr_expect(strstr(qsnn_last_error(ctx), "/nonexistent-dir/m.h5: cannot create the temporary file") != NULL, "%s",
              qsnn_last_error(ctx));
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
    qsnn_int_net_destroy(&in);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
}
