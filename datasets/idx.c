#include "datasets/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "datasets/data_cfg.h"

/* Sizes must stay below 2^31 bytes: gzread counts in int, and no real IDX file comes close. */
#define IDX_MAX_BYTES ((uint64_t)1 << 31)
#define IDX_READ_CHUNK (1u << 28)
#define DATASET_PATH_CAP (QSNN_PATH_MAX + 64)

/* Turns the stream's error state after a failed read into our status and message. */
static qsnn_status gz_fail(qsnn_ctx *ctx, gzFile g, const char *path) {
    int errnum = Z_OK;
    const char *msg = gzerror(g, &errnum);
    switch (errnum) {
    case Z_ERRNO: return qsnn_fail(ctx, QSNN_ERR_IO, "%s: read error: %s", path, strerror(errno));
    case Z_MEM_ERROR: return qsnn_fail(ctx, QSNN_ERR_NOMEM, "%s: out of memory decompressing", path);
    case Z_BUF_ERROR: return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: truncated gzip stream (%s)", path, msg);
    default: return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: corrupt gzip stream: %s", path, msg);
    }
}

/* Reads up to n bytes into buf; *got is what arrived. A short read at a clean end of input is
 * QSNN_OK (the caller decides whether that is a truncation); a stream error is not. */
static qsnn_status read_upto(qsnn_ctx *ctx, gzFile g, const char *path, uint8_t *buf, uint64_t n, uint64_t *got) {
    *got = 0;
    while (*got < n) {
        const uint64_t left = n - *got;
        const unsigned want = left > IDX_READ_CHUNK ? IDX_READ_CHUNK : (unsigned)left;
        const int r = gzread(g, buf + *got, want);
        if (r < 0) return gz_fail(ctx, g, path);
        if (r == 0) break;
        *got += (uint64_t)r;
    }
    return QSNN_OK;
}

/* A short read: name what was missing, and say so when a gzip stream was cut mid-way. */
static qsnn_status truncated(qsnn_ctx *ctx, gzFile g, const char *path, const char *what, uint64_t expected,
                             uint64_t found) {
    int errnum = Z_OK;
    gzerror(g, &errnum);
    return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: truncated: expected %llu %s bytes, found %llu%s", path,
                     (unsigned long long)expected, what, (unsigned long long)found,
                     errnum == Z_BUF_ERROR ? " (compressed stream ends early)" : "");
}

/* zlib misses a trailer cut short when a large read consumed all the compressed input, so check
 * the gzip trailer (CRC-32 and length of the uncompressed bytes) ourselves. A multi-member gzip
 * file (concatenated streams, rare for datasets) is refused by this check too. */
static qsnn_status check_gzip_trailer(qsnn_ctx *ctx, const char *path, const uint8_t *head, const uint8_t *dims,
                                      uint64_t dim_bytes, const uint8_t *data, uint64_t n) {
    FILE *f = fopen(path, "rb");
    uint8_t t[8];
    const int ok = f && fseek(f, -8, SEEK_END) == 0 && fread(t, 1, 8, f) == 8;
    if (f) fclose(f);
    if (!ok) return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: truncated gzip stream (no trailer)", path);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, head, 4);
    crc = crc32(crc, dims, (uInt)dim_bytes);
    for (uint64_t off = 0; off < n; off += 1u << 30) { /* crc32 takes 32-bit lengths */
        const uint64_t len = n - off < (1u << 30) ? n - off : (1u << 30);
        crc = crc32(crc, data + off, (uInt)len);
    }
    const uint32_t want_crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    const uint32_t want_len = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
    if ((uint32_t)crc != want_crc || (uint32_t)(4 + dim_bytes + n) != want_len)
        return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: gzip checksum or length mismatch (truncated or corrupt file)",
                         path);
    return QSNN_OK;
}

static qsnn_status read_stream(qsnn_ctx *ctx, gzFile g, const char *path, int expect_ndim, uint8_t **data,
                               int64_t dims[3]) {
    uint8_t head[4], raw_dims[3 * 4];
    uint64_t got;
    qsnn_status st = read_upto(ctx, g, path, head, sizeof head, &got);
    if (st) return st;
    if (got < sizeof head) return truncated(ctx, g, path, "header", sizeof head, got);
    if (head[0] != 0 || head[1] != 0)
        return qsnn_fail(ctx, QSNN_ERR_FORMAT,
                         "%s: bad IDX magic: first bytes 0x%02x 0x%02x, expected 0x00 0x00 (not an IDX file?)", path,
                         head[0], head[1]);
    if (head[2] != 0x08)
        return qsnn_fail(ctx, QSNN_ERR_UNSUPPORTED, "%s: unsupported IDX type 0x%02x (only 0x08, unsigned byte)",
                         path, head[2]);
    if (head[3] != expect_ndim)
        return qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s: expected an IDX file with %d dimensions, found %d", path,
                         expect_ndim, head[3]);

    const uint64_t dim_bytes = 4u * (uint64_t)expect_ndim;
    st = read_upto(ctx, g, path, raw_dims, dim_bytes, &got);
    if (st) return st;
    if (got < dim_bytes) return truncated(ctx, g, path, "dimension", dim_bytes, got);
    uint64_t total = 1;
    for (int d = 0; d < expect_ndim; d++) {
        const uint8_t *p = raw_dims + 4 * d;
        const uint64_t size = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
        if (size == 0) return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: dimension %d has size 0", path, d);
        total *= size; /* total < 2^31 and size < 2^32 before this, so no overflow */
        if (total >= IDX_MAX_BYTES)
            return qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: data size exceeds the 2 GiB limit (dimensions too large)",
                             path);
        dims[d] = (int64_t)size;
    }

    uint8_t *buf = qsnn_malloc(ctx, (size_t)total);
    if (!buf) return QSNN_ERR_NOMEM;
    st = read_upto(ctx, g, path, buf, total, &got);
    if (!st && got < total) st = truncated(ctx, g, path, "data", total, got);
    if (!st) {
        /* Count what follows rather than just noticing it: the number tells a wrong header from junk. */
        uint8_t extra[4096];
        uint64_t trailing = 0;
        for (;;) {
            const int r = gzread(g, extra, sizeof extra);
            if (r < 0) { st = gz_fail(ctx, g, path); break; }
            if (r == 0) {
                /* A gzip stream cut inside its trailer still yields all the data; its checksum is unverified. */
                int errnum = Z_OK;
                gzerror(g, &errnum);
                if (errnum != Z_OK) st = gz_fail(ctx, g, path);
                break;
            }
            trailing += (uint64_t)r;
        }
        if (!st && trailing)
            st = qsnn_fail(ctx, QSNN_ERR_FORMAT, "%s: %llu unexpected bytes after the data", path,
                           (unsigned long long)trailing);
        if (!st && !gzdirect(g)) st = check_gzip_trailer(ctx, path, head, raw_dims, dim_bytes, buf, total);
    }
    if (st) {
        qsnn_free(ctx, buf);
        return st;
    }
    *data = buf;
    return QSNN_OK;
}

qsnn_status qsnn_idx_read(qsnn_ctx *ctx, const char *path, int expect_ndim, uint8_t **data, int64_t dims[3]) {
    if (data) *data = NULL;
    if (!path || !data || !dims) return qsnn_fail(ctx, QSNN_ERR_ARG, "qsnn_idx_read: NULL argument");
    if (expect_ndim < 1 || expect_ndim > 3)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "qsnn_idx_read: expect_ndim must be 1..3, got %d", expect_ndim);
    for (int d = 0; d < 3; d++) dims[d] = 1;

    /* open() first so that errno is reliably the reason (gzopen does not promise to keep it). */
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        close(fd);
        return qsnn_fail(ctx, QSNN_ERR_IO, "%s: is a directory, expected an IDX file", path);
    }
    gzFile g = gzdopen(fd, "rb");
    if (!g) {
        close(fd);
        return qsnn_fail(ctx, QSNN_ERR_NOMEM, "%s: cannot allocate a gzip reader", path);
    }
    gzbuffer(g, 1u << 17); /* fewer read() calls on the 47 MB training images */
    const qsnn_status st = read_stream(ctx, g, path, expect_ndim, data, dims);
    gzclose_r(g);
    if (st) for (int d = 0; d < 3; d++) dims[d] = 0;
    return st;
}

/* DIR/SPLIT-KIND.gz if present, else DIR/SPLIT-KIND; fails naming both when neither exists. */
static qsnn_status find_file(qsnn_ctx *ctx, const char *dir, const char *split, const char *kind, char *path,
                             size_t cap) {
    struct stat sb;
    int n = snprintf(path, cap, "%s/%s-%s.gz", dir, split, kind);
    if (n < 0 || (size_t)n >= cap) return qsnn_fail(ctx, QSNN_ERR_ARG, "%s: dataset path too long", dir);
    if (stat(path, &sb) == 0) return QSNN_OK;
    path[n - 3] = 0; /* drop ".gz" */
    if (stat(path, &sb) == 0) return QSNN_OK;
    return qsnn_fail(ctx, QSNN_ERR_IO, "%s: missing dataset file: looked for %s.gz and %s", dir, path, path);
}

void qsnn_dataset_destroy(qsnn_ctx *ctx, qsnn_dataset **ds) {
    if (!ds || !*ds) return;
    qsnn_free(ctx, (*ds)->images);
    qsnn_free(ctx, (*ds)->labels);
    qsnn_free(ctx, *ds);
    *ds = NULL;
}

/* Replaces *p (holding at least keep bytes) by a copy of its first keep bytes, so that a quick run
 * on a few samples does not hold the whole split in memory. */
static qsnn_status shrink(qsnn_ctx *ctx, uint8_t **p, size_t keep) {
    uint8_t *q = qsnn_malloc(ctx, keep);
    if (!q) return QSNN_ERR_NOMEM;
    memcpy(q, *p, keep);
    qsnn_free(ctx, *p);
    *p = q;
    return QSNN_OK;
}

qsnn_status qsnn_dataset_load(qsnn_ctx *ctx, const char *dir, const char *split, int limit, qsnn_dataset **out) {
    if (out) *out = NULL;
    if (!dir || !split || !out) return qsnn_fail(ctx, QSNN_ERR_ARG, "qsnn_dataset_load: NULL argument");
    if (strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0)
        return qsnn_fail(ctx, QSNN_ERR_ARG, "dataset split must be \"train\" or \"t10k\", got \"%s\"", split);
    if (limit < 0) return qsnn_fail(ctx, QSNN_ERR_ARG, "dataset limit must be >= 0, got %d", limit);
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return qsnn_fail(ctx, QSNN_ERR_IO, "%s: cannot open dataset directory: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return qsnn_fail(ctx, QSNN_ERR_IO, "%s: dataset path is not a directory", dir);

    char img_path[DATASET_PATH_CAP], lbl_path[DATASET_PATH_CAP];
    qsnn_status st = find_file(ctx, dir, split, "images-idx3-ubyte", img_path, sizeof img_path);
    if (!st) st = find_file(ctx, dir, split, "labels-idx1-ubyte", lbl_path, sizeof lbl_path);
    if (st) return st;

    qsnn_dataset *ds = qsnn_calloc(ctx, 1, sizeof *ds);
    if (!ds) return QSNN_ERR_NOMEM;
    int64_t idims[3], ldims[3];
    st = qsnn_idx_read(ctx, img_path, 3, &ds->images, idims);
    if (!st) st = qsnn_idx_read(ctx, lbl_path, 1, &ds->labels, ldims);
    if (!st && idims[0] != ldims[0])
        st = qsnn_fail(ctx, QSNN_ERR_MISMATCH, "%s has %lld images but %s has %lld labels", img_path,
                       (long long)idims[0], lbl_path, (long long)ldims[0]);
    if (st) {
        qsnn_dataset_destroy(ctx, &ds);
        return st;
    }
    /* idx_read keeps every size below 2^31, so these fit in int. */
    ds->n = idims[0];
    ds->rows = (int)idims[1];
    ds->cols = (int)idims[2];
    ds->features = ds->rows * ds->cols;

    /* Over the whole split, so that a limited quick run keeps the same output layer size. */
    int max_label = 0;
    for (int64_t s = 0; s < ds->n; s++)
        if (ds->labels[s] > max_label) max_label = ds->labels[s];
    ds->n_classes = max_label + 1;

    if (limit > 0 && limit < ds->n) {
        ds->n = limit;
        st = shrink(ctx, &ds->images, (size_t)limit * (size_t)ds->features);
        if (!st) st = shrink(ctx, &ds->labels, (size_t)limit);
        if (st) {
            qsnn_dataset_destroy(ctx, &ds);
            return st;
        }
    }
    *out = ds;
    return QSNN_OK;
}
