/* IDX reader and dataset loader: round trips (raw and gzip) and every rejected malformation,
 * each checked for its status code and for a message that names the file. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/context.h"
#include "datasets/idx.h"

static char tmpdir[256];
static qsnn_ctx *ctx;

static void setup(void) {
    strcpy(tmpdir, "/tmp/qsnn_test_idx_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    cr_assert_eq(qsnn_ctx_create(NULL, 1, 0, &ctx), QSNN_OK);
}

/* Removes the temp dir and one level of subdirectories (all the fixtures create). */
static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void teardown(void) {
    qsnn_ctx_destroy(&ctx);
    rm_tree(tmpdir);
}

TestSuite(idx, .init = setup, .fini = teardown);

/* Full path of a fixture inside the temp dir (static buffers, rotating so two can be live). */
static const char *fixture(const char *name) {
    static char bufs[4][512];
    static int next;
    char *p = bufs[next++ & 3];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void write_bytes(const char *path, int gz, const uint8_t *bytes, size_t n) {
    if (gz) {
        gzFile g = gzopen(path, "wb");
        cr_assert_not_null(g);
        if (n) cr_assert_eq(gzwrite(g, bytes, (unsigned)n), (int)n);
        cr_assert_eq(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        if (n) cr_assert_eq(fwrite(bytes, 1, n, f), n);
        cr_assert_eq(fclose(f), 0);
    }
}

/* Builds an IDX image in buf: header with the given type and dims, then ndata bytes of payload
 * (ndata may differ from the product of dims, to make malformed files). Returns its length. */
static size_t make_idx(uint8_t *buf, uint8_t type, int ndim, const uint32_t *dims, const uint8_t *data, size_t ndata) {
    size_t n = 0;
    buf[n++] = 0;
    buf[n++] = 0;
    buf[n++] = type;
    buf[n++] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++) {
        buf[n++] = (uint8_t)(dims[d] >> 24);
        buf[n++] = (uint8_t)(dims[d] >> 16);
        buf[n++] = (uint8_t)(dims[d] >> 8);
        buf[n++] = (uint8_t)dims[d];
    }
    memcpy(buf + n, data, ndata);
    return n + ndata;
}

/* Writes an IDX file of unsigned bytes whose payload is byte k = (k * 7 + 3) mod 256. */
static void write_idx(const char *path, int gz, int ndim, const uint32_t *dims, size_t ndata) {
    uint8_t *data = malloc(ndata + 1), *buf = malloc(ndata + 64);
    for (size_t k = 0; k < ndata; k++) data[k] = (uint8_t)(k * 7 + 3);
    write_bytes(path, gz, buf, make_idx(buf, 0x08, ndim, dims, data, ndata));
    free(data);
    free(buf);
}

/* Asserts the status and that the message names the file and contains the key phrase. */
static void expect_error(qsnn_status got, qsnn_status want, const char *path, const char *phrase) {
    const char *msg = qsnn_last_error(ctx);
    cr_assert_eq(got, want, "status %d (%s), expected %d; message: %s", got, qsnn_strerror(got), want, msg);
    cr_assert_not_null(strstr(msg, path), "message does not name %s: %s", path, msg);
    cr_assert_not_null(strstr(msg, phrase), "message lacks \"%s\": %s", phrase, msg);
}

static void roundtrip(int gz) {
    const char *path = fixture(gz ? "rt.idx.gz" : "rt.idx");
    const uint32_t dims[3] = {2, 3, 5};
    write_idx(path, gz, 3, dims, 30);
    uint8_t *data = NULL;
    int64_t got[3];
    cr_assert_eq(qsnn_idx_read(ctx, path, 3, &data, got), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(got[0], 2);
    cr_assert_eq(got[1], 3);
    cr_assert_eq(got[2], 5);
    for (int k = 0; k < 30; k++) cr_assert_eq(data[k], (uint8_t)(k * 7 + 3), "byte %d", k);
    qsnn_free(ctx, data);

    const uint32_t d1[1] = {300};
    write_idx(path, gz, 1, d1, 300);
    cr_assert_eq(qsnn_idx_read(ctx, path, 1, &data, got), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(got[0], 300);
    cr_assert_eq(got[1], 1);
    cr_assert_eq(got[2], 1);
    for (int k = 0; k < 300; k++) cr_assert_eq(data[k], (uint8_t)(k * 7 + 3), "byte %d", k);
    qsnn_free(ctx, data);
}

Test(idx, roundtrip_raw) { roundtrip(0); }
Test(idx, roundtrip_gzip) { roundtrip(1); }

Test(idx, bad_magic) {
    const char *path = fixture("magic.idx");
    uint8_t buf[64];
    const uint32_t dims[1] = {4};
    size_t n = make_idx(buf, 0x08, 1, dims, (const uint8_t *)"abcd", 4);
    buf[1] = 0x01;
    write_bytes(path, 0, buf, n);
    uint8_t *data = (uint8_t *)1;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, path, 1, &data, d), QSNN_ERR_FORMAT, path, "magic");
    cr_assert_null(data);
}

Test(idx, wrong_type) {
    const char *path = fixture("type.idx.gz");
    uint8_t buf[64];
    const uint32_t dims[1] = {1};
    write_bytes(path, 1, buf, make_idx(buf, 0x0D, 1, dims, (const uint8_t *)"abcd", 4));
    uint8_t *data;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, path, 1, &data, d), QSNN_ERR_UNSUPPORTED, path, "unsupported IDX type 0x0d");
}

Test(idx, wrong_ndim) {
    const char *path = fixture("ndim.idx");
    const uint32_t dims[1] = {10};
    write_idx(path, 0, 1, dims, 10);
    uint8_t *data;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, path, 3, &data, d), QSNN_ERR_MISMATCH, path, "expected an IDX file with 3 dimensions, found 1");
}

Test(idx, zero_dim) {
    const char *path = fixture("zero.idx");
    const uint32_t dims[3] = {4, 0, 2};
    write_idx(path, 0, 3, dims, 0);
    uint8_t *data;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, path, 3, &data, d), QSNN_ERR_FORMAT, path, "dimension 1 has size 0");
}

Test(idx, oversized) {
    const char *path = fixture("huge.idx");
    const uint32_t dims[3] = {65536, 32768, 1}; /* exactly 2^31 bytes: one past the limit */
    write_idx(path, 0, 3, dims, 16);
    uint8_t *data;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, path, 3, &data, d), QSNN_ERR_FORMAT, path, "2 GiB");
}

Test(idx, truncated_header) {
    const char *path = fixture("short.idx");
    const uint8_t bytes[6] = {0, 0, 8, 3, 0, 0};
    write_bytes(path, 0, bytes, sizeof bytes);
    uint8_t *data;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, path, 3, &data, d), QSNN_ERR_FORMAT, path, "truncated: expected 12 dimension bytes, found 2");
}

static void truncated_data(int gz) {
    const char *path = fixture(gz ? "trunc.idx.gz" : "trunc.idx");
    const uint32_t dims[3] = {2, 3, 4};
    write_idx(path, gz, 3, dims, 20);
    uint8_t *data = (uint8_t *)1;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, path, 3, &data, d), QSNN_ERR_FORMAT, path, "truncated: expected 24 data bytes, found 20");
    cr_assert_null(data);
}

Test(idx, truncated_data_raw) { truncated_data(0); }
Test(idx, truncated_data_gzip) { truncated_data(1); }

/* A gzip file cut mid-stream (as by an interrupted download). */
Test(idx, truncated_gzip_stream) {
    const char *path = fixture("cut.idx.gz");
    const uint32_t dims[1] = {50000};
    uint8_t *data = malloc(50000), *buf = malloc(50064);
    uint32_t s = 1;
    for (int k = 0; k < 50000; k++) data[k] = (uint8_t)((s = s * 1103515245u + 12345u) >> 24);
    write_bytes(path, 1, buf, make_idx(buf, 0x08, 1, dims, data, 50000));
    free(data);
    free(buf);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(truncate(path, sb.st_size / 2), 0);
    uint8_t *out;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, path, 1, &out, d), QSNN_ERR_FORMAT, path, "truncated");
}

/* A gzip file cut inside its 8-byte trailer still decompresses to all the data; zlib's gzread
 * does not notice when a large read consumed the input, so the reader checks CRC and length. */
static void trailer_cut(off_t cut) {
    const char *path = fixture("trailer.idx.gz");
    enum { N = 4000000 }; /* image-like: mostly zeros, compresses well */
    const uint32_t dims[1] = {N};
    uint8_t *data = calloc(N, 1), *buf = malloc(N + 64);
    uint32_t s = 7;
    for (int k = 0; k < N; k += 3) data[k] = (uint8_t)((s = s * 1103515245u + 12345u) >> 29);
    write_bytes(path, 1, buf, make_idx(buf, 0x08, 1, dims, data, N));
    free(data);
    free(buf);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(truncate(path, sb.st_size - cut), 0);
    uint8_t *out;
    int64_t d[3];
    const qsnn_status st = qsnn_idx_read(ctx, path, 1, &out, d);
    cr_expect_neq(st, QSNN_OK, "a gzip file missing %d trailer bytes was accepted", (int)cut);
    cr_expect(strstr(qsnn_last_error(ctx), path) != NULL, "message names the file: %s", qsnn_last_error(ctx));
}

Test(idx, gzip_trailer_cut_by_1) { trailer_cut(1); }
Test(idx, gzip_trailer_cut_by_4) { trailer_cut(4); }

static void trailing(int gz) {
    const char *path = fixture(gz ? "trail.idx.gz" : "trail.idx");
    const uint32_t dims[3] = {2, 3, 4};
    write_idx(path, gz, 3, dims, 29);
    uint8_t *data;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, path, 3, &data, d), QSNN_ERR_FORMAT, path, "5 unexpected bytes after the data");
}

Test(idx, trailing_raw) { trailing(0); }
Test(idx, trailing_gzip) { trailing(1); }

Test(idx, corrupt_gzip_body) {
    const char *path = fixture("corrupt.idx.gz");
    const uint32_t dims[1] = {20000};
    uint8_t *data = malloc(20000), *buf = malloc(20064);
    uint32_t s = 7;
    for (int k = 0; k < 20000; k++) data[k] = (uint8_t)((s = s * 1103515245u + 12345u) >> 28); /* compressible */
    write_bytes(path, 1, buf, make_idx(buf, 0x08, 1, dims, data, 20000));
    free(data);
    free(buf);
    /* Flip bytes in the middle of the compressed body, leaving the gzip header and trailer intact. */
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    cr_assert_gt(size, 200);
    uint8_t mid[16];
    cr_assert_eq(fseek(f, size / 2, SEEK_SET), 0);
    cr_assert_eq(fread(mid, 1, sizeof mid, f), sizeof mid);
    for (size_t k = 0; k < sizeof mid; k++) mid[k] ^= 0xA5;
    cr_assert_eq(fseek(f, size / 2, SEEK_SET), 0);
    cr_assert_eq(fwrite(mid, 1, sizeof mid, f), sizeof mid);
    cr_assert_eq(fclose(f), 0);
    uint8_t *out = (uint8_t *)1;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, path, 1, &out, d), QSNN_ERR_FORMAT, path, "corrupt gzip stream");
    cr_assert_null(out);
}

Test(idx, missing_file) {
    const char *path = fixture("nope.idx");
    uint8_t *data;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, path, 1, &data, d), QSNN_ERR_IO, path, "No such file");
}

Test(idx, directory_is_not_a_file) {
    uint8_t *data;
    int64_t d[3];
    expect_error(qsnn_idx_read(ctx, tmpdir, 1, &data, d), QSNN_ERR_IO, tmpdir, "directory");
}

/* ---- dataset loader ---- */

/* n images of 2x3 pixels (raw or gzip) and n_labels labels, labels[k] = k % 7. */
static void write_split(const char *split, int img_gz, int lbl_gz, uint32_t n, uint32_t n_labels) {
    char name[128];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", split, img_gz ? ".gz" : "");
    const uint32_t idims[3] = {n, 2, 3};
    write_idx(fixture(name), img_gz, 3, idims, (size_t)n * 6);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", split, lbl_gz ? ".gz" : "");
    uint8_t *lab = malloc(n_labels), *buf = malloc(n_labels + 16);
    for (uint32_t k = 0; k < n_labels; k++) lab[k] = (uint8_t)(k % 7);
    write_bytes(fixture(name), lbl_gz, buf, make_idx(buf, 0x08, 1, &n_labels, lab, n_labels));
    free(lab);
    free(buf);
}

Test(idx, dataset_load) {
    write_split("train", 1, 0, 9, 9);
    qsnn_dataset *ds = NULL;
    cr_assert_eq(qsnn_dataset_load(ctx, tmpdir, "train", 0, &ds), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(ds->n, 9);
    cr_assert_eq(ds->rows, 2);
    cr_assert_eq(ds->cols, 3);
    cr_assert_eq(ds->features, 6);
    cr_assert_eq(ds->n_classes, 7);
    for (int k = 0; k < 54; k++) cr_assert_eq(ds->images[k], (uint8_t)(k * 7 + 3));
    for (int k = 0; k < 9; k++) cr_assert_eq(ds->labels[k], k % 7);
    qsnn_dataset_destroy(ctx, &ds);
    cr_assert_null(ds);
    qsnn_dataset_destroy(ctx, &ds); /* no-op */
    qsnn_dataset_destroy(ctx, NULL);
}

Test(idx, dataset_limit) {
    write_split("t10k", 0, 1, 9, 9);
    qsnn_dataset *ds = NULL;
    cr_assert_eq(qsnn_dataset_load(ctx, tmpdir, "t10k", 3, &ds), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(ds->n, 3);
    cr_assert_eq(ds->n_classes, 7, "n_classes comes from the whole split, not the first 3 labels");
    for (int k = 0; k < 18; k++) cr_assert_eq(ds->images[k], (uint8_t)(k * 7 + 3));
    for (int k = 0; k < 3; k++) cr_assert_eq(ds->labels[k], k);
    qsnn_dataset_destroy(ctx, &ds);
    cr_assert_eq(qsnn_dataset_load(ctx, tmpdir, "t10k", 100, &ds), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(ds->n, 9, "a limit above n is clamped");
    qsnn_dataset_destroy(ctx, &ds);
}

Test(idx, dataset_prefers_gzip) {
    write_split("train", 1, 1, 4, 4);
    /* A raw labels file with different content next to the .gz one must be ignored. */
    uint8_t buf[32];
    const uint32_t n = 4;
    write_bytes(fixture("train-labels-idx1-ubyte"), 0, buf, make_idx(buf, 0x08, 1, &n, (const uint8_t *)"\5\5\5\5", 4));
    qsnn_dataset *ds = NULL;
    cr_assert_eq(qsnn_dataset_load(ctx, tmpdir, "train", 0, &ds), QSNN_OK, "%s", qsnn_last_error(ctx));
    for (int k = 0; k < 4; k++) cr_assert_eq(ds->labels[k], k);
    qsnn_dataset_destroy(ctx, &ds);
}

Test(idx, dataset_count_mismatch) {
    write_split("train", 0, 0, 3, 4);
    qsnn_dataset *ds = (qsnn_dataset *)1;
    qsnn_status st = qsnn_dataset_load(ctx, tmpdir, "train", 0, &ds);
    expect_error(st, QSNN_ERR_MISMATCH, fixture("train-images-idx3-ubyte"), "has 3 images");
    expect_error(st, QSNN_ERR_MISMATCH, fixture("train-labels-idx1-ubyte"), "has 4 labels");
    cr_assert_null(ds);
}

Test(idx, dataset_missing_dir) {
    const char *dir = fixture("no_such_dir");
    qsnn_dataset *ds;
    expect_error(qsnn_dataset_load(ctx, dir, "train", 0, &ds), QSNN_ERR_IO, dir, "No such file");
}

Test(idx, dataset_missing_labels) {
    write_split("train", 0, 0, 3, 3);
    unlink(fixture("train-labels-idx1-ubyte"));
    qsnn_dataset *ds;
    qsnn_status st = qsnn_dataset_load(ctx, tmpdir, "train", 0, &ds);
    expect_error(st, QSNN_ERR_IO, fixture("train-labels-idx1-ubyte.gz"), "missing dataset file");
    expect_error(st, QSNN_ERR_IO, fixture("train-labels-idx1-ubyte"), "looked for");
}

Test(idx, dataset_bad_file_propagates) {
    write_split("train", 0, 0, 3, 3);
    const uint32_t dims[3] = {3, 2, 3};
    write_idx(fixture("train-images-idx3-ubyte"), 0, 3, dims, 17);
    qsnn_dataset *ds;
    expect_error(qsnn_dataset_load(ctx, tmpdir, "train", 0, &ds), QSNN_ERR_FORMAT, fixture("train-images-idx3-ubyte"),
                 "truncated");
}

Test(idx, dataset_bad_split) {
    qsnn_dataset *ds;
    expect_error(qsnn_dataset_load(ctx, tmpdir, "test", 0, &ds), QSNN_ERR_ARG, "test", "split");
}

/* The real data package, when installed. Its test split's first label is 9 (ankle boot); checked
 * against the file itself (zcat | xxd) when this test was written. */
Test(idx, fashion_mnist) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    struct stat sb;
    if (stat(dir, &sb) != 0) cr_skip_test("%s not installed", dir);
    qsnn_dataset *ds = NULL;
    cr_assert_eq(qsnn_dataset_load(ctx, dir, "t10k", 0, &ds), QSNN_OK, "%s", qsnn_last_error(ctx));
    cr_assert_eq(ds->n, 10000);
    cr_assert_eq(ds->rows, 28);
    cr_assert_eq(ds->cols, 28);
    cr_assert_eq(ds->features, 784);
    cr_assert_eq(ds->n_classes, 10);
    cr_assert_eq(ds->labels[0], 9);
    int counts[10] = {0};
    for (int64_t k = 0; k < ds->n; k++) counts[ds->labels[k]]++;
    for (int c = 0; c < 10; c++) cr_assert_eq(counts[c], 1000, "class %d", c); /* the test split is balanced */
    qsnn_dataset_destroy(ctx, &ds);
}
