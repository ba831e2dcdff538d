#!/usr/bin/env bash
# Installs every Debian package the build and the tests need (non-interactive, idempotent),
# then builds Release into build/, prints the version of the binary it built, and runs the model
# the repository ships (models/stories260K) from the store.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ cmake ninja-build ccache pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev libedit-dev
  libssl-dev libcpp-httplib-dev libcurl4-openssl-dev
  docker-registry openssl
  libstb-dev libjpeg-dev libwebp-dev
  clang clang-format libclang-rt-14-dev
  nodejs
  chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The llama.cpp compatibility tests run node-llama-cpp, and the build the chat page's libraries,
# through npm: Debian's nodejs comes without npm (NodeSource's includes it).
if ! command -v npm > /dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm
fi

# The chat page's libraries (marked, DOMPurify), which the build embeds into corral.
bash scripts/setup_ui.sh

export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${CORRAL_CMAKE_ARGS:-}
cmake --build build
build/corral --version

# The model the repository ships goes into the store as `stories` (again on every run: the blob is
# already there, so only the manifest is rewritten), and corral runs it. CORRAL_NO_SERVER keeps
# both in this process: setup never leaves a server running. CORRAL_MODELS, when set, is the store.
CORRAL_NO_SERVER=1 build/corral create stories -f models/stories260K/Modelfile > /dev/null
echo 'setup: corral run stories "Once upon a time"'
CORRAL_NO_SERVER=1 build/corral run stories "Once upon a time"
