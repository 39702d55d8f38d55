#include "io/h5util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void qsnn_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* --- errors ------------------------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t size;
    int found;
} walk_state;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    walk_state *w = data;
    if (!w->found && e && e->desc && e->desc[0]) {
        snprintf(w->buf, w->size, "%s", e->desc);
        w->found = 1;
    }
    return 0;
}

static herr_t lock_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    if (e && (e->min_num == H5E_CANTLOCKFILE || e->min_num == H5E_CANTLOCK)) *(int *)data = 1;
    return 0;
}

/* 1 when the current error stack says a file lock could not be taken. */
static int stack_has_lock_error(void) {
    int found = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, lock_cb, &found);
    return found;
}

void qsnn_h5_detail(char *buf, size_t size) {
    if (!buf || !size) return;
    buf[0] = 0;
    walk_state w = {buf, size, 0};
    /* Upward: from the function where the error happened towards the API call. */
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &w);
}

/* Captures the HDF5 detail before anything else runs (any HDF5 API call clears the stack), then
 * records "FILE: <formatted what>: detail". */
static qsnn_status h5failf(qsnn_ctx *ctx, qsnn_status st, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static qsnn_status h5failf(qsnn_ctx *ctx, qsnn_status st, const char *file, const char *fmt, ...) {
    char detail[512];
    qsnn_h5_detail(detail, sizeof detail);
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (detail[0]) return qsnn_fail(ctx, st, "%s: %s: %s", file, what, detail);
    return qsnn_fail(ctx, st, "%s: %s", file, what);
}

qsnn_status qsnn_h5_fail_as(qsnn_ctx *ctx, qsnn_status st, const char *file, const char *what) {
    return h5failf(ctx, st, file, "%s", what);
}

qsnn_status qsnn_h5_fail(qsnn_ctx *ctx, const char *file, const char *what) {
    return h5failf(ctx, QSNN_ERR_HDF5, file, "%s", what);
}

void qsnn_h5_objname(hid_t loc, const char *name, char *buf, size_t size) {
    if (!buf || !size) return;
    if (name && name[0] == '/') { /* absolute */
        while (*name == '/') name++;
        snprintf(buf, size, "%s", *name ? name : "/");
        return;
    }
    char base[256];
    base[0] = 0;
    if (H5Iget_name(loc, base, sizeof base) < 0) base[0] = 0;
    const char *b = base;
    while (*b == '/') b++;
    if (!name || !*name) snprintf(buf, size, "%s", *b ? b : "/");
    else if (*b) snprintf(buf, size, "%s/%s", b, name);
    else snprintf(buf, size, "%s", name);
}

void qsnn_h5_fmt_dims(char *buf, size_t size, int rank, const hsize_t *dims) {
    if (!buf || !size) return;
    size_t len = 0;
    buf[0] = 0;
    if (rank <= 0) {
        snprintf(buf, size, "[]");
        return;
    }
    for (int i = 0; i < rank && len < size; i++) {
        int k = snprintf(buf + len, size - len, "[%llu]", (unsigned long long)dims[i]);
        if (k < 0) break;
        len += (size_t)k;
    }
}

/* --- files ------------------------------------------------------------------------------------- */

qsnn_status qsnn_h5_open(qsnn_ctx *ctx, const char *file, int rdwr, hid_t *out) {
    *out = -1;
    qsnn_h5_quiet();
    struct stat sb;
    if (stat(file, &sb) != 0) return qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot open: %s", file, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return qsnn_fail(ctx, QSNN_ERR_IO, "%s: is a directory, not a file", file);
    if (!S_ISREG(sb.st_mode)) return qsnn_fail(ctx, QSNN_ERR_IO, "%s: not a regular file", file);
    if (access(file, rdwr ? (R_OK | W_OK) : R_OK) != 0)
        return qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot open: %s", file, strerror(errno));
    hid_t f = H5Fopen(file, rdwr ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        char detail[512];
        qsnn_h5_detail(detail, sizeof detail);
        if (stack_has_lock_error())
            return qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot open (locked by another program?): %s", file, detail);
        return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: not an HDF5 file, or truncated%s%s", file, detail[0] ? ": " : "",
                         detail);
    }
    *out = f;
    return QSNN_OK;
}

qsnn_status qsnn_h5_create(qsnn_ctx *ctx, const char *file, hid_t *out) {
    *out = -1;
    qsnn_h5_quiet();
    hid_t f = H5Fcreate(file, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return h5failf(ctx, QSNN_ERR_IO, file, "cannot create");
    *out = f;
    return QSNN_OK;
}

qsnn_status qsnn_h5_close(qsnn_ctx *ctx, const char *file, hid_t fid) {
    if (fid < 0) return QSNN_OK;
    qsnn_status st = QSNN_OK;
    unsigned intent = 0;
    if (H5Fget_intent(fid, &intent) >= 0 && (intent & H5F_ACC_RDWR) && H5Fflush(fid, H5F_SCOPE_GLOBAL) < 0)
        st = h5failf(ctx, QSNN_ERR_IO, file, "cannot flush");
    if (H5Fclose(fid) < 0 && !st) st = h5failf(ctx, QSNN_ERR_IO, file, "cannot close");
    return st;
}

/* --- links ------------------------------------------------------------------------------------- */

int qsnn_h5_exists(hid_t loc, const char *name) {
    char buf[512];
    if (!name || !*name) return 0;
    if (snprintf(buf, sizeof buf, "%s", name) >= (int)sizeof buf) return 0;
    /* H5Lexists fails (rather than answering 0) when an intermediate group is missing: test each
     * prefix in turn. */
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
        *p = '/';
        if (e <= 0) return 0;
    }
    if (strcmp(buf, "/") != 0 && H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
    return H5Oexists_by_name(loc, buf, H5P_DEFAULT) > 0;
}

qsnn_status qsnn_h5_group_create(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, hid_t *out) {
    char obj[300];
    qsnn_h5_objname(loc, name, obj, sizeof obj);
    *out = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (*out < 0) return h5failf(ctx, QSNN_ERR_HDF5, file, "cannot create group %s", obj);
    return QSNN_OK;
}

qsnn_status qsnn_h5_group_open(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, hid_t *out) {
    char obj[300];
    qsnn_h5_objname(loc, name, obj, sizeof obj);
    *out = -1;
    if (!qsnn_h5_exists(loc, name)) return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: group %s is missing", file, obj);
    H5O_info_t info;
    if (H5Oget_info_by_name2(loc, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
        return h5failf(ctx, QSNN_ERR_HDF5, file, "cannot open group %s", obj);
    if (info.type != H5O_TYPE_GROUP) return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %s is not a group", file, obj);
    *out = H5Gopen2(loc, name, H5P_DEFAULT);
    if (*out < 0) return h5failf(ctx, QSNN_ERR_HDF5, file, "cannot open group %s", obj);
    return QSNN_OK;
}

/* Opens an existing dataset; missing: QSNN_ERR_FORMAT. */
static qsnn_status dset_open(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, const char *obj,
                             hid_t *out) {
    *out = -1;
    if (!qsnn_h5_exists(loc, name)) return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %s is missing", file, obj);
    H5O_info_t info;
    if (H5Oget_info_by_name2(loc, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
        return h5failf(ctx, QSNN_ERR_HDF5, file, "cannot open %s", obj);
    if (info.type != H5O_TYPE_DATASET) return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %s is not a dataset", file, obj);
    *out = H5Dopen2(loc, name, H5P_DEFAULT);
    if (*out < 0) return h5failf(ctx, QSNN_ERR_HDF5, file, "cannot open %s", obj);
    return QSNN_OK;
}

/* --- numeric datasets -------------------------------------------------------------------------- */

qsnn_status qsnn_h5_write_array(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, hid_t file_type,
                                hid_t mem_type, int rank, const hsize_t *dims, const void *data) {
    char obj[300];
    qsnn_h5_objname(loc, name, obj, sizeof obj);
    if (rank < 0 || rank > QSNN_H5_MAX_RANK)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: %s: rank %d (0..%d allowed)", file, obj, rank, QSNN_H5_MAX_RANK);
    qsnn_status st = QSNN_OK;
    hid_t d = -1;
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    if (sp < 0) {
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot write %s", obj);
        goto done;
    }
    d = H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) {
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot create %s", obj);
        goto done;
    }
    if (H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot write %s", obj);
done:
    if (d >= 0 && H5Dclose(d) < 0 && !st) st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot write %s", obj);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

qsnn_status qsnn_h5_write_f32(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, int rank,
                              const hsize_t *dims, const float *data) {
    return qsnn_h5_write_array(ctx, file, loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, rank, dims, data);
}

qsnn_status qsnn_h5_write_i32(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, int rank,
                              const hsize_t *dims, const int32_t *data) {
    return qsnn_h5_write_array(ctx, file, loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, rank, dims, data);
}

qsnn_status qsnn_h5_dims(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, int *rank, hsize_t *dims) {
    char obj[300];
    qsnn_h5_objname(loc, name, obj, sizeof obj);
    *rank = 0;
    hid_t d, sp = -1;
    qsnn_status st = dset_open(ctx, file, loc, name, obj, &d);
    if (st) return st;
    sp = H5Dget_space(d);
    int r = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (r < 0) {
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot read the shape of %s", obj);
    } else if (r > QSNN_H5_MAX_RANK) {
        st = qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED, "%s: %s has rank %d (at most %d supported)", file, obj, r,
                       QSNN_H5_MAX_RANK);
    } else if (r > 0 && H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot read the shape of %s", obj);
    } else {
        *rank = r;
    }
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    return st;
}

qsnn_status qsnn_h5_read_f32(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, float *out, size_t n) {
    char obj[300];
    qsnn_h5_objname(loc, name, obj, sizeof obj);
    hid_t d, t = -1, sp = -1;
    qsnn_status st = dset_open(ctx, file, loc, name, obj, &d);
    if (st) return st;
    t = H5Dget_type(d);
    sp = H5Dget_space(d);
    if (t < 0 || sp < 0) {
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot read %s", obj);
        goto done;
    }
    if (H5Tget_class(t) != H5T_FLOAT) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %s is not a floating-point dataset", file, obj);
        goto done;
    }
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (np < 0) {
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot read the shape of %s", obj);
        goto done;
    }
    if ((size_t)np != n) {
        st = qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s: %s has %lld elements, expected %zu", file, obj, (long long)np, n);
        goto done;
    }
    if (n && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        st = h5failf(ctx, QSNN_ERR_FORMAT, file, "cannot read %s", obj);
done:
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Dclose(d);
    return st;
}

/* --- strings ----------------------------------------------------------------------------------- */

/* Variable-length UTF-8 C string type; caller closes. */
static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Reads the single string held by an attribute (is_attr) or a dataset. */
static qsnn_status read_string(qsnn_ctx *ctx, const char *file, hid_t obj_id, int is_attr, const char *obj,
                               char **out) {
    *out = NULL;
    qsnn_status st = QSNN_OK;
    char *buf = NULL;
    hid_t mt = -1;
    hid_t ft = is_attr ? H5Aget_type(obj_id) : H5Dget_type(obj_id);
    hid_t sp = is_attr ? H5Aget_space(obj_id) : H5Dget_space(obj_id);
    if (ft < 0 || sp < 0) {
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot read %s", obj);
        goto done;
    }
    if (H5Tget_class(ft) != H5T_STRING) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %s is not a string", file, obj);
        goto done;
    }
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (np != 1) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %s holds %lld strings, expected one", file, obj, (long long)np);
        goto done;
    }
    htri_t vl = H5Tis_variable_str(ft);
    if (vl < 0) {
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot read %s", obj);
        goto done;
    }
    if (vl) {
        mt = H5Tcopy(H5T_C_S1);
        if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0) {
            st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot read %s", obj);
            goto done;
        }
        char *p = NULL;
        herr_t r = is_attr ? H5Aread(obj_id, mt, &p) : H5Dread(obj_id, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p);
        if (r < 0) {
            st = h5failf(ctx, QSNN_ERR_FORMAT, file, "cannot read %s", obj);
            goto done;
        }
        size_t len = p ? strlen(p) : 0;
        buf = qsnn_malloc(ctx, len + 1);
        if (buf) {
            if (len) memcpy(buf, p, len);
            buf[len] = 0;
        }
        if (p) H5free_memory(p);
        if (!buf) {
            st = QSNN_ERR_NOMEM;
            goto done;
        }
    } else {
        size_t sz = H5Tget_size(ft);
        if (sz == 0) {
            st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot read %s", obj);
            goto done;
        }
        mt = H5Tcopy(ft); /* same layout in memory: read the raw bytes */
        buf = qsnn_malloc(ctx, sz + 1);
        if (!buf) {
            st = QSNN_ERR_NOMEM;
            goto done;
        }
        herr_t r = mt < 0 ? -1
                   : is_attr ? H5Aread(obj_id, mt, buf)
                             : H5Dread(obj_id, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        if (r < 0) {
            st = h5failf(ctx, QSNN_ERR_FORMAT, file, "cannot read %s", obj);
            goto done;
        }
        buf[sz] = 0;
        if (H5Tget_strpad(ft) == H5T_STR_SPACEPAD) {
            size_t len = strlen(buf);
            while (len && buf[len - 1] == ' ') buf[--len] = 0;
        }
    }
done:
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (st) qsnn_free(ctx, buf);
    else *out = buf;
    return st;
}

qsnn_status qsnn_h5_write_str(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, const char *s) {
    char obj[300];
    qsnn_h5_objname(loc, name, obj, sizeof obj);
    hid_t t = vlen_str_type();
    if (t < 0) return h5failf(ctx, QSNN_ERR_HDF5, file, "cannot write %s", obj);
    const char *v = s ? s : "";
    qsnn_status st = qsnn_h5_write_array(ctx, file, loc, name, t, t, 0, NULL, &v);
    H5Tclose(t);
    return st;
}

qsnn_status qsnn_h5_read_str(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, char **out) {
    char obj[300];
    qsnn_h5_objname(loc, name, obj, sizeof obj);
    *out = NULL;
    hid_t d;
    qsnn_status st = dset_open(ctx, file, loc, name, obj, &d);
    if (st) return st;
    st = read_string(ctx, file, d, 0, obj, out);
    H5Dclose(d);
    return st;
}

/* --- attributes -------------------------------------------------------------------------------- */

int qsnn_h5_attr_exists(hid_t loc, const char *name) { return H5Aexists(loc, name) > 0; }

static qsnn_status write_attr(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, hid_t ftype,
                              hid_t mtype, const void *buf) {
    char obj[300];
    qsnn_h5_objname(loc, NULL, obj, sizeof obj);
    qsnn_status st = QSNN_OK;
    hid_t a = -1, sp = -1;
    htri_t e = H5Aexists(loc, name);
    if (e < 0 || (e > 0 && H5Adelete(loc, name) < 0)) {
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot write attribute '%s' on %s", name, obj);
        goto done;
    }
    sp = H5Screate(H5S_SCALAR);
    a = sp < 0 ? -1 : H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mtype, buf) < 0)
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot write attribute '%s' on %s", name, obj);
done:
    if (a >= 0 && H5Aclose(a) < 0 && !st)
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot write attribute '%s' on %s", name, obj);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

qsnn_status qsnn_h5_write_attr_i64(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, int64_t v) {
    return write_attr(ctx, file, loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

qsnn_status qsnn_h5_write_attr_f64(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, double v) {
    return write_attr(ctx, file, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

qsnn_status qsnn_h5_write_attr_str(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, const char *s) {
    hid_t t = vlen_str_type();
    if (t < 0) {
        char obj[300];
        qsnn_h5_objname(loc, NULL, obj, sizeof obj);
        return h5failf(ctx, QSNN_ERR_HDF5, file, "cannot write attribute '%s' on %s", name, obj);
    }
    const char *v = s ? s : "";
    qsnn_status st = write_attr(ctx, file, loc, name, t, t, &v);
    H5Tclose(t);
    return st;
}

/* Opens attribute `name` on loc; writes "attribute 'NAME' on OBJ" into label. */
static qsnn_status attr_open(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, char *label,
                             size_t label_size, hid_t *out) {
    char obj[300];
    qsnn_h5_objname(loc, NULL, obj, sizeof obj);
    snprintf(label, label_size, "attribute '%s' on %s", name, obj);
    *out = -1;
    htri_t e = H5Aexists(loc, name);
    if (e < 0) return h5failf(ctx, QSNN_ERR_HDF5, file, "cannot read %s", label);
    if (!e) return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %s is missing", file, label);
    *out = H5Aopen(loc, name, H5P_DEFAULT);
    if (*out < 0) return h5failf(ctx, QSNN_ERR_HDF5, file, "cannot read %s", label);
    return QSNN_OK;
}

/* Reads a scalar numeric attribute as mem_type; want_int: integer class only, else integer or float. */
static qsnn_status read_attr_num(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, int want_int,
                                 hid_t mem_type, void *out) {
    char label[400];
    hid_t a;
    qsnn_status st = attr_open(ctx, file, loc, name, label, sizeof label, &a);
    if (st) return st;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    if (t < 0 || sp < 0) {
        st = h5failf(ctx, QSNN_ERR_HDF5, file, "cannot read %s", label);
        goto done;
    }
    H5T_class_t c = H5Tget_class(t);
    if (!(c == H5T_INTEGER || (!want_int && c == H5T_FLOAT))) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %s is not %s", file, label, want_int ? "an integer" : "a number");
        goto done;
    }
    if (H5Sget_simple_extent_npoints(sp) != 1) {
        st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %s is not a single value", file, label);
        goto done;
    }
    if (H5Aread(a, mem_type, out) < 0) st = h5failf(ctx, QSNN_ERR_FORMAT, file, "cannot read %s", label);
done:
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return st;
}

qsnn_status qsnn_h5_read_attr_i64(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, int64_t *v) {
    return read_attr_num(ctx, file, loc, name, 1, H5T_NATIVE_INT64, v);
}

qsnn_status qsnn_h5_read_attr_f64(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, double *v) {
    return read_attr_num(ctx, file, loc, name, 0, H5T_NATIVE_DOUBLE, v);
}

qsnn_status qsnn_h5_read_attr_str(qsnn_ctx *ctx, const char *file, hid_t loc, const char *name, char **out) {
    char label[400];
    *out = NULL;
    hid_t a;
    qsnn_status st = attr_open(ctx, file, loc, name, label, sizeof label, &a);
    if (st) return st;
    st = read_string(ctx, file, a, 1, label, out);
    H5Aclose(a);
    return st;
}
