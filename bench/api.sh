#!/usr/bin/env bash
# Benchmark: decisions/s through POST /v1/decisions (wrk) against the same
# row inserted by pgbench, one transaction per row, on the same PostgreSQL
# cluster and settings (synchronous_commit on). Prints a table and, last,
#   ratio api_vs_pgbench <api best decisions/s / pgbench best tps>
# Env: BENCH_SECONDS (default 10), BENCH_CONNS (default "16 32 64 128"),
#      PGBENCH_CLIENTS (default "16 64").
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-"16 32 64 128"}
PGB_CLIENTS=${PGBENCH_CLIENTS:-"16 64"}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

work=$(mktemp -d /tmp/ds-bench-XXXXXX)
chmod 755 "$work" # the postgres user must traverse it
api_pid=""
cleanup() {
  [ -n "$api_pid" ] && kill -TERM "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null || true
  bash deploy/pg-cluster.sh destroy "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

conninfo=$(bash deploy/pg-cluster.sh start "$work/pg")
pgport=$(cat "$work/pg/port")
token=bench-writer-token
echo "$(printf %s "$token" | sha256sum | cut -d' ' -f1) writer bench" >"$work/tokens"
apiport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

DECISIONS_DSN="$conninfo" DECISIONS_LISTEN_HOST=127.0.0.1 DECISIONS_LISTEN_PORT=$apiport \
  DECISIONS_TOKENS_FILE="$work/tokens" DECISIONS_LOG_LEVEL=warn "$BUILD/bin/decision-api" &
api_pid=$!
deadline=$((SECONDS + 30))
until curl -sf "http://127.0.0.1:$apiport/readyz" >/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "bench: decision-api not ready" >&2; exit 1; }
  sleep 0.1
done

# wrk's --latency percentiles are printed as e.g. "50%    1.23ms"; normalise to ms.
to_ms() { awk '{v=$1; u=$1; sub(/[0-9.]+/,"",u); sub(/[a-z]+$/,"",v);
  if (u=="us") v/=1000; else if (u=="s") v*=1000; else if (u=="m") v*=60000; printf "%.2f", v}'; }

printf '%-28s %8s %12s %9s %9s %8s\n' "run" "conc" "decisions/s" "p50 ms" "p99 ms" "errors"
best_api=0 best_api_line=""
for c in $CONNS; do
  out=$(BENCH_TOKEN=$token wrk -t2 -c"$c" -d"${SECS}s" --latency -s bench/post_decision.lua \
        "http://127.0.0.1:$apiport" 2>&1)
  rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}' | to_ms)
  p99=$(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)
  errs=$(echo "$out" | awk '/Non-2xx/ {print $NF}'); errs=${errs:-0}
  sock=$(echo "$out" | awk '/Socket errors/ {print $0}')
  [ -n "$sock" ] && echo "  ($sock)"
  printf '%-28s %8s %12.0f %9s %9s %8s\n' "decision-api (wrk)" "$c" "$rate" "$p50" "$p99" "$errs"
  if awk -v a="$rate" -v b="$best_api" 'BEGIN {exit !(a > b)}'; then best_api=$rate; best_api_line="c=$c p99=${p99}ms"; fi
done
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$api_pid/status")
stored=$("$PGBIN/psql" -h 127.0.0.1 -p "$pgport" -U postgres -Atqc "SELECT count(*) FROM decisions" decisions)

# The same row, inserted by pgbench one transaction per row.
doc=$(python3 -c 'import json,sys; print(json.dumps(json.load(open("tests/fixtures/decision.json")), separators=(",",":")))')
cat >"$work/insert.sql" <<SQL
\set n random(1, 1000000000)
INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome, decided_at, schema_version, doc_sha256, doc) VALUES (gen_random_uuid(), 'p-' || :n, 'cust-' || (:n % 100000), 'm-' || (:n % 500), 'APPROVED', '2026-11-24T10:00:00.250Z', 1, decode('00', 'hex'), '$doc');
SQL
best_pg=0
for c in $PGB_CLIENTS; do
  rm -f "$work"/pgbench_log.*
  (cd "$work" && "$PGBIN/pgbench" -h 127.0.0.1 -p "$pgport" -U postgres -n -c "$c" -j 2 -T "$SECS" -l \
     -f insert.sql decisions >"$work/pgbench.out" 2>&1) || { cat "$work/pgbench.out" >&2; exit 1; }
  tps=$(awk '/^tps/ {print $3; exit}' "$work/pgbench.out")
  read -r p50 p99 < <(cat "$work"/pgbench_log.* | awk '{print $3}' | sort -n |
    awk '{a[NR]=$1} END {printf "%.2f %.2f\n", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
  printf '%-28s %8s %12.0f %9s %9s %8s\n' "pgbench (same row)" "$c" "$tps" "$p50" "$p99" "0"
  if awk -v a="$tps" -v b="$best_pg" 'BEGIN {exit !(a > b)}'; then best_pg=$tps; fi
done

echo
echo "decision-api best: ${best_api}/s ($best_api_line); pgbench best: ${best_pg} tps"
echo "decision-api peak resident memory under load: $((rss_kb / 1024)) MiB; decisions stored by wrk runs: $stored"
awk -v a="$best_api" -v b="$best_pg" 'BEGIN {printf "ratio api_vs_pgbench %.2f\n", a / b}'
