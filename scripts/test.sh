#!/usr/bin/env bash
# Runs the whole test suite of a build folder (default build/) against ../shared/testdata
# (CORRAL_TESTDATA overrides it).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
# llama.cpp (node-llama-cpp) for the tests that load corral's GGUF files with it.
bash scripts/setup_llamacpp.sh
# The Ollama and OpenAI JavaScript clients for the tests of `corral serve` (tests/clients).
bash scripts/setup_clients.sh
export CORRAL_TESTDATA="${CORRAL_TESTDATA:-$(cd .. && pwd)/shared/testdata}"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
