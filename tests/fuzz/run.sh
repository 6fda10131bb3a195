#!/usr/bin/env bash
# Runs libFuzzer targets (build/fuzz/bin/fuzz_<target>, built by make fuzz)
# one after another, each for FUZZ_SECONDS, at the lowest CPU priority.
# New inputs go to build/fuzz/corpus/<target> (the committed seeds in
# tests/fuzz/corpus/<target> and the regressions are read, never written);
# a crash, leak, timeout or out-of-memory input is saved under
# build/fuzz/artifacts/<target>/ and stops that target. FUZZ_ARGS adds
# libFuzzer options (e.g. "-fork=1 -ignore_crashes=1" to go on past one).
# Exit status is non-zero if any target found something.
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
# allocator_may_return_null: as in tests/run.sh, an impossible size from
# corrupt input must reach the code's own error path; libFuzzer still
# reports a single allocation above its -malloc_limit_mb (-rss_limit_mb).
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

found=()
for t in "$@"; do
  bin=build/fuzz/bin/fuzz_$t work=build/fuzz/corpus/$t art=build/fuzz/artifacts/$t log=build/fuzz/$t.log
  mkdir -p "$work" "$art"
  stamp=$(mktemp)
  dict=()
  if [ -f "tests/fuzz/$t.dict" ]; then dict=(-dict="tests/fuzz/$t.dict"); fi
  echo "=== fuzz_$t: ${secs}s (log $log)"
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
  nice -n 19 "$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 -artifact_prefix="$art/" \
    "${dict[@]}" ${FUZZ_ARGS:-} "$work" "tests/fuzz/corpus/$t" "tests/fuzz/regress/$t" >"$log" 2>&1
  rc=$?
  # the last progress line (executions, coverage, corpus), then what went wrong
  grep -aE '^#[0-9]+' "$log" | tail -1
  grep -aE '^stat::(number_of_executed_units|peak_rss_mb)|^SUMMARY|^==[0-9]+==ERROR|property failed' "$log"
  arts=$(find "$art" -type f -newer "$stamp" | sort)
  rm -f "$stamp"
  if [ "$rc" -ne 0 ] || [ -n "$arts" ]; then
    found+=("$t")
    echo "fuzz_$t found a failing input (exit $rc): ${arts:-see $log}"
  fi
done
echo
if [ ${#found[@]} -gt 0 ]; then
  echo "failing inputs in: ${found[*]}. Reproduce with build/fuzz/bin/fuzz_<target> <file>; once fixed, copy the"
  echo "input into tests/fuzz/regress/<target>/ so make test replays it."
  exit 1
fi
echo "no failing input found"
