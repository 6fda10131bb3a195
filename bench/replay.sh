#!/usr/bin/env bash
# Benchmark: decision-replay refilling Kafka (dev-kafka) from an archive of N
# decisions, against kcat producing the same N already-encoded messages
# (key and Confluent wire value) from a file, in the same run, with the
# same producer settings (idempotent, acks=all, lz4, linger 20 ms, Java's
# partitioner); RUNS runs of each, alternating, medians quoted. Then the
# archiver's sustained rate archiving the replayed topic to disk, and
# decision-replay's rate into PostgreSQL for PG_N decisions. Last line:
#   ratio replay_vs_kcat <median replay records/s / median kcat records/s>
# Env: BENCH_REPLAY_N (default 1000000), BENCH_REPLAY_RUNS (3),
#      BENCH_REPLAY_PG_N (200000).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BUILD=${BUILD:-build}
N=${BENCH_REPLAY_N:-1000000}
RUNS=${BENCH_REPLAY_RUNS:-3}
PG_N=${BENCH_REPLAY_PG_N:-200000}
FIRST_MS=1795165200000 # 2026-11-20T09:00:00Z; N decisions spread over ten hours
STEP_MS=$((36000000 / N > 0 ? 36000000 / N : 1))
KEY_DELIM='\x1f\x1e\x1d\x1c\x1b\x1a\x19\x18' # as bench/tools/bench_gen.c writes them
MSG_DELIM='\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f'
now() { date +%s.%N; }
rate() { echo "scale=0; $1 / ($3 - $2)" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

bench_workdir replay

kport=$(freeport)
brokers=127.0.0.1:$kport
"$BUILD/bin/dev-kafka" --listen-port "$kport" --control-port 0 --log-level error &
pids+=($!)

echo "generating an archive of $N decisions and the kcat input ..."
"$BUILD/bench/bench-gen" "$work/archive" "$N" "$FIRST_MS" "$STEP_MS" "$work/kcat.bin"
echo "archive: $(du -sm "$work/archive" | cut -f1) MiB in $(find "$work/archive" -name '*.avro' | wc -l) files;" \
  "kcat input: $(du -m "$work/kcat.bin" | cut -f1) MiB"

count() { /usr/bin/python3 bench/tools/count_topic.py "$brokers" "$1"; }
replay_rates=() kcat_rates=()
for r in $(seq 1 "$RUNS"); do
  t0=$(now)
  "$BUILD/bin/decision-replay" --archive "$work/archive" --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z \
    --target kafka --brokers "$brokers" --topic "replay-$r" --log-level warn >"$work/summary.json"
  t1=$(now)
  [ "$(count "replay-$r")" = "$N" ] || { echo "replay-$r does not hold $N records" >&2; exit 1; }
  replay_rates+=("$(rate "$N" "$t0" "$t1")")
  t0=$(now)
  kcat -P -b "$brokers" -t "kcat-$r" -K "$KEY_DELIM" -D "$MSG_DELIM" -z lz4 -X enable.idempotence=true \
    -X acks=all -X linger.ms=20 -X partitioner=murmur2_random -X queue.buffering.max.messages=1000000 \
    <"$work/kcat.bin"
  t1=$(now)
  [ "$(count "kcat-$r")" = "$N" ] || { echo "kcat-$r does not hold $N records" >&2; exit 1; }
  kcat_rates+=("$(rate "$N" "$t0" "$t1")")
  echo "run $r: decision-replay ${replay_rates[-1]} records/s, kcat ${kcat_rates[-1]} records/s"
done
replay_med=$(printf '%s\n' "${replay_rates[@]}" | median)
kcat_med=$(printf '%s\n' "${kcat_rates[@]}" | median)

# The archiver: what the broker still holds of replay-1 (the mock cluster
# drops a partition's oldest messages past about 125,000), timed to its last file.
held=$(/usr/bin/python3 bench/tools/count_topic.py --retained "$brokers" replay-1)
echo "archiving replay-1 ($held records still held by the broker) ..."
t0=$(now)
"$BUILD/bin/decision-archiver" --brokers "$brokers" --topic replay-1 --group-id bench-archiver \
  --archive "$work/archived" --max-age 1s --log-level debug 2>"$work/archiver.log" &
apid=$!
pids+=($apid)
archived() { grep -so 'archived [0-9]* records' "$work/archiver.log" | awk '{s += $2} END {print s + 0}'; }
while [ "$(archived)" -lt "$held" ]; do
  kill -0 "$apid" 2>/dev/null || { echo "the archiver exited" >&2; exit 1; }
  sleep 0.1
done
t1=$(now)
archiver_rate=$(rate "$held" "$t0" "$t1")

# decision-replay into PostgreSQL: the first PG_N decisions, fresh table.
conninfo=$(bash deploy/pg-cluster.sh start "$work/pg")
DECISIONS_DSN="$conninfo" DECISIONS_LOG_LEVEL=warn "$BUILD/bin/decision-api" migrate
pg_to=$(python3 -c "import datetime as d; print(d.datetime.fromtimestamp(($FIRST_MS + $PG_N * $STEP_MS) / 1000, d.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z')")
t0=$(now)
"$BUILD/bin/decision-replay" --archive "$work/archive" --from 2026-11-20T00:00:00Z --to "$pg_to" \
  --target postgres --dsn "$conninfo" --log-level warn >"$work/pg-summary.json"
t1=$(now)
rows=$("$PGBIN/psql" "$conninfo" -Atqc "SELECT count(*) FROM decisions")
[ "$rows" = "$PG_N" ] || { echo "postgres holds $rows rows, not $PG_N" >&2; exit 1; }
pg_rate=$(rate "$PG_N" "$t0" "$t1")

echo
printf '%-44s %14s\n' "replay of $N archived decisions" "records/s"
printf '%-44s %14s\n' "decision-replay -> dev-kafka (median)" "$replay_med"
printf '%-44s %14s\n' "kcat, same encoded messages (median)" "$kcat_med"
printf '%-44s %14s\n' "decision-archiver, topic -> disk ($held)" "$archiver_rate"
printf '%-44s %14s\n' "decision-replay -> PostgreSQL ($PG_N)" "$pg_rate"
echo "ratio replay_vs_kcat $(echo "scale=2; $replay_med / $kcat_med" | bc)"
