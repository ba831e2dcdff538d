#!/usr/bin/env bash
# `corral pull` against curl on one blob from a registry on loopback (Debian's docker-registry,
# started here with its own storage folder, stopped at the end).
#
#   bench/pull_throughput.sh [ROUNDS=3] [MODEL.gguf]
#
# The model is a 1 GB synthetic one (`corral debug synth qwen2.5-0.5b --type F16`) unless a GGUF
# is given. Each round, in turn: `corral pull` with its default 16 parts, `corral pull` with one
# part (CORRAL_PULL_PARTS=1), `curl -o FILE` of the same blob, and `curl` followed by
# `sha256sum` (a pull verifies the digest; curl alone does not). Every pull starts from an empty
# store, so it fetches and verifies the whole blob. Prints the median MB/s (10^6 bytes) of each.
set -euo pipefail

rounds="${1:-3}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
corral="${CORRAL:-$repo/build/corral}"
registry=/usr/bin/docker-registry
for tool in "$registry" "$(command -v curl || true)"; do
  if [ -z "$tool" ] || [ ! -x "$tool" ]; then
    echo "pull_throughput: needs docker-registry and curl (scripts/setup.sh installs them)" >&2
    exit 1
  fi
done
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "pull_throughput: ROUNDS must be a positive integer, not '$rounds'" >&2
  exit 2
fi

work="$(mktemp -d)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2> /dev/null && wait "$pid" 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat > "$work/registry.yml" << END
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
END
"$registry" serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port/v2"
for _ in $(seq 100); do curl -sf "$base/" > /dev/null && break || sleep 0.1; done

gguf="${2:-}"
if [ -z "$gguf" ]; then
  gguf="$work/synth.gguf"
  "$corral" debug synth qwen2.5-0.5b --type F16 -o "$gguf" > /dev/null
fi
size=$(stat -c %s "$gguf")

upload() {  # FILE -> digest
  local digest="sha256:$(sha256sum "$1" | cut -d' ' -f1)" location
  location="$(curl -sf -X POST -D - -o /dev/null "$base/bench/model/blobs/uploads/" |
    tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')"
  case "$location" in http*) ;; *) location="http://127.0.0.1:$port$location" ;; esac
  curl -sf -X PUT -H 'Content-Type: application/octet-stream' --upload-file "$1" \
    "$location&digest=$digest" > /dev/null
  echo "$digest"
}
digest="$(upload "$gguf")"
printf '{}' > "$work/config.json"
config="$(upload "$work/config.json")"
printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"%s","size":%s}]}' \
  "$config" "$digest" "$size" > "$work/manifest.json"
curl -sf -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' \
  --data-binary @"$work/manifest.json" "$base/bench/model/manifests/latest" > /dev/null
[ -z "${2:-}" ] && rm -f "$gguf"

now() { date +%s.%N; }
rate() { python3 -c "print(f'{$size / 1e6 / ($2 - $1):.0f}')"; }
declare -A results
run() {  # LABEL COMMAND...
  local label="$1" t0 t1
  shift
  rm -rf "$work/store" "$work/blob"
  t0=$(now)
  "$@" > /dev/null
  t1=$(now)
  results[$label]+="$(rate "$t0" "$t1") "
}
pull() { CORRAL_NO_SERVER=1 CORRAL_MODELS="$work/store" "$corral" pull --insecure "127.0.0.1:$port/bench/model"; }
pull1() { CORRAL_PULL_PARTS=1 pull; }
fetch() { curl -sf -o "$work/blob" "$base/bench/model/blobs/$digest"; }
fetch_sum() { fetch && sha256sum "$work/blob"; }

echo "blob: $size bytes; $rounds rounds"
for r in $(seq "$rounds"); do
  run "corral pull (16 parts)" pull
  run "corral pull (1 part)" pull1
  run "curl -o" fetch
  run "curl -o + sha256sum" fetch_sum
  echo "round $r done" >&2
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for k in "corral pull (16 parts)" "corral pull (1 part)" "curl -o" "curl -o + sha256sum"; do
  printf '%-24s %6s MB/s   (rounds: %s)\n' "$k" "$(echo "${results[$k]}" | median)" "${results[$k]}"
done
