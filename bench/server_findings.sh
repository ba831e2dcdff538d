#!/usr/bin/env bash
# The hostile requests of issue 14 that concern generation, one at a time, against a fresh
# `corral serve` over a store holding stories260K, with what each one now gets and how long it
# takes. Needs curl and python3 (payloads). Only loopback is addressed.
#
#   bench/server_findings.sh [build/corral] [port]
set -u
cd "$(dirname "$0")/.."
corral=$(realpath "${1:-build/corral}")
port=${2:-18911}
testdata=${CORRAL_TESTDATA:-$(cd .. && pwd)/shared/testdata}
work=$(mktemp -d)
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
export CORRAL_MODELS=$work/models CORRAL_NO_SERVER=1
printf 'FROM %s\n' "$testdata/tinystories260k/stories260K-f32.gguf" > "$work/Modelfile"
"$corral" create stories -f "$work/Modelfile" > /dev/null
# The work folder a killed create leaves behind.
mkdir -p "$work/models/tmp/work-424242-deadbeef"
head -c 1000000 /dev/zero > "$work/models/tmp/work-424242-deadbeef/blob"
CORRAL_HOST=127.0.0.1:$port "$corral" serve > "$work/out" 2> "$work/err" &
server=$!
url=http://127.0.0.1:$port
for _ in $(seq 100); do curl -s -o /dev/null "$url/" && break; sleep 0.05; done
now() { date +%s.%N; }
since() { python3 -c "print(f'{$(now) - $1:.3f}')"; }
endless='{"model":"stories","prompt":"Once","stream":false,"shift":true,"options":{"num_predict":-1}}'

echo "a killed create's work folder after the start: $(ls "$work/models/tmp" | wc -l) left"

python3 -c 'print("{\"model\":\"stories\",\"prompt\":\"x\",\"options\":{\"num_ctx\":"+"["*100000+"]"*100000+"}}")' \
  > "$work/deep.json"
curl -s -o "$work/r" -w 'JSON nested 100000 deep: %{http_code} in %{time_total} s: ' \
  --data-binary @"$work/deep.json" "$url/api/generate"
head -c 120 "$work/r"; echo

python3 -c 'import json; print(json.dumps({"model": "a" * 10000000, "prompt": "x"}))' > "$work/name.json"
curl -s -o /dev/null -w 'a 10 MB model name: %{http_code}, an answer of %{size_download} bytes\n' \
  --data-binary @"$work/name.json" "$url/api/generate"

curl -s -o "$work/r" -w 'num_predict -1, "stream": false: %{http_code} in %{time_total} s: ' \
  -d '{"model":"stories","prompt":"Once","stream":false,"options":{"num_predict":-1,"temperature":0}}' \
  "$url/api/generate"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("done_reason", j["done_reason"], "prompt", j["prompt_eval_count"], "eval", j["eval_count"])' "$work/r"

pids=()
for _ in 1 2 3 4; do timeout 2 curl -s -o /dev/null -d "$endless" "$url/api/generate" & pids+=($!); done
wait "${pids[@]}"
curl -s -o /dev/null -w 'after 4 endless non-streamed requests whose clients left: a request gets %{http_code} in %{time_total} s\n' \
  -d '{"model":"stories","prompt":"Once","stream":false,"options":{"num_predict":8}}' "$url/api/generate"

pids=()
for i in 1 2 3 4; do curl -s -o "$work/run$i" -d "$endless" "$url/api/generate" & pids+=($!); done
sleep 1
t0=$(now)
CORRAL_HOST=127.0.0.1:$port CORRAL_NO_SERVER= "$corral" stop stories
wait "${pids[@]}"
echo "4 endless requests held open, then corral stop: ended after $(since "$t0") s," \
  "done_reason $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["done_reason"])' "$work/run1");" \
  "/api/ps: $(curl -s "$url/api/ps")"

for _ in 1 2 3 4; do curl -s -o /dev/null -d "$endless" "$url/api/generate" & done
sleep 1
t0=$(now)
kill -TERM $server
wait $server
echo "SIGTERM with 4 endless requests running: exit status $? after $(since "$t0") s"
