/* qsnn simulate CONFIG: runs a population network (examples/coba.yaml) with the time-stepped or
 * the CVODE engine and writes its spikes and recorded states to HDF5 (io/spike_log.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/simulate_config.h"
#include "cli/simulate_model.h"
#include "core/timer.h"
#include "io/spike_log.h"
#include "sim/popnet.h"

static void help(void) {
    printf("usage: qsnn simulate CONFIG [options]\n"
           "       qsnn simulate --model MODEL.h5 [--samples N] [--rtol X] [--threads N]\n\n"
           "Simulates the population network described in CONFIG (YAML: populations of lif_current,\n"
           "lif_conductance, adex, izhikevich, hh neurons or Poisson sources, random or explicit sparse\n"
           "projections with delays; see docs/simulate.md and examples/coba.yaml) and writes spikes\n"
           "and recorded states to HDF5. Values may carry units (\"20 ms\", \"-60 mV\").\n\n"
           "options:\n"
           "  --out FILE.h5            output file (default runs/sim.h5)\n"
           "  --no-save                run without writing a file (benchmarks)\n"
           "  --engine step|cvode      time-stepped (default) or continuous-time CVODE engine\n"
           "  --duration T             biological time, e.g. 1, \"200 ms\" (default: the file's, else 1 s)\n"
           "  --dt T                   time step (also the CVODE engine's recording grid)\n"
           "  --threads N              threads (0 = all cores); results do not depend on it\n"
           "  --seed N                 seed of initial states, connectivity and Poisson drive\n"
           "  --record-states POP:I,J  record every state of neurons I, J of population POP each step\n"
           "                           (repeatable; adds to the file's record lists)\n"
           "  --rtol X, --atol X       CVODE tolerances (default 1e-6, 1e-6; atol in mV, nS, pA units)\n"
           "  --json                   also print one JSON line with the timings and rates\n"
           "  --model MODEL.h5         instead of CONFIG: run a model trained by qsnn train in continuous\n"
           "                           time (tau = dt/(1-beta)) on test images; prints both accuracies\n"
           "                           and the spike agreement with the discrete engine\n"
           "  --samples N              test images for --model (default 200)\n"
           "  --no-progress            no progress bar\n");
}

typedef struct progress {
    int on;
    double last;
} progress;

static void show_progress(void *user, double t, double t_end) {
    progress *p = user;
    if (!p->on) return;
    const double now = qsnn_now();
    if (t < t_end && now - p->last < 0.1) return;
    p->last = now;
    printf("\r  simulating %.3f / %.3f s biological time \033[K", t, t_end);
    fflush(stdout);
}

typedef struct both { /* progress and the log behind one sink */
    progress *prog;
    qsnn_spike_log *log;
} both;

static qsnn_status both_spikes(void *u, int p, const double *t, const int32_t *i, int64_t n) {
    both *b = u;
    return b->log ? qsnn_spike_log_spikes(b->log, p, t, i, n) : QSNN_OK;
}
static qsnn_status both_states(void *u, int p, int64_t s, const double *v) {
    both *b = u;
    return b->log ? qsnn_spike_log_states(b->log, p, s, v) : QSNN_OK;
}
static void both_progress(void *u, double t, double e) { show_progress(((both *)u)->prog, t, e); }

/* "exc:0,5,9" -> adds neurons to the population's record list (sorted, unique). */
static int add_record(qsnn_ctx *ctx, qsnn_popnet *net, const char *spec, char *err, size_t n) {
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec) return snprintf(err, n, "--record-states %s: expected POP:I,J,...", spec), -1;
    char name[QSNN_POP_NAME];
    snprintf(name, sizeof name, "%.*s", (int)(colon - spec), spec);
    const int p = qsnn_popnet_find_pop(net, name);
    if (p < 0) return snprintf(err, n, "--record-states %s: no population '%s'", spec, name), -1;
    qsnn_population *P = &net->pop[p];
    if (!P->model) return snprintf(err, n, "--record-states %s: %s is a Poisson source", spec, name), -1;
    const char *s = colon + 1;
    for (;;) {
        char *end;
        errno = 0;
        const long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v >= P->n || (*end && *end != ','))
            return snprintf(err, n, "--record-states %s: neuron indices must be in 0..%d", spec, P->n - 1), -1;
        int32_t *r = qsnn_malloc(ctx, ((size_t)P->n_record + 1) * sizeof *r);
        if (!r) return snprintf(err, n, "out of memory"), -1;
        int k = 0, placed = 0;
        for (int q = 0; q < P->n_record; q++) {
            if (!placed && v <= P->record[q]) {
                if (v < P->record[q]) r[k++] = (int32_t)v;
                placed = 1;
            }
            r[k++] = P->record[q];
        }
        if (!placed) r[k++] = (int32_t)v;
        qsnn_free(ctx, P->record);
        P->record = r;
        P->n_record = k;
        if (!*end) break;
        s = end + 1;
    }
    return 0;
}

int qsnn_cmd_simulate(int argc, char **argv) {
    const char *config = NULL, *out = "runs/sim.h5", *engine = NULL, *duration_s = NULL, *dt_s = NULL;
    const char *rtol_s = NULL, *atol_s = NULL, *model = NULL;
    long long samples = 200;
    const char *records[64];
    int n_records = 0, save = 1, json = 0, want_progress = 1, out_given = 0;
    long long threads = -1, seed = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--no-save")) {
            save = 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--no-progress")) {
            want_progress = 0;
        } else if (!strcmp(a, "--out") || !strcmp(a, "--engine") || !strcmp(a, "--duration") || !strcmp(a, "--dt") ||
                   !strcmp(a, "--threads") || !strcmp(a, "--seed") || !strcmp(a, "--record-states") ||
                   !strcmp(a, "--rtol") || !strcmp(a, "--atol") || !strcmp(a, "--model") ||
                   !strcmp(a, "--samples")) {
            if (i + 1 >= argc) return qsnn_cli_error("simulate", "option %s needs a value", a), 2;
            const char *v = argv[++i];
            if (!strcmp(a, "--out")) out = v, out_given = 1;
            else if (!strcmp(a, "--engine")) engine = v;
            else if (!strcmp(a, "--duration")) duration_s = v;
            else if (!strcmp(a, "--dt")) dt_s = v;
            else if (!strcmp(a, "--rtol")) rtol_s = v;
            else if (!strcmp(a, "--atol")) atol_s = v;
            else if (!strcmp(a, "--model")) model = v;
            else if (!strcmp(a, "--samples")) {
                if (qsnn_cli_parse_int(v, 1, 10000, &samples))
                    return qsnn_cli_error("simulate", "--samples %s: expected an integer in 1..10000", v), 2;
            }
            else if (!strcmp(a, "--threads")) {
                if (qsnn_cli_parse_int(v, 0, 1024, &threads))
                    return qsnn_cli_error("simulate", "--threads %s: expected an integer in 0..1024", v), 2;
            } else if (!strcmp(a, "--seed")) {
                if (qsnn_cli_parse_int(v, 0, (long long)9e18, &seed))
                    return qsnn_cli_error("simulate", "--seed %s: expected a non-negative integer", v), 2;
            } else {
                if (n_records == 64) return qsnn_cli_error("simulate", "too many --record-states options"), 2;
                records[n_records++] = v;
            }
        } else if (a[0] == '-') {
            return qsnn_cli_error("simulate", "unknown option '%s' (see qsnn simulate --help)", a), 2;
        } else if (!config) {
            config = a;
        } else {
            return qsnn_cli_error("simulate", "one configuration at a time ('%s' and '%s')", config, a), 2;
        }
    }
    if (model && config)
        return qsnn_cli_error("simulate", "give a CONFIG or --model, not both ('%s', '%s')", config, model), 2;
    if (!config && !model) return qsnn_cli_error("simulate", "which network? usage: qsnn simulate CONFIG (see --help)"), 2;
    if (engine && strcmp(engine, "step") && strcmp(engine, "cvode"))
        return qsnn_cli_error("simulate", "--engine %s: expected step or cvode", engine), 2;
    if (!save && out_given) return qsnn_cli_error("simulate", "--out and --no-save contradict each other"), 2;
    char why[256];
    double duration = -1.0, dt = -1.0, rtol = -1.0, atol = -1.0;
    if (duration_s && (qsnn_parse_quantity(duration_s, "s", &duration, why, sizeof why) || duration < 0.0))
        return qsnn_cli_error("simulate", "--duration %s: %s", duration_s, duration < 0.0 && !why[0] ? "must be >= 0" : why), 2;
    if (dt_s && (qsnn_parse_quantity(dt_s, "s", &dt, why, sizeof why) || !(dt > 0.0)))
        return qsnn_cli_error("simulate", "--dt %s: expected a time > 0", dt_s), 2;
    if (rtol_s && (qsnn_parse_quantity(rtol_s, "1", &rtol, why, sizeof why) || !(rtol > 0.0)))
        return qsnn_cli_error("simulate", "--rtol %s: expected a number > 0", rtol_s), 2;
    if (atol_s && (qsnn_parse_quantity(atol_s, "1", &atol, why, sizeof why) || !(atol > 0.0)))
        return qsnn_cli_error("simulate", "--atol %s: expected a number > 0", atol_s), 2;

    if (model) {
        qsnn_cvode_opts o;
        qsnn_cvode_opts_default(&o);
        if (rtol > 0.0) o.rtol = rtol;
        if (atol > 0.0) o.atol = atol;
        return qsnn_simulate_model(model, (int)samples, threads >= 0 ? (int)threads : 0, &o, json);
    }
    const double t_start = qsnn_now();
    qsnn_ctx *ctx = NULL;
    if (qsnn_ctx_create(NULL, 1, 0, &ctx)) return qsnn_cli_error("simulate", "out of memory");
    int rc = 1;
    char *yaml = NULL, *cmdline = NULL;
    qsnn_popnet *net = NULL;
    qsnn_spike_log *log = NULL;
    qsnn_sim_config cfg;
    if (qsnn_popnet_create(ctx, &net) || qsnn_sim_config_load(ctx, config, &cfg, net, &yaml)) goto fail;
    if (engine) snprintf(cfg.engine, sizeof cfg.engine, "%s", engine);
    if (duration >= 0.0) cfg.duration = duration;
    if (dt > 0.0) net->dt = dt;
    if (threads >= 0) cfg.threads = (int)threads;
    if (seed >= 0) cfg.seed = seed, net->seed = (uint64_t)seed;
    if (rtol > 0.0) cfg.cvode.rtol = rtol;
    if (atol > 0.0) cfg.cvode.atol = atol;
    qsnn_ctx_set_threads(ctx, cfg.threads);
    for (int r = 0; r < n_records; r++)
        if (add_record(ctx, net, records[r], why, sizeof why)) {
            rc = qsnn_cli_error("simulate", "%s", why);
            goto done;
        }
    const double tb = qsnn_now();
    if (qsnn_popnet_build(net)) goto fail;
    const double build_s = qsnn_now() - tb;
    const int cvode = !strcmp(cfg.engine, "cvode");
    if (cvode)
        for (int j = 0; j < net->n_proj; j++)
            if (net->proj[j].delay < net->dt) {
                fprintf(stderr, "qsnn simulate: note: the cvode engine takes delays below dt as dt (projection %s)\n",
                        net->proj[j].name);
                break;
            }
    if (save) {
        if (!strcmp(out, "runs/sim.h5") && mkdir("runs", 0777) != 0 && errno != EEXIST) {
            rc = qsnn_cli_error("simulate", "cannot create runs/: %s", strerror(errno));
            goto done;
        }
        cmdline = qsnn_cli_join_args(argc, argv);
        const qsnn_spike_log_meta meta = {cfg.seed, cmdline, yaml, cfg.engine, cfg.duration};
        if (qsnn_spike_log_create(ctx, out, &meta, net, &log)) goto fail;
    }
    int64_t n_neurons = 0, n_syn = 0;
    for (int p = 0; p < net->n_pops; p++) n_neurons += net->pop[p].n;
    for (int j = 0; j < net->n_proj; j++) n_syn += net->proj[j].n_syn;
    printf("simulate %s: engine %s, %lld neurons, %lld synapses, dt %g ms, %g s, %d thread%s\n", config, cfg.engine,
           (long long)n_neurons, (long long)n_syn, net->dt * 1e3, cfg.duration, qsnn_ctx_threads(ctx),
           qsnn_ctx_threads(ctx) == 1 ? "" : "s");
    fflush(stdout);
    progress prog = {want_progress && isatty(STDOUT_FILENO), 0.0};
    both b = {&prog, log};
    const qsnn_sim_sink sink = {&b, both_spikes, log ? both_states : NULL, both_progress};
    qsnn_sim_stats stats;
    qsnn_status st = cvode ? qsnn_popnet_run_cvode(net, cfg.duration, &cfg.cvode, &sink, &stats)
                           : qsnn_popnet_run_step(net, cfg.duration, &sink, &stats);
    if (prog.on) printf("\r\033[K");
    if (st) goto fail;
    if (log && qsnn_spike_log_commit(log, &stats)) goto fail;
    for (int p = 0; p < net->n_pops; p++) {
        const qsnn_population *P = &net->pop[p];
        printf("  %-12s %8d %-16s %8.2f Hz  (%lld spikes)\n", P->name, P->n, P->model ? P->model->name : "poisson",
               cfg.duration > 0 ? (double)P->n_spikes / P->n / cfg.duration : 0.0, (long long)P->n_spikes);
    }
    const double mean_rate = cfg.duration > 0 ? (double)stats.n_spikes / (double)n_neurons / cfg.duration : 0.0;
    printf("mean rate %.2f Hz; build %.3f s, simulation %.3f s", mean_rate, build_s, stats.wall_s);
    if (cvode) printf(" (%ld CVODE steps, %ld re-initialisations)", stats.cvode_steps, stats.cvode_reinits);
    printf("\nmemory: synapses %.1f MB (%.2f B/synapse), neurons %.1f MB (%.1f B/neuron)\n",
           stats.bytes_synapses / 1e6, n_syn ? (double)stats.bytes_synapses / (double)n_syn : 0.0,
           stats.bytes_neurons / 1e6, (double)stats.bytes_neurons / (double)n_neurons);
    if (log) printf("saved %s\n", out);
    if (json)
        printf("{\"engine\": \"%s\", \"t_sim_s\": %.6f, \"t_build_s\": %.6f, \"t_total_s\": %.6f, \"n_spikes\": %lld, "
               "\"mean_rate_hz\": %.4f, \"n_synapses\": %lld, \"n_neurons\": %lld, \"threads\": %d, "
               "\"bytes_per_synapse\": %.3f, \"bytes_per_neuron\": %.3f}\n",
               cfg.engine, stats.wall_s, build_s, qsnn_now() - t_start, (long long)stats.n_spikes, mean_rate,
               (long long)n_syn, (long long)n_neurons, qsnn_ctx_threads(ctx),
               n_syn ? (double)stats.bytes_synapses / (double)n_syn : 0.0,
               (double)stats.bytes_neurons / (double)n_neurons);
    rc = 0;
    goto done;
fail:
    qsnn_cli_error("simulate", "%s", qsnn_last_error(ctx));
done:
    qsnn_spike_log_destroy(&log);
    qsnn_popnet_destroy(&net);
    qsnn_free(ctx, yaml);
    free(cmdline);
    qsnn_ctx_destroy(&ctx);
    return rc;
}
