#include "cli/progress.h"
#include "core/timer.h"

#include <stdio.h>
#include <unistd.h>

void qsnn_progress_init(qsnn_progress *p, int want) {
    p->enabled = want && isatty(STDOUT_FILENO);
    p->label = "";
    p->last_draw = 0.0;
    p->drawn = 0;
}

void qsnn_progress_update(void *user, long done, long total, const qsnn_metrics *m) {
    qsnn_progress *p = user;
    if (!p->enabled) return;
    const double now = qsnn_now();
    if (done < total && now - p->last_draw < 0.1) return; /* redraw at most 10 times a second */
    p->last_draw = now;
    enum { WIDTH = 30 };
    const int fill = total > 0 ? (int)(WIDTH * done / total) : WIDTH;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = 0;
    const double eta = m->samples_per_s > 0 && done > 0 ? m->seconds * (double)(total - done) / (double)done : 0.0;
    printf("\r  %s [%s] %ld/%ld  loss %.4f  acc %.2f%%  %.0f samples/s  eta %.0fs \033[K", p->label, bar, done, total,
           m->loss, 100.0 * m->accuracy, m->samples_per_s, eta);
    fflush(stdout);
    p->drawn = 1;
}

void qsnn_progress_clear(qsnn_progress *p) {
    if (p->enabled && p->drawn) {
        printf("\r\033[K");
        fflush(stdout);
    }
    p->drawn = 0;
}
