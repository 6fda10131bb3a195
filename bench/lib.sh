# bench/lib.sh - what every benchmark script starts with, sourced after
# `cd` to the repository root: the newest PostgreSQL binaries, a free port,
# and a work directory whose processes ($pids, newest first) and throwaway
# cluster ($work/pg) are cleaned up on exit.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# bench_workdir NAME: creates $work (/tmp/ds-bench-NAME-*) and the exit trap.
bench_workdir() {
  work=$(mktemp -d "/tmp/ds-bench-$1-XXXXXX")
  chmod 755 "$work" # the postgres user must traverse it
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  # newest first: clients before the broker or database they talk to
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null && wait "${pids[$i]}" 2>/dev/null || true
  done
  bash deploy/pg-cluster.sh destroy "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
