#!/usr/bin/env bash
# The README's quick start: set up (Debian packages), build, then run.
#   scripts/run.sh train [qsnn train options]   train the default network (Fashion-MNIST)
#   scripts/run.sh test                         run the test suite (ctest)
#   scripts/run.sh bench [--threads N]          benchmark against the PyTorch reference
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-}"
[ $# -gt 0 ] && shift
case "$what" in
  train|test) scripts/setup.sh ;;
  bench) scripts/setup.sh --bench ;;
  *) echo "usage: scripts/run.sh train|test|bench [options]" >&2; exit 2 ;;
esac
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
case "$what" in
  train) exec build/qsnn train "$@" ;;
  test) exec ctest --test-dir build --output-on-failure "$@" ;;
  bench) exec bench/compare.sh "$@" ;;
esac
