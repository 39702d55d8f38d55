#include "io/int_model.h"
#include "io/h5atomic.h"
#include "io/h5util.h"

#include <stdio.h>

static const char update_rule[] =
    "per layer, neuron o, step t (all integers; u starts at 0):\n"
    "  acc   = sum_i weight_codes[o][i] * x[i]      (x: input codes for layer 0, spikes 0/1 after)\n"
    "  cur   = round_half_down((acc + bias[o]) * multiplier[o] / 2^shift[o])\n"
    "          (layer with current_step > 0: cur = clamp(round_half_even(cur / current_step),\n"
    "           -current_max_code, current_max_code) * current_step)\n"
    "  r     = u > theta\n"
    "  leak  = round_half_down(beta_multiplier * u / 2^beta_bits)\n"
    "  v     = leak + cur - r*theta   (reset zero: (1-r)*leak + cur; none: leak + cur)\n"
    "  u     = levels[nearest level to v, ties to the lower one, saturating]\n"
    "  spike = u > theta\n"
    "prediction: argmax over output neurons of the spike count (or the maximal u), first maximum";

static const char *reset_name(int r) { return r == QSNN_RESET_SUBTRACT ? "subtract" : (r == QSNN_RESET_ZERO ? "zero" : "none"); }

static qsnn_status save_layer(qsnn_ctx *ctx, const char *path, hid_t layers, int l, const qsnn_int_layer *L) {
    char name[32];
    snprintf(name, sizeof name, "layer%d", l);
    hid_t g;
    qsnn_status st = qsnn_h5_group_create(ctx, path, layers, name, &g);
    if (st) return st;
    const hsize_t w[2] = {(hsize_t)L->out, (hsize_t)L->in}, o[1] = {(hsize_t)L->out}, n[1] = {(hsize_t)L->n_levels};
    const int narrow = L->w_bits <= 8;
    int8_t *w8 = NULL;
    if (narrow) {
        w8 = qsnn_malloc(ctx, (size_t)L->in * L->out);
        if (!w8) st = QSNN_ERR_NOMEM;
        for (size_t i = 0; !st && i < (size_t)L->in * L->out; i++) w8[i] = (int8_t)L->Wc[i];
    }
    if (!st)
        st = narrow ? qsnn_h5_write_array(ctx, path, g, "weight_codes", H5T_STD_I8LE, H5T_NATIVE_INT8, 2, w, w8)
                    : qsnn_h5_write_array(ctx, path, g, "weight_codes", H5T_STD_I16LE, H5T_NATIVE_INT16, 2, w, L->Wc);
    if (!st) st = qsnn_h5_write_array(ctx, path, g, "bias", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, o, L->bias);
    if (!st) st = qsnn_h5_write_i32(ctx, path, g, "multiplier", 1, o, L->M);
    if (!st) st = qsnn_h5_write_i32(ctx, path, g, "shift", 1, o, L->sh);
    if (!st) st = qsnn_h5_write_array(ctx, path, g, "levels", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, n, L->lvl);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "in", L->in);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "out", L->out);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "weight_bits", L->w_bits);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "state_bits", L->s_bits);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "fine_exponent", L->E);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "beta_multiplier", L->beta_m);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "beta_bits", L->beta_bits);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "theta", L->theta);
    if (!st) st = qsnn_h5_write_attr_str(ctx, path, g, "reset", reset_name(L->reset));
    if (!st) st = qsnn_h5_write_attr_str(ctx, path, g, "grid", L->fixed_point ? "fixed_point" : "level_table");
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "level_step_shift", L->fixed_point ? L->d : -1);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "exact", L->exact);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "current_step", L->cur_step);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, g, "current_max_code", L->cur_kmax);
    qsnn_free(ctx, w8);
    H5Gclose(g);
    return st;
}

qsnn_status qsnn_int_model_save(qsnn_ctx *ctx, const char *path, const qsnn_int_net *inet,
                                const qsnn_int_model_meta *meta) {
    qsnn_h5_atomic out;
    qsnn_status st = qsnn_h5_atomic_create(ctx, path, &out);
    if (st) return st;
    const hid_t f = out.fid;
    st = qsnn_h5_write_attr_str(ctx, path, f, "format", QSNN_INT_MODEL_FORMAT);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, f, "format_version", QSNN_INT_MODEL_VERSION);
    if (!st) st = qsnn_h5_write_attr_str(ctx, path, f, "qsnn_version", QSNN_VERSION);
    if (!st) st = qsnn_h5_write_attr_str(ctx, path, f, "command_line", meta && meta->command_line ? meta->command_line : "");
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, f, "exact", inet->exact);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, f, "input_bits", inet->input_bits);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, f, "n_layers", inet->n_layers);
    if (!st) st = qsnn_h5_write_attr_i64(ctx, path, f, "steps", meta ? meta->steps : 0);
    if (!st) st = qsnn_h5_write_attr_str(ctx, path, f, "encoding", meta && meta->encoding ? meta->encoding : "");
    if (!st)
        st = qsnn_h5_write_attr_str(ctx, path, f, "prediction", inet->max_membrane ? "max_membrane" : "spike_count");
    if (!st) st = qsnn_h5_write_attr_str(ctx, path, f, "update_rule", update_rule);
    if (!st) st = qsnn_h5_write_str(ctx, path, f, "config", meta && meta->config_yaml ? meta->config_yaml : "");
    hid_t layers = -1;
    if (!st) st = qsnn_h5_group_create(ctx, path, f, "layers", &layers);
    for (int l = 0; !st && l < inet->n_layers; l++) st = save_layer(ctx, path, layers, l, &inet->layer[l]);
    if (layers >= 0) H5Gclose(layers);
    if (!st) return qsnn_h5_atomic_commit(ctx, &out);
    qsnn_h5_atomic_abort(ctx, &out);
    return st;
}
