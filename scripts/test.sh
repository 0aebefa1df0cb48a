#!/usr/bin/env bash
# Builds the CPU configuration and runs every test (the command README.md gives).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset cpu >/dev/null
cmake --build --preset cpu -j"$(nproc)"
ctest --preset cpu -j"$(nproc)" "$@"
