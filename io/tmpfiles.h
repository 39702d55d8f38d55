/* One process-wide registry of temporary output files (FILE.tmp.<pid> while an output is being
 * written), removed when SIGINT, SIGTERM or SIGHUP ends the process; the signal's previous action
 * then runs (the process dies of it as before). io/h5atomic.h and the streaming writers (trace
 * files, simulation logs) register their temporary files here. One handler for all writers: two
 * writers can never replace each other's handler. */
#ifndef QSNN_IO_TMPFILES_H
#define QSNN_IO_TMPFILES_H

/* Installs the handlers (once; later calls do nothing). The qsnn program calls it at start. */
void qsnn_tmpfiles_cleanup_on_signals(void);
/* Registers path (copied); returns a slot for qsnn_tmpfile_forget, or -1 when the registry is full
 * or the path too long (the file is then not removed on a signal). */
int qsnn_tmpfile_register(const char *path);
/* The file is renamed or removed: stop tracking it (slot -1: nothing). */
void qsnn_tmpfile_forget(int slot);

#endif
