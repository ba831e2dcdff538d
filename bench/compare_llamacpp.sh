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
#
# Then the machine (CPU model, SIMD level) and, measured in every round as well:
# - the int8 dot-product peak (build/int8_peak: vpdpbusd on zmm and ymm, AVX2's vpmaddubsw
#   sequence; INT8_PEAK names another binary), with pp512 of both sides as a share of it (prefill
#   is compute-bound; its ops per token, 2 x the weight matrices' parameters, come from corral
#   bench's flops_per_token);
# - the parallel figure: the aggregate tokens/s of 1, 2, 4 and 8 greedy sequences at once through
#   corral's runner (`corral bench --parallel`; PARALLEL=1,2,4,8 the counts, "" to skip;
#   PARALLEL_TOKENS=64 the tokens of each sequence), against one sequence alone;
# - the same through `corral serve` (bench/parallel_serve.mjs: N concurrent streamed greedy
#   /api/generate requests with short prompts; SERVE=1,4 the counts, "" to skip).
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
int8_peak="${INT8_PEAK:-$(dirname "$corral")/int8_peak}"
parallel="${PARALLEL-1,2,4,8}"
parallel_tokens="${PARALLEL_TOKENS:-64}"
serve="${SERVE-1,4}"

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
  if [ -x "$int8_peak" ]; then
    int8_args=(-r 3 --json)
    if [ -n "${CORRAL_THREADS:-}" ]; then int8_args+=(-t "$CORRAL_THREADS"); fi
    "$int8_peak" "${int8_args[@]}" | sed "s/^/int8 $round /" >> "$scratch/results"
  fi
  if [ -n "$parallel" ]; then
    par_args=(bench "$model" -n "$parallel_tokens" -r 1 --parallel "$parallel" --json)
    if [ -n "${CORRAL_THREADS:-}" ]; then par_args+=(-t "$CORRAL_THREADS"); fi
    "$corral" "${par_args[@]}" | sed "s/^/parallel $round /" >> "$scratch/results"
  fi
  if [ -n "$serve" ]; then
    # A difference between a concurrent text and its text alone exits 1; the JSON says so.
    node "$repo/bench/parallel_serve.mjs" --corral "$corral" --model "$model" --n "$serve" \
      --tokens "$parallel_tokens" --rounds 1 --json | sed "s/^/serve $round /" \
      >> "$scratch/results" || true
  fi
done
if [ ! -x "$int8_peak" ]; then
  echo "compare_llamacpp: $int8_peak not found (cmake --build build --target int8_peak):" \
    "no int8 peak" >&2
fi

# The machine: its CPU and the SIMD sets corral's kernels use.
cpu_model="$(lscpu 2> /dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1 || true)"
# Family and model tell CPU generations apart where the name does not (AMD family 25: Zen 3/4,
# 26: Zen 5).
cpu_id="$(awk -F': ' '/^cpu family/ && !f {f = $2} /^model[[:space:]]*:/ && !m {m = $2}
  END {if (f != "") print "family " f ", model " m}' /proc/cpuinfo 2> /dev/null || true)"
if [ -n "$cpu_id" ]; then cpu_model="${cpu_model:-unknown} ($cpu_id)"; fi
cpu_flags=" $(grep -m 1 '^flags' /proc/cpuinfo 2> /dev/null | cut -d: -f2 || true) "
simd=""
for flag in avx2 avx512f avx512bw avx512vl avx512_vnni avx512_bf16; do
  case "$cpu_flags" in *" $flag "*) simd+="${simd:+ }$flag" ;; esac
done

# Lines: "<side> <round> <json>"; llama.cpp's per-round value of a test is its better thread count.
python3 - "$scratch/results" "$model" "$rounds" "${cpu_model:-unknown}" "$simd" "$parallel_tokens" <<'PY'
import json, statistics, sys
from collections import defaultdict

path, model, rounds, cpu_model, simd, parallel_tokens = sys.argv[1:7]
best = defaultdict(dict)  # (side, test) -> round -> (t/s, threads)
read_gbs = []
bytes_per_token = None
flops_per_token = None
int8 = defaultdict(list)  # variant -> GOPS per round
int8_info = {}
par = defaultdict(list)  # sequences -> aggregate t/s per round
par_same = defaultdict(list)  # sequences -> same tokens as with fewer, per round
serve_ts = defaultdict(list)  # concurrent requests -> aggregate t/s per round, through serve
serve_mismatches = 0
par_tokens = None
for line in open(path):
    side, rnd, payload = line.split(" ", 2)
    j = json.loads(payload)
    if side == "stream":
        read_gbs.append(j["read_gbs"])
        continue
    if side == "int8":
        int8_info = j
        for v in ("zmm", "ymm", "avx2"):
            if j.get(f"{v}_gops") is not None:
                int8[v].append(j[f"{v}_gops"])
        continue
    if side == "serve":
        for n, r in j["results"].items():
            serve_ts[int(n)].append(r["tok_s"])
        serve_mismatches += j["mismatches"]
        continue
    if side == "parallel":
        par[j["n_parallel"]].append(j["avg_ts"])
        par_tokens = j["n_gen"]
        if j["compared"] > 0:
            par_same[j["n_parallel"]].append(j["same_as_fewer"])
        continue
    if side == "corral" and "flops_per_token" in j:
        flops_per_token = j["flops_per_token"]
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

level = ("avx512vnni" if "avx512_vnni" in simd.split() else
         "avx512" if "avx512f" in simd.split() else "avx2" if "avx2" in simd.split() else "none")
print(f"\nmachine: {cpu_model}; SIMD level {level} (flags: {simd or 'none of avx2/avx512'})")
if int8:
    med = {v: statistics.median(x) for v, x in int8.items()}
    parts = ", ".join(f"{v} {med[v]:.0f}" for v in ("zmm", "ymm", "avx2") if v in med)
    not_run = int8_info.get("not_run", [])
    print(f"int8 dot-product peak (bench/int8_peak, {int8_info.get('threads')} threads, median of "
          f"{len(next(iter(int8.values())))} rounds): {parts} GOPS"
          + (f"; not run here: {', '.join(not_run)}" if not_run else ""))
    peak_name = "zmm" if "zmm" in med else "avx2" if "avx2" in med else None
    c = [v[0] for v in best[("corral", "pp512")].values()]
    l = [v[0] for v in best[("llamacpp", "pp512")].values()]
    if peak_name and flops_per_token and c and l:
        peak = med[peak_name]
        cg = statistics.median(c) * flops_per_token / 1e9
        lg = statistics.median(l) * flops_per_token / 1e9
        print(f"pp512 at {flops_per_token / 1e9:.2f} GOP per token: corral {cg:.0f} GOPS = "
              f"{100 * cg / peak:.0f}% of the {peak_name} peak, llama.cpp {lg:.0f} GOPS = "
              f"{100 * lg / peak:.0f}%")
if par:
    print(f"\nparallel (corral's runner, {par_tokens} greedy tokens per sequence, median of "
          f"{len(next(iter(par.values())))} rounds; t/s: all sequences' tokens per second)")
    print("| sequences | aggregate t/s | x one sequence | same tokens as fewer |")
    print("| ---: | ---: | ---: | --- |")
    one = statistics.median(par[min(par)]) if par else None
    for n in sorted(par):
        m = statistics.median(par[n])
        same = par_same.get(n)
        same_text = "-" if not same else "yes" if all(same) else "NO"
        print(f"| {n} | {m:.2f} | {m / one:.2f} | {same_text} |")
if serve_ts:
    print(f"\nthrough corral serve (bench/parallel_serve.mjs, {parallel_tokens} greedy tokens per "
          f"request, short prompts, median of {len(next(iter(serve_ts.values())))} rounds)")
    print("| requests | aggregate t/s | x one request |")
    print("| ---: | ---: | ---: |")
    one = statistics.median(serve_ts[min(serve_ts)])
    for n in sorted(serve_ts):
        m = statistics.median(serve_ts[n])
        print(f"| {n} | {m:.2f} | {m / one:.2f} |")
    print("every concurrent text equals its text alone" if serve_mismatches == 0 else
          f"{serve_mismatches} concurrent texts DIFFER from their text alone")
PY
