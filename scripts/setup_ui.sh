#!/usr/bin/env bash
# Installs the chat page's third-party libraries (marked, DOMPurify) at the versions pinned in
# src/server/ui/package-lock.json into src/server/ui/node_modules (git-ignored), from which the
# build embeds their browser builds into corral (CMakeLists.txt, src/server/ui/embed.cmake).
# Skips the work when that install is current. Unlike the test clients these are needed to build:
# without node/npm or the registry it fails.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/src/server/ui"
if ! command -v npm > /dev/null; then
  echo "setup_ui: npm not found (install nodejs and npm): the build embeds the chat page's" \
    "libraries from npm" >&2
  exit 1
fi
stamp="$dir/node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ] &&
  [ -f "$dir/node_modules/marked/package.json" ] &&
  [ -f "$dir/node_modules/dompurify/package.json" ]; then
  exit 0
fi
echo "setup_ui: npm ci in $dir"
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
