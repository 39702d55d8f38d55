/* Matrix products with results independent of the thread count. OpenBLAS picks kernels and
 * partitions by its thread count, so the same product can differ in the last bit between 1 and 2
 * threads. Here the output is cut into tiles of a fixed size; each tile is one single-threaded
 * sgemm (OpenBLAS runs single-threaded inside an OpenMP region), and threads share out tiles. */
#ifndef QSNN_SIM_GEMM_H
#define QSNN_SIM_GEMM_H

#include <cblas.h>

#define QSNN_GEMM_TILE 256

/* Row-major C[M][N] = alpha op(A) op(B) + beta C, as cblas_sgemm. */
void qsnn_sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha, const float *A,
                int lda, const float *B, int ldb, float beta, float *C, int ldc);

#endif
