#!/usr/bin/env bash
# Installs the official Ollama and OpenAI JavaScript clients for the tests that drive
# `corral serve` through them (tests/clients/*.test.mjs), and playwright-core, which drives
# Debian's Chromium for the chat page's tests (no browser download), at the versions pinned in
# tests/clients/package-lock.json, into tests/clients/node_modules (git-ignored). Skips the work
# when that install is current. Without node or the registry this prints why and returns 0; the
# Clients.* tests then fail and say what is missing.
set -uo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/clients"
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  echo "setup_clients: node/npm not found; the Clients tests will fail (install nodejs and npm)"
  exit 0
fi
stamp="$dir/node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ] &&
  [ -f "$dir/node_modules/ollama/package.json" ] && [ -f "$dir/node_modules/openai/package.json" ] &&
  [ -f "$dir/node_modules/playwright-core/package.json" ]; then
  exit 0
fi
echo "setup_clients: npm ci in $dir"
if ! (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error); then
  echo "setup_clients: npm ci failed; the Clients tests will fail"
fi
exit 0
