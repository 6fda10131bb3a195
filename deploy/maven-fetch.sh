#!/usr/bin/env bash
# maven-fetch.sh POM CACHE WHAT: the runtime jars POM names, copied by Maven
# (`mvn dependency:copy-dependencies`) into CACHE/libs once; prints nothing
# on stdout. A second call with the same pom does not fetch (CACHE/complete
# holds the pom's hash); a changed pom fetches again. Two callers at once
# (tests starting clusters in parallel) fetch once, under a lock; the jars
# land in a temporary directory renamed when complete. WHAT names the fetched
# thing in the message a first fetch prints on stderr. Maven comes from
# deploy/install-deps.sh.
set -euo pipefail
usage="usage: maven-fetch.sh POM CACHE WHAT"
pom=${1:?$usage}
cache=${2:?$usage}
what=${3:?$usage}

die() { echo "maven-fetch: $*" >&2; exit 1; }

stamp=$cache/complete
sum=$(sha256sum "$pom" | cut -d' ' -f1)
fetched() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; }
fetched && exit 0
command -v mvn >/dev/null || die "mvn not found: run deploy/install-deps.sh"
mkdir -p "$cache"
exec 9>"$cache.lock"
flock 9
fetched && exit 0
echo "fetching $what from Maven Central into $cache (the first time may take minutes)" >&2
rm -rf "$cache/libs" "$cache/libs.tmp" "$stamp"
if ! mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$cache/libs.tmp" >"$cache/mvn.log" 2>&1; then
  tail -n 30 "$cache/mvn.log" >&2
  die "fetching $what failed (log: $cache/mvn.log)"
fi
mv "$cache/libs.tmp" "$cache/libs"
echo "$sum" >"$stamp"
