#include "sim/gemm.h"

#include <stddef.h>

void qsnn_sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha, const float *A,
                int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    const int split_m = M >= N;
    const int len = split_m ? M : N;
    const int tiles = (len + QSNN_GEMM_TILE - 1) / QSNN_GEMM_TILE;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int k = 0; k < tiles; k++) {
        const int o = k * QSNN_GEMM_TILE, n = len - o < QSNN_GEMM_TILE ? len - o : QSNN_GEMM_TILE;
        if (split_m) { /* rows o..o+n of C: rows of op(A) */
            const float *a = ta == CblasNoTrans ? A + (size_t)o * lda : A + o;
            cblas_sgemm(CblasRowMajor, ta, tb, n, N, K, alpha, a, lda, B, ldb, beta, C + (size_t)o * ldc, ldc);
        } else { /* columns o..o+n of C: columns of op(B) */
            const float *b = tb == CblasNoTrans ? B + o : B + (size_t)o * ldb;
            cblas_sgemm(CblasRowMajor, ta, tb, M, n, K, alpha, A, lda, b, ldb, beta, C + o, ldc);
        }
    }
}
