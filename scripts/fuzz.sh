#!/usr/bin/env bash
# Builds the `fuzz` preset (clang, libFuzzer + ASan + UBSan) and runs every loader's fuzz target
# for SECONDS each, starting from corpora written from the golden fixtures. Exits non-zero if any
# target finds a crash, a leak, undefined behaviour or an exception other than x2v::Error;
# the input that did it is left in build/fuzz/artifacts/.
#   usage: scripts/fuzz.sh [SECONDS]   (X2V_JOBS sets the build parallelism, X2V_FIXTURES the fixtures)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
jobs=${X2V_JOBS:-$(nproc)}
fixtures=${X2V_FIXTURES:-../shared/fixtures}
targets=(fuzz_safetensors fuzz_pth fuzz_index_json)

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target "${targets[@]}" fuzz_seeds -j"$jobs"

work=build/fuzz/run
rm -rf "$work/seeds"
mkdir -p "$work/seeds" build/fuzz/artifacts
build/fuzz/fuzz/fuzz_seeds "$fixtures" "$work/seeds"

declare -A seeds=([fuzz_safetensors]=safetensors [fuzz_pth]=pth [fuzz_index_json]=index)
failed=()
for t in "${targets[@]}"; do
  corpus="$work/corpus/$t"
  mkdir -p "$corpus"
  echo "== $t for ${secs}s"
  # New inputs go to the corpus folder (kept between runs); the seeds are only read.
  if ! build/fuzz/fuzz/"$t" "$corpus" "$work/seeds/${seeds[$t]}" -max_total_time="$secs" -timeout=10 \
      -rss_limit_mb=2048 -max_len=300000 -artifact_prefix=build/fuzz/artifacts/"$t"- -print_final_stats=1 \
      2>"$work/$t.log"; then
    failed+=("$t")
    tail -n 60 "$work/$t.log"
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$work/$t.log" || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (inputs in build/fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzzing: no problems found in ${#targets[@]} targets (${secs}s each)"
