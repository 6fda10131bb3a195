#!/usr/bin/env bash
# Runs test binaries one after another from the repository root and ends
# with the plain summary line "N passed, N failed" (counting cmocka tests).
# Exit status is non-zero if any test binary failed.
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
# Sanitizer runs: fail on the first error, report leaks of our own code
# (third-party start-up allocations are suppressed in tests/lsan.supp).
# allocator_may_return_null: corrupt input can make avro-c ask for an
# impossible size; libc's malloc returns NULL and avro-c reports an error,
# which is the behaviour under test, so ASan must not abort instead.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:allocator_may_return_null=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0 failed=0 bad_bins=() times=()
for t in "$@"; do
  echo "=== $t"
  start=$(date +%s.%N)
  log=$(mktemp)
  # Its own session, and no pipe to its daemons: a test that fails half-way
  # may leave the processes it started running, and one holding a pipe of
  # this script would hang it. They are killed once the test has exited.
  setsid "$t" >"$log" 2>&1 &
  pid=$!
  tail -n +1 -s 0.1 --pid="$pid" -f "$log"
  wait "$pid"
  rc=$?
  if left=$(pgrep -a -s "$pid"); then
    echo "run.sh: $t left processes running (killed):"
    echo "$left"
    pkill -KILL -s "$pid"
  fi
  p=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
  f=$(grep -Eo '^\[  FAILED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
  # cmocka exits 0 when only a group setup/teardown fails, and a sanitizer
  # report from a child process (the API under test) shows only in the log.
  if grep -Eq '^\[  (FAILED  \] GROUP|ERROR   \] tests)|ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$log"; then
    [ "$rc" -eq 0 ] && rc=1
  fi
  rm -f "$log"
  times+=("$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%6.1f", b - a }') s  $t")
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" -ne 0 ]; then
    bad_bins+=("$t")
    [ "$f" -eq 0 ] && failed=$((failed + 1))
  fi
done
# The slowest binaries, to keep make test's time in view.
echo
echo "slowest:"
printf '%s\n' "${times[@]}" | sort -rn | head -n 8
echo
if [ ${#bad_bins[@]} -gt 0 ]; then echo "failed binaries: ${bad_bins[*]}"; fi
echo "$passed passed, $failed failed"
[ ${#bad_bins[@]} -eq 0 ]
