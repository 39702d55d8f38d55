/* qsnn simulate end to end through the built binary: exit statuses, the HDF5 file read back with
 * the C API, determinism across thread counts for both engines, a short COBA run's rate, and the
 * one-line errors for bad configurations. */
#include "cli_harness.h"
#include <criterion/criterion.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


static void setup(void) { harness_setup("simulate"); }
static void teardown(void) { harness_teardown(); }

TestSuite(simulate, .init = setup, .fini = teardown, .timeout = 120);

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* qsnn ARGS run inside the test's folder (relative paths in configs resolve there). */
static __attribute__((format(printf, 1, 2))) int sim_run(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int rc = run_in(tmpdir, fmt, ap);
    va_end(ap);
    return rc;
}

/* One line on stderr, equal to `want`. */
static void assert_error(int rc, int want_rc, const char *want) {
    cr_assert_eq(rc, want_rc, "exit %d (want %d); stderr: %s", rc, want_rc, err_text);
    char line[1024];
    snprintf(line, sizeof line, "%s\n", want);
    cr_assert_str_eq(err_text, line);
}

/* A Poisson source driving a recurrent conductance-LIF population. */
static const char *small_net =
    "dt: 0.1 ms\n"
    "duration: 50 ms\n"
    "seed: 7\n"
    "populations:\n"
    "  - {name: inp, n: 50, model: poisson, rate: 40 Hz}\n"
    "  - name: exc\n"
    "    n: 120\n"
    "    model: lif_conductance\n"
    "    params: {v_drive: 8 mV}\n"
    "    init: {v: {uniform: [-60 mV, -50 mV]}}\n"
    "    record: [0, 7]\n"
    "projections:\n"
    "  - {from: inp, to: exc, target: ge, weight: 0.3, p: 0.2, delay: 0.5 ms}\n"
    "  - {from: exc, to: exc, target: gi, weight: 0.5, p: 0.1, delay: 1 ms}\n";

typedef struct spikes {
    double *t;
    int32_t *i;
    hsize_t n;
} spikes;

static spikes read_spikes(const char *file, const char *pop) {
    spikes s = {0};
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0, "cannot open %s", file);
    char name[128];
    snprintf(name, sizeof name, "populations/%s/spike_time", pop);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    cr_assert_geq(d, 0, "%s missing", name);
    hid_t sp = H5Dget_space(d);
    cr_assert_eq(H5Sget_simple_extent_ndims(sp), 1);
    H5Sget_simple_extent_dims(sp, &s.n, NULL);
    H5Sclose(sp);
    s.t = malloc((s.n + 1) * sizeof *s.t);
    s.i = malloc((s.n + 1) * sizeof *s.i);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.t), 0);
    H5Dclose(d);
    snprintf(name, sizeof name, "populations/%s/spike_neuron", pop);
    d = H5Dopen2(f, name, H5P_DEFAULT);
    cr_assert_geq(d, 0, "%s missing", name);
    hsize_t n2;
    sp = H5Dget_space(d);
    H5Sget_simple_extent_dims(sp, &n2, NULL);
    H5Sclose(sp);
    cr_assert_eq(n2, s.n);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.i), 0);
    H5Dclose(d);
    H5Fclose(f);
    return s;
}

static void assert_same_spikes(const char *a, const char *b, const char *pop) {
    spikes x = read_spikes(a, pop), y = read_spikes(b, pop);
    cr_assert_eq(x.n, y.n, "%s: %llu vs %llu spikes", pop, (unsigned long long)x.n, (unsigned long long)y.n);
    cr_assert(x.n > 0);
    cr_assert_eq(memcmp(x.t, y.t, x.n * sizeof *x.t), 0, "%s: spike times differ", pop);
    cr_assert_eq(memcmp(x.i, y.i, x.n * sizeof *x.i), 0, "%s: spike neurons differ", pop);
    free(x.t), free(x.i), free(y.t), free(y.i);
}

static double attr_f64(hid_t loc, const char *name) {
    double v = NAN;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    cr_assert_geq(a, 0, "attribute %s missing", name);
    H5Aread(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    return v;
}

Test(simulate, writes_the_documented_layout) {
    write_file(tpath("net.yaml"), small_net);
    int rc = sim_run("simulate net.yaml --out out.h5 --no-progress");
    cr_assert_eq(rc, 0, "stderr: %s", err_text);
    cr_assert_not_null(strstr(out_text, "saved out.h5"), "%s", out_text);
    hid_t f = H5Fopen(tpath("out.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    cr_assert_float_eq(attr_f64(f, "format_version"), 1.0, 0.0);
    cr_assert_float_eq(attr_f64(f, "dt"), 1e-4, 1e-15);
    cr_assert_float_eq(attr_f64(f, "n_steps"), 500.0, 0.0);
    cr_assert(H5Lexists(f, "config", H5P_DEFAULT) > 0);
    hid_t g = H5Gopen2(f, "populations/exc", H5P_DEFAULT);
    cr_assert_geq(g, 0);
    cr_assert_float_eq(attr_f64(g, "n"), 120.0, 0.0);
    cr_assert_float_eq(attr_f64(g, "tau_m"), 20e-3, 1e-15);
    const double n_spk = attr_f64(g, "n_spikes");
    hid_t d = H5Dopen2(g, "state/v", H5P_DEFAULT);
    cr_assert_geq(d, 0, "state/v missing");
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2];
    cr_assert_eq(H5Sget_simple_extent_ndims(sp), 2);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    cr_assert_eq(dims[0], 500);
    cr_assert_eq(dims[1], 2);
    float *v = malloc(500 * 2 * sizeof *v);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    for (int k = 0; k < 1000; k++) cr_assert(v[k] > -0.1f && v[k] < -0.0499f, "v[%d] = %g", k, v[k]);
    free(v);
    int32_t neurons[2] = {-1, -1};
    hid_t a = H5Aopen(d, "neurons", H5P_DEFAULT);
    cr_assert_geq(a, 0);
    H5Aread(a, H5T_NATIVE_INT32, neurons);
    H5Aclose(a);
    cr_assert(neurons[0] == 0 && neurons[1] == 7);
    H5Sclose(sp);
    H5Dclose(d);
    H5Gclose(g);
    H5Fclose(f);
    spikes s = read_spikes(tpath("out.h5"), "exc");
    cr_assert_eq((double)s.n, n_spk);
    cr_assert_gt(s.n, 10);
    for (hsize_t k = 0; k < s.n; k++) {
        cr_assert(s.t[k] > 0.0 && s.t[k] <= 0.05 + 1e-12 && s.i[k] >= 0 && s.i[k] < 120);
        if (k) cr_assert_geq(s.t[k], s.t[k - 1], "spike times not ascending");
    }
    free(s.t), free(s.i);
    /* nothing else left in the folder: no temporary file */
    cr_assert_neq(access(tpath("out.h5.tmp"), F_OK), 0);
}

Test(simulate, same_spikes_for_any_thread_count_step) {
    /* 20,000 neurons: the step engine uses a second thread from there on */
    write_file(tpath("big.yaml"),
               "dt: 0.1 ms\nduration: 20 ms\nseed: 3\npopulations:\n"
               "  - {name: inp, n: 2000, model: poisson, rate: 50 Hz}\n"
               "  - {name: exc, n: 20000, model: lif_conductance, params: {v_drive: 9 mV},\n"
               "     init: {v: {uniform: [-60 mV, -50 mV]}}}\n"
               "projections:\n"
               "  - {from: inp, to: exc, target: ge, weight: 0.2, p: 0.01}\n"
               "  - {from: exc, to: exc, target: gi, weight: 0.4, p: 0.001}\n");
    cr_assert_eq(sim_run("simulate big.yaml --out t1.h5 --threads 1"), 0, "%s", err_text);
    cr_assert_eq(sim_run("simulate big.yaml --out t2.h5 --threads 2"), 0, "%s", err_text);
    cr_assert_not_null(strstr(out_text, "2 threads"), "%s", out_text);
    assert_same_spikes(tpath("t1.h5"), tpath("t2.h5"), "exc");
    assert_same_spikes(tpath("t1.h5"), tpath("t2.h5"), "inp");
}

Test(simulate, same_spikes_for_any_thread_count_cvode) {
    write_file(tpath("net.yaml"), small_net);
    cr_assert_eq(sim_run("simulate net.yaml --engine cvode --out c1.h5 --threads 1"), 0, "%s", err_text);
    cr_assert_eq(sim_run("simulate net.yaml --engine cvode --out c2.h5 --threads 2"), 0, "%s", err_text);
    assert_same_spikes(tpath("c1.h5"), tpath("c2.h5"), "exc");
}

/* The time-stepped and CVODE engines agree on the rate of this small network (same drive: the
 * Poisson spikes are identical), within 15%. */
Test(simulate, engines_agree_on_rates) {
    write_file(tpath("net.yaml"), small_net);
    cr_assert_eq(sim_run("simulate net.yaml --out s.h5"), 0, "%s", err_text);
    cr_assert_eq(sim_run("simulate net.yaml --out c.h5 --engine cvode"), 0, "%s", err_text);
    spikes a = read_spikes(tpath("s.h5"), "exc"), b = read_spikes(tpath("c.h5"), "exc");
    spikes pa = read_spikes(tpath("s.h5"), "inp"), pb = read_spikes(tpath("c.h5"), "inp");
    cr_assert_eq(pa.n, pb.n, "Poisson drives differ");
    cr_assert_eq(memcmp(pa.i, pb.i, pa.n * sizeof *pa.i), 0);
    fprintf(stderr, "small network: step %llu spikes, cvode %llu\n", (unsigned long long)a.n, (unsigned long long)b.n);
    cr_assert(fabs((double)a.n - (double)b.n) <= 0.15 * (double)b.n, "step %llu vs cvode %llu spikes",
              (unsigned long long)a.n, (unsigned long long)b.n);
    free(a.t), free(a.i), free(b.t), free(b.i), free(pa.t), free(pa.i), free(pb.t), free(pb.i);
}

/* 0.2 s of examples/coba.yaml: Brian2 gives 23.1 Hz over 1 s for seed 4321; qsnn over 1 s gives
 * 20.5-23.2 Hz for seeds 1-4 (the network is chaotic, so only the rate is comparable). The band
 * [15, 30] Hz holds with a margin for 0.2 s and catches a broken synapse sign, conductance or
 * refractory period (rates then fall under 5 Hz or rise above 60 Hz). */
Test(simulate, coba_rate_in_band) {
    cr_assert_eq(sim_run("simulate '%s/../examples/coba.yaml' --duration 0.2 --no-save --json", QSNN_TEST_DIR), 0, "%s",
                 err_text);
    const char *j = strstr(out_text, "\"mean_rate_hz\": ");
    cr_assert_not_null(j, "%s", out_text);
    const double rate = atof(j + strlen("\"mean_rate_hz\": "));
    fprintf(stderr, "COBA 0.2 s: %.2f Hz\n", rate);
    cr_assert(rate >= 15.0 && rate <= 30.0, "rate %.2f Hz", rate);
    cr_assert_not_null(strstr(out_text, "\"n_synapses\": 3"), "%s", out_text); /* ~320,000 */
}

Test(simulate, errors_are_one_line) {
    write_file(tpath("neg.yaml"), "populations:\n  - {name: exc, n: 10, model: lif_conductance,\n"
                                  "     params: {tau_m: -20 ms}}\n");
    assert_error(sim_run("simulate neg.yaml --no-save"), 1,
                 "qsnn simulate: population exc (lif_conductance): tau_m = -0.02: must be > 0");
    write_file(tpath("cap.yaml"), "populations:\n  - {name: cells, n: 4, model: adex, params: {C: -200 pF}}\n");
    assert_error(sim_run("simulate cap.yaml --no-save"), 1, "qsnn simulate: population cells (adex): C = -2e-10: must be > 0");
    write_file(tpath("key.yaml"), "dt: 0.1 ms\npopulations:\n  - name: exc\n    n: 10\n    model: lif_current\n"
                                  "    colour: red\n");
    assert_error(sim_run("simulate key.yaml --no-save"), 1,
                 "qsnn simulate: key.yaml:6: populations[0].colour: unknown key (known: name, n, model, rate, "
                 "integration, params, init, record)");
    write_file(tpath("unit.yaml"), "dt: 0.1 mV\npopulations: []\n");
    assert_error(sim_run("simulate unit.yaml --no-save"), 1,
                 "qsnn simulate: unit.yaml:1: dt: expected a time (s), got '0.1 mV'");
    write_file(tpath("par.yaml"), "populations:\n  - name: exc\n    n: 10\n    model: lif_current\n"
                                  "    params: {tau: 5 ms}\n");
    cr_assert_eq(sim_run("simulate par.yaml --no-save"), 1);
    cr_assert_not_null(strstr(err_text, "par.yaml:5: exc.params.tau: model lif_current has no parameter 'tau'"),
                       "%s", err_text);
    write_file(tpath("nan.yaml"), "populations:\n  - {name: exc, n: 10, model: lif_current, params: {v_thresh: nan}}\n");
    assert_error(sim_run("simulate nan.yaml --no-save"), 1,
                 "qsnn simulate: nan.yaml:2: exc.params.v_thresh: 'nan' is not a finite number");
    assert_error(sim_run("simulate missing.yaml --no-save"), 1, "qsnn simulate: missing.yaml: No such file or directory");
    assert_error(sim_run("simulate"), 2, "qsnn simulate: which network? usage: qsnn simulate CONFIG (see --help)");
    assert_error(sim_run("simulate x.yaml --engine rk4"), 2, "qsnn simulate: --engine rk4: expected step or cvode");
    write_file(tpath("net.yaml"), small_net);
    cr_assert_eq(sim_run("simulate net.yaml --out nodir/x.h5"), 1);
    cr_assert(!strncmp(err_text, "qsnn simulate: nodir/x.h5: cannot create the temporary file nodir/x.h5.tmp.", 75) &&
                  strstr(err_text, ": No such file or directory\n"),
              "%s", err_text);
}

Test(simulate, help_lists_every_option) {
    cr_assert_eq(sim_run("simulate --help"), 0);
    const char *opts[] = {"--out", "--no-save", "--engine", "--duration", "--dt", "--threads", "--seed",
                          "--record-states", "--rtol", "--atol", "--json", "--no-progress", "--model", "--samples"};
    for (size_t k = 0; k < sizeof opts / sizeof *opts; k++)
        cr_assert_not_null(strstr(out_text, opts[k]), "--help lacks %s", opts[k]);
}

/* SIGTERM in the middle of a run leaves neither the output nor its temporary file behind. */
Test(simulate, sigterm_leaves_no_file) {
    write_file(tpath("long.yaml"), "dt: 0.1 ms\nduration: 100 s\npopulations:\n"
                                   "  - {name: exc, n: 5000, model: lif_conductance, params: {v_drive: 15 mV}}\n");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && { '%s' simulate long.yaml --out long.h5 >/dev/null 2>&1 & pid=$!; "
             "sleep 0.7; ls long.h5.tmp.* >/dev/null 2>&1 && echo tmp-seen > seen.txt; kill -TERM $pid; wait $pid; "
             "echo $? > status.txt; } 2>/dev/null",
             tmpdir, QSNN_BIN);
    cr_assert_eq(system(cmd), 0);
    char *status = slurp(tpath("status.txt"));
    cr_assert_eq(atoi(status), 128 + 15, "exit status %s", status);
    free(status);
    cr_assert_eq(access(tpath("seen.txt"), F_OK), 0, "the temporary file did not exist during the run");
    char check[512];
    snprintf(check, sizeof check, "ls '%s' | grep -q 'long.h5'", tmpdir);
    cr_assert_neq(system(check), 0, "long.h5 or its temporary file is left");
}

/* Unstable dynamics stop the run with the population and neuron named, in either engine. */
Test(simulate, solver_failures_name_the_neuron) {
    write_file(tpath("hh.yaml"), "dt: 1 ms\nduration: 0.5 s\npopulations:\n"
                                 "  - {name: cells, n: 3, model: hh, params: {i_ext: 1 nA}}\n");
    assert_error(sim_run("simulate hh.yaml --no-save"), 1,
                 "qsnn simulate: population cells neuron 0: state v is not finite by t = 0.064 s (time step too "
                 "large for these dynamics? the cvode engine adapts its steps)");
    write_file(tpath("izh.yaml"), "duration: 0.1 s\npopulations:\n"
                                  "  - {name: runaway, n: 2, model: izhikevich, params: {v_peak: 1e300, i_ext: 100}}\n");
    cr_assert_eq(sim_run("simulate izh.yaml --no-save --engine cvode"), 1);
    const char *want = "qsnn simulate: population runaway neuron 0: CVODE CV_";
    cr_assert(!strncmp(err_text, want, strlen(want)) && strstr(err_text, " at t = "), "%s", err_text);
    cr_assert_eq(access(tpath("runs"), F_OK), -1); /* --no-save wrote nothing */
}

/* --record-states adds to the file's record list (sorted, merged). */
Test(simulate, record_states_option) {
    write_file(tpath("net.yaml"), small_net);
    cr_assert_eq(sim_run("simulate net.yaml --out r.h5 --record-states exc:3,1 --record-states exc:7"), 0, "%s", err_text);
    hid_t f = H5Fopen(tpath("r.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "populations/exc/state/ge", H5P_DEFAULT);
    cr_assert_geq(d, 0);
    int32_t n[8] = {0};
    hid_t a = H5Aopen(d, "neurons", H5P_DEFAULT);
    hid_t sp = H5Aget_space(a);
    cr_assert_eq(H5Sget_simple_extent_npoints(sp), 4);
    H5Aread(a, H5T_NATIVE_INT32, n);
    cr_assert(n[0] == 0 && n[1] == 1 && n[2] == 3 && n[3] == 7, "%d %d %d %d", n[0], n[1], n[2], n[3]);
    H5Sclose(sp), H5Aclose(a), H5Dclose(d), H5Fclose(f);
    assert_error(sim_run("simulate net.yaml --no-save --record-states inp:0"), 1,
                 "qsnn simulate: --record-states inp:0: inp is a Poisson source");
    assert_error(sim_run("simulate net.yaml --no-save --record-states exc:120"), 1,
                 "qsnn simulate: --record-states exc:120: neuron indices must be in 0..119");
}

/* A model trained by qsnn train (tiny: 64 hidden neurons, 8 steps, 1 epoch on 1,024 images) run in
 * continuous time: both accuracies reported, and the continuous network predicts the same class as
 * the discrete one for most images (measured 86% on these 50; asserted >= 70%). */
Test(simulate, trained_model_in_continuous_time) {
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK) != 0)
        cr_skip_test("Fashion-MNIST not installed");
    cr_assert_eq(sim_run("train --set data.train_limit=1024 --set data.test_limit=512 --set model.hidden=64 "
                     "--set data.steps=8 --no-progress --epochs 1 --out tiny"),
                 0, "%s", err_text);
    cr_assert_eq(sim_run("simulate --model tiny/model.h5 --samples 50 --json"), 0, "%s", err_text);
    cr_assert_not_null(strstr(out_text, "accuracy: discrete "), "%s", out_text);
    const char *j = strstr(out_text, "\"same_prediction\": ");
    cr_assert_not_null(j, "%s", out_text);
    const double same = atof(j + strlen("\"same_prediction\": "));
    fprintf(stderr, "%s", out_text);
    cr_assert_geq(same, 0.7, "%s", out_text);
    assert_error(sim_run("simulate net.yaml --model tiny/model.h5"), 2,
                 "qsnn simulate: give a CONFIG or --model, not both ('net.yaml', 'tiny/model.h5')");
}
