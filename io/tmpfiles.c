#include "io/tmpfiles.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#define MAX_TMP 16
#define TMP_PATH_MAX 4200

static char paths[MAX_TMP][TMP_PATH_MAX];
static volatile sig_atomic_t used[MAX_TMP];
static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction previous[3];
static volatile sig_atomic_t installed;

static void on_signal(int sig) {
    for (int i = 0; i < MAX_TMP; i++)
        if (used[i]) unlink(paths[i]); /* async-signal-safe */
    for (int k = 0; k < 3; k++)
        if (sigs[k] == sig) sigaction(sig, &previous[k], NULL);
    raise(sig); /* delivered when the handler returns */
}

void qsnn_tmpfiles_cleanup_on_signals(void) {
    if (installed) return;
    installed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int k = 0; k < 3; k++) sigaction(sigs[k], &sa, &previous[k]);
}

int qsnn_tmpfile_register(const char *path) {
    if (!path || strlen(path) >= TMP_PATH_MAX) return -1;
    for (int i = 0; i < MAX_TMP; i++)
        if (!used[i]) {
            memcpy(paths[i], path, strlen(path) + 1);
            used[i] = 1; /* after the path is complete: the handler never sees half a name */
            return i;
        }
    return -1;
}

void qsnn_tmpfile_forget(int slot) {
    if (slot >= 0 && slot < MAX_TMP) used[slot] = 0;
}
