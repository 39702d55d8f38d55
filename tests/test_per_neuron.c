/* Per-neuron parameters (model.per_neuron) in the engine, on layers wide enough that the batch's
 * elements span several neuron blocks (block starts fall inside a sample):
 *   - arrays equal to the layer's values reproduce the per-layer network bit for bit, and their
 *     gradients sum to the per-layer gradient;
 *   - with distinct values, identical samples give identical spikes (each element reads its own
 *     neuron's parameters), and a batch of copies gives B times one sample's gradient;
 *   - 1 and 2 threads give the same bits;
 *   - quantized states of neuron o sit on the layer's grid scaled by θ_o/θ. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/engine.h"
#include "test_util.h"

enum { F = 12, H = 700, C = 3, T = 6, BMAX = 3 };

typedef struct run {
    qsnn_ctx *ctx;
    qsnn_net *net;
    qsnn_workspace *ws;
} run;

static void spread(qsnn_net *net) {
    for (int l = 0; l < net->n_layers; l++) {
        qsnn_layer *L = &net->layer[l];
        for (int o = 0; o < L->out; o++) {
            const float f = (float)((o * 7) % 11) / 10.0f;
            if (L->pn[QSNN_PN_BETA]) L->pn[QSNN_PN_BETA][o] = 0.7f + 0.29f * f;
            if (L->pn[QSNN_PN_THETA]) L->pn[QSNN_PN_THETA][o] = 0.6f + 0.9f * f;
        }
    }
}

static run make(int threads, int per_neuron, int state_bits, int distinct) {
    run r = {.ctx = test_ctx(threads)};
    qsnn_net_cfg cfg;
    qsnn_net_cfg_default(&cfg);
    cfg.n_inputs = F, cfg.sizes[0] = H, cfg.sizes[1] = C;
    cfg.per_neuron = per_neuron;
    cfg.learn_beta = cfg.learn_theta = 1;
    cfg.state_quant.bits = state_bits;
    cfg.weight_quant.bits = state_bits;
    cr_assert_eq(qsnn_net_create(r.ctx, &cfg, &r.net), QSNN_OK, "%s", qsnn_last_error(r.ctx));
    qsnn_net_init(r.net, 3);
    for (size_t i = 0; i < r.net->layer[0].nw; i++) r.net->layer[0].W[i] *= 4.0f; /* busy hidden layer */
    if (distinct) spread(r.net);
    cr_assert_eq(qsnn_net_prepare(r.net), QSNN_OK, "%s", qsnn_last_error(r.ctx));
    cr_assert_eq(qsnn_workspace_create(r.net, BMAX, T, 1, &r.ws), QSNN_OK);
    return r;
}

static void destroy(run *r) {
    qsnn_workspace_destroy(&r->ws);
    qsnn_net_destroy(&r->net);
    qsnn_ctx_destroy(&r->ctx);
}

/* B samples (copies of one image when same), a count loss's gradient, forward and backward. */
static void step(run *r, int B, int same) {
    float x[BMAX * F];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < F; i++) x[b * F + i] = (float)(((same ? 0 : b * 5) + i * 13) % 17) / 16.0f;
    cr_assert_eq(qsnn_forward(r->net, r->ws, x, 1, B), QSNN_OK);
    float g[T * BMAX * C];
    for (int i = 0; i < T * B * C; i++) g[i] = (float)((i % 5) - 2) * 0.1f;
    if (same) /* the same gradient for every copy */
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++)
                for (int c = 0; c < C; c++) g[(t * B + b) * C + c] = (float)(((t + c) % 5) - 2) * 0.1f;
    cr_assert_eq(qsnn_backward(r->net, r->ws, g, NULL), QSNN_OK);
}

static int spike_count(const run *r, int l, int B) {
    const int n = T * B * r->net->layer[l].out;
    int s = 0;
    for (int i = 0; i < n; i++) s += r->ws->buf[l].S[i] > 0.5f;
    return s;
}

Test(per_neuron, equal_values_match_per_layer_bit_for_bit) {
    for (int bits = 0; bits <= 4; bits += 4) {
        run a = make(2, 0, bits, 0), b = make(2, 1, bits, 0);
        step(&a, BMAX, 0);
        step(&b, BMAX, 0);
        for (int l = 0; l < 2; l++) {
            const size_t n = (size_t)T * BMAX * a.net->layer[l].out;
            cr_assert_eq(memcmp(a.ws->buf[l].S, b.ws->buf[l].S, n * sizeof(float)), 0, "layer %d spikes (bits %d)", l, bits);
            cr_assert_eq(memcmp(a.ws->buf[l].U, b.ws->buf[l].U, n * sizeof(float)), 0, "layer %d states (bits %d)", l, bits);
            cr_assert_eq(memcmp(a.net->layer[l].gW, b.net->layer[l].gW, a.net->layer[l].nw * sizeof(float)), 0,
                         "layer %d weight gradient (bits %d)", l, bits);
            const float *gs[2] = {&a.net->layer[l].g_beta, &a.net->layer[l].g_theta};
            for (int k = 0; k < 2; k++) {
                double sum = 0.0;
                for (int o = 0; o < b.net->layer[l].out; o++) sum += b.net->layer[l].g_pn[k][o];
                cr_expect(fabs(sum - *gs[k]) <= 1e-4 * fabs(*gs[k]) + 1e-5, "layer %d %s: per-neuron sum %.9g, per-layer %.9g",
                          l, k ? "theta" : "beta", sum, (double)*gs[k]);
            }
        }
        cr_expect_gt(spike_count(&a, 0, BMAX), 100, "the hidden layer must fire for the check to mean anything");
        destroy(&a);
        destroy(&b);
    }
}

Test(per_neuron, each_element_reads_its_own_neuron) {
    for (int bits = 0; bits <= 4; bits += 4) {
        run one = make(1, 1, bits, 1), many = make(1, 1, bits, 1);
        step(&one, 1, 1);
        step(&many, BMAX, 1);
        for (int l = 0; l < 2; l++) {
            const int out = many.net->layer[l].out;
            for (int t = 0; t < T; t++)
                for (int b = 0; b < BMAX; b++)
                    cr_assert_eq(memcmp(many.ws->buf[l].S + ((size_t)t * BMAX + b) * out,
                                        one.ws->buf[l].S + (size_t)t * out, out * sizeof(float)), 0,
                                 "layer %d step %d sample %d differs from the lone copy (bits %d)", l, t, b, bits);
            for (int k = 0; k < 2; k++)
                for (int o = 0; o < out; o++) {
                    const double g1 = one.net->layer[l].g_pn[k][o], gB = many.net->layer[l].g_pn[k][o];
                    cr_assert(fabs(gB - BMAX * g1) <= 1e-5 * fabs(gB) + 1e-7, "layer %d %s[%d]: %.9g vs %d x %.9g", l,
                              k ? "theta" : "beta", o, gB, BMAX, g1);
                }
        }
        cr_expect_gt(spike_count(&one, 0, 1), 50);
        destroy(&one);
        destroy(&many);
    }
}

Test(per_neuron, one_and_two_threads_give_the_same_bits) {
    run a = make(1, 1, 4, 1), b = make(2, 1, 4, 1);
    step(&a, BMAX, 0);
    step(&b, BMAX, 0);
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 2; k++)
            cr_assert_eq(memcmp(a.net->layer[l].g_pn[k], b.net->layer[l].g_pn[k], a.net->layer[l].out * sizeof(float)), 0,
                         "layer %d parameter %d gradient", l, k);
    destroy(&a);
    destroy(&b);
}

Test(per_neuron, states_follow_each_threshold) {
    run r = make(1, 1, 3, 1);
    step(&r, BMAX, 0);
    const qsnn_layer *L = &r.net->layer[0];
    int off_reference = 0;
    for (int i = 0; i < T * BMAX * L->out; i++) {
        const int o = i % L->out;
        const float u = r.ws->buf[0].U[i], g = L->q_gain[o];
        cr_assert_float_eq(g, L->pn[QSNN_PN_THETA][o] / L->theta, 0.0f);
        const int k = qsnn_layer_level_index(L, o, u);
        cr_assert_geq(k, 0);
        cr_assert_eq(u, g * L->sq.levels[k], "element %d: %.9g is not %g x level %d (%.9g)", i, u, g, k, L->sq.levels[k]);
        off_reference += qsnn_state_level_index(&L->sq, u) < 0;
    }
    cr_expect_gt(off_reference, 100, "scaled grids must differ from the reference grid");
    destroy(&r);
}
