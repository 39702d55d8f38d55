#ifndef QSNN_CORE_TIMER_H
#define QSNN_CORE_TIMER_H
/* Seconds on a monotonic clock. */
double qsnn_now(void);
#endif
