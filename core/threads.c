#include "core/threads.h"

#include <unistd.h>
#if defined(__SSE__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

void openblas_set_num_threads(int num_threads); /* from OpenBLAS; not in the reference cblas.h */

int qsnn_threads_available(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Gradients decaying through β^t reach denormal floats, which cost ~100x per operation on x86;
 * flush them to zero in every thread of the pool (as ML frameworks commonly do). */
static void flush_denormals(void) {
#if defined(__SSE__)
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#endif
}

int qsnn_threads_apply(int threads) {
    if (threads <= 0) threads = qsnn_threads_available();
    flush_denormals();
#ifdef _OPENMP
    omp_set_num_threads(threads);
    #pragma omp parallel
    flush_denormals();
#else
    threads = 1;
#endif
    openblas_set_num_threads(threads);
    return threads;
}
