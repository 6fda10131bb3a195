#!/usr/bin/env bash
# Installs the Debian packages the build, tests, benchmarks and `make run` need,
# and the npm packages of the third-party client test (tests/tools/node).
# Idempotent: does nothing when every package is already installed, so `make run`
# and `make test` can call it every time on a fresh machine or a warm one.
# With --fuzz it also installs clang and its libFuzzer runtime for `make fuzz`
# (Debian 12: clang 14, whose libclang_rt.fuzzer is in libclang-rt-14-dev);
# `make test` does not need them: it replays the fuzz inputs with the normal compiler.
set -euo pipefail

FUZZ=0
if [ "${1:-}" = "--fuzz" ]; then FUZZ=1; fi

PACKAGES=(
  build-essential pkg-config
  libpq-dev postgresql postgresql-contrib
  libh2o-dev libuv1-dev libssl-dev
  libjansson-dev libavro-dev zlib1g-dev
  libcmocka-dev liblmdb-dev lmdb-utils
  libcurl4-openssl-dev xxd curl wrk kcat python3 python3-avro python3-kafka python3-lz4
  # deploy/kafka-cluster.sh: Maven fetches Apache Kafka, which needs Java 17
  maven openjdk-17-jre-headless openssl
  # deploy/librdkafka.sh builds Debian trixie's librdkafka source package with
  # these (its Build-Depends, from bookworm; dpkg-dev unpacks the source)
  dpkg-dev libsasl2-dev libzstd-dev liblz4-dev
)
if [ "$FUZZ" = 1 ]; then PACKAGES+=(clang libclang-rt-14-dev); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm run the third-party Kafka client of test_thirdparty
# (tests/tools/node). The machine's own Node.js is used when there is one;
# Debian's packages only when it is absent (Debian's npm brings node-gyp and
# the headers the lz4 codec's native build needs).
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The npm packages of tests/tools/node, exactly as package-lock.json pins them:
# installed again only when node_modules is missing or older than the lock
# (a stamp written after a complete `npm ci`, so a failed one is retried).
NODE_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/tools/node"
STAMP="$NODE_DIR/node_modules/.npm-ci-stamp"
if [ ! -e "$STAMP" ] || [ "$NODE_DIR/package-lock.json" -nt "$STAMP" ] || [ "$NODE_DIR/package.json" -nt "$STAMP" ]; then
  echo "install-deps: npm ci in tests/tools/node" >&2
  npm ci --prefix "$NODE_DIR" --no-audit --no-fund >&2
  touch "$STAMP"
fi

# librdkafka 2.8.0, built once from Debian trixie's source package into a
# cache (bookworm's 2.0.2 fails SCRAM logins to Kafka 4); the Makefile links it.
bash "$(dirname "$0")/librdkafka.sh" >/dev/null
