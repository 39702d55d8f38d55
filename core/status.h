/* Status codes: 0 = ok, negative = error. One X-macro list yields the enum and qsnn_strerror(). */
#ifndef QSNN_CORE_STATUS_H
#define QSNN_CORE_STATUS_H

#define QSNN_STATUS_LIST(X)                                         \
    X(QSNN_OK, 0, "ok")                                             \
    X(QSNN_ERR_NOMEM, -1, "out of memory")                          \
    X(QSNN_ERR_ARG, -2, "invalid argument")                         \
    X(QSNN_ERR_IO, -3, "input/output error")                        \
    X(QSNN_ERR_FORMAT, -4, "malformed or truncated file")           \
    X(QSNN_ERR_CONFIG, -5, "invalid configuration")                 \
    X(QSNN_ERR_NUMERIC, -6, "non-finite value")                     \
    X(QSNN_ERR_HDF5, -7, "HDF5 error")                              \
    X(QSNN_ERR_UNSUPPORTED, -8, "unsupported")                      \
    X(QSNN_ERR_MISMATCH, -9, "shape or version mismatch")

typedef enum {
#define QSNN_X_ENUM(name, value, text) name = value,
    QSNN_STATUS_LIST(QSNN_X_ENUM)
#undef QSNN_X_ENUM
} qsnn_status;

/* Short generic text for a status code; the detailed message lives in the context. */
const char *qsnn_strerror(qsnn_status s);

#endif
