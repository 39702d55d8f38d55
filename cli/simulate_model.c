/* A trained network in continuous time (validation item 3 of the continuous-time engine).
 *
 * Layer l becomes a population of lif_delta neurons (neurons/ct_lif_delta.c) with
 * tau = dt / (1 - beta_l) and the same threshold; the first layer's input current (W x + b, the
 * discrete engine's own values) is each neuron's constant I; deeper layers get their bias as I and
 * the spikes of the layer below through dense explicit projections with the forward (quantized)
 * weights. dt is a nominal 1 ms: everything scales with it. Differences from the discrete model
 * that this measures: continuous leak and integration instead of one update per step, an immediate
 * reset instead of one at the next step, and spikes of layer l-1 reaching layer l one dt later
 * (the CVODE engine's shortest delay) instead of in the same step. Quantized membranes have no
 * continuous counterpart: such models run with a float membrane, which the output says. */
#include "cli/simulate_model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/run_setup.h"
#include "core/timer.h"
#include "sim/engine.h"
#include "sim/popnet.h"

#define DT 1e-3

typedef struct counter {
    int32_t *count[QSNN_MAX_LAYERS];
} counter;

static qsnn_status count_spikes(void *user, int pop, const double *t, const int32_t *idx, int64_t n) {
    (void)t;
    counter *c = user;
    for (int64_t k = 0; k < n; k++) c->count[pop][idx[k]]++;
    return QSNN_OK;
}

static int argmax_i(const int32_t *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static int argmax_f(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

int qsnn_simulate_model(const char *model, int samples, int threads, const qsnn_cvode_opts *opts, int json) {
    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, threads, 0, &ctx)) return qsnn_cli_error("simulate", "out of memory");
    int rc = 1;
    qsnn_config cfg;
    qsnn_ckpt_meta meta;
    qsnn_net *net = NULL;
    qsnn_dataset *test = NULL;
    qsnn_workspace *ws = NULL;
    qsnn_popnet *pn = NULL;
    float *x = NULL, *dcount = NULL;
    counter cnt = {{0}};
    if (qsnn_open_model(ctx, model, NULL, &cfg, &meta, &net)) goto fail;
    if (strcmp(cfg.data.encoding, "direct")) {
        qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED, "%s: encoding %s: only direct encoding runs in continuous time", model,
                  cfg.data.encoding);
        goto fail;
    }
    const int L = net->n_layers, T = cfg.data.steps, F = net->cfg.n_inputs;
    for (int l = 0; l < L; l++)
        if (!qsnn_net_plain_lif(&net->cfg, NULL) || net->layer[l].np.reset != QSNN_RESET_SUBTRACT ||
            !(net->layer[l].np.beta < 1.0f)) {
            qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED,
                      "%s: layer %d: only LIF with subtractive reset and beta < 1 has a continuous twin", model, l);
            goto fail;
        }
    if (qsnn_load_split(ctx, &cfg, "t10k", &test)) goto fail;
    const int N = samples < test->n ? samples : (int)test->n;
    enum { B = 32 };
    if (qsnn_workspace_create(net, B, T, 0, &ws)) goto fail;
    /* the population network */
    if (qsnn_popnet_create(ctx, &pn)) goto fail;
    pn->dt = DT;
    const qsnn_ct_model *m = qsnn_ct_model_get("lif_delta");
    for (int l = 0; l < L; l++) {
        char name[16];
        snprintf(name, sizeof name, "layer%d", l);
        int p;
        if (qsnn_popnet_add_pop(pn, name, net->layer[l].out, m, 0.0, &p)) goto fail;
        pn->pop[p].params[qsnn_ct_param_index(m, "tau")] = DT / (1.0 - (double)net->layer[l].np.beta);
        pn->pop[p].params[qsnn_ct_param_index(m, "theta")] = net->layer[l].np.theta;
        pn->pop[p].params[qsnn_ct_param_index(m, "dt_in")] = DT;
        if (!(cnt.count[l] = qsnn_calloc(ctx, (size_t)net->layer[l].out, sizeof(int32_t)))) goto fail;
    }
    for (int l = 1; l < L; l++) {
        const qsnn_layer *Ly = &net->layer[l];
        qsnn_projection *J = &pn->proj[pn->n_proj++];
        memset(J, 0, sizeof *J);
        snprintf(J->name, sizeof J->name, "layer%d->layer%d:v", l - 1, l);
        J->pre = l - 1, J->post = l, J->target = 0, J->kind = QSNN_CONN_EXPLICIT;
        const int64_t ns = (int64_t)Ly->in * Ly->out;
        J->n_explicit = ns;
        J->ex_pre = qsnn_malloc(ctx, (size_t)ns * sizeof(int32_t));
        J->ex_post = qsnn_malloc(ctx, (size_t)ns * sizeof(int32_t));
        J->ex_w = qsnn_malloc(ctx, (size_t)ns * sizeof(float));
        if (!J->ex_pre || !J->ex_post || !J->ex_w) goto fail;
        int64_t e = 0;
        for (int i = 0; i < Ly->in; i++)
            for (int o = 0; o < Ly->out; o++, e++) {
                J->ex_pre[e] = i;
                J->ex_post[e] = o;
                J->ex_w[e] = Ly->Wq[(size_t)o * Ly->in + i];
            }
    }
    if (qsnn_popnet_build(pn)) goto fail;
    x = qsnn_malloc(ctx, (size_t)B * F * sizeof *x);
    const int C = net->layer[L - 1].out;
    dcount = qsnn_malloc(ctx, (size_t)C * sizeof *dcount);
    if (!x || !dcount) goto fail;
    long correct_d = 0, correct_c = 0, same_pred = 0;
    double sum_d[QSNN_MAX_LAYERS] = {0}, sum_c[QSNN_MAX_LAYERS] = {0}, absdiff[QSNN_MAX_LAYERS] = {0};
    long equal[QSNN_MAX_LAYERS] = {0}, total_n[QSNN_MAX_LAYERS] = {0};
    const double t0 = qsnn_now();
    for (int s0 = 0; s0 < N; s0 += B) {
        const int nb = N - s0 < B ? N - s0 : B;
        for (int b = 0; b < nb; b++)
            for (int f = 0; f < F; f++) x[(size_t)b * F + f] = (float)test->images[(size_t)(s0 + b) * F + f] / 255.0f;
        if (qsnn_forward_infer(net, ws, x, 1, nb)) goto fail;
        for (int b = 0; b < nb; b++) {
            qsnn_popnet_reset_state(pn);
            for (int l = 0; l < L; l++) {
                const qsnn_layer *Ly = &net->layer[l];
                double *I = pn->pop[l].y[1];
                for (int i = 0; i < Ly->out; i++)
                    I[i] = l == 0 ? (double)ws->buf[0].cur[(size_t)b * Ly->out + i] : (Ly->b ? (double)Ly->b[i] : 0.0);
                memset(cnt.count[l], 0, (size_t)Ly->out * sizeof(int32_t));
            }
            const qsnn_sim_sink sink = {&cnt, count_spikes, NULL, NULL};
            if (qsnn_popnet_run_cvode(pn, T * DT, opts, &sink, NULL)) goto fail;
            const int label = test->labels[s0 + b];
            for (int l = 0; l < L; l++) {
                const int n = net->layer[l].out;
                const float *S = ws->buf[l].S;
                for (int i = 0; i < n; i++) {
                    float c = 0.0f;
                    for (int t = 0; t < T; t++) c += S[((size_t)t * nb + b) * n + i];
                    if (l == L - 1) dcount[i] = c;
                    sum_d[l] += c;
                    sum_c[l] += cnt.count[l][i];
                    absdiff[l] += fabs(c - (double)cnt.count[l][i]);
                    equal[l] += (int)c == cnt.count[l][i];
                    total_n[l]++;
                }
            }
            const int pd = argmax_f(dcount, C), pc = argmax_i(cnt.count[L - 1], C);
            correct_d += pd == label;
            correct_c += pc == label;
            same_pred += pd == pc;
        }
    }
    const double secs = qsnn_now() - t0;
    printf("%s in continuous time (CVODE, rtol %g; tau = dt/(1-beta), T = %d steps), first %d test samples%s\n",
           model, opts->rtol, T, N, cfg.model.state_quant.bits ? " (its quantized membrane runs unquantized here)" : "");
    printf("  accuracy: discrete %.2f%%, continuous %.2f%%; same prediction %.2f%%\n", 100.0 * correct_d / N,
           100.0 * correct_c / N, 100.0 * same_pred / N);
    for (int l = 0; l < L; l++)
        printf("  layer%d: spikes per neuron per sample discrete %.3f, continuous %.3f; same count %.1f%% of "
               "neurons; mean |difference| %.3f\n",
               l, sum_d[l] / total_n[l], sum_c[l] / total_n[l], 100.0 * equal[l] / total_n[l], absdiff[l] / total_n[l]);
    printf("  %.1f ms per sample\n", 1e3 * secs / N);
    if (json)
        printf("{\"samples\": %d, \"acc_discrete\": %.4f, \"acc_continuous\": %.4f, \"same_prediction\": %.4f, "
               "\"s_per_sample\": %.5f}\n",
               N, (double)correct_d / N, (double)correct_c / N, (double)same_pred / N, secs / N);
    rc = 0;
    goto done;
fail:
    qsnn_cli_error("simulate", "%s", qsnn_last_error(ctx));
done:
    for (int l = 0; l < QSNN_MAX_LAYERS; l++) qsnn_free(ctx, cnt.count[l]);
    qsnn_free(ctx, x);
    qsnn_free(ctx, dcount);
    qsnn_popnet_destroy(&pn);
    qsnn_workspace_destroy(&ws);
    qsnn_dataset_destroy(ctx, &test);
    qsnn_net_destroy(&net);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
