# bench/lib.sh - what every benchmark script starts with, sourced after
# `cd` to the repository root: the newest PostgreSQL binaries, a free port,
# a work directory whose processes ($pids, newest first) and throwaway
# clusters ($work/pg, the Kafka clusters of bench_kafka) are cleaned up on
# exit, and a real Apache Kafka to measure against.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# bench_workdir NAME: creates $work (/tmp/ds-bench-NAME-*) and the exit trap.
bench_workdir() {
  work=$(mktemp -d "/tmp/ds-bench-$1-XXXXXX")
  chmod 755 "$work" # the postgres user must traverse it
  pids=()
  kafka_dirs=()
  trap bench_cleanup EXIT
}

# bench_kafka NAME [kafka-cluster.sh start options, e.g. --sasl --tls]:
# starts a single-node Apache Kafka (deploy/kafka-cluster.sh, topics
# decisions and decisions.dlq made) in $work/kafka-NAME, destroyed on exit;
# sets kafka_dir and kafka_bootstrap. A first run fetches the broker (minutes).
# One idempotent message is produced to a topic of its own (bench.warmup)
# before returning: a fresh broker answers the first producer-id request
# "coordinator load in progress" and the client retries for about half a
# second, which is start-up, not what a timed run should measure.
bench_kafka() {
  kafka_dir=$work/kafka-$1
  kafka_dirs+=("$kafka_dir")
  kafka_bootstrap=$(bash deploy/kafka-cluster.sh start "$kafka_dir" --nodes 1 "${@:2}")
  bash deploy/kafka-cluster.sh topic "$kafka_dir" bench.warmup 1
  # kcat links the machine's librdkafka: PLAIN rather than SCRAM (see kafka-cluster.sh)
  echo warmup | kcat -F "$kafka_dir/client-plain.properties" -P -t bench.warmup -X enable.idempotence=true \
    -X acks=all 2>&1 | { grep -v 'Reading configuration\|GETPID' || true; } >&2
}

# bench_kafka_env DIR PREFIX: the environment that points a program at the
# cluster in DIR with the shared Kafka options (PREFIX_BROKERS, and with
# SASL and/or TLS PREFIX_SECURITY_PROTOCOL, PREFIX_SASL_*, PREFIX_SSL_CA_LOCATION),
# one NAME=VALUE a line: mapfile -t e < <(bench_kafka_env DIR STREAM_); env "${e[@]}" ...
bench_kafka_env() {
  local dir=$1 p=$2 sasl=0 tls=0
  [ -f "$dir/sasl-password" ] && sasl=1
  [ -f "$dir/ca.pem" ] && tls=1
  echo "${p}BROKERS=$(bash deploy/kafka-cluster.sh bootstrap "$dir")"
  case "$sasl$tls" in
    10) echo "${p}SECURITY_PROTOCOL=sasl_plaintext" ;; 01) echo "${p}SECURITY_PROTOCOL=ssl" ;;
    11) echo "${p}SECURITY_PROTOCOL=sasl_ssl" ;;
  esac
  if [ $sasl = 1 ]; then
    # SCRAM: the programs link librdkafka 2.8.0 (the Makefile), which logs in
    # to Kafka 4 with it, unlike the machine's 2.0.2 (see kafka-cluster.sh).
    echo "${p}SASL_MECHANISM=SCRAM-SHA-512"
    echo "${p}SASL_USERNAME=decisions"
    echo "${p}SASL_PASSWORD_FILE=$dir/sasl-password"
  fi
  [ $tls = 0 ] || echo "${p}SSL_CA_LOCATION=$dir/ca.pem"
}

bench_cleanup() {
  # newest first: clients before the broker or database they talk to
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null && wait "${pids[$i]}" 2>/dev/null || true
  done
  local d
  for d in "${kafka_dirs[@]}"; do bash deploy/kafka-cluster.sh destroy "$d" >/dev/null 2>&1 || true; done
  bash deploy/pg-cluster.sh destroy "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
