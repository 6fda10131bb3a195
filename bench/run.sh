#!/usr/bin/env bash
# `make bench`: every benchmark in bench/, one after another.
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bench/api.sh bench/stream.sh bench/replay.sh bench/vstore.sh bench/debezium.sh; do
  echo "=== $b"
  bash "$b"
done
