#include "io/h5atomic.h"
#include "io/h5util.h"
#include "io/tmpfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* fsync a file or directory by name; returns 0 or an errno value. */
static int sync_path(const char *p, int dir) {
    int fd = open(p, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return errno;
    int e = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return e;
}

qsnn_status qsnn_h5_atomic_create(qsnn_ctx *ctx, const char *path, qsnn_h5_atomic *a) {
    a->path = path, a->tmp = NULL, a->fid = -1, a->slot = -1;
    if (!path || !*path) return qsnn_fail(ctx, QSNN_ERR_ARG, "no output path given");
    qsnn_h5_quiet();
    const size_t tlen = strlen(path) + 32;
    if (!(a->tmp = qsnn_malloc(ctx, tlen))) return QSNN_ERR_NOMEM;
    snprintf(a->tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    /* Create it ourselves first: a missing directory or a permission problem then reads as the
     * system's one-line reason rather than HDF5's. */
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        qsnn_status st =
            qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot create the temporary file %s: %s", path, a->tmp, strerror(errno));
        qsnn_free(ctx, a->tmp);
        a->tmp = NULL;
        return st;
    }
    close(fd);
    a->slot = qsnn_tmpfile_register(a->tmp);
    a->fid = H5Fcreate(a->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (a->fid < 0) {
        char what[600];
        snprintf(what, sizeof what, "cannot create the temporary file %s", a->tmp);
        qsnn_status st = qsnn_h5_fail_as(ctx, QSNN_ERR_IO, path, what);
        qsnn_h5_atomic_abort(ctx, a);
        return st;
    }
    return QSNN_OK;
}

qsnn_status qsnn_h5_atomic_commit(qsnn_ctx *ctx, qsnn_h5_atomic *a) {
    qsnn_status st = qsnn_h5_close(ctx, a->path, a->fid); /* flush + close */
    a->fid = -1;
    if (!st) {
        int e = sync_path(a->tmp, 0);
        if (e) st = qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot sync the temporary file %s: %s", a->path, a->tmp, strerror(e));
    }
    if (!st && rename(a->tmp, a->path) != 0)
        st = qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot rename %s to it: %s", a->path, a->tmp, strerror(errno));
    if (st) {
        qsnn_h5_atomic_abort(ctx, a);
        return st;
    }
    qsnn_tmpfile_forget(a->slot);
    a->slot = -1;
    char *dir = qsnn_malloc(ctx, strlen(a->path) + 2); /* make the rename itself durable (best effort) */
    if (dir) {
        strcpy(dir, a->path);
        char *slash = strrchr(dir, '/');
        if (!slash) strcpy(dir, ".");
        else if (slash == dir) dir[1] = 0;
        else *slash = 0;
        sync_path(dir, 1);
        qsnn_free(ctx, dir);
    }
    qsnn_free(ctx, a->tmp);
    a->tmp = NULL;
    return QSNN_OK;
}

void qsnn_h5_atomic_abort(qsnn_ctx *ctx, qsnn_h5_atomic *a) {
    if (a->fid >= 0) H5Fclose(a->fid); /* direct call: keep the message already recorded */
    a->fid = -1;
    if (a->tmp) unlink(a->tmp);
    qsnn_tmpfile_forget(a->slot);
    a->slot = -1;
    qsnn_free(ctx, a->tmp);
    a->tmp = NULL;
}
