#!/usr/bin/env bash
# Installs the Debian packages qsnn needs. Idempotent: apt-get runs only when something is missing.
#   scripts/setup.sh            build + test + data dependencies
#   scripts/setup.sh --bench    also the PyTorch references' packages (python3-torch, h5py, numpy, yaml)
#                               and Brian2 for bench/coba_compare.sh (python3-brian)
set -euo pipefail

pkgs=(build-essential cmake pkg-config zlib1g-dev
      libsundials-dev libhdf5-dev libopenblas-openmp-dev libcyaml-dev libyaml-dev libcriterion-dev
      libplplot-dev plplot-driver-cairo
      dataset-fashion-mnist)
for arg in "$@"; do
  case "$arg" in
    --bench) pkgs+=(python3-torch python3-h5py python3-numpy python3-brian python3-yaml) ;;
    *) echo "setup.sh: unknown option '$arg' (known: --bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup.sh: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
