#!/usr/bin/env bash
# corral against llama.cpp on the same GGUF file, llama-bench's two tests (pp512, tg128).
#
#   bench/compare_llamacpp.sh MODEL.gguf [ROUNDS=5]
#
# llama.cpp is node-llama-cpp's prebuilt CPU binary (node-llama-cpp@3.21.1 and
# @node-llama-cpp/linux-x64@3.21.1, pinned by tests/llamacpp/package-lock.json and installed by
# scripts/setup_llamacpp.sh; LLAMACPP_NODE_MODULES names another node_modules to use). Each round
# runs llama.cpp with 1 and with 2 threads (the better of the two counts per test) and then
# build/corral bench (CORRAL names another binary; CORRAL_THREADS its -t, default: physical
# cores), so drifting machine load hits both sides alike. Prints the median tokens/s of each
# test for both and the ratios corral / llama.cpp (above 1: corral is faster).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 MODEL.gguf [ROUNDS]" >&2
  exit 2
fi
model="$1"
rounds="${2:-5}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
corral="${CORRAL:-$repo/build/corral}"
# The memory bandwidth (bench/stream.cc, read test) measured in every round, so tg128 is also
# reported as a share of its limit: bandwidth / bytes read per token.
stream="${STREAM:-$(dirname "$corral")/stream}"

if [ ! -f "$model" ]; then
  echo "compare_llamacpp: no model file $model" >&2
  exit 1
fi
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "compare_llamacpp: ROUNDS must be a positive integer, not '$rounds'" >&2
  exit 2
fi
if [ ! -x "$corral" ]; then
  echo "compare_llamacpp: $corral not found; build it: cmake --build build --target corral" >&2
  exit 1
fi
if ! command -v node > /dev/null; then
  echo "compare_llamacpp: node not found; install nodejs (and npm) to run llama.cpp" >&2
  exit 1
fi

modules="${LLAMACPP_NODE_MODULES:-$repo/tests/llamacpp/node_modules}"
if [ ! -f "$modules/@node-llama-cpp/linux-x64/package.json" ]; then
  if [ -n "${LLAMACPP_NODE_MODULES:-}" ]; then
    echo "compare_llamacpp: no node-llama-cpp install in $modules" >&2
    exit 1
  fi
  bash "$repo/scripts/setup_llamacpp.sh"
  if [ ! -f "$modules/@node-llama-cpp/linux-x64/package.json" ]; then
    echo "compare_llamacpp: installing node-llama-cpp into $modules failed (see above)" >&2
    exit 1
  fi
fi

# The bench script imports "node-llama-cpp", which node resolves from the script's folder.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
ln -s "$modules" "$scratch/node_modules"
cp "$repo/bench/llamacpp_bench.mjs" "$scratch/"

corral_args=(bench "$model" -p 512 -n 128 -r 1 --json)
if [ -n "${CORRAL_THREADS:-}" ]; then corral_args+=(-t "$CORRAL_THREADS"); fi

for ((round = 1; round <= rounds; ++round)); do
  echo "round $round/$rounds" >&2
  for threads in 1 2; do
    node "$scratch/llamacpp_bench.mjs" "$model" "$threads" 512 128 1 2> "$scratch/node.err" |
      sed "s/^/llamacpp $round /" >> "$scratch/results" ||
      { cat "$scratch/node.err" >&2; exit 1; }
  done
  "$corral" "${corral_args[@]}" | sed "s/^/corral $round /" >> "$scratch/results"
  if [ -x "$stream" ]; then
    "$stream" -t "${CORRAL_THREADS:-2}" -r 3 --json | sed "s/^/stream $round /" >> "$scratch/results"
  fi
done

# Lines: "<side> <round> <json>"; llama.cpp's per-round value of a test is its better thread count.
python3 - "$scratch/results" "$model" "$rounds" <<'PY'
import json, statistics, sys
from collections import defaultdict

path, model, rounds = sys.argv[1], sys.argv[2], sys.argv[3]
best = defaultdict(dict)  # (side, test) -> round -> (t/s, threads)
read_gbs = []
bytes_per_token = None
for line in open(path):
    side, rnd, payload = line.split(" ", 2)
    j = json.loads(payload)
    if side == "stream":
        read_gbs.append(j["read_gbs"])
        continue
    if side == "corral" and "bytes_per_token" in j:
        bytes_per_token = j["bytes_per_token"]
    key = (side, j["test"])
    prev = best[key].get(rnd)
    if prev is None or j["avg_ts"] > prev[0]:
        best[key][rnd] = (j["avg_ts"], j["n_threads"])

print(f"model: {model}, {rounds} rounds, median t/s (llama.cpp: the better of 1 and 2 threads)")
print("| test | corral t/s | llama.cpp t/s | corral / llama.cpp |")
print("| --- | ---: | ---: | ---: |")
for test in ("pp512", "tg128"):
    c = [v[0] for v in best[("corral", test)].values()]
    l = [v[0] for v in best[("llamacpp", test)].values()]
    if not c or not l:
        print(f"| {test} | missing | missing | |")
        continue
    cm, lm = statistics.median(c), statistics.median(l)
    threads = sorted({v[1] for v in best[("llamacpp", test)].values()})
    cthreads = sorted({v[1] for v in best[("corral", test)].values()})
    print(f"| {test} | {cm:.2f} (t={','.join(map(str, cthreads))}) | {lm:.2f} "
          f"(t={','.join(map(str, threads))}) | {cm / lm:.2f} |")
    if test == "tg128" and read_gbs and bytes_per_token:
        bw = statistics.median(read_gbs)
        limit = bw * 1e9 / bytes_per_token
        print(f"\nbandwidth (stream read, median of {len(read_gbs)} rounds): {bw:.2f} GB/s; "
              f"{bytes_per_token / 1e6:.1f} MB read per token: tg limit {limit:.2f} t/s; "
              f"corral {100 * cm / limit:.0f}% of it, llama.cpp {100 * lm / limit:.0f}%")
PY
