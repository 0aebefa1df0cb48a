#!/usr/bin/env bash
# On the GPU machine: build with the CUDA preset, run the GPU correctness checks (gpu_ops_check: every
# CUDA op against the CPU reference and the DiT fixtures; gpu_model_check: T5, CLIP, VAE and whole
# generations against the golden fixtures), then `x2v bench` and the PyTorch ceilings.
# Results go to $OUT (or bench/out) as JSON lines and logs; a short table is printed last.
#
#   bench/device_run.sh [--src DIR] [--fixtures DIR] [--bench-args "..."] [--check-args "..."]
#                       [--skip-check] [--skip-bench] [--skip-torch]
#
# --src builds another source tree (default: this checkout). Nothing here changes the card's settings.
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
src="$here"
fixtures="${X2V_FIXTURES:-$here/../shared/fixtures}"
bench_args="--what gemm,attn,dit,conv,vae,t5 --reps 3"
check_args=""
do_check=1
do_bench=1
do_torch=1
while [ $# -gt 0 ]; do
  case "$1" in
    --src) src="$2"; shift 2 ;;
    --fixtures) fixtures="$2"; shift 2 ;;
    --bench-args) bench_args="$2"; shift 2 ;;
    --check-args) check_args="$2"; shift 2 ;;
    --skip-check) do_check=0; shift ;;
    --skip-bench) do_bench=0; shift ;;
    --skip-torch) do_torch=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
out="${OUT:-$here/bench/out}"
mkdir -p "$out"
build="${X2V_BUILD_DIR:-/tmp/x2v-build}"

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
nvcc --version | tail -1 || true
date -u +%Y-%m-%dT%H:%M:%SZ

echo "== build ($src -> $build)"
t0=$(date +%s)
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DX2V_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
ninja -C "$build" -j "$(nproc)" x2v_cli gpu_ops_check gpu_model_check > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
echo "built in $(( $(date +%s) - t0 )) s"
ldd "$build/x2v" | grep -E "cudnn|cublas|cudart" || true

rc=0
if [ $do_check = 1 ]; then
  echo "== gpu_ops_check"
  # shellcheck disable=SC2086
  "$build/tests/cuda/gpu_ops_check" "$fixtures" $check_args > "$out/check.log" 2>&1
  rc=$?
  grep -E "^FAIL|passed" "$out/check.log" | head -40
  echo "== gpu_model_check"
  "$build/tests/cuda/gpu_model_check" "$fixtures" > "$out/model_check.log" 2>&1
  mrc=$?
  grep -E "^FAIL|passed" "$out/model_check.log" | head -40
  echo "gpu_model_check exit $mrc"
  [ $mrc = 0 ] || rc=1
fi
if [ $do_check = 1 ]; then
  # The README's demo through the CLI with every stage on the GPU (PNG frames: no FFmpeg there).
  echo "== x2v generate --demo --device cuda"
  rm -rf /tmp/x2v-demo
  "$build/x2v" generate --demo --device cuda -o /tmp/x2v-demo/ > "$out/demo.log" 2>&1
  drc=$?
  tail -12 "$out/demo.log"
  echo "x2v generate --demo --device cuda exit $drc, $(ls /tmp/x2v-demo 2>/dev/null | wc -l) frames written"
  [ $drc = 0 ] || rc=1
fi
if [ $do_bench = 1 ]; then
  echo "== x2v bench $bench_args"
  commit="${X2V_COMMIT:-$(git -C "$src" rev-parse --short HEAD 2>/dev/null || cat "$src/COMMIT" 2>/dev/null || echo unknown)}"
  printf '{"bench":"meta","commit":"%s","command":"x2v bench %s","gpu":"%s"}\n' "$commit" "$bench_args" \
    "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" > "$out/bench.jsonl"
  # shellcheck disable=SC2086
  "$build/x2v" bench $bench_args >> "$out/bench.jsonl" 2> "$out/bench.log"
  echo "x2v bench exit $?"
  if [ $do_torch = 1 ]; then
    echo "== torch ceilings"
    timeout 300 python3 "$here/bench/torch_ceilings.py" > "$out/torch.jsonl" 2> "$out/torch.log" || echo "torch ceilings failed (see torch.log)"
  fi
fi
echo "== table"
[ $do_check = 1 ] && grep -hE "passed" "$out/check.log" "$out/model_check.log"
[ $do_bench = 1 ] && python3 "$here/bench/table.py" "$out/bench.jsonl" $([ $do_torch = 1 ] && echo "$out/torch.jsonl")
exit $rc
