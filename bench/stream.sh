#!/usr/bin/env bash
# Benchmark: the stream processor draining a slot of N one-row decision
# transactions to Kafka, against pg_recvlogical draining an equal pgoutput
# slot to /dev/null in the same run; the processor's peak resident memory
# while draining; and commit-to-Kafka-ack latency at a steady ~1,000
# decisions/s posted through the API. The processor runs against three
# brokers: dev-kafka (librdkafka's mock cluster, in memory), and a
# single-node Apache Kafka on this machine (deploy/kafka-cluster.sh), with
# plaintext and with SASL_SSL (SCRAM-SHA-512 over TLS), both exactly-once
# (the processor's default on a real cluster), and plaintext at-least-once. Every figure is the
# median of RUNS rounds; within a round the four drains read slots filled
# by the same transactions, and the order of the targets rotates from
# round to round. Last lines:
#   ratio stream_real_vs_pg_recvlogical <processor -> Apache Kafka events/s / pg_recvlogical events/s>
#   ratio stream_vs_pg_recvlogical <processor -> dev-kafka events/s / pg_recvlogical events/s>
#   ratio eos_vs_alo <Apache Kafka exactly-once events/s / at-least-once events/s>
# Env: BENCH_STREAM_N (default 200000), BENCH_LATENCY_SECONDS (default 20),
#      BENCH_STREAM_RUNS (3), BENCH_STREAM_SASL_SSL (1; 0 leaves that row out).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BUILD=${BUILD:-build}
N=${BENCH_STREAM_N:-200000}
LAT_SECS=${BENCH_LATENCY_SECONDS:-20}
RUNS=${BENCH_STREAM_RUNS:-3}
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

bench_workdir stream

conninfo=$(bash deploy/pg-cluster.sh start "$work/pg")
sql() { "$PGBIN/psql" "$conninfo" -Atqc "$1"; }
DECISIONS_DSN="$conninfo" DECISIONS_LOG_LEVEL=warn "$BUILD/bin/decision-api" migrate

# The targets, each with the environment that points the processor at it.
kport=$(freeport)
"$BUILD/bin/dev-kafka" --listen-port "$kport" --control-port 0 --log-level error &
pids+=($!)
targets=(mock apache apache-alo)
echo "STREAM_BROKERS=127.0.0.1:$kport" >"$work/env-mock"
echo "starting a single-node Apache Kafka (plaintext) ..."
bench_kafka plain
bench_kafka_env "$kafka_dir" STREAM_ >"$work/env-apache"
{ cat "$work/env-apache"; echo STREAM_DELIVERY=at-least-once; } >"$work/env-apache-alo"
if [ "${BENCH_STREAM_SASL_SSL:-1}" != 0 ]; then
  echo "starting a single-node Apache Kafka (SASL_SSL) ..."
  bench_kafka sasl-ssl --sasl --tls
  bench_kafka_env "$kafka_dir" STREAM_ >"$work/env-apache-sasl-ssl"
  targets+=(apache-sasl-ssl)
fi
declare -A label=([mock]="dev-kafka (mock cluster)" [apache]="Apache Kafka, plaintext" [apache-alo]="Apache Kafka, at-least-once"
  [apache-sasl-ssl]="Apache Kafka, SASL_SSL" [recvlogical]="pg_recvlogical -> /dev/null")

# start_processor TARGET SLOT: the processor on that slot (made when
# missing), metrics on $mport, pid in $sp.
start_processor() {
  local e
  mapfile -t e <"$work/env-$1"
  mport=$(freeport)
  env "${e[@]}" STREAM_DSN="$conninfo" STREAM_SLOT="$2" STREAM_METRICS_PORT=$mport STREAM_LOG_LEVEL=warn \
    STREAM_STATUS_INTERVAL=100ms "$BUILD/bin/stream-processor" &
  sp=$!
  pids+=($sp)
}
# Stops the processor started last (the newest of $pids), which then leaves
# the list: its pid may be another process's by the time of the exit trap.
stop_processor() {
  kill -TERM "$sp" && wait "$sp" 2>/dev/null || true
  unset 'pids[-1]'
}
metric() { curl -s "127.0.0.1:$mport/metrics" | awk -v n="$1" '$1==n {print $2}'; }
# The order of round r: the list rotated by r.
rotated() {
  local r=$1 k
  shift
  for ((k = 0; k < $#; k++)); do
    local i=$(((k + r) % $# + 1))
    echo "${!i}"
  done
}

# One drain round: N one-row transactions of valid decisions written while a
# slot per target exists, then each slot drained in turn.
doc=$(python3 -c 'import json; print(json.dumps(json.load(open("tests/fixtures/decision.json")), separators=(",",":")))')
cat >"$work/insert.sql" <<SQL
INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome, decided_at, schema_version, doc_sha256, doc) VALUES (gen_random_uuid(), 'p', 'cust-' || (random() * 100000)::int, 'm-7', 'APPROVED', '2026-11-24T10:00:00.250Z', 1, decode('00', 'hex'), '$doc');
SQL
declare -A drain_rates=() drain_secs=() drain_rss=()
drain_target() { # TARGET SLOT END_LSN ROWS
  local t0 t1 rss=() peak
  t0=$(now)
  if [ "$1" = recvlogical ]; then
    "$PGBIN/pg_recvlogical" -d "$conninfo" --slot="$2" --start --endpos="$3" --no-loop \
      -o proto_version=1 -o publication_names=decisions_pub -f /dev/null
    t1=$(now)
    peak=-
  else
    start_processor "$1" "$2"
    # The processor's RSS is sampled while it works.
    until [ "$(sql "SELECT confirmed_flush_lsn >= '$3' FROM pg_replication_slots WHERE slot_name = '$2'")" = t ]; do
      rss+=("$(awk '/VmRSS/ {print $2}' "/proc/$sp/status")")
      sleep 0.2
    done
    t1=$(now)
    local events
    events=$(metric stream_events_total)
    [ "$events" -ge "$4" ] || { echo "$1: the processor read $events events of $4" >&2; exit 1; }
    stop_processor
    peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)
  fi
  sql "SELECT pg_drop_replication_slot('$2')" >/dev/null
  local secs rate
  secs=$(echo "$t1 - $t0" | bc -l)
  rate=$(echo "$4 / $secs" | bc -l)
  drain_rates[$1]+="$rate " drain_secs[$1]+="$secs " drain_rss[$1]+="$peak "
  printf '  %-32s %8.0f events/s %7.2f s  peak RSS %s KiB\n' "${label[$1]}" "$rate" "$secs" "$peak"
}
for r in $(seq 1 "$RUNS"); do
  order=($(rotated "$r" "${targets[@]}" recvlogical))
  for t in "${order[@]}"; do
    sql "SELECT pg_create_logical_replication_slot('drain_${t//-/_}_$r', 'pgoutput')" >/dev/null
  done
  before=$(sql "SELECT count(*) FROM decisions")
  echo "round $r: filling $N one-row transactions ..."
  "$PGBIN/pgbench" -n -c 8 -j 2 -t $((N / 8)) -f "$work/insert.sql" "$conninfo" >/dev/null
  end=$(sql "SELECT pg_current_wal_lsn()")
  rows=$(($(sql "SELECT count(*) FROM decisions") - before))
  for t in "${order[@]}"; do drain_target "$t" "drain_${t//-/_}_$r" "$end" "$rows"; done
done

# Commit-to-ack latency at ~1,000 decisions/s through the API (13
# connections, each pausing 10 ms after every answer of about 3 ms), with a
# fresh processor and slot per target and round.
aport=$(freeport)
token=bench-writer-token
echo "$(printf %s "$token" | sha256sum | cut -d' ' -f1) writer bench" >"$work/tokens"
DECISIONS_DSN="$conninfo" DECISIONS_LISTEN_HOST=127.0.0.1 DECISIONS_LISTEN_PORT=$aport \
  DECISIONS_TOKENS_FILE="$work/tokens" DECISIONS_LOG_LEVEL=warn "$BUILD/bin/decision-api" &
pids+=($!)
until curl -sf "127.0.0.1:$aport/readyz" >/dev/null; do sleep 0.1; done
post_one() {
  local id
  id=$(python3 -c 'import uuid; print(uuid.uuid4())')
  python3 -c 'import json, sys; d = json.load(open("tests/fixtures/decision.json")); d["decision_id"] = sys.argv[1]; print(json.dumps(d))' "$id" |
    curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' --data-binary @- \
      "127.0.0.1:$aport/v1/decisions"
}
# hist PORT HISTOGRAM: "<le> <cumulative count>" lines of that histogram.
hist() {
  curl -s "127.0.0.1:$1/metrics" |
    awk -v b="$2_bucket{" 'index($0, b) == 1 {match($0, /le="[^"]+"/); print substr($0, RSTART+4, RLENGTH-5), $2}'
}
# p50 and p99 from the bucket deltas of two readings (cumulative counts), in
# ms: linear within the bucket the quantile falls in, as Prometheus's
# histogram_quantile does (0 is the lower bound of the first bucket; in the
# +Inf bucket, the bound below it).
quantiles() {
  paste "$1" "$2" | awk '{le[NR] = $1; c[NR] = $4 - $2} END {
    split("0.5 0.99", qs, " ")
    for (k = 1; k <= 2; k++) {
      want = c[NR] * qs[k]; lo = 0; below = 0
      for (i = 1; i <= NR; i++) {
        if (c[i] >= want) {
          if (le[i] == "+Inf") { v = lo } else { v = lo + (le[i] - lo) * (c[i] > below ? (want - below) / (c[i] - below) : 1) }
          break
        }
        lo = le[i]; below = c[i]
      }
      printf "%.2f ", v * 1000
    }
    printf "%d\n", c[NR] }'
}
declare -A lat_p50=() lat_p99=() lat_rate=() lat_c99=()
for r in $(seq 1 "$RUNS"); do
  for t in $(rotated "$r" "${targets[@]}"); do
    slot="lat_${t//-/_}_$r"
    start_processor "$t" "$slot"
    until curl -sf "127.0.0.1:$mport/readyz" >/dev/null; do sleep 0.1; done
    # One decision first, so the connection to the broker (and its TLS and
    # SASL handshakes) is not counted as latency.
    post_one
    until [ "$(metric stream_commit_to_ack_seconds_count)" -ge 1 ] 2>/dev/null; do sleep 0.1; done
    hist "$mport" stream_commit_to_ack_seconds >"$work/h0"
    hist "$aport" decision_commit_duration_seconds >"$work/c0"
    out=$(BENCH_TOKEN=$token BENCH_DELAY_MS=10 wrk -t1 -c13 -d"${LAT_SECS}s" -s bench/post_decision.lua "http://127.0.0.1:$aport")
    rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    until [ "$(metric stream_in_flight)" = 0 ]; do sleep 0.1; done
    hist "$mport" stream_commit_to_ack_seconds >"$work/h1"
    hist "$aport" decision_commit_duration_seconds >"$work/c1"
    read -r p50 p99 txns < <(quantiles "$work/h0" "$work/h1")
    read -r _ c99 _ < <(quantiles "$work/c0" "$work/c1")
    stop_processor
    sql "SELECT pg_drop_replication_slot('$slot')" >/dev/null
    lat_p50[$t]+="$p50 " lat_p99[$t]+="$p99 " lat_rate[$t]+="$rate " lat_c99[$t]+="$c99 "
    printf '  %-32s %5.0f decisions/s posted, %d transactions: commit-to-ack p50 %5.2f ms, p99 %6.2f ms;' \
      "${label[$t]}" "$rate" "$txns" "$p50" "$p99"
    printf ' API commit p99 %6.2f ms\n' "$c99"
  done
done

med() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }
printf '\nmedians of %d rounds; drain of %d one-row transactions, latency at ~1,000 decisions/s for %d s\n' \
  "$RUNS" "$N" "$LAT_SECS"
printf '%-28s %9s %8s %9s %9s %7s %7s %11s\n' target "events/s" seconds "peak RSS" "posted/s" "p50 ms" "p99 ms" \
  "commit p99"
for t in "${targets[@]}" recvlogical; do
  rss=$(med "${drain_rss[$t]}")
  [ "$rss" = - ] || rss="$((rss / 1024)) MiB"
  if [ "$t" = recvlogical ]; then
    printf '%-28s %9.0f %8.2f %9s %9s %7s %7s %11s\n' "${label[$t]}" "$(med "${drain_rates[$t]}")" \
      "$(med "${drain_secs[$t]}")" "$rss" - - - -
  else
    printf '%-28s %9.0f %8.2f %9s %9.0f %7.2f %7.2f %11.2f\n' "${label[$t]}" "$(med "${drain_rates[$t]}")" \
      "$(med "${drain_secs[$t]}")" "$rss" "$(med "${lat_rate[$t]}")" "$(med "${lat_p50[$t]}")" \
      "$(med "${lat_p99[$t]}")" "$(med "${lat_c99[$t]}")"
  fi
done
echo "p50/p99: commit-to-Kafka-ack (stream_commit_to_ack_seconds), interpolated linearly within the bucket"
echo "they fall in; commit p99: the API's batch-to-commit time (decision_commit_duration_seconds) in the"
echo "same seconds, PostgreSQL's share, since the commit time the latency starts from precedes the WAL flush"
awk -v a="$(med "${drain_rates[apache]}")" -v m="$(med "${drain_rates[mock]}")" -v b="$(med "${drain_rates[recvlogical]}")" \
  'BEGIN {printf "ratio stream_real_vs_pg_recvlogical %.2f\nratio stream_vs_pg_recvlogical %.2f\n", a / b, m / b}'
awk -v e="$(med "${drain_rates[apache]}")" -v a="$(med "${drain_rates[apache-alo]}")" \
  'BEGIN {printf "ratio eos_vs_alo %.2f\n", e / a}'
