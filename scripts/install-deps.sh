#!/usr/bin/env bash
# Installs the Debian 12 packages x2v builds against (needs root or sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git \
  libopenblas-dev libomp-dev nlohmann-json3-dev libcli11-dev libsentencepiece-dev \
  libpng-dev libjpeg-dev zlib1g-dev \
  libavcodec-dev libavformat-dev libswscale-dev libavutil-dev \
  libcpp-httplib-dev libgtest-dev libbenchmark-dev \
  clang python3 python3-numpy python3-sentencepiece
