/* Configuration: defaults, YAML loading (libcyaml, schema generated from the key table), --set
 * overrides, checks, the YAML dump and the key reference.
 *
 * The libcyaml schema mirrors the sections of the key table: a top-level mapping of sections, each
 * a mapping of its keys (quant.state / quant.weight nest one level more). Every mapping is loaded
 * into an array of 16-byte slots, one per child: a pointer (NULL when the key is absent from the
 * document; all fields are CYAML_FLAG_OPTIONAL) and, for model.hidden, the sequence count. Only the
 * keys present are then written over the caller's configuration.
 *
 * Types in the schema: enums and bools are strict CYAML_ENUMs; strings are CYAML_STRINGs bounded by
 * their char arrays. Numbers are loaded as CYAML_STRINGs and converted by the same strict parser as
 * --set, because libcyaml 1.3 converts with strtoll/strtod without requiring the whole scalar to be
 * consumed ("1.5" loads as the int 1, "12abc" as 12, "1.5abc" as the float 1.5).
 *
 * libcyaml reports errors through its log callback; we capture them and rewrite them into one line
 * "file:line: message". libcyaml's line for an unknown key is that of the previous value, so key
 * lines are looked up with a libyaml event scan of the text instead; YAML syntax errors take their
 * line and text from libyaml's parser (libcyaml links it: pkg-config libcyaml --libs has -lyaml). */
#include "cli/config.h"

#include <cyaml/cyaml.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cli/config_keys.h"
#include "neurons/surrogate.h"
#include "quant/state_quant.h"
#include "quant/weight_quant.h"

#ifndef QSNN_VERSION
#define QSNN_VERSION "?"
#endif

/* ---- defaults --------------------------------------------------------------------------------- */

void qsnn_config_default(qsnn_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    qsnn_net_cfg_default(&cfg->model);
    cfg->model.neuron_params.slope = 0.0f; /* = the surrogate's default, see qsnn_config_resolve */
    cfg->model.learn_beta = 0;
    cfg->model.learn_theta = 0;

    qsnn_data_cfg *d = &cfg->data;
    snprintf(d->dir, sizeof d->dir, "%s", QSNN_DEFAULT_DATA_DIR);
    snprintf(d->encoding, sizeof d->encoding, "direct");
    d->steps = 25;
    d->train_limit = 0;
    d->test_limit = 0;

    qsnn_train_cfg *t = &cfg->train;
    t->epochs = 3;
    t->batch = 128;
    snprintf(t->optimizer, sizeof t->optimizer, "adam");
    t->lr = 5e-4f;
    t->momentum = 0.9f;
    t->beta1 = 0.9f;
    t->beta2 = 0.999f;
    t->eps = 1e-8f;
    t->weight_decay = 0.0f;
    snprintf(t->schedule, sizeof t->schedule, "cosine");
    t->lr_min = 0.0f;
    snprintf(t->loss, sizeof t->loss, "ce_count");
    t->correct_rate = 0.8f;
    t->incorrect_rate = 0.2f;

    qsnn_run_cfg *r = &cfg->run;
    r->threads = 0;
    r->seed = 0;
    snprintf(r->out, sizeof r->out, "runs");
    r->progress = 1;
}

void qsnn_config_resolve(qsnn_config *cfg) {
    qsnn_neuron_params *p = &cfg->model.neuron_params;
    if (p->slope == 0.0f) {
        const qsnn_surrogate *s = qsnn_surrogate_get(p->surrogate);
        if (s) p->slope = s->default_slope;
    }
    qsnn_net_cfg *m = &cfg->model;
    if (m->integer) { /* what integer-exact models need, unless set otherwise (then the check says why not) */
        m->weight_quant.pow2 = 1;
        if (m->state_quant.grid == QSNN_GRID_UNIFORM) m->state_quant.grid = QSNN_GRID_FIXED_POINT;
        if (!m->input_bits) m->input_bits = 8;
    }
    qsnn_net_cfg_resolve_sizes(m);
}

/* ---- schema generated from the key table ----------------------------------------------------- */

#define MAX_MAPS 16
#define MAX_CHILD 40
#define MAX_STRVALS 160
#define SLOT 16 /* bytes per child in a loaded mapping: pointer, then the sequence count */

typedef struct map_node {
    char path[64]; /* dotted section path; "" for the root */
    int n;
    char child_name[MAX_CHILD][40];
    int child[MAX_CHILD]; /* >= 0: key index; < 0: -1 - map index */
    cyaml_schema_field_t fields[MAX_CHILD + 1];
} map_node;

typedef struct schema {
    map_node map[MAX_MAPS];
    int n_maps;
    cyaml_strval_t strvals[MAX_STRVALS];
    int n_strvals;
    cyaml_schema_value_t top;
    cyaml_schema_value_t seq_entry;
} schema;

static const cyaml_strval_t bool_strvals[] = {
    {"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}, {"on", 1}, {"off", 0}, {"1", 1}, {"0", 0},
};

static int map_child(schema *s, int m, const char *name, size_t len, int key) {
    map_node *node = &s->map[m];
    for (int c = 0; c < node->n; c++)
        if (strlen(node->child_name[c]) == len && strncmp(node->child_name[c], name, len) == 0) return c;
    if (node->n == MAX_CHILD || len >= sizeof node->child_name[0]) return -1;
    const int c = node->n++;
    memcpy(node->child_name[c], name, len);
    node->child_name[c][len] = 0;
    if (key >= 0) {
        node->child[c] = key;
    } else {
        if (s->n_maps == MAX_MAPS) return -1;
        const int nm = s->n_maps++;
        char path[sizeof node->path + sizeof node->child_name[0] + 1];
        snprintf(path, sizeof path, "%s%s%s", node->path, node->path[0] ? "." : "", node->child_name[c]);
        if (strlen(path) >= sizeof s->map[nm].path) return -1;
        memcpy(s->map[nm].path, path, strlen(path) + 1);
        node->child[c] = -1 - nm;
    }
    return c;
}

static qsnn_status schema_build(qsnn_ctx *ctx, schema **out) {
    schema *s = qsnn_calloc(ctx, 1, sizeof *s);
    if (!s) return QSNN_ERR_NOMEM;
    s->n_maps = 1;
    for (int i = 0; i < qsnn_config_n_keys; i++) {
        const char *path = qsnn_config_keys[i].path;
        int m = 0;
        for (const char *p = path;;) {
            const char *dot = strchr(p, '.');
            int c = map_child(s, m, p, dot ? (size_t)(dot - p) : strlen(p), dot ? -1 : i);
            if (c < 0 || (dot && s->map[m].child[c] >= 0) || (!dot && s->map[m].child[c] != i)) {
                qsnn_free(ctx, s);
                return qsnn_fail(ctx, QSNN_ERR_ARG, "config key table: cannot place key '%s'", path);
            }
            if (!dot) break;
            m = -1 - s->map[m].child[c];
            p = dot + 1;
        }
    }
    s->seq_entry = (cyaml_schema_value_t){.type = CYAML_STRING, .flags = CYAML_FLAG_POINTER, .data_size = 1,
                                          .string = {.min = 0, .max = 255}};
    for (int m = 0; m < s->n_maps; m++) {
        map_node *node = &s->map[m];
        for (int c = 0; c < node->n; c++) {
            cyaml_schema_field_t *f = &node->fields[c];
            f->key = node->child_name[c];
            f->data_offset = (uint32_t)(c * SLOT);
            cyaml_schema_value_t *v = &f->value;
            if (node->child[c] < 0) {
                const map_node *sub = &s->map[-1 - node->child[c]];
                v->type = CYAML_MAPPING;
                /* An empty section ("train:" with every key commented out) is allowed. */
                v->flags = CYAML_FLAG_POINTER_NULL_STR | CYAML_FLAG_OPTIONAL;
                v->data_size = (uint32_t)(sub->n * SLOT);
                v->mapping.fields = sub->fields;
                continue;
            }
            const qsnn_config_key *k = &qsnn_config_keys[node->child[c]];
            v->flags = CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL;
            switch (k->type) {
            case QSNN_KEY_INT:
            case QSNN_KEY_FLOAT:
            case QSNN_KEY_OUTPUTS: /* strictly converted by qsnn_config_key_parse */
                v->type = CYAML_STRING;
                v->data_size = 1;
                v->string.min = 0;
                v->string.max = 256;
                break;
            case QSNN_KEY_STRING:
                v->type = CYAML_STRING;
                v->data_size = 1;
                v->string.min = 0;
                v->string.max = (uint32_t)(k->size - 1);
                break;
            case QSNN_KEY_BOOL:
                v->type = CYAML_ENUM;
                v->flags |= CYAML_FLAG_STRICT | CYAML_FLAG_CASE_INSENSITIVE;
                v->data_size = sizeof(int);
                v->enumeration.strings = bool_strvals;
                v->enumeration.count = sizeof bool_strvals / sizeof bool_strvals[0];
                break;
            case QSNN_KEY_ENUM:
            case QSNN_KEY_ENUM_STR: {
                const int nn = qsnn_config_key_n_names(k);
                if (s->n_strvals + nn > MAX_STRVALS) {
                    qsnn_free(ctx, s);
                    return qsnn_fail(ctx, QSNN_ERR_ARG, "config key table: too many enum names");
                }
                for (int j = 0; j < nn; j++) s->strvals[s->n_strvals + j] = (cyaml_strval_t){k->names[j], j};
                v->type = CYAML_ENUM;
                v->flags |= CYAML_FLAG_STRICT;
                v->data_size = sizeof(int);
                v->enumeration.strings = &s->strvals[s->n_strvals];
                v->enumeration.count = (uint32_t)nn;
                s->n_strvals += nn;
                break;
            }
            case QSNN_KEY_HIDDEN:
            case QSNN_KEY_LAYER_INTS:
            case QSNN_KEY_LAYERS:
            case QSNN_KEY_LAYER_NAMES:
                /* No maximum here: the count is checked with the entries, for one kind of message. */
                v->type = CYAML_SEQUENCE;
                v->data_size = sizeof(char *);
                v->sequence.entry = &s->seq_entry;
                /* libcyaml leaves an empty sequence's pointer NULL, like an absent key: hidden sizes
                 * must not be empty; a per-layer list "[]" just keeps the value (not given). */
                v->sequence.min = k->type == QSNN_KEY_HIDDEN ? 1 : 0;
                v->sequence.max = CYAML_UNLIMITED;
                f->count_offset = (uint32_t)(c * SLOT + sizeof(void *));
                f->count_size = sizeof(unsigned);
                break;
            }
        }
        node->fields[node->n] = (cyaml_schema_field_t)CYAML_FIELD_END;
    }
    s->top = (cyaml_schema_value_t){.type = CYAML_MAPPING, .flags = CYAML_FLAG_POINTER,
                                    .data_size = (uint32_t)(s->map[0].n * SLOT),
                                    .mapping = {.fields = s->map[0].fields}};
    *out = s;
    return QSNN_OK;
}

/* ---- libyaml helpers: key lines and syntax errors ---------------------------------------------- */

/* 1-based line of the `occurrence`-th (1-based) mapping key whose full dotted path is `path`;
 * 0 when not found. */
static int yaml_key_line(const char *text, size_t len, const char *path, int occurrence) {
    typedef struct { int is_map, want_key; char key[64]; } level;
    level st[32];
    int depth = 0, seen = 0, line = 0, done = 0;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return 0;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) break;
        const yaml_event_type_t t = ev.type;
        level *top = depth ? &st[depth - 1] : NULL;
        if (t == YAML_SCALAR_EVENT && top && top->is_map && top->want_key) {
            snprintf(top->key, sizeof top->key, "%.*s", (int)ev.data.scalar.length,
                     (const char *)ev.data.scalar.value);
            top->want_key = 0;
            char full[256];
            size_t fl = 0;
            int all_maps = 1;
            full[0] = 0;
            for (int d = 0; d < depth && fl < sizeof full; d++) {
                if (!st[d].is_map) { all_maps = 0; break; }
                fl += (size_t)snprintf(full + fl, sizeof full - fl, "%s%s", d ? "." : "", st[d].key);
            }
            if (all_maps && strcmp(full, path) == 0 && ++seen == occurrence) {
                line = (int)ev.start_mark.line + 1;
                done = 1;
            }
        } else if (t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT) {
            if (top && top->is_map) top->want_key = 1;
        } else if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
            if (depth < (int)(sizeof st / sizeof st[0])) {
                st[depth].is_map = t == YAML_MAPPING_START_EVENT;
                st[depth].want_key = 1;
                st[depth].key[0] = 0;
                depth++;
            } else {
                done = 1;
            }
        } else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT) {
            if (depth) depth--;
            if (depth && st[depth - 1].is_map) st[depth - 1].want_key = 1;
        } else if (t == YAML_STREAM_END_EVENT) {
            done = 1;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return line;
}

/* When the text is not valid YAML: returns the 1-based line of the problem and its description. */
static int yaml_syntax_error(const char *text, size_t len, char *msg, size_t n) {
    yaml_parser_t p;
    int line = 0;
    msg[0] = 0;
    if (!yaml_parser_initialize(&p)) return 0;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            line = (int)p.problem_mark.line + 1;
            if (p.context)
                snprintf(msg, n, "%s (%s, line %d)", p.problem ? p.problem : "error", p.context,
                         (int)p.context_mark.line + 1);
            else
                snprintf(msg, n, "%s", p.problem ? p.problem : "error");
            break;
        }
        const int end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (end) break;
    }
    yaml_parser_delete(&p);
    return line;
}

/* ---- capturing and rewriting libcyaml's messages ------------------------------------------------ */

#define LOG_LINES 24
#define LOG_LEN 256

typedef struct cy_log {
    char line[LOG_LINES][LOG_LEN];
    int n;
    int open; /* the last line has no newline yet */
} cy_log;

static void cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args) {
    cy_log *L = ctx;
    if (level < CYAML_LOG_ERROR) return;
    char buf[LOG_LEN];
    vsnprintf(buf, sizeof buf, fmt, args);
    for (const char *p = buf; *p;) {
        const char *nl = strchr(p, '\n');
        const size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (!L->open) {
            if (L->n == LOG_LINES) return;
            L->line[L->n++][0] = 0;
        }
        char *dst = L->line[L->n - 1];
        const size_t have = strlen(dst);
        snprintf(dst + have, LOG_LEN - have, "%.*s", (int)len, p);
        L->open = nl == NULL;
        p += len + (nl != NULL);
    }
}

typedef struct cy_error {
    char first[LOG_LEN]; /* the message, "Load: " removed */
    char path[256];      /* dotted path of the innermost mapping field ("" at the top) */
    int line;            /* innermost line libcyaml reported, 0 if none */
} cy_error;

static void cy_error_parse(const cy_log *L, cy_error *e) {
    memset(e, 0, sizeof *e);
    char comps[LOG_LINES][LOG_LEN];
    int nc = 0;
    for (int i = 0; i < L->n; i++) {
        const char *s = L->line[i];
        if (strncmp(s, "Load: ", 6) == 0) s += 6;
        if (i == 0) {
            snprintf(e->first, sizeof e->first, "%s", s);
            continue;
        }
        const char *lp = strstr(s, "(line: ");
        int ln = 0;
        if (lp) ln = atoi(lp + 7);
        const char *mf = strstr(s, "in mapping field '");
        if (mf) {
            mf += strlen("in mapping field '");
            const char *q = strchr(mf, '\'');
            if (q && nc < LOG_LINES) snprintf(comps[nc++], LOG_LEN, "%.*s", (int)(q - mf), mf);
        }
        if ((mf || strstr(s, "in mapping") || strstr(s, "in sequence entry")) && ln && !e->line) e->line = ln;
    }
    size_t pl = 0;
    for (int c = nc - 1; c >= 0 && pl < sizeof e->path; c--)
        pl += (size_t)snprintf(e->path + pl, sizeof e->path - pl, "%s%s", c == nc - 1 ? "" : ".", comps[c]);
}

static const char *event_words(const char *ev) {
    if (strstr(ev, "SEQUENCE_START")) return "a list";
    if (strstr(ev, "MAPPING_START")) return "a mapping";
    if (strstr(ev, "SCALAR")) return "a single value";
    return ev;
}

static void section_list(char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    const char *prev = NULL;
    size_t prev_len = 0;
    for (int i = 0; i < qsnn_config_n_keys && len < n; i++) {
        const char *p = qsnn_config_keys[i].path;
        const size_t sl = strcspn(p, ".");
        if (prev && sl == prev_len && strncmp(p, prev, sl) == 0) continue;
        len += (size_t)snprintf(buf + len, n - len, "%s%.*s", prev ? ", " : "", (int)sl, p);
        prev = p;
        prev_len = sl;
    }
}

/* " (did you mean 'x'?)" relative to `section` when the suggestion lies in it, else the full path. */
static void suggestion(const char *full, const char *section, char *buf, size_t n) {
    char s[128];
    buf[0] = 0;
    if (!qsnn_config_key_suggest(full, s, sizeof s)) return;
    const size_t sl = strlen(section);
    const char *shown = s;
    if (sl && strncmp(s, section, sl) == 0 && s[sl] == '.') shown = s + sl + 1;
    snprintf(buf, n, " (did you mean '%s'?)", shown);
}

/* "file:line: " or "file: " */
static void where(char *buf, size_t n, const char *what, int line) {
    if (line > 0) snprintf(buf, n, "%s:%d: ", what, line);
    else snprintf(buf, n, "%s: ", what);
}

static qsnn_status cy_fail(qsnn_ctx *ctx, cyaml_err_t err, const cy_log *L, const char *what, const char *text,
                           size_t len) {
    cy_error e;
    cy_error_parse(L, &e);
    char at[LOG_LEN + 32], hint[192];
    const char *f = e.first;

    if (err == CYAML_ERR_LIBYAML_PARSER || strncmp(f, "libyaml: ", 9) == 0) {
        char msg[LOG_LEN];
        int line = yaml_syntax_error(text, len, msg, sizeof msg);
        if (!line) {
            line = e.line;
            snprintf(msg, sizeof msg, "%.200s", strncmp(f, "libyaml: ", 9) == 0 ? f + 9 : f);
        }
        where(at, sizeof at, what, line);
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%sYAML syntax error: %s", at, msg);
    }
    if (strncmp(f, "Unexpected key: ", 16) == 0) {
        const char *key = f + 16;
        char full[512];
        snprintf(full, sizeof full, "%.255s%s%.200s", e.path, e.path[0] ? "." : "", key);
        int line = yaml_key_line(text, len, full, 1);
        where(at, sizeof at, what, line ? line : e.line);
        suggestion(full, e.path, hint, sizeof hint);
        if (!e.path[0]) {
            char secs[128];
            section_list(secs, sizeof secs);
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%sunknown section '%s'%s (sections: %s)", at, key, hint, secs);
        }
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%sunknown key '%s' in section '%s'%s", at, key, e.path, hint);
    }
    if (strncmp(f, "Mapping field already seen: ", 28) == 0) {
        int line = yaml_key_line(text, len, e.path, 2);
        where(at, sizeof at, what, line ? line : e.line);
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%sduplicate key '%s'", at, e.path);
    }
    int line = e.path[0] ? yaml_key_line(text, len, e.path, 1) : 0;
    where(at, sizeof at, what, line ? line : e.line);
    const qsnn_config_key *k = e.path[0] ? qsnn_config_key_find(e.path) : NULL;
    if (strncmp(f, "Invalid ENUM value: ", 20) == 0 && k) {
        char r[256];
        qsnn_config_key_range_text(k, r, sizeof r);
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s%s = %s: must be %s", at, e.path, f + 20, r);
    }
    if (strncmp(f, "Expecting ", 10) == 0) {
        const char *got = strstr(f, "got event: ");
        const char *got_w = got ? event_words(got + 11) : "something else";
        if (!e.path[0])
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%sexpected a mapping of sections at the top level, got %s", at,
                             got_w);
        if (!k)
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%ssection '%s' must be a mapping of keys, got %s", at, e.path,
                             got_w);
        if (k->type == QSNN_KEY_LAYERS)
            return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                             "%s%s: expected a list of layer lines such as [\"conv channels=12 kernel=5\"], got %s", at,
                             e.path, got_w);
        if (k->type == QSNN_KEY_HIDDEN || k->type == QSNN_KEY_LAYER_INTS)
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s%s: expected a list of integers such as %s, got %s", at,
                             e.path, k->type == QSNN_KEY_HIDDEN ? "[1000]" : "[8, 4]", got_w);
        if (k->type == QSNN_KEY_LAYER_NAMES)
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s%s: expected a list of names, one per layer, such as %s, got %s",
                             at, e.path, strstr(e.path, "grid") ? "[uniform, threshold_centered]" : "[qil, lsq]",
                             got_w);
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s%s: expected a single %s value, got %s", at, e.path,
                         qsnn_config_key_type_name(k), got_w);
    }
    if (strncmp(f, "Insufficient entries", 20) == 0 && k && k->type == QSNN_KEY_HIDDEN)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s%s: needs 1..%d hidden layer sizes, got 0", at, e.path,
                         QSNN_MAX_LAYERS - 1);
    if (strncmp(f, "STRING length > ", 16) == 0 && k) {
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s%s: longer than %d characters", at, e.path, atoi(f + 16));
    }
    if (f[0])
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s%s%s%s", at, f, e.path[0] ? " at " : "", e.path);
    return qsnn_fail(ctx, err == CYAML_ERR_OOM ? QSNN_ERR_NOMEM : QSNN_ERR_CONFIG, "%s%s", at,
                     cyaml_strerror(err));
}

/* ---- loading ----------------------------------------------------------------------------------- */

typedef struct apply_state {
    qsnn_ctx *ctx;
    const char *what, *text;
    size_t len;
    qsnn_config *cfg;
} apply_state;

static qsnn_status apply_map(apply_state *a, const schema *s, int m, const unsigned char *data) {
    const map_node *node = &s->map[m];
    for (int c = 0; c < node->n; c++) {
        void *ptr;
        memcpy(&ptr, data + c * SLOT, sizeof ptr);
        if (!ptr) continue;
        if (node->child[c] < 0) {
            qsnn_status st = apply_map(a, s, -1 - node->child[c], ptr);
            if (st) return st;
            continue;
        }
        const qsnn_config_key *k = &qsnn_config_keys[node->child[c]];
        char err[512];
        int rc = 0;
        const char *shown = "";
        switch (k->type) {
        case QSNN_KEY_BOOL:
        case QSNN_KEY_ENUM:
        case QSNN_KEY_ENUM_STR: {
            int idx;
            memcpy(&idx, ptr, sizeof idx);
            qsnn_config_key_set_index(k, a->cfg, idx);
            break;
        }
        case QSNN_KEY_HIDDEN:
        case QSNN_KEY_LAYER_INTS:
        case QSNN_KEY_LAYERS:
        case QSNN_KEY_LAYER_NAMES: {
            unsigned count;
            memcpy(&count, data + c * SLOT + sizeof(void *), sizeof count);
            rc = qsnn_config_key_parse_list(k, a->cfg, (const char *const *)ptr, (int)count, err, sizeof err);
            break;
        }
        default:
            shown = ptr;
            rc = qsnn_config_key_parse(k, a->cfg, shown, err, sizeof err);
            break;
        }
        if (rc) {
            char at[64 + QSNN_PATH_MAX];
            where(at, sizeof at, a->what, yaml_key_line(a->text, a->len, k->path, 1));
            if (k->type == QSNN_KEY_HIDDEN || k->type == QSNN_KEY_LAYER_INTS || k->type == QSNN_KEY_LAYERS ||
                k->type == QSNN_KEY_LAYER_NAMES) /* "key[1] = 'x': ..." for an entry of a name list */
                return qsnn_fail(a->ctx, QSNN_ERR_CONFIG, "%s%s%s%s", at, k->path, err[0] == '[' ? "" : ": ", err);
            const int quote = !shown[0] || strchr(shown, ' ');
            return qsnn_fail(a->ctx, QSNN_ERR_CONFIG, "%s%s = %s%.200s%s: %s", at, k->path, quote ? "'" : "", shown,
                             quote ? "'" : "", err);
        }
    }
    return QSNN_OK;
}

static int blank_yaml(const char *text, size_t len) {
    int in_comment = 0;
    for (size_t i = 0; i < len; i++) {
        const char c = text[i];
        if (c == '\n') in_comment = 0;
        else if (c == '#') in_comment = 1;
        else if (!in_comment && c != ' ' && c != '\t' && c != '\r') return 0;
    }
    return 1;
}

static qsnn_status load_text(qsnn_ctx *ctx, qsnn_config *cfg, const char *text, size_t len, const char *what) {
    if (!what) what = "<config>";
    if (blank_yaml(text, len)) return qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s: empty configuration (no settings)", what);
    schema *s = NULL;
    qsnn_status st = schema_build(ctx, &s);
    if (st) return st;
    cy_log L;
    memset(&L, 0, sizeof L);
    const cyaml_config_t cc = {
        .log_fn = cy_log_fn, .log_ctx = &L, .mem_fn = cyaml_mem, .mem_ctx = NULL,
        .log_level = CYAML_LOG_ERROR, .flags = CYAML_CFG_DEFAULT,
    };
    void *data = NULL;
    cyaml_err_t err = cyaml_load_data((const uint8_t *)text, len, &cc, &s->top, &data, NULL);
    if (err != CYAML_OK) {
        st = cy_fail(ctx, err, &L, what, text, len);
    } else if (!data) {
        st = qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s: empty configuration (no settings)", what);
    } else {
        qsnn_config *tmp = qsnn_malloc(ctx, sizeof *tmp);
        if (!tmp) {
            st = QSNN_ERR_NOMEM;
        } else {
            memcpy(tmp, cfg, sizeof *tmp);
            apply_state a = {ctx, what, text, len, tmp};
            st = apply_map(&a, s, 0, data);
            if (!st) memcpy(cfg, tmp, sizeof *tmp);
            qsnn_free(ctx, tmp);
        }
    }
    if (data) cyaml_free(&cc, &s->top, data, 0);
    qsnn_free(ctx, s);
    return st;
}

qsnn_status qsnn_config_load_string(qsnn_ctx *ctx, qsnn_config *cfg, const char *yaml, const char *what) {
    if (!cfg || !yaml) return qsnn_fail(ctx, QSNN_ERR_ARG, "qsnn_config_load_string: NULL argument");
    return load_text(ctx, cfg, yaml, strlen(yaml), what);
}

#define MAX_CONFIG_FILE (16u << 20)

qsnn_status qsnn_config_load_file(qsnn_ctx *ctx, qsnn_config *cfg, const char *path) {
    if (!cfg || !path) return qsnn_fail(ctx, QSNN_ERR_ARG, "qsnn_config_load_file: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot open configuration file: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    qsnn_status st = QSNN_OK;
    while (buf) {
        if (len == cap) {
            if (cap >= MAX_CONFIG_FILE) {
                st = qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s: configuration file larger than %u MiB", path,
                               MAX_CONFIG_FILE >> 20);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        const size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) st = qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot read configuration file: %s", path,
                                          strerror(errno ? errno : EIO));
            break;
        }
    }
    fclose(f);
    if (!buf) return qsnn_fail(ctx, QSNN_ERR_NOMEM, "%s: out of memory reading the configuration", path);
    if (!st) {
        if (memchr(buf, 0, len))
            st = qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s: not a text file (contains NUL bytes)", path);
        else
            st = load_text(ctx, cfg, buf, len, path);
    }
    free(buf);
    return st;
}

/* ---- --set ----------------------------------------------------------------------------------- */

qsnn_status qsnn_config_set(qsnn_ctx *ctx, qsnn_config *cfg, const char *assignment) {
    if (!cfg || !assignment) return qsnn_fail(ctx, QSNN_ERR_ARG, "qsnn_config_set: NULL argument");
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "--set '%.200s': expected key=value, e.g. train.lr=0.001", assignment);
    char key[128];
    const size_t kl = (size_t)(eq - assignment);
    if (kl >= sizeof key)
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "--set %.200s: unknown key (see qsnn train --help-config)",
                         assignment);
    memcpy(key, assignment, kl);
    key[kl] = 0;
    const qsnn_config_key *k = qsnn_config_key_find(key);
    if (!k) {
        char s[128];
        for (int i = 0; i < qsnn_config_n_keys; i++) /* a section name: point at its first key */
            if (strncmp(qsnn_config_keys[i].path, key, kl) == 0 && qsnn_config_keys[i].path[kl] == '.')
                return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                                 "--set %.200s: '%s' is a section, not a key (e.g. %s; see qsnn train --help-config)",
                                 assignment, key, qsnn_config_keys[i].path);
        if (qsnn_config_key_suggest(key, s, sizeof s))
            return qsnn_fail(ctx, QSNN_ERR_CONFIG,
                             "--set %.200s: unknown key '%s' (did you mean '%s'? see qsnn train --help-config)",
                             assignment, key, s);
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "--set %.200s: unknown key '%s' (see qsnn train --help-config)",
                         assignment, key);
    }
    char err[512];
    if (qsnn_config_key_parse(k, cfg, eq + 1, err, sizeof err)) {
        if (k->type == QSNN_KEY_LAYER_NAMES && err[0] == '[') /* name the key and the entry */
            return qsnn_fail(ctx, QSNN_ERR_CONFIG, "--set %.300s: %s%s", assignment, k->path, err);
        return qsnn_fail(ctx, QSNN_ERR_CONFIG, "--set %.300s: %s", assignment, err);
    }
    return QSNN_OK;
}

/* ---- checks ------------------------------------------------------------------------------------ */

qsnn_status qsnn_config_check(qsnn_ctx *ctx, const qsnn_config *cfg) {
    if (!cfg) return qsnn_fail(ctx, QSNN_ERR_ARG, "qsnn_config_check: NULL configuration");
    qsnn_config *c = qsnn_malloc(ctx, sizeof *c);
    if (!c) return QSNN_ERR_NOMEM;
    memcpy(c, cfg, sizeof *c);
    qsnn_config_resolve(c);
    qsnn_status st = QSNN_OK;
    for (int i = 0; i < qsnn_config_n_keys && !st; i++) {
        const qsnn_config_key *k = &qsnn_config_keys[i];
        char err[512], val[256];
        if (qsnn_config_key_check(k, c, err, sizeof err) == 0) continue;
        if (k->type == QSNN_KEY_HIDDEN || k->type == QSNN_KEY_LAYER_INTS || k->type == QSNN_KEY_LAYERS ||
            k->type == QSNN_KEY_LAYER_NAMES) {
            st = qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s%s%s", k->path, err[0] == '[' ? "" : ": ", err);
        } else {
            if (k->type == QSNN_KEY_STRING || k->type == QSNN_KEY_ENUM_STR) {
                const char *p = (const char *)c + k->offset;
                snprintf(val, sizeof val, "'%.*s'", (int)strnlen(p, k->size < 200 ? k->size : 200), p);
            } else {
                qsnn_config_key_format(k, c, 0, val, sizeof val);
            }
            st = qsnn_fail(ctx, QSNN_ERR_CONFIG, "%s = %s: %s", k->path, val, err);
        }
    }
    if (!st && strcmp(c->train.schedule, "cosine") == 0 && c->train.lr_min > c->train.lr)
        st = qsnn_fail(ctx, QSNN_ERR_CONFIG, "train.lr_min = %g: must be <= train.lr (%g) for the cosine schedule",
                       c->train.lr_min, c->train.lr);
    if (!st) st = qsnn_net_cfg_check(ctx, &c->model);
    if (!st) st = qsnn_state_quant_check(ctx, &c->model.state_quant);
    if (!st) st = qsnn_weight_quant_check(ctx, &c->model.weight_quant);
    qsnn_free(ctx, c);
    return st;
}

/* ---- dump ---------------------------------------------------------------------------------------- */

typedef struct emitter {
    char *buf;
    size_t cap, len;
} emitter;

static void emit(emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(emitter *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const size_t room = e->len < e->cap ? e->cap - e->len : 0;
    const int n = vsnprintf(e->buf ? e->buf + e->len : NULL, e->buf ? room : 0, fmt, ap);
    va_end(ap);
    if (n > 0) e->len += (size_t)n;
}

static void dump_all(emitter *e, const qsnn_config *c) {
    char val[4 * QSNN_PATH_MAX + 8]; /* a string escaped as YAML: at most 4 bytes per byte */
    const char *prev = "";
    emit(e, "# qsnn %s configuration\n", QSNN_VERSION);
    for (int i = 0; i < qsnn_config_n_keys; i++) {
        const char *path = qsnn_config_keys[i].path;
        /* Components shared with the previous key's section need no header. */
        int depth = 0;
        const char *p = path, *q = prev;
        for (;;) {
            const char *dp = strchr(p, '.'), *dq = strchr(q, '.');
            if (!dp || !dq || dp - p != dq - q || strncmp(p, q, (size_t)(dp - p)) != 0) break;
            p = dp + 1;
            q = dq + 1;
            depth++;
        }
        for (const char *dot; (dot = strchr(p, '.')); p = dot + 1, depth++)
            emit(e, "%*s%.*s:\n", 2 * depth, "", (int)(dot - p), p);
        qsnn_config_key_format(&qsnn_config_keys[i], c, 1, val, sizeof val);
        emit(e, "%*s%s: %s\n", 2 * depth, "", p, val);
        prev = path;
    }
}

qsnn_status qsnn_config_dump(qsnn_ctx *ctx, const qsnn_config *cfg, char **yaml) {
    if (!yaml) return qsnn_fail(ctx, QSNN_ERR_ARG, "qsnn_config_dump: NULL output");
    *yaml = NULL;
    if (!cfg) return qsnn_fail(ctx, QSNN_ERR_ARG, "qsnn_config_dump: NULL configuration");
    qsnn_config *c = qsnn_malloc(ctx, sizeof *c);
    if (!c) return QSNN_ERR_NOMEM;
    memcpy(c, cfg, sizeof *c);
    qsnn_config_resolve(c);
    emitter e = {NULL, 0, 0};
    dump_all(&e, c);
    e.cap = e.len + 1;
    e.buf = qsnn_malloc(ctx, e.cap);
    if (!e.buf) {
        qsnn_free(ctx, c);
        return QSNN_ERR_NOMEM;
    }
    e.len = 0;
    dump_all(&e, c);
    qsnn_free(ctx, c);
    *yaml = e.buf;
    return QSNN_OK;
}

/* ---- key reference ----------------------------------------------------------------------------- */

void qsnn_config_print_keys(FILE *f) {
    qsnn_config *d = malloc(sizeof *d);
    if (!d) return;
    qsnn_config_default(d);
    int wk = 0, wt = 0, wd = 0;
    char val[QSNN_PATH_MAX + 8], range[256];
    for (int i = 0; i < qsnn_config_n_keys; i++) {
        const qsnn_config_key *k = &qsnn_config_keys[i];
        qsnn_config_key_format(k, d, 0, val, sizeof val);
        const int lk = (int)strlen(k->path), lt = (int)strlen(qsnn_config_key_type_name(k)), ld = (int)strlen(val);
        if (lk > wk) wk = lk;
        if (lt > wt) wt = lt;
        if (ld > wd && ld <= 16) wd = ld; /* long defaults (paths) just push their line */
    }
    for (int i = 0; i < qsnn_config_n_keys; i++) {
        const qsnn_config_key *k = &qsnn_config_keys[i];
        qsnn_config_key_format(k, d, 0, val, sizeof val);
        qsnn_config_key_range_text(k, range, sizeof range);
        char count[32] = "";
        if (k->type == QSNN_KEY_HIDDEN) snprintf(count, sizeof count, "1..%d entries, each ", QSNN_MAX_LAYERS - 1);
        if (k->type == QSNN_KEY_LAYER_INTS || k->type == QSNN_KEY_LAYER_NAMES)
            snprintf(count, sizeof count, "one per layer, each ");
        fprintf(f, "  %-*s  %-*s  %-*s  %s%s%s%s%s\n", wk, k->path, wt, qsnn_config_key_type_name(k), wd, val, k->desc,
                range[0] ? " (" : "", count, range, range[0] ? ")" : "");
    }
    free(d);
}
