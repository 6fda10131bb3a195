#!/usr/bin/env bash
# A throwaway Apache Kafka cluster (KRaft) for the tests, the benchmarks and a
# local stack on the real broker; the sibling of pg-cluster.sh.
#
#   kafka-cluster.sh start DIR [--nodes 1|3] [--sasl] [--tls] [--port P] [--no-topics]
#                              [--set KEY=VALUE]...
#        formats DIR if it is new, starts every node, waits until a metadata
#        request through the client listener lists all of them, creates the
#        topics `decisions` (6 partitions), `decisions.dlq` (1) and
#        `decisions.checkpoints` (1, compacted: the stream processor's
#        exactly-once checkpoints) unless --no-topics, and prints the bootstrap servers on stdout
#        ("127.0.0.1:p1,127.0.0.1:p2,..."). Client ports are P, P+1, ... when
#        --port is given, free ones otherwise. On a DIR that exists it starts
#        the stopped nodes again with the stored layout (options given must
#        match it). --set adds a broker setting to every node of a new
#        cluster (e.g. broker.session.timeout.ms=3000 for a faster failover
#        after a SIGKILL than the default 9 s).
#   kafka-cluster.sh stop DIR [NODE]     SIGTERM every node (or node NODE, 1-based),
#                                        SIGKILL after 30 s
#   kafka-cluster.sh kill DIR NODE       SIGKILL node NODE (1-based), as a crash
#   kafka-cluster.sh restart DIR NODE    start that node again (same ports and
#                                        storage) and wait until it serves metadata
#   kafka-cluster.sh topic DIR NAME PARTITIONS [RF]
#                                        create a topic (RF defaults to the
#                                        number of nodes); nothing if it exists
#   kafka-cluster.sh bootstrap DIR       print the bootstrap servers again
#   kafka-cluster.sh leader DIR TOPIC PARTITION
#                                        print the node (1-based) leading that
#                                        partition, as a metadata request sees it
#   kafka-cluster.sh run DIR CLASS ARGS...
#                                        run a Kafka main class from the fetched
#                                        jars (ConsoleConsumer, ConfigCommand, ...)
#   kafka-cluster.sh destroy DIR         SIGKILL every node and delete DIR
#
# The broker is Apache Kafka from Maven Central, fetched by Maven from
# deploy/kafka/pom.xml (the pinned version is there) into
# $KAFKA_CACHE (default ~/.cache/decision-store/kafka-<version>) once: a
# second run, or a second cluster, does not fetch. Java 17 and Maven come from
# deploy/install-deps.sh.
#
# Every node is a combined broker and controller (static quorum,
# controller.quorum.voters), on 127.0.0.1 only, with three listeners:
#   CLIENT      the clients' listener, the only one advertised to clients:
#               PLAINTEXT, SASL_PLAINTEXT (--sasl), SSL (--tls) or SASL_SSL
#               (--sasl --tls); with --tls there is no plaintext client port.
#   INTERNAL    PLAINTEXT, between brokers, and for this script's topic tool
#               (so creating a topic needs no credentials).
#   CONTROLLER  PLAINTEXT, the KRaft quorum.
# SASL is SCRAM-SHA-512, with one user (decisions, a random password)
# created when the storage is formatted, and PLAIN for the same user and
# password beside it: librdkafka before 2.6.1 (Debian 12 ships 2.0.2, kcat
# included) sends a SCRAM proof that Kafka 4 refuses as invalid credentials
# (librdkafka#4895), so on this machine's librdkafka only PLAIN can log in;
# over --tls PLAIN's password is as protected as SCRAM's. TLS uses a CA and a
# broker certificate (SAN IP:127.0.0.1, DNS:localhost) made with openssl in
# DIR/tls. The client settings are written to DIR:
#   DIR/client.properties        librdkafka properties, SCRAM-SHA-512
#                                (kcat -F DIR/client.properties)
#   DIR/client-plain.properties  the same with PLAIN, for librdkafka < 2.6.1
#   DIR/client-java.properties   Java client properties, SCRAM-SHA-512
#                                (--command-config, --consumer.config)
#   DIR/client.json              kafka-python keyword arguments, SCRAM-SHA-512
#                                (KafkaProducer(**json.load(open(...))))
#   DIR/ca.pem                   the CA certificate (with --tls)
#   DIR/sasl-password            the password alone (with --sasl), for the
#                                programs' --sasl-password-file
# Without --sasl, all of them are written too (without credentials).
# Replication factor = number of nodes for every internal topic and by
# default; min.insync.replicas 2 on 3 nodes, 1 on one; no automatic topic
# creation, as in production. Heap 512 MiB for one node, 384 MiB each for three.
# Kafka runs as root as well (unlike PostgreSQL); tests keep DIR under /tmp.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
usage="usage: kafka-cluster.sh start|stop|kill|restart|topic|bootstrap|run|destroy DIR ..."
cmd=${1:?$usage}
dir=${2:?$usage}
dir=$(realpath -m "$dir")
shift 2

POM=$here/kafka/pom.xml
LOG4J=$here/kafka/log4j2.xml
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")
KAFKA_CACHE=$(realpath -m "${KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/decision-store/kafka-$KAFKA_VERSION}")
SASL_USER=decisions
SETTINGS=()
READY_TIMEOUT=${KAFKA_READY_TIMEOUT:-90}

die() { echo "kafka-cluster: $*" >&2; exit 1; }

# The broker's jars, fetched once (maven-fetch.sh).
fetch() {
  bash "$here/maven-fetch.sh" "$POM" "$KAFKA_CACHE" "Apache Kafka $KAFKA_VERSION" || exit 1
}

java_bin() {
  local j=${JAVA:-java} major
  command -v "$j" >/dev/null || die "java not found: run deploy/install-deps.sh"
  major=$("$j" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  [ "${major:-0}" -ge 17 ] || die "Kafka $KAFKA_VERSION needs Java 17 or later; $j is ${major:-unknown}"
  echo "$j"
}

# A Kafka command-line tool (StorageTool, TopicCommand): everything it prints
# goes to stderr, stdout is the bootstrap line's.
tool() {
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dds.kafka.level=WARN \
    -Dlog4j2.configurationFile="$LOG4J" -cp "$KAFKA_CACHE/libs/*" "$@" >&2
}

free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

port_free() {
  python3 -c '
import socket, sys
s = socket.socket()
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}

# The stored layout: NODES, SASL, TLS, CLUSTER_ID and per node
# CLIENT_PORT_n, INTERNAL_PORT_n, CONTROLLER_PORT_n.
load_layout() {
  [ -f "$dir/cluster.env" ] || die "$dir holds no cluster (no cluster.env)"
  # shellcheck disable=SC1091
  . "$dir/cluster.env"
}

# The listener list of every node: ports KIND (CLIENT, INTERNAL) prints
# "127.0.0.1:p1,127.0.0.1:p2,...".
ports() {
  local i out="" v
  for i in $(seq 1 "$NODES"); do
    v=${1}_PORT_$i
    out+="${out:+,}127.0.0.1:${!v}"
  done
  echo "$out"
}
bootstrap() { ports CLIENT; }
internal_bootstrap() { ports INTERNAL; }

protocol() {
  case "$SASL$TLS" in
    00) echo PLAINTEXT ;; 10) echo SASL_PLAINTEXT ;; 01) echo SSL ;; 11) echo SASL_SSL ;;
  esac
}

make_tls() {
  local t=$dir/tls
  mkdir -p "$t"
  # Long-lived: a cluster kept for `make run` must not expire under it.
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=decision-store test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$t/ca.key" -out "$t/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$t/broker.key" -out "$t/broker.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$t/broker.ext"
  openssl x509 -req -in "$t/broker.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
    -days 825 -extfile "$t/broker.ext" -out "$t/broker.crt" 2>/dev/null
  # Kafka's PEM key store: the unencrypted PKCS#8 key and the chain in one file.
  (umask 077 && cat "$t/broker.key" "$t/broker.crt" >"$t/broker.pem")
  cp "$t/ca.pem" "$dir/ca.pem"
}

write_node_config() {
  local i=$1 rf min_isr voters="" j
  rf=$NODES
  min_isr=1
  [ "$NODES" -ge 3 ] && min_isr=2
  for j in $(seq 1 "$NODES"); do
    local c=CONTROLLER_PORT_$j
    voters+="${voters:+,}$j@127.0.0.1:${!c}"
  done
  local cp=CLIENT_PORT_$i ip=INTERNAL_PORT_$i kp=CONTROLLER_PORT_$i
  mkdir -p "$dir/node$i/data"
  cat >"$dir/node$i/server.properties" <<CONF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=CLIENT://127.0.0.1:${!cp},INTERNAL://127.0.0.1:${!ip},CONTROLLER://127.0.0.1:${!kp}
advertised.listeners=CLIENT://127.0.0.1:${!cp},INTERNAL://127.0.0.1:${!ip}
listener.security.protocol.map=CLIENT:$(protocol),INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
log.dirs=$dir/node$i/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
CONF
  if [ "$SASL" = 1 ]; then
    cat >>"$dir/node$i/server.properties" <<CONF
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.client.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
CONF
  fi
  if [ "$TLS" = 1 ]; then
    cat >>"$dir/node$i/server.properties" <<CONF
ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/broker.pem
ssl.client.auth=none
CONF
  fi
  local kv
  for kv in "${SETTINGS[@]}"; do echo "$kv" >>"$dir/node$i/server.properties"; done
  chmod 600 "$dir/node$i/server.properties"
}

# librdkafka properties with SASL mechanism $1.
librdkafka_props() {
  echo "# librdkafka client settings of the cluster in $dir (kcat -F this-file)"
  echo "bootstrap.servers=$(bootstrap)"
  echo "security.protocol=$(protocol | tr A-Z a-z)"
  if [ "$SASL" = 1 ]; then
    echo "sasl.mechanism=$1"
    echo "sasl.username=$SASL_USER"
    echo "sasl.password=$SASL_PASSWORD"
  fi
  if [ "$TLS" = 1 ]; then echo "ssl.ca.location=$dir/ca.pem"; fi
}

write_client_files() {
  local proto bs
  proto=$(protocol)
  bs=$(bootstrap)
  librdkafka_props SCRAM-SHA-512 >"$dir/client.properties"
  librdkafka_props PLAIN >"$dir/client-plain.properties"
  {
    echo "# Java client settings of the cluster in $dir"
    echo "bootstrap.servers=$bs"
    echo "security.protocol=$proto"
    if [ "$SASL" = 1 ]; then
      echo "sasl.mechanism=SCRAM-SHA-512"
      echo "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$SASL_USER\" password=\"$SASL_PASSWORD\";"
    fi
    if [ "$TLS" = 1 ]; then
      echo "ssl.truststore.type=PEM"
      echo "ssl.truststore.location=$dir/ca.pem"
    fi
  } >"$dir/client-java.properties"
  python3 - "$dir/client.json" "$bs" "$proto" "$SASL" "$TLS" "$SASL_USER" "${SASL_PASSWORD:-}" "$dir/ca.pem" <<'PY'
import json, sys
path, bs, proto, sasl, tls, user, password, ca = sys.argv[1:]
c = {"bootstrap_servers": bs.split(","), "security_protocol": proto}
if sasl == "1":
    c.update(sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user, sasl_plain_password=password)
if tls == "1":
    c["ssl_cafile"] = ca
with open(path, "w") as f:
    json.dump(c, f, indent=2)
    f.write("\n")
PY
  chmod 600 "$dir"/client*.properties "$dir/client.json"
  if [ "$SASL" = 1 ]; then (umask 077 && echo "$SASL_PASSWORD" >"$dir/sasl-password"); fi
}

# Formats a new DIR: ports, certificates, configuration, then the storage of
# every node with the same cluster id (and the SCRAM user).
format() {
  local given_port=$1 ports i
  if [ -n "$given_port" ]; then
    for i in $(seq 0 $((NODES - 1))); do
      port_free $((given_port + i)) || die "port $((given_port + i)) is in use (--port $given_port)"
    done
    read -r -a ports <<<"$(free_ports $((2 * NODES)))"
  else
    read -r -a ports <<<"$(free_ports $((3 * NODES)))"
  fi
  mkdir -p "$dir"
  chmod 700 "$dir"
  CLUSTER_ID=$(tool kafka.tools.StorageTool random-uuid 2>&1 | tail -n 1)
  [[ $CLUSTER_ID =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid printed '$CLUSTER_ID'"
  SASL_PASSWORD=""
  [ "$SASL" = 1 ] && SASL_PASSWORD=$(openssl rand -hex 16)
  {
    echo "NODES=$NODES SASL=$SASL TLS=$TLS CLUSTER_ID=$CLUSTER_ID SASL_PASSWORD=$SASL_PASSWORD"
    for i in $(seq 1 "$NODES"); do
      local k=$((i - 1))
      if [ -n "$given_port" ]; then
        echo "CLIENT_PORT_$i=$((given_port + k)) INTERNAL_PORT_$i=${ports[2 * k]} CONTROLLER_PORT_$i=${ports[2 * k + 1]}"
      else
        echo "CLIENT_PORT_$i=${ports[3 * k]} INTERNAL_PORT_$i=${ports[3 * k + 1]} CONTROLLER_PORT_$i=${ports[3 * k + 2]}"
      fi
    done
  } >"$dir/cluster.env.tmp"
  chmod 600 "$dir/cluster.env.tmp"
  # shellcheck disable=SC1091
  . "$dir/cluster.env.tmp"
  [ "$TLS" = 1 ] && make_tls
  local scram=()
  [ "$SASL" = 1 ] && scram=(--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]")
  local pids=()
  for i in $(seq 1 "$NODES"); do
    write_node_config "$i"
    tool kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$dir/node$i/server.properties" \
      "${scram[@]}" 2>"$dir/node$i/format.log" &
    pids+=($!)
  done
  for i in $(seq 1 "$NODES"); do
    wait "${pids[i - 1]}" || { cat "$dir/node$i/format.log" >&2; die "formatting node $i failed"; }
  done
  write_client_files
  mv "$dir/cluster.env.tmp" "$dir/cluster.env"
}

# A process that has exited but not been reaped (a zombie) has an empty
# command line: it counts as gone.
alive() {
  [ -r "/proc/$1/cmdline" ] && [ -n "$(tr -d '\0' <"/proc/$1/cmdline" 2>/dev/null)" ]
}

# The pid of node i if it runs (a live java process with that node's
# configuration: a stale pid file, or a recycled pid, is not the node).
node_pid() {
  local f=$dir/node$1/pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $dir/node$1/server.properties" || return 1
  echo "$pid"
}

# The nodes this run started: a start that fails stops them again, so a
# failed start leaves no broker behind for the caller to find.
started=()
kill_started() {
  local i pid
  for i in "${started[@]}"; do
    if pid=$(node_pid "$i"); then kill -KILL "$pid"; fi
  done
}

start_node() {
  local i=$1 heap=512m pid
  [ "$NODES" -gt 1 ] && heap=384m
  if node_pid "$i" >/dev/null; then return; fi
  [ ${#started[@]} -gt 0 ] || trap kill_started EXIT
  started+=("$i")
  # setsid: the broker outlives this script and a Ctrl-C at the caller's
  # terminal; its working directory (where a JVM crash report goes) is its own.
  cd "$dir/node$i"
  setsid "$JAVA" -Xmx$heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dds.kafka.level=INFO -Dlog4j2.configurationFile="$LOG4J" \
    -cp "$KAFKA_CACHE/libs/*" kafka.Kafka "$dir/node$i/server.properties" \
    >>"$dir/node$i/kafka.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/node$i/pid"
  cd - >/dev/null
  # The background child is this shell's fork until it has exec'd setsid
  # and java: until then node_pid would call the node dead.
  local deadline=$((SECONDS + 10))
  until node_pid "$i" >/dev/null; do
    alive "$pid" || { log_tails "$i"; die "node $i exited at once"; }
    [ $SECONDS -lt $deadline ] || die "node $i (pid $pid) did not start java within 10 s"
    sleep 0.05
  done
}

log_tails() {
  local i
  for i in "$@"; do
    echo "--- node $i: $dir/node$i/kafka.log" >&2
    tail -n 25 "$dir/node$i/kafka.log" >&2 || true
  done
}

# A metadata request through the client listener (with the client settings:
# credentials and CA); prints kcat's listing. kcat is linked with the
# machine's librdkafka, so it logs in with PLAIN (see above).
metadata() {
  timeout 15 kcat -F "$dir/client-plain.properties" -b "$1" -L -m 5 "${@:2}" 2>&1
}

# Waits until a metadata request to bootstrap lists each of the nodes
# given (an open port is not a ready broker: it answers once it has joined
# the quorum, registered and been unfenced).
wait_brokers() {
  local bs=$1 deadline=$((SECONDS + READY_TIMEOUT)) i out missing
  shift
  while :; do
    for i in "$@"; do
      node_pid "$i" >/dev/null || { log_tails "$i"; die "node $i exited while starting"; }
    done
    out=$(metadata "$bs" || true)
    missing=""
    for i in "$@"; do
      grep -Eq "^ +broker $i at " <<<"$out" || missing+=" $i"
    done
    [ -z "$missing" ] && return
    if [ $SECONDS -ge $deadline ]; then
      echo "$out" | tail -n 5 >&2
      log_tails "$@"
      die "node(s)$missing not listed by a metadata request to $bs after ${READY_TIMEOUT}s"
    fi
    sleep 0.5
  done
}

# Waits until every partition of topic has a leader, as clients see it.
wait_topic() {
  local name=$1 deadline=$((SECONDS + READY_TIMEOUT)) out
  while :; do
    out=$(metadata "$(bootstrap)" -t "$name" || true)
    if grep -q "topic \"$name\" with" <<<"$out" && ! grep -Eq 'leader -1|Broker: Leader not available|error' <<<"$out"; then
      return
    fi
    [ $SECONDS -ge $deadline ] && { echo "$out" >&2; die "topic $name has no leader for every partition after ${READY_TIMEOUT}s"; }
    sleep 0.2
  done
}

# create_topic NAME PARTITIONS [RF] [KEY=VALUE...]: the rest are topic configs
create_topic() {
  local name=$1 partitions=$2 rf=${3:-$NODES} c
  local configs=()
  for c in "${@:4}"; do configs+=(--config "$c"); done
  [[ $partitions =~ ^[1-9][0-9]*$ ]] || die "topic $name: partitions must be a positive number, not '$partitions'"
  [[ $rf =~ ^[1-9][0-9]*$ ]] && [ "$rf" -le "$NODES" ] ||
    die "topic $name: replication factor must be 1..$NODES (the cluster's nodes), not '$rf'"
  local out
  out=$(tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(internal_bootstrap)" --create --if-not-exists \
    --topic "$name" --partitions "$partitions" --replication-factor "$rf" "${configs[@]}" 2>&1) ||
    { echo "$out" >&2; die "creating topic $name failed"; }
  wait_topic "$name"
}

start() {
  local nodes="" sasl="" tls="" port="" topics=1 i
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) nodes=${2:?--nodes needs 1 or 3}; shift 2 ;;
      --sasl) sasl=1; shift ;;
      --tls) tls=1; shift ;;
      --port) port=${2:?--port needs a number}; shift 2 ;;
      --no-topics) topics=0; shift ;;
      --set)
        [[ ${2:-} =~ ^[a-z][a-z0-9._-]*=.*$ ]] || die "--set needs KEY=VALUE (a broker setting), not '${2:-}'"
        SETTINGS+=("$2"); shift 2 ;;
      *) die "start: unknown option $1 ($usage)" ;;
    esac
  done
  case "${nodes:-1}" in 1 | 3) ;; *) die "--nodes must be 1 or 3, not '$nodes'" ;; esac
  [ -z "$port" ] || [[ $port =~ ^[1-9][0-9]{0,4}$ ]] || die "--port must be a port number, not '$port'"
  fetch
  JAVA=$(java_bin)
  if [ -f "$dir/cluster.env" ]; then
    [ ${#SETTINGS[@]} -eq 0 ] || die "--set applies to a new cluster; $dir holds one (destroy it first)"
    load_layout
    [ -z "$nodes" ] || [ "$nodes" = "$NODES" ] || die "$dir holds a cluster of $NODES node(s), not $nodes"
    [ -z "$sasl" ] || [ "$SASL" = 1 ] || die "$dir holds a cluster without SASL"
    [ -z "$tls" ] || [ "$TLS" = 1 ] || die "$dir holds a cluster without TLS"
    [ -z "$port" ] || [ "$port" = "$CLIENT_PORT_1" ] || die "$dir holds a cluster on port $CLIENT_PORT_1, not $port"
  else
    [ ! -e "$dir" ] || [ -z "$(ls -A "$dir")" ] || die "$dir is neither empty nor a cluster's directory"
    NODES=${nodes:-1} SASL=${sasl:-0} TLS=${tls:-0}
    format "$port"
  fi
  for i in $(seq 1 "$NODES"); do start_node "$i"; done
  wait_brokers "$(bootstrap)" $(seq 1 "$NODES")
  if [ "$topics" = 1 ] && [ ! -f "$dir/topics-created" ]; then
    create_topic decisions 6 &
    local p1=$!
    create_topic decisions.dlq 1 &
    local p2=$!
    # A small segment, so that compaction keeps the topic short (a
    # checkpoint is written every transaction).
    create_topic decisions.checkpoints 1 "" cleanup.policy=compact segment.bytes=1048576 &
    local p3=$!
    wait $p1 && wait $p2 && wait $p3 || die "creating the default topics failed"
    touch "$dir/topics-created"
  fi
  trap - EXIT
  bootstrap
}

wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while alive "$pid"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.1
  done
}

stop() {
  local i pid pids=()
  for i in "$@"; do
    if pid=$(node_pid "$i"); then kill -TERM "$pid"; pids+=("$i:$pid"); fi
  done
  for p in "${pids[@]}"; do
    if ! wait_gone "${p#*:}" 30; then
      echo "kafka-cluster: node ${p%%:*} did not stop within 30 s; killed" >&2
      kill -KILL "${p#*:}" 2>/dev/null || true
      wait_gone "${p#*:}" 10 || true
    fi
  done
}

node_arg() {
  local n=${1:?node number needed}
  [[ $n =~ ^[1-9][0-9]*$ ]] && [ "$n" -le "$NODES" ] || die "node must be 1..$NODES, not '$n'"
  echo "$n"
}

case "$cmd" in
  start) start "$@" ;;
  stop)
    load_layout
    if [ $# -gt 0 ]; then n=$(node_arg "$1"); stop "$n"; else stop $(seq 1 "$NODES"); fi ;;
  kill)
    load_layout
    n=$(node_arg "${1:-}")
    pid=$(node_pid "$n") || die "node $n is not running"
    kill -KILL "$pid"
    wait_gone "$pid" 10 || die "node $n (pid $pid) still there after SIGKILL" ;;
  restart)
    load_layout
    n=$(node_arg "${1:-}")
    fetch
    JAVA=$(java_bin)
    start_node "$n"
    v=CLIENT_PORT_$n
    wait_brokers "127.0.0.1:${!v}" "$n"
    trap - EXIT ;;
  topic)
    load_layout
    fetch
    JAVA=$(java_bin)
    create_topic "${1:?topic name needed}" "${2:?partitions needed}" "${3:-}" ;;
  bootstrap) load_layout; bootstrap ;;
  leader)
    load_layout
    t=${1:?topic name needed}
    p=${2:?partition needed}
    [[ $p =~ ^[0-9]+$ ]] || die "partition must be a number, not '$p'"
    out=$(metadata "$(bootstrap)" -t "$t" || true)
    l=$(sed -n "s/^ *partition $p, leader \([0-9-]*\),.*/\1/p" <<<"$out")
    [[ $l =~ ^[1-9][0-9]*$ ]] || { echo "$out" >&2; die "partition $p of $t has no leader"; }
    echo "$l" ;;
  run)
    load_layout
    fetch
    JAVA=$(java_bin)
    "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dds.kafka.level=WARN \
      -Dlog4j2.configurationFile="$LOG4J" -cp "$KAFKA_CACHE/libs/*" "${1:?class name needed}" "${@:2}" ;;
  destroy)
    if [ -f "$dir/cluster.env" ]; then
      load_layout
      for i in $(seq 1 "$NODES"); do
        if pid=$(node_pid "$i"); then kill -KILL "$pid"; wait_gone "$pid" 10 || true; fi
      done
    fi
    rm -rf "$dir" ;;
  *) die "unknown command $cmd ($usage)" ;;
esac
