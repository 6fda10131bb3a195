#!/usr/bin/env bash
# `make run`: the local stack in the foreground, on embedded defaults.
#   - a PostgreSQL cluster (wal_level=logical) whose data lives under var/
#     (as root, in /var/tmp/decision-store-<id>, linked as var/pg, because the
#     postgres user cannot traverse a checkout under /root);
#   - development tokens in var/tokens.env (clear) and var/tokens (hashes):
#     DECISIONS_WRITER_TOKEN (roles writer and lookup, as a policy engine's),
#     DECISIONS_READER_TOKEN, DECISIONS_INGEST_TOKEN (decision-replay into the
#     variable store) and DECISIONS_ADMIN_TOKEN;
#   - Kafka on 127.0.0.1:9092: by default the local Kafka-protocol broker
#     (dev-kafka, librdkafka's mock cluster; control endpoint on
#     127.0.0.1:9644), which starts at once and keeps nothing; with
#     KAFKA=apache (make run KAFKA=apache) a single-node Apache Kafka
#     started by deploy/kafka-cluster.sh, its data under var/kafka, kept
#     across runs (the first run fetches the broker from Maven Central);
#   - migrations, then the decision API on :8080;
#   - the stream processor (slot decisions_stream -> topic decisions), metrics on :9101;
#   - the archiver (topic decisions -> var/archive, files closed within 60 s);
#   - the variable store on :8081 (topic decisions -> var/variable-store).
# Every daemon listens on 127.0.0.1 only; to serve other machines set
# DECISIONS_LISTEN_HOST, VARSTORE_LISTEN_HOST, STREAM_LISTEN_HOST (metrics)
# to 0.0.0.0 or an address of this machine.
# Ctrl-C stops the API, then PostgreSQL. Environment overrides: see README.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BUILD=${BUILD:-build}
PG_PORT=${DECISIONS_PG_PORT:-55432}
KAFKA=${KAFKA:-dev}
KAFKA_PORT=${DEV_KAFKA_LISTEN_PORT:-9092}
case "$KAFKA" in
  dev | apache) ;;
  *) echo "run.sh: KAFKA must be dev (dev-kafka, the default) or apache (Apache Kafka), not '$KAFKA'" >&2; exit 2 ;;
esac
export DECISIONS_LISTEN_PORT=${DECISIONS_LISTEN_PORT:-8080}
export DECISIONS_TOKENS_FILE=${DECISIONS_TOKENS_FILE:-$root/var/tokens}

mkdir -p var
if [ ! -e var/pg ]; then
  if [ "$(id -u)" -eq 0 ]; then
    pgdir=/var/tmp/decision-store-$(echo "$root" | sha256sum | cut -c1-12)
    mkdir -p "$pgdir"
    ln -sfn "$pgdir" var/pg
  else
    mkdir -p var/pg
  fi
fi
pgdir=$(readlink -f var/pg)

# Development tokens: random, written once, kept across runs (one missing
# from an older var/tokens.env is added).
roles="writer reader ingest admin"
touch var/tokens.env
chmod 600 var/tokens.env
for role in $roles; do
  var="DECISIONS_$(echo $role | tr a-z A-Z)_TOKEN"
  grep -q "^$var=" var/tokens.env ||
    echo "$var=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" >>var/tokens.env
done
# shellcheck disable=SC1091
. var/tokens.env
{
  echo "# SHA-256 of the development tokens in var/tokens.env; written by make run"
  for role in $roles; do
    var="DECISIONS_$(echo $role | tr a-z A-Z)_TOKEN"
    # the writer token is a policy engine's: it posts decisions and reads variables
    granted=$role
    [ "$role" = writer ] && granted=writer,lookup
    echo "$(printf %s "${!var}" | sha256sum | cut -d' ' -f1) $granted dev-$role"
  done
} >var/tokens

if [ -f "$pgdir/data/postmaster.pid" ] && bash deploy/pg-cluster.sh conninfo "$pgdir" >/dev/null 2>&1 &&
   /usr/lib/postgresql/*/bin/pg_isready -q -h 127.0.0.1 -p "$(cat "$pgdir/port")"; then
  conninfo=$(bash deploy/pg-cluster.sh conninfo "$pgdir")
else
  conninfo=$(bash deploy/pg-cluster.sh start "$pgdir" "$PG_PORT")
fi
# (DECISIONS_DATABASE_URL, STREAM_DATABASE_URL, ARCHIVER_ROOT: the names before the rename)
export DECISIONS_DSN=${DECISIONS_DSN:-${DECISIONS_DATABASE_URL:-$conninfo}}

api_pid="" kafka_pid="" stream_pid="" archiver_pid="" vstore_pid=""
stop() { # stop PID: SIGTERM and wait for it, if it was started
  [ -n "$1" ] && kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null || true
}
cleanup() {
  trap - EXIT INT TERM
  stop "$vstore_pid"
  stop "$archiver_pid"
  stop "$stream_pid"
  stop "$api_pid"
  stop "$kafka_pid"
  [ "$KAFKA" = apache ] && bash deploy/kafka-cluster.sh stop var/kafka 2>/dev/null
  bash deploy/pg-cluster.sh stop "$pgdir" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ "$KAFKA" = apache ]; then
  echo "Starting Apache Kafka (single node, KRaft) in var/kafka on 127.0.0.1:$KAFKA_PORT;" \
    "the first run fetches it from Maven Central and may take a few minutes..." >&2
  bash deploy/kafka-cluster.sh start var/kafka --port "$KAFKA_PORT" >/dev/null
  kafka_name="Apache Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' deploy/kafka/pom.xml), data in var/kafka"
else
  "$BUILD/bin/dev-kafka" &
  kafka_pid=$!
  kafka_name="dev-kafka, librdkafka's mock cluster; make run KAFKA=apache for Apache Kafka"
  # The mock cluster takes a static member's restart for a new member and
  # waits out the old one's session timeout (45 s): dynamic membership there.
  export ARCHIVER_GROUP_INSTANCE_ID=${ARCHIVER_GROUP_INSTANCE_ID:-none}
  export VARSTORE_GROUP_INSTANCE_ID=${VARSTORE_GROUP_INSTANCE_ID:-none}
fi
"$BUILD/bin/decision-api" migrate
"$BUILD/bin/decision-api" &
api_pid=$!
STREAM_DSN=${STREAM_DSN:-${STREAM_DATABASE_URL:-$DECISIONS_DSN}} \
STREAM_BROKERS=${STREAM_BROKERS:-127.0.0.1:$KAFKA_PORT} "$BUILD/bin/stream-processor" &
stream_pid=$!
ARCHIVER_BROKERS=${ARCHIVER_BROKERS:-127.0.0.1:$KAFKA_PORT} \
ARCHIVER_ARCHIVE=${ARCHIVER_ARCHIVE:-${ARCHIVER_ROOT:-$root/var/archive}} "$BUILD/bin/decision-archiver" &
archiver_pid=$!
VARSTORE_BROKERS=${VARSTORE_BROKERS:-127.0.0.1:$KAFKA_PORT} \
VARSTORE_DATA_DIR=${VARSTORE_DATA_DIR:-$root/var/variable-store} \
VARSTORE_TOKENS_FILE=${VARSTORE_TOKENS_FILE:-$DECISIONS_TOKENS_FILE} "$BUILD/bin/variable-store" &
vstore_pid=$!

cat <<MSG

Decision store running. PostgreSQL: $DECISIONS_DSN
Decision API: http://127.0.0.1:$DECISIONS_LISTEN_PORT   (tokens in var/tokens.env)
Kafka: 127.0.0.1:$KAFKA_PORT ($kafka_name), topics decisions and decisions.dlq

Post a decision:
  . var/tokens.env
  curl -s -X POST http://127.0.0.1:$DECISIONS_LISTEN_PORT/v1/decisions \\
    -H "Authorization: Bearer \$DECISIONS_WRITER_TOKEN" -H 'Content-Type: application/json' \\
    -d @tests/fixtures/decision.json
Watch it reach Kafka (key, headers; the value is Confluent-framed Avro):
  kcat -C -b 127.0.0.1:$KAFKA_PORT -t decisions -f 'key=%k %h\n'
Its archive file appears within a minute under var/archive/decisions/dt=.../hour=.../
Read it back:
  curl -s -H "Authorization: Bearer \$DECISIONS_READER_TOKEN" \\
    'http://127.0.0.1:$DECISIONS_LISTEN_PORT/v1/decisions?customer_id=cust-42'
Variable store: http://127.0.0.1:${VARSTORE_LISTEN_PORT:-8081} (the fixture's decided_at is old: post one
dated now to see the 30-day counts move)
  curl -s -H "Authorization: Bearer \$DECISIONS_WRITER_TOKEN" \\
    http://127.0.0.1:${VARSTORE_LISTEN_PORT:-8081}/v1/variables/customer/cust-42
Refill the variable store from the archive (the ingest token):
  REPLAY_TOKEN=\$DECISIONS_INGEST_TOKEN $BUILD/bin/decision-replay --target variable-store \\
    --url http://127.0.0.1:${VARSTORE_LISTEN_PORT:-8081} --from 2026-01-01T00:00:00Z --to 2100-01-01T00:00:00Z
Everything listens on 127.0.0.1 only (DECISIONS_LISTEN_HOST, VARSTORE_LISTEN_HOST,
STREAM_LISTEN_HOST=0.0.0.0 expose it: see README).

Ctrl-C stops everything.
MSG
# Any daemon ending ends the stack (cleanup stops the others). Apache Kafka
# is not this shell's child: the stream processor and the consumers report
# a broker that went away, and Ctrl-C stops it.
wait -n $kafka_pid "$api_pid" "$stream_pid" "$archiver_pid" "$vstore_pid"
