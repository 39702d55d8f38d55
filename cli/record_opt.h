/* Recording spike traces from the command line: the options shared by qsnn record, qsnn eval
 * --record and qsnn train --record, and the loop that runs a network over the first N test samples
 * and writes one recording (io/trace.h). */
#ifndef QSNN_CLI_RECORD_OPT_H
#define QSNN_CLI_RECORD_OPT_H

#include "cli/config.h"
#include "datasets/idx.h"
#include "io/trace.h"

typedef struct qsnn_record_opts {
    const char *file;   /* --record FILE (train, eval) or --out FILE (record); NULL = off */
    long long samples;  /* --record-samples / --samples; < 0 = not given */
    int neurons_given;  /* any --neurons option seen */
    qsnn_trace_sel sel; /* membranes to record; default: all neurons of every layer */
    int named[QSNN_MAX_LAYERS]; /* layer named by an L:... spec */
    int32_t idx[QSNN_MAX_LAYERS][256];
} qsnn_record_opts;

/* Default record size when --record-samples / --samples is not given. */
#define QSNN_RECORD_DEFAULT_SAMPLES 16

void qsnn_record_opts_init(qsnn_record_opts *o);
/* Tries to consume argv[*i] (and its value): `file_opt` (e.g. "--record") sets o->file, `samples_opt`
 * the sample count, and --neurons SPEC the membrane selection. SPEC: "all", "none", "L:all" or
 * "L:i,j,a-b" (layer L, neurons i, j and a..b); repeatable, and once given the layers it does not
 * name record no membranes. Returns 1 if consumed, 0 if not ours, -1 on a usage error (printed). */
int qsnn_record_parse_opt(const char *cmd, const char *file_opt, const char *samples_opt, int argc, char **argv,
                          int *i, qsnn_record_opts *o);
/* Checks the selection against the network (layer and neuron indices). */
qsnn_status qsnn_record_check(qsnn_ctx *ctx, const qsnn_record_opts *o, const qsnn_net *net);
/* Runs `net` (prepared) over the first n samples of ds, encoded as evaluation encodes them, and writes
 * them as one recording (group NULL = the root, else "epoch_K"). */
qsnn_status qsnn_record_run(qsnn_ctx *ctx, qsnn_trace_writer *w, const char *group, qsnn_net *net,
                            const qsnn_config *cfg, const qsnn_dataset *ds, int n, int epoch,
                            const qsnn_record_opts *o);
/* qsnn eval --record FILE: records o->samples test samples of `net` into a new trace file (one
 * recording at its root), atomically. Does nothing when no recording option was given; refuses
 * --record-samples or --neurons without --record. `cmd` names the command, argv its command line
 * and model the checkpoint, for the file's metadata. */
qsnn_status qsnn_record_file(qsnn_ctx *ctx, const qsnn_record_opts *o, int argc, char **argv, const char *model,
                             qsnn_net *net, const qsnn_config *cfg, const qsnn_dataset *ds, int epoch);

/* qsnn train --record FILE: one trace file holding a recording of the same test samples after every
 * epoch (/epoch_K). begin creates the file aside (*out stays NULL without --record), epoch records,
 * finish renames it into place; destroy without finish removes it. All accept a NULL session. */
typedef struct qsnn_record_session qsnn_record_session;
qsnn_status qsnn_record_session_begin(qsnn_ctx *ctx, const qsnn_record_opts *o, const char *cmdline,
                                      const char *config_yaml, const qsnn_config *cfg, qsnn_net *net,
                                      const qsnn_dataset *ds, qsnn_record_session **out);
qsnn_status qsnn_record_session_epoch(qsnn_record_session *s, int epoch);
qsnn_status qsnn_record_session_finish(qsnn_record_session *s);
void qsnn_record_session_destroy(qsnn_record_session **s);

/* The options' help lines, for --help texts. */
extern const char qsnn_record_neurons_help[];

#endif
