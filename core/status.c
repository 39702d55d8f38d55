#include "core/status.h"

const char *qsnn_strerror(qsnn_status s) {
    switch (s) {
#define QSNN_X_CASE(name, value, text) case name: return text;
        QSNN_STATUS_LIST(QSNN_X_CASE)
#undef QSNN_X_CASE
    }
    return "unknown status";
}
