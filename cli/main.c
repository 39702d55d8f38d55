/* qsnn: git-style front end. `qsnn CMD --help` for each command. */
#include "cli/commands.h"
#include "io/tmpfiles.h"

#include <stdio.h>
#include <string.h>

static const qsnn_command commands[] = {
    {"train", "train a quantized spiking network (default: 784-1000-10 LIF on Fashion-MNIST)", qsnn_cmd_train},
    {"eval", "evaluate a saved model on the test split", qsnn_cmd_eval},
    {"config", "print the resolved configuration, or the reference of every key", qsnn_cmd_config},
    {"quantize", "post-training quantization of a saved model, with calibration data", qsnn_cmd_quantize},
    {"simulate", "simulate a population network (COBA, CUBA, ...) with the time-stepped or CVODE engine", qsnn_cmd_simulate},
    {"export", "write a saved model as a NIR graph, or as an integer model for hardware (--integer)", qsnn_cmd_export},
    {"import", "read a NIR graph into a qsnn model", qsnn_cmd_import},
    {"record", "record spike trains and membranes of a saved model into an HDF5 trace file", qsnn_cmd_record},
    {"plot", "draw a trace file: spike raster, membranes, membrane histogram, firing rates", qsnn_cmd_plot},
    {"compare", "compare two recordings of the same inputs (spike agreement, timing, membranes)", qsnn_cmd_compare},
};
static const int n_commands = sizeof commands / sizeof *commands;

static void usage(FILE *f) {
    fprintf(f,
            "usage: qsnn <command> [options]\n\n"
            "qsnn simulates and trains quantized spiking neural networks (weights and membrane states\n"
            "quantized during training), with surrogate-gradient BPTT.\n\ncommands:\n");
    for (int i = 0; i < n_commands; i++) fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n  qsnn <command> --help   options of one command\n"
            "  qsnn --version          version\n\n"
            "example:\n"
            "  qsnn train --epochs 3 --set quant.state.bits=4 --set quant.weight.bits=4\n"
            "  qsnn eval runs/model.h5\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("qsnn %s\n", QSNN_VERSION);
        return 0;
    }
    qsnn_tmpfiles_cleanup_on_signals(); /* Ctrl-C never leaves a half-written output behind */
    for (int i = 0; i < n_commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "qsnn: unknown command '%s' (see qsnn --help)\n", argv[1]);
    return 2;
}
