#!/usr/bin/env bash
# Benchmark: the stream processor draining a slot of N one-row decision
# transactions to Kafka (dev-kafka), against pg_recvlogical draining an equal
# pgoutput slot to /dev/null in the same run; the processor's resident memory
# while draining; and commit-to-Kafka-ack latency at a steady ~1,000
# decisions/s posted through the API. Last line:
#   ratio stream_vs_pg_recvlogical <processor events/s / pg_recvlogical events/s>
# Env: BENCH_STREAM_N (default 200000), BENCH_LATENCY_SECONDS (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BUILD=${BUILD:-build}
N=${BENCH_STREAM_N:-200000}
LAT_SECS=${BENCH_LATENCY_SECONDS:-20}

bench_workdir stream

conninfo=$(bash deploy/pg-cluster.sh start "$work/pg")
sql() { "$PGBIN/psql" "$conninfo" -Atqc "$1"; }
DECISIONS_DSN="$conninfo" DECISIONS_LOG_LEVEL=warn "$BUILD/bin/decision-api" migrate
kport=$(freeport)
"$BUILD/bin/dev-kafka" --listen-port "$kport" --control-port 0 --log-level error &
pids+=($!)
sql "SELECT pg_create_logical_replication_slot('decisions_stream', 'pgoutput')" >/dev/null
sql "SELECT pg_create_logical_replication_slot('bench_recvlogical', 'pgoutput')" >/dev/null

# N one-row transactions of valid decisions, written while both slots exist.
doc=$(python3 -c 'import json; print(json.dumps(json.load(open("tests/fixtures/decision.json")), separators=(",",":")))')
cat >"$work/insert.sql" <<SQL
INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome, decided_at, schema_version, doc_sha256, doc) VALUES (gen_random_uuid(), 'p', 'cust-' || (random() * 100000)::int, 'm-7', 'APPROVED', '2026-11-24T10:00:00.250Z', 1, decode('00', 'hex'), '$doc');
SQL
echo "filling $N one-row transactions ..."
"$PGBIN/pgbench" -n -c 8 -j 2 -t $((N / 8)) -f "$work/insert.sql" "$conninfo" >/dev/null
end=$(sql "SELECT pg_current_wal_lsn()")
rows=$(sql "SELECT count(*) FROM decisions")

# The processor drains its slot to Kafka; RSS sampled while it works.
mport=$(freeport)
t0=$(date +%s.%N)
STREAM_DSN="$conninfo" STREAM_BROKERS=127.0.0.1:$kport STREAM_METRICS_PORT=$mport STREAM_LOG_LEVEL=warn \
  STREAM_STATUS_INTERVAL=100ms "$BUILD/bin/stream-processor" &
sp=$!
pids+=($sp)
rss=()
until [ "$(sql "SELECT confirmed_flush_lsn >= '$end' FROM pg_replication_slots WHERE slot_name = 'decisions_stream'")" = t ]; do
  rss+=("$(awk '/VmRSS/ {print $2}' /proc/$sp/status)")
  sleep 0.2
done
t1=$(date +%s.%N)
sp_secs=$(echo "$t1 - $t0" | bc -l)
events=$(curl -s "127.0.0.1:$mport/metrics" | awk '$1=="stream_events_total" {print $2}')

# pg_recvlogical drains the equal slot to /dev/null.
t0=$(date +%s.%N)
"$PGBIN/pg_recvlogical" -d "$conninfo" --slot=bench_recvlogical --start --endpos="$end" --no-loop \
  -o proto_version=1 -o publication_names=decisions_pub -f /dev/null
t1=$(date +%s.%N)
rl_secs=$(echo "$t1 - $t0" | bc -l)

sp_rate=$(echo "$rows / $sp_secs" | bc -l)
rl_rate=$(echo "$rows / $rl_secs" | bc -l)
n=${#rss[@]}
q() { echo "${rss[$(( ($n - 1) * $1 / 4 ))]}"; }
printf '\n%-40s %12s %10s\n' "drain of $rows decisions" "events/s" "seconds"
printf '%-40s %12.0f %10.2f\n' "stream-processor -> Kafka (dev-kafka)" "$sp_rate" "$sp_secs"
printf '%-40s %12.0f %10.2f\n' "pg_recvlogical -> /dev/null" "$rl_rate" "$rl_secs"
echo "processor events read: $events; RSS while draining (KiB) at 0/25/50/75/100%: $(q 0) $(q 1) $(q 2) $(q 3) $(q 4)"

# Commit-to-ack latency at ~1,000 decisions/s through the API (13 connections,
# each pausing 10 ms after every answer of about 3 ms).
aport=$(freeport)
token=bench-writer-token
echo "$(printf %s "$token" | sha256sum | cut -d' ' -f1) writer bench" >"$work/tokens"
DECISIONS_DSN="$conninfo" DECISIONS_LISTEN_HOST=127.0.0.1 DECISIONS_LISTEN_PORT=$aport \
  DECISIONS_TOKENS_FILE="$work/tokens" DECISIONS_LOG_LEVEL=warn "$BUILD/bin/decision-api" &
pids+=($!)
until curl -sf "127.0.0.1:$aport/readyz" >/dev/null; do sleep 0.1; done
hist() { curl -s "127.0.0.1:$mport/metrics" | awk '/^stream_commit_to_ack_seconds_bucket/ {match($0, /le="[^"]+"/); print substr($0, RSTART+4, RLENGTH-5), $2}'; }
hist >"$work/h0"
out=$(BENCH_TOKEN=$token BENCH_DELAY_MS=10 wrk -t1 -c13 -d"${LAT_SECS}s" -s bench/post_decision.lua "http://127.0.0.1:$aport")
rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
until [ "$(curl -s "127.0.0.1:$mport/metrics" | awk '$1=="stream_in_flight" {print $2}')" = 0 ]; do sleep 0.1; done
hist >"$work/h1"
# Percentiles from the histogram's bucket deltas (upper bucket bound).
read -r p50 p99 < <(paste "$work/h0" "$work/h1" | awk '{le[NR]=$1; c[NR]=$4-$2} END {
  tot=c[NR]; for (i=1; i<=NR; i++) { if (!a && c[i] >= tot*0.5) {a=le[i]} if (!b && c[i] >= tot*0.99) {b=le[i]} }
  printf "%s %s\n", a, b }')
kill -TERM "$sp" && wait "$sp" 2>/dev/null || true
echo "commit-to-Kafka-ack at ${rate} decisions/s posted: p50 <= ${p50}s, p99 <= ${p99}s (histogram bucket bounds)"
awk -v a="$sp_rate" -v b="$rl_rate" 'BEGIN {printf "ratio stream_vs_pg_recvlogical %.2f\n", a / b}'
