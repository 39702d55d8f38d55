/* The few SUNDIALS calls that differ between 6.x (Debian's 6.4) and 7.x, behind one name each.
 * Everything else is written with the names both have (sunrealtype, SUN_RCONST, SUNContext). */
#ifndef QSNN_SIM_SUNDIALS_COMPAT_H
#define QSNN_SIM_SUNDIALS_COMPAT_H

#include <cvode/cvode.h>
#include <sundials/sundials_config.h>
#include <sundials/sundials_context.h>
#include <sundials/sundials_types.h>

#ifndef SUN_RCONST
#define SUN_RCONST(x) RCONST(x)
#endif

/* 6.x takes a void* communicator, 7.x a SUNComm (SUN_COMM_NULL without MPI). */
static inline int qsnn_sun_context_create(SUNContext *out) {
#if SUNDIALS_VERSION_MAJOR >= 7
    return SUNContext_Create(SUN_COMM_NULL, out);
#else
    return SUNContext_Create(NULL, out);
#endif
}

/* Keeps CVODE from printing to stderr: failures are reported through our own messages (the flag
 * name and the time). 6.x has a per-solver handler; 7.x moved handlers to the context. */
#if SUNDIALS_VERSION_MAJOR >= 7
static inline void qsnn_cvode_silence(void *cvode_mem, SUNContext sunctx) {
    (void)cvode_mem;
    SUNContext_ClearErrHandlers(sunctx);
}
#else
static inline void qsnn_cvode_silent_handler(int code, const char *module, const char *fn, char *msg, void *user) {
    (void)code, (void)module, (void)fn, (void)msg, (void)user;
}
static inline void qsnn_cvode_silence(void *cvode_mem, SUNContext sunctx) {
    (void)sunctx;
    CVodeSetErrHandlerFn(cvode_mem, qsnn_cvode_silent_handler, NULL);
}
#endif

#endif
