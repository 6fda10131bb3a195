#!/usr/bin/env bash
# Benchmark: the stream processor against Debezium (Kafka Connect standalone
# with debezium-connector-postgres, JSON converter), the tool users would pick
# instead, on one single-node Apache Kafka (deploy/kafka-cluster.sh, plaintext)
# and one PostgreSQL.
#
# Drain: N one-row decision transactions are written while both tools are
# stopped, after every run's slot was created, so each run drains the same
# rows from a slot of its own to a topic of its own (6 partitions, lz4 for
# both). Timed from the tool's start to the last record on its topic (end
# offsets polled with kcat -Q); the time to its first record is shown too.
# ROUNDS runs of each, alternating which goes first; medians are quoted.
# Peak RSS is VmHWM of the process (the JVM for Debezium) when its last
# record is on the topic.
#
# Latency: each tool in turn, caught up on a fresh slot, while pgbench inserts
# at 1,000 transactions/s: the broker's LogAppendTime of each record (set for
# every topic) minus the row's recorded_at (now() of its one-row transaction),
# joined by decision_id; p50/p99/max in ms. The same method for both, to the
# millisecond of the broker's clock.
#
# Debezium runs as connect-standalone.sh runs it (heap -Xms256M -Xmx2G, G1)
# with its own defaults (max.batch.size 2048, poll.interval.ms 500), the
# converters without embedded schemas (its leanest JSON) and the plugin
# discovery Connect recommends (service_load: the classpath scan it replaces
# takes seconds). Its latency is measured again with poll.interval.ms=10, the
# wait for events that bounds it at this rate. Connect and Debezium come from
# bench/debezium/pom.xml, fetched by Maven into $DEBEZIUM_CACHE (default
# ~/.cache/decision-store/debezium-VERSION) once.
#
# Env: BENCH_DEBEZIUM_N (default 200000), BENCH_DEBEZIUM_ROUNDS (3),
# BENCH_LATENCY_SECONDS (20), BENCH_LATENCY_ROUNDS (2), BENCH_DEBEZIUM_HEAP (-Xms256M -Xmx2G),
# BENCH_DEBEZIUM_LOGS (a directory to keep the tools' logs in).
# The machine may be shared: the figures are noisy. Last line:
#   ratio stream_vs_debezium <stream events/s / debezium events/s>
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BUILD=${BUILD:-build}
N=${BENCH_DEBEZIUM_N:-200000}
ROUNDS=${BENCH_DEBEZIUM_ROUNDS:-3}
LAT_SECS=${BENCH_LATENCY_SECONDS:-20}
LAT_ROUNDS=${BENCH_LATENCY_ROUNDS:-2}
HEAP=${BENCH_DEBEZIUM_HEAP:--Xms256M -Xmx2G}
PARTITIONS=6
DRAIN_TIMEOUT=${BENCH_DEBEZIUM_TIMEOUT:-900}

POM=bench/debezium/pom.xml
DBZ_VERSION=$(sed -n 's:.*<debezium.version>\(.*\)</debezium.version>.*:\1:p' "$POM")
DEBEZIUM_CACHE=$(realpath -m "${DEBEZIUM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/decision-store/debezium-$DBZ_VERSION}")

runlog=/dev/null # the log of the tool running now, shown when it fails
die() {
  echo "debezium.sh: $*" >&2
  { grep -m 5 ' ERROR ' "$runlog" && echo ...; tail -n 20 "$runlog"; } >&2 || true
  exit 1
}

bash deploy/maven-fetch.sh "$POM" "$DEBEZIUM_CACHE" "Kafka Connect and Debezium $DBZ_VERSION" || exit 1
bench_workdir debezium
kafka_dir=$work/kafka
# Clients first (bench_cleanup's order), then the broker, then PostgreSQL.
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null && wait "${pids[$i]}" 2>/dev/null || true
  done
  pids=()
  if [ -n "${BENCH_DEBEZIUM_LOGS:-}" ]; then
    mkdir -p "$BENCH_DEBEZIUM_LOGS"
    (cd "$work" && find . -name '*.log' -path './[sd]*' -exec cp --parents {} "$BENCH_DEBEZIUM_LOGS" \;) || true
  fi
  bash deploy/kafka-cluster.sh destroy "$kafka_dir" >/dev/null 2>&1 || true
  bench_cleanup
}
trap cleanup EXIT

conninfo=$(bash deploy/pg-cluster.sh start "$work/pg")
pgport=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$conninfo")
sql() { "$PGBIN/psql" "$conninfo" -Atqc "$1"; }
DECISIONS_DSN="$conninfo" DECISIONS_LOG_LEVEL=warn "$BUILD/bin/decision-api" migrate
brokers=$(bash deploy/kafka-cluster.sh start "$kafka_dir" --no-topics \
  --set log.message.timestamp.type=LogAppendTime)

doc=$(python3 -c 'import json; print(json.dumps(json.load(open("tests/fixtures/decision.json")), separators=(",",":")))')
cat >"$work/insert.sql" <<SQL
INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome, decided_at, schema_version, doc_sha256, doc) VALUES (gen_random_uuid(), 'p', 'cust-' || (random() * 100000)::int, 'm-7', 'APPROVED', '2026-11-24T10:00:00.250Z', 1, decode('00', 'hex'), '$doc');
SQL

# The sum of a topic's end offsets: its record count (one producer, no
# transactions, nothing deleted).
topic_count() {
  local args=() p
  for ((p = 0; p < PARTITIONS; p++)); do args+=(-t "$1:$p:-1"); done
  kcat -b "$brokers" -Q "${args[@]}" 2>/dev/null | awk '{s += $4} END {print s + 0}'
}

# A child that has exited is a zombie until waited for: not running.
running() { [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ] && [ -e "/proc/$1/stat" ]; }

# wait_count TOPIC COUNT PID: until the topic holds COUNT records; fails when
# the process PID exits first or after DRAIN_TIMEOUT seconds.
wait_count() {
  local deadline=$((SECONDS + DRAIN_TIMEOUT))
  until [ "$(topic_count "$1")" -ge "$2" ]; do
    running "$3" || die "pid $3 exited before $2 records were on $1"
    [ $SECONDS -lt $deadline ] || die "$1 holds $(topic_count "$1") of $2 records after ${DRAIN_TIMEOUT}s"
    sleep 0.05
  done
}

hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# CPU seconds (user + system) the process has used so far.
TICKS=$(getconf CLK_TCK)
cpu() { awk -v t="$TICKS" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
calc() { awk "BEGIN {print $1}"; }
now() { date +%s.%N; }

stop_pid() {
  kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

# start_stream NAME: the stream processor on slot NAME to topic NAME; sets pid.
start_stream() {
  STREAM_DSN="$conninfo" STREAM_BROKERS="$brokers" STREAM_SLOT=$1 STREAM_TOPIC=$1 STREAM_METRICS_PORT=0 \
    STREAM_REGISTRY_URL= STREAM_LOG_LEVEL=warn "$BUILD/bin/stream-processor" >"$work/$1.log" 2>&1 &
  runlog=$work/$1.log
  pid=$!
  pids+=($pid)
}

# start_debezium NAME: Connect standalone with one Debezium task on slot NAME
# to topic NAME.public.decisions, $dbz_extra added to the connector's
# settings; sets pid.
start_debezium() {
  local d=$work/$1 rest
  mkdir -p "$d"
  rest=$(freeport)
  cat >"$d/worker.properties" <<CONF
bootstrap.servers=$brokers
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
offset.storage.file.filename=$d/offsets
offset.flush.interval.ms=10000
listeners=http://127.0.0.1:$rest
plugin.discovery=service_load
producer.compression.type=lz4
CONF
  cat >"$d/connector.properties" <<CONF
name=$1
connector.class=io.debezium.connector.postgresql.PostgresConnector
tasks.max=1
database.hostname=127.0.0.1
database.port=$pgport
database.user=postgres
database.password=
database.dbname=decisions
topic.prefix=$1
table.include.list=public.decisions
plugin.name=pgoutput
slot.name=$1
publication.name=decisions_pub
publication.autocreate.mode=disabled
snapshot.mode=no_data
$dbz_extra
CONF
  # shellcheck disable=SC2086
  java $HEAP -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dds.kafka.level=INFO -Dlog4j2.configurationFile=deploy/kafka/log4j2.xml \
    -cp "$DEBEZIUM_CACHE/libs/*" org.apache.kafka.connect.cli.ConnectStandalone \
    "$d/worker.properties" "$d/connector.properties" >"$d/connect.log" 2>&1 &
  runlog=$d/connect.log
  pid=$!
  pids+=($pid)
}

# A run's topic and start, by its name: stream_* or dbz*.
topic_of() { case $1 in stream_*) echo "$1" ;; dbz*) echo "$1.public.decisions" ;; esac; }
start_run() { case $1 in stream_*) start_stream "$1" ;; dbz*) start_debezium "$1" ;; esac; }

dbz_extra=""
slot() { sql "SELECT pg_create_logical_replication_slot('$1', 'pgoutput')" >/dev/null; }
# The walsender of a stopped tool may hold its slot a moment longer.
drop_slot() {
  local deadline=$((SECONDS + 60))
  until [ "$(sql "SELECT active FROM pg_replication_slots WHERE slot_name = '$1'")" = f ]; do
    [ $SECONDS -lt $deadline ] || die "slot $1 still active 60 s after its tool stopped"
    sleep 0.1
  done
  sql "SELECT pg_drop_replication_slot('$1')" >/dev/null
}

# ---- drain: every run's slot first, then the rows
runs=()
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then runs+=("stream_$r" "dbz_$r"); else runs+=("dbz_$r" "stream_$r"); fi
done
warm=warm_up
for name in "${runs[@]}" $warm; do
  slot "$name"
  [ "$name" = "$warm" ] || bash deploy/kafka-cluster.sh topic "$kafka_dir" "$(topic_of "$name")" $PARTITIONS >/dev/null
done
echo "filling $N one-row transactions ..."
nice "$PGBIN/pgbench" -n -c 8 -j 2 -t $((N / 8)) -f "$work/insert.sql" "$conninfo" >/dev/null
rows=$(sql "SELECT count(*) FROM decisions")
# Neither tool's run pays for the fill's autovacuum and checkpoint, nor for
# the first decoding of the new WAL: pg_recvlogical drains a slot of its own
# to /dev/null first.
sql "VACUUM ANALYZE decisions"
sql "CHECKPOINT"
"$PGBIN/pg_recvlogical" -d "$conninfo" --slot=$warm --start --endpos="$(sql "SELECT pg_current_wal_lsn()")" \
  --no-loop -o proto_version=1 -o publication_names=decisions_pub -f /dev/null
drop_slot $warm

# The time to the first record too: how much of a run is the tool's start.
declare -A secs first rss cpus
for name in "${runs[@]}"; do
  topic=$(topic_of "$name")
  t0=$(now)
  start_run "$name"
  wait_count "$topic" 1 "$pid"
  first[$name]=$(calc "$(now) - $t0")
  wait_count "$topic" "$rows" "$pid"
  secs[$name]=$(calc "$(now) - $t0")
  rss[$name]=$(hwm "$pid")
  cpus[$name]=$(cpu "$pid")
  stop_pid "$pid"
  drop_slot "$name"
  printf '%-10s %7.2f s, first record %5.2f s, %6.0f events/s, CPU %6.2f s, peak RSS %7d KiB\n' "$name" \
    "${secs[$name]}" "${first[$name]}" "$(calc "$rows / ${secs[$name]}")" "${cpus[$name]}" "${rss[$name]}"
done

# ---- latency at 1,000/s: each tool caught up on a fresh slot, in turn
cat >"$work/latency.py" <<'PY'
import json, sys
# argv: pairs of a kcat dump (key, LogAppendTime ms, headers) and the rows
# (decision_id|recorded_at ms) of one run; the latencies of all runs pooled.
lat = []
for dump, rows in zip(sys.argv[1::2], sys.argv[2::2]):
    recorded = {}
    for line in open(rows):
        did, ms = line.rstrip("\n").split("|")
        recorded[did] = float(ms)
    n = len(recorded)
    for line in open(dump):
        key, ts, hdrs = (line.rstrip("\n").split("\t") + [""])[:3]
        did = None
        for h in hdrs.split(","):
            if h.startswith("decision_id="):
                did = h[len("decision_id="):]
        if did is None and key.startswith("{"):
            did = json.loads(key).get("decision_id")
        if did in recorded:
            lat.append(int(ts) - recorded.pop(did))
    if recorded or not n:
        sys.exit("%s: %d of %d rows not on the topic" % (dump, len(recorded), n))
lat.sort()
q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]
print("%.1f %.1f %.1f %d" % (q(0.5), q(0.99), lat[-1], len(lat)))
PY
# Debezium twice: as it comes, and with poll.interval.ms=10 (how long it waits
# for events before it hands a batch on; 500 ms by default). Each round in
# the other order; the rounds' latencies are pooled.
lat_tools=(stream dbz dbzp10)
declare -A lat lat_cpu lat_rate lat_files
for ((r = 1; r <= LAT_ROUNDS; r++)); do
  order=("${lat_tools[@]}")
  ((r % 2)) || order=(dbzp10 dbz stream)
  for tool in "${order[@]}"; do
    name=${tool}_lat$r
    topic=$(topic_of "$name")
    base=$(sql "SELECT count(*) FROM decisions")
    slot "$name"
    bash deploy/kafka-cluster.sh topic "$kafka_dir" "$topic" $PARTITIONS >/dev/null
    dbz_extra=""
    [ "$tool" = dbzp10 ] && dbz_extra="poll.interval.ms=10"
    start_run "$name"
    # Streaming once a probe row is on the topic.
    sql "$(cat "$work/insert.sql")"
    wait_count "$topic" 1 "$pid"
    # A few seconds at the rate before the measured ones: the JVM compiles
    # what it runs hot, and neither tool is measured while it starts.
    nice "$PGBIN/pgbench" -n -c 4 -j 2 -R 1000 -T 5 -f "$work/insert.sql" "$conninfo" >/dev/null
    since=$(sql "SELECT clock_timestamp()")
    c0=$(cpu "$pid")
    t0=$(now)
    nice "$PGBIN/pgbench" -n -c 4 -j 2 -R 1000 -T "$LAT_SECS" -f "$work/insert.sql" "$conninfo" >/dev/null
    sql "SELECT decision_id, extract(epoch FROM recorded_at) * 1000 FROM decisions WHERE recorded_at > '$since'" \
      >"$work/$name.rows"
    sent=$(wc -l <"$work/$name.rows")
    wait_count "$topic" "$(sql "SELECT count(*) - $base FROM decisions")" "$pid"
    # The tool's share of one core from the measured inserts' start until
    # it has sent the last of them.
    lat_cpu[$name]=$(calc "100 * ($(cpu "$pid") - $c0) / ($(now) - $t0)")
    lat_rate[$name]=$(calc "$sent / $LAT_SECS")
    stop_pid "$pid"
    drop_slot "$name"
    kcat -b "$brokers" -C -t "$topic" -o beginning -e -q -f '%k\t%T\t%h\n' >"$work/$name.dump"
    lat_files[$tool]+=" $work/$name.dump $work/$name.rows"
    printf '%-14s %s\n' "$name" "p50 p99 max ms, records: $(python3 "$work/latency.py" "$work/$name.dump" \
      "$work/$name.rows"); $(calc "int(${lat_rate[$name]})") rows/s inserted; CPU $(calc "int(${lat_cpu[$name]})")%"
  done
done
for tool in "${lat_tools[@]}"; do
  # shellcheck disable=SC2086
  lat[$tool]=$(python3 "$work/latency.py" ${lat_files[$tool]})
done

# ---- the tables: medians over the rounds
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# stat ARRAY TOOL EXPR: the median over the rounds of EXPR, where x is ARRAY[TOOL_r].
stat() {
  local -n a=$1
  local r
  for ((r = 1; r <= ROUNDS; r++)); do awk -v x="${a[${2}_$r]}" "BEGIN {print $3}"; done | median
}
connect=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")
declare -A names=([stream]="stream-processor" [dbz]="Debezium $DBZ_VERSION, Connect $connect")
printf '\ndrain of %s decisions, a slot each, median of %d runs (shared machine: noisy)\n' "$rows" "$ROUNDS"
printf '%-40s %9s %8s %9s %7s %13s\n' "" events/s seconds "1st rec s" "CPU s" "peak RSS MiB"
for t in stream dbz; do
  printf '%-40s %9.0f %8.2f %9.2f %7.1f %13.1f\n' "${names[$t]}" "$(stat secs $t "$rows / x")" \
    "$(stat secs $t x)" "$(stat first $t x)" "$(stat cpus $t x)" "$(stat rss $t "x / 1024")"
done
names[dbzp10]="Debezium, poll.interval.ms=10"
# lstat ARRAY TOOL: the median over the latency rounds of ARRAY[TOOL_latr].
lstat() {
  local -n a=$1
  local r
  for ((r = 1; r <= LAT_ROUNDS; r++)); do echo "${a[${2}_lat$r]}"; done | median
}
printf '\ncommit->ack at 1,000 inserts/s (LogAppendTime - recorded_at), %d runs of %d s each pooled;\n' \
  "$LAT_ROUNDS" "$LAT_SECS"
printf 'rows/s inserted and CPU (%% of one core) are medians\n'
printf '%-40s %8s %8s %8s %8s %6s\n' "" "rows/s" "p50 ms" "p99 ms" "max ms" "CPU %"
for t in "${lat_tools[@]}"; do
  read -r p50 p99 max _ <<<"${lat[$t]}"
  printf '%-40s %8.0f %8s %8s %8s %6.0f\n' "${names[$t]}" "$(lstat lat_rate $t)" "$p50" "$p99" "$max" \
    "$(lstat lat_cpu $t)"
done
echo
awk -v m="$(stat rss stream x)" -v n="$(stat rss dbz x)" 'BEGIN {printf "memory stream_vs_debezium %.3f\n", m / n}'
awk -v a="$(stat secs stream "$rows / x")" -v b="$(stat secs dbz "$rows / x")" \
  'BEGIN {printf "ratio stream_vs_debezium %.2f\n", a / b}'
