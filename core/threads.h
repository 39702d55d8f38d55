/* One thread pool: our OpenMP loops and OpenBLAS (its OpenMP build) share libgomp's threads,
 * so the two never oversubscribe the cores. */
#ifndef QSNN_CORE_THREADS_H
#define QSNN_CORE_THREADS_H

/* Applies a thread count (<= 0: all cores) to OpenMP and BLAS; returns the count in effect. */
int qsnn_threads_apply(int threads);
/* Number of online cores. */
int qsnn_threads_available(void);

#endif
