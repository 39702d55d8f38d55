/* Shuffling, batch gathering and the input encoders. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/rng.h"
#include "datasets/batch.h"
#include "datasets/encoder.h"

static qsnn_ctx *ctx;

static void setup(void) { cr_assert_eq(qsnn_ctx_create(NULL, 1, 0, &ctx), QSNN_OK); }
static void teardown(void) { qsnn_ctx_destroy(&ctx); }

TestSuite(encode, .init = setup, .fini = teardown);

/* ---- shuffle ---- */

#define NP 1000

Test(encode, shuffle_is_permutation) {
    int64_t perm[NP];
    int seen[NP] = {0};
    qsnn_shuffle(42, 0, NP, perm);
    int fixed = 0;
    for (int k = 0; k < NP; k++) {
        cr_assert(perm[k] >= 0 && perm[k] < NP, "perm[%d] = %lld", k, (long long)perm[k]);
        seen[perm[k]]++;
        fixed += perm[k] == k;
    }
    for (int k = 0; k < NP; k++) cr_assert_eq(seen[k], 1, "%d appears %d times", k, seen[k]);
    cr_assert_lt(fixed, 10, "%d fixed points: not shuffled", fixed); /* ~1 expected */
}

Test(encode, shuffle_deterministic) {
    int64_t a[NP], b[NP], c[NP], d[NP];
    qsnn_shuffle(42, 3, NP, a);
    qsnn_shuffle(42, 3, NP, b);
    qsnn_shuffle(42, 4, NP, c);
    qsnn_shuffle(43, 3, NP, d);
    cr_assert_arr_eq(a, b, sizeof a);
    cr_assert_neq(memcmp(a, c, sizeof a), 0, "another epoch gives another order");
    cr_assert_neq(memcmp(a, d, sizeof a), 0, "another seed gives another order");
}

Test(encode, shuffle_tiny) {
    int64_t p[1] = {-1};
    qsnn_shuffle(1, 0, 0, p);
    cr_assert_eq(p[0], -1, "n = 0 writes nothing");
    qsnn_shuffle(1, 0, 1, p);
    cr_assert_eq(p[0], 0);
}

/* Every permutation of 3 items should come up over many epochs (no off-by-one in the swap range). */
Test(encode, shuffle_reaches_all_orders) {
    int hits[3][3] = {{0}};
    for (uint64_t e = 0; e < 3000; e++) {
        int64_t p[3];
        qsnn_shuffle(9, e, 3, p);
        for (int k = 0; k < 3; k++) hits[k][p[k]]++;
    }
    for (int k = 0; k < 3; k++)
        for (int v = 0; v < 3; v++) cr_assert(hits[k][v] > 900 && hits[k][v] < 1100, "pos %d val %d: %d", k, v, hits[k][v]);
}

/* ---- gather ---- */

Test(encode, gather_normalizes_exactly) {
    uint8_t images[3 * 4] = {0, 255, 128, 1, /* sample 0 */ 10, 20, 30, 40, /* 1 */ 255, 0, 64, 200};
    uint8_t labels[3] = {7, 2, 5};
    qsnn_dataset ds = {.n = 3, .rows = 2, .cols = 2, .features = 4, .n_classes = 8, .images = images, .labels = labels};
    const int64_t idx[2] = {2, 0};
    float x[8];
    int y[2];
    qsnn_batch_gather(&ds, idx, 2, x, y);
    cr_assert_eq(y[0], 5);
    cr_assert_eq(y[1], 7);
    cr_assert_eq(x[4], 0.0f);
    cr_assert_eq(x[5], 1.0f);
    cr_assert_eq(x[6], 0x1.010102p-1f, "128/255 rounded to float: %a", x[6]);
    cr_assert_eq(x[0], 1.0f);
    cr_assert_eq(x[1], 0.0f);
    for (int b = 0; b < 2; b++)
        for (int f = 0; f < 4; f++)
            cr_assert_eq(x[b * 4 + f], (float)images[idx[b] * 4 + f] / 255.0f);
    qsnn_batch_gather(&ds, idx, 2, x, NULL); /* labels optional */
}

/* Large enough to take the OpenMP path; the result must not depend on the thread count. */
Test(encode, gather_threads_agree) {
    enum { N = 300, F = 784, B = 256 };
    uint8_t *images = malloc(N * F), labels[N];
    for (int k = 0; k < N * F; k++) images[k] = (uint8_t)(k * 31 + k / 7);
    for (int k = 0; k < N; k++) labels[k] = (uint8_t)(k % 10);
    qsnn_dataset ds = {.n = N, .rows = 28, .cols = 28, .features = F, .n_classes = 10, .images = images, .labels = labels};
    int64_t idx[B];
    qsnn_shuffle(5, 0, B, idx);
    float *x1 = malloc(sizeof(float) * B * F), *x4 = malloc(sizeof(float) * B * F);
    int y1[B], y4[B];
    qsnn_ctx_set_threads(ctx, 1);
    qsnn_batch_gather(&ds, idx, B, x1, y1);
    qsnn_ctx_set_threads(ctx, 4);
    qsnn_batch_gather(&ds, idx, B, x4, y4);
    cr_assert_eq(memcmp(x1, x4, sizeof(float) * B * F), 0);
    cr_assert_arr_eq(y1, y4, sizeof y1);
    for (int b = 0; b < B; b++) cr_assert_eq(x1[b * F + 5], (float)images[idx[b] * F + 5] / 255.0f);
    free(images);
    free(x1);
    free(x4);
}

/* ---- encoders ---- */

Test(encode, registry) {
    const qsnn_encoder_ops *d = qsnn_encoder_find("direct"), *r = qsnn_encoder_find("rate");
    cr_assert_not_null(d);
    cr_assert_not_null(r);
    cr_assert_str_eq(d->name, "direct");
    cr_assert_str_eq(r->name, "rate");
    cr_assert_eq(d->is_static, 1);
    cr_assert_eq(r->is_static, 0);
    cr_assert_null(qsnn_encoder_find("latency-x"));
    cr_assert_null(qsnn_encoder_find(NULL));
    /* The names list and the registry agree. */
    char names[256];
    strcpy(names, qsnn_encoder_names());
    int count = 0;
    for (char *tok = strtok(names, ", "); tok; tok = strtok(NULL, ", "), count++)
        cr_assert_not_null(qsnn_encoder_find(tok), "listed name %s not registered", tok);
    cr_assert_eq(count, 3);
}

/* rows: sample b's features [t·W, (t+1)·W) at step t, laid out [T][B][W]. */
Test(encode, rows_feeds_one_slice_per_step) {
    const qsnn_encoder_ops *r = qsnn_encoder_find("rows");
    cr_assert_not_null(r);
    cr_assert(!r->is_static && r->split_steps);
    enum { B = 2, T = 3, W = 4, F = T * W };
    float x[B * F], out[B * F + 1];
    for (int i = 0; i < B * F; i++) x[i] = (float)i;
    out[B * F] = -7.0f;
    int64_t ids[B] = {0, 1};
    cr_assert_eq(qsnn_encoder_data_features(r, W, T), F);
    r->encode(x, B, F, T, 1, 0, ids, out);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            for (int w = 0; w < W; w++)
                cr_expect_eq(out[(t * B + b) * W + w], x[b * F + t * W + w], "step %d sample %d feature %d", t, b, w);
    cr_expect_eq(out[B * F], -7.0f, "writes B·F floats, no more");
    cr_expect_eq(qsnn_encoder_data_features(qsnn_encoder_find("direct"), W, T), W);
}

Test(encode, direct_copies) {
    const qsnn_encoder_ops *d = qsnn_encoder_find("direct");
    float x[6] = {0.0f, 0.25f, 1.0f, 0.5f, 0.125f, 0.75f}, out[7];
    out[6] = -7.0f; /* sentinel: a static encoder writes [B][F] only, never T copies */
    int64_t ids[2] = {0, 1};
    d->encode(x, 2, 3, 25, 1, 0, ids, out);
    cr_assert_arr_eq(out, x, sizeof x);
    cr_assert_eq(out[6], -7.0f);
}

/* The documented formula, written out independently of the encoder's grouping of words. */
static float rate_reference(float x, uint64_t seed, uint64_t epoch, int64_t s, int T, int t, int F, int f) {
    const uint64_t k = ((uint64_t)s * T + t) * F + f;
    uint32_t w[4];
    qsnn_philox(seed, QSNN_STREAM_ENCODE + epoch, k / 4, w);
    return qsnn_u32_to_unit(w[k % 4]) < x ? 1.0f : 0.0f;
}

Test(encode, rate_matches_reference) {
    enum { B = 3, F = 13, T = 5 }; /* F odd, so rows straddle groups of four words */
    const qsnn_encoder_ops *r = qsnn_encoder_find("rate");
    float x[B * F], out[T * B * F];
    for (int k = 0; k < B * F; k++) x[k] = (float)(k % 11) / 10.0f;
    const int64_t ids[B] = {17, 3, 1000003};
    r->encode(x, B, F, T, 1234, 2, ids, out);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            for (int f = 0; f < F; f++)
                cr_assert_eq(out[(t * B + b) * F + f], rate_reference(x[b * F + f], 1234, 2, ids[b], T, t, F, f),
                             "t %d b %d f %d", t, b, f);
}

Test(encode, rate_deterministic_and_binary) {
    enum { B = 8, F = 50, T = 20 };
    const qsnn_encoder_ops *r = qsnn_encoder_find("rate");
    static float x[B * F], a[T * B * F], b2[T * B * F], c[T * B * F], d[T * B * F];
    int64_t ids[B];
    for (int k = 0; k < B * F; k++) x[k] = (float)k / (B * F);
    for (int b = 0; b < B; b++) ids[b] = 100 + b;
    r->encode(x, B, F, T, 7, 1, ids, a);
    r->encode(x, B, F, T, 7, 1, ids, b2);
    r->encode(x, B, F, T, 7, 2, ids, c);
    r->encode(x, B, F, T, 8, 1, ids, d);
    cr_assert_eq(memcmp(a, b2, sizeof a), 0, "same (seed, epoch) gives the same spikes");
    cr_assert_neq(memcmp(a, c, sizeof a), 0, "another epoch gives other spikes");
    cr_assert_neq(memcmp(a, d, sizeof a), 0, "another seed gives other spikes");
    for (int k = 0; k < T * B * F; k++) cr_assert(a[k] == 0.0f || a[k] == 1.0f, "out[%d] = %g", k, a[k]);
}

Test(encode, rate_extremes) {
    enum { F = 1000, T = 10 };
    const qsnn_encoder_ops *r = qsnn_encoder_find("rate");
    static float x[2 * F], out[T * 2 * F];
    for (int f = 0; f < F; f++) x[f] = 0.0f, x[F + f] = 1.0f;
    const int64_t ids[2] = {0, 1};
    r->encode(x, 2, F, T, 3, 0, ids, out);
    for (int t = 0; t < T; t++)
        for (int f = 0; f < F; f++) {
            cr_assert_eq(out[(t * 2 + 0) * F + f], 0.0f, "x = 0 never spikes");
            cr_assert_eq(out[(t * 2 + 1) * F + f], 1.0f, "x = 1 always spikes");
        }
}

Test(encode, rate_mean) {
    enum { F = 1000, T = 100 };
    const qsnn_encoder_ops *r = qsnn_encoder_find("rate");
    static float x[F], out[T * F];
    for (int f = 0; f < F; f++) x[f] = 0.3f;
    const int64_t ids[1] = {5};
    r->encode(x, 1, F, T, 11, 0, ids, out);
    double sum = 0;
    for (int k = 0; k < T * F; k++) sum += out[k];
    const double mean = sum / (T * F);
    cr_assert(fabs(mean - 0.3) < 0.01, "mean %f over %d draws", mean, T * F);
}

/* A sample's spikes depend on its id, not on its row or its batch-mates. */
Test(encode, rate_independent_of_batch) {
    enum { F = 37, T = 6 };
    const qsnn_encoder_ops *r = qsnn_encoder_find("rate");
    float x4[4 * F], out4[T * 4 * F], out1[T * F];
    for (int k = 0; k < 4 * F; k++) x4[k] = (float)((k * 13) % 17) / 16.0f;
    const int64_t ids4[4] = {10, 11, 12, 13}, ids1[1] = {12};
    r->encode(x4, 4, F, T, 99, 4, ids4, out4);
    r->encode(x4 + 2 * F, 1, F, T, 99, 4, ids1, out1);
    for (int t = 0; t < T; t++)
        cr_assert_arr_eq(out1 + t * F, out4 + (t * 4 + 2) * F, F * sizeof(float), "step %d", t);
}

Test(encode, rate_threads_agree) {
    enum { B = 16, F = 784, T = 10 };
    const qsnn_encoder_ops *r = qsnn_encoder_find("rate");
    float *x = malloc(sizeof(float) * B * F), *a = malloc(sizeof(float) * T * B * F), *b = malloc(sizeof(float) * T * B * F);
    int64_t ids[B];
    for (int k = 0; k < B * F; k++) x[k] = (float)(k % 256) / 255.0f;
    for (int k = 0; k < B; k++) ids[k] = 59999 - 7 * k;
    qsnn_ctx_set_threads(ctx, 1);
    r->encode(x, B, F, T, 5, 0, ids, a);
    qsnn_ctx_set_threads(ctx, 4);
    r->encode(x, B, F, T, 5, 0, ids, b);
    cr_assert_eq(memcmp(a, b, sizeof(float) * T * B * F), 0);
    free(x);
    free(a);
    free(b);
}

/* The block Philox equals the scalar one word for word (any counter offset and length). */
Test(rng, philox_block_equals_scalar) {
    uint32_t block[4 * 200], one[4];
    const uint64_t starts[3] = {0, 12345, 0xFFFFFFFFull - 7}; /* the last crosses the 32-bit boundary */
    for (int s = 0; s < 3; s++)
        for (int n = 1; n <= 200; n += 37) {
            qsnn_philox_n(42, 7, starts[s], n, block);
            for (int i = 0; i < n; i++) {
                qsnn_philox(42, 7, starts[s] + (uint64_t)i, one);
                for (int w = 0; w < 4; w++)
                    cr_assert_eq(block[4 * i + w], one[w], "counter %llu word %d",
                                 (unsigned long long)(starts[s] + (uint64_t)i), w);
            }
        }
}
