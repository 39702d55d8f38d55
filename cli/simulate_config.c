/* The simulate YAML, read with libyaml's document API (every node keeps its line), checked key by
 * key against the small schema in simulate_config.h. */
#include "cli/simulate_config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- quantities with units -------------------------------------------------------------------- */

static int unit_part(const char *s, size_t len, double *scale, const char **base) {
    static const char *const bases[] = {"Hz", "s", "V", "S", "F", "A"};
    for (int b = 0; b < 6; b++) {
        const size_t bl = strlen(bases[b]);
        if (len < bl || strncmp(s + len - bl, bases[b], bl)) continue;
        const size_t pl = len - bl;
        double f;
        if (pl == 0) f = 1.0;
        else if (pl == 1 && s[0] == 'k') f = 1e3;
        else if (pl == 1 && s[0] == 'M') f = 1e6;
        else if (pl == 1 && s[0] == 'm') f = 1e-3;
        else if ((pl == 1 && s[0] == 'u') || (pl == 2 && !strncmp(s, "\xc2\xb5", 2))) f = 1e-6;
        else if (pl == 1 && s[0] == 'n') f = 1e-9;
        else if (pl == 1 && s[0] == 'p') f = 1e-12;
        else continue;
        *scale = f;
        *base = bases[b];
        return 0;
    }
    return -1;
}

static const char *dim_name(const char *unit) {
    if (!strcmp(unit, "s")) return "a time";
    if (!strcmp(unit, "V")) return "a voltage";
    if (!strcmp(unit, "S")) return "a conductance";
    if (!strcmp(unit, "F")) return "a capacitance";
    if (!strcmp(unit, "A")) return "a current";
    if (!strcmp(unit, "Hz")) return "a rate";
    if (!strcmp(unit, "V/s")) return "a voltage per time";
    return "a plain number";
}

int qsnn_parse_quantity(const char *text, const char *unit, double *out, char *why, size_t n) {
    char *end;
    errno = 0;
    const double v = strtod(text, &end);
    if (end == text || errno == ERANGE) {
        snprintf(why, n, "expected %s, got '%s'", dim_name(unit), text);
        return -1;
    }
    while (*end == ' ') end++;
    size_t len = strlen(end);
    while (len && end[len - 1] == ' ') len--;
    double scale = 1.0;
    if (len) {
        char dim[16];
        const char *slash = memchr(end, '/', len);
        double s1, s2 = 1.0;
        const char *b1, *b2 = NULL;
        const size_t l1 = slash ? (size_t)(slash - end) : len;
        if (unit_part(end, l1, &s1, &b1) || (slash && unit_part(slash + 1, len - l1 - 1, &s2, &b2))) {
            snprintf(why, n, "unknown unit '%.*s' in '%s' (s, V, S, F, A, Hz with prefixes k m u n p)", (int)len, end,
                     text);
            return -1;
        }
        snprintf(dim, sizeof dim, "%s%s%s", b1, b2 ? "/" : "", b2 ? b2 : "");
        if (strcmp(dim, unit)) {
            snprintf(why, n, "expected %s (%s), got '%s'", dim_name(unit), unit, text);
            return -1;
        }
        scale = s1 / s2;
    }
    *out = v * scale;
    if (!isfinite(*out)) {
        snprintf(why, n, "'%s' is not a finite number", text);
        return -1;
    }
    return 0;
}

/* ---- the document ----------------------------------------------------------------------------- */

typedef struct P {
    qsnn_ctx *ctx;
    const char *file;
    yaml_document_t *doc;
} P;

static qsnn_status failn(P *p, yaml_node_t *node, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static qsnn_status failn(P *p, yaml_node_t *node, const char *key, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qsnn_fail(p->ctx, QSNN_ERR_CONFIG, "%s:%lu: %s: %s", p->file, node ? (unsigned long)node->start_mark.line + 1 : 0,
                     key, msg);
}

static yaml_node_t *node(P *p, int id) { return yaml_document_get_node(p->doc, id); }

static qsnn_status scalar(P *p, yaml_node_t *n, const char *key, const char **out) {
    if (!n || n->type != YAML_SCALAR_NODE) return failn(p, n, key, "expected a single value");
    *out = (const char *)n->data.scalar.value;
    return QSNN_OK;
}

static qsnn_status quantity(P *p, yaml_node_t *n, const char *key, const char *unit, double *out) {
    const char *s = NULL;
    qsnn_status st = scalar(p, n, key, &s);
    if (st) return st;
    char why[256];
    if (qsnn_parse_quantity(s, unit, out, why, sizeof why)) return failn(p, n, key, "%s", why);
    return QSNN_OK;
}

static qsnn_status integer(P *p, yaml_node_t *n, const char *key, long long lo, long long hi, long long *out) {
    const char *s = NULL;
    qsnn_status st = scalar(p, n, key, &s);
    if (st) return st;
    char *end;
    errno = 0;
    const long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return failn(p, n, key, "expected an integer in %lld..%lld, got '%s'", lo, hi, s);
    *out = v;
    return QSNN_OK;
}

static qsnn_status boolean(P *p, yaml_node_t *n, const char *key, int *out) {
    const char *s = NULL;
    qsnn_status st = scalar(p, n, key, &s);
    if (st) return st;
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")) *out = 1;
    else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")) *out = 0;
    else return failn(p, n, key, "expected true or false, got '%s'", s);
    return QSNN_OK;
}

static qsnn_status mapping(P *p, yaml_node_t *n, const char *key) {
    if (!n || n->type != YAML_MAPPING_NODE) return failn(p, n, key, "expected a mapping (key: value)");
    return QSNN_OK;
}

static qsnn_status sequence(P *p, yaml_node_t *n, const char *key) {
    if (!n || n->type != YAML_SEQUENCE_NODE) return failn(p, n, key, "expected a list");
    return QSNN_OK;
}

#define FOR_PAIRS(n, pr) for (yaml_node_pair_t *pr = (n)->data.mapping.pairs.start; pr < (n)->data.mapping.pairs.top; pr++)
#define FOR_ITEMS(n, it) for (yaml_node_item_t *it = (n)->data.sequence.items.start; it < (n)->data.sequence.items.top; it++)
#define N_ITEMS(n) ((n)->data.sequence.items.top - (n)->data.sequence.items.start)

static const char *key_of(P *p, yaml_node_pair_t *pr) {
    yaml_node_t *k = node(p, pr->key);
    return k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?";
}

/* A list of integers into a new int32 array. */
static qsnn_status int_list(P *p, yaml_node_t *n, const char *key, long long lo, long long hi, int32_t **out,
                            int64_t *count) {
    qsnn_status st = sequence(p, n, key);
    if (st) return st;
    const int64_t m = N_ITEMS(n);
    int32_t *a = qsnn_malloc(p->ctx, (size_t)(m ? m : 1) * sizeof *a);
    if (!a) return QSNN_ERR_NOMEM;
    int64_t k = 0;
    FOR_ITEMS(n, it) {
        long long v = 0;
        if ((st = integer(p, node(p, *it), key, lo, hi, &v))) {
            qsnn_free(p->ctx, a);
            return st;
        }
        a[k++] = (int32_t)v;
    }
    *out = a;
    *count = m;
    return QSNN_OK;
}

/* ---- populations ----------------------------------------------------------------------------- */

static qsnn_status load_init(P *p, qsnn_population *Q, yaml_node_t *n, char *key) {
    qsnn_status st = mapping(p, n, key);
    if (st) return st;
    FOR_PAIRS(n, pr) {
        const char *k = key_of(p, pr);
        char kk[512];
        snprintf(kk, sizeof kk, "%s.%s", key, k);
        const int s = qsnn_ct_state_index(Q->model, k);
        yaml_node_t *v = node(p, pr->value);
        if (s < 0) return failn(p, node(p, pr->key), kk, "model %s has no state '%s'", Q->model->name, k);
        const char *unit = Q->model->states[s].unit;
        qsnn_state_init *in = &Q->init[s];
        in->set = 1;
        if (v->type == YAML_SCALAR_NODE) {
            in->kind = QSNN_INIT_CONST;
            if ((st = quantity(p, v, kk, unit, &in->a))) return st;
            continue;
        }
        if ((st = mapping(p, v, kk))) return st;
        if (v->data.mapping.pairs.top - v->data.mapping.pairs.start != 1)
            return failn(p, v, kk, "expected one of {uniform: [low, high]} or {normal: [mean, sd]}");
        yaml_node_pair_t *d = v->data.mapping.pairs.start;
        const char *kind = key_of(p, d);
        if (!strcmp(kind, "uniform")) in->kind = QSNN_INIT_UNIFORM;
        else if (!strcmp(kind, "normal")) in->kind = QSNN_INIT_NORMAL;
        else return failn(p, node(p, d->key), kk, "unknown distribution '%s' (uniform, normal)", kind);
        yaml_node_t *ab = node(p, d->value);
        if ((st = sequence(p, ab, kk))) return st;
        if (N_ITEMS(ab) != 2) return failn(p, ab, kk, "expected two values");
        if ((st = quantity(p, node(p, ab->data.sequence.items.start[0]), kk, unit, &in->a)) ||
            (st = quantity(p, node(p, ab->data.sequence.items.start[1]), kk, unit, &in->b)))
            return st;
        if (in->kind == QSNN_INIT_UNIFORM && !(in->a <= in->b)) return failn(p, ab, kk, "low must not exceed high");
        if (in->kind == QSNN_INIT_NORMAL && in->b < 0.0) return failn(p, ab, kk, "sd must be >= 0");
    }
    return QSNN_OK;
}

static qsnn_status load_pop(P *p, qsnn_popnet *net, yaml_node_t *n, int idx) {
    char key[96];
    snprintf(key, sizeof key, "populations[%d]", idx);
    qsnn_status st = mapping(p, n, key);
    if (st) return st;
    const char *name = NULL, *model = NULL;
    long long count = -1;
    yaml_node_t *name_node = n;
    FOR_PAIRS(n, pr) {
        const char *k = key_of(p, pr);
        yaml_node_t *v = node(p, pr->value);
        char kk[256];
        snprintf(kk, sizeof kk, "%s.%s", key, k);
        if (!strcmp(k, "name")) st = scalar(p, v, kk, &name), name_node = v;
        else if (!strcmp(k, "model")) st = scalar(p, v, kk, &model);
        else if (!strcmp(k, "n")) st = integer(p, v, kk, 1, 100000000, &count);
        else if (strcmp(k, "rate") && strcmp(k, "integration") && strcmp(k, "params") && strcmp(k, "init") &&
                 strcmp(k, "record"))
            return failn(p, node(p, pr->key), kk,
                         "unknown key (known: name, n, model, rate, integration, params, init, record)");
        if (st) return st;
    }
    if (!name) return failn(p, n, key, "name is required");
    if (!model) return failn(p, n, key, "model is required (%s, poisson)", qsnn_ct_model_names());
    if (count < 0) return failn(p, n, key, "n is required");
    const int poisson = !strcmp(model, "poisson");
    const qsnn_ct_model *m = poisson ? NULL : qsnn_ct_model_get(model);
    if (!poisson && !m) return failn(p, n, key, "unknown model '%s' (%s, poisson)", model, qsnn_ct_model_names());
    int pi;
    if ((st = qsnn_popnet_add_pop(net, name, (int)count, m, 0.0, &pi))) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", qsnn_last_error(p->ctx));
        return failn(p, name_node, key, "%s", msg);
    }
    qsnn_population *Q = &net->pop[pi];
    FOR_PAIRS(n, pr) {
        const char *k = key_of(p, pr);
        yaml_node_t *v = node(p, pr->value);
        char kk[256];
        snprintf(kk, sizeof kk, "%s.%s", name, k);
        if (!strcmp(k, "rate")) {
            if (!poisson) return failn(p, node(p, pr->key), kk, "only Poisson sources have a rate");
            if ((st = quantity(p, v, kk, "Hz", &Q->rate))) return st;
            if (Q->rate < 0.0) return failn(p, v, kk, "must be >= 0");
        } else if (!strcmp(k, "integration")) {
            const char *s = NULL;
            if ((st = scalar(p, v, kk, &s))) return st;
            if (!strcmp(s, "exact")) Q->exact = 1;
            else if (!strcmp(s, "euler")) Q->exact = 0;
            else return failn(p, v, kk, "expected euler or exact, got '%s'", s);
            if (Q->exact && (!m || !m->has_exact)) return failn(p, v, kk, "model %s has no exact update", model);
        } else if (!strcmp(k, "params")) {
            if (poisson) return failn(p, node(p, pr->key), kk, "Poisson sources take only a rate");
            if ((st = mapping(p, v, kk))) return st;
            FOR_PAIRS(v, q) {
                const char *pk = key_of(p, q);
                char pkk[200];
                snprintf(pkk, sizeof pkk, "%s.params.%s", name, pk);
                const int j = qsnn_ct_param_index(m, pk);
                if (j < 0) {
                    char list[512];
                    size_t off = 0;
                    for (int t = 0; t < m->n_params && off < sizeof list; t++)
                        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", t ? ", " : "", m->params[t].name);
                    return failn(p, node(p, q->key), pkk, "model %s has no parameter '%s' (%s)", model, pk, list);
                }
                if ((st = quantity(p, node(p, q->value), pkk, m->params[j].unit, &Q->params[j]))) return st;
            }
        } else if (!strcmp(k, "init")) {
            if (poisson) return failn(p, node(p, pr->key), kk, "Poisson sources have no state");
            if ((st = load_init(p, Q, v, kk))) return st;
        } else if (!strcmp(k, "record")) {
            if (poisson) return failn(p, node(p, pr->key), kk, "Poisson sources have no state to record");
            int64_t c;
            qsnn_free(p->ctx, Q->record);
            Q->record = NULL;
            if ((st = int_list(p, v, kk, 0, count - 1, &Q->record, &c))) return st;
            Q->n_record = (int)c;
            for (int r = 1; r < Q->n_record; r++)
                if (Q->record[r] <= Q->record[r - 1]) return failn(p, v, kk, "neurons must be ascending, no duplicates");
        }
    }
    return QSNN_OK;
}

/* ---- projections ----------------------------------------------------------------------------- */

static qsnn_status load_proj(P *p, qsnn_popnet *net, yaml_node_t *n, int idx) {
    char key[96];
    snprintf(key, sizeof key, "projections[%d]", idx);
    qsnn_status st = mapping(p, n, key);
    if (st) return st;
    if (net->n_proj == QSNN_PROJ_MAX) return failn(p, n, key, "more than %d projections", QSNN_PROJ_MAX);
    qsnn_projection *J = &net->proj[net->n_proj];
    memset(J, 0, sizeof *J);
    J->pre = J->post = J->target = -1;
    J->autapses = 1;
    const char *from = NULL, *to = NULL, *target = NULL;
    yaml_node_t *weight = NULL, *target_node = n, *pre = NULL, *post = NULL, *weights = NULL, *pn = NULL;
    FOR_PAIRS(n, pr) {
        const char *k = key_of(p, pr);
        yaml_node_t *v = node(p, pr->value);
        char kk[256];
        snprintf(kk, sizeof kk, "%s.%s", key, k);
        st = QSNN_OK;
        if (!strcmp(k, "from")) st = scalar(p, v, kk, &from);
        else if (!strcmp(k, "to")) st = scalar(p, v, kk, &to);
        else if (!strcmp(k, "target")) st = scalar(p, v, kk, &target), target_node = v;
        else if (!strcmp(k, "weight")) weight = v;
        else if (!strcmp(k, "delay")) st = quantity(p, v, kk, "s", &J->delay);
        else if (!strcmp(k, "p")) pn = v;
        else if (!strcmp(k, "autapses")) st = boolean(p, v, kk, &J->autapses);
        else if (!strcmp(k, "pre")) pre = v;
        else if (!strcmp(k, "post")) post = v;
        else if (!strcmp(k, "weights")) weights = v;
        else
            return failn(p, node(p, pr->key), kk,
                         "unknown key (known: from, to, target, weight, delay, p, autapses, pre, post, weights)");
        if (st) return st;
        if (!strcmp(k, "delay") && J->delay < 0.0) return failn(p, v, kk, "must be >= 0");
    }
    if (!from || !to) return failn(p, n, key, "from and to are required");
    if ((J->pre = qsnn_popnet_find_pop(net, from)) < 0) return failn(p, n, key, "unknown population '%s'", from);
    if ((J->post = qsnn_popnet_find_pop(net, to)) < 0) return failn(p, n, key, "unknown population '%s'", to);
    const qsnn_population *Q = &net->pop[J->post];
    snprintf(J->name, sizeof J->name, "%s->%s:%s", from, to, target ? target : "?");
    if (!Q->model) return failn(p, n, key, "population %s is a Poisson source and takes no input", to);
    if (!target) return failn(p, n, key, "target is required (a state of %s, e.g. ge or gi)", Q->model->name);
    if ((J->target = qsnn_ct_state_index(Q->model, target)) < 0)
        return failn(p, target_node, key, "model %s has no state '%s'", Q->model->name, target);
    const char *unit = Q->model->states[J->target].unit;
    char kk[160];
    snprintf(kk, sizeof kk, "%s.weight", key);
    if (weight && (st = quantity(p, weight, kk, unit, &J->weight))) return st;
    if (pn) {
        if (pre || post) return failn(p, pn, key, "give either p (random) or pre/post (explicit), not both");
        snprintf(kk, sizeof kk, "%s.p", key);
        if ((st = quantity(p, pn, kk, "1", &J->p))) return st;
        if (!(J->p >= 0.0 && J->p <= 1.0)) return failn(p, pn, kk, "must be in [0, 1]");
        if (!weight) return failn(p, n, key, "weight is required");
        J->kind = QSNN_CONN_RANDOM;
    } else {
        if (!pre || !post) return failn(p, n, key, "connectivity: give p, or pre and post lists");
        int64_t a, b;
        snprintf(kk, sizeof kk, "%s.pre", key);
        if ((st = int_list(p, pre, kk, 0, net->pop[J->pre].n - 1, &J->ex_pre, &a))) return st;
        snprintf(kk, sizeof kk, "%s.post", key);
        if ((st = int_list(p, post, kk, 0, Q->n - 1, &J->ex_post, &b))) return st;
        if (a != b) return failn(p, post, key, "pre has %lld entries, post %lld", (long long)a, (long long)b);
        J->n_explicit = a;
        J->kind = QSNN_CONN_EXPLICIT;
        if (weights) {
            snprintf(kk, sizeof kk, "%s.weights", key);
            if ((st = sequence(p, weights, kk))) return st;
            if (N_ITEMS(weights) != a) return failn(p, weights, kk, "%lld weights for %lld synapses", (long long)N_ITEMS(weights), (long long)a);
            J->ex_w = qsnn_malloc(p->ctx, (size_t)(a ? a : 1) * sizeof *J->ex_w);
            if (!J->ex_w) return QSNN_ERR_NOMEM;
            int64_t k = 0;
            FOR_ITEMS(weights, it) {
                double w;
                if ((st = quantity(p, node(p, *it), kk, unit, &w))) return st;
                J->ex_w[k++] = (float)w;
            }
        } else if (!weight) {
            return failn(p, n, key, "weight (or weights) is required");
        }
    }
    net->n_proj++;
    return QSNN_OK;
}

/* ---- top level ------------------------------------------------------------------------------- */

static qsnn_status load_doc(P *p, yaml_node_t *root, qsnn_sim_config *cfg, qsnn_popnet *net) {
    qsnn_status st = mapping(p, root, "(top level)");
    if (st) return st;
    yaml_node_t *pops = NULL, *projs = NULL;
    FOR_PAIRS(root, pr) {
        const char *k = key_of(p, pr);
        yaml_node_t *v = node(p, pr->value);
        long long x;
        st = QSNN_OK;
        if (!strcmp(k, "populations")) pops = v;
        else if (!strcmp(k, "projections")) projs = v;
        else if (!strcmp(k, "dt")) {
            if (!(st = quantity(p, v, k, "s", &net->dt)) && !(net->dt > 0.0)) st = failn(p, v, k, "must be > 0");
        } else if (!strcmp(k, "duration")) {
            if (!(st = quantity(p, v, k, "s", &cfg->duration)) && !(cfg->duration >= 0.0))
                st = failn(p, v, k, "must be >= 0");
        } else if (!strcmp(k, "seed")) {
            if (!(st = integer(p, v, k, 0, (long long)9e18, &x))) cfg->seed = x;
        } else if (!strcmp(k, "threads")) {
            if (!(st = integer(p, v, k, 0, 1024, &x))) cfg->threads = (int)x;
        } else if (!strcmp(k, "engine")) {
            const char *s = NULL;
            if (!(st = scalar(p, v, k, &s))) {
                if (strcmp(s, "step") && strcmp(s, "cvode")) st = failn(p, v, k, "expected step or cvode, got '%s'", s);
                else snprintf(cfg->engine, sizeof cfg->engine, "%s", s);
            }
        } else if (!strcmp(k, "cvode")) {
            if ((st = mapping(p, v, k))) return st;
            FOR_PAIRS(v, q) {
                const char *ck = key_of(p, q);
                yaml_node_t *cv = node(p, q->value);
                char kk[64];
                snprintf(kk, sizeof kk, "cvode.%s", ck);
                if (!strcmp(ck, "rtol") || !strcmp(ck, "atol")) {
                    double t;
                    if ((st = quantity(p, cv, kk, "1", &t))) return st;
                    if (!(t > 0.0)) return failn(p, cv, kk, "must be > 0");
                    *(ck[0] == 'r' ? &cfg->cvode.rtol : &cfg->cvode.atol) = t;
                } else if (!strcmp(ck, "method")) {
                    const char *s = NULL;
                    if ((st = scalar(p, cv, kk, &s))) return st;
                    if (!strcmp(s, "auto")) cfg->cvode.method = QSNN_CVODE_AUTO;
                    else if (!strcmp(s, "adams")) cfg->cvode.method = QSNN_CVODE_ADAMS;
                    else if (!strcmp(s, "bdf")) cfg->cvode.method = QSNN_CVODE_BDF;
                    else return failn(p, cv, kk, "expected auto, adams or bdf, got '%s'", s);
                } else if (!strcmp(ck, "max_steps")) {
                    if ((st = integer(p, cv, kk, 1, 1000000000, &x))) return st;
                    cfg->cvode.max_steps = (long)x;
                } else {
                    return failn(p, node(p, q->key), kk, "unknown key (known: rtol, atol, method, max_steps)");
                }
            }
        } else {
            return failn(p, node(p, pr->key), k,
                         "unknown key (known: dt, duration, seed, engine, threads, cvode, populations, projections)");
        }
        if (st) return st;
    }
    if (!pops) return failn(p, root, "populations", "required");
    if ((st = sequence(p, pops, "populations"))) return st;
    int i = 0;
    FOR_ITEMS(pops, it) if ((st = load_pop(p, net, node(p, *it), i++))) return st;
    if (projs) {
        if ((st = sequence(p, projs, "projections"))) return st;
        i = 0;
        FOR_ITEMS(projs, it) if ((st = load_proj(p, net, node(p, *it), i++))) return st;
    }
    return QSNN_OK;
}

qsnn_status qsnn_sim_config_load(qsnn_ctx *ctx, const char *path, qsnn_sim_config *cfg, qsnn_popnet *net,
                                 char **yaml) {
    *yaml = NULL;
    memset(cfg, 0, sizeof *cfg);
    cfg->duration = 1.0;
    snprintf(cfg->engine, sizeof cfg->engine, "step");
    qsnn_cvode_opts_default(&cfg->cvode);
    FILE *f = fopen(path, "rb");
    if (!f) return qsnn_fail(ctx, QSNN_ERR_IO, "%s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *t = qsnn_malloc(ctx, cap);
            if (!t) {
                fclose(f);
                qsnn_free(ctx, text);
                return QSNN_ERR_NOMEM;
            }
            if (len) memcpy(t, text, len);
            qsnn_free(ctx, text);
            text = t;
        }
        const size_t r = fread(text + len, 1, 4096, f);
        len += r;
        if (r < 4096) break;
    }
    const int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        qsnn_free(ctx, text);
        return qsnn_fail(ctx, QSNN_ERR_IO, "%s: read error", path);
    }
    text[len] = 0;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    qsnn_status st = QSNN_OK;
    if (!yaml_parser_load(&parser, &doc)) {
        st = qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s:%lu: YAML syntax error: %s", path,
                       (unsigned long)parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
        yaml_parser_delete(&parser);
        qsnn_free(ctx, text);
        return st;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    P p = {ctx, path, &doc};
    if (!root) st = qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s: empty file", path);
    else st = load_doc(&p, root, cfg, net);
    net->seed = (uint64_t)cfg->seed;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (st) qsnn_free(ctx, text);
    else *yaml = text;
    return st;
}
