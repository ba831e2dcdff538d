#!/usr/bin/env bash
# Installs llama.cpp for the tests that check corral's GGUF files against it: node-llama-cpp and
# its prebuilt Linux x64 CPU binary, at the versions pinned in tests/llamacpp/package-lock.json,
# into tests/llamacpp/node_modules (git-ignored). Skips the work when that install is current.
# Optional packages (the CUDA/Vulkan/other-OS binaries, hundreds of MB) are left out and install
# scripts are not run: the tests load the prebuilt CPU binary as it is. Without node or the
# registry this prints why and returns 0; the llama.cpp tests then fail and say what is missing.
set -uo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/llamacpp"
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  echo "setup_llamacpp: node/npm not found; the LlamaCpp tests will fail (install nodejs and npm)"
  exit 0
fi
stamp="$dir/node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ] &&
  [ -f "$dir/node_modules/@node-llama-cpp/linux-x64/package.json" ]; then
  exit 0
fi
echo "setup_llamacpp: npm ci in $dir"
if ! (cd "$dir" && npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error); then
  echo "setup_llamacpp: npm ci failed; the LlamaCpp tests will fail"
fi
exit 0
