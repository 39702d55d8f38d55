/* The table of configuration keys and the per-key value operations (parse, format, check). */
#include "cli/config_keys.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "neurons/neuron.h"
#include "neurons/surrogate.h"
#include "quant/state_quant.h"
#include "quant/weight_quant.h"
#include "sim/layer_spec.h"

/* ---- the table ---------------------------------------------------------------------------- */

/* Enum names in the order of the C enum values (tests/test_config.c checks them against the
 * registries: qsnn_reset_find, qsnn_surrogate_find, qsnn_grid_find). */
static const char *const reset_names[] = {"subtract", "zero", "none", NULL};
static const char *const surrogate_names[] = {"arctan",     "fast_sigmoid",     "soft",       "sigmoid",
                                              "triangular", "straight_through", "superspike", "exponential",
                                              NULL};
static const char *const grid_names[] = {"uniform", "threshold_centered", "zero_centered", "fixed_point", "threshold_rest",
                                         "lsq",     "qil",                "qn",            "cpq",         NULL};
static const char *const granularity_names[] = {"per_tensor", "per_channel", NULL};
static const char *const encoding_names[] = {"direct", "rate", "rows", NULL};
static const char *const optimizer_names[] = {"adam", "sgd", NULL};
static const char *const schedule_names[] = {"constant", "cosine", NULL};
static const char *const loss_names[] = {"ce_count", "mse_count", "ce_max_membrane", NULL};

static const char *const recurrent_names[] = {"none", "full", "one_to_one", NULL};

static int neuron_known(const char *name) { return qsnn_neuron_find(name) != NULL; }
static int neuron_or_empty_known(const char *name) { return !name[0] || qsnn_neuron_find(name) != NULL; }
static int weight_method_known(const char *name) { return qsnn_weight_quant_find(name) != NULL; }
static int grid_known(const char *name) { return qsnn_grid_find(name) >= 0; }
/* From the grid registry by name (not grid_names above), so grids added there are accepted per layer. */
static const char *grid_known_names(void) {
    static char buf[512];
    size_t len = 0;
    buf[0] = 0;
    for (int g = 0; g < QSNN_GRID_COUNT && len < sizeof buf; g++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", g ? ", " : "", qsnn_grid_name((qsnn_grid)g));
    return buf;
}

#define AT(member) offsetof(qsnn_config, member), sizeof(((qsnn_config *)0)->member)
/* Ranges: min, max, flags. */
#define ANY 0.0, 0.0, 0u
#define GE(a) (a), 0.0, QSNN_KEY_HAS_MIN
#define GT(a) (a), 0.0, QSNN_KEY_HAS_MIN | QSNN_KEY_MIN_OPEN
#define IN(a, b) (a), (b), QSNN_KEY_HAS_MIN | QSNN_KEY_HAS_MAX
#define IN_OPEN_MAX(a, b) (a), (b), QSNN_KEY_HAS_MIN | QSNN_KEY_HAS_MAX | QSNN_KEY_MAX_OPEN
#define OFF_OR_IN(a, b) (a), (b), QSNN_KEY_HAS_MIN | QSNN_KEY_HAS_MAX | QSNN_KEY_ZERO_OFF
#define KEY(path, type, member, range, desc) {path, type, AT(member), NULL, range, NULL, NULL, desc}
#define ENUMK(path, type, member, names, desc) {path, type, AT(member), names, ANY, NULL, NULL, desc}
#define STRK(path, member, known, known_names, desc) \
    {path, QSNN_KEY_STRING, AT(member), NULL, ANY, known, known_names, desc}
#define NAMESK(path, member, known, known_names, desc) \
    {path, QSNN_KEY_LAYER_NAMES, AT(member), NULL, ANY, known, known_names, desc}

const qsnn_config_key qsnn_config_keys[] = {
    KEY("model.inputs", QSNN_KEY_INT, model.n_inputs, GE(1), "input features (784 for 28x28 images)"),
    KEY("model.hidden", QSNN_KEY_HIDDEN, model.sizes, IN(1, 1000000),
        "hidden layer sizes, a list such as [1000] or [500, 200]"),
    KEY("model.layers", QSNN_KEY_LAYERS, model.spec, ANY,
        "hidden layers one by one, replacing model.hidden: [\"conv channels=12 kernel=5 pool=max:2\", \"dense "
        "size=128 dropout=0.2\"]; conv options channels, kernel (3), stride (1), padding (0), groups (1), pool "
        "(none, max:K, avg:K, sum:K); dense: size; both: neuron, dropout, surrogate, slope, weight_bits, state_bits "
        "(docs/layers.md)"),
    KEY("model.input_shape", QSNN_KEY_LAYER_INTS, model.in_shape, IN(1, 100000),
        "the input as [channels, height, width] for conv layers; [] = one square channel"),
    KEY("model.outputs", QSNN_KEY_OUTPUTS, model.sizes, IN(1, 1000000), "output neurons (classes)"),
    STRK("model.neuron", model.neuron, neuron_known, qsnn_neuron_names, "hidden layers' neuron model (registry name)"),
    STRK("model.output_neuron", model.output_neuron, neuron_or_empty_known, qsnn_neuron_names,
         "output layer's neuron model; \"\" = model.neuron; li = a non-spiking leaky-integrator readout"),
    ENUMK("model.recurrent", QSNN_KEY_ENUM, model.recurrent, recurrent_names,
          "recurrent hidden layers: none, full (a [N][N] matrix V: I += V S[t-1]) or one_to_one (one weight per "
          "neuron)"),
    KEY("model.beta", QSNN_KEY_FLOAT, model.neuron_params.beta, IN(0, 1), "membrane leak factor"),
    KEY("model.threshold", QSNN_KEY_FLOAT, model.neuron_params.theta, GT(0), "firing threshold"),
    ENUMK("model.reset", QSNN_KEY_ENUM, model.neuron_params.reset, reset_names, "reset rule after a spike"),
    KEY("model.reset_grad", QSNN_KEY_BOOL, model.neuron_params.reset_grad, ANY,
        "let the gradient flow through the reset term"),
    KEY("model.learn_beta", QSNN_KEY_BOOL, model.learn_beta, ANY, "learn the leak factor of each layer"),
    KEY("model.learn_threshold", QSNN_KEY_BOOL, model.learn_theta, ANY, "learn the threshold of each layer"),
    KEY("model.alpha", QSNN_KEY_FLOAT, model.neuron_params.alpha, IN(0, 1),
        "synaptic-current decay (synaptic, alpha models)"),
    KEY("model.learn_alpha", QSNN_KEY_BOOL, model.learn_alpha, ANY, "learn the synaptic decay of each layer"),
    KEY("model.per_neuron", QSNN_KEY_BOOL, model.per_neuron, ANY,
        "beta, threshold and alpha per neuron instead of per layer (state grids follow each threshold)"),
    KEY("model.input_scale", QSNN_KEY_FLOAT, model.neuron_params.in_scale, GT(0),
        "lapicque: the input's factor dt/C (and beta = 1 - dt/(RC))"),
    KEY("model.adapt_decay", QSNN_KEY_FLOAT, model.neuron_params.adapt_decay, IN(0, 1),
        "alif: decay rho of the adaptation a[t] = rho a[t-1] + S[t-1]"),
    KEY("model.adapt_strength", QSNN_KEY_FLOAT, model.neuron_params.adapt_strength, ANY,
        "alif: threshold increase per unit of adaptation, theta[t] = threshold + b a[t]"),
    KEY("model.izh_a", QSNN_KEY_FLOAT, model.neuron_params.izh_a, ANY, "izhikevich: recovery rate a"),
    KEY("model.izh_b", QSNN_KEY_FLOAT, model.neuron_params.izh_b, ANY, "izhikevich: recovery sensitivity b"),
    KEY("model.izh_c", QSNN_KEY_FLOAT, model.neuron_params.izh_c, ANY, "izhikevich: reset potential c (mV)"),
    KEY("model.izh_d", QSNN_KEY_FLOAT, model.neuron_params.izh_d, ANY, "izhikevich: recovery jump d"),
    ENUMK("model.surrogate", QSNN_KEY_ENUM, model.neuron_params.surrogate, surrogate_names,
          "surrogate gradient of the spike"),
    KEY("model.surrogate_slope", QSNN_KEY_FLOAT, model.neuron_params.slope, GE(0),
        "surrogate slope; 0 = the surrogate's default (arctan 2, fast_sigmoid 25, soft 5, sigmoid 25, "
        "triangular width 1, straight_through 1 (unused), superspike 10, exponential tau 0.5)"),
    KEY("model.bias", QSNN_KEY_BOOL, model.bias, ANY, "dense layers have a bias"),

    KEY("quant.state.bits", QSNN_KEY_INT, model.state_quant.bits, IN(0, QSNN_STATE_MAX_BITS),
        "membrane-potential quantization bits; 0 = off"),
    ENUMK("quant.state.grid", QSNN_KEY_ENUM, model.state_quant.grid, grid_names, "state quantization grid (lsq, qil, qn, cpq: learned per layer)"),
    KEY("quant.state.lower_limit", QSNN_KEY_FLOAT, model.state_quant.lower_limit, GT(-1),
        "grid bottom: U_min = -threshold * (1 + lower_limit)"),
    KEY("quant.state.upper_limit", QSNN_KEY_FLOAT, model.state_quant.upper_limit, GT(-1),
        "grid top: U_max = threshold * (1 + upper_limit)"),
    KEY("quant.state.multiplier", QSNN_KEY_FLOAT, model.state_quant.multiplier, IN_OPEN_MAX(0, 1),
        "level spacing ratio of centered grids; 0 = the default for the bit width"),
    KEY("quant.state.ste_clip", QSNN_KEY_BOOL, model.state_quant.ste_clip, ANY,
        "zero the gradient outside [U_min, U_max]"),
    KEY("quant.state.layer_bits", QSNN_KEY_LAYER_INTS, model.state_layer_bits, OFF_OR_IN(1, QSNN_STATE_MAX_BITS),
        "state bits per layer, e.g. [8, 4] (overrides quant.state.bits; 0 = float); [] = all layers alike"),
    NAMESK("quant.state.layer_grid", model.state_layer_grid, grid_known, grid_known_names,
           "state grid per layer, e.g. [uniform, threshold_centered] (overrides quant.state.grid); [] = all layers "
           "alike"),
    KEY("quant.weight.bits", QSNN_KEY_INT, model.weight_quant.bits, OFF_OR_IN(1, 16),
        "weight quantization bits; 0 = off; 1 = binary (±mean|w|)"),
    KEY("quant.weight.layer_bits", QSNN_KEY_LAYER_INTS, model.weight_layer_bits, OFF_OR_IN(1, 16),
        "weight bits per layer, e.g. [4, 8] (overrides quant.weight.bits; 0 = float); [] = all layers alike"),
    KEY("quant.weight.pow2", QSNN_KEY_BOOL, model.weight_quant.pow2, ANY,
        "power-of-two weight scales (rescaling is a shift)"),
    ENUMK("quant.weight.granularity", QSNN_KEY_ENUM, model.weight_quant.granularity, granularity_names,
          "one weight scale per tensor or per output neuron"),
    STRK("quant.weight.method", model.weight_quant.method, weight_method_known, qsnn_weight_quant_names,
         "weight quantizer (registry name)"),
    NAMESK("quant.weight.layer_method", model.weight_layer_method, weight_method_known, qsnn_weight_quant_names,
           "weight quantizer per layer, e.g. [qil, lsq] (overrides quant.weight.method); [] = all layers alike"),
    KEY("quant.qn.t_base", QSNN_KEY_FLOAT, model.lq.qn_t_base, GT(0),
        "Quantization Networks (method/grid qn): temperature T = (epoch + 1) x t_base during training"),
    KEY("quant.qn.t_max", QSNN_KEY_FLOAT, model.lq.qn_t_max, GT(0), "Quantization Networks: the temperature's cap"),
    KEY("quant.cpq.drop_prob", QSNN_KEY_FLOAT, model.lq.cpq_drop, IN_OPEN_MAX(0, 1),
        "CPQ weights' DropBits: probability of dropping a grid point of the highest bit level in a "
        "training step (halved per level below; the 2-bit grid is kept); 0 = off"),
    KEY("quant.cpq.state_drop_prob", QSNN_KEY_FLOAT, model.lq.cpq_state_drop, IN_OPEN_MAX(0, 1),
        "CPQ state grids' DropBits probability (as drop_prob; 0 = off, the default)"),
    KEY("quant.cpq.learn_bits", QSNN_KEY_BOOL, model.lq.cpq_learn_bits, ANY,
        "CPQ weights: learn each layer's bit width (a gate per bit level; quant.weight.bits is the maximum; "
        "states keep quant.state.bits)"),
    KEY("quant.cpq.bit_penalty", QSNN_KEY_FLOAT, model.lq.cpq_bit_penalty, GE(0),
        "CPQ learned widths: weight of the penalty on the expected number of grid levels kept"),
    KEY("quant.input.bits", QSNN_KEY_INT, model.input_bits, OFF_OR_IN(1, 16),
        "input quantization: inputs in [0, 1] to the grid k/2^bits (8: pixel intensities); 0 = off"),
    KEY("quant.current.bits", QSNN_KEY_INT, model.current_bits, OFF_OR_IN(2, 16),
        "quantize the first layer's input current every step (activation quantizer); 0 = off"),
    KEY("quant.current.range", QSNN_KEY_FLOAT, model.current_range, GT(0),
        "its range: +-range x threshold"),
    KEY("quant.integer", QSNN_KEY_BOOL, model.integer, ANY,
        "integer-exact model: power-of-two weight scales, fixed_point state grid, 8-bit inputs, beta and bias "
        "on fixed-point grids, so `qsnn eval --integer` reproduces it spike for spike"),

    STRK("data.dir", data.dir, NULL, NULL, "folder with the IDX files of the dataset"),
    ENUMK("data.encoding", QSNN_KEY_ENUM_STR, data.encoding, encoding_names, "input encoding"),
    KEY("data.steps", QSNN_KEY_INT, data.steps, IN(1, 100000), "time steps per sample"),
    KEY("data.train_limit", QSNN_KEY_INT, data.train_limit, GE(0), "use only the first N training samples; 0 = all"),
    KEY("data.test_limit", QSNN_KEY_INT, data.test_limit, GE(0), "use only the first N test samples; 0 = all"),

    KEY("train.epochs", QSNN_KEY_INT, train.epochs, IN(1, 100000), "passes over the training set"),
    KEY("train.batch", QSNN_KEY_INT, train.batch, IN(1, 65536), "batch size"),
    ENUMK("train.optimizer", QSNN_KEY_ENUM_STR, train.optimizer, optimizer_names, "optimizer"),
    KEY("train.lr", QSNN_KEY_FLOAT, train.lr, GT(0), "learning rate"),
    KEY("train.momentum", QSNN_KEY_FLOAT, train.momentum, IN_OPEN_MAX(0, 1), "sgd momentum"),
    KEY("train.beta1", QSNN_KEY_FLOAT, train.beta1, IN_OPEN_MAX(0, 1), "adam first-moment decay"),
    KEY("train.beta2", QSNN_KEY_FLOAT, train.beta2, IN_OPEN_MAX(0, 1), "adam second-moment decay"),
    KEY("train.eps", QSNN_KEY_FLOAT, train.eps, GT(0), "adam epsilon"),
    KEY("train.weight_decay", QSNN_KEY_FLOAT, train.weight_decay, GE(0), "L2 weight decay"),
    ENUMK("train.schedule", QSNN_KEY_ENUM_STR, train.schedule, schedule_names, "learning-rate schedule"),
    KEY("train.lr_min", QSNN_KEY_FLOAT, train.lr_min, GE(0), "cosine schedule floor (<= train.lr)"),
    ENUMK("train.loss", QSNN_KEY_ENUM_STR, train.loss, loss_names, "loss function"),
    KEY("train.correct_rate", QSNN_KEY_FLOAT, train.correct_rate, IN(0, 1),
        "mse_count target firing rate of the correct class (spikes per step)"),
    KEY("train.incorrect_rate", QSNN_KEY_FLOAT, train.incorrect_rate, IN(0, 1),
        "mse_count target firing rate of the other classes (spikes per step)"),

    KEY("run.threads", QSNN_KEY_INT, run.threads, IN(0, 1024), "worker threads; 0 = all cores"),
    KEY("run.seed", QSNN_KEY_INT, run.seed, GE(0), "random seed (initialization, encoding, shuffling)"),
    STRK("run.out", run.out, NULL, NULL, "output folder for checkpoints and logs"),
    KEY("run.progress", QSNN_KEY_BOOL, run.progress, ANY, "show a progress bar on a terminal"),
};

const int qsnn_config_n_keys = (int)(sizeof qsnn_config_keys / sizeof qsnn_config_keys[0]);

/* ---- small helpers ------------------------------------------------------------------------- */

static void set_err(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t n, const char *fmt, ...) {
    if (!err || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

static void *field(const qsnn_config_key *k, qsnn_config *cfg) { return (char *)cfg + k->offset; }
static const void *cfield(const qsnn_config_key *k, const qsnn_config *cfg) {
    return (const char *)cfg + k->offset;
}

static long long read_int(const void *p, size_t size) {
    switch (size) {
    case sizeof(signed char): { signed char v; memcpy(&v, p, sizeof v); return v; }
    case sizeof(short): { short v; memcpy(&v, p, sizeof v); return v; }
    case sizeof(int): { int v; memcpy(&v, p, sizeof v); return v; }
    default: { long long v; memcpy(&v, p, sizeof v); return v; }
    }
}

static void write_int(void *p, size_t size, long long x) {
    switch (size) {
    case sizeof(signed char): { signed char v = (signed char)x; memcpy(p, &v, sizeof v); break; }
    case sizeof(short): { short v = (short)x; memcpy(p, &v, sizeof v); break; }
    case sizeof(int): { int v = (int)x; memcpy(p, &v, sizeof v); break; }
    default: { long long v = x; memcpy(p, &v, sizeof v); break; }
    }
}

static long long int_min(size_t size) {
    return size == 1 ? SCHAR_MIN : size == sizeof(short) ? SHRT_MIN : size == sizeof(int) ? INT_MIN : LLONG_MIN;
}
static long long int_max(size_t size) {
    return size == 1 ? SCHAR_MAX : size == sizeof(short) ? SHRT_MAX : size == sizeof(int) ? INT_MAX : LLONG_MAX;
}

static double read_float(const void *p, size_t size) {
    if (size == sizeof(float)) { float v; memcpy(&v, p, sizeof v); return v; }
    double v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void write_float(void *p, size_t size, double x) {
    if (size == sizeof(float)) { float v = (float)x; memcpy(p, &v, sizeof v); return; }
    memcpy(p, &x, sizeof x);
}

/* Strict base-10 integer: optional sign, digits, nothing else (no spaces). */
static int parse_ll(const char *s, long long *out, int *overflow) {
    *overflow = 0;
    if (!s[0] || isspace((unsigned char)s[0])) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end) return -1;
    if (errno == ERANGE) *overflow = 1;
    *out = v;
    return 0;
}

/* Strict float: the whole string is one strtod number. */
static int parse_double(const char *s, double *out) {
    if (!s[0] || isspace((unsigned char)s[0])) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out) {
    static const char *const t[] = {"true", "yes", "on", "1"}, *const f[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, t[i]) == 0) { *out = 1; return 0; }
        if (strcasecmp(s, f[i]) == 0) { *out = 0; return 0; }
    }
    return -1;
}

int qsnn_config_key_n_names(const qsnn_config_key *k) {
    int n = 0;
    if (k->names)
        while (k->names[n]) n++;
    return n;
}

static int find_name(const qsnn_config_key *k, const char *s) {
    for (int i = 0; k->names && k->names[i]; i++)
        if (strcmp(k->names[i], s) == 0) return i;
    return -1;
}

const qsnn_config_key *qsnn_config_key_find(const char *path) {
    for (int i = 0; i < qsnn_config_n_keys; i++)
        if (strcmp(qsnn_config_keys[i].path, path) == 0) return &qsnn_config_keys[i];
    return NULL;
}

const char *qsnn_config_key_type_name(const qsnn_config_key *k) {
    switch (k->type) {
    case QSNN_KEY_INT: case QSNN_KEY_OUTPUTS: return "int";
    case QSNN_KEY_FLOAT: return "float";
    case QSNN_KEY_BOOL: return "bool";
    case QSNN_KEY_STRING: return "string";
    case QSNN_KEY_ENUM: case QSNN_KEY_ENUM_STR: return "enum";
    case QSNN_KEY_HIDDEN: case QSNN_KEY_LAYER_INTS: return "int list";
    case QSNN_KEY_LAYERS: return "layer list";
    case QSNN_KEY_LAYER_NAMES: return "name list";
    }
    return "?";
}

static int is_int_type(const qsnn_config_key *k) {
    return k->type == QSNN_KEY_INT || k->type == QSNN_KEY_HIDDEN || k->type == QSNN_KEY_OUTPUTS ||
           k->type == QSNN_KEY_LAYER_INTS;
}

/* ---- ranges ---------------------------------------------------------------------------------- */

static void number_range_text(const qsnn_config_key *k, char *buf, size_t n) {
    const unsigned f = k->flags;
    const int lo = !!(f & QSNN_KEY_HAS_MIN), hi = !!(f & QSNN_KEY_HAS_MAX);
    const char *off = (f & QSNN_KEY_ZERO_OFF) ? "0 (off) or " : "";
    if (lo && hi) {
        if (is_int_type(k))
            snprintf(buf, n, "%s%s%.17g..%.17g", off, *off ? "" : "in ", k->min, k->max);
        else
            snprintf(buf, n, "%s%s%c%g, %g%c", off, *off ? "" : "in ", (f & QSNN_KEY_MIN_OPEN) ? '(' : '[', k->min,
                     k->max, (f & QSNN_KEY_MAX_OPEN) ? ')' : ']');
    } else if (lo) {
        snprintf(buf, n, "%s%s %g", off, (f & QSNN_KEY_MIN_OPEN) ? ">" : ">=", k->min);
    } else if (hi) {
        snprintf(buf, n, "%s%s %g", off, (f & QSNN_KEY_MAX_OPEN) ? "<" : "<=", k->max);
    } else {
        snprintf(buf, n, "%s", "");
    }
}

void qsnn_config_key_range_text(const qsnn_config_key *k, char *buf, size_t n) {
    if (!n) return;
    buf[0] = 0;
    switch (k->type) {
    case QSNN_KEY_ENUM:
    case QSNN_KEY_ENUM_STR: {
        size_t len = (size_t)snprintf(buf, n, "one of ");
        for (int i = 0; k->names[i] && len < n; i++)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", k->names[i]);
        break;
    }
    case QSNN_KEY_BOOL: snprintf(buf, n, "true or false"); break;
    case QSNN_KEY_STRING:
    case QSNN_KEY_LAYER_NAMES:
        if (k->known_names) snprintf(buf, n, "one of %s", k->known_names());
        break;
    default: number_range_text(k, buf, n); break;
    }
}

/* Range check of one number (an int widened to double, or a float). */
static int check_number(const qsnn_config_key *k, double v, char *err, size_t n) {
    const unsigned f = k->flags;
    if (!isfinite(v)) {
        set_err(err, n, "must be a finite number");
        return -1;
    }
    if ((f & QSNN_KEY_ZERO_OFF) && v == 0.0) return 0;
    int ok = 1;
    if (f & QSNN_KEY_HAS_MIN) ok = ok && ((f & QSNN_KEY_MIN_OPEN) ? v > k->min : v >= k->min);
    if (f & QSNN_KEY_HAS_MAX) ok = ok && ((f & QSNN_KEY_MAX_OPEN) ? v < k->max : v <= k->max);
    if (ok) return 0;
    char r[128];
    number_range_text(k, r, sizeof r);
    set_err(err, n, "must be %s", r);
    return -1;
}

static int check_string(const qsnn_config_key *k, const char *s, char *err, size_t n) {
    if (!s[0] && !(k->known && k->known(s))) { /* a key may give "" a meaning of its own */
        set_err(err, n, "must not be empty");
        return -1;
    }
    if (k->known && !k->known(s)) {
        set_err(err, n, "unknown (known: %s)", k->known_names ? k->known_names() : "?");
        return -1;
    }
    return 0;
}

static int check_layer_ints_count(int count, char *err, size_t n) {
    if (count < 0 || count > QSNN_MAX_LAYERS) {
        set_err(err, n, "needs 0..%d entries (one per layer), got %d", QSNN_MAX_LAYERS, count);
        return -1;
    }
    return 0;
}

static int check_list_count(const qsnn_config_key *k, int count, char *err, size_t n);

/* Entry i of a LAYER_NAMES list: "[i] = 'x': ..." (the caller puts the key's path in front). */
static int check_layer_name(const qsnn_config_key *k, const char *s, int i, char *err, size_t n) {
    const size_t max = sizeof(((qsnn_layer_names *)0)->v[0]) - 1;
    if (strlen(s) > max) {
        set_err(err, n, "[%d] = '%.100s': longer than %zu characters", i, s, max);
        return -1;
    }
    if (k->known && !k->known(s)) {
        set_err(err, n, "[%d] = '%.100s': unknown (known: %s)", i, s, k->known_names ? k->known_names() : "?");
        return -1;
    }
    return 0;
}

/* LAYER_NAMES from its entries; cfg is written only when every entry is valid. */
static int set_layer_names(const qsnn_config_key *k, qsnn_config *cfg, const char *const *items, int n_items,
                           char *err, size_t n) {
    if (check_layer_ints_count(n_items, err, n)) return -1;
    for (int i = 0; i < n_items; i++)
        if (check_layer_name(k, items[i], i, err, n)) return -1;
    qsnn_layer_names *ln = field(k, cfg);
    memset(ln, 0, sizeof *ln);
    ln->n = n_items;
    for (int i = 0; i < n_items; i++) memcpy(ln->v[i], items[i], strlen(items[i]));
    return 0;
}

static int check_hidden_count(int count, char *err, size_t n) {
    if (count < 1 || count > QSNN_MAX_LAYERS - 1) {
        set_err(err, n, "needs 1..%d hidden layer sizes, got %d", QSNN_MAX_LAYERS - 1, count);
        return -1;
    }
    return 0;
}

int qsnn_config_key_check(const qsnn_config_key *k, const qsnn_config *cfg, char *err, size_t n) {
    const void *p = cfield(k, cfg);
    switch (k->type) {
    case QSNN_KEY_INT: return check_number(k, (double)read_int(p, k->size), err, n);
    case QSNN_KEY_FLOAT: return check_number(k, read_float(p, k->size), err, n);
    case QSNN_KEY_BOOL: {
        long long v = read_int(p, k->size);
        if (v != 0 && v != 1) {
            set_err(err, n, "must be true or false (0 or 1)");
            return -1;
        }
        return 0;
    }
    case QSNN_KEY_STRING:
    case QSNN_KEY_ENUM_STR: {
        if (!memchr(p, 0, k->size)) {
            set_err(err, n, "not NUL-terminated");
            return -1;
        }
        if (k->type == QSNN_KEY_STRING) return check_string(k, p, err, n);
        if (find_name(k, p) >= 0) return 0;
        char r[256];
        qsnn_config_key_range_text(k, r, sizeof r);
        set_err(err, n, "must be %s", r);
        return -1;
    }
    case QSNN_KEY_ENUM: {
        long long v = read_int(p, k->size);
        if (v >= 0 && v < qsnn_config_key_n_names(k)) return 0;
        char r[256];
        qsnn_config_key_range_text(k, r, sizeof r);
        set_err(err, n, "must be %s", r);
        return -1;
    }
    case QSNN_KEY_HIDDEN: {
        const qsnn_net_cfg *m = &cfg->model;
        if (check_hidden_count(m->n_layers - 1, err, n)) return -1;
        for (int i = 0; i < m->n_layers - 1; i++) {
            char r[128];
            if (check_number(k, m->sizes[i], r, sizeof r)) {
                set_err(err, n, "entry %d = %d: %s", i + 1, m->sizes[i], r);
                return -1;
            }
        }
        return 0;
    }
    case QSNN_KEY_LAYER_INTS: {
        const qsnn_layer_ints *li = p;
        if (check_layer_ints_count(li->n, err, n)) return -1;
        for (int i = 0; i < li->n; i++) {
            char r[128];
            if (check_number(k, li->v[i], r, sizeof r)) {
                set_err(err, n, "entry %d = %d: %s", i + 1, li->v[i], r);
                return -1;
            }
        }
        return 0;
    }
    case QSNN_KEY_LAYER_NAMES: {
        const qsnn_layer_names *ln = p;
        if (check_layer_ints_count(ln->n, err, n)) return -1;
        for (int i = 0; i < ln->n; i++) {
            if (!memchr(ln->v[i], 0, sizeof ln->v[i])) {
                set_err(err, n, "[%d]: not NUL-terminated", i);
                return -1;
            }
            if (check_layer_name(k, ln->v[i], i, err, n)) return -1;
        }
        return 0;
    }
    case QSNN_KEY_LAYERS: {
        const qsnn_net_cfg *m = &cfg->model;
        if (m->n_specs < 0 || m->n_specs > QSNN_MAX_LAYERS - 1) {
            set_err(err, n, "needs 0..%d entries, got %d", QSNN_MAX_LAYERS - 1, m->n_specs);
            return -1;
        }
        return 0; /* each entry was checked when parsed; shapes are checked with the model */
    }
    case QSNN_KEY_OUTPUTS: {
        const qsnn_net_cfg *m = &cfg->model;
        if (m->n_layers < 1 || m->n_layers > QSNN_MAX_LAYERS) {
            set_err(err, n, "the model has %d layers (1..%d allowed)", m->n_layers, QSNN_MAX_LAYERS);
            return -1;
        }
        return check_number(k, m->sizes[m->n_layers - 1], err, n);
    }
    }
    return 0;
}

/* ---- writing values ------------------------------------------------------------------------ */

void qsnn_config_set_hidden(qsnn_config *cfg, const int *sizes, int n) {
    qsnn_net_cfg *m = &cfg->model;
    if (n < 0) n = 0;
    if (n > QSNN_MAX_LAYERS - 1) n = QSNN_MAX_LAYERS - 1;
    const int outputs = (m->n_layers >= 1 && m->n_layers <= QSNN_MAX_LAYERS) ? m->sizes[m->n_layers - 1] : 0;
    memset(m->sizes, 0, sizeof m->sizes);
    for (int i = 0; i < n; i++) m->sizes[i] = sizes[i];
    m->sizes[n] = outputs;
    m->n_layers = n + 1;
    m->n_specs = 0; /* model.hidden replaces model.layers, and the other way round */
}

/* model.layers from its entries: the specs, and placeholder sizes until qsnn_config_resolve. */
static int set_layers(qsnn_config *cfg, const char *const *items, int n_items, char *err, size_t n) {
    if (n_items > QSNN_MAX_LAYERS - 1) {
        set_err(err, n, "needs 0..%d entries, got %d", QSNN_MAX_LAYERS - 1, n_items);
        return -1;
    }
    qsnn_layer_spec spec[QSNN_MAX_LAYERS];
    int sizes[QSNN_MAX_LAYERS];
    for (int i = 0; i < n_items; i++) {
        char why[256];
        if (qsnn_layer_spec_parse(items[i], &spec[i], why, sizeof why)) {
            set_err(err, n, "entry %d '%.100s': %s", i + 1, items[i], why);
            return -1;
        }
        sizes[i] = spec[i].kind == QSNN_LAYER_DENSE ? spec[i].size : 1;
    }
    if (n_items == 0) { /* [] = not given: back to model.hidden's layers */
        cfg->model.n_specs = 0;
        return 0;
    }
    qsnn_config_set_hidden(cfg, sizes, n_items);
    memcpy(cfg->model.spec, spec, (size_t)n_items * sizeof *spec);
    cfg->model.n_specs = n_items;
    return 0;
}

/* "[a, b]" or "a, b" (items may be quoted; a layer line has no commas) into items. */
static int split_layers_text(const char *text, char *buf, size_t bn, char **items, int max, char *err, size_t n) {
    const char *s = text;
    while (isspace((unsigned char)*s)) s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (len && s[0] == '[') {
        if (s[len - 1] != ']') {
            set_err(err, n, "missing ']'");
            return -1;
        }
        s++, len -= 2;
    }
    if (len >= bn) {
        set_err(err, n, "too long");
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = 0;
    int count = 0;
    for (char *p = buf; *p || count == 0;) {
        char *end = strchr(p, ',');
        if (end) *end = 0;
        while (isspace((unsigned char)*p)) p++;
        size_t l = strlen(p);
        while (l && isspace((unsigned char)p[l - 1])) p[--l] = 0;
        if (l >= 2 && (p[0] == '"' || p[0] == '\'') && p[l - 1] == p[0]) p[l - 1] = 0, p++, l -= 2;
        if (l == 0 && !end && count == 0) break; /* "[]" */
        if (count == max) {
            set_err(err, n, "needs 0..%d entries", max);
            return -1;
        }
        items[count++] = p;
        if (!end) break;
        p = end + 1;
    }
    return count;
}

static void set_outputs(qsnn_config *cfg, int v) {
    qsnn_net_cfg *m = &cfg->model;
    if (m->n_layers < 1 || m->n_layers > QSNN_MAX_LAYERS) {
        memset(m->sizes, 0, sizeof m->sizes);
        m->n_layers = 1;
    }
    m->sizes[m->n_layers - 1] = v;
}

static void write_string(void *p, size_t size, const char *s) {
    memset(p, 0, size);
    size_t len = strlen(s);
    if (len > size - 1) len = size - 1;
    memcpy(p, s, len);
}

void qsnn_config_key_set_index(const qsnn_config_key *k, qsnn_config *cfg, int index) {
    void *p = field(k, cfg);
    switch (k->type) {
    case QSNN_KEY_ENUM_STR: write_string(p, k->size, k->names[index]); break;
    case QSNN_KEY_BOOL: write_int(p, k->size, index != 0); break;
    default: write_int(p, k->size, index); break;
    }
}

/* Parses one list item (surrounding spaces allowed) as an int of the hidden list. */
static int parse_hidden_item(const qsnn_config_key *k, const char *item, int idx, int *out, char *err, size_t n) {
    char buf[64];
    while (isspace((unsigned char)*item)) item++;
    size_t len = strlen(item);
    while (len && isspace((unsigned char)item[len - 1])) len--;
    if (len >= sizeof buf) len = sizeof buf - 1;
    memcpy(buf, item, len);
    buf[len] = 0;
    long long v;
    int ovf;
    if (parse_ll(buf, &v, &ovf)) {
        set_err(err, n, "entry %d '%s' is not an integer", idx + 1, buf);
        return -1;
    }
    char r[128];
    if ((!ovf && check_number(k, (double)v, r, sizeof r)) ||
        ((ovf || v < INT_MIN || v > INT_MAX) && snprintf(r, sizeof r, "out of range") > 0)) {
        set_err(err, n, "entry %d = %s: %s", idx + 1, buf, r);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int qsnn_config_key_parse_list(const qsnn_config_key *k, qsnn_config *cfg, const char *const *items, int n_items,
                               char *err, size_t n) {
    if (k->type == QSNN_KEY_LAYERS) return set_layers(cfg, items, n_items, err, n);
    if (k->type == QSNN_KEY_LAYER_NAMES) return set_layer_names(k, cfg, items, n_items, err, n);
    if (k->type != QSNN_KEY_HIDDEN && k->type != QSNN_KEY_LAYER_INTS) {
        set_err(err, n, "not a list");
        return -1;
    }
    if (check_list_count(k, n_items, err, n)) return -1;
    int v[QSNN_MAX_LAYERS];
    for (int i = 0; i < n_items; i++)
        if (parse_hidden_item(k, items[i], i, &v[i], err, n)) return -1;
    if (k->type == QSNN_KEY_HIDDEN) {
        qsnn_config_set_hidden(cfg, v, n_items);
    } else {
        qsnn_layer_ints *li = field(k, cfg);
        memset(li, 0, sizeof *li);
        li->n = n_items;
        memcpy(li->v, v, (size_t)n_items * sizeof *v);
    }
    return 0;
}

static int check_list_count(const qsnn_config_key *k, int count, char *err, size_t n) {
    return k->type == QSNN_KEY_HIDDEN ? check_hidden_count(count, err, n) : check_layer_ints_count(count, err, n);
}

static int parse_hidden_text(const qsnn_config_key *k, qsnn_config *cfg, const char *text, char *err, size_t n) {
    char buf[512];
    const char *s = text;
    while (isspace((unsigned char)*s)) s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (len && s[0] == '[') {
        if (len < 2 || s[len - 1] != ']') {
            set_err(err, n, "not a list of integers (write [500,200] or 500)");
            return -1;
        }
        s++;
        len -= 2;
    }
    if (len >= sizeof buf) {
        set_err(err, n, "list too long");
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = 0;
    const char *items[QSNN_MAX_LAYERS + 1];
    int count = 0;
    char *p = buf;
    for (;;) {
        char *comma = strchr(p, ',');
        if (count == QSNN_MAX_LAYERS) return check_list_count(k, QSNN_MAX_LAYERS + 1, err, n);
        items[count++] = p;
        if (!comma) break;
        *comma = 0;
        p = comma + 1;
    }
    if (count == 1) { /* "[]" or "" */
        const char *q = items[0];
        while (isspace((unsigned char)*q)) q++;
        if (!*q) return qsnn_config_key_parse_list(k, cfg, items, 0, err, n);
    }
    return qsnn_config_key_parse_list(k, cfg, items, count, err, n);
}

int qsnn_config_key_parse(const qsnn_config_key *k, qsnn_config *cfg, const char *text, char *err, size_t n) {
    void *p = field(k, cfg);
    switch (k->type) {
    case QSNN_KEY_INT:
    case QSNN_KEY_OUTPUTS: {
        long long v;
        int ovf;
        if (parse_ll(text, &v, &ovf)) {
            set_err(err, n, "not an integer");
            return -1;
        }
        const size_t size = k->type == QSNN_KEY_OUTPUTS ? sizeof(int) : k->size;
        if (!ovf && check_number(k, (double)v, err, n)) return -1;
        if (ovf || v < int_min(size) || v > int_max(size)) {
            set_err(err, n, "out of range for a %zu-bit integer", 8 * size);
            return -1;
        }
        if (k->type == QSNN_KEY_OUTPUTS) set_outputs(cfg, (int)v);
        else write_int(p, k->size, v);
        return 0;
    }
    case QSNN_KEY_FLOAT: {
        double v;
        if (parse_double(text, &v)) {
            set_err(err, n, "not a number");
            return -1;
        }
        if (!isfinite(v)) {
            set_err(err, n, "must be a finite number");
            return -1;
        }
        if (k->size == sizeof(float) && fabs(v) > FLT_MAX) {
            set_err(err, n, "out of range for a float");
            return -1;
        }
        const double stored = k->size == sizeof(float) ? (double)(float)v : v;
        if (check_number(k, stored, err, n)) return -1;
        write_float(p, k->size, v);
        return 0;
    }
    case QSNN_KEY_BOOL: {
        int b;
        if (parse_bool(text, &b)) {
            set_err(err, n, "not a boolean (true or false)");
            return -1;
        }
        write_int(p, k->size, b);
        return 0;
    }
    case QSNN_KEY_STRING: {
        if (strlen(text) > k->size - 1) {
            set_err(err, n, "longer than %zu characters", k->size - 1);
            return -1;
        }
        if (check_string(k, text, err, n)) return -1;
        write_string(p, k->size, text);
        return 0;
    }
    case QSNN_KEY_ENUM:
    case QSNN_KEY_ENUM_STR: {
        int idx = find_name(k, text);
        if (idx < 0) {
            char r[256];
            qsnn_config_key_range_text(k, r, sizeof r);
            set_err(err, n, "must be %s", r);
            return -1;
        }
        qsnn_config_key_set_index(k, cfg, idx);
        return 0;
    }
    case QSNN_KEY_HIDDEN:
    case QSNN_KEY_LAYER_INTS: return parse_hidden_text(k, cfg, text, err, n);
    case QSNN_KEY_LAYERS: {
        char buf[2048], *items[QSNN_MAX_LAYERS];
        const int count = split_layers_text(text, buf, sizeof buf, items, QSNN_MAX_LAYERS - 1, err, n);
        if (count < 0) return -1;
        return set_layers(cfg, (const char *const *)items, count, err, n);
    }
    case QSNN_KEY_LAYER_NAMES: { /* "[qil, lsq]", "qil,lsq", "qil" or "[]"; more entries than layers: counted */
        char buf[2048], *items[64];
        const int count = split_layers_text(text, buf, sizeof buf, items, 64, err, n);
        if (count < 0) return -1;
        return set_layer_names(k, cfg, (const char *const *)items, count, err, n);
    }
    }
    return -1;
}

/* ---- formatting ------------------------------------------------------------------------------ */

static void yaml_quote(const char *s, char *buf, size_t n) {
    size_t len = 0;
#define PUT(c) do { if (len + 1 < n) buf[len] = (c); len++; } while (0)
    PUT('"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"': PUT('\\'); PUT('"'); break;
        case '\\': PUT('\\'); PUT('\\'); break;
        case '\n': PUT('\\'); PUT('n'); break;
        case '\t': PUT('\\'); PUT('t'); break;
        case '\r': PUT('\\'); PUT('r'); break;
        default:
            if (*c < 0x20 || *c == 0x7f) {
                static const char hex[] = "0123456789abcdef";
                PUT('\\'); PUT('x'); PUT(hex[*c >> 4]); PUT(hex[*c & 15]);
            } else {
                PUT((char)*c);
            }
        }
    }
    PUT('"');
#undef PUT
    if (n) buf[len < n ? len : n - 1] = 0;
}

void qsnn_config_key_format(const qsnn_config_key *k, const qsnn_config *cfg, int yaml, char *buf, size_t n) {
    const void *p = cfield(k, cfg);
    const qsnn_net_cfg *m = &cfg->model;
    switch (k->type) {
    case QSNN_KEY_INT: snprintf(buf, n, "%lld", read_int(p, k->size)); break;
    case QSNN_KEY_FLOAT: {
        const double v = read_float(p, k->size);
        if (!yaml) {
            snprintf(buf, n, "%g", v);
            break;
        }
        /* The shortest %.Ng that reads back to the same bits: at most 9 digits for a float
         * (%.9g always round-trips), 17 for a double. "0.95" rather than "0.949999988". */
        const int is_float = k->size == sizeof(float), max_digits = is_float ? 9 : 17;
        for (int digits = 6; digits <= max_digits; digits++) {
            snprintf(buf, n, "%.*g", digits, v);
            const double back = strtod(buf, NULL);
            if (is_float ? (float)back == (float)v : back == v) break;
        }
        break;
    }
    case QSNN_KEY_BOOL: snprintf(buf, n, "%s", read_int(p, k->size) ? "true" : "false"); break;
    case QSNN_KEY_STRING:
    case QSNN_KEY_ENUM_STR: {
        char tmp[QSNN_PATH_MAX];
        size_t len = strnlen(p, k->size < sizeof tmp ? k->size : sizeof tmp - 1);
        memcpy(tmp, p, len);
        tmp[len] = 0;
        if (yaml && (k->type == QSNN_KEY_STRING || find_name(k, tmp) < 0)) yaml_quote(tmp, buf, n);
        else snprintf(buf, n, "%s", tmp);
        break;
    }
    case QSNN_KEY_ENUM: {
        long long v = read_int(p, k->size);
        if (v >= 0 && v < qsnn_config_key_n_names(k)) snprintf(buf, n, "%s", k->names[v]);
        else snprintf(buf, n, "%lld", v);
        break;
    }
    case QSNN_KEY_HIDDEN: {
        size_t len = (size_t)snprintf(buf, n, "[");
        const int count = (m->n_layers >= 1 && m->n_layers <= QSNN_MAX_LAYERS) ? m->n_layers - 1 : 0;
        for (int i = 0; i < count && len < n; i++)
            len += (size_t)snprintf(buf + len, n - len, "%s%d", i ? ", " : "", m->sizes[i]);
        if (len < n) snprintf(buf + len, n - len, "]");
        break;
    }
    case QSNN_KEY_LAYER_INTS: {
        const qsnn_layer_ints *li = p;
        size_t len = (size_t)snprintf(buf, n, "[");
        for (int i = 0; i < li->n && i < QSNN_MAX_LAYERS && len < n; i++)
            len += (size_t)snprintf(buf + len, n - len, "%s%d", i ? ", " : "", li->v[i]);
        if (len < n) snprintf(buf + len, n - len, "]");
        break;
    }
    case QSNN_KEY_LAYER_NAMES: {
        const qsnn_layer_names *ln = p;
        size_t len = (size_t)snprintf(buf, n, "[");
        for (int i = 0; i < ln->n && i < QSNN_MAX_LAYERS && len < n; i++) {
            char name[sizeof ln->v[0] + 1], q[4 * sizeof ln->v[0] + 8];
            snprintf(name, sizeof name, "%.*s", (int)strnlen(ln->v[i], sizeof ln->v[i]), ln->v[i]);
            /* registry names are identifiers and stay bare; anything else is quoted for YAML */
            int bare = name[0] != 0;
            for (const char *c = name; *c && bare; c++) bare = isalnum((unsigned char)*c) || *c == '_';
            if (yaml && !bare) yaml_quote(name, q, sizeof q);
            else snprintf(q, sizeof q, "%s", name);
            len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", q);
        }
        if (len < n) snprintf(buf + len, n - len, "]");
        break;
    }
    case QSNN_KEY_LAYERS: {
        size_t len = (size_t)snprintf(buf, n, "[");
        for (int i = 0; i < m->n_specs && i < QSNN_MAX_LAYERS - 1 && len < n; i++) {
            char line[256], q[300];
            qsnn_layer_spec_format(&m->spec[i], line, sizeof line);
            if (yaml) yaml_quote(line, q, sizeof q);
            len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", yaml ? q : line);
        }
        if (len < n) snprintf(buf + len, n - len, "]");
        break;
    }
    case QSNN_KEY_OUTPUTS:
        snprintf(buf, n, "%d", (m->n_layers >= 1 && m->n_layers <= QSNN_MAX_LAYERS) ? m->sizes[m->n_layers - 1] : 0);
        break;
    }
}

/* ---- suggestions ----------------------------------------------------------------------------- */

static int edit_distance(const char *a, const char *b) {
    enum { MAXL = 96 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAXL || lb >= MAXL) return INT_MAX / 2;
    int row[MAXL + 1];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *last_component(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

int qsnn_config_key_suggest(const char *path, char *buf, size_t n) {
    int best = INT_MAX;
    char best_name[128] = "";
    /* Candidates: every key and every section (each proper prefix of a key path). */
    for (int i = 0; i < qsnn_config_n_keys; i++) {
        const char *kp = qsnn_config_keys[i].path;
        for (const char *end = strchr(kp, '.');; end = strchr(end + 1, '.')) {
            char cand[128];
            size_t len = end ? (size_t)(end - kp) : strlen(kp);
            if (len >= sizeof cand) break;
            memcpy(cand, kp, len);
            cand[len] = 0;
            int d = edit_distance(path, cand);
            if (d < best) {
                best = d;
                snprintf(best_name, sizeof best_name, "%s", cand);
            }
            if (!end) break;
        }
    }
    if (best <= 1) {
        snprintf(buf, n, "%s", best_name);
        return 1;
    }
    /* The same key name in another section ("train.steps" -> "data.steps"). */
    const char *leaf = last_component(path);
    for (int i = 0; i < qsnn_config_n_keys; i++)
        if (strcmp(last_component(qsnn_config_keys[i].path), leaf) == 0) {
            snprintf(buf, n, "%s", qsnn_config_keys[i].path);
            return 1;
        }
    const size_t plen = strlen(path);
    if ((best <= 2 && plen >= 5) || (best <= 3 && plen >= 12)) {
        snprintf(buf, n, "%s", best_name);
        return 1;
    }
    return 0;
}
