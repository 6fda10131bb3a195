#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for `make run`, the tests and the benchmarks.
#
#   pg-cluster.sh start DIR [PORT]   initdb in DIR if empty, start on 127.0.0.1:PORT
#                                    (a free port when PORT is omitted or 0); prints
#                                    the libpq connection string on stdout
#   pg-cluster.sh stop DIR           fast shutdown
#   pg-cluster.sh restart DIR        start again after stop, same port
#   pg-cluster.sh destroy DIR        stop and delete
#
# initdb and postgres refuse to run as root, and CI runs as root: as root the
# cluster runs as the `postgres` user from Debian's package, so DIR must be in
# a place that user can traverse (the caller passes a directory under /tmp or
# /var/tmp, never under /root). Settings: wal_level=logical for the stream
# processor, loopback only, a socket directory inside DIR.
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
cmd=${1:?usage: pg-cluster.sh start|stop|restart|destroy DIR [PORT]}
dir=${2:?usage: pg-cluster.sh start|stop|restart|destroy DIR [PORT]}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

conninfo() {
  echo "host=127.0.0.1 port=$(cat "$dir/port") user=postgres dbname=decisions"
}

wait_ready() {
  local port=$1 deadline=$((SECONDS + 60))
  until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "pg-cluster: PostgreSQL did not become ready on port $port; log:" >&2
      tail -n 30 "$dir/postgres.log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
}

start() {
  local port=${1:-0}
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    mkdir -p "$dir/socket"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir/socket"; fi
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/socket'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
max_connections = 100
synchronous_commit = on
fsync = on
shared_buffers = 256MB
log_min_messages = warning
CONF
  fi
  if [ "$port" = 0 ]; then port=$(free_port); fi
  echo "$port" >"$dir/port"
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "-p $port" -w -t 60 start >/dev/null
  wait_ready "$port"
  if ! as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U postgres -Atqc "SELECT 1 FROM pg_database WHERE datname='decisions'" postgres | grep -q 1; then
    as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U postgres decisions
  fi
  conninfo
}

case "$cmd" in
  start) start "${3:-0}" ;;
  restart) start "$(cat "$dir/port")" >/dev/null ;;
  stop) as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null ;;
  destroy)
    if [ -f "$dir/data/postmaster.pid" ]; then as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir" ;;
  conninfo) conninfo ;;
  *) echo "pg-cluster: unknown command $cmd" >&2; exit 2 ;;
esac
