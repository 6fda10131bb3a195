#!/usr/bin/env bash
# Installs the Debian packages the build, tests, benchmarks and `make run` need.
# Idempotent: does nothing when every package is already installed, so `make run`
# and `make test` can call it every time on a fresh machine or a warm one.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config
  libpq-dev postgresql postgresql-contrib
  libh2o-dev libuv1-dev libssl-dev
  libjansson-dev libavro-dev librdkafka-dev
  libcmocka-dev liblmdb-dev lmdb-utils
  libcurl4-openssl-dev xxd curl wrk kcat python3 python3-avro python3-kafka python3-lz4
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
