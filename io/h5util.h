/* Small helpers shared by all our HDF5 code (checkpoints, trace logs, NIR export).
 *
 * Conventions
 * - Every helper takes the context and the file's path (`file`, used only in messages) and returns a
 *   qsnn_status; on failure the context holds one line "FILE: what: <innermost HDF5 detail>".
 * - HDF5's automatic error printing is switched off by qsnn_h5_quiet(); call it at the start of every
 *   public entry point that touches HDF5 (the HDF5 build here is thread-safe, where that setting is
 *   per thread, so calling it once per process is not enough; it costs next to nothing).
 * - The HDF5 error stack is cleared by the next HDF5 API call, so report a failure (qsnn_h5_fail)
 *   right after the failing call, before closing handles.
 * - Objects are named in messages relative to the root without the leading slash
 *   ("params/layer0.weight"); see qsnn_h5_objname.
 * - Strings are written as scalar variable-length UTF-8 strings (h5py reads them as str); the
 *   readers accept variable-length and fixed-length strings (any padding, ASCII or UTF-8), scalar
 *   or of one element.
 * - Write helpers for attributes replace an existing attribute of the same name; dataset writers
 *   fail when the dataset exists.
 * - Handles: every helper closes what it opens, on every path. */
#ifndef QSNN_IO_H5UTIL_H
#define QSNN_IO_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "core/context.h"

#define QSNN_H5_MAX_RANK 8

/* Switches off HDF5's automatic error printing for the calling thread. */
void qsnn_h5_quiet(void);

/* The innermost description on the current HDF5 error stack (where the error happened), into buf;
 * "" when the stack is empty. Does not clear the stack. */
void qsnn_h5_detail(char *buf, size_t size);

/* Records "FILE: WHAT: <detail>" (or "FILE: WHAT" when the stack is empty) and returns QSNN_ERR_HDF5
 * (qsnn_h5_fail) or `st` (qsnn_h5_fail_as). */
qsnn_status qsnn_h5_fail(qsnn_ctx *ctx, const char *file, const char *what);
qsnn_status qsnn_h5_fail_as(qsnn_ctx *ctx, qsnn_status st, const char *file, const char *what);

/* The name of `name` under `loc` relative to the root, without the leading slash
 * ("params/layer0.weight"); name NULL or "" names loc itself ("/" for the root group). */
void qsnn_h5_objname(hid_t loc, const char *name, char *buf, size_t size);

/* "[10][784]"; "[]" for rank 0 (scalar). */
void qsnn_h5_fmt_dims(char *buf, size_t size, int rank, const hsize_t *dims);

/* --- files ----------------------------------------------------------------------------------- */

/* Opens an existing file read-only (rdwr = 0) or read-write. A missing, unreadable or non-regular
 * file gives QSNN_ERR_IO; a file HDF5 cannot open (not HDF5, truncated) QSNN_ERR_FORMAT. */
qsnn_status qsnn_h5_open(qsnn_ctx *ctx, const char *file, int rdwr, hid_t *out);
/* Creates (truncates) a file. Failure: QSNN_ERR_IO. */
qsnn_status qsnn_h5_create(qsnn_ctx *ctx, const char *file, hid_t *out);
/* Flushes and closes a file (fid may be negative: no-op). Failure: QSNN_ERR_IO. */
qsnn_status qsnn_h5_close(qsnn_ctx *ctx, const char *file, hid_t fid);

/* --- links ----------------------------------------------------------------------------------- */

/* 1 when the link `name` (may contain '/') exists under loc and resolves to an object, else 0. */
int qsnn_h5_exists(hid_t loc, const char *name);
/* Creates a group; the caller closes *out with H5Gclose. */
qsnn_status qsnn_h5_group_create(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, hid_t *out);
/* Opens a group; missing: QSNN_ERR_FORMAT "FILE: group NAME is missing". Caller closes with H5Gclose. */
qsnn_status qsnn_h5_group_open(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, hid_t *out);

/* --- numeric datasets ------------------------------------------------------------------------ */

/* Writes a contiguous dataset of rank `rank` (0 = scalar) from memory of type mem_type, stored as
 * file_type. The _f32 / _i32 shorthands store little-endian IEEE float32 / int32. */
qsnn_status qsnn_h5_write_array(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, hid_t file_type,
                                hid_t mem_type, int rank, const hsize_t *dims, const void *data);
qsnn_status qsnn_h5_write_f32(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, int rank,
                              const hsize_t *dims, const float *data);
qsnn_status qsnn_h5_write_i32(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, int rank,
                              const hsize_t *dims, const int32_t *data);

/* Shape of a dataset (rank <= QSNN_H5_MAX_RANK). Missing: QSNN_ERR_FORMAT "FILE: NAME is missing". */
qsnn_status qsnn_h5_dims(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, int *rank, hsize_t *dims);
/* Reads a floating-point dataset of exactly n elements into out (converted to float32). Wrong class
 * or missing: QSNN_ERR_FORMAT; other element count: QSNN_ERR_MISMATCH. Values are not checked. */
qsnn_status qsnn_h5_read_f32(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, float *out, size_t n);

/* --- strings --------------------------------------------------------------------------------- */

/* Scalar string dataset. */
qsnn_status qsnn_h5_write_str(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, const char *s);
/* Reads a string dataset into a new NUL-terminated buffer (free with qsnn_free). */
qsnn_status qsnn_h5_read_str(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, char **out);

/* --- scalar attributes (on a file, group or dataset) ---------------------------------------- */

/* 1 when attribute `name` exists on loc, else 0. */
int qsnn_h5_attr_exists(hid_t loc, const char *name);
qsnn_status qsnn_h5_write_attr_i64(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, int64_t v);
qsnn_status qsnn_h5_write_attr_f64(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, double v);
qsnn_status qsnn_h5_write_attr_str(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, const char *s);
/* Missing attribute or wrong type class: QSNN_ERR_FORMAT naming the attribute and its object.
 * read_attr_i64 wants an integer; read_attr_f64 takes an integer or a float. */
qsnn_status qsnn_h5_read_attr_i64(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, int64_t *v);
qsnn_status qsnn_h5_read_attr_f64(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, double *v);
/* New NUL-terminated buffer (free with qsnn_free). */
qsnn_status qsnn_h5_read_attr_str(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, char **out);

#endif
