#include "sim/engine.h"
#include "sim/spike_scan.h"

#include "sim/gemm.h"
#include "core/rng.h"
#include <math.h>
#include <string.h>

#define BLOCK QSNN_NEURON_BLOCK

static size_t n_blocks(size_t n) { return (n + BLOCK - 1) / BLOCK; }

/* pn_blk per block: QSNN_PN_COUNT parameter arrays, the gains, QSNN_PN_COUNT gradient arrays. */
#define PN_GAIN QSNN_PN_COUNT
#define PN_GRAD (QSNN_PN_COUNT + 1)
#define PN_ARRAYS (2 * QSNN_PN_COUNT + 1)

/* Points io at block k's per-neuron arrays; fill: copies them from the layer's first (the batch repeats the
 * neurons; recurrent layers call once per step and fill only on the first). */
static void per_neuron_io(const qsnn_layer *L, qsnn_workspace *ws, long k, size_t j0, qsnn_neuron_io *io, int grads,
                          int fill) {
    if (!L->pn[QSNN_PN_BETA] && !L->pn[QSNN_PN_THETA] && !L->pn[QSNN_PN_ALPHA]) return;
    float *base = ws->pn_blk + (size_t)k * PN_ARRAYS * BLOCK;
    const size_t out = (size_t)L->out;
    for (int a = 0; a <= PN_GAIN; a++) {
        const float *src = a == PN_GAIN ? L->q_gain : L->pn[a];
        if (!src) continue;
        float *dst = base + (size_t)a * BLOCK;
        size_t o = j0 % out;
        for (int j = 0; fill && j < io->n; j++) {
            dst[j] = src[o];
            if (++o == out) o = 0;
        }
        if (a == PN_GAIN) io->qgain = dst;
        else io->pn[a] = dst;
    }
    if (grads)
        for (int a = 0; a < QSNN_PN_COUNT; a++)
            if (L->pn[a]) io->gpn[a] = base + (size_t)(PN_GRAD + a) * BLOCK;
}

/* Zeroes the per-element gradient arrays of every block before a layer's backward. */
static void per_neuron_grad_zero(const qsnn_layer *L, qsnn_workspace *ws, long nb) {
    for (long k = 0; k < nb; k++)
        for (int a = 0; a < QSNN_PN_COUNT; a++)
            if (L->pn[a]) memset(ws->pn_blk + ((size_t)k * PN_ARRAYS + PN_GRAD + a) * BLOCK, 0, BLOCK * sizeof(float));
}

/* Per-neuron gradients: each neuron's elements summed over the batch in block order (the same sum for
 * any thread count). */
static void per_neuron_grad_reduce(qsnn_layer *L, qsnn_workspace *ws, size_t n) {
    const size_t out = (size_t)L->out;
    for (int a = 0; a < QSNN_PN_COUNT; a++) {
        if (!L->pn[a]) continue;
        float *g = L->g_pn[a];
        memset(g, 0, out * sizeof(float));
        size_t o = 0;
        for (size_t e = 0; e < n; e++) {
            g[o] += ws->pn_blk[((e / BLOCK) * PN_ARRAYS + PN_GRAD + a) * BLOCK + e % BLOCK];
            if (++o == out) o = 0;
        }
    }
}

/* Rows per convolution chunk: as many as the im2row budget allows (at least 1). */
static int conv_chunk(const qsnn_conv_shape *s) {
    const size_t per = qsnn_conv_col_floats(s, 1);
    const size_t r = per ? QSNN_CONV_COL_BUDGET / per : 1;
    return r < 1 ? 1 : (r > 1 << 20 ? 1 << 20 : (int)r);
}

static size_t conv_y_floats(const qsnn_conv_shape *s) { return (size_t)s->out_h * s->out_w * s->out_c; }

/* Row stride of the transposed weights and partials: whole 16-float chunks, so the inner loops
 * have a constant trip count and vectorize. */
static int sparse_pad(int out) { return (out + 15) & ~15; }

/* Whether layer l reads binary spikes (0 or 1): the spike-driven kernels rely on it. */
static int binary_input(const qsnn_net *net, int l) {
    return l > 0 && net->layer[l - 1].ops->spiking && net->layer[l - 1].dropout == 0.0f &&
           net->layer[l - 1].np.surrogate != QSNN_SURR_SOFT;
}

/* Convolutions over spikes add the weights of the inputs that fired (sim/conv_spikes.c). */
static int conv_spiking(const qsnn_net *net, int l) {
    return net->layer[l].kind == QSNN_LAYER_CONV && binary_input(net, l);
}

static int use_sparse(const qsnn_net *net, int l) {
    return binary_input(net, l) && net->layer[l].kind == QSNN_LAYER_DENSE &&
           net->layer[l].out <= QSNN_SPARSE_MAX_OUT && net->layer[l].in <= QSNN_SPARSE_MAX_IN;
}

qsnn_status qsnn_workspace_create(qsnn_net *net, int max_B, int T, int train, qsnn_workspace **out) {
    qsnn_ctx *ctx = net->ctx;
    *out = NULL;
    if (max_B < 1) return qsnn_fail(ctx, QSNN_ERR_ARG, "workspace: batch size %d must be >= 1", max_B);
    if (T < 1) return qsnn_fail(ctx, QSNN_ERR_ARG, "workspace: %d time steps (must be >= 1)", T);
    /* Sizing pass: everything the time loop needs comes from one arena. */
    size_t bytes = 0, max_n = 0;
    for (int l = 0; l < net->n_layers; l++) {
        size_t n = (size_t)max_B * net->layer[l].out;
        size_t seq = qsnn_arena_round((size_t)T * n * sizeof(float));
        const int ns = net->layer[l].ops->n_states;
        bytes += 2 * seq + qsnn_arena_round((size_t)ns * T * n * sizeof(float)) + (train ? 2 * seq : 0);
        if (n > max_n) max_n = n;
        if (use_sparse(net, l)) {
            const size_t w = (size_t)net->layer[l].in * sparse_pad(net->layer[l].out) * sizeof(float);
            bytes += qsnn_arena_round(w) + (train ? qsnn_arena_round(QSNN_SPARSE_CHUNKS * w) : 0);
        }
    }
    const size_t xq_bytes = (size_t)T * max_B * net->cfg.n_inputs * sizeof(float);
    if (qsnn_net_input_bits(&net->cfg)) bytes += qsnn_arena_round(xq_bytes);
    bytes += qsnn_arena_round(n_blocks(max_n) * sizeof(qsnn_neuron_pgrad));
    bytes += qsnn_arena_round(n_blocks(max_n) * sizeof(double));
    size_t col = 0, gwc = 0;
    for (int l = 0; l < net->n_layers; l++) {
        const qsnn_layer *L = &net->layer[l];
        const size_t rows = (size_t)T * max_B;
        if (L->dropout > 0.0f && train) bytes += qsnn_arena_round((size_t)max_B * L->out * sizeof(float));
        if (L->kind != QSNN_LAYER_CONV) continue;
        const int ch = conv_chunk(&L->conv);
        const size_t c = qsnn_conv_col_floats(&L->conv, (size_t)ch < rows ? ch : (int)rows);
        if (c > col) col = c;
        if (L->nw + L->w_rows > gwc) gwc = L->nw + L->w_rows;
        if (conv_spiking(net, l))
            bytes += qsnn_arena_round(qsnn_conv_spikes_wt_floats(&L->conv) * sizeof(float)) +
                     (train ? qsnn_arena_round(qsnn_conv_spikes_part_floats(&L->conv) * sizeof(float)) : 0);
        if (L->conv.pool) {
            bytes += qsnn_arena_round(rows * conv_y_floats(&L->conv) * sizeof(float));
            if (L->conv.pool == QSNN_POOL_MAX) bytes += qsnn_arena_round(rows * L->out);
        }
    }
    bytes += qsnn_arena_round(col * sizeof(float)) + (train ? qsnn_arena_round(gwc * sizeof(float)) : 0);
    const size_t carry_bytes = n_blocks(max_n) * QSNN_NEURON_MAX_STATES * BLOCK * sizeof(float);
    if (train) bytes += qsnn_arena_round(carry_bytes);
    const size_t pn_bytes = net->cfg.per_neuron ? n_blocks(max_n) * PN_ARRAYS * BLOCK * sizeof(float) : 0;
    bytes += qsnn_arena_round(pn_bytes);
    qsnn_workspace *ws = qsnn_calloc(ctx, 1, sizeof *ws);
    if (!ws) return QSNN_ERR_NOMEM;
    qsnn_status st = qsnn_arena_create(ctx, bytes, &ws->arena);
    if (st) {
        qsnn_free(ctx, ws);
        return st;
    }
    ws->max_B = max_B;
    ws->T = T;
    ws->train = train;
    for (int l = 0; l < net->n_layers; l++) {
        size_t seq = (size_t)T * max_B * net->layer[l].out * sizeof(float);
        qsnn_layer_buf *b = &ws->buf[l];
        b->cur = qsnn_arena_alloc(ws->arena, seq);
        b->U = qsnn_arena_alloc(ws->arena, (size_t)net->layer[l].ops->n_states * seq);
        b->S = qsnn_arena_alloc(ws->arena, seq);
        if (train) {
            b->gS = qsnn_arena_alloc(ws->arena, seq);
            b->gcur = qsnn_arena_alloc(ws->arena, seq);
        }
        if (use_sparse(net, l)) {
            const size_t w = (size_t)net->layer[l].in * sparse_pad(net->layer[l].out) * sizeof(float);
            b->wt = qsnn_arena_alloc(ws->arena, w);
            if (train) b->gw_part = qsnn_arena_alloc(ws->arena, QSNN_SPARSE_CHUNKS * w);
        }
    }
    if (qsnn_net_input_bits(&net->cfg)) ws->xq = qsnn_arena_alloc(ws->arena, xq_bytes);
    ws->n_pg = n_blocks(max_n);
    ws->pg = qsnn_arena_alloc(ws->arena, ws->n_pg * sizeof(qsnn_neuron_pgrad));
    ws->spikes = qsnn_arena_alloc(ws->arena, ws->n_pg * sizeof(double));
    if (train) ws->carry = qsnn_arena_alloc(ws->arena, carry_bytes);
    if (pn_bytes) ws->pn_blk = qsnn_arena_alloc(ws->arena, pn_bytes);
    if (col) ws->col = qsnn_arena_alloc(ws->arena, col * sizeof(float));
    if (gwc && train) ws->gw_conv = qsnn_arena_alloc(ws->arena, gwc * sizeof(float));
    for (int l = 0; l < net->n_layers; l++) {
        const qsnn_layer *L = &net->layer[l];
        qsnn_layer_buf *b = &ws->buf[l];
        const size_t rows = (size_t)T * max_B;
        if (L->dropout > 0.0f && train) b->drop = qsnn_arena_alloc(ws->arena, (size_t)max_B * L->out * sizeof(float));
        if (conv_spiking(net, l)) {
            b->wt = qsnn_arena_alloc(ws->arena, qsnn_conv_spikes_wt_floats(&L->conv) * sizeof(float));
            if (train) b->gw_part = qsnn_arena_alloc(ws->arena, qsnn_conv_spikes_part_floats(&L->conv) * sizeof(float));
        }
        if (L->kind == QSNN_LAYER_CONV && L->conv.pool) {
            b->conv_y = qsnn_arena_alloc(ws->arena, rows * conv_y_floats(&L->conv) * sizeof(float));
            if (L->conv.pool == QSNN_POOL_MAX) b->argmax = qsnn_arena_alloc(ws->arena, rows * L->out);
        }
    }
    *out = ws;
    return QSNN_OK;
}

void qsnn_workspace_dense_only(qsnn_workspace *ws) {
    for (int l = 0; l < QSNN_MAX_LAYERS; l++) ws->buf[l].wt = ws->buf[l].gw_part = NULL;
}

void qsnn_workspace_destroy(qsnn_workspace **pws) {
    if (!pws || !*pws) return;
    qsnn_ctx *ctx = (*pws)->arena->ctx;
    qsnn_arena_destroy(&(*pws)->arena);
    qsnn_free(ctx, *pws);
    *pws = NULL;
}

/* cur[rows][out] = X[rows][in] · Wᵀ + b */
static void dense_forward(const qsnn_layer *L, const float *X, int rows, float *cur) {
    float beta = 0.0f;
    if (L->b) {
        #pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) memcpy(cur + (size_t)r * L->out, L->bias_fwd, (size_t)L->out * sizeof(float));
        beta = 1.0f;
    }
    qsnn_sgemm(CblasNoTrans, CblasTrans, rows, L->out, L->in, 1.0f, X, L->in, L->Wq, L->in, beta, cur,
                L->out);
}

/* Spike-driven twin of dense_forward for binary spikes (hard threshold; the engine uses it only
 * then): adds the weight rows of the inputs that fired. Equals dense_forward up to summation
 * order; adding w equals adding 1·w bit for bit. */
static void sparse_forward(const qsnn_layer *L, const float *X, int rows, float *wt, float *cur) {
    const int in = L->in, out = L->out, op = sparse_pad(out), nc = op / 16;
    for (int j = 0; j < in; j++)
        for (int o = 0; o < op; o++) wt[(size_t)j * op + o] = o < out ? L->Wq[(size_t)o * in + j] : 0.0f;
    #pragma omp parallel
    {
        int idx[QSNN_SPARSE_MAX_IN];
        #pragma omp for schedule(static)
        for (int r = 0; r < rows; r++) {
            float acc[QSNN_SPARSE_MAX_OUT];
            for (int o = 0; o < op; o++) acc[o] = (L->b && o < out) ? L->bias_fwd[o] : 0.0f;
            const float *x = X + (size_t)r * in;
            const int nz = qsnn_nonzero_indices(x, in, idx);
            for (int k = 0; k < nz; k++) {
                const float *w = wt + (size_t)idx[k] * op;
                for (int c = 0; c < nc; c++)
                    for (int o = 0; o < 16; o++) acc[16 * c + o] += w[16 * c + o];
            }
            for (int o = 0; o < out; o++) cur[(size_t)r * out + o] = acc[o];
        }
    }
}

/* gW[out][in] = gcurᵀ X over the rows, visiting only the inputs that fired; per-chunk partials
 * summed in chunk order. */
static void sparse_weight_grad(const qsnn_layer *L, const float *X, const float *gcur, int rows, float *part,
                               float *gW) {
    const int in = L->in, out = L->out, op = sparse_pad(out), nc = op / 16;
    const size_t w = (size_t)in * op;
    #pragma omp parallel
    {
        int idx[QSNN_SPARSE_MAX_IN];
        #pragma omp for schedule(static)
        for (int c = 0; c < QSNN_SPARSE_CHUNKS; c++) {
            float *p = part + (size_t)c * w;
            for (size_t i = 0; i < w; i++) p[i] = 0.0f;
            const int r0 = (int)((long)rows * c / QSNN_SPARSE_CHUNKS);
            const int r1 = (int)((long)rows * (c + 1) / QSNN_SPARSE_CHUNKS);
            for (int r = r0; r < r1; r++) {
                float g[QSNN_SPARSE_MAX_OUT];
                for (int o = 0; o < op; o++) g[o] = o < out ? gcur[(size_t)r * out + o] : 0.0f;
                const int nz = qsnn_nonzero_indices(X + (size_t)r * in, in, idx);
                for (int k = 0; k < nz; k++) {
                    float *pj = p + (size_t)idx[k] * op;
                    for (int q = 0; q < nc; q++)
                        for (int o = 0; o < 16; o++) pj[16 * q + o] += g[16 * q + o];
                }
            }
        }
    }
    #pragma omp parallel for schedule(static)
    for (int j = 0; j < in; j++)
        for (int o = 0; o < out; o++) {
            float acc = 0.0f;
            for (int c = 0; c < QSNN_SPARSE_CHUNKS; c++) acc += part[(size_t)c * w + (size_t)j * op + o];
            gW[(size_t)o * in + j] = acc;
        }
}

void qsnn_input_quant(int bits, const float *x, float *xq, size_t n) {
    const float up = ldexpf(1.0f, bits), down = ldexpf(1.0f, -bits);
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float k = nearbyintf(x[i] * up);
        xq[i] = (k < 0.0f ? 0.0f : (k > up ? up : k)) * down;
    }
}

void qsnn_current_quant(float step, int kmax, float *cur, size_t n) {
    const float hi = (float)kmax, inv = 1.0f / step;
    const int exact_inv = inv * step == 1.0f; /* a power of two: multiply instead of divide, same result */
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float k = nearbyintf(exact_inv ? cur[i] * inv : cur[i] / step);
        k = k < -hi ? -hi : (k > hi ? hi : k);
        cur[i] = k * step;
    }
}

/* cur = pool(conv(X) + b) over chunks of rows. */
static void conv_forward(const qsnn_layer *L, qsnn_layer_buf *b, float *col, const float *X, int rows) {
    const qsnn_conv_shape *s = &L->conv;
    const int ch = conv_chunk(s);
    const size_t in = (size_t)L->in, ny = conv_y_floats(s);
    float *y = s->pool ? b->conv_y : b->cur;
    if (b->wt) { /* binary input */
        qsnn_conv_forward_spikes(s, L->Wq, L->bias_fwd, X, rows, b->wt, y);
    } else {
        for (int r0 = 0; r0 < rows; r0 += ch) {
            const int nr = rows - r0 < ch ? rows - r0 : ch;
            qsnn_conv_forward(s, L->Wq, L->bias_fwd, X + (size_t)r0 * in, nr, col, y + (size_t)r0 * ny);
        }
    }
    if (s->pool) qsnn_pool_forward(s, b->conv_y, rows, b->cur, b->argmax);
}

/* Backward of conv_forward from gcur: gW, gb and (gX not NULL) the input's gradient. */
static void conv_backward(qsnn_layer *L, qsnn_layer_buf *b, float *col, float *gw_chunk, const float *X,
                          int rows, float *gX) {
    const qsnn_conv_shape *s = &L->conv;
    const int ch = conv_chunk(s);
    const size_t in = (size_t)L->in, ny = conv_y_floats(s);
    const float *gy = b->gcur;
    if (s->pool) {
        qsnn_pool_backward(s, b->gcur, b->argmax, rows, b->conv_y); /* the conv output is not needed any more */
        gy = b->conv_y;
    }
    if (b->gw_part) { /* binary input: gW visits the inputs that fired; gX stays a product */
        qsnn_conv_weight_grad_spikes(s, X, gy, rows, b->gw_part, L->gW, L->gb);
        for (int r0 = 0; gX && r0 < rows; r0 += ch) {
            const int nr = rows - r0 < ch ? rows - r0 : ch;
            qsnn_conv_backward(s, L->Wq, X + (size_t)r0 * in, gy + (size_t)r0 * ny, nr, col, NULL, NULL,
                               gX + (size_t)r0 * in);
        }
        return;
    }
    for (int r0 = 0; r0 < rows; r0 += ch) {
        const int nr = rows - r0 < ch ? rows - r0 : ch;
        float *gw = r0 ? gw_chunk : L->gW, *gbias = L->gb ? (r0 ? gw_chunk + L->nw : L->gb) : NULL;
        qsnn_conv_backward(s, L->Wq, X + (size_t)r0 * in, gy + (size_t)r0 * ny, nr, col, gw, gbias,
                           gX ? gX + (size_t)r0 * in : NULL);
        if (r0) { /* chunks are summed in order: the same result for any thread count */
            for (size_t i = 0; i < L->nw; i++) L->gW[i] += gw_chunk[i];
            if (L->gb)
                for (int o = 0; o < L->w_rows; o++) L->gb[o] += gw_chunk[L->nw + o];
        }
    }
}

/* Dropout with the mask fixed over the steps: neuron j of sample b is silenced in every step with
 * probability p (survivors scaled by 1/(1-p)); the uniform comes from (seed, layer, b, j). The mask
 * multiplies the layer's output spikes, which the next layer reads. */
static void apply_dropout(const qsnn_layer *L, qsnn_layer_buf *b, uint64_t seed, int l, int T, int B) {
    const size_t n = (size_t)B * L->out;
    const float keep = 1.0f / (1.0f - L->dropout);
    qsnn_rng r;
    qsnn_rng_init(&r, seed, QSNN_STREAM_DROPOUT + (uint64_t)l);
    for (size_t i = 0; i < n; i++) b->drop[i] = qsnn_rng_uniform(&r) < L->dropout ? 0.0f : keep;
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++)
        for (size_t i = 0; i < n; i++) b->S[(size_t)t * n + i] *= b->drop[i];
}

/* The gradient through a dropout mask: dL/dS = dL/d(mask·S) · mask. */
static void mask_grad(const qsnn_layer *L, qsnn_layer_buf *b, const qsnn_workspace *ws, int T, int B) {
    if (!b->drop || !ws->dropout_seed) return;
    const size_t n = (size_t)B * L->out;
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++)
        for (size_t i = 0; i < n; i++) b->gS[(size_t)t * n + i] *= b->drop[i];
}

/* cur[B][N] += V S_prev: the recurrent input of one step. */
static void recurrent_input(const qsnn_layer *L, const float *S_prev, int B, float *cur) {
    const int N = L->out;
    if (L->rec == QSNN_REC_FULL) {
        qsnn_sgemm(CblasNoTrans, CblasTrans, B, N, N, 1.0f, S_prev, N, L->Vq, N, 1.0f, cur, N);
        return;
    }
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < B; r++)
        for (int j = 0; j < N; j++) cur[(size_t)r * N + j] += L->Vq[j] * S_prev[(size_t)r * N + j];
}

/* The recurrent layer's share of backward after step t: gS[t-1] += dL/dcur[t] · V. */
static void recurrent_back(const qsnn_layer *L, const float *gcur_t, int B, float *gS_prev) {
    const int N = L->out;
    if (L->rec == QSNN_REC_FULL) {
        qsnn_sgemm(CblasNoTrans, CblasNoTrans, B, N, N, 1.0f, gcur_t, N, L->Vq, N, 1.0f, gS_prev, N);
        return;
    }
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < B; r++)
        for (int j = 0; j < N; j++) gS_prev[(size_t)r * N + j] += L->Vq[j] * gcur_t[(size_t)r * N + j];
}

/* dL/dV = Σ_{t ≥ 1} dL/dcur[t]ᵀ S[t-1] (one-to-one: the diagonal), over the batch. */
static void recurrent_weight_grad(qsnn_layer *L, const float *gcur, const float *S, int T, int B) {
    const int N = L->out;
    const size_t n = (size_t)B * N;
    if (T < 2) {
        memset(L->gV, 0, qsnn_layer_nv(L) * sizeof(float));
        return;
    }
    if (L->rec == QSNN_REC_FULL) {
        qsnn_sgemm(CblasTrans, CblasNoTrans, N, N, (T - 1) * B, 1.0f, gcur + n, N, S, N, 0.0f, L->gV, N);
        return;
    }
    #pragma omp parallel for schedule(static)
    for (int j = 0; j < N; j++) {
        float acc = 0.0f;
        for (size_t r = 0; r < (size_t)(T - 1) * B; r++) acc += gcur[n + r * N + j] * S[r * N + j];
        L->gV[j] = acc;
    }
}

static qsnn_status forward(qsnn_net *net, qsnn_workspace *ws, const float *x, int x_static, int B, int keep) {
    if (B < 1 || B > ws->max_B)
        return qsnn_fail(net->ctx, QSNN_ERR_ARG, "forward: batch %d outside the workspace's 1..%d", B, ws->max_B);
    const int T = ws->T;
    const int xbits = qsnn_net_input_bits(&net->cfg);
    if (xbits) {
        qsnn_input_quant(xbits, x, ws->xq, (size_t)(x_static ? B : T * B) * net->cfg.n_inputs);
        x = ws->xq;
    }
    ws->B = B;
    ws->kept = keep;
    ws->x = x;
    ws->in_static = x_static;
    for (int l = 0; l < net->n_layers; l++) {
        qsnn_layer *L = &net->layer[l];
        qsnn_layer_buf *b = &ws->buf[l];
        /* a recurrent layer's current changes every step, so a static input is spread over T */
        const int x_in_static = l == 0 && x_static, in_static = x_in_static && !L->rec;
        const float *X = l ? ws->buf[l - 1].S : x;
        if (L->kind == QSNN_LAYER_CONV) conv_forward(L, b, ws->col, X, x_in_static ? B : T * B);
        else if (b->wt) sparse_forward(L, X, T * B, b->wt, b->cur);
        else dense_forward(L, X, x_in_static ? B : T * B, b->cur);
        if (L->cur_step > 0.0f)
            qsnn_current_quant(L->cur_step, L->cur_kmax, b->cur, (size_t)(x_in_static ? B : T * B) * L->out);
        const size_t n = (size_t)B * L->out, is = in_static ? 0 : n;
        if (x_in_static && L->rec)
            for (int t = 1; t < T; t++) memcpy(b->cur + (size_t)t * n, b->cur, n * sizeof(float));
        const size_t us = keep || l == net->n_layers - 1 ? n : 0;
        const long nb = (long)n_blocks(n);
        for (long k = 0; k < nb; k++) ws->spikes[k] = 0.0;
        const int steps = L->rec ? T : 1; /* recurrent layers advance one step at a time */
        for (int s = 0; s < steps; s++) {
            const int t0 = L->rec ? s : 0, t1 = L->rec ? s + 1 : T;
            if (L->rec && s > 0) recurrent_input(L, b->S + (size_t)(s - 1) * n, B, b->cur + (size_t)s * n);
            #pragma omp parallel for schedule(static)
            for (long k = 0; k < nb; k++) {
                const size_t j0 = (size_t)k * BLOCK;
                qsnn_neuron_io io = {.T = T, .t0 = t0, .t1 = t1, .n = (int)(n - j0 < BLOCK ? n - j0 : BLOCK),
                                     .cur = b->cur + j0, .i_stride = is, .U = b->U + j0, .u_stride = us,
                                     .plane = us ? (size_t)T * n : n, .S = b->S + j0, .stride = n};
                for (int q = 0; q < L->ops->n_states; q++) io.q[q] = qsnn_layer_sq(L, q);
                per_neuron_io(L, ws, k, j0, &io, 0, s == 0);
                ws->spikes[k] += L->ops->forward(&L->np, &io);
            }
        }
        double total = 0.0; /* fixed order */
        for (long k = 0; k < nb; k++) total += ws->spikes[k];
        ws->rate[l] = total / ((double)T * (double)n);
        if (b->drop && ws->dropout_seed) apply_dropout(L, b, ws->dropout_seed, l, T, B);
    }
    return QSNN_OK;
}

qsnn_status qsnn_forward(qsnn_net *net, qsnn_workspace *ws, const float *x, int x_static, int B) {
    return forward(net, ws, x, x_static, B, 1);
}

qsnn_status qsnn_forward_infer(qsnn_net *net, qsnn_workspace *ws, const float *x, int x_static, int B) {
    return forward(net, ws, x, x_static, B, 0);
}

qsnn_status qsnn_backward(qsnn_net *net, qsnn_workspace *ws, const float *gS_out, const float *gU_out) {
    if (!ws->train) return qsnn_fail(net->ctx, QSNN_ERR_ARG, "backward: workspace was created for inference");
    if (!ws->kept) return qsnn_fail(net->ctx, QSNN_ERR_ARG, "backward: the last forward was qsnn_forward_infer");
    const int T = ws->T, B = ws->B;
    int learn_lsq = 0; /* learned state grids: lsq, qil, qn, cpq */
    for (int l = 0; l < net->n_layers; l++)
        learn_lsq |= qsnn_layer_lsq_state(&net->layer[l]) || qsnn_layer_lq_state(&net->layer[l]);
    const int learn = net->cfg.learn_beta || net->cfg.learn_theta || net->cfg.learn_alpha || learn_lsq;
    for (int l = net->n_layers - 1; l >= 0; l--) {
        qsnn_layer *L = &net->layer[l];
        qsnn_layer_buf *b = &ws->buf[l];
        const int last = l == net->n_layers - 1;
        const int x_in_static = l == 0 && ws->in_static, in_static = x_in_static && !L->rec;
        const float *gS = last ? gS_out : b->gS;
        const float *gU = last ? gU_out : NULL;
        const float *X = l ? ws->buf[l - 1].S : ws->x;
        const size_t n = (size_t)B * L->out, is = in_static ? 0 : n;
        const long nb = (long)n_blocks(n);
        const int ns = L->ops->n_states;
        if (learn) {
            for (long k = 0; k < nb; k++)
                ws->pg[k].beta = ws->pg[k].theta = ws->pg[k].alpha = ws->pg[k].qp[0] = ws->pg[k].qp[1] = 0.0;
            if (ws->pn_blk) per_neuron_grad_zero(L, ws, nb);
        }
        const int steps = L->rec ? T : 1;
        for (int s = steps - 1; s >= 0; s--) {
            const int t0 = L->rec ? s : 0, t1 = L->rec ? s + 1 : T;
            #pragma omp parallel for schedule(static)
            for (long k = 0; k < nb; k++) {
                const size_t j0 = (size_t)k * BLOCK;
                qsnn_neuron_io io = {.T = T, .t0 = t0, .t1 = t1, .n = (int)(n - j0 < BLOCK ? n - j0 : BLOCK),
                                     .cur = b->cur + j0, .i_stride = is, .U = b->U + j0, .u_stride = n,
                                     .plane = (size_t)T * n, .S = b->S + j0, .stride = n,
                                     .gS = gS ? gS + j0 : NULL, .gU = gU ? gU + j0 : NULL, .gcur = b->gcur + j0,
                                     .gi_stride = is,
                                     .carry = L->rec ? ws->carry + (size_t)k * QSNN_NEURON_MAX_STATES * BLOCK : NULL};
                for (int q = 0; q < ns; q++) io.q[q] = qsnn_layer_sq(L, q);
                per_neuron_io(L, ws, k, j0, &io, learn, s == steps - 1);
                L->ops->backward(&L->np, &io, learn ? &ws->pg[k] : NULL);
            }
            if (L->rec && s > 0) recurrent_back(L, b->gcur + (size_t)s * n, B, b->gS + (size_t)(s - 1) * n);
        }
        if (learn) { /* fixed-order reduction: the same sum for any thread count */
            double gb = 0.0, gt = 0.0, ga = 0.0, gsc = 0.0, gq1 = 0.0;
            for (long k = 0; k < nb; k++)
                gb += ws->pg[k].beta, gt += ws->pg[k].theta, ga += ws->pg[k].alpha, gsc += ws->pg[k].qp[0],
                    gq1 += ws->pg[k].qp[1];
            L->g_beta = (float)gb;
            L->g_theta = (float)gt;
            L->g_alpha = (float)ga;
            if (ws->pn_blk) per_neuron_grad_reduce(L, ws, n);
            if (qsnn_layer_lsq_state(L)) /* LSQ's gradient scale for states summed over T: 1/sqrt(N·T·Qp) */
                L->g_state_scale = (float)(gsc / sqrt((double)L->out * T * (double)(L->sq.n / 2 - 1)));
            if (qsnn_layer_lq_state(L)) { /* no LSQ-style gradient scale here: Adam normalises the step */
                L->g_state_p[0] = (float)gsc;
                L->g_state_p[1] = (float)gq1;
            }
        }
        if (L->rec) {
            recurrent_weight_grad(L, b->gcur, b->S, T, B);
            if (x_in_static) /* the input was the same at every step: its current's gradient sums over T */
                for (int t = 1; t < T; t++)
                    for (size_t i = 0; i < n; i++) b->gcur[i] += b->gcur[(size_t)t * n + i];
        }
        const int rows = x_in_static ? B : T * B;
        if (L->kind == QSNN_LAYER_CONV) {
            conv_backward(L, b, ws->col, ws->gw_conv, X, rows, l > 0 ? ws->buf[l - 1].gS : NULL);
            if (L->wq) L->wq->backward(&L->wq_cfg, L->W, L->w_scales, L->w_rows, (int)(L->nw / L->w_rows), L->gW);
            if (l > 0) mask_grad(&net->layer[l - 1], &ws->buf[l - 1], ws, T, B);
            continue;
        }
        if (b->gw_part) sparse_weight_grad(L, X, b->gcur, rows, b->gw_part, L->gW);
        else
            qsnn_sgemm(CblasTrans, CblasNoTrans, L->out, L->in, rows, 1.0f, b->gcur, L->out, X, L->in,
                        0.0f, L->gW, L->in);
        if (L->gb) {
            const int nc = (L->out + 63) / 64;
            #pragma omp parallel for schedule(static)
            for (int c = 0; c < nc; c++) {
                const int o0 = c * 64, o1 = o0 + 64 < L->out ? o0 + 64 : L->out;
                for (int o = o0; o < o1; o++) L->gb[o] = 0.0f;
                for (int r = 0; r < rows; r++) {
                    const float *g = b->gcur + (size_t)r * L->out;
                    for (int o = o0; o < o1; o++) L->gb[o] += g[o];
                }
            }
        }
        if (L->wq) L->wq->backward(&L->wq_cfg, L->W, L->w_scales, L->out, L->in, L->gW);
        if (l > 0) {
            qsnn_sgemm(CblasNoTrans, CblasNoTrans, rows, L->in, L->out, 1.0f, b->gcur, L->out, L->Wq,
                        L->in, 0.0f, ws->buf[l - 1].gS, L->in);
            mask_grad(&net->layer[l - 1], &ws->buf[l - 1], ws, T, B);
        }
    }
    return QSNN_OK;
}

double qsnn_layer_rate(const qsnn_workspace *ws, const qsnn_net *net, int l) {
    (void)net;
    return ws->rate[l];
}
