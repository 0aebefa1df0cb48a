#!/usr/bin/env bash
# On the GPU machine: build this checkout ("new") and a second source tree ("base", e.g. an older commit
# unpacked with `git archive <ref> | tar -x -C DIR` before the call, in a git-ignored folder that the
# call carries, with the ref's hash in DIR/COMMIT), then time both alternately on the same card, so that
# the card's clock and power state affect both alike (see docs/performance.md, "The power limit").
#
#   bench/device_ab.sh --base DIR [--rounds N] [--bench-args "..."] [--check-args "..."] [--fixtures DIR]
#
# --check-args runs gpu_ops_check on the new build first (e.g. "--only attention"); without it the checks
# are skipped. Every round's JSON lines go to $OUT (or bench/out) as ab-{new,base}.jsonl (after a "meta"
# line with the tree's commit and the command, as device_run.sh writes; each round starts with its
# "start" line), the readable lines to ab-{new,base}.log and, last, to stdout. Nothing here
# changes the card's settings. Exit status: 1 if a build, the checks or a bench run failed.
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
base=""
rounds=2
bench_args="--what dit --models 14b,1.3b --res 480p --reps 3 --sustain 1"
check_args=""
fixtures="${X2V_FIXTURES:-$here/../shared/fixtures}"
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --bench-args) bench_args="$2"; shift 2 ;;
    --check-args) check_args="$2"; shift 2 ;;
    --fixtures) fixtures="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$base" ] && [ -f "$base/CMakeLists.txt" ] || { echo "--base DIR must be a source tree of x2v" >&2; exit 2; }
out="${OUT:-$here/bench/out}"
mkdir -p "$out"
new_build=/tmp/x2v-build
base_build=/tmp/x2v-base-build

# Both builds at once; device_run.sh configures and builds (its checks and bench are skipped here), its
# logs kept out of $OUT, which returns only a few files.
OUT=/tmp/x2v-ab-base X2V_BUILD_DIR="$base_build" bash "$here/bench/device_run.sh" --src "$base" --skip-check \
  --skip-bench > /tmp/x2v-ab-base.txt 2>&1 &
base_pid=$!
OUT=/tmp/x2v-ab-new X2V_BUILD_DIR="$new_build" bash "$here/bench/device_run.sh" --skip-check --skip-bench \
  > /tmp/x2v-ab-new.txt 2>&1
new_rc=$?
wait $base_pid
base_rc=$?
grep -hE "^built|error" /tmp/x2v-ab-new.txt /tmp/x2v-ab-base.txt
[ $new_rc = 0 ] && [ $base_rc = 0 ] || { tail -20 /tmp/x2v-ab-new.txt /tmp/x2v-ab-base.txt; exit 1; }

rc=0
if [ -n "$check_args" ]; then
  # shellcheck disable=SC2086
  "$new_build/tests/cuda/gpu_ops_check" "$fixtures" $check_args > "$out/ab-check.log" 2>&1 || rc=1
  grep -E "^FAIL|passed" "$out/ab-check.log" | head -20
fi

# The commit of each tree: X2V_COMMIT for this checkout (whose device copy may carry a stale git HEAD),
# DIR/COMMIT for the base (an unpacked tree inside the checkout would otherwise report the checkout's).
commit_of() { cat "$1/COMMIT" 2>/dev/null || git -C "$1" rev-parse --short HEAD 2>/dev/null || echo unknown; }
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
for tag in new base; do
  if [ $tag = new ]; then commit="${X2V_COMMIT:-$(commit_of "$here")}"; else commit="$(commit_of "$base")"; fi
  printf '{"bench":"meta","tree":"%s","commit":"%s","command":"x2v bench %s","gpu":"%s"}\n' "$tag" "$commit" \
    "$bench_args" "$gpu" > "$out/ab-$tag.jsonl"
done
: > "$out/ab-new.log"; : > "$out/ab-base.log"
for r in $(seq 1 "$rounds"); do
  for tag in new base; do
    bin="$new_build/x2v"
    [ $tag = base ] && bin="$base_build/x2v"
    echo "# round $r" >> "$out/ab-$tag.log"
    # shellcheck disable=SC2086
    if ! "$bin" bench $bench_args >> "$out/ab-$tag.jsonl" 2>> "$out/ab-$tag.log"; then
      echo "x2v bench ($tag, round $r) failed"
      rc=1
    fi
  done
done
echo "== x2v bench $bench_args, alternating"
for r in $(seq 1 "$rounds"); do
  for tag in new base; do
    awk -v r="$r" '/^# round /{cur = $3; next} cur == r && /^(dit|attn|gemm|vae|t5|conv3d) /' "$out/ab-$tag.log" |
      sed "s/^/$tag $r  /"
  done
done
exit $rc
