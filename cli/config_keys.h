/* The one table of configuration keys (private to cli/). Each entry names a dotted key, its type,
 * where it lives inside qsnn_config, its allowed range or names, and a one-line description. The
 * YAML schema handed to libcyaml, --set, the range checks, the YAML dump and --help-config are all
 * generated from this table: a new setting = one new line in config_keys.c (plus its default in
 * qsnn_config_default).
 *
 * Sections are the leading components of the path ("quant.state.bits" lives in section
 * "quant.state"); keys of one section must be contiguous in the table (the dump relies on it). */
#ifndef QSNN_CLI_CONFIG_KEYS_H
#define QSNN_CLI_CONFIG_KEYS_H

#include <stddef.h>
#include "cli/config.h"

typedef enum {
    QSNN_KEY_INT,      /* int or long long (by size) */
    QSNN_KEY_FLOAT,    /* float or double (by size); non-finite values are always rejected */
    QSNN_KEY_BOOL,     /* int 0/1; true/false/yes/no/on/off/1/0 */
    QSNN_KEY_STRING,   /* char[size], never empty */
    QSNN_KEY_ENUM,     /* C enum (int-sized) holding the index into `names` */
    QSNN_KEY_ENUM_STR, /* char[size] holding one of `names` */
    QSNN_KEY_HIDDEN,   /* model.hidden: int list -> model.sizes[0 .. n_layers-2], n_layers = len + 1 */
    QSNN_KEY_OUTPUTS,  /* model.outputs: int -> model.sizes[n_layers-1] */
    QSNN_KEY_LAYER_INTS, /* qsnn_layer_ints: a list of 0..QSNN_MAX_LAYERS ints, one per layer ([] = not given) */
    QSNN_KEY_LAYERS,     /* model.layers: a list of layer lines (sim/layer_spec.h); replaces model.hidden */
    QSNN_KEY_LAYER_NAMES /* qsnn_layer_names: 0..QSNN_MAX_LAYERS registry names, one per layer ([] = not given);
                          * each entry must pass `known` (messages list known_names) */
} qsnn_key_type;

/* Range flags for numbers (the bounds themselves are min and max). For QSNN_KEY_HIDDEN and
 * QSNN_KEY_LAYER_INTS they bound each entry. */
enum {
    QSNN_KEY_HAS_MIN = 1 << 0,
    QSNN_KEY_HAS_MAX = 1 << 1,
    QSNN_KEY_MIN_OPEN = 1 << 2, /* value > min instead of >= min */
    QSNN_KEY_MAX_OPEN = 1 << 3, /* value < max instead of <= max */
    QSNN_KEY_ZERO_OFF = 1 << 4  /* 0 is allowed besides the range (0 = off / default) */
};

typedef struct qsnn_config_key {
    const char *path;         /* "train.lr" */
    qsnn_key_type type;
    size_t offset;            /* offsetof(qsnn_config, ...) */
    size_t size;              /* sizeof the member (for HIDDEN/OUTPUTS: of model.sizes) */
    const char *const *names; /* ENUM, ENUM_STR: NULL-terminated; index = stored enum value */
    double min, max;
    unsigned flags;
    /* STRING and LAYER_NAMES, optional: registry membership test and the list of known names for messages. */
    int (*known)(const char *name);
    const char *(*known_names)(void);
    const char *desc;
} qsnn_config_key;

extern const qsnn_config_key qsnn_config_keys[];
extern const int qsnn_config_n_keys;

/* Exact lookup by dotted path; NULL when unknown. */
const qsnn_config_key *qsnn_config_key_find(const char *path);
/* Number of entries of `names`. */
int qsnn_config_key_n_names(const qsnn_config_key *k);
/* "int", "float", "bool", "string", "enum", "int list", "layer list", "name list". */
const char *qsnn_config_key_type_name(const qsnn_config_key *k);
/* The allowed values in words: "> 0", "in [0, 1)", "in 1..100000", "0 (off) or 2..16",
 * "one of subtract, zero, none", "true or false"; "" when unconstrained. */
void qsnn_config_key_range_text(const qsnn_config_key *k, char *buf, size_t n);

/* The current value as text. yaml != 0: as YAML (strings double-quoted and escaped, floats %.9g so
 * they read back to the same bits); yaml == 0: for messages and help (strings bare, floats %g). */
void qsnn_config_key_format(const qsnn_config_key *k, const qsnn_config *cfg, int yaml, char *buf, size_t n);

/* Strict parse of a textual value (whole string consumed; base-10 ints; finite floats; bools
 * true/false/yes/no/on/off/1/0 in any case; enum names exactly; HIDDEN: "[500,200]", "500,200" or
 * "500"), then the per-key check; writes the value into cfg only when both pass. On failure
 * returns -1 and a reason such as "not a number" or "must be > 0" in err. */
int qsnn_config_key_parse(const qsnn_config_key *k, qsnn_config *cfg, const char *text, char *err, size_t n);
/* HIDDEN, LAYER_INTS, LAYERS and LAYER_NAMES from separate items (a YAML sequence): each item one integer,
 * layer line or name. Same contract. LAYER_NAMES' entry errors read "[I] = 'NAME': unknown (known: ...)"
 * (I 0-based, the layer), to be appended to the key's path. */
int qsnn_config_key_parse_list(const qsnn_config_key *k, qsnn_config *cfg, const char *const *items, int n_items,
                               char *err, size_t n);
/* Writes an already-validated index (ENUM, ENUM_STR: index into names; BOOL: 0 or 1). */
void qsnn_config_key_set_index(const qsnn_config_key *k, qsnn_config *cfg, int index);
/* Replaces the hidden layer sizes (n <= QSNN_MAX_LAYERS - 1), keeping the output size; zeroes the
 * unused entries of model.sizes. */
void qsnn_config_set_hidden(qsnn_config *cfg, const int *sizes, int n);

/* The per-key check of the value now in cfg (range, finiteness, enum membership, registry names).
 * Returns 0 when valid, else -1 with the reason ("must be > 0", ...) in err. */
int qsnn_config_key_check(const qsnn_config_key *k, const qsnn_config *cfg, char *err, size_t n);

/* The closest known key or section to a misspelt dotted path (edit distance, or the same last
 * component in another section), written to buf. Returns 1 when there is one, 0 otherwise. */
int qsnn_config_key_suggest(const char *path, char *buf, size_t n);

#endif
