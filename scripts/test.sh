#!/usr/bin/env bash
# Builds the CPU configuration and runs every test (the command README.md gives).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset cpu >/dev/null
cmake --build --preset cpu -j"$(nproc)"
# ctest runs one test process per core; OpenMP/OpenBLAS threads inside each would oversubscribe
# the cores (their spinning workers made the suite ~10x slower on 2 cores), so each test gets one.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
ctest --preset cpu -j"$(nproc)" "$@"
