/* Configuration module: defaults, YAML files, --set overrides, checks, dump round trip, errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/config.h"
#include "cli/config_keys.h"
#include "neurons/neuron.h"
#include "neurons/surrogate.h"
#include "quant/state_quant.h"

static qsnn_ctx *ctx;
static qsnn_config cfg;
static char tmpdir[64];

static void setup(void) {
    cr_assert_eq(qsnn_ctx_create(NULL, 1, 0, &ctx), QSNN_OK);
    memset(&cfg, 0, sizeof cfg);
    qsnn_config_default(&cfg);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qsnn_test_config_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    qsnn_ctx_destroy(&ctx);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes `text` to tmpdir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static const char *err(void) { return qsnn_last_error(ctx); }

#define assert_msg_has(needle) \
    cr_assert(strstr(err(), (needle)) != NULL, "message '%s' lacks '%s'", err(), (needle))

/* ---- defaults ------------------------------------------------------------------------------- */

Test(config, defaults) {
    const qsnn_net_cfg *m = &cfg.model;
    cr_expect_eq(m->n_inputs, 784);
    cr_expect_eq(m->n_layers, 2);
    cr_expect_eq(m->sizes[0], 1000);
    cr_expect_eq(m->sizes[1], 10);
    cr_expect_eq(m->sizes[2], 0);
    cr_expect_str_eq(m->neuron, "lif");
    cr_expect_float_eq(m->neuron_params.beta, 0.95f, 0);
    cr_expect_float_eq(m->neuron_params.theta, 1.0f, 0);
    cr_expect_eq(m->neuron_params.reset, QSNN_RESET_SUBTRACT);
    cr_expect_eq(m->neuron_params.reset_grad, 0);
    cr_expect_eq(m->learn_beta, 0);
    cr_expect_eq(m->learn_theta, 0);
    cr_expect_eq(m->neuron_params.surrogate, QSNN_SURR_ARCTAN);
    cr_expect_float_eq(m->neuron_params.slope, 0.0f, 0, "unresolved slope is 0 = the surrogate's default");
    cr_expect_eq(m->bias, 1);
    cr_expect_eq(m->state_quant.bits, 0);
    cr_expect_eq(m->state_quant.grid, QSNN_GRID_UNIFORM);
    cr_expect_eq(m->state_quant.lower_limit, 0);
    cr_expect_float_eq(m->state_quant.upper_limit, 0.2, 1e-7); /* float or double */
    cr_expect_eq(m->state_quant.multiplier, 0);
    cr_expect_eq(m->state_quant.ste_clip, 0);
    cr_expect_eq(m->weight_quant.bits, 0);
    cr_expect_eq(m->weight_quant.granularity, QSNN_WQ_PER_CHANNEL);
    cr_expect_str_eq(m->weight_quant.method, "uniform_symmetric");

    cr_expect_str_eq(cfg.data.dir, QSNN_DEFAULT_DATA_DIR);
    cr_expect_str_eq(cfg.data.encoding, "direct");
    cr_expect_eq(cfg.data.steps, 25);
    cr_expect_eq(cfg.data.train_limit, 0);
    cr_expect_eq(cfg.data.test_limit, 0);

    const qsnn_train_cfg *t = &cfg.train;
    cr_expect_eq(t->epochs, 3);
    cr_expect_eq(t->batch, 128);
    cr_expect_str_eq(t->optimizer, "adam");
    cr_expect_float_eq(t->lr, 5e-4f, 0);
    cr_expect_float_eq(t->momentum, 0.9f, 0);
    cr_expect_float_eq(t->beta1, 0.9f, 0);
    cr_expect_float_eq(t->beta2, 0.999f, 0);
    cr_expect_float_eq(t->eps, 1e-8f, 0);
    cr_expect_float_eq(t->weight_decay, 0.0f, 0);
    cr_expect_str_eq(t->schedule, "cosine");
    cr_expect_float_eq(t->lr_min, 0.0f, 0);
    cr_expect_str_eq(t->loss, "ce_count");
    cr_expect_float_eq(t->correct_rate, 0.8f, 0);
    cr_expect_float_eq(t->incorrect_rate, 0.2f, 0);

    cr_expect_eq(cfg.run.threads, 0);
    cr_expect_eq(cfg.run.seed, 0);
    cr_expect_str_eq(cfg.run.out, "runs");
    cr_expect_eq(cfg.run.progress, 1);

    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "defaults fail the check: %s", err());
    qsnn_config_resolve(&cfg);
    cr_expect_float_eq(cfg.model.neuron_params.slope, 2.0f, 0, "arctan's default slope");
}

Test(config, enum_names_match_registries) {
    const qsnn_config_key *k = qsnn_config_key_find("model.reset");
    cr_assert_not_null(k);
    for (int i = 0; k->names[i]; i++) cr_expect_eq((int)qsnn_reset_find(k->names[i]), i, "%s", k->names[i]);
    k = qsnn_config_key_find("model.surrogate");
    cr_assert_not_null(k);
    cr_expect_eq(qsnn_config_key_n_names(k), QSNN_SURR_COUNT);
    for (int i = 0; k->names[i]; i++) {
        const qsnn_surrogate *s = qsnn_surrogate_find(k->names[i]);
        cr_assert_not_null(s, "%s", k->names[i]);
        cr_expect_eq((int)s->id, i, "%s", k->names[i]);
    }
    k = qsnn_config_key_find("quant.state.grid");
    cr_assert_not_null(k);
    for (int i = 0; k->names[i]; i++) cr_expect_eq(qsnn_grid_find(k->names[i]), i, "%s", k->names[i]);
    k = qsnn_config_key_find("quant.weight.granularity");
    cr_assert_not_null(k);
    cr_expect_str_eq(k->names[QSNN_WQ_PER_CHANNEL], "per_channel");
}

Test(config, table_sizes_match_types) {
    for (int i = 0; i < qsnn_config_n_keys; i++) {
        const qsnn_config_key *k = &qsnn_config_keys[i];
        switch (k->type) {
        case QSNN_KEY_FLOAT: cr_expect(k->size == sizeof(float) || k->size == sizeof(double), "%s", k->path); break;
        case QSNN_KEY_BOOL:
        case QSNN_KEY_ENUM: cr_expect_eq(k->size, sizeof(int), "%s", k->path); break;
        case QSNN_KEY_INT: cr_expect(k->size == sizeof(int) || k->size == sizeof(long long), "%s", k->path); break;
        default: break;
        }
        cr_expect(k->desc && k->desc[0], "%s has no description", k->path);
        cr_expect_eq(qsnn_config_key_find(k->path), k, "duplicate key %s", k->path);
    }
    cr_expect_geq(qsnn_config_n_keys, 45, "the keys of the brief are all there");
}

/* ---- YAML files ------------------------------------------------------------------------------ */

Test(config, file_overrides_some_keys) {
    const char *path = write_file("exp.yaml",
                                  "# an experiment\n"
                                  "model:\n"
                                  "  hidden: [500, 200]\n"
                                  "  beta: 0.9\n"
                                  "  reset: zero\n"
                                  "  surrogate: fast_sigmoid\n"
                                  "  learn_beta: yes\n"
                                  "quant:\n"
                                  "  state:\n"
                                  "    bits: 4\n"
                                  "    grid: threshold_centered\n"
                                  "train:\n"
                                  "  lr: 1e-3\n"
                                  "  optimizer: sgd\n"
                                  "run:\n"
                                  "  seed: 42\n"
                                  "  progress: false\n"
                                  "  out: \"my runs\"\n");
    cr_assert_eq(qsnn_config_load_file(ctx, &cfg, path), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.n_layers, 3);
    cr_expect_eq(cfg.model.sizes[0], 500);
    cr_expect_eq(cfg.model.sizes[1], 200);
    cr_expect_eq(cfg.model.sizes[2], 10, "outputs kept");
    cr_expect_float_eq(cfg.model.neuron_params.beta, 0.9f, 0);
    cr_expect_eq(cfg.model.neuron_params.reset, QSNN_RESET_ZERO);
    cr_expect_eq(cfg.model.neuron_params.surrogate, QSNN_SURR_FAST_SIGMOID);
    cr_expect_eq(cfg.model.learn_beta, 1);
    cr_expect_eq(cfg.model.state_quant.bits, 4);
    cr_expect_eq(cfg.model.state_quant.grid, QSNN_GRID_THRESHOLD_CENTERED);
    cr_expect_float_eq(cfg.train.lr, 1e-3f, 0);
    cr_expect_str_eq(cfg.train.optimizer, "sgd");
    cr_expect_eq(cfg.run.seed, 42);
    cr_expect_eq(cfg.run.progress, 0);
    cr_expect_str_eq(cfg.run.out, "my runs");
    /* untouched keys keep their defaults */
    cr_expect_eq(cfg.model.n_inputs, 784);
    cr_expect_float_eq(cfg.model.neuron_params.theta, 1.0f, 0);
    cr_expect_float_eq(cfg.model.state_quant.upper_limit, 0.2, 1e-7);
    cr_expect_eq(cfg.data.steps, 25);
    cr_expect_eq(cfg.train.batch, 128);
    cr_expect_str_eq(cfg.train.schedule, "cosine");
    cr_expect_str_eq(cfg.data.dir, QSNN_DEFAULT_DATA_DIR);
    /* slope unset -> the chosen surrogate's default once resolved */
    qsnn_config_resolve(&cfg);
    cr_expect_float_eq(cfg.model.neuron_params.slope, qsnn_surrogate_get(QSNN_SURR_FAST_SIGMOID)->default_slope, 0);
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "%s", err());
}

Test(config, files_layer_and_empty_sections_are_allowed) {
    cr_assert_eq(qsnn_config_load_string(ctx, &cfg, "data:\n  steps: 7\n", "a.yaml"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_load_string(ctx, &cfg, "data:\n  train_limit: 100\ntrain:\n", "b.yaml"), QSNN_OK,
                 "%s", err());
    cr_expect_eq(cfg.data.steps, 7, "earlier file's value survives a later file without the key");
    cr_expect_eq(cfg.data.train_limit, 100);
    cr_assert_eq(qsnn_config_load_string(ctx, &cfg, "model: {outputs: 20, hidden: [64]}\n", "flow.yaml"), QSNN_OK,
                 "%s", err());
    cr_expect_eq(cfg.model.n_layers, 2);
    cr_expect_eq(cfg.model.sizes[0], 64);
    cr_expect_eq(cfg.model.sizes[1], 20);
}

Test(config, failed_load_leaves_config_unchanged) {
    qsnn_config before;
    memcpy(&before, &cfg, sizeof cfg);
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "data:\n  steps: 9\ntrain:\n  lr: abc\n", "x.yaml"), QSNN_OK);
    cr_expect_eq(memcmp(&before, &cfg, sizeof cfg), 0, "data.steps was applied although the file failed");
}

/* ---- --set ----------------------------------------------------------------------------------- */

Test(config, set_each_type) {
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "data.steps=10"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.data.steps, 10);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "run.seed=123456789012"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.run.seed, 123456789012LL);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "train.lr=0.01"), QSNN_OK, "%s", err());
    cr_expect_float_eq(cfg.train.lr, 0.01f, 0);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.bias=false"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.bias, 0);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.reset_grad=1"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.neuron_params.reset_grad, 1);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "run.progress=No"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.run.progress, 0);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "data.dir=/tmp/some data"), QSNN_OK, "%s", err());
    cr_expect_str_eq(cfg.data.dir, "/tmp/some data");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.reset=none"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.neuron_params.reset, QSNN_RESET_NONE);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.granularity=per_tensor"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.weight_quant.granularity, QSNN_WQ_PER_TENSOR);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "train.loss=mse_count"), QSNN_OK, "%s", err());
    cr_expect_str_eq(cfg.train.loss, "mse_count");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.bits=4"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.weight_quant.bits, 4);
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "%s", err());
}

Test(config, set_hidden_list) {
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.hidden=[500,200]"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.n_layers, 3);
    cr_expect_eq(cfg.model.sizes[0], 500);
    cr_expect_eq(cfg.model.sizes[1], 200);
    cr_expect_eq(cfg.model.sizes[2], 10);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.outputs=7"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.sizes[2], 7);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.hidden=300"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.n_layers, 2);
    cr_expect_eq(cfg.model.sizes[0], 300);
    cr_expect_eq(cfg.model.sizes[1], 7, "outputs follow the shorter list");
    cr_expect_eq(cfg.model.sizes[2], 0, "unused sizes are zeroed");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.hidden=[ 1, 2 ,3 ]"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.n_layers, 4);
    cr_expect_eq(cfg.model.sizes[2], 3);
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "%s", err());

    cr_expect_neq(qsnn_config_set(ctx, &cfg, "model.hidden=[]"), QSNN_OK);
    assert_msg_has("model.hidden");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "model.hidden=[1,2,3,4,5,6,7,8]"), QSNN_OK);
    assert_msg_has("1..7");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "model.hidden=[500,x]"), QSNN_OK);
    assert_msg_has("entry 2");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "model.hidden=[500,0]"), QSNN_OK);
    assert_msg_has("1..1000000");
    cr_expect_eq(cfg.model.n_layers, 4, "failed --set left the list alone");
}

Test(config, per_layer_bits) {
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_bits=[8, 4]"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.weight_layer_bits.n, 2);
    cr_expect_eq(cfg.model.weight_layer_bits.v[0], 8);
    cr_expect_eq(cfg.model.weight_layer_bits.v[1], 4);
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "%s", err());
    cr_expect_eq(qsnn_net_cfg_weight_bits(&cfg.model, 0), 8);
    cr_expect_eq(qsnn_net_cfg_weight_bits(&cfg.model, 1), 4);
    cr_expect_eq(qsnn_net_cfg_state_bits(&cfg.model, 1), 0, "no per-layer list: the network-wide value");
    /* the list must name every layer */
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.layer_bits=4"), QSNN_OK, "%s", err());
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_ERR_CONFIG);
    assert_msg_has("quant.state.layer_bits has 1 entries, the model has 2 layers");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.layer_bits=[]"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.state_layer_bits.n, 0);
    /* a per-layer value the grid cannot take names the layer */
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.layer_bits=[1, 4]"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.grid=fixed_point"), QSNN_OK, "%s", err());
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_ERR_CONFIG);
    assert_msg_has("layer 0: quant.state.bits = 1: the fixed_point grid needs at least 2 bits");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_bits=[1,2,3,4,5,6,7,8,9]"), QSNN_OK);
    assert_msg_has("0..8 entries");
    /* from YAML */
    const char *f = write_file("lb.yaml", "quant:\n  weight:\n    layer_bits: [2, 16]\n  state:\n    layer_bits: [x]\n");
    cr_expect_neq(qsnn_config_load_file(ctx, &cfg, f), QSNN_OK);
    assert_msg_has("lb.yaml:5: quant.state.layer_bits: entry 1 'x' is not an integer");
    f = write_file("lb2.yaml", "quant:\n  weight:\n    layer_bits: [2, 16]\n");
    cr_assert_eq(qsnn_config_load_file(ctx, &cfg, f), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.weight_layer_bits.v[1], 16);
    f = write_file("lb3.yaml", "quant:\n  weight:\n    layer_bits: 4\n");
    cr_expect_neq(qsnn_config_load_file(ctx, &cfg, f), QSNN_OK);
    assert_msg_has("lb3.yaml:3: quant.weight.layer_bits: expected a list of integers such as [8, 4]");
}

Test(config, integer_resolves_its_requirements) {
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.integer=true"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.bits=4"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.bits=8"), QSNN_OK, "%s", err());
    qsnn_config_resolve(&cfg);
    cr_expect_eq(cfg.model.weight_quant.pow2, 1);
    cr_expect_eq(cfg.model.state_quant.grid, QSNN_GRID_FIXED_POINT);
    cr_expect_eq(cfg.model.input_bits, 8);
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.grid=threshold_centered"), QSNN_OK, "%s", err());
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_ERR_CONFIG);
    assert_msg_has("quant.integer needs quant.state.grid = fixed_point (got threshold_centered)");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.grid=fixed_point"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_bits=[4, 0]"), QSNN_OK, "%s", err());
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_ERR_CONFIG);
    assert_msg_has("quant.integer: layer 1 has float weights");
}

Test(config, set_surrogate_then_default_slope) {
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.surrogate=soft"), QSNN_OK, "%s", err());
    qsnn_config resolved = cfg;
    qsnn_config_resolve(&resolved);
    cr_expect_float_eq(resolved.model.neuron_params.slope, 5.0f, 0);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.surrogate_slope=3.5"), QSNN_OK, "%s", err());
    qsnn_config_resolve(&cfg);
    cr_expect_float_eq(cfg.model.neuron_params.slope, 3.5f, 0, "an explicit slope is kept");
}

/* ---- dump round trip ------------------------------------------------------------------------- */

Test(config, dump_round_trip_is_identical) {
    static const char *const sets[] = {
        "model.hidden=[300,100,50]", "model.outputs=12", "model.beta=0.8123456789", "model.threshold=1.25",
        "model.reset=zero", "model.learn_threshold=true", "model.surrogate=fast_sigmoid",
        "quant.state.bits=3", "quant.state.grid=zero_centered", "quant.state.lower_limit=0.3",
        "quant.state.upper_limit=0.1", "quant.state.multiplier=0.7", "quant.state.ste_clip=true",
        "quant.weight.bits=8", "quant.weight.layer_bits=[1, 4, 8, 0]", "quant.state.layer_bits=[3,4,0,16]",
        "quant.weight.pow2=true", "quant.input.bits=6",
        "data.dir=/data/with \"quotes\" and \\ back", "data.encoding=rate",
        "train.lr=3.3333333e-4", "train.weight_decay=1e-5", "train.schedule=constant", "run.seed=7",
        "run.threads=2", "run.out=out dir: #x",
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        cr_assert_eq(qsnn_config_set(ctx, &cfg, sets[i]), QSNN_OK, "%s: %s", sets[i], err());
    qsnn_config_resolve(&cfg);
    cr_assert_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "%s", err());
    char *yaml = NULL;
    cr_assert_eq(qsnn_config_dump(ctx, &cfg, &yaml), QSNN_OK, "%s", err());
    cr_assert_not_null(yaml);

    qsnn_config zeroed, defaulted;
    memset(&zeroed, 0, sizeof zeroed);
    memset(&defaulted, 0, sizeof defaulted);
    qsnn_config_default(&defaulted);
    cr_assert_eq(qsnn_config_load_string(ctx, &zeroed, yaml, "dump"), QSNN_OK, "%s\n%s", err(), yaml);
    cr_assert_eq(qsnn_config_load_string(ctx, &defaulted, yaml, "dump"), QSNN_OK, "%s", err());
    cr_expect_eq(memcmp(&zeroed, &cfg, sizeof cfg), 0, "round trip into a zeroed struct differs:\n%s", yaml);
    cr_expect_eq(memcmp(&defaulted, &cfg, sizeof cfg), 0, "round trip into defaults differs:\n%s", yaml);

    /* every key appears, sections in table order */
    for (int i = 0; i < qsnn_config_n_keys; i++) {
        const char *leaf = strrchr(qsnn_config_keys[i].path, '.') + 1;
        char line[64];
        snprintf(line, sizeof line, " %s: ", leaf);
        cr_expect(strstr(yaml, line) != NULL, "dump lacks %s", qsnn_config_keys[i].path);
    }
    const char *pm = strstr(yaml, "\nmodel:\n"), *pq = strstr(yaml, "\nquant:\n  state:\n"),
               *pd = strstr(yaml, "\ndata:\n"), *pt = strstr(yaml, "\ntrain:\n"), *pr = strstr(yaml, "\nrun:\n");
    cr_expect(pm && pq && pd && pt && pr && pm < pq && pq < pd && pd < pt && pt < pr, "section order:\n%s", yaml);
    cr_expect(strstr(yaml, "  hidden: [300, 100, 50]\n") != NULL);
    cr_expect(strstr(yaml, "    layer_bits: [1, 4, 8, 0]\n") != NULL, "%s", yaml);
    qsnn_free(ctx, yaml);
}

Test(config, dump_defaults_round_trip_and_resolves_slope) {
    char *yaml = NULL;
    cr_assert_eq(qsnn_config_dump(ctx, &cfg, &yaml), QSNN_OK, "%s", err());
    cr_expect(strstr(yaml, "  surrogate_slope: 2\n") != NULL, "dump shows the resolved slope:\n%s", yaml);
    qsnn_config back;
    memset(&back, 0, sizeof back);
    cr_assert_eq(qsnn_config_load_string(ctx, &back, yaml, "dump"), QSNN_OK, "%s", err());
    qsnn_config_resolve(&cfg);
    cr_expect_eq(memcmp(&back, &cfg, sizeof cfg), 0);
    qsnn_free(ctx, yaml);
}

/* ---- errors in files ------------------------------------------------------------------------- */

Test(config, file_unknown_key_names_file_line_and_key) {
    const char *path = write_file("bad.yaml",
                                  "model:\n"
                                  "  hidden: [100]\n"
                                  "train:\n"
                                  "  epochs: 2\n"
                                  "  batch: 64\n"
                                  "  # comment\n"
                                  "  lrr: 0.1\n");
    cr_assert_neq(qsnn_config_load_file(ctx, &cfg, path), QSNN_OK);
    char expect[300];
    snprintf(expect, sizeof expect, "%s:7: unknown key 'lrr' in section 'train'", path);
    assert_msg_has(expect);
    assert_msg_has("did you mean 'lr'");
    cr_expect_null(strchr(err(), '\n'), "one line: %s", err());
}

Test(config, file_unknown_key_in_nested_section) {
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "quant:\n  state:\n    bits: 4\n    bitz: 2\n", "q.yaml"),
                  QSNN_OK);
    assert_msg_has("q.yaml:4: unknown key 'bitz' in section 'quant.state'");
}

Test(config, file_key_in_wrong_section_suggests_the_right_one) {
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "data:\n  steps: 5\ntrain:\n  steps: 5\n", "w.yaml"), QSNN_OK);
    assert_msg_has("w.yaml:4: unknown key 'steps' in section 'train' (did you mean 'data.steps'?)");
}

Test(config, file_unknown_section) {
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "data:\n  steps: 5\ntrian:\n  lr: 0.1\n", "s.yaml"), QSNN_OK);
    assert_msg_has("s.yaml:3: unknown section 'trian'");
    assert_msg_has("did you mean 'train'");
}

Test(config, file_wrong_types) {
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "train:\n  epochs: 2\n  lr: abc\n", "t.yaml"), QSNN_OK);
    assert_msg_has("t.yaml:3: train.lr = abc: not a number");
    /* libcyaml alone would read these as 1 and 12 */
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "data:\n  steps: 1.5\n", "t.yaml"), QSNN_OK);
    assert_msg_has("t.yaml:2: data.steps = 1.5: not an integer");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "data:\n  steps: 12abc\n", "t.yaml"), QSNN_OK);
    assert_msg_has("data.steps");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "model:\n  reset: zeroo\n", "t.yaml"), QSNN_OK);
    assert_msg_has("t.yaml:2: model.reset = zeroo: must be one of subtract, zero, none");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "model:\n  bias: maybe\n", "t.yaml"), QSNN_OK);
    assert_msg_has("t.yaml:2: model.bias = maybe: must be true or false");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "model:\n  beta: [1, 2]\n", "t.yaml"), QSNN_OK);
    assert_msg_has("t.yaml:2: model.beta: expected a single float value, got a list");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "model:\n  hidden: 500\n", "t.yaml"), QSNN_OK);
    assert_msg_has("t.yaml:2: model.hidden: expected a list");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "model:\n  hidden: [500, x]\n", "t.yaml"), QSNN_OK);
    assert_msg_has("t.yaml:2: model.hidden: entry 2 'x' is not an integer");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "model:\n  hidden: []\n", "t.yaml"), QSNN_OK);
    assert_msg_has("t.yaml:2: model.hidden: needs 1..7 hidden layer sizes, got 0");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "model:\n  hidden:\n    - 5\n    - 0\n", "t.yaml"), QSNN_OK);
    assert_msg_has("t.yaml:2: model.hidden: entry 2 = 0: must be in 1..1000000");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "train: 5\n", "t.yaml"), QSNN_OK);
    assert_msg_has("t.yaml:1: section 'train' must be a mapping");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "train:\n  lr:\n", "t.yaml"), QSNN_OK);
    assert_msg_has("train.lr = '': not a number");
}

Test(config, file_duplicate_key) {
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "train:\n  lr: 0.1\n  lr: 0.2\n", "d.yaml"), QSNN_OK);
    assert_msg_has("d.yaml:3: duplicate key 'train.lr'");
}

Test(config, file_out_of_range_value_has_line) {
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "quant:\n  state:\n    bits: 17\n", "r.yaml"), QSNN_OK);
    assert_msg_has("r.yaml:3: quant.state.bits = 17: must be in 0..16");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "train:\n  lr: -1\n", "r.yaml"), QSNN_OK);
    assert_msg_has("r.yaml:2: train.lr = -1: must be > 0");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "train:\n  lr: .nan\n", "r.yaml"), QSNN_OK);
    assert_msg_has("train.lr");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "model:\n  neuron: izh\n", "r.yaml"), QSNN_OK);
    assert_msg_has("r.yaml:2: model.neuron = izh: unknown (known: lif, ");
}

Test(config, file_syntax_error) {
    const char *path = write_file("syntax.yaml", "train:\n  lr: 0.1\n epochs: 2\n");
    cr_assert_neq(qsnn_config_load_file(ctx, &cfg, path), QSNN_OK);
    char expect[300];
    snprintf(expect, sizeof expect, "%s:3: YAML syntax error", path);
    assert_msg_has(expect);
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "train: {lr: 0.1\n", "flow.yaml"), QSNN_OK);
    assert_msg_has("flow.yaml:");
    assert_msg_has("YAML syntax error");
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "run:\n  out: \"x\n", "quote.yaml"), QSNN_OK);
    assert_msg_has("YAML syntax error");
}

Test(config, missing_and_empty_files) {
    char missing[256];
    snprintf(missing, sizeof missing, "%s/nope.yaml", tmpdir);
    cr_assert_neq(qsnn_config_load_file(ctx, &cfg, missing), QSNN_OK);
    assert_msg_has(missing);
    assert_msg_has("No such file");
    const char *empty = write_file("empty.yaml", "");
    cr_assert_neq(qsnn_config_load_file(ctx, &cfg, empty), QSNN_OK);
    assert_msg_has(empty);
    assert_msg_has("empty");
    const char *comments = write_file("comments.yaml", "# nothing here\n\n");
    cr_assert_neq(qsnn_config_load_file(ctx, &cfg, comments), QSNN_OK);
    assert_msg_has(comments);
    cr_assert_neq(qsnn_config_load_file(ctx, &cfg, tmpdir), QSNN_OK, "a directory is not a config file");
    assert_msg_has(tmpdir);
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg, "- 1\n- 2\n", "list.yaml"), QSNN_OK);
    assert_msg_has("list.yaml:");
    assert_msg_has("mapping of sections");
}

/* ---- errors in --set ------------------------------------------------------------------------- */

Test(config, set_errors) {
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "train.lrr=0.1"), QSNN_OK);
    assert_msg_has("unknown key 'train.lrr'");
    assert_msg_has("did you mean 'train.lr'");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "bogus=1"), QSNN_OK);
    assert_msg_has("unknown key 'bogus'");
    assert_msg_has("--help-config");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "quant.state=4"), QSNN_OK);
    assert_msg_has("'quant.state' is a section, not a key (e.g. quant.state.bits");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "train.lr"), QSNN_OK);
    assert_msg_has("expected key=value");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "train.lr=abc"), QSNN_OK);
    assert_msg_has("--set train.lr=abc: not a number");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "train.lr=1e-3x"), QSNN_OK);
    assert_msg_has("not a number");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "train.lr= 0.1"), QSNN_OK);
    assert_msg_has("not a number");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "train.lr=1e39"), QSNN_OK);
    assert_msg_has("out of range for a float");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "data.steps=2.5"), QSNN_OK);
    assert_msg_has("--set data.steps=2.5: not an integer");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "data.steps=99999999999999999999"), QSNN_OK);
    assert_msg_has("data.steps");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "train.optimizer=adamw"), QSNN_OK);
    assert_msg_has("--set train.optimizer=adamw: must be one of adam, sgd");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "model.reset=Zero"), QSNN_OK);
    assert_msg_has("must be one of subtract, zero, none");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "model.bias=maybe"), QSNN_OK);
    assert_msg_has("model.bias=maybe: not a boolean");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "run.out="), QSNN_OK);
    assert_msg_has("run.out=: must not be empty");
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "model.neuron=izh"), QSNN_OK);
    assert_msg_has("unknown (known: lif, ");
    cr_expect_eq(qsnn_config_set(ctx, &cfg, "train.lr=0.25"), QSNN_OK, "%s", err());

    qsnn_config fresh;
    memset(&fresh, 0, sizeof fresh);
    qsnn_config_default(&fresh);
    fresh.train.lr = 0.25f;
    cr_expect_eq(memcmp(&fresh, &cfg, sizeof cfg), 0, "failed --set changed the config");
}

Test(config, set_out_of_range_values) {
    static const struct { const char *set, *msg; } cases[] = {
        {"train.lr=-1", "train.lr=-1: must be > 0"},
        {"train.lr=0", "must be > 0"},
        {"quant.state.bits=17", "quant.state.bits=17: must be in 0..16"},
        {"quant.weight.bits=17", "quant.weight.bits=17: must be 0 (off) or 1..16"},
        {"quant.weight.layer_bits=[4,17]", "quant.weight.layer_bits=[4,17]: entry 2 = 17: must be 0 (off) or 1..16"},
        {"model.beta=1.5", "model.beta=1.5: must be in [0, 1]"},
        {"data.steps=0", "data.steps=0: must be in 1..100000"},
        {"train.batch=-5", "train.batch=-5: must be in 1..65536"},
        {"train.lr=nan", "train.lr=nan: must be a finite number"},
        {"train.lr=inf", "train.lr=inf: must be a finite number"},
        {"train.momentum=1", "train.momentum=1: must be in [0, 1)"},
        {"model.threshold=0", "model.threshold=0: must be > 0"},
        {"run.threads=5000", "run.threads=5000: must be in 0..1024"},
        {"run.seed=-1", "run.seed=-1: must be >= 0"},
        {"model.outputs=0", "model.outputs=0: must be in 1..1000000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_neq(qsnn_config_set(ctx, &cfg, cases[i].set), QSNN_OK, "%s accepted", cases[i].set);
        cr_expect(strstr(err(), cases[i].msg) != NULL, "'%s' lacks '%s'", err(), cases[i].msg);
    }
    cr_expect_eq(qsnn_config_set(ctx, &cfg, "quant.weight.bits=0"), QSNN_OK, "0 = off is allowed");
}

/* ---- qsnn_config_check on values written directly ---------------------------------------------- */

Test(config, check_rejects_out_of_range_fields) {
    qsnn_config c;
    c = cfg;
    c.train.lr = -1.0f;
    cr_expect_eq(qsnn_config_check(ctx, &c), QSNN_ERR_CONFIG);
    assert_msg_has("train.lr = -1: must be > 0");
    c = cfg;
    c.train.lr = NAN;
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("train.lr = nan: must be a finite number");
    c = cfg;
    c.model.state_quant.bits = 17;
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("quant.state.bits = 17");
    c = cfg;
    c.model.neuron_params.beta = 1.5f;
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("model.beta = 1.5");
    c = cfg;
    c.data.steps = 0;
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("data.steps = 0");
    c = cfg;
    c.train.batch = -5;
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("train.batch = -5");
    c = cfg;
    c.model.neuron_params.reset = (qsnn_reset)7;
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("model.reset = 7: must be one of");
    c = cfg;
    snprintf(c.train.schedule, sizeof c.train.schedule, "step");
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("train.schedule = 'step'");
    c = cfg;
    snprintf(c.model.neuron, sizeof c.model.neuron, "izh");
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("model.neuron");
    c = cfg;
    c.model.n_layers = QSNN_MAX_LAYERS + 1;
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("model.hidden");
    c = cfg;
    c.train.lr_min = 1.0f;
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("train.lr_min = 1: must be <= train.lr");
    c = cfg;
    c.model.neuron_params.slope = -2.0f;
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("model.surrogate_slope = -2: must be >= 0");
    /* consistency checks of the quantizer modules run too */
    c = cfg;
    c.model.state_quant.bits = 4;
    c.model.state_quant.grid = QSNN_GRID_THRESHOLD_CENTERED;
    c.model.state_quant.upper_limit = -0.5f;
    cr_expect_neq(qsnn_config_check(ctx, &c), QSNN_OK);
    assert_msg_has("quant.state");
}

/* ---- --help-config ------------------------------------------------------------------------------ */

Test(config, print_keys_lists_every_key_aligned) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    qsnn_config_print_keys(f);
    fclose(f);
    cr_assert_not_null(text);
    int lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, qsnn_config_n_keys);
    for (int i = 0; i < qsnn_config_n_keys; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "  %s ", qsnn_config_keys[i].path);
        cr_expect(strstr(text, needle) != NULL, "missing %s", qsnn_config_keys[i].path);
    }
    const char *lr = strstr(text, "  train.lr ");
    cr_assert_not_null(lr);
    cr_expect(strncmp(strstr(lr, "float"), "float", 5) == 0);
    cr_expect(strstr(lr, "0.0005") && strstr(lr, "0.0005") < strchr(lr, '\n'), "default shown: %.80s", lr);
    cr_expect(strstr(lr, "learning rate (> 0)") && strstr(lr, "learning rate") < strchr(lr, '\n'));
    /* the type column starts at the same offset on every line */
    const char *l1 = strstr(text, "  model.inputs "), *l2 = strstr(text, "  run.progress ");
    cr_assert(l1 && l2);
    cr_expect_eq(strstr(l1, " int ") - l1, strstr(l2, " bool ") - l2);
    free(text);
}

/* ---- model.layers ------------------------------------------------------------------------------ */

Test(config, layers_round_trip_and_sizes) {
    static const char *const sets[] = {
        "model.layers=[conv channels=6 kernel=5 pool=max:2, \"conv channels=8 kernel=3 padding=1 groups=2 "
        "stride=1 pool=avg:2 neuron=synaptic\", dense size=40 dropout=0.25 surrogate=sigmoid slope=7.5 weight_bits=8 state_bits=0]",
        "quant.weight.bits=4", "quant.state.bits=4",
        "model.input_shape=[1, 28, 28]", "model.output_neuron=li", "model.alpha=0.8", "model.learn_alpha=true",
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        cr_assert_eq(qsnn_config_set(ctx, &cfg, sets[i]), QSNN_OK, "%s: %s", sets[i], err());
    qsnn_config_resolve(&cfg);
    cr_assert_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "%s", err());
    const qsnn_net_cfg *m = &cfg.model;
    cr_expect_eq(m->n_layers, 4);
    cr_expect_eq(m->sizes[0], 6 * 12 * 12, "28 - 5 + 1 = 24, pooled 12");
    cr_expect_eq(m->sizes[1], 8 * 6 * 6, "padding 1 keeps 12, pooled 6");
    cr_expect_eq(m->sizes[2], 40);
    cr_expect_eq(m->sizes[3], 10, "model.outputs is kept");
    cr_expect_str_eq(m->spec[1].neuron, "synaptic");
    cr_expect_float_eq(m->spec[2].dropout, 0.25f, 0);
    cr_expect_eq(qsnn_net_cfg_weight_bits(m, 2), 8, "the line's own width");
    cr_expect_eq(qsnn_net_cfg_state_bits(m, 2), 0, "state_bits=0: float states in that layer");
    cr_expect_eq(qsnn_net_cfg_weight_bits(m, 1), 4, "no option: quant.weight.bits");
    char *yaml = NULL;
    cr_assert_eq(qsnn_config_dump(ctx, &cfg, &yaml), QSNN_OK, "%s", err());
    cr_expect(strstr(yaml, "\"conv channels=8 kernel=3 padding=1 groups=2 pool=avg:2 neuron=synaptic\"") != NULL,
              "canonical line (stride 1 left out):\n%s", yaml);
    qsnn_config back;
    memset(&back, 0, sizeof back);
    cr_assert_eq(qsnn_config_load_string(ctx, &back, yaml, "dump"), QSNN_OK, "%s\n%s", err(), yaml);
    qsnn_config_resolve(&back);
    cr_expect_eq(memcmp(&back, &cfg, sizeof cfg), 0, "round trip differs:\n%s", yaml);
    qsnn_free(ctx, yaml);
    /* model.hidden given later replaces the layer list */
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.hidden=[100]"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.n_specs, 0);
    cr_expect_eq(cfg.model.n_layers, 2);
}

Test(config, layers_errors_name_the_entry) {
    cr_assert_neq(qsnn_config_load_string(ctx, &cfg,
                                          "model:\n  layers:\n    - \"conv channels=4\"\n    - \"conv chanels=3\"\n",
                                          "l.yaml"),
                  QSNN_OK);
    assert_msg_has("l.yaml:2: model.layers: entry 2 'conv chanels=3': unknown option 'chanels' for a conv layer");
    cr_assert_neq(qsnn_config_set(ctx, &cfg, "model.layers=[pool size=2]"), QSNN_OK);
    assert_msg_has("unknown layer type 'pool' (known: conv, dense)");
    cr_assert_neq(qsnn_config_set(ctx, &cfg, "model.layers=[conv channels=4 pool=max]"), QSNN_OK);
    assert_msg_has("pool=max: expected none, max:K, avg:K or sum:K");
    cr_assert_neq(qsnn_config_set(ctx, &cfg, "model.layers=[dense size=10 dropout=1]"), QSNN_OK);
    assert_msg_has("dropout=1: must be in [0, 1)");
    cr_assert_neq(qsnn_config_set(ctx, &cfg, "model.layers=[dense]"), QSNN_OK);
    assert_msg_has("a dense layer needs size=N");
    /* shapes are checked with the model: the layer and its input are named */
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.layers=[conv channels=4 kernel=5 pool=max:2, conv channels=4 "
                                            "kernel=13]"),
                 QSNN_OK, "%s", err());
    qsnn_config_resolve(&cfg);
    cr_assert_neq(qsnn_config_check(ctx, &cfg), QSNN_OK);
    assert_msg_has("model.layers[1] (input 4x12x12): conv: kernel 13x13");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.layers=[dense size=10, conv channels=4]"), QSNN_OK, "%s", err());
    qsnn_config_resolve(&cfg);
    cr_assert_neq(qsnn_config_check(ctx, &cfg), QSNN_OK);
    assert_msg_has("model.layers[1] (conv) follows a dense layer");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.layers=[conv channels=4]"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.input_shape=[2, 28, 28]"), QSNN_OK, "%s", err());
    qsnn_config_resolve(&cfg);
    cr_assert_neq(qsnn_config_check(ctx, &cfg), QSNN_OK);
    assert_msg_has("model.input_shape [2, 28, 28] has 1568 values, model.inputs is 784");
}

/* ---- per-layer quantizer names (quant.weight.layer_method, quant.state.layer_grid) ---------------- */

Test(config, layer_names_from_set_and_yaml) {
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_method=[qil,lsq]"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.weight_layer_method.n, 2);
    cr_expect_str_eq(cfg.model.weight_layer_method.v[0], "qil");
    cr_expect_str_eq(cfg.model.weight_layer_method.v[1], "lsq");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.layer_grid=[ uniform , \"threshold_centered\" ]"), QSNN_OK,
                 "%s", err());
    cr_expect_eq(cfg.model.state_layer_grid.n, 2);
    cr_expect_str_eq(cfg.model.state_layer_grid.v[0], "uniform");
    cr_expect_str_eq(cfg.model.state_layer_grid.v[1], "threshold_centered");
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "%s", err());
    /* one bare name is a one-entry list; [] = not given */
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_method=lsq_affine"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.weight_layer_method.n, 1);
    cr_expect_str_eq(cfg.model.weight_layer_method.v[0], "lsq_affine");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_method=[]"), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.weight_layer_method.n, 0);
    cr_expect_eq(cfg.model.weight_layer_method.v[0][0], 0, "[] clears the old entries (dump round trips compare bytes)");

    /* YAML: flow and block lists */
    const char *f = write_file("ln.yaml", "model:\n  hidden: [20, 10]\nquant:\n  weight:\n    layer_method: [lsq, qil, "
                                          "uniform_affine]\n  state:\n    layer_grid:\n      - fixed_point\n"
                                          "      - \"zero_centered\"\n      - uniform\n");
    cr_assert_eq(qsnn_config_load_file(ctx, &cfg, f), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.weight_layer_method.n, 3);
    cr_expect_str_eq(cfg.model.weight_layer_method.v[2], "uniform_affine");
    cr_expect_eq(cfg.model.state_layer_grid.n, 3);
    cr_expect_str_eq(cfg.model.state_layer_grid.v[0], "fixed_point");
    cr_expect_str_eq(cfg.model.state_layer_grid.v[1], "zero_centered");
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "%s", err());
    /* "layer_grid: []" in a file keeps the value (libcyaml: an empty list reads as absent), like layer_bits */
    f = write_file("ln0.yaml", "quant:\n  state:\n    layer_grid: []\n");
    cr_assert_eq(qsnn_config_load_file(ctx, &cfg, f), QSNN_OK, "%s", err());
    cr_expect_eq(cfg.model.state_layer_grid.n, 3);
}

Test(config, layer_names_errors_name_key_and_entry) {
    const qsnn_config before = cfg;
    cr_assert_neq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_method=[qil,foo]"), QSNN_OK);
    assert_msg_has("--set quant.weight.layer_method=[qil,foo]: quant.weight.layer_method[1] = 'foo': unknown (known: "
                   "uniform_symmetric, ");
    assert_msg_has(", qil");
    cr_expect_eq(memcmp(&before, &cfg, sizeof cfg), 0, "a refused --set changed the configuration");
    cr_assert_neq(qsnn_config_set(ctx, &cfg, "quant.state.layer_grid=[uniform,bogus]"), QSNN_OK);
    assert_msg_has("quant.state.layer_grid[1] = 'bogus': unknown (known: uniform, threshold_centered, ");
    cr_assert_neq(qsnn_config_set(ctx, &cfg, "quant.state.layer_grid=[,uniform]"), QSNN_OK);
    assert_msg_has("quant.state.layer_grid[0] = '': unknown");
    cr_assert_neq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_method=[qil, qil, qil, qil, qil, qil, qil, qil, qil]"),
                  QSNN_OK);
    assert_msg_has("quant.weight.layer_method=[qil, qil, qil, qil, qil, qil, qil, qil, qil]: needs 0..8 entries (one "
                   "per layer), got 9");
    cr_assert_neq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_method=[a_name_much_longer_than_thirty_one_chars]"),
                  QSNN_OK);
    assert_msg_has("quant.weight.layer_method[0] = 'a_name_much_longer_than_thirty_one_chars': longer than 31 characters");
    cr_expect_eq(memcmp(&before, &cfg, sizeof cfg), 0);

    /* files: file:line, key and entry */
    const char *f = write_file("bad.yaml", "quant:\n  weight:\n    layer_method:\n      - lsq\n      - nope\n");
    cr_assert_neq(qsnn_config_load_file(ctx, &cfg, f), QSNN_OK);
    assert_msg_has("bad.yaml:3: quant.weight.layer_method[1] = 'nope': unknown (known: ");
    f = write_file("scalar.yaml", "quant:\n  weight:\n    layer_method: qil\n");
    cr_assert_neq(qsnn_config_load_file(ctx, &cfg, f), QSNN_OK);
    assert_msg_has("scalar.yaml:3: quant.weight.layer_method: expected a list of names, one per layer, such as [qil, lsq]");

    /* the count must match the layers, like layer_bits */
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_method=[qil]"), QSNN_OK, "%s", err());
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_ERR_CONFIG);
    assert_msg_has("quant.weight.layer_method has 1 entries, the model has 2 layers");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_method=[]"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.layer_grid=[uniform, uniform, lsq]"), QSNN_OK, "%s", err());
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_ERR_CONFIG);
    assert_msg_has("quant.state.layer_grid has 3 entries, the model has 2 layers");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.layer_grid=[]"), QSNN_OK, "%s", err());

    /* a per-layer quantizer the layer's settings rule out names the layer */
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.bits=4"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.pow2=true"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_method=[uniform_symmetric, qil]"), QSNN_OK, "%s", err());
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_ERR_CONFIG);
    assert_msg_has("layer 1: quant.weight.pow2: the qil quantizer learns its scale");
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.pow2=false"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.bits=4"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.state.layer_grid=[fixed_point, uniform]"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.weight.layer_method=[]"), QSNN_OK, "%s", err());
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "quant.integer=true"), QSNN_OK, "%s", err());
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_ERR_CONFIG);
    assert_msg_has("quant.integer needs the fixed_point grid (quant.state.layer_grid[1] = uniform)");

    /* a network configuration built in code (no --set) is checked by name too */
    qsnn_net_cfg m;
    qsnn_net_cfg_default(&m);
    m.weight_quant.bits = 4;
    m.weight_layer_method.n = 2;
    snprintf(m.weight_layer_method.v[0], sizeof m.weight_layer_method.v[0], "nope");
    snprintf(m.weight_layer_method.v[1], sizeof m.weight_layer_method.v[1], "qil");
    cr_expect_eq(qsnn_net_cfg_check(ctx, &m), QSNN_ERR_CONFIG);
    assert_msg_has("quant.weight.layer_method[0] = 'nope': unknown (known: ");
    m.weight_layer_method.n = 0;
    m.state_layer_grid.n = 2;
    snprintf(m.state_layer_grid.v[1], sizeof m.state_layer_grid.v[1], "uniformm");
    snprintf(m.state_layer_grid.v[0], sizeof m.state_layer_grid.v[0], "uniform");
    cr_expect_eq(qsnn_net_cfg_check(ctx, &m), QSNN_ERR_CONFIG);
    assert_msg_has("quant.state.layer_grid[1] = 'uniformm': unknown (known: uniform, ");
}

Test(config, layer_names_dump_round_trip) {
    static const char *const sets[] = {"model.hidden=[30, 20]", "quant.weight.bits=4", "quant.state.bits=4",
                                       "quant.weight.layer_method=[qil, lsq, uniform_symmetric]",
                                       "quant.state.layer_grid=[threshold_centered, lsq, uniform]"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        cr_assert_eq(qsnn_config_set(ctx, &cfg, sets[i]), QSNN_OK, "%s: %s", sets[i], err());
    qsnn_config_resolve(&cfg);
    cr_assert_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "%s", err());
    char *yaml = NULL;
    cr_assert_eq(qsnn_config_dump(ctx, &cfg, &yaml), QSNN_OK, "%s", err());
    cr_expect(strstr(yaml, "\n    layer_method: [qil, lsq, uniform_symmetric]\n") != NULL, "%s", yaml);
    cr_expect(strstr(yaml, "\n    layer_grid: [threshold_centered, lsq, uniform]\n") != NULL, "%s", yaml);
    qsnn_config zeroed, defaulted;
    memset(&zeroed, 0, sizeof zeroed);
    qsnn_config_default(&defaulted);
    cr_assert_eq(qsnn_config_load_string(ctx, &zeroed, yaml, "dump"), QSNN_OK, "%s\n%s", err(), yaml);
    cr_assert_eq(qsnn_config_load_string(ctx, &defaulted, yaml, "dump"), QSNN_OK, "%s", err());
    cr_expect_eq(memcmp(&zeroed, &cfg, sizeof cfg), 0, "round trip into a zeroed struct differs:\n%s", yaml);
    cr_expect_eq(memcmp(&defaulted, &cfg, sizeof cfg), 0, "round trip into defaults differs:\n%s", yaml);
    qsnn_free(ctx, yaml);
    /* the key reference lists both with their known names */
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    cr_assert_not_null(mf);
    qsnn_config_print_keys(mf);
    fclose(mf);
    cr_expect(strstr(buf, "quant.weight.layer_method  name list") != NULL, "%s", buf);
    cr_expect(strstr(buf, "one per layer, each one of uniform_symmetric,") != NULL, "%s", buf);
    free(buf);
}

Test(config, layer_names_reach_the_layers) {
    qsnn_net_cfg m;
    qsnn_net_cfg_default(&m);
    m.n_inputs = 16, m.n_layers = 3, m.sizes[0] = 8, m.sizes[1] = 6, m.sizes[2] = 4;
    m.weight_quant.bits = 4, m.state_quant.bits = 4;
    snprintf(m.weight_quant.method, sizeof m.weight_quant.method, "lsq_affine");
    m.state_quant.grid = QSNN_GRID_ZERO_CENTERED;
    /* without lists: the network-wide values */
    for (int l = 0; l < 3; l++) {
        cr_expect_str_eq(qsnn_net_cfg_weight_method(&m, l), "lsq_affine");
        cr_expect_eq(qsnn_net_cfg_state_grid(&m, l), QSNN_GRID_ZERO_CENTERED);
    }
    qsnn_config c;
    qsnn_config_default(&c);
    c.model = m;
    cr_assert_eq(qsnn_config_set(ctx, &c, "quant.weight.layer_method=[qil, lsq, uniform_symmetric]"), QSNN_OK, "%s",
                 err());
    cr_assert_eq(qsnn_config_set(ctx, &c, "quant.state.layer_grid=[threshold_centered, lsq, uniform]"), QSNN_OK, "%s",
                 err());
    cr_expect_str_eq(qsnn_net_cfg_weight_method(&c.model, 0), "qil");
    cr_expect_str_eq(qsnn_net_cfg_weight_method(&c.model, 1), "lsq");
    cr_expect_str_eq(qsnn_net_cfg_weight_method(&c.model, 2), "uniform_symmetric");
    cr_expect_eq(qsnn_net_cfg_state_grid(&c.model, 0), QSNN_GRID_THRESHOLD_CENTERED);
    cr_expect_eq(qsnn_net_cfg_state_grid(&c.model, 1), QSNN_GRID_LSQ);
    cr_expect_eq(qsnn_net_cfg_state_grid(&c.model, 2), QSNN_GRID_UNIFORM);
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_net_create(ctx, &c.model, &net), QSNN_OK, "%s", err());
    cr_expect_eq(net->layer[0].wq, &qsnn_wq_qil);
    cr_expect_eq(net->layer[1].wq, &qsnn_wq_lsq);
    cr_expect_eq(net->layer[2].wq, &qsnn_wq_uniform_symmetric);
    cr_expect_str_eq(net->layer[0].wq_cfg.method, "qil");
    cr_expect_str_eq(net->layer[1].wq_cfg.method, "lsq");
    cr_expect_eq(net->layer[0].sq_cfg.grid, QSNN_GRID_THRESHOLD_CENTERED);
    cr_expect_eq(net->layer[1].sq_cfg.grid, QSNN_GRID_LSQ);
    cr_expect_eq(net->layer[2].sq_cfg.grid, QSNN_GRID_UNIFORM);
    /* each layer's learned parameters are its own quantizer's */
    qsnn_param list[QSNN_MAX_PARAMS];
    const int np = qsnn_net_params(net, list);
    int seen = 0;
    for (int i = 0; i < np; i++) {
        seen |= !strcmp(list[i].name, "layer0.weight_center") << 0;
        seen |= !strcmp(list[i].name, "layer1.weight_scale") << 1;
        seen |= !strcmp(list[i].name, "layer1.state_scale") << 2;
        seen |= (!strcmp(list[i].name, "layer0.weight_scale") || !strcmp(list[i].name, "layer2.weight_scale") ||
                 !strcmp(list[i].name, "layer0.state_scale")) << 3;
    }
    cr_expect_eq(seen, 7, "learned parameters per layer (bits: center0, scale1, state_scale1, none elsewhere): %d",
                 seen);
    qsnn_net_destroy(&net);
}
