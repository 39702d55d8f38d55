#include "cli/record_opt.h"
#include "cli/commands.h"
#include "core/timer.h"
#include "datasets/batch.h"
#include "datasets/encoder.h"
#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Samples run through the network at a time while recording. */
#define RECORD_BATCH 64

const char qsnn_record_neurons_help[] =
    "  --neurons SPEC    membranes to record: all (default), none, L:all, or L:i,j,a-b (layer L,\n"
    "                    neurons i, j and a..b); repeatable; once given, layers not named record none\n";

void qsnn_record_opts_init(qsnn_record_opts *o) {
    memset(o, 0, sizeof *o);
    o->samples = -1;
    for (int l = 0; l < QSNN_MAX_LAYERS; l++) o->sel.n[l] = -1;
}

/* Parses one --neurons SPEC into o; returns 0 or -1 with the reason in err. */
static int parse_neurons(const char *spec, qsnn_record_opts *o, char *err, size_t errlen) {
    if (!o->neurons_given) { /* the first --neurons replaces the default "all" */
        for (int l = 0; l < QSNN_MAX_LAYERS; l++) o->sel.n[l] = 0;
        o->neurons_given = 1;
    }
    if (!strcmp(spec, "all") || !strcmp(spec, "none")) {
        for (int l = 0; l < QSNN_MAX_LAYERS; l++) o->sel.n[l] = spec[0] == 'a' ? -1 : 0;
        return 0;
    }
    char *end;
    long l = strtol(spec, &end, 10);
    if (end == spec || *end != ':' || l < 0 || l >= QSNN_MAX_LAYERS) {
        snprintf(err, errlen, "--neurons %s: expected all, none, L:all or L:i,j,a-b", spec);
        return -1;
    }
    const char *p = end + 1;
    o->named[l] = 1;
    if (!strcmp(p, "all")) {
        o->sel.n[l] = -1;
        return 0;
    }
    int n = o->sel.n[l] < 0 ? 0 : o->sel.n[l];
    while (*p) {
        long a = strtol(p, &end, 10), b;
        if (end == p || a < 0) goto bad;
        b = a;
        if (*end == '-') {
            p = end + 1;
            b = strtol(p, &end, 10);
            if (end == p || b < a) goto bad;
        }
        for (long j = a; j <= b; j++) {
            if (n == (int)(sizeof o->idx[0] / sizeof o->idx[0][0])) {
                snprintf(err, errlen, "--neurons %s: at most %d neurons per layer (use L:all)", spec,
                         (int)(sizeof o->idx[0] / sizeof o->idx[0][0]));
                return -1;
            }
            o->idx[l][n++] = (int32_t)j;
        }
        if (*end == ',') end++;
        else if (*end) goto bad;
        p = end;
    }
    if (n == 0) goto bad;
    o->sel.n[l] = n;
    o->sel.idx[l] = o->idx[l];
    return 0;
bad:
    snprintf(err, errlen, "--neurons %s: expected all, none, L:all or L:i,j,a-b", spec);
    return -1;
}

int qsnn_record_parse_opt(const char *cmd, const char *file_opt, const char *samples_opt, int argc, char **argv,
                          int *i, qsnn_record_opts *o) {
    const char *a = argv[*i];
    const int is_file = file_opt && !strcmp(a, file_opt), is_samples = samples_opt && !strcmp(a, samples_opt);
    const int is_neurons = !strcmp(a, "--neurons");
    if (!is_file && !is_samples && !is_neurons) return 0;
    if (*i + 1 >= argc) {
        qsnn_cli_error(cmd, "option %s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (is_file) {
        if (!*v) {
            qsnn_cli_error(cmd, "%s needs a file name", a);
            return -1;
        }
        o->file = v;
    } else if (is_samples) {
        if (qsnn_cli_parse_int(v, 1, 1000000, &o->samples)) {
            qsnn_cli_error(cmd, "%s %s: expected an integer in 1..1000000", a, v);
            return -1;
        }
    } else {
        char err[256];
        if (parse_neurons(v, o, err, sizeof err)) {
            qsnn_cli_error(cmd, "%s", err);
            return -1;
        }
    }
    return 1;
}

qsnn_status qsnn_record_check(qsnn_ctx *ctx, const qsnn_record_opts *o, const qsnn_net *net) {
    for (int l = 0; l < QSNN_MAX_LAYERS; l++) {
        if (!o->named[l]) continue;
        if (l >= net->n_layers)
            return qsnn_fail(ctx, QSNN_ERR_ARG, "--neurons: layer %d does not exist (the network has %d layers, 0..%d)",
                             l, net->n_layers, net->n_layers - 1);
        for (int j = 0; j < o->sel.n[l]; j++)
            if (o->sel.idx[l][j] >= net->layer[l].out)
                return qsnn_fail(ctx, QSNN_ERR_ARG, "--neurons: layer %d has %d neurons (0..%d); %d does not exist", l,
                                 net->layer[l].out, net->layer[l].out - 1, (int)o->sel.idx[l][j]);
    }
    return QSNN_OK;
}

qsnn_status qsnn_record_run(qsnn_ctx *ctx, qsnn_trace_writer *w, const char *group, qsnn_net *net,
                            const qsnn_config *cfg, const qsnn_dataset *ds, int n, int epoch,
                            const qsnn_record_opts *o) {
    const qsnn_encoder_ops *enc = qsnn_encoder_find(cfg->data.encoding);
    if (!enc)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "data.encoding = '%s': unknown (known: %s)", cfg->data.encoding,
                         qsnn_encoder_names());
    if (n < 1 || n > ds->n)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "cannot record %d samples: the test split has %lld", n, (long long)ds->n);
    const int T = cfg->data.steps, F = net->cfg.n_inputs, maxB = n < RECORD_BATCH ? n : RECORD_BATCH;
    qsnn_workspace *ws = NULL;
    const int Fd = qsnn_encoder_data_features(enc, F, T); /* a sample's features (rows: T steps of F) */
    float *x = qsnn_malloc(ctx, (size_t)maxB * Fd * sizeof(float));
    float *xenc = qsnn_malloc(ctx, (enc->is_static ? 1 : (size_t)T) * maxB * F * sizeof(float));
    int *y = qsnn_malloc(ctx, (size_t)maxB * sizeof(int));
    int64_t *ids = qsnn_malloc(ctx, (size_t)maxB * sizeof(int64_t));
    qsnn_status st = !x || !xenc || !y || !ids ? QSNN_ERR_NOMEM : qsnn_net_prepare(net);
    if (!st) st = qsnn_workspace_create(net, maxB, T, 1, &ws);
    if (!st)
        st = qsnn_trace_begin(w, group, net, n, T, F, maxB, enc->name, enc->is_static, QSNN_EVAL_EPOCH, epoch,
                              &o->sel);
    for (int s0 = 0; s0 < n && !st; s0 += maxB) {
        const int B = n - s0 < maxB ? n - s0 : maxB;
        for (int b = 0; b < B; b++) ids[b] = s0 + b;
        qsnn_batch_gather(ds, ids, B, x, y);
        /* keyed like evaluation, so the recorded run is the one qsnn eval measures */
        enc->encode(x, B, Fd, T, (uint64_t)cfg->run.seed, QSNN_EVAL_EPOCH, ids, xenc);
        if (!(st = qsnn_forward(net, ws, xenc, enc->is_static, B))) st = qsnn_trace_add_batch(w, ws, ids, y, xenc, B);
    }
    if (!st) st = qsnn_trace_end(w);
    qsnn_workspace_destroy(&ws);
    qsnn_free(ctx, x);
    qsnn_free(ctx, xenc);
    qsnn_free(ctx, y);
    qsnn_free(ctx, ids);
    return st;
}

static int n_samples(const qsnn_record_opts *o) {
    return o->samples > 0 ? (int)o->samples : QSNN_RECORD_DEFAULT_SAMPLES;
}

/* The recording options without --record FILE are a mistake worth a message. */
static qsnn_status check_has_file(qsnn_ctx *ctx, const qsnn_record_opts *o) {
    if (!o->file && (o->samples > 0 || o->neurons_given))
        return qsnn_fail(ctx, QSNN_ERR_ARG, "--record-samples and --neurons need --record FILE");
    return QSNN_OK;
}

qsnn_status qsnn_record_file(qsnn_ctx *ctx, const qsnn_record_opts *o, int argc, char **argv, const char *model,
                             qsnn_net *net, const qsnn_config *cfg, const qsnn_dataset *ds, int epoch) {
    qsnn_status st = check_has_file(ctx, o);
    if (st || !o->file) return st;
    if ((st = qsnn_record_check(ctx, o, net))) return st;
    char *yaml = NULL, *cmdline = qsnn_cli_join_args(argc, argv);
    qsnn_trace_writer *w = NULL;
    st = qsnn_config_dump(ctx, cfg, &yaml);
    if (!st) {
        const qsnn_trace_meta tm = {cfg->run.seed, cmdline, model, yaml};
        st = qsnn_trace_writer_create(ctx, o->file, &tm, &w);
    }
    if (!st) st = qsnn_record_run(ctx, w, NULL, net, cfg, ds, n_samples(o), epoch, o);
    if (!st) st = qsnn_trace_commit(w);
    if (!st) printf("recorded %d samples x %d steps into %s\n", n_samples(o), cfg->data.steps, o->file);
    qsnn_trace_writer_destroy(&w);
    qsnn_free(ctx, yaml);
    free(cmdline);
    return st;
}

struct qsnn_record_session {
    qsnn_ctx *ctx;
    const qsnn_record_opts *o;
    const qsnn_config *cfg;
    qsnn_net *net;
    const qsnn_dataset *ds;
    qsnn_trace_writer *w;
    int first, last;
    double seconds; /* spent recording, for the report */
};

qsnn_status qsnn_record_session_begin(qsnn_ctx *ctx, const qsnn_record_opts *o, const char *cmdline,
                                      const char *config_yaml, const qsnn_config *cfg, qsnn_net *net,
                                      const qsnn_dataset *ds, qsnn_record_session **out) {
    *out = NULL;
    qsnn_status st = check_has_file(ctx, o);
    if (st || !o->file) return st;
    if ((st = qsnn_record_check(ctx, o, net))) return st;
    if (n_samples(o) > ds->n)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "--record-samples %d: the test split has %lld samples", n_samples(o),
                         (long long)ds->n);
    qsnn_record_session *s = qsnn_calloc(ctx, 1, sizeof *s);
    if (!s) return QSNN_ERR_NOMEM;
    s->ctx = ctx, s->o = o, s->cfg = cfg, s->net = net, s->ds = ds;
    const qsnn_trace_meta tm = {cfg->run.seed, cmdline, "train", config_yaml};
    if ((st = qsnn_trace_writer_create(ctx, o->file, &tm, &s->w))) {
        qsnn_free(ctx, s);
        return st;
    }
    *out = s;
    return QSNN_OK;
}

qsnn_status qsnn_record_session_epoch(qsnn_record_session *s, int epoch) {
    if (!s) return QSNN_OK;
    char group[32];
    snprintf(group, sizeof group, "epoch_%d", epoch);
    const double t0 = qsnn_now();
    qsnn_status st = qsnn_record_run(s->ctx, s->w, group, s->net, s->cfg, s->ds, n_samples(s->o), epoch, s->o);
    s->seconds += qsnn_now() - t0;
    if (!st) {
        if (!s->first) s->first = epoch;
        s->last = epoch;
    }
    return st;
}

qsnn_status qsnn_record_session_finish(qsnn_record_session *s) {
    if (!s) return QSNN_OK;
    const double t0 = qsnn_now();
    qsnn_status st = s->last ? qsnn_trace_set_epochs(s->w, s->first, s->last) : QSNN_OK;
    if (!st) st = qsnn_trace_commit(s->w);
    s->seconds += qsnn_now() - t0;
    if (!st)
        printf("recorded %d test samples after epochs %d..%d into %s (%.2f s)\n", n_samples(s->o), s->first, s->last,
               s->o->file, s->seconds);
    return st;
}

void qsnn_record_session_destroy(qsnn_record_session **ps) {
    if (!ps || !*ps) return;
    qsnn_ctx *ctx = (*ps)->ctx;
    qsnn_trace_writer_destroy(&(*ps)->w);
    qsnn_free(ctx, *ps);
    *ps = NULL;
}
