#!/usr/bin/env bash
# Every GPU check in one go, for a machine with an NVIDIA GPU (written for an H200 box with 16
# cores, about 8 minutes): configures and builds corral with the CUDA backend (Ninja, Release),
# runs the whole test suite (the CUDA op harness, model logits and backend tests included),
# probes the device's memory bandwidth, writes the benchmark models with `corral debug synth`
# (Llama 3.2 1B and Llama 3.1 8B shapes, Q4_0), runs `corral bench` pp512/tg128 on the GPU, and
# prints a summary. Logs go to $OUT (default build-cuda/gpu_check).
#
#   bash bench/gpu_check.sh                 # everything
#   SKIP_8B=1 bash bench/gpu_check.sh       # without the 8B model (faster)
#   BUILD=dir JOBS=n CORRAL_TESTDATA=dir BUDGET=seconds (default 480)   # overrides
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${BUILD:-build-cuda}
jobs=${JOBS:-$(nproc)}
out=${OUT:-$build/gpu_check}
models=${MODELS:-$out/models}
export CORRAL_TESTDATA="${CORRAL_TESTDATA:-$(cd .. && pwd)/shared/testdata}"
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1
mkdir -p "$out" "$models"
summary=()
failed=0

# The whole run stays within BUDGET seconds: a step that would start later is skipped, and each
# step's own limit is cut to what is left.
budget=${BUDGET:-480}

# step NAME TIMEOUT_S CMD...: runs CMD with a time limit, its output in $out/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((budget - SECONDS))
  if [ "$left" -le 5 ]; then
    summary+=("$(printf '%-16s SKIPPED (the %ss budget is spent)' "$name" "$budget")")
    failed=1
    return 1
  fi
  [ "$limit" -le "$left" ] || limit=$left
  local t0=$SECONDS
  echo "== $name: $*"
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  local dt=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then
    summary+=("$(printf '%-16s ok      %4ss' "$name" "$dt")")
  else
    summary+=("$(printf '%-16s FAILED  %4ss  (exit %s; %s)' "$name" "$dt" "$rc" "$out/$name.log")")
    failed=1
    tail -20 "$out/$name.log"
  fi
  return $rc
}

echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$out/device.log"

# The build: only the GPU's own architecture (a third of the compile time of sm_80 + sm_90).
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
step configure 60 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCORRAL_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${arch:-90}" || { printf '%s\n' "${summary[@]}"; exit 1; }
step build 240 cmake --build "$build" -j "$jobs" --target corral corral_tests cuda_bandwidth ||
  { printf '%s\n' "${summary[@]}"; exit 1; }

# Tests: the CUDA ones first (the op harness on the GPU, model logits, the backend's memory
# model), then the whole suite on the CUDA build, less the llama.cpp compatibility tests (they
# need node and an npm install, which an offline GPU box lacks; CI runs them).
step test_cuda 120 "$build/corral_tests" --gtest_brief=1 --gtest_filter='*cuda*:*Cuda*'
step test_all 120 "$build/corral_tests" --gtest_brief=1 --gtest_filter='-LlamaCpp*'
if [ ! -d "$CORRAL_TESTDATA" ]; then
  summary+=("(no test data at $CORRAL_TESTDATA: set CORRAL_TESTDATA; the model tests failed)")
fi
cuda_counts=$(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/test_cuda.log" | tr -s ' ' | paste -sd ';')

step bandwidth 30 "$build/cuda_bandwidth" 4096
read_bw=$(awk '/read_GBps/ {print $2}' "$out/bandwidth.log")

# Benchmark models (reused when present).
bench_rows=()
bench_model() {
  local preset=$1 file="$models/$1-q4_0.gguf"
  if [ ! -s "$file" ]; then
    step "synth_$preset" 120 "$build/corral" debug synth "$preset" --type Q4_0 -o "$file" \
      -t "$jobs" || return
  fi
  step "bench_$preset" 90 "$build/corral" bench "$file" -p 512 -n 128 -r 3 --gpu --json
  local size
  size=$(stat -c %s "$file")
  while read -r line; do
    local t ts
    t=$(echo "$line" | sed -n 's/.*"test":"\([a-z0-9]*\)".*/\1/p')
    ts=$(echo "$line" | sed -n 's/.*"avg_ts":\([0-9.e+-]*\).*/\1/p')
    [ -n "$t" ] || continue
    local extra=""
    if [[ $t == tg* && -n $read_bw ]]; then
      # Decode reads every weight once per token: t/s x file size against the probe.
      extra=$(awk -v ts="$ts" -v s="$size" -v bw="$read_bw" \
        'BEGIN {printf "  (%.0f GB/s of weights, %.0f%% of read bandwidth)", ts*s/1e9, 100*ts*s/1e9/bw}')
    fi
    bench_rows+=("$(printf '%-14s %-6s %10.1f t/s%s' "$preset" "$t" "$ts" "$extra")")
  done < <(grep '^{' "$out/bench_$preset.log")
}
bench_model llama-3.2-1b
[ -n "${SKIP_8B:-}" ] || bench_model llama-3.1-8b

echo
echo "================ gpu_check summary ================"
cat "$out/device.log"
printf '%s\n' "${summary[@]}"
echo "cuda tests: ${cuda_counts:-none ran}"
grep -E '^\[  FAILED  \] [A-Za-z]' "$out/test_all.log" | head -30
echo "read bandwidth: ${read_bw:-?} GB/s (copy: $(awk '/copy_GBps/ {print $2}' "$out/bandwidth.log" 2>/dev/null) GB/s)"
printf '%s\n' "${bench_rows[@]}"
echo "logs: $out"
exit $failed
