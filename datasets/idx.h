/* IDX files (the MNIST / Fashion-MNIST format) and the image-classification dataset built from them.
 *
 * An IDX file is: two zero bytes, a type byte (only 0x08, unsigned byte, is supported), a byte with
 * the number of dimensions, that many big-endian uint32 sizes, then the data in row-major order.
 * Files may be raw or gzip-compressed; both are read the same way. */
#ifndef QSNN_DATASETS_IDX_H
#define QSNN_DATASETS_IDX_H

#include <stdint.h>
#include "core/context.h"

/* Reads a whole IDX file of unsigned bytes with exactly expect_ndim (1..3) dimensions.
 * On success *data (allocated with qsnn_malloc; the caller frees it with qsnn_free) holds
 * dims[0] * ... * dims[expect_ndim-1] bytes; dims beyond expect_ndim are set to 1.
 * On failure *data is NULL and the context names the file and the problem:
 * QSNN_ERR_IO (cannot open/read), QSNN_ERR_FORMAT (bad magic, zero or oversized dims, truncated
 * data, trailing bytes, corrupt gzip stream), QSNN_ERR_UNSUPPORTED (type byte other than 0x08),
 * QSNN_ERR_MISMATCH (ndim differs from expect_ndim). */
qsnn_status qsnn_idx_read(qsnn_ctx *ctx, const char *path, int expect_ndim, uint8_t **data, int64_t dims[3]);

/* An in-memory image-classification split: n images of rows × cols bytes and n labels. */
typedef struct qsnn_dataset {
    int64_t n;
    int rows, cols, features; /* features = rows * cols */
    int n_classes;            /* max label + 1 */
    uint8_t *images;          /* [n][features] */
    uint8_t *labels;          /* [n] */
} qsnn_dataset;

/* Loads split "train" or "t10k" from dir: DIR/SPLIT-images-idx3-ubyte.gz (else without .gz) and
 * DIR/SPLIT-labels-idx1-ubyte.gz (else without .gz). limit > 0 keeps the first min(limit, n) samples.
 * *out is owned by the caller and released with qsnn_dataset_destroy. */
qsnn_status qsnn_dataset_load(qsnn_ctx *ctx, const char *dir, const char *split, int limit, qsnn_dataset **out);

/* Frees the dataset and sets *ds to NULL; NULL-safe. */
void qsnn_dataset_destroy(qsnn_ctx *ctx, qsnn_dataset **ds);

#endif
