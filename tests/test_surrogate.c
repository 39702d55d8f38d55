/* Surrogate derivatives (specs/neurons.md, "Surrogate derivatives"): every registered surrogate
 * against hand-computed values, symmetry, non-negativity, its integral against the closed form,
 * the LIF kernel's own switch (neurons/lif.c, surr) against the scalar reference, selection through
 * the network config and through model.surrogate with its default slope.
 *
 * The table below has one row per registered surrogate; registry_matches_table fails when a
 * surrogate is registered without a row here. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config.h"
#include "cli/config_keys.h"
#include "neurons/neuron.h"
#include "neurons/surrogate.h"
#include "sim/engine.h"
#include "test_util.h"

#define PI 3.14159265358979323846

/* Closed forms of the integral of σ'(x) over [-L, L] for slope s. */
static double mass_arctan(double L, double a) { return (2.0 / PI) * atan(0.5 * PI * a * L); }
static double mass_inv_square(double L, double k) { return 2.0 * L / (1.0 + k * L); } /* fast_sigmoid, superspike */
static double mass_sigmoid(double L, double k) { return tanh(0.5 * k * L); }          /* sig(kL) - sig(-kL) */
static double mass_triangular(double L, double w) { return L >= w ? 1.0 : 2.0 * L / w - (L * L) / (w * w); }
static double mass_one(double L, double unused) { return 2.0 * L; }
static double mass_exponential(double L, double tau) { return 1.0 - exp(-L / tau); }

typedef struct point {
    float x, slope;
    double want; /* hand-computed from the spec's formula */
} point;

typedef struct row {
    const char *name;
    qsnn_surrogate_id id;
    float default_slope;
    float other_slope;   /* a second slope for the generic checks, so a formula that ignores it shows */
    int unit_mass;       /* integrates to 1 over the real line (up to the tails beyond ±50 for arctan) */
    int exact_symmetry;  /* the float formula uses |x| or x², so σ'(x) == σ'(-x) bit for bit */
    double (*mass)(double L, double slope);
    point pts[10];       /* ends at slope 0 */
} row;

#define E1 0.36787944117144233   /* exp(-1) */
#define SIG1 0.19661193324148185 /* sig(1)(1 - sig(1)) = e / (1 + e)^2 */

static const row rows[] = {
    {"arctan", QSNN_SURR_ARCTAN, 2.0f, 4.0f, 1, 1, mass_arctan,
     {{0.0f, 2.0f, 1.0},                   /* α/2 */
      {0.5f, 2.0f, 0.288400439142001},     /* 1/(1 + (π/2)²) */
      {-0.5f, 2.0f, 0.288400439142001},
      {0.25f, 4.0f, 0.576800878284002},    /* 2/(1 + (π/2)²) */
      {2.0f, 1.0f, 0.04599983417518762}}}, /* 0.5/(1 + π²) */
    {"fast_sigmoid", QSNN_SURR_FAST_SIGMOID, 25.0f, 10.0f, 0, 1, mass_inv_square,
     {{0.0f, 25.0f, 1.0}, {0.04f, 25.0f, 0.25}, {-0.12f, 25.0f, 0.0625}, {0.3f, 10.0f, 0.0625}}},
    {"soft", QSNN_SURR_SOFT, 5.0f, 3.0f, 1, 0, mass_sigmoid,
     {{0.0f, 5.0f, 1.25}, {0.2f, 5.0f, 5.0 * SIG1}, {-0.2f, 5.0f, 5.0 * SIG1}, {0.0f, 3.0f, 0.75}}},
    {"sigmoid", QSNN_SURR_SIGMOID, 25.0f, 4.0f, 1, 1, mass_sigmoid,
     {{0.0f, 25.0f, 6.25}, /* k/4 */
      {0.04f, 25.0f, 25.0 * SIG1},
      {-0.04f, 25.0f, 25.0 * SIG1},
      {0.25f, 4.0f, 4.0 * SIG1},
      {0.0f, 4.0f, 1.0},
      {1.0f, 25.0f, 3.4719859662410e-10}}}, /* 25 e^-25 / (1 + e^-25)²: no cancellation to 0 */
    {"triangular", QSNN_SURR_TRIANGULAR, 1.0f, 0.5f, 1, 1, mass_triangular,
     {{0.0f, 1.0f, 1.0}, /* 1/w */
      {0.25f, 1.0f, 0.75},
      {-0.25f, 1.0f, 0.75},
      {1.0f, 1.0f, 0.0}, /* |x| >= w */
      {-1.5f, 1.0f, 0.0},
      {0.0f, 0.5f, 2.0},
      {0.25f, 0.5f, 1.0},
      {0.5f, 0.5f, 0.0},
      {-0.6f, 0.5f, 0.0}}},
    {"straight_through", QSNN_SURR_STRAIGHT_THROUGH, 1.0f, 7.0f, 0, 1, mass_one,
     {{0.0f, 1.0f, 1.0}, {3.0f, 1.0f, 1.0}, {-100.0f, 1.0f, 1.0}, {0.2f, 7.0f, 1.0}}},
    {"superspike", QSNN_SURR_SUPERSPIKE, 10.0f, 2.0f, 0, 1, mass_inv_square,
     {{0.0f, 10.0f, 1.0}, {0.1f, 10.0f, 0.25}, {-0.3f, 10.0f, 0.0625}, {1.0f, 2.0f, 1.0 / 9.0}}},
    {"exponential", QSNN_SURR_EXPONENTIAL, 0.5f, 2.0f, 1, 1, mass_exponential,
     {{0.0f, 0.5f, 1.0}, /* 1/(2τ) */
      {0.5f, 0.5f, E1},
      {-1.0f, 0.5f, 0.1353352832366127}, /* e^-2 */
      {0.0f, 2.0f, 0.25},
      {2.0f, 2.0f, 0.25 * E1}}},
};
enum { N_ROWS = sizeof rows / sizeof rows[0] };

static int close_to(double got, double want, double rel) { return fabs(got - want) <= rel * fabs(want) + 1e-12; }

/* Sample points: 0, ± a geometric ladder from 1e-4 to ~60, and the triangle's corners. */
static int sample_xs(float *xs) {
    int n = 0;
    xs[n++] = 0.0f;
    for (double x = 1e-4; x < 60.0; x *= 1.37) xs[n++] = (float)x;
    xs[n++] = 0.5f, xs[n++] = 1.0f, xs[n++] = 2.0f;
    return n;
}

Test(surrogate, registry_matches_table) {
    cr_assert_eq(N_ROWS, QSNN_SURR_COUNT, "a registered surrogate has no row in this test (or a row too many)");
    for (int i = 0; i < QSNN_SURR_COUNT; i++) {
        const qsnn_surrogate *s = qsnn_surrogate_get((qsnn_surrogate_id)i);
        cr_assert_not_null(s, "id %d", i);
        cr_expect_eq((int)s->id, i);
        const row *r = NULL;
        for (int j = 0; j < N_ROWS; j++)
            if (rows[j].id == s->id) r = &rows[j];
        cr_assert_not_null(r, "no row for %s", s->name);
        cr_expect_str_eq(s->name, r->name);
        cr_expect_eq(s->default_slope, r->default_slope, "%s: default slope %g, expected %g", s->name,
                     s->default_slope, r->default_slope);
        cr_expect_gt(s->default_slope, 0.0f, "%s: the network check needs a slope > 0", s->name);
        cr_expect_eq(qsnn_surrogate_find(r->name), s, "%s", r->name);
    }
    cr_expect_null(qsnn_surrogate_get(QSNN_SURR_COUNT));
    cr_expect_null(qsnn_surrogate_find("sigmoidal"));
}

Test(surrogate, names_list_is_the_registry) {
    char want[512] = "";
    for (int i = 0; i < QSNN_SURR_COUNT; i++) {
        if (i) strcat(want, ", ");
        strcat(want, qsnn_surrogate_get((qsnn_surrogate_id)i)->name);
    }
    cr_expect_str_eq(qsnn_surrogate_names(), want);
}

Test(surrogate, values_at_known_points) {
    for (int r = 0; r < N_ROWS; r++) {
        int n = 0;
        for (const point *p = rows[r].pts; p->slope != 0.0f; p++, n++) {
            const float got = qsnn_surrogate_grad(rows[r].id, p->x, p->slope);
            cr_expect(close_to(got, p->want, 1e-5), "%s(x = %g, slope %g) = %.9g, expected %.9g", rows[r].name, p->x,
                      p->slope, got, p->want);
        }
        cr_expect_geq(n, 4, "%s: too few points", rows[r].name);
    }
    cr_expect_eq(qsnn_surrogate_grad(QSNN_SURR_COUNT, 0.0f, 1.0f), 0.0f, "unknown id");
}

Test(surrogate, symmetric) {
    float xs[64];
    const int n = sample_xs(xs);
    for (int r = 0; r < N_ROWS; r++) {
        const float slopes[2] = {rows[r].default_slope, rows[r].other_slope};
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < n; i++) {
                const float a = qsnn_surrogate_grad(rows[r].id, xs[i], slopes[s]);
                const float b = qsnn_surrogate_grad(rows[r].id, -xs[i], slopes[s]);
                if (rows[r].exact_symmetry)
                    cr_expect_eq(a, b, "%s(±%g, slope %g): %.9g vs %.9g", rows[r].name, xs[i], slopes[s], a, b);
                else /* soft: 1 - sig(kx) loses digits for large kx */
                    cr_expect_leq(fabsf(a - b), 1e-6f + 1e-5f * fabsf(a), "%s(±%g, slope %g): %.9g vs %.9g",
                                  rows[r].name, xs[i], slopes[s], a, b);
            }
    }
}

Test(surrogate, non_negative_and_finite) {
    float xs[64];
    const int n = sample_xs(xs);
    for (int r = 0; r < N_ROWS; r++) {
        const float slopes[2] = {rows[r].default_slope, rows[r].other_slope};
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < n; i++)
                for (int sign = -1; sign <= 1; sign += 2) {
                    const float x = (float)sign * xs[i], v = qsnn_surrogate_grad(rows[r].id, x, slopes[s]);
                    cr_expect(v >= 0.0f && isfinite(v), "%s(%g, slope %g) = %g", rows[r].name, x, slopes[s], v);
                }
    }
}

/* Trapezoid rule over [-L, L] with nodes on 0, ±0.5, ±1 (the triangle's corners). */
static double integral(qsnn_surrogate_id id, float slope, double L) {
    const double h = 1e-4;
    const long m = lround(2.0 * L / h);
    double sum = 0.5 * (qsnn_surrogate_grad(id, (float)-L, slope) + qsnn_surrogate_grad(id, (float)L, slope));
    for (long i = 1; i < m; i++) sum += qsnn_surrogate_grad(id, (float)(-L + (double)i * h), slope);
    return sum * h;
}

Test(surrogate, integral_matches_closed_form) {
    const double L = 50.0;
    for (int r = 0; r < N_ROWS; r++) {
        const float slopes[2] = {rows[r].default_slope, rows[r].other_slope};
        for (int s = 0; s < 2; s++) {
            const double got = integral(rows[r].id, slopes[s], L), want = rows[r].mass(L, slopes[s]);
            cr_expect(close_to(got, want, 1e-4), "%s, slope %g: integral over [-50, 50] %.9g, closed form %.9g",
                      rows[r].name, slopes[s], got, want);
            if (rows[r].unit_mass)
                cr_expect_leq(fabs(got - 1.0), 1e-2, "%s, slope %g: integral %.9g, expected about 1", rows[r].name,
                              slopes[s], got);
        }
    }
}

/* U - θ values where every surrogate is informative (inside and outside the triangle, both signs). */
static const float dx[] = {-2.0f, -0.7f, -0.3f, -0.05f, -0.01f, 0.0f, 0.01f, 0.04f, 0.3f, 0.45f, 0.7f, 2.0f};
enum { NX = sizeof dx / sizeof dx[0] };

/* One step of the LIF kernel (the ops the engine calls): dL/dI = dL/dS σ'(U - θ), through the
 * kernel's own switch on the surrogate id. Reset none takes the generic path; reset subtract with
 * arctan takes the specialised one (with T = 1 neither carries anything back in time). */
Test(surrogate, lif_backward_uses_the_same_surrogate) {
    const float theta = 0.8f;
    float cur[NX], U[NX], S[NX], gS[NX], g[NX];
    for (int j = 0; j < NX; j++) cur[j] = theta + dx[j], gS[j] = 0.5f + 0.25f * (float)j * (j % 2 ? -1.0f : 1.0f);
    const qsnn_reset resets[2] = {QSNN_RESET_NONE, QSNN_RESET_SUBTRACT};
    for (int r = 0; r < N_ROWS; r++)
        for (int rs = 0; rs < 2; rs++)
            for (int s = 0; s < 2; s++)
                for (int summed = 0; summed < 2; summed++) {
                    const float slope = s ? rows[r].other_slope : rows[r].default_slope;
                    const qsnn_neuron_params p = {.beta = 0.9f, .theta = theta, .reset = resets[rs],
                                                  .surrogate = rows[r].id, .slope = slope};
                    qsnn_neuron_forward_all(&qsnn_neuron_lif, &p, NULL, 1, NX, cur, NX, U, NX, S, NX);
                    for (int j = 0; j < NX; j++) g[j] = NAN;
                    qsnn_neuron_backward_all(&qsnn_neuron_lif, &p, NULL, 1, NX, cur, NX, U, gS, NULL, NX, g, summed ? 0 : NX, NULL);
                    for (int j = 0; j < NX; j++) {
                        if (resets[rs] == QSNN_RESET_NONE || rows[r].id != QSNN_SURR_SOFT) /* soft: R[0] = sig(-kθ) */
                            cr_expect_eq(U[j], cur[j], "one step from rest: U = I");
                        const float want = gS[j] * qsnn_surrogate_grad(rows[r].id, U[j] - theta, slope);
                        /* bit for bit: the same inline formula on the same floats, never fused */
                        cr_expect_eq(g[j], want, "%s (reset %s, slope %g), U - θ = %g: dL/dI %.9g, expected %.9g",
                                  rows[r].name, qsnn_reset_name(resets[rs]), slope, U[j] - theta, g[j], want);
                    }
                }
}

/* The whole engine with the surrogate chosen in the network config: one dense layer of NX neurons fed
 * by a single input of 1, so U = W and dL/dW = dL/dS σ'(W - θ). Every layer carries the choice. */
Test(surrogate, network_selects_the_surrogate) {
    qsnn_ctx *ctx = test_ctx(1);
    for (int r = 0; r < N_ROWS; r++) {
        qsnn_net_cfg cfg;
        qsnn_net_cfg_default(&cfg);
        cfg.n_inputs = 1, cfg.n_layers = 1, cfg.sizes[0] = NX, cfg.bias = 0;
        cfg.neuron_params.reset = QSNN_RESET_NONE;
        cfg.neuron_params.surrogate = rows[r].id;
        cfg.neuron_params.slope = rows[r].other_slope;
        const float theta = cfg.neuron_params.theta;
        qsnn_net *net = NULL;
        qsnn_workspace *ws = NULL;
        cr_assert_eq(qsnn_net_create(ctx, &cfg, &net), QSNN_OK, "%s: %s", rows[r].name, qsnn_last_error(ctx));
        cr_expect_eq(net->layer[0].np.surrogate, rows[r].id);
        cr_expect_eq(net->layer[0].np.slope, rows[r].other_slope);
        for (int j = 0; j < NX; j++) net->layer[0].W[j] = theta + dx[j];
        cr_assert_eq(qsnn_net_prepare(net), QSNN_OK);
        cr_assert_eq(qsnn_workspace_create(net, 1, 1, 1, &ws), QSNN_OK);
        const float x[1] = {1.0f};
        float gS[NX];
        for (int j = 0; j < NX; j++) gS[j] = 1.0f - 0.125f * (float)j;
        cr_assert_eq(qsnn_forward(net, ws, x, 1, 1), QSNN_OK);
        cr_assert_eq(qsnn_backward(net, ws, gS, NULL), QSNN_OK);
        for (int j = 0; j < NX; j++) {
            const float u = ws->buf[0].U[j];
            cr_expect_eq(u, net->layer[0].W[j]);
            const float want = gS[j] * qsnn_surrogate_grad(rows[r].id, u - theta, rows[r].other_slope);
            cr_expect(close_to(net->layer[0].gW[j], want, 1e-5), "%s, U - θ = %g: dL/dW %.9g, expected %.9g",
                      rows[r].name, u - theta, net->layer[0].gW[j], want);
        }
        qsnn_workspace_destroy(&ws);
        qsnn_net_destroy(&net);
    }
    qsnn_ctx_destroy(&ctx);
}

/* model.layers picks a surrogate per layer: the layer's kernels read its own choice, the others keep
 * model.surrogate; slope= overrides the chosen surrogate's default. */
Test(surrogate, per_layer_selection) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_config c;
    qsnn_config_default(&c);
    cr_assert_eq(qsnn_config_set(ctx, &c, "model.layers=[dense size=8 surrogate=fast_sigmoid, dense size=6 "
                                          "surrogate=exponential slope=0.25, dense size=4]"),
                 QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_config_resolve(&c);
    cr_assert_eq(qsnn_config_check(ctx, &c), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_net *net = NULL;
    cr_assert_eq(qsnn_net_create(ctx, &c.model, &net), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_expect_eq(net->layer[0].np.surrogate, QSNN_SURR_FAST_SIGMOID);
    cr_expect_eq(net->layer[0].np.slope, 25.0f, "the surrogate's own default slope");
    cr_expect_eq(net->layer[1].np.surrogate, QSNN_SURR_EXPONENTIAL);
    cr_expect_eq(net->layer[1].np.slope, 0.25f);
    cr_expect_eq(net->layer[2].np.surrogate, QSNN_SURR_ARCTAN, "no option: model.surrogate");
    cr_expect_eq(net->layer[3].np.surrogate, QSNN_SURR_ARCTAN, "the output layer: model.surrogate");
    cr_expect_eq(net->layer[3].np.slope, 2.0f);
    qsnn_net_destroy(&net);
    cr_expect_neq(qsnn_config_set(ctx, &c, "model.layers=[dense size=8 surrogate=tanh]"), QSNN_OK);
    cr_expect(strstr(qsnn_last_error(ctx), "surrogate=tanh: unknown (known: arctan") != NULL, "%s",
              qsnn_last_error(ctx));
    qsnn_ctx_destroy(&ctx);
}

/* ---- configuration -------------------------------------------------------------------------- */

Test(surrogate, config_superspike_default_slope) {
    qsnn_ctx *ctx = test_ctx(1);
    qsnn_config cfg;
    qsnn_config_default(&cfg);
    cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.surrogate=superspike"), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_expect_eq(cfg.model.neuron_params.surrogate, QSNN_SURR_SUPERSPIKE);
    cr_expect_eq(cfg.model.neuron_params.slope, 0.0f, "not resolved before qsnn_config_resolve");
    qsnn_config_resolve(&cfg);
    cr_expect_eq(cfg.model.neuron_params.slope, 10.0f, "superspike's β defaults to 10");
    cr_expect_eq(qsnn_config_check(ctx, &cfg), QSNN_OK, "%s", qsnn_last_error(ctx));
    qsnn_ctx_destroy(&ctx);
}

Test(surrogate, config_accepts_every_surrogate) {
    qsnn_ctx *ctx = test_ctx(1);
    const qsnn_config_key *k = qsnn_config_key_find("model.surrogate");
    cr_assert_not_null(k);
    cr_expect_eq(qsnn_config_key_n_names(k), QSNN_SURR_COUNT);
    for (int r = 0; r < N_ROWS; r++) {
        qsnn_config cfg;
        qsnn_config_default(&cfg);
        char set[64];
        snprintf(set, sizeof set, "model.surrogate=%s", rows[r].name);
        cr_assert_eq(qsnn_config_set(ctx, &cfg, set), QSNN_OK, "%s: %s", set, qsnn_last_error(ctx));
        cr_expect_eq(cfg.model.neuron_params.surrogate, rows[r].id, "%s", set);
        qsnn_config resolved = cfg;
        qsnn_config_resolve(&resolved);
        cr_expect_eq(resolved.model.neuron_params.slope, rows[r].default_slope, "%s: slope 0 resolves to %g, got %g",
                     set, rows[r].default_slope, resolved.model.neuron_params.slope);
        cr_expect_eq(qsnn_config_check(ctx, &resolved), QSNN_OK, "%s: %s", set, qsnn_last_error(ctx));
        /* an explicit slope is kept */
        cr_assert_eq(qsnn_config_set(ctx, &cfg, "model.surrogate_slope=0.75"), QSNN_OK, "%s", qsnn_last_error(ctx));
        qsnn_config_resolve(&cfg);
        cr_expect_eq(cfg.model.neuron_params.slope, 0.75f, "%s", rows[r].name);
    }
    qsnn_config cfg;
    qsnn_config_default(&cfg);
    cr_expect_neq(qsnn_config_set(ctx, &cfg, "model.surrogate=super_spike"), QSNN_OK);
    cr_expect(strstr(qsnn_last_error(ctx), "exponential") != NULL, "the message lists the names: %s",
              qsnn_last_error(ctx));
    qsnn_ctx_destroy(&ctx);
}

/* Whether name occurs in [s, end) as a whole word ("sigmoid" is not found in "fast_sigmoid"). */
static int has_word(const char *s, const char *end, const char *name) {
    const size_t n = strlen(name);
    for (const char *at = strstr(s, name); at && at + n <= end; at = strstr(at + 1, name)) {
        const int before = at > s && (isalnum((unsigned char)at[-1]) || at[-1] == '_');
        const int after = isalnum((unsigned char)at[n]) || at[n] == '_';
        if (!before && !after) return 1;
    }
    return 0;
}

Test(surrogate, config_keys_lists_every_surrogate) {
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    qsnn_config_print_keys(f);
    const long len = ftell(f);
    cr_assert_gt(len, 0);
    char *text = calloc((size_t)len + 1, 1);
    rewind(f);
    cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    const char *line = strstr(text, "model.surrogate ");
    cr_assert_not_null(line, "no model.surrogate line in:\n%s", text);
    const char *end = strchr(line, '\n');
    for (int r = 0; r < N_ROWS; r++) {
        cr_expect(has_word(line, end, rows[r].name), "qsnn config --keys does not list %s for model.surrogate:\n%.*s",
                  rows[r].name, (int)(end - line), line);
    }
    free(text);
}
