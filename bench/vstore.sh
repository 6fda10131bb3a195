#!/usr/bin/env bash
# Benchmark: the variable store (CONTRACT §6) holding CUSTOMERS customers
# (1.5 decisions each, loaded through POST /v1/decisions:ingest): random
# customer lookups with wrk against wrk on GET /healthz of the same server
# (the HTTP floor), alternating, RUNS runs each, medians quoted; both again
# at fewer connections and paced near RATE requests/s for the latency aim;
# ingest decisions/s and the disk writes it costs; resident memory and the
# LMDB file per million customers. Then the alternative,
# PostgreSQL serving the same lookup: the same decisions in one table indexed
# on (customer_id, decided_at), pgbench running the per-customer aggregate of
# the shipped customer variables for a random customer. Last line:
#   ratio vstore_lookup_vs_floor <median over the runs of lookups/s / floor requests/s>
# wrk runs one thread (-t1) by default: the store answers HTTP on one thread,
# and on two cores a second wrk thread takes CPU from the server, so the
# floor would measure wrk, not the server.
# Env: BENCH_VSTORE_CUSTOMERS (default 1000000), BENCH_VSTORE_SECONDS (4),
#      BENCH_VSTORE_RUNS (5), BENCH_VSTORE_CONNS (32), BENCH_VSTORE_LOW_CONNS (4),
#      BENCH_VSTORE_RATE (10000), BENCH_VSTORE_THREADS (wrk -t and pgbench -j, 1),
#      BENCH_VSTORE_INGEST_WORKERS (4).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BUILD=${BUILD:-build}
CUSTOMERS=${BENCH_VSTORE_CUSTOMERS:-1000000}
SECS=${BENCH_VSTORE_SECONDS:-4}
RUNS=${BENCH_VSTORE_RUNS:-5}
CONNS=${BENCH_VSTORE_CONNS:-32}
LOW_CONNS=${BENCH_VSTORE_LOW_CONNS:-4}
RATE=${BENCH_VSTORE_RATE:-10000}
THREADS=${BENCH_VSTORE_THREADS:-1}
WORKERS=${BENCH_VSTORE_INGEST_WORKERS:-4}
PACE_MS=2 # mean wait of a paced connection between an answer and its next request (ms)
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }
per_million() { awk -v x="$1" -v n="$CUSTOMERS" 'BEGIN {printf "%.0f", x * 1000000 / n}'; }

bench_workdir vstore

echo "generating $CUSTOMERS customers' decisions ..."
decisions=$(python3 bench/tools/vstore_load.py gen "$work/gen" "$CUSTOMERS" "$(date +%s%3N)")

vport=$(freeport)
# One token for the loader, the lookups and wrk: roles ingest and lookup.
export BENCH_TOKEN=bench-vstore-token
echo "$(printf %s "$BENCH_TOKEN" | sha256sum | cut -d' ' -f1) ingest,lookup bench" >"$work/tokens"
"$BUILD/bin/variable-store" --brokers "" --data-dir "$work/vs" --listen-host 127.0.0.1 --listen-port "$vport" \
  --tokens-file "$work/tokens" --log-level warn 2>"$work/vs.log" &
vs=$!
pids+=("$vs")
url=http://127.0.0.1:$vport
deadline=$((SECONDS + 30))
until curl -sf "$url/readyz" >/dev/null; do
  [ $SECONDS -lt $deadline ] && kill -0 "$vs" 2>/dev/null || { echo "variable-store not ready" >&2; cat "$work/vs.log" >&2; exit 1; }
  sleep 0.1
done

# Ingest: every decision once, WORKERS keep-alive connections, 1000 a request.
echo "ingesting $decisions decisions through POST /v1/decisions:ingest ($WORKERS connections) ..."
# Sectors written to the disk under $work while ingesting (the machine is otherwise idle).
dev=$(basename "$(df --output=source "$work" | tail -n 1)")
sectors() { if [ -r "/sys/class/block/$dev/stat" ]; then awk '{print $7}' "/sys/class/block/$dev/stat"; else echo 0; fi; }
sync
s0=$(sectors)
read -r received counted dups expired ingest_secs < <(python3 bench/tools/vstore_load.py post \
  "$url/v1/decisions:ingest" "$work/gen" "$WORKERS")
[ "$received" = "$decisions" ] && [ "$counted" = "$decisions" ] ||
  { echo "ingest: $received received, $counted counted of $decisions" >&2; exit 1; }
s1=$(sectors)
ingest_disk=$(awk -v s="$((s1 - s0))" -v n="$counted" 'BEGIN {printf "%.1f GiB, %.1f KiB a decision", s * 512 / 2^30, s * 512 / 1024 / n}')
[ -r "/sys/class/block/$dev/stat" ] || ingest_disk="n/a ($dev is not a block device)"
ingest_rate=$(awk -v n="$counted" -v s="$ingest_secs" 'BEGIN {printf "%.0f", n / s}')
rss() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$vs/status"; }
rss_load=$(rss VmRSS) anon_load=$(rss RssAnon) file_load=$(rss RssFile)
mdb_bytes=$(stat -c %s "$work/vs/data.mdb")
curl -s "$url/metrics" >"$work/metrics"
mdb_used=$(awk '$1 == "variable_store_used_bytes" {printf "%.0f", $2}' "$work/metrics")
commits=$(awk '$1 == "variable_store_commits_total" {printf "%.0f", $2}' "$work/metrics")
# Pages of each tree (mdb_stat, lmdb-utils: read-only, beside the writer).
trees=$(mdb_stat -efa "$work/vs" 2>/dev/null | awk '
  /^Freelist Status/ {db = "free"} /^Status of / {db = $3}
  /Branch pages:|Leaf pages:|Overflow pages:/ {p[db] += $3} /Free pages:/ {p["free"] = $3}
  END {for (d in p) if (d != "Main" && d != "meta" && p[d] > 0) printf "%s %.0f MiB\n", d, p[d] * 4096 / 1048576}' |
  sort | paste -sd, | sed 's/,/, /g')
rm -rf "$work/gen/bodies"

# Answers kept to check the PostgreSQL table against, later.
samples="0 1 42 $((CUSTOMERS / 2 + 7)) $((CUSTOMERS - 1))"
for c in $samples; do
  curl -sf -H "Authorization: Bearer $BENCH_TOKEN" "$url/v1/variables/customer/cust-$c" >"$work/answer-$c.json"
done

# wrk_run CONNS TARGET [DELAY_MS [SECONDS]]: sets rate p50 p99 (ms), errs, reqs and
# cpu (the variable store's CPU, % of one core) and us (its CPU µs per request).
to_ms() { awk '{v=$1; u=$1; sub(/[0-9.]+/,"",u); sub(/[a-z]+$/,"",v);
  if (u=="us") v/=1000; else if (u=="s") v*=1000; else if (u=="m") v*=60000; printf "%.3f", v}'; }
ticks() { awk '{print $14 + $15}' "/proc/$vs/stat"; }
wrk_run() {
  local t0 c0 t1 c1 out secs=${4:-$SECS}
  c0=$(ticks) t0=$(date +%s.%N)
  out=$(VSTORE_CUSTOMERS=$CUSTOMERS VSTORE_TARGET=$2 VSTORE_DELAY_MS=${3:-0} \
        wrk -t"$THREADS" -c"$1" -d"${secs}s" --latency -s bench/vstore_lookup.lua "$url" 2>&1)
  c1=$(ticks) t1=$(date +%s.%N)
  rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}' | to_ms)
  p99=$(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)
  errs=$(echo "$out" | awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}')
  read -r cpu us < <(awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v s="$(echo "$t1 - $t0" | bc -l)" \
    -v r="$reqs" 'BEGIN {printf "%.0f %.1f\n", 100 * c / hz / s, c / hz * 1e6 / r}')
}
row() { printf '%-46s %6s %10.0f %8.3f %8.3f %7s %8s %8s\n' "$@"; }

declare -A med
lk_rate=() lk_p50=() lk_p99=() lk_cpu=() lk_us=() lk_err=0
fl_rate=() fl_p50=() fl_p99=() fl_cpu=() fl_us=() fl_err=0 ratios=()
for r in $(seq 1 "$RUNS"); do
  wrk_run "$CONNS" lookup
  lk_rate+=("$rate") lk_p50+=("$p50") lk_p99+=("$p99") lk_cpu+=("$cpu") lk_us+=("$us") lk_err=$((lk_err + errs))
  wrk_run "$CONNS" floor
  fl_rate+=("$rate") fl_p50+=("$p50") fl_p99+=("$p99") fl_cpu+=("$cpu") fl_us+=("$us") fl_err=$((fl_err + errs))
  ratios+=("$(awk -v a="${lk_rate[-1]}" -v b="${fl_rate[-1]}" 'BEGIN {printf "%.3f", a / b}')")
  echo "run $r: lookups ${lk_rate[-1]}/s (${lk_cpu[-1]}% CPU), floor ${fl_rate[-1]}/s (${fl_cpu[-1]}% CPU), ratio ${ratios[-1]}"
done
med_of() { local -n arr=$1; printf '%s\n' "${arr[@]}" | median; }
for v in lk_rate lk_p50 lk_p99 lk_cpu lk_us fl_rate fl_p50 fl_p99 fl_cpu fl_us ratios; do med[$v]=$(med_of $v); done
wrk_run "$LOW_CONNS" lookup
low_lk=("$rate" "$p50" "$p99" "$errs" "$cpu" "$us")
wrk_run "$LOW_CONNS" floor
low_fl=("$rate" "$p50" "$p99" "$errs" "$cpu" "$us")
# Paced: a mean PACE_MS wait after each answer; connections sized by a short first try.
pc=$((RATE * (PACE_MS + 1) / 1000))
wrk_run "$pc" lookup "$PACE_MS" 2
pc=$(awk -v c="$pc" -v r="$rate" -v want="$RATE" 'BEGIN {n = int(c * want / r + 0.5); print n < 1 ? 1 : n}')
wrk_run "$pc" lookup "$PACE_MS" $((SECS + 2))
paced=("$rate" "$p50" "$p99" "$errs" "$cpu" "$us")
wrk_run "$pc" floor "$PACE_MS" $((SECS + 2))
paced_fl=("$rate" "$p50" "$p99" "$errs" "$cpu" "$us")
rss_after=$(rss VmRSS) anon_after=$(rss RssAnon) file_after=$(rss RssFile)
kill -TERM "$vs" && wait "$vs" 2>/dev/null || true
grep -E 'ERROR|WARN' "$work/vs.log" | head -5 | sed 's/^/variable-store log: /' || true

# PostgreSQL: the same decisions, one table, the same lookup in SQL.
echo "loading the same $decisions decisions into PostgreSQL ..."
conninfo=$(bash deploy/pg-cluster.sh start "$work/pg")
sql() { "$PGBIN/psql" "$conninfo" -v ON_ERROR_STOP=1 -Atqc "$1"; }
t0=$(date +%s.%N)
sql "CREATE TABLE events (customer_id text NOT NULL, decided_at timestamptz NOT NULL, decision_id uuid NOT NULL,
       outcome text NOT NULL, amount bigint NOT NULL, merchant_id text NOT NULL)"
"$PGBIN/psql" "$conninfo" -v ON_ERROR_STOP=1 -qc "\\copy events FROM '$work/gen/events.csv' WITH (FORMAT csv)"
sql "CREATE INDEX events_customer ON events (customer_id, decided_at)"
sql "VACUUM ANALYZE events"
t1=$(date +%s.%N)
pg_load_secs=$(echo "$t1 - $t0" | bc -l)
pg_bytes=$(sql "SELECT pg_total_relation_size('events')")
rows=$(sql "SELECT count(*) FROM events")
[ "$rows" = "$decisions" ] || { echo "postgres holds $rows rows, not $decisions" >&2; exit 1; }

# The shipped customer variables (variable-store/variables.json) for one customer.
cat >"$work/lookup.sql" <<'SQL'
\set n random(0, :customers - 1)
SELECT count(*) FILTER (WHERE outcome = 'APPROVED') AS approved_count_30d,
       count(*) FILTER (WHERE outcome = 'REJECTED') AS rejected_count_30d,
       coalesce(sum(amount) FILTER (WHERE outcome = 'APPROVED'), 0) AS approved_amount_30d,
       (SELECT l.outcome FROM events l WHERE l.customer_id = 'cust-' || :n::text
        ORDER BY l.decided_at DESC LIMIT 1) AS last_outcome,
       count(DISTINCT merchant_id) AS distinct_merchants_30d,
       count(*) FILTER (WHERE decided_at > now() - interval '24 hours') AS decision_count_24h,
       count(*) FILTER (WHERE decided_at > now() - interval '1 hour') AS decision_count_1h,
       max(amount) FILTER (WHERE outcome = 'APPROVED') AS max_approved_amount_30d
  FROM events WHERE customer_id = 'cust-' || :n::text AND decided_at > now() - interval '30 days';
SQL
# Both stores must say the same of the sample customers (the windows of 30
# days and more: the 24h and 1h counts may have moved since).
for c in $samples; do
  sed -e '1d' -e "s/:n::text/'$c'/g" "$work/lookup.sql" | "$PGBIN/psql" "$conninfo" -AtF'|' -v ON_ERROR_STOP=1 -q |
    python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["variables"]
f = sys.stdin.read().rstrip("\n").split("|")
p = {"approved_count_30d": int(f[0]), "rejected_count_30d": int(f[1]), "approved_amount_30d": int(f[2]),
     "last_outcome": f[3] or None, "distinct_merchants_30d": int(f[4]),
     "max_approved_amount_30d": int(f[7]) if f[7] else None}
bad = {k: (a.get(k), v) for k, v in p.items() if a.get(k) != v}
if bad:
    sys.exit("customer %s: variable-store and PostgreSQL differ (store, postgres): %s" % (sys.argv[2], bad))
' "$work/answer-$c.json" "$c"
done
echo "customers $samples: the same variables in both stores"

# pgbench_run CLIENTS [RATE [SECONDS]]: sets rate p50 p99 (ms) errs, from the per-transaction log.
pgbench_run() {
  rm -f "$work"/pgbench_log.*
  (cd "$work" && "$PGBIN/pgbench" -n -M prepared -c "$1" -j "$THREADS" -T "${3:-$SECS}" ${2:+-R "$2"} -l \
     -D customers="$CUSTOMERS" -f lookup.sql "$conninfo" >"$work/pgbench.out" 2>&1) ||
    { cat "$work/pgbench.out" >&2; exit 1; }
  rate=$(awk '/^tps/ {print $3; exit}' "$work/pgbench.out")
  read -r p50 p99 < <(cat "$work"/pgbench_log.* | awk '{print $3}' | sort -n |
    awk '{a[NR]=$1} END {printf "%.3f %.3f\n", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
  errs=$(awk '/failed transactions/ {print $5; exit}' "$work/pgbench.out"); errs=${errs:-0}
}
pgbench_run "$CONNS"
pg_hi=("$rate" "$p50" "$p99" "$errs")
pgbench_run "$LOW_CONNS"
pg_lo=("$rate" "$p50" "$p99" "$errs")
pgbench_run "$pc" "$RATE" $((SECS + 2))
pg_paced=("$rate" "$p50" "$p99" "$errs")

echo
printf '%-46s %6s %10s %8s %8s %7s %8s %8s\n' "lookups of random customers ($CUSTOMERS loaded)" \
  "conns" "req/s" "p50 ms" "p99 ms" "errors" "srv CPU" "srv us/r"
row "variable-store GET /v1/variables (median/$RUNS)" "$CONNS" "${med[lk_rate]}" "${med[lk_p50]}" "${med[lk_p99]}" \
  "$lk_err" "${med[lk_cpu]}%" "${med[lk_us]}"
row "HTTP floor: GET /healthz, same server" "$CONNS" "${med[fl_rate]}" "${med[fl_p50]}" "${med[fl_p99]}" \
  "$fl_err" "${med[fl_cpu]}%" "${med[fl_us]}"
row "variable-store GET /v1/variables" "$LOW_CONNS" "${low_lk[0]}" "${low_lk[1]}" "${low_lk[2]}" "${low_lk[3]}" \
  "${low_lk[4]}%" "${low_lk[5]}"
row "HTTP floor: GET /healthz" "$LOW_CONNS" "${low_fl[0]}" "${low_fl[1]}" "${low_fl[2]}" "${low_fl[3]}" \
  "${low_fl[4]}%" "${low_fl[5]}"
row "variable-store, paced (~$RATE/s wanted)" "$pc" "${paced[0]}" "${paced[1]}" "${paced[2]}" "${paced[3]}" \
  "${paced[4]}%" "${paced[5]}"
row "HTTP floor, paced the same" "$pc" "${paced_fl[0]}" "${paced_fl[1]}" "${paced_fl[2]}" "${paced_fl[3]}" \
  "${paced_fl[4]}%" "${paced_fl[5]}"
row "PostgreSQL, same aggregate (pgbench)" "$CONNS" "${pg_hi[0]}" "${pg_hi[1]}" "${pg_hi[2]}" "${pg_hi[3]}" "" ""
row "PostgreSQL, same aggregate (pgbench)" "$LOW_CONNS" "${pg_lo[0]}" "${pg_lo[1]}" "${pg_lo[2]}" "${pg_lo[3]}" "" ""
row "PostgreSQL, pgbench -R $RATE (constant rate)" "$pc" "${pg_paced[0]}" "${pg_paced[1]}" "${pg_paced[2]}" \
  "${pg_paced[3]}" "" ""
echo "wrk -t$THREADS -d${SECS}s, keep-alive; srv CPU/us: the variable store's CPU time (of 2 shared cores) per second and per request."
echo "paced: wrk has no rate limit (no wrk2 here): each connection waits 1-$((2 * PACE_MS - 1)) ms (whole ms, wrk's timer"
echo "  ticks) after an answer, so requests come in small bursts and the latency is measured from the send"
echo "  (closed loop); pgbench -R schedules Poisson arrivals and counts latency from the scheduled start."
echo "PostgreSQL rows: SQL only (pgbench -M prepared -j $THREADS), no HTTP in front, default settings of deploy/pg-cluster.sh."
echo "ingest: $counted decisions ($CUSTOMERS customers, merchants m-0..m-999) in ${ingest_secs}s through" \
  "$WORKERS connections, 1000 a request: $ingest_rate decisions/s (duplicates $dups, expired $expired)"
echo "  disk writes while ingesting ($dev): $ingest_disk; $commits write transactions," \
  "$(awk -v n="$counted" -v c="$commits" 'BEGIN {printf "%.0f", n / c}') decisions each"
echo "PostgreSQL load of the same rows (COPY, index, VACUUM ANALYZE; bulk, not comparable): $(printf %.1f "$pg_load_secs")s"
echo "memory after load: VmRSS $(mib "$rss_load") MiB (RssAnon $(mib "$anon_load"), RssFile $(mib "$file_load"));" \
  "after lookups: VmRSS $(mib "$rss_after") MiB (RssAnon $(mib "$anon_after"), RssFile $(mib "$file_after"))"
echo "  LMDB is mmapped: RssFile is the page-cache pages of data.mdb the process touched, not private memory"
echo "data.mdb $((mdb_bytes / 1048576)) MiB (used $((mdb_used / 1048576)) MiB${trees:+: $trees});" \
  "PostgreSQL table and index $((pg_bytes / 1048576)) MiB"
echo "per million customers: VmRSS $(per_million "$(mib "$rss_after")") MiB, RssAnon" \
  "$(per_million "$(mib "$anon_after")") MiB, data.mdb $(per_million "$((mdb_bytes / 1048576))") MiB"
echo "variable-store lookups/s / PostgreSQL tps at $CONNS connections:" \
  "$(awk -v a="${med[lk_rate]}" -v b="${pg_hi[0]}" 'BEGIN {printf "%.2f", a / b}')"
echo "server CPU per request, floor / lookup (independent of the client):" \
  "$(awk -v a="${med[fl_us]}" -v b="${med[lk_us]}" 'BEGIN {printf "%.2f", a / b}')"
echo "lookups/s / floor requests/s in each run: ${ratios[*]}"
awk -v p99="${paced[2]}" -v r="${paced[0]}" -v want="$RATE" -v q="${med[ratios]}" 'BEGIN {
  lat = (p99 < 1 && r >= 0.95 * want) ? "met" : "not met"; rat = (q >= 0.7) ? "met" : "not met"
  printf "aims: p99 under 1 ms at %d lookups/s: %s (p99 %.3f ms at %.0f/s paced); ratio at least 0.7: %s (%.2f)\n",
    want, lat, p99, r, rat, q }'
echo "ratio vstore_lookup_vs_floor $(printf %.2f "${med[ratios]}")"
