/* Atomic HDF5 output: a file is written under a temporary name "PATH.tmp.<pid>" and renamed over
 * PATH only when complete (flushed and fsync'ed), so readers never see a half-written file and an
 * error leaves PATH as it was; the temporary file is registered with io/tmpfiles.h, so Ctrl-C
 * removes it too. Every output file of qsnn goes through here. */
#ifndef QSNN_IO_H5ATOMIC_H
#define QSNN_IO_H5ATOMIC_H

#include <hdf5.h>
#include "core/context.h"

typedef struct qsnn_h5_atomic {
    const char *path; /* borrowed */
    char *tmp;        /* the temporary name, NULL when not created */
    hid_t fid;        /* the open file, -1 once closed */
    int slot;         /* in the temporary-file registry (io/tmpfiles.h), -1 when not registered */
} qsnn_h5_atomic;

/* Creates the temporary file and opens it with HDF5. A missing folder or a permission problem gives
 * QSNN_ERR_IO with the system's reason. On error nothing is left behind. */
qsnn_status qsnn_h5_atomic_create(qsnn_ctx *ctx, const char *path, qsnn_h5_atomic *a);
/* Flushes, closes, fsyncs and renames over PATH (then syncs the folder, best effort). On error the
 * temporary file is removed. */
qsnn_status qsnn_h5_atomic_commit(qsnn_ctx *ctx, qsnn_h5_atomic *a);
/* Closes and removes the temporary file, keeping the context's message. Safe after commit or on a
 * zeroed struct. */
void qsnn_h5_atomic_abort(qsnn_ctx *ctx, qsnn_h5_atomic *a);

#endif
